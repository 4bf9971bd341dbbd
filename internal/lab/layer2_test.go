package lab

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var h1MAC = net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x01}

// stretchedLAN is h1 — sw1 ══ VXLAN over dci ══ sw2 — h2: one LAN,
// 203.0.113.0/24, over two switches.
func stretchedLAN() *Topology {
	return &Topology{
		Name: "l2",
		Nodes: []Node{
			{Name: "h1"},
			{Name: "h2"},
			{Name: "sw1",
				VXLANs:  []VXLAN{{Name: "vx0", VNI: 42, Local: addr("192.0.2.1"), Remote: addr("192.0.2.2"), Dev: "dci"}},
				Bridges: []Bridge{{Name: "br0", Ports: []string{"h1", "vx0"}, NoLearning: []string{"vx0"}, FDB: []FDBEntry{{MAC: h1MAC, Port: "h1"}}}}},
			{Name: "sw2",
				VXLANs:  []VXLAN{{Name: "vx0", VNI: 42, Remote: addr("192.0.2.1"), Dev: "dci", Port: 4789}},
				Bridges: []Bridge{{Name: "br0", Ports: []string{"h2", "vx0"}}}},
		},
		Links: []Link{
			{A: "h1", B: "sw1", BName: "h1", AAddrs: []netip.Prefix{pfx("203.0.113.1/24")}, AMAC: h1MAC},
			{A: "h2", B: "sw2", BName: "h2", AAddrs: []netip.Prefix{pfx("203.0.113.2/24")}},
			{A: "sw1", AName: "dci", B: "sw2", BName: "dci", AAddrs: []netip.Prefix{pfx("192.0.2.1/30")}, BAddrs: []netip.Prefix{pfx("192.0.2.2/30")}},
		},
	}
}

const stretchedLANYAML = `name: l2
nodes:
  - name: h1
  - name: h2
  - name: sw1
    vxlans: [{name: vx0, vni: 42, local: 192.0.2.1, remote: 192.0.2.2, dev: dci}]
    bridges:
      - name: br0
        ports: [h1, vx0]
        no-learning: [vx0]
        fdb: [{mac: "02:00:5e:00:53:01", port: h1}]
  - name: sw2
    vxlans: [{name: vx0, vni: 42, remote: 192.0.2.1, dev: dci, port: 4789}]
    bridges: [{name: br0, ports: [h2, vx0]}]
links:
  - {a: h1, b: sw1, b-name: h1, a-addrs: [203.0.113.1/24], a-mac: "02:00:5e:00:53:01"}
  - {a: h2, b: sw2, b-name: h2, a-addrs: [203.0.113.2/24]}
  - {a: sw1, a-name: dci, b: sw2, b-name: dci, a-addrs: [192.0.2.1/30], b-addrs: [192.0.2.2/30]}
`

func TestParseLayer2(t *testing.T) {
	got, err := ParseTopology([]byte(stretchedLANYAML), "l2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stretchedLAN(), got, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("topology (-want +got):\n%s", diff)
	}
	// The state file (JSON) and clone keep all of it.
	data, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back Topology
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]*Topology{"state": &back, "clone": got.clone()} {
		if diff := cmp.Diff(stretchedLAN(), c, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what, diff)
		}
	}
}

func TestLayer2Errors(t *testing.T) {
	const head = "name: x\nnodes:\n  - name: a\n    vxlans: [{name: vx0, vni: 1, remote: 192.0.2.2, dev: eth0}]\n"
	const tail = "links:\n  - {a: a, b: b, a-addrs: [192.0.2.1/30]}\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad mac", "name: x\nnodes: [{name: a}, {name: b}]\nlinks:\n  - {a: a, b: b, a-mac: nope}\n",
			"t.yaml:4: a-mac: \"nope\" is not a MAC address"},
		{"group mac", "name: x\nnodes: [{name: a}, {name: b}]\nlinks:\n  - a: a\n    b: b\n    b-mac: \"01:00:5e:00:00:01\"\n",
			"t.yaml:6: link 1 (a-b): 01:00:5e:00:00:01 is a group address, not a unicast MAC"},
		{"vni missing", "name: x\nnodes:\n  - name: a\n    vxlans:\n      - {name: vx0, remote: 192.0.2.2}\n",
			"t.yaml:5: vxlan: vni is missing"},
		{"vni too big", "name: x\nnodes:\n  - name: a\n    vxlans:\n      - {name: vx0, vni: 16777216, remote: 192.0.2.2}\n",
			"t.yaml:5: vxlan: vni 16777216 is outside 0..16777215"},
		{"no remote", "name: x\nnodes:\n  - name: a\n    vxlans:\n      - {name: vx0, vni: 1}\n",
			"t.yaml:5: node a: vxlan vx0: needs a remote address"},
		{"unknown dev", "name: x\nnodes:\n  - name: a\n    vxlans:\n      - name: vx0\n        vni: 1\n        remote: 192.0.2.2\n        dev: eth9\n",
			"t.yaml:8: node a: vxlan vx0: node has no link end \"eth9\""},
		{"families", "name: x\nnodes:\n  - name: a\n    vxlans:\n      - name: vx0\n        vni: 1\n        remote: 192.0.2.2\n        local: \"2001:db8::1\"\n",
			"t.yaml:8: node a: vxlan vx0: local and remote are of different address families"},
		{"unknown port", head + "    bridges:\n      - name: br0\n        ports: [eth0, vx0, eth7]\n  - name: b\n" + tail,
			"t.yaml:7: node a: bridge br0: node has no interface \"eth7\""},
		{"port twice", head + "    bridges:\n      - {name: br0, ports: [eth0]}\n      - name: br1\n        ports: [eth0]\n  - name: b\n" + tail,
			"t.yaml:8: node a: bridge br1: eth0 is already a port of bridge br0"},
		{"bridge port", head + "    bridges:\n      - {name: br0, ports: [eth0]}\n      - name: br1\n        ports: [br0]\n  - name: b\n" + tail,
			"t.yaml:8: node a: bridge br1: br0 cannot be a bridge port"},
		{"name taken", head + "    bridges:\n      - name: eth0\n  - name: b\n" + tail,
			"t.yaml:6: node a: bridge eth0: the node already has an interface \"eth0\""},
		{"no-learning not a port", head + "    bridges:\n      - name: br0\n        ports: [eth0]\n        no-learning: [vx0]\n  - name: b\n" + tail,
			"t.yaml:8: node a: bridge br0: no-learning: vx0 is not a port of the bridge"},
		{"fdb port", head + "    bridges:\n      - name: br0\n        ports: [eth0]\n        fdb:\n          - mac: \"02:00:00:00:00:01\"\n            port: vx0\n  - name: b\n" + tail,
			"t.yaml:10: node a: bridge br0: fdb: \"vx0\" is not a port of the bridge"},
		{"fdb unknown key", head + "    bridges:\n      - name: br0\n        fdb: [{mac: \"02:00:00:00:00:01\", dev: eth0}]\n  - name: b\n" + tail,
			"t.yaml:7: fdb entry: unknown key \"dev\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadTopology(path)
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if msg := strings.ReplaceAll(err.Error(), path, "t.yaml"); !strings.Contains(msg, tc.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", msg, tc.want)
			}
		})
	}
}

