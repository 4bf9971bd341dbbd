package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// spoofedITR is the i-th of the attacker's outer sources.
func spoofedITR(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }

// smrsSent counts the SMRs among c's messages, by destination.
func smrsSent(t *testing.T, c *lisptest.Sender) map[netip.Addr]int {
	t.Helper()
	out := map[netip.Addr]int{}
	for _, m := range c.Take() {
		if r, ok := must(wire.Decode(m.B)).(*wire.MapRequest); ok && r.SMR {
			out[m.To.Addr()]++
		}
	}
	return out
}

func total(m map[netip.Addr]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// The attack on a pure ETR: 50,000 spoofed outer sources each send one
// packet (the data plane samples every one of them), then the database
// changes. The ETR remembers at most maxRecentITRs of them and sends at
// most the global budget of SMRs; the rest is counted.
func TestSpoofedSourcesBoundSMRsETR(t *testing.T) {
	clk, c, reg := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}, stats.NewRegistry()
	o := xtrOpts(clk, c, eidA, eidB)
	o.ITR, o.Stats = false, reg
	s := New(o)
	s.Tick()
	c.Take()
	const spoofed = 50_000
	for i := range spoofed {
		s.Decapsulated(spoofedITR(i), 0, netip.Addr{})
	}
	if n := s.recent.len(); n > maxRecentITRs {
		t.Errorf("%d recent ITRs remembered, want at most %d", n, maxRecentITRs)
	}
	if got := lisptest.Counter(t, reg, "etr.recent_itrs_forgotten"); got != spoofed-maxRecentITRs {
		t.Errorf("recent_itrs_forgotten %d, want %d", got, spoofed-maxRecentITRs)
	}
	clk.Advance(5 * time.Second)
	s.SetDatabase(entries(eidA, eidC))
	sent := smrsSent(t, c)
	if n := total(sent); n > smrBudgetBurst || n == 0 {
		t.Errorf("%d SMRs for one database change, want 1..%d", n, smrBudgetBurst)
	}
	// Two prefixes for each of the 4096 remembered ITRs: the budget ends it.
	if got := lisptest.Counter(t, reg, "etr.smrs_dropped{reason=budget}"); got != 2*maxRecentITRs-smrBudgetBurst {
		t.Errorf("smrs_dropped{budget} %d, want %d", got, 2*maxRecentITRs-smrBudgetBurst)
	}
	// The budget refills: a second later a change sends again.
	clk.Advance(4 * time.Second)
	s.SetDatabase(entries(eidA))
	if n := total(smrsSent(t, c)); n == 0 || n > smrBudgetBurst {
		t.Errorf("%d SMRs after the budget refilled", n)
	}
}

// The attack on an xTR that is an ITR too: the same flood, beside one real
// ITR whose site we cache. The real ITR gets its SMRs; of the spoofed
// sources, which no cached mapping lists, at most maxUnverifiedSMRTargets.
func TestSpoofedSourcesBoundSMRsXTR(t *testing.T) {
	clk, c, reg := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}, stats.NewRegistry()
	o := xtrOpts(clk, c, eidA, eidB)
	o.Stats = reg
	s := New(o)
	s.Tick()
	c.Take()
	askAndAnswer(t, s, c, rec("203.0.113.0/24", goodRLOC))
	c.Take()
	const spoofed = 50_000
	for i := range spoofed {
		s.Decapsulated(spoofedITR(i), 0, netip.Addr{})
		if i == spoofed/2 {
			s.Decapsulated(goodRLOC, 0, asked) // in the middle of the flood
		}
	}
	clk.Advance(5 * time.Second)
	s.SetDatabase(entries(eidA, eidC))
	sent := smrsSent(t, c)
	if sent[goodRLOC] != 2 {
		t.Errorf("the real ITR got %d SMRs, want one per prefix (2)", sent[goodRLOC])
	}
	if n := total(sent) - sent[goodRLOC]; n > 2*maxUnverifiedSMRTargets {
		t.Errorf("%d SMRs to spoofed sources, want at most %d", n, 2*maxUnverifiedSMRTargets)
	}
	if got := lisptest.Counter(t, reg, "etr.smrs_dropped{reason=not-a-cached-rloc}"); got == 0 {
		t.Error("ITRs skipped for no cached mapping not counted")
	}

	// A moved host's SMRs follow the same rule.
	clk.Advance(5 * time.Second)
	s.Decapsulated(goodRLOC, 0, asked)
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.5"))
	s.SetAway(mapping.Mapping{EID: host, Locators: []mapping.Locator{{Addr: netip.MustParseAddr("192.0.2.99"),
		Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}, time.Hour)
	sent = smrsSent(t, c)
	if sent[goodRLOC] != 1 || total(sent) > 1+maxUnverifiedSMRTargets {
		t.Errorf("moved host: %d SMRs to the real ITR, %d in all", sent[goodRLOC], total(sent))
	}
}
