package rtr

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	msAddr     = netip.MustParseAddr("192.0.2.1")
	rtrAddr    = netip.MustParseAddr("192.0.2.50")
	private    = netip.MustParseAddr("198.18.1.2")
	translated = netip.MustParseAddrPort("203.0.113.7:61000") // the NAT's doing
	siteEID    = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	siteKey    = []byte("branch-key")
	xtrID      = [16]byte{1, 2, 3}
)

// xtrRegister is what an xTR behind NAT sends its RTR (§5.1.1): an ECM
// with R around a Map-Register (P, M, I set) naming the RTR as locator.
func xtrRegister(t *testing.T, nonce uint64, key []byte, id [16]byte) []byte {
	t.Helper()
	m := &wire.MapRegister{ProxyReply: true, WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: nonce, Algorithm: wire.AuthHMACSHA256,
		HasXTRID: true, XTRID: id, SiteID: 1, Records: []wire.EIDRecord{{TTL: 1440, MaskLen: 24, Authoritative: true,
			EID: siteEID.Address(), Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255,
				Flags: wire.LocatorReachable, Address: wire.AddrFromIP(rtrAddr)}}}}}}
	raw, err := wire.EncodeSigned(m, key, wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inner, _ := wire.Decode(raw)
	e := &wire.ECM{ForETR: true, IP: wire.InnerIP{Src: private, Dst: msAddr, TTL: 64}, SrcPort: 40001, DstPort: wire.ControlPort, Message: inner}
	b, err := e.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func request(t *testing.T, b []byte, src netip.AddrPort, local netip.AddrPort) *control.Request {
	t.Helper()
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return &control.Request{Raw: b, Msg: m, Src: src, Local: local}
}

type chain struct {
	t   *testing.T
	r   *Server
	ms  *mapserver.Server
	clk *lisptest.Clock
	reg *stats.Registry
}

func newChain(t *testing.T) *chain {
	clk := lisptest.NewClock(time.Unix(1e9, 0))
	reg := stats.NewRegistry()
	return &chain{t: t, clk: clk, reg: reg,
		r: New(Options{MapServers: []netip.Addr{msAddr}, Now: clk.Now, Stats: reg, RegistrationTimeout: time.Minute}),
		ms: mapserver.New([]mapserver.Site{{Name: "branch", Keys: []mapserver.Key{{Alg: wire.AuthHMACSHA256, Secret: siteKey}},
			Prefixes: []mapserver.SitePrefix{{EID: siteEID}}}}, mapserver.Options{Now: clk.Now, RTRs: []netip.Addr{rtrAddr}})}
}

// register runs an xTR's Map-Register through the RTR and the Map-Server
// and returns what the RTR sends the xTR.
func (c *chain) register(b []byte) []lisptest.Sent {
	c.t.Helper()
	rtrLocal := netip.AddrPortFrom(rtrAddr, wire.ControlPort)
	var toMS, toRTR, toXTR lisptest.Sender
	c.r.HandleRegister(request(c.t, b, translated, rtrLocal), &toMS)
	for _, m := range toMS.Take() {
		if m.To != netip.AddrPortFrom(msAddr, wire.ControlPort) || m.Src != rtrAddr {
			c.t.Fatalf("relayed %v -> %v", m.Src, m.To)
		}
		c.ms.HandleRelayedRegister(request(c.t, m.B, rtrLocal, netip.AddrPortFrom(msAddr, wire.ControlPort)), &toRTR)
	}
	for _, m := range toRTR.Take() {
		c.r.HandleNotify(request(c.t, m.B, netip.AddrPortFrom(msAddr, wire.ControlPort), rtrLocal), &toXTR)
	}
	return toXTR.Take()
}

func TestRegistrationThroughRTR(t *testing.T) {
	c := newChain(t)
	out := c.register(xtrRegister(t, 1, siteKey, xtrID))
	if len(out) != 1 {
		t.Fatalf("%d messages to the xTR, want one Data-Map-Notify", len(out))
	}
	if out[0].To != translated || out[0].Src != rtrAddr {
		t.Errorf("Data-Map-Notify %v -> %v, want %v -> the translated %v", out[0].Src, out[0].To, rtrAddr, translated)
	}
	h, err := wire.DecodeDataHeader(out[0].B)
	if err != nil || !h.I() || h.InstanceID() != 0xffffff {
		t.Fatalf("data header %v (%v), want instance ID 0xFFFFFF", h, err)
	}
	// Inside: IP and UDP from the Map-Server to the xTR's own RLOC, then
	// the Map-Notify the Map-Server signed with the site key.
	ecm, err := wire.DecodeECM(append([]byte{byte(wire.TypeECM) << 4, 0, 0, 0}, out[0].B[8:]...))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := ecm.Message.(*wire.MapNotify)
	if !ok || ecm.IP.Src != msAddr || ecm.IP.Dst != private || ecm.DstPort != 40001 || n.Nonce != 1 || n.XTRID != xtrID {
		t.Fatalf("inner %v %v", ecm, ecm.Message)
	}
	if err := wire.Verify(out[0].B[len(out[0].B)-n.Len():], siteKey, wire.AuthOptions{}); err != nil {
		t.Errorf("inner Map-Notify: %v", err)
	}
	x := c.r.XTRs()
	if len(x) != 1 || !x[0].Verified || x[0].Translated != translated || x[0].Private != netip.AddrPortFrom(private, 40001) ||
		len(x[0].EIDs) != 1 || x[0].EIDs[0] != siteEID {
		t.Fatalf("xTRs %+v", x)
	}
	// The Map-Server hands out the RTR for the site.
	if s := c.ms.Sites("branch"); len(s[0].Registrations) != 1 || s[0].Registrations[0].Locators[0].Address != rtrAddr {
		t.Errorf("Map-Server registration %+v", s[0].Registrations)
	}
	// Served until registration-timeout without a new registration.
	c.clk.Advance(61 * time.Second)
	c.r.Tick()
	if x := c.r.XTRs(); len(x) != 0 {
		t.Errorf("still served after the timeout: %+v", x)
	}
}

// TestRTRServesOnlyAcceptedXTRs: a registration the Map-Server refuses (a
// wrong key) leaves the xTR unverified and gets no Data-Map-Notify; a
// Map-Register for another Map-Server is not relayed; a Map-Notify from
// elsewhere or with the wrong nonce is not taken.
func TestRTRServesOnlyAcceptedXTRs(t *testing.T) {
	c := newChain(t)
	if out := c.register(xtrRegister(t, 1, []byte("guess"), xtrID)); len(out) != 0 {
		t.Fatalf("a refused registration got %d messages", len(out))
	}
	if x := c.r.XTRs(); len(x) != 1 || x[0].Verified || x[0].Translated.IsValid() {
		t.Fatalf("an unaccepted xTR is served: %+v", x)
	}
	// To a Map-Server that is not ours: not relayed.
	b := xtrRegister(t, 2, siteKey, [16]byte{7})
	req := request(t, b, translated, netip.AddrPortFrom(rtrAddr, wire.ControlPort))
	req.Msg.(*wire.ECM).IP.Dst = netip.MustParseAddr("192.0.2.99")
	var sent lisptest.Sender
	c.r.HandleRegister(req, &sent)
	if sent.Len() != 0 || lisptest.Counter(t, c.reg, "rtr.messages_dropped{reason=not-to-map-server}") != 1 {
		t.Error("relayed to a stranger")
	}
	// A Map-Notify from a non-Map-Server, and one whose nonce is stale.
	c.register(xtrRegister(t, 3, siteKey, xtrID))
	notify, _ := wire.Encode(&wire.ECM{ForETR: true, IP: wire.InnerIP{Src: msAddr, Dst: private, TTL: 64}, SrcPort: 4342, DstPort: 40001,
		Message: &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: 3, HasXTRID: true, XTRID: xtrID}}})
	c.r.HandleNotify(request(t, notify, netip.MustParseAddrPort("192.0.2.98:4342"), netip.AddrPortFrom(rtrAddr, 4342)), &sent)
	c.r.HandleNotify(request(t, notify, netip.AddrPortFrom(msAddr, 4342), netip.AddrPortFrom(rtrAddr, 4342)), &sent)
	if sent.Len() != 0 {
		t.Errorf("%d Data-Map-Notifies for forged or stale Map-Notifies", sent.Len())
	}
	for reason, want := range map[string]uint64{"not-from-map-server": 1, "nonce-mismatch": 1} {
		if got := lisptest.Counter(t, c.reg, "rtr.messages_dropped{reason="+reason+"}"); got != want {
			t.Errorf("%s: %d, want %d", reason, got, want)
		}
	}
}

