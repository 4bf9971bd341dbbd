package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/testvectors"
	"github.com/lispd/lispd/wire"
)

// vectorsDir holds the repository's capture corpus, testdata/vectors.
var vectorsDir = testvectors.Dir()

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// checkFrameChecksums checks the IPv4 header and UDP checksums of a
// BuildUDPFrame result with wire's checksum (tested against RFC 1071 there).
func checkFrameChecksums(t *testing.T, frame []byte, src, dst netip.Addr) {
	t.Helper()
	var udp []byte
	if src.Is4() {
		if c := wire.ChecksumFold(wire.ChecksumAdd(0, frame[14:34])); c != 0 {
			t.Errorf("IPv4 header checksum does not verify (sum gives %#04x)", c)
		}
		udp = frame[34:]
	} else {
		udp = frame[54:]
	}
	if binary.BigEndian.Uint16(udp[6:8]) == 0 {
		t.Fatal("UDP checksum is zero")
	}
	if !wire.UDPChecksumOK(src, dst, udp) {
		t.Errorf("UDP checksum %#04x does not verify", binary.BigEndian.Uint16(udp[6:8]))
	}
}

func TestRoundTrip(t *testing.T) {
	base := time.Date(2025, 11, 26, 11, 51, 0, 123456000, time.UTC)
	packets := []struct {
		src, dst netip.AddrPort
		payload  []byte
	}{
		{mustAddrPort("192.0.2.11:4342"), mustAddrPort("192.0.2.1:4342"), []byte{0x30, 0, 1, 1, 0xde, 0xad}},
		{mustAddrPort("[2001:db8::1]:61000"), mustAddrPort("[2001:db8::2]:4342"), bytes.Repeat([]byte{0x10, 0x42, 0x99}, 33)},
		{mustAddrPort("198.51.100.7:4341"), mustAddrPort("203.0.113.9:4341"), nil},
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	frames := make([][]byte, len(packets))
	for i, p := range packets {
		frames[i] = BuildUDPFrame(p.src, p.dst, p.payload)
		checkFrameChecksums(t, frames[i], p.src.Addr(), p.dst.Addr())
		if err := w.WritePacket(base.Add(time.Duration(i)*time.Second), frames[i]); err != nil {
			t.Fatal(err)
		}
	}

	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != LinkTypeEthernet {
		t.Errorf("LinkType = %d, want %d", r.LinkType(), LinkTypeEthernet)
	}
	if r.SnapLen() != 65535 {
		t.Errorf("SnapLen = %d, want 65535", r.SnapLen())
	}
	for i, want := range packets {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if wantTime := base.Add(time.Duration(i) * time.Second); !p.Time.Equal(wantTime) {
			t.Errorf("packet %d: time %v, want %v", i, p.Time, wantTime)
		}
		if !bytes.Equal(p.Data, frames[i]) || p.OrigLen != len(frames[i]) {
			t.Errorf("packet %d: read back %d/%d bytes differing from the %d written", i, len(p.Data), p.OrigLen, len(frames[i]))
		}
		d, err := DecodeUDP(r.LinkType(), p.Data)
		if err != nil {
			t.Fatalf("packet %d: DecodeUDP: %v", i, err)
		}
		if d.Src != want.src || d.Dst != want.dst || !bytes.Equal(d.Payload, want.payload) || d.TTL != 64 || d.Truncated {
			t.Errorf("packet %d: decoded %v -> %v ttl %d truncated %v payload %x, want %v -> %v ttl 64 payload %x",
				i, d.Src, d.Dst, d.TTL, d.Truncated, d.Payload, want.src, want.dst, want.payload)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last packet: %v, want io.EOF", err)
	}
}

func TestBuildUDPFramePanics(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		payload  []byte
	}{
		{"mixed families", mustAddrPort("192.0.2.1:1"), mustAddrPort("[2001:db8::1]:2"), nil},
		{"zero address", netip.AddrPort{}, netip.AddrPort{}, nil},
		{"payload too long", mustAddrPort("192.0.2.1:1"), mustAddrPort("192.0.2.2:2"), make([]byte, 0xffff-28+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("BuildUDPFrame did not panic")
				}
			}()
			BuildUDPFrame(tt.src, tt.dst, tt.payload)
		})
	}
}

// fileHeader builds a pcap file header in the given byte order.
func fileHeader(order binary.ByteOrder, magic uint32, major, minor uint16, snapLen, linkType uint32) []byte {
	h := make([]byte, 24)
	order.PutUint32(h[0:], magic)
	order.PutUint16(h[4:], major)
	order.PutUint16(h[6:], minor)
	order.PutUint32(h[16:], snapLen)
	order.PutUint32(h[20:], linkType)
	return h
}

