//go:build linux

package kernel

import (
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/internal/stats"
)

// SlowMapUpdate is the delay from a Map-Reply to its entry in the BPF
// map-cache above which an update is counted slow (issue #13: within
// 1 ms).
const SlowMapUpdate = time.Millisecond

// latencies keeps the delays of the latest map-cache updates, from the
// control-plane message that brought the mapping to the BPF map written,
// for their median and 99th percentile in show dataplane.
type latencies struct {
	mu         sync.Mutex
	ring       [1024]time.Duration
	n          int // recorded in all
	total      *stats.Counter
	slow       *stats.Counter
	scratchBuf []time.Duration
}

func newLatencies(r *stats.Registry) *latencies {
	c := func(name, help string) *stats.Counter {
		return r.Counter(stats.Desc{Subsystem: "dataplane_kernel", Name: name, Help: help})
	}
	return &latencies{
		total: c("map_updates", "Map-cache entries the kernel data path wrote for a mapping the control plane just learnt (Map-Reply, Map-Notify, publication)."),
		slow:  c("map_updates_slow", "Of those, the ones written more than 1 ms after the message that brought them was handled."),
	}
}

func (l *latencies) add(d time.Duration) {
	l.total.Inc()
	if d > SlowMapUpdate {
		l.slow.Inc()
	}
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = d
	l.n++
	l.mu.Unlock()
}

// quantiles are the median, 99th percentile and maximum of the latest
// updates, and how many updates were recorded in all.
func (l *latencies) quantiles() (p50, p99, maxd time.Duration, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := min(l.n, len(l.ring))
	if k == 0 {
		return 0, 0, 0, 0
	}
	s := append(l.scratchBuf[:0], l.ring[:k]...)
	slices.Sort(s)
	l.scratchBuf = s
	return s[(k-1)/2], s[(k*99+99)/100-1], s[k-1], l.n
}

// RecordMapUpdate records that a mapping learnt d ago (the control
// plane's message handled) is now in the BPF map-cache.
func (p *Path) RecordMapUpdate(d time.Duration) { p.lat.add(d) }
