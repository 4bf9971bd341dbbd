package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/wire"
)

// maxDatagram is the receive buffer per message: answers with many
// locators can be long.
const maxDatagram = 9216

// sock is one UDP source socket with its send batch.
type sock struct {
	udp   *net.UDPConn
	bc    control.BatchConn
	port  uint16
	out   []ipv4.Message // one per batch slot, Buffers[0] set per send
	bufs  [][]byte       // preallocated message buffers (register, request)
	req   *requestTemplate
	stats rxStats
}

// slot is the send record of one sequence number: seq+1 while the
// answer is outstanding (0 once matched), and the send time.
type slot struct {
	seq atomic.Uint64
	at  atomic.Int64 // ns since the run started
}

// rxStats are one receiver's counters; only its goroutine writes them.
type rxStats struct {
	hist       histogram
	received   uint64 // datagrams
	replies    uint64 // matched answers
	badAuth    uint64
	unmatched  uint64 // right type, nonce of no outstanding message (late, duplicate, foreign)
	unexpected uint64 // wrong type or too short
	negative   uint64 // negative Map-Replies among the matched ones
	lastReply  int64
}

type engine struct {
	cfg     Config
	space   eidSpace
	socks   []*sock
	local   netip.Addr
	base    uint64 // nonce of sequence number 0
	ring    []slot
	mask    uint64
	reg     *registerTemplate
	sec     *secRequest
	flood   [][]byte
	t0      time.Time
	replies atomic.Uint64
	stop    atomic.Bool
	wg      sync.WaitGroup
}

// mono is the monotonic time since the run started, in ns.
func (e *engine) mono() int64 { return int64(time.Since(e.t0)) }

// Run executes one load test and reports on it. It returns an error only
// when the run could not start (bad configuration, no socket); send
// errors and losses are in the Report. Cancelling ctx ends the sending
// early and skips the drain.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg}
	e.space = newEIDSpace(cfg.EIDBase, cfg.EIDLen, cfg.Prefixes)
	if err := e.open(); err != nil {
		return nil, err
	}
	defer e.closeAll()
	if err := e.prepare(); err != nil {
		return nil, err
	}
	for _, s := range e.socks {
		var auth *authenticator
		if cfg.Mode == Register {
			auth, _ = newAuthenticator(cfg.Algorithm, cfg.Secret)
		}
		var sv *replyVerifier
		if e.sec != nil {
			sv = e.sec.verifier()
		}
		e.wg.Add(1)
		go e.receive(s, auth, sv)
	}
	e.t0 = time.Now()
	sent, sendErrs, bytes := e.send(ctx)
	sendEnd := e.mono()
	if cfg.Mode != Flood && cfg.Drain > 0 && ctx.Err() == nil {
		e.drain(ctx, sent, sendEnd)
	}
	e.stopReceivers()
	return e.report(sent, sendErrs, bytes, sendEnd), nil
}

// open binds the sockets and finds the local address.
func (e *engine) open() error {
	c := &e.cfg
	network, bind := "udp4", netip.IPv4Unspecified()
	if c.Target.Addr().Is6() {
		network, bind = "udp6", netip.IPv6Unspecified()
	}
	if c.Source.IsValid() {
		bind = c.Source.Unmap()
		e.local = bind
	} else {
		a, err := control.LocalAddrFor(c.Target)
		if err != nil {
			return err
		}
		e.local = a
	}
	for range c.Sockets {
		u, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(bind, 0)))
		if err != nil {
			e.closeAll()
			return fmt.Errorf("opening a UDP socket on %s: %w", bind, err)
		}
		_ = u.SetReadBuffer(4 << 20)
		_ = u.SetWriteBuffer(4 << 20)
		s := &sock{udp: u, port: u.LocalAddr().(*net.UDPAddr).AddrPort().Port()}
		s.bc = control.NewBatchConn(u, c.Target.Addr().Is6())
		s.out = make([]ipv4.Message, c.Batch)
		to := net.UDPAddrFromAddrPort(c.Target)
		for i := range s.out {
			s.out[i].Buffers = [][]byte{nil}
			s.out[i].Addr = to
		}
		e.socks = append(e.socks, s)
	}
	return nil
}

