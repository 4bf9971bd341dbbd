package config

import (
	"net/netip"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/lispd/lispd/wire"
)

// MSRTRKey is a secret a Map-Server shares with one RTR
// (draft-ietf-lisp-nat-traversal §4.4): the Map-Server signs with it the
// Map-Notifies it sends that RTR for relayed Map-Registers (the MS-RTR
// authentication data, S bit of the ECM), and the RTR verifies them.
// Address is the peer: the RTR in map-server.rtr-keys, the Map-Server in
// rtr.map-server-keys.
type MSRTRKey struct {
	Address    netip.Addr
	ID         uint16
	Algorithm  wire.AuthAlg
	Secret     []byte
	SecretFile string // path the secret was read from, resolved; "" when inline
}

// msRTRKeys reads map-server.rtr-keys or rtr.map-server-keys: one key per
// peer address, each with address, key-id (default 0), algorithm (default
// as a site key's) and secret or secret-file; and the line of each key's
// address.
func (p *parser) msRTRKeys(n *yaml.Node, path string) ([]MSRTRKey, map[netip.Addr]int) {
	var keys []MSRTRKey
	firstLine := map[netip.Addr]int{}
	p.seq(n, path, func(v *yaml.Node, at string) {
		k := MSRTRKey{Algorithm: DefaultAuthAlgorithm}
		mark := p.errorCount()
		setters := p.authSetters(map[string]setter{"key-id": intTo(p, &k.ID, 0, 0xffff)}, nil, &k.Algorithm, &k.Secret, &k.SecretFile)
		var addrNode *yaml.Node
		setters["address"] = func(v *yaml.Node, at string) {
			if a, ok := p.addr(v, at, unicastAddr); ok {
				k.Address, addrNode = a, v
			}
		}
		seen := p.fields(v, at, setters)
		p.require(v, at, seen, "address")
		p.checkSecret(v, at, seen)
		if !p.clean(mark) || k.Secret == nil || addrNode == nil {
			return
		}
		if first, dup := firstLine[k.Address]; dup {
			p.errorf(addrNode, "%s: a second key for %s (first at line %d); the MS-RTR authentication data has one key per peer",
				join(at, "address"), k.Address, first)
			return
		}
		firstLine[k.Address] = addrNode.Line
		keys = append(keys, k)
	})
	return keys, firstLine
}

// checkMSRTRPeers refuses a key for an address that is none of peers
// (what names them): it could never be used, and is most likely a typo
// that leaves the real peer unauthenticated.
func (p *parser) checkMSRTRPeers(keys []MSRTRKey, lines map[netip.Addr]int, path string, peers []netip.Addr, what string) {
	for _, k := range keys {
		if !slices.Contains(peers, k.Address) {
			p.errorAt(lines[k.Address], "%s: %s is none of %s, so the key could never be used", join(path, "address"), k.Address, what)
		}
	}
}
