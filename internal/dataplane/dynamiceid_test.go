package dataplane

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

var rlocC4 = netip.MustParseAddr("192.0.2.3")

func hostEID(iid uint32, a netip.Addr) mapping.EID {
	return mapping.NewEID(iid, netip.PrefixFrom(a, a.BitLen()))
}

// HostSeen fires for a source in a dynamic-EID range of its instance that
// is not a known host, at most once per interval; the packet is forwarded
// as usual.
func TestHostSeen(t *testing.T) {
	a, b, _ := pair(t, 4, nil, nil)
	newHost := netip.MustParseAddr("198.51.100.130")
	knownHost := netip.MustParseAddr("198.51.100.200")
	newHost6 := netip.MustParseAddr("2001:db8:a:1::5")
	a.e.SetDynamicEIDs(
		[]mapping.EID{mapping.NewEID(0, netip.MustParsePrefix("198.51.100.128/25")),
			mapping.NewEID(0, netip.MustParsePrefix("2001:db8:a:1::/64")),
			mapping.NewEID(9, netip.MustParsePrefix("10.0.0.0/8"))}, // not served: ignored
		[]mapping.EID{hostEID(0, knownHost)})

	send := func(src, dst netip.Addr) {
		t.Helper()
		pkt := buildPkt(pktSpec{src: src, dst: dst})
		a.tun().Inject(pkt)
		if got := recv(t, b.tun()); !bytes.Equal(got, pkt) {
			t.Fatal("packet from a detected host changed or lost")
		}
	}
	want := []hostEvent{{iid: 0, dst: newHost}}
	send(newHost, hostB4)
	send(newHost, hostB4)   // rate-limited
	send(knownHost, hostB4) // known
	send(hostA4, hostB4)    // outside the ranges
	send(newHost6, hostB6)  // the ITR goroutine handles packets in order: the marker
	want = append(want, hostEvent{iid: 0, dst: newHost6})
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(a.hooks.hostsSeen()) == 2 }, "HostSeen for the IPv6 host")
	if got := a.hooks.hostsSeen(); !slices.Equal(got, want) {
		t.Fatalf("HostSeen calls %v, want %v", got, want)
	}

	a.clock.Advance(time.Second)
	send(newHost, hostB4)
	want = append(want, hostEvent{iid: 0, dst: newHost})
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(a.hooks.hostsSeen()) == 3 }, "HostSeen after the interval")

	// Detected: the control plane lists it as known.
	a.clock.Advance(time.Second)
	a.e.SetDynamicEIDs([]mapping.EID{mapping.NewEID(0, netip.MustParsePrefix("198.51.100.128/25"))},
		[]mapping.EID{hostEID(0, knownHost), hostEID(0, newHost)})
	send(newHost, hostB4)
	a.e.SetDynamicEIDs(nil, nil)
	a.clock.Advance(time.Second)
	send(newHost6, hostB6)
	time.Sleep(50 * time.Millisecond) // hooks run on their own goroutine
	if got := a.hooks.hostsSeen(); !slices.Equal(got, want) {
		t.Fatalf("HostSeen calls %v, want %v", got, want)
	}
	if s := a.e.Stats(); s.EncapsulatedPackets != 8 || len(s.Dropped) != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Ranges are per instance ID: a range of IID 5 detects nothing in IID 0.
func TestHostSeenPerInstance(t *testing.T) {
	fn := dptest.NewNet()
	a := newNode(t, fn, []netip.Addr{rlocA4}, []uint32{0, 5}, nil)
	a.e.SetDynamicEIDs([]mapping.EID{mapping.NewEID(5, eidA4)}, nil)
	pkt := buildPkt(pktSpec{src: hostA4, dst: hostB4}) // a miss: held, Miss called
	a.tuns[0].Inject(pkt)
	a.tuns[5].Inject(pkt)
	lisptest.Eventually(t, 5*time.Second, func() bool { m, _, _ := a.hooks.counts(); return m == 2 }, "two Misses")
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(a.hooks.hostsSeen()) == 1 }, "HostSeen")
	time.Sleep(20 * time.Millisecond)
	if got := a.hooks.hostsSeen(); !slices.Equal(got, []hostEvent{{iid: 5, dst: hostA4}}) {
		t.Fatalf("HostSeen calls %v", got)
	}
}

