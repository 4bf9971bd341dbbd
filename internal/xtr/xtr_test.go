package xtr

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type dp struct {
	NopDataPlane
	set map[mapping.EID]CacheEntry
}

func (d *dp) SetMapCache(e CacheEntry)       { d.set[e.EID] = e }
func (d *dp) DeleteMapCache(eid mapping.EID) { delete(d.set, eid) }

var (
	mr  = netip.MustParseAddr("192.0.2.1")
	me  = netip.MustParseAddr("192.0.2.21")
	dst = netip.MustParseAddr("198.51.100.20")
)

func newITR(t *testing.T) (*Server, *lisptest.Sender, *lisptest.Clock, *dp) {
	c, clk, d := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0)), &dp{set: map[mapping.EID]CacheEntry{}}
	s := New(Options{ITR: true, MapResolvers: []netip.Addr{mr, netip.MustParseAddr("192.0.2.2")},
		LocalRLOCs: []netip.Addr{me}, Now: clk.Now, Sender: c, DataPlane: d, MaxCacheEntries: 3})
	return s, c, clk, d
}

func requestOf(t *testing.T, s lisptest.Sent) *wire.MapRequest {
	t.Helper()
	m, err := wire.Decode(s.B)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*wire.ECM).Message.(*wire.MapRequest)
}

// TestMapRequestRateLimit: at most one Map-Request per second per EID;
// after ten unanswered, thirty seconds of silence (RFC 9301 §5.3); the
// Map-Resolver changes after two unanswered tries.
func TestMapRequestRateLimit(t *testing.T) {
	s, c, clk, _ := newITR(t)
	s.Miss(0, dst)
	s.Miss(0, dst)
	s.Miss(0, dst)
	if n := len(c.Take()); n != 1 {
		t.Fatalf("%d Map-Requests in the same second, want 1", n)
	}
	mrs := map[netip.Addr]int{mr: 1}
	for range 9 {
		clk.Advance(time.Second)
		s.Tick()
		s.Miss(0, dst)
		for _, m := range c.Take() {
			mrs[m.To.Addr()]++
		}
	}
	if mrs[mr] == 0 || mrs[netip.MustParseAddr("192.0.2.2")] == 0 {
		t.Errorf("no Map-Resolver failover: %v", mrs)
	}
	// Ten lisptest.Sent, none answered: the next 30 s stay silent.
	for range 29 {
		clk.Advance(time.Second)
		s.Miss(0, dst)
		if n := len(c.Take()); n != 0 {
			t.Fatalf("Map-Request during the 30 s hold")
		}
	}
	clk.Advance(2 * time.Second)
	s.Miss(0, dst)
	if n := len(c.Take()); n != 1 {
		t.Errorf("no Map-Request after the hold: %d", n)
	}
}

// TestReplyNonceAndCache: only a Map-Reply with the nonce of an
// outstanding request is cached; TTL 0 removes; the cache is bounded.
func TestReplyNonceAndCache(t *testing.T) {
	s, c, clk, d := newITR(t)
	s.Miss(0, dst)
	req := requestOf(t, c.Take()[0])
	rec := mapping.Mapping{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")), TTL: 10,
		Locators: []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.12"), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: req.Nonce + 1, Records: []wire.EIDRecord{rec.Record()}}}, c)
	if len(d.set) != 0 {
		t.Fatal("cached a Map-Reply with a foreign nonce")
	}
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{rec.Record()}}}, c)
	if e, ok := d.set[rec.EID]; !ok || len(e.Locators) != 1 || !e.Locators[0].Up {
		t.Fatalf("not cached: %+v", d.set)
	}
	// The same reply again is not outstanding any more.
	rec2 := rec
	rec2.Locators = nil
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{rec2.Record()}}}, c)
	if len(d.set[rec.EID].Locators) != 1 {
		t.Fatal("a replayed Map-Reply changed the cache")
	}
	// Expiry after the TTL.
	clk.Advance(11 * time.Minute)
	s.Tick()
	if len(d.set) != 0 || len(s.MapCache()) != 0 {
		t.Fatal("entry outlived its TTL")
	}
	// Bound: four entries in a cache of three.
	for i := range 4 {
		c.Take()
		eid := mapping.NewEID(0, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i * 16)}), 28))
		s.Miss(0, eid.Prefix.Addr())
		r := requestOf(t, c.Take()[0])
		m := mapping.Mapping{EID: eid, TTL: 10 + uint32(i)}
		s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: r.Nonce, Records: []wire.EIDRecord{m.Record()}}}, c)
	}
	if n := len(s.MapCache()); n != 3 {
		t.Errorf("%d entries in a cache bounded to 3", n)
	}
}