// recDP records what the RTR programs.
type recDP struct{ last []Forwarding }

func (d *recDP) SetNATedXTRs(fs []Forwarding) { d.last = fs }

// TestRTRDataPlaneAndProbes: a verified xTR is programmed into the data
// plane (its EIDs, translated address and port, counters the view shows)
// and leaves it when it expires; RLOC-probes for its EIDs are answered
// with the RTR as the probed locator, others are left to other roles; an
// ECM'd Map-Register without R (Open Overlay Router's) is taken.
func TestRTRDataPlaneAndProbes(t *testing.T) {
	c := newChain(t)
	d := &recDP{}
	c.r.SetDataPlane(d)
	b := xtrRegister(t, 1, siteKey, xtrID)
	b[0] &^= 0x02 // clear R (byte 0: type, S, D, E/R, M/N), as OOR sends it
	if e, err := wire.DecodeECM(b); err != nil || e.ForETR || e.ForMS {
		t.Fatalf("the ECM still has R or N: %v %v", e, err)
	}
	if out := c.register(b); len(out) != 1 {
		t.Fatalf("an ECM'd Map-Register without R: %d messages to the xTR, want a Data-Map-Notify", len(out))
	}
	if len(d.last) != 1 || d.last[0].Translated != translated || d.last[0].Local != rtrAddr || len(d.last[0].EIDs) != 1 ||
		d.last[0].EIDs[0] != siteEID {
		t.Fatalf("programmed %+v", d.last)
	}
	d.last[0].ToXTR.Add(3)
	d.last[0].FromXTR.Add(5)
	if v := c.r.View(); len(v) != 1 || v[0].PacketsToXTR != 3 || v[0].PacketsFromXTR != 5 {
		t.Errorf("view %+v, want 3 packets to and 5 from the xTR", v)
	}

	probe := func(eid string) ([]lisptest.Sent, bool) {
		p := &wire.MapRequest{Probe: true, Nonce: 77, ITRRLOCs: []wire.Address{wire.AddrFromIP(netip.MustParseAddr("192.0.2.9"))},
			Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(netip.MustParseAddr(eid))}}}
		pb, err := wire.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		var out lisptest.Sender
		_, ok := c.r.HandleProbe(request(t, pb, netip.MustParseAddrPort("192.0.2.9:4342"), netip.AddrPortFrom(rtrAddr, 4342)), &out)
		return out.Take(), ok
	}
	out, ok := probe("198.51.100.7")
	if !ok || len(out) != 1 || out[0].To != netip.MustParseAddrPort("192.0.2.9:4342") {
		t.Fatalf("probe for the NATed site: taken %v, sent %v", ok, out)
	}
	m, err := wire.Decode(out[0].B)
	if err != nil {
		t.Fatal(err)
	}
	rep := m.(*wire.MapReply)
	if !rep.Probe || rep.Nonce != 77 || len(rep.Records) != 1 || rep.Records[0].MaskLen != 24 ||
		len(rep.Records[0].Locators) != 1 || rep.Records[0].Locators[0].Address.IP != rtrAddr || !rep.Records[0].Locators[0].Probed() {
		t.Errorf("probe reply %v", rep)
	}
	if _, ok := probe("203.0.113.1"); ok {
		t.Error("a probe for an EID of no NATed xTR was taken")
	}

	c.clk.Advance(61 * time.Second)
	c.r.Tick()
	if len(d.last) != 0 {
		t.Errorf("an expired xTR is still programmed: %+v", d.last)
	}
}

