package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/mapserver"
	"github.com/lispd/lispd/internal/testvectors"
	"github.com/lispd/lispd/internal/xtr"
	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a daemon from a YAML config on 127.0.0.1 with a random port
// and an admin socket in a temporary directory.
func start(t testing.TB, yaml string) (*Daemon, netip.AddrPort, string) {
	t.Helper()
	n := lisptest.Start(t, "control: {addresses: [127.0.0.1], port: 0}\n"+yaml, newWith(Options{}))
	return n.D, n.D.ControlAddrs()[0], n.Socket
}

// startNode runs one daemon from a full YAML config with the given data
// plane.
func startNode(t testing.TB, yaml string, dp xtr.DataPlane) *Daemon {
	t.Helper()
	return lisptest.Start(t, yaml, newWith(Options{DataPlane: dp})).D
}

func newWith(opts Options) func(*config.Config) (*Daemon, error) {
	return func(c *config.Config) (*Daemon, error) { return New(c, opts) }
}

// peer is a UDP socket standing in for an xTR.
type peer struct {
	t *testing.T
	c *net.UDPConn
}

func newPeer(t *testing.T) *peer {
	return newPeerAt(t, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0))
}

// newPeerAt binds a peer to at: an ETR the Map-Server forwards Map-Requests
// to must listen on port 4342 of the address it registered from, so a test
// gives it a loopback address of its own.
func newPeerAt(t *testing.T, at netip.AddrPort) *peer {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(at))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, c: c}
}

func (p *peer) addr() netip.AddrPort { return p.c.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *peer) send(b []byte, to netip.AddrPort) {
	if _, err := p.c.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
}

// recv waits for one message; nil on timeout.
func (p *peer) recv(timeout time.Duration) []byte {
	p.c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 9000)
	n, _, err := p.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

const oorConfig = `
map-server:
  sites:
    # Open Overlay Router 1.3 sends random nonces: its sites opt out of
    # the nonce check (the window of recent registrations protects them).
    - name: oor-a
      require-nonce-increase: false
      keys: [{key-id: 0, algorithm: hmac-sha-1-96, secret: password}]
      eid-prefixes:
        - {prefix: 203.0.113.0/24}
        - {prefix: "2001:db8:1::/64"}
    - name: oor-b
      require-nonce-increase: false
      keys: [{key-id: 0, algorithm: hmac-sha-1-96, secret: password}]
      eid-prefixes:
        - {prefix: 198.51.100.0/24}
        - {prefix: "2001:db8:2::/64"}
map-resolver: {}
`

