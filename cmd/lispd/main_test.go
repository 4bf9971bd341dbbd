package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/config"
)

// Every example configuration in the repository passes `lispd check`.
func TestCheckExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	more, _ := filepath.Glob("../../examples/*/*.yaml")
	for _, f := range more {
		// examples/lab/ holds lisplab topologies, whose lispd sections
		// cmd/lisplab's tests check.
		if filepath.Base(filepath.Dir(f)) != "lab" {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no example configurations found")
	}
	for _, f := range files {
		var out, errb bytes.Buffer
		if code := run([]string{"check", "--config", f}, &out, &errb); code != 0 {
			t.Errorf("lispd check %s: exit %d\n%s", f, code, errb.String())
		}
	}
}

func TestCheckReportsFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("map-server:\n  sites:\n    - name: a\n      keys: [{secret: x}]\n      eid-prefixes: [{prefix: 198.51.100.1/24}]\n  bogus: 1\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{path + ":5:", path + ":6:"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if run([]string{"version"}, &out, &errb) != 0 || !strings.HasPrefix(out.String(), "lispd ") {
		t.Errorf("version: %q", out.String())
	}
	if code := run(nil, &out, &errb); code != 2 {
		t.Errorf("no --config: exit %d, want 2", code)
	}
}

// The logger's level is the variable a reload sets, not a copy of it.
func TestLoggerLevelFollowsReload(t *testing.T) {
	var buf bytes.Buffer
	level := new(slog.LevelVar)
	log := newLogger(config.Log{Level: slog.LevelInfo}, &buf, level)
	log.Debug("hidden")
	level.Set(slog.LevelDebug) // what daemon.Reload does for log.level
	log.Debug("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("log output:\n%s", out)
	}
}
