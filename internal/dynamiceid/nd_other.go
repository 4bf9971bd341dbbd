//go:build !linux

package dynamiceid

import (
	"net/netip"
	"time"
)

// NDConn reads and sends IPv6 ND on one interface. Only Linux has one.
type NDConn struct{}

// NDFrame is one ND message received by an NDConn.
type NDFrame struct {
	ND   ND
	Src  MAC
	ToUs bool
}

// ListenND fails with ErrUnsupported on this system.
func ListenND(ifname string) (*NDConn, error) { return nil, ErrUnsupported }

func (c *NDConn) Read() (NDFrame, error)            { return NDFrame{}, ErrUnsupported }
func (c *NDConn) Solicit(target netip.Addr) error   { return ErrUnsupported }
func (c *NDConn) SetReadDeadline(t time.Time) error { return ErrUnsupported }
func (c *NDConn) Name() string                      { return "" }
func (c *NDConn) Dropped() uint64                   { return 0 }
func (c *NDConn) Close() error                      { return nil }
