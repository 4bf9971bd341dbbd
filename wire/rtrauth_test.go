package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func rtrNotify(t *testing.T) (*MapNotify, []byte) {
	t.Helper()
	n := &MapNotify{AuthBody: AuthBody{Nonce: 0x1122334455667788, HasXTRID: true, XTRID: [16]byte{1, 2, 3}, SiteID: 9,
		KeyID: 1, Algorithm: AuthHMACSHA256}}
	b, err := EncodeSigned(n, []byte("site-key"), AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n, b
}

// An ECM with the MS-RTR AD round-trips, and the AD verifies over the
// inner Map-Notify with the right key only.
func TestRTRAuthDataRoundTrip(t *testing.T) {
	for _, alg := range []AuthAlg{AuthHMACSHA1, AuthHMACSHA256} {
		n, nb := rtrNotify(t)
		key := RTRKey{ID: 0x1234, Algorithm: alg, Secret: []byte("ms-rtr")}
		ad, err := key.Sign(nb)
		if err != nil {
			t.Fatal(err)
		}
		if len(ad.MAC) != alg.DigestLen() {
			t.Fatalf("%s: MAC of %d bytes", alg, len(ad.MAC))
		}
		e := &ECM{ForETR: true, IP: InnerIP{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("10.0.0.2"), TTL: 64},
			SrcPort: ControlPort, DstPort: 4341, Message: n}
		if err := e.SetRTRAuthData(ad); err != nil {
			t.Fatal(err)
		}
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 0x8a || b[4] != RTRADType || !bytes.Equal(b[8:10], []byte{0x12, 0x34}) || int(b[10])<<8|int(b[11]) != len(ad.MAC) {
			t.Fatalf("header %x", b[:12])
		}
		m, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		got := m.(*ECM)
		gad, err := got.RTRAuthData()
		if err != nil {
			t.Fatal(err)
		}
		if gad.KeyID != 0x1234 || !bytes.Equal(gad.MAC, ad.MAC) {
			t.Fatalf("AD %s, want %s", gad, ad)
		}
		if _, err := got.AuthData(); !errors.Is(err, ErrBadValue) {
			t.Fatalf("LISP-SEC AuthData of an MS-RTR AD: %v", err)
		}
		if !strings.Contains(got.String(), "ms-rtr key-id 4660") {
			t.Fatalf("String() = %q", got.String())
		}
		inner := b[len(b)-got.Message.Len():]
		if !bytes.Equal(inner, nb) {
			t.Fatal("inner Map-Notify bytes differ")
		}
		if err := key.Verify(gad, inner); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		trunc := &RTRAuthData{KeyID: gad.KeyID, MAC: gad.MAC[:truncatedLen(alg)]}
		if err := key.Verify(trunc, inner); err != nil {
			t.Fatalf("%s truncated: %v", alg, err)
		}
		if err := (RTRKey{ID: 0x1234, Algorithm: alg, Secret: []byte("other")}).Verify(gad, inner); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("wrong key: %v", err)
		}
		bad := bytes.Clone(inner)
		bad[5] ^= 1
		if err := key.Verify(gad, bad); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("changed Map-Notify: %v", err)
		}
		if err := key.Verify(&RTRAuthData{KeyID: 0x1234, MAC: gad.MAC[:5]}, inner); !errors.Is(err, ErrBadLength) {
			t.Fatalf("short MAC: %v", err)
		}
		if err := key.Verify(&RTRAuthData{KeyID: 0x1235, MAC: gad.MAC}, inner); !errors.Is(err, ErrNoKey) {
			t.Fatalf("other key ID: %v", err)
		}
	}
	if _, err := (RTRKey{ID: 1, Secret: []byte("k")}).Sign(nil); !errors.Is(err, ErrBadAlgorithm) {
		t.Fatalf("sign with none: %v", err)
	}
	var plain ECM
	if _, err := plain.RTRAuthData(); !errors.Is(err, ErrNoAuthData) {
		t.Fatalf("RTRAuthData without S: %v", err)
	}
	if _, err := (&RTRAuthData{Reserved: 1 << 24}).Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("reserved overflow: %v", err)
	}
}

// Malformed MS-RTR ADs are refused with a DecodeError naming the field,
// alone and inside an ECM; nothing panics on any truncation.
func TestRTRAuthDataDecodeErrors(t *testing.T) {
	ok := mustHex(t, `02 000000 0007 0004 a1a2a3a4`)
	if a, err := DecodeRTRAuthData(ok); err != nil || a.KeyID != 7 || len(a.MAC) != 4 {
		t.Fatalf("%v %v", a, err)
	}
	for _, c := range []struct {
		name  string
		b     []byte
		field string
		err   error
	}{
		{"empty", nil, "AD Type", ErrTruncated},
		{"wrong type", mustHex(t, `03 000000 0007 0004 a1a2a3a4`), "AD Type", ErrBadValue},
		{"short header", mustHex(t, `02 000000 0007 00`), "header", ErrTruncated},
		{"length past end", mustHex(t, `02 000000 0007 0005 a1a2a3a4`), "MS-RTR Authentication Data", ErrTruncated},
		{"trailing", mustHex(t, `02 000000 0007 0003 a1a2a3a4`), "after MS-RTR Authentication Data", ErrTrailingBytes},
	} {
		_, err := DecodeRTRAuthData(c.b)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, c.err) || de.Field != c.field {
			t.Errorf("%s: %v, want %s %v", c.name, err, c.field, c.err)
		}
	}
	for i := range ok {
		if _, err := DecodeRTRAuthData(ok[:i]); err == nil {
			t.Errorf("truncated to %d decoded", i)
		}
	}
	// In an ECM: S with an MS-RTR AD whose length runs into the inner
	// header must not decode, and every truncation fails cleanly.
	n, _ := rtrNotify(t)
	e := &ECM{ForETR: true, IP: InnerIP{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("10.0.0.2"), TTL: 64},
		SrcPort: ControlPort, DstPort: 4341, Message: n}
	if err := e.SetRTRAuthData(&RTRAuthData{KeyID: 1, MAC: make([]byte, 20)}); err != nil {
		t.Fatal(err)
	}
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		if _, err := Decode(b[:i]); err == nil {
			t.Errorf("ECM truncated to %d decoded", i)
		}
	}
	long := bytes.Clone(b)
	long[10], long[11] = 0xff, 0xff
	if _, err := Decode(long); !errors.Is(err, ErrTruncated) {
		t.Errorf("AD length past the packet: %v", err)
	}
	short := bytes.Clone(b)
	short[11] = 19 // one MAC byte becomes the inner IP version nibble
	if _, err := Decode(short); err == nil {
		t.Error("AD length one short decoded")
	}
}

func FuzzDecodeRTRAuthData(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 0, 7, 0, 4, 1, 2, 3, 4})
	f.Add([]byte{2, 0, 0, 0, 0, 7, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeRTRAuthData(b)
		if err != nil {
			return
		}
		_ = a.String()
		out, err := a.Append(nil)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding %x: %x %v", b, out, err)
		}
	})
}
