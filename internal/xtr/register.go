package xtr

import (
	"net/netip"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// databaseRecords builds the EID-records of the whole database, as an ETR
// registers and answers them: authoritative, its locators marked local.
func (s *Server) databaseRecords() []wire.EIDRecord {
	var recs []wire.EIDRecord
	for _, e := range s.db.All() {
		recs = append(recs, s.dbRecord(e, netip.Addr{}))
	}
	return recs
}

func (s *Server) dbRecord(e *DatabaseEntry, probed netip.Addr) wire.EIDRecord {
	m := mapping.Mapping{EID: e.EID, TTL: s.opts.RecordTTL, Authoritative: true}
	for _, l := range e.Locators {
		l.Flags |= wire.LocatorLocal | wire.LocatorReachable
		if probed.IsValid() && l.Addr == probed {
			l.Flags |= wire.LocatorProbed
		}
		m.Locators = append(m.Locators, l)
	}
	return m.Record()
}

// registerDueLocked sends the periodic Map-Register to every Map-Server
// whose time has come, and retransmits those still waiting for their
// Map-Notify: after 1 s, doubling to at most a minute (RFC 9301 §5.7).
func (s *Server) registerDueLocked(now time.Time) {
	for _, p := range s.peers {
		switch {
		case !now.Before(p.nextRegister):
			p.nextRegister = now.Add(jitter(s.opts.RegisterInterval))
			p.retryWait = time.Second
			s.sendRegisterLocked(p, now)
		case p.waiting && !now.Before(p.retryAt):
			p.retryWait = min(2*p.retryWait, time.Minute)
			s.c.registerRetrans.Inc()
			s.sendRegisterLocked(p, now)
		}
	}
}

// jitter spreads periodic sends by up to 5% so a thousand xTRs restarted
// together do not register in lock-step.
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand64n(int64(d)/20+1))
}

func (s *Server) sendRegisterLocked(p *peerState, now time.Time) {
	recs := s.databaseRecords()
	if len(recs) == 0 {
		return
	}
	m := &wire.MapRegister{ProxyReply: p.ProxyReply, WantMapNotify: p.WantMapNotify}
	if !s.sendRegisterToLocked(p, m, recs) {
		return
	}
	p.lastNonce, p.lastSent = m.Nonce, now
	p.registers++
	s.c.registers.Inc()
	if p.WantMapNotify {
		p.waiting = true
		p.retryAt = now.Add(p.retryWait)
	}
}

// sendRegisterToLocked fills in m's authentication body (next nonce, the
// peer's key, our xTR-ID and site-ID, recs), signs it and sends it.
func (s *Server) sendRegisterToLocked(p *peerState, m *wire.MapRegister, recs []wire.EIDRecord) bool {
	s.nonce++
	m.AuthBody = wire.AuthBody{Nonce: s.nonce, KeyID: p.KeyID, Algorithm: p.Alg, Records: recs,
		HasXTRID: true, XTRID: s.opts.XTRID, SiteID: s.opts.SiteID}
	b, err := wire.EncodeSigned(m, p.Secret, wire.AuthOptions{})
	if err != nil {
		s.log.Error("cannot encode Map-Register", "err", err)
		return false
	}
	src, _ := s.localRLOC(p.Addr)
	s.opts.Sender.Send(b, src, netip.AddrPortFrom(p.Addr, wire.ControlPort))
	return true
}

// HandleMapNotify is the xTR's control.Handler of Map-Notifies: the
// acknowledgement of one of our Map-Registers, or an unsolicited one
// (pub/sub publication, a merged locator set) which is verified (over
// r.Raw), applied and acknowledged.
func (s *Server) HandleMapNotify(r *control.Request, out control.Sender) control.DropReason {
	m, ok := r.Msg.(*wire.MapNotify)
	if !ok {
		return control.DropUnexpectedType
	}
	moved := s.handleMapNotify(r.Raw, m, r.Src, r.Local.Addr(), out)
	if s.opts.OnMovedAway != nil {
		for _, mp := range moved {
			s.opts.OnMovedAway(mp.EID, mp)
		}
	}
	return control.Handled
}

func (s *Server) handleMapNotify(raw []byte, m *wire.MapNotify, src netip.AddrPort, local netip.Addr, out control.Sender) (moved []mapping.Mapping) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peerFor(src.Addr(), m.KeyID)
	if p == nil || wire.Verify(raw, p.Secret, wire.AuthOptions{}) != nil {
		s.c.notifyBadAuth.Inc()
		return nil
	}
	now := s.opts.Now()
	if p.waiting && m.Nonce == p.lastNonce {
		p.waiting = false
		p.lastNotify = now
		p.notifies++
		s.c.notifies.Inc()
		if len(s.arrived) > 0 {
			s.smrArrivedLocked(now)
		}
		return nil
	}
	// Unsolicited: a publication for our map-cache, news about our own
	// prefixes (merged set) that needs only an ack, or a dynamic-EID host of
	// ours registered elsewhere.
	moved = s.movedLocked(m)
	s.c.movedAway.Add(uint64(len(moved)))
	if s.opts.ITR {
		s.applyPublicationLocked(m, now)
	}
	ack := &wire.MapNotifyAck{AuthBody: m.AuthBody}
	ack.AuthData = nil
	b, err := wire.EncodeSigned(ack, p.Secret, wire.AuthOptions{})
	if err != nil {
		return moved
	}
	out.Send(b, local, src)
	s.c.notifyAcks.Inc()
	return moved
}

// peerFor finds the Map-Server a Map-Notify claims to come from: by
// address, else (anycast, NAT) by key ID.
func (s *Server) peerFor(a netip.Addr, keyID uint8) *peerState {
	for _, p := range s.peers {
		if p.Addr == a && p.KeyID == keyID {
			return p
		}
	}
	for _, p := range s.peers {
		if p.KeyID == keyID {
			return p
		}
	}
	return nil
}
