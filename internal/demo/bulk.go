package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
)

// The bulk-migration network: a mass migration (host maintenance, an
// evacuation) moves every VM of DC1 to DC2 within a second.
//
//	c1 ── xc ──┐
//	           core ── dc1 ── sw1 ──┐
//	  ms ──────┘  └─── dc2 ── sw2 ──┤ hv: a bridge per hypervisor, its VMs' node
//	                                 └── vm0 … vmH-1, each holding VMs addresses
//
// Each node vmK stands for the VMs of one hypervisor: one address per VM
// on its eth0, all of 198.19.0.0/22 (across-subnet: DC2's own LAN is
// 198.19.8.0/22), behind a bridge of hv that joins it to sw1 or to sw2.
// Moving hypervisor K's VMs swaps that bridge's uplink, and the VMs then
// send a packet each, as VMs resuming after a live migration do.
const (
	bulkRange   = "198.19.0.0/22"
	bulkGateway = "198.19.0.1"
	bulkDC2LAN  = "198.19.8.1/22"
	bulkPort    = 9300 // the VMs' UDP sink
)

// BulkOptions shape a bulk-migration network and its run.
type BulkOptions struct {
	VMs         int // in all, spread over the hypervisors
	Hypervisors int
	Rate        int           // packets a second from c1 to each VM (default 100)
	Within      time.Duration // the hypervisors move one after another within it (default 1 s)
	Subscribe   bool          // the client's ITR subscribes (RFC 9437) rather than waiting for SMRs
	// DataPlane is the xTRs' xtr.data-plane (kernel, userspace, auto);
	// empty takes $LISPD_DATAPLANE, and without it lispd's default
	// (userspace).
	DataPlane string
	// Profile, when set, is a directory where the migration leaves CPU
	// profiles of every lispd (NODE.pprof), taken from the first move
	// for ProfileFor (default 4 s).
	Profile    string
	ProfileFor time.Duration
	Out        func(format string, a ...any)
}

// Bulk is a bulk-migration network, up.
type Bulk struct {
	Lab   *lab.Lab
	o     BulkOptions
	lispd string
	// dataPlane is the xtr.data-plane the xTRs run (userspace when not
	// set), as the bench reports it.
	dataPlane string
	procs     map[string]*lab.LispdProc
	vms       [][]netip.Addr // by hypervisor
}

// BulkResult is what a mass migration measured.
type BulkResult struct {
	VMs int
	// Switched is, per VM, the time from its hypervisor's move to the
	// first packet of c1's stream it received straight from DC2 (not
	// re-encapsulated by DC1): the client's ITR sends to the new site.
	// Reached is to the first packet it received at all after the move.
	// A VM never switched counts as the run's timeout.
	Switched, Reached []time.Duration
	Lost              []int // per VM, packets of the stream never received
	Sent, Received    int
	MapRegisters      uint64        // sent by DC2's xTR during the migration
	MapNotifies       uint64        // sent by the Map-Server during the migration (acks, moves, publications)
	MovedNotifies     uint64        // of which to DC1, saying hosts moved
	MapServerCPU      time.Duration // user+system time of the Map-Server's lispd during the migration
	// ITRMapNotifies are the Map-Notifies the client's ITR received during
	// the migration (publications, acknowledgements of its subscriptions)
	// and ITRSMRs the SMRs it received.
	ITRMapNotifies, ITRSMRs uint64
	Wall                    time.Duration // the migration's span, first move to last VM switched
	// BaselineLost is how many packets a second per VM the stream lost
	// before anything moved: what the machine loses, not the migration.
	BaselineLost float64
}

// Quantile returns the q-quantile (0..1) of ds.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

// LostPerVM is the mean number of packets lost per VM.
func (r *BulkResult) LostPerVM() float64 { return mean(r.Lost) }

