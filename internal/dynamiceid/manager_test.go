package dynamiceid

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
)

// rec records what the manager asks of the xTR, the kernel and the data
// plane, as lines in order.
type rec struct{ log []string }

func (r *rec) add(f string, a ...any) { r.log = append(r.log, fmt.Sprintf(f, a...)) }
func (r *rec) take() []string         { l := r.log; r.log = nil; return l }

func (r *rec) AddHost(eid mapping.EID, locs []mapping.Locator) bool {
	r.add("add %s %v", eid.Prefix, locatorAddrs(locs))
	return true
}
func (r *rec) RemoveHost(eid mapping.EID, withdraw bool) bool {
	r.add("remove %s withdraw=%v", eid.Prefix, withdraw)
	return true
}
func (r *rec) SetAway(to mapping.Mapping, ttl time.Duration) {
	r.add("away %s %v %v", to.EID.Prefix, locatorAddrs(to.Locators), ttl)
}
func (r *rec) ClearAway(eid mapping.EID) { r.add("clear-away %s", eid.Prefix) }
func (r *rec) RouteLocal(h mapping.EID, dev string) error {
	r.add("route %s dev %s", iidPrefix(h), dev)
	return nil
}
func (r *rec) RouteAway(h mapping.EID) error { r.add("route %s tun", iidPrefix(h)); return nil }
func (r *rec) Unroute(h mapping.EID) error   { r.add("unroute %s", iidPrefix(h)); return nil }

// iidPrefix writes a host EID as its prefix, with "[IID]" before it
// outside instance ID 0.
func iidPrefix(e mapping.EID) string {
	if e.IID == 0 {
		return e.Prefix.String()
	}
	return fmt.Sprintf("[%d]%s", e.IID, e.Prefix)
}
func (r *rec) Probe(dev string, h netip.Addr) error {
	r.add("probe %s %s", dev, h)
	return nil
}
func (r *rec) SetDynamicEIDs(ranges, known []mapping.EID) {
	r.add("dp ranges=%d known=%s", len(ranges), prefixes(known))
}
func (r *rec) SetAwayEIDs(eids []mapping.EID) { r.add("dp away=%s", prefixes(eids)) }
func (r *rec) Announce(rg *Range, h mapping.EID, locs []mapping.Locator) {
	r.add("announce %s %s", rg.NotifyGroup, h.Prefix)
}

func prefixes(eids []mapping.EID) string {
	var s []string
	for _, e := range eids {
		s = append(s, e.Prefix.String())
	}
	slices.Sort(s)
	return "[" + strings.Join(s, " ") + "]"
}

