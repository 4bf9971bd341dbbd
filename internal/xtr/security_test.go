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

// Attacks on the xTR from the mapping system's side (issue 12): a tenant's
// ETR overclaiming in its Map-Reply, Map-Notifies replayed, records whose
// TTL overflows, probe replies without authority. Each test performs the
// attack and sees it fail.

var (
	siteEID  = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")) // the ITR's own site
	asked    = netip.MustParseAddr("203.0.113.10")                         // the EID it asks for
	askedNet = mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/24"))  // the honest answer
	evilRLOC = netip.MustParseAddr("198.18.66.6")
	goodRLOC = netip.MustParseAddr("192.0.2.12")
)

func rec(eid string, locs ...netip.Addr) wire.EIDRecord {
	m := mapping.Mapping{EID: mapping.NewEID(0, netip.MustParsePrefix(eid)), TTL: 10}
	for _, a := range locs {
		m.Locators = append(m.Locators, mapping.Locator{Addr: a, Priority: 1, Weight: 100, Flags: wire.LocatorReachable})
	}
	if len(locs) == 0 {
		m.Action = wire.ActionDrop
	}
	return m.Record()
}

// askAndAnswer makes s ask for asked and answers with recs under the
// request's nonce.
func askAndAnswer(t *testing.T, s *Server, c *lisptest.Sender, recs ...wire.EIDRecord) {
	t.Helper()
	s.Miss(0, asked)
	out := c.Take()
	if len(out) != 1 {
		t.Fatalf("%d messages for a miss, want one Map-Request", len(out))
	}
	s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Nonce: requestOf(t, out[0]).Nonce, Records: recs},
		Src: netip.AddrPortFrom(evilRLOC, wire.ControlPort)}, c)
}

// TestOverclaimingReplyNotInstalled: the ETR the mapping system forwards
// our request for 203.0.113.10 to answers, under the right nonce, with a
// default route, another site's prefix, a drop action for a prefix it was
// not asked about, a prefix covering our own site, and the honest record.
// Only the honest record (and a more-specific inside it) is installed; the
// rest is counted by reason. So for an ITR and a PITR (no database).
func TestOverclaimingReplyNotInstalled(t *testing.T) {
	for _, pitr := range []bool{false, true} {
		c, d := &lisptest.Sender{}, &dp{set: map[mapping.EID]CacheEntry{}}
		o := Options{ITR: true, PITR: pitr, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me},
			Now: lisptest.NewClock(time.Unix(1e9, 0)).Now, Sender: c, DataPlane: d}
		if !pitr {
			o.Database = []DatabaseEntry{{EID: siteEID, Locators: []mapping.Locator{{Addr: me, Priority: 1, Weight: 100}}}}
		}
		s := New(o)
		recs := []wire.EIDRecord{
			rec("0.0.0.0/0", evilRLOC),        // everything
			rec("198.18.0.0/24", evilRLOC),    // another site's prefix
			rec("198.18.1.0/24"),              // a drop action it was not asked about
			rec("203.0.113.0/24", goodRLOC),   // the answer
			rec("203.0.113.128/25", goodRLOC), // a more-specific inside it
			rec("203.0.112.0/23", evilRLOC),   // covering the answer: fine by itself...
			rec("2001:db8::/32", evilRLOC),    // another family altogether
			rec("198.51.100.0/23", evilRLOC),  // covers our own site (or, for the PITR, no EID asked)
		}
		askAndAnswer(t, s, c, recs...)
		want := map[string]bool{"203.0.113.0/24": true, "203.0.113.128/25": true, "203.0.112.0/23": true}
		for eid, e := range d.set {
			if !want[eid.Prefix.String()] {
				t.Errorf("pitr=%v: installed %s (negative=%v, %d locators): an overclaim", pitr, eid, e.Negative, len(e.Locators))
			}
			for _, l := range e.Locators {
				if l.Addr == evilRLOC && !eid.Contains(mapping.HostEID(0, asked)) {
					t.Errorf("pitr=%v: %s points at the attacker without covering the EID asked for", pitr, eid)
				}
			}
		}
		if _, ok := d.set[askedNet]; !ok {
			t.Errorf("pitr=%v: the honest answer was not installed: %v", pitr, d.set)
		}
		tooBroad, notAsked := lisptest.Counter(t, s.opts.Stats, "itr.map_reply_records_dropped{reason=too-broad}"), lisptest.Counter(t, s.opts.Stats, "itr.map_reply_records_dropped{reason=not-requested}")
		coversLocal := lisptest.Counter(t, s.opts.Stats, "itr.map_reply_records_dropped{reason=covers-local}")
		if tooBroad != 1 || notAsked+coversLocal != 4 || (!pitr && coversLocal != 1) {
			t.Errorf("pitr=%v: dropped too-broad %d, not-requested %d, covers-local %d; want 1, 4 in all (1 covering ours)",
				pitr, tooBroad, notAsked, coversLocal)
		}
	}
}

