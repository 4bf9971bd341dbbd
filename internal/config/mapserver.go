package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lispd/lispd/wire"
)

// parsedSite is a site with what validation across sites needs: where its
// name and prefixes were written, and its own require-nonce-increase.
type parsedSite struct {
	site        Site
	nameNode    *yaml.Node
	prefixNodes []*yaml.Node // parallel to site.EIDPrefixes
	nonce       *bool        // nil: inherit the Map-Server's setting
}

func (p *parser) mapServer(n *yaml.Node, path string) *MapServer {
	ms := &MapServer{
		RegistrationTimeout:    DefaultRegistrationTimeout,
		MaxSubscriptions:       DefaultMaxSubscriptions,
		SubscriptionTTL:        DefaultSubscriptionTTL,
		NotifyRetransmit:       DefaultNotifyRetransmit,
		RequireNonceIncrease:   DefaultRequireNonceIncrease,
		StateDirectory:         DefaultStateDirectory,
		MaxSubscriptionsPerXTR: DefaultMaxSubscriptionsPerXTR,
	}
	var sites []parsedSite
	var rtrKeyLines map[netip.Addr]int
	p.fields(n, path, map[string]setter{
		"registration-timeout":      p.positiveDurationTo(&ms.RegistrationTimeout),
		"require-nonce-increase":    p.boolTo(&ms.RequireNonceIncrease),
		"max-subscriptions":         intTo(p, &ms.MaxSubscriptions, 0, 1<<31-1),
		"max-subscriptions-per-xtr": intTo(p, &ms.MaxSubscriptionsPerXTR, 1, 1<<31-1),
		"subscription-ttl":          p.positiveDurationTo(&ms.SubscriptionTTL),
		"notify-retransmit":         p.positiveDurationTo(&ms.NotifyRetransmit),
		"state-directory": func(v *yaml.Node, at string) {
			if dir, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
				if !filepath.IsAbs(dir) {
					p.errorf(node, "%s: %q is not an absolute path", at, dir)
					return
				}
				ms.StateDirectory = filepath.Clean(dir)
			}
		},
		"sites": func(v *yaml.Node, at string) {
			p.seq(v, at, func(v *yaml.Node, at string) { sites = append(sites, p.site(v, at)) })
		},
		"lisp-sec-keys": func(v *yaml.Node, at string) { ms.LISPSECKeys, p.msSecLines = p.lispSecKeys(v, at) },
		"rtrs":          p.addrsTo(&ms.RTRs, unicastAddr),
		"rtr-keys":      func(v *yaml.Node, at string) { ms.RTRKeys, rtrKeyLines = p.msRTRKeys(v, at) },
		"store":         func(v *yaml.Node, at string) { ms.Store = p.store(v, at) },
	})
	// The Map-Server's require-nonce-increase may come after the sites in
	// the file, so per-site inheritance is resolved only now.
	for _, ps := range sites {
		ps.site.RequireNonceIncrease = ms.RequireNonceIncrease
		if ps.nonce != nil {
			ps.site.RequireNonceIncrease = *ps.nonce
		}
		ms.Sites = append(ms.Sites, ps.site)
	}
	offered := slices.Clone(ms.RTRs)
	for _, s := range ms.Sites {
		offered = append(offered, s.RTRs...)
	}
	p.checkMSRTRPeers(ms.RTRKeys, rtrKeyLines, join(path, "rtr-keys"), offered, "the RTRs of map-server.rtrs or of a site")
	p.checkSiteNames(sites, path)
	p.checkSiteOverlaps(sites, path)
	return ms
}

func (p *parser) site(n *yaml.Node, path string) parsedSite {
	var ps parsedSite
	s := &ps.site
	seen := p.fields(n, path, map[string]setter{
		"name": func(v *yaml.Node, at string) {
			if name, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
				s.Name, ps.nameNode = name, node
			}
		},
		"description": p.strTo(&s.Description),
		"keys":        func(v *yaml.Node, at string) { s.Keys = p.siteKeys(v, at) },
		"eid-prefixes": func(v *yaml.Node, at string) {
			s.EIDPrefixes, ps.prefixNodes = p.sitePrefixes(v, at)
		},
		"allowed-rlocs": p.prefixesTo(&s.AllowedRLOCs),
		"rtrs":          p.addrsTo(&s.RTRs, unicastAddr),
		"require-nonce-increase": func(v *yaml.Node, at string) {
			if b, ok := p.boolean(v, at); ok {
				ps.nonce = &b
			}
		},
	})
	p.require(n, path, seen, "name", "keys", "eid-prefixes")
	p.notEmpty(seen, path, "keys", "a site needs at least one key to authenticate its registrations")
	p.notEmpty(seen, path, "eid-prefixes", "a site needs at least one EID prefix")
	return ps
}

