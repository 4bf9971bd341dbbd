package dataplane

import (
	"bytes"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// TestRTRRelay: an RTR engine (ITR, no ETR) relays for a NATed xTR: to
// its translated address and port from 4342, from it through the
// map-cache; and drops, by reason, a NATed xTR's packet with a source EID
// it did not register and a stranger's packet with a NATed source EID.
func TestRTRRelay(t *testing.T) {
	fn := dptest.NewNet()
	rtr := newNode(t, fn, []netip.Addr{rlocB4}, nil, func(c *Config) { c.ETR = false })
	natted := netip.MustParseAddrPort("198.18.3.2:20000")
	stranger := netip.MustParseAddr("192.0.2.99")
	xtr := fn.Attach(64, natted.Addr())
	pub := fn.Attach(64, rlocA4)
	rtr.e.SetMapCache(CacheEntry{EID: mapping.NewEID(0, eidA4), Locators: []Locator{{Addr: rlocA4, Priority: 1, Up: true}}})
	var to, from atomic.Uint64
	rtr.e.SetNATedXTRs([]NATedXTR{{EIDs: []mapping.EID{mapping.NewEID(0, eidB4)}, Translated: natted, Local: rlocB4,
		ToXTR: &to, FromXTR: &from}})

	inject := func(src netip.Addr, sport uint16, spec pktSpec) {
		payload := make([]byte, 8, 64)
		wire.DataHeader(payload).Put(wire.DataN|wire.DataI, 1, 0)
		rtr.ul.Inject(append(payload, buildPkt(spec)...), Outer{Src: src, Dst: rlocB4, SrcPort: sport, TTL: 64})
	}
	expect := func(at *dptest.Underlay, spec pktSpec) Outer {
		t.Helper()
		got, o, ok := at.Next(5 * time.Second)
		if !ok {
			t.Fatalf("nothing relayed to %v", spec.dst)
		}
		if want := buildPkt(spec); !bytes.Equal(got[wire.DataHeaderLen:], want) {
			t.Errorf("inner\n% x\nwant\n% x", got[wire.DataHeaderLen:], want)
		}
		return o
	}

	// A public ITR sends for the NATed site: to the translated address
	// and port, from the RTR's RLOC and port 4342.
	in := pktSpec{src: hostA4, dst: hostB4, sport: 5, dport: 6}
	inject(rlocA4, 61000, in)
	if o := expect(xtr, in); o.Src != rlocB4 || o.Dst != natted.Addr() || o.DstPort != natted.Port() || o.SrcPort != wire.ControlPort {
		t.Errorf("to the NATed xTR: outer %+v, want %s:4342 -> %s", o, rlocB4, natted)
	}
	// The NATed xTR sends out (its NAT gave its data another port): the
	// map-cache sends it on like an ITR.
	out := pktSpec{src: hostB4, dst: hostA4, sport: 6, dport: 5}
	inject(natted.Addr(), 33333, out)
	if o := expect(pub, out); o.Src != rlocB4 || o.Dst != rlocA4 || o.DstPort != 0 {
		t.Errorf("from the NATed xTR: outer %+v, want %s -> %s:4341", o, rlocB4, rlocA4)
	}
	if to.Load() != 1 || from.Load() != 1 {
		t.Errorf("per-xTR counters: %d to, %d from; want 1 and 1", to.Load(), from.Load())
	}

	// No open relay.
	inject(natted.Addr(), 33333, pktSpec{src: netip.MustParseAddr("198.51.100.99"), dst: hostA4})
	inject(stranger, 61000, pktSpec{src: hostB4, dst: hostA4})
	inject(stranger, 61000, pktSpec{src: netip.MustParseAddr("198.51.100.99"), dst: hostA4})
	waitFor(t, func() bool {
		return rtr.dropped("rtr-source-eid-not-registered") == 1 && rtr.dropped("rtr-not-registered") == 2
	}, "drops by reason: %v", func() any { return rtr.e.Stats().Dropped })
	if _, _, ok := pub.Next(200 * time.Millisecond); ok {
		t.Error("a forged packet was relayed")
	}

	// Relaying off: the RTR without NATed xTRs is no ETR either.
	rtr.e.SetNATedXTRs(nil)
	inject(rlocA4, 61000, in)
	waitFor(t, func() bool { return rtr.dropped("etr-disabled") == 1 }, "drops: %v", func() any { return rtr.e.Stats().Dropped })
}

// ctlHooks are recHooks that take Data-Map-Notifies.
type ctlHooks struct {
	*recHooks
	got chan []byte
}

func (h ctlHooks) DataMapNotify(msg []byte, from netip.AddrPort) { h.got <- msg }

// TestDataMapNotifyToControlPlane: a packet with Instance ID 0xFFFFFF
// reaches the control plane's hook (its inner packet), not a TUN; without
// the hook it is dropped and counted.
func TestDataMapNotifyToControlPlane(t *testing.T) {
	fn := dptest.NewNet()
	h := ctlHooks{recHooks: &recHooks{}, got: make(chan []byte, 1)}
	x := newNode(t, fn, []netip.Addr{rlocB4}, nil, func(c *Config) { c.Hooks = h })
	plain := newNode(t, fn, []netip.Addr{rlocA4}, nil, nil)
	inner := buildPkt(pktSpec{src: rlocA6, dst: rlocB6, sport: 4342, dport: 4342})
	payload := make([]byte, 8, 8+len(inner))
	wire.DataHeader(payload).Put(wire.DataI, 0, DataMapNotifyIID<<8)
	payload = append(payload, inner...)
	x.ul.Inject(payload, Outer{Src: rlocA4, Dst: rlocB4, SrcPort: wire.ControlPort, TTL: 64})
	select {
	case got := <-h.got:
		if !bytes.Equal(got, inner) {
			t.Errorf("hook got\n% x\nwant\n% x", got, inner)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Data-Map-Notify did not reach the hook")
	}
	none(t, x.tun())
	plain.ul.Inject(payload, Outer{Src: rlocB4, Dst: rlocA4, SrcPort: wire.ControlPort, TTL: 64})
	waitFor(t, func() bool { return plain.dropped("control-in-data") == 1 }, "drops: %v", func() any { return plain.e.Stats().Dropped })
}

func waitFor(t *testing.T, cond func() bool, format string, arg func() any) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf(format, arg())
}
