// Package interop runs lispd against Open Overlay Router (OOR 1.3, an
// independent LISP implementation in C, Debian package openoverlayrouter)
// in network namespaces: OOR's xTRs on lispd's mapping system, lispd's
// xTRs on OOR's, mixed xTR pairs, IPv4 and IPv6 EIDs, instance IDs, RLOC
// probing and SMR both ways, negative Map-Replies, a lispd PxTR in front of
// an OOR site, and Map-Register authentication. Wireshark judges every
// capture. It needs root and the oor binary; without either every test
// skips with a message. What OOR does differently is in docs/interop.md.
package interop

import (
	"os"
	"testing"

	"github.com/lispd/lispd/internal/lab"
)

// lispdBin is the lispd binary built once for all tests.
var lispdBin string

func TestMain(m *testing.M) { os.Exit(lab.MainWithLispd(m, os.Geteuid() == 0, &lispdBin)) }
