package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

// TestProbeReplyMarksProbedLocator: with the default wildcard control
// socket, an RLOC-probe to one of the ETR's locators is answered from
// that locator with its p bit set (RFC 9301 §5.4), the other locator's
// clear — Open Overlay Router goes by it.
func TestProbeReplyMarksProbedLocator(t *testing.T) {
	addrs := lisptest.LoopbackAddrs(t, 3, 0)
	first, second, prober := addrs[0], addrs[1], addrs[2]
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(prober, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := lisptest.Start(t, fmt.Sprintf(`
control: {port: 0}
xtr:
  etr: true
  database:
    - eid-prefix: 198.51.100.0/24
      locators: [{address: %s}, {address: %s}]
`, first, second), newWith(Options{Devices: &Devices{
		TUN:      func(_ uint32, mtu int) (dataplane.TUN, error) { return dptest.NewTUN(mtu, 16), nil },
		Underlay: dptest.NewNet().Attach(16, first, second),
	}}))
	port := n.D.transport.Addrs()[0].Port()
	for _, probed := range []netip.Addr{first, second} {
		req := &wire.MapRequest{Probe: true, Nonce: 42, ITRRLOCs: []wire.Address{wire.AddrFromIP(prober)},
			Records: []wire.RequestRecord{{MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))}}}
		b, err := wire.Encode(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDPAddrPort(b, netip.AddrPortFrom(probed, port)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		k, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		m, err := wire.Decode(buf[:k])
		if err != nil {
			t.Fatal(err)
		}
		rep, ok := m.(*wire.MapReply)
		if !ok || !rep.Probe || len(rep.Records) != 1 {
			t.Fatalf("reply to a probe of %v: %v", probed, m)
		}
		if from.Addr().Unmap() != probed {
			t.Errorf("probe of %v answered from %v", probed, from.Addr())
		}
		for _, l := range rep.Records[0].Locators {
			ip, _ := l.Address.Addr()
			if l.Probed() != (ip == probed) {
				t.Errorf("probe of %v: locator %v has p=%v", probed, ip, l.Probed())
			}
		}
	}
}
