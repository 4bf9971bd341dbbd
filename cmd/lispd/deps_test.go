package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The test kit and the data plane's test doubles never ship in lispd: the
// binary's package graph holds neither (the linker cannot pull in a
// package the graph lacks, so no symbol check is needed).
func TestBinaryLinksNoTestDoubles(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	seen := map[string]bool{}
	for _, p := range deps {
		seen[p] = true
		if strings.HasSuffix(p, "/internal/lisptest") || strings.HasSuffix(p, "/internal/dataplane/dptest") {
			t.Errorf("lispd links the test package %s", p)
		}
	}
	// The list is the real one: lispd does link the data plane.
	if !seen["github.com/lispd/lispd/internal/dataplane"] {
		t.Fatalf("go list -deps lacks the data plane; got %d packages", len(deps))
	}
}