// notEmpty reports a list key that is present but empty.
func (p *parser) notEmpty(seen map[string]keyValue, path, key, why string) {
	if kv, ok := seen[key]; ok && kv.isEmpty() {
		p.errorf(kv.key, "%s: %s", join(path, key), why)
	}
}

// siteKeys reads a site's keys; key IDs must be distinct, since the key ID
// in a Map-Register selects the key.
func (p *parser) siteKeys(n *yaml.Node, path string) []Key {
	var keys []Key
	firstLine := map[uint8]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		var k Key
		mark := p.errorCount()
		setters := p.authSetters(map[string]setter{}, &k.ID, &k.Algorithm, &k.Secret, &k.SecretFile)
		idOK := true
		setters["key-id"] = p.checked(&idOK, setters["key-id"])
		seen := p.fields(v, at, setters)
		p.checkSecret(v, at, seen)
		ok := p.clean(mark)
		if !idOK {
			return
		}
		line := deref(v).Line // key-id 0 by default
		if kv, present := seen["key-id"]; present {
			line = kv.key.Line
		}
		if first, dup := firstLine[k.ID]; dup {
			p.errorAt(line, "%s: duplicate key-id %d (first at line %d)", join(at, "key-id"), k.ID, first)
			return
		}
		firstLine[k.ID] = line
		if ok {
			keys = append(keys, k)
		}
	})
	return keys
}

// authSetters adds the keys shared by a site's keys and an ETR's
// Map-Servers (key-id, algorithm, secret, secret-file) to setters, with
// their defaults.
func (p *parser) authSetters(setters map[string]setter, id *uint8, alg *wire.AuthAlg, secret *[]byte, file *string) map[string]setter {
	*alg = DefaultAuthAlgorithm
	if id != nil { // nil: the caller reads a key-id of another width
		setters["key-id"] = intTo(p, id, 0, 255)
	}
	setters["algorithm"] = p.algorithmTo(alg)
	setters["secret"] = func(v *yaml.Node, at string) {
		if s, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
			*secret = []byte(s)
		}
	}
	setters["secret-file"] = func(v *yaml.Node, at string) {
		if name, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
			*secret, *file = p.readSecret(node, at, name)
		}
	}
	return setters
}

// checkSecret requires exactly one of secret and secret-file.
func (p *parser) checkSecret(n *yaml.Node, path string, seen map[string]keyValue) bool {
	inline, hasInline := seen["secret"]
	file, hasFile := seen["secret-file"]
	switch {
	case hasInline && hasFile:
		second := file.key
		if inline.key.Line > file.key.Line {
			second = inline.key
		}
		p.errorf(second, "%s: give either secret or secret-file, not both", where(path))
		return false
	case !hasInline && !hasFile:
		if isMapping(n) {
			p.errorf(n, "%s: missing required key \"secret\" (or \"secret-file\")", where(path))
		}
		return false
	}
	return true
}

// authAlgorithms are the algorithms a key may use (not "none").
var authAlgorithms = []wire.AuthAlg{wire.AuthHMACSHA1, wire.AuthHMACSHA256}

func (p *parser) algorithmTo(dst *wire.AuthAlg) setter {
	names := make([]string, len(authAlgorithms))
	for i, a := range authAlgorithms {
		names[i] = a.String()
	}
	return func(v *yaml.Node, at string) {
		// Algorithm 3 is refused by name rather than as an unknown value:
		// RFC 9301 leaves its key derivation open, no other implementation
		// interoperates with a reading of it, and nothing here enables it.
		if v.Kind == yaml.ScalarNode && v.Value == wire.AuthHMACSHA256HKDF.String() {
			p.errorf(v, "%s: %s is not supported (RFC 9301 leaves its key derivation open, so no peer could verify it); use %s",
				at, v.Value, wire.AuthHMACSHA256)
			return
		}
		if s, ok := p.enum(v, at, names...); ok {
			*dst, _ = wire.ParseAuthAlg(s)
		}
	}
}

// maxSecretFile bounds what secret-file reads: a secret is short, and a
// path such as /dev/zero must not hang the parser.
const maxSecretFile = 64 << 10

// readSecret reads a secret file, relative to the configuration file's
// directory. The trailing newline editors add is not part of the secret.
func (p *parser) readSecret(n *yaml.Node, at, name string) (secret []byte, path string) {
	path = name
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.dir, path)
	}
	// Stat first: opening a FIFO or device could block or never end.
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		p.errorf(n, "%s: cannot read %s: %s", at, path, pathErrorReason(err))
		return nil, ""
	case !fi.Mode().IsRegular():
		p.errorf(n, "%s: %s is not a regular file", at, path)
		return nil, ""
	case fi.Size() > maxSecretFile:
		p.errorf(n, "%s: %s is too large for a secret (%d bytes)", at, path, fi.Size())
		return nil, ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		p.errorf(n, "%s: cannot read %s: %s", at, path, pathErrorReason(err))
		return nil, ""
	}
	data = []byte(strings.TrimRight(string(data), "\r\n"))
	if len(data) == 0 {
		p.errorf(n, "%s: %s is empty", at, path)
		return nil, ""
	}
	return data, path
}

