package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

var (
	natMS     = netip.MustParseAddr("192.0.2.1")
	natLocal  = netip.MustParseAddr("198.18.1.2") // behind the NAT
	natGlobal = netip.MustParseAddrPort("203.0.113.7:61000")
	natRTR    = netip.MustParseAddr("192.0.2.50")
	natKeyB   = []byte("site-key")
)

func newNATETR(t *testing.T, rlocs ...netip.Addr) (*Server, *lisptest.Sender, *lisptest.Clock, *stats.Registry) {
	c, clk, reg := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0)), stats.NewRegistry()
	s := New(Options{ETR: true, NATTraversal: true, InfoInterval: time.Minute, LocalRLOCs: rlocs, Now: clk.Now, Sender: c, Stats: reg,
		MapServers: []MapServerPeer{{Addr: natMS, KeyID: 3, Alg: wire.AuthHMACSHA256, Secret: natKeyB, WantMapNotify: true}},
		Database: []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")),
			Locators: []mapping.Locator{{Addr: natLocal, Priority: 1, Weight: 100}}}}})
	return s, c, clk, reg
}

// infoRequests takes what was sent and returns the Info-Requests.
func infoRequests(t *testing.T, c *lisptest.Sender) []lisptest.Sent {
	t.Helper()
	var out []lisptest.Sent
	for _, m := range c.Take() {
		if wire.MessageType(m.B[0]>>4) == wire.TypeInfo {
			out = append(out, m)
		}
	}
	return out
}

// answer is the Map-Server's Info-Reply to req as a NAT translated it to global.
func answer(t *testing.T, req lisptest.Sent, global netip.AddrPort, key []byte) []byte {
	t.Helper()
	m, err := wire.Decode(req.B)
	if err != nil {
		t.Fatal(err)
	}
	q := m.(*wire.Info)
	if err := wire.Verify(req.B, natKeyB, wire.AuthOptions{}); err != nil {
		t.Fatalf("Info-Request not signed with the Map-Server's key: %v", err)
	}
	r := &wire.Info{Reply: true, Nonce: q.Nonce, KeyID: q.KeyID, Algorithm: q.Algorithm, AuthData: make([]byte, q.Algorithm.DigestLen()),
		TTL: 1440, MaskLen: q.MaskLen, EID: q.EID, NATAddress: wire.Address{AFI: wire.AFILCAF, LCAF: &wire.LCAF{Type: wire.LCAFNATTraversal,
			Body: &wire.NATTraversalLCAF{MSPort: 4342, ETRPort: global.Port(), GlobalETR: wire.AddrFromIP(global.Addr()),
				MS: wire.AddrFromIP(natMS), RTRs: []wire.Address{wire.AddrFromIP(natRTR)}}}}}
	b, err := wire.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Sign(b, key, wire.AuthOptions{}); err != nil {
		t.Fatal(err)
	}
	return b
}

func deliver(t *testing.T, s *Server, b []byte, from netip.Addr) control.DropReason {
	t.Helper()
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return s.HandleInfoReply(&control.Request{Raw: b, Msg: m, Src: netip.AddrPortFrom(from, 4342)}, nil)
}

