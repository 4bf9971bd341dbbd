package dataplane

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// Every inner × outer family combination: the ITR's datagram carries the
// right outer addresses, port, TTL and TOS and a LISP header with N and I
// set, followed by the inner packet byte for byte; the ETR writes the
// inner packet, unchanged, to its TUN.
func TestEncapDecapAllFamilies(t *testing.T) {
	for _, inner := range []int{4, 6} {
		for _, outer := range []int{4, 6} {
			t.Run(fmt.Sprintf("inner%d-outer%d", inner, outer), func(t *testing.T) {
				tp := &tap{}
				a, b, _ := pair(t, outer, nil, tp.fn)
				src, dst := hostA4, hostB4
				if inner == 6 {
					src, dst = hostA6, hostB6
				}
				pkt := buildPkt(pktSpec{src: src, dst: dst, sport: 1234, dport: 80, ttl: 61, tos: 0xb8 | ecnECT0, size: 300})
				a.tun().Inject(pkt)
				got := recv(t, b.tun())
				if !bytes.Equal(got, pkt) {
					t.Fatalf("delivered packet differs:\n got % x\nwant % x", got, pkt)
				}
				d := tp.all()
				if len(d) != 1 {
					t.Fatalf("%d datagrams, want 1", len(d))
				}
				o, p := d[0].o, d[0].payload
				wantSrc, wantDst := rlocA4, rlocB4
				if outer == 6 {
					wantSrc, wantDst = rlocA6, rlocB6
				}
				if o.Src != wantSrc || o.Dst != wantDst {
					t.Errorf("outer %s -> %s, want %s -> %s", o.Src, o.Dst, wantSrc, wantDst)
				}
				if o.SrcPort < 49152 {
					t.Errorf("source port %d outside 49152-65535", o.SrcPort)
				}
				if o.TTL != 61 || o.TOS != 0xb8|ecnECT0 {
					t.Errorf("outer TTL %d TOS %#x, want 61 and %#x", o.TTL, o.TOS, 0xb8|ecnECT0)
				}
				if p[0] != wire.DataN|wire.DataI {
					t.Errorf("flags %#02x, want N and I only (%#02x)", p[0], wire.DataN|wire.DataI)
				}
				if !bytes.Equal(p[4:8], []byte{0, 0, 0, 0}) {
					t.Errorf("IID/LSB word % x, want IID 0 and no LSBs", p[4:8])
				}
				if !bytes.Equal(p[8:], pkt) {
					t.Errorf("inner packet changed in flight")
				}
				lisptest.Eventually(t, 5*time.Second, func() bool {
					s := a.e.Stats()
					return s.EncapsulatedPackets == 1 && s.EncapsulatedBytes == 300 && s.CacheHits == 1
				}, "encap counters")
				lisptest.Eventually(t, 5*time.Second, func() bool { return b.e.Stats().DecapsulatedPackets == 1 }, "decap counter")
			})
		}
	}
}

// With NoNonce the ITR sends N, L, E and V all 0 (the public Internet,
// RFC 9300 §4.1) and a zero nonce field; the ETR takes such packets.
func TestNoNonce(t *testing.T) {
	tp := &tap{}
	a, b, _ := pair(t, 4, func(c *Config) { c.NoNonce = true }, tp.fn)
	a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostB4}))
	lisptest.Eventually(t, 5*time.Second, func() bool { return tp.len() == 1 }, "one datagram")
	if h := wire.DataHeader(tp.all()[0].payload); h.Flags() != wire.DataI || h.Nonce() != 0 {
		t.Errorf("header flags %#x nonce %d, want I only and no nonce", h.Flags(), h.Nonce())
	}
	<-b.tun().Written()
}

// A flow keeps its RLOC and source port; nonces differ per packet.
func TestFlowStickiness(t *testing.T) {
	tp := &tap{}
	a, b, _ := pair(t, 4, nil, tp.fn)
	a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, eidB4), Locators: []Locator{
		{Addr: rlocB4, Priority: 1, Weight: 50, Up: true},
		{Addr: netip.MustParseAddr("192.0.2.3"), Priority: 1, Weight: 50, Up: true},
	}})
	pkt := buildPkt(pktSpec{src: hostA4, dst: hostB4, proto: protoTCP, sport: 40000, dport: 443})
	for range 100 {
		a.tun().Inject(pkt)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return tp.len() == 100 }, "100 datagrams")
	d := tp.all()
	nonces := map[uint32]bool{}
	for _, x := range d {
		if x.o.Dst != d[0].o.Dst || x.o.SrcPort != d[0].o.SrcPort {
			t.Fatalf("flow moved: %s:%d then %s:%d", d[0].o.Dst, d[0].o.SrcPort, x.o.Dst, x.o.SrcPort)
		}
		nonces[wire.DataHeader(x.payload).Nonce()] = true
	}
	if len(nonces) < 95 {
		t.Errorf("only %d distinct nonces in 100 packets", len(nonces))
	}
	_ = b
}

