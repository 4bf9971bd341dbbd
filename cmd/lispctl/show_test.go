package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/daemon"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/xtr"
)

// startDaemons runs a Map-Server/Map-Resolver, an xTR and the ETR of a
// second site on loopback (127.0.2.x) and returns the first two's admin
// sockets once the xTR has registered and cached the other site.
func startDaemons(t *testing.T) (msSock, xtrSock string) {
	t.Helper()
	dir := t.TempDir()
	msSock, xtrSock = filepath.Join(dir, "ms.sock"), filepath.Join(dir, "xtr.sock")
	ms := run1(t, dir, "ms", fmt.Sprintf(`
admin: {socket: %s}
control: {addresses: [127.0.2.1], port: 4342}
map-server:
  rtrs: [192.0.2.50]
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
    - name: dc2
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k2}]
      eid-prefixes: [{prefix: 203.0.113.0/24}]
map-resolver: {}
`, msSock))
	x := run1(t, dir, "xtr", fmt.Sprintf(`
admin: {socket: %s}
control: {addresses: [127.0.2.12], port: 4342}
xtr:
  etr: true
  itr: true
  map-resolvers: [127.0.2.1]
  map-servers: [{address: 127.0.2.1, key-id: 1, algorithm: hmac-sha-256-128, secret: k, proxy-reply: true}]
  nat-traversal: {enabled: true}
  database:
    - eid-prefix: 198.51.100.0/24
      locators: [{address: 127.0.2.12, priority: 1, weight: 100}]
`, xtrSock))
	run1(t, dir, "etr2", fmt.Sprintf(`
admin: {socket: %s}
control: {addresses: [127.0.2.13], port: 4342}
xtr:
  etr: true
  map-servers: [{address: 127.0.2.1, key-id: 1, algorithm: hmac-sha-256-128, secret: k2, proxy-reply: true}]
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: 127.0.2.13, priority: 1, weight: 100}]
`, filepath.Join(dir, "etr2.sock")))
	lisptest.Eventually(t, 5*time.Second, func() bool { return ms.MapServer().Registrations() > 1 }, "xTRs never registered")
	// An ITR takes only answers about other sites (not its own prefix).
	x.XTR().Miss(0, netip.MustParseAddr("203.0.113.7"))
	lisptest.Eventually(t, 5*time.Second, func() bool { return len(x.XTR().MapCache()) > 0 }, "no map-cache entry")
	return msSock, xtrSock
}

// run1 runs a daemon from dir/name.yaml, written from yaml.
func run1(t *testing.T, dir, name, yaml string) *daemon.Daemon {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	yaml = lisptest.WithStateDirectory(t, yaml, filepath.Join(dir, name))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return lisptest.StartFile(t, path, func(c *config.Config) (*daemon.Daemon, error) {
		return daemon.New(c, daemon.Options{DataPlane: xtr.NopDataPlane{}})
	}).D
}

