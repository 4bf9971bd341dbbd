package daemon

import (
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// dropReasons are every reason dispatch drops a packet for; registered up
// front so the hot path only does an atomic add.
var dropReasons = []string{
	"too-short", "malformed", "rate-limit-source", "rate-limit-global", "no-map-server", "ecm-not-map-request",
	"no-itr-rloc", "eid-not-served", "no-mapping-role", "probe-to-mapping-system", "map-request-not-encapsulated",
	"unexpected-map-reply", "unexpected-type",
}

type counters struct {
	rxPackets, tx *stats.Counter
	rx            [16]*stats.Counter
	drops         map[string]*stats.Counter
}

func newCounters(r *stats.Registry) counters {
	c := counters{
		rxPackets: r.Counter(stats.Desc{Subsystem: "control", Name: "packets_received", Help: "UDP 4342 datagrams received."}),
		tx:        r.Counter(stats.Desc{Subsystem: "control", Name: "messages_sent", Help: "Control messages sent."}),
		drops:     map[string]*stats.Counter{},
	}
	for t := range c.rx {
		c.rx[t] = r.Counter(stats.Desc{Subsystem: "control", Name: "messages_received",
			Help: "Control messages decoded, by type.", Labels: [][2]string{{"type", typeLabel(wire.MessageType(t))}}})
	}
	for _, reason := range dropReasons {
		c.drops[reason] = r.Counter(stats.Desc{Subsystem: "control", Name: "packets_dropped",
			Help: "Control packets dropped, by reason.", Labels: [][2]string{{"reason", reason}}})
	}
	return c
}

func typeLabel(t wire.MessageType) string {
	switch t {
	case wire.TypeMapRequest:
		return "map-request"
	case wire.TypeMapReply:
		return "map-reply"
	case wire.TypeMapRegister:
		return "map-register"
	case wire.TypeMapNotify:
		return "map-notify"
	case wire.TypeMapNotifyAck:
		return "map-notify-ack"
	case wire.TypeMapReferral:
		return "map-referral"
	case wire.TypeInfo:
		return "info"
	case wire.TypeECM:
		return "ecm"
	case wire.TypeSharedExtension:
		return "shared-extension"
	}
	return "type-" + t.String()
}

func (c *counters) received(t wire.MessageType) *stats.Counter { return c.rx[t&15] }

func (c *counters) dropped(reason string) *stats.Counter {
	if x, ok := c.drops[reason]; ok {
		return x
	}
	return c.drops["unexpected-type"]
}
