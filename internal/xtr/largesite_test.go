package xtr

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/wire"
)

// siteNet joins xTRs and an in-process Map-Server: what an xTR sends to the
// Map-Server is handled there, and the Map-Server's answers (and its own
// Map-Notifies) are handed back to the xTR they are addressed to.
type siteNet struct {
	t      *testing.T
	ms     *mapserver.Server
	msAddr netip.Addr
	msOut  *lisptest.Sender
	xtrs   map[netip.Addr]*Server // by RLOC
	outs   map[netip.Addr]*lisptest.Sender
	// drop, when set, loses a message on its way to the Map-Server.
	drop func(*wire.MapRegister) bool
	// notified, when set, sees every Map-Notify on its way to an xTR.
	notified func(to netip.Addr, b []byte, m *wire.MapNotify)
}

func newSiteNet(t *testing.T, clk *lisptest.Clock, secret []byte, prefix string) *siteNet {
	n := &siteNet{t: t, msAddr: netip.MustParseAddr("192.0.2.1"), msOut: &lisptest.Sender{},
		xtrs: map[netip.Addr]*Server{}, outs: map[netip.Addr]*lisptest.Sender{}}
	n.ms = mapserver.New([]mapserver.Site{{Name: "roaming",
		Keys:     []mapserver.Key{{ID: 1, Alg: wire.AuthHMACSHA256, Secret: secret}},
		Prefixes: []mapserver.SitePrefix{{EID: mapping.NewEID(0, netip.MustParsePrefix(prefix)), AcceptMoreSpecifics: true}}}},
		mapserver.Options{Now: clk.Now, Sender: n.msOut})
	return n
}

func (n *siteNet) add(rloc netip.Addr, o Options) *Server {
	c := &lisptest.Sender{}
	o.Sender, o.LocalRLOCs = c, []netip.Addr{rloc}
	s := New(o)
	n.xtrs[rloc], n.outs[rloc] = s, c
	return s
}

// deliver runs messages until everything sent has arrived; it returns the
// Map-Registers the xTRs sent, and how many bytes each was.
func (n *siteNet) deliver() (regs []*wire.MapRegister, sizes []int) {
	n.t.Helper()
	for progress := true; progress; {
		progress = false
		for rloc, out := range n.outs {
			for _, m := range out.Take() {
				progress = true
				msg := must(wire.Decode(m.B))
				if m.To.Addr() != n.msAddr {
					continue // SMRs, Map-Requests: not this test's business
				}
				reg, ok := msg.(*wire.MapRegister)
				if ok {
					regs, sizes = append(regs, reg), append(sizes, len(m.B))
					if n.drop != nil && n.drop(reg) {
						continue
					}
				}
				r := &control.Request{Raw: m.B, Msg: msg, Src: netip.AddrPortFrom(rloc, wire.ControlPort),
					Local: netip.AddrPortFrom(n.msAddr, wire.ControlPort)}
				switch msg.(type) {
				case *wire.MapRegister:
					n.ms.HandleMapRegister(r, n.msOut)
				case *wire.MapNotifyAck:
					n.ms.HandleMapNotifyAck(r, n.msOut)
				}
			}
		}
		for _, m := range n.msOut.Take() {
			progress = true
			s, ok := n.xtrs[m.To.Addr()]
			if !ok {
				continue
			}
			msg := must(wire.Decode(m.B))
			if nt, ok := msg.(*wire.MapNotify); ok {
				if n.notified != nil {
					n.notified(m.To.Addr(), m.B, nt)
				}
				s.HandleMapNotify(&control.Request{Raw: m.B, Msg: nt, Src: netip.AddrPortFrom(n.msAddr, wire.ControlPort),
					Local: netip.AddrPortFrom(m.To.Addr(), wire.ControlPort)}, n.outs[m.To.Addr()])
			}
		}
	}
	return regs, sizes
}

