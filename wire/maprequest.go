package wire

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Map-Request header bits (RFC 9301 §5.2, RFC 9437).
const (
	mreqA     = 0x08 // byte 0: authoritative reply wanted
	mreqM     = 0x04 // byte 0: Map-Reply record present
	mreqP     = 0x02 // byte 0: RLOC-probe
	mreqS     = 0x01 // byte 0: SMR
	mreqPITR  = 0x80 // byte 1: sent by a PITR
	mreqSMRI  = 0x40 // byte 1: SMR-invoked
	mreqI     = 0x10 // byte 1: xTR-ID and Site-ID present
	mreqRsvd1 = 0x2f // byte 1: reserved bits, kept as received
	mreqRsvd2 = 0x80 // byte 2: reserved (lispers.net legacy N), kept
	mreqL     = 0x40 // byte 2: local xTR
	mreqD     = 0x20 // byte 2: don't send a Map-Reply
	mreqIRC   = 0x1f
	recNotify = 0x80 // request record: N, subscribe (RFC 9437)
)

// RequestRecord is one EID asked for in a Map-Request.
type RequestRecord struct {
	Notify   bool  // N: subscribe to changes (RFC 9437)
	Reserved uint8 // the 7 reserved bits
	MaskLen  uint8
	EID      Address
}

// PrefixString prints the EID as "[iid]prefix/len".
func (r *RequestRecord) PrefixString() string { return prefixString(r.EID, r.MaskLen) }

// MapRequest is a Map-Request (type 1), also used for SMRs, RLOC probes and
// subscriptions.
type MapRequest struct {
	Authoritative bool // A
	Probe         bool // P
	SMR           bool // S
	PITR          bool // p
	SMRInvoked    bool // s
	Local         bool // L
	DontReply     bool // D
	Reserved1     uint8
	Reserved2     uint8
	Nonce         uint64
	SourceEID     Address
	ITRRLOCs      []Address // 1 to 32
	Records       []RequestRecord
	MapReply      *EIDRecord // the requester's own mapping (M bit)
	HasXTRID      bool       // I: xTR-ID and Site-ID follow
	XTRID         [16]byte
	SiteID        uint64
	NoSiteID      bool // only the xTR-ID was present (lispers.net pub/sub)
	// Trailing holds bytes after the last field, kept as received: LISPmob
	// and OOR append their own mapping record without setting M.
	Trailing []byte
}

// Type implements Message.
func (m *MapRequest) Type() MessageType { return TypeMapRequest }

// Len implements Message.
func (m *MapRequest) Len() int {
	n := 12 + m.SourceEID.Len()
	for _, a := range m.ITRRLOCs {
		n += a.Len()
	}
	for i := range m.Records {
		n += 2 + m.Records[i].EID.Len()
	}
	if m.MapReply != nil {
		n += m.MapReply.Len()
	}
	return n + xtrIDLen(m.HasXTRID, m.NoSiteID) + len(m.Trailing)
}

func xtrIDLen(has, noSite bool) int {
	switch {
	case !has:
		return 0
	case noSite:
		return 16
	}
	return 24
}

// Append implements Message.
func (m *MapRequest) Append(b []byte) ([]byte, error) {
	const msg = "Map-Request"
	if len(m.ITRRLOCs) < 1 || len(m.ITRRLOCs) > 32 {
		return b, encErr(msg, "ITR-RLOC-Count", ErrTooMany)
	}
	if len(m.Records) > 255 {
		return b, encErr(msg, "Record Count", ErrTooMany)
	}
	b0 := byte(TypeMapRequest) << 4
	b0 |= flag(m.Authoritative, mreqA) | flag(m.MapReply != nil, mreqM) | flag(m.Probe, mreqP) | flag(m.SMR, mreqS)
	b1 := m.Reserved1&mreqRsvd1 | flag(m.PITR, mreqPITR) | flag(m.SMRInvoked, mreqSMRI) | flag(m.HasXTRID, mreqI)
	b2 := m.Reserved2&mreqRsvd2 | flag(m.Local, mreqL) | flag(m.DontReply, mreqD) | byte(len(m.ITRRLOCs)-1)
	b = append(b, b0, b1, b2, byte(len(m.Records)))
	b = put64(b, m.Nonce)
	b, err := m.SourceEID.Append(b)
	if err != nil {
		return b, err
	}
	for _, a := range m.ITRRLOCs {
		if b, err = a.Append(b); err != nil {
			return b, err
		}
	}
	for i := range m.Records {
		rr := &m.Records[i]
		b = append(b, rr.Reserved&^recNotify|flag(rr.Notify, recNotify), rr.MaskLen)
		if b, err = rr.EID.Append(b); err != nil {
			return b, err
		}
	}
	if m.MapReply != nil {
		if b, err = m.MapReply.appendTo(b, false); err != nil {
			return b, err
		}
	}
	return append(appendXTRID(b, m.HasXTRID, m.NoSiteID, m.XTRID, m.SiteID), m.Trailing...), nil
}

