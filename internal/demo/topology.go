// Package demo is `lisplab demo`: a LISP network built in namespaces and a
// story told on it, step by step, with measured times — registration,
// first resolution, load sharing over two RLOCs, PITR/PETR and a locator
// failure — ending in a summary table.
package demo

import (
	"net/netip"

	"github.com/lispd/lispd/internal/lab"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

var forwarding = map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}

// Addresses of the story.
const (
	msAddr   = "198.18.1.2"
	c1Addr   = "198.51.100.10"
	d1Addr   = "203.0.113.10"
	d2Addr   = "203.0.113.130"
	nlAddr   = "192.0.2.130"
	dc1aRLOC = "198.18.3.2"
	dc1bRLOC = "198.18.4.2"
)

// Topology is the demo network:
//
//	c1 ── xc ──┐                 ┌── dc1a ──┐
//	           core ─────────────┤          d1 (203.0.113.10)
//	  ms ──────┤  │  │           └── dc1b ──┘
//	  px ──────┘  │  └── dc2 ── d2 (203.0.113.130)
//	              └── nl (non-LISP host, 192.0.2.130)
//
// Client site 198.51.100.0/24 behind xc; data centre DC1 203.0.113.0/25
// behind two xTRs, one RLOC each, equal priority, weights 50/50; data
// centre DC2 203.0.113.128/25 behind dc2; a Map-Server/Map-Resolver; a
// PxTR for the non-LISP host. The RLOC network is 198.18.0.0/15.
func Topology(name string) *lab.Topology {
	t := &lab.Topology{Name: name}
	node := func(n, role string, fwd bool, routes ...lab.Route) {
		nd := lab.Node{Name: n, Role: role, Routes: routes}
		if fwd {
			nd.Sysctls = forwarding
		}
		t.Nodes = append(t.Nodes, nd)
	}
	via := func(dst, gw string) lab.Route { return lab.Route{Dst: pfx(dst), Via: ip(gw)} }
	node("core", "router", true, via("198.51.100.0/24", "198.18.5.2"), via("203.0.113.0/24", "198.18.5.2"))
	node("ms", "ms", false, via("0.0.0.0/0", "198.18.1.1"))
	node("xc", "xtr", true, via("198.18.0.0/15", "198.18.2.1"))
	node("dc1a", "xtr", true, via("198.18.0.0/15", "198.18.3.1"), via("203.0.113.10/32", "192.0.2.2"))
	node("dc1b", "xtr", true, via("198.18.0.0/15", "198.18.4.1"), via("203.0.113.10/32", "192.0.2.6"))
	node("dc2", "xtr", true, via("198.18.0.0/15", "198.18.6.1"))
	node("px", "pxtr", true, via("198.18.0.0/15", "198.18.5.1"), via("192.0.2.128/25", "198.18.5.1"))
	node("c1", "host", false, via("0.0.0.0/0", "198.51.100.1"))
	t.Nodes = append(t.Nodes, lab.Node{Name: "d1", Role: "host", Loopbacks: []netip.Prefix{pfx(d1Addr + "/32")},
		Routes: []lab.Route{via("0.0.0.0/0", "192.0.2.1")}})
	node("nl", "host", false, via("0.0.0.0/0", "192.0.2.129"))
	node("d2", "host", false, via("0.0.0.0/0", "203.0.113.129"))
	link := func(a, an, b, bn, aa, ba string) {
		t.Links = append(t.Links, lab.Link{A: a, AName: an, B: b, BName: bn,
			AAddrs: []netip.Prefix{pfx(aa)}, BAddrs: []netip.Prefix{pfx(ba)}})
	}
	link("core", "to-ms", "ms", "eth0", "198.18.1.1/24", "198.18.1.2/24")
	link("core", "to-xc", "xc", "up0", "198.18.2.1/24", "198.18.2.2/24")
	link("core", "to-dc1a", "dc1a", "up0", "198.18.3.1/24", "198.18.3.2/24")
	link("core", "to-dc1b", "dc1b", "up0", "198.18.4.1/24", "198.18.4.2/24")
	link("core", "to-px", "px", "eth0", "198.18.5.1/24", "198.18.5.2/24")
	link("core", "to-nl", "nl", "eth0", "192.0.2.129/25", nlAddr+"/25")
	link("core", "to-dc2", "dc2", "up0", "198.18.6.1/24", "198.18.6.2/24")
	link("dc2", "eid0", "d2", "eth0", "203.0.113.129/25", d2Addr+"/25")
	link("xc", "eid0", "c1", "eth0", "198.51.100.1/24", c1Addr+"/24")
	// D1's EID lives on its loopback; it reaches its two xTRs over small
	// point-to-point links.
	link("dc1a", "d1", "d1", "eth0", "192.0.2.1/30", "192.0.2.2/30")
	link("dc1b", "d1", "d1", "eth1", "192.0.2.5/30", "192.0.2.6/30")
	return t
}

const msConfig = `
control: {addresses: [198.18.1.2]}
map-server:
  sites:
    - name: client
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: client-key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1-key}]
      eid-prefixes: [{prefix: 203.0.113.0/25}]
    - name: dc2
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc2-key}]
      eid-prefixes: [{prefix: 203.0.113.128/25}]
map-resolver: {}
`

const xtrCommon = `
  itr: true
  etr: true
  map-resolvers: [198.18.1.2]
  register-interval: 10s
  rloc-probing: {interval: 1s}
  petrs: [198.18.5.2]
  eid-routes: [0.0.0.0/1, 128.0.0.0/1]
`

// dc1Database is what both DC1 xTRs register: the site with both RLOCs.
const dc1Database = `  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: dc1-key}]
  database:
    - eid-prefix: 203.0.113.0/25
      locators: [{address: 198.18.3.2, priority: 1, weight: 50}, {address: 198.18.4.2, priority: 1, weight: 50}]
`

var configs = map[string]string{
	"ms": msConfig,
	"xc": "xtr:" + xtrCommon + `  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: client-key}]
  database:
    - {eid-prefix: 198.51.100.0/24, locators: [{address: 198.18.2.2}]}
`,
	"dc1a": "xtr:" + xtrCommon + dc1Database,
	"dc2": "xtr:" + xtrCommon + `  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: dc2-key}]
  database:
    - {eid-prefix: 203.0.113.128/25, locators: [{address: 198.18.6.2}]}
`,
	"dc1b": "xtr:" + xtrCommon + dc1Database,
	"px": `
xtr:
  itr: true
  map-resolvers: [198.18.1.2]
  rloc-probing: {interval: 1s}
  tun-addresses: [198.18.5.2/32]
pitr: {eid-prefixes: [198.51.100.0/24, 203.0.113.0/24]}
petr: {}
`,
}
