package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/tshark"
)

// The kernel path encapsulates a small IPv4 packet whose sender left no
// room in front of it by moving it 36 bytes within its buffer. A pending
// checksum (CHECKSUM_PARTIAL) names its field by offsets from the
// buffer's head, which the move leaves where they were: safe only for the
// one layout where they then name the outer UDP checksum. A host may make
// the offsets up: an AF_PACKET socket with a virtio-net header, which any
// container with CAP_NET_RAW has, sends a frame whose pending checksum no
// stack wrote. This test sends frames whose offsets, moved, would aim the
// checksum at the LISP header's instance ID (a host injecting its packets
// into another instance), through an xTR whose uplink computes pending
// checksums in software, as a NIC without the offload or the kernel's
// fallback does: they must arrive in their own instance (the program
// leaves them to bpf_skb_adjust_room, whose offsets follow the data). A
// frame with the standard layout must be encapsulated in place, its
// inner checksum finished by the program and its outer one by the
// uplink, both right.
func TestKernelPathInPlaceChecksumOffsets(t *testing.T) {
	n := startNetworkWith(t, kernelEverywhere)
	if err := n.lab.Do("xa", func() error { return setTxChecksum("up0", false) }); err != nil {
		t.Fatalf("turning xa's up0 checksum offload off: %v", err)
	}
	capPath := filepath.Join(n.dir, "inplace.pcap")
	var capture *tshark.Capture
	if _, err := tshark.Find(); err == nil {
		if capture, err = tshark.Start(n.lab, "core", "tshark-inplace", capPath, "udp dst port 4341"); err != nil {
			t.Fatal(err)
		}
	}

	dst := netip.MustParseAddrPort("203.0.113.10:40400")
	crafted := netip.MustParseAddrPort("198.51.100.10:40300")
	standard := netip.MustParseAddrPort("198.51.100.10:40301")
	_, got := resolvedUDP(t, n, dst)

	gw, self := macOf(t, n.lab, "xa", "eid0"), macOf(t, n.lab, "ha", "eth0")
	payload := bytes.Repeat([]byte("in place "), 4)

	// Made-up offsets: the checksum of everything from the UDP payload
	// on, written 4 bytes into it. Left where they are they touch only
	// the payload (the datagram has no UDP checksum, so it still
	// arrives); moved with the packet they would write over the instance
	// ID of the LISP header.
	const count = 20
	before := n.dataPlane("xa")
	frame := udpFrame(gw, self, crafted, dst, payload, false)
	for range count {
		if err := n.lab.Do("ha", func() error {
			return sendWithVnetHdr("eth0", vnetHdr{flags: 1, csumStart: 14 + 20 + 8, csumOffset: 4}, frame)
		}); err != nil {
			t.Fatal(err)
		}
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return got.Load() == 1+count },
		fmt.Sprintf("%d datagrams with made-up checksum offsets delivered in their instance", count))
	mid := n.dataPlane("xa")
	if d := mid.Kernel.EncapsulatedPackets - before.Kernel.EncapsulatedPackets; d != count {
		t.Errorf("the kernel path encapsulated %d of the %d, want all", d, count)
	}
	if d := mid.Kernel.EncapsulatedInPlace - before.Kernel.EncapsulatedInPlace; d != 0 {
		t.Errorf("%d with made-up checksum offsets were encapsulated in place, want none", d)
	}

	// The standard layout, as a UDP socket leaves it: the field holds
	// the pseudo-header sum and the offsets name it.
	frame = udpFrame(gw, self, standard, dst, payload, true)
	if err := n.lab.Do("ha", func() error {
		return sendWithVnetHdr("eth0", vnetHdr{flags: 1, csumStart: 14 + 20, csumOffset: 6}, frame)
	}); err != nil {
		t.Fatal(err)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return got.Load() == 2+count },
		"the datagram with a standard pending checksum delivered (its inner checksum verified by hb's socket)")
	after := n.dataPlane("xa")
	if d := after.Kernel.EncapsulatedInPlace - mid.Kernel.EncapsulatedInPlace; d != 1 {
		t.Errorf("%d datagrams with a standard pending checksum encapsulated in place, want 1", d)
	}
	if capture == nil {
		t.Log("tshark not installed: the outer UDP checksum written by the uplink is not checked")
		return
	}
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	frames, err := lispFrames(capPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range frames {
		if f.inner != [2]netip.AddrPort{standard, dst} {
			continue
		}
		seen++
		o := f.outer // IPv4: xb's locators of priority 1 are
		ou := bytes.Clone(o[20:])
		field := binary.BigEndian.Uint16(ou[6:])
		ou[6], ou[7] = 0, 0
		if want := udpChecksum(o[12:16], o[16:20], ou); field != want {
			t.Errorf("outer UDP checksum of the datagram encapsulated in place %#04x, want %#04x", field, want)
		}
	}
	if seen != 1 {
		t.Errorf("%d LISP packets of the standard datagram captured entering core, want 1", seen)
	}
}

