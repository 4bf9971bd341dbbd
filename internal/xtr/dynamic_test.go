package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// TestDynamicEIDHost: a detected host is registered at once beside the
// database; an unsolicited Map-Notify that shows it registered with other
// locators reports a move (one that still lists ours does not); the away
// entry goes to the data plane with an SMR for the host to recent ITRs;
// a host that went silent is withdrawn with a TTL-0 record.
func TestDynamicEIDHost(t *testing.T) {
	ms := netip.MustParseAddr("192.0.2.1")
	rloc := netip.MustParseAddr("192.0.2.12")
	itr := netip.MustParseAddr("192.0.2.30")
	secret := []byte("dc1-key")
	c, clk, d := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0)), &dp{set: map[mapping.EID]CacheEntry{}}
	var moved []mapping.Mapping
	s := New(Options{ETR: true, ITR: true, LocalRLOCs: []netip.Addr{rloc}, Now: clk.Now, Sender: c, DataPlane: d,
		MapServers: []MapServerPeer{{Addr: ms, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: secret, WantMapNotify: true}},
		Database: []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/25")),
			Locators: []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}}},
		OnMovedAway: func(to []mapping.Mapping) { moved = append(moved, to...) }})
	s.Tick()
	c.Take()
	host := mapping.HostEID(0, netip.MustParseAddr("203.0.113.10"))
	ours := []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
	if !s.AddHost(host, ours) || s.AddHost(host, ours) {
		t.Fatal("AddHost: want true then false")
	}
	out := c.Take()
	if len(out) != 1 || out[0].To != netip.AddrPortFrom(ms, 4342) {
		t.Fatalf("no immediate Map-Register: %+v", out)
	}
	m, _ := wire.Decode(out[0].B)
	if reg := m.(*wire.MapRegister); len(reg.Records) != 1 || reg.Records[0].MaskLen != 32 {
		t.Errorf("Map-Register has %d records, want the host alone", len(reg.Records))
	}
	if !s.Owns(host) || len(s.Hosts()) != 1 {
		t.Error("host not in the database")
	}
	s.Decapsulated(itr, 0, netip.Addr{})

	notify := func(locs []mapping.Locator) {
		n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: 77, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
			Records: []wire.EIDRecord{(&mapping.Mapping{EID: host, TTL: 10, Locators: locs}).Record()}}}
		b, err := wire.EncodeSigned(n, secret, wire.AuthOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := wire.Decode(b)
		s.HandleMapNotify(&control.Request{Raw: b, Msg: dec.(*wire.MapNotify), Src: netip.AddrPortFrom(ms, 4342), Local: netip.AddrPortFrom(rloc, wire.ControlPort)}, c)
	}
	// The merged set of our site still lists our RLOC: not a move.
	notify(append(ours, mapping.Locator{Addr: netip.MustParseAddr("192.0.2.13"), Priority: 1, Weight: 100}))
	if len(moved) != 0 {
		t.Fatalf("merged set taken for a move: %v", moved)
	}
	elsewhere := []mapping.Locator{{Addr: netip.MustParseAddr("198.18.6.2"), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}
	c.Take()
	notify(elsewhere)
	if len(moved) != 1 || moved[0].Locators[0].Addr != elsewhere[0].Addr {
		t.Fatalf("move not reported: %v", moved)
	}
	if out := c.Take(); len(out) != 1 {
		t.Errorf("want one Map-Notify-Ack, got %d messages", len(out))
	}

	// What the dynamic-EID manager then does:
	s.RemoveHost(host, false)
	s.SetAway(moved[0], time.Hour)
	if e, ok := d.set[host]; !ok || e.Locators[0].Addr != elsewhere[0].Addr {
		t.Errorf("away entry not programmed: %+v", d.set)
	}
	out = c.Take()
	if len(out) != 1 || out[0].To != netip.AddrPortFrom(itr, 4342) {
		t.Fatalf("want one SMR to the recent ITR, got %+v", out)
	}
	m, _ = wire.Decode(out[0].B)
	if smr := m.(*wire.MapRequest); !smr.SMR || smr.Records[0].MaskLen != 32 {
		t.Errorf("not an SMR for the host: %v", smr)
	}
	if v := s.MapCache(); len(v) != 1 || v[0].Source != "away" {
		t.Errorf("show map-cache: %+v", v)
	}
	// An ITR that never sent us traffic before the move, now sending for
	// the away host with a stale mapping, gets its own SMR, once a second.
	late := netip.MustParseAddr("192.0.2.40")
	s.AwayHit(late, 0, host.Prefix.Addr())
	s.AwayHit(late, 0, host.Prefix.Addr())
	if out := c.Take(); len(out) != 1 || out[0].To != netip.AddrPortFrom(late, 4342) {
		t.Errorf("want one SMR to the late ITR, got %+v", out)
	}
	clk.Advance(1100 * time.Millisecond)
	s.AwayHit(late, 0, netip.MustParseAddr("203.0.113.99")) // not away
	if out := c.Take(); len(out) != 0 {
		t.Errorf("SMR for a host that is not away: %+v", out)
	}
	s.ClearAway(host)
	if _, ok := d.set[host]; ok {
		t.Error("away entry kept after ClearAway")
	}

	// The host is back: a database change, so the recent ITRs (which
	// may cache it at the other site) get an SMR besides the Map-Register.
	// The SMRs wait for the Map-Server's acknowledgement: before it, the
	// Map-Requests they invoke could still find the old site.
	clk.Advance(1100 * time.Millisecond)
	s.AddHost(host, ours)
	smrs := func(msgs []lisptest.Sent) (n int, reg *wire.MapRegister) {
		for _, m := range msgs {
			switch r := must(wire.Decode(m.B)).(type) {
			case *wire.MapRequest:
				if r.SMR {
					n++
				}
			case *wire.MapRegister:
				reg = r
			}
		}
		return n, reg
	}
	n, reg := smrs(c.Take())
	if n != 0 || reg == nil {
		t.Fatalf("before the ack: %d SMRs (want 0), Map-Register sent: %v", n, reg != nil)
	}
	ack := &wire.MapNotify{AuthBody: reg.AuthBody}
	ack.AuthData = nil
	b, err := wire.EncodeSigned(ack, secret, wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.HandleMapNotify(&control.Request{Raw: b, Msg: must(wire.Decode(b)).(*wire.MapNotify), Src: netip.AddrPortFrom(ms, 4342), Local: netip.AddrPortFrom(rloc, wire.ControlPort)}, c)
	if n, _ := smrs(c.Take()); n != 2 {
		t.Errorf("%d SMRs when the host came back, want 2 (both recent ITRs)", n)
	}

	// A silent host is withdrawn.
	s.RemoveHost(host, true)
	out = c.Take()
	if len(out) != 1 {
		t.Fatalf("want one withdrawing Map-Register, got %d", len(out))
	}
	m, _ = wire.Decode(out[0].B)
	if reg := m.(*wire.MapRegister); !reg.UseTTL || len(reg.Records) != 1 || reg.Records[0].TTL != 0 {
		t.Errorf("withdraw: %v", reg)
	}
	if len(s.Hosts()) != 0 {
		t.Error("host still in the database")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestUnseenHostHitSMR: an ITR sending us traffic for an address of a
// dynamic-EID range where no host of ours is gets an SMR for that address
// (once a second), so that it asks again and finds the host where it
// registered; a host of ours draws none.
func TestUnseenHostHitSMR(t *testing.T) {
	rloc, itr := netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.30")
	c, clk := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0))
	s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{rloc}, Now: clk.Now, Sender: c, DataPlane: &dp{set: map[mapping.EID]CacheEntry{}},
		Database: []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/24")),
			Locators: []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}}}})
	unseen := netip.MustParseAddr("203.0.113.77")
	s.UnseenHostHit(itr, 0, unseen)
	s.UnseenHostHit(itr, 0, unseen)
	out := c.Take()
	if len(out) != 1 || out[0].To != netip.AddrPortFrom(itr, wire.ControlPort) {
		t.Fatalf("want one SMR to the ITR, got %+v", out)
	}
	smr, ok := must(wire.Decode(out[0].B)).(*wire.MapRequest)
	if !ok || !smr.SMR {
		t.Fatalf("not an SMR: %v", smr)
	}
	if a, _ := smr.SourceEID.Addr(); a != unseen {
		t.Errorf("SMR Source-EID %v, want the address %s", smr.SourceEID, unseen)
	}
	clk.Advance(1100 * time.Millisecond)
	s.UnseenHostHit(itr, 0, unseen)
	if out := c.Take(); len(out) != 1 {
		t.Errorf("after a second: want another SMR, got %d messages", len(out))
	}
	// Detected here meanwhile: the ITR's traffic reaches it, no SMR.
	clk.Advance(1100 * time.Millisecond)
	host := mapping.HostEID(0, unseen)
	s.AddHost(host, []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}})
	c.Take()
	s.UnseenHostHit(itr, 0, unseen)
	if out := c.Take(); len(out) != 0 {
		t.Errorf("SMR for a host that is here: %+v", out)
	}
}