// TestMissSourceEID: a Map-Request a data packet triggered carries the
// packet's source as its Source-EID (RFC 9301 §5.3), in the packet's
// instance ID; one with no packet behind it carries none (AFI 0).
func TestMissSourceEID(t *testing.T) {
	s, c, _, _ := newITR(t)
	host := netip.MustParseAddr("198.51.100.7")
	s.MissFrom(0, dst, host)
	r := requestOf(t, c.Take()[0])
	if a, ok := r.SourceEID.Addr(); !ok || a != host {
		t.Errorf("Source-EID %v, want %s", r.SourceEID, host)
	}
	other := netip.MustParseAddr("203.0.113.99")
	s.Miss(0, other)
	r = requestOf(t, c.Take()[0])
	if a, ok := r.SourceEID.Addr(); ok && a.IsValid() {
		t.Errorf("Source-EID %v on a request no packet triggered", r.SourceEID)
	}
	s.MissFrom(7, netip.MustParseAddr("203.0.113.50"), host)
	r = requestOf(t, c.Take()[0])
	if got, want := r.SourceEID, mapping.HostEID(7, host).Address(); got.String() != want.String() {
		t.Errorf("Source-EID %v in instance 7, want %v", got, want)
	}
}

// TestSMR: an SMR for a cached prefix makes an SMR-invoked Map-Request
// through the mapping system, at most three at once and one per 3 s on
// average; for an unknown EID, nothing.
func TestSMR(t *testing.T) {
	s, c, clk, _ := newITR(t)
	s.Miss(0, dst)
	req := requestOf(t, c.Take()[0])
	rec := mapping.Mapping{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")), TTL: 10,
		Locators: []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.12"), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{rec.Record()}}}, c)
	smr := &wire.MapRequest{SMR: true, Nonce: 9, ITRRLOCs: []wire.Address{wire.AddrFromIP(netip.MustParseAddr("192.0.2.12"))},
		Records: []wire.RequestRecord{{MaskLen: 24, EID: rec.EID.Address()}}}
	from := netip.MustParseAddrPort("192.0.2.12:4342")
	clk.Advance(2 * time.Second)
	s.HandleMapRequest(direct(smr, from, me), c)
	out := c.Take()
	if len(out) != 1 || out[0].To.Addr() != mr && out[0].To.Addr() != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("SMR-invoked request: %+v", out)
	}
	if r := requestOf(t, out[0]); !r.SMRInvoked || r.Records[0].MaskLen != 24 {
		t.Errorf("not an SMR-invoked request for the cached prefix: %v", r)
	}
	// Two more SMRs, a second apart (a late one of the same move, then a
	// second move): each asked at once, so a move soon after another
	// is not held back by the first one's duplicates.
	for i := range 2 {
		clk.Advance(time.Second)
		if r := requestOf(t, out2(t, s, c, smr, from)); !r.SMRInvoked {
			t.Errorf("SMR %d within 3 s: %v", i+2, r)
		}
	}
	// The budget (three, one back per 3 s) is spent: the fourth waits...
	clk.Advance(500 * time.Millisecond)
	s.HandleMapRequest(direct(smr, from, me), c)
	if len(c.Take()) != 0 {
		t.Error("fourth SMR within 3 s answered")
	}
	// ... but is not forgotten: asked once 3 s passed since the first.
	clk.Advance(400 * time.Millisecond)
	s.Tick()
	if len(c.Take()) != 0 {
		t.Error("held-back SMR asked before the budget allowed")
	}
	clk.Advance(200 * time.Millisecond)
	s.Tick()
	if out := c.Take(); len(out) != 1 || !requestOf(t, out[0]).SMRInvoked {
		t.Errorf("held-back SMR not asked 3 s after the first: %+v", out)
	}
	s.Tick()
	if len(c.Take()) != 0 {
		t.Error("held-back SMR asked twice")
	}
	// SMRs about one change come in a burst (a dynamic-EID host's old and
	// new sites): the first one's request answers the rest, nothing is
	// held back for later.
	clk.Advance(4 * time.Second)
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: requestOf(t, out2(t, s, c, smr, from)).Nonce, Records: []wire.EIDRecord{rec.Record()}}}, c)
	clk.Advance(50 * time.Millisecond)
	s.HandleMapRequest(direct(smr, from, me), c)
	clk.Advance(4 * time.Second)
	s.Tick()
	if out := c.Take(); len(out) != 0 {
		t.Errorf("an SMR in the burst of an answered one asked again: %+v", out)
	}
	// From a router that is no locator of anything cached, about nothing
	// cached: nothing asked, counted.
	unknown := &wire.MapRequest{SMR: true, Nonce: 10, ITRRLOCs: smr.ITRRLOCs,
		Records: []wire.RequestRecord{{MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("203.0.113.0"))}}}
	s.HandleMapRequest(direct(unknown, netip.MustParseAddrPort("192.0.2.99:4342"), me), c)
	if len(c.Take()) != 0 {
		t.Error("SMR for an uncached EID answered")
	}
	if n := s.c.smrUnmatched.Load(); n != 1 {
		t.Errorf("smrs_unmatched = %d, want 1", n)
	}
}

