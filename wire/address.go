package wire

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// AFI is an IANA Address Family Number as carried before every address.
type AFI uint16

// Address families seen in LISP control messages.
const (
	AFINone     AFI = 0     // no address (RFC 9300 §3)
	AFIIPv4     AFI = 1     // 4 bytes
	AFIIPv6     AFI = 2     // 16 bytes
	AFI802      AFI = 6     // IEEE 802 MAC, 6 bytes (lispers.net, RFC 8060 examples)
	AFIE164     AFI = 8     // E.164, 8 bytes (lispers.net)
	AFIDistName AFI = 17    // distinguished name, NUL-terminated ASCII
	AFIASN      AFI = 18    // AS number, 4 bytes
	AFILCAF     AFI = 16387 // LISP Canonical Address Format (RFC 8060)
	AFIMAC48    AFI = 16389 // 48-bit MAC (RFC 7042; VPP, OpenDaylight)
	AFIMAC64    AFI = 16390 // 64-bit MAC
	AFIOUI      AFI = 16391 // OUI, 3 bytes
)

// fixedLen gives the address length of fixed-size AFIs other than IP.
func (a AFI) fixedLen() (int, bool) {
	switch a {
	case AFINone:
		return 0, true
	case AFIIPv4:
		return 4, true
	case AFIIPv6:
		return 16, true
	case AFI802, AFIMAC48:
		return 6, true
	case AFIE164, AFIMAC64:
		return 8, true
	case AFIASN:
		return 4, true
	case AFIOUI:
		return 3, true
	}
	return 0, false
}

func (a AFI) String() string {
	switch a {
	case AFINone:
		return "none"
	case AFIIPv4:
		return "ipv4"
	case AFIIPv6:
		return "ipv6"
	case AFI802:
		return "mac"
	case AFIE164:
		return "e164"
	case AFIDistName:
		return "dn"
	case AFIASN:
		return "asn"
	case AFILCAF:
		return "lcaf"
	case AFIMAC48:
		return "mac48"
	case AFIMAC64:
		return "mac64"
	case AFIOUI:
		return "oui"
	}
	return "afi-" + strconv.Itoa(int(a))
}

// maxLCAFDepth bounds recursion through nested LCAFs (an AFI list holding
// an Instance-ID holding a Source/Dest key is depth 3 in practice).
const maxLCAFDepth = 8

// Address is one AFI-encoded address: an IP address, a MAC, a name, or an
// LCAF. The zero value is AFI 0, "no address".
type Address struct {
	AFI  AFI
	IP   netip.Addr // AFIIPv4, AFIIPv6
	Raw  []byte     // other fixed AFIs (MAC, E.164, ASN, OUI) and the distinguished name without its NUL
	LCAF *LCAF      // AFILCAF
}

// AddrFromIP returns the AFI 1 or AFI 2 address for ip (IPv4-mapped IPv6
// addresses are unmapped, because LISP carries IPv4 as AFI 1).
func AddrFromIP(ip netip.Addr) Address {
	ip = ip.Unmap()
	if ip.Is4() {
		return Address{AFI: AFIIPv4, IP: ip}
	}
	if ip.Is6() {
		return Address{AFI: AFIIPv6, IP: ip.WithZone("")}
	}
	return Address{}
}

// AddrWithIID wraps a in an Instance-ID LCAF (RFC 8060 §4.1). maskLen is the
// IID mask length, 0 for a single instance.
func AddrWithIID(iid uint32, a Address) Address {
	return Address{AFI: AFILCAF, LCAF: &LCAF{Type: LCAFInstanceID, Body: &InstanceIDLCAF{IID: iid, Addr: a}}}
}

// MACAddress returns a MAC address with the given AFI (AFIMAC48 or AFI802).
func MACAddress(afi AFI, mac [6]byte) Address {
	return Address{AFI: afi, Raw: mac[:]}
}

// DistName returns an AFI 17 distinguished-name address.
func DistName(name string) Address {
	return Address{AFI: AFIDistName, Raw: []byte(name)}
}

// IsNone reports whether a is the empty address (AFI 0).
func (a Address) IsNone() bool { return a.AFI == AFINone }

// InstanceID unwraps an Instance-ID LCAF: it returns the IID and the inner
// address. A plain address has IID 0 and ok true; other LCAFs return ok false.
func (a Address) InstanceID() (iid uint32, inner Address, ok bool) {
	if a.AFI != AFILCAF {
		return 0, a, true
	}
	if a.LCAF != nil {
		if b, isIID := a.LCAF.Body.(*InstanceIDLCAF); isIID {
			return b.IID, b.Addr, true
		}
	}
	return 0, a, false
}

// Addr returns the IP address of a, looking through an Instance-ID LCAF.
func (a Address) Addr() (netip.Addr, bool) {
	_, in, ok := a.InstanceID()
	if !ok || (in.AFI != AFIIPv4 && in.AFI != AFIIPv6) {
		return netip.Addr{}, false
	}
	return in.IP, true
}

// Equal reports whether a and b encode to the same bytes.
func (a Address) Equal(b Address) bool {
	if a.AFI != b.AFI {
		return false
	}
	switch a.AFI {
	case AFIIPv4, AFIIPv6:
		return a.IP == b.IP
	case AFILCAF:
		x, err1 := a.Append(nil)
		y, err2 := b.Append(nil)
		return err1 == nil && err2 == nil && bytes.Equal(x, y)
	}
	return bytes.Equal(a.Raw, b.Raw)
}

