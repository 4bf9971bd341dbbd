package xtr

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

var (
	ms1   = MapServerPeer{Addr: netip.MustParseAddr("192.0.2.31"), Alg: wire.AuthHMACSHA256, Secret: []byte("k1")}
	ms2   = MapServerPeer{Addr: netip.MustParseAddr("192.0.2.32"), Alg: wire.AuthHMACSHA256, Secret: []byte("k2")}
	rloc  = netip.MustParseAddr("192.0.2.21")
	itrA  = netip.MustParseAddr("192.0.2.41")
	eidA  = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/25"))
	eidB  = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.128/25"))
	eidC  = mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/24"))
	local = []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
)

func entries(eids ...mapping.EID) []DatabaseEntry {
	var out []DatabaseEntry
	for _, e := range eids {
		out = append(out, DatabaseEntry{EID: e, Locators: slices.Clone(local)})
	}
	return out
}

// xtrOpts is an xTR registering eids with ms1.
func xtrOpts(clk *lisptest.Clock, c *lisptest.Sender, eids ...mapping.EID) Options {
	return Options{ITR: true, ETR: true, Database: entries(eids...), MapServers: []MapServerPeer{ms1},
		MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{rloc}, XTRID: [16]byte{7},
		ProbeInterval: 10 * time.Second, Now: clk.Now, Sender: c, DataPlane: &dp{set: map[mapping.EID]CacheEntry{}}}
}

// wireMsg is one decoded control message and where it went.
type wireMsg struct {
	to  netip.AddrPort
	msg wire.Message
}

func decodeAll(t *testing.T, c *lisptest.Sender) []wireMsg {
	t.Helper()
	return decodeAllOf(t, c.Take())
}

func decodeAllOf(t *testing.T, sent []lisptest.Sent) []wireMsg {
	t.Helper()
	var out []wireMsg
	for _, s := range sent {
		m, err := wire.Decode(s.B)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, wireMsg{s.To, m})
	}
	return out
}

// registered returns, per Map-Server, the prefixes the Map-Registers sent
// register (record TTL > 0) and withdraw (TTL 0, T bit).
func registered(t *testing.T, msgs []wireMsg) (reg, withdrawn map[netip.Addr][]string) {
	t.Helper()
	reg, withdrawn = map[netip.Addr][]string{}, map[netip.Addr][]string{}
	for _, m := range msgs {
		r, ok := m.msg.(*wire.MapRegister)
		if !ok {
			continue
		}
		for _, rec := range r.Records {
			if rec.TTL == 0 {
				if !r.UseTTL {
					t.Errorf("withdrawal without the T bit: %v", r)
				}
				withdrawn[m.to.Addr()] = append(withdrawn[m.to.Addr()], rec.PrefixString())
			} else {
				reg[m.to.Addr()] = append(reg[m.to.Addr()], rec.PrefixString())
			}
		}
	}
	return reg, withdrawn
}

func smrsTo(msgs []wireMsg, itr netip.Addr) []string {
	var out []string
	for _, m := range msgs {
		if r, ok := m.msg.(*wire.MapRequest); ok && r.SMR && m.to.Addr() == itr {
			out = append(out, r.Records[0].PrefixString())
		}
	}
	return out
}

