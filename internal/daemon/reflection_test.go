package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

// msAt is a Map-Server (site 198.51.100.0/24, configured and unregistered,
// so every request for it draws a negative Map-Reply) fed through handle.
func msAt() *Daemon {
	site := mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	return dispatcher(mapserver.New([]mapserver.Site{{Name: "s", Keys: []mapserver.Key{{Alg: wire.AuthHMACSHA256,
		Secret: []byte("k")}}, Prefixes: []mapserver.SitePrefix{{EID: site}}}}, mapserver.Options{}), nil)
}

// feed hands one message to d as received from src on local, and returns
// the answers queued (through the daemon's guard, as the transport does).
func feed(t *testing.T, d *Daemon, m wire.Message, src, local netip.AddrPort) *control.Out {
	t.Helper()
	raw, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	out := &control.Out{Guard: d.guard}
	d.handle(&control.Request{Raw: raw, Src: src, Local: local}, out)
	return out
}

func drops(t *testing.T, d *Daemon, reason string) uint64 {
	t.Helper()
	return lisptest.Counter(t, d.stats, "control.packets_dropped{reason="+reason+"}")
}

// requestECM is an ECM'd Map-Request for 198.51.100.7 from src, inner
// ports sport > dport, naming rlocs as ITR-RLOCs.
func requestECM(src netip.Addr, sport, dport uint16, rlocs ...netip.Addr) *wire.ECM {
	req := &wire.MapRequest{Nonce: 1, Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.7"))}}}
	for _, a := range rlocs {
		req.ITRRLOCs = append(req.ITRRLOCs, wire.AddrFromIP(a))
	}
	return &wire.ECM{IP: wire.InnerIP{Src: src, Dst: netip.MustParseAddr("198.51.100.7"), TTL: 64},
		SrcPort: sport, DstPort: dport, Message: req}
}

// expectDrop checks what one message fed to d drew: with reason "" one
// answer, else none and reason counted once.
func expectDrop(t *testing.T, d *Daemon, out *control.Out, name, reason string) {
	t.Helper()
	if reason == "" {
		if out.Len() != 1 {
			t.Errorf("%s: %d answers, want 1", name, out.Len())
		}
		return
	}
	if out.Len() != 0 {
		t.Errorf("%s: answered", name)
	}
	if got := drops(t, d, reason); got != 1 {
		t.Errorf("%s: %s counted %d, want 1", name, reason, got)
	}
}

// TestReflectionITRRLOC performs the reflection attack of issue #12 (7): an
// ECM'd Map-Request from the network whose only ITR-RLOC is an address
// the Map-Reply must never go to. Each is dropped, counted, and nothing is
// sent; a documentation address (what labs and tests use) is answered.
func TestReflectionITRRLOC(t *testing.T) {
	local := netip.MustParseAddrPort("192.0.2.1:4342") // the Map-Server's own address
	for _, tc := range []struct {
		rloc, src string
		reason    string // "" = answered
	}{
		{"255.255.255.255", "192.0.2.21", "reply-not-global-unicast"},
		{"224.0.0.1", "192.0.2.21", "reply-not-global-unicast"},
		{"ff02::1", "192.0.2.21", "reply-not-global-unicast"},
		{"169.254.0.1", "192.0.2.21", "reply-not-global-unicast"},
		{"fe80::1", "192.0.2.21", "reply-not-global-unicast"},
		{"0.0.0.1", "192.0.2.21", "reply-not-global-unicast"},
		{"127.0.0.1", "192.0.2.21", "reply-not-global-unicast"},
		{"::1", "192.0.2.21", "reply-not-global-unicast"},
		{"::ffff:127.0.0.1", "192.0.2.21", "reply-not-global-unicast"},
		{"192.0.2.1", "192.0.2.21", "reply-to-self"},
		{"192.0.2.1", "192.0.2.1", ""}, // an xTR asking its own co-located Map-Resolver
		{"192.0.2.21", "192.0.2.21", ""},
		{"198.18.0.7", "192.0.2.21", ""},
		{"2001:db8::21", "192.0.2.21", ""},
	} {
		d := msAt()
		src := netip.MustParseAddr(tc.src)
		ecm := requestECM(src, 61000, wire.ControlPort, netip.MustParseAddr(tc.rloc))
		out := feed(t, d, ecm, netip.AddrPortFrom(src, 61000), local)
		expectDrop(t, d, out, "ITR-RLOC "+tc.rloc, tc.reason)
	}
}

// TestReflectionPicksUsableITRRLOC: a request listing a bad ITR-RLOC first
// and a good one after is answered at the good one.
func TestReflectionPicksUsableITRRLOC(t *testing.T) {
	d := msAt()
	good := netip.MustParseAddr("203.0.113.9")
	ecm := requestECM(good, 61000, wire.ControlPort, netip.MustParseAddr("224.0.0.1"), good)
	var sent netip.AddrPort
	d.mux = control.Mux{}
	d.mux.Handle(wire.TypeECM, func(r *control.Request, _ control.Sender) control.DropReason {
		sent = r.ReplyTo
		return control.Handled
	})
	feed(t, d, ecm, netip.MustParseAddrPort("203.0.113.9:61000"), netip.MustParseAddrPort("192.0.2.1:4342"))
	if sent != netip.AddrPortFrom(good, 61000) {
		t.Errorf("reply to %v, want %v", sent, netip.AddrPortFrom(good, 61000))
	}
}

// TestReflectionLoopbackFromLoopback: a request that reached a loopback
// address came from this host, and is answered on loopback (the
// root-free tests run every daemon on 127.0.0.0/8).
func TestReflectionLoopbackFromLoopback(t *testing.T) {
	d := msAt()
	lo := netip.MustParseAddr("127.0.0.1")
	ecm := requestECM(lo, 61000, wire.ControlPort, lo)
	if out := feed(t, d, ecm, netip.MustParseAddrPort("127.0.0.1:61000"), netip.MustParseAddrPort("127.0.0.2:4342")); out.Len() != 1 {
		t.Errorf("%d answers on loopback, want 1", out.Len())
	}
}

func etrDB(rloc netip.Addr) []xtr.DatabaseEntry {
	return []xtr.DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")),
		Locators: []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}}
}

