package lab

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
)

// LispdOptions say how StartLispd runs lispd.
type LispdOptions struct {
	Binary string // the lispd executable; required
	// Name is the process name (default "lispd"): the log and pid files
	// are /run/lisplab/<lab>/<node>-<name>.{log,pid}.
	Name string
	// Socket is the admin socket the configuration names; default the
	// node's SocketPath.
	Socket string
}

// LispdProc is lispd running in a node, reached through its admin socket.
type LispdProc struct {
	*Proc
	Socket string
}

// logTailLines is how much of its log a lispd that fails shows.
const logTailLines = 15

// pollEvery is how often the waits ask lispd again.
const pollEvery = 50 * time.Millisecond

// StartLispd starts `Binary --config cfgPath` in node (see Start). It
// does not wait: WaitReady does, so that several can start at once.
func (l *Lab) StartLispd(node, cfgPath string, o LispdOptions) (*LispdProc, error) {
	if o.Binary == "" {
		return nil, fmt.Errorf("lab %s: start lispd on %s: no lispd binary given", l.topo.Name, node)
	}
	if o.Name == "" {
		o.Name = "lispd"
	}
	if o.Socket == "" {
		o.Socket = l.SocketPath(node)
	}
	// Its Map-Server, if any, keeps its state in the lab, not the host's
	// /var/lib/lispd: Down removes it with the rest.
	state := filepath.Join(l.dir, node+"-"+o.Name+"-state")
	p, err := l.Start(node, o.Name, []string{o.Binary, "--config", cfgPath, "--state-directory", state}, nil)
	if err != nil {
		return nil, err
	}
	return &LispdProc{Proc: p, Socket: o.Socket}, nil
}

// status and database are the two admin calls the waits make, through
// the typed client, each bounded to a second so a hung lispd is asked
// again rather than waited on.
func (p *LispdProc) status(ctx context.Context) (adminapi.Status, error) {
	return adminapi.Query(ctx, p.Socket, time.Second, (*adminapi.Client).Status)
}

func (p *LispdProc) database(ctx context.Context) (adminapi.Database, error) {
	return adminapi.Query(ctx, p.Socket, time.Second, (*adminapi.Client).Database)
}

// WaitReady waits until lispd answers on its admin socket. If it exits
// first, or ctx ends, the error says so and ends with the tail of its log.
func (p *LispdProc) WaitReady(ctx context.Context) error {
	for {
		_, err := p.status(ctx)
		if err == nil {
			return nil
		}
		var why error
		select {
		case <-p.Done():
			why = fmt.Errorf("exited before answering on %s (%v)", p.Socket, p.Wait())
		case <-ctx.Done():
			why = fmt.Errorf("no answer on %s: %w", p.Socket, context.Cause(ctx))
		case <-time.After(pollEvery):
			continue
		}
		return fmt.Errorf("node %s: %s: %w%s", p.Node, p.Name, why, p.logTailNote())
	}
}

// NotRegisteredError is what WaitRegistered returns when ctx ends first.
type NotRegisteredError struct {
	Node    string
	Pending []string // "ADDRESS (STATE)" per Map-Server, or why lispd did not answer
}

func (e *NotRegisteredError) Error() string {
	return fmt.Sprintf("node %s has not registered with %s", e.Node, strings.Join(e.Pending, ", "))
}

// WaitRegistered waits until the ETR in p reports every one of its
// Map-Servers as registered: a Map-Notify received, or a Map-Register
// sent to one it asked for no Map-Notify. Before, a Map-Request for its
// EIDs gets a negative answer that sticks. Only an xTR has a database to
// ask: for any other lispd it waits for ctx.
func (p *LispdProc) WaitRegistered(ctx context.Context) error {
	var pending []string // as lispd last said, or why it did not answer
	for {
		db, err := p.database(ctx)
		switch {
		case err == nil:
			pending = pending[:0]
			for _, m := range db.MapServers {
				if m.State != "registered" && !(m.LastRegister != nil && !m.WantMapNotify) {
					pending = append(pending, fmt.Sprintf("%s (%s)", m.Address, m.State))
				}
			}
			if len(pending) == 0 {
				return nil
			}
		case pending == nil:
			pending = []string{err.Error()}
		}
		select {
		case <-ctx.Done():
			return &NotRegisteredError{Node: p.Node, Pending: pending}
		case <-time.After(pollEvery):
		}
	}
}

