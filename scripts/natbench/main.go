// Command natbench measures NAT traversal on examples/lab/nat.yaml
// (scripts/bench nat). It needs root, nft, iperf3 and a lispd binary.
//
// It builds the lab, waits until the RTR serves both NATed xTRs, checks
// reach both ways (IPv4 and IPv6 EIDs) between the public site and the
// site behind the endpoint-independent NAT (nat-reach), and with the site
// behind the symmetric NAT (symmetric-reach, which also needs the two
// NATed sites to reach each other); flushes both NATs' mappings at once
// and measures how long until the public site reaches both NATed sites
// again (recovery-s, against the xTRs' register-interval); and measures
// single-stream TCP throughput from host-1 to host-p through the RTR
// against plain routing through the same NAT (xtr-1 to xtr-p's RLOC),
// medians of -runs interleaved runs. The last line:
//
//	RESULT nat-reach=pass|fail symmetric-reach=pass|fail recovery-s=… rtr-tcp1-ratio=…
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
)

type bench struct {
	lispd, file string
	runs        int
	duration    time.Duration
	lab         *lab.Lab
	procs       map[string]*lab.LispdProc
}

func main() {
	var b bench
	flag.StringVar(&b.lispd, "lispd", "bin/lispd", "lispd binary")
	flag.StringVar(&b.file, "topology", "examples/lab/nat.yaml", "the NAT example")
	flag.IntVar(&b.runs, "runs", 3, "throughput runs per path (median)")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "length of each iperf3 run")
	flag.Parse()
	if err := b.run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "natbench:", err)
		fmt.Println("RESULT nat-reach=fail symmetric-reach=fail recovery-s=n/a rtr-tcp1-ratio=n/a")
		os.Exit(1)
	}
}

func (b *bench) run(ctx context.Context) (err error) {
	topo, err := lab.LoadTopology(b.file)
	if err != nil {
		return err
	}
	topo.Name = fmt.Sprintf("natb%d", os.Getpid())
	up, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if b.lab, err = lab.Up(up, topo); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.lab.Down()) }()
	if err := b.lab.WriteHosts(topo.DefaultHosts()); err != nil {
		return err
	}
	// The refresh the recovery is measured against: the NATed xTRs'
	// register-interval, as the example configures it.
	var refresh time.Duration
	dir, err := os.MkdirTemp("", "natbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.procs = map[string]*lab.LispdProc{}
	for _, nd := range topo.Nodes {
		if len(nd.LispdConfig) == 0 {
			continue
		}
		path, err := b.lab.WriteLispdConfig(dir, nd.Name, string(nd.LispdConfig))
		if err != nil {
			return err
		}
		if cfg, err := config.Load(path); err == nil && cfg.XTR != nil && cfg.XTR.NATTraversal.Enabled {
			refresh = max(refresh, cfg.XTR.RegisterInterval)
		}
		if b.procs[nd.Name], err = b.lab.StartLispd(nd.Name, path, lab.LispdOptions{Binary: b.lispd}); err != nil {
			return err
		}
		inheritAutogroupNice(b.procs[nd.Name].PID)
	}
	for _, p := range b.procs {
		if err := p.WaitReady(up); err != nil {
			return err
		}
	}
	var xs []adminapi.NATedXTR
	if err := poll.Until(up, time.Minute, 100*time.Millisecond, func() bool {
		xs, _ = adminapi.Query(ctx, b.procs["ms"].Socket, time.Second, (*adminapi.Client).RTR)
		return len(xs) == 2 && xs[0].State == "verified" && xs[1].State == "verified"
	}); err != nil {
		return fmt.Errorf("the RTR does not serve both NATed xTRs: %+v", xs)
	}
	for _, x := range xs {
		fmt.Printf("   RTR serves xTR %s: private %s, translated %s\n", x.XTRID[:8], x.Private, x.Translated)
	}

	natReach := b.reach([][2]string{{"host-1", "host-p"}, {"host-p", "host-1"}})
	symReach := b.reach([][2]string{{"host-2", "host-p"}, {"host-p", "host-2"}, {"host-1", "host-2"}, {"host-2", "host-1"}})
	fmt.Printf("   reach through the endpoint-independent NAT: %s, through the symmetric NAT: %s\n", pass(natReach), pass(symReach))

	// The NATs reboot together; the public site pings each NATed host
	// until it answers.
	for _, n := range []string{"nat-1", "nat-2"} {
		if err := b.lab.FlushNAT(n); err != nil {
			return err
		}
	}
	flushed := time.Now()
	var recovery time.Duration
	for _, h := range []string{"host-1", "host-2"} {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := poll.Until(c, 30*time.Second, 20*time.Millisecond, func() bool {
			return b.lab.Exec("host-p", "ping", "-n", "-c", "1", "-W", "0.2", h).Run() == nil
		})
		cancel()
		if err != nil {
			return fmt.Errorf("%s unreachable 30 s after the NAT reboot", h)
		}
		recovery = time.Since(flushed)
	}
	fmt.Printf("   NAT reboot: both NATed sites reachable again after %.2f s (register-interval %v)\n", recovery.Seconds(), refresh)

	// Throughput: through the RTR (host-1 → host-p) and plain routing
	// through the same NAT (xtr-1 → xtr-p's RLOC), interleaved.
	for _, s := range [][2]string{{"host-p", "198.51.100.10"}, {"xtr-p", "198.18.2.2"}} {
		p, err := b.lab.Start(s[0], "iperf3", []string{"iperf3", "--server", "--bind", s[1]}, nil)
		if err != nil {
			return err
		}
		inheritAutogroupNice(p.PID)
	}
	time.Sleep(500 * time.Millisecond)
	var viaRTR, plain, ratios []float64
	for i := range b.runs {
		r, err := b.iperf(ctx, "host-1", "198.51.100.10")
		if err != nil {
			return fmt.Errorf("through the RTR: %w", err)
		}
		p, err := b.iperf(ctx, "xtr-1", "198.18.2.2")
		if err != nil {
			return fmt.Errorf("plain routing: %w", err)
		}
		viaRTR, plain, ratios = append(viaRTR, r), append(plain, p), append(ratios, r/p)
		fmt.Printf("   run %d: TCP 1 stream through the RTR %.0f Mbit/s, plain routing through the NAT %.0f Mbit/s, ratio %.2f\n",
			i+1, r/1e6, p/1e6, r/p)
	}
	// Each run's ratio is against the baseline of the same sitting: the
	// median of those, not of the two sides apart, which a machine's
	// changing load would skew.
	ratio := median(ratios)
	fmt.Printf("   medians: through the RTR %.0f Mbit/s, plain %.0f Mbit/s, ratio (median of the runs') %.2f (target >= 0.20)\n",
		median(viaRTR)/1e6, median(plain)/1e6, ratio)
	if xs, err := adminapi.Query(ctx, b.procs["ms"].Socket, time.Second, (*adminapi.Client).RTR); err == nil {
		for _, x := range xs {
			fmt.Printf("   RTR packets for xTR %s: %d to it, %d from it\n", x.XTRID[:8], x.PacketsToXTR, x.PacketsFromXTR)
		}
	}
	fmt.Printf("RESULT nat-reach=%s symmetric-reach=%s recovery-s=%.2f rtr-tcp1-ratio=%.2f\n", pass(natReach), pass(symReach),
		recovery.Seconds(), ratio)
	return nil
}

