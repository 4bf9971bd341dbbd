// Package daemon assembles lispd from its configuration: the control
// transport, the roles the config turns on, the admin API and the timers.
// It owns dispatch: every control packet is pre-filtered, rate-limited,
// decoded once and handed to the role that handles its type.
package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapresolver"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/mobility"
	"github.com/lispd/lispd/internal/stats"
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
	// Devices, when set, are the userspace data plane's TUNs and underlay
	// instead of the kernel's, and the host's addresses and routes are left
	// alone: tests join daemons in memory (dataplane/dptest) without root.
	Devices *Devices
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
	log       *slog.Logger
	now       func() time.Time
	started   time.Time
	stats     *stats.Registry
	transport *control.Transport
	admin     *admin.Server
	metrics   string

	mu  sync.Mutex // guards cfg against Reload
	cfg *config.Config
	// The roles are made once in New and never replaced (a reload that
	// would turn one on or off is refused), so the packet path reads them
	// without a lock.
	ms  *mapserver.Server
	mr  *mapresolver.Resolver
	xtr *xtr.Server
	dp  *userspaceDP // nil without a userspace data plane
	// roam is host mobility (dynamic EIDs); nil without roaming ranges.
	roam *roaming

	limRequest, limRegister, limOther *limiter
	c                                 counters
	malformedLog                      bucket

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a daemon from cfg and opens its sockets; Run starts it.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Daemon{log: opts.Log, now: opts.Now, stats: stats.NewRegistry(), cfg: cfg}
	d.started = d.now()
	d.c = newCounters(d.stats)
	rl := cfg.Control.RateLimit
	// Map-Requests get the configured budget; registrations and the rest
	// get their own, so that no class can starve another.
	d.limRequest = newLimiter(rl.PerSource, rl.PerSourceBurst, rl.Global, rl.GlobalBurst)
	d.limRegister = newLimiter(rl.PerSource, rl.PerSourceBurst, rl.Global, rl.GlobalBurst)
	d.limOther = newLimiter(rl.PerSource, rl.PerSourceBurst, rl.Global, rl.GlobalBurst)
	t, err := control.Listen(cfg.Control.Addresses, cfg.Control.Port, d.log)
	if err != nil {
		return nil, err
	}
	d.transport = t
	if err := d.buildRoles(cfg, opts); err != nil {
		t.Close()
		return nil, err
	}
	d.admin = admin.New(d.log)
	d.routes()
	if cfg.Admin.Socket != "" {
		if err := d.admin.ListenUnix(cfg.Admin.Socket); err != nil {
			t.Close()
			return nil, err
		}
	}
	if cfg.Admin.Metrics != "" {
		a, err := d.admin.ListenMetrics(cfg.Admin.Metrics, d.stats)
		if err != nil {
			t.Close()
			d.admin.Close()
			return nil, err
		}
		d.metrics = a.String()
	}
	return d, nil
}

func (d *Daemon) buildRoles(cfg *config.Config, opts Options) error {
	if cfg.MapServer != nil {
		d.ms = mapserver.New(sitesFromConfig(cfg.MapServer), mapserver.Options{
			RegistrationTimeout:  cfg.MapServer.RegistrationTimeout,
			MaxSubscriptions:     cfg.MapServer.MaxSubscriptions,
			NotifyRetransmit:     cfg.MapServer.NotifyRetransmit,
			RequireNonceIncrease: cfg.MapServer.RequireNonceIncrease,
			UnregisteredTTL:      minutes(mrUnregisteredTTL(cfg)),
			Now:                  d.now,
			Timers:               mapserver.SenderFunc(d.sendNow),
			Stats:                d.stats,
			Log:                  d.log,
		})
	}
	if cfg.MapResolver != nil {
		d.mr = mapresolver.New(d.ms, delegationsFromConfig(cfg.MapResolver), mapresolver.Options{
			NegativeTTL: minutes(cfg.MapResolver.NegativeTTL),
			Stats:       d.stats,
			Log:         d.log,
		})
	}
	if cfg.XTR != nil || cfg.PITR != nil {
		xo, err := xtrOptions(cfg)
		if err != nil {
			return err
		}
		xo.Now, xo.Timers, xo.Stats, xo.Log = d.now, mapserver.SenderFunc(d.sendNow), d.stats, d.log
		xo.DataPlane = opts.DataPlane
		if xo.DataPlane == nil && cfg.XTR != nil && cfg.XTR.DataPlane == config.DataPlaneUserspace {
			dp, err := d.startDataPlane(cfg, &xo, opts.Devices)
			if err != nil {
				return err
			}
			d.dp = dp
			xo.DataPlane = programmer{dp.engine}
		}
		xo.OnMovedAway = func(eid mapping.EID, to mapping.Mapping) {
			if d.roam != nil {
				d.roam.mgr.MovedAway(eid, to)
			}
		}
		d.xtr = xtr.New(xo)
		if d.dp != nil {
			d.dp.hooks.x.Store(d.xtr)
		}
		if cfg.XTR != nil && len(cfg.XTR.DynamicEIDs) > 0 {
			var dpm mobility.DataPlane
			if d.dp != nil {
				dpm = d.dp.engine
			}
			ro, err := d.startRoaming(cfg, xo.Database, d.xtr, dpm)
			if err != nil {
				if d.dp != nil {
					_ = d.dp.close()
				}
				return err
			}
			d.roam = ro
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
		ms := mapserver.Site{Name: s.Name, Description: s.Description, RequireNonceIncrease: s.RequireNonceIncrease,
			AllowedRLOCs: s.AllowedRLOCs}
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
	d.admin.Close()
	if d.roam != nil {
		if err := d.roam.close(); err != nil {
			d.log.Warn("mobility shutdown", "err", err)
		}
	}
	if d.dp != nil {
		if err := d.dp.close(); err != nil {
			d.log.Warn("data plane shutdown", "err", err)
		}
	}
	d.log.Info("lispd stopped")
	return nil
}

// Stop ends Run.
func (d *Daemon) Stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// timers drives the roles' clocks: expiry and retransmission.
func (d *Daemon) timers(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ms := d.MapServer(); ms != nil {
				ms.Tick()
			}
			if x := d.XTR(); x != nil {
				x.Tick()
			}
			if d.roam != nil {
				d.roam.mgr.Tick()
			}
		}
	}
}

