package lisptest

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSenderRecordsCopies(t *testing.T) {
	var s Sender
	b := []byte("map-request")
	to := netip.MustParseAddrPort("192.0.2.1:4342")
	s.Send(b, netip.Addr{}, to)
	b[0] = 'X' // the role reuses its buffer
	if s.Len() != 1 || len(s.All()) != 1 || s.Len() != 1 {
		t.Fatalf("Len %d after All", s.Len())
	}
	got := s.Take()
	if len(got) != 1 || string(got[0].B) != "map-request" || got[0].To != to || got[0].Src.IsValid() {
		t.Fatalf("recorded %+v", got)
	}
	if s.Len() != 0 || len(s.Take()) != 0 {
		t.Error("Take did not forget")
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	c.Advance(1500 * time.Millisecond)
	if got := c.Now(); !got.Equal(start.Add(1500 * time.Millisecond)) {
		t.Errorf("Now %v", got)
	}
}

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, time.Second, func() bool { n++; return n == 3 }, "third poll")
	if n != 3 {
		t.Errorf("polled %d times", n)
	}
	f := &fatalTB{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != f {
				t.Fatalf("recovered %v", r)
			}
		}()
		Eventually(f, 30*time.Millisecond, func() bool { return false }, "never")
	}()
	if f.msg != "timed out after 30ms: never" || time.Since(start) < 30*time.Millisecond {
		t.Errorf("Eventually failed with %q after %v", f.msg, time.Since(start))
	}
}

func TestLoopbackAddrs(t *testing.T) {
	a := LoopbackAddrs(t, 3, 4342)
	if len(a) != 3 || !a[0].IsLoopback() || a[0].As4()[1] == 0 || a[1] != a[0].Next() || a[2] != a[1].Next() {
		t.Fatalf("addresses %v", a)
	}
	// They are usable on the well-known port.
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a[2], 4342)))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
