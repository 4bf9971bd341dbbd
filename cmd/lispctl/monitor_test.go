package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/daemon"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/xtr"
)

// lockedBuffer is a bytes.Buffer the monitor writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startStoppable runs a daemon from yaml (written as dir/name.yaml) until
// the returned stop is called or the test ends.
func startStoppable(t *testing.T, dir, name, yaml string) (*daemon.Daemon, func()) {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	yaml = lisptest.WithStateDirectory(t, yaml, filepath.Join(dir, name))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	n := lisptest.StartFile(t, path, func(c *config.Config) (*daemon.Daemon, error) {
		return daemon.New(c, daemon.Options{DataPlane: xtr.NopDataPlane{}})
	})
	return n.D, n.Stop
}

// TestMonitorShowsTheStory is acceptance 3 of issue 17: lispctl monitor,
// watching a Map-Server and an ITR, prints a registration, the resolution
// of the EID, its move to another xTR and the failure of the first
// locator, in that order, each on a timestamped line.
func TestMonitorShowsTheStory(t *testing.T) {
	a := lisptest.LoopbackAddrs(t, 4, 4342)
	msA, itrA, etr2A, etr3A := a[0], a[1], a[2], a[3]
	dir := t.TempDir()
	msSock, itrSock := filepath.Join(dir, "ms.sock"), filepath.Join(dir, "itr.sock")
	startStoppable(t, dir, "ms", fmt.Sprintf(`
admin: {socket: %s}
control: {addresses: [%s], port: 4342}
map-server:
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
    - name: dc2
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k2}]
      eid-prefixes: [{prefix: 203.0.113.0/24}]
map-resolver: {}
`, msSock, msA))
	itr, _ := startStoppable(t, dir, "itr", fmt.Sprintf(`
admin: {socket: %s}
control: {addresses: [%s], port: 4342}
xtr:
  etr: true
  itr: true
  rloc-probing: {interval: 1s}
  map-resolvers: [%s]
  map-servers: [{address: %s, key-id: 1, algorithm: hmac-sha-256-128, secret: k}]
  database:
    - eid-prefix: 198.51.100.0/24
      locators: [{address: %s, priority: 1, weight: 100}]
`, itrSock, itrA, msA, msA, itrA))

	out := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"--socket", msSock, "monitor", "--also", itrSock, "--filter", "registration,map-cache,locator"},
			streams{in: strings.NewReader(""), out: out, err: out, getenv: func(string) string { return "" }, ctx: ctx})
	}()
	defer func() {
		cancel()
		if c := <-code; c != cli.ExitOK {
			t.Errorf("monitor exit code %d:\n%s", c, out.String())
		}
	}()
	// Both streams are open once each daemon counts a subscription.
	lisptest.Eventually(t, 5*time.Second, func() bool {
		return subscriptions(t, msSock) == 1 && subscriptions(t, itrSock) == 1
	}, "monitor never subscribed")

	etrYAML := func(sock string, addr netip.Addr, siteID int) string {
		return fmt.Sprintf(`
admin: {socket: %s}
control: {addresses: [%s], port: 4342}
xtr:
  etr: true
  site-id: %d
  map-servers: [{address: %s, key-id: 1, algorithm: hmac-sha-256-128, secret: k2, proxy-reply: true}]
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: %s, priority: 1, weight: 100}]
`, sock, addr, siteID, msA, addr)
	}
	// 1. Registration.
	_, stopETR2 := startStoppable(t, dir, "etr2", etrYAML(filepath.Join(dir, "etr2.sock"), etr2A, 1))
	waitLine(t, out, "ms: registration-new eid=203.0.113.0/24 site=dc2 peer="+etr2A.String())
	// 2. Resolution at the ITR.
	itr.XTR().Miss(0, netip.MustParseAddr("203.0.113.7"))
	waitLine(t, out, "itr: map-cache-install eid=203.0.113.0/24 locators="+etr2A.String())
	// 3. The prefix moves to an xTR of another site-ID.
	startStoppable(t, dir, "etr3", etrYAML(filepath.Join(dir, "etr3.sock"), etr3A, 2))
	waitLine(t, out, "ms: registration-moved eid=203.0.113.0/24 from-site=dc2 site=dc2 peer="+etr3A.String())
	// 4. The first ETR dies; the ITR's probes to it go unanswered.
	stopETR2()
	waitLine(t, out, "itr: locator-down rloc="+etr2A.String())

	order := []string{"registration-new", "map-cache-install", "registration-moved", "locator-down"}
	text := out.String()
	at := 0
	for _, want := range order {
		i := strings.Index(text[at:], want)
		if i < 0 {
			t.Fatalf("%q not after the previous events:\n%s", want, text)
		}
		at += i
	}
	for line := range strings.Lines(text) {
		if _, err := time.Parse(time.RFC3339, strings.Fields(line)[0]); err != nil {
			t.Errorf("line does not start with its time: %q", line)
		}
	}

	// --json prints one object per line, with the history asked for.
	r := lispctl(t, "--socket", msSock, "monitor", "--json", "--history", "1024", "--filter", "bogus")
	r.wantCode(t, cli.ExitUsage)
	jctx, jcancel := context.WithCancel(context.Background())
	jout := &lockedBuffer{}
	jcode := make(chan int, 1)
	go func() {
		jcode <- run([]string{"--socket", msSock, "monitor", "--json", "--history", "1024", "--filter", "registration-moved"},
			streams{in: strings.NewReader(""), out: jout, err: jout, getenv: func(string) string { return "" }, ctx: jctx})
	}()
	lisptest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(jout.String(), "\n") }, "no history from --json")
	jcancel()
	if c := <-jcode; c != cli.ExitOK {
		t.Errorf("monitor --json exit %d: %s", c, jout.String())
	}
	var e adminapi.Event
	if err := json.Unmarshal([]byte(strings.SplitN(jout.String(), "\n", 2)[0]), &e); err != nil ||
		e.Type != adminapi.EventRegistrationMoved || e.EIDPrefix.String() != "203.0.113.0/24" || e.Peer != etr3A || e.Node != "" {
		t.Errorf("monitor --json: %+v %v\n%s", e, err, jout.String())
	}
}

// subscriptions reads how many event streams the daemon at sock opened
// (lisp_events_subscriptions_total).
func subscriptions(t *testing.T, sock string) int {
	t.Helper()
	cs, err := adminapi.Query(context.Background(), sock, time.Second, (*adminapi.Client).Statistics)
	if err != nil {
		return -1
	}
	for _, c := range cs {
		if c.Subsystem == "events" && c.Name == "subscriptions" {
			return int(c.Value)
		}
	}
	return -1
}

// waitLine waits until the monitor's output has a line containing want.
func waitLine(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	lisptest.Eventually(t, 10*time.Second, func() bool { return strings.Contains(out.String(), want) },
		"monitor never printed "+want+"\n"+out.String())
}
