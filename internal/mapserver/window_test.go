package mapserver

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestDigestWindowModel drives the window with random digests (many
// sharing a home slot, so probe runs wrap and shift) and checks every
// answer against a plain map with the same insertion-order eviction.
func TestDigestWindowModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w digestWindow
	model := map[digest]seenReg{}
	var order []digest
	src := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:198.51.100.7")}
	// A few hundred distinct digests crowded into a few home slots next to
	// the table's end, the rest anywhere.
	var pool []digest
	for i := 0; i < 3*windowSize; i++ {
		d := digest(rng.Uint64())
		if i%4 == 0 {
			d = digest(uint64(rng.IntN(8))<<40 | uint64(windowSlots-1-rng.IntN(3)))
		}
		if d == 0 {
			d = 1
		}
		pool = append(pool, d)
	}
	for step := int64(1); step <= 200000; step++ {
		d := pool[rng.IntN(len(pool))]
		if rng.IntN(2) == 0 {
			got, ok := w.get(d, step)
			want, wok := model[d]
			if ok != wok || got != want {
				t.Fatalf("step %d: get(%x) = %v %v, model %v %v", step, d, got, ok, want, wok)
			}
			continue
		}
		s := src[rng.IntN(len(src))]
		w.put(d, s, step)
		if e, ok := model[d]; ok {
			e.at = step
			model[d] = e
			continue
		}
		if len(order) == windowSize {
			delete(model, order[0])
			order = order[1:]
		}
		order = append(order, d)
		model[d] = seenReg{src: s, at: step}
	}
	if len(w.slots) != windowSlots {
		t.Fatalf("a full window has %d slots, want %d", len(w.slots), windowSlots)
	}
	n := 0
	for i := range w.slots {
		if w.slots[i].key != 0 {
			n++
		}
	}
	if n != len(model) {
		t.Fatalf("window holds %d digests, model %d", n, len(model))
	}
}

func TestDigestWindowAge(t *testing.T) {
	var w digestWindow
	d := digestOf([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	w.put(d, netip.MustParseAddr("192.0.2.1"), 0)
	// A site with one xTR keeps a small table.
	if len(w.slots) != minWindowSlots {
		t.Fatalf("one digest takes a table of %d slots, want %d", len(w.slots), minWindowSlots)
	}
	if _, ok := w.get(d, int64(windowAge)); !ok {
		t.Fatal("forgotten before windowAge")
	}
	if _, ok := w.get(d, int64(windowAge)+1); ok {
		t.Fatal("still seen after windowAge")
	}
	if got := digestOf(make([]byte, 16)); got != 1 {
		t.Fatalf("all-zero authentication data has digest %x, want 1 (0 marks free slots)", got)
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], 0xdeadbeef)
	if got := digestOf(b[:]); got != 0xdeadbeef {
		t.Fatalf("digest %x", got)
	}
}

func BenchmarkDigestWindow(b *testing.B) {
	var w digestWindow
	rng := rand.New(rand.NewPCG(3, 4))
	src := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := digest(rng.Uint64() | 1)
		if _, ok := w.get(d, int64(i)); !ok {
			w.put(d, src, int64(i))
		}
	}
}
