// Package admin is lispd's operator interface: a JSON-over-HTTP API on a
// unix socket (mode 0600) that lispctl talks to, and optional TCP
// listeners: Prometheus /metrics, and /debug/pprof apart. Handlers are thin
// wrappers around the roles' typed methods; the API itself (paths,
// types, client) is internal/adminapi.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/stats"
)

// Server serves the admin API.
type Server struct {
	mux     *http.ServeMux
	log     *slog.Logger
	mu      sync.Mutex
	servers []*http.Server
	wg      sync.WaitGroup
	// closing ends the long-lived answers (event streams) at Close, so
	// that shutting the listeners down need not wait for them.
	closing   chan struct{}
	closeOnce sync.Once
}

// New returns a server with no routes.
func New(log *slog.Logger) *Server {
	return &Server{mux: http.NewServeMux(), log: log, closing: make(chan struct{})}
}

// HandleJSON routes pattern ("GET " + adminapi.PathSite) to fn, whose
// result is sent as JSON; an *adminapi.Error carries its HTTP status,
// any other error is a 500.
func (s *Server) HandleJSON(pattern string, fn func(r *http.Request) (any, error)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			status := http.StatusInternalServerError
			var ae *adminapi.Error
			if errors.As(err, &ae) {
				status = ae.Status
			}
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(adminapi.ErrorBody{Error: err.Error()})
			return
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	})
}

func (s *Server) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("admin listener stopped", "addr", ln.Addr(), "err", err)
		}
	}()
}

// ListenUnix serves the API on a unix socket at path, created with mode
// 0600 in a directory made if needed; a stale socket file is replaced.
func (s *Server) ListenUnix(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("admin socket: %s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return fmt.Errorf("admin socket: %s is in use by a running lispd", path)
		}
		os.Remove(path)
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("admin socket: %w", err)
	}
	s.serve(ln, s.mux)
	return nil
}

// ListenMetrics serves /metrics (the registry's counters, plus Go runtime
// metrics) on a TCP address; it returns the bound address. The listener
// has no authentication, so one reachable from the network is logged.
func (s *Server) ListenMetrics(addr string, reg *stats.Registry) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	pr := prometheus.NewRegistry()
	pr.MustRegister(NewCollector(reg), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(pr, promhttp.HandlerOpts{}))
	s.warnIfExposed("metrics", ln.Addr())
	s.serve(ln, mux)
	return ln.Addr(), nil
}

// ListenPProf serves /debug/pprof on a TCP address of its own, apart from
// /metrics: profiles and the command line are for the operator at the
// host, counters may be for a scraper elsewhere.
func (s *Server) ListenPProf(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.warnIfExposed("pprof", ln.Addr())
	s.serve(ln, mux)
	return ln.Addr(), nil
}

// warnIfExposed logs a listener bound to anything but loopback: anyone
// who reaches it reads it, unauthenticated.
func (s *Server) warnIfExposed(what string, a net.Addr) {
	if !loopback(a) {
		s.log.Warn("listener reachable beyond this host, unauthenticated", "listener", what, "address", a.String())
	}
}

// loopback reports whether a is a TCP address on loopback only (a
// wildcard address is not).
func loopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	return ok && ip.Unmap().IsLoopback()
}

// Close stops every listener and waits for them.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Collector exposes a stats.Registry to Prometheus, reading the counters at
// scrape time: lisp_<subsystem>_<name>_total{labels}, and its gauges as
// lisp_<subsystem>_<name>{labels}.
type Collector struct{ reg *stats.Registry }

// NewCollector wraps reg.
func NewCollector(reg *stats.Registry) *Collector { return &Collector{reg: reg} }

// Describe sends nothing: the collector is unchecked, its counters known at scrape.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.reg.Snapshot() {
		ch <- metric(s.Desc, "_total", prometheus.CounterValue, float64(s.Value))
	}
	for _, s := range c.reg.Gauges() {
		ch <- metric(s.Desc, "", prometheus.GaugeValue, s.Value)
	}
}

// ListenWeb serves the read-only web view on a TCP address: ui at / and,
// under /v1/, the API's GET endpoints the pages read (the event stream
// among them) — never a POST such as a reload. A bare ":PORT" binds
// loopback only; an address beyond loopback is logged like the metrics
// listener's, since the view has no authentication.
func (s *Server) ListenWeb(addr string, ui http.Handler) (net.Addr, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", readOnly(s.mux))
	mux.Handle("/", ui)
	s.warnIfExposed("web", ln.Addr())
	s.serve(ln, mux)
	return ln.Addr(), nil
}

// readOnly lets only GET and HEAD through to h: the web view reads.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(adminapi.ErrorBody{Error: "the web listener is read-only: use the admin socket"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// metric is one sample of d as lisp_<subsystem>_<name><suffix>{labels}.
func metric(d stats.Desc, suffix string, t prometheus.ValueType, v float64) prometheus.Metric {
	names := make([]string, len(d.Labels))
	values := make([]string, len(d.Labels))
	for i, l := range d.Labels {
		names[i], values[i] = l[0], l[1]
	}
	pd := prometheus.NewDesc(prometheus.BuildFQName("lisp", d.Subsystem, d.Name+suffix), d.Help, names, nil)
	return prometheus.MustNewConstMetric(pd, t, v, values...)
}
