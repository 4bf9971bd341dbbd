// Package cluster shares a Map-Server's registrations with the other
// Map-Servers of a cluster through etcd (mapserver.Store): each node
// writes its own Records of the prefixes it took registrations for,
// attached to one lease of its own, only when what they answer changes;
// watches every node's Records into its Map-Server's table; and shares
// the Map-Register replay state so that a replay to another node is
// refused. While etcd is unreachable the node keeps answering from the
// table it has, says so, and catches up from its last revision (or a
// full listing) when etcd is back. docs/cluster.md is the operator's
// side of it.
package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/stats"
)

// Defaults of Options.
const (
	DefaultPrefix      = "/lispd/"
	DefaultDialTimeout = 5 * time.Second
	DefaultLeaseTTL    = 10 * time.Second
)

// Options configure a node's etcd store.
type Options struct {
	Endpoints   []string
	Prefix      string        // of every key; default /lispd/
	DialTimeout time.Duration // of each etcd call; default 5s
	TLS         *tls.Config   // nil: plain
	// Node is this Map-Server's name in the cluster; unique, no '/'.
	Node string
	// LeaseTTL is how long a dead node's Records outlive it. Default 10s.
	LeaseTTL time.Duration
	Stats    *stats.Registry
	Log      *slog.Logger
}

func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Stats == nil {
		o.Stats = stats.NewRegistry()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// batchOps bounds the operations of one etcd transaction (etcd refuses
// more than --max-txn-ops, 128 by default).
const batchOps = 100

// listTimeout is the deadline of one page of a full listing.
const listTimeout = 30 * time.Second

// writesInFlight bounds the write transactions a node has in flight.
const writesInFlight = 8

// retryWait is how soon writes that failed are tried again.
const retryWait = 200 * time.Millisecond

// Store is one node's etcd store. It implements mapserver.Store.
type Store struct {
	opts Options
	ms   *mapserver.Server
	cli  *clientv3.Client

	mu          sync.Mutex
	dirty       map[mapping.EID]struct{}
	rewrite     map[mapping.EID]struct{} // to write again under a new lease, guarded
	nonces      map[mapserver.NonceKey]uint64
	nodes       map[string]nodeInfo
	lease       clientv3.LeaseID
	downSince   time.Time // zero while etcd answers
	started     bool      // etcd answered once: later outages are news
	behindSince time.Time // zero while the watch is caught up
	kick        chan struct{}

	rev  atomic.Int64 // the revision the Map-Server's table reflects
	head atomic.Int64 // the newest revision etcd reported

	cancel context.CancelFunc
	wg     sync.WaitGroup
	c      counters
	log    *slog.Logger
}

// nodeInfo is a node's announcement under node/.
type nodeInfo struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	Lease   string    `json:"lease"`
}

// New makes the store of node opts.Node; it talks to etcd only once
// Start gives it its Map-Server. The Map-Server takes it as
// Options.Store.
func New(opts Options) (*Store, error) {
	opts.defaults()
	if opts.Node == "" || strings.ContainsAny(opts.Node, "/ ") {
		return nil, fmt.Errorf("cluster node name %q: must be non-empty, without '/' or spaces", opts.Node)
	}
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("cluster: no etcd endpoints")
	}
	return &Store{opts: opts, dirty: map[mapping.EID]struct{}{}, rewrite: map[mapping.EID]struct{}{}, nonces: map[mapserver.NonceKey]uint64{},
		nodes: map[string]nodeInfo{}, kick: make(chan struct{}, 1), c: newCounters(opts.Stats),
		log: opts.Log.With("role", "cluster", "node", opts.Node)}, nil
}

// Changed implements mapserver.Store.
func (s *Store) Changed(eid mapping.EID) {
	s.mu.Lock()
	s.dirty[eid] = struct{}{}
	s.mu.Unlock()
	s.wake()
}

