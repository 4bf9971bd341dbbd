package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/osnet"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

// nopHosts stands for the xTR and the kernel under a dynamic-EID manager.
type nopHosts struct{}

func (nopHosts) AddHost(mapping.EID, []mapping.Locator) bool { return true }
func (nopHosts) RemoveHost(mapping.EID, bool) bool           { return true }
func (nopHosts) SetAway(mapping.Mapping, time.Duration)      {}
func (nopHosts) ClearAway(mapping.EID)                       {}
func (nopHosts) RouteLocal(mapping.EID, string) error        { return nil }
func (nopHosts) RouteAway(mapping.EID) error                 { return nil }
func (nopHosts) Unroute(mapping.EID) error                   { return nil }
func (nopHosts) Probe(string, netip.Addr) error              { return nil }

// The notify group's drops and claim outcomes reach the metrics operators
// read: every reason its own label, deferred claims their own counter;
// the configured key and peers reach the group.
func TestNotifyGroupCounters(t *testing.T) {
	d := &Daemon{stats: stats.NewRegistry(), log: slog.New(slog.DiscardHandler), now: time.Now}
	gc := newGroupCounters(d)
	from := netip.MustParseAddr("198.51.100.7")
	for _, why := range dynamiceid.GroupDrops {
		gc.dropped("vms", why, from)
	}
	gc.dropped("vms", dynamiceid.DropMalformed, from)
	for _, why := range dynamiceid.GroupDrops {
		if n := lisptest.Counter(t, d.stats, "mobility.notify_group_dropped{reason="+why+"}"); n != 1 {
			t.Errorf("notify_group_dropped{reason=%s} = %d, want 1", why, n)
		}
	}
	if n := lisptest.Counter(t, d.stats, "mobility.notify_group_malformed"); n != 1 {
		t.Errorf("notify_group_malformed = %d, want 1", n)
	}

	ours := []mapping.Locator{{Addr: netip.MustParseAddr("198.18.3.2")}}
	theirs := []mapping.Locator{{Addr: netip.MustParseAddr("198.18.6.2")}}
	mgr := dynamiceid.New(dynamiceid.Options{Ranges: []dynamiceid.Range{{Name: "vms",
		EID: mapping.NewEID(0, netip.MustParsePrefix("203.0.113.8/29")), Interface: "lan0", Locators: ours,
		MaxAdopted: 1, AdoptRate: 10}}, XTR: nopHosts{}, Kernel: nopHosts{}})
	h := func(last byte) mapping.EID { return mapping.HostEID(0, netip.AddrFrom4([4]byte{203, 0, 113, last})) }
	claim := func(host mapping.EID, locs []mapping.Locator) { gc.claimed("vms", host, from, mgr.Claimed(host, locs)) }
	claim(h(10), ours)   // adopted
	claim(h(11), ours)   // over the cap
	claim(h(10), theirs) // another site: deferred
	claim(h(99), ours)   // outside the range
	for key, want := range map[string]uint64{
		"mobility.notify_group_received":                      4,
		"mobility.notify_group_deferred":                      1,
		"mobility.notify_group_dropped{reason=adopt-cap}":     1,
		"mobility.notify_group_dropped{reason=outside-range}": 1,
		"mobility.notify_group_dropped{reason=adopt-rate}":    0,
		"mobility.notify_group_dropped{reason=bad-signature}": 1,
	} {
		if n := lisptest.Counter(t, d.stats, key); n != want {
			t.Errorf("%s = %d, want %d", key, n, want)
		}
	}

	o := groupOptions(&config.DynamicEID{GroupKey: &config.Key{ID: 4, Algorithm: wire.AuthHMACSHA1, Secret: []byte("k")},
		GroupPeers: []netip.Addr{from}}, d)
	if o.Key.ID != 4 || o.Key.Algorithm != wire.AuthHMACSHA1 || string(o.Key.Secret) != "k" ||
		len(o.Peers) != 1 || o.Peers[0] != netip.PrefixFrom(from, 32) {
		t.Errorf("group options %+v", o)
	}
}

// TestDynamicEIDFilters: GET /v1/dynamic-eid selects ranges by family and
// instance ID (`lispctl show dynamic-eid --family --instance-id`); a bad
// value is a 400.
func TestDynamicEIDFilters(t *testing.T) {
	yaml := `control: {addresses: [127.0.90.57], port: 0}
xtr:
  itr: true
  etr: true
  eid-interfaces: [lo]
  database:
    - eid-prefix: 198.51.100.0/24
      locators: [{address: 127.0.90.57}]
    - {eid-prefix: 198.51.100.0/24, instance-id: 1000, locators: [{address: 127.0.90.57}]}
  vrfs: [{instance-id: 1000, name: vrf1000, table: 1000, interfaces: [lo]}]
  dynamic-eids:
    - {name: v4, prefix: 198.51.100.128/25, interface: lo}
    - {name: v6, prefix: "2001:db8:d::/120", interface: lo, locators: [{address: 127.0.90.57}]}
    - {name: t1000, prefix: 198.51.100.128/25, instance-id: 1000, interface: lo}
`
	n := runNodeWithRanges(t, yaml)
	c := adminapi.NewClient(n.sock)
	names := func(q adminapi.DynamicEIDQuery) []string {
		t.Helper()
		rs, err := c.DynamicEIDsMatching(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	iid := func(v uint32) *uint32 { return &v }
	for _, c := range []struct {
		q    adminapi.DynamicEIDQuery
		want []string
	}{
		{adminapi.DynamicEIDQuery{}, []string{"t1000", "v4", "v6"}},
		{adminapi.DynamicEIDQuery{Family: adminapi.FamilyIPv4}, []string{"t1000", "v4"}},
		{adminapi.DynamicEIDQuery{Family: adminapi.FamilyIPv6}, []string{"v6"}},
		{adminapi.DynamicEIDQuery{InstanceID: iid(0)}, []string{"v4", "v6"}},
		{adminapi.DynamicEIDQuery{InstanceID: iid(1000), Family: adminapi.FamilyIPv4}, []string{"t1000"}},
		{adminapi.DynamicEIDQuery{InstanceID: iid(7)}, nil},
	} {
		if got := names(c.q); !slices.Equal(got, c.want) {
			t.Errorf("%+v: %v, want %v", c.q, got, c.want)
		}
	}
	_, err := c.DynamicEIDsMatching(context.Background(), adminapi.DynamicEIDQuery{Family: "ipx"})
	var ae *adminapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("family ipx: %v, want a 400", err)
	}
}

// runNodeWithRanges runs yaml's xTR with its dynamic-eids section's
// manager but no sockets (they need root): the daemon starts without the
// section, then gets the manager.
func runNodeWithRanges(t *testing.T, yaml string) *node {
	t.Helper()
	without, _, _ := strings.Cut(yaml, "  dynamic-eids:")
	return runNodeWith(t, without, Options{DataPlane: xtr.NopDataPlane{}}, func(n *node) {
		n.cfg = n.load(t, yaml)
		xo, err := xtrOptions(n.cfg)
		if err != nil {
			t.Fatal(err)
		}
		k := &hostKernel{routes: map[uint32]*osnet.HostRoutes{}}
		n.dyn = &dynamicEIDs{kernel: k, groups: map[string]*dynamiceid.Group{}, mgr: dynamiceid.New(dynamiceid.Options{
			Ranges: dynamicRanges(n.cfg.XTR, xo.Database), XTR: n.xtr, Kernel: k, Now: n.now})}
	})
}
