package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
)

// Config sets up an Engine. The engine takes ownership of the TUNs and the
// Underlay: Close closes them.
type Config struct {
	// LocalRLOCs are this router's RLOCs. The ETR decapsulates only
	// packets addressed to one of them; the ITR uses the first one of the
	// right family as the outer source.
	LocalRLOCs []netip.Addr
	// Instances maps each instance ID served to its TUN.
	Instances map[uint32]TUN
	// Native optionally maps an instance ID to the writer that forwards
	// packets natively (negative entries natively-forward without a PETR,
	// and no-action). Without one, such packets are dropped ("no-petr").
	// The kernel routed these packets to the TUN, so writing them back to
	// the same TUN loops unless a policy rule routes packets arriving
	// from the TUN by another table (ip rule add iif <tun> lookup <t>);
	// the package that sets up routes decides, not the engine.
	Native map[uint32]NativeWriter
	// Underlay is the RLOC-side socket set.
	Underlay Underlay
	// Hooks reaches the control plane; nil discards the events.
	Hooks ControlHooks

	// PETRs are the Proxy-ETRs packets matching a natively-forward
	// negative entry are encapsulated to (one chosen by flow hash).
	PETRs []netip.Addr
	// UnderlayMTU is the largest outer packet (default 1500).
	UnderlayMTU int

	ITR  bool // encapsulate packets read from the TUNs
	ETR  bool // decapsulate packets for the local EIDs
	PITR bool // same data path as ITR
	// PETR decapsulates packets whatever their inner destination and writes
	// them to the TUN so the kernel forwards them natively.
	PETR bool
	// Gleaning (RFC 9300 §9) is not implemented; true is rejected.
	Gleaning bool
	// Sources is the initial source policy: the ETR's outer-source checks
	// and the inner sources a PETR relays (SetSourcePolicy replaces it).
	Sources SourcePolicy
	// KeepInnerDSCP stops the ETR from copying the outer DSCP into the
	// inner header (RFC 9300 §5.3 says it SHOULD copy).
	KeepInnerDSCP bool

	// SetLSBs sets the L bit with LocatorStatusBits in every packet (only
	// the low 8 bits travel when the instance ID is carried).
	SetLSBs bool
	// NoNonce sends N=0 and a zero nonce field (with L unset, all of
	// N, L, E and V are then 0).
	NoNonce           bool
	LocatorStatusBits uint32

	// Miss queue: up to MissQueuePerDest packets per destination host
	// (default 8) and MissQueueTotal in all (default 1024) wait at most
	// MissQueueTimeout (default 2 s) for a covering entry.
	MissQueuePerDest int
	MissQueueTotal   int
	MissQueueTimeout time.Duration
	// MissInterval is the least time between two Miss (or SendMapRequest)
	// calls for one destination (default 1 s).
	MissInterval time.Duration
	// DecapSampleInterval is the least time between two Decapsulated
	// calls for one outer source (default 1 s).
	DecapSampleInterval time.Duration
	// HostSeenInterval is the least time between two HostSeen calls for
	// one source address from one ITR goroutine (default 1 s).
	HostSeenInterval time.Duration
	// ICMPRate caps the ICMP errors (too big) generated per second
	// (default 100; negative disables them).
	ICMPRate int
	// ICMPSource4 and ICMPSource6 are the sources of generated ICMP
	// errors. By default the ICMP error comes from the destination of the
	// packet that caused it: a remote EID, which the host's kernel routes
	// back through the TUN, so it passes reverse-path filtering (a local
	// address would be dropped as a martian source).
	ICMPSource4, ICMPSource6 netip.Addr

	// Stats receives the counters (subsystem "dataplane"); nil makes a
	// private registry.
	Stats *stats.Registry
	Log   *slog.Logger
	// Clock replaces time.Now in tests.
	Clock func() time.Time
}

// Defaults.
const (
	DefaultMissQueuePerDest    = 8
	DefaultMissQueueTotal      = 1024
	DefaultMissQueueTimeout    = 2 * time.Second
	DefaultMissInterval        = time.Second
	DefaultDecapSampleInterval = time.Second
	DefaultHostSeenInterval    = time.Second
	DefaultICMPRate            = 100
)

