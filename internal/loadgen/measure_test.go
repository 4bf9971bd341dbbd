package loadgen_test

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/loadgen"
)

// TestMeasure reports the rates this machine achieves; it runs only with
// LOADGEN_MEASURE=1 (about 30 s):
//
//	LOADGEN_MEASURE=1 go test -run Measure -v ./internal/loadgen
func TestMeasure(t *testing.T) {
	if os.Getenv("LOADGEN_MEASURE") == "" {
		t.Skip("set LOADGEN_MEASURE=1 to measure rates")
	}
	d := 3 * time.Second
	secret := []byte("s3cret")
	measure := func(c loadgen.Config) *loadgen.Report {
		rep, err := loadgen.Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	sink, err := lisptest.NewSink(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for _, kind := range []loadgen.FloodKind{loadgen.FloodGarbage, loadgen.FloodBadAuth, loadgen.FloodMixed} {
		before := sink.Packets()
		rep := measure(loadgen.Config{Mode: loadgen.Flood, FloodKind: kind, Target: sink.Addr(), Duration: d})
		time.Sleep(100 * time.Millisecond)
		t.Logf("flood %-17s → UDP sink: sent %d in %.2f s = %.0f packets/s (%.0f Mbit/s); sink received %.0f packets/s",
			kind, rep.Sent, rep.Duration, rep.SendRate, float64(rep.SentBytes)*8/1e6/rep.Duration,
			float64(sink.Packets()-before)/rep.Duration)
	}

	for _, mode := range []loadgen.Mode{loadgen.Request, loadgen.Register} {
		for _, rate := range []float64{0, 100000, 75000, 50000, 25000} {
			r, err := lisptest.NewResponder(lisptest.ResponderOptions{Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			rep := measure(loadgen.Config{Mode: mode, Target: r.Addr(), Rate: rate, Duration: d, Prefixes: 10000,
				Secret: secret})
			r.Close()
			t.Logf("%-8s rate %6.0f: sent %7.0f/s, answers %7.0f/s, lost %5.2f %%, latency ms p50 %.3f p90 %.3f p99 %.3f max %.3f",
				mode, rate, rep.SendRate, rep.ReplyRate, rep.LossPct, rep.P50, rep.P90, rep.P99, rep.Max)
		}
	}
}
