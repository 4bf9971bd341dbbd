package dataplane

import (
	"encoding/binary"
	"github.com/lispd/lispd/wire"
	"net/netip"
)

// Fixed offsets in IPv4 and IPv6 headers.
const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40

	ipv4TOS      = 1
	ipv4TotalLen = 2
	ipv4Frag     = 6
	ipv4TTL      = 8
	ipv4Proto    = 9
	ipv4Csum     = 10
	ipv4Src      = 12
	ipv4Dst      = 16

	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24

	ipv4DF       = 0x4000
	ipv4MF       = 0x2000
	ipv4OffMask  = 0x1fff
	protoICMP    = 1
	protoTCP     = 6
	protoUDP     = 17
	protoIPv6Frg = 44
	protoICMPv6  = 58
	protoSCTP    = 132
)

// ECN codepoints (RFC 3168).
const (
	ecnNotECT = 0
	ecnECT1   = 1
	ecnECT0   = 2
	ecnCE     = 3
)

// checkInner validates an inner IP packet and returns its IP length (which
// may be shorter than pkt when the link padded it). ok is false for
// anything that is not a well-formed IPv4 or IPv6 header.
func checkInner(pkt []byte) (n int, ok bool) {
	if len(pkt) < 1 {
		return 0, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderLen {
			return 0, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(pkt[ipv4TotalLen:]))
		if ihl < ipv4HeaderLen || tot < ihl || tot > len(pkt) {
			return 0, false
		}
		return tot, true
	case 6:
		if len(pkt) < ipv6HeaderLen {
			return 0, false
		}
		tot := ipv6HeaderLen + int(binary.BigEndian.Uint16(pkt[ipv6PayloadLen:]))
		if tot > len(pkt) {
			return 0, false
		}
		return tot, true
	}
	return 0, false
}

// dstAddr and srcAddr read the addresses of a checked packet.
func dstAddr(pkt []byte) netip.Addr {
	if pkt[0]>>4 == 4 {
		return netip.AddrFrom4([4]byte(pkt[ipv4Dst : ipv4Dst+4]))
	}
	return netip.AddrFrom16([16]byte(pkt[ipv6Dst : ipv6Dst+16]))
}

func srcAddr(pkt []byte) netip.Addr {
	if pkt[0]>>4 == 4 {
		return netip.AddrFrom4([4]byte(pkt[ipv4Src : ipv4Src+4]))
	}
	return netip.AddrFrom16([16]byte(pkt[ipv6Src : ipv6Src+16]))
}

// ttlTOS reads the TTL (hop limit) and the TOS (traffic class).
func ttlTOS(pkt []byte) (ttl, tos uint8) {
	if pkt[0]>>4 == 4 {
		return pkt[ipv4TTL], pkt[ipv4TOS]
	}
	return pkt[ipv6HopLimit], pkt[0]<<4 | pkt[1]>>4
}

// setTTLTOS rewrites the TTL and TOS of a checked packet, updating the
// IPv4 header checksum incrementally (RFC 1624).
func setTTLTOS(pkt []byte, ttl, tos uint8) {
	if pkt[0]>>4 == 4 {
		oldA := binary.BigEndian.Uint16(pkt[0:])       // version/IHL, TOS
		oldB := binary.BigEndian.Uint16(pkt[ipv4TTL:]) // TTL, protocol
		pkt[ipv4TOS], pkt[ipv4TTL] = tos, ttl
		newA := binary.BigEndian.Uint16(pkt[0:])
		newB := binary.BigEndian.Uint16(pkt[ipv4TTL:])
		c := binary.BigEndian.Uint16(pkt[ipv4Csum:])
		c = csumUpdate(c, oldA, newA)
		c = csumUpdate(c, oldB, newB)
		binary.BigEndian.PutUint16(pkt[ipv4Csum:], c)
		return
	}
	pkt[ipv6HopLimit] = ttl
	pkt[0] = 0x60 | tos>>4
	pkt[1] = tos<<4 | pkt[1]&0x0f
}

// csumUpdate returns the Internet checksum c after a 16-bit word of the
// covered data changed from old to new: HC' = ~(~HC + ~m + m') (RFC 1624).
func csumUpdate(c, old, new uint16) uint16 {
	s := uint32(^c) + uint32(^old) + uint32(new)
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return ^uint16(s)
}

// ipv4HeaderChecksum computes the checksum of an IPv4 header whose
// checksum field is zero.
func ipv4HeaderChecksum(h []byte) uint16 { return wire.ChecksumFold(wire.ChecksumAdd(0, h)) }

// ecnDecap combines the outer and inner ECN fields on decapsulation as
// RFC 6040 §4.2 specifies: it returns the inner field to forward with, or
// drop for CE arriving on a packet that is not ECN-capable.
func ecnDecap(outer, inner uint8) (out uint8, drop bool) {
	switch {
	case outer == ecnCE && inner == ecnNotECT:
		return 0, true
	case outer == ecnCE:
		return ecnCE, false
	case outer == ecnECT1 && inner == ecnECT0:
		return ecnECT1, false
	}
	return inner, false
}

