package lispsec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 3394 §4.1: wrap 128 bits of key data with a 128-bit KEK.
func TestAESKeyWrapRFC3394(t *testing.T) {
	kek := unhex(t, "000102030405060708090a0b0c0d0e0f")
	k := OTK(unhex(t, "00112233445566778899aabbccddeeff"))
	var out [wire.WrappedOTKLen]byte
	aesKeyWrap(&out, kek, k)
	if want := unhex(t, "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"); !bytes.Equal(out[:], want) {
		t.Fatalf("wrap = %x, want %x", out, want)
	}
	var back OTK
	if !aesKeyUnwrap(&back, kek, out) || back != k {
		t.Fatalf("unwrap = %x", back)
	}
	out[0] ^= 1
	if aesKeyUnwrap(&back, kek, out) {
		t.Fatal("unwrap accepted an altered preamble")
	}
}

// Known answers computed with an independent HKDF/HMAC (Python's hmac and
// hashlib), pinning our reading of the open parameters.
func TestKnownAnswers(t *testing.T) {
	pmk, err := perMessageKey([]byte("lisp-sec-psk"), 0x0102030405060708)
	if err != nil || hex.EncodeToString(pmk[:]) != "7409f23b20ec3a6daca7fe87dc1f070b" {
		t.Errorf("per-msg-key = %x (%v)", pmk, err)
	}
	otk := OTK(unhex(t, "000102030405060708090a0b0c0d0e0f"))
	for kdf, want := range map[wire.SecKDF]string{
		wire.SecKDFHKDFSHA256: "4e24185f0cf7d7413ccbe2ba72d38dfc",
		wire.SecKDFHKDFSHA1:   "a3cb62376327483300cf1304d4330601",
	} {
		ms, err := DeriveMSOTK(kdf, otk)
		if err != nil || hex.EncodeToString(ms[:]) != want {
			t.Errorf("MS-OTK %s = %x (%v), want %s", kdf, ms, err, want)
		}
	}
	if _, err := DeriveMSOTK(wire.SecKDFNone, otk); !errors.Is(err, ErrUnsupported) {
		t.Errorf("KDF NOPREF derived: %v", err)
	}
	rec := []wire.EIDADRecord{{MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))}}
	for id, want := range map[wire.SecHMAC]string{
		wire.SecHMACSHA256128: "c10dd3e530377fa942fe60dba27ea105",
		wire.SecHMACSHA1_96:   "141eb5fac26a0362a677564a",
	} {
		in := &wire.ECMAuthData{RequestedHMAC: id, EID: wire.EIDAuthData{KDFOnly: true, KDF: wire.SecKDFHKDFSHA256}}
		e, err := NewEIDAD(in, otk, rec, true)
		if err != nil || hex.EncodeToString(e.HMAC) != want {
			t.Errorf("EID HMAC %s = %x (%v), want %s", id, e.HMAC, err, want)
		}
	}
}

func TestWrapUnwrap(t *testing.T) {
	k, err := NewOTK(nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("itr-mr")
	w, err := WrapOTK(wire.SecWrapAESKWHKDF, k, secret, 42)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w[:], k[:8]) || bytes.Contains(w[:], k[8:]) {
		t.Fatalf("wrapped OTK %x shows the key %x", w, k)
	}
	if got, err := UnwrapOTK(wire.SecWrapAESKWHKDF, w, secret, 42); err != nil || got != k {
		t.Fatalf("unwrap: %v", err)
	}
	for name, f := range map[string]func() (OTK, error){
		"wrong secret": func() (OTK, error) { return UnwrapOTK(wire.SecWrapAESKWHKDF, w, []byte("other"), 42) },
		"wrong nonce":  func() (OTK, error) { return UnwrapOTK(wire.SecWrapAESKWHKDF, w, secret, 43) },
		"altered":      func() (OTK, error) { c := w; c[20] ^= 0x80; return UnwrapOTK(wire.SecWrapAESKWHKDF, c, secret, 42) },
		"null, preamble set": func() (OTK, error) {
			n, _ := WrapOTK(wire.SecWrapNull, k, nil, 42)
			n[0] = 1
			return UnwrapOTK(wire.SecWrapNull, n, nil, 42)
		},
	} {
		if got, err := f(); !errors.Is(err, ErrOTK) || got != (OTK{}) {
			t.Errorf("%s: %v, %x", name, err, got)
		}
	}
	if _, err := WrapOTK(wire.SecWrapReserved, k, secret, 1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("wrap 0: %v", err)
	}
	if _, err := WrapOTK(wire.SecWrapAESKWHKDF, k, nil, 1); !errors.Is(err, ErrNoKey) {
		t.Errorf("wrap without secret: %v", err)
	}
}

