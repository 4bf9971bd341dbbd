package config

import (
	"fmt"
	"reflect"
)

// Diff says what changed between two configurations: a reload applies or
// refuses each changed key, and keeps the registrations of unchanged sites.
type Diff struct {
	// Sites by name: added, removed, or with any setting changed
	// (including the Map-Server-wide require-nonce-increase they inherit
	// and the contents of their secret files). Added and changed sites are
	// in the new configuration's order, removed ones in the old one's.
	SitesAdded, SitesRemoved, SitesChanged []string

	// Keys names every changed setting by its configuration key, in
	// document order: "xtr.database", "log.level", a role toggled on or off
	// by its section name ("pitr"), a dynamic EID by its name
	// ("xtr.dynamic-eids[web].timeout", "xtr.dynamic-eids[web]" when the
	// range was added or removed). A reload applies or refuses each one.
	Keys []string
}

// Empty says whether nothing changed: every change, sites included, has
// a key.
func (d Diff) Empty() bool { return len(d.Keys) == 0 }

// Compare returns what changed from old to new. Either may be nil, which
// compares as a configuration with no roles.
func Compare(old, new *Config) Diff {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	var d Diff
	d.SitesAdded, d.SitesRemoved, d.SitesChanged = compareSites(sitesOf(old.MapServer), sitesOf(new.MapServer))
	d.Keys = changedKeys(old, new)
	return d
}

// keys collects the names of changed settings.
type keys []string

func (k *keys) add(name string, old, new any) {
	if !reflect.DeepEqual(old, new) {
		*k = append(*k, name)
	}
}

// section compares a role's section: toggled, it is one key; present in
// both, each setting is compared by fields.
func section[T any](k *keys, name string, old, new *T, fields func(o, n *T)) {
	switch {
	case old == nil && new == nil:
	case old == nil || new == nil:
		*k = append(*k, name)
	default:
		fields(old, new)
	}
}

// changedKeys lists the changed settings. Every field of every section is
// named here (TestChangedKeysCoverEveryField fails when one is not), so a
// reload can never overlook a setting.
func changedKeys(old, new *Config) []string {
	var k keys
	k.add("log.level", old.Log.Level, new.Log.Level)
	k.add("log.format", old.Log.Format, new.Log.Format)
	k.add("admin.socket", old.Admin.Socket, new.Admin.Socket)
	k.add("admin.metrics", old.Admin.Metrics, new.Admin.Metrics)
	k.add("admin.pprof", old.Admin.PProf, new.Admin.PProf)
	k.add("admin.web", old.Admin.Web, new.Admin.Web)
	k.add("control.addresses", old.Control.Addresses, new.Control.Addresses)
	k.add("control.port", old.Control.Port, new.Control.Port)
	k.add("control.rate-limit", old.Control.RateLimit, new.Control.RateLimit)
	section(&k, "map-server", old.MapServer, new.MapServer, func(o, n *MapServer) {
		k.add("map-server.registration-timeout", o.RegistrationTimeout, n.RegistrationTimeout)
		k.add("map-server.require-nonce-increase", o.RequireNonceIncrease, n.RequireNonceIncrease)
		k.add("map-server.max-subscriptions", o.MaxSubscriptions, n.MaxSubscriptions)
		k.add("map-server.max-subscriptions-per-xtr", o.MaxSubscriptionsPerXTR, n.MaxSubscriptionsPerXTR)
		k.add("map-server.subscription-ttl", o.SubscriptionTTL, n.SubscriptionTTL)
		k.add("map-server.notify-retransmit", o.NotifyRetransmit, n.NotifyRetransmit)
		k.add("map-server.state-directory", o.StateDirectory, n.StateDirectory)
		k.add("map-server.sites", o.Sites, n.Sites)
		k.add("map-server.lisp-sec-keys", o.LISPSECKeys, n.LISPSECKeys)
		k.add("map-server.rtrs", o.RTRs, n.RTRs)
		k.add("map-server.rtr-keys", o.RTRKeys, n.RTRKeys)
		k.add("map-server.store", o.Store, n.Store)
	})
	section(&k, "map-resolver", old.MapResolver, new.MapResolver, func(o, n *MapResolver) {
		k.add("map-resolver.map-servers", o.MapServers, n.MapServers)
		k.add("map-resolver.negative-ttl", o.NegativeTTL, n.NegativeTTL)
		k.add("map-resolver.unregistered-ttl", o.UnregisteredTTL, n.UnregisteredTTL)
		k.add("map-resolver.lisp-sec-keys", o.LISPSECKeys, n.LISPSECKeys)
	})
	section(&k, "xtr", old.XTR, new.XTR, func(o, n *XTR) {
		k.add("xtr.itr", o.ITR, n.ITR)
		k.add("xtr.etr", o.ETR, n.ETR)
		k.add("xtr.tun", o.TUN, n.TUN)
		k.add("xtr.eid-interfaces", o.EIDInterfaces, n.EIDInterfaces)
		k.add("xtr.map-resolvers", o.MapResolvers, n.MapResolvers)
		k.add("xtr.map-servers", o.MapServers, n.MapServers)
		k.add("xtr.register-interval", o.RegisterInterval, n.RegisterInterval)
		k.add("xtr.nat-traversal", o.NATTraversal, n.NATTraversal)
		k.add("xtr.database", o.Database, n.Database)
		k.add("xtr.petrs", o.PETRs, n.PETRs)
		k.add("xtr.rloc-probing.interval", o.RLOCProbing.Interval, n.RLOCProbing.Interval)
		k.add("xtr.map-cache.max-entries", o.MapCache.MaxEntries, n.MapCache.MaxEntries)
		k.add("xtr.subscribe", o.Subscribe, n.Subscribe)
		k = append(k, dynamicEIDKeys(o.DynamicEIDs, n.DynamicEIDs)...)
		k.add("xtr.xtr-id", [2]any{o.HasXTRID, o.XTRID}, [2]any{n.HasXTRID, n.XTRID})
		k.add("xtr.site-id", o.SiteID, n.SiteID)
		k.add("xtr.eid-routes", o.EIDRoutes, n.EIDRoutes)
		k.add("xtr.vrfs", o.VRFs, n.VRFs)
		k.add("xtr.tun-addresses", o.TUNAddresses, n.TUNAddresses)
		k.add("xtr.data-plane", o.DataPlane, n.DataPlane)
		k.add("xtr.data-port", o.DataPort, n.DataPort)
		k.add("xtr.mtu", o.UnderlayMTU, n.UnderlayMTU)
		k.add("xtr.data-nonce", o.DataNonce, n.DataNonce)
		k.add("xtr.lisp-sec", o.LISPSEC, n.LISPSEC)
		k.add("xtr.lisp-sec-key", o.LISPSECKey, n.LISPSECKey)
		k.add("xtr.source-rloc-check", o.SourceRLOCChecks, n.SourceRLOCChecks)
	})
	section(&k, "pitr", old.PITR, new.PITR, func(o, n *PITR) {
		k.add("pitr.eid-prefixes", o.EIDPrefixes, n.EIDPrefixes)
	})
	section(&k, "petr", old.PETR, new.PETR, func(o, n *PETR) {
		k.add("petr.allowed-source-eids", o.AllowedSourceEIDs, n.AllowedSourceEIDs)
	})
	section(&k, "rtr", old.RTR, new.RTR, func(o, n *RTR) {
		k.add("rtr.map-servers", o.MapServers, n.MapServers)
		k.add("rtr.registration-timeout", o.RegistrationTimeout, n.RegistrationTimeout)
		k.add("rtr.map-server-keys", o.MapServerKeys, n.MapServerKeys)
	})
	return k
}

