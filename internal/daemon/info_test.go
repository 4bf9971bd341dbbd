package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// TestInfoRequestOverUDP: an xTR's Info-Request, signed with its site key,
// reaches lispd's Map-Server over UDP and the Info-Reply comes back to the
// source port it came from, naming that address and port, the Map-Server
// address it reached and the configured RTRs; an unsigned one is counted
// and unanswered.
func TestInfoRequestOverUDP(t *testing.T) {
	_, addr, _ := start(t, strings.Replace(twoSites, "registration-timeout: 3m\n", "registration-timeout: 3m\n  rtrs: [192.0.2.50]\n", 1))
	xtr := newPeer(t)
	req := &wire.Info{Nonce: 77, KeyID: 1, Algorithm: wire.AuthHMACSHA256, AuthData: make([]byte, 32), MaskLen: 24,
		EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))}
	raw, err := wire.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Sign(raw, []byte("s3cret"), wire.AuthOptions{}); err != nil {
		t.Fatal(err)
	}
	xtr.send(raw, addr)
	b := xtr.recv(2 * time.Second)
	if b == nil {
		t.Fatal("no Info-Reply")
	}
	if err := wire.Verify(b, []byte("s3cret"), wire.AuthOptions{}); err != nil {
		t.Errorf("Info-Reply: %v", err)
	}
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m.(*wire.Info)
	if !ok || !r.Reply || r.Nonce != 77 {
		t.Fatalf("got %v", m)
	}
	nat := r.NATAddress.LCAF.Body.(*wire.NATTraversalLCAF)
	if nat.GlobalETR.IP != xtr.addr().Addr() || nat.ETRPort != xtr.addr().Port() || nat.MS.IP != addr.Addr() ||
		nat.MSPort != addr.Port() || len(nat.RTRs) != 1 || nat.RTRs[0].IP != netip.MustParseAddr("192.0.2.50") {
		t.Errorf("NAT LCAF %v: want global %v, MS %v, RTR 192.0.2.50", nat, xtr.addr(), addr)
	}
	unsigned, _ := wire.Encode(&wire.Info{Nonce: 78, MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))})
	xtr.send(unsigned, addr)
	if b := xtr.recv(300 * time.Millisecond); b != nil {
		t.Fatalf("answered an unsigned Info-Request: %x", b)
	}
}
