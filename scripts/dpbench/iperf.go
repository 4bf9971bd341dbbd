package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// test is one iperf3 measurement between the two hosts.
type test struct {
	name    string // "tcp1", "tcp4", "udp64"
	streams int    // -P
	udpLen  int    // -u -l, 0 for TCP
}

var tests = []test{
	{name: "tcp1", streams: 1},
	{name: "tcp4", streams: 4},
	{name: "udp64", streams: 1, udpLen: 64},
}

// result is what one iperf3 run measured at the receiver.
type result struct {
	BitsPerSec  float64 // received payload bits/s
	PacketsSec  float64 // UDP: datagrams received per second
	SentPackets float64 // UDP: datagrams sent per second
	LossPercent float64 // UDP
	Retransmits int     // TCP
}

// iperfReport is the part of `iperf3 --json` the benchmark reads.
type iperfReport struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			Seconds     float64 `json:"seconds"`
			Bytes       float64 `json:"bytes"`
			Retransmits int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Seconds       float64 `json:"seconds"`
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			Packets       float64 `json:"packets"`
			LostPackets   float64 `json:"lost_packets"`
		} `json:"sum_received"`
	} `json:"end"`
}

// parseIperf reads the client's JSON report. For UDP (udpLen > 0) the
// received datagrams are the bytes the server counted divided by the
// datagram size: the server's count, which the client's report carries in
// sum_received.
func parseIperf(data []byte, udpLen int) (result, error) {
	var r iperfReport
	if err := json.Unmarshal(data, &r); err != nil {
		return result{}, fmt.Errorf("iperf3 report: %w", err)
	}
	if r.Error != "" {
		return result{}, errors.New("iperf3: " + r.Error)
	}
	recv := r.End.SumReceived
	if recv.Seconds <= 0 {
		return result{}, errors.New("iperf3 report: no receiver summary")
	}
	res := result{BitsPerSec: recv.BitsPerSecond, Retransmits: r.End.SumSent.Retransmits}
	if udpLen > 0 {
		res.PacketsSec = recv.Bytes / float64(udpLen) / recv.Seconds
		if s := r.End.SumSent; s.Seconds > 0 {
			res.SentPackets = s.Bytes / float64(udpLen) / s.Seconds
		}
		if recv.Packets > 0 {
			res.LossPercent = 100 * recv.LostPackets / recv.Packets
		}
	}
	return res, nil
}

// runIperf runs the iperf3 client of t in node cli against the server at
// dst and returns what the server received.
func (b *bench) runIperf(ctx context.Context, t test, dst string, d time.Duration) (result, error) {
	args := []string{"iperf3", "--client", dst, "--json", "--connect-timeout", "3000",
		"--time", strconv.Itoa(int(d.Seconds())), "--parallel", strconv.Itoa(t.streams)}
	if t.udpLen > 0 {
		// 4 MiB socket buffers (net.core.rmem_max allowing): the
		// single-threaded iperf3 server shares the two cores with
		// everything else, and with the default 208 KiB its own socket
		// drops packets whenever it waits for a CPU, on every path.
		args = append(args, "--udp", "--length", strconv.Itoa(t.udpLen), "--bitrate", b.udpRate, "--window", "4M")
	}
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	var out []byte
	var err error
	// The server takes a moment to be ready for the next test after one
	// ends; "server is busy" or a refused connection is retried.
	for try := 0; ; try++ {
		cmd := b.lab.ExecContext(ctx, "ha", args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		res, perr := parseIperf(out, t.udpLen)
		if perr == nil {
			return res, nil
		}
		if try < 5 && ctx.Err() == nil && retryable(perr) {
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
			}
			return result{}, fmt.Errorf("%s: %v (%v)", t.name, perr, err)
		}
		return result{}, fmt.Errorf("%s: %v", t.name, perr)
	}
}

func retryable(err error) bool {
	s := err.Error()
	return strings.Contains(s, "busy") || strings.Contains(s, "refused") || strings.Contains(s, "unable to connect")
}

// median returns the median of xs (the lower middle for an even count, as
// scripts/bench's shell helper does).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