// A packet the ETR decapsulates for a host that moved away leaves again,
// encapsulated to the RLOC of the host's map-cache entry, with its TTL
// decremented; after SetAwayEIDs(nil) such packets go to the TUN again.
func TestAwayReencapsulated(t *testing.T) {
	const iid = 7
	fn := dptest.NewNet()
	b := newNode(t, fn, []netip.Addr{rlocB4, rlocB6}, []uint32{iid}, nil)
	c := fn.Attach(64, rlocC4) // the host's new site, played by the test
	away4, away6 := hostB4, netip.MustParseAddr("2001:db8:b::99")
	stay := netip.MustParseAddr("203.0.113.2")
	b.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(iid, eidB4), mapping.NewEID(iid, eidB6)})
	for _, h := range []netip.Addr{away4, away6} {
		b.e.SetMapCache(CacheEntry{EID: hostEID(iid, h), Locators: []Locator{{Addr: rlocC4, Priority: 1, Up: true}}})
	}
	b.e.SetAwayEIDs([]mapping.EID{hostEID(iid, away4), hostEID(iid, away6), hostEID(99, away4)})

	inject := func(inner []byte) {
		payload := make([]byte, 8, 8+len(inner))
		wire.DataHeader(payload).Put(wire.DataN|wire.DataI, 1, iid<<8)
		b.ul.Inject(append(payload, inner...), Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	}
	expectAtC := func(spec pktSpec) {
		t.Helper()
		got, o, ok := c.Next(5 * time.Second)
		if !ok {
			t.Fatal("nothing re-encapsulated to the new RLOC")
		}
		if o.Dst != rlocC4 || o.Src != rlocB4 || o.TTL != spec.ttl-1 {
			t.Errorf("outer %+v, want %s -> %s TTL %d", o, rlocB4, rlocC4, spec.ttl-1)
		}
		h := wire.DataHeader(got)
		if !h.I() || h.InstanceID() != iid {
			t.Errorf("LISP header %s, want IID %d", h, iid)
		}
		spec.ttl-- // a hop: the inner TTL goes down by one, checksum updated
		if want := buildPkt(spec); !bytes.Equal(got[wire.DataHeaderLen:], want) {
			t.Errorf("inner\n% x\nwant\n% x", got[wire.DataHeaderLen:], want)
		}
	}

	s4 := pktSpec{src: hostA4, dst: away4, ttl: 10, sport: 1, dport: 2}
	inject(buildPkt(s4))
	expectAtC(s4)
	s6 := pktSpec{src: hostA6, dst: away6, ttl: 33}
	inject(buildPkt(s6))
	expectAtC(s6)
	other := buildPkt(pktSpec{src: hostA4, dst: stay})
	inject(other)
	if got := recv(t, b.tuns[iid]); !bytes.Equal(got, other) {
		t.Error("packet for a host at home changed")
	}
	lisptest.Eventually(t, 5*time.Second, func() bool {
		s := b.e.Stats()
		return s.Reencapsulated == 2 && s.EncapsulatedPackets == 2 && s.DecapsulatedPackets == 1
	}, "counters")
	// The ITRs still sending to the old site are reported.
	lisptest.Eventually(t, 5*time.Second, func() bool { _, _, d := b.hooks.counts(); return d == 1 }, "Decapsulated")
	// And which away hosts they still send to, once per interval each.
	inject(buildPkt(s4))
	expectAtC(s4)
	lisptest.Eventually(t, 5*time.Second, func() bool {
		b.hooks.mu.Lock()
		defer b.hooks.mu.Unlock()
		return len(b.hooks.awayHits) == 2
	}, "AwayHit")
	b.hooks.mu.Lock()
	hits := slices.Clone(b.hooks.awayHits)
	b.hooks.mu.Unlock()
	slices.SortFunc(hits, func(x, y decapEvent) int { return x.innerSrc.Compare(y.innerSrc) })
	if want := []decapEvent{{rlocA4, iid, away4}, {rlocA4, iid, away6}}; !slices.Equal(hits, want) {
		t.Errorf("AwayHit events %v, want %v", hits, want)
	}

	// No TTL left for another hop.
	inject(buildPkt(pktSpec{src: hostA4, dst: away4, ttl: 1}))
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("ttl-expired") == 1 }, "ttl-expired")

	// An entry pointing back at this router would loop.
	loopHost := netip.MustParseAddr("203.0.113.77")
	b.e.SetMapCache(CacheEntry{EID: hostEID(iid, loopHost), Locators: []Locator{{Addr: rlocB4, Priority: 1, Up: true}}})
	b.e.SetAwayEIDs([]mapping.EID{hostEID(iid, away4), hostEID(iid, loopHost), hostEID(iid, netip.MustParseAddr("203.0.113.88"))})
	inject(buildPkt(pktSpec{src: hostA4, dst: loopHost}))
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("away-loop") == 1 }, "away-loop")

	// An away host without an entry: the packet waits for the mapping
	// the Miss asks for, then leaves toward the new RLOC.
	s := pktSpec{src: hostA4, dst: netip.MustParseAddr("203.0.113.88"), ttl: 20}
	inject(buildPkt(s))
	lisptest.Eventually(t, 5*time.Second, func() bool { m, _, _ := b.hooks.counts(); return m == 1 }, "Miss")
	b.hooks.mu.Lock()
	if ev := b.hooks.misses[0]; ev != (hostEvent{iid, s.dst, s.src}) {
		t.Errorf("Miss%+v", ev)
	}
	b.hooks.mu.Unlock()
	b.e.SetMapCache(CacheEntry{EID: hostEID(iid, s.dst), Locators: []Locator{{Addr: rlocC4, Priority: 1, Up: true}}})
	expectAtC(s)
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.e.Stats().MissReleased == 1 }, "released")

	// A dynamic-EID host that came from outside our database and left again:
	// still ours to forward.
	visitor := netip.MustParseAddr("192.0.2.77")
	b.e.SetMapCache(CacheEntry{EID: hostEID(iid, visitor), Locators: []Locator{{Addr: rlocC4, Priority: 1, Up: true}}})
	b.e.SetAwayEIDs([]mapping.EID{hostEID(iid, away4), hostEID(iid, visitor)})
	sv := pktSpec{src: hostA4, dst: visitor, ttl: 9}
	inject(buildPkt(sv))
	expectAtC(sv)

	// Home again.
	b.e.SetAwayEIDs(nil)
	back := buildPkt(pktSpec{src: hostA4, dst: away4})
	inject(back)
	if got := recv(t, b.tuns[iid]); !bytes.Equal(got, back) {
		t.Error("packet for a host back home changed")
	}
	if _, _, ok := c.Next(50 * time.Millisecond); ok {
		t.Error("packet re-encapsulated after SetAwayEIDs(nil)")
	}
	st := b.e.Stats()
	if st.Reencapsulated != 5 || st.DecapsulatedPackets != 2 || st.EncapsulatedPackets != 5 || len(st.Dropped) != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A packet for an address of a dynamic-EID range where no host was seen
