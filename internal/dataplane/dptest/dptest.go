// Package dptest has in-memory test doubles for the data plane's I/O: a
// TUN whose packets a test injects and reads back, and an RLOC network
// joining underlays by address. With them engines, and whole daemons, run
// ITR to ETR in a unit test without root or namespaces.
//
// The package is for tests only; nothing the lispd binary links imports
// it (cmd/lispd's tests check).
package dptest

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/internal/dataplane/underlay"
)

var errClosed = net.ErrClosed

// TUN is an in-memory TUN device: Inject plays the host sending a packet
// into the TUN, Written delivers what the engine wrote to it.
type TUN struct {
	in, out   chan []byte
	batch     int
	mtu       int
	done      chan struct{}
	closeOnce sync.Once
	// Lost counts packets written while Written was full.
	Lost atomic.Uint64
	// ReadDrops is what DroppedOnRead reports next, as a device that cut
	// a super-packet into more segments than a read's buffers would.
	ReadDrops atomic.Uint64
}

// NewTUN returns a TUN with the given MTU and batch size.
func NewTUN(mtu, batch int) *TUN {
	return &TUN{in: make(chan []byte, 4096), out: make(chan []byte, 16384), batch: max(batch, 1), mtu: mtu,
		done: make(chan struct{})}
}

// Inject queues a copy of pkt for the engine to read.
func (t *TUN) Inject(pkt []byte) {
	select {
	case t.in <- append([]byte(nil), pkt...):
	case <-t.done:
	}
}

// Written delivers copies of the packets the engine wrote.
func (t *TUN) Written() <-chan []byte { return t.out }

// Read blocks for one packet, then takes what else is queued, up to the
// batch size.
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return readBatch(t.in, t.done, min(len(bufs), t.batch), func(i int, p []byte) error {
		if len(p) > len(bufs[i])-offset {
			return errors.New("dptest TUN: packet larger than buffer")
		}
		sizes[i] = copy(bufs[i][offset:], p)
		return nil
	})
}

// Write copies each packet to Written.
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) {
	select {
	case <-t.done:
		return 0, errClosed
	default:
	}
	for _, b := range bufs {
		select {
		case t.out <- append([]byte(nil), b[offset:]...):
		default:
			t.Lost.Add(1)
		}
	}
	return len(bufs), nil
}

// DroppedOnRead takes ReadDrops.
func (t *TUN) DroppedOnRead() uint64 { return t.ReadDrops.Swap(0) }

func (t *TUN) BatchSize() int    { return t.batch }
func (t *TUN) MTU() (int, error) { return t.mtu, nil }
func (t *TUN) Close() error      { t.closeOnce.Do(func() { close(t.done) }); return nil }

// Net is an in-memory RLOC network joining Underlays: a datagram
// sent to an address goes to the underlay attached with that address.
type Net struct {
	mu    sync.Mutex
	nodes map[netip.Addr]*Underlay
	// Tap, when set before traffic flows, sees a copy of every datagram
	// sent (UDP payload and outer headers) and may change the outer
	// headers delivered (to play a router that decrements the TTL or marks
	// CE).
	Tap func(payload []byte, o *underlay.Outer)
	// Unroutable counts datagrams sent to an address nobody attached.
	Unroutable atomic.Uint64
}

// NewNet returns an empty network.
func NewNet() *Net { return &Net{nodes: map[netip.Addr]*Underlay{}} }

// Attach returns an underlay receiving the datagrams sent to addrs.
func (n *Net) Attach(batch int, addrs ...netip.Addr) *Underlay {
	u := &Underlay{net: n, in: make(chan datagram, 16384), batch: max(batch, 1), done: make(chan struct{})}
	n.mu.Lock()
	for _, a := range addrs {
		n.nodes[a] = u
	}
	n.mu.Unlock()
	return u
}

type datagram struct {
	payload []byte
	o       underlay.Outer
}

// Underlay is one node's view of a Net.
type Underlay struct {
	net       *Net
	in        chan datagram
	batch     int
	done      chan struct{}
	closeOnce sync.Once
	// Lost counts datagrams that arrived while the receive queue was full.
	Lost atomic.Uint64
}

// Send copies each payload to the underlay owning its destination.
func (u *Underlay) Send(bufs [][]byte, outer []underlay.Outer, offset int) (int, error) {
	if offset < underlay.Headroom {
		return 0, errors.New("dptest underlay: not enough headroom")
	}
	if len(bufs) > u.batch {
		return 0, errors.New("dptest underlay: batch too large")
	}
	select {
	case <-u.done:
		return 0, errClosed
	default:
	}
	for i, b := range bufs {
		d := datagram{payload: append([]byte(nil), b[offset:]...), o: outer[i]}
		d.o.HasTOS = true
		if u.net.Tap != nil {
			u.net.Tap(d.payload, &d.o)
		}
		u.net.mu.Lock()
		to := u.net.nodes[d.o.Dst]
		u.net.mu.Unlock()
		if to == nil {
			u.net.Unroutable.Add(1)
			continue
		}
		to.deliver(d)
	}
	return len(bufs), nil
}

// Inject delivers a datagram to u as if it came from the network.
func (u *Underlay) Inject(payload []byte, o underlay.Outer) {
	u.deliver(datagram{payload: append([]byte(nil), payload...), o: o})
}

func (u *Underlay) deliver(d datagram) {
	select {
	case u.in <- d:
	default:
		u.Lost.Add(1)
	}
}

// Receivers returns one receive function reading the datagrams sent to u.
func (u *Underlay) Receivers() []underlay.ReceiveFunc { return []underlay.ReceiveFunc{u.receive} }

func (u *Underlay) receive(bufs [][]byte, sizes []int, outer []underlay.Outer, offset int) (int, error) {
	return readBatch(u.in, u.done, min(len(bufs), u.batch), func(i int, d datagram) error {
		if len(d.payload) > len(bufs[i])-offset {
			return errors.New("dptest underlay: datagram larger than buffer")
		}
		sizes[i] = copy(bufs[i][offset:], d.payload)
		outer[i] = d.o
		return nil
	})
}

// readBatch blocks for one item of in, then takes what else is queued, up
// to limit, handing each to put for slot i: the batch semantics of a TUN
// read and of an underlay receive.
func readBatch[T any](in <-chan T, done <-chan struct{}, limit int, put func(i int, v T) error) (int, error) {
	var v T
	select {
	case v = <-in:
	case <-done:
		return 0, errClosed
	}
	for n := 0; ; {
		if err := put(n, v); err != nil {
			return n, err
		}
		n++
		if n == limit {
			return n, nil
		}
		select {
		case v = <-in:
		default:
			return n, nil
		}
	}
}

// Next returns the next datagram sent to u, for tests that play the
// remote side themselves (do not also give u to an engine).
func (u *Underlay) Next(timeout time.Duration) ([]byte, underlay.Outer, bool) {
	select {
	case d := <-u.in:
		return d.payload, d.o, true
	case <-time.After(timeout):
		return nil, underlay.Outer{}, false
	}
}

func (u *Underlay) BatchSize() int { return u.batch }
func (u *Underlay) Close() error   { u.closeOnce.Do(func() { close(u.done) }); return nil }
