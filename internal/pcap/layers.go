package pcap

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// Errors returned by DecodeUDP, in addition to ErrTruncated. The errors it
// returns are preallocated, so decoding a whole file that is mostly not UDP
// costs no allocations; compare them with errors.Is.
var (
	// ErrNotUDP means the frame is valid as far as it was parsed but does
	// not carry a UDP datagram (ARP, TCP, ICMP, ...).
	ErrNotUDP = errors.New("pcap: not a UDP datagram")
	// ErrFragment means the frame holds an IP fragment. It wraps ErrNotUDP,
	// so callers that skip non-UDP frames skip fragments too; fragments are
	// not reassembled.
	ErrFragment error = &layerError{"IP fragment (not reassembled)", ErrNotUDP}
	// ErrMalformed means a lower-layer header contradicts itself, such as an
	// IPv4 header length below 20 bytes or a UDP length beyond the IP packet.
	ErrMalformed = errors.New("pcap: malformed packet")
	// ErrUnsupportedLinkType means DecodeUDP does not know the link type.
	ErrUnsupportedLinkType = errors.New("pcap: unsupported link type")
)

// layerError gives a precise message while still matching one of the
// exported sentinels. All values are package-level, so returning one does
// not allocate.
type layerError struct {
	msg  string
	kind error
}

func (e *layerError) Error() string { return "pcap: " + e.msg }
func (e *layerError) Unwrap() error { return e.kind }

var (
	errShortLink   = &layerError{"frame shorter than its link-layer header", ErrTruncated}
	errShortVLAN   = &layerError{"frame ends inside a VLAN tag", ErrTruncated}
	errTooManyTags = &layerError{"more than 8 VLAN tags", ErrMalformed}
	errEmptyIP     = &layerError{"no IP header after the link-layer header", ErrTruncated}
	errIPVersion   = &layerError{"IP version does not match the link-layer type", ErrMalformed}
	errShortIPv4   = &layerError{"frame ends inside the IPv4 header", ErrTruncated}
	errIPv4IHL     = &layerError{"IPv4 header length below 20 bytes", ErrMalformed}
	errIPv4Len     = &layerError{"IPv4 total length shorter than its header", ErrMalformed}
	errShortIPv6   = &layerError{"frame ends inside the IPv6 header", ErrTruncated}
	errIPv6Jumbo   = &layerError{"IPv6 jumbogram (payload length 0)", ErrMalformed}
	errShortExt    = &layerError{"frame ends inside an IPv6 extension header", ErrTruncated}
	errExtLen      = &layerError{"IPv6 extension header beyond the payload length", ErrMalformed}
	errShortUDP    = &layerError{"frame ends inside the UDP header", ErrTruncated}
	errIPTooShort  = &layerError{"IP payload too short for a UDP header", ErrMalformed}
	errUDPLen      = &layerError{"UDP length below 8 bytes", ErrMalformed}
	errUDPBeyondIP = &layerError{"UDP length beyond the IP payload", ErrMalformed}
)

// UDPDatagram is the result of DecodeUDP. Payload aliases the frame passed
// to DecodeUDP.
type UDPDatagram struct {
	Src, Dst netip.AddrPort
	// Payload is the UDP payload, bounded by the UDP length field (so that
	// Ethernet padding is not included) and by the captured bytes.
	Payload []byte
	// TTL is the IPv4 TTL or the IPv6 hop limit.
	TTL uint8
	// Truncated reports that fewer bytes were captured than the IP or UDP
	// length fields announce, so the payload may be incomplete.
	Truncated bool
}

// Ethernet types that DecodeUDP follows.
const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeVLAN   = 0x8100 // 802.1Q
	etherTypeQinQ   = 0x88a8 // 802.1ad service tag
	etherTypeQinQv1 = 0x9100 // pre-standard double tagging
)

// IP protocol numbers that DecodeUDP follows.
const (
	protoHopByHop = 0
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoDestOpts = 60
)

