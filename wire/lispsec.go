package wire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// LISP-SEC (RFC 9303) Authentication Data: what an ECM carries between its
// header and the inner IP header when S is set (§6.1), and what a Map-Reply
// carries after its records when S is set (§6.2). The codec only frames
// them; the keys, HMACs and key wrapping live in internal/lispsec.
//
// RFC 9303 leaves the extent of its three length fields unclear; we read
// each as the length of the whole block it opens, the field itself
// included, the one reading under which "the ITR MUST set the EID-AD
// Length to 4 bytes, as it only fills the KDF ID field" holds:
//
//	OTK Length    = 2 + 1 (Key ID) + 1 (OTK Wrap. ID) + 8 (Preamble) + 16 (OTK) = 28
//	EID-AD Length = from itself to the end of the EID HMAC (4 for the ITR's)
//	PKT-AD Length = from itself to the end of the PKT HMAC

// SecADType is the ECM AD Type and MR AD Type of LISP-SEC (RFC 9303 §8.1,
// §8.2); no other type is defined, and without it the layout is unknown.
const SecADType uint8 = 1

// OTKLen is the size of a One-Time Key (128 bits) and WrappedOTKLen that
// of its wrapped form on the wire: the 64-bit preamble and the key.
const (
	OTKLen        = 16
	WrappedOTKLen = 8 + OTKLen
	otkADLen      = 4 + WrappedOTKLen
)

// SecHMAC is a LISP-SEC HMAC ID (RFC 9303 §8.3): the Requested HMAC ID,
// EID HMAC ID and PKT HMAC ID.
type SecHMAC uint16

// LISP-SEC HMAC IDs.
const (
	SecHMACNone      SecHMAC = 0 // NOPREF in a request; "none" elsewhere
	SecHMACSHA1_96   SecHMAC = 1 // AUTH-HMAC-SHA-1-96
	SecHMACSHA256128 SecHMAC = 2 // AUTH-HMAC-SHA-256-128
)

// Size is the length of the HMAC the ID names (truncated as its name says),
// 0 for none or an unknown ID.
func (h SecHMAC) Size() int {
	switch h {
	case SecHMACSHA1_96:
		return 12
	case SecHMACSHA256128:
		return 16
	}
	return 0
}

func (h SecHMAC) String() string {
	switch h {
	case SecHMACNone:
		return "none"
	case SecHMACSHA1_96:
		return "hmac-sha-1-96"
	case SecHMACSHA256128:
		return "hmac-sha-256-128"
	}
	return "hmac-" + strconv.Itoa(int(h))
}

// SecKDF is a LISP-SEC Key Derivation Function ID (RFC 9303 §8.5), the one
// that derives the MS-OTK from the ITR-OTK.
type SecKDF uint16

// LISP-SEC KDF IDs.
const (
	SecKDFNone       SecKDF = 0 // NOPREF
	SecKDFHKDFSHA1   SecKDF = 1 // HKDF-SHA1-128
	SecKDFHKDFSHA256 SecKDF = 2 // HKDF-SHA256
)

func (k SecKDF) String() string {
	switch k {
	case SecKDFNone:
		return "none"
	case SecKDFHKDFSHA1:
		return "hkdf-sha1-128"
	case SecKDFHKDFSHA256:
		return "hkdf-sha256"
	}
	return "kdf-" + strconv.Itoa(int(k))
}

// SecKeyWrap is a LISP-SEC OTK Wrapping ID (RFC 9303 §8.4). The registry
// has 16-bit values but the ECM AD field is 8 bits wide.
type SecKeyWrap uint8

// LISP-SEC OTK wrapping IDs.
const (
	SecWrapReserved  SecKeyWrap = 0
	SecWrapNull      SecKeyWrap = 1 // NULL-KEY-WRAP-128: the OTK in clear, preamble zero
	SecWrapAESKWHKDF SecKeyWrap = 2 // AES-KEY-WRAP-128+HKDF-SHA256
)

func (w SecKeyWrap) String() string {
	switch w {
	case SecWrapReserved:
		return "reserved"
	case SecWrapNull:
		return "null-key-wrap-128"
	case SecWrapAESKWHKDF:
		return "aes-key-wrap-128+hkdf-sha256"
	}
	return "wrap-" + strconv.Itoa(int(w))
}

// EIDADRecord is one EID-Prefix of an EID-AD: a prefix the Map-Server
// authorizes for the requested EID.
type EIDADRecord struct {
	Reserved uint8 // the Unassigned byte, as received
	MaskLen  uint8
	EID      Address
}

// Prefix returns the record's EID as an instance ID and an IP prefix; ok is
// false for non-IP EIDs.
func (r *EIDADRecord) Prefix() (iid uint32, p netip.Prefix, ok bool) {
	rec := EIDRecord{MaskLen: r.MaskLen, EID: r.EID}
	return rec.Prefix()
}