// TestLargeSiteRegisters: a site with 5,000 roaming hosts (/32s) beside its
// configured prefix registers every one of them with the Map-Server: the
// database goes in Map-Registers of at most 255 records that fit 576 bytes
// towards an IPv4 Map-Server (and so 1,280), each acknowledged by its own
// Map-Notify; a new host arriving alone costs one Map-Register of its own record; a
// Map-Register whose Map-Notify is lost is sent again alone.
func TestLargeSiteRegisters(t *testing.T) {
	const hosts = 5000
	clk, secret := lisptest.NewClock(time.Unix(1e9, 0)), []byte("roaming-key")
	n := newSiteNet(t, clk, secret, "198.18.0.0/16")
	rloc := netip.MustParseAddr("192.0.2.12")
	ours := []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
	s := n.add(rloc, Options{ETR: true, Now: clk.Now, XTRID: [16]byte{1},
		Database:   []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.18.0.0/24")), Locators: ours}},
		MapServers: []MapServerPeer{{Addr: n.msAddr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: secret, WantMapNotify: true}},
		HostRanges: []HostRange{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.18.0.0/16")), MaxHosts: 8192}}})
	s.Tick()
	n.deliver()

	hostEID := func(i int) mapping.EID {
		return mapping.HostEID(0, netip.AddrFrom4([4]byte{198, 18, byte(1 + i/250), byte(1 + i%250)}))
	}
	for i := range hosts {
		// Alone: past the batch window of the one before.
		clk.Advance(hostBatchWindow)
		if !s.AddHost(hostEID(i), ours) {
			t.Fatalf("host %d refused", i)
		}
		regs, sizes := n.deliver()
		if len(regs) != 1 || len(regs[0].Records) != 1 || sizes[0] > 128 {
			t.Fatalf("host %d cost %d Map-Registers (first of %d records), want one of its own record", i, len(regs),
				len(regs[0].Records))
		}
	}
	if got := n.ms.Registrations(); got != hosts+1 {
		t.Fatalf("the Map-Server holds %d registrations, want %d", got, hosts+1)
	}

	// The periodic registration: the whole database, split. One
	// Map-Notify is lost: that Map-Register alone goes again.
	lost := 0
	n.drop = func(r *wire.MapRegister) bool {
		if lost == 0 && len(r.Records) > 1 {
			lost = len(r.Records)
			return true
		}
		return false
	}
	clk.Advance(time.Minute)
	s.Tick()
	regs, sizes := n.deliver()
	records := 0
	for i, r := range regs {
		records += len(r.Records)
		if sizes[i] > registerBudget4 || len(r.Records) > 255 {
			t.Errorf("Map-Register %d: %d bytes, %d records; want at most %d bytes and 255 records", i, sizes[i],
				len(r.Records), registerBudget4)
		}
	}
	if records != hosts+1 || len(regs) < (hosts+1)*28/registerBudget4 {
		t.Errorf("%d Map-Registers carried %d records, want all %d", len(regs), records, hosts+1)
	}
	v := s.DatabaseView().MapServers[0]
	if v.State != "waiting for Map-Notify" || len(s.peers[0].inflight) != 1 {
		t.Fatalf("with one Map-Notify lost: state %q, %d Map-Registers waiting", v.State, len(s.peers[0].inflight))
	}
	n.drop = nil
	clk.Advance(time.Second)
	s.Tick()
	regs, _ = n.deliver()
	if len(regs) != 1 || len(regs[0].Records) != lost {
		t.Fatalf("retransmitted %d Map-Registers, want the lost one of %d records", len(regs), lost)
	}
	if v := s.DatabaseView().MapServers[0]; v.State != "registered" {
		t.Errorf("after the retransmission: %q", v.State)
	}
	if got := n.ms.Registrations(); got != hosts+1 {
		t.Errorf("the Map-Server holds %d registrations, want %d", got, hosts+1)
	}
}

// TestHostCap: a range takes at most its max-hosts; the rest are counted
// and not registered, and a host that goes makes room again.
func TestHostCap(t *testing.T) {
	c := &lisptest.Sender{}
	rloc := netip.MustParseAddr("192.0.2.12")
	ours := []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
	s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{rloc}, Sender: c,
		MapServers: []MapServerPeer{{Addr: netip.MustParseAddr("192.0.2.1"), KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: []byte("k")}},
		HostRanges: []HostRange{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.18.0.0/24")), MaxHosts: 3}}})
	host := func(i byte) mapping.EID { return mapping.HostEID(0, netip.AddrFrom4([4]byte{198, 18, 0, i})) }
	for i := range byte(5) {
		s.AddHost(host(i+1), ours)
	}
	if n := len(s.Hosts()); n != 3 {
		t.Errorf("%d hosts in a range of max-hosts 3", n)
	}
	if n := lisptest.Counter(t, s.opts.Stats, "mobility.hosts_refused{reason=range-full}"); n != 2 {
		t.Errorf("hosts_refused = %d, want 2", n)
	}
	if !s.AddHost(host(1), []mapping.Locator{{Addr: rloc, Priority: 2, Weight: 100}}) {
		t.Error("a known host's new locators refused")
	}
	s.RemoveHost(host(1), true)
	if !s.AddHost(host(4), ours) {
		t.Error("no room after a host went")
	}
	if !s.AddHost(mapping.HostEID(0, netip.MustParseAddr("203.0.113.7")), ours) {
		t.Error("a host outside the range refused")
	}
}

// TestMovesWithMapServer: a host moves from xTR A to xTR B, back to A and
// to B again, through a real Map-Server. Each move's Map-Notify to the xTR
// that lost the host is taken (the Map-Server's nonces grow, so the
// replay check passes them), and the first one replayed after the host
// came back is not.
func TestMovesWithMapServer(t *testing.T) {
	clk, secret := lisptest.NewClock(time.Unix(1e9, 0)), []byte("roaming-key")
	n := newSiteNet(t, clk, secret, "198.18.0.0/16")
	host := mapping.HostEID(0, netip.MustParseAddr("198.18.1.10"))
	type xtr struct {
		s     *Server
		locs  []mapping.Locator
		moved int
		last  []byte // the last "moved" Map-Notify it received
	}
	var a, b xtr
	for i, x := range []*xtr{&a, &b} {
		rloc := netip.AddrFrom4([4]byte{192, 0, 2, byte(21 + i)})
		x.locs = []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
		x.s = n.add(rloc, Options{ETR: true, Now: clk.Now, XTRID: [16]byte{byte(1 + i)}, SiteID: uint64(1 + i),
			MapServers: []MapServerPeer{{Addr: n.msAddr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: secret, WantMapNotify: true}},
			OnMovedAway: func(moved []mapping.Mapping) {
				for _, mp := range moved {
					x.moved++
					x.s.RemoveHost(mp.EID, false)
				}
			}})
	}
	// Keep the last "moved" Map-Notify to each xTR (one not listing its
	// locator) for the replay.
	n.notified = func(to netip.Addr, raw []byte, m *wire.MapNotify) {
		for _, x := range []*xtr{&a, &b} {
			if to == x.locs[0].Addr && len(m.Records) == 1 && m.Records[0].Locators[0].Address.String() != to.String() {
				x.last = raw
			}
		}
	}
	arrive := func(x *xtr) {
		clk.Advance(time.Second)
		x.s.AddHost(host, x.locs)
		n.deliver()
	}
	arrive(&a)
	arrive(&b)
	if a.moved != 1 || len(a.s.Hosts()) != 0 {
		t.Fatalf("first move: A heard %d moves, holds %d hosts", a.moved, len(a.s.Hosts()))
	}
	firstMove := a.last
	arrive(&a)
	if b.moved != 1 || len(a.s.Hosts()) != 1 {
		t.Fatalf("back: B heard %d moves, A holds %d hosts", b.moved, len(a.s.Hosts()))
	}
	// The first move's Map-Notify, replayed to A: ignored.
	a.s.HandleMapNotify(&control.Request{Raw: firstMove, Msg: must(wire.Decode(firstMove)),
		Src: netip.AddrPortFrom(n.msAddr, wire.ControlPort), Local: netip.AddrPortFrom(a.locs[0].Addr, wire.ControlPort)}, n.outs[a.locs[0].Addr])
	if a.moved != 1 || len(a.s.Hosts()) != 1 {
		t.Fatalf("the replayed move took the host from A (%d moves heard)", a.moved)
	}
	// Moving again is a new move, heard.
	for range 3 {
		arrive(&b)
		arrive(&a)
	}
	if a.moved != 4 || b.moved != 4 {
		t.Errorf("after three more round trips A heard %d moves, B %d; want 4 each", a.moved, b.moved)
	}
}

// TestArrivedHostSMRWaitsForItsOwnAck: the SMRs for a host that arrived
// go when the Map-Register carrying the host is acknowledged, not when
// another one (of the periodic registration still in flight) is.
func TestArrivedHostSMRWaitsForItsOwnAck(t *testing.T) {
	ms, rloc, secret := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.12"), []byte("k")
	clk, c := lisptest.NewClock(time.Unix(1e9, 0)), &lisptest.Sender{}
	s := New(Options{ETR: true, ITR: true, LocalRLOCs: []netip.Addr{rloc}, Now: clk.Now, Sender: c,
		MapServers: []MapServerPeer{{Addr: ms, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: secret, WantMapNotify: true}},
		Database:   []DatabaseEntry{{EID: siteEID, Locators: []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}}}})
	s.Tick()
	periodic := must(wire.Decode(c.Take()[0].B)).(*wire.MapRegister)
	s.Decapsulated(netip.MustParseAddr("192.0.2.30"), 0, netip.Addr{})
	s.AddHost(mapping.HostEID(0, netip.MustParseAddr("198.51.100.10")), []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}})
	own := must(wire.Decode(c.Take()[0].B)).(*wire.MapRegister)
	smrs := func() (n int) {
		for _, m := range c.Take() {
			if r, ok := must(wire.Decode(m.B)).(*wire.MapRequest); ok && r.SMR {
				n++
			}
		}
		return n
	}
	ack := func(r *wire.MapRegister) {
		notifyFrom(t, s, c, ms, rloc, secret, &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: r.Nonce, KeyID: 1,
			Algorithm: wire.AuthHMACSHA256, Records: r.Records, HasXTRID: true, XTRID: r.XTRID, SiteID: r.SiteID}})
	}
	ack(periodic)
	if n := smrs(); n != 0 {
		t.Errorf("%d SMRs on the ack of a Map-Register without the host", n)
	}
	ack(own)
	if n := smrs(); n != 1 {
		t.Errorf("%d SMRs on the ack of the host's Map-Register, want 1", n)
	}
	if v := s.DatabaseView().MapServers[0]; v.State != "registered" || v.Notifies != 2 {
		t.Errorf("Map-Server state %q after %d Map-Notifies", v.State, v.Notifies)
	}
}

