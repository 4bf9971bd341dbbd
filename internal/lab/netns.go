package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/poll"
)

// Where the lab keeps things. Namespaces are named the way `ip netns`
// names them, so `ip netns list` and `ip netns exec` see them too.
const (
	RunRoot  = "/run/lisplab" // RunRoot/<lab>/: state, pid files, logs, admin sockets
	NetnsDir = "/run/netns"   // bind mounts of the namespaces
	EtcNetns = "/etc/netns"   // EtcNetns/<namespace>/hosts, as `ip netns exec` expects
)

// onThreadIn runs fn on a fresh OS thread switched into the namespace ns
// (or, with ns < 0, on a fresh thread that fn may switch itself). The
// thread is never unlocked, so the Go runtime discards it when fn returns:
// no goroutine ever runs later on a thread left in a lab namespace. A
// panic in fn is carried back and re-raised in the caller's goroutine.
func onThreadIn(ns netns.NsHandle, fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.panic = p
			}
			ch <- r
		}()
		if ns >= 0 {
			if err := netns.Set(ns); err != nil {
				r.err = fmt.Errorf("setns: %w", err)
				return
			}
		}
		r.err = fn()
	}()
	r := <-ch
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// ensureNetnsDir makes /run/netns a shared mount point, as `ip netns add`
// does, so that removing a namespace's bind mount also removes the copies
// in the private mount namespaces Exec makes (they are slaves of it).
// Otherwise a long-running process started by Exec would keep every
// namespace that existed when it started alive.
func ensureNetnsDir() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return err
	}
	madeMount := false
	for {
		err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || madeMount {
			return fmt.Errorf("make %s a shared mount: %w", NetnsDir, err)
		}
		// Not a mount point yet: bind it onto itself, then retry.
		if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s: %w", NetnsDir, err)
		}
		madeMount = true
	}
}

// createNetns creates the named network namespace: a new namespace on a
// throwaway thread, bind-mounted to /run/netns/<name>. It fails if the
// name is taken.
func createNetns(name string) (netns.NsHandle, error) {
	path := filepath.Join(NetnsDir, name)
	h := netns.None()
	err := onThreadIn(-1, func() error {
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("namespace %s already exists", name)
			}
			return err
		}
		f.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			os.Remove(path)
			return fmt.Errorf("unshare: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			os.Remove(path)
			return fmt.Errorf("bind-mount namespace: %w", err)
		}
		h, err = netns.GetFromPath(path)
		return err
	})
	if err != nil {
		return netns.None(), fmt.Errorf("create namespace %s: %w", name, err)
	}
	return h, nil
}

// deleteNetns removes the namespace's bind mount and file. The kernel
// frees the namespace, and the veth ends in it, once nothing else holds it
// (processes are killed before). A missing namespace is not an error.
func deleteNetns(name string) error {
	path := filepath.Join(NetnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// listNetns returns the names in /run/netns that begin with prefix.
func listNetns(prefix string) ([]string, error) {
	return dirNames(NetnsDir, func(e fs.DirEntry) bool { return strings.HasPrefix(e.Name(), prefix) })
}

// netnsInode is the inode that identifies the namespace mounted at
// /run/netns/<name>, or 0 when it is not mounted.
func netnsInode(name string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(NetnsDir, name), &st); err != nil {
		return 0
	}
	var root unix.Stat_t
	if unix.Stat(NetnsDir, &root) == nil && root.Dev == st.Dev {
		return 0 // the plain file, nothing mounted on it
	}
	return st.Ino
}

// pidsInNetns lists the processes (other than this one) whose network
// namespace is one of inodes, the way `ip netns pids` does.
func pidsInNetns(inodes map[uint64]bool) []int {
	if len(inodes) == 0 {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			continue
		}
		// "net:[4026532281]"
		ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "net:["), "]"), 10, 64)
		if err == nil && inodes[ino] {
			out = append(out, pid)
		}
	}
	return out
}

// alive says whether pid names a process that has not exited (a zombie
// has).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// startTime is the process's start time in clock ticks since boot, which
// with the pid identifies a process across pid reuse; 0 if unknown.
func startTime(pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 { // field 22 of stat is f[19] after the command
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// hasEnv says whether the environment pid started with holds kv exactly.
func hasEnv(pid int, kv string) bool {
	return envMatch(pid, func(e string) bool { return e == kv })
}

// hasEnvPrefix says whether an entry of the environment pid started with
// begins with prefix.
func hasEnvPrefix(pid int, prefix string) bool {
	return envMatch(pid, func(e string) bool { return strings.HasPrefix(e, prefix) })
}

// envMatch says whether an entry of pid's environment satisfies match.
// While a process is in the middle of an exec its environment reads as
// empty for a moment, so a miss is retried a few times.
func envMatch(pid int, match func(string) bool) bool {
	for try := 0; try < 5; try++ {
		if try > 0 {
			time.Sleep(2 * time.Millisecond)
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			return false
		}
		for _, e := range strings.Split(string(data), "\x00") {
			if match(e) {
				return true
			}
		}
		if !alive(pid) {
			return false
		}
	}
	return false
}

// terminate sends SIGTERM to pid (its whole process group when it leads
// one), waits up to timeout for it to exit, then sends SIGKILL and waits a
// little more. It returns an error only if the process outlives that.
func terminate(pid int, timeout time.Duration) error {
	target := pid
	if pgid, err := unix.Getpgid(pid); err == nil && pgid == pid {
		target = -pid
	}
	if err := unix.Kill(target, unix.SIGTERM); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	if waitGone(pid, timeout) {
		return nil
	}
	_ = unix.Kill(target, unix.SIGKILL)
	if waitGone(pid, 2*time.Second) {
		return nil
	}
	return fmt.Errorf("process %d survived SIGKILL", pid)
}

// waitGone polls until pid has exited or timeout passes.
func waitGone(pid int, timeout time.Duration) bool {
	return poll.Until(context.Background(), timeout, 10*time.Millisecond, func() bool { return !alive(pid) }) == nil
}

// terminateAll terminates the pids concurrently.
func terminateAll(pids []int, timeout time.Duration) error {
	errs := make([]error, len(pids))
	var wg sync.WaitGroup
	for i, pid := range pids {
		wg.Go(func() { errs[i] = terminate(pid, timeout) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

var errNoSysctl = errors.New("no such key")

// writeSysctl sets a net.* sysctl of the calling thread's namespace.
func writeSysctl(key, value string) error {
	path := "/proc/sys/" + sysctlPath(key)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("sysctl %s: %w", key, errNoSysctl)
		}
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// readSysctl reads a sysctl of the calling thread's namespace.
func readSysctl(key string) (string, error) {
	data, err := os.ReadFile("/proc/sys/" + sysctlPath(key))
	return strings.TrimSpace(string(data)), err
}

// sysctlPath turns a key into a /proc/sys path. As in sysctl(8), a key
// with '/' uses '/' as its separator (so '.' can appear in interface
// names); otherwise '.' separates.
func sysctlPath(key string) string {
	if strings.Contains(key, "/") {
		return key
	}
	return strings.ReplaceAll(key, ".", "/")
}
