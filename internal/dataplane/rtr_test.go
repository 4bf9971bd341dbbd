package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// TestRTRRelay: an RTR engine (ITR, no ETR) relays for a NATed xTR: to
// its translated address and port from 4342, from it through the
// map-cache; and drops, by reason, a NATed xTR's packet with a source EID
// it did not register and a stranger's packet with a NATed source EID.
func TestRTRRelay(t *testing.T) {
	fn := dptest.NewNet()
	rtr := newNode(t, fn, []netip.Addr{rlocB4}, nil, func(c *Config) { c.ETR = false })
	natted := netip.MustParseAddrPort("198.18.3.2:20000")
	stranger := netip.MustParseAddr("192.0.2.99")
	xtr := fn.Attach(64, natted.Addr())
	pub := fn.Attach(64, rlocA4)
	rtr.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, eidA4), Locators: []Locator{{Addr: rlocA4, Priority: 1, Up: true}}})
	var to, from atomic.Uint64
	rtr.e.SetNATedXTRs([]NATedXTR{{EIDs: []mapping.EID{mapping.NewEID(0, eidB4)}, Translated: natted, Local: rlocB4,
		ToXTR: &to, FromXTR: &from}})

	inject := func(src netip.Addr, sport uint16, spec pktSpec) {
		payload := make([]byte, 8, 64)
		wire.DataHeader(payload).Put(wire.DataN|wire.DataI, 1, 0)
		rtr.ul.Inject(append(payload, buildPkt(spec)...), Outer{Src: src, Dst: rlocB4, SrcPort: sport, TTL: 64})
	}
	expect := func(at *dptest.Underlay, spec pktSpec) Outer {
		t.Helper()
		got, o, ok := at.Next(5 * time.Second)
		if !ok {
			t.Fatalf("nothing relayed to %v", spec.dst)
		}
		if want := buildPkt(spec); !bytes.Equal(got[wire.DataHeaderLen:], want) {
			t.Errorf("inner\n% x\nwant\n% x", got[wire.DataHeaderLen:], want)
		}
		return o
	}

	// A public ITR sends for the NATed site: to the translated address
	// and port, from the RTR's RLOC and port 4342.
	in := pktSpec{src: hostA4, dst: hostB4, sport: 5, dport: 6}
	inject(rlocA4, 61000, in)
	if o := expect(xtr, in); o.Src != rlocB4 || o.Dst != natted.Addr() || o.DstPort != natted.Port() || o.SrcPort != wire.ControlPort {
		t.Errorf("to the NATed xTR: outer %+v, want %s:4342 -> %s", o, rlocB4, natted)
	}
	// The NATed xTR sends out (its NAT gave its data another port): the
	// map-cache sends it on like an ITR.
	out := pktSpec{src: hostB4, dst: hostA4, sport: 6, dport: 5}
	inject(natted.Addr(), 33333, out)
	if o := expect(pub, out); o.Src != rlocB4 || o.Dst != rlocA4 || o.DstPort != 0 {
		t.Errorf("from the NATed xTR: outer %+v, want %s -> %s:4341", o, rlocB4, rlocA4)
	}
	if to.Load() != 1 || from.Load() != 1 {
		t.Errorf("per-xTR counters: %d to, %d from; want 1 and 1", to.Load(), from.Load())
	}

	// No open relay.
	inject(natted.Addr(), 33333, pktSpec{src: netip.MustParseAddr("198.51.100.99"), dst: hostA4})
	inject(stranger, 61000, pktSpec{src: hostB4, dst: hostA4})
	inject(stranger, 61000, pktSpec{src: netip.MustParseAddr("198.51.100.99"), dst: hostA4})
	waitFor(t, func() bool {
		return rtr.dropped("rtr-source-eid-not-registered") == 1 && rtr.dropped("rtr-not-registered") == 2
	}, "drops by reason: %v", func() any { return rtr.e.Stats().Dropped })
	if _, _, ok := pub.Next(200 * time.Millisecond); ok {
		t.Error("a forged packet was relayed")
	}

	// Relaying off: the RTR without NATed xTRs is no ETR either.
	rtr.e.SetNATedXTRs(nil)
	inject(rlocA4, 61000, in)
	waitFor(t, func() bool { return rtr.dropped("etr-disabled") == 1 }, "drops: %v", func() any { return rtr.e.Stats().Dropped })
}

// ctlHooks are recHooks that take Data-Map-Notifies.
type ctlHooks struct {
	*recHooks
	got chan []byte
}

func (h ctlHooks) DataMapNotify(msg []byte, from netip.AddrPort) { h.got <- msg }

