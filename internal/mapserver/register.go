package mapserver

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// maxRegistrationTTL bounds how long a Map-Register with the T bit may
// keep its registration: a record TTL is 32 bits of minutes (8000 years).
const maxRegistrationTTL = 365 * 24 * time.Hour

// HandleMapRegister is the Map-Server's control.Handler of Map-Registers.
// Authentication is checked over the bytes as received (r.Raw), never over
// a re-encoding.
func (s *Server) HandleMapRegister(r *control.Request, out control.Sender) control.DropReason {
	m, ok := r.Msg.(*wire.MapRegister)
	if !ok {
		return control.DropUnexpectedType
	}
	s.mapRegister(r.Raw, m, r.Src, r.Local.Addr(), out, nil)
	return control.Handled
}

// mapRegister processes a Map-Register received from src on local address
// local, relayed by the RTR at via when that is not nil.
func (s *Server) mapRegister(raw []byte, m *wire.MapRegister, src netip.AddrPort, local netip.Addr, out control.Sender, via *netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(m.Records) == 0 {
		s.c.badRecord.Inc()
		return
	}
	// The EIDs of this message, in a buffer kept across messages (we hold
	// s.mu and nothing keeps the slice).
	eids := slices.Grow(s.eidBuf[:0], len(m.Records))[:len(m.Records)]
	s.eidBuf = eids
	// The sites that may register every EID of the message. Usually one;
	// several when sites share a prefix (hosts that move between them), and
	// then the key decides. The array keeps the common case off the heap.
	var buf [4]*site
	var cands []*site
	for i := range m.Records {
		e, ok := mapping.FromWire(m.Records[i].EID, m.Records[i].MaskLen)
		if !ok {
			s.c.badRecord.Inc()
			s.authFailLog(src.Addr(), "Map-Register with a non-IP EID", nil)
			return
		}
		eids[i] = e
		if i == 0 {
			cands = s.sitesFor(buf[:0], e)
			if len(cands) == 0 {
				s.c.noSite.Inc()
				s.authFailLog(src.Addr(), "Map-Register for an EID no site may register", e)
				return
			}
			continue
		}
		cands = slices.DeleteFunc(cands, func(st *site) bool { return !s.mayRegister(st, e) })
		if len(cands) == 0 {
			s.c.outOfSite.Inc()
			s.authFailLog(src.Addr(), "Map-Register mixes EIDs no one site may register", e)
			return
		}
	}
	st, key, ok := s.authenticateLocked(raw, m, cands, src.Addr(), eids[0])
	if !ok {
		return
	}
	// One clock reading for the whole message: it is on the hot path.
	now := s.opts.Now()
	nowNs := now.UnixNano()
	adm, ok := s.admitLocked(st, m, src.Addr(), eids, nowNs)
	if !ok {
		return
	}
	// The old xTRs of the hosts this message moves are told once, at its end.
	s.movedOut = map[movedTo]*movedBatch{}
	defer s.flushMovedLocked()
	defer s.flushPublicationsLocked()
	for i := range m.Records {
		rec := &m.Records[i]
		reg := etrReg{src: src, local: local, keyID: m.KeyID, ttl: rec.TTL, version: rec.MapVersion, last: nowNs, via: via}
		timeout := s.opts.RegistrationTimeout
		if m.UseTTL {
			// Clamped before the product, which would overflow a Duration.
			timeout = time.Duration(min(rec.TTL, uint32(maxRegistrationTTL/time.Minute))) * time.Minute
		}
		reg.expires = nowNs + int64(timeout)
		if m.ProxyReply || via != nil {
			// Behind a NAT the xTR cannot take a forwarded Map-Request
			// at its local RLOC: we answer for it (draft §5.1.2).
			reg.flags |= flagProxy
		}
		if m.WantMapNotify {
			reg.flags |= flagWantNotify
		}
		if m.Merge {
			reg.flags |= flagMerge
		}
		if m.Security {
			reg.flags |= flagSecurity
		}
		if m.HasXTRID {
			reg.flags |= flagXTRID
			reg.xtrID, reg.siteID = m.XTRID, m.SiteID
		}
		for j := range rec.Locators {
			l, ok := mapping.LocatorFromWire(&rec.Locators[j])
			if !ok {
				continue
			}
			if !st.rlocAllowed(l.Addr) {
				s.c.rlocDenied.Inc()
				s.authFailLog(src.Addr(), "Map-Register with an RLOC the site may not use", eids[i])
				return
			}
			reg.locators = append(reg.locators, l)
		}
		mapping.SortLocators(reg.locators)
		if s.storeLocked(eids[i], st, reg, nowNs) {
			adm.changed = true
			if s.opts.Store != nil {
				s.digests[eids[i]] = digestOf(m.AuthData)
			}
		}
	}
	adm.accept(src.Addr(), nowNs)
	if s.opts.Store != nil && adm.x != nil && !st.cfg.LegacyNonces && (adm.changed || adm.first) {
		// The other nodes must refuse a replay of this one.
		k := NonceKey{Site: st.cfg.Name, KeyID: m.KeyID}
		if m.HasXTRID {
			k.XTRID = m.XTRID
		} else {
			k.Source = src.Addr()
		}
		s.opts.Store.Nonce(k, m.Nonce)
	}
	st.registers++
	st.lastRegister = now
	s.c.registerOK.Inc()
	if m.WantMapNotify {
		s.ackNotify(m, st.authenticator(key, s.opts.Auth), src, local, out)
	}
}

