package mapserver

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

var (
	shared   = mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/25")) // listed by dc1 and dc2
	edgeNet  = mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/29")) // longer: only edge
	dc1Only  = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	dc2Only  = mapping.NewEID(0, netip.MustParsePrefix("2001:db8:2::/48"))
	vm       = mapping.NewEID(0, netip.MustParsePrefix("203.0.113.10/32"))
	xtrA     = netip.MustParseAddrPort("192.0.2.31:4342")
	xtrA2    = netip.MustParseAddrPort("192.0.2.33:4342")
	xtrB     = netip.MustParseAddrPort("192.0.2.32:4342")
	dc1Key   = []byte("dc1-key")
	dc2Key   = []byte("dc2-key")
	edgeKey  = []byte("edge-key")
	itrNotif = netip.AddrPortFrom(itr, 4342)
)

// mobilitySites: dc1 and dc2 share a prefix a VM moves within, each with
// its own key; edge holds a longer prefix inside it.
func mobilitySites() []Site {
	return []Site{
		{Name: "dc1", Keys: []Key{{ID: 0, Alg: wire.AuthHMACSHA256, Secret: dc1Key}},
			Prefixes: []SitePrefix{{EID: shared, AcceptMoreSpecifics: true}, {EID: dc1Only}}},
		{Name: "dc2", Keys: []Key{{ID: 0, Alg: wire.AuthHMACSHA256, Secret: dc2Key}},
			Prefixes: []SitePrefix{{EID: shared, AcceptMoreSpecifics: true}, {EID: dc2Only}}},
		{Name: "edge", Keys: []Key{{ID: 0, Alg: wire.AuthHMACSHA256, Secret: edgeKey}},
			Prefixes: []SitePrefix{{EID: edgeNet, AcceptMoreSpecifics: true}}},
	}
}

func newMobilityFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.s = New(mobilitySites(), Options{Now: f.clk.Now, Sender: f.timers, Stats: f.reg})
	return f
}

func withSite(id byte, siteID uint64) regOpt {
	return func(m *wire.MapRegister) { m.HasXTRID, m.XTRID, m.SiteID = true, [16]byte{id}, siteID }
}

func (f *fixture) regVM(src netip.AddrPort, key []byte, nonce uint64, rloc string, opts ...regOpt) []lisptest.Sent {
	f.t.Helper()
	return f.register(src, 0, wire.AuthHMACSHA256, key, nonce, []wire.EIDRecord{record(vm, rloc)}, opts...)
}

// notifyTo finds the one message sent to dst, checks it is a Map-Notify
// signed with key and returns it.
func (f *fixture) notifyTo(msgs []lisptest.Sent, dst netip.AddrPort, key []byte) *wire.MapNotify {
	f.t.Helper()
	var found *lisptest.Sent
	for i := range msgs {
		if msgs[i].To == dst {
			if found != nil {
				f.t.Fatalf("two messages to %v", dst)
			}
			found = &msgs[i]
		}
	}
	if found == nil {
		f.t.Fatalf("nothing sent to %v among %d messages", dst, len(msgs))
	}
	if found.Src != ms {
		f.t.Errorf("message to %v sent from %v, want %v", dst, found.Src, ms)
	}
	if err := wire.Verify(found.B, key, wire.AuthOptions{}); err != nil {
		f.t.Fatalf("message to %v does not verify with %q: %v", dst, key, err)
	}
	m, err := wire.Decode(found.B)
	if err != nil {
		f.t.Fatal(err)
	}
	n, ok := m.(*wire.MapNotify)
	if !ok {
		f.t.Fatalf("sent %v to %v, want a Map-Notify", m, dst)
	}
	return n
}

