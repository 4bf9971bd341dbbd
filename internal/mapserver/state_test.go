package mapserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

// restart builds a new Map-Server on f's clock and registry, as a
// restarted lispd does, with its state in dir.
func (f *fixture) restart(dir string, o Options) {
	f.t.Helper()
	o.Now, o.Sender, o.Stats = f.clk.Now, f.timers, f.reg
	f.s = New(testSites(), o)
	if err := f.s.OpenState(dir); err != nil {
		f.t.Fatal(err)
	}
}

// Finding 2: the last nonce lived only in memory, so a Map-Register
// captured before a restart of the Map-Server was accepted after it.
func TestAttackReplayAfterMapServerRestart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t)
	f.restart(dir, Options{})
	recs := []wire.EIDRecord{record(dc1, "192.0.2.11")}
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 5, recs, withXTR(1)) // captured
	f.s.Close()
	f.restart(dir, Options{})
	if out := f.register(spoofed, 0, wire.AuthHMACSHA256, secret, 5, recs, withXTR(1)); len(out) != 0 || f.s.Registrations() != 0 {
		t.Fatal("a Map-Register captured before the restart was accepted after it")
	}
	if len(f.register(etr1, 0, wire.AuthHMACSHA256, secret, 6, recs, withXTR(1))) != 1 {
		t.Fatal("the xTR's next Map-Register refused after the restart")
	}
	// Saved while running too (a crash does not call Close): within a
	// second of the change.
	f.register(etr1, 0, wire.AuthHMACSHA256, secret, 7, recs, withXTR(1))
	f.clk.Advance(2 * time.Second)
	f.s.Tick()
	f.restart(dir, Options{})
	if len(f.register(spoofed, 0, wire.AuthHMACSHA256, secret, 7, recs, withXTR(1))) != 0 {
		t.Error("the state saved by Tick did not hold nonce 7")
	}
}

func TestStateDirectoryErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(testSites(), Options{})
	err := s.OpenState(filepath.Join(file, "state"))
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("a state directory under a file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = s.OpenState(dir)
	if err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Errorf("a corrupt state file: %v", err)
	}
}

// Finding 10: the replay table grew without bound and was shared by all
// sites; one site's many xTR-IDs push out only its own xTRs.
func TestXTRTableBoundedPerSite(t *testing.T) {
	f := newFixture(t)
	f.s = New(testSites(), Options{Now: f.clk.Now, Sender: f.timers, Stats: f.reg, MaxXTRsPerSite: 8})
	recsB := []wire.EIDRecord{record(dc2, "192.0.2.12")}
	f.register(etr2, 0, wire.AuthHMACSHA256, []byte("dc2key"), 50, recsB, withXTR(200))
	for i := range 100 {
		f.clk.Advance(time.Millisecond)
		f.register(etr1, 0, wire.AuthHMACSHA256, secret, 1, []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(byte(i)))
	}
	if n := len(f.s.xtrs["dc1"].xtrs); n != 8 {
		t.Errorf("dc1 holds %d xTRs, want the limit 8", n)
	}
	if f.counter("xtrs_forgotten", "site-limit") != 92 {
		t.Errorf("forgotten: %d", f.counter("xtrs_forgotten", "site-limit"))
	}
	if len(f.register(spoofed, 0, wire.AuthHMACSHA256, []byte("dc2key"), 50, recsB, withXTR(200))) != 0 {
		t.Error("dc1's flood of xTR-IDs erased dc2's replay state")
	}
}

// Finding 3: nothing capped the subscriptions of one xTR.
func TestSubscriptionsCappedPerXTR(t *testing.T) {
	f := newFixture(t)
	f.s = New(testSites(), Options{Now: f.clk.Now, Sender: f.timers, Stats: f.reg, MaxSubscriptionsPerXTR: 3})
	f.register(sub9, 0, wire.AuthHMACSHA256, []byte("dc2key"), 1, []wire.EIDRecord{record(dc2, "192.0.2.12")}, withXTR(9))
	for i := range 5 {
		f.s.HandleMapRequest(subscription(fmt.Sprintf("198.51.100.%d", 20+i), uint64(100+i)), &lisptest.Sender{})
	}
	if n := len(f.s.Subscriptions()); n != 3 || f.counter("subscriptions_rejected", "xtr-limit") != 2 {
		t.Errorf("%d subscriptions, %d refused", n, f.counter("subscriptions_rejected", "xtr-limit"))
	}
}

// Finding 3: lasting subscriptions never ended; now they end when their
// xTR has not registered for registration-timeout + subscription-ttl.
func TestSubscriptionEndsWhenXTRStopsRegistering(t *testing.T) {
	f := newFixture(t)
	f.subscribeDC1()
	f.ackSent([]byte("dc2key"))
	for range 17 {
		f.clk.Advance(time.Minute)
		f.s.Tick()
		f.register(etr1, 0, wire.AuthHMACSHA256, secret, uint64(f.clk.Now().Unix()), []wire.EIDRecord{record(dc1, "192.0.2.11")}, withXTR(1))
		f.ackSent([]byte("dc2key"))
	}
	if len(f.s.Subscriptions()) != 1 {
		t.Fatal("subscription ended before registration-timeout + subscription-ttl")
	}
	f.clk.Advance(2 * time.Minute)
	f.s.Tick()
	if len(f.s.Subscriptions()) != 0 || f.counter("subscriptions_dropped", "xtr-not-registering") != 1 {
		t.Error("the subscription of an xTR that stopped registering lasts")
	}
}
