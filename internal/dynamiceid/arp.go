package dynamiceid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ARP operation codes (RFC 826; RFC 903 for RARP; InARP codes are parsed
// but have no name here).
const (
	OpRequest        uint16 = 1
	OpReply          uint16 = 2
	OpReverseRequest uint16 = 3 // RARP request: what a hypervisor sends for a VM it just migrated
	OpReverseReply   uint16 = 4
)

// EtherTypes of the frames an ARPConn reads. RARP (RFC 903) has the ARP
// payload layout under an EtherType of its own.
const (
	EtherTypeARP  uint16 = 0x0806
	EtherTypeRARP uint16 = 0x8035
)

// ARPLen is the length of an Ethernet/IPv4 ARP payload. Frames on the wire
// are usually longer because Ethernet pads them to its 60-byte minimum;
// ParseARP ignores the padding.
const ARPLen = 28

// Fixed header values of Ethernet/IPv4 ARP.
const (
	hwEthernet = 1      // ARP hardware type for Ethernet (and veth, bridges)
	protoIPv4  = 0x0800 // EtherType of IPv4
)

// Sentinel reasons carried by *DecodeError; test with errors.Is.
var (
	ErrTruncated   = errors.New("truncated")
	ErrNotEthernet = errors.New("not Ethernet")
	ErrNotIPv4     = errors.New("not IPv4")
)

// DecodeError says why ParseARP rejected a payload and where.
type DecodeError struct {
	Field  string // e.g. "hardware type"
	Offset int    // byte offset of the field in the ARP payload
	Err    error  // one of the sentinels, possibly wrapped with the value seen
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("arp: %s at offset %d: %v", e.Field, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// MAC is an Ethernet address. An array rather than net.HardwareAddr so an
// ARP is comparable and decoding does not allocate.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// MACFrom converts a net.HardwareAddr; ok is false unless it has 6 bytes.
func MACFrom(hw net.HardwareAddr) (m MAC, ok bool) {
	if len(hw) != len(m) {
		return m, false
	}
	copy(m[:], hw)
	return m, true
}

// String formats m as aa:bb:cc:dd:ee:ff.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// IsZero reports whether m is 00:00:00:00:00:00, the target hardware
// address of a request.
func (m MAC) IsZero() bool { return m == MAC{} }

// ARP is an Ethernet/IPv4 ARP message. Hardware type, protocol type and
// address lengths are implied: ParseARP accepts nothing else, Append
// writes exactly those.
type ARP struct {
	Op        uint16 // OpRequest, OpReply, or any other value seen
	SenderMAC MAC
	SenderIP  netip.Addr // IPv4; 0.0.0.0 in an RFC 5227 probe
	TargetMAC MAC        // zero in a request
	TargetIP  netip.Addr // IPv4
}

// ParseARP decodes the ARP payload of an Ethernet frame (what follows the
// 14-byte Ethernet header, or what an AF_PACKET SOCK_DGRAM socket
// returns). Bytes after the first ARPLen are Ethernet padding and are
// ignored. It fails with a *DecodeError for a payload that is too short or
// that is not Ethernet/IPv4 ARP; it never panics. The result does not
// alias b.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPLen {
		return ARP{}, &DecodeError{Field: "header", Offset: len(b), Err: fmt.Errorf("%w: %d of %d bytes", ErrTruncated, len(b), ARPLen)}
	}
	if ht := binary.BigEndian.Uint16(b[0:]); ht != hwEthernet {
		return ARP{}, &DecodeError{Field: "hardware type", Offset: 0, Err: fmt.Errorf("%w: %d", ErrNotEthernet, ht)}
	}
	if pt := binary.BigEndian.Uint16(b[2:]); pt != protoIPv4 {
		return ARP{}, &DecodeError{Field: "protocol type", Offset: 2, Err: fmt.Errorf("%w: %#04x", ErrNotIPv4, pt)}
	}
	if b[4] != 6 {
		return ARP{}, &DecodeError{Field: "hardware address length", Offset: 4, Err: fmt.Errorf("%w: %d", ErrNotEthernet, b[4])}
	}
	if b[5] != 4 {
		return ARP{}, &DecodeError{Field: "protocol address length", Offset: 5, Err: fmt.Errorf("%w: %d", ErrNotIPv4, b[5])}
	}
	var a ARP
	a.Op = binary.BigEndian.Uint16(b[6:])
	copy(a.SenderMAC[:], b[8:14])
	a.SenderIP = netip.AddrFrom4([4]byte(b[14:18]))
	copy(a.TargetMAC[:], b[18:24])
	a.TargetIP = netip.AddrFrom4([4]byte(b[24:28]))
	return a, nil
}

// Append appends the ARPLen-byte encoding of a to b. An address that is
// not IPv4 (or IPv4-mapped IPv6) is written as 0.0.0.0: Append is for
// values this program builds, and RFC 826 has no way to carry anything
// else in a 4-byte field.
func (a ARP) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, hwEthernet)
	b = binary.BigEndian.AppendUint16(b, protoIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, a.Op)
	b = append(b, a.SenderMAC[:]...)
	b = appendIPv4(b, a.SenderIP)
	b = append(b, a.TargetMAC[:]...)
	return appendIPv4(b, a.TargetIP)
}

