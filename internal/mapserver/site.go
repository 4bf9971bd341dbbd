// Package mapserver is the Map-Server role (RFC 9301 §8.2-8.3, RFC 9437):
// sites and their keys, authenticated registrations (merged across the
// xTRs of one site, moved when another site registers the prefix: host
// mobility), Map-Notify, proxy Map-Replies or forwarding to the registered
// ETR, and publish/subscribe. All state sits behind one mutex; methods are the API
// the daemon, the Map-Resolver and the admin socket call.
package mapserver

import (
	"net/netip"
	"time"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Key is one authentication key of a site.
type Key struct {
	ID     uint8
	Alg    wire.AuthAlg
	Secret []byte
}

// SitePrefix is an EID prefix a site may register.
type SitePrefix struct {
	EID                 mapping.EID
	AcceptMoreSpecifics bool
}

// Site is the configuration of one LISP site.
type Site struct {
	Name        string
	Description string
	Keys        []Key
	Prefixes    []SitePrefix
	// LegacyNonces opts the site out of the nonce check (RFC 9301 §5.6)
	// for xTRs written before it: Open Overlay Router 1.3 sends random
	// nonces, OpenDaylight sends 0 (configuration: require-nonce-increase:
	// false). Their Map-Registers are checked against a window of recent
	// ones instead (replay.go).
	LegacyNonces bool
	AllowedRLOCs []netip.Prefix // empty: any
	// RTRs, when not empty, are offered in Info-Replies to this site's
	// xTRs instead of Options.RTRs (draft-ietf-lisp-nat-traversal §5.2).
	RTRs []netip.Addr
}

// site is a Site with its run-time counters.
type site struct {
	cfg          Site
	auth         map[uint8]*wire.Authenticator // per key ID, HMAC state reused
	authFailures uint64
	registers    uint64
	lastRegister time.Time
}

// authenticator returns the cached signer/verifier of key k.
func (s *site) authenticator(k Key, opts wire.AuthOptions) *wire.Authenticator {
	a, ok := s.auth[k.ID]
	if !ok {
		if s.auth == nil {
			s.auth = map[uint8]*wire.Authenticator{}
		}
		a = wire.NewAuthenticator(k.Alg, k.Secret, opts)
		s.auth[k.ID] = a
	}
	return a
}

func (s *site) key(id uint8) (Key, bool) {
	for _, k := range s.cfg.Keys {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}

// covers reports whether the site may register e under sp.
func (sp SitePrefix) covers(e mapping.EID) bool {
	if sp.EID == e {
		return true
	}
	return sp.AcceptMoreSpecifics && sp.EID.Contains(e)
}

func (s *site) rlocAllowed(a netip.Addr) bool {
	if len(s.cfg.AllowedRLOCs) == 0 {
		return true
	}
	for _, p := range s.cfg.AllowedRLOCs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
