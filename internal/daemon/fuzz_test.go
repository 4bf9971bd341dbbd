package daemon

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/internal/testvectors"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

// The daemon the fuzz target drives has every role: a Map-Server with
// three sites (one for the co-located xTR's own prefix, one written before
// RFC 9301 that opts out of increasing nonces), a Map-Resolver, and an
// xTR (ITR, ETR, pub/sub subscriber) with a database. It listens on
// loopback but its sockets are never read: the fuzz input goes straight
// into handle, the function the transport calls per datagram, and what
// the daemon sends on its own (publications, forwarded requests,
// registrations) reaches an in-memory sender. The admin socket and the
// Map-Server's state are in a temporary directory. The per-destination limit
// is low so that it bites within a run; the per-source limits are high so
// that they do not hide the rest of the dispatch.
const fuzzYAML = `
admin: {socket: %[1]s/lispd.sock}
control:
  addresses: [127.0.0.1]
  port: 0
  rate-limit: {per-source: 1000000, per-source-burst: 1000000, global: 1000000, global-burst: 1000000,
               per-destination: 10, per-destination-burst: 20}
map-server:
  state-directory: %[1]s/state
  lisp-sec-keys: [{key-id: 1, secret: itrkey}]
  rtrs: [198.51.100.77]
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
      eid-prefixes:
        - {prefix: 198.51.100.0/24, accept-more-specifics: true}
        - {prefix: 2001:db8:1::/48, accept-more-specifics: true}
        - {prefix: 198.51.100.0/24, instance-id: 7}
    - name: legacy
      require-nonce-increase: false
      keys: [{key-id: 2, algorithm: hmac-sha-1-96, secret: oldkey}]
      eid-prefixes: [{prefix: 198.18.0.0/16, accept-more-specifics: true}]
    - name: self
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
      eid-prefixes: [{prefix: 203.0.113.0/24}]
map-resolver: {}
xtr:
  itr: true
  etr: true
  subscribe: true
  map-resolvers: [192.0.2.1]
  map-servers: [{address: 192.0.2.1, key-id: 1, algorithm: hmac-sha-256-128, secret: dc1key}]
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: 192.0.2.10, priority: 1, weight: 100}]
rtr: {map-servers: [192.0.2.1, 198.51.100.77]}
`

// fuzzITRKey is the LISP-SEC key of the ITRs' Map-Resolver, in the seeds'
// ECM ADs.
const fuzzITRKey = "itrkey"

// Where fuzzed datagrams come from, and the address of ours they reach.
// The daemon's guard is told that 192.0.2.1 and 2001:db8::1 are ours.
var fuzzPeers = [4]struct{ src, local netip.AddrPort }{
	{netip.MustParseAddrPort("192.0.2.21:61000"), netip.MustParseAddrPort("192.0.2.1:4342")},
	{netip.MustParseAddrPort("198.51.100.77:4342"), netip.MustParseAddrPort("192.0.2.1:4342")},
	{netip.MustParseAddrPort("[2001:db8::21]:61000"), netip.MustParseAddrPort("[2001:db8::1]:4342")},
	{netip.MustParseAddrPort("127.0.0.1:61000"), netip.AddrPort{}}, // local: the daemon's loopback socket
}

var fuzzOurs = []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}

// Fuzz input modes (the mode byte).
const (
	fuzzECM      = 1 << 0 // wrap the bytes in an ECM with good inner checksums, as an ITR would
	fuzzPeerMask = 3 << 1 // which of fuzzPeers sends
	fuzzSign     = 1 << 3 // re-sign a Map-Register/Notify/Notify-Ack with the key its Key ID names
	fuzzSecAD    = 1 << 4 // with fuzzECM: the first byte n, then n bytes of LISP-SEC AD (S set)
)

// stepLimit bounds the time one input may take.
const stepLimit = 10 * time.Second

// fuzzClock is the daemon's clock: it moves only when the input says.
type fuzzClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fuzzClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fuzzClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fuzzDaemon is the daemon under fuzzing and what the invariants need.
type fuzzDaemon struct {
	d     *Daemon
	out   *lisptest.Sender // what the daemon sends on its own
	clock *fuzzClock
	local netip.AddrPort // the loopback control socket
	// perDest counts the Map-Replies and Map-Notifies each destination
	// got, and when it got the first, to check the per-destination limit.
	perDest map[netip.Addr]*destCount
	rate    float64
	burst   int
}

type destCount struct {
	first time.Time
	n     int
}

