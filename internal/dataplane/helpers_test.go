package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	rlocA4 = netip.MustParseAddr("192.0.2.1")
	rlocA6 = netip.MustParseAddr("2001:db8::a")
	rlocB4 = netip.MustParseAddr("192.0.2.2")
	rlocB6 = netip.MustParseAddr("2001:db8::b")

	eidA4 = netip.MustParsePrefix("198.51.100.0/24")
	eidA6 = netip.MustParsePrefix("2001:db8:a::/48")
	eidB4 = netip.MustParsePrefix("203.0.113.0/24")
	eidB6 = netip.MustParsePrefix("2001:db8:b::/48")

	hostA4 = netip.MustParseAddr("198.51.100.1")
	hostA6 = netip.MustParseAddr("2001:db8:a::1")
	hostB4 = netip.MustParseAddr("203.0.113.1")
	hostB6 = netip.MustParseAddr("2001:db8:b::1")
)

// pktSpec describes a test packet.
type pktSpec struct {
	src, dst     netip.Addr
	proto        uint8 // default UDP
	sport, dport uint16
	ttl          uint8 // default 64
	tos          uint8
	df           bool
	size         int // total length; default headers + 16 bytes
	id           uint16
	icmpType     uint8
}

// buildPkt makes an IPv4 or IPv6 packet with a patterned payload and a
// valid IPv4 header checksum.
func buildPkt(s pktSpec) []byte {
	if s.proto == 0 {
		s.proto = protoUDP
	}
	if s.ttl == 0 {
		s.ttl = 64
	}
	hl := ipv4HeaderLen
	if s.src.Is6() {
		hl = ipv6HeaderLen
	}
	l4 := 8
	if s.proto == protoTCP {
		l4 = 20
	}
	if s.size == 0 {
		s.size = hl + l4 + 16
	}
	p := make([]byte, s.size)
	for i := hl + l4; i < len(p); i++ {
		p[i] = byte(i * 7)
	}
	if s.src.Is4() {
		p[0] = 0x45
		p[ipv4TOS] = s.tos
		binary.BigEndian.PutUint16(p[ipv4TotalLen:], uint16(s.size))
		binary.BigEndian.PutUint16(p[4:], s.id)
		if s.df {
			binary.BigEndian.PutUint16(p[ipv4Frag:], ipv4DF)
		}
		p[ipv4TTL] = s.ttl
		p[ipv4Proto] = s.proto
		a, b := s.src.As4(), s.dst.As4()
		copy(p[ipv4Src:], a[:])
		copy(p[ipv4Dst:], b[:])
		binary.BigEndian.PutUint16(p[ipv4Csum:], ipv4HeaderChecksum(p[:hl]))
	} else {
		p[0] = 0x60 | s.tos>>4
		p[1] = s.tos << 4
		binary.BigEndian.PutUint16(p[ipv6PayloadLen:], uint16(s.size-hl))
		p[ipv6NextHeader] = s.proto
		p[ipv6HopLimit] = s.ttl
		a, b := s.src.As16(), s.dst.As16()
		copy(p[ipv6Src:], a[:])
		copy(p[ipv6Dst:], b[:])
	}
	switch s.proto {
	case protoUDP, protoTCP:
		binary.BigEndian.PutUint16(p[hl:], s.sport)
		binary.BigEndian.PutUint16(p[hl+2:], s.dport)
		if s.proto == protoUDP {
			binary.BigEndian.PutUint16(p[hl+4:], uint16(s.size-hl))
		}
	case protoICMP, protoICMPv6:
		p[hl] = s.icmpType
	}
	return p
}

// recHooks records the hook calls.
type recHooks struct {
	mu         sync.Mutex
	misses     []hostEvent
	smrs       []hostEvent
	decaps     []decapEvent
	seen       []hostEvent
	awayHits   []decapEvent
	unseenHits []decapEvent
}

type hostEvent struct {
	iid uint32
	dst netip.Addr
	src netip.Addr // the packet's source, for Miss and SendMapRequest
}

type decapEvent struct {
	outer    netip.Addr
	iid      uint32
	innerSrc netip.Addr
}

func (h *recHooks) Miss(iid uint32, dst, src netip.Addr) {
	h.mu.Lock()
	h.misses = append(h.misses, hostEvent{iid, dst, src})
	h.mu.Unlock()
}
func (h *recHooks) SendMapRequest(iid uint32, dst, src netip.Addr) {
	h.mu.Lock()
	h.smrs = append(h.smrs, hostEvent{iid, dst, src})
	h.mu.Unlock()
}
func (h *recHooks) Decapsulated(outer netip.Addr, iid uint32, src netip.Addr) {
	h.mu.Lock()
	h.decaps = append(h.decaps, decapEvent{outer, iid, src})
	h.mu.Unlock()
}

