package mapserver

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

var itrKey = lispsec.Key{ID: 3, Secret: []byte("itr-and-its-map-resolver")}

func secured(m *wire.MapRegister) { m.Security = true }

func newSecFixture(t *testing.T) *fixture {
	f := &fixture{t: t, clk: lisptest.NewClock(time.Unix(1_700_000_000, 0)), timers: &lisptest.Sender{}, reg: stats.NewRegistry()}
	f.s = New(testSites(), Options{Now: f.clk.Now, Sender: f.timers, Stats: f.reg,
		LISPSECKeys: lispsec.Keys{itrKey.ID: itrKey.Secret}})
	return f
}

// secRequest is an ITR's protected Map-Request for eid as the Map-Server
// receives it (encoded and decoded), and the ITR's pending state.
func secRequest(t *testing.T, eid mapping.EID, nonce uint64, key lispsec.Key, wrap wire.SecKeyWrap) (*control.Request, *lispsec.Request) {
	t.Helper()
	q, err := lispsec.NewRequest(nil, nonce, wire.SecHMACSHA256128, wire.SecKDFHKDFSHA256)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := q.AuthData(key, wrap)
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.MapRequest{Nonce: nonce, SourceEID: wire.AddrFromIP(itr), ITRRLOCs: []wire.Address{wire.AddrFromIP(itr)},
		Records: []wire.RequestRecord{{MaskLen: eid.MaskLen(), EID: eid.Address()}}}
	e := wire.EncapsulateMapRequest(m, eid.Prefix.Addr(), 61000, itr)
	if err := e.SetAuthData(ad); err != nil {
		t.Fatal(err)
	}
	raw, err := wire.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := wire.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	ecm := dec.(*wire.ECM)
	return &control.Request{Raw: raw, Msg: ecm.Message, ECM: ecm, ReplyTo: netip.AddrPortFrom(itr, 61000),
		Local: netip.AddrPortFrom(ms, wire.ControlPort)}, q
}

// verified checks that the one message sent is a Map-Reply to the ITR that
// passes the ITR's LISP-SEC verification.
func verified(t *testing.T, out []lisptest.Sent, q *lispsec.Request) *lispsec.Verified {
	t.Helper()
	if len(out) != 1 || out[0].To != netip.AddrPortFrom(itr, 61000) {
		t.Fatalf("sent %+v, want one Map-Reply to the ITR", out)
	}
	v, err := q.Verify(decodeReply(t, out[0]), out[0].B)
	if err != nil {
		t.Fatalf("ITR rejects the Map-Server's reply: %v", err)
	}
	return v
}

func TestLISPSECProxyReply(t *testing.T) {
	f := newSecFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, secured, proxy)
	req, q := secRequest(t, mapping.HostEID(0, netip.MustParseAddr("198.51.100.20")), 0xabc, itrKey, wire.SecWrapAESKWHKDF)
	var out lisptest.Sender
	if f.s.HandleMapRequest(req, &out) != control.Handled {
		t.Fatal("not handled")
	}
	v := verified(t, out.Take(), q)
	if len(v.Records) != 1 || v.Records[0].PrefixString() != "198.51.100.0/24" || len(v.Records[0].Locators) != 1 || v.EID.ETRCantSign {
		t.Fatalf("verified %+v", v)
	}
	if len(v.EID.Records) != 1 || v.EID.Records[0].String() != "198.51.100.0/24" {
		t.Fatalf("EID-AD authorizes %v", v.EID.Records)
	}
}