// onlyLocator checks n carries vm with exactly the locator rloc.
func onlyLocator(t *testing.T, what string, n *wire.MapNotify, rloc string) {
	t.Helper()
	if len(n.Records) != 1 || n.Records[0].PrefixString() != "203.0.113.10/32" {
		t.Fatalf("%s: records %v", what, n.Records)
	}
	ls := n.Records[0].Locators
	if len(ls) != 1 || !ls[0].Address.Equal(wire.AddrFromIP(netip.MustParseAddr(rloc))) {
		t.Errorf("%s: locators %v, want only %s", what, ls, rloc)
	}
}

func (f *fixture) vmView(site string) *adminapi.Registration {
	f.t.Helper()
	for _, st := range f.s.Sites(site) {
		for i, r := range st.Registrations {
			if r.EIDPrefix.String() == "203.0.113.10/32" {
				return &st.Registrations[i]
			}
		}
	}
	return nil
}

func TestSharedPrefixEachSiteItsKey(t *testing.T) {
	f := newMobilityFixture(t)
	host2 := mapping.NewEID(0, netip.MustParsePrefix("203.0.113.77/32"))
	f.expectNotify(f.regVM(xtrA, dc1Key, 1, "192.0.2.31"), xtrA, dc1Key, 1)
	// dc2 is second in config order: dc1's key is tried first and fails.
	out := f.register(xtrB, 0, wire.AuthHMACSHA256, dc2Key, 1, []wire.EIDRecord{record(host2, "192.0.2.32")})
	f.expectNotify(out, xtrB, dc2Key, 1)
	if v := f.vmView("dc1"); v == nil || v.RegisteredBy[0].Source != xtrA {
		t.Errorf("dc1 does not hold the VM: %+v", f.s.Sites("dc1"))
	}
	if regs := f.s.Sites("dc2")[0].Registrations; len(regs) != 1 || regs[0].EIDPrefix.String() != "203.0.113.77/32" {
		t.Errorf("dc2 registrations: %+v", regs)
	}
	if a1, a2 := f.s.Sites("dc1")[0].AuthFailures, f.s.Sites("dc2")[0].AuthFailures; a1 != 0 || a2 != 0 {
		t.Errorf("auth failures after good registrations: dc1 %d, dc2 %d", a1, a2)
	}

	for _, tc := range []struct {
		name, reason string
		do           func() []lisptest.Sent
	}{
		{"neither site's key", "bad-auth", func() []lisptest.Sent { return f.regVM(xtrB, []byte("wrong"), 2, "192.0.2.32") }},
		{"key ID neither site has", "unknown-key-id", func() []lisptest.Sent {
			return f.register(xtrB, 3, wire.AuthHMACSHA256, dc2Key, 2, []wire.EIDRecord{record(vm, "192.0.2.32")})
		}},
		// Longest match: inside edge's /28, dc2's /25 gives no right.
		{"the longer prefix belongs to edge", "bad-auth", func() []lisptest.Sent {
			e := mapping.NewEID(0, netip.MustParsePrefix("203.0.113.5/32"))
			return f.register(xtrB, 0, wire.AuthHMACSHA256, dc2Key, 2, []wire.EIDRecord{record(e, "192.0.2.32")})
		}},
		// The chosen site must hold every record: dc1's prefix with dc2's key.
		{"records of the shared and of another site's prefix", "bad-auth", func() []lisptest.Sent {
			return f.register(xtrB, 0, wire.AuthHMACSHA256, dc2Key, 2, []wire.EIDRecord{record(vm, "192.0.2.32"), record(dc1Only, "192.0.2.32")})
		}},
		{"records no one site holds", "prefix-outside-site", func() []lisptest.Sent {
			return f.register(xtrB, 0, wire.AuthHMACSHA256, dc2Key, 2, []wire.EIDRecord{record(dc1Only, "192.0.2.32"), record(dc2Only, "192.0.2.32")})
		}},
	} {
		before := f.counter("registers_rejected", tc.reason)
		if out := tc.do(); len(out) != 0 {
			t.Errorf("%s: answered %d messages", tc.name, len(out))
		}
		if got := f.counter("registers_rejected", tc.reason); got != before+1 {
			t.Errorf("%s: %s counted %d times", tc.name, tc.reason, got-before)
		}
	}
	// Every candidate counts the failures it was asked to judge: both sites
	// the first two, edge the third, dc1 alone the fourth.
	a1, a2, ae := f.s.Sites("dc1")[0].AuthFailures, f.s.Sites("dc2")[0].AuthFailures, f.s.Sites("edge")[0].AuthFailures
	if a1 != 3 || a2 != 2 || ae != 1 {
		t.Errorf("auth failures: dc1 %d, dc2 %d, edge %d, want 3, 2, 1", a1, a2, ae)
	}
	if v := f.vmView("dc1"); v == nil || v.Moves != 0 || len(v.Locators) != 1 || v.Locators[0].Address.String() != "192.0.2.31" {
		t.Errorf("a rejected registration changed the VM: %+v", v)
	}
	// A message holding only dc2's prefixes passes with dc2's key.
	out = f.register(xtrB, 0, wire.AuthHMACSHA256, dc2Key, 3, []wire.EIDRecord{record(vm, "192.0.2.32"), record(dc2Only, "192.0.2.32")})
	f.expectNotify(out, xtrB, dc2Key, 3)
}