// bulkTopology builds the network of o.
func bulkTopology(name string, o BulkOptions) (*lab.Topology, [][]netip.Addr) {
	b := lab.NewBuilder(name)
	node, via, link := b.Node, lab.Via, b.Link
	node("core", "router", true)
	node("ms", "ms", false, via("0.0.0.0/0", "198.18.1.1"))
	node("xc", "xtr", true, via("198.18.0.0/16", "198.18.2.1"))
	node("dc1", "xtr", true, via("198.18.0.0/16", "198.18.3.1"))
	node("dc2", "xtr", true, via("198.18.0.0/16", "198.18.4.1"))
	node("c1", "host", false, via("0.0.0.0/0", "198.51.100.1"))
	node("sw1", "switch", false)
	node("sw2", "switch", false)
	node("hv", "hypervisor", false)
	link("core", "to-ms", "ms", "eth0", "198.18.1.1/24", "198.18.1.2/24")
	link("core", "to-xc", "xc", "up0", "198.18.2.1/24", "198.18.2.2/24")
	link("core", "to-dc1", "dc1", "up0", "198.18.3.1/24", "198.18.3.2/24")
	link("core", "to-dc2", "dc2", "up0", "198.18.4.1/24", "198.18.4.2/24")
	link("xc", "eid0", "c1", "eth0", "198.51.100.1/24", "198.51.100.10/24")
	link("dc1", "lan0", "sw1", "dc1", bulkGateway+"/22", "")
	link("dc2", "lan0", "sw2", "dc2", bulkDC2LAN, "")
	vms := make([][]netip.Addr, o.Hypervisors)
	a := netip.MustParseAddr("198.19.1.0")
	sw1, sw2 := []string{"dc1"}, []string{"dc2"}
	var hvBridges []lab.Bridge
	for k := range o.Hypervisors {
		n := o.VMs / o.Hypervisors
		if k < o.VMs%o.Hypervisors {
			n++
		}
		var addrs []string
		for range n {
			a = a.Next()
			vms[k] = append(vms[k], a)
			addrs = append(addrs, a.String()+"/22")
		}
		vm := fmt.Sprintf("vm%d", k)
		node(vm, "host", false, via("0.0.0.0/0", bulkGateway))
		link(vm, "eth0", "hv", fmt.Sprintf("v%d", k), strings.Join(addrs, " "), "")
		link("hv", fmt.Sprintf("a%d", k), "sw1", fmt.Sprintf("h%d", k), "", "")
		link("hv", fmt.Sprintf("b%d", k), "sw2", fmt.Sprintf("h%d", k), "", "")
		sw1, sw2 = append(sw1, fmt.Sprintf("h%d", k)), append(sw2, fmt.Sprintf("h%d", k))
		hvBridges = append(hvBridges, lab.Bridge{Name: fmt.Sprintf("hb%d", k), Ports: []string{fmt.Sprintf("v%d", k), fmt.Sprintf("a%d", k)}})
	}
	t := b.T
	// Both gateways answer with one MAC, so a VM keeps its ARP entry.
	for i := range t.Links {
		if l := &t.Links[i]; (l.A == "dc1" || l.A == "dc2") && l.AName == "lan0" {
			l.AMAC = vMAC
		}
	}
	t.Node("sw1").Bridges = []lab.Bridge{{Name: "br0", Ports: sw1}}
	t.Node("sw2").Bridges = []lab.Bridge{{Name: "br0", Ports: sw2}}
	t.Node("hv").Bridges = hvBridges
	return t, vms
}

const bulkMS = `
control: {addresses: [198.18.1.2]}
map-server:
  sites:
    - name: client
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: client-key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1-key}]
      eid-prefixes: [{prefix: 198.19.0.0/22, accept-more-specifics: true}]
    - name: dc2
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc2-key}]
      eid-prefixes: [{prefix: 198.19.8.0/22}, {prefix: 198.19.0.0/22, accept-more-specifics: true}]
map-resolver: {}
`

