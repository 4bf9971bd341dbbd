package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The layout, byte by byte, as docs/architecture.md describes it: a change
// to a length's extent or a field's place fails here.
func TestLISPSECLayout(t *testing.T) {
	eid := AddrFromIP(netip.MustParseAddr("198.51.100.0"))
	ecm := &ECMAuthData{RequestedHMAC: SecHMACSHA256128, KeyID: 7, Wrap: SecWrapAESKWHKDF,
		EID: EIDAuthData{KDF: SecKDFHKDFSHA256, KDFOnly: true}}
	for i := range ecm.OTK {
		ecm.OTK[i] = byte(0xa0 + i)
	}
	want := mustHex(t, `01 00 0002  001c 07 02
		a0a1a2a3a4a5a6a7 a8a9aaabacadaeafb0b1b2b3b4b5b6b7
		0004 0002`)
	got, err := ecm.Append(nil)
	if err != nil || !bytes.Equal(got, want) || ecm.Len() != len(want) {
		t.Fatalf("ITR's ECM AD = %x (%v), want %x", got, err, want)
	}

	ms := EIDAuthData{KDF: SecKDFHKDFSHA256, ETRCantSign: true, HMACID: SecHMACSHA256128,
		Records: []EIDADRecord{{MaskLen: 24, EID: eid}}, HMAC: bytes.Repeat([]byte{0xee}, 16)}
	mr := &MapReplyAuthData{EID: ms, PKTHMACID: SecHMACSHA256128, PKTHMAC: bytes.Repeat([]byte{0xdd}, 16)}
	want = mustHex(t, `01 000000
		0020 0002 01 80 0002  00 18 0001 c6336400  eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee
		0014 0002 dddddddddddddddddddddddddddddddd`)
	got, err = mr.Append(nil)
	if err != nil || !bytes.Equal(got, want) || mr.Len() != len(want) {
		t.Fatalf("Map-Reply AD = %x (%v), want %x", got, err, want)
	}
	dec, err := DecodeMapReplyAuthData(want)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(mr, dec, cmpOpts...); d != "" {
		t.Fatalf("decoded Map-Reply AD differs:\n%s", d)
	}
	eidAD, pktAD, err := SplitMapReplyAuthData(want)
	if err != nil || !bytes.Equal(eidAD, want[4:36]) || !bytes.Equal(pktAD, want[36:]) {
		t.Fatalf("split = %x %x %v", eidAD, pktAD, err)
	}
	for _, s := range []string{ecm.String(), mr.String()} {
		if !strings.Contains(s, "hkdf-sha256") || !strings.Contains(s, "hmac-sha-256-128") {
			t.Errorf("String() = %q", s)
		}
	}
	if s := mr.String(); !strings.Contains(s, "198.51.100.0/24") || !strings.Contains(s, "etr-cant-sign") {
		t.Errorf("String() = %q", s)
	}
}

// An ECM with the AD: the inner Map-Request is found after it, S is kept,
// and the accessors give back what was set.
func TestECMWithAuthData(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(21, 22))}
	for range 200 {
		ad := g.ecmAD()
		req := g.mapRequest()
		e := EncapsulateMapRequest(req, netip.MustParseAddr("198.51.100.7"), 61000, netip.MustParseAddr("192.0.2.1"))
		if err := e.SetAuthData(ad); err != nil {
			t.Fatal(err)
		}
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		got := m.(*ECM)
		if !got.Security || got.Message.Type() != TypeMapRequest {
			t.Fatalf("decoded %s", got)
		}
		gad, err := got.AuthData()
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(ad, gad, cmpOpts...); d != "" {
			t.Fatalf("AD differs:\n%s", d)
		}
		if !strings.Contains(got.String(), "lisp-sec") {
			t.Fatalf("String() = %q", got.String())
		}
	}
	var plain ECM
	if _, err := plain.AuthData(); !errors.Is(err, ErrNoAuthData) {
		t.Fatalf("AuthData without S: %v", err)
	}
	var mr MapReply
	if _, err := mr.AuthData(); !errors.Is(err, ErrNoAuthData) {
		t.Fatalf("Map-Reply AuthData without S: %v", err)
	}
	// S set but no AD would put the AD parser on the inner IP header.
	e := EncapsulateMapRequest(g.mapRequest(), netip.MustParseAddr("198.51.100.7"), 61000)
	e.Security = true
	if _, err := Encode(e); !errors.Is(err, ErrBadValue) {
		t.Fatalf("S without AD encoded: %v", err)
	}
}

