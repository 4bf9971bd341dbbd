//go:build linux

package dataplane

import (
	"context"
	"errors"
	"runtime/pprof"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// linuxTUN is a kernel TUN device through wireguard-go's tun package, with
// the virtio-net header and TCP/UDP segmentation offloads on: a read may
// return several packets split from one super-packet, and a write
// coalesces TCP and UDP segments (GRO) when the buffers have room. Both
// need offset >= the 10-byte virtio-net header, which Headroom is.
type linuxTUN struct {
	dev     tun.Device
	drained chan struct{}

	// Read gathering: after a read, more packets already queued are read
	// while a poll of the descriptor says so and at least dev.BatchSize()
	// buffers are left (a super-packet splits into at most that many).
	rc       syscall.RawConn // nil: no gathering
	pfd      [1]unix.PollFd
	zero     unix.Timespec // ppoll's timeout: none
	ready    bool
	pollFunc func(fd uintptr)
}

// virtioNetHdrLen is the size of the virtio-net header wireguard-go's
// TUN writes in front of each packet (unexported there).
const virtioNetHdrLen = 10

var _ = [Headroom - virtioNetHdrLen]struct{}{} // Headroom leaves room for the virtio header

// OpenTUN creates (or attaches to) the TUN device name with the given MTU
// in the calling thread's network namespace. Addresses and routes are not
// its business.
func OpenTUN(name string, mtu int) (TUN, error) {
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, err
	}
	t := &linuxTUN{dev: dev, drained: make(chan struct{})}
	if nt, ok := dev.(*tun.NativeTun); ok {
		if rc, err := nt.File().SyscallConn(); err == nil {
			t.rc = rc
			t.pollFunc = t.poll
		}
	}
	// The device reports up/down/MTU events on a channel that must be
	// drained or its goroutines block; it is closed once they have exited.
	go pprof.Do(context.Background(), pprof.Labels("role", "dataplane-tun-events"), func(context.Context) {
		defer close(t.drained)
		for range dev.Events() {
		}
	})
	return t, nil
}

// Read reads a batch; segments that did not fit bufs are dropped rather
// than reported as an error. The device hands over one packet (or one
// super-packet) per read: while more are queued and bufs has room for a
// whole super-packet, Read goes on reading, so that small packets reach
// the underlay in batches (one UDP GSO send per flow run) rather than one
// system call each.
func (t *linuxTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.read(bufs, sizes, offset)
	if err != nil || t.rc == nil {
		return n, err
	}
	per := t.dev.BatchSize()
	for len(bufs)-n >= per && t.queued() {
		k, err := t.read(bufs[n:], sizes[n:], offset)
		n += k
		if err != nil {
			return n, err // the caller forwards the n packets first
		}
		if k == 0 {
			break
		}
	}
	return n, nil
}

func (t *linuxTUN) read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.dev.Read(bufs, sizes, offset)
	if errors.Is(err, tun.ErrTooManySegments) {
		return n, nil
	}
	return n, err
}

// queued reports whether a read would find a packet now.
func (t *linuxTUN) queued() bool {
	t.ready = false
	if t.rc.Control(t.pollFunc) != nil {
		return false
	}
	return t.ready
}

// poll asks, without waiting, whether a read would find a packet. The
// system call is raw: it cannot block, and a runtime system call would wake
// sysmon, when idle, for a millisecond of 20 µs ticks (see gsoSockets.send).
func (t *linuxTUN) poll(fd uintptr) {
	t.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&t.pfd[0])), 1,
		uintptr(unsafe.Pointer(&t.zero)), 0, 0, 0)
	t.ready = e == 0 && n > 0 && t.pfd[0].Revents&unix.POLLIN != 0
}

func (t *linuxTUN) Write(bufs [][]byte, offset int) (int, error) { return t.dev.Write(bufs, offset) }

// BatchSize is twice the device's: Read gathers packets while a whole
// device batch still fits.
func (t *linuxTUN) BatchSize() int    { return 2 * t.dev.BatchSize() }
func (t *linuxTUN) MTU() (int, error) { return t.dev.MTU() }

// Name is the device's name.
func (t *linuxTUN) Name() (string, error) { return t.dev.Name() }

// Close closes the device and waits for its goroutines.
func (t *linuxTUN) Close() error {
	err := t.dev.Close()
	<-t.drained
	return err
}
