package web

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/daemon"
	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/web"
)

// node is one in-process lispd of the test and how to stop it early.
type node struct {
	d    *daemon.Daemon
	sock string
	url  string // the web view
	stop func()
}

// startNode runs lispd from yaml (with an admin socket and the web view
// on loopback port 0 added) in dir until stop or the end of the test.
func startNode(t *testing.T, dir, name, yaml string, devs *daemon.Devices) node {
	t.Helper()
	sock := filepath.Join(dir, name+".sock")
	yaml = fmt.Sprintf("admin: {socket: %s, web: \"127.0.0.1:0\"}\n", sock) + yaml
	yaml = lisptest.WithStateDirectory(t, yaml, filepath.Join(dir, name))
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	n := lisptest.StartFile(t, path, func(c *config.Config) (*daemon.Daemon, error) {
		return daemon.New(c, daemon.Options{Devices: devs})
	})
	st, err := adminapi.Query(context.Background(), sock, 5*time.Second, (*adminapi.Client).Status)
	if err != nil {
		t.Fatal(err)
	}
	if st.Web == "" {
		t.Fatalf("%s: status names no web view", name)
	}
	return node{d: n.D, sock: sock, url: "http://" + st.Web, stop: n.Stop}
}

// loopbackLab is a Map-Server/Map-Resolver, an xTR of site dc1 with the userspace
// data plane in memory, and the ETR of site dc2 it sends traffic to: real
// daemons on loopback addresses of the test's own, no root needed.
type loopbackLab struct {
	ms, xtr, etr2 node
	etr3Addr      netip.Addr
	msAddr        netip.Addr
	dir           string
	net           *dptest.Net
	xtrTUN        *dptest.TUN
}

func startLab(t *testing.T) *loopbackLab {
	t.Helper()
	a := lisptest.LoopbackAddrs(t, 4, 4342)
	l := &loopbackLab{msAddr: a[0], etr3Addr: a[3], dir: t.TempDir(), net: dptest.NewNet()}
	devices := func(rloc netip.Addr, keep **dptest.TUN) *daemon.Devices {
		return &daemon.Devices{
			TUN: func(_ uint32, mtu int) (dataplane.TUN, error) {
				tun := dptest.NewTUN(mtu, 16)
				if keep != nil {
					*keep = tun
				}
				return tun, nil
			},
			Underlay: l.net.Attach(16, rloc),
		}
	}
	l.ms = startNode(t, l.dir, "ms", fmt.Sprintf(`
control: {addresses: [%s], port: 4342}
map-server:
  sites:
    - name: dc1
      description: headquarters
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k1}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
    - name: dc2
      description: branch office
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: k2}]
      eid-prefixes: [{prefix: 203.0.113.0/24}]
map-resolver: {}
`, a[0]), nil)
	l.xtr = startNode(t, l.dir, "xtr", fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  itr: true
  etr: true
  rloc-probing: {interval: 1s}
  map-resolvers: [%[1]s]
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: k1}]
  database:
    - eid-prefix: 198.51.100.0/24
      locators: [{address: %[2]s, priority: 1, weight: 100}]
`, a[0], a[1]), devices(a[1], &l.xtrTUN))
	l.etr2 = l.startETR(t, "etr2", a[2], 1, devices(a[2], nil))
	lisptest.Eventually(t, 10*time.Second, func() bool { return l.ms.d.MapServer().Registrations() == 2 }, "the xTRs never registered")
	return l
}

// startETR runs an ETR of site dc2 at addr with the given site-ID.
func (l *loopbackLab) startETR(t *testing.T, name string, addr netip.Addr, siteID int, devs *daemon.Devices) node {
	t.Helper()
	return startNode(t, l.dir, name, fmt.Sprintf(`
