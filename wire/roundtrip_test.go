package wire

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// gen builds random but well-formed values; every field that the wire
// carries gets a random value so that a field dropped or misplaced by the
// codec shows up as a difference.
type gen struct{ r *rand.Rand }

func (g gen) bool() bool    { return g.r.IntN(2) == 1 }
func (g gen) u8() uint8     { return uint8(g.r.Uint32()) }
func (g gen) u16() uint16   { return uint16(g.r.Uint32()) }
func (g gen) u32() uint32   { return g.r.Uint32() }
func (g gen) n(max int) int { return g.r.IntN(max + 1) }
func (g gen) bytes(n int) []byte {
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = g.u8()
	}
	return b
}

func (g gen) ip(v6 bool) Address {
	if v6 {
		return AddrFromIP(netip.AddrFrom16([16]byte(g.bytes(16))))
	}
	return AddrFromIP(netip.AddrFrom4([4]byte(g.bytes(4))))
}

// addr returns a random address; depth limits LCAF nesting.
func (g gen) addr(depth int) Address {
	k := g.n(12)
	if depth > 2 && k > 6 {
		k = 1
	}
	switch k {
	case 0:
		return Address{}
	case 1, 2:
		return g.ip(k == 2)
	case 3:
		return Address{AFI: AFIMAC48, Raw: g.bytes(6)}
	case 4:
		return Address{AFI: AFI802, Raw: g.bytes(6)}
	case 5:
		name := make([]byte, g.n(10))
		for i := range name {
			name[i] = 'a' + byte(g.n(25))
		}
		if len(name) == 0 {
			name = nil
		}
		return Address{AFI: AFIDistName, Raw: name}
	case 6:
		return Address{AFI: AFIASN, Raw: g.bytes(4)}
	}
	return Address{AFI: AFILCAF, LCAF: g.lcaf(depth + 1)}
}

func (g gen) addrs(depth, max int) []Address {
	n := g.n(max)
	if n == 0 {
		return nil
	}
	a := make([]Address, n)
	for i := range a {
		a[i] = g.addr(depth)
	}
	return a
}

