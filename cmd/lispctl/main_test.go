package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/testvectors"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// vector returns the path of a file of the repository's golden corpus.
func vector(t *testing.T, name string) string {
	t.Helper()
	return testvectors.Path(t, name)
}

// result is what one in-process run of lispctl produced.
type result struct {
	stdout, stderr string
	code           int
}

// lispctl runs the CLI in-process with the given stdin and environment.
func lispctlEnv(t *testing.T, stdin io.Reader, env map[string]string, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	code := run(args, streams{in: stdin, out: &out, err: &errOut, getenv: func(k string) string { return env[k] }})
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func lispctl(t *testing.T, args ...string) result {
	t.Helper()
	return lispctlEnv(t, nil, nil, args...)
}

// wantCode fails the test when the exit code is not want, showing stderr.
func (r result) wantCode(t *testing.T, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit code %d, want %d\nstderr:\n%s\nstdout:\n%s", r.code, want, r.stderr, r.stdout)
	}
}