func TestMoveBetweenSites(t *testing.T) {
	f := newMobilityFixture(t)
	// A subscriber (an ITR of edge) watches the VM.
	f.register(netip.AddrPortFrom(itr, 4342), 0, wire.AuthHMACSHA256, edgeKey, 1,
		[]wire.EIDRecord{record(mapping.NewEID(0, netip.MustParsePrefix("203.0.113.1/32")), "192.0.2.21")}, withXTR(9))
	f.regVM(xtrA, dc1Key, 1, "192.0.2.31", withSite(0xA, 1))
	req := mapRequest(vm, 100)
	mreq := req.Msg.(*wire.MapRequest)
	mreq.HasXTRID, mreq.XTRID, mreq.SiteID = true, [16]byte{9}, 7
	mreq.Records[0].Notify = true
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	sub := f.notifyTo(f.timers.Take(), itrNotif, edgeKey)
	onlyLocator(t, "subscription", sub, "192.0.2.31")
	f.ack(sub, edgeKey)
	start := f.clk.Now()

	// The VM moves to dc2: B registers it.
	f.clk.Advance(10 * time.Second)
	f.expectNotify(f.regVM(xtrB, dc2Key, 1, "192.0.2.32", withSite(0xB, 2)), xtrB, dc2Key, 1)
	sentNow := f.timers.Take()
	if len(sentNow) != 2 {
		t.Fatalf("%d unsolicited messages after the move, want the old xTR's Map-Notify and a publication", len(sentNow))
	}
	toA := f.notifyTo(sentNow, xtrA, dc1Key)
	onlyLocator(t, "Map-Notify to the old xTR", toA, "192.0.2.32")
	if !toA.HasXTRID || toA.XTRID != [16]byte{0xA} || toA.SiteID != 1 || toA.KeyID != 0 {
		t.Errorf("Map-Notify to the old xTR: xTR-ID %v/%x site-ID %d", toA.HasXTRID, toA.XTRID, toA.SiteID)
	}
	if toA.Records[0].Locators[0].Local() {
		t.Error("the old xTR is told the new locator is local to it")
	}
	pub := f.notifyTo(sentNow, itrNotif, edgeKey)
	onlyLocator(t, "publication", pub, "192.0.2.32")
	if pub.Nonce != 101 {
		t.Errorf("publication nonce %d, want 101", pub.Nonce)
	}
	f.ack(pub, edgeKey)

	if v := f.vmView("dc1"); v != nil {
		t.Errorf("dc1 still shows the VM: %+v", v)
	}
	v := f.vmView("dc2")
	if v == nil || len(v.RegisteredBy) != 1 || v.RegisteredBy[0].Source != xtrB ||
		len(v.Locators) != 1 || v.Locators[0].Address.String() != "192.0.2.32" {
		t.Fatalf("dc2 after the move: %+v", v)
	}
	if v.Moves != 1 || v.LastMove == nil || !v.LastMove.Equal(start.Add(10*time.Second)) {
		t.Errorf("moves %d, last move %v", v.Moves, v.LastMove)
	}
	if got := f.counter("registrations_moved", ""); got != 1 {
		t.Errorf("registrations_moved = %d", got)
	}
	// Map-Requests now go to B.
	var out lisptest.Sender
	f.s.HandleMapRequest(mapRequest(vm, 5), &out)
	if len(out.All()) != 1 || out.All()[0].To != netip.AddrPortFrom(xtrB.Addr(), 4342) {
		t.Errorf("Map-Request after the move went to %+v", out.All())
	}

	// The old xTR gets the Map-Notify again until it acks.
	f.clk.Advance(3 * time.Second)
	f.s.Tick()
	again := f.notifyTo(f.timers.Take(), xtrA, dc1Key)
	if again.Nonce != toA.Nonce {
		t.Errorf("retransmission nonce %x, want %x", again.Nonce, toA.Nonce)
	}
	f.ack(toA, dc1Key)
	if n := f.s.PendingNotifies(); n != 0 {
		t.Errorf("%d Map-Notifies pending after the acks", n)
	}
	f.clk.Advance(10 * time.Second)
	f.s.Tick()
	if msgs := f.timers.Take(); len(msgs) != 0 {
		t.Errorf("%d messages sent after the ack", len(msgs))
	}

	// And back to dc1: the same in reverse.
	f.regVM(xtrA, dc1Key, 2, "192.0.2.31", withSite(0xA, 1))
	sentNow = f.timers.Take()
	toB := f.notifyTo(sentNow, xtrB, dc2Key)
	onlyLocator(t, "Map-Notify to dc2's xTR", toB, "192.0.2.31")
	if toB.XTRID != [16]byte{0xB} || toB.SiteID != 2 {
		t.Errorf("Map-Notify to dc2's xTR: xTR-ID %x site-ID %d", toB.XTRID, toB.SiteID)
	}
	onlyLocator(t, "publication of the move back", f.notifyTo(sentNow, itrNotif, edgeKey), "192.0.2.31")
	if v := f.vmView("dc2"); v != nil {
		t.Errorf("dc2 still shows the VM: %+v", v)
	}
	if v := f.vmView("dc1"); v == nil || v.Moves != 2 || len(v.RegisteredBy) != 1 || v.Locators[0].Address.String() != "192.0.2.31" {
		t.Errorf("dc1 after the move back: %+v", v)
	}
	if got := f.counter("registrations_moved", ""); got != 2 {
		t.Errorf("registrations_moved = %d", got)
	}
	if f.s.Registrations() != 2 { // the VM and the subscriber's own host
		t.Errorf("%d registrations", f.s.Registrations())
	}
	// Once the prefix expires its move history goes with it.
	f.clk.Advance(4 * time.Minute)
	f.s.Tick()
	f.regVM(xtrA, dc1Key, 3, "192.0.2.31", withSite(0xA, 1))
	if v := f.vmView("dc1"); v == nil || v.Moves != 0 || v.LastMove != nil {
		t.Errorf("registered anew after expiry: %+v", v)
	}
}

