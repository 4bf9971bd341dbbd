package mapserver

// Attacks on the Map-Server from issue 12 (findings 2, 3, 10 and the
// Map-Server items of 11). Each test performs the attack and checks that
// it fails; each one fails on the code before the fix.

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

var (
	spoofed = netip.MustParseAddrPort("203.0.113.66:4342") // the attacker's chosen source
	victim  = netip.MustParseAddr("198.18.0.99")           // a host the attacker wants flooded
)

// sentTo counts the messages in msgs addressed to a.
func sentTo(msgs []lisptest.Sent, a netip.Addr) int {
	n := 0
	for _, m := range msgs {
		if m.To.Addr() == a {
			n++
		}
	}
	return n
}

// Finding 2: a Map-Register captured while the VM was in dc1, replayed from
// any address after it moved to dc2, moved it back and drew a Map-Notify
// to the spoofed source.
func TestAttackRegisterReplayMovesVMBack(t *testing.T) {
	f := newMobilityFixture(t)
	f.regVM(xtrA, dc1Key, 100, "192.0.2.31", withSite(0xA, 1)) // captured
	f.regVM(xtrB, dc2Key, 7, "192.0.2.32", withSite(0xB, 2))   // the VM moved
	f.timers.Take()
	out := f.regVM(spoofed, dc1Key, 100, "192.0.2.31", withSite(0xA, 1)) // the replay
	if len(out) != 0 {
		t.Errorf("the replay drew %d messages to the spoofed source", len(out))
	}
	if v := f.vmView("dc2"); v == nil {
		t.Fatal("the replay moved the VM back to dc1")
	}
	if f.counter("registers_rejected", "nonce-not-increasing") != 1 {
		t.Error("replay not counted")
	}
	if msgs := f.timers.Take(); len(msgs) != 0 {
		t.Errorf("the replay made the Map-Server send %d Map-Notifies", len(msgs))
	}
}

// Finding 10: the replay table was keyed by xTR-ID alone, so a site that
// registers its own prefix with another site's xTR-ID and a huge nonce
// locked that xTR out.
func TestAttackSiteLocksOutOtherSitesXTR(t *testing.T) {
	f := newFixture(t)
	recsB := []wire.EIDRecord{record(dc2, "192.0.2.12")}
	if len(f.register(etr2, 0, wire.AuthHMACSHA256, []byte("dc2key"), 10, recsB, withXTR(9))) != 1 {
		t.Fatal("dc2's xTR not registered")
	}
	// dc1, a tenant with its own key, sends dc2's xTR-ID with nonce 2^64-1.
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1<<64-1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(9))
	if len(f.register(etr2, 0, wire.AuthHMACSHA256, []byte("dc2key"), 11, recsB, withXTR(9))) != 1 {
		t.Error("dc2's xTR locked out by dc1")
	}
}

// Finding 10: the pub/sub association was keyed by xTR-ID alone, so a site
// that registered with another site's xTR-ID made the Map-Server sign that
// xTR's Map-Notifies with its own key (which the xTR cannot verify, and
// the attacker can forge).
func TestAttackSiteMakesMSSignWithItsKey(t *testing.T) {
	f := newFixture(t)
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 10, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(9))
	f.timers.Take()
	f.s.HandleMapRequest(subscription("198.51.100.20", 100), &lisptest.Sender{})
	acks := f.timers.Take()
	if len(acks) != 1 {
		t.Fatalf("%d subscription Map-Notifies, want 1", len(acks))
	}
	if wire.Verify(acks[0].B, []byte("dc2key"), wire.AuthOptions{}) != nil {
		t.Error("dc2's xTR got a Map-Notify not signed with dc2's key")
	}
	if wire.Verify(acks[0].B, secret, wire.AuthOptions{}) == nil {
		t.Error("the Map-Notify to dc2's xTR is signed with dc1's key")
	}
}

// Finding 10: a site sharing a dynamic-EID range withdrew the other site's
// registration of a host by sending that site's xTR-ID with record TTL 0.
func TestAttackSiteWithdrawsOtherSitesHost(t *testing.T) {
	f := newMobilityFixture(t)
	withdraw := func(m *wire.MapRegister) { m.UseTTL = true; m.Records[0].TTL = 0 }
	f.regVM(xtrB, dc2Key, 1, "192.0.2.32", withSite(0xB, 2))
	f.regVM(xtrA, dc1Key, 1, "192.0.2.31", withSite(0xB, 2), withdraw)
	if v := f.vmView("dc2"); v == nil {
		t.Fatal("dc1 withdrew dc2's host")
	}
}

