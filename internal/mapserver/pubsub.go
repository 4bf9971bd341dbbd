package mapserver

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// subscriber is one xTR subscribed to an EID prefix (RFC 9437).
type subscriber struct {
	xtrID  [16]byte
	siteID uint64
	rlocs  []netip.Addr // ITR-RLOCs: publications go to the first reachable
	nonce  uint64       // last nonce used; publications use nonce+1
	local  netip.Addr
	site   *site // security association: the site the xTR registers for
	// expires is when a temporary subscription ends (unix ns); 0 for one
	// that has seen a registration.
	expires int64
}

// subscribeLocked records (or removes) the subscriptions a Map-Request with
// the I bit asks for. The mapping itself is answered the usual way too.
// Without a live registration (registered false) the subscription is
// temporary: it lasts SubscriptionTTL unless one appears.
func (s *Server) subscribeLocked(req *control.Request, m *wire.MapRequest, eid mapping.EID, registered bool) {
	if !m.Records[0].Notify {
		return
	}
	st, ok := s.xtrSites[m.XTRID]
	if !ok || len(st.cfg.Keys) == 0 {
		// No security association with this xTR: the subscription fails
		// and the request is answered as a plain Map-Request.
		s.c.subRejected.Inc()
		s.log.Info("subscription refused: xTR-ID registers for no site", "eid", eid, "itr", req.ReplyTo.Addr())
		return
	}
	subs, _ := s.subs.Get(eid)
	idx := slices.IndexFunc(subs, func(x *subscriber) bool { return x.xtrID == m.XTRID && x.siteID == m.SiteID })
	if idx >= 0 && m.Nonce <= subs[idx].nonce {
		s.c.subRejected.Inc()
		s.log.Warn("subscription nonce not increasing (replay?)", "eid", eid, "itr", req.ReplyTo.Addr())
		return
	}
	var rlocs []netip.Addr
	for _, a := range m.ITRRLOCs {
		if ip, ok := a.Addr(); ok {
			rlocs = append(rlocs, ip)
		}
	}
	if len(rlocs) == 0 { // a single AFI-0 ITR-RLOC: unsubscribe (RFC 9437 §6)
		if idx >= 0 {
			s.forgetLocked(subs[idx])
			subs = slices.Delete(subs, idx, idx+1)
			s.nsubs--
			s.c.unsubscribe.Inc()
			s.putSubs(eid, subs)
		}
		s.notifySubscriberLocked(&subscriber{xtrID: m.XTRID, siteID: m.SiteID, rlocs: []netip.Addr{req.ReplyTo.Addr()},
			local: req.Local.Addr(), site: st}, eid, m.Nonce)
		return
	}
	if idx < 0 && s.nsubs >= s.opts.MaxSubscriptions {
		s.c.subRejected.Inc()
		s.log.Warn("subscription limit reached", "max", s.opts.MaxSubscriptions)
		return
	}
	sub := &subscriber{xtrID: m.XTRID, siteID: m.SiteID, rlocs: rlocs, nonce: m.Nonce, local: req.Local.Addr(), site: st}
	if !registered {
		sub.expires = s.now() + int64(s.opts.SubscriptionTTL)
		s.ntemp++
	}
	if idx >= 0 {
		s.forgetLocked(subs[idx])
		subs[idx] = sub
	} else {
		subs = append(subs, sub)
		s.nsubs++
		s.c.subscribe.Inc()
	}
	s.putSubs(eid, subs)
	// The acknowledgement is a Map-Notify with the request's nonce and the
	// current mapping (RFC 9437 §5).
	s.notifySubscriberLocked(sub, eid, m.Nonce)
}

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

// expireSubscriptionsLocked ends the temporary subscriptions whose time
// is up (RFC 9437 §5).
func (s *Server) expireSubscriptionsLocked(now int64) {
	if s.ntemp == 0 || now < s.nextSweep {
		return
	}
	s.nextSweep = now + int64(time.Second)
	s.endSubscriptionsLocked(func(sub *subscriber) bool { return sub.expires == 0 || now < sub.expires },
		func(eid mapping.EID, sub *subscriber) {
			s.c.subExpired.Inc()
			s.log.Info("temporary subscription expired", "eid", eid, "site", sub.site.cfg.Name)
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
				s.forgetLocked(sub)
				s.nsubs--
				ended(u.eid, sub)
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
	delete(s.pending, nonce)
	s.sendUnsolicitedLocked(n, key, sub.local, netip.AddrPortFrom(sub.rlocs[0], wire.ControlPort))
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
			sub.nonce++
			s.notifySubscriberLocked(sub, eid, sub.nonce)
			s.c.published.Inc()
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
