package control

import (
	"net/netip"
	"sync"
)

// TokenBucket is a token bucket refilled at a rate of tokens per second up
// to a burst; the zero value is full on first use.
type TokenBucket struct {
	tokens float64
	last   int64 // unix nanoseconds of the last Take; 0: never taken
}

// Take spends one token at now (unix nanoseconds) if there is one.
func (b *TokenBucket) Take(now int64, rate float64, burst int) bool {
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

// Buckets is one token bucket per address, at most max of them. When full,
// the address used least recently gives its bucket up: a flood of spoofed
// addresses then evicts itself, while an address in steady use keeps its
// bucket — and its deficit — instead of every address starting afresh.
// The buckets live in one slice allocated up front, so Allow allocates
// nothing but the map's own growth. Safe for concurrent use.
type Buckets struct {
	mu    sync.Mutex
	rate  float64
	burst int
	index map[netip.Addr]int32
	slots []bucketSlot // an LRU list through prev/next; slots[head] is the most recent
	head  int32
	tail  int32
}

type bucketSlot struct {
	addr       netip.Addr
	b          TokenBucket
	prev, next int32 // -1: none
}

// NewBuckets returns buckets of rate tokens per second and burst for up to
// n addresses (at least one).
func NewBuckets(rate float64, burst, n int) *Buckets {
	n = max(n, 1)
	return &Buckets{rate: rate, burst: burst, index: make(map[netip.Addr]int32, min(n, 1024)),
		slots: make([]bucketSlot, 0, n), head: -1, tail: -1}
}

// Allow takes a token from a's bucket at now (unix nanoseconds).
func (l *Buckets) Allow(a netip.Addr, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := l.index[a]
	switch {
	case ok:
		l.unlink(i)
	case len(l.slots) < cap(l.slots):
		i = int32(len(l.slots))
		l.slots = append(l.slots, bucketSlot{addr: a})
		l.index[a] = i
	default:
		i = l.tail
		l.unlink(i)
		delete(l.index, l.slots[i].addr)
		l.slots[i] = bucketSlot{addr: a}
		l.index[a] = i
	}
	l.pushFront(i)
	return l.slots[i].b.Take(now, l.rate, l.burst)
}

// Len is the number of addresses that have a bucket.
func (l *Buckets) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.index)
}

func (l *Buckets) unlink(i int32) {
	s := &l.slots[i]
	if s.prev >= 0 {
		l.slots[s.prev].next = s.next
	} else if l.head == i {
		l.head = s.next
	}
	if s.next >= 0 {
		l.slots[s.next].prev = s.prev
	} else if l.tail == i {
		l.tail = s.prev
	}
	s.prev, s.next = -1, -1
}

func (l *Buckets) pushFront(i int32) {
	s := &l.slots[i]
	s.prev, s.next = -1, l.head
	if l.head >= 0 {
		l.slots[l.head].prev = i
	}
	l.head = i
	if l.tail < 0 {
		l.tail = i
	}
}
