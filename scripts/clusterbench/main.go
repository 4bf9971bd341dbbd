// Command clusterbench measures a cluster of Map-Servers sharing their
// registrations through etcd (internal/cluster), all in this process: an
// embedded single-member etcd (go.etcd.io/etcd/server/v3/embed) on
// 127.0.0.1, three Map-Server nodes, Map-Registers and Map-Requests handed
// to them directly (no sockets: what is measured is the store, not UDP).
// scripts/bench cluster runs it; its last line is
//
//	RESULT refresh-writes=… propagate-p50-ms=… propagate-p99-ms=… move-notify-p99-ms=… failover-s=… etcd-cost-ratio=… …
//
// With -sim PREFIXES it runs the scaled simulation instead: PREFIXES
// prefixes of -sites sites spread over three nodes, their ETRs refreshing
// every -refresh, then a fourth node loading the table, then churn, then
// one node cut off from etcd past its lease and back (rejoin-s: until its
// Records, written again, are answered everywhere);
// docs/cluster.md has the figures. Its last line is
//
//	RESULT sim-prefixes=… sim-sites=… etcd-mb=… heap-mb-3-nodes=… join-s=… join-mb=… churn-writes-per-s=… converge-s=… rejoin-s=…
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lispd/lispd/internal/cluster"
	"github.com/lispd/lispd/internal/cluster/etcdtest"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

var (
	msAddr = netip.MustParseAddr("192.0.2.1")
	etr1   = netip.MustParseAddrPort("192.0.2.11:4342")
	etr2   = netip.MustParseAddrPort("192.0.2.12:4342")
	itr    = netip.MustParseAddr("192.0.2.31")
	big    = mapping.NewEID(0, netip.MustParsePrefix("198.18.0.0/15"))
	key1   = []byte("dc1-secret")
	key2   = []byte("dc2-secret")
)

func main() {
	n := flag.Int("n", 20000, "prefixes registered for the refresh and cost phases")
	samples := flag.Int("samples", 300, "samples of propagation and move latency")
	leaseTTL := flag.Duration("lease-ttl", cluster.DefaultLeaseTTL, "node lease TTL (failover)")
	sim := flag.Int("sim", 0, "run the scaled simulation with this many prefixes instead")
	sites := flag.Int("sites", 0, "sites of the simulation (default prefixes/10)")
	refresh := flag.Duration("refresh", time.Minute, "simulation: how often each ETR registers again (0: never)")
	regTimeout := flag.Duration("registration-timeout", 3*time.Minute, "simulation: the Map-Servers' registration timeout")
	flag.Parse()
	dir, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	e, err := etcdtest.Start(filepath.Join(dir, "etcd"))
	if err != nil {
		fail(err)
	}
	defer e.Close()
	if *sim > 0 {
		simulate(e, *sim, cmpOr(*sites, *sim/10), *refresh, *regTimeout)
		return
	}
	bench(e, *n, *samples, *leaseTTL)
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "clusterbench:", err)
	os.Exit(1)
}

// node is one Map-Server of the bench.
type node struct {
	name  string
	ms    *mapserver.Server
	st    *cluster.Store
	reg   *stats.Registry
	sent  *notifies
	proxy *etcdtest.Proxy
}

// notifies records when unsolicited Map-Notifies leave, by destination.
type notifies struct {
	mu   sync.Mutex
	when map[netip.AddrPort][]time.Time
}

func (n *notifies) Send(_ []byte, _ netip.Addr, to netip.AddrPort) {
	n.mu.Lock()
	n.when[to] = append(n.when[to], time.Now())
	n.mu.Unlock()
}

func (n *notifies) take(to netip.AddrPort) []time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.when[to]
	delete(n.when, to)
	return t
}

func benchSites() []mapserver.Site {
	k := func(s []byte) []mapserver.Key { return []mapserver.Key{{ID: 1, Alg: wire.AuthHMACSHA256, Secret: s}} }
	return []mapserver.Site{
		{Name: "dc1", Keys: k(key1), Prefixes: []mapserver.SitePrefix{{EID: big, AcceptMoreSpecifics: true}}},
		{Name: "dc2", Keys: k(key2), Prefixes: []mapserver.SitePrefix{{EID: big, AcceptMoreSpecifics: true}}},
	}
}

