package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/events"
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

// Map-Register sizes (RFC 9301 §5): the Record Count is 8 bits, and a
// Map-Register must fit the path MTU, which an ETR does not know. It
// assumes the least every path carries: 576 bytes towards an IPv4
// Map-Server (what every IPv4 host must accept, RFC 791), 1280 towards an
// IPv6 one (the IPv6 minimum MTU, RFC 8200), less the IP and UDP headers.
const (
	maxRegisterRecords = 255
	registerBudget4    = 576 - 20 - 8
	registerBudget6    = 1280 - 40 - 8
)

// registerBudget is the largest Map-Register sent to a Map-Server at ms.
func registerBudget(ms netip.Addr) int {
	if ms.Unmap().Is4() {
		return registerBudget4
	}
	return registerBudget6
}

// splitRecords cuts recs into the groups of the Map-Registers that carry
// them: at most 255 records and budget bytes each (a record too large
// alone still goes, alone).
func splitRecords(recs []wire.EIDRecord, alg wire.AuthAlg, budget int) [][]wire.EIDRecord {
	// Header, nonce, key ID, algorithm, length and digest; xTR-ID and site-ID.
	head := 16 + alg.DigestLen() + 24
	var out [][]wire.EIDRecord
	start, size := 0, head
	for i := range recs {
		n := recs[i].Len()
		if i > start && (i-start >= maxRegisterRecords || size+n > budget) {
			out = append(out, recs[start:i:i])
			start, size = i, head
		}
		size += n
	}
	if start < len(recs) {
		out = append(out, recs[start:])
	}
	return out
}

// pendingRegister is a Map-Register awaiting its Map-Notify: its records
// go again, under a new nonce, until one comes.
type pendingRegister struct {
	recs      []wire.EIDRecord
	retryAt   time.Time
	retryWait time.Duration
}

// waiting tells whether a Map-Register to p awaits its Map-Notify.
func (p *peerState) waiting() bool { return len(p.inflight) > 0 }

// dropInflightLocked takes eid's record out of the Map-Registers to p
// awaiting their Map-Notify, so that their retransmissions leave it out;
// one left with no record is forgotten.
func (p *peerState) dropInflightLocked(eid mapping.EID) {
	for nonce, pr := range p.inflight {
		keep := slices.DeleteFunc(slices.Clone(pr.recs), func(r wire.EIDRecord) bool {
			e, ok := mapping.FromWire(r.EID, r.MaskLen)
			return ok && e == eid
		})
		switch {
		case len(keep) == 0:
			delete(p.inflight, nonce)
		case len(keep) != len(pr.recs):
			pr.recs = keep
		}
	}
}

// registerDueLocked sends the periodic registration to every Map-Server
// whose time has come, and retransmits each Map-Register still waiting for
// its Map-Notify: after 1 s, doubling to at most a minute (RFC 9301 §5.7).
func (s *Server) registerDueLocked(now time.Time) {
	for _, p := range s.peers {
		if !now.Before(p.nextRegister) {
			p.nextRegister = now.Add(jitter(s.opts.RegisterInterval))
			// The whole database goes again: it carries whatever was
			// still waiting.
			clear(p.inflight)
			s.registerRecordsLocked(p, s.databaseRecords(), now)
			continue
		}
		for nonce, pr := range p.inflight {
			if now.Before(pr.retryAt) {
				continue
			}
			delete(p.inflight, nonce)
			pr.retryWait = min(2*pr.retryWait, time.Minute)
			s.c.registerRetrans.Inc()
			s.sendRegisterLocked(p, pr, now)
		}
	}
}

// jitter spreads periodic sends by up to 5% so a thousand xTRs restarted
// together do not register in lock-step.
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand64n(int64(d)/20+1))
}

// registerRecordsLocked registers recs with p in as many Map-Registers as
// they need.
func (s *Server) registerRecordsLocked(p *peerState, recs []wire.EIDRecord, now time.Time) {
	for _, part := range splitRecords(recs, p.Alg, registerBudget(p.Addr)) {
		s.sendRegisterLocked(p, &pendingRegister{recs: part, retryWait: time.Second}, now)
	}
}

