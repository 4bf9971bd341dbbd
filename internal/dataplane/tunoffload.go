package dataplane

import (
	"encoding/binary"

	"github.com/lispd/lispd/wire"
)

// The TUN's offloads, done here rather than in wireguard-go so that the
// device's read and write can be raw system calls (tunio_linux.go). With
// IFF_VNET_HDR every packet crossing the device is prefixed by a
// virtio-net header (struct virtio_net_hdr, in the host's byte order); with
// TSO/USO on, the kernel hands over TCP and UDP super-packets (one header,
// up to 64 KB of payload, cut at gso_size) whose transport checksum is left
// partial, and accepts the same from us, which lets a run of decapsulated
// segments reach the receiving stack as one skb (GRO).

const (
	virtioNetHdrLen = 10

	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM

	vnetGSONone  = 0 // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4 = 1
	vnetGSOTCPv6 = 4
	vnetGSOUDPL4 = 5
	vnetGSOECN   = 0x80

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpCWR = 0x80

	// TCP header fields: sequence number, data offset, flags, checksum.
	tcpSeq     = 4
	tcpOff     = 12
	tcpFlag    = 13
	tcpCsumOff = 16
	udpCsumOff = 6

	// groMaxUDPSegs bounds a coalesced UDP run (the kernel's USO limit
	// is 64 segments on older kernels).
	groMaxUDPSegs = 64
)

// vnetHdr is struct virtio_net_hdr.
type vnetHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

func (h *vnetHdr) decode(b []byte) {
	h.flags, h.gsoType = b[0], b[1]
	h.hdrLen = binary.NativeEndian.Uint16(b[2:])
	h.gsoSize = binary.NativeEndian.Uint16(b[4:])
	h.csumStart = binary.NativeEndian.Uint16(b[6:])
	h.csumOffset = binary.NativeEndian.Uint16(b[8:])
}

func (h *vnetHdr) encode(b []byte) {
	b[0], b[1] = h.flags, h.gsoType
	binary.NativeEndian.PutUint16(b[2:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], h.csumOffset)
}

// vnetError is a read the engine cannot use: the kernel never sends one,
// so it is reported rather than counted.
type vnetError string

func (e vnetError) Error() string { return "dataplane: TUN read: " + string(e) }

const (
	errVnetShort    vnetError = "shorter than its headers"
	errVnetGSOType  vnetError = "unsupported GSO type"
	errVnetHeader   vnetError = "virtio-net header does not match the packet"
	errVnetTooLarge vnetError = "packet larger than the buffer"
)

// addrSum is the running checksum of the pseudo-header's addresses of the
// IPv4 or IPv6 packet pkt.
func addrSum(pkt []byte, v6 bool) uint32 {
	if v6 {
		return wire.ChecksumAdd(0, pkt[ipv6Src:ipv6Dst+16])
	}
	return wire.ChecksumAdd(0, pkt[ipv4Src:ipv4Dst+4])
}

// l4Checksum is the checksum of the transport segment l4 (checksum field
// zero) with the pseudo-header of addresses as, protocol proto.
func l4Checksum(as uint32, proto uint8, l4 []byte) uint16 {
	c := wire.ChecksumFold(wire.ChecksumAdd(as+uint32(proto)+uint32(len(l4)), l4))
	if c == 0 && proto == protoUDP {
		c = 0xffff
	}
	return c
}

