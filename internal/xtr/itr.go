package xtr

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

func rand64n(n int64) int64 { return rand.Int64N(n) }

// Rate limits of Map-Requests (RFC 9301 §5.3) and SMR-invoked ones (§6.1).
const (
	requestInterval  = time.Second
	requestHoldAfter = 10
	requestHold      = 30 * time.Second
	smrInterval      = 3 * time.Second
	smrBurst         = 200 * time.Millisecond
	smrTokens        = 3 // SMR-invoked requests a cached entry may send at once
	requestTimeout   = 2 * time.Second
)

// Miss asks the mapping system for dst, as a data-plane miss with no
// known source does.
func (s *Server) Miss(iid uint32, dst netip.Addr) { s.MissFrom(iid, dst, netip.Addr{}) }

// MissFrom is called by the data plane when a packet from src to dst
// found no map-cache entry: src, the packet's source EID, is the
// Map-Request's Source-EID (RFC 9301 §5.3), which an ETR keeps to know
// whom to SMR.
func (s *Server) MissFrom(iid uint32, dst, src netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.misses.Inc()
	s.requestFromLocked(mapping.HostEID(iid, dst), src, false)
}

// SendMapRequest is called by the data plane when a send-map-request
// negative entry matched a packet from src to dst.
func (s *Server) SendMapRequest(iid uint32, dst, src netip.Addr) { s.MissFrom(iid, dst, src) }

// Resolve asks the mapping system for eid now (subject to the rate limit).
func (s *Server) Resolve(eid mapping.EID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requestLocked(eid, false)
}

// requestLocked sends an ECM'd Map-Request for eid to a Map-Resolver,
// unless the rate limit says wait. A refresh uses the cached prefix as the
// rate-limit key, so all hosts of one prefix share one budget.
func (s *Server) requestLocked(eid mapping.EID, smr bool) bool {
	return s.requestFromLocked(eid, netip.Addr{}, smr)
}

// requestFromLocked is requestLocked for a packet from src (invalid: none).
func (s *Server) requestFromLocked(eid mapping.EID, src netip.Addr, smr bool) bool {
	if !s.opts.ITR || len(s.opts.MapResolvers) == 0 {
		return false
	}
	now := s.opts.Now()
	key := eid
	// An SMR-invoked request for a host inside a cached prefix (a moved
	// dynamic-EID host) is the host's own: hosts moved together must not
	// share the prefix's unanswered count and hold.
	if p, _, ok := s.cache.LookupPrefix(eid); ok && !smr {
		key = p
	}
	st := s.reqs[key]
	if st == nil {
		st = &reqState{}
		s.reqs[key] = st
	}
	// An SMR-invoked request was admitted by its entry's own budget
	// (smrRefreshLocked): the interval of the other requests must not
	// swallow it while the one before is still unanswered.
	if now.Before(st.holdUntil) || (!smr && !st.last.IsZero() && now.Sub(st.last) < requestInterval) {
		s.c.requestsLimited.Inc()
		return false
	}
	st.last = now
	st.unanswered++
	if st.unanswered >= requestHoldAfter {
		st.holdUntil = now.Add(requestHold)
		st.unanswered = 0
	}
	// After two unanswered tries, the next Map-Resolver gets a turn.
	if st.unanswered > 0 && st.unanswered%2 == 0 {
		s.mrIndex++
	}
	return s.sendRequestLocked(eid, src, smr, s.opts.LISPSEC != SecOff, now)
}

