package mapserver

import (
	"bytes"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	ms     = netip.MustParseAddr("192.0.2.1")
	etr1   = netip.MustParseAddrPort("192.0.2.11:4342")
	etr2   = netip.MustParseAddrPort("192.0.2.12:4342")
	itr    = netip.MustParseAddr("192.0.2.21")
	sub9   = netip.AddrPortFrom(itr, wire.ControlPort) // xTR 9 registers from its ITR-RLOC: it may subscribe
	dc1    = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	dc1v6  = mapping.NewEID(0, netip.MustParsePrefix("2001:db8:1::/48"))
	dc2    = mapping.NewEID(1000, netip.MustParsePrefix("203.0.113.0/24"))
	secret = []byte("s3cret")
)

func testSites() []Site {
	return []Site{
		{Name: "dc1", Keys: []Key{{ID: 0, Alg: wire.AuthHMACSHA256, Secret: secret}, {ID: 1, Alg: wire.AuthHMACSHA1, Secret: []byte("sha1key")}},
			Prefixes: []SitePrefix{{EID: dc1, AcceptMoreSpecifics: true}, {EID: dc1v6}}},
		{Name: "dc2", Keys: []Key{{ID: 0, Alg: wire.AuthHMACSHA256, Secret: []byte("dc2key")}},
			Prefixes: []SitePrefix{{EID: dc2}}},
	}
}

type fixture struct {
	t      *testing.T
	s      *Server
	clk    *lisptest.Clock
	timers *lisptest.Sender
	reg    *stats.Registry
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, clk: lisptest.NewClock(time.Unix(1_700_000_000, 0)), timers: &lisptest.Sender{}, reg: stats.NewRegistry()}
	f.s = New(testSites(), Options{Now: f.clk.Now, Sender: f.timers, Stats: f.reg})
	return f
}

func (f *fixture) counter(name, reason string) uint64 {
	for _, s := range f.reg.Snapshot() {
		if s.Desc.Name == name && s.Desc.Label("reason") == reason {
			return s.Value
		}
	}
	f.t.Fatalf("no counter %s{%s}", name, reason)
	return 0
}

func record(eid mapping.EID, rlocs ...string) wire.EIDRecord {
	m := mapping.Mapping{EID: eid, TTL: 1440, Authoritative: true}
	for _, r := range rlocs {
		m.Locators = append(m.Locators, mapping.Locator{Addr: netip.MustParseAddr(r), Priority: 1, Weight: 50,
			MPriority: 255, Flags: wire.LocatorReachable | wire.LocatorLocal})
	}
	return m.Record()
}

type regOpt func(*wire.MapRegister)

func withXTR(id byte) regOpt {
	return func(m *wire.MapRegister) { m.HasXTRID, m.XTRID, m.SiteID = true, [16]byte{id}, 7 }
}
func proxy(m *wire.MapRegister) { m.ProxyReply = true }

// register builds, signs and hands a Map-Register to the server, returning
// what it sent back.
func (f *fixture) register(src netip.AddrPort, keyID uint8, alg wire.AuthAlg, key []byte, nonce uint64, recs []wire.EIDRecord, opts ...regOpt) []lisptest.Sent {
	f.t.Helper()
	m := &wire.MapRegister{WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: nonce, KeyID: keyID, Algorithm: alg, Records: recs}}
	for _, o := range opts {
		o(m)
	}
	raw, err := wire.EncodeSigned(m, key, wire.AuthOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	dec, err := wire.Decode(raw)
	if err != nil {
		f.t.Fatal(err)
	}
	var out lisptest.Sender
	f.s.HandleMapRegister(&control.Request{Raw: raw, Msg: dec, Src: src, Local: netip.AddrPortFrom(ms, wire.ControlPort)}, &out)
	return out.Take()
}

func (f *fixture) expectNotify(out []lisptest.Sent, to netip.AddrPort, key []byte, nonce uint64) *wire.MapNotify {
	f.t.Helper()
	if len(out) != 1 {
		f.t.Fatalf("sent %d messages, want one Map-Notify", len(out))
	}
	if out[0].To != to {
		f.t.Errorf("Map-Notify to %v, want %v", out[0].To, to)
	}
	if err := wire.Verify(out[0].B, key, wire.AuthOptions{}); err != nil {
		f.t.Errorf("Map-Notify does not verify: %v", err)
	}
	m, err := wire.Decode(out[0].B)
	if err != nil {
		f.t.Fatal(err)
	}
	n, ok := m.(*wire.MapNotify)
	if !ok || n.Nonce != nonce {
		f.t.Fatalf("got %v, want Map-Notify nonce %d", m, nonce)
	}
	return n
}

