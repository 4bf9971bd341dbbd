// Package loadgen is a load generator for LISP Map-Servers and
// Map-Resolvers. It depends on nothing of lispd but the public codec
// (package wire) and, for LISP-SEC, its pure cryptography (internal/lispsec),
// so it can drive any implementation.
//
// Three modes:
//
//   - Register sends Map-Registers with want-map-notify set, one EID prefix
//     per message cycling over the configured prefixes, and counts the
//     Map-Notifies whose nonce matches and whose HMAC verifies; latency is
//     register → notify.
//   - Request sends ECM'd Map-Requests (like lig) for random EIDs inside the
//     prefixes and counts the Map-Replies whose nonce matches; latency is
//     request → reply. With LISPSEC the requests carry a wrapped One-Time
//     Key and only replies signed with it count (lispsec.go).
//   - Flood sends garbage (random bytes with plausible type nibbles,
//     truncated messages) and unauthenticated or badly signed Map-Registers,
//     for denial-of-service testing, and reports the packet rate achieved.
//
// Messages are encoded once into a template before the run; the hot loop
// copies the template, patches nonce and EID (fixing the inner checksums,
// or re-signing a Map-Register with a reused HMAC state) and sends in
// batches with sendmmsg (golang.org/x/net/ipv4 WriteBatch) over several
// UDP sockets, paced by a token bucket on the monotonic clock. One goroutine
// per socket receives with recvmmsg and matches answers to requests by
// nonce: the nonce is a per-run base plus a sequence number indexing a ring
// of send timestamps, so matching needs no map and no lock.
package loadgen

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"github.com/lispd/lispd/wire"
)

// Mode selects what is sent.
type Mode int

// Modes.
const (
	Register Mode = iota + 1
	Request
	Flood
)

func (m Mode) String() string {
	switch m {
	case Register:
		return "register"
	case Request:
		return "request"
	case Flood:
		return "flood"
	}
	return fmt.Sprintf("mode-%d", int(m))
}

// FloodKind selects the flood's packets.
type FloodKind string

// Flood kinds.
const (
	FloodGarbage FloodKind = "garbage"           // random bytes with plausible type nibbles, truncated real messages
	FloodBadAuth FloodKind = "bad-auth-register" // Map-Registers with no, random or wrongly keyed authentication
	FloodMixed   FloodKind = "mixed"             // both, interleaved
)

// Config describes one run. Zero values take the defaults noted.
type Config struct {
	Mode   Mode
	Target netip.AddrPort // port 0 means wire.ControlPort
	// Source, if valid, is the local address the sockets bind to; else
	// they bind to the wildcard address of the target's family.
	Source netip.Addr
	// Rate is the target send rate in messages per second; 0 sends as fast
	// as possible.
	Rate float64
	// The run stops after Count messages or Duration, whichever comes
	// first; with neither, after 10 s.
	Count    uint64
	Duration time.Duration
	// Drain is how long to wait after the last send for answers still on
	// the way (default 1 s; it ends early once every message is
	// answered). Negative waits not at all. Flood does not wait. An answer
	// arriving after 2^20 further messages were sent counts as unmatched
	// (its send time is overwritten), i.e. lost.
	Drain time.Duration

	// Prefixes distinct EID prefixes of length EIDLen (default 32, or 128
	// for IPv6) are carved from EIDBase (default 198.18.0.0, the RFC 2544
	// benchmarking range): EIDBase, EIDBase+1·2^(bits−EIDLen), …
	Prefixes      int // default 1
	EIDBase       netip.Addr
	EIDLen        int
	InstanceID    uint32
	HasInstanceID bool // wrap EIDs in an Instance-ID LCAF

	Sockets int // UDP source sockets (source ports), default 16
	Batch   int // messages per sendmmsg/recvmmsg, default 64

	// Register mode.
	KeyID      uint8
	Algorithm  wire.AuthAlg // AuthHMACSHA1 or AuthHMACSHA256 (default)
	Secret     []byte
	RLOC       netip.Addr // the locator registered; default the sockets' local address
	TTL        uint32     // record TTL in minutes, default 1440
	ProxyReply bool       // P bit
	// XTRIDPerPrefix gives each prefix its own xTR-ID (as if every prefix
	// came from a different xTR); HasSiteID appends an xTR-ID and SiteID
	// to every message. Either sets the I bit.
	XTRIDPerPrefix bool
	HasSiteID      bool
	SiteID         uint64

	// Request mode: ITRRLOC is where the Map-Replies are to go (with the
	// sending socket's port); default the sockets' local address.
	ITRRLOC netip.Addr
	// LISPSEC protects the Map-Requests with LISP-SEC (RFC 9303): the
	// ITR-OTK wrapped with KeyID and Secret, the key shared with the
	// Map-Resolver; only signed replies whose PKT HMAC verifies count,
	// the others are bad-auth.
	LISPSEC bool

	// Flood mode.
	FloodKind FloodKind // default garbage
}