// TestReplyRecordsCapped: a Map-Reply of 200 more-specifics inside the
// answer fills the map-cache with 16 at most; the rest are counted.
func TestReplyRecordsCapped(t *testing.T) {
	c, d := &lisptest.Sender{}, &dp{set: map[mapping.EID]CacheEntry{}}
	s := New(Options{ITR: true, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me},
		Now: lisptest.NewClock(time.Unix(1e9, 0)).Now, Sender: c, DataPlane: d})
	recs := []wire.EIDRecord{rec("203.0.113.0/24", goodRLOC)}
	for i := range 199 {
		recs = append(recs, rec(netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32).String(), evilRLOC))
	}
	askAndAnswer(t, s, c, recs...)
	if len(d.set) != 16 {
		t.Errorf("%d map-cache entries from one Map-Reply, want %d", len(d.set), 16)
	}
	if n := lisptest.Counter(t, s.opts.Stats, "itr.map_reply_records_dropped{reason=too-many-records}"); n != 200-16 {
		t.Errorf("too-many-records = %d, want %d", n, 200-16)
	}
}

// TestRecordTTLClamped: a record TTL of 0xffffffff or 0xfffffffe minutes
// (more than a time.Duration holds) caches the mapping for a day, not for
// a negative or wrapped time.
func TestRecordTTLClamped(t *testing.T) {
	for _, ttl := range []uint32{0xffffffff, 0xfffffffe, 1 << 31} {
		clk := lisptest.NewClock(time.Unix(1e9, 0))
		c, d := &lisptest.Sender{}, &dp{set: map[mapping.EID]CacheEntry{}}
		s := New(Options{ITR: true, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me}, Now: clk.Now, Sender: c, DataPlane: d})
		r := rec("203.0.113.0/24", goodRLOC)
		r.TTL = ttl
		askAndAnswer(t, s, c, r)
		e, ok := d.set[askedNet]
		if !ok {
			t.Fatalf("ttl %#x: not installed", ttl)
		}
		if got := e.Expires.Sub(clk.Now()); got != 24*time.Hour {
			t.Errorf("ttl %#x: expires in %v, want 24h", ttl, got)
		}
		clk.Advance(23 * time.Hour)
		s.Tick()
		if len(s.MapCache()) != 1 {
			t.Errorf("ttl %#x: gone within the day", ttl)
		} else if v := s.MapCache()[0]; v.TTL < 1440*60 {
			t.Errorf("ttl %#x: show map-cache says TTL %d s", ttl, v.TTL)
		}
		clk.Advance(2 * time.Hour)
		s.Tick()
		if len(s.MapCache()) != 0 {
			t.Errorf("ttl %#x: still cached after a day", ttl)
		}
	}
}

