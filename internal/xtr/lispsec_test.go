package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// LISP-SEC (RFC 9303) through the real roles: an ITR (or PITR) of this
// package, a Map-Server/Map-Resolver of internal/mapserver and an ETR of
// this package, joined by a network that delivers what each sends to the
// handler of the address it goes to. tamper may change, drop or add to
// what reaches the ITR and the ETR: the attacks.

var (
	itrKey  = lispsec.Key{ID: 7, Secret: []byte("itr and its map-resolver")}
	siteKey = []byte("site B registers with this")
)

type secNet struct {
	t        *testing.T
	clk      *lisptest.Clock
	itr, etr *Server
	ms       *mapserver.Server
	d        *dp
	itrStats *stats.Registry
	wire     lisptest.Sender
	// toETR and toITR see what goes to the ETR and the ITR and return
	// what arrives instead (nil: nothing).
	toETR func(b []byte) [][]byte
	toITR func(b []byte) [][]byte
}

func newSecNet(t *testing.T, itrMode, etrMode SecMode, pitr bool) *secNet {
	n := &secNet{t: t, clk: lisptest.NewClock(time.Unix(1e9, 0)), d: &dp{set: map[mapping.EID]CacheEntry{}}, itrStats: stats.NewRegistry()}
	pass := func(b []byte) [][]byte { return [][]byte{b} }
	n.toETR, n.toITR = pass, pass
	o := Options{ITR: true, PITR: pitr, MapResolvers: []netip.Addr{mr}, LocalRLOCs: []netip.Addr{me},
		LISPSEC: itrMode, LISPSECKey: itrKey, Now: n.clk.Now, Sender: &n.wire, DataPlane: n.d, Stats: n.itrStats}
	if !pitr {
		o.Database = []DatabaseEntry{{EID: siteEID, Locators: []mapping.Locator{{Addr: me, Priority: 1, Weight: 100}}}}
	}
	n.itr = New(o)
	n.etr = New(Options{ETR: true, LocalRLOCs: []netip.Addr{goodRLOC}, LISPSEC: etrMode,
		Database:   []DatabaseEntry{{EID: askedNet, Locators: []mapping.Locator{{Addr: goodRLOC, Priority: 1, Weight: 100}}}},
		MapServers: []MapServerPeer{{Addr: mr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: siteKey, WantMapNotify: true}},
		Now:        n.clk.Now, Sender: &n.wire})
	n.ms = mapserver.New([]mapserver.Site{{Name: "site-b", Keys: []mapserver.Key{{ID: 1, Alg: wire.AuthHMACSHA256, Secret: siteKey}},
		Prefixes: []mapserver.SitePrefix{{EID: askedNet}}}},
		mapserver.Options{Now: n.clk.Now, Sender: &n.wire, LISPSECKeys: lispsec.Keys{itrKey.ID: itrKey.Secret}})
	n.etr.Tick() // registers
	n.pump()
	return n
}

// pump delivers what was sent until nothing more is.
func (n *secNet) pump() {
	for range 20 {
		sent := n.wire.Take()
		if len(sent) == 0 {
			return
		}
		for _, s := range sent {
			switch s.To.Addr() {
			case mr:
				n.deliver(n.ms.HandleMapRegister, n.ms.HandleMapRequest, nil, s.B, s.Src, mr)
			case goodRLOC:
				for _, b := range n.toETR(s.B) {
					n.deliver(nil, n.etr.HandleMapRequest, n.etr.HandleMapNotify, b, s.Src, goodRLOC)
				}
			case me:
				for _, b := range n.toITR(s.B) {
					n.deliver(nil, nil, nil, b, s.Src, me)
				}
			}
		}
	}
	n.t.Fatal("messages keep flowing")
}

func (n *secNet) deliver(register, request, notify control.Handler, b []byte, src, local netip.Addr) {
	msg, err := wire.Decode(b)
	if err != nil {
		n.t.Fatalf("undecodable message to %s: %v", local, err)
	}
	r := &control.Request{Raw: b, Msg: msg, Src: netip.AddrPortFrom(src, wire.ControlPort), Local: netip.AddrPortFrom(local, wire.ControlPort)}
	var out lisptest.Sender
	switch m := msg.(type) {
	case *wire.ECM:
		r.ECM, r.Msg = m, m.Message
		itrRLOC, _ := m.Message.(*wire.MapRequest).ITRRLOCs[0].Addr()
		r.ReplyTo = netip.AddrPortFrom(itrRLOC, m.SrcPort)
		request(r, &out)
	case *wire.MapRegister:
		register(r, &out)
	case *wire.MapNotify:
		notify(r, &out)
	case *wire.MapReply:
		n.itr.HandleMapReply(r, &out)
	}
	for _, s := range out.Take() {
		n.wire.Send(s.B, local, s.To)
	}
}

