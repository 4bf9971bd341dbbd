package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// NAT discovery (draft-ietf-lisp-nat-traversal §4.1, §5.1, §5.4). With
// Options.NATTraversal an ETR asks each of its Map-Servers, from each of
// its local RLOCs of that Map-Server's family, how it looks from there:
// an Info-Request signed with the Map-Server's key, answered by an
// Info-Reply signed with the same key that names the source address and
// port the request reached the Map-Server with, and the RTRs offered. An
// RLOC whose translated address or port is not its own is behind a NAT.
// Discovery runs at start, again as soon as the set of local RLOCs changes
// (an address moved), and every InfoInterval after a reply; until a reply
// comes the request is repeated every infoRetry.

// infoRetry is how soon an unanswered Info-Request goes again.
const infoRetry = 5 * time.Second

// natKey names one discovery: one local RLOC toward one Map-Server.
type natKey struct {
	ms, rloc netip.Addr
}

// natState is what one discovery learned.
type natState struct {
	nonce    uint64 // of the outstanding Info-Request; 0 when none
	next     time.Time
	sent     time.Time
	replied  time.Time // last Info-Reply; zero: none yet
	global   netip.AddrPort
	msRLOC   netip.Addr
	rtrs     []netip.Addr
	behind   bool
	requests uint64
	replies  uint64
}

type natCounters struct {
	infoRequests, infoReplies, natChanges *stats.Counter
	infoDrops                             map[string]*stats.Counter
	rtrRegisters, dataNotifies            *stats.Counter
	dataNotifyDrops                       map[string]*stats.Counter
}

var infoDropReasons = []string{"unknown-nonce", "bad-auth", "not-from-map-server", "no-nat-lcaf"}

func newNATCounters(r *stats.Registry) natCounters {
	c := func(name, help string, labels ...[2]string) *stats.Counter {
		return r.Counter(stats.Desc{Subsystem: "etr", Name: name, Help: help, Labels: labels})
	}
	n := natCounters{
		infoRequests:    c("info_requests_sent", "Info-Requests sent to discover NAT (draft-ietf-lisp-nat-traversal)."),
		infoReplies:     c("info_replies_received", "Info-Replies accepted."),
		natChanges:      c("nat_changes", "Discoveries whose outcome changed: NAT found or gone, or a new translated address or port."),
		infoDrops:       map[string]*stats.Counter{},
		rtrRegisters:    c("rtr_map_registers_sent", "ECM'd Map-Registers sent through an RTR from the data port (behind NAT)."),
		dataNotifies:    c("data_map_notifies_received", "Data-Map-Notifies from an RTR handed to the Map-Notify checks."),
		dataNotifyDrops: map[string]*stats.Counter{},
	}
	for _, r := range infoDropReasons {
		n.infoDrops[r] = c("info_replies_dropped", "Info-Replies not taken, by reason.", [2]string{"reason", r})
	}
	for _, r := range []string{"malformed", "other-xtr-id"} {
		n.dataNotifyDrops[r] = c("data_map_notifies_dropped", "Data-Map-Notifies not taken, by reason.", [2]string{"reason", r})
	}
	return n
}

// natDueLocked sends the Info-Requests that are due, first bringing the
// discoveries in line with the current local RLOCs.
func (s *Server) natDueLocked(now time.Time) {
	if !s.opts.NATTraversal || !s.opts.ETR {
		return
	}
	if s.nat == nil {
		s.nat = map[natKey]*natState{}
	}
	want := map[natKey]bool{}
	for _, p := range s.peers {
		for _, a := range s.opts.LocalRLOCs {
			if a.Is4() != p.Addr.Is4() {
				continue
			}
			k := natKey{ms: p.Addr, rloc: a}
			want[k] = true
			if _, ok := s.nat[k]; !ok {
				s.nat[k] = &natState{next: now}
			}
		}
	}
	for k := range s.nat {
		if !want[k] {
			delete(s.nat, k) // an RLOC gone: what it learned is void
		}
	}
	eid, ok := s.firstEIDLocked()
	if !ok {
		return
	}
	for k, st := range s.nat {
		if now.Before(st.next) {
			continue
		}
		p := s.peerAt(k.ms)
		if p == nil {
			continue
		}
		st.nonce = s.newNonce()
		m := &wire.Info{Nonce: st.nonce, KeyID: p.KeyID, Algorithm: p.Alg, AuthData: make([]byte, p.Alg.DigestLen()),
			MaskLen: eid.MaskLen(), EID: eid.Address()}
		b, err := m.Append(nil)
		if err == nil {
			err = wire.Sign(b, p.Secret, wire.AuthOptions{})
		}
		if err != nil {
			s.log.Error("Info-Request not encoded", "map-server", k.ms, "err", err)
			st.next = now.Add(s.opts.InfoInterval)
			continue
		}
		st.sent, st.next = now, now.Add(infoRetry)
		st.requests++
		s.nc.infoRequests.Inc()
		s.opts.Sender.Send(b, k.rloc, netip.AddrPortFrom(k.ms, wire.ControlPort))
	}
}

