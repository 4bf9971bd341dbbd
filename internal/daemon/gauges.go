package daemon

import (
	"github.com/lispd/lispd/internal/admin"
)

// gauges are the state metrics /metrics serves beside the counters, read
// from the roles at scrape time: only those of the roles running here.
func (d *Daemon) gauges() []admin.Gauge {
	var out []admin.Gauge
	if ms := d.MapServer(); ms != nil {
		out = append(out, admin.Gauge{Name: "lisp_map_server_registered_prefixes",
			Help: "EID prefixes with a live registration.", Value: float64(ms.Registrations())})
	}
	if x := d.XTR(); x != nil {
		out = append(out, admin.Gauge{Name: "lisp_itr_map_cache_entries",
			Help: "Entries in the map-cache.", Value: float64(x.CacheSize())})
		for _, r := range x.RLOCProbing() {
			l := [][2]string{{"rloc", r.Address.String()}}
			up := 0.0
			if r.State == "up" {
				up = 1
			}
			out = append(out,
				admin.Gauge{Name: "lisp_rloc_probing_rtt_seconds", Help: "Round-trip time of the last answered RLOC-probe, by locator.",
					Labels: l, Value: r.RTTms / 1000},
				admin.Gauge{Name: "lisp_rloc_probing_rloc_up", Help: "1 while a probed locator answers, 0 once it is down.",
					Labels: l, Value: up})
		}
	}
	return out
}
