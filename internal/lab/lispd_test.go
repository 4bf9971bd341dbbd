package lab

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/adminapi"
)

// fakeLispd serves the admin API's status and database on a unix socket,
// answering what status and database hold at the time of each request.
type fakeLispd struct {
	socket   string
	prefixes atomic.Int64
	msState  atomic.Value // string: the state of the one Map-Server
}

func newFakeLispd(t *testing.T) *fakeLispd {
	f := &fakeLispd{socket: filepath.Join(t.TempDir(), "lispd.sock")}
	f.msState.Store("registering")
	srv := admin.New(slog.New(slog.DiscardHandler))
	srv.HandleJSON("GET /v1/status", func(*http.Request) (any, error) {
		return map[string]any{"registered-prefixes": f.prefixes.Load()}, nil
	})
	srv.HandleJSON("GET /v1/database", func(*http.Request) (any, error) {
		return map[string]any{"map-servers": []map[string]any{
			{"address": "198.18.1.2", "want-map-notify": true, "state": f.msState.Load()},
		}}, nil
	})
	if err := srv.ListenUnix(f.socket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return f
}

// running is a LispdProc for a process that has not exited, on socket.
func running(node, socket, log string) (*LispdProc, func()) {
	p := &Proc{Node: node, Name: "lispd", LogPath: log, done: make(chan struct{})}
	return &LispdProc{Proc: p, Socket: socket}, func() { close(p.done) }
}

func TestLispdWaits(t *testing.T) {
	f := newFakeLispd(t)
	log := filepath.Join(t.TempDir(), "n1-lispd.log")
	var lines []string
	for i := range 20 {
		lines = append(lines, "line "+string(rune('a'+i)))
	}
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, exit := running("n1", f.socket, log)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := p.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if got := p.LogTail(3); got != "line r\nline s\nline t" {
		t.Errorf("LogTail(3) = %q", got)
	}

	// Registration: pending until the Map-Server's state says so.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	err := p.WaitRegistered(short)
	cancelShort()
	var nr *NotRegisteredError
	if !errors.As(err, &nr) || err.Error() != "node n1 has not registered with 198.18.1.2 (registering)" {
		t.Errorf("WaitRegistered while registering: %v", err)
	}
	go func() { time.Sleep(100 * time.Millisecond); f.msState.Store("registered") }()
	if err := p.WaitRegistered(ctx); err != nil {
		t.Errorf("WaitRegistered: %v", err)
	}

	// Prefixes: exactly n.
	f.prefixes.Store(3)
	short, cancelShort = context.WithTimeout(ctx, time.Second)
	err = p.WaitPrefixes(short, 2)
	cancelShort()
	if err == nil || !strings.Contains(err.Error(), "node n1: lispd: 3 EID prefixes registered, want 2") {
		t.Errorf("WaitPrefixes(2) with 3: %v", err)
	}
	if err := p.WaitPrefixes(ctx, 3); err != nil {
		t.Errorf("WaitPrefixes(3): %v", err)
	}

	// Nothing answers: WaitReady gives up when ctx does, or when the
	// process exits, and shows the end of the log.
	gone, exitGone := running("n1", filepath.Join(t.TempDir(), "none.sock"), log)
	short, cancelShort = context.WithTimeout(ctx, time.Second)
	err = gone.WaitReady(short)
	cancelShort()
	if err == nil || !strings.HasPrefix(err.Error(), "node n1: lispd: no answer on ") || !strings.HasSuffix(err.Error(), "\n  line s\n  line t") {
		t.Errorf("WaitReady with no answer: %v", err)
	}
	exitGone()
	if err := gone.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "exited before answering") || !strings.Contains(err.Error(), "end of "+log+":\n  line f\n") {
		t.Errorf("WaitReady after the process exited: %v", err)
	}
	exit()
}

// StartLispd runs the binary with --config in the node; one that fails
// is reported with its log.
func TestStartLispd(t *testing.T) {
	l := NewTest(t, lineTopology())
	bad := filepath.Join(t.TempDir(), "lispd")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho \"lispd: cannot start: $1 $2\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartLispd("router", "/x.yaml", LispdOptions{}); err == nil {
		t.Error("StartLispd without a binary succeeded")
	}
	p, err := l.StartLispd("router", "/x.yaml", LispdOptions{Binary: bad})
	if err != nil {
		t.Fatal(err)
	}
	if p.Socket != l.SocketPath("router") || p.LogPath != l.LogPath("router", "lispd") {
		t.Errorf("socket %s, log %s", p.Socket, p.LogPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = p.WaitReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "node router: lispd: exited before answering") ||
		!strings.Contains(err.Error(), "lispd: cannot start: --config /x.yaml") {
		t.Errorf("WaitReady of a lispd that fails: %v", err)
	}
}

// WithDataPlane sets the xTR section's data plane unless the section
// chooses one; nothing else changes.
func TestWithDataPlane(t *testing.T) {
	cfg := "control: {port: 4342}\nxtr:\n  itr: true\n  etr: true\nmap-server: {}\n"
	got := WithDataPlane(cfg, "kernel")
	want := "control: {port: 4342}\nxtr:\n  data-plane: kernel\n  itr: true\n  etr: true\nmap-server: {}\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, c := range []string{
		"xtr:\n  data-plane: none\n  itr: true\n", // chosen already
		"map-server: {}\n",                        // no xTR
		"xtr: {itr: true}\n",                      // a flow mapping
	} {
		if got := WithDataPlane(c, "kernel"); got != c {
			t.Errorf("%q became %q", c, got)
		}
	}
	if got := WithDataPlane(cfg, ""); got != cfg {
		t.Errorf("no mode: %q", got)
	}
}

// The counter line keeps what says where packets went: non-zero packet
// counters of both data paths with their label values, and leaves out
// bytes, zeros and the other subsystems.
func TestDataPlaneLine(t *testing.T) {
	cs := []adminapi.Counter{
		{Subsystem: "dataplane", Name: "packets_encapsulated", Value: 7},
		{Subsystem: "dataplane", Name: "bytes_encapsulated", Value: 700},
		{Subsystem: "dataplane", Name: "rloc_bytes_encapsulated", Labels: map[string]string{"rloc": "198.18.4.2"}, Value: 90},
		{Subsystem: "dataplane", Name: "rloc_packets_encapsulated", Labels: map[string]string{"rloc": "198.18.4.2"}, Value: 3},
		{Subsystem: "dataplane", Name: "packets_dropped", Labels: map[string]string{"reason": "tun-read-overflow"}, Value: 0},
		{Subsystem: "dataplane_kernel", Name: "packets_punted", Labels: map[string]string{"reason": "no-map-cache-entry"}, Value: 1},
		{Subsystem: "map_server", Name: "map_registers_received", Value: 5},
	}
	want := "packets_encapsulated=7 rloc_packets_encapsulated{198.18.4.2}=3 kernel_packets_punted{no-map-cache-entry}=1"
	if got := dataPlaneLine(cs); got != want {
		t.Errorf("dataPlaneLine = %q\nwant %q", got, want)
	}
}
