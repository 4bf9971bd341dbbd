package lispsec

import (
	"bytes"
	"crypto/hmac"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/lispd/lispd/wire"
)

// verify checks the HMAC at the end of data (its last len(mac) bytes,
// zero for the computation) in constant time.
func verify(id wire.SecHMAC, key []byte, data []byte, mac []byte) bool {
	if len(mac) != id.Size() || len(mac) == 0 || len(data) < len(mac) {
		return false
	}
	var want [32]byte
	return macInto(want[:len(mac)], id, key, data, len(mac)) == nil && hmac.Equal(want[:len(mac)], mac)
}

// OpenECM recovers the OTK an ECM's AD carries: the ITR-OTK at a
// Map-Resolver (keys shared with ITRs), the MS-OTK at an ETR (keys shared
// with Map-Servers). nonce is the inner Map-Request's. allowNull accepts an
// OTK in clear, only for a path protected some other way (RFC 9303 §6.5).
func OpenECM(ad *wire.ECMAuthData, keys Keys, nonce uint64, allowNull bool) (OTK, error) {
	if ad.Wrap == wire.SecWrapNull {
		if !allowNull {
			return OTK{}, ErrNullWrap
		}
		return UnwrapOTK(ad.Wrap, ad.OTK, nil, nonce)
	}
	secret, ok := keys[ad.KeyID]
	if !ok || len(secret) == 0 {
		return OTK{}, fmt.Errorf("%w: key-id %d", ErrNoKey, ad.KeyID)
	}
	return UnwrapOTK(ad.Wrap, ad.OTK, secret, nonce)
}

// NewEIDAD is the Map-Server's EID-AD (RFC 9303 §6.7.1): the prefixes it
// authorizes for the requested EID (the longest-match registered prefix of
// the site) and its HMAC over them keyed with the ITR-OTK, with the KDF
// and HMAC the request asked for when supported. etrCantSign is the E bit
// (§6.7 Table 1).
func NewEIDAD(in *wire.ECMAuthData, itrOTK OTK, authorized []wire.EIDADRecord, etrCantSign bool) (wire.EIDAuthData, error) {
	e := wire.EIDAuthData{KDF: ChooseKDF(in.EID.KDF), ETRCantSign: etrCantSign, HMACID: ChooseHMAC(in.RequestedHMAC),
		Records: authorized}
	e.HMAC = make([]byte, e.HMACID.Size())
	var buf [macStack]byte
	b, err := e.Append(buf[:0])
	if err != nil {
		return wire.EIDAuthData{}, err
	}
	if err := macInto(e.HMAC, e.HMACID, itrOTK[:], b, 0); err != nil {
		return wire.EIDAuthData{}, err
	}
	return e, nil
}

// ForwardAuthData is the AD of the ECM in which the Map-Server sends the
// Map-Request on to an ETR (RFC 9303 §6.7.1): the MS-OTK, derived from
// the ITR-OTK with eid.KDF and wrapped with the key shared with that ETR,
// and the EID-AD from NewEIDAD.
func ForwardAuthData(in *wire.ECMAuthData, itrOTK OTK, eid wire.EIDAuthData, etrKey Key, wrap wire.SecKeyWrap, nonce uint64) (*wire.ECMAuthData, error) {
	ms, err := DeriveMSOTK(eid.KDF, itrOTK)
	if err != nil {
		return nil, err
	}
	out := &wire.ECMAuthData{RequestedHMAC: in.RequestedHMAC, KeyID: etrKey.ID, Wrap: wrap, EID: eid}
	if out.OTK, err = WrapOTK(wrap, ms, etrKey.Secret, nonce); err != nil {
		return nil, err
	}
	return out, nil
}

