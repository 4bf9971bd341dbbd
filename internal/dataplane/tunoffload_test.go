package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/lispd/lispd/wire"
)

// groSeg describes one test segment of a flow.
type groSeg struct {
	v6         bool
	proto      uint8
	flow       uint8 // selects the source port
	seq        uint32
	id         uint16
	flags      uint8
	ttl        uint8
	df         bool
	opts       bool // TCP timestamps option
	payload    int
	badCsum    bool
	badIPCsum  bool
	noUDPCsum  bool
	payloadTag byte
}

// build returns the packet at Headroom of a buffer of cap bytes.
func (s groSeg) build(capacity int) []byte {
	ipLen := ipv4HeaderLen
	if s.v6 {
		ipLen = ipv6HeaderLen
	}
	thLen := 8
	if s.proto == protoTCP {
		thLen = 20
		if s.opts {
			thLen = 32
		}
	}
	tot := ipLen + thLen + s.payload
	buf := make([]byte, Headroom+tot, capacity)
	p := buf[Headroom:]
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	if s.v6 {
		p[0], p[1], p[3] = 0x60, 0x01, 0x23 // a flow label
		binary.BigEndian.PutUint16(p[ipv6PayloadLen:], uint16(tot-ipv6HeaderLen))
		p[ipv6NextHeader], p[ipv6HopLimit] = s.proto, ttl
		a, b := hostA6.As16(), hostB6.As16()
		copy(p[ipv6Src:], a[:])
		copy(p[ipv6Dst:], b[:])
	} else {
		p[0], p[ipv4TOS] = 0x45, 0x02
		binary.BigEndian.PutUint16(p[ipv4TotalLen:], uint16(tot))
		binary.BigEndian.PutUint16(p[4:], s.id)
		if s.df {
			p[ipv4Frag] = ipv4DF >> 8
		}
		p[ipv4TTL], p[ipv4Proto] = ttl, s.proto
		a, b := hostA4.As4(), hostB4.As4()
		copy(p[ipv4Src:], a[:])
		copy(p[ipv4Dst:], b[:])
		binary.BigEndian.PutUint16(p[ipv4Csum:], ipv4HeaderChecksum(p[:ipLen]))
	}
	l4 := p[ipLen:]
	binary.BigEndian.PutUint16(l4, 40000+uint16(s.flow))
	binary.BigEndian.PutUint16(l4[2:], 5001)
	for i := range s.payload {
		l4[thLen+i] = s.payloadTag + byte(i*7)
	}
	off := udpCsumOff
	if s.proto == protoTCP {
		off = tcpCsumOff
		binary.BigEndian.PutUint32(l4[4:], s.seq)
		binary.BigEndian.PutUint32(l4[8:], 0x01020304)
		l4[12] = byte(thLen/4) << 4
		l4[13] = s.flags
		binary.BigEndian.PutUint16(l4[14:], 512)
		if s.opts {
			copy(l4[20:], []byte{1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0})
		}
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(thLen+s.payload))
	}
	if !s.noUDPCsum {
		binary.BigEndian.PutUint16(l4[off:], l4Checksum(addrSum(p, s.v6), s.proto, l4))
	}
	if s.badCsum {
		l4[off] ^= 0x55
	}
	if s.badIPCsum && !s.v6 {
		p[ipv4Csum] ^= 0x55
	}
	return buf
}

// groRoundTrip coalesces bufs as a TUN write would, then splits every
// buffer to be written as a TUN read would, and returns the packets that
// come out in write order.
func groRoundTrip(t testing.TB, bufs [][]byte, udp bool) [][]byte {
	g := groBatch{udp: udp}
	g.coalesce(bufs, Headroom)
	var got [][]byte
	total := 0
	for i := range bufs {
		segs := g.segs(i)
		total += segs
		if segs == 0 {
			continue
		}
		in := bufs[i][Headroom-virtioNetHdrLen : Headroom+g.size[i]]
		out := make([][]byte, 130)
		for j := range out {
			out[j] = make([]byte, Headroom+2048)
		}
		sizes := make([]int, len(out))
		n, dropped, err := splitGSO(in, out, sizes, Headroom)
		if err != nil || dropped != 0 {
			t.Fatalf("split of buffer %d: n %d dropped %d err %v", i, n, dropped, err)
		}
		if n != segs {
			t.Fatalf("buffer %d carries %d packets, split gives %d", i, segs, n)
		}
		for j := range n {
			got = append(got, out[j][Headroom:Headroom+sizes[j]])
		}
	}
	if total != len(bufs) {
		t.Fatalf("coalesce accounts for %d packets of %d", total, len(bufs))
	}
	return got
}