// TestProbeReplyWithoutAuthority: a probe reply whose record lacks the A
// bit does not count as the locator's answer; one with it does.
func TestProbeReplyWithoutAuthority(t *testing.T) {
	clk := lisptest.NewClock(time.Unix(1e9, 0))
	c, d := &lisptest.Sender{}, &dp{set: map[mapping.EID]CacheEntry{}}
	s := New(Options{ITR: true, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me}, Now: clk.Now, Sender: c,
		DataPlane: d, ProbeInterval: 3 * time.Second})
	askAndAnswer(t, s, c, rec("203.0.113.0/24", goodRLOC))
	clk.Advance(3 * time.Second)
	s.Tick()
	var probe *wire.MapRequest
	for _, m := range c.Take() {
		if r, ok := must(wire.Decode(m.B)).(*wire.MapRequest); ok && r.Probe {
			probe = r
		}
	}
	if probe == nil {
		t.Fatal("no probe sent")
	}
	answer := func(authoritative bool) {
		r := rec("203.0.113.0/24", goodRLOC)
		r.Authoritative = authoritative
		s.HandleMapReply(&control.Request{Msg: &wire.MapReply{Probe: true, Nonce: probe.Nonce, Records: []wire.EIDRecord{r}},
			Src: netip.AddrPortFrom(goodRLOC, wire.ControlPort)}, c)
	}
	answer(false)
	if v := s.RLOCProbing(); len(v) != 1 || v[0].Replies != 0 {
		t.Errorf("a probe reply without the A bit counted as an answer: %+v", v)
	}
	if n := lisptest.Counter(t, s.opts.Stats, "rloc_probing.replies_dropped{reason=not-authoritative}"); n != 1 {
		t.Errorf("not-authoritative = %d, want 1", n)
	}
	answer(true)
	if v := s.RLOCProbing(); len(v) != 1 || v[0].Replies != 1 {
		t.Errorf("the authoritative probe reply did not count: %+v", v)
	}
}

// notifyFrom signs n with secret and hands it to s as a Map-Notify from the
// Map-Server at ms.
func notifyFrom(t *testing.T, s *Server, c control.Sender, ms, local netip.Addr, secret []byte, n *wire.MapNotify) {
	t.Helper()
	b, err := wire.EncodeSigned(n, secret, wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.HandleMapNotify(&control.Request{Raw: b, Msg: must(wire.Decode(b)).(*wire.MapNotify),
		Src: netip.AddrPortFrom(ms, wire.ControlPort), Local: netip.AddrPortFrom(local, wire.ControlPort)}, c)
}

// subscribedITR is an xTR of siteEID, with the Map-Server ms (key
// secret), that missed asked and subscribed to it: sub is its
// subscribing Map-Request.
func subscribedITR(t *testing.T, clk *lisptest.Clock) (s *Server, c *lisptest.Sender, d *dp, sub *wire.MapRequest) {
	t.Helper()
	c, d = &lisptest.Sender{}, &dp{set: map[mapping.EID]CacheEntry{}}
	s = New(Options{ITR: true, ETR: true, Subscribe: true, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me},
		Database:   []DatabaseEntry{{EID: siteEID, Locators: []mapping.Locator{{Addr: me, Priority: 1, Weight: 100}}}},
		MapServers: []MapServerPeer{{Addr: pubMS, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: pubSecret}},
		Now:        clk.Now, Sender: c, DataPlane: d})
	s.Miss(0, asked)
	for _, m := range c.Take() {
		if e, ok := must(wire.Decode(m.B)).(*wire.ECM); ok {
			sub = e.Message.(*wire.MapRequest)
		}
	}
	if sub == nil || !sub.Records[0].Notify {
		t.Fatalf("no subscribing Map-Request: %v", sub)
	}
	return s, c, d, sub
}

// The Map-Server of subscribedITR and its key.
var pubMS, pubSecret = netip.MustParseAddr("192.0.2.1"), []byte("site-key")