// record builds a pcap record header followed by data.
func record(order binary.ByteOrder, sec, frac, capLen, origLen uint32, data []byte) []byte {
	h := make([]byte, 16, 16+len(data))
	order.PutUint32(h[0:], sec)
	order.PutUint32(h[4:], frac)
	order.PutUint32(h[8:], capLen)
	order.PutUint32(h[12:], origLen)
	return append(h, data...)
}

func TestReaderFormats(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5}
	tests := []struct {
		name     string
		order    binary.ByteOrder
		magic    uint32
		frac     uint32
		linkType uint32
		snapLen  uint32
		wantTime time.Time
		wantLT   uint32
	}{
		{"little micro", binary.LittleEndian, 0xa1b2c3d4, 250000, 1, 65535, time.Unix(1700000000, 250000000), 1},
		{"big micro", binary.BigEndian, 0xa1b2c3d4, 250000, 101, 262144, time.Unix(1700000000, 250000000), 101},
		{"little nano", binary.LittleEndian, 0xa1b23c4d, 123456789, 113, 65535, time.Unix(1700000000, 123456789), 113},
		{"big nano", binary.BigEndian, 0xa1b23c4d, 1, 276, 65535, time.Unix(1700000000, 1), 276},
		// Upper bits are FCS flags, not part of the link type.
		{"fcs flags", binary.LittleEndian, 0xa1b2c3d4, 0, 0x14000001, 65535, time.Unix(1700000000, 0), 1},
		// Real files carry absurd snaplens; accept them.
		{"absurd snaplen", binary.LittleEndian, 0xa1b2c3d4, 0, 1, 2164523008, time.Unix(1700000000, 0), 1},
		{"zero snaplen", binary.LittleEndian, 0xa1b2c3d4, 0, 1, 0, time.Unix(1700000000, 0), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := slices.Concat(fileHeader(tt.order, tt.magic, 2, 4, tt.snapLen, tt.linkType),
				record(tt.order, 1700000000, tt.frac, uint32(len(data)), 1500, data))
			r, err := NewReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if r.LinkType() != tt.wantLT {
				t.Errorf("LinkType = %d, want %d", r.LinkType(), tt.wantLT)
			}
			p, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !p.Time.Equal(tt.wantTime) || !bytes.Equal(p.Data, data) || p.OrigLen != 1500 {
				t.Errorf("got %v %x %d, want %v %x 1500", p.Time, p.Data, p.OrigLen, tt.wantTime, data)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("second Next: %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderBadHeader(t *testing.T) {
	le := binary.LittleEndian
	good := fileHeader(le, 0xa1b2c3d4, 2, 4, 65535, 1)
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:23], ErrTruncated},
		{"bad magic", fileHeader(le, 0xdeadbeef, 2, 4, 65535, 1), ErrBadHeader},
		{"pcapng", fileHeader(le, 0x0a0d0d0a, 2, 4, 65535, 1), ErrBadHeader},
		{"modified pcap", fileHeader(le, 0xa1b2cd34, 2, 4, 65535, 1), ErrBadHeader},
		{"version 1", fileHeader(le, 0xa1b2c3d4, 1, 0, 65535, 1), ErrBadHeader},
		{"version 2.5", fileHeader(le, 0xa1b2c3d4, 2, 5, 65535, 1), ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.file))
			if !errors.Is(err, tt.want) || r != nil {
				t.Errorf("NewReader = %v, %v; want nil, %v", r, err, tt.want)
			}
		})
	}
}