// The four sides, with separate keys for ITR–MR and MS–ETR.
var (
	itrKey  = Key{ID: 1, Secret: []byte("itr-to-map-resolver")}
	etrKey  = Key{ID: 9, Secret: []byte("map-server-to-etr")}
	mrKeys  = Keys{itrKey.ID: itrKey.Secret}
	etrKeys = Keys{etrKey.ID: etrKey.Secret}
	eid     = netip.MustParseAddr("198.51.100.7")
	rloc    = wire.AddrFromIP(netip.MustParseAddr("192.0.2.12"))
)

func prefixRec(p string) wire.EIDADRecord {
	pp := netip.MustParsePrefix(p)
	return wire.EIDADRecord{MaskLen: uint8(pp.Bits()), EID: wire.AddrFromIP(pp.Addr())}
}

func mapping(p string) wire.EIDRecord {
	pp := netip.MustParsePrefix(p)
	return wire.EIDRecord{TTL: 1440, MaskLen: uint8(pp.Bits()), Authoritative: true, EID: wire.AddrFromIP(pp.Addr()),
		Locators: []wire.Locator{{Priority: 1, Weight: 100, Flags: wire.LocatorReachable, Address: rloc}}}
}

// roundTrip sends a message over the "wire": encode, decode.
func roundTrip[M wire.Message](t testing.TB, m M) (M, []byte) {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	d, err := wire.Decode(b)
	if err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	return d.(M), b
}

// exchange is one protected lookup up to the ETR: what each side holds.
type exchange struct {
	q     *Request
	req   *wire.MapRequest
	atETR *wire.ECMAuthData // the AD the ETR received
	msOTK OTK               // what the ETR unwrapped
}

func newExchange(t testing.TB, nonce uint64, authorized ...string) *exchange {
	t.Helper()
	// ITR (RFC 9303 §6.4).
	q, err := NewRequest(nil, nonce, wire.SecHMACSHA256128, wire.SecKDFHKDFSHA256)
	if err != nil {
		t.Fatal(err)
	}
	req := &wire.MapRequest{Nonce: nonce, ITRRLOCs: []wire.Address{wire.AddrFromIP(netip.MustParseAddr("192.0.2.1"))},
		Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(eid)}}}
	ad, err := q.AuthData(itrKey, wire.SecWrapAESKWHKDF)
	if err != nil {
		t.Fatal(err)
	}
	ecm := wire.EncapsulateMapRequest(req, eid, 61000, netip.MustParseAddr("192.0.2.1"))
	if err := ecm.SetAuthData(ad); err != nil {
		t.Fatal(err)
	}
	atMR, _ := roundTrip(t, ecm)

	// Map-Resolver/Map-Server (§6.6, §6.7.1).
	inAD, err := atMR.AuthData()
	if err != nil {
		t.Fatal(err)
	}
	nonceIn := atMR.Message.(*wire.MapRequest).Nonce
	itrOTK, err := OpenECM(inAD, mrKeys, nonceIn, false)
	if err != nil {
		t.Fatal(err)
	}
	var recs []wire.EIDADRecord
	for _, p := range authorized {
		recs = append(recs, prefixRec(p))
	}
	eidAD, err := NewEIDAD(inAD, itrOTK, recs, false)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := ForwardAuthData(inAD, itrOTK, eidAD, etrKey, wire.SecWrapAESKWHKDF, nonceIn)
	if err != nil {
		t.Fatal(err)
	}
	toETR := wire.EncapsulateMapRequest(atMR.Message.(*wire.MapRequest), eid, 61000, netip.MustParseAddr("192.0.2.1"))
	toETR.ForETR = true
	if err := toETR.SetAuthData(fwd); err != nil {
		t.Fatal(err)
	}
	atETR, _ := roundTrip(t, toETR)

	// ETR (§6.8): open the MS-OTK.
	etrAD, err := atETR.AuthData()
	if err != nil {
		t.Fatal(err)
	}
	msOTK, err := OpenECM(etrAD, etrKeys, atETR.Message.(*wire.MapRequest).Nonce, false)
	if err != nil {
		t.Fatal(err)
	}
	return &exchange{q: q, req: req, atETR: etrAD, msOTK: msOTK}
}

// reply is the ETR's signed Map-Reply for records, with the EID-AD it was given.
func (x *exchange) reply(t testing.TB, records ...string) []byte {
	t.Helper()
	return x.replyWith(t, x.atETR.EID, x.msOTK, records...)
}

