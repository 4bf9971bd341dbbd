package mapserver

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// subscriber is one xTR subscribed to an EID prefix (RFC 9437). It is
// bound to the security association of its xTR-ID *within a site* (the
// site whose key signs its publications) and to the addresses that xTR
// registered from: publications go only there, so a stranger who knows an
// xTR-ID can neither point them at a victim nor take them over.
type subscriber struct {
	xtrID  [16]byte
	siteID uint64
	rlocs  []netip.Addr // ITR-RLOCs the xTR registered from: publications go to the first
	nonce  uint64       // last nonce used; publications use nonce+1
	local  netip.Addr
	site   *site     // security association: the site the xTR registers for
	x      *xtrState // that xTR's entry in its site
	// expires is when a temporary subscription ends (unix ns); 0 for one
	// that has seen a registration.
	expires int64
	ended   bool // removed: a late give-up of its Map-Notify changes nothing
}

// subKey names a subscription: one xTR of one site, one EID prefix. The
// site-ID a request carries is the requester's word, not part of it.
type subKey struct {
	site  string
	xtrID [16]byte
	eid   mapping.EID
}

// tombstone keeps the last nonce of an ended subscription for
// SubscriptionTTL: a request replayed with an old nonce stays refused.
type tombstone struct {
	nonce uint64
	until int64
}

// subscribeLocked records (or removes) the subscriptions a Map-Request with
// the N bit asks for. The mapping itself is answered the usual way too.
// Without a live registration (registered false) the subscription is
// temporary: it lasts SubscriptionTTL unless one appears.
func (s *Server) subscribeLocked(req *control.Request, m *wire.MapRequest, eid mapping.EID, registered bool) {
	if !m.Records[0].Notify {
		return
	}
	var rlocs []netip.Addr
	for _, a := range m.ITRRLOCs {
		if ip, ok := a.Addr(); ok && !ip.IsUnspecified() {
			rlocs = append(rlocs, ip)
		}
	}
	// An unsubscription has a single AFI-0 ITR-RLOC (RFC 9437 §6): its
	// owner is known by where it came from instead.
	unsubscribe := len(rlocs) == 0
	from := rlocs
	if unsubscribe {
		if req.ECM != nil {
			from = append(from, req.ECM.IP.Src)
		}
		from = append(from, req.Src.Addr())
	}
	st, x, bound, why := s.associationLocked(m.XTRID, from)
	if st == nil {
		// No security association with this xTR at these addresses: the
		// subscription fails and the request is answered as a plain
		// Map-Request.
		s.refuseSubscriptionLocked(why, req, eid)
		return
	}
	k := subKey{site: st.cfg.Name, xtrID: m.XTRID, eid: eid}
	subs, _ := s.subs.Get(eid)
	idx := slices.IndexFunc(subs, func(x *subscriber) bool { return x.xtrID == m.XTRID && x.site.cfg.Name == st.cfg.Name })
	floor, hasFloor := uint64(0), false
	if t, ok := s.tombs[k]; ok && t.until > s.now() {
		floor, hasFloor = t.nonce, true
	}
	if idx >= 0 {
		floor, hasFloor = subs[idx].nonce, true
	}
	if hasFloor && m.Nonce <= floor {
		s.refuseSubscriptionLocked(subNonce, req, eid)
		return
	}
	if unsubscribe {
		if idx >= 0 {
			s.endLocked(eid, subs[idx], m.Nonce)
			s.putSubs(eid, slices.Delete(subs, idx, idx+1))
			s.c.unsubscribe.Inc()
		} else {
			s.tombstoneLocked(k, m.Nonce)
		}
		s.notifySubscriberLocked(&subscriber{xtrID: m.XTRID, siteID: m.SiteID, rlocs: bound[:1],
			local: req.Local.Addr(), site: st, x: x, ended: true}, eid, m.Nonce)
		return
	}
	if idx < 0 {
		switch {
		case s.nsubs >= s.opts.MaxSubscriptions:
			s.refuseSubscriptionLocked(subLimit, req, eid)
			return
		case x.subs >= s.opts.MaxSubscriptionsPerXTR:
			s.refuseSubscriptionLocked(subXTRLimit, req, eid)
			return
		}
	}
	sub := &subscriber{xtrID: m.XTRID, siteID: m.SiteID, rlocs: bound, nonce: m.Nonce, local: req.Local.Addr(), site: st, x: x}
	if !registered {
		sub.expires = s.now() + int64(s.opts.SubscriptionTTL)
		s.ntemp++
	}
	delete(s.tombs, k)
	if idx >= 0 {
		old := subs[idx]
		s.forgetLocked(old)
		old.ended = true
		subs[idx] = sub
	} else {
		subs = append(subs, sub)
		s.nsubs++
		x.subs++
		s.c.subscribe.Inc()
	}
	s.putSubs(eid, subs)
	// The acknowledgement is a Map-Notify with the request's nonce and the
	// current mapping (RFC 9437 §5).
	s.notifySubscriberLocked(sub, eid, m.Nonce)
}

