package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/lab"
)

// lispdBin is the lispd binary built once for the tests that bring labs
// up; only root runs them, so only root builds it.
var lispdBin string

func TestMain(m *testing.M) { os.Exit(lab.MainWithLispd(m, os.Geteuid() == 0, &lispdBin)) }

// result is what one in-process run of lisplab produced.
type result struct {
	stdout, stderr string
	code           int
}

// opts change how lisplab runs in a test.
type opts struct {
	euid  int
	stdin io.Reader
	exe   string // what os.Executable would say; "" = an empty directory
}

// lisplabAs runs the CLI in-process.
func lisplabAs(t *testing.T, o opts, args ...string) result {
	t.Helper()
	if o.stdin == nil {
		o.stdin = strings.NewReader("")
	}
	exe := o.exe
	if exe == "" {
		exe = filepath.Join(t.TempDir(), "lisplab")
	}
	var out, errOut bytes.Buffer
	code := run(args, streams{
		in: o.stdin, out: &out, err: &errOut,
		getenv:     func(string) string { return "" },
		geteuid:    func() int { return o.euid },
		executable: func() (string, error) { return exe, nil },
	})
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// lisplab runs the CLI in-process as root (the euid check passes; whether
// the process really is root is the tests' business).
func lisplab(t *testing.T, args ...string) result {
	t.Helper()
	return lisplabAs(t, opts{}, args...)
}

// wantCode fails the test when the exit code is not want, showing the output.
func (r result) wantCode(t *testing.T, want int) result {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit code %d, want %d\nstderr:\n%s\nstdout:\n%s", r.code, want, r.stderr, r.stdout)
	}
	return r
}
