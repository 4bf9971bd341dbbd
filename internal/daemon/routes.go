package daemon

import (
	"errors"
	"net/http"
	"net/netip"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/xtr"
)

// routes registers the admin API: every path and query is adminapi's.
func (d *Daemon) routes() {
	a := d.admin
	get := func(path string, fn func(r *http.Request) (any, error)) { a.HandleJSON("GET "+path, fn) }
	post := func(path string, fn func(r *http.Request) (any, error)) { a.HandleJSON("POST "+path, fn) }
	a.HandleEvents(d.events)
	get(adminapi.PathStatus, func(*http.Request) (any, error) { return d.status(), nil })
	get(adminapi.PathStatistics, func(*http.Request) (any, error) {
		out := []adminapi.Counter{}
		for _, s := range d.stats.Snapshot() {
			c := adminapi.Counter{Subsystem: s.Desc.Subsystem, Name: s.Desc.Name, Value: s.Value}
			if len(s.Desc.Labels) > 0 {
				c.Labels = map[string]string{}
				for _, l := range s.Desc.Labels {
					c.Labels[l[0]] = l[1]
				}
			}
			out = append(out, c)
		}
		return out, nil
	})
	get(adminapi.PathDataPlane, func(*http.Request) (any, error) {
		if d.dp == nil {
			return nil, adminapi.NotFound("this lispd has no data plane")
		}
		return d.dp.view(), nil
	})
	get(adminapi.PathSite, func(r *http.Request) (any, error) {
		ms := d.MapServer()
		if ms == nil {
			return nil, adminapi.NotFound("this lispd is not a Map-Server")
		}
		name := r.URL.Query().Get(adminapi.KeyName)
		sites := ms.Sites(name)
		if name != "" && len(sites) == 0 {
			return nil, adminapi.NotFound("no site %q", name)
		}
		return sites, nil
	})
	get(adminapi.PathSiteMoves, func(r *http.Request) (any, error) {
		ms := d.MapServer()
		if ms == nil {
			return nil, adminapi.NotFound("this lispd is not a Map-Server")
		}
		name := r.URL.Query().Get(adminapi.KeyName)
		if name != "" && len(ms.Sites(name)) == 0 {
			return nil, adminapi.NotFound("no site %q", name)
		}
		return ms.Moves(name), nil
	})
	get(adminapi.PathCluster, func(*http.Request) (any, error) {
		if d.cluster == nil {
			return nil, adminapi.NotFound("this lispd is not a Map-Server of a cluster (map-server.store)")
		}
		return d.cluster.View(), nil
	})
	get(adminapi.PathSubscriptions, func(*http.Request) (any, error) {
		ms := d.MapServer()
		if ms == nil {
			return nil, adminapi.NotFound("this lispd is not a Map-Server")
		}
		return ms.Subscriptions(), nil
	})
	xtrRoute := func(method, path string, fn func(x *xtr.Server, r *http.Request) (any, error)) {
		a.HandleJSON(method+" "+path, func(r *http.Request) (any, error) {
			x := d.XTR()
			if x == nil {
				return nil, adminapi.NotFound("this lispd is not a tunnel router")
			}
			return fn(x, r)
		})
	}
	xtrRoute(http.MethodGet, adminapi.PathMapCache, func(x *xtr.Server, r *http.Request) (any, error) {
		q, err := adminapi.ParseMapCacheQuery(r.URL.Query())
		if err != nil {
			return nil, err
		}
		out := []adminapi.MapCacheEntry{}
		for _, e := range x.MapCache() {
			if q.Selects(e.EID) {
				out = append(out, e)
			}
		}
		return out, nil
	})
	get(adminapi.PathRTR, func(*http.Request) (any, error) {
		if d.rtr == nil {
			return nil, adminapi.NotFound("this lispd is not an RTR")
		}
		return d.rtr.View(), nil
	})
	get(adminapi.PathDynamicEID, func(r *http.Request) (any, error) {
		q, err := adminapi.ParseDynamicEIDQuery(r.URL.Query())
		if err != nil {
			return nil, err
		}
		if d.dyn == nil {
			return nil, adminapi.NotFound("this lispd has no dynamic-eids")
		}
		out := []adminapi.DynamicEIDRange{}
		for _, rg := range d.dyn.mgr.View() {
			if q.Selects(rg) {
				out = append(out, rg)
			}
		}
		return out, nil
	})
	xtrRoute(http.MethodGet, adminapi.PathDatabase, func(x *xtr.Server, _ *http.Request) (any, error) {
		return x.DatabaseView(), nil
	})
	xtrRoute(http.MethodGet, adminapi.PathNAT, func(x *xtr.Server, _ *http.Request) (any, error) {
		return x.NAT(), nil
	})
	xtrRoute(http.MethodGet, adminapi.PathRLOCProbing, func(x *xtr.Server, _ *http.Request) (any, error) {
		return x.RLOCProbing(), nil
	})
	xtrRoute(http.MethodPost, adminapi.PathClearMapCache, func(x *xtr.Server, r *http.Request) (any, error) {
		q, err := adminapi.ParseClearMapCacheQuery(r.URL.Query())
		if err != nil {
			return nil, err
		}
		var n int
		switch {
		case q.EID.IsValid():
			e := mapping.NewEID(q.IID(), q.EID)
			n = x.ClearMapCache(&e)
		case q.InstanceID != nil: // one instance ID, both families
			for _, all := range []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0), netip.PrefixFrom(netip.IPv6Unspecified(), 0)} {
				e := mapping.NewEID(*q.InstanceID, all)
				n += x.ClearMapCache(&e)
			}
		default:
			n = x.ClearMapCache(nil)
		}
		return adminapi.ClearResult{Cleared: n}, nil
	})
	post(adminapi.PathReload, func(*http.Request) (any, error) {
		d.mu.Lock()
		file := d.cfg.File
		d.mu.Unlock()
		cfg, err := config.Load(file)
		if err != nil {
			return nil, adminapi.BadRequest("%v", err)
		}
		res, err := d.Reload(cfg)
		var restart *RestartRequiredError
		var xtrRestart *xtr.RestartError
		switch {
		case errors.As(err, &restart), errors.As(err, &xtrRestart):
			// Nothing changed: the running configuration conflicts with
			// the file until lispd restarts.
			return nil, &adminapi.Error{Status: http.StatusConflict, Msg: err.Error()}
		case err != nil:
			return nil, adminapi.BadRequest("%v", err)
		}
		return res, nil
	})
}