// coalesced builds segs in buffers of capacity bytes and coalesces them
// as a TUN write would.
func coalesced(segs []groSeg, capacity int, udp bool) (*groBatch, [][]byte) {
	var bufs [][]byte
	for _, s := range segs {
		bufs = append(bufs, s.build(capacity))
	}
	g := &groBatch{udp: udp}
	g.coalesce(bufs, Headroom)
	return g, bufs
}

// flowOf keys a test packet by family, protocol and source port.
func flowOf(p []byte) string {
	v6, proto, ipLen, _, ok := groParse(p)
	if !ok {
		return "other"
	}
	return fmt.Sprint(v6, proto, binary.BigEndian.Uint16(p[ipLen:]))
}

// checkGRO asserts that what comes out of the round trip is, per flow and
// in order, what went in, and that every IPv4 header checks.
func checkGRO(t testing.TB, segs []groSeg, udp bool) (written int) {
	var bufs, want [][]byte
	for _, s := range segs {
		b := s.build(etrGROBufSize)
		bufs = append(bufs, b)
		want = append(want, bytes.Clone(b[Headroom:]))
	}
	got := groRoundTrip(t, bufs, udp)
	per := map[string][][]byte{}
	for _, p := range want {
		per[flowOf(p)] = append(per[flowOf(p)], p)
	}
	for i, p := range got {
		// A bad IPv4 header checksum makes the packet "other" (groParse),
		// which only a packet sent with one may be.
		k := flowOf(p)
		if len(per[k]) == 0 {
			t.Fatalf("packet %d of flow %s is extra:\n%x", i, k, p)
		}
		if !bytes.Equal(per[k][0], p) {
			t.Fatalf("packet %d of flow %s differs:\n got %x\nwant %x", i, k, p, per[k][0])
		}
		per[k] = per[k][1:]
	}
	for k, l := range per {
		if len(l) != 0 {
			t.Fatalf("flow %s: %d packets missing", k, len(l))
		}
	}
	return len(got)
}

// tcpRun is a TCP stream of n segments of mss bytes, the last one short
// by short bytes and with PSH.
func tcpRun(v6 bool, n, mss, short int) []groSeg {
	var out []groSeg
	seq := uint32(0xfffff000) // wraps within the run
	for i := range n {
		s := groSeg{v6: v6, proto: protoTCP, seq: seq, id: 0xfff0 + uint16(i), flags: tcpACK, df: true, opts: true, payload: mss, payloadTag: byte(i)}
		if i == n-1 {
			s.payload -= short
			s.flags |= tcpPSH
		}
		seq += uint32(s.payload)
		out = append(out, s)
	}
	return out
}

func TestTUNOffloadTCPRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		segs := tcpRun(v6, 44, 1448, 300)
		g, bufs := coalesced(segs, etrGROBufSize, false)
		if g.segs(0) != len(segs) {
			t.Fatalf("v6 %v: head carries %d segments, want all %d", v6, g.segs(0), len(segs))
		}
		var h vnetHdr
		h.decode(bufs[0][Headroom-virtioNetHdrLen:])
		want := uint8(vnetGSOTCPv4)
		if v6 {
			want = vnetGSOTCPv6
		}
		if h.gsoType != want || h.gsoSize != 1448 || h.flags != vnetFlagNeedsCsum || h.csumOffset != tcpCsumOff {
			t.Fatalf("v6 %v: virtio header %+v", v6, h)
		}
		checkGRO(t, segs, false)
	}
}

func TestTUNOffloadUDPRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var segs []groSeg
		for i := range 70 { // more than one UDP run
			segs = append(segs, groSeg{v6: v6, proto: protoUDP, id: uint16(i), payload: 64, payloadTag: byte(i)})
		}
		if n := checkGRO(t, segs, true); n != 70 {
			t.Fatalf("v6 %v: %d packets", v6, n)
		}
		// Without USO the datagrams are written one by one.
		if g, _ := coalesced(segs, etrGROBufSize, false); g.segs(0) != 1 {
			t.Fatalf("v6 %v: coalesced UDP without USO", v6)
		}
		g, _ := coalesced(segs, etrGROBufSize, true)
		if g.segs(0) != groMaxUDPSegs || g.segs(groMaxUDPSegs) != 70-groMaxUDPSegs {
			t.Fatalf("v6 %v: UDP runs of %d and %d", v6, g.segs(0), g.segs(groMaxUDPSegs))
		}
	}
}

// Segments that must not join: each is written on its own, and the flow's
// order is kept.
func TestTUNOffloadNoJoin(t *testing.T) {
	base := tcpRun(false, 6, 1000, 0)
	base[5].flags = tcpACK
	cases := map[string]func(s []groSeg){
		"bad checksum":    func(s []groSeg) { s[1].badCsum = true },
		"bad IP checksum": func(s []groSeg) { s[1].badIPCsum = true },
		"seq gap":         func(s []groSeg) { s[1].seq++ },
		"ttl":             func(s []groSeg) { s[1].ttl = 3 },
		"syn":             func(s []groSeg) { s[1].flags |= tcpSYN },
		"fin":             func(s []groSeg) { s[1].flags |= tcpFIN },
		"rst":             func(s []groSeg) { s[1].flags = tcpRST },
		"cwr":             func(s []groSeg) { s[1].flags |= tcpCWR },
		"longer":          func(s []groSeg) { s[1].payload++ },
		"options":         func(s []groSeg) { s[1].opts = false },
		"id gap, no DF":   func(s []groSeg) { s[0].df, s[1].df, s[1].id = false, false, s[1].id+2 },
		"pure ack":        func(s []groSeg) { s[1].payload = 0 },
		"push ends a run": func(s []groSeg) { s[1].flags |= tcpPSH },
	}
	for name, mod := range cases {
		segs := append([]groSeg(nil), base...)
		mod(segs)
		for i := 1; i < len(segs); i++ {
			if segs[i].seq != segs[i-1].seq+uint32(segs[i-1].payload) && name != "seq gap" {
				segs[i].seq = segs[i-1].seq + uint32(segs[i-1].payload)
			}
		}
		g, _ := coalesced(segs, etrGROBufSize, false)
		if g.segs(0) != 1 && name != "push ends a run" {
			t.Errorf("%s: first run has %d segments, want 1", name, g.segs(0))
		}
		if name == "push ends a run" && g.segs(0) != 2 {
			t.Errorf("%s: first run has %d segments, want 2", name, g.segs(0))
		}
		checkGRO(t, segs, false)
	}
	// IPv4 IDs need not run on under DF.
	segs := tcpRun(false, 4, 1000, 0)
	for i := range segs {
		segs[i].id = 7
	}
	if g, _ := coalesced(segs, etrGROBufSize, false); g.segs(0) != 4 {
		t.Errorf("DF, fixed ID: run of %d", g.segs(0))
	}
	// A buffer without room for a whole run: the run goes on in the next.
	g, _ := coalesced(tcpRun(true, 10, 1000, 0), Headroom+ipv6HeaderLen+32+3000, false)
	if g.segs(0) != 3 || g.segs(3) != 3 {
		t.Errorf("small buffers: runs of %d and %d", g.segs(0), g.segs(3))
	}
}

func TestTUNOffloadInterleavedFlows(t *testing.T) {
	a, b := tcpRun(false, 10, 1200, 0), tcpRun(true, 10, 1200, 100)
	var segs []groSeg
	for i := range a {
		b[i].flow = 1
		segs = append(segs, a[i], b[i], groSeg{proto: protoUDP, flow: 2, payload: 100, id: uint16(i)})
	}
	if n := checkGRO(t, segs, true); n != 30 {
		t.Fatalf("%d packets", n)
	}
}

