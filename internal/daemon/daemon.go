// Package daemon assembles lispd from its configuration: the control
// transport, the roles the config turns on, the admin API and the timers.
// It owns dispatch: every control packet is pre-filtered, rate-limited,
// decoded once and handed to the role that handles its type.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/cluster"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapresolver"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/rtr"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/internal/web"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

// Version is set at build time (-ldflags -X).
var Version = "dev"

// Options are what the caller injects; zero values take the defaults.
type Options struct {
	Log *slog.Logger
	Now func() time.Time
	// DataPlane, when set, is what the xTR programs; nil means the
	// userspace data plane on a TUN device (or none without an xtr role).
	DataPlane xtr.DataPlane
	// LogLevel, when set, is the level of Log's handler: a reload sets
	// it to the new log.level. Without it a log.level change is refused.
	LogLevel *slog.LevelVar
	// Devices, when set, are the userspace data plane's TUNs and underlay
	// instead of the kernel's, and the host's addresses and routes are left
	// alone: tests join daemons in memory (dataplane/dptest) without root.
	Devices *Devices
	// Sender, when set, takes the messages the daemon sends on its own
	// (timers, pub/sub publications, forwarded requests) instead of the
	// control sockets, after the reply guard passed them: the fuzz test
	// sees everything the daemon would send and sends nothing.
	Sender control.Sender
	// StateDirectory, when set, replaces the default of
	// map-server.state-directory (a configuration that names another
	// directory keeps it): labs give each lispd its own.
	StateDirectory string
}

// withStateDirectory applies Options.StateDirectory to cfg.
func (o Options) withStateDirectory(cfg *config.Config) {
	if o.StateDirectory != "" && cfg.MapServer != nil && cfg.MapServer.StateDirectory == config.DefaultStateDirectory {
		cfg.MapServer.StateDirectory = o.StateDirectory
	}
}

// Devices are the I/O of a userspace data plane.
type Devices struct {
	// TUN returns the device of one instance ID (0 is always asked for).
	TUN func(iid uint32, mtu int) (dataplane.TUN, error)
	// Underlay carries the LISP packets to and from the other RLOCs.
	Underlay dataplane.Underlay
}