func TestShowCommandsAgainstDaemons(t *testing.T) {
	msSock, xtrSock := startDaemons(t)
	r := lispctl(t, "--socket", msSock, "show", "site")
	r.wantCode(t, cli.ExitOK)
	for _, want := range []string{"dc1", "198.51.100.0/24", "127.0.2.12", "yes"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show site lacks %q:\n%s", want, r.stdout)
		}
	}
	r = lispctl(t, "--socket", msSock, "show", "site", "dc1", "--json")
	r.wantCode(t, cli.ExitOK)
	var sites []adminapi.Site
	if err := json.Unmarshal([]byte(r.stdout), &sites); err != nil || len(sites) != 1 || sites[0].Registrations[0].RegisteredBy[0].Locators[0].Address.String() != "127.0.2.12" {
		t.Errorf("show site --json: %v\n%s", err, r.stdout)
	}
	lispctl(t, "--socket", msSock, "show", "site", "nope").wantCode(t, cli.ExitFailed)
	// The move log: nothing moved between these daemons.
	r = lispctl(t, "--socket", msSock, "show", "site", "--moves")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "move log, 0 moves") {
		t.Errorf("show site --moves: %+v", r)
	}
	r = lispctl(t, "--socket", msSock, "show", "site", "dc1", "--moves", "--json")
	if r.code != cli.ExitOK || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("show site dc1 --moves --json: %+v", r)
	}
	lispctl(t, "--socket", msSock, "show", "site", "nope", "--moves").wantCode(t, cli.ExitFailed)
	r = lispctlEnv(t, nil, map[string]string{"LISPD_SOCKET": xtrSock}, "show", "map-cache")
	r.wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "203.0.113.0/24") || !strings.Contains(r.stdout, "127.0.2.13") {
		t.Errorf("show map-cache:\n%s", r.stdout)
	}
	r = lispctl(t, "--socket", xtrSock, "show", "map-cache", "203.0.113.9", "--json")
	var mc []adminapi.MapCacheEntry
	if err := json.Unmarshal([]byte(r.stdout), &mc); err != nil || len(mc) != 1 || mc[0].Locators[0].Priority != 1 {
		t.Errorf("show map-cache EID --json: %v\n%s", err, r.stdout)
	}
	// NAT discovery: on loopback nothing translates; the RTR is the Map-Server's.
	lisptest.Eventually(t, 5*time.Second, func() bool {
		r = lispctl(t, "--socket", xtrSock, "show", "nat")
		return strings.Contains(r.stdout, "no-nat")
	}, "show nat never showed a reply")
	for _, want := range []string{"127.0.2.1", "127.0.2.12:4342", "192.0.2.50", "1/1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show nat lacks %q:\n%s", want, r.stdout)
		}
	}
	r = lispctl(t, "--socket", xtrSock, "show", "database")
	if !strings.Contains(r.stdout, "registered") {
		t.Errorf("show database:\n%s", r.stdout)
	}
	r = lispctl(t, "--socket", xtrSock, "show", "statistics")
	r.wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "map registers sent") {
		t.Errorf("show statistics:\n%s", r.stdout)
	}
	// These daemons run no data plane (their xTR programs a no-op one).
	r = lispctl(t, "--socket", xtrSock, "show", "dataplane")
	if r.code != cli.ExitFailed || !strings.Contains(r.stderr, "no data plane") {
		t.Errorf("show dataplane without a data plane: %+v", r)
	}
	r = lispctl(t, "--socket", xtrSock, "show", "map-cache", "not-an-eid")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `"not-an-eid" is neither an address nor a prefix`) {
		t.Errorf("show map-cache with a bad EID: %+v", r)
	}
	// --instance-id alone is one instance ID, not every one (nor 0).
	r = lispctl(t, "--socket", xtrSock, "show", "map-cache", "--instance-id", "5")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "0 entries") {
		t.Errorf("show map-cache --instance-id 5: %+v", r)
	}
	r = lispctl(t, "--socket", xtrSock, "clear", "map-cache", "--instance-id", "5")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "cleared 0") {
		t.Errorf("clear map-cache --instance-id 5: %+v", r)
	}
	r = lispctl(t, "--socket", xtrSock, "clear", "map-cache")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "cleared 1") {
		t.Errorf("clear map-cache: %+v", r)
	}
	// lig against the Map-Resolver: the proxied mapping, then a negative one.
	r = lispctl(t, "lig", "198.51.100.7", "--mr", "127.0.2.1", "--source", "127.0.2.30")
	r.wantCode(t, cli.ExitOK)
	for _, want := range []string{"198.51.100.0/24", "127.0.2.12", "rtt"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lig lacks %q:\n%s", want, r.stdout)
		}
	}
	r = lispctl(t, "lig", "192.0.2.99", "--mr", "127.0.2.1", "--source", "127.0.2.30", "--json")
	r.wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stdout, `"negative": true`) || !strings.Contains(r.stdout, "192.0.0.0/6") {
		t.Errorf("negative lig:\n%s", r.stdout)
	}
	r = lispctl(t, "lig", "198.51.100.7", "--mr", "127.0.2.99", "--count", "1", "--timeout", "200ms")
	r.wantCode(t, cli.ExitUsage)
	r = lispctl(t, "--socket", filepath.Join(t.TempDir(), "none.sock"), "show", "status")
	if r.code != cli.ExitFailed || !strings.Contains(r.stderr, "cannot reach lispd") {
		t.Errorf("no daemon: %+v", r)
	}
}

