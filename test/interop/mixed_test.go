package interop

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/tshark"
)

// xaDatabase is site A's database on a lispd xa: its two uplinks' RLOCs.
func xaDatabase(second string, firstPriority int) string {
	loc := `[{address: 198.18.2.2, priority: ` + strconv.Itoa(firstPriority) + `}, {address: ` + second + `}]`
	return `    - {eid-prefix: 198.51.100.0/24, locators: ` + loc + `}
    - {eid-prefix: "2001:db8:a::/64", locators: ` + loc + `}
`
}

const xaMapServer = `{address: 198.18.1.2, key-id: 0, algorithm: hmac-sha-1-96, secret: ` + keyA + `}`

// TestMixedXTRs: a lispd xTR (site A) and an OOR xTR (site B) on a lispd
// mapping system. Traffic both ways, IPv4 and IPv6 EIDs; each side's RLOC
// probing marks down a locator of the other that stops answering; an RLOC
// change on either side reaches the other by SMR (OOR's encoding on
// receipt, lispd's new one on sending), and so does a priority change on
// lispd's side; traffic follows.
func TestMixedXTRs(t *testing.T) {
	n := newNetwork(t)
	n.startLispd("ms", lispdMS)
	n.startLispd("px", lispdPxTR)
	n.startLispd("xa", lispdXTR(xaMapServer, xaDatabase("198.18.12.2", 1)))
	xb := n.startOOR("xb", oorXTR(keyB, mappings(ifaceLocators("up1", "up2"), "203.0.113.0/24", "2001:db8:b::/64")...))
	n.waitPrefixes("ms", 4)
	n.waitRegistered("xa")

	for _, c := range []struct{ from, to string }{
		{"ha", "203.0.113.10"}, {"hb", "198.51.100.10"}, {"ha", "2001:db8:b::10"}, {"hb", "2001:db8:a::10"},
	} {
		n.waitPing(c.from, c.to, 10*time.Second)
	}
	if err := n.lab.TCPEcho("hb", "ha", netip.MustParseAddrPort("203.0.113.10:47000")); err != nil {
		t.Error(err)
	}
	if err := n.lab.TCPEcho("ha", "hb", netip.MustParseAddrPort("[2001:db8:a::10]:47001")); err != nil {
		t.Error(err)
	}
	n.expect("IPv4 EIDs from lispd to OOR", "lisp-data && ip.src == 198.18.2.2 && ip.dst in {198.18.3.2, 198.18.4.2} && ip.dst == 203.0.113.10")
	n.expect("IPv6 EIDs from OOR to lispd", "lisp-data && ipv6.dst == 2001:db8:a::10")
	n.expect("lispd's RLOC-probe answered by OOR with the probed locator marked",
		"lisp.type == 2 && lisp.mrep.flags.probe == 1 && ip.src == 198.18.3.2 && lisp.loc.flags.probe == 1")
	n.expect("OOR's RLOC-probe answered by lispd with the probed locator marked",
		"lisp.type == 2 && lisp.mrep.flags.probe == 1 && ip.dst == 198.18.3.2 && lisp.loc.flags.probe == 1")

	t.Run("probing", func(t *testing.T) {
		// lispd marks OOR's unreachable locator down...
		n.setIface("core", "to-xb2", false)
		start := time.Now()
		n.waitProbeState("xa", "198.18.4.2", "down", 10*time.Second)
		t.Logf("lispd marked OOR's locator down after %v", time.Since(start).Round(time.Millisecond))
		n.setIface("core", "to-xb2", true)
		n.waitProbeState("xa", "198.18.4.2", "up", 10*time.Second)
		// ...and OOR lispd's.
		n.setIface("core", "to-xa1", false)
		start = time.Now()
		if err := xb.WaitLog(context.Background(), 15*time.Second, "No Map-Reply Probe received for locator 198.18.12.2"); err != nil {
			t.Error(err)
		} else {
			t.Logf("OOR marked lispd's locator down after %v", time.Since(start).Round(time.Millisecond))
		}
		n.setIface("core", "to-xa1", true)
	})

	t.Run("SMR from OOR", func(t *testing.T) {
		// OOR follows its interface: 198.18.4.2 becomes 198.18.4.3; it
		// re-registers and SMRs the ITRs it talks to (OOR's encoding).
		n.waitPing("ha", "203.0.113.10", 5*time.Second)
		before := n.counter("xa", "itr", "smrs_received")
		start := time.Now()
		if err := n.lab.Renumber("xb", "up2", "198.18.4.2/24", "198.18.4.3/24"); err != nil {
			t.Fatal(err)
		}
		lisptest.Eventually(t, 20*time.Second, func() bool {
			locs, _ := n.cached("xa", "203.0.113.0/24")
			return slices.Contains(locs, "198.18.4.3") && !slices.Contains(locs, "198.18.4.2")
		}, "lispd's map-cache holds OOR's new RLOC")
		t.Logf("OOR's RLOC change reached lispd's map-cache after %v (OOR waits a few seconds before it re-registers)",
			time.Since(start).Round(time.Millisecond))
		if got := n.counter("xa", "itr", "smrs_received"); got == before {
			t.Error("lispd counted no SMR from OOR")
		}
		if got := n.counter("xa", "itr", "smrs_unmatched"); got != 0 {
			t.Errorf("lispd found %d SMRs that refresh nothing", got)
		}
		n.waitPing("ha", "203.0.113.10", 5*time.Second)
		n.waitPing("hb", "198.51.100.10", 5*time.Second)
		n.smrRound("OOR to lispd", "198.18.4.3", "{198.18.2.2, 198.18.12.2}")
	})

	t.Run("SMR from lispd", func(t *testing.T) {
		// lispd's second RLOC moves to 198.18.12.3 (a reload); OOR must
		// refresh by SMR, then the old address goes.
		n.waitPing("hb", "198.51.100.10", 5*time.Second)
		n.addAddr("xa", "up1", "198.18.12.3/24")
		n.reloadLispd("xa", lispdXTR(xaMapServer, xaDatabase("198.18.12.3", 1)))
		start := time.Now()
		n.waitCaptured("Map-Reply to OOR with lispd's new RLOC",
			"lisp.type == 2 && ip.dst == 198.18.3.2 && lisp.loc.locator == 198.18.12.3", 15*time.Second)
		t.Logf("lispd's RLOC change reached OOR within %v", time.Since(start).Round(time.Millisecond))
		if strings.Contains(n.oor["xb"].Log(), "not locally configured") {
			t.Error("OOR refused lispd's SMR: not locally configured")
		}
		n.delAddr("xa", "up1", "198.18.12.2/24")
		n.waitPing("hb", "198.51.100.10", 5*time.Second)
		n.smrRound("lispd to OOR", "198.18.12.3", "{198.18.3.2, 198.18.4.2}")

		// A database change: the first RLOC's priority drops to 2.
		time.Sleep(3 * time.Second) // RFC 9301 §6.1: one SMR per 3 s per ITR
		n.reloadLispd("xa", lispdXTR(xaMapServer, xaDatabase("198.18.12.3", 2)))
		n.waitCaptured("Map-Reply to OOR with lispd's new priorities",
			"lisp.type == 2 && ip.dst == 198.18.3.2 && lisp.loc.priority == 2", 15*time.Second)
		n.waitPing("hb", "198.51.100.10", 5*time.Second)
	})
}

