// Package lispsec is the cryptography of LISP-SEC (RFC 9303): One-Time Keys,
// their wrapping with a pre-shared secret, the MS-OTK derivation, the EID-AD
// HMAC of the Map-Server and the PKT-AD HMAC of the ETR, and the ITR's
// verification of a Map-Reply. It is pure: no sockets, clocks or globals;
// wire frames the messages and the roles call in here.
//
// Where RFC 9303 leaves a parameter open we read it as follows (docs/
// architecture.md says the same):
//
//   - per-msg-key = HKDF-SHA256(IKM = nonce (8 bytes, big-endian) ||
//     "OTK-Key-Wrap" || PSK, salt = none, info = none, L = 16) (§6.5 step 4).
//   - MS-OTK = HKDF-<hash>(IKM = ITR-OTK, salt = none, info = none, L = 16),
//     the hash being the one the KDF ID names (§6.7.1).
//   - HMACs are truncated as their names say: 12 bytes for
//     AUTH-HMAC-SHA-1-96, 16 for AUTH-HMAC-SHA-256-128.
//   - The EID HMAC covers the EID-AD from its Length field to the end of the
//     EID HMAC with the EID HMAC zeroed (§6.7.1; §6.9 says "EID HMAC ID",
//     which would make the two ends disagree); the PKT HMAC covers the whole
//     Map-Reply with the PKT HMAC zeroed (§6.8).
//   - A Map-Reply record is kept only inside a prefix of the EID-AD, as
//     §6.9.1's example has it; §6.9's "intersection" would narrow a wider
//     record instead, which the example contradicts.
package lispsec

import (
	"crypto/aes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/lispd/lispd/wire"
)

// OTK is a One-Time Key: the ITR-OTK or the MS-OTK.
type OTK [wire.OTKLen]byte

// String never prints the key, only that it is one.
func (k OTK) String() string { return "otk(" + hex.EncodeToString(k[:2]) + "…)" }

// NewOTK draws a fresh ITR-OTK from r, crypto/rand when r is nil (RFC 9303
// §7.2: a properly seeded strong random source).
func NewOTK(r io.Reader) (OTK, error) {
	if r == nil {
		r = rand.Reader
	}
	var k OTK
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return OTK{}, fmt.Errorf("lispsec: drawing a one-time key: %w", err)
	}
	return k, nil
}

// Keys are the pre-shared secrets by Key ID: between an ITR and its
// Map-Resolver, or between a Map-Server and an ETR (RFC 9303 §6.5: the two
// must be independent, or an ETR could unwrap ITR-OTKs and overclaim).
type Keys map[uint8][]byte

// Key is one pre-shared secret and its Key ID, the one used to wrap.
type Key struct {
	ID     uint8
	Secret []byte
}

// keyWrapIV is the AES key wrap initial value (RFC 3394 §2.2.3.1), which
// RFC 9303 §6.5 requires and checks on unwrap.
var keyWrapIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// perMessageKey is the AES-KW key of one message (RFC 9303 §6.5 step 4).
func perMessageKey(secret []byte, nonce uint64) ([16]byte, error) {
	var buf [macStack]byte
	ikm := binary.BigEndian.AppendUint64(buf[:0], nonce)
	ikm = append(append(ikm, "OTK-Key-Wrap"...), secret...)
	return hkdf16(false, ikm)
}

// WrapOTK wraps k for the wire with the algorithm w, the secret and the
// Map-Request's nonce. Callers refuse SecWrapNull unless the path is
// otherwise protected (RFC 9303 §6.4): this function only encodes.
func WrapOTK(w wire.SecKeyWrap, k OTK, secret []byte, nonce uint64) ([wire.WrappedOTKLen]byte, error) {
	var out [wire.WrappedOTKLen]byte
	switch w {
	case wire.SecWrapNull:
		copy(out[8:], k[:])
		return out, nil
	case wire.SecWrapAESKWHKDF:
		if len(secret) == 0 {
			return out, ErrNoKey
		}
		kek, err := perMessageKey(secret, nonce)
		if err != nil {
			return out, err
		}
		aesKeyWrap(&out, kek[:], k)
		return out, nil
	}
	return out, fmt.Errorf("%w: OTK wrap %s", ErrUnsupported, w)
}