// localCount is a data plane that counts SetLocalEIDs calls and keeps the
// last list.
type localCount struct {
	dp
	calls int
	local []mapping.EID
}

func (d *localCount) SetLocalEIDs(eids []mapping.EID) { d.calls++; d.local = eids }

// TestHostBatchLocalEIDsOnce: 200 hosts added in one HostBatch (a
// detection round) reach the data plane's local EIDs in one update, and
// go in Map-Registers of many records; 200 removed in one batch, one
// update too. A host added alone updates it at once.
func TestHostBatchLocalEIDsOnce(t *testing.T) {
	ms := netip.MustParseAddr("192.0.2.1")
	rloc := netip.MustParseAddr("192.0.2.12")
	c, clk := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0))
	d := &localCount{dp: dp{set: map[mapping.EID]CacheEntry{}}}
	site := mapping.NewEID(0, netip.MustParsePrefix("198.19.8.0/22"))
	s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{rloc}, Now: clk.Now, Sender: c, DataPlane: d,
		MapServers: []MapServerPeer{{Addr: ms, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: []byte("k"), WantMapNotify: true}},
		Database:   []DatabaseEntry{{EID: site, Locators: []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}}}})
	s.Tick()
	c.Take()
	locs := []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
	var hosts []mapping.EID
	a := netip.MustParseAddr("198.19.1.0")
	for range 200 {
		a = a.Next()
		hosts = append(hosts, mapping.HostEID(0, a))
	}
	d.calls = 0
	s.HostBatch(func() {
		for _, h := range hosts {
			s.AddHost(h, locs)
		}
	})
	if d.calls != 1 || len(d.local) != 201 {
		t.Errorf("200 hosts in one batch: %d updates of the local EIDs (last %d EIDs), want 1 of 201", d.calls, len(d.local))
	}
	regs := c.Take()
	if len(regs) == 0 || len(regs) > 200/10 {
		t.Errorf("200 hosts went in %d Map-Registers, want several records each", len(regs))
	}
	d.calls = 0
	s.HostBatch(func() {
		for _, h := range hosts {
			s.RemoveHost(h, false)
		}
	})
	if d.calls != 1 || len(d.local) != 1 || d.local[0] != site {
		t.Errorf("200 hosts removed in one batch: %d updates, last %v; want 1, the site's prefix alone", d.calls, d.local)
	}
	if !s.Owns(site) || s.Owns(hosts[0]) || len(s.Hosts()) != 0 {
		t.Errorf("database after the removals: owns the site %v, %d hosts", s.Owns(site), len(s.Hosts()))
	}
	d.calls = 0
	s.AddHost(hosts[0], locs)
	if d.calls != 1 || len(d.local) != 2 {
		t.Errorf("a host alone: %d updates of %d EIDs, want 1 of 2", d.calls, len(d.local))
	}
}
