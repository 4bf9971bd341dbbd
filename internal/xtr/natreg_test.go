package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// sentData is a control message sent from the data port.
type sentData struct {
	b   []byte
	src netip.Addr
	dst netip.AddrPort
}

// TestRegisterThroughRTR: once discovery finds the NAT and an RTR, the ETR
// registers only through the RTR (an ECM with R from the data port, the
// Map-Register with P and M naming the RTR as locator); the Map-Server's
// Map-Notify, back as a Data-Map-Notify, is accepted and makes the RTR the
// locator of 0/0 and ::/0; a Data-Map-Notify for another xTR-ID is
// dropped and counted; without a NAT the ETR registers directly.
func TestRegisterThroughRTR(t *testing.T) {
	c, clk, reg := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0)), stats.NewRegistry()
	var data []sentData
	d := &dp{set: map[mapping.EID]CacheEntry{}}
	xtrID := [16]byte{1, 2, 3}
	s := New(Options{ETR: true, ITR: true, NATTraversal: true, InfoInterval: time.Minute, LocalRLOCs: []netip.Addr{natLocal},
		Now: clk.Now, Sender: c, Stats: reg, DataPlane: d, XTRID: xtrID, RegisterInterval: 3 * time.Second,
		SendData: func(b []byte, src netip.Addr, dst netip.AddrPort) error {
			data = append(data, sentData{append([]byte(nil), b...), src, dst})
			return nil
		},
		MapServers: []MapServerPeer{{Addr: natMS, KeyID: 3, Alg: wire.AuthHMACSHA256, Secret: natKeyB, WantMapNotify: true}},
		Database: []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")),
			Locators: []mapping.Locator{{Addr: natLocal, Priority: 1, Weight: 100}}}}})
	s.Tick()
	// Before any Info-Reply: directly, as without NAT traversal.
	var info lisptest.Sent
	direct := 0
	for _, m := range c.Take() {
		switch wire.MessageType(m.B[0] >> 4) {
		case wire.TypeInfo:
			info = m
		case wire.TypeMapRegister:
			direct++
		}
	}
	if direct != 1 || len(data) != 0 {
		t.Fatalf("before discovery: %d direct Map-Registers, %d through an RTR; want 1 and 0", direct, len(data))
	}
	deliver(t, s, answer(t, info, natGlobal, natKeyB), natMS)
	s.Tick() // the route changed: register now
	if n := len(c.Take()); n != 0 {
		t.Errorf("%d messages sent directly once behind the NAT", n)
	}
	if len(data) != 1 {
		t.Fatalf("%d messages through the RTR, want 1", len(data))
	}
	sd := data[0]
	if sd.src != natLocal || sd.dst != netip.AddrPortFrom(natRTR, wire.ControlPort) {
		t.Errorf("sent from %s to %s, want from %s to %s:4342", sd.src, sd.dst, natLocal, natRTR)
	}
	m, err := wire.Decode(sd.b)
	if err != nil {
		t.Fatal(err)
	}
	ecm, ok := m.(*wire.ECM)
	if !ok || !ecm.ForETR || ecm.ForMS || ecm.IP.Src != natLocal || ecm.IP.Dst != natMS || ecm.DstPort != wire.ControlPort {
		t.Fatalf("not an ECM with R from %s to the Map-Server: %v", natLocal, m)
	}
	// §4.3: from the data port outside (SendData), a port picked at
	// random inside, the same at every refresh.
	if ecm.SrcPort < 49152 || ecm.SrcPort != s.natPort {
		t.Errorf("inner source port %d, want the random dynamic port %d", ecm.SrcPort, s.natPort)
	}
	mr, ok := ecm.Message.(*wire.MapRegister)
	if !ok || !mr.ProxyReply || !mr.WantMapNotify || mr.XTRID != xtrID || len(mr.Records) != 1 {
		t.Fatalf("inner %v: want a Map-Register with P, M, our xTR-ID", ecm.Message)
	}
	if ls := mr.Records[0].Locators; len(ls) != 1 || ls[0].Address.IP != natRTR || !ls[0].Reachable() {
		t.Errorf("locators %+v, want the RTR only", ls)
	}
	if err := wire.Verify(sd.b[len(sd.b)-mr.Len():], natKeyB, wire.AuthOptions{}); err != nil {
		t.Errorf("the relayed Map-Register does not verify: %v", err)
	}

	// The Map-Notify, as the RTR passes it on: inner IP and UDP from the
	// Map-Server, the Map-Notify signed with the site key.
	dataNotify := func(id [16]byte) []byte {
		n := &wire.MapNotify{AuthBody: mr.AuthBody}
		n.XTRID, n.AuthData = id, nil
		return dataMapNotify(t, n, natKeyB)
	}
	s.HandleDataMapNotify(dataNotify([16]byte{9}), netip.AddrPortFrom(natRTR, 4342))
	if got := lisptest.Counter(t, reg, "etr.data_map_notifies_dropped{reason=other-xtr-id}"); got != 1 {
		t.Errorf("Data-Map-Notify for another xTR-ID: dropped %d, want 1", got)
	}
	if len(d.set) != 0 {
		t.Errorf("map-cache programmed before a Data-Map-Notify: %v", d.set)
	}
	s.HandleDataMapNotify(dataNotify(xtrID), netip.AddrPortFrom(natRTR, 4342))
	for _, p := range []string{"0.0.0.0/0", "::/0"} {
		e, ok := d.set[mapping.NewEID(0, netip.MustParsePrefix(p))]
		if !ok || len(e.Locators) != 1 || e.Locators[0].Addr != natRTR {
			t.Errorf("%s: %+v, want the RTR as its locator", p, e)
		}
	}
	if db := s.DatabaseView(); len(db.MapServers) != 1 || db.MapServers[0].Notifies != 1 {
		t.Errorf("Map-Server state after the Data-Map-Notify: %+v", db.MapServers)
	}
}