// Each malformation is refused with a DecodeError naming the field.
func TestLISPSECDecodeErrors(t *testing.T) {
	ecmOK := mustHex(t, `01 00 0002 001c 07 02 a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7 0004 0002`)
	mrOK := mustHex(t, `01 000000 0008 0002 00 00 0002 0004 0002`)
	if _, err := DecodeECMAuthData(ecmOK); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeMapReplyAuthData(mrOK); err != nil {
		t.Fatal(err)
	}
	set := func(b []byte, off int, v ...byte) []byte {
		c := bytes.Clone(b)
		copy(c[off:], v)
		return c
	}
	for _, c := range []struct {
		name  string
		ecm   bool
		b     []byte
		field string
		err   error
	}{
		{"ecm type 2", true, set(ecmOK, 0, 2), "ECM AD Type", ErrBadValue},
		{"ecm OTK length 24", true, set(ecmOK, 4, 0, 24), "OTK Length", ErrBadLength},
		{"ecm EID-AD length 2", true, set(ecmOK, 32, 0, 2), "EID-AD Length", ErrBadLength},
		{"ecm EID-AD length 6", true, append(set(ecmOK, 32, 0, 6), 0, 0), "EID-AD Length", ErrBadLength},
		{"ecm EID-AD past end", true, set(ecmOK, 32, 0, 8), "EID-AD", ErrTruncated},
		{"ecm truncated", true, ecmOK[:20], "EID-AD Length", ErrTruncated},
		{"ecm trailing", true, append(bytes.Clone(ecmOK), 0), "after EID-AD", ErrTrailingBytes},
		{"ecm record count beyond", true, append(set(ecmOK, 32, 0, 8), 5, 0, 0, 2), "Record Count", ErrTruncated},
		{"mr type 0", false, set(mrOK, 0, 0), "MR AD Type", ErrBadValue},
		{"mr PKT-AD length 2", false, set(mrOK, 12, 0, 2), "PKT-AD Length", ErrBadLength},
		{"mr PKT-AD past end", false, set(mrOK, 12, 0, 5), "PKT-AD", ErrTruncated},
		{"mr no PKT-AD", false, mrOK[:12], "PKT-AD Length", ErrTruncated},
		{"mr trailing", false, append(bytes.Clone(mrOK), 0), "after PKT-AD", ErrTrailingBytes},
		{"mr mask too long", false, mustHex(t, `01000000 0010 0002 01 00 0002 00 21 0001 c6336400 0004 0002`), "EID mask-len", ErrBadValue},
	} {
		var err error
		if c.ecm {
			_, err = DecodeECMAuthData(c.b)
		} else {
			_, err = DecodeMapReplyAuthData(c.b)
		}
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, c.err) || de.Field != c.field {
			t.Errorf("%s: %v, want %s: %v", c.name, err, c.field, c.err)
		}
	}
	// The ECM decoder refuses a bad AD rather than misread the inner header.
	e := EncapsulateMapRequest(&MapRequest{Nonce: 1, ITRRLOCs: []Address{AddrFromIP(netip.MustParseAddr("192.0.2.1"))},
		Records: []RequestRecord{{MaskLen: 32, EID: AddrFromIP(netip.MustParseAddr("198.51.100.1"))}}},
		netip.MustParseAddr("198.51.100.1"), 1)
	e.Security, e.SecurityAD = true, set(ecmOK, 4, 0, 24)
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); !errors.Is(err, ErrBadLength) {
		t.Errorf("ECM with a bad AD: %v", err)
	}
	// A Map-Reply's records are usable whatever follows them: the AD is
	// checked when asked for.
	r := &MapReply{Security: true, SecurityAD: set(mrOK, 12, 0, 2)}
	if b, err = Encode(r); err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatalf("Map-Reply with a bad AD: %v", err)
	}
	if _, err := m.(*MapReply).AuthData(); !errors.Is(err, ErrBadLength) {
		t.Errorf("Map-Reply with a bad AD: AuthData %v", err)
	}
	if !strings.Contains(m.String(), "lisp-sec(malformed") {
		t.Errorf("String() = %q", m.String())
	}
	if _, err := (&EIDAuthData{KDFOnly: true, HMACID: 2}).Append(nil); !errors.Is(err, ErrBadValue) {
		t.Errorf("KDF-only EID-AD with an HMAC ID encoded: %v", err)
	}
}

func lispsecSeeds(f *testing.F, mr bool) {
	g := gen{rand.New(rand.NewPCG(23, 24))}
	for range 100 {
		var b []byte
		var err error
		if mr {
			b, err = g.mapReplyAD().Append(nil)
		} else {
			b, err = g.ecmAD().Append(nil)
		}
		if err == nil {
			f.Add(b)
		}
	}
}

// fuzzAuthData: no input panics, and what decodes re-encodes to the same
// bytes (the EID-AD the ETR copies must stay what the Map-Server signed).
func fuzzAuthData[A interface {
	Len() int
	Append([]byte) ([]byte, error)
	String() string
}](f *testing.F, mr bool, decode func([]byte) (A, error)) {
	lispsecSeeds(f, mr)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decode(b)
		if err != nil {
			return
		}
		_ = a.String()
		out, err := a.Append(nil)
		if err != nil || !bytes.Equal(out, b) || a.Len() != len(b) {
			t.Fatalf("re-encoding differs (%v)\n in  %x\n out %x", err, b, out)
		}
	})
}

func FuzzDecodeECMAuthData(f *testing.F) { fuzzAuthData(f, false, DecodeECMAuthData) }

func FuzzDecodeMapReplyAuthData(f *testing.F) { fuzzAuthData(f, true, DecodeMapReplyAuthData) }