func (g gen) lcaf(d int) *LCAF {
	l := &LCAF{Rsvd1: g.u8(), Flags: g.u8(), Rsvd2: g.u8()}
	types := []LCAFType{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 255, 17, 200}
	l.Type = types[g.n(len(types)-1)]
	switch l.Type {
	case LCAFNull:
		l.Body = &NullLCAF{}
	case LCAFAFIList:
		l.Body = &AFIListLCAF{Addrs: g.addrs(d, 3)}
	case LCAFInstanceID:
		v := &InstanceIDLCAF{IID: g.u32(), MaskLen: g.u8(), Addr: g.addr(d)}
		l.Body, l.Rsvd2 = v, v.MaskLen
	case LCAFASNumber:
		l.Body = &ASNumberLCAF{ASN: g.u32(), Addr: g.addr(d)}
	case LCAFAppData:
		l.Body = &AppDataLCAF{TOS: g.u32() & 0xffffff, Protocol: g.u8(), LocalPortLow: g.u16(), LocalPortHigh: g.u16(),
			RemotePortLow: g.u16(), RemotePortHigh: g.u16(), Addr: g.addr(d)}
	case LCAFGeoCoord:
		l.Body = &GeoLCAF{North: g.bool(), LatDegrees: uint16(g.n(90)), LatMinutes: uint8(g.n(59)), LatSeconds: uint8(g.n(59)),
			East: g.bool(), LonDegrees: uint16(g.n(180)), LonMinutes: uint8(g.n(59)), LonSeconds: uint8(g.n(59)),
			Altitude: int32(g.u32()), Addr: g.addr(d)}
	case LCAFOpaqueKey:
		l.Body = &OpaqueKeyLCAF{KeyFieldNum: g.u8(), WildcardFields: g.u16(), Key: g.bytes(g.n(8))}
	case LCAFNATTraversal:
		l.Body = &NATTraversalLCAF{MSPort: 4342, ETRPort: g.u16(), GlobalETR: g.addr(d), MS: g.addr(d),
			PrivateETR: g.addr(d), RTRs: g.addrs(d, 3)}
	case LCAFNonceLocator:
		l.Body = &NonceLocatorLCAF{Reserved: g.u8(), Nonce: g.u32() & 0xffffff, Addr: g.addr(d)}
	case LCAFMulticastInfo:
		l.Body = &MulticastInfoLCAF{IID: g.u32(), Reserved: g.u16(), SourceMaskLen: g.u8(), GroupMaskLen: g.u8(),
			Source: g.addr(d), Group: g.addr(d)}
	case LCAFELP:
		v := &ELPLCAF{}
		for range g.n(3) {
			v.Hops = append(v.Hops, ELPHop{Flags: g.u16(), Addr: g.addr(d)})
		}
		l.Body = v
	case LCAFSecurityKey:
		v := &SecurityKeyLCAF{Rsvd3: g.u8(), Algorithm: g.u8(), Flags: g.u8(), Addr: g.addr(d)}
		for range g.n(3) {
			v.Keys = append(v.Keys, g.bytes(g.n(40)+1))
		}
		l.Body = v
	case LCAFSourceDest:
		l.Body = &SourceDestLCAF{Reserved: g.u16(), SourceMaskLen: g.u8(), DestMaskLen: g.u8(), Source: g.addr(d), Dest: g.addr(d)}
	case LCAFRLE:
		v := &RLELCAF{}
		for range g.n(3) {
			v.Entries = append(v.Entries, RLEEntry{Rsvd3: g.u16(), Rsvd4: g.u8(), Level: g.u8(), Addr: g.addr(d)})
		}
		l.Body = v
	case LCAFJSON:
		v := &JSONLCAF{Binary: g.bool(), JSON: []byte(`{"k":` + string('0'+rune(g.n(9))) + `}`), Addr: g.addr(d)}
		l.Rsvd2 = l.Rsvd2&^1 | flag(v.Binary, 1)
		l.Body = v
	case LCAFKeyValue:
		l.Body = &KeyValueLCAF{Key: g.addr(d), Value: g.addr(d)}
	case LCAFEncapFormat:
		l.Body = &EncapFormatLCAF{Flags: g.u32(), Addr: g.addr(d)}
	case LCAFVendorSpecific:
		l.Body = &VendorLCAF{Rsvd3: g.u8(), OUI: [3]byte(g.bytes(3)), Data: g.bytes(g.n(6))}
	default:
		l.Body = &OpaqueLCAF{Data: g.bytes(g.n(10))}
	}
	return l
}

// eid returns an IP EID, with or without an Instance-ID LCAF, and a mask
// length valid for it.
func (g gen) eid() (Address, uint8) {
	v6 := g.bool()
	a := g.ip(v6)
	ml := uint8(g.n(32))
	if v6 {
		ml = uint8(g.n(128))
	}
	if g.bool() {
		a = AddrWithIID(g.u32(), a)
		a.LCAF.Body.(*InstanceIDLCAF).MaskLen = 0
	}
	return a, ml
}

func (g gen) record(referral bool) EIDRecord {
	eid, ml := g.eid()
	if g.n(10) == 0 {
		eid, ml = g.addr(0), g.u8()
		if _, in, ok := eid.InstanceID(); ok && (in.AFI == AFIIPv4 || in.AFI == AFIIPv6) {
			ml = 0
		}
	}
	r := EIDRecord{TTL: g.u32(), MaskLen: ml, Action: Action(g.n(7)), Authoritative: g.bool(),
		Reserved: g.u16() & 0x07ff, MapVersion: g.u16() & 0xfff, EID: eid}
	if referral {
		r.Incomplete = g.bool()
		for range g.n(2) {
			r.Signatures = append(r.Signatures, DDTSignature{OriginalTTL: g.u32(), Expiration: g.u32(),
				Inception: g.u32(), KeyTag: g.u16(), Algorithm: g.u8(), Reserved1: g.u8(), Reserved2: g.u16(),
				Signature: g.bytes(g.n(64) + 1)})
		}
	} else {
		r.Reserved |= g.u16() & 0x0800
		r.ReservedV = g.u8() & 0xf
	}
	for range g.n(4) {
		r.Locators = append(r.Locators, Locator{Priority: g.u8(), Weight: g.u8(), MPriority: g.u8(), MWeight: g.u8(),
			Flags: g.u16(), Address: g.addr(0)})
	}
	return r
}

