package dynamiceid

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Group is the notify group of a dynamic-EID range: the xTRs on the LAN tell
// each other with a Map-Notify to a multicast group which hosts they just
// detected, so that another xTR of the same site registers the host too
// and one of another site (on a stretched subnet) knows the host left.
//
// Any host of the LAN can send to the group, so a claim is taken only when
// it is signed with the range's group key (which every xTR of the LAN,
// of either site, holds), fresh and not seen before, sent by an on-link
// peer with IP TTL 255 (a router on the way would have decremented it:
// RFC 5082's trick). Where a host went is still learnt only from the
// Map-Server's authenticated Map-Notify (see Manager.Claimed).
type Group struct {
	group netip.Addr
	conn  *net.UDPConn
	// read returns a datagram with its source and the IP TTL (IPv6: hop
	// limit) it arrived with, -1 when unknown.
	read func(b []byte) (n int, from netip.Addr, ttl int, err error)
	zone string // the interface, for a link-scope IPv6 group
	opts GroupOptions
	wg   sync.WaitGroup

	sendMu   sync.Mutex
	signer   *wire.Authenticator
	lastSent uint64

	// Read by Serve's goroutine alone.
	verifier *wire.Authenticator
	seen     map[uint64]struct{} // nonces accepted within freshness
}

// GroupKey signs and verifies a group's Map-Notifies.
type GroupKey struct {
	ID        uint8
	Algorithm wire.AuthAlg
	Secret    []byte
}

// GroupOptions secure a notify group.
type GroupOptions struct {
	Key GroupKey
	// Peers are the prefixes a claim may come from: the configured peers
	// as /32s, or the subnets of the interface (JoinGroup fills those in
	// when empty).
	Peers []netip.Prefix
	Now   func() time.Time
}

// Reasons a group datagram is dropped: labels of
// lisp_mobility_notify_group_dropped_total (malformed ones have their own
// counter, lisp_mobility_notify_group_malformed_total).
const (
	DropTTL          = "ttl"           // IP TTL below 255: not sent on this link
	DropNotAPeer     = "not-a-peer"    // source is not a configured peer, or off-link
	DropUnsigned     = "unsigned"      // Algorithm ID 0
	DropWrongKey     = "wrong-key"     // key ID or algorithm not the group key's
	DropBadSignature = "bad-signature" // the HMAC does not verify
	DropStale        = "stale"         // nonce time outside the freshness window
	DropReplay       = "replay"        // nonce accepted before
	DropFlood        = "flood"         // more signed claims within the window than are remembered
	DropMalformed    = "malformed"
)

// GroupDrops are the drop reasons counted in notify_group_dropped.
var GroupDrops = []string{DropTTL, DropNotAPeer, DropUnsigned, DropWrongKey, DropBadSignature, DropStale,
	DropReplay, DropFlood}

const (
	// groupTTL is sent and required: only a sender on the link can make
	// a datagram arrive with it.
	groupTTL = 255
	// groupFreshness is how far a claim's time (its nonce) may be from
	// ours: it bounds how long a captured claim could be replayed to an
	// xTR that restarted, and asks the xTRs' clocks to agree that well.
	groupFreshness = time.Minute
	// groupSeenMax bounds the nonces remembered within the window: signed
	// claims come at a few a second, from key holders only.
	groupSeenMax = 4096
	// nonceTimeShift: a nonce is the send time in nanoseconds with its low
	// 16 bits random, so two xTRs sending at once do not collide.
	nonceTimeShift = 16
)

// JoinGroup opens the notify group on the interface: bound to the group
// address and the control port (SO_REUSEADDR: the control plane's
// wildcard socket has the port too), loopback off, TTL 255 sent and the
// received TTL read (IP_RECVTTL).
func JoinGroup(group netip.Addr, ifname string, o GroupOptions) (*Group, error) {
	if o.Key.Algorithm.DigestLen() == 0 || len(o.Key.Secret) == 0 {
		return nil, fmt.Errorf("notify group %s: a group key is required", group)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("notify group %s: %w", group, err)
	}
	if len(o.Peers) == 0 {
		o.Peers, err = onLink(ifi, group.Is6())
		if err != nil {
			return nil, fmt.Errorf("notify group %s on %s: %w", group, ifname, err)
		}
	}
	// Bound to the group address itself, not the wildcard (as Go's own
	// multicast listener does): a wildcard socket on the control port
	// would take unicast control traffic from the control plane.
	family := unix.AF_INET
	if group.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("notify group %s: %w", group, err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil {
		if group.Is6() {
			err = unix.Bind(fd, &unix.SockaddrInet6{Port: wire.ControlPort, Addr: group.As16(), ZoneId: uint32(ifi.Index)})
		} else {
			err = unix.Bind(fd, &unix.SockaddrInet4{Port: wire.ControlPort, Addr: group.As4()})
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("notify group %s: bind: %w", group, err)
	}
	f := os.NewFile(uintptr(fd), "notify-group")
	pconn, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("notify group %s: %w", group, err)
	}
	c := pconn.(*net.UDPConn)
	g := newGroup(group, o)
	g.conn = c
	var steps []error
	if group.Is6() {
		// The same checks over IPv6: hop limit 255 sent and required.
		pc := ipv6.NewPacketConn(c)
		g.zone = ifname
		g.read = func(b []byte) (int, netip.Addr, int, error) {
			n, cm, src, err := pc.ReadFrom(b)
			ttl := -1
			if cm != nil {
				ttl = cm.HopLimit
			}
			return n, udpSource(src), ttl, err
		}
		steps = []error{
			pc.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}),
			pc.SetMulticastInterface(ifi),
			pc.SetMulticastHopLimit(groupTTL),
			pc.SetMulticastLoopback(false),
			pc.SetControlMessage(ipv6.FlagHopLimit, true),
		}
	} else {
		pc := ipv4.NewPacketConn(c)
		g.read = func(b []byte) (int, netip.Addr, int, error) {
			n, cm, src, err := pc.ReadFrom(b)
			ttl := -1
			if cm != nil {
				ttl = cm.TTL
			}
			return n, udpSource(src), ttl, err
		}
		steps = []error{
			pc.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}),
			pc.SetMulticastInterface(ifi),
			pc.SetMulticastTTL(groupTTL),
			pc.SetMulticastLoopback(false),
			pc.SetControlMessage(ipv4.FlagTTL, true),
		}
	}
	for _, step := range steps {
		if step != nil {
			c.Close()
			return nil, fmt.Errorf("notify group %s on %s: %w", group, ifname, step)
		}
	}
	return g, nil
}

