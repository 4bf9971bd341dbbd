package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/oor"
	"github.com/lispd/lispd/internal/tshark"
)

// topology is the network of every interop test:
//
//	ha ── xa ══ core ══ xb ── hb     site A 198.51.100.0/24 2001:db8:a::/64 (xa: RLOCs 198.18.2.2, 198.18.12.2)
//	            │  │                  site B 203.0.113.0/24 2001:db8:b::/64 (xb: RLOCs 198.18.3.2, 198.18.4.2)
//	           ms  px ── core ── nl  mapping system 198.18.1.2; PxTR 198.18.5.2; non-LISP host 192.0.2.10
//
// Each test chooses which nodes run lispd and which OOR. Every xTR has
// a default route on its uplinks (OOR will not use an RLOC interface
// without one) besides the RLOC network's (lispd routes EIDs into its TUN
// with /1 routes, which the RLOC network's route must beat). Core routes
// the EID prefixes to the PxTR.
func topology() *lab.Topology {
	b := lab.NewBuilder("interop")
	v4 := lab.Via
	b.Node("core", "router", true,
		v4("198.51.100.0/24", "198.18.5.2"), v4("203.0.113.0/24", "198.18.5.2"),
		v4("2001:db8:a::/64", "2001:db8:ff:5::2"), v4("2001:db8:b::/64", "2001:db8:ff:5::2"))
	b.Node("ms", "ms", false, v4("0.0.0.0/0", "198.18.1.1"), v4("::/0", "2001:db8:ff:1::1"))
	b.Node("xa", "xtr", true,
		v4("198.18.0.0/15", "198.18.2.1").WithMetric(10), v4("198.18.0.0/15", "198.18.12.1").WithMetric(20),
		v4("0.0.0.0/0", "198.18.2.1").WithMetric(10), v4("0.0.0.0/0", "198.18.12.1").WithMetric(20))
	b.Node("xb", "xtr", true,
		v4("198.18.0.0/15", "198.18.3.1").WithMetric(10), v4("198.18.0.0/15", "198.18.4.1").WithMetric(20),
		v4("0.0.0.0/0", "198.18.3.1").WithMetric(10), v4("0.0.0.0/0", "198.18.4.1").WithMetric(20))
	b.Node("px", "pxtr", true, v4("198.18.0.0/15", "198.18.5.1"), v4("2001:db8:ff::/48", "2001:db8:ff:5::1"),
		v4("192.0.2.0/24", "198.18.5.1"))
	b.Node("ha", "host", false, v4("0.0.0.0/0", "198.51.100.1"), v4("::/0", "2001:db8:a::1"))
	b.Node("hb", "host", false, v4("0.0.0.0/0", "203.0.113.1"), v4("::/0", "2001:db8:b::1"))
	b.Node("nl", "host", false, v4("0.0.0.0/0", "192.0.2.1"))
	b.Link("core", "to-ms", "ms", "eth0", "198.18.1.1/24 2001:db8:ff:1::1/64", "198.18.1.2/24 2001:db8:ff:1::2/64")
	b.Link("core", "to-xa0", "xa", "up0", "198.18.2.1/24", "198.18.2.2/24")
	b.Link("core", "to-xa1", "xa", "up1", "198.18.12.1/24", "198.18.12.2/24")
	b.Link("core", "to-xb1", "xb", "up1", "198.18.3.1/24", "198.18.3.2/24")
	b.Link("core", "to-xb2", "xb", "up2", "198.18.4.1/24", "198.18.4.2/24")
	b.Link("core", "to-px", "px", "eth0", "198.18.5.1/24 2001:db8:ff:5::1/64", "198.18.5.2/24 2001:db8:ff:5::2/64")
	b.Link("core", "to-nl", "nl", "eth0", "192.0.2.1/24", "192.0.2.10/24")
	b.Link("xa", "eid0", "ha", "eth0", "198.51.100.1/24 2001:db8:a::1/64", "198.51.100.10/24 2001:db8:a::10/64")
	b.Link("xb", "eid0", "hb", "eth0", "203.0.113.1/24 2001:db8:b::1/64", "203.0.113.10/24 2001:db8:b::10/64")
	return b.T
}

// The secrets of the two sites. OOR 1.3 signs with HMAC-SHA-1-96 only, and
// writes key-type 1 where RFC 9301 reads key-id 0, algorithm 1.
const (
	keyA = "site-a-key"
	keyB = "site-b-key"
)