// TestPublicationReplayed: an ITR subscribed to 203.0.113.10 got the
// subscription's Map-Notify (locator A) and a publication (locator B). The
// old signed Map-Notify and the publication, replayed, change nothing and
// are counted; the next publication (locator C) is applied. RFC 9437 §7.
func TestPublicationReplayed(t *testing.T) {
	ms, secret := pubMS, pubSecret
	s, c, d, sub := subscribedITR(t, lisptest.NewClock(time.Unix(1e9, 0)))
	a, b, cc := netip.MustParseAddr("192.0.2.101"), netip.MustParseAddr("192.0.2.102"), netip.MustParseAddr("192.0.2.103")
	publication := func(nonce uint64, loc netip.Addr) *wire.MapNotify {
		return &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
			HasXTRID: true, Records: []wire.EIDRecord{rec("203.0.113.0/24", loc)}}}
	}
	locator := func() netip.Addr {
		e, ok := d.set[askedNet]
		if !ok || len(e.Locators) != 1 {
			t.Fatalf("map-cache: %+v", d.set)
		}
		return e.Locators[0].Addr
	}
	first, second := publication(sub.Nonce, a), publication(sub.Nonce+1, b)
	notifyFrom(t, s, c, ms, me, secret, first)
	notifyFrom(t, s, c, ms, me, secret, second)
	if got := locator(); got != b {
		t.Fatalf("after the publication the map-cache says %s, want %s", got, b)
	}
	for _, replayed := range []*wire.MapNotify{first, second} {
		notifyFrom(t, s, c, ms, me, secret, replayed)
		if got := locator(); got != b {
			t.Errorf("the replayed Map-Notify of nonce %#x reinstalled %s", replayed.Nonce, got)
		}
	}
	if n := lisptest.Counter(t, s.opts.Stats, "etr.map_notifies_dropped{reason=replayed-publication}"); n != 2 {
		t.Errorf("replayed-publication = %d, want 2", n)
	}
	notifyFrom(t, s, c, ms, me, secret, publication(sub.Nonce+2, cc))
	if got := locator(); got != cc {
		t.Errorf("the next publication was not applied: %s", got)
	}
	// Every verified Map-Notify is acknowledged, replays included, so a
	// Map-Server retransmitting one whose ack was lost stops.
	acks := 0
	for _, m := range c.Take() {
		if _, ok := must(wire.Decode(m.B)).(*wire.MapNotifyAck); ok {
			acks++
		}
	}
	if acks != 5 {
		t.Errorf("%d Map-Notify-Acks, want 5", acks)
	}
}

// TestMovedNotifyReplayed: a host of ours moved away (the Map-Server's
// "moved" Map-Notify) and came back. That old Map-Notify replayed does not
// make the xTR give the host up; a later move (a larger nonce) does.
func TestMovedNotifyReplayed(t *testing.T) {
	ms, rloc, secret := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.12"), []byte("dc1-key")
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	var moved []mapping.Mapping
	s := New(Options{ETR: true, ITR: true, LocalRLOCs: []netip.Addr{rloc}, Now: clk.Now, Sender: c,
		MapServers:  []MapServerPeer{{Addr: ms, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: secret}},
		Database:    []DatabaseEntry{{EID: siteEID, Locators: []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}}},
		OnMovedAway: func(to []mapping.Mapping) { moved = append(moved, to...) }})
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.10"))
	ours := []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
	s.AddHost(host, ours)
	movedNotify := func(nonce uint64) *wire.MapNotify {
		return &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
			Records: []wire.EIDRecord{rec("198.51.100.10/32", netip.MustParseAddr("198.18.6.2"))}}}
	}
	old := movedNotify(1_000_000)
	notifyFrom(t, s, c, ms, rloc, secret, old)
	if len(moved) != 1 {
		t.Fatalf("the move was not reported: %v", moved)
	}
	// What the dynamic-EID manager does: away, then back.
	s.RemoveHost(host, false)
	s.SetAway(moved[0], time.Hour)
	clk.Advance(time.Minute)
	s.ClearAway(host)
	s.AddHost(host, ours)

	notifyFrom(t, s, c, ms, rloc, secret, old)
	if len(moved) != 1 || len(s.Hosts()) != 1 {
		t.Errorf("a replayed moved Map-Notify made the xTR give up its host (moves %d, hosts %d)", len(moved), len(s.Hosts()))
	}
	if n := lisptest.Counter(t, s.opts.Stats, "etr.map_notifies_dropped{reason=replayed-move}"); n != 1 {
		t.Errorf("replayed-move = %d, want 1", n)
	}
	again := movedNotify(old.Nonce + 12345)
	again.Records[0].TTL = 0xfffffffe // minutes: overflows a time.Duration
	notifyFrom(t, s, c, ms, rloc, secret, again)
	if len(moved) != 2 {
		t.Fatalf("a new move was not reported: %d moves", len(moved))
	}
	if moved[1].TTL > 1440 {
		t.Errorf("the move is handed on with TTL %d minutes, want at most a day", moved[1].TTL)
	}
}

