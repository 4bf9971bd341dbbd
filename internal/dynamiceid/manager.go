package dynamiceid

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/events"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
)

// Modes of a dynamic-EID range.
const (
	AcrossSubnet   = "across-subnet"   // the host keeps an address of another site's subnet
	ExtendedSubnet = "extended-subnet" // the subnet is stretched between the sites at layer 2
)

// Range is a dynamic-EID range of an xTR: hosts of Prefix may show up on
// Interface and are then registered with Locators.
type Range struct {
	Name        string
	EID         mapping.EID
	Interface   string
	Mode        string
	NotifyGroup netip.Addr // where the xTRs of the LAN tell each other of hosts they detect
	Locators    []mapping.Locator
	Timeout     time.Duration // silence after which a host is unregistered
	// MaxAdopted caps the hosts held on a group claim alone (no detection
	// of our own yet) and AdoptRate is how many a second may be adopted,
	// with a burst of as many: they bound what a peer holding the group
	// key can make us register. Zero adopts nothing.
	MaxAdopted int
	AdoptRate  int
}

// States of a host, as `show dynamic-eid` names them.
const (
	Local  = adminapi.HostLocal
	Away   = adminapi.HostAway
	Moving = adminapi.HostMoving
)

// XTR is what the manager asks of the tunnel router's control plane.
type XTR interface {
	AddHost(eid mapping.EID, locs []mapping.Locator) bool
	RemoveHost(eid mapping.EID, withdraw bool) bool
	SetAway(to mapping.Mapping, ttl time.Duration)
	ClearAway(eid mapping.EID)
}

// Kernel is what the manager asks of the host system. Host routes go in
// the routing table of the host's instance ID (its VRF's, or the main
// table), as the data plane routes the instance's EIDs.
type Kernel interface {
	// RouteLocal sends traffic for host out of the LAN interface dev.
	RouteLocal(host mapping.EID, dev string) error
	// RouteAway sends traffic for host into its instance's TUN (to its
	// new site).
	RouteAway(host mapping.EID) error
	// Unroute removes what RouteLocal or RouteAway installed.
	Unroute(host mapping.EID) error
	// Probe asks host on dev whether it is still there (an ARP request).
	Probe(dev string, host netip.Addr) error
}

// DataPlane is what the manager tells the data plane.
type DataPlane interface {
	SetDynamicEIDs(ranges, known []mapping.EID) // report unknown sources in ranges
	SetAwayEIDs(eids []mapping.EID)             // re-encapsulate decapsulated traffic for these
}

// Announcer tells the other xTRs of an extended subnet that a host is here.
type Announcer interface {
	Announce(r *Range, host mapping.EID, locs []mapping.Locator)
}

// Options configure a Manager.
type Options struct {
	Ranges    []Range
	XTR       XTR
	Kernel    Kernel
	DataPlane DataPlane
	Announcer Announcer // nil: no notify groups
	Now       func() time.Time
	Log       *slog.Logger
	// AwayTTL caps how long an away entry is kept (default a day; the
	// record TTL of the new mapping when shorter).
	AwayTTL time.Duration
	// MaxBindings bounds the MAC bindings learnt from the LANs (default
	// DefaultMaxBindings); past it an arbitrary one is forgotten.
	MaxBindings int
	// Stats holds the manager's counters (a registry of its own if nil).
	Stats *stats.Registry
	// Events takes host-detected and host-gone (lispctl monitor, the
	// web view); nil publishes nothing.
	Events *events.Bus
}

// awayGuard is how long after the Map-Server said a host moved away a
// packet of it routed through us is not taken as its return: packets it
// sent before the move can still sit in the TUN's queue when the news
// comes (75 ms seen on a loaded machine), and taking one of them as the
// host back here would move it from its new site for good. A host that
// really came back within it is probed on an across-subnet LAN (its answer
// brings it back at once); past it, its packets do as ever.
const awayGuard = time.Second

// DefaultMaxBindings is how many MAC bindings a manager keeps by default.
const DefaultMaxBindings = 16384

// Host is one dynamic-EID host known to the manager.
type Host struct {
	EID       mapping.EID
	Range     string
	State     string
	How       string // what detected it: data, arp, map-notify, notify-group
	Since     time.Time
	LastSeen  time.Time
	Moves     int
	To        []mapping.Locator // away: the locators of its new site
	lastProbe time.Time
	expires   time.Time // away entries
}

