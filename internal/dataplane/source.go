package dataplane

import (
	"net/netip"

	"github.com/gaissmai/bart"
)

// SourceCheck is the anti-spoofing check of one instance ID's outer
// sources at the ETR (RFC 9300 §8, §16): without one, anyone who can send
// UDP 4341 to a local RLOC injects packets into the instance. A packet
// passes when its outer source lies in RLOCPrefixes, or, with MapCache,
// when it is a locator of the positive map-cache entry covering the inner
// source. Everything else is dropped: "source-rloc-check" when the inner
// source's entry names other locators, "source-rloc-unknown" when there is
// no such entry (which drops the first packets of a site this ETR has not
// resolved yet, unless RLOCPrefixes lets them in).
type SourceCheck struct {
	MapCache     bool
	RLOCPrefixes []netip.Prefix
}

// SourcePolicy is what the engine checks the sources of decapsulated
// packets against, per instance ID.
type SourcePolicy struct {
	// Checks turns the outer-source check on for the instance IDs it
	// lists; the others take any outer source.
	Checks map[uint32]SourceCheck
	// PETRSources are, per instance ID, the inner sources a PETR relays
	// (RFC 6832 §4.2): the EID prefixes of the sites it serves. A packet
	// decapsulated for a destination that is not a local EID is dropped
	// ("petr-source-not-allowed") unless its inner source is in this list:
	// an instance without a list relays nothing.
	PETRSources map[uint32][]netip.Prefix
}

// srcPolicy is the immutable per-instance form of a SourcePolicy.
type srcPolicy struct {
	check    bool // outer sources are checked
	mapCache bool
	rlocs    *bart.Lite // outer sources accepted whatever the inner source
	petr     *bart.Lite // inner sources a PETR relays
}

// SetSourcePolicy replaces the source checks of every instance (a reload
// applies it live).
func (e *Engine) SetSourcePolicy(p SourcePolicy) {
	for iid := range p.Checks {
		if e.insts[iid] == nil {
			e.log.Debug("source check for an instance not served", "instance-id", iid)
		}
	}
	for _, inst := range e.instList {
		sp := &srcPolicy{rlocs: new(bart.Lite), petr: new(bart.Lite)}
		if c, ok := p.Checks[inst.iid]; ok {
			sp.check, sp.mapCache = true, c.MapCache
			for _, pfx := range c.RLOCPrefixes {
				sp.rlocs.Insert(pfx.Masked())
			}
		}
		for _, pfx := range p.PETRSources[inst.iid] {
			sp.petr.Insert(pfx.Masked())
		}
		inst.src.Store(sp)
	}
}

// outerSourceOK applies the instance's outer-source check to a packet
// whose inner packet is pkt.
func (sp *srcPolicy) outerSourceOK(inst *instance, pkt []byte, o *Outer) (dropReason, bool) {
	if sp.rlocs.Lookup(o.Src) {
		return 0, true
	}
	if !sp.mapCache {
		return dropSourceRLOCUnknown, false
	}
	f, ok := inst.cache.Load().Lookup(srcAddr(pkt))
	if !ok || f.negative {
		return dropSourceRLOCUnknown, false
	}
	for i := range f.locs {
		if f.locs[i].Addr == o.Src {
			return 0, true
		}
	}
	return dropSourceRLOCCheck, false
}
