package xtr

import (
	"net/netip"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
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
	s.mapRequest(m, r.Src, r.Local.Addr(), replyPort, r.ECM, out)
	return control.Handled
}

// mapRequest answers m; ecm is the envelope it came in, nil if bare.
func (s *Server) mapRequest(m *wire.MapRequest, src netip.AddrPort, local netip.Addr, replyPort uint16, ecm *wire.ECM, out control.Sender) {
	viaECM := ecm != nil
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
	to, ok := replyTarget(m, src, replyPort, local, s.opts.ours)
	if !ok {
		s.c.requestDropped("no-itr-rloc").Inc()
		return
	}
	probed := netip.Addr{}
	if m.Probe {
		probed = local
	}
	rep := &wire.MapReply{Probe: m.Probe, Nonce: m.Nonce, Records: []wire.EIDRecord{s.dbRecord(e, probed)}}
	var b []byte
	var err error
	if viaECM && ecm.Security && s.opts.LISPSEC != SecOff {
		// A Map-Server that has our S registration forwarded the
		// request with the MS-OTK: sign (RFC 9303 §6.8). With LISP-SEC
		// off its AD is ignored and the reply goes unsigned (§6.8: an
		// ETR that does not do LISP-SEC), as the Map-Server expects.
		if b, ok = s.signReplyLocked(ecm, rep, src.Addr()); !ok {
			return
		}
	} else if b, err = wire.Encode(rep); err != nil {
		return
	}
	out.Send(b, local, to)
	if m.Probe {
		s.c.probeReplies.Inc()
	} else {
		s.c.replies.Inc()
	}
}

// replyTarget picks the ITR-RLOC of our family, neither the address the
// request reached nor any other of ours (ours) unless it came from there
// (the request's source for a probe that lists none usable).
func replyTarget(m *wire.MapRequest, src netip.AddrPort, port uint16, local netip.Addr, ours func(netip.Addr) bool) (netip.AddrPort, bool) {
	for _, a := range m.ITRRLOCs {
		ip, ok := a.Addr()
		if !ok || ip.IsUnspecified() || ip.Is4() != local.Is4() {
			continue
		}
		// An answer to an address of ours would come back to us, unless
		// we asked ourselves (FuzzDispatch found both: the address the
		// request reached, and another of ours named in a request to a
		// different one).
		if ip != src.Addr() && (ip == local || ours(ip)) {
			continue
		}
		return netip.AddrPortFrom(ip, port), true
	}
	if m.Probe {
		return src, true
	}
	return netip.AddrPort{}, false
}

// Decapsulated notes an ITR that sent us traffic in an instance, and a
// host of its site (the packet's source): the data plane samples it. Those
// ITRs get SMRs when our database changes, naming that host.
// At most maxRecentITRs are kept: the outer source may be spoofed. An ITR
// that sent from a locator of the mapping we cache for its source is kept
// apart, where spoofed sources cannot push it out.
func (s *Server) Decapsulated(outerSrc netip.Addr, iid uint32, innerSrc netip.Addr) {
	s.mu.Lock()
	verified := s.opts.ITR && s.cachedLocatorLocked(iid, innerSrc, outerSrc)
	if s.recent.put(itrInstance{outerSrc, iid}, recentITR{seen: s.opts.Now(), eid: innerSrc}, verified) {
		s.c.recentForgotten.Inc()
	}
	s.mu.Unlock()
}

// itrInstance is an ITR's RLOC and the instance its traffic came in.
type itrInstance struct {
	rloc netip.Addr
	iid  uint32
}

// recentITR is when an ITR last sent us traffic in an instance and from
// which EID (invalid when unknown).
type recentITR struct {
	seen time.Time
	eid  netip.Addr
}

// smrLocked sends a Solicit-Map-Request for every local prefix to each ITR
// that sent traffic in the last minute, at most once per 3 s per ITR
// (RFC 9301 §6.1), for the prefixes of the instances it sent traffic in;
// to the ITRs smrTargetsLocked lists, within the global budget.
func (s *Server) smrLocked(now time.Time) {
	due := func(k itrInstance) bool { return now.Sub(s.lastSMR[k.rloc]) >= 3*time.Second }
	targets := s.smrTargetsLocked(now, due)
	for _, t := range targets {
		for _, e := range s.db.All() {
			if e.EID.IID == t.k.iid && s.smrAllowLocked(now) && s.sendSMRLocked(e.EID, t.k, t.r) {
				s.c.smrSent.Inc()
				s.opts.Events.About(e.EID, adminapi.Event{Type: adminapi.EventSMRSent, Peer: t.k.rloc})
			}
		}
	}
	for _, t := range targets {
		s.lastSMR[t.k.rloc] = now
	}
}

// sendSMRLocked solicits a Map-Request for changed from an ITR. Where the
// changed EID goes is not settled between implementations (RFC 9301 §6.1
// does not say): the one encoding all of them accept carries it in the
// Source-EID and, in the EID-record, an EID of the receiver's own site —
// Open Overlay Router and OpenDaylight drop an SMR whose record is not one
// of their EIDs, and lispd reads the Source-EID first. Without a host of
// the receiver's site to name, the record repeats the changed EID.
func (s *Server) sendSMRLocked(changed mapping.EID, to itrInstance, r recentITR) bool {
	src, ok := s.localRLOC(to.rloc)
	if !ok {
		return false
	}
	rec := changed
	if r.eid.IsValid() {
		rec = s.receiverEIDLocked(to.iid, r.eid)
	}
	m := &wire.MapRequest{SMR: true, Nonce: s.newNonce(), SourceEID: changed.Address(),
		ITRRLOCs: []wire.Address{wire.AddrFromIP(src)},
		Records:  []wire.RequestRecord{{MaskLen: rec.MaskLen(), EID: rec.Address()}}}
	b, err := wire.Encode(m)
	if err != nil {
		return false
	}
	s.opts.Sender.Send(b, src, netip.AddrPortFrom(to.rloc, wire.ControlPort))
	return true
}

// receiverEIDLocked names the site of an ITR by one of its hosts: the
// prefix we cache for it when we are an ITR too (a negative entry is not
// its site), else the host itself.
func (s *Server) receiverEIDLocked(iid uint32, host netip.Addr) mapping.EID {
	h := mapping.HostEID(iid, host)
	if s.opts.ITR {
		if p, e, ok := s.cache.LookupPrefix(h); ok && len(e.m.Locators) > 0 {
			return p
		}
	}
	return h
}
