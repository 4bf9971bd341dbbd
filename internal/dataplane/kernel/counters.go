//go:build linux

package kernel

import (
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/lispd/lispd/internal/stats"
)

// Counter indexes of lisp_counters (enum counter in bpf/lisp.c).
const (
	cEncapPkts = iota
	cEncapBytes
	cDecapPkts
	cDecapBytes
	cPETREncap
	cEventsLost
	cPETRDecap
	cPuntMiss
	cPuntExpired
	cPuntNegative
	cPuntTooBig
	cPuntFragment
	cPuntTTL
	cPuntNoRoute
	cPuntDynamicEID
	cPuntUnhandled
	cPuntNotLocalEID
	cPuntSourceCheck
	cPuntUnknownIID
	cPuntHeader
	cPuntECN
	cPuntError
	cPuntChecksum
	cPuntLocalRoute
	cPuntPETRSource
	cDropNegative
	cDropNegativePolicy
	cDropNegativeAuth
	cDropNegativeUnknown
	cDropNoLocator
	cDropError
	cEncapInPlace
	numCounters
)

// puntNames label lisp_dataplane_kernel_packets_punted_total{reason}:
// packets the program left to the userspace path.
var puntNames = map[int]string{
	cPuntMiss:        "no-map-cache-entry",
	cPuntExpired:     "expired",
	cPuntNegative:    "negative-entry",
	cPuntTooBig:      "too-big",
	cPuntFragment:    "fragment",
	cPuntTTL:         "ttl",
	cPuntNoRoute:     "no-route",
	cPuntDynamicEID:  "dynamic-eid",
	cPuntUnhandled:   "unhandled",
	cPuntNotLocalEID: "not-local-eid",
	cPuntSourceCheck: "source-check",
	cPuntUnknownIID:  "unknown-iid",
	cPuntHeader:      "header",
	cPuntECN:         "ecn",
	cPuntError:       "error",
	cPuntChecksum:    "ipv6-checksum",
	cPuntLocalRoute:  "local-route",
	cPuntPETRSource:  "petr-source",
}

// dropNames label lisp_dataplane_kernel_packets_dropped_total{reason};
// the negative-entry reasons are the userspace engine's names.
var dropNames = map[int]string{
	cDropNegative:        "negative-drop",
	cDropNegativePolicy:  "negative-drop-policy-denied",
	cDropNegativeAuth:    "negative-drop-auth-failure",
	cDropNegativeUnknown: "negative-unknown-action",
	cDropNoLocator:       "no-usable-locator",
	cDropError:           "error",
}

// counters mirrors the per-CPU counters of the program into the
// daemon's registry on every snapshot.
type counters struct {
	m             *ebpf.Map
	mu            sync.Mutex
	last          [numCounters]uint64
	reg           [numCounters]*stats.Counter
	programErrors *stats.Counter
}

func newCounters(r *stats.Registry, m *ebpf.Map) *counters {
	k := &counters{m: m}
	c := func(name, help string, labels ...[2]string) *stats.Counter {
		return r.Counter(stats.Desc{Subsystem: "dataplane_kernel", Name: name, Help: help, Labels: labels})
	}
	k.reg[cEncapPkts] = c("packets_encapsulated", "Packets LISP-encapsulated by the kernel data path (segments of a GSO packet counted one by one).")
	k.reg[cEncapBytes] = c("bytes_encapsulated", "Inner bytes LISP-encapsulated by the kernel data path.")
	k.reg[cDecapPkts] = c("packets_decapsulated", "Packets decapsulated by the kernel data path.")
	k.reg[cDecapBytes] = c("bytes_decapsulated", "Inner bytes decapsulated by the kernel data path.")
	k.reg[cEncapInPlace] = c("packets_encapsulated_in_place", "Packets the kernel data path encapsulated by moving them within their buffer, for want of room in front (also counted in packets_encapsulated).")
	k.reg[cPETREncap] = c("packets_petr_encapsulated", "Packets the kernel data path encapsulated to a PETR (natively-forward entry).")
	k.reg[cPETRDecap] = c("packets_petr_decapsulated", "Packets the kernel data path decapsulated as a PETR toward non-LISP hosts (also counted as decapsulated).")
	k.reg[cEventsLost] = c("events_lost", "Decapsulation samples lost because the ring buffer to userspace was full.")
	for i, n := range puntNames {
		k.reg[i] = c("packets_punted", "Packets the kernel data path left to the userspace path, by reason.", [2]string{"reason", n})
	}
	for i, n := range dropNames {
		k.reg[i] = c("packets_dropped", "Packets the kernel data path dropped, by reason.", [2]string{"reason", n})
	}
	k.programErrors = c("program_errors", "Map updates of the kernel data path that failed (the entry stays with the userspace path).")
	r.OnSnapshot(k.refresh)
	return k
}

// read sums the per-CPU values.
func (k *counters) read() (out [numCounters]uint64) {
	var per []uint64
	for i := range numCounters {
		if err := k.m.Lookup(uint32(i), &per); err != nil {
			continue
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out
}

func (k *counters) refresh() {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.read()
	for i, v := range cur {
		if v > k.last[i] && k.reg[i] != nil {
			k.reg[i].Add(v - k.last[i])
		}
		k.last[i] = v
	}
}

// Counts are the program's counters, for show dataplane.
type Counts struct {
	EncapsulatedPackets uint64
	EncapsulatedBytes   uint64
	EncapsulatedInPlace uint64
	DecapsulatedPackets uint64
	DecapsulatedBytes   uint64
	PETREncapsulated    uint64
	PETRDecapsulated    uint64
	EventsLost          uint64
	Punted, Dropped     map[string]uint64
	MapCacheEntries     int
	// MapUpdates mappings learnt were written; the median, 99th
	// percentile and maximum delay of the latest 1024, from the message
	// that brought each to its BPF map entry.
	MapUpdates                               int
	MapUpdateP50, MapUpdateP99, MapUpdateMax time.Duration
}

// Counts reads the counters now.
func (p *Path) Counts() Counts {
	v := p.k.read()
	c := Counts{EncapsulatedPackets: v[cEncapPkts], EncapsulatedBytes: v[cEncapBytes], EncapsulatedInPlace: v[cEncapInPlace],
		DecapsulatedPackets: v[cDecapPkts], DecapsulatedBytes: v[cDecapBytes], PETREncapsulated: v[cPETREncap],
		PETRDecapsulated: v[cPETRDecap],
		EventsLost:       v[cEventsLost], Punted: map[string]uint64{}, Dropped: map[string]uint64{},
		MapCacheEntries: p.MapCacheEntries()}
	c.MapUpdateP50, c.MapUpdateP99, c.MapUpdateMax, c.MapUpdates = p.lat.quantiles()
	for i, n := range puntNames {
		c.Punted[n] = v[i]
	}
	for i, n := range dropNames {
		c.Dropped[n] = v[i]
	}
	return c
}
