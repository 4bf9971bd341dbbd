package dptest

import (
	"encoding/binary"
	"net/netip"
)

// UDPv4 builds an IPv4/UDP packet from src:sport to dst:dport carrying
// payload, with a valid header checksum (TTL 64, DF, no UDP checksum),
// for a test to Inject into a TUN.
func UDPv4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	const ihl, udpLen = 20, 8
	p := make([]byte, ihl+udpLen+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[6:], 0x4000) // DF
	p[8], p[9] = 64, 17
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	var sum uint32
	for i := 0; i < ihl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	u := p[ihl:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	return p
}
