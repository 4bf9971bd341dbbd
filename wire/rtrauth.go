package wire

import (
	"crypto/hmac"
	"encoding/binary"
	"fmt"
)

// MS-RTR Authentication Data (draft-ietf-lisp-nat-traversal §4.4, §5.2,
// §5.3): what a Map-Server puts between the ECM header and the inner IP
// header, with S set, when it sends an RTR the Map-Notify of a relayed
// Map-Register and shares a key with that RTR.
//
//	AD Type = 2 (8) | Reserved (24)
//	MS-RTR Key ID (16) | MS-RTR Auth. Data Length (16, bytes of the MAC)
//	MS-RTR Authentication Data
//
// The draft says the MAC covers "the entire Map-Notify payload"; we read
// it as the encapsulated Map-Notify message as encoded (from its type
// byte to its last record, its own authentication data included), not
// the inner IP and UDP headers. The AD names no algorithm: the key ID
// selects the key, and the key its algorithm (as with Map-Register keys).

// RTRADType is the ECM AD Type of the MS-RTR authentication data.
const RTRADType uint8 = 2

// RTRAuthData is the MS-RTR Authentication Data of an ECM.
type RTRAuthData struct {
	Reserved uint32 // the 24 reserved bits, as received
	KeyID    uint16
	MAC      []byte
}

// Len is the encoded size.
func (a *RTRAuthData) Len() int { return 8 + len(a.MAC) }

// Append encodes the AD onto b.
func (a *RTRAuthData) Append(b []byte) ([]byte, error) {
	const msg = "MS-RTR AD"
	if a.Reserved > 0xffffff {
		return b, encErr(msg, "Reserved", ErrBadValue)
	}
	if len(a.MAC) > 0xffff {
		return b, encErr(msg, "MS-RTR Auth. Data Length", ErrBadLength)
	}
	b = put32(b, uint32(RTRADType)<<24|a.Reserved)
	b = put16(put16(b, a.KeyID), uint16(len(a.MAC)))
	return append(b, a.MAC...), nil
}

// splitRTRAuthData returns the length of the MS-RTR AD at the start of b.
func splitRTRAuthData(b []byte, base int) (int, error) {
	r := newReader(b, base, "MS-RTR AD")
	t, err := r.u8("AD Type")
	if err != nil {
		return 0, err
	}
	if t != RTRADType {
		r.off--
		return 0, r.fail("AD Type", ErrBadValue)
	}
	if err := r.need(7, "header"); err != nil {
		return 0, err
	}
	r.off = 6
	l, _ := r.u16("MS-RTR Auth. Data Length")
	if err := r.need(int(l), "MS-RTR Authentication Data"); err != nil {
		return 0, err
	}
	return 8 + int(l), nil
}

// DecodeRTRAuthData decodes an MS-RTR AD that is exactly b.
func DecodeRTRAuthData(b []byte) (*RTRAuthData, error) { return decodeRTRAuthData(b, 0) }

func decodeRTRAuthData(b []byte, base int) (*RTRAuthData, error) {
	n, err := splitRTRAuthData(b, base)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, &DecodeError{Msg: "MS-RTR AD", Field: "after MS-RTR Authentication Data", Offset: base + n, Err: ErrTrailingBytes}
	}
	a := &RTRAuthData{Reserved: binary.BigEndian.Uint32(b) & 0xffffff, KeyID: binary.BigEndian.Uint16(b[4:])}
	if n > 8 {
		a.MAC = append([]byte(nil), b[8:n]...)
	}
	return a, nil
}

func (a *RTRAuthData) String() string {
	return fmt.Sprintf("ms-rtr key-id %d mac %s", a.KeyID, shortHex(a.MAC))
}

// RTRKey is a key a Map-Server shares with an RTR for the MS-RTR AD:
// its Key ID, algorithm (HMAC-SHA-1-96 or HMAC-SHA-256-128) and secret.
type RTRKey struct {
	ID        uint16
	Algorithm AuthAlg
	Secret    []byte
}

// Sign computes the MS-RTR AD of notify, the encoded Map-Notify. Like our
// Map-Register MACs it carries the whole digest (20 or 32 bytes); Verify
// also takes it truncated to the 96 or 128 bits the algorithm names.
func (k RTRKey) Sign(notify []byte) (*RTRAuthData, error) {
	sum, err := k.mac(notify)
	if err != nil {
		return nil, err
	}
	return &RTRAuthData{KeyID: k.ID, MAC: sum}, nil
}

// mac is the HMAC of notify with the key: the Map-Register MAC's
// computation with no field zeroed, which refuses any algorithm but
// HMAC-SHA-1-96 and HMAC-SHA-256-128 (the draft's MUST and SHOULD).
func (k RTRKey) mac(notify []byte) ([]byte, error) {
	return mac(notify, 0, 0, k.Algorithm, k.Secret, AuthOptions{})
}

// Verify checks a's MAC over notify: ErrNoKey when a names another key
// ID, ErrBadLength when the MAC is neither the whole digest nor the
// truncated one, ErrAuthFailed when it does not match.
func (k RTRKey) Verify(a *RTRAuthData, notify []byte) error {
	sum, err := k.mac(notify)
	if err != nil {
		return err
	}
	if a.KeyID != k.ID {
		return ErrNoKey
	}
	if len(a.MAC) != len(sum) && len(a.MAC) != truncatedLen(k.Algorithm) {
		return ErrBadLength
	}
	if !hmac.Equal(a.MAC, sum[:len(a.MAC)]) {
		return ErrAuthFailed
	}
	return nil
}

// RTRAuthData decodes the ECM's MS-RTR AD; ErrNoAuthData when it has none.
func (m *ECM) RTRAuthData() (*RTRAuthData, error) {
	if !m.Security || len(m.SecurityAD) == 0 {
		return nil, &DecodeError{Msg: "ECM", Field: "MS-RTR AD", Offset: 4, Err: ErrNoAuthData}
	}
	return decodeRTRAuthData(m.SecurityAD, 4)
}

// SetRTRAuthData encodes a into the ECM and sets S.
func (m *ECM) SetRTRAuthData(a *RTRAuthData) error {
	b, err := a.Append(make([]byte, 0, a.Len()))
	if err != nil {
		return err
	}
	m.Security, m.SecurityAD = true, b
	return nil
}
