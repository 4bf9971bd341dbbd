package dataplane

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
)

// recUnderlay records the destinations of each Send call.
type recUnderlay struct {
	nullUnderlay
	mu    sync.Mutex
	calls [][]netip.Addr
}

func (u *recUnderlay) Send(b [][]byte, o []Outer, _ int) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var dsts []netip.Addr
	for i := range o {
		dsts = append(dsts, o[i].Dst)
	}
	u.calls = append(u.calls, dsts)
	return len(b), nil
}

// recEngine is an ITR whose underlay records the destinations of each
// Send call.
func recEngine(t *testing.T) (*Engine, *recUnderlay) {
	t.Helper()
	ul := &recUnderlay{nullUnderlay: nullUnderlay{done: make(chan struct{})}}
	e, err := New(Config{LocalRLOCs: []netip.Addr{rlocA4}, Instances: map[uint32]TUN{0: newNullTUN()}, Underlay: ul, ITR: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, ul
}

// A batch is handed to the underlay grouped by destination RLOC, groups
// in first-seen order, packet order kept within each group.
func TestSendsGroupedByRLOC(t *testing.T) {
	e, ul := recEngine(t)
	w := e.newWorker(8, e.itrBufSize)
	r := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")}
	order := []int{0, 1, 0, 2, 1, 0}
	for i, k := range order {
		w.queueSend(pending{buf: w.bufs[i%len(w.bufs)][:Headroom+20], out: Outer{Dst: r[k], SrcPort: uint16(i)}})
	}
	w.flush()
	want := []netip.Addr{r[0], r[0], r[0], r[1], r[1], r[2]}
	if len(ul.calls) != 1 || len(ul.calls[0]) != len(want) {
		t.Fatalf("sends %v", ul.calls)
	}
	for i := range want {
		if ul.calls[0][i] != want[i] {
			t.Fatalf("send order %v, want %v", ul.calls[0], want)
		}
	}
}

// Local RLOCs change live behind the same outer sources: the ETR takes
// the new ones, not the removed; a change of outer source is refused.
func TestSetLocalRLOCs(t *testing.T) {
	second, renumbered := netip.MustParseAddr("198.18.12.2"), netip.MustParseAddr("198.18.12.3")
	ul := &recUnderlay{nullUnderlay: nullUnderlay{done: make(chan struct{})}}
	e, err := New(Config{LocalRLOCs: []netip.Addr{rlocA4, second}, Instances: map[uint32]TUN{0: newNullTUN()}, Underlay: ul, ETR: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.SetLocalRLOCs([]netip.Addr{rlocA4, renumbered}); err != nil {
		t.Fatal(err)
	}
	if !e.isLocalRLOC(renumbered) || e.isLocalRLOC(second) || !e.isLocalRLOC(rlocA4) {
		t.Error("the ETR's local RLOCs are not the new ones")
	}
	var sc *SourceChangeError
	if err := e.SetLocalRLOCs([]netip.Addr{renumbered}); !errors.As(err, &sc) || sc.Old != rlocA4 {
		t.Errorf("outer source change: %v, want a SourceChangeError from %v", err, rlocA4)
	}
	if !e.isLocalRLOC(rlocA4) {
		t.Error("a refused change changed the local RLOCs")
	}
}

// The underlay gets a batch in chunks of its batch size, each ending
// where a flow run starts rather than inside it (a run cut in two would
// be two GSO sends).
func TestSendChunksKeepRuns(t *testing.T) {
	e, ul := recEngine(t)
	w := e.newWorker(128, e.itrBufSize)
	var bufs [][]byte
	var out []Outer
	for i, n := range []int{45, 45, 10} { // three flows' runs
		for range n {
			bufs = append(bufs, make([]byte, Headroom+100))
			out = append(out, Outer{Src: rlocA4, Dst: rlocB4, SrcPort: uint16(50000 + i), TTL: 64})
		}
	}
	if !w.send(bufs, out) {
		t.Fatal("send failed")
	}
	var got []int
	for _, c := range ul.calls {
		got = append(got, len(c))
	}
	if len(got) != 2 || got[0] != 45 || got[1] != 55 {
		t.Errorf("chunks of %v, want [45 55]", got)
	}
}
