package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

// The reload tests run their daemons and peers on 127.0.90.0/24, an
// address range no other test of the repository uses; those on the
// control port move to a /24 that onFreeLoopback finds free.

// onFreeLoopback returns what moves addresses written 127.0.90.N (in a
// configuration, or alone) to a loopback /24 whose control port is free
// on .1 to .100 (lisptest.LoopbackAddrs), so that the test owns every peer
// it talks to on that port.
func onFreeLoopback(t *testing.T) func(string) string {
	t.Helper()
	a := lisptest.LoopbackAddrs(t, 100, wire.ControlPort)[0].As4()
	free := fmt.Sprintf("127.%d.%d.", a[1], a[2])
	return func(s string) string { return strings.ReplaceAll(s, "127.0.90.", free) }
}

// node is a daemon run from a configuration file the test rewrites.
type node struct {
	*Daemon
	path, sock string
}

func runNode(t *testing.T, yaml string, opts Options) *node {
	t.Helper()
	return runNodeWith(t, yaml, opts, nil)
}

// runNodeWith calls before, if not nil, between New and Run.
func runNodeWith(t *testing.T, yaml string, opts Options, before func(*node)) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{path: filepath.Join(dir, "lispd.yaml"), sock: filepath.Join(dir, "lispd.sock")}
	n.load(t, yaml)
	lisptest.StartFile(t, n.path, func(cfg *config.Config) (*Daemon, error) {
		d, err := New(cfg, opts)
		if err == nil {
			n.Daemon = d
			if before != nil {
				before(n)
			}
		}
		return d, err
	})
	return n
}