// TestDataMapNotifyToControlPlane: a packet with Instance ID 0xFFFFFF
// reaches the control plane's hook (its inner packet), not a TUN; without
// the hook it is dropped and counted.
func TestDataMapNotifyToControlPlane(t *testing.T) {
	fn := dptest.NewNet()
	h := ctlHooks{recHooks: &recHooks{}, got: make(chan []byte, 1)}
	x := newNode(t, fn, []netip.Addr{rlocB4}, nil, func(c *Config) { c.Hooks = h })
	plain := newNode(t, fn, []netip.Addr{rlocA4}, nil, nil)
	inner := buildPkt(pktSpec{src: rlocA6, dst: rlocB6, sport: 4342, dport: 4342})
	payload := make([]byte, 8, 8+len(inner))
	wire.DataHeader(payload).Put(wire.DataI, 0, DataMapNotifyIID<<8)
	payload = append(payload, inner...)
	x.ul.Inject(payload, Outer{Src: rlocA4, Dst: rlocB4, SrcPort: wire.ControlPort, TTL: 64})
	select {
	case got := <-h.got:
		if !bytes.Equal(got, inner) {
			t.Errorf("hook got\n% x\nwant\n% x", got, inner)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Data-Map-Notify did not reach the hook")
	}
	none(t, x.tun())
	plain.ul.Inject(payload, Outer{Src: rlocB4, Dst: rlocA4, SrcPort: wire.ControlPort, TTL: 64})
	waitFor(t, func() bool { return plain.dropped("control-in-data") == 1 }, "drops: %v", func() any { return plain.e.Stats().Dropped })
}

func waitFor(t *testing.T, cond func() bool, format string, arg func() any) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf(format, arg())
}

// payloadUnderlay records what the engine sends (until discard is set);
// the relay-run tests drive the ETR worker directly, so that a whole
// underlay batch is one GRO run.
type payloadUnderlay struct {
	nullUnderlay
	sent    [][]byte // UDP payloads
	outer   []Outer
	discard bool
}

func (u *payloadUnderlay) Send(b [][]byte, o []Outer, off int) (int, error) {
	for i := range b {
		if u.discard {
			break
		}
		u.sent = append(u.sent, append([]byte(nil), b[i][off:]...))
		u.outer = append(u.outer, o[i])
	}
	return len(b), nil
}

// rtrRunEngine is an RTR (ITR, no ETR) for one NATed xTR (site B behind
// 198.18.3.2:20000) with site A in its map-cache.
func rtrRunEngine(t testing.TB) (*Engine, *payloadUnderlay, netip.AddrPort) {
	t.Helper()
	ul := &payloadUnderlay{nullUnderlay: nullUnderlay{done: make(chan struct{})}}
	e, err := New(Config{LocalRLOCs: []netip.Addr{rlocB4}, Instances: map[uint32]TUN{0: newNullTUN()},
		Underlay: ul, Hooks: nopHooks{}, ITR: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	natted := netip.MustParseAddrPort("198.18.3.2:20000")
	e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, eidA4), Locators: []Locator{{Addr: rlocA4, Priority: 1, Up: true}}})
	e.SetNATedXTRs([]NATedXTR{{EIDs: []mapping.EID{mapping.NewEID(0, eidB4)}, Translated: natted, Local: rlocB4}})
	return e, ul, natted
}

// fillRun puts one received GRO run into a worker's batch: packet i is
// specs[i], LISP-encapsulated, all from one outer source and port.
func fillRun(e *Engine, from netip.Addr, sport uint16, specs []pktSpec) *worker {
	w := e.newWorker(len(specs), e.etrBufSize)
	for i, s := range specs {
		wire.DataHeader(w.bufs[i][PayloadOffset:]).Put(wire.DataN|wire.DataI, uint32(i), 0)
		w.sizes[i] = wire.DataHeaderLen + copy(w.bufs[i][Headroom:], buildPkt(s))
		w.outer[i] = Outer{Src: from, Dst: rlocB4, SrcPort: sport, TTL: 64, HasTOS: true}
	}
	return w
}

