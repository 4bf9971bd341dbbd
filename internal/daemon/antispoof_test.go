package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

// TestDataPlaneAntiSpoofing runs an ETR that is a PETR too, serving
// instance IDs 0 and 7, from its configuration file: the keys reach the
// data plane, and a reload changes them live.
//
// The attacks: a foreign RLOC injects a packet into instance 7 (another
// tenant's), and a site has the PETR relay a spoofed inner source.
func TestDataPlaneAntiSpoofing(t *testing.T) {
	rloc := lisptest.LoopbackAddrs(t, 1, 4342)[0]
	rlocNet := dptest.NewNet()
	ul := rlocNet.Attach(16, rloc)
	tuns := map[uint32]*dptest.TUN{}
	devs := &Devices{
		TUN: func(iid uint32, mtu int) (dataplane.TUN, error) {
			tuns[iid] = dptest.NewTUN(mtu, 16)
			return tuns[iid], nil
		},
		Underlay: ul,
	}
	yaml := fmt.Sprintf(`
control: {addresses: [%[1]s], port: 0}
xtr:
  etr: true
  database:
    - {eid-prefix: 198.51.100.0/24, locators: [{address: %[1]s}]}
    - {eid-prefix: 198.51.100.0/24, instance-id: 7, locators: [{address: %[1]s}]}
  source-rloc-check: [{instance-id: 7}]
petr:
  allowed-source-eids: [{prefix: 203.0.113.0/24}]
`, rloc)
	n := runNode(t, yaml, Options{Devices: devs})

	foreign := netip.MustParseAddr("192.0.2.66")
	inject := func(iid uint32, outerSrc netip.Addr, src, dst string) []byte {
		inner := dptest.UDPv4(netip.MustParseAddr(src), netip.MustParseAddr(dst), 40000, 7, []byte("spoofed?"))
		payload := make([]byte, wire.DataHeaderLen, wire.DataHeaderLen+len(inner))
		wire.DataHeader(payload).Put(wire.DataN|wire.DataI, 1, iid<<8)
		ul.Inject(append(payload, inner...), dataplane.Outer{Src: outerSrc, Dst: rloc, TTL: 64})
		return inner
	}
	dropped := func(reason string) uint64 {
		return lisptest.Counter(t, n.Stats(), "dataplane.packets_dropped{reason="+reason+"}")
	}
	delivered := func(iid uint32) {
		t.Helper()
		select {
		case <-tuns[iid].Written():
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing written to the TUN of instance %d (%+v)", iid, n.dp.engine.Stats())
		}
	}
	nothing := func(iid uint32) {
		t.Helper()
		select {
		case p := <-tuns[iid].Written():
			t.Fatalf("instance %d took %x", iid, p)
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Cross-tenant injection into instance 7: no cached mapping vouches
	// for the foreign RLOC.
	inject(7, foreign, "203.0.113.5", "198.51.100.20")
	lisptest.Eventually(t, 5*time.Second, func() bool { return dropped("source-rloc-unknown") == 1 }, "injection into instance 7 dropped")
	nothing(7)
	// Instance 0 is not checked.
	inject(0, foreign, "203.0.113.5", "198.51.100.20")
	delivered(0)

	// The PETR relays its sites' hosts, not a spoofed source.
	inject(0, foreign, "203.0.113.5", "192.0.2.200")
	delivered(0)
	inject(0, foreign, "192.0.2.99", "192.0.2.200")
	lisptest.Eventually(t, 5*time.Second, func() bool { return dropped("petr-source-not-allowed") == 1 }, "spoofed source not relayed")
	nothing(0)

	// A reload trusts the foreign RLOC's network in instance 7 and lets
	// the PETR relay the other source.
	trusted := strings.Replace(yaml, "[{instance-id: 7}]", "[{instance-id: 7, rloc-prefixes: [192.0.2.64/26]}]", 1)
	trusted = strings.Replace(trusted, "[{prefix: 203.0.113.0/24}]", "[{prefix: 203.0.113.0/24}, {prefix: 192.0.2.96/28}]", 1)
	n.mustApply(t, trusted, map[string][]string{"xtr": {"xtr.source-rloc-check"}, "petr": {"petr.allowed-source-eids"}})
	inject(7, foreign, "203.0.113.5", "198.51.100.20")
	delivered(7)
	inject(0, foreign, "192.0.2.99", "192.0.2.200")
	delivered(0)
}
