package loadgen_test

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lig"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/loadgen"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/mapresolver"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// lispd runs lispd's own Map-Server and Map-Resolver behind the control
// transport on 127.0.0.1, glued as the daemon will glue them.
func lispd(t *testing.T, sites []mapserver.Site) (netip.AddrPort, *stats.Registry) {
	return lispdWith(t, sites, nil)
}

// lispdWith is lispd with the LISP-SEC keys shared with ITRs.
func lispdWith(t *testing.T, sites []mapserver.Site, secKeys lispsec.Keys) (netip.AddrPort, *stats.Registry) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	tr, err := control.Listen([]netip.Addr{netip.MustParseAddr("127.0.0.1")}, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	reg := stats.NewRegistry()
	ms := mapserver.New(sites, mapserver.Options{Stats: reg, Log: log, LISPSECKeys: secKeys})
	mr := mapresolver.New(ms, nil, mapresolver.Options{Stats: reg, Log: log, LISPSECKeys: secKeys})
	ctx, cancel := context.WithCancel(context.Background())
	var mux control.Mux
	mux.Handle(wire.TypeMapRegister, ms.HandleMapRegister)
	mux.Handle(wire.TypeECM, mr.HandleMapRequest)
	tr.Serve(ctx, func(r *control.Request, out *control.Out) {
		m, err := wire.Decode(r.Raw)
		if err != nil {
			return
		}
		r.Msg = m
		if ecm, ok := m.(*wire.ECM); ok {
			req, ok := ecm.Message.(*wire.MapRequest)
			if !ok || len(req.ITRRLOCs) == 0 {
				return
			}
			itr, ok := req.ITRRLOCs[0].Addr()
			if !ok || !itr.IsLoopback() {
				return // tests answer loopback only
			}
			r.Msg, r.ECM, r.ReplyTo = req, ecm, netip.AddrPortFrom(itr, ecm.SrcPort)
		}
		if h := mux.Handler(m.Type()); h != nil {
			h(r, out)
		}
	})
	t.Cleanup(func() { cancel(); tr.Close(); tr.Wait() })
	return tr.Addrs()[0], reg
}

func counter(reg *stats.Registry, name, reason string) uint64 {
	var n uint64
	for _, s := range reg.Snapshot() {
		if s.Desc.Name == name && (reason == "" || s.Desc.Label("reason") == reason) {
			n += s.Value
		}
	}
	return n
}

// TestAgainstLispd drives lispd's Map-Server: registrations authenticate
// (with nonces that keep increasing from one run to the next), proxied
// mappings answer Map-Requests and lig, and a flood is dropped without
// an answer while legitimate queries still get one.
func TestAgainstLispd(t *testing.T) {
	key := []byte("s3cret")
	target, reg := lispd(t, []mapserver.Site{{Name: "bench",
		Keys:     []mapserver.Key{{ID: 1, Alg: wire.AuthHMACSHA256, Secret: key}},
		Prefixes: []mapserver.SitePrefix{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.18.0.0/15")), AcceptMoreSpecifics: true}},
	}})
	base := loadgen.Config{Target: target, Prefixes: 1000, KeyID: 1, Secret: key, ProxyReply: true,
		XTRIDPerPrefix: true, Sockets: 4, Rate: 50000, Drain: 500 * time.Millisecond}

	for _, n := range []uint64{2000, 500} { // the second run's nonces must still be accepted
		c := base
		c.Mode, c.Count = loadgen.Register, n
		rep := run(t, c)
		if rep.Sent != n || rep.Replies != n || rep.BadAuth != 0 {
			t.Errorf("register: sent %d notifies %d bad-auth %d", rep.Sent, rep.Replies, rep.BadAuth)
		}
	}
	if got := counter(reg, "registers_accepted", ""); got != 2500 {
		t.Errorf("lispd accepted %d Map-Registers, want 2500", got)
	}

	c := base
	c.Mode, c.Count = loadgen.Request, 2000
	rep := run(t, c)
	if rep.Replies != 2000 || rep.Negative != 0 {
		t.Errorf("request: replies %d negative %d", rep.Replies, rep.Negative)
	}

	ligQuery := func(eid string) *lig.Result {
		t.Helper()
		res, err := lig.Query(context.Background(), lig.Options{EID: netip.MustParseAddr(eid), MapResolver: target,
			Timeout: time.Second})
		if err != nil {
			t.Fatalf("lig %s: %v", eid, err)
		}
		return res
	}
	res := ligQuery("198.18.3.231") // the 1000th /32
	if rec := res.Reply.Records[0]; res.Negative() || rec.PrefixString() != "198.18.3.231/32" || rec.Authoritative ||
		len(rec.Locators) != 1 || rec.Locators[0].Address.IP != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("lig of a registered EID: %v", res.Reply)
	}
	res = ligQuery("198.19.0.1")
	if rec := res.Reply.Records[0]; !res.Negative() || rec.Action != wire.ActionNativelyForward {
		t.Errorf("lig of an unregistered EID: %v", res.Reply)
	}

	notifies := counter(reg, "notifies_sent", "")
	for _, kind := range []loadgen.FloodKind{loadgen.FloodBadAuth, loadgen.FloodGarbage} {
		c := base
		c.Mode, c.FloodKind, c.Count, c.Rate = loadgen.Flood, kind, 5000, 100000
		run(t, c)
	}
	time.Sleep(50 * time.Millisecond)
	if n := counter(reg, "notifies_sent", ""); n != notifies {
		t.Errorf("lispd sent %d Map-Notifies during the flood", n-notifies)
	}
	rejected := counter(reg, "registers_rejected", "")
	t.Logf("lispd rejected %d Map-Registers (bad-auth %d, unknown key %d)", rejected,
		counter(reg, "registers_rejected", "bad-auth"), counter(reg, "registers_rejected", "unknown-key-id"))
	if rejected == 0 {
		t.Error("lispd rejected no Map-Register of the flood")
	}
	if res := ligQuery("198.18.0.7"); res.Negative() {
		t.Error("lispd no longer answers after the flood")
	}
}