// sendRequestLocked sends a Map-Request for eid (from src, when valid) to
// the Map-Resolver in use, LISP-SEC protected when protect, and keeps it
// pending.
func (s *Server) sendRequestLocked(eid mapping.EID, src netip.Addr, smr, protect bool, now time.Time) bool {
	mr := s.opts.MapResolvers[s.mrIndex%len(s.opts.MapResolvers)]
	itr, ok := s.localRLOC(mr)
	if !ok {
		return false
	}
	req := &wire.MapRequest{SMRInvoked: smr, PITR: s.opts.PITR, Nonce: s.newNonce(),
		Records: []wire.RequestRecord{{MaskLen: eid.MaskLen(), EID: eid.Address()}}}
	if src.IsValid() && !src.IsUnspecified() {
		req.SourceEID = mapping.HostEID(eid.IID, src).Address()
	}
	// The RLOC the request leaves from comes first: answers go to the
	// first ITR-RLOC of their family, and that one is reachable. RLOCs
	// behind a NAT are left out when it is not (§5.1.2 of the NAT
	// draft: the answer could not reach their private address).
	req.ITRRLOCs = append(req.ITRRLOCs, wire.AddrFromIP(itr))
	public := !s.natedLocked(itr)
	for _, a := range s.opts.LocalRLOCs {
		if a != itr && !(public && s.natedLocked(a)) {
			req.ITRRLOCs = append(req.ITRRLOCs, wire.AddrFromIP(a))
		}
	}
	subscribe := s.opts.Subscribe && !s.opts.PITR
	if subscribe {
		req.HasXTRID, req.XTRID, req.SiteID = true, s.opts.XTRID, s.opts.SiteID
		req.Records[0].Notify = true
		req.Nonce = s.subscriptionNonceLocked()
		s.subs[eid] = &subscription{start: req.Nonce, last: req.Nonce - 1}
	}
	sec, sent := s.sendECMLocked(req, eid, itr, mr, protect)
	if !sent {
		return false
	}
	s.pending[req.Nonce] = &pendingReq{eid: eid, sent: now, mr: mr, subscribe: subscribe, smr: smr, sec: sec}
	s.c.requests.Inc()
	return true
}

// sendECMLocked sends a Map-Request for eid in an ECM from itr to mr,
// protected by LISP-SEC when it is on: the returned request verifies the
// reply.
func (s *Server) sendECMLocked(req *wire.MapRequest, eid mapping.EID, itr, mr netip.Addr, protect bool) (*lispsec.Request, bool) {
	rloc, local := s.innerSources(eid.Prefix.Addr())
	ecm := wire.EncapsulateMapRequest(req, eid.Prefix.Addr(), wire.ControlPort, rloc, local)
	var sec *lispsec.Request
	if protect {
		var err error
		if sec, err = s.protectLocked(ecm, req.Nonce); err != nil {
			s.log.Warn("cannot protect Map-Request with LISP-SEC", "err", err)
			return nil, false
		}
	}
	b, err := wire.Encode(ecm)
	if err != nil {
		s.log.Warn("cannot encode Map-Request", "err", err)
		return nil, false
	}
	s.opts.Sender.Send(b, itr, netip.AddrPortFrom(mr, wire.ControlPort))
	return sec, true
}

// Unsubscribe ends every publish/subscribe subscription (RFC 9437 §6: a
// Map-Request with the N bit and a single ITR-RLOC of AFI 0), so that the
// Map-Server stops publishing to an xTR that is going away. lispd calls
// it on a clean shutdown; it returns how many it ended.
func (s *Server) Unsubscribe() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsubscribeLocked()
}

func (s *Server) unsubscribeLocked() int {
	if len(s.opts.MapResolvers) == 0 {
		return 0
	}
	mr := s.opts.MapResolvers[s.mrIndex%len(s.opts.MapResolvers)]
	itr, ok := s.localRLOC(mr)
	if !ok {
		return 0
	}
	n := 0
	for eid := range s.subs {
		req := &wire.MapRequest{Nonce: s.subscriptionNonceLocked(), ITRRLOCs: []wire.Address{{}},
			HasXTRID: true, XTRID: s.opts.XTRID, SiteID: s.opts.SiteID,
			Records: []wire.RequestRecord{{Notify: true, MaskLen: eid.MaskLen(), EID: eid.Address()}}}
		if _, sent := s.sendECMLocked(req, eid, itr, mr, false); sent {
			delete(s.subs, eid)
			n++
		}
	}
	s.c.unsubscribes.Add(uint64(n))
	return n
}

