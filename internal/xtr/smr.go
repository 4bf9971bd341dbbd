package xtr

import (
	"container/list"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/mapping"
)

// Bounds on the SMRs an ETR sends. The ITRs it solicits are the outer
// sources of the traffic it decapsulates, which anyone can spoof: 50,000
// spoofed sources turned one database change into 200,000 SMRs, sent to
// addresses of the spoofer's choosing.
const (
	// maxRecentITRs caps the ITRs remembered as SMR targets, verified and
	// others apart; past it the one heard from least recently is forgotten.
	maxRecentITRs = 4096
	// smrBudgetRate and smrBudgetBurst are the global budget of SMRs, for database
	// changes and moved hosts together, whatever the number of ITRs.
	smrBudgetRate  = 1000 // per second
	smrBudgetBurst = 1000
	// maxUnverifiedSMRTargets is how many ITRs an xTR that is an ITR too
	// solicits per change although it caches no mapping with their RLOC.
	maxUnverifiedSMRTargets = 64
)

// Reasons of lisp_etr_smrs_dropped_total.
const (
	smrDropBudget     = "budget"            // the global SMR budget was spent
	smrDropUnverified = "not-a-cached-rloc" // ITRs past maxUnverifiedSMRTargets whose RLOC no cached mapping lists
)

var smrDropReasons = []string{smrDropBudget, smrDropUnverified}

// recentITRs are the ITRs that sent us traffic lately, the targets of our
// SMRs: those whose packets came from a locator of the mapping we cache for
// their source (verified) apart from the others, so that spoofed sources,
// however many, only ever push out each other. Each list holds at most
// maxRecentITRs, least recently heard from at the back.
type recentITRs struct {
	verified, other lruITRs
}

type lruITRs struct {
	idx map[itrInstance]*list.Element // of *recentEntry
	lru list.List
}

type recentEntry struct {
	k itrInstance
	r recentITR
}

func newRecentITRs() *recentITRs {
	return &recentITRs{verified: lruITRs{idx: map[itrInstance]*list.Element{}},
		other: lruITRs{idx: map[itrInstance]*list.Element{}}}
}

// get returns what is known of an ITR.
func (t *recentITRs) get(k itrInstance) recentITR {
	for _, l := range []*lruITRs{&t.verified, &t.other} {
		if el, ok := l.idx[k]; ok {
			return el.Value.(*recentEntry).r
		}
	}
	return recentITR{}
}

// put records r for k as the most recent, among the verified ITRs if
// verified or once verified; it reports whether another ITR was forgotten
// for room.
func (t *recentITRs) put(k itrInstance, r recentITR, verified bool) (forgot bool) {
	if _, ok := t.verified.idx[k]; ok || verified {
		t.other.remove(k)
		return t.verified.put(k, r)
	}
	return t.other.put(k, r)
}

func (l *lruITRs) put(k itrInstance, r recentITR) (forgot bool) {
	if el, ok := l.idx[k]; ok {
		el.Value.(*recentEntry).r = r
		l.lru.MoveToFront(el)
		return false
	}
	if len(l.idx) >= maxRecentITRs {
		l.remove(l.lru.Back().Value.(*recentEntry).k)
		forgot = true
	}
	l.idx[k] = l.lru.PushFront(&recentEntry{k, r})
	return forgot
}

func (l *lruITRs) remove(k itrInstance) {
	if el, ok := l.idx[k]; ok {
		delete(l.idx, k)
		l.lru.Remove(el)
	}
}

// expire forgets the ITRs not heard from since cutoff.
func (t *recentITRs) expire(cutoff time.Time) {
	for _, l := range []*lruITRs{&t.verified, &t.other} {
		for el := l.lru.Back(); el != nil && el.Value.(*recentEntry).r.seen.Before(cutoff); el = l.lru.Back() {
			l.remove(el.Value.(*recentEntry).k)
		}
	}
}

// since calls fn for each ITR heard from at or after cutoff: the verified
// ones first, each list most recent first.
func (t *recentITRs) since(cutoff time.Time, fn func(k itrInstance, r recentITR, verified bool)) {
	for _, l := range []*lruITRs{&t.verified, &t.other} {
		for el := l.lru.Front(); el != nil; el = el.Next() {
			e := el.Value.(*recentEntry)
			if e.r.seen.Before(cutoff) {
				break
			}
			fn(e.k, e.r, l == &t.verified)
		}
	}
}

func (t *recentITRs) len() int { return len(t.verified.idx) + len(t.other.idx) }

// cachedLocatorLocked reports whether rloc is a locator of the mapping we
// cache for an EID of instance iid.
func (s *Server) cachedLocatorLocked(iid uint32, eid, rloc netip.Addr) bool {
	if !eid.IsValid() {
		return false
	}
	_, e, ok := s.cache.LookupPrefix(mapping.HostEID(iid, eid))
	if !ok {
		return false
	}
	return slices.ContainsFunc(e.m.Locators, func(l mapping.Locator) bool { return l.Addr == rloc })
}

// smrTargetsLocked lists the ITRs heard from in the last minute that want
// accepts, in the order they get SMRs (and so the budget). When we are an
// ITR too, an ITR that really talks to us is, as a rule, a locator of a
// mapping we cached (we answered its hosts) or a PETR we send through (a
// PxTR is one); a spoofed source is neither. Those come first, most recent
// first; of the others (one-way traffic, an ITR whose RLOC its mapping
// does not list, or a spoofer) only the maxUnverifiedSMRTargets heard from
// last follow. A pure ETR has nothing to check against: the cap and the
// budget bound it.
func (s *Server) smrTargetsLocked(now time.Time, want func(itrInstance) bool) []recentEntry {
	var verified, other []recentEntry
	var cached map[itrInstance]bool
	s.recent.since(now.Add(-time.Minute), func(k itrInstance, r recentITR, ok bool) {
		if !want(k) {
			return
		}
		if ok || !s.opts.ITR || slices.Contains(s.opts.PETRs, k.rloc) {
			verified = append(verified, recentEntry{k, r})
			return
		}
		// Perhaps we cached its site only after its traffic came.
		if cached == nil {
			cached = map[itrInstance]bool{}
			for eid, e := range s.cacheIdx {
				for _, l := range e.m.Locators {
					cached[itrInstance{l.Addr, eid.IID}] = true
				}
			}
		}
		if cached[k] {
			verified = append(verified, recentEntry{k, r})
		} else {
			other = append(other, recentEntry{k, r})
		}
	})
	if len(other) > maxUnverifiedSMRTargets {
		s.c.smrDrops[smrDropUnverified].Add(uint64(len(other) - maxUnverifiedSMRTargets))
		other = other[:maxUnverifiedSMRTargets]
	}
	return append(verified, other...)
}

// smrAllowLocked takes one SMR from the global budget.
func (s *Server) smrAllowLocked(now time.Time) bool {
	if s.smrBudget.Take(now.UnixNano(), smrBudgetRate, smrBudgetBurst) {
		return true
	}
	s.c.smrDrops[smrDropBudget].Inc()
	if now.Sub(s.smrBudgetLogAt) >= time.Minute {
		s.smrBudgetLogAt = now
		s.log.Warn("SMR budget spent: SMRs dropped", "rate", smrBudgetRate, "recent-itrs", s.recent.len())
	}
	return false
}