// udpSource is the unmapped address of a datagram's source.
func udpSource(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort().Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}

// newGroup is a Group without its socket.
func newGroup(group netip.Addr, o GroupOptions) *Group {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Group{group: group, opts: o,
		signer:   wire.NewAuthenticator(o.Key.Algorithm, o.Key.Secret, wire.AuthOptions{}),
		verifier: wire.NewAuthenticator(o.Key.Algorithm, o.Key.Secret, wire.AuthOptions{}),
		seen:     map[uint64]struct{}{}}
}

// onLink lists the subnets of the group's family configured on the
// interface; for IPv6 with the link-local one, the source of what a peer
// sends to a link-scope group.
func onLink(ifi *net.Interface, v6 bool) ([]netip.Prefix, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() == v6 {
			out = append(out, p.Masked())
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no subnet of the group's family on the interface to take peers from (give group-peers)")
	}
	return out, nil
}

// Announce sends a signed Map-Notify for host with locs to the group.
func (g *Group) Announce(host mapping.EID, locs []mapping.Locator) error {
	b, err := g.encode(host, locs)
	if err != nil {
		return err
	}
	_, err = g.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(g.group.WithZone(g.zone), wire.ControlPort))
	return err
}

// encode builds the signed announcement of host, with a fresh nonce.
func (g *Group) encode(host mapping.EID, locs []mapping.Locator) ([]byte, error) {
	g.sendMu.Lock()
	defer g.sendMu.Unlock()
	nonce := uint64(g.opts.Now().UnixNano())&^(1<<nonceTimeShift-1) | rand.Uint64N(1<<nonceTimeShift)
	if nonce <= g.lastSent { // never repeat one, even when the clock steps back
		nonce = g.lastSent + 1
	}
	g.lastSent = nonce
	m := mapping.Mapping{EID: host, TTL: 1, Authoritative: true, Locators: locs}
	n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, KeyID: g.opts.Key.ID,
		Algorithm: g.opts.Key.Algorithm, Records: []wire.EIDRecord{m.Record()}}}
	return g.signer.EncodeSigned(n)
}

// accept checks a datagram received from from with IP TTL ttl (-1 when
// unknown) and returns the Map-Notify, or why it is dropped.
func (g *Group) accept(b []byte, from netip.Addr, ttl int) (*wire.MapNotify, string) {
	if ttl != groupTTL {
		return nil, DropTTL
	}
	if !g.peer(from) {
		return nil, DropNotAPeer
	}
	msg, err := wire.Decode(b)
	nt, ok := msg.(*wire.MapNotify)
	if err != nil || !ok {
		return nil, DropMalformed
	}
	switch {
	case nt.Algorithm == wire.AuthNone:
		return nil, DropUnsigned
	case nt.Algorithm != g.opts.Key.Algorithm || nt.KeyID != g.opts.Key.ID:
		return nil, DropWrongKey
	}
	// Over the bytes received, in constant time.
	if g.verifier.Verify(b) != nil {
		return nil, DropBadSignature
	}
	now := g.opts.Now()
	sent := time.Unix(0, int64(nt.Nonce&^(1<<nonceTimeShift-1)))
	if d := now.Sub(sent); d > groupFreshness || d < -groupFreshness {
		return nil, DropStale
	}
	if _, dup := g.seen[nt.Nonce]; dup {
		return nil, DropReplay
	}
	if len(g.seen) >= groupSeenMax {
		oldest := uint64(now.Add(-groupFreshness).UnixNano())
		for n := range g.seen {
			if n < oldest {
				delete(g.seen, n)
			}
		}
		if len(g.seen) >= groupSeenMax {
			return nil, DropFlood
		}
	}
	g.seen[nt.Nonce] = struct{}{}
	return nt, ""
}

func (g *Group) peer(a netip.Addr) bool {
	for _, p := range g.opts.Peers {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Serve reads announcements until Close and hands each host record of an
// accepted one to claimed (with the sender's address); every other
// datagram goes to dropped with its reason.
func (g *Group) Serve(claimed func(host mapping.EID, locs []mapping.Locator, from netip.Addr), dropped func(reason string, from netip.Addr)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		buf := make([]byte, 9000)
		for {
			n, from, ttl, err := g.read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			nt, why := g.accept(buf[:n], from, ttl)
			if nt == nil {
				dropped(why, from)
				continue
			}
			for i := range nt.Records {
				if mp, ok := mapping.FromRecord(&nt.Records[i]); ok && mp.EID.Prefix.IsSingleIP() {
					claimed(mp.EID, mp.Locators, from)
				}
			}
		}
	}()
}

// Close leaves the group and stops Serve.
func (g *Group) Close() error {
	err := g.conn.Close()
	g.wg.Wait()
	return err
}