// newFuzzDaemon builds the daemon with New, as lispd does, from fuzzYAML.
func newFuzzDaemon(tb testing.TB) *fuzzDaemon {
	tb.Helper()
	dir := tb.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(fuzzYAML, dir)), "fuzz.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fuzzDaemon{out: &lisptest.Sender{}, clock: &fuzzClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		perDest: map[netip.Addr]*destCount{}, rate: cfg.Control.RateLimit.PerDestination,
		burst: cfg.Control.RateLimit.PerDestinationBurst}
	d, err := New(cfg, Options{Now: f.clock.Now, Sender: f.out, DataPlane: xtr.NopDataPlane{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		d.transport.Close()
		d.ms.Close()
		d.admin.Close()
	})
	f.d = d
	f.local = d.ControlAddrs()[0]
	d.guard.SetOwn(append(fuzzOurs, f.local.Addr()))
	return f
}

// rawMessage is fuzzed bytes as an ECM's inner message.
type rawMessage []byte

func (m rawMessage) Type() wire.MessageType {
	if len(m) == 0 {
		return 0
	}
	return wire.MessageType(m[0] >> 4)
}
func (m rawMessage) Len() int                        { return len(m) }
func (m rawMessage) Append(b []byte) ([]byte, error) { return append(b, m...), nil }
func (m rawMessage) String() string                  { return "raw " + hex.EncodeToString(m) }

// datagram turns one fuzz input into what the transport would hand
// handle: the bytes (wrapped in an ECM, re-signed, as mode says) and the
// addresses.
func (f *fuzzDaemon) datagram(mode uint8, data []byte) ([]byte, netip.AddrPort, netip.AddrPort) {
	peer := fuzzPeers[(mode&fuzzPeerMask)>>1]
	src, local := peer.src, peer.local
	if !local.IsValid() {
		local = f.local
	}
	var ad []byte
	if mode&fuzzECM != 0 && mode&fuzzSecAD != 0 && len(data) > 0 {
		n := min(int(data[0]), len(data)-1)
		ad, data = data[1:1+n], data[1+n:]
	}
	if mode&fuzzSign != 0 && len(data) >= 16 {
		data = append([]byte(nil), data...)
		secret := []byte("dc1key")
		if data[12] == 2 { // Key ID of the legacy site
			secret = []byte("oldkey")
		}
		_ = wire.Sign(data, secret, wire.AuthOptions{}) // a message it cannot sign goes as it is
	}
	if mode&fuzzECM == 0 {
		return data, src, local
	}
	eid := netip.MustParseAddr("198.51.100.7")
	if src.Addr().Is6() {
		eid = netip.MustParseAddr("2001:db8:1::7")
	}
	ecm := &wire.ECM{Security: len(ad) > 0, SecurityAD: ad, IP: wire.InnerIP{Src: src.Addr(), Dst: eid, TTL: 64},
		SrcPort: src.Port(), DstPort: wire.ControlPort, Message: rawMessage(data)}
	b, err := wire.Encode(ecm)
	if err != nil {
		return data, src, local // too long for an inner header: the bytes bare
	}
	return b, src, local
}

// counterSum is the sum of the samples of one metric.
func counterSum(reg *stats.Registry, subsystem, name string) uint64 {
	var n uint64
	for _, s := range reg.Snapshot() {
		if s.Desc.Subsystem == subsystem && s.Desc.Name == name {
			n += s.Value
		}
	}
	return n
}

// total adds up counters (the dispatch's by type or by reason).
func total(cs []*stats.Counter) uint64 {
	var n uint64
	for _, c := range cs {
		if c != nil {
			n += c.Load()
		}
	}
	return n
}

