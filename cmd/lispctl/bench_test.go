package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lisptest"
)

func TestBenchRegisterText(t *testing.T) {
	ms := newResponder(t, lisptest.ResponderOptions{Secret: []byte("s3cret")})
	r := lispctl(t, "bench", "register", "--target", ms.Addr().String(), "--secret", "s3cret", "--count", "500",
		"--prefixes", "50", "--eid-len", "24", "--sockets", "2", "--algorithm", "hmac-sha-1-96", "--xtr-id-per-prefix")
	r.wantCode(t, cli.ExitOK)
	for _, want := range []string{"bench register → " + ms.Addr().String() + ": 2 sockets, 50 prefixes, as fast as possible",
		"  sent                  500", "  notifies              500", "  lost                    0", "latency ms",
		"send 0, bad-auth 0, unmatched 0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if c := ms.Counts(); c.Registers != 500 || c.BadAuth != 0 {
		t.Errorf("responder %+v", c)
	}
}

func TestBenchRequestJSON(t *testing.T) {
	mr := newResponder(t, lisptest.ResponderOptions{})
	r := lispctl(t, "bench", "request", "--target", mr.Addr().String(), "--count", "1000", "--prefixes", "100",
		"--instance-id", "7", "--rate", "20000", "--json")
	r.wantCode(t, cli.ExitOK)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"sent", "replies", "lost", "send-rate", "reply-rate", "p50-ms", "p90-ms", "p99-ms",
		"max-ms", "bad-auth", "duration-seconds"} {
		if _, ok := got[k]; !ok {
			t.Errorf("key %q missing:\n%s", k, r.stdout)
		}
	}
	if got["sent"] != 1000.0 || got["replies"] != 1000.0 || got["lost"] != 0.0 || got["p50-ms"].(float64) <= 0 {
		t.Errorf("report:\n%s", r.stdout)
	}
	if rate := got["send-rate"].(float64); rate > 22000 {
		t.Errorf("send-rate %v, asked for 20000", rate)
	}
}

// TestBenchRequestLISPSEC: --lisp-sec sends protected Map-Requests; a
// Map-Resolver that answers them unsigned (the test responder does not do
// LISP-SEC) gets no reply counted: every answer is bad-auth, exit 1.
func TestBenchRequestLISPSEC(t *testing.T) {
	mr := newResponder(t, lisptest.ResponderOptions{})
	r := lispctl(t, "bench", "request", "--target", mr.Addr().String(), "--count", "200", "--lisp-sec",
		"--key-id", "2", "--secret", "itr-key", "--drain", "200ms", "--json")
	r.wantCode(t, cli.ExitFailed)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if got["sent"] != 200.0 || got["replies"] != 0.0 || got["bad-auth"] != 200.0 {
		t.Errorf("report:\n%s", r.stdout)
	}
}

func TestBenchNoAnswer(t *testing.T) {
	sink, err := lisptest.NewSink(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	r := lispctl(t, "bench", "request", "--target", sink.Addr().String(), "--count", "100", "--drain", "50ms")
	r.wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stdout, "  lost                  100") || !strings.Contains(r.stderr, "no answer") {
		t.Errorf("stdout:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
}

func TestBenchFlood(t *testing.T) {
	sink, err := lisptest.NewSink(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for _, kind := range []string{"garbage", "bad-auth-register", "mixed"} {
		r := lispctl(t, "bench", "flood", "--target", sink.Addr().String(), "--count", "5000", "--kind", kind, "--json")
		r.wantCode(t, cli.ExitOK)
		var rep struct {
			Sent     uint64  `json:"sent"`
			SendRate float64 `json:"send-rate"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Sent != 5000 || rep.SendRate <= 0 {
			t.Errorf("%s: %v\n%s", kind, err, r.stdout)
		}
	}
	r := lispctl(t, "bench", "flood", "--target", sink.Addr().String(), "--duration", "50ms")
	r.wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "bench flood → ") || !strings.Contains(r.stdout, "Mbit/s") {
		t.Errorf("output:\n%s", r.stdout)
	}
}

func TestBenchSecretFile(t *testing.T) {
	ms := newResponder(t, lisptest.ResponderOptions{Secret: []byte("from-file")})
	f := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := lispctl(t, "bench", "register", "--target", ms.Addr().String(), "--secret-file", f, "--count", "10", "--json")
	r.wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, `"replies": 10,`) {
		t.Errorf("output:\n%s", r.stdout)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "needs a mode"},
		{[]string{"bench", "request"}, "--target"},
		{[]string{"bench", "request", "--target", "x"}, "--target"},
		{[]string{"bench", "request", "--target", "0.0.0.0"}, "unspecified"},
		{[]string{"bench", "register", "--target", "127.0.0.1"}, "--secret"},
		{[]string{"bench", "register", "--target", "127.0.0.1", "--secret", "a", "--secret-file", "b"}, "not both"},
		{[]string{"bench", "register", "--target", "127.0.0.1", "--secret", "a", "--algorithm", "md5"}, "--algorithm"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--eid-len", "33"}, "--eid-len"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--eid-base", "255.255.255.255", "--prefixes", "2"}, "--prefixes"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--prefixes", "0"}, "--prefixes"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--sockets", "0"}, "--sockets"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--rate", "-1"}, "--rate"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--source", "::1"}, "family"},
		{[]string{"bench", "flood", "--target", "127.0.0.1", "--kind", "polite"}, "--kind"},
		{[]string{"bench", "flood", "--target", "127.0.0.1", "--secret", "x"}, "unknown flag"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "extra"}, "no arguments"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--lisp-sec"}, "--secret"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--secret", "k"}, "go with --lisp-sec"},
		{[]string{"bench", "request", "--target", "127.0.0.1", "--lisp-sec", "--secret", "a", "--secret-file", "b"}, "not both"},
	} {
		r := lispctl(t, c.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