// Nonce implements mapserver.Store.
func (s *Store) Nonce(k mapserver.NonceKey, n uint64) {
	s.mu.Lock()
	if n > s.nonces[k] {
		s.nonces[k] = n
	}
	s.mu.Unlock()
	s.wake()
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Start connects to etcd and runs the node: its lease, the writer, the
// watch and the health check, until Close. It does not wait for etcd: a
// node whose etcd is down answers from what it has and catches up later.
func (s *Store) Start(ms *mapserver.Server) error {
	// gRPC's reconnect backoff grows to two minutes by default: a node
	// back from a partition must rejoin within seconds.
	bo := backoff.DefaultConfig
	bo.MaxDelay = 2 * time.Second
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.opts.Endpoints, DialTimeout: s.opts.DialTimeout,
		TLS: s.opts.TLS, Logger: zap.NewNop(), DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: s.opts.DialTimeout})}})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	s.ms, s.cli = ms, cli
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.mu.Lock()
	s.downSince = time.Now() // until the first health check answers
	s.mu.Unlock()
	for _, run := range []func(context.Context){s.leaseLoop, s.writeLoop, s.watchLoop, s.healthLoop} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			run(ctx)
		}()
	}
	return nil
}

// Close stops the node: its goroutines end and its lease is revoked, so
// its Records go at once rather than after the lease TTL.
func (s *Store) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	lease := s.lease
	s.lease = 0
	s.mu.Unlock()
	if lease != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.cli.Revoke(ctx, lease)
		cancel()
	}
	s.cli.Close()
	s.cancel = nil
}

// call gives one etcd call its deadline.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.DialTimeout)
}

// sleep waits d or until ctx ends, and says whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// leaseLoop holds the node's lease: one keep-alive for all its Records.
// When the lease is lost (etcd unreachable for longer than its TTL), the
// others have dropped this node's Records: a new lease is granted and
// every Record written again.
func (s *Store) leaseLoop(ctx context.Context) {
	ttl := max(int64(s.opts.LeaseTTL/time.Second), 2)
	for ctx.Err() == nil {
		cctx, cancel := s.call(ctx)
		lg, err := s.cli.Grant(cctx, ttl)
		cancel()
		if err != nil {
			s.c.errors[opLease].Inc()
			sleep(ctx, time.Second)
			continue
		}
		// Its own context: a lease given up below must not be kept alive.
		lctx, lcancel := context.WithCancel(ctx)
		ka, err := s.cli.KeepAlive(lctx, lg.ID)
		if err != nil {
			lcancel()
			s.c.errors[opLease].Inc()
			sleep(ctx, time.Second)
			continue
		}
		info, _ := json.Marshal(nodeInfo{Name: s.opts.Node, Started: time.Now().UTC(), Lease: fmt.Sprintf("%x", int64(lg.ID))})
		cctx, cancel = s.call(ctx)
		put, err := s.cli.Put(cctx, nodeKey(s.opts.Prefix, s.opts.Node), string(info), clientv3.WithLease(lg.ID))
		cancel()
		if err != nil {
			lcancel() // the lease expires unused
			s.c.errors[opLease].Inc()
			sleep(ctx, time.Second)
			continue
		}
		// Nothing is written before the table has caught up with etcd as
		// of now: a Record this node held before it lost etcd may have
		// been displaced meanwhile (a move), and writing it again blindly
		// would undo that move.
		if !s.catchUp(ctx, ka, put.Header.Revision) {
			lcancel()
			continue
		}
		s.up()
		local := s.ms.LocalEIDs() // not under s.mu: the Map-Server's lock comes first
		s.mu.Lock()
		s.lease = lg.ID
		// Everything this node holds goes (again) under this lease, each
		// only if no node wrote its prefix since the table saw it.
		for _, eid := range local {
			s.rewrite[eid] = struct{}{}
		}
		s.mu.Unlock()
		s.wake()
		s.log.Info("cluster lease granted", "lease", fmt.Sprintf("%x", int64(lg.ID)), "ttl", ttl)
		for range ka {
		}
		lcancel()
		s.mu.Lock()
		s.lease = 0
		s.mu.Unlock()
		if ctx.Err() == nil {
			s.c.errors[opLease].Inc()
			s.log.Warn("cluster lease lost: etcd unreachable for longer than its TTL; the other nodes dropped this node's registrations, which are written again once etcd answers")
		}
	}
}

// catchUp waits until the table reflects revision rev; false when the
// lease ended meanwhile (ka closed) or the node stops.
func (s *Store) catchUp(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse, rev int64) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for s.rev.Load() < rev {
		select {
		case <-ctx.Done():
			return false
		case _, ok := <-ka:
			if !ok {
				return false
			}
		case <-t.C:
		}
	}
	return true
}