// Forwarded to the ETR that registered with S (not the newest, which did
// not), E set; the ETR's overclaim of another site's prefix is dropped.
func TestLISPSECForward(t *testing.T) {
	f := newSecFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1), secured)
	f.clk.Advance(time.Second)
	f.register(etr2, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.12")}, withXTR(2))
	req, q := secRequest(t, mapping.HostEID(0, netip.MustParseAddr("198.51.100.20")), 0xdef, itrKey, wire.SecWrapAESKWHKDF)
	var out lisptest.Sender
	f.s.HandleMapRequest(req, &out)
	sent := out.Take()
	if len(sent) != 1 || sent[0].To != netip.AddrPortFrom(etr1.Addr(), wire.ControlPort) {
		t.Fatalf("forwarded %+v, want one ECM to %v", sent, etr1)
	}
	// The ETR: the Map-Request is intact, the MS-OTK opens with the site key.
	m, err := wire.Decode(sent[0].B)
	if err != nil {
		t.Fatal(err)
	}
	ecm := m.(*wire.ECM)
	if ecm.IP.ChecksumsBad || ecm.Message.(*wire.MapRequest).Nonce != 0xdef {
		t.Fatalf("forwarded ECM %s", ecm)
	}
	ad, err := ecm.AuthData()
	if err != nil {
		t.Fatal(err)
	}
	if !ad.EID.ETRCantSign || ad.KeyID != 0 || ad.Wrap != wire.SecWrapAESKWHKDF {
		t.Fatalf("forwarded AD %s", ad)
	}
	if _, err := lispsec.OpenECM(ad, lispsec.Keys{itrKey.ID: itrKey.Secret}, 0xdef, false); err == nil {
		t.Fatal("the ITR's key opens the MS-OTK: the ETR path must use the site key")
	}
	msOTK, err := lispsec.OpenECM(ad, lispsec.Keys{0: secret}, 0xdef, false)
	if err != nil {
		t.Fatal(err)
	}
	reply := &wire.MapReply{Nonce: 0xdef, Records: []wire.EIDRecord{record(dc1, "192.0.2.11"), record(dc2, "192.0.2.11")}}
	b, err := lispsec.SignMapReply(reply, ad.EID, ad.RequestedHMAC, msOTK)
	if err != nil {
		t.Fatal(err)
	}
	v, err := q.Verify(reply, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Records) != 1 || v.Records[0].PrefixString() != "198.51.100.0/24" || len(v.Dropped) != 1 || !v.EID.ETRCantSign {
		t.Fatalf("verified %+v", v)
	}
}

// No ETR signs: a signed negative reply with E (RFC 9303 §6.7 Table 1 row
// 3); nothing registered: a signed negative reply for the hole.
func TestLISPSECNegative(t *testing.T) {
	f := newSecFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")})
	req, q := secRequest(t, mapping.HostEID(0, netip.MustParseAddr("198.51.100.20")), 1, itrKey, wire.SecWrapAESKWHKDF)
	var out lisptest.Sender
	f.s.HandleMapRequest(req, &out)
	v := verified(t, out.Take(), q)
	if !v.EID.ETRCantSign || len(v.Records) != 1 || v.Records[0].Action != wire.ActionNativelyForward || len(v.Records[0].Locators) != 0 {
		t.Fatalf("no ETR signs: %+v", v)
	}
	req, q = secRequest(t, mapping.HostEID(1000, netip.MustParseAddr("203.0.113.9")), 2, itrKey, wire.SecWrapAESKWHKDF)
	f.s.HandleMapRequest(req, &out)
	v = verified(t, out.Take(), q)
	if v.EID.ETRCantSign || len(v.Records) != 1 || v.Records[0].PrefixString() != "[1000]203.0.113.0/24" {
		t.Fatalf("unregistered: %+v", v)
	}
	if got := f.counter("lispsec_replies", ""); got != 2 {
		t.Errorf("lispsec_replies = %d", got)
	}
}

// Requests the Map-Server cannot open are dropped and counted, never
// answered unsigned.
func TestLISPSECDrops(t *testing.T) {
	f := newSecFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, secured, proxy)
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	for _, c := range []struct {
		key    lispsec.Key
		wrap   wire.SecKeyWrap
		reason string
	}{
		{lispsec.Key{ID: itrKey.ID, Secret: []byte("guessed")}, wire.SecWrapAESKWHKDF, "otk"},
		{lispsec.Key{ID: 4, Secret: itrKey.Secret}, wire.SecWrapAESKWHKDF, "no-key"},
		{itrKey, wire.SecWrapNull, "null-wrap"},
	} {
		req, _ := secRequest(t, host, 9, c.key, c.wrap)
		var out lisptest.Sender
		if f.s.HandleMapRequest(req, &out) != control.Handled || len(out.All()) != 0 {
			t.Errorf("%s: answered %+v", c.reason, out.All())
		}
		if got := f.counter("lispsec_requests_dropped", c.reason); got != 1 {
			t.Errorf("lispsec_requests_dropped{%s} = %d", c.reason, got)
		}
	}
}

// Without keys for ITRs the Map-Server forwards protected requests as it
// always did.
func TestLISPSECOffForwardsUnchanged(t *testing.T) {
	f := newFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, secured)
	req, _ := secRequest(t, mapping.HostEID(0, netip.MustParseAddr("198.51.100.20")), 1, itrKey, wire.SecWrapAESKWHKDF)
	var out lisptest.Sender
	f.s.HandleMapRequest(req, &out)
	if sent := out.All(); len(sent) != 1 || string(sent[0].B) != string(req.Raw) {
		t.Fatalf("sent %+v", sent)
	}
}
