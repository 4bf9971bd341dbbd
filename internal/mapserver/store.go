package mapserver

import (
	"encoding/binary"
	"encoding/hex"
	"maps"
	"net/netip"
	"slices"

	"github.com/lispd/lispd/internal/mapping"
)

// A Map-Server's registrations live in its own memory (the default) or,
// for a cluster of Map-Servers, also in a Store shared with the other
// nodes (internal/cluster keeps it in etcd). With a Store, each node
// still answers from its own LPM table, which then holds two kinds of
// xTR registrations:
//
//   - its own: Map-Registers this node accepted; they expire here, and
//     the node writes them to the Store as one Record per prefix whenever
//     what others would answer changes (never for a refresh);
//   - remote ones (flagRemote): the Records of the other nodes, applied
//     from the Store's watch; they last until their node deletes them (or
//     its lease ends).
//
// Which site holds a prefix is decided the same way on every node: the
// Record written last (highest Store revision) names the holder, and the
// Records of the holder's site and site-ID merge. A node's own change not
// yet written counts as the newest: it is about to be. A node whose own
// registration another site's newer Record displaces sends the Map-Notify
// to its xTRs that lost the prefix (it holds their addresses and the
// site's keys) and deletes its Record.

// Store is where the Map-Server publishes what the cluster must know. Its
// methods are called with the Server's lock held: they must not block or
// call back into the Server.
type Store interface {
	// Changed says that this node's own registration of eid changed: it
	// is new, gone, or answers differently. The store reads it back with
	// LocalRecord when it writes.
	Changed(eid mapping.EID)
	// Nonce says that a Map-Register of an xTR was accepted with nonce n
	// in a way the other nodes must learn, so that a replay of it to any
	// of them is refused: it changed what the cluster holds, or it is the
	// first this node took from that xTR.
	Nonce(k NonceKey, n uint64)
}

// NonceKey names one xTR's replay state: (site, xTR-ID or source address,
// key ID), as RFC 9301 §5.6 keeps it.
type NonceKey struct {
	Site   string
	XTRID  [16]byte
	Source netip.Addr // an xTR without xTR-ID is known by its address
	KeyID  uint8
}

// Record is one node's registration of one EID prefix as the cluster sees
// it: what it answers, without the times a refresh moves.
type Record struct {
	Site string      `json:"site"`
	XTRs []RecordXTR `json:"xtrs"`
	// Digest identifies the Map-Register that made this content (hex of
	// the leading bytes of its authentication data): another node refuses
	// a copy of it from another address, as one Map-Server does with its
	// window of recent Map-Registers (replay.go).
	Digest string `json:"digest,omitempty"`
}

// RecordXTR is one xTR's part of a Record.
type RecordXTR struct {
	Source   netip.AddrPort  `json:"source"`
	XTRID    string          `json:"xtr-id,omitempty"` // hex, with flag xtr-id
	SiteID   uint64          `json:"site-id,omitempty"`
	KeyID    uint8           `json:"key-id"`
	Flags    uint8           `json:"flags"`
	Version  uint16          `json:"map-version,omitempty"`
	TTL      uint32          `json:"ttl"`
	Last     int64           `json:"last"` // unix ns of the Map-Register that made this content
	Locators []RecordLocator `json:"locators"`
}

// RecordLocator is one locator of a RecordXTR.
type RecordLocator struct {
	Address   netip.Addr `json:"address"`
	Priority  uint8      `json:"priority"`
	Weight    uint8      `json:"weight"`
	MPriority uint8      `json:"m-priority"`
	MWeight   uint8      `json:"m-weight"`
	Flags     uint16     `json:"flags"`
}

// remoteRec is another node's Record of one prefix, with the Store
// revision that wrote it.
type remoteRec struct {
	rec    Record
	rev    int64
	digest digest // rec.Digest decoded; zero without one
}

// localRev is the Store revision of this node's own Record of a prefix,
// zero while a change is not yet written; gen counts the changes so that
// a write acknowledges only the content it carried.
type localRev struct {
	rev int64
	gen uint64
}

