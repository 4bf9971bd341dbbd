// Package mobility detects dynamic EIDs: hosts (typically VMs) that arrive
// on or leave an xTR's LAN interface.
//
// This part is the ARP side of detection. A host that arrives announces
// itself with ARP (a gratuitous ARP, or the request it sends to resolve
// its gateway), so an ARP frame with a sender IP inside a dynamic-EID
// prefix is the sign that the host is here. A host that no longer answers
// the ARP requests we send it is considered gone.
//
// arp.go is a pure codec for Ethernet/IPv4 ARP (RFC 826), without I/O;
// arp_linux.go is the AF_PACKET socket that reads and sends it on one
// interface.
package mobility
