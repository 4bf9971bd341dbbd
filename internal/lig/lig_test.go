package lig

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is a scripted Map-Resolver: handle gets each datagram and
// returns what to send back to the datagram's source.
type server struct {
	conn *net.UDPConn
	wg   sync.WaitGroup
}

func newServer(t *testing.T, network, addr string, handle func(n int, b []byte, from netip.AddrPort) [][]byte) *server {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	s := &server{conn: c}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 9216)
		for n := 1; ; n++ {
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			for _, out := range handle(n, append([]byte(nil), buf[:k]...), from) {
				_, _ = c.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); s.wg.Wait() })
	return s
}

func (s *server) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func reply(t *testing.T, nonce uint64, recs ...wire.EIDRecord) []byte {
	b, err := wire.Encode(&wire.MapReply{Nonce: nonce, Records: recs})
	if err != nil {
		t.Error(err)
	}
	return b
}

var positive = wire.EIDRecord{TTL: 1440, MaskLen: 24, Authoritative: true,
	EID: wire.AddrWithIID(1000, wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))),
	Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255, Flags: wire.LocatorReachable,
		Address: wire.AddrFromIP(netip.MustParseAddr("192.0.2.12"))}}}

// decodeRequest checks the ECM as a Map-Resolver would see it and
// returns the Map-Request.
func decodeRequest(t *testing.T, b []byte, from netip.AddrPort) (*wire.ECM, *wire.MapRequest) {
	ecm, err := wire.DecodeECM(b)
	if err != nil {
		t.Errorf("request does not decode: %v", err)
		return nil, nil
	}
	mr, ok := ecm.Message.(*wire.MapRequest)
	if !ok {
		t.Errorf("ECM carries %T", ecm.Message)
		return nil, nil
	}
	if ecm.IP.ChecksumsBad || ecm.DstPort != 4342 || ecm.SrcPort != from.Port() {
		t.Errorf("inner header: checksums bad %v, ports %d > %d (socket port %d)", ecm.IP.ChecksumsBad, ecm.SrcPort, ecm.DstPort, from.Port())
	}
	return ecm, mr
}

func TestQuery(t *testing.T) {
	var mu sync.Mutex
	var got *wire.MapRequest
	var ecm *wire.ECM
	s := newServer(t, "udp4", "127.0.0.1:0", func(_ int, b []byte, from netip.AddrPort) [][]byte {
		e, mr := decodeRequest(t, b, from)
		if mr == nil {
			return nil
		}
		mu.Lock()
		ecm, got = e, mr
		mu.Unlock()
		// A foreign Map-Reply and a non-reply first: both are ignored.
		return [][]byte{reply(t, mr.Nonce+1), {0x10, 0, 0, 0}, reply(t, mr.Nonce, positive)}
	})
	var sends []uint64
	res, err := Query(context.Background(), Options{EID: netip.MustParseAddr("198.51.100.20"), InstanceID: 1000,
		HasInstanceID: true, MapResolver: s.addr(), Timeout: time.Second,
		OnSend: func(n int, nonce uint64) { sends = append(sends, nonce) }})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Attempts != 1 || len(sends) != 1 || res.Nonce != sends[0] || res.Nonce != got.Nonce {
		t.Errorf("attempts %d, sends %x, reply nonce %x, request nonce %x", res.Attempts, sends, res.Nonce, got.Nonce)
	}
	if res.RTT <= 0 || res.RTT > time.Second || res.RepliedBy != s.addr() || res.Negative() {
		t.Errorf("rtt %v replied-by %v negative %v", res.RTT, res.RepliedBy, res.Negative())
	}
	if len(res.Reply.Records) != 1 || res.Reply.Records[0].PrefixString() != "[1000]198.51.100.0/24" {
		t.Errorf("reply %v", res.Reply)
	}
	// What the Map-Resolver saw.
	lo := netip.MustParseAddr("127.0.0.1")
	if rloc, _ := got.ITRRLOCs[0].Addr(); len(got.ITRRLOCs) != 1 || rloc != lo || ecm.IP.Src != lo ||
		ecm.IP.Dst != netip.MustParseAddr("198.51.100.20") {
		t.Errorf("ITR-RLOCs %v, inner %v > %v", got.ITRRLOCs, ecm.IP.Src, ecm.IP.Dst)
	}
	if !got.SourceEID.IsNone() || len(got.Records) != 1 || got.Records[0].PrefixString() != "[1000]198.51.100.20/32" {
		t.Errorf("request %v", got)
	}
	if got.Probe || got.SMR || got.Authoritative || got.MapReply != nil || ecm.Security {
		t.Errorf("unexpected flags: %v", ecm)
	}
	if res.Local.Addr() != lo || res.Local.Port() != ecm.SrcPort {
		t.Errorf("local %v", res.Local)
	}
}

