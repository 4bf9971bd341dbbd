package mapserver

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/mapping"
)

func locViews(ls []mapping.Locator) []adminapi.Locator {
	out := make([]adminapi.Locator, len(ls))
	for i, l := range ls {
		st := "up"
		if !l.Reachable() {
			st = "down"
		}
		out[i] = adminapi.Locator{Address: l.Addr, Priority: l.Priority, Weight: l.Weight,
			MPriority: l.MPriority, MWeight: l.MWeight, State: st}
	}
	return out
}

// Sites returns every site (or only name, if given) with its live
// registrations, sites by name and registrations in EID order.
func (s *Server) Sites(name string) []adminapi.Site {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	nowNs := now.UnixNano()
	views := map[*site]*adminapi.Site{}
	var order []*site
	for _, st := range s.sites {
		if name != "" && st.cfg.Name != name {
			continue
		}
		v := &adminapi.Site{Name: st.cfg.Name, Description: st.cfg.Description, AuthFailures: st.authFailures,
			Registers: st.registers, Registrations: []adminapi.Registration{}}
		if !st.lastRegister.IsZero() {
			t := st.lastRegister
			v.LastRegister = &t
		}
		for _, p := range st.cfg.Prefixes {
			ps := p.EID.String()
			if p.AcceptMoreSpecifics {
				ps += " (accept-more-specifics)"
			}
			v.EIDPrefixes = append(v.EIDPrefixes, ps)
		}
		views[st] = v
		order = append(order, st)
	}
	for eid, r := range s.regs.All() {
		v, ok := views[r.site]
		if !ok {
			continue
		}
		rv := adminapi.Registration{EID: apiEID(eid), Locators: locViews(r.merged(nowNs)),
			Moves: s.moved[eid].moves}
		if rv.Moves > 0 {
			t := time.Unix(0, s.moved[eid].last)
			rv.LastMove = &t
		}
		for _, e := range r.etrs {
			if e.expires <= nowNs {
				continue
			}
			rb := adminapi.RegisteredBy{Source: e.src, LastRegister: time.Unix(0, e.last),
				ExpiresIn: float64(e.expires-nowNs) / 1e9, ProxyReply: e.flags&flagProxy != 0,
				WantNotify: e.flags&flagWantNotify != 0, Merge: e.flags&flagMerge != 0, TTL: e.ttl,
				Locators: locViews(e.locators)}
			if e.flags&flagXTRID != 0 {
				rb.XTRID, rb.SiteID = hex.EncodeToString(e.xtrID[:]), e.siteID
			}
			if s.opts.Store != nil {
				rb.Node = s.opts.Node
				if e.flags&flagRemote != 0 {
					rb.Node, rb.ExpiresIn = s.remoteNodeLocked(eid, &e), 0
				}
			}
			rv.RegisteredBy = append(rv.RegisteredBy, rb)
		}
		v.Registrations = append(v.Registrations, rv)
	}
	slices.SortFunc(order, func(a, b *site) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	out := make([]adminapi.Site, 0, len(order))
	for _, st := range order {
		v := views[st]
		slices.SortFunc(v.Registrations, func(a, b adminapi.Registration) int { return a.EID.Compare(b.EID) })
		out = append(out, *v)
	}
	return out
}

// remoteNodeLocked names the node whose Record of eid holds e.
func (s *Server) remoteNodeLocked(eid mapping.EID, e *etrReg) string {
	var nodes []string
	for node, rr := range s.remote[eid] {
		for i := range rr.rec.XTRs {
			if x, ok := remoteETR(&rr.rec.XTRs[i]); ok && sameETR(&x, e) {
				nodes = append(nodes, node)
				break
			}
		}
	}
	slices.Sort(nodes)
	return strings.Join(nodes, ",")
}

// Subscriptions lists the pub/sub subscribers in EID order.
func (s *Server) Subscriptions() []adminapi.Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []adminapi.Subscription{}
	for eid, subs := range s.subs.All() {
		for _, sub := range subs {
			v := adminapi.Subscription{EID: apiEID(eid),
				XTRID: hex.EncodeToString(sub.xtrID[:]), SiteID: sub.siteID, Site: sub.site.cfg.Name,
				Nonce: fmt.Sprintf("%#x", sub.nonce)}
			v.ITRRLOCs = append(v.ITRRLOCs, sub.rlocs...)
			out = append(out, v)
		}
	}
	// Stable: the subscribers of one prefix stay in the order they came.
	slices.SortStableFunc(out, func(a, b adminapi.Subscription) int { return a.EID.Compare(b.EID) })
	return out
}

func apiEID(e mapping.EID) adminapi.EID { return adminapi.EID{InstanceID: e.IID, EIDPrefix: e.Prefix} }

// Registrations is the number of registered EID prefixes.
func (s *Server) Registrations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regs.Len()
}

// maxMoveLog bounds the move log: a mass migration of more hosts keeps the
// last ones.
const maxMoveLog = 4096

// logMoveLocked appends a move to the log, forgetting the oldest past
// maxMoveLog.
func (s *Server) logMoveLocked(m adminapi.SiteMove) {
	if len(s.moveLog) >= maxMoveLog {
		n := copy(s.moveLog, s.moveLog[len(s.moveLog)-maxMoveLog+1:])
		s.moveLog = s.moveLog[:n]
	}
	s.moveLog = append(s.moveLog, m)
}

// Moves returns the move log, oldest first: every move, or those from or
// to the site named site when it is not empty.
func (s *Server) Moves(site string) []adminapi.SiteMove {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]adminapi.SiteMove, 0, len(s.moveLog))
	for _, m := range s.moveLog {
		if site == "" || m.FromSite == site || m.ToSite == site {
			out = append(out, m)
		}
	}
	return out
}
