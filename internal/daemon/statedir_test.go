package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/lisptest"
)

// TestStateDirectoryOption: --state-directory (Options.StateDirectory)
// replaces the default directory, at start and at every reload, so a lab's
// Map-Servers keep their state in the lab and a reload is not refused as a
// state-directory change.
func TestStateDirectoryOption(t *testing.T) {
	dir := t.TempDir()
	yaml := []byte("control: {addresses: [" + lisptest.LoopbackAddrs(t, 1, 0)[0].String() + "], port: 0}\n" +
		"admin: {socket: " + filepath.Join(dir, "lispd.sock") + "}\n" + twoSites)
	parse := func() *config.Config {
		cfg, err := config.Parse(yaml, "lab.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MapServer.StateDirectory != config.DefaultStateDirectory {
			t.Fatalf("the configuration names %s", cfg.MapServer.StateDirectory)
		}
		return cfg
	}
	state := filepath.Join(dir, "ms-state")
	d, err := New(parse(), Options{StateDirectory: state})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if _, err := d.Reload(parse()); err != nil {
		t.Errorf("reload with the same configuration: %v", err)
	}
	cancel()
	<-done
	if fi, err := os.Stat(state); err != nil || !fi.IsDir() {
		t.Errorf("the Map-Server did not take the given state directory: %v", err)
	}
}
