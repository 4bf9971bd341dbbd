// Package lig is the LISP Internet Groper (RFC 6835): it asks a
// Map-Resolver for the mapping of one EID, without any local daemon, and
// returns the Map-Reply with its round-trip time.
//
// Query opens its own UDP socket on a random port, sends a Map-Request for
// the EID (mask length 32 or 128, optionally in an instance ID) inside an
// Encapsulated Control Message to the Map-Resolver, and waits for a
// Map-Reply carrying one of its nonces, from whichever address it comes
// (the Map-Resolver, a proxy-replying Map-Server or the ETR itself).
// Unsolicited or foreign datagrams are ignored.
//
// The package depends only on package wire, so the daemon's tests, the lab
// and lispctl share it.
package lig

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/wire"
)

// Defaults of RFC 6835 §5: three Map-Requests, two seconds apart.
const (
	DefaultCount   = 3
	DefaultTimeout = 2 * time.Second
)

// ErrNoAnswer is returned (wrapped) when no Map-Reply came after every attempt.
var ErrNoAnswer = errors.New("no Map-Reply")

// Options say what to ask and whom.
type Options struct {
	// EID is the address looked up; the request asks for EID/32 or EID/128.
	EID netip.Addr
	// InstanceID, when HasInstanceID, wraps the EID in an Instance-ID LCAF.
	InstanceID    uint32
	HasInstanceID bool
	// MapResolver is where the ECM goes; port 0 means wire.ControlPort.
	MapResolver netip.AddrPort
	// Source, if valid, is the local address the socket binds to and the
	// ITR-RLOC. Otherwise the socket binds to the wildcard address of the
	// Map-Resolver's family and the ITR-RLOC is the address the kernel
	// would use to reach the Map-Resolver.
	Source netip.Addr
	// SourceEID, if valid, is sent as the Map-Request's Source EID (and is
	// the inner IP source when the EID's family differs from the RLOCs').
	// By default the Source EID is AFI 0 (no address).
	SourceEID netip.Addr
	// Count is the number of Map-Requests sent (default 3), each waiting
	// Timeout (default 2 s) for an answer. A late answer to an earlier
	// attempt is accepted.
	Count   int
	Timeout time.Duration
	// OnSend, if set, is called just before each Map-Request is sent
	// (attempt counts from 1), so a CLI can print progress.
	OnSend func(attempt int, nonce uint64)
	// Nonce, if non-zero, is the nonce of the first attempt (tests); later
	// attempts use fresh random nonces.
	Nonce uint64
}

// Result is the answer.
type Result struct {
	EID           netip.Addr
	InstanceID    uint32
	HasInstanceID bool
	MapResolver   netip.AddrPort
	Local         netip.AddrPort // socket address the request came from (the ITR-RLOC and inner UDP source)
	RepliedBy     netip.AddrPort // UDP source of the Map-Reply
	RTT           time.Duration  // from sending the attempt the reply answers to receiving it
	Nonce         uint64         // the nonce the reply carried
	Attempts      int            // Map-Requests sent
	Reply         *wire.MapReply
}

// Negative reports whether the reply holds no locator at all (a negative
// Map-Reply, whose records carry only an action).
func (r *Result) Negative() bool {
	for i := range r.Reply.Records {
		if len(r.Reply.Records[i].Locators) > 0 {
			return false
		}
	}
	return true
}

func (o *Options) check() error {
	if !o.EID.IsValid() {
		return errors.New("lig: no EID")
	}
	if !o.MapResolver.Addr().IsValid() {
		return errors.New("lig: no Map-Resolver")
	}
	if o.Count < 0 || o.Timeout < 0 {
		return errors.New("lig: negative count or timeout")
	}
	if o.Source.IsValid() && o.Source.Unmap().Is4() != o.MapResolver.Addr().Unmap().Is4() {
		return fmt.Errorf("lig: source %s and Map-Resolver %s are of different families", o.Source, o.MapResolver.Addr())
	}
	return nil
}