// sitePrefixes reads a site's EID prefixes, which must be distinct, and
// returns them with the node each prefix was written at.
func (p *parser) sitePrefixes(n *yaml.Node, path string) ([]SitePrefix, []*yaml.Node) {
	var list []SitePrefix
	var nodes []*yaml.Node
	firstLine := map[EID]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		var sp SitePrefix
		mark := p.errorCount()
		prefixNode, iidOK := (*yaml.Node)(nil), true
		seen := p.fields(v, at, map[string]setter{
			"prefix": func(v *yaml.Node, at string) {
				if pfx, ok := p.prefix(v, at); ok {
					sp.Prefix, prefixNode = pfx, v
				}
			},
			"instance-id":           p.checked(&iidOK, p.instanceIDTo(&sp.InstanceID)),
			"accept-more-specifics": p.boolTo(&sp.AcceptMoreSpecifics),
		})
		p.require(v, at, seen, "prefix")
		ok := p.clean(mark)
		if prefixNode == nil || !iidOK {
			return
		}
		if first, dup := firstLine[sp.EID]; dup {
			p.errorf(prefixNode, "%s: duplicate prefix %s in instance-id %d (first at line %d)",
				join(at, "prefix"), sp.Prefix, sp.InstanceID, first)
			return
		}
		firstLine[sp.EID] = prefixNode.Line
		if ok {
			list = append(list, sp)
			nodes = append(nodes, prefixNode)
		}
	})
	return list, nodes
}

// checkSiteNames requires distinct site names: operators and lispctl name
// sites, and reload matches old and new sites by name.
func (p *parser) checkSiteNames(sites []parsedSite, path string) {
	firstLine := map[string]int{}
	for i, ps := range sites {
		if ps.nameNode == nil {
			continue
		}
		if first, dup := firstLine[ps.site.Name]; dup {
			p.errorf(ps.nameNode, "%s.sites[%d].name: duplicate site name %q (first at line %d)", path, i, ps.site.Name, first)
			continue
		}
		firstLine[ps.site.Name] = ps.nameNode.Line
	}
}

// prefixRef is one site prefix, for the overlap check.
type prefixRef struct {
	site int // index in the site list
	at   string
	eid  EID
	node *yaml.Node
}

// checkSiteOverlaps reports prefixes of different sites that overlap in
// one instance ID: a registration inside both could be claimed by either
// site, and the Map-Server could not tell whose keys apply.
//
// Two CIDR prefixes overlap exactly when one contains the other. Sorted by
// address then length, the prefixes containing the current one form a
// chain on a stack, so the check is O(n log n), not pairwise.
func (p *parser) checkSiteOverlaps(sites []parsedSite, path string) {
	var refs []prefixRef
	for i, ps := range sites {
		for j, sp := range ps.site.EIDPrefixes {
			at := fmt.Sprintf("%s.sites[%d].eid-prefixes[%d].prefix", path, i, j)
			refs = append(refs, prefixRef{site: i, at: at, eid: sp.EID, node: ps.prefixNodes[j]})
		}
	}
	slices.SortStableFunc(refs, func(a, b prefixRef) int {
		return cmp.Or(
			cmp.Compare(a.eid.InstanceID, b.eid.InstanceID),
			a.eid.Prefix.Addr().Compare(b.eid.Prefix.Addr()), // IPv4 sorts before IPv6
			cmp.Compare(a.eid.Prefix.Bits(), b.eid.Prefix.Bits()),
		)
	})
	// A prefix every site listing it opens to more-specifics is a dynamic-EID
	// range the sites share (hosts move between them): the Map-Server
	// tells their registrations apart by key, so it may repeat, and nest
	// inside a prefix of a site sharing it.
	sharers := map[EID]map[int]bool{}
	closed := map[EID]bool{}
	for i, ps := range sites {
		for _, sp := range ps.site.EIDPrefixes {
			if sharers[sp.EID] == nil {
				sharers[sp.EID] = map[int]bool{}
			}
			sharers[sp.EID][i] = true
			closed[sp.EID] = closed[sp.EID] || !sp.AcceptMoreSpecifics
		}
	}
	var chain []prefixRef
	for _, r := range refs {
		for len(chain) > 0 && !contains(chain[len(chain)-1].eid, r.eid) {
			chain = chain[:len(chain)-1]
		}
		// Report against every other site with a containing prefix (the
		// closest of each); a site may nest its own prefixes.
		reported := map[int]bool{r.site: true}
		if len(sharers[r.eid]) > 1 && !closed[r.eid] {
			for s := range sharers[r.eid] {
				reported[s] = true
			}
		}
		for i := len(chain) - 1; i >= 0; i-- {
			if other := chain[i]; !reported[other.site] {
				p.reportOverlap(sites, other, r)
				reported[other.site] = true
			}
		}
		chain = append(chain, r)
	}
}

