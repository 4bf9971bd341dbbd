package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Registration and data through an RTR (draft-ietf-lisp-nat-traversal
// §5.1.1–§5.1.3, §5.4). Once discovery (nat.go) finds a local RLOC behind
// a NAT and its Map-Server offers RTRs, the ETR registers with that
// Map-Server only through the RTRs: a Map-Register with P and M set whose
// locators are the RTRs in place of the NATed RLOCs (RLOCs not behind NAT
// stay), in an ECM with the R bit, sent from the NATed RLOC's data port
// 4341 to each RTR's 4342 (Options.SendData). That opens the NAT state the
// RTR sends the site's traffic through; repeated every register-interval,
// it is also the keep-alive of that state, so the interval must be shorter
// than the NAT's UDP timeout. The Map-Notify comes back as a
// Data-Map-Notify (HandleDataMapNotify); it installs the RTRs as the
// locators of 0/0 and ::/0 in every instance of the database when the
// local RLOC the data plane encapsulates from (the first of the RTRs'
// family) is behind the NAT, so the ITR sends all its traffic to them and
// needs no Map-Request. A multi-homed xTR whose first RLOC is public
// (§5.4) resolves and encapsulates from that one instead, and its
// Map-Requests and RLOC-probes leave from it, naming no NATed RLOC.

// natSource is the map-cache source of the default entries toward the RTRs.
const natSource = "nat-rtr"

// natRouteLocked says how to register with the Map-Server at ms: through
// rtrs from the NATed local RLOC rloc, or directly (ok false).
func (s *Server) natRouteLocked(ms netip.Addr) (rloc netip.Addr, rtrs []netip.Addr, ok bool) {
	var best *natState
	for k, st := range s.nat {
		if k.ms != ms || !st.behind || len(st.rtrs) == 0 {
			continue
		}
		if best == nil || k.rloc.Less(rloc) {
			best, rloc = st, k.rloc
		}
	}
	if best == nil || s.opts.SendData == nil {
		return netip.Addr{}, nil, false
	}
	return rloc, best.rtrs, true
}

// natedLocked tells whether the local RLOC a is behind a NAT (toward any
// Map-Server).
func (s *Server) natedLocked(a netip.Addr) bool {
	for k, st := range s.nat {
		if k.rloc == a && st.behind && len(st.rtrs) > 0 {
			return true
		}
	}
	return false
}

// natRecords rewrites recs for a registration through rtrs: the NATed
// locators give way to the RTRs (reachable, at the best priority of the
// locators they replace), the others stay.
func (s *Server) natRecordsLocked(recs []wire.EIDRecord, rtrs []netip.Addr) []wire.EIDRecord {
	out := make([]wire.EIDRecord, len(recs))
	for i, r := range recs {
		r.Locators = nil
		prio, replaced := uint8(255), false
		for _, l := range recs[i].Locators {
			if s.natedLocked(l.Address.IP) {
				prio, replaced = min(prio, l.Priority), true
				continue
			}
			r.Locators = append(r.Locators, l)
		}
		if replaced || len(recs[i].Locators) == 0 {
			if prio == 255 {
				prio = 1
			}
			for _, a := range rtrs {
				r.Locators = append(r.Locators, wire.Locator{Priority: prio, Weight: 100 / uint8(len(rtrs)), MPriority: 255,
					Flags: wire.LocatorReachable, Address: wire.AddrFromIP(a)})
			}
		}
		out[i] = r
	}
	return out
}

// sendThroughRTRsLocked sends the signed Map-Register b (m decoded) from
// rloc's data port to each RTR in an ECM with the R bit, the inner header
// addressed to the Map-Server ms.
func (s *Server) sendThroughRTRsLocked(b []byte, ms, rloc netip.Addr, rtrs []netip.Addr) bool {
	signed, err := wire.Decode(b)
	if err != nil {
		return false
	}
	// The outer source port is the data port (SendData), so the NAT state
	// the RTR answers through is 4341's; the inner one is ours (§4.3).
	ecm := &wire.ECM{ForETR: true, IP: wire.InnerIP{Src: rloc, Dst: ms, TTL: 64}, SrcPort: s.natPort,
		DstPort: wire.ControlPort, Message: signed}
	eb, err := ecm.Append(nil)
	if err != nil {
		return false
	}
	sent := false
	for _, rtr := range rtrs {
		if rtr.Is4() != rloc.Is4() {
			continue
		}
		if err := s.opts.SendData(eb, rloc, netip.AddrPortFrom(rtr, wire.ControlPort)); err != nil {
			s.c.registerEncodeFailed.Inc()
			continue
		}
		sent = true
		s.nc.rtrRegisters.Inc()
	}
	return sent
}

// HandleDataMapNotify takes a Data-Map-Notify the data plane received
// (its inner IP packet: IP, UDP, Map-Notify) from an RTR: the Map-Notify
// is checked like one that came directly (our Map-Server's key, our
// nonce) and, when it acknowledges a registration through the RTR,
// makes the RTRs the ITR's default locators.
func (s *Server) HandleDataMapNotify(inner []byte, from netip.AddrPort) {
	b := make([]byte, 4+len(inner))
	b[0] = byte(wire.TypeECM) << 4
	copy(b[4:], inner)
	ecm, err := wire.DecodeECM(b)
	if err != nil || ecm.IP.ChecksumsBad {
		s.nc.dataNotifyDrops["malformed"].Inc()
		return
	}
	m, ok := ecm.Message.(*wire.MapNotify)
	if !ok {
		s.nc.dataNotifyDrops["malformed"].Inc()
		return
	}
	if m.HasXTRID && m.XTRID != s.opts.XTRID {
		// §5.1.1: an error to log, and the message is discarded.
		s.nc.dataNotifyDrops["other-xtr-id"].Inc()
		if now := s.opts.Now(); now.Sub(s.natLogAt) >= time.Minute {
			s.natLogAt = now
			s.log.Error("Data-Map-Notify for another xTR-ID: discarded", "rtr", from, "xtr-id", hexID(m.XTRID))
		}
		return
	}
	raw := b[len(b)-m.Len():]
	ms := netip.AddrPortFrom(ecm.IP.Src.Unmap(), ecm.SrcPort)
	s.nc.dataNotifies.Inc()
	// An unsolicited one (a host of ours moved to another site, a merged
	// set) comes this way too when we register through the RTR.
	s.movedAway(s.handleMapNotify(raw, m, ms, ecm.IP.Dst.Unmap(), s.opts.Sender), ms.Addr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, rtrs, ok := s.natRouteLocked(ms.Addr()); ok && slices.Contains(rtrs, from.Addr()) {
		s.natDefaultsLocked(rtrs)
	}
}

// natDefaultsLocked points 0/0 and ::/0 of every database instance at
// the RTRs, for each family whose data plane source is behind the NAT.
func (s *Server) natDefaultsLocked(rtrs []netip.Addr) {
	if !s.opts.ITR {
		return
	}
	var locs []mapping.Locator
	for _, a := range rtrs {
		if s.dataBehindNATLocked(a.Is4()) {
			locs = append(locs, mapping.Locator{Addr: a, Priority: 1, Weight: 100 / uint8(len(rtrs)), Flags: wire.LocatorReachable})
		}
	}
	if len(locs) == 0 {
		return
	}
	now := s.opts.Now()
	for _, iid := range s.databaseIIDsLocked() {
		for _, p := range []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")} {
			e := mapping.EID{IID: iid, Prefix: p}
			if c, ok := s.cacheIdx[e]; ok && c.source == natSource && sameLocators(c.m.Locators, locs) &&
				c.expires.Sub(now) > s.opts.RegisterInterval*3 {
				continue
			}
			s.installLocked(mapping.Mapping{EID: e, TTL: s.opts.RecordTTL, Locators: slices.Clone(locs)}, now, natSource, false)
		}
	}
}

// natDefaultsGoneLocked removes the default entries toward the RTRs once
// no local RLOC is behind a NAT any more.
func (s *Server) natDefaultsGoneLocked() {
	for e, c := range s.cacheIdx {
		if c.source == natSource {
			s.removeLocked(e)
		}
	}
}

// dataBehindNATLocked tells whether the data plane's outer source of a
// family — the first local RLOC of it (dataplane.OuterSources) — is
// behind a NAT: every local RLOC of the family is, or (§5.4, multi-homed)
// the one the data plane encapsulates from. Then that family's traffic
// goes to the RTRs (0/0): encapsulated straight to a remote RLOC it
// would leave through the NAT, add state there and come from an address
// no mapping names. When the source is a public RLOC the ITR resolves
// and encapsulates directly from it, and only the NATed RLOC's share of
// the incoming traffic comes through the RTR.
func (s *Server) dataBehindNATLocked(v4 bool) bool {
	for _, a := range s.opts.LocalRLOCs {
		if a.Is4() == v4 {
			return s.natedLocked(a)
		}
	}
	return false
}

// publicRLOCLocked is the first local RLOC of a family that is not
// behind a NAT.
func (s *Server) publicRLOCLocked(v4 bool) (netip.Addr, bool) {
	for _, a := range s.opts.LocalRLOCs {
		if a.Is4() == v4 && !s.natedLocked(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (s *Server) databaseIIDsLocked() []uint32 {
	var iids []uint32
	for e := range s.db.All() {
		if !slices.Contains(iids, e.IID) {
			iids = append(iids, e.IID)
		}
	}
	return iids
}
