package config

import (
	"net/netip"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

func (p *parser) mapResolver(n *yaml.Node, path string) *MapResolver {
	mr := &MapResolver{NegativeTTL: DefaultNegativeTTL, UnregisteredTTL: DefaultUnregisteredTTL}
	p.fields(n, path, map[string]setter{
		"map-servers":      func(v *yaml.Node, at string) { mr.MapServers = p.delegations(v, at) },
		"negative-ttl":     p.ttlTo(&mr.NegativeTTL),
		"unregistered-ttl": p.ttlTo(&mr.UnregisteredTTL),
		"lisp-sec-keys":    func(v *yaml.Node, at string) { mr.LISPSECKeys, p.mrSecLines = p.lispSecKeys(v, at) },
	})
	return mr
}

// delegations reads the remote Map-Servers a Map-Resolver forwards to,
// each listed once.
func (p *parser) delegations(n *yaml.Node, path string) []Delegation {
	var list []Delegation
	firstLine := map[netip.Addr]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		var d Delegation
		var addrNode *yaml.Node
		mark := p.errorCount()
		seen := p.fields(v, at, map[string]setter{
			"address": func(v *yaml.Node, at string) {
				if a, ok := p.addr(v, at, unicastAddr); ok {
					d.Address, addrNode = a, v
				}
			},
			"eid-prefixes": func(v *yaml.Node, at string) { d.EIDPrefixes = p.eids(v, at) },
		})
		p.notEmpty(seen, at, "eid-prefixes", "a delegation needs at least one EID prefix")
		p.require(v, at, seen, "address", "eid-prefixes")
		ok := p.clean(mark)
		if addrNode == nil {
			return
		}
		if first, dup := firstLine[d.Address]; dup {
			p.errorf(addrNode, "%s: Map-Server %s is listed twice (first at line %d); merge its eid-prefixes",
				join(at, "address"), d.Address, first)
			return
		}
		firstLine[d.Address] = addrNode.Line
		if ok {
			list = append(list, d)
		}
	})
	return list
}

// eids reads a list of distinct {prefix, instance-id}.
func (p *parser) eids(n *yaml.Node, path string) []EID {
	var list []EID
	firstLine := map[EID]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		var e EID
		prefixNode, iidOK := (*yaml.Node)(nil), true
		seen := p.fields(v, at, map[string]setter{
			"prefix": func(v *yaml.Node, at string) {
				if pfx, ok := p.prefix(v, at); ok {
					e.Prefix, prefixNode = pfx, v
				}
			},
			"instance-id": p.checked(&iidOK, p.instanceIDTo(&e.InstanceID)),
		})
		if p.require(v, at, seen, "prefix"); prefixNode == nil || !iidOK {
			return
		}
		if first, dup := firstLine[e]; dup {
			p.errorf(prefixNode, "%s: duplicate prefix %s in instance-id %d (first at line %d)",
				join(at, "prefix"), e.Prefix, e.InstanceID, first)
			return
		}
		firstLine[e] = prefixNode.Line
		list = append(list, e)
	})
	return list
}