// toRTR runs an xTR's Map-Register through the RTR to the Map-Server and
// returns what the Map-Server sends the RTR back.
func (c *chain) toRTR(b []byte) []lisptest.Sent {
	c.t.Helper()
	rtrLocal := netip.AddrPortFrom(rtrAddr, wire.ControlPort)
	var toMS, toRTR lisptest.Sender
	c.r.HandleRegister(request(c.t, b, translated, rtrLocal), &toMS)
	for _, m := range toMS.Take() {
		c.ms.HandleRelayedRegister(request(c.t, m.B, rtrLocal, netip.AddrPortFrom(msAddr, wire.ControlPort)), &toRTR)
	}
	return toRTR.Take()
}

// TestRTRAuthentication: with a key shared with the Map-Server, a
// Map-Notify whose MS-RTR AD does not verify, or that has none (S clear),
// is dropped and counted, and no Data-Map-Notify leaves; the Map-Server's
// own, signed, is relayed. Without a key, S clear is taken as before.
func TestRTRAuthentication(t *testing.T) {
	key := wire.RTRKey{ID: 7, Algorithm: wire.AuthHMACSHA256, Secret: []byte("ms-rtr")}
	c := newChain(t)
	c.r = New(Options{MapServers: []netip.Addr{msAddr}, MapServerKeys: map[netip.Addr]wire.RTRKey{msAddr: key},
		Now: c.clk.Now, Stats: c.reg})
	c.ms = mapserver.New([]mapserver.Site{{Name: "branch", Keys: []mapserver.Key{{Alg: wire.AuthHMACSHA256, Secret: siteKey}},
		Prefixes: []mapserver.SitePrefix{{EID: siteEID}}}},
		mapserver.Options{Now: c.clk.Now, RTRs: []netip.Addr{rtrAddr}, RTRKeys: map[netip.Addr]wire.RTRKey{rtrAddr: key}})
	from, local := netip.AddrPortFrom(msAddr, wire.ControlPort), netip.AddrPortFrom(rtrAddr, wire.ControlPort)
	dropped := func(reason string) uint64 {
		return lisptest.Counter(t, c.reg, "rtr.messages_dropped{reason="+reason+"}")
	}

	signed := c.toRTR(xtrRegister(t, 1, siteKey, xtrID))
	if len(signed) != 1 || signed[0].B[0]&0x08 == 0 {
		t.Fatalf("Map-Server sent %d, want one ECM with S", len(signed))
	}
	var sent lisptest.Sender
	// The attacks: a bad MAC (one bit of it flipped), a Map-Notify
	// signed with a guessed key, and one with S clear; each names the
	// outstanding nonce, as an on-path attacker could.
	bad := append([]byte(nil), signed[0].B...)
	bad[12] ^= 1 // first MAC byte: after the ECM header and the AD's 8
	c.r.HandleNotify(request(t, bad, from, local), &sent)
	n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: 1, HasXTRID: true, XTRID: xtrID}}
	nb, _ := wire.Encode(n)
	guess := wire.RTRKey{ID: 7, Algorithm: wire.AuthHMACSHA256, Secret: []byte("guess")}
	ad, err := guess.Sign(nb)
	if err != nil {
		t.Fatal(err)
	}
	forged := &wire.ECM{ForETR: true, IP: wire.InnerIP{Src: msAddr, Dst: private, TTL: 64}, SrcPort: 4342, DstPort: 40001, Message: n}
	if err := forged.SetRTRAuthData(ad); err != nil {
		t.Fatal(err)
	}
	fb, _ := wire.Encode(forged)
	c.r.HandleNotify(request(t, fb, from, local), &sent)
	if dropped("ms-rtr-auth-failed") != 2 {
		t.Errorf("ms-rtr-auth-failed %d, want 2", dropped("ms-rtr-auth-failed"))
	}
	forged.Security, forged.SecurityAD = false, nil
	fb, _ = wire.Encode(forged)
	c.r.HandleNotify(request(t, fb, from, local), &sent)
	if dropped("ms-rtr-auth-missing") != 1 {
		t.Errorf("ms-rtr-auth-missing %d, want 1", dropped("ms-rtr-auth-missing"))
	}
	if sent.Len() != 0 {
		t.Fatalf("%d Data-Map-Notifies for forged Map-Notifies", sent.Len())
	}
	if x := c.r.XTRs(); len(x) != 1 || x[0].Verified {
		t.Fatalf("a forged Map-Notify verified the xTR: %+v", x)
	}
	// The Map-Server's own is taken, and its Data-Map-Notify carries no AD.
	c.r.HandleNotify(request(t, signed[0].B, from, local), &sent)
	out := sent.Take()
	if len(out) != 1 || out[0].To != translated {
		t.Fatalf("signed Map-Notify: %d sent, want one Data-Map-Notify", len(out))
	}
	if ecm, err := wire.DecodeECM(append([]byte{byte(wire.TypeECM) << 4, 0, 0, 0}, out[0].B[8:]...)); err != nil ||
		ecm.Message.(*wire.MapNotify).Nonce != 1 {
		t.Fatalf("Data-Map-Notify inside: %v %v", ecm, err)
	}
	if x := c.r.XTRs(); len(x) != 1 || !x[0].Verified {
		t.Fatalf("xTR not verified by the signed Map-Notify: %+v", x)
	}

	// An RTR without a key takes S clear on the nonce alone, and cannot
	// verify (so drops) an S-set one.
	c2 := newChain(t)
	plain := c2.toRTR(xtrRegister(t, 1, siteKey, xtrID))
	if len(plain) != 1 || plain[0].B[0]&0x08 != 0 {
		t.Fatalf("unkeyed Map-Server sent %d, want one ECM without S", len(plain))
	}
	c2.r.HandleNotify(request(t, signed[0].B, from, local), &sent)
	if sent.Len() != 0 || lisptest.Counter(t, c2.reg, "rtr.messages_dropped{reason=ms-rtr-auth-failed}") != 1 {
		t.Error("an RTR without a key took an S-set Map-Notify")
	}
	c2.r.HandleNotify(request(t, plain[0].B, from, local), &sent)
	if sent.Len() != 1 {
		t.Error("an RTR without a key refused an S-clear Map-Notify")
	}
}

