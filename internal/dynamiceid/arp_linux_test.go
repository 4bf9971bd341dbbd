package dynamiceid

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lab"
)

func TestListenARPNoInterface(t *testing.T) {
	c, err := ListenARP("nosuchif0")
	if err == nil {
		c.Close()
		t.Fatal("ListenARP on a missing interface succeeded")
	}
}

// The lab's IPv6 addresses, for ND.
var xtr6, vm6 = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")

// arpLab is two nodes on one veth pair: "xtr" (198.51.100.1), where the
// ARP socket listens, and "vm" (198.51.100.2), a host whose kernel sends
// and answers ARP.
type arpLab struct {
	lab       *lab.Lab
	conn      *ARPConn // on xtr's lan0
	xtrMAC    MAC
	vmMAC     MAC
	xtrIP     netip.Addr
	vmIP      netip.Addr
	deadlines time.Duration
}

func newARPLab(t *testing.T) *arpLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dynamic EID: the ARP socket test needs root (network namespaces, AF_PACKET); run the tests as root to include it")
	}
	a := &arpLab{xtrIP: ipA, vmIP: ipB, deadlines: 5 * time.Second}
	topo := &lab.Topology{
		Name:  "arp",
		Nodes: []lab.Node{{Name: "xtr"}, {Name: "vm"}},
		Links: []lab.Link{{
			A: "xtr", B: "vm", AName: "lan0", BName: "lan0",
			AAddrs: []netip.Prefix{netip.PrefixFrom(a.xtrIP, 24), netip.PrefixFrom(xtr6, 64)},
			BAddrs: []netip.Prefix{netip.PrefixFrom(a.vmIP, 24), netip.PrefixFrom(vm6, 64)},
		}},
	}
	a.lab = lab.NewTest(t, topo) // skips unless namespaces can be made; Down on cleanup
	// A node answers a Neighbor Solicitation for its address only once it
	// has joined the address's solicited-node group, which the kernel
	// does after the link has come up, from a work queue: on a loaded
	// machine the VM's first NS and our solicitation went unanswered that
	// way (TestNDConn timed out waiting for the answer).
	waitSolicitedNode(t, a.lab, "xtr", xtr6)
	waitSolicitedNode(t, a.lab, "vm", vm6)
	err := a.lab.Do("xtr", func() (err error) {
		a.conn, err = ListenARP("lan0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Registered after NewTest's cleanup, so it runs first: the socket is
	// closed before the namespace goes.
	t.Cleanup(func() { a.conn.Close() })
	a.xtrMAC = ifaceMAC(t, a.lab, "xtr")
	a.vmMAC = ifaceMAC(t, a.lab, "vm")
	if a.conn.MAC() != a.xtrMAC {
		t.Fatalf("conn.MAC() = %s, lan0 has %s", a.conn.MAC(), a.xtrMAC)
	}
	return a
}

// waitSolicitedNode waits until node's lan0 has joined the solicited-node
// group of addr.
func waitSolicitedNode(t *testing.T, l *lab.Lab, node string, addr netip.Addr) {
	t.Helper()
	group := "inet6 " + SolicitedNode(addr).String() + "\n"
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := l.Exec(node, "ip", "-6", "maddr", "show", "dev", "lan0").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: ip maddr: %v\n%s", node, err, out)
		}
		if strings.Contains(string(out), group) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: lan0 has not joined %s after 10 s:\n%s", node, SolicitedNode(addr), out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ifaceMAC(t *testing.T, l *lab.Lab, node string) MAC {
	t.Helper()
	var m MAC
	err := l.Do(node, func() error {
		ifi, err := net.InterfaceByName("lan0")
		if err != nil {
			return err
		}
		var ok bool
		if m, ok = MACFrom(ifi.HardwareAddr); !ok {
			return errors.New("lan0 has no Ethernet address")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	return m
}

// await reads frames until one matches, failing the test at the deadline.
// Every frame read is checked not to be one the xTR sent itself: those are
// PACKET_OUTGOING and Read must skip them.
func (a *arpLab) await(t *testing.T, what string, match func(Frame) bool) Frame {
	t.Helper()
	if err := a.conn.SetReadDeadline(time.Now().Add(a.deadlines)); err != nil {
		t.Fatal(err)
	}
	defer a.conn.SetReadDeadline(time.Time{})
	for {
		fr, err := a.conn.Read()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		t.Logf("read %v (src %s, to us %v)", fr.ARP, fr.Src, fr.ToUs)
		if fr.ARP.SenderMAC == a.xtrMAC || fr.Src == a.xtrMAC {
			t.Fatalf("Read returned a frame the xTR sent itself: %v", fr.ARP)
		}
		if match(fr) {
			return fr
		}
	}
}

func (a *arpLab) exec(t *testing.T, node string, argv ...string) {
	t.Helper()
	if out, err := a.lab.Exec(node, argv...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %v\n%s", node, argv, err, out)
	}
}

// TestARPConn runs against real kernels: the VM's kernel resolving the
// xTR, the VM's kernel answering the xTR's requests, and Close.
func TestARPConn(t *testing.T) {
	a := newARPLab(t)

	t.Run("KernelRequestSeen", func(t *testing.T) {
		// A VM that arrives and talks resolves its gateway first: the
		// broadcast request is what the xTR detects it by.
		if err := a.lab.FlushNeighbors("vm", "lan0"); err != nil {
			t.Fatal(err)
		}
		a.exec(t, "vm", "ping", "-c", "1", "-W", "2", a.xtrIP.String())
		fr := a.await(t, "the VM's request for the xTR", func(fr Frame) bool {
			return fr.ARP.Op == OpRequest && fr.ARP.SenderIP == a.vmIP && fr.ARP.TargetIP == a.xtrIP
		})
		if fr.ARP.SenderMAC != a.vmMAC || fr.Src != a.vmMAC {
			t.Errorf("sender MAC %s, Ethernet source %s; want the VM's %s", fr.ARP.SenderMAC, fr.Src, a.vmMAC)
		}
		if fr.ToUs {
			t.Errorf("broadcast request reported as unicast to us")
		}
	})

	t.Run("RequestAnsweredToUs", func(t *testing.T) {
		if err := a.conn.Request(a.vmIP, a.xtrIP); err != nil {
			t.Fatal(err)
		}
		fr := a.await(t, "the VM's reply", func(fr Frame) bool {
			return fr.ARP.Op == OpReply && fr.ARP.SenderIP == a.vmIP && fr.ARP.TargetIP == a.xtrIP
		})
		if !fr.ToUs {
			t.Errorf("reply to our request not reported as addressed to us")
		}
		if fr.ARP.SenderMAC != a.vmMAC || fr.ARP.TargetMAC != a.xtrMAC {
			t.Errorf("reply %v: want %s is-at %s to %s", fr.ARP, a.vmIP, a.vmMAC, a.xtrMAC)
		}
	})

	// A probe (sender 0.0.0.0) checks that a host is alive without the
	// xTR claiming an address on the VM's subnet.
	t.Run("ProbeAnswered", func(t *testing.T) {
		if err := a.conn.Request(a.vmIP, netip.IPv4Unspecified()); err != nil {
			t.Fatal(err)
		}
		fr := a.await(t, "the VM's reply to a probe", func(fr Frame) bool {
			return fr.ARP.Op == OpReply && fr.ARP.SenderIP == a.vmIP && fr.ARP.TargetIP == netip.IPv4Unspecified()
		})
		if !fr.ToUs || fr.ARP.SenderMAC != a.vmMAC {
			t.Errorf("probe reply %v (to us %v), want from %s unicast to us", fr.ARP, fr.ToUs, a.vmMAC)
		}
	})

	t.Run("RequestRejectsIPv6", func(t *testing.T) {
		if err := a.conn.Request(netip.MustParseAddr("2001:db8::1"), a.xtrIP); err == nil {
			t.Fatal("Request with an IPv6 target succeeded")
		}
	})

	t.Run("ReadDeadline", func(t *testing.T) {
		if err := a.conn.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		defer a.conn.SetReadDeadline(time.Time{})
		if _, err := a.conn.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
		}
	})

	t.Run("CloseUnblocksRead", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			for {
				// Frames may still arrive (neighbour probes); only the
				// error matters.
				if _, err := a.conn.Read(); err != nil {
					done <- err
					return
				}
			}
		}()
		time.Sleep(100 * time.Millisecond) // let Read park in the poller
		if err := a.conn.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Read")
		}
		if err := a.conn.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close: %v, want net.ErrClosed", err)
		}
		if err := a.conn.Request(a.vmIP, a.xtrIP); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Request after Close: %v, want net.ErrClosed", err)
		}
	})
}

