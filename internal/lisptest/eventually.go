package lisptest

import (
	"context"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/poll"
)

// Eventually polls cond until it holds, failing the test with msg if it
// does not within timeout. Polling (poll.Until) starts at a millisecond and
// backs off to 20 ms, so a fast condition costs little and a slow one
// little CPU.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	if err := poll.Until(context.Background(), timeout, 20*time.Millisecond, cond); err != nil {
		t.Fatalf("%v: %s", err, msg)
	}
}
