package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/osnet"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/internal/xtr"
)

// dynamicEIDs is the host-detection machinery of an xTR with dynamic EIDs: the
// manager and the kernel state it owns (ARP sockets, notify groups, host
// routes, proxy ARP).
type dynamicEIDs struct {
	mgr    *dynamiceid.Manager
	kernel *hostKernel
	groups map[string]*dynamiceid.Group // by range name
	arps   []*dynamiceid.ARPConn
	nds    []*dynamiceid.NDConn
	wg     sync.WaitGroup
	// proxyARP lists the interfaces we turned proxy ARP on for.
	proxyARP []string
}

// dynamicRanges resolves the configured ranges' locators: their own, else
// those of the database entry covering the range, else of the first
// database entry of its instance ID (config checking guarantees one).
func dynamicRanges(c *config.XTR, db []xtr.DatabaseEntry) []dynamiceid.Range {
	var out []dynamiceid.Range
	for _, d := range c.DynamicEIDs {
		r := dynamiceid.Range{Name: d.Name, EID: mapping.NewEID(d.InstanceID, d.Prefix), Interface: d.Interface,
			Mode: d.Mode, NotifyGroup: d.NotifyGroup, Timeout: d.Timeout,
			MaxAdopted: d.GroupMaxAdopted, AdoptRate: d.GroupAdoptRate}
		for _, l := range d.Locators {
			if l.Address.IsValid() {
				r.Locators = append(r.Locators, mapping.Locator{Addr: l.Address, Priority: l.Priority, Weight: l.Weight,
					MPriority: l.MPriority, MWeight: l.MWeight})
			} else if a, err := interfaceAddr(l.Interface); err == nil {
				r.Locators = append(r.Locators, mapping.Locator{Addr: a, Priority: l.Priority, Weight: l.Weight,
					MPriority: l.MPriority, MWeight: l.MWeight})
			}
		}
		if len(r.Locators) == 0 {
			var first, cover *xtr.DatabaseEntry
			for i := range db {
				e := &db[i]
				if e.EID.IID != r.EID.IID {
					continue
				}
				if first == nil {
					first = e
				}
				if e.EID.Contains(r.EID) && cover == nil {
					cover = e
				}
			}
			if cover == nil {
				cover = first
			}
			if cover != nil {
				r.Locators = cover.Locators
			}
		}
		out = append(out, r)
	}
	return out
}

