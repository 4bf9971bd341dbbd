package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDataPlaneLinked: lispctl talks to lispd only through adminapi, so
// it links neither the daemon nor its TUN/netlink data plane.
func TestNoDataPlaneLinked(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies with")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list -deps listed %q", deps)
	}
	for _, p := range deps {
		for _, banned := range []string{"/internal/dataplane", "/internal/daemon"} {
			if strings.HasSuffix(p, banned) || strings.Contains(p, banned+"/") {
				t.Errorf("lispctl links %s", p)
			}
		}
	}
}