// authenticateLocked returns the first of cands (config order) holding a
// key with the message's key ID and algorithm that verifies it. When none
// does, every candidate counts an auth failure, and the message counts as
// bad-auth if some key was tried, else unknown-key-id.
func (s *Server) authenticateLocked(raw []byte, m *wire.MapRegister, cands []*site, src netip.Addr, eid mapping.EID) (*site, Key, bool) {
	st, key, tried := s.verifyLocked(raw, m.KeyID, m.Algorithm, cands)
	if st != nil {
		return st, key, true
	}
	if tried {
		s.c.badAuth.Inc()
		s.authFailLog(src, "Map-Register failed authentication", eid)
	} else {
		s.c.unknownKey.Inc()
		// Name what came and what the sites have: a key ID read from the
		// old 16-bit field (Open Overlay Router's key-type) is the usual
		// cause, and the counter alone does not show it.
		if s.authLogDue(src) {
			s.log.Warn("Map-Register with unknown key ID or algorithm", "source", src, "eid", eid,
				"key-id", m.KeyID, "algorithm", m.Algorithm.String(), "configured", configuredKeys(cands))
			s.opts.Events.Publish(adminapi.Event{Type: adminapi.EventAuthFailure, Peer: src, Reason: "unknown-key"})
		}
	}
	return nil, Key{}, false
}

// verifyLocked returns the first of cands (config order) holding a key
// with keyID and alg that verifies raw, a signed Map-Register or
// Info-Request as received. When none does, every candidate counts an
// auth failure, and tried says whether any key was tried at all.
func (s *Server) verifyLocked(raw []byte, keyID uint8, alg wire.AuthAlg, cands []*site) (_ *site, _ Key, tried bool) {
	for _, st := range cands {
		key, ok := st.key(keyID)
		if !ok || key.Alg != alg {
			continue
		}
		tried = true
		if st.authenticator(key, s.opts.Auth).Verify(raw) == nil {
			return st, key, true
		}
	}
	for _, st := range cands {
		st.authFailures++
	}
	return nil, Key{}, tried
}

// sameETR tells whether two registrations come from the same xTR: by
// xTR-ID when both have one, else by source address.
func sameETR(a, b *etrReg) bool {
	if a.flags&flagXTRID != 0 && b.flags&flagXTRID != 0 {
		return a.xtrID == b.xtrID && a.siteID == b.siteID
	}
	return a.src.Addr() == b.src.Addr()
}