// Outcomes of a group claim, as Claimed returns them. The refusals are
// labels of lisp_mobility_notify_group_dropped_total.
const (
	ClaimAdopted   = "adopted"   // an xTR of our site found the host: registered here too
	ClaimRefreshed = "refreshed" // the host is local here already
	ClaimDeferred  = "deferred"  // another site claims a live host of ours: kept until the Map-Server confirms
	ClaimIgnored   = "ignored"   // another site claims a host we do not hold

	ClaimOutsideRange = "outside-range" // no range of ours holds the host
	ClaimAdoptCap     = "adopt-cap"     // the range holds MaxAdopted hosts adopted from the group
	ClaimAdoptRate    = "adopt-rate"    // adoptions come faster than AdoptRate
)

// Outcomes of a hypervisor's announcement (a RARP), as Announced returns
// them; the refusal is a label of lisp_mobility_announcements_dropped_total.
const (
	AnnounceDetected   = "detected"    // the MAC is bound to hosts of a range on the interface
	AnnounceUnknownMAC = "unknown-mac" // no ARP of the MAC seen here yet: wait for the host's own packets
)

// ClaimRefusals are the outcomes of Claimed that refuse a claim.
var ClaimRefusals = []string{ClaimOutsideRange, ClaimAdoptCap, ClaimAdoptRate}

// Manager keeps the dynamic-EID hosts of one xTR.
type Manager struct {
	mu     sync.Mutex
	o      Options
	ranges *mapping.Table[*Range]
	hosts  map[mapping.EID]*Host
	adopt  map[string]*bucket // by range name
	log    *slog.Logger
	// The MAC each host address used in an ARP seen on its range's LAN,
	// and the reverse: a RARP names a MAC only. Kept for hosts that moved
	// away or went silent too, since that is when a VM comes back.
	bound map[mapping.EID]MAC
	macs  map[MAC][]mapping.EID
	// stale counts packets of a host that moved away read within
	// awayGuard of the move (lisp_mobility_stale_sightings_total).
	stale *stats.Counter
	// round counts the detection rounds under way: the data plane is
	// told once at the end of the outermost (dirty: something changed).
	round int
	dirty bool
	// sightings wait for the next round (Sighted); draining says a
	// goroutine runs the rounds.
	sightMu   sync.Mutex
	sightings []Sighting
	draining  bool
}

// bucket is a token bucket: rate tokens a second, as many at most.
type bucket struct {
	tokens float64
	last   time.Time
}

// take spends a token if there is one.
func (b *bucket) take(rate int, now time.Time) bool {
	if rate <= 0 {
		return false
	}
	if !b.last.IsZero() {
		b.tokens = min(float64(rate), b.tokens+now.Sub(b.last).Seconds()*float64(rate))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// New builds a manager and tells the data plane which ranges to watch.
func New(o Options) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.AwayTTL == 0 {
		o.AwayTTL = 24 * time.Hour
	}
	if o.MaxBindings == 0 {
		o.MaxBindings = DefaultMaxBindings
	}
	if o.Stats == nil {
		o.Stats = stats.NewRegistry()
	}
	m := &Manager{o: o, ranges: mapping.NewTable[*Range](), hosts: map[mapping.EID]*Host{},
		adopt: map[string]*bucket{}, bound: map[mapping.EID]MAC{}, macs: map[MAC][]mapping.EID{},
		log: o.Log.With("role", "mobility"), // the log role operators filter on (docs/interfaces.md)
		stale: o.Stats.Counter(stats.Desc{Subsystem: "mobility", Name: "stale_sightings",
			Help: "Packets of a host that moved away read within a second of the move (sent before it): not taken as its return."})}
	for i := range o.Ranges {
		r := &o.Ranges[i]
		if r.Timeout == 0 {
			r.Timeout = 3 * time.Minute
		}
		m.ranges.Insert(r.EID, r)
		m.adopt[r.Name] = &bucket{tokens: float64(r.AdoptRate)}
	}
	m.syncDataPlaneLocked()
	return m
}

// Ranges returns the ranges as configured (with default timeouts).
func (m *Manager) Ranges() []Range {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.o.Ranges)
}

