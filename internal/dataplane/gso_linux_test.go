package dataplane

import (
	"net/netip"
	"testing"
)

// runLen groups one flow's equal segments (a shorter last one ends the
// run) and never more than fit one UDP datagram.
func TestGSORunLen(t *testing.T) {
	dst, other := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	mk := func(sizes []int, dsts []netip.Addr) ([][]byte, []Outer) {
		bufs := make([][]byte, len(sizes))
		outer := make([]Outer, len(sizes))
		for i, n := range sizes {
			bufs[i] = make([]byte, Headroom+n)
			outer[i] = Outer{Dst: dsts[i], SrcPort: 50000, TTL: 64}
		}
		return bufs, outer
	}
	same := func(n int) []netip.Addr {
		d := make([]netip.Addr, n)
		for i := range d {
			d[i] = dst
		}
		return d
	}
	for _, tc := range []struct {
		name  string
		sizes []int
		dsts  []netip.Addr
		want  int
	}{
		{"equal run", []int{100, 100, 100}, same(3), 3},
		{"short last ends it", []int{100, 100, 60, 100}, same(4), 3},
		{"longer breaks", []int{100, 120}, same(2), 1},
		{"other destination", []int{100, 100}, []netip.Addr{dst, other}, 1},
		{"datagram size cap", func() []int {
			s := make([]int, 60)
			for i := range s {
				s[i] = 1452
			}
			return s
		}(), same(60), 65000 / 1452},
	} {
		bufs, outer := mk(tc.sizes, tc.dsts)
		if got := runLen(bufs, outer, Headroom, 0, len(bufs)); got != tc.want {
			t.Errorf("%s: runLen = %d, want %d", tc.name, got, tc.want)
		}
	}
}
