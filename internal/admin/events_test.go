package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/stats"
)

// TestEventStream: the typed client reads the events a bus publishes,
// filtered, over the unix socket; a browser gets the same as server-sent
// events on the web listener, which refuses anything but GET; closing the
// server ends the streams.
func TestEventStream(t *testing.T) {
	reg := stats.NewRegistry()
	bus := events.NewBus(nil, reg, 0)
	s := admin.New(slog.New(slog.DiscardHandler))
	s.HandleEvents(bus)
	s.HandleJSON("POST /v1/reload", func(*http.Request) (any, error) { return "reloaded", nil })
	sock := filepath.Join(t.TempDir(), "a.sock")
	if err := s.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}
	addr, err := s.ListenWeb(":0", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr.String(), "127.0.0.1:") {
		t.Errorf("a bare port bound %v, want loopback", addr)
	}

	bus.Publish(adminapi.Event{Type: adminapi.EventRegistered, Site: "old"}) // history
	got := make(chan adminapi.Event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- adminapi.NewClient(sock).Events(ctx, adminapi.EventQuery{Types: []string{"registration"}, History: 5},
			func(e adminapi.Event) error { got <- e; return nil })
	}()
	if e := <-got; e.Site != "old" || e.Seq != 1 {
		t.Errorf("history: %+v", e)
	}
	for bus.Subscribers() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	bus.Publish(adminapi.Event{Type: adminapi.EventLocatorDown}) // filtered out
	bus.Publish(adminapi.Event{Type: adminapi.EventRegistrationMoved, Site: "new"})
	select {
	case e := <-got:
		if e.Type != adminapi.EventRegistrationMoved || e.Site != "new" || e.Seq != 3 {
			t.Errorf("live: %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no live event")
	}

	// Server-sent events on the web listener.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+adminapi.PathEvents+"?history=1", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	var e adminapi.Event
	if err != nil || !strings.HasPrefix(line, "data: ") || json.Unmarshal([]byte(line[len("data: "):]), &e) != nil || e.Seq != 3 {
		t.Errorf("SSE line %q: %v", line, err)
	}
	// The web listener reads only.
	post, err := http.Post("http://"+addr.String()+"/v1/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST on the web listener: %d", post.StatusCode)
	}
	code, _, body := get(t, sock, adminapi.PathEvents+"?type=nonsense")
	if code != http.StatusBadRequest || !strings.Contains(string(body), "unknown event type") {
		t.Errorf("bad filter: %d %s", code, body)
	}

	s.Close()
	select {
	case err := <-streamErr:
		if err == nil || !strings.Contains(err.Error(), "closed the event stream") {
			t.Errorf("stream after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left the stream open")
	}
}