// storeChangedLocked tells the store this node's own registration of eid
// changed.
func (s *Server) storeChangedLocked(eid mapping.EID) {
	if s.opts.Store == nil {
		return
	}
	lr := s.localRevs[eid]
	s.localRevs[eid] = localRev{gen: lr.gen + 1}
	s.opts.Store.Changed(eid)
}

// sameContent tells whether two registrations of one xTR answer alike:
// everything but the times a refresh moves.
func sameContent(a, b *etrReg) bool {
	return a.src == b.src && a.xtrID == b.xtrID && a.siteID == b.siteID && a.keyID == b.keyID &&
		a.flags == b.flags && a.version == b.version && a.ttl == b.ttl && slices.Equal(a.locators, b.locators)
}

// Local is this node's own registration of one prefix, as the store
// writes it.
type Local struct {
	Record Record
	Held   bool   // false: it holds none; the store deletes its Record
	Gen    uint64 // the generation of this content, for Written
	// Displaces names the other nodes' Records of another site this one
	// takes the prefix from (a move), with the revision seen of each: the
	// store writes only if they are still those.
	Displaces map[string]int64
}

// LocalRecord returns this node's own live registration of eid.
func (s *Server) LocalRecord(eid mapping.EID) Local {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := Local{Gen: s.localRevs[eid].gen}
	r, ok := s.regs.Get(eid)
	if !ok {
		return l
	}
	now := s.now()
	l.Record.Site = r.site.cfg.Name
	for i := range r.etrs {
		e := &r.etrs[i]
		if e.flags&flagRemote != 0 || e.expires <= now {
			continue
		}
		x := RecordXTR{Source: e.src, SiteID: e.siteID, KeyID: e.keyID, Flags: e.flags, Version: e.version,
			TTL: e.ttl, Last: e.last, Locators: make([]RecordLocator, len(e.locators))}
		if e.flags&flagXTRID != 0 {
			x.XTRID = hex.EncodeToString(e.xtrID[:])
		}
		for j, l := range e.locators {
			x.Locators[j] = RecordLocator{Address: l.Addr, Priority: l.Priority, Weight: l.Weight,
				MPriority: l.MPriority, MWeight: l.MWeight, Flags: l.Flags}
		}
		l.Record.XTRs = append(l.Record.XTRs, x)
	}
	l.Held = len(l.Record.XTRs) > 0
	if !l.Held {
		l.Record = Record{}
		return l
	}
	if d, ok := s.digests[eid]; ok {
		l.Record.Digest = hex.EncodeToString(binary.BigEndian.AppendUint64(nil, uint64(d)))
	}
	for node, rr := range s.remote[eid] {
		if rr.rec.Site != l.Record.Site || len(rr.rec.XTRs) > 0 && rr.rec.XTRs[0].SiteID != l.Record.XTRs[0].SiteID {
			if l.Displaces == nil {
				l.Displaces = map[string]int64{}
			}
			l.Displaces[node] = rr.rev
		}
	}
	return l
}

// Written tells the Server that the store wrote (or deleted) its Record
// of eid at revision rev with the content of generation gen.
func (s *Server) Written(eid mapping.EID, gen uint64, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lr, ok := s.localRevs[eid]
	if !ok || lr.gen != gen {
		return // changed again since: still pending
	}
	r, held := s.regs.Get(eid)
	if !held || !slices.ContainsFunc(r.etrs, func(e etrReg) bool { return e.flags&flagRemote == 0 }) {
		delete(s.localRevs, eid)
		delete(s.digests, eid)
		return
	}
	s.localRevs[eid] = localRev{rev: rev, gen: gen}
}

// LocalEIDs returns every prefix this node holds a live registration of:
// what it writes again when its Store lease was lost.
func (s *Server) LocalEIDs() []mapping.EID {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []mapping.EID
	for eid, r := range s.regs.All() {
		if slices.ContainsFunc(r.etrs, func(e etrReg) bool { return e.flags&flagRemote == 0 && e.expires > now }) {
			out = append(out, eid)
		}
	}
	return out
}