func TestSameSiteMergesOtherSiteIDMoves(t *testing.T) {
	f := newMobilityFixture(t)
	f.regVM(xtrA, dc1Key, 1, "192.0.2.31", withSite(0xA, 1))
	f.regVM(xtrA2, dc1Key, 1, "192.0.2.33", withSite(0xA2, 1))
	v := f.vmView("dc1")
	if v == nil || len(v.Locators) != 2 || len(v.RegisteredBy) != 2 || v.Moves != 0 {
		t.Fatalf("two xTRs of one site and site-ID: %+v", v)
	}
	// A learns the merged set, as before.
	if n := f.notifyTo(f.timers.Take(), xtrA, dc1Key); len(n.Records[0].Locators) != 2 {
		t.Errorf("merge Map-Notify carries %v", n.Records[0].Locators)
	}
	if got := f.counter("registrations_moved", ""); got != 0 {
		t.Errorf("registrations_moved = %d after a merge", got)
	}

	// Same Map-Server site, another site-ID: a move, both old xTRs told.
	f.regVM(xtrB, dc1Key, 1, "192.0.2.32", withSite(0xC, 3))
	msgs := f.timers.Take()
	if len(msgs) != 2 {
		t.Fatalf("%d Map-Notifies after the move, want one per old xTR", len(msgs))
	}
	onlyLocator(t, "to A", f.notifyTo(msgs, xtrA, dc1Key), "192.0.2.32")
	onlyLocator(t, "to A2", f.notifyTo(msgs, xtrA2, dc1Key), "192.0.2.32")
	v = f.vmView("dc1")
	if v == nil || len(v.RegisteredBy) != 1 || v.RegisteredBy[0].SiteID != 3 || v.Moves != 1 {
		t.Errorf("after the move within dc1: %+v", v)
	}
}