// load writes yaml (with the node's admin socket) as its configuration.
func (n *node) load(t *testing.T, yaml string) *config.Config {
	t.Helper()
	yaml = lisptest.WithStateDirectory(t, fmt.Sprintf("admin: {socket: %s}\n%s", n.sock, yaml), filepath.Dir(n.path))
	if err := os.WriteFile(n.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(n.path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// reload makes yaml the node's configuration and reloads it.
func (n *node) reload(t *testing.T, yaml string) (adminapi.ReloadResult, error) {
	t.Helper()
	return n.Reload(n.load(t, yaml))
}

// mustApply reloads yaml and checks the answer lists exactly want.
func (n *node) mustApply(t *testing.T, yaml string, want map[string][]string) {
	t.Helper()
	res, err := n.reload(t, yaml)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if diff := cmp.Diff(want, res.Applied); diff != "" || res.Result != "reloaded" {
		t.Fatalf("reload answered %+v (-want +got applied):\n%s", res, diff)
	}
}

// mustRefuse reloads yaml, checks it is refused for exactly keys, and
// that the running configuration is still the one it was.
func (n *node) mustRefuse(t *testing.T, yaml string, keys ...string) {
	t.Helper()
	n.mu.Lock()
	before := n.cfg
	n.mu.Unlock()
	res, err := n.reload(t, yaml)
	var restart *RestartRequiredError
	if !errors.As(err, &restart) || !slices.Equal(restart.Keys, keys) {
		t.Fatalf("reload = %+v, %v; want refused for %q", res, err, keys)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cfg != before {
		t.Error("a refused reload replaced the running configuration")
	}
}

// peerAt is a UDP socket of ours standing in for a router at addr.
func peerAt(t *testing.T, addr string) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, c: c}
}

// recvUntil reads messages until one satisfies ok; false after 3 s.
func (p *peer) recvUntil(ok func(wire.Message) bool) bool {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		b := p.recv(time.Until(deadline))
		if b == nil {
			return false
		}
		if m, err := wire.Decode(b); err == nil && ok(m) {
			return true
		}
	}
	return false
}

// registeredAt lists the prefixes a Map-Server holds registrations for.
func registeredAt(d *Daemon) []string {
	var out []string
	for _, s := range d.MapServer().Sites("") {
		for _, r := range s.Registrations {
			out = append(out, r.EIDPrefix.String())
		}
	}
	slices.Sort(out)
	return out
}

const (
	reloadMS = `
control: {addresses: [%s], port: 4342}
map-server:
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k1}]
      eid-prefixes: [{prefix: 198.51.100.0/24, accept-more-specifics: true}]
`
	reloadETR = `
control: {addresses: [127.0.90.11], port: 0}
xtr:
  etr: true
  register-interval: 1h
  map-servers: [{address: 127.0.90.1, key-id: 1, algorithm: hmac-sha-256-128, secret: k1, proxy-reply: true}]
  database:
    - eid-prefix: 198.51.100.0/25
      locators: [{address: 127.0.90.11}]
    - eid-prefix: 198.51.100.128/25
      locators: [{address: 127.0.90.11}]
`
	reloadITR = `
control: {addresses: [127.0.90.21], port: 4342}
xtr:
  itr: true
  etr: true
  map-resolvers: [127.0.90.3]
  rloc-probing: {interval: 0s}
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: 127.0.90.21}]
`
)

// TestReloadXTR changes each setting of running xTRs and watches the
// result on the wire and in what `show` reports: a Map-Server/
// Map-Resolver and a second Map-Server, an ETR, an ITR, and peers of ours
// standing in for a Map-Resolver and for an ITR that sends the ETR traffic.
func TestReloadXTR(t *testing.T) {
	// The Map-Servers, the ITR and our peers stand on the control port:
	// on a loopback /24 found free, not on fixed addresses.
	at := onFreeLoopback(t)
	ms1 := runNode(t, at(fmt.Sprintf(reloadMS, "127.0.90.1")+"map-resolver: {}\n"), Options{})
	ms2 := runNode(t, at(fmt.Sprintf(reloadMS, "127.0.90.2")), Options{})
	etr := runNode(t, at(reloadETR), Options{DataPlane: xtr.NopDataPlane{}})
	rec := newRecorder()
	itr := runNode(t, at(reloadITR), Options{DataPlane: rec})
	remoteITR := peerAt(t, at("127.0.90.41:4342"))
	oldMR := peerAt(t, at("127.0.90.3:4342"))
	lisptest.Eventually(t, 5*time.Second, func() bool {
		return slices.Equal(registeredAt(ms1.Daemon), []string{"198.51.100.0/25", "198.51.100.128/25"})
	}, "the ETR's database registered")

	etrYAML := at(reloadETR)
	t.Run("database", func(t *testing.T) {
		etr.XTR().Decapsulated(netip.MustParseAddr(at("127.0.90.41")), 0, netip.Addr{})
		etrYAML = strings.Replace(etrYAML, "198.51.100.128/25", "198.51.100.192/26", 1)
		etr.mustApply(t, etrYAML, map[string][]string{"xtr": {"xtr.database"}})
		// At once, not at the next register interval (an hour) nor when
		// the removed prefix's registration times out (3 minutes).
		lisptest.Eventually(t, 5*time.Second, func() bool {
			return slices.Equal(registeredAt(ms1.Daemon), []string{"198.51.100.0/25", "198.51.100.192/26"})
		}, "the new database registered, the removed prefix withdrawn")
		smrs := map[string]bool{}
		remoteITR.recvUntil(func(m wire.Message) bool {
			if r, ok := m.(*wire.MapRequest); ok && r.SMR {
				smrs[r.Records[0].PrefixString()] = true
			}
			return len(smrs) == 2
		})
		if !smrs["198.51.100.0/25"] || !smrs["198.51.100.192/26"] {
			t.Errorf("SMRs to the ITR that sent us traffic: %v", smrs)
		}
		var shown []string
		for _, e := range etr.XTR().DatabaseView().Entries {
			shown = append(shown, e.EIDPrefix.String())
		}
		if !slices.Equal(shown, []string{"198.51.100.0/25", "198.51.100.192/26"}) {
			t.Errorf("show database: %v", shown)
		}
	})

	itrYAML := at(reloadITR)
	t.Run("map-resolvers", func(t *testing.T) {
		itr.XTR().Miss(0, netip.MustParseAddr("198.51.100.20"))
		if !oldMR.recvUntil(func(m wire.Message) bool { _, ok := m.(*wire.ECM); return ok }) {
			t.Fatal("no Map-Request reached the configured Map-Resolver")
		}
		itrYAML = strings.Replace(itrYAML, at("map-resolvers: [127.0.90.3]"), at("map-resolvers: [127.0.90.1]"), 1)
		itr.mustApply(t, itrYAML, map[string][]string{"xtr": {"xtr.map-resolvers"}})
		itr.XTR().Miss(0, netip.MustParseAddr("198.51.100.21"))
		lisptest.Eventually(t, 5*time.Second, func() bool {
			_, ok := rec.get("198.51.100.0/25")
			return ok
		}, "the new Map-Resolver's answer cached")
	})

	t.Run("rloc-probing", func(t *testing.T) {
		time.Sleep(300 * time.Millisecond)
		if v := itr.XTR().RLOCProbing(); len(v) != 0 {
			t.Fatalf("probing while off: %+v", v)
		}
		itrYAML = strings.Replace(itrYAML, "interval: 0s", "interval: 100ms", 1)
		itr.mustApply(t, itrYAML, map[string][]string{"xtr": {"xtr.rloc-probing.interval"}})
		lisptest.Eventually(t, 5*time.Second, func() bool {
			v := itr.XTR().RLOCProbing()
			return len(v) == 1 && v[0].Address == netip.MustParseAddr(at("127.0.90.11")) && v[0].Probes > 0
		}, "the cached locator probed")
		itrYAML = strings.Replace(itrYAML, "interval: 100ms", "interval: 0s", 1)
		itr.mustApply(t, itrYAML, map[string][]string{"xtr": {"xtr.rloc-probing.interval"}})
		if v := itr.XTR().RLOCProbing(); len(v) != 0 {
			t.Errorf("probing turned off still shows %+v", v)
		}
	})

	t.Run("itr off and on", func(t *testing.T) {
		off := strings.Replace(itrYAML, "itr: true", "itr: false", 1)
		itr.mustApply(t, off, map[string][]string{"xtr": {"xtr.itr"}})
		if mc := itr.XTR().MapCache(); len(mc) != 0 {
			t.Errorf("ITR off: show map-cache still has %+v", mc)
		}
		if _, ok := rec.get("198.51.100.0/25"); ok {
			t.Error("ITR off: the data plane keeps the entry")
		}
		itr.XTR().Miss(0, netip.MustParseAddr("198.51.100.22"))
		time.Sleep(300 * time.Millisecond)
		if _, ok := rec.get("198.51.100.0/25"); ok {
			t.Error("ITR off resolved a miss")
		}
		itr.mustApply(t, itrYAML, map[string][]string{"xtr": {"xtr.itr"}})
		itr.XTR().Miss(0, netip.MustParseAddr("198.51.100.23"))
		lisptest.Eventually(t, 5*time.Second, func() bool { _, ok := rec.get("198.51.100.0/25"); return ok }, "ITR on again resolves")
	})

	t.Run("map-servers", func(t *testing.T) {
		etrYAML = strings.Replace(etrYAML, at("address: 127.0.90.1,"), at("address: 127.0.90.2,"), 1)
		etr.mustApply(t, etrYAML, map[string][]string{"xtr": {"xtr.map-servers"}})
		lisptest.Eventually(t, 5*time.Second, func() bool {
			return len(registeredAt(ms2.Daemon)) == 2 && len(registeredAt(ms1.Daemon)) == 0
		}, "registered with the new Map-Server, withdrawn from the old")
		if ms := etr.XTR().DatabaseView().MapServers; len(ms) != 1 || ms[0].Address != netip.MustParseAddr(at("127.0.90.2")) {
			t.Errorf("show database lists Map-Servers %+v", ms)
		}
	})

	t.Run("refused", func(t *testing.T) {
		bad := strings.Replace(itrYAML, at("map-resolvers: [127.0.90.1]"), at("map-resolvers: [127.0.90.3]"), 1)
		bad = strings.Replace(bad, "  itr: true\n", "  itr: true\n  xtr-id: 0102030405060708090a0b0c0d0e0f10\n  subscribe: true\n", 1)
		bad = strings.Replace(bad, "port: 4342", "port: 4343", 1)
		itr.mustRefuse(t, bad, "control.port", "xtr.subscribe", "xtr.xtr-id")
		if mr := itr.XTR().Options().MapResolvers; !slices.Equal(mr, []netip.Addr{netip.MustParseAddr(at("127.0.90.1"))}) {
			t.Errorf("a refused reload changed the Map-Resolvers to %v", mr)
		}
	})
}

// Dynamic EIDs: a range's timeout is applied live (liveKey), its
// interface, prefix, mode, group and locators, and ranges added or
// removed, need a restart; a refusal leaves the rest of the file unapplied
// too.
func TestReloadDynamicEIDsRefused(t *testing.T) {
	yaml := `
control: {addresses: [127.0.90.51], port: 0}
xtr:
  etr: true
  database:
    - eid-prefix: 198.51.100.0/24
      locators: [{address: 127.0.90.51}]
`
	n := runNode(t, yaml, Options{DataPlane: xtr.NopDataPlane{}})
	added := strings.Replace(yaml, "198.51.100.0/24", "198.51.100.0/25", 1) + `  eid-interfaces: [lo]
  dynamic-eids:
    - {name: web, prefix: 198.51.100.128/25, interface: lo}
`
	n.mustRefuse(t, added, "xtr.dynamic-eids[web]")
	if db := n.XTR().DatabaseView().Entries; len(db) != 1 || db[0].EIDPrefix != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("a refused reload changed the database: %+v", db)
	}
	for key, live := range map[string]bool{
		"xtr.dynamic-eids[web].timeout":           true,
		"xtr.dynamic-eids[web].interface":         false,
		"xtr.dynamic-eids[web].prefix":            false,
		"xtr.dynamic-eids[web].mode":              false,
		"xtr.dynamic-eids[web].notify-group":      false,
		"xtr.dynamic-eids[web].group-key":         false,
		"xtr.dynamic-eids[web].group-peers":       false,
		"xtr.dynamic-eids[web].group-max-adopted": false,
		"xtr.dynamic-eids[web].group-adopt-rate":  false,
		"xtr.dynamic-eids[web].locators":          false,
		"xtr.dynamic-eids[web]":                   false,
	} {
		if got := liveKey(key, reloadEnv{}); got != live {
			t.Errorf("liveKey(%s) = %v, want %v", key, got, live)
		}
	}
}