var (
	d1   = netip.MustParseAddr("203.0.113.10")
	d1h  = mapping.HostEID(0, d1)
	dc1  = []mapping.Locator{{Addr: netip.MustParseAddr("198.18.3.2"), Priority: 1, Weight: 50}}
	dc2  = []mapping.Locator{{Addr: netip.MustParseAddr("198.18.6.2"), Priority: 1, Weight: 100}}
	base = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

func newManager(t *testing.T, mode string) (*Manager, *rec, *lisptest.Clock) {
	t.Helper()
	r := &rec{}
	clk := lisptest.NewClock(base)
	m := New(Options{
		Ranges: []Range{{Name: "vms", EID: mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/28")), Interface: "lan0",
			Mode: mode, NotifyGroup: netip.MustParseAddr("233.252.0.1"), Locators: dc1, Timeout: 6 * time.Second,
			MaxAdopted: 3, AdoptRate: 2}},
		XTR: r, Kernel: r, DataPlane: r, Announcer: r, Now: clk.Now,
	})
	r.take()
	return m, r, clk
}

func want(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestDetectRegistersOnce(t *testing.T) {
	m, r, _ := newManager(t, AcrossSubnet)
	m.Detected(0, d1, "data", "")
	want(t, r.take(), "route 203.0.113.10/32 dev lan0", "add 203.0.113.10/32 [198.18.3.2]",
		"dp ranges=1 known=[203.0.113.10/32]", "dp away=[]", "announce 233.252.0.1 203.0.113.10/32",
		"probe lan0 203.0.113.10") // for its MAC
	m.Detected(0, d1, "arp", "lan0")
	want(t, r.take()) // already local: only refreshed
	// Outside the range, or seen on another interface: ignored.
	m.Detected(0, netip.MustParseAddr("203.0.113.77"), "data", "")
	m.Detected(0, netip.MustParseAddr("203.0.113.11"), "arp", "eth9")
	m.Detected(5, d1, "data", "")
	want(t, r.take())
}

func TestExtendedSubnetAnnounces(t *testing.T) {
	m, r, _ := newManager(t, ExtendedSubnet)
	m.Detected(0, d1, "data", "")
	got := r.take()
	if !slices.Contains(got, "announce 233.252.0.1 203.0.113.10/32") {
		t.Errorf("no announcement: %v", got)
	}
}

func TestMovedAwayAndBack(t *testing.T) {
	m, r, now := newManager(t, AcrossSubnet)
	m.Detected(0, d1, "data", "")
	r.take()
	now.Advance(time.Second)
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 10, Locators: dc2})
	want(t, r.take(), "remove 203.0.113.10/32 withdraw=false", "route 203.0.113.10/32 tun",
		"away 203.0.113.10/32 [198.18.6.2] 10m0s", "dp ranges=1 known=[]", "dp away=[203.0.113.10/32]")
	// The same news again (a retransmitted Map-Notify) changes nothing.
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 10, Locators: dc2})
	want(t, r.take())
	v := m.View()
	if h := v[0].Hosts[0]; h.State != Away || h.Moves != 1 || !slices.Equal(h.MovedTo, []netip.Addr{netip.MustParseAddr("198.18.6.2")}) {
		t.Errorf("view: %+v", h)
	}
	// It comes back; its ARP told its MAC.
	m.Learn("lan0", MAC{0x52, 0x54, 0, 0, 0, 1}, d1)
	m.Detected(0, d1, "arp", "lan0")
	want(t, r.take(), "route 203.0.113.10/32 dev lan0", "clear-away 203.0.113.10/32", "add 203.0.113.10/32 [198.18.3.2]",
		"dp ranges=1 known=[203.0.113.10/32]", "dp away=[]", "announce 233.252.0.1 203.0.113.10/32")
	if h := m.View()[0].Hosts[0]; h.State != Local || h.Moves != 2 {
		t.Errorf("view after return: %+v", h)
	}
	// Away news for a host we never had is ignored.
	other := mapping.HostEID(0, netip.MustParseAddr("203.0.113.12"))
	m.MovedAway(other, mapping.Mapping{EID: other, TTL: 10, Locators: dc2})
	want(t, r.take())
}

func TestSilentHostProbedThenUnregistered(t *testing.T) {
	m, r, now := newManager(t, AcrossSubnet)
	m.Detected(0, d1, "data", "")
	r.take()
	now.Advance(1900 * time.Millisecond)
	m.Tick()
	want(t, r.take()) // quiet for less than timeout/3
	now.Advance(200 * time.Millisecond)
	m.Tick()
	want(t, r.take(), "probe lan0 203.0.113.10")
	m.Tick()
	want(t, r.take()) // probes are spaced by timeout/6
	now.Advance(time.Second)
	m.Tick()
	want(t, r.take(), "probe lan0 203.0.113.10")
	m.Alive(0, d1) // it answered
	now.Advance(5 * time.Second)
	m.Tick()
	want(t, r.take(), "probe lan0 203.0.113.10")
	now.Advance(1100 * time.Millisecond)
	m.Tick()
	want(t, r.take(), "remove 203.0.113.10/32 withdraw=true", "unroute 203.0.113.10/32",
		"dp ranges=1 known=[]", "dp away=[]")
	if len(m.View()[0].Hosts) != 0 {
		t.Error("host still listed")
	}
}

