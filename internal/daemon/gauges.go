package daemon

import (
	"github.com/lispd/lispd/internal/stats"
)

// gauges are the state metrics read from the roles whenever gauges are
// read (/metrics, show statistics): only those of the roles running here.
func (d *Daemon) gauges() []stats.GaugeSample {
	var out []stats.GaugeSample
	g := func(subsystem, name, help string, labels [][2]string, v float64) {
		out = append(out, stats.GaugeSample{Desc: stats.Desc{Subsystem: subsystem, Name: name, Help: help, Labels: labels}, Value: v})
	}
	if ms := d.MapServer(); ms != nil {
		g("map_server", "registered_prefixes", "EID prefixes with a live registration.", nil, float64(ms.Registrations()))
	}
	if x := d.XTR(); x != nil {
		g("itr", "map_cache_entries", "Entries in the map-cache.", nil, float64(x.CacheSize()))
		for _, r := range x.RLOCProbing() {
			l := [][2]string{{"rloc", r.Address.String()}}
			up := 0.0
			if r.State == "up" {
				up = 1
			}
			g("rloc_probing", "rtt_seconds", "Round-trip time of the last answered RLOC-probe, by locator.", l, r.RTTms/1000)
			g("rloc_probing", "rloc_up", "1 while a probed locator answers, 0 once it is down.", l, up)
		}
	}
	return out
}
