package mapserver

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// legacyFixture: dc1 and dc2 share the VM range and opt out of the nonce
// check, as sites of Open Overlay Router 1.3 or OpenDaylight xTRs must.
func legacyFixture(t *testing.T) *fixture {
	f := newFixture(t)
	sites := mobilitySites()
	sites[0].LegacyNonces, sites[1].LegacyNonces = true, true
	f.s = New(sites, Options{Now: f.clk.Now, Sender: f.timers, Stats: f.reg})
	return f
}

// Open Overlay Router 1.3 registers every 60 s with a random nonce and no
// xTR-ID: every one is accepted and acknowledged.
func TestOORRandomNoncesAccepted(t *testing.T) {
	f := legacyFixture(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 180 { // three hours
		out := f.regVM(xtrA, dc1Key, rng.Uint64(), "192.0.2.31")
		if len(out) != 1 || out[0].To != xtrA {
			t.Fatalf("Map-Register %d with a random nonce: %d answers", i, len(out))
		}
		f.clk.Advance(time.Minute)
		f.s.Tick()
	}
	if f.vmView("dc1") == nil {
		t.Error("registration lost")
	}
}

// OpenDaylight sends nonce 0, and so the same bytes, every time: each is a
// refresh of its own registration and is acknowledged, also after its
// registration lapsed.
func TestODLZeroNonceAccepted(t *testing.T) {
	f := legacyFixture(t)
	for i := range 10 {
		if out := f.regVM(xtrA, dc1Key, 0, "192.0.2.31"); len(out) != 1 {
			t.Fatalf("Map-Register %d with nonce 0: %d answers", i, len(out))
		}
		f.clk.Advance(time.Minute)
		f.s.Tick()
	}
	f.clk.Advance(10 * time.Minute) // the xTR was away; its registration lapsed
	f.s.Tick()
	if out := f.regVM(xtrA, dc1Key, 0, "192.0.2.31"); len(out) != 1 || f.vmView("dc1") == nil {
		t.Fatal("nonce-0 Map-Register after a lapse not accepted")
	}
}

// Finding 2 for an opted-out site: a captured Map-Register replayed after
// the VM moved neither moves it back nor draws a Map-Notify to the spoofed
// source.
func TestAttackLegacyReplayMovesVMBack(t *testing.T) {
	f := legacyFixture(t)
	f.regVM(xtrA, dc1Key, 0x1234, "192.0.2.31") // captured
	f.regVM(xtrB, dc2Key, 0x9876, "192.0.2.32") // the VM moved
	f.timers.Take()
	if out := f.regVM(spoofed, dc1Key, 0x1234, "192.0.2.31"); len(out) != 0 {
		t.Errorf("the replay drew %d messages", len(out))
	}
	if f.vmView("dc2") == nil {
		t.Fatal("the replay moved the VM back")
	}
	// Nor from the address of the xTR it was captured from.
	if out := f.regVM(xtrA, dc1Key, 0x1234, "192.0.2.31"); len(out) != 0 || f.vmView("dc2") == nil {
		t.Fatal("the replay from the original address moved the VM back")
	}
	if f.counter("registers_rejected", "replayed-duplicate") != 2 {
		t.Error("replays not counted")
	}
	// Nor does an older registration of the same xTR bring back locators
	// it has since changed.
	f.regVM(xtrB, dc2Key, 0x5555, "192.0.2.35")
	f.regVM(xtrB, dc2Key, 0x9876, "192.0.2.32")
	if v := f.vmView("dc2"); v == nil || len(v.Locators) != 1 || v.Locators[0].Address.String() != "192.0.2.35" {
		t.Errorf("a replay reinstalled old locators: %+v", v)
	}
}

// A duplicate is accepted only from where the original came from: from
// elsewhere it would add an xTR (or redirect its Map-Notifies) and draw a
// Map-Notify to a spoofed source.
func TestLegacyDuplicateOnlyFromTheOriginalSource(t *testing.T) {
	f := legacyFixture(t)
	f.regVM(xtrA, dc1Key, 0x1234, "192.0.2.31")
	if out := f.regVM(spoofed, dc1Key, 0x1234, "192.0.2.31"); len(out) != 0 {
		t.Errorf("a duplicate from another source was answered: %+v", out)
	}
	if v := f.vmView("dc1"); v == nil || len(v.RegisteredBy) != 1 {
		t.Errorf("a duplicate from another source registered an xTR: %+v", v)
	}
	if out := f.regVM(xtrA, dc1Key, 0x1234, "192.0.2.31"); len(out) != 1 {
		t.Error("a retransmission from the xTR itself was not answered")
	}
}

// An xTR without xTR-ID is known by its address; replaying its message
// from another address must not count as a new xTR with a fresh nonce.
func TestAttackReplayWithoutXTRIDFromOtherSource(t *testing.T) {
	f := newMobilityFixture(t)
	f.regVM(xtrA, dc1Key, 100, "192.0.2.31")
	f.regVM(xtrB, dc2Key, 200, "192.0.2.32")
	f.timers.Take()
	if out := f.regVM(spoofed, dc1Key, 100, "192.0.2.31"); len(out) != 0 || f.vmView("dc2") == nil {
		t.Error("a replay of an xTR without xTR-ID from another address moved the VM back")
	}
}

// lispd xTRs start their nonce at the clock: after a restart of the xTR
// its Map-Registers are still above the last one the Map-Server saw.
func TestXTRRestartStillRegisters(t *testing.T) {
	f := newFixture(t)
	recs := []wire.EIDRecord{record(dc1, "192.0.2.11")}
	start := uint64(f.clk.Now().UnixNano())
	for i := range uint64(5) {
		if len(f.register(etr1, 0, wire.AuthHMACSHA256, secret, start+i, recs, withXTR(1))) != 1 {
			t.Fatal("registration refused")
		}
		f.clk.Advance(time.Minute)
	}
	restarted := uint64(f.clk.Now().UnixNano())
	if len(f.register(netip.MustParseAddrPort("192.0.2.11:4342"), 0, wire.AuthHMACSHA256, secret, restarted, recs, withXTR(1))) != 1 {
		t.Error("the restarted xTR's Map-Register refused")
	}
}