// TestSMREncodings: the SMR encodings in use are all understood. Older
// lispd named the changed prefix in Source-EID and record; Open Overlay
// Router, and lispd now, put the changed EID in the Source-EID (a moved
// host, or a prefix by its network address) and the receiver's own EID in
// the record; one with neither cached refreshes what its sender is a
// locator of.
func TestSMREncodings(t *testing.T) {
	cached := mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	peer := netip.MustParseAddr("192.0.2.12")
	own := wire.AddrFromIP(netip.MustParseAddr("203.0.113.0")) // the receiver's prefix
	for _, tc := range []struct {
		name      string
		source    wire.Address
		record    wire.Address
		recordLen uint8
		from      netip.Addr
		want      int // mask length asked for, 0: nothing asked
	}{
		{"lispd: changed prefix in both", wire.AddrFromIP(cached.Prefix.Addr()), wire.AddrFromIP(cached.Prefix.Addr()), 24, peer, 24},
		{"lispd: no Source-EID", wire.Address{}, wire.AddrFromIP(cached.Prefix.Addr()), 24, peer, 24},
		{"lispd: moved host", wire.AddrFromIP(netip.MustParseAddr("198.51.100.7")), wire.AddrFromIP(netip.MustParseAddr("198.51.100.7")), 32, peer, 32},
		{"lispd: moved host in Source-EID, our prefix in the record", wire.AddrFromIP(netip.MustParseAddr("198.51.100.7")), own, 24, peer, 32},
		{"OOR: changed EID in Source-EID, our prefix in the record", wire.AddrFromIP(netip.MustParseAddr("198.51.100.0")), own, 24, peer, 24},
		{"neither cached, sender a locator", wire.AddrFromIP(netip.MustParseAddr("192.0.2.200")), own, 24, peer, 24},
		{"neither cached, sender unknown", wire.AddrFromIP(netip.MustParseAddr("192.0.2.200")), own, 24, netip.MustParseAddr("192.0.2.99"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, clk, _ := newITR(t)
			s.Miss(0, dst)
			req := requestOf(t, c.Take()[0])
			rec := mapping.Mapping{EID: cached, TTL: 10,
				Locators: []mapping.Locator{{Addr: peer, Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
			s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{rec.Record()}}}, c)
			clk.Advance(4 * time.Second)
			smr := &wire.MapRequest{SMR: true, Nonce: 9, SourceEID: tc.source, ITRRLOCs: []wire.Address{wire.AddrFromIP(tc.from)},
				Records: []wire.RequestRecord{{MaskLen: tc.recordLen, EID: tc.record}}}
			s.HandleMapRequest(direct(smr, netip.AddrPortFrom(tc.from, wire.ControlPort), me), c)
			out := c.Take()
			if tc.want == 0 {
				if len(out) != 0 {
					t.Fatalf("asked %d times, want nothing", len(out))
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("%d requests, want one SMR-invoked", len(out))
			}
			if r := requestOf(t, out[0]); !r.SMRInvoked || int(r.Records[0].MaskLen) != tc.want {
				t.Errorf("asked %v, want an SMR-invoked request for a /%d", r, tc.want)
			}
		})
	}
}

// TestETRAnswers: the ETR answers for its EIDs with A set and L on its
// locators, marks the probed locator, and drops requests for other EIDs.
func TestETRAnswers(t *testing.T) {
	c := &lisptest.Sender{}
	db := []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")),
		Locators: []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.12"), Priority: 1, Weight: 50},
			{Addr: netip.MustParseAddr("192.0.2.13"), Priority: 1, Weight: 50}}}}
	s := New(Options{ETR: true, Database: db, LocalRLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.12")}})
	req := &wire.MapRequest{Probe: true, Nonce: 5, ITRRLOCs: []wire.Address{wire.AddrFromIP(me)},
		Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(dst)}}}
	s.HandleMapRequest(direct(req, netip.AddrPortFrom(me, 61000), netip.MustParseAddr("192.0.2.13")), c)
	out := c.Take()
	if len(out) != 1 || out[0].To != netip.AddrPortFrom(me, 61000) {
		t.Fatalf("probe reply: %+v", out)
	}
	m, _ := wire.Decode(out[0].B)
	rep := m.(*wire.MapReply)
	r := rep.Records[0]
	if !rep.Probe || rep.Nonce != 5 || !r.Authoritative || r.Locators[0].Probed() || !r.Locators[1].Probed() || !r.Locators[0].Local() {
		t.Errorf("probe reply: %v", rep)
	}
	req.Probe = false
	req.Records[0].EID = wire.AddrFromIP(netip.MustParseAddr("203.0.113.1"))
	s.HandleMapRequest(encapsulated(req, netip.AddrPortFrom(me, 61000), netip.MustParseAddr("192.0.2.12"), 61000), c)
	if len(c.Take()) != 0 {
		t.Error("answered for an EID not in the database")
	}
}