// sameSite tells whether registrations a (of site sa) and b (of site sb)
// of one prefix come from one LISP site, whose locator sets merge: the same
// Map-Server site and the same site-ID. An xTR without xTR-ID/site-ID has
// site-ID 0 (the field is only set with the I bit).
func sameSite(sa *site, a *etrReg, sb *site, b *etrReg) bool {
	return sa == sb && a.siteID == b.siteID
}

// storeLocked records one xTR's registration of eid and reacts if the
// mapping others see changed. xTRs of the same site merge their locator
// sets; an xTR of another site (or site-ID) takes the prefix over: the EID
// moved (host mobility), so the previous xTRs lose it at once instead of
// serving a stale mapping until they time out. It reports whether this
// node's own registration of eid changed (more than a refresh).
func (s *Server) storeLocked(eid mapping.EID, st *site, reg etrReg, now int64) bool {
	if reg.expires <= now {
		return s.withdrawLocked(eid, st, &reg)
	}
	if s.staleAfterMoveLocked(eid, &reg) {
		s.c.staleAfterMove.Inc()
		return false
	}
	r, ok := s.regs.Get(eid)
	if !ok {
		r = &registration{eid: eid, site: st}
		s.regs.Insert(eid, r)
	}
	from := r.site
	before := r.merged(now)
	var moved []etrReg // live registrations of another site: they lose eid
	// own tells whether this node's own registration changes: new, other
	// content, or own entries dropped (the Store writes only then).
	own := !ok || from != st
	found := false
	keep := r.etrs[:0]
	for _, e := range r.etrs {
		switch {
		case sameSite(from, &e, st, &reg):
			if !sameETR(&e, &reg) {
				keep = append(keep, e)
			} else if e.flags&flagRemote == 0 {
				found = true
				own = own || !sameContent(&e, &reg)
			}
		case e.expires <= now:
			// Lapsed, waiting for Tick: it would have counted it.
			s.c.expired.Inc()
			own = own || e.flags&flagRemote == 0
		default:
			moved = append(moved, e)
			own = own || e.flags&flagRemote == 0
		}
	}
	own = own || !found
	// Clear what the filter left behind so the dropped locator slices can
	// be collected.
	clear(r.etrs[len(keep):])
	r.etrs = append(keep, reg)
	r.site = st
	r.reply = nil
	s.scheduleLocked(r)
	if own {
		s.storeChangedLocked(eid)
	}
	after := r.merged(now)
	switch {
	case !ok:
		s.log.Info("registered", "eid", eid, "site", st.cfg.Name, "by", reg.src.Addr())
		s.opts.Events.About(eid, adminapi.Event{Type: adminapi.EventRegistered, Site: st.cfg.Name, Peer: reg.src.Addr(), Locators: events.Locators(after)})
	case len(moved) > 0:
		mv := s.moved[eid]
		s.moved[eid] = moveStat{moves: mv.moves + 1, last: now}
		s.c.moves.Inc()
		s.log.Info("registration moved", "eid", eid, "from-site", from.cfg.Name, "to-site", st.cfg.Name,
			"from-site-id", moved[0].siteID, "to-site-id", reg.siteID, "from", moved[0].src.Addr(), "by", reg.src.Addr(),
			"locators", len(after))
		s.opts.Events.About(eid, adminapi.Event{Type: adminapi.EventRegistrationMoved, Site: st.cfg.Name, FromSite: from.cfg.Name,
			Peer: reg.src.Addr(), Locators: events.Locators(after)})
		s.logMoveLocked(adminapi.SiteMove{Time: time.Unix(0, now), EID: adminapi.EID{InstanceID: eid.IID, EIDPrefix: eid.Prefix},
			FromSite: from.cfg.Name, ToSite: st.cfg.Name, From: moved[0].src.Addr(), By: reg.src.Addr()})
	case !slices.Equal(before, after):
		s.log.Info("registration changed", "eid", eid, "site", st.cfg.Name, "locators", len(after))
		s.opts.Events.About(eid, adminapi.Event{Type: adminapi.EventRegistrationChanged, Site: st.cfg.Name, Peer: reg.src.Addr(), Locators: events.Locators(after)})
	default:
		return own
	}
	s.changedLocked(r, &reg)
	if len(moved) > 0 {
		s.notifyMovedLocked(r, from, moved, &reg)
	}
	return own
}