func TestRegisterBothAlgorithms(t *testing.T) {
	f := newFixture(t)
	out := f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
	f.expectNotify(out, etr1, secret, 1)
	out = f.register(etr1, 1, wire.AuthHMACSHA1, []byte("sha1key"), 2, []wire.EIDRecord{record(dc1v6, "192.0.2.11")})
	f.expectNotify(out, etr1, []byte("sha1key"), 2)
	sites := f.s.Sites("dc1")
	if len(sites) != 1 || len(sites[0].Registrations) != 2 {
		t.Fatalf("show site dc1: %+v", sites)
	}
	r := sites[0].Registrations[0]
	if r.EIDPrefix.String() != "198.51.100.0/24" || r.Locators[0].Address.String() != "192.0.2.11" || r.RegisteredBy[0].Source != etr1 {
		t.Errorf("registration view: %+v", r)
	}
	if sites[0].Registers != 2 {
		t.Errorf("registers = %d", sites[0].Registers)
	}
}

func TestRegisterRejections(t *testing.T) {
	f := newFixture(t)
	other := mapping.NewEID(0, netip.MustParsePrefix("192.0.2.128/25"))
	for _, tc := range []struct {
		name, reason string
		do           func() []lisptest.Sent
	}{
		{"bad key", "bad-auth", func() []lisptest.Sent {
			return f.register(etr1, 0, wire.AuthHMACSHA256, []byte("wrong"), 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
		}},
		{"wrong key id", "unknown-key-id", func() []lisptest.Sent {
			return f.register(etr1, 9, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
		}},
		{"wrong algorithm for key", "unknown-key-id", func() []lisptest.Sent {
			return f.register(etr1, 0, wire.AuthHMACSHA1, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
		}},
		{"out-of-site prefix", "no-site", func() []lisptest.Sent {
			return f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(other, "192.0.2.11")})
		}},
		{"less specific than the site", "no-site", func() []lisptest.Sent {
			wide := mapping.NewEID(0, netip.MustParsePrefix("198.51.0.0/16"))
			return f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(wide, "192.0.2.11")})
		}},
		{"more specific without accept-more-specifics", "no-site", func() []lisptest.Sent {
			sub := mapping.NewEID(0, netip.MustParsePrefix("2001:db8:1:1::/64"))
			return f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(sub, "192.0.2.11")})
		}},
		{"another site's prefix", "prefix-outside-site", func() []lisptest.Sent {
			return f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11"), record(dc2, "192.0.2.11")})
		}},
	} {
		before := f.counter("registers_rejected", tc.reason)
		if out := tc.do(); len(out) != 0 {
			t.Errorf("%s: answered %d messages", tc.name, len(out))
		}
		if f.counter("registers_rejected", tc.reason) != before+1 {
			t.Errorf("%s: counter %s not incremented", tc.name, tc.reason)
		}
	}
	if n := f.s.Registrations(); n != 0 {
		t.Errorf("%d registrations after rejections", n)
	}
	if got := f.s.Sites("dc1")[0].AuthFailures; got != 3 {
		t.Errorf("dc1 auth failures = %d, want 3", got)
	}
	// A more-specific where allowed is fine.
	host := mapping.NewEID(0, netip.MustParsePrefix("198.51.100.7/32"))
	if out := f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(host, "192.0.2.11")}); len(out) != 1 {
		t.Errorf("more-specific registration not acknowledged")
	}
}

