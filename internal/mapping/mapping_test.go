package mapping

import (
	"net/netip"
	"testing"

	"github.com/lispd/lispd/wire"
)

func TestTableLPMPerInstance(t *testing.T) {
	tb := NewTable[string]()
	tb.Insert(NewEID(0, netip.MustParsePrefix("198.51.100.0/24")), "a")
	tb.Insert(NewEID(0, netip.MustParsePrefix("198.51.100.128/25")), "b")
	tb.Insert(NewEID(5, netip.MustParsePrefix("198.51.100.0/24")), "c")
	tb.Insert(NewEID(0, netip.MustParsePrefix("2001:db8::/32")), "d")
	for _, tc := range []struct {
		iid  uint32
		addr string
		want string
		ok   bool
	}{
		{0, "198.51.100.1", "a", true}, {0, "198.51.100.200", "b", true}, {5, "198.51.100.200", "c", true},
		{6, "198.51.100.1", "", false}, {0, "2001:db8::1", "d", true}, {0, "192.0.2.1", "", false},
	} {
		_, v, ok := tb.Lookup(tc.iid, netip.MustParseAddr(tc.addr))
		if v != tc.want || ok != tc.ok {
			t.Errorf("[%d]%s: %q %v", tc.iid, tc.addr, v, ok)
		}
	}
	if tb.Len() != 4 {
		t.Errorf("Len %d", tb.Len())
	}
	tb.Insert(NewEID(0, netip.MustParsePrefix("198.51.100.0/24")), "a2")
	tb.Delete(NewEID(5, netip.MustParsePrefix("198.51.100.0/24")))
	if tb.Len() != 3 {
		t.Errorf("Len after replace and delete %d", tb.Len())
	}
}

func TestEIDWireRoundTrip(t *testing.T) {
	for _, e := range []EID{NewEID(0, netip.MustParsePrefix("198.51.100.0/24")), NewEID(1000, netip.MustParsePrefix("2001:db8:1::/48"))} {
		got, ok := FromWire(e.Address(), e.MaskLen())
		if !ok || got != e {
			t.Errorf("%v -> %v %v", e, got, ok)
		}
	}
	m := Mapping{EID: HostEID(3, netip.MustParseAddr("192.0.2.1")), TTL: 10, Locators: []Locator{{Addr: netip.MustParseAddr("203.0.113.1"), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}
	rec := m.Record()
	back, ok := FromRecord(&rec)
	if !ok || back.EID != m.EID || back.Locators[0] != m.Locators[0] {
		t.Errorf("record round trip: %v", back)
	}
}

// BenchmarkLookup1M measures a map-cache style lookup with a million /32s
// and /24s in the table.
func BenchmarkLookup1M(b *testing.B) {
	tb := NewTable[int]()
	base := netip.MustParseAddr("198.18.0.0").As4()
	for i := range 1_000_000 {
		a := base
		a[1] += byte(i >> 16)
		a[2], a[3] = byte(i>>8), byte(i)
		tb.Insert(HostEID(0, netip.AddrFrom4(a)), i)
	}
	probe := netip.AddrFrom4([4]byte{198, 19, 66, 77})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := tb.Lookup(0, probe); !ok {
			b.Fatal("miss")
		}
	}
}
