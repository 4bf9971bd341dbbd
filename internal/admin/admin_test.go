package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/stats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newServer returns a server with one route, closed when the test ends.
func newServer(t *testing.T) *admin.Server {
	t.Helper()
	s := admin.New(slog.New(slog.DiscardHandler))
	s.HandleJSON("GET /v1/ping", func(*http.Request) (any, error) { return map[string]string{"pong": "yes"}, nil })
	t.Cleanup(s.Close)
	return s
}

// get sends GET path to the API on the unix socket at sock and returns the
// status, Content-Type and body.
func get(t *testing.T, sock, path string) (int, string, []byte) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true, // no idle connection outlives the test
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := hc.Get("http://lispd" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// sockPath is a socket path in a directory ListenUnix has to create.
func sockPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "run", "lispd", "lispd.sock")
}

func TestListenUnixMode(t *testing.T) {
	sock := sockPath(t)
	before := syscall.Umask(0o022)
	syscall.Umask(before)

	s := newServer(t)
	if err := s.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	after := syscall.Umask(before)
	if after != before {
		t.Errorf("umask %#o after ListenUnix, was %#o", after, before)
	}
	if code, _, body := get(t, sock, "/v1/ping"); code != http.StatusOK || !strings.Contains(string(body), `"pong": "yes"`) {
		t.Errorf("GET /v1/ping = %d %s", code, body)
	}

	// Close stops serving: the socket no longer answers.
	s.Close()
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Error("socket still accepts connections after Close")
	}
}

func TestListenUnixReplacesStaleSocket(t *testing.T) {
	sock := sockPath(t)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	// A socket file left behind by a lispd that died: nobody listens.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	s := newServer(t)
	if err := s.ListenUnix(sock); err != nil {
		t.Fatalf("ListenUnix over a stale socket: %v", err)
	}
	if code, _, body := get(t, sock, "/v1/ping"); code != http.StatusOK {
		t.Errorf("GET /v1/ping = %d %s", code, body)
	}
}

func TestListenUnixRefusesLiveSocket(t *testing.T) {
	sock := sockPath(t)
	first := newServer(t)
	if err := first.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}
	second := newServer(t)
	err := second.ListenUnix(sock)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("ListenUnix on a socket in use = %v, want an in-use error", err)
	}
	// The running one is untouched.
	if code, _, body := get(t, sock, "/v1/ping"); code != http.StatusOK {
		t.Errorf("first server after the refused second: GET /v1/ping = %d %s", code, body)
	}
}

func TestListenUnixRefusesNonSocket(t *testing.T) {
	sock := sockPath(t)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock, []byte("not a socket\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	err := s.ListenUnix(sock)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("ListenUnix on a regular file = %v, want a not-a-socket error", err)
	}
	if b, err := os.ReadFile(sock); err != nil || string(b) != "not a socket\n" {
		t.Errorf("the file was changed: %q, %v", b, err)
	}
}

