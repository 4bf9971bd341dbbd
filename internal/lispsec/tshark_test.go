package lispsec

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

// TestTshark writes what LISP-SEC puts on the wire (the ITR's protected
// ECM, the Map-Server's ECM to the ETR, the ETR's signed Map-Reply) into a
// pcap and has Wireshark read it: nothing malformed, no expert warning,
// and the fields it knows agree. Wireshark (4.0 and its current source)
// decodes the S bits of the ECM and the Map-Reply but not the AD itself:
// it shows the Map-Reply AD as trailing data, which we compare byte for
// byte, and tries the ECM's AD as the inner IP header, which it then
// leaves as data (ECM AD Type 1 is no IP version).
func TestTshark(t *testing.T) {
	bin := lisptest.Tshark(t)
	x := newExchange(t, 0x0123456789abcdef, "198.51.100.0/24")
	ad, err := x.q.AuthData(itrKey, wire.SecWrapAESKWHKDF)
	if err != nil {
		t.Fatal(err)
	}
	toMR := wire.EncapsulateMapRequest(x.req, eid, 61000, netip.MustParseAddr("192.0.2.1"))
	if err := toMR.SetAuthData(ad); err != nil {
		t.Fatal(err)
	}
	toETR := wire.EncapsulateMapRequest(x.req, eid, 61000, netip.MustParseAddr("192.0.2.1"))
	toETR.ForETR = true
	if err := toETR.SetAuthData(x.atETR); err != nil {
		t.Fatal(err)
	}
	reply := x.reply(t, "198.51.100.0/24")
	m, _ := wire.Decode(reply)
	replyAD := m.(*wire.MapReply).SecurityAD

	var payloads [][]byte
	for _, e := range []*wire.ECM{toMR, toETR} {
		b, err := wire.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, b)
	}
	payloads = append(payloads, reply)

	itr, mr, etr := netip.MustParseAddrPort("192.0.2.1:61000"), netip.MustParseAddrPort("192.0.2.10:4342"),
		netip.MustParseAddrPort("192.0.2.12:4342")
	path := filepath.Join(t.TempDir(), "lispsec.pcap")
	lisptest.WritePcap(t, path, lisptest.UDP{Src: itr, Dst: mr, Payload: payloads[0]},
		lisptest.UDP{Src: mr, Dst: etr, Payload: payloads[1]}, lisptest.UDP{Src: etr, Dst: itr, Payload: payloads[2]})
	if p := lisptest.TsharkProblems(t, bin, path); p != "" {
		t.Fatalf("tshark finds malformed packets or warnings:\n%s", p)
	}

	out, err := exec.Command(bin, "-n", "-r", path, "-T", "fields", "-E", "separator=|", "-E", "aggregator=,",
		"-e", "lisp.type", "-e", "lisp.ecm.flags.sec", "-e", "lisp.mrep.flags.sec", "-e", "lisp.nonce",
		"-e", "lisp.mapping.eid.ipv4", "-e", "data.data").Output()
	if err != nil {
		t.Fatalf("tshark fields: %v", err)
	}
	t.Logf("tshark:\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("tshark read %d packets, we wrote 3:\n%s", len(lines), out)
	}
	for i, l := range lines[:2] {
		f := strings.Split(l, "|")
		if f[0] != "8" || !isTrue(f[1]) {
			t.Errorf("ECM %d: tshark says type %q, S %q", i, f[0], f[1])
		}
		// What Wireshark could not dissect is our AD followed by the inner packet.
		data, _ := hex.DecodeString(strings.ReplaceAll(f[5], ":", ""))
		sec := []*wire.ECM{toMR, toETR}[i].SecurityAD
		if !bytes.HasPrefix(data, sec) {
			t.Errorf("ECM %d: undissected bytes %x do not start with our AD %x", i, data, sec)
		}
	}
	f3 := strings.Split(lines[2], "|")
	if f3[0] != "2" || !isTrue(f3[2]) || f3[3] != "0x0123456789abcdef" || f3[4] != "198.51.100.0" {
		t.Errorf("Map-Reply: tshark says %q", lines[2])
	}
	if data, _ := hex.DecodeString(strings.ReplaceAll(f3[5], ":", "")); !bytes.Equal(data, replyAD) {
		t.Errorf("Map-Reply AD: tshark's trailing data %x, ours %x", data, replyAD)
	}
}

func isTrue(s string) bool {
	return s == "1" || s == "True" || strings.HasPrefix(s, "0x") && s != "0x0"
}
