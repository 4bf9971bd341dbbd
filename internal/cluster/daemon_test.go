package cluster_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/cluster/etcdtest"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/daemon"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Two lispd daemons with map-server.store etcd: a Map-Register sent to one
// over UDP shows in the other's show site, held by the first node, and
// both list each other in show cluster.
func TestDaemonsShareRegistrations(t *testing.T) {
	e, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	conf := func(node string) string {
		return fmt.Sprintf(`control: {addresses: [127.0.0.1], port: 0}
map-server:
  store:
    etcd: {endpoints: [%s], node: %s, lease-ttl: 2s, dial-timeout: 1s}
  sites:
    - name: dc1
      keys: [{key-id: 1, secret: dc1-secret}]
      eid-prefixes: [{prefix: 198.51.100.0/24, accept-more-specifics: true}]
map-resolver: {}
`, e.Endpoint(), node)
	}
	build := func(c *config.Config) (*daemon.Daemon, error) { return daemon.New(c, daemon.Options{}) }
	a := lisptest.Start(t, conf("a"), build)
	b := lisptest.Start(t, conf("b"), build)

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	vm := mapping.HostEID(0, netip.MustParseAddr("198.51.100.10"))
	m := mapping.Mapping{EID: vm, TTL: 1440, Locators: []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.11"),
		Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
	reg := &wire.MapRegister{ProxyReply: true, WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: 1, KeyID: 1,
		Algorithm: wire.AuthHMACSHA256, Records: []wire.EIDRecord{m.Record()}, HasXTRID: true, XTRID: [16]byte{1}, SiteID: 1}}
	raw, err := wire.EncodeSigned(reg, []byte("dc1-secret"), wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteToUDPAddrPort(raw, a.D.ControlAddrs()[0]); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	if _, _, err := conn.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("no Map-Notify from a: %v", err)
	}
	cb := adminapi.NewClient(b.Socket)
	lisptest.Eventually(t, 10*time.Second, func() bool {
		sites, err := cb.Sites(context.Background(), "dc1")
		return err == nil && len(sites) == 1 && len(sites[0].Registrations) == 1 &&
			sites[0].Registrations[0].RegisteredBy[0].Node == "a"
	}, "b's show site does not show a's registration held by a")
	lisptest.Eventually(t, 10*time.Second, func() bool {
		c, err := cb.Cluster(context.Background())
		return err == nil && c.Node == "b" && c.Connected && len(c.Nodes) == 2 && c.Nodes[0].Name == "a" &&
			c.Nodes[0].Alive && c.Nodes[0].Prefixes == 1
	}, "b's show cluster does not list a with its prefix")
}
