package xtr

import (
	"net/netip"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// HandleMapRequest is the xTR's control.Handler of Map-Requests: those that
// reach it directly (RLOC-probe, SMR) and those a Map-Server forwarded in
// an ECM (the answer then goes to the ITR's port of the inner UDP header).
func (s *Server) HandleMapRequest(r *control.Request, out control.Sender) control.DropReason {
	m, ok := r.Msg.(*wire.MapRequest)
	if !ok {
		return control.DropUnexpectedType
	}
	replyPort, viaECM := r.Src.Port(), r.ECM != nil
	if viaECM {
		replyPort = r.ECM.SrcPort
	}
	s.mapRequest(m, r.Src, r.Local.Addr(), replyPort, viaECM, out)
	return control.Handled
}

func (s *Server) mapRequest(m *wire.MapRequest, src netip.AddrPort, local netip.Addr, replyPort uint16, viaECM bool, out control.Sender) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(m.Records) == 0 {
		s.c.requestDropped("no-record").Inc()
		return
	}
	eid, ok := mapping.FromWire(m.Records[0].EID, m.Records[0].MaskLen)
	if !ok {
		s.c.requestDropped("bad-eid").Inc()
		return
	}
	if m.SMR {
		if !viaECM && s.opts.ITR {
			s.handleSMRLocked(smrSource(m, eid), eid, src.Addr())
		}
		return
	}
	if !s.opts.ETR {
		s.c.requestDropped("not-an-etr").Inc()
		return
	}
	if m.Probe && viaECM {
		s.c.requestDropped("probe-in-ecm").Inc()
		return
	}
	// A request for a prefix covering ours also gets our entry.
	_, e, ok := s.db.Related(eid)
	if !ok {
		s.c.requestDropped("not-my-eid").Inc()
		return
	}
	to, ok := replyTarget(m, src, replyPort, local)
	if !ok {
		s.c.requestDropped("no-itr-rloc").Inc()
		return
	}
	probed := netip.Addr{}
	if m.Probe {
		probed = local
	}
	rep := &wire.MapReply{Probe: m.Probe, Nonce: m.Nonce, Records: []wire.EIDRecord{s.dbRecord(e, probed)}}
	b, err := wire.Encode(rep)
	if err != nil {
		return
	}
	out.Send(b, local, to)
	if m.Probe {
		s.c.probeReplies.Inc()
	} else {
		s.c.replies.Inc()
	}
}

// replyTarget picks the ITR-RLOC of our family (the request's source for
// a probe that lists none usable).
func replyTarget(m *wire.MapRequest, src netip.AddrPort, port uint16, local netip.Addr) (netip.AddrPort, bool) {
	for _, a := range m.ITRRLOCs {
		if ip, ok := a.Addr(); ok && !ip.IsUnspecified() && ip.Is4() == local.Is4() {
			return netip.AddrPortFrom(ip, port), true
		}
	}
	if m.Probe {
		return src, true
	}
	return netip.AddrPort{}, false
}

// Decapsulated notes an ITR that sent us traffic (the data plane samples
// it): those get SMRs when our database changes.
func (s *Server) Decapsulated(outerSrc netip.Addr, _ uint32, _ netip.Addr) {
	s.mu.Lock()
	s.recentITRs[outerSrc] = s.opts.Now()
	s.mu.Unlock()
}

// smrLocked sends a Solicit-Map-Request for every local prefix to each ITR
// that sent traffic in the last minute, at most once per 3 s per ITR
// (RFC 9301 §6.1).
func (s *Server) smrLocked(now time.Time) {
	for itr, seen := range s.recentITRs {
		if now.Sub(seen) > time.Minute || now.Sub(s.lastSMR[itr]) < 3*time.Second {
			continue
		}
		src, ok := s.localRLOC(itr)
		if !ok {
			continue
		}
		s.lastSMR[itr] = now
		for _, e := range s.db.All() {
			m := &wire.MapRequest{SMR: true, Nonce: s.newNonce(), SourceEID: e.EID.Address(),
				ITRRLOCs: []wire.Address{wire.AddrFromIP(src)},
				Records:  []wire.RequestRecord{{MaskLen: e.EID.MaskLen(), EID: e.EID.Address()}}}
			b, err := wire.Encode(m)
			if err != nil {
				continue
			}
			s.opts.Sender.Send(b, src, netip.AddrPortFrom(itr, wire.ControlPort))
			s.c.smrSent.Inc()
		}
	}
}