// A dynamic EID's timeout changes live; a database change that would
// change the locators a range registers its hosts with is refused. The
// daemon runs as if started with the range, minus the kernel side (ARP
// sockets, proxy ARP), which needs root.
func TestReloadDynamicEIDTimeout(t *testing.T) {
	withRange := `
control: {addresses: [127.0.90.55], port: 0}
xtr:
  etr: true
  eid-interfaces: [lo]
  database:
    - eid-prefix: 198.51.100.0/24
      locators: [{address: 127.0.90.55}]
  dynamic-eids:
    - {name: web, prefix: 198.51.100.128/25, interface: lo, timeout: 3m}
`
	n := runNodeWithRanges(t, withRange)
	timeout := func() float64 { return n.dyn.mgr.View()[0].TimeoutSec }
	shorter := strings.Replace(withRange, "timeout: 3m", "timeout: 1m", 1)
	n.mustApply(t, shorter, map[string][]string{"xtr": {"xtr.dynamic-eids[web].timeout"}})
	if timeout() != 60 {
		t.Errorf("show dynamic-eid timeout %v s, want the reloaded 60", timeout())
	}
	moved := strings.Replace(shorter, "{address: 127.0.90.55}", "{address: 127.0.90.56}", 1)
	n.mustRefuse(t, strings.Replace(moved, "timeout: 1m", "timeout: 2m", 1), "xtr.database")
	if timeout() != 60 {
		t.Errorf("a refused reload changed the timeout to %v s", timeout())
	}
}

