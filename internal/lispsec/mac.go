package lispsec

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/lispd/lispd/wire"
)

// A Map-Server computes seven HMACs per protected Map-Request; done with
// crypto/hmac each allocates its state. Inputs that fit macStack bytes are
// hashed on the stack instead, the rest by crypto/hmac.
const macStack = 512

// stackMAC is HMAC-SHA-256 (or HMAC-SHA-1 when sha1 is set) of data keyed
// with key, with the last zeroTail bytes of data taken as zero, computed
// without allocating. ok is false when key or data are too long for that.
func stackMAC(useSHA1 bool, key, data []byte, zeroTail int) (out [sha256.Size]byte, ok bool) {
	const block = 64
	if len(key) > block || len(data) > macStack || zeroTail > len(data) {
		return out, false
	}
	var buf [block + macStack]byte
	pad := func(b byte) {
		for i := range block {
			buf[i] = b
		}
		for i, c := range key {
			buf[i] ^= c
		}
	}
	pad(0x36)
	n := block + copy(buf[block:], data)
	clear(buf[n-zeroTail : n])
	size := sha256.Size
	if useSHA1 {
		size = sha1.Size
	}
	inner := stackHash(useSHA1, buf[:n])
	pad(0x5c)
	copy(buf[block:], inner[:size])
	return stackHash(useSHA1, buf[:block+size]), true
}

func stackHash(useSHA1 bool, b []byte) (out [sha256.Size]byte) {
	if useSHA1 {
		s := sha1.Sum(b)
		copy(out[:], s[:])
		return out
	}
	return sha256.Sum256(b)
}

// macInto writes the HMAC id of data keyed with key, truncated to
// id.Size(), into dst; the last zeroTail bytes of data count as zero (the
// HMAC field of the data being signed or checked).
func macInto(dst []byte, id wire.SecHMAC, key, data []byte, zeroTail int) error {
	var newHash func() hash.Hash
	switch id {
	case wire.SecHMACSHA256128:
		newHash = sha256.New
	case wire.SecHMACSHA1_96:
		newHash = sha1.New
	default:
		return fmt.Errorf("%w: HMAC %s", ErrUnsupported, id)
	}
	if s, ok := stackMAC(id == wire.SecHMACSHA1_96, key, data, zeroTail); ok {
		copy(dst, s[:id.Size()])
		return nil
	}
	m := hmac.New(newHash, key)
	m.Write(data[:len(data)-zeroTail])
	var zero [64]byte
	for n := zeroTail; n > 0; n -= min(n, len(zero)) {
		m.Write(zero[:min(n, len(zero))])
	}
	copy(dst, m.Sum(nil)[:id.Size()])
	return nil
}

// hkdf16 is HKDF (RFC 5869) with no salt and no info, 16 bytes out: Extract
// is the HMAC of ikm keyed with zeros, Expand one HMAC of 0x01.
func hkdf16(useSHA1 bool, ikm []byte) ([16]byte, error) {
	prk, ok := stackMAC(useSHA1, nil, ikm, 0)
	if !ok {
		h := sha256.New
		if useSHA1 {
			h = sha1.New
		}
		b, err := hkdf.Key(h, ikm, nil, "", 16)
		if err != nil {
			return [16]byte{}, err
		}
		return [16]byte(b), nil
	}
	size := sha256.Size
	if useSHA1 {
		size = sha1.Size
	}
	okm, _ := stackMAC(useSHA1, prk[:size], []byte{1}, 0)
	return [16]byte(okm[:16]), nil
}
