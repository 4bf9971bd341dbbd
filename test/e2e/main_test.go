// Package e2e runs whole LISP networks — lispd processes in network
// namespaces built by internal/lab — and checks what a network engineer
// would: hosts of different sites reach each other, through PITR/PETR too,
// and traffic survives a locator failure. It needs root; without it every
// test skips with a message.
package e2e

import (
	"os"
	"testing"

	"github.com/lispd/lispd/internal/lab"
)

// lispdBin is the lispd binary built once for all tests.
var lispdBin string

func TestMain(m *testing.M) { os.Exit(lab.MainWithLispd(m, true, &lispdBin)) }