// Finding 3: anyone knowing an xTR-ID subscribed with a victim's address as
// ITR-RLOC: 1000 requests gave the victim 1000 subscription Map-Notifies
// and their retransmissions (6000 in all), and publications after.
func TestAttackSubscriptionAmplification(t *testing.T) {
	f := newFixture(t)
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 10, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1), proxy)
	f.timers.Take()
	var replies lisptest.Sender
	for i := range 1000 {
		host := netip.MustParseAddr("2001:db8:1::").As16()
		host[14], host[15] = byte(i>>8), byte(i)
		req := subscription(netip.AddrFrom16(host).String(), uint64(1000+i))
		m := req.Msg.(*wire.MapRequest)
		m.ITRRLOCs = []wire.Address{wire.AddrFromIP(victim)}
		req.ECM.IP.Src, req.Src, req.ReplyTo = victim, netip.AddrPortFrom(victim, 4342), netip.AddrPortFrom(victim, 4342)
		f.s.HandleMapRequest(req, &replies)
	}
	notifies := sentTo(f.timers.Take(), victim)
	for range 120 {
		f.clk.Advance(time.Second)
		f.s.Tick()
		notifies += sentTo(f.timers.Take(), victim)
	}
	// A change of the mapping publishes to every subscriber.
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 2, []wire.EIDRecord{record(host, "192.0.2.13")}, withXTR(1))
	notifies += sentTo(f.timers.Take(), victim)
	if notifies != 0 || len(f.s.Subscriptions()) != 0 {
		t.Errorf("spoofed subscriptions: %d Map-Notifies to the victim, %d subscriptions", notifies, len(f.s.Subscriptions()))
	}
	// What is left is one plain Map-Reply per request, no bigger than it
	// (the per-destination limit of finding 7 bounds those).
	if n := sentTo(replies.All(), victim); n > 1000 {
		t.Errorf("%d Map-Replies to the victim for 1000 requests", n)
	}
	if f.counter("subscriptions_rejected", "source-not-registered") != 1000 {
		t.Errorf("refusals counted: %d", f.counter("subscriptions_rejected", "source-not-registered"))
	}
}

// Finding 3: a request with a larger nonce overwrote a subscriber's
// ITR-RLOCs, taking its publications.
func TestAttackSubscriptionHijackByLargerNonce(t *testing.T) {
	f := newFixture(t)
	f.subscribeDC1()
	req := subscription("198.51.100.20", 5000)
	req.Msg.(*wire.MapRequest).ITRRLOCs = []wire.Address{wire.AddrFromIP(victim)}
	req.ECM.IP.Src = victim
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	subs := f.s.Subscriptions()
	if len(subs) != 1 || len(subs[0].ITRRLOCs) != 1 || subs[0].ITRRLOCs[0] != itr {
		t.Fatalf("subscription after the hijack: %+v", subs)
	}
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 2, []wire.EIDRecord{record(host, "192.0.2.13")}, withXTR(1))
	pub := f.timers.Take()
	if sentTo(pub, victim) != 0 || sentTo(pub, itr) != 1 {
		t.Errorf("publication went to %+v, want the subscriber only", pub)
	}
}

// Finding 3: a request with nonce 2^64-2 locked the xTR out of its own
// subscription (every later nonce is smaller).
func TestAttackSubscriptionLockOut(t *testing.T) {
	f := newFixture(t)
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 10, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1))
	req := subscription("198.51.100.20", 1<<64-2)
	req.Msg.(*wire.MapRequest).ITRRLOCs = []wire.Address{wire.AddrFromIP(victim)}
	req.ECM.IP.Src = victim
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	f.s.HandleMapRequest(subscription("198.51.100.20", 100), &lisptest.Sender{})
	subs := f.s.Subscriptions()
	if len(subs) != 1 || subs[0].Nonce != "0x64" || subs[0].ITRRLOCs[0] != itr {
		t.Errorf("the xTR's own subscription after the lock-out attempt: %+v", subs)
	}
}

