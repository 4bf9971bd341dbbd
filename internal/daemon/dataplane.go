package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dataplane/kernel"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/osnet"
	"github.com/lispd/lispd/internal/rtr"
	"github.com/lispd/lispd/internal/xtr"
)

// programmer hands what the xTR control plane programs to the userspace
// engine and, when it runs, to the kernel path in front of it: both hold
// the same map-cache, local EIDs and locator states.
type programmer struct {
	e *dataplane.Engine
	k *kernel.Path // nil: userspace only
}

func (p programmer) SetMapCache(c xtr.CacheEntry) {
	ce := dataplane.CacheEntry{EID: c.EID, Negative: c.Negative, Action: c.Action, Expires: c.Expires}
	for _, l := range c.Locators {
		ce.Locators = append(ce.Locators, dataplane.Locator{Addr: l.Addr, Priority: l.Priority, Weight: l.Weight, Up: l.Up})
	}
	p.e.SetMapCache(ce)
	if p.k != nil {
		p.k.SetMapCache(ce)
		if !c.Learnt.IsZero() {
			p.k.RecordMapUpdate(time.Since(c.Learnt))
		}
	}
}

func (p programmer) DeleteMapCache(eid mapping.EID) {
	p.e.DeleteMapCache(eid)
	if p.k != nil {
		p.k.DeleteMapCache(eid)
	}
}

func (p programmer) FlushMapCache() {
	p.e.FlushMapCache(dataplane.AllInstances)
	if p.k != nil {
		p.k.FlushMapCache(dataplane.AllInstances)
	}
}

func (p programmer) SetLocatorUp(eid mapping.EID, rloc netip.Addr, up bool) {
	p.e.SetLocatorUp(eid, rloc, up)
	if p.k != nil {
		p.k.SetLocatorUp(eid, rloc, up)
	}
}

func (p programmer) SetLocalEIDs(eids []mapping.EID) {
	p.e.SetLocalEIDs(eids)
	if p.k != nil {
		p.k.SetLocalEIDs(eids)
	}
}

// SetDynamicEIDs and SetAwayEIDs make programmer the dynamic-EID
// manager's data plane (dynamiceid.DataPlane).
func (p programmer) SetDynamicEIDs(ranges, known []mapping.EID) {
	p.e.SetDynamicEIDs(ranges, known)
	if p.k != nil {
		p.k.SetDynamicEIDs(ranges, known)
	}
}

func (p programmer) SetAwayEIDs(eids []mapping.EID) {
	p.e.SetAwayEIDs(eids)
	if p.k != nil {
		p.k.SetAwayEIDs(eids)
	}
}

// SetSourcePolicy replaces the source checks: the engine applies them,
// and the kernel path hands every packet of a checked instance to it.
func (p programmer) SetSourcePolicy(sp dataplane.SourcePolicy) {
	p.e.SetSourcePolicy(sp)
	if p.k != nil {
		p.k.SetPuntInstances(checkedInstances(sp))
		p.k.SetPETRSources(sp.PETRSources)
	}
}

// checkedInstances are the instances whose decapsulated packets the
// userspace engine must see (their sources are checked).
func checkedInstances(sp dataplane.SourcePolicy) []uint32 {
	var iids []uint32
	for iid := range sp.Checks {
		iids = append(iids, iid)
	}
	return iids
}

// SetLocalRLOCs changes the addresses both paths decapsulate for.
func (p programmer) SetLocalRLOCs(rlocs []netip.Addr) error {
	if err := p.e.SetLocalRLOCs(rlocs); err != nil {
		return err
	}
	if p.k != nil {
		return p.k.SetLocalRLOCs(rlocs)
	}
	return nil
}

// hooks forwards data-plane events to the xTR, which is built after the
// engine (each needs the other).
type hooks struct {
	x atomic.Pointer[xtr.Server]
	m atomic.Pointer[dynamiceid.Manager]
}

// HostSeen hands the data plane's sightings to the manager, which takes
// those that come together in one detection round.
func (h *hooks) HostSeen(iid uint32, src netip.Addr) {
	if m := h.m.Load(); m != nil {
		m.Sighted(dynamiceid.Sighting{IID: iid, Addr: src, How: "data"})
	}
}

