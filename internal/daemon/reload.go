package daemon

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/mapresolver"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

// A reload (SIGHUP, lispctl reload, POST /v1/reload) applies a new
// configuration whole or not at all. It is planned first: every changed
// setting, named by its configuration key (config.Diff.Keys), is either
// one the running daemon can take on or one that needs a restart. If any
// needs a restart the reload is refused with their list and nothing
// changes; otherwise each role reconciles its own section.

// RestartRequiredError refuses a reload: these settings changed and a
// running lispd cannot take them on. The running configuration is kept.
type RestartRequiredError struct {
	Keys []string
}

func (e *RestartRequiredError) Error() string {
	verb := "needs"
	if len(e.Keys) > 1 {
		verb = "need"
	}
	return fmt.Sprintf("reload refused: %s %s a restart", strings.Join(e.Keys, ", "), verb)
}

// reloadEnv is what decides, besides the key, whether a change is live.
type reloadEnv struct {
	// dataPlane: a userspace data plane runs. Its TUN devices, routes,
	// local RLOCs, PETRs and ITR/ETR roles are set up once.
	dataPlane bool
	// logLevel: the daemon was given the log level to change.
	logLevel bool
}

// liveKey says whether a changed setting can be applied to a running
// daemon. Anything not named here needs a restart: the sockets (control,
// admin, metrics), the log format, turning a role on or off, the xTR's
// identity (xtr-id, site-id, subscribe) and its kernel side (tun, routes,
// VRFs, data plane), a dynamic EID's range, interface, mode, group or
// locators.
func liveKey(key string, env reloadEnv) bool {
	switch key {
	case "log.level":
		return env.logLevel
	case "xtr.itr", "xtr.etr", "xtr.petrs", "pitr.eid-prefixes":
		return !env.dataPlane
	case "xtr.database", "xtr.map-servers", "xtr.map-resolvers", "xtr.register-interval",
		"xtr.rloc-probing.interval", "xtr.map-cache.max-entries", "xtr.lisp-sec", "xtr.lisp-sec-key",
		// Only configuration checking reads it (a dynamic EID's interface
		// must be one of them): nothing running depends on it.
		"xtr.eid-interfaces",
		"map-resolver.map-servers", "map-resolver.negative-ttl", "map-resolver.unregistered-ttl",
		"map-resolver.lisp-sec-keys",
		// The data plane swaps its source checks at once.
		"xtr.source-rloc-check", "petr.allowed-source-eids":
		return true
	}
	if key == "map-server.state-directory" || key == "map-server.store" {
		return false // opened once, at start
	}
	if strings.HasPrefix(key, "map-server.") {
		return true // sites and every timer and limit
	}
	return strings.HasPrefix(key, "xtr.dynamic-eids[") && strings.HasSuffix(key, "].timeout")
}

// keySection is the section a key belongs to: "xtr" for
// "xtr.dynamic-eids[web].timeout".
func keySection(key string) string {
	if i := strings.IndexAny(key, ".["); i >= 0 {
		return key[:i]
	}
	return key
}

// reloadPlan is what a reload will change, decided before anything does.
type reloadPlan struct {
	cfg     *config.Config
	diff    config.Diff
	applied map[string][]string // section → keys
	xo      *xtr.Options        // the xTR's new options; nil: unchanged
	// timeouts are the dynamic-EID ranges whose timeout changes.
	timeouts map[string]time.Duration
}

func (p *reloadPlan) has(section string) bool { return len(p.applied[section]) > 0 }

