package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/render"
)

// blockHeader matches the first line of each packet's block.
var blockHeader = regexp.MustCompile(`(?m)^#(\d+) (\S+) (\S+) > (\S+) (\d+) bytes`)

// decodeJSON parses --json output.
func decodeJSON(t *testing.T, s string) []render.Packet {
	t.Helper()
	var ps []render.Packet
	if err := json.Unmarshal([]byte(s), &ps); err != nil {
		t.Fatalf("output is not a JSON array of packets: %v\n%s", err, s)
	}
	return ps
}

func TestDecodeOORText(t *testing.T) {
	r := lispctl(t, "decode", vector(t, "oor/oor-capture.pcap"))
	r.wantCode(t, cli.ExitOK)
	blocks := blockHeader.FindAllStringSubmatch(r.stdout, -1)
	if len(blocks) != 46 {
		t.Fatalf("%d packet blocks, want 46:\n%s", len(blocks), r.stdout)
	}
	if b := blocks[0]; b[1] != "1" || b[3] != "192.0.2.11:4342" || b[4] != "192.0.2.1:4342" {
		t.Errorf("first header line %q", b[0])
	}
	ecms := 0
	for line := range strings.Lines(r.stdout) {
		if strings.HasPrefix(line, "  ECM ") {
			ecms++
			if !strings.Contains(line, "| Map-Request ") {
				t.Errorf("ECM without its inner Map-Request: %q", line)
			}
		}
	}
	if ecms != 6 {
		t.Errorf("%d ECM lines, want 6", ecms)
	}
	if !strings.Contains(r.stdout, "46 LISP datagrams (24 control, 22 data), 0 failed to decode; 0 other frames skipped") {
		t.Errorf("summary line missing or wrong:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "error:") || r.stderr != "" {
		t.Errorf("unexpected errors; stderr %q", r.stderr)
	}
}

func TestDecodeOORVerbose(t *testing.T) {
	r := lispctl(t, "decode", "-v", vector(t, "oor/oor-capture.pcap"))
	r.wantCode(t, cli.ExitOK)
	for _, want := range []string{
		"    Type:              Map-Register\n    Flags:             want-map-notify (M)\n",
		"    Record 1:          203.0.113.0/24\n      TTL:               10 minutes\n",
		"      Locator 1:         192.0.2.11\n        Priority/weight:   1/100\n        M-priority/weight: 255/0\n        Flags:             local (L), reachable (R)\n",
		"    Inner message:\n      Type:              Map-Request\n",
		"    Flags:             probe (P)\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verbose output lacks\n%s", want)
		}
	}
}

// oorVector is one entry of oor-capture.vectors.json (made with tshark).
type oorVector struct {
	Frame     int     `json:"frame"`
	Src       string  `json:"src"`
	Dst       string  `json:"dst"`
	LispTypes []int   `json:"lisp_types"`
	DataFlags *string `json:"data_flags"`
}

var typeNames = map[int]string{1: "Map-Request", 2: "Map-Reply", 3: "Map-Register", 4: "Map-Notify", 8: "ECM"}

