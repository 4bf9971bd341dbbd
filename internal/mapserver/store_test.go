package mapserver

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// fakeStore records what a Map-Server tells its store.
type fakeStore struct {
	mu      sync.Mutex
	changed []mapping.EID
	nonces  map[NonceKey]uint64
}

func (f *fakeStore) Changed(e mapping.EID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed = append(f.changed, e)
}

func (f *fakeStore) Nonce(k NonceKey, n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nonces == nil {
		f.nonces = map[NonceKey]uint64{}
	}
	f.nonces[k] = n
}

func (f *fakeStore) take() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.changed)
	f.changed = nil
	return n
}

func newStoreFixture(t *testing.T) (*fixture, *fakeStore) {
	f := newFixture(t)
	st := &fakeStore{}
	// mover shares dc1's prefix: a host moves between them.
	sites := append(testSites(), Site{Name: "mover", Keys: []Key{{ID: 0, Alg: wire.AuthHMACSHA256, Secret: []byte("mover-key")}},
		Prefixes: []SitePrefix{{EID: dc1, AcceptMoreSpecifics: true}}})
	f.s = New(sites, Options{Now: f.clk.Now, Sender: f.timers, Stats: f.reg, Store: st, Node: "a"})
	return f, st
}

// Only what others would answer differently reaches the store: a new
// registration, a changed locator set, an expiry; never a refresh.
func TestStoreWritesOnlyOnChange(t *testing.T) {
	f, st := newStoreFixture(t)
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(host, "192.0.2.11")}, withXTR(1))
	if n := st.take(); n != 1 {
		t.Fatalf("new registration: %d changes, want 1", n)
	}
	if st.nonces[NonceKey{Site: "dc1", XTRID: [16]byte{1}, KeyID: 0}] != 1 {
		t.Errorf("replay state of the new registration not shared: %v", st.nonces)
	}
	for i := range 10 {
		f.clk.Advance(time.Minute)
		f.register(etr1, 0, wire.AuthHMACSHA256, secret, uint64(2+i), []wire.EIDRecord{record(host, "192.0.2.11")}, withXTR(1))
		f.s.Tick()
	}
	if n := st.take(); n != 0 {
		t.Errorf("10 refreshes: %d changes, want 0", n)
	}
	if st.nonces[NonceKey{Site: "dc1", XTRID: [16]byte{1}, KeyID: 0}] != 1 {
		t.Error("a refresh wrote the replay state")
	}
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 20, []wire.EIDRecord{record(host, "192.0.2.11", "192.0.2.13")}, withXTR(1))
	if n := st.take(); n != 1 {
		t.Errorf("changed locators: %d changes, want 1", n)
	}
	l := f.s.LocalRecord(host)
	if !l.Held || l.Record.Site != "dc1" || len(l.Record.XTRs) != 1 || len(l.Record.XTRs[0].Locators) != 2 {
		t.Errorf("local record: %+v", l)
	}
	f.clk.Advance(4 * time.Minute)
	f.s.Tick()
	if n := st.take(); n != 1 || f.s.LocalRecord(host).Held {
		t.Errorf("expiry: %d changes, want 1, and no record", n)
	}
}

// Another node's Record of another site, written after this node's own,
// takes the prefix: the xTRs here are told with their site's key and the
// node answers with the new mapping; a Record of the same site merges.
func TestRemoteRecordMovesAndMerges(t *testing.T) {
	f, st := newStoreFixture(t)
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.20"))
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(host, "192.0.2.11")}, withXTR(1), proxy)
	l := f.s.LocalRecord(host)
	f.s.Written(host, l.Gen, 10)
	st.take()
	f.timers.Take()
	// Same site, another xTR, through node b: merged.
	same := Record{Site: "dc1", XTRs: []RecordXTR{{Source: etr2, XTRID: "02000000000000000000000000000000", SiteID: 7,
		Flags: flagXTRID | flagProxy, TTL: 1440, Locators: []RecordLocator{{Address: netip.MustParseAddr("192.0.2.12"), Priority: 1, Weight: 50, Flags: wire.LocatorReachable}}}}}
	f.s.ApplyRemote("b", host, &same, 11)
	if got := answerLocs(t, f, host); len(got) != 2 {
		t.Fatalf("merged answer: %v", got)
	}
	// Our xTR hears of the merged set (RFC 9301 §5.7); the other xTR is
	// told by its own node.
	if sent := f.timers.Take(); len(sent) != 1 || sent[0].To != etr1 {
		t.Errorf("merge: sent %v, want one Map-Notify to %v", sent, etr1)
	}
	f.s.ApplyRemote("b", host, nil, 12)
	if got := answerLocs(t, f, host); len(got) != 1 {
		t.Fatalf("after b's Record went: %v", got)
	}
	// Another site, newer: a move. The dc1 xTR is told, signed with dc1's key.
	other := Record{Site: "mover", XTRs: []RecordXTR{{Source: netip.MustParseAddrPort("203.0.113.5:4342"), TTL: 1440,
		Locators: []RecordLocator{{Address: netip.MustParseAddr("192.0.2.99"), Priority: 1, Weight: 50, Flags: wire.LocatorReachable}}}}}
	f.s.ApplyRemote("c", host, &other, 13)
	sent := f.timers.Take()
	if len(sent) != 1 || sent[0].To != etr1 {
		t.Fatalf("move: sent %v, want one Map-Notify to %v", sent, etr1)
	}
	if err := wire.Verify(sent[0].B, secret, wire.AuthOptions{}); err != nil {
		t.Error(err)
	}
	if f.s.LocalRecord(host).Held || st.take() != 1 {
		t.Error("the displaced registration was not dropped and deleted from the store")
	}
	// Forwarded to dc2's ETR now (no proxy bit).
	var out lisptest.Sender
	f.s.HandleMapRequest(mapRequest(host, 5), &out)
	if msgs := out.Take(); len(msgs) != 1 || msgs[0].To.Addr() != netip.MustParseAddr("203.0.113.5") {
		t.Errorf("request after the move went to %v", msgs)
	}
}

func answerLocs(t *testing.T, f *fixture, e mapping.EID) []wire.Locator {
	t.Helper()
	var out lisptest.Sender
	f.s.HandleMapRequest(mapRequest(e, 5), &out)
	msgs := out.Take()
	if len(msgs) != 1 {
		t.Fatalf("%d answers", len(msgs))
	}
	return decodeReply(t, msgs[0]).Records[0].Locators
}
