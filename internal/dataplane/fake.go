package dataplane

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// FakeTUN is an in-memory TUN for tests: Inject plays the host sending a
// packet into the TUN, Written delivers what the engine wrote to it.
type FakeTUN struct {
	in, out   chan []byte
	batch     int
	mtu       int
	done      chan struct{}
	closeOnce sync.Once
	// Lost counts packets written while Written was full.
	Lost atomic.Uint64
}

// NewFakeTUN returns a FakeTUN with the given MTU and batch size.
func NewFakeTUN(mtu, batch int) *FakeTUN {
	return &FakeTUN{in: make(chan []byte, 4096), out: make(chan []byte, 16384), batch: max(batch, 1), mtu: mtu,
		done: make(chan struct{})}
}

// Inject queues a copy of pkt for the engine to read.
func (t *FakeTUN) Inject(pkt []byte) {
	select {
	case t.in <- append([]byte(nil), pkt...):
	case <-t.done:
	}
}

// Written delivers copies of the packets the engine wrote.
func (t *FakeTUN) Written() <-chan []byte { return t.out }

// Read blocks for one packet, then takes what else is queued, up to the
// batch size.
func (t *FakeTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var p []byte
	select {
	case p = <-t.in:
	case <-t.done:
		return 0, errClosed
	}
	limit := min(len(bufs), t.batch)
	n := 0
	for {
		if len(p) > len(bufs[n])-offset {
			return n, errors.New("fake TUN: packet larger than buffer")
		}
		sizes[n] = copy(bufs[n][offset:], p)
		n++
		if n == limit {
			return n, nil
		}
		select {
		case p = <-t.in:
		default:
			return n, nil
		}
	}
}

// Write copies each packet to Written.
func (t *FakeTUN) Write(bufs [][]byte, offset int) (int, error) {
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

func (t *FakeTUN) BatchSize() int    { return t.batch }
func (t *FakeTUN) MTU() (int, error) { return t.mtu, nil }
func (t *FakeTUN) Close() error      { t.closeOnce.Do(func() { close(t.done) }); return nil }

// FakeNet is an in-memory RLOC network joining FakeUnderlays: a datagram
// sent to an address goes to the underlay attached with that address.
type FakeNet struct {
	mu    sync.Mutex
	nodes map[netip.Addr]*FakeUnderlay
	// Tap, when set before traffic flows, sees a copy of every datagram
	// sent (UDP payload and outer headers) and may change the outer
	// headers delivered (to play a router that decrements the TTL or marks
	// CE).
	Tap func(payload []byte, o *Outer)
	// Unroutable counts datagrams sent to an address nobody attached.
	Unroutable atomic.Uint64
}

// NewFakeNet returns an empty network.
func NewFakeNet() *FakeNet { return &FakeNet{nodes: map[netip.Addr]*FakeUnderlay{}} }

// Attach returns an underlay receiving the datagrams sent to addrs.
func (n *FakeNet) Attach(batch int, addrs ...netip.Addr) *FakeUnderlay {
	u := &FakeUnderlay{net: n, in: make(chan fakeDatagram, 16384), batch: max(batch, 1), done: make(chan struct{})}
	n.mu.Lock()
	for _, a := range addrs {
		n.nodes[a] = u
	}
	n.mu.Unlock()
	return u
}

type fakeDatagram struct {
	payload []byte
	o       Outer
}

// FakeUnderlay is one node's view of a FakeNet.
type FakeUnderlay struct {
	net       *FakeNet
	in        chan fakeDatagram
	batch     int
	done      chan struct{}
	closeOnce sync.Once
	// Lost counts datagrams that arrived while the receive queue was full.
	Lost atomic.Uint64
}

// Send copies each payload to the underlay owning its destination.
func (u *FakeUnderlay) Send(bufs [][]byte, outer []Outer, offset int) (int, error) {
	if offset < UnderlayHeadroom {
		return 0, errors.New("fake underlay: not enough headroom")
	}
	if len(bufs) > u.batch {
		return 0, errors.New("fake underlay: batch too large")
	}
	select {
	case <-u.done:
		return 0, errClosed
	default:
	}
	for i, b := range bufs {
		d := fakeDatagram{payload: append([]byte(nil), b[offset:]...), o: outer[i]}
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
func (u *FakeUnderlay) Inject(payload []byte, o Outer) {
	u.deliver(fakeDatagram{payload: append([]byte(nil), payload...), o: o})
}

func (u *FakeUnderlay) deliver(d fakeDatagram) {
	select {
	case u.in <- d:
	default:
		u.Lost.Add(1)
	}
}

// Receivers returns one receive function reading the datagrams sent to u.
func (u *FakeUnderlay) Receivers() []ReceiveFunc { return []ReceiveFunc{u.receive} }

func (u *FakeUnderlay) receive(bufs [][]byte, sizes []int, outer []Outer, offset int) (int, error) {
	var d fakeDatagram
	select {
	case d = <-u.in:
	case <-u.done:
		return 0, errClosed
	}
	limit := min(len(bufs), u.batch)
	n := 0
	for {
		if len(d.payload) > len(bufs[n])-offset {
			return n, errors.New("fake underlay: datagram larger than buffer")
		}
		sizes[n] = copy(bufs[n][offset:], d.payload)
		outer[n] = d.o
		n++
		if n == limit {
			return n, nil
		}
		select {
		case d = <-u.in:
		default:
			return n, nil
		}
	}
}

// Next returns the next datagram sent to u, for tests that play the
// remote side themselves (do not also give u to an engine).
func (u *FakeUnderlay) Next(timeout time.Duration) ([]byte, Outer, bool) {
	select {
	case d := <-u.in:
		return d.payload, d.o, true
	case <-time.After(timeout):
		return nil, Outer{}, false
	}
}

func (u *FakeUnderlay) BatchSize() int { return u.batch }
func (u *FakeUnderlay) Close() error   { u.closeOnce.Do(func() { close(u.done) }); return nil }
