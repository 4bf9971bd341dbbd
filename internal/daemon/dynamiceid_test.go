package daemon

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
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
