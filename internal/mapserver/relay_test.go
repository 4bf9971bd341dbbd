package mapserver

import (
	"net/netip"
	"testing"
	"time"

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
	var out lisptest.Sender
	reason := f.s.HandleRelayedRegister(f.relayRequest(from, key, nonce, []wire.EIDRecord{rec},
		func(m *wire.MapRegister) { m.HasXTRID, m.XTRID, m.SiteID = true, [16]byte{9}, 1 }), &out)
	return out.Take(), reason
}

// relayRequest is what the RTR at from relays: a Map-Register (P, M) of
// recs signed with key, in an ECM with N from the xTR's local RLOC
// xtrLocal:40001.
func (f *fixture) relayRequest(from netip.AddrPort, key []byte, nonce uint64, recs []wire.EIDRecord, opts ...regOpt) *control.Request {
	f.t.Helper()
	m := &wire.MapRegister{WantMapNotify: true, ProxyReply: true,
		AuthBody: wire.AuthBody{Nonce: nonce, Algorithm: wire.AuthHMACSHA256, Records: recs}}
	for _, o := range opts {
		o(m)
	}
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
	return &control.Request{Raw: b, Msg: dec, Src: from, Local: netip.AddrPortFrom(ms, wire.ControlPort)}
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

// relayRecs has the RTR at from relay a Map-Register of recs signed with
// key and returns what the Map-Server sent back.
func (f *fixture) relayRecs(from netip.AddrPort, key []byte, nonce uint64, recs []wire.EIDRecord, opts ...regOpt) []lisptest.Sent {
	f.t.Helper()
	var out lisptest.Sender
	f.s.HandleRelayedRegister(f.relayRequest(from, key, nonce, recs, opts...), &out)
	return out.Take()
}

// throughRTR checks sent is an ECM'd Map-Notify (R bit) from the
// Map-Server to the RTR rtr for the xTR at xtrLocal:40001, signed with
// the site key and, when rtrKey is not nil, carrying an MS-RTR AD that
// verifies with it (S bit); else S is clear. It returns the Map-Notify.
func (f *fixture) throughRTR(sent lisptest.Sent, rtr netip.AddrPort, siteKey []byte, rtrKey *wire.RTRKey) *wire.MapNotify {
	f.t.Helper()
	if sent.To != rtr || sent.Src != ms {
		f.t.Fatalf("sent %v -> %v, want %v -> the RTR %v", sent.Src, sent.To, ms, rtr)
	}
	m, err := wire.Decode(sent.B)
	if err != nil {
		f.t.Fatal(err)
	}
	e, ok := m.(*wire.ECM)
	if !ok || !e.ForETR {
		f.t.Fatalf("sent %v to the RTR, want an ECM with the R bit", m)
	}
	if e.IP.Src != ms || e.IP.Dst != xtrLocal || e.DstPort != 40001 {
		f.t.Errorf("inner %v -> %v:%d, want the Map-Server to the xTR's local RLOC and port", e.IP.Src, e.IP.Dst, e.DstPort)
	}
	n, ok := e.Message.(*wire.MapNotify)
	if !ok {
		f.t.Fatalf("inner %v, want a Map-Notify", e.Message)
	}
	inner := sent.B[len(sent.B)-n.Len():]
	if err := wire.Verify(inner, siteKey, wire.AuthOptions{}); err != nil {
		f.t.Errorf("inner Map-Notify: %v", err)
	}
	if rtrKey == nil {
		if e.Security {
			f.t.Error("S bit toward an unkeyed RTR")
		}
		return n
	}
	ad, err := e.RTRAuthData()
	if !e.Security || err != nil {
		f.t.Fatalf("ECM %s: want S and an MS-RTR AD (%v)", e, err)
	}
	if err := rtrKey.Verify(ad, inner); err != nil {
		f.t.Errorf("MS-RTR AD: %v", err)
	}
	return n
}

// TestMovedNotifyThroughRTR: an xTR behind NAT whose prefix another site
// takes over hears of it through the RTR its registration came through,
// signed for a keyed RTR, and so do the retransmissions; its
// registration is proxy-replied even without the P bit.
func TestMovedNotifyThroughRTR(t *testing.T) {
	f := newMobilityFixture(t)
	key := wire.RTRKey{ID: 7, Algorithm: wire.AuthHMACSHA256, Secret: []byte("ms-rtr")}
	f.s.opts.RTRs = []netip.Addr{rtrA}
	f.s.opts.RTRKeys = map[netip.Addr]wire.RTRKey{rtrA: key}
	noProxy := func(m *wire.MapRegister) { m.ProxyReply = false }
	sent := f.relayRecs(rtrAt, dc1Key, 1, []wire.EIDRecord{record(vm, rtrA.String())}, withSite(0xA, 1), noProxy)
	if len(sent) != 1 {
		t.Fatalf("sent %d, want the solicited Map-Notify", len(sent))
	}
	f.throughRTR(sent[0], rtrAt, dc1Key, &key)

	// Map-Requests are answered for it: its local RLOC is behind a NAT.
	var out lisptest.Sender
	f.s.HandleMapRequest(mapRequest(vm, 5), &out)
	if all := out.All(); len(all) != 1 || all[0].To != netip.AddrPortFrom(itr, 61000) {
		t.Fatalf("Map-Request for the NATed xTR's EID: sent %+v, want a proxy Map-Reply to the ITR", all)
	}

	// The VM moves to dc2, registered directly.
	f.expectNotify(f.regVM(xtrB, dc2Key, 1, "192.0.2.32", withSite(0xB, 2)), xtrB, dc2Key, 1)
	moved := f.timers.Take()
	if len(moved) != 1 {
		t.Fatalf("%d unsolicited messages after the move, want one to the RTR", len(moved))
	}
	n := f.throughRTR(moved[0], rtrAt, dc1Key, &key)
	onlyLocator(t, "moved Map-Notify", n, "192.0.2.32")
	if !n.HasXTRID || n.XTRID != [16]byte{0xA} || n.SiteID != 1 {
		t.Errorf("moved Map-Notify: xTR-ID %v/%x site-ID %d, want the NATed xTR's", n.HasXTRID, n.XTRID, n.SiteID)
	}

	// Unacknowledged, it goes again the same way, signed again.
	f.clk.Advance(3 * time.Second)
	f.s.Tick()
	again := f.timers.Take()
	if len(again) != 1 {
		t.Fatalf("%d retransmissions, want one", len(again))
	}
	if n2 := f.throughRTR(again[0], rtrAt, dc1Key, &key); n2.Nonce != n.Nonce {
		t.Errorf("retransmission nonce %x, want %x", n2.Nonce, n.Nonce)
	}
	// The xTR's ack (it sends it directly, out through its NAT) ends them.
	f.ack(n, dc1Key)
	f.clk.Advance(time.Minute)
	f.s.Tick()
	if left := f.timers.Take(); len(left) != 0 || f.s.PendingNotifies() != 0 {
		t.Errorf("after the ack: %d sent, %d pending", len(left), f.s.PendingNotifies())
	}
}

// TestMergedNotifyThroughRTR: two xTRs of one site share a prefix, one
// behind NAT; when the other changes the locator set, the NATed one gets
// the merged set through its RTR (unkeyed here: S clear), and the direct
// one directly.
func TestMergedNotifyThroughRTR(t *testing.T) {
	f := newMobilityFixture(t)
	f.s.opts.RTRs = []netip.Addr{rtrA}
	if sent := f.relayRecs(rtrAt, dc1Key, 1, []wire.EIDRecord{record(vm, rtrA.String())}, withSite(0xA, 1)); len(sent) != 1 {
		t.Fatalf("sent %d, want the solicited Map-Notify", len(sent))
	}
	f.expectNotify(f.regVM(xtrA2, dc1Key, 1, "192.0.2.33", withSite(0xC, 1)), xtrA2, dc1Key, 1)
	merged := f.timers.Take()
	if len(merged) != 1 {
		t.Fatalf("%d unsolicited messages after the second xTR registered, want one to the RTR", len(merged))
	}
	n := f.throughRTR(merged[0], rtrAt, dc1Key, nil)
	if len(n.Records) != 1 || len(n.Records[0].Locators) != 2 || n.XTRID != [16]byte{0xA} {
		t.Errorf("merged Map-Notify %v, want both locators, for the NATed xTR", n)
	}
	f.ack(n, dc1Key)
	// The NATed xTR's refresh changes nothing; the direct one's new
	// locator goes to the NATed one through the RTR again.
	f.expectNotify(f.regVM(xtrA2, dc1Key, 2, "192.0.2.34", withSite(0xC, 1)), xtrA2, dc1Key, 2)
	merged = f.timers.Take()
	if len(merged) != 1 {
		t.Fatalf("%d unsolicited messages after the change, want one", len(merged))
	}
	f.throughRTR(merged[0], rtrAt, dc1Key, nil)
}