// What a userspace data plane fixes at start (its TUNs, routes, roles,
// PETRs) is refused while one runs, applied without one.
func TestReloadDataPlaneKeys(t *testing.T) {
	for _, k := range []string{"xtr.itr", "xtr.etr", "xtr.petrs", "pitr.eid-prefixes"} {
		if liveKey(k, reloadEnv{dataPlane: true}) || !liveKey(k, reloadEnv{}) {
			t.Errorf("%s: live with a data plane %v, without %v", k, liveKey(k, reloadEnv{dataPlane: true}), liveKey(k, reloadEnv{}))
		}
	}
	for _, k := range []string{"xtr.tun", "xtr.eid-routes", "xtr.vrfs", "xtr.tun-addresses", "xtr.data-plane",
		"xtr.data-port", "xtr.mtu", "pitr", "petr", "xtr", "map-server", "map-resolver"} {
		if liveKey(k, reloadEnv{}) {
			t.Errorf("%s is applied live", k)
		}
	}
}

// PITR and PETR: the PITR's prefixes and the PETR list are applied (no
// data plane routes them here); turning the roles on or off is refused.
func TestReloadPITRPETR(t *testing.T) {
	yaml := `
control: {addresses: [127.0.90.61], port: 0}
xtr:
  itr: true
  map-resolvers: [127.0.90.1]
  petrs: [127.0.90.62]
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: 127.0.90.61}]
pitr: {eid-prefixes: [198.51.100.0/24]}
`
	n := runNode(t, yaml, Options{DataPlane: xtr.NopDataPlane{}})
	changed := strings.Replace(yaml, "[198.51.100.0/24]", "[198.51.100.0/25]", 1)
	changed = strings.Replace(changed, "petrs: [127.0.90.62]", "petrs: [127.0.90.63]", 1)
	n.mustApply(t, changed, map[string][]string{"pitr": {"pitr.eid-prefixes"}, "xtr": {"xtr.petrs"}})
	n.mustRefuse(t, changed+"petr: {}\n", "petr")
	noPITR := strings.Replace(changed, "pitr: {eid-prefixes: [198.51.100.0/25]}\n", "", 1)
	n.mustRefuse(t, noPITR, "pitr")
	if !n.XTR().Options().PITR {
		t.Error("the xTR stopped being a PITR")
	}
}

