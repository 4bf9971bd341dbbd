package mapresolver

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	itr    = netip.MustParseAddr("192.0.2.21")
	remote = netip.MustParseAddr("192.0.2.2")
	site   = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	deleg  = mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/24"))
	deleg6 = mapping.NewEID(0, netip.MustParsePrefix("2001:db8:1::/48"))
)

func request(iid uint32, addr string) *control.Request {
	e := mapping.HostEID(iid, netip.MustParseAddr(addr))
	m := &wire.MapRequest{Nonce: 42, ITRRLOCs: []wire.Address{wire.AddrFromIP(itr)},
		Records: []wire.RequestRecord{{MaskLen: e.MaskLen(), EID: e.Address()}}}
	return &control.Request{Raw: []byte("the-ecm"), Msg: m, ECM: &wire.ECM{Message: m}, ReplyTo: netip.AddrPortFrom(itr, 61000),
		Local: netip.MustParseAddrPort("192.0.2.1:4342")}
}

func newResolver() *Resolver {
	ms := mapserver.New([]mapserver.Site{{Name: "s", Keys: []mapserver.Key{{Alg: wire.AuthHMACSHA256, Secret: []byte("k")}},
		Prefixes: []mapserver.SitePrefix{{EID: site}}}}, mapserver.Options{Now: func() time.Time { return time.Unix(1e9, 0) }})
	return New(ms, []Delegation{{MapServer: remote, Prefixes: []mapping.EID{deleg, deleg6}}}, Options{})
}

func reply(t *testing.T, c *lisptest.Sender) wire.EIDRecord {
	t.Helper()
	if len(c.All()) != 1 {
		t.Fatalf("sent %d messages", len(c.All()))
	}
	m, err := wire.Decode(c.All()[0].B)
	if err != nil {
		t.Fatal(err)
	}
	r := m.(*wire.MapReply)
	if r.Nonce != 42 || c.All()[0].To != netip.AddrPortFrom(itr, 61000) {
		t.Fatalf("reply %v to %v", r, c.All()[0].To)
	}
	return r.Records[0]
}

func TestNegativeOutsideEveryPrefix(t *testing.T) {
	r := newResolver()
	for _, tc := range []struct {
		iid        uint32
		addr, want string
	}{
		// 192.0.2.5: 192.0.0.0/6 is the widest block holding it and no EID prefix.
		{0, "192.0.2.5", "192.0.0.0/6"},
		{0, "10.1.2.3", "0.0.0.0/1"},
		{0, "198.51.101.1", "198.51.101.0/24"},
		{0, "2001:db8:2::1", "2001:db8:2::/47"},
		// Another instance ID has no EID prefixes at all.
		{7, "198.51.100.1", "[7]0.0.0.0/0"},
	} {
		var c lisptest.Sender
		r.HandleMapRequest(request(tc.iid, tc.addr), &c)
		rec := reply(t, &c)
		if rec.PrefixString() != tc.want || rec.TTL != 15 || rec.Action != wire.ActionNativelyForward || len(rec.Locators) != 0 {
			t.Errorf("%s: got %v, want %s natively-forward ttl 15", tc.addr, &rec, tc.want)
		}
	}
}

func TestLocalSiteUnregistered(t *testing.T) {
	var c lisptest.Sender
	newResolver().HandleMapRequest(request(0, "198.51.100.9"), &c)
	if rec := reply(t, &c); rec.PrefixString() != "198.51.100.0/24" || rec.TTL != 1 || rec.Action != wire.ActionNativelyForward {
		t.Errorf("got %v, want 198.51.100.0/24 ttl 1 natively-forward", &rec)
	}
}

func TestForwardToDelegatedMapServer(t *testing.T) {
	var c lisptest.Sender
	newResolver().HandleMapRequest(request(0, "2001:db8:1::5"), &c)
	if len(c.All()) != 1 || string(c.All()[0].B) != "the-ecm" || c.All()[0].To != netip.AddrPortFrom(remote, 4342) {
		t.Fatalf("forward: %+v", c.All())
	}
}

func TestProbeDropped(t *testing.T) {
	var c lisptest.Sender
	req := request(0, "192.0.2.5")
	req.Msg.(*wire.MapRequest).Probe = true
	newResolver().HandleMapRequest(req, &c)
	if len(c.All()) != 0 {
		t.Fatal("answered an RLOC-probe")
	}
}

// Two resolvers built from the same configuration give identical bytes:
// an anycast Map-Resolver address cannot tell them apart.
func TestAnycastDeterminism(t *testing.T) {
	for _, addr := range []string{"192.0.2.5", "198.51.100.9", "2001:db8:9::1"} {
		var a, b lisptest.Sender
		newResolver().HandleMapRequest(request(0, addr), &a)
		newResolver().HandleMapRequest(request(0, addr), &b)
		if len(a.All()) != 1 || string(a.All()[0].B) != string(b.All()[0].B) {
			t.Errorf("%s: replies differ", addr)
		}
	}
}

// A reload replaces the delegations and the negative TTL live.
func TestReconfigure(t *testing.T) {
	r := newResolver()
	moved := netip.MustParseAddr("192.0.2.3")
	r.Reconfigure([]Delegation{{MapServer: moved, Prefixes: []mapping.EID{deleg}}}, Options{NegativeTTL: 5})
	var c lisptest.Sender
	r.HandleMapRequest(request(0, "203.0.113.7"), &c)
	if len(c.All()) != 1 || c.All()[0].To != netip.AddrPortFrom(moved, 4342) {
		t.Fatalf("delegated request went to %+v, want %v", c.All(), moved)
	}
	c.Take()
	r.HandleMapRequest(request(0, "2001:db8:1::5"), &c) // no longer delegated
	if rec := reply(t, &c); rec.TTL != 5 || rec.Action != wire.ActionNativelyForward {
		t.Errorf("got %v, want a negative reply with TTL 5", &rec)
	}
}
