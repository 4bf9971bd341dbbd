package mapserver

import (
	"net/netip"
	"testing"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

var (
	xtrLocal = netip.MustParseAddr("198.18.1.2") // the xTR behind the NAT
	rtrAt    = netip.AddrPortFrom(rtrA, wire.ControlPort)
)

// relayed is the ECM an RTR relays: a Map-Register signed with key, from
// the xTR's local RLOC, with the RTR and the local RLOC (R bit clear) as
// locators, as §5.1.1 builds it.
func (f *fixture) relayed(key []byte, nonce uint64, from netip.AddrPort) ([]lisptest.Sent, control.DropReason) {
	f.t.Helper()
	rec := record(dc1, rtrA.String(), xtrLocal.String())
	rec.Locators[1].Flags &^= wire.LocatorReachable
	m := &wire.MapRegister{WantMapNotify: true, ProxyReply: true,
		AuthBody: wire.AuthBody{Nonce: nonce, KeyID: 0, Algorithm: wire.AuthHMACSHA256, Records: []wire.EIDRecord{rec},
			HasXTRID: true, XTRID: [16]byte{9}, SiteID: 1}}
	raw, err := wire.EncodeSigned(m, key, wire.AuthOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	inner, _ := wire.Decode(raw)
	e := &wire.ECM{ForMS: true, IP: wire.InnerIP{Src: xtrLocal, Dst: ms, TTL: 64}, SrcPort: 40001, DstPort: wire.ControlPort, Message: inner}
	b, err := e.Append(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	dec, err := wire.Decode(b)
	if err != nil {
		f.t.Fatal(err)
	}
	var out lisptest.Sender
	reason := f.s.HandleRelayedRegister(&control.Request{Raw: b, Msg: dec, Src: from, Local: netip.AddrPortFrom(ms, wire.ControlPort)}, &out)
	return out.Take(), reason
}

func TestRelayedRegister(t *testing.T) {
	f := newFixture(t)
	f.s.opts.RTRs = []netip.Addr{rtrA}
	out, reason := f.relayed(secret, 1, rtrAt)
	if reason != control.Handled || len(out) != 1 {
		t.Fatalf("reason %v, sent %d: want one ECM'd Map-Notify", reason, len(out))
	}
	if out[0].To != rtrAt || out[0].Src != ms {
		t.Errorf("sent %v -> %v, want %v -> the RTR %v", out[0].Src, out[0].To, ms, rtrAt)
	}
	m, err := wire.Decode(out[0].B)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.(*wire.ECM)
	if !ok || !e.ForETR || e.ForMS {
		t.Fatalf("got %v, want an ECM with the R bit (for the RTR)", m)
	}
	if e.IP.Src != ms || e.IP.Dst != xtrLocal || e.DstPort != 40001 || e.SrcPort != wire.ControlPort {
		t.Errorf("inner %v:%d -> %v:%d, want the Map-Server to the xTR's local RLOC and port", e.IP.Src, e.SrcPort, e.IP.Dst, e.DstPort)
	}
	n, ok := e.Message.(*wire.MapNotify)
	if !ok || n.Nonce != 1 || !n.HasXTRID || n.XTRID != [16]byte{9} {
		t.Fatalf("inner %v, want the Map-Notify with the xTR-ID", e.Message)
	}
	inner := out[0].B[len(out[0].B)-n.Len():]
	if err := wire.Verify(inner, secret, wire.AuthOptions{}); err != nil {
		t.Errorf("inner Map-Notify: %v", err)
	}
	// Registered with the locators the xTR gave: the RTR reachable.
	regs := f.s.Sites("dc1")[0]
	if len(regs.Registrations) != 1 || len(regs.Registrations[0].Locators) != 2 {
		t.Fatalf("registrations %+v", regs.Registrations)
	}
	if got := f.counterPlain("registers_relayed"); got != 1 {
		t.Errorf("registers_relayed %d", got)
	}
}

// TestRelayedRegisterRefused: only our RTRs relay, and the relayed
// Map-Register passes every check a direct one does (#12).
func TestRelayedRegisterRefused(t *testing.T) {
	f := newFixture(t)
	f.s.opts.RTRs = []netip.Addr{rtrA}
	if out, _ := f.relayed(secret, 1, netip.MustParseAddrPort("192.0.2.99:4342")); len(out) != 0 {
		t.Error("a stranger relayed a Map-Register")
	}
	if got := f.counter("registers_rejected", "not-from-rtr"); got != 1 {
		t.Errorf("not-from-rtr %d", got)
	}
	if out, _ := f.relayed([]byte("guess"), 2, rtrAt); len(out) != 0 {
		t.Error("a relayed Map-Register with a wrong key was accepted")
	}
	if got := f.counter("registers_rejected", "bad-auth"); got != 1 {
		t.Errorf("bad-auth %d", got)
	}
	if out, _ := f.relayed(secret, 5, rtrAt); len(out) != 1 {
		t.Fatal("good relayed Map-Register refused")
	}
	if out, _ := f.relayed(secret, 5, rtrAt); len(out) != 0 {
		t.Error("a replayed relayed Map-Register was accepted")
	}
	if f.counter("registers_rejected", "nonce-not-increasing")+f.counter("registers_rejected", "replayed-duplicate") != 1 {
		t.Error("the replay was not counted")
	}
	// A site's own RTR relays too.
	sites := testSites()
	sites[0].RTRs = []netip.Addr{rtrB}
	f.s.Reload(sites, nil)
	if out, _ := f.relayed(secret, 6, netip.AddrPortFrom(rtrB, wire.ControlPort)); len(out) != 1 {
		t.Error("the site's RTR could not relay")
	}
}

// TestRelayedRegisterRTRAuth: with a key shared with the relaying RTR the
// Map-Notify's ECM has the S bit and an MS-RTR AD that verifies over the
// inner Map-Notify with that key; an RTR without a key gets S clear.
func TestRelayedRegisterRTRAuth(t *testing.T) {
	f := newFixture(t)
	f.s.opts.RTRs = []netip.Addr{rtrA, rtrB}
	key := wire.RTRKey{ID: 300, Algorithm: wire.AuthHMACSHA1, Secret: []byte("ms-rtr")}
	f.s.opts.RTRKeys = map[netip.Addr]wire.RTRKey{rtrA: key}
	out, _ := f.relayed(secret, 1, rtrAt)
	if len(out) != 1 {
		t.Fatalf("sent %d, want one ECM'd Map-Notify", len(out))
	}
	m, err := wire.Decode(out[0].B)
	if err != nil {
		t.Fatal(err)
	}
	e := m.(*wire.ECM)
	if !e.Security || !e.ForETR || out[0].B[0]&0x08 == 0 {
		t.Fatalf("ECM %s: want S and R", e)
	}
	ad, err := e.RTRAuthData()
	if err != nil {
		t.Fatal(err)
	}
	n := e.Message.(*wire.MapNotify)
	inner := out[0].B[len(out[0].B)-n.Len():]
	if err := key.Verify(ad, inner); err != nil {
		t.Errorf("MS-RTR AD: %v", err)
	}
	if err := wire.Verify(inner, secret, wire.AuthOptions{}); err != nil {
		t.Errorf("inner Map-Notify: %v", err)
	}
	other := key
	other.Secret = []byte("guess")
	if err := other.Verify(ad, inner); err == nil {
		t.Error("the MS-RTR AD verifies with another secret")
	}

	out, _ = f.relayed(secret, 2, netip.AddrPortFrom(rtrB, wire.ControlPort))
	if len(out) != 1 {
		t.Fatalf("sent %d to the unkeyed RTR", len(out))
	}
	m, err = wire.Decode(out[0].B)
	if err != nil {
		t.Fatal(err)
	}
	if e := m.(*wire.ECM); e.Security || len(e.SecurityAD) != 0 || !e.ForETR {
		t.Errorf("ECM to an unkeyed RTR %s: want R and no S", e)
	}
}
