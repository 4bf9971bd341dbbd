package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
)

// Namespaces are switched only on threads that are thrown away, and the
// waiters of started processes end with them: nothing may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// lineTopology is host1 — router — host2 with IPv4 and IPv6, the same as
// testdata/line.yaml.
func lineTopology() *Topology {
	return &Topology{
		Name: "line",
		Nodes: []Node{
			{Name: "host1", Role: "host", Routes: []Route{
				{Dst: pfx("0.0.0.0/0"), Via: addr("192.0.2.254")},
				{Dst: pfx("::/0"), Via: addr("2001:db8:1::fe")},
			}},
			{Name: "router", Role: "router",
				Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"},
				Routes:  []Route{{Dst: pfx("203.0.113.2/32"), Via: addr("198.51.100.2"), Dev: "eth1", Metric: 10}},
			},
			{Name: "host2", Role: "host", Loopbacks: []netip.Prefix{pfx("203.0.113.2/32")}, Routes: []Route{
				{Dst: pfx("0.0.0.0/0"), Via: addr("198.51.100.254")},
				{Dst: pfx("::/0"), Via: addr("2001:db8:2::fe")},
			}},
		},
		Links: []Link{
			{A: "host1", B: "router",
				AAddrs: []netip.Prefix{pfx("192.0.2.1/24"), pfx("2001:db8:1::1/64")},
				BAddrs: []netip.Prefix{pfx("192.0.2.254/24"), pfx("2001:db8:1::fe/64")}},
			{A: "router", B: "host2", AName: "eth1",
				AAddrs: []netip.Prefix{pfx("198.51.100.254/24"), pfx("2001:db8:2::fe/64")},
				BAddrs: []netip.Prefix{pfx("198.51.100.2/24"), pfx("2001:db8:2::2/64")},
				MTU:    1400},
		},
	}
}

func TestLoadTopology(t *testing.T) {
	got, err := LoadTopology("testdata/line.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := lineTopology()
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{}),
		cmpopts.IgnoreFields(Node{}, "LispdConfig", "LispdLine", "LispdYAML")); diff != "" {
		t.Errorf("topology (-want +got):\n%s", diff)
	}
	h2 := got.Node("host2")
	wantSnippet := "# kept as raw YAML for the node's lispd\nxtr:\n  eid-prefixes: [203.0.113.2/32]\ncopy:\n  eid-prefixes: [203.0.113.2/32]\n"
	if string(h2.LispdConfig) != wantSnippet || h2.LispdLine != 24 {
		t.Errorf("host2 lispd snippet (line %d):\n%s\nwant (line 24):\n%s", h2.LispdLine, h2.LispdConfig, wantSnippet)
	}
	// The tree keeps the file's lines, aliases expanded: copy's value is
	// xtr's, at line 25.
	if y := h2.LispdYAML; y == nil || y.Line != 24 || len(y.Content) != 4 || y.Content[3].Content[1].Content[0].Line != 25 {
		t.Errorf("host2 lispd tree: %+v", y)
	}
	if got.Node("host1").LispdConfig != nil {
		t.Errorf("host1 has a lispd snippet: %q", got.Node("host1").LispdConfig)
	}
}

func TestLoadTopologyErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"missing file", "", "t.yaml: no such file or directory"},
		{"empty", "# nothing\n", "t.yaml: the topology is empty"},
		{"syntax", "name: [x\n", "t.yaml:1: invalid YAML: did not find expected ',' or ']'"},
		{"unknown key", "name: x\nnodez: []\n", "t.yaml:2: topology: unknown key \"nodez\" (known: links, name, nodes)"},
		{"repeated key", "name: x\nname: y\n", "t.yaml:2: topology: key \"name\" repeated (first at line 1)"},
		{"two documents", "name: x\n---\nname: y\n", "t.yaml:2: only one YAML document is allowed"},
		{"nodes not a list", "name: x\nnodes: {a: 1}\n", "t.yaml:2: nodes must be a list"},
		{"unknown node key", "name: x\nnodes:\n  - name: a\n    rol: host\n", "t.yaml:4: node: unknown key \"rol\""},
		{"bad mtu", "name: x\nnodes: [{name: a}, {name: b}]\nlinks:\n  - {a: a, b: b, mtu: big}\n", "t.yaml:4: mtu: \"big\" is not a whole number"},
		{"bare link address", "name: x\nnodes: [{name: a}, {name: b}]\nlinks:\n  - a: a\n    b: b\n    a-addrs: [192.0.2.1]\n",
			"t.yaml:6: a-addrs: 192.0.2.1 needs a prefix length, e.g. 192.0.2.1/24"},
		{"bad down", "name: x\nnodes: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, down: maybe}]\n", "t.yaml:3: down: \"maybe\" is not true or false"},
		{"default without via", "name: x\nnodes:\n  - name: a\n    routes:\n      - dst: default\n        dev: lo\n",
			"t.yaml:5: dst: default needs via"},
		{"route without dst", "name: x\nnodes:\n  - name: a\n    routes:\n      - via: 192.0.2.1\n", "t.yaml:5: route: dst is missing"},
		{"bad via", "name: x\nnodes:\n  - name: a\n    routes:\n      - {dst: default, via: gw}\n", "t.yaml:5: via: \"gw\" is not an IP address"},
		{"lispd not a mapping", "name: x\nnodes:\n  - name: a\n    lispd: [1]\n", "t.yaml:4: lispd must be a mapping"},
		{"sysctls repeated", "name: x\nnodes:\n  - name: a\n    sysctls:\n      net.ipv4.ip_forward: 1\n      net.ipv4.ip_forward: 0\n",
			"t.yaml:6: sysctls: key \"net.ipv4.ip_forward\" repeated (first at line 5)"},
		// Problems found by Validate are placed on the line of the value.
		{"validate: unknown node", "name: x\nnodes:\n  - name: a\nlinks:\n  - a: a\n    b: nope\n", "t.yaml:6: link 1 (a-nope): no node is named \"nope\""},
		{"validate: gateway off-link", "name: x\nnodes:\n  - name: a\n  - name: b\n    routes:\n      - dst: 198.51.100.0/24\n        via: 203.0.113.9\nlinks:\n  - {a: a, b: b, a-addrs: [192.0.2.1/24], b-addrs: [192.0.2.2/24]}\n  - {a: a, b: b}\n",
			"t.yaml:7: node b: route 198.51.100.0/24 via 203.0.113.9: gateway 203.0.113.9 is not in a subnet of any of the node's links"},
		{"validate: sysctl", "name: x\nnodes:\n  - name: a\n    sysctls:\n      kernel.hostname: evil\n", "t.yaml:5: node a: sysctl \"kernel.hostname\": only net.* keys"},
		{"validate: name", "name: my-lab\nnodes: [{name: a}]\n", "t.yaml:1: topology name \"my-lab\" may hold only letters, digits and '_'"},
		{"aliases not a mapping", "name: x\nnodes:\n  - name: a\n    aliases: [a6]\n", "t.yaml:4: aliases must be a mapping"},
		{"alias bad address", "name: x\nnodes:\n  - name: a\n    aliases:\n      a6: nowhere\n", "t.yaml:5: alias a6: \"nowhere\" is not an IP address"},
		{"validate: alias not own", "name: x\nnodes:\n  - name: a\n    loopbacks: [192.0.2.1]\n    aliases:\n      a6: \"2001:db8::1\"\n",
			"t.yaml:6: node a: alias a6: 2001:db8::1 is not an address of the node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.yaml")
			if tc.name != "missing file" {
				if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadTopology(path)
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			msg := strings.ReplaceAll(err.Error(), path, "t.yaml")
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", msg, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := lineTopology().Validate(); err != nil {
		t.Fatalf("line topology: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Topology)
		want   string
	}{
		{"no name", func(t *Topology) { t.Name = "" }, "topology name is empty"},
		{"long name", func(t *Topology) { t.Name = strings.Repeat("x", 33) }, "longer than 32"},
		{"no nodes", func(t *Topology) { t.Nodes, t.Links = nil, nil }, "topology has no nodes"},
		{"duplicate node", func(t *Topology) { t.Nodes[2].Name = "host1" }, `node "host1" is defined twice`},
		{"bad node name", func(t *Topology) { t.Nodes[0].Name = "-x" }, `node name "-x" may hold only`},
		{"self link", func(t *Topology) { t.Links[0].B = "host1" }, `link 1 (host1-host1): both ends are on node "host1"`},
		{"long ifname", func(t *Topology) { t.Links[0].AName = "averyverylongname" }, "longer than 15 bytes"},
		{"reserved ifname", func(t *Topology) { t.Links[0].AName = "lo" }, `interface name "lo" is reserved`},
		{"slash ifname", func(t *Topology) { t.Links[0].BName = "a/b" }, `"a/b" is not a valid interface name`},
		{"duplicate ifname", func(t *Topology) { t.Links[0].BName = "eth1" }, `node "router" already has an interface "eth1"`},
		{"duplicate address", func(t *Topology) { t.Links[1].AAddrs[0] = pfx("192.0.2.254/24") }, "address 192.0.2.254 is already on router:"},
		{"mapped address", func(t *Topology) { t.Links[0].AAddrs[0] = pfx("::ffff:192.0.2.1/120") }, "write IPv4-mapped addresses as IPv4"},
		{"mtu", func(t *Topology) { t.Links[0].MTU = 40 }, "mtu 40 is outside 68..65535"},
		{"ipv6 mtu", func(t *Topology) { t.Links[0].MTU = 1000 }, "below IPv6's minimum of 1280"},
		{"host bits", func(t *Topology) { t.Nodes[1].Routes[0].Dst = pfx("203.0.113.2/24") }, "did you mean 203.0.113.0/24"},
		{"no via no dev", func(t *Topology) { t.Nodes[1].Routes[0].Via, t.Nodes[1].Routes[0].Dev = netip.Addr{}, "" }, "needs a gateway (via) or an interface (dev)"},
		{"unknown dev", func(t *Topology) { t.Nodes[1].Routes[0].Dev = "eth9" }, `node has no interface "eth9"`},
		{"family mix", func(t *Topology) { t.Nodes[0].Routes[0].Via = addr("2001:db8:1::fe") }, "different address families"},
		{"own address", func(t *Topology) { t.Nodes[0].Routes[0].Via = addr("192.0.2.1") }, "the gateway is the node's own address"},
		{"gateway off dev", func(t *Topology) { t.Nodes[1].Routes[0].Dev = "eth0" }, "gateway 198.51.100.2 is not in a subnet of eth0"},
		{"link-local needs dev", func(t *Topology) { t.Nodes[0].Routes[1].Via = addr("fe80::1") }, "a link-local gateway needs dev"},
		{"duplicate route", func(t *Topology) { t.Nodes[0].Routes[1] = t.Nodes[0].Routes[0] }, "a second route to 0.0.0.0/0 with metric 0"},
		{"non-net sysctl", func(t *Topology) { t.Nodes[0].Sysctls = map[string]string{"kernel.panic": "1"} }, "only net.* keys"},
		{"sysctl escape", func(t *Topology) { t.Nodes[0].Sysctls = map[string]string{"net/../kernel/panic": "1"} }, "only net.* keys"},
		{"empty sysctl value", func(t *Topology) { t.Nodes[0].Sysctls = map[string]string{"net.ipv4.ip_forward": ""} }, "one non-empty line"},
		{"loopback clash", func(t *Topology) { t.Nodes[0].Loopbacks = []netip.Prefix{pfx("192.0.2.1/32")} }, "loopback 192.0.2.1 is also on host1:eth0"},
		{"alias is a node", func(t *Topology) { t.Nodes[0].Aliases = map[string]netip.Addr{"router": addr("192.0.2.1")} }, `alias "router" is the name of a node`},
		{"alias twice", func(t *Topology) {
			t.Nodes[0].Aliases = map[string]netip.Addr{"x": addr("192.0.2.1")}
			t.Nodes[2].Aliases = map[string]netip.Addr{"x": addr("203.0.113.2")}
		}, `alias "x" is already an alias of node host1`},
		{"alias name", func(t *Topology) { t.Nodes[0].Aliases = map[string]netip.Addr{"a b": addr("192.0.2.1")} }, `alias "a b" is not a host name`},
		{"alias foreign address", func(t *Topology) { t.Nodes[0].Aliases = map[string]netip.Addr{"h": addr("192.0.2.254")} }, "192.0.2.254 is not an address of the node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := lineTopology()
			tc.change(topo)
			err := topo.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v; want it to contain %q", err, tc.want)
			}
		})
	}
	// Anycast: the same loopback on two nodes is fine.
	topo := lineTopology()
	topo.Nodes[0].Loopbacks = []netip.Prefix{pfx("203.0.113.2/32")}
	if err := topo.Validate(); err != nil {
		t.Errorf("anycast loopback: %v", err)
	}
}