// TestRegisterMultihomedNAT (§5.4): an ETR with one RLOC behind a NAT and
// one public registers through the RTR with the union of the locators —
// the RTR for the NATed RLOC, the public RLOC as it is. The data plane
// encapsulates from the first RLOC of a family: when that is the NATed
// one, the Data-Map-Notify makes the RTR the locator of 0/0 and ::/0;
// when it is the public one, there is no such default and the ITR
// resolves from the public RLOC, its Map-Requests naming no NATed RLOC,
// and probes remote RLOCs from it.
func TestRegisterMultihomedNAT(t *testing.T) {
	public := netip.MustParseAddr("192.0.2.77")
	mr := netip.MustParseAddr("192.0.2.88")
	for _, publicFirst := range []bool{false, true} {
		rlocs := []netip.Addr{natLocal, public}
		if publicFirst {
			rlocs = []netip.Addr{public, natLocal}
		}
		c, clk := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0))
		var data [][]byte
		d := &dp{set: map[mapping.EID]CacheEntry{}}
		s := New(Options{ETR: true, ITR: true, NATTraversal: true, InfoInterval: time.Minute, LocalRLOCs: rlocs,
			Now: clk.Now, Sender: c, DataPlane: d, XTRID: [16]byte{4}, MapResolvers: []netip.Addr{mr}, ProbeInterval: 10 * time.Second,
			SendData: func(b []byte, _ netip.Addr, _ netip.AddrPort) error {
				data = append(data, append([]byte(nil), b...))
				return nil
			},
			MapServers: []MapServerPeer{{Addr: natMS, KeyID: 3, Alg: wire.AuthHMACSHA256, Secret: natKeyB, WantMapNotify: true}},
			Database: []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")),
				Locators: []mapping.Locator{{Addr: natLocal, Priority: 1, Weight: 50}, {Addr: public, Priority: 1, Weight: 50}}}}})
		s.Tick()
		for _, m := range c.Take() {
			if wire.MessageType(m.B[0]>>4) != wire.TypeInfo {
				continue
			}
			global := natGlobal
			if m.Src == public {
				global = netip.AddrPortFrom(public, wire.ControlPort) // seen as it is: no NAT there
			}
			deliver(t, s, answer(t, m, global, natKeyB), natMS)
		}
		clk.Advance(time.Second)
		s.Tick()
		if len(data) == 0 {
			t.Fatal("no Map-Register through the RTR")
		}
		m, err := wire.Decode(data[len(data)-1])
		if err != nil {
			t.Fatal(err)
		}
		reg := m.(*wire.ECM).Message.(*wire.MapRegister)
		var got []netip.Addr
		for _, l := range reg.Records[0].Locators {
			got = append(got, l.Address.IP)
		}
		if len(got) != 2 || got[0] != public || got[1] != natRTR {
			t.Errorf("public first %v: locators %v, want the public RLOC %s and the RTR %s", publicFirst, got, public, natRTR)
		}
		// The Map-Server's Map-Notify, as the RTR passes it on.
		n := &wire.MapNotify{AuthBody: reg.AuthBody}
		n.AuthData = nil
		s.HandleDataMapNotify(dataMapNotify(t, n, natKeyB), netip.AddrPortFrom(natRTR, 4342))
		c.Take() // the Map-Notify's consequences, if any
		if !publicFirst {
			if e, ok := d.set[mapping.NewEID(0, netip.MustParsePrefix("0.0.0.0/0"))]; !ok || len(e.Locators) != 1 || e.Locators[0].Addr != natRTR {
				t.Errorf("data from the NATed %s: 0/0 %+v, want the RTR", natLocal, e)
			}
			continue
		}
		if len(d.set) != 0 {
			t.Fatalf("0/0 toward the RTR while the data plane sends from the public %s: %v", public, d.set)
		}
		// A miss: the Map-Request leaves from the public RLOC and names
		// only it.
		s.Miss(0, netip.MustParseAddr("203.0.113.5"))
		var req *wire.MapRequest
		for _, m := range c.Take() {
			if m.To.Addr() != mr {
				continue
			}
			if m.Src != public {
				t.Errorf("Map-Request sent from %s, want the public %s", m.Src, public)
			}
			dm, err := wire.Decode(m.B)
			if err != nil {
				t.Fatal(err)
			}
			req, _ = dm.(*wire.ECM).Message.(*wire.MapRequest)
		}
		if req == nil {
			t.Fatal("no Map-Request for the miss")
		}
		if len(req.ITRRLOCs) != 1 || req.ITRRLOCs[0].IP != public {
			t.Errorf("ITR-RLOCs %v, want only the public %s", req.ITRRLOCs, public)
		}
		// Remote RLOCs are probed from the public RLOC.
		remote := netip.MustParseAddr("198.51.100.200")
		s.mu.Lock()
		s.installLocked(mapping.Mapping{EID: mapping.NewEID(0, netip.MustParsePrefix("203.0.113.0/24")), TTL: 60,
			Locators: []mapping.Locator{{Addr: remote, Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}, clk.Now(), "map-reply", false)
		s.mu.Unlock()
		clk.Advance(20 * time.Second)
		s.Tick()
		probed := false
		for _, m := range c.Take() {
			if m.To.Addr() == remote {
				probed = true
				if m.Src != public {
					t.Errorf("probe of %s sent from %s, want the public %s", remote, m.Src, public)
				}
			}
		}
		if !probed {
			t.Error("the remote RLOC was not probed")
		}
	}
}