// lispdMS is a lispd Map-Server/Map-Resolver for both sites. OOR sends
// random Map-Register nonces, so the sites do not require them to grow.
const lispdMS = `
control: {addresses: [198.18.1.2]}
map-server:
  sites:
    - name: site-a
      require-nonce-increase: false
      keys: [{key-id: 0, algorithm: hmac-sha-1-96, secret: ` + keyA + `}]
      eid-prefixes: [{prefix: 198.51.100.0/24}, {prefix: "2001:db8:a::/64"}, {prefix: 198.51.100.0/24, instance-id: 1000}]
    - name: site-b
      require-nonce-increase: false
      keys: [{key-id: 0, algorithm: hmac-sha-1-96, secret: ` + keyB + `}, {key-id: 1, algorithm: hmac-sha-256-128, secret: ` + keyB + `}]
      eid-prefixes: [{prefix: 203.0.113.0/24}, {prefix: "2001:db8:b::/64"}, {prefix: 203.0.113.0/24, instance-id: 1000}]
map-resolver: {}
`

// lispdXTR is a lispd xTR of one site; the database and Map-Server lines
// come from the test.
func lispdXTR(mapServer, database string) string {
	return `
xtr:
  itr: true
  etr: true
  map-resolvers: [198.18.1.2]
  register-interval: 5s
  rloc-probing: {interval: 1s}
  petrs: [198.18.5.2]
  eid-routes: [0.0.0.0/1, 128.0.0.0/1, "2000::/3"]
  eid-interfaces: [eid0]
  map-servers: [` + mapServer + `]
  database:
` + database
}

// The lispd PxTR: PITR for both sites' prefixes, PETR for their hosts.
const lispdPxTR = `
xtr:
  itr: true
  map-resolvers: [198.18.1.2]
  rloc-probing: {interval: 1s}
  tun-addresses: [198.18.5.2/32]
pitr: {eid-prefixes: [198.51.100.0/24, 203.0.113.0/24, "2001:db8:a::/64", "2001:db8:b::/64"]}
petr:
  allowed-source-eids: [{prefix: 198.51.100.0/24}, {prefix: 203.0.113.0/24}, {prefix: "2001:db8:a::/64"}, {prefix: "2001:db8:b::/64"}]
`

// oorXTR is an OOR xTR of one site registering with the Map-Server at
// 198.18.1.2, with the PETR at 198.18.5.2.
func oorXTR(key string, db ...oor.Mapping) oor.Config {
	ms := netip.MustParseAddr("198.18.1.2")
	return oor.Config{Mode: oor.ModeXTR, Debug: 3,
		MapResolvers: []netip.Addr{ms},
		MapServers:   []oor.MapServer{{Address: ms, KeyType: oor.KeySHA1, Key: key}},
		ProxyETRs:    []oor.Locator{{Address: netip.MustParseAddr("198.18.5.2"), Priority: 1, Weight: 100}},
		Probing:      oor.Probing{Interval: 2, Retries: 1, RetriesInterval: 1},
		Database:     db}
}

// ifaceLocators are OOR locators on interfaces, equal priority and weight.
func ifaceLocators(ifaces ...string) []oor.Locator {
	var ls []oor.Locator
	for _, i := range ifaces {
		ls = append(ls, oor.Locator{Iface: i, IPVersion: 4, Priority: 1, Weight: 100 / len(ifaces)})
	}
	return ls
}

func mappings(locs []oor.Locator, prefixes ...string) []oor.Mapping {
	var ms []oor.Mapping
	for _, p := range prefixes {
		ms = append(ms, oor.Mapping{EIDPrefix: netip.MustParsePrefix(p), Locators: locs})
	}
	return ms
}

// network is a running interop lab.
type network struct {
	t       *testing.T
	lab     *lab.Lab
	dir     string
	lispd   map[string]*lab.LispdProc
	oor     map[string]*oor.Proc
	capture *tshark.Capture
	expects []expectation
	reports []func() // read the capture once it is complete
}

