//go:build linux

package kernel

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The program keeps its verdicts per flow (lisp_itr_flows: locator, next
// hop, MACs; lisp_etr_flows: local EID, next hop, MACs) and the last
// answers of its hash maps (lisp_memo), so that a flow's packets skip the
// map-cache, local-EID and FIB lookups. A verdict is valid under the
// generation it was made in (lisp_gen, never 0 once Open returns): every
// write of a map it depends on bumps it before the write returns, and so
// does every notification of the namespace's routes, rules, next hops,
// neighbours, addresses and links, as soon as this process reads it.

// flowSlots is FLOW_SLOTS of bpf/lisp.c.
const flowSlots = 64

// rtGroups are the rtnetlink groups whose changes can alter what the
// program's FIB lookups answer.
var rtGroups = []int{
	unix.RTNLGRP_LINK, unix.RTNLGRP_NEIGH,
	unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR,
	unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE,
	unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE,
	unix.RTNLGRP_NEXTHOP,
}

// bump starts a new generation: every flow verdict made before is stale.
// Generations only grow (genMu), so a verdict of an old one never
// becomes valid again.
func (p *Path) bump() {
	p.genMu.Lock()
	defer p.genMu.Unlock()
	p.gen++
	if err := p.objs.LispGen.Update(uint32(0), p.gen, ebpf.UpdateAny); err != nil {
		// Not expected of an array (the key exists, the value is 8 bytes).
		p.log.Error("kernel data path: generation update failed", "err", err)
		p.k.programErrors.Inc()
	}
}

// openWatch subscribes to the routing changes of the calling thread's
// namespace and starts the reader that bumps the generation on each.
func (p *Path) openWatch() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("kernel data path: rtnetlink: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("kernel data path: rtnetlink: %w", err)
	}
	for _, g := range rtGroups {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, g); err != nil {
			if g == unix.RTNLGRP_NEXTHOP && errors.Is(err, unix.EINVAL) {
				continue // before 5.3: no next-hop objects to change either
			}
			unix.Close(fd)
			return fmt.Errorf("kernel data path: rtnetlink group %d: %w", g, err)
		}
	}
	// Non-blocking: the runtime's poller reads it, and Close ends the read.
	p.nl = os.NewFile(uintptr(fd), "rtnetlink")
	p.wg.Go(p.watch)
	return nil
}

// watch bumps the generation for every batch of notifications, until
// Close. Lost notifications (ENOBUFS) bump it all the same.
func (p *Path) watch() {
	buf := make([]byte, 64<<10)
	for {
		_, err := p.nl.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		p.bump()
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			p.log.Warn("kernel data path: reading rtnetlink", "err", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// flowCached says whether some CPU's ITR flow slot holds a verdict for
// the inner destination dst in the current generation.
func (p *Path) flowCached(dst netip.Addr) bool {
	p.genMu.Lock()
	gen := p.gen
	p.genMu.Unlock()
	want := dst.As16()
	if dst.Is4() {
		want = [16]byte{}
		a := dst.As4()
		copy(want[:], a[:])
	}
	var flows []lispItrFlow
	for i := range uint32(flowSlots) {
		if err := p.objs.LispItrFlows.Lookup(i, &flows); err != nil {
			return false
		}
		for _, f := range flows {
			if f.Gen == gen && f.Key.Dst == want {
				return true
			}
		}
	}
	return false
}
