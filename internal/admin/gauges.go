package admin

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Gauge is a value read from the roles' state at scrape time (map-cache
// size, registered prefixes, a locator's probe RTT): what a counter
// cannot say. Name is the full metric name.
type Gauge struct {
	Name   string
	Help   string
	Labels [][2]string
	Value  float64
}

// GaugeCollector exposes gauges read by a function at every scrape.
type GaugeCollector struct{ read func() []Gauge }

// NewGaugeCollector wraps read.
func NewGaugeCollector(read func() []Gauge) *GaugeCollector { return &GaugeCollector{read: read} }

// Describe sends nothing: the collector is unchecked, its gauges known at scrape.
func (c *GaugeCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *GaugeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.read() {
		names := make([]string, len(g.Labels))
		values := make([]string, len(g.Labels))
		for i, l := range g.Labels {
			names[i], values[i] = l[0], l[1]
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.Name, g.Help, names, nil), prometheus.GaugeValue, g.Value, values...)
	}
}

// SetGauges makes the /metrics listener opened after it serve the gauges
// read returns, beside the counters.
func (s *Server) SetGauges(read func() []Gauge) { s.gauges = read }
