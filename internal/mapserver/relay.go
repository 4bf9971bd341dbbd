package mapserver

import (
	"net/netip"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/wire"
)

// Map-Registers relayed by an RTR (draft-ietf-lisp-nat-traversal §5.2,
// §5.3). An xTR behind a NAT sends its Map-Register in an ECM to an RTR,
// which relays it to us in a new ECM with the N bit. The Map-Register is
// the xTR's own, signed with its site key: it goes through every check
// of a direct one (authentication, the replay checks, allowed RLOCs). The
// relay itself is taken only from an RTR this Map-Server offers (its
// rtrs or a site's), so nobody else can make us send Map-Notifies in ECMs.
// The acknowledging Map-Notify goes back to the RTR in an ECM with the R
// bit, its inner header from us to the xTR's local RLOC (the inner source
// of the relayed Map-Register), for the RTR to pass on as a
// Data-Map-Notify. When we share a key with that RTR (rtr-keys) the ECM
// has the S bit and the MS-RTR authentication data (§4.4): the key's MAC
// over the encapsulated Map-Notify, so the RTR can tell our Map-Notify
// from one an attacker forged with our source address.
// The registration remembers the RTR (etrReg.via), so the unsolicited
// Map-Notifies for it — a "moved" one when another site takes its prefix,
// a merged locator set — and their retransmissions go the same way
// (sendPendingLocked): in an ECM with the R bit to that RTR, signed for
// it when keyed. An RTR passes an unsolicited Map-Notify on only when it
// carries a verifying MS-RTR AD (§5.3: without S only the nonce of the
// Map-Register it answers vouches for a Map-Notify): behind an unkeyed
// RTR, they go unacknowledged.
// Such a registration is always proxy-replied: a Map-Request forwarded to
// the xTR's local RLOC would not cross its NAT.

// HandleRelayedRegister is the control.Handler of an ECM whose N bit says
// an RTR relays the Map-Register inside.
func (s *Server) HandleRelayedRegister(r *control.Request, out control.Sender) control.DropReason {
	ecm, ok := r.Msg.(*wire.ECM)
	if !ok || !ecm.ForMS {
		return control.DropUnexpectedType
	}
	m, ok := ecm.Message.(*wire.MapRegister)
	if !ok {
		return control.DropUnexpectedType
	}
	rtr := r.Src.Addr().Unmap()
	s.mu.Lock()
	known := s.offersRTRLocked(rtr)
	key, keyed := s.opts.RTRKeys[rtr]
	if known {
		s.c.relayed.Inc()
	} else {
		s.c.notFromRTR.Inc()
		s.authFailLog(rtr, "relayed Map-Register from an address that is none of our RTRs", nil)
	}
	s.mu.Unlock()
	if !known {
		return control.Handled
	}
	// The inner message as received: its authentication covers those bytes.
	inner := r.Raw[len(r.Raw)-m.Len():]
	xtr := netip.AddrPortFrom(ecm.IP.Src.Unmap(), ecm.SrcPort)
	via := r.Src
	s.mapRegister(inner, m, xtr, r.Local.Addr(), &viaRTR{out: out, rtr: r.Src, s: s, key: key, keyed: keyed}, &via)
	return control.Handled
}

// offersRTRLocked tells whether a is an RTR of this Map-Server or of one
// of its sites.
func (s *Server) offersRTRLocked(a netip.Addr) bool {
	for _, r := range s.opts.RTRs {
		if r == a {
			return true
		}
	}
	for _, st := range s.sites {
		for _, r := range st.cfg.RTRs {
			if r == a {
				return true
			}
		}
	}
	return false
}

// viaRTR sends what the Map-Server answers a relayed Map-Register with to
// the RTR, in an ECM with the R bit.
type viaRTR struct {
	out   control.Sender
	rtr   netip.AddrPort
	s     *Server
	key   wire.RTRKey // the MS-RTR key shared with the RTR, when keyed
	keyed bool
}

func (v *viaRTR) Send(b []byte, src netip.Addr, to netip.AddrPort) {
	v.s.sendToRTR(v.out, b, src, to, v.rtr, v.key, v.keyed)
}

// sendToRTR sends the Map-Notify b, from src to the xTR at to, through
// out to the RTR at rtr: in an ECM with the R bit, with the S bit and the
// MS-RTR AD of key when keyed.
func (s *Server) sendToRTR(out control.Sender, b []byte, src netip.Addr, to, rtr netip.AddrPort, key wire.RTRKey, keyed bool) {
	m, err := wire.Decode(b)
	if err == nil {
		e := &wire.ECM{ForETR: true, IP: wire.InnerIP{Src: src.Unmap(), Dst: to.Addr().Unmap(), TTL: 64},
			SrcPort: wire.ControlPort, DstPort: to.Port(), Message: m}
		if keyed {
			// b is the Map-Notify as it will be inside: the codec
			// re-encodes what it decoded byte for byte.
			var ad *wire.RTRAuthData
			if ad, err = key.Sign(b); err == nil {
				err = e.SetRTRAuthData(ad)
			}
		}
		if err == nil {
			b, err = e.Append(nil)
		}
		if err == nil {
			out.Send(b, src, rtr)
			return
		}
	}
	s.log.Error("Map-Notify for an RTR not encapsulated", "rtr", rtr, "err", err)
}
