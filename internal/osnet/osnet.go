//go:build linux

// Package osnet is lispd's netlink glue: it brings a TUN device up with
// its MTU and addresses and points routes for EID space into it, and takes
// those routes away again on shutdown. Nothing else in lispd touches the
// kernel's routing state.
package osnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// TUNConfig is what a TUN device needs around it.
type TUNConfig struct {
	Name   string
	MTU    int
	Addrs  []netip.Prefix // addresses on the device (e.g. the xTR's own EID)
	Routes []netip.Prefix // EID space routed into the device
	Table  int            // routing table (0: main); a VRF's table for an instance ID
	Metric int
}

// Configured is a TUN set up by Configure; Undo removes what was added.
type Configured struct {
	link   netlink.Link
	routes []netlink.Route
}

// Configure sets the device up and adds its addresses and routes. Routes
// that already exist are replaced, so a restart after a crash works.
func Configure(c TUNConfig) (*Configured, error) {
	link, err := netlink.LinkByName(c.Name)
	if err != nil {
		return nil, fmt.Errorf("tun %s: %w", c.Name, err)
	}
	if c.MTU > 0 {
		if err := netlink.LinkSetMTU(link, c.MTU); err != nil {
			return nil, fmt.Errorf("tun %s: mtu %d: %w", c.Name, c.MTU, err)
		}
	}
	for _, a := range c.Addrs {
		addr := &netlink.Addr{IPNet: ipnet(a)}
		if a.Addr().Is6() {
			addr.Flags = syscall.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return nil, fmt.Errorf("tun %s: address %s: %w", c.Name, a, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("tun %s: up: %w", c.Name, err)
	}
	done := &Configured{link: link}
	for _, p := range c.Routes {
		r := netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipnet(p.Masked()), Table: c.Table,
			Priority: c.Metric, Scope: netlink.SCOPE_LINK}
		if err := netlink.RouteReplace(&r); err != nil {
			done.Undo()
			return nil, fmt.Errorf("tun %s: route %s: %w", c.Name, p, err)
		}
		done.routes = append(done.routes, r)
	}
	return done, nil
}

// Undo deletes the routes Configure added (the device itself goes away
// when lispd closes it).
func (c *Configured) Undo() error {
	var errs []error
	for i := range c.routes {
		if err := netlink.RouteDel(&c.routes[i]); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	c.routes = nil
	return errors.Join(errs...)
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// InterfaceAddrs returns the global unicast addresses of an interface.
func InterfaceAddrs(name string) ([]netip.Addr, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	as, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ok && ip.Unmap().IsGlobalUnicast() {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}
