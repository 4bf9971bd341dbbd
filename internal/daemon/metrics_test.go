package daemon

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/xtr"
)

// TestMetricNamesLint runs Prometheus' linter over every counter a
// Map-Server, Map-Resolver and xTR register: names, units, help texts.
func TestMetricNamesLint(t *testing.T) {
	d, _, _ := start(t, twoSites)
	xd := startNode(t, `
control: {addresses: [127.0.4.12], port: 4342}
xtr:
  etr: true
  itr: true
  map-resolvers: [127.0.4.1]
  map-servers: [{address: 127.0.4.1, key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
  database: [{eid-prefix: 198.51.100.0/24, locators: [{address: 127.0.4.12}]}]
`, xtr.NopDataPlane{})
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
