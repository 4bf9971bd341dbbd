// Package dataplane is the userspace LISP encapsulation and decapsulation
// engine of an xTR, PITR or PETR (RFC 9300).
//
// The engine reads IP packets from one TUN device per instance ID, looks
// the destination up in an immutable map-cache snapshot, picks an RLOC by a
// flow hash and hands the LISP-encapsulated packet (LISP header + inner
// packet) to the Underlay, which adds the outer IP and UDP headers. In the
// other direction it takes LISP packets from the Underlay, checks them and
// writes the inner packets to the TUN of their instance ID.
//
// All I/O sits behind the TUN and Underlay interfaces: the test doubles
// in dataplane/dptest (a TUN and an RLOC network in memory) connect
// engines so that ITR to ETR runs in a unit test without root; OpenTUN and
// OpenUnderlay (Linux) are the real thing.
//
// The control plane programs the engine through the Programmer interface
// and hears about misses and decapsulated traffic through ControlHooks.
//
// Packet buffers are laid out with fixed headroom: the inner packet starts
// at Headroom, the 8-byte LISP header sits just before it, and the
// underlay may build the outer IP and UDP headers in the bytes before that.
//
// # Design notes
//
// Map-cache: one bart.Fast table per instance ID behind an atomic pointer.
// Packet goroutines load the snapshot once per batch and never lock;
// Programmer calls build the next snapshot with bart's persistent
// (copy-on-write) insert and delete under one mutex. Entries are compiled
// when programmed into the usable locators (up, priority < 255, of a
// family with a local RLOC) of the best usable priority with cumulative
// weights, so choosing an RLOC is a hash modulo the total weight.
//
// Natively forwarding (negative entries natively-forward without a PETR,
// and no-action): the kernel routed the packet into the TUN, so writing it
// back into the same TUN loops unless policy routing sends packets
// arriving from the TUN to another table. The engine therefore does not
// guess: Config.Native names, per instance, a writer for such packets
// (the route-setup package may pass the TUN itself together with an
// "ip rule iif <tun> lookup <native table>"), and without one the packet
// is dropped and counted as no-petr.
//
// Too big after encapsulation: IPv6, and IPv4 with DF, get an ICMP
// packet-too-big / fragmentation-needed (rate-limited) carrying the largest
// inner size that fits; IPv4 without DF is split into equal fragments,
// each encapsulated (RFC 9300 §7.1, stateless), for the destination host
// to reassemble.
//
// Host mobility (dynamic EIDs): per instance, an immutable snapshot of the
// dynamic-EID ranges and the hosts already known in them, and one of the
// hosts that moved away, each behind an atomic pointer that stays nil
// while the feature is unused (one load and a nil check per batch or
// packet). A packet from the TUN whose source is in a range and not known
// raises HostSeen, rate-limited per worker and source. A packet the ETR
// decapsulates for an away host is handed back to the ITR path (its inner
// TTL decremented, as a router's would be) and leaves toward the host's
// new RLOC, which the control plane installs in the map-cache.
//
// Hooks run on their own goroutines fed by bounded queues (misses apart
// from traffic samples), so a slow control plane costs events (counted),
// never packet latency.
package dataplane