// splitGSO turns one read from the TUN, in (virtio-net header and packet),
// into packets at bufs[i][offset:] and their sizes, returning how many. A
// super-packet is cut at gso_size into segments with their own IP and
// transport headers (lengths, IPv4 ID, TCP sequence number and flags,
// checksums), as the kernel's software GSO would; a packet with a partial
// checksum gets it finished. Segments beyond len(bufs) are dropped and
// counted in dropped.
func splitGSO(in []byte, bufs [][]byte, sizes []int, offset int) (n, dropped int, err error) {
	if len(in) < virtioNetHdrLen+1 {
		return 0, 0, errVnetShort
	}
	var h vnetHdr
	h.decode(in)
	pkt := in[virtioNetHdrLen:]
	if h.gsoType == vnetGSONone {
		out := bufs[0][offset:]
		if len(pkt) > len(out) {
			return 0, 0, errVnetTooLarge
		}
		copy(out, pkt)
		if h.flags&vnetFlagNeedsCsum != 0 {
			cs, co := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
			if co+2 > len(pkt) || cs > co {
				return 0, 0, errVnetHeader
			}
			// The field holds the pseudo-header sum; the checksum covers
			// it and everything from csum_start on.
			c := wire.ChecksumFold(wire.ChecksumAdd(0, out[cs:len(pkt)]))
			if c == 0 && h.csumOffset == udpCsumOff {
				c = 0xffff // UDP's 0 is "no checksum"
			}
			binary.BigEndian.PutUint16(out[co:], c)
		}
		sizes[0] = len(pkt)
		return 1, 0, nil
	}
	v6 := pkt[0]>>4 == 6
	var proto uint8
	switch h.gsoType &^ vnetGSOECN {
	case vnetGSOTCPv4:
		proto = protoTCP
		if v6 {
			return 0, 0, errVnetHeader
		}
	case vnetGSOTCPv6:
		proto = protoTCP
		if !v6 {
			return 0, 0, errVnetHeader
		}
	case vnetGSOUDPL4:
		proto = protoUDP
	default:
		return 0, 0, errVnetGSOType
	}
	if !v6 && pkt[0]>>4 != 4 {
		return 0, 0, errVnetHeader
	}
	// The transport header starts at csum_start (the IP header with any
	// IPv6 extension headers); its length is read from the packet, not
	// from hdr_len, which the kernel may set to a whole first segment.
	ipLen := int(h.csumStart)
	if v6 && ipLen < ipv6HeaderLen || !v6 && ipLen != int(pkt[0]&0x0f)*4 || ipLen < ipv4HeaderLen {
		return 0, 0, errVnetHeader
	}
	var hdrLen, csumOff int
	if proto == protoTCP {
		if len(pkt) < ipLen+20 {
			return 0, 0, errVnetShort
		}
		thLen := int(pkt[ipLen+tcpOff]>>4) * 4
		if thLen < 20 {
			return 0, 0, errVnetHeader
		}
		hdrLen, csumOff = ipLen+thLen, tcpCsumOff
	} else {
		hdrLen, csumOff = ipLen+8, udpCsumOff
	}
	gs := int(h.gsoSize)
	if len(pkt) <= hdrLen || gs == 0 || int(h.csumOffset) != csumOff {
		return 0, 0, errVnetShort
	}
	sp := newSuperPacket(pkt, ipLen, hdrLen, proto, v6, gs)
	for i, total := 0, sp.segments(); i < total; i++ {
		if n == len(bufs) {
			dropped = total - i
			break
		}
		tot := sp.segment(bufs[n][offset:], i)
		if tot == 0 {
			return n, 0, errVnetTooLarge
		}
		sizes[n] = tot
		n++
	}
	return n, dropped, nil
}

// superPacket is a TCP or UDP packet whose payload is cut into segments
// of gs bytes, each with its own headers, as the kernel's software GSO
// cuts one: the TUN's super-packets on read, and the RTR's too-large TCP
// packets (segment.go).
type superPacket struct {
	pkt           []byte
	ipLen, hdrLen int // IP header, IP and transport headers
	csumOff, gs   int
	proto         uint8
	v6            bool
	as            uint32 // the pseudo-header's address sum
	id            uint16 // IPv4 ID of the first segment
	seq           uint32 // TCP sequence number of the first segment
	flags         uint8  // TCP flags of the whole
}

// newSuperPacket describes pkt (headers checked by the caller) cut into
// segments of gs payload bytes.
func newSuperPacket(pkt []byte, ipLen, hdrLen int, proto uint8, v6 bool, gs int) superPacket {
	sp := superPacket{pkt: pkt, ipLen: ipLen, hdrLen: hdrLen, csumOff: udpCsumOff, gs: gs,
		proto: proto, v6: v6, as: addrSum(pkt, v6), id: binary.BigEndian.Uint16(pkt[4:])}
	if proto == protoTCP {
		sp.csumOff = tcpCsumOff
		sp.seq, sp.flags = binary.BigEndian.Uint32(pkt[ipLen+tcpSeq:]), pkt[ipLen+tcpFlag]
	}
	return sp
}

// segments is how many segments the payload makes.
func (sp *superPacket) segments() int { return (len(sp.pkt) - sp.hdrLen + sp.gs - 1) / sp.gs }

