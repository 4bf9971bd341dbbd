package dynamiceid

import (
	"errors"
	"net/netip"
	"testing"
)

func TestNSRoundTrip(t *testing.T) {
	src, target := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::77")
	b := AppendNS(nil, src, target, macA)
	n, err := ParseND(b)
	if err != nil {
		t.Fatal(err)
	}
	if n.Type != ICMPv6NeighborSolicitation || n.Src != src || n.Target != target || n.LinkAddr != macA ||
		n.Dst != netip.MustParseAddr("ff02::1:ff00:77") {
		t.Fatalf("ParseND = %+v", n)
	}
	if _, ok := n.Host(); ok {
		t.Error("an NS from a link-local address named a host")
	}
	if MulticastMAC(n.Dst) != (MAC{0x33, 0x33, 0xff, 0, 0, 0x77}) {
		t.Errorf("multicast MAC %s", MulticastMAC(n.Dst))
	}
	for _, c := range []struct {
		name string
		edit func([]byte)
		want error
	}{
		{"hop limit", func(b []byte) { b[7] = 64 }, ErrHopLimit},
		{"checksum", func(b []byte) { b[ipv6HeaderLen+8] ^= 1 }, ErrBadChecksum},
		{"type", func(b []byte) { b[ipv6HeaderLen] = 128 }, ErrNotND},
		{"next header", func(b []byte) { b[6] = 17 }, ErrNotND},
		{"option length", func(b []byte) { b[ipv6HeaderLen+ndLen+1] = 0 }, ErrBadChecksum},
	} {
		bad := AppendNS(nil, src, target, macA)
		c.edit(bad)
		if _, err := ParseND(bad); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	for i := range b {
		if _, err := ParseND(b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		}
	}
}

// TestDADProbe: a DAD NS (from ::) names no host yet; an NA names its
// target.
func TestDADAndNA(t *testing.T) {
	n := ND{Type: ICMPv6NeighborSolicitation, Src: netip.IPv6Unspecified(), Target: netip.MustParseAddr("2001:db8::7")}
	if !n.IsDAD() {
		t.Error("not a DAD probe")
	}
	if _, ok := n.Host(); ok {
		t.Error("a DAD probe named a host")
	}
	n = ND{Type: ICMPv6NeighborAdvertisement, Target: netip.MustParseAddr("2001:db8::7")}
	if h, ok := n.Host(); !ok || h != n.Target {
		t.Errorf("NA host %s %v", h, ok)
	}
}

func FuzzParseND(f *testing.F) {
	f.Add(AppendNS(nil, netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::77"), macA))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseND(b)
	})
}