// TestPrintDynamicEIDs: the router-style table of `show dynamic-eid`.
func TestPrintDynamicEIDs(t *testing.T) {
	var b strings.Builder
	printDynamicEIDs(&b, []adminapi.DynamicEIDRange{{Name: "vms", EID: adminapi.EID{EIDPrefix: netip.MustParsePrefix("203.0.113.8/29")},
		Interface: "lan0", Mode: "across-subnet", NotifyGroup: netip.MustParseAddr("233.252.0.1"), TimeoutSec: 30,
		Hosts: []adminapi.DynamicEIDHost{
			{EID: netip.MustParseAddr("203.0.113.10"), State: "local", DetectedBy: "data", SinceSec: 2.34, LastSeenSec: 0.5, Moves: 2},
			{EID: netip.MustParseAddr("203.0.113.11"), State: "away", DetectedBy: "map-notify", SinceSec: 61, Moves: 1,
				MovedTo: []netip.Addr{netip.MustParseAddr("198.18.6.2")}},
		}}})
	want := `Dynamic-EID vms: [0] 203.0.113.8/29 on lan0, across-subnet, notify-group 233.252.0.1, timeout 30s, 2 hosts
  EID           State  Detected by  Since     Last seen  Moves  Moved to
  203.0.113.10  local  data         2.3s ago  500ms ago  2      -
  203.0.113.11  away   map-notify   1m1s ago  -          1      198.18.6.2
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printDynamicEIDs(&b, nil)
	if b.String() != "no dynamic-EID ranges\n" {
		t.Errorf("empty: %q", b.String())
	}
}

// TestPrintRTR: the table of `show rtr`.
func TestPrintRTR(t *testing.T) {
	var b strings.Builder
	printRTR(&b, []adminapi.NATedXTR{{XTRID: "05", Private: netip.MustParseAddrPort("198.18.1.2:4341"),
		Translated: netip.MustParseAddrPort("203.0.113.7:61000"), EIDs: []adminapi.EID{{EIDPrefix: netip.MustParsePrefix("198.51.100.0/24")}},
		State: "verified", LastRegister: time.Now().Add(-3 * time.Second), Registers: 2, Notifies: 2, PacketsToXTR: 31, PacketsFromXTR: 47}})
	for _, want := range []string{"xTR-ID", "05", "198.18.1.2:4341", "203.0.113.7:61000", "[0] 198.51.100.0/24", "verified", "2/2", "31/47"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show rtr lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	printRTR(&b, nil)
	if b.String() != "no xTRs behind NAT\n" {
		t.Errorf("empty: %q", b.String())
	}
}

// TestPrintDataPlane: show dataplane, with the kernel path and without.
func TestPrintDataPlane(t *testing.T) {
	var b strings.Builder
	printDataPlane(&b, adminapi.DataPlane{Path: "kernel+userspace", Mode: "auto",
		Programs: []adminapi.DataPlaneProgram{{Interface: "eth0", Hook: "tcx-ingress", Program: "lispd_ingress", ProgramID: 40, LinkID: 7}},
		Kernel: &adminapi.DataPlaneKernelCount{EncapsulatedPackets: 1000, EncapsulatedInPlace: 700, DecapsulatedPackets: 900, MapCacheEntries: 2,
			PETREncapsulated: 6, PETRDecapsulated: 8, MapUpdates: 3, MapUpdateP50Seconds: 0.0003, MapUpdateP99Seconds: 0.00071, MapUpdateMaxSeconds: 0.0009,
			Punted: map[string]uint64{"too-big": 3, "no-map-cache-entry": 5, "ttl": 0}, Dropped: map[string]uint64{"negative-drop": 1}},
		Userspace: adminapi.DataPlaneUserspaceCount{EncapsulatedPackets: 4, CacheMisses: 1, MissQueued: 1, MissReleased: 1, MapCacheEntries: 2}})
	want := `Data path: kernel+userspace (xtr.data-plane: auto)

Interface  Hook         Program        Program ID  Link ID
eth0       tcx-ingress  lispd_ingress  40          7

Counter               Kernel  Userspace
encapsulated packets  1000    4
  of which in place   700     -
decapsulated packets  900     0
map-cache entries     2       2
misses (userspace)            1
miss queued/released          1/1
PETR encapsulated     6
PETR decapsulated     8

Map-cache updates written to the kernel: 3; delay from the Map-Reply: median 0.300 ms, p99 0.710 ms, max 0.900 ms (latest 1024)

Handed to userspace:
  no-map-cache-entry     5
  too-big                3

Dropped in the kernel:
  negative-drop          1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printDataPlane(&b, adminapi.DataPlane{Path: "userspace", Mode: "auto", KernelReason: "tcx attach to eth0: operation not permitted"})
	if !strings.Contains(b.String(), "Kernel path not used: tcx attach to eth0: operation not permitted") || strings.Contains(b.String(), "Handed") {
		t.Errorf("userspace only:\n%s", b.String())
	}
}