func TestReaderBadRecords(t *testing.T) {
	le := binary.LittleEndian
	hdr := fileHeader(le, 0xa1b2c3d4, 2, 4, 65535, 1)
	ok := record(le, 1, 0, 4, 4, []byte{1, 2, 3, 4})
	tests := []struct {
		name      string
		records   []byte
		wantGood  int
		wantErr   error
		wantIndex int
	}{
		{"short record header", slices.Concat(ok, make([]byte, 15)), 1, ErrTruncated, 2},
		{"short data", slices.Concat(ok, record(le, 1, 0, 100, 100, make([]byte, 99))), 1, ErrTruncated, 2},
		{"data missing", record(le, 1, 0, 100, 100, nil), 0, ErrTruncated, 1},
		{"caplen 4 GiB", slices.Concat(ok, ok, record(le, 1, 0, 0xffffffff, 0xffffffff, nil)), 2, ErrRecordTooLong, 3},
		{"caplen just over max", record(le, 1, 0, MaxCaptureLen+1, MaxCaptureLen+1, nil), 0, ErrRecordTooLong, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(slices.Concat(hdr, tt.records)))
			if err != nil {
				t.Fatal(err)
			}
			for range tt.wantGood {
				if _, err := r.Next(); err != nil {
					t.Fatal(err)
				}
			}
			_, err = r.Next()
			var re *RecordError
			if !errors.As(err, &re) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Next = %v, want a *RecordError wrapping %v", err, tt.wantErr)
			}
			wantOffset := int64(24 + 20*tt.wantGood)
			if re.Index != tt.wantIndex || re.Offset != wantOffset {
				t.Errorf("error at record %d offset %d, want %d, %d", re.Index, re.Offset, tt.wantIndex, wantOffset)
			}
			if _, again := r.Next(); again != err {
				t.Errorf("Next after an error = %v, want the same error again", again)
			}
		})
	}
	// A record exactly at the limit is fine.
	big := make([]byte, MaxCaptureLen)
	r, err := NewReader(bytes.NewReader(slices.Concat(hdr, record(le, 1, 0, MaxCaptureLen, MaxCaptureLen, big))))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := r.Next(); err != nil || len(p.Data) != MaxCaptureLen {
		t.Errorf("record of MaxCaptureLen: %d bytes, %v", len(p.Data), err)
	}
}

func TestWriterSnapLen(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeRaw)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(time.Unix(1, 0), make([]byte, 70000)); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(time.Unix(-1, 0), nil); err == nil {
		t.Error("WritePacket accepted a time before 1970")
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Next()
	if err != nil || len(p.Data) != 65535 || p.OrigLen != 70000 {
		t.Errorf("oversized packet read back as %d/%d bytes, %v; want 65535/70000", len(p.Data), p.OrigLen, err)
	}
}

// withLink wraps a BuildUDPFrame result, minus its Ethernet header, in a
// different link-layer header.
func withLink(frame []byte, link ...byte) []byte { return slices.Concat(link, frame[14:]) }

// withVLAN inserts 802.1Q-style tags of the given Ethernet types after the
// MAC addresses.
func withVLAN(frame []byte, tpids ...uint16) []byte {
	out := slices.Clone(frame[:12])
	for _, tpid := range tpids {
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, 100) // VLAN ID
	}
	return append(out, frame[12:]...)
}

// withIPv6Ext inserts IPv6 extension headers (next header, length in 8-byte
// units beyond the first 8) in front of the UDP header of an IPv6 frame.
func withIPv6Ext(frame []byte, exts ...[]byte) []byte {
	ip := frame[14:]
	out := slices.Clone(frame[:54])
	next := ip[6]
	out[14+6] = exts[0][0]
	for i, e := range exts {
		e = slices.Clone(e)
		if i+1 < len(exts) {
			e[0] = exts[i+1][0]
		} else {
			e[0] = next
		}
		out = append(out, e...)
	}
	out = append(out, frame[54:]...)
	binary.BigEndian.PutUint16(out[14+4:], uint16(len(out)-54))
	return out
}

// ext builds an extension header whose first byte, later overwritten with the
// real next header, names the header's own type.
func ext(self byte, size int) []byte {
	e := make([]byte, size)
	e[0] = self
	if self != protoFragment {
		e[1] = byte(size/8 - 1)
	}
	return e
}

// patch returns a copy of b with bytes at off replaced.
func patch(b []byte, off int, v ...byte) []byte {
	b = slices.Clone(b)
	copy(b[off:], v)
	return b
}