// TestSMRSentEncoding: the SMRs a database change sends carry the changed
// prefix in the Source-EID and, in the EID-record, the EID of the
// receiver's site its traffic came from — the encoding Open Overlay Router
// accepts (it drops an SMR whose record is not one of its EIDs) — only for
// the instances the ITR sent traffic in; an ITR whose hosts are unknown gets
// the changed prefix in the record too.
func TestSMRSentEncoding(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	eid7 := mapping.NewEID(7, netip.MustParsePrefix("198.51.100.0/24"))
	o := xtrOpts(clk, c, eidA)
	o.Database = append(o.Database, DatabaseEntry{EID: eid7, Locators: slices.Clone(local)})
	s := New(o)
	s.Tick()
	c.Take()
	host := netip.MustParseAddr("192.0.2.77")
	unknown := netip.MustParseAddr("192.0.2.42")
	s.Decapsulated(itrA, 0, host)
	s.Decapsulated(unknown, 7, netip.Addr{})
	clk.Advance(5 * time.Second)

	o.Database = append(entries(eidA, eidC), o.Database[1])
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	type smr struct{ to, source, record string }
	var got []smr
	for _, m := range decodeAll(t, c) {
		if r, ok := m.msg.(*wire.MapRequest); ok && r.SMR {
			src, _ := mapping.FromWire(r.SourceEID, 32)
			got = append(got, smr{m.to.Addr().String(), src.String(), r.Records[0].PrefixString()})
		}
	}
	slices.SortFunc(got, func(a, b smr) int { return strings.Compare(a.to+a.source, b.to+b.source) })
	want := []smr{
		{"192.0.2.41", "198.51.100.0/32", "192.0.2.77/32"},
		{"192.0.2.41", "203.0.113.0/32", "192.0.2.77/32"},
		{"192.0.2.42", "[7]198.51.100.0/32", "[7]198.51.100.0/24"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("SMRs sent (to, Source-EID, record):\n got %v\nwant %v", got, want)
	}
}

// A database change registers the new prefixes at once, withdraws the
// removed one and solicits Map-Requests from the ITRs that talk to us.
func TestReconfigureDatabase(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	o := xtrOpts(clk, c, eidA, eidB)
	s := New(o)
	s.Tick()
	c.Take()
	s.Decapsulated(itrA, 0, netip.Addr{})
	clk.Advance(5 * time.Second)

	o.Database = entries(eidA, eidC)
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	msgs := decodeAll(t, c)
	reg, withdrawn := registered(t, msgs)
	if got := reg[ms1.Addr]; !slices.Equal(got, []string{"198.51.100.0/25", "203.0.113.0/24"}) {
		t.Errorf("registered %v, want the new database at once", got)
	}
	if got := withdrawn[ms1.Addr]; !slices.Equal(got, []string{"198.51.100.128/25"}) {
		t.Errorf("withdrew %v, want the removed prefix", got)
	}
	if got := smrsTo(msgs, itrA); len(got) != 2 {
		t.Errorf("SMRs to the recent ITR: %v, want one per database prefix", got)
	}
	if !s.Owns(eidC) || s.Owns(eidB) {
		t.Error("the ETR does not answer for the new database")
	}
}

// Map-Servers: a new one is registered with at once, a removed one hears
// that the database is withdrawn, an unchanged one keeps its schedule.
func TestReconfigureMapServers(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	o := xtrOpts(clk, c, eidA)
	o.MapServers = []MapServerPeer{ms1, ms2}
	s := New(o)
	s.Tick()
	c.Take()
	clk.Advance(time.Second)
	ms3 := MapServerPeer{Addr: netip.MustParseAddr("192.0.2.33"), Alg: wire.AuthHMACSHA256, Secret: []byte("k3")}
	o.MapServers = []MapServerPeer{ms1, ms3}
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	reg, withdrawn := registered(t, decodeAll(t, c))
	if len(reg[ms3.Addr]) != 1 || len(reg[ms1.Addr]) != 0 || len(reg[ms2.Addr]) != 0 {
		t.Errorf("registrations %v: want the new Map-Server only", reg)
	}
	if len(withdrawn[ms2.Addr]) != 1 || len(withdrawn) != 1 {
		t.Errorf("withdrawals %v: want the removed Map-Server only", withdrawn)
	}
	var addrs []string
	for _, m := range s.DatabaseView().MapServers {
		addrs = append(addrs, m.Address.String())
	}
	if !slices.Equal(addrs, []string{"192.0.2.31", "192.0.2.33"}) {
		t.Errorf("show database lists Map-Servers %v", addrs)
	}
}

// Map-Resolvers are replaced live: the next miss asks the new one.
func TestReconfigureMapResolvers(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	o := xtrOpts(clk, c)
	o.ETR = false
	s := New(o)
	o.MapResolvers = []netip.Addr{netip.MustParseAddr("192.0.2.9")}
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	s.Miss(0, dst)
	if out := c.Take(); len(out) != 1 || out[0].To.Addr() != o.MapResolvers[0] {
		t.Fatalf("Map-Request went to %+v, want the new Map-Resolver", out)
	}
}

// ITR off flushes the map-cache and asks nothing more; ETR off withdraws
// the database and stops answering for it; both come back on.
func TestReconfigureITRETROnOff(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	o := xtrOpts(clk, c, eidA)
	s := New(o)
	s.Tick()
	// A remote EID: an answer covering our own prefix is not taken.
	s.Miss(0, eidC.Prefix.Addr().Next())
	var nonce uint64
	for _, m := range decodeAll(t, c) {
		if e, ok := m.msg.(*wire.ECM); ok {
			nonce = e.Message.(*wire.MapRequest).Nonce
		}
	}
	rec := mapping.Mapping{EID: eidC, TTL: 10,
		Locators: []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.12"), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: nonce, Records: []wire.EIDRecord{rec.Record()}}}, c)
	if len(s.MapCache()) != 1 {
		t.Fatal("no map-cache entry")
	}
	off := o
	off.ITR, off.ETR = false, false
	if err := s.Reconfigure(off); err != nil {
		t.Fatal(err)
	}
	_, withdrawn := registered(t, decodeAll(t, c))
	if len(withdrawn[ms1.Addr]) != 1 {
		t.Errorf("ETR off withdrew %v, want the database", withdrawn)
	}
	if n := len(s.MapCache()); n != 0 {
		t.Errorf("ITR off left %d map-cache entries", n)
	}
	s.Miss(0, dst)
	clk.Advance(time.Minute)
	s.Tick()
	if out := c.Take(); len(out) != 0 {
		t.Errorf("an xTR with ITR and ETR off sent %d messages", len(out))
	}
	req := &wire.MapRequest{Nonce: 5, ITRRLOCs: []wire.Address{wire.AddrFromIP(me)},
		Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.1"))}}}
	s.HandleMapRequest(encapsulated(req, netip.AddrPortFrom(me, 61000), rloc, 61000), c)
	if len(c.Take()) != 0 {
		t.Error("an ETR turned off answered a Map-Request")
	}
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	if reg, _ := registered(t, decodeAll(t, c)); len(reg[ms1.Addr]) != 1 {
		t.Errorf("ETR on registered %v, want the database at once", reg)
	}
	s.Miss(0, dst)
	if len(c.Take()) != 1 {
		t.Error("ITR on again: a miss asks nothing")
	}
}

// The RLOC-probing interval changes live; probing off brings back the
// locators it had marked down.
func TestReconfigureProbeInterval(t *testing.T) {
	c, clk, d := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0)), &upDP{up: map[netip.Addr]bool{}}
	s := New(Options{ITR: true, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me}, Now: clk.Now,
		Sender: c, DataPlane: d})
	s.Miss(0, dst)
	req := requestOf(t, c.Take()[0])
	rec := mapping.Mapping{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")), TTL: 60,
		Locators: []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.12"), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{rec.Record()}}}, c)
	o := s.opts
	o.ProbeInterval = time.Second
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	probes := 0
	for range 12 { // 3 s: unanswered, the locator goes down
		clk.Advance(250 * time.Millisecond)
		s.Tick()
		probes += len(c.Take())
	}
	if probes < 3 {
		t.Fatalf("%d probes in 3 s at a 1 s interval", probes)
	}
	if v := s.RLOCProbing(); len(v) != 1 || v[0].State != "down" || d.up[v[0].Address] {
		t.Fatalf("probing: %+v, want the silent locator down", v)
	}
	o.ProbeInterval = 0
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	s.Tick()
	if out := c.Take(); len(out) != 0 {
		t.Errorf("%d probes with probing off", len(out))
	}
	if v := s.RLOCProbing(); len(v) != 0 {
		t.Errorf("probing off still shows %+v", v)
	}
	if up, ok := d.up[netip.MustParseAddr("192.0.2.12")]; !ok || !up {
		t.Error("the locator probing marked down is not up again in the data plane")
	}
}

// upDP records the locator states the xTR programs.
type upDP struct {
	NopDataPlane
	up map[netip.Addr]bool
}

func (d *upDP) SetLocatorUp(_ mapping.EID, rloc netip.Addr, up bool) { d.up[rloc] = up }

// What cannot change live is refused, and nothing changes.
func TestReconfigureRefusesFixed(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	o := xtrOpts(clk, c, eidA)
	s := New(o)
	n := o
	n.XTRID, n.PITR = [16]byte{8}, true
	n.Database = entries(eidC)
	err := s.Reconfigure(n)
	var restart *RestartError
	if !errors.As(err, &restart) || err.Error() != "xtr: PITR, XTRID cannot change without a restart" {
		t.Fatalf("Reconfigure = %v", err)
	}
	if !s.Owns(eidA) || s.Owns(eidC) || s.DatabaseView().XTRID != hexID([16]byte{7}) {
		t.Error("a refused reconfiguration changed the xTR")
	}
}

// A Map-Server whose key changes is registered with under the new key at
// once and not sent a withdrawal: the prefixes do not flap.
func TestReconfigureMapServerKey(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	o := xtrOpts(clk, c, eidA)
	s := New(o)
	s.Tick()
	c.Take()
	o.MapServers = []MapServerPeer{ms1}
	o.MapServers[0].Secret = []byte("rotated")
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	out := c.Take()
	reg, withdrawn := registered(t, decodeAllOf(t, out))
	if len(reg[ms1.Addr]) != 1 || len(withdrawn) != 0 {
		t.Fatalf("registered %v, withdrew %v: want a registration only", reg, withdrawn)
	}
	if err := wire.Verify(out[0].B, []byte("rotated"), wire.AuthOptions{}); err != nil {
		t.Errorf("Map-Register not signed with the new key: %v", err)
	}
}

// A smaller map-cache takes effect at once; a longer register interval
// postpones the next periodic Map-Register, a shorter one brings it on.
func TestReconfigureCacheSizeAndRegisterInterval(t *testing.T) {
	s, c, _, _ := newITR(t) // map-cache of 3
	for i, d := range []string{"198.51.100.1", "198.51.100.129", "203.0.113.1"} {
		s.Miss(0, netip.MustParseAddr(d))
		req := requestOf(t, c.Take()[0])
		rec := mapping.Mapping{EID: mapping.NewEID(0, netip.PrefixFrom(netip.MustParseAddr(d), 25).Masked()), TTL: uint32(10 + i),
			Locators: []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.12"), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
		s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{rec.Record()}}}, c)
	}
	if n := len(s.MapCache()); n != 3 {
		t.Fatalf("%d entries cached", n)
	}
	o := s.Options()
	o.MaxCacheEntries = 1
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	if n := len(s.MapCache()); n != 1 {
		t.Errorf("%d entries in a map-cache reloaded to hold 1", n)
	}

	clk, c2 := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	e := New(xtrOpts(clk, c2, eidA)) // registers every minute
	e.Tick()
	c2.Take()
	o = e.Options()
	o.RegisterInterval = 10 * time.Second
	if err := e.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Second)
	e.Tick()
	if reg, _ := registered(t, decodeAll(t, c2)); len(reg[ms1.Addr]) != 1 {
		t.Errorf("no Map-Register 11 s after the interval was reloaded to 10 s: %v", reg)
	}
}

