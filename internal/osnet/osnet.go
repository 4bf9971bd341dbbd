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

// VRF keeps one instance ID's EID interfaces and TUN in their own routing
// table, so its prefixes may overlap another instance's. With a kernel
// that has VRF devices it is one; without (CONFIG_NET_VRF off) policy
// rules send whatever arrives on the members to the table instead.
type VRF struct {
	name    string
	table   int
	link    netlink.Link // the VRF device, when there is one
	created bool
	rules   []*netlink.Rule
	routes  []netlink.Route
}

// EnsureVRF sets up the table for members (the TUN first, then the EID
// interfaces) and routes the instance's local EID prefixes to the first
// EID interface, its remote EID space to the TUN.
func EnsureVRF(name string, table uint32, tun string, members []string, local, remote []netip.Prefix) (*VRF, error) {
	v := &VRF{name: name, table: int(table)}
	err := netlink.LinkAdd(&netlink.Vrf{LinkAttrs: netlink.LinkAttrs{Name: name}, Table: table})
	switch {
	case err == nil:
		v.created = true
		if v.link, err = netlink.LinkByName(name); err == nil {
			err = netlink.LinkSetUp(v.link)
		}
		for _, m := range append([]string{tun}, members...) {
			if err == nil {
				err = v.enslave(m)
			}
		}
	case errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOTSUP):
		err = v.policyRules(append([]string{tun}, members...))
	}
	if err != nil {
		v.Remove()
		return nil, fmt.Errorf("vrf %s: %w", name, err)
	}
	add := func(dev string, ps []netip.Prefix) error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		for _, p := range ps {
			r := netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipnet(p.Masked()), Table: v.table, Scope: netlink.SCOPE_LINK}
			if err := netlink.RouteReplace(&r); err != nil {
				return fmt.Errorf("route %s dev %s table %d: %w", p, dev, v.table, err)
			}
			v.routes = append(v.routes, r)
		}
		return nil
	}
	if len(members) > 0 {
		err = add(members[0], local)
	}
	if err == nil {
		err = add(tun, remote)
	}
	if err != nil {
		v.Remove()
		return nil, fmt.Errorf("vrf %s: %w", name, err)
	}
	return v, nil
}

func (v *VRF) enslave(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("member %s: %w", name, err)
	}
	return netlink.LinkSetMasterByIndex(l, v.link.Attrs().Index)
}

// policyRules is the VRF-less way: "iif MEMBER lookup TABLE" for each
// member, ahead of the main table.
func (v *VRF) policyRules(members []string) error {
	for _, m := range members {
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			r := netlink.NewRule()
			r.IifName, r.Table, r.Priority, r.Family = m, v.table, 100, fam
			if err := netlink.RuleAdd(r); err != nil && !errors.Is(err, syscall.EEXIST) {
				return fmt.Errorf("rule iif %s lookup %d: %w", m, v.table, err)
			}
			v.rules = append(v.rules, r)
		}
	}
	return nil
}

// Remove undoes EnsureVRF: routes, rules, and the VRF device if made here.
func (v *VRF) Remove() error {
	if v == nil {
		return nil
	}
	var errs []error
	for i := range v.routes {
		if err := netlink.RouteDel(&v.routes[i]); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	for _, r := range v.rules {
		if err := netlink.RuleDel(r); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, err)
		}
	}
	if v.created && v.link != nil {
		errs = append(errs, netlink.LinkDel(v.link))
	}
	v.routes, v.rules, v.created = nil, nil, false
	return errors.Join(errs...)
}
