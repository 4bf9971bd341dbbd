//go:build linux

package kernel

import (
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Values of cache_entry.action (bpf/lisp.c).
const (
	actEncap = 0
	actDrop  = 1
	actPunt  = 2
)

const maxLocators = 8

// keyIPv6 marks IPv6 keys above the 24-bit instance ID (KEY_IPV6).
const keyIPv6 = 1 << 24

// eidKey is the LPM key of eid: IPv4 as ::ffff:a.b.c.d, IPv6 with
// keyIPv6 in the instance ID field.
func eidKey(eid mapping.EID) lispEidKey {
	p := eid.Prefix.Masked()
	k := lispEidKey{Iid: eid.IID, Addr: p.Addr().As16()}
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	} else {
		k.Iid |= keyIPv6
	}
	k.Prefixlen = 32 + uint32(bits)
	return k
}

// monotonic converts a wall-clock expiry into the program's clock
// (bpf_ktime_get_coarse_ns: CLOCK_MONOTONIC to a tick).
func monotonic(t time.Time) uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	d := time.Until(t)
	n := ts.Nano() + d.Nanoseconds()
	if n < 1 {
		n = 1 // expired already: any non-zero past value
	}
	return uint64(n)
}

// compile turns a map-cache entry into the program's value. Locators are
// compiled by the engine (same choices, same cumulative weights, so the
// same flow takes the same locator on either path); an entry with more
// usable locators than the program holds is left to the engine.
func (p *Path) compile(ce *dataplane.CacheEntry) lispCacheEntry {
	var v lispCacheEntry
	if !ce.Expires.IsZero() {
		v.Expires = monotonic(ce.Expires)
	}
	var cs []dataplane.Choice
	var total uint32
	if ce.Negative {
		switch ce.Action {
		case wire.ActionDrop:
			v.Action, v.Reason = actDrop, cDropNegative
		case wire.ActionDropPolicyDenied:
			v.Action, v.Reason = actDrop, cDropNegativePolicy
		case wire.ActionDropAuthFailure:
			v.Action, v.Reason = actDrop, cDropNegativeAuth
		case wire.ActionNativelyForward:
			// Through a PETR when there is one, else the engine's native
			// path.
			if cs, total = p.cfg.Engine.PETRChoices(); len(cs) == 0 {
				v.Action = actPunt
				return v
			}
			v.Petr = 1
		default: // send-map-request, no-action, unassigned
			v.Action = actPunt
			return v
		}
		if v.Action == actDrop {
			return v
		}
	} else {
		cs, total = p.cfg.Engine.Choices(ce.Locators)
	}
	if len(cs) > maxLocators {
		v.Action = actPunt
		return v
	}
	v.Action, v.Count, v.Total = actEncap, uint8(len(cs)), total
	for i, c := range cs {
		l := &v.Loc[i]
		l.Addr = c.RLOC.As16()
		l.Cum = c.Cum
		l.MaxInner = uint16(min(c.MaxInner, 65535))
		l.V6 = b2u(c.RLOC.Is6() && !c.RLOC.Is4In6())
	}
	return v
}

func (p *Path) write(ce *dataplane.CacheEntry) {
	k := eidKey(ce.EID)
	v := p.compile(ce)
	if err := p.objs.LispMapCache.Update(&k, &v, ebpf.UpdateAny); err != nil {
		p.log.Warn("kernel data path: map-cache update", "eid", ce.EID, "err", err)
		p.k.programErrors.Inc()
	}
	p.bump()
}

// SetMapCache inserts or replaces an entry.
func (p *Path) SetMapCache(ce dataplane.CacheEntry) {
	if !ce.EID.Prefix.IsValid() {
		return
	}
	ce.EID.Prefix = ce.EID.Prefix.Masked()
	ce.Locators = slices.Clone(ce.Locators)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries[ce.EID] = ce
	p.write(&ce)
}

// DeleteMapCache removes the entry for exactly eid.
func (p *Path) DeleteMapCache(eid mapping.EID) {
	if !eid.Prefix.IsValid() {
		return
	}
	eid.Prefix = eid.Prefix.Masked()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.entries, eid)
	k := eidKey(eid)
	_ = p.objs.LispMapCache.Delete(&k)
	p.bump()
}

