package dptest

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/dataplane/underlay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A datagram reaches the underlay attached with its destination, with
// its outer headers; one to an address nobody attached is counted.
func TestNetDeliversByAddress(t *testing.T) {
	n := NewNet()
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	ua, ub := n.Attach(4, a), n.Attach(4, b)
	defer ua.Close()
	defer ub.Close()
	buf := make([]byte, underlay.Headroom+5)
	copy(buf[underlay.Headroom:], "hello")
	out := []underlay.Outer{{Src: a, Dst: b, SrcPort: 61000, TTL: 64}}
	if k, err := ua.Send([][]byte{buf}, out, underlay.Headroom); k != 1 || err != nil {
		t.Fatalf("Send: %d, %v", k, err)
	}
	p, o, ok := ub.Next(time.Second)
	if !ok || string(p) != "hello" || o.Src != a || o.Dst != b || o.SrcPort != 61000 || !o.HasTOS {
		t.Fatalf("got %q %+v %v", p, o, ok)
	}
	out[0].Dst = netip.MustParseAddr("192.0.2.99")
	ua.Send([][]byte{buf}, out, underlay.Headroom)
	if n.Unroutable.Load() != 1 {
		t.Errorf("unroutable %d", n.Unroutable.Load())
	}
	if _, err := ua.Send([][]byte{buf}, out, 1); err == nil {
		t.Error("Send accepted an offset without headroom")
	}
}

// What is injected into a TUN is read back at the offset, and what is
// written comes out of Written.
func TestTUNRoundTrip(t *testing.T) {
	tun := NewTUN(1500, 8)
	defer tun.Close()
	pkt := UDPv4(netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1"), 1000, 7, []byte("x"))
	tun.Inject(pkt)
	bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
	if n, err := tun.Read(bufs, sizes, 64); n != 1 || err != nil || !bytes.Equal(bufs[0][64:64+sizes[0]], pkt) {
		t.Fatalf("Read: %d, %v", n, err)
	}
	if _, err := tun.Write([][]byte{bufs[0][:64+sizes[0]]}, 64); err != nil {
		t.Fatal(err)
	}
	if got := <-tun.Written(); !bytes.Equal(got, pkt) {
		t.Errorf("Written %x", got)
	}
}

// UDPv4 builds a header whose checksum verifies.
func TestUDPv4Checksum(t *testing.T) {
	p := UDPv4(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), 1, 2, []byte("abc"))
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(p[i])<<8 | uint32(p[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	if sum != 0xffff || len(p) != 31 || p[9] != 17 {
		t.Errorf("header % x sums to %#x", p[:20], sum)
	}
}
