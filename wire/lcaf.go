package wire

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// LCAFType is the Type byte of an LCAF (RFC 8060 §3, RFC 9306).
type LCAFType uint8

// LCAF types. Types marked experimental in RFC 8060 §5 are decoded all the same.
const (
	LCAFNull           LCAFType = 0
	LCAFAFIList        LCAFType = 1
	LCAFInstanceID     LCAFType = 2
	LCAFASNumber       LCAFType = 3
	LCAFAppData        LCAFType = 4
	LCAFGeoCoord       LCAFType = 5
	LCAFOpaqueKey      LCAFType = 6
	LCAFNATTraversal   LCAFType = 7
	LCAFNonceLocator   LCAFType = 8
	LCAFMulticastInfo  LCAFType = 9
	LCAFELP            LCAFType = 10
	LCAFSecurityKey    LCAFType = 11
	LCAFSourceDest     LCAFType = 12
	LCAFRLE            LCAFType = 13
	LCAFJSON           LCAFType = 14
	LCAFKeyValue       LCAFType = 15
	LCAFEncapFormat    LCAFType = 16
	LCAFVendorSpecific LCAFType = 255
)

// lcafKind is what the codec knows of one LCAF type: its name and an empty
// body, which then decodes itself (each body type has its decoder next to
// its encoder below).
type lcafKind struct {
	name string
	new  func() LCAFBody
}

var lcafKinds = map[LCAFType]lcafKind{
	LCAFNull:           {"null", func() LCAFBody { return new(NullLCAF) }},
	LCAFAFIList:        {"afi-list", func() LCAFBody { return new(AFIListLCAF) }},
	LCAFInstanceID:     {"instance-id", func() LCAFBody { return new(InstanceIDLCAF) }},
	LCAFASNumber:       {"as-number", func() LCAFBody { return new(ASNumberLCAF) }},
	LCAFAppData:        {"app-data", func() LCAFBody { return new(AppDataLCAF) }},
	LCAFGeoCoord:       {"geo", func() LCAFBody { return new(GeoLCAF) }},
	LCAFOpaqueKey:      {"opaque-key", func() LCAFBody { return new(OpaqueKeyLCAF) }},
	LCAFNATTraversal:   {"nat-traversal", func() LCAFBody { return new(NATTraversalLCAF) }},
	LCAFNonceLocator:   {"nonce-locator", func() LCAFBody { return new(NonceLocatorLCAF) }},
	LCAFMulticastInfo:  {"multicast-info", func() LCAFBody { return new(MulticastInfoLCAF) }},
	LCAFELP:            {"elp", func() LCAFBody { return new(ELPLCAF) }},
	LCAFSecurityKey:    {"security-key", func() LCAFBody { return new(SecurityKeyLCAF) }},
	LCAFSourceDest:     {"source-dest", func() LCAFBody { return new(SourceDestLCAF) }},
	LCAFRLE:            {"rle", func() LCAFBody { return new(RLELCAF) }},
	LCAFJSON:           {"json", func() LCAFBody { return new(JSONLCAF) }},
	LCAFKeyValue:       {"key-value", func() LCAFBody { return new(KeyValueLCAF) }},
	LCAFEncapFormat:    {"encap-format", func() LCAFBody { return new(EncapFormatLCAF) }},
	LCAFVendorSpecific: {"vendor", func() LCAFBody { return new(VendorLCAF) }},
}

func (t LCAFType) String() string {
	if k, ok := lcafKinds[t]; ok {
		return k.name
	}
	return "lcaf-" + strconv.Itoa(int(t))
}

// LCAF is an LCAF-encoded address: the generic header and a typed body.
// Rsvd1 and Flags are kept for byte-exact re-encoding. Rsvd2 is kept as
// received, but for Instance-ID (mask length) and JSON (B bit) the body's
// fields are the ones encoded.
type LCAF struct {
	Type  LCAFType
	Rsvd1 uint8
	Flags uint8
	Rsvd2 uint8
	Body  LCAFBody
}

