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
// registers it with every Map-Server (the rest of the database is
// registered already). A host arriving alone goes at once, in a
// Map-Register of its own; hosts arriving together (a mass migration) go
// in batches, as many records per Map-Register as fit: those added within
// hostBatchWindow of the last batch wait for the window to end. It reports
// whether the host was new (or its locators changed); a new host is
// refused when its range holds as many hosts as it may.
func (s *Server) AddHost(eid mapping.EID, locs []mapping.Locator) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	locs = slices.Clone(locs)
	mapping.SortLocators(locs)
	old, known := s.dynamic[eid]
	if known && slices.Equal(old.Locators, locs) {
		return false
	}
	now := s.opts.Now()
	if !known && !s.hostRoomLocked(eid, now) {
		return false
	}
	e := &DatabaseEntry{EID: eid, Locators: locs}
	s.dynamic[eid] = e
	// A host that is here now is no longer cached elsewhere.
	s.removeLocked(eid)
	s.db.Insert(eid, e)
	s.localEIDsChangedLocked()
	s.c.hostsAdded.Inc()
	// Our database changed: ITRs that talk to us may cache the host at
	// another site (RFC 9301 §6.1). The SMR goes once a Map-Server has
	// acknowledged the registration: sooner, the Map-Request it invokes
	// could still find the old site.
	if !slices.Contains(s.arrived, eid) {
		s.arrived = append(s.arrived, eid)
	}
	if !slices.Contains(s.hostQueue, eid) {
		s.hostQueue = append(s.hostQueue, eid)
	}
	if s.hostBatching == 0 {
		s.hostsDueLocked(now)
	}
	return true
}

// HostBatch runs f, whose AddHost calls register together at its end: the
// addresses of one VM announced at once (IPv4 and IPv6), or the hosts of
// one detection round, go in one Map-Register. The data plane hears of the
// hosts f added and removed once, at its end.
func (s *Server) HostBatch(f func()) {
	s.mu.Lock()
	s.hostBatching++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.hostBatching--; s.hostBatching == 0 {
			if s.localStale {
				s.localEIDsChangedLocked()
			}
			s.hostsDueLocked(s.opts.Now())
		}
	}()
	f()
}

// localEIDsChangedLocked tells the data plane the database's EIDs, or,
// within a HostBatch, that they are to be told at its end.
func (s *Server) localEIDsChangedLocked() {
	if s.hostBatching > 0 {
		s.localStale = true
		return
	}
	s.localStale = false
	s.opts.DataPlane.SetLocalEIDs(s.localEIDsLocked())
}

// hostsDueLocked registers the queued hosts now, or at the end of the
// batch window when one is open.
func (s *Server) hostsDueLocked(now time.Time) {
	if s.hostTimer || len(s.hostQueue) == 0 {
		return
	}
	if wait := s.hostSentAt.Add(hostBatchWindow).Sub(now); wait > 0 {
		s.hostTimer = true
		s.opts.AfterFunc(wait, s.flushHosts)
		return
	}
	s.flushHostsLocked(now)
}

// hostBatchWindow is how long after a batch of host registrations the
// next waits, gathering the hosts that arrive meanwhile: a thousand VMs
// moved within a second go in Map-Registers of many records each instead
// of one each, while a host arriving alone is not delayed.
const hostBatchWindow = 20 * time.Millisecond

// flushHosts ends a batch window.
func (s *Server) flushHosts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostTimer = false
	s.flushHostsLocked(s.opts.Now())
}

// flushHostsLocked registers the queued hosts with every Map-Server, in as
// few Map-Registers as the size limits allow, and sends their SMRs when
// no Map-Server acknowledgement is to wait for.
func (s *Server) flushHostsLocked(now time.Time) {
	if len(s.hostQueue) == 0 {
		return
	}
	recs := make([]wire.EIDRecord, 0, len(s.hostQueue))
	for _, eid := range s.hostQueue {
		if e, ok := s.dynamic[eid]; ok {
			recs = append(recs, s.dbRecord(e, netip.Addr{}))
		}
	}
	s.hostQueue = s.hostQueue[:0]
	s.hostSentAt = now
	if len(recs) == 0 {
		return
	}
	s.c.hostBatches.Inc()
	for _, p := range s.peers {
		s.registerRecordsLocked(p, recs, now)
	}
	if !slices.ContainsFunc(s.peers, (*peerState).waiting) {
		s.smrArrivedLocked(now)
	}
}

// HostRange bounds the dynamic-EID hosts of one range: the Map-Servers
// and the data plane carry every host, so a LAN that shows an endless
// stream of addresses must not grow them without end.
type HostRange struct {
	EID      mapping.EID
	MaxHosts int
}

// hostRoomLocked tells whether a new host eid fits in its ranges; a
// refusal is counted and logged at most once a minute.
func (s *Server) hostRoomLocked(eid mapping.EID, now time.Time) bool {
	for _, r := range s.opts.HostRanges {
		if r.MaxHosts <= 0 || !r.EID.Contains(eid) {
			continue
		}
		n := 0
		for h := range s.dynamic {
			if r.EID.Contains(h) {
				n++
			}
		}
		if n >= r.MaxHosts {
			s.c.hostsRefused["range-full"].Inc()
			if now.Sub(s.hostLogAt) >= time.Minute {
				s.hostLogAt = now
				s.log.Warn("dynamic-EID host not registered: its range is full", "eid", eid, "range", r.EID,
					"max-hosts", r.MaxHosts)
			}
			return false
		}
	}
	return true
}