// reach pings each pair both over IPv4 and IPv6 (the hosts' aliases NAME
// and NAME6).
func (b *bench) reach(pairs [][2]string) bool {
	ok := true
	for _, p := range pairs {
		for _, dst := range []string{p[1], p[1] + "6"} {
			if err := b.lab.Ping(p[0], dst); err != nil {
				fmt.Fprintf(os.Stderr, "natbench: %s → %s: %v\n", p[0], dst, err)
				ok = false
			}
		}
	}
	return ok
}

// iperf runs one single-stream TCP test from node cli to dst and returns
// what the server received, in bits/s.
func (b *bench) iperf(ctx context.Context, cli, dst string) (float64, error) {
	out, err := b.lab.ExecContext(ctx, cli, "iperf3", "--client", dst, "--json", "--connect-timeout", "3000",
		"--time", strconv.Itoa(int(b.duration.Seconds()))).Output()
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		return 0, errors.Join(err, jerr)
	}
	if r.Error != "" {
		return 0, errors.New(r.Error)
	}
	return r.End.SumReceived.BitsPerSecond, nil
}

// inheritAutogroupNice gives the autogroup of a process the lab started
// the nice value of ours. The lab starts its processes in sessions of
// their own, so each is an autogroup of its own at nice 0: run in a -20
// autogroup (as benchmarks on the shared machine are), natbench would
// otherwise measure its iperf3 clients at -20 and the lispds and iperf3
// servers they talk to at 0, competing with whatever else runs. Best
// effort: without autogroups there is nothing to inherit.
func inheritAutogroupNice(pid int) {
	own, err := os.ReadFile("/proc/self/autogroup")
	if err != nil {
		return
	}
	var name string
	var nice int
	if _, err := fmt.Sscanf(string(own), "%s nice %d", &name, &nice); err != nil || nice == 0 {
		return
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/autogroup", pid), []byte(strconv.Itoa(nice)), 0)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func pass(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}