// subscription is what the ITR keeps of one pub/sub subscription: the
// Map-Server numbers its Map-Notifies for it from our request's nonce up,
// one per publication (RFC 9437 §5), and the xTR drops those that do not
// grow (§7: an old publication replayed must not reinstall a stale
// mapping).
type subscription struct {
	start uint64 // the subscribing request's nonce
	last  uint64 // the nonce of the last Map-Notify applied
}

// subscriptionNonceLocked is the nonce of a new subscription (or
// unsubscription): above every nonce used or seen so far, so that the
// Map-Server never refuses it as a replay, even for an EID whose state
// was pruned or from before a restart (it starts at the clock), while
// still unpredictable to an off-path sender.
func (s *Server) subscriptionNonceLocked() uint64 {
	for {
		s.subFloor += 1 + rand.Uint64N(1<<20)
		if _, busy := s.pending[s.subFloor]; !busy {
			return s.subFloor
		}
	}
}

// subscriptionForLocked finds the subscription a Map-Notify of nonce n
// about eid belongs to: among those overlapping eid, the one made last
// before n (every later one started above n).
func (s *Server) subscriptionForLocked(eid mapping.EID, n uint64) *subscription {
	var best *subscription
	for sub, st := range s.subs {
		if st.start <= n && (sub.Contains(eid) || eid.Contains(sub)) && (best == nil || st.start > best.start) {
			best = st
		}
	}
	return best
}

// pruneLocked forgets, once a second, the Map-Request state that has
// served its purpose: rate-limit state of EIDs not asked for since the
// hold ended, and subscriptions of EIDs no longer cached nor asked for.
func (s *Server) pruneLocked(now time.Time) {
	if now.Sub(s.prunedAt) < time.Second {
		return
	}
	s.prunedAt = now
	for eid, st := range s.reqs {
		if now.After(st.holdUntil) && now.Sub(st.last) > requestHold {
			delete(s.reqs, eid)
		}
	}
	asked := make(map[mapping.EID]bool, len(s.pending))
	for _, p := range s.pending {
		asked[p.eid] = true
	}
	for eid := range s.subs {
		if !asked[eid] && !s.cache.Overlaps(eid) {
			delete(s.subs, eid)
		}
	}
}

// innerSources are the candidates for the inner IP source of an ECM'd
// Map-Request for eid, of which wire takes the first of the EID's family:
// the RLOC we send from, else one of our EIDs of that family.
func (s *Server) innerSources(eid netip.Addr) (rloc, local netip.Addr) {
	rloc, _ = s.localRLOC(eid)
	for e := range s.db.All() {
		if a := e.Prefix.Addr(); a.Is4() == eid.Is4() {
			return rloc, a
		}
	}
	return rloc, netip.Addr{}
}

func (s *Server) expireRequestsLocked(now time.Time) {
	for n, p := range s.pending {
		if now.Sub(p.sent) > requestTimeout {
			delete(s.pending, n)
			s.c.requestTimeouts.Inc()
		}
	}
}

// HandleMapReply is the xTR's control.Handler of Map-Replies: an answer to
// one of our Map-Requests (matched by nonce; anything else is counted and
// dropped) or to an RLOC-probe.
func (s *Server) HandleMapReply(r *control.Request, _ control.Sender) control.DropReason {
	m, ok := r.Msg.(*wire.MapReply)
	if !ok {
		return control.DropUnexpectedType
	}
	s.mapReply(m, r.Raw, r.Src)
	return control.Handled
}