// step feeds one input to the daemon and checks the invariants: nothing
// panics; every datagram is counted received once, and one that does not
// decode is counted dropped exactly once; the daemon's transmit counter
// agrees with what it queued and sent; no Map-Reply or Map-Notify goes to
// an address the reply guard must refuse (not global unicast, loopback
// for a request from the network, one of our own addresses named by
// someone else) or to port 0; no destination gets more of them than the
// per-destination bucket allows.
func (f *fuzzDaemon) step(t *testing.T, mode, clock uint8, data []byte) {
	d := f.d
	// One datagram that keeps the daemon busy this long is a denial of
	// service: crash with every goroutine's stack, so that the fuzzer
	// keeps the input.
	watchdog := time.AfterFunc(stepLimit, func() {
		debug.SetTraceback("all")
		panic(fmt.Sprintf("one input took over %v: mode %#x clock %d data %x", stepLimit, mode, clock, data))
	})
	defer watchdog.Stop()
	if clock > 0 {
		// The timers' work, at the time the input says: expiry,
		// retransmissions, registrations, probes.
		f.clock.advance(time.Duration(clock) * 4 * time.Second)
		txBefore := d.c.tx.Load()
		d.ms.Tick()
		d.xtr.Tick()
		ticked := f.out.Take()
		if got := d.c.tx.Load() - txBefore; got != uint64(len(ticked)) {
			t.Fatalf("timers: transmit counter +%d, %d messages sent", got, len(ticked))
		}
		for _, m := range ticked {
			f.checkSent(t, m, netip.AddrPort{})
		}
	}
	raw, src, local := f.datagram(mode, data)
	rx, tx := d.c.rxPackets.Load(), d.c.tx.Load()
	received, dropped := total(d.c.rx[:]), total(d.c.drops[:])

	out := &control.Out{Guard: d.guard}
	d.handle(&control.Request{Raw: raw, Src: src, Local: local}, out)

	if got := d.c.rxPackets.Load() - rx; got != 1 {
		t.Fatalf("received packets +%d, want 1", got)
	}
	decoded := total(d.c.rx[:]) - received
	if decoded > 1 {
		t.Fatalf("one datagram counted as %d messages", decoded)
	}
	if drops := total(d.c.drops[:]) - dropped; decoded == 0 && drops != 1 {
		t.Fatalf("an undecoded datagram counted dropped %d times", drops)
	}
	bg := f.out.Take()
	if got, want := d.c.tx.Load()-tx, uint64(out.Len()+len(bg)); got != want {
		t.Fatalf("transmit counter +%d, but %d answers queued and %d messages sent", got, out.Len(), len(bg))
	}
	out.Each(func(b []byte, from netip.Addr, to netip.AddrPort) {
		f.checkSent(t, lisptest.Sent{B: b, Src: from, To: to}, src)
	})
	for _, m := range bg {
		f.checkSent(t, m, src)
	}
}

// checkSent applies the destination invariants to one message sent while
// handling a datagram from reqSrc (invalid: sent by a timer).
func (f *fuzzDaemon) checkSent(t *testing.T, m lisptest.Sent, reqSrc netip.AddrPort) {
	if !m.To.Addr().IsValid() || m.To.Port() == 0 {
		t.Fatalf("sent %d bytes to %v", len(m.B), m.To)
	}
	if len(m.B) == 0 {
		return
	}
	typ := wire.MessageType(m.B[0] >> 4)
	if typ != wire.TypeMapReply && typ != wire.TypeMapNotify {
		return
	}
	to := m.To.Addr().Unmap()
	from := m.Src.Unmap()
	switch {
	case !to.IsLoopback() && !to.IsGlobalUnicast(),
		to.Is4() && (to.As4()[0] == 0 || to.As4()[0] >= 240):
		t.Fatalf("%s sent to %v: not a global unicast address", typ, m.To)
	case to.IsLoopback() && from.IsValid() && !from.IsUnspecified() && !from.IsLoopback():
		t.Fatalf("%s sent from %v to loopback %v", typ, from, m.To)
	case typ == wire.TypeMapReply && reqSrc.IsValid() && to != reqSrc.Addr() && isOurs(to):
		t.Fatalf("Map-Reply sent to our own address %v at the request of %v", m.To, reqSrc)
	}
	now := f.clock.Now()
	c := f.perDest[to]
	if c == nil {
		if len(f.perDest) >= control.DefaultGuardDestinations/2 {
			return // past what the guard remembers, the bound does not hold
		}
		c = &destCount{first: now}
		f.perDest[to] = c
	}
	c.n++
	if allowed := float64(f.burst) + f.rate*now.Sub(c.first).Seconds(); float64(c.n) > allowed+1 {
		t.Fatalf("%v got %d Map-Replies and Map-Notifies in %v; the per-destination limit allows %.0f",
			to, c.n, now.Sub(c.first), allowed)
	}
}

func isOurs(a netip.Addr) bool {
	for _, o := range fuzzOurs {
		if a == o {
			return true
		}
	}
	return false
}

