package lab

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// MAC returns the hardware address of node's interface ifname: the VM's
// MAC a hypervisor announces after a migration.
func (l *Lab) MAC(node, ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := l.Do(node, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("%s %s: %w", node, ifname, err)
		}
		mac = ifi.HardwareAddr
		return nil
	})
	return mac, err
}

// AnnounceRARP makes node act as a hypervisor that just took a VM in by
// live migration: it sends on ifname the frame QEMU/KVM sends for the VM
// (qemu_announce_self), a broadcast RARP request (RFC 903, EtherType
// 0x8035) from the VM's MAC asking for the VM's MAC, addresses zero,
// padded to Ethernet's 60-byte minimum. The frame is written whole on a
// raw packet socket, so its source is the VM's MAC, not the interface's.
func (l *Lab) AnnounceRARP(node, ifname string, vm net.HardwareAddr) error {
	if len(vm) != 6 {
		return fmt.Errorf("announce %s: not an Ethernet address", vm)
	}
	return l.Do(node, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("announce on %s: %w", ifname, err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("announce on %s: %w", ifname, err)
		}
		defer unix.Close(fd)
		f := make([]byte, 60)
		copy(f[0:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		copy(f[6:], vm)
		binary.BigEndian.PutUint16(f[12:], 0x8035)
		p := f[14:]
		binary.BigEndian.PutUint16(p[0:], 1)      // Ethernet
		binary.BigEndian.PutUint16(p[2:], 0x0800) // IPv4
		p[4], p[5] = 6, 4
		binary.BigEndian.PutUint16(p[6:], 3) // reverse request
		copy(p[8:], vm)                      // sender hardware address; sender IP 0
		copy(p[18:], vm)                     // target hardware address; target IP 0
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], f[0:6])
		if err := unix.Sendto(fd, f, 0, to); err != nil {
			return fmt.Errorf("announce on %s: %w", ifname, err)
		}
		return nil
	})
}