func TestLapsedOtherSiteIsNoMove(t *testing.T) {
	f := newMobilityFixture(t)
	f.regVM(xtrA, dc1Key, 1, "192.0.2.31", withSite(0xA, 1))
	f.clk.Advance(4 * time.Minute) // lapsed, not yet swept by Tick
	f.timers.Take()
	f.regVM(xtrB, dc2Key, 1, "192.0.2.32", withSite(0xB, 2))
	if msgs := f.timers.Take(); len(msgs) != 0 {
		t.Errorf("%d messages to a lapsed xTR", len(msgs))
	}
	if v := f.vmView("dc2"); v == nil || v.Moves != 0 || len(v.RegisteredBy) != 1 {
		t.Errorf("after registering over a lapsed site: %+v", v)
	}
	if f.counter("registrations_moved", "") != 0 || f.counter("registrations_expired", "") != 1 {
		t.Error("a lapsed registration counted as moved, or not as expired")
	}
}

// TestWithdrawIsNoMove: a record TTL of 0 with the T bit (an xTR whose
// host went silent) removes only that xTR's registration; sent by the old
// site after the host moved, it must not take the host back.
func TestWithdrawIsNoMove(t *testing.T) {
	f := newMobilityFixture(t)
	withdraw := func(m *wire.MapRegister) { m.UseTTL = true; m.Records[0].TTL = 0 }
	f.regVM(xtrA, dc1Key, 1, "192.0.2.31", withSite(0xA, 1))
	f.regVM(xtrB, dc2Key, 1, "192.0.2.32", withSite(0xB, 2))
	f.timers.Take()
	f.regVM(xtrA, dc1Key, 2, "192.0.2.31", withSite(0xA, 1), withdraw)
	if v := f.vmView("dc2"); v == nil || len(v.RegisteredBy) != 1 || v.Moves != 1 {
		t.Fatalf("a late withdrawal from the old site changed the registration: %+v", v)
	}
	if msgs := f.timers.Take(); len(msgs) != 0 {
		t.Errorf("%d messages sent for a withdrawal of nothing", len(msgs))
	}
	f.regVM(xtrB, dc2Key, 2, "192.0.2.32", withSite(0xB, 2), withdraw)
	if v := f.vmView("dc2"); v != nil {
		t.Errorf("withdrawn registration still listed: %+v", v)
	}
	if f.s.Registrations() != 0 || f.counter("registrations_withdrawn", "") != 1 {
		t.Errorf("registrations %d, withdrawn counter %d", f.s.Registrations(), f.counter("registrations_withdrawn", ""))
	}
}

