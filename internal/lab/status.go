package lab

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// NodeStatus is what Status found of one node.
type NodeStatus struct {
	Name, Role, Namespace string
	Present               bool // the namespace exists
	Interfaces            []InterfaceStatus
	Procs                 []ProcStatus
}

// InterfaceStatus is one interface of a node: lo, then the link ends.
type InterfaceStatus struct {
	Name    string
	Up      bool // administratively up
	Carrier bool // the peer is up too
	MTU     int
	Addrs   []netip.Prefix // link-local IPv6 addresses left out
	Peer    string         // "node:interface" at the other end; "" for lo
}

// ProcStatus is a process started with Start, found by its pid file.
type ProcStatus struct {
	Name    string
	PID     int
	Running bool
	Log     string
}

// Status reports each node's namespace, interfaces and processes as they
// are now.
func (l *Lab) Status() ([]NodeStatus, error) {
	type peer struct{ name, other string }
	ifaces := map[string][]peer{}
	for _, lk := range l.topo.Links {
		ifaces[lk.A] = append(ifaces[lk.A], peer{lk.AName, lk.B + ":" + lk.BName})
		ifaces[lk.B] = append(ifaces[lk.B], peer{lk.BName, lk.A + ":" + lk.AName})
	}
	procs := l.procStatus()
	var errs []error
	out := make([]NodeStatus, 0, len(l.topo.Nodes))
	for _, nd := range l.topo.Nodes {
		st := NodeStatus{Name: nd.Name, Role: nd.Role, Namespace: l.Namespace(nd.Name), Procs: procs[nd.Name]}
		st.Present = netnsInode(st.Namespace) != 0
		if st.Present {
			n, err := l.node(nd.Name)
			if err != nil {
				errs = append(errs, err)
			} else {
				for _, p := range append([]peer{{"lo", ""}}, ifaces[nd.Name]...) {
					st.Interfaces = append(st.Interfaces, interfaceStatus(n, p.name, p.other))
				}
			}
		}
		out = append(out, st)
	}
	return out, errors.Join(errs...)
}

func interfaceStatus(n *nodeRT, name, peer string) InterfaceStatus {
	is := InterfaceStatus{Name: name, Peer: peer}
	link, err := n.nl.LinkByName(name)
	if err != nil {
		return is
	}
	a := link.Attrs()
	is.Up = a.Flags&net.FlagUp != 0
	is.Carrier = a.OperState == netlink.OperUp || (name == "lo" && is.Up)
	is.MTU = a.MTU
	addrs, _ := n.nl.AddrList(link, netlink.FAMILY_ALL)
	for _, ad := range addrs {
		ip, ok := netip.AddrFromSlice(ad.IP)
		if !ok || ip.Unmap().IsLinkLocalUnicast() {
			continue
		}
		ones, _ := ad.Mask.Size()
		is.Addrs = append(is.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return is
}

// procStatus reads the pid files, by node. A file is
// "<node>-<name>.pid"; node names may hold '-', so the longest node name
// that fits wins.
func (l *Lab) procStatus() map[string][]ProcStatus {
	out := map[string][]ProcStatus{}
	files, _ := filepath.Glob(filepath.Join(l.dir, "*.pid"))
	names := make([]string, 0, len(l.topo.Nodes))
	for _, nd := range l.topo.Nodes {
		names = append(names, nd.Name)
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".pid")
		for _, node := range names {
			name, ok := strings.CutPrefix(base, node+"-")
			if !ok {
				continue
			}
			pid := readPID(f)
			running := pid > 0 && alive(pid)
			if p := l.proc(node, name, pid); p != nil {
				running = !p.Exited()
			} else if running {
				running = hasEnv(pid, procMarker(l.topo.Name, node, name))
			}
			out[node] = append(out[node], ProcStatus{
				Name:    name,
				PID:     pid,
				Running: running,
				Log:     l.LogPath(node, name),
			})
			break
		}
	}
	return out
}

// proc returns the process this Lab started as name on node with pid.
func (l *Lab) proc(node, name string, pid int) *Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.Node == node && p.Name == name && p.PID == pid {
			return p
		}
	}
	return nil
}