// TestRARPConn: the frame a hypervisor sends after live migration (the
// lab's, byte for byte QEMU's) is read by a RARP socket as an
// announcement of the VM's MAC; the ARP socket does not see it.
func TestRARPConn(t *testing.T) {
	a := newARPLab(t)
	var rc *ARPConn
	if err := a.lab.Do("xtr", func() (err error) {
		rc, err = ListenRARP("lan0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	vm := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	if err := a.lab.AnnounceRARP("vm", "lan0", vm); err != nil {
		t.Fatal(err)
	}
	if err := rc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	f, err := rc.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := MAC(vm)
	if !f.RARP || !f.ARP.IsAnnouncement() || f.ARP.SenderMAC != want || f.Src != want || f.ToUs {
		t.Errorf("read %+v, want the announcement of %s (broadcast)", f, vm)
	}
	// The ARP socket saw no frame of the VM's MAC.
	if err := a.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	for {
		fr, err := a.conn.Read()
		if err != nil {
			break
		}
		if fr.ARP.SenderMAC == want {
			t.Errorf("the ARP socket read the RARP frame: %+v", fr)
		}
	}
}

// TestNDConn: an IPv6 host's Neighbor Solicitation is read with its
// address and MAC; our solicitation is answered with a solicited NA to us.
func TestNDConn(t *testing.T) {
	a := newARPLab(t)
	var nc *NDConn
	if err := a.lab.Do("xtr", func() (err error) {
		nc, err = ListenND("lan0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	await := func(what string, match func(NDFrame) bool) NDFrame {
		t.Helper()
		if err := nc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := nc.Read()
			if err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			t.Logf("read %v (src %s, to us %v)", f.ND, f.Src, f.ToUs)
			if match(f) {
				return f
			}
		}
	}
	// The ping outlives the reads on a loaded machine: the test waits for
	// it (a Logf after the test has ended panics).
	pinged := make(chan struct{})
	t.Cleanup(func() { <-pinged })
	go func() {
		defer close(pinged)
		out, err := a.lab.Exec("vm", "ping", "-6", "-c", "1", "-W", "2", xtr6.String()).CombinedOutput()
		t.Logf("ping: %v %s", err, out)
	}()
	f := await("the VM's solicitation", func(f NDFrame) bool {
		return f.ND.Type == ICMPv6NeighborSolicitation && f.ND.LinkAddr == a.vmMAC
	})
	if h, ok := f.ND.Host(); !ok || h != vm6 || f.ND.Target != xtr6 {
		t.Errorf("NS %v: host %s %v", f.ND, h, ok)
	}
	if err := a.lab.Do("xtr", func() error { return nc.Solicit(vm6) }); err != nil {
		t.Fatal(err)
	}
	f = await("the answer to our solicitation", func(f NDFrame) bool {
		return f.ND.Type == ICMPv6NeighborAdvertisement && f.ND.Target == vm6
	})
	if !f.ToUs || !f.ND.Solicited || f.ND.LinkAddr != a.vmMAC {
		t.Errorf("NA %+v", f)
	}
	// The kernel filter kept the LAN's other IPv6 (MLD reports, router
	// solicitations: there are some on a fresh link) from the socket.
	if d := nc.Dropped(); d != 0 {
		t.Errorf("%d packets that are not ND reached the socket", d)
	}
}
