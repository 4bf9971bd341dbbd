package interop

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/oor"
)

// TestInstanceIDAcross: site A (lispd, its LAN in the VRF of instance
// 1000) and site B (OOR, database in instance 1000) register and resolve
// in instance 1000 and carry traffic both ways with the instance ID in
// every LISP header.
func TestInstanceIDAcross(t *testing.T) {
	n := newNetwork(t)
	n.startLispd("ms", lispdMS)
	n.startLispd("xa", `
xtr:
  itr: true
  etr: true
  map-resolvers: [198.18.1.2]
  register-interval: 5s
  eid-interfaces: [eid0]
  map-servers: [`+xaMapServer+`]
  database:
    - {eid-prefix: 198.51.100.0/24, instance-id: 1000, locators: [{address: 198.18.2.2}]}
  vrfs: [{instance-id: 1000, name: vrf1000, table: 1000, interfaces: [eid0], eid-routes: [0.0.0.0/1, 128.0.0.0/1]}]
`)
	c := oorXTR(keyB, oor.Mapping{EIDPrefix: netip.MustParsePrefix("203.0.113.0/24"), IID: 1000, Locators: ifaceLocators("up1")})
	c.ProxyETRs = nil
	n.startOOR("xb", c)
	n.waitPrefixes("ms", 2)
	n.waitPing("ha", "203.0.113.10", 10*time.Second)
	n.waitPing("hb", "198.51.100.10", 10*time.Second)
	n.expect("instance 1000 from lispd to OOR", "lisp-data.iid == 1000 && ip.src == 198.18.2.2 && ip.dst == 203.0.113.10")
	n.expect("instance 1000 from OOR to lispd", "lisp-data.iid == 1000 && ip.src == 198.18.3.2 && ip.dst == 198.51.100.10")
	n.expect("OOR's Map-Register of an instance-1000 prefix", "lisp.type == 3 && ip.src == 198.18.3.2 && lisp.lcaf.iid == 1000")
}