// startDynamicEIDs builds the manager of an xTR with dynamic EIDs and opens
// its sockets. dp may be nil (no data plane: detection by ARP only).
func (d *Daemon) startDynamicEIDs(cfg *config.Config, db []xtr.DatabaseEntry, x *xtr.Server, dp dynamiceid.DataPlane) (*dynamicEIDs, error) {
	c := cfg.XTR
	ranges := dynamicRanges(c, db)
	k := &hostKernel{routes: map[uint32]*osnet.HostRoutes{}, tun: c.TUN, tables: map[uint32]int{}}
	for _, v := range c.VRFs {
		k.tables[v.InstanceID] = int(v.Table)
	}
	ro := &dynamicEIDs{kernel: k, groups: map[string]*dynamiceid.Group{}}
	ann := &announcer{groups: ro.groups, log: d.log}
	ro.mgr = dynamiceid.New(dynamiceid.Options{Ranges: ranges, XTR: x, Kernel: k, DataPlane: dp, Announcer: ann,
		Now: d.now, Log: d.log, Stats: d.stats, Events: d.events})
	gc := newGroupCounters(d)
	ifaces := map[string]bool{}
	for i, r := range ranges {
		ifaces[r.Interface] = true
		if r.Mode == dynamiceid.AcrossSubnet {
			if on, err := osnet.ProxyARPOn(r.Interface); err == nil && !on {
				if err := osnet.ProxyARP(r.Interface, true); err != nil {
					ro.close()
					return nil, fmt.Errorf("dynamic-eid %s: proxy ARP on %s: %w", r.Name, r.Interface, err)
				}
				ro.proxyARP = append(ro.proxyARP, r.Interface)
			}
		}
		if r.NotifyGroup.IsValid() {
			g, err := dynamiceid.JoinGroup(r.NotifyGroup, r.Interface, groupOptions(&c.DynamicEIDs[i], d))
			if err != nil {
				ro.close()
				return nil, fmt.Errorf("dynamic-eid %s: %w", r.Name, err)
			}
			ro.groups[r.Name] = g
			g.Serve(func(host mapping.EID, locs []mapping.Locator, from netip.Addr) {
				gc.claimed(r.Name, host, from, ro.mgr.Claimed(host, locs))
			}, func(why string, from netip.Addr) { gc.dropped(r.Name, why, from) })
		}
	}
	k.arp = map[string]*dynamiceid.ARPConn{}
	k.nd = map[string]*dynamiceid.NDConn{}
	rc := newRARPCounters(d)
	for dev := range ifaces {
		conn, err := dynamiceid.ListenARP(dev)
		if err != nil {
			ro.close()
			return nil, fmt.Errorf("dynamic EIDs: ARP on %s: %w", dev, err)
		}
		ro.arps = append(ro.arps, conn)
		k.arp[dev] = conn
		across := acrossOn(ranges, dev)
		ro.run(func() { ro.readARP(conn, dev, across) })
		// Hypervisors announce a migrated VM with RARP before it sends
		// anything: the earliest a move can be seen.
		rconn, err := dynamiceid.ListenRARP(dev)
		if err != nil {
			ro.close()
			return nil, fmt.Errorf("dynamic EIDs: RARP on %s: %w", dev, err)
		}
		ro.arps = append(ro.arps, rconn)
		ro.run(func() { ro.readRARP(rconn, dev, across, rc) })
		if !slices.ContainsFunc(ranges, func(r dynamiceid.Range) bool { return r.Interface == dev && r.EID.Prefix.Addr().Is6() }) {
			continue
		}
		// IPv6 hosts show themselves, and answer our probes, with ND.
		nconn, err := dynamiceid.ListenND(dev)
		if err != nil {
			ro.close()
			return nil, fmt.Errorf("dynamic EIDs: ND on %s: %w", dev, err)
		}
		ro.nds = append(ro.nds, nconn)
		k.nd[dev] = nconn
		ro.run(func() { ro.readND(nconn, dev, across) })
	}
	d.log.Info("dynamic EIDs", "ranges", len(ranges), "interfaces", len(ifaces))
	return ro, nil
}

// run starts a reader of the LAN that close waits for.
func (ro *dynamicEIDs) run(read func()) {
	ro.wg.Add(1)
	go func() {
		defer ro.wg.Done()
		read()
	}()
}

// acrossOn reports whether dev holds an across-subnet range: a LAN that
// is ours alone, where any sign of a host is news of it.
func acrossOn(ranges []dynamiceid.Range, dev string) bool {
	return slices.ContainsFunc(ranges, func(r dynamiceid.Range) bool {
		return r.Interface == dev && r.Mode == dynamiceid.AcrossSubnet
	})
}

// groupOptions secures a range's notify group as configured (config
// checking guarantees the key).
func groupOptions(c *config.DynamicEID, d *Daemon) dynamiceid.GroupOptions {
	o := dynamiceid.GroupOptions{Now: d.now}
	if k := c.GroupKey; k != nil {
		o.Key = dynamiceid.GroupKey{ID: k.ID, Algorithm: k.Algorithm, Secret: k.Secret}
	}
	for _, a := range c.GroupPeers {
		o.Peers = append(o.Peers, netip.PrefixFrom(a, a.BitLen()))
	}
	return o
}

// groupCounters count what comes of notify-group datagrams; drops are
// logged at most once a minute.
type groupCounters struct {
	malformed, received, deferred *stats.Counter
	drops                         map[string]*stats.Counter
	log                           *slog.Logger
	now                           func() time.Time
	mu                            sync.Mutex
	loggedAt                      time.Time
}

func newGroupCounters(d *Daemon) *groupCounters {
	gc := &groupCounters{
		malformed: d.stats.Counter(stats.Desc{Subsystem: "mobility", Name: "notify_group_malformed",
			Help: "Notify-group datagrams that were not a Map-Notify."}),
		received: d.stats.Counter(stats.Desc{Subsystem: "mobility", Name: "notify_group_received",
			Help: "Host announcements taken from other xTRs of the LAN (signed, on-link, fresh)."}),
		deferred: d.stats.Counter(stats.Desc{Subsystem: "mobility", Name: "notify_group_deferred",
			Help: "Claims by another site for a live host of ours, held until the Map-Server confirms the move."}),
		drops: map[string]*stats.Counter{}, log: d.log.With("role", "mobility"), now: d.now,
	}
	for _, why := range append(slices.Clone(dynamiceid.GroupDrops), dynamiceid.ClaimRefusals...) {
		gc.drops[why] = d.stats.Counter(stats.Desc{Subsystem: "mobility", Name: "notify_group_dropped",
			Help:   "Notify-group datagrams and claims dropped, by reason.",
			Labels: [][2]string{{"reason", why}}})
	}
	return gc
}

