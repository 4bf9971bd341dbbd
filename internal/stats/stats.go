// Package stats holds a role's counters: plain atomics incremented on the
// hot path, registered once at start-up with a subsystem, a name and
// labels, and read by whoever asks (the admin API, the Prometheus collector
// on scrape). Nothing here allocates after registration.
package stats

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load reads the value.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Desc identifies a counter: metric lisp_<Subsystem>_<Name>_total{labels}.
type Desc struct {
	Subsystem string
	Name      string
	Help      string
	Labels    [][2]string // ordered label pairs
}

// Key is the counter's unique text key: "subsystem.name{k=v,…}".
func (d Desc) Key() string {
	var sb strings.Builder
	sb.WriteString(d.Subsystem + "." + d.Name)
	if len(d.Labels) > 0 {
		sb.WriteByte('{')
		for i, l := range d.Labels {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(l[0] + "=" + l[1])
		}
		sb.WriteByte('}')
	}
	return sb.String()
}

type entry struct {
	desc Desc
	c    *Counter
}

// Registry is the set of counters of one daemon.
type Registry struct {
	mu      sync.Mutex
	entries []entry
	byKey   map[string]*Counter
	// refresh brings counters kept elsewhere (per-CPU BPF maps) up to
	// date before a snapshot.
	refresh []func()
	gauges  []gaugeEntry
	// gaugeFuncs are read at every Gauges call (GaugeFunc).
	gaugeFuncs []func() []GaugeSample
}

// OnSnapshot registers fn to run before every Snapshot: a source whose
// counts live outside this process's memory (a BPF map) adds what it
// counted since the last call.
func (r *Registry) OnSnapshot(fn func()) {
	r.mu.Lock()
	r.refresh = append(r.refresh, fn)
	r.mu.Unlock()
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byKey: map[string]*Counter{}} }

// Counter registers (or returns the already registered) counter.
func (r *Registry) Counter(d Desc) *Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := d.Key()
	if c, ok := r.byKey[k]; ok {
		return c
	}
	c := new(Counter)
	r.byKey[k] = c
	r.entries = append(r.entries, entry{desc: d, c: c})
	return c
}

// Sample is one counter's value.
type Sample struct {
	Desc  Desc
	Value uint64
}

// Snapshot returns every counter, sorted by key.
func (r *Registry) Snapshot() []Sample {
	r.mu.Lock()
	refresh := slices.Clone(r.refresh)
	r.mu.Unlock()
	for _, fn := range refresh {
		fn()
	}
	r.mu.Lock()
	out := make([]Sample, len(r.entries))
	for i, e := range r.entries {
		out[i] = Sample{Desc: e.desc, Value: e.c.Load()}
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Desc.Key() < out[j].Desc.Key() })
	return out
}

// Label returns the value of label k, or "".
func (d Desc) Label(k string) string {
	i := slices.IndexFunc(d.Labels, func(l [2]string) bool { return l[0] == k })
	if i < 0 {
		return ""
	}
	return d.Labels[i][1]
}

// Gauge is a value that goes up and down (a lag, a size): metric
// lisp_<Subsystem>_<Name>{labels}, without _total.
type Gauge struct{ bits atomic.Uint64 }

// Set stores v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Load reads the value.
func (g *Gauge) Load() float64 { return math.Float64frombits(g.bits.Load()) }

type gaugeEntry struct {
	desc Desc
	g    *Gauge
}

// Gauge registers (or returns the already registered) gauge.
func (r *Registry) Gauge(d Desc) *Gauge {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := d.Key()
	for _, e := range r.gauges {
		if e.desc.Key() == k {
			return e.g
		}
	}
	g := new(Gauge)
	r.gauges = append(r.gauges, gaugeEntry{desc: d, g: g})
	return g
}

// GaugeSample is one gauge's value.
type GaugeSample struct {
	Desc  Desc
	Value float64
}

// GaugeFunc adds gauges read from their owner at every Gauges call: state
// kept elsewhere (map-cache size, a locator's probe RTT) with label sets
// known only then.
func (r *Registry) GaugeFunc(read func() []GaugeSample) {
	r.mu.Lock()
	r.gaugeFuncs = append(r.gaugeFuncs, read)
	r.mu.Unlock()
}

// Gauges returns every gauge, sorted by key.
func (r *Registry) Gauges() []GaugeSample {
	r.mu.Lock()
	out := make([]GaugeSample, len(r.gauges))
	for i, e := range r.gauges {
		out[i] = GaugeSample{Desc: e.desc, Value: e.g.Load()}
	}
	funcs := r.gaugeFuncs
	r.mu.Unlock()
	// Outside our lock: the owners take their own.
	for _, read := range funcs {
		out = append(out, read()...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Desc.Key() < out[j].Desc.Key() })
	return out
}
