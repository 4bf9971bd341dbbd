//go:build linux

package kernel

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Hooks the program is attached with (Attachment.Hook).
const (
	HookTCX    = "tcx-ingress"
	HookClsact = "clsact-ingress"
)

// tcFilter is the program attached the legacy way, for kernels without
// tcx (before 6.6): a direct-action bpf filter on the ingress of a clsact
// qdisc.
type tcFilter struct {
	filter *netlink.BpfFilter
	// qdisc is the clsact qdisc lispd added (nil: it was there already,
	// and stays).
	qdisc netlink.Qdisc
}

// clsactPriority is the filter's priority (and, with handle 1, its
// identity) among the qdisc's ingress filters.
const clsactPriority = 1

// attachClsact attaches the program to the ingress of a clsact qdisc on
// ifindex, adding the qdisc when the interface has none.
func (p *Path) attachClsact(ifindex int, name string) (*tcFilter, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("clsact on %s: %w", name, err)
	}
	tf := &tcFilter{}
	qs, err := netlink.QdiscList(l)
	if err != nil {
		return nil, fmt.Errorf("clsact on %s: qdiscs: %w", name, err)
	}
	have := false
	for _, q := range qs {
		if q.Type() == "clsact" {
			have = true
		}
	}
	if !have {
		q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex,
			Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
		if err := netlink.QdiscAdd(q); err != nil {
			return nil, fmt.Errorf("clsact on %s: %w", name, err)
		}
		tf.qdisc = q
	}
	tf.filter = &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS,
		Handle: netlink.MakeHandle(0, 1), Protocol: unix.ETH_P_ALL, Priority: clsactPriority},
		Fd: p.objs.LispdIngress.FD(), Name: ProgramName, DirectAction: true}
	if err := netlink.FilterAdd(tf.filter); err != nil {
		err = fmt.Errorf("clsact filter on %s: %w", name, err)
		if tf.qdisc != nil {
			err = errors.Join(err, netlink.QdiscDel(tf.qdisc))
		}
		return nil, err
	}
	return tf, nil
}

// detach removes the filter and the qdisc lispd added, unless something
// else has filters on it by now.
func (tf *tcFilter) detach() error {
	err := netlink.FilterDel(tf.filter)
	if tf.qdisc == nil {
		return err
	}
	l, lerr := netlink.LinkByIndex(tf.filter.LinkIndex)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		if fs, ferr := netlink.FilterList(l, parent); ferr != nil || len(fs) > 0 {
			return errors.Join(err, ferr)
		}
	}
	return errors.Join(err, netlink.QdiscDel(tf.qdisc))
}

// removeStaleClsact deletes the ingress bpf filters named ProgramName on
// an interface (a lispd on a kernel without tcx that did not close).
func (p *Path) removeStaleClsact(ifindex int, name string) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return err
	}
	fs, err := netlink.FilterList(l, netlink.HANDLE_MIN_INGRESS)
	if err != nil {
		return nil // no clsact qdisc: nothing stale
	}
	for _, f := range fs {
		bf, ok := f.(*netlink.BpfFilter)
		if !ok || bf.Name != ProgramName {
			continue
		}
		if err := netlink.FilterDel(bf); err != nil {
			return fmt.Errorf("kernel data path: removing a stale clsact filter on %s: %w", name, err)
		}
		p.log.Warn("kernel data path: removed a stale clsact filter", "interface", name, "program-id", bf.Id)
	}
	return nil
}
