package wire

import (
	"fmt"
	"strings"
)

// Map-Reply header bits (RFC 9301 §5.4).
const (
	mrepP    = 0x08 // RLOC-probe reply
	mrepE    = 0x04 // ETR is echo-nonce capable
	mrepS    = 0x02 // LISP-SEC authentication data appended
	mrepRsvd = 0x01
)

// MapReply is a Map-Reply (type 2).
type MapReply struct {
	Probe      bool // P
	EchoNonce  bool // E
	Security   bool // S: SecurityAD holds the LISP-SEC Map-Reply AD
	Reserved0  uint8
	Reserved   uint16 // bytes 1-2
	Nonce      uint64
	Records    []EIDRecord
	SecurityAD []byte // LISP-SEC data after the records as received (RFC 9303 §6.2); AuthData decodes it
}

// Type implements Message.
func (m *MapReply) Type() MessageType { return TypeMapReply }

// Len implements Message.
func (m *MapReply) Len() int { return 12 + recordsLen(m.Records, false) + len(m.SecurityAD) }

// Append implements Message.
func (m *MapReply) Append(b []byte) ([]byte, error) {
	if len(m.Records) > 255 {
		return b, encErr("Map-Reply", "Record Count", ErrTooMany)
	}
	if len(m.SecurityAD) > 0 && !m.Security {
		return b, encErr("Map-Reply", "S bit", ErrBadValue)
	}
	b0 := byte(TypeMapReply)<<4 | flag(m.Probe, mrepP) | flag(m.EchoNonce, mrepE) | flag(m.Security, mrepS) | m.Reserved0&mrepRsvd
	b = put16(append(b, b0), m.Reserved)
	b = put64(append(b, byte(len(m.Records))), m.Nonce)
	b, err := appendRecords(b, m.Records, false)
	if err != nil {
		return b, err
	}
	return append(b, m.SecurityAD...), nil
}

// DecodeMapReply decodes a Map-Reply.
func DecodeMapReply(b []byte) (*MapReply, error) { return decodeMapReply(b, 0) }

func decodeMapReply(b []byte, base int) (*MapReply, error) {
	r := newReader(b, base, "Map-Reply")
	if err := r.need(12, "header"); err != nil {
		return nil, err
	}
	m := &MapReply{Probe: b[0]&mrepP != 0, EchoNonce: b[0]&mrepE != 0, Security: b[0]&mrepS != 0,
		Reserved0: b[0] & mrepRsvd, Reserved: uint16(b[1])<<8 | uint16(b[2])}
	count := int(b[3])
	r.off = 4
	m.Nonce, _ = r.u64("Nonce")
	var err error
	if m.Records, err = decodeRecords(&r, count, false); err != nil {
		return nil, err
	}
	if m.Security && r.remaining() > 0 {
		// Kept as received and checked only by AuthData: the records are
		// usable whatever follows them, and a reply in a LISP-SEC dialect
		// we do not read must still reach an ITR that does not ask for it.
		m.SecurityAD, _ = r.bytes(r.remaining(), "LISP-SEC AD")
	}
	if err := r.done("end of message"); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *MapReply) String() string {
	var sb strings.Builder
	sb.WriteString("Map-Reply")
	var fl []string
	if m.Probe {
		fl = append(fl, "P(probe-reply)")
	}
	if m.EchoNonce {
		fl = append(fl, "E(echo-nonce)")
	}
	if m.Security {
		fl = append(fl, "S(lisp-sec)")
	}
	if len(fl) > 0 {
		fmt.Fprintf(&sb, " [%s]", strings.Join(fl, " "))
	}
	fmt.Fprintf(&sb, " nonce %#016x %d records%s", m.Nonce, len(m.Records), recordsString(m.Records))
	if len(m.SecurityAD) > 0 {
		if ad, err := m.AuthData(); err == nil {
			sb.WriteString(" " + ad.String())
		} else {
			fmt.Fprintf(&sb, " lisp-sec(malformed, %d bytes)", len(m.SecurityAD))
		}
	}
	return sb.String()
}