func TestDecodeUDP(t *testing.T) {
	src4, dst4 := mustAddrPort("192.0.2.11:61000"), mustAddrPort("192.0.2.1:4342")
	src6, dst6 := mustAddrPort("[2001:db8::11]:4341"), mustAddrPort("[2001:db8::1]:4341")
	payload := []byte("LISP control message")
	v4 := BuildUDPFrame(src4, dst4, payload)
	v6 := BuildUDPFrame(src6, dst6, payload)
	ip4, ip6 := v4[14:], v6[14:]
	// IPv4 header at 14, UDP at 34; IPv6 header at 14, UDP at 54.
	fragExt := ext(protoFragment, 8)

	tests := []struct {
		name          string
		linkType      uint32
		frame         []byte
		wantErr       error // nil for success
		wantV6        bool
		wantTruncated bool
		wantPayload   []byte // nil means payload
	}{
		{name: "ethernet ipv4", linkType: LinkTypeEthernet, frame: v4},
		{name: "ethernet ipv6", linkType: LinkTypeEthernet, frame: v6, wantV6: true},
		{name: "ethernet padding dropped", linkType: LinkTypeEthernet, frame: slices.Concat(v4, make([]byte, 12))},
		{name: "802.1Q", linkType: LinkTypeEthernet, frame: withVLAN(v4, 0x8100)},
		{name: "QinQ", linkType: LinkTypeEthernet, frame: withVLAN(v6, 0x88a8, 0x8100), wantV6: true},
		{name: "old QinQ", linkType: LinkTypeEthernet, frame: withVLAN(v4, 0x9100, 0x8100)},
		{name: "too many VLAN tags", linkType: LinkTypeEthernet, frame: withVLAN(v4, slices.Repeat([]uint16{0x8100}, 9)...), wantErr: ErrMalformed},
		{name: "frame ends in VLAN tag", linkType: LinkTypeEthernet, frame: withVLAN(v4, 0x8100)[:16], wantErr: ErrTruncated},
		{name: "ARP", linkType: LinkTypeEthernet, frame: patch(v4, 12, 0x08, 0x06), wantErr: ErrNotUDP},
		{name: "802.3 length field", linkType: LinkTypeEthernet, frame: patch(v4, 12, 0x00, 0x40), wantErr: ErrNotUDP},
		{name: "short ethernet", linkType: LinkTypeEthernet, frame: v4[:13], wantErr: ErrTruncated},
		{name: "empty frame", linkType: LinkTypeEthernet, frame: nil, wantErr: ErrTruncated},
		{name: "raw ipv4", linkType: LinkTypeRaw, frame: ip4},
		{name: "raw ipv6", linkType: LinkTypeRaw, frame: ip6, wantV6: true},
		{name: "raw 12", linkType: LinkTypeRaw12, frame: ip4},
		{name: "raw 14", linkType: LinkTypeRaw14, frame: ip6, wantV6: true},
		{name: "raw version 5", linkType: LinkTypeRaw, frame: patch(ip4, 0, 0x55), wantErr: ErrNotUDP},
		{name: "raw empty", linkType: LinkTypeRaw, frame: []byte{}, wantErr: ErrTruncated},
		{name: "ipv4 link type", linkType: LinkTypeIPv4, frame: ip4},
		{name: "ipv6 link type", linkType: LinkTypeIPv6, frame: ip6, wantV6: true},
		{name: "ipv4 link type with ipv6", linkType: LinkTypeIPv4, frame: slices.Concat(ip6), wantErr: ErrMalformed},
		{name: "null little-endian ipv4", linkType: LinkTypeNull, frame: withLink(v4, 2, 0, 0, 0)},
		{name: "null big-endian ipv4", linkType: LinkTypeNull, frame: withLink(v4, 0, 0, 0, 2)},
		{name: "null darwin ipv6", linkType: LinkTypeNull, frame: withLink(v6, 30, 0, 0, 0), wantV6: true},
		{name: "null freebsd ipv6 big-endian", linkType: LinkTypeNull, frame: withLink(v6, 0, 0, 0, 28), wantV6: true},
		{name: "null linux ipv6", linkType: LinkTypeNull, frame: withLink(v6, 10, 0, 0, 0), wantV6: true},
		{name: "null other family", linkType: LinkTypeNull, frame: withLink(v4, 7, 0, 0, 0), wantErr: ErrNotUDP},
		{name: "null short", linkType: LinkTypeNull, frame: []byte{2, 0, 0}, wantErr: ErrTruncated},
		{name: "loop ipv4", linkType: LinkTypeLoop, frame: withLink(v4, 0, 0, 0, 2)},
		{name: "loop ipv6", linkType: LinkTypeLoop, frame: withLink(v6, 0, 0, 0, 24), wantV6: true},
		{name: "sll ipv4", linkType: LinkTypeLinuxSLL, frame: withLink(v4, 0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00)},
		{name: "sll ipv6", linkType: LinkTypeLinuxSLL, frame: withLink(v6, 0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xdd), wantV6: true},
		{name: "sll vlan", linkType: LinkTypeLinuxSLL, frame: withLink(v4, 0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x81, 0x00, 0, 100, 0x08, 0x00)},
		{name: "sll short", linkType: LinkTypeLinuxSLL, frame: make([]byte, 15), wantErr: ErrTruncated},
		{name: "sll2 ipv4", linkType: LinkTypeLinuxSLL2, frame: withLink(v4, 0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0)},
		{name: "sll2 ipv6", linkType: LinkTypeLinuxSLL2, frame: withLink(v6, 0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0), wantV6: true},
		{name: "sll2 short", linkType: LinkTypeLinuxSLL2, frame: make([]byte, 19), wantErr: ErrTruncated},
		{name: "unknown link type", linkType: 147, frame: v4, wantErr: ErrUnsupportedLinkType},

		// IPv4.
		{name: "ipv4 options", linkType: LinkTypeRaw, frame: func() []byte {
			b := slices.Concat(ip4[:20], []byte{1, 1, 1, 0}, ip4[20:]) // NOP NOP NOP EOL
			b[0] = 0x46
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
			return b
		}()},
		{name: "tcp", linkType: LinkTypeEthernet, frame: patch(v4, 14+9, 6), wantErr: ErrNotUDP},
		{name: "first fragment", linkType: LinkTypeEthernet, frame: patch(v4, 14+6, 0x20, 0x00), wantErr: ErrFragment},
		{name: "later fragment", linkType: LinkTypeEthernet, frame: patch(v4, 14+6, 0x00, 0x10), wantErr: ErrFragment},
		{name: "fragment is also ErrNotUDP", linkType: LinkTypeEthernet, frame: patch(v4, 14+6, 0x00, 0x10), wantErr: ErrNotUDP},
		{name: "DF is not a fragment", linkType: LinkTypeEthernet, frame: patch(v4, 14+6, 0x40, 0x00)},
		{name: "ihl below 5", linkType: LinkTypeEthernet, frame: patch(v4, 14, 0x44), wantErr: ErrMalformed},
		{name: "ihl beyond capture", linkType: LinkTypeRaw, frame: patch(ip4[:30], 0, 0x4f), wantErr: ErrTruncated},
		{name: "total length below ihl", linkType: LinkTypeEthernet, frame: patch(v4, 14+2, 0, 19), wantErr: ErrMalformed},
		{name: "ipv4 header cut", linkType: LinkTypeEthernet, frame: v4[:33], wantErr: ErrTruncated},
		{name: "udp header cut", linkType: LinkTypeEthernet, frame: v4[:41], wantErr: ErrTruncated},
		{name: "ip payload too short for udp", linkType: LinkTypeEthernet, frame: patch(v4, 14+2, 0, 27), wantErr: ErrMalformed},
		{name: "payload cut", linkType: LinkTypeEthernet, frame: v4[:len(v4)-5], wantTruncated: true, wantPayload: payload[:len(payload)-5]},
		{name: "ip length beyond capture", linkType: LinkTypeEthernet, frame: patch(v4, 14+2, 0x0f, 0x77), wantTruncated: true},
		{name: "udp length below 8", linkType: LinkTypeEthernet, frame: patch(v4, 34+4, 0, 7), wantErr: ErrMalformed},
		{name: "udp length beyond ip", linkType: LinkTypeEthernet, frame: patch(v4, 34+4, 0, byte(8+len(payload)+1)), wantErr: ErrMalformed},
		{name: "udp length below ip", linkType: LinkTypeEthernet, frame: patch(v4, 34+4, 0, 8+4), wantPayload: payload[:4]},
		{name: "udp length beyond capture", linkType: LinkTypeEthernet, frame: patch(patch(v4, 14+2, 0x0f, 0x77), 34+4, 0x0f, 0x00), wantTruncated: true},

		// IPv6.
		{name: "ipv6 hop-by-hop", linkType: LinkTypeEthernet, frame: withIPv6Ext(v6, ext(protoHopByHop, 8)), wantV6: true},
		{name: "ipv6 all extensions", linkType: LinkTypeEthernet, wantV6: true,
			frame: withIPv6Ext(v6, ext(protoHopByHop, 8), ext(protoDestOpts, 16), ext(protoRouting, 24), fragExt, ext(protoDestOpts, 8))},
		{name: "ipv6 fragment", linkType: LinkTypeEthernet, frame: withIPv6Ext(v6, patch(fragExt, 3, 1)), wantErr: ErrFragment},
		{name: "ipv6 later fragment", linkType: LinkTypeEthernet, frame: withIPv6Ext(v6, patch(fragExt, 2, 0x01)), wantErr: ErrFragment},
		{name: "ipv6 tcp", linkType: LinkTypeEthernet, frame: patch(v6, 14+6, 6), wantErr: ErrNotUDP},
		{name: "ipv6 no next header", linkType: LinkTypeEthernet, frame: withIPv6Ext(v6, ext(59, 8)), wantErr: ErrNotUDP},
		{name: "ipv6 extension beyond payload", linkType: LinkTypeEthernet, frame: patch(withIPv6Ext(v6, ext(protoHopByHop, 8)), 54+1, 200), wantErr: ErrMalformed},
		{name: "ipv6 extension beyond capture", linkType: LinkTypeEthernet, frame: withIPv6Ext(v6, ext(protoRouting, 16))[:60], wantErr: ErrTruncated},
		{name: "ipv6 extension length byte cut", linkType: LinkTypeEthernet, frame: withIPv6Ext(v6, ext(protoRouting, 16))[:55], wantErr: ErrTruncated},
		{name: "ipv6 jumbogram", linkType: LinkTypeEthernet, frame: patch(v6, 14+4, 0, 0), wantErr: ErrMalformed},
		{name: "ipv6 header cut", linkType: LinkTypeEthernet, frame: v6[:53], wantErr: ErrTruncated},
		{name: "ipv6 payload cut", linkType: LinkTypeEthernet, frame: v6[:len(v6)-1], wantV6: true, wantTruncated: true, wantPayload: payload[:len(payload)-1]},
		{name: "ipv6 in ipv4 ethertype", linkType: LinkTypeEthernet, frame: patch(v6, 12, 0x08, 0x00), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := slices.Clone(tt.frame)
			d, err := DecodeUDP(tt.linkType, tt.frame)
			if !bytes.Equal(frame, tt.frame) {
				t.Error("DecodeUDP modified the frame")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("DecodeUDP = %+v, %v; want error %v", d, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeUDP: %v", err)
			}
			wantSrc, wantDst := src4, dst4
			if tt.wantV6 {
				wantSrc, wantDst = src6, dst6
			}
			wantPayload := tt.wantPayload
			if wantPayload == nil {
				wantPayload = payload
			}
			if d.Src != wantSrc || d.Dst != wantDst || d.TTL != 64 || d.Truncated != tt.wantTruncated || !bytes.Equal(d.Payload, wantPayload) {
				t.Errorf("DecodeUDP = %v -> %v ttl %d truncated %v payload %q; want %v -> %v ttl 64 truncated %v payload %q",
					d.Src, d.Dst, d.TTL, d.Truncated, d.Payload, wantSrc, wantDst, tt.wantTruncated, wantPayload)
			}
			if cap(d.Payload) != len(d.Payload) {
				t.Errorf("payload capacity %d exceeds its length %d, so appends would overwrite the frame", cap(d.Payload), len(d.Payload))
			}
		})
	}
}

