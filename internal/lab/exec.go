package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/poll"
)

// How Exec enters a node.
//
// A Go program cannot make a child join an existing network namespace
// through os/exec (SysProcAttr has no setns), so the command is wrapped:
//
//	nsenter --net=/run/netns/<ns> -- \
//	  unshare --mount --propagation slave -- \
//	  /bin/sh -c '<execScript>' lisplab-exec <ns> CMD ARGS...
//
// nsenter and unshare come from util-linux (essential on Debian), mount
// from the required package "mount". nsenter joins the node's network
// namespace; unshare gives the command a mount namespace of its own
// (a slave of the host's, so namespaces deleted later vanish from it too);
// the script bind-mounts each file of /etc/netns/<ns>/ over its namesake
// in /etc (the hosts and resolv.conf that WriteHosts writes), as `ip netns
// exec` does and nsenter alone does not, remounts /sys so
// /sys/class/net shows the node's interfaces, and execs the command.
// Neither nsenter (joining only a network namespace), unshare (without
// --fork) nor the script forks, so the command keeps the pid the Cmd
// reports, and signals reach it directly.
const execScript = `ns=$1; shift
for f in /etc/netns/"$ns"/*; do
	[ -f "$f" ] && [ -e "/etc/${f##*/}" ] || continue
	mount --bind "$f" "/etc/${f##*/}" || exit 126
done
mount -t sysfs "$ns" /sys 2>/dev/null
exec "$@"`

// execTools finds the helper programs once.
var execTools = sync.OnceValues(func() ([3]string, error) {
	var out [3]string
	for i, name := range []string{"nsenter", "unshare", "sh"} {
		p, err := exec.LookPath(name)
		if err != nil {
			return out, fmt.Errorf("lab: Exec needs %s (util-linux): %w", name, err)
		}
		out[i] = p
	}
	return out, nil
})

// Exec returns a command that runs argv inside node's network namespace,
// with the node's hosts file (see WriteHosts) as /etc/hosts. Set its
// Stdin/Stdout/Env as usual; errors (unknown node, missing tools) surface
// when it is started.
func (l *Lab) Exec(node string, argv ...string) *exec.Cmd {
	return l.ExecContext(context.Background(), node, argv...)
}

// ExecContext is Exec with a context that kills the command when done.
func (l *Lab) ExecContext(ctx context.Context, node string, argv ...string) *exec.Cmd {
	args, err := l.execArgs(node, argv)
	if err != nil {
		cmd := exec.CommandContext(ctx, "lisplab-exec")
		cmd.Err = err
		return cmd
	}
	return exec.CommandContext(ctx, args[0], args[1:]...)
}

func (l *Lab) execArgs(node string, argv []string) ([]string, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("lab %s: exec on %s: no command", l.topo.Name, node)
	}
	if _, ok := l.nodes[node]; !ok {
		return nil, fmt.Errorf("lab %s has no node %q", l.topo.Name, node)
	}
	l.mu.Lock()
	down := l.down
	l.mu.Unlock()
	if down {
		return nil, fmt.Errorf("lab %s is down", l.topo.Name)
	}
	tools, err := execTools()
	if err != nil {
		return nil, err
	}
	ns := l.Namespace(node)
	args := []string{
		tools[0], "--net=" + filepath.Join(NetnsDir, ns), "--",
		tools[1], "--mount", "--propagation", "slave", "--",
		tools[2], "-c", execScript, "lisplab-exec", ns,
	}
	return append(args, argv...), nil
}

// Proc is a long-running process started in a node.
type Proc struct {
	Node, Name string
	PID        int
	LogPath    string // stdout and stderr, appended
	PIDPath    string // removed when the process has exited

	cmd     *exec.Cmd
	timeout time.Duration
	done    chan struct{}
	err     error
}

// Start runs argv in node as a long-running process called name (letters,
// digits, '_', '-'): in its own session, with stdout and stderr appended to
// /run/lisplab/<lab>/<node>-<name>.log and its pid in
// /run/lisplab/<lab>/<node>-<name>.pid. env is added to this process's
// environment. The process outlives the caller unless stopped: Down (or
// DownByName from another process) stops it.
func (l *Lab) Start(node, name string, argv []string, env []string) (*Proc, error) {
	if len(name) > maxNodeName || !nodeNameRE.MatchString(name) {
		return nil, fmt.Errorf("lab %s: start: %q is not a valid process name", l.topo.Name, name)
	}
	if _, err := l.node(node); err != nil {
		return nil, err
	}
	l.mu.Lock()
	for _, p := range l.procs {
		if p.Node == node && p.Name == name && !p.Exited() {
			l.mu.Unlock()
			return nil, fmt.Errorf("lab %s: %s already runs a process called %s (pid %d)", l.topo.Name, node, name, p.PID)
		}
	}
	l.mu.Unlock()

	logPath := l.LogPath(node, name)
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab %s: start %s on %s: %w", l.topo.Name, name, node, err)
	}
	defer log.Close() // the child has its own copy
	cmd := l.Exec(node, argv...)
	cmd.Env = append(append(os.Environ(), env...), procMarker(l.topo.Name, node, name))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab %s: start %s on %s: %w", l.topo.Name, name, node, err)
	}
	p := &Proc{
		Node: node, Name: name, PID: cmd.Process.Pid,
		LogPath: logPath, PIDPath: l.PIDPath(node, name),
		cmd: cmd, timeout: l.StopTimeout, done: make(chan struct{}),
	}
	werr := os.WriteFile(p.PIDPath, fmt.Appendf(nil, "%d\n", p.PID), 0o644)
	go p.wait()
	// Until the child has exec'd, /proc shows this process's environment
	// in it, without the marker that DownByName and Status go by. Wait for
	// the marker (a millisecond or so) so they can rely on it.
	marker := procMarker(l.topo.Name, node, name)
	_ = poll.Until(context.Background(), 2*time.Second, time.Millisecond, func() bool { return p.Exited() || hasEnv(p.PID, marker) })
	l.mu.Lock()
	down := l.down
	if !down {
		l.procs = append(l.procs, p)
	}
	l.mu.Unlock()
	if down || werr != nil {
		_ = p.Stop()
		if werr == nil {
			werr = fmt.Errorf("lab %s is down", l.topo.Name)
		}
		return nil, fmt.Errorf("lab %s: start %s on %s: %w", l.topo.Name, name, node, werr)
	}
	return p, nil
}

func (p *Proc) wait() {
	p.err = p.cmd.Wait()
	os.Remove(p.PIDPath)
	close(p.done)
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited says whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns how it ended, as
// exec.Cmd.Wait does.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process (SIGHUP to make lispd reload, say).
func (p *Proc) Signal(sig os.Signal) error {
	if p.Exited() {
		return os.ErrProcessDone
	}
	return p.cmd.Process.Signal(sig)
}

// Stop ends the process and its process group: SIGTERM, then SIGKILL if it
// is still there after the lab's StopTimeout. It returns once the process
// has exited; nil however it ended, an error only if it would not die.
func (p *Proc) Stop() error {
	if p.Exited() {
		return nil
	}
	signal := func(sig unix.Signal) {
		if unix.Kill(-p.PID, sig) != nil {
			_ = p.cmd.Process.Signal(sig)
		}
	}
	signal(unix.SIGTERM)
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	}
	signal(unix.SIGKILL)
	timer.Reset(5 * time.Second)
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return errors.New("lab: process " + p.Name + " on " + p.Node + " survived SIGKILL")
	}
}