func (gc *groupCounters) dropped(rangeName, why string, from netip.Addr) {
	if why == dynamiceid.DropMalformed {
		gc.malformed.Inc()
		return
	}
	if c := gc.drops[why]; c != nil {
		c.Inc()
	}
	gc.mu.Lock()
	now := gc.now()
	quiet := now.Sub(gc.loggedAt) >= time.Minute
	if quiet {
		gc.loggedAt = now
	}
	gc.mu.Unlock()
	if quiet {
		gc.log.Warn("notify-group claim dropped", "range", rangeName, "reason", why, "from", from)
	}
}

func (gc *groupCounters) claimed(rangeName string, host mapping.EID, from netip.Addr, outcome string) {
	gc.received.Inc()
	switch outcome {
	case dynamiceid.ClaimDeferred:
		gc.deferred.Inc()
	case dynamiceid.ClaimAdopted, dynamiceid.ClaimRefreshed, dynamiceid.ClaimIgnored:
	default:
		gc.dropped(rangeName, outcome, from)
	}
}

// readARP turns the ARP seen on a LAN into detections (across-subnet: the
// LAN is ours alone, so any ARP of a host is news) and liveness (answers
// to our probes, sent to our MAC).
func (ro *dynamicEIDs) readARP(conn *dynamiceid.ARPConn, dev string, across bool) {
	readEach(conn.Read, func(f dynamiceid.Frame) {
		a := f.ARP.SenderIP
		if !a.IsValid() || a.IsUnspecified() {
			return
		}
		// Any ARP of a host binds its MAC, so that a hypervisor's RARP for
		// the VM can be resolved when it comes back.
		ro.mgr.Learn(dev, f.ARP.SenderMAC, a)
		if across {
			ro.mgr.DetectedOn(dev, a, "arp")
		} else if f.ToUs && f.ARP.Op == dynamiceid.OpReply {
			ro.mgr.AliveOn(dev, a)
		}
	})
}

// readEach hands each frame read to handle until the socket is closed
// (other read errors are a frame lost).
func readEach[F any](read func() (F, error), handle func(F)) {
	for {
		f, err := read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		handle(f)
	}
}

// readND is readARP for IPv6: a host's NS (its address and MAC), its NA
// (unsolicited after it arrives, or solicited by our probe), and its DAD
// probe for an address it is taking. Across subnets, any of them is news
// of the host; elsewhere only an answer to our probe says it is alive.
func (ro *dynamicEIDs) readND(conn *dynamiceid.NDConn, dev string, across bool) {
	readEach(conn.Read, func(f dynamiceid.NDFrame) {
		a, ok := f.ND.Host()
		if f.ND.IsDAD() {
			a, ok = f.ND.Target, true
		}
		if !ok {
			return
		}
		mac := f.ND.LinkAddr
		if mac.IsZero() {
			mac = f.Src
		}
		ro.mgr.Learn(dev, mac, a)
		if across {
			ro.mgr.DetectedOn(dev, a, "nd")
		} else if f.ToUs && f.ND.Type == dynamiceid.ICMPv6NeighborAdvertisement {
			ro.mgr.AliveOn(dev, a)
		}
	})
}

// rarpCounters count the hypervisors' announcements.
type rarpCounters struct {
	detected *stats.Counter
	drops    map[string]*stats.Counter
}

// Reasons a RARP frame detects nothing: labels of
// lisp_mobility_rarp_dropped_total.
const rarpNotAnnouncement = "not-announcement" // not a request for the sender's own MAC

