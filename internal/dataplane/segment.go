package dataplane

import "encoding/binary"

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
	if per <= 0 {
		return 0, false, false
	}
	w.e.k.segmented.Inc()
	sp := newSuperPacket(pkt, ipHL, ipHL+tcpHL, protoTCP, pkt[0]>>4 == 6, per)
	for i := range sp.segments() {
		b := w.getScratch()
		n := sp.segment(b[Headroom:], i)
		if n == 0 {
			break // not expected: per fits a scratch buffer
		}
		r, relayed, _ = w.relayPacket(rt, inst, b, n, o, now)
	}
	return r, relayed, true
}
