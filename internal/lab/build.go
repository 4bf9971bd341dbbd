package lab

import (
	"net/netip"
	"strings"
)

// Builder writes a topology in Go the way a diagram reads: nodes with
// their routes, links with their addresses, as text. The addresses are the
// program's own constants, so one that does not parse panics, as
// netip.MustParsePrefix does; Validate still checks the whole.
type Builder struct {
	T *Topology
	// Forwarding are the sysctls of a node added as a router; NewBuilder
	// turns on IPv4 and IPv6 forwarding.
	Forwarding map[string]string
}

// NewBuilder starts an empty topology called name.
func NewBuilder(name string) *Builder {
	return &Builder{
		T:          &Topology{Name: name},
		Forwarding: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"},
	}
}

// Node adds a node; a router (forwards) gets b.Forwarding.
func (b *Builder) Node(name, role string, forwards bool, routes ...Route) {
	n := Node{Name: name, Role: role, Routes: routes}
	if forwards {
		n.Sysctls = b.Forwarding
	}
	b.T.Nodes = append(b.T.Nodes, n)
}

// Link adds a veth pair from node a (interface aName) to node z (zName);
// aAddrs and zAddrs are its ends' prefixes separated by spaces, "" for
// none. An empty interface name is the node's next "ethN".
func (b *Builder) Link(a, aName, z, zName, aAddrs, zAddrs string) {
	b.T.Links = append(b.T.Links, Link{A: a, AName: aName, B: z, BName: zName,
		AAddrs: prefixes(aAddrs), BAddrs: prefixes(zAddrs)})
}

func prefixes(s string) []netip.Prefix {
	var ps []netip.Prefix
	for _, f := range strings.Fields(s) {
		ps = append(ps, netip.MustParsePrefix(f))
	}
	return ps
}

// Via is the route to dst through gateway gw.
func Via(dst, gw string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(gw)}
}

// WithMetric returns the route with metric m.
func (r Route) WithMetric(m int) Route {
	r.Metric = m
	return r
}