// TestClaimDoesNotEvict is the attack of issue #12 finding 5: a group
// claim (even a signed one: any key holder, or a replay) by another site
// used to make the xTR give up a live host at once. Now the host stays
// routed and registered, shown as moving, until the Map-Server's
// authenticated Map-Notify says it moved.
func TestClaimDoesNotEvict(t *testing.T) {
	m, r, now := newManager(t, ExtendedSubnet)
	m.Detected(0, d1, "data", "")
	r.take()
	if got := m.Claimed(d1h, dc1); got != ClaimRefreshed { // our own site's other xTR: nothing to do
		t.Errorf("claim by our site: %s", got)
	}
	want(t, r.take())
	if got := m.Claimed(d1h, dc2); got != ClaimDeferred {
		t.Errorf("claim by another site: %s, want %s", got, ClaimDeferred)
	}
	want(t, r.take()) // no remove, no unroute: the host is still ours
	if h := m.View()[0].Hosts[0]; h.State != Moving {
		t.Errorf("state %s, want moving", h.State)
	}
	// The Map-Server confirms: away.
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 1440, Locators: dc2})
	want(t, r.take(), "remove 203.0.113.10/32 withdraw=false", "route 203.0.113.10/32 tun",
		"away 203.0.113.10/32 [198.18.6.2] 24h0m0s", "dp ranges=1 known=[]", "dp away=[203.0.113.10/32]")

	// An unconfirmed claim lapses: the host is local again, never
	// unregistered or unrouted, and still probed and timed out as usual.
	other := netip.MustParseAddr("203.0.113.11")
	otherH := mapping.HostEID(0, other)
	m.Detected(0, other, "data", "")
	r.take()
	m.Claimed(otherH, dc2)
	now.Advance(4 * time.Second)
	m.Alive(0, other) // answers probes as ever
	now.Advance(2500 * time.Millisecond)
	m.Tick()
	for _, l := range r.take() {
		if strings.HasPrefix(l, "remove") || strings.HasPrefix(l, "unroute") {
			t.Errorf("an unconfirmed claim evicted the host: %s", l)
		}
	}
	if h := hostView(m, other); h.State != Local {
		t.Errorf("state after an unconfirmed claim %s, want local", h.State)
	}
	// Traffic of the host through us ends a claim at once.
	m.Claimed(otherH, dc2)
	m.Detected(0, other, "data", "")
	if h := hostView(m, other); h.State != Local {
		t.Errorf("state after traffic %s, want local", h.State)
	}
	want(t, r.take())
	// Claims for hosts we do not hold, or outside our ranges.
	if got := m.Claimed(mapping.HostEID(0, netip.MustParseAddr("203.0.113.12")), dc2); got != ClaimIgnored {
		t.Errorf("claim for a host we do not hold: %s", got)
	}
	if got := m.Claimed(mapping.HostEID(0, netip.MustParseAddr("198.51.100.1")), dc1); got != ClaimOutsideRange {
		t.Errorf("claim outside the range: %s", got)
	}
}

func hostView(m *Manager, a netip.Addr) adminapi.DynamicEIDHost {
	for _, h := range m.View()[0].Hosts {
		if h.EID == a {
			return h
		}
	}
	return adminapi.DynamicEIDHost{}
}

// TestAdoptionLimits: claims by "our site" (any key holder can send them)
// adopt at most MaxAdopted hosts of a range at once, at AdoptRate a
// second; the rest are refused and the hosts are not registered.
func TestAdoptionLimits(t *testing.T) {
	m, r, now := newManager(t, AcrossSubnet)
	host := func(i int) mapping.EID { return mapping.HostEID(0, netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i)})) }
	adds := func() int {
		n := 0
		for _, l := range r.take() {
			if strings.HasPrefix(l, "add ") {
				n++
			}
		}
		return n
	}
	// A burst of AdoptRate (2), then refused for the rate.
	for i, wantOut := range []string{ClaimAdopted, ClaimAdopted, ClaimAdoptRate, ClaimAdoptRate} {
		if got := m.Claimed(host(i), dc1); got != wantOut {
			t.Errorf("claim %d: %s, want %s", i, got, wantOut)
		}
	}
	if n := adds(); n != 2 {
		t.Errorf("%d hosts registered in a burst, want 2", n)
	}
	// Half a second later one more token; a second later the cap (3).
	now.Advance(500 * time.Millisecond)
	if got := m.Claimed(host(2), dc1); got != ClaimAdopted {
		t.Errorf("claim after the refill: %s", got)
	}
	now.Advance(time.Second)
	for i := 3; i < 6; i++ {
		if got := m.Claimed(host(i), dc1); got != ClaimAdoptCap {
			t.Errorf("claim %d beyond the cap: %s, want %s", i, got, ClaimAdoptCap)
		}
	}
	if n := adds(); n != 1 {
		t.Errorf("%d more hosts registered, want 1", n)
	}
	// A host we see ourselves is ours, not the group's: room again.
	m.Detected(0, host(0).Prefix.Addr(), "data", "")
	if got := m.Claimed(host(3), dc1); got != ClaimAdopted {
		t.Errorf("claim after an adopted host was detected here: %s", got)
	}
	// A range that adopts nothing.
	m0 := New(Options{Ranges: []Range{{Name: "none", EID: mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/28")),
		Interface: "lan0", Locators: dc1}}, XTR: r, Kernel: r, DataPlane: r, Announcer: r})
	if got := m0.Claimed(d1h, dc1); got != ClaimAdoptCap {
		t.Errorf("claim in a range with no adoptions: %s", got)
	}
}

