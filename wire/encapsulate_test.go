package wire_test

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/lispd/lispd/wire"
)

// TestEncapsulateMapRequestGolden rebuilds an ECM'd Map-Request an Open
// Overlay Router ITR sent (testdata/vectors/oor/oor-capture.pcap, frame 9)
// from its Map-Request: the builder must lay out the same inner IP and UDP
// headers and checksums. OOR sets the IPv4 ID, DF and TTL 255, which lispd
// leaves at 0, 0 and 64; those three are copied over before comparing.
func TestEncapsulateMapRequestGolden(t *testing.T) {
	want, _ := hex.DecodeString("800000004500003c00034000ff11155bcb00710ac633641410f610f60028e6a6" +
		"10000001ddd74e7b684dc3940001cb00710a0001c000020b00200001c6336414")
	m, err := wire.Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*wire.ECM).Message.(*wire.MapRequest)
	eid, itr := netip.MustParseAddr("198.51.100.20"), netip.MustParseAddr("203.0.113.10")
	ecm := wire.EncapsulateMapRequest(req, eid, wire.ControlPort, netip.IPv6Loopback(), itr)
	if ecm.IP.TTL != 64 || ecm.IP.ID != 0 || ecm.IP.FlagsFrag != 0 || ecm.DstPort != wire.ControlPort {
		t.Fatalf("defaults: %+v", ecm)
	}
	ecm.IP.ID, ecm.IP.FlagsFrag, ecm.IP.TTL = 3, 0x4000, 255
	got, err := wire.Encode(ecm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ECM\n got %x\nwant %x", got, want)
	}
}

// TestEncapsulateMapRequestSource checks the inner source rule: the first
// source of the EID's family, else the unspecified address of it.
func TestEncapsulateMapRequestSource(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		eid     string
		sources []netip.Addr
		want    string
	}{
		{"198.51.100.7", []netip.Addr{a("192.0.2.1"), a("192.0.2.2")}, "192.0.2.1"},
		{"198.51.100.7", []netip.Addr{{}, a("2001:db8::1"), a("::ffff:192.0.2.9")}, "192.0.2.9"},
		{"198.51.100.7", []netip.Addr{a("2001:db8::1")}, "0.0.0.0"},
		{"2001:db8:5::1", []netip.Addr{a("192.0.2.1"), {}, a("2001:db8::9")}, "2001:db8::9"},
		{"2001:db8:5::1", []netip.Addr{a("192.0.2.1"), {}}, "::"},
		{"2001:db8:5::1", nil, "::"},
		{"::ffff:198.51.100.7", []netip.Addr{a("192.0.2.3")}, "192.0.2.3"},
	} {
		eid := a(tc.eid)
		req := &wire.MapRequest{Nonce: 9, ITRRLOCs: []wire.Address{wire.AddrFromIP(a("192.0.2.1"))},
			Records: []wire.RequestRecord{{MaskLen: uint8(eid.Unmap().BitLen()), EID: wire.AddrFromIP(eid.Unmap())}}}
		ecm := wire.EncapsulateMapRequest(req, eid, 61000, tc.sources...)
		if ecm.IP.Src != a(tc.want) || ecm.IP.Dst != eid.Unmap() || ecm.SrcPort != 61000 {
			t.Errorf("%s from %v: inner %s:%d > %s", tc.eid, tc.sources, ecm.IP.Src, ecm.SrcPort, ecm.IP.Dst)
			continue
		}
		b, err := wire.Encode(ecm)
		if err != nil {
			t.Fatalf("%s: %v", tc.eid, err)
		}
		back, err := wire.DecodeECM(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.eid, err)
		}
		if back.IP.Src != ecm.IP.Src || back.IP.Dst != ecm.IP.Dst || back.DstPort != wire.ControlPort ||
			back.Message.(*wire.MapRequest).Nonce != 9 || back.IP.ChecksumsBad {
			t.Errorf("%s: round trip %v", tc.eid, back)
		}
	}
}

// TestMessageTypeLabel pins the metric labels: they are user contract.
func TestMessageTypeLabel(t *testing.T) {
	want := map[wire.MessageType]string{
		wire.TypeReserved: "type-Reserved", wire.TypeMapRequest: "map-request", wire.TypeMapReply: "map-reply",
		wire.TypeMapRegister: "map-register", wire.TypeMapNotify: "map-notify", wire.TypeMapNotifyAck: "map-notify-ack",
		wire.TypeMapReferral: "map-referral", wire.TypeInfo: "info", wire.TypeECM: "ecm",
		wire.TypeSharedExtension: "shared-extension", 9: "type-Type-9", 14: "type-Type-14", 16: "type-Type-16",
	}
	for typ, w := range want {
		if got := typ.Label(); got != w {
			t.Errorf("%d: label %q, want %q", typ, got, w)
		}
	}
}