func TestNonceReplay(t *testing.T) {
	sites := testSites()
	// Sites require increasing nonces unless they opt out (LegacyNonces).
	f := newFixture(t)
	f.s = New(sites, Options{Now: f.clk.Now, Sender: f.timers, Stats: f.reg})
	recs := []wire.EIDRecord{record(dc1, "192.0.2.11")}
	if len(f.register(etr1, 0, wire.AuthHMACSHA256, secret, 5, recs, withXTR(1))) != 1 {
		t.Fatal("first registration refused")
	}
	if len(f.register(etr1, 0, wire.AuthHMACSHA256, secret, 5, recs, withXTR(1))) != 0 {
		t.Error("replayed nonce accepted")
	}
	if len(f.register(etr1, 0, wire.AuthHMACSHA256, secret, 6, recs, withXTR(1))) != 1 {
		t.Error("increased nonce refused")
	}
	if f.counter("registers_rejected", "nonce-not-increasing") != 1 {
		t.Error("replay not counted")
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
	f.clk.Advance(2*time.Minute + 59*time.Second)
	f.s.Tick()
	if f.s.Registrations() != 1 {
		t.Fatal("expired too early")
	}
	f.clk.Advance(2 * time.Second)
	f.s.Tick()
	if f.s.Registrations() != 0 {
		t.Fatal("did not expire after 3 minutes")
	}
	// With the T bit the record TTL (minutes) is the timeout.
	m := &wire.MapRegister{UseTTL: true, AuthBody: wire.AuthBody{Nonce: 2, Algorithm: wire.AuthHMACSHA256,
		Records: []wire.EIDRecord{record(dc1, "192.0.2.11")}}}
	m.Records[0].TTL = 10
	raw, _ := wire.EncodeSigned(m, secret, wire.AuthOptions{})
	f.s.HandleMapRegister(&control.Request{Raw: raw, Msg: m, Src: etr1, Local: netip.AddrPortFrom(ms, wire.ControlPort)}, &lisptest.Sender{})
	f.clk.Advance(9 * time.Minute)
	f.s.Tick()
	if f.s.Registrations() != 1 {
		t.Fatal("T-bit registration expired before its TTL")
	}
	f.clk.Advance(2 * time.Minute)
	f.s.Tick()
	if f.s.Registrations() != 0 {
		t.Fatal("T-bit registration outlived its TTL")
	}
}

func TestMergeTwoETRs(t *testing.T) {
	f := newFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1))
	f.register(etr2, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.12")}, withXTR(2))
	r := f.s.Sites("dc1")[0].Registrations[0]
	if len(r.Locators) != 2 || len(r.RegisteredBy) != 2 {
		t.Fatalf("merge: %+v", r)
	}
	// The first ETR learns the merged set in an unsolicited Map-Notify,
	// retransmitted until it acks.
	notes := f.timers.Take()
	if len(notes) != 1 || notes[0].To != etr1 {
		t.Fatalf("unsolicited Map-Notifies: %+v", notes)
	}
	m, _ := wire.Decode(notes[0].B)
	n := m.(*wire.MapNotify)
	if len(n.Records[0].Locators) != 2 {
		t.Errorf("notify carries %d locators", len(n.Records[0].Locators))
	}
	f.clk.Advance(3 * time.Second)
	f.s.Tick()
	if len(f.timers.Take()) != 1 {
		t.Error("no retransmission after 3 s")
	}
	f.ack(n, secret)
	if f.s.PendingNotifies() != 0 {
		t.Error("ack did not stop retransmission")
	}
	// One ETR lapses: the other still serves the prefix.
	f.clk.Advance(2 * time.Minute)
	f.register(etr2, 0, wire.AuthHMACSHA256, secret, 2, []wire.EIDRecord{record(dc1, "192.0.2.12")}, withXTR(2))
	f.clk.Advance(90 * time.Second)
	f.s.Tick()
	r = f.s.Sites("dc1")[0].Registrations[0]
	if len(r.RegisteredBy) != 1 || r.Locators[0].Address.String() != "192.0.2.12" {
		t.Errorf("after etr1 lapsed: %+v", r)
	}
}

func TestRetransmitGivesUp(t *testing.T) {
	f := newFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1))
	f.register(etr2, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.12")}, withXTR(2))
	f.timers.Take()
	// RFC 9301 §5.7: three retransmissions 3 s apart, then three more
	// doubling the wait; the ack is awaited one more doubled wait.
	var at []int
	for sec := 1; sec <= 100; sec++ {
		f.clk.Advance(time.Second)
		f.s.Tick()
		for range f.timers.Take() {
			at = append(at, sec)
		}
		if sec == 98 && f.s.PendingNotifies() != 1 {
			t.Fatal("gave up before 99 s")
		}
	}
	if want := []int{3, 6, 9, 15, 27, 51}; !slices.Equal(at, want) || f.s.PendingNotifies() != 0 {
		t.Errorf("retransmissions at %v s, want %v; %d pending", at, want, f.s.PendingNotifies())
	}
}

