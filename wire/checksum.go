package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// The Internet checksum (RFC 1071), used by the ECM's inner headers and,
// through these exported functions, by every other part of lispd that
// builds or checks IP and UDP headers.

// ChecksumAdd adds b to a running one's-complement sum; the result is
// folded to 17 bits, so callers may add small values (a protocol, a
// length) before ChecksumFold. It adds 64-bit little-endian words with
// carry (the add-with-carry chain the compiler emits for bits.Add64) and
// swaps the folded result's bytes: a one's-complement sum does not depend
// on the byte order it is taken in (RFC 1071 §2(B)).
func ChecksumAdd(sum uint32, b []byte) uint32 {
	var s, c uint64
	for len(b) >= 64 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[32:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[40:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[48:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[56:]), c)
		b = b[64:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	var t uint64 // the last 0-7 bytes
	if len(b) >= 4 {
		t = uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		t += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		t += uint64(b[0]) // the high byte of a big-endian word
	}
	s, c = bits.Add64(s, t, c)
	s, c = bits.Add64(s, 0, c)
	s += c // end-around carry: s was 0 if c is 1
	s = s&0xffffffff + s>>32
	s = s&0xffffffff + s>>32
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	r := uint64(sum) + uint64(bits.ReverseBytes16(uint16(s)))
	r = r&0xffff + r>>16
	r = r&0xffff + r>>16
	return uint32(r)
}

// ChecksumFold turns a running sum into the checksum to write: folded to
// 16 bits and complemented. Over data that already carries a correct
// checksum it is 0.
func ChecksumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// PseudoHeaderSum is the running sum of the IPv4 or IPv6 pseudo-header of
// a UDP datagram of length bytes from src to dst.
func PseudoHeaderSum(src, dst netip.Addr, length int) uint32 {
	var sum uint32
	if src.Is4() && dst.Is4() {
		s, d := src.As4(), dst.As4()
		sum = ChecksumAdd(ChecksumAdd(0, s[:]), d[:])
	} else {
		s, d := src.As16(), dst.As16()
		sum = ChecksumAdd(ChecksumAdd(0, s[:]), d[:])
	}
	return sum + ipProtoUDP + uint32(length)
}

// UDPChecksum returns the checksum of udp (header and payload, checksum
// field zero) sent from src to dst. A computed 0 is sent as 0xffff, since
// 0 means "no checksum" (RFC 768).
func UDPChecksum(src, dst netip.Addr, udp []byte) uint16 {
	cs := ChecksumFold(ChecksumAdd(PseudoHeaderSum(src, dst, len(udp)), udp))
	if cs == 0 {
		cs = 0xffff
	}
	return cs
}

// UDPChecksumOK reports whether udp, as received with its checksum, checks.
func UDPChecksumOK(src, dst netip.Addr, udp []byte) bool {
	return ChecksumFold(ChecksumAdd(PseudoHeaderSum(src, dst, len(udp)), udp)) == 0
}
