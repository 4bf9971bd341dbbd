package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/lispd/lispd/wire"
)

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

// A TCP or UDP checksum left to the NIC (the folded pseudo-header sum)
// is completed; complete checksums and UDP without one are left alone.
func TestCompletePartialChecksum(t *testing.T) {
	tcp4 := func() []byte {
		p := make([]byte, 20+20+11)
		p[0], p[ipv4Proto] = 0x45, protoTCP
		binary.BigEndian.PutUint16(p[ipv4TotalLen:], uint16(len(p)))
		copy(p[ipv4Src:], []byte{198, 51, 100, 10, 203, 0, 113, 10})
		p[20+12] = 5 << 4
		copy(p[40:], "lisp-e2e-xx")
		return p
	}
	udp6 := func() []byte {
		p := make([]byte, 40+8+9)
		p[0], p[ipv6NextHeader] = 0x60, protoUDP
		binary.BigEndian.PutUint16(p[ipv6PayloadLen:], 8+9)
		copy(p[ipv6Src:], netip.MustParseAddr("2001:db8:a::10").AsSlice())
		copy(p[ipv6Dst:], netip.MustParseAddr("2001:db8:b::10").AsSlice())
		binary.BigEndian.PutUint16(p[44:], 8+9)
		copy(p[48:], "lisp-e2e!")
		return p
	}
	for _, c := range []struct {
		name     string
		pkt      func() []byte
		ihl, off int
		v4       bool
	}{{"tcp4", tcp4, 20, 16, true}, {"udp6", udp6, 40, 6, false}} {
		p := c.pkt()
		l4 := p[c.ihl:]
		var sum uint32
		if c.v4 {
			sum = wire.ChecksumAdd(0, p[ipv4Src:ipv4Dst+4])
		} else {
			sum = wire.ChecksumAdd(0, p[ipv6Src:ipv6Dst+16])
		}
		sum += uint32(p[map[bool]int{true: ipv4Proto, false: ipv6NextHeader}[c.v4]]) + uint32(len(l4))
		want := wire.ChecksumFold(wire.ChecksumAdd(sum, l4))
		binary.BigEndian.PutUint16(l4[c.off:], ^wire.ChecksumFold(sum)) // as Linux leaves it
		completePartialChecksum(p)
		if got := binary.BigEndian.Uint16(l4[c.off:]); got != want {
			t.Errorf("%s: checksum %#04x after completion, want %#04x", c.name, got, want)
		}
		completePartialChecksum(p) // complete: unchanged
		if got := binary.BigEndian.Uint16(l4[c.off:]); got != want {
			t.Errorf("%s: a complete checksum became %#04x, want %#04x", c.name, got, want)
		}
	}
	p := tcp4()
	p[ipv4Proto] = protoUDP
	binary.BigEndian.PutUint16(p[24:], 20+11)
	completePartialChecksum(p) // UDP without a checksum
	if p[26] != 0 || p[27] != 0 {
		t.Errorf("UDP without a checksum got %#02x%02x", p[26], p[27])
	}
}
