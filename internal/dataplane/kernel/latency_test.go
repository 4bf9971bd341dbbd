//go:build linux

package kernel

import (
	"testing"
	"time"

	"github.com/lispd/lispd/internal/stats"
)

func TestLatencyQuantiles(t *testing.T) {
	r := stats.NewRegistry()
	l := newLatencies(r)
	if p50, p99, mx, n := l.quantiles(); p50 != 0 || p99 != 0 || mx != 0 || n != 0 {
		t.Fatalf("empty: %v %v %v %d", p50, p99, mx, n)
	}
	// 1..100 µs, then 2 ms once: slow, and the maximum.
	for i := 1; i <= 100; i++ {
		l.add(time.Duration(i) * time.Microsecond)
	}
	l.add(2 * time.Millisecond)
	p50, p99, mx, n := l.quantiles()
	if n != 101 || p50 != 51*time.Microsecond || p99 != 100*time.Microsecond || mx != 2*time.Millisecond {
		t.Errorf("quantiles: p50 %v p99 %v max %v n %d, want 51µs 100µs 2ms 101", p50, p99, mx, n)
	}
	if l.total.Load() != 101 || l.slow.Load() != 1 {
		t.Errorf("counters: %d updates, %d slow; want 101, 1", l.total.Load(), l.slow.Load())
	}
	// The ring keeps the latest 1024.
	for range 2000 {
		l.add(time.Microsecond)
	}
	if p50, _, mx, n := l.quantiles(); p50 != time.Microsecond || mx != time.Microsecond || n != 2101 {
		t.Errorf("after 2000 more: p50 %v max %v n %d", p50, mx, n)
	}
}
