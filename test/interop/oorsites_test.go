package interop

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestOORSitesOnLispdMappingSystem: two OOR xTRs register with a lispd
// Map-Server (HMAC-SHA-1-96, key-id 0), resolve each other through the
// lispd Map-Resolver and carry IPv4 and IPv6 EIDs both ways; a host of an
// OOR site reaches a non-LISP host after a negative Map-Reply from lispd
// (natively-forward: OOR sends it to the lispd PETR), and the non-LISP host
// reaches it back through the lispd PITR.
func TestOORSitesOnLispdMappingSystem(t *testing.T) {
	n := newNetwork(t)
	n.startLispd("ms", lispdMS)
	n.startLispd("px", lispdPxTR)
	n.startOOR("xa", oorXTR(keyA, mappings(ifaceLocators("up0"), "198.51.100.0/24", "2001:db8:a::/64")...))
	n.startOOR("xb", oorXTR(keyB, mappings(ifaceLocators("up1", "up2"), "203.0.113.0/24", "2001:db8:b::/64")...))
	n.waitPrefixes("ms", 4)

	for _, c := range []struct{ from, to string }{
		{"ha", "203.0.113.10"}, {"hb", "198.51.100.10"}, {"ha", "2001:db8:b::10"}, {"hb", "2001:db8:a::10"},
	} {
		n.waitPing(c.from, c.to, 10*time.Second)
	}
	if err := n.lab.TCPEcho("hb", "ha", netip.MustParseAddrPort("203.0.113.10:47000")); err != nil {
		t.Error(err)
	}

	// The non-LISP host: a negative Map-Reply, then the PETR; back through the PITR.
	n.waitPing("ha", "192.0.2.10", 10*time.Second)
	n.waitPing("nl", "198.51.100.10", 10*time.Second)
	n.expect("negative Map-Reply (natively-forward, no locator) from the lispd Map-Resolver to the OOR ITR",
		"lisp.type == 2 && ip.dst == 198.18.2.2 && lisp.mapping.act == 1 && !lisp.loc")
	// Wireshark 4.0 shows RFC 6833's 16-bit Key ID: OOR's key-type 1 is
	// 0x0001 there, key-id 0 and algorithm 1 in RFC 9301's reading.
	n.expect("Map-Register from OOR with key-type 1", "lisp.type == 3 && ip.src == 198.18.2.2 && lisp.keyid == 1")
	n.expect("encapsulated packet from the lispd PITR to the OOR ETR", "lisp-data && ip.src == 198.18.5.2 && ip.dst == 198.18.2.2")
	n.expect("encapsulated packet from the OOR ITR to the lispd PETR", "lisp-data && ip.src == 198.18.2.2 && ip.dst == 198.18.5.2")
	n.expect("IPv6 EIDs between the OOR sites", "lisp-data && ip.src == 198.18.2.2 && ipv6.dst == 2001:db8:b::10")
	if got := n.counter("ms", "map_server", "registers_accepted"); got == 0 {
		t.Error("no Map-Register accepted")
	}
}

// TestOORRefusesSHA256: OOR 1.3 accepts no key-type but 1 (HMAC-SHA-1-96):
// given 2 (HMAC-SHA-256-128) it refuses to start. docs/interop.md says so;
// this test tells when an OOR that can is installed.
func TestOORRefusesSHA256(t *testing.T) {
	n := newNetwork(t)
	c := oorXTR(keyA, mappings(ifaceLocators("up0"), "198.51.100.0/24")...)
	c.MapServers[0].KeyType = 2
	p := n.startOOR("xa", c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatal("OOR started with key-type 2 (HMAC-SHA-256-128): update docs/interop.md and test SHA-256 with it")
	}
	if log := p.Log(); !strings.Contains(log, "Only SHA-1") {
		t.Errorf("OOR exited, not saying it supports only SHA-1:\n%s", log)
	}
}