// direct is the request of a Map-Request that came to the xTR bare, from
// src to our address local.
func direct(m *wire.MapRequest, src netip.AddrPort, local netip.Addr) *control.Request {
	return &control.Request{Msg: m, Src: src, Local: netip.AddrPortFrom(local, wire.ControlPort)}
}

// encapsulated is the request of a Map-Request a Map-Server forwarded in an
// ECM whose inner UDP source port is itrPort.
func encapsulated(m *wire.MapRequest, src netip.AddrPort, local netip.Addr, itrPort uint16) *control.Request {
	r := direct(m, src, local)
	r.ECM = &wire.ECM{SrcPort: itrPort, DstPort: wire.ControlPort, Message: m}
	return r
}

// out2 sends an SMR and returns the one SMR-invoked request it causes.
func out2(t *testing.T, s *Server, c *lisptest.Sender, smr *wire.MapRequest, from netip.AddrPort) lisptest.Sent {
	t.Helper()
	s.HandleMapRequest(direct(smr, from, me), c)
	out := c.Take()
	if len(out) != 1 {
		t.Fatalf("want one SMR-invoked request, got %d", len(out))
	}
	return out[0]
}

// TestECMInnerSource: the ECM's inner header is of the EID's family, from
// our RLOC of that family, else from our EID of it, else unspecified; the
// inner UDP goes from and to the control port, the outer to the resolver.
func TestECMInnerSource(t *testing.T) {
	v6EID := mapping.NewEID(0, netip.MustParsePrefix("2001:db8:5::/48"))
	for _, tc := range []struct {
		name string
		db   []DatabaseEntry
		dst  string
		want string
	}{
		{"IPv4 EID: our IPv4 RLOC", nil, "198.51.100.20", "192.0.2.21"},
		{"IPv6 EID: our IPv6 EID", []DatabaseEntry{{EID: v6EID}}, "2001:db8:9::1", "2001:db8:5::"},
		{"IPv6 EID: nothing of that family", nil, "2001:db8:9::1", "::"},
	} {
		c := &lisptest.Sender{}
		s := New(Options{ITR: true, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me}, Database: tc.db,
			Now: func() time.Time { return time.Unix(1e9, 0) }, Sender: c})
		s.Miss(0, netip.MustParseAddr(tc.dst))
		out := c.Take()
		if len(out) != 1 || out[0].To != netip.AddrPortFrom(mr, wire.ControlPort) {
			t.Fatalf("%s: sent %+v", tc.name, out)
		}
		m, err := wire.Decode(out[0].B)
		if err != nil {
			t.Fatal(err)
		}
		ecm := m.(*wire.ECM)
		if ecm.IP.Src != netip.MustParseAddr(tc.want) || ecm.IP.Dst != netip.MustParseAddr(tc.dst) ||
			ecm.SrcPort != wire.ControlPort || ecm.DstPort != wire.ControlPort {
			t.Errorf("%s: inner %s:%d > %s:%d, want source %s", tc.name, ecm.IP.Src, ecm.SrcPort, ecm.IP.Dst,
				ecm.DstPort, tc.want)
		}
	}
}

