package wire

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/testvectors"
)

// seedPayloads returns every LISP payload in the golden corpus and a few hundred generated messages of every type.
func seedPayloads(f *testing.F) [][]byte {
	var out [][]byte
	for _, name := range []string{"handmade.vectors.json", "oor/oor-capture.vectors.json"} {
		for _, v := range testvectors.JSON(f, name).Vectors {
			out = append(out, v.Payload)
		}
	}
	for _, name := range []string{"synthetic/vectors.txt", "odl/odl-vectors.txt"} {
		fh, err := os.Open(testvectors.Path(f, name))
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := sc.Text()
			if _, hx, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				line = hx
			}
			if b, err := hexOK(strings.TrimSpace(line)); err == nil && len(b) > 0 {
				out = append(out, b)
			}
		}
		fh.Close()
	}
	g := gen{rand.New(rand.NewPCG(7, 8))}
	for i := range 200 {
		typ := []MessageType{1, 2, 3, 4, 5, 6, 7, 8, 15}[i%9]
		if b, err := Encode(g.message(typ, 0)); err == nil {
			out = append(out, b)
		}
	}
	return out
}

func hexOK(s string) ([]byte, error) {
	var b []byte
	for i := 0; i+1 < len(s); i += 2 {
		var v byte
		for _, c := range []byte(s[i : i+2]) {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | (c - 'a' + 10)
			default:
				return nil, ErrBadValue
			}
		}
		b = append(b, v)
	}
	if len(s)%2 != 0 {
		return nil, ErrBadValue
	}
	return b, nil
}

// FuzzDecode: no input panics, and whatever decodes re-encodes to the very
// same bytes (the codec keeps every bit it reads).
func FuzzDecode(f *testing.F) {
	for _, b := range seedPayloads(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		_ = m.String()
		if m.Len() != len(b) {
			t.Fatalf("Len() = %d for %d bytes: %s", m.Len(), len(b), m)
		}
		out, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded but does not encode: %v: %s", err, m)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs\n in  %x\n out %x\n %s", b, out, m)
		}
	})
}

// FuzzDecodeAddress covers the AFI and LCAF decoder on its own.
func FuzzDecodeAddress(f *testing.F) {
	g := gen{rand.New(rand.NewPCG(9, 10))}
	for range 200 {
		if b, err := g.addr(0).Append(nil); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, n, err := DecodeAddress(b)
		if err != nil {
			return
		}
		_ = a.String()
		if a.Len() != n {
			t.Fatalf("Len() = %d, used %d", a.Len(), n)
		}
		out, err := a.Append(nil)
		if err != nil || !bytes.Equal(out, b[:n]) {
			t.Fatalf("re-encoding differs (%v)\n in  %x\n out %x", err, b[:n], out)
		}
	})
}

// FuzzDecodeDataHeader checks the data header view and its setters.
func FuzzDecodeDataHeader(f *testing.F) {
	f.Add([]byte{0xc8, 0xab, 0xcd, 0xef, 0, 0, 0xff, 3})
	f.Add([]byte{0x18, 0x12, 0x34, 0x56, 0, 0, 5, 0})
	f.Add([]byte{0x0c, 0, 0, 3, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeDataHeader(b)
		if err != nil {
			return
		}
		_ = h.String()
		c := DataHeader(bytes.Clone(h))
		if h.I() {
			iid := h.InstanceID()
			c.SetInstanceID(iid)
			if c.InstanceID() != iid || !bytes.Equal(c, h) {
				t.Fatalf("SetInstanceID(%d) changed %x to %x", iid, h, c)
			}
		}
		if h.N() && !h.V() {
			c.SetNonce(h.Nonce())
			if !bytes.Equal(c, h) {
				t.Fatalf("SetNonce changed %x to %x", h, c)
			}
		}
	})
}

// FuzzVerify: authentication over arbitrary bytes never panics and never
// accepts a message that was not signed with the key.
func FuzzVerify(f *testing.F) {
	for _, b := range seedPayloads(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := Verify(b, []byte("fuzz-key-nobody-signs-with"), AuthOptions{AllowHKDF: true}); err == nil {
			t.Fatalf("verified an unsigned message: %x", b)
		}
		c := bytes.Clone(b)
		if Sign(c, []byte("k"), AuthOptions{AllowHKDF: true}) == nil && c[13] != byte(AuthNone) {
			if err := Verify(c, []byte("k"), AuthOptions{AllowHKDF: true}); err != nil {
				t.Fatalf("signed message does not verify: %v", err)
			}
		}
	})
}
