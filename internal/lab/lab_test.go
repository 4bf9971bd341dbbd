package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/lispd/lispd/internal/poll"
)

// These tests build real namespaces and need root; they skip otherwise.
// Each registers cleanup before anything can fail, so nothing is left
// behind even when they fail.

// havePing says whether the ping binary is there; scripts/test installs
// iputils-ping.
func havePing(t *testing.T) bool {
	t.Helper()
	if _, err := exec.LookPath("ping"); err != nil {
		t.Log("ping is not installed (apt-get install iputils-ping): skipping the ping checks")
		return false
	}
	return true
}

// run runs argv in node and returns its combined output.
func run(l *Lab, node string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := l.ExecContext(ctx, node, argv...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s on %s: %w\n%s", strings.Join(argv, " "), node, err, out)
	}
	return string(out), err
}

// ping sends one echo request from node to target, waiting a second.
func ping(l *Lab, node, target string) error {
	_, err := run(l, node, "ping", "-n", "-c1", "-W1", target)
	return err
}

// reach pings target from node until a reply comes, three tries at most:
// right after a link comes up the kernel may still lose a first packet
// (rarely, and only on a busy machine).
func reach(l *Lab, node, target string) error {
	var err error
	for range 3 {
		if err = ping(l, node, target); err == nil {
			return nil
		}
	}
	return err
}

// leftovers lists what of lab name is still on the machine.
func leftovers(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	nss, err := listNetns(name + "-")
	if err != nil {
		t.Errorf("list %s: %v", NetnsDir, err)
	}
	for _, ns := range nss {
		out = append(out, filepath.Join(NetnsDir, ns))
	}
	for _, pattern := range []string{labDir(name), filepath.Join(EtcNetns, name+"-*")} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	links, err := netlink.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		t.Errorf("list host links: %v", err)
	}
	for _, link := range links {
		if strings.HasPrefix(link.Attrs().Alias, "lisplab:"+name+":") {
			out = append(out, "host link "+link.Attrs().Name)
		}
	}
	return out
}

