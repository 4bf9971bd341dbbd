package wire

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// DataHeaderLen is the size of the LISP data-plane header (RFC 9300 §5.3).
const DataHeaderLen = 8

// Data header flag bits (first byte).
const (
	DataN   = 0x80 // nonce present
	DataL   = 0x40 // locator-status-bits valid
	DataE   = 0x20 // echo-nonce request
	DataV   = 0x10 // map-version present
	DataI   = 0x08 // instance ID present
	DataP   = 0x04 // LISP-GPE next protocol present (RFC 9305); reserved in RFC 9300
	DataKK  = 0x03 // lisp-crypto key ID (RFC 8061)
	dataAll = 0xff
)

// GPE next-protocol values (RFC 9305 §3).
const (
	GPEIPv4     = 0x01
	GPEIPv6     = 0x02
	GPEEthernet = 0x03
	GPENSH      = 0x04
)

// DataHeader is a zero-copy view of the 8-byte LISP data header at the
// start of a slice. Getters and setters read and write the bytes in place
// and allocate nothing; the caller guarantees len >= DataHeaderLen (use
// DecodeDataHeader on untrusted input).
type DataHeader []byte

// DecodeDataHeader checks b as a received data header: long enough, and no
// flag combination RFC 9305 rules out (a GPE header with N, E or V). N and
// V together are allowed; the field is then a nonce. E without N is
// accepted: RFC 9300 §5.3 says E is then ignored.
func DecodeDataHeader(b []byte) (DataHeader, error) {
	if len(b) < DataHeaderLen {
		return nil, &DecodeError{Msg: "data header", Field: "header", Offset: 0, Err: ErrTruncated}
	}
	h := DataHeader(b[:DataHeaderLen])
	f := h[0]
	if f&DataP != 0 && f&(DataN|DataE|DataV) != 0 {
		return nil, &DecodeError{Msg: "data header", Field: "GPE P bit with N/E/V", Offset: 0, Err: ErrBadValue}
	}
	return h, nil
}

// Flags returns the first byte: N L E V I P KK.
func (h DataHeader) Flags() uint8 { return h[0] }

// SetFlags sets the first byte.
func (h DataHeader) SetFlags(f uint8) { h[0] = f }

func (h DataHeader) has(bit uint8) bool { return h[0]&bit != 0 }

// N, L, E, V, I and P report the flag bits.
func (h DataHeader) N() bool { return h.has(DataN) }
func (h DataHeader) L() bool { return h.has(DataL) }
func (h DataHeader) E() bool { return h.has(DataE) }
func (h DataHeader) V() bool { return h.has(DataV) }
func (h DataHeader) I() bool { return h.has(DataI) }
func (h DataHeader) P() bool { return h.has(DataP) }

// KeyID returns the lisp-crypto KK bits.
func (h DataHeader) KeyID() uint8 { return h[0] & DataKK }

// Nonce returns the 24-bit nonce (meaningful when N is set).
func (h DataHeader) Nonce() uint32 { return binary.BigEndian.Uint32(h) & 0xffffff }

// SetNonce sets N and the 24-bit nonce and clears V.
func (h DataHeader) SetNonce(n uint32) {
	binary.BigEndian.PutUint32(h, uint32(h[0]&^DataV|DataN)<<24|n&0xffffff)
}

// MapVersions returns the source and destination map-versions (when V is set).
func (h DataHeader) MapVersions() (src, dst uint16) {
	w := binary.BigEndian.Uint32(h)
	return uint16(w>>12) & 0xfff, uint16(w) & 0xfff
}

// SetMapVersions sets V and both 12-bit versions and clears N and E.
func (h DataHeader) SetMapVersions(src, dst uint16) {
	f := h[0]&^(DataN|DataE) | DataV
	binary.BigEndian.PutUint32(h, uint32(f)<<24|uint32(src&0xfff)<<12|uint32(dst&0xfff))
}

// NextProtocol returns the GPE next protocol (when P is set).
func (h DataHeader) NextProtocol() uint8 { return h[3] }

// SetNextProtocol sets P and the next protocol and clears N, E and V.
func (h DataHeader) SetNextProtocol(p uint8) {
	h[0] = h[0]&^(DataN|DataE|DataV) | DataP
	h[1], h[2], h[3] = 0, 0, p
}

// InstanceID returns the 24-bit instance ID (when I is set).
func (h DataHeader) InstanceID() uint32 { return binary.BigEndian.Uint32(h[4:]) >> 8 }

// SetInstanceID sets I and the 24-bit instance ID, keeping the 8 LSBs.
func (h DataHeader) SetInstanceID(iid uint32) {
	h[0] |= DataI
	binary.BigEndian.PutUint32(h[4:], iid<<8|uint32(h[7]))
}

// LSBs returns the locator-status-bits: 32 bits, or 8 when I is set.
func (h DataHeader) LSBs() uint32 {
	if h.I() {
		return uint32(h[7])
	}
	return binary.BigEndian.Uint32(h[4:])
}

// SetLSBs sets L and the locator-status-bits (the low 8 bits only when I is set).
func (h DataHeader) SetLSBs(lsb uint32) {
	h[0] |= DataL
	if h.I() {
		h[7] = uint8(lsb)
		return
	}
	binary.BigEndian.PutUint32(h[4:], lsb)
}

// Put writes a whole header in one go; the encapsulation hot path uses it.
func (h DataHeader) Put(flags uint8, word0low24 uint32, word1 uint32) {
	binary.BigEndian.PutUint32(h, uint32(flags)<<24|word0low24&0xffffff)
	binary.BigEndian.PutUint32(h[4:], word1)
}

func (h DataHeader) String() string {
	if len(h) < DataHeaderLen {
		return "LISP data header (truncated)"
	}
	var sb strings.Builder
	sb.WriteString("LISP data [")
	names := "NLEVIP"
	for i := range 6 {
		if h[0]&(0x80>>i) != 0 {
			sb.WriteByte(names[i])
		} else {
			sb.WriteByte('.')
		}
	}
	sb.WriteString("]")
	switch {
	case h.P():
		fmt.Fprintf(&sb, " next-proto %#02x", h.NextProtocol())
	case h.N():
		fmt.Fprintf(&sb, " nonce 0x%06x", h.Nonce())
	case h.V():
		s, d := h.MapVersions()
		fmt.Fprintf(&sb, " src-ver %d dst-ver %d", s, d)
	}
	if h.I() {
		fmt.Fprintf(&sb, " iid %d", h.InstanceID())
	}
	if h.L() {
		fmt.Fprintf(&sb, " lsb %#x", h.LSBs())
	}
	if k := h.KeyID(); k != 0 {
		fmt.Fprintf(&sb, " key-id %d", k)
	}
	return sb.String()
}
