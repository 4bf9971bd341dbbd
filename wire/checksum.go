package wire

import (
	"encoding/binary"
	"net/netip"
)

// The Internet checksum (RFC 1071), used by the ECM's inner headers and,
// through these exported functions, by every other part of lispd that
// builds or checks IP and UDP headers.

// ChecksumAdd adds b to a running one's-complement sum, eight bytes at a
// time; the result is folded to 17 bits, so callers may add small values
// (a protocol, a length) before ChecksumFold.
func ChecksumAdd(sum uint32, b []byte) uint32 {
	s := uint64(sum)
	for len(b) >= 32 {
		v0, v1 := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
		v2, v3 := binary.BigEndian.Uint64(b[16:]), binary.BigEndian.Uint64(b[24:])
		s += v0>>32 + v0&0xffffffff + v1>>32 + v1&0xffffffff + v2>>32 + v2&0xffffffff + v3>>32 + v3&0xffffffff
		b = b[32:]
	}
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		s += v>>32 + v&0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	s = s&0xffffffff + s>>32
	s = s&0xffffffff + s>>32
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint32(s)
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