// writeLoop writes what changed: the Records of prefixes marked by
// Changed and the replay state marked by Nonce.
func (s *Store) writeLoop(ctx context.Context) {
	retry := time.NewTicker(retryWait)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-retry.C:
		}
		s.mu.Lock()
		lease := s.lease
		if lease == 0 || (len(s.dirty) == 0 && len(s.nonces) == 0 && len(s.rewrite) == 0) {
			s.mu.Unlock()
			continue
		}
		dirty, rewrite := s.dirty, s.rewrite
		s.dirty, s.rewrite = map[mapping.EID]struct{}{}, map[mapping.EID]struct{}{}
		s.mu.Unlock()
		for eid := range dirty {
			delete(rewrite, eid) // a change is written anyway
		}
		// Reading the Records waits for the Map-Server's lock, so every
		// Map-Register that marked them has also marked its nonce by then:
		// the nonces are taken after, and written first, so that a node
		// that sees a Record already has its replay floor.
		changes, rewrites := s.prepare(dirty), s.prepare(rewrite)
		s.mu.Lock()
		nonces := s.nonces
		s.nonces = map[mapserver.NonceKey]uint64{}
		s.mu.Unlock()
		s.writeNonces(ctx, nonces)
		s.writeRecords(ctx, lease, changes, false)
		s.writeRecords(ctx, lease, rewrites, true)
	}
}

// prepared is this node's Record of one prefix, read at table revision
// seen.
type prepared struct {
	eid  mapping.EID
	l    mapserver.Local
	seen int64
}

func (s *Store) prepare(eids map[mapping.EID]struct{}) []prepared {
	out := make([]prepared, 0, len(eids))
	for eid := range eids {
		seen := s.rev.Load() // before reading the table, which reflects at least it
		out = append(out, prepared{eid: eid, l: s.ms.LocalRecord(eid), seen: seen})
	}
	return out
}

// writeNonces writes this node's replay floors, batched; the ones that
// failed are tried again.
func (s *Store) writeNonces(ctx context.Context, nonces map[mapserver.NonceKey]uint64) {
	var ops []clientv3.Op
	var keys []mapserver.NonceKey
	flush := func() {
		if len(ops) == 0 {
			return
		}
		cctx, cancel := s.call(ctx)
		_, err := s.cli.Txn(cctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			s.c.errors[opWrite].Inc()
			for _, k := range keys {
				s.Nonce(k, nonces[k])
			}
		} else {
			s.c.writes[writeNonce].Add(uint64(len(ops)))
		}
		ops, keys = ops[:0], keys[:0]
	}
	for k, n := range nonces {
		ops = append(ops, clientv3.OpPut(nonceKey(s.opts.Prefix, k, s.opts.Node), nonceValue(n)))
		keys = append(keys, k)
		if len(ops) == batchOps {
			flush()
		}
	}
	flush()
}

// writeRecords writes this node's Record of every prefix in dirty (or
// deletes it), batched, up to writesInFlight batches at once (etcd
// commits concurrent transactions together: one at a time, a node wrote
// a few thousand Records a second). A move is a transaction of its own
// that holds only if the Records it displaces are still those it saw.
// guarded writes (Records written again under a new lease) hold only if
// no Record of their prefix was written since the table's revision;
// those that do not are tried again once the watch brought what changed.
func (s *Store) writeRecords(ctx context.Context, lease clientv3.LeaseID, recs []prepared, guarded bool) {
	type pending struct {
		eid  mapping.EID
		gen  uint64
		kind int
	}
	var wg sync.WaitGroup
	inFlight := make(chan struct{}, writesInFlight)
	var ops []clientv3.Op
	var batch []pending
	flush := func() {
		if len(ops) == 0 {
			return
		}
		ops, batch := ops, batch
		inFlight <- struct{}{}
		wg.Go(func() {
			defer func() { <-inFlight }()
			cctx, cancel := s.call(ctx)
			resp, err := s.cli.Txn(cctx).Then(ops...).Commit()
			cancel()
			if err != nil {
				s.c.errors[opWrite].Inc()
				for _, p := range batch {
					s.Changed(p.eid)
				}
				return
			}
			for _, p := range batch {
				s.ms.Written(p.eid, p.gen, resp.Header.Revision)
				s.c.writes[p.kind].Inc()
			}
			s.noteHead(resp.Header.Revision)
		})
	}
	defer wg.Wait()
	if guarded {
		for i := 0; i < len(recs); i += batchOps {
			chunk := recs[i:min(i+batchOps, len(recs))]
			inFlight <- struct{}{}
			wg.Go(func() {
				defer func() { <-inFlight }()
				s.writeGuarded(ctx, lease, chunk)
			})
		}
		return
	}
	for _, p := range recs {
		eid, l := p.eid, p.l
		key := regKey(s.opts.Prefix, eid, s.opts.Node)
		var op clientv3.Op
		kind := writeDelete
		if l.Held {
			kind = writeRecord
			b, err := json.Marshal(&l.Record)
			if err != nil {
				continue
			}
			op = clientv3.OpPut(key, string(b), clientv3.WithLease(lease))
		} else {
			op = clientv3.OpDelete(key)
		}
		if len(l.Displaces) == 0 {
			ops, batch = append(ops, op), append(batch, pending{eid, l.Gen, kind})
			if len(ops) == batchOps {
				flush()
				ops, batch = nil, nil
			}
			continue
		}
		var cmps []clientv3.Cmp
		for node, rev := range l.Displaces {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(regKey(s.opts.Prefix, eid, node)), "=", rev))
		}
		cctx, cancel := s.call(ctx)
		resp, err := s.cli.Txn(cctx).If(cmps...).Then(op).Commit()
		cancel()
		switch {
		case err != nil:
			s.c.errors[opWrite].Inc()
			s.Changed(eid)
		case !resp.Succeeded:
			// The holder changed meanwhile: the watch brings the newer
			// Record, and the prefix is decided again with it.
			s.c.moveConflicts.Inc()
			s.Changed(eid)
		default:
			s.ms.Written(eid, l.Gen, resp.Header.Revision)
			s.c.writes[kind].Inc()
		}
	}
	flush()
}

