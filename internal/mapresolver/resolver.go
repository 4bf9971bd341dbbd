// Package mapresolver is the Map-Resolver role (RFC 9301 §8.1, §8.4): it
// takes the Map-Requests ITRs send in ECMs, lets a co-located Map-Server
// answer for its sites, forwards the ECM unchanged to the Map-Server that a
// static delegation names, and answers everything else with a negative
// Map-Reply. Its answers depend on nothing local to one instance, so
// several Map-Resolvers can share an anycast address.
package mapresolver

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// Delegation sends the Map-Requests for some EID prefixes to a Map-Server.
type Delegation struct {
	MapServer netip.Addr
	Prefixes  []mapping.EID
}

// Options are the Map-Resolver's tunables; zero values take the defaults.
type Options struct {
	NegativeTTL uint32 // minutes, for EIDs outside every known EID prefix; default 15
	Stats       *stats.Registry
	Log         *slog.Logger

	// LISPSECKeys are the secrets shared with ITRs by Key ID; with them the
	// Map-Resolver signs its negative Map-Replies to LISP-SEC protected
	// Map-Requests (RFC 9303 §6.7.2). A delegated Map-Server gets the ECM
	// unchanged and needs the same keys. Nil: no LISP-SEC.
	LISPSECKeys lispsec.Keys
}

// Resolver is the Map-Resolver.
type Resolver struct {
	ms    *mapserver.Server // co-located Map-Server, or nil
	opts  Options
	log   *slog.Logger
	mu    sync.RWMutex
	deleg *mapping.Table[netip.Addr]
	known *mapping.Table[struct{}] // every EID prefix of the mapping system we know of
	// negTTL is Options.NegativeTTL, which a reload may change while
	// requests are answered.
	negTTL atomic.Uint32
	// secKeys is Options.LISPSECKeys, which a reload may change too.
	secKeys atomic.Pointer[lispsec.Keys]

	forwarded, negative, noRecord, probeDropped *stats.Counter
	secReplies                                  *stats.Counter
	secDropped                                  lispsec.Drops
}

// New returns a Map-Resolver; ms may be nil.
func New(ms *mapserver.Server, delegations []Delegation, opts Options) *Resolver {
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = 15
	}
	if opts.Stats == nil {
		opts.Stats = stats.NewRegistry()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c := func(name, help string) *stats.Counter {
		return opts.Stats.Counter(stats.Desc{Subsystem: "map_resolver", Name: name, Help: help})
	}
	r := &Resolver{ms: ms, opts: opts, log: opts.Log.With("role", "map-resolver"),
		forwarded:    c("requests_forwarded", "Map-Requests forwarded to a delegated Map-Server."),
		negative:     c("negative_replies", "Negative Map-Replies for EIDs outside every EID prefix."),
		noRecord:     c("requests_malformed", "Map-Requests without a usable EID record."),
		probeDropped: c("probes_dropped", "RLOC-probes, which must not reach the mapping system."),
		secReplies:   c("lispsec_replies", "Negative Map-Replies signed for LISP-SEC protected Map-Requests."),
		secDropped: lispsec.NewDrops(opts.Stats, "map_resolver", "lispsec_requests_dropped",
			"LISP-SEC protected Map-Requests dropped, by reason.",
			lispsec.ErrMalformed, lispsec.ErrOTK, lispsec.ErrNoKey, lispsec.ErrNullWrap, lispsec.ErrUnsupported),
	}
	r.negTTL.Store(opts.NegativeTTL)
	r.secKeys.Store(&opts.LISPSECKeys)
	r.Reload(delegations)
	return r
}

// Reconfigure applies a reloaded configuration: the delegations (as
// Reload), the negative Map-Reply TTL and the LISP-SEC keys. The other
// options are fixed.
func (r *Resolver) Reconfigure(delegations []Delegation, opts Options) {
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = 15
	}
	r.negTTL.Store(opts.NegativeTTL)
	r.secKeys.Store(&opts.LISPSECKeys)
	r.Reload(delegations)
}