// RLOC choice over 10,000 flows follows the weights within 5 %.
func TestRLOCWeights(t *testing.T) {
	r1, r2, r3 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.13")
	cases := []struct {
		name string
		locs []Locator
		want map[netip.Addr]float64
		down []netip.Addr
	}{
		{"50/50", []Locator{{Addr: r1, Priority: 1, Weight: 50, Up: true}, {Addr: r2, Priority: 1, Weight: 50, Up: true}},
			map[netip.Addr]float64{r1: .5, r2: .5}, nil},
		{"70/30", []Locator{{Addr: r1, Priority: 1, Weight: 70, Up: true}, {Addr: r2, Priority: 1, Weight: 30, Up: true}},
			map[netip.Addr]float64{r1: .7, r2: .3}, nil},
		{"weights-zero-equal", []Locator{{Addr: r1, Priority: 1, Up: true}, {Addr: r2, Priority: 1, Up: true}, {Addr: r3, Priority: 1, Up: true}},
			map[netip.Addr]float64{r1: 1. / 3, r2: 1. / 3, r3: 1. / 3}, nil},
		{"priority-255-never", []Locator{{Addr: r1, Priority: 255, Weight: 100, Up: true}, {Addr: r2, Priority: 2, Weight: 10, Up: true}},
			map[netip.Addr]float64{r2: 1}, nil},
		{"best-priority-only", []Locator{{Addr: r1, Priority: 1, Weight: 10, Up: true}, {Addr: r2, Priority: 2, Weight: 90, Up: true}},
			map[netip.Addr]float64{r1: 1}, nil},
		{"next-priority-when-best-down", []Locator{{Addr: r1, Priority: 1, Weight: 50, Up: true}, {Addr: r3, Priority: 1, Weight: 50, Up: true},
			{Addr: r2, Priority: 2, Weight: 100, Up: true}, {Addr: netip.MustParseAddr("192.0.2.14"), Priority: 255, Up: true}},
			map[netip.Addr]float64{r2: 1}, []netip.Addr{r1, r3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			counts := map[netip.Addr]int{}
			done := make(chan struct{}, 1)
			total := 0
			const flows = 10000
			fn := dptest.NewNet()
			fn.Tap = func(_ []byte, o *Outer) {
				counts[o.Dst]++ // one ITR goroutine sends
				if total++; total == flows {
					done <- struct{}{}
				}
			}
			a := newNode(t, fn, []netip.Addr{rlocA4}, nil, nil)
			a.e.seed = 1 // deterministic: the split is a property of the hash, not luck
			eid := mapping.NewEID(0, eidB4)
			a.e.SetMapCache(CacheEntry{EID: eid, Locators: tc.locs})
			for _, d := range tc.down {
				a.e.SetLocatorUp(eid, d, false)
			}
			for i := range flows {
				a.tun().Inject(buildPkt(pktSpec{src: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), dst: hostB4,
					proto: protoUDP, sport: uint16(1024 + i), dport: 53}))
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("only %d of %d flows sent", total, flows)
			}
			for addr, n := range counts {
				if tc.want[addr] == 0 {
					t.Errorf("%d flows went to %s, which must get none", n, addr)
				}
			}
			for addr, w := range tc.want {
				got := float64(counts[addr]) / flows
				if got < w*0.95 || got > w*1.05 {
					t.Errorf("%s got %.3f of the flows, want %.3f ± 5 %%", addr, got, w)
				}
			}
			// The per-RLOC counters say the same (added just after the
			// send the tap saw).
			for _, l := range tc.locs {
				c := a.e.k.rlocs.get(l.Addr)
				want := uint64(counts[l.Addr])
				deadline := time.Now().Add(5 * time.Second)
				for c.pkts.Load() != want && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if got := c.pkts.Load(); got != want {
					t.Errorf("rloc_packets_encapsulated{rloc=%s} = %d, the tap saw %d", l.Addr, got, want)
				}
				if want > 0 && c.bytes.Load() < want*20 {
					t.Errorf("rloc_bytes_encapsulated{rloc=%s} = %d for %d packets", l.Addr, c.bytes.Load(), want)
				}
			}
		})
	}
}

// The per-RLOC counters stop at maxRLOCCounters series: past it, locators
// are counted in the totals only.
func TestRLOCCountersBounded(t *testing.T) {
	r := rlocCounts{reg: stats.NewRegistry()}
	for i := range maxRLOCCounters {
		if r.get(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})) == nil {
			t.Fatalf("RLOC %d has no counters", i)
		}
	}
	if r.get(netip.MustParseAddr("203.0.113.1")) != nil {
		t.Fatal("an RLOC past the bound got counters")
	}
	if r.get(netip.AddrFrom4([4]byte{198, 18, 0, 1})) == nil {
		t.Fatal("a counted RLOC lost its counters")
	}
}

