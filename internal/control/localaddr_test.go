package control

import (
	"net/netip"
	"testing"
)

func TestLocalAddrFor(t *testing.T) {
	for _, dst := range []string{"127.0.0.1:0", "127.0.0.1:9"} {
		a, err := LocalAddrFor(netip.MustParseAddrPort(dst))
		if err != nil || a != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("LocalAddrFor(%s) = %v, %v; want 127.0.0.1", dst, a, err)
		}
	}
}