func TestPrintCluster(t *testing.T) {
	var b strings.Builder
	printCluster(&b, adminapi.Cluster{Node: "ms1", Store: "etcd", Endpoints: []string{"http://192.0.2.5:2379"}, Prefix: "/lispd/",
		Connected: true, Lease: "1f", LeaseTTL: 10, Revision: 41, Head: 42, LagSeconds: 0.5, PendingWrite: 2,
		Nodes: []adminapi.ClusterNode{{Name: "ms1", Self: true, Alive: true, Lease: "1f", Prefixes: 3}, {Name: "ms2", Prefixes: 1}}})
	want := `Node ms1, store etcd http://192.0.2.5:2379 prefix /lispd/: connected
Lease 1f (ttl 10s), revision 41 of 42, lag 0.5s, 2 writes pending

Node             Alive  Lease  Up  Prefixes
ms1 (this node)  yes    1f     --  3
ms2              no     --     --  1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printCluster(&b, adminapi.Cluster{Node: "ms1", Store: "etcd", Nodes: []adminapi.ClusterNode{}})
	if !strings.Contains(b.String(), "UNREACHABLE: answering from the last table") || !strings.Contains(b.String(), "Lease none") {
		t.Errorf("unreachable: %q", b.String())
	}
}

// lispctl reload prints what the daemon applied, or why it refused.
func TestReloadCommand(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ms.sock")
	yaml := fmt.Sprintf(`
admin: {socket: %s}
control: {addresses: [127.0.0.1], port: 0}
map-server:
  registration-timeout: 3m
  state-directory: %s
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
`, sock, filepath.Join(dir, "state"))
	run1(t, dir, "ms", yaml)
	path := filepath.Join(dir, "ms.yaml")
	r := lispctl(t, "--socket", sock, "reload")
	if r.code != cli.ExitOK || r.stdout != "configuration reloaded: nothing changed\n" {
		t.Errorf("reload of the same file: %+v", r)
	}
	edited := strings.Replace(yaml, "3m", "4m", 1)
	edited = strings.Replace(edited, "name: dc1", "name: dc2", 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	r = lispctl(t, "--socket", sock, "reload")
	want := "configuration reloaded; applied:\n" +
		"  map-server: map-server.registration-timeout, map-server.sites\n" +
		"  sites added: dc2\n  sites removed: dc1\n"
	if r.code != cli.ExitOK || r.stdout != want {
		t.Errorf("reload: %+v, want stdout\n%s", r, want)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(edited, "port: 0", "port: 1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r = lispctl(t, "--socket", sock, "reload")
	if r.code != cli.ExitFailed || !strings.Contains(r.stderr, "reload refused: control.port needs a restart") ||
		strings.Contains(r.stdout, "reloaded") {
		t.Errorf("refused reload: %+v", r)
	}
}

// TestPrintMoves: a line per move, the instance ID before a prefix
// outside instance ID 0.
func TestPrintMoves(t *testing.T) {
	var b strings.Builder
	at := time.Date(2026, 12, 6, 16, 50, 1, 250_000_000, time.UTC)
	printMoves(&b, []adminapi.SiteMove{
		{Time: at, EID: adminapi.EID{EIDPrefix: netip.MustParsePrefix("203.0.113.10/32")}, FromSite: "dc1", ToSite: "dc2",
			From: netip.MustParseAddr("198.18.3.2"), By: netip.MustParseAddr("198.18.6.2")},
		{Time: at.Add(time.Second), EID: adminapi.EID{InstanceID: 7, EIDPrefix: netip.MustParsePrefix("2001:db8:b::77/128")}, FromSite: "dc2", ToSite: "dc1",
			From: netip.MustParseAddr("198.18.6.2"), By: netip.MustParseAddr("198.18.3.2")},
	})
	for _, want := range []string{"2 moves", "16:50:01.250  203.0.113.10/32", "dc1        dc2", "198.18.6.2", "[7]2001:db8:b::77/128"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
}
