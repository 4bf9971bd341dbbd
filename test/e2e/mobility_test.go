package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/demo"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/lisptest"
)

// upMobility builds the demo network for a mobility test and removes it
// at the end, whatever happens.
func upMobility(t *testing.T, name string, m demo.Mobility) *demo.Network {
	t.Helper()
	lab.RequireRoot(t)
	n, err := demo.Up(context.Background(), name, lispdBin, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			n.Lab.LogProcs(t)
			for _, node := range []string{"xc", "dc1a", "dc1b", "dc2"} {
				t.Logf("%s counters: %v", node, n.Counters(node))
			}
		}
		if err := n.Down(); err != nil {
			t.Error(err)
		}
	})
	if err := n.StartLispd(); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitRegistered(15 * time.Second); err != nil {
		t.Fatal("registration:", err)
	}
	return n
}

// checkMoves holds a series to the bar, with room for a loaded CI
// machine on the times (the benchmark measures them). worst bounds the
// slowest move: with SMR only, an ITR may hold an SMR-invoked Map-Request
// back for up to 3 s (RFC 9301 §6.1), so only the median must stay low.
func checkMoves(t *testing.T, r *demo.MoveResult, moves int, worst time.Duration) {
	t.Helper()
	t.Logf("%s subscribe=%v: convergence %v, median %v, worst %v; lost %v; TCP %d bytes", r.Mode, r.Subscribe,
		r.Convergence, r.Median(), r.Worst(), r.Lost, r.TCPBytes)
	if len(r.Convergence) != moves {
		t.Fatalf("%d moves measured, want %d", len(r.Convergence), moves)
	}
	if r.TCPErr != nil {
		t.Errorf("the TCP connection did not survive: %v", r.TCPErr)
	}
	if r.TCPBytes < 100_000 {
		t.Errorf("only %d bytes echoed over TCP", r.TCPBytes)
	}
	if r.StaleErr != nil {
		t.Errorf("stale state after the moves: %v", r.StaleErr)
	}
	if r.Median() >= time.Second || r.Worst() >= worst {
		t.Errorf("convergence median %v, worst %v (limit %v)", r.Median(), r.Worst(), worst)
	}
	if r.LostPerMove() > 200 {
		t.Errorf("%.0f UDP packets lost per move", r.LostPerMove())
	}
	if r.Received < r.Sent/2 {
		t.Errorf("only %d of %d UDP packets arrived", r.Received, r.Sent)
	}
}

// TestMobilityAcrossSubnet: d1 moves to DC2's own subnet and back, four
// times, first with SMR only, then with publish/subscribe.
func TestMobilityAcrossSubnet(t *testing.T) {
	n := upMobility(t, "mobacross", demo.Mobility{Mode: dynamiceid.AcrossSubnet})
	r, err := n.MoveSeries(demo.MoveOptions{Moves: 4, Settle: 3500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkMoves(t, r, 4, 4*time.Second)
	if err := n.Reconfigure(demo.Mobility{Mode: dynamiceid.AcrossSubnet, Subscribe: true}); err != nil {
		t.Fatal(err)
	}
	r, err = n.MoveSeries(demo.MoveOptions{Moves: 4, Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	checkMoves(t, r, 4, time.Second)
}

// TestMobilityExtendedSubnet: DC1's subnet is stretched to DC2; d1 moves
// there and back four times.
func TestMobilityExtendedSubnet(t *testing.T) {
	n := upMobility(t, "mobext", demo.Mobility{Mode: dynamiceid.ExtendedSubnet, Subscribe: true})
	r, err := n.MoveSeries(demo.MoveOptions{Moves: 4, Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	checkMoves(t, r, 4, time.Second)
}

// TestMobilityHostGone: a VM that falls silent (shut down, unplugged) is
// probed, then unregistered by its xTRs after the range's timeout; the
// Map-Server drops it at once and the client's ITR stops caching it. Back
// on the network, its first packet registers it again.
func TestMobilityHostGone(t *testing.T) {
	const timeout = 3 * time.Second
	n := upMobility(t, "mobgone", demo.Mobility{Mode: dynamiceid.AcrossSubnet, Subscribe: true, HostTimeout: timeout})
	if err := n.Hello(); err != nil {
		t.Fatal(err)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return n.RegisteredBy() == "dc1" }, "d1 registered by DC1")
	// Probed while it answers: still registered after twice the timeout.
	time.Sleep(2 * timeout)
	if by := n.RegisteredBy(); by != "dc1" {
		t.Fatalf("a host answering ARP probes was unregistered (registered by %q)", by)
	}
	if err := n.Disconnect(); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	lisptest.Eventually(t, timeout+3*time.Second, func() bool { return n.RegisteredBy() == "" }, "d1 unregistered")
	t.Logf("unregistered %v after it went silent (timeout %v)", time.Since(gone).Round(10*time.Millisecond), timeout)
	for _, node := range []string{"dc1a", "dc1b"} {
		hosts, err := n.Hosts(node)
		if err != nil {
			t.Fatal(err)
		}
		if len(hosts) != 0 {
			t.Errorf("%s still lists %+v", node, hosts)
		}
	}
	if err := n.Reconnect(); err != nil {
		t.Fatal(err)
	}
	if err := n.Hello(); err != nil {
		t.Fatal(err)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return n.RegisteredBy() == "dc1" }, "d1 registered again")
}