func (r *EIDADRecord) String() string { return prefixString(r.EID, r.MaskLen) }

// EIDAuthData is the EID-AD (RFC 9303 §6.1): the prefixes the Map-Server
// authorizes and its HMAC over them keyed with the ITR-OTK. The ETR copies
// it unchanged from the ECM into the Map-Reply.
type EIDAuthData struct {
	KDF SecKDF
	// KDFOnly is the ITR's EID-AD (EID-AD Length 4): the KDF ID and nothing
	// else; the Map-Server fills in the rest.
	KDFOnly     bool
	ETRCantSign bool  // E: an authoritative ETR did not register with S
	Reserved    uint8 // the 7 unassigned bits after E, as received
	HMACID      SecHMAC
	Records     []EIDADRecord
	HMAC        []byte // EID HMAC: the Map-Server's signature
}

// Len is the encoded size, the EID-AD Length field.
func (e *EIDAuthData) Len() int {
	if e.KDFOnly {
		return 4
	}
	n := 8 + len(e.HMAC)
	for i := range e.Records {
		n += 2 + e.Records[i].EID.Len()
	}
	return n
}

// Append encodes the EID-AD onto b.
func (e *EIDAuthData) Append(b []byte) ([]byte, error) {
	const msg = "EID-AD"
	if e.KDFOnly {
		if e.ETRCantSign || e.Reserved != 0 || e.HMACID != 0 || len(e.Records) > 0 || len(e.HMAC) > 0 {
			return b, encErr(msg, "KDF-only EID-AD with more fields", ErrBadValue)
		}
		return put16(put16(b, 4), uint16(e.KDF)), nil
	}
	if len(e.Records) > 255 {
		return b, encErr(msg, "Record Count", ErrTooMany)
	}
	if e.Reserved > 0x7f {
		return b, encErr(msg, "Unassigned", ErrBadValue)
	}
	n := e.Len()
	if n > 0xffff {
		return b, encErr(msg, "EID-AD Length", ErrBadLength)
	}
	b = put16(put16(b, uint16(n)), uint16(e.KDF))
	b = put16(append(b, byte(len(e.Records)), flag(e.ETRCantSign, 0x80)|e.Reserved), uint16(e.HMACID))
	var err error
	for i := range e.Records {
		b = append(b, e.Records[i].Reserved, e.Records[i].MaskLen)
		if b, err = e.Records[i].EID.Append(b); err != nil {
			return b, err
		}
	}
	return append(b, e.HMAC...), nil
}

// decodeEIDAuthData decodes an EID-AD that is exactly b (its length field
// already checked against len(b) by the splitter).
func decodeEIDAuthData(b []byte, base int) (EIDAuthData, error) {
	r := newReader(b, base, "EID-AD")
	var e EIDAuthData
	r.off = 2
	kdf, err := r.u16("KDF ID")
	if err != nil {
		return e, err
	}
	e.KDF = SecKDF(kdf)
	if len(b) == 4 {
		e.KDFOnly = true
		return e, nil
	}
	if err := r.need(4, "EID-AD Length"); err != nil {
		return e, r.fail("EID-AD Length", ErrBadLength)
	}
	count, _ := r.u8("Record Count")
	fl, _ := r.u8("E")
	e.ETRCantSign, e.Reserved = fl&0x80 != 0, fl&0x7f
	h, _ := r.u16("EID HMAC ID")
	e.HMACID = SecHMAC(h)
	if count > 0 {
		if r.remaining() < int(count)*4 { // smallest record: 2 bytes + AFI 0
			return e, r.fail("Record Count", ErrTruncated)
		}
		e.Records = make([]EIDADRecord, count)
		for i := range e.Records {
			rec := &e.Records[i]
			rec.Reserved, _ = r.u8("Unassigned")
			rec.MaskLen, _ = r.u8("EID mask-len")
			if rec.EID, err = r.addressDepth("EID-Prefix", 0); err != nil {
				return e, err
			}
			if err := checkMaskLen(&r, rec.EID, rec.MaskLen); err != nil {
				return e, err
			}
		}
	}
	if r.remaining() > 0 {
		e.HMAC, _ = r.bytes(r.remaining(), "EID HMAC")
	}
	return e, nil
}

func (e *EIDAuthData) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "eid-ad kdf %s", e.KDF)
	if e.KDFOnly {
		return sb.String()
	}
	if e.ETRCantSign {
		sb.WriteString(" [E(etr-cant-sign)]")
	}
	fmt.Fprintf(&sb, " %s", e.HMACID)
	for i := range e.Records {
		sb.WriteString(" " + e.Records[i].String())
	}
	fmt.Fprintf(&sb, " hmac %s", shortHex(e.HMAC))
	return sb.String()
}