func TestLine(t *testing.T) {
	hostForward, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	l := NewTest(t, lineTopology())
	name := l.Name()

	// Sysctls are the router's own.
	if v, err := l.Sysctl("router", "net.ipv4.ip_forward"); err != nil || v != "1" {
		t.Errorf("router ip_forward = %q, %v; want 1", v, err)
	}
	if v, err := l.Sysctl("router", "net/ipv6/conf/all/forwarding"); err != nil || v != "1" {
		t.Errorf("router IPv6 forwarding = %q, %v; want 1", v, err)
	}
	if v, err := l.Sysctl("host1", "net.ipv4.ip_forward"); err != nil || v != "0" {
		t.Errorf("host1 ip_forward = %q, %v; want 0", v, err)
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(hostForward) {
		t.Errorf("host ip_forward changed from %q to %q", hostForward, now)
	}

	// Do runs in the node: netlink there sees its interfaces only.
	err := l.Do("host2", func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		var names []string
		for _, link := range links {
			names = append(names, link.Attrs().Name)
			if link.Attrs().Name == "eth0" && link.Attrs().MTU != 1400 {
				t.Errorf("host2 eth0 MTU %d, want 1400", link.Attrs().MTU)
			}
		}
		if slices.Sort(names); !slices.Equal(names, []string{"eth0", "lo"}) {
			t.Errorf("host2 links %v, want [eth0 lo]", names)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range st {
		if !ns.Present {
			t.Errorf("status: node %s absent", ns.Name)
		}
		for _, is := range ns.Interfaces {
			if !is.Up || !is.Carrier {
				t.Errorf("status: %s:%s up=%v carrier=%v", ns.Name, is.Name, is.Up, is.Carrier)
			}
		}
	}
	if h2 := st[2]; len(h2.Interfaces) != 2 || h2.Interfaces[1].Peer != "router:eth1" ||
		!slices.Contains(h2.Interfaces[1].Addrs, pfx("2001:db8:2::2/64")) ||
		!slices.Contains(h2.Interfaces[0].Addrs, pfx("203.0.113.2/32")) {
		t.Errorf("status of host2: %+v", h2)
	}

	// Exec runs in the node's namespace, with its /sys.
	if out, err := run(l, "host1", "ls", "/sys/class/net"); err != nil || strings.Fields(out)[0] != "eth0" || len(strings.Fields(out)) != 2 {
		t.Errorf("host1 /sys/class/net: %q, %v; want eth0 lo", out, err)
	}

	// Names resolve through the hosts file Exec binds over /etc/hosts.
	hosts := l.Topology().DefaultHosts()
	hosts["host2-v6"] = addr("2001:db8:2::2")
	if err := l.WriteHosts(hosts); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"host2": "203.0.113.2", "host2-v6": "2001:db8:2::2", "router": "192.0.2.254"} {
		out, err := run(l, "host1", "getent", "hosts", name)
		if err != nil || len(strings.Fields(out)) == 0 || strings.Fields(out)[0] != want {
			t.Errorf("getent hosts %s in host1: %q, %v; want %s", name, out, err, want)
		}
	}
	if b, _ := os.ReadFile("/etc/hosts"); strings.Contains(string(b), "host2-v6") {
		t.Error("the host's own /etc/hosts was changed")
	}

	if !havePing(t) {
		return
	}
	for _, target := range []string{"192.0.2.254", "198.51.100.2", "2001:db8:2::2", "203.0.113.2", "host2", "host2-v6"} {
		if err := reach(l, "host1", target); err != nil {
			t.Errorf("ping %s: %v", target, err)
		}
	}

	// Cutting the link stops traffic; restoring it brings back the
	// addresses and routes the kernel dropped.
	if err := l.SetLink("host2", "router", false); err != nil {
		t.Fatal(err)
	}
	if err := ping(l, "host1", "198.51.100.2"); err == nil {
		t.Error("ping across a cut link succeeded")
	}
	if st, _ := l.Status(); st[2].Interfaces[1].Up {
		t.Error("status: host2 eth0 still up after SetLink down")
	}
	if err := l.SetLink("router", "host2", true); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"198.51.100.2", "2001:db8:2::2", "host2"} {
		if err := reach(l, "host1", target); err != nil {
			t.Errorf("after restoring the link: ping %s: %v", target, err)
		}
	}
	if err := l.SetLink("host1", "host2", false); err == nil {
		t.Error("SetLink between unlinked nodes: no error")
	}

	// A long-running process dies with the lab.
	p, err := l.Start("router", "sleeper", []string{"sleep", "1000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !alive(p.PID) || readPID(p.PIDPath) != p.PID {
		t.Fatalf("sleeper pid %d: alive %v, pid file says %d", p.PID, alive(p.PID), readPID(p.PIDPath))
	}
	if err := l.Down(); err != nil {
		t.Fatalf("down: %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(time.Second):
		t.Fatal("sleeper still running after Down")
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("left after Down: %v", left)
	}
	if err := l.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
	if err := l.Exec("host1", "true").Run(); err == nil || !strings.Contains(err.Error(), "is down") {
		t.Errorf("Exec in a lab that is down: %v", err)
	}
}

func TestStart(t *testing.T) {
	l := NewTest(t, &Topology{Name: "start", Nodes: []Node{{Name: "n-1"}, {Name: "n"}}})
	l.StopTimeout = 500 * time.Millisecond

	// Output and environment.
	p, err := l.Start("n-1", "echo", []string{"sh", "-c", "trap '' TERM; echo hello $GREETING; exec sleep 1000"}, []string{"GREETING=world"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Start("n-1", "echo", []string{"true"}, nil); err == nil {
		t.Error("a second process of the same name started")
	}
	var b []byte
	if err := poll.Until(context.Background(), 5*time.Second, 10*time.Millisecond, func() bool {
		b, _ = os.ReadFile(p.LogPath)
		return strings.Contains(string(b), "hello world")
	}); err != nil {
		t.Fatalf("log %s: %q", p.LogPath, b)
	}
	// The process runs in the node, and status finds it by its pid file
	// even with a '-' in the node name.
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.PID))
	if err != nil || link != fmt.Sprintf("net:[%d]", netnsInode(l.Namespace("n-1"))) {
		t.Errorf("process netns %s, %v; want that of %s", link, err, l.Namespace("n-1"))
	}
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st[0].Procs) != 1 || st[0].Procs[0].Name != "echo" || !st[0].Procs[0].Running || len(st[1].Procs) != 0 {
		t.Errorf("status procs: %+v / %+v", st[0].Procs, st[1].Procs)
	}

	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// The process ignores SIGTERM (its shell did, and exec kept that):
	// Stop has to kill it.
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < l.StopTimeout {
		t.Errorf("Stop took %v; a stopped process should have waited for %v", d, l.StopTimeout)
	}
	var ee *exec.ExitError
	if err := p.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Wait() = %v; want killed by SIGKILL", err)
	}
	if _, err := os.Stat(p.PIDPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after exit: %v", err)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit: %v", err)
	}

	// The name is free again, and a failing command is reported by Wait.
	p, err = l.Start("n-1", "echo", []string{"sh", "-c", "exit 3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Wait() = %v; want exit status 3", err)
	}
	if _, err := l.Start("nope", "x", []string{"true"}, nil); err == nil {
		t.Error("Start on an unknown node succeeded")
	}
}

