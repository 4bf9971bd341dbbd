package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lispd/lispd/internal/lab"
)

func TestDemoTopologyValid(t *testing.T) {
	if err := Topology("lispdemo").Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestDemo runs the whole story (as root).
func TestDemo(t *testing.T) {
	lab.RequireRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "lispd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/lispd").CombinedOutput(); err != nil {
		t.Fatalf("build lispd: %v\n%s", err, out)
	}
	ctl := filepath.Join(dir, "lispctl")
	if out, err := exec.Command("go", "build", "-o", ctl, "../../cmd/lispctl").CombinedOutput(); err != nil {
		t.Fatalf("build lispctl: %v\n%s", err, out)
	}
	var out bytes.Buffer
	err := Run(context.Background(), Options{Name: "demotest", Lispd: bin, Lispctl: ctl, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := lab.List(); len(names) > 0 {
		for _, n := range names {
			if n == "demotest" {
				t.Error("lab left behind")
			}
		}
	}
	_ = os.Stdout
}