// DecodeUDP parses a frame of the given link type down to a UDP datagram
// carried in IPv4 or IPv6. It skips VLAN tags and the IPv6 hop-by-hop,
// routing and destination-options headers. Anything that is not UDP yields
// ErrNotUDP (IP fragments yield ErrFragment, which wraps it); frames cut
// short inside a header yield ErrTruncated, inconsistent headers
// ErrMalformed. It never panics, whatever the input.
func DecodeUDP(linkType uint32, frame []byte) (UDPDatagram, error) {
	switch linkType {
	case LinkTypeEthernet:
		if len(frame) < 14 {
			return UDPDatagram{}, errShortLink
		}
		return decodeEtherType(binary.BigEndian.Uint16(frame[12:14]), frame[14:])
	case LinkTypeRaw, LinkTypeRaw12, LinkTypeRaw14:
		if len(frame) == 0 {
			return UDPDatagram{}, errEmptyIP
		}
		switch frame[0] >> 4 {
		case 4:
			return decodeIPv4(frame)
		case 6:
			return decodeIPv6(frame)
		}
		return UDPDatagram{}, ErrNotUDP
	case LinkTypeIPv4:
		return decodeIPv4(frame)
	case LinkTypeIPv6:
		return decodeIPv6(frame)
	case LinkTypeNull, LinkTypeLoop:
		if len(frame) < 4 {
			return UDPDatagram{}, errShortLink
		}
		var family uint32
		if linkType == LinkTypeLoop {
			family = binary.BigEndian.Uint32(frame)
		} else {
			// Written in the capturing host's byte order, which the file
			// does not record; a family number is small, so a value with
			// high bits set must be the other order.
			family = binary.LittleEndian.Uint32(frame)
			if family > 0xffff {
				family = binary.BigEndian.Uint32(frame)
			}
		}
		switch family {
		case 2: // AF_INET everywhere
			return decodeIPv4(frame[4:])
		case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			return decodeIPv6(frame[4:])
		}
		return UDPDatagram{}, ErrNotUDP
	case LinkTypeLinuxSLL:
		if len(frame) < 16 {
			return UDPDatagram{}, errShortLink
		}
		return decodeEtherType(binary.BigEndian.Uint16(frame[14:16]), frame[16:])
	case LinkTypeLinuxSLL2:
		if len(frame) < 20 {
			return UDPDatagram{}, errShortLink
		}
		return decodeEtherType(binary.BigEndian.Uint16(frame[0:2]), frame[20:])
	}
	return UDPDatagram{}, ErrUnsupportedLinkType
}

// decodeEtherType follows an Ethernet type, skipping VLAN tags, to the IP
// header. The tag count is bounded only to reject silly input early; the
// loop would end anyway because each tag consumes 4 bytes.
func decodeEtherType(etype uint16, b []byte) (UDPDatagram, error) {
	for tags := 0; ; tags++ {
		switch etype {
		case etherTypeIPv4:
			return decodeIPv4(b)
		case etherTypeIPv6:
			return decodeIPv6(b)
		case etherTypeVLAN, etherTypeQinQ, etherTypeQinQv1:
			if tags == 8 {
				return UDPDatagram{}, errTooManyTags
			}
			if len(b) < 4 {
				return UDPDatagram{}, errShortVLAN
			}
			etype = binary.BigEndian.Uint16(b[2:4])
			b = b[4:]
		default:
			return UDPDatagram{}, ErrNotUDP
		}
	}
}

func decodeIPv4(b []byte) (UDPDatagram, error) {
	if len(b) < 20 {
		return UDPDatagram{}, errShortIPv4
	}
	if b[0]>>4 != 4 {
		return UDPDatagram{}, errIPVersion
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return UDPDatagram{}, errIPv4IHL
	}
	if len(b) < ihl {
		return UDPDatagram{}, errShortIPv4
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < ihl {
		return UDPDatagram{}, errIPv4Len
	}
	if b[9] != protoUDP {
		return UDPDatagram{}, ErrNotUDP
	}
	// More-fragments flag or a non-zero offset: only part of a datagram.
	if binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
		return UDPDatagram{}, ErrFragment
	}
	truncated := len(b) < total
	if !truncated {
		b = b[:total] // drop link-layer padding and trailers
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	return decodeUDP(src, dst, b[8], b[ihl:], total-ihl, truncated)
}

func decodeIPv6(b []byte) (UDPDatagram, error) {
	if len(b) < 40 {
		return UDPDatagram{}, errShortIPv6
	}
	if b[0]>>4 != 6 {
		return UDPDatagram{}, errIPVersion
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen == 0 {
		// Either a jumbogram (length in a hop-by-hop option) or garbage;
		// neither occurs with LISP, so do not chase it.
		return UDPDatagram{}, errIPv6Jumbo
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	hopLimit := b[7]
	next := b[6]
	payload := b[40:]
	truncated := len(payload) < plen
	if !truncated {
		payload = payload[:plen]
	}
	// Every extension header is at least 8 bytes, so this loop ends.
	for {
		var hlen int
		switch next {
		case protoUDP:
			return decodeUDP(src, dst, hopLimit, payload, plen, truncated)
		case protoHopByHop, protoRouting, protoDestOpts:
			if err := checkExt(payload, plen, 2); err != nil {
				return UDPDatagram{}, err
			}
			hlen = (int(payload[1]) + 1) * 8
		case protoFragment:
			if err := checkExt(payload, plen, 8); err != nil {
				return UDPDatagram{}, err
			}
			// An atomic fragment (offset 0, no more fragments) holds a
			// whole datagram; anything else is a real fragment.
			if binary.BigEndian.Uint16(payload[2:4])&0xfff9 != 0 {
				return UDPDatagram{}, ErrFragment
			}
			hlen = 8
		default:
			return UDPDatagram{}, ErrNotUDP
		}
		if err := checkExt(payload, plen, hlen); err != nil {
			return UDPDatagram{}, err
		}
		next = payload[0]
		payload = payload[hlen:]
		plen -= hlen
	}
}

// checkExt checks that n bytes of extension header are present. A header
// that does not fit the payload length lies; one that fits but was not
// captured was cut short by the capture.
func checkExt(payload []byte, plen, n int) error {
	if n > plen {
		return errExtLen
	}
	if n > len(payload) {
		return errShortExt
	}
	return nil
}

// decodeUDP parses the UDP header at the start of b, the captured part of
// an IP payload whose length according to the IP header is ipLen.
func decodeUDP(src, dst netip.Addr, ttl uint8, b []byte, ipLen int, truncated bool) (UDPDatagram, error) {
	if ipLen < 8 {
		return UDPDatagram{}, errIPTooShort
	}
	if len(b) < 8 {
		return UDPDatagram{}, errShortUDP
	}
	ulen := int(binary.BigEndian.Uint16(b[4:6]))
	if ulen < 8 {
		return UDPDatagram{}, errUDPLen
	}
	if ulen > ipLen {
		return UDPDatagram{}, errUDPBeyondIP
	}
	end := ulen
	if len(b) < end {
		end = len(b)
		truncated = true
	}
	return UDPDatagram{
		Src:       netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2])),
		Dst:       netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4])),
		Payload:   b[8:end:end], // capped so that appends cannot scribble on the frame
		TTL:       ttl,
		Truncated: truncated,
	}, nil
}