// bulkConfig is a node's lispd configuration.
func bulkConfig(node string, o BulkOptions) string {
	common := `
  itr: true
  etr: true
  map-resolvers: [198.18.1.2]
  register-interval: 10s
  eid-routes: [0.0.0.0/1, 128.0.0.0/1]
`
	dc := func(key, prefix, rloc string) string {
		return "xtr:" + common + fmt.Sprintf(`  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: %s}]
  database:
    - {eid-prefix: %s, locators: [{address: %s}]}
  eid-interfaces: [lan0]
  dynamic-eids:
    - {name: vms, prefix: %s, interface: lan0, mode: across-subnet, timeout: 5m}
`, key, prefix, rloc, bulkRange)
	}
	switch node {
	case "ms":
		return bulkMS
	case "xc":
		return "xtr:" + common + fmt.Sprintf("  subscribe: %v\n", o.Subscribe) +
			`  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: client-key}]
  database:
    - {eid-prefix: 198.51.100.0/24, locators: [{address: 198.18.2.2}]}
`
	case "dc1":
		return dc("dc1-key", bulkRange, "198.18.3.2")
	case "dc2":
		return dc("dc2-key", "198.19.8.0/22", "198.18.4.2")
	}
	return ""
}

// UpBulk builds the bulk-migration network called name and starts lispd
// (the binary at lispd) on its LISP nodes. It removes a lab of that name
// left over first.
func UpBulk(ctx context.Context, name, lispd string, o BulkOptions) (*Bulk, error) {
	if o.Hypervisors <= 0 || o.VMs < o.Hypervisors || o.VMs > 1000 {
		return nil, fmt.Errorf("bulk: %d VMs on %d hypervisors (at most 1,000 VMs, at least one per hypervisor)", o.VMs, o.Hypervisors)
	}
	if o.Rate == 0 {
		o.Rate = 100
	}
	if o.Within == 0 {
		o.Within = time.Second
	}
	if o.Out == nil {
		o.Out = func(string, ...any) {}
	}
	_ = lab.DownByName(name)
	topo, vms := bulkTopology(name, o)
	l, err := lab.Up(ctx, topo)
	if err != nil {
		return nil, err
	}
	if o.DataPlane == "" {
		o.DataPlane = os.Getenv(lab.DataPlaneEnv)
	}
	b := &Bulk{Lab: l, o: o, lispd: lispd, procs: map[string]*lab.LispdProc{}, vms: vms, dataPlane: o.DataPlane}
	if b.dataPlane == "" {
		b.dataPlane = "userspace"
	}
	for _, node := range []string{"ms", "xc", "dc1", "dc2"} {
		path := filepath.Join(l.Dir(), node+".yaml")
		pprof := ""
		if o.Profile != "" {
			pprof = ", pprof: " + bulkPProf
		}
		cfg := fmt.Sprintf("admin: {socket: %s%s}\n%s", l.SocketPath(node), pprof,
			lab.WithDataPlane(bulkConfig(node, o), o.DataPlane))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return nil, errors.Join(err, l.Down())
		}
		p, err := l.StartLispd(node, path, lab.LispdOptions{Binary: lispd})
		if err != nil {
			return nil, errors.Join(err, l.Down())
		}
		b.procs[node] = p
		inheritAutogroupNice(p.PID)
	}
	ctx2, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, node := range []string{"ms", "xc", "dc1", "dc2"} {
		if err := b.procs[node].WaitReady(ctx2); err != nil {
			return nil, errors.Join(err, l.Down())
		}
	}
	for _, node := range []string{"xc", "dc1", "dc2"} {
		if err := b.procs[node].WaitRegistered(ctx2); err != nil {
			return nil, errors.Join(err, l.Down())
		}
	}
	return b, nil
}