func (s *Server) mapReply(m *wire.MapReply, raw []byte, src netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if m.Probe {
		s.probeReplyLocked(m, src, now)
		return
	}
	p, ok := s.pending[m.Nonce]
	if !ok {
		s.c.replyUnsolicited.Inc()
		return
	}
	recs, verdict := s.verifyLocked(p, m, raw)
	if verdict == secDrop {
		return
	}
	delete(s.pending, m.Nonce)
	if verdict == secAskUnsigned {
		// No ETR of the EID can sign: optional allows asking again
		// without LISP-SEC (RFC 9303 §6.7 Table 1), and the ETR answers.
		s.sendRequestLocked(p.eid, netip.Addr{}, p.smr, false, now)
		return
	}
	s.c.replies.Inc()
	key := p.eid
	if pfx, _, ok := s.cache.LookupPrefix(p.eid); ok {
		key = pfx
	}
	delete(s.reqs, key)
	delete(s.reqs, p.eid)
	for _, mp := range s.answersLocked(p.eid, recs) {
		s.installLocked(mp, now, "map-reply", p.subscribe)
	}
}

// maxReplyRecords bounds the records taken from one Map-Reply: a
// Map-Server or an ETR answers with the record covering the EID asked
// for, and at most a few more-specifics of it.
const maxReplyRecords = 16

// answersLocked returns the records of a Map-Reply to our request for req
// that answer it (RFC 9301 §5.5, §9). The mapping system forwards our
// request to whichever ETR registered the EID, any tenant's: so only a
// record covering req, or a more-specific inside such a record (or inside
// req), is taken; and none that covers our own EIDs (no other site can be
// authoritative for them) or is a default route (no site registers
// everything). The rest is counted by reason. Without LISP-SEC an ETR can
// still claim a covering prefix larger than its own; that is what LISP-SEC
// (RFC 9303) is for.
func (s *Server) answersLocked(req mapping.EID, recs []wire.EIDRecord) []mapping.Mapping {
	if n := len(recs) - maxReplyRecords; n > 0 {
		s.c.replyRecordDrops["too-many-records"].Add(uint64(n))
		recs = recs[:maxReplyRecords]
	}
	var buf [2]mapping.Mapping
	ok := buf[:0]
	for i := range recs {
		mp, valid := mapping.FromRecord(&recs[i])
		if !valid {
			continue
		}
		switch {
		case mp.EID.Prefix.Bits() == 0:
			s.c.replyRecordDrops["too-broad"].Inc()
		case s.coversLocalLocked(mp.EID):
			s.c.replyRecordDrops["covers-local"].Inc()
		default:
			ok = append(ok, mp)
		}
	}
	out := ok[:0:0]
	for _, mp := range ok {
		answers := mp.EID.Contains(req) || req.Contains(mp.EID) ||
			slices.ContainsFunc(ok, func(c mapping.Mapping) bool { return c.EID.Contains(req) && c.EID.Contains(mp.EID) })
		if !answers {
			s.c.replyRecordDrops["not-requested"].Inc()
			continue
		}
		out = append(out, mp)
	}
	return out
}

// coversLocalLocked tells whether eid holds one of our own EIDs.
func (s *Server) coversLocalLocked(eid mapping.EID) bool {
	for range s.db.Subnets(eid) {
		return true
	}
	return false
}

// applyPublicationLocked installs the records of an unsolicited Map-Notify
// (RFC 9437 publication, or the answer to our subscription).
func (s *Server) applyPublicationLocked(m *wire.MapNotify, now time.Time) {
	for i := range m.Records {
		mp, ok := mapping.FromRecord(&m.Records[i])
		if !ok {
			continue
		}
		if _, mine, ok := s.db.LookupPrefix(mp.EID); ok && mine.EID.Contains(mp.EID) {
			continue // news about our own prefix: nothing to cache
		}
		sub := s.subscriptionForLocked(mp.EID, m.Nonce)
		switch {
		case sub == nil:
			s.c.notifyDrops["unsubscribed"].Inc()
			continue
		case m.Nonce <= sub.last:
			s.c.notifyDrops["replayed-publication"].Inc()
			s.replayLog(m, mp.EID)
			continue
		}
		sub.last = m.Nonce
		// Our next subscription must go above what the Map-Server has
		// counted up to, or it is refused as a replay.
		s.subFloor = max(s.subFloor, m.Nonce)
		s.c.publications.Inc()
		s.installLocked(mp, now, "map-notify", true)
		// The SMRs of the change the publication brought (a moved host's
		// old and new sites send one each, right after the Map-Server's
		// news) are answered already, as by an SMR-invoked request: in a
		// mass migration they would each bring a Map-Request and a new
		// subscription.
		if e, ok := s.cacheIdx[mp.EID]; ok {
			e.smr.last = now
		}
	}
}

