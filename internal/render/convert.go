package render

import (
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// ControlPacket decodes a control message (a UDP 4342 payload) into a
// Packet with Message, Summary and, on failure, Error set; Raw is b. The
// caller fills in where the packet came from.
func ControlPacket(b []byte) Packet {
	p := Packet{Length: len(b), Raw: b}
	m, err := wire.Decode(b)
	if err != nil {
		p.Error = err.Error() // a *wire.DecodeError: message, field, offset, reason
		p.Message = &Message{Type: peekTypeName(b)}
		return p
	}
	p.Summary = m.String()
	p.Message = NewMessage(m)
	return p
}

// peekTypeName names the type of a message that failed to decode, so that
// a broken Map-Register still shows up as one.
func peekTypeName(b []byte) string {
	t, ok := wire.PeekType(b)
	if !ok {
		return "Unknown"
	}
	return t.String()
}

// NewMessage converts a decoded control message to its view.
func NewMessage(m wire.Message) *Message {
	v := &Message{Type: m.Type().String(), Flags: flagNames(m)}
	switch m := m.(type) {
	case *wire.MapRequest:
		fillMapRequest(v, m)
	case *wire.MapReply:
		v.Nonce = nonce64(m.Nonce)
		v.Records = records(m.Records, false)
		v.SecurityAD = hex.EncodeToString(m.SecurityAD)
		if ad, err := m.AuthData(); err == nil {
			v.LISPSEC = eidAD(&ad.EID)
			v.LISPSEC.PKTHMAC, v.LISPSEC.PKTHMACHex = ad.PKTHMACID.String(), hex.EncodeToString(ad.PKTHMAC)
		}
	case *wire.MapRegister:
		fillAuthBody(v, &m.AuthBody)
	case *wire.MapNotify:
		fillAuthBody(v, &m.AuthBody)
	case *wire.MapNotifyAck:
		fillAuthBody(v, &m.AuthBody)
	case *wire.MapReferral:
		v.Nonce = nonce64(m.Nonce)
		v.Records = records(m.Records, true)
	case *wire.Info:
		fillInfo(v, m)
	case *wire.ECM:
		fillECM(v, m)
	case *wire.SharedExtension:
		v.SubType = &m.SubType
		v.Data = hex.EncodeToString(m.Data)
	case *wire.UnknownMessage:
		v.Data = hex.EncodeToString(m.Data)
	}
	return v
}

func fillMapRequest(v *Message, m *wire.MapRequest) {
	v.Nonce = nonce64(m.Nonce)
	v.SourceEID = m.SourceEID.String()
	v.ITRRLOCs = make([]string, len(m.ITRRLOCs))
	for i, a := range m.ITRRLOCs {
		v.ITRRLOCs[i] = a.String()
	}
	v.EIDPrefixes = make([]RequestRecord, 0, len(m.Records))
	for _, r := range m.Records {
		iid, prefix := splitPrefix(r.EID, r.MaskLen)
		v.EIDPrefixes = append(v.EIDPrefixes, RequestRecord{InstanceID: iid, EIDPrefix: prefix, Subscribe: r.Notify})
	}
	if m.MapReply != nil {
		rec := record(m.MapReply, false)
		v.Mapping = &rec
	}
	if m.HasXTRID {
		v.XTRID = hex.EncodeToString(m.XTRID[:])
		if !m.NoSiteID {
			v.SiteID = &m.SiteID
		}
	}
	v.Trailing = hex.EncodeToString(m.Trailing)
}

// fillAuthBody covers the fields Map-Register, Map-Notify and
// Map-Notify-Ack share.
func fillAuthBody(v *Message, a *wire.AuthBody) {
	v.Nonce = nonce64(a.Nonce)
	v.KeyID = &a.KeyID
	v.Algorithm = a.Algorithm.String()
	v.AuthData = hex.EncodeToString(a.AuthData)
	v.Records = records(a.Records, false)
	if a.HasXTRID {
		v.XTRID = hex.EncodeToString(a.XTRID[:])
		v.SiteID = &a.SiteID
	}
}

func fillInfo(v *Message, m *wire.Info) {
	// One wire type, two messages: the R bit tells them apart, and the
	// user wants to see which.
	v.Type = "Info-Request"
	if m.Reply {
		v.Type = "Info-Reply"
	}
	v.Nonce = nonce64(m.Nonce)
	v.KeyID = &m.KeyID
	v.Algorithm = m.Algorithm.String()
	v.AuthData = hex.EncodeToString(m.AuthData)
	v.TTLMinutes = &m.TTL
	iid, prefix := splitPrefix(m.EID, m.MaskLen)
	v.InstanceID, v.EIDPrefix = &iid, prefix
	v.NATAddress = m.NATAddress.String()
}

func fillECM(v *Message, m *wire.ECM) {
	v.InnerSrc = netip.AddrPortFrom(m.IP.Src, m.SrcPort).String()
	v.InnerDst = netip.AddrPortFrom(m.IP.Dst, m.DstPort).String()
	v.InnerChecksumsBad = m.IP.ChecksumsBad
	v.SecurityAD = hex.EncodeToString(m.SecurityAD)
	if ad, err := m.AuthData(); err == nil {
		v.LISPSEC = eidAD(&ad.EID)
		v.LISPSEC.RequestedHMAC, v.LISPSEC.KeyID = ad.RequestedHMAC.String(), &ad.KeyID
		v.LISPSEC.OTKWrap, v.LISPSEC.OTK = ad.Wrap.String(), hex.EncodeToString(ad.OTK[:])
	}
	if m.Message != nil {
		v.Inner = NewMessage(m.Message)
	}
}

// records converts EID-records; referral selects the Map-Referral
// meaning of the action field. The result is never nil: a message with
// no records shows "records": [].
func records(recs []wire.EIDRecord, referral bool) []Record {
	out := make([]Record, len(recs))
	for i := range recs {
		out[i] = record(&recs[i], referral)
	}
	return out
}

func record(r *wire.EIDRecord, referral bool) Record {
	iid, prefix := splitPrefix(r.EID, r.MaskLen)
	v := Record{
		InstanceID:    iid,
		EIDPrefix:     prefix,
		TTLMinutes:    r.TTL,
		Action:        r.Action.String(),
		Authoritative: r.Authoritative,
		Incomplete:    r.Incomplete,
		MapVersion:    r.MapVersion,
		Locators:      make([]Locator, len(r.Locators)),
		Signatures:    len(r.Signatures),
	}
	if referral {
		v.Action = wire.ReferralString(r.Action)
	}
	for i := range r.Locators {
		v.Locators[i] = locator(&r.Locators[i])
	}
	return v
}

func locator(l *wire.Locator) Locator {
	return Locator{
		Address:  l.Address.String(),
		Priority: l.Priority, Weight: l.Weight, MPriority: l.MPriority, MWeight: l.MWeight,
		Local: l.Local(), Probed: l.Probed(), Reachable: l.Reachable(),
	}
}

// splitPrefix separates the instance ID from an EID so that the JSON has
// "instance-id" and a plain "eid-prefix" as the config does. EIDs that are
// not IP (MAC, names, other LCAFs) keep wire's text for them.
func splitPrefix(eid wire.Address, maskLen uint8) (uint32, string) {
	iid, in, ok := eid.InstanceID()
	if !ok {
		return 0, eid.String()
	}
	switch in.AFI {
	case wire.AFINone:
		return iid, in.String()
	case wire.AFILCAF: // e.g. source-dest inside an instance ID: the LCAF speaks for itself
		return iid, in.String()
	}
	return iid, fmt.Sprintf("%s/%d", in, maskLen)
}

func nonce64(n uint64) string { return fmt.Sprintf("0x%016x", n) }

// eidAD is the view of an EID-AD; the ITR's (KDF only) has just the KDF.
func eidAD(e *wire.EIDAuthData) *LISPSEC {
	v := &LISPSEC{KDF: e.KDF.String()}
	if e.KDFOnly {
		return v
	}
	v.ETRCantSign, v.EIDHMAC, v.EIDHMACHex = e.ETRCantSign, e.HMACID.String(), hex.EncodeToString(e.HMAC)
	for i := range e.Records {
		v.Authorized = append(v.Authorized, e.Records[i].String())
	}
	return v
}