// TestOORRegistersReplayed replays Open Overlay Router's Map-Registers and
// checks each is answered with a Map-Notify that verifies with the key and
// that Wireshark decodes cleanly.
func TestOORRegistersReplayed(t *testing.T) {
	raw := testvectors.Read(t, "oor/oor-capture.vectors.json")
	var f struct {
		Vectors []struct {
			Types   []int  `json:"lisp_types"`
			Payload string `json:"udp_payload_hex"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	d, addr, _ := start(t, oorConfig)
	p := newPeer(t)
	var notifies [][]byte
	for _, v := range f.Vectors {
		if len(v.Types) != 1 || v.Types[0] != int(wire.TypeMapRegister) {
			continue
		}
		b, _ := hex.DecodeString(v.Payload)
		p.send(b, addr)
		n := p.recv(2 * time.Second)
		if n == nil {
			t.Fatalf("no Map-Notify for %x", b)
		}
		if err := wire.Verify(n, []byte("password"), wire.AuthOptions{}); err != nil {
			t.Errorf("Map-Notify does not verify: %v", err)
		}
		m, err := wire.Decode(n)
		if err != nil {
			t.Fatal(err)
		}
		reg, _ := wire.Decode(b)
		if mn, ok := m.(*wire.MapNotify); !ok || mn.Nonce != reg.(*wire.MapRegister).Nonce {
			t.Errorf("answer %v to %v", m, reg)
		}
		notifies = append(notifies, n)
	}
	if len(notifies) != 4 {
		t.Fatalf("%d Map-Notifies, want 4", len(notifies))
	}
	if n := d.MapServer().Registrations(); n != 4 {
		t.Errorf("%d registrations, want 4", n)
	}
	tsharkClean(t, notifies, addr, p.addr())
}

func tsharkClean(t *testing.T, msgs [][]byte, from, to netip.AddrPort) {
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Log("tshark not installed: Wireshark check skipped")
		return
	}
	path := filepath.Join(t.TempDir(), "notify.pcap")
	// Wireshark recognises LISP by port: the capture uses 4342 both ways.
	from, to = netip.AddrPortFrom(from.Addr(), 4342), netip.AddrPortFrom(to.Addr(), 4342)
	var pkts []lisptest.UDP
	for _, m := range msgs {
		pkts = append(pkts, lisptest.UDP{Src: from, Dst: to, Payload: m})
	}
	lisptest.WritePcap(t, path, pkts...)
	if p := lisptest.TsharkProblems(t, bin, path); p != "" {
		t.Errorf("tshark finds malformed frames: %s", p)
	}
	out, _ := exec.Command(bin, "-n", "-r", path, "-T", "fields", "-e", "lisp.type").Output()
	if strings.Count(string(out), "4\n") != len(msgs) {
		t.Errorf("tshark types: %q", out)
	}
}

const twoSites = `
map-server:
  registration-timeout: 3m
  sites:
    - name: dc1
      keys:
        - {key-id: 1, algorithm: hmac-sha-256-128, secret: s3cret}
        - {key-id: 2, algorithm: hmac-sha-1-96, secret: old}
      eid-prefixes: [{prefix: 198.51.100.0/24, accept-more-specifics: true}]
    - name: dc2
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: other}]
      eid-prefixes: [{prefix: 203.0.113.0/24, instance-id: 1000}]
map-resolver: {}
`

func register(t testing.TB, eid string, iid uint32, rloc string, key []byte, keyID uint8, alg wire.AuthAlg, nonce uint64, proxy bool) []byte {
	t.Helper()
	p := netip.MustParsePrefix(eid)
	a := wire.AddrFromIP(p.Addr())
	if iid != 0 {
		a = wire.AddrWithIID(iid, a)
	}
	m := &wire.MapRegister{WantMapNotify: true, ProxyReply: proxy, AuthBody: wire.AuthBody{Nonce: nonce, KeyID: keyID, Algorithm: alg,
		Records: []wire.EIDRecord{{TTL: 1440, MaskLen: uint8(p.Bits()), Authoritative: true, EID: a,
			Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255, Flags: wire.LocatorReachable,
				Address: wire.AddrFromIP(netip.MustParseAddr(rloc))}}}}}}
	b, err := wire.EncodeSigned(m, key, wire.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ecmRequest(t testing.TB, eid string, iid uint32, itr netip.AddrPort, nonce uint64) []byte {
	t.Helper()
	ip := netip.MustParseAddr(eid)
	a := wire.AddrFromIP(ip)
	if iid != 0 {
		a = wire.AddrWithIID(iid, a)
	}
	req := &wire.MapRequest{Nonce: nonce, SourceEID: wire.AddrFromIP(itr.Addr()), ITRRLOCs: []wire.Address{wire.AddrFromIP(itr.Addr())},
		Records: []wire.RequestRecord{{MaskLen: uint8(ip.BitLen()), EID: a}}}
	e := &wire.ECM{IP: wire.InnerIP{Src: itr.Addr(), Dst: ip, TTL: 64}, SrcPort: itr.Port(), DstPort: 4342, Message: req}
	b, err := wire.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDaemonRegisterResolveShow(t *testing.T) { registerResolveShow(t) }

// The test owns every peer it talks to: with a stranger on 127.0.0.1:4342
// (a lispd a user runs, another test's daemon) it passes the same, and the
// stranger hears nothing. (A stranger already there makes the plain test
// this one.)
func TestDaemonRegisterResolveShowBesideAStranger(t *testing.T) {
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4342})
	if err != nil {
		t.Skipf("127.0.0.1:4342 is taken already (%v): TestDaemonRegisterResolveShow runs beside that stranger", err)
	}
	heard := make(chan []byte, 16)
	done := make(chan struct{})
	go func() {
		// Answer everything the way a confused lispd would: with a
		// Map-Reply to whoever asked, and to the ITR of an ECM.
		defer close(done)
		buf := make([]byte, 9000)
		for {
			n, from, err := stranger.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			heard <- append([]byte(nil), buf[:n]...)
			reply, _ := wire.Encode(&wire.MapReply{Nonce: 100})
			stranger.WriteToUDPAddrPort(reply, from)
			if m, err := wire.Decode(buf[:n]); err == nil {
				if e, ok := m.(*wire.ECM); ok {
					stranger.WriteToUDPAddrPort(reply, netip.AddrPortFrom(e.IP.Src, e.SrcPort))
				}
			}
		}
	}()
	defer func() { stranger.Close(); <-done }()
	registerResolveShow(t)
	select {
	case b := <-heard:
		t.Errorf("the stranger on 127.0.0.1:4342 was sent %x", b)
	default:
	}
}

// registerResolveShow registers two sites' prefixes, resolves through the
// Map-Resolver (a proxy reply, a request forwarded to the ETR, a negative
// reply) and reads the result back through the admin API.
func registerResolveShow(t *testing.T) {
	d, addr, sock := start(t, twoSites)
	// The ETR registers from port 4342 of a loopback address of its own,
	// where the Map-Server forwards the Map-Requests it does not answer.
	etr := newPeerAt(t, netip.AddrPortFrom(lisptest.LoopbackAddrs(t, 1, 4342)[0], 4342))
	// Both algorithms, two keys of one site.
	etr.send(register(t, "198.51.100.0/24", 0, "192.0.2.11", []byte("s3cret"), 1, wire.AuthHMACSHA256, 1, true), addr)
	if etr.recv(2*time.Second) == nil {
		t.Fatal("no Map-Notify (SHA-256)")
	}
	etr.send(register(t, "198.51.100.128/25", 0, "192.0.2.12", []byte("old"), 2, wire.AuthHMACSHA1, 2, false), addr)
	if etr.recv(2*time.Second) == nil {
		t.Fatal("no Map-Notify (SHA-1)")
	}
	// Rejections: bad key, truncated.
	etr.send(register(t, "198.51.100.0/24", 0, "192.0.2.11", []byte("wrong"), 1, wire.AuthHMACSHA256, 3, true), addr)
	good := register(t, "203.0.113.0/24", 1000, "192.0.2.13", []byte("other"), 1, wire.AuthHMACSHA256, 4, true)
	etr.send(good[:30], addr)
	if b := etr.recv(300 * time.Millisecond); b != nil {
		t.Fatalf("answered a bad registration: %x", b)
	}
	// Resolve through the Map-Resolver: proxy reply from the Map-Server.
	itr := newPeer(t)
	itr.send(ecmRequest(t, "198.51.100.20", 0, itr.addr(), 99), addr)
	b := itr.recv(2 * time.Second)
	if b == nil {
		t.Fatal("no Map-Reply")
	}
	m, _ := wire.Decode(b)
	rep, ok := m.(*wire.MapReply)
	if !ok || rep.Nonce != 99 || rep.Records[0].PrefixString() != "198.51.100.0/24" {
		t.Fatalf("reply: %v", m)
	}
	// Not proxied: the ECM is forwarded, unchanged, to the ETR.
	fwd := ecmRequest(t, "198.51.100.200", 0, itr.addr(), 100)
	itr.send(fwd, addr)
	if b := etr.recv(2 * time.Second); !bytes.Equal(b, fwd) {
		t.Fatalf("ETR got %x, want the ECM %x", b, fwd)
	}
	// Negative, outside every prefix.
	itr.send(ecmRequest(t, "192.0.2.99", 0, itr.addr(), 101), addr)
	b = itr.recv(2 * time.Second)
	m, _ = wire.Decode(b)
	if rep, ok := m.(*wire.MapReply); !ok || rep.Nonce != 101 || len(rep.Records) != 1 || rep.Records[0].TTL != 15 ||
		len(rep.Records[0].Locators) != 0 {
		t.Fatalf("negative reply: %v", m)
	}

	c := adminapi.NewClient(sock)
	sites, err := c.Sites(context.Background(), "dc1")
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) != 1 || len(sites[0].Registrations) != 2 || sites[0].AuthFailures != 1 {
		t.Fatalf("show site dc1: %+v", sites)
	}
	stats, err := c.Statistics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"control.packets_dropped/malformed": 1, "map_server.registers_rejected/bad-auth": 1,
		"map_server.requests_forwarded/": 1, "map_server.proxy_replies/": 1, "map_resolver.negative_replies/": 1,
		"map_server.registers_accepted/": 2}
	for _, s := range stats {
		k := s.Subsystem + "." + s.Name + "/" + s.Labels["reason"]
		if w, ok := want[k]; ok {
			if s.Value != w {
				t.Errorf("%s.%s = %d, want %d", s.Subsystem, k, s.Value, w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 {
		t.Errorf("counters missing: %v", want)
	}
	_ = d
}

// TestReloadAddsSiteKeepsRegistrations: a reload that adds a site leaves
// the registrations of the others alone and accepts the new site at once.
func TestReloadAddsSiteKeepsRegistrations(t *testing.T) {
	d, addr, _ := start(t, twoSites)
	etr := newPeer(t)
	etr.send(register(t, "198.51.100.0/24", 0, "192.0.2.11", []byte("s3cret"), 1, wire.AuthHMACSHA256, 1, true), addr)
	if etr.recv(2*time.Second) == nil {
		t.Fatal("no Map-Notify")
	}
	newSite := `    - name: dc3
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc3key}]
      eid-prefixes: [{prefix: 192.0.2.128/25}]
