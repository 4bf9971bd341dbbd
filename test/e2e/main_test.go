// Package e2e runs whole LISP networks — lispd processes in network
// namespaces built by internal/lab — and checks what a network engineer
// would: hosts of different sites reach each other, through PITR/PETR too,
// and traffic survives a locator failure. It needs root; without it every
// test skips with a message.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// lispdBin is the lispd binary built once for all tests.
var lispdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lispd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lispdBin = filepath.Join(dir, "lispd")
	if out, err := exec.Command("go", "build", "-o", lispdBin, "../../cmd/lispd").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building lispd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