// maxCacheTTL is the longest a mapping stays cached without being asked
// again: a day, the default record TTL (RFC 9301 §5.4), whatever larger
// value (up to 0xffffffff minutes, which no time.Duration holds) a record
// carries.
const maxCacheTTL = 24 * time.Hour

// cacheTTL is how long a record of TTL minutes stays cached.
func cacheTTL(minutes uint32) time.Duration {
	return time.Duration(min(minutes, uint32(maxCacheTTL/time.Minute))) * time.Minute
}

// installLocked puts a mapping in the map-cache and the data plane. TTL 0
// removes it (RFC 9301 §5.4).
func (s *Server) installLocked(mp mapping.Mapping, now time.Time, source string, subscribed bool) {
	if mp.TTL == 0 {
		if _, ok := s.cacheIdx[mp.EID]; ok {
			s.opts.Events.About(mp.EID, adminapi.Event{Type: adminapi.EventMapCacheExpire, Reason: "withdrawn"})
		}
		s.removeLocked(mp.EID)
		// A withdrawn more-specific (a host that moved away) falls back
		// to its covering prefix: re-resolve so traffic follows.
		s.requestLocked(mp.EID, false)
		return
	}
	ttl := cacheTTL(mp.TTL)
	e, exists := s.cacheIdx[mp.EID]
	if !exists {
		if len(s.cacheIdx) >= s.opts.MaxCacheEntries {
			s.evictLocked()
		}
		e = &cacheEntry{created: now}
		s.cache.Insert(mp.EID, e)
		s.cacheIdx[mp.EID] = e
	}
	changed := !exists || !sameLocators(e.m.Locators, mp.Locators)
	e.m, e.expires, e.source = mp, now.Add(ttl), source
	e.subscribed = e.subscribed || subscribed
	s.programLocked(e, now)
	s.c.installs.Inc()
	if changed {
		typ := adminapi.EventMapCacheUpdate
		if !exists {
			typ = adminapi.EventMapCacheInstall
		}
		s.opts.Events.About(mp.EID, adminapi.Event{Type: typ, Locators: events.Locators(mp.Locators), Reason: source})
	}
}

func (s *Server) programLocked(e *cacheEntry, learnt time.Time) {
	ce := CacheEntry{EID: e.m.EID, Negative: len(e.m.Locators) == 0, Action: e.m.Action, Expires: e.expires, Learnt: learnt}
	for _, l := range e.m.Locators {
		if !l.Reachable() {
			continue // R bit clear: must not encapsulate to it (RFC 9300 §9)
		}
		up := true
		if st, ok := s.rlocs[l.Addr]; ok {
			up = st.up
		}
		ce.Locators = append(ce.Locators, CacheLocator{Addr: l.Addr, Priority: l.Priority, Weight: l.Weight, Up: up})
	}
	s.opts.DataPlane.SetMapCache(ce)
}

func (s *Server) removeLocked(eid mapping.EID) {
	if _, ok := s.cacheIdx[eid]; !ok {
		return
	}
	delete(s.cacheIdx, eid)
	s.cache.Delete(eid)
	s.opts.DataPlane.DeleteMapCache(eid)
}

// evictLocked makes room by dropping, among a few entries picked at random,
// the one closest to expiry.
func (s *Server) evictLocked() {
	var victim *cacheEntry
	n := 0
	for _, e := range s.cacheIdx {
		if victim == nil || e.expires.Before(victim.expires) {
			victim = e
		}
		if n++; n >= 16 {
			break
		}
	}
	if victim != nil {
		s.removeLocked(victim.m.EID)
		s.c.evictions.Inc()
	}
}