// SetTimeout changes the silence timeout of the named range (a reload);
// it reports whether there is such a range.
func (m *Manager) SetTimeout(name string, d time.Duration) bool {
	if d == 0 {
		d = 3 * time.Minute
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.o.Ranges {
		if r := &m.o.Ranges[i]; r.Name == name {
			r.Timeout = d
			return true
		}
	}
	return false
}

// rangeFor returns the range holding a host address, if any.
func (m *Manager) rangeFor(iid uint32, a netip.Addr) (*Range, mapping.EID, bool) {
	h := mapping.HostEID(iid, a)
	_, r, ok := m.ranges.LookupPrefix(h)
	return r, h, ok
}

// Sighting is a host seen sending: as Detected's arguments.
type Sighting struct {
	IID  uint32
	Addr netip.Addr
	How  string // data, arp, nd
	Dev  string // "" when unknown (the data plane)
}

// DetectedAll is Detected for many sightings at once, one detection
// round: the hosts new among them are registered together (as many
// records per Map-Register as fit) and the data plane's tables are
// rebuilt once at the end, not once per host: hundreds of VMs arriving
// together would make that quadratic.
func (m *Manager) DetectedAll(ss []Sighting) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roundLocked(func() {
		for _, x := range ss {
			m.detectedLocked(x.IID, x.Addr, x.How, x.Dev)
		}
	})
}

// maxRound bounds the sightings of one round, so that the first hosts of
// a mass arrival are not held back by the last.
const maxRound = 256

// Sighted queues a sighting for the next detection round and returns: a
// goroutine runs the rounds while sightings wait, each taking all that
// came while the previous one ran (DetectedAll). The data plane reports
// hosts from one goroutine; handing them over this way lets a mass
// arrival go in a few rounds instead of one round per host.
func (m *Manager) Sighted(x Sighting) {
	m.sightMu.Lock()
	m.sightings = append(m.sightings, x)
	if m.draining {
		m.sightMu.Unlock()
		return
	}
	m.draining = true
	m.sightMu.Unlock()
	go m.drain()
}

// drain runs detection rounds until no sighting waits.
func (m *Manager) drain() {
	var batch []Sighting
	for {
		m.sightMu.Lock()
		n := min(len(m.sightings), maxRound)
		if n == 0 {
			m.draining = false
			m.sightMu.Unlock()
			return
		}
		batch = append(batch[:0], m.sightings[:n]...)
		m.sightings = append(m.sightings[:0], m.sightings[n:]...)
		m.sightMu.Unlock()
		m.DetectedAll(batch)
	}
}

// roundLocked runs f as one round: its registrations go in one batch and
// the data plane hears of its changes once, at the end.
func (m *Manager) roundLocked(f func()) {
	m.round++
	defer func() {
		if m.round--; m.round == 0 && m.dirty {
			m.syncDataPlaneLocked()
		}
	}()
	m.batchLocked(f)
}

// Detected says a host sent something here: a packet routed through us
// (how "data"), or an ARP of its own on the LAN (how "arp"). dev is the
// interface it was seen on ("" when unknown: the data plane). A host of a
// range that is not local yet becomes local: route, registration, and on
// an extended subnet an announcement to the other xTRs.
func (m *Manager) Detected(iid uint32, a netip.Addr, how, dev string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.detectedLocked(iid, a, how, dev)
}

// onLocked lists the host EIDs of a in the ranges on the interface dev,
// one per instance ID (the most specific range of each): a LAN interface
// belongs to one VRF, but nothing forbids two instance IDs on it.
func (m *Manager) onLocked(dev string, a netip.Addr) []mapping.EID {
	var out []mapping.EID
	for i := range m.o.Ranges {
		r := &m.o.Ranges[i]
		if r.Interface != dev || !r.EID.Prefix.Contains(a) {
			continue
		}
		if best, eid, ok := m.rangeFor(r.EID.IID, a); ok && best.Interface == dev && !slices.Contains(out, eid) {
			out = append(out, eid)
		}
	}
	return out
}

// DetectedOn is Detected for a host seen on the LAN interface dev (its
// ARP): the instance ID is that of the ranges on dev.
func (m *Manager) DetectedOn(dev string, a netip.Addr, how string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, eid := range m.onLocked(dev, a) {
		m.detectedLocked(eid.IID, a, how, dev)
	}
}

