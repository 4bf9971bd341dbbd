//go:build linux

package osnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// HostRoutes points single-host routes at interfaces: a dynamic-EID host
// detected on a LAN interface is reached there, one that moved away is
// sent into the TUN (and so to its new site). Only routes it added are
// touched, and Remove takes them all away.
type HostRoutes struct {
	table  int
	routes map[netip.Prefix]netlink.Route
}

// NewHostRoutes manages host routes in table (0: main).
func NewHostRoutes(table int) *HostRoutes {
	return &HostRoutes{table: table, routes: map[netip.Prefix]netlink.Route{}}
}

// Set routes host (a /32 or /128) out of dev, replacing any route we or
// someone else had for exactly that prefix.
func (h *HostRoutes) Set(host netip.Prefix, dev string) error {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("host route %s: %w", host, err)
	}
	r := netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipnet(host.Masked()), Table: h.table, Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteReplace(&r); err != nil {
		return fmt.Errorf("host route %s dev %s: %w", host, dev, err)
	}
	h.routes[host] = r
	return nil
}

// Delete removes the route Set installed for host, if any.
func (h *HostRoutes) Delete(host netip.Prefix) error {
	r, ok := h.routes[host]
	if !ok {
		return nil
	}
	delete(h.routes, host)
	if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("host route %s: %w", host, err)
	}
	return nil
}

// Remove deletes every route Set installed.
func (h *HostRoutes) Remove() error {
	var errs []error
	for p := range h.routes {
		errs = append(errs, h.Delete(p))
	}
	return errors.Join(errs...)
}

// ProxyARPOn reports whether proxy ARP is on for an interface.
func ProxyARPOn(dev string) (bool, error) {
	b, err := os.ReadFile(proxyARPPath(dev))
	return strings.TrimSpace(string(b)) == "1", err
}

func proxyARPPath(dev string) string { return "/proc/sys/net/ipv4/conf/" + dev + "/proxy_arp" }

// ProxyARP turns proxy ARP on or off on an interface: an across-subnet
// dynamic-EID host keeps asking for its old gateway and its old neighbours,
// and the xTR answers for them.
func ProxyARP(dev string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return os.WriteFile(proxyARPPath(dev), []byte(v), 0o644)
}