// TestRegisterEncodeFailureCounted: a database entry that cannot be
// encoded (256 locators: the Locator Count is 8 bits) is counted and
// logged, and does not keep the rest of the database from registering.
func TestRegisterEncodeFailureCounted(t *testing.T) {
	var logged bytes.Buffer
	c := &lisptest.Sender{}
	bad := DatabaseEntry{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/25"))}
	for i := range 256 {
		bad.Locators = append(bad.Locators, mapping.Locator{Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Priority: 1, Weight: 1})
	}
	good := DatabaseEntry{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.128/25")),
		Locators: []mapping.Locator{{Addr: me, Priority: 1, Weight: 100}}}
	s := New(Options{ETR: true, LocalRLOCs: []netip.Addr{me}, Sender: c, Database: []DatabaseEntry{bad, good},
		MapServers: []MapServerPeer{{Addr: mr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: []byte("k")}},
		Log:        slog.New(slog.NewTextHandler(&logged, nil))})
	s.Tick()
	if n := lisptest.Counter(t, s.opts.Stats, "etr.map_register_encode_failures"); n != 1 {
		t.Errorf("map_register_encode_failures = %d, want 1", n)
	}
	if n := strings.Count(logged.String(), "cannot encode Map-Register"); n != 1 {
		t.Errorf("%d log lines, want one:\n%s", n, logged.String())
	}
	regs := 0
	for _, m := range c.Take() {
		if r, ok := must(wire.Decode(m.B)).(*wire.MapRegister); ok && len(r.Records) == 1 && r.Records[0].MaskLen == 25 {
			regs++
		}
	}
	if regs != 1 {
		t.Errorf("the encodable entry went in %d Map-Registers, want 1", regs)
	}
}

// TestHostsArrivingTogether: 300 hosts detected at once (a mass
// migration): the first is registered at once, alone; the others wait for
// the end of the batch window and go together, in Map-Registers as full as
// the 576-byte limit allows, each acknowledged, every host registered. A
// host that leaves while it waits is not registered.
func TestHostsArrivingTogether(t *testing.T) {
	const hosts = 300
	clk, secret := lisptest.NewClock(time.Unix(1e9, 0)), []byte("roaming-key")
	n := newSiteNet(t, clk, secret, "198.18.0.0/16")
	rloc := netip.MustParseAddr("192.0.2.12")
	ours := []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
	var windowEnd []func()
	s := n.add(rloc, Options{ETR: true, Now: clk.Now, XTRID: [16]byte{1},
		Database:   []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.18.0.0/24")), Locators: ours}},
		MapServers: []MapServerPeer{{Addr: n.msAddr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: secret, WantMapNotify: true}},
		AfterFunc: func(d time.Duration, f func()) {
			if d <= 0 || d > hostBatchWindow {
				t.Errorf("batch window end scheduled in %v", d)
			}
			windowEnd = append(windowEnd, f)
		}})
	s.Tick()
	n.deliver()
	hostEID := func(i int) mapping.EID {
		return mapping.HostEID(0, netip.AddrFrom4([4]byte{198, 18, byte(1 + i/250), byte(1 + i%250)}))
	}
	for i := range hosts {
		s.AddHost(hostEID(i), ours)
	}
	if regs, _ := n.deliver(); len(regs) != 1 || len(regs[0].Records) != 1 {
		t.Fatalf("the first host: %d Map-Registers, want one of its own", len(regs))
	}
	if len(windowEnd) != 1 {
		t.Fatalf("%d batch windows scheduled, want 1", len(windowEnd))
	}
	s.RemoveHost(hostEID(hosts-1), false) // left before its turn
	clk.Advance(hostBatchWindow)
	windowEnd[0]()
	regs, sizes := n.deliver()
	records := 0
	for i, r := range regs {
		records += len(r.Records)
		if sizes[i] > registerBudget4+28 {
			t.Errorf("a Map-Register of %d bytes", sizes[i])
		}
	}
	// A /32 with one locator is 28 bytes: 17 fit beside the header.
	if records != hosts-2 || len(regs) > (hosts-2)/15+1 {
		t.Errorf("%d hosts in %d Map-Registers, want %d in at most %d", records, len(regs), hosts-2, (hosts-2)/15+1)
	}
	if got := n.ms.Registrations(); got != hosts {
		t.Errorf("the Map-Server holds %d registrations, want %d", got, hosts)
	}
	if s.c.hostBatches.Load() != 2 {
		t.Errorf("%d batches, want 2", s.c.hostBatches.Load())
	}
}

// TestHostBatch: the addresses of one VM announced together (its IPv4
// and IPv6 addresses, by one RARP) go in one Map-Register, at once.
func TestHostBatch(t *testing.T) {
	clk, secret := lisptest.NewClock(time.Unix(1e9, 0)), []byte("roaming-key")
	n := newSiteNet(t, clk, secret, "198.18.0.0/16")
	rloc := netip.MustParseAddr("192.0.2.12")
	ours := []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
	s := n.add(rloc, Options{ETR: true, Now: clk.Now, XTRID: [16]byte{1},
		MapServers: []MapServerPeer{{Addr: n.msAddr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: secret, WantMapNotify: true}},
		AfterFunc:  func(time.Duration, func()) { t.Error("a batch window for hosts that came alone") }})
	s.HostBatch(func() {
		s.AddHost(mapping.HostEID(0, netip.MustParseAddr("198.18.7.1")), ours)
		s.AddHost(mapping.HostEID(0, netip.MustParseAddr("198.18.7.2")), ours)
	})
	if regs, _ := n.deliver(); len(regs) != 1 || len(regs[0].Records) != 2 {
		t.Fatalf("%d Map-Registers (want one of both hosts)", len(regs))
	}
}

// TestMovedHostNotRetransmitted: a host whose Map-Register was lost moves
// away before the retransmission: the retransmission leaves it out (it
// would register the host back at the site it left).
func TestMovedHostNotRetransmitted(t *testing.T) {
	clk, secret := lisptest.NewClock(time.Unix(1e9, 0)), []byte("roaming-key")
	n := newSiteNet(t, clk, secret, "198.18.0.0/16")
	rloc := netip.MustParseAddr("192.0.2.12")
	ours := []mapping.Locator{{Addr: rloc, Priority: 1, Weight: 100}}
	s := n.add(rloc, Options{ETR: true, Now: clk.Now, XTRID: [16]byte{1},
		MapServers: []MapServerPeer{{Addr: n.msAddr, KeyID: 1, Alg: wire.AuthHMACSHA256, Secret: secret, WantMapNotify: true}}})
	s.Tick() // the periodic registration is done: what follows is a retransmission
	n.deliver()
	a, b := mapping.HostEID(0, netip.MustParseAddr("198.18.7.1")), mapping.HostEID(0, netip.MustParseAddr("198.18.7.2"))
	n.drop = func(*wire.MapRegister) bool { return true }
	s.HostBatch(func() { s.AddHost(a, ours); s.AddHost(b, ours) })
	n.deliver()
	s.RemoveHost(a, false) // moved away
	n.drop = nil
	clk.Advance(1100 * time.Millisecond)
	s.Tick()
	regs, _ := n.deliver()
	if len(regs) != 1 || len(regs[0].Records) != 1 || regs[0].Records[0].PrefixString() != "198.18.7.2/32" {
		t.Fatalf("retransmission: %d Map-Registers %v, want one of the host still here", len(regs), regs)
	}
}