// Reconfiguring with what runs (locators in another order included)
// sends nothing: no registration, withdrawal or SMR.
func TestReconfigureUnchangedIsQuiet(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	o := xtrOpts(clk, c, eidA)
	o.Database[0].Locators = []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.22"), Priority: 1, Weight: 50},
		{Addr: rloc, Priority: 1, Weight: 50}}
	s := New(o)
	s.Tick()
	s.Decapsulated(itrA, 0, netip.Addr{})
	c.Take()
	// A new configuration, as a reload builds: nothing shared with the first.
	n := xtrOpts(clk, c, eidA)
	n.Database[0].Locators = []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.22"), Priority: 1, Weight: 50},
		{Addr: rloc, Priority: 1, Weight: 50}}
	if err := s.Reconfigure(n); err != nil {
		t.Fatal(err)
	}
	if out := c.Take(); len(out) != 0 {
		t.Errorf("an unchanged reconfiguration sent %d messages: %v", len(out), decodeAllOf(t, out))
	}
}

// ITR off ends the publish/subscribe subscriptions, through the
// Map-Resolver they were made with even when the reload replaces it.
func TestReconfigureITROffUnsubscribes(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	o := xtrOpts(clk, c, eidA)
	o.ETR, o.Subscribe = false, true
	s := New(o)
	s.Miss(0, dst)
	c.Take()
	n := xtrOpts(clk, c, eidA)
	n.ETR, n.ITR, n.Subscribe = true, false, true
	n.MapResolvers = []netip.Addr{netip.MustParseAddr("192.0.2.9")}
	if err := s.Reconfigure(n); err != nil {
		t.Fatal(err)
	}
	var unsub []netip.AddrPort
	for _, m := range decodeAll(t, c) {
		if e, ok := m.msg.(*wire.ECM); ok {
			r := e.Message.(*wire.MapRequest)
			if len(r.ITRRLOCs) == 1 && !addrOK(r.ITRRLOCs[0]) && r.Records[0].Notify {
				unsub = append(unsub, m.to)
			}
		}
	}
	if !slices.Equal(unsub, []netip.AddrPort{netip.AddrPortFrom(mr, 4342)}) {
		t.Errorf("unsubscriptions sent to %v, want one to the old Map-Resolver", unsub)
	}
}

func addrOK(a wire.Address) bool { _, ok := a.Addr(); return ok }