// SignMapReply appends the Map-Reply AD to reply (S set, SecurityAD
// filled) and returns the encoded, signed Map-Reply: eid copied unchanged,
// and the PKT HMAC over the whole message keyed with the MS-OTK (RFC 9303
// §6.8). The ETR passes the EID-AD, Requested HMAC ID and MS-OTK of the ECM
// it received; a Map-Server answering in proxy (§6.7.2) passes its own
// EID-AD and DeriveMSOTK(eid.KDF, itrOTK).
func SignMapReply(reply *wire.MapReply, eid wire.EIDAuthData, requested wire.SecHMAC, msOTK OTK) ([]byte, error) {
	id := ChooseHMAC(requested)
	ad := &wire.MapReplyAuthData{EID: eid, PKTHMACID: id, PKTHMAC: make([]byte, id.Size())}
	if err := reply.SetAuthData(ad); err != nil {
		return nil, err
	}
	b, err := wire.Encode(reply)
	if err != nil {
		return nil, err
	}
	mac := b[len(b)-id.Size():]
	if err := macInto(mac, id, msOTK[:], b, len(mac)); err != nil {
		return nil, err
	}
	copy(reply.SecurityAD[len(reply.SecurityAD)-len(mac):], mac)
	return b, nil
}

// ProxyReply is a Map-Reply the mapping system signs itself (RFC 9303
// §6.7.2): a Map-Server answering for its ETRs or with a negative reply, a
// Map-Resolver with a negative reply. in is the received ECM AD and itrOTK
// what OpenECM recovered from it; authorized the prefixes vouched for.
func ProxyReply(reply *wire.MapReply, in *wire.ECMAuthData, itrOTK OTK, authorized []wire.EIDADRecord, etrCantSign bool) ([]byte, error) {
	e, err := NewEIDAD(in, itrOTK, authorized, etrCantSign)
	if err != nil {
		return nil, err
	}
	ms, err := DeriveMSOTK(e.KDF, itrOTK)
	if err != nil {
		return nil, err
	}
	return SignMapReply(reply, e, in.RequestedHMAC, ms)
}

// Request is what an ITR keeps for one protected Map-Request: the
// <nonce, ITR-OTK> pair of RFC 9303 §6.4 and the algorithms it asked for.
// It answers one Map-Reply: after a reply verifies, every later one is a
// replay.
type Request struct {
	Nonce uint64
	HMAC  wire.SecHMAC // Requested HMAC ID (NOPREF: any supported)
	KDF   wire.SecKDF  // requested KDF ID (NOPREF: any supported)
	otk   OTK
	done  atomic.Bool
}

// NewRequest draws the ITR-OTK for the Map-Request with nonce (from r,
// crypto/rand when nil).
func NewRequest(r io.Reader, nonce uint64, hmacID wire.SecHMAC, kdf wire.SecKDF) (*Request, error) {
	k, err := NewOTK(r)
	if err != nil {
		return nil, err
	}
	return &Request{Nonce: nonce, HMAC: hmacID, KDF: kdf, otk: k}, nil
}

// AuthData is the ECM AD the ITR sends (RFC 9303 §6.4): the ITR-OTK
// wrapped with the key it shares with its Map-Resolver, and the KDF-only
// EID-AD. Set it with (*wire.ECM).SetAuthData.
func (q *Request) AuthData(key Key, wrap wire.SecKeyWrap) (*wire.ECMAuthData, error) {
	w, err := WrapOTK(wrap, q.otk, key.Secret, q.Nonce)
	if err != nil {
		return nil, err
	}
	return &wire.ECMAuthData{RequestedHMAC: q.HMAC, KeyID: key.ID, Wrap: wrap, OTK: w,
		EID: wire.EIDAuthData{KDFOnly: true, KDF: q.KDF}}, nil
}

// Verified is a Map-Reply that passed LISP-SEC.
type Verified struct {
	Reply *wire.MapReply
	// EID is the Map-Server's authorization; EID.ETRCantSign says some
	// authoritative ETR does not do LISP-SEC.
	EID wire.EIDAuthData
	// Records are the reply's records inside an authorized prefix (RFC
	// 9303 §6.9); Dropped are the others, to count and log: the ETR
	// overclaimed them.
	Records []wire.EIDRecord
	Dropped []wire.EIDRecord
}

