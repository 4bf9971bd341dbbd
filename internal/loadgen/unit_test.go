package loadgen

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/wire"
)

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 255, 256, 257, 511, 512, 1000, 123456, 1 << 30, 1<<47 + 12345} {
		i := bucket(v)
		if i < prev {
			t.Errorf("bucket(%d) = %d, below the previous value's %d", v, i, prev)
		}
		prev = i
		if up := upper(i); up < v || (i > 0 && upper(i-1) >= v) {
			t.Errorf("value %d in bucket %d with range (%d, %d]", v, i, upper(i-1), up)
		}
		if up := upper(i); v >= 256 && float64(up-v) > float64(v)/100 {
			t.Errorf("value %d: bucket upper bound %d is more than 1%% off", v, up)
		}
	}
	if bucket(1<<62) != histBuckets-1 {
		t.Error("huge values are not clamped to the last bucket")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var a, b histogram
	for i := int64(1); i <= 1000; i++ {
		h := &a
		if i%2 == 0 {
			h = &b
		}
		h.record(i * int64(time.Microsecond))
	}
	a.merge(&b)
	if a.n != 1000 || a.min != int64(time.Microsecond) || a.max != int64(time.Millisecond) {
		t.Fatalf("n %d min %d max %d", a.n, a.min, a.max)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.9, 900 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := a.quantile(c.q)
		if got < c.want || float64(got-c.want) > float64(c.want)/100 {
			t.Errorf("quantile(%v) = %v, want %v (within 1%%)", c.q, got, c.want)
		}
	}
	if m := a.mean(); m < 500*time.Microsecond || m > 501*time.Microsecond {
		t.Errorf("mean %v", m)
	}
}

func TestEIDSpace(t *testing.T) {
	for _, c := range []struct {
		base   string
		len, i int
		want   string
	}{
		{"198.18.0.0", 32, 0, "198.18.0.0/32"},
		{"198.18.0.0", 32, 300, "198.18.1.44/32"},
		{"198.18.0.0", 24, 2, "198.18.2.0/24"},
		{"198.18.7.9", 24, 1, "198.18.8.0/24"},
		{"2001:db8::", 64, 3, "2001:db8:0:3::/64"},
		{"2001:db8::", 128, 65537, "2001:db8::1:1/128"},
		{"2001:db8::", 48, 1, "2001:db8:1::/48"},
		{"2001:db8:0:0:ffff:ffff:ffff:ffff", 128, 1, "2001:db8:0:1::/128"},
		{"2001:db8::", 16, 1, "2002::/16"},
	} {
		s := newEIDSpace(netip.MustParseAddr(c.base), c.len, c.i+1)
		if got := s.prefix(c.i).String(); got != c.want {
			t.Errorf("%s/%d prefix %d = %s, want %s", c.base, c.len, c.i, got, c.want)
		}
		// Host bits stay inside the prefix.
		hi, lo := s.addr(c.i, ^uint64(0), ^uint64(0))
		p := netip.MustParsePrefix(c.want)
		if a := s.netip(hi, lo); !p.Contains(a) || (c.len < a.BitLen() && a == p.Addr()) {
			t.Errorf("%s: random host %s outside or not random", c.want, a)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	target := netip.MustParseAddrPort("127.0.0.1:4342")
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"no target", Config{Mode: Request}},
		{"no secret", Config{Mode: Register, Target: target}},
		{"bad algorithm", Config{Mode: Register, Target: target, Secret: []byte("k"), Algorithm: wire.AuthHMACSHA256HKDF}},
		{"eid-len", Config{Mode: Request, Target: target, EIDLen: 33}},
		{"too many prefixes", Config{Mode: Request, Target: target, EIDBase: netip.MustParseAddr("255.255.255.0"), Prefixes: 257}},
		{"source family", Config{Mode: Request, Target: target, Source: netip.MustParseAddr("::1")}},
		{"flood kind", Config{Mode: Flood, Target: target, FloodKind: "nice"}},
		{"sockets", Config{Mode: Request, Target: target, Sockets: -1}},
	} {
		c.cfg.defaults()
		if err := c.cfg.check(); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	ok := Config{Mode: Request, Target: target, EIDBase: netip.MustParseAddr("255.255.255.0"), Prefixes: 256}
	ok.defaults()
	if err := ok.check(); err != nil {
		t.Errorf("the last 256 addresses: %v", err)
	}
}

// TestRequestTemplate checks that patched requests decode with good
// checksums, the nonce and the EID.
func TestRequestTemplate(t *testing.T) {
	for _, c := range []struct {
		base, itr string
		len       int
		iid       bool
		sec       bool
	}{
		{"198.18.0.0", "127.0.0.1", 24, false, false},
		{"198.18.0.0", "127.0.0.1", 32, true, false},
		{"2001:db8::", "::1", 64, true, false},
		{"2001:db8::", "127.0.0.1", 48, false, false}, // inner header of the EID's family
		{"198.18.0.0", "::1", 32, false, false},
		{"198.18.0.0", "127.0.0.1", 32, true, true},
		{"2001:db8::", "::1", 64, false, true},
	} {
		s := newEIDSpace(netip.MustParseAddr(c.base), c.len, 1000)
		itr := netip.MustParseAddr(c.itr)
		var sec *secRequest
		if c.sec {
			var err error
			if sec, err = newSecRequest(3, []byte("itr-key")); err != nil {
				t.Fatal(err)
			}
		}
		tm, err := newRequestTemplate(&s, 77, c.iid, itr, 40000, sec)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(tm.b))
		rng := rand.New(rand.NewPCG(1, 2))
		for n := range 50 {
			i := rng.IntN(s.n)
			hi, lo := s.addr(i, rng.Uint64(), rng.Uint64())
			want := s.netip(hi, lo)
			b := tm.fill(buf, &s, uint64(n)<<40|7, hi, lo)
			ecm, err := wire.DecodeECM(b)
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			if ecm.IP.ChecksumsBad {
				t.Fatalf("%+v: bad inner checksum", c)
			}
			mr := ecm.Message.(*wire.MapRequest)
			iid, got, _ := mr.Records[0].EID.InstanceID()
			ip, _ := got.Addr()
			if mr.Nonce != uint64(n)<<40|7 || ip != want || ecm.IP.Dst != want || ecm.SrcPort != 40000 ||
				(c.iid && iid != 77) || mr.Records[0].MaskLen != uint8(want.BitLen()) {
				t.Fatalf("%+v: got %v", c, ecm)
			}
			if rloc, _ := mr.ITRRLOCs[0].Addr(); rloc != itr || ecm.IP.Src.Is4() != want.Is4() {
				t.Fatalf("%+v: ITR-RLOC %v inner source %v", c, rloc, ecm.IP.Src)
			}
			if ecm.Security != c.sec {
				t.Fatalf("%+v: S %v", c, ecm.Security)
			}
			if !c.sec {
				continue
			}
			// The Map-Resolver's side: the OTK unwraps with the shared
			// key and this message's nonce, and not with another nonce.
			ad, err := ecm.AuthData()
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			keys := lispsec.Keys{3: []byte("itr-key")}
			otk, err := lispsec.OpenECM(ad, keys, mr.Nonce, false)
			if err != nil || otk != sec.otk || ad.RequestedHMAC != secHMAC || ad.EID.KDF != secKDF || !ad.EID.KDFOnly {
				t.Fatalf("%+v: %v: %v", c, err, ad)
			}
			if _, err := lispsec.OpenECM(ad, keys, mr.Nonce+1, false); err == nil {
				t.Fatalf("%+v: the OTK unwraps with another nonce", c)
			}
		}
	}
}

