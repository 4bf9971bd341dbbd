package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/demo"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/tshark"
)

// TestDemoStory runs `lisplab demo`'s story: every step must pass, with
// --keep the network stays up and the cleanup of `lisplab down` leaves no
// namespace, and Wireshark finds nothing malformed in the capture.
func TestDemoStory(t *testing.T) {
	lab.RequireRoot(t)
	dir := t.TempDir()
	bin := lispdBin
	ctl := filepath.Join(dir, "lispctl")
	if out, err := exec.Command("go", "build", "-o", ctl, "../../cmd/lispctl").CombinedOutput(); err != nil {
		t.Fatalf("build lispctl: %v\n%s", err, out)
	}
	var out bytes.Buffer
	capture := ""
	if _, err := tshark.Find(); err == nil {
		capture = filepath.Join(dir, "demo.pcap")
	} else {
		t.Log("tshark not installed: the capture check is skipped")
	}
	// --keep, then lisplab down's DownByName: nothing may be left.
	// A name of this process's own: another test run on the machine may
	// run the demo at the same time.
	name := fmt.Sprintf("demo%d", os.Getpid())
	err := demo.Run(context.Background(), demo.Options{Name: name, Lispd: bin, Lispctl: ctl, Out: &out, Capture: capture, Keep: true})
	defer lab.DownByName(name)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if capture != "" {
		// Wireshark reads the whole run: no malformed frame, no expert
		// warning or error (TCP sequence analysis aside).
		wiresharkClean(t, capture)
		if n, err := tshark.Count(capture, "lisp || lisp-data"); err != nil || n < 1000 {
			t.Errorf("the capture holds only %d LISP frames (%v)", n, err)
		}
	}
	if names, _ := lab.List(); !slices.Contains(names, name) {
		t.Error("--keep did not leave the network up")
	}
	if err := lab.DownByName(name); err != nil {
		t.Fatal(err)
	}
	if names, _ := lab.List(); slices.Contains(names, name) {
		t.Error("lab left behind after down")
	}
	if ents, _ := os.ReadDir("/run/netns"); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), name+"-") }) {
		t.Error("namespaces left behind after down")
	}
}