// TestSMRsForManyHosts: a hundred hosts inside one cached prefix moved
// together (a mass migration), their old site sending an SMR for each: a
// request for each host, not one for the first (the prefix's budget) and
// the rest covered or held back.
func TestSMRsForManyHosts(t *testing.T) {
	s, c, clk, _ := newITR(t)
	s.Miss(0, dst)
	req := requestOf(t, c.Take()[0])
	site := netip.MustParseAddr("192.0.2.12")
	rec := mapping.Mapping{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")), TTL: 10,
		Locators: []mapping.Locator{{Addr: site, Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{rec.Record()}}}, c)
	clk.Advance(4 * time.Second)
	asked := map[netip.Addr]bool{}
	for i := range 100 {
		host := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		smr := &wire.MapRequest{SMR: true, Nonce: uint64(100 + i), SourceEID: wire.AddrFromIP(host), ITRRLOCs: []wire.Address{wire.AddrFromIP(site)},
			Records: []wire.RequestRecord{{MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("203.0.113.0"))}}}
		s.HandleMapRequest(direct(smr, netip.AddrPortFrom(site, wire.ControlPort), me), c)
		clk.Advance(time.Millisecond)
		for _, m := range c.Take() {
			if r := requestOf(t, m); r.SMRInvoked && r.Records[0].MaskLen == 32 {
				a, _ := r.Records[0].EID.Addr()
				asked[a] = true
			}
		}
	}
	if len(asked) != 100 {
		t.Errorf("SMR-invoked requests for %d of 100 moved hosts", len(asked))
	}
}