func (d *Daemon) sendNow(b []byte, src netip.Addr, to netip.AddrPort) {
	if err := d.transport.Send(b, src, to); err != nil {
		d.log.Debug("send", "to", to, "err", err)
		return
	}
	d.c.tx.Inc()
}

// Reload applies a new configuration: sites are diffed so that unchanged
// sites keep their registrations; the Map-Resolver's delegations are
// replaced. Control and admin settings need a restart.
func (d *Daemon) Reload(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	diff := config.Compare(d.cfg, cfg)
	if (d.cfg.MapServer == nil) != (cfg.MapServer == nil) || (d.cfg.MapResolver == nil) != (cfg.MapResolver == nil) {
		return errors.New("reload cannot turn roles on or off; restart lispd")
	}
	if diff.ControlChanged || diff.AdminChanged {
		d.log.Warn("control and admin settings change only on restart")
	}
	if d.ms != nil {
		changed := map[string]bool{}
		for _, n := range diff.SitesChanged {
			changed[n] = true
		}
		d.ms.Reload(sitesFromConfig(cfg.MapServer), changed)
	}
	if d.mr != nil {
		d.mr.Reload(delegationsFromConfig(cfg.MapResolver))
	}
	d.cfg = cfg
	d.log.Info("configuration reloaded", "sites-added", diff.SitesAdded, "sites-removed", diff.SitesRemoved,
		"sites-changed", diff.SitesChanged)
	return nil
}

// handle is the dispatch of every received control packet.
func (d *Daemon) handle(p *control.Packet, out *control.Out) {
	d.c.rxPackets.Inc()
	if len(p.Data) < 4 {
		d.drop("too-short", p, nil)
		return
	}
	t := wire.MessageType(p.Data[0] >> 4)
	lim := d.limOther
	switch t {
	case wire.TypeMapRequest, wire.TypeECM:
		lim = d.limRequest
	case wire.TypeMapRegister, wire.TypeMapNotifyAck:
		lim = d.limRegister
	}
	if ok, reason := lim.allow(p.Src.Addr(), d.now().UnixNano()); !ok {
		d.c.dropped(reason).Inc()
		return
	}
	m, err := wire.Decode(p.Data)
	if err != nil {
		d.drop("malformed", p, err)
		return
	}
	d.c.received(m.Type()).Inc()
	before := out.Len()
	d.dispatch(m, p, out)
	d.c.tx.Add(uint64(out.Len() - before))
}

