//go:build linux

// Package kernel is the kernel data path of an xTR: LISP encapsulation and
// decapsulation in an eBPF program (bpf/lisp.c) attached with tcx on the
// ingress of the host's Ethernet interfaces, beside the userspace engine
// (package dataplane), which keeps every case the program hands up:
// misses (the packet goes on to the TUN route, the engine queues it and
// asks), negative entries other than drops, packets too big, fragments,
// IP options, expired TTLs, hosts that moved away, instances with source
// checks, PETR traffic.
//
// The control plane programs it through the same calls as the engine
// (SetMapCache … SetAwayEIDs); the daemon hands each call to both. Map
// updates are single bpf(2) calls: an LPM trie element is replaced
// atomically, so the program sees the old entry or the new one.
//
// Nothing is pinned: the links and maps live as long as lispd's file
// descriptors, so a crash (SIGKILL) leaves nothing behind; Open still
// detaches any tcx link of a program named lispd_ingress it finds on an
// interface (from a lispd that hung, or one stopped under a debugger) so
// that two programs never run at once.
package kernel

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
)

// ProgramName is the name of the tc program in the kernel (bpftool prog,
// and how stale links are recognized).
const ProgramName = "lispd_ingress"

// Hooks is what the program tells the control plane: the outer sources of
// decapsulated traffic, sampled (dataplane.ControlHooks.Decapsulated).
type Hooks interface {
	Decapsulated(outerSrc netip.Addr, iid uint32, innerSrc netip.Addr)
}

// Config sets up the kernel path.
type Config struct {
	// Engine is the userspace engine beside it: the kernel path takes its
	// flow-hash seed, outer sources and locator compilation from it.
	Engine *dataplane.Engine
	// LocalRLOCs are the addresses the ETR decapsulates for.
	LocalRLOCs []netip.Addr
	// TUNs names the TUN of each instance ID: decapsulated packets are
	// routed as if they came out of it (its VRF, its policy rules).
	TUNs map[uint32]string
	// VRFInterfaces maps an EID-side interface of an instance's VRF
	// (xtr.vrfs[].interfaces) to that instance ID; every other interface
	// is instance 0.
	VRFInterfaces map[string]uint32
	// EIDInterfaces, when set, are the interfaces (with VRFInterfaces')
	// whose packets the ITR looks up; without, every interface's. The
	// program is attached everywhere (the ETR takes LISP packets on any).
	EIDInterfaces []string
	// Skip names interfaces never to attach to.
	Skip []string
	// Clsact attaches with a clsact qdisc's bpf filter, as on kernels
	// without tcx (before 6.6), where tcx works too: how tests run the
	// fallback.
	Clsact bool

	// ITR and ETR are the roles the program plays. Natively-forward
	// entries are encapsulated to the engine's PETRs
	// (dataplane.Engine.PETRChoices) whatever the roles.
	ITR, ETR bool
	// PETR decapsulates packets for non-LISP hosts from the inner
	// sources PETRSources lists, per instance (petr.allowed-source-eids).
	PETR          bool
	PETRSources   map[uint32][]netip.Prefix
	DataPort      uint16
	NoNonce       bool
	KeepInnerDSCP bool
	SourcePorts   dataplane.SourcePorts
	// PuntInstances are instance IDs whose decapsulated packets the
	// userspace engine must see (source-RLOC checks).
	PuntInstances []uint32
	// DecapSampleInterval is the least time between two Decapsulated
	// events per outer source (default 1 s).
	DecapSampleInterval time.Duration

	Hooks Hooks
	Stats *stats.Registry
	Log   *slog.Logger
}

// Attachment is one attached program.
type Attachment struct {
	Interface string
	Ifindex   int
	Hook      string // HookTCX or HookClsact
	ProgramID uint32
	LinkID    uint32 // tcx only
}