// Daemon is one running lispd.
type Daemon struct {
	opts      Options // as given to New, with its defaults
	log       *slog.Logger
	level     *slog.LevelVar // nil: the log level cannot change
	now       func() time.Time
	started   time.Time
	stats     *stats.Registry
	transport *control.Transport
	admin     *admin.Server
	metrics   string
	web       string // the web view's bound address; "" when off

	mu  sync.Mutex // guards cfg against Reload
	cfg *config.Config
	// The roles are made once in New and never replaced (a reload that
	// would turn one on or off is refused), so the packet path reads them
	// without a lock.
	ms *mapserver.Server
	// cluster shares the Map-Server's registrations (map-server.store:
	// etcd); nil for a Map-Server on its own.
	cluster *cluster.Store
	mr      *mapresolver.Resolver
	xtr     *xtr.Server
	rtr     *rtr.Server  // RTR control plane for xTRs behind NAT
	dp      *userspaceDP // nil without a userspace data plane
	// dyn is the dynamic-EID machinery; nil without dynamic-EID ranges.
	dyn *dynamicEIDs

	mux                               control.Mux // the roles' handlers by message type
	limRequest, limRegister, limOther *limiter
	// guard decides where answers may go and how many (reflection).
	guard        *control.ReplyGuard
	c            counters
	malformedLog control.TokenBucket
	// events is the bus of what happens here (lispctl monitor, web view).
	events *events.Bus
	// dropEvents bounds the drop events: a flood costs counters, not the
	// event stream.
	dropEvents struct {
		sync.Mutex
		control.TokenBucket
	}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a daemon from cfg and opens its sockets; Run starts it.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	opts.withStateDirectory(cfg)
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Daemon{log: opts.Log, level: opts.LogLevel, now: opts.Now, stats: stats.NewRegistry(), cfg: cfg, opts: opts}
	d.started = d.now()
	d.c = newCounters(d.stats)
	d.events = events.NewBus(d.now, d.stats, 0)
	rl := cfg.Control.RateLimit
	// Map-Requests get the configured budget; registrations and the rest
	// get their own, so that no class can starve another.
	d.limRequest = newLimiter(rl.PerSource, rl.PerSourceBurst, rl.Global, rl.GlobalBurst)
	d.limRegister = newLimiter(rl.PerSource, rl.PerSourceBurst, rl.Global, rl.GlobalBurst)
	d.limOther = newLimiter(rl.PerSource, rl.PerSourceBurst, rl.Global, rl.GlobalBurst)
	d.guard = control.NewReplyGuard(rl.PerDestination, rl.PerDestinationBurst, d.now, d.countDrop)
	t, err := control.Listen(cfg.Control.Addresses, cfg.Control.Port, d.log)
	if err != nil {
		return nil, err
	}
	d.transport = t
	t.SetGuard(d.guard)
	d.refreshOwnAddrs()
	if err := d.buildRoles(cfg, opts); err != nil {
		t.Close()
		return nil, err
	}
	// From here a failed start also takes down what the roles set up in
	// the kernel (TUNs, routes, the kernel data path's links).
	started := false
	defer func() {
		if !started {
			d.closeDataPlane()
		}
	}()
	d.handlers()
	d.admin = admin.New(d.log)
	d.routes()
	if cfg.Admin.Socket != "" {
		if err := d.admin.ListenUnix(cfg.Admin.Socket); err != nil {
			t.Close()
			return nil, err
		}
	}
	d.stats.GaugeFunc(d.gauges)
	if cfg.Admin.Metrics != "" {
		a, err := d.admin.ListenMetrics(cfg.Admin.Metrics, d.stats)
		if err != nil {
			t.Close()
			d.admin.Close()
			return nil, err
		}
		d.metrics = a.String()
	}
	if cfg.Admin.Web != "" {
		a, err := d.admin.ListenWeb(cfg.Admin.Web, web.Handler())
		if err != nil {
			t.Close()
			d.admin.Close()
			return nil, err
		}
		d.web = a.String()
	}
	if cfg.Admin.PProf != "" {
		if _, err := d.admin.ListenPProf(cfg.Admin.PProf); err != nil {
			t.Close()
			d.admin.Close()
			return nil, err
		}
	}
	started = true
	return d, nil
}