// fuzzSeeds are the corpus: every packet of testdata/vectors (OOR and
// hand-made captures, synthetic and OpenDaylight vectors), bare and in an
// ECM, and encoded examples of every message type addressed to this
// daemon's sites and keys.
func fuzzSeeds(f *testing.F) {
	var payloads [][]byte
	for _, name := range []string{"handmade.vectors.json", "oor/oor-capture.vectors.json"} {
		for _, v := range testvectors.JSON(f, name).Vectors {
			payloads = append(payloads, v.Payload)
		}
	}
	for _, name := range []string{"synthetic/vectors.txt", "odl/odl-vectors.txt"} {
		for _, line := range strings.Split(string(testvectors.Read(f, name)), "\n") {
			if _, hx, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				line = hx
			}
			if b, err := hex.DecodeString(strings.TrimSpace(line)); err == nil && len(b) > 0 {
				payloads = append(payloads, b)
			}
		}
	}
	for _, b := range payloads {
		f.Add(uint8(0), uint8(0), b)
		f.Add(uint8(fuzzECM), uint8(0), b)
	}
	for _, s := range fuzzExamples(f) {
		f.Add(s.mode, s.clock, s.b)
	}
}

type fuzzSeed struct {
	mode, clock uint8
	b           []byte
}

// fuzzExamples are messages this daemon acts on: registrations (with
// want-map-notify, proxy reply, xTR-ID), resolutions in ECMs (registered,
// unregistered, the xTR's own prefix, a pub/sub subscription, with a
// LISP-SEC AD), RLOC-probes, SMRs, Map-Notifies from the Map-Server, a
// Map-Notify-Ack, Map-Replies, a Map-Referral and an Info-Request.
func fuzzExamples(f testing.TB) []fuzzSeed {
	enc := func(m wire.Message) []byte {
		b, err := wire.Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	signed := func(m wire.Message, key string) []byte {
		b, err := wire.EncodeSigned(m, []byte(key), wire.AuthOptions{})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	ip := netip.MustParseAddr
	loc := func(a string) wire.Locator {
		return wire.Locator{Priority: 1, Weight: 100, MPriority: 255, Flags: wire.LocatorLocal | wire.LocatorReachable,
			Address: wire.AddrFromIP(ip(a))}
	}
	rec := func(eid string, ml uint8, locs ...string) wire.EIDRecord {
		r := wire.EIDRecord{TTL: 1440, MaskLen: ml, Authoritative: true, EID: wire.AddrFromIP(ip(eid))}
		for _, l := range locs {
			r.Locators = append(r.Locators, loc(l))
		}
		return r
	}
	var xtrID [16]byte
	copy(xtrID[:], "fuzz-xtr-id-0001")
	register := func(keyID uint8, alg wire.AuthAlg, proxy bool, nonce uint64, recs ...wire.EIDRecord) wire.Message {
		return &wire.MapRegister{ProxyReply: proxy, WantMapNotify: true, AuthBody: wire.AuthBody{Nonce: nonce,
			KeyID: keyID, Algorithm: alg, Records: recs, HasXTRID: true, XTRID: xtrID, SiteID: 7}}
	}
	request := func(eid string, ml uint8, rlocs ...string) *wire.MapRequest {
		r := &wire.MapRequest{Nonce: 0x1234, Records: []wire.RequestRecord{{MaskLen: ml, EID: wire.AddrFromIP(ip(eid))}}}
		for _, a := range rlocs {
			r.ITRRLOCs = append(r.ITRRLOCs, wire.AddrFromIP(ip(a)))
		}
		return r
	}
	subscribe := request("198.51.100.7", 32, "192.0.2.21")
	subscribe.HasXTRID, subscribe.XTRID, subscribe.SiteID = true, xtrID, 7
	subscribe.Records[0].Notify = true
	probe := request("203.0.113.9", 32, "192.0.2.21")
	probe.Probe = true
	smr := request("203.0.113.9", 32, "192.0.2.21")
	smr.SMR = true
	smr.SourceEID = wire.AddrFromIP(ip("198.51.100.7"))

	// The LISP-SEC ECM AD an ITR sends (fuzzSecAD) with the requests'
	// nonce: its OTK wrapped with the key fuzzITRKey under Key ID 1, which
	// a Map-Server configured with that key unwraps.
	var otk lispsec.OTK
	copy(otk[:], "fuzz one-time ke")
	wrapped, err := lispsec.WrapOTK(wire.SecWrapAESKWHKDF, otk, []byte(fuzzITRKey), 0x1234)
	if err != nil {
		f.Fatal(err)
	}
	ad := &wire.ECMAuthData{RequestedHMAC: wire.SecHMACSHA256128, KeyID: 1, Wrap: wire.SecWrapAESKWHKDF, OTK: wrapped,
		EID: wire.EIDAuthData{KDFOnly: true, KDF: wire.SecKDFHKDFSHA256}}
	sec, err := ad.Append(nil)
	if err != nil {
		f.Fatal(err)
	}
	withAD := func(b []byte) []byte { return append(append([]byte{byte(len(sec))}, sec...), b...) }

	var out []fuzzSeed
	add := func(mode, clock uint8, b []byte) { out = append(out, fuzzSeed{mode, clock, b}) }
	peer := func(i uint8) uint8 { return i << 1 }
	// The ETR of dc1 registers from 192.0.2.21 and 2001:db8::21, with and
	// without proxy reply; the legacy site with a random nonce.
	add(peer(0)|fuzzSign, 0, signed(register(1, wire.AuthHMACSHA256, true, 1<<40,
		rec("198.51.100.0", 24, "192.0.2.21"), rec("198.51.100.128", 25, "192.0.2.22")), "dc1key"))
	add(peer(2)|fuzzSign, 1, signed(register(1, wire.AuthHMACSHA256, false, 2<<40,
		rec("2001:db8:1::", 48, "2001:db8::21")), "dc1key"))
	add(peer(0)|fuzzSign, 0, signed(register(2, wire.AuthHMACSHA1, false, 0x5eed,
		rec("198.18.1.0", 24, "192.0.2.23")), "oldkey"))
	add(peer(3)|fuzzSign, 0, signed(register(1, wire.AuthHMACSHA256, true, 3<<40,
		rec("198.51.100.0", 24, "127.0.0.1")), "dc1key"))
	// Resolutions in ECMs: the inner message only, the harness wraps it.
	for i, m := range []*wire.MapRequest{
		request("198.51.100.7", 32, "192.0.2.21"),
		request("198.51.100.200", 32, "192.0.2.21", "2001:db8::21"),
		request("198.18.1.1", 32, "192.0.2.21"),
		request("198.19.0.1", 32, "192.0.2.21"),
		request("203.0.113.9", 32, "192.0.2.21"),
		request("198.51.100.7", 32, "224.0.0.1", "192.0.2.1", "127.0.0.1", "192.0.2.21"),
		subscribe,
	} {
		add(peer(uint8(i%2))|fuzzECM, 0, enc(m))
		add(peer(uint8(i%2))|fuzzECM|fuzzSecAD, 0, withAD(enc(m)))
	}
	add(peer(2)|fuzzECM, 0, enc(request("2001:db8:1::7", 128, "2001:db8::21")))
	add(peer(3)|fuzzECM, 0, enc(request("198.51.100.7", 32, "127.0.0.1")))
	add(peer(0), 0, enc(probe))
	add(peer(1), 0, enc(smr))
	// Map-Notifies the xTR's Map-Server would send: a registration
	// acknowledged, a publication.
	add(peer(0)|fuzzSign, 0, signed(&wire.MapNotify{AuthBody: wire.AuthBody{Nonce: 7, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
		Records: []wire.EIDRecord{rec("203.0.113.0", 24, "192.0.2.10")}}}, "dc1key"))
	add(peer(0)|fuzzSign, 0, signed(&wire.MapNotify{AuthBody: wire.AuthBody{Nonce: 8, KeyID: 1, Algorithm: wire.AuthHMACSHA256,
		Records: []wire.EIDRecord{rec("198.51.100.0", 24, "192.0.2.21")}, HasXTRID: true, XTRID: xtrID}}, "dc1key"))
	add(peer(0)|fuzzSign, 0, signed(&wire.MapNotifyAck{AuthBody: wire.AuthBody{Nonce: 1 << 40, KeyID: 1,
		Algorithm: wire.AuthHMACSHA256, Records: []wire.EIDRecord{rec("198.51.100.0", 24, "192.0.2.21")}}}, "dc1key"))
	add(peer(0), 0, enc(&wire.MapReply{Nonce: 0x1234, Records: []wire.EIDRecord{rec("198.51.100.0", 24, "192.0.2.21")}}))
	add(peer(0), 255, enc(&wire.MapReply{Nonce: 0x1234, Probe: true, Records: []wire.EIDRecord{rec("203.0.113.0", 24, "192.0.2.10")}}))
	// What no role here takes: a Map-Referral.
	add(peer(0), 0, enc(&wire.MapReferral{Nonce: 9, Records: []wire.EIDRecord{rec("198.51.100.0", 24, "192.0.2.21")}}))
	// NAT traversal: an Info-Request the Map-Server answers (re-signed
	// with dc1's key), and a Map-Register relayed by the RTR 198.51.100.77
	// (peer 1) in an ECM with the N bit.
	add(peer(0)|fuzzSign, 0, enc(&wire.Info{Nonce: 10, KeyID: 1, Algorithm: wire.AuthHMACSHA256, AuthData: make([]byte, 32),
		TTL: 1, MaskLen: 32, EID: wire.AddrFromIP(ip("198.51.100.7"))}))
	relayedInner, err := wire.Decode(signed(register(1, wire.AuthHMACSHA256, true, 1<<41, rec("198.51.100.0", 24, "198.51.100.77")), "dc1key"))
	if err != nil {
		f.Fatal(err)
	}
	add(peer(1), 0, enc(&wire.ECM{ForMS: true, IP: wire.InnerIP{Src: ip("198.18.1.2"), Dst: ip("192.0.2.1"), TTL: 64},
		SrcPort: 40001, DstPort: wire.ControlPort, Message: relayedInner}))
	// The RTR's side: an xTR's Map-Register (ECM with R) for it to relay,
	// and a Map-Notify from a Map-Server (ECM with R) for it to pass on.
	add(peer(0), 0, enc(&wire.ECM{ForETR: true, IP: wire.InnerIP{Src: ip("198.18.1.2"), Dst: ip("192.0.2.1"), TTL: 64},
		SrcPort: 40001, DstPort: wire.ControlPort, Message: relayedInner}))
	relayedNotify, err := wire.Decode(signed(&wire.MapNotify{AuthBody: wire.AuthBody{Nonce: 1 << 41, KeyID: 1,
		Algorithm: wire.AuthHMACSHA256, HasXTRID: true, XTRID: xtrID, Records: []wire.EIDRecord{rec("198.51.100.0", 24, "198.51.100.77")}}}, "dc1key"))
	if err != nil {
		f.Fatal(err)
	}
	add(peer(1), 0, enc(&wire.ECM{ForETR: true, IP: wire.InnerIP{Src: ip("192.0.2.1"), Dst: ip("198.18.1.2"), TTL: 64},
		SrcPort: wire.ControlPort, DstPort: 40001, Message: relayedNotify}))
	return out
}

// FuzzDispatch feeds fuzzed datagrams through the whole control dispatch of
// a daemon with every role (see fuzzYAML and step for the invariants).
// One daemon serves a whole fuzzing process, so its state builds up from
// input to input as a running lispd's does.
func FuzzDispatch(f *testing.F) {
	fuzzSeeds(f)
	fd := newFuzzDaemon(f)
	f.Fuzz(func(t *testing.T, mode, clock uint8, data []byte) {
		fd.step(t, mode, clock, data)
	})
}

// TestFuzzDispatchSeeds: the examples do what they are meant to, so the
// fuzzer starts from messages that reach deep into each role: the
// registrations are accepted, the requests answered.
func TestFuzzDispatchSeeds(t *testing.T) {
	fd := newFuzzDaemon(t)
	for _, s := range fuzzExamples(t) {
		fd.step(t, s.mode, s.clock, s.b)
	}
	reg := fd.d.stats
	for _, c := range []struct {
		subsystem, name string
		min             uint64
	}{
		{"map_server", "registers_accepted", 4},
		{"map_server", "proxy_replies", 1},
		{"map_server", "requests_forwarded", 1},
		{"map_server", "subscriptions_added", 1},
		{"map_server", "publications", 1},
		{"map_server", "lispsec_replies", 1},
		{"map_resolver", "negative_replies", 1},
		{"etr", "map_replies_sent", 1},
		{"itr", "smrs_received", 1},
	} {
		if n := counterSum(reg, c.subsystem, c.name); n < c.min {
			t.Errorf("%s.%s = %d after the examples, want at least %d", c.subsystem, c.name, n, c.min)
		}
	}
	if n := fd.d.c.tx.Load(); n < 10 {
		t.Errorf("the daemon sent %d messages for the examples", n)
	}
	if os.Getenv("LISPD_FUZZ_VERBOSE") != "" {
		for _, s := range reg.Snapshot() {
			if s.Value > 0 {
				t.Logf("%s.%s%v = %d", s.Desc.Subsystem, s.Desc.Name, s.Desc.Labels, s.Value)
			}
		}
	}
}
