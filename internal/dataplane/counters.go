package dataplane

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/lispd/lispd/internal/stats"
)

// dropReason indexes the drop counters; registered up front so the packet
// path does one atomic add.
type dropReason uint8

const (
	dropMissQueueFull        dropReason = iota // no map-cache entry and the miss queue is full
	dropMissExpired                            // waited in the miss queue longer than MissQueueTimeout
	dropNegative                               // negative entry: drop
	dropNegativePolicy                         // negative entry: drop-policy-denied
	dropNegativeAuth                           // negative entry: drop-auth-failure
	dropNegativeUnknown                        // negative entry with an unassigned action
	dropNoUsableLocator                        // every locator down, priority 255 or of a family without a local RLOC
	dropNoPETR                                 // natively-forward or no-action without a PETR or native path
	dropUnknownIID                             // ETR: instance ID with no TUN
	dropNotMyRLOC                              // ETR: outer destination is not a local RLOC
	dropSourceRLOCCheck                        // ETR: outer source is not a locator of the inner source's mapping
	dropMalformed                              // bad LISP header or inner IP header
	dropTooBig                                 // does not fit the underlay MTU after encapsulation
	dropNotLocalEID                            // ETR: inner destination is not a local EID (and not a PETR)
	dropECN                                    // RFC 6040: CE on a packet that is not ECN-capable
	dropEncrypted                              // KK bits set (RFC 8061), not supported
	dropNonUnicast                             // multicast, broadcast or link-local inner destination
	dropITRDisabled                            // packet from a TUN while neither ITR nor PITR
	dropETRDisabled                            // LISP packet while neither ETR nor PETR
	dropSendError                              // the underlay failed to send
	dropTUNWriteError                          // a TUN or native write failed
	dropTTLExpired                             // ETR: packet for an away host with an inner TTL too small to forward again
	dropAwayLoop                               // ETR: the map-cache entry of an away host points back at a local RLOC
	dropSourceRLOCUnknown                      // ETR: source check on, and no cached mapping or RLOC prefix vouches for the outer source
	dropPETRSourceNotAllowed                   // PETR: inner source not in the instance's allowed source EIDs
	dropRTRSourceEID                           // RTR: a NATed xTR sent from an EID it did not register
	dropRTRNotRegistered                       // RTR: neither source nor destination EID is a NATed xTR's (no open relay)
	dropControlInData                          // a Data-Map-Notify (IID 0xFFFFFF) and nobody to take it, or its queue full
	dropTUNReadOverflow                        // segments of a TUN super-packet beyond the read's buffers
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"no-route-miss-queue-full", "miss-expired", "negative-drop", "negative-drop-policy-denied",
	"negative-drop-auth-failure", "negative-unknown-action", "no-usable-locator", "no-petr", "unknown-iid",
	"not-my-rloc", "source-rloc-check", "malformed", "too-big", "not-local-eid", "ecn", "encrypted",
	"non-unicast", "itr-disabled", "etr-disabled", "send-error", "tun-write-error", "ttl-expired", "away-loop",
	"source-rloc-unknown", "petr-source-not-allowed", "rtr-source-eid-not-registered", "rtr-not-registered",
	"control-in-data", "tun-read-overflow",
}

func (r dropReason) String() string { return dropNames[r] }

type counters struct {
	encapPkts, encapBytes *stats.Counter
	decapPkts, decapBytes *stats.Counter
	hits, misses          *stats.Counter
	petr, native          *stats.Counter
	fragmented, segmented *stats.Counter
	icmpSent, icmpLimited *stats.Counter
	queued, released      *stats.Counter
	reencap               *stats.Counter
	// runFollowers are the packets an RTR relayed as followers of a relay
	// run (rtr.go): not a metric, the tests' proof that runs are taken.
	runFollowers  atomic.Uint64
	hookDropped   *stats.Counter
	hookDroppedBy [numHookKinds]*stats.Counter
	drops         [numDropReasons]*stats.Counter
	rlocs         rlocCounts
}

// maxRLOCCounters bounds the per-RLOC counters (one series per remote RLOC
// in show statistics and Prometheus): locators past it are counted only in
// the totals.
const maxRLOCCounters = 1024

