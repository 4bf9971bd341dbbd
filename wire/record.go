package wire

import (
	"fmt"
	"net/netip"
	"strings"
)

// Action is the ACT field of an EID-record (RFC 9301 §5.4, §12.3). For a
// Map-Referral record it holds the referral action (RFC 8111 §6.1).
type Action uint8

// EID-record actions. 6 and 7 are not IANA-assigned but seen in the wild.
const (
	ActionNoAction          Action = 0
	ActionNativelyForward   Action = 1
	ActionSendMapRequest    Action = 2
	ActionDrop              Action = 3
	ActionDropPolicyDenied  Action = 4
	ActionDropAuthFailure   Action = 5
	ActionUnassigned6       Action = 6
	ActionUnassigned7       Action = 7
	actionMask              uint16 = 0xe000
	recordAuthoritative     uint16 = 0x1000
	referralIncomplete      uint16 = 0x0800
	recordMapVersionMask    uint16 = 0x0fff
	recordMaxLocatorRecords        = 255
)

var actionNames = [8]string{"no-action", "natively-forward", "send-map-request", "drop",
	"drop-policy-denied", "drop-auth-failure", "action-6", "action-7"}

// String gives the names used in the JSON output and the config.
func (a Action) String() string { return actionNames[a&7] }

// ParseAction is the inverse of Action.String.
func ParseAction(s string) (Action, bool) {
	for i, n := range actionNames {
		if n == s {
			return Action(i), true
		}
	}
	return 0, false
}

// Locator-record flag bits (RFC 9301 §5.4).
const (
	LocatorLocal     uint16 = 0x0004 // L: the locator is local to the sender
	LocatorProbed    uint16 = 0x0002 // p: the locator that was RLOC-probed
	LocatorReachable uint16 = 0x0001 // R: reachable / routable
)

// Locator is an RLOC-record.
type Locator struct {
	Priority  uint8
	Weight    uint8
	MPriority uint8
	MWeight   uint8
	Flags     uint16 // L, p, R and the unused bits as received
	Address   Address
}

// Local, Probed and Reachable read the L, p and R bits.
func (l *Locator) Local() bool     { return l.Flags&LocatorLocal != 0 }
func (l *Locator) Probed() bool    { return l.Flags&LocatorProbed != 0 }
func (l *Locator) Reachable() bool { return l.Flags&LocatorReachable != 0 }

// Len is the encoded size.
func (l *Locator) Len() int { return 6 + l.Address.Len() }

func (l *Locator) appendTo(b []byte) ([]byte, error) {
	b = append(b, l.Priority, l.Weight, l.MPriority, l.MWeight)
	return l.Address.Append(put16(b, l.Flags))
}

func decodeLocator(r *reader) (Locator, error) {
	var l Locator
	if err := r.need(6, "RLOC-record"); err != nil {
		return l, err
	}
	b := r.b[r.off:]
	l.Priority, l.Weight, l.MPriority, l.MWeight = b[0], b[1], b[2], b[3]
	l.Flags = uint16(b[4])<<8 | uint16(b[5])
	r.off += 6
	var err error
	l.Address, err = r.addressDepth("Locator", 0)
	return l, err
}

func (l *Locator) String() string {
	f := ""
	if l.Local() {
		f += "L"
	}
	if l.Probed() {
		f += "p"
	}
	if l.Reachable() {
		f += "R"
	}
	if f == "" {
		f = "-"
	}
	return fmt.Sprintf("%s p%d/w%d mp%d/mw%d %s", l.Address, l.Priority, l.Weight, l.MPriority, l.MWeight, f)
}

// DDTSignature is one signature section of a Map-Referral record (RFC 8111 §6.4.1).
type DDTSignature struct {
	OriginalTTL uint32
	Expiration  uint32
	Inception   uint32
	KeyTag      uint16
	Algorithm   uint8
	Reserved1   uint8
	Reserved2   uint16
	Signature   []byte
}

// EIDRecord is the mapping record shared by Map-Reply, Map-Register,
// Map-Notify(-Ack), the Map-Request's piggybacked mapping and Map-Referral.
type EIDRecord struct {
	TTL           uint32 // minutes; 0xffffffff = receiver decides
	MaskLen       uint8
	Action        Action
	Authoritative bool
	Incomplete    bool   // Map-Referral only (I bit)
	Reserved      uint16 // the remaining reserved bits of the ACT word, as received
	ReservedV     uint8  // top nibble of the Map-Version word (SigCnt in Map-Referral is derived from Signatures)
	MapVersion    uint16 // 12 bits
	EID           Address
	Locators      []Locator
	Signatures    []DDTSignature // Map-Referral only
}

// Prefix returns the record's EID as an instance ID and an IP prefix. ok is
// false for non-IP EIDs or a mask length too long for the family.
func (r *EIDRecord) Prefix() (iid uint32, p netip.Prefix, ok bool) {
	iid, in, ok := r.EID.InstanceID()
	if !ok || (in.AFI != AFIIPv4 && in.AFI != AFIIPv6) {
		return 0, netip.Prefix{}, false
	}
	p, err := in.IP.Prefix(int(r.MaskLen))
	if err != nil || p.Bits() != int(r.MaskLen) {
		return 0, netip.Prefix{}, false
	}
	return iid, p, true
}

// PrefixString prints the EID as "[iid]prefix/len" (the IID only if present).
func (r *EIDRecord) PrefixString() string { return prefixString(r.EID, r.MaskLen) }

func (r *EIDRecord) len(referral bool) int {
	n := 10 + r.EID.Len()
	for i := range r.Locators {
		n += r.Locators[i].Len()
	}
	if referral {
		for _, s := range r.Signatures {
			n += 20 + len(s.Signature)
		}
	}
	return n
}