func TestNATDiscovery(t *testing.T) {
	s, c, clk, reg := newNATETR(t, natLocal)
	s.Tick()
	reqs := infoRequests(t, c)
	if len(reqs) != 1 || reqs[0].Src != natLocal || reqs[0].To != netip.AddrPortFrom(natMS, wire.ControlPort) {
		t.Fatalf("Info-Requests %v, want one from %v to the Map-Server", reqs, natLocal)
	}
	// Replies that must not count: a wrong key, from elsewhere, an unknown nonce.
	deliver(t, s, answer(t, reqs[0], natGlobal, []byte("forged")), natMS)
	deliver(t, s, answer(t, reqs[0], natGlobal, natKeyB), natRTR)
	if st := s.NAT(); len(st) != 1 || st[0].State != "discovering" || st[0].Translated != nil {
		t.Fatalf("after bad replies: %+v", st)
	}
	for reason, want := range map[string]uint64{"bad-auth": 1, "not-from-map-server": 1} {
		if got := lisptest.Counter(t, reg, "etr.info_replies_dropped{reason="+reason+"}"); got != want {
			t.Errorf("info_replies_dropped{%s} = %d, want %d", reason, got, want)
		}
	}
	// Unanswered, it goes again after infoRetry.
	clk.Advance(infoRetry)
	s.Tick()
	reqs = infoRequests(t, c)
	if len(reqs) != 1 {
		t.Fatalf("%d Info-Requests after %v unanswered, want 1", len(reqs), infoRetry)
	}
	deliver(t, s, answer(t, reqs[0], natGlobal, natKeyB), natMS)
	st := s.NAT()
	if len(st) != 1 || st[0].State != "behind-nat" || *st[0].Translated != natGlobal || len(st[0].RTRs) != 1 || st[0].RTRs[0] != natRTR {
		t.Fatalf("after the reply: %+v", st)
	}
	if deliver(t, s, answer(t, reqs[0], natGlobal, natKeyB), natMS); lisptest.Counter(t, reg, "etr.info_replies_dropped{reason=unknown-nonce}") != 1 {
		t.Error("a replayed Info-Reply was taken")
	}
	// Quiet until InfoInterval, then again.
	clk.Advance(30 * time.Second)
	s.Tick()
	if n := len(infoRequests(t, c)); n != 0 {
		t.Errorf("%d Info-Requests before the interval", n)
	}
	clk.Advance(31 * time.Second)
	s.Tick()
	reqs = infoRequests(t, c)
	if len(reqs) != 1 {
		t.Fatalf("%d Info-Requests after the interval, want 1", len(reqs))
	}
	// The reply says we are no longer translated: the NAT is gone.
	deliver(t, s, answer(t, reqs[0], netip.AddrPortFrom(natLocal, 4342), natKeyB), natMS)
	if st := s.NAT(); st[0].State != "no-nat" {
		t.Errorf("still behind NAT: %+v", st)
	}
	if got := lisptest.Counter(t, reg, "etr.nat_changes"); got != 2 {
		t.Errorf("nat_changes %d, want 2 (found, gone)", got)
	}
}

// TestNATDiscoveryPerRLOC: each local RLOC of the Map-Server's family is
// discovered on its own (§5.4), and a new address is asked about at once.
func TestNATDiscoveryPerRLOC(t *testing.T) {
	second := netip.MustParseAddr("192.0.2.30")
	s, c, _, _ := newNATETR(t, natLocal, second, netip.MustParseAddr("2001:db8::1"))
	s.Tick()
	from := map[netip.Addr]bool{}
	for _, r := range infoRequests(t, c) {
		from[r.Src] = true
	}
	if len(from) != 2 || !from[natLocal] || !from[second] {
		t.Fatalf("Info-Requests from %v, want one from each IPv4 RLOC", from)
	}
	moved := netip.MustParseAddr("198.18.1.9")
	s.mu.Lock()
	s.opts.LocalRLOCs = []netip.Addr{moved, second}
	s.mu.Unlock()
	s.Tick()
	reqs := infoRequests(t, c)
	if len(reqs) != 1 || reqs[0].Src != moved {
		t.Fatalf("after the address change: %v, want one Info-Request from %v", reqs, moved)
	}
	if st := s.NAT(); len(st) != 2 {
		t.Errorf("discoveries %+v, want the two current RLOCs", st)
	}
}

// TestNoNATTraversalNoInfo: without the option nothing changes.
func TestNoNATTraversalNoInfo(t *testing.T) {
	c := &lisptest.Sender{}
	s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{natLocal}, Sender: c,
		MapServers: []MapServerPeer{{Addr: natMS, Alg: wire.AuthHMACSHA256, Secret: natKeyB}},
		Database:   []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))}}})
	s.Tick()
	if n := len(infoRequests(t, c)); n != 0 {
		t.Errorf("%d Info-Requests with nat-traversal off", n)
	}
}
