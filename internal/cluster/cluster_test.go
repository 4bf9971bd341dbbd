package cluster

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/cluster/etcdtest"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	dc1Key = []byte("dc1-secret")
	dc2Key = []byte("dc2-secret")
	dc3Key = []byte("dc3-secret")
	hosts  = mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	dc3Net = mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/24"))
	msAddr = netip.MustParseAddr("192.0.2.1")
	etr1   = netip.MustParseAddrPort("192.0.2.11:4342") // dc1
	etr2   = netip.MustParseAddrPort("192.0.2.12:4342") // dc2
	xtr9   = netip.MustParseAddr("192.0.2.21")          // dc3, subscribes
	itr    = netip.MustParseAddr("192.0.2.31")
)

// sites are what every node is configured with: dc1 and dc2 share the
// hosts' prefix (a host moves between them; the key tells them apart),
// dc3 is where the subscribing xTR registers.
func sites() []mapserver.Site {
	key := func(k []byte) []mapserver.Key { return []mapserver.Key{{ID: 1, Alg: wire.AuthHMACSHA256, Secret: k}} }
	return []mapserver.Site{
		{Name: "dc1", Keys: key(dc1Key), Prefixes: []mapserver.SitePrefix{{EID: hosts, AcceptMoreSpecifics: true}}},
		{Name: "dc2", Keys: key(dc2Key), Prefixes: []mapserver.SitePrefix{{EID: hosts, AcceptMoreSpecifics: true}}},
		{Name: "dc3", Keys: key(dc3Key), Prefixes: []mapserver.SitePrefix{{EID: dc3Net}}},
	}
}

// node is one Map-Server of the cluster under test.
type node struct {
	t    *testing.T
	name string
	ms   *mapserver.Server
	st   *Store
	sent *lisptest.Sender // unsolicited Map-Notifies (moves, publications)
	reg  *stats.Registry
}

func newNode(t *testing.T, name string, endpoints ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, sent: &lisptest.Sender{}, reg: stats.NewRegistry()}
	st, err := New(Options{Endpoints: endpoints, Node: name, LeaseTTL: 2 * time.Second, DialTimeout: time.Second, Stats: n.reg})
	if err != nil {
		t.Fatal(err)
	}
	n.st = st
	n.ms = mapserver.New(sites(), mapserver.Options{Sender: n.sent, Stats: n.reg, Store: st, Node: name})
	if err := st.Start(n.ms); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.close)
	waitLease(t, n)
	return n
}

func waitLease(t *testing.T, n *node) {
	t.Helper()
	lisptest.Eventually(t, 10*time.Second, func() bool {
		v := n.st.View()
		return v.Lease != "" && v.Revision > 0
	}, n.name+" has no lease")
}

func (n *node) close() { n.st.Close() }

// kill stops the node as a crash would: nothing revoked, nothing said.
func (n *node) kill() {
	n.st.cancel()
	n.st.wg.Wait()
	n.st.cli.Close()
	n.st.cancel = nil
}

// register signs a Map-Register of one record and hands it to the node;
// it returns the raw message (for replays) and what the node answered.
func (n *node) register(src netip.AddrPort, key []byte, nonce uint64, xtrID byte, eid mapping.EID, proxy bool, rlocs ...string) ([]byte, []lisptest.Sent) {
	n.t.Helper()
	m := &wire.MapRegister{WantMapNotify: true, ProxyReply: proxy, AuthBody: wire.AuthBody{Nonce: nonce, KeyID: 1,
		Algorithm: wire.AuthHMACSHA256, Records: []wire.EIDRecord{record(eid, rlocs...)},
		HasXTRID: true, XTRID: [16]byte{xtrID}, SiteID: uint64(xtrID)}}
	raw, err := wire.EncodeSigned(m, key, wire.AuthOptions{})
	if err != nil {
		n.t.Fatal(err)
	}
	return raw, n.handleRegister(raw, src)
}

func (n *node) handleRegister(raw []byte, src netip.AddrPort) []lisptest.Sent {
	n.t.Helper()
	dec, err := wire.Decode(raw)
	if err != nil {
		n.t.Fatal(err)
	}
	var out lisptest.Sender
	n.ms.HandleMapRegister(&control.Request{Raw: raw, Msg: dec, Src: src, Local: netip.AddrPortFrom(msAddr, wire.ControlPort)}, &out)
	return out.Take()
}

