package daemon

import (
	"net/netip"
	"sync"

	"github.com/lispd/lispd/internal/control"
)

// maxLimitedSources bounds the per-source buckets of each class.
const maxLimitedSources = 1 << 16

// limiter admits control messages of one class: per source address and in
// total. Classes are separate so that a flood of Map-Requests cannot use up
// the budget of Map-Registers.
type limiter struct {
	sources *control.Buckets // bounded; the least recently seen source goes first

	mu     sync.Mutex // guards all
	all    control.TokenBucket
	global float64
	gBurst int
}

func newLimiter(perSource float64, perSourceBurst int, global float64, globalBurst int) *limiter {
	return &limiter{sources: control.NewBuckets(perSource, perSourceBurst, maxLimitedSources), global: global, gBurst: globalBurst}
}

// allow tells whether a message from src may be processed now: Handled,
// or the limit it is over. When the per-source table is full the source
// seen least recently loses its bucket: under a spoofed flood memory stays
// bounded and the flood evicts itself, while a busy real source keeps its
// bucket (and its deficit).
func (l *limiter) allow(src netip.Addr, now int64) control.DropReason {
	if !l.sources.Allow(src, now) {
		return control.DropRateLimitSource
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.all.Take(now, l.global, l.gBurst) {
		return control.DropRateLimitGlobal
	}
	return control.Handled
}
