package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/tshark"
)

// TestLISPSECRequired: the tunnel-router network with LISP-SEC (RFC 9303)
// required on both xTRs and the PITR, the keys they share with the
// Map-Resolver in its map-resolver section. Hosts of the two sites reach
// each other over IPv4 and IPv6, a non-LISP host reaches site A through
// the PITR and site A reaches it through the PETR: every mapping came in a
// Map-Reply that verified (an ETR's, signed with the MS-OTK, or the
// Map-Resolver's own negative one), nothing was dropped, and Wireshark
// decodes the protected ECMs and signed Map-Replies without a malformed
// frame.
func TestLISPSECRequired(t *testing.T) {
	const key = "  lisp-sec: required\n  lisp-sec-key: {key-id: 2, secret: itrs-and-their-map-resolver}\n"
	n := startNetworkWith(t, func(node, cfg string) string {
		if node == "ms" {
			return strings.Replace(cfg, "map-resolver: {}",
				"map-resolver: {lisp-sec-keys: [{key-id: 2, secret: itrs-and-their-map-resolver}]}", 1)
		}
		return strings.Replace(cfg, "  itr: true\n", "  itr: true\n"+key, 1)
	})
	stopCapture := n.capture()

	for _, c := range []struct{ from, to string }{
		{"ha", "203.0.113.10"}, {"hb", "198.51.100.10"}, {"ha", "2001:db8:b::10"}, {"hb", "2001:db8:a::10"},
		{"nl", "198.51.100.10"}, // through the PITR
		{"ha", "192.0.2.10"},    // a signed negative reply, then the PETR
	} {
		if err := n.ping(c.from, c.to); err != nil {
			t.Errorf("%s -> %s: %v", c.from, c.to, err)
		}
	}

	counters := func(node string) map[string]uint64 {
		stats, err := query(n, node, (*adminapi.Client).Statistics)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint64{}
		for _, c := range stats {
			name := c.Subsystem + "." + c.Name
			if r := c.Labels["reason"]; r != "" {
				name += "{" + r + "}"
			}
			out[name] += c.Value
		}
		return out
	}
	ms := counters("ms")
	if ms["map_server.lispsec_forwarded"] == 0 || ms["map_resolver.lispsec_replies"] == 0 {
		t.Errorf("Map-Server forwarded %d protected requests, Map-Resolver signed %d negative replies; want some of each",
			ms["map_server.lispsec_forwarded"], ms["map_resolver.lispsec_replies"])
	}
	for _, node := range []string{"xa", "xb", "px"} {
		c := counters(node)
		if c["itr.lispsec_replies_verified"] == 0 {
			t.Errorf("%s: no Map-Reply verified", node)
		}
		for name, v := range c {
			if v > 0 && (strings.Contains(name, "lispsec_replies_dropped") || strings.Contains(name, "lispsec_requests_dropped") ||
				strings.Contains(name, "{not-authorized}") || name == "itr.lispsec_replies_unsigned_accepted") {
				t.Errorf("%s: %s = %d", node, name, v)
			}
		}
		if node != "px" && c["etr.lispsec_replies_signed"] == 0 {
			t.Errorf("%s: the ETR signed no Map-Reply", node)
		}
	}
	for name, v := range ms {
		if v > 0 && strings.Contains(name, "lispsec_requests_dropped") {
			t.Errorf("ms: %s = %d", name, v)
		}
	}
	// Every cached mapping of the ITRs came verified: no entry is missing.
	for _, node := range []string{"xa", "px"} {
		mc, err := query(n, node, func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
			return c.MapCache(ctx, adminapi.MapCacheQuery{})
		})
		if err != nil || len(mc) == 0 {
			t.Errorf("%s: map-cache %+v (%v)", node, mc, err)
		}
	}

	if path := stopCapture(); path != "" {
		wiresharkClean(t, path)
		for _, c := range []struct{ what, filter string }{
			{"protected ECMs", "lisp.ecm.flags.sec == 1"},
			{"signed Map-Replies", "lisp.mrep.flags.sec == 1"},
			{"unsigned Map-Replies to requests", "lisp.type == 2 && lisp.mrep.flags.sec == 0 && lisp.mrep.flags.probe == 0"},
		} {
			count, err := tshark.Count(path, c.filter)
			if err != nil {
				t.Errorf("%s: %v", c.what, err)
				continue
			}
			if want := c.what != "unsigned Map-Replies to requests"; (count > 0) != want {
				t.Errorf("capture holds %d %s", count, c.what)
			}
		}
	}
}