// nonUnicastDst reports destinations LISP does not map: multicast,
// broadcast and link-local (the kernel sends router solicitations and MLD
// reports to a TUN when it comes up).
func nonUnicastDst(a netip.Addr) bool {
	return a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// flowHash hashes the inner 5-tuple (addresses, protocol, ports) for TCP,
// UDP and SCTP, and the 2-tuple (addresses) otherwise and for fragments,
// so that every packet of a flow, and every fragment of a packet, hashes
// alike (RFC 9300 §12).
func flowHash(pkt []byte, seed uint64) uint64 {
	h := seed
	var proto uint8
	var ports uint32
	if pkt[0]>>4 == 4 {
		ihl := int(pkt[0]&0x0f) * 4
		h = mix64(h ^ (uint64(binary.BigEndian.Uint32(pkt[ipv4Src:]))<<32 | uint64(binary.BigEndian.Uint32(pkt[ipv4Dst:]))))
		frag := binary.BigEndian.Uint16(pkt[ipv4Frag:]) & (ipv4MF | ipv4OffMask)
		if p := pkt[ipv4Proto]; frag == 0 && hasPorts(p) && len(pkt) >= ihl+4 {
			proto, ports = p, binary.BigEndian.Uint32(pkt[ihl:])
		}
	} else {
		h = mix64(h ^ binary.BigEndian.Uint64(pkt[ipv6Src:]))
		h = mix64(h ^ binary.BigEndian.Uint64(pkt[ipv6Src+8:]))
		h = mix64(h ^ binary.BigEndian.Uint64(pkt[ipv6Dst:]))
		h = mix64(h ^ binary.BigEndian.Uint64(pkt[ipv6Dst+8:]))
		if p := pkt[ipv6NextHeader]; hasPorts(p) && len(pkt) >= ipv6HeaderLen+4 {
			proto, ports = p, binary.BigEndian.Uint32(pkt[ipv6HeaderLen:])
		}
	}
	if proto != 0 {
		h ^= uint64(proto)<<32 | uint64(ports)
	}
	return mix64(h)
}

func hasPorts(proto uint8) bool { return proto == protoTCP || proto == protoUDP || proto == protoSCTP }

// mix64 is the murmur3 64-bit finalizer.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// srcPortOf derives the outer UDP source port from a flow hash: the
// dynamic range 49152-65535, from hash bits the RLOC choice does not use.
func srcPortOf(h uint64) uint16 { return 0xc000 | uint16(h>>48)&0x3fff }

// completePartialChecksum fills in the TCP or UDP checksum of a
// decapsulated packet that left its sender's kernel unfinished
// (CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, for the
// NIC to complete). Physical links never carry one, but veth does, across
// namespaces: a kernel-path ITR on the same host encapsulates such a
// packet as Linux's own tunnels do, leaving its completion to the egress
// device, and a kernel receiver keeps the state; only this engine, reading
// the packet from a socket, sees the field unfinished. A complete packet
// whose checksum happens to equal the pseudo-header sum gets the same
// checksum back. n is the packet's IP length.
func completePartialChecksum(pkt []byte) {
	var l4 []byte
	var proto uint8
	var sum uint32
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(pkt[ipv4TotalLen:]))
		if binary.BigEndian.Uint16(pkt[ipv4Frag:])&(ipv4MF|ipv4OffMask) != 0 || tot > len(pkt) || ihl > tot {
			return
		}
		proto, l4 = pkt[ipv4Proto], pkt[ihl:tot]
		sum = wire.ChecksumAdd(0, pkt[ipv4Src:ipv4Dst+4])
	case 6:
		tot := ipv6HeaderLen + int(binary.BigEndian.Uint16(pkt[ipv6PayloadLen:]))
		if tot > len(pkt) {
			return
		}
		proto, l4 = pkt[ipv6NextHeader], pkt[ipv6HeaderLen:tot]
		sum = wire.ChecksumAdd(0, pkt[ipv6Src:ipv6Dst+16])
	default:
		return
	}
	off := 0
	switch {
	case proto == protoTCP && len(l4) >= 20:
		off = 16
	case proto == protoUDP && len(l4) >= 8:
		off = 6
	default:
		return
	}
	field := binary.BigEndian.Uint16(l4[off:])
	if field == 0 {
		return // UDP over IPv4 without a checksum (and never a partial seed)
	}
	sum += uint32(proto) + uint32(len(l4))
	if field != ^wire.ChecksumFold(sum) {
		return
	}
	l4[off], l4[off+1] = 0, 0
	c := wire.ChecksumFold(wire.ChecksumAdd(sum, l4))
	if c == 0 && proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}
