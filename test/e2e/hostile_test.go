package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/dataplane/dptest"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/tshark"
	"github.com/lispd/lispd/wire"
)

// The hostile tenant: a site registered with the Map-Server like any
// other (2001:db8:e::/64, RLOC 198.18.7.2), whose "ETR" is this test.
const (
	evilRLOC = "198.18.7.2"
	evilKey  = "evil-key"
)

var (
	msAddr  = netip.MustParseAddrPort("198.18.1.2:4342")
	evilEID = netip.MustParsePrefix("2001:db8:e::/64")
	// proxyEID is registered with proxy-reply: the Map-Server answers for it.
	proxyEID = netip.MustParsePrefix("2001:db8:e:1::/64")
)

// hostileSites is twoSites with the hostile tenant beside core.
func hostileSites() *lab.Topology {
	t := twoSites()
	t.Nodes = append(t.Nodes, lab.Node{Name: "evil", Role: "tenant", Routes: []lab.Route{lab.Via("0.0.0.0/0", "198.18.7.1")}})
	t.Links = append(t.Links, lab.Link{A: "core", AName: "to-evil", B: "evil", BName: "eth0",
		AAddrs: []netip.Prefix{netip.MustParsePrefix("198.18.7.1/24")}, BAddrs: []netip.Prefix{netip.MustParsePrefix(evilRLOC + "/24")}})
	return t
}

// hostileMS is the Map-Server of twoSites with the tenant's site.
var hostileMS = strings.Replace(msConfig, "map-resolver: {}", `    - name: evil
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: `+evilKey+`}]
      eid-prefixes: [{prefix: "2001:db8:e::/64"}, {prefix: "2001:db8:e:1::/64"}]
map-resolver: {}`, 1)

