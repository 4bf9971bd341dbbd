package lab

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Ping runs ping in node until one try of three gets answers (extra are
// more ping arguments).
func (l *Lab) Ping(node, dst string, extra ...string) error {
	var out []byte
	var err error
	for range 3 {
		args := append([]string{"ping", "-n", "-c", "3", "-i", "0.2", "-W", "1"}, extra...)
		out, err = l.Exec(node, append(args, dst)...).CombinedOutput()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("ping %s from %s: %v\n%s", dst, node, err, out)
}

// TCPEcho opens a TCP listener at addr in node srv, connects from node cli
// and checks that 180 kB sent come back intact.
func (l *Lab) TCPEcho(srv, cli string, addr netip.AddrPort) error {
	var ln net.Listener
	if err := l.Do(srv, func() (err error) {
		ln, err = net.Listen("tcp", addr.String())
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			c.Write(buf[:k])
		}
	}()
	var conn net.Conn
	if err := l.Do(cli, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr.String(), 5*time.Second)
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	msg := strings.Repeat("lisp-e2e-", 20000)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	go conn.Write([]byte(msg))
	got := make([]byte, 0, len(msg))
	buf := make([]byte, 64<<10)
	for len(got) < len(msg) {
		k, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("tcp %s -> %s: read after %d bytes: %v", cli, addr, len(got), err)
		}
		got = append(got, buf[:k]...)
	}
	if string(got) != msg {
		return fmt.Errorf("tcp %s -> %s: data differs", cli, addr)
	}
	return nil
}

// AddAddr puts an address (a prefix such as "198.51.100.1/24") on an
// interface of a node, without the prefix route.
func (l *Lab) AddAddr(node, iface, prefix string) error {
	return l.changeAddr(node, iface, prefix, netlink.AddrAdd)
}

// DelAddr removes an address from an interface of a node.
func (l *Lab) DelAddr(node, iface, prefix string) error {
	return l.changeAddr(node, iface, prefix, netlink.AddrDel)
}

func (l *Lab) changeAddr(node, iface, prefix string, change func(netlink.Link, *netlink.Addr) error) error {
	return l.Do(node, func() error {
		link, err := netlink.LinkByName(iface)
		if err != nil {
			return err
		}
		a, err := netlink.ParseAddr(prefix)
		if err != nil {
			return err
		}
		a.Flags |= unix.IFA_F_NOPREFIXROUTE
		return change(link, a)
	})
}

// SetIface sets one interface of a node up or down (one end of a link:
// the other end keeps its carrier, as with a cut behind a switch).
func (l *Lab) SetIface(node, iface string, up bool) error {
	return l.Do(node, func() error {
		link, err := netlink.LinkByName(iface)
		if err != nil {
			return err
		}
		if up {
			return netlink.LinkSetUp(link)
		}
		return netlink.LinkSetDown(link)
	})
}

// Renumber replaces an address of a node's interface by another of the
// same subnet, as an operator would: the old one goes, the new one comes
// with its prefix route, and the node's routes through that subnet, which
// the kernel dropped with the old address, are put back.
func (l *Lab) Renumber(node, iface, old, new string) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	if err := l.DelAddr(node, iface, old); err != nil {
		return err
	}
	err = l.Do(node, func() error {
		link, err := netlink.LinkByName(iface)
		if err != nil {
			return err
		}
		a, err := netlink.ParseAddr(new)
		if err != nil {
			return err
		}
		return netlink.AddrAdd(link, a)
	})
	if err != nil {
		return err
	}
	return l.installRoutes(n)
}

// CountDatagrams counts, until c is closed, the datagrams c receives.
func CountDatagrams(c *net.UDPConn) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return &n
}