func (g gen) records(max int, referral bool) []EIDRecord {
	n := g.n(max)
	if n == 0 {
		return nil
	}
	r := make([]EIDRecord, n)
	for i := range r {
		r[i] = g.record(referral)
	}
	return r
}

func (g gen) authBody() AuthBody {
	a := AuthBody{Nonce: g.r.Uint64(), KeyID: g.u8(), Algorithm: AuthAlg(g.n(3)), Records: g.records(3, false),
		HasXTRID: g.bool()}
	a.AuthData = g.bytes(a.Algorithm.DigestLen())
	if a.HasXTRID {
		a.XTRID, a.SiteID = [16]byte(g.bytes(16)), g.r.Uint64()
	}
	return a
}

func (g gen) mapRequest() *MapRequest {
	m := &MapRequest{Authoritative: g.bool(), Probe: g.bool(), SMR: g.bool(), PITR: g.bool(), SMRInvoked: g.bool(),
		Local: g.bool(), DontReply: g.bool(), Reserved1: g.u8() & mreqRsvd1, Reserved2: g.u8() & mreqRsvd2,
		Nonce: g.r.Uint64(), SourceEID: g.addr(0), HasXTRID: g.bool()}
	m.ITRRLOCs = make([]Address, 1+g.n(3))
	for i := range m.ITRRLOCs {
		m.ITRRLOCs[i] = g.addr(0)
	}
	for range 1 + g.n(2) {
		eid, ml := g.eid()
		m.Records = append(m.Records, RequestRecord{Notify: g.bool(), Reserved: g.u8() & 0x7f, MaskLen: ml, EID: eid})
	}
	if g.bool() {
		r := g.record(false)
		m.MapReply = &r
	}
	if m.HasXTRID {
		m.XTRID, m.NoSiteID = [16]byte(g.bytes(16)), g.n(4) == 0
		if !m.NoSiteID {
			m.SiteID = g.r.Uint64()
		}
	}
	return m
}

// eidAD is an EID-AD: the ITR's KDF-only form or a Map-Server's.
func (g gen) eidAD() EIDAuthData {
	if g.n(3) == 0 {
		return EIDAuthData{KDFOnly: true, KDF: SecKDF(g.u16())}
	}
	e := EIDAuthData{KDF: SecKDF(g.u16()), ETRCantSign: g.bool(), Reserved: g.u8() & 0x7f, HMACID: SecHMAC(g.u16()),
		HMAC: g.bytes(g.n(20))}
	for range g.n(3) {
		eid, ml := g.eid()
		e.Records = append(e.Records, EIDADRecord{Reserved: g.u8(), MaskLen: ml, EID: eid})
	}
	return e
}

func (g gen) ecmAD() *ECMAuthData {
	a := &ECMAuthData{Reserved: g.u8(), RequestedHMAC: SecHMAC(g.u16()), KeyID: g.u8(), Wrap: SecKeyWrap(g.u8()),
		EID: g.eidAD()}
	copy(a.OTK[:], g.bytes(WrappedOTKLen))
	return a
}

func (g gen) mapReplyAD() *MapReplyAuthData {
	return &MapReplyAuthData{Reserved: g.u32() & 0xffffff, EID: g.eidAD(), PKTHMACID: SecHMAC(g.u16()),
		PKTHMAC: g.bytes(g.n(32))}
}