func record(eid mapping.EID, rlocs ...string) wire.EIDRecord {
	m := mapping.Mapping{EID: eid, TTL: 1440, Authoritative: true}
	for _, r := range rlocs {
		m.Locators = append(m.Locators, mapping.Locator{Addr: netip.MustParseAddr(r), Priority: 1, Weight: 50,
			MPriority: 255, Flags: wire.LocatorReachable})
	}
	return m.Record()
}

func request(eid mapping.EID, nonce uint64) *control.Request {
	m := &wire.MapRequest{Nonce: nonce, SourceEID: wire.AddrFromIP(itr), ITRRLOCs: []wire.Address{wire.AddrFromIP(itr)},
		Records: []wire.RequestRecord{{MaskLen: eid.MaskLen(), EID: eid.Address()}}}
	return &control.Request{Raw: []byte("ecm"), Msg: m, ECM: &wire.ECM{Message: m}, ReplyTo: netip.AddrPortFrom(itr, 61000),
		Local: netip.AddrPortFrom(msAddr, wire.ControlPort)}
}

// answer asks the node for eid and returns the locators of its Map-Reply
// (nil for a negative one, or when it forwarded the request).
func (n *node) answer(eid mapping.EID) []string {
	var out lisptest.Sender
	n.ms.HandleMapRequest(request(eid, 7), &out)
	msgs := out.Take()
	if len(msgs) != 1 {
		return nil
	}
	m, err := wire.Decode(msgs[0].B)
	rep, ok := m.(*wire.MapReply)
	if err != nil || !ok || len(rep.Records) != 1 {
		return nil
	}
	return addrs(rep.Records[0].Locators)
}