func TestHandleJSON(t *testing.T) {
	type site struct {
		Name     string   `json:"name"`
		Prefixes []string `json:"prefixes"`
	}
	s := newServer(t)
	s.HandleJSON("GET /v1/things", func(*http.Request) (any, error) {
		return site{Name: "dc1", Prefixes: []string{"198.51.100.0/24"}}, nil
	})
	s.HandleJSON("GET /v1/query", func(r *http.Request) (any, error) {
		switch r.URL.Query().Get("fail") {
		case "missing":
			return nil, adminapi.NotFound("no site %q", "dc9")
		case "bad":
			return nil, adminapi.BadRequest("bad instance-id %q", "x")
		case "wrapped":
			return nil, errors.Join(errors.New("while resolving"), adminapi.NotFound("no mapping"))
		case "internal":
			return nil, errors.New("map-cache is gone")
		}
		return []int{1, 2}, nil
	})
	sock := sockPath(t)
	if err := s.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}

	code, ctype, body := get(t, sock, "/v1/things")
	if code != http.StatusOK || ctype != "application/json" {
		t.Errorf("GET /v1/things: %d %q", code, ctype)
	}
	var got site
	if err := json.Unmarshal(body, &got); err != nil || got.Name != "dc1" || len(got.Prefixes) != 1 || got.Prefixes[0] != "198.51.100.0/24" {
		t.Errorf("GET /v1/things body %s (%v)", body, err)
	}

	for _, tc := range []struct {
		query  string
		status int
		msg    string
	}{
		{"?fail=missing", http.StatusNotFound, `no site "dc9"`},
		{"?fail=bad", http.StatusBadRequest, `bad instance-id "x"`},
		{"?fail=wrapped", http.StatusNotFound, "while resolving\nno mapping"},
		{"?fail=internal", http.StatusInternalServerError, "map-cache is gone"},
	} {
		code, ctype, body := get(t, sock, "/v1/query"+tc.query)
		var e map[string]string
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s: body %q is not JSON: %v", tc.query, body, err)
		}
		if code != tc.status || ctype != "application/json" || len(e) != 1 || e["error"] != tc.msg {
			t.Errorf("%s: %d %q %q, want %d application/json {\"error\": %q}", tc.query, code, ctype, body, tc.status, tc.msg)
		}
	}
	if code, _, body := get(t, sock, "/v1/query"); code != http.StatusOK || strings.Join(strings.Fields(string(body)), "") != "[1,2]" {
		t.Errorf("GET /v1/query = %d %s", code, body)
	}
	// An unknown path or method is the mux's 404/405, not a handler's.
	if code, _, _ := get(t, sock, "/v1/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /v1/nothing = %d, want 404", code)
	}
}

func TestListenMetrics(t *testing.T) {
	reg := stats.NewRegistry()
	reg.Counter(stats.Desc{Subsystem: "mapserver", Name: "registers", Help: "Map-Registers received.",
		Labels: [][2]string{{"result", "accepted"}}}).Add(3)
	reg.Counter(stats.Desc{Subsystem: "mapserver", Name: "registers", Help: "Map-Registers received.",
		Labels: [][2]string{{"result", "auth-failed"}}}).Inc()
	reg.Counter(stats.Desc{Subsystem: "dataplane", Name: "encapsulated", Help: "Packets encapsulated."}).Add(42)

	s := newServer(t)
	addr, err := s.ListenMetrics("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	fetch := func(path string) (int, string) {
		t.Helper()
		resp, err := hc.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	code, body := fetch("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		"# HELP lisp_mapserver_registers_total Map-Registers received.",
		"# TYPE lisp_mapserver_registers_total counter",
		`lisp_mapserver_registers_total{result="accepted"} 3`,
		`lisp_mapserver_registers_total{result="auth-failed"} 1`,
		"lisp_dataplane_encapsulated_total 42",
		"go_goroutines ", // the Go runtime collector is there too
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Counters are read at scrape time, not copied at start.
	reg.Counter(stats.Desc{Subsystem: "dataplane", Name: "encapsulated", Help: "Packets encapsulated."}).Inc()
	if _, body := fetch("/metrics"); !strings.Contains(body, "lisp_dataplane_encapsulated_total 43\n") {
		t.Error("/metrics did not show the counter's new value 43")
	}
	// pprof has a listener of its own (admin.pprof), never this one.
	if code, _ := fetch("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the metrics listener = %d, want 404", code)
	}
}

// TestListenPProf: /debug/pprof is served on its own listener, without
// /metrics, and a listener beyond loopback is logged (unauthenticated).
func TestListenPProf(t *testing.T) {
	var logs strings.Builder
	s := admin.New(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(s.Close)
	addr, err := s.ListenPProf("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for path, want := range map[string]int{"/debug/pprof/": http.StatusOK, "/metrics": http.StatusNotFound} {
		resp, err := hc.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("loopback listener logged %q", logs.String())
	}
	// The wildcard address reaches beyond this host.
	if _, err := s.ListenMetrics(":0", stats.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListenPProf("[::]:0"); err != nil {
		t.Skip("no IPv6:", err)
	}
	for _, want := range []string{"listener=metrics", "listener=pprof", "level=WARN"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %q", logs.String(), want)
		}
	}
}

func TestListenMetricsBadAddress(t *testing.T) {
	s := newServer(t)
	if _, err := s.ListenMetrics("192.0.2.1:bad", stats.NewRegistry()); err == nil {
		t.Error("ListenMetrics on a bad address succeeded")
	}
}
