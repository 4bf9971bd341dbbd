//go:build linux

package dataplane

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// loopbackNS makes a namespace of its own (named after the test's pid and
// suffix) with its loopback up.
func loopbackNS(t *testing.T, suffix string) netns.NsHandle {
	t.Helper()
	ns := newNamedNS(t, fmt.Sprintf("lispdp-%d-%s", os.Getpid(), suffix))
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return ns
}

// openUnderlayIn opens an underlay in ns, closed when the test ends.
func openUnderlayIn(t *testing.T, ns netns.NsHandle, cfg UnderlayConfig) *LinuxUnderlay {
	t.Helper()
	var u *LinuxUnderlay
	if err := inNS(ns, func() (err error) {
		u, err = OpenUnderlay(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u
}

// The Linux underlay on the loopback of a private namespace: the outer
// source, destination, UDP source port, TTL and TOS set on send are what
// the receiver reports, for both families, with and without GRO.
func TestLinuxUnderlayLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and raw sockets; run as root to include it")
	}
	ns := loopbackNS(t, "lo")
	for _, noGRO := range []bool{false, true} {
		for _, csum := range []bool{false, true} {
			t.Run(fmt.Sprintf("nogro=%v-csum=%v", noGRO, csum), func(t *testing.T) {
				u := openUnderlayIn(t, ns, UnderlayConfig{NoGRO: noGRO, UDPChecksum: csum, BatchSize: 8})
				recvs := u.Receivers()
				if len(recvs) != 2 {
					t.Fatalf("%d receivers, want 2", len(recvs))
				}
				for i, addr := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")} {
					bufs := make([][]byte, 3)
					outs := make([]Outer, 3)
					for j := range bufs {
						bufs[j] = make([]byte, PayloadOffset+100+j)
						for k := PayloadOffset; k < len(bufs[j]); k++ {
							bufs[j][k] = byte(k + j)
						}
						outs[j] = Outer{Src: addr, Dst: addr, SrcPort: 50000 + uint16(j), TTL: 33 + uint8(j), TOS: 0xb8 | uint8(j)}
					}
					want := make([][]byte, 3)
					for j := range bufs {
						want[j] = append([]byte(nil), bufs[j][PayloadOffset:]...)
					}
					if n, err := u.Send(bufs, outs, PayloadOffset); n != 3 || err != nil {
						t.Fatalf("send: %d, %v", n, err)
					}
					rb := make([][]byte, 8)
					for j := range rb {
						rb[j] = make([]byte, 2048)
					}
					sizes, got := make([]int, 8), make([]Outer, 8)
					total := 0
					deadline := time.Now().Add(5 * time.Second)
					for total < 3 && time.Now().Before(deadline) {
						n, err := recvs[i](rb[total:], sizes[total:], got[total:], PayloadOffset)
						if err != nil {
							t.Fatal(err)
						}
						total += n
					}
					for j := range 3 {
						if !bytes.Equal(rb[j][PayloadOffset:PayloadOffset+sizes[j]], want[j]) {
							t.Errorf("%s datagram %d: payload differs", addr, j)
						}
						w := outs[j]
						w.HasTOS = true
						if got[j] != w {
							t.Errorf("%s datagram %d: outer %+v, want %+v", addr, j, got[j], w)
						}
					}
				}
			})
		}
	}
}

// ethtoolSet sets an ethtool flag (legacy ETHTOOL_S* command) of a device
// in the calling thread's namespace.
func ethtoolSet(name string, cmd, value uint32) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	v := struct{ cmd, data uint32 }{cmd, value}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&v)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}

// vethGRO makes a veth deliver through NAPI with GRO, so that UDP GRO
// reaches the receive sockets: GRO on, and TSO off (a veth with TSO only
// passes UDP to GRO when forwarding offloads are on, see
// veth_skb_is_eligible_for_gro).
func vethGRO(name string) error {
	return errors.Join(ethtoolSet(name, unix.ETHTOOL_STSO, 0), ethtoolSet(name, unix.ETHTOOL_SGRO, 1))
}

// With GSO, a run of one flow's equal segments leaves as one super-packet
// from the flow's socket (its port), with the TTL and TOS asked for, is
// received as the segments sent, and the send allocates nothing.
func TestLinuxUnderlayGSO(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and raw sockets; run as root to include it")
	}
	ns := loopbackNS(t, "gso")
	u := openUnderlayIn(t, ns, UnderlayConfig{GSO: true, UDPChecksum: true, BatchSize: 8})
	for i, addr := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")} {
		const segs = 4
		bufs, outs := make([][]byte, segs), make([]Outer, segs)
		for j := range bufs {
			bufs[j] = make([]byte, PayloadOffset+200)
			for k := PayloadOffset; k < len(bufs[j]); k++ {
				bufs[j][k] = byte(k * (j + 1))
			}
			outs[j] = Outer{Src: addr, Dst: addr, SrcPort: 50000, TTL: 40, TOS: 0x20}
		}
		if n, err := u.Send(bufs, outs, PayloadOffset); n != segs || err != nil {
			t.Fatalf("%s: send: %d, %v", addr, n, err)
		}
		rb := make([][]byte, 8)
		for j := range rb {
			rb[j] = make([]byte, 2048)
		}
		sizes, got := make([]int, 8), make([]Outer, 8)
		total := 0
		for deadline := time.Now().Add(5 * time.Second); total < segs && time.Now().Before(deadline); {
			n, err := u.Receivers()[i](rb[total:], sizes[total:], got[total:], PayloadOffset)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if total != segs {
			t.Fatalf("%s: received %d of %d segments", addr, total, segs)
		}
		for j := range segs {
			if !bytes.Equal(rb[j][PayloadOffset:PayloadOffset+sizes[j]], bufs[j][PayloadOffset:]) {
				t.Errorf("%s segment %d: payload differs", addr, j)
			}
			want := Outer{Src: addr, Dst: addr, SrcPort: gsoBasePort + 50000%gsoPorts, TTL: 40, TOS: 0x20, HasTOS: true}
			if got[j] != want {
				t.Errorf("%s segment %d: outer %+v, want %+v", addr, j, got[j], want)
			}
		}
		if n := testing.AllocsPerRun(20, func() { _, _ = u.Send(bufs, outs, PayloadOffset) }); n != 0 {
			t.Errorf("%s: a GSO send allocates %v times", addr, n)
		}
	}
}