// TestLISPSECAgainstLispd drives lispd's Map-Server with LISP-SEC protected
// Map-Requests: with the key it shares with lispd every proxy and negative
// reply is signed and verifies; with another key lispd cannot unwrap the
// OTK, answers nothing and counts the drops; a Map-Server without LISP-SEC
// keys answers unsigned, which bench counts as bad-auth, not as replies.
func TestLISPSECAgainstLispd(t *testing.T) {
	key := []byte("s3cret")
	sites := []mapserver.Site{{Name: "bench",
		Keys:     []mapserver.Key{{ID: 1, Alg: wire.AuthHMACSHA256, Secret: key}},
		Prefixes: []mapserver.SitePrefix{{EID: mapping.NewEID(0, netip.MustParsePrefix("198.18.0.0/15")), AcceptMoreSpecifics: true}},
	}}
	target, reg := lispdWith(t, sites, lispsec.Keys{4: []byte("itr-key")})
	base := loadgen.Config{Target: target, Prefixes: 100, Sockets: 2, Rate: 20000, Drain: 500 * time.Millisecond}
	c := base
	c.Mode, c.Count, c.KeyID, c.Secret, c.ProxyReply = loadgen.Register, 100, 1, key, true
	if rep := run(t, c); rep.Replies != 100 {
		t.Fatalf("register: %d notifies", rep.Replies)
	}

	c = base
	c.Mode, c.Count, c.LISPSEC, c.KeyID, c.Secret = loadgen.Request, 1000, true, 4, []byte("itr-key")
	if rep := run(t, c); rep.Replies != 1000 || rep.BadAuth != 0 || rep.Negative != 0 {
		t.Errorf("lisp-sec request: replies %d bad-auth %d negative %d", rep.Replies, rep.BadAuth, rep.Negative)
	}
	c.EIDBase, c.Count = netip.MustParseAddr("203.0.113.0"), 200 // not a site's: signed negative replies
	if rep := run(t, c); rep.Replies != 200 || rep.Negative != 200 {
		t.Errorf("lisp-sec request, unregistered: replies %d negative %d", rep.Replies, rep.Negative)
	}
	if n := counter(reg, "lispsec_replies", ""); n != 1200 {
		t.Errorf("lispd signed %d replies, want 1200", n)
	}

	c.EIDBase, c.Secret, c.Count, c.Drain = netip.Addr{}, []byte("wrong"), 100, 200*time.Millisecond
	if rep := run(t, c); rep.Replies != 0 || rep.Received != 0 {
		t.Errorf("wrong key: replies %d received %d", rep.Replies, rep.Received)
	}
	if n := counter(reg, "lispsec_requests_dropped", ""); n != 100 {
		t.Errorf("lispd dropped %d requests with a wrong key, want 100", n)
	}

	plain, _ := lispd(t, sites) // no LISP-SEC keys: answers unsigned
	c = base
	c.Target, c.Mode, c.Count, c.LISPSEC, c.KeyID, c.Secret = plain, loadgen.Request, 100, true, 4, []byte("itr-key")
	if rep := run(t, c); rep.Replies != 0 || rep.BadAuth != 100 {
		t.Errorf("unsigned replies: replies %d bad-auth %d", rep.Replies, rep.BadAuth)
	}
}