func TestAwayExpires(t *testing.T) {
	m, r, now := newManager(t, AcrossSubnet)
	m.Detected(0, d1, "data", "")
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 1, Locators: dc2})
	r.take()
	now.Advance(61 * time.Second)
	m.Tick()
	want(t, r.take(), "clear-away 203.0.113.10/32", "unroute 203.0.113.10/32", "dp ranges=1 known=[]", "dp away=[]")
}

// TestAdoptedFromOwnSite: another xTR of our site announces a host it
// found on the LAN: we register it too (no announcement back), and an
// away entry of ours from an earlier move goes.
func TestAdoptedFromOwnSite(t *testing.T) {
	m, r, _ := newManager(t, AcrossSubnet)
	m.Claimed(d1h, dc1)
	want(t, r.take(), "route 203.0.113.10/32 dev lan0", "add 203.0.113.10/32 [198.18.3.2]",
		"dp ranges=1 known=[203.0.113.10/32]", "dp away=[]")
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 10, Locators: dc2})
	r.take()
	m.Claimed(d1h, dc1)
	want(t, r.take(), "route 203.0.113.10/32 dev lan0", "clear-away 203.0.113.10/32", "add 203.0.113.10/32 [198.18.3.2]",
		"dp ranges=1 known=[203.0.113.10/32]", "dp away=[]")
	if h := m.View()[0].Hosts[0]; h.State != Local || h.DetectedBy != "notify-group" {
		t.Errorf("view: %+v", h)
	}
}

// A reload's new timeout applies to the hosts already here: with 6 s cut
// to 2 s, a host silent for 3 s is unregistered.
func TestSetTimeout(t *testing.T) {
	m, r, now := newManager(t, AcrossSubnet)
	m.Detected(0, d1, "data", "")
	r.take()
	if !m.SetTimeout("vms", 2*time.Second) || m.SetTimeout("nope", time.Second) {
		t.Fatal("SetTimeout found the wrong ranges")
	}
	if v := m.View(); v[0].TimeoutSec != 2 || m.Ranges()[0].Timeout != 2*time.Second {
		t.Errorf("show dynamic-eid timeout %v s", v[0].TimeoutSec)
	}
	now.Advance(3 * time.Second)
	m.Tick()
	if got := r.take(); !slices.Contains(got, "remove 203.0.113.10/32 withdraw=true") {
		t.Errorf("host silent past the new timeout not unregistered: %v", got)
	}
}

// TestRARPAnnouncement: a hypervisor's RARP names the VM's MAC only; the
// manager detects every address an ARP of that MAC showed on the range's
// LAN, away hosts included (the VM comes back), and nothing for a MAC it
// never saw or one seen on another LAN.
func TestRARPAnnouncement(t *testing.T) {
	m, r, _ := newManager(t, AcrossSubnet)
	vm := MAC{0x52, 0x54, 0, 0, 0, 1}
	if got := m.Announced("lan0", vm); got != AnnounceUnknownMAC {
		t.Errorf("unknown MAC: %s", got)
	}
	m.Learn("lan0", vm, d1)
	m.Learn("eth9", MAC{0x52, 0x54, 0, 0, 0, 2}, netip.MustParseAddr("203.0.113.11")) // not the range's LAN
	m.Learn("lan0", MAC{0x52, 0x54, 0, 0, 0, 3}, netip.MustParseAddr("198.51.100.7")) // outside the range
	m.Learn("lan0", BroadcastMAC, netip.MustParseAddr("203.0.113.12"))
	want(t, r.take()) // learning detects nothing
	if got := m.Announced("eth9", MAC{0x52, 0x54, 0, 0, 0, 2}); got != AnnounceUnknownMAC {
		t.Errorf("MAC seen on another LAN: %s", got)
	}
	if got := m.Announced("lan0", vm); got != AnnounceDetected {
		t.Fatalf("announced: %s", got)
	}
	// The VM's addresses are one round: the data plane hears of them at
	// its end.
	want(t, r.take(), "route 203.0.113.10/32 dev lan0", "add 203.0.113.10/32 [198.18.3.2]",
		"announce 233.252.0.1 203.0.113.10/32", "dp ranges=1 known=[203.0.113.10/32]", "dp away=[]")
	if h := hostView(m, d1); h.DetectedBy != "rarp" {
		t.Errorf("detected by %q", h.DetectedBy)
	}
	// It moves away, then the hypervisor brings it back.
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 10, Locators: dc2})
	r.take()
	m.Announced("lan0", vm)
	if h := hostView(m, d1); h.State != Local || h.DetectedBy != "rarp" || h.Moves != 2 {
		t.Errorf("after the return: %+v", h)
	}
	// The address moves to another MAC (a new VM): the old MAC names nothing.
	m.Learn("lan0", MAC{0x52, 0x54, 0, 0, 0, 9}, d1)
	if got := m.Announced("lan0", vm); got != AnnounceUnknownMAC {
		t.Errorf("old MAC after rebinding: %s", got)
	}
}

