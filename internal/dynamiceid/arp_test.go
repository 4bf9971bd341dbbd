package dynamiceid

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/lisptest"
)

// requestHex is "who-has 198.51.100.2 tell 198.51.100.1" from
// 02:00:00:00:00:01, written out by hand from RFC 826's layout.
const requestHex = "0001" + "0800" + "06" + "04" + "0001" +
	"020000000001" + "c6336401" +
	"000000000000" + "c6336402"

var (
	macA = MAC{2, 0, 0, 0, 0, 1}
	macB = MAC{2, 0, 0, 0, 0, 2}
	ipA  = netip.MustParseAddr("198.51.100.1")
	ipB  = netip.MustParseAddr("198.51.100.2")
)

func TestParseARPRequest(t *testing.T) {
	b := lisptest.MustHex(t, requestHex)
	got, err := ParseARP(b)
	if err != nil {
		t.Fatal(err)
	}
	want := ARP{Op: OpRequest, SenderMAC: macA, SenderIP: ipA, TargetIP: ipB}
	if got != want {
		t.Fatalf("ParseARP = %+v, want %+v", got, want)
	}
	if enc := got.Append(nil); !bytes.Equal(enc, b) {
		t.Fatalf("Append = %x, want %x", enc, b)
	}
}

// An ARP read off Ethernet is padded to the 60-byte minimum frame: 18
// bytes after the payload that ParseARP must ignore.
func TestParseARPPadding(t *testing.T) {
	b := append(lisptest.MustHex(t, requestHex), make([]byte, 18)...)
	got, err := ParseARP(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.TargetIP != ipB {
		t.Fatalf("target %s, want %s", got.TargetIP, ipB)
	}
}

func TestParseARPErrors(t *testing.T) {
	base := lisptest.MustHex(t, requestHex)
	with := func(off int, v ...byte) []byte {
		b := bytes.Clone(base)
		copy(b[off:], v)
		return b
	}
	tests := []struct {
		name   string
		in     []byte
		field  string
		offset int
		want   error
	}{
		{"empty", nil, "header", 0, ErrTruncated},
		{"short", base[:27], "header", 27, ErrTruncated},
		{"token ring", with(0, 0, 6), "hardware type", 0, ErrNotEthernet},
		{"ipv6", with(2, 0x86, 0xdd), "protocol type", 2, ErrNotIPv4},
		{"hlen 8", with(4, 8), "hardware address length", 4, ErrNotEthernet},
		{"plen 16", with(5, 16), "protocol address length", 5, ErrNotIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseARP(tt.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v (%T), want *DecodeError", err, err)
			}
			if !errors.Is(err, tt.want) || de.Field != tt.field || de.Offset != tt.offset {
				t.Fatalf("err = %v (field %q offset %d), want %v in %q at %d", err, de.Field, de.Offset, tt.want, tt.field, tt.offset)
			}
		})
	}
}

func TestAppendAppends(t *testing.T) {
	a := ARP{Op: OpReply, SenderMAC: macB, SenderIP: ipB, TargetMAC: macA, TargetIP: ipA}
	prefix := []byte{0xaa, 0xbb}
	b := a.Append(prefix)
	if len(b) != 2+ARPLen || !bytes.Equal(b[:2], prefix) {
		t.Fatalf("Append(prefix) = %x", b)
	}
	got, err := ParseARP(b[2:])
	if err != nil || got != a {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, a)
	}
}