// newNode starts a node reaching etcd through a proxy of its own (cut to
// kill it as a crash would: nothing revoked); store false gives a
// Map-Server with the memory store, for comparison; regTimeout 0 is the
// Map-Server's default registration timeout.
func newNode(e *etcdtest.Server, name string, sites []mapserver.Site, leaseTTL, regTimeout time.Duration, store bool) *node {
	nd := &node{name: name, reg: stats.NewRegistry(), sent: &notifies{when: map[netip.AddrPort][]time.Time{}}}
	o := mapserver.Options{Sender: nd.sent, Stats: nd.reg, MaxXTRsPerSite: 1 << 20, RegistrationTimeout: regTimeout}
	if store {
		p, err := etcdtest.NewProxy(e)
		if err != nil {
			fail(err)
		}
		nd.proxy = p
		st, err := cluster.New(cluster.Options{Endpoints: []string{p.Endpoint()}, Node: name, LeaseTTL: leaseTTL,
			Stats: nd.reg, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			fail(err)
		}
		nd.st, o.Store, o.Node = st, st, name
	}
	nd.ms = mapserver.New(sites, o)
	if store {
		if err := nd.st.Start(nd.ms); err != nil {
			fail(err)
		}
		// A node joining a big table lists it all before it takes its
		// lease (and View walks the table: not for polling).
		waitFor(10*time.Minute, nd.st.Ready, name+" has no lease")
	}
	return nd
}

func (nd *node) close() {
	if nd.st != nil {
		nd.st.Close()
		nd.proxy.Close()
	}
}

func waitFor(limit time.Duration, cond func() bool, what string) time.Duration {
	start := time.Now()
	for !cond() {
		waited := time.Since(start)
		if waited > limit {
			fail(fmt.Errorf("%s after %v", what, limit))
		}
		// Fine-grained for latencies, coarse for long waits (the checks
		// take the Map-Server's lock).
		time.Sleep(min(5*time.Millisecond, max(100*time.Microsecond, waited/20)))
	}
	return time.Since(start)
}

// settle waits until the nodes have nothing left to write, their write
// counts stand still, and each one's table has caught up with etcd.
func settle(nodes ...*node) {
	total := func() uint64 {
		var n uint64
		for _, nd := range nodes {
			n += writes(nd)
		}
		return n
	}
	for w := total(); ; w = total() {
		time.Sleep(300 * time.Millisecond)
		caughtUp := true
		for _, nd := range nodes {
			v := nd.st.View()
			caughtUp = caughtUp && v.PendingWrite == 0 && v.Revision >= v.Head
		}
		if caughtUp && total() == w {
			return
		}
	}
}

// waitSlow is waitFor for conditions that walk a big table: checked
// every 100 ms.
func waitSlow(limit time.Duration, cond func() bool, what string) {
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			fail(fmt.Errorf("%s after %v", what, limit))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// registerMsg is a signed Map-Register of one host of xTR id.
func registerMsg(key []byte, nonce uint64, id byte, eid mapping.EID, rlocs ...netip.Addr) ([]byte, wire.Message) {
	m := mapping.Mapping{EID: eid, TTL: 1440}
	for _, r := range rlocs {
		m.Locators = append(m.Locators, mapping.Locator{Addr: r, Priority: 1, Weight: 100, MPriority: 255, Flags: wire.LocatorReachable})
	}
	reg := &wire.MapRegister{ProxyReply: true, AuthBody: wire.AuthBody{Nonce: nonce, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
		Records: []wire.EIDRecord{m.Record()}, HasXTRID: true, XTRID: [16]byte{id}, SiteID: 1}}
	raw, err := wire.EncodeSigned(reg, key, wire.AuthOptions{})
	if err != nil {
		fail(err)
	}
	dec, err := wire.Decode(raw)
	if err != nil {
		fail(err)
	}
	return raw, dec
}

var discard = control.SenderFunc(func([]byte, netip.Addr, netip.AddrPort) {})

func (nd *node) handle(raw []byte, msg wire.Message, src netip.AddrPort) {
	nd.ms.HandleMapRegister(&control.Request{Raw: raw, Msg: msg, Src: src, Local: netip.AddrPortFrom(msAddr, wire.ControlPort)}, discard)
}

// answers tells whether the node answers eid with a positive Map-Reply.
func (nd *node) answers(eid mapping.EID) bool { return nd.locators(eid) > 0 }

// locators is the number of locators the node answers eid with.
func (nd *node) locators(eid mapping.EID) int {
	n := 0
	out := control.SenderFunc(func(b []byte, _ netip.Addr, _ netip.AddrPort) {
		m, err := wire.Decode(b)
		if r, ok := m.(*wire.MapReply); err == nil && ok && len(r.Records) == 1 {
			n = len(r.Records[0].Locators)
		}
	})
	nd.ms.HandleMapRequest(requestFor(eid), out)
	return n
}

func requestFor(eid mapping.EID) *control.Request {
	m := &wire.MapRequest{Nonce: 7, SourceEID: wire.AddrFromIP(itr), ITRRLOCs: []wire.Address{wire.AddrFromIP(itr)},
		Records: []wire.RequestRecord{{MaskLen: eid.MaskLen(), EID: eid.Address()}}}
	return &control.Request{Raw: []byte("ecm"), Msg: m, ECM: &wire.ECM{Message: m}, ReplyTo: netip.AddrPortFrom(itr, 61000),
		Local: netip.AddrPortFrom(msAddr, wire.ControlPort)}
}

func hostN(i int) mapping.EID {
	return mapping.HostEID(0, netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)}))
}

