package dataplane

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// nullTUN and nullUnderlay accept everything and deliver nothing: the
// benchmarks drive the engine's batch functions directly, so they measure
// the engine, not a fake's copying.
type nullTUN struct {
	done chan struct{}
	once sync.Once
}

func newNullTUN() *nullTUN { return &nullTUN{done: make(chan struct{})} }

func (t *nullTUN) Read([][]byte, []int, int) (int, error) { <-t.done; return 0, errClosed }
func (t *nullTUN) Write(b [][]byte, _ int) (int, error)   { return len(b), nil }
func (t *nullTUN) BatchSize() int                         { return 64 }
func (t *nullTUN) MTU() (int, error)                      { return 1500, nil }
func (t *nullTUN) Close() error                           { t.once.Do(func() { close(t.done) }); return nil }

type nullUnderlay struct {
	done chan struct{}
	once sync.Once
}

func (u *nullUnderlay) Send(b [][]byte, _ []Outer, _ int) (int, error) { return len(b), nil }
func (u *nullUnderlay) Receivers() []ReceiveFunc {
	return []ReceiveFunc{func([][]byte, []int, []Outer, int) (int, error) { <-u.done; return 0, errClosed }}
}
func (u *nullUnderlay) BatchSize() int { return 64 }
func (u *nullUnderlay) Close() error   { u.once.Do(func() { close(u.done) }); return nil }

type nopHooks struct{}

func (nopHooks) Miss(uint32, netip.Addr, netip.Addr)           {}
func (nopHooks) SendMapRequest(uint32, netip.Addr, netip.Addr) {}
func (nopHooks) Decapsulated(netip.Addr, uint32, netip.Addr)   {}
func (nopHooks) AwayHit(netip.Addr, uint32, netip.Addr)        {}
func (nopHooks) UnseenHostHit(netip.Addr, uint32, netip.Addr)  {}
func (nopHooks) HostSeen(uint32, netip.Addr)                   {}

const benchBatch = 64

// benchEngine is an xTR with 1,000 map-cache entries of two locators
// each (50/50) and the local EIDs of site B.
func benchEngine(tb testing.TB) *Engine {
	e, err := New(Config{
		LocalRLOCs: []netip.Addr{rlocA4, rlocA6},
		Instances:  map[uint32]TUN{0: newNullTUN()},
		Underlay:   &nullUnderlay{done: make(chan struct{})},
		Hooks:      nopHooks{},
		ITR:        true, ETR: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	for i := range 1000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)
		if i == 0 {
			p = eidB4
		}
		e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, p), Locators: []Locator{
			{Addr: rlocB4, Priority: 1, Weight: 50, Up: true},
			{Addr: netip.MustParseAddr("192.0.2.3"), Priority: 1, Weight: 50, Up: true}}})
	}
	e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, eidB4), mapping.NewEID(0, eidA4)})
	return e
}

// encapWorker returns a worker whose batch holds benchBatch packets of
// size bytes from different flows toward site B.
func encapWorker(e *Engine, size int) *worker {
	w := e.newWorker(benchBatch, e.itrBufSize)
	for i := range benchBatch {
		p := buildPkt(pktSpec{src: hostA4, dst: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), sport: uint16(1000 + i), dport: 443, size: size})
		w.sizes[i] = copy(w.bufs[i][Headroom:], p)
	}
	return w
}

// decapWorker returns a worker whose batch holds benchBatch LISP packets
// (inner size bytes) for site B as the underlay delivers them.
func decapWorker(e *Engine, size int) *worker {
	w := e.newWorker(benchBatch, e.etrBufSize)
	for i := range benchBatch {
		p := buildPkt(pktSpec{src: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), dst: hostB4, sport: uint16(1000 + i), dport: 443, size: size})
		wire.DataHeader(w.bufs[i][PayloadOffset:]).Put(wire.DataN|wire.DataI, uint32(i), 0)
		w.sizes[i] = wire.DataHeaderLen + copy(w.bufs[i][Headroom:], p)
		w.outer[i] = Outer{Src: rlocB4, Dst: rlocA4, SrcPort: 50000, TTL: 64, HasTOS: true}
	}
	return w
}