// TestRetry: the first request gets no answer; the second gets a negative
// one. A reply to the first attempt's nonce arriving late is accepted too.
func TestRetry(t *testing.T) {
	for _, late := range []bool{false, true} {
		var mu sync.Mutex
		var first uint64
		s := newServer(t, "udp4", "127.0.0.1:0", func(n int, b []byte, from netip.AddrPort) [][]byte {
			_, mr := decodeRequest(t, b, from)
			if mr == nil {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if n == 1 {
				first = mr.Nonce
				return nil
			}
			nonce := mr.Nonce
			if late {
				nonce = first
			}
			return [][]byte{reply(t, nonce, wire.EIDRecord{TTL: 15, MaskLen: 16, Action: wire.ActionNativelyForward,
				EID: wire.AddrFromIP(netip.MustParseAddr("198.51.0.0"))})}
		})
		res, err := Query(context.Background(), Options{EID: netip.MustParseAddr("198.51.100.20"),
			MapResolver: s.addr(), Timeout: 150 * time.Millisecond, Count: 3, Nonce: 42})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if res.Attempts != 2 || !res.Negative() || first != 42 {
			t.Errorf("late %v: attempts %d negative %v first nonce %d", late, res.Attempts, res.Negative(), first)
		}
		if late && (res.Nonce != 42 || res.RTT < 150*time.Millisecond) {
			t.Errorf("late reply: nonce %d rtt %v, want 42 and the time since the first request", res.Nonce, res.RTT)
		}
		mu.Unlock()
	}
}

func TestNoAnswer(t *testing.T) {
	var n int
	var mu sync.Mutex
	s := newServer(t, "udp4", "127.0.0.1:0", func(int, []byte, netip.AddrPort) [][]byte {
		mu.Lock()
		n++
		mu.Unlock()
		return nil
	})
	start := time.Now()
	_, err := Query(context.Background(), Options{EID: netip.MustParseAddr("198.51.100.20"), MapResolver: s.addr(),
		Timeout: 50 * time.Millisecond, Count: 2})
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("err %v, want ErrNoAnswer", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > time.Second {
		t.Errorf("gave up after %v, want 2 × 50 ms", el)
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
}

func TestCancel(t *testing.T) {
	s := newServer(t, "udp4", "127.0.0.1:0", func(int, []byte, netip.AddrPort) [][]byte { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Query(ctx, Options{EID: netip.MustParseAddr("198.51.100.20"), MapResolver: s.addr(), Timeout: 5 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("err %v after %v", err, time.Since(start))
	}
}

func TestIPv6(t *testing.T) {
	s := newServer(t, "udp6", "[::1]:0", func(_ int, b []byte, from netip.AddrPort) [][]byte {
		ecm, mr := decodeRequest(t, b, from)
		if mr == nil {
			return nil
		}
		if rloc, _ := mr.ITRRLOCs[0].Addr(); rloc != netip.IPv6Loopback() || mr.Records[0].MaskLen != 128 ||
			ecm.IP.Src != netip.IPv6Loopback() {
			t.Errorf("request %v", ecm)
		}
		return [][]byte{reply(t, mr.Nonce, positive)}
	})
	res, err := Query(context.Background(), Options{EID: netip.MustParseAddr("2001:db8::5"), MapResolver: s.addr()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Negative() || res.RepliedBy.Addr() != netip.IPv6Loopback() {
		t.Errorf("%+v", res)
	}
}

// TestMixedFamilies: an IPv6 EID asked over IPv4 has an inner IPv6
// header, from the source EID when given.
func TestMixedFamilies(t *testing.T) {
	local := netip.MustParseAddrPort("127.0.0.1:5000")
	for _, c := range []struct{ srcEID, want string }{{"", "::"}, {"2001:db8::9", "2001:db8::9"}} {
		o := Options{EID: netip.MustParseAddr("2001:db8::5")}
		if c.srcEID != "" {
			o.SourceEID = netip.MustParseAddr(c.srcEID)
		}
		b, err := Request(o, local, 7)
		if err != nil {
			t.Fatal(err)
		}
		ecm, err := wire.DecodeECM(b)
		if err != nil {
			t.Fatal(err)
		}
		mr := ecm.Message.(*wire.MapRequest)
		rloc, _ := mr.ITRRLOCs[0].Addr()
		if ecm.IP.Src.String() != c.want || rloc != local.Addr() || ecm.IP.ChecksumsBad {
			t.Errorf("source EID %q: inner source %v ITR-RLOC %v", c.srcEID, ecm.IP.Src, rloc)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	mr := netip.MustParseAddrPort("127.0.0.1:4342")
	for _, o := range []Options{
		{MapResolver: mr},
		{EID: netip.MustParseAddr("192.0.2.1")},
		{EID: netip.MustParseAddr("192.0.2.1"), MapResolver: mr, Source: netip.MustParseAddr("::1")},
		{EID: netip.MustParseAddr("192.0.2.1"), MapResolver: mr, Count: -1},
	} {
		if _, err := Query(context.Background(), o); err == nil || errors.Is(err, ErrNoAnswer) {
			t.Errorf("%+v: err %v", o, err)
		}
	}
}
