package e2e

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

func (n *network) counter(node, subsystem, name string) uint64 {
	cs, err := query(n, node, (*adminapi.Client).Statistics)
	if err != nil {
		n.t.Fatal(err)
	}
	var v uint64
	for _, c := range cs {
		if c.Subsystem == subsystem && c.Name == name {
			v += c.Value
		}
	}
	return v
}

func (n *network) registered() int {
	st, err := query(n, "ms", (*adminapi.Client).Status)
	if err != nil {
		return -1
	}
	return st.Prefixes
}

// TestMapServerRestart: the Map-Server restarts with an empty table; the
// ETRs register again within their interval and traffic between the sites
// works again.
func TestMapServerRestart(t *testing.T) {
	n := startNetwork(t)
	if err := n.ping("ha", "203.0.113.10"); err != nil {
		t.Fatal(err)
	}
	if err := n.procs["ms"].Stop(); err != nil {
		t.Fatal(err)
	}
	n.runLispd("ms")
	n.waitPrefixes("ms", 6) // the registrations are back
	// A fresh resolution goes through the restarted mapping system.
	if err := n.clearMapCache("xa"); err != nil {
		t.Fatal(err)
	}
	if err := n.ping("ha", "203.0.113.10"); err != nil {
		t.Error("after the Map-Server restart:", err)
	}
}

// TestReloadAddsSite: a site added to the Map-Server's file and a SIGHUP:
// the new site registers at once, the others keep their registrations.
func TestReloadAddsSite(t *testing.T) {
	n := startNetwork(t)
	path := filepath.Join(n.dir, "ms.yaml")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	extra := `    - name: site-c
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: site-c-key}]
      eid-prefixes: [{prefix: 192.0.2.128/25}]
map-resolver: {}
`
	cfg = []byte(string(cfg[:len(cfg)-len("map-resolver: {}\n")]) + extra)
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.procs["ms"].Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool {
		sites, err := query(n, "ms", func(c *adminapi.Client, ctx context.Context) ([]adminapi.Site, error) {
			return c.Sites(ctx, "site-c")
		})
		return err == nil && len(sites) == 1
	}, "site-c configured")
	if got := n.registered(); got != 6 {
		t.Errorf("%d registrations after the reload, want the 6 from before", got)
	}
	// An ETR of the new site (played by the non-LISP host) registers.
	reg := &wire.MapRegister{WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: 1, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
		Records: []wire.EIDRecord{{TTL: 1440, MaskLen: 25, Authoritative: true, EID: wire.AddrFromIP(netip.MustParseAddr("192.0.2.128")),
			Locators: []wire.Locator{{Priority: 1, Weight: 100, Flags: wire.LocatorReachable, Address: wire.AddrFromIP(netip.MustParseAddr("192.0.2.10"))}}}}}}
	b, err := wire.EncodeSigned(reg, []byte("site-c-key"), wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var conn *net.UDPConn
	if err := n.lab.Do("nl", func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 10)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.WriteToUDPAddrPort(b, netip.MustParseAddrPort("198.18.1.2:4342")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1500)
	k, _, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no Map-Notify for the new site: %v", err)
	}
	if err := wire.Verify(buf[:k], []byte("site-c-key"), wire.AuthOptions{}); err != nil {
		t.Errorf("Map-Notify: %v", err)
	}
	if got := n.registered(); got != 7 {
		t.Errorf("%d registrations, want 7", got)
	}
}

// TestMissFloodRateLimited: with the mapping system gone, a flood of
// packets to an uncached EID makes at most one Map-Request a second, and
// none for 30 s after ten unanswered (RFC 9301 §5.3).
func TestMissFloodRateLimited(t *testing.T) {
	n := startNetwork(t)
	if err := n.procs["ms"].Stop(); err != nil {
		t.Fatal(err)
	}
	before := n.counter("xa", "itr", "map_requests_sent")
	// Five seconds of pings every 10 ms to a site-B host nobody resolved.
	n.lab.Exec("ha", "ping", "-n", "-q", "-i", "0.01", "-w", "5", "203.0.113.10").Run()
	sent := n.counter("xa", "itr", "map_requests_sent") - before
	limited := n.counter("xa", "itr", "map_requests_rate_limited")
	if sent < 3 || sent > 7 {
		t.Errorf("%d Map-Requests in 5 s of misses, want about 5", sent)
	}
	misses := n.counter("xa", "itr", "cache_misses")
	t.Logf("5 s flood: %d misses reported by the data plane, %d Map-Requests sent, %d held back", misses, sent, limited)
}