func (p *parser) xtr(n *yaml.Node, path string) *XTR {
	x := &XTR{
		// userspace until the kernel path moves hosts as well (issue #13).
		DataPlane:        DataPlaneUserspace,
		DataPort:         DefaultDataPort,
		UnderlayMTU:      DefaultUnderlayMTU,
		DataNonce:        true,
		TUN:              DefaultTUN,
		RegisterInterval: DefaultRegisterInterval,
		RLOCProbing:      RLOCProbing{Interval: DefaultRLOCProbeInterval},
		MapCache:         MapCache{MaxEntries: DefaultMapCacheMaxEntries},
		LISPSEC:          DefaultLISPSEC,
		NATTraversal:     NATTraversal{InfoInterval: DefaultInfoInterval},
	}
	var dynRefs []entryRef // where each dynamic EID's interface was written
	seen := p.fields(n, path, map[string]setter{
		"itr":               p.boolTo(&x.ITR),
		"etr":               p.boolTo(&x.ETR),
		"tun":               p.ifnameTo(&x.TUN),
		"eid-interfaces":    p.ifnamesTo(&x.EIDInterfaces),
		"map-resolvers":     p.addrsTo(&x.MapResolvers, unicastAddr),
		"map-servers":       func(v *yaml.Node, at string) { x.MapServers = p.mapServerPeers(v, at) },
		"register-interval": p.positiveDurationTo(&x.RegisterInterval),
		"database":          func(v *yaml.Node, at string) { x.Database = p.database(v, at) },
		"petrs":             p.addrsTo(&x.PETRs, unicastAddr),
		"nat-traversal": func(v *yaml.Node, at string) {
			p.fields(v, at, map[string]setter{
				"enabled":       p.boolTo(&x.NATTraversal.Enabled),
				"info-interval": p.positiveDurationTo(&x.NATTraversal.InfoInterval),
			})
		},
		"rloc-probing": func(v *yaml.Node, at string) {
			p.fields(v, at, map[string]setter{"interval": p.durationTo(&x.RLOCProbing.Interval)})
		},
		"map-cache": func(v *yaml.Node, at string) {
			p.fields(v, at, map[string]setter{"max-entries": intTo(p, &x.MapCache.MaxEntries, 1, 1<<31-1)})
		},
		"subscribe":     p.boolTo(&x.Subscribe),
		"dynamic-eids":  func(v *yaml.Node, at string) { x.DynamicEIDs, dynRefs = p.dynamicEIDs(v, at) },
		"xtr-id":        p.hexTo(x.XTRID[:], &x.HasXTRID),
		"site-id":       p.uint64To(&x.SiteID),
		"eid-routes":    p.prefixesTo(&x.EIDRoutes),
		"vrfs":          func(v *yaml.Node, at string) { x.VRFs = p.vrfs(v, at) },
		"tun-addresses": p.prefixesTo(&x.TUNAddresses),
		"data-plane": func(v *yaml.Node, at string) {
			x.DataPlane, _ = p.enum(v, at, DataPlaneAuto, DataPlaneKernel, DataPlaneUserspace, DataPlaneNone)
		},
		"data-port":         intTo(p, &x.DataPort, 1, 65535),
		"mtu":               intTo(p, &x.UnderlayMTU, 576, 65535),
		"data-nonce":        p.boolTo(&x.DataNonce),
		"source-rloc-check": func(v *yaml.Node, at string) { x.SourceRLOCChecks = p.sourceRLOCChecks(v, at) },
		"lisp-sec": func(v *yaml.Node, at string) {
			if s, ok := p.enum(v, at, LISPSECOff, LISPSECOptional, LISPSECRequired); ok {
				x.LISPSEC = s
			}
		},
		"lisp-sec-key": func(v *yaml.Node, at string) {
			if k, ok := p.lispSecKey(v, at); ok {
				x.LISPSECKey = k
			}
		},
	})
	if !isMapping(n) {
		return x // reported by fields
	}
	// A bad itr or etr value was reported already; saying that neither
	// is on would only repeat it.
	badBool := func(key string) bool {
		kv, ok := seen[key]
		v := deref(kv.value)
		return ok && (v == nil || v.ShortTag() != "!!bool")
	}
	if !x.ITR && !x.ETR && !badBool("itr") && !badBool("etr") {
		p.errorf(n, "%s: neither itr nor etr is enabled; set itr: true, etr: true or both", path)
	}
	p.xtrLISPSEC(path, x, seen)
	if x.ETR && seen["database"].isEmpty() && seen["dynamic-eids"].isEmpty() {
		p.errorf(n, "%s: an ETR needs local EID prefixes: add a database (or dynamic-eids)", path)
	}
	// Dynamic EIDs are detected on the EID-facing interfaces only.
	for i, d := range x.DynamicEIDs {
		if !slices.Contains(x.EIDInterfaces, d.Interface) {
			p.errorf(dynRefs[i].node, "%s: %q is not one of eid-interfaces", dynRefs[i].at, d.Interface)
		}
		// Outside instance ID 0 the LAN is the instance's: in its VRF,
		// where the host routes go, apart from another instance's same
		// addresses.
		if d.InstanceID != 0 && !slices.ContainsFunc(x.VRFs, func(v VRF) bool {
			return v.InstanceID == d.InstanceID && slices.Contains(v.Interfaces, d.Interface)
		}) {
			p.errorf(dynRefs[i].node, "%s: %q is in no vrf of instance-id %d (a dynamic EID outside instance-id 0 lives on an interface of its instance's vrfs[].interfaces)",
				dynRefs[i].at, d.Interface, d.InstanceID)
		}
		hasDB := slices.ContainsFunc(x.Database, func(e DatabaseEntry) bool { return e.InstanceID == d.InstanceID })
		if len(d.Locators) == 0 && !hasDB {
			p.errorf(dynRefs[i].node, "%s: dynamic-eid %q needs locators: give them, or a database entry in instance-id %d to borrow them from",
				strings.TrimSuffix(dynRefs[i].at, ".interface"), d.Name, d.InstanceID)
		}
	}
	return x
}