// TestRequestStateBounded: the Map-Request rate-limit state and the
// subscriptions of EIDs asked for once and never again are forgotten, so a
// stream of misses for ever new EIDs does not grow them without end; a
// re-subscription after that still goes above the old nonce.
func TestRequestStateBounded(t *testing.T) {
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	s := New(Options{ITR: true, Subscribe: true, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me},
		Now: clk.Now, Sender: c})
	var last uint64
	for i := range 1000 {
		s.Miss(0, netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}))
	}
	for _, m := range c.Take() {
		last = max(last, requestOf(t, m).Nonce)
	}
	if reqs, subs := requestState(s); reqs != 1000 || subs != 1000 {
		t.Fatalf("state for %d requests, %d subscriptions; want 1000 each", reqs, subs)
	}
	for range 40 {
		clk.Advance(time.Second)
		s.Tick()
	}
	if reqs, subs := requestState(s); reqs != 0 || subs != 0 || len(s.pending) != 0 {
		t.Errorf("after 40 s: %d requests, %d subscriptions, %d pending remembered; want none", reqs, subs, len(s.pending))
	}
	s.Miss(0, netip.AddrFrom4([4]byte{203, 0, 0, 0}))
	if r := requestOf(t, c.Take()[0]); r.Nonce <= last {
		t.Errorf("a new subscription's nonce %#x is not above the last %#x", r.Nonce, last)
	}
}

// requestState is how many EIDs s keeps Map-Request rate-limit state and
// subscriptions for.
func requestState(s *Server) (reqs, subs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs), len(s.subs)
}

// TestSMRAnsweredByPublication: an ITR subscribed to a prefix gets a
// publication of its new locator; the SMRs of that change, which the old
// and new sites send right after the Map-Server's news, ask nothing (a
// mass migration would bring a Map-Request and a new subscription per
// host); an SMR later than 200 ms still asks.
func TestSMRAnsweredByPublication(t *testing.T) {
	ms, secret, clk := pubMS, pubSecret, lisptest.NewClock(time.Unix(1e9, 0))
	s, c, _, sub := subscribedITR(t, clk)
	oldSite, newSite := netip.MustParseAddr("192.0.2.101"), netip.MustParseAddr("192.0.2.102")
	publication := func(nonce uint64, loc netip.Addr) *wire.MapNotify {
		return &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
			HasXTRID: true, Records: []wire.EIDRecord{rec("203.0.113.0/24", loc)}}}
	}
	notifyFrom(t, s, c, ms, me, secret, publication(sub.Nonce, oldSite))
	clk.Advance(10 * time.Second)
	notifyFrom(t, s, c, ms, me, secret, publication(sub.Nonce+1, newSite))
	c.Take()
	requests := func() (n int) {
		for _, m := range c.Take() {
			if e, ok := must(wire.Decode(m.B)).(*wire.ECM); ok && e.Message.(*wire.MapRequest).SMRInvoked {
				n++
			}
		}
		return n
	}
	smr := &wire.MapRequest{SMR: true, Nonce: 9, ITRRLOCs: []wire.Address{wire.AddrFromIP(oldSite)},
		Records: []wire.RequestRecord{{MaskLen: 24, EID: askedNet.Address()}}}
	clk.Advance(50 * time.Millisecond)
	for _, from := range []netip.Addr{oldSite, newSite} {
		s.HandleMapRequest(direct(smr, netip.AddrPortFrom(from, 4342), me), c)
	}
	if n := requests(); n != 0 {
		t.Errorf("%d SMR-invoked Map-Requests for a change a publication brought 50 ms before", n)
	}
	if n := lisptest.Counter(t, s.opts.Stats, "itr.smrs_in_burst"); n != 2 {
		t.Errorf("smrs_in_burst = %d, want 2", n)
	}
	clk.Advance(300 * time.Millisecond)
	s.HandleMapRequest(direct(smr, netip.AddrPortFrom(oldSite, 4342), me), c)
	if n := requests(); n != 1 {
		t.Errorf("an SMR 350 ms after the publication brought %d Map-Requests, want 1", n)
	}
}

