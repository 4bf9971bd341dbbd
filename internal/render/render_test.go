package render

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ip(s string) wire.Address { return wire.AddrFromIP(netip.MustParseAddr(s)) }

// encode returns the wire bytes of m, failing the test on error.
func encode(t *testing.T, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatalf("encode %T: %v", m, err)
	}
	return b
}

// decoded runs m through the wire and back into a Packet, as lispctl does.
func decoded(t *testing.T, m wire.Message) Packet {
	t.Helper()
	p := ControlPacket(encode(t, m))
	if p.Failed() {
		t.Fatalf("%T: %s", m, p.Error)
	}
	return p
}

// jsonKey is the contract's key style: lower case, hyphenated.
var jsonKey = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// TestJSONKeyStyle walks every type of the JSON view and checks its keys,
// so that a new field cannot slip in as "eidPrefix" or "EID_prefix".
func TestJSONKeyStyle(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for f := range typ.Fields() {
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			switch {
			case f.Anonymous && tag == "":
				// embedded: its fields are promoted
			case name == "-":
				continue
			case !jsonKey.MatchString(name):
				t.Errorf("%s.%s: JSON key %q is not lower-case hyphenated", typ.Name(), f.Name, name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Packet]())
	if len(seen) < 7 {
		t.Errorf("walked only %d types", len(seen))
	}
}

func TestMapRequestView(t *testing.T) {
	var xtr [16]byte
	xtr[15] = 0xaa
	m := &wire.MapRequest{
		SMR: true, PITR: true, Nonce: 0x1122334455667788,
		SourceEID: ip("10.1.1.1"),
		ITRRLOCs:  []wire.Address{ip("192.0.2.1"), ip("2001:db8::1")},
		Records: []wire.RequestRecord{
			{MaskLen: 24, EID: wire.AddrWithIID(7, ip("10.2.2.0")), Notify: true},
			{MaskLen: 48, EID: wire.MACAddress(wire.AFIMAC48, [6]byte{2, 0, 0, 0, 0, 1})},
		},
		MapReply: &wire.EIDRecord{TTL: 0xffffffff, MaskLen: 32, EID: ip("10.1.1.1"),
			Locators: []wire.Locator{{Priority: 1, Weight: 50, Flags: wire.LocatorProbed, Address: ip("192.0.2.1")}}},
		HasXTRID: true, XTRID: xtr, SiteID: 9,
	}
	p := decoded(t, m)
	if p.Type != "Map-Request" || p.Nonce != "0x1122334455667788" || p.SourceEID != "10.1.1.1" {
		t.Errorf("header: %+v", p.Message)
	}
	if got := strings.Join(p.Flags, ","); got != "map-data-present,smr,pitr,xtr-id-present" {
		t.Errorf("flags %s", got)
	}
	if got := strings.Join(p.ITRRLOCs, ","); got != "192.0.2.1,2001:db8::1" {
		t.Errorf("itr-rlocs %s", got)
	}
	want := []RequestRecord{{InstanceID: 7, EIDPrefix: "10.2.2.0/24", Subscribe: true},
		{EIDPrefix: "02:00:00:00:00:01/48"}}
	if !reflect.DeepEqual(p.EIDPrefixes, want) {
		t.Errorf("eid-prefixes %+v", p.EIDPrefixes)
	}
	if p.Mapping == nil || p.Mapping.TTLMinutes != 0xffffffff || !p.Mapping.Locators[0].Probed {
		t.Errorf("mapping %+v", p.Mapping)
	}
	if p.XTRID != "000000000000000000000000000000aa" || p.SiteID == nil || *p.SiteID != 9 {
		t.Errorf("xtr-id %q site-id %v", p.XTRID, p.SiteID)
	}

	text := verbose(t, &p)
	for _, s := range []string{
		"Flags:             map-data-present (M), smr (S), pitr (p), xtr-id-present (I)\n",
		"Requested EID 1:   [7]10.2.2.0/24 (subscribe)\n",
		"Mapping:           10.1.1.1/32\n      TTL:               unspecified (0xffffffff)\n",
		"Flags:             probed (p)\n",
		"Site-ID:           9\n",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("verbose view lacks %q:\n%s", s, text)
		}
	}
}

