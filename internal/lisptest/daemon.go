package lisptest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lispd/lispd/internal/config"
)

// Runner is a daemon the harness runs: *daemon.Daemon. (lisptest does not
// import package daemon, so that daemon's own tests can use the kit.)
type Runner interface {
	Run(ctx context.Context) error
}

// Node is a daemon Start runs and where to reach it.
type Node[D Runner] struct {
	D      D
	Config *config.Config
	// Socket is the admin API's Unix socket.
	Socket string
	// Stop stops the daemon before the test ends (a peer that dies) and
	// waits for it; the cleanup does it otherwise.
	Stop func()
}

// Start loads yaml, with an admin socket in a temporary directory unless
// yaml has an admin section, builds the daemon with build (which may add
// options, a data plane for one) and runs it until the test ends: the
// cleanup stops it and waits for Run to return. The control addresses are
// the config's: use port 0, or port 4342 of LoopbackAddrs.
func Start[D Runner](t testing.TB, yaml string, build func(*config.Config) (D, error)) Node[D] {
	t.Helper()
	dir := t.TempDir()
	if !strings.Contains(yaml, "\nadmin:") && !strings.HasPrefix(yaml, "admin:") {
		yaml = "admin: {socket: " + filepath.Join(dir, "lispd.sock") + "}\n" + yaml
	}
	yaml = WithStateDirectory(t, yaml, dir)
	path := filepath.Join(dir, "lispd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return StartFile(t, path, build)
}

// WithStateDirectory gives the Map-Server of a configuration, if any, the
// state directory dir/state unless it names one, so that a test never
// touches the host's /var/lib/lispd. A test that rewrites its file for a
// reload passes each version through it with the same dir.
func WithStateDirectory(t testing.TB, text, dir string) string {
	t.Helper()
	if !strings.Contains(text, "map-server:") || strings.Contains(text, "state-directory:") {
		return text
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil || len(doc.Content) == 0 {
		return text // config.Load reports it
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "map-server" {
			continue
		}
		ms := top.Content[i+1]
		if ms.Kind == yaml.ScalarNode && ms.Tag == "!!null" {
			*ms = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		if ms.Kind != yaml.MappingNode {
			return text
		}
		ms.Content = append(ms.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "state-directory"},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: filepath.Join(dir, "state")})
		out, err := yaml.Marshal(&doc)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	return text
}

// StartFile is Start for a configuration file the test wrote itself (a
// reload test edits it).
func StartFile[D Runner](t testing.TB, path string, build func(*config.Config) (D, error)) Node[D] {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MapServer != nil && cfg.MapServer.StateDirectory == config.DefaultStateDirectory {
		// A test must not read or write the host's replay state.
		t.Fatalf("%s: a test's Map-Server needs its own map-server.state-directory (t.TempDir())", path)
	}
	d, err := build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon %s: %v", path, err)
			}
		})
	}
	t.Cleanup(stop)
	return Node[D]{D: d, Config: cfg, Socket: cfg.Admin.Socket, Stop: stop}
}