// FlushMapCache empties the map-cache of iid, or of every instance.
func (p *Path) FlushMapCache(iid uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for eid := range p.entries {
		if iid == dataplane.AllInstances || eid.IID == iid {
			delete(p.entries, eid)
			k := eidKey(eid)
			_ = p.objs.LispMapCache.Delete(&k)
		}
	}
	p.bump()
}

// SetLocatorUp records an RLOC-probing verdict by rewriting the entry.
func (p *Path) SetLocatorUp(eid mapping.EID, rloc netip.Addr, up bool) {
	if !eid.Prefix.IsValid() {
		return
	}
	eid.Prefix = eid.Prefix.Masked()
	p.mu.Lock()
	defer p.mu.Unlock()
	ce, ok := p.entries[eid]
	if !ok || ce.Negative {
		return
	}
	i := slices.IndexFunc(ce.Locators, func(l dataplane.Locator) bool { return l.Addr == rloc })
	if i < 0 || ce.Locators[i].Up == up {
		return
	}
	ce.Locators = slices.Clone(ce.Locators)
	ce.Locators[i].Up = up
	p.entries[eid] = ce
	p.write(&ce)
}

// SetLocalEIDs replaces the ETR's database.
func (p *Path) SetLocalEIDs(eids []mapping.EID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.local = slices.Clone(eids)
	p.syncLocal()
}

// SetAwayEIDs replaces the hosts that moved away: the program hands their
// packets to the engine, which re-encapsulates them and tells the control
// plane (AwayHit).
func (p *Path) SetAwayEIDs(eids []mapping.EID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.away = slices.Clone(eids)
	p.syncLocal()
}

// SetDynamicEIDs replaces the dynamic-EID ranges and the known hosts: a
// packet from a host in a range that is not known goes to the engine,
// which reports it (HostSeen).
func (p *Path) SetDynamicEIDs(ranges, known []mapping.EID) {
	want := map[lispEidKey]uint8{}
	for _, r := range ranges {
		if r.Prefix.IsValid() {
			want[eidKey(r)] = 1
		}
	}
	for _, h := range known {
		if h.Prefix.IsValid() {
			want[eidKey(h)] = 0
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sync(p.objs.LispDynamicEids, p.dynKeys, want)
	p.dynKeys = want
	p.ranges = slices.Clone(ranges)
	p.syncLocal()
}

// SetPETRSources replaces the inner sources, per instance, whose packets
// for non-LISP hosts the PETR decapsulates in the kernel; the others go
// to the engine, which drops and counts them.
func (p *Path) SetPETRSources(srcs map[uint32][]netip.Prefix) {
	want := map[lispEidKey]uint8{}
	for iid, ps := range srcs {
		for _, pfx := range ps {
			if pfx.IsValid() {
				want[eidKey(mapping.EID{IID: iid, Prefix: pfx})] = 1
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sync(p.objs.LispPetrSources, p.petrKeys, want)
	p.petrKeys = want
}

func (p *Path) syncLocal() {
	want := map[lispEidKey]uint8{}
	for _, e := range p.local {
		if e.Prefix.IsValid() {
			want[eidKey(e)] = 1
		}
	}
	// Decapsulated traffic for a range's address where no host was seen
	// goes to the engine, which tells the control plane which ITR sent
	// it (UnseenHostHit); a detected host is in local, more specific.
	for _, e := range p.ranges {
		if e.Prefix.IsValid() {
			want[eidKey(e)] = 3
		}
	}
	for _, e := range p.away {
		if e.Prefix.IsValid() {
			want[eidKey(e)] = 2
		}
	}
	p.sync(p.objs.LispLocalEids, p.eidKeys, want)
	p.eidKeys = want
}

// sync makes m hold want, given that it holds have: additions and changes
// first, then removals, so that a prefix that stays never disappears.
func (p *Path) sync(m *ebpf.Map, have, want map[lispEidKey]uint8) {
	for k, v := range want {
		if old, ok := have[k]; ok && old == v {
			continue
		}
		if err := m.Update(&k, v, ebpf.UpdateAny); err != nil {
			p.log.Warn("kernel data path: update", "map", m.String(), "err", err)
			p.k.programErrors.Inc()
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			_ = m.Delete(&k)
		}
	}
	p.bump()
}

// MapCacheEntries is how many entries the program holds.
func (p *Path) MapCacheEntries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}
