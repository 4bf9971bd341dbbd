package xtr

import (
	"math"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/mapping"
)

// MapCache lists the map-cache in EID order.
func (s *Server) MapCache() []adminapi.MapCacheEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	out := []adminapi.MapCacheEntry{}
	for eid, e := range s.cacheIdx {
		v := adminapi.MapCacheEntry{EID: apiEID(eid), Negative: len(e.m.Locators) == 0,
			TTL: min(e.m.TTL, math.MaxUint32/60) * 60, ExpiresIn: e.expires.Sub(now).Seconds(), Uptime: now.Sub(e.created).Seconds(),
			Source: e.source, Subscribed: e.subscribed, Locators: []adminapi.Locator{}}
		if v.Negative {
			v.Action = e.m.Action.String()
		}
		for _, l := range e.m.Locators {
			lv := adminapi.Locator{Address: l.Addr, Priority: l.Priority, Weight: l.Weight, MPriority: l.MPriority,
				MWeight: l.MWeight, State: "up"}
			if !l.Reachable() {
				lv.State = "unreachable"
			} else if st, ok := s.rlocs[l.Addr]; ok {
				if !st.up {
					lv.State = "down"
				}
				if st.replies > 0 {
					ms := float64(st.rtt) / float64(time.Millisecond)
					lv.RTTms = &ms
				}
			}
			v.Locators = append(v.Locators, lv)
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b adminapi.MapCacheEntry) int { return a.EID.Compare(b.EID) })
	return out
}

func apiEID(e mapping.EID) adminapi.EID { return adminapi.EID{InstanceID: e.IID, EIDPrefix: e.Prefix} }

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// DatabaseView returns the local database, in EID order, and the
// registration state per Map-Server.
func (s *Server) DatabaseView() adminapi.Database {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := adminapi.Database{Entries: []adminapi.DatabaseEntry{}, MapServers: []adminapi.MapServerState{}, SiteID: s.opts.SiteID}
	d.XTRID = hexID(s.opts.XTRID)
	for eid, e := range s.db.All() {
		v := adminapi.DatabaseEntry{EID: apiEID(eid)}
		for _, l := range e.Locators {
			v.Locators = append(v.Locators, adminapi.Locator{Address: l.Addr, Priority: l.Priority, Weight: l.Weight,
				MPriority: l.MPriority, MWeight: l.MWeight, State: "local"})
		}
		d.Entries = append(d.Entries, v)
	}
	slices.SortFunc(d.Entries, func(a, b adminapi.DatabaseEntry) int { return a.EID.Compare(b.EID) })
	for _, p := range s.peers {
		st := "registering"
		switch {
		case !p.lastNotify.IsZero() && !p.waiting():
			st = "registered"
		case !p.WantMapNotify && !p.lastSent.IsZero():
			st = "sent (no Map-Notify asked)"
		case p.waiting() && !p.lastNotify.IsZero():
			st = "waiting for Map-Notify"
		}
		d.MapServers = append(d.MapServers, adminapi.MapServerState{Address: p.Addr, KeyID: p.KeyID, Algorithm: p.Alg.String(),
			ProxyReply: p.ProxyReply, WantMapNotify: p.WantMapNotify, LastRegister: tp(p.lastSent), LastNotify: tp(p.lastNotify),
			Registers: p.registers, Notifies: p.notifies, State: st})
	}
	return d
}

func hexID(b [16]byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 32)
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// CacheSize is the number of map-cache entries.
func (s *Server) CacheSize() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cacheIdx)
}

// RLOCProbing lists the probed locators in address order.
func (s *Server) RLOCProbing() []adminapi.ProbedRLOC {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []adminapi.ProbedRLOC{}
	for a, st := range s.rlocs {
		state := "up"
		if !st.up {
			state = "down"
		}
		out = append(out, adminapi.ProbedRLOC{Address: a, State: state, RTTms: float64(st.rtt) / float64(time.Millisecond),
			LastProbe: tp(st.lastProbe), LastReply: tp(st.lastReply), Probes: st.probes, Replies: st.replies, Missed: st.missed})
	}
	slices.SortFunc(out, func(a, b adminapi.ProbedRLOC) int { return a.Address.Compare(b.Address) })
	return out
}
