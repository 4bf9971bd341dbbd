package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// rlocState is what RLOC-probing knows of one remote locator.
type rlocState struct {
	up        bool
	missed    int
	rtt       time.Duration
	lastProbe time.Time
	lastReply time.Time
	probes    uint64
	replies   uint64
}

type probe struct {
	rloc netip.Addr
	eid  mapping.EID
	sent time.Time
}

// probeTimeout is how long a probe may go unanswered before it counts as
// missed: a third of the interval (at least 200 ms), so a dead locator is
// found well within the three intervals operators expect.
func (s *Server) probeTimeout() time.Duration {
	return min(s.opts.ProbeInterval, max(s.opts.ProbeInterval/3, 200*time.Millisecond))
}

// probeLocked probes every remote RLOC in the map-cache once per interval
// (RFC 9301 §7.1): a Map-Request with P set, sent directly, never through
// the mapping system. A probe unanswered after probeTimeout is a miss and
// is retried at once; an RLOC that misses ProbeMisses in a row is down
// until it answers again.
func (s *Server) probeLocked(now time.Time) {
	if s.opts.ProbeInterval <= 0 {
		return
	}
	s.checkProbesLocked(now)
	if now.Sub(s.lastProbe) < s.opts.ProbeInterval {
		return
	}
	s.lastProbe = now
	seen := map[netip.Addr]mapping.EID{}
	for eid, e := range s.cacheIdx {
		if e.source == natSource {
			// The RTRs we reach through a NAT: our ECM'd Map-Registers
			// and their Data-Map-Notifies are the probes (draft-ietf-
			// lisp-nat-traversal §5.1.2).
			continue
		}
		for _, l := range e.m.Locators {
			if _, ok := seen[l.Addr]; !ok && l.Reachable() {
				seen[l.Addr] = eid
			}
		}
	}
	for rloc := range s.rlocs {
		if _, ok := seen[rloc]; !ok {
			delete(s.rlocs, rloc)
		}
	}
	pending := map[netip.Addr]bool{}
	for _, p := range s.probes {
		pending[p.rloc] = true
	}
	for rloc, eid := range seen {
		if !pending[rloc] {
			s.sendProbeLocked(rloc, eid, now)
		}
	}
}

func (s *Server) checkProbesLocked(now time.Time) {
	timeout := s.probeTimeout()
	for n, p := range s.probes {
		if now.Sub(p.sent) < timeout {
			continue
		}
		delete(s.probes, n)
		st, ok := s.rlocs[p.rloc]
		if !ok {
			continue
		}
		st.missed++
		if st.up && st.missed >= s.opts.ProbeMisses {
			st.up = false
			s.c.rlocDown.Inc()
			s.log.Warn("RLOC down: probes unanswered", "rloc", p.rloc, "missed", st.missed)
			s.opts.Events.Publish(adminapi.Event{Type: adminapi.EventLocatorDown, RLOC: p.rloc, Reason: "probes unanswered", Count: uint64(st.missed)})
			s.setRLOCLocked(p.rloc, false)
		}
		if st.up {
			s.sendProbeLocked(p.rloc, p.eid, now) // retry at once
		}
	}
}

func (s *Server) sendProbeLocked(rloc netip.Addr, eid mapping.EID, now time.Time) {
	src, ok := s.localRLOC(rloc)
	if !ok {
		return
	}
	st := s.rlocs[rloc]
	if st == nil {
		st = &rlocState{up: true}
		s.rlocs[rloc] = st
	}
	m := &wire.MapRequest{Probe: true, Nonce: s.newNonce(), ITRRLOCs: []wire.Address{wire.AddrFromIP(src)},
		Records: []wire.RequestRecord{{MaskLen: eid.MaskLen(), EID: eid.Address()}}}
	b, err := wire.Encode(m)
	if err != nil {
		return
	}
	s.probes[m.Nonce] = &probe{rloc: rloc, eid: eid, sent: now}
	st.lastProbe = now
	st.probes++
	s.opts.Sender.Send(b, src, netip.AddrPortFrom(rloc, wire.ControlPort))
	s.c.probesSent.Inc()
}

func (s *Server) probeReplyLocked(m *wire.MapReply, src netip.AddrPort, now time.Time) {
	p, ok := s.probes[m.Nonce]
	if !ok {
		s.c.replyUnsolicited.Inc()
		return
	}
	// Only the probed ETR answers with authority for its mapping (RFC 9301
	// §5.4, §7.1): a reply without the A bit is no sign of it and waits
	// out the probe's timeout like silence.
	if slices.ContainsFunc(m.Records, func(r wire.EIDRecord) bool { return !r.Authoritative }) {
		s.c.probeReplyDrops["not-authoritative"].Inc()
		return
	}
	delete(s.probes, m.Nonce)
	s.c.probeReplies.Inc()
	st := s.rlocs[p.rloc]
	if st == nil {
		return
	}
	st.rtt, st.lastReply, st.missed = now.Sub(p.sent), now, 0
	st.replies++
	if !st.up {
		st.up = true
		s.c.rlocUp.Inc()
		s.log.Info("RLOC up: probe answered", "rloc", p.rloc, "rtt", st.rtt)
		s.opts.Events.Publish(adminapi.Event{Type: adminapi.EventLocatorUp, RLOC: p.rloc, RTTms: float64(st.rtt) / float64(time.Millisecond)})
		s.setRLOCLocked(p.rloc, true)
	}
}

// setRLOCLocked tells the data plane about a locator state change for
// every cached mapping that uses it.
func (s *Server) setRLOCLocked(rloc netip.Addr, up bool) {
	for eid, e := range s.cacheIdx {
		if e.source == natSource {
			// The RTRs we reach through a NAT: our ECM'd Map-Registers
			// and their Data-Map-Notifies are the probes (draft-ietf-
			// lisp-nat-traversal §5.1.2).
			continue
		}
		for _, l := range e.m.Locators {
			if l.Addr == rloc {
				s.opts.DataPlane.SetLocatorUp(eid, rloc, up)
			}
		}
	}
}
