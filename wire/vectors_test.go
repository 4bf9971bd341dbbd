package wire_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/testvectors"
	"github.com/lispd/lispd/wire"
)

// roundTrip decodes b, re-encodes it and demands the same bytes.
func roundTrip(t *testing.T, name string, b []byte) wire.Message {
	t.Helper()
	m, err := wire.Decode(b)
	if err != nil {
		t.Errorf("%s: decode: %v", name, err)
		return nil
	}
	if m.Len() != len(b) {
		t.Errorf("%s: Len() = %d, want %d", name, m.Len(), len(b))
	}
	out, err := wire.Encode(m)
	if err != nil {
		t.Errorf("%s: encode: %v", name, err)
		return m
	}
	if !bytes.Equal(out, b) {
		t.Errorf("%s: re-encoding differs\n got  %x\n want %x\n msg  %s", name, out, b, m)
	}
	if s := m.String(); s == "" || strings.Contains(s, "\n") {
		t.Errorf("%s: String() not one line: %q", name, s)
	}
	return m
}

var password = []byte("password")

// checkAuth verifies an authenticated message with "password" and checks
// that flipping any single bit makes verification fail.
func checkAuth(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := wire.Verify(b, password, wire.AuthOptions{}); err != nil {
		t.Errorf("%s: verify with key password: %v", name, err)
		return
	}
	for i := range len(b) * 8 {
		c := bytes.Clone(b)
		c[i/8] ^= 0x80 >> (i % 8)
		if err := wire.Verify(c, password, wire.AuthOptions{}); err == nil {
			t.Errorf("%s: bit %d flipped still verifies", name, i)
			return
		}
	}
}

func isAuthType(b []byte) bool {
	t, _ := wire.PeekType(b)
	return t == wire.TypeMapRegister || t == wire.TypeMapNotify || t == wire.TypeMapNotifyAck
}

func TestHandmadeVectors(t *testing.T) {
	for _, v := range testvectors.JSON(t, "handmade.vectors.json").Vectors {
		b := v.Payload
		name := v.Info
		broken := v.Frame >= 8 // frames 8-11 are the deliberately broken ones (handmade.txt)
		if v.DataFlags != nil {
			// Frame 9 sets E without N, made as a broken header; RFC
			// 9300 §5.3 says E is then ignored, so it is taken, E
			// unused (lispd refused it before 2026-12).
			h, err := wire.DecodeDataHeader(b)
			if v.Frame == 9 {
				if err != nil || !h.E() || h.N() {
					t.Errorf("frame 9 (E without N): %v, want it taken", err)
				}
				continue
			}
			if broken != (err != nil) {
				t.Errorf("frame %d %s: data header err = %v, broken = %v", v.Frame, name, err, broken)
			}
			continue
		}
		if broken {
			if m, err := wire.Decode(b); err == nil {
				t.Errorf("frame %d (%s): broken packet decoded: %s", v.Frame, name, m)
			} else if isAuthType(b) && wire.Verify(b, password, wire.AuthOptions{}) == nil && v.Frame == 11 {
				t.Errorf("frame %d: truncated auth verified", v.Frame)
			}
			continue
		}
		roundTrip(t, name, b)
		if isAuthType(b) {
			checkAuth(t, name, b)
		}
	}
}

func TestOORVectors(t *testing.T) {
	var control, data, auth int
	for _, v := range testvectors.JSON(t, "oor/oor-capture.vectors.json").Vectors {
		b := v.Payload
		if v.DataFlags != nil {
			h, err := wire.DecodeDataHeader(b)
			if err != nil {
				t.Errorf("frame %d: %v", v.Frame, err)
				continue
			}
			if got := h.Flags(); hex.EncodeToString([]byte{got}) != strings.TrimPrefix(*v.DataFlags, "0x") {
				t.Errorf("frame %d: flags %#02x, want %s", v.Frame, got, *v.DataFlags)
			}
			data++
			continue
		}
		m := roundTrip(t, v.Info, b)
		if m == nil {
			continue
		}
		control++
		if want := wire.MessageType(v.LispTypes[0]); m.Type() != want {
			t.Errorf("frame %d: type %v, want %v", v.Frame, m.Type(), want)
		}
		if e, ok := m.(*wire.ECM); ok {
			if e.Message.Type() != wire.MessageType(v.LispTypes[1]) || e.IP.ChecksumsBad {
				t.Errorf("frame %d: ECM inner %v, checksums bad %v", v.Frame, e.Message.Type(), e.IP.ChecksumsBad)
			}
		}
		if isAuthType(b) {
			checkAuth(t, v.Info, b)
			auth++
		}
	}
	if control != 24 || data != 22 || auth != 8 {
		t.Errorf("decoded %d control, %d data, %d authenticated; want 24, 22, 8", control, data, auth)
	}
}