func (d *Daemon) buildRoles(cfg *config.Config, opts Options) error {
	if cfg.RTR != nil {
		d.rtr = rtr.New(rtr.Options{MapServers: cfg.RTR.MapServers, MapServerKeys: msRTRKeys(cfg.RTR.MapServerKeys),
			RegistrationTimeout: cfg.RTR.RegistrationTimeout,
			Now:                 d.now, Sender: control.SenderFunc(d.sendNow), Stats: d.stats, Log: d.log})
	}
	if cfg.MapServer != nil {
		o := msOptions(cfg)
		o.Now, o.Sender, o.Stats, o.Log, o.Events = d.now, control.SenderFunc(d.sendNow), d.stats, d.log, d.events
		if st := cfg.MapServer.Store; st != nil && st.Etcd != nil {
			c, err := newClusterStore(st.Etcd, d.stats, d.log)
			if err != nil {
				return fmt.Errorf("map-server.store.etcd: %w", err)
			}
			d.cluster, o.Store, o.Node = c, c, c.Node()
		}
		d.ms = mapserver.New(sitesFromConfig(cfg.MapServer), o)
		if err := d.ms.OpenState(cfg.MapServer.StateDirectory); err != nil {
			return fmt.Errorf("map-server.state-directory: %w", err)
		}
	}
	if cfg.MapResolver != nil {
		o := mrOptions(cfg)
		o.Stats, o.Log = d.stats, d.log
		d.mr = mapresolver.New(d.ms, delegationsFromConfig(cfg.MapResolver), o)
	}
	if cfg.XTR != nil || cfg.PITR != nil {
		xo, err := xtrOptions(cfg)
		if err != nil {
			return err
		}
		xo.Now, xo.Sender, xo.Stats, xo.Log, xo.Events = d.now, control.SenderFunc(d.sendNow), d.stats, d.log, d.events
		xo.Ours = d.guard.Ours
		xo.DataPlane = opts.DataPlane
		if xo.DataPlane == nil && cfg.XTR != nil && cfg.XTR.DataPlane != config.DataPlaneNone {
			dp, err := d.startDataPlane(cfg, &xo, opts.Devices)
			if err != nil {
				return err
			}
			d.dp = dp
			xo.DataPlane = dp.programmer()
			xo.SendData = dp.engine.SendControl
			if d.rtr != nil {
				d.rtr.SetDataPlane(rtrDataPlane{dp.engine})
			}
		}
		xo.OnMovedAway = func(moved []mapping.Mapping) {
			if d.dyn != nil {
				d.dyn.mgr.MovedAwayAll(moved)
			}
		}
		d.xtr = xtr.New(xo)
		if d.dp != nil {
			d.dp.hooks.x.Store(d.xtr)
		}
		if cfg.XTR != nil && len(cfg.XTR.DynamicEIDs) > 0 {
			var dpm dynamiceid.DataPlane
			if d.dp != nil {
				dpm = d.dp.programmer()
			}
			ro, err := d.startDynamicEIDs(cfg, xo.Database, d.xtr, dpm)
			if err != nil {
				if d.dp != nil {
					_ = d.dp.close()
				}
				return err
			}
			d.dyn = ro
			if d.dp != nil {
				d.dp.hooks.m.Store(ro.mgr)
			}
		}
	}
	return nil
}

func mrUnregisteredTTL(cfg *config.Config) time.Duration {
	if cfg.MapResolver != nil {
		return cfg.MapResolver.UnregisteredTTL
	}
	return time.Minute
}

func minutes(d time.Duration) uint32 {
	m := uint32(d / time.Minute)
	if m == 0 && d > 0 {
		m = 1
	}
	return m
}

func sitesFromConfig(c *config.MapServer) []mapserver.Site {
	out := make([]mapserver.Site, 0, len(c.Sites))
	for _, s := range c.Sites {
		ms := mapserver.Site{Name: s.Name, Description: s.Description, LegacyNonces: !s.RequireNonceIncrease,
			AllowedRLOCs: s.AllowedRLOCs, RTRs: s.RTRs}
		for _, k := range s.Keys {
			ms.Keys = append(ms.Keys, mapserver.Key{ID: k.ID, Alg: k.Algorithm, Secret: k.Secret})
		}
		for _, p := range s.EIDPrefixes {
			ms.Prefixes = append(ms.Prefixes, mapserver.SitePrefix{EID: mapping.NewEID(p.InstanceID, p.Prefix),
				AcceptMoreSpecifics: p.AcceptMoreSpecifics})
		}
		out = append(out, ms)
	}
	return out
}

func delegationsFromConfig(c *config.MapResolver) []mapresolver.Delegation {
	var out []mapresolver.Delegation
	for _, m := range c.MapServers {
		d := mapresolver.Delegation{MapServer: m.Address}
		for _, p := range m.EIDPrefixes {
			d.Prefixes = append(d.Prefixes, mapping.NewEID(p.InstanceID, p.Prefix))
		}
		out = append(out, d)
	}
	return out
}

// ControlAddrs returns the bound control sockets (tests ask for port 0).
func (d *Daemon) ControlAddrs() []netip.AddrPort { return d.transport.Addrs() }

// MetricsAddr returns the metrics listener's address, or "".
func (d *Daemon) MetricsAddr() string { return d.metrics }

// Stats is the daemon's counter registry.
func (d *Daemon) Stats() *stats.Registry { return d.stats }

// MapServer returns the Map-Server role, or nil.
func (d *Daemon) MapServer() *mapserver.Server { return d.ms }

