package xtr

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/mapping"
)

// RestartError says which options a running xTR cannot take on: they
// shape state made once (the xTR-ID the Map-Servers and subscriptions know
// it by, the p bit of its Map-Requests).
type RestartError struct{ Options []string }

func (e *RestartError) Error() string {
	return fmt.Sprintf("xtr: %s cannot change without a restart", strings.Join(e.Options, ", "))
}

// Reconfigure applies a reloaded configuration to the running xTR, as a
// network engineer expects of a router:
//   - database: added and changed prefixes are registered at once,
//     removed ones withdrawn (a Map-Register with record TTL 0), and the
//     ITRs that sent us traffic lately get an SMR;
//   - map-servers: new ones are registered with at once, removed ones get
//     the database withdrawn, unchanged ones keep their state;
//   - map-resolvers, local RLOCs, register interval, RLOC-probing
//     interval, map-cache size and LISP-SEC mode and key take effect at
//     once (the ETR registers again when its S bit changes);
//   - ETR turned off withdraws the database; ITR turned off flushes the
//     map-cache and ends subscriptions.
//
// PITR, Subscribe, XTRID and SiteID cannot change: Reconfigure then
// returns a *RestartError and changes nothing. The callbacks, clock,
// sender, data plane, statistics and log of o are not used (fixed at New).
func (s *Server) Reconfigure(o Options) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fixed []string
	if o.PITR != s.opts.PITR {
		fixed = append(fixed, "PITR")
	}
	if o.Subscribe != s.opts.Subscribe {
		fixed = append(fixed, "Subscribe")
	}
	if o.XTRID != s.opts.XTRID {
		fixed = append(fixed, "XTRID")
	}
	if o.SiteID != s.opts.SiteID {
		fixed = append(fixed, "SiteID")
	}
	if len(fixed) > 0 {
		return &RestartError{Options: fixed}
	}
	o.Now, o.Sender, o.DataPlane, o.Stats, o.Log = s.opts.Now, s.opts.Sender, s.opts.DataPlane, s.opts.Stats, s.opts.Log
	o.SourceFor, o.OnMovedAway, o.Events = s.opts.SourceFor, s.opts.OnMovedAway, s.opts.Events
	o.defaults()
	now := s.opts.Now()
	oldDB := s.opts.Database
	wasETR, wasITR := s.opts.ETR, s.opts.ITR

	// Map-Servers: unchanged peers keep their registration state; removed
	// ones (and all of them when the ETR goes off) hear that our database
	// is withdrawn rather than waiting for it to time out.
	kept := make([]*peerState, 0, len(o.MapServers))
	fresh := map[*peerState]bool{}
	for _, np := range o.MapServers {
		i := slices.IndexFunc(s.peers, func(p *peerState) bool { return p.MapServerPeer.equal(np) })
		if i >= 0 {
			kept = append(kept, s.peers[i])
			s.peers = slices.Delete(s.peers, i, i+1)
		} else {
			p := newPeerState(np, now)
			kept = append(kept, p)
			fresh[p] = true
		}
	}
	if wasETR {
		gone := s.peers
		if !o.ETR {
			gone = append(gone, kept...)
		}
		for _, p := range gone {
			// A Map-Server whose key or flags changed stays: the new
			// registration replaces the old one, a withdrawal would only
			// make the prefixes flap.
			stays := o.ETR && slices.ContainsFunc(kept, func(k *peerState) bool { return k.Addr == p.Addr })
			if !stays {
				s.withdrawLocked(p, s.db.All())
			}
		}
	}
	s.peers = kept

	if wasITR && !o.ITR {
		// Through the Map-Resolver the subscriptions were made with.
		s.unsubscribeLocked()
		s.flushCacheLocked()
	}
	s.opts.ITR, s.opts.ETR = o.ITR, o.ETR
	if !slices.Equal(o.MapResolvers, s.opts.MapResolvers) {
		s.opts.MapResolvers, s.mrIndex = o.MapResolvers, 0
	}
	s.opts.LocalRLOCs = o.LocalRLOCs
	s.opts.PETRs = o.PETRs
	s.opts.MaxCacheEntries = o.MaxCacheEntries
	s.opts.RecordTTL, s.opts.ProbeMisses = o.RecordTTL, o.ProbeMisses
	// LISP-SEC: requests from now on use the new mode and key (those
	// pending keep their One-Time Key); the ETR registers again at once
	// when its S bit changes.
	secChanged := (o.LISPSEC == SecOff) != (s.opts.LISPSEC == SecOff)
	s.opts.LISPSEC, s.opts.LISPSECKey = o.LISPSEC, o.LISPSECKey
	if o.RegisterInterval != s.opts.RegisterInterval {
		s.opts.RegisterInterval = o.RegisterInterval
		for _, p := range s.peers {
			if p.nextRegister.After(now.Add(o.RegisterInterval)) {
				p.nextRegister = now.Add(jitter(o.RegisterInterval))
			}
		}
	}
	if o.ProbeInterval != s.opts.ProbeInterval {
		s.opts.ProbeInterval = o.ProbeInterval
		s.lastProbe = time.Time{} // the new interval starts now
		if o.ProbeInterval <= 0 {
			s.stopProbingLocked()
		}
	}
	for len(s.cacheIdx) > s.opts.MaxCacheEntries {
		s.evictLocked()
	}

	// The database last, so that its registration goes to the new peers.
	// Locators compare in the order the database keeps them.
	o.Database = slices.Clone(o.Database)
	for i := range o.Database {
		o.Database[i].Locators = slices.Clone(o.Database[i].Locators)
		mapping.SortLocators(o.Database[i].Locators)
	}
	dbChanged := !slices.EqualFunc(oldDB, o.Database, DatabaseEntry.equal)
	if dbChanged {
		removed := map[mapping.EID]*DatabaseEntry{}
		for eid, e := range s.db.All() {
			if _, dynamic := s.dynamic[eid]; !dynamic {
				removed[eid] = e
			}
		}
		s.setDatabaseLocked(o.Database)
		for eid := range s.db.All() {
			delete(removed, eid)
		}
		if o.ETR && wasETR {
			for _, p := range s.peers {
				if fresh[p] {
					continue // never had them
				}
				s.withdrawLocked(p, maps.All(removed))
			}
		}
	}
	if o.ETR {
		if dbChanged || !wasETR || secChanged {
			for _, p := range s.peers {
				p.nextRegister = now
			}
		}
		s.registerDueLocked(now)
		if dbChanged {
			s.smrLocked(now)
		}
	}
	s.log.Info("reconfigured", "itr", o.ITR, "etr", o.ETR, "database", len(o.Database), "map-servers", len(s.peers),
		"map-resolvers", len(o.MapResolvers), "probe-interval", o.ProbeInterval)
	return nil
}