// TestBindingsBounded: an endless stream of addresses on the LAN keeps at
// most MaxBindings bindings.
func TestBindingsBounded(t *testing.T) {
	m := New(Options{Ranges: []Range{{Name: "big", EID: mapping.NewEID(0, netip.MustParsePrefix("10.0.0.0/16")),
		Interface: "lan0", Mode: AcrossSubnet}}, XTR: &rec{}, Kernel: &rec{}, MaxBindings: 8})
	for i := range 100 {
		m.Learn("lan0", MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, eids := range m.macs {
		n += len(eids)
	}
	if len(m.bound) != 8 || n != 8 {
		t.Errorf("%d bindings, %d in the reverse index, want 8", len(m.bound), n)
	}
}

// TestOverlappingInstanceIDs: the same addresses in ranges of IID 0 and 7
// on two LANs are two hosts; what a LAN shows reaches only its own
// instance ID.
func TestOverlappingInstanceIDs(t *testing.T) {
	r := &rec{}
	p := netip.MustParsePrefix("203.0.113.0/28")
	m := New(Options{Ranges: []Range{
		{Name: "t0", EID: mapping.NewEID(0, p), Interface: "lan0", Mode: AcrossSubnet, Locators: dc1},
		{Name: "t7", EID: mapping.NewEID(7, p), Interface: "lan7", Mode: AcrossSubnet, Locators: dc1},
	}, XTR: r, Kernel: r})
	vm := MAC{0x52, 0x54, 0, 0, 0, 7}
	m.Learn("lan7", vm, d1)
	m.DetectedOn("lan0", d1, "arp")
	m.Announced("lan7", vm)
	var iids []uint32
	for _, v := range m.View() {
		for _, h := range v.Hosts {
			if h.EID == d1 {
				iids = append(iids, v.EID.InstanceID)
			}
		}
	}
	slices.Sort(iids)
	if !slices.Equal(iids, []uint32{0, 7}) {
		t.Errorf("d1 held in instance IDs %v, want [0 7]", iids)
	}
	// Liveness on lan0 does not refresh the IID 7 host.
	m.mu.Lock()
	h7 := m.hosts[mapping.HostEID(7, d1)]
	seen := h7.LastSeen
	m.mu.Unlock()
	m.AliveOn("lan0", d1)
	if h7.LastSeen != seen {
		t.Error("an answer on lan0 refreshed the host of instance ID 7")
	}
}

// TestDualStackMovesAsOne: a VM with an IPv4 and an IPv6 address (one
// MAC) announced by its hypervisor is detected in both families at once.
func TestDualStackMovesAsOne(t *testing.T) {
	r := &rec{}
	m := New(Options{Ranges: []Range{
		{Name: "v4", EID: mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/28")), Interface: "lan0", Mode: AcrossSubnet, Locators: dc1},
		{Name: "v6", EID: mapping.NewEID(0, netip.MustParsePrefix("2001:db8:d::/120")), Interface: "lan0", Mode: AcrossSubnet, Locators: dc1},
	}, XTR: r, Kernel: r})
	vm := MAC{0x52, 0x54, 0, 0, 0, 0x46}
	v6 := netip.MustParseAddr("2001:db8:d::10")
	m.Learn("lan0", vm, d1) // its ARP
	m.Learn("lan0", vm, v6) // its Neighbor Solicitation
	r.take()
	if got := m.Announced("lan0", vm); got != AnnounceDetected {
		t.Fatalf("announced: %s", got)
	}
	var added []string
	for _, l := range r.take() {
		if strings.HasPrefix(l, "add ") {
			added = append(added, l)
		}
	}
	slices.Sort(added)
	if want := []string{"add 2001:db8:d::10/128 [198.18.3.2]", "add 203.0.113.10/32 [198.18.3.2]"}; !slices.Equal(added, want) {
		t.Errorf("registered %v, want %v", added, want)
	}
}

// TestStalePacketsAfterMove: packets the host sent before it moved, read
// from the TUN after the Map-Server said it moved away, do not take it
// back (which moved it from its new site for good, until its next packet
// there got through): within the guard the host is probed instead, and
// its answer on the LAN brings it back at once; past the guard its
// packets do as ever.
func TestStalePacketsAfterMove(t *testing.T) {
	m, r, now := newManager(t, AcrossSubnet)
	m.Learn("lan0", MAC{0x52, 0x54, 0, 0, 0, 1}, d1)
	m.Detected(0, d1, "data", "")
	now.Advance(time.Second)
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 10, Locators: dc2})
	r.take()
	now.Advance(75 * time.Millisecond)
	m.Detected(0, d1, "data", "")
	m.Detected(0, d1, "data", "")
	want(t, r.take(), "probe lan0 203.0.113.10") // once, not a registration
	if h := m.View()[0].Hosts[0]; h.State != Away || m.stale.Load() != 2 {
		t.Errorf("after stale packets: %+v, %d counted", h, m.stale.Load())
	}
	// It answers: it is here.
	m.Detected(0, d1, "arp", "lan0")
	if got := r.take(); !slices.Contains(got, "add 203.0.113.10/32 [198.18.3.2]") {
		t.Errorf("the answer to the probe did not bring it back: %v", got)
	}
	// Moved away again: past the guard, a packet brings it back.
	now.Advance(time.Second)
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 10, Locators: dc2})
	r.take()
	now.Advance(awayGuard)
	m.Detected(0, d1, "data", "")
	if got := r.take(); !slices.Contains(got, "add 203.0.113.10/32 [198.18.3.2]") {
		t.Errorf("a packet past the guard did not bring it back: %v", got)
	}
	// On an extended subnet the LAN proves nothing: no probe, the guard only.
	m, r, now = newManager(t, ExtendedSubnet)
	m.Detected(0, d1, "data", "")
	m.MovedAway(d1h, mapping.Mapping{EID: d1h, TTL: 10, Locators: dc2})
	r.take()
	now.Advance(10 * time.Millisecond)
	m.Detected(0, d1, "data", "")
	want(t, r.take())
}

