package dataplane

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/mapping"
)

func hostEID(iid uint32, a netip.Addr) mapping.EID {
	return mapping.NewEID(iid, netip.PrefixFrom(a, a.BitLen()))
}

// HostSeen fires for a source in a dynamic-EID range of its instance that
// is not a known host, at most once per interval; the packet is forwarded
// as usual.
func TestHostSeen(t *testing.T) {
	a, b, _ := pair(t, 4, nil, nil)
	newHost := netip.MustParseAddr("198.51.100.130")
	knownHost := netip.MustParseAddr("198.51.100.200")
	newHost6 := netip.MustParseAddr("2001:db8:a:1::5")
	a.e.SetDynamicEIDs(
		[]mapping.EID{mapping.NewEID(0, netip.MustParsePrefix("198.51.100.128/25")),
			mapping.NewEID(0, netip.MustParsePrefix("2001:db8:a:1::/64")),
			mapping.NewEID(9, netip.MustParsePrefix("10.0.0.0/8"))}, // not served: ignored
		[]mapping.EID{hostEID(0, knownHost)})

	send := func(src, dst netip.Addr) {
		t.Helper()
		pkt := buildPkt(pktSpec{src: src, dst: dst})
		a.tun().Inject(pkt)
		if got := recv(t, b.tun()); !bytes.Equal(got, pkt) {
			t.Fatal("packet from a detected host changed or lost")
		}
	}
	want := []hostEvent{{0, newHost}}
	send(newHost, hostB4)
	send(newHost, hostB4)   // rate-limited
	send(knownHost, hostB4) // known
	send(hostA4, hostB4)    // outside the ranges
	send(newHost6, hostB6)  // the ITR goroutine handles packets in order: the marker
	want = append(want, hostEvent{0, newHost6})
	eventually(t, "HostSeen for the IPv6 host", func() bool { return len(a.hooks.hostsSeen()) == 2 })
	if got := a.hooks.hostsSeen(); !slices.Equal(got, want) {
		t.Fatalf("HostSeen calls %v, want %v", got, want)
	}

	a.clock.Advance(time.Second)
	send(newHost, hostB4)
	want = append(want, hostEvent{0, newHost})
	eventually(t, "HostSeen after the interval", func() bool { return len(a.hooks.hostsSeen()) == 3 })

	// Detected: the control plane lists it as known.
	a.clock.Advance(time.Second)
	a.e.SetDynamicEIDs([]mapping.EID{mapping.NewEID(0, netip.MustParsePrefix("198.51.100.128/25"))},
		[]mapping.EID{hostEID(0, knownHost), hostEID(0, newHost)})
	send(newHost, hostB4)
	a.e.SetDynamicEIDs(nil, nil)
	a.clock.Advance(time.Second)
	send(newHost6, hostB6)
	time.Sleep(50 * time.Millisecond) // hooks run on their own goroutine
	if got := a.hooks.hostsSeen(); !slices.Equal(got, want) {
		t.Fatalf("HostSeen calls %v, want %v", got, want)
	}
	if s := a.e.Stats(); s.EncapsulatedPackets != 8 || len(s.Dropped) != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Ranges are per instance ID: a range of IID 5 detects nothing in IID 0.
func TestHostSeenPerInstance(t *testing.T) {
	fn := NewFakeNet()
	a := newNode(t, fn, []netip.Addr{rlocA4}, []uint32{0, 5}, nil)
	a.e.SetDynamicEIDs([]mapping.EID{mapping.NewEID(5, eidA4)}, nil)
	pkt := buildPkt(pktSpec{src: hostA4, dst: hostB4}) // a miss: held, Miss called
	a.tuns[0].Inject(pkt)
	a.tuns[5].Inject(pkt)
	eventually(t, "two Misses", func() bool { m, _, _ := a.hooks.counts(); return m == 2 })
	eventually(t, "HostSeen", func() bool { return len(a.hooks.hostsSeen()) == 1 })
	time.Sleep(20 * time.Millisecond)
	if got := a.hooks.hostsSeen(); !slices.Equal(got, []hostEvent{{5, hostA4}}) {
		t.Fatalf("HostSeen calls %v", got)
	}
}