// TestSitesInNumericOrder: registrations are listed by address, not as
// strings (which put 203.0.113.10/32 before 203.0.113.8/29).
func TestSitesInNumericOrder(t *testing.T) {
	f := newMobilityFixture(t)
	p8 := mapping.NewEID(0, netip.MustParsePrefix("203.0.113.8/29"))
	out := f.register(xtrA, 0, wire.AuthHMACSHA256, dc1Key, 1, []wire.EIDRecord{record(vm, "192.0.2.31"), record(p8, "192.0.2.31")})
	f.expectNotify(out, xtrA, dc1Key, 1)
	var got []string
	for _, r := range f.s.Sites("dc1")[0].Registrations {
		got = append(got, r.EIDPrefix.String())
	}
	if want := []string{"203.0.113.8/29", "203.0.113.10/32"}; !slices.Equal(got, want) {
		t.Errorf("dc1 registrations %v, want %v", got, want)
	}
}

// TestMovedHostsNotifiedTogether: forty hosts of dc1's xTR register at
// dc2, twenty per Map-Register (a mass migration, batched by dc2's xTR):
// the old xTR hears of them in a few Map-Notifies of many records each,
// every one within 576 bytes and signed with dc1's key, not in forty.
func TestMovedHostsNotifiedTogether(t *testing.T) {
	f := newMobilityFixture(t)
	host := func(i int) mapping.EID {
		return mapping.HostEID(0, netip.AddrFrom4([4]byte{203, 0, 113, byte(20 + i)}))
	}
	var recs []wire.EIDRecord
	for i := range 40 {
		recs = append(recs, record(host(i), "192.0.2.31"))
	}
	f.register(xtrA, 0, wire.AuthHMACSHA256, dc1Key, 1, recs)
	f.timers.Take()
	for part := range 2 {
		var moved []wire.EIDRecord
		for i := part * 20; i < part*20+20; i++ {
			moved = append(moved, record(host(i), "192.0.2.32"))
		}
		f.register(xtrB, 0, wire.AuthHMACSHA256, dc2Key, uint64(1+part), moved)
	}
	sent := f.timers.Take()
	told := map[string]bool{}
	for _, m := range sent {
		if m.To != xtrA {
			t.Errorf("a Map-Notify to %v", m.To)
			continue
		}
		if len(m.B) > notifyBudget4 {
			t.Errorf("a Map-Notify of %d bytes", len(m.B))
		}
		if err := wire.Verify(m.B, dc1Key, wire.AuthOptions{}); err != nil {
			t.Fatal(err)
		}
		dec, err := wire.Decode(m.B)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range dec.(*wire.MapNotify).Records {
			told[r.PrefixString()] = true
		}
	}
	if len(told) != 40 || len(sent) > 4 {
		t.Errorf("the old xTR heard of %d hosts in %d Map-Notifies, want 40 in at most 4", len(told), len(sent))
	}
	if n := f.s.c.movedNotifies.Load(); n != uint64(len(sent)) {
		t.Errorf("moved_notifies_sent = %d, want %d", n, len(sent))
	}
}