func (h *hooks) Miss(iid uint32, dst, src netip.Addr) {
	if x := h.x.Load(); x != nil {
		x.MissFrom(iid, dst, src)
	}
}
func (h *hooks) SendMapRequest(iid uint32, dst, src netip.Addr) {
	if x := h.x.Load(); x != nil {
		x.SendMapRequest(iid, dst, src)
	}
}
func (h *hooks) AwayHit(src netip.Addr, iid uint32, host netip.Addr) {
	if x := h.x.Load(); x != nil {
		x.AwayHit(src, iid, host)
	}
}
func (h *hooks) UnseenHostHit(src netip.Addr, iid uint32, host netip.Addr) {
	if x := h.x.Load(); x != nil {
		x.UnseenHostHit(src, iid, host)
	}
}
func (h *hooks) Decapsulated(src netip.Addr, iid uint32, inner netip.Addr) {
	if x := h.x.Load(); x != nil {
		x.Decapsulated(src, iid, inner)
	}
}

// DataMapNotify hands a Data-Map-Notify the engine received to the xTR
// (draft-ietf-lisp-nat-traversal §5.1.1).
func (h *hooks) DataMapNotify(msg []byte, from netip.AddrPort) {
	if x := h.x.Load(); x != nil {
		x.HandleDataMapNotify(msg, from)
	}
}

// rtrDataPlane is the RTR's view of the userspace engine.
type rtrDataPlane struct{ e *dataplane.Engine }

func (r rtrDataPlane) SetNATedXTRs(fs []rtr.Forwarding) {
	xs := make([]dataplane.NATedXTR, len(fs))
	for i, f := range fs {
		xs[i] = dataplane.NATedXTR{EIDs: f.EIDs, Translated: f.Translated, Local: f.Local, ToXTR: f.ToXTR, FromXTR: f.FromXTR}
	}
	r.e.SetNATedXTRs(xs)
}

// sourcePolicy is what the data plane checks the sources of decapsulated
// packets against: xtr.source-rloc-check and petr.allowed-source-eids.
func sourcePolicy(cfg *config.Config) dataplane.SourcePolicy {
	var sp dataplane.SourcePolicy
	if cfg.XTR != nil {
		for _, c := range cfg.XTR.SourceRLOCChecks {
			if sp.Checks == nil {
				sp.Checks = map[uint32]dataplane.SourceCheck{}
			}
			sp.Checks[c.InstanceID] = dataplane.SourceCheck{MapCache: c.MapCache, RLOCPrefixes: c.RLOCPrefixes}
		}
	}
	if cfg.PETR != nil {
		for _, e := range cfg.PETR.AllowedSourceEIDs {
			if sp.PETRSources == nil {
				sp.PETRSources = map[uint32][]netip.Prefix{}
			}
			sp.PETRSources[e.InstanceID] = append(sp.PETRSources[e.InstanceID], e.Prefix)
		}
	}
	return sp
}

// userspaceDP is a running data plane and the kernel state made for it:
// the userspace engine and, unless the configuration or the kernel rules
// it out, the kernel path in front of it.
type userspaceDP struct {
	engine *dataplane.Engine
	kernel *kernel.Path // nil: userspace only (kernelWhy says why)
	// kernelWhy is why the kernel path is not in use.
	kernelWhy string
	mode      string // xtr.data-plane (a restart key)
	hooks     *hooks
	routes    []*osnet.Configured
	vrfs      []*osnet.VRF
}

func (u *userspaceDP) programmer() programmer { return programmer{e: u.engine, k: u.kernel} }

func (u *userspaceDP) close() error {
	var errs []error
	// The program goes first: nothing is encapsulated toward a TUN
	// route or an engine that is going away.
	if u.kernel != nil {
		errs = append(errs, u.kernel.Close())
	}
	for _, r := range u.routes {
		errs = append(errs, r.Undo())
	}
	errs = append(errs, u.engine.Close())
	for _, v := range u.vrfs {
		errs = append(errs, v.Remove())
	}
	return errors.Join(errs...)
}

// tunName names the TUN of an instance ID: the configured name for IID 0,
// NAME.IID for the others.
func tunName(base string, iid uint32) string {
	if iid == 0 {
		return base
	}
	return fmt.Sprintf("%s.%d", base, iid)
}