func (s *Server) peerAt(a netip.Addr) *peerState {
	for _, p := range s.peers {
		if p.Addr == a {
			return p
		}
	}
	return nil
}

// firstEIDLocked is the EID-prefix an Info-Request names: the Map-Server
// finds the site (and key) by it.
func (s *Server) firstEIDLocked() (mapping.EID, bool) {
	for e := range s.db.All() {
		return e, true
	}
	return mapping.EID{}, false
}

// HandleInfoReply takes the Info-Reply to one of our Info-Requests.
func (s *Server) HandleInfoReply(r *control.Request, _ control.Sender) control.DropReason {
	m, ok := r.Msg.(*wire.Info)
	if !ok || !m.Reply {
		return control.DropUnexpectedType
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var key natKey
	var st *natState
	for k, v := range s.nat {
		if v.nonce != 0 && v.nonce == m.Nonce {
			key, st = k, v
			break
		}
	}
	switch {
	case st == nil:
		return s.infoDrop("unknown-nonce")
	case r.Src.Addr().Unmap() != key.ms:
		return s.infoDrop("not-from-map-server")
	}
	p := s.peerAt(key.ms)
	if p == nil || m.KeyID != p.KeyID || wire.Verify(r.Raw, p.Secret, wire.AuthOptions{}) != nil {
		return s.infoDrop("bad-auth")
	}
	var nat *wire.NATTraversalLCAF
	if m.NATAddress.LCAF != nil {
		nat, _ = m.NATAddress.LCAF.Body.(*wire.NATTraversalLCAF)
	}
	if nat == nil || !nat.GlobalETR.IP.IsValid() {
		return s.infoDrop("no-nat-lcaf")
	}
	now := s.opts.Now()
	global := netip.AddrPortFrom(nat.GlobalETR.IP.Unmap(), nat.ETRPort)
	behind := global.Addr() != key.rloc || (s.opts.ControlPort != 0 && global.Port() != s.opts.ControlPort)
	var rtrs []netip.Addr
	for _, a := range nat.RTRs {
		if a.IP.IsValid() {
			rtrs = append(rtrs, a.IP.Unmap())
		}
	}
	if behind != st.behind || global != st.global || !slices.Equal(rtrs, st.rtrs) || st.replied.IsZero() {
		if !st.replied.IsZero() || behind {
			s.nc.natChanges.Inc()
		}
		s.log.Info("nat discovery", "map-server", key.ms, "rloc", key.rloc, "behind-nat", behind, "translated", global, "rtrs", rtrs)
	}
	// Whether and through which RTRs we register changes: register now,
	// not at the next interval.
	reroute := behind != st.behind || !slices.Equal(rtrs, st.rtrs) || behind && global != st.global
	st.nonce, st.replied, st.global, st.behind, st.rtrs = 0, now, global, behind, rtrs
	st.msRLOC = nat.MS.IP
	st.replies++
	st.next = now.Add(s.opts.InfoInterval)
	s.nc.infoReplies.Inc()
	if reroute {
		p.nextRegister = now
		if !behind && !s.dataBehindNATLocked(key.rloc.Is4()) {
			s.natDefaultsGoneLocked()
		}
	}
	return control.Handled
}

func (s *Server) infoDrop(reason string) control.DropReason {
	s.nc.infoDrops[reason].Inc()
	return control.Handled
}

// NAT returns the NAT discoveries, by Map-Server and local RLOC.
func (s *Server) NAT() []adminapi.NATDiscovery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]adminapi.NATDiscovery, 0, len(s.nat))
	for k, st := range s.nat {
		d := adminapi.NATDiscovery{MapServer: k.ms, LocalRLOC: k.rloc, State: "discovering", RTRs: slices.Clone(st.rtrs),
			Requests: st.requests, Replies: st.replies}
		if d.RTRs == nil {
			d.RTRs = []netip.Addr{}
		}
		if !st.replied.IsZero() {
			g := st.global // a copy: the view leaves the lock
			d.State, d.Translated, d.LastReply = "no-nat", &g, tp(st.replied)
			if st.behind {
				d.State = "behind-nat"
			}
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b adminapi.NATDiscovery) int {
		if c := a.MapServer.Compare(b.MapServer); c != 0 {
			return c
		}
		return a.LocalRLOC.Compare(b.LocalRLOC)
	})
	return out
}
