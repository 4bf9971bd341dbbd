package mapserver

import (
	"encoding/binary"
	"net/netip"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// HandleMapRequest is the Map-Server's control.Handler of encapsulated
// Map-Requests (r.Msg, in r.ECM; r.Raw is the whole ECM, forwarded to the
// ETR unchanged; r.ReplyTo is where an answer goes). It answers for an EID
// in a configured site: a proxy Map-Reply if the ETR asked for one, else
// the ECM forwarded to the most recently registered live ETR, else a
// negative Map-Reply; and it records pub/sub subscriptions. An EID in no
// configured site is DropEIDNotServed (a Map-Resolver then answers).
func (s *Server) HandleMapRequest(req *control.Request, out control.Sender) control.DropReason {
	m, ok := req.Msg.(*wire.MapRequest)
	if !ok || len(m.Records) == 0 {
		return control.DropEIDNotServed
	}
	if m.Probe {
		// An RLOC-probe is for an xTR's locator, never the mapping
		// system (RFC 9301 §5.8); a Map-Resolver in front of us drops it
		// the same way.
		return control.DropProbeToMappingSystem
	}
	rr := &m.Records[0]
	eid, ok := mapping.FromWire(rr.EID, rr.MaskLen)
	if !ok {
		return control.DropEIDNotServed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	site, _, configured := s.prefixes.LookupPrefix(eid)
	now := s.now()
	_, r, registered := s.regs.LookupPrefix(eid)
	if registered && !r.hasLive(now) {
		registered = false
	}
	if !configured && !registered {
		return control.DropEIDNotServed
	}
	if m.HasXTRID {
		s.subscribeLocked(req, m, eid, registered)
	}
	if req.ECM != nil && req.ECM.Security && s.opts.LISPSECKeys != nil {
		s.protectedLocked(req, m, eid, site, r, registered, now, out)
		return control.Handled
	}
	switch {
	case !registered:
		s.negativeLocked(req, m, eid, site, out)
	case r.proxy(now):
		s.proxyReplyLocked(req, m, r, now, out)
		s.c.proxyReply.Inc()
	default:
		e := r.newest(now)
		out.Send(req.Raw, req.Local.Addr(), netip.AddrPortFrom(e.src.Addr(), wire.ControlPort))
		s.c.forwarded.Inc()
	}
	return control.Handled
}

func (r *registration) proxy(now int64) bool {
	for _, e := range r.etrs {
		if e.expires > now && e.flags&flagProxy != 0 {
			return true
		}
	}
	return false
}

// newest returns the live registration made last: the ETR to forward to.
func (r *registration) newest(now int64) *etrReg {
	var best *etrReg
	for i := range r.etrs {
		e := &r.etrs[i]
		if e.expires > now && (best == nil || e.last > best.last) {
			best = e
		}
	}
	return best
}

// negativeLocked answers for a configured prefix nobody registered: the
// least-specific prefix inside the site prefix that holds the EID and no
// registration, natively-forward, TTL 1 minute (RFC 9301 §8.3).
func (s *Server) negativeLocked(req *control.Request, m *wire.MapRequest, eid mapping.EID, site mapping.EID, out control.Sender) {
	hole, ok := s.regs.LeastSpecificHole(eid.IID, eid.Prefix.Addr(), site.Prefix.Bits())
	if !ok {
		hole = eid
	}
	rec := wire.EIDRecord{TTL: s.opts.UnregisteredTTL, MaskLen: hole.MaskLen(), Action: wire.ActionNativelyForward,
		EID: hole.Address()}
	s.replyLocked(req, m, []wire.EIDRecord{rec}, out)
	s.c.negative.Inc()
}

// proxyReplyLocked answers for the ETRs from the cached encoding of the
// registration's record: a Map-Reply header and those bytes.
func (s *Server) proxyReplyLocked(req *control.Request, m *wire.MapRequest, r *registration, now int64, out control.Sender) {
	if r.reply == nil || now >= r.replyUntil {
		rec := s.mappingLocked(r, now, false)
		b, err := rec.Append(nil)
		if err != nil {
			s.log.Warn("cannot encode Map-Reply record", "err", err)
			return
		}
		r.reply, r.replyUntil = b, int64(1<<63-1)
		for _, e := range r.etrs {
			if e.expires > now && e.expires < r.replyUntil {
				r.replyUntil = e.expires
			}
		}
	}
	b := append(s.scratch[:0], byte(wire.TypeMapReply)<<4, 0, 0, 1)
	b = binary.BigEndian.AppendUint64(b, m.Nonce)
	b = append(b, r.reply...)
	s.scratch = b
	out.Send(b, req.Local.Addr(), req.ReplyTo)
}

func (s *Server) replyLocked(req *control.Request, m *wire.MapRequest, recs []wire.EIDRecord, out control.Sender) {
	rep := &wire.MapReply{Nonce: m.Nonce, Records: recs}
	b, err := wire.Encode(rep)
	if err != nil {
		s.log.Warn("cannot encode Map-Reply", "err", err)
		return
	}
	out.Send(b, req.Local.Addr(), req.ReplyTo)
}
