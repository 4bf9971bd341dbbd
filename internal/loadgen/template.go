package loadgen

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// Byte offsets shared by Map-Register and Map-Notify (RFC 9301 §5.6, §5.7).
const (
	offNonce    = 4
	offKeyID    = 12
	offAlg      = 13
	offAuthLen  = 14
	offAuthData = 16
)

// requestTemplate is an ECM'd Map-Request encoded once, with the offsets
// of what changes per message: the nonce, the EID (inner IP destination and
// the request record) and the two checksums that cover them.
type requestTemplate struct {
	b        []byte
	inner4   bool // inner IPv4 header (with a header checksum)
	ipOff    int
	udpOff   int
	nonceOff int
	dstOff   int // inner IP destination
	eidOff   int // EID in the request record
	src, dst int // inner source/destination address offsets and length, for the pseudo-header
	alen     int
	sec      *secRequest // LISP-SEC: the wrapped OTK at otkOff changes with the nonce
	otkOff   int
}

// newRequestTemplate encodes the ECM of a Map-Request from itr (inner UDP
// source port port) for the first EID of s, with the LISP-SEC ECM AD when
// sec is not nil.
func newRequestTemplate(s *eidSpace, iid uint32, hasIID bool, itr netip.Addr, port uint16, sec *secRequest) (*requestTemplate, error) {
	eid := s.netip(s.addr(0, 0, 0))
	e := wire.AddrFromIP(eid)
	if hasIID {
		e = wire.AddrWithIID(iid, e)
	}
	req := &wire.MapRequest{
		ITRRLOCs: []wire.Address{wire.AddrFromIP(itr)},
		Records:  []wire.RequestRecord{{MaskLen: uint8(eid.BitLen()), EID: e}},
	}
	ecm := wire.EncapsulateMapRequest(req, eid, port, itr)
	if sec != nil {
		ad, err := sec.authData(0)
		if err != nil {
			return nil, err
		}
		if err := ecm.SetAuthData(ad); err != nil {
			return nil, err
		}
	}
	b, err := wire.Encode(ecm)
	if err != nil {
		return nil, err
	}
	// The ECM AD sits between the ECM header and the inner IP header:
	// Type, Unassigned, Requested HMAC ID, OTK Length, Key ID, Wrap ID,
	// then the wrapped OTK.
	t := &requestTemplate{b: b, inner4: eid.Is4(), ipOff: 4 + len(ecm.SecurityAD), alen: s.len(), sec: sec, otkOff: 4 + 8}
	if t.inner4 {
		t.src, t.dst, t.udpOff = t.ipOff+12, t.ipOff+16, t.ipOff+20
	} else {
		t.src, t.dst, t.udpOff = t.ipOff+8, t.ipOff+24, t.ipOff+40
	}
	t.dstOff = t.dst
	t.nonceOff = t.udpOff + 8 + offNonce
	t.eidOff = len(b) - t.alen // the record's EID is the last field
	return t, nil
}

// fill writes the request with nonce for EID (hi, lo) into dst (which must
// have room) and returns it.
func (t *requestTemplate) fill(dst []byte, s *eidSpace, nonce, hi, lo uint64) []byte {
	b := dst[:len(t.b)]
	copy(b, t.b)
	binary.BigEndian.PutUint64(b[t.nonceOff:], nonce)
	if t.sec != nil {
		t.sec.wrap(b[t.otkOff:], nonce)
	}
	s.put(b[t.dstOff:], hi, lo)
	s.put(b[t.eidOff:], hi, lo)
	if t.inner4 {
		ip := b[t.ipOff : t.ipOff+20]
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], wire.ChecksumFold(wire.ChecksumAdd(0, ip)))
	}
	udp := b[t.udpOff:]
	udp[6], udp[7] = 0, 0
	sa, _ := netip.AddrFromSlice(b[t.src : t.src+t.alen])
	da, _ := netip.AddrFromSlice(b[t.dst : t.dst+t.alen])
	binary.BigEndian.PutUint16(udp[6:], wire.UDPChecksum(sa, da, udp))
	return b
}

// registerTemplate is a Map-Register encoded once, with the offsets of the
// EID and the xTR-ID.
type registerTemplate struct {
	b       []byte
	eidOff  int
	xtrOff  int // -1 when no xTR-ID is sent
	perPref bool
}

// xtrIDPrefix starts every xTR-ID the load generator sends; the last 8
// bytes hold the prefix number (0 when one xTR-ID serves every prefix),
// so that a second run refreshes the registrations of the first.
var xtrIDPrefix = [8]byte{'l', 'i', 's', 'p', 'b', 'n', 'c', 'h'}

