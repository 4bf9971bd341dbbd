package dataplane

import (
	"encoding/binary"
	"github.com/lispd/lispd/wire"
	"net/netip"
)

// maxFragments bounds how many pieces an IPv4 packet without DF is split
// into; a packet needing more gets an ICMP error like a DF packet.
const maxFragments = 8

// tooBig handles a packet that does not fit the underlay after
// encapsulation (RFC 9300 §7.1, the stateless solution): an IPv4 packet
// without DF is split into equal fragments, each encapsulated on its own
// (the destination host reassembles); an IPv4 packet with DF or an IPv6
// packet is dropped and the source gets an ICMP fragmentation-needed or
// packet-too-big carrying the largest inner size that fits.
func (w *worker) tooBig(inst *instance, buf []byte, c *choice, h uint64, now int64, petr bool) {
	pkt := buf[Headroom:]
	if pkt[0]>>4 == 4 && binary.BigEndian.Uint16(pkt[ipv4Frag:])&ipv4DF == 0 && w.fragment(inst, buf, c, h, petr) {
		return
	}
	w.e.k.drop(dropTooBig)
	w.icmpTooBig(inst, pkt, c.maxInner, now)
}

// fragment splits the IPv4 packet in buf into the fewest equal fragments
// (payload a multiple of 8) that fit c, and encapsulates them in order.
// The first stays in buf, the others go to scratch buffers; options
// without the copy flag are replaced by NOPs in the later fragments, as
// RFC 791 asks.
func (w *worker) fragment(inst *instance, buf []byte, c *choice, h uint64, petr bool) bool {
	pkt := buf[Headroom:]
	ihl := int(pkt[0]&0x0f) * 4
	data := len(pkt) - ihl
	maxData := (c.maxInner - ihl) &^ 7
	if maxData < 8 {
		return false
	}
	k := (data + maxData - 1) / maxData
	if k > maxFragments {
		return false
	}
	if len(w.scratch)-w.scratchUsed < k-1 {
		w.flush()
	}
	per := roundUp((data+k-1)/k, 8)
	field := binary.BigEndian.Uint16(pkt[ipv4Frag:])
	off0, mf0 := field&ipv4OffMask, field&ipv4MF
	var rest [maxFragments - 1][]byte
	for j := 1; j < k; j++ {
		start := ihl + j*per
		end := min(start+per, len(pkt))
		sb := w.scratch[w.scratchUsed]
		w.scratchUsed++
		f := sb[Headroom:]
		copy(f, pkt[:ihl])
		nopOptions(f[ipv4HeaderLen:ihl])
		n := ihl + copy(f[ihl:], pkt[start:end])
		mf := mf0
		if j < k-1 {
			mf = ipv4MF
		}
		setFragment(f[:n], ihl, off0+uint16(j*per/8), mf)
		rest[j-1] = sb[:Headroom+n]
	}
	setFragment(pkt[:ihl+per], ihl, off0, ipv4MF)
	w.e.k.fragmented.Inc()
	w.encapFit(inst, buf[:Headroom+ihl+per], c, h, petr)
	for _, b := range rest[:k-1] {
		w.encapFit(inst, b, c, h, petr)
	}
	return true
}

// setFragment sets total length, MF and offset (DF clear) and the header
// checksum of an IPv4 fragment.
func setFragment(f []byte, ihl int, off, mf uint16) {
	binary.BigEndian.PutUint16(f[ipv4TotalLen:], uint16(len(f)))
	binary.BigEndian.PutUint16(f[ipv4Frag:], mf|off&ipv4OffMask)
	f[ipv4Csum], f[ipv4Csum+1] = 0, 0
	binary.BigEndian.PutUint16(f[ipv4Csum:], ipv4HeaderChecksum(f[:ihl]))
}

// nopOptions overwrites the IPv4 options that must not be copied into
// non-first fragments (copy flag clear) with NOPs.
func nopOptions(o []byte) {
	for i := 0; i < len(o); {
		switch t := o[i]; {
		case t == 0: // end of options
			return
		case t == 1: // NOP
			i++
		default:
			l := 2
			if i+1 < len(o) {
				l = int(o[i+1])
			}
			if l < 2 || i+l > len(o) {
				l = len(o) - i
				t = 0 // malformed: blank the rest
			}
			if t&0x80 == 0 {
				for j := i; j < i+l; j++ {
					o[j] = 1
				}
			}
			i += l
		}
	}
}