// TestReplyVerifier checks the load generator's PKT HMAC check against
// lispsec's signing: a proxy reply to our request verifies, an altered one,
// an unsigned one and one signed for another OTK do not.
func TestReplyVerifier(t *testing.T) {
	sec, err := newSecRequest(1, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	ad, err := sec.authData(9)
	if err != nil {
		t.Fatal(err)
	}
	eid := wire.AddrFromIP(netip.MustParseAddr("198.18.0.0"))
	reply := func(otk lispsec.OTK) []byte {
		r := &wire.MapReply{Nonce: 9, Records: []wire.EIDRecord{{TTL: 1, MaskLen: 16, EID: eid,
			Locators: []wire.Locator{{Priority: 1, Weight: 1, Address: wire.AddrFromIP(netip.MustParseAddr("192.0.2.1"))}}}}}
		b, err := lispsec.ProxyReply(r, ad, otk, []wire.EIDADRecord{{MaskLen: 15, EID: eid}}, false)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v := sec.verifier()
	good := reply(sec.otk)
	if !v.verify(good) {
		t.Fatal("a reply signed for our OTK does not verify")
	}
	if !v.verify(good) {
		t.Fatal("verify did not restore the message")
	}
	other, _ := lispsec.NewOTK(nil)
	altered := append([]byte(nil), good...)
	altered[20] ^= 1
	unsigned, _ := wire.Encode(&wire.MapReply{Nonce: 9})
	for name, b := range map[string][]byte{"other OTK": reply(other), "altered": altered, "unsigned": unsigned,
		"short": good[:10]} {
		if v.verify(b) {
			t.Errorf("%s: verifies", name)
		}
	}
}

// TestRegisterTemplate checks patched Map-Registers against wire's
// decoder and verifier, and the authenticator against wire.Sign.
func TestRegisterTemplate(t *testing.T) {
	secret := []byte("s3cret")
	for _, alg := range []wire.AuthAlg{wire.AuthHMACSHA1, wire.AuthHMACSHA256} {
		for _, iid := range []bool{false, true} {
			for _, perPrefix := range []bool{false, true} {
				c := Config{Mode: Register, Algorithm: alg, Secret: secret, KeyID: 3, InstanceID: 9, HasInstanceID: iid,
					XTRIDPerPrefix: perPrefix, EIDBase: netip.MustParseAddr("2001:db8::"), EIDLen: 64, Prefixes: 100,
					Target: netip.MustParseAddrPort("[::1]:4342")}
				c.defaults()
				s := newEIDSpace(c.EIDBase, c.EIDLen, c.Prefixes)
				tm, err := newRegisterTemplate(&c, &s, netip.MustParseAddr("2001:db8:ffff::1"))
				if err != nil {
					t.Fatal(err)
				}
				a, _ := newAuthenticator(alg, secret)
				b := tm.fill(make([]byte, len(tm.b)), &s, a, 0xabcdef, 42)
				if err := wire.Verify(b, secret, wire.AuthOptions{}); err != nil {
					t.Fatalf("%s iid %v: %v", alg, iid, err)
				}
				m, err := wire.Decode(b)
				if err != nil {
					t.Fatal(err)
				}
				reg := m.(*wire.MapRegister)
				gotIID, p, _ := reg.Records[0].Prefix()
				if reg.Nonce != 0xabcdef || p != s.prefix(42) || (iid && gotIID != 9) || !reg.WantMapNotify || reg.KeyID != 3 {
					t.Fatalf("%s iid %v: %v", alg, iid, reg)
				}
				if reg.HasXTRID != perPrefix || (perPrefix && reg.XTRID[15] != 42) {
					t.Fatalf("per-prefix %v: xTR-ID %x", perPrefix, reg.XTRID)
				}
				// The authenticator verifies what wire signs, truncated
				// or not, and refuses a flipped bit.
				n := &wire.MapNotify{AuthBody: reg.AuthBody}
				nb, err := wire.EncodeSigned(n, secret, wire.AuthOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !a.verify(nb) {
					t.Fatalf("%s: a Map-Notify signed by wire does not verify", alg)
				}
				nb[len(nb)-1] ^= 1
				if a.verify(nb) {
					t.Fatalf("%s: a corrupted Map-Notify verifies", alg)
				}
				if a.verify(nb[:10]) {
					t.Fatal("a truncated message verifies")
				}
			}
		}
	}
}

func TestFloodRing(t *testing.T) {
	for _, kind := range []FloodKind{FloodGarbage, FloodBadAuth, FloodMixed} {
		c := Config{Mode: Flood, FloodKind: kind, Target: netip.MustParseAddrPort("127.0.0.1:4342"), Prefixes: 10,
			Secret: []byte("s3cret")}
		c.defaults()
		s := newEIDSpace(c.EIDBase, c.EIDLen, c.Prefixes)
		ring, err := floodRing(&c, &s, netip.MustParseAddr("127.0.0.1"), 5000, rand.New(rand.NewPCG(3, 4)))
		if err != nil {
			t.Fatal(err)
		}
		var regs, decoded, verified int
		for _, b := range ring {
			if len(b) == 0 {
				t.Fatal("empty packet")
			}
			m, err := wire.Decode(b)
			if err != nil {
				continue
			}
			decoded++
			if _, ok := m.(*wire.MapRegister); ok {
				regs++
				if wire.Verify(b, c.Secret, wire.AuthOptions{}) == nil {
					verified++
				}
			}
		}
		t.Logf("%s: %d packets, %d decode, %d Map-Registers", kind, len(ring), decoded, regs)
		if verified > 0 {
			t.Errorf("%s: %d Map-Registers authenticate", kind, verified)
		}
		switch kind {
		case FloodBadAuth:
			if regs < len(ring)*9/10 {
				t.Errorf("bad-auth: only %d of %d packets are Map-Registers", regs, len(ring))
			}
		case FloodGarbage:
			if decoded > len(ring)/2 {
				t.Errorf("garbage: %d of %d packets decode", decoded, len(ring))
			}
		}
	}
}

// BenchmarkRequestFill is the load generator's own cost per Map-Request:
// plain, and with LISP-SEC (the OTK wrapped for each nonce) and the PKT
// HMAC check of a signed reply.
func BenchmarkRequestFill(b *testing.B) {
	s := newEIDSpace(netip.MustParseAddr("198.18.0.0"), 32, 10000)
	sec, err := newSecRequest(1, []byte("k"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sec  *secRequest
	}{{"plain", nil}, {"lisp-sec", sec}} {
		b.Run(c.name, func(b *testing.B) {
			tm, err := newRequestTemplate(&s, 0, false, netip.MustParseAddr("127.0.0.1"), 40000, c.sec)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, len(tm.b))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				hi, lo := s.addr(i%s.n, 0, 0)
				tm.fill(buf, &s, uint64(i), hi, lo)
			}
		})
	}
	b.Run("verify-reply", func(b *testing.B) {
		ad, _ := sec.authData(9)
		r := &wire.MapReply{Nonce: 9, Records: []wire.EIDRecord{{TTL: 1, MaskLen: 32,
			EID: wire.AddrFromIP(netip.MustParseAddr("198.18.0.1"))}}}
		msg, err := lispsec.ProxyReply(r, ad, sec.otk, []wire.EIDADRecord{{MaskLen: 32, EID: r.Records[0].EID}}, false)
		if err != nil {
			b.Fatal(err)
		}
		v := sec.verifier()
		b.ReportAllocs()
		for b.Loop() {
			if !v.verify(msg) {
				b.Fatal("does not verify")
			}
		}
	})
}
