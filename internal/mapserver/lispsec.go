package mapserver

import (
	"net/netip"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// secCounters are the Map-Server's LISP-SEC metrics (subsystem map_server).
type secCounters struct {
	replies, forwarded *stats.Counter
	dropped            lispsec.Drops
}

func newSecCounters(r *stats.Registry) secCounters {
	return secCounters{
		replies: r.Counter(stats.Desc{Subsystem: "map_server", Name: "lispsec_replies",
			Help: "LISP-SEC protected Map-Requests answered by the Map-Server with a signed Map-Reply (proxy or negative)."}),
		forwarded: r.Counter(stats.Desc{Subsystem: "map_server", Name: "lispsec_forwarded",
			Help: "LISP-SEC protected Map-Requests forwarded to an ETR with the Map-Server's authentication data."}),
		dropped: lispsec.NewDrops(r, "map_server", "lispsec_requests_dropped", "LISP-SEC protected Map-Requests dropped, by reason.",
			lispsec.ErrMalformed, lispsec.ErrOTK, lispsec.ErrNoKey, lispsec.ErrNullWrap, lispsec.ErrUnsupported),
	}
}

// protectedLocked answers a LISP-SEC protected Map-Request (RFC 9303 §6.7):
// it opens the ITR-OTK with the keys shared with ITRs, signs the prefix it
// authorizes for the EID (the registered prefix, or the hole when nothing
// is registered) and then, in the order of §6.7 Table 1: answers with a
// signed proxy Map-Reply when an ETR asked for proxy replies; forwards the
// request to the newest ETR that registered with S, with the MS-OTK wrapped
// in that ETR's site key (E set when some live ETR did not register with
// S); else answers with a signed negative Map-Reply with E set.
func (s *Server) protectedLocked(req *control.Request, m *wire.MapRequest, eid, site mapping.EID, r *registration, registered bool, now int64, out control.Sender) {
	ad, err := req.ECM.AuthData()
	if err != nil {
		s.sec.dropped.Count(lispsec.ErrMalformed)
		return
	}
	itrOTK, err := lispsec.OpenECM(ad, s.opts.LISPSECKeys, m.Nonce, false)
	if err != nil {
		s.sec.dropped.Count(err)
		return
	}
	if !registered {
		hole, ok := s.regs.LeastSpecificHole(eid.IID, eid.Prefix.Addr(), site.Prefix.Bits())
		if !ok {
			hole = eid
		}
		s.signedNegativeLocked(req, m, ad, itrOTK, hole, false, out)
		return
	}
	authorized := []wire.EIDADRecord{{MaskLen: r.eid.MaskLen(), EID: r.eid.Address()}}
	if r.proxy(now) {
		s.signedReplyLocked(req, m, ad, itrOTK, authorized, false, s.mappingLocked(r, now, false), out)
		s.c.proxyReply.Inc()
		return
	}
	var etr *etrReg
	cantSign := false
	for i := range r.etrs {
		e := &r.etrs[i]
		if e.expires <= now {
			continue
		}
		if e.flags&flagSecurity == 0 {
			cantSign = true
		} else if etr == nil || e.last > etr.last {
			etr = e
		}
	}
	if etr == nil {
		s.signedNegativeLocked(req, m, ad, itrOTK, r.eid, true, out)
		return
	}
	key, ok := r.site.key(etr.keyID)
	if !ok {
		s.sec.dropped.Count(lispsec.ErrNoKey)
		return
	}
	e, err := lispsec.NewEIDAD(ad, itrOTK, authorized, cantSign)
	if err != nil {
		s.sec.dropped.Count(err)
		return
	}
	fwdAD, err := lispsec.ForwardAuthData(ad, itrOTK, e, lispsec.Key{ID: key.ID, Secret: key.Secret}, wire.SecWrapAESKWHKDF, m.Nonce)
	if err != nil {
		s.sec.dropped.Count(err)
		return
	}
	fwd := *req.ECM
	if err := fwd.SetAuthData(fwdAD); err != nil {
		s.sec.dropped.Count(err)
		return
	}
	b, err := fwd.Append(s.scratch[:0])
	if err != nil {
		s.log.Warn("cannot encode LISP-SEC ECM", "err", err)
		return
	}
	s.scratch = b
	out.Send(b, req.Local.Addr(), netip.AddrPortFrom(etr.src.Addr(), wire.ControlPort))
	s.c.forwarded.Inc()
	s.sec.forwarded.Inc()
}

// signedNegativeLocked answers with a negative Map-Reply for prefix,
// natively-forward for the unregistered-TTL, signed as a proxy reply
// (RFC 9303 §6.7 Table 1 row 3, §6.7.2).
func (s *Server) signedNegativeLocked(req *control.Request, m *wire.MapRequest, ad *wire.ECMAuthData, itrOTK lispsec.OTK, prefix mapping.EID, cantSign bool, out control.Sender) {
	rec := wire.EIDRecord{TTL: s.opts.UnregisteredTTL, MaskLen: prefix.MaskLen(), Action: wire.ActionNativelyForward,
		EID: prefix.Address()}
	s.signedReplyLocked(req, m, ad, itrOTK, []wire.EIDADRecord{{MaskLen: prefix.MaskLen(), EID: prefix.Address()}}, cantSign, rec, out)
	s.c.negative.Inc()
}

// signedReplyLocked sends rec in a Map-Reply the Map-Server signs itself.
func (s *Server) signedReplyLocked(req *control.Request, m *wire.MapRequest, ad *wire.ECMAuthData, itrOTK lispsec.OTK, authorized []wire.EIDADRecord, cantSign bool, rec wire.EIDRecord, out control.Sender) {
	b, err := lispsec.ProxyReply(&wire.MapReply{Nonce: m.Nonce, Records: []wire.EIDRecord{rec}}, ad, itrOTK, authorized, cantSign)
	if err != nil {
		s.sec.dropped.Count(err)
		return
	}
	out.Send(b, req.Local.Addr(), req.ReplyTo)
	s.sec.replies.Inc()
}