// resolvedUDP opens a UDP socket on dst in hb counting what it receives,
// and one in ha connected to it whose first datagram resolved hb's
// prefix (delivered: the count is 1). Both close when the test ends.
func resolvedUDP(t *testing.T, n *network, dst netip.AddrPort) (*net.UDPConn, *atomic.Int64) {
	t.Helper()
	var rx, tx *net.UDPConn
	if err := n.lab.Do("hb", func() (err error) {
		rx, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	got := lab.CountDatagrams(rx)
	if err := n.lab.Do("ha", func() (err error) {
		tx, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	if _, err := tx.Write([]byte("resolve")); err != nil {
		t.Fatal(err)
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return got.Load() == 1 }, "the first datagram delivered")
	return tx, got
}

// macOf is the hardware address of ifname in node.
func macOf(t *testing.T, l *lab.Lab, node, ifname string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	if err := l.Do(node, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}

// udpFrame is an Ethernet frame from src to dst holding an IPv4 UDP
// datagram: with its UDP checksum field holding the pseudo-header sum (a
// pending checksum, as a UDP socket leaves it), or zero (no checksum).
func udpFrame(to, from net.HardwareAddr, src, dst netip.AddrPort, payload []byte, pending bool) []byte {
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:6], to)
	copy(f[6:12], from)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IP)
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum(0, ip)))
	u := f[34:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	if pending {
		binary.BigEndian.PutUint16(u[6:], uint16(sum(sum(17+uint32(len(u)), s4[:]), d4[:])))
	}
	return f
}

// vnetHdr is struct virtio_net_hdr, as a packet socket with
// PACKET_VNET_HDR takes it in front of a frame (little-endian here).
type vnetHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

// sendWithVnetHdr sends frame out of ifname through an AF_PACKET socket
// with a virtio-net header: the kernel builds the packet's checksum
// state from h, as it does for a VM's.
func sendWithVnetHdr(ifname string, h vnetHdr, frame []byte) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return err
	}
	b := make([]byte, 10, 10+len(frame))
	b[0], b[1] = h.flags, h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
	b = append(b, frame...)
	return unix.Sendto(fd, b, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_IP)})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// setTxChecksum turns a device's transmit checksum offload on or off
// (ETHTOOL_STXCSUM): off, the kernel computes pending checksums in
// software where the packet leaves, at the offsets the packet carries.
func setTxChecksum(ifname string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	const ethtoolSTXCSUM = 0x17
	v := &struct{ cmd, data uint32 }{cmd: ethtoolSTXCSUM}
	if on {
		v.data = 1
	}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return errno
	}
	return nil
}

// A packet encapsulated in place whose outer UDP checksum is still
// pending when it reaches the ETR (virtual links: no device computed it
// on the way) must not carry that pending checksum inward: after
// decapsulation its offsets name bytes in front of the inner packet,
// and a device computing it in software (here xb's EID interface, its
// offload off) would write into the Ethernet header. The kernel drops
// the pending state when bpf_skb_adjust_room pulls past its start
// (skb_postpull_rcsum after the pull, Linux 6.0); hb's socket then
// verifies the inner UDP checksum the ITR's program finished.
func TestKernelPathInPlacePendingAtETR(t *testing.T) {
	n := startNetworkWith(t, kernelEverywhere)
	if err := n.lab.Do("xb", func() error { return setTxChecksum("eid0", false) }); err != nil {
		t.Fatalf("turning xb's eid0 checksum offload off: %v", err)
	}
	dst := netip.MustParseAddrPort("203.0.113.10:40410")
	tx, got := resolvedUDP(t, n, dst)
	const count = 20
	before := n.dataPlane("xa")
	for range count {
		if _, err := tx.Write([]byte("pending at the ETR")); err != nil {
			t.Fatal(err)
		}
	}
	lisptest.Eventually(t, 5*time.Second, func() bool { return got.Load() == 1+count },
		fmt.Sprintf("%d datagrams encapsulated in place delivered through an EID interface without checksum offload", count))
	if d := n.dataPlane("xa").Kernel.EncapsulatedInPlace - before.Kernel.EncapsulatedInPlace; d != count {
		t.Errorf("%d of the %d datagrams encapsulated in place, want all", d, count)
	}
}