// Locators of a family with no local RLOC, down or priority 255 leave an
// entry with nothing usable: dropped and counted.
func TestNoUsableLocator(t *testing.T) {
	fn := dptest.NewNet()
	a := newNode(t, fn, []netip.Addr{rlocA4}, nil, nil)
	a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, eidB4), Locators: []Locator{
		{Addr: rlocB6, Priority: 1, Weight: 100, Up: true}, // no IPv6 local RLOC
		{Addr: rlocB4, Priority: 1, Weight: 100, Up: false},
		{Addr: netip.MustParseAddr("192.0.2.3"), Priority: 255, Up: true},
	}})
	a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostB4}))
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.dropped("no-usable-locator") == 1 }, "no-usable-locator")
	// The probe says the IPv4 locator is back: traffic flows.
	a.e.SetLocatorUp(mapping.NewEID(0, eidB4), rlocB4, true)
	a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostB4}))
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.e.Stats().EncapsulatedPackets == 1 }, "encapsulation")
}

// Instance IDs travel in the I bit; the ETR picks the TUN by IID and
// drops unknown ones.
func TestInstanceID(t *testing.T) {
	tp := &tap{}
	fn := dptest.NewNet()
	fn.Tap = tp.fn
	a := newNode(t, fn, []netip.Addr{rlocA4}, []uint32{7, 0x123456}, nil)
	b := newNode(t, fn, []netip.Addr{rlocB4}, []uint32{7, 0x123456}, nil)
	for _, iid := range []uint32{7, 0x123456} {
		b.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(7, eidB4), mapping.NewEID(0x123456, eidB4)})
		a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(iid, eidB4), Locators: []Locator{{Addr: rlocB4, Priority: 1, Up: true}}})
	}
	pkt := buildPkt(pktSpec{src: hostA4, dst: hostB4})
	a.tuns[0x123456].Inject(pkt)
	if got := recv(t, b.tuns[0x123456]); !bytes.Equal(got, pkt) {
		t.Fatal("packet changed")
	}
	none(t, b.tuns[7])
	h := wire.DataHeader(tp.all()[0].payload)
	if !h.I() || h.InstanceID() != 0x123456 || h.LSBs() != 0 || h.L() {
		t.Errorf("header %s, want IID 0x123456 without LSBs", h)
	}
	// An IID the ETR does not serve, and no I bit (IID 0, not served).
	for _, flags := range []uint8{wire.DataN | wire.DataI, wire.DataN} {
		payload := make([]byte, 8, 8+len(pkt))
		wire.DataHeader(payload).Put(flags, 1, 99<<8)
		payload = append(payload, pkt...)
		b.ul.Inject(payload, Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("unknown-iid") == 2 }, "unknown-iid drops")
}

// The ETR drops what is not for it: another RLOC, a non-local EID, a
// malformed header or inner packet, an encrypted payload; it takes a header
// with E but not N (E then means nothing).
func TestETRDrops(t *testing.T) {
	_, b, _ := pair(t, 4, nil, nil)
	inner := buildPkt(pktSpec{src: hostA4, dst: hostB4})
	lisp := func(p []byte) []byte {
		h := make([]byte, 8, 8+len(p))
		wire.DataHeader(h).Put(wire.DataN|wire.DataI, 5, 0)
		return append(h, p...)
	}
	b.ul.Inject(lisp(inner), Outer{Src: rlocA4, Dst: netip.MustParseAddr("192.0.2.99"), TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("not-my-rloc") == 1 }, "not-my-rloc")

	b.ul.Inject(lisp(buildPkt(pktSpec{src: hostA4, dst: netip.MustParseAddr("192.0.2.200")})), Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("not-local-eid") == 1 }, "not-local-eid")

	bad := append([]byte(nil), inner...)
	bad[0] = 0x55 // version 5
	b.ul.Inject(lisp(bad), Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	short := lisp(inner)[:30] // total length beyond the datagram
	b.ul.Inject(short, Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	b.ul.Inject([]byte{0x80, 0, 0}, Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("malformed") == 3 }, "malformed")
	// E without N: E is ignored (RFC 9300 §5.3), the packet delivered.
	decap := b.e.Stats().DecapsulatedPackets
	eBit := lisp(inner)
	eBit[0] = wire.DataE
	b.ul.Inject(eBit, Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.e.Stats().DecapsulatedPackets == decap+1 }, "E without N decapsulated")
	<-b.tun().Written()

	enc := lisp(inner)
	enc[0] |= 0x01 // KK: lisp-crypto key 1
	b.ul.Inject(enc, Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("encrypted") == 1 }, "encrypted")
	none(t, b.tun())
}