// inheritAutogroupNice gives the process pid, which runs in a session
// (an autogroup) of its own, the nice value of ours: a bench run in a
// -20 autogroup (echo -20 > /proc/self/autogroup) must not leave its lispd processes
// at 0, below the rest of a shared machine's load.
func inheritAutogroupNice(pid int) {
	b, err := os.ReadFile("/proc/self/autogroup") // "/autogroup-123 nice -20"
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[1] != "nice" || f[2] == "0" {
		return
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/autogroup", pid), []byte(f[2]), 0o644)
}

// Down stops everything and removes the network.
func (b *Bulk) Down() error { return b.Lab.Down() }

// DataPlane names the xtr.data-plane the xTRs run.
func (b *Bulk) DataPlane() string { return b.dataPlane }

// LogProcs hands each lispd's log, and its data-plane, mobility and
// control counters, to a test's log.
func (b *Bulk) LogProcs(t interface{ Logf(string, ...any) }) {
	for _, node := range []string{"ms", "xc", "dc1", "dc2"} {
		if p := b.procs[node]; p != nil {
			t.Logf("%s: %s", node, p.LogTail(2000))
		}
		cs, _ := adminapi.Query(context.Background(), b.Lab.SocketPath(node), 2*time.Second, (*adminapi.Client).Statistics)
		for _, c := range cs {
			if c.Value != 0 && (c.Subsystem == "dataplane" || c.Subsystem == "mobility" || c.Subsystem == "control") {
				t.Logf("%s counter %s/%s%v = %d", node, c.Subsystem, c.Name, c.Labels, c.Value)
			}
		}
	}
}

// hello makes every VM of hypervisor k send one packet to c1, as a VM
// resuming after a migration does.
func (b *Bulk) hello(k int) error {
	return b.Lab.Do(fmt.Sprintf("vm%d", k), func() error {
		to := netip.MustParseAddrPort("198.51.100.10:9301")
		var errs []error
		for _, a := range b.vms[k] {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			_, err = c.WriteToUDPAddrPort([]byte("here"), to)
			errs = append(errs, err, c.Close())
		}
		return errors.Join(errs...)
	})
}

// counter sums a node's counters of subsystem/name.
func (b *Bulk) counter(node, subsystem, name string) uint64 {
	return sumCounter(b.Lab, node, subsystem, name)
}

// counterLabelled is a node's counter of subsystem/name whose label key
// is value.
func (b *Bulk) counterLabelled(node, subsystem, name, key, value string) uint64 {
	cs, err := adminapi.Query(context.Background(), b.Lab.SocketPath(node), 2*time.Second, (*adminapi.Client).Statistics)
	if err != nil {
		return 0
	}
	var v uint64
	for _, c := range cs {
		if c.Subsystem == subsystem && c.Name == name && c.Labels[key] == value {
			v += c.Value
		}
	}
	return v
}

// sumCounter sums the counters of subsystem/name of the lispd on node (0
// when it does not answer).
func sumCounter(l *lab.Lab, node, subsystem, name string) uint64 {
	cs, err := adminapi.Query(context.Background(), l.SocketPath(node), 2*time.Second, (*adminapi.Client).Statistics)
	if err != nil {
		return 0
	}
	var v uint64
	for _, c := range cs {
		if c.Subsystem == subsystem && c.Name == name {
			v += c.Value
		}
	}
	return v
}

// hostsOf says how many dynamic-EID hosts the xTR on node holds, by state
// and by what detected them.
func (b *Bulk) hostsOf(node string) string {
	rs, err := adminapi.Query(context.Background(), b.Lab.SocketPath(node), 2*time.Second, (*adminapi.Client).DynamicEIDs)
	if err != nil {
		return err.Error()
	}
	n := map[string]int{}
	for _, r := range rs {
		for _, h := range r.Hosts {
			n[h.State+" by "+h.DetectedBy]++
		}
	}
	return fmt.Sprintf("%s holds %v", node, n)
}

// registeredBy counts the VMs the Map-Server holds for site.
func (b *Bulk) registeredBy(site string) int {
	sites, err := adminapi.Query(context.Background(), b.Lab.SocketPath("ms"), 2*time.Second,
		func(c *adminapi.Client, ctx context.Context) ([]adminapi.Site, error) { return c.Sites(ctx, site) })
	if err != nil {
		return 0
	}
	n := 0
	for _, st := range sites {
		for _, r := range st.Registrations {
			if r.EIDPrefix.Bits() == 32 {
				n++
			}
		}
	}
	return n
}

// cpuTime reads the user+system time of a process from /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	k, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// vmSink receives c1's stream in one hypervisor's node and keeps, per
// VM, which packets came and when the first came after a given time.
type vmSink struct {
	conn      *ipv4.PacketConn
	first     int // VM index of its first address
	mu        sync.Mutex
	got       [][]bool // by VM, by sequence number
	since     []int64  // per VM: unix ns after which arrivals are looked at (its move)
	reached   []int64  // per VM: first arrival sent after since
	switched  []int64  // per VM: first arrival straight from the new site after since
	directTTL int      // the TTL of packets straight from the VM's site
}

// Migrate runs the mass migration: c1 streams to every VM; the VMs are
// found at DC1 first; then the hypervisors move to DC2 one after another
// within o.Within. It returns when every VM is reached straight from DC2
// or after timeout.
func (b *Bulk) Migrate(timeout time.Duration) (*BulkResult, error) {
	o := b.o
	nvm := 0
	for _, v := range b.vms {
		nvm += len(v)
	}
	maxSeq := o.Rate * int(30+timeout/time.Second)
	o.Out("data path of the xTRs: %s; c1 sends %d packets/s to each of %d VMs (%d a second), in sendmmsg batches from one socket",
		b.dataPlane, o.Rate, nvm, o.Rate*nvm)
	// Sinks, one per hypervisor node.
	sinks := make([]*vmSink, len(b.vms))
	first := 0
	for k := range b.vms {
		s := &vmSink{first: first, got: make([][]bool, len(b.vms[k])), since: make([]int64, len(b.vms[k])),
			reached: make([]int64, len(b.vms[k])), switched: make([]int64, len(b.vms[k]))}
		for i := range s.got {
			s.got[i] = make([]bool, maxSeq)
		}
		first += len(b.vms[k])
		err := b.Lab.Do(fmt.Sprintf("vm%d", k), func() error {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: bulkPort})
			if err != nil {
				return err
			}
			// Room for a few seconds of the stream: a busy machine must
			// not lose it in the sink.
			_ = c.SetReadBuffer(8 << 20)
			s.conn = ipv4.NewPacketConn(c)
			return s.conn.SetControlMessage(ipv4.FlagTTL, true)
		})
		if err != nil {
			for _, s := range sinks {
				if s != nil {
					s.conn.Close()
				}
			}
			return nil, err
		}
		sinks[k] = s
	}
	var wg sync.WaitGroup
	defer func() {
		for _, s := range sinks {
			s.conn.Close()
		}
		wg.Wait()
	}()
	for _, s := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.read(maxSeq)
		}()
	}

	// At home: every VM says hello from DC1 and is registered there,
	// before the stream starts (a loaded xTR would drop the hellos in it).
	for k := range b.vms {
		if err := b.hello(k); err != nil {
			return nil, err
		}
	}
	if err := waitFor(30*time.Second, func() bool { return b.registeredBy("dc1") == nvm }); err != nil {
		return nil, fmt.Errorf("bulk: %d of %d VMs registered by DC1 (%s)", b.registeredBy("dc1"), nvm, b.hostsOf("dc1"))
	}
	o.Out("all %d VMs registered by DC1", nvm)
	// The stream: every VM gets Rate packets a second, in rounds of one
	// packet each, sent from one socket in batches (sendmmsg): 500 VMs at
	// 100 packets/s is 50,000 packets a second, which one write a packet
	// would turn into the bottleneck of a 2-core machine.
	var out *net.UDPConn
	if err := b.Lab.Do("c1", func() (err error) {
		out, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("198.51.100.10")})
		return err
	}); err != nil {
		return nil, err
	}
	defer out.Close()
	_ = out.SetWriteBuffer(8 << 20)
	dsts := make([]netip.AddrPort, 0, nvm)
	for _, v := range b.vms {
		for _, a := range v {
			dsts = append(dsts, netip.AddrPortFrom(a, bulkPort))
		}
	}
	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		st := newStreamer(out, dsts)
		tick := time.NewTicker(time.Second / time.Duration(o.Rate))
		defer tick.Stop()
		for seq := 0; seq < maxSeq; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			st.round(seq)
			sent.Store(int64(seq + 1))
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()

	// Every VM reached, straight from DC1, before anything moves.
	seqNow := func() int { return int(sent.Load()) }
	start := seqNow()
	if err := waitFor(20*time.Second, func() bool {
		s0 := seqNow()
		for _, s := range sinks {
			s.mu.Lock()
			for vm := range s.got {
				if !slices.Contains(s.got[vm][start:s0], true) {
					s.mu.Unlock()
					return false
				}
			}
			s.mu.Unlock()
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("bulk: not every VM reached at home")
	}
	time.Sleep(time.Second)
	// What the stream loses with nothing moving (a loaded machine does).
	pre := seqNow()
	time.Sleep(1500 * time.Millisecond)
	baseline := 0
	for _, s := range sinks {
		s.mu.Lock()
		for vm := range s.got {
			for seq := pre; seq < pre+o.Rate; seq++ {
				if !s.got[vm][seq] {
					baseline++
				}
			}
		}
		s.mu.Unlock()
	}
	regs0 := b.counter("dc2", "etr", "map_registers_sent")
	notifies0 := b.counter("ms", "map_server", "notifies_sent")
	moved0 := b.counter("ms", "map_server", "moved_notifies_sent")
	itrNotifies0 := b.counterLabelled("xc", "control", "messages_received", "type", "map-notify")
	itrSMRs0 := b.counter("xc", "itr", "smrs_received")
	cpu0 := cpuTime(b.procs["ms"].PID)
	seqStart := max(seqNow()-o.Rate, 0)

	profiled := b.profile()
	defer func() { <-profiled }()
	// The migration: hypervisor k moves at k·Within/H.
	t0 := time.Now()
	moveAt := make([]time.Time, len(b.vms))
	for k := range b.vms {
		if d := time.Until(t0.Add(o.Within * time.Duration(k) / time.Duration(len(b.vms)))); d > 0 {
			time.Sleep(d)
		}
		if err := b.Lab.SetMaster("hv", fmt.Sprintf("a%d", k), ""); err != nil {
			return nil, err
		}
		if err := b.Lab.SetMaster("hv", fmt.Sprintf("b%d", k), fmt.Sprintf("hb%d", k)); err != nil {
			return nil, err
		}
		moveAt[k] = time.Now()
		s := sinks[k]
		s.mu.Lock()
		for vm := range s.since {
			s.since[vm] = moveAt[k].UnixNano()
		}
		s.mu.Unlock()
		if err := b.hello(k); err != nil {
			return nil, err
		}
	}
	o.Out("%d hypervisors (%d VMs) moved to DC2 in %v", len(b.vms), nvm, time.Since(t0).Round(time.Millisecond))
	allSwitched := func() bool {
		for _, s := range sinks {
			s.mu.Lock()
			done := !slices.Contains(s.switched, 0)
			s.mu.Unlock()
			if !done {
				return false
			}
		}
		return true
	}
	_ = waitFor(timeout, allSwitched)
	wall := time.Since(t0)
	// Name the VMs the client's ITR never switched (the first few), with
	// what it caches.
	named, unswitched := 0, 0
	for k, s := range sinks {
		s.mu.Lock()
		for vm, at := range s.switched {
			if at != 0 {
				continue
			}
			if unswitched++; named == 5 {
				continue
			}
			named++
			a := b.vms[k][vm]
			mc, _ := adminapi.Query(context.Background(), b.Lab.SocketPath("xc"), 2*time.Second,
				func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
					return c.MapCache(ctx, adminapi.MapCacheQuery{EID: netip.PrefixFrom(a, 32)})
				})
			var cached []string
			for _, e := range mc {
				for _, l := range e.Locators {
					cached = append(cached, e.EIDPrefix.String()+"→"+l.Address.String())
				}
			}
			o.Out("VM %s not switched to DC2: reached %v; the client's ITR caches %v", a, s.reached[vm] != 0, cached)
		}
		s.mu.Unlock()
	}
	if unswitched > named {
		o.Out("… %d VMs not switched in all", unswitched)
	}
	cpu := cpuTime(b.procs["ms"].PID) - cpu0
	regs := b.counter("dc2", "etr", "map_registers_sent") - regs0
	notifies := b.counter("ms", "map_server", "notifies_sent") - notifies0
	moved := b.counter("ms", "map_server", "moved_notifies_sent") - moved0
	itrNotifies := b.counterLabelled("xc", "control", "messages_received", "type", "map-notify") - itrNotifies0
	itrSMRs := b.counter("xc", "itr", "smrs_received") - itrSMRs0
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	time.Sleep(300 * time.Millisecond) // the last packets in flight
	seqEnd := seqNow()

	r := &BulkResult{VMs: nvm, MapRegisters: regs, MapNotifies: notifies, MovedNotifies: moved, MapServerCPU: cpu, Wall: wall,
		ITRMapNotifies: itrNotifies, ITRSMRs: itrSMRs,
		BaselineLost: float64(baseline) / float64(nvm)}
	for k, s := range sinks {
		s.mu.Lock()
		for vm := range s.got {
			sw, re := timeout, timeout
			if s.switched[vm] != 0 {
				sw = time.Duration(s.switched[vm] - moveAt[k].UnixNano())
			}
			if s.reached[vm] != 0 {
				re = time.Duration(s.reached[vm] - moveAt[k].UnixNano())
			}
			r.Switched, r.Reached = append(r.Switched, sw), append(r.Reached, re)
			lost := 0
			for seq := seqStart; seq < seqEnd; seq++ {
				r.Sent++
				if s.got[vm][seq] {
					r.Received++
				} else {
					lost++
				}
			}
			r.Lost = append(r.Lost, lost)
		}
		s.mu.Unlock()
	}
	return r, nil
}

