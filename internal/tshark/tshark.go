// Package tshark asks Wireshark — a decoder lispd shares no code with —
// what it makes of captured traffic: it records the traffic of a lab node
// and lists every frame Wireshark finds malformed or warns about, so a
// test can require a capture to be clean.
package tshark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/poll"
)

// Find returns the path of tshark, or an error that says how to install it.
func Find() (string, error) {
	p, err := exec.LookPath("tshark")
	if err != nil {
		return "", errors.New("tshark not installed (apt-get install tshark)")
	}
	return p, nil
}

// LISPFilter is the capture filter of LISP control and data traffic.
const LISPFilter = "udp port 4341 or udp port 4342"

// Capture is tshark recording in a lab node.
type Capture struct {
	Path string
	lab  *lab.Lab
	node string
	proc *lab.Proc
}

// markerPort is where Stop sends its end-of-capture marker, to loopback:
// the discard port, which nothing in a lab listens on.
const markerPort = 9

// Start records what node sends and receives on all its interfaces that
// matches the capture filter (BPF syntax) into path, a classic pcap file,
// as process name. It returns once the file holds a marker datagram sent
// after tshark started: everything from then on is captured.
func Start(l *lab.Lab, node, name, path, filter string) (*Capture, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	filter = fmt.Sprintf("(%s) or (dst host 127.0.0.1 and udp dst port %d)", filter, markerPort)
	p, err := l.Start(node, name, []string{bin, "-q", "-n", "-i", "any", "-F", "pcap", "-w", path, "-f", filter}, nil)
	if err != nil {
		return nil, err
	}
	c := &Capture{Path: path, lab: l, node: node, proc: p}
	// tshark says "Capturing on" once its capture has started.
	err = poll.Until(context.Background(), 10*time.Second, 20*time.Millisecond, func() bool {
		return p.Exited() || strings.Contains(readFile(p.LogPath), "Capturing on")
	})
	if err == nil && !p.Exited() {
		// "Capturing on" comes before dumpcap captures: a marker seen in
		// the file proves it does.
		err = c.mark("start")
	}
	if err != nil || p.Exited() {
		_ = p.Stop()
		return nil, fmt.Errorf("tshark on %s did not start capturing: %v\n%s", node, err, readFile(p.LogPath))
	}
	return c, nil
}

// mark sends a marker datagram to the capture until the file holds it (it
// reaches the file in blocks, a second or two late).
func (c *Capture) mark(what string) error {
	marker := fmt.Appendf(nil, "lispd capture %s %d", what, time.Now().UnixNano())
	var conn net.Conn
	err := c.lab.Do(c.node, func() (err error) {
		conn, err = net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", markerPort))
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	last := time.Time{}
	err = poll.Until(context.Background(), 10*time.Second, 50*time.Millisecond, func() bool {
		if time.Since(last) >= 500*time.Millisecond {
			_, _ = conn.Write(marker)
			last = time.Now()
		}
		return c.proc.Exited() || holds(c.Path, marker)
	})
	if err == nil && c.proc.Exited() {
		err = errors.New("tshark exited")
	}
	return err
}

// Stop ends the capture; the file then holds everything captured. Ending
// tshark loses what dumpcap has not written yet: so Stop waits until the
// file holds a marker sent now, then asks tshark alone (SIGINT) to stop.
func (c *Capture) Stop() error {
	err := c.mark("end")
	if c.proc.Signal(syscall.SIGINT) == nil {
		select {
		case <-c.proc.Done():
		case <-time.After(5 * time.Second):
		}
	}
	if serr := c.proc.Stop(); serr != nil {
		return serr
	}
	if err != nil {
		return fmt.Errorf("tshark on %s: the capture may lack its last packets: %w", c.node, err)
	}
	return nil
}

// holds reports whether a pcap file being written holds a UDP datagram
// with payload p.
func holds(path string, p []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		return false
	}
	for {
		pkt, err := r.Next()
		if err != nil {
			return false
		}
		if d, err := pcap.DecodeUDP(r.LinkType(), pkt.Data); err == nil && bytes.Equal(d.Payload, p) {
			return true
		}
	}
}

// Expert-information severities and the group of TCP sequence analysis
// (Wireshark's epan/proto.h).
const (
	severityWarning = 0x00600000
	severityError   = 0x00800000
	groupSequence   = 0x02000000
)

// Finding is a frame Wireshark finds malformed or warns about.
type Finding struct {
	Frame    int
	Severity string // "warning", "error" or "malformed"
	Message  string
}

func (f Finding) String() string {
	return fmt.Sprintf("frame %d: %s: %s", f.Frame, f.Severity, f.Message)
}

// Check decodes a capture and returns every malformed frame and every
// expert item of severity warning or error, except TCP sequence analysis
// (retransmissions, lost segments: the traffic carried, not its
// encapsulation).
func Check(path string) ([]Finding, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bin, "-n", "-r", path, "-Y", "_ws.malformed || _ws.expert.severity >= 0x600000",
		"-T", "json", "--no-duplicate-keys").Output()
	if err != nil {
		return nil, fmt.Errorf("tshark -r %s: %w%s", path, err, stderrOf(err))
	}
	return findings(out)
}

