package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
)

// anycastTopology: two regions, each with a Map-Server/Map-Resolver that
// also answers on the shared anycast address 198.18.100.1, and one xTR
// site; each region's router prefers its own Map-Resolver.
//
//	ha ── xa ── rw ───── re ── xb ── hb
//	            │         │
//	           ms1       ms2        (both: lo 198.18.100.1/32)
func anycastTopology() *lab.Topology {
	b := lab.NewBuilder("anycast")
	r := func(dst, via string, metric int) lab.Route { return lab.Via(dst, via).WithMetric(metric) }
	b.Node("rw", "router", true,
		r("198.18.100.1/32", "198.18.11.2", 10), r("198.18.100.1/32", "198.18.10.2", 20),
		r("198.18.12.0/24", "198.18.10.2", 0), r("198.18.14.0/24", "198.18.10.2", 0))
	b.Node("re", "router", true,
		r("198.18.100.1/32", "198.18.12.2", 10), r("198.18.100.1/32", "198.18.10.1", 20),
		r("198.18.11.0/24", "198.18.10.1", 0), r("198.18.13.0/24", "198.18.10.1", 0))
	b.Node("ms1", "ms", false, lab.Via("198.18.0.0/15", "198.18.11.1"))
	b.Node("ms2", "ms", false, lab.Via("198.18.0.0/15", "198.18.12.1"))
	b.Node("xa", "xtr", true, lab.Via("198.18.0.0/15", "198.18.13.1"))
	b.Node("xb", "xtr", true, lab.Via("198.18.0.0/15", "198.18.14.1"))
	b.Node("ha", "host", false, lab.Via("0.0.0.0/0", "198.51.100.1"))
	b.Node("hb", "host", false, lab.Via("0.0.0.0/0", "203.0.113.1"))
	for _, ms := range []string{"ms1", "ms2"} {
		b.T.Node(ms).Loopbacks = []netip.Prefix{netip.MustParsePrefix("198.18.100.1/32")}
	}
	link := func(a, z, aa, za string) { b.Link(a, "", z, "", aa, za) }
	link("rw", "re", "198.18.10.1/24", "198.18.10.2/24")
	link("rw", "ms1", "198.18.11.1/24", "198.18.11.2/24")
	link("re", "ms2", "198.18.12.1/24", "198.18.12.2/24")
	link("rw", "xa", "198.18.13.1/24", "198.18.13.2/24")
	link("re", "xb", "198.18.14.1/24", "198.18.14.2/24")
	link("xa", "ha", "198.51.100.1/24", "198.51.100.10/24")
	link("xb", "hb", "203.0.113.1/24", "203.0.113.10/24")
	return b.T
}

const anycastMS = `
control: {addresses: [%s, 198.18.100.1]}
map-server:
  sites:
    - name: site-a
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: site-a-key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
    - name: site-b
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: site-b-key}]
      eid-prefixes: [{prefix: 203.0.113.0/24}]
map-resolver: {}
`

const anycastXTR = `
xtr:
  itr: true
  etr: true
  map-resolvers: [198.18.100.1]
  map-servers:
    - {address: 198.18.11.2, key-id: 1, algorithm: hmac-sha-256-128, secret: %[1]s}
    - {address: 198.18.12.2, key-id: 1, algorithm: hmac-sha-256-128, secret: %[1]s}
  register-interval: 5s
  eid-routes: [0.0.0.0/1, 128.0.0.0/1]
  database: [{eid-prefix: %[2]s, locators: [{address: %[3]s}]}]
`

// TestAnycastMapResolvers: two Map-Resolvers share one anycast address;
// each ITR reaches the nearest, and when one is cut off the other answers.
func TestAnycastMapResolvers(t *testing.T) {
	l := lab.NewTest(t, anycastTopology())
	n := &network{t: t, lab: l, dir: t.TempDir(), procs: map[string]*lab.LispdProc{}}
	cfgs := map[string]string{
		"ms1": fmt.Sprintf(anycastMS, "198.18.11.2"),
		"ms2": fmt.Sprintf(anycastMS, "198.18.12.2"),
		"xa":  fmt.Sprintf(anycastXTR, "site-a-key", "198.51.100.0/24", "198.18.13.2"),
		"xb":  fmt.Sprintf(anycastXTR, "site-b-key", "203.0.113.0/24", "198.18.14.2"),
	}
	for node, c := range cfgs {
		if err := os.WriteFile(filepath.Join(n.dir, node+".yaml"), []byte(fmt.Sprintf("admin: {socket: %s}\n%s", l.SocketPath(node), c)), 0o600); err != nil {
			t.Fatal(err)
		}
		n.runLispd(node)
	}
	for _, ms := range []string{"ms1", "ms2"} {
		n.waitPrefixes(ms, 2)
	}
	ecms := func(node string) uint64 {
		cs, err := query(n, node, (*adminapi.Client).Statistics)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Name == "messages_received" && c.Labels["type"] == "ecm" {
				return c.Value
			}
		}
		return 0
	}
	w0, e0 := ecms("ms1"), ecms("ms2")
	if err := n.ping("ha", "203.0.113.10"); err != nil {
		t.Fatal(err)
	}
	w1, e1 := ecms("ms1"), ecms("ms2")
	// xa's request went to ms1 (nearest); xb's, for the way back, to ms2.
	if w1 == w0 || e1 == e0 {
		t.Errorf("requests: ms1 %d->%d, ms2 %d->%d; want each region's own Map-Resolver used", w0, w1, e0, e1)
	}
	// Cut ms1 off: the anycast address now leads to ms2.
	if err := l.SetLink("rw", "ms1", false); err != nil {
		t.Fatal(err)
	}
	if err := n.clearMapCache("xa"); err != nil {
		t.Fatal(err)
	}
	before := ecms("ms2")
	if err := n.ping("ha", "203.0.113.10"); err != nil {
		t.Error("with ms1 gone:", err)
	}
	if ecms("ms2") == before {
		t.Error("ms2 did not answer for the lost ms1")
	}
}