// A packet without a map-cache entry waits in the miss queue, the Miss
// hook fires at most once per second per destination, and SetMapCache
// releases the packets in order.
func TestMissQueue(t *testing.T) {
	a, b, _ := pair(t, 4, nil, nil)
	dst := netip.MustParseAddr("203.0.114.1") // not covered... yet
	eid := mapping.NewEID(0, netip.MustParsePrefix("203.0.114.0/24"))
	b.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, eidB4), eid})
	var sent [][]byte
	for i := range 3 {
		p := buildPkt(pktSpec{src: hostA4, dst: dst, id: uint16(i), sport: 1, dport: 2})
		sent = append(sent, p)
		a.tun().Inject(p)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.e.Stats().MissQueuePackets == 3 }, "3 queued")
	lisptest.Eventually(t, 5*time.Second, func() bool { m, _, _ := a.hooks.counts(); return m == 1 }, "the Miss hook")
	a.hooks.mu.Lock()
	if a.hooks.misses[0] != (hostEvent{0, dst, hostA4}) {
		t.Errorf("Miss(%v), want Miss(0, %s, %s): the packet's source is the Map-Request's Source-EID", a.hooks.misses[0], dst, hostA4)
	}
	a.hooks.mu.Unlock()

	// Within the second: no second call. After it: one more.
	a.clock.Advance(500 * time.Millisecond)
	a.tun().Inject(sent[0])
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.e.Stats().MissQueuePackets == 4 }, "4 queued")
	a.clock.Advance(600 * time.Millisecond)
	a.tun().Inject(sent[1])
	lisptest.Eventually(t, 5*time.Second, func() bool { m, _, _ := a.hooks.counts(); return m == 2 }, "second Miss")
	// Another destination gets its own call straight away.
	a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: netip.MustParseAddr("203.0.114.2")}))
	lisptest.Eventually(t, 5*time.Second, func() bool { m, _, _ := a.hooks.counts(); return m == 3 }, "Miss for the other host")

	a.e.SetMapCache(CacheEntry{EID: eid, Locators: []Locator{{Addr: rlocB4, Priority: 1, Up: true}}})
	want := [][]byte{sent[0], sent[1], sent[2], sent[0], sent[1]}
	got := map[netip.Addr][][]byte{}
	for range 6 {
		p := recv(t, b.tun())
		got[dstAddr(p)] = append(got[dstAddr(p)], p)
	}
	if len(got[dst]) != len(want) {
		t.Fatalf("%d packets released to %s, want %d", len(got[dst]), dst, len(want))
	}
	for i, p := range got[dst] {
		if !bytes.Equal(p, want[i]) {
			t.Errorf("released packet %d out of order or changed", i)
		}
	}
	lisptest.Eventually(t, 5*time.Second, func() bool {
		s := a.e.Stats()
		return s.MissQueued == 6 && s.MissReleased == 6 && s.MissQueuePackets == 0 && s.CacheMisses == 6
	}, "miss counters")
}

// The miss queue is bounded per destination and in total; what waits too
// long is dropped and counted.
func TestMissQueueLimits(t *testing.T) {
	fn := dptest.NewNet()
	a := newNode(t, fn, []netip.Addr{rlocA4}, nil, func(c *Config) { c.MissQueueTotal = 12 })
	for i := range 20 {
		a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostB4, id: uint16(i)}))
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.dropped("no-route-miss-queue-full") == 12 }, "per-destination overflow")
	for i := range 10 {
		a.tun().Inject(buildPkt(pktSpec{src: hostA6, dst: hostB6, id: uint16(i)}))
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.dropped("no-route-miss-queue-full") == 18 }, "total overflow")
	if n := a.e.Stats().MissQueuePackets; n != 12 {
		t.Fatalf("%d packets queued, want 12", n)
	}
	a.clock.Advance(DefaultMissQueueTimeout)
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.dropped("miss-expired") == 12 }, "expiry")
	if n := a.e.Stats().MissQueuePackets; n != 0 {
		t.Fatalf("%d packets still queued", n)
	}
}

// An expired entry counts as a miss.
func TestExpiredEntry(t *testing.T) {
	a, b, _ := pair(t, 4, nil, nil)
	a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, eidB4), Expires: a.clock.Now().Add(time.Minute),
		Locators: []Locator{{Addr: rlocB4, Priority: 1, Up: true}}})
	pkt := buildPkt(pktSpec{src: hostA4, dst: hostB4})
	a.tun().Inject(pkt)
	recv(t, b.tun())
	a.clock.Advance(time.Minute)
	a.tun().Inject(pkt)
	lisptest.Eventually(t, 5*time.Second, func() bool { m, _, _ := a.hooks.counts(); return m == 1 }, "miss on expiry")
	// The control plane refreshes: the held packet goes.
	a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, eidB4), Expires: a.clock.Now().Add(time.Minute),
		Locators: []Locator{{Addr: rlocB4, Priority: 1, Up: true}}})
	recv(t, b.tun())
}

