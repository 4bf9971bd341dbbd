package main

import (
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/cli"
)

func TestHelp(t *testing.T) {
	r := lispctl(t, "--help")
	r.wantCode(t, cli.ExitOK)
	for _, want := range []string{"decode", "version", "--socket", "/run/lispd/lispd.sock", "LISPD_SOCKET"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lispctl --help lacks %q:\n%s", want, r.stdout)
		}
	}

	r = lispctl(t, "decode", "--help")
	r.wantCode(t, cli.ExitOK)
	for _, want := range []string{"--hex", "--data", "--json", "--jsonl", "--verbose", "4341", "4342", "Exit status"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lispctl decode --help lacks %q", want)
		}
	}
}

func TestSocketFromEnvironment(t *testing.T) {
	r := lispctlEnv(t, nil, map[string]string{envSocket: "/tmp/other.sock"}, "--help")
	r.wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, `(default "/tmp/other.sock")`) {
		t.Errorf("LISPD_SOCKET not used as the default of --socket:\n%s", r.stdout)
	}
	// The flag is accepted by every command, before or after it.
	lispctl(t, "--socket", "/x.sock", "version").wantCode(t, cli.ExitOK)
	lispctl(t, "version", "--socket=/x.sock").wantCode(t, cli.ExitOK)
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := lispctl(t, args...)
		r.wantCode(t, cli.ExitOK)
		if !strings.HasPrefix(r.stdout, "lispctl ") || !strings.Contains(r.stdout, "go1.") {
			t.Errorf("%v printed %q", args, r.stdout)
		}
	}
	lispctl(t, "version", "extra").wantCode(t, cli.ExitUsage)
}

func TestUnknownCommand(t *testing.T) {
	r := lispctl(t, "frobnicate")
	r.wantCode(t, cli.ExitUsage)
	if !strings.Contains(r.stderr, "unknown command") || !strings.Contains(r.stderr, "lispctl --help") {
		t.Errorf("stderr: %q", r.stderr)
	}
}