// Verify checks a Map-Reply against the request (RFC 9303 §6.9): nonce,
// S and AD, the algorithms asked for, the PKT HMAC over msg (the Map-Reply
// exactly as received; reply is its decoding) with the MS-OTK derived
// from our ITR-OTK, then the Map-Server's EID HMAC with the ITR-OTK, and
// finally which records the EID-AD covers. A failed check leaves the
// request pending (a forgery must not cancel the real answer); a success
// consumes it.
func (q *Request) Verify(reply *wire.MapReply, msg []byte) (*Verified, error) {
	if reply.Nonce != q.Nonce || q.done.Load() {
		return nil, ErrReplay
	}
	if !reply.Security || len(reply.SecurityAD) == 0 {
		return nil, ErrUnsigned
	}
	start := len(msg) - len(reply.SecurityAD)
	if start < 12 || !bytes.Equal(msg[start:], reply.SecurityAD) {
		return nil, fmt.Errorf("%w: AD is not the tail of the received message", ErrMalformed)
	}
	ad, err := reply.AuthData()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	eidAD, _, err := wire.SplitMapReplyAuthData(msg[start:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := q.checkIDs(ad); err != nil {
		return nil, err
	}
	ms, err := DeriveMSOTK(ad.EID.KDF, q.otk)
	if err != nil {
		return nil, err
	}
	if !verify(ad.PKTHMACID, ms[:], msg, ad.PKTHMAC) {
		return nil, ErrPKTAD
	}
	if !verify(ad.EID.HMACID, q.otk[:], eidAD, ad.EID.HMAC) {
		return nil, ErrEIDAD
	}
	if !q.done.CompareAndSwap(false, true) {
		return nil, ErrReplay
	}
	v := &Verified{Reply: reply, EID: ad.EID}
	v.Records, v.Dropped = Authorize(reply.Records, ad.EID.Records)
	return v, nil
}

// checkIDs applies RFC 9303 §6.9: a requested algorithm must be the one
// used; with no preference, the one used must be supported.
func (q *Request) checkIDs(ad *wire.MapReplyAuthData) error {
	for _, id := range []wire.SecHMAC{ad.PKTHMACID, ad.EID.HMACID} {
		if q.HMAC != wire.SecHMACNone && id != q.HMAC {
			return fmt.Errorf("%w: %s, asked for %s", ErrHMACID, id, q.HMAC)
		}
		if id.Size() == 0 {
			return fmt.Errorf("%w: HMAC %s", ErrUnsupported, id)
		}
	}
	if ad.EID.KDFOnly {
		return fmt.Errorf("%w: EID-AD without the Map-Server's part", ErrEIDAD)
	}
	if q.KDF != wire.SecKDFNone && ad.EID.KDF != q.KDF {
		return fmt.Errorf("%w: %s, asked for %s", ErrKDFID, ad.EID.KDF, q.KDF)
	}
	return nil
}

// Authorize keeps the records that lie inside a prefix of the EID-AD
// (same instance ID) and returns the others as dropped: the ETR
// overclaimed them (RFC 9303 §6.9.1). A record wider than every authorized
// prefix is dropped, not narrowed: §6.9.1's example discards such a record
// (2001:db8:200::/40 against 2001:db8:203::/48), which is what §6.9's
// "intersection" comes to when the intersection must be the record.
// Non-IP EIDs must match an authorized prefix exactly.
func Authorize(records []wire.EIDRecord, authorized []wire.EIDADRecord) (kept, dropped []wire.EIDRecord) {
	for _, rec := range records {
		if covered(&rec, authorized) {
			kept = append(kept, rec)
		} else {
			dropped = append(dropped, rec)
		}
	}
	return kept, dropped
}

func covered(rec *wire.EIDRecord, authorized []wire.EIDADRecord) bool {
	iid, p, ipOK := rec.Prefix()
	for i := range authorized {
		a := &authorized[i]
		aiid, ap, aOK := a.Prefix()
		switch {
		case !ipOK || !aOK:
			if a.MaskLen == rec.MaskLen && a.EID.Equal(rec.EID) {
				return true
			}
		case iid == aiid && ap.Bits() <= p.Bits() && ap.Contains(p.Addr()):
			return true
		}
	}
	return false
}
