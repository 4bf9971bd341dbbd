// Package labweb is lisplab's one page for a whole lab: the topology drawn
// as a graph (nodes, links, the LISP roles each lispd plays), the state of
// every node read from its admin API, and the steps of a story (the demo's)
// lighting up as they run. The page and its script are embedded; the
// server answers GETs only and is meant for loopback.
package labweb

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/web"
)

//go:embed static
var static embed.FS

// Step states.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepPassed  = "passed"
	StepFailed  = "failed"
)

// Step is one step of the story the page shows.
type Step struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Figure string `json:"figure,omitempty"`
}

// Topology is the lab's graph as the page draws it.
type Topology struct {
	Name  string     `json:"name"`
	Nodes []NodeInfo `json:"nodes"`
	Links []LinkInfo `json:"links"`
}

// NodeInfo is a node of the graph.
type NodeInfo struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
}

// LinkInfo is a link of the graph, with its ends' addresses.
type LinkInfo struct {
	A      string   `json:"a"`
	B      string   `json:"b"`
	AAddrs []string `json:"a-addrs"`
	BAddrs []string `json:"b-addrs"`
	Down   bool     `json:"down,omitempty"`
}

// NodeState is what one lispd says about itself.
type NodeState struct {
	Roles      []string `json:"roles"`
	Prefixes   int      `json:"registered-prefixes,omitempty"`
	MapCache   int      `json:"map-cache"`
	RLOCsUp    int      `json:"rlocs-up"`
	RLOCsDown  int      `json:"rlocs-down"`
	Registered int      `json:"registered-with"` // Map-Servers that acknowledged us
	Error      string   `json:"error,omitempty"`
}

// State is the answer of /lab/state.
type State struct {
	// Nodes are the nodes that run lispd, by name.
	Nodes map[string]NodeState `json:"nodes"`
	Steps []Step               `json:"steps"`
}

// Server serves the lab page.
type Server struct {
	lab   *lab.Lab
	topo  Topology
	ln    net.Listener
	srv   *http.Server
	done  chan struct{}
	log   *slog.Logger
	mu    sync.Mutex
	steps []Step
}

// Start serves the page for l at addr (":PORT" binds loopback), with the
// named steps pending.
func Start(l *lab.Lab, addr string, steps []string, log *slog.Logger) (*Server, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lab web page: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{lab: l, topo: topology(l.Topology()), ln: ln, done: make(chan struct{}), log: log}
	for _, n := range steps {
		s.steps = append(s.steps, Step{Name: n, State: StepPending})
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lab/topology", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.topo) })
	mux.HandleFunc("GET /lab/state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.state(r.Context())) })
	mux.Handle("GET /", web.Files(sub))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("lab web page stopped", "err", err)
		}
	}()
	return s, nil
}

// URL is where the page is.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// SetStep sets the state (and figure) of step i. A nil server takes
// nothing, so a story runs the same without a page.
func (s *Server) SetStep(i int, state, figure string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= 0 && i < len(s.steps) {
		s.steps[i].State, s.steps[i].Figure = state, figure
	}
}

// Close stops serving.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

func topology(t *lab.Topology) Topology {
	out := Topology{Name: t.Name, Nodes: []NodeInfo{}, Links: []LinkInfo{}}
	for _, n := range t.Nodes {
		out.Nodes = append(out.Nodes, NodeInfo{Name: n.Name, Role: n.Role})
	}
	strs := func(ps []netip.Prefix) []string {
		o := []string{}
		for _, p := range ps {
			o = append(o, p.String())
		}
		return o
	}
	for _, l := range t.Links {
		out.Links = append(out.Links, LinkInfo{A: l.A, B: l.B, AAddrs: strs(l.AAddrs), BAddrs: strs(l.BAddrs), Down: l.Down})
	}
	return out
}

// state asks every lispd of the lab for its status, at once.
func (s *Server) state(ctx context.Context) State {
	st := State{Nodes: map[string]NodeState{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range s.topo.Nodes {
		// A node runs lispd when it has an admin socket: the topology may
		// carry its configuration, or the story start it (the demo does).
		sock := s.lab.SocketPath(n.Name)
		if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns := nodeState(ctx, sock)
			mu.Lock()
			st.Nodes[n.Name] = ns
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.mu.Lock()
	st.Steps = slices.Clone(s.steps)
	s.mu.Unlock()
	return st
}

func nodeState(ctx context.Context, sock string) NodeState {
	const timeout = time.Second
	var ns NodeState
	status, err := adminapi.Query(ctx, sock, timeout, (*adminapi.Client).Status)
	if err != nil {
		ns.Error = err.Error()
		return ns
	}
	ns.Roles, ns.Prefixes = status.Roles, status.Prefixes
	if !slices.Contains(status.Roles, "xtr") {
		return ns
	}
	if mc, err := adminapi.Query(ctx, sock, timeout, func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
		return c.MapCache(ctx, adminapi.MapCacheQuery{})
	}); err == nil {
		ns.MapCache = len(mc)
	}
	if pr, err := adminapi.Query(ctx, sock, timeout, (*adminapi.Client).RLOCProbing); err == nil {
		for _, p := range pr {
			if p.State == "up" {
				ns.RLOCsUp++
			} else {
				ns.RLOCsDown++
			}
		}
	}
	if db, err := adminapi.Query(ctx, sock, timeout, (*adminapi.Client).Database); err == nil {
		for _, m := range db.MapServers {
			if m.State == "registered" {
				ns.Registered++
			}
		}
	}
	return ns
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