// localEIDsLocked lists the database's EIDs, configured and dynamic.
func (s *Server) localEIDsLocked() []mapping.EID {
	eids := make([]mapping.EID, 0, len(s.opts.Database)+len(s.dynamic))
	for i := range s.opts.Database {
		eids = append(eids, s.opts.Database[i].EID)
	}
	for eid := range s.dynamic {
		eids = append(eids, eid)
	}
	return eids
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
	s.db.Delete(eid)
	// A configured entry of the same prefix, which the host shadowed, is
	// back.
	for i := range s.opts.Database {
		if c := &s.opts.Database[i]; c.EID == eid {
			s.db.Insert(eid, c)
		}
	}
	s.localEIDsChangedLocked()
	s.c.hostsRemoved.Inc()
	s.hostQueue = slices.DeleteFunc(s.hostQueue, func(q mapping.EID) bool { return q == eid })
	// A Map-Register still waiting for its acknowledgement must not claim
	// the host again when it is retransmitted: it left (or went silent).
	for _, p := range s.peers {
		p.dropInflightLocked(eid)
	}
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
	s.programLocked(e, time.Time{})
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
	s.smrStaleITRLocked(itr, iid, eid)
}

// UnseenHostHit hears that an ITR sends us traffic for an address of one
// of our dynamic-EID ranges where no host of ours is. Its mapping is then
// most likely the covering prefix, resolved before the host registered at
// another site (a host's first packets can draw the reply's Map-Request
// ahead of the host's own Map-Register), and nothing else would correct it
// before the entry expires: our registration SMRs reach only the ITRs that
// talk to us about the host. The ITR gets an SMR for the address, at most
// once a second, and asks the mapping system again.
func (s *Server) UnseenHostHit(itr netip.Addr, iid uint32, host netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	eid := mapping.HostEID(iid, host)
	if _, ok := s.dynamic[eid]; ok {
		return // detected meanwhile: the data plane had not heard yet
	}
	s.c.unseenHits.Inc()
	s.smrStaleITRLocked(itr, iid, eid)
}

// smrStaleITRLocked counts itr as a recent ITR of iid, which it is, and
// sends it an SMR for eid (at most once a second per host and ITR).
func (s *Server) smrStaleITRLocked(itr netip.Addr, iid uint32, eid mapping.EID) {
	now := s.opts.Now()
	k := itrInstance{itr, iid}
	r := s.recent.get(k)
	r.seen = now
	if s.recent.put(k, r, false) {
		s.c.recentForgotten.Inc()
	}
	s.smrHostToLocked(eid, k, r, now)
}

// smrRegisteredLocked sends the SMRs of the arrived hosts among recs, the
// records of a Map-Register just acknowledged: a Map-Server holds them now.
func (s *Server) smrRegisteredLocked(recs []wire.EIDRecord, now time.Time) {
	s.arrived = slices.DeleteFunc(s.arrived, func(eid mapping.EID) bool {
		in := slices.ContainsFunc(recs, func(r wire.EIDRecord) bool {
			e, ok := mapping.FromWire(r.EID, r.MaskLen)
			return ok && e == eid
		})
		if in {
			if _, ok := s.dynamic[eid]; ok {
				s.smrHostLocked(eid, now)
			}
		}
		return in
	})
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
	for _, t := range s.smrTargetsLocked(now, func(k itrInstance) bool { return k.iid == host.IID }) {
		s.smrHostToLocked(host, t.k, t.r, now)
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
	if now.Sub(s.hostSMR[k]) < time.Second || !s.smrAllowLocked(now) {
		return
	}
	if s.sendSMRLocked(host, to, r) {
		s.hostSMR[k] = now
		s.c.smrHost.Inc()
	}
}

// moveKey names the last "moved" Map-Notify a Map-Server sent about a host.
type moveKey struct {
	ms   netip.Addr
	host mapping.EID
}

type moveSeen struct {
	nonce uint64
	at    time.Time
}

// Replay state of "moved" Map-Notifies is kept for every host while the
// table is small, and for a day once it is large.
const (
	moveMemory     = 24 * time.Hour
	moveTableSmall = 4096
)

// movedLocked returns the records of an unsolicited Map-Notify from the
// Map-Server at ms that say a dynamic-EID host of ours is now registered
// with locators none of which are ours: it moved. A Map-Server numbers
// these upwards; one whose nonce does not exceed the last such notify's
// about the host is an old one replayed (RFC 9437 §7 keeps the same rule
// for publications) and must not make us give up a host that came back:
// it is counted and ignored.
func (s *Server) movedLocked(ms netip.Addr, m *wire.MapNotify, now time.Time) []mapping.Mapping {
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
		// Behind a NAT we register the RTRs in place of our RLOCs: a
		// set naming them is ours too.
		_, rtrs, _ := s.natRouteLocked(ms)
		ours := slices.ContainsFunc(mp.Locators, func(l mapping.Locator) bool {
			return slices.Contains(s.opts.LocalRLOCs, l.Addr) || slices.Contains(rtrs, l.Addr) ||
				slices.ContainsFunc(mine.Locators, func(o mapping.Locator) bool { return o.Addr == l.Addr })
		})
		if ours {
			continue
		}
		k := moveKey{ms, mp.EID}
		if last, seen := s.moves[k]; seen && m.Nonce <= last.nonce {
			s.c.notifyDrops["replayed-move"].Inc()
			s.replayLog(m, mp.EID)
			continue
		}
		s.moves[k] = moveSeen{m.Nonce, now}
		// Whoever hears of the move turns the TTL into a time.Duration:
		// no more than the map-cache would keep it (0xffffffff minutes
		// overflows one).
		mp.TTL = min(mp.TTL, uint32(maxCacheTTL/time.Minute))
		out = append(out, mp)
	}
	if len(s.moves) > moveTableSmall {
		for k, v := range s.moves {
			if now.Sub(v.at) > moveMemory {
				delete(s.moves, k)
			}
		}
	}
	return out
}