// TestNoAllocs pins down the "allocation-conscious" promise: the steady
// state of reading and decoding a capture allocates nothing.
func TestNoAllocs(t *testing.T) {
	frame := BuildUDPFrame(mustAddrPort("192.0.2.1:4342"), mustAddrPort("192.0.2.2:4342"), make([]byte, 100))
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		if err := w.WritePacket(time.Unix(1700000000, 0), frame); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil { // grows the buffer once
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		p, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeUDP(r.LinkType(), p.Data); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Next+DecodeUDP: %v allocations per packet, want 0", n)
	}
	tcp := patch(frame, 14+9, 6)
	if n := testing.AllocsPerRun(100, func() { DecodeUDP(LinkTypeEthernet, tcp) }); n != 0 {
		t.Errorf("DecodeUDP of a non-UDP frame: %v allocations, want 0", n)
	}
}

// capture is what the test reads out of one pcap file.
type capture struct {
	linkType uint32
	frames   [][]byte // copies, since Packet.Data is reused
	err      error    // the error that ended the file, nil for a clean io.EOF
}

func readCapture(t testing.TB, path string) capture {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		return capture{err: err}
	}
	c := capture{linkType: r.LinkType()}
	for {
		p, err := r.Next()
		if err == io.EOF {
			return c
		}
		if err != nil {
			c.err = err
			return c
		}
		c.frames = append(c.frames, bytes.Clone(p.Data))
	}
}

