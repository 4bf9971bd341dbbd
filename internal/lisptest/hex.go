package lisptest

import (
	"encoding/hex"
	"strings"
	"testing"
)

// MustHex decodes s, hex with spaces allowed between bytes, failing the
// test if it is not.
func MustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}
