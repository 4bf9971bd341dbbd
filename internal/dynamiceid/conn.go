package dynamiceid

import "errors"

// Frame is one ARP or RARP received by an ARPConn.
type Frame struct {
	ARP ARP
	// RARP is true for a frame of EtherType 0x8035 (RFC 903).
	RARP bool
	// Src is the Ethernet source address of the frame. It normally equals
	// ARP.SenderMAC; a difference means a proxy or a forged sender.
	Src MAC
	// ToUs is true when the frame was unicast to the interface's own MAC
	// (the kernel's PACKET_HOST), as replies to our requests are. It is
	// false for broadcast and multicast frames, and for frames to other
	// hosts seen when the interface is promiscuous.
	ToUs bool
}

// ErrUnsupported is returned by ListenARP where there are no AF_PACKET
// sockets (every system but Linux).
var ErrUnsupported = errors.New("dynamic EID: ARP sockets are only supported on Linux")