// LCAFBody is the type-specific part of an LCAF. Unknown types decode to
// *OpaqueLCAF and re-encode unchanged.
type LCAFBody interface {
	// decodeBody fills the body from r, which holds exactly the LCAF's
	// Length bytes, and returns r where it stopped, for the caller to check
	// that nothing is left over; rsvd2 is the header's Rsvd2 byte. r goes by
	// value: a pointer passed through an interface would move it to the heap.
	decodeBody(r reader, rsvd2 uint8, depth int) (reader, error)
	bodyLen() int
	appendBody(b []byte, depth int) ([]byte, error)
	String() string
}

// rsvd2Body is a body that carries one of its fields in the header's Rsvd2
// byte; received is LCAF.Rsvd2, for the bits the body does not own.
type rsvd2Body interface {
	rsvd2(received uint8) uint8
}

// Len is the LCAF size after the AFI: 6 header bytes plus the body.
func (l *LCAF) Len() int {
	if l.Body == nil {
		return 6
	}
	return 6 + l.Body.bodyLen()
}

func (l *LCAF) rsvd2() uint8 {
	if b, ok := l.Body.(rsvd2Body); ok {
		return b.rsvd2(l.Rsvd2)
	}
	return l.Rsvd2
}

func (l *LCAF) appendTo(b []byte, depth int) ([]byte, error) {
	n := l.Len() - 6
	if n > 0xffff {
		return b, encErr("LCAF", "Length", ErrBadLength)
	}
	b = append(b, l.Rsvd1, l.Flags, uint8(l.Type), l.rsvd2())
	b = put16(b, uint16(n))
	if l.Body == nil {
		return b, nil
	}
	start := len(b)
	b, err := l.Body.appendBody(b, depth)
	if err == nil && len(b)-start != n {
		err = encErr("LCAF "+l.Type.String(), "body", ErrBadLength)
	}
	return b, err
}

func (l *LCAF) String() string {
	if _, opaque := l.Body.(*OpaqueLCAF); opaque || l.Body == nil {
		return l.Type.String() + "(" + shortHex(l.bodyBytes()) + ")"
	}
	return l.Body.String()
}

func (l *LCAF) bodyBytes() []byte {
	if o, ok := l.Body.(*OpaqueLCAF); ok {
		return o.Data
	}
	return nil
}

func decodeLCAF(b []byte, base, depth int) (*LCAF, int, error) {
	r := newReader(b, base, "LCAF")
	if err := r.need(6, "header"); err != nil {
		return nil, 0, err
	}
	l := &LCAF{Rsvd1: b[0], Flags: b[1], Type: LCAFType(b[2]), Rsvd2: b[3]}
	r.off = 4
	n, _ := r.u16("Length")
	body, err := r.sub(int(n), "Length", "LCAF")
	if err != nil {
		return nil, 0, err
	}
	if k, ok := lcafKinds[l.Type]; ok {
		l.Body = k.new()
	} else {
		l.Body = new(OpaqueLCAF)
	}
	if body, err = l.Body.decodeBody(body, l.Rsvd2, depth); err != nil {
		return nil, 0, err
	}
	if err := body.done("body"); err != nil {
		return nil, 0, err
	}
	return l, r.off, nil
}

func (r *reader) addressDepth(field string, depth int) (Address, error) {
	if r.remaining() == 0 {
		return Address{}, r.fail(field, ErrTruncated)
	}
	a, n, err := decodeAddress(r.b[r.off:], r.base+r.off, depth)
	if err != nil {
		// Name the field the address was read for, not just "address".
		if de, ok := err.(*DecodeError); ok && de.Msg == "address" {
			de.Msg, de.Field = r.msg, field+" "+de.Field
		}
		return Address{}, err
	}
	r.off += n
	return a, nil
}