// TestHostEvents: a host detected on the LAN and one that went silent are
// events on the bus (lispctl monitor, the web view), with how it was seen.
func TestHostEvents(t *testing.T) {
	m, r, now := newManager(t, AcrossSubnet)
	bus := events.NewBus(now.Now, stats.NewRegistry(), 0)
	m.o.Events = bus
	sub := bus.Subscribe(adminapi.EventQuery{Types: []string{"host"}}, 0)
	defer sub.Close()
	m.Detected(0, d1, "arp", "lan0")
	now.Advance(7 * time.Second) // past the range's 6 s timeout
	m.Tick()
	r.take()
	var got []string
	for len(sub.C()) > 0 {
		e := <-sub.C()
		got = append(got, fmt.Sprintf("%s %v %s %v", e.Type, e.EIDPrefix, e.Reason, e.Locators))
	}
	want(t, got, "host-detected 203.0.113.10/32 arp [198.18.3.2]", "host-gone 203.0.113.10/32 silent []")
}

// batchRec is rec that also counts the XTR's host batches (Batcher) and
// the data plane's table rebuilds.
type batchRec struct {
	rec
	batches, adds, inBatch, rebuilds int
	batching                         bool
}

func (r *batchRec) HostBatch(f func()) {
	r.batches++
	r.batching = true
	f()
	r.batching = false
}
func (r *batchRec) AddHost(eid mapping.EID, locs []mapping.Locator) bool {
	r.adds++
	if r.batching {
		r.inBatch++
	}
	return true
}
func (r *batchRec) SetDynamicEIDs(ranges, known []mapping.EID) { r.rebuilds++ }
func (r *batchRec) SetAwayEIDs([]mapping.EID)                  {}

