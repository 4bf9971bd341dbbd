package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	n := 0
	if err := Until(context.Background(), time.Second, 5*time.Millisecond, func() bool { n++; return n == 3 }); err != nil || n != 3 {
		t.Errorf("Poll: %v after %d looks, want nil after 3", err, n)
	}
	err := Until(context.Background(), 30*time.Millisecond, 5*time.Millisecond, func() bool { return false })
	if !errors.Is(err, ErrTimedOut) {
		t.Errorf("Poll of a false condition: %v, want ErrTimedOut", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Until(ctx, time.Minute, time.Second, func() bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("Poll with an ended context: %v, want context.Canceled", err)
	}
	// The last look at the limit sees a condition that came true meanwhile.
	start := time.Now()
	if err := Until(context.Background(), 20*time.Millisecond, time.Hour, func() bool { return time.Since(start) >= 20*time.Millisecond }); err != nil {
		t.Errorf("Poll: %v, want the last look to succeed", err)
	}
}