// corpus returns the corpus directory, failing the test if it is missing.
func corpus(tb testing.TB) string {
	tb.Helper()
	testvectors.Path(tb, "README.md")
	return vectorsDir
}

func corpusPcaps(tb testing.TB, dir string) []string {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".pcap") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

func TestCorpus(t *testing.T) {
	dir := corpus(t)
	// Expected per-file results, checked independently with tshark. Files in
	// the corpus but not listed here are still read and decoded, just not
	// counted.
	want := map[string]struct {
		records   int
		lisp      int // UDP datagrams to or from port 4341 or 4342
		truncated int // of those, the ones captured only in part
	}{
		"handmade.pcap":                    {11, 11, 0},
		"oor/oor-capture.pcap":             {46, 46, 0},
		"synthetic/synthetic.pcap":         {6, 6, 0},
		"tcpdump/lisp_eid_notify.pcap":     {4, 4, 0},
		"tcpdump/lisp_eid_register.pcap":   {2, 2, 0},
		"tcpdump/lisp_ipv6.pcap":           {2, 2, 0},
		"tcpdump/lisp_invalid.pcap":        {2, 2, 1},
		"tcpdump/lisp_invalid_length.pcap": {1, 1, 1},
	}
	files := corpusPcaps(t, dir)
	if len(files) < len(want) {
		t.Errorf("found %d pcap files under %s, want at least %d", len(files), dir, len(want))
	}
	for _, path := range files {
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		t.Run(rel, func(t *testing.T) {
			c := readCapture(t, path)
			if c.err != nil {
				var re *RecordError
				if !errors.As(c.err, &re) && !errors.Is(c.err, ErrBadHeader) && !errors.Is(c.err, ErrTruncated) {
					t.Errorf("read ended with an unexpected kind of error: %v", c.err)
				}
				t.Logf("read ended with: %v", c.err)
			}
			var lisp, truncated int
			for i, frame := range c.frames {
				d, err := DecodeUDP(c.linkType, frame)
				if err != nil {
					t.Logf("frame %d: %v", i+1, err)
					continue
				}
				if isLISPPort(d.Src.Port()) || isLISPPort(d.Dst.Port()) {
					lisp++
					if d.Truncated {
						truncated++
					}
				}
			}
			w, ok := want[rel]
			if !ok {
				return
			}
			if c.err != nil || len(c.frames) != w.records {
				t.Errorf("read %d records, error %v; want %d and a clean EOF", len(c.frames), c.err, w.records)
			}
			if lisp != w.lisp || truncated != w.truncated {
				t.Errorf("%d LISP datagrams (%d truncated), want %d (%d truncated)", lisp, truncated, w.lisp, w.truncated)
			}
		})
	}
}