// The log level follows a reload when lispd was given its level variable;
// the format needs a restart, and so does the level without the variable.
func TestReloadLogLevel(t *testing.T) {
	var buf syncBuffer
	level := new(slog.LevelVar)
	yaml := "control: {addresses: [127.0.90.71], port: 0}\nlog: {level: info}\nmap-server: {sites: []}\n"
	n := runNode(t, yaml, Options{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})), LogLevel: level})
	n.mustApply(t, strings.Replace(yaml, "info", "debug", 1), map[string][]string{"log": {"log.level"}})
	if level.Level() != slog.LevelDebug {
		t.Errorf("level %v after reloading log.level debug", level.Level())
	}
	n.log.Debug("now visible")
	if !strings.Contains(buf.String(), "now visible") {
		t.Error("debug messages not logged after the reload")
	}
	n.mustRefuse(t, strings.Replace(yaml, "level: info", "level: debug, format: json", 1), "log.format")
	if level.Level() != slog.LevelDebug {
		t.Error("a refused reload changed the log level")
	}
	// A refusal is logged whoever asked, with the keys that need a restart.
	if !strings.Contains(buf.String(), `level=ERROR msg="reload failed" err="reload refused: log.format needs a restart"`) {
		t.Errorf("refused reload not logged:\n%s", buf.String())
	}
	fixed := runNode(t, strings.Replace(yaml, "127.0.90.71", "127.0.90.72", 1), Options{})
	fixed.mustRefuse(t, strings.Replace(yaml, "127.0.90.71], port: 0}\nlog: {level: info}", "127.0.90.72], port: 0}\nlog: {level: debug}", 1), "log.level")
}

// syncBuffer is a log destination the test reads while the daemon writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Map-Server timers and site keys change live: a registration accepted
// after the reload lapses at the new timeout, and a site's new key is the
// one that authenticates.
func TestReloadMapServerTimersAndKeys(t *testing.T) {
	clk := lisptest.NewClock(time.Unix(1_700_000_000, 0))
	yaml := `
control: {addresses: [127.0.90.81], port: 0}
map-server:
  registration-timeout: 3m
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: s3cret}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
`
	n := runNode(t, yaml, Options{Now: clk.Now})
	addr := n.ControlAddrs()[0]
	etr := peerAt(t, "127.0.90.82:0")
	changed := strings.Replace(yaml, "3m", "1m", 1)
	changed = strings.Replace(changed, "s3cret", "rotated", 1)
	n.mustApply(t, changed, map[string][]string{"map-server": {"map-server.registration-timeout", "map-server.sites"}})
	etr.send(register(t, "198.51.100.0/24", 0, "192.0.2.11", []byte("s3cret"), 1, wire.AuthHMACSHA256, 1, false), addr)
	if etr.recv(300*time.Millisecond) != nil || n.MapServer().Registrations() != 0 {
		t.Fatal("the replaced key still authenticates")
	}
	etr.send(register(t, "198.51.100.0/24", 0, "192.0.2.11", []byte("rotated"), 1, wire.AuthHMACSHA256, 2, false), addr)
	if etr.recv(2*time.Second) == nil {
		t.Fatal("the new key does not authenticate")
	}
	clk.Advance(61 * time.Second)
	lisptest.Eventually(t, 5*time.Second, func() bool { return n.MapServer().Registrations() == 0 }, "the registration lapsed after the reloaded 1m")
}

// POST /v1/reload answers what was applied, or 409 and the keys needing a
// restart; never "reloaded" for what it did not apply.
func TestReloadAPI(t *testing.T) {
	yaml := "control: {addresses: [127.0.90.91], port: 0}\nmap-server: {registration-timeout: 3m, sites: []}\n"
	n := runNode(t, yaml, Options{})
	c := adminapi.NewClient(n.sock)
	n.load(t, strings.Replace(yaml, "3m", "4m", 1))
	res, err := c.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := adminapi.ReloadResult{Result: "reloaded", Applied: map[string][]string{"map-server": {"map-server.registration-timeout"}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("POST /v1/reload (-want +got):\n%s", diff)
	}
	n.load(t, strings.Replace(yaml, "127.0.90.91", "127.0.90.92", 1))
	_, err = c.Reload(context.Background())
	var ae *adminapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Msg != "reload refused: control.addresses needs a restart" {
		t.Errorf("refused reload: %v", err)
	}
}
