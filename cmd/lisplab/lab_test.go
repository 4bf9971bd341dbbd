package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
)

const twoSites = "../../examples/lab/two-sites.yaml"

// testLabName is a lab name no other test run or user picks.
func testLabName(what string) string {
	return fmt.Sprintf("lltest_%s_%d", what, os.Getpid())
}

// upLab brings topology up as name with the test's lispd and takes it down
// when the test ends, however it ends.
func upLab(t *testing.T, topology, name string, extra ...string) result {
	t.Helper()
	t.Cleanup(func() {
		if err := lab.DownByName(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	args := append([]string{"up", topology, "--name", name, "--lispd", lispdBin}, extra...)
	return lisplab(t, args...)
}

// gone checks that nothing of lab name is left on the machine.
func gone(t *testing.T, name string) {
	t.Helper()
	labs, err := lab.List()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(labs, name) {
		t.Errorf("lab.List() still lists %s", name)
	}
	if ns := labNamespaces(name); len(ns) > 0 {
		t.Errorf("namespaces left: %v", ns)
	}
	if left, _ := filepath.Glob(filepath.Join(lab.EtcNetns, name+"-*")); len(left) > 0 {
		t.Errorf("hosts files left: %v", left)
	}
}

// ping runs ping in node through lisplab exec until one try of three
// answers.
func ping(t *testing.T, name, node, dst string) {
	t.Helper()
	var r result
	for range 3 {
		r = lisplab(t, "exec", name, node, "--", "ping", "-c", "3", "-i", "0.2", "-W", "1", dst)
		if r.code == 0 {
			if !strings.Contains(r.stdout, "3 received") && !strings.Contains(r.stdout, "2 received") {
				t.Errorf("ping %s from %s: exit 0 but:\n%s", dst, node, r.stdout)
			}
			return
		}
	}
	t.Errorf("ping %s from %s: exit %d\n%s%s", dst, node, r.code, r.stdout, r.stderr)
}

func statusJSON(t *testing.T, name string, wantCode int) labStatus {
	t.Helper()
	r := lisplab(t, "status", name, "--json")
	if wantCode >= 0 {
		r.wantCode(t, wantCode)
	}
	var labs []labStatus
	if err := json.Unmarshal([]byte(r.stdout), &labs); err != nil || len(labs) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return labs[0]
}

func node(t *testing.T, ls labStatus, name string) nodeStatus {
	t.Helper()
	for _, n := range ls.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("status has no node %s: %+v", name, ls)
	return nodeStatus{}
}

// TestTwoSites: the two-site example comes up under its own name, hosts
// reach each other by name over IPv4 and IPv6 EIDs through lisplab exec,
// status shows both sites registered, and down leaves nothing.
func TestTwoSites(t *testing.T) {
	lab.RequireRoot(t)
	name := testLabName("two")
	r := upLab(t, twoSites, name).wantCode(t, cli.ExitOK)
	for _, want := range []string{
		"lab " + name + " is up: 6 nodes, 5 links, lispd in 3 of them",
		"lisplab exec " + name + " host-a -- ping -c 3 host-b",
		"lispctl --socket /run/lisplab/" + name + "/ms.sock show site",
		"lispctl --socket /run/lisplab/" + name + "/xtr-a.sock show map-cache",
		"lisplab down --name " + name,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("up output lacks %q:\n%s", want, r.stdout)
		}
	}
	// What up wrote.
	cfg, err := os.ReadFile(filepath.Join(lab.RunRoot, name, "xtr-a.yaml"))
	if err != nil || !strings.Contains(string(cfg), "socket: /run/lisplab/"+name+"/xtr-a.sock") {
		t.Errorf("xtr-a.yaml: %v\n%s", err, cfg)
	}

	// A lab of that name is up: up says so and leaves it alone.
	again := upLab(t, twoSites, name).wantCode(t, cli.ExitFailed)
	if !strings.Contains(again.stderr, "lab "+name+" is already up") || !strings.Contains(again.stderr, "--replace") {
		t.Errorf("second up: %s", again.stderr)
	}

	ping(t, name, "host-a", "host-b")
	ping(t, name, "host-b", "host-a6")
	// The command's streams and exit status are passed through.
	r = lisplabAs(t, opts{stdin: strings.NewReader("hello from stdin\n")}, "exec", name, "host-a", "--", "sh", "-c", "cat; echo oops >&2; exit 7")
	if r.code != 7 || r.stdout != "hello from stdin\n" || r.stderr != "oops\n" {
		t.Errorf("exec sh: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = lisplab(t, "exec", name, "host-a", "--", "sh", "-c", "kill -TERM $$")
	if r.code != 128+int(syscall.SIGTERM) {
		t.Errorf("exec of a command killed by SIGTERM: exit %d", r.code)
	}
	if r := lisplab(t, "exec", name, "nosuch", "--", "true"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, `no node "nosuch"`) {
		t.Errorf("exec in an unknown node: exit %d, %s", r.code, r.stderr)
	}
	if r := lisplab(t, "exec", name+"x", "host-a", "--", "true"); r.code != cli.ExitFailed || !strings.Contains(r.stderr, "is not up") {
		t.Errorf("exec in an unknown lab: exit %d, %s", r.code, r.stderr)
	}

	ls := statusJSON(t, name, cli.ExitOK)
	if !ls.Healthy || !strings.HasSuffix(ls.File, "examples/lab/two-sites.yaml") || ls.Up == nil || len(ls.Nodes) != 6 {
		t.Errorf("status: %+v", ls)
	}
	ms := node(t, ls, "ms").Lispd
	if ms == nil || !ms.Running || !ms.Answering || ms.Prefixes == nil || *ms.Prefixes != 4 ||
		!slices.Equal(ms.Roles, []string{"map-server", "map-resolver"}) || ms.Uptime <= 0 {
		t.Errorf("ms status: %+v", ms)
	}
	for _, x := range []string{"xtr-a", "xtr-b"} {
		d := node(t, ls, x).Lispd
		if d == nil || !d.Running || !d.Answering || d.MapCache == nil || *d.MapCache < 1 ||
			len(d.MapServers) != 1 || d.MapServers[0].State != "registered" {
			t.Errorf("%s status: %+v", x, d)
		}
	}
	if h := node(t, ls, "host-a"); h.Lispd != nil || !h.Present || !slices.Contains(h.Addresses, "2001:db8:a::10") {
		t.Errorf("host-a status: %+v", h)
	}
	text := lisplab(t, "status", name).wantCode(t, cli.ExitOK).stdout
	for _, want := range []string{"lab " + name + ": 6 nodes, healthy", "map-server,map-resolver", "4 EID prefixes registered", "registered with 198.18.1.2"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}

	// A lispd that dies shows in status, which then exits 1.
	pid := node(t, ls, "xtr-b").Lispd.PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = poll.Until(context.Background(), 5*time.Second, 50*time.Millisecond, func() bool {
		ls = statusJSON(t, name, -1)
		return !node(t, ls, "xtr-b").Lispd.Running
	})
	if ls.Healthy || node(t, ls, "xtr-b").Lispd.Running {
		t.Errorf("status after killing xtr-b's lispd: %+v", node(t, ls, "xtr-b").Lispd)
	}
	lisplab(t, "status", name).wantCode(t, cli.ExitFailed)

	// down removes everything, and again is fine.
	r = lisplab(t, "down", "--name", name).wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "lab "+name+" is down") {
		t.Errorf("down: %q", r.stdout)
	}
	gone(t, name)
	r = lisplab(t, "down", "--name", name).wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "is not up") {
		t.Errorf("second down: %q", r.stdout)
	}
	lisplab(t, "status", name).wantCode(t, cli.ExitFailed)
}

// TestUpFailures: a lispd that does not come up takes the lab down again
// and shows its log; --replace takes an old lab down first; down by FILE.
func TestUpFailures(t *testing.T) {
	lab.RequireRoot(t)
	name := testLabName("fail")
	bad := filepath.Join(t.TempDir(), "lispd")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'lispd: cannot start: boom' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := lisplab(t, "up", twoSites, "--name", name, "--lispd", bad)
	t.Cleanup(func() { _ = lab.DownByName(name) })
	r.wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stderr, "lispd: exited before answering") || !strings.Contains(r.stderr, "cannot start: boom") {
		t.Errorf("up with a failing lispd:\n%s", r.stderr)
	}
	gone(t, name)

	// Leftovers of a crash (a namespace, no lisplab state): up refuses,
	// --replace clears them.
	// A namespace bound at /run/netns/NAME-ms, as `ip netns add` makes,
	// with util-linux's unshare (which lab needs anyway).
	stray := filepath.Join(lab.NetnsDir, name+"-ms")
	if err := os.WriteFile(stray, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "--net="+stray, "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --net=%s: %v: %s", stray, err, out)
	}
	if r := upLab(t, twoSites, name); r.code != cli.ExitFailed || !strings.Contains(r.stderr, "namespace "+name+"-ms exists") {
		t.Errorf("up over a leftover namespace: exit %d\n%s", r.code, r.stderr)
	}
	r = upLab(t, twoSites, name, "--replace").wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "taking down lab "+name+" first") {
		t.Errorf("--replace: %s", r.stdout)
	}

	// down FILE takes the lab's name from the file.
	src, err := os.ReadFile(twoSites)
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(t.TempDir(), "wrong.yaml")
	if err := os.WriteFile(wrong, []byte(strings.Replace(string(src), "secret: site-b-key}\n", "secret: wrong-key}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "renamed.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(string(src), "\nname: two_sites\n", "\nname: "+name+"\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	// An ETR with the wrong key does not register: up says so and exits 1,
	// leaving the lab up to look at.
	r = upLab(t, wrong, name, "--replace", "--timeout", "2s").wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stderr, "node xtr-b has not registered with 198.18.1.2 (registering)") ||
		!strings.Contains(r.stdout, "lab "+name+" is up") {
		t.Errorf("up with a wrong key:\n%s", r.stderr)
	}
	if d := node(t, statusJSON(t, name, cli.ExitOK), "xtr-b").Lispd; len(d.MapServers) != 1 || d.MapServers[0].State != "registering" {
		t.Errorf("xtr-b with a wrong key: %+v", d)
	}

	r = lisplab(t, "down", file).wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "lab "+name+" is down (6 nodes removed)") {
		t.Errorf("down FILE: %q", r.stdout)
	}
	gone(t, name)
}

// TestBrokenLab: what a crash can leave (a run directory without state)
// shows in status as a problem, and down removes it.
func TestBrokenLab(t *testing.T) {
	lab.RequireRoot(t)
	name := testLabName("broken")
	dir := filepath.Join(lab.RunRoot, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.DownByName(name) })
	r := lisplab(t, "status", "--json").wantCode(t, cli.ExitFailed)
	var labs []labStatus
	if err := json.Unmarshal([]byte(r.stdout), &labs); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(labs, func(l labStatus) bool { return l.Name == name })
	if i < 0 || labs[i].Healthy || labs[i].Error == "" {
		t.Errorf("status of a broken lab: %+v", labs)
	}
	if r := lisplab(t, "status"); r.code != cli.ExitFailed || !strings.Contains(r.stdout, "lab "+name+": NOT HEALTHY") {
		t.Errorf("status text: exit %d\n%s", r.code, r.stdout)
	}
	lisplab(t, "status", name).wantCode(t, cli.ExitFailed)
	if r := lisplab(t, "up", twoSites, "--name", name, "--lispd", lispdBin); r.code != cli.ExitFailed || !strings.Contains(r.stderr, "already up") {
		t.Errorf("up over a broken lab: exit %d, %s", r.code, r.stderr)
	}
	r = lisplab(t, "down", "--name", name).wantCode(t, cli.ExitOK)
	if !strings.Contains(r.stdout, "lab "+name+" is down") {
		t.Errorf("down of a broken lab: %q", r.stdout)
	}
	gone(t, name)
}
