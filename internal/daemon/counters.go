package daemon

import (
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// counters are the dispatch's, registered up front so the packet path only
// does an atomic add.
type counters struct {
	rxPackets, tx *stats.Counter
	rx            [16]*stats.Counter
	// drops has one counter for every control.DropReason but Handled.
	drops [control.NumDropReasons]*stats.Counter
}

func newCounters(r *stats.Registry) counters {
	c := counters{
		rxPackets: r.Counter(stats.Desc{Subsystem: "control", Name: "packets_received", Help: "UDP 4342 datagrams received."}),
		tx:        r.Counter(stats.Desc{Subsystem: "control", Name: "messages_sent", Help: "Control messages sent."}),
	}
	for t := range c.rx {
		c.rx[t] = r.Counter(stats.Desc{Subsystem: "control", Name: "messages_received",
			Help: "Control messages decoded, by type.", Labels: [][2]string{{"type", wire.MessageType(t).Label()}}})
	}
	for reason := control.Handled + 1; reason < control.NumDropReasons; reason++ {
		c.drops[reason] = r.Counter(stats.Desc{Subsystem: "control", Name: "packets_dropped",
			Help: "Control packets dropped, by reason.", Labels: [][2]string{{"reason", reason.String()}}})
	}
	return c
}

func (c *counters) received(t wire.MessageType) *stats.Counter { return c.rx[t&15] }