func mapRequest(eid mapping.EID, nonce uint64) *control.Request {
	m := &wire.MapRequest{Nonce: nonce, SourceEID: wire.AddrFromIP(itr), ITRRLOCs: []wire.Address{wire.AddrFromIP(itr)},
		Records: []wire.RequestRecord{{MaskLen: eid.MaskLen(), EID: eid.Address()}}}
	return &control.Request{Raw: []byte("ecm-bytes"), Msg: m, ECM: &wire.ECM{Message: m}, ReplyTo: netip.AddrPortFrom(itr, 61000),
		Local: netip.AddrPortFrom(ms, wire.ControlPort)}
}

func decodeReply(t *testing.T, s lisptest.Sent) *wire.MapReply {
	t.Helper()
	m, err := wire.Decode(s.B)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m.(*wire.MapReply)
	if !ok {
		t.Fatalf("sent %v, want Map-Reply", m)
	}
	return r
}

func TestProxyReplyVersusForward(t *testing.T) {
	f := newFixture(t)
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	// Not proxied: the ECM goes unchanged to the ETR that registered last.
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1))
	f.clk.Advance(time.Second)
	f.register(etr2, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.12")}, withXTR(2))
	var out lisptest.Sender
	if f.s.HandleMapRequest(mapRequest(host, 77), &out) != control.Handled {
		t.Fatal("not handled")
	}
	if len(out.All()) != 1 || string(out.All()[0].B) != "ecm-bytes" || out.All()[0].To != netip.AddrPortFrom(etr2.Addr(), 4342) {
		t.Fatalf("forward: %+v", out.All())
	}
	// Proxy: the Map-Server answers the ITR itself, A and L bits clear.
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 2, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1), proxy)
	out.Take()
	f.s.HandleMapRequest(mapRequest(host, 78), &out)
	if len(out.All()) != 1 || out.All()[0].To != netip.AddrPortFrom(itr, 61000) || out.All()[0].Src != ms {
		t.Fatalf("proxy reply: %+v", out.All())
	}
	rep := decodeReply(t, out.All()[0])
	rec := rep.Records[0]
	if rep.Nonce != 78 || rec.Authoritative || rec.PrefixString() != "198.51.100.0/24" || len(rec.Locators) != 2 || rec.Locators[0].Local() {
		t.Errorf("proxy reply: %v", rep)
	}
}

func TestNegativeForUnregistered(t *testing.T) {
	f := newFixture(t)
	// A registered more-specific splits the site prefix: the answer is the
	// least-specific prefix holding the EID and no registration.
	host := mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/25"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(host, "192.0.2.11")})
	var out lisptest.Sender
	f.s.HandleMapRequest(mapRequest(mapping.HostEID(0, netip.MustParseAddr("198.51.100.200")), 5), &out)
	rep := decodeReply(t, out.All()[0])
	rec := rep.Records[0]
	if rec.PrefixString() != "198.51.100.128/25" || rec.TTL != 1 || rec.Action != wire.ActionNativelyForward || len(rec.Locators) != 0 {
		t.Errorf("negative reply: %v", rep)
	}
	out.Take()
	f.s.HandleMapRequest(mapRequest(mapping.HostEID(1000, netip.MustParseAddr("203.0.113.9")), 6), &out)
	if rec := decodeReply(t, out.All()[0]).Records[0]; rec.PrefixString() != "[1000]203.0.113.0/24" || rec.TTL != 1 {
		t.Errorf("negative reply in IID 1000: %v", rec)
	}
	// Outside every site: not the Map-Server's business.
	if f.s.HandleMapRequest(mapRequest(mapping.HostEID(0, netip.MustParseAddr("192.0.2.99")), 7), &lisptest.Sender{}) != control.DropEIDNotServed {
		t.Error("handled an EID of no site")
	}
}

