package control

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEchoBatch sends datagrams to a wildcard transport on loopback and
// checks each arrives with its source and the destination learned from
// IP_PKTINFO, and that a reply queued on Out comes back from that address.
func TestEchoBatch(t *testing.T) {
	tr, err := Listen(nil, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); tr.Wait() }()
	port := tr.Addrs()[0].Port()
	got := make(chan Request, 100)
	tr.Serve(ctx, func(r *Request, out *Out) {
		got <- Request{Raw: append([]byte(nil), r.Raw...), Src: r.Src, Local: r.Local}
		out.Send(append([]byte("re:"), r.Raw...), r.Local.Addr(), r.Src)
	})
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	for i := range 20 {
		if _, err := c.WriteToUDPAddrPort([]byte{byte(i)}, to); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for i := range 20 {
		p := <-got
		if p.Local != to || p.Src.Port() != uint16(c.LocalAddr().(*net.UDPAddr).Port) {
			t.Fatalf("packet %d: src %v dst %v", i, p.Src, p.Local)
		}
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if from.Addr().Unmap() != to.Addr() || string(buf[:3]) != "re:" || n != 4 {
			t.Fatalf("reply %d from %v: %q", i, from, buf[:n])
		}
	}
}
