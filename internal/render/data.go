package render

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/lispd/lispd/wire"
)

// TypeData is the "type" of a LISP data packet (UDP 4341).
const TypeData = "Data"

// DataPacket decodes a data packet, starting at the LISP header: the
// header, then a summary of the packet it carries. Only a bad LISP header
// is a decoding failure; what follows it is the user's traffic, which is
// summarised as far as it goes (captures often cut data packets short).
func DataPacket(b []byte) Packet {
	p := Packet{Length: len(b), Raw: b, Message: &Message{Type: TypeData}}
	h, err := wire.DecodeDataHeader(b)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	p.DataHeader = NewDataHeader(h)
	ip := summarizeInner(h, b[wire.DataHeaderLen:])
	p.InnerPacket = &ip
	p.Summary = h.String() + " | " + ip.String()
	return p
}

// NewDataHeader converts a data header to its view.
func NewDataHeader(h wire.DataHeader) *DataHeader {
	v := &DataHeader{Flags: dataFlagNames(h), KeyID: h.KeyID()}
	// The first word holds one of nonce, map-versions or next protocol; the
	// flags say which (DecodeDataHeader has ruled out the clashes).
	switch {
	case h.P():
		np := h.NextProtocol()
		v.NextProtocol = &np
	case h.N():
		v.Nonce = fmt.Sprintf("0x%06x", h.Nonce())
	case h.V():
		src, dst := h.MapVersions()
		v.SourceMapVersion, v.DestMapVersion = &src, &dst
	}
	if h.I() {
		iid := h.InstanceID()
		v.InstanceID = &iid
	}
	if h.L() {
		lsb := h.LSBs()
		v.LSB = &lsb
	}
	return v
}

// summarizeInner describes the payload after the data header. With LISP-GPE
// the next-protocol field says what it is; without, it is IP.
func summarizeInner(h wire.DataHeader, b []byte) IPSummary {
	if h.P() {
		switch h.NextProtocol() {
		case wire.GPEIPv4, wire.GPEIPv6:
		default:
			return IPSummary{Length: len(b), Note: "GPE next protocol " + gpeName(h.NextProtocol()) + ", not IP"}
		}
	}
	return SummarizeIP(b)
}

func gpeName(p uint8) string {
	switch p {
	case wire.GPEEthernet:
		return "ethernet"
	case wire.GPENSH:
		return "nsh"
	}
	return fmt.Sprintf("%#02x", p)
}

// SummarizeIP reads the version, addresses, protocol and length of the IP
// packet at the start of b. It never fails: what cannot be read is
// explained in Note.
func SummarizeIP(b []byte) IPSummary {
	if len(b) == 0 {
		return IPSummary{Note: "no inner packet"}
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return IPSummary{Version: 4, Length: len(b), Note: "IPv4 header cut short"}
		}
		return IPSummary{
			Version:  4,
			Src:      netip.AddrFrom4([4]byte(b[12:16])).String(),
			Dst:      netip.AddrFrom4([4]byte(b[16:20])).String(),
			Protocol: protocolName(b[9]),
			Length:   int(binary.BigEndian.Uint16(b[2:4])),
		}
	case 6:
		if len(b) < 40 {
			return IPSummary{Version: 6, Length: len(b), Note: "IPv6 header cut short"}
		}
		return IPSummary{
			Version:  6,
			Src:      netip.AddrFrom16([16]byte(b[8:24])).String(),
			Dst:      netip.AddrFrom16([16]byte(b[24:40])).String(),
			Protocol: protocolName(b[6]), // the first next header; extension headers are not followed
			Length:   40 + int(binary.BigEndian.Uint16(b[4:6])),
		}
	}
	return IPSummary{Length: len(b), Note: fmt.Sprintf("not IP (version %d)", b[0]>>4)}
}

// String is the one-line form used after the data header in the summary.
func (s IPSummary) String() string {
	if s.Src == "" {
		return fmt.Sprintf("%s, %d bytes", s.Note, s.Length)
	}
	return fmt.Sprintf("IPv%d %s > %s %s length %d", s.Version, s.Src, s.Dst, s.Protocol, s.Length)
}

var protocolNames = map[uint8]string{
	0: "hop-by-hop", 1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 41: "ipv6",
	43: "ipv6-route", 44: "ipv6-frag", 47: "gre", 50: "esp", 51: "ah", 58: "icmpv6",
	59: "ipv6-nonxt", 60: "ipv6-opts", 89: "ospf", 103: "pim", 112: "vrrp", 132: "sctp",
}

// protocolName gives the IANA keyword of common protocols, else the number.
func protocolName(p uint8) string {
	if n, ok := protocolNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}
