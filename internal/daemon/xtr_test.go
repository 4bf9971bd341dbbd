package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/xtr"
)

// recorder is a data plane that remembers what it was told.
type recorder struct {
	mu    sync.Mutex
	cache map[mapping.EID]xtr.CacheEntry
	local []mapping.EID
}

func newRecorder() *recorder { return &recorder{cache: map[mapping.EID]xtr.CacheEntry{}} }

func (r *recorder) SetMapCache(e xtr.CacheEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache[e.EID] = e
}
func (r *recorder) DeleteMapCache(eid mapping.EID) { r.mu.Lock(); delete(r.cache, eid); r.mu.Unlock() }
func (r *recorder) FlushMapCache()                 { r.mu.Lock(); clear(r.cache); r.mu.Unlock() }
func (r *recorder) SetLocatorUp(eid mapping.EID, rloc netip.Addr, up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.cache[eid]
	for i := range e.Locators {
		if e.Locators[i].Addr == rloc {
			e.Locators[i].Up = up
		}
	}
}
func (r *recorder) SetLocalEIDs(eids []mapping.EID) { r.mu.Lock(); r.local = eids; r.mu.Unlock() }

func (r *recorder) get(eid string) (xtr.CacheEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[mapping.NewEID(0, netip.MustParsePrefix(eid))]
	return e, ok
}

// TestXTRControlPlane runs a Map-Server/Map-Resolver, a multihomed ETR and
// an ITR as three daemons on loopback addresses and walks the control
// plane: registration, resolution forwarded to the ETR, RLOC probing, a
// database change reaching the ITR by publish/subscribe.
func TestXTRControlPlane(t *testing.T) {
	// Each daemon listens on port 4342 of a loopback address of its own:
	// the Map-Server, the ETR (a second locator where nobody listens, and
	// a third it moves to) and the ITR.
	a := lisptest.LoopbackAddrs(t, 5, 4342)
	msAddr, etrAddr, etrDown, etrMoved, itrAddr := a[0], a[1], a[2], a[3], a[4]
	msYAML := fmt.Sprintf(`
control: {addresses: [%s], port: 4342}
map-server:
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
      eid-prefixes: [{prefix: 198.51.100.0/24, accept-more-specifics: true}]
    - name: client
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: clientkey}]
      eid-prefixes: [{prefix: 203.0.113.0/24}]
map-resolver: {}
`, msAddr)
	etrYAML := fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  itr: true
  map-resolvers: [%[1]s]
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
  register-interval: 1s
  database:
    - eid-prefix: 198.51.100.0/24
      locators:
        - {address: %[2]s, priority: 1, weight: 50}
        - {address: %[3]s, priority: 1, weight: 50}
`, msAddr, etrAddr, etrDown)
	itrYAML := fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  itr: true
  etr: true
  subscribe: true
  map-resolvers: [%[1]s]
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: clientkey}]
  register-interval: 1s
  rloc-probing: {interval: 200ms}
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: %[2]s}]
`, msAddr, itrAddr)
	ms := startNode(t, msYAML, nil)
	etr := startNode(t, etrYAML, xtr.NopDataPlane{})
	rec := newRecorder()
	itr := startNode(t, itrYAML, rec)
	lisptest.Eventually(t, 5*time.Second, func() bool { return ms.MapServer().Registrations() == 2 }, "both sites registered")
	// The Map-Server counts the registration before its Map-Notify has
	// reached the ETR: wait for the ETR's own view too.
	lisptest.Eventually(t, 5*time.Second, func() bool {
		return etr.XTR().DatabaseView().MapServers[0].State == "registered"
	}, "ETR registration state registered (Map-Notify received)")

	itr.XTR().Miss(0, netip.MustParseAddr("198.51.100.20"))
	lisptest.Eventually(t, 5*time.Second, func() bool { _, ok := rec.get("198.51.100.0/24"); return ok }, "map-cache entry")
	e, _ := rec.get("198.51.100.0/24")
	if len(e.Locators) != 2 || e.Negative {
		t.Fatalf("cached %+v", e)
	}
	mc := itr.XTR().MapCache()
	if len(mc) != 1 || !mc[0].Subscribed {
		t.Errorf("show map-cache: %+v", mc)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(ms.MapServer().Subscriptions()) == 1 }, "subscription at the Map-Server")
	// The ETR's address answers probes; nobody listens on etrDown, which goes
	// down, and the data plane hears of it.
	lisptest.Eventually(t, 5*time.Second, func() bool {
		rl := itr.XTR().RLOCProbing()
		return len(rl) == 2 && rl[0].Replies > 0 && rl[0].State == "up" && rl[1].State == "down"
	}, "RLOC probe verdicts")
	if e, _ := rec.get("198.51.100.0/24"); e.Locators[1].Up || !e.Locators[0].Up {
		t.Errorf("data plane locator states: %+v", e.Locators)
	}

	// A miss outside every site: negative, natively-forward, 15 minutes.
	itr.XTR().Miss(0, netip.MustParseAddr("192.0.2.77"))
	lisptest.Eventually(t, 5*time.Second, func() bool { _, ok := rec.get("192.0.0.0/6"); return ok }, "negative entry")
	if n, _ := rec.get("192.0.0.0/6"); !n.Negative {
		t.Errorf("negative entry: %+v", n)
	}

	// The ETR's database changes: the Map-Server publishes, the ITR's
	// cache follows without asking.
	etr.XTR().SetDatabase([]xtr.DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")),
		Locators: []mapping.Locator{{Addr: etrMoved, Priority: 1, Weight: 100}}}})
	lisptest.Eventually(t, 5*time.Second, func() bool {
		e, _ := rec.get("198.51.100.0/24")
		return len(e.Locators) == 1 && e.Locators[0].Addr == etrMoved
	}, "publication applied")
	lisptest.Eventually(t, 5*time.Second, func() bool { return ms.MapServer().PendingNotifies() == 0 }, "publication acknowledged")

	// A clean shutdown ends the subscription (its nonce above the
	// publication's), so the Map-Server stops publishing to it.
	itr.Stop()
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(ms.MapServer().Subscriptions()) == 0 }, "unsubscribed")
}

