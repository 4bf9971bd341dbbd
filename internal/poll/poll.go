// Package poll waits for a condition by looking again and again: the one
// wait loop of the lab, the demo, the benches and the test kit.
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimedOut is what Until's error wraps when its time limit passes.
var ErrTimedOut = errors.New("timed out")

// Until calls cond until it holds, for at most limit. It looks again after
// a millisecond, then backs off to every look per every, so a condition
// that comes true soon is seen soon and a slow one costs little. It
// returns ctx's error if ctx ends first, and an error wrapping
// ErrTimedOut if limit passes; cond gets one last look at the limit.
func Until(ctx context.Context, limit, every time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	wait := min(time.Millisecond, every)
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w after %v", ErrTimedOut, limit)
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, every)
	}
	return nil
}
