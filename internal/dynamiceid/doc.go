// Package dynamiceid is LISP host mobility on an xTR, by dynamic EIDs: hosts
// of a dynamic-EID range are detected when they arrive on the LAN (a packet
// routed through us, their ARP), routed to and registered as /32s; when
// the Map-Server says one registered elsewhere it becomes "away" and what
// still arrives for it is forwarded to its new site; hosts that fall
// silent are probed with ARP and unregistered. On an extended subnet the
// xTRs of the stretched LAN tell each other of arrivals over a multicast
// notify group.
package dynamiceid