func isLISPPort(p uint16) bool { return p == 4341 || p == 4342 }

// TestCorpusPayloads compares every decoded frame with the addresses and
// payload that tshark reported, as recorded in the *.vectors.json files.
func TestCorpusPayloads(t *testing.T) {
	dir := corpus(t)
	jsons, err := filepath.Glob(filepath.Join(dir, "*.vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob(filepath.Join(dir, "*", "*.vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	jsons = append(jsons, more...)
	wantCounts := map[string]int{"handmade.vectors.json": 11, "oor-capture.vectors.json": 46}
	for _, jpath := range jsons {
		t.Run(filepath.Base(jpath), func(t *testing.T) {
			rel, err := filepath.Rel(dir, jpath)
			if err != nil {
				t.Fatal(err)
			}
			vf := testvectors.JSON(t, filepath.ToSlash(rel))
			if n, ok := wantCounts[filepath.Base(jpath)]; ok && len(vf.Vectors) != n {
				t.Errorf("%d vectors, want %d", len(vf.Vectors), n)
			}
			c := readCapture(t, filepath.Join(filepath.Dir(jpath), vf.Source))
			if c.err != nil {
				t.Fatal(c.err)
			}
			if len(c.frames) != len(vf.Vectors) {
				t.Errorf("%d frames in %s, %d vectors", len(c.frames), vf.Source, len(vf.Vectors))
			}
			for _, v := range vf.Vectors {
				if v.Frame < 1 || v.Frame > len(c.frames) {
					t.Errorf("vector for frame %d: no such frame", v.Frame)
					continue
				}
				d, err := DecodeUDP(c.linkType, c.frames[v.Frame-1])
				if err != nil {
					t.Errorf("frame %d: %v", v.Frame, err)
					continue
				}
				want := v.Payload
				if d.Src.String() != v.Src || d.Dst.String() != v.Dst {
					t.Errorf("frame %d: %v -> %v, want %s -> %s", v.Frame, d.Src, d.Dst, v.Src, v.Dst)
				}
				if !bytes.Equal(d.Payload, want) || d.Truncated {
					t.Errorf("frame %d: payload (truncated %v)\n got %x\nwant %x", v.Frame, d.Truncated, d.Payload, want)
				}
			}
		})
	}
}

// corpusSeeds returns the corpus files and their frames as fuzz seeds.
func corpusSeeds(tb testing.TB) (files [][]byte, frames []capture) {
	for _, path := range corpusPcaps(tb, corpus(tb)) {
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, b)
		frames = append(frames, readCapture(tb, path))
	}
	return files, frames
}

// supportedLinkTypes lets the fuzzer spend its time inside the decoders
// rather than on the one-line unsupported-link-type path.
var supportedLinkTypes = []uint32{
	LinkTypeNull, LinkTypeEthernet, LinkTypeRaw12, LinkTypeRaw14, LinkTypeRaw,
	LinkTypeLoop, LinkTypeLinuxSLL, LinkTypeIPv4, LinkTypeIPv6, LinkTypeLinuxSLL2,
}

func FuzzDecodeUDP(f *testing.F) {
	_, caps := corpusSeeds(f)
	for _, c := range caps {
		for _, frame := range c.frames {
			f.Add(c.linkType, frame)
		}
	}
	v4 := BuildUDPFrame(mustAddrPort("192.0.2.1:4342"), mustAddrPort("192.0.2.2:4342"), []byte{0x10, 0, 0, 1})
	v6 := BuildUDPFrame(mustAddrPort("[2001:db8::1]:4341"), mustAddrPort("[2001:db8::2]:4341"), []byte{0x80, 0, 0, 1})
	f.Add(uint32(LinkTypeEthernet), withVLAN(v4, 0x88a8, 0x8100))
	f.Add(uint32(LinkTypeEthernet), withIPv6Ext(v6, ext(protoHopByHop, 8), ext(protoRouting, 16), ext(protoFragment, 8)))
	f.Add(uint32(LinkTypeRaw), v6[14:])
	f.Add(uint32(LinkTypeNull), withLink(v6, 30, 0, 0, 0))
	f.Add(uint32(LinkTypeLinuxSLL), withLink(v4, 0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00))
	f.Add(uint32(LinkTypeLinuxSLL2), withLink(v6, 0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0))

	f.Fuzz(func(t *testing.T, linkType uint32, frame []byte) {
		if !slices.Contains(supportedLinkTypes, linkType) {
			linkType = supportedLinkTypes[linkType%uint32(len(supportedLinkTypes))]
		}
		d, err := DecodeUDP(linkType, frame)
		if err != nil {
			if !errors.Is(err, ErrNotUDP) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v matches none of the documented sentinels", err)
			}
			if d.Payload != nil || d.Src.IsValid() || d.Dst.IsValid() || d.TTL != 0 || d.Truncated {
				t.Fatalf("error %v came with a non-zero datagram %+v", err, d)
			}
			return
		}
		if !d.Src.IsValid() || !d.Dst.IsValid() || d.Src.Addr().Is4() != d.Dst.Addr().Is4() {
			t.Fatalf("bad addresses %v -> %v", d.Src, d.Dst)
		}
		if len(d.Payload) > len(frame) || cap(d.Payload) != len(d.Payload) {
			t.Fatalf("payload of %d bytes (cap %d) from a %d-byte frame", len(d.Payload), cap(d.Payload), len(frame))
		}
		// The payload must lie inside the frame, and end where the frame
		// ends or before: DecodeUDP never copies.
		if len(d.Payload) > 0 {
			start := len(frame) - len(d.Payload)
			found := false
			for i := 0; i <= start; i++ {
				if &frame[i] == &d.Payload[0] {
					found = true
					break
				}
			}
			if !found {
				t.Fatal("payload does not alias the frame")
			}
		}
	})
}