// Path is the running kernel data path.
type Path struct {
	cfg   Config
	log   *slog.Logger
	objs  lispObjects
	links []link.Link
	tc    []*tcFilter // the clsact fallback's filters
	att   []Attachment
	rb    *ringbuf.Reader
	k     *counters
	lat   *latencies

	mu       sync.Mutex        // serializes the programming calls
	tunIndex map[uint32]uint32 // instance → its TUN's ifindex
	entries  map[mapping.EID]dataplane.CacheEntry
	local    []mapping.EID
	ranges   []mapping.EID // dynamic-EID ranges: unseen hosts are the engine's
	away     []mapping.EID
	eidKeys  map[lispEidKey]uint8 // what lisp_local_eids holds
	dynKeys  map[lispEidKey]uint8 // what lisp_dynamic_eids holds
	petrKeys map[lispEidKey]uint8 // what lisp_petr_sources holds

	genMu sync.Mutex // orders the generation's writes (flows.go)
	gen   uint64
	nl    *os.File // rtnetlink notifications

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// UnsupportedError says why this kernel cannot run the kernel path.
type UnsupportedError struct{ Err error }

func (e *UnsupportedError) Error() string { return "kernel data path unsupported: " + e.Err.Error() }
func (e *UnsupportedError) Unwrap() error { return e.Err }

// Open loads the program and its maps, fills the configuration, removes
// stale links and attaches to every Ethernet interface of the calling
// thread's network namespace. On error nothing stays loaded or attached.
func Open(cfg Config) (_ *Path, err error) {
	if cfg.Engine == nil {
		return nil, errors.New("kernel data path: no userspace engine")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Stats == nil {
		cfg.Stats = stats.NewRegistry()
	}
	if cfg.DecapSampleInterval == 0 {
		cfg.DecapSampleInterval = dataplane.DefaultDecapSampleInterval
	}
	if cfg.DataPort == 0 {
		cfg.DataPort = 4341
	}
	p := &Path{cfg: cfg, log: cfg.Log, entries: map[mapping.EID]dataplane.CacheEntry{},
		eidKeys: map[lispEidKey]uint8{}, dynKeys: map[lispEidKey]uint8{}, petrKeys: map[lispEidKey]uint8{}}
	_ = rlimit.RemoveMemlock() // kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK
	if err := loadLispObjects(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, &UnsupportedError{fmt.Errorf("verifier: %w", err)}
		}
		return nil, &UnsupportedError{err}
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	p.k = newCounters(cfg.Stats, p.objs.LispCounters)
	p.lat = newLatencies(cfg.Stats)
	if err := p.configure(); err != nil {
		return nil, err
	}
	if p.rb, err = ringbuf.NewReader(p.objs.LispEvents); err != nil {
		return nil, fmt.Errorf("kernel data path: events: %w", err)
	}
	p.wg.Go(p.readEvents)
	if err := p.openWatch(); err != nil {
		return nil, err
	}
	if err := p.attachAll(); err != nil {
		return nil, err
	}
	p.bump() // the interfaces are written
	return p, nil
}

// configure writes the global configuration, the instances and the local
// RLOCs.
func (p *Path) configure() error {
	c := p.cfg
	e := c.Engine
	var conf lispConfig
	conf.Seed = e.FlowSeed()
	conf.SampleNs = uint64(c.DecapSampleInterval)
	s4, s6 := e.OuterSourceAddrs()
	if s4.IsValid() {
		conf.Src4 = s4.As4()
		conf.RlocIfindex4 = uint32(ifindexOf(s4))
	}
	if s6.IsValid() {
		conf.Src6 = s6.As16()
		conf.RlocIfindex6 = uint32(ifindexOf(s6))
	}
	if s4.IsValid() && conf.RlocIfindex4 == 0 || s6.IsValid() && conf.RlocIfindex6 == 0 {
		p.log.Warn("kernel data path: an outer source is on no interface; that family's encapsulation stays in userspace",
			"ipv4", s4, "ipv6", s6)
	}
	conf.DataPort = c.DataPort
	conf.PortBase, conf.PortMod = c.SourcePorts.Base, c.SourcePorts.N
	conf.Nonce = b2u(!c.NoNonce)
	conf.KeepDscp = b2u(c.KeepInnerDSCP)
	conf.Itr = b2u(c.ITR)
	conf.Etr = b2u(c.ETR)
	conf.Petr = b2u(c.PETR)
	if err := p.objs.LispConfig.Update(uint32(0), &conf, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("kernel data path: config: %w", err)
	}
	p.bump()
	p.tunIndex = map[uint32]uint32{}
	for iid, name := range c.TUNs {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("kernel data path: TUN of instance %d: %w", iid, err)
		}
		p.tunIndex[iid] = uint32(ifi.Index)
	}
	if err := p.SetPuntInstances(c.PuntInstances); err != nil {
		return err
	}
	p.SetPETRSources(c.PETRSources)
	return p.SetLocalRLOCs(c.LocalRLOCs)
}

// SetPuntInstances replaces the instances whose decapsulated packets all
// go to the userspace engine (it checks their outer sources: source-RLOC
// checks, docs/security.md). A newly checked instance is punted before
// the call returns.
func (p *Path) SetPuntInstances(iids []uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for iid, ifindex := range p.tunIndex {
		inst := lispInstance{TunIfindex: ifindex, Punt: b2u(slices.Contains(iids, iid))}
		if err := p.objs.LispInstances.Update(iid, &inst, ebpf.UpdateAny); err != nil {
			p.log.Error("kernel data path: instance update failed", "iid", iid, "err", err)
			p.k.programErrors.Inc()
			return fmt.Errorf("kernel data path: instance %d: %w", iid, err)
		}
	}
	p.bump()
	return nil
}

// SetLocalRLOCs replaces the addresses the ETR decapsulates for.
func (p *Path) SetLocalRLOCs(rlocs []netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := map[[16]byte]bool{}
	for _, a := range rlocs {
		want[a.As16()] = true
	}
	var k [16]byte
	var v uint8
	var stale [][16]byte
	it := p.objs.LispLocalRlocs.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	for _, s := range stale {
		_ = p.objs.LispLocalRlocs.Delete(s)
	}
	for a := range want {
		if err := p.objs.LispLocalRlocs.Update(a, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("kernel data path: local RLOC: %w", err)
		}
	}
	p.bump()
	return nil
}

func ifindexOf(a netip.Addr) int {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0
	}
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok {
				if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == a {
					return ifi.Index
				}
			}
		}
	}
	return 0
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// attachAll attaches the program to the ingress of every Ethernet
// interface but the skipped ones and those enslaved to a VRF that is not
// an instance's, after removing stale links of an earlier lispd.
func (p *Path) attachAll() error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("kernel data path: interfaces: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		if a.EncapType != "ether" || l.Type() == "vrf" || l.Type() == "bridge" || slices.Contains(p.cfg.Skip, a.Name) {
			continue
		}
		// The instance of an interface is the configuration's (a kernel
		// without VRFs gets policy rules instead of a master device); an
		// interface enslaved to a VRF no instance names is not ours.
		iid, named := p.cfg.VRFInterfaces[a.Name]
		if !named && a.MasterIndex != 0 {
			if m, ok := linkByIndex(links, a.MasterIndex); ok && m.Type() == "vrf" {
				continue
			}
		}
		if err := p.removeStale(a.Index, a.Name); err != nil {
			return err
		}
		if err := p.removeStaleClsact(a.Index, a.Name); err != nil {
			return err
		}
		eidSide := len(p.cfg.EIDInterfaces) == 0 || named || slices.Contains(p.cfg.EIDInterfaces, a.Name)
		ifc := lispIface{Iid: iid, Itr: b2u(p.cfg.ITR && eidSide), TunIfindex: p.tunIndex[iid]}
		if err := p.objs.LispIfaces.Update(uint32(a.Index), &ifc, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("kernel data path: interface %s: %w", a.Name, err)
		}
		at, err := p.attach(a.Index, a.Name)
		if err != nil {
			return err
		}
		p.att = append(p.att, at)
	}
	if len(p.att) == 0 {
		return &UnsupportedError{errors.New("no Ethernet interface to attach to")}
	}
	return nil
}

