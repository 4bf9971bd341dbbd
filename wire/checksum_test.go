package wire_test

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/lispd/lispd/wire"
)

// naiveChecksum is RFC 1071 done the slow, obvious way, 16 bits at a time,
// to check the eight-bytes-at-a-time implementation against.
func naiveChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// pseudoHeader builds the UDP pseudo-header the long way, for naiveChecksum.
func pseudoHeader(src, dst netip.Addr, udpLen int) []byte {
	if src.Is4() {
		b := slices.Concat(src.AsSlice(), dst.AsSlice(), []byte{0, 17, 0, 0})
		binary.BigEndian.PutUint16(b[10:], uint16(udpLen))
		return b
	}
	b := slices.Concat(src.AsSlice(), dst.AsSlice(), make([]byte, 8))
	binary.BigEndian.PutUint32(b[32:], uint32(udpLen))
	b[39] = 17
	return b
}

func TestChecksum(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		initial uint32
		want    uint16
	}{
		// The worked example of RFC 1071 section 3: the sum is 0xddf2.
		{"rfc1071", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0, ^uint16(0xddf2)},
		{"empty", nil, 0, 0xffff},
		{"odd", []byte{0x12}, 0, ^uint16(0x1200)},
		{"three", []byte{0x12, 0x34, 0x56}, 0, ^uint16(0x1234 + 0x5600)},
		{"initial", []byte{0x00, 0x01}, 0x10002, ^uint16(0x0004)},
		{"carry", []byte{0xff, 0xff, 0xff, 0xff, 0x00, 0x02}, 0, ^uint16(0x0002)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.ChecksumFold(wire.ChecksumAdd(tt.initial, tt.data)); got != tt.want {
				t.Errorf("checksum = %#04x, want %#04x", got, tt.want)
			}
		})
	}
	// Every length up to 200 (so every tail of the 64-, 8-, 4- and 2-byte
	// loops) and packet sizes, at every alignment, against the naive
	// version; runs of 0xff, and a second half of nothing else, make carries.
	buf := make([]byte, 1604)
	for i := range buf {
		buf[i] = byte(i*37 + 200)
		if i%50 > 30 || i >= 800 {
			buf[i] = 0xff
		}
	}
	lengths := []int{576, 1279, 1280, 1499, 1500, 1600}
	for n := range 201 {
		lengths = append(lengths, n)
	}
	for off := range 4 {
		for _, n := range lengths {
			b := buf[off : off+n]
			if got, want := wire.ChecksumFold(wire.ChecksumAdd(0, b)), naiveChecksum(b); got != want {
				t.Fatalf("checksum of %d bytes at offset %d = %#04x, naive %#04x", n, off, got, want)
			}
		}
	}
}

func TestUDPChecksum(t *testing.T) {
	for _, p := range []struct{ src, dst string }{
		{"192.0.2.11", "198.51.100.7"},
		{"2001:db8::1", "2001:db8:ff::12"},
	} {
		src, dst := netip.MustParseAddr(p.src), netip.MustParseAddr(p.dst)
		for _, n := range []int{0, 1, 2, 7, 33, 1400} {
			udp := make([]byte, 8+n)
			binary.BigEndian.PutUint16(udp[0:], 61000)
			binary.BigEndian.PutUint16(udp[2:], 4342)
			binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
			for i := range n {
				udp[8+i] = byte(i*13 + n)
			}
			want := naiveChecksum(slices.Concat(pseudoHeader(src, dst, len(udp)), udp))
			if want == 0 {
				want = 0xffff
			}
			got := wire.UDPChecksum(src, dst, udp)
			if got != want {
				t.Errorf("%s -> %s, %d bytes: UDPChecksum %#04x, want %#04x", src, dst, n, got, want)
			}
			binary.BigEndian.PutUint16(udp[6:], got)
			if !wire.UDPChecksumOK(src, dst, udp) {
				t.Errorf("%s -> %s, %d bytes: UDPChecksumOK false with the computed checksum", src, dst, n)
			}
			udp[len(udp)-1] ^= 0x01
			if wire.UDPChecksumOK(src, dst, udp) {
				t.Errorf("%s -> %s, %d bytes: UDPChecksumOK true after a bit flip", src, dst, n)
			}
		}
	}
}

func BenchmarkChecksum(b *testing.B) {
	buf := make([]byte, 1500)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(int64(len(buf)))
	var sink uint16
	for b.Loop() {
		sink += wire.ChecksumFold(wire.ChecksumAdd(0, buf))
	}
	_ = sink
}