func (g gen) message(t MessageType, depth int) Message {
	switch t {
	case TypeMapRequest:
		return g.mapRequest()
	case TypeMapReply:
		m := &MapReply{Probe: g.bool(), EchoNonce: g.bool(), Security: g.bool(), Reserved0: g.u8() & 1,
			Reserved: g.u16(), Nonce: g.r.Uint64(), Records: g.records(3, false)}
		if m.Security && g.n(4) > 0 { // S alone, without AD, decodes too
			if err := m.SetAuthData(g.mapReplyAD()); err != nil {
				panic(err)
			}
		}
		return m
	case TypeMapRegister:
		return &MapRegister{ProxyReply: g.bool(), Security: g.bool(), Reserved0: g.u8() & 1, Reserved1: g.u8(),
			Reserved2: g.u8() & regRsvd2, EIDNotify: g.bool(), UseTTL: g.bool(), Merge: g.bool(),
			WantMapNotify: g.bool(), AuthBody: g.authBody()}
	case TypeMapNotify:
		return &MapNotify{Reserved0: g.u8() & notifyRsvd0, Reserved: g.u16(), AuthBody: g.authBody()}
	case TypeMapNotifyAck:
		return &MapNotifyAck{Reserved0: g.u8() & notifyRsvd0, Reserved: g.u16(), AuthBody: g.authBody()}
	case TypeMapReferral:
		return &MapReferral{Reserved: g.u32() & 0xfffff, Nonce: g.r.Uint64(), Records: g.records(3, true)}
	case TypeInfo:
		eid, ml := g.eid()
		m := &Info{Reply: g.bool(), Reserved0: g.u8() & infoRsvd, Reserved: g.u32() & 0xffffff, Nonce: g.r.Uint64(),
			KeyID: g.u8(), Algorithm: AuthAlg(g.n(2)), TTL: g.u32(), Reserved2: g.u8(), MaskLen: ml, EID: eid}
		m.AuthData = g.bytes(m.Algorithm.DigestLen())
		if m.Reply {
			m.NATAddress = Address{AFI: AFILCAF, LCAF: &LCAF{Type: LCAFNATTraversal, Body: &NATTraversalLCAF{
				MSPort: 4342, ETRPort: g.u16(), GlobalETR: g.ip(false), MS: g.ip(false), PrivateETR: g.ip(g.bool()),
				RTRs: []Address{g.ip(false)}}}}
		}
		return m
	case TypeECM:
		v6 := g.bool()
		e := &ECM{Security: g.bool(), DDT: g.bool(), ForETR: g.bool(), ForMS: g.bool(), Reserved: g.u32() & 0xffffff,
			SrcPort: g.u16(), DstPort: 4342}
		e.IP.Src, e.IP.Dst = g.ip(v6).IP, g.ip(v6).IP
		e.IP.TTL, e.IP.TOS = g.u8()|1, g.u8()
		if v6 {
			e.IP.FlowLabel = g.u32() & 0xfffff
		} else {
			e.IP.ID, e.IP.FlagsFrag = g.u16(), g.u16()&0x4000
			e.IP.Options = g.bytes(4 * g.n(2))
		}
		if e.Security {
			var err error
			if g.bool() {
				err = e.SetAuthData(g.ecmAD())
			} else {
				err = e.SetRTRAuthData(&RTRAuthData{Reserved: g.u32() & 0xffffff, KeyID: g.u16(), MAC: g.bytes(g.n(33))})
			}
			if err != nil {
				panic(err)
			}
		}
		inner := []MessageType{TypeMapRequest, TypeMapRegister, TypeMapReply, TypeECM}[g.n(3)]
		if depth >= maxECMDepth-1 && inner == TypeECM {
			inner = TypeMapRequest
		}
		e.Message = g.message(inner, depth+1)
		return e
	case TypeSharedExtension:
		return &SharedExtension{SubType: g.u16() & 0xfff, Data: g.bytes(g.n(12))}
	}
	return &UnknownMessage{MsgType: t, Data: append([]byte{byte(t) << 4}, g.bytes(g.n(10))...)}
}

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.EquateEmpty(),
	// Checksum fields are outputs of the encoder, not inputs.
	cmpopts.IgnoreFields(InnerIP{}, "Checksum", "UDPChecksum", "KeepChecksums"),
}

