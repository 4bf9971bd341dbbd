package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"

	"github.com/vishvananda/netlink"
)

// NAT makes a node a NAT box: what it forwards out of Outside leaves with
// Outside's address (nftables masquerade), and only answers to it come
// back (conntrack: endpoint- and port-dependent filtering, as home
// gateways do). It needs the nft command (Debian package nftables); the
// rules live in the node's namespace and go with it.
type NAT struct {
	// Outside is the interface facing the public side.
	Outside string
	// Symmetric gives every new flow (each destination address and port)
	// a random source port: an endpoint-dependent mapping, the hardest
	// case for NAT traversal. Otherwise Linux keeps the inside port when
	// it is free, so one inside address:port maps to one outside
	// address:port whatever the destination (endpoint-independent).
	Symmetric bool
	// UDPTimeout, in seconds, is how long an idle UDP mapping lasts
	// (conntrack's udp_timeout and udp_timeout_stream in the node); 0
	// keeps the kernel's (30 s, 120 s once both ways have been seen).
	UDPTimeout int
}

// natTable is the nftables table a NAT node's rules live in.
const natTable = "lisplab_nat"

// ruleset returns the nft script of the NAT.
func (n *NAT) ruleset() string {
	flags := ""
	if n.Symmetric {
		flags = " random"
	}
	return fmt.Sprintf(`table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname %[2]q masquerade%[3]s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		oifname %[2]q accept
	}
}
`, natTable, n.Outside, flags)
}

// checkNAT validates a node's NAT against the node's interfaces.
func checkNAT[V any](v *validator, p string, nd Node, ifaces map[string]V) {
	if nd.NAT == nil {
		return
	}
	switch {
	case nd.NAT.Outside == "":
		v.add(p+".nat.outside", "node %s: nat needs the outside interface", nd.Name)
	case !hasKey(ifaces, nd.NAT.Outside):
		v.add(p+".nat.outside", "node %s: nat outside %q is none of the node's link ends", nd.Name, nd.NAT.Outside)
	}
	if nd.NAT.UDPTimeout < 0 || nd.NAT.UDPTimeout > 86400 {
		v.add(p+".nat.udp-timeout", "node %s: nat udp-timeout %d is outside 0..86400 seconds", nd.Name, nd.NAT.UDPTimeout)
	}
}

// applyNAT installs the NAT nodes' rules and timeouts, after the routes.
func (l *Lab) applyNAT(ctx context.Context) error {
	for i := range l.topo.Nodes {
		nd := &l.topo.Nodes[i]
		if nd.NAT == nil {
			continue
		}
		nft, err := exec.LookPath("nft")
		if err != nil {
			return fmt.Errorf("node %s: nat needs nft (apt-get install nftables): %w", nd.Name, err)
		}
		cmd := l.ExecContext(ctx, nd.Name, nft, "-f", "-")
		cmd.Stdin = bytes.NewBufferString(nd.NAT.ruleset())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("node %s: nft: %w: %s", nd.Name, err, bytes.TrimSpace(out))
		}
		// The rules loaded nf_conntrack, so its per-namespace sysctls exist now.
		err = l.Do(nd.Name, func() error {
			if err := writeSysctl("net.ipv4.ip_forward", "1"); err != nil {
				return err
			}
			if t := nd.NAT.UDPTimeout; t > 0 {
				for _, k := range []string{"net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream"} {
					if err := writeSysctl(k, strconv.Itoa(t)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: nat: %w", nd.Name, err)
		}
	}
	return nil
}

// FlushNAT forgets every mapping of a NAT node, as when the box reboots:
// established flows must open new ones (with new outside ports).
func (l *Lab) FlushNAT(node string) error {
	return l.Do(node, func() error {
		if err := netlink.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
			return fmt.Errorf("node %s: flush conntrack: %w", node, err)
		}
		return nil
	})
}

// NATMappings counts the UDP mappings a NAT node holds now: the flows it
// translated (the answer goes to another address than the original source),
// not those it merely saw arrive.
func (l *Lab) NATMappings(node string) (int, error) {
	n := 0
	err := l.Do(node, func() error {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
		for _, f := range flows {
			if f.Forward.Protocol == 17 && !f.Forward.SrcIP.Equal(f.Reverse.DstIP) {
				n++
			}
		}
		return err
	})
	return n, err
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