// TestHostileTenant: a registered tenant tries what a review found it could
// do — overclaim in its Map-Replies, replay a captured Map-Register of
// another site and a captured publication, subscribe with another xTR's
// identity, reflect Map-Replies onto a victim, and inject packets into
// another instance ID — and every attempt fails while the other sites keep
// registering and talking to each other.
func TestHostileTenant(t *testing.T) {
	// xb takes instance 1000 only from site A's RLOC network; xa
	// subscribes to what it resolves.
	n := startNetworkOn(t, hostileSites(), hostileMS, func(node, cfg string) string {
		switch node {
		case "xb":
			return xbChecked(cfg)
		case "xa":
			return strings.Replace(cfg, "xtr:", "xtr:\n  subscribe: true", 1)
		}
		return cfg
	})
	stopCapture := n.capture()
	evil := n.evilSocket()
	var asked atomic.Int64
	go evilETR(evil, &asked)
	n.evilRegister(evil, evilEID, false)
	n.evilRegister(evil, proxyEID, true)
	n.waitPrefixes("ms", 8)

	t.Run("overclaiming", func(t *testing.T) {
		// ha asks for the tenant's EID: the Map-Server forwards the
		// request to the tenant, who answers with 0.0.0.0/0 and site B's
		// prefix besides its own.
		_ = n.lab.Exec("ha", "ping", "-n", "-c", "1", "-W", "1", "2001:db8:e::1").Run()
		lisptest.Eventually(t, 5*time.Second, func() bool { return asked.Load() > 0 }, "the tenant was asked")
		lisptest.Eventually(t, 5*time.Second, func() bool {
			return n.counter("xa", "itr", "map_reply_records_dropped") >= 2
		}, "xa dropped the overclaimed records")
		mc, err := query(n, "xa", func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
			return c.MapCache(ctx, adminapi.MapCacheQuery{})
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range mc {
			for _, l := range e.Locators {
				if l.Address.String() == evilRLOC && e.EIDPrefix.String() != evilEID.String() {
					t.Errorf("xa installed %s with the tenant's RLOC", e.EIDPrefix)
				}
			}
		}
		if err := n.ping("ha", "203.0.113.10"); err != nil {
			t.Error("site B after the overclaim:", err)
		}
	})

	t.Run("Map-Register replay", func(t *testing.T) {
		// An on-path observer's copy of site B's Map-Register, sent again
		// from the tenant's address.
		captured := n.captureMapRegister("198.18.3.2")
		before := n.counter("ms", "map_server", "registers_rejected")
		if _, err := evil.WriteToUDPAddrPort(captured, msAddr); err != nil {
			t.Fatal(err)
		}
		lisptest.Eventually(t, 5*time.Second, func() bool {
			return n.counter("ms", "map_server", "registers_rejected") > before
		}, "the Map-Server refused the replayed Map-Register")
		sites, err := query(n, "ms", func(c *adminapi.Client, ctx context.Context) ([]adminapi.Site, error) {
			return c.Sites(ctx, "site-b")
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sites {
			for _, r := range s.Registrations {
				for _, by := range r.RegisteredBy {
					if by.Source.Addr().String() == evilRLOC {
						t.Errorf("site %s: %v registered by the tenant", s.Name, r.EIDPrefix)
					}
				}
			}
		}
	})

	t.Run("subscription hijack", func(t *testing.T) {
		// The tenant subscribes to site B's prefix with xa's xTR-ID,
		// naming itself as the ITR.
		id := n.xtrID("xa")
		req := &wire.MapRequest{Nonce: 1 << 62, ITRRLOCs: []wire.Address{wire.AddrFromIP(netip.MustParseAddr(evilRLOC))},
			HasXTRID: true, XTRID: id,
			Records: []wire.RequestRecord{{Notify: true, MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("203.0.113.0"))}}}
		ecm := wire.EncapsulateMapRequest(req, netip.MustParseAddr("203.0.113.1"), wire.ControlPort, netip.MustParseAddr(evilRLOC))
		b, err := wire.Encode(ecm)
		if err != nil {
			t.Fatal(err)
		}
		before := n.counter("ms", "map_server", "subscriptions_rejected")
		if _, err := evil.WriteToUDPAddrPort(b, msAddr); err != nil {
			t.Fatal(err)
		}
		lisptest.Eventually(t, 5*time.Second, func() bool {
			return n.counter("ms", "map_server", "subscriptions_rejected") > before
		}, "the Map-Server refused the hijacking subscription")
		subs, err := query(n, "ms", (*adminapi.Client).Subscriptions)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			if slices.Contains(s.ITRRLOCs, netip.MustParseAddr(evilRLOC)) {
				t.Errorf("the tenant holds a subscription: %+v", s)
			}
		}
	})

	t.Run("reflection", func(t *testing.T) {
		// 3,000 Map-Requests for the tenant's proxy-replied prefix, sent
		// from 20 addresses (each within its per-source budget) and
		// naming the non-LISP host as the ITR; and some naming the
		// broadcast address.
		victim := n.listen("nl", "192.0.2.10:4342")
		got := lab.CountDatagrams(victim)
		var senders []*net.UDPConn
		for i := range 20 {
			a := netip.AddrFrom4([4]byte{198, 18, 7, byte(10 + i)})
			n.addAddr("evil", "eth0", a.String()+"/32")
			senders = append(senders, n.listen("evil", a.String()+":4342"))
		}
		send := func(itr string, count int) {
			dst := proxyEID.Addr().Next()
			for i := range count {
				req := &wire.MapRequest{Nonce: uint64(i + 1), ITRRLOCs: []wire.Address{wire.AddrFromIP(netip.MustParseAddr(itr))},
					Records: []wire.RequestRecord{{MaskLen: 128, EID: wire.AddrFromIP(dst)}}}
				from := senders[i%len(senders)]
				src := from.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
				b, _ := wire.Encode(wire.EncapsulateMapRequest(req, dst, wire.ControlPort, src))
				_, _ = from.WriteToUDPAddrPort(b, msAddr)
			}
		}
		dropped := n.counter("ms", "control", "packets_dropped")
		send("255.255.255.255", 10)
		start := time.Now()
		send("192.0.2.10", 3000)
		time.Sleep(time.Second)
		victim.Close()
		limit := int64(1000 + 100*time.Since(start).Seconds() + 100)
		if g := got.Load(); g > limit {
			t.Errorf("the victim received %d Map-Replies for 3000 requests naming it, want at most %d", g, limit)
		} else {
			t.Logf("the victim received %d Map-Replies for 3000 requests naming it (limit %d)", g, limit)
		}
		if int64(n.counter("ms", "control", "packets_dropped")-dropped) < 3010-limit {
			t.Error("the Map-Server did not count the replies it refused")
		}
	})

	t.Run("publication replay", func(t *testing.T) {
		// Site B's weights change twice; the Map-Server publishes each
		// change to xa, subscribed since it resolved site B. An on-path
		// copy of the first publication, replayed, must not bring the
		// old weights back.
		if err := n.ping("ha", "203.0.113.10"); err != nil {
			t.Fatal(err)
		}
		weight := func() uint8 {
			mc, err := query(n, "xa", func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
				return c.MapCache(ctx, adminapi.MapCacheQuery{})
			})
			if err != nil {
				return 0
			}
			for _, e := range mc {
				if e.InstanceID == 0 && e.EIDPrefix.Addr().Is4() && e.EIDPrefix.Contains(netip.MustParseAddr("203.0.113.10")) {
					for _, l := range e.Locators {
						if l.Address.String() == "198.18.3.2" {
							return l.Weight
						}
					}
				}
			}
			return 0
		}
		path := filepath.Join(n.dir, "publications.pcap")
		c, err := tshark.Start(n.lab, "core", "tshark-pub", path, "udp and (src host 198.18.1.2 or src host 2001:db8:ff:1::2)")
		if err != nil {
			t.Skip("no capture: ", err)
		}
		setWeights := func(w1, w2 int) {
			published := n.counter("ms", "map_server", "publications")
			n.reloadLispd("xb", xbChecked(strings.Replace(xbConfig, "{address: 198.18.3.2, weight: 50}, {address: 198.18.4.2, weight: 50}",
				fmt.Sprintf("{address: 198.18.3.2, weight: %d}, {address: 198.18.4.2, weight: %d}", w1, w2), 1)))
			lisptest.Eventually(t, 15*time.Second, func() bool {
				return n.counter("ms", "map_server", "publications") > published && weight() == uint8(w1)
			}, fmt.Sprintf("weight %d published to xa", w1))
		}
		setWeights(30, 70)
		setWeights(50, 50)
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		old := n.notifyFrom(path, func(m *wire.MapNotify) bool {
			for _, r := range m.Records {
				for _, l := range r.Locators {
					if ip, _ := l.Address.Addr(); ip.String() == "198.18.3.2" && l.Weight == 30 {
						return true
					}
				}
			}
			return false
		})
		replayer := n.listen("evil", evilRLOC+":4343")
		before := n.counter("xa", "etr", "map_notifies_dropped")
		if _, err := replayer.WriteToUDPAddrPort(old, netip.MustParseAddrPort("198.18.2.2:4342")); err != nil {
			t.Fatal(err)
		}
		lisptest.Eventually(t, 5*time.Second, func() bool { return n.counter("xa", "etr", "map_notifies_dropped") > before },
			"xa dropped the replayed publication")
		if w := weight(); w != 50 {
			t.Errorf("xa holds weight %d after the replay, want 50", w)
		}
	})

	t.Run("spoofed decapsulation into another instance", func(t *testing.T) {
		// The tenant encapsulates packets into instance 1000 towards
		// site B's host there, as if from site A's host.
		target := n.listen("hb2", "203.0.113.10:47020")
		got := lab.CountDatagrams(target)
		data := n.listen("evil", evilRLOC+":4341")
		inner := dptest.UDPv4(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.10"), 40000, 47020, []byte("injected"))
		hdr := wire.DataHeader(make([]byte, 8))
		hdr.SetFlags(wire.DataI)
		hdr.SetInstanceID(1000)
		pkt := append(append([]byte(nil), hdr...), inner...)
		before := n.counter("xb", "dataplane", "packets_dropped")
		for range 20 {
			if _, err := data.WriteToUDPAddrPort(pkt, netip.MustParseAddrPort("198.18.3.2:4341")); err != nil {
				t.Fatal(err)
			}
		}
		lisptest.Eventually(t, 5*time.Second, func() bool {
			return n.counter("xb", "dataplane", "packets_dropped")-before >= 20
		}, "xb dropped the spoofed packets")
		time.Sleep(200 * time.Millisecond)
		target.Close()
		if g := got.Load(); g != 0 {
			t.Errorf("%d spoofed packets reached the host of instance 1000", g)
		}
		// Site A's own instance-1000 traffic still arrives.
		if err := n.ping("ha2", "203.0.113.10"); err != nil {
			t.Error("instance 1000 from site A:", err)
		}
	})

	// The other sites never noticed.
	for _, c := range []struct{ from, to string }{{"ha", "203.0.113.10"}, {"hb", "198.51.100.10"}, {"ha", "2001:db8:b::10"}} {
		if err := n.ping(c.from, c.to); err != nil {
			t.Error("after the attacks:", err)
		}
	}
	n.waitPrefixes("ms", 8)
	if path := stopCapture(); path != "" {
		wiresharkClean(t, path)
	}
}

// evilSocket is the tenant's control socket, bound in its namespace.
func (n *network) evilSocket() *net.UDPConn {
	return n.listen("evil", evilRLOC+":4342")
}

// listen binds a UDP socket in a node; it is closed with the test.
func (n *network) listen(node, addr string) *net.UDPConn {
	var c *net.UDPConn
	err := n.lab.Do(node, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		return err
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// evilRegister registers one of the tenant's prefixes with its own key.
func (n *network) evilRegister(c *net.UDPConn, p netip.Prefix, proxyReply bool) {
	rec := (&mapping.Mapping{EID: mapping.NewEID(0, p), TTL: 10, Locators: []mapping.Locator{
		{Addr: netip.MustParseAddr(evilRLOC), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}}).Record()
	m := &wire.MapRegister{ProxyReply: proxyReply, WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: uint64(time.Now().UnixNano()), KeyID: 1,
		Algorithm: wire.AuthHMACSHA256, Records: []wire.EIDRecord{rec}}}
	b, err := wire.EncodeSigned(m, []byte(evilKey), wire.AuthOptions{})
	if err != nil {
		n.t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(b, msAddr); err != nil {
		n.t.Fatal(err)
	}
}

// evilETR answers every Map-Request the Map-Server forwards to the tenant
// with records it has no right to: everything, and site B.
func evilETR(c *net.UDPConn, asked *atomic.Int64) {
	buf := make([]byte, 2048)
	for {
		k, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		m, err := wire.Decode(buf[:k])
		if err != nil {
			continue
		}
		ecm, ok := m.(*wire.ECM)
		if !ok {
			continue
		}
		req, ok := ecm.Message.(*wire.MapRequest)
		if !ok || len(req.ITRRLOCs) == 0 {
			continue
		}
		asked.Add(1)
		evil := []mapping.Locator{{Addr: netip.MustParseAddr(evilRLOC), Priority: 1, Weight: 100, Flags: wire.LocatorReachable}}
		var recs []wire.EIDRecord
		for _, p := range []string{"0.0.0.0/0", "203.0.113.0/24", evilEID.String()} {
			recs = append(recs, (&mapping.Mapping{EID: mapping.NewEID(0, netip.MustParsePrefix(p)), TTL: 1440,
				Authoritative: true, Locators: evil}).Record())
		}
		b, err := wire.Encode(&wire.MapReply{Nonce: req.Nonce, Records: recs})
		if err != nil {
			continue
		}
		for _, a := range req.ITRRLOCs {
			if ip, ok := a.Addr(); ok && ip.Is4() {
				_, _ = c.WriteToUDPAddrPort(b, netip.AddrPortFrom(ip, ecm.SrcPort))
				break
			}
		}
	}
}

// captureMapRegister records the control traffic of core until the xTR at
// from has sent a Map-Register, and returns that message's bytes.
func (n *network) captureMapRegister(from string) []byte {
	n.t.Helper()
	path := filepath.Join(n.dir, "register.pcap")
	c, err := tshark.Start(n.lab, "core", "tshark-register", path, "udp dst port 4342 and src host "+from)
	if err != nil {
		n.t.Skip("no capture: ", err)
	}
	time.Sleep(6 * time.Second) // one register interval (5 s) and a bit
	if err := c.Stop(); err != nil {
		n.t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		n.t.Fatal(err)
	}
	for {
		p, err := r.Next()
		if err != nil {
			n.t.Fatalf("no Map-Register from %s captured: %v", from, err)
		}
		d, err := pcap.DecodeUDP(r.LinkType(), p.Data)
		if err == nil && len(d.Payload) > 0 && wire.MessageType(d.Payload[0]>>4) == wire.TypeMapRegister {
			return append([]byte(nil), d.Payload...)
		}
	}
}

// xtrID is a lispd xTR's xTR-ID, as its Map-Server shows it.
func (n *network) xtrID(node string) [16]byte {
	n.t.Helper()
	st, err := query(n, node, (*adminapi.Client).Database)
	if err != nil {
		n.t.Fatal(err)
	}
	var id [16]byte
	if b, err := hex.DecodeString(st.XTRID); err != nil || copy(id[:], b) != 16 {
		n.t.Fatalf("xTR-ID %q of %s: %v", st.XTRID, node, err)
	}
	return id
}

// xbChecked is an xb configuration that takes instance 1000 only from site
// A's RLOC network.
func xbChecked(cfg string) string {
	return strings.Replace(cfg, "xtr:", "xtr:\n  source-rloc-check: [{instance-id: 1000, map-cache: false, rloc-prefixes: [198.18.2.0/24]}]", 1)
}

// notifyFrom returns the first Map-Notify of a capture that match accepts.
func (n *network) notifyFrom(path string, match func(*wire.MapNotify) bool) []byte {
	n.t.Helper()
	f, err := os.Open(path)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		n.t.Fatal(err)
	}
	var seen []string
	for {
		p, err := r.Next()
		if err != nil {
			n.t.Fatalf("no such Map-Notify captured (%v) among: %s", err, strings.Join(seen, "; "))
		}
		d, err := pcap.DecodeUDP(r.LinkType(), p.Data)
		if err != nil {
			continue
		}
		if m, err := wire.Decode(d.Payload); err == nil {
			seen = append(seen, fmt.Sprintf("to %s: %v", d.Dst, m))
			if mn, ok := m.(*wire.MapNotify); ok && match(mn) {
				return append([]byte(nil), d.Payload...)
			}
		}
	}
}

// reloadLispd gives a node's lispd a new configuration and reloads it.
func (n *network) reloadLispd(node, cfg string) {
	n.t.Helper()
	if _, err := n.lab.WriteLispdConfig(n.dir, node, cfg); err != nil {
		n.t.Fatal(err)
	}
	if _, err := query(n, node, (*adminapi.Client).Reload); err != nil {
		n.t.Fatalf("reload %s: %v", node, err)
	}
}
