//go:build !linux

package dynamiceid

import (
	"net/netip"
	"time"
)

// ARPConn reads and sends ARP on one interface. Only Linux has one; here
// ListenARP always fails and the methods exist so that callers compile.
type ARPConn struct{}

// ListenARP fails with ErrUnsupported on this system.
func ListenARP(ifname string) (*ARPConn, error) { return nil, ErrUnsupported }

// ListenRARP fails with ErrUnsupported on this system.
func ListenRARP(ifname string) (*ARPConn, error) { return nil, ErrUnsupported }

func (c *ARPConn) Read() (Frame, error)                    { return Frame{}, ErrUnsupported }
func (c *ARPConn) Request(target, sender netip.Addr) error { return ErrUnsupported }
func (c *ARPConn) SetReadDeadline(t time.Time) error       { return ErrUnsupported }
func (c *ARPConn) MAC() MAC                                { return MAC{} }
func (c *ARPConn) Name() string                            { return "" }
func (c *ARPConn) Dropped() uint64                         { return 0 }
func (c *ARPConn) Close() error                            { return nil }
