package lisptest

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds, failing the test with msg if it
// does not within timeout. Polling starts at a millisecond and backs off to
// 20 ms, so a fast condition costs little and a slow one little CPU.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, msg)
		}
		time.Sleep(wait)
		wait = min(2*wait, 20*time.Millisecond)
	}
}
