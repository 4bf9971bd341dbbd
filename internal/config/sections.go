package config

import (
	"log/slog"
	"net/netip"

	"go.yaml.in/yaml/v3"
)

// config reads the whole document. Defaults are filled in first and each
// key present overwrites its own field, so an absent key keeps its default.
func (p *parser) config(root *yaml.Node) *Config {
	c := &Config{
		Log:   Log{Level: slog.LevelInfo, Format: LogFormatText},
		Admin: Admin{Socket: DefaultAdminSocket},
		Control: Control{
			Addresses: []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()},
			Port:      DefaultControlPort,
			RateLimit: RateLimit{
				PerSource: DefaultPerSourceRate, PerSourceBurst: DefaultPerSourceBurst,
				Global: DefaultGlobalRate, GlobalBurst: DefaultGlobalBurst,
				PerDestination: DefaultPerDestinationRate, PerDestinationBurst: DefaultPerDestinationBurst,
			},
		},
	}
	p.fields(root, "", map[string]setter{
		"log":     func(v *yaml.Node, at string) { p.log(v, at, &c.Log) },
		"admin":   func(v *yaml.Node, at string) { p.admin(v, at, &c.Admin) },
		"control": func(v *yaml.Node, at string) { p.control(v, at, &c.Control) },
		"map-server": func(v *yaml.Node, at string) {
			c.MapServer = p.mapServer(v, at)
		},
		"map-resolver": func(v *yaml.Node, at string) {
			c.MapResolver = p.mapResolver(v, at)
		},
		"xtr":  func(v *yaml.Node, at string) { c.XTR = p.xtr(v, at) },
		"pitr": func(v *yaml.Node, at string) { c.PITR = p.pitr(v, at) },
		"rtr": func(v *yaml.Node, at string) {
			c.RTR = &RTR{RegistrationTimeout: DefaultRTRRegistrationTimeout}
			var keyLines map[netip.Addr]int
			seen := p.fields(v, at, map[string]setter{
				"map-servers":          p.addrsTo(&c.RTR.MapServers, unicastAddr),
				"registration-timeout": p.positiveDurationTo(&c.RTR.RegistrationTimeout),
				"map-server-keys": func(v *yaml.Node, at string) {
					c.RTR.MapServerKeys, keyLines = p.msRTRKeys(v, at)
				},
			})
			p.require(v, at, seen, "map-servers")
			// An RTR relays only to its Map-Servers: with none it would
			// refuse every registration.
			p.notEmpty(seen, at, "map-servers", "needs at least one Map-Server")
			p.checkMSRTRPeers(c.RTR.MapServerKeys, keyLines, join(at, "map-server-keys"), c.RTR.MapServers, "rtr.map-servers")
		},
		"petr": func(v *yaml.Node, at string) {
			c.PETR = &PETR{}
			p.fields(v, at, map[string]setter{
				"allowed-source-eids": func(v *yaml.Node, at string) { c.PETR.AllowedSourceEIDs = p.eids(v, at) },
			})
		},
	})
	p.checkLISPSECKeys(c, p.msSecLines, p.mrSecLines)
	// Only when nothing else is wrong: a misspelt role key, say, already
	// explains why no role is on.
	noRole := c.MapServer == nil && c.MapResolver == nil && c.XTR == nil && c.PITR == nil && c.PETR == nil && c.RTR == nil
	if noRole && len(p.errs) == 0 {
		line := 1 // an empty file has no node to point at
		if root != nil {
			line = root.Line
		}
		p.errorAt(line, "no LISP role configured: add at least one of map-server, map-resolver, xtr, pitr, petr or rtr")
	}
	return c
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

func (p *parser) log(n *yaml.Node, path string, l *Log) {
	p.fields(n, path, map[string]setter{
		"level": func(v *yaml.Node, at string) {
			if s, ok := p.enum(v, at, "debug", "info", "warn", "error"); ok {
				l.Level = logLevels[s]
			}
		},
		"format": func(v *yaml.Node, at string) {
			if s, ok := p.enum(v, at, LogFormatText, LogFormatJSON); ok {
				l.Format = s
			}
		},
	})
}

func (p *parser) admin(n *yaml.Node, path string, a *Admin) {
	p.fields(n, path, map[string]setter{
		"socket":  p.nonEmptyTo(&a.Socket),
		"metrics": p.hostPortTo(&a.Metrics),
		"pprof":   p.hostPortTo(&a.PProf),
		"web":     p.hostPortTo(&a.Web),
	})
}

func (p *parser) control(n *yaml.Node, path string, c *Control) {
	seen := p.fields(n, path, map[string]setter{
		"addresses":  p.addrsTo(&c.Addresses, anyAddr),
		"port":       intTo(p, &c.Port, 0, 65535),
		"rate-limit": func(v *yaml.Node, at string) { p.rateLimit(v, at, &c.RateLimit) },
	})
	if kv, ok := seen["addresses"]; ok && kv.isEmpty() {
		p.errorf(kv.key, "%s: empty list; leave the key out to listen on all addresses", join(path, "addresses"))
	}
}

func (p *parser) rateLimit(n *yaml.Node, path string, r *RateLimit) {
	p.fields(n, path, map[string]setter{
		"per-source":            p.rateTo(&r.PerSource),
		"per-source-burst":      intTo(p, &r.PerSourceBurst, 1, 1<<31-1),
		"global":                p.rateTo(&r.Global),
		"global-burst":          intTo(p, &r.GlobalBurst, 1, 1<<31-1),
		"per-destination":       p.rateTo(&r.PerDestination),
		"per-destination-burst": intTo(p, &r.PerDestinationBurst, 1, 1<<31-1),
	})
}

func (p *parser) pitr(n *yaml.Node, path string) *PITR {
	var pitr PITR
	seen := p.fields(n, path, map[string]setter{
		"eid-prefixes": p.prefixesTo(&pitr.EIDPrefixes),
	})
	if p.require(n, path, seen, "eid-prefixes") && seen["eid-prefixes"].isEmpty() {
		p.errorf(seen["eid-prefixes"].key, "%s: a PITR needs at least one EID prefix to attract traffic for", join(path, "eid-prefixes"))
	}
	return &pitr
}
