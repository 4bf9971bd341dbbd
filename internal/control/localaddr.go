package control

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// LocalAddrFor returns the local address the kernel uses to reach dst (on
// the control port when dst has none), as a connected UDP socket sees it:
// connecting sends nothing.
func LocalAddrFor(dst netip.AddrPort) (netip.Addr, error) {
	if dst.Port() == 0 {
		dst = netip.AddrPortFrom(dst.Addr(), wire.ControlPort)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to %s: %w", dst.Addr(), err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