// contains says whether outer contains inner (same instance ID and family).
func contains(outer, inner EID) bool {
	return outer.InstanceID == inner.InstanceID &&
		outer.Prefix.Bits() <= inner.Prefix.Bits() &&
		outer.Prefix.Contains(inner.Prefix.Addr())
}

// reportOverlap reports the prefix written later in the file, pointing back
// at the earlier one.
func (p *parser) reportOverlap(sites []parsedSite, a, b prefixRef) {
	if a.node.Line > b.node.Line {
		a, b = b, a
	}
	p.errorf(b.node, "%s: %s in instance-id %d overlaps %s of %s (line %d)",
		b.at, b.eid.Prefix, b.eid.InstanceID, a.eid.Prefix, siteLabel(sites, a.site), a.node.Line)
}

// siteLabel names a site in messages, by index when its name is bad.
func siteLabel(sites []parsedSite, i int) string {
	if sites[i].nameNode == nil {
		return fmt.Sprintf("sites[%d]", i)
	}
	return fmt.Sprintf("site %q", sites[i].site.Name)
}

// store reads map-server.store: "memory" (the default, nil) or a mapping
// with the one key etcd.
func (p *parser) store(n *yaml.Node, path string) *Store {
	if n.Kind == yaml.ScalarNode {
		if _, ok := p.enum(n, path, "memory"); ok {
			return nil
		}
		return nil
	}
	st := &Store{}
	seen := p.fields(n, path, map[string]setter{
		"etcd": func(v *yaml.Node, at string) { st.Etcd = p.etcdStore(v, at) },
	})
	p.require(n, path, seen, "etcd")
	if st.Etcd == nil {
		return nil
	}
	return st
}

func (p *parser) etcdStore(n *yaml.Node, path string) *EtcdStore {
	e := &EtcdStore{Prefix: DefaultEtcdPrefix, DialTimeout: DefaultEtcdDialTimeout, LeaseTTL: DefaultEtcdLeaseTTL}
	seen := p.fields(n, path, map[string]setter{
		"endpoints": func(v *yaml.Node, at string) {
			p.seq(v, at, func(v *yaml.Node, at string) {
				s, node, ok := p.str(v, at)
				if !ok {
					return
				}
				u, err := url.Parse(s)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" {
					p.errorf(node, "%s: %q is not an etcd client URL (want http://HOST:PORT or https://HOST:PORT)", at, s)
					return
				}
				e.Endpoints = append(e.Endpoints, s)
			})
		},
		"prefix": func(v *yaml.Node, at string) {
			if s, node, ok := p.str(v, at); ok {
				if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, "/") {
					p.errorf(node, "%s: %q must start and end with /", at, s)
					return
				}
				e.Prefix = s
			}
		},
		"dial-timeout": p.positiveDurationTo(&e.DialTimeout),
		"node": func(v *yaml.Node, at string) {
			if s, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
				if strings.ContainsAny(s, "/ \t") {
					p.errorf(node, "%s: %q: a node name has no '/' or spaces", at, s)
					return
				}
				e.Node = s
			}
		},
		"lease-ttl": func(v *yaml.Node, at string) {
			if d, node, ok := p.duration(v, at); ok {
				if d < 2*time.Second || d%time.Second != 0 {
					p.errorf(node, "%s: %v: want whole seconds, at least 2s", at, d)
					return
				}
				e.LeaseTTL = d
			}
		},
		"tls": func(v *yaml.Node, at string) {
			t := &EtcdTLS{}
			abs := func(dst *string) setter {
				return func(v *yaml.Node, at string) {
					if s, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
						if !filepath.IsAbs(s) {
							p.errorf(node, "%s: %q is not an absolute path", at, s)
							return
						}
						*dst = filepath.Clean(s)
					}
				}
			}
			seen := p.fields(v, at, map[string]setter{"ca": abs(&t.CA), "cert": abs(&t.Cert), "key": abs(&t.Key)})
			_, cert := seen["cert"]
			_, key := seen["key"]
			if cert != key {
				p.errorf(v, "%s: cert and key go together", at)
			}
			e.TLS = t
		},
	})
	if p.require(n, path, seen, "endpoints") && len(e.Endpoints) == 0 {
		p.errorf(n, "%s: endpoints: at least one etcd endpoint", path)
	}
	return e
}