// addrs are the sorted addresses of ls.
func addrs(ls []wire.Locator) []string {
	var out []string
	for _, l := range ls {
		a, _ := l.Address.Addr()
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func (n *node) answers(eid mapping.EID, want ...string) bool {
	return slices.Equal(n.answer(eid), want)
}

func startEtcd(t *testing.T) *etcdtest.Server {
	t.Helper()
	e, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func host(a string) mapping.EID { return mapping.HostEID(0, netip.MustParseAddr(a)) }

func counter(t *testing.T, n *node, key string) uint64 { return lisptest.Counter(t, n.reg, key) }

// A registration taken by node A is answered by B and C; refreshes write
// nothing to etcd; a withdrawal on A goes everywhere.
func TestRegistrationAnsweredByEveryNode(t *testing.T) {
	registrationAnsweredByEveryNode(t, startEtcd(t))
}

func registrationAnsweredByEveryNode(t *testing.T, e *etcdtest.Server) {
	a, b, c := newNode(t, "a", e.Endpoint()), newNode(t, "b", e.Endpoint()), newNode(t, "c", e.Endpoint())
	vm := host("198.51.100.10")
	a.register(etr1, dc1Key, 1, 1, vm, true, "192.0.2.11")
	for _, n := range []*node{a, b, c} {
		lisptest.Eventually(t, 5*time.Second, func() bool { return n.answers(vm, "192.0.2.11") }, n.name+" does not answer the registration")
	}
	// Every node says who holds it.
	for _, n := range []*node{b, c} {
		s := n.ms.Sites("dc1")
		if len(s) != 1 || len(s[0].Registrations) != 1 || s[0].Registrations[0].RegisteredBy[0].Node != "a" {
			t.Errorf("%s show site: %+v", n.name, s)
		}
	}
	// The write is counted when etcd's answer reaches a, which may be
	// after the others saw it.
	lisptest.Eventually(t, 5*time.Second, func() bool { return counter(t, a, "cluster.writes{kind=record}") == 1 }, "a did not count its write")
	writes := counter(t, a, "cluster.writes{kind=record}")
	for i := range 20 {
		a.register(etr1, dc1Key, uint64(2+i), 1, vm, true, "192.0.2.11")
	}
	time.Sleep(3 * retryWait)
	if got := counter(t, a, "cluster.writes{kind=record}"); got != writes {
		t.Errorf("20 refreshes made %d etcd record writes, want 0", got-writes)
	}
	// A new locator is a change: written, answered everywhere.
	a.register(etr1, dc1Key, 30, 1, vm, true, "192.0.2.11", "192.0.2.13")
	lisptest.Eventually(t, 5*time.Second, func() bool { return c.answers(vm, "192.0.2.11", "192.0.2.13") }, "c does not answer the change")
	// Withdrawn (record TTL 0 with T): gone from every node.
	m := &wire.MapRegister{UseTTL: true, AuthBody: wire.AuthBody{Nonce: 31, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
		Records: []wire.EIDRecord{record(vm, "192.0.2.11")}, HasXTRID: true, XTRID: [16]byte{1}, SiteID: 1}}
	m.Records[0].TTL = 0
	raw, _ := wire.EncodeSigned(m, dc1Key, wire.AuthOptions{})
	a.handleRegister(raw, etr1)
	for _, n := range []*node{a, b, c} {
		lisptest.Eventually(t, 5*time.Second, func() bool { return n.ms.Registrations() == 0 }, n.name+" still holds the withdrawn prefix")
	}
	if v := b.st.View(); len(v.Nodes) != 3 || !v.Connected {
		t.Errorf("b's cluster view: %+v", v)
	}
}

// A host registered by dc1 through node A moves to dc2 through node B: A
// tells the dc1 xTR with a Map-Notify signed by dc1's key, and the xTR
// subscribed on node C gets the publication of the new mapping.
func TestMoveAcrossNodes(t *testing.T) { moveAcrossNodes(t, startEtcd(t)) }

func moveAcrossNodes(t *testing.T, e *etcdtest.Server) {
	a, b, c := newNode(t, "a", e.Endpoint()), newNode(t, "b", e.Endpoint()), newNode(t, "c", e.Endpoint())
	vm := host("198.51.100.20")
	a.register(etr1, dc1Key, 1, 1, vm, true, "192.0.2.11")
	// xTR 9 of dc3 registers through C (a security association there) and
	// subscribes to the host.
	c.register(netip.AddrPortFrom(xtr9, wire.ControlPort), dc3Key, 1, 9, dc3Net, true, xtr9.String())
	lisptest.Eventually(t, 5*time.Second, func() bool { return c.answers(vm, "192.0.2.11") }, "c does not answer the host")
	sub := request(vm, 100)
	sm := sub.Msg.(*wire.MapRequest)
	sm.ITRRLOCs = []wire.Address{wire.AddrFromIP(xtr9)}
	sm.HasXTRID, sm.XTRID, sm.SiteID = true, [16]byte{9}, 9
	sm.Records[0].Notify = true
	sub.ECM.IP.Src = xtr9
	c.ms.HandleMapRequest(sub, &lisptest.Sender{})
	if len(c.ms.Subscriptions()) != 1 {
		t.Fatal("xTR 9 not subscribed on c")
	}
	c.sent.Take() // the subscription's acknowledgement
	a.sent.Take()

	b.register(etr2, dc2Key, 1, 2, vm, true, "192.0.2.12")
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.sent.Len() > 0 }, "a sent no Map-Notify to the old xTR")
	msgs := a.sent.Take()
	if len(msgs) != 1 || msgs[0].To != etr1 {
		t.Fatalf("a sent %d messages (%v), want one Map-Notify to %v", len(msgs), msgs, etr1)
	}
	if err := wire.Verify(msgs[0].B, dc1Key, wire.AuthOptions{}); err != nil {
		t.Errorf("move Map-Notify not signed with dc1's key: %v", err)
	}
	n := decodeNotify(t, msgs[0].B)
	if loc := locators(n); !slices.Equal(loc, []string{"192.0.2.12"}) {
		t.Errorf("move Map-Notify carries %v, want the new locator", loc)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return c.sent.Len() > 0 }, "c published nothing to its subscriber")
	pub := c.sent.Take()
	if pub[0].To != netip.AddrPortFrom(xtr9, wire.ControlPort) {
		t.Errorf("publication to %v", pub[0].To)
	}
	if err := wire.Verify(pub[0].B, dc3Key, wire.AuthOptions{}); err != nil {
		t.Errorf("publication not signed with the subscriber's site key: %v", err)
	}
	if loc := locators(decodeNotify(t, pub[0].B)); !slices.Equal(loc, []string{"192.0.2.12"}) {
		t.Errorf("publication carries %v, want the new locator", loc)
	}
	for _, n := range []*node{a, b, c} {
		lisptest.Eventually(t, 5*time.Second, func() bool { return n.answers(vm, "192.0.2.12") }, n.name+" does not answer the moved host")
	}
	// A dropped its own registration and its Record.
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.ms.LocalCount() == 0 }, "a still holds the moved host")
	if s := c.ms.Sites("dc2"); len(s[0].Registrations) != 1 || s[0].Registrations[0].Moves != 1 {
		t.Errorf("c's view of dc2 after the move: %+v", s)
	}
}