// startDataPlane opens one TUN per instance ID of the database (IID 0
// always), the UDP 4341 underlay, starts the engine and routes the EID
// space (and a PITR's prefixes) into the TUN. With devs it uses those
// devices and touches nothing in the kernel.
func (d *Daemon) startDataPlane(cfg *config.Config, xo *xtr.Options, devs *Devices) (*userspaceDP, error) {
	c := cfg.XTR
	iids := map[uint32]bool{0: true}
	for _, e := range xo.Database {
		iids[e.EID.IID] = true
	}
	vrfs := map[uint32]config.VRF{}
	for _, v := range c.VRFs {
		iids[v.InstanceID] = true
		vrfs[v.InstanceID] = v
	}
	mtu := dataplane.TUNMTU(c.UnderlayMTU, xo.LocalRLOCs)
	tuns := map[uint32]dataplane.TUN{}
	closeTUNs := func() {
		for _, t := range tuns {
			t.Close()
		}
	}
	for iid := range iids {
		var t dataplane.TUN
		var err error
		if devs != nil {
			t, err = devs.TUN(iid, mtu)
		} else {
			t, err = dataplane.OpenTUN(tunName(c.TUN, iid), mtu)
		}
		if err != nil {
			closeTUNs()
			return nil, fmt.Errorf("data plane: TUN %s: %w", tunName(c.TUN, iid), err)
		}
		tuns[iid] = t
	}
	// Outer UDP checksums are computed: RFC 6935 allows zero for IPv6
	// tunnels, but middleboxes and Wireshark call it illegal, and Linux
	// coalesces (GRO) only datagrams that carry one.
	var ul dataplane.Underlay
	var err error
	if devs != nil {
		ul = devs.Underlay
	} else {
		ul, err = dataplane.OpenUnderlay(dataplane.UnderlayConfig{Port: uint16(c.DataPort), RemotePort: uint16(c.DataPort),
			UDPChecksum: true, GSO: true})
	}
	if err != nil {
		closeTUNs()
		return nil, fmt.Errorf("data plane: UDP %d: %w", c.DataPort, err)
	}
	h := &hooks{}
	e, err := dataplane.New(dataplane.Config{
		LocalRLOCs: xo.LocalRLOCs, Instances: tuns, Underlay: ul, Hooks: h, PETRs: c.PETRs,
		UnderlayMTU: c.UnderlayMTU, ITR: xo.ITR, ETR: xo.ETR, PITR: xo.PITR, PETR: cfg.PETR != nil,
		Sources: sourcePolicy(cfg), Stats: d.stats, Log: d.log, NoNonce: !c.DataNonce,
	})
	if err != nil {
		closeTUNs()
		ul.Close()
		return nil, err
	}
	u := &userspaceDP{engine: e, hooks: h}
	routes := append([]netip.Prefix{}, c.EIDRoutes...)
	if cfg.PITR != nil {
		routes = append(routes, cfg.PITR.EIDPrefixes...)
	}
	for iid := range iids {
		if devs != nil {
			break // the devices are not the kernel's: nothing to route
		}
		tc := osnet.TUNConfig{Name: tunName(c.TUN, iid), MTU: mtu}
		if iid == 0 {
			tc.Addrs, tc.Routes = c.TUNAddresses, routes
		}
		r, err := osnet.Configure(tc)
		if err == nil {
			u.routes = append(u.routes, r)
			if v, ok := vrfs[iid]; ok {
				// The instance's TUN and EID interfaces share the VRF's
				// table, so its prefixes may overlap other instances'.
				var local []netip.Prefix
				for _, e := range xo.Database {
					if e.EID.IID == iid {
						local = append(local, e.EID.Prefix)
					}
				}
				var vrf *osnet.VRF
				vrf, err = osnet.EnsureVRF(v.Name, v.Table, tc.Name, v.Interfaces, local, v.EIDRoutes)
				if vrf != nil {
					u.vrfs = append(u.vrfs, vrf)
				}
			}
		}
		if err != nil {
			u.close()
			return nil, err
		}
	}
	if err := d.startKernelPath(u, cfg, xo, ul, iids, devs != nil); err != nil {
		u.close()
		return nil, err
	}
	if cfg.PETR != nil && len(cfg.PETR.AllowedSourceEIDs) == 0 {
		d.log.Warn("the PETR relays nothing: petr.allowed-source-eids lists no EID prefix")
	}
	d.log.Info("data plane up", "path", u.path(), "tun", c.TUN, "mtu", mtu, "instances", len(tuns), "rlocs", xo.LocalRLOCs,
		"eid-routes", routes)
	return u, nil
}

// Names of the data path in use (show dataplane, the start-up log line).
const (
	pathKernel    = "kernel+userspace"
	pathUserspace = "userspace"
)

func (u *userspaceDP) path() string {
	if u.kernel != nil {
		return pathKernel
	}
	return pathUserspace
}