// expireCacheLocked drops expired entries; subscribed entries are kept
// fresh by publications, others are re-requested shortly before expiry
// only if still in use (the data plane misses again otherwise).
func (s *Server) expireCacheLocked(now time.Time) {
	for eid, e := range s.cacheIdx {
		if now.After(e.expires) {
			s.removeLocked(eid)
			s.c.expired.Inc()
			s.opts.Events.About(eid, adminapi.Event{Type: adminapi.EventMapCacheExpire, Reason: "ttl"})
		}
	}
}

// handleSMRLocked answers a Solicit-Map-Request: if we cache the EID, ask
// the mapping system again (an SMR-invoked Map-Request), at most once per
// 3 s per prefix; the cached mapping stays in use meanwhile.
// optEID is an EID a message may lack.
type optEID struct {
	mapping.EID
	ok bool
}

func (o optEID) String() string {
	if !o.ok {
		return "-"
	}
	return o.EID.String()
}

// smrSource is the Source-EID of an SMR as a host EID of the record's
// instance ID; none when it carries no address (AFI 0).
func smrSource(m *wire.MapRequest, rec mapping.EID) optEID {
	a, ok := m.SourceEID.Addr()
	if !ok || !a.IsValid() || a.IsUnspecified() {
		return optEID{}
	}
	return optEID{mapping.HostEID(rec.IID, a), true}
}

// handleSMRLocked refreshes what an SMR says changed. Implementations
// disagree on where that is (RFC 9301 §6.1): lispd before 2026-12 named
// the changed prefix in both the Source-EID and the EID-record; Open
// Overlay Router, OpenDaylight and lispd now put the changed EID in the
// Source-EID and the receiver's own EID in the record. So: the record when
// it covers the Source-EID (or there is none), else the cached entry
// covering the Source-EID, else the record, else every cached mapping the
// sender is a locator of.
func (s *Server) handleSMRLocked(src optEID, rec mapping.EID, from netip.Addr) {
	s.c.smrReceived.Inc()
	if src.ok && !rec.Contains(src.EID) {
		if p, e, ok := s.cache.Related(src.EID); ok {
			s.smrRefreshLocked(narrowSMR(p, src.EID), e, from)
			return
		}
	}
	// More-specific cached entries under the SMR'd prefix count too.
	if p, e, ok := s.cache.Related(rec); ok {
		s.smrRefreshLocked(narrowSMR(p, rec), e, from)
		return
	}
	var found bool
	for eid, e := range s.cacheIdx {
		if slices.ContainsFunc(e.m.Locators, func(l mapping.Locator) bool { return l.Addr == from }) {
			s.smrRefreshLocked(eid, e, from)
			found = true
		}
	}
	if !found {
		s.c.smrUnmatched.Inc()
		// At most once a second: SMRs are unauthenticated, anyone can send them.
		if now := s.opts.Now(); now.Sub(s.smrLogAt) >= time.Second {
			s.smrLogAt = now
			s.log.Info("SMR refreshes nothing: no cached mapping matches it", "from", from, "record", rec,
				"source-eid", src)
		}
	}
}

// narrowSMR is what to ask for when an SMR names eid and p is cached: a
// host inside a cached prefix (a dynamic-EID host that moved) is asked for
// itself, since the covering prefix's answer would not change. A Source-EID
// that is the prefix's own network address names the prefix (Open Overlay
// Router sends the prefix that way: the field has no mask length).
func narrowSMR(p, eid mapping.EID) mapping.EID {
	if eid.Prefix.Bits() > p.Prefix.Bits() && p.Contains(eid) && eid.Prefix.Addr() != p.Prefix.Addr() {
		return eid
	}
	return p
}

