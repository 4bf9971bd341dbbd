package wire

import "fmt"

// Info-Request / Info-Reply (type 7, draft-ermagan-lisp-nat-traversal).
const (
	infoR    = 0x08 // reply
	infoRsvd = 0x07
)

// Info is an Info-Request (Reply false) or Info-Reply (Reply true). The
// authentication fields follow the Map-Register rules.
type Info struct {
	Reply      bool
	Reserved0  uint8
	Reserved   uint32 // 24 reserved bits
	Nonce      uint64
	KeyID      uint8
	Algorithm  AuthAlg
	AuthData   []byte
	TTL        uint32 // minutes the RTR information is valid
	Reserved2  uint8
	MaskLen    uint8
	EID        Address
	NATAddress Address // AFI 0 in a request; a NAT-Traversal LCAF in a reply
}

// Type implements Message.
func (m *Info) Type() MessageType { return TypeInfo }

// Len implements Message.
func (m *Info) Len() int { return 16 + len(m.AuthData) + 6 + m.EID.Len() + m.NATAddress.Len() }

// Append implements Message.
func (m *Info) Append(b []byte) ([]byte, error) {
	if len(m.AuthData) > 0xffff {
		return b, encErr("Info", "Authentication Data Length", ErrBadLength)
	}
	b0 := byte(TypeInfo)<<4 | flag(m.Reply, infoR) | m.Reserved0&infoRsvd
	b = put32(b, uint32(b0)<<24|m.Reserved&0xffffff)
	b = put16(append(put64(b, m.Nonce), m.KeyID, byte(m.Algorithm)), uint16(len(m.AuthData)))
	b = append(b, m.AuthData...)
	b = append(put32(b, m.TTL), m.Reserved2, m.MaskLen)
	b, err := m.EID.Append(b)
	if err != nil {
		return b, err
	}
	return m.NATAddress.Append(b)
}

func decodeInfo(b []byte, base int) (*Info, error) {
	r := newReader(b, base, "Info")
	if err := r.need(16, "header"); err != nil {
		return nil, err
	}
	w, _ := r.u32("header")
	m := &Info{Reply: b[0]&infoR != 0, Reserved0: b[0] & infoRsvd, Reserved: w & 0xffffff}
	m.Nonce, _ = r.u64("Nonce")
	m.KeyID, _ = r.u8("Key ID")
	alg, _ := r.u8("Algorithm ID")
	m.Algorithm = AuthAlg(alg)
	n, _ := r.u16("Authentication Data Length")
	var err error
	if m.AuthData, err = r.bytes(int(n), "Authentication Data"); err != nil {
		return nil, err
	}
	if n == 0 {
		m.AuthData = nil
	}
	if err := r.need(6, "TTL"); err != nil {
		return nil, err
	}
	m.TTL, _ = r.u32("TTL")
	m.Reserved2, _ = r.u8("Reserved")
	m.MaskLen, _ = r.u8("EID mask-len")
	if m.EID, err = r.addressDepth("EID-Prefix", 0); err != nil {
		return nil, err
	}
	if m.NATAddress, err = r.addressDepth("NAT-Traversal", 0); err != nil {
		return nil, err
	}
	if err := r.done("end of message"); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Info) String() string {
	kind := "Info-Request"
	if m.Reply {
		kind = "Info-Reply"
	}
	return fmt.Sprintf("%s nonce %#016x key-id %d %s auth-len %d ttl %d eid %s %s", kind, m.Nonce, m.KeyID,
		m.Algorithm, len(m.AuthData), m.TTL, prefixString(m.EID, m.MaskLen), m.NATAddress)
}
