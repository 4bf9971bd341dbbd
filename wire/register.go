package wire

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Map-Register bits (RFC 9301 §5.6).
const (
	regP     = 0x08 // byte 0: proxy Map-Reply wanted
	regS     = 0x04 // byte 0: LISP-SEC capable
	regI     = 0x02 // byte 0: xTR-ID and Site-ID present
	regRsvd0 = 0x01 // byte 0: reserved (legacy "R: built for RTR")
	regE     = 0x10 // byte 2: EID-notify
	regT     = 0x08 // byte 2: use Record TTL as the registration timeout
	regA     = 0x04 // byte 2: merge request
	regM     = 0x01 // byte 2: want Map-Notify
	regRsvd2 = 0xe2 // byte 2: reserved bits, kept as received

	notifyI     = 0x08 // Map-Notify byte 0: xTR-ID and Site-ID present (NAT draft, common in the field)
	notifyRsvd0 = 0x07
)

// AuthBody is the part shared by Map-Register, Map-Notify and Map-Notify-Ack:
// nonce, authentication fields, records and the xTR-ID/Site-ID trailer.
type AuthBody struct {
	Nonce     uint64
	KeyID     uint8
	Algorithm AuthAlg
	AuthData  []byte // as long as the Authentication Data Length says
	Records   []EIDRecord
	HasXTRID  bool
	XTRID     [16]byte
	SiteID    uint64
	// Trailing holds bytes after the last record when the I bit is clear,
	// kept as received (tcpdump's sample Map-Notify carries an xTR-ID
	// without the bit). The MAC covers them like any other byte.
	Trailing []byte
}

// authOffset is where the Authentication Data starts in all three messages.
const authOffset = 16

func (a *AuthBody) len() int {
	return 16 + len(a.AuthData) + recordsLen(a.Records, false) + xtrIDLen(a.HasXTRID, false) + len(a.Trailing)
}

func (a *AuthBody) appendTo(b []byte, msg string, count int) ([]byte, error) {
	if count > 255 {
		return b, encErr(msg, "Record Count", ErrTooMany)
	}
	if len(a.AuthData) > 0xffff {
		return b, encErr(msg, "Authentication Data Length", ErrBadLength)
	}
	b = append(b, byte(count))
	b = put64(b, a.Nonce)
	b = put16(append(b, a.KeyID, byte(a.Algorithm)), uint16(len(a.AuthData)))
	b = append(b, a.AuthData...)
	b, err := appendRecords(b, a.Records, false)
	if err != nil {
		return b, err
	}
	if a.HasXTRID && len(a.Trailing) > 0 {
		return b, encErr(msg, "trailing bytes with I bit", ErrBadValue)
	}
	return append(appendXTRID(b, a.HasXTRID, false, a.XTRID, a.SiteID), a.Trailing...), nil
}

func (a *AuthBody) decode(r *reader, count int) error {
	r.off = 4
	var err error
	if a.Nonce, err = r.u64("Nonce"); err != nil {
		return err
	}
	if err := r.need(4, "Key ID"); err != nil {
		return err
	}
	a.KeyID, _ = r.u8("Key ID")
	alg, _ := r.u8("Algorithm ID")
	a.Algorithm = AuthAlg(alg)
	n, _ := r.u16("Authentication Data Length")
	if a.AuthData, err = r.bytes(int(n), "Authentication Data"); err != nil {
		return err
	}
	if n == 0 {
		a.AuthData = nil
	}
	if a.Records, err = decodeRecords(r, count, false); err != nil {
		return err
	}
	if a.HasXTRID {
		if r.remaining() != 24 {
			return r.fail("xTR-ID/Site-ID", ErrBadLength)
		}
		copy(a.XTRID[:], r.b[r.off:])
		r.off += 16
		a.SiteID, _ = r.u64("Site-ID")
	} else if r.remaining() > 0 {
		a.Trailing, _ = r.bytes(r.remaining(), "trailing")
	}
	return nil
}

func (a *AuthBody) string() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, " nonce %#016x key-id %d %s auth-len %d %d records%s", a.Nonce, a.KeyID, a.Algorithm,
		len(a.AuthData), len(a.Records), recordsString(a.Records))
	if a.HasXTRID {
		fmt.Fprintf(&sb, " xtr-id %s site-id %d", hex.EncodeToString(a.XTRID[:]), a.SiteID)
	}
	if len(a.Trailing) > 0 {
		fmt.Fprintf(&sb, " +%d trailing bytes", len(a.Trailing))
	}
	return sb.String()
}

func (a *AuthBody) authBody() *AuthBody { return a }

// MapRegister is a Map-Register (type 3).
type MapRegister struct {
	ProxyReply    bool // P
	Security      bool // S
	Reserved0     uint8
	Reserved1     uint8
	Reserved2     uint8 // reserved bits of byte 2, as received
	EIDNotify     bool  // E
	UseTTL        bool  // T
	Merge         bool  // a
	WantMapNotify bool  // M
	AuthBody
}

// Type implements Message.
func (m *MapRegister) Type() MessageType { return TypeMapRegister }

