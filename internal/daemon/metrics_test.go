package daemon

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/xtr"
)

// TestMetricNamesLint runs Prometheus' linter over every counter a
// Map-Server, Map-Resolver and xTR register: names, units, help texts.
func TestMetricNamesLint(t *testing.T) {
	// The Map-Server's daemon is also an RTR, so its counters are linted too.
	d, _, _ := start(t, twoSites+"rtr: {map-servers: [192.0.2.1]}\n")
	// The xTR's Map-Server is an address nobody listens on.
	a := lisptest.LoopbackAddrs(t, 2, 4342)
	xd := startNode(t, fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  itr: true
  map-resolvers: [%[1]s]
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
  database: [{eid-prefix: 198.51.100.0/24, locators: [{address: %[2]s}]}]
`, a[0], a[1]), xtr.NopDataPlane{})
	for _, reg := range []*admin.Collector{admin.NewCollector(d.Stats()), admin.NewCollector(xd.Stats())} {
		problems, err := testutil.CollectAndLint(reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
	}
	for _, s := range d.Stats().Snapshot() {
		if s.Desc.Help == "" {
			t.Errorf("%s has no help text", s.Desc.Key())
		}
	}
}
