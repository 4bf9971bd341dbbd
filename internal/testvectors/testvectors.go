// Package testvectors finds the golden packet corpus kept in the
// repository's testdata/vectors: captures from Open Overlay Router, tcpdump's
// test pcaps, OpenDaylight's serializer vectors, and hand-made valid and
// broken packets. testdata/vectors/README.md gives each file's origin and
// licence. Only tests import this package.
package testvectors

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir is the absolute path of testdata/vectors. It is found from this
// source file's own location, so it holds from any package's test binary
// (go test runs each in its package directory).
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("testdata", "vectors")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "vectors")
}

// Path is the path of one corpus file, e.g. "oor/oor-capture.pcap".
// A missing file fails the test: the corpus is part of the repository.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(Dir(), filepath.FromSlash(name))
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("test vector %s: %v", name, err)
	}
	return p
}

// Read returns one corpus file's bytes, failing the test if it is missing.
func Read(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, name))
	if err != nil {
		tb.Fatalf("test vector %s: %v", name, err)
	}
	return b
}
