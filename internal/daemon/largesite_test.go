package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
)

// TestLargeSiteRegisters: an ETR daemon whose database holds 5,000 /32s
// registers every one with a Map-Server daemon over UDP (issue 12, finding
// 4: from 256 entries, one Map-Register could not even be encoded and no
// prefix of the site registered). Each Map-Register is acknowledged, so
// none is left waiting.
func TestLargeSiteRegisters(t *testing.T) {
	const hosts = 5000
	addrs := lisptest.LoopbackAddrs(t, 2, 4342)
	msAddr, etrRLOC := addrs[0], addrs[1]
	ms := lisptest.Start(t, fmt.Sprintf(`
control: {addresses: [%s], port: 4342}
map-server:
  sites:
    - name: roaming
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: roamkey}]
      eid-prefixes: [{prefix: 198.18.0.0/16, accept-more-specifics: true}]
`, msAddr), newWith(Options{})).D
	var db strings.Builder
	for i := range hosts {
		fmt.Fprintf(&db, "    - {eid-prefix: 198.18.%d.%d/32, locators: [{address: %s}]}\n", i/250, 1+i%250, etrRLOC)
	}
	etr := lisptest.Start(t, fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  data-plane: none
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: roamkey}]
  database:
%[3]s`, msAddr, etrRLOC, db.String()), newWith(Options{})).D
	lisptest.Eventually(t, 20*time.Second, func() bool { return ms.MapServer().Registrations() == hosts },
		"all 5,000 prefixes registered")
	lisptest.Eventually(t, 20*time.Second, func() bool {
		v := etr.XTR().DatabaseView().MapServers
		return len(v) == 1 && v[0].State == "registered"
	}, "every Map-Register acknowledged")
	if n := etr.XTR().DatabaseView().MapServers[0].Registers; n < hosts/255 {
		t.Errorf("%d Map-Registers for %d records", n, hosts)
	}
}
