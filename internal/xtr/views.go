package xtr

import (
	"slices"
	"strings"
	"time"
)

// LocatorView is a map-cache or database locator for the admin API.
type LocatorView struct {
	Address   string   `json:"address"`
	Priority  uint8    `json:"priority"`
	Weight    uint8    `json:"weight"`
	MPriority uint8    `json:"m-priority"`
	MWeight   uint8    `json:"m-weight"`
	State     string   `json:"state"`
	RTTms     *float64 `json:"rtt-ms,omitempty"`
}

// MapCacheView is one map-cache entry.
type MapCacheView struct {
	InstanceID uint32        `json:"instance-id"`
	EIDPrefix  string        `json:"eid-prefix"`
	Negative   bool          `json:"negative"`
	Action     string        `json:"action,omitempty"`
	TTL        uint32        `json:"ttl-seconds"`
	ExpiresIn  float64       `json:"expires-in-seconds"`
	Uptime     float64       `json:"uptime-seconds"`
	Source     string        `json:"source"`
	Subscribed bool          `json:"subscribed"`
	Locators   []LocatorView `json:"locators"`
}

// MapCache lists the map-cache, sorted by instance ID and prefix.
func (s *Server) MapCache() []MapCacheView {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	out := []MapCacheView{}
	for eid, e := range s.cacheIdx {
		v := MapCacheView{InstanceID: eid.IID, EIDPrefix: eid.Prefix.String(), Negative: len(e.m.Locators) == 0,
			TTL: e.m.TTL * 60, ExpiresIn: e.expires.Sub(now).Seconds(), Uptime: now.Sub(e.created).Seconds(),
			Source: e.source, Subscribed: e.subscribed, Locators: []LocatorView{}}
		if v.Negative {
			v.Action = e.m.Action.String()
		}
		for _, l := range e.m.Locators {
			lv := LocatorView{Address: l.Addr.String(), Priority: l.Priority, Weight: l.Weight, MPriority: l.MPriority,
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
	slices.SortFunc(out, func(a, b MapCacheView) int {
		if a.InstanceID != b.InstanceID {
			return int(a.InstanceID) - int(b.InstanceID)
		}
		return strings.Compare(a.EIDPrefix, b.EIDPrefix)
	})
	return out
}

// MapServerState is the registration state with one Map-Server.
type MapServerState struct {
	Address       string     `json:"address"`
	KeyID         uint8      `json:"key-id"`
	Algorithm     string     `json:"algorithm"`
	ProxyReply    bool       `json:"proxy-reply"`
	WantMapNotify bool       `json:"want-map-notify"`
	LastRegister  *time.Time `json:"last-register,omitempty"`
	LastNotify    *time.Time `json:"last-map-notify,omitempty"`
	Registers     uint64     `json:"registers"`
	Notifies      uint64     `json:"map-notifies"`
	State         string     `json:"state"`
}

// DatabaseView is one local EID prefix.
type DatabaseView struct {
	InstanceID uint32        `json:"instance-id"`
	EIDPrefix  string        `json:"eid-prefix"`
	Locators   []LocatorView `json:"locators"`
}

// Database is `show database`: local prefixes and per Map-Server state.
type Database struct {
	Entries    []DatabaseView   `json:"database"`
	MapServers []MapServerState `json:"map-servers"`
	XTRID      string           `json:"xtr-id"`
	SiteID     uint64           `json:"site-id"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// DatabaseView returns the local database and registration state.
func (s *Server) DatabaseView() Database {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := Database{Entries: []DatabaseView{}, MapServers: []MapServerState{}, SiteID: s.opts.SiteID}
	d.XTRID = hexID(s.opts.XTRID)
	for eid, e := range s.db.All() {
		v := DatabaseView{InstanceID: eid.IID, EIDPrefix: eid.Prefix.String()}
		for _, l := range e.Locators {
			v.Locators = append(v.Locators, LocatorView{Address: l.Addr.String(), Priority: l.Priority, Weight: l.Weight,
				MPriority: l.MPriority, MWeight: l.MWeight, State: "local"})
		}
		d.Entries = append(d.Entries, v)
	}
	for _, p := range s.peers {
		st := "registering"
		switch {
		case !p.lastNotify.IsZero() && !p.waiting:
			st = "registered"
		case !p.WantMapNotify && !p.lastSent.IsZero():
			st = "sent (no Map-Notify asked)"
		case p.waiting && !p.lastNotify.IsZero():
			st = "waiting for Map-Notify"
		}
		d.MapServers = append(d.MapServers, MapServerState{Address: p.Addr.String(), KeyID: p.KeyID, Algorithm: p.Alg.String(),
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

// RLOCView is `show rloc-probing`.
type RLOCView struct {
	Address   string     `json:"address"`
	State     string     `json:"state"`
	RTTms     float64    `json:"rtt-ms"`
	LastProbe *time.Time `json:"last-probe,omitempty"`
	LastReply *time.Time `json:"last-reply,omitempty"`
	Probes    uint64     `json:"probes"`
	Replies   uint64     `json:"replies"`
	Missed    int        `json:"missed"`
}

// RLOCProbing lists the probed locators.
func (s *Server) RLOCProbing() []RLOCView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []RLOCView{}
	for a, st := range s.rlocs {
		state := "up"
		if !st.up {
			state = "down"
		}
		out = append(out, RLOCView{Address: a.String(), State: state, RTTms: float64(st.rtt) / float64(time.Millisecond),
			LastProbe: tp(st.lastProbe), LastReply: tp(st.lastReply), Probes: st.probes, Replies: st.replies, Missed: st.missed})
	}
	slices.SortFunc(out, func(a, b RLOCView) int { return strings.Compare(a.Address, b.Address) })
	return out
}
