package dataplane

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// lispPayload is inner behind a LISP header with instance ID iid.
func lispPayload(iid uint32, inner []byte) []byte {
	payload := make([]byte, 8, 8+len(inner))
	wire.DataHeader(payload).Put(wire.DataN|wire.DataI, 1, iid<<8)
	return append(payload, inner...)
}

// The attack: a foreign RLOC injects packets into instance ID 7, which
// the ETR serves for a tenant. With the instance's source check on, they
// are dropped and counted; the tenant's own RLOC still gets through, and
// instance 0, left unchecked, takes any source as before.
func TestSourceCheckCrossTenantInjection(t *testing.T) {
	fn := dptest.NewNet()
	foreign := netip.MustParseAddr("192.0.2.66")
	b := newNode(t, fn, []netip.Addr{rlocB4}, []uint32{0, 7}, func(c *Config) {
		c.Sources.Checks = map[uint32]SourceCheck{7: {MapCache: true}}
	})
	b.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, eidB4), mapping.NewEID(7, eidB4)})
	b.e.SetMapCache(CacheEntry{EID: mapping.NewEID(7, eidA4), Locators: []Locator{{Addr: rlocA4, Priority: 1, Weight: 100, Up: true}}})

	spoofed := lispPayload(7, buildPkt(pktSpec{src: hostA4, dst: hostB4}))
	b.ul.Inject(spoofed, Outer{Src: foreign, Dst: rlocB4, TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("source-rloc-check") == 1 }, "source-rloc-check")
	unknown := lispPayload(7, buildPkt(pktSpec{src: netip.MustParseAddr("198.18.0.1"), dst: hostB4}))
	b.ul.Inject(unknown, Outer{Src: foreign, Dst: rlocB4, TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("source-rloc-unknown") == 1 }, "source-rloc-unknown")
	none(t, b.tuns[7])

	// The tenant's ITR, a locator of its cached mapping, passes.
	b.ul.Inject(spoofed, Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	recv(t, b.tuns[7])
	// Instance 0 has no check.
	b.ul.Inject(lispPayload(0, buildPkt(pktSpec{src: hostA4, dst: hostB4})), Outer{Src: foreign, Dst: rlocB4, TTL: 64})
	recv(t, b.tuns[0])

	// RLOC prefixes admit their sources whatever the inner source; a
	// reload (SetSourcePolicy) applies at once.
	b.e.SetSourcePolicy(SourcePolicy{Checks: map[uint32]SourceCheck{7: {RLOCPrefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.64/26")}}}})
	b.ul.Inject(unknown, Outer{Src: foreign, Dst: rlocB4, TTL: 64})
	recv(t, b.tuns[7])
	// Without map-cache, only the prefixes count: the tenant's RLOC is
	// outside them now.
	b.ul.Inject(spoofed, Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.dropped("source-rloc-unknown") == 2 }, "source-rloc-unknown")
	if s := b.e.Stats(); s.DecapsulatedPackets != 3 {
		t.Errorf("decapsulated %d packets, want 3", s.DecapsulatedPackets)
	}
}

// The attack: a site sends a PETR packets with a spoofed inner source, for
// it to relay to the Internet. Only the allowed source EIDs are relayed;
// the ETR path for the PETR's own EIDs is not affected.
func TestPETRRelaysOnlyAllowedSources(t *testing.T) {
	fn := dptest.NewNet()
	p := newNode(t, fn, []netip.Addr{rlocB4}, []uint32{0, 7}, func(c *Config) {
		c.ETR, c.PETR = true, true
		c.Sources.PETRSources = map[uint32][]netip.Prefix{0: {eidA4, eidA6}}
	})
	p.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, eidB4)})
	web := netip.MustParseAddr("198.18.1.1")
	p.ul.Inject(lispPayload(0, buildPkt(pktSpec{src: hostA4, dst: web})), Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	recv(t, p.tuns[0])

	spoofed := netip.MustParseAddr("192.0.2.200")
	p.ul.Inject(lispPayload(0, buildPkt(pktSpec{src: spoofed, dst: web})), Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	// Instance 7 has no list: it relays nothing, not even hostA4.
	p.ul.Inject(lispPayload(7, buildPkt(pktSpec{src: hostA4, dst: web})), Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	lisptest.Eventually(t, 5*time.Second, func() bool { return p.dropped("petr-source-not-allowed") == 2 }, "petr-source-not-allowed")
	none(t, p.tuns[0])
	none(t, p.tuns[7])
	// A packet for a local EID is the ETR's, whatever its source.
	p.ul.Inject(lispPayload(0, buildPkt(pktSpec{src: spoofed, dst: hostB4})), Outer{Src: rlocA4, Dst: rlocB4, TTL: 64})
	recv(t, p.tuns[0])
}

// blockingHooks is a control plane stuck in Decapsulated (its lock held
// elsewhere, say) while misses must still reach it.
type blockingHooks struct {
	*recHooks
	release chan struct{}
	once    sync.Once
}

func (h *blockingHooks) Decapsulated(outer netip.Addr, iid uint32, src netip.Addr) {
	<-h.release
	h.recHooks.Decapsulated(outer, iid, src)
}

func (h *blockingHooks) unblock() { h.once.Do(func() { close(h.release) }) }

// The attack: decapsulated packets from ever new (spoofed) outer sources
// fill the hook queue with samples. A local host's miss must still reach
// the control plane.
func TestMissSurvivesDecapSampleFlood(t *testing.T) {
	fn := dptest.NewNet()
	h := &blockingHooks{recHooks: &recHooks{}, release: make(chan struct{})}
	b := newNode(t, fn, []netip.Addr{rlocB4}, nil, func(c *Config) { c.Hooks = h })
	t.Cleanup(h.unblock)
	b.hooks = h.recHooks
	b.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, eidB4)})
	pkt := lispPayload(0, buildPkt(pktSpec{src: hostA4, dst: hostB4}))
	for i := 0; b.e.Stats().HookEventsDropped == 0; i++ {
		if i >= 100_000 {
			t.Fatal("the decapsulation samples never filled their queue")
		}
		src := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		b.ul.Inject(pkt, Outer{Src: src, Dst: rlocB4, TTL: 64})
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // let the ETR worker drain
		}
	}
	b.tun().Inject(buildPkt(pktSpec{src: hostB4, dst: hostA4}))
	lisptest.Eventually(t, 5*time.Second, func() bool { m, _, _ := b.hooks.counts(); return m == 1 }, "Miss during a decapsulation flood")
	if got := lisptest.Counter(t, b.reg, "dataplane.hook_events_dropped_by_kind{kind=decapsulated}"); got == 0 {
		t.Error("dropped samples not counted by kind")
	}
}