// Reasons a subscription is refused: the reason label of
// lisp_map_server_subscriptions_rejected_total.
const (
	subNoAssociation = iota // the xTR-ID registers for no site
	subUnbound              // not from an address the xTR registered from
	subNonce                // nonce not above the last (or a removed subscription's)
	subLimit                // max-subscriptions reached
	subXTRLimit             // max-subscriptions-per-xtr reached
	numSubReject
)

var subRejectLabels = [numSubReject]string{"no-association", "source-not-registered", "nonce-not-increasing",
	"limit", "xtr-limit"}

// subRejectLogs are the log messages of the refusals.
var subRejectLogs = [numSubReject]string{
	"subscription refused: xTR-ID registers for no site",
	"subscription refused: not from an address the xTR registers from",
	"subscription nonce not increasing (replay?)",
	"subscription limit reached",
	"subscription limit of the xTR reached",
}

// refuseSubscriptionLocked counts a refused subscription request and logs
// it at most once a minute per source: a flood of spoofed requests costs a
// counter, not a disk.
func (s *Server) refuseSubscriptionLocked(why int, req *control.Request, eid mapping.EID) {
	s.c.subRejected[why].Inc()
	if s.authLogDue(req.Src.Addr()) {
		s.log.Warn(subRejectLogs[why], "eid", eid, "source", req.Src.Addr(),
			"itr", req.ReplyTo.Addr(), "max-subscriptions", s.opts.MaxSubscriptions,
			"max-subscriptions-per-xtr", s.opts.MaxSubscriptionsPerXTR)
	}
}

// associationLocked finds the site a subscription request of xTR-ID id
// belongs to: among the sites the xTR-ID registers for (with a key, and
// registering lately), the one whose xTR registered from one of the
// addresses in from. It returns that site, the xTR, those addresses, and
// otherwise why there is none.
func (s *Server) associationLocked(id [16]byte, from []netip.Addr) (*site, *xtrState, []netip.Addr, int) {
	why := subNoAssociation
	var best *site
	var bx *xtrState
	var bound []netip.Addr
	now := s.now()
	for _, name := range s.byXTRID[id] {
		st, ok := s.sites[name]
		x := s.xtrs[name].xtrs[xtrKey{id: id}]
		if !ok || len(st.cfg.Keys) == 0 || x == nil || !s.registeringLocked(x, now) {
			continue
		}
		why = subUnbound
		var b []netip.Addr
		for _, a := range from {
			if x.boundTo(a) && !slices.Contains(b, a) {
				b = append(b, a)
			}
		}
		if len(b) > 0 && (bx == nil || x.last > bx.last) {
			best, bx, bound = st, x, b
		}
	}
	return best, bx, bound, why
}

// registeringLocked tells whether an xTR still counts as registering for
// pub/sub: its last Map-Register is less than the registration timeout
// plus subscription-ttl ago.
func (s *Server) registeringLocked(x *xtrState, now int64) bool {
	return !x.gone && now-x.last < int64(s.opts.RegistrationTimeout+s.opts.SubscriptionTTL)
}