// TestRTRRelayRun: the segments of one inner flow in one received run
// are relayed as a run (the first through the lookups, the others as its
// followers), both from a NATed xTR through the map-cache and to it
// through its translated port, each with the head's outer headers and a
// LISP header of its own; a segment of another inner flow ends the run
// and is relayed on its own.
func TestRTRRelayRun(t *testing.T) {
	e, ul, natted := rtrRunEngine(t)
	out := make([]pktSpec, 16)
	for i := range out {
		out[i] = pktSpec{src: hostB4, dst: hostA4, proto: protoTCP, sport: 5000, dport: 443, size: 1400, id: uint16(i)}
	}
	other := netip.MustParseAddr("198.51.100.7")
	out[10].dst = other // another flow (to site A too): ends the run
	w := fillRun(e, natted.Addr(), 33333, out)
	w.etrBatch(len(out))
	if len(ul.sent) != len(out) {
		t.Fatalf("relayed %d of %d packets (drops %v)", len(ul.sent), len(out), e.Stats().Dropped)
	}
	for i, p := range ul.sent {
		h, err := wire.DecodeDataHeader(p)
		if err != nil || !h.I() || !h.N() || h.InstanceID() != 0 {
			t.Errorf("packet %d: LISP header %v (%v)", i, wire.DataHeader(p[:8]), err)
		}
		if want := buildPkt(out[i]); !bytes.Equal(p[wire.DataHeaderLen:], want) {
			t.Errorf("packet %d: inner packet changed (or reordered)", i)
		}
		if o := ul.outer[i]; o.Src != rlocB4 || o.Dst != rlocA4 || o.DstPort != 0 || o.SrcPort != ul.outer[0].SrcPort && i != 10 {
			t.Errorf("packet %d: outer %+v", i, o)
		}
	}
	// Followers: 1-9 of the head 0, 12-15 of the head 11 (10 is a flow
	// of its own, 11 cannot follow 10).
	if got := e.k.runFollowers.Load(); got != 13 {
		t.Errorf("%d packets relayed as run followers, want 13", got)
	}
	if s := e.Stats(); s.Reencapsulated != 16 || s.CacheHits != 16 {
		t.Errorf("reencapsulated %d, cache hits %d; want 16 and 16", s.Reencapsulated, s.CacheHits)
	}

	// To the NATed xTR: one run to its translated address and port.
	ul.sent, ul.outer = nil, nil
	in := make([]pktSpec, 8)
	for i := range in {
		in[i] = pktSpec{src: hostA4, dst: hostB4, proto: protoTCP, sport: 443, dport: 5000, size: 1400, id: uint16(i)}
	}
	in[7].size = 600 // a GRO run's shorter last segment
	w = fillRun(e, rlocA4, 61000, in)
	w.etrBatch(len(in))
	if len(ul.sent) != len(in) {
		t.Fatalf("relayed %d of %d packets to the NATed xTR", len(ul.sent), len(in))
	}
	for i, o := range ul.outer {
		if o.Dst != natted.Addr() || o.DstPort != natted.Port() || o.SrcPort != wire.ControlPort {
			t.Errorf("packet %d to the NATed xTR: outer %+v", i, o)
		}
	}
	if got := e.k.runFollowers.Load(); got != 13+7 {
		t.Errorf("%d run followers after the run to the xTR, want %d", got, 13+7)
	}
	ul.discard = true
	if n := testing.AllocsPerRun(50, func() { w.etrBatch(len(in)) }); n != 0 {
		t.Errorf("a relay run allocates %v times", n)
	}
}

// TestRTRRelayRunNoOpenRelay: a run from a NATed xTR that mixes in a
// source EID it did not register (same outer flow, same sizes, same
// destination) has every segment checked: only the registered source's
// segments are relayed, the others dropped and counted.
func TestRTRRelayRunNoOpenRelay(t *testing.T) {
	e, ul, natted := rtrRunEngine(t)
	forged := netip.MustParseAddr("198.51.100.99")
	specs := make([]pktSpec, 8)
	for i := range specs {
		specs[i] = pktSpec{src: hostB4, dst: hostA4, proto: protoTCP, sport: 5000, dport: 443, size: 1400, id: uint16(i)}
	}
	specs[3].src, specs[5].src, specs[6].src = forged, forged, forged
	w := fillRun(e, natted.Addr(), 33333, specs)
	w.etrBatch(len(specs))
	if len(ul.sent) != 5 {
		t.Errorf("relayed %d packets, want the 5 from the registered source EID", len(ul.sent))
	}
	for i, p := range ul.sent {
		if src := srcAddr(p[wire.DataHeaderLen:]); src != hostB4 {
			t.Errorf("relayed packet %d has source EID %s", i, src)
		}
	}
	if got := e.Stats().Dropped["rtr-source-eid-not-registered"]; got != 3 {
		t.Errorf("rtr-source-eid-not-registered = %d, want 3", got)
	}
	// 1 and 2 follow 0; 4 and 7 are heads (after a dropped segment).
	if got := e.k.runFollowers.Load(); got != 2 {
		t.Errorf("%d run followers, want 2", got)
	}
}

