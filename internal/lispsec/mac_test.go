package lispsec

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"math/rand/v2"
	"testing"

	"github.com/lispd/lispd/wire"
)

// The stack HMAC and HKDF agree with crypto/hmac and crypto/hkdf on both
// sides of every limit: key length, data length, zeroed tail.
func TestStackMACMatchesCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for _, id := range []wire.SecHMAC{wire.SecHMACSHA1_96, wire.SecHMACSHA256128} {
		h := map[wire.SecHMAC]func() hash.Hash{wire.SecHMACSHA1_96: sha1.New, wire.SecHMACSHA256128: sha256.New}[id]
		for _, kl := range []int{0, 16, 32, 64, 65, 100} {
			for _, dl := range []int{0, 1, 63, 64, 200, macStack, macStack + 1, 2000} {
				key, data := rnd(kl), rnd(dl)
				tail := min(dl, id.Size())
				zeroed := bytes.Clone(data)
				clear(zeroed[dl-tail:])
				m := hmac.New(h, key)
				m.Write(zeroed)
				want := m.Sum(nil)[:id.Size()]
				got := make([]byte, id.Size())
				if err := macInto(got, id, key, data, tail); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s key %d data %d: %x, want %x (%v)", id, kl, dl, got, want, err)
				}
			}
		}
	}
	for _, useSHA1 := range []bool{false, true} {
		h := sha256.New
		if useSHA1 {
			h = sha1.New
		}
		for _, n := range []int{0, 16, macStack, macStack + 1} {
			ikm := rnd(n)
			want, _ := hkdf.Key(h, ikm, nil, "", 16)
			if got, err := hkdf16(useSHA1, ikm); err != nil || !bytes.Equal(got[:], want) {
				t.Fatalf("hkdf sha1=%v ikm %d: %x, want %x", useSHA1, n, got, want)
			}
		}
	}
}