// segment writes segment i into out: the headers with their lengths, the
// IPv4 ID (one more per segment, as Linux counts them), the TCP sequence
// number, FIN and PSH only on the last segment and CWR only on the first,
// and both checksums. It returns the segment's length, 0 when out is too
// short for it.
func (sp *superPacket) segment(out []byte, i int) int {
	payload := sp.pkt[sp.hdrLen:]
	off := i * sp.gs
	seg := payload[off:min(off+sp.gs, len(payload))]
	tot := sp.hdrLen + len(seg)
	if len(out) < tot {
		return 0
	}
	out = out[:tot]
	copy(out, sp.pkt[:sp.hdrLen])
	copy(out[sp.hdrLen:], seg)
	if sp.v6 {
		binary.BigEndian.PutUint16(out[ipv6PayloadLen:], uint16(tot-ipv6HeaderLen))
	} else {
		binary.BigEndian.PutUint16(out[ipv4TotalLen:], uint16(tot))
		binary.BigEndian.PutUint16(out[4:], sp.id+uint16(i))
		out[ipv4Csum], out[ipv4Csum+1] = 0, 0
		binary.BigEndian.PutUint16(out[ipv4Csum:], ipv4HeaderChecksum(out[:sp.ipLen]))
	}
	l4 := out[sp.ipLen:]
	if sp.proto == protoTCP {
		binary.BigEndian.PutUint32(l4[tcpSeq:], sp.seq+uint32(off))
		f := sp.flags
		if off+sp.gs < len(payload) {
			f &^= tcpFIN | tcpPSH // only the last segment ends a push or the stream
		}
		if i > 0 {
			f &^= tcpCWR // only the first one reports a window reduction
		}
		l4[tcpFlag] = f
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	l4[sp.csumOff], l4[sp.csumOff+1] = 0, 0
	binary.BigEndian.PutUint16(l4[sp.csumOff:], l4Checksum(sp.as, sp.proto, l4))
	return tot
}

// groFlow is an open coalesced run while a write batch is built: the head
// packet, which grows by the payload of each segment joined to it.
type groFlow struct {
	head    int // index in bufs
	size    int // the head's IP length so far
	segs    int
	gsoSize int // payload of each segment but a shorter last
	ipLen   int
	hdrLen  int
	proto   uint8
	v6      bool
	nextSeq uint32
	nextID  uint16
	closed  bool // no segment may join any more
}

// groBatch is the scratch state of coalescing one write batch; reused, so
// that writing allocates nothing once it has grown to the batch size.
type groBatch struct {
	flows []groFlow
	// Per bufs index: the run it heads (-1: written as it is, -2: joined
	// to an earlier head) and its length to write.
	role []int
	size []int
	udp  bool // the device takes UDP super-packets (USO)
}

// groParse returns the lengths of pkt's IP and transport headers when it is
// a TCP or UDP packet (no IPv4 options or fragments, no IPv6 extension
// headers) whose lengths agree with the buffer and whose IPv4 header
// checksum verifies; ok false otherwise.
func groParse(pkt []byte) (v6 bool, proto uint8, ipLen, hdrLen int, ok bool) {
	if len(pkt) < ipv4HeaderLen {
		return
	}
	switch pkt[0] >> 4 {
	case 4:
		// The header checksum must verify: a super-packet's is recomputed.
		if pkt[0]&0x0f != 5 || int(binary.BigEndian.Uint16(pkt[ipv4TotalLen:])) != len(pkt) ||
			binary.BigEndian.Uint16(pkt[ipv4Frag:])&(ipv4MF|ipv4OffMask) != 0 ||
			ipv4HeaderChecksum(pkt[:ipv4HeaderLen]) != 0 {
			return
		}
		proto, ipLen = pkt[ipv4Proto], ipv4HeaderLen
	case 6:
		if len(pkt) < ipv6HeaderLen || ipv6HeaderLen+int(binary.BigEndian.Uint16(pkt[ipv6PayloadLen:])) != len(pkt) {
			return
		}
		v6, proto, ipLen = true, pkt[ipv6NextHeader], ipv6HeaderLen
	default:
		return
	}
	switch proto {
	case protoTCP:
		if len(pkt) < ipLen+20 {
			return
		}
		hdrLen = ipLen + int(pkt[ipLen+tcpOff]>>4)*4
		if hdrLen < ipLen+20 || hdrLen > len(pkt) {
			return
		}
	case protoUDP:
		hdrLen = ipLen + 8
		if len(pkt) < hdrLen || int(binary.BigEndian.Uint16(pkt[ipLen+4:])) != len(pkt)-ipLen {
			return
		}
	default:
		return
	}
	return v6, proto, ipLen, hdrLen, true
}

// sameFlowHeaders reports whether b may follow the head a in one
// super-packet as far as the headers the kernel copies from the head go:
// IP addresses, ports, TOS/traffic class, TTL, DF (flow label in IPv6)
// and, for TCP, acknowledgement, window, header length and options.
func sameFlowHeaders(a, b []byte, f *groFlow) bool {
	if f.v6 {
		if binary.BigEndian.Uint32(a) != binary.BigEndian.Uint32(b) || a[ipv6HopLimit] != b[ipv6HopLimit] ||
			string(a[ipv6Src:ipv6Dst+16]) != string(b[ipv6Src:ipv6Dst+16]) {
			return false
		}
	} else if a[ipv4TOS] != b[ipv4TOS] || a[ipv4Frag] != b[ipv4Frag] || a[ipv4TTL] != b[ipv4TTL] ||
		string(a[ipv4Src:ipv4Dst+4]) != string(b[ipv4Src:ipv4Dst+4]) {
		return false
	}
	if string(a[f.ipLen:f.ipLen+4]) != string(b[f.ipLen:f.ipLen+4]) {
		return false // ports
	}
	if f.proto == protoUDP {
		return true
	}
	// Acknowledgement, data offset, window (flags compared by the caller),
	// urgent pointer and options.
	return string(a[f.ipLen+8:f.ipLen+13]) == string(b[f.ipLen+8:f.ipLen+13]) &&
		string(a[f.ipLen+14:f.ipLen+16]) == string(b[f.ipLen+14:f.ipLen+16]) &&
		string(a[f.ipLen+18:f.hdrLen]) == string(b[f.ipLen+18:f.hdrLen])
}

// sameFlowKey reports whether a and b have the addresses and ports of
// flow f (a is f's head).
func sameFlowKey(a, b []byte, v6 bool, proto uint8, ipLen int, f *groFlow) bool {
	if f.v6 != v6 || f.proto != proto || f.ipLen != ipLen {
		return false
	}
	if v6 {
		return string(a[ipv6Src:ipv6Dst+16]) == string(b[ipv6Src:ipv6Dst+16]) && string(a[ipLen:ipLen+4]) == string(b[ipLen:ipLen+4])
	}
	return string(a[ipv4Src:ipv4Dst+4]) == string(b[ipv4Src:ipv4Dst+4]) && string(a[ipLen:ipLen+4]) == string(b[ipLen:ipLen+4])
}

// coalesce merges runs of TCP (and, with g.udp, UDP) segments of one flow
// in bufs (packets at offset) into super-packets in the buffer of the run's
// first packet, as far as its capacity goes, and writes the virtio-net
// header of every packet to be written at offset-virtioNetHdrLen. It
// returns, in g.role and g.size, which buffers to write and how long each
// is. A segment joins a run only when the kernel, segmenting the result,
// would give back the same packets: consecutive sequence numbers (TCP) and
// IPv4 IDs, equal headers, flags ACK with PSH only on the last, equal
// payload sizes but for a shorter last, and a transport checksum that
// verifies (a super-packet's is recomputed downstream, which would hide a
// corrupted segment). Packet order within a flow is kept: a packet of the
// flow that cannot join closes the run.
func (g *groBatch) coalesce(bufs [][]byte, offset int) {
	g.flows = g.flows[:0]
	g.role = g.role[:0]
	g.size = g.size[:0]
	for i := range bufs {
		pkt := bufs[i][offset:]
		g.role = append(g.role, -1)
		g.size = append(g.size, len(pkt))
		v6, proto, ipLen, hdrLen, ok := groParse(pkt)
		if !ok || proto == protoUDP && !g.udp {
			continue
		}
		// The newest run of this flow, if any.
		fi := -1
		for j := len(g.flows) - 1; j >= 0; j-- {
			if sameFlowKey(bufs[g.flows[j].head][offset:], pkt, v6, proto, ipLen, &g.flows[j]) {
				fi = j
				break
			}
		}
		joinable := len(pkt) > hdrLen && groChecksumOK(pkt, v6, proto, ipLen)
		var flags uint8
		if proto == protoTCP {
			flags = pkt[ipLen+13]
			joinable = joinable && flags&^tcpPSH == tcpACK
		}
		if fi >= 0 && joinable && g.join(bufs, offset, i, &g.flows[fi], flags) {
			continue
		}
		if fi >= 0 {
			g.flows[fi].closed = true
		}
		if !joinable || flags&tcpPSH != 0 {
			continue
		}
		g.role[i] = len(g.flows)
		f := groFlow{head: i, size: len(pkt), segs: 1, gsoSize: len(pkt) - hdrLen, ipLen: ipLen, hdrLen: hdrLen, proto: proto, v6: v6}
		if proto == protoTCP {
			f.nextSeq = binary.BigEndian.Uint32(pkt[ipLen+4:]) + uint32(f.gsoSize)
		}
		if !v6 {
			f.nextID = binary.BigEndian.Uint16(pkt[4:]) + 1
		}
		g.flows = append(g.flows, f)
	}
	var h vnetHdr
	for i := range bufs {
		switch r := g.role[i]; {
		case r == -2:
			continue
		case r >= 0 && g.flows[r].segs > 1:
			f := &g.flows[r]
			g.size[i] = f.size
			finishSuper(bufs[i][offset:offset+f.size], f, &h)
		default:
			h = vnetHdr{}
		}
		h.encode(bufs[i][offset-virtioNetHdrLen:])
	}
}

// segs is how many of the batch's packets buffer i carries once
// coalesced: 0 when it joined an earlier one.
func (g *groBatch) segs(i int) int {
	switch r := g.role[i]; {
	case r == -2:
		return 0
	case r >= 0:
		return g.flows[r].segs
	}
	return 1
}

// join appends packet i to the run f when it may follow it (see
// coalesce); false leaves f as it was.
func (g *groBatch) join(bufs [][]byte, offset, i int, f *groFlow, flags uint8) bool {
	head, pkt := bufs[f.head][offset:cap(bufs[f.head])], bufs[i][offset:]
	payload := pkt[f.hdrLen:]
	if f.closed || len(payload) > f.gsoSize || f.size+len(payload) > min(len(head), 0xffff) ||
		!sameFlowHeaders(head, pkt, f) {
		return false
	}
	// IPv4 IDs must run on, unless DF makes them meaningless (RFC 6864):
	// the kernel numbers the segments it cuts from the head's ID.
	if !f.v6 && head[ipv4Frag]&(ipv4DF>>8) == 0 && binary.BigEndian.Uint16(pkt[4:]) != f.nextID {
		return false
	}
	if f.proto == protoTCP {
		if binary.BigEndian.Uint32(pkt[f.ipLen+4:]) != f.nextSeq || head[f.ipLen+13] != tcpACK {
			return false
		}
		f.nextSeq += uint32(len(payload))
		head[f.ipLen+13] = flags
		if flags&tcpPSH != 0 {
			f.closed = true
		}
	} else if f.segs == groMaxUDPSegs {
		return false
	}
	copy(head[f.size:], payload)
	f.size += len(payload)
	f.segs++
	f.nextID++
	if len(payload) < f.gsoSize {
		f.closed = true
	}
	g.role[i] = -2
	return true
}

// finishSuper fixes the IP and transport headers of the super-packet p of
// run f and fills h: lengths, IPv4 header checksum, and the transport
// checksum left partial (the pseudo-header sum) for the kernel to finish.
func finishSuper(p []byte, f *groFlow, h *vnetHdr) {
	if f.v6 {
		binary.BigEndian.PutUint16(p[ipv6PayloadLen:], uint16(len(p)-ipv6HeaderLen))
	} else {
		binary.BigEndian.PutUint16(p[ipv4TotalLen:], uint16(len(p)))
		p[ipv4Csum], p[ipv4Csum+1] = 0, 0
		binary.BigEndian.PutUint16(p[ipv4Csum:], ipv4HeaderChecksum(p[:f.ipLen]))
	}
	l4 := p[f.ipLen:]
	*h = vnetHdr{flags: vnetFlagNeedsCsum, hdrLen: uint16(f.hdrLen), gsoSize: uint16(f.gsoSize), csumStart: uint16(f.ipLen)}
	off := tcpCsumOff
	switch {
	case f.proto == protoUDP:
		off, h.gsoType = udpCsumOff, vnetGSOUDPL4
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	case f.v6:
		h.gsoType = vnetGSOTCPv6
	default:
		h.gsoType = vnetGSOTCPv4
	}
	h.csumOffset = uint16(off)
	sum := addrSum(p, f.v6) + uint32(f.proto) + uint32(len(l4))
	binary.BigEndian.PutUint16(l4[off:], ^wire.ChecksumFold(sum))
}

// groChecksumOK reports whether the TCP or UDP checksum of pkt verifies;
// a UDP datagram without one (IPv4) cannot be checked and is not joined.
func groChecksumOK(pkt []byte, v6 bool, proto uint8, ipLen int) bool {
	l4 := pkt[ipLen:]
	if proto == protoUDP && l4[6] == 0 && l4[7] == 0 {
		return false
	}
	return wire.ChecksumFold(wire.ChecksumAdd(addrSum(pkt, v6)+uint32(proto)+uint32(len(l4)), l4)) == 0
}
