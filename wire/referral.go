package wire

import "fmt"

// Map-Referral actions (RFC 8111 §6.1), carried in the record's ACT field.
const (
	ReferralNodeReferral     Action = 0
	ReferralMSReferral       Action = 1
	ReferralMSAck            Action = 2
	ReferralMSNotRegistered  Action = 3
	ReferralDelegationHole   Action = 4
	ReferralNotAuthoritative Action = 5
)

var referralNames = [8]string{"node-referral", "ms-referral", "ms-ack", "ms-not-registered",
	"delegation-hole", "not-authoritative", "referral-6", "referral-7"}

// ReferralString names a Map-Referral action.
func ReferralString(a Action) string { return referralNames[a&7] }

// MapReferral is a Map-Referral (type 6, RFC 8111). Its records use the
// EID-record layout with Locator Count read as Referral Count, the I
// (incomplete) bit and DDT signatures.
type MapReferral struct {
	Reserved uint32 // 20 reserved bits after the type
	Nonce    uint64
	Records  []EIDRecord
}

// Type implements Message.
func (m *MapReferral) Type() MessageType { return TypeMapReferral }

// Len implements Message.
func (m *MapReferral) Len() int { return 12 + recordsLen(m.Records, true) }

// Append implements Message.
func (m *MapReferral) Append(b []byte) ([]byte, error) {
	if len(m.Records) > 255 {
		return b, encErr("Map-Referral", "Record Count", ErrTooMany)
	}
	b = put32(b, uint32(TypeMapReferral)<<28|(m.Reserved&0xfffff)<<8|uint32(len(m.Records)))
	return appendRecords(put64(b, m.Nonce), m.Records, true)
}

func decodeMapReferral(b []byte, base int) (*MapReferral, error) {
	r := newReader(b, base, "Map-Referral")
	if err := r.need(12, "header"); err != nil {
		return nil, err
	}
	w, _ := r.u32("header")
	m := &MapReferral{Reserved: w >> 8 & 0xfffff}
	m.Nonce, _ = r.u64("Nonce")
	var err error
	if m.Records, err = decodeRecords(&r, int(w&0xff), true); err != nil {
		return nil, err
	}
	if err := r.done("end of message"); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *MapReferral) String() string {
	s := fmt.Sprintf("Map-Referral nonce %#016x %d records", m.Nonce, len(m.Records))
	for i := range m.Records {
		s += fmt.Sprintf(" {%s %s}", ReferralString(m.Records[i].Action), m.Records[i].String())
	}
	return s
}