func (e *engine) closeAll() {
	for _, s := range e.socks {
		s.udp.Close()
	}
}

// prepare encodes the templates (or the flood's packets), picks the nonce
// base and sizes the send-time ring.
func (e *engine) prepare() error {
	c := &e.cfg
	itr := e.local
	if c.ITRRLOC.IsValid() {
		itr = c.ITRRLOC.Unmap()
	}
	switch c.Mode {
	case Request:
		if c.LISPSEC {
			sec, err := newSecRequest(c.KeyID, c.Secret)
			if err != nil {
				return err
			}
			e.sec = sec
		}
		for _, s := range e.socks {
			t, err := newRequestTemplate(&e.space, c.InstanceID, c.HasInstanceID, itr, s.port, e.sec)
			if err != nil {
				return err
			}
			s.req = t
			s.bufs = makeBufs(c.Batch, len(t.b))
		}
		e.base = randomUint64()
	case Register:
		rloc := e.local
		if c.RLOC.IsValid() {
			rloc = c.RLOC.Unmap()
		}
		t, err := newRegisterTemplate(c, &e.space, rloc)
		if err != nil {
			return err
		}
		e.reg = t
		for _, s := range e.socks {
			s.bufs = makeBufs(c.Batch, len(t.b))
		}
		// Map-Servers may insist that nonces increase per xTR (RFC 9301
		// §5.6): the clock makes them increase across runs too.
		e.base = uint64(time.Now().UnixNano())
	case Flood:
		rng := mrand.New(mrand.NewPCG(randomUint64(), randomUint64()))
		ring, err := floodRing(c, &e.space, itr, e.socks[0].port, rng)
		if err != nil {
			return err
		}
		e.flood = ring
		return nil
	}
	n := uint64(1 << 20)
	if c.Count > 0 && c.Count < n {
		n = 1
		for n < c.Count {
			n <<= 1
		}
	}
	e.ring = make([]slot, n)
	e.mask = n - 1
	return nil
}

func makeBufs(n, size int) [][]byte {
	all := make([]byte, n*size)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = all[i*size : (i+1)*size : (i+1)*size]
	}
	return bufs
}

func randomUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// send runs the hot loop until Count, Duration or ctx ends it.
func (e *engine) send(ctx context.Context) (sent, errs, bytes uint64) {
	c := &e.cfg
	rng := mrand.New(mrand.NewPCG(randomUint64(), randomUint64()))
	var auth *authenticator
	if c.Mode == Register {
		auth, _ = newAuthenticator(c.Algorithm, c.Secret)
	}
	var seq uint64
	limit := c.Duration.Nanoseconds()
	// Token bucket: Rate tokens per second, at most burst saved up: 50 ms
	// worth (at least a batch), so that the scheduler's hiccups do not
	// lower the average rate, yet a long stall is not followed by a long
	// burst. The first message goes at once.
	burst := max(float64(c.Batch), c.Rate*0.05)
	tokens, last := 1.0, int64(0)
	done := ctx.Done()
	si := 0
	for {
		select {
		case <-done:
			return
		default:
		}
		now := e.mono()
		if limit > 0 && now >= limit {
			return
		}
		n := uint64(c.Batch)
		if c.Count > 0 {
			if seq >= c.Count {
				return
			}
			n = min(n, c.Count-seq)
		}
		if c.Rate > 0 {
			tokens = min(burst, tokens+float64(now-last)*c.Rate/1e9)
			last = now
			if tokens < 1 {
				wait := time.Duration((1 - tokens) / c.Rate * 1e9)
				if limit > 0 {
					wait = min(wait, time.Duration(limit-now))
				}
				time.Sleep(wait)
				continue
			}
			n = min(n, uint64(tokens))
			tokens -= float64(n)
		}
		s := e.socks[si]
		si++
		if si == len(e.socks) {
			si = 0
		}
		ms := s.out[:n]
		for k := range ms {
			ms[k].Buffers[0] = e.build(s, rng, auth, seq+uint64(k))
		}
		if c.Mode != Flood {
			at := e.mono()
			for k := range ms {
				q := seq + uint64(k)
				sl := &e.ring[q&e.mask]
				sl.seq.Store(0)
				sl.at.Store(at)
				sl.seq.Store(q + 1)
			}
		}
		seq += n
		ok, bad := writeAll(s.bc, ms)
		sent += ok
		errs += bad
		for k := range ms[:ok+bad] {
			bytes += uint64(len(ms[k].Buffers[0]))
		}
	}
}