func TestMapRegisterView(t *testing.T) {
	m := &wire.MapRegister{ProxyReply: true, WantMapNotify: true, Merge: true, AuthBody: wire.AuthBody{
		Nonce: 1, KeyID: 3, Algorithm: wire.AuthHMACSHA256, AuthData: make([]byte, 32),
		Records: []wire.EIDRecord{{TTL: 1440, MaskLen: 24, Authoritative: true, MapVersion: 5,
			EID: wire.AddrWithIID(1000, ip("198.51.100.0")),
			Locators: []wire.Locator{
				{Priority: 1, Weight: 50, MPriority: 255, Flags: wire.LocatorLocal | wire.LocatorReachable, Address: ip("192.0.2.12")},
				{Priority: 2, Weight: 50, MPriority: 255, Address: ip("2001:db8::12")},
			}}},
	}}
	p := decoded(t, m)
	if p.KeyID == nil || *p.KeyID != 3 || p.Algorithm != "hmac-sha-256-128" || p.AuthData != strings.Repeat("00", 32) {
		t.Errorf("auth: %+v", p.Message)
	}
	if got := strings.Join(p.Flags, ","); got != "proxy-map-reply,merge,want-map-notify" {
		t.Errorf("flags %s", got)
	}
	want := Record{InstanceID: 1000, EIDPrefix: "198.51.100.0/24", TTLMinutes: 1440, Action: "no-action",
		Authoritative: true, MapVersion: 5, Locators: []Locator{
			{Address: "192.0.2.12", Priority: 1, Weight: 50, MPriority: 255, Local: true, Reachable: true},
			{Address: "2001:db8::12", Priority: 2, Weight: 50, MPriority: 255},
		}}
	if len(p.Records) != 1 || !reflect.DeepEqual(p.Records[0], want) {
		t.Errorf("records %+v", p.Records)
	}
	text := verbose(t, &p)
	for _, s := range []string{"Record 1:          [1000]198.51.100.0/24\n", "Map-Version:       5\n",
		"Locator 2:         2001:db8::12\n", "Flags:             none\n"} {
		if !strings.Contains(text, s) {
			t.Errorf("verbose view lacks %q:\n%s", s, text)
		}
	}
}

func TestNegativeMapReplyJSON(t *testing.T) {
	m := &wire.MapReply{Nonce: 2, Records: []wire.EIDRecord{{TTL: 15, MaskLen: 16,
		Action: wire.ActionNativelyForward, EID: ip("10.9.0.0")}}}
	p := decoded(t, m)
	b, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	// Lists are present even when empty; absent fields are left out.
	for _, s := range []string{`"flags":[]`, `"locators":[]`, `"action":"natively-forward"`, `"ttl-minutes":15`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s: %s", s, b)
		}
	}
	for _, s := range []string{`"key-id"`, `"itr-rlocs"`, `"data-header"`, `"error"`, `"inner"`} {
		if strings.Contains(string(b), s) {
			t.Errorf("JSON has %s: %s", s, b)
		}
	}
	if !strings.Contains(verbose(t, &p), "Locators:          none (negative mapping)") {
		t.Error("verbose view does not call the mapping negative")
	}
}

func TestMapReferralView(t *testing.T) {
	m := &wire.MapReferral{Nonce: 3, Records: []wire.EIDRecord{{TTL: 60, MaskLen: 8, Action: wire.ReferralMSAck,
		Incomplete: true, EID: ip("10.0.0.0"),
		Locators:   []wire.Locator{{Address: ip("192.0.2.50")}},
		Signatures: []wire.DDTSignature{{KeyTag: 1, Algorithm: 1, Signature: []byte{1, 2, 3}}}}}}
	p := decoded(t, m)
	if len(p.Records) != 1 || p.Records[0].Action != "ms-ack" || !p.Records[0].Incomplete || p.Records[0].Signatures != 1 {
		t.Errorf("records %+v", p.Records)
	}
	if p.Flags != nil {
		t.Errorf("Map-Referral has no header flags, got %q", p.Flags)
	}
}