// sourceRLOCChecks reads the instance IDs whose outer sources are
// checked, each once.
func (p *parser) sourceRLOCChecks(n *yaml.Node, path string) []SourceRLOCCheck {
	var list []SourceRLOCCheck
	firstLine := map[uint32]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		c := SourceRLOCCheck{MapCache: true}
		mark := p.errorCount()
		seen := p.fields(v, at, map[string]setter{
			"instance-id":   p.instanceIDTo(&c.InstanceID),
			"map-cache":     p.boolTo(&c.MapCache),
			"rloc-prefixes": p.prefixesTo(&c.RLOCPrefixes),
		})
		if !p.require(v, at, seen, "instance-id") || !p.clean(mark) {
			return
		}
		iid := seen["instance-id"].value
		if first, dup := firstLine[c.InstanceID]; dup {
			p.errorf(iid, "%s: instance-id %d is checked already (line %d)", join(at, "instance-id"), c.InstanceID, first)
			return
		}
		firstLine[c.InstanceID] = iid.Line
		if !c.MapCache && len(c.RLOCPrefixes) == 0 {
			p.errorf(v, "%s: with map-cache: false and no rloc-prefixes every packet of instance-id %d would be dropped",
				at, c.InstanceID)
			return
		}
		list = append(list, c)
	})
	return list
}

// mapServerPeers reads the Map-Servers an ETR registers with, each once.
func (p *parser) mapServerPeers(n *yaml.Node, path string) []MapServerPeer {
	var list []MapServerPeer
	firstLine := map[netip.Addr]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		m := MapServerPeer{WantMapNotify: true}
		var addrNode *yaml.Node
		setters := p.authSetters(map[string]setter{
			"address": func(v *yaml.Node, at string) {
				if a, ok := p.addr(v, at, unicastAddr); ok {
					m.Address, addrNode = a, v
				}
			},
			"proxy-reply":     p.boolTo(&m.ProxyReply),
			"want-map-notify": p.boolTo(&m.WantMapNotify),
		}, &m.KeyID, &m.Algorithm, &m.Secret, &m.SecretFile)
		mark := p.errorCount()
		seen := p.fields(v, at, setters)
		p.checkSecret(v, at, seen)
		p.require(v, at, seen, "address")
		ok := p.clean(mark)
		if addrNode == nil {
			return
		}
		if first, dup := firstLine[m.Address]; dup {
			p.errorf(addrNode, "%s: Map-Server %s is listed twice (first at line %d)", join(at, "address"), m.Address, first)
			return
		}
		firstLine[m.Address] = addrNode.Line
		if ok {
			list = append(list, m)
		}
	})
	return list
}

