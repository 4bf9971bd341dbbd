// Package xtr is the control plane of a tunnel router (RFC 9301): the ETR
// side registers the site's database with the Map-Servers and answers
// Map-Requests and RLOC-probes for it; the ITR side resolves cache misses
// through the Map-Resolvers, keeps the map-cache (TTL, SMR, publish/
// subscribe) and probes the locators it uses. It programs the data plane
// only through the narrow DataPlane interface.
package xtr

import (
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// CacheLocator is a locator as the data plane needs it.
type CacheLocator struct {
	Addr     netip.Addr
	Priority uint8
	Weight   uint8
	Up       bool
}

// CacheEntry is one map-cache entry handed to the data plane.
type CacheEntry struct {
	EID      mapping.EID
	Locators []CacheLocator
	Negative bool
	Action   wire.Action
	Expires  time.Time
	// Learnt is when the message that brought the mapping was handled (a
	// Map-Reply, Map-Notify or publication); zero for the control plane's
	// own changes. The data plane measures its programming from it.
	Learnt time.Time
}

// DataPlane is everything the control plane may ask of a data plane.
type DataPlane interface {
	SetMapCache(e CacheEntry)
	DeleteMapCache(eid mapping.EID)
	FlushMapCache()
	SetLocatorUp(eid mapping.EID, rloc netip.Addr, up bool)
	SetLocalEIDs(eids []mapping.EID)
}

// NopDataPlane is a DataPlane that does nothing (control-plane-only tests).
type NopDataPlane struct{}

func (NopDataPlane) SetMapCache(CacheEntry)                     {}
func (NopDataPlane) DeleteMapCache(mapping.EID)                 {}
func (NopDataPlane) FlushMapCache()                             {}
func (NopDataPlane) SetLocatorUp(mapping.EID, netip.Addr, bool) {}
func (NopDataPlane) SetLocalEIDs([]mapping.EID)                 {}

// MapServerPeer is a Map-Server the ETR registers with.
type MapServerPeer struct {
	Addr          netip.Addr
	KeyID         uint8
	Alg           wire.AuthAlg
	Secret        []byte
	ProxyReply    bool
	WantMapNotify bool
}

// DatabaseEntry is a local EID prefix and its locators.
type DatabaseEntry struct {
	EID      mapping.EID
	Locators []mapping.Locator
}

// Options configure the xTR.
type Options struct {
	ITR, ETR     bool
	PITR         bool // Map-Requests carry the p bit (RFC 6832)
	Database     []DatabaseEntry
	MapServers   []MapServerPeer
	MapResolvers []netip.Addr
	LocalRLOCs   []netip.Addr // ITR-RLOCs and probe sources
	// PETRs we encapsulate to: as RLOCs of a PxTR, they may be sent SMRs
	// although no cached mapping names them.
	PETRs []netip.Addr
	// SourceFor picks the local RLOC to send to dst from (the kernel's
	// route choice, so a message leaves by an uplink that works and its
	// answer comes back); by default the first local RLOC of dst's family.
	SourceFor func(dst netip.Addr) (netip.Addr, bool)
	// Ours says whether an address is this node's own (the daemon's
	// reply guard knows them all: every role's, not only the local
	// RLOCs). An ETR never answers a Map-Request at one of them unless
	// the request came from there: the answer would come back to us.
	// The local RLOCs count as ours in any case.
	Ours             func(netip.Addr) bool
	RegisterInterval time.Duration
	RecordTTL        uint32        // minutes, in Map-Registers and Map-Replies; default 1440
	ProbeInterval    time.Duration // 0: no RLOC probing
	ProbeMisses      int           // missed probes before a locator is down; default 2
	MaxCacheEntries  int
	Subscribe        bool
	XTRID            [16]byte
	SiteID           uint64
	Now              func() time.Time
	Sender           control.Sender // what the timers send with: registrations, Map-Requests, probes, SMRs
	DataPlane        DataPlane
	Stats            *stats.Registry
	Log              *slog.Logger
	// HostRanges cap the dynamic-EID hosts per range (AddHost refuses
	// more); hosts outside every range are not capped.
	HostRanges []HostRange
	// LISPSEC is the LISP-SEC mode (RFC 9303): an ITR protects its
	// Map-Requests with LISPSECKey, the key it shares with its
	// Map-Resolvers, and verifies the replies; an ETR registers with S and
	// signs the replies to protected requests. Default SecOff.
	LISPSEC    SecMode
	LISPSECKey lispsec.Key
	// OnMovedAway hears of dynamic-EID hosts of ours that the Map-Server saw
	// register elsewhere (an unsolicited Map-Notify whose locators are not
	// ours): their new mappings, all those of one Map-Notify at once (a
	// mass migration comes in batches). It is called without the xTR's
	// lock held.
	OnMovedAway func(moved []mapping.Mapping)
	// NATTraversal turns on NAT discovery (nat.go): Info-Requests to each
	// Map-Server from each local RLOC, every InfoInterval (default 1m).
	NATTraversal bool
	InfoInterval time.Duration
	// SendData sends a control message from the data port (4341) of src:
	// the ECM'd Map-Register to an RTR (natreg.go). Without it an xTR
	// behind a NAT keeps registering directly.
	SendData func(b []byte, src netip.Addr, dst netip.AddrPort) error
	// ControlPort is the port our control messages leave from; a
	// translated port that differs means a NAT too (0: not compared).
	ControlPort uint16
	// Events, when set, hears of map-cache installs and expiries, locators
	// going up or down, SMRs and hosts that moved away.
	Events *events.Bus
	// AfterFunc runs f after d (default time.AfterFunc): the end of a
	// batch window of dynamic-EID registrations (AddHost).
	AfterFunc func(d time.Duration, f func())
}

func (o *Options) defaults() {
	if o.RegisterInterval == 0 {
		o.RegisterInterval = time.Minute
	}
	if o.InfoInterval == 0 {
		o.InfoInterval = time.Minute
	}
	if o.RecordTTL == 0 {
		o.RecordTTL = 1440
	}
	if o.ProbeMisses == 0 {
		o.ProbeMisses = 2
	}
	if o.MaxCacheEntries == 0 {
		o.MaxCacheEntries = 1_000_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sender == nil {
		o.Sender = control.SenderFunc(func([]byte, netip.Addr, netip.AddrPort) {})
	}
	if o.DataPlane == nil {
		o.DataPlane = NopDataPlane{}
	}
	if o.Stats == nil {
		o.Stats = stats.NewRegistry()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.AfterFunc == nil {
		o.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
}

// ours reports whether a is one of this node's addresses: a local RLOC
// or one Options.Ours knows.
func (o *Options) ours(a netip.Addr) bool {
	a = a.Unmap()
	return slices.Contains(o.LocalRLOCs, a) || (o.Ours != nil && o.Ours(a))
}

// Server is the xTR control plane.
type Server struct {
	mu   sync.Mutex
	opts Options
	log  *slog.Logger
	c    counters
	sec  secCounters

	db    *mapping.Table[*DatabaseEntry]
	peers []*peerState // one per Map-Server
	nonce uint64       // Map-Register nonce: starts at the clock, so it grows across restarts

	cache    *mapping.Table[*cacheEntry]
	cacheIdx map[mapping.EID]*cacheEntry // for sampling evictions
	smrLogAt time.Time                   // last "SMR refreshes nothing" line
	// encodeLogAt and hostLogAt rate-limit the log lines of a Map-Register
	// that cannot be encoded and of a host refused for a full range.
	encodeLogAt, hostLogAt, replayLogAt, secLogAt time.Time
	reqs                                          map[mapping.EID]*reqState     // Map-Request rate limiting per EID
	pending                                       map[uint64]*pendingReq        // outstanding Map-Requests by nonce
	mrIndex                                       int                           // Map-Resolver in use; moves on when one stops answering
	subs                                          map[mapping.EID]*subscription // pub/sub subscriptions by subscribed EID (RFC 9437 §5)
	subFloor                                      uint64                        // every subscription nonce so far is below it
	prunedAt                                      time.Time

	rlocs     map[netip.Addr]*rlocState // RLOC probing
	probes    map[uint64]*probe
	lastProbe time.Time
	recent    *recentITRs              // ITRs that sent us traffic: SMR targets
	lastSMR   map[netip.Addr]time.Time // last database SMR per ITR RLOC
	smrBudget control.TokenBucket      // every SMR we send, in all
	// smrAsked is the budget of every SMR-invoked request we send, in all
	// (smrBudgetRate, smrBudgetBurst): what unauthenticated SMRs can make
	// us ask.
	smrAsked control.TokenBucket
	// smrBudgetLogAt rate-limits the "SMR budget spent" line.
	smrBudgetLogAt time.Time

	// dynamic are the dynamic-EID hosts detected here, registered beside the
	// configured database and kept across reloads.
	dynamic map[mapping.EID]*DatabaseEntry
	hostSMR map[hostITR]time.Time // last SMR per (moved host, ITR)
	// smrHosts limit the SMR-invoked requests for hosts inside a cached
	// covering prefix, each on its own (at most maxSMRHosts).
	smrHosts map[mapping.EID]*smrState
	moves    map[moveKey]moveSeen // last "moved" Map-Notify per (Map-Server, host)
	// arrived are hosts added since the last acknowledged Map-Register:
	// their SMRs wait for the Map-Server to hold the new registration.
	arrived []mapping.EID
	// hostQueue are hosts added within a batch window, not registered yet
	// (AddHost); hostSentAt is when the last batch went, hostTimer whether
	// the window's end is scheduled.
	hostQueue    []mapping.EID
	hostSentAt   time.Time
	hostTimer    bool
	hostBatching int // HostBatch calls under way: AddHost only queues
	// localStale says the data plane's local EIDs lag the database: hosts
	// came or went within a HostBatch, which tells it once at its end.
	localStale bool

	nat      map[natKey]*natState // NAT discovery per (Map-Server, local RLOC), nat.go
	nc       natCounters
	natLogAt time.Time // last "Data-Map-Notify for another xTR-ID" line
	// natPort is the inner UDP source port of the ECM'd Map-Registers to
	// RTRs: picked at random (draft-ietf-lisp-nat-traversal §4.3), once,
	// so the Map-Server sees one xTR address and port across refreshes.
	natPort uint16
}

type peerState struct {
	MapServerPeer
	nextRegister time.Time
	// inflight are the Map-Registers with M set awaiting their Map-Notify,
	// by nonce: a database too large for one message goes in several.
	inflight   map[uint64]*pendingRegister
	lastSent   time.Time
	lastNotify time.Time
	registers  uint64
	notifies   uint64
}

func newPeerState(p MapServerPeer, now time.Time) *peerState {
	return &peerState{MapServerPeer: p, nextRegister: now, inflight: map[uint64]*pendingRegister{}}
}

type cacheEntry struct {
	m          mapping.Mapping
	expires    time.Time
	created    time.Time
	source     string // "map-reply", "map-notify", "static"
	smr        smrState
	subscribed bool
}

// smrState limits the SMR-invoked requests for one EID: a cached entry,
// or a host inside a cached covering prefix (a moved dynamic-EID host).
type smrState struct {
	last    time.Time
	left    int         // SMR-invoked requests left in the budget (take)
	refill  time.Time   // when the budget last gained one
	wanted  mapping.EID // an SMR came within the rate limit: ask for this once it allows
	pending bool
}

type reqState struct {
	last       time.Time
	unanswered int
	holdUntil  time.Time
}

type pendingReq struct {
	eid       mapping.EID
	sent      time.Time
	mr        netip.Addr
	subscribe bool
	smr       bool
	sec       *lispsec.Request // LISP-SEC: what verifies the reply; nil when off
}

// New builds the xTR control plane.
func New(opts Options) *Server {
	opts.defaults()
	s := &Server{
		opts: opts, log: opts.Log.With("role", "xtr"),
		db:       mapping.NewTable[*DatabaseEntry](),
		cache:    mapping.NewTable[*cacheEntry](),
		cacheIdx: map[mapping.EID]*cacheEntry{},
		reqs:     map[mapping.EID]*reqState{},
		pending:  map[uint64]*pendingReq{},
		subs:     map[mapping.EID]*subscription{},
		rlocs:    map[netip.Addr]*rlocState{}, probes: map[uint64]*probe{},
		recent: newRecentITRs(), lastSMR: map[netip.Addr]time.Time{},
		dynamic: map[mapping.EID]*DatabaseEntry{}, hostSMR: map[hostITR]time.Time{}, smrHosts: map[mapping.EID]*smrState{},
	}
	s.c = newCounters(opts.Stats)
	s.sec = newSecCounters(opts.Stats)
	s.nc = newNATCounters(opts.Stats)
	s.natPort = 49152 + uint16(rand.N(16384)) // the dynamic ports: never LISP's
	s.moves = map[moveKey]moveSeen{}
	s.nonce = uint64(opts.Now().UnixNano())
	s.subFloor = s.nonce
	now := opts.Now()
	for _, p := range opts.MapServers {
		s.peers = append(s.peers, newPeerState(p, now))
	}
	s.setDatabaseLocked(opts.Database)
	return s
}

func (s *Server) setDatabaseLocked(entries []DatabaseEntry) {
	s.db = mapping.NewTable[*DatabaseEntry]()
	eids := make([]mapping.EID, 0, len(entries)+len(s.dynamic))
	for i := range entries {
		e := entries[i]
		mapping.SortLocators(e.Locators)
		s.db.Insert(e.EID, &e)
		eids = append(eids, e.EID)
	}
	for eid, e := range s.dynamic {
		s.db.Insert(eid, e)
		eids = append(eids, eid)
	}
	s.opts.Database = entries
	s.opts.DataPlane.SetLocalEIDs(eids)
}

// SetDatabase replaces the configured local EID database, keeping the
// dynamic EIDs detected so far: the Map-Servers hear of it at once and
// recent ITRs get an SMR. (A reload goes through Reconfigure, which also
// withdraws the prefixes that are gone.)
func (s *Server) SetDatabase(entries []DatabaseEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setDatabaseLocked(entries)
	now := s.opts.Now()
	for _, p := range s.peers {
		p.nextRegister = now
	}
	s.registerDueLocked(now)
	s.smrLocked(now)
}

func (s *Server) newNonce() uint64 {
	for {
		n := rand.Uint64()
		if _, busy := s.pending[n]; !busy && n != 0 {
			if _, busy := s.probes[n]; !busy {
				return n
			}
		}
	}
}

// localRLOC returns the RLOC to send to dst from. One behind a NAT is
// passed over for one of its family that is not (draft-ietf-lisp-nat-
// traversal §5.1.2, §5.4): what we send from it is answered to its
// private address, which the answer cannot reach.
func (s *Server) localRLOC(dst netip.Addr) (netip.Addr, bool) {
	a, ok := s.routeSource(dst)
	if ok && s.natedLocked(a) {
		if p, ok := s.publicRLOCLocked(a.Is4()); ok {
			return p, true
		}
	}
	return a, ok
}

// routeSource is the local RLOC the routes pick toward dst, else the
// first of its family.
func (s *Server) routeSource(dst netip.Addr) (netip.Addr, bool) {
	if s.opts.SourceFor != nil {
		if a, ok := s.opts.SourceFor(dst); ok && slices.Contains(s.opts.LocalRLOCs, a) {
			return a, true
		}
	}
	for _, a := range s.opts.LocalRLOCs {
		if a.Is4() == dst.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// Tick runs the timers; the daemon calls it a few times a second.
func (s *Server) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if s.opts.ETR {
		s.natDueLocked(now)
		s.registerDueLocked(now)
	}
	if s.opts.ITR {
		s.expireCacheLocked(now)
		s.expireRequestsLocked(now)
		s.pruneLocked(now)
		s.smrDueLocked(now)
		s.probeLocked(now)
	}
	s.recent.expire(now.Add(-time.Minute))
	for a, t := range s.lastSMR {
		if now.Sub(t) > 3*time.Second {
			delete(s.lastSMR, a)
		}
	}
}

// Owns reports whether eid is inside the local database.
func (s *Server) Owns(eid mapping.EID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, ok := s.db.LookupPrefix(eid)
	return ok
}