// ApplyRemote applies node's Record of eid written at revision rev; nil
// rec means node's Record is gone (deleted, or its lease ended).
func (s *Server) ApplyRemote(node string, eid mapping.EID, rec *Record, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyRemoteLocked(node, eid, rec, rev)
	s.rebuildLocked(eid)
}

func (s *Server) applyRemoteLocked(node string, eid mapping.EID, rec *Record, rev int64) {
	recs := s.remote[eid]
	if rec == nil {
		if _, ok := recs[node]; !ok {
			return
		}
		delete(recs, node)
		if len(recs) == 0 {
			delete(s.remote, eid)
		}
		return
	}
	if recs == nil {
		recs = map[string]remoteRec{}
		s.remote[eid] = recs
	}
	rr := remoteRec{rec: *rec, rev: rev}
	if b, err := hex.DecodeString(rec.Digest); err == nil && len(b) == 8 {
		rr.digest = digest(binary.BigEndian.Uint64(b))
	}
	recs[node] = rr
}

// RemoteRecord is one other node's Record, as a full listing returns it.
type RemoteRecord struct {
	Node   string
	EID    mapping.EID
	Record Record
	Rev    int64
}

// ReplaceRemote replaces every remote Record with recs: a full listing,
// after the watch lost its place (a partition longer than the Store keeps
// history). Prefixes whose Records changed are rebuilt and published.
func (s *Server) ReplaceRemote(recs []RemoteRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.remote
	s.remote = map[mapping.EID]map[string]remoteRec{}
	for _, r := range recs {
		s.applyRemoteLocked(r.Node, r.EID, &r.Record, r.Rev)
	}
	touched := map[mapping.EID]bool{}
	for eid := range old {
		touched[eid] = true
	}
	for eid := range s.remote {
		touched[eid] = true
	}
	for eid := range touched {
		if !maps.EqualFunc(old[eid], s.remote[eid], func(a, b remoteRec) bool { return a.rev == b.rev }) {
			s.rebuildLocked(eid)
		}
	}
}

// RemoteStats counts the prefixes held by each other node, for the
// cluster view.
func (s *Server) RemoteStats() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, recs := range s.remote {
		for node := range recs {
			out[node]++
		}
	}
	return out
}

// LocalCount is the number of prefixes this node holds its own live
// registration of.
func (s *Server) LocalCount() int { return len(s.LocalEIDs()) }

// ApplyNonce raises the replay floor of k to n: a Map-Register another
// node accepted with nonce n, so none with a nonce not above it is taken
// here either.
func (s *Server) ApplyNonce(k NonceKey, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[k.Site]; !ok {
		return
	}
	xk := xtrKey{id: k.XTRID, src: k.Source}
	t := s.xtrTableLocked(k.Site)
	x, ok := t.xtrs[xk]
	if !ok {
		x = s.xtrLocked(k.Site, xk, s.now())
		x.last = 0 // known from elsewhere: not registering here
	}
	if last, seen := x.nonce(k.KeyID); !seen || n > last {
		x.setNonce(k.KeyID, n)
		s.stateDirty = true
	}
}

// remoteETR turns one xTR of a remote Record into a registration entry.
func remoteETR(x *RecordXTR) (etrReg, bool) {
	e := etrReg{src: x.Source, siteID: x.SiteID, keyID: x.KeyID, flags: x.Flags&^flagRemote | flagRemote,
		version: x.Version, ttl: x.TTL, last: x.Last, expires: 1<<63 - 1}
	if x.Flags&flagXTRID != 0 {
		b, err := hex.DecodeString(x.XTRID)
		if err != nil || len(b) != len(e.xtrID) {
			return etrReg{}, false
		}
		copy(e.xtrID[:], b)
	}
	for _, l := range x.Locators {
		if !l.Address.IsValid() {
			return etrReg{}, false
		}
		e.locators = append(e.locators, mapping.Locator{Addr: l.Address, Priority: l.Priority, Weight: l.Weight,
			MPriority: l.MPriority, MWeight: l.MWeight, Flags: l.Flags})
	}
	mapping.SortLocators(e.locators)
	return e, true
}

