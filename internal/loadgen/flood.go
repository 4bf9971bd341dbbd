package loadgen

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// floodRingSize is the number of distinct packets a flood cycles through.
const floodRingSize = 4096

// floodRing builds the packets of a flood of kind c.FloodKind, each
// encoded once: the hot loop only sends them.
func floodRing(c *Config, s *eidSpace, itr netip.Addr, port uint16, rng *rand.Rand) ([][]byte, error) {
	valid, err := sampleMessages(c, s, itr, port, rng)
	if err != nil {
		return nil, err
	}
	ring := make([][]byte, floodRingSize)
	for i := range ring {
		kind := c.FloodKind
		if kind == FloodMixed {
			kind = FloodGarbage
			if i%2 == 1 {
				kind = FloodBadAuth
			}
		}
		if kind == FloodBadAuth {
			ring[i] = badAuthRegister(c, s, itr, rng)
			continue
		}
		switch rng.IntN(3) {
		case 0:
			ring[i] = randomBytes(rng)
		case 1:
			ring[i] = truncated(valid[rng.IntN(len(valid))], rng)
		default:
			ring[i] = badCounts(valid[rng.IntN(len(valid))], rng)
		}
	}
	return ring, nil
}

// plausibleTypes are the type nibbles garbage starts with, assigned types
// much more often than the others.
var plausibleTypes = []byte{1, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, 8, 8, 15, 0, 9, 12}

// randomBytes is a datagram of random bytes, mostly short, whose first
// byte has a plausible type nibble.
func randomBytes(rng *rand.Rand) []byte {
	var n int
	switch r := rng.IntN(10); {
	case r < 6:
		n = 1 + rng.IntN(64)
	case r < 9:
		n = 64 + rng.IntN(448)
	default:
		n = 512 + rng.IntN(888)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[0] = plausibleTypes[rng.IntN(len(plausibleTypes))]<<4 | b[0]&0x0f
	return b
}

// truncated is a real message cut short.
func truncated(m []byte, rng *rand.Rand) []byte {
	return append([]byte(nil), m[:1+rng.IntN(len(m)-1)]...)
}

// badCounts is a real message whose counts and lengths promise more than
// it holds: record count, ITR-RLOC count, locator count or an LCAF or
// authentication length.
func badCounts(m []byte, rng *rand.Rand) []byte {
	b := append([]byte(nil), m...)
	switch rng.IntN(4) {
	case 0:
		b[3] = byte(2 + rng.IntN(254)) // Record Count
	case 1:
		if len(b) > 2 {
			b[2] |= byte(1 + rng.IntN(31)) // Map-Request IRC / Map-Register flags
		}
	case 2:
		if len(b) >= 16 {
			binary.BigEndian.PutUint16(b[14:], uint16(rng.Uint32())) // auth length / address bytes
		}
	default:
		i := 4 + rng.IntN(len(b)-4)
		b[i] = byte(rng.Uint32()) // any byte after the header
	}
	return b
}

// sampleMessages encodes one of each message type the flood mangles.
func sampleMessages(c *Config, s *eidSpace, itr netip.Addr, port uint16, rng *rand.Rand) ([][]byte, error) {
	eid := wire.AddrFromIP(s.netip(s.addr(rng.IntN(s.n), 0, 0)))
	if c.HasInstanceID {
		eid = wire.AddrWithIID(c.InstanceID, eid)
	}
	rloc := wire.AddrFromIP(itr)
	rec := wire.EIDRecord{TTL: 1440, MaskLen: s.maskLen, Authoritative: true, EID: eid,
		Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255, Flags: wire.LocatorReachable, Address: rloc}}}
	mreq := &wire.MapRequest{Nonce: rng.Uint64(), ITRRLOCs: []wire.Address{rloc},
		Records: []wire.RequestRecord{{MaskLen: s.maskLen, EID: eid}}}
	ip, _ := eid.Addr()
	ecm := wire.EncapsulateMapRequest(mreq, ip, port, itr)
	reg := &wire.MapRegister{WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: rng.Uint64(), KeyID: c.KeyID,
		Algorithm: wire.AuthHMACSHA256, AuthData: randomAuth(rng, 32), Records: []wire.EIDRecord{rec}}}
	notify := &wire.MapNotify{AuthBody: reg.AuthBody}
	reply := &wire.MapReply{Nonce: rng.Uint64(), Records: []wire.EIDRecord{rec}}
	var out [][]byte
	for _, m := range []wire.Message{mreq, ecm, reg, notify, reply} {
		b, err := wire.Encode(m)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func randomAuth(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// badAuthRegister is a well-formed Map-Register for one of the prefixes
// that must fail authentication: random authentication data, none at all,
// signed with a wrong secret, a wrong length, or an unknown algorithm.
func badAuthRegister(c *Config, s *eidSpace, itr netip.Addr, rng *rand.Rand) []byte {
	eid := wire.AddrFromIP(s.netip(s.addr(rng.IntN(s.n), 0, 0)))
	if c.HasInstanceID {
		eid = wire.AddrWithIID(c.InstanceID, eid)
	}
	m := &wire.MapRegister{WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: rng.Uint64(), KeyID: c.KeyID,
		Algorithm: wire.AuthHMACSHA256,
		Records: []wire.EIDRecord{{TTL: 1440, MaskLen: s.maskLen, Authoritative: true, EID: eid,
			Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255,
				Flags: wire.LocatorLocal | wire.LocatorReachable, Address: wire.AddrFromIP(itr)}}}}}}
	alg := c.Algorithm
	if alg != wire.AuthHMACSHA1 {
		alg = wire.AuthHMACSHA256
	}
	switch rng.IntN(5) {
	case 0: // random MAC of the right length
		m.Algorithm, m.AuthData = alg, randomAuth(rng, alg.DigestLen())
	case 1: // no authentication
		m.Algorithm, m.AuthData = wire.AuthNone, nil
	case 2: // signed, with the wrong secret
		m.Algorithm = alg
		if b, err := wire.EncodeSigned(m, randomAuth(rng, 16), wire.AuthOptions{}); err == nil {
			return b
		}
	case 3: // a length no algorithm has
		m.Algorithm, m.AuthData = alg, randomAuth(rng, 1+rng.IntN(11))
	default: // an unassigned algorithm
		m.Algorithm, m.AuthData = wire.AuthAlg(4+rng.IntN(250)), randomAuth(rng, 32)
	}
	b, _ := wire.Encode(m)
	return b
}
