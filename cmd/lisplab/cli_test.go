package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/cli"
)

func TestHelp(t *testing.T) {
	r := lisplab(t, "--help").wantCode(t, cli.ExitOK)
	for _, want := range []string{"up", "down", "status", "exec", "check", "/run/lisplab/NAME/NODE.sock", "Exit status"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lisplab --help lacks %q", want)
		}
	}
	for cmd, wants := range map[string][]string{
		"up":     {"--name", "--replace", "--lispd", "--timeout", "FILE:LINE", "admin.socket"},
		"down":   {"--name", "after lisplab or lispd crashed"},
		"status": {"--json", "registered-prefixes", "map-cache-entries"},
		"exec":   {"NODE -- CMD", "exit status"},
		"check":  {"FILE:LINE"},
	} {
		r := lisplab(t, cmd, "--help").wantCode(t, cli.ExitOK)
		for _, want := range wants {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("lisplab %s --help lacks %q", cmd, want)
			}
		}
	}
}

// Without root, every command that touches namespaces says why it cannot
// and exits 2, before looking at anything.
func TestNotRoot(t *testing.T) {
	for _, args := range [][]string{
		{"up", "../../examples/lab/two-sites.yaml"},
		{"down", "../../examples/lab/two-sites.yaml"},
		{"down", "--name", "two_sites"},
		{"status"},
		{"status", "two_sites", "--json"},
		{"exec", "two_sites", "host-a", "--", "true"},
		{"demo"},
		{"demo", "--keep"},
	} {
		r := lisplabAs(t, opts{euid: 1000}, args...)
		r.wantCode(t, cli.ExitUsage)
		if !strings.Contains(r.stderr, "lisplab needs root to create network namespaces") || r.stdout != "" {
			t.Errorf("%v as a user: stderr %q, stdout %q", args, r.stderr, r.stdout)
		}
	}
	// check needs no root.
	lisplabAs(t, opts{euid: 1000}, "check", "../../examples/lab/two-sites.yaml").wantCode(t, cli.ExitOK)
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"up"}, "takes one topology FILE"},
		{[]string{"up", "a", "b"}, "takes one topology FILE"},
		{[]string{"down"}, "needs the topology FILE or --name NAME"},
		{[]string{"status", "a", "b"}, "at most one lab NAME"},
		{[]string{"exec"}, "exec takes [NAME] NODE -- CMD"},
		{[]string{"exec", "lab", "node"}, "no command to run in node"},
		{[]string{"exec", "lab", "node", "--"}, "no command to run in node"},
		{[]string{"check"}, "at least one topology FILE"},
		{[]string{"up", "--bogus", "f"}, "unknown flag: --bogus"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		r := lisplab(t, tc.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestExecArgs(t *testing.T) {
	for _, tc := range []struct {
		args             []string
		dash             int
		name, node, argv string
	}{
		{[]string{"lab", "ha", "ping", "-c", "1", "hb"}, -1, "lab", "ha", "ping -c 1 hb"},
		{[]string{"lab", "ha", "--", "ping", "hb"}, -1, "lab", "ha", "ping hb"},        // "--" after the first argument stays in args
		{[]string{"lab", "ha", "ping", "--", "x"}, -1, "lab", "ha", "ping -- x"},       // a later "--" is the command's
		{[]string{"lab", "ha", "ping", "hb"}, 2, "lab", "ha", "ping hb"},               // "--" seen by cobra
		{[]string{"lab", "ha", "sh", "-c", "a -- b"}, -1, "lab", "ha", "sh -c a -- b"}, // quoted "--" is no separator
	} {
		name, node, argv, err := execArgs(slices.Clone(tc.args), tc.dash)
		if err != nil || name != tc.name || node != tc.node || strings.Join(argv, " ") != tc.argv {
			t.Errorf("execArgs(%q, %d) = %q, %q, %q, %v; want %q, %q, %q", tc.args, tc.dash, name, node, argv, err, tc.name, tc.node, tc.argv)
		}
	}
}

func TestFindLispd(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "lisplab")
	next := filepath.Join(dir, "lispd")
	noExe := func() (string, error) { return filepath.Join(t.TempDir(), "lisplab"), nil }
	elsewhere := filepath.Join(t.TempDir(), "lispd")
	if err := os.WriteFile(elsewhere, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	// --lispd wins, and must be an executable file.
	if p, err := findLispd(elsewhere, noExe); err != nil || p != elsewhere {
		t.Errorf("--lispd %s: %q, %v", elsewhere, p, err)
	}
	if _, err := findLispd(dir, noExe); err == nil || !strings.Contains(err.Error(), "--lispd") {
		t.Errorf("--lispd DIR: %v", err)
	}
	if err := os.WriteFile(next, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := findLispd(next, noExe); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("--lispd non-executable: %v", err)
	}
	// Next to lisplab.
	if err := os.Chmod(next, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := findLispd("", func() (string, error) { return exe, nil }); err != nil || p != next {
		t.Errorf("next to lisplab: %q, %v", p, err)
	}
	// Else $PATH, else a message saying what to do.
	t.Setenv("PATH", filepath.Dir(elsewhere))
	if p, err := findLispd("", noExe); err != nil || p != elsewhere {
		t.Errorf("in $PATH: %q, %v", p, err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := findLispd("", noExe); err == nil || !strings.Contains(err.Error(), "--lispd PATH") {
		t.Errorf("nowhere: %v", err)
	}
}