func newRARPCounters(d *Daemon) *rarpCounters {
	rc := &rarpCounters{
		detected: d.stats.Counter(stats.Desc{Subsystem: "mobility", Name: "rarp_detected",
			Help: "Hypervisor announcements (RARP) that detected a known VM at once."}),
		drops: map[string]*stats.Counter{},
	}
	for _, why := range []string{rarpNotAnnouncement, dynamiceid.AnnounceUnknownMAC} {
		rc.drops[why] = d.stats.Counter(stats.Desc{Subsystem: "mobility", Name: "rarp_dropped",
			Help:   "RARP frames that detected no host, by reason.",
			Labels: [][2]string{{"reason", why}}})
	}
	return rc
}

// readRARP turns a hypervisor's announcement of a migrated VM into the
// detection of every address bound to its MAC on this LAN. As with ARP,
// only an across-subnet LAN is ours alone: on a stretched subnet the
// broadcast reaches both sites and says nothing of where the VM is.
func (ro *dynamicEIDs) readRARP(conn *dynamiceid.ARPConn, dev string, across bool, rc *rarpCounters) {
	readEach(conn.Read, func(f dynamiceid.Frame) {
		switch {
		case !across:
		case !f.ARP.IsAnnouncement():
			rc.drops[rarpNotAnnouncement].Inc()
		default:
			if why := ro.mgr.Announced(dev, f.ARP.SenderMAC); why != dynamiceid.AnnounceDetected {
				rc.drops[why].Inc()
			} else {
				rc.detected.Inc()
			}
		}
	})
}

func (ro *dynamicEIDs) close() error {
	var errs []error
	for _, c := range ro.arps {
		errs = append(errs, c.Close())
	}
	for _, c := range ro.nds {
		errs = append(errs, c.Close())
	}
	for _, g := range ro.groups {
		errs = append(errs, g.Close())
	}
	ro.wg.Wait()
	// Every host route the manager asked for, local or away.
	for _, r := range ro.kernel.routes {
		errs = append(errs, r.Remove())
	}
	for _, dev := range ro.proxyARP {
		errs = append(errs, osnet.ProxyARP(dev, false))
	}
	return errors.Join(errs...)
}

// hostKernel is the manager's view of Linux: host routes of an instance
// ID go in its VRF's table (the main table without one) and a moved host
// into the instance's TUN, as the data plane routes the instance's EIDs.
type hostKernel struct {
	routes map[uint32]*osnet.HostRoutes // by instance ID; the manager's lock guards it
	tables map[uint32]int               // VRF tables by instance ID
	tun    string
	arp    map[string]*dynamiceid.ARPConn
	nd     map[string]*dynamiceid.NDConn
}

func (k *hostKernel) table(iid uint32) *osnet.HostRoutes {
	r := k.routes[iid]
	if r == nil {
		r = osnet.NewHostRoutes(k.tables[iid])
		k.routes[iid] = r
	}
	return r
}

func (k *hostKernel) RouteLocal(h mapping.EID, dev string) error {
	return k.table(h.IID).Set(h.Prefix, dev)
}
func (k *hostKernel) RouteAway(h mapping.EID) error {
	return k.table(h.IID).Set(h.Prefix, tunName(k.tun, h.IID))
}
func (k *hostKernel) Unroute(h mapping.EID) error { return k.table(h.IID).Delete(h.Prefix) }

// Probe sends an ARP request for host from the interface's first IPv4
// address, or for an IPv6 host a Neighbor Solicitation from its
// link-local address (the host answers to our MAC).
func (k *hostKernel) Probe(dev string, host netip.Addr) error {
	if host.Is6() {
		if c := k.nd[dev]; c != nil {
			return c.Solicit(host)
		}
		return fmt.Errorf("no ND socket on %s", dev)
	}
	conn := k.arp[dev]
	if conn == nil {
		return fmt.Errorf("no ARP socket on %s", dev)
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			return conn.Request(host, p.Addr())
		}
	}
	return conn.Request(host, netip.IPv4Unspecified())
}

// announcer sends host announcements to a range's notify group.
type announcer struct {
	groups map[string]*dynamiceid.Group
	log    *slog.Logger
}

func (a *announcer) Announce(r *dynamiceid.Range, host mapping.EID, locs []mapping.Locator) {
	if g := a.groups[r.Name]; g != nil {
		if err := g.Announce(host, locs); err != nil {
			a.log.Warn("notify group", "group", r.NotifyGroup, "err", err)
		}
	}
}