// ECMAuthData is the LISP-SEC ECM Authentication Data (RFC 9303 §6.1): the
// OTK-AD carrying the wrapped One-Time Key, and the EID-AD.
type ECMAuthData struct {
	Reserved      uint8 // the Unassigned byte, as received
	RequestedHMAC SecHMAC
	KeyID         uint8 // which pre-shared secret wraps the OTK
	Wrap          SecKeyWrap
	// OTK is the One-Time-Key Preamble (8 bytes) followed by the wrapped
	// One-Time Key (16): the 192-bit output of AES key wrap, or 8 zero
	// bytes and the OTK in clear with NULL-KEY-WRAP-128.
	OTK [WrappedOTKLen]byte
	EID EIDAuthData
}

// Len is the encoded size.
func (a *ECMAuthData) Len() int { return 4 + otkADLen + a.EID.Len() }

// Append encodes the ECM AD onto b.
func (a *ECMAuthData) Append(b []byte) ([]byte, error) {
	b = put16(append(b, SecADType, a.Reserved), uint16(a.RequestedHMAC))
	b = append(put16(b, otkADLen), a.KeyID, byte(a.Wrap))
	b = append(b, a.OTK[:]...)
	return a.EID.Append(b)
}

// splitECMAuthData finds the ECM AD at the start of b and returns its
// length and the EID-AD inside it, as on the wire.
func splitECMAuthData(b []byte, base int) (int, []byte, error) {
	r := newReader(b, base, "LISP-SEC ECM AD")
	t, err := r.u8("ECM AD Type")
	if err != nil {
		return 0, nil, err
	}
	if t != SecADType {
		r.off--
		return 0, nil, r.fail("ECM AD Type", ErrBadValue)
	}
	r.off = 4
	l, err := r.u16("OTK Length")
	if err != nil {
		return 0, nil, err
	}
	if l != otkADLen {
		r.off -= 2
		return 0, nil, r.fail("OTK Length", ErrBadLength)
	}
	r.off = 4 + otkADLen
	eid, err := splitEIDAD(&r)
	if err != nil {
		return 0, nil, err
	}
	return r.off, eid, nil
}

// splitEIDAD reads an EID-AD's length at r and advances past it.
func splitEIDAD(r *reader) ([]byte, error) {
	l, err := r.u16("EID-AD Length")
	if err != nil {
		return nil, err
	}
	r.off -= 2
	if l < 4 {
		return nil, r.fail("EID-AD Length", ErrBadLength)
	}
	if err := r.need(int(l), "EID-AD"); err != nil {
		return nil, err
	}
	eid := r.b[r.off : r.off+int(l)]
	r.off += int(l)
	return eid, nil
}

// DecodeECMAuthData decodes an ECM AD that is exactly b.
func DecodeECMAuthData(b []byte) (*ECMAuthData, error) { return decodeECMAuthData(b, 0) }

func decodeECMAuthData(b []byte, base int) (*ECMAuthData, error) {
	n, eid, err := splitECMAuthData(b, base)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, &DecodeError{Msg: "LISP-SEC ECM AD", Field: "after EID-AD", Offset: base + n, Err: ErrTrailingBytes}
	}
	a := &ECMAuthData{Reserved: b[1], RequestedHMAC: SecHMAC(binary.BigEndian.Uint16(b[2:])), KeyID: b[6],
		Wrap: SecKeyWrap(b[7])}
	copy(a.OTK[:], b[8:])
	if a.EID, err = decodeEIDAuthData(eid, base+4+otkADLen); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *ECMAuthData) String() string {
	return fmt.Sprintf("lisp-sec %s key-id %d %s otk %s, %s", a.RequestedHMAC, a.KeyID, a.Wrap,
		hex.EncodeToString(a.OTK[:4])+"…", a.EID.String())
}

// MapReplyAuthData is the LISP-SEC Map-Reply Authentication Data (RFC 9303
// §6.2): the EID-AD copied from the ECM, and the PKT-AD, the ETR's HMAC
// over the whole Map-Reply keyed with the MS-OTK.
type MapReplyAuthData struct {
	Reserved  uint32 // the 24 unassigned bits, as received
	EID       EIDAuthData
	PKTHMACID SecHMAC
	PKTHMAC   []byte
}

// Len is the encoded size.
func (a *MapReplyAuthData) Len() int { return 4 + a.EID.Len() + 4 + len(a.PKTHMAC) }