// BenchmarkRTRRelay: an RTR relaying a batch of 64 packets of 1,400
// bytes from a NATed xTR through the map-cache, as one inner flow's run
// (the segments of a TCP burst) and as 64 flows.
func BenchmarkRTRRelay(b *testing.B) {
	for _, flows := range []int{1, benchBatch} {
		b.Run(fmt.Sprint(flows, "flows"), func(b *testing.B) {
			e, ul, natted := rtrRunEngine(b)
			ul.discard = true
			specs := make([]pktSpec, benchBatch)
			for i := range specs {
				specs[i] = pktSpec{src: hostB4, dst: hostA4, proto: protoTCP, sport: uint16(5000 + i%flows), dport: 443, size: 1400}
			}
			w := fillRun(e, natted.Addr(), 33333, specs)
			b.ReportAllocs()
			b.SetBytes(1400 * benchBatch)
			for b.Loop() {
				w.etrBatch(benchBatch)
			}
			reportPackets(b)
		})
	}
}

// relayWay is a TCP packet an RTR relays: from the NATed xTR through the
// map-cache, or from a public ITR to the NATed xTR.
type relayWay struct {
	name string
	from netip.Addr
	spec pktSpec
}

// relayWays are both ways of one TCP flow, of the given IPv4 sizes.
func relayWays(natted netip.AddrPort, fromSize, toSize int) []relayWay {
	return []relayWay{
		{"from the NATed xTR", natted.Addr(), pktSpec{src: hostB4, dst: hostA4, proto: protoTCP, sport: 5000, dport: 443, size: fromSize}},
		{"to the NATed xTR", rlocA4, pktSpec{src: hostA4, dst: hostB4, proto: protoTCP, sport: 443, dport: 5000, size: toSize}},
	}
}

// TestRTRRelayFinishesPartialChecksums: a kernel-path xTR on the same host
// sends TCP over veth with the checksum unfinished (CHECKSUM_PARTIAL: the
// pseudo-header sum, for the NIC to complete). The RTR relays without
// decapsulating to a TUN, so it finishes them itself, the head of a run
// and its followers both ways, or the receiver drops every segment.
func TestRTRRelayFinishesPartialChecksums(t *testing.T) {
	e, ul, natted := rtrRunEngine(t)
	// partial returns spec's packet with its TCP checksum as Linux leaves
	// it unfinished, and the finished checksum.
	partial := func(s pktSpec) ([]byte, uint16) {
		p := buildPkt(s)
		l4 := p[ipv4HeaderLen:]
		sum := wire.ChecksumAdd(0, p[ipv4Src:ipv4Dst+4]) + uint32(protoTCP) + uint32(len(l4))
		want := wire.ChecksumFold(wire.ChecksumAdd(sum, l4))
		binary.BigEndian.PutUint16(l4[16:], ^wire.ChecksumFold(sum))
		return p, want
	}
	for _, c := range relayWays(natted, 1000, 1000) {
		ul.sent, ul.outer = nil, nil
		specs := make([]pktSpec, 4)
		wants := make([]uint16, len(specs))
		w := e.newWorker(len(specs), e.etrBufSize)
		for i := range specs {
			s := c.spec
			s.id = uint16(i)
			p, want := partial(s)
			wants[i] = want
			wire.DataHeader(w.bufs[i][PayloadOffset:]).Put(wire.DataN|wire.DataI, uint32(i), 0)
			w.sizes[i] = wire.DataHeaderLen + copy(w.bufs[i][Headroom:], p)
			w.outer[i] = Outer{Src: c.from, Dst: rlocB4, SrcPort: 33333, TTL: 64, HasTOS: true}
		}
		followers := e.k.runFollowers.Load()
		w.etrBatch(len(specs))
		if len(ul.sent) != len(specs) {
			t.Fatalf("%s: relayed %d of %d (drops %v)", c.name, len(ul.sent), len(specs), e.Stats().Dropped)
		}
		if e.k.runFollowers.Load()-followers != uint64(len(specs)-1) {
			t.Errorf("%s: %d run followers, want %d", c.name, e.k.runFollowers.Load()-followers, len(specs)-1)
		}
		for i, p := range ul.sent {
			l4 := p[wire.DataHeaderLen+ipv4HeaderLen:]
			if got := binary.BigEndian.Uint16(l4[16:]); got != wants[i] {
				t.Errorf("%s, segment %d: TCP checksum %#04x, want the finished %#04x", c.name, i, got, wants[i])
			}
		}
	}
}