// endLocked accounts for sub (of eid) leaving the table, whose last nonce
// was nonce; the caller removes it.
func (s *Server) endLocked(eid mapping.EID, sub *subscriber, nonce uint64) {
	s.forgetLocked(sub)
	sub.ended = true
	s.nsubs--
	sub.x.subs--
	s.tombstoneLocked(subKey{site: sub.site.cfg.Name, xtrID: sub.xtrID, eid: eid}, max(nonce, sub.nonce))
}

// tombstoneLocked remembers the last nonce of an ended subscription. The
// tombstones are bounded like the subscriptions: when full, expired ones
// go first, then any.
func (s *Server) tombstoneLocked(k subKey, nonce uint64) {
	now := s.now()
	if _, ok := s.tombs[k]; !ok && len(s.tombs) >= s.opts.MaxSubscriptions {
		maps.DeleteFunc(s.tombs, func(_ subKey, t tombstone) bool { return t.until <= now })
		for victim := range s.tombs {
			if len(s.tombs) < s.opts.MaxSubscriptions {
				break
			}
			delete(s.tombs, victim)
		}
	}
	s.tombs[k] = tombstone{nonce: nonce, until: now + int64(s.opts.SubscriptionTTL)}
}

// dropSubscriberLocked ends sub of eid when its Map-Notify was never
// acknowledged: the subscriber is gone (RFC 9437 §5), and publishing to
// it again would only send to a dead address.
func (s *Server) dropSubscriberLocked(eid mapping.EID, sub *subscriber) {
	if sub.ended {
		return
	}
	subs, _ := s.subs.Get(eid)
	i := slices.Index(subs, sub)
	if i < 0 {
		return
	}
	s.endLocked(eid, sub, sub.nonce)
	s.putSubs(eid, slices.Delete(subs, i, i+1))
	s.c.subDropped[dropUnacked].Inc()
	s.log.Info("subscriber dropped: Map-Notify never acknowledged", "eid", eid, "site", sub.site.cfg.Name,
		"itr", sub.rlocs[0])
}

// Reasons the Map-Server ends a subscription itself: the reason label of
// lisp_map_server_subscriptions_dropped_total.
const (
	dropUnacked = iota // its Map-Notify was never acknowledged
	dropXTRGone        // its xTR stopped registering
	numSubDrop
)

var subDropLabels = [numSubDrop]string{"unacknowledged", "xtr-not-registering"}

// resubscribeLocked points every subscription at its site's current
// configuration after a reload, so that publications are signed with the
// site's new key; subscriptions of a site that is gone, or has no key
// left, lose their security association and end.
func (s *Server) resubscribeLocked() {
	s.endSubscriptionsLocked(func(sub *subscriber) bool {
		cur, ok := s.sites[sub.site.cfg.Name]
		if ok && len(cur.cfg.Keys) > 0 {
			sub.site = cur
			return true
		}
		return false
	}, func(mapping.EID, *subscriber) { s.c.unsubscribe.Inc() })
}

// sweepSubscriptionsLocked ends, once a second, the temporary
// subscriptions whose time is up (RFC 9437 §5) and those of xTRs that
// stopped registering, and forgets expired tombstones.
func (s *Server) sweepSubscriptionsLocked(now int64) {
	if (s.nsubs == 0 && len(s.tombs) == 0) || now < s.nextSweep {
		return
	}
	s.nextSweep = now + int64(time.Second)
	maps.DeleteFunc(s.tombs, func(_ subKey, t tombstone) bool { return t.until <= now })
	s.endSubscriptionsLocked(func(sub *subscriber) bool {
		return (sub.expires == 0 || now < sub.expires) && s.registeringLocked(sub.x, now)
	}, func(eid mapping.EID, sub *subscriber) {
		if sub.expires != 0 && now >= sub.expires {
			s.c.subExpired.Inc()
			s.log.Info("temporary subscription expired", "eid", eid, "site", sub.site.cfg.Name)
			return
		}
		s.c.subDropped[dropXTRGone].Inc()
		s.log.Info("subscriber dropped: its xTR stopped registering", "eid", eid, "site", sub.site.cfg.Name)
	})
}