// Negative entries: drops by action, natively-forward to a PETR or the
// native path, send-map-request through the hook and the queue.
func TestNegativeEntries(t *testing.T) {
	petr := netip.MustParseAddr("192.0.2.50")
	nat := dptest.NewTUN(1500, 64)
	tp := &tap{}
	fn := dptest.NewNet()
	fn.Tap = tp.fn
	a := newNode(t, fn, []netip.Addr{rlocA4}, nil, nil)
	withPETR := newNode(t, fn, []netip.Addr{netip.MustParseAddr("192.0.2.60")}, nil, func(c *Config) { c.PETRs = []netip.Addr{petr} })
	withNative := newNode(t, fn, []netip.Addr{netip.MustParseAddr("192.0.2.61")}, nil, func(c *Config) {
		c.Native = map[uint32]NativeWriter{0: nat}
	})
	pfx := func(s string) mapping.EID { return mapping.NewEID(0, netip.MustParsePrefix(s)) }
	hostIn := func(s string) netip.Addr { return pfx(s).Prefix.Addr().Next() }
	drops := map[wire.Action]string{
		wire.ActionDrop:             "negative-drop",
		wire.ActionDropPolicyDenied: "negative-drop-policy-denied",
		wire.ActionDropAuthFailure:  "negative-drop-auth-failure",
		wire.ActionUnassigned7:      "negative-unknown-action",
	}
	i := 0
	for act, reason := range drops {
		p := fmt.Sprintf("198.18.%d.0/24", i)
		i++
		a.e.SetMapCache(CacheEntry{EID: pfx(p), Negative: true, Action: act})
		a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostIn(p)}))
		lisptest.Eventually(t, 5*time.Second, func() bool { return a.dropped(reason) == 1 }, reason)
	}

	// Natively-forward: PETR when configured, else the native writer,
	// else dropped as no-petr.
	fwd := pfx("198.19.0.0/16")
	for _, n := range []*node{a, withPETR, withNative} {
		n.e.SetMapCache(CacheEntry{EID: fwd, Negative: true, Action: wire.ActionNativelyForward})
		n.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostIn("198.19.0.0/16")}))
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.dropped("no-petr") == 1 }, "no-petr")
	lisptest.Eventually(t, 5*time.Second, func() bool { return withPETR.e.Stats().PETREncapsulated == 1 }, "PETR encapsulation")
	if d := tp.all(); len(d) != 1 || d[0].o.Dst != petr || wire.DataHeader(d[0].payload).Flags() != wire.DataN|wire.DataI {
		t.Errorf("datagrams %+v, want one to the PETR %s", d, petr)
	}
	got := recv(t, nat)
	if dstAddr(got) != hostIn("198.19.0.0/16") {
		t.Errorf("native path got a packet to %s", dstAddr(got))
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return withNative.e.Stats().NativeForwarded == 1 }, "native counter")

	// Send-map-request: the hook fires and the packet waits.
	smr := pfx("198.18.100.0/24")
	a.e.SetMapCache(CacheEntry{EID: smr, Negative: true, Action: wire.ActionSendMapRequest})
	a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostIn("198.18.100.0/24")}))
	lisptest.Eventually(t, 5*time.Second, func() bool { _, s, _ := a.hooks.counts(); return s == 1 }, "SendMapRequest hook")
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.e.Stats().MissQueuePackets == 1 }, "queued")
	a.e.SetMapCache(CacheEntry{EID: smr, Locators: []Locator{{Addr: rlocB4, Priority: 1, Up: true}}})
	lisptest.Eventually(t, 5*time.Second, func() bool {
		for _, d := range tp.all() {
			if d.o.Dst == rlocB4 {
				return true
			}
		}
		return false
	}, "released to the RLOC")
}

// TTL and ECN: a router on the way lowers the outer TTL and marks CE;
// the ETR takes the lower TTL (fixing the IPv4 checksum) and CE for an
// ECN-capable packet, and drops a CE-marked packet that is not.
func TestTTLAndECN(t *testing.T) {
	for _, fam := range []int{4, 6} {
		t.Run(fmt.Sprint("ipv", fam), func(t *testing.T) {
			mangle := func(_ []byte, o *Outer) {
				if o.TTL > 10 {
					o.TTL -= 10
				}
				o.TOS |= ecnCE
			}
			a, b, _ := pair(t, 4, nil, mangle)
			src, dst := hostA4, hostB4
			if fam == 6 {
				src, dst = hostA6, hostB6
			}
			pkt := buildPkt(pktSpec{src: src, dst: dst, ttl: 50, tos: 0x28 | ecnECT0})
			a.tun().Inject(pkt)
			got := recv(t, b.tun())
			ttl, tos := ttlTOS(got)
			if ttl != 40 || tos != 0x28|ecnCE {
				t.Errorf("inner TTL %d TOS %#x, want 40 and %#x", ttl, tos, 0x28|ecnCE)
			}
			if fam == 4 && ipv4HeaderChecksum(got[:20]) != 0 {
				t.Errorf("IPv4 header checksum wrong after the TTL/ECN rewrite")
			}
			// Everything else is unchanged.
			want := append([]byte(nil), pkt...)
			setTTLTOS(want, 40, 0x28|ecnCE)
			if !bytes.Equal(got, want) {
				t.Errorf("inner packet changed beyond TTL/TOS")
			}
			a.tun().Inject(buildPkt(pktSpec{src: src, dst: dst, ttl: 50, tos: 0x28}))
			lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("ecn") == 1 }, "ecn drop")
			// A TTL below the outer one is kept.
			a.tun().Inject(buildPkt(pktSpec{src: src, dst: dst, ttl: 3, tos: ecnECT1}))
			got = recv(t, b.tun())
			if ttl, tos := ttlTOS(got); ttl != 3 || tos != ecnCE {
				t.Errorf("inner TTL %d TOS %#x, want 3 and CE", ttl, tos)
			}
		})
	}
}