// Limits of the configuration.
const (
	MaxSockets = 1024
	MaxBatch   = 1024
)

func (c *Config) defaults() {
	if c.Target.Port() == 0 {
		c.Target = netip.AddrPortFrom(c.Target.Addr(), wire.ControlPort)
	}
	c.Target = netip.AddrPortFrom(c.Target.Addr().Unmap(), c.Target.Port())
	if c.Count == 0 && c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = time.Second
	}
	if c.Prefixes == 0 {
		c.Prefixes = 1
	}
	if !c.EIDBase.IsValid() {
		c.EIDBase = netip.MustParseAddr("198.18.0.0")
	}
	c.EIDBase = c.EIDBase.Unmap()
	if c.EIDLen == 0 {
		c.EIDLen = c.EIDBase.BitLen()
	}
	if c.Sockets == 0 {
		c.Sockets = 16
	}
	if c.Batch == 0 {
		c.Batch = 64
	}
	if c.Algorithm == wire.AuthNone && c.Mode == Register {
		c.Algorithm = wire.AuthHMACSHA256
	}
	if c.TTL == 0 {
		c.TTL = 1440
	}
	if c.FloodKind == "" {
		c.FloodKind = FloodGarbage
	}
}

// Check validates c after defaults; the messages name the CLI flags.
func (c *Config) check() error {
	switch c.Mode {
	case Register, Request, Flood:
	default:
		return fmt.Errorf("unknown mode %v", c.Mode)
	}
	if !c.Target.Addr().IsValid() || c.Target.Addr().IsUnspecified() {
		return errors.New("--target: an address is required")
	}
	if c.Source.IsValid() && c.Source.Unmap().Is4() != c.Target.Addr().Is4() {
		return fmt.Errorf("--source %s and --target %s are of different families", c.Source, c.Target.Addr())
	}
	if c.Rate < 0 {
		return errors.New("--rate must not be negative")
	}
	if c.Duration < 0 {
		return errors.New("--duration must not be negative")
	}
	if c.Sockets < 1 || c.Sockets > MaxSockets {
		return fmt.Errorf("--sockets must be 1 to %d", MaxSockets)
	}
	if c.Batch < 1 || c.Batch > MaxBatch {
		return fmt.Errorf("batch must be 1 to %d", MaxBatch)
	}
	bits := c.EIDBase.BitLen()
	if c.EIDLen < 1 || c.EIDLen > bits {
		return fmt.Errorf("--eid-len must be 1 to %d for %s", bits, c.EIDBase)
	}
	if c.Prefixes < 1 {
		return errors.New("--prefixes must be at least 1")
	}
	// The prefixes must fit in the address space above EIDBase.
	room := new(big.Int).Lsh(big.NewInt(1), uint(c.EIDLen))
	start := new(big.Int).Rsh(new(big.Int).SetBytes(c.EIDBase.AsSlice()), uint(bits-c.EIDLen))
	if new(big.Int).Add(start, big.NewInt(int64(c.Prefixes))).Cmp(room) > 0 {
		return fmt.Errorf("--prefixes %d /%d prefixes from %s run past the end of the address space", c.Prefixes, c.EIDLen, c.EIDBase)
	}
	switch c.Mode {
	case Register:
		if c.Algorithm != wire.AuthHMACSHA1 && c.Algorithm != wire.AuthHMACSHA256 {
			return fmt.Errorf("--algorithm %s is not supported: use hmac-sha-1-96 or hmac-sha-256-128", c.Algorithm)
		}
		if len(c.Secret) == 0 {
			return errors.New("--secret is required for register")
		}
		if c.RLOC.IsValid() && c.RLOC.IsUnspecified() {
			return errors.New("--rloc must not be the unspecified address")
		}
	case Request:
		if c.ITRRLOC.IsValid() && c.ITRRLOC.Unmap().IsUnspecified() {
			return errors.New("--itr-rloc must not be the unspecified address")
		}
		if c.LISPSEC && len(c.Secret) == 0 {
			return errors.New("--lisp-sec needs --secret: the key shared with the Map-Resolver")
		}
	case Flood:
		switch c.FloodKind {
		case FloodGarbage, FloodBadAuth, FloodMixed:
		default:
			return fmt.Errorf("--kind %q: want garbage, bad-auth-register or mixed", c.FloodKind)
		}
	}
	return nil
}