// newNetwork builds the lab, starts a capture on core when tshark is
// there, and checks the capture when the test ends.
func newNetwork(t *testing.T) *network {
	lab.RequireRoot(t)
	if _, err := oor.Find(); err != nil {
		t.Skip(err)
	}
	l := lab.NewTest(t, topology())
	n := &network{t: t, lab: l, dir: t.TempDir(), lispd: map[string]*lab.LispdProc{}, oor: map[string]*oor.Proc{}}
	if err := l.WriteHosts(map[string]netip.Addr{"ha": netip.MustParseAddr("198.51.100.10"),
		"hb": netip.MustParseAddr("203.0.113.10"), "nl": netip.MustParseAddr("192.0.2.10")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tshark.Find(); err != nil {
		t.Log(err, ": no capture")
		return n
	}
	path := filepath.Join(n.dir, "core.pcap")
	// INTEROP_KEEP=DIR keeps each test's capture and process logs there.
	if keep := os.Getenv("INTEROP_KEEP"); keep != "" {
		path = filepath.Join(keep, t.Name()+".pcap")
		t.Cleanup(func() {
			logs, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
			for _, f := range logs {
				if b, err := os.ReadFile(f); err == nil {
					_ = os.WriteFile(filepath.Join(keep, t.Name()+"-"+filepath.Base(f)), b, 0o644)
				}
			}
		})
	}
	c, err := tshark.Start(l, "core", "tshark", path, tshark.LISPFilter)
	if err != nil {
		t.Fatal(err)
	}
	n.capture = c
	t.Cleanup(n.checkCapture)
	return n
}

// checkCapture stops the capture and fails the test on any frame
// Wireshark finds malformed or warns about.
func (n *network) checkCapture() {
	if n.capture == nil {
		return
	}
	if err := n.capture.Stop(); err != nil {
		n.t.Error(err)
	}
	fs, err := tshark.Check(n.capture.Path)
	if err != nil {
		n.t.Error(err)
		return
	}
	for _, f := range fs {
		n.t.Errorf("tshark: %s", f)
	}
	for _, r := range n.reports {
		r()
	}
	for _, e := range n.expects {
		c, err := tshark.Count(n.capture.Path, e.filter)
		if err != nil {
			n.t.Error(err)
		} else if c == 0 {
			n.t.Errorf("capture holds no %s (%s)", e.what, e.filter)
		}
	}
}

// expect has the capture, once stopped, hold at least one frame that
// matches a display filter (tshark's file is complete only then).
func (n *network) expect(what, filter string) {
	n.expects = append(n.expects, expectation{what, filter})
}

type expectation struct{ what, filter string }

func (n *network) startLispd(node, cfg string) {
	n.t.Helper()
	path, err := n.lab.WriteLispdConfig(n.dir, node, cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	p, err := n.lab.StartLispd(node, path, lab.LispdOptions{Binary: lispdBin})
	if err != nil {
		n.t.Fatal(err)
	}
	n.lispd[node] = p
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		n.t.Fatal(err)
	}
}

// reloadLispd writes a node's new configuration and has lispd reload it.
func (n *network) reloadLispd(node, cfg string) {
	n.t.Helper()
	if _, err := n.lab.WriteLispdConfig(n.dir, node, cfg); err != nil {
		n.t.Fatal(err)
	}
	if _, err := query(n, node, (*adminapi.Client).Reload); err != nil {
		n.t.Fatalf("reload %s: %v", node, err)
	}
}

func (n *network) startOOR(node string, c oor.Config) *oor.Proc {
	n.t.Helper()
	p, err := oor.Start(n.lab, node, "oor", c)
	if err != nil {
		n.t.Fatal(err)
	}
	n.oor[node] = p
	return p
}

// waitPrefixes waits until the lispd Map-Server on node holds want
// registered EID prefixes.
func (n *network) waitPrefixes(node string, want int) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.lispd[node].WaitPrefixes(ctx, want); err != nil {
		n.t.Fatal(err)
	}
}

// waitRegistered waits until a lispd ETR holds a Map-Notify for its database.
func (n *network) waitRegistered(node string) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.lispd[node].WaitRegistered(ctx); err != nil {
		n.t.Fatal(err)
	}
}

// query calls f on the admin API of a node's lispd, giving it two seconds.
func query[T any](n *network, node string, f func(*adminapi.Client, context.Context) (T, error)) (T, error) {
	return adminapi.Query(context.Background(), n.lab.SocketPath(node), 2*time.Second, f)
}

// counter reads one of a lispd's counters, summed over its labels.
func (n *network) counter(node, subsystem, name string) uint64 {
	n.t.Helper()
	stats, err := query(n, node, (*adminapi.Client).Statistics)
	if err != nil {
		n.t.Fatal(err)
	}
	var v uint64
	for _, c := range stats {
		if c.Subsystem == subsystem && c.Name == name {
			v += c.Value
		}
	}
	return v
}

// cached returns the locators of the map-cache entry of a lispd ITR for
// prefix, and whether there is one.
func (n *network) cached(node, prefix string) ([]string, bool) {
	n.t.Helper()
	mc, err := query(n, node, func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
		return c.MapCache(ctx, adminapi.MapCacheQuery{})
	})
	if err != nil {
		n.t.Fatal(err)
	}
	for _, e := range mc {
		if e.EIDPrefix.String() == prefix {
			var locs []string
			for _, l := range e.Locators {
				locs = append(locs, l.Address.String())
			}
			return locs, true
		}
	}
	return nil, false
}

// waitPing waits until node reaches dst (OOR drops the first packets of
// a flow while it resolves), failing the test after limit.
func (n *network) waitPing(node, dst string, limit time.Duration) time.Duration {
	n.t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < limit {
		out, e := n.lab.Exec(node, "ping", "-n", "-c", "1", "-W", "1", dst).CombinedOutput()
		if e == nil {
			return time.Since(start)
		}
		err = fmt.Errorf("%v: %s", e, strings.TrimSpace(string(out)))
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Errorf("%s does not reach %s within %v: %v", node, dst, limit, err)
	return limit
}
