package daemon

import (
	"net/netip"
	"testing"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/wire"
)

// BenchmarkProxyRequest measures one ECM Map-Request through dispatch to
// a proxy Map-Reply queued for sending: the Map-Resolver's hot path.
func BenchmarkProxyRequest(b *testing.B) {
	d, _, _ := start(b, twoSites)
	reg := register(b, "198.51.100.0/24", 0, "192.0.2.11", []byte("s3cret"), 1, wire.AuthHMACSHA256, 1, true)
	var out control.Out
	p := control.Request{Raw: reg, Src: netip.MustParseAddrPort("192.0.2.11:4342"), Local: netip.MustParseAddrPort("127.0.0.1:4342")}
	d.handle(&p, &out)
	req := ecmRequest(b, "198.51.100.20", 0, netip.MustParseAddrPort("192.0.2.21:4342"), 7)
	q := control.Request{Raw: req, Src: netip.MustParseAddrPort("192.0.2.21:4342"), Local: netip.MustParseAddrPort("127.0.0.1:4342")}
	d.limRequest = newLimiter(1e12, 1<<30, 1e12, 1<<30)
	// The reply passes the guard, as the transport's Out does, with a
	// budget no loop reaches.
	guard := control.NewReplyGuard(1e12, 1<<30, nil, d.countDrop)
	b.ReportAllocs()
	for b.Loop() {
		out = control.Out{Guard: guard}
		p = q // the transport hands each datagram in a fresh Request
		d.handle(&p, &out)
	}
	if out.Len() != 1 {
		b.Fatalf("%d replies", out.Len())
	}
}