// XTR returns the tunnel-router control plane, or nil.
func (d *Daemon) XTR() *xtr.Server { return d.xtr }

// Run serves until ctx ends, then shuts down cleanly.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, d.cancel = context.WithCancel(ctx)
	// The sockets outlive ctx a moment: a clean shutdown still has
	// something to say (pub/sub unsubscriptions).
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	if d.cluster != nil {
		if err := d.cluster.Start(d.ms); err != nil {
			return fmt.Errorf("map-server.store.etcd: %w", err)
		}
	}
	d.transport.Serve(serveCtx, d.handle)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.timers(ctx)
	}()
	roles := []string{}
	if d.ms != nil {
		roles = append(roles, "map-server")
	}
	if d.mr != nil {
		roles = append(roles, "map-resolver")
	}
	if d.xtr != nil {
		roles = append(roles, "xtr")
	}
	if d.rtr != nil {
		roles = append(roles, "rtr")
	}
	d.log.Info("lispd started", "version", Version, "roles", roles, "control", d.transport.Addrs())
	<-ctx.Done()
	if d.xtr != nil {
		if n := d.xtr.Unsubscribe(); n > 0 {
			d.log.Info("unsubscribed", "subscriptions", n)
		}
	}
	stopServing()
	d.transport.Wait()
	d.wg.Wait()
	if d.cluster != nil {
		d.cluster.Close() // its lease revoked: the others drop its registrations now
	}
	if d.ms != nil {
		d.ms.Close() // the replay state, saved a last time
	}
	d.admin.Close()
	d.closeDataPlane()
	d.log.Info("lispd stopped")
	return nil
}

// closeDataPlane stops dynamic EIDs and the data plane, removing what
// they made in the kernel.
func (d *Daemon) closeDataPlane() {
	if d.dyn != nil {
		if err := d.dyn.close(); err != nil {
			d.log.Warn("dynamic EID shutdown", "err", err)
		}
	}
	if d.dp != nil {
		if err := d.dp.close(); err != nil {
			d.log.Warn("data plane shutdown", "err", err)
		}
	}
}

// Stop ends Run.
func (d *Daemon) Stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// ownAddrsEvery is how many ticks pass between two readings of the host's
// addresses (30 s): answers to them are refused.
const ownAddrsEvery = 120

// refreshOwnAddrs tells the guard our addresses: the control sockets' and
// every interface's, so that no Map-Request makes us answer ourselves.
func (d *Daemon) refreshOwnAddrs() {
	var own []netip.Addr
	for _, a := range d.transport.Addrs() {
		own = append(own, a.Addr())
	}
	if ifAddrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifAddrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				own = append(own, p.Addr())
			}
		}
	}
	d.guard.SetOwn(own)
}

func (d *Daemon) countDrop(r control.DropReason) { d.c.drops[r].Inc() }

// timers drives the roles' clocks: expiry and retransmission.
func (d *Daemon) timers(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if tick%ownAddrsEvery == 0 {
				d.refreshOwnAddrs()
			}
			if ms := d.MapServer(); ms != nil {
				ms.Tick()
			}
			if x := d.XTR(); x != nil {
				x.Tick()
			}
			if d.rtr != nil {
				d.rtr.Tick()
			}
			if d.dyn != nil {
				d.dyn.mgr.Tick()
			}
		}
	}
}

func (d *Daemon) sendNow(b []byte, src netip.Addr, to netip.AddrPort) {
	if s := d.opts.Sender; s != nil {
		if d.guard.Check(b, src, to.Addr()) != control.Handled {
			return
		}
		s.Send(b, src, to)
		d.c.tx.Inc()
		return
	}
	if err := d.transport.Send(b, src, to); err != nil {
		d.log.Debug("send", "to", to, "err", err)
		return
	}
	d.c.tx.Inc()
}