// Len implements Message.
func (m *MapRegister) Len() int { return m.len() }

// Append implements Message.
func (m *MapRegister) Append(b []byte) ([]byte, error) {
	b0 := byte(TypeMapRegister)<<4 | flag(m.ProxyReply, regP) | flag(m.Security, regS) | flag(m.HasXTRID, regI) | m.Reserved0&regRsvd0
	b2 := m.Reserved2&regRsvd2 | flag(m.EIDNotify, regE) | flag(m.UseTTL, regT) | flag(m.Merge, regA) | flag(m.WantMapNotify, regM)
	return m.appendTo(append(b, b0, m.Reserved1, b2), "Map-Register", len(m.Records))
}

func (m *MapRegister) decode(b []byte, base int) error {
	r := newReader(b, base, "Map-Register")
	if err := r.need(4, "header"); err != nil {
		return err
	}
	m.ProxyReply, m.Security, m.HasXTRID, m.Reserved0 = b[0]&regP != 0, b[0]&regS != 0, b[0]&regI != 0, b[0]&regRsvd0
	m.Reserved1 = b[1]
	m.EIDNotify, m.UseTTL, m.Merge, m.WantMapNotify = b[2]&regE != 0, b[2]&regT != 0, b[2]&regA != 0, b[2]&regM != 0
	m.Reserved2 = b[2] & regRsvd2
	return m.AuthBody.decode(&r, int(b[3]))
}

func (m *MapRegister) String() string {
	var fl []string
	for _, f := range []struct {
		on   bool
		name string
	}{{m.ProxyReply, "P(proxy)"}, {m.Security, "S(lisp-sec)"}, {m.HasXTRID, "I"}, {m.EIDNotify, "E(eid-notify)"},
		{m.UseTTL, "T(ttl)"}, {m.Merge, "a(merge)"}, {m.WantMapNotify, "M(want-map-notify)"}} {
		if f.on {
			fl = append(fl, f.name)
		}
	}
	s := "Map-Register"
	if len(fl) > 0 {
		s += " [" + strings.Join(fl, " ") + "]"
	}
	return s + m.string()
}

// MapNotify is a Map-Notify (type 4): the acknowledgement of a Map-Register
// with M set, or an unsolicited notification (pub/sub, mobility).
type MapNotify struct {
	Reserved0 uint8 // reserved bits of byte 0 (0x04 is the NAT draft's R)
	Reserved  uint16
	AuthBody
}

// Type implements Message.
func (m *MapNotify) Type() MessageType { return TypeMapNotify }

// Len implements Message.
func (m *MapNotify) Len() int { return m.len() }

// Append implements Message.
func (m *MapNotify) Append(b []byte) ([]byte, error) {
	return appendNotify(b, TypeMapNotify, m.Reserved0, m.Reserved, &m.AuthBody)
}

func appendNotify(b []byte, t MessageType, rsvd0 uint8, rsvd uint16, a *AuthBody) ([]byte, error) {
	b0 := byte(t)<<4 | flag(a.HasXTRID, notifyI) | rsvd0&notifyRsvd0
	return a.appendTo(put16(append(b, b0), rsvd), t.String(), len(a.Records))
}

func decodeNotify(b []byte, base int, t MessageType, rsvd0 *uint8, rsvd *uint16, a *AuthBody) error {
	r := newReader(b, base, t.String())
	if err := r.need(4, "header"); err != nil {
		return err
	}
	a.HasXTRID, *rsvd0, *rsvd = b[0]&notifyI != 0, b[0]&notifyRsvd0, uint16(b[1])<<8|uint16(b[2])
	return a.decode(&r, int(b[3]))
}

func (m *MapNotify) decode(b []byte, base int) error {
	return decodeNotify(b, base, TypeMapNotify, &m.Reserved0, &m.Reserved, &m.AuthBody)
}

func (m *MapNotify) String() string { return "Map-Notify" + xtrFlag(m.HasXTRID) + m.string() }

func xtrFlag(has bool) string {
	if has {
		return " [I]"
	}
	return ""
}

// MapNotifyAck is a Map-Notify-Ack (type 5), the answer to an unsolicited
// Map-Notify.
type MapNotifyAck struct {
	Reserved0 uint8
	Reserved  uint16
	AuthBody
}

// Type implements Message.
func (m *MapNotifyAck) Type() MessageType { return TypeMapNotifyAck }

// Len implements Message.
func (m *MapNotifyAck) Len() int { return m.len() }

// Append implements Message.
func (m *MapNotifyAck) Append(b []byte) ([]byte, error) {
	return appendNotify(b, TypeMapNotifyAck, m.Reserved0, m.Reserved, &m.AuthBody)
}

func (m *MapNotifyAck) decode(b []byte, base int) error {
	return decodeNotify(b, base, TypeMapNotifyAck, &m.Reserved0, &m.Reserved, &m.AuthBody)
}

func (m *MapNotifyAck) String() string { return "Map-Notify-Ack" + xtrFlag(m.HasXTRID) + m.string() }