// TestRTRUnsolicitedNotify: the Map-Server's unsolicited Map-Notify for a
// served xTR (its prefix moved to another site) comes through the RTR
// with an MS-RTR AD and goes on to the xTR's translated address as a
// Data-Map-Notify; the same without AD from an unkeyed Map-Server matches
// no nonce and is dropped (§5.3). MS-RTR refusals are logged once a
// minute per Map-Server, and counted each.
func TestRTRUnsolicitedNotify(t *testing.T) {
	key := wire.RTRKey{ID: 7, Algorithm: wire.AuthHMACSHA256, Secret: []byte("ms-rtr")}
	otherKey := []byte("dc2-key")
	sites := []mapserver.Site{
		{Name: "branch", Keys: []mapserver.Key{{Alg: wire.AuthHMACSHA256, Secret: siteKey}}, Prefixes: []mapserver.SitePrefix{{EID: siteEID}}},
		{Name: "dc2", Keys: []mapserver.Key{{Alg: wire.AuthHMACSHA256, Secret: otherKey}}, Prefixes: []mapserver.SitePrefix{{EID: siteEID}}},
	}
	from, local := netip.AddrPortFrom(msAddr, wire.ControlPort), netip.AddrPortFrom(rtrAddr, wire.ControlPort)
	for _, keyed := range []bool{true, false} {
		c := newChain(t)
		var logs bytes.Buffer
		ro := Options{MapServers: []netip.Addr{msAddr}, Now: c.clk.Now, Stats: c.reg, Log: slog.New(slog.NewTextHandler(&logs, nil))}
		var toRTR lisptest.Sender
		mo := mapserver.Options{Now: c.clk.Now, RTRs: []netip.Addr{rtrAddr}, Sender: &toRTR}
		if keyed {
			ro.MapServerKeys = map[netip.Addr]wire.RTRKey{msAddr: key}
			mo.RTRKeys = map[netip.Addr]wire.RTRKey{rtrAddr: key}
		}
		c.r, c.ms = New(ro), mapserver.New(sites, mo)
		if out := c.register(xtrRegister(t, 1, siteKey, xtrID)); len(out) != 1 {
			t.Fatalf("keyed %v: %d messages to the xTR, want its Data-Map-Notify", keyed, len(out))
		}
		// dc2 registers the prefix directly: it moved.
		m := &wire.MapRegister{AuthBody: wire.AuthBody{Nonce: 1, Algorithm: wire.AuthHMACSHA256, HasXTRID: true, XTRID: [16]byte{9}, SiteID: 2,
			Records: []wire.EIDRecord{{TTL: 1440, MaskLen: 24, EID: siteEID.Address(), Locators: []wire.Locator{{Priority: 1, Weight: 100,
				Flags: wire.LocatorReachable, Address: wire.AddrFromIP(netip.MustParseAddr("192.0.2.77"))}}}}}}
		raw, err := wire.EncodeSigned(m, otherKey, wire.AuthOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.ms.HandleMapRegister(request(t, raw, netip.MustParseAddrPort("192.0.2.77:4342"), from), &lisptest.Sender{})
		moved := toRTR.Take()
		if len(moved) != 1 || moved[0].To != local {
			t.Fatalf("keyed %v: the Map-Server sent %+v, want the moved Map-Notify to the RTR", keyed, moved)
		}
		var sent lisptest.Sender
		c.r.HandleNotify(request(t, moved[0].B, from, local), &sent)
		out := sent.Take()
		if !keyed {
			if len(out) != 0 || lisptest.Counter(t, c.reg, "rtr.messages_dropped{reason=nonce-mismatch}") != 1 {
				t.Errorf("unkeyed: an unsolicited Map-Notify without AD went on (%d sent)", len(out))
			}
			continue
		}
		if len(out) != 1 || out[0].To != translated || out[0].Src != rtrAddr {
			t.Fatalf("keyed: %+v, want one Data-Map-Notify to %v", out, translated)
		}
		ecm, err := wire.DecodeECM(append([]byte{byte(wire.TypeECM) << 4, 0, 0, 0}, out[0].B[8:]...))
		if err != nil {
			t.Fatal(err)
		}
		n, ok := ecm.Message.(*wire.MapNotify)
		if !ok || n.XTRID != xtrID || len(n.Records) != 1 || len(n.Records[0].Locators) != 1 ||
			n.Records[0].Locators[0].Address.IP != netip.MustParseAddr("192.0.2.77") {
			t.Fatalf("inner %v, want the moved mapping for our xTR", ecm.Message)
		}
		if err := wire.Verify(out[0].B[len(out[0].B)-n.Len():], siteKey, wire.AuthOptions{}); err != nil {
			t.Errorf("inner Map-Notify: %v", err)
		}
		if got := lisptest.Counter(t, c.reg, "rtr.unsolicited_map_notifies_relayed"); got != 1 {
			t.Errorf("unsolicited_map_notifies_relayed %d", got)
		}
		// A forged one (AD broken) is refused, logged once a minute.
		bad := append([]byte(nil), moved[0].B...)
		bad[12] ^= 1
		for range 3 {
			c.r.HandleNotify(request(t, bad, from, local), &sent)
		}
		if sent.Len() != 0 || lisptest.Counter(t, c.reg, "rtr.messages_dropped{reason=ms-rtr-auth-failed}") != 3 {
			t.Errorf("forged unsolicited Map-Notify: %d sent", sent.Len())
		}
		if n := strings.Count(logs.String(), "MS-RTR authentication"); n != 1 {
			t.Errorf("%d log lines for 3 refusals in a minute, want 1:\n%s", n, logs.String())
		}
		c.clk.Advance(time.Minute)
		c.r.HandleNotify(request(t, bad, from, local), &sent)
		if n := strings.Count(logs.String(), "MS-RTR authentication"); n != 2 {
			t.Errorf("%d log lines a minute later, want 2", n)
		}
	}
}