map-resolver: {}
`
	yaml := strings.Replace(twoSites, "map-resolver: {}\n", newSite, 1)
	full := fmt.Sprintf("admin: {socket: %s}\ncontrol: {addresses: [127.0.0.1], port: 0}\n%s", d.cfg.Admin.Socket, yaml)
	cfg, err := config.Parse([]byte(full), d.cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MapServer.StateDirectory = d.cfg.MapServer.StateDirectory // opened at start, as lisptest chose
	res, err := d.Reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.SitesAdded, []string{"dc3"}) || !slices.Equal(res.Applied["map-server"], []string{"map-server.sites"}) {
		t.Errorf("reload answered %+v", res)
	}
	if n := d.MapServer().Registrations(); n != 1 {
		t.Errorf("%d registrations after reload, want 1", n)
	}
	etr.send(register(t, "192.0.2.128/25", 0, "192.0.2.11", []byte("dc3key"), 1, wire.AuthHMACSHA256, 2, false), addr)
	if etr.recv(2*time.Second) == nil {
		t.Fatal("new site not accepted after reload")
	}
	if len(d.MapServer().Sites("dc3")) != 1 {
		t.Error("dc3 not shown")
	}
}

// The replay state of the Map-Server survives a restart of lispd (issue
// 12, finding 2): a Map-Register captured before is refused after, the
// xTR's next one is accepted.
func TestReplayStateSurvivesRestart(t *testing.T) {
	state := t.TempDir()
	yaml := strings.Replace(twoSites, "map-server:\n", "map-server:\n  state-directory: "+state+"\n", 1)
	d, addr, _ := start(t, yaml)
	etr := newPeer(t)
	captured := register(t, "198.51.100.0/24", 0, "192.0.2.11", []byte("s3cret"), 1, wire.AuthHMACSHA256, 5, false)
	etr.send(captured, addr)
	if etr.recv(2*time.Second) == nil {
		t.Fatal("no Map-Notify")
	}
	d.Stop()
	lisptest.Eventually(t, 5*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(state, mapserver.StateFile))
		return err == nil && strings.Contains(string(b), `"nonce":5`)
	}, "replay state not saved at stop")
	_, addr, _ = start(t, yaml)
	etr.send(captured, addr)
	if etr.recv(500*time.Millisecond) != nil {
		t.Error("a Map-Register captured before the restart was accepted after it")
	}
	etr.send(register(t, "198.51.100.0/24", 0, "192.0.2.11", []byte("s3cret"), 1, wire.AuthHMACSHA256, 6, false), addr)
	if etr.recv(2*time.Second) == nil {
		t.Error("the xTR's next Map-Register refused after the restart")
	}
}

// A Map-Server that cannot write its state directory says so at start.
func TestUnwritableStateDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("control: {addresses: [127.0.0.1], port: 0}\nadmin: {socket: "+filepath.Join(filepath.Dir(file), "s.sock")+"}\n"+
		strings.Replace(twoSites, "map-server:\n", "map-server:\n  state-directory: "+file+"/state\n", 1)), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "map-server.state-directory") || !strings.Contains(err.Error(), file) {
		t.Errorf("New: %v", err)
	}
}
