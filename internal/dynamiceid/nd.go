package dynamiceid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Neighbor Discovery (RFC 4861) messages an xTR reads to find IPv6 hosts
// on a LAN, as it reads ARP for IPv4 ones.
const (
	ICMPv6NeighborSolicitation  = 135
	ICMPv6NeighborAdvertisement = 136
)

// ND option types carrying link-layer addresses.
const (
	optSourceLinkLayer = 1
	optTargetLinkLayer = 2
)

// Sentinel reasons of *DecodeError for ND.
var (
	ErrNotND       = errors.New("not a Neighbor Solicitation or Advertisement")
	ErrHopLimit    = errors.New("hop limit not 255") // RFC 4861 §7.1.1: it was forwarded, not sent on the link
	ErrBadChecksum = errors.New("bad ICMPv6 checksum")
)

const (
	ipv6HeaderLen = 40
	ndLen         = 24 // ICMPv6 header (4), flags/reserved (4), target (16)
)

// ND is a Neighbor Solicitation or Advertisement with the addresses that
// tell who is on the link.
type ND struct {
	Type   uint8      // ICMPv6NeighborSolicitation or ICMPv6NeighborAdvertisement
	Src    netip.Addr // IPv6 source; :: in a duplicate address detection NS
	Dst    netip.Addr
	Target netip.Addr
	// LinkAddr is the source (NS) or target (NA) link-layer address
	// option; zero when absent.
	LinkAddr MAC
	// Flags of an NA: router, solicited, override.
	Router, Solicited, Override bool
}

// IsDAD reports whether n is a duplicate address detection probe: an NS
// from the unspecified address for an address the sender is about to
// take (the IPv6 ARP probe).
func (n ND) IsDAD() bool { return n.Type == ICMPv6NeighborSolicitation && n.Src.IsUnspecified() }

// Host returns the address n shows a host using, if any: the source of
// an NS (not a DAD probe), the target of an NA.
func (n ND) Host() (netip.Addr, bool) {
	switch {
	case n.Type == ICMPv6NeighborAdvertisement:
		return n.Target, true
	case !n.IsDAD() && !n.Src.IsLinkLocalUnicast():
		return n.Src, true
	}
	return netip.Addr{}, false
}

// String formats n in the style of tcpdump.
func (n ND) String() string {
	if n.Type == ICMPv6NeighborSolicitation {
		return fmt.Sprintf("neighbor solicitation who has %s from %s (%s)", n.Target, n.Src, n.LinkAddr)
	}
	return fmt.Sprintf("neighbor advertisement tgt is %s (%s) to %s solicited=%v", n.Target, n.LinkAddr, n.Dst, n.Solicited)
}

// ParseND decodes an IPv6 packet (what an AF_PACKET SOCK_DGRAM socket
// returns) holding a Neighbor Solicitation or Advertisement directly after
// the IPv6 header. It checks what RFC 4861 §7.1 asks a receiver to: hop
// limit 255, code 0, the ICMPv6 checksum, a unicast or unspecified target;
// it never panics and the result does not alias b.
func ParseND(b []byte) (ND, error) {
	if len(b) < ipv6HeaderLen+ndLen {
		return ND{}, &DecodeError{Field: "header", Offset: len(b), Err: fmt.Errorf("%w: %d bytes", ErrTruncated, len(b))}
	}
	if b[0]>>4 != 6 {
		return ND{}, &DecodeError{Field: "version", Offset: 0, Err: ErrNotND}
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if b[6] != 58 {
		return ND{}, &DecodeError{Field: "next header", Offset: 6, Err: ErrNotND}
	}
	if b[7] != 255 {
		return ND{}, &DecodeError{Field: "hop limit", Offset: 7, Err: ErrHopLimit}
	}
	if plen < ndLen || ipv6HeaderLen+plen > len(b) {
		return ND{}, &DecodeError{Field: "payload length", Offset: 4, Err: fmt.Errorf("%w: %d", ErrTruncated, plen)}
	}
	icmp := b[ipv6HeaderLen : ipv6HeaderLen+plen]
	n := ND{Type: icmp[0], Src: netip.AddrFrom16([16]byte(b[8:24])), Dst: netip.AddrFrom16([16]byte(b[24:40])),
		Target: netip.AddrFrom16([16]byte(icmp[8:24]))}
	if (n.Type != ICMPv6NeighborSolicitation && n.Type != ICMPv6NeighborAdvertisement) || icmp[1] != 0 {
		return ND{}, &DecodeError{Field: "ICMPv6 type", Offset: ipv6HeaderLen, Err: ErrNotND}
	}
	if icmpv6Checksum(n.Src, n.Dst, icmp) != 0 {
		return ND{}, &DecodeError{Field: "checksum", Offset: ipv6HeaderLen + 2, Err: ErrBadChecksum}
	}
	if n.Target.IsMulticast() {
		return ND{}, &DecodeError{Field: "target", Offset: ipv6HeaderLen + 8, Err: ErrNotND}
	}
	if n.Type == ICMPv6NeighborAdvertisement {
		n.Router, n.Solicited, n.Override = icmp[4]&0x80 != 0, icmp[4]&0x40 != 0, icmp[4]&0x20 != 0
	}
	want := uint8(optSourceLinkLayer)
	if n.Type == ICMPv6NeighborAdvertisement {
		want = optTargetLinkLayer
	}
	for opts := icmp[ndLen:]; len(opts) >= 2; {
		l := int(opts[1]) * 8
		if l == 0 || l > len(opts) {
			return ND{}, &DecodeError{Field: "option length", Offset: len(b) - len(opts) + 1, Err: ErrTruncated}
		}
		if opts[0] == want && l >= 8 {
			copy(n.LinkAddr[:], opts[2:8])
		}
		opts = opts[l:]
	}
	return n, nil
}

// AppendNS appends an IPv6 Neighbor Solicitation for target from src
// (a link-local address of ours) with our link-layer address mac, sent to
// target's solicited-node multicast group, hop limit 255.
func AppendNS(b []byte, src, target netip.Addr, mac MAC) []byte {
	dst := SolicitedNode(target)
	icmp := make([]byte, ndLen+8)
	icmp[0] = ICMPv6NeighborSolicitation
	t := target.As16()
	copy(icmp[8:], t[:])
	icmp[ndLen], icmp[ndLen+1] = optSourceLinkLayer, 1
	copy(icmp[ndLen+2:], mac[:])
	binary.BigEndian.PutUint16(icmp[2:], icmpv6Checksum(src, dst, icmp))
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(icmp)))
	b = append(b, 58, 255)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, icmp...)
}

// SolicitedNode is the solicited-node multicast address of a (RFC 4291
// §2.7.1): ff02::1:ffXX:XXXX with a's low 24 bits.
func SolicitedNode(a netip.Addr) netip.Addr {
	v := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: v[13], 14: v[14], 15: v[15]})
}

// MulticastMAC is the Ethernet address IPv6 multicast to a goes to
// (33:33 and a's low 32 bits, RFC 2464 §7).
func MulticastMAC(a netip.Addr) MAC {
	v := a.As16()
	return MAC{0x33, 0x33, v[12], v[13], v[14], v[15]}
}

// icmpv6Checksum is the ICMPv6 checksum over the IPv6 pseudo-header and
// msg; over a message with its checksum in place it is 0 when valid.
func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	sum += uint32(len(msg)) + 58
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