// Reload replaces the delegations and re-reads the co-located Map-Server's
// site prefixes.
func (r *Resolver) Reload(delegations []Delegation) {
	deleg := mapping.NewTable[netip.Addr]()
	known := mapping.NewTable[struct{}]()
	for _, d := range delegations {
		for _, p := range d.Prefixes {
			deleg.Insert(p, d.MapServer)
			known.Insert(p, struct{}{})
		}
	}
	if r.ms != nil {
		for _, p := range r.ms.ConfiguredPrefixes() {
			known.Insert(p, struct{}{})
		}
	}
	r.mu.Lock()
	r.deleg, r.known = deleg, known
	r.mu.Unlock()
}

// HandleMapRequest is the Map-Resolver's control.Handler of encapsulated
// Map-Requests: it resolves r.Msg, received in an ECM (r.Raw), answering
// r.ReplyTo. Every request is handled here: one it cannot use is counted.
func (r *Resolver) HandleMapRequest(req *control.Request, out control.Sender) control.DropReason {
	m, ok := req.Msg.(*wire.MapRequest)
	if !ok {
		return control.DropECMNotMapRequest
	}
	if m.Probe {
		r.probeDropped.Inc()
		return control.Handled
	}
	if len(m.Records) == 0 {
		r.noRecord.Inc()
		return control.Handled
	}
	rr := &m.Records[0]
	eid, ok := mapping.FromWire(rr.EID, rr.MaskLen)
	if !ok {
		r.noRecord.Inc()
		return control.Handled
	}
	if r.ms != nil && r.ms.HandleMapRequest(req, out) == control.Handled {
		return control.Handled
	}
	r.mu.RLock()
	_, ms, delegated := r.deleg.LookupPrefix(eid)
	hole, holeOK := r.known.LeastSpecificHole(eid.IID, eid.Prefix.Addr(), 0)
	r.mu.RUnlock()
	if delegated {
		// The ECM goes on unchanged: the ITR-RLOCs and the inner source
		// port tell the Map-Server (or ETR) where to answer.
		out.Send(req.Raw, req.Local.Addr(), netip.AddrPortFrom(ms, wire.ControlPort))
		r.forwarded.Inc()
		return control.Handled
	}
	if !holeOK {
		hole = eid
	}
	rec := wire.EIDRecord{TTL: r.negTTL.Load(), MaskLen: hole.MaskLen(), Action: wire.ActionNativelyForward,
		EID: hole.Address()}
	reply := &wire.MapReply{Nonce: m.Nonce, Records: []wire.EIDRecord{rec}}
	var b []byte
	var err error
	if req.ECM != nil && req.ECM.Security && *r.secKeys.Load() != nil {
		if b, err = r.signedNegative(req, reply, hole); err != nil {
			r.secDropped.Count(err)
			return control.Handled
		}
		r.secReplies.Inc()
	} else {
		b, err = wire.Encode(reply)
	}
	if err != nil {
		r.log.Warn("cannot encode Map-Reply", "err", err)
		return control.Handled
	}
	out.Send(b, req.Local.Addr(), req.ReplyTo)
	r.negative.Inc()
	return control.Handled
}

// signedNegative signs the negative reply for hole with the ITR-OTK of a
// LISP-SEC protected request: the Map-Resolver vouches for the hole as a
// Map-Server vouches for its prefixes (RFC 9303 §6.7.2).
func (r *Resolver) signedNegative(req *control.Request, reply *wire.MapReply, hole mapping.EID) ([]byte, error) {
	ad, err := req.ECM.AuthData()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", lispsec.ErrMalformed, err)
	}
	otk, err := lispsec.OpenECM(ad, *r.secKeys.Load(), reply.Nonce, false)
	if err != nil {
		return nil, err
	}
	return lispsec.ProxyReply(reply, ad, otk, []wire.EIDADRecord{{MaskLen: hole.MaskLen(), EID: hole.Address()}}, false)
}
