package loadgen

import (
	"fmt"
	"io"
	"math"
	"time"
)

// Report is the outcome of a run. Its JSON form is `lispctl bench --json`.
type Report struct {
	Mode       string  `json:"mode"`
	Target     string  `json:"target"`
	Sockets    int     `json:"sockets"`
	Prefixes   int     `json:"prefixes"`
	TargetRate float64 `json:"target-rate"` // 0: as fast as possible

	Sent       uint64  `json:"sent"`
	SentBytes  uint64  `json:"sent-bytes"`
	Replies    uint64  `json:"replies"` // matched answers (verified Map-Notifies, Map-Replies)
	Lost       uint64  `json:"lost"`    // sent − replies after the drain (0 for flood)
	LossPct    float64 `json:"loss-percent"`
	SendRate   float64 `json:"send-rate"`  // messages/s over the send phase
	ReplyRate  float64 `json:"reply-rate"` // replies/s from the first send to the last reply
	Negative   uint64  `json:"negative-replies"`
	Received   uint64  `json:"received"` // every datagram that came back
	BadAuth    uint64  `json:"bad-auth"`
	Unmatched  uint64  `json:"unmatched"`  // nonce of no outstanding message: late, duplicate or foreign
	Unexpected uint64  `json:"unexpected"` // wrong message type or too short
	SendErrors uint64  `json:"send-errors"`

	P50  float64 `json:"p50-ms"`
	P90  float64 `json:"p90-ms"`
	P99  float64 `json:"p99-ms"`
	Max  float64 `json:"max-ms"`
	Min  float64 `json:"min-ms"`
	Mean float64 `json:"mean-ms"`

	Duration float64 `json:"duration-seconds"` // the send phase
	Drained  float64 `json:"drain-seconds"`    // waited after it for answers
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 } // µs precision

func (e *engine) report(sent, errs, bytes uint64, sendEnd int64) *Report {
	c := &e.cfg
	end := e.mono()
	var h histogram
	r := &Report{Mode: c.Mode.String(), Target: c.Target.String(), Sockets: c.Sockets, Prefixes: c.Prefixes,
		TargetRate: c.Rate, Sent: sent, SentBytes: bytes, SendErrors: errs}
	var lastReply int64
	for _, s := range e.socks {
		st := &s.stats
		h.merge(&st.hist)
		r.Replies += st.replies
		r.Received += st.received
		r.BadAuth += st.badAuth
		r.Unmatched += st.unmatched
		r.Unexpected += st.unexpected
		r.Negative += st.negative
		lastReply = max(lastReply, st.lastReply)
	}
	if c.Mode != Flood && sent > r.Replies {
		r.Lost = sent - r.Replies
	}
	if c.Mode != Flood && sent > 0 {
		r.LossPct = math.Round(float64(r.Lost)/float64(sent)*1e4) / 100
	}
	r.Duration = float64(sendEnd) / 1e9
	r.Drained = float64(end-sendEnd) / 1e9
	if sendEnd > 0 {
		r.SendRate = math.Round(float64(sent) / r.Duration)
	}
	if span := max(sendEnd, lastReply); r.Replies > 0 && span > 0 {
		r.ReplyRate = math.Round(float64(r.Replies) / (float64(span) / 1e9))
	}
	r.P50, r.P90, r.P99 = ms(h.quantile(0.50)), ms(h.quantile(0.90)), ms(h.quantile(0.99))
	r.Max, r.Min, r.Mean = ms(time.Duration(h.max)), ms(time.Duration(h.min)), ms(h.mean())
	return r
}

// WriteText prints the report as a table.
func (r *Report) WriteText(w io.Writer) error {
	rate := "as fast as possible"
	if r.TargetRate > 0 {
		rate = fmt.Sprintf("target %.0f/s", r.TargetRate)
	}
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	p("bench %s → %s: %d sockets, %d prefixes, %s\n", r.Mode, r.Target, r.Sockets, r.Prefixes, rate)
	p("  %-12s %12d   %10.0f msgs/s   over %.3f s\n", "sent", r.Sent, r.SendRate, r.Duration)
	if r.Mode == Flood.String() {
		p("  %-12s %12d   %10.1f Mbit/s\n", "bytes", r.SentBytes, float64(r.SentBytes)*8/1e6/max(r.Duration, 1e-9))
		p("  %-12s %12d\n", "received", r.Received)
		p("  %-12s %12d\n", "send errors", r.SendErrors)
		return err
	}
	what := "replies"
	if r.Mode == Register.String() {
		what = "notifies"
	}
	p("  %-12s %12d   %10.0f msgs/s\n", what, r.Replies, r.ReplyRate)
	p("  %-12s %12d   %9.2f %%   (after waiting %.3f s)\n", "lost", r.Lost, r.LossPct, r.Drained)
	if r.Mode == Request.String() {
		p("  %-12s %12d\n", "negative", r.Negative)
	}
	p("  %-12s %12s %9s %9s %9s %9s %9s\n", "latency ms", "min", "p50", "p90", "p99", "max", "mean")
	p("  %-12s %12.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", "", r.Min, r.P50, r.P90, r.P99, r.Max, r.Mean)
	p("  %-12s send %d, bad-auth %d, unmatched %d, unexpected %d\n", "errors",
		r.SendErrors, r.BadAuth, r.Unmatched, r.Unexpected)
	return err
}