func (h *recHooks) AwayHit(outer netip.Addr, iid uint32, host netip.Addr) {
	h.mu.Lock()
	h.awayHits = append(h.awayHits, decapEvent{outer, iid, host})
	h.mu.Unlock()
}

func (h *recHooks) UnseenHostHit(outer netip.Addr, iid uint32, host netip.Addr) {
	h.mu.Lock()
	h.unseenHits = append(h.unseenHits, decapEvent{outer, iid, host})
	h.mu.Unlock()
}

func (h *recHooks) HostSeen(iid uint32, src netip.Addr) {
	h.mu.Lock()
	h.seen = append(h.seen, hostEvent{iid: iid, dst: src})
	h.mu.Unlock()
}

// hostsSeen returns a copy of the HostSeen calls so far.
func (h *recHooks) hostsSeen() []hostEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hostEvent(nil), h.seen...)
}

func (h *recHooks) counts() (misses, smrs, decaps int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.misses), len(h.smrs), len(h.decaps)
}

// node is one engine on a dptest.Net.
type node struct {
	e     *Engine
	tuns  map[uint32]*dptest.TUN
	ul    *dptest.Underlay
	hooks *recHooks
	clock *lisptest.Clock
	reg   *stats.Registry
}

func (n *node) tun() *dptest.TUN { return n.tuns[0] }

// newNode starts an engine with ITR and ETR on, a dptest.TUN per iid (0 when
// none given), attached to fn with rlocs; mod adjusts the config.
func newNode(t *testing.T, fn *dptest.Net, rlocs []netip.Addr, iids []uint32, mod func(*Config)) *node {
	t.Helper()
	if len(iids) == 0 {
		iids = []uint32{0}
	}
	n := &node{tuns: map[uint32]*dptest.TUN{}, hooks: &recHooks{}, clock: lisptest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), reg: stats.NewRegistry()}
	cfg := Config{
		LocalRLOCs: rlocs,
		Instances:  map[uint32]TUN{},
		ITR:        true,
		ETR:        true,
		Hooks:      n.hooks,
		Stats:      n.reg,
		Clock:      n.clock.Now,
	}
	for _, iid := range iids {
		n.tuns[iid] = dptest.NewTUN(TUNMTU(0, rlocs), 64)
		cfg.Instances[iid] = n.tuns[iid]
	}
	n.ul = fn.Attach(64, rlocs...)
	cfg.Underlay = n.ul
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	n.e = e
	return n
}

// pair builds site A and site B: each an xTR whose ETR serves its own EID
// prefixes, and whose map-cache points the other site's EIDs at the other
// xTR's RLOC of family outer (4 or 6).
// tapFn, if not nil, sees (and may change) every datagram.
func pair(t *testing.T, outer int, mod func(*Config), tapFn func([]byte, *Outer)) (a, b *node, fn *dptest.Net) {
	t.Helper()
	fn = dptest.NewNet()
	fn.Tap = tapFn
	a = newNode(t, fn, []netip.Addr{rlocA4, rlocA6}, nil, mod)
	b = newNode(t, fn, []netip.Addr{rlocB4, rlocB6}, nil, mod)
	a.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, eidA4), mapping.NewEID(0, eidA6)})
	b.e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, eidB4), mapping.NewEID(0, eidB6)})
	ra, rb := rlocA4, rlocB4
	if outer == 6 {
		ra, rb = rlocA6, rlocB6
	}
	for _, p := range []netip.Prefix{eidB4, eidB6} {
		a.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, p), Locators: []Locator{{Addr: rb, Priority: 1, Weight: 100, Up: true}}})
	}
	for _, p := range []netip.Prefix{eidA4, eidA6} {
		b.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, p), Locators: []Locator{{Addr: ra, Priority: 1, Weight: 100, Up: true}}})
	}
	return a, b, fn
}

// recv waits for the next packet written to tun.
func recv(t *testing.T, tun *dptest.TUN) []byte {
	t.Helper()
	select {
	case p := <-tun.Written():
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet written to the TUN")
		return nil
	}
}

// none asserts nothing is written to tun for a little while.
func none(t *testing.T, tun *dptest.TUN) {
	t.Helper()
	select {
	case p := <-tun.Written():
		t.Fatalf("unexpected packet written to the TUN: % x", p)
	case <-time.After(100 * time.Millisecond):
	}
}

// dropped reads one drop counter.
func (n *node) dropped(reason string) uint64 { return n.e.Stats().Dropped[reason] }

// tap records the datagrams of a dptest.Net.
type tap struct {
	mu  sync.Mutex
	got []tapped
}

type tapped struct {
	payload []byte
	o       Outer
}

func (tp *tap) fn(payload []byte, o *Outer) {
	tp.mu.Lock()
	tp.got = append(tp.got, tapped{payload, *o})
	tp.mu.Unlock()
}

func (tp *tap) all() []tapped {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]tapped(nil), tp.got...)
}

func (tp *tap) len() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.got)
}