// build returns message seq for socket s.
func (e *engine) build(s *sock, rng *mrand.Rand, auth *authenticator, seq uint64) []byte {
	k := seq % uint64(e.cfg.Batch)
	switch e.cfg.Mode {
	case Request:
		i := 0
		if e.space.n > 1 {
			i = rng.IntN(e.space.n)
		}
		hi, lo := e.space.addr(i, rng.Uint64(), rng.Uint64())
		return s.req.fill(s.bufs[k], &e.space, e.base+seq, hi, lo)
	case Register:
		return e.reg.fill(s.bufs[k], &e.space, auth, e.base+seq, int(seq%uint64(e.space.n)))
	}
	return e.flood[seq%uint64(len(e.flood))]
}

// writeAll sends ms with as few sendmmsg calls as it takes; a message the
// kernel refuses is counted as an error and skipped.
func writeAll(bc control.BatchConn, ms []ipv4.Message) (sent, errs uint64) {
	for len(ms) > 0 {
		k, err := bc.WriteBatch(ms, 0)
		k = max(k, 0)
		sent += uint64(k)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				errs += uint64(len(ms) - k)
				return
			}
			errs++
			k++
		}
		ms = ms[min(k, len(ms)):]
	}
	return
}

// drain waits for the answers still on the way.
func (e *engine) drain(ctx context.Context, sent uint64, sendEnd int64) {
	end := sendEnd + e.cfg.Drain.Nanoseconds()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for e.replies.Load() < sent && e.mono() < end {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *engine) stopReceivers() {
	e.stop.Store(true)
	for _, s := range e.socks {
		_ = s.udp.SetReadDeadline(time.Now())
	}
	e.wg.Wait()
}

// receive reads one socket until stopReceivers.
func (e *engine) receive(s *sock, auth *authenticator, sv *replyVerifier) {
	defer e.wg.Done()
	ms := make([]ipv4.Message, e.cfg.Batch)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, maxDatagram)}
	}
	st := &s.stats
	for {
		n, err := s.bc.ReadBatch(ms, 0)
		if err != nil {
			if e.stop.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := e.mono()
		before := st.replies
		for i := range n {
			e.handle(ms[i].Buffers[0][:ms[i].N], now, st, auth, sv)
		}
		if st.replies != before {
			e.replies.Add(st.replies - before)
			st.lastReply = now
		}
	}
}

// handle matches one received datagram.
// sv, when not nil, verifies the LISP-SEC signature of Map-Replies.
func (e *engine) handle(b []byte, now int64, st *rxStats, auth *authenticator, sv *replyVerifier) {
	st.received++
	var want wire.MessageType
	switch e.cfg.Mode {
	case Request:
		want = wire.TypeMapReply
	case Register:
		want = wire.TypeMapNotify
	default:
		return
	}
	if len(b) < 12 || wire.MessageType(b[0]>>4) != want {
		st.unexpected++
		return
	}
	if want == wire.TypeMapNotify && !auth.verify(b) || sv != nil && !sv.verify(b) {
		st.badAuth++
		return
	}
	seq := binary.BigEndian.Uint64(b[offNonce:]) - e.base
	sl := &e.ring[seq&e.mask]
	w := seq + 1
	if w == 0 || sl.seq.Load() != w {
		st.unmatched++
		return
	}
	at := sl.at.Load()
	if !sl.seq.CompareAndSwap(w, 0) {
		st.unmatched++
		return
	}
	st.replies++
	st.hist.record(now - at)
	// A negative Map-Reply: records, the first with Locator Count 0.
	if want == wire.TypeMapReply && b[3] > 0 && len(b) > 16 && b[16] == 0 {
		st.negative++
	}
}