func FuzzReader(f *testing.F) {
	files, _ := corpusSeeds(f)
	for _, b := range files {
		f.Add(b)
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, LinkTypeEthernet)
	w.WritePacket(time.Unix(1, 0), BuildUDPFrame(mustAddrPort("192.0.2.1:4342"), mustAddrPort("192.0.2.2:4342"), []byte{0x30}))
	f.Add(buf.Bytes())
	be := slices.Concat(fileHeader(binary.BigEndian, magicNano, 2, 4, 65535, LinkTypeRaw),
		record(binary.BigEndian, 1, 2, 3, 3, []byte{0x45, 0, 0}))
	f.Add(be)

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadHeader) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("NewReader: undocumented error %v", err)
			}
			return
		}
		consumed := 24
		for {
			p, err := r.Next()
			if err == io.EOF {
				if consumed != len(data) {
					t.Fatalf("io.EOF after %d of %d bytes", consumed, len(data))
				}
				return
			}
			if err != nil {
				var re *RecordError
				if !errors.As(err, &re) || re.Offset != int64(consumed) {
					t.Fatalf("Next: %v, want a *RecordError at offset %d", err, consumed)
				}
				return
			}
			if len(p.Data) > MaxCaptureLen {
				t.Fatalf("record of %d bytes", len(p.Data))
			}
			consumed += 16 + len(p.Data)
			DecodeUDP(r.LinkType(), p.Data)
		}
	})
}
