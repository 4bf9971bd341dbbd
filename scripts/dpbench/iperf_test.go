package main

import (
	"math"
	"strings"
	"testing"
)

// Trimmed reports of iperf3 3.12 --json.
const (
	tcpReport = `{"start": {}, "intervals": [], "end": {
 "sum_sent": {"start": 0, "end": 1.000691, "seconds": 1.000691, "bytes": 3097100288, "bits_per_second": 24759693355.89108, "retransmits": 10, "sender": true},
 "sum_received": {"start": 0, "end": 1.000711, "seconds": 1.000711, "bytes": 3097100288, "bits_per_second": 24759198513.85665, "sender": true}}}`
	udpReport = `{"end": {
 "sum_sent": {"start": 0, "end": 2.00003, "seconds": 2.00003, "bytes": 22721664, "bits_per_second": 90885292.7206092, "jitter_ms": 0, "lost_packets": 0, "packets": 355026, "lost_percent": 0, "sender": true},
 "sum_received": {"start": 0, "end": 2.00008, "seconds": 2.00008, "bytes": 21705920, "bits_per_second": 86820207.19171233, "jitter_ms": 0.007, "lost_packets": 15871, "packets": 355026, "lost_percent": 4.47, "sender": false}}}`
	errReport = `{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}`
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestParseIperf(t *testing.T) {
	r, err := parseIperf([]byte(tcpReport), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.BitsPerSec, 24759198513.85665) || r.Retransmits != 10 || r.PacketsSec != 0 {
		t.Errorf("tcp: %+v", r)
	}

	r, err = parseIperf([]byte(udpReport), 64)
	if err != nil {
		t.Fatal(err)
	}
	// 21705920 bytes / 64 = 339155 datagrams received (355026 - 15871).
	if want := 339155 / 2.00008; !near(r.PacketsSec, want) {
		t.Errorf("udp received %v packets/s, want %v", r.PacketsSec, want)
	}
	if want := 355026 / 2.00003; !near(r.SentPackets, want) {
		t.Errorf("udp sent %v packets/s, want %v", r.SentPackets, want)
	}
	if want := 100 * 15871 / 355026.0; !near(r.LossPercent, want) {
		t.Errorf("udp loss %v %%, want %v", r.LossPercent, want)
	}

	_, err = parseIperf([]byte(errReport), 0)
	if err == nil || !strings.Contains(err.Error(), "Connection refused") || !retryable(err) {
		t.Errorf("error report: %v", err)
	}
	if _, err := parseIperf([]byte(`{"end": {}}`), 0); err == nil {
		t.Error("empty summary accepted")
	}
	if _, err := parseIperf([]byte("iperf3: error"), 0); err == nil {
		t.Error("non-JSON accepted")
	}
}

func TestMedianThousands(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	for in, want := range map[float64]string{0: "0", 999.6: "1,000", 50000: "50,000", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestSelected(t *testing.T) {
	b := &bench{only: "vxlan, plain", onlyTests: "udp64"}
	phs, ts, err := b.selected()
	if err != nil {
		t.Fatal(err)
	}
	if len(phs) != 2 || phs[0].name != "plain" || phs[1].name != "vxlan" || len(ts) != 1 || ts[0].name != "udp64" {
		t.Errorf("selected %v %v", phs, ts)
	}
	b.only = "lisp2"
	if _, _, err := b.selected(); err == nil {
		t.Error("unknown phase accepted")
	}
}