func TestDefaultIfNames(t *testing.T) {
	topo := &Topology{Name: "x", Nodes: []Node{{Name: "a"}, {Name: "b"}}, Links: []Link{
		{A: "a", B: "b"},
		{A: "a", B: "b", AName: "eth0"}, // taken explicitly: the first link's a gets eth1
		{A: "b", B: "a"},
	}}
	got := defaultIfNames(topo)
	want := [][2]string{{"eth1", "eth0"}, {"eth0", "eth1"}, {"eth2", "eth2"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if err := topo.Validate(); err != nil {
		t.Error(err)
	}
}

func TestDefaultHosts(t *testing.T) {
	got := lineTopology().DefaultHosts()
	want := map[string]netip.Addr{"host1": addr("192.0.2.1"), "router": addr("192.0.2.254"), "host2": addr("203.0.113.2")}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}

	// Aliases come along: another name for host1's IPv6 address.
	topo := lineTopology()
	topo.Nodes[0].Aliases = map[string]netip.Addr{"host1-v6": addr("2001:db8:1::1")}
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	want["host1-v6"] = addr("2001:db8:1::1")
	if diff := cmp.Diff(want, topo.DefaultHosts(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("hosts with an alias (-want +got):\n%s", diff)
	}

	// An anycast loopback shared by two nodes names neither: each keeps
	// its link address (the Map-Servers of a cluster share one).
	topo = lineTopology()
	topo.Nodes[0].Loopbacks = []netip.Prefix{pfx("198.18.100.1/32")}
	topo.Nodes[1].Loopbacks = []netip.Prefix{pfx("198.18.100.1/32")}
	got = topo.DefaultHosts()
	if got["host1"] != addr("192.0.2.1") || got["router"] != addr("192.0.2.254") {
		t.Errorf("nodes with an anycast loopback named %v and %v, want their link addresses", got["host1"], got["router"])
	}
}

func TestLoadTopologyAliases(t *testing.T) {
	topo, err := ParseTopology([]byte("name: x\nnodes:\n  - name: a\n    loopbacks: [192.0.2.1, \"2001:db8::1\"]\n    aliases: {a6: \"2001:db8::1\", a-eid: 192.0.2.1}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]netip.Addr{"a6": addr("2001:db8::1"), "a-eid": addr("192.0.2.1")}
	if diff := cmp.Diff(want, topo.Nodes[0].Aliases, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("aliases (-want +got):\n%s", diff)
	}
}