// ask makes the ITR ask for the EID and runs the network.
func (n *secNet) ask() {
	n.clk.Advance(2 * time.Second) // past the Map-Request rate limit
	n.itr.Miss(0, asked)
	n.pump()
}

func (n *secNet) installed(eid mapping.EID) bool { _, ok := n.d.set[eid]; return ok }

func (n *secNet) counter(key string) uint64 { return lisptest.Counter(n.t, n.itrStats, key) }

// TestLISPSECRequired: with lisp-sec required on the ITR (and a PITR) and
// on the ETR, the ETR registers with S, the Map-Server forwards the
// protected request with the MS-OTK, the ETR signs and the ITR installs
// what verifies.
func TestLISPSECRequired(t *testing.T) {
	for _, pitr := range []bool{false, true} {
		n := newSecNet(t, SecRequired, SecRequired, pitr)
		var sawS, sawSignedReply bool
		n.toETR = func(b []byte) [][]byte {
			if m, err := wire.Decode(b); err == nil {
				if e, ok := m.(*wire.ECM); ok {
					sawS = e.Security
				}
			}
			return [][]byte{b}
		}
		n.toITR = func(b []byte) [][]byte {
			if m, err := wire.Decode(b); err == nil {
				sawSignedReply = m.(*wire.MapReply).Security
			}
			return [][]byte{b}
		}
		n.ask()
		if !n.installed(askedNet) || !sawS || !sawSignedReply {
			t.Errorf("pitr=%v: installed %v (ECM to the ETR with S: %v, signed reply: %v)", pitr, n.d.set, sawS, sawSignedReply)
		}
		if v := n.counter("itr.lispsec_replies_verified"); v != 1 {
			t.Errorf("pitr=%v: %d replies verified, want 1", pitr, v)
		}
	}
}

// TestLISPSECRegisterSBit: the ETR's Map-Registers carry S exactly when
// lisp-sec is on.
func TestLISPSECRegisterSBit(t *testing.T) {
	for _, mode := range []SecMode{SecOff, SecOptional, SecRequired} {
		var c lisptest.Sender
		s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{goodRLOC}, LISPSEC: mode, Sender: &c,
			Database:   []DatabaseEntry{{EID: askedNet, Locators: []mapping.Locator{{Addr: goodRLOC, Priority: 1, Weight: 100}}}},
			MapServers: []MapServerPeer{{Addr: mr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: siteKey}}})
		s.Tick()
		out := c.Take()
		if len(out) != 1 {
			t.Fatalf("%s: sent %d messages, want one Map-Register", mode, len(out))
		}
		m, err := wire.Decode(out[0].B)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.(*wire.MapRegister).Security; got != (mode != SecOff) {
			t.Errorf("lisp-sec %s: Map-Register S = %v", mode, got)
		}
	}
}

