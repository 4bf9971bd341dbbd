// Package nat runs xTRs behind the lab's NAT nodes (nftables masquerade)
// with real lispd processes and checks NAT traversal as a network engineer
// would (draft-ietf-lisp-nat-traversal). It needs root and nft; without
// them every test skips with a message.
package nat

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
	"github.com/vishvananda/netlink"
)

// lispdBin is the lispd binary built once for all tests.
var lispdBin string

func TestMain(m *testing.M) { os.Exit(lab.MainWithLispd(m, os.Geteuid() == 0, &lispdBin)) }

const (
	msAddr        = "192.0.2.1"
	natOutside    = "192.0.2.254"
	xtrPrivate    = "198.18.1.2"
	rtrOffered    = "192.0.2.50"
	natRenumbered = "192.0.2.253"
	natInterval   = 2 * time.Second // the xTR's info-interval: how soon it notices a NAT reboot
)

// natTopology: an xTR on a private link behind a NAT node whose outside
// link reaches the Map-Server.
func natTopology(symmetric bool) *lab.Topology {
	b := lab.NewBuilder("natd")
	b.Node("xtr", "xtr", false, lab.Via("0.0.0.0/0", "198.18.1.1"))
	b.Node("nat", "nat", true)
	b.Node("ms", "ms", false)
	b.Link("xtr", "", "nat", "", xtrPrivate+"/24", "198.18.1.1/24")
	b.Link("nat", "", "ms", "", natOutside+"/24", msAddr+"/24")
	b.T.Nodes[1].NAT = &lab.NAT{Outside: "eth1", Symmetric: symmetric, UDPTimeout: 30}
	return b.T
}