// TestETRNeverAnswersItself performs the attack FuzzDispatch found: a
// Map-Request for our prefix reaching one address of ours names another
// address of ours as its ITR-RLOC. The Map-Reply would come back to us;
// nothing is sent. Named by the request's own source (we asked ourselves),
// or by a stranger's address, it is answered. With the daemon's Ours
// (every role's addresses), an address that is no local RLOC counts too.
func TestETRNeverAnswersItself(t *testing.T) {
	second := netip.MustParseAddr("192.0.2.13")   // another RLOC of this ETR
	msAddr := netip.MustParseAddr("192.0.2.1")    // this node's Map-Server, no RLOC
	stranger := netip.MustParseAddr("192.0.2.99") // an ITR elsewhere
	for _, c := range []struct {
		name    string
		ours    func(netip.Addr) bool
		from    netip.Addr
		itrRLOC netip.Addr
		answer  bool
	}{
		{"another local RLOC", nil, stranger, second, false},
		{"the address it reached", nil, stranger, goodRLOC, false},
		{"an address of another role", func(a netip.Addr) bool { return a == msAddr || a == goodRLOC || a == second }, stranger, msAddr, false},
		{"our own request", nil, second, second, true},
		{"a stranger", nil, stranger, stranger, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{goodRLOC, second}, Ours: c.ours,
				Database: []DatabaseEntry{{EID: askedNet, Locators: []mapping.Locator{{Addr: goodRLOC, Priority: 1, Weight: 100}}}}})
			m := &wire.MapRequest{Nonce: 7, ITRRLOCs: []wire.Address{wire.AddrFromIP(c.itrRLOC)},
				Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(asked)}}}
			var out lisptest.Sender
			s.HandleMapRequest(&control.Request{Msg: m, Src: netip.AddrPortFrom(c.from, 61000),
				Local: netip.AddrPortFrom(goodRLOC, wire.ControlPort)}, &out)
			sent := out.Take()
			if !c.answer {
				if len(sent) != 0 || lisptest.Counter(t, s.opts.Stats, "etr.map_requests_dropped{reason=no-itr-rloc}") != 1 {
					t.Errorf("ITR-RLOC %v, request from %v: sent %+v, want nothing and a no-itr-rloc drop", c.itrRLOC, c.from, sent)
				}
				return
			}
			if len(sent) != 1 || sent[0].To != netip.AddrPortFrom(c.itrRLOC, 61000) {
				t.Errorf("ITR-RLOC %v, request from %v: sent %+v, want one Map-Reply there", c.itrRLOC, c.from, sent)
			}
		})
	}
}

// TestReconfigureKeepsOurs: a reload builds the xTR's options from the
// file, without Ours; Reconfigure takes what may change from them and
// keeps the daemon's set, so an address of another role is still never
// answered.
func TestReconfigureKeepsOurs(t *testing.T) {
	msAddr, stranger := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.99")
	db := []DatabaseEntry{{EID: askedNet, Locators: []mapping.Locator{{Addr: goodRLOC, Priority: 1, Weight: 100}}}}
	s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{goodRLOC}, Database: db,
		Ours: func(a netip.Addr) bool { return a == msAddr || a == goodRLOC }})
	if err := s.Reconfigure(Options{ETR: true, LocalRLOCs: []netip.Addr{goodRLOC}, Database: db}); err != nil {
		t.Fatal(err)
	}
	m := &wire.MapRequest{Nonce: 7, ITRRLOCs: []wire.Address{wire.AddrFromIP(msAddr)},
		Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(asked)}}}
	var out lisptest.Sender
	s.HandleMapRequest(&control.Request{Msg: m, Src: netip.AddrPortFrom(stranger, 61000),
		Local: netip.AddrPortFrom(goodRLOC, wire.ControlPort)}, &out)
	if sent := out.Take(); len(sent) != 0 {
		t.Errorf("after a reload, a Map-Reply went to %v, an address of ours", sent[0].To)
	}
}
