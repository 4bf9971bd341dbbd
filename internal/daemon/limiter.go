package daemon

import (
	"net/netip"
	"sync"

	"github.com/lispd/lispd/internal/control"
)

// bucket is a token bucket refilled at rate tokens per second up to burst.
type bucket struct {
	tokens float64
	last   int64 // unix nanoseconds
}

func (b *bucket) take(now int64, rate float64, burst int) bool {
	if b.last == 0 {
		b.tokens = float64(burst)
	} else if el := now - b.last; el > 0 {
		b.tokens = min(float64(burst), b.tokens+rate*float64(el)/1e9)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limiter admits control messages of one class: per source address and in
// total. Classes are separate so that a flood of Map-Requests cannot use up
// the budget of Map-Registers.
type limiter struct {
	mu                    sync.Mutex
	perSource, global     float64
	perSourceBurst, gBurs int
	sources               map[netip.Addr]*bucket
	all                   bucket
	maxSources            int
}

func newLimiter(perSource float64, perSourceBurst int, global float64, globalBurst int) *limiter {
	return &limiter{perSource: perSource, perSourceBurst: perSourceBurst, global: global, gBurs: globalBurst,
		sources: map[netip.Addr]*bucket{}, maxSources: 1 << 16}
}

// allow tells whether a message from src may be processed now: Handled,
// or the limit it is over. The
// per-source table is bounded: when full it starts afresh, which at worst
// gives every source a new burst — memory stays bounded under a spoofed flood.
func (l *limiter) allow(src netip.Addr, now int64) control.DropReason {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.sources[src]
	if b == nil {
		if len(l.sources) >= l.maxSources {
			clear(l.sources)
		}
		b = &bucket{}
		l.sources[src] = b
	}
	if !b.take(now, l.perSource, l.perSourceBurst) {
		return control.DropRateLimitSource
	}
	if !l.all.take(now, l.global, l.gBurs) {
		return control.DropRateLimitGlobal
	}
	return control.Handled
}