// Made-up, locally administered MAC addresses for BuildUDPFrame.
var (
	buildSrcMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	buildDstMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

// BuildUDPFrame returns an Ethernet frame (LinkTypeEthernet) that carries
// payload in a UDP datagram from src to dst, over IPv4 if both addresses are
// IPv4 and over IPv6 if both are IPv6, with TTL/hop limit 64 and valid IPv4
// header and UDP checksums, so that tshark shows no checksum warnings.
//
// It is meant for building test input, so misuse is a programming error: it
// panics if the address families differ or the payload does not fit in one
// IP packet.
func BuildUDPFrame(src, dst netip.AddrPort, payload []byte) []byte {
	sa, da := src.Addr(), dst.Addr()
	v4 := sa.Is4()
	if v4 != da.Is4() || (!v4 && !(sa.Is6() && da.Is6())) {
		panic("pcap: BuildUDPFrame: source and destination address families differ")
	}
	ipHdrLen := 40
	if v4 {
		ipHdrLen = 20
	}
	ulen := 8 + len(payload)
	if ulen+ipHdrLen > 0xffff {
		panic("pcap: BuildUDPFrame: payload too long for one IP packet")
	}
	frame := make([]byte, 14+ipHdrLen+ulen)
	be := binary.BigEndian

	copy(frame[0:6], buildDstMAC[:])
	copy(frame[6:12], buildSrcMAC[:])
	ip := frame[14 : 14+ipHdrLen]
	if v4 {
		be.PutUint16(frame[12:14], etherTypeIPv4)
		ip[0] = 0x45 // version 4, 20-byte header
		be.PutUint16(ip[2:4], uint16(ipHdrLen+ulen))
		be.PutUint16(ip[6:8], 0x4000) // DF, as Linux sends UDP
		ip[8] = 64
		ip[9] = protoUDP
		s4, d4 := sa.As4(), da.As4()
		copy(ip[12:16], s4[:])
		copy(ip[16:20], d4[:])
		be.PutUint16(ip[10:12], wire.ChecksumFold(wire.ChecksumAdd(0, ip)))
	} else {
		be.PutUint16(frame[12:14], etherTypeIPv6)
		ip[0] = 0x60 // version 6, traffic class and flow label 0
		be.PutUint16(ip[4:6], uint16(ulen))
		ip[6] = protoUDP
		ip[7] = 64
		s16, d16 := sa.As16(), da.As16()
		copy(ip[8:24], s16[:])
		copy(ip[24:40], d16[:])
	}
	udp := frame[14+ipHdrLen:]
	be.PutUint16(udp[0:2], src.Port())
	be.PutUint16(udp[2:4], dst.Port())
	be.PutUint16(udp[4:6], uint16(ulen))
	copy(udp[8:], payload)
	be.PutUint16(udp[6:8], wire.UDPChecksum(sa, da, udp))
	return frame
}
