package dataplane

import (
	"encoding/binary"

	"github.com/lispd/lispd/wire"
)

// TCP header fields and flags segmentTCP rewrites.
const (
	tcpSeq  = 4
	tcpOff  = 12
	tcpFlag = 13
	tcpCsum = 16

	tcpFIN = 0x01
	tcpPSH = 0x08
	tcpCWR = 0x80
)

// tcpSegments tells whether pkt, an inner IP packet, is a TCP packet
// (IPv4 not fragmented, or IPv6 with TCP as next header) whose payload
// can be cut into segments, and its IP and TCP header lengths.
func tcpSegments(pkt []byte) (ipHL, tcpHL int, ok bool) {
	switch pkt[0] >> 4 {
	case 4:
		ipHL = int(pkt[0]&0x0f) * 4
		if pkt[ipv4Proto] != protoTCP || binary.BigEndian.Uint16(pkt[ipv4Frag:])&(ipv4MF|ipv4OffMask) != 0 {
			return 0, 0, false
		}
	case 6:
		ipHL = ipv6HeaderLen
		if pkt[ipv6NextHeader] != protoTCP {
			return 0, 0, false
		}
	default:
		return 0, 0, false
	}
	if len(pkt) < ipHL+20 {
		return 0, 0, false
	}
	tcpHL = int(pkt[ipHL+tcpOff]>>4) * 4
	return ipHL, tcpHL, tcpHL >= 20 && len(pkt) > ipHL+tcpHL
}

// segmentTCP writes into dst the segment of the TCP packet pkt (headers
// ipHL and tcpHL long) that carries its payload bytes [off, end): the
// headers with the lengths, the IPv4 ID (one more per segment, as Linux's
// GSO counts them) and the sequence number of that part, FIN and PSH only
// on the last segment and CWR only on the first, and both checksums
// computed. It returns the segment's length.
func segmentTCP(dst, pkt []byte, ipHL, tcpHL, off, end, index int) int {
	hl := ipHL + tcpHL
	n := copy(dst, pkt[:hl])
	n += copy(dst[n:], pkt[hl+off:hl+end])
	seg := dst[:n]
	var sum uint32
	if seg[0]>>4 == 4 {
		binary.BigEndian.PutUint16(seg[ipv4TotalLen:], uint16(n))
		binary.BigEndian.PutUint16(seg[4:], binary.BigEndian.Uint16(pkt[4:])+uint16(index))
		seg[ipv4Csum], seg[ipv4Csum+1] = 0, 0
		binary.BigEndian.PutUint16(seg[ipv4Csum:], ipv4HeaderChecksum(seg[:ipHL]))
		sum = wire.ChecksumAdd(0, seg[ipv4Src:ipv4Dst+4])
	} else {
		binary.BigEndian.PutUint16(seg[ipv6PayloadLen:], uint16(n-ipv6HeaderLen))
		sum = wire.ChecksumAdd(0, seg[ipv6Src:ipv6Dst+16])
	}
	tcp := seg[ipHL:]
	binary.BigEndian.PutUint32(tcp[tcpSeq:], binary.BigEndian.Uint32(pkt[ipHL+tcpSeq:])+uint32(off))
	if end < len(pkt)-hl {
		tcp[tcpFlag] &^= tcpFIN | tcpPSH
	}
	if off > 0 {
		tcp[tcpFlag] &^= tcpCWR
	}
	tcp[tcpCsum], tcp[tcpCsum+1] = 0, 0
	sum += uint32(protoTCP) + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[tcpCsum:], wire.ChecksumFold(wire.ChecksumAdd(sum, tcp)))
	return n
}

// relaySegments relays a TCP packet larger than any underlay carries: a
// GSO super-packet that a kernel-path xTR on the same host sent over veth
// whole, which reached our socket as one datagram (on a physical link the
// sender's NIC cuts it into segments). It is cut here instead, into
// segments that fit an IPv6 underlay too, each relayed on its own (scratch
// buffers, all checks again). ok is false when it is no TCP to cut; r and
// relayed are then the last segment's.
func (w *worker) relaySegments(rt *relayTable, inst *instance, pkt []byte, o *Outer, now int64) (r dropReason, relayed, ok bool) {
	ipHL, tcpHL, ok := tcpSegments(pkt)
	if !ok {
		return 0, false, false
	}
	per := w.e.cfg.UnderlayMTU - Overhead6 - ipHL - tcpHL
	data := len(pkt) - ipHL - tcpHL
	if per <= 0 {
		return 0, false, false
	}
	w.e.k.segmented.Inc()
	for i, off := 0, 0; off < data; i, off = i+1, off+per {
		b := w.getScratch()
		n := segmentTCP(b[Headroom:], pkt, ipHL, tcpHL, off, min(off+per, data), i)
		r, relayed, _ = w.relayPacket(rt, inst, b, n, o, now)
	}
	return r, relayed, true
}
