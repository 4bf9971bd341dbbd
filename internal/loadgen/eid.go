package loadgen

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// eidSpace numbers the EID prefixes of a run: prefix i is base + i·2^shift,
// where shift is the number of host bits. Addresses are 128-bit integers
// (hi, lo); an IPv4 address lives in the low 32 bits of lo.
type eidSpace struct {
	v6      bool
	hi, lo  uint64 // base, host bits cleared
	shift   uint   // host bits
	n       int    // number of prefixes
	maskLen uint8
}

func newEIDSpace(base netip.Addr, maskLen, n int) eidSpace {
	s := eidSpace{v6: base.Is6(), n: n, maskLen: uint8(maskLen)}
	if s.v6 {
		b := base.As16()
		s.hi, s.lo = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	} else {
		b := base.As4()
		s.lo = uint64(binary.BigEndian.Uint32(b[:]))
	}
	s.shift = uint(base.BitLen() - maskLen)
	mh, ml := hostMask(s.shift)
	s.hi &^= mh
	s.lo &^= ml
	return s
}

// hostMask returns the 128-bit mask of the low shift bits.
func hostMask(shift uint) (hi, lo uint64) {
	switch {
	case shift == 0:
		return 0, 0
	case shift < 64:
		return 0, 1<<shift - 1
	case shift == 64:
		return 0, ^uint64(0)
	case shift < 128:
		return 1<<(shift-64) - 1, ^uint64(0)
	}
	return ^uint64(0), ^uint64(0)
}

// addr returns prefix i with host bits (rhi, rlo) masked in.
func (s *eidSpace) addr(i int, rhi, rlo uint64) (hi, lo uint64) {
	var ohi, olo uint64 // i << shift
	x := uint64(i)
	switch {
	case s.shift == 0:
		olo = x
	case s.shift < 64:
		olo, ohi = x<<s.shift, x>>(64-s.shift)
	default:
		ohi = x << (s.shift - 64)
	}
	lo, c := bits.Add64(s.lo, olo, 0)
	hi, _ = bits.Add64(s.hi, ohi, c)
	mh, ml := hostMask(s.shift)
	return hi | rhi&mh, lo | rlo&ml
}

// len is the address length in bytes.
func (s *eidSpace) len() int {
	if s.v6 {
		return 16
	}
	return 4
}

// put writes address (hi, lo) into b (4 or 16 bytes).
func (s *eidSpace) put(b []byte, hi, lo uint64) {
	if s.v6 {
		binary.BigEndian.PutUint64(b, hi)
		binary.BigEndian.PutUint64(b[8:], lo)
		return
	}
	binary.BigEndian.PutUint32(b, uint32(lo))
}

// netip returns (hi, lo) as an address.
func (s *eidSpace) netip(hi, lo uint64) netip.Addr {
	var b [16]byte
	s.put(b[:], hi, lo)
	if s.v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

// Prefix returns prefix i (for reports and tests).
func (s *eidSpace) prefix(i int) netip.Prefix {
	hi, lo := s.addr(i, 0, 0)
	return netip.PrefixFrom(s.netip(hi, lo), int(s.maskLen))
}