// TestMoveLog: every move is in the log with its time, EID, sites and
// xTRs, oldest first, filtered by site; the log keeps the last maxMoveLog.
func TestMoveLog(t *testing.T) {
	f := newMobilityFixture(t)
	f.regVM(xtrA, dc1Key, 1, "192.0.2.31")
	f.clk.Advance(time.Second)
	f.regVM(xtrB, dc2Key, 1, "192.0.2.32")
	f.ackSent(dc1Key) // A hears it moved: its next registration is a return
	f.clk.Advance(time.Second)
	f.regVM(xtrA, dc1Key, 2, "192.0.2.31")
	f.ackSent(dc2Key)
	got := f.s.Moves("")
	if len(got) != 2 {
		t.Fatalf("%d moves logged, want 2: %+v", len(got), got)
	}
	m := got[0]
	if m.EIDPrefix.String() != "203.0.113.10/32" || m.FromSite != "dc1" || m.ToSite != "dc2" ||
		m.From != xtrA.Addr() || m.By != xtrB.Addr() || !m.Time.Equal(f.clk.Now().Add(-time.Second)) {
		t.Errorf("first move: %+v", m)
	}
	if got[1].FromSite != "dc2" || got[1].ToSite != "dc1" || !got[1].Time.After(m.Time) {
		t.Errorf("second move: %+v", got[1])
	}
	if n := len(f.s.Moves("dc2")); n != 2 {
		t.Errorf("%d moves from or to dc2, want 2", n)
	}
	if n := len(f.s.Moves("edge")); n != 0 {
		t.Errorf("%d moves of edge, want 0", n)
	}
	// A long migration keeps the last ones.
	for i := range maxMoveLog + 10 {
		key, src := dc2Key, xtrB
		if i%2 == 1 {
			key, src = dc1Key, xtrA
		}
		f.regVM(src, key, uint64(10+i), src.Addr().String())
		f.ackSent(map[bool][]byte{true: dc2Key, false: dc1Key}[i%2 == 1])
	}
	got = f.s.Moves("")
	if len(got) != maxMoveLog || got[len(got)-1].ToSite != "dc1" {
		t.Errorf("%d moves kept (want %d), last %+v", len(got), maxMoveLog, got[len(got)-1])
	}
}

// TestRefreshCrossingMoveIgnored: the old xTR's periodic Map-Register,
// sent before the "moved" Map-Notify reached it, arrives after the move:
// it must not take the VM back (both sites would then believe it is at
// the other, and nobody would serve it). Once the old xTR has
// acknowledged the news, its registration of the VM is a real return.
func TestRefreshCrossingMoveIgnored(t *testing.T) {
	f := newMobilityFixture(t)
	f.regVM(xtrA, dc1Key, 1, "192.0.2.31", withSite(0xA, 1))
	f.timers.Take()
	f.clk.Advance(time.Second)
	f.expectNotify(f.regVM(xtrB, dc2Key, 1, "192.0.2.32", withSite(0xB, 2)), xtrB, dc2Key, 1)
	toA := f.notifyTo(f.timers.Take(), xtrA, dc1Key)

	// A's refresh crosses the Map-Notify: acknowledged, but the VM stays.
	f.expectNotify(f.regVM(xtrA, dc1Key, 2, "192.0.2.31", withSite(0xA, 1)), xtrA, dc1Key, 2)
	if msgs := f.timers.Take(); len(msgs) != 0 {
		t.Errorf("the stale refresh sent %d Map-Notifies (a move back to dc1)", len(msgs))
	}
	if v := f.vmView("dc2"); v == nil || v.Locators[0].Address.String() != "192.0.2.32" {
		t.Fatalf("dc2 lost the VM to the old xTR's stale refresh: %+v", v)
	}
	if v := f.vmView("dc1"); v != nil {
		t.Errorf("dc1 shows the VM again: %+v", v)
	}
	if got := f.counter("register_records_ignored", "stale-after-move"); got != 1 {
		t.Errorf("register_records_ignored{stale-after-move} = %d, want 1", got)
	}

	// A heard the news; the VM then really comes back.
	f.ack(toA, dc1Key)
	f.clk.Advance(time.Second)
	f.regVM(xtrA, dc1Key, 3, "192.0.2.31", withSite(0xA, 1))
	onlyLocator(t, "Map-Notify to dc2's xTR", f.notifyTo(f.timers.Take(), xtrB, dc2Key), "192.0.2.31")
	if v := f.vmView("dc1"); v == nil || v.Moves != 2 {
		t.Errorf("dc1 after the real return: %+v", v)
	}
	// Nothing is left waiting once every Map-Notify is acknowledged or
	// given up.
	f.clk.Advance(5 * time.Minute)
	for range 10 {
		f.clk.Advance(time.Minute)
		f.s.Tick()
	}
	f.s.mu.Lock()
	left := len(f.s.leaving)
	f.s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d EIDs still marked leaving after every Map-Notify ended", left)
	}
}