func TestDecodeOORJSON(t *testing.T) {
	r := lispctl(t, "decode", "--json", vector(t, "oor/oor-capture.pcap"))
	r.wantCode(t, cli.ExitOK)
	ps := decodeJSON(t, r.stdout)
	if len(ps) != 46 {
		t.Fatalf("%d packets, want 46", len(ps))
	}
	if !strings.Contains(r.stderr, "46 LISP datagrams") {
		t.Errorf("summary should go to stderr with --json; stderr %q", r.stderr)
	}

	p := ps[0]
	if p.Frame != 1 || p.Type != "Map-Register" || len(p.Records) != 1 {
		t.Fatalf("frame 1: %+v", p)
	}
	rec := p.Records[0]
	if rec.EIDPrefix != "203.0.113.0/24" || rec.TTLMinutes != 10 || len(rec.Locators) != 1 {
		t.Errorf("frame 1 record: %+v", rec)
	}
	if l := rec.Locators[0]; l.Address != "192.0.2.11" || l.Priority != 1 || l.Weight != 100 || !l.Local || !l.Reachable {
		t.Errorf("frame 1 locator: %+v", l)
	}
	if p.Nonce != "0xbf56a97b06aa468b" || p.Algorithm != "hmac-sha-1-96" || len(p.AuthData) != 40 {
		t.Errorf("frame 1 nonce %q algorithm %q auth-data %q", p.Nonce, p.Algorithm, p.AuthData)
	}

	// Every packet agrees with what tshark saw.
	raw, err := os.ReadFile(vector(t, "oor/oor-capture.vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf struct{ Vectors []oorVector }
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) != len(ps) {
		t.Fatalf("%d vectors, %d packets", len(vf.Vectors), len(ps))
	}
	for i, v := range vf.Vectors {
		checkAgainstTshark(t, &ps[i], v)
	}
}

func checkAgainstTshark(t *testing.T, p *render.Packet, v oorVector) {
	t.Helper()
	if p.Frame != v.Frame || p.Src != v.Src || p.Dst != v.Dst {
		t.Errorf("frame %d %s > %s, tshark: frame %d %s > %s", p.Frame, p.Src, p.Dst, v.Frame, v.Src, v.Dst)
	}
	if p.Failed() {
		t.Errorf("frame %d: %s", p.Frame, p.Error)
		return
	}
	switch {
	case v.DataFlags != nil:
		if p.Type != render.TypeData || p.DataHeader == nil || p.InnerPacket == nil || p.InnerPacket.Src == "" {
			t.Errorf("frame %d: want a data packet carrying IP, got %+v", p.Frame, p)
		} else if *v.DataFlags == "0x00" && len(p.DataHeader.Flags) != 0 {
			t.Errorf("frame %d: data header flags %q, tshark %s", p.Frame, p.DataHeader.Flags, *v.DataFlags)
		}
	case len(v.LispTypes) == 2: // ECM and its inner message
		if p.Type != "ECM" || p.Inner == nil || p.Inner.Type != typeNames[v.LispTypes[1]] || p.InnerSrc == "" {
			t.Errorf("frame %d: want ECM carrying %s, got %+v", p.Frame, typeNames[v.LispTypes[1]], p.Message)
		}
	default:
		if p.Type != typeNames[v.LispTypes[0]] {
			t.Errorf("frame %d: type %q, tshark %q", p.Frame, p.Type, typeNames[v.LispTypes[0]])
		}
	}
}

func TestDecodeOORJSONLines(t *testing.T) {
	r := lispctl(t, "decode", "--jsonl", vector(t, "oor/oor-capture.pcap"))
	r.wantCode(t, cli.ExitOK)
	n := 0
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var p render.Packet
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %d: %v: %s", n+1, err, sc.Text())
		}
		n++
		if p.Frame != n {
			t.Errorf("line %d holds frame %d", n, p.Frame)
		}
	}
	if n != 46 {
		t.Errorf("%d lines, want 46", n)
	}
}