// dataMapNotify is the inner packet of a Data-Map-Notify as the RTR
// passes it on: IP and UDP from the Map-Server to natLocal, then n signed
// with key.
func dataMapNotify(t *testing.T, n *wire.MapNotify, key []byte) []byte {
	t.Helper()
	nb, err := wire.EncodeSigned(n, key, wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := wire.Decode(nb)
	e := &wire.ECM{IP: wire.InnerIP{Src: natMS, Dst: natLocal, TTL: 64}, SrcPort: 4342, DstPort: 50000, Message: signed}
	eb, err := e.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return eb[4:]
}

// TestMovedThroughRTR: behind a NAT the Map-Server's unsolicited
// Map-Notifies come as Data-Map-Notifies. One saying a dynamic-EID host
// of ours registered elsewhere reports the move (as a direct one does);
// a merged set naming the RTR we register in place of our RLOC is ours,
// no move; each is acknowledged to the Map-Server.
func TestMovedThroughRTR(t *testing.T) {
	c, clk := &lisptest.Sender{}, lisptest.NewClock(time.Unix(1e9, 0))
	xtrID := [16]byte{1, 2, 3}
	var moved []mapping.Mapping
	s := New(Options{ETR: true, ITR: true, NATTraversal: true, InfoInterval: time.Minute, LocalRLOCs: []netip.Addr{natLocal},
		Now: clk.Now, Sender: c, DataPlane: &dp{set: map[mapping.EID]CacheEntry{}}, XTRID: xtrID,
		SendData:   func([]byte, netip.Addr, netip.AddrPort) error { return nil },
		MapServers: []MapServerPeer{{Addr: natMS, KeyID: 3, Alg: wire.AuthHMACSHA256, Secret: natKeyB, WantMapNotify: true}},
		Database: []DatabaseEntry{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24")),
			Locators: []mapping.Locator{{Addr: natLocal, Priority: 1, Weight: 100}}}},
		OnMovedAway: func(to []mapping.Mapping) { moved = append(moved, to...) }})
	s.Tick()
	for _, m := range c.Take() {
		if wire.MessageType(m.B[0]>>4) == wire.TypeInfo {
			deliver(t, s, answer(t, m, natGlobal, natKeyB), natMS)
		}
	}
	s.Tick()
	host := mapping.HostEID(0, netip.MustParseAddr("198.51.100.10"))
	s.AddHost(host, []mapping.Locator{{Addr: natLocal, Priority: 1, Weight: 100}})
	c.Take()
	notify := func(nonce uint64, rlocs ...netip.Addr) {
		t.Helper()
		m := mapping.Mapping{EID: host, TTL: 10}
		for _, a := range rlocs {
			m.Locators = append(m.Locators, mapping.Locator{Addr: a, Priority: 1, Weight: 50, Flags: wire.LocatorReachable})
		}
		n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, KeyID: 3, Algorithm: wire.AuthHMACSHA256,
			HasXTRID: true, XTRID: xtrID, Records: []wire.EIDRecord{m.Record()}}}
		s.HandleDataMapNotify(dataMapNotify(t, n, natKeyB), netip.AddrPortFrom(natRTR, 4342))
		acks := 0
		for _, m := range c.Take() {
			if wire.MessageType(m.B[0]>>4) == wire.TypeMapNotifyAck && m.To == netip.AddrPortFrom(natMS, 4342) {
				acks++
			}
		}
		if acks != 1 {
			t.Errorf("nonce %d: %d Map-Notify-Acks to the Map-Server, want 1", nonce, acks)
		}
	}
	notify(1<<40, natRTR, netip.MustParseAddr("192.0.2.13"))
	if len(moved) != 0 {
		t.Fatalf("a merged set naming our RTR taken for a move: %v", moved)
	}
	elsewhere := netip.MustParseAddr("198.18.6.2")
	notify(1<<40+1, elsewhere)
	if len(moved) != 1 || moved[0].Locators[0].Addr != elsewhere {
		t.Fatalf("the move through the RTR was not reported: %v", moved)
	}
}
