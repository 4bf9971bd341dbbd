package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/xtr"
)

// parseEIDOrPrefix reads "198.51.100.20" (a host) or "198.51.100.0/24".
func parseEIDOrPrefix(iid uint32, s string) (mapping.EID, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return mapping.NewEID(iid, p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return mapping.EID{}, fmt.Errorf("%q is neither an address nor a prefix", s)
	}
	return mapping.HostEID(iid, a), nil
}

// Counter is one statistic as the admin API returns it.
type Counter struct {
	Subsystem string            `json:"subsystem"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	Value     uint64            `json:"value"`
}

func (d *Daemon) routes() {
	a := d.admin
	a.HandleJSON("GET /v1/status", func(*http.Request) (any, error) { return d.status(), nil })
	a.HandleJSON("GET /v1/statistics", func(*http.Request) (any, error) {
		out := []Counter{}
		for _, s := range d.stats.Snapshot() {
			c := Counter{Subsystem: s.Desc.Subsystem, Name: s.Desc.Name, Value: s.Value}
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
	a.HandleJSON("GET /v1/site", func(r *http.Request) (any, error) {
		ms := d.MapServer()
		if ms == nil {
			return nil, admin.NotFound("this lispd is not a Map-Server")
		}
		name := r.URL.Query().Get("name")
		sites := ms.Sites(name)
		if name != "" && len(sites) == 0 {
			return nil, admin.NotFound("no site %q", name)
		}
		return sites, nil
	})
	a.HandleJSON("GET /v1/subscriptions", func(*http.Request) (any, error) {
		ms := d.MapServer()
		if ms == nil {
			return nil, admin.NotFound("this lispd is not a Map-Server")
		}
		return ms.Subscriptions(), nil
	})
	xtrRoute := func(pattern string, fn func(x *xtr.Server, r *http.Request) (any, error)) {
		a.HandleJSON(pattern, func(r *http.Request) (any, error) {
			x := d.XTR()
			if x == nil {
				return nil, admin.NotFound("this lispd is not a tunnel router")
			}
			return fn(x, r)
		})
	}
	xtrRoute("GET /v1/map-cache", func(x *xtr.Server, r *http.Request) (any, error) {
		all := x.MapCache()
		q := r.URL.Query().Get("eid")
		if q == "" {
			return all, nil
		}
		iid := uint32(0)
		if v := r.URL.Query().Get("instance-id"); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, admin.BadRequest("bad instance-id %q", v)
			}
			iid = uint32(n)
		}
		want, err := parseEIDOrPrefix(iid, q)
		if err != nil {
			return nil, admin.BadRequest("%v", err)
		}
		out := []xtr.MapCacheView{}
		for _, e := range all {
			p, _ := netip.ParsePrefix(e.EIDPrefix)
			if e.InstanceID == want.IID && p.Overlaps(want.Prefix) {
				out = append(out, e)
			}
		}
		return out, nil
	})
	a.HandleJSON("GET /v1/dynamic-eid", func(*http.Request) (any, error) {
		if d.roam == nil {
			return nil, admin.NotFound("this lispd has no dynamic-eids")
		}
		return d.roam.mgr.View(), nil
	})
	xtrRoute("GET /v1/database", func(x *xtr.Server, _ *http.Request) (any, error) { return x.DatabaseView(), nil })
	xtrRoute("GET /v1/rloc-probing", func(x *xtr.Server, _ *http.Request) (any, error) { return x.RLOCProbing(), nil })
	xtrRoute("POST /v1/clear-map-cache", func(x *xtr.Server, r *http.Request) (any, error) {
		var p *mapping.EID
		if q := r.URL.Query().Get("prefix"); q != "" {
			iid := uint32(0)
			if v := r.URL.Query().Get("instance-id"); v != "" {
				n, _ := strconv.ParseUint(v, 10, 32)
				iid = uint32(n)
			}
			e, err := parseEIDOrPrefix(iid, q)
			if err != nil {
				return nil, admin.BadRequest("%v", err)
			}
			p = &e
		}
		return map[string]int{"cleared": x.ClearMapCache(p)}, nil
	})
	a.HandleJSON("POST /v1/reload", func(*http.Request) (any, error) {
		d.mu.Lock()
		file := d.cfg.File
		d.mu.Unlock()
		cfg, err := config.Load(file)
		if err != nil {
			return nil, admin.BadRequest("%v", err)
		}
		res, err := d.Reload(cfg)
		var restart *RestartRequiredError
		switch {
		case errors.As(err, &restart):
			// Nothing changed: the running configuration conflicts with
			// the file until lispd restarts.
			return nil, &admin.Error{Status: http.StatusConflict, Msg: err.Error()}
		case err != nil:
			return nil, admin.BadRequest("%v", err)
		}
		return res, nil
	})
}