func TestDecodeHandmadeBroken(t *testing.T) {
	path := vector(t, "handmade.pcap")
	r := lispctl(t, "decode", path)
	r.wantCode(t, cli.ExitFailed)
	blocks := strings.Split(r.stdout, "\n#")
	if len(blocks) != 11 {
		t.Fatalf("%d blocks, want 11:\n%s", len(blocks), r.stdout)
	}
	// Frames 8-11 were made broken (handmade.txt); each error names the
	// message, the field and the offset. Frame 9, E without N, decodes:
	// RFC 9300 §5.3 says E is then ignored.
	wantErr := map[int]string{
		8:  "error: Map-Request: ITR-RLOC at offset 18: truncated",
		10: "error: Map-Register: Locator AFI 16962 at offset 58: unsupported AFI",
		11: "error: Map-Register: Authentication Data at offset 16: truncated",
	}
	for i, b := range blocks {
		frame := i + 1
		if want, broken := wantErr[frame]; broken {
			if !strings.Contains(b, want) {
				t.Errorf("frame %d: want %q in\n%s", frame, want, b)
			}
		} else if strings.Contains(b, "error:") {
			t.Errorf("frame %d should decode:\n%s", frame, b)
		}
	}
	if !strings.Contains(r.stdout, "11 LISP datagrams (9 control, 2 data), 3 failed to decode") {
		t.Errorf("summary line missing or wrong:\n%s", r.stdout)
	}

	// The same in JSON: the array is complete and each error is kept.
	r = lispctl(t, "decode", "--json", path)
	r.wantCode(t, cli.ExitFailed)
	ps := decodeJSON(t, r.stdout)
	if len(ps) != 11 {
		t.Fatalf("%d packets, want 11", len(ps))
	}
	for _, p := range ps {
		if _, broken := wantErr[p.Frame]; broken != p.Failed() {
			t.Errorf("frame %d: failed=%v (error %q)", p.Frame, p.Failed(), p.Error)
		}
	}
	if ps[7].Type != "Map-Request" || ps[8].Type != "Data" || ps[9].Type != "Map-Register" {
		t.Errorf("types of broken frames: %q %q %q", ps[7].Type, ps[8].Type, ps[9].Type)
	}
}

func TestDecodeHandmadeVerboseHexDump(t *testing.T) {
	r := lispctl(t, "decode", "-v", vector(t, "handmade.pcap"))
	r.wantCode(t, cli.ExitFailed)
	// Frame 8's dump shows byte 16 (0x71) on the second row, where the
	// offset in the error points.
	if !strings.Contains(r.stdout, "      00000010  71 0a ") {
		t.Errorf("no hex dump of frame 8:\n%s", r.stdout)
	}
}

func TestDecodeHex(t *testing.T) {
	const mapRequest = "10400001010203040506070800010a0101010001c0000201001800010a020200"
	r := lispctl(t, "decode", "--hex", mapRequest)
	r.wantCode(t, cli.ExitOK)
	want := "#1 32 bytes\n  Map-Request [s(smr-invoked)] nonce 0x0102030405060708 source-eid 10.1.1.1 itr-rlocs 192.0.2.1 eid 10.2.2.0/24\n"
	if r.stdout != want {
		t.Errorf("got\n%s\nwant\n%s", r.stdout, want)
	}

	// Pasted forms: 0x prefix, spaces, colons.
	spaced := "0x10:40:00:01 01 02 03 04 05 06 07 08\t00010a01 0101 0001c0000201001800010a020200"
	if got := lispctl(t, "decode", "--hex", spaced); got.stdout != want {
		t.Errorf("spaced hex: got\n%s", got.stdout)
	}

	r = lispctl(t, "decode", "--json", "--hex", mapRequest)
	r.wantCode(t, cli.ExitOK)
	ps := decodeJSON(t, r.stdout)
	if len(ps) != 1 || ps[0].Type != "Map-Request" || ps[0].Time != "" || ps[0].Src != "" ||
		len(ps[0].EIDPrefixes) != 1 || ps[0].EIDPrefixes[0].EIDPrefix != "10.2.2.0/24" {
		t.Errorf("JSON: %s", r.stdout)
	}
	if len(ps) == 1 && (len(ps[0].Flags) != 1 || ps[0].Flags[0] != "smr-invoked") {
		t.Errorf("flags %q", ps[0].Flags)
	}
}

func TestDecodeHexTruncated(t *testing.T) {
	// The Map-Request above without its last 3 bytes: the EID's IPv4
	// address is cut short.
	r := lispctl(t, "decode", "--hex", "10400001010203040506070800010a0101010001c0000201001800010a02")
	r.wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stdout, "IPv4 address at offset 28: truncated") {
		t.Errorf("error does not name field and offset:\n%s", r.stdout)
	}
	r = lispctl(t, "decode", "--json", "--hex", "1040000101020304")
	r.wantCode(t, cli.ExitFailed)
	ps := decodeJSON(t, r.stdout)
	if len(ps) != 1 || ps[0].Error != "Map-Request: header at offset 0: truncated" {
		t.Errorf("JSON: %s", r.stdout)
	}
}