// UnwrapOTK recovers the OTK from its wire form. A wrong secret, a wrong
// nonce or an altered OTK-AD fail the key wrap integrity check: ErrOTK.
func UnwrapOTK(w wire.SecKeyWrap, wrapped [wire.WrappedOTKLen]byte, secret []byte, nonce uint64) (OTK, error) {
	var k OTK
	switch w {
	case wire.SecWrapNull:
		var zero [8]byte
		if subtle.ConstantTimeCompare(wrapped[:8], zero[:]) != 1 {
			return k, ErrOTK
		}
		copy(k[:], wrapped[8:])
		return k, nil
	case wire.SecWrapAESKWHKDF:
		if len(secret) == 0 {
			return k, ErrNoKey
		}
		kek, err := perMessageKey(secret, nonce)
		if err != nil {
			return k, err
		}
		if !aesKeyUnwrap(&k, kek[:], wrapped) {
			return OTK{}, ErrOTK
		}
		return k, nil
	}
	return k, fmt.Errorf("%w: OTK wrap %s", ErrUnsupported, w)
}

// aesKeyWrap is RFC 3394 §2.2.1 for one 128-bit key (n = 2 blocks of 64 bits).
func aesKeyWrap(out *[wire.WrappedOTKLen]byte, kek []byte, k OTK) {
	c, _ := aes.NewCipher(kek) // kek is 16 bytes: cannot fail
	var a, b [16]byte
	copy(a[:8], keyWrapIV[:])
	r := [2][8]byte{[8]byte(k[:8]), [8]byte(k[8:])}
	for j := range 6 {
		for i := range 2 {
			copy(b[8:], r[i][:])
			copy(b[:8], a[:8])
			c.Encrypt(b[:], b[:])
			t := uint64(2*j + i + 1)
			binary.BigEndian.PutUint64(a[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(r[i][:], b[8:])
		}
	}
	copy(out[:8], a[:8])
	copy(out[8:16], r[0][:])
	copy(out[16:], r[1][:])
}

// aesKeyUnwrap is RFC 3394 §2.2.2 with the §2.2.3 integrity check, in
// constant time.
func aesKeyUnwrap(k *OTK, kek []byte, in [wire.WrappedOTKLen]byte) bool {
	c, _ := aes.NewCipher(kek)
	var a [8]byte
	var b [16]byte
	copy(a[:], in[:8])
	r := [2][8]byte{[8]byte(in[8:16]), [8]byte(in[16:])}
	for j := 5; j >= 0; j-- {
		for i := 1; i >= 0; i-- {
			t := uint64(2*j + i + 1)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(b[8:], r[i][:])
			c.Decrypt(b[:], b[:])
			copy(a[:], b[:8])
			copy(r[i][:], b[8:])
		}
	}
	ok := subtle.ConstantTimeCompare(a[:], keyWrapIV[:]) == 1
	copy(k[:8], r[0][:])
	copy(k[8:], r[1][:])
	return ok
}

func kdfSupported(kdf wire.SecKDF) bool {
	return kdf == wire.SecKDFHKDFSHA1 || kdf == wire.SecKDFHKDFSHA256
}

// DeriveMSOTK derives the MS-OTK from the ITR-OTK with the KDF the EID-AD
// names (RFC 9303 §6.7.1, §6.9). ErrUnsupported for NOPREF or unknown IDs:
// the Map-Server always writes the KDF it used.
func DeriveMSOTK(kdf wire.SecKDF, itrOTK OTK) (OTK, error) {
	if !kdfSupported(kdf) {
		return OTK{}, fmt.Errorf("%w: KDF %s", ErrUnsupported, kdf)
	}
	k, err := hkdf16(kdf == wire.SecKDFHKDFSHA1, itrOTK[:])
	return OTK(k), err
}

// ChooseKDF is the KDF a Map-Server uses for a requested KDF ID: the
// request's when supported, else HKDF-SHA256 (RFC 9303 §6.7: the MUST).
func ChooseKDF(requested wire.SecKDF) wire.SecKDF {
	if kdfSupported(requested) {
		return requested
	}
	return wire.SecKDFHKDFSHA256
}

// ChooseHMAC is the HMAC a Map-Server or ETR uses for a Requested HMAC ID:
// the request's when supported, else AUTH-HMAC-SHA-256-128 (§6.7.1, §6.8).
func ChooseHMAC(requested wire.SecHMAC) wire.SecHMAC {
	if requested.Size() != 0 {
		return requested
	}
	return wire.SecHMACSHA256128
}