// Query sends Map-Requests for o.EID to o.MapResolver until a Map-Reply
// with a matching nonce arrives, o.Count attempts have each waited
// o.Timeout, or ctx ends. With no answer the error wraps ErrNoAnswer.
func Query(ctx context.Context, o Options) (*Result, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Count == 0 {
		o.Count = DefaultCount
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	mr := netip.AddrPortFrom(o.MapResolver.Addr().Unmap(), o.MapResolver.Port())
	if mr.Port() == 0 {
		mr = netip.AddrPortFrom(mr.Addr(), wire.ControlPort)
	}
	conn, local, err := open(mr, o.Source)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	res := &Result{EID: o.EID.Unmap(), InstanceID: o.InstanceID, HasInstanceID: o.HasInstanceID,
		MapResolver: mr, Local: local}
	sentAt := make(map[uint64]time.Time, o.Count)
	buf := make([]byte, 9216)
	for attempt := 1; attempt <= o.Count; attempt++ {
		nonce := o.Nonce
		if attempt > 1 || nonce == 0 {
			nonce = RandomNonce()
		}
		msg, err := Request(o, local, nonce)
		if err != nil {
			return nil, err
		}
		if o.OnSend != nil {
			o.OnSend(attempt, nonce)
		}
		sentAt[nonce] = time.Now()
		res.Attempts = attempt
		if _, err := conn.WriteToUDPAddrPort(msg, mr); err != nil {
			return nil, fmt.Errorf("lig: sending to %s: %w", mr, err)
		}
		deadline := time.Now().Add(o.Timeout)
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		for {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			now := time.Now()
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, fmt.Errorf("lig: receiving: %w", err)
			}
			rep, nonce, ok := matchReply(buf[:n], sentAt)
			if !ok {
				continue
			}
			res.RepliedBy = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			res.RTT = now.Sub(sentAt[nonce])
			res.Nonce = nonce
			res.Reply = rep
			return res, nil
		}
	}
	attempts := "attempts"
	if o.Count == 1 {
		attempts = "attempt"
	}
	return nil, fmt.Errorf("lig: %w from %s after %d %s", ErrNoAnswer, mr, o.Count, attempts)
}

// matchReply returns the Map-Reply in b if its nonce is one we sent.
func matchReply(b []byte, sentAt map[uint64]time.Time) (*wire.MapReply, uint64, bool) {
	if t, ok := wire.PeekType(b); !ok || t != wire.TypeMapReply || len(b) < 12 {
		return nil, 0, false
	}
	nonce := binary.BigEndian.Uint64(b[4:12])
	if _, ok := sentAt[nonce]; !ok {
		return nil, 0, false
	}
	rep, err := wire.DecodeMapReply(b)
	if err != nil {
		return nil, 0, false
	}
	return rep, nonce, true
}

// open opens the UDP socket lig uses to talk to the mapping system at dst: bound to src on a random port if src is
// valid, else to the wildcard address of dst's family. It returns the
// socket and the address to announce as ITR-RLOC and inner UDP source:
// src, or the address the kernel picks to reach dst.
func open(dst netip.AddrPort, src netip.Addr) (*net.UDPConn, netip.AddrPort, error) {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	network, bind := "udp4", netip.IPv4Unspecified()
	if dst.Addr().Is6() {
		network, bind = "udp6", netip.IPv6Unspecified()
	}
	localAddr := src.Unmap()
	if localAddr.IsValid() {
		bind = localAddr
	} else {
		a, err := control.LocalAddrFor(dst)
		if err != nil {
			return nil, netip.AddrPort{}, fmt.Errorf("lig: %w", err)
		}
		localAddr = a
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(bind, 0)))
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("lig: opening a UDP socket: %w", err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	return conn, netip.AddrPortFrom(localAddr, port), nil
}

// Request encodes the ECM carrying the Map-Request of o sent from local
// with nonce: inner IP source local (or, when the EID is of the other
// family, o.SourceEID or the unspecified address), inner destination the
// EID, inner UDP local's port → the control port, ITR-RLOC local's address.
func Request(o Options, local netip.AddrPort, nonce uint64) ([]byte, error) {
	eid := o.EID.Unmap()
	maskLen := uint8(eid.BitLen())
	eidAddr := wire.AddrFromIP(eid)
	if o.HasInstanceID {
		eidAddr = wire.AddrWithIID(o.InstanceID, eidAddr)
	}
	srcEID := wire.Address{}
	if o.SourceEID.IsValid() {
		srcEID = wire.AddrFromIP(o.SourceEID)
		if o.HasInstanceID {
			srcEID = wire.AddrWithIID(o.InstanceID, srcEID)
		}
	}
	mreq := &wire.MapRequest{
		Nonce:     nonce,
		SourceEID: srcEID,
		ITRRLOCs:  []wire.Address{wire.AddrFromIP(local.Addr())},
		Records:   []wire.RequestRecord{{MaskLen: maskLen, EID: eidAddr}},
	}
	return wire.Encode(wire.EncapsulateMapRequest(mreq, eid, local.Port(), local.Addr(), o.SourceEID))
}

// RandomNonce returns a 64-bit nonce from the system's CSPRNG (RFC 4086),
// never 0.
func RandomNonce() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if n := binary.BigEndian.Uint64(b[:]); n != 0 {
			return n
		}
	}
}