// database reads the ETR's local EID prefixes, each once.
func (p *parser) database(n *yaml.Node, path string) []DatabaseEntry {
	var list []DatabaseEntry
	firstLine := map[EID]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		var e DatabaseEntry
		mark := p.errorCount()
		prefixNode, iidOK := (*yaml.Node)(nil), true
		seen := p.fields(v, at, map[string]setter{
			"eid-prefix": func(v *yaml.Node, at string) {
				if pfx, ok := p.prefix(v, at); ok {
					e.Prefix, prefixNode = pfx, v
				}
			},
			"instance-id": p.checked(&iidOK, p.instanceIDTo(&e.InstanceID)),
			"locators":    func(v *yaml.Node, at string) { e.Locators = p.locators(v, at) },
		})
		p.notEmpty(seen, at, "locators", "an EID prefix needs at least one locator")
		p.require(v, at, seen, "eid-prefix", "locators")
		ok := p.clean(mark)
		if prefixNode == nil || !iidOK {
			return
		}
		if first, dup := firstLine[e.EID]; dup {
			p.errorf(prefixNode, "%s: duplicate prefix %s in instance-id %d (first at line %d)",
				join(at, "eid-prefix"), e.Prefix, e.InstanceID, first)
			return
		}
		firstLine[e.EID] = prefixNode.Line
		if ok {
			list = append(list, e)
		}
	})
	return list
}

// locators reads the RLOCs of one database entry, each once.
func (p *parser) locators(n *yaml.Node, path string) []Locator {
	var list []Locator
	firstLine := map[string]int{} // by address or interface name
	p.seq(n, path, func(v *yaml.Node, at string) {
		l := Locator{Priority: DefaultPriority, Weight: DefaultWeight, MPriority: DefaultMPriority, MWeight: DefaultMWeight}
		mark := p.errorCount()
		seen := p.fields(v, at, map[string]setter{
			"address":    p.addrTo(&l.Address, unicastAddr),
			"interface":  p.ifnameTo(&l.Interface),
			"priority":   intTo(p, &l.Priority, 0, 255),
			"weight":     intTo(p, &l.Weight, 0, 255),
			"m-priority": intTo(p, &l.MPriority, 0, 255),
			"m-weight":   intTo(p, &l.MWeight, 0, 255),
		})
		addr, hasAddr := seen["address"]
		iface, hasIface := seen["interface"]
		switch {
		case hasAddr && hasIface:
			p.errorf(iface.key, "%s: give either address or interface, not both", at)
			return
		case !hasAddr && !hasIface:
			if !isMapping(v) {
				return
			}
			p.errorf(v, "%s: missing required key \"address\" (or \"interface\")", at)
			return
		}
		ok := p.clean(mark)
		var key string // what identifies the locator
		var node *yaml.Node
		switch {
		case l.Address.IsValid():
			key, node = l.Address.String(), addr.key
		case l.Interface != "":
			key, node = l.Interface, iface.key
		default:
			return // the address or name was bad, and said so
		}
		if first, dup := firstLine[key]; dup {
			p.errorf(node, "%s: locator %s is listed twice (first at line %d)", at, key, first)
			return
		}
		firstLine[key] = node.Line
		if ok {
			list = append(list, l)
		}
	})
	return list
}

// entryRef says where a value of a list entry was written.
type entryRef struct {
	node *yaml.Node
	at   string
}

// dynamicEIDs reads the dynamic-EID ranges, with distinct names, and returns
// them with where each one's interface was written.
// vrfs reads the instance IDs kept in their own Linux VRF, so that two
// instance IDs may hold overlapping EID prefixes on one xTR.
func (p *parser) vrfs(n *yaml.Node, path string) []VRF {
	var list []VRF
	seenIID := map[uint32]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		var f VRF
		mark := p.errorCount()
		seen := p.fields(v, at, map[string]setter{
			"instance-id": p.instanceIDTo(&f.InstanceID),
			"name":        p.ifnameTo(&f.Name),
			"table":       intTo(p, &f.Table, 1, 1<<32-2),
			"interfaces":  p.ifnamesTo(&f.Interfaces),
			"eid-routes":  p.prefixesTo(&f.EIDRoutes),
		})
		p.require(v, at, seen, "instance-id", "name", "table")
		if !p.clean(mark) {
			return
		}
		if f.InstanceID == 0 {
			p.errorf(seen["instance-id"].value, "%s: instance-id 0 lives in the main table, not a VRF", join(at, "instance-id"))
			return
		}
		if first, dup := seenIID[f.InstanceID]; dup {
			p.errorf(seen["instance-id"].value, "%s: instance-id %d has a VRF already (line %d)", join(at, "instance-id"), f.InstanceID, first)
			return
		}
		seenIID[f.InstanceID] = seen["instance-id"].value.Line
		list = append(list, f)
	})
	return list
}