func TestDecodeHexData(t *testing.T) {
	// N, L and I set, nonce 0xabcdef, IID 255, LSBs 3; then an IPv4 header.
	const pkt = "c8abcdef0000ff03" + "4500001c00010000400100000a0101010a020202" + "0800f7ff00000000"
	r := lispctl(t, "decode", "--data", "--json", "--hex", pkt)
	r.wantCode(t, cli.ExitOK)
	ps := decodeJSON(t, r.stdout)
	if len(ps) != 1 {
		t.Fatalf("JSON: %s", r.stdout)
	}
	h, in := ps[0].DataHeader, ps[0].InnerPacket
	if ps[0].Type != "Data" || h == nil || in == nil {
		t.Fatalf("JSON: %s", r.stdout)
	}
	if h.Nonce != "0xabcdef" || h.InstanceID == nil || *h.InstanceID != 255 || h.LSB == nil || *h.LSB != 3 ||
		strings.Join(h.Flags, ",") != "nonce-present,locator-status-bits,instance-id-present" {
		t.Errorf("data header: %s", r.stdout)
	}
	if in.Version != 4 || in.Src != "10.1.1.1" || in.Dst != "10.2.2.2" || in.Protocol != "icmp" || in.Length != 28 {
		t.Errorf("inner packet: %+v", in)
	}

	// E without N decodes (RFC 9300 §5.3: E is then ignored); a GPE
	// header with N is refused.
	r = lispctl(t, "decode", "--data", "--hex", "2000000000000000")
	r.wantCode(t, cli.ExitOK)
	r = lispctl(t, "decode", "--data", "--hex", "8400000000000000")
	r.wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stdout, "GPE P bit with N/E/V") {
		t.Errorf("got %s", r.stdout)
	}
}

func TestDecodeTcpdumpInvalid(t *testing.T) {
	for _, name := range []string{"tcpdump/lisp_invalid.pcap", "tcpdump/lisp_invalid_length.pcap"} {
		for _, mode := range [][]string{{"-v"}, {"--json"}} {
			args := append(append([]string{"decode"}, mode...), vector(t, name))
			r := lispctl(t, args...)
			r.wantCode(t, cli.ExitFailed)
			if !strings.Contains(r.stdout, "error") || !strings.Contains(r.stdout, "at offset") {
				t.Errorf("%s %v: no error reported:\n%s", name, mode, r.stdout)
			}
		}
	}
}

