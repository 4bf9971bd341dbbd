package demo

import "testing"

func TestDemoTopologyValid(t *testing.T) {
	if err := Topology("lispdemo").Validate(); err != nil {
		t.Fatal(err)
	}
}

// The story itself runs as root in test/e2e (TestDemoStory).
