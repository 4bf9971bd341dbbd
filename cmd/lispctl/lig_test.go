package main

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

func newResponder(t *testing.T, o lisptest.ResponderOptions) *lisptest.Responder {
	t.Helper()
	r, err := lisptest.NewResponder(o)
	if err != nil {
		t.Skipf("no responder on %v: %v", o.Addr, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func port(ap netip.AddrPort) string { return strconv.Itoa(int(ap.Port())) }

func TestLigText(t *testing.T) {
	mr := newResponder(t, lisptest.ResponderOptions{})
	r := lispctl(t, "lig", "198.51.100.20", "--mr", "127.0.0.1", "--port", port(mr.Addr()))
	r.wantCode(t, cli.ExitOK)
	want := regexp.MustCompile(`^Send map-request to 127\.0\.0\.1 for 198\.51\.100\.20 \.\.\.
Received map-reply from 127\.0\.0\.1 with rtt \d+\.\d+ ms

Mapping entry for EID-prefix 198\.51\.100\.0/24, record TTL 1440 minutes, authoritative, action no-action
  Locator     Pri/Wgt  MPri/MWgt  State
  192\.0\.2\.12  1/100    255/0      up
$`)
	if !want.MatchString(r.stdout) {
		t.Errorf("output:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestLigJSONInstanceID(t *testing.T) {
	mr := newResponder(t, lisptest.ResponderOptions{})
	for _, args := range [][]string{
		{"[1000]198.51.100.20", "--mr", mr.Addr().String()},
		{"198.51.100.20", "--instance-id", "1000", "--mr", "127.0.0.1", "--port", port(mr.Addr())},
	} {
		r := lispctl(t, append([]string{"lig", "--json"}, args...)...)
		r.wantCode(t, cli.ExitOK)
		var got map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		for _, k := range []string{"eid", "instance-id", "map-resolver", "replied-by", "rtt-ms", "nonce", "records"} {
			if _, ok := got[k]; !ok {
				t.Errorf("key %q missing:\n%s", k, r.stdout)
			}
		}
		var res ligResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatal(err)
		}
		if res.EID != "198.51.100.20" || res.InstanceID != 1000 || res.MapResolver != "127.0.0.1" ||
			res.RepliedBy != "127.0.0.1" || res.RTTms <= 0 || len(res.Nonce) != 18 || res.Attempts != 1 {
			t.Errorf("%+v", res)
		}
		if len(res.Records) != 1 {
			t.Fatalf("records %+v", res.Records)
		}
		rec := res.Records[0]
		if rec.EIDPrefix != "198.51.100.0/24" || rec.InstanceID != 1000 || rec.TTLMinutes != 1440 || rec.Negative ||
			!rec.Authoritative || rec.Action != "no-action" || len(rec.Locators) != 1 {
			t.Errorf("record %+v", rec)
		}
		if l := rec.Locators[0]; l != (ligLocator{Address: "192.0.2.12", Priority: 1, Weight: 100, MPriority: 255, State: "up"}) {
			t.Errorf("locator %+v", l)
		}
	}
}

func TestLigNegative(t *testing.T) {
	mr := newResponder(t, lisptest.ResponderOptions{Records: func(*wire.MapRequest) []wire.EIDRecord {
		return []wire.EIDRecord{{TTL: 15, MaskLen: 15, Action: wire.ActionNativelyForward,
			EID: wire.AddrFromIP(netip.MustParseAddr("198.18.0.0"))}}
	}})
	r := lispctl(t, "lig", "198.18.1.1", "--mr", mr.Addr().String())
	r.wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stdout, "Mapping entry for EID-prefix 198.18.0.0/15, record TTL 15 minutes, not authoritative, negative, action natively-forward\n") ||
		strings.Contains(r.stdout, "Locator") {
		t.Errorf("output:\n%s", r.stdout)
	}
	r = lispctl(t, "lig", "--json", "198.18.1.1", "--mr", mr.Addr().String())
	r.wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stdout, `"negative": true`) || !strings.Contains(r.stdout, `"action": "natively-forward"`) ||
		!strings.Contains(r.stdout, `"locators": []`) {
		t.Errorf("output:\n%s", r.stdout)
	}
}

func TestLigNoAnswer(t *testing.T) {
	sink, err := lisptest.NewSink(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	r := lispctl(t, "lig", "198.51.100.20", "--mr", sink.Addr().String(), "-c", "2", "-t", "50ms")
	r.wantCode(t, cli.ExitUsage)
	if strings.Count(r.stdout, "Send map-request to 127.0.0.1 for 198.51.100.20 ...\n") != 2 {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "no Map-Reply from 127.0.0.1:") || !strings.Contains(r.stderr, "after 2 attempts") ||
		strings.Contains(r.stderr, "--help") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestLigIPv6(t *testing.T) {
	mr := newResponder(t, lisptest.ResponderOptions{Addr: netip.MustParseAddrPort("[::1]:0")})
	r := lispctl(t, "lig", "2001:db8:1::5", "--mr", mr.Addr().String(), "--source", "::1")
	r.wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "Send map-request to ::1 for 2001:db8:1::5 ...") ||
		!strings.Contains(r.stdout, "EID-prefix 2001:db8:1::/64") {
		t.Errorf("output:\n%s", r.stdout)
	}
}

func TestLigUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lig", "198.51.100.20"}, "--mr ADDR is required"},
		{[]string{"lig", "--mr", "127.0.0.1"}, "lig takes one EID"},
		{[]string{"lig", "www.example.com", "--mr", "127.0.0.1"}, "not an IP address"},
		{[]string{"lig", "[x]198.51.100.20", "--mr", "127.0.0.1"}, "instance ID"},
		{[]string{"lig", "[5]198.51.100.20", "--instance-id", "6", "--mr", "127.0.0.1"}, "has instance ID 5"},
		{[]string{"lig", "198.51.100.20", "--mr", "nowhere"}, "--mr"},
		{[]string{"lig", "198.51.100.20", "--mr", "127.0.0.1:4000", "--port", "5000"}, "--port says 5000"},
		{[]string{"lig", "198.51.100.20", "--mr", "127.0.0.1", "--count", "0"}, "--count"},
		{[]string{"lig", "198.51.100.20", "--mr", "127.0.0.1", "--timeout", "0s"}, "--timeout"},
		{[]string{"lig", "198.51.100.20", "--mr", "127.0.0.1", "--source", "::1"}, "family"},
		{[]string{"lig", "198.51.100.20", "--mr", "127.0.0.1", "--bogus"}, "unknown flag"},
	} {
		r := lispctl(t, c.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