func startLispd(t *testing.T, l *lab.Lab, node, cfg string) *lab.LispdProc {
	t.Helper()
	path, err := l.WriteLispdConfig(t.TempDir(), node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.StartLispd(node, path, lab.LispdOptions{Binary: lispdBin})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// natView asks the xTR for its NAT discovery.
func natView(p *lab.LispdProc) []adminapi.NATDiscovery {
	v, _ := adminapi.Query(context.Background(), p.Socket, time.Second, (*adminapi.Client).NAT)
	return v
}

// TestDiscoveryThroughNAT: an xTR behind an endpoint-independent and
// behind a symmetric NAT learns from its Map-Server that it is translated,
// to which address and port, and the RTR offered; it registers through
// the NAT; after the NAT reboots (mappings flushed) the discovery works
// again within one info-interval and reports the new translation; after
// the NAT's public address changes the new one is discovered within one
// info-interval and the site registers from it.
func TestDiscoveryThroughNAT(t *testing.T) {
	lab.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	for _, symmetric := range []bool{false, true} {
		name := map[bool]string{false: "endpoint-independent", true: "symmetric"}[symmetric]
		t.Run(name, func(t *testing.T) {
			l := lab.NewTest(t, natTopology(symmetric))
			msProc := startLispd(t, l, "ms", fmt.Sprintf(`control: {addresses: [%s], port: 4342}
map-server:
  rtrs: [%s]
  sites:
    - name: branch
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: branchkey}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
`, msAddr, rtrOffered))
			x := startLispd(t, l, "xtr", fmt.Sprintf(`control: {addresses: [%[1]s], port: 4342}
xtr:
  etr: true
  data-plane: none
  register-interval: 1s
  nat-traversal: {enabled: true, info-interval: %[3]s}
  map-servers: [{address: %[2]s, key-id: 1, algorithm: hmac-sha-256-128, secret: branchkey}]
  database: [{eid-prefix: 198.51.100.0/24, locators: [{address: %[1]s}]}]
`, xtrPrivate, msAddr, natInterval))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := x.WaitRegistered(ctx); err != nil {
				t.Fatalf("no registration through the NAT: %v", err)
			}
			var v []adminapi.NATDiscovery
			if err := poll.Until(ctx, 10*time.Second, 50*time.Millisecond, func() bool {
				v = natView(x)
				return len(v) == 1 && v[0].Translated != nil
			}); err != nil {
				t.Fatalf("no Info-Reply through the NAT: %+v\n%s", v, x.LogTail(20))
			}
			d := v[0]
			if d.State != "behind-nat" || d.Translated.Addr() != netip.MustParseAddr(natOutside) ||
				len(d.RTRs) != 1 || d.RTRs[0] != netip.MustParseAddr(rtrOffered) {
				t.Errorf("discovery %+v: want behind-nat, translated to %s, RTR %s", d, natOutside, rtrOffered)
			}
			if !symmetric && d.Translated.Port() != 4342 {
				t.Errorf("endpoint-independent NAT: port %d, want 4342 kept", d.Translated.Port())
			}
			t.Logf("%s NAT: %s seen as %s", name, xtrPrivate, d.Translated)

			// The NAT reboots: its mappings are gone. The next Info-Request
			// makes a new one; the discovery answers again within one
			// info-interval (plus the retry when a request was lost).
			replies := d.Replies
			if err := l.FlushNAT("nat"); err != nil {
				t.Fatal(err)
			}
			flushed := time.Now()
			if err := poll.Until(ctx, 3*natInterval+time.Second, 20*time.Millisecond, func() bool {
				v = natView(x)
				return len(v) == 1 && v[0].Replies > replies && v[0].LastReply != nil && v[0].LastReply.After(flushed)
			}); err != nil {
				t.Fatalf("no Info-Reply after the NAT reboot: %+v", v)
			}
			recovery := time.Since(flushed)
			t.Logf("%s NAT reboot: discovery answered again after %v (info-interval %v), translated %s",
				name, recovery.Round(10*time.Millisecond), natInterval, v[0].Translated)
			if recovery > natInterval+time.Second { // one interval, a 250 ms tick, the round trip
				t.Errorf("recovery took %v, more than one info-interval (%v)", recovery, natInterval)
			}
			if v[0].State != "behind-nat" {
				t.Errorf("after the reboot: %+v", v[0])
			}

			// The NAT's public address changes (a new DHCP lease): the next
			// discovery reports the new one, and the site registers from it.
			renumbered := time.Now()
			if err := renumber(l, "nat", "eth1", natOutside+"/24", natRenumbered+"/24"); err != nil {
				t.Fatal(err)
			}
			if err := poll.Until(ctx, 3*natInterval+time.Second, 20*time.Millisecond, func() bool {
				v = natView(x)
				return len(v) == 1 && v[0].Translated != nil && v[0].Translated.Addr() == netip.MustParseAddr(natRenumbered)
			}); err != nil {
				t.Fatalf("the new public address was not discovered: %+v", v)
			}
			t.Logf("%s NAT renumbered to %s: discovered after %v", name, natRenumbered, time.Since(renumbered).Round(10*time.Millisecond))
			if err := poll.Until(ctx, 5*time.Second, 50*time.Millisecond, func() bool {
				return registeredFrom(msProc, natRenumbered)
			}); err != nil {
				t.Errorf("the Map-Server never saw a Map-Register from %s", natRenumbered)
			}
		})
	}
}

// renumber replaces address from with to on a node's interface.
func renumber(l *lab.Lab, node, ifname, from, to string) error {
	return l.Do(node, func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		add, _ := netlink.ParseAddr(to)
		del, _ := netlink.ParseAddr(from)
		// The old one first: deleting a primary address takes its
		// subnet's secondaries with it.
		if err := netlink.AddrDel(link, del); err != nil {
			return err
		}
		return netlink.AddrAdd(link, add)
	})
}

// registeredFrom tells whether the Map-Server's last Map-Register for the
// branch site came from addr.
func registeredFrom(ms *lab.LispdProc, addr string) bool {
	sites, err := adminapi.Query(context.Background(), ms.Socket, time.Second, func(c *adminapi.Client, ctx context.Context) ([]adminapi.Site, error) {
		return c.Sites(ctx, "")
	})
	if err != nil {
		return false
	}
	for _, st := range sites {
		for _, r := range st.Registrations {
			for _, by := range r.RegisteredBy {
				if by.Source.Addr() == netip.MustParseAddr(addr) {
					return true
				}
			}
		}
	}
	return false
}