func TestNotifyAckAndInfoViews(t *testing.T) {
	ack := decoded(t, &wire.MapNotifyAck{AuthBody: wire.AuthBody{Nonce: 4, Algorithm: wire.AuthNone}})
	if ack.Type != "Map-Notify-Ack" || ack.Algorithm != "none" || ack.AuthData != "" || ack.Records == nil {
		t.Errorf("ack %+v", ack.Message)
	}

	req := decoded(t, &wire.Info{Nonce: 5, TTL: 0, MaskLen: 32, EID: ip("10.1.1.1")})
	if req.Type != "Info-Request" || req.EIDPrefix != "10.1.1.1/32" || req.NATAddress != "no-address" {
		t.Errorf("info request %+v", req.Message)
	}
	nat := wire.Address{AFI: wire.AFILCAF, LCAF: &wire.LCAF{Type: wire.LCAFNATTraversal, Body: &wire.NATTraversalLCAF{
		MSPort: 4342, ETRPort: 61000, GlobalETR: ip("203.0.113.1"), MS: ip("192.0.2.1"), PrivateETR: ip("10.0.0.1")}}}
	rep := decoded(t, &wire.Info{Reply: true, Nonce: 5, TTL: 10, MaskLen: 32, EID: ip("10.1.1.1"), NATAddress: nat})
	if rep.Type != "Info-Reply" || *rep.TTLMinutes != 10 || !strings.Contains(rep.NATAddress, "global 203.0.113.1") {
		t.Errorf("info reply %+v", rep.Message)
	}
	if !strings.Contains(verbose(t, &rep), "NAT address:       nat(") {
		t.Errorf("verbose:\n%s", verbose(t, &rep))
	}
}

func TestECMView(t *testing.T) {
	inner := &wire.MapRequest{Nonce: 6, SourceEID: ip("10.1.1.1"), ITRRLOCs: []wire.Address{ip("192.0.2.1")},
		Records: []wire.RequestRecord{{MaskLen: 32, EID: ip("10.2.2.2")}}}
	ecm := &wire.ECM{ForMS: true, IP: wire.InnerIP{Src: netip.MustParseAddr("10.1.1.1"),
		Dst: netip.MustParseAddr("10.2.2.2"), TTL: 64}, SrcPort: 61000, DstPort: 4342, Message: inner}
	b := encode(t, ecm)
	b[4+10] ^= 0xff // spoil the inner IPv4 header checksum: shown, not fatal
	p := ControlPacket(b)
	if p.Failed() {
		t.Fatal(p.Error)
	}
	if p.Type != "ECM" || p.InnerSrc != "10.1.1.1:61000" || p.InnerDst != "10.2.2.2:4342" || !p.InnerChecksumsBad ||
		strings.Join(p.Flags, ",") != "to-map-server" {
		t.Errorf("ecm %+v", p.Message)
	}
	if p.Inner == nil || p.Inner.Type != "Map-Request" || p.Inner.EIDPrefixes[0].EIDPrefix != "10.2.2.2/32" {
		t.Fatalf("inner %+v", p.Inner)
	}
	text := verbose(t, &p)
	if !strings.Contains(text, "    Inner IP/UDP:      10.1.1.1:61000 > 10.2.2.2:4342 (bad checksum)\n"+
		"    Inner message:\n      Type:              Map-Request\n") {
		t.Errorf("verbose:\n%s", text)
	}
}

func TestOpaqueMessageViews(t *testing.T) {
	se := decoded(t, &wire.SharedExtension{SubType: 12, Data: []byte{0xde, 0xad}})
	if se.Type != "Shared-Extension" || *se.SubType != 12 || se.Data != "dead" {
		t.Errorf("shared extension %+v", se.Message)
	}
	un := ControlPacket([]byte{0x90, 1, 2})
	if un.Failed() || un.Type != "Type-9" || un.Data != "900102" {
		t.Errorf("unknown %+v %s", un.Message, un.Error)
	}
}