func TestSyntheticVectors(t *testing.T) {
	f, err := os.Open(testvectors.Path(t, "synthetic/vectors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, hx, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		b := lisptest.MustHex(t, strings.TrimSpace(hx))
		n++
		if strings.HasPrefix(name, "data_") {
			h, err := wire.DecodeDataHeader(b)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			t.Logf("%s: %s", name, h)
			continue
		}
		m := roundTrip(t, name, b)
		t.Logf("%s: %v", name, m)
		if isAuthType(b) {
			checkAuth(t, name, b)
		}
	}
	if n != 7 {
		t.Errorf("read %d synthetic vectors, want 7", n)
	}
}

// odlBroken lists the OpenDaylight vectors that are malformed on purpose
// (their test names say so) or that RFC 9301 rejects, keyed by file:line.
var odlBroken = map[string]string{
	"AfiListSerializerTest.java:63":             "AFI-list length exceeds the buffer",
	"AfiListSerializerTest.java:72":             "AFI-list length exceeds the buffer",
	"ApplicationDataSerializerTest.java:57":     "LCAF length exceeds the buffer",
	"DistinguishedNameSerializerTest.java:65":   "LCAF length exceeds the buffer",
	"DistinguishedNameSerializerTest.java:73":   "LCAF length exceeds the buffer",
	"ExplicitLocatorPathSerializerTest.java:88": "ELP length exceeds the buffer",
	"ExplicitLocatorPathSerializerTest.java:97": "ELP length exceeds the buffer",
	"InstanceIdSerializerTest.java:44":          "LCAF length exceeds the buffer",
	"KeyValueAddressSerializerTest.java:45":     "LCAF length exceeds the buffer",
	"SourceDestKeySerializerTest.java:52":       "LCAF length exceeds the buffer",
	"LispSouthboundHandlerTest.java:175":        "inner IP and UDP lengths 4 bytes short of the Map-Request",
	"LispSouthboundHandlerTest.java:237":        "truncated Map-Register",
	"LispSouthboundHandlerTest.java:247":        "truncated ECM",
	"LispSouthboundHandlerTest.java:258":        "truncated ECM",
	"MapNotifySerializationTest.java:366":       "auth length runs past the message",
	"MapRequestSerializationTest.java:53":       "M bit set but no mapping record",
	"MapRequestSerializationTest.java:69":       "M bit set but no mapping record",
	"MapRequestSerializationTest.java:139":      "M bit set but no mapping record",
	"MapRequestSerializationTest.java:95":       "no ITR-RLOC (RFC 9301 requires one)",
	"MapRequestSerializationTest.java:106":      "no ITR-RLOC",
	"MapRequestSerializationTest.java:112":      "no ITR-RLOC",
	"MapRequestSerializationTest.java:117":      "no ITR-RLOC",
	"MapRequestSerializationTest.java:127":      "no ITR-RLOC",
	"MapRequestSerializationTest.java:131":      "no ITR-RLOC",
}

func TestODLVectors(t *testing.T) {
	f, err := os.Open(testvectors.Path(t, "odl/odl-vectors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var title string
	verified := 0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "  ") {
			title = line
			continue
		}
		b := lisptest.MustHex(t, strings.TrimSpace(line))
		_, broken := odlBroken[strings.Fields(title)[0]]
		isAddr := bytes.HasPrefix(b, []byte{0x40, 0x03}) || bytes.HasPrefix(b, []byte{0x00, 0x11})
		var err error
		var out []byte
		var str string
		if isAddr {
			var a wire.Address
			var n int
			// Address tests may carry bytes after the address (the
			// context it is read in); only the address must round-trip.
			a, n, err = wire.DecodeAddress(b)
			if err == nil {
				b = b[:n]
				out, err = a.Append(nil)
				str = a.String()
			}
		} else {
			var m wire.Message
			m, err = wire.Decode(b)
			if err == nil {
				out, err = wire.Encode(m)
				str = m.String()
			}
		}
		switch {
		case broken && err == nil:
			t.Errorf("%s: broken vector decoded: %s", title, str)
		case !broken && err != nil:
			t.Errorf("%s: %v", title, err)
		case !broken && !bytes.Equal(out, b):
			t.Errorf("%s: re-encoding differs\n got  %x\n want %x", title, out, b)
		}
		if strings.Contains(title, "[HMAC verified") {
			checkAuth(t, title, b)
			verified++
		}
		if strings.Contains(title, "WrongAuthentication") && !strings.Contains(title, "Length") {
			if err := wire.Verify(b, password, wire.AuthOptions{}); !errors.Is(err, wire.ErrAuthFailed) {
				t.Errorf("%s: verify = %v, want ErrAuthFailed", title, err)
			}
		}
	}
	if verified != 8 {
		t.Errorf("verified %d ODL Map-Registers, want 8", verified)
	}
}

// readLISPPayloads returns the UDP payloads on ports 4341/4342 of a pcap,
// with a flag telling whether the capture cut the datagram short.
func readLISPPayloads(t *testing.T, path string) (payloads [][]byte, truncated []bool, dataPort []bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.Next()
		if err != nil {
			break // io.EOF, or a broken record in the invalid captures
		}
		d, err := pcap.DecodeUDP(r.LinkType(), p.Data)
		if err != nil {
			continue
		}
		isData := d.Src.Port() == 4341 || d.Dst.Port() == 4341
		if !isData && d.Src.Port() != 4342 && d.Dst.Port() != 4342 {
			continue
		}
		payloads = append(payloads, bytes.Clone(d.Payload))
		truncated = append(truncated, d.Truncated)
		dataPort = append(dataPort, isData)
	}
	return payloads, truncated, dataPort
}

