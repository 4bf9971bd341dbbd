package interop

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/oor"
)

// TestLispdXTRsOnOORMapServer: lispd xTRs register with an OOR
// Map-Server (HMAC-SHA-1-96: key-id 0, algorithm 1, OOR's key-type 1),
// get its Map-Notify, resolve each other through it (it forwards the
// Map-Requests to the ETRs) and carry IPv4 and IPv6 EIDs both ways.
func TestLispdXTRsOnOORMapServer(t *testing.T) {
	n := newNetwork(t)
	site := func(prefix, key string) oor.Site {
		return oor.Site{EIDPrefix: netip.MustParsePrefix(prefix), KeyType: oor.KeySHA1, Key: key}
	}
	n.startOOR("ms", oor.Config{Mode: oor.ModeMS, Debug: 3, ControlIface: "eth0", Sites: []oor.Site{
		site("198.51.100.0/24", keyA), site("2001:db8:a::/64", keyA),
		site("203.0.113.0/24", keyB), site("2001:db8:b::/64", keyB)}})
	n.startLispd("xa", lispdXTR(xaMapServer, xaDatabase("198.18.12.2", 1)))
	n.startLispd("xb", lispdXTR(`{address: 198.18.1.2, key-id: 0, algorithm: hmac-sha-1-96, secret: `+keyB+`}`,
		`    - {eid-prefix: 203.0.113.0/24, locators: [{address: 198.18.3.2}, {address: 198.18.4.2}]}
    - {eid-prefix: "2001:db8:b::/64", locators: [{address: 198.18.3.2}, {address: 198.18.4.2}]}
`))
	n.waitRegistered("xa")
	n.waitRegistered("xb")
	for _, c := range []struct{ from, to string }{
		{"ha", "203.0.113.10"}, {"hb", "198.51.100.10"}, {"ha", "2001:db8:b::10"}, {"hb", "2001:db8:a::10"},
	} {
		n.waitPing(c.from, c.to, 10*time.Second)
	}
	if err := n.lab.TCPEcho("hb", "ha", netip.MustParseAddrPort("203.0.113.10:47000")); err != nil {
		t.Error(err)
	}
	n.expect("Map-Notify from the OOR Map-Server to lispd", "lisp.type == 4 && ip.src == 198.18.1.2 && ip.dst == 198.18.2.2")
	n.expect("Map-Request forwarded by the OOR Map-Server to a lispd ETR", "lisp.type == 8 && ip.src == 198.18.1.2")
}