// attach attaches the program to the ingress of an interface with tcx or,
// where the kernel has no tcx (or Config.Clsact says so), with a clsact
// qdisc's bpf filter.
func (p *Path) attach(ifindex int, name string) (Attachment, error) {
	at := Attachment{Interface: name, Ifindex: ifindex, Hook: HookTCX}
	if info, err := p.objs.LispdIngress.Info(); err == nil {
		if id, ok := info.ID(); ok {
			at.ProgramID = uint32(id)
		}
	}
	if !p.cfg.Clsact {
		lk, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: p.objs.LispdIngress, Attach: ebpf.AttachTCXIngress})
		if err == nil {
			p.links = append(p.links, lk)
			if info, err := lk.Info(); err == nil {
				at.ProgramID, at.LinkID = uint32(info.Program), uint32(info.ID)
			}
			return at, nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return at, &UnsupportedError{fmt.Errorf("tcx attach to %s: %w", name, err)}
		}
		p.log.Info("kernel data path: no tcx in this kernel; attaching with clsact", "interface", name, "err", err)
	}
	tf, err := p.attachClsact(ifindex, name)
	if err != nil {
		return at, &UnsupportedError{err}
	}
	p.tc = append(p.tc, tf)
	at.Hook = HookClsact
	return at, nil
}

func linkByIndex(links []netlink.Link, idx int) (netlink.Link, bool) {
	for _, l := range links {
		if l.Attrs().Index == idx {
			return l, true
		}
	}
	return nil, false
}

// removeStale detaches every tcx ingress link of a program named
// ProgramName on the interface.
func (p *Path) removeStale(ifindex int, name string) error {
	res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: ebpf.AttachTCXIngress})
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL) {
		return nil // no tcx in this kernel: no stale tcx link either
	}
	if err != nil {
		return &UnsupportedError{fmt.Errorf("tcx query on %s: %w", name, err)}
	}
	for _, ap := range res.Programs {
		prog, err := ebpf.NewProgramFromID(ap.ID)
		if err != nil {
			continue
		}
		info, err := prog.Info()
		prog.Close()
		if err != nil || info.Name != ProgramName {
			continue
		}
		id, ok := ap.LinkID()
		if !ok {
			continue
		}
		l, err := link.NewFromID(id)
		if err != nil {
			continue
		}
		err = l.Detach()
		l.Close()
		if err != nil {
			return fmt.Errorf("kernel data path: detaching a stale link on %s: %w", name, err)
		}
		p.log.Warn("kernel data path: removed a stale link", "interface", name, "link-id", id)
	}
	return nil
}

// Attachments lists where the program is attached.
func (p *Path) Attachments() []Attachment { return slices.Clone(p.att) }

// Close detaches the program, stops the event reader and frees the maps.
func (p *Path) Close() error {
	var errs []error
	p.closeOnce.Do(func() {
		for _, l := range p.links {
			errs = append(errs, l.Close())
		}
		p.links = nil
		for _, tf := range p.tc {
			errs = append(errs, tf.detach())
		}
		p.tc = nil
		if p.rb != nil {
			errs = append(errs, p.rb.Close())
		}
		if p.nl != nil {
			errs = append(errs, p.nl.Close())
		}
		p.wg.Wait()
		errs = append(errs, p.objs.Close())
	})
	return errors.Join(errs...)
}
