// Package events is the daemon's one event bus: the roles publish what
// happens (registrations, moves, map-cache installs, locator up/down,
// SMRs, ...) as adminapi.Event values, and the admin API streams them to
// lispctl monitor and the web view.
//
// Publishing never blocks: each subscriber has a bounded queue, and when
// a reader falls behind its events are dropped and counted (the reader is
// told how many with an events-lost event), so a slow terminal or browser
// never holds up the control plane that publishes under its locks.
package events

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
)

// Defaults of NewBus.
const (
	DefaultHistory = 256 // recent events kept for a new subscriber
	DefaultQueue   = 256 // a subscriber's queue
)

// Bus fans events out to subscribers.
type Bus struct {
	now func() time.Time

	mu   sync.Mutex
	seq  uint64
	ring []adminapi.Event // the last len(ring) events, oldest at next
	next int
	full bool
	subs map[*Subscription]struct{}
	// nsubs mirrors len(subs) for Active, read without the lock.
	nsubs atomic.Int32

	published, lost, opened *stats.Counter
}

// NewBus returns a bus keeping history recent events, stamping them with
// now and counting into reg (lisp_events_published_total and
// lisp_events_lost_total).
func NewBus(now func() time.Time, reg *stats.Registry, history int) *Bus {
	if now == nil {
		now = time.Now
	}
	if history <= 0 {
		history = DefaultHistory
	}
	return &Bus{
		now:  now,
		ring: make([]adminapi.Event, history),
		subs: map[*Subscription]struct{}{},
		published: reg.Counter(stats.Desc{Subsystem: "events", Name: "published",
			Help: "Events published on the event bus (lispctl monitor, web view)."}),
		lost: reg.Counter(stats.Desc{Subsystem: "events", Name: "lost",
			Help: "Events a subscriber of the event stream lost because it read too slowly."}),
		opened: reg.Counter(stats.Desc{Subsystem: "events", Name: "subscriptions",
			Help: "Event streams opened (lispctl monitor, web view)."}),
	}
}

// Publish stamps e with the next sequence number (and the time, unless
// set) and hands it to every subscriber whose filter takes it, without
// waiting for any. A nil bus takes nothing, so roles need no check.
func (b *Bus) Publish(e adminapi.Event) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	b.ring[b.next] = e
	b.next++
	if b.next == len(b.ring) {
		b.next, b.full = 0, true
	}
	b.published.Inc()
	for s := range b.subs {
		s.offerLocked(e, b.lost)
	}
}

// Subscription is one reader's view of the bus.
type Subscription struct {
	q adminapi.EventQuery
	c chan adminapi.Event
	b *Bus

	// lost counts events dropped since the reader last saw an
	// events-lost event; guarded by b.mu.
	lost uint64
}

// Subscribe returns a subscription delivering the events q selects,
// the last q.History of them first, into a queue of queue events
// (DefaultQueue if 0). Close it when done.
func (b *Bus) Subscribe(q adminapi.EventQuery, queue int) *Subscription {
	if queue <= 0 {
		queue = DefaultQueue
	}
	s := &Subscription{q: q, c: make(chan adminapi.Event, queue), b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []adminapi.Event
	if b.full {
		past = append(past, b.ring[b.next:]...)
	}
	past = append(past, b.ring[:b.next]...)
	var sel []adminapi.Event
	for _, e := range past {
		if q.Selects(e.Type) {
			sel = append(sel, e)
		}
	}
	if len(sel) > q.History {
		sel = sel[len(sel)-q.History:]
	}
	for _, e := range sel {
		s.offerLocked(e, b.lost)
	}
	b.subs[s] = struct{}{}
	b.nsubs.Store(int32(len(b.subs)))
	b.opened.Inc()
	return s
}

// offerLocked queues e for s or counts it lost. Before the next event
// that fits after a loss, s gets an events-lost event with the count, so
// the reader knows its view has a hole.
func (s *Subscription) offerLocked(e adminapi.Event, lost *stats.Counter) {
	if !s.q.Selects(e.Type) {
		return
	}
	if s.lost > 0 {
		// Room for the notice and the event, or neither goes in.
		if cap(s.c)-len(s.c) < 2 {
			s.lost++
			lost.Inc()
			return
		}
		s.c <- adminapi.Event{Seq: e.Seq, Time: e.Time, Type: adminapi.EventLost, Count: s.lost}
		s.lost = 0
	}
	select {
	case s.c <- e:
	default:
		s.lost++
		lost.Inc()
	}
}

// C delivers the events.
func (s *Subscription) C() <-chan adminapi.Event { return s.c }

// Close ends the subscription; C is not closed (a publisher may hold it),
// the bus just stops feeding it.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.nsubs.Store(int32(len(s.b.subs)))
	s.b.mu.Unlock()
}

// Active reports, without locking, whether anyone reads the bus: a
// publisher on a hot path (a drop in a flood) skips events nobody reads.
func (b *Bus) Active() bool { return b != nil && b.nsubs.Load() > 0 }

// Subscribers is how many subscriptions are open.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// About publishes e about eid (its instance ID and prefix filled in). A
// nil bus takes nothing.
func (b *Bus) About(eid mapping.EID, e adminapi.Event) {
	if b == nil {
		return
	}
	e.InstanceID, e.EIDPrefix = eid.IID, eid.Prefix
	b.Publish(e)
}

// Locators lists the locators' addresses, as an event carries them.
func Locators(ls []mapping.Locator) []netip.Addr {
	out := make([]netip.Addr, len(ls))
	for i, l := range ls {
		out[i] = l.Addr
	}
	return out
}