// endSubscriptionsLocked keeps the subscriptions keep says to keep and
// ends the others, calling ended for each.
func (s *Server) endSubscriptionsLocked(keep func(*subscriber) bool, ended func(mapping.EID, *subscriber)) {
	type update struct {
		eid  mapping.EID
		subs []*subscriber
	}
	var updates []update
	for eid, subs := range s.subs.All() {
		// The sweep runs every second over every subscription: allocate
		// only where one ends.
		if !slices.ContainsFunc(subs, func(sub *subscriber) bool { return !keep(sub) }) {
			continue
		}
		kept := subs[:0:0]
		for _, sub := range subs {
			if keep(sub) {
				kept = append(kept, sub)
			}
		}
		if len(kept) < len(subs) {
			updates = append(updates, update{eid, kept})
		}
	}
	// The table is changed after the walk, not during it.
	for _, u := range updates {
		old, _ := s.subs.Get(u.eid)
		for _, sub := range old {
			if !slices.Contains(u.subs, sub) {
				ended(u.eid, sub) // before endLocked clears expires
				s.endLocked(u.eid, sub, sub.nonce)
			}
		}
		s.putSubs(u.eid, u.subs)
	}
}

// forgetLocked keeps the count of temporary subscriptions as sub goes.
func (s *Server) forgetLocked(sub *subscriber) {
	if sub.expires != 0 {
		sub.expires = 0
		s.ntemp--
	}
}

func (s *Server) putSubs(eid mapping.EID, subs []*subscriber) {
	if len(subs) == 0 {
		s.subs.Delete(eid)
		return
	}
	s.subs.Insert(eid, subs)
}

// currentRecordLocked is what a subscriber of eid should cache now: the
// registration that covers it, or a negative record with TTL 0 when there
// is none (a withdrawal).
func (s *Server) currentRecordLocked(eid mapping.EID) wire.EIDRecord {
	now := s.now()
	if _, r, ok := s.regs.LookupPrefix(eid); ok && len(r.liveAt(now)) > 0 {
		return s.mappingLocked(r, now, false)
	}
	return wire.EIDRecord{TTL: 0, MaskLen: eid.MaskLen(), Action: wire.ActionNativelyForward, EID: eid.Address()}
}

func (s *Server) notifySubscriberLocked(sub *subscriber, eid mapping.EID, nonce uint64) {
	key := sub.site.cfg.Keys[0]
	n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, KeyID: key.ID, Algorithm: key.Alg,
		Records: []wire.EIDRecord{s.currentRecordLocked(eid)}, HasXTRID: true, XTRID: sub.xtrID, SiteID: sub.siteID}}
	// Another publication may still be pending under this nonce; the new
	// one supersedes it.
	s.unpendLocked(nonce)
	// Publications go to the ITR-RLOC the subscription named, directly:
	// an RTR relays no Map-Request, and an xTR behind NAT names only its
	// RLOCs not behind it (draft-ietf-lisp-nat-traversal §5.1.2).
	p := s.sendUnsolicitedLocked(n, key, sub.site.cfg.Name, sub.local, netip.AddrPortFrom(sub.rlocs[0], wire.ControlPort), netip.AddrPort{})
	if p != nil && !sub.ended {
		p.onGiveUp = func() { s.dropSubscriberLocked(eid, sub) }
	}
}

// publishLocked sends the current mapping of changed to every subscriber
// whose subscribed prefix overlaps it: less specifics (a new more-specific
// registration, e.g. a host that moved in) and more specifics alike.
func (s *Server) publishLocked(changed mapping.EID) {
	if s.nsubs == 0 {
		return
	}
	notify := func(eid mapping.EID, subs []*subscriber) {
		for _, sub := range subs {
			if _, r, ok := s.regs.LookupPrefix(eid); ok && r.hasLive(s.now()) {
				s.forgetLocked(sub) // it has seen a registration: it lasts
			}
			if s.movedOut != nil {
				s.gatherPublicationLocked(sub, eid)
			} else {
				sub.nonce++
				s.notifySubscriberLocked(sub, eid, sub.nonce)
			}
			s.c.published.Inc()
			var to netip.Addr
			if len(sub.rlocs) > 0 {
				to = sub.rlocs[0]
			}
			s.opts.Events.About(eid, adminapi.Event{Type: adminapi.EventPublication, Site: sub.site.cfg.Name, Peer: to})
		}
	}
	for eid, subs := range s.subs.Supernets(changed) {
		notify(eid, subs)
	}
	for eid, subs := range s.subs.Subnets(changed) {
		if eid != changed {
			notify(eid, subs)
		}
	}
}