func TestPubSub(t *testing.T) {
	f := newFixture(t)
	// The subscribing xTR registers its own site: that is the security association.
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 1, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1), proxy)
	f.timers.Take()
	req := subscription("198.51.100.20", 100)
	var out lisptest.Sender
	f.s.HandleMapRequest(req, &out)
	if len(out.All()) != 1 {
		t.Fatalf("subscription request not answered: %+v", out.All())
	}
	ackN := f.timers.Take()
	if len(ackN) != 1 || ackN[0].To != netip.AddrPortFrom(itr, 4342) {
		t.Fatalf("subscription ack: %+v", ackN)
	}
	if err := wire.Verify(ackN[0].B, []byte("dc2key"), wire.AuthOptions{}); err != nil {
		t.Fatalf("subscription Map-Notify not signed with the xTR's site key: %v", err)
	}
	n0, _ := wire.Decode(ackN[0].B)
	if n0.(*wire.MapNotify).Nonce != 100 || len(f.s.Subscriptions()) != 1 {
		t.Fatalf("subscription: %v, %+v", n0, f.s.Subscriptions())
	}
	f.ack(n0.(*wire.MapNotify), []byte("dc2key"))
	// Replay of the same nonce is refused.
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	if len(f.s.Subscriptions()) != 1 || f.counter("subscriptions_rejected", "nonce-not-increasing") != 1 {
		t.Error("replayed subscription not refused")
	}
	// A change: a host route registered from elsewhere. The subscriber of
	// the covering prefix gets the new mapping, nonce + 1, and acks it.
	f.timers.Take()
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 2, []wire.EIDRecord{record(host, "192.0.2.13")}, withXTR(1))
	pub := f.timers.Take()
	if len(pub) != 1 {
		t.Fatalf("publications: %d", len(pub))
	}
	m, _ := wire.Decode(pub[0].B)
	n := m.(*wire.MapNotify)
	if n.Nonce != 101 || n.Records[0].PrefixString() != "198.51.100.20/32" {
		t.Errorf("publication: %v", n)
	}
	f.ack(n, []byte("dc2key"))
	if f.s.PendingNotifies() != 0 {
		t.Error("ack of publication not matched")
	}
	// Unsubscribe: one ITR-RLOC of AFI 0.
	mreq := req.Msg.(*wire.MapRequest)
	mreq.Nonce = 200
	mreq.ITRRLOCs = []wire.Address{{}}
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	if len(f.s.Subscriptions()) != 0 {
		t.Error("unsubscribe did not remove the subscription")
	}
}

func TestReloadKeepsOtherSites(t *testing.T) {
	f := newFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
	f.register(etr2, 0, wire.AuthHMACSHA256, []byte("dc2key"), 1, []wire.EIDRecord{record(dc2, "192.0.2.12")})
	sites := testSites()
	sites[1].Keys[0].Secret = []byte("rotated")
	sites = append(sites, Site{Name: "dc3", Keys: []Key{{Alg: wire.AuthHMACSHA256, Secret: secret}},
		Prefixes: []SitePrefix{{EID: mapping.NewEID(0, netip.MustParsePrefix("192.0.2.128/25"))}}})
	f.s.Reload(sites, map[string]bool{"dc2": true})
	if f.s.Registrations() != 1 || len(f.s.Sites("dc1")[0].Registrations) != 1 || len(f.s.Sites("dc3")) != 1 {
		t.Errorf("after reload: %d registrations, sites %+v", f.s.Registrations(), f.s.Sites(""))
	}
}

// A site whose description alone changed keeps its registrations; one
// whose allowed RLOCs changed loses them.
func TestReloadDescriptionKeepsRegistrations(t *testing.T) {
	f := newFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
	sites := testSites()
	sites[0].Description = "renamed in the inventory"
	f.s.Reload(sites, map[string]bool{"dc1": true})
	if n := f.s.Registrations(); n != 1 {
		t.Fatalf("a description change dropped registrations: %d left", n)
	}
	if got := f.s.Sites("dc1")[0].Description; got != "renamed in the inventory" {
		t.Errorf("description %q after reload", got)
	}
	sites = testSites()
	sites[0].AllowedRLOCs = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	f.s.Reload(sites, map[string]bool{"dc1": true})
	if n := f.s.Registrations(); n != 0 {
		t.Errorf("allowed RLOCs changed, %d registrations kept", n)
	}
}

