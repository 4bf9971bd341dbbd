package mapserver

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Every xTR that registers is known per site: (site, xTR-ID), or (site,
// source address) for an xTR that sends no xTR-ID. Keying by site keeps
// tenants apart: a site that sends another site's xTR-ID gets an entry of
// its own, so it can neither advance the other xTR's nonce (lock-out) nor
// become the security association its subscriptions are signed with.
//
// An entry holds what RFC 9301 §5.6 asks the Map-Server to keep (the
// last nonce per key ID, persisted: see state.go) and what pub/sub binds
// to (the addresses the xTR registered from, RFC 9437 §7).

// xtrKey names one xTR within its site.
type xtrKey struct {
	id  [16]byte
	src netip.Addr // an xTR without xTR-ID is known by its address
}

// xtrState is one xTR of one site.
type xtrState struct {
	nonces []keyNonce
	addrs  []netip.Addr // registered from, newest first
	last   int64        // unix ns of its last accepted Map-Register
	subs   int          // subscriptions it holds
	gone   bool         // evicted: its subscriptions end at the next sweep
}

type keyNonce struct {
	keyID uint8
	nonce uint64
}

// maxXTRAddrs bounds the addresses an xTR is bound to: a multihomed xTR
// registers from one per Map-Server, rarely more than a few.
const maxXTRAddrs = 4

func (x *xtrState) nonce(keyID uint8) (uint64, bool) {
	for _, k := range x.nonces {
		if k.keyID == keyID {
			return k.nonce, true
		}
	}
	return 0, false
}

func (x *xtrState) setNonce(keyID uint8, n uint64) {
	for i := range x.nonces {
		if x.nonces[i].keyID == keyID {
			x.nonces[i].nonce = n
			return
		}
	}
	x.nonces = append(x.nonces, keyNonce{keyID, n})
}

// bind records a registers from a, newest first.
func (x *xtrState) bind(a netip.Addr) {
	if i := slices.Index(x.addrs, a); i >= 0 {
		copy(x.addrs[1:i+1], x.addrs[:i])
		x.addrs[0] = a
		return
	}
	if len(x.addrs) < maxXTRAddrs {
		x.addrs = append(x.addrs, netip.Addr{})
	}
	copy(x.addrs[1:], x.addrs)
	x.addrs[0] = a
}

func (x *xtrState) boundTo(a netip.Addr) bool { return slices.Contains(x.addrs, a) }

// siteXTRs is the xTR table of one site, with the window of recently
// accepted Map-Registers that protects what nonces cannot (see
// digestWindow).
type siteXTRs struct {
	xtrs   map[xtrKey]*xtrState
	recent digestWindow
}

// digest identifies one signed Map-Register: the leading 8 bytes of its
// authentication data, an HMAC over the whole message (nonce included)
// and so uniform; nobody without the key can make two collide.
type digest uint64

func digestOf(auth []byte) digest {
	var b [8]byte
	copy(b[:], auth)
	d := digest(binary.BigEndian.Uint64(b[:]))
	if d == 0 {
		d = 1 // 0 marks a free slot
	}
	return d
}

// digestWindow remembers the Map-Registers a site's xTRs sent lately, for
// sites whose xTRs do not make nonces increase: Open Overlay Router 1.3
// (random nonces, no xTR-ID) and OpenDaylight (nonce 0). An exact copy of
// one of them (same digest) is a duplicate: either the xTR re-sent the same
// message (OpenDaylight always does) or someone replays it. A duplicate
// may refresh what its xTR has registered, but may not move a prefix away
// from another site or site-ID, nor change the locators its xTR has since
// registered; its Map-Notify goes only to the address the original came
// from. See docs/security.md.
//
// It is on the path of every such Map-Register, so it is an open-addressed
// table indexed by the digest itself (already uniform), without pointers
// for the collector to scan, and evicts in insertion order from a ring.
type digestWindow struct {
	slots []windowSlot // a power of two, at most half full, up to windowSlots; key 0 is free
	ring  []digest     // insertion order, for eviction once full
	next  int
}

type windowSlot struct {
	key digest
	at  int64
	src [16]byte // the first source, 4-in-6 for IPv4
	is4 bool
}

// seenReg is what the window knows of a digest.
type seenReg struct {
	src netip.Addr
	at  int64
}

const (
	// windowSize bounds one site's window: an xTR registering every 60 s
	// for a day is 1440 entries.
	windowSize = 8192
	// windowSlots keeps the table at most half full, so probes stay short.
	windowSlots = 2 * windowSize
	// minWindowSlots is where a table starts: a site whose xTR registers
	// once a minute never needs the full 650 KB.
	minWindowSlots = 64
	// windowAge is how long a Map-Register counts as seen.
	windowAge = 24 * time.Hour
)

// find returns the slot of d, or the free slot where it would go.
func (w *digestWindow) find(d digest) int {
	mask := len(w.slots) - 1
	i := int(uint64(d)) & mask
	for w.slots[i].key != 0 && w.slots[i].key != d {
		i = (i + 1) & mask
	}
	return i
}

func (w *digestWindow) get(d digest, now int64) (seenReg, bool) {
	if w.slots == nil {
		return seenReg{}, false
	}
	e := &w.slots[w.find(d)]
	if e.key == 0 || now-e.at > int64(windowAge) {
		return seenReg{}, false
	}
	src := netip.AddrFrom16(e.src)
	if e.is4 {
		src = src.Unmap()
	}
	return seenReg{src: src, at: e.at}, true
}

// put remembers d as seen now from src; a known digest keeps its first
// source (the one a replay cannot choose) and its place in the ring.
func (w *digestWindow) put(d digest, src netip.Addr, now int64) {
	if w.slots == nil {
		w.slots = make([]windowSlot, minWindowSlots)
	}
	if n := len(w.slots); 2*(len(w.ring)+1) > n && n < windowSlots {
		w.grow(2 * n)
	}
	i := w.find(d)
	if w.slots[i].key == d {
		w.slots[i].at = now
		return
	}
	if len(w.ring) < windowSize {
		w.ring = append(w.ring, d)
	} else {
		w.remove(w.ring[w.next])
		w.ring[w.next] = d
		w.next = (w.next + 1) % windowSize
		i = w.find(d) // the removal may have moved entries
	}
	w.slots[i] = windowSlot{key: d, at: now, src: src.As16(), is4: src.Is4()}
}

// grow moves the entries to a table of n slots.
func (w *digestWindow) grow(n int) {
	old := w.slots
	w.slots = make([]windowSlot, n)
	for _, e := range old {
		if e.key != 0 {
			w.slots[w.find(e.key)] = e
		}
	}
}

// remove deletes d, shifting back the entries of its probe run that would
// no longer be found past the freed slot.
func (w *digestWindow) remove(d digest) {
	i := w.find(d)
	if w.slots[i].key == 0 {
		return
	}
	mask := len(w.slots) - 1
	for j := i; ; {
		w.slots[i] = windowSlot{}
		for {
			j = (j + 1) & mask
			if w.slots[j].key == 0 {
				return
			}
			// The entry at j may move to i when its home slot is not
			// cyclically within (i, j].
			home := int(uint64(w.slots[j].key)) & mask
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				break
			}
		}
		w.slots[i] = w.slots[j]
		i = j
	}
}