// writeGuarded writes recs, this node's Records, each only if no Record
// of its prefix was written after the revision it was read at: all in
// one transaction, or, when one of them does not hold, each on its own.
func (s *Store) writeGuarded(ctx context.Context, lease clientv3.LeaseID, recs []prepared) {
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	var held []prepared
	for _, p := range recs {
		if !p.l.Held {
			continue
		}
		b, err := json.Marshal(&p.l.Record)
		if err != nil {
			continue
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(eidDir(s.opts.Prefix, p.eid)), "<", p.seen+1).WithPrefix())
		puts = append(puts, clientv3.OpPut(regKey(s.opts.Prefix, p.eid, s.opts.Node), string(b), clientv3.WithLease(lease)))
		held = append(held, p)
	}
	if len(held) == 0 {
		return
	}
	cctx, cancel := s.call(ctx)
	resp, err := s.cli.Txn(cctx).If(cmps...).Then(puts...).Commit()
	cancel()
	switch {
	case err != nil:
		s.c.errors[opWrite].Inc()
		for _, p := range held {
			s.reWrite(p.eid)
		}
	case !resp.Succeeded && len(held) > 1:
		for i := range held {
			s.writeGuarded(ctx, lease, held[i:i+1])
		}
	case !resp.Succeeded:
		s.c.moveConflicts.Inc()
		s.reWrite(held[0].eid)
	default:
		for _, p := range held {
			s.ms.Written(p.eid, p.l.Gen, resp.Header.Revision)
			s.c.writes[writeRecord].Inc()
		}
		s.noteHead(resp.Header.Revision)
	}
}

func (s *Store) reWrite(eid mapping.EID) {
	s.mu.Lock()
	s.rewrite[eid] = struct{}{}
	s.mu.Unlock()
}

// watchLoop keeps the Map-Server's table in step with every node's
// Records: a full listing first (and whenever etcd no longer holds the
// history since the last revision), then the watch from there.
func (s *Store) watchLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if s.rev.Load() == 0 {
			if err := s.resync(ctx); err != nil {
				s.c.errors[opRead].Inc()
				sleep(ctx, time.Second)
				continue
			}
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := s.cli.Watch(clientv3.WithRequireLeader(wctx), s.opts.Prefix, clientv3.WithPrefix(),
			clientv3.WithRev(s.rev.Load()+1), clientv3.WithProgressNotify())
		for wr := range wch {
			if wr.CompactRevision != 0 {
				s.log.Warn("cluster watch fell behind etcd's history: listing everything again", "revision", s.rev.Load(),
					"compacted", wr.CompactRevision)
				s.rev.Store(0)
				break
			}
			if err := wr.Err(); err != nil {
				s.c.errors[opWatch].Inc()
				break
			}
			for _, ev := range wr.Events {
				s.apply(ev)
			}
			s.c.events.Add(uint64(len(wr.Events)))
			if r := wr.Header.Revision; r > s.rev.Load() {
				s.rev.Store(r)
			}
			s.noteHead(wr.Header.Revision)
		}
		cancel()
		sleep(ctx, retryWait)
	}
}