// startKernelPath puts the kernel path in front of the engine when
// xtr.data-plane is auto or kernel. auto goes on without it, saying why;
// kernel fails.
func (d *Daemon) startKernelPath(u *userspaceDP, cfg *config.Config, xo *xtr.Options, ul dataplane.Underlay,
	iids map[uint32]bool, testDevices bool) error {
	c := cfg.XTR
	u.mode = c.DataPlane
	if c.DataPlane != config.DataPlaneAuto && c.DataPlane != config.DataPlaneKernel {
		u.kernelWhy = "xtr.data-plane: " + c.DataPlane
		return nil
	}
	fail := func(err error) error {
		if c.DataPlane == config.DataPlaneKernel {
			return fmt.Errorf("data plane: %w", err)
		}
		u.kernelWhy = err.Error()
		d.log.Warn("kernel data path not used; packets take the userspace path", "reason", u.kernelWhy)
		return nil
	}
	if testDevices {
		return fail(errors.New("kernel data path: the data plane runs on test devices"))
	}
	kc := kernel.Config{Engine: u.engine, LocalRLOCs: xo.LocalRLOCs, TUNs: map[uint32]string{},
		VRFInterfaces: map[string]uint32{}, ITR: xo.ITR || xo.PITR, ETR: xo.ETR, DataPort: uint16(c.DataPort),
		NoNonce: !c.DataNonce, EIDInterfaces: c.EIDInterfaces, Hooks: u.hooks, Stats: d.stats, Log: d.log}
	for iid := range iids {
		kc.TUNs[iid] = tunName(c.TUN, iid)
		kc.Skip = append(kc.Skip, kc.TUNs[iid])
	}
	for _, v := range c.VRFs {
		for _, ifname := range v.Interfaces {
			kc.VRFInterfaces[ifname] = v.InstanceID
		}
	}
	sp := sourcePolicy(cfg)
	kc.PuntInstances = checkedInstances(sp)
	kc.PETR, kc.PETRSources = cfg.PETR != nil, sp.PETRSources
	if lu, ok := ul.(*dataplane.LinuxUnderlay); ok {
		kc.SourcePorts = lu.SourcePorts()
	}
	k, err := kernel.Open(kc)
	if err != nil {
		return fail(err)
	}
	u.kernel = k
	var ifs []string
	for _, a := range k.Attachments() {
		ifs = append(ifs, a.Interface)
	}
	d.log.Info("kernel data path attached", "program", kernel.ProgramName, "interfaces", ifs)
	return nil
}

// view is show dataplane.
func (u *userspaceDP) view() adminapi.DataPlane {
	st := u.engine.Stats()
	v := adminapi.DataPlane{Path: u.path(), Mode: u.mode, KernelReason: u.kernelWhy, Programs: []adminapi.DataPlaneProgram{},
		Userspace: adminapi.DataPlaneUserspaceCount{EncapsulatedPackets: st.EncapsulatedPackets,
			DecapsulatedPackets: st.DecapsulatedPackets, CacheMisses: st.CacheMisses, MissQueued: st.MissQueued,
			MissReleased: st.MissReleased, MapCacheEntries: st.MapCacheEntries}}
	if u.kernel == nil {
		return v
	}
	for _, a := range u.kernel.Attachments() {
		v.Programs = append(v.Programs, adminapi.DataPlaneProgram{Interface: a.Interface, Ifindex: a.Ifindex,
			Hook: a.Hook, Program: kernel.ProgramName, ProgramID: a.ProgramID, LinkID: a.LinkID})
	}
	c := u.kernel.Counts()
	v.Kernel = &adminapi.DataPlaneKernelCount{EncapsulatedPackets: c.EncapsulatedPackets, EncapsulatedBytes: c.EncapsulatedBytes,
		EncapsulatedInPlace: c.EncapsulatedInPlace,
		DecapsulatedPackets: c.DecapsulatedPackets, DecapsulatedBytes: c.DecapsulatedBytes, PETREncapsulated: c.PETREncapsulated,
		PETRDecapsulated: c.PETRDecapsulated, EventsLost: c.EventsLost, Punted: c.Punted, Dropped: c.Dropped,
		MapCacheEntries: c.MapCacheEntries, MapUpdates: c.MapUpdates, MapUpdateP50Seconds: c.MapUpdateP50.Seconds(),
		MapUpdateP99Seconds: c.MapUpdateP99.Seconds(), MapUpdateMaxSeconds: c.MapUpdateMax.Seconds()}
	return v
}