func rloc(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }

func writes(nd *node) uint64 {
	var n uint64
	for _, k := range []string{"record", "delete", "nonce"} {
		n += counterValue(nd.reg, "cluster.writes{kind="+k+"}")
	}
	return n
}

func counterValue(reg *stats.Registry, key string) uint64 {
	for _, s := range reg.Snapshot() {
		if s.Desc.Key() == key {
			return s.Value
		}
	}
	return 0
}

// rejected counts the Map-Registers a node refused, for any reason.
func rejected(nd *node) uint64 {
	var n uint64
	for _, s := range nd.reg.Snapshot() {
		if s.Desc.Subsystem == "map_server" && s.Desc.Name == "registers_rejected" {
			n += s.Value
		}
	}
	return n
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

func bench(e *etcdtest.Server, n, samples int, leaseTTL time.Duration) {
	fmt.Printf("embedded etcd (one member, in this process) and 3 Map-Server nodes; GOMAXPROCS %d; lease TTL %v\n",
		runtime.GOMAXPROCS(0), leaseTTL)
	nodes := []*node{}
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, newNode(e, name, benchSites(), leaseTTL, 0, true))
	}
	defer func() {
		for _, nd := range nodes {
			nd.close()
		}
	}()
	a, b, c := nodes[0], nodes[1], nodes[2]
	nonce := uint64(1)

	// 1. Refreshes write nothing.
	msgs := make([][]byte, n)
	decs := make([]wire.Message, n)
	// registerAll signs a Map-Register of every host of xTR id (before
	// the clock starts) and hands them to nd; it returns the time taken.
	registerAll := func(nd *node, id byte, rl netip.Addr) time.Duration {
		for i := range n {
			msgs[i], decs[i] = registerMsg(key1, nonce, id, hostN(i), rl)
			nonce++
		}
		t := time.Now()
		for i := range n {
			nd.handle(msgs[i], decs[i], etr1)
		}
		return time.Since(t)
	}
	start := time.Now()
	registerAll(a, 1, rloc(11))
	waitFor(5*time.Minute, func() bool { return c.ms.RemoteStats()["a"] == n }, "c does not see a's registrations")
	fmt.Printf("load: %d registrations on a, all answered by c after %v (%.0f/s end to end)\n", n, time.Since(start).Round(time.Millisecond),
		float64(n)/(time.Since(start).Seconds()))
	before := writes(a)
	registerAll(a, 1, rloc(11))
	time.Sleep(time.Second)
	refreshWrites := float64(writes(a)-before) / float64(n)
	fmt.Printf("refresh: %d refreshes made %d etcd writes (%.4f per refresh)\n", n, writes(a)-before, refreshWrites)

	// 2. Propagation: a registration on one node answered by the others.
	var prop []time.Duration
	for i := range samples {
		eid := hostN(n + i)
		raw, dec := registerMsg(key1, nonce, 1, eid, rloc(11))
		nonce++
		from := nodes[i%3]
		t0 := time.Now()
		from.handle(raw, dec, etr1)
		for _, other := range nodes {
			if other == from {
				continue
			}
			waitFor(10*time.Second, func() bool { return other.answers(eid) }, "propagation")
			prop = append(prop, time.Since(t0))
		}
	}
	fmt.Printf("propagation (%d samples, registration on one node to answer on another): p50 %sms p99 %sms max %sms\n",
		len(prop), ms(percentile(prop, .5)), ms(percentile(prop, .99)), ms(percentile(prop, 1)))

	// 3. Move: dc1 registered through a, dc2 takes the host through b; a
	// tells the dc1 xTR.
	var moves []time.Duration
	nonce2 := uint64(1)
	for i := range samples {
		eid := hostN(n + samples + i)
		raw, dec := registerMsg(key1, nonce, 1, eid, rloc(11))
		nonce++
		a.handle(raw, dec, etr1)
		waitFor(10*time.Second, func() bool { return b.answers(eid) }, "b does not see the host before the move")
		a.sent.take(etr1)
		raw, dec = registerMsg(key2, nonce2, 2, eid, rloc(12))
		nonce2++
		t0 := time.Now()
		b.handle(raw, dec, etr2)
		waitFor(10*time.Second, func() bool {
			a.sent.mu.Lock()
			defer a.sent.mu.Unlock()
			return len(a.sent.when[etr1]) > 0
		}, "a sent no Map-Notify to the old xTR")
		moves = append(moves, a.sent.take(etr1)[0].Sub(t0))
	}
	fmt.Printf("move (%d samples, Map-Register on b to a's Map-Notify to the old xTR): p50 %sms p99 %sms max %sms\n",
		len(moves), ms(percentile(moves, .5)), ms(percentile(moves, .99)), ms(percentile(moves, 1)))

	// 4. Failover: 1,000 hosts registered by their ETR through a and b;
	// a dies (its etcd connection cut, nothing revoked); c keeps
	// answering every host throughout, and a's Records leave c's table
	// when its lease expires.
	const fo = 1000
	base := n + 2*samples
	for i := range fo {
		raw, dec := registerMsg(key1, nonce, 1, hostN(base+i), rloc(11))
		nonce++
		a.handle(raw, dec, etr1)
		raw, dec = registerMsg(key1, nonce, 1, hostN(base+i), rloc(11))
		nonce++
		b.handle(raw, dec, etr1)
	}
	settle(nodes...)
	a.proxy.Cut()
	t0 := time.Now()
	misses := 0
	for c.ms.RemoteStats()["a"] > 0 {
		if time.Since(t0) > 5*leaseTTL {
			fail(fmt.Errorf("a's Records outlived its lease by far"))
		}
		for i := 0; i < fo; i += 37 {
			if !c.answers(hostN(base + i)) {
				misses++
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	failover := time.Since(t0)
	fmt.Printf("failover: a died; c answered every host of ETRs registering with a and b throughout (%d misses); "+
		"a's Records gone from c after %.1fs (lease TTL %v)\n", misses, failover.Seconds(), leaseTTL)

	// 5. Cost on one node: refresh-only Map-Registers and Map-Requests,
	// etcd store (b, a cluster node) against the memory store.
	mem := newNode(e, "mem", benchSites(), leaseTTL, 0, false)
	for i := range n {
		raw, dec := registerMsg(key1, nonce, 3, hostN(i), rloc(13))
		nonce++
		mem.handle(raw, dec, etr1)
		raw, dec = registerMsg(key1, nonce, 3, hostN(i), rloc(13))
		nonce++
		b.handle(raw, dec, etr1)
	}
	settle(b, c) // every write of the setup done before measuring
	regRate := func(nd *node) float64 { return float64(n) / registerAll(nd, 3, rloc(13)).Seconds() }
	reqs := make([]*control.Request, 4096)
	for i := range reqs {
		reqs[i] = requestFor(hostN(i * 7 % n))
	}
	reqRate := func(nd *node) float64 {
		const m = 200000
		t := time.Now()
		for i := range m {
			nd.ms.HandleMapRequest(reqs[i%len(reqs)], discard)
		}
		return m / time.Since(t).Seconds()
	}
	// Interleaved rounds, the best of each: on a shared machine the
	// slowest rounds measure the neighbours.
	var rm, re, qm, qe []float64
	costWrites := writes(b)
	for range 5 {
		rm, re = append(rm, regRate(mem)), append(re, regRate(b))
		qm, qe = append(qm, reqRate(mem)), append(qe, reqRate(b))
	}
	regMem, regEtcd, reqMem, reqEtcd := slices.Max(rm), slices.Max(re), slices.Max(qm), slices.Max(qe)
	if w := writes(b) - costWrites; w > 0 {
		fail(fmt.Errorf("%d etcd writes during refresh-only load (record %d, delete %d, nonce %d in all)", w,
			counterValue(b.reg, "cluster.writes{kind=record}"), counterValue(b.reg, "cluster.writes{kind=delete}"),
			counterValue(b.reg, "cluster.writes{kind=nonce}")))
	}
	fmt.Printf("cost on one node (best of 5 interleaved rounds): refresh Map-Registers/s memory %.0f etcd %.0f (ratio %.3f); Map-Requests/s memory %.0f etcd %.0f (ratio %.3f)\n",
		regMem, regEtcd, regEtcd/regMem, reqMem, reqEtcd, reqEtcd/reqMem)
	for _, nd := range []*node{mem, b} {
		if rej := rejected(nd); rej > 0 {
			fail(fmt.Errorf("%s rejected %d Map-Registers", nd.name, rej))
		}
	}
	mem.close()
	fmt.Printf("RESULT refresh-writes=%.4f propagate-p50-ms=%s propagate-p99-ms=%s move-notify-p99-ms=%s failover-s=%.1f etcd-cost-ratio=%.3f request-cost-ratio=%.3f failover-misses=%d\n",
		refreshWrites, ms(percentile(prop, .5)), ms(percentile(prop, .99)), ms(percentile(moves, .99)), failover.Seconds(),
		regEtcd/regMem, reqEtcd/reqMem, misses)
}

// simETRs are the simulation's ETRs: site s registers its per hosts
// through node s%3, and registers them again every refresh interval, as
// real ETRs do (a refresh writes nothing to etcd). Every Map-Register
// takes the next nonce of one counter, and reads the content (one or two
// locators) after taking it, so that a refresh racing a change either
// carries the change or is refused as older than it.
type simETRs struct {
	nodes  []*node
	nsites int
	per    int
	key    []byte
	nonce  atomic.Uint64
	two    []atomic.Bool // prefix s*per+j has the second locator
	sent   atomic.Uint64 // refreshes sent
}

func (e *simETRs) eid(s, j int) mapping.EID {
	a := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(s >> 16), byte(s >> 8), byte(s), byte(j)}
	return mapping.NewEID(0, netip.PrefixFrom(netip.AddrFrom16(a), 64))
}

// register sends the Map-Register of prefix j of site s to its node.
func (e *simETRs) register(s, j int) {
	nonce := e.nonce.Add(1)
	rlocs := []netip.Addr{rloc(10 + s%200)}
	if e.two[s*e.per+j].Load() {
		rlocs = append(rlocs, rloc(250))
	}
	raw, dec := registerMsg(e.key, nonce, byte(s%200), e.eid(s, j), rlocs...)
	e.nodes[s%3].handle(raw, dec, netip.AddrPortFrom(rloc(10+s%200), wire.ControlPort))
}

// refresh registers everything again every interval until ctx ends,
// spread evenly over the interval.
func (e *simETRs) refresh(ctx context.Context, interval time.Duration) {
	total := e.nsites * e.per
	tick := time.NewTicker(interval / time.Duration(max(1, total/1000)))
	defer tick.Stop()
	for k := 0; ; k = (k + 1000) % total {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i := k; i < min(k+1000, total); i++ {
			e.register(i/e.per, i%e.per)
		}
		e.sent.Add(uint64(min(k+1000, total) - k))
	}
}

// simulate spreads prefixes over sites and the sites over three nodes,
// then starts a fourth node that loads the whole table, then changes 1 %
// of the prefixes: etcd size, memory per node, load time, write rate.
// The ETRs refresh every refresh interval throughout (0: never; then the
// registrations lapse after regTimeout, which a run longer than that
// shows as a table that never completes).
func simulate(e *etcdtest.Server, prefixes, nsites int, refresh, regTimeout time.Duration) {
	per := max(1, prefixes/nsites)
	fmt.Printf("simulation: %d prefixes, %d sites (%d each), 3 nodes, embedded etcd; ETRs refresh every %v; GOMAXPROCS %d\n",
		prefixes, nsites, per, refresh, runtime.GOMAXPROCS(0))
	sites := make([]mapserver.Site, nsites)
	key := []byte("site-secret")
	for s := range sites {
		// Site s holds 2001:db8:<s>::/48 ... spread over the documentation /32.
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(s >> 16), byte(s >> 8), byte(s)}), 56)
		sites[s] = mapserver.Site{Name: fmt.Sprintf("site%d", s), Keys: []mapserver.Key{{ID: 1, Alg: wire.AuthHMACSHA256, Secret: key}},
			Prefixes: []mapserver.SitePrefix{{EID: mapping.NewEID(0, p), AcceptMoreSpecifics: true}}}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	nodes := []*node{}
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, newNode(e, name, sites, cluster.DefaultLeaseTTL, regTimeout, true))
	}
	etrs := &simETRs{nodes: nodes, nsites: nsites, per: per, key: key, two: make([]atomic.Bool, nsites*per)}
	ctx, stop := context.WithCancel(context.Background())
	var refreshing sync.WaitGroup
	defer func() {
		stop()
		refreshing.Wait()
		for _, nd := range nodes {
			nd.close()
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := i; s < nsites; s += 3 {
				for j := range per {
					etrs.register(s, j)
				}
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	if refresh > 0 {
		refreshing.Add(1)
		go func() {
			defer refreshing.Done()
			etrs.refresh(ctx, refresh)
		}()
	}
	total := nsites * per
	for _, nd := range nodes {
		// Registrations counts own and others' alike, without a walk.
		last := time.Now()
		waitSlow(time.Hour, func() bool {
			if time.Since(last) > 30*time.Second {
				last = time.Now()
				v := nd.st.View()
				fmt.Printf("  %s holds %d of %d (own %d), %d writes pending, revision %d of %d, lease %q\n", nd.name, nd.ms.Registrations(), total,
					nd.ms.LocalCount(), nd.st.Pending(), v.Revision, v.Head, v.Lease)
			}
			return nd.ms.Registrations() == total
		}, nd.name+" does not hold the whole table")
	}
	converged := time.Since(start)
	fmt.Printf("load: %d registrations accepted by the 3 nodes in %.1fs; every node answers all of them after %.1fs\n",
		total, accepted.Seconds(), converged.Seconds())
	h1 := heap()
	dbSize := etcdSize(e)
	fmt.Printf("etcd: database %d MB (%.0f bytes/prefix, keys: one Record per prefix + one nonce per xTR + one per node)\n",
		dbSize>>20, float64(dbSize)/float64(total))
	fmt.Printf("memory: 3 nodes + embedded etcd in one process: heap %d MB (%.0f bytes/prefix for all three)\n",
		(h1-h0)>>20, float64(h1-h0)/float64(total))
	// A fourth node joins and loads the table from etcd.
	h2 := heap()
	t0 := time.Now()
	d := newNode(e, "d", sites, cluster.DefaultLeaseTTL, regTimeout, true)
	waitSlow(time.Hour, func() bool { return d.ms.Registrations() == total }, "d does not load the table")
	joinT := time.Since(t0)
	h3 := heap()
	fmt.Printf("new node: loaded %d prefixes in %.1fs; its table costs %d MB (%.0f bytes/prefix)\n",
		total, joinT.Seconds(), (h3-h2)>>20, float64(h3-h2)/float64(total))
	nodes = append(nodes, d)
	// Churn: 1 % of the prefixes change locators. The refreshes go on,
	// and carry the change from then on.
	churn := max(1, total/100)
	w0 := writes(nodes[0]) + writes(nodes[1]) + writes(nodes[2])
	r0 := etrs.sent.Load()
	t0 = time.Now()
	var lastS, lastJ int
	for k := range churn {
		lastS, lastJ = (k*7919)%nsites, k%per
		etrs.two[lastS*per+lastJ].Store(true)
		etrs.register(lastS, lastJ)
	}
	last := etrs.eid(lastS, lastJ)
	waitSlow(10*time.Minute, func() bool { return pending(nodes[:3]) == 0 && d.locators(last) == 2 }, "churn not absorbed")
	churnT := time.Since(t0)
	w1 := writes(nodes[0]) + writes(nodes[1]) + writes(nodes[2])
	fmt.Printf("churn: %d changes (1 %%) made %d etcd writes (%.2f per change, %d refreshes meanwhile), absorbed in %.1fs (%.0f changes/s); at 1 %%/minute that is %.1f writes/s\n",
		churn, w1-w0, float64(w1-w0)/float64(churn), etrs.sent.Load()-r0, churnT.Seconds(), float64(churn)/churnT.Seconds(),
		float64(w1-w0)/60)
	// Node a loses etcd for longer than its lease: the others drop its
	// Records; back, it writes them all again under a new lease.
	a, b := nodes[0], nodes[1]
	own := a.ms.LocalCount()
	t0 = time.Now()
	a.proxy.Cut()
	waitSlow(10*time.Minute, func() bool { return b.ms.Registrations() <= total-own }, "b still holds a's Records")
	gone := time.Since(t0)
	t0 = time.Now()
	a.proxy.Heal()
	waitSlow(30*time.Minute, func() bool { return b.ms.Registrations() == total }, "a's Records did not come back")
	rejoin := time.Since(t0)
	fmt.Printf("partition: a cut off from etcd; its %d Records gone from b after %.1fs (lease TTL %v); back, written again and answered by b after %.1fs\n",
		own, gone.Seconds(), cluster.DefaultLeaseTTL, rejoin.Seconds())
	fmt.Printf("RESULT sim-prefixes=%d sim-sites=%d etcd-mb=%d heap-mb-3-nodes=%d join-s=%.1f join-mb=%d churn-writes-per-s=%.1f converge-s=%.1f rejoin-s=%.1f\n",
		total, nsites, dbSize>>20, (h1-h0)>>20, joinT.Seconds(), (h3-h2)>>20, float64(w1-w0)/60, converged.Seconds(), rejoin.Seconds())
}

func pending(nodes []*node) int {
	n := 0
	for _, nd := range nodes {
		n += nd.st.Pending()
	}
	return n
}

// etcdSize is the size of etcd's database.
func etcdSize(e *etcdtest.Server) int64 {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		fail(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, e.Endpoint())
	if err != nil {
		fail(err)
	}
	return st.DbSize
}