// smrRefreshLocked asks again for p, cached as e, because of an SMR. A
// host inside e's prefix (a dynamic-EID host that moved) has a budget of
// its own: the SMRs of a hundred hosts moved together under one cached
// prefix must each bring their host's request, not the first one only.
func (s *Server) smrRefreshLocked(p mapping.EID, e *cacheEntry, from netip.Addr) {
	now := s.opts.Now()
	st := &e.smr
	if p != e.m.EID {
		st = s.smrHosts[p]
		if st == nil {
			if len(s.smrHosts) >= maxSMRHosts {
				s.pruneSMRHostsLocked(now)
			}
			if len(s.smrHosts) >= maxSMRHosts {
				s.c.smrCovered.Inc()
				return
			}
			st = &smrState{}
			s.smrHosts[p] = st
		}
	}
	// SMRs about one change come in a burst (a dynamic-EID host's old site
	// and new site both send one): the request the first one made
	// answers them all. A change missed this way still shows, as
	// traffic reaching the old site brings another SMR.
	if now.Sub(st.last) < smrBurst {
		s.c.smrCovered.Inc()
		return
	}
	// Beyond the burst, SMR-invoked requests are limited to one per 3 s
	// per EID on average (RFC 9301 §6.1) with a burst of smrTokens: a
	// late SMR of one move (an old site that learnt of it late, under
	// load) must not spend the only request a second move soon after
	// needs, which would then wait up to 3 s.
	if !st.take(now) || !s.smrAsked.Take(now.UnixNano(), smrBudgetRate, smrBudgetBurst) {
		// Within the rate limit: not dropped, but asked once it allows
		// (a host may move again and again).
		st.wanted, st.pending = p, true
		return
	}
	st.last, st.pending = now, false
	s.log.Debug("SMR received", "eid", p, "from", from)
	s.opts.Events.About(p, adminapi.Event{Type: adminapi.EventSMRReceived, Peer: from})
	s.requestLocked(p, true)
}

// maxSMRHosts bounds the hosts inside cached prefixes whose SMR-invoked
// requests are limited one by one: SMRs are unauthenticated, and the
// hosts they name are the sender's choice.
const maxSMRHosts = 4096

// pruneSMRHostsLocked forgets the hosts whose budget is whole again and
// that wait for nothing.
func (s *Server) pruneSMRHostsLocked(now time.Time) {
	for eid, st := range s.smrHosts {
		if !st.pending && now.Sub(st.last) >= smrTokens*smrInterval {
			delete(s.smrHosts, eid)
		}
	}
}

// take spends one of the SMR-invoked requests, which come back at one per
// smrInterval up to smrTokens.
func (st *smrState) take(now time.Time) bool {
	if st.refill.IsZero() {
		st.left, st.refill = smrTokens, now
	}
	if back := int(now.Sub(st.refill) / smrInterval); back > 0 {
		st.left = min(smrTokens, st.left+back)
		st.refill = st.refill.Add(time.Duration(back) * smrInterval)
	}
	if st.left == smrTokens {
		st.refill = now // a full budget starts its refill when spent
	}
	if st.left == 0 {
		return false
	}
	st.left--
	return true
}

// smrDueLocked sends the SMR-invoked Map-Requests held back by the rate
// limit whose time has come.
func (s *Server) smrDueLocked(now time.Time) {
	due := func(st *smrState) {
		if st.pending && st.take(now) && s.smrAsked.Take(now.UnixNano(), smrBudgetRate, smrBudgetBurst) {
			st.last, st.pending = now, false
			s.requestLocked(st.wanted, true)
		}
	}
	for _, e := range s.cacheIdx {
		due(&e.smr)
	}
	for _, st := range s.smrHosts {
		due(st)
	}
	if len(s.smrHosts) > maxSMRHosts/2 {
		s.pruneSMRHostsLocked(now)
	}
}

// ClearMapCache flushes the map-cache, or the entries inside prefix.
func (s *Server) ClearMapCache(prefix *mapping.EID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for eid := range s.cacheIdx {
		if prefix == nil || prefix.Contains(eid) {
			s.removeLocked(eid)
			n++
		}
	}
	return n
}

// sameLocators reports whether a and b are the same locator set in the
// same order: a refresh that changes nothing is no event.
func sameLocators(a, b []mapping.Locator) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Addr != b[i].Addr || a[i].Priority != b[i].Priority || a[i].Weight != b[i].Weight {
			return false
		}
	}
	return true
}