// writePcap builds an Ethernet capture of UDP datagrams.
func writePcap(t *testing.T, frames ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcap.NewWriter(&buf, pcap.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	for i, f := range frames {
		if err := w.WritePacket(at.Add(time.Duration(i)*time.Second), f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func udpFrame(src, dst string, payload []byte) []byte {
	return pcap.BuildUDPFrame(netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst), payload)
}

var mapRequestBytes = []byte{0x10, 0x40, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x01, 10, 1, 1, 1,
	0x00, 0x01, 192, 0, 2, 1, 0x00, 0x18, 0x00, 0x01, 10, 2, 2, 0}

func TestDecodeStdinAndSkipped(t *testing.T) {
	file := writePcap(t,
		udpFrame("192.0.2.1:53", "192.0.2.2:5353", []byte("not lisp")),
		udpFrame("192.0.2.1:61000", "192.0.2.2:4342", mapRequestBytes),
		udpFrame("[2001:db8::1]:4342", "[2001:db8::2]:61000", mapRequestBytes), // a reply direction
	)
	r := lispctlEnv(t, bytes.NewReader(file), nil, "decode", "-")
	r.wantCode(t, cli.ExitOK)
	want := "#2 2024-05-06T07:08:10.123456Z 192.0.2.1:61000 > 192.0.2.2:4342 32 bytes\n"
	if !strings.Contains(r.stdout, want) {
		t.Errorf("want %q in\n%s", want, r.stdout)
	}
	if !strings.Contains(r.stdout, "#3 2024-05-06T07:08:11.123456Z [2001:db8::1]:4342 > [2001:db8::2]:61000 32 bytes\n") {
		t.Errorf("IPv6 frame missing:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "2 LISP datagrams (2 control, 0 data), 0 failed to decode; 1 other frame skipped") {
		t.Errorf("summary:\n%s", r.stdout)
	}
}

func TestDecodeTruncatedPcap(t *testing.T) {
	file := writePcap(t,
		udpFrame("192.0.2.1:61000", "192.0.2.2:4342", mapRequestBytes),
		udpFrame("192.0.2.1:61000", "192.0.2.2:4342", mapRequestBytes),
	)
	cut := file[:len(file)-10] // the second record ends early

	r := lispctlEnv(t, bytes.NewReader(cut), nil, "decode", "-")
	r.wantCode(t, cli.ExitFailed)
	if !strings.Contains(r.stdout, "#1 ") || strings.Contains(r.stdout, "#2 ") {
		t.Errorf("want frame 1 and no frame 2:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "standard input: pcap: record 2") {
		t.Errorf("stderr: %q", r.stderr)
	}

	// JSON stays a valid array even when reading stops early.
	r = lispctlEnv(t, bytes.NewReader(cut), nil, "decode", "--json", "-")
	r.wantCode(t, cli.ExitFailed)
	if ps := decodeJSON(t, r.stdout); len(ps) != 1 {
		t.Errorf("%d packets, want 1", len(ps))
	}
}

func TestDecodeEmptyCaptureJSON(t *testing.T) {
	r := lispctlEnv(t, bytes.NewReader(writePcap(t)), nil, "decode", "--json", "-")
	r.wantCode(t, cli.ExitOK)
	if r.stdout != "[]\n" {
		t.Errorf("stdout %q", r.stdout)
	}
}

func TestDecodeUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"decode"}, "needs a pcap FILE"},
		{[]string{"decode", "a.pcap", "b.pcap"}, "one FILE"},
		{[]string{"decode", "--hex", "00", "a.pcap"}, "not both"},
		{[]string{"decode", "--hex", ""}, "no hex digits"},
		{[]string{"decode", "--hex", "123"}, "odd number of hex digits"},
		{[]string{"decode", "--hex", "zz"}, `'z' is not a hex digit`},
		{[]string{"decode", "--data", "a.pcap"}, "--data applies to --hex only"},
		{[]string{"decode", "--json", "--jsonl", "--hex", "00"}, "not both"},
		{[]string{"decode", "--no-such-flag"}, "unknown flag"},
		{[]string{"decode", "/does/not/exist.pcap"}, "no such file"},
		{[]string{"decode", "main.go"}, "main.go: pcap: invalid file header"},
	} {
		r := lispctl(t, tc.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		if r.stdout != "" {
			t.Errorf("%q: stdout %q", tc.args, r.stdout)
		}
	}
}

func TestDecodeUnsupportedLinkType(t *testing.T) {
	var buf bytes.Buffer
	if _, err := pcap.NewWriter(&buf, 147); err != nil { // LINKTYPE_USER0
		t.Fatal(err)
	}
	r := lispctlEnv(t, &buf, nil, "decode", "-")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "link type 147 is not supported") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// failingWriter refuses every write, like a closed pipe.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("pipe closed") }

func TestDecodeOutputError(t *testing.T) {
	var errOut bytes.Buffer
	code := run([]string{"decode", "--hex", "10400001"},
		streams{in: strings.NewReader(""), out: failingWriter{}, err: &errOut, getenv: func(string) string { return "" }})
	if code != cli.ExitFailed || !strings.Contains(errOut.String(), "writing output: pipe closed") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}