// signedBy is a Map-Reply for the ECM b (as the ETR receives it) with
// recs, signed by whoever holds key for the MS-OTK: the ETR's site key
// opens it; anything else signs with a key of its own. edit may change the
// EID-AD before signing.
func signedBy(t *testing.T, b []byte, key []byte, recs []wire.EIDRecord, edit func(*wire.EIDAuthData)) []byte {
	t.Helper()
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	ecm := m.(*wire.ECM)
	ad, err := ecm.AuthData()
	if err != nil {
		t.Fatal(err)
	}
	nonce := ecm.Message.(*wire.MapRequest).Nonce
	otk, err := lispsec.OpenECM(ad, lispsec.Keys{ad.KeyID: key}, nonce, false)
	if err != nil {
		otk, _ = lispsec.NewOTK(nil) // not the MS-OTK: a forger's own
	}
	eid := ad.EID
	eid.HMAC = append([]byte(nil), eid.HMAC...)
	if edit != nil {
		edit(&eid)
	}
	out, err := lispsec.SignMapReply(&wire.MapReply{Nonce: nonce, Records: recs}, eid, ad.RequestedHMAC, otk)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLISPSECAttacks: each attack on a protected lookup fails under
// required, is counted by reason, and the honest answer that follows is
// still installed (a failed check leaves the request pending).
func TestLISPSECAttacks(t *testing.T) {
	honest := rec("203.0.113.0/24", goodRLOC)
	wider := rec("203.0.112.0/23", evilRLOC) // covers the EID asked: fine without LISP-SEC
	for _, c := range []struct {
		name   string
		reason string
		forge  func(t *testing.T, ecm []byte) []byte // what reaches the ITR before the honest reply
	}{
		{"forged reply, no OTK", "pkt-ad", func(t *testing.T, b []byte) []byte {
			return signedBy(t, b, []byte("not the site key"), []wire.EIDRecord{rec("203.0.113.0/24", evilRLOC)}, nil)
		}},
		{"unsigned reply", "unsigned", func(t *testing.T, b []byte) []byte {
			m, _ := wire.Decode(b)
			out, _ := wire.Encode(&wire.MapReply{Nonce: m.(*wire.ECM).Message.(*wire.MapRequest).Nonce, Records: []wire.EIDRecord{rec("203.0.113.0/24", evilRLOC)}})
			return out
		}},
		{"EID-AD prefix widened by the ETR", "eid-ad", func(t *testing.T, b []byte) []byte {
			return signedBy(t, b, siteKey, []wire.EIDRecord{wider}, func(e *wire.EIDAuthData) {
				e.Records = []wire.EIDADRecord{{MaskLen: 23, EID: wire.AddrFromIP(netip.MustParseAddr("203.0.112.0"))}}
			})
		}},
		{"MS-AD altered by the ETR", "eid-ad", func(t *testing.T, b []byte) []byte {
			return signedBy(t, b, siteKey, []wire.EIDRecord{honest}, func(e *wire.EIDAuthData) { e.HMAC[0] ^= 1 })
		}},
		{"reply altered on the way", "pkt-ad", func(t *testing.T, b []byte) []byte {
			out := signedBy(t, b, siteKey, []wire.EIDRecord{rec("203.0.113.0/24", goodRLOC)}, nil)
			m, _ := wire.Decode(out)
			r := m.(*wire.MapReply)
			r.Records[0].Locators[0].Address = wire.AddrFromIP(evilRLOC)
			out, _ = wire.Encode(r)
			return out
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newSecNet(t, SecRequired, SecRequired, false)
			n.toETR = func(b []byte) [][]byte {
				n.wire.Send(c.forge(t, b), goodRLOC, netip.AddrPortFrom(me, wire.ControlPort))
				return [][]byte{b}
			}
			n.ask()
			if got := n.counter("itr.lispsec_replies_dropped{reason=" + c.reason + "}"); got != 1 {
				t.Errorf("dropped for %s: %d, want 1", c.reason, got)
			}
			if e, ok := n.d.set[askedNet]; !ok || e.Locators[0].Addr != goodRLOC {
				t.Errorf("honest answer not installed after the attack: %v", n.d.set)
			}
			if _, ok := n.d.set[mapping.NewEID(0, netip.MustParsePrefix("203.0.112.0/23"))]; ok {
				t.Error("the wider prefix was installed")
			}
		})
	}
}

// TestLISPSECOverclaimDropped: an ETR that signs properly but adds a
// record outside the prefix the Map-Server vouched for (a covering /23,
// which the checks without LISP-SEC accept) gets only its own prefix
// installed.
func TestLISPSECOverclaimDropped(t *testing.T) {
	n := newSecNet(t, SecRequired, SecRequired, false)
	n.toETR = func(b []byte) [][]byte {
		n.wire.Send(signedBy(t, b, siteKey, []wire.EIDRecord{rec("203.0.113.0/24", goodRLOC), rec("203.0.112.0/23", evilRLOC)}, nil),
			goodRLOC, netip.AddrPortFrom(me, wire.ControlPort))
		return nil // the honest ETR never hears of it
	}
	n.ask()
	if !n.installed(askedNet) || len(n.d.set) != 1 {
		t.Errorf("installed %v, want only %s", n.d.set, askedNet)
	}
	if got := n.counter("itr.map_reply_records_dropped{reason=not-authorized}"); got != 1 {
		t.Errorf("not-authorized records dropped: %d, want 1", got)
	}
}

// TestLISPSECReplay: the verified reply delivered again, to the answered
// request and to a new one, is not taken.
func TestLISPSECReplay(t *testing.T) {
	n := newSecNet(t, SecRequired, SecRequired, false)
	var replies [][]byte
	n.toITR = func(b []byte) [][]byte { replies = append(replies, b); return [][]byte{b, b} }
	n.ask()
	if !n.installed(askedNet) || n.counter("itr.lispsec_replies_verified") != 1 || n.counter("itr.map_replies_unsolicited") != 1 {
		t.Fatalf("installed %v, verified %d, unsolicited %d: want the reply once, its copy unsolicited", n.d.set,
			n.counter("itr.lispsec_replies_verified"), n.counter("itr.map_replies_unsolicited"))
	}
	n.itr.ClearMapCache(nil)
	n.toETR = func([]byte) [][]byte { return nil } // the new request goes unanswered...
	n.toITR = func(b []byte) [][]byte { return [][]byte{b} }
	n.ask()
	n.wire.Send(replies[0], goodRLOC, netip.AddrPortFrom(me, wire.ControlPort)) // ...but for the old reply
	n.pump()
	if n.installed(askedNet) {
		t.Error("the old reply answered a new request")
	}
}

// TestLISPSECOptional: under optional an unsigned reply is taken, a
// signed one that fails is not; an ETR without LISP-SEC is reached by
// asking again unprotected when the Map-Server says none can sign (E).
func TestLISPSECOptional(t *testing.T) {
	n := newSecNet(t, SecOptional, SecOff, false)
	n.ask()
	if e, ok := n.d.set[askedNet]; !ok || len(e.Locators) != 1 || n.counter("itr.lispsec_etr_cant_sign") != 1 {
		t.Errorf("optional, ETR without LISP-SEC: installed %v, E-bit replies %d; want the ETR's answer after one", n.d.set,
			n.counter("itr.lispsec_etr_cant_sign"))
	}
	// Under required the Map-Server's signed negative answer stands.
	n = newSecNet(t, SecRequired, SecOff, false)
	n.ask()
	if e, ok := n.d.set[askedNet]; !ok || !e.Negative || n.counter("itr.lispsec_etr_cant_sign") != 0 {
		t.Errorf("required, ETR without LISP-SEC: installed %v, want the signed negative entry", n.d.set)
	}
	n = newSecNet(t, SecOptional, SecRequired, false)
	n.toETR = func(b []byte) [][]byte {
		m, _ := wire.Decode(b)
		out, _ := wire.Encode(&wire.MapReply{Nonce: m.(*wire.ECM).Message.(*wire.MapRequest).Nonce, Records: []wire.EIDRecord{rec("203.0.113.0/24", goodRLOC)}})
		n.wire.Send(out, goodRLOC, netip.AddrPortFrom(me, wire.ControlPort))
		return nil
	}
	n.ask()
	if !n.installed(askedNet) || n.counter("itr.lispsec_replies_unsigned_accepted") != 1 {
		t.Errorf("optional: unsigned reply not taken: installed %v", n.d.set)
	}
	n = newSecNet(t, SecOptional, SecRequired, false)
	n.toETR = func(b []byte) [][]byte {
		n.wire.Send(signedBy(t, b, []byte("forger"), []wire.EIDRecord{rec("203.0.113.0/24", evilRLOC)}, nil), goodRLOC, netip.AddrPortFrom(me, wire.ControlPort))
		return nil
	}
	n.ask()
	if n.installed(askedNet) || n.counter("itr.lispsec_replies_dropped{reason=pkt-ad}") != 1 {
		t.Errorf("optional: forged signed reply taken: installed %v", n.d.set)
	}
}

// TestLISPSECOff: the ITR sends no authentication data and takes the
// reply as before; the ETR answers a protected ECM unsigned.
func TestLISPSECOff(t *testing.T) {
	n := newSecNet(t, SecOff, SecOff, false)
	n.toETR = func(b []byte) [][]byte {
		if m, _ := wire.Decode(b); m.(*wire.ECM).Security {
			t.Error("ECM with S with lisp-sec off")
		}
		return [][]byte{b}
	}
	n.ask()
	if !n.installed(askedNet) {
		t.Errorf("lisp-sec off: not installed: %v", n.d.set)
	}
}

// TestLISPSECReconfigure: an ETR reloaded with lisp-sec on registers
// again at once, with S; an ITR's next request carries the new key.
func TestLISPSECReconfigure(t *testing.T) {
	var c lisptest.Sender
	o := Options{ETR: true, ITR: true, LocalRLOCs: []netip.Addr{goodRLOC}, Sender: &c, MapResolvers: []netip.Addr{mr},
		Database:   []DatabaseEntry{{EID: askedNet, Locators: []mapping.Locator{{Addr: goodRLOC, Priority: 1, Weight: 100}}}},
		MapServers: []MapServerPeer{{Addr: mr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: siteKey}}}
	s := New(o)
	s.Tick()
	c.Take()
	o.LISPSEC, o.LISPSECKey = SecRequired, itrKey
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	out := c.Take()
	if len(out) != 1 {
		t.Fatalf("sent %d messages on reload, want one Map-Register", len(out))
	}
	if m, err := wire.Decode(out[0].B); err != nil || !m.(*wire.MapRegister).Security {
		t.Errorf("Map-Register after turning lisp-sec on: %v (%v), want S", m, err)
	}
	s.Resolve(mapping.HostEID(0, dst))
	out = c.Take()
	if len(out) != 1 {
		t.Fatalf("sent %d messages for a request", len(out))
	}
	m, err := wire.Decode(out[0].B)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := m.(*wire.ECM).AuthData()
	if err != nil || ad.KeyID != itrKey.ID {
		t.Errorf("Map-Request after the reload: AD %+v (%v), want key-id %d", ad, err, itrKey.ID)
	}
}

// TestLISPSECETRKeys: an ETR answers a protected ECM whose One-Time Key
// does not unwrap with its Map-Server key with nothing (counted), and one
// carrying only the ITR's data (a mapping system without LISP-SEC passed
// it on) unsigned.
func TestLISPSECETRKeys(t *testing.T) {
	reg := stats.NewRegistry()
	s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{goodRLOC}, LISPSEC: SecRequired, Stats: reg,
		Database:   []DatabaseEntry{{EID: askedNet, Locators: []mapping.Locator{{Addr: goodRLOC, Priority: 1, Weight: 100}}}},
		MapServers: []MapServerPeer{{Addr: mr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: siteKey}}})
	ecm := func(etrKey *lispsec.Key) *control.Request {
		m := &wire.MapRequest{Nonce: 99, ITRRLOCs: []wire.Address{wire.AddrFromIP(me)},
			Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(asked)}}}
		q, _ := lispsec.NewRequest(nil, m.Nonce, secHMAC, secKDF)
		ad, _ := q.AuthData(itrKey, secWrap)
		if etrKey != nil {
			otk, err := lispsec.OpenECM(ad, lispsec.Keys{itrKey.ID: itrKey.Secret}, m.Nonce, false)
			if err != nil {
				t.Fatal(err)
			}
			eid, _ := lispsec.NewEIDAD(ad, otk, []wire.EIDADRecord{{MaskLen: 24, EID: askedNet.Address()}}, false)
			if ad, err = lispsec.ForwardAuthData(ad, otk, eid, *etrKey, secWrap, m.Nonce); err != nil {
				t.Fatal(err)
			}
		}
		r := encapsulated(m, netip.AddrPortFrom(mr, wire.ControlPort), goodRLOC, 61000)
		if err := r.ECM.SetAuthData(ad); err != nil {
			t.Fatal(err)
		}
		return r
	}
	var out lisptest.Sender
	s.HandleMapRequest(ecm(&lispsec.Key{ID: 1, Secret: []byte("another site's key")}), &out)
	if sent := out.Take(); len(sent) != 0 || lisptest.Counter(t, reg, "etr.lispsec_requests_dropped{reason=otk}") != 1 {
		t.Errorf("wrong key: sent %d, otk drops %d; want nothing sent, one drop", len(sent),
			lisptest.Counter(t, reg, "etr.lispsec_requests_dropped{reason=otk}"))
	}
	s.HandleMapRequest(ecm(&lispsec.Key{ID: 9, Secret: siteKey}), &out)
	if sent := out.Take(); len(sent) != 0 || lisptest.Counter(t, reg, "etr.lispsec_requests_dropped{reason=no-key}") != 1 {
		t.Errorf("unknown key ID: sent %d, want nothing and a no-key drop", len(sent))
	}
	s.HandleMapRequest(ecm(nil), &out)
	sent := out.Take()
	if len(sent) != 1 {
		t.Fatalf("ITR's own AD: sent %d messages, want one Map-Reply", len(sent))
	}
	if m, err := wire.Decode(sent[0].B); err != nil || m.(*wire.MapReply).Security {
		t.Errorf("ITR's own AD: reply %v (%v), want unsigned", m, err)
	}
	s.HandleMapRequest(ecm(&lispsec.Key{ID: 1, Secret: siteKey}), &out)
	if sent := out.Take(); len(sent) != 1 || lisptest.Counter(t, reg, "etr.lispsec_replies_signed") != 1 {
		t.Errorf("right key: sent %d, signed %d; want one signed reply", len(sent), lisptest.Counter(t, reg, "etr.lispsec_replies_signed"))
	}
}
