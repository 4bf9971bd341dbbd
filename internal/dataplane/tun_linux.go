//go:build linux

package dataplane

import (
	"context"
	"errors"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// linuxTUN is a kernel TUN device with the virtio-net header and TCP/UDP
// segmentation offloads on. wireguard-go's tun package creates it, sets
// the offloads and reports its events; reading and writing are this
// file's: raw read(2) and write(2) on the non-blocking descriptor through
// the netpoller, with the offloads done in tunoffload.go (a read may give
// several packets cut from one super-packet; a write coalesces TCP and UDP
// segments, GRO). The system calls are raw for the reason gsoSockets.send
// gives: they cannot block, and a runtime system call wakes an idle sysmon
// for a millisecond of 20 µs ticks, which on a two-core machine cost the
// xTRs a fifth of their time. Read and write need offset >= the 10-byte
// virtio-net header, which Headroom is.
type linuxTUN struct {
	dev     tun.Device
	rc      syscall.RawConn
	drained chan struct{}
	closing atomic.Bool

	// Read side: the device's read lands in rbuf (a super-packet is up
	// to 64 KB), then is split into the caller's buffers.
	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool
	tryFn  func(fd uintptr)
	room   int // buffers a read must find free to go on gathering
	// dropped counts segments that did not fit a read's buffers.
	dropped atomic.Uint64

	// Write side: the batch being written and where the write is.
	wmu     sync.Mutex
	gro     groBatch
	wbufs   [][]byte
	woff    int
	wnext   int
	wpkts   int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

var _ = [Headroom - virtioNetHdrLen]struct{}{} // Headroom leaves room for the virtio header

var errTUNOffset = errors.New("dataplane: TUN write: offset leaves no room for the virtio-net header")

// OpenTUN creates (or attaches to) the TUN device name with the given MTU
// in the calling thread's network namespace. Addresses and routes are not
// its business.
func OpenTUN(name string, mtu int) (TUN, error) {
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, err
	}
	nt, ok := dev.(*tun.NativeTun)
	var rc syscall.RawConn
	if ok {
		rc, err = nt.File().SyscallConn()
	}
	if !ok || err != nil {
		dev.Close()
		return nil, errors.New("dataplane: TUN: no raw access to the device")
	}
	t := &linuxTUN{dev: dev, rc: rc, drained: make(chan struct{}), rbuf: make([]byte, virtioNetHdrLen+0xffff)}
	t.readFn, t.tryFn, t.writeFn = t.readRaw, t.tryRead, t.writeRaw
	t.room = max(dev.BatchSize(), 1)
	// wireguard-go turns USO on when the kernel has it (6.2) and does not
	// say; asking again for the same offloads tells.
	_ = rc.Control(func(fd uintptr) {
		t.gro.udp = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD,
			unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6|unix.TUN_F_USO4|unix.TUN_F_USO6) == nil
	})
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
// whole super-packet, Read goes on reading without waiting, so that small
// packets reach the underlay in batches (one UDP GSO send per flow run)
// rather than one system call each.
func (t *linuxTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	t.rmu.Lock()
	defer t.rmu.Unlock()
	t.rn, t.rerr = 0, 0
	if err := t.rc.Read(t.readFn); err != nil {
		return 0, t.ioErr(err)
	}
	if t.rerr != 0 {
		return 0, t.ioErr(t.rerr)
	}
	n, d, err := splitGSO(t.rbuf[:t.rn], bufs, sizes, offset)
	t.dropped.Add(uint64(d))
	for err == nil && len(bufs)-n >= t.room {
		t.rn, t.rerr = 0, 0
		if t.rc.Control(t.tryFn) != nil || t.rn == 0 {
			break // nothing queued (or an error the next Read reports)
		}
		var k int
		k, d, err = splitGSO(t.rbuf[:t.rn], bufs[n:], sizes[n:], offset)
		t.dropped.Add(uint64(d))
		n += k
	}
	return n, err // the caller forwards the n packets first
}

// DroppedOnRead is how many segments did not fit a read's buffers since
// it was last asked.
func (t *linuxTUN) DroppedOnRead() uint64 { return t.dropped.Swap(0) }

// readRaw is the waiting read: false (wait until readable) when nothing
// is queued.
func (t *linuxTUN) readRaw(fd uintptr) bool {
	n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&t.rbuf[0])), uintptr(len(t.rbuf)))
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	t.rn, t.rerr = int(n), e
	if e != 0 {
		t.rn = 0
	}
	return true
}

// tryRead reads what is queued, if anything, without waiting.
func (t *linuxTUN) tryRead(fd uintptr) {
	if !t.readRaw(fd) || t.rerr != 0 {
		t.rn = 0
	}
}

// Write coalesces bufs (see groBatch.coalesce) and writes the result, one
// system call per packet or super-packet. It returns how many of bufs were
// written and the first error; the others are still written.
func (t *linuxTUN) Write(bufs [][]byte, offset int) (int, error) {
	if offset < virtioNetHdrLen {
		return 0, errTUNOffset
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.gro.coalesce(bufs, offset)
	t.wbufs, t.woff, t.wnext, t.wpkts, t.werr = bufs, offset, 0, 0, 0
	err := t.rc.Write(t.writeFn)
	n := t.wpkts
	if err == nil && t.werr != 0 {
		err = t.werr
	}
	t.wbufs = nil
	if err != nil {
		return n, t.ioErr(err)
	}
	return n, nil
}

// writeRaw writes from t.wnext on; false (wait until writable) when the
// device will not take more now.
func (t *linuxTUN) writeRaw(fd uintptr) bool {
	for ; t.wnext < len(t.wbufs); t.wnext++ {
		i := t.wnext
		segs := t.gro.segs(i)
		if segs == 0 {
			continue // joined to an earlier packet
		}
		b := t.wbufs[i][t.woff-virtioNetHdrLen : t.woff+t.gro.size[i]]
		_, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			t.wpkts += segs
		case unix.EAGAIN, unix.EINTR:
			return false
		case unix.EBADFD:
			t.werr = e
			return true
		default:
			if t.werr == 0 {
				t.werr = e
			}
		}
	}
	return true
}

// ioErr maps the errors of a closed device to os.ErrClosed.
func (t *linuxTUN) ioErr(err error) error {
	if t.closing.Load() || errors.Is(err, unix.EBADFD) {
		return os.ErrClosed
	}
	return err
}

// BatchSize is twice the device's: Read gathers packets while a whole
// device batch still fits.
func (t *linuxTUN) BatchSize() int    { return 2 * t.dev.BatchSize() }
func (t *linuxTUN) MTU() (int, error) { return t.dev.MTU() }

// Name is the device's name.
func (t *linuxTUN) Name() (string, error) { return t.dev.Name() }

// Close closes the device and waits for its goroutines.
func (t *linuxTUN) Close() error {
	t.closing.Store(true)
	err := t.dev.Close()
	<-t.drained
	return err
}