// ack answers a Map-Notify as an xTR does: same content, signed again.
func (f *fixture) ack(n *wire.MapNotify, key []byte) {
	a := &wire.MapNotifyAck{AuthBody: n.AuthBody}
	raw, err := wire.EncodeSigned(a, key, wire.AuthOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.s.HandleMapNotifyAck(&control.Request{Raw: raw, Msg: a, Src: netip.AddrPortFrom(itr, wire.ControlPort)}, &lisptest.Sender{})
}

// ackSent acknowledges, as a live xTR does, every Map-Notify sent so far
// that verifies with key.
func (f *fixture) ackSent(key []byte) {
	f.t.Helper()
	for _, m := range f.timers.Take() {
		if wire.Verify(m.B, key, wire.AuthOptions{}) != nil {
			continue
		}
		d, err := wire.Decode(m.B)
		if err != nil {
			f.t.Fatal(err)
		}
		f.ack(d.(*wire.MapNotify), key)
	}
}

// subscription is a Map-Request of xTR 9 (site-ID 7) subscribing to host.
func subscription(host string, nonce uint64) *control.Request {
	req := mapRequest(mapping.HostEID(0, netip.MustParseAddr(host)), nonce)
	m := req.Msg.(*wire.MapRequest)
	m.HasXTRID, m.XTRID, m.SiteID = true, [16]byte{9}, 7
	m.Records[0].Notify = true
	req.ECM.IP.Src = itr // the ECM comes from the xTR's RLOC
	return req
}

// subscribeDC1 registers xTR 9 for site dc2 and subscribes it to a host
// of dc1; the acknowledgement is consumed.
func (f *fixture) subscribeDC1() {
	f.t.Helper()
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 1, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1))
	req := subscription("198.51.100.20", 100)
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	if len(f.s.Subscriptions()) != 1 {
		f.t.Fatal("not subscribed")
	}
	f.timers.Take()
}

// After a reload that changes the subscriber's site key, publications are
// signed with the new key; a reload that removes the site ends the
// subscription.
func TestReloadResignsSubscriptions(t *testing.T) {
	f := newFixture(t)
	f.subscribeDC1()
	sites := testSites()
	sites[1].Keys[0].Secret = []byte("rotated")
	f.s.Reload(sites, map[string]bool{"dc2": true})
	f.timers.Take()
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 2, []wire.EIDRecord{record(host, "192.0.2.13")}, withXTR(1))
	pub := f.timers.Take()
	if len(pub) != 1 {
		t.Fatalf("publications: %d, want 1", len(pub))
	}
	if err := wire.Verify(pub[0].B, []byte("rotated"), wire.AuthOptions{}); err != nil {
		t.Errorf("publication after the key change not signed with the new key: %v", err)
	}
	f.s.Reload(testSites()[:1], map[string]bool{})
	if n := len(f.s.Subscriptions()); n != 0 {
		t.Errorf("%d subscriptions of a removed site remain", n)
	}
}

// Reconfigure applies the Map-Server's timers and limits live.
func TestReconfigureTimers(t *testing.T) {
	f := newFixture(t)
	f.s.Reconfigure(testSites(), nil, Options{RegistrationTimeout: time.Minute, MaxSubscriptions: 1,
		NotifyRetransmit: 10 * time.Second, UnregisteredTTL: 7})
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
	f.clk.Advance(61 * time.Second)
	f.s.Tick()
	if f.s.Registrations() != 0 {
		t.Error("registration outlived the reloaded 1m registration-timeout")
	}
	var out lisptest.Sender
	f.s.HandleMapRequest(mapRequest(mapping.HostEID(0, netip.MustParseAddr("198.51.100.9")), 5), &out)
	if r := decodeReply(t, out.All()[0]); r.Records[0].TTL != 7 {
		t.Errorf("unregistered site answered with TTL %d, want the reloaded 7", r.Records[0].TTL)
	}
	f.subscribeDC1()
	// The second subscriber is over the reloaded limit of one.
	req := subscription("198.51.100.21", 300)
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	if n := len(f.s.Subscriptions()); n != 1 {
		t.Errorf("%d subscriptions, want the reloaded limit 1", n)
	}
	// The unacknowledged subscription Map-Notify and publication are
	// retransmitted after the reloaded 10 s.
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 2, []wire.EIDRecord{record(host, "192.0.2.13")}, withXTR(1))
	f.timers.Take()
	f.clk.Advance(9 * time.Second)
	f.s.Tick()
	if n := len(f.timers.Take()); n != 0 {
		t.Errorf("retransmitted after 9s: %d", n)
	}
	f.clk.Advance(2 * time.Second)
	f.s.Tick()
	if n := len(f.timers.Take()); n != 2 {
		t.Errorf("%d retransmissions after 11s, want 2", n)
	}
}