// withdrawLocked tells one Map-Server that entries are gone: one
// Map-Register with the T bit and record TTL 0 per entry, as for a dynamic-EID
// host that went silent.
func (s *Server) withdrawLocked(p *peerState, entries func(func(mapping.EID, *DatabaseEntry) bool)) {
	for _, e := range entries {
		if s.withdrawEntryLocked(p, e) {
			s.c.withdrawn.Inc()
		}
	}
}

// stopProbingLocked forgets probing state when probing is turned off: a
// locator probing had marked down is up again (nothing would ever bring
// it back).
func (s *Server) stopProbingLocked() {
	for rloc, st := range s.rlocs {
		if !st.up {
			s.setRLOCLocked(rloc, true)
		}
	}
	clear(s.rlocs)
	clear(s.probes)
}

// flushCacheLocked empties the map-cache of an ITR being turned off; the
// entries of dynamic-EID hosts that moved away stay, the data plane still
// re-encapsulates to them.
func (s *Server) flushCacheLocked() {
	for eid, e := range s.cacheIdx {
		if e.source != awaySource {
			s.removeLocked(eid)
		}
	}
	clear(s.pending)
	clear(s.reqs)
	s.stopProbingLocked()
}

// Options returns the options the xTR runs with.
func (s *Server) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

func (p MapServerPeer) equal(q MapServerPeer) bool {
	return p.Addr == q.Addr && p.KeyID == q.KeyID && p.Alg == q.Alg && string(p.Secret) == string(q.Secret) &&
		p.ProxyReply == q.ProxyReply && p.WantMapNotify == q.WantMapNotify
}

func (e DatabaseEntry) equal(f DatabaseEntry) bool {
	return e.EID == f.EID && slices.Equal(e.Locators, f.Locators)
}
