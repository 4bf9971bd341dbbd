package lisptest

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
)

// LoopbackAddrs returns n addresses of a /24 in 127.0.0.0/8 picked at
// random (.1 to .n), on none of which port is in use: for daemons that must
// listen on the well-known control port (a Map-Server forwards Map-Requests
// to an ETR's port 4342), so that a test owns the addresses it uses even
// while other test binaries, or a lispd, run on the same host. Linux
// answers on all of 127.0.0.0/8.
func LoopbackAddrs(t testing.TB, n int, port uint16) []netip.Addr {
	t.Helper()
	if n < 1 || n > 254 {
		t.Fatalf("LoopbackAddrs: %d addresses", n)
	}
	for range 20 {
		// 127.0.x.0/24 is left to tests that picked fixed addresses.
		b1, b2 := byte(1+rand.IntN(254)), byte(rand.IntN(256))
		addrs := make([]netip.Addr, n)
		for i := range addrs {
			addrs[i] = netip.AddrFrom4([4]byte{127, b1, b2, byte(i + 1)})
		}
		if free(addrs, port) {
			return addrs
		}
	}
	t.Fatalf("LoopbackAddrs: no free /24 in 127.0.0.0/8 for port %d", port)
	return nil
}

// free reports whether port can be bound on every address (UDP, as the
// control plane uses).
func free(addrs []netip.Addr, port uint16) bool {
	for _, a := range addrs {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)))
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}
