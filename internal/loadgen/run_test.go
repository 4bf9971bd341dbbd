package loadgen_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/loadgen"
	"github.com/lispd/lispd/wire"
)

var secret = []byte("s3cret")

func responder(t *testing.T, o lisptest.ResponderOptions) *lisptest.Responder {
	t.Helper()
	r, err := lisptest.NewResponder(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func run(t *testing.T, c loadgen.Config) *loadgen.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := loadgen.Run(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *rep)
	return rep
}

func checkAllAnswered(t *testing.T, rep *loadgen.Report, n uint64) {
	t.Helper()
	if rep.Sent != n || rep.Replies != n || rep.Lost != 0 || rep.SendErrors != 0 || rep.BadAuth != 0 || rep.Unmatched != 0 {
		t.Errorf("sent %d replies %d lost %d send-errors %d bad-auth %d unmatched %d, want %d answered",
			rep.Sent, rep.Replies, rep.Lost, rep.SendErrors, rep.BadAuth, rep.Unmatched, n)
	}
	if rep.Min <= 0 || rep.P50 < rep.Min || rep.P90 < rep.P50 || rep.P99 < rep.P90 || rep.Max < rep.P99 {
		t.Errorf("latencies min %v p50 %v p90 %v p99 %v max %v", rep.Min, rep.P50, rep.P90, rep.P99, rep.Max)
	}
	if rep.SendRate <= 0 || rep.ReplyRate <= 0 || rep.Duration <= 0 {
		t.Errorf("send-rate %v reply-rate %v duration %v", rep.SendRate, rep.ReplyRate, rep.Duration)
	}
}

func TestRegister(t *testing.T) {
	for _, alg := range []wire.AuthAlg{wire.AuthHMACSHA1, wire.AuthHMACSHA256} {
		r := responder(t, lisptest.ResponderOptions{Secret: secret})
		rep := run(t, loadgen.Config{Mode: loadgen.Register, Target: r.Addr(), Count: 3000, Prefixes: 500,
			Algorithm: alg, Secret: secret, XTRIDPerPrefix: true, Sockets: 4})
		checkAllAnswered(t, rep, 3000)
		if c := r.Counts(); c.Registers != 3000 || c.BadAuth != 0 || c.Notifies != 3000 {
			t.Errorf("responder saw %+v", c)
		}
	}
}

func TestRequest(t *testing.T) {
	r := responder(t, lisptest.ResponderOptions{})
	rep := run(t, loadgen.Config{Mode: loadgen.Request, Target: r.Addr(), Count: 3000, Prefixes: 1000, EIDLen: 24,
		InstanceID: 1000, HasInstanceID: true, Sockets: 3})
	checkAllAnswered(t, rep, 3000)
	if rep.Negative != 0 {
		t.Errorf("%d negative replies", rep.Negative)
	}
	if c := r.Counts(); c.Requests != 3000 || c.Replies != 3000 || c.Other != 0 {
		t.Errorf("responder saw %+v", c)
	}
}

func TestRequestNegativeIPv6(t *testing.T) {
	r, err := lisptest.NewResponder(lisptest.ResponderOptions{Addr: netip.MustParseAddrPort("[::1]:0"),
		Records: func(req *wire.MapRequest) []wire.EIDRecord {
			return []wire.EIDRecord{{TTL: 15, MaskLen: 16, Action: wire.ActionNativelyForward,
				EID: wire.AddrFromIP(netip.MustParseAddr("2001:db8::"))}}
		}})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer r.Close()
	rep := run(t, loadgen.Config{Mode: loadgen.Request, Target: r.Addr(), Count: 500,
		EIDBase: netip.MustParseAddr("2001:db8::"), EIDLen: 64, Prefixes: 100})
	checkAllAnswered(t, rep, 500)
	if rep.Negative != 500 {
		t.Errorf("%d negative replies, want 500", rep.Negative)
	}
}

// TestLoss drops every other message at the responder: half is lost.
func TestLoss(t *testing.T) {
	for _, mode := range []loadgen.Mode{loadgen.Register, loadgen.Request} {
		r := responder(t, lisptest.ResponderOptions{Secret: secret, DropEvery: 2})
		rep := run(t, loadgen.Config{Mode: mode, Target: r.Addr(), Count: 2000, Secret: secret,
			Drain: 200 * time.Millisecond, Prefixes: 10})
		if rep.Sent != 2000 || rep.Replies+rep.Lost != 2000 || rep.LossPct < 45 || rep.LossPct > 55 {
			t.Errorf("%v: sent %d replies %d lost %d (%.1f %%), want about 50 %% lost",
				mode, rep.Sent, rep.Replies, rep.Lost, rep.LossPct)
		}
		if rep.Drained < 0.15 {
			t.Errorf("%v: drained %.3f s, want the full wait", mode, rep.Drained)
		}
	}
}

// TestBadNotifyAuth: Map-Notifies signed with another key are counted as
// bad-auth, not as replies.
func TestBadNotifyAuth(t *testing.T) {
	r := responder(t, lisptest.ResponderOptions{Secret: secret, NotifySecret: []byte("other")})
	rep := run(t, loadgen.Config{Mode: loadgen.Register, Target: r.Addr(), Count: 300, Secret: secret,
		Drain: 100 * time.Millisecond})
	if rep.Replies != 0 || rep.BadAuth != 300 || rep.Lost != 300 {
		t.Errorf("replies %d bad-auth %d lost %d, want 0, 300, 300", rep.Replies, rep.BadAuth, rep.Lost)
	}
}

func TestRateAndDuration(t *testing.T) {
	r := responder(t, lisptest.ResponderOptions{})
	start := time.Now()
	rep := run(t, loadgen.Config{Mode: loadgen.Request, Target: r.Addr(), Rate: 2000, Duration: 500 * time.Millisecond,
		Sockets: 2})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v", el)
	}
	// Never faster than asked; slower only if the machine is very busy.
	if rep.Sent < 500 || rep.Sent > 1100 || rep.SendRate > 2200 {
		t.Errorf("sent %d at %.0f/s, want about 1000 at 2000/s", rep.Sent, rep.SendRate)
	}
	if rep.Lost != 0 {
		t.Errorf("lost %d", rep.Lost)
	}
}

