package control

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/wire"
)

// DefaultGuardDestinations bounds the per-destination buckets of a
// ReplyGuard; beyond it the least recently answered destination is
// forgotten.
const DefaultGuardDestinations = 1 << 16

// ReplyGuard keeps lispd from being a reflector. A Map-Request names where
// its answer goes (the ITR-RLOCs), and a Map-Register's source address can
// be spoofed, so every Map-Reply, Map-Notify and Info-Reply passes here before it
// leaves: it must go to a global unicast address (RFC 9301 §5.4: never a
// broadcast or multicast RLOC), and each
// destination gets a token bucket (§5.4: Map-Replies MUST be rate limited)
// so that a flood of requests naming one victim costs the victim at most a
// burst and then the bucket's rate. Other messages (Map-Registers,
// forwarded ECMs, probes) go to configured or registered peers and pass.
// Whether an ITR-RLOC is one of our own addresses (Ours) is for the
// dispatcher to decide, which knows who asked: an xTR asking its own
// co-located Map-Resolver legitimately names its own address.
//
// Loopback is a destination only for what came over loopback: a request
// that reached one of our loopback addresses was sent by this host, and
// such a sender can reach loopback anyway; one that came from the network
// never gets an answer sent to 127.0.0.0/8 or ::1. So lispd daemons on one
// host (the tests, a lab on loopback) answer each other on loopback while
// no off-host sender can aim answers at this host's loopback services.
type ReplyGuard struct {
	perDest *Buckets
	own     atomic.Pointer[map[netip.Addr]struct{}]
	now     func() time.Time
	dropped func(DropReason)
}

// NewReplyGuard makes a guard allowing each destination burst messages and
// then rate per second. now is the clock; dropped, if not nil, counts every
// message the guard stops.
func NewReplyGuard(rate float64, burst int, now func() time.Time, dropped func(DropReason)) *ReplyGuard {
	if now == nil {
		now = time.Now
	}
	g := &ReplyGuard{perDest: NewBuckets(rate, burst, DefaultGuardDestinations), now: now, dropped: dropped}
	g.SetOwn(nil)
	return g
}

// SetOwn replaces the set of our own addresses (Ours). Loopback addresses
// in it are ignored: daemons on one host share 127.0.0.0/8 and ::1.
func (g *ReplyGuard) SetOwn(addrs []netip.Addr) {
	m := make(map[netip.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		if a = a.Unmap(); a.IsValid() && !a.IsLoopback() && !a.IsUnspecified() {
			m[a] = struct{}{}
		}
	}
	g.own.Store(&m)
}

// Destination tells whether dst may receive an answer sent from local,
// the address the request reached (invalid or unspecified for messages a
// timer sends): Handled, or why not. It does not spend a token.
func (g *ReplyGuard) Destination(dst, local netip.Addr) DropReason {
	dst, local = dst.Unmap(), local.Unmap()
	if !unicast(dst) {
		return DropReplyNotGlobalUnicast
	}
	if dst.IsLoopback() && local.IsValid() && !local.IsUnspecified() && !local.IsLoopback() {
		return DropReplyNotGlobalUnicast
	}
	return Handled
}

// Ours reports whether a is one of our own non-loopback addresses.
func (g *ReplyGuard) Ours(a netip.Addr) bool {
	_, ours := (*g.own.Load())[a.Unmap()]
	return ours
}

// unicast reports whether a is an address an answer may go to at all: not
// unspecified, multicast, link-local, the limited broadcast, "this
// network" (0.0.0.0/8) or the reserved 240.0.0.0/4. Loopback is decided by
// the caller.
func unicast(a netip.Addr) bool {
	if !a.IsValid() || a.IsLoopback() {
		return a.IsValid()
	}
	if !a.IsGlobalUnicast() {
		return false
	}
	if a.Is4() {
		b := a.As4()
		return b[0] != 0 && b[0] < 240
	}
	return true
}

// Check decides whether message b may be sent from src to dst, spending a
// token of dst's bucket if b is a Map-Reply or Map-Notify; other messages
// always pass. A refusal is counted.
func (g *ReplyGuard) Check(b []byte, src netip.Addr, dst netip.Addr) DropReason {
	if len(b) == 0 {
		return Handled
	}
	if !isAnswer(b) {
		return Handled
	}
	reason := g.Destination(dst, src)
	if reason == Handled && !g.perDest.Allow(dst.Unmap(), g.now().UnixNano()) {
		reason = DropRateLimitDestination
	}
	if reason != Handled && g.dropped != nil {
		g.dropped(reason)
	}
	return reason
}

// isAnswer tells whether b is a message whose destination a request names
// or its (spoofable) source decides: a Map-Reply, a Map-Notify, an
// Info-Reply.
func isAnswer(b []byte) bool {
	switch wire.MessageType(b[0] >> 4) {
	case wire.TypeMapReply, wire.TypeMapNotify:
		return true
	case wire.TypeInfo:
		return b[0]&0x08 != 0 // R: Info-Reply
	}
	return false
}

// ReplyDroppedError is why Transport.Send did not send a message: its
// ReplyGuard refused it (and counted it).
type ReplyDroppedError struct {
	Reason DropReason
	To     netip.AddrPort
}

func (e *ReplyDroppedError) Error() string {
	return "not sent to " + e.To.String() + ": " + e.Reason.String()
}
