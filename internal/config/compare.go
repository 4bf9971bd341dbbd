package config

import "reflect"

// Diff says what changed between two configurations, so a SIGHUP reload
// touches only the parts that changed.
type Diff struct {
	// Sites by name: added, removed, or with any setting changed
	// (including the Map-Server-wide require-nonce-increase they inherit
	// and the contents of their secret files). Added and changed sites are
	// in the new configuration's order, removed ones in the old one's.
	SitesAdded, SitesRemoved, SitesChanged []string

	// MapServerChanged: the role was turned on or off, or a setting other
	// than the sites changed (timeouts, subscription limits).
	MapServerChanged bool

	MapResolverChanged bool // role toggled or any setting changed
	XTRChanged         bool // role toggled or any setting changed
	PITRChanged        bool // role toggled or any setting changed
	PETRChanged        bool // role toggled
	ControlChanged     bool
	AdminChanged       bool
	LogChanged         bool
}

// Empty says whether nothing changed.
func (d Diff) Empty() bool {
	return reflect.DeepEqual(d, Diff{})
}

// Compare returns what changed from old to new. Either may be nil, which
// compares as a configuration with no roles.
func Compare(old, new *Config) Diff {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	d := Diff{
		MapServerChanged:   mapServerSettingsChanged(old.MapServer, new.MapServer),
		MapResolverChanged: !reflect.DeepEqual(old.MapResolver, new.MapResolver),
		XTRChanged:         !reflect.DeepEqual(old.XTR, new.XTR),
		PITRChanged:        !reflect.DeepEqual(old.PITR, new.PITR),
		PETRChanged:        !reflect.DeepEqual(old.PETR, new.PETR),
		ControlChanged:     !reflect.DeepEqual(old.Control, new.Control),
		AdminChanged:       !reflect.DeepEqual(old.Admin, new.Admin),
		LogChanged:         !reflect.DeepEqual(old.Log, new.Log),
	}
	d.SitesAdded, d.SitesRemoved, d.SitesChanged = compareSites(sitesOf(old.MapServer), sitesOf(new.MapServer))
	return d
}

func sitesOf(ms *MapServer) []Site {
	if ms == nil {
		return nil
	}
	return ms.Sites
}

// mapServerSettingsChanged compares everything of the role but its sites.
func mapServerSettingsChanged(old, new *MapServer) bool {
	if old == nil || new == nil {
		return (old == nil) != (new == nil)
	}
	o, n := *old, *new
	o.Sites, n.Sites = nil, nil
	return !reflect.DeepEqual(o, n)
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
