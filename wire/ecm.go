package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ECM header bits (RFC 9301 §5.8, §12.6; RFC 8111).
const (
	ecmS = 0x08 // LISP-SEC authentication data follows
	ecmD = 0x04 // DDT-originated
	ecmE = 0x02 // to ETR (NAT draft: R, process at RTR)
	ecmM = 0x01 // to Map-Server (NAT draft: N, relayed by RTR)

	ipProtoUDP = 17
)

// InnerIP is the IP header inside an ECM. Fields that do not matter to LISP
// are kept so a decoded ECM re-encodes byte-exactly.
type InnerIP struct {
	Src, Dst     netip.Addr
	TTL          uint8  // IPv4 TTL or IPv6 hop limit (senders use 64)
	TOS          uint8  // IPv4 TOS or IPv6 traffic class
	ID           uint16 // IPv4
	FlagsFrag    uint16 // IPv4 flags and fragment offset (fragments are rejected on decode)
	Options      []byte // IPv4 options
	FlowLabel    uint32 // IPv6
	Checksum     uint16 // IPv4 header checksum as received
	UDPChecksum  uint16 // UDP checksum as received
	ChecksumsBad bool   // set on decode when a received checksum does not verify
	// KeepChecksums makes Append write Checksum and UDPChecksum as they
	// are instead of computing them. Decode sets it, so a received ECM
	// re-encodes byte-exactly even with a zero or wrong checksum.
	KeepChecksums bool
}

// ECM is an Encapsulated Control Message (type 8): a control message (almost
// always a Map-Request) inside an IP and UDP header.
type ECM struct {
	Security   bool // S: SecurityAD holds the LISP-SEC ECM AD or the MS-RTR AD
	DDT        bool // D
	ForETR     bool // E (or NAT R)
	ForMS      bool // M (or NAT N)
	Reserved   uint32
	SecurityAD []byte // as received; AuthData or RTRAuthData decodes it, SetAuthData or SetRTRAuthData fills it
	IP         InnerIP
	SrcPort    uint16
	DstPort    uint16
	Message    Message
}

// Type implements Message.
func (m *ECM) Type() MessageType { return TypeECM }

func (m *ECM) ipHeaderLen() int {
	if m.IP.Src.Is4() {
		return 20 + len(m.IP.Options)
	}
	return 40
}

// Len implements Message.
func (m *ECM) Len() int {
	n := 4 + len(m.SecurityAD) + m.ipHeaderLen() + 8
	if m.Message != nil {
		n += m.Message.Len()
	}
	return n
}

// Append implements Message. Checksums are computed unless IP.KeepChecksums.
func (m *ECM) Append(b []byte) ([]byte, error) {
	const msg = "ECM"
	if m.Message == nil {
		return b, encErr(msg, "inner message", ErrBadValue)
	}
	src, dst := m.IP.Src.Unmap(), m.IP.Dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return b, encErr(msg, "inner IP addresses", ErrBadValue)
	}
	if len(m.SecurityAD) > 0 != m.Security {
		return b, encErr(msg, "S bit", ErrBadValue) // S without its AD would misplace the inner header
	}
	if len(m.IP.Options)%4 != 0 || len(m.IP.Options) > 40 {
		return b, encErr(msg, "IPv4 options", ErrBadLength)
	}
	b0 := byte(TypeECM)<<4 | flag(m.Security, ecmS) | flag(m.DDT, ecmD) | flag(m.ForETR, ecmE) | flag(m.ForMS, ecmM)
	b = put32(b, uint32(b0)<<24|m.Reserved&0xffffff)
	b = append(b, m.SecurityAD...)
	ttl := m.IP.TTL
	ipStart := len(b)
	inner := m.Message.Len()
	udpLen := 8 + inner
	if src.Is4() {
		hl := 20 + len(m.IP.Options)
		if hl+udpLen > 0xffff {
			return b, encErr(msg, "inner length", ErrBadLength)
		}
		b = append(b, byte(0x40|hl/4), m.IP.TOS)
		b = put16(put16(put16(b, uint16(hl+udpLen)), m.IP.ID), m.IP.FlagsFrag)
		b = append(b, ttl, ipProtoUDP, 0, 0)
		s4, d4 := src.As4(), dst.As4()
		b = append(append(append(b, s4[:]...), d4[:]...), m.IP.Options...)
		cs := m.IP.Checksum
		if !m.IP.KeepChecksums {
			cs = ChecksumFold(ChecksumAdd(0, b[ipStart:]))
		}
		binary.BigEndian.PutUint16(b[ipStart+10:], cs)
	} else {
		if udpLen > 0xffff {
			return b, encErr(msg, "inner length", ErrBadLength)
		}
		b = put32(b, 6<<28|uint32(m.IP.TOS)<<20|m.IP.FlowLabel&0xfffff)
		b = append(put16(b, uint16(udpLen)), ipProtoUDP, ttl)
		s16, d16 := src.As16(), dst.As16()
		b = append(append(b, s16[:]...), d16[:]...)
	}
	udpStart := len(b)
	b = put16(put16(put16(put16(b, m.SrcPort), m.DstPort), uint16(udpLen)), 0)
	b, err := m.Message.Append(b)
	if err != nil {
		return b, err
	}
	cs := m.IP.UDPChecksum
	if !m.IP.KeepChecksums {
		cs = UDPChecksum(src, dst, b[udpStart:])
	}
	binary.BigEndian.PutUint16(b[udpStart+6:], cs)
	return b, nil
}