// AliveOn is Alive for a host that answered a probe on dev.
func (m *Manager) AliveOn(dev string, a netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, eid := range m.onLocked(dev, a) {
		if h := m.hosts[eid]; h != nil && (h.State == Local || h.State == Moving) {
			h.LastSeen = m.o.Now()
		}
	}
}

// Learn records that the host at a (in a range on dev) uses mac, as an
// ARP it sent says. Bindings are bounded by MaxBindings: a LAN showing an
// endless stream of addresses makes us forget an arbitrary one, never
// grow.
func (m *Manager) Learn(dev string, mac MAC, a netip.Addr) {
	if mac.IsZero() || mac == BroadcastMAC || mac[0]&1 != 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, eid := range m.onLocked(dev, a) {
		old, known := m.bound[eid]
		if known && old == mac {
			continue
		}
		if known {
			m.unbindLocked(eid, old)
		} else if len(m.bound) >= m.o.MaxBindings {
			for e, om := range m.bound {
				m.unbindLocked(e, om)
				break
			}
		}
		m.bound[eid] = mac
		m.macs[mac] = append(m.macs[mac], eid)
	}
}

func (m *Manager) unbindLocked(eid mapping.EID, mac MAC) {
	delete(m.bound, eid)
	rest := slices.DeleteFunc(m.macs[mac], func(e mapping.EID) bool { return e == eid })
	if len(rest) == 0 {
		delete(m.macs, mac)
	} else {
		m.macs[mac] = rest
	}
}

// Batcher is what an XTR may offer to register together the hosts that
// one event brings (every address of a VM a RARP names): the AddHost calls
// of f go in one Map-Register. f runs with the manager's lock held.
type Batcher interface {
	HostBatch(f func())
}

// batchLocked runs f as one batch of registrations when the XTR can.
func (m *Manager) batchLocked(f func()) {
	if b, ok := m.o.XTR.(Batcher); ok {
		b.HostBatch(f)
		return
	}
	f()
}

// Announced says a hypervisor announced the VM with MAC mac on dev (a
// RARP after live migration, before the VM sends anything): every host
// address bound to mac in the ranges on dev is detected here at once, all
// the VM's addresses together. It returns AnnounceDetected, or
// AnnounceUnknownMAC when no ARP of the MAC was seen on this LAN (the
// host is then detected by its own first packet or ARP).
func (m *Manager) Announced(dev string, mac MAC) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	m.roundLocked(func() {
		for _, eid := range slices.Clone(m.macs[mac]) {
			if r, _, ok := m.rangeFor(eid.IID, eid.Prefix.Addr()); ok && r.Interface == dev {
				m.detectedLocked(eid.IID, eid.Prefix.Addr(), "rarp", dev)
				n++
			}
		}
	})
	if n == 0 {
		return AnnounceUnknownMAC
	}
	return AnnounceDetected
}

func (m *Manager) detectedLocked(iid uint32, a netip.Addr, how, dev string) {
	r, eid, ok := m.rangeFor(iid, a)
	if !ok || (dev != "" && dev != r.Interface) {
		return
	}
	now := m.o.Now()
	h := m.hosts[eid]
	if h != nil && (h.State == Local || h.State == Moving) {
		// Seen here: a claim by another site was wrong or stale, and a
		// host adopted from the group is ours now.
		h.LastSeen, h.State = now, Local
		if h.How == "notify-group" {
			h.How = how
		}
		return
	}
	if h != nil && h.State == Away && how == "data" && now.Sub(h.Since) < awayGuard {
		m.stale.Inc()
		// Across subnets the LAN is ours alone: if the host really is
		// back, its answer (an ARP or ND of its own) brings it at once.
		if r.Mode == AcrossSubnet && now.Sub(h.lastProbe) >= awayGuard/10 {
			h.lastProbe = now
			if err := m.o.Kernel.Probe(r.Interface, a); err != nil {
				m.log.Debug("probe failed", "eid", eid, "err", err)
			}
		}
		return
	}
	m.localLocked(r, eid, h, how, now)
	if r.NotifyGroup.IsValid() && m.o.Announcer != nil {
		m.o.Announcer.Announce(r, eid, r.Locators)
	}
	// A host found without its MAC (by a packet routed through us, while
	// the kernel's neighbour entry spares it an ARP) is asked at once: its
	// answer binds the MAC, which is what resolves the hypervisor's RARP
	// when the VM comes back here after moving away.
	if _, bound := m.bound[eid]; !bound {
		if err := m.o.Kernel.Probe(r.Interface, a); err != nil {
			m.log.Debug("probe failed", "eid", eid, "err", err)
		}
	}
}

