package loadgen

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/wire"
)

// LISP-SEC in Request mode (RFC 9303 §6.4): every Map-Request carries the
// ITR-OTK wrapped with the key shared with the Map-Resolver, and only a
// Map-Reply whose PKT HMAC verifies with the MS-OTK counts as an answer.
//
// The load generator takes its cryptography from internal/lispsec, which
// is pure (wire and the standard library, no sockets, clocks or daemon
// state), so bench still drives any implementation. It draws one OTK per
// run rather than per message: the Map-Server's work (unwrap, EID-AD,
// MS-OTK, PKT HMAC) is the same for a fresh key, and the generator's own
// per-message cost stays the key wrap, which depends on the nonce anyway.

// Fixed algorithms of the protected requests; the reply must use them
// (RFC 9303 §6.9: a requested algorithm is the one used).
const (
	secHMAC = wire.SecHMACSHA256128
	secKDF  = wire.SecKDFHKDFSHA256
	secWrap = wire.SecWrapAESKWHKDF
)

// secRequest is the per-run LISP-SEC state of Request mode.
type secRequest struct {
	key   lispsec.Key
	otk   lispsec.OTK
	msOTK lispsec.OTK
}

func newSecRequest(keyID uint8, secret []byte) (*secRequest, error) {
	otk, err := lispsec.NewOTK(nil)
	if err != nil {
		return nil, err
	}
	ms, err := lispsec.DeriveMSOTK(secKDF, otk)
	if err != nil {
		return nil, err
	}
	return &secRequest{key: lispsec.Key{ID: keyID, Secret: secret}, otk: otk, msOTK: ms}, nil
}

// authData is the ECM AD of the template (the OTK wrapped for nonce; fill
// rewraps it per message).
func (s *secRequest) authData(nonce uint64) (*wire.ECMAuthData, error) {
	w, err := lispsec.WrapOTK(secWrap, s.otk, s.key.Secret, nonce)
	if err != nil {
		return nil, err
	}
	return &wire.ECMAuthData{RequestedHMAC: secHMAC, KeyID: s.key.ID, Wrap: secWrap, OTK: w,
		EID: wire.EIDAuthData{KDFOnly: true, KDF: secKDF}}, nil
}

// wrap writes the OTK wrapped for nonce at dst.
func (s *secRequest) wrap(dst []byte, nonce uint64) {
	w, err := lispsec.WrapOTK(secWrap, s.otk, s.key.Secret, nonce)
	if err != nil {
		// Only a missing secret fails, and check refuses that.
		clear(dst[:wire.WrappedOTKLen])
		return
	}
	copy(dst, w[:])
}

// replyVerifier checks the PKT HMAC of Map-Replies with one reused HMAC
// state keyed with the MS-OTK; one per receiving goroutine.
type replyVerifier struct {
	h     hash.Hash
	sum   [sha256.Size]byte
	saved [16]byte
}

func (s *secRequest) verifier() *replyVerifier {
	return &replyVerifier{h: hmac.New(sha256.New, s.msOTK[:])}
}

// mrepS is the Map-Reply's S bit: LISP-SEC AD appended.
const mrepS = 0x02

// verify reports whether b, a Map-Reply, is signed (S) and ends in a PKT-AD
// of HMAC-SHA-256-128 (PKT HMAC ID, then the HMAC) whose HMAC over the
// whole message, the HMAC taken as zero (RFC 9303 §6.8), is ours. b is
// modified during the computation and restored.
func (v *replyVerifier) verify(b []byte) bool {
	n := secHMAC.Size()
	if len(b) < 12+4+n || b[0]&mrepS == 0 || wire.SecHMAC(binary.BigEndian.Uint16(b[len(b)-n-2:])) != secHMAC {
		return false
	}
	mac := macZeroed(v.h, &v.sum, v.saved[:n], b, b[len(b)-n:])
	return hmac.Equal(mac[:n], v.saved[:n])
}