// TestReflectionProbe: a bare RLOC-probe to an ETR names its ITR-RLOC too;
// the answer to a multicast or loopback one (from the network) is not sent.
func TestReflectionProbe(t *testing.T) {
	rloc := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		itr    string
		answer bool
	}{{"224.0.0.1", false}, {"127.0.0.1", false}, {"192.0.2.33", true}} {
		d := dispatcher(nil, xtr.New(xtr.Options{ETR: true, LocalRLOCs: []netip.Addr{rloc},
			Database: etrDB(rloc)}))
		probe := &wire.MapRequest{Probe: true, Nonce: 1, ITRRLOCs: []wire.Address{wire.AddrFromIP(netip.MustParseAddr(tc.itr))},
			Records: []wire.RequestRecord{{MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))}}}
		out := feed(t, d, probe, netip.MustParseAddrPort("192.0.2.33:4342"), netip.AddrPortFrom(rloc, 4342))
		if got := out.Len() == 1; got != tc.answer {
			t.Errorf("probe with ITR-RLOC %s: answered %v, want %v", tc.itr, got, tc.answer)
		}
	}
}

// TestDontMapReply: the D bit asks for no Map-Reply (RFC 9301 §5.2), in an
// ECM to the mapping system and in a probe to an ETR alike.
func TestDontMapReply(t *testing.T) {
	d := msAt()
	itr := netip.MustParseAddr("192.0.2.21")
	ecm := requestECM(itr, 61000, wire.ControlPort, itr)
	ecm.Message.(*wire.MapRequest).DontReply = true
	out := feed(t, d, ecm, netip.AddrPortFrom(itr, 61000), netip.MustParseAddrPort("192.0.2.1:4342"))
	expectDrop(t, d, out, "D set", "dont-map-reply")
	rloc := netip.MustParseAddr("192.0.2.1")
	x := dispatcher(nil, xtr.New(xtr.Options{ETR: true, LocalRLOCs: []netip.Addr{rloc},
		Database: etrDB(rloc)}))
	probe := &wire.MapRequest{Probe: true, DontReply: true, Nonce: 1, ITRRLOCs: []wire.Address{wire.AddrFromIP(itr)},
		Records: []wire.RequestRecord{{MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))}}}
	if out := feed(t, x, probe, netip.AddrPortFrom(itr, 4342), netip.AddrPortFrom(rloc, 4342)); out.Len() != 0 {
		t.Errorf("probe with D set: %d answers", out.Len())
	}
}