// Addresses that do not fit the 4-byte field: mapped IPv4 is unmapped,
// anything else becomes 0.0.0.0 rather than a panic or a short encoding.
func TestAppendNonIPv4(t *testing.T) {
	a := ARP{Op: OpRequest, SenderIP: netip.MustParseAddr("::ffff:198.51.100.1"), TargetIP: netip.MustParseAddr("2001:db8::1")}
	b := a.Append(nil)
	if len(b) != ARPLen {
		t.Fatalf("len %d, want %d", len(b), ARPLen)
	}
	got, err := ParseARP(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.SenderIP != ipA || got.TargetIP != netip.IPv4Unspecified() {
		t.Fatalf("sender %s target %s, want %s and 0.0.0.0", got.SenderIP, got.TargetIP, ipA)
	}
	var zero ARP
	if n := len(zero.Append(nil)); n != ARPLen {
		t.Fatalf("zero ARP encodes to %d bytes", n)
	}
}

func TestPredicates(t *testing.T) {
	garp := ARP{Op: OpRequest, SenderMAC: macA, SenderIP: ipA, TargetIP: ipA}
	if !garp.IsGratuitous() || garp.IsProbe() {
		t.Errorf("%v: gratuitous %v probe %v", garp, garp.IsGratuitous(), garp.IsProbe())
	}
	probe := ARP{Op: OpRequest, SenderMAC: macA, SenderIP: netip.IPv4Unspecified(), TargetIP: ipA}
	if probe.IsGratuitous() || !probe.IsProbe() {
		t.Errorf("%v: gratuitous %v probe %v", probe, probe.IsGratuitous(), probe.IsProbe())
	}
	req := ARP{Op: OpRequest, SenderMAC: macA, SenderIP: ipA, TargetIP: ipB}
	if req.IsGratuitous() || req.IsProbe() {
		t.Errorf("%v: gratuitous %v probe %v", req, req.IsGratuitous(), req.IsProbe())
	}
	if (ARP{}).IsGratuitous() {
		t.Error("zero ARP is gratuitous")
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		a    ARP
		want string
	}{
		{ARP{Op: OpRequest, SenderMAC: macA, SenderIP: ipA, TargetIP: ipB},
			"request who-has 198.51.100.2 tell 198.51.100.1 (02:00:00:00:00:01)"},
		{ARP{Op: OpReply, SenderMAC: macB, SenderIP: ipB, TargetMAC: macA, TargetIP: ipA},
			"reply 198.51.100.2 is-at 02:00:00:00:00:02 to 198.51.100.1 (02:00:00:00:00:01)"},
		{ARP{Op: OpReply, SenderMAC: macB, SenderIP: ipB, TargetIP: ipB},
			"reply 198.51.100.2 is-at 02:00:00:00:00:02 gratuitous"},
		{ARP{Op: 9, SenderMAC: macA, SenderIP: ipA, TargetMAC: macB, TargetIP: ipB},
			"op 9 sender 198.51.100.1 (02:00:00:00:00:01) target 198.51.100.2 (02:00:00:00:00:02)"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("String() = %q\n want %q", got, tt.want)
		}
	}
}

func TestMACFrom(t *testing.T) {
	m, ok := MACFrom(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	if !ok || m != macA || m.String() != "02:00:00:00:00:01" {
		t.Fatalf("MACFrom = %v, %v", m, ok)
	}
	if _, ok := MACFrom(make(net.HardwareAddr, 20)); ok {
		t.Fatal("MACFrom accepted a 20-byte InfiniBand address")
	}
	if !strings.Contains(BroadcastMAC.String(), "ff:ff") || BroadcastMAC.IsZero() || !(MAC{}).IsZero() {
		t.Fatal("BroadcastMAC / IsZero")
	}
}

func BenchmarkParseARP(b *testing.B) {
	in := lisptest.MustHex(b, requestHex)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseARP(in); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseARP(f *testing.F) {
	req := lisptest.MustHex(f, requestHex)
	f.Add(req)
	f.Add(append(bytes.Clone(req), make([]byte, 18)...))
	f.Add(ARP{Op: OpReply, SenderMAC: macB, SenderIP: ipB, TargetMAC: macA, TargetIP: ipA}.Append(nil))
	f.Add(req[:27])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseARP(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is %T, not *DecodeError", err, err)
			}
			return
		}
		if enc := a.Append(nil); !bytes.Equal(enc, b[:ARPLen]) {
			t.Fatalf("re-encoded %x\n   from %x", enc, b[:ARPLen])
		}
		_ = a.String()
	})
}

// rarpHex is the frame QEMU sends for a VM after live migration
// (qemu_announce_self), without its Ethernet header and padding: a RARP
// request for the VM's own MAC, addresses zero.
const rarpHex = "0001" + "0800" + "06" + "04" + "0003" +
	"525400123456" + "00000000" +
	"525400123456" + "00000000"

func TestParseRARPAnnouncement(t *testing.T) {
	got, err := ParseARP(lisptest.MustHex(t, rarpHex))
	if err != nil {
		t.Fatal(err)
	}
	vm := MAC{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	if got.Op != OpReverseRequest || got.SenderMAC != vm || got.TargetMAC != vm {
		t.Fatalf("ParseARP = %+v", got)
	}
	if !got.IsAnnouncement() || got.IsGratuitous() {
		t.Errorf("announcement %v, gratuitous %v", got.IsAnnouncement(), got.IsGratuitous())
	}
	if s := got.String(); s != "reverse request who-is 52:54:00:12:34:56 tell 52:54:00:12:34:56" {
		t.Errorf("String = %q", s)
	}
	// A RARP asking for another station's address is no announcement.
	got.TargetMAC = macB
	if got.IsAnnouncement() {
		t.Error("a RARP for another MAC taken as an announcement")
	}
}