// localLocked makes a host local: route, registration, data plane.
func (m *Manager) localLocked(r *Range, eid mapping.EID, h *Host, how string, now time.Time) {
	if h == nil {
		h = &Host{EID: eid, Range: r.Name}
		m.hosts[eid] = h
	} else {
		h.Moves++
	}
	wasAway := h.State == Away
	h.State, h.How, h.Since, h.LastSeen, h.To = Local, how, now, now, nil
	if err := m.o.Kernel.RouteLocal(eid, r.Interface); err != nil {
		m.log.Warn("cannot route to a detected host", "eid", eid, "err", err)
	}
	if wasAway {
		m.o.XTR.ClearAway(eid)
	}
	m.o.XTR.AddHost(eid, r.Locators)
	m.syncDataPlaneLocked()
	m.log.Info("host detected", "eid", eid, "range", r.Name, "interface", r.Interface, "by", how)
	m.o.Events.About(eid, adminapi.Event{Type: adminapi.EventHostDetected, Reason: how, Locators: events.Locators(r.Locators)})
}

// Alive says a host answered one of our probes: it is still here. It
// never makes a host local (on an extended subnet its ARP may come from
// the other site).
func (m *Manager) Alive(iid uint32, a netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.hosts[mapping.HostEID(iid, a)]; h != nil && (h.State == Local || h.State == Moving) {
		h.LastSeen = m.o.Now()
	}
}

// MovedAway says the Map-Server saw a host of ours register at another
// site (to is its new mapping): stop claiming it, keep forwarding what
// still arrives for it to the new site, and have recent ITRs ask again.
func (m *Manager) MovedAway(eid mapping.EID, to mapping.Mapping) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.movedAwayLocked(eid, to)
}

// MovedAwayAll is MovedAway for the hosts of one Map-Notify (a Map-Server
// tells an old xTR of a mass migration in batches), in one round: the
// data plane's tables are rebuilt once.
func (m *Manager) MovedAwayAll(moved []mapping.Mapping) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roundLocked(func() {
		for _, to := range moved {
			m.movedAwayLocked(to.EID, to)
		}
	})
}

func (m *Manager) movedAwayLocked(eid mapping.EID, to mapping.Mapping) {
	h := m.hosts[eid]
	if h == nil || h.State == Away && slices.Equal(h.To, to.Locators) {
		return
	}
	r, _, ok := m.rangeFor(eid.IID, eid.Prefix.Addr())
	if !ok {
		return
	}
	now := m.o.Now()
	if h.State == Local || h.State == Moving {
		m.o.XTR.RemoveHost(eid, false)
	}
	ttl := m.o.AwayTTL
	if t := time.Duration(to.TTL) * time.Minute; to.TTL != 0 && t < ttl {
		ttl = t
	}
	h.State, h.How, h.Since, h.To, h.expires = Away, "map-notify", now, slices.Clone(to.Locators), now.Add(ttl)
	h.Moves++
	if err := m.o.Kernel.RouteAway(eid); err != nil {
		m.log.Warn("cannot route a moved host into the tunnel", "eid", eid, "err", err)
	}
	m.o.XTR.SetAway(to, ttl)
	m.syncDataPlaneLocked()
	m.log.Info("host moved away", "eid", eid, "range", r.Name, "to", locatorAddrs(to.Locators))
}