// TestECMInnerHeader: RFC 9301 §5.8 — the inner UDP checksum MUST be
// non-zero (and right), and a Map-Request goes to 4342 and never from
// 4341. Each forged ECM is dropped and counted, and nothing answers it.
func TestECMInnerHeader(t *testing.T) {
	itr := netip.MustParseAddr("192.0.2.21")
	build := func(src, dst uint16) *wire.ECM { return requestECM(itr, src, dst, itr) }
	kept := func(e *wire.ECM, udp uint16) *wire.ECM {
		b, err := wire.Encode(e) // the right IPv4 header checksum, then a chosen UDP one
		if err != nil {
			t.Fatal(err)
		}
		back, err := wire.DecodeECM(b)
		if err != nil {
			t.Fatal(err)
		}
		back.IP.UDPChecksum = udp
		return back
	}
	good := build(61000, wire.ControlPort)
	b, _ := wire.Encode(good)
	dec, _ := wire.DecodeECM(b)
	for _, tc := range []struct {
		name   string
		ecm    *wire.ECM
		reason string
	}{
		{"no UDP checksum", kept(build(61000, wire.ControlPort), 0), "ecm-inner-checksum"},
		{"wrong UDP checksum", kept(build(61000, wire.ControlPort), dec.IP.UDPChecksum^0x0101), "ecm-inner-checksum"},
		{"to port 4341", build(61000, wire.DataPort), "ecm-inner-port"},
		{"to port 53", build(61000, 53), "ecm-inner-port"},
		{"from port 4341", build(wire.DataPort, wire.ControlPort), "ecm-inner-port"},
		{"from port 0", build(0, wire.ControlPort), "ecm-inner-port"},
		{"well formed", good, ""},
	} {
		d := msAt()
		out := feed(t, d, tc.ecm, netip.AddrPortFrom(itr, 61000), netip.MustParseAddrPort("192.0.2.1:4342"))
		expectDrop(t, d, out, tc.name, tc.reason)
	}
}

// TestSourceLimiterRemembersBusySource: a flood from 200,000 spoofed
// sources must not give a source that used up its bucket a new burst
// (the limiter used to clear its whole table at 65,536 sources).
func TestSourceLimiterRemembersBusySource(t *testing.T) {
	const burst = 10
	l := newLimiter(1, burst, 1e12, 1<<30)
	now := time.Now().UnixNano() // the clock stands still: no refill
	busy := netip.MustParseAddr("192.0.2.50")
	admitted := 0
	for i := range 200_000 {
		spoofed := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		if i >= 1<<16 {
			spoofed = netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		}
		l.allow(spoofed, now)
		if i%100 == 0 && l.allow(busy, now) == control.Handled {
			admitted++
		}
	}
	if admitted != burst {
		t.Errorf("busy source admitted %d times, want its burst %d", admitted, burst)
	}
}

// TestReflectionRateLimit sends the attack for real: 10,000 ECM'd
// Map-Requests, all naming one victim as ITR-RLOC (per-source limits
// lifted, as for sources the attacker spoofs). The victim receives the
// per-destination burst and rate, not 10,000 Map-Replies, and the rest
// are counted.
func TestReflectionRateLimit(t *testing.T) {
	addrs := lisptest.LoopbackAddrs(t, 2, 4342)
	victim, err := lisptest.NewSink(netip.AddrPortFrom(addrs[1], 0))
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	ms := lisptest.Start(t, fmt.Sprintf(`
control:
  addresses: [%s]
  port: 0
  rate-limit: {per-source: 1000000, per-source-burst: 100000, global: 1000000, global-burst: 100000}
map-server:
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
map-resolver: {}
`, addrs[0]), newWith(Options{})).D
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 10_000
	start := time.Now()
	for i := range n {
		b := ecmRequest(t, "198.51.100.7", 0, victim.Addr(), uint64(i+1))
		if _, err := c.WriteToUDPAddrPort(b, ms.ControlAddrs()[0]); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			time.Sleep(time.Millisecond) // let the daemon keep up: this is about what it sends
		}
	}
	sent := func() uint64 {
		return victim.Packets() + lisptest.Counter(t, ms.Stats(), "control.packets_dropped{reason=rate-limit-destination}")
	}
	lisptest.Eventually(t, 10*time.Second, func() bool { return sent() >= n*9/10 }, "the requests handled")
	elapsed := time.Since(start).Seconds()
	burst := uint64(config.DefaultPerDestinationBurst)
	limit := burst + uint64(config.DefaultPerDestinationRate*elapsed) + 1
	if got := victim.Packets(); got > limit || got < burst {
		t.Errorf("victim received %d Map-Replies in %.1f s, want the burst %d and at most %d", got, elapsed, burst, limit)
	}
}