// rebuildLocked recomputes the registration of eid from this node's own
// entries and the remote Records: the holder is the newest (see the top
// of this file); own entries a newer Record of another site displaces are
// told where the prefix went and dropped.
func (s *Server) rebuildLocked(eid mapping.EID) {
	now := s.now()
	r, had := s.regs.Get(eid)
	var local []etrReg
	var before []mapping.Locator
	var beforeSite *site
	var beforeSiteID uint64
	if had {
		before, beforeSite = r.merged(now), r.site
		if len(r.etrs) > 0 {
			beforeSiteID = r.etrs[0].siteID
		}
		lapsed := false
		for _, e := range r.etrs {
			if e.flags&flagRemote == 0 {
				if e.expires > now {
					local = append(local, e)
				} else {
					lapsed = true
				}
			}
		}
		if lapsed {
			s.storeChangedLocked(eid)
		}
	}
	type holder struct {
		site   *site
		siteID uint64
		rev    int64
	}
	var best *holder
	if len(local) > 0 {
		rev := s.localRevs[eid].rev
		if rev == 0 {
			rev = 1<<63 - 1 // not written yet: about to be the newest
		}
		best = &holder{site: r.site, siteID: local[0].siteID, rev: rev}
	}
	for _, rr := range s.remote[eid] {
		st, ok := s.sites[rr.rec.Site]
		if !ok || len(rr.rec.XTRs) == 0 || !s.mayRegister(st, eid) {
			continue // a node configured otherwise: nothing this one can answer for
		}
		if best == nil || rr.rev > best.rev {
			best = &holder{site: st, siteID: rr.rec.XTRs[0].SiteID, rev: rr.rev}
		}
	}
	if best == nil {
		if had {
			s.regs.Delete(eid)
			delete(s.moved, eid)
			s.publishLocked(eid)
		}
		return
	}
	if !had {
		r = &registration{eid: eid}
		s.regs.Insert(eid, r)
	}
	var lost []etrReg
	if len(local) > 0 && (best.site != r.site || best.siteID != local[0].siteID) {
		lost, local = local, nil
		s.storeChangedLocked(eid)
	}
	etrs := local
	for _, rr := range s.remote[eid] {
		if rr.rec.Site != best.site.cfg.Name {
			continue
		}
		for i := range rr.rec.XTRs {
			e, ok := remoteETR(&rr.rec.XTRs[i])
			if !ok || e.siteID != best.siteID || slices.ContainsFunc(etrs, func(o etrReg) bool { return sameETR(&o, &e) }) {
				continue
			}
			etrs = append(etrs, e)
		}
	}
	clear(r.etrs)
	r.etrs, r.site, r.reply = etrs, best.site, nil
	s.scheduleLocked(r)
	if beforeSite != nil && (beforeSite != best.site || beforeSiteID != best.siteID) {
		// Moved elsewhere in the cluster; the node that took it counted it.
		mv := s.moved[eid]
		s.moved[eid] = moveStat{moves: mv.moves + 1, last: now}
	}
	if len(lost) > 0 {
		s.log.Info("registration moved", "eid", eid, "from-site", beforeSite.cfg.Name, "to-site", best.site.cfg.Name,
			"from", lost[0].src.Addr(), "by", "another node")
		s.notifyMovedLocked(r, beforeSite, lost, &etrReg{})
	}
	if after := r.merged(now); beforeSite != r.site || !slices.Equal(before, after) {
		s.changedLocked(r, nil)
	}
}

// copiedFromElsewhereLocked tells whether a Map-Register with digest d
// received from src is a copy, from another address, of the one that made
// another node's Record of one of eids: a replay across nodes that the
// nonce rule cannot see (an xTR without xTR-ID, a site without the nonce
// rule).
func (s *Server) copiedFromElsewhereLocked(d digest, src netip.Addr, eids []mapping.EID) bool {
	if len(s.remote) == 0 || d == 0 {
		return false
	}
	for _, eid := range eids {
		for _, rr := range s.remote[eid] {
			if rr.digest != d {
				continue
			}
			if !slices.ContainsFunc(rr.rec.XTRs, func(x RecordXTR) bool { return x.Source.Addr() == src }) {
				return true
			}
		}
	}
	return false
}