func newRegisterTemplate(c *Config, s *eidSpace, rloc netip.Addr) (*registerTemplate, error) {
	eid := wire.AddrFromIP(s.netip(s.addr(0, 0, 0)))
	if c.HasInstanceID {
		eid = wire.AddrWithIID(c.InstanceID, eid)
	}
	m := &wire.MapRegister{
		ProxyReply:    c.ProxyReply,
		WantMapNotify: true,
		AuthBody: wire.AuthBody{
			KeyID:     c.KeyID,
			Algorithm: c.Algorithm,
			Records: []wire.EIDRecord{{
				TTL: c.TTL, MaskLen: s.maskLen, Authoritative: true, EID: eid,
				Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255, MWeight: 0,
					Flags: wire.LocatorLocal | wire.LocatorReachable, Address: wire.AddrFromIP(rloc)}},
			}},
			HasXTRID: c.XTRIDPerPrefix || c.HasSiteID,
			SiteID:   c.SiteID,
		},
	}
	copy(m.XTRID[:], xtrIDPrefix[:])
	b, err := wire.EncodeSigned(m, c.Secret, wire.AuthOptions{})
	if err != nil {
		return nil, err
	}
	rec := offAuthData + len(m.AuthData)
	t := &registerTemplate{b: b, xtrOff: -1, perPref: c.XTRIDPerPrefix}
	// Record: TTL(4) count(1) mask(1) ACT(2) version(2), then the EID's AFI
	// (2), and for an Instance-ID LCAF 6 bytes of LCAF header, the IID (4)
	// and the inner AFI (2).
	t.eidOff = rec + 12
	if c.HasInstanceID {
		t.eidOff += 12
	}
	if m.HasXTRID {
		t.xtrOff = len(b) - 24
	}
	return t, nil
}

// fill writes the Map-Register for prefix i with nonce into dst, signed
// by a, and returns it.
func (t *registerTemplate) fill(dst []byte, s *eidSpace, a *authenticator, nonce uint64, i int) []byte {
	b := dst[:len(t.b)]
	copy(b, t.b)
	binary.BigEndian.PutUint64(b[offNonce:], nonce)
	hi, lo := s.addr(i, 0, 0)
	s.put(b[t.eidOff:], hi, lo)
	if t.perPref {
		binary.BigEndian.PutUint64(b[t.xtrOff+8:], uint64(i))
	}
	a.sign(b)
	return b
}

// authenticator signs and verifies Map-Registers and Map-Notifies with one
// reused HMAC state: the MAC covers the whole message with the
// Authentication Data taken as zero (RFC 9301 §5.6, as wire.Sign does).
type authenticator struct {
	alg   wire.AuthAlg
	full  int // digest length sent
	trunc int // truncated length also accepted
	h     hash.Hash
	sum   [sha256.Size]byte
	saved [sha256.Size]byte
}

func newAuthenticator(alg wire.AuthAlg, secret []byte) (*authenticator, error) {
	a := &authenticator{alg: alg}
	switch alg {
	case wire.AuthHMACSHA1:
		a.h, a.full, a.trunc = hmac.New(sha1.New, secret), sha1.Size, 12
	case wire.AuthHMACSHA256:
		a.h, a.full, a.trunc = hmac.New(sha256.New, secret), sha256.Size, 16
	default:
		return nil, fmt.Errorf("authentication algorithm %s is not supported", alg)
	}
	return a, nil
}

// sign fills the Authentication Data of b, whose length field is full.
func (a *authenticator) sign(b []byte) {
	field := b[offAuthData : offAuthData+a.full]
	clear(field)
	a.h.Reset()
	a.h.Write(b)
	copy(field, a.h.Sum(a.sum[:0]))
}

// verify checks the Authentication Data of a received message in constant
// time. b is modified during the computation and restored.
func (a *authenticator) verify(b []byte) bool {
	if len(b) < offAuthData || wire.AuthAlg(b[offAlg]) != a.alg {
		return false
	}
	n := int(binary.BigEndian.Uint16(b[offAuthLen:]))
	if (n != a.full && n != a.trunc) || len(b) < offAuthData+n {
		return false
	}
	mac := macZeroed(a.h, &a.sum, a.saved[:n], b, b[offAuthData:offAuthData+n])
	return hmac.Equal(mac[:n], a.saved[:n])
}

// macZeroed is h's MAC of b with field (a part of b) taken as zero; b is
// left as it was and saved holds field's bytes. It allocates nothing.
func macZeroed(h hash.Hash, sum *[sha256.Size]byte, saved []byte, b, field []byte) []byte {
	copy(saved, field)
	clear(field)
	h.Reset()
	h.Write(b)
	mac := h.Sum(sum[:0])
	copy(field, saved)
	return mac
}