import (
	"net"
	"net/netip"
	"time"

	"github.com/lispd/lispd/internal/dataplane/underlay"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Buffer layout shared by the engine, its TUNs and its Underlay.
const (
	// Headroom is where the inner packet starts in every engine buffer.
	Headroom = 64
	// PayloadOffset is where the UDP payload (LISP header + inner packet)
	// starts: the offset the engine passes to Underlay.Send and to the
	// Underlay's ReceiveFuncs.
	PayloadOffset = Headroom - wire.DataHeaderLen
	// UnderlayHeadroom is the room an Underlay may assume before
	// PayloadOffset for its own headers (IPv6 + UDP).
	UnderlayHeadroom = underlay.Headroom

	// Overhead4 and Overhead6 are the bytes encapsulation adds with an
	// IPv4 or an IPv6 outer header: IP + UDP + LISP.
	Overhead4 = 20 + 8 + wire.DataHeaderLen
	Overhead6 = 40 + 8 + wire.DataHeaderLen

	// DefaultUnderlayMTU is the RLOC-side MTU assumed when none is set
	// (RFC 9300 §7.1 recommends L = 1500).
	DefaultUnderlayMTU = 1500
)

// AllInstances makes FlushMapCache flush every instance ID.
const AllInstances = ^uint32(0)

// TUN is one EID-side device (one per instance ID). It mirrors the batch
// API of wireguard-go's tun.Device: bufs[i][offset:] holds packet i.
// Write may be called from several goroutines at once and must not keep
// the buffers; it may use the capacity beyond each packet (GRO).
type TUN interface {
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	Write(bufs [][]byte, offset int) (int, error)
	BatchSize() int
	MTU() (int, error)
	Close() error
}

// readDropper is a TUN whose reads drop what does not fit the caller's
// buffers (the segments of a super-packet beyond them); DroppedOnRead
// returns how many since it was last asked, so that they are counted.
type readDropper interface{ DroppedOnRead() uint64 }

// Outer describes the outer IP and UDP headers of one LISP packet; it is
// declared in package underlay, beside the test doubles' underlay.
type Outer = underlay.Outer

// ReceiveFunc receives a batch of LISP packets (see underlay.ReceiveFunc).
type ReceiveFunc = underlay.ReceiveFunc

// Underlay is the RLOC-side UDP 4341 socket set: batched send and receive
// of LISP-encapsulated packets whose payload is the LISP header followed by
// the inner packet; the implementation adds (or strips) the outer IP and
// UDP headers.
type Underlay interface {
	// Send transmits bufs[i][offset:] as the UDP payload of one datagram
	// with the outer headers outer[i]. bufs[i][:offset] is headroom (at
	// least UnderlayHeadroom bytes) the implementation may overwrite.
	// The engine passes packets grouped by destination RLOC. Send may be
	// called from several goroutines at once and must not keep the
	// buffers after it returns.
	Send(bufs [][]byte, outer []Outer, offset int) (int, error)
	// Receivers returns the receive functions; the engine runs each in its
	// own goroutine.
	Receivers() []ReceiveFunc
	// BatchSize is the largest batch Send accepts and a ReceiveFunc fills.
	BatchSize() int
	Close() error
}

// NativeWriter forwards packets outside LISP (natively): bufs[i][offset:]
// is packet i. See Config.Native for how the kernel is expected to route
// them. Write may be called from several goroutines at once and must not
// keep the buffers.
type NativeWriter interface {
	Write(bufs [][]byte, offset int) (int, error)
}

// ControlHooks is how the data plane talks to the control plane. The
// engine calls the hooks from two goroutines of its own, never from the
// packet path: one for Miss and SendMapRequest, one for the others, each
// fed by its own bounded queue, so a flood of decapsulated traffic does
// not hold up misses; a slow hook delays only the hooks of its queue
// (events that do not fit are counted and dropped).
type ControlHooks interface {
	// Miss: a packet from src to dst had no usable map-cache entry.
	// Called at most once per MissInterval per destination host address;
	// src (the packet's source EID) goes into the Map-Request's
	// Source-EID (RFC 9301 §5.3).
	Miss(iid uint32, dst, src netip.Addr)
	// SendMapRequest: a negative entry with action send-map-request
	// matched dst. Rate-limited like Miss.
	SendMapRequest(iid uint32, dst, src netip.Addr)
	// Decapsulated: sampled, once per DecapSampleInterval per outer
	// source, so the control plane knows which ITRs sent traffic recently.
	Decapsulated(outerSrc netip.Addr, iid uint32, innerSrc netip.Addr)
	// AwayHit: an ITR (outerSrc) sent a packet for a host that moved away
	// (re-encapsulated to its new site); once per DecapSampleInterval
	// per ITR and host.
	AwayHit(outerSrc netip.Addr, iid uint32, host netip.Addr)
	// UnseenHostHit: an ITR (outerSrc) sent a packet for an address of
	// one of our dynamic-EID ranges where no host has been seen. Its
	// mapping may be the covering prefix, learnt before the host
	// registered elsewhere; once per DecapSampleInterval per ITR and
	// address. The packet is delivered all the same (a silent host of a
	// stretched subnet may be here).
	UnseenHostHit(outerSrc netip.Addr, iid uint32, host netip.Addr)
	// HostSeen: a packet read from the TUN of iid came from src, which
	// lies in a dynamic-EID range of iid and is not a known host (see
	// Programmer.SetDynamicEIDs). Called at most once per
	// HostSeenInterval per source address and ITR goroutine.
	HostSeen(iid uint32, src netip.Addr)
}

// Locator is an RLOC of a map-cache entry as the data plane sees it.
type Locator struct {
	Addr     netip.Addr
	Priority uint8 // 255: never use
	Weight   uint8
	Up       bool
}

// CacheEntry is a map-cache entry: a locator set, or a negative entry with
// an action.
type CacheEntry struct {
	EID      mapping.EID
	Locators []Locator
	Negative bool
	Action   wire.Action // for negative entries
	Expires  time.Time   // zero: never; after it, the entry is treated as a miss
}

// Programmer is the narrow interface the control plane programs the data
// plane through, so that another data plane (in the kernel, say) can
// implement it later.
type Programmer interface {
	SetMapCache(e CacheEntry) // insert or replace
	DeleteMapCache(eid mapping.EID)
	FlushMapCache(iid uint32) // every instance when iid == AllInstances
	SetLocatorUp(eid mapping.EID, rloc netip.Addr, up bool)
	SetLocalEIDs(eids []mapping.EID) // the ETR's database
	// SetDynamicEIDs replaces the dynamic-EID ranges hosts may appear in
	// and the hosts (/32, /128) already detected in them.
	SetDynamicEIDs(ranges, known []mapping.EID)
	// SetAwayEIDs replaces the hosts (/32, /128) that moved away from this
	// site: packets decapsulated for them are re-encapsulated by the
	// map-cache instead of written to the TUN.
	SetAwayEIDs(eids []mapping.EID)
	Stats() Stats
}

// Stats is a snapshot of the engine's counters for `show statistics`.
type Stats struct {
	EncapsulatedPackets uint64            `json:"encapsulated-packets"`
	EncapsulatedBytes   uint64            `json:"encapsulated-bytes"`
	DecapsulatedPackets uint64            `json:"decapsulated-packets"`
	DecapsulatedBytes   uint64            `json:"decapsulated-bytes"`
	CacheHits           uint64            `json:"cache-hits"`
	CacheMisses         uint64            `json:"cache-misses"`
	PETREncapsulated    uint64            `json:"petr-encapsulated"`
	NativeForwarded     uint64            `json:"native-forwarded"`
	Fragmented          uint64            `json:"fragmented"`
	ICMPSent            uint64            `json:"icmp-sent"`
	ICMPRateLimited     uint64            `json:"icmp-rate-limited"`
	MissQueued          uint64            `json:"miss-queued"`
	MissReleased        uint64            `json:"miss-released"`
	Reencapsulated      uint64            `json:"reencapsulated"`
	HookEventsDropped   uint64            `json:"hook-events-dropped"`
	Dropped             map[string]uint64 `json:"dropped"`
	MapCacheEntries     int               `json:"map-cache-entries"`
	MissQueuePackets    int               `json:"miss-queue-packets"`
}

var errClosed = net.ErrClosed