// Finding 3: an unsubscription from anyone removed the subscription.
func TestAttackUnsubscribeByStranger(t *testing.T) {
	f := newFixture(t)
	f.subscribeDC1()
	req := subscription("198.51.100.20", 5000)
	req.Msg.(*wire.MapRequest).ITRRLOCs = []wire.Address{{}}
	req.ECM.IP.Src, req.Src = spoofed.Addr(), spoofed
	f.s.HandleMapRequest(req, &lisptest.Sender{})
	if len(f.s.Subscriptions()) != 1 {
		t.Fatal("a stranger unsubscribed the xTR")
	}
	if sentTo(f.timers.Take(), spoofed.Addr()) != 0 {
		t.Error("the stranger got an answer")
	}
}

// Finding 3: once a subscription ended, replaying its request (captured
// on the path, nonce and ITR-RLOC unchanged) brought it back.
func TestAttackReplayedSubscriptionAfterUnsubscribe(t *testing.T) {
	f := newFixture(t)
	f.subscribeDC1() // nonce 100
	un := subscription("198.51.100.20", 101)
	un.Msg.(*wire.MapRequest).ITRRLOCs = []wire.Address{{}}
	f.s.HandleMapRequest(un, &lisptest.Sender{})
	if len(f.s.Subscriptions()) != 0 {
		t.Fatal("unsubscription by the owner refused")
	}
	f.s.HandleMapRequest(subscription("198.51.100.20", 100), &lisptest.Sender{})
	if n := len(f.s.Subscriptions()); n != 0 {
		t.Errorf("the replayed subscription request came back: %d subscriptions", n)
	}
	f.s.HandleMapRequest(subscription("198.51.100.20", 102), &lisptest.Sender{})
	if n := len(f.s.Subscriptions()); n != 1 {
		t.Errorf("a new subscription with a larger nonce refused: %d subscriptions", n)
	}
}

// Finding 3: failed retransmissions never dropped a subscriber, so dead
// ones stayed forever and every change was sent to them again.
func TestSubscriberDroppedAfterGiveUp(t *testing.T) {
	f := newFixture(t)
	f.subscribeDC1() // the subscription's Map-Notify is never acknowledged
	for range 100 {
		f.clk.Advance(time.Second)
		f.s.Tick()
	}
	if n := len(f.s.Subscriptions()); n != 0 {
		t.Fatalf("%d subscriptions left after their Map-Notify was never acknowledged", n)
	}
	if f.counter("subscriptions_dropped", "unacknowledged") != 1 {
		t.Error("drop not counted")
	}
}

// Finding 11: a Map-Server without a Map-Resolver answered RLOC-probes that
// came in ECMs (RFC 9301 §5.8: they are for an xTR, never the mapping
// system).
func TestProbeInECMDropped(t *testing.T) {
	f := newFixture(t)
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1), proxy)
	req := mapRequest(mapping.HostEID(0, netip.MustParseAddr("198.51.100.9")), 5)
	req.Msg.(*wire.MapRequest).Probe = true
	var out lisptest.Sender
	if why := f.s.HandleMapRequest(req, &out); why != control.DropProbeToMappingSystem || len(out.All()) != 0 {
		t.Errorf("RLOC-probe in an ECM: %v, %d answers", why, len(out.All()))
	}
}

// Finding 11: after a reload changed a site's key, the pending Map-Notify
// was retransmitted signed with the old key, which the xTR no longer has.
func TestReloadResignsPendingNotifies(t *testing.T) {
	f := newFixture(t)
	f.subscribeDC1()
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 2, []wire.EIDRecord{record(host, "192.0.2.13")}, withXTR(1))
	f.timers.Take() // the publication, not acknowledged yet
	sites := testSites()
	sites[1].Keys[0].Secret = []byte("rotated")
	f.s.Reload(sites, map[string]bool{"dc2": true})
	f.clk.Advance(4 * time.Second)
	f.s.Tick()
	re := f.timers.Take()
	if len(re) == 0 {
		t.Fatal("nothing retransmitted")
	}
	for _, m := range re {
		if wire.Verify(m.B, []byte("rotated"), wire.AuthOptions{}) != nil {
			t.Error("retransmission after the key rotation not signed with the new key")
		}
	}
}