// handle is the dispatch of every received control packet: pre-filter,
// rate limit, decode once, then the role's handler.
func (d *Daemon) handle(r *control.Request, out *control.Out) {
	d.c.rxPackets.Inc()
	if len(r.Raw) < 4 {
		d.drop(control.DropTooShort, r, nil)
		return
	}
	t := wire.MessageType(r.Raw[0] >> 4)
	lim := d.limOther
	switch t {
	case wire.TypeMapRequest, wire.TypeECM:
		lim = d.limRequest
	case wire.TypeMapRegister, wire.TypeMapNotifyAck, wire.TypeInfo:
		lim = d.limRegister
	}
	if reason := lim.allow(r.Src.Addr(), d.now().UnixNano()); reason != control.Handled {
		d.c.drops[reason].Inc()
		return
	}
	m, err := wire.Decode(r.Raw)
	if err != nil {
		d.drop(control.DropMalformed, r, err)
		return
	}
	d.c.received(m.Type()).Inc()
	r.Msg = m
	before := out.Len()
	if reason := d.dispatch(r, out); reason != control.Handled {
		d.drop(reason, r, nil)
	}
	d.c.tx.Add(uint64(out.Len() - before))
}

// handlers is the dispatch table: which role takes which message. An ECM
// goes to the mapping system: the Map-Resolver, which asks a co-located
// Map-Server first, else the Map-Server alone.
func (d *Daemon) handlers() {
	if d.ms != nil {
		d.mux.Handle(wire.TypeMapRegister, d.ms.HandleMapRegister)
		d.mux.Handle(wire.TypeMapNotifyAck, d.ms.HandleMapNotifyAck)
	}
	switch {
	case d.mr != nil:
		d.mux.Handle(wire.TypeECM, d.mr.HandleMapRequest)
	case d.ms != nil:
		d.mux.Handle(wire.TypeECM, d.ms.HandleMapRequest)
	}
	if d.xtr != nil {
		d.mux.Handle(wire.TypeMapRequest, d.xtr.HandleMapRequest)
		d.mux.Handle(wire.TypeMapReply, d.xtr.HandleMapReply)
		d.mux.Handle(wire.TypeMapNotify, d.xtr.HandleMapNotify)
	}
	if d.ms != nil || d.xtr != nil {
		d.mux.Handle(wire.TypeInfo, d.handleInfo)
	}
}

// handleInfo gives Info-Requests to the Map-Server and Info-Replies to the
// xTR's NAT discovery (draft-ietf-lisp-nat-traversal); one type, two roles.
func (d *Daemon) handleInfo(r *control.Request, out control.Sender) control.DropReason {
	i, ok := r.Msg.(*wire.Info)
	switch {
	case !ok:
		return control.DropUnexpectedType
	case !i.Reply && d.ms != nil:
		return d.ms.HandleInfoRequest(r, out)
	case i.Reply && d.xtr != nil:
		return d.xtr.HandleInfoReply(r, out)
	case !i.Reply:
		return control.DropNoMapServer
	}
	return control.DropUnexpectedType
}