// is delivered, and the ITR that sent it is reported (UnseenHostHit, once
// per interval per ITR and address): its mapping may be the covering
// prefix, resolved before the host registered at another site. Known
// hosts and addresses outside the ranges are not reported.
func TestUnseenHostHit(t *testing.T) {
	fn := dptest.NewNet()
	b := newNode(t, fn, []netip.Addr{rlocB4}, []uint32{0}, nil)
	unseen, known := netip.MustParseAddr("203.0.113.77"), netip.MustParseAddr("203.0.113.78")
	b.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, eidB4)})
	b.e.SetDynamicEIDs([]mapping.EID{mapping.NewEID(0, netip.MustParsePrefix("203.0.113.64/26"))},
		[]mapping.EID{hostEID(0, known)})
	inject := func(from, dst netip.Addr) {
		t.Helper()
		inner := buildPkt(pktSpec{src: hostA4, dst: dst})
		payload := make([]byte, 8, 8+len(inner))
		wire.DataHeader(payload).Put(wire.DataN, 1, 0)
		b.ul.Inject(append(payload, inner...), Outer{Src: from, Dst: rlocB4, TTL: 64})
		if got := recv(t, b.tuns[0]); !bytes.Equal(got, inner) {
			t.Fatalf("packet for %s not delivered unchanged", dst)
		}
	}
	hits := func() []decapEvent {
		b.hooks.mu.Lock()
		defer b.hooks.mu.Unlock()
		return slices.Clone(b.hooks.unseenHits)
	}
	inject(rlocA4, unseen)
	inject(rlocA4, unseen) // within the interval
	inject(rlocA4, known)
	inject(rlocA4, hostB4) // outside the range
	inject(rlocC4, unseen) // another ITR
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(hits()) == 2 }, "UnseenHostHit from both ITRs")
	b.clock.Advance(time.Second)
	inject(rlocA4, unseen)
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(hits()) == 3 }, "UnseenHostHit after the interval")
	time.Sleep(20 * time.Millisecond)
	want := []decapEvent{{rlocA4, 0, unseen}, {rlocC4, 0, unseen}, {rlocA4, 0, unseen}}
	if got := hits(); !slices.Equal(got, want) {
		t.Errorf("UnseenHostHit events %v, want %v", got, want)
	}
}
