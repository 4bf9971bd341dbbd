package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/demo"
	"github.com/lispd/lispd/internal/lab"
)

// TestMobilityBulk: fifty VMs on five hypervisors move from DC1 to DC2
// within half a second under 100 packets/s from c1 to each: every one is
// reached straight from DC2, and DC2's xTR registers them in batches
// (well under one Map-Register per VM), the Map-Server telling DC1 of them
// in batches too.
func TestMobilityBulk(t *testing.T) {
	lab.RequireRoot(t)
	const vms = 50
	b, err := demo.UpBulk(context.Background(), fmt.Sprintf("mobbulk%d", os.Getpid()), lispdBin,
		demo.BulkOptions{VMs: vms, Hypervisors: 5, Within: 500 * time.Millisecond, Subscribe: true, Out: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.LogProcs(t)
		}
		if err := b.Down(); err != nil {
			t.Error(err)
		}
	})
	r, err := b.Migrate(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p50, p99, worst := demo.Quantile(r.Switched, 0.5), demo.Quantile(r.Switched, 0.99), demo.Quantile(r.Switched, 1)
	t.Logf("%d VMs: switched p50 %v p99 %v max %v (reached p99 %v); lost per VM %.1f (%d of %d; before the moves the stream lost %.1f per VM a second); Map-Registers %d, Map-Notifies %d (moved %d); Map-Server CPU %v",
		r.VMs, p50, p99, worst, demo.Quantile(r.Reached, 0.99), r.LostPerVM(), r.Sent-r.Received, r.Sent, r.BaselineLost,
		r.MapRegisters, r.MapNotifies, r.MovedNotifies, r.MapServerCPU)
	// The goals (p99 1 s, 20 packets per VM) are scripts/bench mobility's
	// to measure: on a loaded machine the stream loses packets before
	// anything moves. Here: every VM reached straight from DC2 in the end.
	if worst >= 20*time.Second {
		t.Errorf("a VM never switched to DC2 (max %v)", worst)
	}
	// One Map-Register per VM would be 50, and 50 moved Map-Notifies:
	// batches take far fewer, even when a loaded xTR detects the VMs
	// over a few seconds.
	if r.MapRegisters == 0 || r.MapRegisters > vms*3/4 {
		t.Errorf("DC2 sent %d Map-Registers for %d VMs", r.MapRegisters, vms)
	}
	if r.MovedNotifies == 0 || r.MovedNotifies > vms*3/4 {
		t.Errorf("the Map-Server sent DC1 %d moved Map-Notifies for %d VMs", r.MovedNotifies, vms)
	}
	// Every move is in the Map-Server's move log (show site --moves).
	moves, err := adminapi.Query(context.Background(), b.Lab.SocketPath("ms"), 2*time.Second,
		func(c *adminapi.Client, ctx context.Context) ([]adminapi.SiteMove, error) {
			return c.SiteMoves(ctx, "dc2")
		})
	if err != nil {
		t.Fatal(err)
	}
	moved := map[string]bool{}
	for _, m := range moves {
		if m.FromSite == "dc1" && m.ToSite == "dc2" && m.By.String() == "198.18.4.2" {
			moved[m.EIDPrefix.String()] = true
		}
	}
	if len(moved) != vms {
		t.Errorf("the move log shows %d VMs moved from dc1 to dc2, want %d", len(moved), vms)
	}
}
