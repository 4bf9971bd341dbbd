package mapserver

import (
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// Options are the Map-Server's tunables; zero values take the defaults.
type Options struct {
	RegistrationTimeout time.Duration // default 3m (RFC 9301 §8.2)
	MaxSubscriptions    int           // default 100000
	// MaxSubscriptionsPerXTR bounds what one xTR of one site may
	// subscribe to (RFC 9437 §7: a subscriber must not exhaust the
	// Map-Server). Default 10000.
	MaxSubscriptionsPerXTR int
	// MaxXTRsPerSite bounds the xTRs remembered per site (replay state and
	// pub/sub associations); past it the least recently registered one is
	// forgotten. Default 16384.
	MaxXTRsPerSite int
	// SubscriptionTTL is how long a temporary subscription lasts: one made
	// for an EID no live registration covers (RFC 9437 §5, 15 minutes
	// RECOMMENDED). It becomes lasting once a registration is published to
	// it; renewing it starts the time again. Default 15m.
	SubscriptionTTL  time.Duration
	NotifyRetransmit time.Duration // default 3s (RFC 9301 §5.7)
	UnregisteredTTL  uint32        // minutes, default 1
	Auth             wire.AuthOptions
	Now              func() time.Time // injected clock; default time.Now
	Sender           control.Sender   // for retransmissions and unsolicited Map-Notifies
	Stats            *stats.Registry
	Log              *slog.Logger
	// Events, when set, hears of registrations, moves, withdrawals,
	// expiries, publications and authentication failures.
	Events *events.Bus

	// LISPSECKeys are the secrets shared with ITRs (as their Map-Resolver)
	// by Key ID; with them the Map-Server answers LISP-SEC protected
	// Map-Requests (RFC 9303 §6.7). Nil: it ignores their authentication
	// data and answers as if they were not protected.
	LISPSECKeys lispsec.Keys

	// RTRs are the Re-encapsulating Tunnel Routers offered in Info-Replies
	// to xTRs behind NAT whose site names none (info.go).
	RTRs []netip.Addr
	// RTRKeys are the keys shared with RTRs, by RTR address: the
	// Map-Notify for a Map-Register such an RTR relays carries the MS-RTR
	// authentication data (S bit, relay.go). An RTR without one gets it
	// without (S clear).
	RTRKeys map[netip.Addr]wire.RTRKey
	// InfoTTL is the Info-Reply's TTL in minutes: how long an xTR keeps
	// the RTR list. Default 1440 (a day, as RFC 9301 registrations).
	InfoTTL uint32
	// Store shares the registrations with the other Map-Servers of a
	// cluster (store.go); nil keeps them in this process only. Node is
	// this Map-Server's name in that cluster.
	Store Store
	Node  string
}

func (o *Options) defaults() {
	if o.RegistrationTimeout == 0 {
		o.RegistrationTimeout = 3 * time.Minute
	}
	if o.MaxSubscriptions == 0 {
		o.MaxSubscriptions = 100000
	}
	if o.MaxSubscriptionsPerXTR == 0 {
		o.MaxSubscriptionsPerXTR = 10000
	}
	if o.MaxXTRsPerSite == 0 {
		o.MaxXTRsPerSite = 16384
	}
	if o.SubscriptionTTL == 0 {
		o.SubscriptionTTL = 15 * time.Minute
	}
	if o.NotifyRetransmit == 0 {
		o.NotifyRetransmit = 3 * time.Second
	}
	if o.InfoTTL == 0 {
		o.InfoTTL = 1440
	}
	if o.UnregisteredTTL == 0 {
		o.UnregisteredTTL = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stats == nil {
		o.Stats = stats.NewRegistry()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Sender == nil {
		o.Sender = control.SenderFunc(func([]byte, netip.Addr, netip.AddrPort) {})
	}
}

// etrReg is one xTR's registration of one EID prefix. It is kept small:
// a Map-Server holds millions of them.
type etrReg struct {
	src      netip.AddrPort // where the Map-Register came from: Map-Notifies go there
	local    netip.Addr     // our address it was sent to: Map-Notifies come from there
	xtrID    [16]byte
	siteID   uint64
	keyID    uint8
	flags    uint8
	version  uint16
	ttl      uint32 // record TTL, minutes
	last     int64  // unix nanoseconds of the last Map-Register
	expires  int64
	locators []mapping.Locator
	// via is the RTR that relayed it (an xTR behind NAT): every
	// Map-Notify for it goes through that RTR (relay.go). nil: direct. A
	// pointer, shared by the records of one Map-Register, keeps the
	// common direct registration from paying for the address.
	via *netip.AddrPort
}

const (
	flagProxy uint8 = 1 << iota
	flagWantNotify
	flagMerge
	flagXTRID
	flagSecurity // registered with S: the ETR signs LISP-SEC Map-Replies
	flagRemote   // another node of the cluster holds it (store.go)
)

// registration is one registered EID prefix and the xTRs that registered it.
type registration struct {
	eid  mapping.EID
	site *site
	etrs []etrReg
	// reply caches the encoded EID-record of proxy Map-Replies, valid
	// until replyUntil (the first expiry among the live xTRs) or the next
	// change: the Map-Request path then encodes nothing.
	reply      []byte
	replyUntil int64
	bucket     int64 // expiry second it is filed under in Server.expiry
}

// moveStat counts the moves of one registered prefix. It lives beside the
// registrations, not in them: few prefixes ever move, and a field would
// cost every one of millions of registrations a bigger allocation.
type moveStat struct {
	moves uint32
	last  int64 // unix nanoseconds
}

// hasLive reports whether any xTR's registration is still valid at now.
func (r *registration) hasLive(now int64) bool {
	for i := range r.etrs {
		if r.etrs[i].expires > now {
			return true
		}
	}
	return false
}

// live returns the registrations that have not expired at now.
func (r *registration) liveAt(now int64) []etrReg {
	out := r.etrs[:0:0]
	for _, e := range r.etrs {
		if e.expires > now {
			out = append(out, e)
		}
	}
	return out
}

// Server is the Map-Server.
type Server struct {
	mu       sync.Mutex
	opts     Options
	sites    map[string]*site
	prefixes *mapping.Table[[]*sitePrefixRef] // configured prefixes
	regs     *mapping.Table[*registration]
	// xtrs holds every registering xTR per site name: its replay state
	// and its pub/sub association (replay.go); byXTRID finds the sites an
	// xTR-ID registers for.
	xtrs    map[string]*siteXTRs
	byXTRID map[[16]byte][]string
	// tombs are the last nonces of ended subscriptions, so that replaying
	// an old subscription request cannot bring it back (pubsub.go).
	tombs map[subKey]tombstone
	subs  *mapping.Table[[]*subscriber]
	nsubs int
	// ntemp counts temporary subscriptions, so Tick looks for expired
	// ones only when there can be some.
	ntemp     int
	nextSweep int64 // unix ns; temporary subscriptions are looked at once a second
	pending   map[uint64]*pendingNotify
	// leaving are, per EID that moved, the old xTRs told so whose ack has
	// not come: a Map-Register of theirs that lists it crossed the news
	// (a periodic refresh sent before it arrived) and must not take the
	// EID back from its new site.
	leaving map[mapping.EID][]leaving
	// notifyNonce is the nonce of our last own unsolicited Map-Notify.
	notifyNonce uint64
	authLog     map[netip.Addr]int64 // last auth-failure log per source, to log once a minute
	scratch     []byte               // reply assembly buffer (the sender copies)
	// expiry files registrations by the second their first xTR lapses, so
	// Tick looks only at those due instead of scanning a million entries.
	expiry map[int64][]*registration
	moved  map[mapping.EID]moveStat // registrations that moved at least once
	eidBuf []mapping.EID            // mapRegister's EIDs, reused
	// movedOut gathers, while a Map-Register is processed, the "moved"
	// Map-Notifies for each old xTR (movedOrder: in the order first seen).
	movedOut   map[movedTo]*movedBatch
	movedOrder []movedTo
	// pubOut gathers, while a Map-Register is processed (movedOut set),
	// the publications for each subscribed ITR (pubOrder: in the order
	// first seen), sent together at its end.
	pubOut   map[pubTo]*pubBatch
	pubOrder []pubTo
	// moveLog is the last maxMoveLog moves, oldest first (show site --moves).
	moveLog []adminapi.SiteMove
	// With a Store (store.go): the other nodes' Records by prefix and node,
	// and the revision of this node's own Record of each prefix.
	remote    map[mapping.EID]map[string]remoteRec
	localRevs map[mapping.EID]localRev
	digests   map[mapping.EID]digest // of the Map-Register that last changed this node's own Record
	// Persisted replay state (state.go).
	stateDir   string
	stateDirty bool
	lastSave   int64
	saveMu     sync.Mutex   // one writer of the state file at a time
	saveLog    atomic.Int64 // last logged save failure, unix ns
	c          counters
	sec        secCounters
	log        *slog.Logger
}

type sitePrefixRef struct {
	site   *site
	prefix SitePrefix
}

// New builds a Map-Server with the given sites.
func New(sites []Site, opts Options) *Server {
	opts.defaults()
	s := &Server{
		opts:      opts,
		regs:      mapping.NewTable[*registration](),
		xtrs:      map[string]*siteXTRs{},
		byXTRID:   map[[16]byte][]string{},
		tombs:     map[subKey]tombstone{},
		subs:      mapping.NewTable[[]*subscriber](),
		pending:   map[uint64]*pendingNotify{},
		leaving:   map[mapping.EID][]leaving{},
		authLog:   map[netip.Addr]int64{},
		expiry:    map[int64][]*registration{},
		moved:     map[mapping.EID]moveStat{},
		remote:    map[mapping.EID]map[string]remoteRec{},
		localRevs: map[mapping.EID]localRev{},
		digests:   map[mapping.EID]digest{},
		log:       opts.Log.With("role", "map-server"),
	}
	s.c, s.sec = newCounters(opts.Stats), newSecCounters(opts.Stats)
	s.notifyNonce = uint64(opts.Now().UnixNano())
	s.setSites(sites)
	return s
}

func (s *Server) setSites(sites []Site) {
	old := s.sites
	s.sites = map[string]*site{}
	s.prefixes = mapping.NewTable[[]*sitePrefixRef]()
	for _, cfg := range sites {
		st := &site{cfg: cfg}
		if o, ok := old[cfg.Name]; ok {
			st.authFailures, st.registers, st.lastRegister = o.authFailures, o.registers, o.lastRegister
		}
		s.sites[cfg.Name] = st
		for _, p := range cfg.Prefixes {
			refs, _ := s.prefixes.Get(p.EID)
			s.prefixes.Insert(p.EID, append(refs, &sitePrefixRef{site: st, prefix: p}))
		}
	}
}

// Reload replaces the site configuration. Registrations of sites that are
// unchanged stay, or whose description alone changed; those of removed or
// otherwise changed sites, or no longer covered by their site's prefixes,
// are dropped (and published as withdrawn).
func (s *Server) Reload(sites []Site, changed map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloadLocked(sites, changed)
}

// Reconfigure applies a reloaded configuration: the sites (as Reload) and
// the timers and limits of o — registration timeout (for registrations
// from now on), subscription limit, Map-Notify retransmission, negative
// TTL of unregistered sites, pub/sub limits. The clock, senders,
// statistics, log and store of o are not used: they are fixed at New.
func (s *Server) Reconfigure(sites []Site, changed map[string]bool, o Options) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o.Now, o.Sender, o.Stats, o.Log, o.Auth = s.opts.Now, s.opts.Sender, s.opts.Stats, s.opts.Log, s.opts.Auth
	o.Events = s.opts.Events
	o.Store, o.Node = s.opts.Store, s.opts.Node
	o.defaults()
	s.opts = o
	s.reloadLocked(sites, changed)
}

func (s *Server) reloadLocked(sites []Site, changed map[string]bool) {
	// A changed site loses its registrations only when what authorises
	// them changed: a new description must not make its prefixes flap.
	var drops map[string]bool
	for name := range changed {
		if old, ok := s.sites[name]; ok {
			if i := slices.IndexFunc(sites, func(n Site) bool { return n.Name == name }); i >= 0 && !authorityChanged(old.cfg, sites[i]) {
				continue
			}
		}
		if drops == nil {
			drops = map[string]bool{}
		}
		drops[name] = true
	}
	changed = drops
	s.setSites(sites)
	s.resubscribeLocked()
	var drop []mapping.EID
	for eid, r := range s.regs.All() {
		st, ok := s.sites[r.site.cfg.Name]
		if !ok || changed[r.site.cfg.Name] || !s.mayRegister(st, eid) {
			drop = append(drop, eid)
			continue
		}
		r.site = st
	}
	for _, eid := range drop {
		s.regs.Delete(eid)
		delete(s.moved, eid)
		s.publishLocked(eid)
		s.storeChangedLocked(eid)
	}
	// The other nodes' Records are answered again as far as the new
	// sites allow.
	for eid := range s.remote {
		s.rebuildLocked(eid)
	}
	s.forgetSitesLocked()
	s.resignPendingLocked()
	s.log.Info("sites reloaded", "sites", len(sites), "registrations-dropped", len(drop))
}

// authorityChanged tells whether a site's registrations could have been
// refused under its new configuration: keys, prefixes, allowed RLOCs,
// nonce rule. The description is only for people.
func authorityChanged(old, new Site) bool {
	old.Description, new.Description = "", ""
	old.RTRs, new.RTRs = nil, nil // offered to xTRs, authorises nothing
	return !reflect.DeepEqual(old, new)
}

// sitesFor appends to dst the sites allowed to register e: those listing
// the longest configured prefix that covers it (exactly, or as a
// more-specific when allowed), in config order. Several sites may list one
// prefix so that a host can move between them; the key tells them apart.
func (s *Server) sitesFor(dst []*site, e mapping.EID) []*site {
	for _, refs := range s.prefixes.Supernets(e) {
		for _, ref := range refs {
			if ref.prefix.covers(e) && !slices.Contains(dst, ref.site) {
				dst = append(dst, ref.site)
			}
		}
		if len(dst) > 0 {
			return dst
		}
	}
	return dst
}

// mayRegister reports whether st is among the sites allowed to register e.
func (s *Server) mayRegister(st *site, e mapping.EID) bool {
	for _, refs := range s.prefixes.Supernets(e) {
		found := false
		for _, ref := range refs {
			if ref.prefix.covers(e) {
				if ref.site == st {
					return true
				}
				found = true
			}
		}
		if found {
			return false
		}
	}
	return false
}

// Configured reports whether e falls inside a configured site prefix, and
// returns that prefix. The Map-Resolver uses it to decide between a local
// answer and a referral elsewhere.
func (s *Server) Configured(e mapping.EID) (mapping.EID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, _, ok := s.prefixes.LookupPrefix(e)
	return p, ok
}

// ConfiguredPrefixes returns every configured site prefix.
func (s *Server) ConfiguredPrefixes() []mapping.EID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []mapping.EID
	for e := range s.prefixes.All() {
		out = append(out, e)
	}
	return out
}

func (s *Server) now() int64 { return s.opts.Now().UnixNano() }

// scheduleLocked files r under the second its first live xTR lapses.
func (s *Server) scheduleLocked(r *registration) {
	first := int64(1<<63 - 1)
	for i := range r.etrs {
		first = min(first, r.etrs[i].expires)
	}
	if first == 1<<63-1 {
		return
	}
	sec := first/1e9 + 1
	if r.bucket != sec {
		r.bucket = sec
		s.expiry[sec] = append(s.expiry[sec], r)
	}
}

// Tick runs the timers: registration expiry, Map-Notify retransmission,
// subscription expiry. The daemon calls it twice a second; tests call it
// with an injected clock.
func (s *Server) Tick() {
	s.mu.Lock()
	now := s.now()
	s.tickLocked(now)
	st := s.snapshotLocked(now, false)
	s.mu.Unlock()
	if st != nil {
		s.writeState(st)
	}
}

func (s *Server) tickLocked(now int64) {
	s.sweepSubscriptionsLocked(now)
	for sec, due := range s.expiry {
		if sec*1e9 > now {
			continue
		}
		delete(s.expiry, sec)
		for _, r := range due {
			if r.bucket != sec {
				continue // refiled later by a refresh
			}
			if cur, ok := s.regs.Get(r.eid); !ok || cur != r {
				continue // removed meanwhile (reload)
			}
			r.bucket = 0
			live := r.liveAt(now)
			if len(live) < len(r.etrs) {
				s.c.expired.Add(uint64(len(r.etrs) - len(live)))
				r.etrs, r.reply = live, nil
				s.storeChangedLocked(r.eid)
				if len(live) == 0 {
					s.regs.Delete(r.eid)
					delete(s.moved, r.eid)
					s.log.Info("registration expired", "eid", r.eid)
					s.opts.Events.About(r.eid, adminapi.Event{Type: adminapi.EventExpired, Site: r.site.cfg.Name})
					s.publishLocked(r.eid)
					continue
				}
				s.changedLocked(r, nil)
			}
			s.scheduleLocked(r)
		}
	}
	s.retransmitLocked(now)
}

// rtr is the RTR the registration came through; zero: it came directly.
func (e *etrReg) rtr() netip.AddrPort {
	if e.via == nil {
		return netip.AddrPort{}
	}
	return *e.via
}
