package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/events"
)

// keepAlive is how often an idle stream gets a comment line, so that a
// reader behind a proxy, or one that went away, is noticed.
const keepAlive = 15 * time.Second

// HandleEvents serves adminapi.PathEvents from bus: one JSON event per
// line, or server-sent events for a client that accepts
// text/event-stream (the web view's EventSource). Each request has its own
// bounded subscription: a reader that falls behind loses events (counted,
// and told with an events-lost event), the publishers never wait.
func (s *Server) HandleEvents(bus *events.Bus) {
	s.mux.HandleFunc("GET "+adminapi.PathEvents, func(w http.ResponseWriter, r *http.Request) {
		q, err := adminapi.ParseEventQuery(r.URL.Query())
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(adminapi.ErrorBody{Error: err.Error()})
			return
		}
		sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
		if sse {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/x-ndjson")
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		sub := bus.Subscribe(q, 0)
		defer sub.Close()
		tick := time.NewTicker(keepAlive)
		defer tick.Stop()
		enc := json.NewEncoder(w)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-s.closing:
				return
			case <-tick.C:
				if sse {
					_, err = w.Write([]byte(": keep-alive\n\n"))
				} else {
					_, err = w.Write([]byte("\n"))
				}
			case e := <-sub.C():
				if sse {
					_, err = w.Write([]byte("data: "))
				}
				if err == nil {
					err = enc.Encode(e) // ends with '\n'
				}
				if err == nil && sse {
					_, err = w.Write([]byte("\n"))
				}
			}
			if err == nil {
				err = rc.Flush()
			}
			if err != nil {
				return
			}
		}
	})
}
