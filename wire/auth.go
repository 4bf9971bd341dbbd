package wire

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"strconv"
)

// AuthAlg is the Algorithm ID of Map-Register, Map-Notify, Map-Notify-Ack
// and Info messages (RFC 9301 §12.5).
type AuthAlg uint8

// Authentication algorithms.
const (
	AuthNone           AuthAlg = 0
	AuthHMACSHA1       AuthAlg = 1 // HMAC-SHA-1-96-None
	AuthHMACSHA256     AuthAlg = 2 // HMAC-SHA-256-128-None
	AuthHMACSHA256HKDF AuthAlg = 3 // HMAC-SHA256-128+HKDF-SHA256, opt-in
)

var algNames = map[AuthAlg]string{
	AuthNone: "none", AuthHMACSHA1: "hmac-sha-1-96", AuthHMACSHA256: "hmac-sha-256-128",
	AuthHMACSHA256HKDF: "hmac-sha-256-128-hkdf-sha256",
}

// String returns the name used in the configuration.
func (a AuthAlg) String() string {
	if n, ok := algNames[a]; ok {
		return n
	}
	return "alg-" + strconv.Itoa(int(a))
}

// ParseAuthAlg is the inverse of AuthAlg.String.
func ParseAuthAlg(s string) (AuthAlg, bool) {
	for a, n := range algNames {
		if n == s {
			return a, true
		}
	}
	return 0, false
}

// DigestLen is the Authentication Data length sent for the algorithm. Like
// every deployed implementation we send the full digest (20 or 32 bytes)
// although the algorithm names say 96 and 128 bits.
func (a AuthAlg) DigestLen() int {
	switch a {
	case AuthHMACSHA1:
		return sha1.Size
	case AuthHMACSHA256, AuthHMACSHA256HKDF:
		return sha256.Size
	}
	return 0
}

// AuthOptions tunes verification.
type AuthOptions struct {
	// AllowHKDF enables algorithm 3, whose parameters RFC 9301 leaves
	// open; our reading is HKDF-SHA256(salt=s, IKM=nonce||PSK, info="", L=32).
	AllowHKDF bool
}

// authMessage is implemented by the messages that carry authentication data.
type authMessage interface {
	Message
	authBody() *AuthBody
}

var (
	_ authMessage = (*MapRegister)(nil)
	_ authMessage = (*MapNotify)(nil)
	_ authMessage = (*MapNotifyAck)(nil)
)

// EncodeSigned encodes a Map-Register, Map-Notify or Map-Notify-Ack with
// its Algorithm and KeyID as set, sizing AuthData for the algorithm and
// filling it with the MAC computed with secret. m.AuthData is updated.
func EncodeSigned(m Message, secret []byte, opts AuthOptions) ([]byte, error) {
	am, ok := m.(authMessage)
	if !ok {
		return nil, encErr(m.Type().String(), "authentication", ErrBadValue)
	}
	return NewAuthenticator(am.authBody().Algorithm, secret, opts).EncodeSigned(m)
}

// authSalt is the HKDF salt of algorithm 3 for each message type.
func authSalt(t MessageType) string {
	switch t {
	case TypeMapRegister:
		return "Map-Register Authentication"
	case TypeMapNotify:
		return "Map-Notify Authentication"
	case TypeMapNotifyAck:
		return "Map-Notify-Ack Authentication"
	}
	return ""
}

// authFields locates the authentication data of an encoded message.
func authFields(msg []byte) (alg AuthAlg, off, n int, err error) {
	t, _ := PeekType(msg)
	switch t {
	case TypeMapRegister, TypeMapNotify, TypeMapNotifyAck, TypeInfo:
	default:
		return 0, 0, 0, &DecodeError{Msg: t.String(), Field: "Type", Offset: 0, Err: ErrBadValue}
	}
	if len(msg) < authOffset {
		return 0, 0, 0, &DecodeError{Msg: t.String(), Field: "Authentication Data Length", Offset: 14, Err: ErrTruncated}
	}
	n = int(binary.BigEndian.Uint16(msg[14:]))
	if len(msg) < authOffset+n {
		return 0, 0, 0, &DecodeError{Msg: t.String(), Field: "Authentication Data", Offset: authOffset, Err: ErrTruncated}
	}
	return AuthAlg(msg[13]), authOffset, n, nil
}

// mac computes the MAC over msg with the n bytes at off taken as zero,
// without copying msg.
func mac(msg []byte, off, n int, alg AuthAlg, secret []byte, opts AuthOptions) ([]byte, error) {
	var h hash.Hash
	switch alg {
	case AuthHMACSHA1:
		h = hmac.New(sha1.New, secret)
	case AuthHMACSHA256:
		h = hmac.New(sha256.New, secret)
	case AuthHMACSHA256HKDF:
		if !opts.AllowHKDF {
			return nil, ErrBadAlgorithm
		}
		t, _ := PeekType(msg)
		ikm := make([]byte, 8, 8+len(secret))
		copy(ikm, msg[4:12])
		key, err := hkdf.Key(sha256.New, append(ikm, secret...), []byte(authSalt(t)), "", sha256.Size)
		if err != nil {
			return nil, err
		}
		h = hmac.New(sha256.New, key)
	default:
		return nil, ErrBadAlgorithm
	}
	h.Write(msg[:off])
	var zero [64]byte
	for left := n; left > 0; {
		k := min(left, len(zero))
		h.Write(zero[:k])
		left -= k
	}
	h.Write(msg[off+n:])
	return h.Sum(nil), nil
}

