package lab

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/poll"
)

// Etcd makes a node a member of the lab's etcd cluster: the real etcd
// server (Debian package etcd-server), which a cluster of lispd
// Map-Servers shares its registrations through (docs/cluster.md). Every
// node of a topology with an Etcd is a member of one cluster; StartEtcd
// runs them. A member lives in its node as any other process: the node
// going down (its links cut, its processes killed) is the member's
// failure, as on a real host.
type Etcd struct {
	// Address the member listens on, for clients and peers; default the
	// node's first link address (not a loopback: those may be anycast).
	Address netip.Addr
	// ClientPort and PeerPort default to etcd's 2379 and 2380: inside a
	// node's own namespace they collide with nothing.
	ClientPort, PeerPort int
}

// Default ports of an etcd member.
const (
	DefaultEtcdClientPort = 2379
	DefaultEtcdPeerPort   = 2380
)

// EtcdProcName is the name of an etcd member's process (Start): its log is
// /run/lisplab/<lab>/<node>-etcd.log, its data /run/lisplab/<lab>/<node>-etcd/.
const EtcdProcName = "etcd"

// etcdAddr is where node n's member listens: its Address, else the node's
// first link address, else its first loopback.
func (t *Topology) etcdAddr(n *Node) netip.Addr {
	if n.Etcd.Address.IsValid() {
		return n.Etcd.Address
	}
	addrs := t.Addrs(n.Name) // loopbacks first
	if len(addrs) > len(n.Loopbacks) {
		return addrs[len(n.Loopbacks)]
	}
	if len(addrs) > 0 {
		return addrs[0]
	}
	return netip.Addr{}
}

func etcdPorts(e *Etcd) (client, peer int) {
	return cmp.Or(e.ClientPort, DefaultEtcdClientPort), cmp.Or(e.PeerPort, DefaultEtcdPeerPort)
}

func urlOf(a netip.Addr, port int) string {
	return "http://" + netip.AddrPortFrom(a, uint16(port)).String()
}

// EtcdEndpoints returns the client URLs of the topology's etcd members,
// in node order: what a Map-Server's map-server.store.etcd.endpoints
// lists.
func (t *Topology) EtcdEndpoints() []string {
	var out []string
	for i := range t.Nodes {
		if n := &t.Nodes[i]; n.Etcd != nil {
			c, _ := etcdPorts(n.Etcd)
			out = append(out, urlOf(t.etcdAddr(n), c))
		}
	}
	return out
}

// checkEtcd validates node n's Etcd, whose path is p.
func checkEtcd(v *validator, t *Topology, p string, n Node) {
	if n.Etcd == nil {
		return
	}
	for _, port := range []struct {
		key string
		v   int
	}{{"client-port", n.Etcd.ClientPort}, {"peer-port", n.Etcd.PeerPort}} {
		if port.v < 0 || port.v > 65535 {
			v.add(p+".etcd."+port.key, "node %s: etcd %s %d is outside 1..65535", n.Name, port.key, port.v)
		}
	}
	if c, pp := etcdPorts(n.Etcd); c == pp {
		v.add(p+".etcd.peer-port", "node %s: etcd client and peer ports are both %d", n.Name, c)
	}
	switch a := n.Etcd.Address; {
	case a.IsValid() && !slices.Contains(t.Addrs(n.Name), a):
		v.add(p+".etcd.address", "node %s: etcd address %s is not an address of the node", n.Name, a)
	case !a.IsValid() && len(t.Addrs(n.Name)) == 0:
		v.add(p+".etcd", "node %s: an etcd member needs an address on the node", n.Name)
	}
}

// ErrNoEtcd is returned when the etcd server is not installed.
var ErrNoEtcd = errors.New("the etcd server is not installed (Debian: apt-get install etcd-server)")

// EtcdBinary finds the etcd server: in $PATH, else /usr/bin/etcd.
func EtcdBinary() (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if st, err := os.Stat("/usr/bin/etcd"); err == nil && st.Mode()&0o111 != 0 {
		return "/usr/bin/etcd", nil
	}
	return "", ErrNoEtcd
}

// StartEtcd starts the etcd member of every node that has one (binary ""
// finds it with EtcdBinary) as one new cluster named after the lab, and
// waits until each says it is healthy (it has a leader). The members'
// data is under the lab's run directory, so Down removes it with them.
// It returns the members' processes by node.
func (l *Lab) StartEtcd(ctx context.Context, binary string) (map[string]*Proc, error) {
	if binary == "" {
		var err error
		if binary, err = EtcdBinary(); err != nil {
			return nil, err
		}
	}
	t := l.topo
	var initial []string
	for i := range t.Nodes {
		if n := &t.Nodes[i]; n.Etcd != nil {
			_, peer := etcdPorts(n.Etcd)
			initial = append(initial, n.Name+"="+urlOf(t.etcdAddr(n), peer))
		}
	}
	procs := map[string]*Proc{}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Etcd == nil {
			continue
		}
		a := t.etcdAddr(n)
		client, peer := etcdPorts(n.Etcd)
		argv := []string{binary,
			"--name", n.Name,
			"--data-dir", filepath.Join(l.dir, n.Name+"-"+EtcdProcName),
			"--listen-client-urls", urlOf(a, client), "--advertise-client-urls", urlOf(a, client),
			"--listen-peer-urls", urlOf(a, peer), "--initial-advertise-peer-urls", urlOf(a, peer),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", t.Name,
			"--logger", "zap", "--log-outputs", "stderr",
		}
		p, err := l.Start(n.Name, EtcdProcName, argv, nil)
		if err != nil {
			return nil, err
		}
		procs[n.Name] = p
	}
	for node, p := range procs {
		if err := l.waitEtcd(ctx, node, p); err != nil {
			return nil, err
		}
	}
	return procs, nil
}

// waitEtcd waits until node's member answers /health with a leader.
func (l *Lab) waitEtcd(ctx context.Context, node string, p *Proc) error {
	n := l.topo.Node(node)
	client, _ := etcdPorts(n.Etcd)
	addr := netip.AddrPortFrom(l.topo.etcdAddr(n), uint16(client)).String()
	url := "http://" + addr + "/health"
	var last error
	err := poll.Until(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		if p.Exited() {
			return true
		}
		last = l.Do(node, func() error {
			// Dialled here, on the node's thread: an http.Client would
			// dial on goroutines of its own, outside the namespace.
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Second))
			if _, err := fmt.Fprintf(c, "GET /health HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
				return err
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"health":"true"`) {
				return fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(string(b)))
			}
			return nil
		})
		return last == nil
	})
	if p.Exited() {
		return fmt.Errorf("lab %s: etcd on %s exited: %v\n%s", l.topo.Name, node, p.Wait(), p.LogTail(10))
	}
	if err != nil {
		return fmt.Errorf("lab %s: etcd on %s not healthy: %v (last: %v)\n%s", l.topo.Name, node, err, last, p.LogTail(10))
	}
	return nil
}