// Claimed says another xTR on the LAN announced a host with locs (the
// group checked the signature, the sender and the TTL) and returns what
// came of it. An xTR of our own site (it announces our locators) found it
// here: we adopt it as local too, so every xTR of the site registers it
// and hears when it leaves, and an away entry left from an earlier move
// goes; adoptions are capped and rate-limited per range. Another site's
// xTR (extended subnet) says it has the host now: a claim alone never
// evicts a live host of ours (a key holder could take any host away with
// it); the host shows as moving, still routed and registered, until the
// Map-Server's authenticated Map-Notify says where it went (MovedAway) or
// our own detection says it is here.
func (m *Manager) Claimed(eid mapping.EID, locs []mapping.Locator) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, _, ok := m.rangeFor(eid.IID, eid.Prefix.Addr())
	if !ok {
		return ClaimOutsideRange
	}
	h := m.hosts[eid]
	now := m.o.Now()
	ourSite := slices.ContainsFunc(locs, func(l mapping.Locator) bool {
		return slices.ContainsFunc(r.Locators, func(o mapping.Locator) bool { return o.Addr == l.Addr })
	})
	if ourSite {
		if h != nil && (h.State == Local || h.State == Moving) {
			h.LastSeen, h.State = now, Local
			return ClaimRefreshed
		}
		if m.adoptedLocked(r) >= r.MaxAdopted {
			return ClaimAdoptCap
		}
		if !m.adopt[r.Name].take(r.AdoptRate, now) {
			return ClaimAdoptRate
		}
		m.localLocked(r, eid, h, "notify-group", now)
		return ClaimAdopted
	}
	if h == nil || h.State != Local {
		return ClaimIgnored
	}
	h.State, h.Since = Moving, now
	m.log.Info("host claimed by another site: waiting for the Map-Server", "eid", eid, "range", r.Name,
		"by", locatorAddrs(locs))
	return ClaimDeferred
}

// adoptedLocked counts the hosts of r held on a group claim alone.
func (m *Manager) adoptedLocked(r *Range) int {
	n := 0
	for _, h := range m.hosts {
		if h.Range == r.Name && h.How == "notify-group" && (h.State == Local || h.State == Moving) {
			n++
		}
	}
	return n
}

// Tick probes local hosts that have been quiet, unregisters those silent
// for their range's timeout, and drops away entries that aged out. The
// daemon calls it a few times a second.
func (m *Manager) Tick() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	changed := false
	for eid, h := range m.hosts {
		r, _, ok := m.rangeFor(eid.IID, eid.Prefix.Addr())
		if !ok {
			continue
		}
		switch h.State {
		case Local, Moving:
			// A claimed host is still ours until the Map-Server says it
			// moved: its liveness is checked as a local host's, and an
			// unconfirmed claim (stale, or forged by a key holder) lapses.
			if h.State == Moving && now.Sub(h.Since) > r.Timeout {
				h.State = Local
				m.log.Info("claim by another site not confirmed by the Map-Server: host kept", "eid", eid, "range", r.Name)
			}
			quiet := now.Sub(h.LastSeen)
			switch {
			case quiet >= r.Timeout:
				m.o.XTR.RemoveHost(eid, true)
				_ = m.o.Kernel.Unroute(eid)
				delete(m.hosts, eid)
				changed = true
				m.log.Info("host gone: unregistered", "eid", eid, "range", r.Name, "silent", quiet.Round(time.Millisecond))
				m.o.Events.About(eid, adminapi.Event{Type: adminapi.EventHostGone, Reason: "silent"})
			case quiet >= r.Timeout/3 && now.Sub(h.lastProbe) >= r.Timeout/6:
				h.lastProbe = now
				if err := m.o.Kernel.Probe(r.Interface, eid.Prefix.Addr()); err != nil {
					m.log.Debug("probe failed", "eid", eid, "err", err)
				}
			}
		case Away:
			if now.After(h.expires) {
				m.o.XTR.ClearAway(eid)
				_ = m.o.Kernel.Unroute(eid)
				delete(m.hosts, eid)
				changed = true
			}
		}
	}
	if changed {
		m.syncDataPlaneLocked()
	}
}

// syncDataPlaneLocked tells the data plane the ranges, the hosts it need
// not report, and the hosts to re-encapsulate.
func (m *Manager) syncDataPlaneLocked() {
	if m.o.DataPlane == nil {
		return
	}
	if m.round > 0 {
		m.dirty = true
		return
	}
	m.dirty = false
	var ranges, known, away []mapping.EID
	for eid := range m.ranges.All() {
		ranges = append(ranges, eid)
	}
	for eid, h := range m.hosts {
		switch h.State {
		case Local, Moving:
			known = append(known, eid)
		case Away:
			away = append(away, eid)
		}
	}
	m.o.DataPlane.SetDynamicEIDs(ranges, known)
	m.o.DataPlane.SetAwayEIDs(away)
}

func locatorAddrs(ls []mapping.Locator) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Addr.String())
	}
	return out
}