// EncapsulateMapRequest wraps req in the ECM an ITR sends to a Map-Resolver
// (RFC 9301 §5.8): inner IP from the first of sources of eid's family to
// eid, TTL 64; inner UDP from srcPort to ControlPort. The inner header must
// be of the EID's family, so when no source is (an IPv6 EID asked over IPv4
// RLOCs) it is the unspecified address of that family: the Map-Reply goes
// to the ITR-RLOCs, never to the inner source.
func EncapsulateMapRequest(req *MapRequest, eid netip.Addr, srcPort uint16, sources ...netip.Addr) *ECM {
	eid = eid.Unmap()
	return &ECM{IP: InnerIP{Src: ecmSource(eid, sources), Dst: eid, TTL: 64}, SrcPort: srcPort, DstPort: ControlPort,
		Message: req}
}

func ecmSource(eid netip.Addr, sources []netip.Addr) netip.Addr {
	for _, a := range sources {
		if a = a.Unmap(); a.IsValid() && a.Is4() == eid.Is4() {
			return a
		}
	}
	if eid.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// DecodeECM decodes an Encapsulated Control Message and the message inside.
func DecodeECM(b []byte) (*ECM, error) { return decodeECM(b, 0, 0) }

func decodeECM(b []byte, base, depth int) (*ECM, error) {
	r := newReader(b, base, "ECM")
	if err := r.need(4, "header"); err != nil {
		return nil, err
	}
	w, _ := r.u32("header")
	m := &ECM{Security: b[0]&ecmS != 0, DDT: b[0]&ecmD != 0, ForETR: b[0]&ecmE != 0, ForMS: b[0]&ecmM != 0,
		Reserved: w & 0xffffff}
	if m.Security {
		// The AD's own lengths say where the inner IP header starts; its
		// type says which AD it is: LISP-SEC's, or the MS-RTR one of the
		// NAT draft.
		if err := r.need(1, "AD Type"); err != nil {
			return nil, err
		}
		if r.b[r.off] == RTRADType {
			n, err := splitRTRAuthData(r.b[r.off:], base+r.off)
			if err != nil {
				return nil, err
			}
			m.SecurityAD, _ = r.bytes(n, "MS-RTR AD")
		} else {
			n, _, err := splitECMAuthData(r.b[r.off:], base+r.off)
			if err != nil {
				return nil, err
			}
			if _, err := decodeECMAuthData(r.b[r.off:r.off+n], base+r.off); err != nil {
				return nil, err
			}
			m.SecurityAD, _ = r.bytes(n, "LISP-SEC AD")
		}
	}
	if err := r.need(1, "inner IP header"); err != nil {
		return nil, err
	}
	ip := r.b[r.off:]
	ipStart := r.off
	var src, dst netip.Addr
	var udp []byte
	switch ip[0] >> 4 {
	case 4:
		if err := r.need(20, "inner IPv4 header"); err != nil {
			return nil, err
		}
		hl := int(ip[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if hl < 20 || len(ip) < hl {
			return nil, r.fail("inner IPv4 IHL", ErrBadLength)
		}
		if total < hl+8 || total > len(ip) {
			return nil, r.fail("inner IPv4 total length", ErrBadLength)
		}
		if total < len(ip) {
			return nil, &DecodeError{Msg: "ECM", Field: "after inner IPv4 packet", Offset: base + ipStart + total, Err: ErrTrailingBytes}
		}
		m.IP.TOS, m.IP.ID, m.IP.FlagsFrag, m.IP.TTL = ip[1], binary.BigEndian.Uint16(ip[4:]), binary.BigEndian.Uint16(ip[6:]), ip[8]
		if m.IP.FlagsFrag&0x3fff != 0 {
			return nil, r.fail("inner IPv4 fragment", ErrBadValue)
		}
		if ip[9] != ipProtoUDP {
			return nil, r.fail("inner IPv4 protocol", ErrBadValue)
		}
		m.IP.Checksum = binary.BigEndian.Uint16(ip[10:])
		if ChecksumFold(ChecksumAdd(0, ip[:hl])) != 0 {
			m.IP.ChecksumsBad = true
		}
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		if hl > 20 {
			m.IP.Options = append([]byte(nil), ip[20:hl]...)
		}
		udp = ip[hl:total]
		r.off += hl
	case 6:
		if err := r.need(40, "inner IPv6 header"); err != nil {
			return nil, err
		}
		v := binary.BigEndian.Uint32(ip)
		m.IP.TOS, m.IP.FlowLabel = uint8(v>>20), v&0xfffff
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if ip[6] != ipProtoUDP {
			return nil, r.fail("inner IPv6 next header", ErrBadValue)
		}
		m.IP.TTL = ip[7]
		if plen < 8 || 40+plen > len(ip) {
			return nil, r.fail("inner IPv6 payload length", ErrBadLength)
		}
		if 40+plen < len(ip) {
			return nil, &DecodeError{Msg: "ECM", Field: "after inner IPv6 packet", Offset: base + ipStart + 40 + plen, Err: ErrTrailingBytes}
		}
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		udp = ip[40 : 40+plen]
		r.off += 40
	default:
		return nil, r.fail("inner IP version", ErrBadValue)
	}
	m.IP.Src, m.IP.Dst, m.IP.KeepChecksums = src, dst, true
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen != len(udp) {
		return nil, r.fail("inner UDP length", ErrBadLength)
	}
	m.SrcPort, m.DstPort = binary.BigEndian.Uint16(udp), binary.BigEndian.Uint16(udp[2:])
	m.IP.UDPChecksum = binary.BigEndian.Uint16(udp[6:])
	if m.IP.UDPChecksum != 0 && !UDPChecksumOK(src, dst, udp) {
		m.IP.ChecksumsBad = true
	}
	r.off += 8
	if depth >= maxECMDepth {
		return nil, r.fail("nested ECM", ErrTooDeep)
	}
	inner, err := decodeMessage(udp[8:], base+r.off, depth+1)
	if err != nil {
		return nil, err
	}
	m.Message = inner
	return m, nil
}

func (m *ECM) String() string {
	fl := ""
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Security, "S"}, {m.DDT, "D"}, {m.ForETR, "E"}, {m.ForMS, "M"}} {
		if f.on {
			fl += f.name
		}
	}
	if fl != "" {
		fl = " [" + fl + "]"
	}
	inner := "<none>"
	if m.Message != nil {
		inner = m.Message.String()
	}
	sec := ""
	if m.Security {
		if ad, err := m.AuthData(); err == nil {
			sec = " " + ad.String()
		} else if ad, err := m.RTRAuthData(); err == nil {
			sec = " " + ad.String()
		}
	}
	return fmt.Sprintf("ECM%s%s %s:%d > %s:%d | %s", fl, sec, m.IP.Src, m.SrcPort, m.IP.Dst, m.DstPort, inner)
}