func (c *Config) setDefaults() {
	if c.UnderlayMTU == 0 {
		c.UnderlayMTU = DefaultUnderlayMTU
	}
	if c.MissQueuePerDest == 0 {
		c.MissQueuePerDest = DefaultMissQueuePerDest
	}
	if c.MissQueueTotal == 0 {
		c.MissQueueTotal = DefaultMissQueueTotal
	}
	if c.MissQueueTimeout == 0 {
		c.MissQueueTimeout = DefaultMissQueueTimeout
	}
	if c.MissInterval == 0 {
		c.MissInterval = DefaultMissInterval
	}
	if c.DecapSampleInterval == 0 {
		c.DecapSampleInterval = DefaultDecapSampleInterval
	}
	if c.HostSeenInterval == 0 {
		c.HostSeenInterval = DefaultHostSeenInterval
	}
	if c.ICMPRate == 0 {
		c.ICMPRate = DefaultICMPRate
	}
	if c.Stats == nil {
		c.Stats = stats.NewRegistry()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Gleaning {
		errs = append(errs, errors.New("gleaning is not implemented"))
	}
	if c.Underlay == nil {
		errs = append(errs, errors.New("no underlay"))
	}
	if len(c.Instances) == 0 {
		errs = append(errs, errors.New("no instance (TUN) configured"))
	}
	for iid, t := range c.Instances {
		if iid > mapping.MaxIID {
			errs = append(errs, fmt.Errorf("instance ID %d does not fit 24 bits", iid))
		}
		if t == nil {
			errs = append(errs, fmt.Errorf("instance ID %d has no TUN", iid))
		}
	}
	for iid := range c.Native {
		if _, ok := c.Instances[iid]; !ok {
			errs = append(errs, fmt.Errorf("native writer for instance ID %d, which has no TUN", iid))
		}
	}
	if len(c.LocalRLOCs) == 0 {
		errs = append(errs, errors.New("no local RLOC"))
	}
	for _, a := range c.LocalRLOCs {
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() || nonUnicastDst(a) {
			errs = append(errs, fmt.Errorf("local RLOC %s is not a unicast address", a))
		}
	}
	for _, a := range c.PETRs {
		if !a.IsValid() || a.Is4In6() || nonUnicastDst(a) {
			errs = append(errs, fmt.Errorf("PETR %s is not a unicast address", a))
		}
	}
	if c.ICMPSource4.IsValid() && !c.ICMPSource4.Is4() || c.ICMPSource6.IsValid() && (!c.ICMPSource6.Is6() || c.ICMPSource6.Is4In6()) {
		errs = append(errs, errors.New("ICMP sources must be an IPv4 and an IPv6 address respectively"))
	}
	if c.UnderlayMTU < 576+Overhead6 || c.UnderlayMTU > 65535 {
		errs = append(errs, fmt.Errorf("underlay MTU %d out of range %d-65535", c.UnderlayMTU, 576+Overhead6))
	}
	if c.MissQueuePerDest < 0 || c.MissQueueTotal < 0 || c.MissQueueTotal < c.MissQueuePerDest {
		errs = append(errs, errors.New("miss queue sizes must be >= 0 and total >= per destination"))
	}
	if !c.ITR && !c.PITR && !c.ETR && !c.PETR {
		errs = append(errs, errors.New("no role: enable ITR, ETR, PITR or PETR"))
	}
	return errors.Join(errs...)
}

// TUNMTU is the MTU to give the TUNs so that every packet fits the
// underlay after encapsulation: the underlay MTU minus the IPv6 overhead
// (56) when any local RLOC is IPv6, minus the IPv4 overhead (36) otherwise.
func TUNMTU(underlayMTU int, localRLOCs []netip.Addr) int {
	if underlayMTU == 0 {
		underlayMTU = DefaultUnderlayMTU
	}
	for _, a := range localRLOCs {
		if a.Is6() {
			return underlayMTU - Overhead6
		}
	}
	return underlayMTU - Overhead4
}