func TestControlPacketErrors(t *testing.T) {
	for _, tc := range []struct {
		in       []byte
		typ, err string
	}{
		{nil, "Unknown", "message: Type at offset 0: truncated"},
		{[]byte{0x00}, "Reserved", "message: Type at offset 0: unknown message type"},
		{[]byte{0x30, 0, 0, 1}, "Map-Register", "Map-Register: Nonce at offset 4: truncated"},
	} {
		p := ControlPacket(tc.in)
		if p.Type != tc.typ || p.Error != tc.err || p.Summary != "" {
			t.Errorf("%x: type %q error %q", tc.in, p.Type, p.Error)
		}
	}
	// The text names the message type when the error does not (an error
	// inside an LCAF names only the LCAF).
	const (
		header = "30000001" + "0000000000000000" + "00000000" // one record, no authentication data
		record = "000005a0" + "00" + "18" + "1000" + "0000"   // no locators, /24
		eid    = "4003" + "00000200" + "0010"                 // an Instance-ID LCAF claiming 16 bytes it lacks
	)
	p := ControlPacket(lisptest.MustHex(t, header+record+eid))
	var sb strings.Builder
	if err := WriteText(&sb, &p, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "  error: Map-Register: LCAF: ") {
		t.Errorf("text:\n%s", sb.String())
	}
}

func TestDataPacket(t *testing.T) {
	ipv4 := "4500001c00010000400100000a0101010a020202"
	ipv6 := "6000000000083a40" + "20010db8000000000000000000000001" + "20010db8000000000000000000000002"
	for _, tc := range []struct {
		name, hex, summary string
		check              func(*DataHeader) bool
	}{
		{"nonce+lsb", "c0abcdef00000003" + ipv4, "LISP data [NL....] nonce 0xabcdef lsb 0x3 | IPv4 10.1.1.1 > 10.2.2.2 icmp length 28",
			func(h *DataHeader) bool { return h.Nonce == "0xabcdef" && *h.LSB == 3 && h.InstanceID == nil }},
		{"map-versions", "1812345600000500" + ipv6, "LISP data [...VI.] src-ver 291 dst-ver 1110 iid 5 | IPv6 2001:db8::1 > 2001:db8::2 icmpv6 length 48",
			func(h *DataHeader) bool {
				return *h.SourceMapVersion == 291 && *h.DestMapVersion == 1110 && *h.InstanceID == 5
			}},
		{"gpe-ethernet", "0c000003000007000102030405", "LISP data [....IP] next-proto 0x03 iid 7 | GPE next protocol ethernet, not IP, 5 bytes",
			func(h *DataHeader) bool { return *h.NextProtocol == 3 && h.Nonce == "" }},
		{"no-flags", "0000000000000000", "LISP data [......] | no inner packet, 0 bytes",
			func(h *DataHeader) bool { return len(h.Flags) == 0 && h.Flags != nil }},
	} {
		p := DataPacket(lisptest.MustHex(t, tc.hex))
		if p.Failed() || p.Type != TypeData || p.Summary != tc.summary || !tc.check(p.DataHeader) {
			t.Errorf("%s: %+v %+v\nsummary %q", tc.name, p, p.DataHeader, p.Summary)
		}
		verbose(t, &p)
	}
	if p := DataPacket([]byte{0x80, 0, 0}); p.Error != "data header: header at offset 0: truncated" {
		t.Errorf("short header: %q", p.Error)
	}
}

func TestSummarizeIP(t *testing.T) {
	for _, tc := range []struct{ hex, want string }{
		{"", "no inner packet, 0 bytes"},
		{"45000014", "IPv4 header cut short, 4 bytes"},
		{"60000000", "IPv6 header cut short, 4 bytes"},
		{"0102", "not IP (version 0), 2 bytes"},
		{"45000014000000004011000001020304050607ff", "IPv4 1.2.3.4 > 5.6.7.255 udp length 20"},
		{"450000140000000040fd000001020304050607ff", "IPv4 1.2.3.4 > 5.6.7.255 253 length 20"},
	} {
		if got := SummarizeIP(lisptest.MustHex(t, tc.hex)).String(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.hex, got, tc.want)
		}
	}
}

