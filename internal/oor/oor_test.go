package oor

import (
	"net/netip"
	"strings"
	"testing"
)

// TestRender: the configuration file carries every section in OOR's
// syntax, including the proxy-ETR sections 1.3 reads (not the example
// file's proxy-etr) and interface locators.
func TestRender(t *testing.T) {
	ms := netip.MustParseAddr("198.18.1.2")
	c := Config{Mode: ModeXTR, Debug: 1, MapResolvers: []netip.Addr{ms},
		MapServers: []MapServer{{Address: ms, KeyType: KeySHA1, Key: "k", ProxyReply: true}},
		ProxyETRs:  []Locator{{Address: netip.MustParseAddr("198.18.5.2"), Priority: 1, Weight: 100}},
		Probing:    Probing{Interval: 2, Retries: 1, RetriesInterval: 1},
		Database: []Mapping{{EIDPrefix: netip.MustParsePrefix("198.51.100.0/24"), IID: 1000, Locators: []Locator{
			{Iface: "up0", IPVersion: 4, Priority: 1, Weight: 50}, {Address: netip.MustParseAddr("198.18.2.2"), Priority: 2, Weight: 50}}}},
	}
	got := string(c.Render())
	for _, want := range []string{
		"operating-mode = xTR\n", "map-resolver = { 198.18.1.2 }\n",
		"map-server {\n    address = 198.18.1.2\n    key-type = 1\n    key = k\n    proxy-reply = on\n}\n",
		"proxy-etr-ipv4 {\n    address = 198.18.5.2\n", "proxy-etr-ipv6 {\n",
		"rloc-probing {\n    rloc-probe-interval = 2\n",
		"database-mapping {\n    eid-prefix = 198.51.100.0/24\n    iid = 1000\n",
		"    rloc-iface {\n        interface = up0\n        ip_version = 4\n        priority = 1\n        weight = 50\n    }\n",
		"    rloc-address {\n        address = 198.18.2.2\n        priority = 2\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("configuration lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "proxy-etr {") || strings.Contains(got, "lisp-site") {
		t.Errorf("unexpected section:\n%s", got)
	}
	ms2 := Config{Mode: ModeMS, ControlIface: "eth0", Sites: []Site{{EIDPrefix: netip.MustParsePrefix("203.0.113.0/24"), KeyType: KeySHA1, Key: "s"}}}
	if got := string(ms2.Render()); !strings.Contains(got, "control-iface = eth0\n") ||
		!strings.Contains(got, "lisp-site {\n    eid-prefix = 203.0.113.0/24\n    key-type = 1\n    key = s\n    iid = 0\n    accept-more-specifics = off\n}\n") {
		t.Errorf("Map-Server configuration:\n%s", got)
	}
}
