// Package mapping holds the types every LISP role shares: an EID prefix
// scoped by instance ID, a locator, a mapping record, and a longest-prefix
// match table per instance ID. It converts to and from the wire codec.
package mapping

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/lispd/lispd/wire"
)

// MaxIID is the largest instance ID the data plane can carry (24 bits).
const MaxIID = 1<<24 - 1

// EID is an EID prefix in an instance ID.
type EID struct {
	IID    uint32
	Prefix netip.Prefix // always masked (canonical)
}

// NewEID returns the canonical EID for p in iid.
func NewEID(iid uint32, p netip.Prefix) EID {
	return EID{IID: iid, Prefix: p.Masked()}
}

// HostEID is the /32 or /128 EID of one address.
func HostEID(iid uint32, a netip.Addr) EID {
	return EID{IID: iid, Prefix: netip.PrefixFrom(a, a.BitLen())}
}

// String prints "[iid]prefix", as routers do, or the bare prefix for IID 0.
func (e EID) String() string {
	if e.IID == 0 {
		return e.Prefix.String()
	}
	return fmt.Sprintf("[%d]%s", e.IID, e.Prefix)
}

// IsValid reports whether the prefix is set.
func (e EID) IsValid() bool { return e.Prefix.IsValid() }

// Address encodes the EID's address for the wire: plain for IID 0, inside an
// Instance-ID LCAF otherwise.
func (e EID) Address() wire.Address {
	a := wire.AddrFromIP(e.Prefix.Addr())
	if e.IID != 0 {
		return wire.AddrWithIID(e.IID, a)
	}
	return a
}

// MaskLen is the prefix length as carried in records.
func (e EID) MaskLen() uint8 { return uint8(e.Prefix.Bits()) }

// Contains reports whether o is e or more specific than e, in the same IID.
func (e EID) Contains(o EID) bool {
	return e.IID == o.IID && e.Prefix.Bits() <= o.Prefix.Bits() && e.Prefix.Contains(o.Prefix.Addr()) &&
		e.Prefix.Addr().Is4() == o.Prefix.Addr().Is4()
}

// FromWire reads an EID from a record's address and mask length.
func FromWire(a wire.Address, maskLen uint8) (EID, bool) {
	iid, in, ok := a.InstanceID()
	if !ok || (in.AFI != wire.AFIIPv4 && in.AFI != wire.AFIIPv6) {
		return EID{}, false
	}
	p, err := in.IP.Prefix(int(maskLen))
	if err != nil || p.Bits() != int(maskLen) {
		return EID{}, false
	}
	return EID{IID: iid, Prefix: p}, true
}

// Locator is an RLOC of a mapping, compact enough to hold millions.
type Locator struct {
	Addr      netip.Addr
	Priority  uint8
	Weight    uint8
	MPriority uint8
	MWeight   uint8
	Flags     uint16 // wire.LocatorLocal, wire.LocatorProbed, wire.LocatorReachable
}

// Reachable reports the R bit.
func (l Locator) Reachable() bool { return l.Flags&wire.LocatorReachable != 0 }

// ToWire builds the RLOC-record.
func (l Locator) ToWire() wire.Locator {
	return wire.Locator{Priority: l.Priority, Weight: l.Weight, MPriority: l.MPriority, MWeight: l.MWeight,
		Flags: l.Flags, Address: wire.AddrFromIP(l.Addr)}
}

// LocatorFromWire reads an RLOC-record; ok is false for non-IP locators,
// which this implementation cannot use.
func LocatorFromWire(w *wire.Locator) (Locator, bool) {
	a, ok := w.Address.Addr()
	if !ok {
		return Locator{}, false
	}
	return Locator{Addr: a, Priority: w.Priority, Weight: w.Weight, MPriority: w.MPriority, MWeight: w.MWeight,
		Flags: w.Flags}, true
}

// SortLocators orders a locator set as RFC 9301 §5.5 asks: ascending
// address, IPv4 before IPv6.
func SortLocators(ls []Locator) {
	slices.SortFunc(ls, func(a, b Locator) int { return a.Addr.Compare(b.Addr) })
}

// Mapping is an EID prefix with its locator set or negative action.
type Mapping struct {
	EID           EID
	TTL           uint32 // minutes
	Action        wire.Action
	Authoritative bool
	MapVersion    uint16
	Locators      []Locator
}

// Record builds the wire EID-record.
func (m *Mapping) Record() wire.EIDRecord {
	r := wire.EIDRecord{TTL: m.TTL, MaskLen: m.EID.MaskLen(), Action: m.Action, Authoritative: m.Authoritative,
		MapVersion: m.MapVersion, EID: m.EID.Address()}
	if len(m.Locators) > 0 {
		r.Locators = make([]wire.Locator, len(m.Locators))
		for i, l := range m.Locators {
			r.Locators[i] = l.ToWire()
		}
	}
	return r
}

// FromRecord reads a mapping from a wire record, skipping locators that are
// not IP addresses. ok is false if the EID is not an IP prefix.
func FromRecord(r *wire.EIDRecord) (Mapping, bool) {
	eid, ok := FromWire(r.EID, r.MaskLen)
	if !ok {
		return Mapping{}, false
	}
	m := Mapping{EID: eid, TTL: r.TTL, Action: r.Action, Authoritative: r.Authoritative, MapVersion: r.MapVersion}
	for i := range r.Locators {
		if l, ok := LocatorFromWire(&r.Locators[i]); ok {
			m.Locators = append(m.Locators, l)
		}
	}
	return m, true
}

func (m *Mapping) String() string {
	r := m.Record()
	return r.String()
}