// TestDownByNameAfterCrash brings a lab up, starts processes in it, forgets
// it as a crash would (closing its handles without tearing anything
// down), and checks that DownByName removes everything, and nothing of
// another lab whose name begins alike.
func TestDownByNameAfterCrash(t *testing.T) {
	RequireRoot(t)
	name := fmt.Sprintf("crash_%d", os.Getpid())
	t.Cleanup(func() { _ = DownByName(name) })
	topo := lineTopology()
	topo.Name = name
	other := NewTest(t, &Topology{Name: name, Nodes: []Node{{Name: "host1"}}}) // named name_<pid>_<n>

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Up(ctx, topo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Up(ctx, topo); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second Up of %s: %v; want an error saying it exists", name, err)
	}
	if err := l.WriteHosts(topo.DefaultHosts()); err != nil {
		t.Fatal(err)
	}
	p, err := l.Start("host2", "sleeper", []string{"sleep", "1000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A process not started by Start: found by its namespace.
	stray := l.Exec("router", "sleep", "1000")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	defer stray.Process.Kill()

	// Another process could attach to the lab.
	a, err := Attach(name)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := a.Status(); err != nil || len(st) != 3 || len(st[2].Procs) != 1 || !st[2].Procs[0].Running {
		t.Errorf("attached status: %+v, %v", st, err)
	}
	if out, err := run(a, "host1", "getent", "hosts", "host2"); err != nil || !strings.HasPrefix(out, "203.0.113.2") {
		t.Errorf("getent through the attached lab: %q, %v", out, err)
	}
	// Close lets the handles go; the Lab opens them again when used.
	a.Close()
	for _, n := range a.nodes {
		if n.nl != nil || n.h.IsOpen() {
			t.Errorf("node %s: handles open after Close", n.node.Name)
		}
	}
	if v, err := a.Sysctl("router", "net.ipv4.ip_forward"); err != nil || v != "1" {
		t.Errorf("after Close: ip_forward = %q, %v", v, err)
	}

	// Crash: the handles go, everything else stays.
	for _, lab := range []*Lab{l, a} {
		lab.Close()
	}
	if err := DownByName(name); err != nil {
		t.Fatalf("DownByName: %v", err)
	}
	if err := stray.Wait(); err == nil {
		t.Error("the stray process was not killed")
	}
	select {
	case <-p.Done():
	case <-time.After(time.Second):
		t.Error("the started process survived DownByName")
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("left after DownByName: %v", left)
	}
	if err := DownByName(name); err != nil {
		t.Errorf("DownByName again: %v", err)
	}
	if st, err := other.Status(); err != nil || !st[0].Present {
		t.Errorf("DownByName(%s) touched lab %s: %+v, %v", name, other.Name(), st, err)
	}
	if err := DownByName("../etc"); err == nil {
		t.Error("DownByName accepted a path")
	}
}

// TestUpFailure: when Up fails half way it removes what it made.
func TestUpFailure(t *testing.T) {
	RequireRoot(t)
	name := fmt.Sprintf("fail_%d", os.Getpid())
	t.Cleanup(func() { _ = DownByName(name) })
	topo := lineTopology()
	topo.Name = name
	topo.Nodes[2].Sysctls = map[string]string{"net.ipv4.no_such_key": "1"}
	_, err := Up(context.Background(), topo)
	if err == nil || !strings.Contains(err.Error(), "net.ipv4.no_such_key: no such key") {
		t.Fatalf("Up: %v; want the sysctl error", err)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("left after a failed Up: %v", left)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	topo.Nodes[2].Sysctls = nil
	if _, err := Up(ctx, topo); !errors.Is(err, context.Canceled) {
		t.Errorf("Up with a cancelled context: %v", err)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("left after a cancelled Up: %v", left)
	}
}

// TestDownLink: a link configured down comes up with SetLink, with the
// routes that could not be installed before.
func TestDownLink(t *testing.T) {
	topo := lineTopology()
	topo.Links[1].Down = true
	l := NewTest(t, topo)
	if !havePing(t) {
		return
	}
	if err := ping(l, "host1", "198.51.100.2"); err == nil {
		t.Error("ping across a link configured down succeeded")
	}
	if err := l.SetLink("router", "host2", true); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"198.51.100.2", "203.0.113.2", "2001:db8:2::2"} {
		if err := reach(l, "host1", target); err != nil {
			t.Errorf("ping %s: %v", target, err)
		}
	}
}

func TestNames(t *testing.T) {
	l := newLab(lineTopology().withDefaults())
	for _, c := range [][2]string{
		{l.Namespace("host1"), "line-host1"},
		{l.SocketPath("router"), "/run/lisplab/line/router.sock"},
		{l.LogPath("router", "lispd"), "/run/lisplab/line/router-lispd.log"},
		{l.PIDPath("router", "lispd"), "/run/lisplab/line/router-lispd.pid"},
		{l.Topology().Links[0].AName, "eth0"},
		{l.Topology().Links[1].BName, "eth0"},
	} {
		if c[0] != c[1] {
			t.Errorf("got %q, want %q", c[0], c[1])
		}
	}
	if err := l.Exec("nope", "true").Run(); err == nil || !strings.Contains(err.Error(), `no node "nope"`) {
		t.Errorf("Exec on an unknown node: %v", err)
	}
}
