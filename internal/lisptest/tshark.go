package lisptest

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/pcap"
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
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark); CI installs it")
	}
	return bin
}

// TsharkProblems is what Wireshark finds wrong in the capture: one line
// per frame it calls malformed or gives an expert warning or error; ""
// when it finds nothing.
func TsharkProblems(t testing.TB, bin, path string) string {
	t.Helper()
	out, err := exec.Command(bin, "-n", "-r", path, "-Y", "_ws.malformed || _ws.expert.severity >= 0x600000").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, out)
	}
	return strings.TrimSpace(DropTsharkNoise(string(out)))
}

// DropTsharkNoise removes the warning tshark prints when run as root.
func DropTsharkNoise(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "Running as user") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
