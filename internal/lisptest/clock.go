package lisptest

import (
	"sync/atomic"
	"time"
)

// Clock is a settable clock for the Now option of roles and engines; it
// moves only when told. It is safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