func TestTcpdumpCaptures(t *testing.T) {
	for _, tc := range []struct {
		file  string
		count int
		valid bool
		bad   int // the one datagram of a valid capture that is malformed, 1-based
	}{
		{"lisp_eid_register.pcap", 2, true, 0},
		// #3 sets the I bit but its xTR-ID is cut short (tcpdump prints [|lisp]).
		{"lisp_eid_notify.pcap", 4, true, 3},
		{"lisp_ipv6.pcap", 2, true, 0},
		{"lisp_invalid.pcap", 2, false, 0},
		{"lisp_invalid_length.pcap", 1, false, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			payloads, truncated, _ := readLISPPayloads(t, testvectors.Path(t, "tcpdump/"+tc.file))
			if len(payloads) != tc.count {
				t.Fatalf("%d LISP datagrams, want %d", len(payloads), tc.count)
			}
			failed := 0
			for i, b := range payloads {
				if i+1 == tc.bad {
					if m, err := wire.Decode(b); err == nil {
						t.Errorf("#%d decoded although malformed: %v", i+1, m)
					}
					continue
				}
				if tc.valid {
					m := roundTrip(t, fmt.Sprintf("%s #%d", tc.file, i+1), b)
					t.Logf("#%d %v", i+1, m)
					continue
				}
				m, err := wire.Decode(b)
				if err != nil || truncated[i] {
					failed++
					t.Logf("#%d rejected: %v (capture truncated: %v)", i+1, err, truncated[i])
				} else {
					t.Logf("#%d decoded: %v", i+1, m)
				}
			}
			if !tc.valid && failed == 0 {
				t.Errorf("no datagram of %s was rejected", tc.file)
			}
		})
	}
}