// Reload applies cfg to the running daemon, or refuses it whole: the
// answer says which settings were applied, the error (a
// *RestartRequiredError when settings need a restart) why nothing was.
func (d *Daemon) Reload(cfg *config.Config) (adminapi.ReloadResult, error) {
	d.opts.withStateDirectory(cfg)
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.planReload(cfg)
	if err == nil {
		err = d.applyReload(p)
	}
	if err != nil {
		// Logged here, whoever asked (SIGHUP, lispctl, the API): the
		// operator reading the log sees why the file is not running.
		d.log.Error("reload failed", "err", err)
		return adminapi.ReloadResult{}, err
	}
	d.cfg = cfg
	res := adminapi.ReloadResult{Result: "reloaded", Applied: p.applied, SitesAdded: p.diff.SitesAdded,
		SitesRemoved: p.diff.SitesRemoved, SitesChanged: p.diff.SitesChanged}
	d.log.Info("configuration reloaded", "applied", p.diff.Keys, "sites-added", p.diff.SitesAdded,
		"sites-removed", p.diff.SitesRemoved, "sites-changed", p.diff.SitesChanged)
	return res, nil
}

// planReload decides what a reload to cfg does, changing nothing.
func (d *Daemon) planReload(cfg *config.Config) (*reloadPlan, error) {
	p := &reloadPlan{cfg: cfg, diff: config.Compare(d.cfg, cfg), applied: map[string][]string{}}
	env := reloadEnv{dataPlane: d.dp != nil, logLevel: d.level != nil}
	var restart []string
	for _, k := range p.diff.Keys {
		if liveKey(k, env) {
			p.applied[keySection(k)] = append(p.applied[keySection(k)], k)
		} else {
			restart = append(restart, k)
		}
	}
	if len(restart) > 0 {
		return nil, &RestartRequiredError{Keys: restart}
	}
	if d.xtr != nil && p.has("xtr") {
		xo, err := xtrOptions(cfg)
		if err != nil {
			return nil, fmt.Errorf("reload refused: %w", err)
		}
		if cfg.XTR == nil || !cfg.XTR.HasXTRID {
			xo.XTRID = d.xtr.Options().XTRID // the one picked at start-up stays
		}
		if keys := d.xtrRestartKeys(p, &xo); len(keys) > 0 {
			return nil, &RestartRequiredError{Keys: keys}
		}
		p.xo = &xo
	}
	return p, nil
}

// xtrRestartKeys finds the changes that look live by key but reach state
// set up once: the data plane's local RLOCs and instance TUNs, and the
// locators dynamic EIDs inherit from the database.
func (d *Daemon) xtrRestartKeys(p *reloadPlan, xo *xtr.Options) []string {
	changed := func(keys ...string) []string {
		var out []string
		for _, k := range keys {
			if slices.Contains(p.diff.Keys, k) {
				out = append(out, k)
			}
		}
		return out
	}
	old := d.xtr.Options()
	if d.dp != nil {
		// Local RLOCs change live behind unchanged outer sources (see
		// dataplane.Engine.SetLocalRLOCs).
		o4, o6 := dataplane.OuterSources(old.LocalRLOCs)
		if n4, n6 := dataplane.OuterSources(xo.LocalRLOCs); n4 != o4 || n6 != o6 {
			return changed("xtr.database", "xtr.map-resolvers", "xtr.petrs")
		}
		if !maps.Equal(instanceIDs(old.Database), instanceIDs(xo.Database)) {
			return changed("xtr.database")
		}
	}
	if d.dyn == nil {
		return nil
	}
	p.timeouts = map[string]time.Duration{}
	running := d.dyn.mgr.Ranges()
	for _, r := range dynamicRanges(p.cfg.XTR, xo.Database) {
		i := slices.IndexFunc(running, func(o dynamiceid.Range) bool { return o.Name == r.Name })
		if i < 0 {
			continue // a new range: refused by its key already
		}
		o := running[i]
		if o.Timeout != r.Timeout {
			p.timeouts[r.Name] = r.Timeout
		}
		if !slices.Equal(o.Locators, r.Locators) {
			// The range registers hosts with the locators of the database
			// entry covering it, which the reload changes.
			return changed("xtr.database")
		}
	}
	return nil
}