// dispatch hands r (decoded) to the handler of its type. What stays here
// are the rules between roles: an ECM carries a Map-Request, which goes to
// this xTR if a Map-Server forwarded it to us as ETR, else to the mapping
// system; a bare Map-Request is for the xTR only.
func (d *Daemon) dispatch(r *control.Request, out control.Sender) control.DropReason {
	t := r.Msg.Type()
	if req, ok := r.Msg.(*wire.MapRequest); ok && req.DontReply && !req.SMR {
		// D: the sender wants no Map-Reply (RFC 9301 §5.2), and a
		// Map-Request asks for nothing else.
		return control.DropDontMapReply
	}
	if ecm, ok := r.Msg.(*wire.ECM); ok {
		_, register := ecm.Message.(*wire.MapRegister)
		// Open Overlay Router 1.3 sends its ECM'd Map-Register to the RTR
		// with R clear (docs/interop.md); neither R nor N on a
		// Map-Register can only mean the RTR.
		if d.rtr != nil && (ecm.ForETR || register && !ecm.ForMS) {
			// R: for the RTR (draft-ietf-lisp-nat-traversal §5.3): an
			// xTR's Map-Register, or its Map-Notify from the Map-Server,
			// whose inner ports are the xTR's: only the checksums apply.
			if ecm.IP.ChecksumsBad || ecm.IP.UDPChecksum == 0 {
				return control.DropECMInnerChecksum
			}
			switch ecm.Message.(type) {
			case *wire.MapRegister:
				return d.rtr.HandleRegister(r, out)
			case *wire.MapNotify:
				return d.rtr.HandleNotify(r, out)
			}
		}
		if _, ok := ecm.Message.(*wire.MapRegister); ok && ecm.ForMS && d.ms != nil {
			// An RTR relays the Map-Register of an xTR behind NAT
			// (draft-ietf-lisp-nat-traversal §5.2).
			if reason := checkInner(ecm); reason != control.Handled {
				return reason
			}
			return d.ms.HandleRelayedRegister(r, out)
		}
		req, ok := ecm.Message.(*wire.MapRequest)
		if !ok {
			return control.DropECMNotMapRequest
		}
		if reason := checkInner(ecm); reason != control.Handled {
			return reason
		}
		if req.DontReply && !req.SMR {
			return control.DropDontMapReply
		}
		r.Msg, r.ECM = req, ecm
		reason := control.Handled
		if r.ReplyTo, reason = d.replyAddr(req, ecm.SrcPort, r); reason != control.Handled {
			// A pub/sub unsubscription has only an AFI-0 ITR-RLOC (RFC
			// 9437 §6): its acknowledgement goes where it came from.
			if reason != control.DropNoITRRLOC || !req.HasXTRID || len(req.Records) == 0 || !req.Records[0].Notify {
				return reason
			}
			r.ReplyTo = netip.AddrPortFrom(r.Src.Addr(), ecm.SrcPort)
		}
		if h := d.mux.Handler(wire.TypeMapRequest); h != nil && d.forUs(req) {
			return h(r, out)
		}
	}
	if req, ok := r.Msg.(*wire.MapRequest); ok && req.Probe && d.rtr != nil {
		// An ITR probes us as the RTR of a NATed site.
		if reason, ok := d.rtr.HandleProbe(r, out); ok {
			return reason
		}
	}
	h := d.mux.Handler(t)
	if h == nil {
		return unhandled(t, r.Msg)
	}
	return h(r, out)
}

// unhandled is why a message of type t that no role here takes is dropped.
func unhandled(t wire.MessageType, m wire.Message) control.DropReason {
	switch t {
	case wire.TypeMapRegister, wire.TypeMapNotifyAck:
		return control.DropNoMapServer
	case wire.TypeInfo:
		if i, ok := m.(*wire.Info); ok && !i.Reply {
			return control.DropNoMapServer
		}
		return control.DropUnexpectedType
	case wire.TypeECM:
		return control.DropNoMappingRole
	case wire.TypeMapRequest:
		// RLOC-probes must not reach the mapping system, and ITRs reach
		// a Map-Resolver in an ECM (RFC 9301 §5.3, §7.1).
		if req, ok := m.(*wire.MapRequest); ok && req.Probe {
			return control.DropProbeToMappingSystem
		}
		return control.DropNotEncapsulated
	case wire.TypeMapReply:
		return control.DropUnexpectedMapReply
	}
	return control.DropUnexpectedType
}

// forUs tells whether an ECM'd Map-Request is one a Map-Server forwarded
// to this xTR as ETR: it asks for an EID of our database. Without the
// mapping roles every ECM'd request is for us.
func (d *Daemon) forUs(req *wire.MapRequest) bool {
	if d.ms == nil && d.mr == nil {
		return true
	}
	if len(req.Records) == 0 {
		return false
	}
	e, ok := mapping.FromWire(req.Records[0].EID, req.Records[0].MaskLen)
	return ok && d.xtr.Owns(e)
}

