package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lisptest"
)

// dashboardFile is the Grafana dashboard shipped for the metrics below.
const dashboardFile = "../../packaging/grafana/lispd.json"

// series is what one /metrics exposition holds: each metric name with the
// label names its samples carry.
type series map[string]map[string]bool

// scrape reads http://addr/metrics into s.
func (s series) scrape(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	labelName := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for line := range strings.Lines(string(body)) {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(strings.Fields(line)[0], "{")
		if s[name] == nil {
			s[name] = map[string]bool{}
		}
		for _, m := range labelName.FindAllStringSubmatch(rest, -1) {
			s[name][m[1]] = true
		}
	}
}

// dashboardQueries returns every PromQL expression and legend of the
// dashboard's panels, rows included.
func dashboardQueries(t *testing.T) (exprs, legends []string) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr   string `json:"expr"`
			Legend string `json:"legendFormat"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Title  string          `json:"title"`
		Panels json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var walk func(raw json.RawMessage)
	walk = func(raw json.RawMessage) {
		var ps []panel
		if err := json.Unmarshal(raw, &ps); err != nil {
			t.Fatalf("%s: panels: %v", dashboardFile, err)
		}
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q has a target without a query", p.Title)
				}
				exprs, legends = append(exprs, tg.Expr), append(legends, tg.Legend)
			}
			if len(p.Panels) > 0 {
				b, _ := json.Marshal(p.Panels)
				walk(b)
			}
		}
	}
	walk(d.Panels)
	return exprs, legends
}

// TestGrafanaDashboardMetricsExist is acceptance 5 (first half) of issue
// 17: every metric the shipped Grafana dashboard queries, and every label
// it groups by or shows in a legend, is on /metrics of running daemons — a
// Map-Server/Map-Resolver and an ITR and ETR with the userspace data plane
// (in memory) and RLOC probing. A renamed metric fails it.
func TestGrafanaDashboardMetricsExist(t *testing.T) {
	addrs := lisptest.LoopbackAddrs(t, 3, 4342)
	msAddr, etrRLOC, itrRLOC := addrs[0], addrs[1], addrs[2]
	rlocNet := dptest.NewNet()
	devices := func(rloc netip.Addr) *Devices {
		return &Devices{
			TUN:      func(_ uint32, mtu int) (dataplane.TUN, error) { return dptest.NewTUN(mtu, 16), nil },
			Underlay: rlocNet.Attach(16, rloc),
		}
	}
	dir := t.TempDir()
	n := 0
	start := func(yaml string, devs *Devices) *Daemon {
		n++
		admin := fmt.Sprintf(`admin: {metrics: "127.0.0.1:0", socket: %s/%d.sock}`, dir, n)
		return lisptest.Start(t, admin+yaml, newWith(Options{Devices: devs})).D
	}
	ms := start(fmt.Sprintf(`
control: {addresses: [%[1]s], port: 4342}
map-server:
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
map-resolver: {}
`, msAddr), nil)
	etr := start(fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
  database: [{eid-prefix: 198.51.100.0/24, locators: [{address: %[2]s}]}]
`, msAddr, etrRLOC), devices(etrRLOC))
	itr := start(fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  itr: true
  rloc-probing: {interval: 1s}
  map-resolvers: [%[1]s]
  database: [{eid-prefix: 203.0.113.0/24, locators: [{address: %[2]s}]}]
`, msAddr, itrRLOC), devices(itrRLOC))
	lisptest.Eventually(t, 5*time.Second, func() bool { return ms.MapServer().Registrations() == 1 }, "ETR never registered")
	itr.XTR().Miss(0, netip.MustParseAddr("198.51.100.20"))
	lisptest.Eventually(t, 10*time.Second, func() bool {
		p := itr.XTR().RLOCProbing()
		return len(p) == 1 && p[0].Replies > 0
	}, "the ITR never had an answered probe")

	have := series{}
	for _, d := range []*Daemon{ms, etr, itr} {
		have.scrape(t, d.status().Metrics)
	}
	exprs, legends := dashboardQueries(t)
	if len(exprs) < 20 {
		t.Fatalf("the dashboard has only %d queries", len(exprs))
	}
	metric := regexp.MustCompile(`\blisp_[a-z0-9_]+\b`)
	by := regexp.MustCompile(`\bby \(([^)]*)\)`)
	legend := regexp.MustCompile(`\{\{ *([a-zA-Z_][a-zA-Z0-9_]*) *\}\}`)
	for i, e := range exprs {
		names := metric.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("query %q reads no lispd metric", e)
		}
		labels := map[string]bool{"instance": true, "job": true} // added by Prometheus at scrape
		for _, n := range names {
			l, ok := have[n]
			if !ok {
				t.Errorf("query %q: %s is not on /metrics", e, n)
				continue
			}
			for k := range l {
				labels[k] = true
			}
		}
		var used []string
		for _, m := range by.FindAllStringSubmatch(e, -1) {
			for l := range strings.SplitSeq(m[1], ",") {
				used = append(used, strings.TrimSpace(l))
			}
		}
		for _, m := range legend.FindAllStringSubmatch(legends[i], -1) {
			used = append(used, m[1])
		}
		for _, l := range used {
			if !labels[l] {
				t.Errorf("query %q uses label %q, which none of its metrics has", e, l)
			}
		}
	}
}
