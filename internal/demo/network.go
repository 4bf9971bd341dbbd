package demo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
)

// Network is the demo network, up, with lispd on its LISP nodes. The
// demo tells its story on it; the mobility benchmark and the end-to-end
// tests drive it too.
type Network struct {
	Lab    *lab.Lab
	lispd  string
	mob    Mobility
	procs  map[string]*lab.LispdProc
	d1At   string // the switch d1 hangs off: sw1 (DC1) or sw2 (DC2)
	d1Port string // the hypervisor's uplink to it
	// etcd lists the etcd members' client URLs on ClusterTopology (nil
	// on Topology); members are their processes, dead the Map-Server
	// nodes KillMS took down.
	etcd    []string
	members map[string]*lab.Proc
	dead    map[string]bool
}

// Up builds the network called name and starts lispd (the binary at
// lispd) on every LISP node, set up for mobility as m says. It removes a
// lab of that name left over first.
func Up(ctx context.Context, name, lispd string, m Mobility) (*Network, error) {
	return up(ctx, Topology(name), lispd, m)
}

// UpCluster is Up on ClusterTopology: the mapping system is three
// Map-Server/Map-Resolver nodes sharing their registrations through an
// etcd cluster of the real etcd server (lab.EtcdBinary finds it; without
// it UpCluster fails with lab.ErrNoEtcd), one member on each node;
// StartLispd starts the members first.
func UpCluster(ctx context.Context, name, lispd string, m Mobility) (*Network, error) {
	if _, err := lab.EtcdBinary(); err != nil {
		return nil, err
	}
	return up(ctx, ClusterTopology(name), lispd, m)
}

func up(ctx context.Context, topo *lab.Topology, lispd string, m Mobility) (*Network, error) {
	_ = lab.DownByName(topo.Name)
	l, err := lab.Up(ctx, topo)
	if err != nil {
		return nil, err
	}
	n := &Network{Lab: l, lispd: lispd, mob: m, procs: map[string]*lab.LispdProc{}, d1At: "sw1", d1Port: "to1",
		etcd: topo.EtcdEndpoints(), dead: map[string]bool{}}
	if err := l.WriteHosts(map[string]netip.Addr{"c1": netip.MustParseAddr(c1Addr), "d1": netip.MustParseAddr(d1Addr), "d2": netip.MustParseAddr(d2Addr), "nl": netip.MustParseAddr(nlAddr), "ms": netip.MustParseAddr(msAddr)}); err != nil {
		return nil, errors.Join(err, l.Down())
	}
	return n, nil
}

// StartLispd starts lispd on every LISP node and waits for their admin
// sockets; on ClusterTopology, the etcd members first.
func (n *Network) StartLispd() error {
	if len(n.etcd) > 0 && n.members == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		members, err := n.Lab.StartEtcd(ctx, "")
		cancel()
		if err != nil {
			return err
		}
		n.members = members
	}
	for _, node := range n.lispNodes() {
		if err := n.startLispd(node); err != nil {
			return err
		}
	}
	return nil
}

// WaitRegistered waits until every ETR has its Map-Notify: before, a
// Map-Request for a site's EID gets a negative answer that sticks.
func (n *Network) WaitRegistered(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for _, x := range []string{"xc", "dc1a", "dc1b", "dc2"} {
		if err := n.procs[x].WaitRegistered(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Down stops everything and removes the network.
func (n *Network) Down() error { return n.Lab.Down() }

func (n *Network) startLispd(node string) error {
	path := filepath.Join(n.Lab.Dir(), node+".yaml")
	// LISPD_DATAPLANE chooses the xTRs' data path, as for every suite.
	cfg := fmt.Sprintf("admin: {socket: %s}\n%s", n.Lab.SocketPath(node),
		lab.WithDataPlane(config(node, n.mob, n.etcd), os.Getenv(lab.DataPlaneEnv)))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	p, err := n.Lab.StartLispd(node, path, lab.LispdOptions{Binary: n.lispd})
	if err != nil {
		return err
	}
	n.procs[node] = p
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.WaitReady(ctx)
}

// Reconfigure restarts the lispd of the nodes whose configuration m
// changes: the data-centre xTRs for a new mode, the client's xTR for
// publish/subscribe.
func (n *Network) Reconfigure(m Mobility) error {
	old := n.mob
	n.mob = m
	for _, node := range n.lispNodes() {
		if config(node, old, n.etcd) == config(node, m, n.etcd) || n.dead[node] {
			continue
		}
		if p := n.procs[node]; p != nil {
			if err := p.Stop(); err != nil {
				return err
			}
		}
		if err := n.startLispd(node); err != nil {
			return err
		}
	}
	return n.WaitRegistered(15 * time.Second)
}

// lispNodes are the nodes that run lispd, in start order.
func (n *Network) lispNodes() []string {
	if len(n.etcd) > 0 {
		return clusterLispNodes
	}
	return lispNodes
}

// MapServer is the node whose Map-Server the story asks: ms, or on
// ClusterTopology the first node KillMS left alive (each node answers for
// the whole cluster).
func (n *Network) MapServer() string {
	if len(n.etcd) == 0 {
		return "ms"
	}
	for _, ms := range ClusterNodes {
		if !n.dead[ms] {
			return ms
		}
	}
	return ClusterNodes[0]
}

// KillMS takes a Map-Server node of ClusterTopology down as a crash
// would: its lispd and etcd member are killed (SIGKILL: no lease revoked,
// no goodbye) and its link to the core goes down, which withdraws its
// route to the anycast Map-Resolver address.
func (n *Network) KillMS(node string) error {
	if !slices.Contains(ClusterNodes, node) || len(n.etcd) == 0 {
		return fmt.Errorf("kill %s: not a Map-Server node of the cluster", node)
	}
	n.dead[node] = true
	procs := []*lab.Proc{n.members[node]}
	if p := n.procs[node]; p != nil {
		procs = append(procs, p.Proc)
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("kill %s: %w", node, err)
		}
		_ = p.Wait()
	}
	return n.Lab.SetLink("core", node, false)
}

// query calls f on the admin API of a node's lispd, giving it two seconds.
func query[T any](n *Network, node string, f func(*adminapi.Client, context.Context) (T, error)) (T, error) {
	return adminapi.Query(context.Background(), n.Lab.SocketPath(node), 2*time.Second, f)
}

// Counters returns a node's non-zero counters as "subsystem/name{labels}"
// → value, for diagnosis.
func (n *Network) Counters(node string) map[string]uint64 {
	out := map[string]uint64{}
	cs, err := query(n, node, (*adminapi.Client).Statistics)
	if err != nil {
		return out
	}
	for _, c := range cs {
		if c.Value == 0 {
			continue
		}
		k := c.Subsystem + "/" + c.Name
		for lk, lv := range c.Labels {
			k += "{" + lk + "=" + lv + "}"
		}
		out[k] = c.Value
	}
	return out
}

func waitFor(limit time.Duration, f func() bool) error {
	return poll.Until(context.Background(), limit, 20*time.Millisecond, f)
}
