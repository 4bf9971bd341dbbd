package nat

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/poll"
	"github.com/lispd/lispd/internal/tshark"
	"github.com/lispd/lispd/wire"
)

// coreCapture records the LISP traffic crossing core with dumpcap (the
// capture engine under tshark: it starts in a fraction of tshark's time,
// which matters on a loaded machine); tshark checks the file afterwards.
type coreCapture struct {
	path string
	proc *lab.Proc
}

// startCapture starts dumpcap on node, nil when dumpcap or tshark is
// missing (the check then does not run; the test says so).
func startCapture(t *testing.T, l *lab.Lab, node, path string) *coreCapture {
	t.Helper()
	bin, err := exec.LookPath("dumpcap")
	if err != nil {
		t.Log("dumpcap not installed: no capture")
		return nil
	}
	if _, err := tshark.Find(); err != nil {
		t.Log(err, ": no capture")
		return nil
	}
	p, err := l.Start(node, "dumpcap", []string{bin, "-q", "-i", "any", "-P", "-w", path, "-f", tshark.LISPFilter}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The file header is written once the capture runs.
	if err := poll.Until(ctx, time.Minute, 50*time.Millisecond, func() bool {
		fi, err := os.Stat(path)
		return p.Exited() || err == nil && fi.Size() >= 24
	}); err != nil || p.Exited() {
		t.Fatalf("dumpcap on %s did not start: %v", node, err)
	}
	return &coreCapture{path: path, proc: p}
}

// stop ends the capture (dumpcap writes what it holds on SIGINT).
func (c *coreCapture) stop() {
	_ = c.proc.Signal(syscall.SIGINT)
	select {
	case <-c.proc.Done():
	case <-time.After(10 * time.Second):
		_ = c.proc.Stop()
	}
}

// natMessages counts, in a capture, the messages of NAT traversal:
// Info-Requests, Info-Replies, ECM'd Map-Registers (R bit, to an RTR; and
// how many of those leave from port 4341), ECMs relayed by the RTR (N
// bit) and Data-Map-Notifies.
func natMessages(t *testing.T, path string) map[string]int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for {
		pkt, err := r.Next()
		if err != nil {
			break
		}
		d, err := pcap.DecodeUDP(r.LinkType(), pkt.Data)
		if err != nil || len(d.Payload) < 8 {
			continue
		}
		// Control messages go to 4342, but for the answers through a
		// NAT (to its port); the RTR sends data from 4342 too. An
		// Info-Reply starts with type 7, a LISP data header with its
		// flags (the RTR's: I, maybe N): neither is the other.
		if d.Dst.Port() != wire.ControlPort && d.Payload[0]>>4 != byte(wire.TypeInfo) {
			h, err := wire.DecodeDataHeader(d.Payload)
			if err == nil && h.I() && h.InstanceID() == 0xffffff {
				got["data-map-notify"]++
			}
			continue
		}
		m, err := wire.Decode(d.Payload)
		if err != nil {
			continue
		}
		switch m := m.(type) {
		case *wire.Info:
			if m.Reply {
				got["info-reply"]++
			} else {
				got["info-request"]++
			}
		case *wire.ECM:
			switch m.Message.(type) {
			case *wire.MapRegister:
				switch {
				case m.ForETR:
					got["ecm-map-register-to-rtr"]++
					// §4.3, §5.1.1: from the data port, so that the NAT
					// state the RTR sends data through is 4341's.
					if d.Src.Port() == wire.DataPort {
						got["ecm-map-register-to-rtr-from-4341"]++
					}
				case m.ForMS:
					got["ecm-map-register-relayed"]++
				default: // Open Overlay Router's (docs/interop.md)
					got["ecm-map-register-no-flag"]++
				}
			case *wire.MapNotify:
				got["ecm-map-notify-to-rtr"]++
			}
		}
	}
	return got
}
