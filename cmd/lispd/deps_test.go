package main

import (
	"testing"

	"github.com/lispd/lispd/internal/lisptest"
)

// The test kit and the data plane's test doubles never ship in lispd: the
// binary's package graph holds neither.
func TestBinaryLinksNoTestDoubles(t *testing.T) {
	deps := lisptest.Deps(t)
	// The list is the real one: lispd does link the data plane.
	if !deps["github.com/lispd/lispd/internal/dataplane"] {
		t.Fatalf("go list -deps lacks the data plane; got %d packages", len(deps))
	}
	for _, p := range []string{"github.com/lispd/lispd/internal/lisptest", "github.com/lispd/lispd/internal/dataplane/dptest"} {
		if deps[p] {
			t.Errorf("lispd links the test package %s", p)
		}
	}
}