func appendIPv4(b []byte, ip netip.Addr) []byte {
	if ip = ip.Unmap(); !ip.Is4() {
		return append(b, 0, 0, 0, 0)
	}
	v := ip.As4()
	return append(b, v[:]...)
}

// IsGratuitous reports whether a announces the sender's own address
// (sender IP == target IP), as a host does when it comes up or moves. A
// RARP's zero addresses announce nothing.
func (a ARP) IsGratuitous() bool {
	return a.SenderIP.IsValid() && !a.SenderIP.IsUnspecified() && a.SenderIP == a.TargetIP
}

// IsAnnouncement reports whether a is a hypervisor's announcement of a
// VM after live migration: a RARP request for the sender's own hardware
// address (QEMU/KVM and VMware send one from the VM's MAC before the VM
// sends anything). It names a MAC, not an address: the xTR resolves the
// MAC with the bindings it learnt from the host's ARP.
func (a ARP) IsAnnouncement() bool {
	return a.Op == OpReverseRequest && a.SenderMAC == a.TargetMAC && !a.SenderMAC.IsZero()
}

// IsProbe reports whether a is an RFC 5227 address probe: a request with
// sender IP 0.0.0.0, sent by a host checking that the target address is
// free before it takes it. It says that a host is about to arrive, not
// that it owns the target address yet.
func (a ARP) IsProbe() bool {
	return a.Op == OpRequest && a.SenderIP == netip.IPv4Unspecified()
}

// String formats a in the style of tcpdump, e.g.
// "request who-has 198.51.100.2 tell 198.51.100.1 (02:00:00:00:00:01)" or
// "reply 198.51.100.2 is-at 02:00:00:00:00:02".
func (a ARP) String() string {
	var s string
	switch a.Op {
	case OpRequest:
		s = fmt.Sprintf("request who-has %s tell %s (%s)", a.TargetIP, a.SenderIP, a.SenderMAC)
	case OpReverseRequest:
		s = fmt.Sprintf("reverse request who-is %s tell %s", a.TargetMAC, a.SenderMAC)
	case OpReply:
		s = fmt.Sprintf("reply %s is-at %s", a.SenderIP, a.SenderMAC)
		if !a.TargetMAC.IsZero() {
			s += fmt.Sprintf(" to %s (%s)", a.TargetIP, a.TargetMAC)
		}
	default:
		s = fmt.Sprintf("op %d sender %s (%s) target %s (%s)", a.Op, a.SenderIP, a.SenderMAC, a.TargetIP, a.TargetMAC)
	}
	if a.IsGratuitous() {
		s += " gratuitous"
	}
	return s
}
