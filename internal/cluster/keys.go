package cluster

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
)

// The key space under the configured prefix P:
//
//	P reg/<iid>/<eid-prefix>/<node>    one node's Record of one EID prefix (JSON), on its lease
//	P nonce/<site>/<xtr>/<key-id>/<node>  the highest Map-Register nonce node shared of one xTR
//	P node/<node>                      a node's announcement (JSON), on its lease
//
// <xtr> is "id-" and the xTR-ID in hex, or "src-" and the source address
// of an xTR that sends none; <site> is path-escaped. Each node writes its
// own nonce keys, which only grow (it accepts only growing nonces), so
// they need no compare-and-swap; every node takes the highest. They are
// on no lease: a replay to another node must stay refused after the node
// that took the original died.

const (
	regDir   = "reg/"
	nonceDir = "nonce/"
	nodeDir  = "node/"
)

// regKey is node's Record of eid.
func regKey(prefix string, eid mapping.EID, node string) string {
	return eidDir(prefix, eid) + node
}

// eidDir is the directory of every node's Record of eid.
func eidDir(prefix string, eid mapping.EID) string {
	return prefix + regDir + strconv.FormatUint(uint64(eid.IID), 10) + "/" + eid.Prefix.String() + "/"
}

// parseRegKey splits a Record key (without the prefix and regDir).
func parseRegKey(k string) (mapping.EID, string, error) {
	slash := strings.IndexByte(k, '/')
	last := strings.LastIndexByte(k, '/')
	if slash < 0 || last <= slash {
		return mapping.EID{}, "", fmt.Errorf("record key %q: want <iid>/<prefix>/<node>", k)
	}
	iid, err := strconv.ParseUint(k[:slash], 10, 32)
	if err != nil {
		return mapping.EID{}, "", fmt.Errorf("record key %q: instance ID: %w", k, err)
	}
	p, err := netip.ParsePrefix(k[slash+1 : last])
	if err != nil {
		return mapping.EID{}, "", fmt.Errorf("record key %q: %w", k, err)
	}
	node := k[last+1:]
	if node == "" {
		return mapping.EID{}, "", fmt.Errorf("record key %q: no node", k)
	}
	return mapping.NewEID(uint32(iid), p), node, nil
}

func nonceKey(prefix string, k mapserver.NonceKey, node string) string {
	x := "id-" + hex.EncodeToString(k.XTRID[:])
	if k.Source.IsValid() {
		x = "src-" + k.Source.String()
	}
	return prefix + nonceDir + url.PathEscape(k.Site) + "/" + x + "/" + strconv.Itoa(int(k.KeyID)) + "/" + node
}

func parseNonceKey(k string) (mapserver.NonceKey, error) {
	parts := strings.Split(k, "/")
	var nk mapserver.NonceKey
	if len(parts) != 4 {
		return nk, fmt.Errorf("nonce key %q: want <site>/<xtr>/<key-id>/<node>", k)
	}
	site, err := url.PathUnescape(parts[0])
	if err != nil {
		return nk, fmt.Errorf("nonce key %q: site: %w", k, err)
	}
	nk.Site = site
	switch x := parts[1]; {
	case strings.HasPrefix(x, "id-"):
		b, err := hex.DecodeString(x[3:])
		if err != nil || len(b) != len(nk.XTRID) {
			return nk, fmt.Errorf("nonce key %q: bad xTR-ID", k)
		}
		copy(nk.XTRID[:], b)
	case strings.HasPrefix(x, "src-"):
		a, err := netip.ParseAddr(x[4:])
		if err != nil {
			return nk, fmt.Errorf("nonce key %q: %w", k, err)
		}
		nk.Source = a
	default:
		return nk, fmt.Errorf("nonce key %q: bad xTR", k)
	}
	id, err := strconv.ParseUint(parts[2], 10, 8)
	if err != nil {
		return nk, fmt.Errorf("nonce key %q: key ID: %w", k, err)
	}
	nk.KeyID = uint8(id)
	return nk, nil
}

func nonceValue(n uint64) string { return strconv.FormatUint(n, 10) }

func nodeKey(prefix, node string) string { return prefix + nodeDir + node }