// icmpTooBig writes an ICMP fragmentation-needed (IPv4, type 3 code 4) or
// ICMPv6 packet-too-big (type 2) toward the source of pkt through the TUN,
// rate-limited, never about an ICMP error or a non-first fragment.
func (w *worker) icmpTooBig(inst *instance, pkt []byte, mtu int, now int64) {
	e := w.e
	src := srcAddr(pkt)
	if nonUnicastDst(src) {
		return
	}
	v4 := pkt[0]>>4 == 4
	if v4 {
		ihl := int(pkt[0]&0x0f) * 4
		if binary.BigEndian.Uint16(pkt[ipv4Frag:])&ipv4OffMask != 0 {
			return
		}
		if pkt[ipv4Proto] == protoICMP && len(pkt) > ihl && icmp4IsError(pkt[ihl]) {
			return
		}
	} else if pkt[ipv6NextHeader] == protoICMPv6 && len(pkt) > ipv6HeaderLen && pkt[ipv6HeaderLen] < 128 {
		return
	}
	if !e.icmpAllow(now) {
		return
	}
	sb := w.getScratch()
	b := sb[Headroom:]
	var n int
	if v4 {
		from := e.cfg.ICMPSource4
		if !from.IsValid() {
			from = dstAddr(pkt)
		}
		n = buildICMP4TooBig(b, pkt, from, src, mtu)
	} else {
		from := e.cfg.ICMPSource6
		if !from.IsValid() {
			from = dstAddr(pkt)
		}
		n = buildICMP6TooBig(b, pkt, from, src, mtu)
	}
	e.k.icmpSent.Inc()
	w.queueTUN(inst, sb[:Headroom+n])
}

func icmp4IsError(t uint8) bool { return t == 3 || t == 4 || t == 5 || t == 11 || t == 12 }

// buildICMP4TooBig writes into b an IPv4 ICMP destination-unreachable,
// fragmentation-needed message quoting as much of pkt as keeps it within
// 576 bytes (RFC 1812 §4.3.2.3), and returns its length.
func buildICMP4TooBig(b, pkt []byte, from, to netip.Addr, mtu int) int {
	q := min(len(pkt), 576-ipv4HeaderLen-8)
	n := ipv4HeaderLen + 8 + q
	clear(b[:ipv4HeaderLen+8])
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[ipv4TotalLen:], uint16(n))
	b[ipv4TTL] = 64
	b[ipv4Proto] = protoICMP
	f, t := from.As4(), to.As4()
	copy(b[ipv4Src:], f[:])
	copy(b[ipv4Dst:], t[:])
	binary.BigEndian.PutUint16(b[ipv4Csum:], ipv4HeaderChecksum(b[:ipv4HeaderLen]))
	m := b[ipv4HeaderLen:n]
	m[0], m[1] = 3, 4
	binary.BigEndian.PutUint16(m[6:], uint16(min(mtu, 0xffff)))
	copy(m[8:], pkt[:q])
	binary.BigEndian.PutUint16(m[2:], wire.ChecksumFold(wire.ChecksumAdd(0, m)))
	return n
}

// buildICMP6TooBig writes into b an ICMPv6 packet-too-big quoting as much
// of pkt as keeps it within the IPv6 minimum MTU (RFC 4443 §3.2).
func buildICMP6TooBig(b, pkt []byte, from, to netip.Addr, mtu int) int {
	q := min(len(pkt), 1280-ipv6HeaderLen-8)
	plen := 8 + q
	n := ipv6HeaderLen + plen
	clear(b[:ipv6HeaderLen+8])
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[ipv6PayloadLen:], uint16(plen))
	b[ipv6NextHeader] = protoICMPv6
	b[ipv6HopLimit] = 64
	f, t := from.As16(), to.As16()
	copy(b[ipv6Src:], f[:])
	copy(b[ipv6Dst:], t[:])
	m := b[ipv6HeaderLen:n]
	m[0] = 2
	binary.BigEndian.PutUint32(m[4:], uint32(mtu))
	copy(m[8:], pkt[:q])
	sum := wire.ChecksumAdd(0, b[ipv6Src:ipv6Dst+16])
	sum += uint32(plen) + protoICMPv6
	binary.BigEndian.PutUint16(m[2:], wire.ChecksumFold(wire.ChecksumAdd(sum, m)))
	return n
}