func decodeNotify(t *testing.T, b []byte) *wire.MapNotify {
	t.Helper()
	m, err := wire.Decode(b)
	n, ok := m.(*wire.MapNotify)
	if err != nil || !ok {
		t.Fatalf("not a Map-Notify: %v %v", m, err)
	}
	return n
}

func locators(n *wire.MapNotify) []string { return addrs(n.Records[0].Locators) }

// A killed node's prefixes go with its lease; they come back as soon as
// the ETR registers through another node.
func TestKilledNodePrefixesExpireAndReturn(t *testing.T) {
	killedNodePrefixesExpireAndReturn(t, startEtcd(t))
}

func killedNodePrefixesExpireAndReturn(t *testing.T, e *etcdtest.Server) {
	a, b, c := newNode(t, "a", e.Endpoint()), newNode(t, "b", e.Endpoint()), newNode(t, "c", e.Endpoint())
	vm := host("198.51.100.30")
	a.register(etr1, dc1Key, 1, 1, vm, true, "192.0.2.11")
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.answers(vm, "192.0.2.11") }, "b does not answer")
	a.kill()
	start := time.Now()
	lisptest.Eventually(t, 10*time.Second, func() bool { return b.answer(vm) == nil }, "a's prefix outlived its lease on b")
	if d := time.Since(start); d < time.Second {
		t.Errorf("a's prefix went after %v: before its lease could expire", d)
	}
	c.register(etr1, dc1Key, 2, 1, vm, true, "192.0.2.11")
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.answers(vm, "192.0.2.11") }, "the prefix did not come back through c")
	if v := b.st.View(); slices.ContainsFunc(v.Nodes, func(n adminapi.ClusterNode) bool { return n.Name == "a" && n.Alive }) {
		t.Errorf("b still sees a alive: %+v", v.Nodes)
	}
}

// With the ETR registering through two nodes, one dying changes nothing
// anyone answers.
func TestETRRegisteringWithTwoNodesSurvivesOne(t *testing.T) {
	eTRRegisteringWithTwoNodesSurvivesOne(t, startEtcd(t))
}

func eTRRegisteringWithTwoNodesSurvivesOne(t *testing.T, e *etcdtest.Server) {
	a, b, c := newNode(t, "a", e.Endpoint()), newNode(t, "b", e.Endpoint()), newNode(t, "c", e.Endpoint())
	vm := host("198.51.100.35")
	a.register(etr1, dc1Key, 1, 1, vm, true, "192.0.2.11")
	b.register(etr1, dc1Key, 2, 1, vm, true, "192.0.2.11")
	lisptest.Eventually(t, 5*time.Second, func() bool { return c.ms.RemoteStats()["b"] == 1 && c.ms.RemoteStats()["a"] == 1 }, "c does not see both Records")
	a.kill()
	deadline := time.Now().Add(4 * time.Second) // twice the lease TTL
	for time.Now().Before(deadline) {
		if !c.answers(vm, "192.0.2.11") {
			t.Fatal("c stopped answering when one of the ETR's two Map-Servers died")
		}
		time.Sleep(50 * time.Millisecond)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return c.ms.RemoteStats()["a"] == 0 }, "a's Record outlived its lease")
}

// A node cut off from etcd keeps answering from its last table and says
// so; meanwhile the others drop its Records (lease) and change theirs,
// and etcd compacts the history it missed. Back, it lists everything
// again, writes its own Records under a new lease, and every node agrees.
func TestPartitionedNodeRejoinsAndConverges(t *testing.T) {
	partitionedNodeRejoinsAndConverges(t, startEtcd(t))
}