// checkInner enforces the inner UDP header of an ECM'd Map-Request (RFC
// 9301 §5.8): both checksums present and right, to port 4342, and from
// neither 4341 nor 0, since the Map-Reply goes back to that port.
func checkInner(ecm *wire.ECM) control.DropReason {
	if ecm.IP.ChecksumsBad || ecm.IP.UDPChecksum == 0 {
		return control.DropECMInnerChecksum
	}
	if ecm.DstPort != wire.ControlPort || ecm.SrcPort == wire.DataPort || ecm.SrcPort == 0 {
		return control.DropECMInnerPort
	}
	return control.Handled
}

// replyAddr picks where a Map-Reply to r goes: an ITR-RLOC the guard
// accepts and that is not one of our addresses (unless the request came
// from it: an xTR asking its co-located Map-Resolver), of the family the
// request came in on if there is one, else the first; the port is the one
// the ITR sent the Map-Request from. Without one it says why: no ITR-RLOC
// at all, or why the first was refused.
func (d *Daemon) replyAddr(req *wire.MapRequest, port uint16, r *control.Request) (netip.AddrPort, control.DropReason) {
	var first netip.Addr
	refused := control.DropNoITRRLOC
	for _, a := range req.ITRRLOCs {
		ip, ok := a.Addr()
		if !ok || ip.IsUnspecified() {
			continue
		}
		ip = ip.Unmap()
		reason := d.guard.Destination(ip, r.Local.Addr())
		if reason == control.Handled && !ip.IsLoopback() && ip != r.Src.Addr() && (ip == r.Local.Addr() || d.guard.Ours(ip)) {
			reason = control.DropReplyToSelf
		}
		if reason != control.Handled {
			if refused == control.DropNoITRRLOC {
				refused = reason
			}
			continue
		}
		if ip.Is4() == r.Src.Addr().Is4() {
			return netip.AddrPortFrom(ip, port), control.Handled
		}
		if !first.IsValid() {
			first = ip
		}
	}
	if first.IsValid() {
		return netip.AddrPortFrom(first, port), control.Handled
	}
	return netip.AddrPort{}, refused
}

// drop counts a packet by reason and logs malformed ones at most a few
// times a second, so a flood costs counters, not log volume.
func (d *Daemon) drop(reason control.DropReason, r *control.Request, err error) {
	d.c.drops[reason].Inc()
	d.dropEvent(reason, r)
	if err == nil {
		return
	}
	if d.malformedLog.Take(d.now().UnixNano(), 2, 10) {
		d.log.Warn("dropped control packet", "reason", reason.String(), "source", r.Src, "len", len(r.Raw), "err", err)
	}
}

// status is the summary `lispctl show status` prints.
func (d *Daemon) status() adminapi.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := adminapi.Status{Version: Version, Uptime: d.now().Sub(d.started).Seconds(), Metrics: d.metrics, Config: d.cfg.File,
		Web: d.web, DynamicEIDs: d.dyn != nil}
	s.Control = append(s.Control, d.transport.Addrs()...)
	if d.ms != nil {
		s.Roles = append(s.Roles, "map-server")
		s.Sites = len(d.cfg.MapServer.Sites)
		s.Prefixes = d.ms.Registrations()
	}
	if d.mr != nil {
		s.Roles = append(s.Roles, "map-resolver")
	}
	if d.xtr != nil {
		s.Roles = append(s.Roles, "xtr")
	}
	return s
}

// dropEvent publishes a control packet's drop, at most 5 a second (burst
// 20), and only while someone reads the stream: the counter counts them
// all, and a flood with nobody watching costs one atomic load.
func (d *Daemon) dropEvent(reason control.DropReason, r *control.Request) {
	if !d.events.Active() {
		return
	}
	d.dropEvents.Lock()
	ok := d.dropEvents.Take(d.now().UnixNano(), 5, 20)
	d.dropEvents.Unlock()
	if ok {
		d.events.Publish(adminapi.Event{Type: adminapi.EventDrop, Peer: r.Src.Addr(), Reason: reason.String()})
	}
}

// Events is the daemon's event bus.
func (d *Daemon) Events() *events.Bus { return d.events }