// The ETR copies the outer DSCP in (RFC 9300 §5.3) unless told to keep
// the inner one.
func TestDSCPOnDecap(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			remark := func(_ []byte, o *Outer) { o.TOS = 0x20<<2 | o.TOS&3 }
			a, b, _ := pair(t, 4, func(c *Config) { c.KeepInnerDSCP = keep }, remark)
			a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostB4, tos: 0x2e << 2}))
			_, tos := ttlTOS(recv(t, b.tun()))
			want := uint8(0x20 << 2)
			if keep {
				want = 0x2e << 2
			}
			if tos != want {
				t.Errorf("inner TOS %#x, want %#x", tos, want)
			}
		})
	}
}

// Packets that do not fit the underlay after encapsulation: ICMP
// fragmentation-needed (IPv4 with DF) and packet-too-big (IPv6) carrying
// the largest inner size that fits, written back to the source's TUN.
func TestTooBigICMP(t *testing.T) {
	cases := []struct {
		name       string
		outer      int
		src, dst   netip.Addr
		wantMTU    int
		icmpHdrLen int
	}{
		{"ipv4-df-outer4", 4, hostA4, hostB4, 1500 - 36, 20},
		{"ipv4-df-outer6", 6, hostA4, hostB4, 1500 - 56, 20},
		{"ipv6-outer4", 4, hostA6, hostB6, 1500 - 36, 40},
		{"ipv6-outer6", 6, hostA6, hostB6, 1500 - 56, 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b, _ := pair(t, tc.outer, nil, nil)
			fits := buildPkt(pktSpec{src: tc.src, dst: tc.dst, df: true, size: tc.wantMTU})
			a.tun().Inject(fits)
			recv(t, b.tun())
			big := buildPkt(pktSpec{src: tc.src, dst: tc.dst, df: true, size: tc.wantMTU + 1, sport: 7, dport: 9})
			a.tun().Inject(big)
			icmp := recv(t, a.tun())
			if srcAddr(icmp) != tc.dst || dstAddr(icmp) != tc.src {
				t.Errorf("ICMP %s -> %s, want %s -> %s", srcAddr(icmp), dstAddr(icmp), tc.dst, tc.src)
			}
			m := icmp[tc.icmpHdrLen:]
			if tc.src.Is4() {
				if icmp[ipv4Proto] != protoICMP || m[0] != 3 || m[1] != 4 {
					t.Fatalf("not an ICMP fragmentation-needed: % x", icmp[:28])
				}
				if mtu := int(binary.BigEndian.Uint16(m[6:])); mtu != tc.wantMTU {
					t.Errorf("next-hop MTU %d, want %d", mtu, tc.wantMTU)
				}
				if ipv4HeaderChecksum(icmp[:20]) != 0 || wire.ChecksumFold(wire.ChecksumAdd(0, m)) != 0 {
					t.Errorf("bad checksum")
				}
				if len(icmp) != 576 || !bytes.Equal(m[8:], big[:548]) {
					t.Errorf("ICMP length %d or quote wrong", len(icmp))
				}
			} else {
				if icmp[ipv6NextHeader] != protoICMPv6 || m[0] != 2 || m[1] != 0 {
					t.Fatalf("not an ICMPv6 packet-too-big: % x", icmp[:48])
				}
				if mtu := int(binary.BigEndian.Uint32(m[4:])); mtu != tc.wantMTU {
					t.Errorf("MTU %d, want %d", mtu, tc.wantMTU)
				}
				sum := wire.ChecksumAdd(0, icmp[ipv6Src:ipv6Dst+16]) + uint32(len(m)) + protoICMPv6
				if wire.ChecksumFold(wire.ChecksumAdd(sum, m)) != 0 {
					t.Errorf("bad ICMPv6 checksum")
				}
				if len(icmp) != 1280 || !bytes.Equal(m[8:], big[:1232]) {
					t.Errorf("ICMPv6 length %d or quote wrong", len(icmp))
				}
			}
			lisptest.Eventually(t, 5*time.Second, func() bool {
				s := a.e.Stats()
				return s.Dropped["too-big"] == 1 && s.ICMPSent == 1
			}, "too-big counters")
			none(t, b.tun())
		})
	}
}