func TestHeaderLine(t *testing.T) {
	p := Packet{Frame: 3, Time: "2024-01-02T03:04:05.000006Z", Src: "192.0.2.1:4342", Dst: "[2001:db8::1]:4342",
		Length: 40, Truncated: true}
	want := "#3 2024-01-02T03:04:05.000006Z 192.0.2.1:4342 > [2001:db8::1]:4342 40 bytes (cut short by the capture)"
	if got := HeaderLine(&p); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := HeaderLine(&Packet{Frame: 1, Length: 8}); got != "#1 8 bytes" {
		t.Errorf("hex input: %q", got)
	}
}

// verbose renders p with the detailed view and checks the block's shape.
func verbose(t *testing.T, p *Packet) string {
	t.Helper()
	var sb strings.Builder
	if err := WriteText(&sb, p, true); err != nil {
		t.Fatal(err)
	}
	s := sb.String()
	if !strings.HasSuffix(s, "\n\n") {
		t.Errorf("verbose block does not end with a blank line: %q", s)
	}
	for line := range strings.Lines(s) {
		if strings.TrimRight(line, " \n") != strings.TrimSuffix(line, "\n") {
			t.Errorf("trailing blanks in %q", line)
		}
	}
	return s
}

// LISP-SEC data is shown decoded: the ECM's OTK fields and EID-AD, the
// Map-Reply's EID-AD and PKT-AD.
func TestLISPSECView(t *testing.T) {
	inner := &wire.MapRequest{Nonce: 6, ITRRLOCs: []wire.Address{ip("192.0.2.1")},
		Records: []wire.RequestRecord{{MaskLen: 32, EID: ip("198.51.100.2")}}}
	ecm := wire.EncapsulateMapRequest(inner, netip.MustParseAddr("198.51.100.2"), 61000)
	if err := ecm.SetAuthData(&wire.ECMAuthData{RequestedHMAC: wire.SecHMACSHA256128, KeyID: 3,
		Wrap: wire.SecWrapAESKWHKDF, EID: wire.EIDAuthData{KDFOnly: true, KDF: wire.SecKDFHKDFSHA256}}); err != nil {
		t.Fatal(err)
	}
	p := decoded(t, ecm)
	l := p.LISPSEC
	if l == nil || l.RequestedHMAC != "hmac-sha-256-128" || l.KeyID == nil || *l.KeyID != 3 ||
		l.OTKWrap != "aes-key-wrap-128+hkdf-sha256" || l.KDF != "hkdf-sha256" || l.Authorized != nil {
		t.Fatalf("ECM LISP-SEC view %+v", l)
	}
	if text := verbose(t, &p); !strings.Contains(text, "OTK key ID:") || !strings.Contains(text, "aes-key-wrap-128+hkdf-sha256") {
		t.Errorf("verbose:\n%s", text)
	}
	rep := &wire.MapReply{Nonce: 6}
	if err := rep.SetAuthData(&wire.MapReplyAuthData{EID: wire.EIDAuthData{KDF: wire.SecKDFHKDFSHA256, ETRCantSign: true,
		HMACID: wire.SecHMACSHA256128, Records: []wire.EIDADRecord{{MaskLen: 24, EID: ip("198.51.100.0")}},
		HMAC: make([]byte, 16)}, PKTHMACID: wire.SecHMACSHA256128, PKTHMAC: make([]byte, 16)}); err != nil {
		t.Fatal(err)
	}
	p = decoded(t, rep)
	l = p.LISPSEC
	if l == nil || !l.ETRCantSign || strings.Join(l.Authorized, ",") != "198.51.100.0/24" || l.PKTHMAC != "hmac-sha-256-128" ||
		l.PKTHMACHex != strings.Repeat("00", 16) || l.KeyID != nil {
		t.Fatalf("Map-Reply LISP-SEC view %+v", l)
	}
	if text := verbose(t, &p); !strings.Contains(text, "Authorized EIDs:") || !strings.Contains(text, "ETR cannot sign:") {
		t.Errorf("verbose:\n%s", text)
	}
}
