package cluster

import "github.com/lispd/lispd/internal/stats"

// The etcd operations whose failures are counted: the op label of
// lisp_cluster_store_errors_total.
const (
	opLease  = iota // grant, keep-alive, node announcement
	opWrite         // Records and replay state
	opWatch         // the watch stream
	opRead          // the full listing
	opHealth        // the once-a-second revision check
	numOps
)

var opLabels = [numOps]string{"lease", "write", "watch", "read", "health"}

// What the node writes: the kind label of lisp_cluster_writes_total.
const (
	writeRecord = iota
	writeDelete
	writeNonce
	numWrites
)

var writeLabels = [numWrites]string{"record", "delete", "nonce"}

// counters are the cluster store's metrics (subsystem cluster).
type counters struct {
	errors                                     [numOps]*stats.Counter
	writes                                     [numWrites]*stats.Counter
	events, resyncs, moveConflicts, badRecords *stats.Counter
	lagSeconds, lagRevisions, connected        *stats.Gauge
}

func newCounters(r *stats.Registry) counters {
	c := func(name, help string, labels ...[2]string) *stats.Counter {
		return r.Counter(stats.Desc{Subsystem: "cluster", Name: name, Help: help, Labels: labels})
	}
	g := func(name, help string) *stats.Gauge {
		return r.Gauge(stats.Desc{Subsystem: "cluster", Name: name, Help: help})
	}
	c0 := counters{
		events:        c("watch_events", "etcd watch events applied to the table."),
		resyncs:       c("resyncs", "Full listings of the cluster's records (start, or history compacted past the node's revision)."),
		moveConflicts: c("move_conflicts", "Moves whose etcd transaction failed because the holder changed first (decided again)."),
		badRecords:    c("bad_records", "Keys under the cluster prefix that could not be read (ignored)."),
		lagSeconds:    g("watch_lag_seconds", "How long the node's table has been behind etcd's newest revision (0: caught up)."),
		lagRevisions:  g("watch_lag_revisions", "etcd revisions the node's table is behind the newest it has seen."),
		connected:     g("store_connected", "1 when etcd answered the last check, 0 while the node answers from its last table."),
	}
	for i := range c0.errors {
		c0.errors[i] = c("store_errors", "Failed etcd operations, by operation.", [2]string{"op", opLabels[i]})
	}
	for i := range c0.writes {
		c0.writes[i] = c("writes", "etcd writes, by kind: a Record, a deleted Record, a replay-state nonce.", [2]string{"kind", writeLabels[i]})
	}
	return c0
}
