package dynamiceid

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

var (
	groupAddr = netip.MustParseAddr("233.252.0.1")
	groupKey  = GroupKey{ID: 3, Algorithm: wire.AuthHMACSHA256, Secret: []byte("vms-group-key")}
	peerA     = netip.MustParseAddr("203.0.113.1")
	lanHost   = netip.MustParseAddr("203.0.113.66") // a VM on the LAN: on-link, but not a configured peer
	offLink   = netip.MustParseAddr("192.0.2.9")
)

// testGroups are a sender and a receiver sharing the key, the receiver
// taking claims from peerA only.
func testGroups(t *testing.T) (send, recv *Group, clk *lisptest.Clock) {
	t.Helper()
	clk = lisptest.NewClock(base)
	send = newGroup(groupAddr, GroupOptions{Key: groupKey, Now: clk.Now})
	recv = newGroup(groupAddr, GroupOptions{Key: groupKey, Now: clk.Now,
		Peers: []netip.Prefix{netip.PrefixFrom(peerA, 32)}})
	return send, recv, clk
}

// forge encodes a claim for d1 the way an attacker on the LAN may: with
// the algorithm, key ID, secret and nonce it likes.
func forge(t *testing.T, alg wire.AuthAlg, keyID uint8, secret []byte, nonce uint64) []byte {
	t.Helper()
	m := mapping.Mapping{EID: d1h, TTL: 1, Authoritative: true, Locators: dc1}
	n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, KeyID: keyID, Algorithm: alg,
		Records: []wire.EIDRecord{m.Record()}}}
	b, err := wire.EncodeSigned(n, secret, wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGroupRefusesForgedClaims is issue #12 finding 5 at the group: a host
// of the LAN sends claims to the group. Only a claim signed with the group
// key, fresh, never seen, from a peer on the link is taken.
func TestGroupRefusesForgedClaims(t *testing.T) {
	send, recv, clk := testGroups(t)
	now := uint64(clk.Now().UnixNano())
	good, err := send.encode(d1h, dc1)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-1] ^= 1 // the last locator's address
	for _, c := range []struct {
		name string
		b    []byte
		from netip.Addr
		ttl  int
		want string
	}{
		{"unsigned", forge(t, wire.AuthNone, groupKey.ID, nil, now), peerA, 255, DropUnsigned},
		{"signed with another secret", forge(t, groupKey.Algorithm, groupKey.ID, []byte("guess"), now), peerA, 255, DropBadSignature},
		{"altered after signing", tampered, peerA, 255, DropBadSignature},
		{"another key ID", forge(t, groupKey.Algorithm, groupKey.ID+1, groupKey.Secret, now), peerA, 255, DropWrongKey},
		{"another algorithm", forge(t, wire.AuthHMACSHA1, groupKey.ID, groupKey.Secret, now), peerA, 255, DropWrongKey},
		{"routed (TTL 254)", good, peerA, 254, DropTTL},
		{"TTL 1", good, peerA, 1, DropTTL},
		{"TTL unknown", good, peerA, -1, DropTTL},
		{"a LAN host, not a peer", good, lanHost, 255, DropNotAPeer},
		{"off-link", good, offLink, 255, DropNotAPeer},
		{"stale", forge(t, groupKey.Algorithm, groupKey.ID, groupKey.Secret, now-uint64(2*time.Minute)), peerA, 255, DropStale},
		{"from the future", forge(t, groupKey.Algorithm, groupKey.ID, groupKey.Secret, now+uint64(2*time.Minute)), peerA, 255, DropStale},
		{"not a Map-Notify", []byte{0x10, 0, 0, 1}, peerA, 255, DropMalformed},
		{"the real claim", good, peerA, 255, ""},
		{"the real claim replayed", good, peerA, 255, DropReplay},
	} {
		nt, why := recv.accept(c.b, c.from, c.ttl)
		if why != c.want || (why == "") != (nt != nil) {
			t.Errorf("%s: dropped for %q, want %q", c.name, why, c.want)
		}
	}
	// Two claims sent at once by two xTRs both count.
	b1, _ := send.encode(d1h, dc1)
	b2, _ := newGroup(groupAddr, GroupOptions{Key: groupKey, Now: clk.Now}).encode(d1h, dc1)
	for _, b := range [][]byte{b1, b2} {
		if _, why := recv.accept(b, peerA, 255); why != "" {
			t.Errorf("a fresh claim dropped: %s", why)
		}
	}
}

// TestGroupSeenBounded: the replay memory stays bounded; old nonces go
// once the window has passed, and a flood within it is refused.
func TestGroupSeenBounded(t *testing.T) {
	send, recv, clk := testGroups(t)
	for range groupSeenMax {
		b, _ := send.encode(d1h, dc1)
		if _, why := recv.accept(b, peerA, 255); why != "" {
			t.Fatalf("claim dropped: %s", why)
		}
	}
	b, _ := send.encode(d1h, dc1)
	if _, why := recv.accept(b, peerA, 255); why != DropFlood {
		t.Errorf("claim beyond the memory within the window: %q, want %q", why, DropFlood)
	}
	clk.Advance(groupFreshness + time.Second)
	b, _ = send.encode(d1h, dc1)
	if _, why := recv.accept(b, peerA, 255); why != "" {
		t.Errorf("claim after the window: %q", why)
	}
	if len(recv.seen) != 1 {
		t.Errorf("%d nonces remembered, want 1", len(recv.seen))
	}
}
