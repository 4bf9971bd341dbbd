package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// canLab probes once whether this process can build labs.
var canLab = sync.OnceValue(func() error {
	err := onThreadIn(-1, func() error { return unix.Unshare(unix.CLONE_NEWNET) })
	if err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", err)
	}
	if _, err := execTools(); err != nil {
		return err
	}
	if _, err := exec.LookPath("mount"); err != nil {
		return fmt.Errorf("Exec needs mount: %w", err)
	}
	return nil
})

// RequireRoot skips the test, with a message saying why, unless it runs as
// root on a machine where network namespaces can be made and the tools
// Exec uses (nsenter, unshare, mount, sh) are present.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab: needs root to build network namespaces and veths; run the tests as root to include this one")
	}
	if err := canLab(); err != nil {
		t.Skipf("lab: %v", err)
	}
}

var testSeq atomic.Int64

// NewTest brings topo up under a name unique to this test (topo.Name, the
// pid and a counter) and registers its Down with t.Cleanup, which runs
// even when the test fails or panics. When the test has failed, the logs
// of the processes the lab started are copied into the test log first.
// Before that it takes down labs of earlier test runs whose process is
// gone (killed by a timeout, say). It skips as RequireRoot does.
func NewTest(t *testing.T, topo *Topology) *Lab {
	t.Helper()
	RequireRoot(t)
	cleanStaleTestLabs(t)
	tp := topo.clone()
	suffix := fmt.Sprintf("_%d_%d", os.Getpid(), testSeq.Add(1))
	base := tp.Name
	if len(base)+len(suffix) > maxLabName {
		base = base[:maxLabName-len(suffix)]
	}
	tp.Name = base + suffix
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := up(ctx, tp, true)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.LogProcs(t)
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// LogProcs copies the tail of every process log into the test log.
func (l *Lab) LogProcs(t testing.TB) {
	logs, _ := filepath.Glob(filepath.Join(l.dir, "*.log"))
	for _, f := range logs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		const max = 8 << 10
		if len(data) > max {
			data = data[len(data)-max:]
		}
		t.Logf("lab %s: %s:\n%s", l.topo.Name, filepath.Base(f), strings.TrimRight(string(data), "\n"))
	}
	l.logState(t)
}

// logState adds what every lispd of the lab holds at the end — its
// map-cache and its non-zero counters — to the test log: a failure that
// happened once on a CI machine is then explained by its own output.
func (l *Lab) logState(t testing.TB) {
	socks, _ := filepath.Glob(filepath.Join(l.dir, "*.sock"))
	for _, sock := range socks {
		node := strings.TrimSuffix(filepath.Base(sock), ".sock")
		var b strings.Builder
		cache, err := adminapi.Query(context.Background(), sock, 2*time.Second,
			func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
				return c.MapCache(ctx, adminapi.MapCacheQuery{})
			})
		if err != nil {
			fmt.Fprintf(&b, "\n  map-cache: %v", err)
		}
		for _, e := range cache {
			fmt.Fprintf(&b, "\n  map-cache [%d]%s %s", e.InstanceID, e.EIDPrefix, e.Source)
			if e.Negative {
				fmt.Fprintf(&b, " negative %s", e.Action)
			}
			for _, loc := range e.Locators {
				fmt.Fprintf(&b, " %s(%d/%d %s)", loc.Address, loc.Priority, loc.Weight, loc.State)
			}
			fmt.Fprintf(&b, " age %.1fs", e.Uptime)
		}
		if cs, err := adminapi.Query(context.Background(), sock, 2*time.Second, (*adminapi.Client).Statistics); err == nil {
			b.WriteString("\n  counters:")
			for _, c := range cs {
				if c.Value == 0 {
					continue
				}
				fmt.Fprintf(&b, " %s/%s", c.Subsystem, c.Name)
				for k, v := range c.Labels {
					fmt.Fprintf(&b, "{%s=%s}", k, v)
				}
				fmt.Fprintf(&b, "=%d", c.Value)
			}
		}
		t.Logf("lab %s: %s state:%s", l.topo.Name, node, b.String())
	}
}

// cleanStaleTestLabs takes down labs made by NewTest in processes that no
// longer exist. Labs of live processes, and labs not made for tests, are
// left alone.
func cleanStaleTestLabs(t testing.TB) {
	names, _ := List()
	for _, name := range names {
		st, err := readState(name)
		if err != nil || !st.Test {
			continue
		}
		if st.Owner.PID > 0 && alive(st.Owner.PID) && startTime(st.Owner.PID) == st.Owner.Start {
			continue
		}
		if err := DownByName(name); err != nil {
			t.Logf("lab: removing stale test lab %s: %v", name, err)
		} else {
			t.Logf("lab: removed stale test lab %s left by process %d", name, st.Owner.PID)
		}
	}
}

// MainWithLispd is the TestMain of a package whose tests run lispd in
// labs: it builds lispd into a temporary directory and stores its path in
// *bin (only when build is set: root, usually, since only root runs those
// tests), runs the tests, removes the binary and looks for leaked
// goroutines. It returns the exit code.
func MainWithLispd(m *testing.M, build bool, bin *string) int {
	dir, err := os.MkdirTemp("", "lispd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, "lispd")
	if build {
		if out, err := exec.Command("go", "build", "-o", *bin, "github.com/lispd/lispd/cmd/lispd").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building lispd: %v\n%s", err, out)
			return 1
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}
