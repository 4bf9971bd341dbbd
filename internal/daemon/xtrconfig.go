package daemon

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

// xtrOptions turns the xtr (and pitr) sections into the control plane's
// options. A locator given by interface takes that interface's first
// global address at start-up.
func xtrOptions(cfg *config.Config) (xtr.Options, error) {
	var o xtr.Options
	c := cfg.XTR
	if c == nil {
		c = &config.XTR{ITR: true}
		o.PITR = true
	}
	o.ITR, o.ETR = c.ITR, c.ETR
	if cfg.PITR != nil {
		o.ITR, o.PITR = true, true
	}
	o.MapResolvers = c.MapResolvers
	o.PETRs = c.PETRs
	o.SourceFor = sourceFor
	o.RegisterInterval = c.RegisterInterval
	o.NATTraversal, o.InfoInterval = c.NATTraversal.Enabled, c.NATTraversal.InfoInterval
	o.ControlPort = cfg.Control.Port
	o.ProbeInterval = c.RLOCProbing.Interval
	o.MaxCacheEntries = c.MapCache.MaxEntries
	o.Subscribe = c.Subscribe
	o.SiteID = c.SiteID
	o.LISPSEC = map[string]xtr.SecMode{config.LISPSECOptional: xtr.SecOptional, config.LISPSECRequired: xtr.SecRequired}[c.LISPSEC]
	o.LISPSECKey = lispsec.Key{ID: c.LISPSECKey.ID, Secret: c.LISPSECKey.Secret}
	o.XTRID = c.XTRID
	if !c.HasXTRID {
		// No configured xTR-ID: a random one per start. The Map-Register
		// nonce starts at the clock, so a restart still increases it.
		_, _ = rand.Read(o.XTRID[:])
	}
	for _, d := range c.DynamicEIDs {
		o.HostRanges = append(o.HostRanges, xtr.HostRange{EID: mapping.NewEID(d.InstanceID, d.Prefix), MaxHosts: d.MaxHosts})
	}
	for _, p := range c.MapServers {
		o.MapServers = append(o.MapServers, xtr.MapServerPeer{Addr: p.Address, KeyID: p.KeyID, Alg: p.Algorithm,
			Secret: p.Secret, ProxyReply: p.ProxyReply, WantMapNotify: p.WantMapNotify})
	}
	seen := map[netip.Addr]bool{}
	addLocal := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			o.LocalRLOCs = append(o.LocalRLOCs, a)
		}
	}
	for _, e := range c.Database {
		de := xtr.DatabaseEntry{EID: mapping.NewEID(e.InstanceID, e.Prefix)}
		for _, l := range e.Locators {
			addr := l.Address
			if l.Interface != "" {
				a, err := interfaceAddr(l.Interface)
				if err != nil {
					return o, err
				}
				addr = a
			}
			de.Locators = append(de.Locators, mapping.Locator{Addr: addr, Priority: l.Priority, Weight: l.Weight,
				MPriority: l.MPriority, MWeight: l.MWeight})
		}
		o.Database = append(o.Database, de)
	}
	// Our own RLOCs are the database locators that are addresses of this
	// host; an ITR without a database uses the addresses of its routes to
	// the Map-Resolvers.
	for _, e := range o.Database {
		for _, l := range e.Locators {
			if isLocal(l.Addr) {
				addLocal(l.Addr)
			}
		}
	}
	// Only an xTR with no local database locator (a PITR, a pure ITR)
	// takes its RLOCs from the routes to its Map-Resolvers and PETRs;
	// otherwise answers could be sent to an address nobody listens on.
	if len(o.LocalRLOCs) == 0 {
		for _, mr := range append(append([]netip.Addr{}, c.MapResolvers...), c.PETRs...) {
			if a, ok := sourceFor(mr); ok {
				addLocal(a)
			}
		}
	}
	if len(o.LocalRLOCs) == 0 && (o.ITR || o.ETR) {
		return o, fmt.Errorf("xtr: no local RLOC: no database locator is an address of this host and no Map-Resolver is reachable")
	}
	return o, nil
}

func interfaceAddr(name string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("locator interface %s: %w", name, err)
	}
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr().Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("locator interface %s has no usable address", name)
}

func isLocal(a netip.Addr) bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// sourceFor asks the kernel which source address it would use towards dst.
func sourceFor(dst netip.Addr) (netip.Addr, bool) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, wire.ControlPort)))
	if err != nil {
		return netip.Addr{}, false
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), true
}
