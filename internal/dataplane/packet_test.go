package dataplane

import (
	"github.com/lispd/lispd/wire"
	"math/rand/v2"
	"testing"
)

// csumAdd agrees with the plain 16-bit one's complement sum of RFC 1071
// for every length and alignment.
func TestChecksum(t *testing.T) {
	ref := func(b []byte) uint16 {
		var s uint32
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
		for s > 0xffff {
			s = s&0xffff + s>>16
		}
		return ^uint16(s)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 1600)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for i := range b {
		b[i] = 0xff // worst case for carries in the second half
		if i < 800 {
			b[i] = byte(rng.Uint32())
		}
	}
	for n := range len(b) {
		for _, off := range []int{0, 1, 3} {
			if off+n > len(b) {
				continue
			}
			if got, want := wire.ChecksumFold(wire.ChecksumAdd(0, b[off:off+n])), ref(b[off:off+n]); got != want {
				t.Fatalf("len %d off %d: %#04x, want %#04x", n, off, got, want)
			}
		}
	}
}

func TestECNDecap(t *testing.T) {
	// RFC 6040 §4.2, Figure 4: rows inner, columns outer.
	want := [4][4]int{
		{ecnNotECT, ecnNotECT, ecnNotECT, -1},
		{ecnECT1, ecnECT1, ecnECT1, ecnCE},
		{ecnECT0, ecnECT1, ecnECT0, ecnCE},
		{ecnCE, ecnCE, ecnCE, ecnCE},
	}
	// Index by codepoint: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE; the figure's
	// outer columns Not-ECT, ECT(0), ECT(1), CE are reordered here.
	for inner := range 4 {
		for outer := range 4 {
			got, drop := ecnDecap(uint8(outer), uint8(inner))
			w := want[inner][outer]
			if w < 0 {
				if !drop {
					t.Errorf("inner %d outer %d: not dropped", inner, outer)
				}
				continue
			}
			if drop || int(got) != w {
				t.Errorf("inner %d outer %d: %d (drop %v), want %d", inner, outer, got, drop, w)
			}
		}
	}
}

// Options without the copy flag become NOPs in later fragments; copied
// ones stay; a malformed length blanks the rest.
func TestNopOptions(t *testing.T) {
	o := []byte{
		0x07, 7, 4, 0, 0, 0, 0, // record route (not copied)
		0x01,                   // NOP
		0x83, 7, 4, 1, 2, 3, 4, // loose source route (copied)
		0x00, // end
	}
	nopOptions(o)
	want := []byte{1, 1, 1, 1, 1, 1, 1, 1, 0x83, 7, 4, 1, 2, 3, 4, 0}
	if string(o) != string(want) {
		t.Errorf("got % x\nwant % x", o, want)
	}
	bad := []byte{0x44, 40, 1, 2}
	nopOptions(bad)
	if string(bad) != string([]byte{1, 1, 1, 1}) {
		t.Errorf("malformed option: % x", bad)
	}
}
