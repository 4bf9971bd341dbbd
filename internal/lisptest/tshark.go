package lisptest

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/tshark"
)

// UDP is one datagram of a capture: payload from Src to Dst.
type UDP struct {
	Src, Dst netip.AddrPort
	Payload  []byte
}

// WritePcap writes the datagrams as Ethernet frames, one a second, into
// the pcap file path.
func WritePcap(t testing.TB, path string, pkts ...UDP) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcap.NewWriter(f, pcap.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		if err := w.WritePacket(time.Unix(int64(i), 0), pcap.BuildUDPFrame(p.Src, p.Dst, p.Payload)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Tshark is the tshark binary; without one the test is skipped.
func Tshark(t testing.TB) string {
	t.Helper()
	bin, err := tshark.Find()
	if err != nil {
		t.Skip(err, "; CI installs it")
	}
	return bin
}

// TsharkProblems is what Wireshark finds wrong in the capture (see
// tshark.Check): one line per finding, "" when it finds nothing.
func TsharkProblems(t testing.TB, _, path string) string {
	t.Helper()
	fs, err := tshark.Check(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(fs))
	for i, f := range fs {
		lines[i] = f.String()
	}
	return strings.Join(lines, "\n")
}