// A subscription to an EID nobody has registered is temporary (RFC 9437
// §5): it ends after SubscriptionTTL. One that has seen a registration
// published lasts; a reloaded TTL applies to subscriptions made after.
func TestTemporarySubscriptionExpires(t *testing.T) {
	f := newFixture(t)
	// xTR 9 registers for dc2: its security association. dc1, which it
	// subscribes to, has no registration yet.
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 1, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	f.s.HandleMapRequest(subscription("198.51.100.20", 100), &lisptest.Sender{})
	if n := len(f.s.Subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions, want the temporary one", n)
	}
	f.clk.Advance(15*time.Minute - time.Second)
	f.s.Tick()
	if n := len(f.s.Subscriptions()); n != 1 {
		t.Fatalf("temporary subscription gone before its 15 minutes: %d left", n)
	}
	f.clk.Advance(2 * time.Second)
	f.s.Tick()
	if n := len(f.s.Subscriptions()); n != 0 || f.counter("subscriptions_expired", "") != 1 {
		t.Fatalf("after 15 minutes: %d subscriptions, %d expired", n, f.counter("subscriptions_expired", ""))
	}

	// Subscribed again, then dc1 registers: the publication makes it last.
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 2, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	f.s.HandleMapRequest(subscription("198.51.100.20", 101), &lisptest.Sender{})
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1))
	f.ackSent([]byte("dc2key"))
	for i := range 20 { // xTR 9 keeps registering: its subscription lasts
		f.clk.Advance(time.Minute)
		f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), uint64(10+i), []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
		f.s.Tick()
		f.ackSent([]byte("dc2key")) // the publication when dc1's registration lapses
	}
	if n := len(f.s.Subscriptions()); n != 1 {
		t.Fatalf("a subscription that saw a registration ended: %d left", n)
	}

	// A shorter TTL by reload: a temporary subscription made after it ends
	// a minute later.
	f.s.Reconfigure(testSites(), nil, Options{SubscriptionTTL: time.Minute})
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 30, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	req := subscription("2001:db8:1::20", 102)
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	if n := len(f.s.Subscriptions()); n != 2 {
		t.Fatalf("%d subscriptions, want 2", n)
	}
	f.clk.Advance(time.Minute + time.Second)
	f.s.Tick()
	if n := len(f.s.Subscriptions()); n != 1 || f.counter("subscriptions_expired", "") != 2 {
		t.Errorf("after the reloaded minute: %d subscriptions, %d expired", n, f.counter("subscriptions_expired", ""))
	}
}

// A Map-Register whose key ID and algorithm match no key of the site is
// logged with what came and what is configured: OOR's key-type = 1 reads
// as key-id 0 with HMAC-SHA-1-96, which a site keyed as key-id 1 refuses.
func TestUnknownKeyLogNamesKeys(t *testing.T) {
	var buf bytes.Buffer
	clk := lisptest.NewClock(time.Unix(1_700_000_000, 0))
	s := New(testSites(), Options{Now: clk.Now, Sender: &lisptest.Sender{}, Log: slog.New(slog.NewTextHandler(&buf, nil))})
	m := &wire.MapRegister{AuthBody: wire.AuthBody{Nonce: 1, KeyID: 7, Algorithm: wire.AuthHMACSHA1,
		Records: []wire.EIDRecord{record(dc1, "192.0.2.11")}}}
	raw, err := wire.EncodeSigned(m, []byte("password"), wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.HandleMapRegister(&control.Request{Raw: raw, Msg: m, Src: etr1}, &lisptest.Sender{})
	want := `msg="Map-Register with unknown key ID or algorithm" role=map-server source=` + etr1.Addr().String() +
		` eid=198.51.100.0/24 key-id=7 algorithm=hmac-sha-1-96 configured="dc1: key-id 0 hmac-sha-256-128, key-id 1 hmac-sha-1-96"`
	if !strings.Contains(buf.String(), want) {
		t.Errorf("log:\n%s\nwant a line containing\n%s", buf.String(), want)
	}
}