// bulkPProf is where lispd serves /debug/pprof inside its namespace
// when BulkOptions.Profile is set.
const bulkPProf = "127.0.0.1:6060"

// profile takes CPU profiles of every lispd for o.ProfileFor into
// o.Profile, in the background; the channel closes when they are saved.
func (b *Bulk) profile() <-chan struct{} {
	done := make(chan struct{})
	if b.o.Profile == "" {
		close(done)
		return done
	}
	secs := max(1, int(b.o.ProfileFor/time.Second))
	if b.o.ProfileFor == 0 {
		secs = 4
	}
	var wg sync.WaitGroup
	for _, node := range []string{"ms", "xc", "dc1", "dc2"} {
		wg.Go(func() {
			file := filepath.Join(b.o.Profile, node+".pprof")
			if err := b.fetchPProf(node, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), file); err != nil {
				b.o.Out("profile of %s: %v", node, err)
			}
		})
	}
	// The sites' execution traces show what a detection waits for.
	for _, node := range []string{"dc1", "dc2"} {
		wg.Go(func() {
			file := filepath.Join(b.o.Profile, node+".trace")
			if err := b.fetchPProf(node, fmt.Sprintf("/debug/pprof/trace?seconds=%d", secs), file); err != nil {
				b.o.Out("trace of %s: %v", node, err)
			}
		})
	}
	go func() {
		wg.Wait()
		b.o.Out("CPU profiles of the migration in %s/{ms,xc,dc1,dc2}.pprof, execution traces in {dc1,dc2}.trace", b.o.Profile)
		close(done)
	}()
	time.Sleep(50 * time.Millisecond) // the profiles start before the moves
	return done
}