// pubTo names a subscribed ITR: what a publication's header and
// destination depend on.
type pubTo struct {
	site   string
	xtrID  [16]byte
	siteID uint64
	local  netip.Addr
	dst    netip.Addr
}

// pubBatch is what one subscribed ITR is to be told.
type pubBatch struct {
	key   Key
	subs  []*subscriber
	eids  []mapping.EID // the subscribed prefix of each of subs
	dst   netip.AddrPort
	local netip.Addr
}

// gatherPublicationLocked queues the publication of eid to sub until the
// Map-Register being processed is done: a Map-Register that moves many
// hosts (a mass migration) then costs each subscribed ITR one Map-Notify
// with their records, not one per host.
func (s *Server) gatherPublicationLocked(sub *subscriber, eid mapping.EID) {
	if len(sub.rlocs) == 0 {
		return
	}
	to := pubTo{site: sub.site.cfg.Name, xtrID: sub.xtrID, siteID: sub.siteID, local: sub.local, dst: sub.rlocs[0]}
	b := s.pubOut[to]
	if b == nil {
		if s.pubOut == nil {
			s.pubOut = map[pubTo]*pubBatch{}
		}
		b = &pubBatch{key: sub.site.cfg.Keys[0], dst: netip.AddrPortFrom(to.dst, wire.ControlPort), local: sub.local}
		s.pubOut[to] = b
		s.pubOrder = append(s.pubOrder, to)
	}
	if !slices.Contains(b.subs, sub) { // several records of one Map-Register under one subscription
		b.subs = append(b.subs, sub)
		b.eids = append(b.eids, eid)
	}
}

// flushPublicationsLocked sends the publications gathered while a
// Map-Register was processed: per subscribed ITR, as few Map-Notifies as
// the size limits allow. RFC 9437 numbers publications per subscription,
// and an xTR takes a publication's nonce to name the latest subscription
// of its own below it that overlaps the record (and refuses one not above
// the last it took): one Map-Notify for several subscriptions carries a
// nonce above each one's last, and each of them counts on from it. Every
// subscription of the ITR that overlaps a changed prefix is in the batch,
// so whichever of them the ITR picks has been counted on.
func (s *Server) flushPublicationsLocked() {
	for _, to := range s.pubOrder {
		b := s.pubOut[to]
		recs := make([]wire.EIDRecord, len(b.eids))
		for i, eid := range b.eids {
			recs[i] = s.currentRecordLocked(eid)
		}
		for start := 0; start < len(recs); {
			end := start + notifyFits(to.dst, b.key, recs[start:])
			subs, eids := b.subs[start:end:end], b.eids[start:end:end]
			var nonce uint64
			for _, sub := range subs {
				nonce = max(nonce, sub.nonce+1)
			}
			for _, sub := range subs {
				sub.nonce = nonce
			}
			n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, KeyID: b.key.ID, Algorithm: b.key.Alg,
				Records: recs[start:end:end], HasXTRID: true, XTRID: to.xtrID, SiteID: to.siteID}}
			s.unpendLocked(nonce)
			if p := s.sendUnsolicitedLocked(n, b.key, to.site, b.local, b.dst, netip.AddrPort{}); p != nil {
				p.onGiveUp = func() {
					for i, sub := range subs {
						s.dropSubscriberLocked(eids[i], sub)
					}
				}
			}
			start = end
		}
	}
	clear(s.pubOut)
	s.pubOrder = s.pubOrder[:0]
}
