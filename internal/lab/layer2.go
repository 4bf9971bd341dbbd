package lab

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// setMAC gives ifname of n the MAC address mac.
func setMAC(n *nodeRT, ifname string, mac net.HardwareAddr) error {
	link, err := n.nl.LinkByName(ifname)
	if err == nil {
		err = n.nl.LinkSetHardwareAddr(link, mac)
	}
	if err != nil {
		return fmt.Errorf("node %s: %s: address %s: %w", n.node.Name, ifname, mac, err)
	}
	return nil
}

// createLayer2 builds every node's VXLANs, then its bridges: ports
// enslaved and up, learning off where asked, static FDB entries, the
// bridge up. It runs once the links are up and addressed, so a VXLAN's
// underlay is there.
func (l *Lab) createLayer2(ctx context.Context) error {
	for _, nd := range l.topo.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := l.nodes[nd.Name]
		for _, x := range nd.VXLANs {
			if err := addVXLAN(n, x); err != nil {
				return fmt.Errorf("node %s: vxlan %s: %w", nd.Name, x.Name, err)
			}
		}
		for _, b := range nd.Bridges {
			if err := addBridge(n, b); err != nil {
				return fmt.Errorf("node %s: bridge %s: %w", nd.Name, b.Name, err)
			}
		}
	}
	return nil
}

func addVXLAN(n *nodeRT, x VXLAN) error {
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.NewLinkAttrs(),
		VxlanId:   int(x.VNI),
		Group:     x.Remote.AsSlice(), // a unicast group is the remote end
		Port:      x.Port,
		Learning:  true, // as `ip link add … type vxlan` does
	}
	vx.Name = x.Name
	if vx.Port == 0 {
		vx.Port = DefaultVXLANPort
	}
	if x.Local.IsValid() {
		vx.SrcAddr = x.Local.AsSlice()
	}
	if x.Dev != "" {
		dev, err := n.nl.LinkByName(x.Dev)
		if err != nil {
			return fmt.Errorf("dev %s: %w", x.Dev, err)
		}
		vx.VtepDevIndex = dev.Attrs().Index
	}
	return n.nl.LinkAdd(vx)
}

func addBridge(n *nodeRT, b Bridge) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = b.Name
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := n.nl.LinkAdd(br); err != nil {
		return err
	}
	for _, port := range b.Ports {
		if err := setMaster(n, port, br); err != nil {
			return err
		}
	}
	for _, port := range b.NoLearning {
		link, err := n.nl.LinkByName(port)
		if err == nil {
			err = n.nl.LinkSetLearning(link, false)
		}
		if err != nil {
			return fmt.Errorf("%s: learning off: %w", port, err)
		}
	}
	for _, e := range b.FDB {
		if err := addFDB(n, e); err != nil {
			return err
		}
	}
	if err := n.nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	return nil
}

// addFDB pins e.MAC to e.Port in the port's bridge (static, never aged
// out or moved by learning).
func addFDB(n *nodeRT, e FDBEntry) error {
	port, err := n.nl.LinkByName(e.Port)
	if err == nil {
		err = n.nl.NeighSet(&netlink.Neigh{
			LinkIndex:    port.Attrs().Index,
			Family:       unix.AF_BRIDGE,
			Flags:        netlink.NTF_MASTER,
			State:        netlink.NUD_NOARP, // static
			HardwareAddr: e.MAC,
		})
	}
	if err != nil {
		return fmt.Errorf("fdb %s on %s: %w", e.MAC, e.Port, err)
	}
	return nil
}

// setMaster enslaves port to bridge (nil: frees it from any) and sets it
// up.
func setMaster(n *nodeRT, port string, bridge netlink.Link) error {
	link, err := n.nl.LinkByName(port)
	if err != nil {
		return fmt.Errorf("port %s: %w", port, err)
	}
	if bridge == nil {
		err = n.nl.LinkSetNoMaster(link)
	} else if err = n.nl.LinkSetMaster(link, bridge); err == nil {
		err = n.nl.LinkSetUp(link)
	}
	if err != nil {
		return fmt.Errorf("port %s: %w", port, err)
	}
	return nil
}

// SetMaster makes port of node a port of bridge, or, with bridge "",
// frees it from the bridge it is in: a switch port recabled, a VM's
// uplink moved by its hypervisor. The port is set up when enslaved. The
// topology keeps describing the lab as brought up.
func (l *Lab) SetMaster(node, port, bridge string) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	var br netlink.Link
	if bridge != "" {
		if br, err = n.nl.LinkByName(bridge); err != nil {
			return fmt.Errorf("lab %s: node %s: bridge %s: %w", l.topo.Name, node, bridge, err)
		}
		if br.Type() != "bridge" {
			return fmt.Errorf("lab %s: node %s: %s is not a bridge", l.topo.Name, node, bridge)
		}
	}
	if err := setMaster(n, port, br); err != nil {
		return fmt.Errorf("lab %s: node %s: %w", l.topo.Name, node, err)
	}
	return nil
}

// FlushNeighbors makes node forget the neighbours (ARP and NDP entries)
// it learnt on ifname, as `ip neigh flush dev IFNAME` does: permanent and
// static entries stay.
func (l *Lab) FlushNeighbors(node, ifname string) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	link, err := n.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("lab %s: node %s: %s: %w", l.topo.Name, node, ifname, err)
	}
	neighs, err := n.nl.NeighList(link.Attrs().Index, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("lab %s: node %s: %s: %w", l.topo.Name, node, ifname, err)
	}
	for _, nb := range neighs {
		if nb.State&(netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
			continue
		}
		if err := n.nl.NeighDel(&nb); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("lab %s: node %s: %s: forget %s: %w", l.topo.Name, node, ifname, nb.IP, err)
		}
	}
	return nil
}