// xtrTableLocked returns the xTR table of site name, making it.
func (s *Server) xtrTableLocked(name string) *siteXTRs {
	t, ok := s.xtrs[name]
	if !ok {
		t = &siteXTRs{xtrs: map[xtrKey]*xtrState{}}
		s.xtrs[name] = t
	}
	return t
}

// keyOf is the xTR key of a Map-Register received from src.
func keyOf(m *wire.MapRegister, src netip.Addr) xtrKey {
	if m.HasXTRID {
		return xtrKey{id: m.XTRID}
	}
	return xtrKey{src: src}
}

// xtrLocked returns the entry of k in site name, making it; a site at its
// limit of xTRs forgets the one that registered least recently first.
func (s *Server) xtrLocked(name string, k xtrKey, now int64) *xtrState {
	t := s.xtrTableLocked(name)
	if x, ok := t.xtrs[k]; ok {
		return x
	}
	if len(t.xtrs) >= s.opts.MaxXTRsPerSite {
		var oldest xtrKey
		var ox *xtrState
		for k, x := range t.xtrs {
			if ox == nil || x.last < ox.last {
				oldest, ox = k, x
			}
		}
		s.forgetXTRLocked(name, oldest, ox)
		s.c.xtrEvicted.Inc()
	}
	x := &xtrState{last: now}
	t.xtrs[k] = x
	if k.src == (netip.Addr{}) {
		s.byXTRID[k.id] = append(s.byXTRID[k.id], name)
	}
	return x
}

// forgetXTRLocked removes one xTR of site name.
func (s *Server) forgetXTRLocked(name string, k xtrKey, x *xtrState) {
	delete(s.xtrs[name].xtrs, k)
	x.gone = true
	if k.src == (netip.Addr{}) {
		names := slices.DeleteFunc(s.byXTRID[k.id], func(n string) bool { return n == name })
		if len(names) == 0 {
			delete(s.byXTRID, k.id)
		} else {
			s.byXTRID[k.id] = names
		}
	}
	s.stateDirty = true
}