// No ICMP error about an ICMP error, and at most ICMPRate per second.
func TestTooBigICMPLimits(t *testing.T) {
	a, _, _ := pair(t, 4, func(c *Config) { c.ICMPRate = 3 }, nil)
	a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostB4, df: true, size: 1480, proto: protoICMP, icmpType: 3}))
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.dropped("too-big") == 1 }, "drop")
	none(t, a.tun())
	for range 5 {
		a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostB4, df: true, size: 1480}))
	}
	for range 3 {
		recv(t, a.tun())
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.e.Stats().ICMPRateLimited == 2 }, "rate limit")
	none(t, a.tun())
}

// An IPv4 packet without DF that does not fit is split in two fragments
// (RFC 9300 §7.1) that the ETR delivers; together they are the original.
func TestFragmentWithoutDF(t *testing.T) {
	a, b, _ := pair(t, 6, nil, nil)
	big := buildPkt(pktSpec{src: hostA4, dst: hostB4, size: 1500, id: 0x4242})
	a.tun().Inject(big)
	f1, f2 := recv(t, b.tun()), recv(t, b.tun())
	if ipv4HeaderChecksum(f1[:20]) != 0 || ipv4HeaderChecksum(f2[:20]) != 0 {
		t.Fatal("bad fragment header checksum")
	}
	fr1, fr2 := binary.BigEndian.Uint16(f1[ipv4Frag:]), binary.BigEndian.Uint16(f2[ipv4Frag:])
	if fr1 != ipv4MF || fr2&ipv4MF != 0 || int(fr2&ipv4OffMask)*8 != len(f1)-20 {
		t.Fatalf("fragment fields %#04x %#04x (first %d bytes)", fr1, fr2, len(f1))
	}
	if len(f1)-len(f2) > 8 || len(f1) > 1500-56 {
		t.Errorf("fragments of %d and %d bytes: not equal halves that fit", len(f1), len(f2))
	}
	if !bytes.Equal(append(append([]byte(nil), f1[20:]...), f2[20:]...), big[20:]) ||
		!bytes.Equal(f1[4:6], big[4:6]) || !bytes.Equal(f2[4:6], big[4:6]) {
		t.Error("fragments do not reassemble to the original")
	}
	lisptest.Eventually(t, 5*time.Second, func() bool {
		s := a.e.Stats()
		return s.Fragmented == 1 && s.EncapsulatedPackets == 2
	}, "fragment counters")
}

// A PETR decapsulates whatever the inner destination (from the sources it
// serves); an ETR only for its EIDs.
func TestPETRDecap(t *testing.T) {
	fn := dptest.NewNet()
	p := newNode(t, fn, []netip.Addr{rlocB4}, nil, func(c *Config) {
		c.ETR, c.PETR, c.ITR = false, true, false
		c.Sources.PETRSources = map[uint32][]netip.Prefix{0: {eidA4}}
	})
	inner := buildPkt(pktSpec{src: hostA4, dst: netip.MustParseAddr("198.18.1.1")})
	payload := make([]byte, 8, 8+len(inner))
	wire.DataHeader(payload).Put(wire.DataN|wire.DataI, 1, 0)
	p.ul.Inject(append(payload, inner...), Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	if got := recv(t, p.tun()); !bytes.Equal(got, inner) {
		t.Error("PETR changed the packet")
	}
	// Without ITR the TUN side only drops.
	p.tun().Inject(inner)
	lisptest.Eventually(t, 5*time.Second, func() bool { return p.dropped("itr-disabled") == 1 }, "itr-disabled")
}

// Segments a TUN read could not fit into the buffers are counted as
// dropped, not lost silently; the packets that fit are forwarded.
func TestTUNReadOverflowCounted(t *testing.T) {
	fn := dptest.NewNet()
	p := newNode(t, fn, []netip.Addr{rlocB4}, nil, func(c *Config) { c.ITR, c.ETR = false, true })
	p.tun().ReadDrops.Add(3)
	p.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: netip.MustParseAddr("198.18.1.1")}))
	lisptest.Eventually(t, 5*time.Second, func() bool {
		return p.dropped("tun-read-overflow") == 3 && p.dropped("itr-disabled") == 1
	}, "tun-read-overflow")
}

// Decapsulated is sampled once per interval per outer source.
func TestDecapsulatedHookSampled(t *testing.T) {
	a, b, _ := pair(t, 4, nil, nil)
	pkt := buildPkt(pktSpec{src: hostA4, dst: hostB4})
	for range 5 {
		a.tun().Inject(pkt)
		recv(t, b.tun())
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { _, _, d := b.hooks.counts(); return d == 1 }, "one Decapsulated")
	b.hooks.mu.Lock()
	if ev := b.hooks.decaps[0]; ev != (decapEvent{rlocA4, 0, hostA4}) {
		t.Errorf("Decapsulated%+v", ev)
	}
	b.hooks.mu.Unlock()
	b.clock.Advance(time.Second)
	a.tun().Inject(pkt)
	recv(t, b.tun())
	lisptest.Eventually(t, 5*time.Second, func() bool { _, _, d := b.hooks.counts(); return d == 2 }, "second Decapsulated")
}

