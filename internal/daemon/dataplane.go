package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/osnet"
	"github.com/lispd/lispd/internal/xtr"
)

// programmer adapts the userspace engine to what the xTR control plane
// programs; another data plane (in the kernel) would slot in here.
type programmer struct{ e *dataplane.Engine }

func (p programmer) SetMapCache(c xtr.CacheEntry) {
	ce := dataplane.CacheEntry{EID: c.EID, Negative: c.Negative, Action: c.Action, Expires: c.Expires}
	for _, l := range c.Locators {
		ce.Locators = append(ce.Locators, dataplane.Locator{Addr: l.Addr, Priority: l.Priority, Weight: l.Weight, Up: l.Up})
	}
	p.e.SetMapCache(ce)
}
func (p programmer) DeleteMapCache(eid mapping.EID) { p.e.DeleteMapCache(eid) }
func (p programmer) FlushMapCache()                 { p.e.FlushMapCache(dataplane.AllInstances) }
func (p programmer) SetLocatorUp(eid mapping.EID, rloc netip.Addr, up bool) {
	p.e.SetLocatorUp(eid, rloc, up)
}
func (p programmer) SetLocalEIDs(eids []mapping.EID) { p.e.SetLocalEIDs(eids) }

// hooks forwards data-plane events to the xTR, which is built after the
// engine (each needs the other).
type hooks struct {
	x atomic.Pointer[xtr.Server]
	m atomic.Pointer[dynamiceid.Manager]
}

func (h *hooks) HostSeen(iid uint32, src netip.Addr) {
	if m := h.m.Load(); m != nil {
		m.Detected(iid, src, "data", "")
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
func (h *hooks) Decapsulated(src netip.Addr, iid uint32, inner netip.Addr) {
	if x := h.x.Load(); x != nil {
		x.Decapsulated(src, iid, inner)
	}
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

// userspaceDP is a running data plane and the kernel state made for it.
type userspaceDP struct {
	engine *dataplane.Engine
	hooks  *hooks
	routes []*osnet.Configured
	vrfs   []*osnet.VRF
}

func (u *userspaceDP) close() error {
	var errs []error
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
	if cfg.PETR != nil && len(cfg.PETR.AllowedSourceEIDs) == 0 {
		d.log.Warn("the PETR relays nothing: petr.allowed-source-eids lists no EID prefix")
	}
	d.log.Info("data plane up", "tun", c.TUN, "mtu", mtu, "instances", len(tuns), "rlocs", xo.LocalRLOCs,
		"eid-routes", routes)
	return u, nil
}
