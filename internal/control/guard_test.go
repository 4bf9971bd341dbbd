package control

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/wire"
)

func TestBucketsEvictLeastRecent(t *testing.T) {
	l := NewBuckets(0, 1, 3) // one token each, never refilled
	a := func(i byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, i}) }
	now := int64(1)
	for i := byte(1); i <= 3; i++ {
		if !l.Allow(a(i), now) {
			t.Fatalf("%v: first token refused", a(i))
		}
	}
	l.Allow(a(1), now) // 1 is now the most recent; 2 the least
	if l.Allow(a(4), now) != true || l.Len() != 3 {
		t.Fatalf("a new address: refused or table grew to %d", l.Len())
	}
	// 2 was evicted and starts afresh; 1 and 3 kept their empty buckets.
	if l.Allow(a(1), now) || l.Allow(a(3), now) {
		t.Error("an address kept in the table got a new burst")
	}
	if !l.Allow(a(2), now) {
		t.Error("the evicted address did not start afresh")
	}
}

func TestTokenBucketRefill(t *testing.T) {
	var b TokenBucket
	now := time.Now().UnixNano()
	for range 2 {
		if !b.Take(now, 1, 2) {
			t.Fatal("burst refused")
		}
	}
	if b.Take(now, 1, 2) {
		t.Fatal("over the burst")
	}
	if !b.Take(now+int64(time.Second), 1, 2) {
		t.Fatal("not refilled after a second")
	}
}

func TestGuardDestination(t *testing.T) {
	g := NewReplyGuard(1, 1, nil, nil)
	g.SetOwn([]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("127.0.0.1")})
	net := netip.MustParseAddr("192.0.2.1")
	lo := netip.MustParseAddr("127.0.0.2")
	for _, tc := range []struct {
		dst   string
		local netip.Addr
		want  DropReason
	}{
		{"255.255.255.255", net, DropReplyNotGlobalUnicast},
		{"224.0.0.1", net, DropReplyNotGlobalUnicast},
		{"239.1.1.1", net, DropReplyNotGlobalUnicast},
		{"ff02::1", net, DropReplyNotGlobalUnicast},
		{"ff0e::1", net, DropReplyNotGlobalUnicast},
		{"169.254.1.1", net, DropReplyNotGlobalUnicast},
		{"fe80::1", net, DropReplyNotGlobalUnicast},
		{"0.0.0.0", net, DropReplyNotGlobalUnicast},
		{"::", net, DropReplyNotGlobalUnicast},
		{"0.1.2.3", net, DropReplyNotGlobalUnicast},
		{"240.0.0.1", net, DropReplyNotGlobalUnicast},
		{"127.0.0.1", net, DropReplyNotGlobalUnicast},
		{"::1", net, DropReplyNotGlobalUnicast},
		{"::ffff:127.0.0.1", net, DropReplyNotGlobalUnicast},
		{"::ffff:224.0.0.1", net, DropReplyNotGlobalUnicast},
		// From loopback (this host) loopback is answered; ours there too,
		// since daemons on one host share 127.0.0.0/8.
		{"127.0.0.1", lo, Handled},
		{"127.0.0.9", lo, Handled},
		{"::1", netip.MustParseAddr("::1"), Handled},
		{"127.0.0.1", netip.Addr{}, Handled}, // a timer's send to a registered peer
		// Documentation ranges (labs, tests), private and global space.
		{"192.0.2.21", net, Handled},
		{"198.51.100.7", net, Handled},
		{"203.0.113.9", net, Handled},
		{"198.18.0.1", net, Handled},
		{"198.19.255.1", net, Handled},
		{"2001:db8::1", net, Handled},
		{"10.1.2.3", net, Handled},
		{"fd00::1", net, Handled},
		{"8.8.8.8", net, Handled},
	} {
		if got := g.Destination(netip.MustParseAddr(tc.dst), tc.local); got != tc.want {
			t.Errorf("%s from %v: %v, want %v", tc.dst, tc.local, got, tc.want)
		}
	}
	if !g.Ours(netip.MustParseAddr("192.0.2.1")) || !g.Ours(netip.MustParseAddr("::ffff:192.0.2.1")) ||
		g.Ours(netip.MustParseAddr("127.0.0.1")) || g.Ours(netip.MustParseAddr("192.0.2.2")) {
		t.Error("Ours: wrong set")
	}
}

