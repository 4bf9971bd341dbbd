package mapserver

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/tshark"
	"github.com/lispd/lispd/wire"
)

var (
	natted = netip.MustParseAddrPort("203.0.113.9:61001") // the xTR as its NAT makes it look
	rtrA   = netip.MustParseAddr("192.0.2.50")
	rtrB   = netip.MustParseAddr("192.0.2.51")
)

// infoRequest builds an Info-Request for eid/ml signed with key id/alg/secret.
func infoRequest(t *testing.T, nonce uint64, eid wire.Address, ml, keyID uint8, alg wire.AuthAlg, secret []byte) []byte {
	t.Helper()
	m := &wire.Info{Nonce: nonce, KeyID: keyID, Algorithm: alg, AuthData: make([]byte, alg.DigestLen()), TTL: 0,
		MaskLen: ml, EID: eid}
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Sign(b, secret, wire.AuthOptions{}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) info(raw []byte, src netip.AddrPort) ([]lisptest.Sent, control.DropReason) {
	f.t.Helper()
	dec, err := wire.Decode(raw)
	if err != nil {
		f.t.Fatal(err)
	}
	var out lisptest.Sender
	reason := f.s.HandleInfoRequest(&control.Request{Raw: raw, Msg: dec, Src: src, Local: netip.AddrPortFrom(ms, wire.ControlPort)}, &out)
	return out.Take(), reason
}

func TestInfoReplyCarriesTranslatedAddressAndRTRs(t *testing.T) {
	sites := testSites()
	sites[1].RTRs = []netip.Addr{rtrB} // dc2 has its own RTR
	clk := lisptest.NewClock(time.Unix(1_700_000_000, 0))
	f := &fixture{t: t, clk: clk, timers: &lisptest.Sender{}}
	f.s = New(sites, Options{Now: clk.Now, Sender: f.timers, RTRs: []netip.Addr{rtrA}, InfoTTL: 15})
	f.reg = f.s.opts.Stats

	eid := wire.AddrFromIP(dc1.Prefix.Addr())
	out, reason := f.info(infoRequest(t, 0xfeed, eid, 24, 0, wire.AuthHMACSHA256, secret), natted)
	if reason != control.Handled || len(out) != 1 {
		t.Fatalf("reason %v, sent %d: want one Info-Reply", reason, len(out))
	}
	if out[0].To != natted || out[0].Src != ms {
		t.Errorf("Info-Reply %v -> %v, want %v -> %v (back where the request came from, from where it reached us)", out[0].Src, out[0].To, ms, natted)
	}
	if err := wire.Verify(out[0].B, secret, wire.AuthOptions{}); err != nil {
		t.Errorf("Info-Reply not signed with the site key: %v", err)
	}
	if wire.Verify(out[0].B, []byte("sha1key"), wire.AuthOptions{}) == nil {
		t.Error("Info-Reply verifies with another key")
	}
	m, err := wire.Decode(out[0].B)
	if err != nil {
		t.Fatal(err)
	}
	r := m.(*wire.Info)
	if !r.Reply || r.Nonce != 0xfeed || r.KeyID != 0 || r.Algorithm != wire.AuthHMACSHA256 || r.TTL != 15 || r.MaskLen != 24 || r.EID.IP != eid.IP {
		t.Errorf("reply header %v", r)
	}
	nat, ok := r.NATAddress.LCAF.Body.(*wire.NATTraversalLCAF)
	if r.NATAddress.AFI != wire.AFILCAF || r.NATAddress.LCAF.Type != wire.LCAFNATTraversal || !ok {
		t.Fatalf("NAT address %v, want a NAT-Traversal LCAF", r.NATAddress)
	}
	if nat.GlobalETR.IP != natted.Addr() || nat.ETRPort != natted.Port() {
		t.Errorf("global ETR %v:%d, want the request's source %v", nat.GlobalETR, nat.ETRPort, natted)
	}
	if nat.MS.IP != ms || nat.MSPort != wire.ControlPort {
		t.Errorf("MS %v:%d, want %v:%d", nat.MS, nat.MSPort, ms, wire.ControlPort)
	}
	if nat.PrivateETR.AFI != 0 {
		t.Errorf("private ETR %v, want AFI 0 (§4.2)", nat.PrivateETR)
	}
	if len(nat.RTRs) != 1 || nat.RTRs[0].IP != rtrA {
		t.Errorf("RTRs %v, want the Map-Server's [%v]", nat.RTRs, rtrA)
	}
	if got := f.counterPlain("info_replies"); got != 1 {
		t.Errorf("info_replies %d, want 1", got)
	}

	// A site with RTRs of its own gets those.
	out, _ = f.info(infoRequest(t, 2, wire.AddrWithIID(1000, wire.AddrFromIP(dc2.Prefix.Addr())), 24, 0, wire.AuthHMACSHA256, []byte("dc2key")), natted)
	if len(out) != 1 {
		t.Fatalf("dc2: sent %d", len(out))
	}
	m, _ = wire.Decode(out[0].B)
	nat = m.(*wire.Info).NATAddress.LCAF.Body.(*wire.NATTraversalLCAF)
	if len(nat.RTRs) != 1 || nat.RTRs[0].IP != rtrB {
		t.Errorf("dc2 RTRs %v, want the site's [%v]", nat.RTRs, rtrB)
	}
}

func TestInfoRequestRefused(t *testing.T) {
	eid := wire.AddrFromIP(dc1.Prefix.Addr())
	outside := wire.AddrFromIP(netip.MustParseAddr("198.18.0.0"))
	for _, tc := range []struct {
		name, reason string
		raw          func(t *testing.T) []byte
	}{
		{"wrong key", "bad-auth", func(t *testing.T) []byte {
			return infoRequest(t, 1, eid, 24, 0, wire.AuthHMACSHA256, []byte("guess"))
		}},
		{"unknown key id", "unknown-key-id", func(t *testing.T) []byte {
			return infoRequest(t, 1, eid, 24, 9, wire.AuthHMACSHA256, secret)
		}},
		{"key of another site", "bad-auth", func(t *testing.T) []byte {
			return infoRequest(t, 1, eid, 24, 0, wire.AuthHMACSHA256, []byte("dc2key"))
		}},
		{"EID of no site", "no-site", func(t *testing.T) []byte {
			return infoRequest(t, 1, outside, 24, 0, wire.AuthHMACSHA256, secret)
		}},
		{"no EID", "bad-eid", func(t *testing.T) []byte {
			return infoRequest(t, 1, wire.Address{}, 0, 0, wire.AuthHMACSHA256, secret)
		}},
		{"unsigned", "unknown-key-id", func(t *testing.T) []byte {
			b, _ := wire.Encode(&wire.Info{Nonce: 1, MaskLen: 24, EID: eid})
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.s.opts.RTRs = []netip.Addr{rtrA}
			out, _ := f.info(tc.raw(t), natted)
			if len(out) != 0 {
				t.Fatalf("answered: %d messages (the RTR list goes to authenticated xTRs only)", len(out))
			}
			if got := f.counter("info_requests_rejected", tc.reason); got != 1 {
				t.Errorf("info_requests_rejected{%s} = %d, want 1", tc.reason, got)
			}
		})
	}
	// An Info-Reply is not the Map-Server's to take.
	f := newFixture(t)
	b, _ := wire.Encode(&wire.Info{Reply: true, Nonce: 1, MaskLen: 24, EID: eid})
	if out, reason := f.info(b, natted); reason != control.DropUnexpectedType || len(out) != 0 {
		t.Errorf("Info-Reply: %v, sent %d", reason, len(out))
	}
}

// TestInfoTshark has Wireshark decode an Info-Request and the Map-Server's
// Info-Reply to it as they travel, and find nothing malformed.
func TestInfoTshark(t *testing.T) {
	if _, err := tshark.Find(); err != nil {
		t.Skip(err)
	}
	f := newFixture(t)
	f.s.opts.RTRs = []netip.Addr{rtrA, rtrB}
	var buf bytes.Buffer
	w, err := pcap.NewWriter(&buf, pcap.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	msLocal := netip.AddrPortFrom(ms, wire.ControlPort)
	for i, alg := range []wire.AuthAlg{wire.AuthHMACSHA256, wire.AuthHMACSHA1} {
		keyID, key := uint8(0), secret
		if alg == wire.AuthHMACSHA1 {
			keyID, key = 1, []byte("sha1key")
		}
		req := infoRequest(t, uint64(i+1), wire.AddrFromIP(dc1.Prefix.Addr()), 24, keyID, alg, key)
		out, _ := f.info(req, natted)
		if len(out) != 1 {
			t.Fatalf("%v: no Info-Reply", alg)
		}
		now := time.Unix(1_700_000_000+int64(i), 0)
		if err := w.WritePacket(now, pcap.BuildUDPFrame(natted, msLocal, req)); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(now, pcap.BuildUDPFrame(msLocal, natted, out[0].B)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "info.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	found, err := tshark.Check(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("tshark: %v", found)
	}
	// Wireshark must see the messages as LISP Info, R clear then set.
	types, err := tshark.Fields(path, "lisp", "lisp.info.r")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"False", "True", "False", "True"}; !slices.Equal(normBools(types), want) {
		t.Errorf("tshark lisp.info.r %q, want %q", types, want)
	}
	nat, err := tshark.Fields(path, "lisp.info.r == 1", "lisp.lcaf.natt.etrport", "lisp.lcaf.natt.rloc.ipv4")
	if err != nil {
		t.Fatal(err)
	}
	want := "61001\t203.0.113.9,192.0.2.1,192.0.2.50,192.0.2.51"
	if len(nat) != 2 || nat[0] != want || nat[1] != want {
		t.Errorf("tshark NAT LCAF %q, want twice %q (global ETR, MS, RTRs; private ETR AFI 0)", nat, want)
	}
}

// normBools maps tshark's 0/1 booleans (versions differ) to False/True.
func normBools(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		switch s {
		case "1", "True", "true":
			out[i] = "True"
		case "0", "False", "false":
			out[i] = "False"
		default:
			out[i] = s
		}
	}
	return out
}

func (f *fixture) counterPlain(name string) uint64 {
	for _, s := range f.reg.Snapshot() {
		if s.Desc.Name == name {
			return s.Value
		}
	}
	f.t.Fatalf("no counter %s", name)
	return 0
}