// dynamicEIDKeys compares dynamic EIDs by name, which the parser keeps
// unique: a range added or removed is one key, a changed one a key per
// setting. Order changes alone change nothing.
func dynamicEIDKeys(old, new []DynamicEID) []string {
	var k keys
	byName := make(map[string]*DynamicEID, len(old))
	for i := range old {
		byName[old[i].Name] = &old[i]
	}
	seen := make(map[string]bool, len(new))
	for i := range new {
		n := &new[i]
		seen[n.Name] = true
		o, ok := byName[n.Name]
		at := fmt.Sprintf("xtr.dynamic-eids[%s]", n.Name)
		if !ok {
			k = append(k, at)
			continue
		}
		k.add(at+".prefix", o.EID, n.EID)
		k.add(at+".interface", o.Interface, n.Interface)
		k.add(at+".mode", o.Mode, n.Mode)
		k.add(at+".notify-group", o.NotifyGroup, n.NotifyGroup)
		k.add(at+".locators", o.Locators, n.Locators)
		k.add(at+".timeout", o.Timeout, n.Timeout)
		k.add(at+".max-hosts", o.MaxHosts, n.MaxHosts)
		k.add(at+".group-key", o.GroupKey, n.GroupKey)
		k.add(at+".group-peers", o.GroupPeers, n.GroupPeers)
		k.add(at+".group-max-adopted", o.GroupMaxAdopted, n.GroupMaxAdopted)
		k.add(at+".group-adopt-rate", o.GroupAdoptRate, n.GroupAdoptRate)
	}
	for _, o := range old {
		if !seen[o.Name] {
			k = append(k, fmt.Sprintf("xtr.dynamic-eids[%s]", o.Name))
		}
	}
	return k
}

func sitesOf(ms *MapServer) []Site {
	if ms == nil {
		return nil
	}
	return ms.Sites
}

// compareSites matches sites by name, which the parser keeps unique.
func compareSites(old, new []Site) (added, removed, changed []string) {
	oldByName := make(map[string]*Site, len(old))
	for i := range old {
		oldByName[old[i].Name] = &old[i]
	}
	newNames := make(map[string]bool, len(new))
	for i := range new {
		s := &new[i]
		newNames[s.Name] = true
		switch o, ok := oldByName[s.Name]; {
		case !ok:
			added = append(added, s.Name)
		case !reflect.DeepEqual(o, s):
			changed = append(changed, s.Name)
		}
	}
	for _, s := range old {
		if !newNames[s.Name] {
			removed = append(removed, s.Name)
		}
	}
	return added, removed, changed
}