// TestLayer2 builds a LAN stretched over a VXLAN with netlink alone and
// sends frames across it; SetMaster cuts and restores a host's port.
func TestLayer2(t *testing.T) {
	l := NewTest(t, stretchedLAN())

	err := l.Do("h1", func() error {
		link, err := netlink.LinkByName("eth0")
		if err == nil && link.Attrs().HardwareAddr.String() != h1MAC.String() {
			t.Errorf("h1 eth0 MAC %s, want %s", link.Attrs().HardwareAddr, h1MAC)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = l.Do("sw1", func() error {
		br, err := netlink.LinkByName("br0")
		if err != nil {
			return err
		}
		if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("sw1 br0: type %s, flags %v; want an up bridge", br.Type(), br.Attrs().Flags)
		}
		vx, err := netlink.LinkByName("vx0")
		if err != nil {
			return err
		}
		if x, ok := vx.(*netlink.Vxlan); !ok || x.VxlanId != 42 || x.Port != 4789 || !x.Group.Equal(net.ParseIP("192.0.2.2")) || x.MasterIndex != br.Attrs().Index {
			t.Errorf("sw1 vx0 = %+v; want VNI 42 to 192.0.2.2:4789 in br0", vx)
		}
		if pi, err := netlink.LinkGetProtinfo(vx); err != nil || pi.Learning {
			t.Errorf("sw1 vx0 learning = %v, %v; want off", pi.Learning, err)
		}
		port, err := netlink.LinkByName("h1")
		if err != nil {
			return err
		}
		fdb, err := netlink.NeighList(port.Attrs().Index, unix.AF_BRIDGE)
		if err != nil {
			return err
		}
		static := false
		for _, e := range fdb {
			if e.HardwareAddr.String() == h1MAC.String() && e.State&netlink.NUD_NOARP != 0 {
				static = true
			}
		}
		if !static {
			t.Errorf("sw1 fdb on h1 has no static entry for %s: %+v", h1MAC, fdb)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if !udpReaches(t, l, 3) {
		t.Fatal("h1 cannot reach h2 across the VXLAN")
	}
	// h1 learnt h2's MAC by ARP; FlushNeighbors forgets it.
	neighbors := func() (ips []string) {
		t.Helper()
		if err := l.Do("h1", func() error {
			link, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			ns, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
			for _, nb := range ns {
				if nb.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) == 0 {
					ips = append(ips, nb.IP.String())
				}
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ips
	}
	if got := neighbors(); len(got) != 1 || got[0] != "203.0.113.2" {
		t.Errorf("h1 neighbours %v, want [203.0.113.2]", got)
	}
	if err := l.FlushNeighbors("h1", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := neighbors(); len(got) != 0 {
		t.Errorf("h1 neighbours after FlushNeighbors: %v", got)
	}
	if err := l.SetMaster("sw2", "h2", ""); err != nil {
		t.Fatal(err)
	}
	if udpReaches(t, l, 1) {
		t.Error("h1 reached h2 with h2's switch port out of the bridge")
	}
	if err := l.SetMaster("sw2", "h2", "br0"); err != nil {
		t.Fatal(err)
	}
	if !udpReaches(t, l, 3) {
		t.Error("h1 cannot reach h2 after SetMaster put its port back")
	}
	if err := l.SetMaster("sw2", "h2", "dci"); err == nil || !strings.Contains(err.Error(), "dci is not a bridge") {
		t.Errorf("SetMaster to a non-bridge: %v", err)
	}
}

// udpReaches sends a datagram from h1 to h2 up to tries times and says
// whether one arrived (within a second of its sending).
func udpReaches(t *testing.T, l *Lab, tries int) bool {
	t.Helper()
	var in, out *net.UDPConn
	if err := l.Do("h2", func() (err error) {
		in, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("203.0.113.2")})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := l.Do("h1", func() (err error) {
		out, err = net.DialUDP("udp4", nil, in.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 16)
	for range tries {
		if _, err := out.Write([]byte("hello")); err != nil {
			continue // an ICMP error from an earlier try
		}
		_ = in.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := in.Read(buf); err == nil && string(buf[:n]) == "hello" {
			return true
		}
	}
	return false
}