// TestPublicationsCoalescedPerITR: an ITR subscribed to 40 hosts hears of
// a Map-Register that moves 20 of them in as few Map-Notifies as fit 576
// bytes (several records each), not one per host; every record is one it
// takes: the nonce is above its subscription's start and above what it
// took before, and a later publication to one of them goes higher still.
func TestPublicationsCoalescedPerITR(t *testing.T) {
	f := newMobilityFixture(t)
	host := func(i int) mapping.EID {
		return mapping.HostEID(0, netip.AddrFrom4([4]byte{203, 0, 113, byte(20 + i)}))
	}
	// The subscriber, an ITR of edge, and the 40 hosts at dc1.
	f.register(itrNotif, 0, wire.AuthHMACSHA256, edgeKey, 1,
		[]wire.EIDRecord{record(mapping.NewEID(0, netip.MustParsePrefix("203.0.113.1/32")), "192.0.2.21")}, withXTR(9))
	var recs []wire.EIDRecord
	for i := range 40 {
		recs = append(recs, record(host(i), "192.0.2.31"))
	}
	f.register(xtrA, 0, wire.AuthHMACSHA256, dc1Key, 1, recs)
	start := map[string]uint64{} // per host, the nonce its subscription started at
	for i := range 40 {
		req := mapRequest(host(i), uint64(1000+10*i))
		m := req.Msg.(*wire.MapRequest)
		m.HasXTRID, m.XTRID, m.SiteID = true, [16]byte{9}, 7
		m.Records[0].Notify = true
		f.s.HandleMapRequest(req, &lisptest.Sender{})
		start[host(i).Prefix.String()] = uint64(1000 + 10*i)
	}
	f.ackSent(edgeKey)
	last := map[string]uint64{}
	// take plays the ITR: every record must name a subscription of its own
	// below the nonce and go above the last nonce it took for it.
	take := func(what string, sent []lisptest.Sent) (notifies, records int) {
		t.Helper()
		for _, m := range sent {
			if m.To != itrNotif {
				continue
			}
			notifies++
			if len(m.B) > notifyBudget4 {
				t.Errorf("%s: a publication of %d bytes", what, len(m.B))
			}
			n := f.notifyTo([]lisptest.Sent{m}, itrNotif, edgeKey)
			for _, r := range n.Records {
				p := r.PrefixString()
				if st, ok := start[p]; !ok || n.Nonce < st || n.Nonce <= last[p] {
					t.Errorf("%s: record %s with nonce %d: subscription from %d, last taken %d", what, p, n.Nonce, st, last[p])
				}
				last[p] = n.Nonce
				records++
			}
			f.ack(n, edgeKey)
		}
		return notifies, records
	}
	var moved []wire.EIDRecord
	for i := range 20 {
		moved = append(moved, record(host(i), "192.0.2.32"))
	}
	f.register(xtrB, 0, wire.AuthHMACSHA256, dc2Key, 1, moved)
	sent := f.timers.Take()
	notifies, records := take("the move", sent)
	if records != 20 || notifies > 3 {
		t.Errorf("the ITR heard of %d moved hosts in %d Map-Notifies, want 20 in at most 3", records, notifies)
	}
	if got := f.counter("publications", ""); got < 20 {
		t.Errorf("publications = %d, want a count per host and subscription (20)", got)
	}
	// Host 0 comes back: its publication goes above the batch's nonce.
	for _, m := range sent {
		if m.To == xtrA {
			f.ack(f.notifyTo([]lisptest.Sent{m}, xtrA, dc1Key), dc1Key)
		}
	}
	f.register(xtrA, 0, wire.AuthHMACSHA256, dc1Key, 2, []wire.EIDRecord{record(host(0), "192.0.2.31")})
	if n, r := take("the return", f.timers.Take()); n != 1 || r != 1 {
		t.Errorf("the return: %d Map-Notifies with %d records, want 1 with 1", n, r)
	}
}