// sendRegisterLocked sends one Map-Register of pr's records to p and, when
// p acknowledges them, keeps pr for retransmission until it does.
func (s *Server) sendRegisterLocked(p *peerState, pr *pendingRegister, now time.Time) {
	// S: we sign Map-Replies to LISP-SEC protected requests (RFC 9303 §6.7).
	m := &wire.MapRegister{ProxyReply: p.ProxyReply, WantMapNotify: p.WantMapNotify, Security: s.opts.LISPSEC != SecOff}
	if !s.sendRegisterToLocked(p, m, pr.recs) {
		return
	}
	p.lastSent = now
	p.registers++
	s.c.registers.Inc()
	if p.WantMapNotify {
		pr.retryAt = now.Add(pr.retryWait)
		p.inflight[m.Nonce] = pr
	}
}

// sendRegisterToLocked fills in m's authentication body (next nonce, the
// peer's key, our xTR-ID and site-ID, recs), signs it and sends it. A
// message that cannot be encoded registers nothing: that is logged (at most
// once a minute) and counted.
func (s *Server) sendRegisterToLocked(p *peerState, m *wire.MapRegister, recs []wire.EIDRecord) bool {
	s.nonce++
	rloc, rtrs, viaRTR := s.natRouteLocked(p.Addr)
	if viaRTR {
		// Behind a NAT: through the RTRs, which the Map-Server must
		// answer for us and whose Map-Notify must come (nat.go).
		m.ProxyReply, m.WantMapNotify = true, true
		recs = s.natRecordsLocked(recs, rtrs)
	}
	m.AuthBody = wire.AuthBody{Nonce: s.nonce, KeyID: p.KeyID, Algorithm: p.Alg, Records: recs,
		HasXTRID: true, XTRID: s.opts.XTRID, SiteID: s.opts.SiteID}
	b, err := wire.EncodeSigned(m, p.Secret, wire.AuthOptions{})
	if err != nil {
		s.c.registerEncodeFailed.Inc()
		if now := s.opts.Now(); now.Sub(s.encodeLogAt) >= time.Minute {
			s.encodeLogAt = now
			s.log.Error("cannot encode Map-Register", "map-server", p.Addr, "records", len(recs), "err", err)
		}
		return false
	}
	if viaRTR {
		return s.sendThroughRTRsLocked(b, p.Addr, rloc, rtrs)
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
	s.movedAway(s.handleMapNotify(r.Raw, m, r.Src, r.Local.Addr(), out), r.Src.Addr())
	return control.Handled
}

// movedAway reports the dynamic-EID hosts of ours a Map-Notify from ms
// says registered elsewhere.
func (s *Server) movedAway(moved []mapping.Mapping, ms netip.Addr) {
	for _, mp := range moved {
		s.opts.Events.About(mp.EID, adminapi.Event{Type: adminapi.EventHostMoved, Peer: ms, Locators: events.Locators(mp.Locators)})
	}
	if s.opts.OnMovedAway != nil && len(moved) > 0 {
		s.opts.OnMovedAway(moved)
	}
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
	if pr, ours := p.inflight[m.Nonce]; ours {
		delete(p.inflight, m.Nonce)
		p.lastNotify = now
		p.notifies++
		s.c.notifies.Inc()
		if len(s.arrived) > 0 {
			s.smrRegisteredLocked(pr.recs, now)
		}
		return nil
	}
	// Unsolicited: a publication for our map-cache, news about our own
	// prefixes (merged set) that needs only an ack, or a dynamic-EID host of
	// ours registered elsewhere.
	moved = s.movedLocked(p.Addr, m, now)
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

// replayLog says, at most once a minute, that a verified Map-Notify was
// not applied because its nonce did not grow.
func (s *Server) replayLog(m *wire.MapNotify, eid mapping.EID) {
	if now := s.opts.Now(); now.Sub(s.replayLogAt) >= time.Minute {
		s.replayLogAt = now
		s.log.Warn("Map-Notify nonce not increasing (replay?): not applied", "eid", eid, "nonce", m.Nonce)
	}
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