func partitionedNodeRejoinsAndConverges(t *testing.T, e *etcdtest.Server) {
	p, err := etcdtest.NewProxy(e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	a := newNode(t, "a", p.Endpoint())
	b, c := newNode(t, "b", e.Endpoint()), newNode(t, "c", e.Endpoint())
	stay, gone, moved := host("198.51.100.40"), host("198.51.100.41"), host("198.51.100.42")
	b.register(etr2, dc2Key, 1, 2, stay, true, "192.0.2.12")
	b.register(etr2, dc2Key, 2, 2, gone, true, "192.0.2.12")
	a.register(etr1, dc1Key, 1, 1, moved, true, "192.0.2.11")
	lisptest.Eventually(t, 5*time.Second, func() bool {
		return a.answers(gone, "192.0.2.12") && c.answers(moved, "192.0.2.11")
	}, "not converged before the partition")

	p.Cut()
	lisptest.Eventually(t, 10*time.Second, func() bool { return !a.st.View().Connected }, "a does not say etcd is unreachable")
	// The others drop a's Records when its lease ends...
	lisptest.Eventually(t, 10*time.Second, func() bool { return c.answer(moved) == nil }, "a's Record outlived its lease")
	// ...and change theirs: one withdrawn, the host a held moves to dc2.
	m := &wire.MapRegister{UseTTL: true, AuthBody: wire.AuthBody{Nonce: 3, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
		Records: []wire.EIDRecord{record(gone, "192.0.2.12")}, HasXTRID: true, XTRID: [16]byte{2}, SiteID: 2}}
	m.Records[0].TTL = 0
	raw, _ := wire.EncodeSigned(m, dc2Key, wire.AuthOptions{})
	b.handleRegister(raw, etr2)
	b.register(etr2, dc2Key, 4, 2, moved, true, "192.0.2.12")
	lisptest.Eventually(t, 5*time.Second, func() bool { return c.answers(moved, "192.0.2.12") && c.answer(gone) == nil }, "c did not see b's changes")
	// a answers from what it had meanwhile.
	if !a.answers(stay, "192.0.2.12") || !a.answers(moved, "192.0.2.11") {
		t.Error("a does not answer from its last table while cut off")
	}
	// etcd forgets the history a missed.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	resyncs := counter(t, a, "cluster.resyncs")

	p.Heal()
	lisptest.Eventually(t, 15*time.Second, func() bool { return a.st.View().Connected }, "a did not reconnect")
	// a took the move: its own registration of the host is displaced by
	// dc2's newer Record, its dc1 xTR told.
	for _, n := range []*node{a, b, c} {
		lisptest.Eventually(t, 10*time.Second, func() bool {
			return n.answers(stay, "192.0.2.12") && n.answer(gone) == nil && n.answers(moved, "192.0.2.12")
		}, n.name+" did not converge after the partition")
	}
	if counter(t, a, "cluster.resyncs") == resyncs {
		t.Error("a did not list everything again after etcd compacted its history")
	}
	lisptest.Eventually(t, 5*time.Second, func() bool {
		return slices.ContainsFunc(a.sent.All(), func(s lisptest.Sent) bool { return s.To == etr1 })
	}, "a did not tell its dc1 xTR the host moved")
	// a's own new registration reaches the others under its new lease.
	fresh := host("198.51.100.43")
	a.register(etr1, dc1Key, 5, 1, fresh, true, "192.0.2.11")
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.answers(fresh, "192.0.2.11") }, "b does not see a's registration after the partition")
}

// A Map-Register accepted by node A and replayed to node B, from the
// xTR's address or another, is refused there; the xTR's own next one is
// taken.
func TestReplayToAnotherNodeRefused(t *testing.T) { replayToAnotherNodeRefused(t, startEtcd(t)) }