// Append encodes the Map-Reply AD onto b.
func (a *MapReplyAuthData) Append(b []byte) ([]byte, error) {
	if a.Reserved > 0xffffff {
		return b, encErr("LISP-SEC Map-Reply AD", "Unassigned", ErrBadValue)
	}
	if 4+len(a.PKTHMAC) > 0xffff {
		return b, encErr("LISP-SEC Map-Reply AD", "PKT-AD Length", ErrBadLength)
	}
	b = put32(b, uint32(SecADType)<<24|a.Reserved)
	b, err := a.EID.Append(b)
	if err != nil {
		return b, err
	}
	b = put16(put16(b, uint16(4+len(a.PKTHMAC))), uint16(a.PKTHMACID))
	return append(b, a.PKTHMAC...), nil
}

// SplitMapReplyAuthData checks the framing of a Map-Reply AD that is
// exactly b and returns its EID-AD and PKT-AD as on the wire.
func SplitMapReplyAuthData(b []byte) (eidAD, pktAD []byte, err error) {
	return splitMapReplyAuthData(b, 0)
}

func splitMapReplyAuthData(b []byte, base int) (eidAD, pktAD []byte, err error) {
	r := newReader(b, base, "LISP-SEC Map-Reply AD")
	t, err := r.u8("MR AD Type")
	if err != nil {
		return nil, nil, err
	}
	if t != SecADType {
		r.off--
		return nil, nil, r.fail("MR AD Type", ErrBadValue)
	}
	r.off = 4
	if eidAD, err = splitEIDAD(&r); err != nil {
		return nil, nil, err
	}
	l, err := r.u16("PKT-AD Length")
	if err != nil {
		return nil, nil, err
	}
	r.off -= 2
	if l < 4 {
		return nil, nil, r.fail("PKT-AD Length", ErrBadLength)
	}
	if err := r.need(int(l), "PKT-AD"); err != nil {
		return nil, nil, err
	}
	pktAD = r.b[r.off : r.off+int(l)]
	r.off += int(l)
	if err := r.done("after PKT-AD"); err != nil {
		return nil, nil, err
	}
	return eidAD, pktAD, nil
}

// DecodeMapReplyAuthData decodes a Map-Reply AD that is exactly b.
func DecodeMapReplyAuthData(b []byte) (*MapReplyAuthData, error) { return decodeMapReplyAuthData(b, 0) }

func decodeMapReplyAuthData(b []byte, base int) (*MapReplyAuthData, error) {
	eid, pkt, err := splitMapReplyAuthData(b, base)
	if err != nil {
		return nil, err
	}
	a := &MapReplyAuthData{Reserved: binary.BigEndian.Uint32(b) & 0xffffff,
		PKTHMACID: SecHMAC(binary.BigEndian.Uint16(pkt[2:]))}
	if a.EID, err = decodeEIDAuthData(eid, base+4); err != nil {
		return nil, err
	}
	if len(pkt) > 4 {
		a.PKTHMAC = append([]byte(nil), pkt[4:]...)
	}
	return a, nil
}

func (a *MapReplyAuthData) String() string {
	return fmt.Sprintf("lisp-sec %s, pkt-ad %s hmac %s", a.EID.String(), a.PKTHMACID, shortHex(a.PKTHMAC))
}

// AuthData decodes the ECM's LISP-SEC AD; ErrNoAuthData when it has none.
func (m *ECM) AuthData() (*ECMAuthData, error) {
	if !m.Security || len(m.SecurityAD) == 0 {
		return nil, &DecodeError{Msg: "ECM", Field: "LISP-SEC AD", Offset: 4, Err: ErrNoAuthData}
	}
	return decodeECMAuthData(m.SecurityAD, 4)
}

// SetAuthData encodes a into the ECM and sets S.
func (m *ECM) SetAuthData(a *ECMAuthData) error {
	b, err := a.Append(make([]byte, 0, a.Len()))
	if err != nil {
		return err
	}
	m.Security, m.SecurityAD = true, b
	return nil
}

// AuthData decodes the Map-Reply's LISP-SEC AD; ErrNoAuthData when it has
// none.
func (m *MapReply) AuthData() (*MapReplyAuthData, error) {
	off := 12 + recordsLen(m.Records, false)
	if !m.Security || len(m.SecurityAD) == 0 {
		return nil, &DecodeError{Msg: "Map-Reply", Field: "LISP-SEC AD", Offset: off, Err: ErrNoAuthData}
	}
	return decodeMapReplyAuthData(m.SecurityAD, off)
}

// SetAuthData encodes a into the Map-Reply and sets S.
func (m *MapReply) SetAuthData(a *MapReplyAuthData) error {
	b, err := a.Append(make([]byte, 0, a.Len()))
	if err != nil {
		return err
	}
	m.Security, m.SecurityAD = true, b
	return nil
}
