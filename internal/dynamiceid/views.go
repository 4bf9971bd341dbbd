package dynamiceid

import (
	"cmp"
	"slices"

	"github.com/lispd/lispd/internal/adminapi"
)

// View lists the dynamic-EID ranges by name, each with its hosts in
// address order, for `show dynamic-eid`.
func (m *Manager) View() []adminapi.DynamicEIDRange {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	out := []adminapi.DynamicEIDRange{}
	for _, r := range m.o.Ranges {
		v := adminapi.DynamicEIDRange{Name: r.Name, EID: adminapi.EID{InstanceID: r.EID.IID, EIDPrefix: r.EID.Prefix},
			Interface: r.Interface, Mode: r.Mode, NotifyGroup: r.NotifyGroup, TimeoutSec: r.Timeout.Seconds(),
			Hosts: []adminapi.DynamicEIDHost{}}
		for eid, h := range m.hosts {
			if h.Range != r.Name {
				continue
			}
			hv := adminapi.DynamicEIDHost{EID: eid.Prefix.Addr(), State: h.State, DetectedBy: h.How,
				SinceSec: now.Sub(h.Since).Seconds(), LastSeenSec: now.Sub(h.LastSeen).Seconds(), Moves: h.Moves}
			for _, l := range h.To {
				hv.MovedTo = append(hv.MovedTo, l.Addr)
			}
			if h.State == Away {
				hv.LastSeenSec = 0
			}
			v.Hosts = append(v.Hosts, hv)
		}
		slices.SortFunc(v.Hosts, func(a, b adminapi.DynamicEIDHost) int { return a.EID.Compare(b.EID) })
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b adminapi.DynamicEIDRange) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