func TestCancel(t *testing.T) {
	r := responder(t, lisptest.ResponderOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := loadgen.Run(ctx, loadgen.Config{Mode: loadgen.Request, Target: r.Addr(), Rate: 1000, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second || rep.Sent == 0 {
		t.Errorf("cancelled run took %v and sent %d", el, rep.Sent)
	}
}

func TestFlood(t *testing.T) {
	sink, err := lisptest.NewSink(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rep := run(t, loadgen.Config{Mode: loadgen.Flood, Target: sink.Addr(), Count: 20000, Sockets: 2})
	if rep.Sent != 20000 || rep.SendErrors != 0 || rep.SendRate <= 0 || rep.SentBytes == 0 {
		t.Errorf("sent %d errors %d rate %.0f", rep.Sent, rep.SendErrors, rep.SendRate)
	}
	lisptest.Eventually(t, time.Second, func() bool { return sink.Packets() > 0 }, "the sink got nothing")

	// A Map-Server must answer none of the flood and survive it.
	r := responder(t, lisptest.ResponderOptions{Secret: secret})
	for _, kind := range []loadgen.FloodKind{loadgen.FloodGarbage, loadgen.FloodBadAuth, loadgen.FloodMixed} {
		run(t, loadgen.Config{Mode: loadgen.Flood, FloodKind: kind, Target: r.Addr(), Count: 3000, Rate: 100000,
			Secret: secret, Sockets: 2})
	}
	time.Sleep(50 * time.Millisecond)
	c := r.Counts()
	t.Logf("responder: %+v", c)
	if c.Notifies != 0 || c.BadAuth == 0 || c.BadAuth != c.Registers || c.Other == 0 {
		t.Errorf("responder counts %+v", c)
	}
}
