package lisptest

import (
	"context"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lab"
)

// Eventually polls cond until it holds, failing the test with msg if it
// does not within timeout. Polling (lab.Poll) starts at a millisecond and
// backs off to 20 ms, so a fast condition costs little and a slow one
// little CPU.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	if err := lab.Poll(context.Background(), timeout, 20*time.Millisecond, cond); err != nil {
		t.Fatalf("%v: %s", err, msg)
	}
}
