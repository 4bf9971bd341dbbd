package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/xtr"
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

// TestNATDiscoveryBetweenDaemons: an ETR with nat-traversal asks its
// Map-Server over UDP and, on loopback where nothing translates, learns
// that its RLOC is not behind a NAT, and the Map-Server's RTRs.
func TestNATDiscoveryBetweenDaemons(t *testing.T) {
	a := lisptest.LoopbackAddrs(t, 2, 4342)
	msAddr, etrAddr := a[0], a[1]
	startNode(t, fmt.Sprintf(`
control: {addresses: [%s], port: 4342}
map-server:
  state-directory: %s
  rtrs: [192.0.2.50]
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
`, msAddr, t.TempDir()), nil)
	etr := startNode(t, fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  nat-traversal: {enabled: true, info-interval: 1m}
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
  database: [{eid-prefix: 198.51.100.0/24, locators: [{address: %[2]s}]}]
`, msAddr, etrAddr), xtr.NopDataPlane{})
	var st []adminapi.NATDiscovery
	lisptest.Eventually(t, 5*time.Second, func() bool {
		st = etr.xtr.NAT()
		return len(st) == 1 && st[0].LastReply != nil
	}, "no Info-Reply taken by the ETR")
	want := netip.AddrPortFrom(etrAddr, 4342)
	if st[0].State != "no-nat" || *st[0].Translated != want || st[0].LocalRLOC != etrAddr || len(st[0].RTRs) != 1 ||
		st[0].RTRs[0] != netip.MustParseAddr("192.0.2.50") {
		t.Errorf("discovery %+v: want not behind NAT, seen as %v, RTR 192.0.2.50", st[0], want)
	}
}

// TestRelayedRegisterOverUDP: an RTR (here 127.0.0.1, listed in rtrs)
// relays an xTR's Map-Register in an ECM with the N bit; lispd's
// Map-Server registers it and answers the RTR with the Map-Notify in an
// ECM with the R bit.
func TestRelayedRegisterOverUDP(t *testing.T) {
	_, addr, _ := start(t, strings.Replace(twoSites, "registration-timeout: 3m\n", "registration-timeout: 3m\n  rtrs: [127.0.0.1]\n", 1))
	rtr := newPeer(t)
	inner, err := wire.Decode(register(t, "198.51.100.0/24", 0, "127.0.0.1", []byte("s3cret"), 1, wire.AuthHMACSHA256, 1, true))
	if err != nil {
		t.Fatal(err)
	}
	xtrLocal := netip.MustParseAddr("198.18.1.2")
	ecm := &wire.ECM{ForMS: true, IP: wire.InnerIP{Src: xtrLocal, Dst: addr.Addr(), TTL: 64}, SrcPort: 40001,
		DstPort: wire.ControlPort, Message: inner}
	b, err := ecm.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	rtr.send(b, addr)
	got := rtr.recv(2 * time.Second)
	if got == nil {
		t.Fatal("no answer to the RTR")
	}
	m, err := wire.Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.(*wire.ECM)
	if !ok || !e.ForETR || e.IP.Dst != xtrLocal || e.DstPort != 40001 {
		t.Fatalf("got %v, want an ECM (R) carrying the Map-Notify to %v:40001", m, xtrLocal)
	}
	if n, ok := e.Message.(*wire.MapNotify); !ok || n.Nonce != 1 {
		t.Errorf("inner %v, want the Map-Notify of nonce 1", e.Message)
	}
}

// TestRegistrationThroughRTRDaemons: an xTR behind NAT (a socket here)
// sends its ECM'd Map-Register to an RTR daemon, which relays it to a
// Map-Server daemon; the Map-Server registers the site with the RTR as
// locator and the xTR gets the Data-Map-Notify back from the RTR.
func TestRegistrationThroughRTRDaemons(t *testing.T) {
	a := lisptest.LoopbackAddrs(t, 2, 4342)
	msAddr, rtrAddr := a[0], a[1]
	ms := startNode(t, fmt.Sprintf(`
control: {addresses: [%s], port: 4342}
map-server:
  state-directory: %s
  rtrs: [%s]
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
`, msAddr, t.TempDir(), rtrAddr), nil)
	rtrd := startNode(t, fmt.Sprintf(`
control: {addresses: [%s], port: 4342}
rtr: {map-servers: [%s]}
`, rtrAddr, msAddr), nil)
	xtrSock := newPeer(t)
	private := netip.MustParseAddr("198.18.1.2")
	m := &wire.MapRegister{ProxyReply: true, WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: 1, KeyID: 1,
		Algorithm: wire.AuthHMACSHA256, HasXTRID: true, XTRID: [16]byte{5}, Records: []wire.EIDRecord{{TTL: 1440, MaskLen: 24,
			Authoritative: true, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.0")), Locators: []wire.Locator{{Priority: 1,
				Weight: 100, MPriority: 255, Flags: wire.LocatorReachable, Address: wire.AddrFromIP(rtrAddr)}}}}}}
	raw, err := wire.EncodeSigned(m, []byte("dc1key"), wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inner, _ := wire.Decode(raw)
	ecm := &wire.ECM{ForETR: true, IP: wire.InnerIP{Src: private, Dst: msAddr, TTL: 64}, SrcPort: 40001, DstPort: wire.ControlPort, Message: inner}
	b, err := ecm.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	xtrSock.send(b, netip.AddrPortFrom(rtrAddr, 4342))
	got := xtrSock.recv(3 * time.Second)
	if got == nil {
		t.Fatal("no Data-Map-Notify")
	}
	h, err := wire.DecodeDataHeader(got)
	if err != nil || h.InstanceID() != 0xffffff {
		t.Fatalf("got %x: want a Data-Map-Notify (instance ID 0xFFFFFF)", got)
	}
	v, err := adminapi.Query(context.Background(), rtrd.cfg.Admin.Socket, time.Second, (*adminapi.Client).RTR)
	if err != nil || len(v) != 1 || v[0].State != "verified" || v[0].Translated != xtrSock.addr() ||
		v[0].Private != netip.AddrPortFrom(private, 40001) || v[0].XTRID != "05000000000000000000000000000000" {
		t.Errorf("GET /v1/rtr: %+v (%v), want one verified xTR reached at %v", v, err, xtrSock.addr())
	}
	s := ms.MapServer().Sites("dc1")
	if len(s) != 1 || len(s[0].Registrations) != 1 || s[0].Registrations[0].Locators[0].Address != rtrAddr {
		t.Errorf("Map-Server: %+v, want the site registered with the RTR as locator", s)
	}
}
