// Package lab builds network labs on one Linux machine: one network
// namespace per node, veth pairs between them, addresses, sysctls, routes,
// layer 2 (bridges, VXLANs, MAC addresses, static FDB entries), hosts
// files, and long-running processes inside the nodes. It is the
// harness under lisplab, the demo, the namespace integration tests and the
// benchmarks, and knows of LISP only what running lispd takes: each node's
// lispd configuration snippet, and StartLispd, whose waits ask lispd's
// admin socket whether it answers and whether its ETR has registered.
//
// A Topology (built in Go or read with LoadTopology) goes up with Up and
// comes down with Lab.Down; DownByName removes a lab without its Lab
// object, after a crash or from another process, and Attach reopens a lab
// another process brought up. Tests use NewTest, which also cleans up when
// they fail or panic.
//
// What a lab called NAME leaves on the machine while up, and nothing else:
//
//	/run/netns/NAME-NODE          one network namespace per node (as `ip netns add`)
//	/run/lisplab/NAME/state.json  the topology and who brought it up
//	/run/lisplab/NAME/NODE-PROC.{pid,log}   processes from Start
//	/run/lisplab/NAME/NODE.sock   where a node's admin socket belongs
//	/etc/netns/NAME-NODE/hosts    from WriteHosts (as `ip netns exec` expects)
//
// Veths are created with both ends inside their namespaces, so none ever
// appears in the host namespace; each end carries the alias
// "lisplab:NAME:INDEX A:IFACE-B:IFACE" recording the link it belongs to.
// /run/netns is made a shared mount point, as `ip netns add` does.
//
// Everything is done with netlink and system calls; neither `ip` nor
// `bridge` (iproute2) is needed. Exec uses nsenter and unshare from util-linux to enter a node
// (see execScript).
//
// Namespace switching happens only on OS threads that are thrown away
// afterwards, so no goroutine of the caller ever runs in a lab namespace
// by accident.
package lab