func (d *Daemon) dispatch(m wire.Message, p *control.Packet, out *control.Out) {
	ms, mr, x := d.ms, d.mr, d.xtr
	switch m := m.(type) {
	case *wire.MapRegister:
		if ms == nil {
			d.drop("no-map-server", p, nil)
			return
		}
		ms.HandleMapRegister(p.Data, m, p.Src, p.Dst.Addr(), out)
	case *wire.MapNotifyAck:
		if ms == nil {
			d.drop("no-map-server", p, nil)
			return
		}
		ms.HandleMapNotifyAck(p.Data, m, p.Src)
	case *wire.ECM:
		req, ok := m.Message.(*wire.MapRequest)
		if !ok {
			d.drop("ecm-not-map-request", p, nil)
			return
		}
		r := &mapserver.Request{Msg: req, ECM: p.Data, Local: p.Dst.Addr()}
		var found bool
		if r.ReplyTo, found = replyAddr(req, m.SrcPort, p.Src); !found {
			// A pub/sub unsubscription has only an AFI-0 ITR-RLOC (RFC
			// 9437 §6): its acknowledgement goes where it came from.
			if !req.HasXTRID || len(req.Records) == 0 || !req.Records[0].Notify {
				d.drop("no-itr-rloc", p, nil)
				return
			}
			r.ReplyTo = netip.AddrPortFrom(p.Src.Addr(), m.SrcPort)
		}
		switch {
		case x != nil && d.forUs(m):
			// A Map-Server forwarded an ITR's request to us, the ETR.
			x.HandleMapRequest(req, p.Src, p.Dst.Addr(), m.SrcPort, true, out)
		case mr != nil:
			mr.HandleRequest(r, out)
		case ms != nil:
			if !ms.HandleMapRequest(r, out) {
				d.drop("eid-not-served", p, nil)
			}
		default:
			d.drop("no-mapping-role", p, nil)
		}
	case *wire.MapRequest:
		if x != nil {
			// RLOC-probes and SMRs come straight to the xTR.
			x.HandleMapRequest(m, p.Src, p.Dst.Addr(), p.Src.Port(), false, out)
			return
		}
		// RLOC-probes must not reach the mapping system, and ITRs reach
		// a Map-Resolver in an ECM (RFC 9301 §5.3, §7.1).
		if m.Probe {
			d.drop("probe-to-mapping-system", p, nil)
		} else {
			d.drop("map-request-not-encapsulated", p, nil)
		}
	case *wire.MapReply:
		if x == nil {
			d.drop("unexpected-map-reply", p, nil)
			return
		}
		x.HandleMapReply(m, p.Src)
	case *wire.MapNotify:
		if x == nil {
			d.drop("unexpected-type", p, nil)
			return
		}
		x.HandleMapNotify(p.Data, m, p.Src, p.Dst.Addr(), out)
	default:
		d.drop("unexpected-type", p, nil)
	}
}

// forUs tells whether an ECM'd Map-Request is one a Map-Server forwarded
// to this xTR as ETR: it asks for an EID of our database. Without the
// mapping roles every ECM'd request is for us.
func (d *Daemon) forUs(m *wire.ECM) bool {
	if d.ms == nil && d.mr == nil {
		return true
	}
	req := m.Message.(*wire.MapRequest)
	if len(req.Records) == 0 {
		return false
	}
	e, ok := mapping.FromWire(req.Records[0].EID, req.Records[0].MaskLen)
	return ok && d.xtr.Owns(e)
}

// replyAddr picks where a Map-Reply goes: an ITR-RLOC of the family the
// request came in on if there is one, else the first usable one; the port
// is the one the ITR sent the Map-Request from.
func replyAddr(req *wire.MapRequest, port uint16, from netip.AddrPort) (netip.AddrPort, bool) {
	var first netip.Addr
	for _, a := range req.ITRRLOCs {
		ip, ok := a.Addr()
		if !ok || ip.IsUnspecified() {
			continue
		}
		if ip.Is4() == from.Addr().Is4() {
			return netip.AddrPortFrom(ip, port), true
		}
		if !first.IsValid() {
			first = ip
		}
	}
	if first.IsValid() {
		return netip.AddrPortFrom(first, port), true
	}
	return netip.AddrPort{}, false
}

// drop counts a packet by reason and logs malformed ones at most a few
// times a second, so a flood costs counters, not log volume.
func (d *Daemon) drop(reason string, p *control.Packet, err error) {
	d.c.dropped(reason).Inc()
	if err == nil {
		return
	}
	if d.malformedLog.take(d.now().UnixNano(), 2, 10) {
		d.log.Warn("dropped control packet", "reason", reason, "source", p.Src, "len", len(p.Data), "err", err)
	}
}

// Status is the summary `lispctl status` shows.
type Status struct {
	Version  string   `json:"version"`
	Uptime   float64  `json:"uptime-seconds"`
	Roles    []string `json:"roles"`
	Control  []string `json:"control-addresses"`
	Metrics  string   `json:"metrics,omitempty"`
	Config   string   `json:"config-file,omitempty"`
	Sites    int      `json:"sites,omitempty"`
	Prefixes int      `json:"registered-prefixes,omitempty"`
}

func (d *Daemon) status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Status{Version: Version, Uptime: d.now().Sub(d.started).Seconds(), Metrics: d.metrics, Config: d.cfg.File}
	for _, a := range d.transport.Addrs() {
		s.Control = append(s.Control, a.String())
	}
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