func newBulkManager(r *batchRec, k Kernel) *Manager {
	m := New(Options{
		Ranges: []Range{{Name: "vms", EID: mapping.NewEID(0, netip.MustParsePrefix("198.19.0.0/22")), Interface: "lan0",
			Mode: AcrossSubnet, Locators: dc2, Timeout: time.Minute}},
		XTR: r, Kernel: k, DataPlane: r, Now: lisptest.NewClock(base).Now,
	})
	r.rebuilds = 0
	return m
}

// hostStates returns the manager's hosts' states.
func hostStates(m *Manager) map[mapping.EID]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[mapping.EID]string{}
	for eid, h := range m.hosts {
		out[eid] = h.State
	}
	return out
}

func bulkSightings(n int) []Sighting {
	ss := make([]Sighting, n)
	a := netip.MustParseAddr("198.19.1.0")
	for i := range ss {
		a = a.Next()
		ss[i] = Sighting{Addr: a, How: "data"}
	}
	return ss
}

// TestDetectedAllOneRound: 200 hosts arriving in one detection round are
// registered in one batch and the data plane's tables are rebuilt once,
// not once per host; the old site hearing they all moved away rebuilds
// them once too.
func TestDetectedAllOneRound(t *testing.T) {
	r := &batchRec{}
	m := newBulkManager(r, &r.rec)
	ss := bulkSightings(200)
	m.DetectedAll(ss)
	if r.adds != 200 || r.inBatch != 200 || r.batches != 1 {
		t.Errorf("%d hosts added, %d of them in %d batches; want 200 in one", r.adds, r.inBatch, r.batches)
	}
	if r.rebuilds != 1 {
		t.Errorf("the data plane's tables were rebuilt %d times for 200 arrivals, want once", r.rebuilds)
	}
	if hs := hostStates(m); len(hs) != 200 {
		t.Errorf("%d hosts known, want 200", len(hs))
	}
	r.rebuilds = 0
	var moved []mapping.Mapping
	for _, x := range ss {
		moved = append(moved, mapping.Mapping{EID: mapping.HostEID(0, x.Addr), TTL: 10, Locators: dc1})
	}
	m.MovedAwayAll(moved)
	if r.rebuilds != 1 {
		t.Errorf("the data plane's tables were rebuilt %d times for 200 departures, want once", r.rebuilds)
	}
	for eid, st := range hostStates(m) {
		if st != Away {
			t.Fatalf("%s is %s after the move, want away", eid, st)
		}
	}
	// Alone, a host still updates the data plane at once.
	r.rebuilds = 0
	m.Detected(0, netip.MustParseAddr("198.19.3.1"), "data", "")
	if r.rebuilds != 1 {
		t.Errorf("a lone arrival rebuilt the tables %d times, want once", r.rebuilds)
	}
}

// slowKernel is rec whose first host route blocks until released: the
// manager is busy with one host while the rest arrive.
type slowKernel struct {
	*rec
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (k *slowKernel) RouteLocal(h mapping.EID, dev string) error {
	k.once.Do(func() {
		close(k.entered)
		<-k.release
	})
	return nil
}

// TestSightedRounds: sightings that come while a detection round runs
// (the data plane reports hosts one at a time) wait and go together in
// the next round: 200 arrivals behind a slow one cost two table
// rebuilds, not 200.
func TestSightedRounds(t *testing.T) {
	r := &batchRec{}
	k := &slowKernel{rec: &r.rec, entered: make(chan struct{}), release: make(chan struct{})}
	m := newBulkManager(r, k)
	ss := bulkSightings(201)
	m.Sighted(ss[0])
	<-k.entered // the first round holds the manager
	for _, x := range ss[1:] {
		m.Sighted(x)
	}
	close(k.release)
	deadline := time.Now().Add(5 * time.Second)
	for len(hostStates(m)) < 201 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for { // the drain goroutine ends once nothing waits
		m.sightMu.Lock()
		busy := m.draining
		m.sightMu.Unlock()
		if !busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.hosts) != 201 {
		t.Fatalf("%d of 201 hosts detected", len(m.hosts))
	}
	if r.rebuilds > 2 || r.batches > 2 {
		t.Errorf("201 sightings, 200 of them during a round, took %d rebuilds in %d batches; want at most 2", r.rebuilds, r.batches)
	}
}