// withdrawLocked takes a registration that expires as it arrives (the T
// bit with record TTL 0: an xTR whose dynamic-EID host went silent) as that
// xTR's withdrawal of eid. It never moves eid away from another site. Only
// this node's own entry goes: a copy the xTR registered through another
// node of a cluster is withdrawn there. It reports whether it withdrew.
func (s *Server) withdrawLocked(eid mapping.EID, st *site, reg *etrReg) bool {
	r, ok := s.regs.Get(eid)
	// Only the site holding the prefix withdraws: another site sending
	// the same xTR-ID must not end its registration (issue 12, finding 10).
	if !ok || r.site != st {
		return false
	}
	n := len(r.etrs)
	r.etrs = slices.DeleteFunc(r.etrs, func(e etrReg) bool { return e.flags&flagRemote == 0 && sameETR(&e, reg) })
	if len(r.etrs) == n {
		return false
	}
	r.reply = nil
	s.storeChangedLocked(eid)
	s.c.withdrawn.Inc()
	s.log.Info("registration withdrawn", "eid", eid, "site", r.site.cfg.Name, "by", reg.src.Addr())
	s.opts.Events.About(eid, adminapi.Event{Type: adminapi.EventWithdrawn, Site: r.site.cfg.Name, Peer: reg.src.Addr()})
	if len(r.etrs) == 0 {
		s.regs.Delete(eid)
		delete(s.moved, eid)
		s.publishLocked(eid)
		return true
	}
	s.changedLocked(r, reg)
	return true
}

// notifyMovedLocked tells the xTRs that lost r's prefix to another site
// where it went: an unsolicited Map-Notify, signed with the key of their own
// site and retransmitted until acked, carrying the new mapping. The L and P
// bits are cleared: those locators are not the old xTR's own. An xTR that now
// registers the prefix for the other site itself needs no telling. While a
// Map-Register is processed (s.movedOut set) the records wait, gathered per
// old xTR, and go together at its end (flushMovedLocked): a batch of hosts
// that moved costs each old xTR one Map-Notify per batch, not one per host.
func (s *Server) notifyMovedLocked(r *registration, from *site, moved []etrReg, by *etrReg) {
	rec := s.mappingLocked(r, s.now(), false)
	for i := range moved {
		e := &moved[i]
		if sameETR(e, by) || e.flags&flagRemote != 0 {
			continue // told by its own node, which holds its address and sees the move
		}
		key, ok := from.key(e.keyID)
		if !ok {
			continue // its key was removed by a reload: it cannot check a notify
		}
		to := movedTo{site: from.cfg.Name, keyID: key.ID, local: e.local, dst: e.src, via: e.rtr()}
		if e.flags&flagXTRID != 0 {
			to.hasXTRID, to.xtrID, to.siteID = true, e.xtrID, e.siteID
		}
		if s.movedOut == nil {
			s.sendMovedLocked(to, key, []wire.EIDRecord{rec}, []mapping.EID{r.eid})
			continue
		}
		b := s.movedOut[to]
		if b == nil {
			b = &movedBatch{key: key}
			s.movedOut[to] = b
			s.movedOrder = append(s.movedOrder, to)
		}
		b.recs = append(b.recs, rec)
		b.eids = append(b.eids, r.eid)
	}
}

// leaving is an old xTR told that an EID moved, p the Map-Notify that
// tells it, still unacknowledged.
type leaving struct {
	to movedTo
	p  *pendingNotify
}

// staleAfterMoveLocked tells whether reg, an xTR's registration of eid,
// comes from an xTR that eid just moved away from and that has not
// acknowledged the news yet: its Map-Register was sent before the
// Map-Notify reached it (a periodic refresh crossing a move), and taking
// it would move eid back to where it no longer is, with both sites then
// believing it is at the other. Once the xTR has acknowledged, a
// registration of eid is a real return.
func (s *Server) staleAfterMoveLocked(eid mapping.EID, reg *etrReg) bool {
	for _, l := range s.leaving[eid] {
		if l.to.is(reg) {
			return true
		}
	}
	return false
}