func (x *exchange) replyWith(t testing.TB, e wire.EIDAuthData, key OTK, records ...string) []byte {
	t.Helper()
	r := &wire.MapReply{Nonce: x.req.Nonce}
	for _, p := range records {
		r.Records = append(r.Records, mapping(p))
	}
	b, err := SignMapReply(r, e, x.atETR.RequestedHMAC, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// atITR decodes msg and verifies it with the exchange's request.
func (x *exchange) atITR(t *testing.T, msg []byte) (*Verified, error) {
	t.Helper()
	m, err := wire.Decode(msg)
	if err != nil {
		t.Fatalf("decode reply: %v", err)
	}
	return x.q.Verify(m.(*wire.MapReply), msg)
}

func TestExchange(t *testing.T) {
	x := newExchange(t, 0x1111, "198.51.100.0/24")
	v, err := x.atITR(t, x.reply(t, "198.51.100.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Records) != 1 || v.Records[0].PrefixString() != "198.51.100.0/24" || len(v.Dropped) != 0 || v.EID.ETRCantSign {
		t.Fatalf("verified %+v", v)
	}
	if !v.Reply.Security {
		t.Fatal("S not set")
	}
}

// The Map-Server answers itself (RFC 9303 §6.7.2): same verification.
func TestProxyReply(t *testing.T) {
	q, _ := NewRequest(nil, 77, wire.SecHMACNone, wire.SecKDFNone)
	ad, _ := q.AuthData(itrKey, wire.SecWrapAESKWHKDF)
	itrOTK, err := OpenECM(ad, mrKeys, 77, false)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEIDAD(ad, itrOTK, []wire.EIDADRecord{prefixRec("198.51.100.0/24")}, false)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := DeriveMSOTK(e.KDF, itrOTK)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SignMapReply(&wire.MapReply{Nonce: 77, Records: []wire.EIDRecord{mapping("198.51.100.0/24")}}, e, ad.RequestedHMAC, ms)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := wire.Decode(msg)
	v, err := q.Verify(m.(*wire.MapReply), msg)
	if err != nil || len(v.Records) != 1 {
		t.Fatalf("proxy reply: %v %+v", err, v)
	}
	if e.HMACID != wire.SecHMACSHA256128 || e.KDF != wire.SecKDFHKDFSHA256 {
		t.Errorf("NOPREF chose %s %s", e.HMACID, e.KDF)
	}
}

// Overclaiming: the ETR holds the MS-OTK, so it can re-sign the Map-Reply,
// but it cannot re-sign the EID-AD the Map-Server keyed with the ITR-OTK.
func TestAlteredEIDAD(t *testing.T) {
	x := newExchange(t, 0x2222, "198.51.100.0/24")
	forged := x.atETR.EID
	forged.Records = []wire.EIDADRecord{prefixRec("0.0.0.0/0")}
	_, err := x.atITR(t, x.replyWith(t, forged, x.msOTK, "0.0.0.0/0"))
	if !errors.Is(err, ErrEIDAD) || Reason(err) != "eid-ad" {
		t.Fatalf("widened EID-AD: %v", err)
	}
	// The E bit is covered too: an ETR cannot hide that others cannot sign.
	forged = x.atETR.EID
	forged.ETRCantSign = !forged.ETRCantSign
	if _, err := x.atITR(t, x.replyWith(t, forged, x.msOTK, "198.51.100.0/24")); !errors.Is(err, ErrEIDAD) {
		t.Fatalf("flipped E: %v", err)
	}
	// A forgery leaves the request pending: the honest reply still verifies.
	if _, err := x.atITR(t, x.reply(t, "198.51.100.0/24")); err != nil {
		t.Fatalf("honest reply after forgeries: %v", err)
	}
}

// The Map-Server's signature itself (MS-AD, the EID HMAC) altered or
// replaced, or its algorithm downgraded.
func TestAlteredMSAD(t *testing.T) {
	x := newExchange(t, 0x3333, "198.51.100.0/24")
	forged := x.atETR.EID
	forged.HMAC = bytes.Clone(forged.HMAC)
	forged.HMAC[3] ^= 0x01
	if _, err := x.atITR(t, x.replyWith(t, forged, x.msOTK, "198.51.100.0/24")); !errors.Is(err, ErrEIDAD) {
		t.Fatalf("flipped EID HMAC bit: %v", err)
	}
	forged.HMAC = nil // strip the signature
	if _, err := x.atITR(t, x.replyWith(t, forged, x.msOTK, "198.51.100.0/24")); !errors.Is(err, ErrEIDAD) {
		t.Fatalf("EID HMAC removed: %v", err)
	}
	forged = x.atETR.EID
	forged.HMACID = wire.SecHMACSHA1_96
	if _, err := x.atITR(t, x.replyWith(t, forged, x.msOTK, "198.51.100.0/24")); !errors.Is(err, ErrHMACID) {
		t.Fatalf("EID HMAC ID downgraded: %v", err)
	}
	forged = x.atETR.EID
	forged.KDF = wire.SecKDFHKDFSHA1
	if _, err := x.atITR(t, x.replyWith(t, forged, x.msOTK, "198.51.100.0/24")); !errors.Is(err, ErrKDFID) {
		t.Fatalf("KDF ID changed: %v", err)
	}
	// On the way from the Map-Server to the ETR, an altered OTK-AD does
	// not unwrap.
	bad := *x.atETR
	bad.OTK[9] ^= 0x10
	if _, err := OpenECM(&bad, etrKeys, x.req.Nonce, false); !errors.Is(err, ErrOTK) {
		t.Fatalf("altered OTK-AD at the ETR: %v", err)
	}
}

// A reply signed without our OTK (a forger, or an ETR given another
// request's key), and the key mismatches that unwrap to nothing.
func TestWrongOTK(t *testing.T) {
	x := newExchange(t, 0x4444, "198.51.100.0/24")
	other, _ := NewOTK(nil)
	_, err := x.atITR(t, x.replyWith(t, x.atETR.EID, other, "198.51.100.0/24"))
	if !errors.Is(err, ErrPKTAD) || Reason(err) != "pkt-ad" {
		t.Fatalf("signed with another MS-OTK: %v", err)
	}
	// A second request's reply, nonce rewritten, does not verify either.
	y := newExchange(t, 0x4445, "198.51.100.0/24")
	msg := y.reply(t, "198.51.100.0/24")
	m, _ := wire.Decode(msg)
	m.(*wire.MapReply).Nonce = x.req.Nonce
	b, _ := wire.Encode(m)
	if _, err := x.atITR(t, b); !errors.Is(err, ErrPKTAD) {
		t.Fatalf("other request's reply: %v", err)
	}
	// Keys: the ETR's key does not open what the ITR wrapped for its MR.
	ad, _ := x.q.AuthData(itrKey, wire.SecWrapAESKWHKDF)
	if _, err := OpenECM(ad, Keys{itrKey.ID: etrKey.Secret}, x.req.Nonce, false); !errors.Is(err, ErrOTK) {
		t.Fatalf("wrong PSK: %v", err)
	}
	if _, err := OpenECM(ad, etrKeys, x.req.Nonce, false); !errors.Is(err, ErrNoKey) {
		t.Fatalf("unknown key-id: %v", err)
	}
	if _, err := OpenECM(ad, mrKeys, x.req.Nonce+1, false); !errors.Is(err, ErrOTK) {
		t.Fatalf("OTK-AD moved to another Map-Request: %v", err)
	}
	null, _ := x.q.AuthData(itrKey, wire.SecWrapNull)
	if _, err := OpenECM(null, mrKeys, x.req.Nonce, false); !errors.Is(err, ErrNullWrap) {
		t.Fatalf("OTK in clear: %v", err)
	}
	if k, err := OpenECM(null, nil, x.req.Nonce, true); err != nil || k != x.q.otk {
		t.Fatalf("OTK in clear, allowed: %v", err)
	}
}

// An on-path attacker alters a signed reply (a locator, the nonce, a bit).
func TestAlteredReply(t *testing.T) {
	x := newExchange(t, 0x5555, "198.51.100.0/24")
	msg := x.reply(t, "198.51.100.0/24")
	for i := range msg {
		if i == 0 {
			continue // the type and S bit: decodes as something else
		}
		c := bytes.Clone(msg)
		c[i] ^= 0x01
		m, err := wire.Decode(c)
		if err != nil {
			continue
		}
		r, ok := m.(*wire.MapReply)
		if !ok {
			continue
		}
		if _, err := x.q.Verify(r, c); err == nil {
			t.Fatalf("byte %d flipped: verified", i)
		}
	}
	if _, err := x.atITR(t, msg); err != nil {
		t.Fatalf("the original after the attempts: %v", err)
	}
}

func TestReplayedReply(t *testing.T) {
	x := newExchange(t, 0x6666, "198.51.100.0/24")
	msg := x.reply(t, "198.51.100.0/24")
	if _, err := x.atITR(t, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := x.atITR(t, msg); !errors.Is(err, ErrReplay) || Reason(err) != "replay" {
		t.Fatalf("same reply twice: %v", err)
	}
	// An old, valid reply to an earlier request: its nonce is not ours.
	y := newExchange(t, 0x6667, "198.51.100.0/24")
	if _, err := y.atITR(t, msg); !errors.Is(err, ErrReplay) {
		t.Fatalf("earlier request's reply: %v", err)
	}
}

func TestUnsignedAndMalformed(t *testing.T) {
	x := newExchange(t, 0x7777, "198.51.100.0/24")
	plain, _ := wire.Encode(&wire.MapReply{Nonce: x.req.Nonce, Records: []wire.EIDRecord{mapping("198.51.100.0/24")}})
	if _, err := x.atITR(t, plain); !errors.Is(err, ErrUnsigned) || Reason(err) != "unsigned" {
		t.Fatalf("unsigned: %v", err)
	}
	msg := x.reply(t, "198.51.100.0/24")
	m, _ := wire.Decode(msg)
	if _, err := x.q.Verify(m.(*wire.MapReply), msg[:len(msg)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("message and decoding disagree: %v", err)
	}
	garbage, _ := wire.Encode(&wire.MapReply{Nonce: x.req.Nonce, Security: true, SecurityAD: []byte{1, 2, 3}})
	if _, err := x.atITR(t, garbage); !errors.Is(err, ErrMalformed) || Reason(err) != "malformed" {
		t.Fatalf("S with an AD that does not decode: %v", err)
	}
}

// RFC 9303 §6.9.1's example, and instance IDs.
func TestAuthorize(t *testing.T) {
	ad := []wire.EIDADRecord{prefixRec("2001:db8:103::/48"), prefixRec("2001:db8:203::/48")}
	var recs []wire.EIDRecord
	for _, p := range []string{"2001:db8:102::/48", "2001:db8:103::/48", "2001:db8:200::/40", "2001:db8:203:1::/64"} {
		recs = append(recs, mapping(p))
	}
	kept, dropped := Authorize(recs, ad)
	var k, d []string
	for _, r := range kept {
		k = append(k, r.PrefixString())
	}
	for _, r := range dropped {
		d = append(d, r.PrefixString())
	}
	if strings.Join(k, " ") != "2001:db8:103::/48 2001:db8:203:1::/64" || strings.Join(d, " ") != "2001:db8:102::/48 2001:db8:200::/40" {
		t.Fatalf("kept %v, dropped %v", k, d)
	}
	// Instance IDs must match.
	iidRec := wire.EIDRecord{MaskLen: 24, EID: wire.AddrWithIID(7, wire.AddrFromIP(netip.MustParseAddr("198.51.100.0")))}
	if k, d := Authorize([]wire.EIDRecord{iidRec}, []wire.EIDADRecord{prefixRec("198.51.100.0/24")}); len(k) != 0 || len(d) != 1 {
		t.Fatalf("IID 7 record authorized by an IID 0 prefix")
	}
	if k, _ := Authorize([]wire.EIDRecord{iidRec}, []wire.EIDADRecord{{MaskLen: 16, EID: wire.AddrWithIID(7,
		wire.AddrFromIP(netip.MustParseAddr("198.51.0.0")))}}); len(k) != 1 {
		t.Fatalf("IID 7 record inside an IID 7 prefix dropped")
	}
	// A non-IP EID only by exact match.
	mac := wire.EIDRecord{MaskLen: 48, EID: wire.MACAddress(wire.AFIMAC48, [6]byte{2, 0, 0, 0, 0, 1})}
	if k, _ := Authorize([]wire.EIDRecord{mac}, []wire.EIDADRecord{{MaskLen: 48, EID: mac.EID}}); len(k) != 1 {
		t.Fatal("MAC EID dropped")
	}
}

func TestReason(t *testing.T) {
	for _, r := range reasons {
		if got := Reason(r.err); got != r.label {
			t.Errorf("Reason(%v) = %q", r.err, got)
		}
	}
	if Reason(errors.New("x")) != "other" {
		t.Error("foreign error labelled")
	}
}

// FuzzVerify: arbitrary bytes, decoded as a Map-Reply, never verify and
// never panic, whatever the nonce.
func FuzzVerify(f *testing.F) {
	q, _ := NewRequest(nil, 0x0102030405060708, wire.SecHMACNone, wire.SecKDFNone)
	f.Add([]byte{0x22, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	x := newExchange(f, q.Nonce, "198.51.100.0/24")
	f.Add(x.reply(f, "198.51.100.0/24")) // signed, but with another request's OTK
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.Decode(b)
		if err != nil {
			return
		}
		r, ok := m.(*wire.MapReply)
		if !ok {
			return
		}
		r.Nonce = q.Nonce
		if v, err := q.Verify(r, b); err == nil {
			t.Fatalf("verified %x: %+v", b, v)
		}
	})
}