// rlocCount is the traffic encapsulated toward one RLOC. Choices point at
// it, so the packet path adds to it without a lookup (once per batch and
// destination, in flushSends).
type rlocCount struct {
	pkts, bytes *stats.Counter
}

// rlocCounts hands out one rlocCount per RLOC, registered on first use.
type rlocCounts struct {
	reg *stats.Registry
	mu  sync.Mutex
	m   map[netip.Addr]*rlocCount
}

// get returns the counters of rloc, nil once maxRLOCCounters RLOCs have
// their own.
func (r *rlocCounts) get(rloc netip.Addr) *rlocCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.m[rloc]; ok {
		return c
	}
	if len(r.m) >= maxRLOCCounters {
		return nil
	}
	if r.m == nil {
		r.m = map[netip.Addr]*rlocCount{}
	}
	l := [][2]string{{"rloc", rloc.String()}}
	c := &rlocCount{
		pkts:  r.reg.Counter(stats.Desc{Subsystem: "dataplane", Name: "rloc_packets_encapsulated", Help: "Packets LISP-encapsulated toward one RLOC.", Labels: l}),
		bytes: r.reg.Counter(stats.Desc{Subsystem: "dataplane", Name: "rloc_bytes_encapsulated", Help: "Inner bytes LISP-encapsulated toward one RLOC.", Labels: l}),
	}
	r.m[rloc] = c
	return c
}

func newCounters(r *stats.Registry) *counters {
	c := func(name, help string) *stats.Counter {
		return r.Counter(stats.Desc{Subsystem: "dataplane", Name: name, Help: help})
	}
	k := &counters{
		rlocs:      rlocCounts{reg: r},
		encapPkts:  c("packets_encapsulated", "Packets LISP-encapsulated and handed to the underlay."),
		encapBytes: c("bytes_encapsulated", "Inner bytes LISP-encapsulated."),
		decapPkts:  c("packets_decapsulated", "Packets decapsulated and written to a TUN."),
		decapBytes: c("bytes_decapsulated", "Inner bytes decapsulated."),
		hits:       c("map_cache_hits", "Map-cache lookups that found a usable entry."),
		misses:     c("map_cache_misses", "Map-cache lookups with no entry, an expired one or send-map-request."),
		petr:       c("packets_petr_encapsulated", "Packets encapsulated to a PETR (natively-forward entry)."),
		native:     c("packets_native_forwarded", "Packets handed to the native path."),
		fragmented: c("packets_fragmented", "IPv4 packets without DF split to fit the underlay MTU (RFC 9300 §7.1)."),
		segmented: c("packets_segmented",
			"TCP packets an RTR relayed larger than any underlay carries (a same-host kernel-path xTR's GSO super-packet), cut into segments."),
		icmpSent:    c("icmp_too_big_sent", "ICMP fragmentation-needed and ICMPv6 packet-too-big messages generated."),
		icmpLimited: c("icmp_rate_limited", "ICMP errors not generated because of the rate limit."),
		queued:      c("packets_miss_queued", "Packets held while their mapping was being resolved."),
		released:    c("packets_miss_released", "Held packets forwarded once their mapping arrived."),
		reencap:     c("packets_reencapsulated", "Packets decapsulated for a host that moved away and handed back to the ITR path (map-cache) instead of the TUN."),
		hookDropped: c("hook_events_dropped", "Control-plane events lost because the hook queue was full."),
	}
	for i := range k.hookDroppedBy {
		k.hookDroppedBy[i] = r.Counter(stats.Desc{Subsystem: "dataplane", Name: "hook_events_dropped_by_kind",
			Help:   "Control-plane events lost because their hook queue was full, by kind (misses have a queue of their own).",
			Labels: [][2]string{{"kind", hookKindNames[i]}}})
	}
	for i := range k.drops {
		k.drops[i] = r.Counter(stats.Desc{Subsystem: "dataplane", Name: "packets_dropped",
			Help: "Packets dropped, by reason.", Labels: [][2]string{{"reason", dropNames[i]}}})
	}
	return k
}

func (k *counters) drop(r dropReason) { k.drops[r].Inc() }
