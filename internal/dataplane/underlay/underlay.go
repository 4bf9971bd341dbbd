// Package underlay holds the types the data plane shares with whatever
// carries its LISP packets over the RLOC network: the outer headers of one
// packet, the batched receive function and the headroom a sender may use.
//
// They live apart from the engine (package dataplane) so that the test
// doubles in dataplane/dptest can implement an underlay without importing
// the engine, and the engine's own tests can use them, as wireguard-go's
// conn/bindtest stands beside conn rather than inside device.
package underlay

import "net/netip"

// Headroom is the room an underlay may assume before the UDP payload in
// every buffer it is handed, for its own headers (IPv6 + UDP).
const Headroom = 40 + 8

// Outer describes the outer IP and UDP headers of one LISP packet.
type Outer struct {
	Src, Dst netip.Addr // outer source and destination RLOCs
	SrcPort  uint16     // UDP source port: flow entropy on send, the sender's port on receive
	// DstPort is, on send, the UDP destination port when not the
	// underlay's own (0): an RTR sends to the port a NAT translated an
	// xTR to (draft-ietf-lisp-nat-traversal §5.3.1). Unset on receive.
	DstPort uint16
	TTL     uint8 // outer TTL or hop limit; 0 on receive means unknown
	TOS     uint8 // outer DSCP<<2 | ECN (IPv4 TOS, IPv6 traffic class)
	HasTOS  bool  // on receive: TOS was read from the packet
}

// ReceiveFunc receives a batch of LISP packets: the UDP payload of packet
// i lands at bufs[i][offset:offset+sizes[i]] with its outer headers in
// outer[i]. It returns net.ErrClosed once the underlay is closed.
type ReceiveFunc func(bufs [][]byte, sizes []int, outer []Outer, offset int) (int, error)
