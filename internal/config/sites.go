package config

import (
	"fmt"
	"net/netip"
)

// Covers says whether the site may register prefix p in instance iid:
// p equals one of the site's prefixes, or lies inside one that accepts
// more-specifics. Host bits of p are ignored, as a Map-Register's mask
// length is what counts.
func (s *Site) Covers(iid uint32, p netip.Prefix) bool {
	_, ok := s.covering(iid, p)
	return ok
}

// covering returns the longest of the site's prefixes that covers p.
func (s *Site) covering(iid uint32, p netip.Prefix) (SitePrefix, bool) {
	if !p.IsValid() {
		return SitePrefix{}, false
	}
	p = p.Masked()
	var best SitePrefix
	found := false
	for _, sp := range s.EIDPrefixes {
		if sp.InstanceID != iid || !sp.Prefix.IsValid() {
			continue
		}
		exact := sp.Prefix == p
		inside := sp.AcceptMoreSpecifics && contains(sp.EID, EID{iid, p})
		if (exact || inside) && (!found || sp.Prefix.Bits() > best.Prefix.Bits()) {
			best, found = sp, true
		}
	}
	return best, found
}

// SiteFor returns the site whose configured prefix covers p in instance
// iid (see Site.Covers), choosing the longest such prefix, or nil. It
// scans every site: the Map-Server builds its own longest-prefix-match
// table for the packet path and uses this for configuration-time checks.
func (ms *MapServer) SiteFor(iid uint32, p netip.Prefix) *Site {
	var best *Site
	bestBits := -1
	for i := range ms.Sites {
		s := &ms.Sites[i]
		if sp, ok := s.covering(iid, p); ok && sp.Prefix.Bits() > bestBits {
			best, bestBits = s, sp.Prefix.Bits()
		}
	}
	return best
}

// String describes the key without its secret, so that logging a
// configuration (fmt's %v reaches nested values) never leaks one.
func (k Key) String() string {
	return fmt.Sprintf("key-id %d %s %s", k.ID, k.Algorithm, secretSource(k.SecretFile))
}

// String describes the Map-Server without the secret (see Key.String).
func (m MapServerPeer) String() string {
	return fmt.Sprintf("%s key-id %d %s %s proxy-reply=%t want-map-notify=%t",
		m.Address, m.KeyID, m.Algorithm, secretSource(m.SecretFile), m.ProxyReply, m.WantMapNotify)
}

func secretSource(file string) string {
	if file == "" {
		return "(secret inline)"
	}
	return "(secret from " + file + ")"
}