// A packet whose checksum the kernel left partial gets it finished.
func TestTUNOffloadReadPartialChecksum(t *testing.T) {
	for _, proto := range []uint8{protoTCP, protoUDP} {
		s := groSeg{v6: proto == protoUDP, proto: proto, flags: tcpACK, payload: 333}
		b := s.build(4096)
		want := bytes.Clone(b[Headroom:])
		p := b[Headroom:]
		_, _, ipLen, _, _ := groParse(p)
		off := tcpCsumOff
		if proto == protoUDP {
			off = udpCsumOff
		}
		binary.BigEndian.PutUint16(p[ipLen+off:], ^wire.ChecksumFold(addrSum(p, s.v6)+uint32(proto)+uint32(len(p)-ipLen)))
		h := vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(ipLen), csumOffset: uint16(off)}
		h.encode(b[Headroom-virtioNetHdrLen:])
		out := [][]byte{make([]byte, 4096)}
		sizes := []int{0}
		n, _, err := splitGSO(b[Headroom-virtioNetHdrLen:], out, sizes, Headroom)
		if err != nil || n != 1 || !bytes.Equal(out[0][Headroom:Headroom+sizes[0]], want) {
			t.Fatalf("proto %d: n %d err %v\n got %x\nwant %x", proto, n, err, out[0][Headroom:Headroom+sizes[0]], want)
		}
	}
}

// A super-packet with more segments than buffers: those that fit are
// read, the rest counted.
func TestTUNOffloadSplitTooMany(t *testing.T) {
	g, bufs := coalesced(tcpRun(false, 10, 1000, 0), etrGROBufSize, false)
	out := make([][]byte, 4)
	for i := range out {
		out[i] = make([]byte, 2048)
	}
	n, dropped, err := splitGSO(bufs[0][Headroom-virtioNetHdrLen:Headroom+g.size[0]], out, make([]int, 4), Headroom)
	if n != 4 || dropped != 6 || err != nil {
		t.Fatalf("n %d dropped %d err %v", n, dropped, err)
	}
}

// FuzzTUNOffload builds a batch of segments of a few flows from the fuzz
// input, coalesces and splits it: per flow, the same packets in the same
// order must come out. Arbitrary reads must not crash the split.
func FuzzTUNOffload(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x45})
	f.Add([]byte{0x10, 0x10, 0x10, 0x10, 0x91, 0x10, 0x10, 0x32, 0x10}, []byte{1, 5, 40, 0, 200, 5, 20, 0, 6, 0, 0x60})
	f.Fuzz(func(t *testing.T, plan []byte, raw []byte) {
		type flowState struct {
			seq uint32
			id  uint16
		}
		var st [4]flowState
		var segs []groSeg
		for i, c := range plan {
			if len(segs) == 128 {
				break
			}
			fl := c & 3
			s := groSeg{v6: fl&1 == 1, proto: protoTCP, flow: fl, flags: tcpACK, df: c&0x40 == 0, opts: fl < 2,
				payload: 500, payloadTag: byte(i)}
			if fl == 3 {
				s.proto = protoUDP
			}
			switch c >> 2 & 7 {
			case 1:
				s.payload = 200 // short: ends a run
			case 2:
				s.flags |= tcpPSH
			case 3:
				s.payload = 0
			case 4:
				s.ttl = 9
			case 5:
				st[fl].seq += 3 // a gap
			case 6:
				s.flags |= tcpFIN
			}
			if s.proto == protoUDP && s.payload == 0 {
				s.payload = 1
			}
			s.seq, s.id = st[fl].seq, st[fl].id
			st[fl].seq += uint32(s.payload)
			st[fl].id++
			if c&0x80 != 0 && !s.df { // IDs matter only without DF
				st[fl].id += 5
			}
			segs = append(segs, s)
		}
		checkGRO(t, segs, true)

		// Arbitrary reads.
		out := make([][]byte, 8)
		for i := range out {
			out[i] = make([]byte, 600)
		}
		sizes := make([]int, len(out))
		n, _, err := splitGSO(raw, out, sizes, Headroom)
		if err == nil {
			for i := range n {
				if sizes[i] > len(out[i])-Headroom {
					t.Fatalf("size %d beyond the buffer", sizes[i])
				}
			}
		}
	})
}