func TestRoundTripAllTypes(t *testing.T) {
	types := []MessageType{TypeMapRequest, TypeMapReply, TypeMapRegister, TypeMapNotify, TypeMapNotifyAck,
		TypeMapReferral, TypeInfo, TypeECM, TypeSharedExtension, 9, 14}
	g := gen{rand.New(rand.NewPCG(1, 2))}
	for _, typ := range types {
		t.Run(typ.String(), func(t *testing.T) {
			for i := range 1000 {
				m := g.message(typ, 0)
				b, err := Encode(m)
				if err != nil {
					t.Fatalf("#%d encode %s: %v", i, m, err)
				}
				if len(b) != m.Len() {
					t.Fatalf("#%d Len() = %d, encoded %d bytes: %s", i, m.Len(), len(b), m)
				}
				got, err := Decode(b)
				if err != nil {
					t.Fatalf("#%d decode %x: %v\n%s", i, b, err, m)
				}
				if d := cmp.Diff(m, got, cmpOpts...); d != "" {
					t.Fatalf("#%d round trip differs (-sent +decoded):\n%s", i, d)
				}
				again, err := Encode(got)
				if err != nil || !bytes.Equal(again, b) {
					t.Fatalf("#%d re-encoding differs: %v\n %x\n %x", i, err, again, b)
				}
				if e, ok := got.(*ECM); ok && e.IP.ChecksumsBad {
					t.Fatalf("#%d encoder wrote a bad checksum: %x", i, b)
				}
			}
		})
	}
}

// TestDecodeTruncations cuts every valid encoding at every length: each cut
// must fail cleanly (or, for messages with optional tails, still decode).
func TestDecodeTruncations(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(3, 4))}
	for i := range 300 {
		typ := []MessageType{1, 2, 3, 4, 5, 6, 7, 8}[i%8]
		b, err := Encode(g.message(typ, 0))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			_, _ = Decode(b[:n]) // must not panic
		}
	}
}

func TestSignVerifyAllAlgorithms(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(5, 6))}
	secret := []byte("s3cret")
	for _, alg := range []AuthAlg{AuthHMACSHA1, AuthHMACSHA256, AuthHMACSHA256HKDF} {
		for _, typ := range []MessageType{TypeMapRegister, TypeMapNotify, TypeMapNotifyAck} {
			m := g.message(typ, 0)
			m.(authMessage).authBody().Algorithm = alg
			opts := AuthOptions{AllowHKDF: alg == AuthHMACSHA256HKDF}
			b, err := EncodeSigned(m, secret, opts)
			if err != nil {
				t.Fatalf("%v %v: %v", alg, typ, err)
			}
			if err := Verify(b, secret, opts); err != nil {
				t.Errorf("%v %v: verify: %v", alg, typ, err)
			}
			if err := Verify(b, []byte("other"), opts); err == nil {
				t.Errorf("%v %v: verified with the wrong key", alg, typ)
			}
			if alg == AuthHMACSHA256HKDF {
				if err := Verify(b, secret, AuthOptions{}); err == nil {
					t.Errorf("HKDF verified without AllowHKDF")
				}
			}
			// The decoded message carries the MAC that was written.
			d, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.(authMessage).authBody().AuthData, m.(authMessage).authBody().AuthData) {
				t.Errorf("%v %v: AuthData not updated by EncodeSigned", alg, typ)
			}
		}
	}
}

// The cached-HMAC Authenticator agrees with the package functions.
func TestAuthenticatorMatchesFunctions(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(11, 12))}
	for _, alg := range []AuthAlg{AuthHMACSHA1, AuthHMACSHA256, AuthHMACSHA256HKDF} {
		opts := AuthOptions{AllowHKDF: true}
		a := NewAuthenticator(alg, []byte("k1"), opts)
		for range 20 {
			m := g.message(TypeMapRegister, 0)
			m.(authMessage).authBody().Algorithm = alg
			b1, err := EncodeSigned(m, []byte("k1"), opts)
			if err != nil {
				t.Fatal(err)
			}
			b2, err := a.EncodeSigned(m)
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("%v: signatures differ (%v)", alg, err)
			}
			if a.Verify(b1) != nil || NewAuthenticator(alg, []byte("k2"), opts).Verify(b1) == nil {
				t.Fatalf("%v: verify", alg)
			}
		}
	}
}