func BenchmarkEncap(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprint(size, "B"), func(b *testing.B) {
			e := benchEngine(b)
			w := encapWorker(e, size)
			inst := e.instList[0]
			b.ReportAllocs()
			b.SetBytes(int64(size * benchBatch))
			for b.Loop() {
				w.itrBatch(inst, benchBatch)
			}
			reportPackets(b)
		})
	}
}

func BenchmarkDecap(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprint(size, "B"), func(b *testing.B) {
			e := benchEngine(b)
			w := decapWorker(e, size)
			b.ReportAllocs()
			b.SetBytes(int64(size * benchBatch))
			for b.Loop() {
				w.etrBatch(benchBatch)
			}
			reportPackets(b)
		})
	}
}

func reportPackets(b *testing.B) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / benchBatch
	b.ReportMetric(ns, "ns/packet")
	b.ReportMetric(1e9/ns, "packets/s")
}

// The packet paths allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	e := benchEngine(t)
	for _, size := range []int{64, 1400} {
		ew := encapWorker(e, size)
		if n := testing.AllocsPerRun(100, func() { ew.itrBatch(e.instList[0], benchBatch) }); n != 0 {
			t.Errorf("encapsulation of a %d-byte batch: %v allocations", size, n)
		}
		dw := decapWorker(e, size)
		if n := testing.AllocsPerRun(100, func() { dw.etrBatch(benchBatch) }); n != 0 {
			t.Errorf("decapsulation of a %d-byte batch: %v allocations", size, n)
		}
	}
	if s := e.Stats(); s.EncapsulatedPackets == 0 || s.DecapsulatedPackets == 0 || len(s.Dropped) != 0 {
		t.Errorf("the measured paths did not run as intended: %+v", s)
	}
}

// BenchmarkMapCacheLookup1M is the ITR's lookup (snapshot load + LPM)
// with a million entries: 900,000 IPv6 /64s spread at random over
// 2001:db8::/32 and 100,000 IPv4 /32s in 198.18.0.0/15. The probes hit;
// they cycle over a working set of 1 (one hot destination), 1,024 or
// 65,536 destinations drawn at random from the table, per family. The
// large working sets measure memory latency more than the algorithm.
func BenchmarkMapCacheLookup1M(b *testing.B) {
	e := benchEngine(b)
	inst := e.instList[0]
	rng := rand.New(rand.NewPCG(1, 2))
	tbl := new(bart.Fast[*fwdEntry])
	f := &fwdEntry{}
	var v4, v6 []netip.Prefix
	for i := range 1_000_000 {
		if i < 900_000 {
			var a [16]byte
			a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
			v := rng.Uint32()
			a[4], a[5], a[6], a[7] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
			p := netip.PrefixFrom(netip.AddrFrom16(a), 64)
			tbl.Insert(p, f)
			v6 = append(v6, p)
		} else {
			v := uint32(i - 900_000)
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(v>>16), byte(v >> 8), byte(v)}), 32)
			tbl.Insert(p, f)
			v4 = append(v4, p)
		}
	}
	if tbl.Size() < 999_000 {
		b.Fatalf("only %d distinct prefixes", tbl.Size())
	}
	inst.cache.Store(tbl)
	for _, fam := range []struct {
		name string
		all  []netip.Prefix
	}{{"ipv4", v4}, {"ipv6", v6}} {
		for _, ws := range []int{1, 1024, 65536} {
			probes := make([]netip.Addr, ws)
			for i := range probes {
				// An address inside the prefix, not its first one.
				p := fam.all[rng.IntN(len(fam.all))]
				probes[i] = p.Addr()
				if p.Bits() < p.Addr().BitLen() {
					probes[i] = probes[i].Next()
				}
			}
			b.Run(fmt.Sprintf("%s-working-set-%d", fam.name, ws), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, ok := inst.cache.Load().Lookup(probes[i&(ws-1)]); !ok {
						b.Fatal("miss")
					}
					i++
				}
			})
		}
	}
}
