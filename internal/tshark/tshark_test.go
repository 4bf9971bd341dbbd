package tshark

import (
	"testing"

	"github.com/lispd/lispd/internal/testvectors"
)

// TestCheck: Wireshark finds Open Overlay Router's capture clean and the
// hand-broken tcpdump vectors not.
func TestCheck(t *testing.T) {
	if _, err := Find(); err != nil {
		t.Skip(err)
	}
	clean, err := Check(testvectors.Path(t, "oor/oor-capture.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if len(clean) != 0 {
		t.Errorf("OOR capture: %v", clean)
	}
	for _, f := range []string{"tcpdump/lisp_invalid.pcap", "tcpdump/lisp_invalid_length.pcap"} {
		bad, err := Check(testvectors.Path(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) == 0 {
			t.Errorf("%s: no finding", f)
		}
		t.Logf("%s: %v", f, bad)
	}
	n, err := Count(testvectors.Path(t, "oor/oor-capture.pcap"), "lisp.type == 3")
	if err != nil || n == 0 {
		t.Errorf("Map-Registers in the OOR capture: %d, %v", n, err)
	}
	fs, err := Fields(testvectors.Path(t, "oor/oor-capture.pcap"), "lisp.type == 3", "lisp.keyid")
	if err != nil || len(fs) != n {
		t.Errorf("Fields: %d lines for %d frames, %v", len(fs), n, err)
	}
}