// Len is the encoded size including the 2-byte AFI.
func (a Address) Len() int {
	switch a.AFI {
	case AFIDistName:
		return 2 + len(a.Raw) + 1
	case AFILCAF:
		if a.LCAF == nil {
			return 2
		}
		return 2 + a.LCAF.Len()
	}
	if n, ok := a.AFI.fixedLen(); ok {
		return 2 + n
	}
	return 2 + len(a.Raw)
}

// Append encodes a (AFI first) onto b.
func (a Address) Append(b []byte) ([]byte, error) {
	return a.appendDepth(b, 0)
}

func (a Address) appendDepth(b []byte, depth int) ([]byte, error) {
	switch a.AFI {
	case AFINone:
		return put16(b, 0), nil
	case AFIIPv4:
		if !a.IP.Is4() {
			return b, encErr("address", "IPv4", ErrBadValue)
		}
		v := a.IP.As4()
		return append(put16(b, uint16(AFIIPv4)), v[:]...), nil
	case AFIIPv6:
		if !a.IP.Is6() {
			return b, encErr("address", "IPv6", ErrBadValue)
		}
		v := a.IP.As16()
		return append(put16(b, uint16(AFIIPv6)), v[:]...), nil
	case AFIDistName:
		if bytes.IndexByte(a.Raw, 0) >= 0 {
			return b, encErr("address", "distinguished name", ErrBadValue)
		}
		b = put16(b, uint16(AFIDistName))
		b = append(b, a.Raw...)
		return append(b, 0), nil
	case AFILCAF:
		if a.LCAF == nil {
			return b, encErr("address", "LCAF", ErrBadValue)
		}
		if depth >= maxLCAFDepth {
			return b, encErr("address", "LCAF", ErrTooDeep)
		}
		return a.LCAF.appendTo(put16(b, uint16(AFILCAF)), depth+1)
	}
	n, ok := a.AFI.fixedLen()
	if !ok || len(a.Raw) != n {
		return b, encErr("address", a.AFI.String(), ErrBadAFI)
	}
	return append(put16(b, uint16(a.AFI)), a.Raw...), nil
}

// DecodeAddress decodes one AFI-encoded address at the start of b and
// returns it with the number of bytes used.
func DecodeAddress(b []byte) (Address, int, error) {
	return decodeAddress(b, 0, 0)
}

func decodeAddress(b []byte, base, depth int) (Address, int, error) {
	r := newReader(b, base, "address")
	afi16, err := r.u16("AFI")
	if err != nil {
		return Address{}, 0, err
	}
	afi := AFI(afi16)
	switch afi {
	case AFIIPv4:
		if err := r.need(4, "IPv4 address"); err != nil {
			return Address{}, 0, err
		}
		return Address{AFI: afi, IP: netip.AddrFrom4([4]byte(b[2:6]))}, 6, nil
	case AFIIPv6:
		if err := r.need(16, "IPv6 address"); err != nil {
			return Address{}, 0, err
		}
		return Address{AFI: afi, IP: netip.AddrFrom16([16]byte(b[2:18]))}, 18, nil
	case AFIDistName:
		i := bytes.IndexByte(b[2:], 0)
		if i < 0 {
			return Address{}, 0, r.fail("distinguished name", ErrTruncated)
		}
		return Address{AFI: afi, Raw: append([]byte(nil), b[2:2+i]...)}, 2 + i + 1, nil
	case AFILCAF:
		if depth >= maxLCAFDepth {
			return Address{}, 0, r.fail("LCAF", ErrTooDeep)
		}
		l, n, err := decodeLCAF(b[2:], base+2, depth+1)
		if err != nil {
			return Address{}, 0, err
		}
		return Address{AFI: afi, LCAF: l}, 2 + n, nil
	}
	n, ok := afi.fixedLen()
	if !ok {
		r.off = 0
		return Address{}, 0, r.fail("AFI "+strconv.Itoa(int(afi)), ErrBadAFI)
	}
	raw, err := r.bytes(n, afi.String()+" address")
	if err != nil {
		return Address{}, 0, err
	}
	if n == 0 {
		raw = nil
	}
	return Address{AFI: afi, Raw: raw}, 2 + n, nil
}

// String prints IP addresses plainly, an Instance-ID as "[iid]addr" as
// routers do, and other families with a short tag.
func (a Address) String() string {
	switch a.AFI {
	case AFINone:
		return "no-address"
	case AFIIPv4, AFIIPv6:
		return a.IP.String()
	case AFI802, AFIMAC48:
		return macString(a.Raw)
	case AFIMAC64:
		return macString(a.Raw)
	case AFIDistName:
		return strconv.Quote(string(a.Raw))
	case AFIE164:
		return "e164:" + hex.EncodeToString(a.Raw)
	case AFIASN:
		if len(a.Raw) == 4 {
			return fmt.Sprintf("AS%d", uint32(a.Raw[0])<<24|uint32(a.Raw[1])<<16|uint32(a.Raw[2])<<8|uint32(a.Raw[3]))
		}
	case AFILCAF:
		if a.LCAF != nil {
			return a.LCAF.String()
		}
		return "lcaf(nil)"
	}
	return a.AFI.String() + ":" + hex.EncodeToString(a.Raw)
}

func macString(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

// prefixString prints an EID with its mask length: "[iid]198.51.100.0/24".
func prefixString(a Address, maskLen uint8) string {
	switch a.AFI {
	case AFILCAF:
		if a.LCAF != nil {
			if b, ok := a.LCAF.Body.(*InstanceIDLCAF); ok {
				return fmt.Sprintf("[%d]%s", b.IID, prefixString(b.Addr, maskLen))
			}
		}
		return a.String()
	case AFINone:
		return a.String()
	}
	return fmt.Sprintf("%s/%d", a.String(), maskLen)
}