func sameAddrs(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

func instanceIDs(db []xtr.DatabaseEntry) map[uint32]bool {
	out := map[uint32]bool{0: true}
	for _, e := range db {
		out[e.EID.IID] = true
	}
	return out
}

// applyReload carries a plan out. The xTR goes first: it is the one role
// that may still refuse, and then nothing else has changed.
func (d *Daemon) applyReload(p *reloadPlan) error {
	cfg := p.cfg
	if p.xo != nil {
		if d.dp != nil && !sameAddrs(d.xtr.Options().LocalRLOCs, p.xo.LocalRLOCs) {
			if err := d.dp.programmer().SetLocalRLOCs(p.xo.LocalRLOCs); err != nil {
				return fmt.Errorf("reload refused: %w", err)
			}
		}
		if err := d.xtr.Reconfigure(*p.xo); err != nil {
			if d.dp != nil {
				_ = d.dp.programmer().SetLocalRLOCs(d.xtr.Options().LocalRLOCs)
			}
			return fmt.Errorf("reload refused: %w", err)
		}
	}
	if d.dp != nil {
		d.dp.programmer().SetSourcePolicy(sourcePolicy(cfg))
	}
	for name, t := range p.timeouts {
		d.dyn.mgr.SetTimeout(name, t)
	}
	if d.level != nil {
		d.level.Set(cfg.Log.Level)
	}
	if d.ms != nil && (p.has("map-server") || p.has("map-resolver")) {
		changed := map[string]bool{}
		for _, n := range p.diff.SitesChanged {
			changed[n] = true
		}
		d.ms.Reconfigure(sitesFromConfig(cfg.MapServer), changed, msOptions(cfg))
	}
	// After the Map-Server: the resolver learns the sites' prefixes from it.
	if d.mr != nil && (p.has("map-server") || p.has("map-resolver")) {
		d.mr.Reconfigure(delegationsFromConfig(cfg.MapResolver), mrOptions(cfg))
	}
	return nil
}

// msOptions are the Map-Server's settings from cfg; the daemon adds its
// clock, sender, statistics and log.
func msOptions(cfg *config.Config) mapserver.Options {
	return mapserver.Options{
		RegistrationTimeout:    cfg.MapServer.RegistrationTimeout,
		MaxSubscriptions:       cfg.MapServer.MaxSubscriptions,
		SubscriptionTTL:        cfg.MapServer.SubscriptionTTL,
		NotifyRetransmit:       cfg.MapServer.NotifyRetransmit,
		MaxSubscriptionsPerXTR: cfg.MapServer.MaxSubscriptionsPerXTR,
		UnregisteredTTL:        minutes(mrUnregisteredTTL(cfg)),
		LISPSECKeys:            lispSecKeys(cfg),
		RTRs:                   cfg.MapServer.RTRs,
		RTRKeys:                msRTRKeys(cfg.MapServer.RTRKeys),
	}
}

// msRTRKeys are MS-RTR keys by peer address, nil when none.
func msRTRKeys(list []config.MSRTRKey) map[netip.Addr]wire.RTRKey {
	if len(list) == 0 {
		return nil
	}
	keys := make(map[netip.Addr]wire.RTRKey, len(list))
	for _, k := range list {
		keys[k.Address] = wire.RTRKey{ID: k.ID, Algorithm: k.Algorithm, Secret: k.Secret}
	}
	return keys
}

// mrOptions are the Map-Resolver's settings from cfg.
func mrOptions(cfg *config.Config) mapresolver.Options {
	return mapresolver.Options{NegativeTTL: minutes(cfg.MapResolver.NegativeTTL), LISPSECKeys: lispSecKeys(cfg)}
}

// lispSecKeys are the keys shared with ITRs for LISP-SEC, nil when none:
// the Map-Server's and the Map-Resolver's together, since in one lispd
// both answer the same ITRs (config refuses a key ID with two secrets).
func lispSecKeys(cfg *config.Config) lispsec.Keys {
	var keys lispsec.Keys
	add := func(list []config.LISPSECKey) {
		for _, k := range list {
			if keys == nil {
				keys = lispsec.Keys{}
			}
			keys[k.ID] = k.Secret
		}
	}
	if cfg.MapServer != nil {
		add(cfg.MapServer.LISPSECKeys)
	}
	if cfg.MapResolver != nil {
		add(cfg.MapResolver.LISPSECKeys)
	}
	return keys
}