// A lispd ETR keeps registering with the replay check on (issue 12,
// finding 2): across its own restart (its nonces start at the clock) and
// across a restart of the Map-Server (which reads its replay state back).
func TestRegistersAcrossRestarts(t *testing.T) {
	a := lisptest.LoopbackAddrs(t, 2, 4342)
	msAddr, etrAddr := a[0], a[1]
	msYAML := fmt.Sprintf(`
control: {addresses: [%s], port: 4342}
map-server:
  state-directory: %s
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
`, msAddr, t.TempDir())
	etrYAML := fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
  register-interval: 1s
  database: [{eid-prefix: 198.51.100.0/24, locators: [{address: %[2]s}]}]
`, msAddr, etrAddr)
	// restart stops d and starts a new daemon from yaml once its address
	// is free again.
	restart := func(d *Daemon, at netip.Addr, yaml string, dp xtr.DataPlane) *Daemon {
		d.Stop()
		lisptest.Eventually(t, 5*time.Second, func() bool {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(at, 4342)))
			if err == nil {
				c.Close()
			}
			return err == nil
		}, "control port free after the stop")
		return startNode(t, yaml, dp)
	}
	accepted := func(ms *Daemon, more uint64) {
		t.Helper()
		base := lisptest.Counter(t, ms.Stats(), "map_server.registers_accepted")
		lisptest.Eventually(t, 5*time.Second, func() bool {
			return lisptest.Counter(t, ms.Stats(), "map_server.registers_accepted") >= base+more
		}, "Map-Registers accepted")
		if n := lisptest.Counter(t, ms.Stats(), "map_server.registers_rejected{reason=nonce-not-increasing}"); n != 0 {
			t.Errorf("%d Map-Registers of the lispd ETR refused as replays", n)
		}
	}
	ms := startNode(t, msYAML, nil)
	etr := startNode(t, etrYAML, xtr.NopDataPlane{})
	accepted(ms, 2)
	restart(etr, etrAddr, etrYAML, xtr.NopDataPlane{})
	accepted(ms, 2)
	ms = restart(ms, msAddr, msYAML, nil)
	accepted(ms, 2)
	if ms.MapServer().Registrations() != 1 {
		t.Error("the ETR's prefix is not registered after the restarts")
	}
}