func findings(out []byte) ([]Finding, error) {
	var frames []struct {
		Source struct {
			Layers map[string]json.RawMessage `json:"layers"`
		} `json:"_source"`
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(out, &frames); err != nil {
		return nil, fmt.Errorf("tshark output: %w", err)
	}
	var fs []Finding
	for _, fr := range frames {
		var frame struct {
			Number string `json:"frame.number"`
		}
		_ = json.Unmarshal(fr.Source.Layers["frame"], &frame)
		n, _ := strconv.Atoi(frame.Number)
		var tree any
		for name, raw := range fr.Source.Layers {
			if name == "_ws.malformed" {
				fs = append(fs, Finding{Frame: n, Severity: "malformed", Message: "malformed packet"})
				continue
			}
			if json.Unmarshal(raw, &tree) == nil {
				walk(tree, func(m map[string]any) {
					if f, ok := expert(n, m); ok {
						fs = append(fs, f)
					}
				})
			}
		}
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Frame < fs[j].Frame })
	// An item can appear in more than one layer of the JSON tree.
	return slices.Compact(fs), nil
}

// expert reads one _ws.expert object.
func expert(frame int, m map[string]any) (Finding, bool) {
	num := func(k string) int64 {
		s, _ := m[k].(string)
		v, _ := strconv.ParseInt(s, 0, 64)
		return v
	}
	if _, ok := m["_ws.expert.severity"]; !ok {
		return Finding{}, false
	}
	sev, group := num("_ws.expert.severity"), num("_ws.expert.group")
	msg, _ := m["_ws.expert.message"].(string)
	switch {
	case group == groupSequence || sev < severityWarning:
		return Finding{}, false
	case sev >= severityError:
		return Finding{Frame: frame, Severity: "error", Message: msg}, true
	default:
		return Finding{Frame: frame, Severity: "warning", Message: msg}, true
	}
}

// walk calls fn on every object of a decoded JSON tree.
func walk(v any, fn func(map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		fn(t)
		for _, c := range t {
			walk(c, fn)
		}
	case []any:
		for _, c := range t {
			walk(c, fn)
		}
	}
}

// Count returns how many frames of a capture match a display filter.
func Count(path, filter string) (int, error) {
	bin, err := Find()
	if err != nil {
		return 0, err
	}
	out, err := exec.Command(bin, "-n", "-r", path, "-Y", filter, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		return 0, fmt.Errorf("tshark -r %s -Y %q: %w%s", path, filter, err, stderrOf(err))
	}
	return strings.Count(string(out), "\n"), nil
}

// Fields returns, for each frame matching a display filter, the values of
// the fields asked for (tab-separated, several occurrences joined by ",").
func Fields(path, filter string, fields ...string) ([]string, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	args := []string{"-n", "-r", path, "-Y", filter, "-T", "fields"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("tshark -r %s -Y %q: %w%s", path, filter, err, stderrOf(err))
	}
	s := strings.TrimRight(string(out), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