// addressList reads addresses named field until r is exhausted.
func (r *reader) addressList(field string, depth int) ([]Address, error) {
	var out []Address
	for r.remaining() > 0 {
		a, err := r.addressDepth(field, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func appendAddrs(b []byte, depth int, addrs ...Address) ([]byte, error) {
	var err error
	for _, a := range addrs {
		if b, err = a.appendDepth(b, depth); err != nil {
			return b, err
		}
	}
	return b, nil
}

func addrsLen(addrs ...Address) int {
	n := 0
	for _, a := range addrs {
		n += a.Len()
	}
	return n
}

// NullLCAF is type 0, an empty body.
type NullLCAF struct{}

func (*NullLCAF) decodeBody(r reader, _ uint8, _ int) (reader, error) { return r, nil }
func (*NullLCAF) appendBody(b []byte, _ int) ([]byte, error)          { return b, nil }
func (*NullLCAF) bodyLen() int                                        { return 0 }
func (*NullLCAF) String() string                                      { return "lcaf(null)" }

// AFIListLCAF is type 1: several addresses naming one thing (e.g. an IPv4
// and an IPv6 address of one RLOC).
type AFIListLCAF struct{ Addrs []Address }

func (v *AFIListLCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	v.Addrs, err = r.addressList("address", d)
	return r, err
}
func (v *AFIListLCAF) appendBody(b []byte, d int) ([]byte, error) {
	return appendAddrs(b, d, v.Addrs...)
}
func (v *AFIListLCAF) bodyLen() int { return addrsLen(v.Addrs...) }
func (v *AFIListLCAF) String() string {
	s := make([]string, len(v.Addrs))
	for i, a := range v.Addrs {
		s[i] = a.String()
	}
	return "(" + strings.Join(s, ", ") + ")"
}

// InstanceIDLCAF is type 2: a 32-bit instance ID scoping an address.
// MaskLen is the IID mask length carried in Rsvd2.
type InstanceIDLCAF struct {
	IID     uint32
	MaskLen uint8
	Addr    Address
}

func (v *InstanceIDLCAF) decodeBody(r reader, rsvd2 uint8, d int) (_ reader, err error) {
	v.MaskLen = rsvd2
	if v.IID, err = r.u32("Instance ID"); err != nil {
		return r, err
	}
	v.Addr, err = r.addressDepth("address", d)
	return r, err
}
func (v *InstanceIDLCAF) rsvd2(uint8) uint8 { return v.MaskLen }
func (v *InstanceIDLCAF) appendBody(b []byte, d int) ([]byte, error) {
	return v.Addr.appendDepth(put32(b, v.IID), d)
}
func (v *InstanceIDLCAF) bodyLen() int   { return 4 + v.Addr.Len() }
func (v *InstanceIDLCAF) String() string { return fmt.Sprintf("[%d]%s", v.IID, v.Addr) }

// ASNumberLCAF is type 3: an address tagged with its AS number.
type ASNumberLCAF struct {
	ASN  uint32
	Addr Address
}

func (v *ASNumberLCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	if v.ASN, err = r.u32("AS Number"); err != nil {
		return r, err
	}
	v.Addr, err = r.addressDepth("address", d)
	return r, err
}
func (v *ASNumberLCAF) appendBody(b []byte, d int) ([]byte, error) {
	return v.Addr.appendDepth(put32(b, v.ASN), d)
}
func (v *ASNumberLCAF) bodyLen() int   { return 4 + v.Addr.Len() }
func (v *ASNumberLCAF) String() string { return fmt.Sprintf("AS%d:%s", v.ASN, v.Addr) }

// AppDataLCAF is type 4 (experimental): an address with flow qualifiers.
type AppDataLCAF struct {
	TOS                           uint32 // 24 bits: IPv4 TOS, IPv6 traffic class and flow label
	Protocol                      uint8
	LocalPortLow, LocalPortHigh   uint16
	RemotePortLow, RemotePortHigh uint16
	Addr                          Address
}

func (v *AppDataLCAF) decodeBody(r reader, _ uint8, d int) (reader, error) {
	w, err := r.u32("TOS/Protocol")
	if err != nil {
		return r, err
	}
	v.TOS, v.Protocol = w>>8, uint8(w)
	for _, p := range []*uint16{&v.LocalPortLow, &v.LocalPortHigh, &v.RemotePortLow, &v.RemotePortHigh} {
		if *p, err = r.u16("port"); err != nil {
			return r, err
		}
	}
	v.Addr, err = r.addressDepth("address", d)
	return r, err
}
func (v *AppDataLCAF) appendBody(b []byte, d int) ([]byte, error) {
	b = put32(b, v.TOS<<8|uint32(v.Protocol))
	b = put16(put16(put16(put16(b, v.LocalPortLow), v.LocalPortHigh), v.RemotePortLow), v.RemotePortHigh)
	return v.Addr.appendDepth(b, d)
}
func (v *AppDataLCAF) bodyLen() int { return 12 + v.Addr.Len() }
func (v *AppDataLCAF) String() string {
	return fmt.Sprintf("app(%s proto %d ports %d-%d/%d-%d tos %#x)", v.Addr, v.Protocol,
		v.LocalPortLow, v.LocalPortHigh, v.RemotePortLow, v.RemotePortHigh, v.TOS)
}

// GeoLCAF is type 5: geo-coordinates of an address.
type GeoLCAF struct {
	North                  bool
	LatDegrees             uint16
	LatMinutes, LatSeconds uint8
	East                   bool
	LonDegrees             uint16
	LonMinutes, LonSeconds uint8
	Altitude               int32 // metres; 0x7fffffff = none
	Addr                   Address
}

func (v *GeoLCAF) decodeBody(r reader, _ uint8, d int) (reader, error) {
	lat, err := r.u32("latitude")
	if err != nil {
		return r, err
	}
	lon, err := r.u32("longitude")
	if err != nil {
		return r, err
	}
	alt, err := r.u32("altitude")
	if err != nil {
		return r, err
	}
	v.North, v.LatDegrees, v.LatMinutes, v.LatSeconds = lat&0x80000000 != 0, uint16(lat>>16)&0x7fff, uint8(lat>>8), uint8(lat)
	v.East, v.LonDegrees, v.LonMinutes, v.LonSeconds = lon&0x80000000 != 0, uint16(lon>>16)&0x7fff, uint8(lon>>8), uint8(lon)
	v.Altitude = int32(alt)
	v.Addr, err = r.addressDepth("address", d)
	return r, err
}
func (v *GeoLCAF) appendBody(b []byte, d int) ([]byte, error) {
	b = put32(b, geoWord(v.North, v.LatDegrees, v.LatMinutes, v.LatSeconds))
	b = put32(b, geoWord(v.East, v.LonDegrees, v.LonMinutes, v.LonSeconds))
	b = put32(b, uint32(v.Altitude))
	return v.Addr.appendDepth(b, d)
}
func (v *GeoLCAF) bodyLen() int { return 12 + v.Addr.Len() }
func (v *GeoLCAF) String() string {
	ns, ew := "S", "W"
	if v.North {
		ns = "N"
	}
	if v.East {
		ew = "E"
	}
	return fmt.Sprintf("geo(%d-%d-%d-%s %d-%d-%d-%s alt %d %s)", v.LatDegrees, v.LatMinutes, v.LatSeconds, ns,
		v.LonDegrees, v.LonMinutes, v.LonSeconds, ew, v.Altitude, v.Addr)
}

// geoWord packs a latitude or longitude; pos is North or East.
func geoWord(pos bool, deg uint16, m, s uint8) uint32 {
	w := uint32(deg&0x7fff)<<16 | uint32(m)<<8 | uint32(s)
	if pos {
		w |= 0x80000000
	}
	return w
}

// OpaqueKeyLCAF is type 6 (experimental).
type OpaqueKeyLCAF struct {
	KeyFieldNum    uint8
	WildcardFields uint16
	Key            []byte
}

func (v *OpaqueKeyLCAF) decodeBody(r reader, _ uint8, _ int) (_ reader, err error) {
	if v.KeyFieldNum, err = r.u8("Key Field Num"); err != nil {
		return r, err
	}
	if v.WildcardFields, err = r.u16("Key Wildcard Fields"); err != nil {
		return r, err
	}
	v.Key, err = r.bytes(r.remaining(), "Key")
	return r, err
}
func (v *OpaqueKeyLCAF) appendBody(b []byte, _ int) ([]byte, error) {
	return append(put16(append(b, v.KeyFieldNum), v.WildcardFields), v.Key...), nil
}
func (v *OpaqueKeyLCAF) bodyLen() int   { return 3 + len(v.Key) }
func (v *OpaqueKeyLCAF) String() string { return "opaque-key(" + hex.EncodeToString(v.Key) + ")" }

// NATTraversalLCAF is type 7, carried in Info-Reply messages.
type NATTraversalLCAF struct {
	MSPort, ETRPort           uint16
	GlobalETR, MS, PrivateETR Address
	RTRs                      []Address
}

func (v *NATTraversalLCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	if v.MSPort, err = r.u16("MS UDP Port"); err != nil {
		return r, err
	}
	if v.ETRPort, err = r.u16("ETR UDP Port"); err != nil {
		return r, err
	}
	for _, p := range []*Address{&v.GlobalETR, &v.MS, &v.PrivateETR} {
		if *p, err = r.addressDepth("address", d); err != nil {
			return r, err
		}
	}
	v.RTRs, err = r.addressList("RTR", d)
	return r, err
}
func (v *NATTraversalLCAF) appendBody(b []byte, d int) ([]byte, error) {
	b, err := appendAddrs(put16(put16(b, v.MSPort), v.ETRPort), d, v.GlobalETR, v.MS, v.PrivateETR)
	if err != nil {
		return b, err
	}
	return appendAddrs(b, d, v.RTRs...)
}
func (v *NATTraversalLCAF) bodyLen() int {
	return 4 + addrsLen(v.GlobalETR, v.MS, v.PrivateETR) + addrsLen(v.RTRs...)
}
func (v *NATTraversalLCAF) String() string {
	rtrs := make([]string, len(v.RTRs))
	for i, a := range v.RTRs {
		rtrs[i] = a.String()
	}
	return fmt.Sprintf("nat(ms-port %d etr-port %d global %s ms %s private %s rtrs [%s])", v.MSPort, v.ETRPort,
		v.GlobalETR, v.MS, v.PrivateETR, strings.Join(rtrs, " "))
}

// NonceLocatorLCAF is type 8 (experimental).
type NonceLocatorLCAF struct {
	Reserved uint8
	Nonce    uint32 // 24 bits
	Addr     Address
}

func (v *NonceLocatorLCAF) decodeBody(r reader, _ uint8, d int) (reader, error) {
	w, err := r.u32("Nonce")
	if err != nil {
		return r, err
	}
	v.Reserved, v.Nonce = uint8(w>>24), w&0xffffff
	v.Addr, err = r.addressDepth("address", d)
	return r, err
}
func (v *NonceLocatorLCAF) appendBody(b []byte, d int) ([]byte, error) {
	return v.Addr.appendDepth(put32(b, uint32(v.Reserved)<<24|v.Nonce&0xffffff), d)
}
func (v *NonceLocatorLCAF) bodyLen() int   { return 4 + v.Addr.Len() }
func (v *NonceLocatorLCAF) String() string { return fmt.Sprintf("nonce(%#06x %s)", v.Nonce, v.Addr) }

// MulticastInfoLCAF is type 9: an (S,G) or (*,G) EID.
type MulticastInfoLCAF struct {
	IID                         uint32
	Reserved                    uint16
	SourceMaskLen, GroupMaskLen uint8
	Source, Group               Address
}

func (v *MulticastInfoLCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	if v.IID, err = r.u32("Instance ID"); err != nil {
		return r, err
	}
	if v.Reserved, err = r.u16("Reserved"); err != nil {
		return r, err
	}
	if v.SourceMaskLen, err = r.u8("Source mask-len"); err != nil {
		return r, err
	}
	if v.GroupMaskLen, err = r.u8("Group mask-len"); err != nil {
		return r, err
	}
	if v.Source, err = r.addressDepth("source", d); err != nil {
		return r, err
	}
	v.Group, err = r.addressDepth("group", d)
	return r, err
}
func (v *MulticastInfoLCAF) appendBody(b []byte, d int) ([]byte, error) {
	b = append(put16(put32(b, v.IID), v.Reserved), v.SourceMaskLen, v.GroupMaskLen)
	return appendAddrs(b, d, v.Source, v.Group)
}
func (v *MulticastInfoLCAF) bodyLen() int { return 8 + addrsLen(v.Source, v.Group) }
func (v *MulticastInfoLCAF) String() string {
	return fmt.Sprintf("[%d](%s/%d, %s/%d)", v.IID, v.Source, v.SourceMaskLen, v.Group, v.GroupMaskLen)
}

// ELP hop flags (RFC 8060 §4.9).
const (
	ELPLookup uint16 = 0x0004
	ELPProbe  uint16 = 0x0002
	ELPStrict uint16 = 0x0001
)

// ELPHop is one re-encapsulation hop of an Explicit Locator Path.
type ELPHop struct {
	Flags uint16
	Addr  Address
}

// ELPLCAF is type 10: an explicit locator path.
type ELPLCAF struct{ Hops []ELPHop }

func (v *ELPLCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	for r.remaining() > 0 {
		var h ELPHop
		if h.Flags, err = r.u16("hop flags"); err != nil {
			return r, err
		}
		if h.Addr, err = r.addressDepth("hop", d); err != nil {
			return r, err
		}
		v.Hops = append(v.Hops, h)
	}
	return r, nil
}
func (v *ELPLCAF) appendBody(b []byte, d int) ([]byte, error) {
	var err error
	for _, h := range v.Hops {
		if b, err = h.Addr.appendDepth(put16(b, h.Flags), d); err != nil {
			return b, err
		}
	}
	return b, nil
}
func (v *ELPLCAF) bodyLen() int {
	n := 0
	for _, h := range v.Hops {
		n += 2 + h.Addr.Len()
	}
	return n
}
func (v *ELPLCAF) String() string {
	s := make([]string, len(v.Hops))
	for i, h := range v.Hops {
		f := ""
		if h.Flags&ELPLookup != 0 {
			f += "L"
		}
		if h.Flags&ELPProbe != 0 {
			f += "P"
		}
		if h.Flags&ELPStrict != 0 {
			f += "S"
		}
		if f != "" {
			f = "(" + f + ")"
		}
		s[i] = h.Addr.String() + f
	}
	return "elp(" + strings.Join(s, " -> ") + ")"
}

// SecurityKeyLCAF is type 11: keys bound to a locator (DDT, lisp-crypto).
type SecurityKeyLCAF struct {
	Rsvd3     uint8
	Algorithm uint8 // key algorithm / cipher suite
	Flags     uint8 // Rsvd4 and the R (revoke) bit 0x01
	Keys      [][]byte
	Addr      Address
}

func (v *SecurityKeyLCAF) decodeBody(r reader, _ uint8, d int) (reader, error) {
	count, err := r.u8("Key Count")
	if err != nil {
		return r, err
	}
	if v.Rsvd3, err = r.u8("Rsvd3"); err != nil {
		return r, err
	}
	if v.Algorithm, err = r.u8("Key Algorithm"); err != nil {
		return r, err
	}
	if v.Flags, err = r.u8("Rsvd4/R"); err != nil {
		return r, err
	}
	for range count {
		n, err := r.u16("Key Length")
		if err != nil {
			return r, err
		}
		k, err := r.bytes(int(n), "Key Material")
		if err != nil {
			return r, err
		}
		v.Keys = append(v.Keys, k)
	}
	v.Addr, err = r.addressDepth("locator", d)
	return r, err
}
func (v *SecurityKeyLCAF) appendBody(b []byte, d int) ([]byte, error) {
	if len(v.Keys) > 255 {
		return b, encErr("security-key LCAF", "Key Count", ErrTooMany)
	}
	b = append(b, uint8(len(v.Keys)), v.Rsvd3, v.Algorithm, v.Flags)
	for _, k := range v.Keys {
		if len(k) > 0xffff {
			return b, encErr("security-key LCAF", "Key Length", ErrBadLength)
		}
		b = append(put16(b, uint16(len(k))), k...)
	}
	return v.Addr.appendDepth(b, d)
}
func (v *SecurityKeyLCAF) bodyLen() int {
	n := 4 + v.Addr.Len()
	for _, k := range v.Keys {
		n += 2 + len(k)
	}
	return n
}
func (v *SecurityKeyLCAF) String() string {
	return fmt.Sprintf("security-key(alg %d, %d keys, %s)", v.Algorithm, len(v.Keys), v.Addr)
}

// SourceDestLCAF is type 12: a (source, destination) EID pair.
type SourceDestLCAF struct {
	Reserved                   uint16
	SourceMaskLen, DestMaskLen uint8
	Source, Dest               Address
}

func (v *SourceDestLCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	if v.Reserved, err = r.u16("Reserved"); err != nil {
		return r, err
	}
	if v.SourceMaskLen, err = r.u8("Source mask-len"); err != nil {
		return r, err
	}
	if v.DestMaskLen, err = r.u8("Dest mask-len"); err != nil {
		return r, err
	}
	if v.Source, err = r.addressDepth("source", d); err != nil {
		return r, err
	}
	v.Dest, err = r.addressDepth("dest", d)
	return r, err
}
func (v *SourceDestLCAF) appendBody(b []byte, d int) ([]byte, error) {
	return appendAddrs(append(put16(b, v.Reserved), v.SourceMaskLen, v.DestMaskLen), d, v.Source, v.Dest)
}
func (v *SourceDestLCAF) bodyLen() int { return 4 + addrsLen(v.Source, v.Dest) }
func (v *SourceDestLCAF) String() string {
	return fmt.Sprintf("(%s/%d -> %s/%d)", v.Source, v.SourceMaskLen, v.Dest, v.DestMaskLen)
}

// RLEEntry is one replication target.
type RLEEntry struct {
	Rsvd3 uint16
	Rsvd4 uint8
	Level uint8
	Addr  Address
}

// RLELCAF is type 13: a replication list.
type RLELCAF struct{ Entries []RLEEntry }

func (v *RLELCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	for r.remaining() > 0 {
		var e RLEEntry
		if e.Rsvd3, err = r.u16("Rsvd3"); err != nil {
			return r, err
		}
		if e.Rsvd4, err = r.u8("Rsvd4"); err != nil {
			return r, err
		}
		if e.Level, err = r.u8("Level"); err != nil {
			return r, err
		}
		if e.Addr, err = r.addressDepth("RTR/ETR", d); err != nil {
			return r, err
		}
		v.Entries = append(v.Entries, e)
	}
	return r, nil
}
func (v *RLELCAF) appendBody(b []byte, d int) ([]byte, error) {
	var err error
	for _, e := range v.Entries {
		if b, err = e.Addr.appendDepth(append(put16(b, e.Rsvd3), e.Rsvd4, e.Level), d); err != nil {
			return b, err
		}
	}
	return b, nil
}
func (v *RLELCAF) bodyLen() int {
	n := 0
	for _, e := range v.Entries {
		n += 4 + e.Addr.Len()
	}
	return n
}
func (v *RLELCAF) String() string {
	s := make([]string, len(v.Entries))
	for i, e := range v.Entries {
		s[i] = fmt.Sprintf("%s(level %d)", e.Addr, e.Level)
	}
	return "rle(" + strings.Join(s, ", ") + ")"
}

// JSONLCAF is type 14 (experimental): a JSON document and an optional address.
// Binary is the B bit, carried in Rsvd2.
type JSONLCAF struct {
	Binary bool
	JSON   []byte
	Addr   Address
}

func (v *JSONLCAF) decodeBody(r reader, rsvd2 uint8, d int) (reader, error) {
	v.Binary = rsvd2&1 != 0
	n, err := r.u16("JSON length")
	if err != nil {
		return r, err
	}
	if v.JSON, err = r.bytes(int(n), "JSON"); err != nil {
		return r, err
	}
	v.Addr, err = r.addressDepth("address", d)
	return r, err
}
func (v *JSONLCAF) rsvd2(received uint8) uint8 {
	if v.Binary {
		return received | 1
	}
	return received &^ 1
}
func (v *JSONLCAF) appendBody(b []byte, d int) ([]byte, error) {
	if len(v.JSON) > 0xffff {
		return b, encErr("JSON LCAF", "JSON length", ErrBadLength)
	}
	return v.Addr.appendDepth(append(put16(b, uint16(len(v.JSON))), v.JSON...), d)
}
func (v *JSONLCAF) bodyLen() int { return 2 + len(v.JSON) + v.Addr.Len() }
func (v *JSONLCAF) String() string {
	if v.Binary {
		return "json(binary " + strconv.Itoa(len(v.JSON)) + " bytes)"
	}
	return "json(" + string(v.JSON) + ")"
}

// KeyValueLCAF is type 15 (experimental).
type KeyValueLCAF struct{ Key, Value Address }

func (v *KeyValueLCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	if v.Key, err = r.addressDepth("key", d); err != nil {
		return r, err
	}
	v.Value, err = r.addressDepth("value", d)
	return r, err
}
func (v *KeyValueLCAF) appendBody(b []byte, d int) ([]byte, error) {
	return appendAddrs(b, d, v.Key, v.Value)
}
func (v *KeyValueLCAF) bodyLen() int   { return addrsLen(v.Key, v.Value) }
func (v *KeyValueLCAF) String() string { return fmt.Sprintf("kv(%s=%s)", v.Key, v.Value) }

// Encapsulation-format flags (RFC 8060 §5.5).
const (
	EncapLISP     uint32 = 0x01
	EncapL2LISP   uint32 = 0x02
	EncapVXLAN    uint32 = 0x04
	EncapVXLANGPE uint32 = 0x08
	EncapNVGRE    uint32 = 0x10
	EncapGeneve   uint32 = 0x20
	EncapGUE      uint32 = 0x40
)

// EncapFormatLCAF is type 16 (experimental): encapsulations an RLOC accepts.
type EncapFormatLCAF struct {
	Flags uint32
	Addr  Address
}

func (v *EncapFormatLCAF) decodeBody(r reader, _ uint8, d int) (_ reader, err error) {
	if v.Flags, err = r.u32("flags"); err != nil {
		return r, err
	}
	v.Addr, err = r.addressDepth("address", d)
	return r, err
}
func (v *EncapFormatLCAF) appendBody(b []byte, d int) ([]byte, error) {
	return v.Addr.appendDepth(put32(b, v.Flags), d)
}
func (v *EncapFormatLCAF) bodyLen() int { return 4 + v.Addr.Len() }
func (v *EncapFormatLCAF) String() string {
	var names []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{EncapLISP, "lisp"}, {EncapL2LISP, "l2-lisp"}, {EncapVXLAN, "vxlan"}, {EncapVXLANGPE, "vxlan-gpe"},
		{EncapNVGRE, "nvgre"}, {EncapGeneve, "geneve"}, {EncapGUE, "gue"}} {
		if v.Flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	return fmt.Sprintf("encap(%s %s)", strings.Join(names, ","), v.Addr)
}

// VendorLCAF is type 255 (RFC 9306).
type VendorLCAF struct {
	Rsvd3 uint8
	OUI   [3]byte
	Data  []byte
}

func (v *VendorLCAF) decodeBody(r reader, _ uint8, _ int) (_ reader, err error) {
	if v.Rsvd3, err = r.u8("Rsvd3"); err != nil {
		return r, err
	}
	oui, err := r.bytes(3, "OUI")
	if err != nil {
		return r, err
	}
	copy(v.OUI[:], oui)
	v.Data, err = r.bytes(r.remaining(), "vendor data")
	return r, err
}
func (v *VendorLCAF) appendBody(b []byte, _ int) ([]byte, error) {
	return append(append(append(b, v.Rsvd3), v.OUI[:]...), v.Data...), nil
}
func (v *VendorLCAF) bodyLen() int { return 4 + len(v.Data) }
func (v *VendorLCAF) String() string {
	return fmt.Sprintf("vendor(oui %s, %d bytes)", hex.EncodeToString(v.OUI[:]), len(v.Data))
}

// OpaqueLCAF holds the body of an LCAF type this package does not know.
type OpaqueLCAF struct{ Data []byte }

func (v *OpaqueLCAF) decodeBody(r reader, _ uint8, _ int) (_ reader, err error) {
	v.Data, err = r.bytes(r.remaining(), "body")
	return r, err
}
func (v *OpaqueLCAF) appendBody(b []byte, _ int) ([]byte, error) {
	return append(b, v.Data...), nil
}
func (v *OpaqueLCAF) bodyLen() int   { return len(v.Data) }
func (v *OpaqueLCAF) String() string { return "opaque(" + hex.EncodeToString(v.Data) + ")" }
