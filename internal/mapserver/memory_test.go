package mapserver

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// BenchmarkMemoryPerPrefix registers N host prefixes (one locator each)
// through the full Map-Register path and reports heap bytes per prefix.
func BenchmarkMemoryPerPrefix(b *testing.B) {
	const n = 1 << 17 // every host of 198.18.0.0/15
	site := Site{Name: "big", Keys: []Key{{Alg: wire.AuthHMACSHA256, Secret: secret}},
		Prefixes: []SitePrefix{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.18.0.0/15")), AcceptMoreSpecifics: true}}}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := New([]Site{site}, Options{Now: func() time.Time { return time.Unix(1e9, 0) }})
		rloc := wire.AddrFromIP(netip.MustParseAddr("192.0.2.11"))
		for i := range n {
			a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
			m := &wire.MapRegister{AuthBody: wire.AuthBody{Nonce: uint64(i), Algorithm: wire.AuthHMACSHA256,
				Records: []wire.EIDRecord{{TTL: 1440, MaskLen: 32, EID: wire.AddrFromIP(a),
					Locators: []wire.Locator{{Priority: 1, Weight: 100, Flags: wire.LocatorReachable, Address: rloc}}}}}}
			raw, _ := wire.EncodeSigned(m, secret, wire.AuthOptions{})
			s.HandleMapRegister(&control.Request{Raw: raw, Msg: m, Src: etr1, Local: netip.AddrPortFrom(ms, wire.ControlPort)},
				control.SenderFunc(func([]byte, netip.Addr, netip.AddrPort) {}))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if s.Registrations() != n {
			b.Fatalf("%d registrations", s.Registrations())
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/prefix")
		runtime.KeepAlive(s)
	}
}
