package mapserver

import (
	"encoding/binary"
	"net/netip"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Request is a Map-Request as the Map-Server sees it: decoded, with the
// ECM bytes it came in (forwarded to the ETR unchanged) and the addresses a
// reply needs.
type Request struct {
	Msg      *wire.MapRequest
	ECM      []byte         // the whole ECM as received
	ReplyTo  netip.AddrPort // ITR-RLOC and the port the ITR sent from (inner UDP source)
	Local    netip.Addr     // our address the request reached: replies come from it
	Resolved bool           // set by HandleMapRequest when it answered or forwarded
}

// HandleMapRequest answers a Map-Request for an EID in a configured site:
// a proxy Map-Reply if the ETR asked for one, else the ECM forwarded to the
// most recently registered live ETR, else a negative Map-Reply. It also
// records pub/sub subscriptions. It returns false if the EID is in no
// configured site (the Map-Resolver then answers).
func (s *Server) HandleMapRequest(req *Request, out Sender) bool {
	if len(req.Msg.Records) == 0 {
		return false
	}
	rr := &req.Msg.Records[0]
	eid, ok := mapping.FromWire(rr.EID, rr.MaskLen)
	if !ok {
		return false
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
		return false
	}
	if req.Msg.HasXTRID {
		s.subscribeLocked(req, eid)
	}
	switch {
	case !registered:
		s.negativeLocked(req, eid, site, out)
	case r.proxy(now):
		s.proxyReplyLocked(req, r, now, out)
		s.c.proxyReply.Inc()
	default:
		e := r.newest(now)
		out.Send(req.ECM, req.Local, netip.AddrPortFrom(e.src.Addr(), 4342))
		s.c.forwarded.Inc()
	}
	return true
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
func (s *Server) negativeLocked(req *Request, eid mapping.EID, site mapping.EID, out Sender) {
	hole, ok := s.regs.LeastSpecificHole(eid.IID, eid.Prefix.Addr(), site.Prefix.Bits())
	if !ok {
		hole = eid
	}
	rec := wire.EIDRecord{TTL: s.opts.UnregisteredTTL, MaskLen: hole.MaskLen(), Action: wire.ActionNativelyForward,
		EID: hole.Address()}
	s.replyLocked(req, []wire.EIDRecord{rec}, out)
	s.c.negative.Inc()
}

// proxyReplyLocked answers for the ETRs from the cached encoding of the
// registration's record: a Map-Reply header and those bytes.
func (s *Server) proxyReplyLocked(req *Request, r *registration, now int64, out Sender) {
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
	b = binary.BigEndian.AppendUint64(b, req.Msg.Nonce)
	b = append(b, r.reply...)
	s.scratch = b
	out.Send(b, req.Local, req.ReplyTo)
}

func (s *Server) replyLocked(req *Request, recs []wire.EIDRecord, out Sender) {
	rep := &wire.MapReply{Nonce: req.Msg.Nonce, Records: recs}
	b, err := wire.Encode(rep)
	if err != nil {
		s.log.Warn("cannot encode Map-Reply", "err", err)
		return
	}
	out.Send(b, req.Local, req.ReplyTo)
}