control: {addresses: [%[2]s], port: 4342}
xtr:
  etr: true
  site-id: %[3]d
  map-servers: [{address: %[1]s, key-id: 1, algorithm: hmac-sha-256-128, secret: k2, proxy-reply: true}]
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: %[2]s, priority: 1, weight: 100}]
`, l.msAddr, addr, siteID), devs)
}

// traffic sends packets from the xTR's site to dc2 until ctx ends, so
// that the data plane has something to draw.
func (l *loopbackLab) traffic(ctx context.Context) {
	pkt := dptest.UDPv4(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.7"), 40000, 7, []byte("web view"))
	for {
		for range 20 {
			l.xtrTUN.Inject(pkt)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// timelineShows opens url, makes an event of type typ happen (cause)
// and checks that the page's live timeline shows it within 2 s of its
// publication on bus, without a reload.
func (tb *tab) timelineShows(url string, bus *events.Bus, typ string, cause func()) {
	tb.t.Helper()
	tb.visit(url)
	eval[bool](tb, "window.notReloaded = true")
	sub := bus.Subscribe(adminapi.EventQuery{Types: []string{typ}}, 0)
	defer sub.Close()
	cause()
	var e adminapi.Event
	select {
	case e = <-sub.C():
	case <-time.After(10 * time.Second):
		tb.t.Fatalf("no %s event within 10 s", typ)
	}
	tb.waitJS(fmt.Sprintf(`document.querySelector('#timeline li[data-type=%q]') !== null`, typ), 2*time.Second-time.Since(e.Time),
		typ+" is not in the timeline within 2 s")
	tb.t.Logf("%s shown %v after it happened", typ, time.Since(e.Time))
	if !eval[bool](tb, "window.notReloaded === true") {
		tb.t.Error("the page reloaded")
	}
}

// TestWebView is acceptance 1 of issue 17: a real headless Chromium loads
// every page of the web view of a Map-Server and of an xTR with no console
// error or warning; the pages show the registered site and the map-cache
// entry the test made; a move (Map-Server) and a locator going down (xTR)
// appear in the live timeline within 2 s of happening, without a reload;
// every page fits a phone's width; screenshots at desktop and phone widths
// are saved in the artefacts directory.
func TestWebView(t *testing.T) {
	tb := newTab(t)
	l := startLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); l.traffic(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	lisptest.Eventually(t, 10*time.Second, func() bool {
		mc := l.xtr.d.XTR().MapCache()
		return len(mc) == 1 && mc[0].EIDPrefix.String() == "203.0.113.0/24"
	}, "the xTR never cached dc2's mapping")
	lisptest.Eventually(t, 10*time.Second, func() bool {
		p := l.xtr.d.XTR().RLOCProbing()
		return len(p) == 1 && p[0].Replies > 1
	}, "the xTR never probed dc2's RLOC")

	// Every page of both nodes, at both widths.
	for _, n := range []struct {
		name string
		node node
		want map[string][]string // page -> texts it must show
	}{
		{"ms", l.ms, map[string][]string{
			"/":                {"map-server", "map-resolver", "registration-new"},
			"/map-server.html": {"dc1", "dc2", "203.0.113.0/24", "198.51.100.0/24", "branch office", l.etr2.d.ControlAddrs()[0].Addr().String()},
			"/counters.html":   {"lisp_map_server_registers_accepted_total"},
		}},
		{"xtr", l.xtr, map[string][]string{
			"/":         {"xtr", "map-cache-install"},
			"/xtr.html": {"203.0.113.0/24", l.etr2.d.ControlAddrs()[0].Addr().String(), "registered", "encapsulated pkt/s"},
		}},
	} {
		for page, wants := range n.want {
			for _, v := range viewports {
				tb.setViewport(v)
				tb.visit(n.node.url + page)
				if page == "/xtr.html" {
					// The charts need two polls to draw a rate.
					tb.waitJS(`document.querySelector("#traffic-chart path") !== null`, 10*time.Second, "no traffic line")
					tb.waitJS(`document.querySelector("#rloc-traffic-chart path") !== null`, 10*time.Second, "no per-RLOC traffic line")
				}
				for _, w := range wants {
					if !strings.Contains(eval[string](tb, "document.body.innerText"), w) {
						t.Errorf("%s%s (%s) does not show %q", n.name, page, v.name, w)
					}
				}
				if v.mobile && !tb.fitsWidth() {
					t.Errorf("%s%s is wider than a phone", n.name, page)
				}
				t.Logf("screenshot %s", tb.screenshot(n.name+"-"+slug(page)+"-"+v.name))
			}
		}
	}
	for _, p := range web.Pages {
		if _, ok := map[string]bool{"/": true, "/map-server.html": true, "/xtr.html": true, "/counters.html": true}[p]; !ok {
			t.Errorf("page %s is not tested", p)
		}
	}

	// A move appears in the Map-Server's timeline without a reload.
	tb.setViewport(viewports[0])
	tb.timelineShows(l.ms.url+"/map-server.html", l.ms.d.Events(), adminapi.EventRegistrationMoved, func() {
		l.startETR(t, "etr3", l.etr3Addr, 2, &daemon.Devices{
			TUN:      func(_ uint32, mtu int) (dataplane.TUN, error) { return dptest.NewTUN(mtu, 16), nil },
			Underlay: l.net.Attach(16, l.etr3Addr),
		})
	})
	tb.waitJS(`document.getElementById("ms-map").textContent.includes("site-id 2")`, 5*time.Second, "the map does not show the new xTR")
	t.Logf("screenshot %s", tb.screenshot("ms-map-server-after-move-desktop"))
	if os.Getenv("LISPD_README_SHOT") != "" {
		tb.setViewport(viewport{"readme", 1100, 760, false})
		tb.visit(l.ms.url + "/map-server.html")
		png := tb.screenshot("readme")
		b, err := os.ReadFile(png)
		if err == nil {
			err = os.WriteFile("../../docs/web-view.png", b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		tb.setViewport(viewports[0])
	}

	// A locator going down appears in the xTR's timeline without a reload.
	tb.timelineShows(l.xtr.url+"/xtr.html", l.xtr.d.Events(), adminapi.EventLocatorDown, l.etr2.stop)
	tb.waitJS(`document.getElementById("rloc-probing").innerText.includes("down")`, 5*time.Second, "the probing table does not show the RLOC down")
	t.Logf("screenshot %s", tb.screenshot("xtr-xtr-after-locator-down-desktop"))

	if p := tb.consoleProblems(); len(p) > 0 {
		t.Errorf("console:\n%s", strings.Join(p, "\n"))
	}
}
