package config

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// LISP-SEC (RFC 9303) modes of an ITR: xtr.lisp-sec.
const (
	// LISPSECOff: Map-Requests go unprotected and Map-Replies are taken
	// as they come (the default: the mapping system must have the keys).
	LISPSECOff = "off"
	// LISPSECOptional: Map-Requests carry a One-Time Key; a signed reply
	// must verify, an unsigned one is still taken.
	LISPSECOptional = "optional"
	// LISPSECRequired: only Map-Replies that verify are taken.
	LISPSECRequired = "required"
)

// DefaultLISPSEC is an xTR's LISP-SEC mode when it does not say.
const DefaultLISPSEC = LISPSECOff

// LISPSECKey is a secret an ITR shares with its Map-Resolvers (and the
// Map-Servers they pass its requests to): it wraps the One-Time Key of each
// protected Map-Request (RFC 9303 §6.5). It is not a site's Map-Register
// key, and must not be one: an ETR holding it could open ITR-OTKs.
type LISPSECKey struct {
	ID         uint8
	Secret     []byte // nil: no key
	SecretFile string // path the secret was read from, resolved; "" when inline
}

// lispSecKey reads one key: key-id (default 0) and secret or secret-file.
func (p *parser) lispSecKey(n *yaml.Node, path string) (LISPSECKey, bool) {
	var k LISPSECKey
	mark := p.errorCount()
	seen := p.fields(n, path, map[string]setter{
		"key-id": intTo(p, &k.ID, 0, 255),
		"secret": func(v *yaml.Node, at string) {
			if s, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
				k.Secret = []byte(s)
			}
		},
		"secret-file": func(v *yaml.Node, at string) {
			if name, node, ok := p.str(v, at); ok && p.nonEmpty(node, at) {
				k.Secret, k.SecretFile = p.readSecret(node, at, name)
			}
		},
	})
	p.checkSecret(n, path, seen)
	return k, p.clean(mark) && k.Secret != nil
}

// lispSecKeys reads the keys a Map-Server or Map-Resolver shares with
// ITRs, with distinct key IDs (the ECM's Key ID picks one), and where
// each key ID was written.
func (p *parser) lispSecKeys(n *yaml.Node, path string) ([]LISPSECKey, map[uint8]int) {
	var keys []LISPSECKey
	firstLine := map[uint8]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		k, ok := p.lispSecKey(v, at)
		if !ok {
			return
		}
		line := deref(v).Line
		if first, dup := firstLine[k.ID]; dup {
			p.errorAt(line, "%s: duplicate key-id %d (first at line %d)", join(at, "key-id"), k.ID, first)
			return
		}
		firstLine[k.ID] = line
		keys = append(keys, k)
	})
	return keys, firstLine
}

// checkLISPSECKeys: a Map-Server and a Map-Resolver in one lispd answer the
// same ITRs, so each uses the keys of both sections; a key ID in both must
// hold one secret.
func (p *parser) checkLISPSECKeys(c *Config, msLines, mrLines map[uint8]int) {
	if c.MapServer == nil || c.MapResolver == nil {
		return
	}
	for _, mk := range c.MapServer.LISPSECKeys {
		for _, rk := range c.MapResolver.LISPSECKeys {
			if mk.ID == rk.ID && !bytes.Equal(mk.Secret, rk.Secret) {
				p.errorAt(mrLines[rk.ID], "map-resolver.lisp-sec-keys: key-id %d has another secret in map-server.lisp-sec-keys (line %d); the two roles answer the same ITRs",
					rk.ID, msLines[mk.ID])
			}
		}
	}
}

// xtrLISPSEC checks the LISP-SEC settings of an xTR: an ITR that protects
// its Map-Requests needs the key it shares with its Map-Resolvers.
func (p *parser) xtrLISPSEC(path string, x *XTR, seen map[string]keyValue) {
	if x.LISPSEC == LISPSECOff || !x.ITR {
		return
	}
	if _, ok := seen["lisp-sec-key"]; !ok {
		p.errorf(seen["lisp-sec"].key, "%s: lisp-sec %s needs lisp-sec-key, the key shared with the Map-Resolvers",
			join(path, "lisp-sec"), x.LISPSEC)
	}
}
