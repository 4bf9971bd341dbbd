package control

import (
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// BatchConn is a UDP socket's batch I/O (recvmmsg/sendmmsg) whatever its
// family: x/net has one type per family with the same calls, and its
// ipv4.Message serves both.
type BatchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// IPv6Batch adapts an ipv6.PacketConn to BatchConn (an ipv4.PacketConn
// is one already).
type IPv6Batch struct{ *ipv6.PacketConn }

// ReadBatch implements BatchConn.
func (c IPv6Batch) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	return c.PacketConn.ReadBatch(ms, flags)
}

// WriteBatch implements BatchConn.
func (c IPv6Batch) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	return c.PacketConn.WriteBatch(ms, flags)
}

// NewBatchConn wraps c for batch I/O in the family given.
func NewBatchConn(c *net.UDPConn, is6 bool) BatchConn {
	if is6 {
		return IPv6Batch{ipv6.NewPacketConn(c)}
	}
	return ipv4.NewPacketConn(c)
}