// Link-local and multicast destinations (router solicitations the kernel
// sends to a fresh TUN) are not looked up.
func TestNonUnicastDropped(t *testing.T) {
	a, _, _ := pair(t, 4, nil, nil)
	a.tun().Inject(buildPkt(pktSpec{src: netip.MustParseAddr("fe80::1"), dst: netip.MustParseAddr("ff02::2"), proto: protoICMPv6, icmpType: 133}))
	a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: netip.MustParseAddr("224.0.0.22")}))
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.dropped("non-unicast") == 2 }, "non-unicast")
	if m, _, _ := a.hooks.counts(); m != 0 {
		t.Errorf("%d Miss calls for non-unicast destinations", m)
	}
}

// Map-cache programming: delete, flush, lookup.
func TestProgrammer(t *testing.T) {
	fn := dptest.NewNet()
	a := newNode(t, fn, []netip.Addr{rlocA4}, []uint32{0, 5}, nil)
	loc := []Locator{{Addr: rlocB4, Priority: 1, Up: true}}
	a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, eidB4), Locators: loc})
	a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, netip.MustParsePrefix("203.0.113.128/25")), Negative: true, Action: wire.ActionDrop})
	a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(5, eidB4), Locators: loc})
	a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(9, eidB4), Locators: loc}) // not served: ignored
	if n := a.e.Stats().MapCacheEntries; n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	if ce, ok := a.e.Lookup(0, netip.MustParseAddr("203.0.113.200")); !ok || !ce.Negative || ce.EID.Prefix.Bits() != 25 {
		t.Errorf("lookup got %+v", ce)
	}
	a.e.DeleteMapCache(mapping.NewEID(0, netip.MustParsePrefix("203.0.113.128/25")))
	if ce, ok := a.e.Lookup(0, netip.MustParseAddr("203.0.113.200")); !ok || ce.Negative {
		t.Errorf("after delete got %+v", ce)
	}
	a.e.FlushMapCache(5)
	if _, ok := a.e.Lookup(5, hostB4); ok {
		t.Error("flush of IID 5 left its entry")
	}
	if _, ok := a.e.Lookup(0, hostB4); !ok {
		t.Error("flush of IID 5 removed IID 0's entry")
	}
	a.e.FlushMapCache(AllInstances)
	if n := a.e.Stats().MapCacheEntries; n != 0 {
		t.Errorf("%d entries after a full flush", n)
	}
}

// Stats marshal with lower-case hyphenated keys; the counters are in the
// registry under subsystem dataplane.
func TestStatsJSON(t *testing.T) {
	a, b, _ := pair(t, 4, nil, nil)
	a.tun().Inject(buildPkt(pktSpec{src: hostA4, dst: hostB4}))
	recv(t, b.tun())
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.e.Stats().EncapsulatedPackets == 1 }, "counters")
	js, err := json.Marshal(a.e.Stats())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"encapsulated-packets":1`, `"cache-hits":1`, `"dropped":{}`, `"map-cache-entries":2`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("%s lacks %s", js, k)
		}
	}
	seen := 0
	for _, s := range a.reg.Snapshot() {
		if s.Desc.Subsystem != "dataplane" {
			t.Errorf("counter %s in subsystem %q", s.Desc.Key(), s.Desc.Subsystem)
		}
		if s.Desc.Name == "packets_encapsulated" && s.Value == 1 {
			seen++
		}
	}
	if seen != 1 {
		t.Error("packets_encapsulated not in the registry")
	}
}

func TestConfigValidation(t *testing.T) {
	fn := dptest.NewNet()
	base := func() Config {
		return Config{LocalRLOCs: []netip.Addr{rlocA4}, Instances: map[uint32]TUN{0: dptest.NewTUN(1464, 1)},
			Underlay: fn.Attach(1), ITR: true}
	}
	for name, mod := range map[string]func(*Config){
		"gleaning":      func(c *Config) { c.Gleaning = true },
		"no rloc":       func(c *Config) { c.LocalRLOCs = nil },
		"no role":       func(c *Config) { c.ITR = false },
		"iid too big":   func(c *Config) { c.Instances = map[uint32]TUN{1 << 24: dptest.NewTUN(1464, 1)} },
		"mtu too small": func(c *Config) { c.UnderlayMTU = 600 },
		"petr family":   func(c *Config) { c.PETRs = []netip.Addr{rlocB6} },
		"icmp source":   func(c *Config) { c.ICMPSource4 = rlocA6 },
	} {
		c := base()
		mod(&c)
		if e, err := New(c); err == nil {
			_ = e.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	if got := TUNMTU(1500, []netip.Addr{rlocA4}); got != 1464 {
		t.Errorf("TUNMTU v4 %d", got)
	}
	if got := TUNMTU(1500, []netip.Addr{rlocA4, rlocA6}); got != 1444 {
		t.Errorf("TUNMTU v4+v6 %d", got)
	}
}
