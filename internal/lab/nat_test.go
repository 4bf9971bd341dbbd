package lab

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// natTopo is an inside host behind a NAT node whose outside faces a public
// host holding two addresses (two destinations).
func natTopo(symmetric bool) *Topology {
	b := NewBuilder("nat")
	b.Node("in", "host", false, Via("0.0.0.0/0", "198.18.1.1"))
	b.Node("nat", "nat", true)
	b.Node("pub", "host", false)
	b.Link("in", "", "nat", "", "198.18.1.2/24", "198.18.1.1/24")
	b.Link("nat", "", "pub", "", "192.0.2.1/24", "192.0.2.10/24 192.0.2.11/24")
	b.T.Nodes[1].NAT = &NAT{Outside: "eth1", Symmetric: symmetric, UDPTimeout: 2}
	return b.T
}

// udpIn opens a UDP socket at addr inside node.
func udpIn(t *testing.T, l *Lab, node, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := l.Do(node, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readFrom(c *net.UDPConn, wait time.Duration) (netip.AddrPort, bool) {
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64)
	_, from, err := c.ReadFromUDPAddrPort(buf)
	return from, err == nil
}

func TestNATNode(t *testing.T) {
	RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	for _, symmetric := range []bool{false, true} {
		name := map[bool]string{false: "endpoint-independent", true: "symmetric"}[symmetric]
		t.Run(name, func(t *testing.T) {
			l := NewTest(t, natTopo(symmetric))
			in := udpIn(t, l, "in", "198.18.1.2:40000")
			pub := udpIn(t, l, "pub", "0.0.0.0:7000")
			stranger := udpIn(t, l, "pub", "192.0.2.11:7001")
			var seen []netip.AddrPort
			for _, dst := range []string{"192.0.2.10:7000", "192.0.2.11:7000"} {
				if _, err := in.WriteToUDPAddrPort([]byte("hi"), netip.MustParseAddrPort(dst)); err != nil {
					t.Fatal(err)
				}
				from, ok := readFrom(pub, 2*time.Second)
				if !ok {
					t.Fatalf("nothing reached %s through the NAT", dst)
				}
				if from.Addr() != netip.MustParseAddr("192.0.2.1") {
					t.Errorf("to %s from %v: not translated to the outside address", dst, from)
				}
				seen = append(seen, from)
			}
			if same := seen[0] == seen[1]; same == symmetric {
				t.Errorf("mappings toward two destinations %v: want them %s", seen, map[bool]string{false: "equal", true: "different"}[symmetric])
			}
			if !symmetric && seen[0].Port() != 40000 {
				t.Errorf("port %d, want the inside port 40000 kept", seen[0].Port())
			}
			// An answer passes; a stranger to the mapping does not.
			if _, err := pub.WriteToUDPAddrPort([]byte("re"), seen[0]); err != nil {
				t.Fatal(err)
			}
			if _, ok := readFrom(in, 2*time.Second); !ok {
				t.Error("the answer did not come back through the NAT")
			}
			if _, err := stranger.WriteToUDPAddrPort([]byte("x"), seen[0]); err != nil {
				t.Fatal(err)
			}
			if from, ok := readFrom(in, 500*time.Millisecond); ok {
				t.Errorf("unsolicited datagram from %v passed the NAT", from)
			}
			if n, err := l.NATMappings("nat"); err != nil || n != 2 {
				t.Errorf("NAT holds %d mappings (%v), want 2", n, err)
			}
			// Flushed (a NAT reboot): the mappings are gone, and the answer
			// no longer passes.
			if err := l.FlushNAT("nat"); err != nil {
				t.Fatal(err)
			}
			if n, _ := l.NATMappings("nat"); n != 0 {
				t.Errorf("%d mappings after the flush", n)
			}
			pub.WriteToUDPAddrPort([]byte("re"), seen[0])
			if _, ok := readFrom(in, 500*time.Millisecond); ok {
				t.Error("an answer passed a flushed NAT")
			}
			// An idle mapping times out after udp-timeout (2 s).
			in.WriteToUDPAddrPort([]byte("hi"), netip.MustParseAddrPort("192.0.2.10:7000"))
			readFrom(pub, 2*time.Second)
			if v, err := l.Sysctl("nat", "net.netfilter.nf_conntrack_udp_timeout"); err != nil || strings.TrimSpace(v) != "2" {
				t.Errorf("udp timeout %q, %v", v, err)
			}
			time.Sleep(3500 * time.Millisecond)
			if n, _ := l.NATMappings("nat"); n != 0 {
				t.Errorf("%d mappings after 3.5 s idle with udp-timeout 2", n)
			}
		})
	}
}

func TestNATYAML(t *testing.T) {
	topo, err := ParseTopology([]byte(`name: n
nodes:
  - {name: a}
  - name: b
    nat: {outside: eth0, symmetric: true, udp-timeout: 20}
links:
  - {a: a, b: b}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Nodes[1].NAT; got == nil || *got != (NAT{Outside: "eth0", Symmetric: true, UDPTimeout: 20}) {
		t.Errorf("nat %+v", got)
	}
	_, err = ParseTopology([]byte(`name: n
nodes:
  - {name: a}
  - name: b
    nat: {outside: eth7, udp-timeout: -1}
links:
  - {a: a, b: b}
`), "t.yaml")
	for _, want := range []string{`nat outside "eth7" is none of the node's link ends`, "udp-timeout -1 is outside"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}