// forgetSitesLocked drops the xTR tables of sites no longer configured.
func (s *Server) forgetSitesLocked() {
	for name, t := range s.xtrs {
		if _, ok := s.sites[name]; ok {
			continue
		}
		for k, x := range t.xtrs {
			s.forgetXTRLocked(name, k, x)
		}
		delete(s.xtrs, name)
	}
}

// admission is the replay verdict on an authenticated Map-Register.
type admission struct {
	x         *xtrState
	first     bool // the first Map-Register this node takes from the xTR
	changed   bool // it changed this node's own registrations
	table     *siteXTRs
	dg        digest
	useWindow bool
}

// admitLocked applies the replay rules to an authenticated Map-Register
// of st received from src (RFC 9301 §5.6): for a site that requires it,
// the nonce must be above the last one accepted from the same xTR and key
// ID; for the others, and for any xTR without xTR-ID (whose key is its
// source address, which a replay need not share), an exact copy of a
// recent Map-Register is a duplicate with bounded effects. It returns false
// when the message must be dropped (counted and logged here).
func (s *Server) admitLocked(st *site, m *wire.MapRegister, src netip.Addr, eids []mapping.EID, now int64) (admission, bool) {
	a := admission{table: s.xtrTableLocked(st.cfg.Name)}
	k := keyOf(m, src)
	strict := !st.cfg.LegacyNonces
	if strict {
		if x, ok := a.table.xtrs[k]; ok {
			if last, seen := x.nonce(m.KeyID); seen && m.Nonce <= last {
				s.c.replay.Inc()
				s.authFailLog(src, "Map-Register nonce not increasing (replay?)", eids[0])
				return a, false
			}
		}
	}
	if !strict || !m.HasXTRID {
		a.useWindow, a.dg = true, digestOf(m.AuthData)
		if e, seen := a.table.recent.get(a.dg, now); seen {
			// From elsewhere it cannot be the xTR re-sending: it would
			// register a new xTR (no xTR-ID) or redirect the xTR's
			// Map-Notifies (xTR-ID) to the sender.
			if e.src != src || !s.duplicateHarmlessLocked(st, m, src, eids, now) {
				s.c.duplicate.Inc()
				s.authFailLog(src, "duplicate Map-Register from another address, or that would move or change a registration (replay?)", eids[0])
				return a, false
			}
		}
	}
	if s.opts.Store != nil && s.copiedFromElsewhereLocked(digestOf(m.AuthData), src, eids) {
		s.c.duplicate.Inc()
		s.authFailLog(src, "copy of a Map-Register another node of the cluster took, from another address (replay?)", eids[0])
		return a, false
	}
	x, existed := a.table.xtrs[k]
	a.first = !existed || x.last == 0
	a.x = s.xtrLocked(st.cfg.Name, k, now)
	if strict {
		a.x.setNonce(m.KeyID, m.Nonce)
		s.stateDirty = true
	}
	return a, true
}

// accept records an admitted Map-Register as seen.
func (a *admission) accept(src netip.Addr, now int64) {
	a.x.last = now
	a.x.bind(src)
	if a.useWindow {
		a.table.recent.put(a.dg, src, now)
	}
}

// duplicateHarmlessLocked tells whether a duplicate Map-Register changes
// nothing others see: no record takes a prefix from another site or
// site-ID, and no record gives its own xTR other locators than it has now.
func (s *Server) duplicateHarmlessLocked(st *site, m *wire.MapRegister, src netip.Addr, eids []mapping.EID, now int64) bool {
	cand := etrReg{src: netip.AddrPortFrom(src, 0)}
	if m.HasXTRID {
		cand.flags, cand.xtrID, cand.siteID = flagXTRID, m.XTRID, m.SiteID
	}
	for i, eid := range eids {
		r, ok := s.regs.Get(eid)
		if !ok {
			continue
		}
		var locs []mapping.Locator
		for j := range m.Records[i].Locators {
			if l, ok := mapping.LocatorFromWire(&m.Records[i].Locators[j]); ok {
				locs = append(locs, l)
			}
		}
		mapping.SortLocators(locs)
		for j := range r.etrs {
			e := &r.etrs[j]
			if e.expires <= now {
				continue
			}
			if !sameSite(r.site, e, st, &cand) {
				return false
			}
			if sameETR(e, &cand) && !slices.Equal(e.locators, locs) {
				return false
			}
		}
	}
	return true
}
