package daemon

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
)

// TestLISPSECDaemons: three daemons on loopback — an ITR with lisp-sec
// required, a Map-Server/Map-Resolver whose LISP-SEC keys are in its
// map-resolver section, an ETR with lisp-sec on — resolve an EID with a
// signed, verified Map-Reply; the configuration keys reach every role.
// Reloaded with a key the Map-Resolver does not share, the ITR's next
// request is refused at the Map-Server and nothing new is installed.
func TestLISPSECDaemons(t *testing.T) {
	addrs := lisptest.LoopbackAddrs(t, 3, 4342)
	msAddr, etrRLOC, itrRLOC := addrs[0], addrs[1], addrs[2]
	ms := runNodeWith(t, fmt.Sprintf(`
control: {addresses: [%[1]s], port: 4342}
map-server:
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}, {prefix: 192.0.2.0/24}]
map-resolver:
  lisp-sec-keys: [{key-id: 4, secret: itr-mr-key}]
`, msAddr), Options{}, nil)
	runNodeWith(t, fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  data-plane: none
  lisp-sec: required
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
  database: [{eid-prefix: 198.51.100.0/24, locators: [{address: %[2]s}]}, {eid-prefix: 192.0.2.0/24, locators: [{address: %[2]s}]}]
`, msAddr, etrRLOC), Options{}, nil)
	itrConfig := func(secret string) string {
		return fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  itr: true
  data-plane: none
  lisp-sec: required
  lisp-sec-key: {key-id: 4, secret: %[3]s}
  map-resolvers: [%[1]s]
  database: [{eid-prefix: 203.0.113.0/24, locators: [{address: %[2]s}]}]
`, msAddr, itrRLOC, secret)
	}
	itr := runNodeWith(t, itrConfig("itr-mr-key"), Options{}, nil)
	lisptest.Eventually(t, 5*time.Second, func() bool { return ms.MapServer().Registrations() == 2 }, "ETR registered")

	itr.XTR().Resolve(mapping.HostEID(0, netip.MustParseAddr("198.51.100.20")))
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(itr.XTR().MapCache()) == 1 }, "ITR installed the mapping")
	for _, c := range []struct {
		d    *Daemon
		key  string
		want uint64
	}{
		{ms.Daemon, "map_server.lispsec_forwarded", 1},
		{itr.Daemon, "itr.lispsec_replies_verified", 1},
		{itr.Daemon, "itr.map_cache_installs", 1},
	} {
		if got := lisptest.Counter(t, c.d.Stats(), c.key); got != c.want {
			t.Errorf("%s = %d, want %d", c.key, got, c.want)
		}
	}

	if _, err := itr.reload(t, itrConfig("not-the-map-resolvers")); err != nil {
		t.Fatal(err)
	}
	itr.XTR().Resolve(mapping.HostEID(0, netip.MustParseAddr("192.0.2.20")))
	lisptest.Eventually(t, 5*time.Second, func() bool {
		return lisptest.Counter(t, ms.Stats(), "map_server.lispsec_requests_dropped{reason=otk}") == 1
	}, "Map-Server refused the request with the wrong key")
	time.Sleep(100 * time.Millisecond)
	if mc := itr.XTR().MapCache(); len(mc) != 1 {
		t.Errorf("map-cache after a request the Map-Server refused: %+v", mc)
	}
}
