package daemon

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

// TestDropCounters: every drop reason has a counter registered up front,
// labelled with the reason, and the labels are today's (metric labels are
// user contract).
func TestDropCounters(t *testing.T) {
	reg := stats.NewRegistry()
	c := newCounters(reg)
	var labels []string
	for _, s := range reg.Snapshot() {
		if s.Desc.Subsystem == "control" && s.Desc.Name == "packets_dropped" {
			labels = append(labels, s.Desc.Label("reason"))
		}
	}
	for r := control.Handled + 1; r < control.NumDropReasons; r++ {
		if c.drops[r] == nil || !slices.Contains(labels, r.String()) {
			t.Errorf("drop reason %q has no counter", r)
		}
	}
	want := []string{"too-short", "malformed", "rate-limit-source", "rate-limit-global", "no-map-server",
		"ecm-not-map-request", "no-itr-rloc", "eid-not-served", "no-mapping-role", "probe-to-mapping-system",
		"map-request-not-encapsulated", "unexpected-map-reply", "unexpected-type", "reply-not-global-unicast",
		"reply-to-self", "rate-limit-destination", "ecm-inner-checksum", "ecm-inner-port", "dont-map-reply"}
	slices.Sort(want)
	slices.Sort(labels)
	if !slices.Equal(labels, want) {
		t.Errorf("drop labels %q, want %q", labels, want)
	}
}

// dispatcher is a daemon without sockets, with the roles given, to feed
// requests to handle.
func dispatcher(ms *mapserver.Server, x *xtr.Server) *Daemon {
	reg := stats.NewRegistry()
	d := &Daemon{log: slog.New(slog.DiscardHandler), now: time.Now, stats: reg, c: newCounters(reg), ms: ms, xtr: x}
	d.limRequest = newLimiter(1e9, 1<<20, 1e9, 1<<20)
	d.limRegister, d.limOther = d.limRequest, d.limRequest
	d.guard = control.NewReplyGuard(config.DefaultPerDestinationRate, config.DefaultPerDestinationBurst, d.now, d.countDrop)
	d.handlers()
	return d
}

// TestDispatchDrops drives the routing rules between roles: each message
// is dropped for the reason operators see, and only for it.
func TestDispatchDrops(t *testing.T) {
	itr := netip.MustParseAddr("192.0.2.21")
	site := mapping.NewEID(0, netip.MustParsePrefix("198.51.100.0/24"))
	msOnly := func() *Daemon {
		return dispatcher(mapserver.New([]mapserver.Site{{Name: "s", Keys: []mapserver.Key{{Alg: wire.AuthHMACSHA256,
			Secret: []byte("k")}}, Prefixes: []mapserver.SitePrefix{{EID: site}}}}, mapserver.Options{}), nil)
	}
	xtrOnly := func() *Daemon {
		return dispatcher(nil, xtr.New(xtr.Options{ITR: true, ETR: true, LocalRLOCs: []netip.Addr{itr}}))
	}
	none := func() *Daemon { return dispatcher(nil, nil) }
	request := func(eid string, probe bool, rlocs ...wire.Address) *wire.MapRequest {
		e := netip.MustParseAddr(eid)
		return &wire.MapRequest{Probe: probe, Nonce: 1, ITRRLOCs: rlocs,
			Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(e)}}}
	}
	ecm := func(m wire.Message) *wire.ECM {
		return &wire.ECM{IP: wire.InnerIP{Src: itr, Dst: netip.MustParseAddr("198.51.100.7"), TTL: 64},
			SrcPort: 61000, DstPort: wire.ControlPort, Message: m}
	}
	rloc := wire.AddrFromIP(itr)
	reply := &wire.MapReply{Nonce: 1}
	for _, tc := range []struct {
		name string
		d    func() *Daemon
		msg  wire.Message
		raw  []byte
		want control.DropReason
	}{
		{"3 bytes", msOnly, nil, []byte{0x10, 0, 0}, control.DropTooShort},
		{"type 0", msOnly, nil, []byte{0, 0, 0, 0}, control.DropMalformed},
		{"bare Map-Request", msOnly, request("198.51.100.7", false, rloc), nil, control.DropNotEncapsulated},
		{"bare RLOC-probe", msOnly, request("198.51.100.7", true, rloc), nil, control.DropProbeToMappingSystem},
		{"Map-Reply", msOnly, reply, nil, control.DropUnexpectedMapReply},
		{"Map-Notify", msOnly, &wire.MapNotify{AuthBody: wire.AuthBody{Algorithm: wire.AuthHMACSHA256,
			AuthData: make([]byte, 32)}}, nil, control.DropUnexpectedType},
		{"ECM of a Map-Reply", msOnly, ecm(reply), nil, control.DropECMNotMapRequest},
		{"ECM without an ITR-RLOC", msOnly, ecm(request("198.51.100.7", false, wire.Address{})), nil, control.DropNoITRRLOC},
		{"ECM for no site", msOnly, ecm(request("203.0.113.7", false, rloc)), nil, control.DropEIDNotServed},
		// RFC 9301 §5.8: a Map-Server alone drops an RLOC-probe in an ECM
		// as a Map-Resolver does (issue 12, finding 11).
		{"ECM of an RLOC-probe", msOnly, ecm(request("198.51.100.7", true, rloc)), nil, control.DropProbeToMappingSystem},
		{"Map-Register", xtrOnly, &wire.MapRegister{AuthBody: wire.AuthBody{Algorithm: wire.AuthHMACSHA256,
			AuthData: make([]byte, 32)}}, nil, control.DropNoMapServer},
		{"Map-Notify-Ack", xtrOnly, &wire.MapNotifyAck{AuthBody: wire.AuthBody{Algorithm: wire.AuthHMACSHA256,
			AuthData: make([]byte, 32)}}, nil, control.DropNoMapServer},
		{"ECM without roles", none, ecm(request("198.51.100.7", false, rloc)), nil, control.DropNoMappingRole},
		{"Map-Request without roles", none, request("198.51.100.7", false, rloc), nil, control.DropNotEncapsulated},
	} {
		raw := tc.raw
		if tc.msg != nil {
			var err error
			if raw, err = wire.Encode(tc.msg); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		d := tc.d()
		var out control.Out
		d.handle(&control.Request{Raw: raw, Src: netip.AddrPortFrom(itr, 61000),
			Local: netip.MustParseAddrPort("192.0.2.1:4342")}, &out)
		for r := control.Handled + 1; r < control.NumDropReasons; r++ {
			want := uint64(0)
			if r == tc.want {
				want = 1
			}
			if got := d.c.drops[r].Load(); got != want {
				t.Errorf("%s: %s counted %d, want %d", tc.name, r, got, want)
			}
		}
		if out.Len() != 0 {
			t.Errorf("%s: %d answers", tc.name, out.Len())
		}
	}
}
