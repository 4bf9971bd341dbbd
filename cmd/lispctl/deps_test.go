package main

import (
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/lisptest"
)

// TestNoDataPlaneLinked: lispctl talks to lispd only through adminapi, so
// it links neither the daemon nor its TUN/netlink data plane.
func TestNoDataPlaneLinked(t *testing.T) {
	deps := lisptest.Deps(t)
	// The list is the real one: lispctl does link the API contract.
	if !deps["github.com/lispd/lispd/internal/adminapi"] {
		t.Fatalf("go list -deps lacks adminapi; got %d packages", len(deps))
	}
	for p := range deps {
		rest, ok := strings.CutPrefix(p, "github.com/lispd/lispd/internal/")
		if ok && (rest == "daemon" || rest == "dataplane" || strings.HasPrefix(rest, "dataplane/")) {
			t.Errorf("lispctl links %s", p)
		}
	}
}
