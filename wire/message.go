package wire

import (
	"encoding/hex"
	"fmt"
	"strconv"
)

// MessageType is the 4-bit Type of a control message (RFC 9301 §5.1).
type MessageType uint8

// Control message types.
const (
	TypeReserved        MessageType = 0
	TypeMapRequest      MessageType = 1
	TypeMapReply        MessageType = 2
	TypeMapRegister     MessageType = 3
	TypeMapNotify       MessageType = 4
	TypeMapNotifyAck    MessageType = 5
	TypeMapReferral     MessageType = 6
	TypeInfo            MessageType = 7 // Info-Request / Info-Reply (NAT-traversal draft)
	TypeECM             MessageType = 8
	TypeSharedExtension MessageType = 15 // RFC 9304
)

var typeNames = [16]string{"Reserved", "Map-Request", "Map-Reply", "Map-Register", "Map-Notify",
	"Map-Notify-Ack", "Map-Referral", "Info", "ECM", "Type-9", "Type-10", "Type-11", "Type-12",
	"Type-13", "Type-14", "Shared-Extension"}

func (t MessageType) String() string {
	if t < 16 {
		return typeNames[t]
	}
	return "Type-" + strconv.Itoa(int(t))
}

// typeLabels are the lower-case names metrics and logs use (the "type"
// label of lisp_control_messages_received_total): operators graph them, so
// they never change.
var typeLabels = [16]string{"type-Reserved", "map-request", "map-reply", "map-register", "map-notify",
	"map-notify-ack", "map-referral", "info", "ecm", "type-Type-9", "type-Type-10", "type-Type-11",
	"type-Type-12", "type-Type-13", "type-Type-14", "shared-extension"}

// Label is the type's metric label: "map-request", "map-reply", ...; an
// unassigned type is "type-" and its String.
func (t MessageType) Label() string {
	if t < 16 {
		return typeLabels[t]
	}
	return "type-" + t.String()
}

// Message is any LISP control message.
type Message interface {
	Type() MessageType
	// Len is the exact encoded size.
	Len() int
	// Append encodes the message onto b.
	Append(b []byte) ([]byte, error)
	// String is a one-line, tcpdump-like summary.
	String() string
}

// Encode returns the wire bytes of m.
func Encode(m Message) ([]byte, error) {
	return m.Append(make([]byte, 0, m.Len()))
}

// PeekType returns the message type of a control message without decoding it.
func PeekType(b []byte) (MessageType, bool) {
	if len(b) == 0 {
		return 0, false
	}
	return MessageType(b[0] >> 4), true
}

// Decode decodes one control message (a ControlPort payload). Unassigned types
// 9-14 decode to *UnknownMessage without error, so callers can count them by
// type; type 0 is an error.
func Decode(b []byte) (Message, error) {
	return decodeMessage(b, 0, 0)
}

// maxECMDepth bounds ECMs inside ECMs (RFC 9300 recommends at most 2 headers).
const maxECMDepth = 2

func decodeMessage(b []byte, base, depth int) (Message, error) {
	t, ok := PeekType(b)
	if !ok {
		return nil, &DecodeError{Msg: "message", Field: "Type", Offset: base, Err: ErrTruncated}
	}
	switch t {
	case TypeMapRequest:
		return decodeMapRequest(b, base)
	case TypeMapReply:
		return decodeMapReply(b, base)
	case TypeMapRegister:
		return decodeInto(&MapRegister{}, b, base)
	case TypeMapNotify:
		return decodeInto(&MapNotify{}, b, base)
	case TypeMapNotifyAck:
		return decodeInto(&MapNotifyAck{}, b, base)
	case TypeMapReferral:
		return decodeMapReferral(b, base)
	case TypeInfo:
		return decodeInfo(b, base)
	case TypeECM:
		return decodeECM(b, base, depth)
	case TypeSharedExtension:
		return decodeSharedExtension(b, base)
	case TypeReserved:
		return nil, &DecodeError{Msg: "message", Field: "Type", Offset: base, Err: ErrUnknownType}
	}
	return &UnknownMessage{MsgType: t, Data: append([]byte(nil), b...)}, nil
}

// decodeInto runs m's decoder and returns nil rather than a half-filled
// message on error.
func decodeInto[M interface {
	Message
	decode(b []byte, base int) error
}](m M, b []byte, base int) (Message, error) {
	if err := m.decode(b, base); err != nil {
		return nil, err
	}
	return m, nil
}

// UnknownMessage is a message of an unassigned type (9-14), kept whole.
type UnknownMessage struct {
	MsgType MessageType
	Data    []byte // the whole message, type byte included
}

func (m *UnknownMessage) Type() MessageType { return m.MsgType }
func (m *UnknownMessage) Len() int          { return len(m.Data) }
func (m *UnknownMessage) Append(b []byte) ([]byte, error) {
	if len(m.Data) == 0 || MessageType(m.Data[0]>>4) != m.MsgType {
		return b, encErr("unknown message", "Type", ErrBadValue)
	}
	return append(b, m.Data...), nil
}
func (m *UnknownMessage) String() string {
	return fmt.Sprintf("Unknown type %d, %d bytes", m.MsgType, len(m.Data))
}

// SharedExtension is the LISP Shared Extension Message (type 15, RFC 9304):
// a 12-bit sub-type and an opaque body.
type SharedExtension struct {
	SubType uint16
	Data    []byte // everything after the first 2 bytes
}

func (m *SharedExtension) Type() MessageType { return TypeSharedExtension }
func (m *SharedExtension) Len() int          { return 2 + len(m.Data) }
func (m *SharedExtension) Append(b []byte) ([]byte, error) {
	if m.SubType > 0xfff {
		return b, encErr("Shared-Extension", "Sub-type", ErrBadValue)
	}
	return append(put16(b, uint16(TypeSharedExtension)<<12|m.SubType), m.Data...), nil
}
func (m *SharedExtension) String() string {
	return fmt.Sprintf("Shared-Extension sub-type %d, %d bytes: %s", m.SubType, len(m.Data), shortHex(m.Data))
}

func decodeSharedExtension(b []byte, base int) (*SharedExtension, error) {
	r := newReader(b, base, "Shared-Extension")
	w, err := r.u16("Sub-type")
	if err != nil {
		return nil, err
	}
	d, _ := r.bytes(r.remaining(), "body")
	return &SharedExtension{SubType: w & 0xfff, Data: d}, nil
}

func shortHex(b []byte) string {
	if len(b) > 16 {
		return hex.EncodeToString(b[:16]) + "…"
	}
	return hex.EncodeToString(b)
}

// appendRecords encodes records and checks the 8-bit Record Count.
func appendRecords(b []byte, recs []EIDRecord, referral bool) ([]byte, error) {
	var err error
	for i := range recs {
		if b, err = recs[i].appendTo(b, referral); err != nil {
			return b, err
		}
	}
	return b, nil
}

func recordsLen(recs []EIDRecord, referral bool) int {
	n := 0
	for i := range recs {
		n += recs[i].len(referral)
	}
	return n
}

func decodeRecords(r *reader, count int, referral bool) ([]EIDRecord, error) {
	if count == 0 {
		return nil, nil
	}
	if r.remaining() < count*12 { // smallest record: 10 bytes + AFI 0
		return nil, r.fail("Record Count", ErrTruncated)
	}
	recs := make([]EIDRecord, count)
	for i := range recs {
		var err error
		if recs[i], err = decodeRecord(r, referral); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

func recordsString(recs []EIDRecord) string {
	s := ""
	for i := range recs {
		s += " {" + recs[i].String() + "}"
	}
	return s
}
