package mapresolver

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	itr    = netip.MustParseAddr("192.0.2.21")
	remote = netip.MustParseAddr("192.0.2.2")
	site   = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	deleg  = mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/24"))
	deleg6 = mapping.NewEID(0, netip.MustParsePrefix("2001:db8:1::/48"))
)

func request(iid uint32, addr string) *mapserver.Request {
	e := mapping.HostEID(iid, netip.MustParseAddr(addr))
	m := &wire.MapRequest{Nonce: 42, ITRRLOCs: []wire.Address{wire.AddrFromIP(itr)},
		Records: []wire.RequestRecord{{MaskLen: e.MaskLen(), EID: e.Address()}}}
	return &mapserver.Request{Msg: m, ECM: []byte("the-ecm"), ReplyTo: netip.AddrPortFrom(itr, 61000),
		Local: netip.MustParseAddr("192.0.2.1")}
}

func newResolver() *Resolver {
	ms := mapserver.New([]mapserver.Site{{Name: "s", Keys: []mapserver.Key{{Alg: wire.AuthHMACSHA256, Secret: []byte("k")}},
		Prefixes: []mapserver.SitePrefix{{EID: site}}}}, mapserver.Options{Now: func() time.Time { return time.Unix(1e9, 0) }})
	return New(ms, []Delegation{{MapServer: remote, Prefixes: []mapping.EID{deleg, deleg6}}}, Options{})
}

func reply(t *testing.T, c *lisptest.Sender) wire.EIDRecord {
	t.Helper()
	msgs := c.Take()
	if len(msgs) != 1 {
		t.Fatalf("sent %d messages", len(msgs))
	}
	m, err := wire.Decode(msgs[0].B)
	if err != nil {
		t.Fatal(err)
	}
	r := m.(*wire.MapReply)
	if r.Nonce != 42 || msgs[0].To != netip.AddrPortFrom(itr, 61000) {
		t.Fatalf("reply %v to %v", r, msgs[0].To)
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
		r.HandleRequest(request(tc.iid, tc.addr), &c)
		rec := reply(t, &c)
		if rec.PrefixString() != tc.want || rec.TTL != 15 || rec.Action != wire.ActionNativelyForward || len(rec.Locators) != 0 {
			t.Errorf("%s: got %v, want %s natively-forward ttl 15", tc.addr, &rec, tc.want)
		}
	}
}

func TestLocalSiteUnregistered(t *testing.T) {
	var c lisptest.Sender
	newResolver().HandleRequest(request(0, "198.51.100.9"), &c)
	if rec := reply(t, &c); rec.PrefixString() != "198.51.100.0/24" || rec.TTL != 1 || rec.Action != wire.ActionNativelyForward {
		t.Errorf("got %v, want 198.51.100.0/24 ttl 1 natively-forward", &rec)
	}
}

func TestForwardToDelegatedMapServer(t *testing.T) {
	var c lisptest.Sender
	newResolver().HandleRequest(request(0, "2001:db8:1::5"), &c)
	if msgs := c.Take(); len(msgs) != 1 || string(msgs[0].B) != "the-ecm" || msgs[0].To != netip.AddrPortFrom(remote, 4342) {
		t.Fatalf("forward: %+v", msgs)
	}
}

func TestProbeDropped(t *testing.T) {
	var c lisptest.Sender
	req := request(0, "192.0.2.5")
	req.Msg.Probe = true
	newResolver().HandleRequest(req, &c)
	if c.Len() != 0 {
		t.Fatal("answered an RLOC-probe")
	}
}

// Two resolvers built from the same configuration give identical bytes:
// an anycast Map-Resolver address cannot tell them apart.
func TestAnycastDeterminism(t *testing.T) {
	for _, addr := range []string{"192.0.2.5", "198.51.100.9", "2001:db8:9::1"} {
		var a, b lisptest.Sender
		newResolver().HandleRequest(request(0, addr), &a)
		newResolver().HandleRequest(request(0, addr), &b)
		ma, mb := a.Take(), b.Take()
		if len(ma) != 1 || len(mb) != 1 || string(ma[0].B) != string(mb[0].B) {
			t.Errorf("%s: replies differ", addr)
		}
	}
}
