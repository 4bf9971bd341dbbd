package daemon

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lisptest"
)

// TestPacketITRToETR is the whole of LISP without root: an ITR, a
// Map-Server/Map-Resolver and an ETR run as three daemons in this process,
// the control plane on loopback (each daemon on an address of its own, on
// port 4342, where Map-Requests are forwarded to an ETR) and the data
// plane on dptest's in-memory TUNs and RLOC network. A packet from
// an EID behind the ITR to one behind the ETR misses the ITR's map-cache,
// is held while the ITR asks the Map-Resolver (ECM), which forwards the
// request to the registered ETR, whose Map-Reply goes straight to the ITR;
// then it is encapsulated to the ETR's RLOC, decapsulated there and
// written to the ETR's TUN unchanged.
func TestPacketITRToETR(t *testing.T) {
	addrs := lisptest.LoopbackAddrs(t, 3, 4342)
	msAddr, etrRLOC, itrRLOC := addrs[0].String(), addrs[1].String(), addrs[2].String()
	rlocNet := dptest.NewNet()
	// devices attaches a daemon's data plane to rlocNet at rloc and keeps its
	// TUN of instance 0.
	devices := func(rloc string, tun **dptest.TUN) *Devices {
		return &Devices{
			TUN: func(iid uint32, mtu int) (dataplane.TUN, error) {
				if iid != 0 {
					return nil, fmt.Errorf("unexpected instance %d", iid)
				}
				*tun = dptest.NewTUN(mtu, 16)
				return *tun, nil
			},
			Underlay: rlocNet.Attach(16, netip.MustParseAddr(rloc)),
		}
	}
	start := func(yaml string, devs *Devices) *Daemon {
		return lisptest.Start(t, yaml, newWith(Options{Devices: devs})).D
	}

	ms := start(fmt.Sprintf(`
control: {addresses: [%[1]s], port: 4342}
map-server:
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
map-resolver: {}
`, msAddr), nil)
	var etrTUN, itrTUN *dptest.TUN
	etr := start(fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
  database:
    - eid-prefix: 198.51.100.0/24
      locators: [{address: %[2]s, priority: 1, weight: 100}]
`, msAddr, etrRLOC), devices(etrRLOC, &etrTUN))
	itr := start(fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  itr: true
  map-resolvers: [%[1]s]
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: %[2]s, priority: 1, weight: 100}]
`, msAddr, itrRLOC), devices(itrRLOC, &itrTUN))
	lisptest.Eventually(t, 5*time.Second, func() bool { return ms.MapServer().Registrations() == 1 }, "ETR registered")

	pkt := dptest.UDPv4(netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("198.51.100.20"), 40000, 7,
		[]byte("one packet across the mapping system"))
	itrTUN.Inject(pkt)
	select {
	case got := <-etrTUN.Written():
		if !bytes.Equal(got, pkt) {
			t.Fatalf("ETR's TUN got\n%x\nwant\n%x", got, pkt)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing reached the ETR's TUN (ITR %+v, ETR %+v, unroutable %d)",
			itr.dp.engine.Stats(), etr.dp.engine.Stats(), rlocNet.Unroutable.Load())
	}
	select {
	case extra := <-etrTUN.Written():
		t.Errorf("a second packet reached the ETR's TUN: %x", extra)
	case extra := <-itrTUN.Written():
		t.Errorf("a packet came back to the ITR's TUN: %x", extra)
	case <-time.After(50 * time.Millisecond):
	}

	// The ITR cached the ETR's mapping, learnt from the Map-Reply.
	mc := itr.XTR().MapCache()
	if len(mc) != 1 || fmt.Sprint(mc[0].EIDPrefix) != "198.51.100.0/24" || mc[0].Negative || len(mc[0].Locators) != 1 ||
		fmt.Sprint(mc[0].Locators[0].Address) != etrRLOC {
		t.Errorf("ITR map-cache: %+v", mc)
	}
	// The request went through the Map-Server to the ETR, which answered.
	for _, c := range []struct {
		d    *Daemon
		key  string
		want uint64
	}{
		{itr, "itr.map_requests_sent", 1},
		{ms, "map_server.requests_forwarded", 1},
		{ms, "map_server.proxy_replies", 0},
		{etr, "etr.map_replies_sent", 1},
		{itr, "itr.map_cache_installs", 1},
		{itr, "itr.map_replies_unsolicited", 0},
	} {
		if got := lisptest.Counter(t, c.d.Stats(), c.key); got != c.want {
			t.Errorf("%s = %d, want %d", c.key, got, c.want)
		}
	}
	// The packet waited in the ITR's miss queue, left encapsulated and
	// arrived decapsulated.
	is, es := itr.dp.engine.Stats(), etr.dp.engine.Stats()
	if is.MissQueued != 1 || is.MissReleased != 1 || is.EncapsulatedPackets != 1 || is.DecapsulatedPackets != 0 {
		t.Errorf("ITR data plane: %+v", is)
	}
	if es.DecapsulatedPackets != 1 || es.EncapsulatedPackets != 0 || sum(es.Dropped) != 0 {
		t.Errorf("ETR data plane: %+v", es)
	}
	if n := rlocNet.Unroutable.Load(); n != 0 {
		t.Errorf("%d datagrams sent to no RLOC", n)
	}
}

func sum(m map[string]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}