// fetchPProf GETs path from node's pprof listener into file.
func (b *Bulk) fetchPProf(node, path, file string) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = b.Lab.Do(node, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get("http://" + bulkPProf + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// streamBatch is how many packets one sendmmsg carries.
const streamBatch = 128

// streamer sends one round of c1's stream: a packet to every VM, in
// sendmmsg batches from one socket, the buffers built once.
type streamer struct {
	pc   *ipv4.PacketConn
	msgs []ipv4.Message
}

func newStreamer(c *net.UDPConn, dsts []netip.AddrPort) *streamer {
	st := &streamer{pc: ipv4.NewPacketConn(c), msgs: make([]ipv4.Message, len(dsts))}
	for i, d := range dsts {
		pkt := make([]byte, 14)
		binary.BigEndian.PutUint16(pkt, uint16(i))
		st.msgs[i] = ipv4.Message{Buffers: [][]byte{pkt}, Addr: net.UDPAddrFromAddrPort(d)}
	}
	return st
}

// round sends packet seq to every VM. A full socket buffer makes
// sendmmsg send part of a batch: the rest is sent again, not lost here.
func (st *streamer) round(seq int) {
	now := uint64(time.Now().UnixNano())
	for i := range st.msgs {
		pkt := st.msgs[i].Buffers[0]
		binary.BigEndian.PutUint32(pkt[2:], uint32(seq))
		binary.BigEndian.PutUint64(pkt[6:], now)
	}
	for ms := st.msgs; len(ms) > 0; {
		n, err := st.pc.WriteBatch(ms[:min(len(ms), streamBatch)], 0)
		if err != nil && n <= 0 {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n = 1 // a packet the kernel refused (ENOBUFS): counted lost
		}
		ms = ms[n:]
	}
}

// read receives c1's stream in batches (recvmmsg) until the socket is
// closed, keeping per VM which packets came and when.
func (s *vmSink) read(maxSeq int) {
	ms := make([]ipv4.Message, 64)
	for i := range ms {
		ms[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 64)}, OOB: ipv4.NewControlMessage(ipv4.FlagTTL)}
	}
	var cm ipv4.ControlMessage
	for {
		n, err := s.conn.ReadBatch(ms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := time.Now().UnixNano()
		s.mu.Lock()
		for _, m := range ms[:n] {
			buf := m.Buffers[0][:m.N]
			cm = ipv4.ControlMessage{}
			if len(buf) < 14 || cm.Parse(m.OOB[:m.NN]) != nil || cm.TTL == 0 {
				continue
			}
			vm := int(binary.BigEndian.Uint16(buf)) - s.first
			seq := int(binary.BigEndian.Uint32(buf[2:]))
			sent := int64(binary.BigEndian.Uint64(buf[6:]))
			if vm < 0 || vm >= len(s.got) || seq >= maxSeq {
				continue
			}
			s.got[vm][seq] = true
			if s.directTTL == 0 {
				// Before the moves every packet comes straight from DC1:
				// that TTL is the direct path's (DC2's is as long; DC1
				// re-encapsulating to DC2 costs one more hop).
				s.directTTL = cm.TTL
			}
			if since := s.since[vm]; since != 0 && sent >= since {
				if s.reached[vm] == 0 {
					s.reached[vm] = now
				}
				if s.switched[vm] == 0 && cm.TTL == s.directTTL {
					s.switched[vm] = now
				}
			}
		}
		s.mu.Unlock()
	}
}