func replayToAnotherNodeRefused(t *testing.T, e *etcdtest.Server) {
	a, b := newNode(t, "a", e.Endpoint()), newNode(t, "b", e.Endpoint())
	vm := host("198.51.100.50")
	raw, _ := a.register(etr1, dc1Key, 1000, 1, vm, true, "192.0.2.11")
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.answers(vm, "192.0.2.11") }, "b does not answer")
	for _, src := range []netip.AddrPort{etr1, netip.MustParseAddrPort("203.0.113.66:4342")} {
		before := counter(t, b, "map_server.registers_rejected{reason=nonce-not-increasing}")
		if out := b.handleRegister(raw, src); len(out) != 0 {
			t.Errorf("replay from %v answered with %d messages", src, len(out))
		}
		if counter(t, b, "map_server.registers_rejected{reason=nonce-not-increasing}") != before+1 {
			t.Errorf("replay from %v to another node not refused as a replay", src)
		}
	}
	if b.ms.LocalCount() != 0 {
		t.Error("b took the replay as its own registration")
	}
	if _, out := b.register(etr1, dc1Key, 1001, 1, vm, true, "192.0.2.11"); len(out) != 1 {
		t.Error("the xTR's own next Map-Register to b was not acknowledged")
	}

	// An xTR without xTR-ID is known by its address, so a copy from
	// another address is a new xTR to the nonce rule: the Record's digest
	// gives it away.
	host2 := host("198.51.100.51")
	m := &wire.MapRegister{WantMapNotify: true, ProxyReply: true, AuthBody: wire.AuthBody{Nonce: 5, KeyID: 1,
		Algorithm: wire.AuthHMACSHA256, Records: []wire.EIDRecord{record(host2, "192.0.2.14")}}}
	raw, err := wire.EncodeSigned(m, dc1Key, wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.14:4342")
	if out := a.handleRegister(raw, src); len(out) != 1 {
		t.Fatal("a did not take the Map-Register without xTR-ID")
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.answers(host2, "192.0.2.14") }, "b does not answer the host")
	before, held := counter(t, b, "map_server.registers_rejected{reason=replayed-duplicate}"), b.ms.LocalCount()
	if out := b.handleRegister(raw, netip.MustParseAddrPort("203.0.113.66:4342")); len(out) != 0 {
		t.Error("copy from another address answered")
	}
	if counter(t, b, "map_server.registers_rejected{reason=replayed-duplicate}") != before+1 || b.ms.LocalCount() != held {
		t.Error("copy of a's Map-Register from another address taken by b")
	}
}

// TestRealEtcdServer runs the tests above against the etcd server
// operators run (Debian's etcd-server, 3.4 today, against this 3.7
// client), started as a process of its own; it skips when etcd is not
// installed.
func TestRealEtcdServer(t *testing.T) {
	bin, err := lab.EtcdBinary()
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *etcdtest.Server)
	}{
		{"RegistrationAnsweredByEveryNode", registrationAnsweredByEveryNode},
		{"MoveAcrossNodes", moveAcrossNodes},
		{"KilledNodePrefixesExpireAndReturn", killedNodePrefixesExpireAndReturn},
		{"ETRRegisteringWithTwoNodesSurvivesOne", eTRRegisteringWithTwoNodesSurvivesOne},
		{"PartitionedNodeRejoinsAndConverges", partitionedNodeRejoinsAndConverges},
		{"ReplayToAnotherNodeRefused", replayToAnotherNodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := etcdtest.StartBinary(bin, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			tc.run(t, e)
		})
	}
}

// Records written again under a new lease go in batches guarded by the
// revision they were read at; when one prefix of a batch was written
// since, the others are still written, and that one waits for the watch.
func TestGuardedRewriteBatch(t *testing.T) {
	e := startEtcd(t)
	a, b := newNode(t, "a", e.Endpoint()), newNode(t, "b", e.Endpoint())
	eids := []mapping.EID{host("198.51.100.50"), host("198.51.100.51"), host("198.51.100.52")}
	for i, eid := range eids {
		a.register(etr1, dc1Key, uint64(1+i), 1, eid, true, "192.0.2.11")
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return b.ms.RemoteStats()["a"] == 3 }, "b does not see a's Records")
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.st.Pending() == 0 }, "a has writes pending")
	before := a.st.rev.Load()
	// b writes a Record of the second prefix after a read it.
	b.register(etr1, dc1Key, 10, 1, eids[1], true, "192.0.2.11")
	lisptest.Eventually(t, 5*time.Second, func() bool { return a.ms.RemoteStats()["b"] == 1 }, "a does not see b's Record")
	now := a.st.rev.Load()
	recs := []prepared{{eid: eids[0], seen: now}, {eid: eids[1], seen: before}, {eid: eids[2], seen: now}}
	for i := range recs {
		recs[i].l = a.ms.LocalRecord(recs[i].eid)
	}
	a.st.mu.Lock()
	lease := a.st.lease
	a.st.mu.Unlock()
	written := counter(t, a, "cluster.writes{kind=record}")
	a.st.writeGuarded(context.Background(), lease, recs)
	if got := counter(t, a, "cluster.writes{kind=record}") - written; got != 2 {
		t.Errorf("%d Records written, want the 2 not written since", got)
	}
	a.st.mu.Lock()
	_, again := a.st.rewrite[eids[1]]
	n := len(a.st.rewrite)
	a.st.mu.Unlock()
	if !again || n != 1 {
		t.Errorf("to write again: %d prefixes (the one b wrote: %v), want only that one", n, again)
	}
}