// TestGuardRateLimit: Map-Replies and Map-Notifies to one destination get
// a burst, then the rate; each destination has its own bucket, other
// messages pass, and every refusal is counted.
func TestGuardRateLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	var dropped [NumDropReasons]int
	g := NewReplyGuard(0.5, 3, func() time.Time { return now }, func(r DropReason) { dropped[r]++ })
	reply, _ := wire.Encode(&wire.MapReply{Nonce: 1})
	request, _ := wire.Encode(&wire.MapRequest{Nonce: 1, ITRRLOCs: []wire.Address{{}}})
	notify := []byte{byte(wire.TypeMapNotify) << 4, 0, 0, 0}
	victim, other := netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("198.51.100.99")
	src := netip.MustParseAddr("203.0.113.1")
	sent := 0
	for range 100 {
		if g.Check(reply, src, victim) == Handled {
			sent++
		}
		if g.Check(notify, src, victim) == Handled {
			sent++
		}
	}
	if sent != 3 || dropped[DropRateLimitDestination] != 197 {
		t.Errorf("sent %d of 200 to one victim, %d counted, want the burst 3 and 197", sent, dropped[DropRateLimitDestination])
	}
	if g.Check(reply, src, other) != Handled {
		t.Error("another destination shares the victim's bucket")
	}
	if g.Check(request, src, victim) != Handled {
		t.Error("a Map-Request was limited")
	}
	// An Info-Reply goes where its (spoofable) request came from: limited;
	// an Info-Request (an xTR discovering NAT) is not.
	infoReply, _ := wire.Encode(&wire.Info{Reply: true, Nonce: 1})
	infoRequest, _ := wire.Encode(&wire.Info{Nonce: 1})
	if g.Check(infoReply, src, victim) != DropRateLimitDestination {
		t.Error("an Info-Reply passed the victim's empty bucket")
	}
	if g.Check(infoRequest, src, victim) != Handled {
		t.Error("an Info-Request was limited")
	}
	now = now.Add(2 * time.Second) // one token at 0.5/s
	if g.Check(reply, src, victim) != Handled || g.Check(reply, src, victim) == Handled {
		t.Error("not one more after 2 s")
	}
	if g.Check(reply, src, netip.MustParseAddr("255.255.255.255")) != DropReplyNotGlobalUnicast ||
		dropped[DropReplyNotGlobalUnicast] != 1 {
		t.Error("broadcast reply not refused and counted")
	}
	// An Out with the guard does not queue what it refuses.
	out := Out{Guard: g}
	out.Send(reply, src, netip.MustParseAddrPort("224.0.0.1:4342"))
	out.Send(reply, src, netip.MustParseAddrPort("203.0.113.50:4342"))
	if out.Len() != 1 {
		t.Errorf("%d queued, want 1", out.Len())
	}
}

// TestNoBroadcastOnControlSockets: Go turns SO_BROADCAST on for UDP
// sockets; the control sockets turn it off, so the kernel itself refuses
// to send a reply to a broadcast address.
func TestNoBroadcastOnControlSockets(t *testing.T) {
	for _, addrs := range [][]netip.Addr{nil, {netip.MustParseAddr("127.0.0.1")}} {
		tr, err := Listen(addrs, 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tr.socks {
			rc, err := s.udp.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var v int
			var gerr error
			if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST) }); err != nil || gerr != nil {
				t.Fatal(err, gerr)
			}
			if v != 0 {
				t.Errorf("%v: SO_BROADCAST on", s.local)
			}
		}
		tr.Close()
	}
}

// BenchmarkGuardCheck is what every Map-Reply pays: the destination rules
// and a token from its bucket.
func BenchmarkGuardCheck(b *testing.B) {
	g := NewReplyGuard(1e12, 1<<30, nil, nil)
	reply, _ := wire.Encode(&wire.MapReply{Nonce: 1})
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.9")
	b.ReportAllocs()
	for b.Loop() {
		if g.Check(reply, src, dst) != Handled {
			b.Fatal("refused")
		}
	}
}