// TestRTRRelaySegmentsSuperPackets: a TCP packet bigger than any underlay
// carries — a GSO super-packet a same-host kernel-path xTR sent over veth
// whole — is cut into segments that fit, each a valid TCP segment (its
// part of the payload and sequence space, checksums finished, FIN and PSH
// only on the last), relayed both ways; a packet that fits, and UDP, are
// left whole.
func TestRTRRelaySegmentsSuperPackets(t *testing.T) {
	e, ul, natted := rtrRunEngine(t)
	for _, c := range relayWays(natted, 20000, 5000) {
		ul.sent, ul.outer = nil, nil
		p := buildPkt(c.spec)
		binary.BigEndian.PutUint32(p[ipv4HeaderLen+tcpSeq:], 0xfffff000) // wraps
		p[ipv4HeaderLen+tcpOff] = 5 << 4
		p[ipv4HeaderLen+tcpFlag] = tcpPSH | tcpFIN | tcpCWR | 0x10
		before := e.k.segmented.Load()
		w := e.newWorker(1, e.etrBufSize)
		wire.DataHeader(w.bufs[0][PayloadOffset:]).Put(wire.DataN|wire.DataI, 1, 0)
		w.sizes[0] = wire.DataHeaderLen + copy(w.bufs[0][Headroom:], p)
		w.outer[0] = Outer{Src: c.from, Dst: rlocB4, SrcPort: 33333, TTL: 64, HasTOS: true}
		w.etrBatch(1)
		w.flush()
		per := DefaultUnderlayMTU - Overhead6 - 40
		want := (len(p) - 40 + per - 1) / per
		if len(ul.sent) != want || e.k.segmented.Load()-before != 1 {
			t.Fatalf("%s: %d packets relayed (segmented %d), want %d segments (drops %v)", c.name, len(ul.sent),
				e.k.segmented.Load()-before, want, e.Stats().Dropped)
		}
		var payload []byte
		for i, b := range ul.sent {
			s := b[wire.DataHeaderLen:]
			if len(s) > DefaultUnderlayMTU-Overhead6 || int(binary.BigEndian.Uint16(s[ipv4TotalLen:])) != len(s) {
				t.Fatalf("%s, segment %d: %d bytes, IP length %d", c.name, i, len(s), binary.BigEndian.Uint16(s[ipv4TotalLen:]))
			}
			if ipv4HeaderChecksum(s[:ipv4HeaderLen]) != 0 {
				t.Errorf("%s, segment %d: bad IPv4 header checksum", c.name, i)
			}
			tcp := s[ipv4HeaderLen:]
			sum := wire.ChecksumAdd(0, s[ipv4Src:ipv4Dst+4]) + uint32(protoTCP) + uint32(len(tcp))
			if wire.ChecksumFold(wire.ChecksumAdd(sum, tcp)) != 0 {
				t.Errorf("%s, segment %d: bad TCP checksum", c.name, i)
			}
			if seq := binary.BigEndian.Uint32(tcp[tcpSeq:]); seq != 0xfffff000+uint32(len(payload)) {
				t.Errorf("%s, segment %d: seq %#x, want %#x", c.name, i, seq, 0xfffff000+uint32(len(payload)))
			}
			last := i == len(ul.sent)-1
			if f := tcp[tcpFlag]; (f&(tcpFIN|tcpPSH) != 0) != last || (f&tcpCWR != 0) != (i == 0) || f&0x10 == 0 {
				t.Errorf("%s, segment %d: flags %#02x", c.name, i, f)
			}
			payload = append(payload, tcp[20:]...)
		}
		if !bytes.Equal(payload, p[40:]) {
			t.Errorf("%s: the segments' payloads are not the packet's", c.name)
		}
	}
	// What fits, and a UDP packet too big, are not cut.
	for _, s := range []pktSpec{
		{src: hostB4, dst: hostA4, proto: protoTCP, sport: 5000, dport: 443, size: DefaultUnderlayMTU - Overhead4},
		{src: hostB4, dst: hostA4, proto: protoUDP, sport: 5000, dport: 443, size: 5000},
	} {
		ul.sent, ul.outer = nil, nil
		before := e.k.segmented.Load()
		w := fillRun(e, natted.Addr(), 33333, []pktSpec{s})
		w.bufs[0][Headroom+ipv4HeaderLen+tcpOff] = 5 << 4 // TCP's data offset (for UDP a payload byte)
		w.etrBatch(1)
		w.flush()
		if e.k.segmented.Load() != before || s.proto == protoTCP && len(ul.sent) != 1 {
			t.Errorf("proto %d, %d bytes: cut into segments (%d sent)", s.proto, s.size, len(ul.sent))
		}
	}
}
