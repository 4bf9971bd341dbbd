package e2e

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/tshark"
)

// TestTunnelRouters: hosts of two LISP sites reach each other over IPv4
// and IPv6 EIDs, a non-LISP host reaches them through the PITR and they
// reach it through the PETR, and a cut uplink moves traffic to the other
// RLOC within three probe intervals. Wireshark finds nothing malformed in
// the capture of the run.
func TestTunnelRouters(t *testing.T) {
	n := startNetwork(t)
	stopCapture := n.capture()

	for _, c := range []struct{ from, to string }{
		{"ha", "203.0.113.10"}, {"hb", "198.51.100.10"}, {"ha", "2001:db8:b::10"}, {"hb", "2001:db8:a::10"},
		{"ha", "hb"},
	} {
		if err := n.ping(c.from, c.to); err != nil {
			t.Error(err)
		}
	}
	if err := n.tcpEcho("hb", "ha", netip.MustParseAddrPort("203.0.113.10:47000")); err != nil {
		t.Error(err)
	}
	if err := n.tcpEcho("ha", "hb", netip.MustParseAddrPort("[2001:db8:a::10]:47001")); err != nil {
		t.Error(err)
	}
	allEntries := func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
		return c.MapCache(ctx, adminapi.MapCacheQuery{})
	}
	mc, err := query(n, "xa", allEntries)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range mc {
		if e.EIDPrefix.String() == "203.0.113.0/24" && len(e.Locators) == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("xa map-cache lacks site B with three locators: %+v", mc)
	}

	// Instance ID 1000 holds the same prefixes on other hosts: ha2 reaches
	// hb2, and ha (instance 0) does not reach hb2's service.
	if err := n.ping("ha2", "203.0.113.10"); err != nil {
		t.Error("instance 1000:", err)
	}
	if err := n.tcpEcho("hb2", "ha2", netip.MustParseAddrPort("203.0.113.10:47010")); err != nil {
		t.Error("instance 1000:", err)
	}
	if err := n.tcpEcho("hb2", "ha", netip.MustParseAddrPort("203.0.113.10:47011")); err == nil {
		t.Error("instance 0 host reached a service of instance 1000")
	}

	// The non-LISP destination got a negative entry: natively-forward,
	// which this ITR sends to its PETR.
	if err := n.ping("ha", "192.0.2.10"); err != nil {
		t.Error("through the PETR:", err)
	}
	if mc, err = query(n, "xa", allEntries); err != nil {
		t.Fatal(err)
	}
	negative := false
	for _, e := range mc {
		if e.Negative && e.Action == "natively-forward" && e.EIDPrefix.String() == "192.0.0.0/6" && e.TTL == 15*60 {
			negative = true
		}
	}
	if !negative {
		t.Errorf("no negative natively-forward entry for 192.0.0.0/6 (15 min): %+v", mc)
	}

	// show statistics: the data plane counts what it did, drops by reason.
	stats, err := query(n, "xa", (*adminapi.Client).Statistics)
	if err != nil {
		t.Fatal(err)
	}
	enc, reasons := uint64(0), 0
	for _, c := range stats {
		if c.Subsystem == "dataplane" && strings.HasPrefix(c.Name, "packets_encapsulated") {
			enc += c.Value
		}
		if c.Subsystem == "dataplane" && c.Labels["reason"] != "" {
			reasons++
		}
	}
	if enc == 0 || reasons < 10 {
		t.Errorf("data plane statistics: %d encapsulated, %d drop reasons", enc, reasons)
	}

	// Non-LISP host <-> LISP host: PITR one way, PETR the other.
	if err := n.ping("nl", "198.51.100.10"); err != nil {
		t.Error("through the PITR:", err)
	}
	if err := n.ping("ha", "192.0.2.10"); err != nil {
		t.Error("through the PETR:", err)
	}

	// Cut xb's first uplink: xa's probes of 198.18.3.2 go unanswered, the
	// locator goes down and traffic takes 198.18.4.2.
	n.setIface("xb", "up1", false)
	start := time.Now()
	lisptest.Eventually(t, 5*time.Second, func() bool {
		rl, err := query(n, "xa", (*adminapi.Client).RLOCProbing)
		if err != nil {
			return false
		}
		for _, r := range rl {
			if r.Address.String() == "198.18.3.2" && r.State == "down" {
				return true
			}
		}
		return false
	}, "198.18.3.2 marked down at xa")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("locator down after %v, more than 3 probe intervals", d)
	}
	if err := n.ping("ha", "203.0.113.10"); err != nil {
		t.Error("after the uplink cut:", err)
	}
	n.setIface("xb", "up1", true)

	if path := stopCapture(); path != "" {
		// Wireshark reads the whole run: no malformed frame, no expert
		// warning or error (TCP sequence analysis aside: the traffic carried).
		wiresharkClean(t, path)
		for _, c := range []struct{ what, filter string }{
			{"LISP frames", "lisp || lisp-data"},
			// ip.version is a list: outer first, inner second.
			{"IPv4 EIDs over IPv6 RLOCs", "lisp-data && ipv6.dst == 2001:db8:ff:2::2 && ip.dst == 198.51.100.10"},
			{"IPv6 EIDs over IPv4 RLOCs", "lisp-data && ip.dst == 198.18.2.2 && ipv6.dst == 2001:db8:a::10"},
		} {
			if count, err := tshark.Count(path, c.filter); err != nil || count < 3 {
				t.Errorf("capture holds only %d frames of %s (%v)", count, c.what, err)
			}
		}
	}
}