// WaitPrefixes waits until the Map-Server in p holds exactly n
// registered EID prefixes.
func (p *LispdProc) WaitPrefixes(ctx context.Context, n int) error {
	var why error // what lispd last said, or why it did not answer
	for {
		st, err := p.status(ctx)
		switch {
		case err == nil && st.Prefixes == n:
			return nil
		case err == nil:
			why = fmt.Errorf("%d EID prefixes registered, want %d", st.Prefixes, n)
		case why == nil:
			why = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: %s: %w", p.Node, p.Name, why)
		case <-time.After(pollEvery):
		}
	}
}

// LogTail returns the last lines of the process's log ("" when it is
// empty or unreadable).
func (p *Proc) LogTail(lines int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil || len(data) == 0 {
		return ""
	}
	ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// logTailNote is the end of the log, indented under its path, for an
// error message.
func (p *LispdProc) logTailNote() string {
	tail := p.LogTail(logTailLines)
	if tail == "" {
		return ""
	}
	return fmt.Sprintf("\nend of %s:\n  %s", p.LogPath, strings.ReplaceAll(tail, "\n", "\n  "))
}

// WriteLispdConfig writes cfg, a lispd configuration without its log and
// admin sections, to dir/NODE.yaml with debug logging and the node's admin
// socket added, and returns the path: what tests start lispd from and
// rewrite to reload it.
//
// With LISPD_DATAPLANE set (auto, kernel or userspace), every xtr section
// that does not choose its data plane gets xtr.data-plane from it: how a
// suite runs once per data path.
func (l *Lab) WriteLispdConfig(dir, node, cfg string) (string, error) {
	path := filepath.Join(dir, node+".yaml")
	cfg = WithDataPlane(cfg, os.Getenv(DataPlaneEnv))
	full := fmt.Sprintf("log: {level: debug}\nadmin: {socket: %s}\n%s", l.SocketPath(node), cfg)
	return path, os.WriteFile(path, []byte(full), 0o600)
}

// DataPlaneEnv names the environment variable WriteLispdConfig takes the
// xTRs' data plane from.
const DataPlaneEnv = "LISPD_DATAPLANE"

// WithDataPlane adds "data-plane: mode" to the top-level xtr section of a
// configuration written with two-space indentation, unless mode is empty
// or the section sets data-plane itself.
func WithDataPlane(cfg, mode string) string {
	if mode == "" {
		return cfg
	}
	lines := strings.Split(cfg, "\n")
	for i, ln := range lines {
		if ln != "xtr:" && !strings.HasPrefix(ln, "xtr: ") && !strings.HasPrefix(ln, "xtr:\t") {
			continue
		}
		if strings.TrimSpace(strings.TrimPrefix(ln, "xtr:")) != "" {
			return cfg // a flow mapping: left alone
		}
		end := i + 1
		for end < len(lines) && (strings.HasPrefix(lines[end], " ") || lines[end] == "") {
			if strings.HasPrefix(strings.TrimSpace(lines[end]), "data-plane:") {
				return cfg
			}
			end++
		}
		out := append(slices.Clone(lines[:i+1]), "  data-plane: "+mode)
		return strings.Join(append(out, lines[i+1:]...), "\n")
	}
	return cfg
}

// DataPlaneCounters lists, on one line, the non-zero packet counters of
// both data paths of the lispd on node, label values in braces
// ("packets_encapsulated=… kernel_packets_punted{no-map-cache-entry}=…
// rloc_packets_encapsulated{198.18.4.2}=…"): what a benchmark or a failed
// check shows to say where packets went.
func (l *Lab) DataPlaneCounters(ctx context.Context, node string) (string, error) {
	cs, err := adminapi.Query(ctx, l.SocketPath(node), 2*time.Second, (*adminapi.Client).Statistics)
	if err != nil {
		return "", err
	}
	return dataPlaneLine(cs), nil
}

func dataPlaneLine(cs []adminapi.Counter) string {
	var parts []string
	for _, c := range cs {
		if (c.Subsystem != "dataplane" && c.Subsystem != "dataplane_kernel") || c.Value == 0 || strings.Contains(c.Name, "bytes") {
			continue
		}
		name := c.Name
		if c.Subsystem == "dataplane_kernel" {
			name = "kernel_" + name
		}
		if len(c.Labels) > 0 {
			vs := make([]string, 0, len(c.Labels))
			for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
				vs = append(vs, c.Labels[k])
			}
			name += "{" + strings.Join(vs, ",") + "}"
		}
		parts = append(parts, fmt.Sprintf("%s=%d", name, c.Value))
	}
	return strings.Join(parts, " ")
}
