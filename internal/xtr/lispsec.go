package xtr

import (
	"errors"
	"net/netip"
	"time"

	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// SecMode is how an xTR uses LISP-SEC (RFC 9303).
type SecMode uint8

const (
	// SecOff: Map-Requests go unprotected, Map-Replies are taken as they
	// come (still checked against overclaiming, answersLocked).
	SecOff SecMode = iota
	// SecOptional: Map-Requests carry a One-Time Key; an unsigned reply
	// is taken, a signed one only if it verifies.
	SecOptional
	// SecRequired: only a Map-Reply that verifies is taken.
	SecRequired
)

func (m SecMode) String() string {
	switch m {
	case SecOptional:
		return "optional"
	case SecRequired:
		return "required"
	}
	return "off"
}

// secCounters are the xTR's LISP-SEC metrics.
type secCounters struct {
	verified, unsignedAccepted, etrCantSign, signed *stats.Counter
	replyDrops                                      lispsec.Drops // ITR: Map-Replies not taken
	requestDrops                                    lispsec.Drops // ETR: protected Map-Requests not answered
}

func newSecCounters(r *stats.Registry) secCounters {
	return secCounters{
		verified: r.Counter(stats.Desc{Subsystem: "itr", Name: "lispsec_replies_verified",
			Help: "Map-Replies to LISP-SEC protected Map-Requests that verified."}),
		unsignedAccepted: r.Counter(stats.Desc{Subsystem: "itr", Name: "lispsec_replies_unsigned_accepted",
			Help: "Unsigned Map-Replies to LISP-SEC protected Map-Requests taken (lisp-sec optional)."}),
		etrCantSign: r.Counter(stats.Desc{Subsystem: "itr", Name: "lispsec_etr_cant_sign",
			Help: "Signed negative Map-Replies with the E bit (no ETR of the EID does LISP-SEC), asked again unprotected (lisp-sec optional)."}),
		signed: r.Counter(stats.Desc{Subsystem: "etr", Name: "lispsec_replies_signed",
			Help: "Map-Replies the ETR signed for LISP-SEC protected Map-Requests."}),
		replyDrops: lispsec.NewDrops(r, "itr", "lispsec_replies_dropped",
			"Map-Replies to LISP-SEC protected Map-Requests dropped, by reason.",
			lispsec.ErrUnsigned, lispsec.ErrMalformed, lispsec.ErrReplay, lispsec.ErrPKTAD, lispsec.ErrEIDAD,
			lispsec.ErrHMACID, lispsec.ErrKDFID, lispsec.ErrUnsupported),
		requestDrops: lispsec.NewDrops(r, "etr", "lispsec_requests_dropped",
			"LISP-SEC protected Map-Requests the ETR did not answer, by reason.",
			lispsec.ErrMalformed, lispsec.ErrOTK, lispsec.ErrNoKey, lispsec.ErrNullWrap, lispsec.ErrUnsupported),
	}
}

// The algorithms an ITR asks for: those RFC 9303 makes mandatory (§6.4,
// §6.5), so every Map-Server and ETR can answer with them.
const (
	secHMAC = wire.SecHMACSHA256128
	secKDF  = wire.SecKDFHKDFSHA256
	secWrap = wire.SecWrapAESKWHKDF
)

// protectLocked gives an ITR's ECM'd Map-Request its One-Time Key (RFC
// 9303 §6.4) and returns what verifies the reply.
func (s *Server) protectLocked(ecm *wire.ECM, nonce uint64) (*lispsec.Request, error) {
	q, err := lispsec.NewRequest(nil, nonce, secHMAC, secKDF)
	if err != nil {
		return nil, err
	}
	ad, err := q.AuthData(s.opts.LISPSECKey, secWrap)
	if err != nil {
		return nil, err
	}
	return q, ecm.SetAuthData(ad)
}

// secVerdict is what LISP-SEC makes of a Map-Reply to a pending request.
type secVerdict uint8

const (
	secTake        secVerdict = iota // install its (authorized) records
	secDrop                          // a failure, counted: the request stays pending
	secAskUnsigned                   // E bit under optional: ask again without LISP-SEC
)

// verifyLocked applies LISP-SEC to a Map-Reply to our request p (RFC 9303
// §6.9) and returns the records to consider with the verdict. A failure
// leaves p pending: a forgery must not cancel the real answer.
func (s *Server) verifyLocked(p *pendingReq, m *wire.MapReply, raw []byte) ([]wire.EIDRecord, secVerdict) {
	if p.sec == nil {
		return m.Records, secTake
	}
	v, err := p.sec.Verify(m, raw)
	switch {
	case err == nil && v.EID.ETRCantSign && s.opts.LISPSEC == SecOptional && allNegative(v.Records):
		// The Map-Server's own negative reply for an EID no ETR of which
		// can sign (RFC 9303 §6.7 Table 1): no answer to install.
		s.sec.etrCantSign.Inc()
		return nil, secAskUnsigned
	case err == nil:
		s.sec.verified.Inc()
		if len(v.Dropped) > 0 {
			s.c.replyRecordDrops["not-authorized"].Add(uint64(len(v.Dropped)))
			s.secLog("Map-Reply records outside the prefixes the Map-Server vouched for: not installed",
				"eid", p.eid, "dropped", v.Dropped[0].PrefixString(), "count", len(v.Dropped))
		}
		return v.Records, secTake
	case errors.Is(err, lispsec.ErrUnsigned) && s.opts.LISPSEC == SecOptional:
		s.sec.unsignedAccepted.Inc()
		return m.Records, secTake
	}
	s.sec.replyDrops.Count(err)
	s.secLog("Map-Reply fails LISP-SEC: dropped", "eid", p.eid, "reason", lispsec.Reason(err), "err", err)
	return nil, secDrop
}

// secLog logs a LISP-SEC drop at most once a minute: a forger must not
// fill the log.
func (s *Server) secLog(msg string, args ...any) {
	if now := s.opts.Now(); now.Sub(s.secLogAt) >= time.Minute {
		s.secLogAt = now
		s.log.Warn(msg, args...)
	}
}

// signReplyLocked signs an ETR's Map-Reply to a LISP-SEC protected ECM
// (RFC 9303 §6.8) with the MS-OTK the Map-Server wrapped in the key of our
// registration with it (from, by address first; any Map-Server with the
// ECM's key ID otherwise). ok false: dropped, counted.
func (s *Server) signReplyLocked(ecm *wire.ECM, rep *wire.MapReply, from netip.Addr) ([]byte, bool) {
	ad, err := ecm.AuthData()
	if err != nil {
		s.sec.requestDrops.Count(lispsec.ErrMalformed)
		return nil, false
	}
	if ad.EID.KDFOnly {
		// The ITR's own AD: the mapping system passed the request on
		// without doing LISP-SEC, so there is no MS-OTK to sign with. The
		// reply goes unsigned; the ITR's mode decides.
		b, err := wire.Encode(rep)
		return b, err == nil
	}
	err = lispsec.ErrNoKey
	var otk lispsec.OTK
	for _, byAddr := range []bool{true, false} {
		for _, p := range s.peers {
			if p.KeyID != ad.KeyID || (p.Addr == from) != byAddr {
				continue
			}
			if otk, err = lispsec.OpenECM(ad, lispsec.Keys{p.KeyID: p.Secret}, rep.Nonce, false); err == nil {
				break
			}
		}
		if err == nil {
			break
		}
	}
	if err != nil {
		s.sec.requestDrops.Count(err)
		s.secLog("LISP-SEC Map-Request not answered", "from", from, "reason", lispsec.Reason(err), "err", err)
		return nil, false
	}
	b, err := lispsec.SignMapReply(rep, ad.EID, ad.RequestedHMAC, otk)
	if err != nil {
		s.sec.requestDrops.Count(err)
		return nil, false
	}
	s.sec.signed.Inc()
	return b, true
}

// allNegative tells whether recs hold no locator at all.
func allNegative(recs []wire.EIDRecord) bool {
	for i := range recs {
		if len(recs[i].Locators) > 0 {
			return false
		}
	}
	return true
}