func (p *parser) dynamicEIDs(n *yaml.Node, path string) ([]DynamicEID, []entryRef) {
	var list []DynamicEID
	var ifRefs []entryRef
	firstLine := map[string]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		d := DynamicEID{Mode: ModeAcrossSubnet, Timeout: DefaultDynamicEIDTimeout, MaxHosts: DefaultDynamicEIDMaxHosts}
		var nameNode *yaml.Node
		mark := p.errorCount()
		seen := p.fields(v, at, map[string]setter{
			"name": func(v *yaml.Node, at string) {
				if s, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
					d.Name, nameNode = s, node
				}
			},
			"prefix":      p.prefixTo(&d.Prefix),
			"instance-id": p.instanceIDTo(&d.InstanceID),
			"interface":   p.ifnameTo(&d.Interface),
			"mode": func(v *yaml.Node, at string) {
				if s, ok := p.enum(v, at, ModeAcrossSubnet, ModeExtendedSubnet); ok {
					d.Mode = s
				}
			},
			"notify-group": p.addrTo(&d.NotifyGroup, multicastAddr),
			"locators":     func(v *yaml.Node, at string) { d.Locators = p.locators(v, at) },
			"timeout":      p.positiveDurationTo(&d.Timeout),
			"max-hosts":    intTo(p, &d.MaxHosts, 1, 1<<24),
			"group-key": func(v *yaml.Node, at string) {
				var k Key
				keySeen := p.fields(v, at, p.authSetters(map[string]setter{}, &k.ID, &k.Algorithm, &k.Secret, &k.SecretFile))
				if p.checkSecret(v, at, keySeen) {
					d.GroupKey = &k
				}
			},
			"group-peers":       p.addrsTo(&d.GroupPeers, unicastAddr),
			"group-max-adopted": intTo(p, &d.GroupMaxAdopted, 0, 1<<24),
			"group-adopt-rate":  intTo(p, &d.GroupAdoptRate, 0, 1<<16),
		})
		p.require(v, at, seen, "name", "prefix", "interface")
		// Anyone on the LAN can send to the group: without a key a claim
		// could not be told from a forgery, so a group needs one.
		if gv, ok := seen["notify-group"]; ok && d.NotifyGroup.IsValid() {
			if _, ok := seen["group-key"]; !ok {
				p.errorf(gv.key, "%s: a notify group needs a group-key (any host of the LAN can send to the group; see docs/security.md)", join(at, "notify-group"))
			}
			if _, ok := seen["group-max-adopted"]; !ok {
				d.GroupMaxAdopted = DefaultGroupMaxAdopted
			}
			if _, ok := seen["group-adopt-rate"]; !ok {
				d.GroupAdoptRate = DefaultGroupAdoptRate
			}
		} else {
			for _, key := range []string{"group-key", "group-peers", "group-max-adopted", "group-adopt-rate"} {
				if kv, ok := seen[key]; ok {
					p.errorf(kv.key, "%s: only meaningful with a notify-group", join(at, key))
				}
			}
		}
		// The xTRs of an IPv6 LAN meet on an IPv6 group, of an IPv4 one on
		// an IPv4 group.
		if gv, ok := seen["notify-group"]; ok && d.Prefix.IsValid() && d.NotifyGroup.IsValid() && d.Prefix.Addr().Is6() != d.NotifyGroup.Is6() {
			p.errorf(gv.value, "%s: %s is not of the family of the range %s", join(at, "notify-group"), d.NotifyGroup, d.Prefix)
		}
		ok := p.clean(mark)
		if nameNode == nil {
			return
		}
		if first, dup := firstLine[d.Name]; dup {
			p.errorf(nameNode, "%s: duplicate dynamic-eid name %q (first at line %d)", join(at, "name"), d.Name, first)
			return
		}
		firstLine[d.Name] = nameNode.Line
		if !ok {
			return
		}
		list = append(list, d)
		ifRefs = append(ifRefs, entryRef{seen["interface"].value, join(at, "interface")})
	})
	return list, ifRefs
}
