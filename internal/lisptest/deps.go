package lisptest

import (
	"os/exec"
	"strings"
	"testing"
)

// Deps lists the import paths the package in the test's directory links,
// by `go list -deps`: what a binary can contain (the linker cannot pull in
// a package the graph lacks). It skips the test without a go command.
func Deps(t testing.TB) map[string]bool {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies with")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	return deps
}