// is tells whether reg comes from the xTR to names.
func (to movedTo) is(reg *etrReg) bool {
	if to.hasXTRID && reg.flags&flagXTRID != 0 {
		return to.xtrID == reg.xtrID && to.siteID == reg.siteID
	}
	return to.dst.Addr() == reg.src.Addr()
}

// movedTo names an old xTR that "moved" Map-Notifies go to.
type movedTo struct {
	site     string
	keyID    uint8
	local    netip.Addr
	dst      netip.AddrPort
	via      netip.AddrPort // the RTR its registration came through; zero: direct
	hasXTRID bool
	xtrID    [16]byte
	siteID   uint64
}

// movedBatch is what one old xTR is to be told.
type movedBatch struct {
	key  Key
	recs []wire.EIDRecord
	eids []mapping.EID // of recs
}

// Map-Notify sizes: like an xTR's Map-Register (RFC 9301 §5), at most 255
// records and what every path carries, 576 bytes towards IPv4 and 1,280
// towards IPv6, less the IP and UDP headers.
const (
	maxNotifyRecords = 255
	notifyBudget4    = 576 - 20 - 8
	notifyBudget6    = 1280 - 40 - 8
)

// sendMovedLocked sends recs, the records of eids, to an old xTR in as few
// Map-Notifies as fit; until it acknowledges one, its registrations of
// that one's EIDs are stale.
func (s *Server) sendMovedLocked(to movedTo, key Key, recs []wire.EIDRecord, eids []mapping.EID) {
	for start := 0; start < len(recs); {
		end := start + notifyFits(to.dst.Addr(), key, recs[start:])
		n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: s.newNonce(), KeyID: key.ID, Algorithm: key.Alg,
			Records: recs[start:end:end]}}
		if to.hasXTRID {
			n.HasXTRID, n.XTRID, n.SiteID = true, to.xtrID, to.siteID
		}
		if p := s.sendUnsolicitedLocked(n, key, to.site, to.local, to.dst, to.via); p != nil {
			p.moved = eids[start:end:end]
			for _, eid := range p.moved {
				s.leaving[eid] = append(s.leaving[eid], leaving{to: to, p: p})
			}
		}
		s.c.movedNotifies.Inc()
		start = end
	}
}

// notifyFits says how many of recs, from the first, one Map-Notify to dst
// signed with key carries (at least one).
func notifyFits(dst netip.Addr, key Key, recs []wire.EIDRecord) int {
	budget := notifyBudget6
	if dst.Unmap().Is4() {
		budget = notifyBudget4
	}
	// Header, nonce, key ID, algorithm, length and digest; xTR-ID and site-ID.
	size, n := 16+key.Alg.DigestLen()+24, 0
	for n < len(recs) && n < maxNotifyRecords && (n == 0 || size+recs[n].Len() <= budget) {
		size += recs[n].Len()
		n++
	}
	return n
}

// flushMovedLocked sends the "moved" Map-Notifies gathered while a
// Map-Register was processed and closes the batch.
func (s *Server) flushMovedLocked() {
	for _, to := range s.movedOrder {
		b := s.movedOut[to]
		s.sendMovedLocked(to, b.key, b.recs, b.eids)
	}
	s.movedOut, s.movedOrder = nil, s.movedOrder[:0]
}

// merged returns the union of the live xTRs' locator sets, sorted.
func (r *registration) merged(now int64) []mapping.Locator {
	var out []mapping.Locator
	for _, e := range r.etrs {
		if e.expires <= now {
			continue
		}
		for _, l := range e.locators {
			if !slices.ContainsFunc(out, func(o mapping.Locator) bool { return o.Addr == l.Addr }) {
				out = append(out, l)
			}
		}
	}
	mapping.SortLocators(out)
	return out
}