// Len is the encoded size of the record.
func (r *EIDRecord) Len() int { return r.len(false) }

// Append encodes the record onto b (servers cache encoded records).
func (r *EIDRecord) Append(b []byte) ([]byte, error) { return r.appendTo(b, false) }

func (r *EIDRecord) appendTo(b []byte, referral bool) ([]byte, error) {
	if len(r.Locators) > recordMaxLocatorRecords {
		return b, encErr("EID-record", "Locator Count", ErrTooMany)
	}
	w := uint16(r.Action&7)<<13 | r.Reserved&^(actionMask|recordAuthoritative)
	if r.Authoritative {
		w |= recordAuthoritative
	}
	if referral {
		w &^= referralIncomplete
		if r.Incomplete {
			w |= referralIncomplete
		}
	}
	v := uint16(r.ReservedV&0xf)<<12 | r.MapVersion&recordMapVersionMask
	if referral {
		if len(r.Signatures) > 15 {
			return b, encErr("Map-Referral record", "SigCnt", ErrTooMany)
		}
		v = uint16(len(r.Signatures))<<12 | r.MapVersion&recordMapVersionMask
	}
	b = append(put32(b, r.TTL), uint8(len(r.Locators)), r.MaskLen)
	b = put16(put16(b, w), v)
	b, err := r.EID.Append(b)
	if err != nil {
		return b, err
	}
	for i := range r.Locators {
		if b, err = r.Locators[i].appendTo(b); err != nil {
			return b, err
		}
	}
	if referral {
		for _, s := range r.Signatures {
			if len(s.Signature) > 0xffff {
				return b, encErr("Map-Referral record", "Sig Length", ErrBadLength)
			}
			b = put32(put32(put32(b, s.OriginalTTL), s.Expiration), s.Inception)
			b = put16(put16(b, s.KeyTag), uint16(len(s.Signature)))
			b = put16(append(b, s.Algorithm, s.Reserved1), s.Reserved2)
			b = append(b, s.Signature...)
		}
	}
	return b, nil
}

func decodeRecord(r *reader, referral bool) (EIDRecord, error) {
	var rec EIDRecord
	if err := r.need(12, "EID-record"); err != nil {
		return rec, err
	}
	rec.TTL, _ = r.u32("Record TTL")
	count, _ := r.u8("Locator Count")
	rec.MaskLen, _ = r.u8("EID mask-len")
	w, _ := r.u16("ACT")
	v, _ := r.u16("Map-Version")
	rec.Action = Action(w >> 13)
	rec.Authoritative = w&recordAuthoritative != 0
	rec.Reserved = w &^ (actionMask | recordAuthoritative)
	if referral {
		rec.Incomplete = w&referralIncomplete != 0
		rec.Reserved &^= referralIncomplete
	}
	rec.ReservedV = uint8(v >> 12)
	rec.MapVersion = v & recordMapVersionMask
	var err error
	if rec.EID, err = r.addressDepth("EID-Prefix", 0); err != nil {
		return rec, err
	}
	if err := checkMaskLen(r, rec.EID, rec.MaskLen); err != nil {
		return rec, err
	}
	if count > 0 {
		// Each locator takes at least 8 bytes: refuse early rather than
		// allocate for a count the buffer cannot hold.
		if r.remaining() < int(count)*8 {
			return rec, r.fail("Locator Count", ErrTruncated)
		}
		rec.Locators = make([]Locator, count)
		for i := range rec.Locators {
			if rec.Locators[i], err = decodeLocator(r); err != nil {
				return rec, err
			}
		}
	}
	if referral {
		for range rec.ReservedV {
			var s DDTSignature
			if err := r.need(20, "signature"); err != nil {
				return rec, err
			}
			s.OriginalTTL, _ = r.u32("Original Record TTL")
			s.Expiration, _ = r.u32("Signature Expiration")
			s.Inception, _ = r.u32("Signature Inception")
			s.KeyTag, _ = r.u16("Key Tag")
			n, _ := r.u16("Sig Length")
			s.Algorithm, _ = r.u8("Sig-Algorithm")
			s.Reserved1, _ = r.u8("Reserved")
			s.Reserved2, _ = r.u16("Reserved")
			if s.Signature, err = r.bytes(int(n), "Signature"); err != nil {
				return rec, err
			}
			rec.Signatures = append(rec.Signatures, s)
		}
		rec.ReservedV = 0
	}
	return rec, nil
}

// checkMaskLen rejects a mask length longer than an IP EID's family allows.
func checkMaskLen(r *reader, eid Address, maskLen uint8) error {
	_, in, ok := eid.InstanceID()
	if !ok {
		return nil
	}
	if (in.AFI == AFIIPv4 && maskLen > 32) || (in.AFI == AFIIPv6 && maskLen > 128) {
		return r.fail("EID mask-len", ErrBadValue)
	}
	return nil
}

func (r *EIDRecord) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s ttl %d", r.PrefixString(), r.TTL)
	if len(r.Locators) == 0 || r.Action != ActionNoAction {
		fmt.Fprintf(&sb, " %s", r.Action)
	}
	if r.Authoritative {
		sb.WriteString(" auth")
	}
	if r.Incomplete {
		sb.WriteString(" incomplete")
	}
	if r.MapVersion != 0 {
		fmt.Fprintf(&sb, " ver %d", r.MapVersion)
	}
	if len(r.Locators) == 0 {
		sb.WriteString(" negative")
	}
	for i := range r.Locators {
		sb.WriteString(" [")
		sb.WriteString(r.Locators[i].String())
		sb.WriteString("]")
	}
	if len(r.Signatures) > 0 {
		fmt.Fprintf(&sb, " %d sigs", len(r.Signatures))
	}
	return sb.String()
}
