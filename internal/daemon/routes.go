package daemon

import (
	"net/http"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/config"
)

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
	a.HandleJSON("POST /v1/reload", func(*http.Request) (any, error) {
		d.mu.Lock()
		file := d.cfg.File
		d.mu.Unlock()
		cfg, err := config.Load(file)
		if err != nil {
			return nil, admin.BadRequest("%v", err)
		}
		if err := d.Reload(cfg); err != nil {
			return nil, admin.BadRequest("%v", err)
		}
		return map[string]string{"result": "reloaded"}, nil
	})
}