// changedLocked tells the world a registered mapping changed: subscribers
// get a publication, and when several xTRs share the prefix each gets an
// unsolicited Map-Notify with the merged set (RFC 9301 §5.7, RFC 8378).
func (s *Server) changedLocked(r *registration, by *etrReg) {
	s.publishLocked(r.eid)
	if len(r.etrs) < 2 {
		return
	}
	now := s.now()
	rec := s.mappingLocked(r, now, true)
	for i := range r.etrs {
		e := &r.etrs[i]
		if e.expires <= now || e.flags&flagRemote != 0 || (by != nil && sameETR(e, by)) {
			continue // a remote xTR is told by its own node
		}
		key, ok := r.site.key(e.keyID)
		if !ok {
			continue
		}
		n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: s.newNonce(), KeyID: key.ID, Algorithm: key.Alg,
			Records: []wire.EIDRecord{rec}}}
		if e.flags&flagXTRID != 0 {
			n.HasXTRID, n.XTRID, n.SiteID = true, e.xtrID, e.siteID
		}
		s.sendUnsolicitedLocked(n, key, r.site.cfg.Name, e.local, e.src, e.rtr())
	}
}

// mappingLocked builds the EID-record a Map-Reply or Map-Notify carries for
// a registration: the merged locators, the registered TTL. A Map-Server
// answering for ETRs clears the A and L bits (RFC 9301 §8.2).
func (s *Server) mappingLocked(r *registration, now int64, forNotify bool) wire.EIDRecord {
	m := mapping.Mapping{EID: r.eid, TTL: 1440}
	var newest int64
	for _, e := range r.etrs {
		if e.expires > now && e.last >= newest {
			newest, m.TTL, m.MapVersion = e.last, e.ttl, e.version
		}
	}
	m.Locators = r.merged(now)
	if !forNotify {
		for i := range m.Locators {
			m.Locators[i].Flags &^= wire.LocatorLocal | wire.LocatorProbed
		}
	}
	return m.Record()
}

// ackNotify answers a Map-Register that asked for it: the same fields,
// signed with the same key, back to where it came from.
func (s *Server) ackNotify(m *wire.MapRegister, auth *wire.Authenticator, src netip.AddrPort, local netip.Addr, out control.Sender) {
	n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: m.Nonce, KeyID: m.KeyID, Algorithm: m.Algorithm,
		Records: m.Records, HasXTRID: m.HasXTRID, XTRID: m.XTRID, SiteID: m.SiteID}}
	b, err := auth.EncodeSigned(n)
	if err != nil {
		s.log.Warn("cannot encode Map-Notify", "err", err)
		return
	}
	s.c.notifySent.Inc()
	out.Send(b, local, src)
}

// configuredKeys lists the keys of sites as "SITE: key-id N ALG, …" in a
// log line. It is a slog.LogValuer so that the text is made only when the
// (rate-limited) line is written, not for every packet of a flood.
type configuredKeys []*site

func (c configuredKeys) LogValue() slog.Value {
	var b strings.Builder
	for i, st := range c {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(st.cfg.Name)
		b.WriteString(":")
		for j, k := range st.cfg.Keys {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " key-id %d %s", k.ID, k.Alg)
		}
	}
	return slog.StringValue(b.String())
}

// authFailLog logs a rejected message at most once a minute per source,
// so a flood costs a counter, not a disk.
func (s *Server) authFailLog(src netip.Addr, msg string, eid any) {
	if s.authLogDue(src) {
		s.log.Warn(msg, "source", src, "eid", eid)
		// As rate-limited as the log line: a flood costs counters only.
		s.opts.Events.Publish(adminapi.Event{Type: adminapi.EventAuthFailure, Peer: src, Reason: msg})
	}
}

// authLogDue says whether a refused Map-Register from src may be logged
// now, and if so starts its minute.
func (s *Server) authLogDue(src netip.Addr) bool {
	now := s.now()
	if last, ok := s.authLog[src]; ok && now-last < int64(time.Minute) {
		return false
	}
	if len(s.authLog) > 10000 {
		clear(s.authLog)
	}
	s.authLog[src] = now
	return true
}