func appendXTRID(b []byte, has, noSite bool, xtr [16]byte, site uint64) []byte {
	if !has {
		return b
	}
	b = append(b, xtr[:]...)
	if noSite {
		return b
	}
	return put64(b, site)
}

func flag(v bool, bit byte) byte {
	if v {
		return bit
	}
	return 0
}

// DecodeMapRequest decodes a Map-Request.
func DecodeMapRequest(b []byte) (*MapRequest, error) { return decodeMapRequest(b, 0) }

func decodeMapRequest(b []byte, base int) (*MapRequest, error) {
	r := newReader(b, base, "Map-Request")
	if err := r.need(12, "header"); err != nil {
		return nil, err
	}
	m := &MapRequest{
		Authoritative: b[0]&mreqA != 0, Probe: b[0]&mreqP != 0, SMR: b[0]&mreqS != 0,
		PITR: b[1]&mreqPITR != 0, SMRInvoked: b[1]&mreqSMRI != 0, HasXTRID: b[1]&mreqI != 0,
		Reserved1: b[1] & mreqRsvd1, Reserved2: b[2] & mreqRsvd2,
		Local: b[2]&mreqL != 0, DontReply: b[2]&mreqD != 0,
	}
	hasM := b[0]&mreqM != 0
	irc := int(b[2]&mreqIRC) + 1
	count := int(b[3])
	r.off = 4
	m.Nonce, _ = r.u64("Nonce")
	var err error
	if m.SourceEID, err = r.addressDepth("Source-EID", 0); err != nil {
		return nil, err
	}
	m.ITRRLOCs = make([]Address, irc)
	for i := range m.ITRRLOCs {
		if m.ITRRLOCs[i], err = r.addressDepth("ITR-RLOC", 0); err != nil {
			return nil, err
		}
	}
	if count > 0 {
		if r.remaining() < count*4 {
			return nil, r.fail("Record Count", ErrTruncated)
		}
		m.Records = make([]RequestRecord, count)
		for i := range m.Records {
			rr := &m.Records[i]
			if err := r.need(2, "EID-record"); err != nil {
				return nil, err
			}
			rr.Notify = r.b[r.off]&recNotify != 0
			rr.Reserved = r.b[r.off] &^ recNotify
			rr.MaskLen = r.b[r.off+1]
			r.off += 2
			if rr.EID, err = r.addressDepth("EID-Prefix", 0); err != nil {
				return nil, err
			}
			if err := checkMaskLen(&r, rr.EID, rr.MaskLen); err != nil {
				return nil, err
			}
		}
	}
	if hasM {
		rec, err := decodeRecord(&r, false)
		if err != nil {
			return nil, err
		}
		m.MapReply = &rec
	}
	if m.HasXTRID {
		switch r.remaining() {
		case 24:
		case 16:
			m.NoSiteID = true
		default:
			return nil, r.fail("xTR-ID/Site-ID", ErrBadLength)
		}
		copy(m.XTRID[:], r.b[r.off:])
		r.off += 16
		if !m.NoSiteID {
			m.SiteID, _ = r.u64("Site-ID")
		}
	}
	if r.remaining() > 0 {
		m.Trailing, _ = r.bytes(r.remaining(), "trailing")
	}
	return m, nil
}

func (m *MapRequest) String() string {
	var sb strings.Builder
	sb.WriteString("Map-Request")
	var fl []string
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Authoritative, "A"}, {m.MapReply != nil, "M"}, {m.Probe, "P(probe)"}, {m.SMR, "S(smr)"},
		{m.PITR, "p(pitr)"}, {m.SMRInvoked, "s(smr-invoked)"}, {m.HasXTRID, "I"}, {m.Local, "L"}, {m.DontReply, "D"}} {
		if f.on {
			fl = append(fl, f.name)
		}
	}
	if len(fl) > 0 {
		fmt.Fprintf(&sb, " [%s]", strings.Join(fl, " "))
	}
	fmt.Fprintf(&sb, " nonce %#016x source-eid %s itr-rlocs", m.Nonce, m.SourceEID)
	for _, a := range m.ITRRLOCs {
		sb.WriteString(" " + a.String())
	}
	for i := range m.Records {
		sb.WriteString(" eid ")
		sb.WriteString(m.Records[i].PrefixString())
		if m.Records[i].Notify {
			sb.WriteString("(subscribe)")
		}
	}
	if m.MapReply != nil {
		sb.WriteString(" mapping {" + m.MapReply.String() + "}")
	}
	if m.HasXTRID {
		fmt.Fprintf(&sb, " xtr-id %s site-id %d", hex.EncodeToString(m.XTRID[:]), m.SiteID)
	}
	if len(m.Trailing) > 0 {
		fmt.Fprintf(&sb, " +%d trailing bytes", len(m.Trailing))
	}
	return sb.String()
}
