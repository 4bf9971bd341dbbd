package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Dynamic-EID hosts (dynamic EIDs). The dynamic-EID manager decides when a host
// arrived, left or went silent; the xTR turns that into registrations,
// map-cache "away" entries and SMRs.

type hostITR struct {
	host mapping.EID
	itr  netip.Addr
}

// awaySource marks map-cache entries of hosts that moved away from us.
const awaySource = "away"

// AddHost puts a dynamic-EID host detected here into the database and
// registers it with every Map-Server at once. It reports whether the host
// was new (or its locators changed).
func (s *Server) AddHost(eid mapping.EID, locs []mapping.Locator) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	locs = slices.Clone(locs)
	mapping.SortLocators(locs)
	if e, ok := s.dynamic[eid]; ok && slices.Equal(e.Locators, locs) {
		return false
	}
	s.dynamic[eid] = &DatabaseEntry{EID: eid, Locators: locs}
	// A host that is here now is no longer cached elsewhere.
	s.removeLocked(eid)
	s.setDatabaseLocked(s.opts.Database)
	s.c.hostsAdded.Inc()
	now := s.opts.Now()
	for _, p := range s.peers {
		p.nextRegister = now
	}
	s.registerDueLocked(now)
	// Our database changed: ITRs that talk to us may cache the host at
	// another site (RFC 9301 §6.1). The SMR goes once a Map-Server has
	// acknowledged the registration: sooner, the Map-Request it invokes
	// could still find the old site.
	s.arrived = append(s.arrived, eid)
	if !slices.ContainsFunc(s.peers, func(p *peerState) bool { return p.waiting }) {
		s.smrArrivedLocked(now)
	}
	return true
}

// RemoveHost takes a dynamic-EID host out of the database. withdraw says the
// host went silent rather than moved: the Map-Servers are told to drop it
// (a Map-Register with the T bit and record TTL 0) instead of waiting for
// the registration to time out.
func (s *Server) RemoveHost(eid mapping.EID, withdraw bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.dynamic[eid]
	if !ok {
		return false
	}
	delete(s.dynamic, eid)
	s.setDatabaseLocked(s.opts.Database)
	s.c.hostsRemoved.Inc()
	if withdraw {
		for _, p := range s.peers {
			s.sendWithdrawLocked(p, e)
		}
	}
	return true
}

// Hosts returns the dynamic-EID hosts in the database.
func (s *Server) Hosts() []DatabaseEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DatabaseEntry, 0, len(s.dynamic))
	for _, e := range s.dynamic {
		out = append(out, *e)
	}
	return out
}

func (s *Server) sendWithdrawLocked(p *peerState, e *DatabaseEntry) {
	if s.withdrawEntryLocked(p, e) {
		s.c.hostsWithdrawn.Inc()
	}
}

// withdrawEntryLocked deregisters e from one Map-Server: a Map-Register
// with the T bit and record TTL 0.
func (s *Server) withdrawEntryLocked(p *peerState, e *DatabaseEntry) bool {
	rec := s.dbRecord(e, netip.Addr{})
	rec.TTL = 0
	return s.sendRegisterToLocked(p, &wire.MapRegister{UseTTL: true}, []wire.EIDRecord{rec})
}

// SetAway installs the new location of a host that moved away from us in
// the map-cache (the data plane re-encapsulates traffic still arriving
// for it there) and sends an SMR for the host to every ITR that sent us
// traffic lately, so they ask the mapping system again.
func (s *Server) SetAway(to mapping.Mapping, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	e, exists := s.cacheIdx[to.EID]
	if !exists {
		e = &cacheEntry{created: now}
		s.cache.Insert(to.EID, e)
		s.cacheIdx[to.EID] = e
	}
	e.m, e.expires, e.source = to, now.Add(ttl), awaySource
	s.programLocked(e)
	s.smrHostLocked(to.EID, now)
}

// ClearAway removes the away entry of a host (it came back, or the entry
// aged out).
func (s *Server) ClearAway(eid mapping.EID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.cacheIdx[eid]; ok && e.source == awaySource {
		s.removeLocked(eid)
	}
}

// AwayHit hears that an ITR still sends us traffic for a host that moved
// away (the data plane forwarded it to the new site): that ITR has a stale
// mapping, perhaps learnt before the move and never refreshed, so it gets
// an SMR for the host, at most once a second.
func (s *Server) AwayHit(itr netip.Addr, iid uint32, host netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	eid, e, ok := s.cache.LookupPrefix(mapping.HostEID(iid, host))
	if !ok || e.source != awaySource {
		return
	}
	now := s.opts.Now()
	k := itrInstance{itr, iid}
	r := s.recentITRs[k]
	r.seen = now
	s.recentITRs[k] = r
	s.smrHostToLocked(eid, k, r, now)
}

// smrArrivedLocked sends the SMRs for hosts that arrived, once registered.
func (s *Server) smrArrivedLocked(now time.Time) {
	for _, eid := range s.arrived {
		if _, ok := s.dynamic[eid]; ok {
			s.smrHostLocked(eid, now)
		}
	}
	s.arrived = s.arrived[:0]
}

// smrHostLocked solicits a Map-Request for one moved host from each recent
// ITR, at most once a second per (host, ITR): unlike a database change,
// a move must reach every ITR even if another SMR just went out.
func (s *Server) smrHostLocked(host mapping.EID, now time.Time) {
	for k, r := range s.recentITRs {
		if k.iid == host.IID && now.Sub(r.seen) <= time.Minute {
			s.smrHostToLocked(host, k, r, now)
		}
	}
	if len(s.hostSMR) > 4096 {
		for k, t := range s.hostSMR {
			if now.Sub(t) > time.Second {
				delete(s.hostSMR, k)
			}
		}
	}
}

func (s *Server) smrHostToLocked(host mapping.EID, to itrInstance, r recentITR, now time.Time) {
	k := hostITR{host, to.rloc}
	if now.Sub(s.hostSMR[k]) < time.Second {
		return
	}
	if s.sendSMRLocked(host, to, r) {
		s.hostSMR[k] = now
		s.c.smrHost.Inc()
	}
}

// movedLocked returns the records of an unsolicited Map-Notify that say a
// dynamic-EID host of ours is now registered with locators none of which are
// ours: it moved.
func (s *Server) movedLocked(m *wire.MapNotify) []mapping.Mapping {
	var out []mapping.Mapping
	for i := range m.Records {
		mp, ok := mapping.FromRecord(&m.Records[i])
		if !ok {
			continue
		}
		mine, ok := s.dynamic[mp.EID]
		if !ok || len(mp.Locators) == 0 {
			continue
		}
		ours := slices.ContainsFunc(mp.Locators, func(l mapping.Locator) bool {
			return slices.Contains(s.opts.LocalRLOCs, l.Addr) ||
				slices.ContainsFunc(mine.Locators, func(o mapping.Locator) bool { return o.Addr == l.Addr })
		})
		if !ours {
			out = append(out, mp)
		}
	}
	return out
}