// Sign writes the MAC of an encoded Map-Register, Map-Notify,
// Map-Notify-Ack or Info message into its Authentication Data field, which
// must already have the algorithm's length. The MAC covers the whole
// message, xTR-ID/Site-ID included, with the field taken as zero.
func Sign(msg, secret []byte, opts AuthOptions) error {
	alg, _, _, err := authFields(msg)
	if err != nil {
		return err
	}
	return NewAuthenticator(alg, secret, opts).Sign(msg)
}

// Verify checks the Authentication Data of an encoded message in constant
// time, over the received bytes (never a re-encoding). It accepts the full
// digest and the truncated 12 (SHA-1) or 16 (SHA-256) bytes. Algorithm 0
// (no authentication) fails: a caller that allows it must say so itself.
func Verify(msg, secret []byte, opts AuthOptions) error {
	alg, _, _, err := authFields(msg)
	if err != nil {
		return err
	}
	return NewAuthenticator(alg, secret, opts).Verify(msg)
}

func truncatedLen(a AuthAlg) int {
	if a == AuthHMACSHA1 {
		return 12
	}
	return 16
}

// Authenticator signs and verifies with one key, keeping its HMAC state
// between messages (hmac.New hashes the key and allocates every time). It
// is not safe for concurrent use; servers keep one per key under their lock.
type Authenticator struct {
	alg    AuthAlg
	secret []byte
	opts   AuthOptions
	h      hash.Hash // nil for algorithm 3, whose key changes per message
}

// NewAuthenticator returns an Authenticator for alg and secret.
func NewAuthenticator(alg AuthAlg, secret []byte, opts AuthOptions) *Authenticator {
	a := &Authenticator{alg: alg, secret: secret, opts: opts}
	switch alg {
	case AuthHMACSHA1:
		a.h = hmac.New(sha1.New, secret)
	case AuthHMACSHA256:
		a.h = hmac.New(sha256.New, secret)
	}
	return a
}

// sum is mac() with the cached HMAC when there is one.
func (a *Authenticator) sum(msg []byte, off, n int, alg AuthAlg, out []byte) ([]byte, error) {
	if a.h == nil || alg != a.alg {
		return mac(msg, off, n, alg, a.secret, a.opts)
	}
	a.h.Reset()
	a.h.Write(msg[:off])
	var zero [64]byte
	for left := n; left > 0; {
		k := min(left, len(zero))
		a.h.Write(zero[:k])
		left -= k
	}
	a.h.Write(msg[off+n:])
	return a.h.Sum(out), nil
}

// Verify is the package-level Verify with this key.
func (a *Authenticator) Verify(msg []byte) error {
	alg, off, n, err := authFields(msg)
	if err != nil {
		return err
	}
	full := alg.DigestLen()
	if full == 0 {
		return ErrBadAlgorithm
	}
	if n != full && n != truncatedLen(alg) {
		return ErrBadLength
	}
	var buf [sha256.Size]byte
	sum, err := a.sum(msg, off, n, alg, buf[:0])
	if err != nil {
		return err
	}
	if !hmac.Equal(sum[:n], msg[off:off+n]) {
		return ErrAuthFailed
	}
	return nil
}

// Sign is the package-level Sign with this key.
func (a *Authenticator) Sign(msg []byte) error {
	alg, off, n, err := authFields(msg)
	if err != nil {
		return err
	}
	if alg == AuthNone {
		if n != 0 {
			return ErrBadLength
		}
		return nil
	}
	if n != alg.DigestLen() {
		return ErrBadLength
	}
	var buf [sha256.Size]byte
	sum, err := a.sum(msg, off, n, alg, buf[:0])
	if err != nil {
		return err
	}
	copy(msg[off:off+n], sum)
	return nil
}

// EncodeSigned is the package-level EncodeSigned with this key.
func (a *Authenticator) EncodeSigned(m Message) ([]byte, error) {
	am, ok := m.(authMessage)
	if !ok {
		return nil, encErr(m.Type().String(), "authentication", ErrBadValue)
	}
	ab := am.authBody()
	n := ab.Algorithm.DigestLen()
	if ab.Algorithm != AuthNone && n == 0 {
		return nil, encErr(m.Type().String(), "Algorithm ID", ErrBadAlgorithm)
	}
	ab.AuthData = make([]byte, n)
	b, err := Encode(m)
	if err != nil {
		return nil, err
	}
	if err := a.Sign(b); err != nil {
		return nil, err
	}
	copy(ab.AuthData, b[authOffset:])
	return b, nil
}