// resync lists every key at one revision, in pages, and replaces the
// table's remote part with it.
func (s *Store) resync(ctx context.Context) error {
	// etcd counts every key left in the range for each page it returns
	// (the response's total), so a page costs a walk of the rest of the
	// table: big pages keep a million-prefix listing from taking minutes,
	// and each may take longer than an ordinary call; a page that fails
	// is asked again, at the same revision, before the listing gives up.
	const page, pageTries = 25000, 3
	var recs []mapserver.RemoteRecord
	nonces := map[mapserver.NonceKey]uint64{}
	nodes := map[string]nodeInfo{}
	end := clientv3.GetPrefixRangeEnd(s.opts.Prefix)
	start, rev := s.opts.Prefix, int64(0)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(page)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		var resp *clientv3.GetResponse
		var err error
		for range pageTries {
			cctx, cancel := context.WithTimeout(ctx, max(listTimeout, s.opts.DialTimeout))
			resp, err = s.cli.Get(cctx, start, opts...)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			s.c.errors[opRead].Inc()
		}
		if err != nil {
			return err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			k := strings.TrimPrefix(string(kv.Key), s.opts.Prefix)
			switch {
			case strings.HasPrefix(k, regDir):
				eid, node, err := parseRegKey(k[len(regDir):])
				if err != nil || node == s.opts.Node {
					continue
				}
				var rec mapserver.Record
				if json.Unmarshal(kv.Value, &rec) != nil {
					s.c.badRecords.Inc()
					continue
				}
				recs = append(recs, mapserver.RemoteRecord{Node: node, EID: eid, Record: rec, Rev: kv.ModRevision})
			case strings.HasPrefix(k, nonceDir):
				if nk, n, ok := parseNonce(k[len(nonceDir):], kv.Value); ok {
					nonces[nk] = n
				}
			case strings.HasPrefix(k, nodeDir):
				var ni nodeInfo
				if json.Unmarshal(kv.Value, &ni) == nil {
					nodes[k[len(nodeDir):]] = ni
				}
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	s.ms.ReplaceRemote(recs)
	for k, n := range nonces {
		s.ms.ApplyNonce(k, n)
	}
	s.mu.Lock()
	s.nodes = nodes
	s.mu.Unlock()
	s.rev.Store(rev)
	s.noteHead(rev)
	s.up()
	s.c.resyncs.Inc()
	s.log.Info("cluster table loaded", "revision", rev, "records", len(recs), "nodes", len(nodes))
	return nil
}

func parseNonce(k string, v []byte) (mapserver.NonceKey, uint64, bool) {
	nk, err := parseNonceKey(k)
	if err != nil {
		return nk, 0, false
	}
	var n uint64
	if _, err := fmt.Sscan(string(v), &n); err != nil {
		return nk, 0, false
	}
	return nk, n, true
}

// apply takes one watch event into the Map-Server's table.
func (s *Store) apply(ev *clientv3.Event) {
	k := strings.TrimPrefix(string(ev.Kv.Key), s.opts.Prefix)
	del := ev.Type == clientv3.EventTypeDelete
	switch {
	case strings.HasPrefix(k, regDir):
		eid, node, err := parseRegKey(k[len(regDir):])
		if err != nil {
			s.c.badRecords.Inc()
			return
		}
		if node == s.opts.Node {
			// Ours. Deleted by etcd (our lease ended) while we still hold
			// it: write it again.
			if del && s.ms.LocalRecord(eid).Held {
				s.Changed(eid)
			}
			return
		}
		if del {
			s.ms.ApplyRemote(node, eid, nil, ev.Kv.ModRevision)
			return
		}
		var rec mapserver.Record
		if json.Unmarshal(ev.Kv.Value, &rec) != nil {
			s.c.badRecords.Inc()
			return
		}
		s.ms.ApplyRemote(node, eid, &rec, ev.Kv.ModRevision)
	case strings.HasPrefix(k, nonceDir) && !del:
		if nk, n, ok := parseNonce(k[len(nonceDir):], ev.Kv.Value); ok {
			s.ms.ApplyNonce(nk, n)
		}
	case strings.HasPrefix(k, nodeDir):
		name := k[len(nodeDir):]
		s.mu.Lock()
		if del {
			delete(s.nodes, name)
		} else {
			var ni nodeInfo
			if json.Unmarshal(ev.Kv.Value, &ni) == nil {
				s.nodes[name] = ni
			}
		}
		s.mu.Unlock()
	}
}

func (s *Store) noteHead(rev int64) {
	for {
		h := s.head.Load()
		if rev <= h || s.head.CompareAndSwap(h, rev) {
			return
		}
	}
}

// healthLoop asks etcd for its revision once a second: it tells whether
// etcd answers (and logs when that changes) and how far behind the watch
// is.
func (s *Store) healthLoop(ctx context.Context) {
	for sleep(ctx, time.Second) {
		cctx, cancel := s.call(ctx)
		resp, err := s.cli.Get(cctx, nodeKey(s.opts.Prefix, s.opts.Node), clientv3.WithCountOnly())
		cancel()
		now := time.Now()
		s.mu.Lock()
		switch {
		case err != nil && ctx.Err() == nil:
			s.c.errors[opHealth].Inc()
			if s.downSince.IsZero() {
				s.downSince = now
				s.log.Warn("etcd unreachable: answering from the last table", "err", err)
			}
		case err == nil:
			s.upLocked(now)
			s.noteHead(resp.Header.Revision)
		}
		if s.rev.Load() < s.head.Load() || !s.downSince.IsZero() {
			if s.behindSince.IsZero() {
				s.behindSince = now
			}
		} else {
			s.behindSince = time.Time{}
		}
		s.updateGaugesLocked(now)
		s.mu.Unlock()
	}
}

// upLocked notes that etcd answered.
func (s *Store) upLocked(now time.Time) {
	if s.downSince.IsZero() {
		return
	}
	if s.started {
		s.log.Info("etcd reachable again", "down", now.Sub(s.downSince).Round(time.Millisecond))
	}
	s.downSince, s.started = time.Time{}, true
}

// up notes that etcd answered a call.
func (s *Store) up() {
	s.mu.Lock()
	s.upLocked(time.Now())
	s.mu.Unlock()
}

func (s *Store) updateGaugesLocked(now time.Time) {
	lag := 0.0
	if !s.behindSince.IsZero() {
		lag = now.Sub(s.behindSince).Seconds()
	}
	s.c.lagSeconds.Set(lag)
	s.c.lagRevisions.Set(float64(max(0, s.head.Load()-s.rev.Load())))
	up := 1.0
	if !s.downSince.IsZero() {
		up = 0
	}
	s.c.connected.Set(up)
}

// View is the cluster as this node sees it (lispctl show cluster).
func (s *Store) View() adminapi.Cluster {
	remote := s.ms.RemoteStats()
	local := s.ms.LocalCount()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	v := adminapi.Cluster{Node: s.opts.Node, Store: "etcd", Endpoints: slices.Clone(s.opts.Endpoints),
		Prefix: s.opts.Prefix, Connected: s.downSince.IsZero(), LeaseTTL: s.opts.LeaseTTL.Seconds(),
		Revision: s.rev.Load(), Head: s.head.Load(), PendingWrite: len(s.dirty) + len(s.nonces) + len(s.rewrite), Nodes: []adminapi.ClusterNode{}}
	if !s.downSince.IsZero() {
		t := s.downSince
		v.UnreachableSince = &t
	}
	if s.lease != 0 {
		v.Lease = fmt.Sprintf("%x", int64(s.lease))
	}
	if !s.behindSince.IsZero() {
		v.LagSeconds = now.Sub(s.behindSince).Seconds()
	}
	names := map[string]bool{s.opts.Node: true}
	for n := range s.nodes {
		names[n] = true
	}
	for n := range remote {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		cn := adminapi.ClusterNode{Name: n, Self: n == s.opts.Node, Prefixes: remote[n]}
		if ni, ok := s.nodes[n]; ok {
			cn.Alive, cn.Lease = true, ni.Lease
			t := ni.Started
			cn.Started = &t
		}
		if cn.Self {
			cn.Prefixes = local
			cn.Alive = s.lease != 0
			cn.Lease = v.Lease
		}
		v.Nodes = append(v.Nodes, cn)
	}
	return v
}

// Ready says whether the node holds its lease and has loaded the table:
// a cheap View().Lease != "" && View().Revision > 0.
func (s *Store) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease != 0 && s.rev.Load() > 0
}

// Node is this node's name in the cluster.
func (s *Store) Node() string { return s.opts.Node }

// Pending is the number of writes waiting: Records, rewrites and nonces.
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dirty) + len(s.nonces) + len(s.rewrite)
}
