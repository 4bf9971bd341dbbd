//go:build linux

package dataplane

import (
	"context"
	"errors"
	"runtime/pprof"

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
// than reported as an error.
func (t *linuxTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.dev.Read(bufs, sizes, offset)
	if errors.Is(err, tun.ErrTooManySegments) {
		return n, nil
	}
	return n, err
}

func (t *linuxTUN) Write(bufs [][]byte, offset int) (int, error) { return t.dev.Write(bufs, offset) }
func (t *linuxTUN) BatchSize() int                               { return t.dev.BatchSize() }
func (t *linuxTUN) MTU() (int, error)                            { return t.dev.MTU() }

// Name is the device's name.
func (t *linuxTUN) Name() (string, error) { return t.dev.Name() }

// Close closes the device and waits for its goroutines.
func (t *linuxTUN) Close() error {
	err := t.dev.Close()
	<-t.drained
	return err
}
