package lisptest

import (
	"testing"

	"github.com/lispd/lispd/internal/stats"
)

// Counter is the value of the counter with key ("subsystem.name" or
// "subsystem.name{reason=…}", see stats.Desc.Key) in reg; the test fails
// if there is no such counter, so a renamed one cannot read as zero.
func Counter(t testing.TB, reg *stats.Registry, key string) uint64 {
	t.Helper()
	for _, s := range reg.Snapshot() {
		if s.Desc.Key() == key {
			return s.Value
		}
	}
	t.Fatalf("no counter %s", key)
	return 0
}