// waitProbeState waits until a lispd ITR's RLOC probing shows rloc in state.
func (n *network) waitProbeState(node, rloc, state string, limit time.Duration) {
	n.t.Helper()
	lisptest.Eventually(n.t, limit, func() bool {
		rl, err := query(n, node, (*adminapi.Client).RLOCProbing)
		if err != nil {
			return false
		}
		for _, r := range rl {
			if r.Address.String() == rloc && r.State == state {
				return true
			}
		}
		return false
	}, node+" sees "+rloc+" "+state)
}

func (n *network) setIface(node, iface string, up bool) {
	n.t.Helper()
	if err := n.lab.SetIface(node, iface, up); err != nil {
		n.t.Fatal(err)
	}
}

func (n *network) addAddr(node, iface, prefix string) {
	n.t.Helper()
	if err := n.lab.AddAddr(node, iface, prefix); err != nil {
		n.t.Fatal(err)
	}
}

func (n *network) delAddr(node, iface, prefix string) {
	n.t.Helper()
	if err := n.lab.DelAddr(node, iface, prefix); err != nil {
		n.t.Fatal(err)
	}
}

// waitCaptured waits until the running capture holds a frame matching a
// display filter. The capture reaches its file a second or so late.
func (n *network) waitCaptured(what, filter string, limit time.Duration) {
	n.t.Helper()
	if n.capture == nil {
		n.t.Skip("no capture: cannot see ", what)
	}
	lisptest.Eventually(n.t, limit, func() bool {
		c, err := tshark.Count(n.capture.Path, filter)
		return err == nil && c > 0
	}, what)
}

// smrRound logs, from the complete capture, how long the last SMR to the
// ITR (its addresses as a display-filter set) before the first Map-Reply
// to it naming the new locator took to bring that reply: one SMR round
// (SMR, SMR-invoked Map-Request through the mapping system, Map-Reply).
func (n *network) smrRound(what, newLocator, itr string) {
	n.reports = append(n.reports, func() { n.logSMRRound(what, newLocator, itr) })
}

func (n *network) logSMRRound(what, newLocator, itr string) {
	first := func(filter string) float64 {
		lines, err := tshark.Fields(n.capture.Path, filter, "frame.time_epoch")
		if err != nil {
			n.t.Error(err)
		}
		if len(lines) == 0 {
			return 0
		}
		v, _ := strconv.ParseFloat(lines[0], 64)
		return v
	}
	reply := first("lisp.type == 2 && lisp.mrep.flags.probe == 0 && ip.dst in " + itr + " && lisp.loc.locator == " + newLocator)
	if reply == 0 {
		n.t.Errorf("%s: no Map-Reply to %s with %s captured", what, itr, newLocator)
		return
	}
	// The last SMR to the ITR before that reply.
	lines, err := tshark.Fields(n.capture.Path, "lisp.mreq.flags.smr == 1 && ip.dst in "+itr, "frame.time_epoch")
	if err != nil {
		n.t.Error(err)
	}
	smr := 0.0
	for _, l := range lines {
		if v, _ := strconv.ParseFloat(l, 64); v <= reply && v > smr {
			smr = v
		}
	}
	if smr == 0 {
		n.t.Errorf("%s: no SMR to %s before the Map-Reply with %s", what, itr, newLocator)
		return
	}
	n.t.Logf("SMR round %s: %.1f ms from the SMR to the Map-Reply with %s", what, (reply-smr)*1000, newLocator)
}
