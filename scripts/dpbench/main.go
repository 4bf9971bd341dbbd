// Command dpbench measures lispd's userspace data plane against plain
// routing and the kernel's VXLAN on one namespace topology, in one run
// (scripts/bench dataplane). It needs root, iperf3 and a lispd binary.
//
//	ha ── xa ── core ── xb ── hb      ms (Map-Server/Resolver) hangs off core
//
// Four phases carry the traffic between the site A host ha and the site
// B host hb: plain routing (xa, core and xb route the EID prefixes), LISP
// (lispd xTRs on xa and xb, a lispd Map-Server on ms) on the userspace
// data plane, the same with lispd's kernel (eBPF) path, and kernel VXLAN
// (vxlan devices on xa and xb). Each phase runs iperf3 from ha to hb:
// one TCP stream, four TCP streams, and 64-byte UDP datagrams at a high
// offered rate (4 MiB socket buffers), counted at the receiver. Figures
// are medians of -runs runs; ratios are against plain routing of the same
// run. The last line is machine readable:
//
//	RESULT tcp1-ratio=… tcp4-ratio=… udp64-kpps=… vxlan-tcp1-ratio=…
//	       ebpf-tcp1-ratio=… ebpf-tcp4-ratio=… ebpf-udp64-ratio=…
//	       ebpf-map-update-p50-ms=… ebpf-map-update-p99-ms=…
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
)

// Targets from the data-plane issue.
const (
	targetTCP1Ratio = 0.25
	targetUDP64PPS  = 50000
	// The kernel path's, against plain routing of the same run.
	targetEBPFTCP1  = 0.90
	targetEBPFTCP4  = 0.85
	targetEBPFUDP64 = 0.95
)

// pprofAddr is where lispd serves /debug/pprof inside xa and xb when
// -profile is given.
const pprofAddr = "127.0.0.1:6060"

type bench struct {
	lab        *lab.Lab
	dir        string // configs
	lispd      string
	runs       int
	duration   time.Duration
	udpRate    string
	profileDir string
	only       string           // -phases
	onlyTests  string           // -tests
	procs      []*lab.LispdProc // lispd processes of the LISP phase, ms first
	downErr    error            // from taking the lab down
	out        io.Writer
	// mapUpdates are the kernel path's delays from Map-Reply to BPF map
	// entry (median and p99 of each xTR of each eBPF run), in ms.
	mapUpdateP50, mapUpdateP99 []float64
}

func main() {
	b := &bench{out: os.Stdout}
	flag.StringVar(&b.lispd, "lispd", "bin/lispd", "lispd binary")
	flag.IntVar(&b.runs, "runs", 3, "runs per figure (the median is reported)")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "length of each iperf3 run")
	flag.StringVar(&b.udpRate, "udp-rate", "1G", "iperf3 --bitrate of the 64-byte UDP test (offered load)")
	flag.StringVar(&b.only, "phases", "plain,lisp,ebpf,vxlan", "phases to run, comma-separated (RESULT needs all four)")
	flag.StringVar(&b.onlyTests, "tests", "tcp1,tcp4,udp64", "tests to run, comma-separated (RESULT needs all three)")
	flag.StringVar(&b.profileDir, "profile", "", "after the LISP runs, save CPU profiles of both xTRs' lispd (tcp1 and udp64) in this directory")
	flag.Parse()
	if b.runs < 1 || b.duration < time.Second {
		fmt.Fprintln(os.Stderr, "dpbench: -runs must be >= 1 and -duration >= 1s")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := b.run(ctx)
	if ctx.Err() != nil {
		err = errors.Join(errors.New("interrupted"), b.downErr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dpbench:", err)
		os.Exit(1)
	}
}

// labName is unique to this process; labs of earlier runs that died
// without taking theirs down are removed first.
var labNameRE = regexp.MustCompile(`^dpbench_([0-9]+)$`)

func cleanStaleLabs() {
	names, _ := lab.List()
	for _, name := range names {
		m := labNameRE.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		if err := lab.DownByName(name); err != nil {
			fmt.Fprintf(os.Stderr, "dpbench: removing stale lab %s: %v\n", name, err)
		}
	}
}

func (b *bench) run(ctx context.Context) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	for _, t := range [][2]string{{"iperf3", "iperf3"}, {"ping", "iputils-ping"}} {
		if _, err := exec.LookPath(t[0]); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install %s)", t[0], t[1])
		}
	}
	if b.lispd, err = filepath.Abs(b.lispd); err != nil {
		return err
	}
	if _, err := os.Stat(b.lispd); err != nil {
		return fmt.Errorf("lispd binary: %w (go build -o bin/lispd ./cmd/lispd)", err)
	}
	if b.profileDir != "" {
		if err := os.MkdirAll(b.profileDir, 0o755); err != nil {
			return err
		}
	}
	start := time.Now()
	cleanStaleLabs()
	b.dir, err = os.MkdirTemp("", "lispd-dpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)

	upCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	b.lab, err = lab.Up(upCtx, topology(fmt.Sprintf("dpbench_%d", os.Getpid())))
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if b.downErr = b.lab.Down(); b.downErr != nil {
			err = errors.Join(err, b.downErr)
		}
	}()

	srv, err := b.lab.Start("hb", "iperf3", []string{"iperf3", "--server", "--bind", hostB}, nil)
	if err != nil {
		return err
	}
	shareAutogroup(srv.PID)

	fmt.Fprintf(b.out, "Data plane: ha -> hb (%s) through xa and xb, %d runs of %v per figure, UDP offered at %sbit/s\n",
		hostB, b.runs, b.duration, b.udpRate)
	phases, ts, err := b.selected()
	if err != nil {
		return err
	}
	// Runs are interleaved (plain, LISP, eBPF, VXLAN, then the next run), so
	// that a slow spell of the machine weighs on every path alike and the
	// ratios compare paths measured minutes apart at most.
	figs := map[string]map[string][]result{} // phase -> test -> runs
	width := 0
	for _, ph := range phases {
		figs[ph.name] = map[string][]result{}
		width = max(width, len(ph.label))
	}
	for run := 1; run <= b.runs; run++ {
		fmt.Fprintf(b.out, "== run %d/%d\n", run, b.runs)
		for _, ph := range phases {
			if err := b.runPhase(ctx, ph, ts, figs[ph.name], width, run == b.runs); err != nil {
				return err
			}
		}
	}

	med := func(ph, t string, f func(result) float64) float64 {
		var xs []float64
		for _, r := range figs[ph][t] {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	gbps := func(r result) float64 { return r.BitsPerSec / 1e9 }
	pps := func(r result) float64 { return r.PacketsSec }
	plain1, plain4 := med("plain", "tcp1", gbps), med("plain", "tcp4", gbps)
	ratio := func(x, base float64) float64 {
		if base == 0 {
			return 0
		}
		return x / base
	}

	fmt.Fprintf(b.out, "== medians of %d runs of %v (ratios against plain routing of this run)\n", b.runs, b.duration)
	fmt.Fprintln(b.out, "| path | TCP, 1 stream | TCP, 4 streams | UDP 64-byte, received |")
	fmt.Fprintln(b.out, "|---|---|---|---|")
	for _, ph := range phases {
		t1, t4, u := med(ph.name, "tcp1", gbps), med(ph.name, "tcp4", gbps), med(ph.name, "udp64", pps)
		fmt.Fprintf(b.out, "| %s | %.2f Gbit/s (%.2f×) | %.2f Gbit/s (%.2f×) | %s packets/s |\n",
			ph.label, t1, ratio(t1, plain1), t4, ratio(t4, plain4), thousands(u))
	}
	if len(phases) < 4 || len(ts) < len(tests) {
		fmt.Fprintf(b.out, "   (took %v; no RESULT line without every phase and test)\n", time.Since(start).Round(time.Second))
		return nil
	}
	lisp1 := ratio(med("lisp", "tcp1", gbps), plain1)
	lisp4 := ratio(med("lisp", "tcp4", gbps), plain4)
	lispUDP := med("lisp", "udp64", pps)
	vx1 := ratio(med("vxlan", "tcp1", gbps), plain1)
	fmt.Fprintf(b.out, "== targets\n   LISP TCP single stream >= %.2f× plain routing: %.3f× — %s\n",
		targetTCP1Ratio, lisp1, met(lisp1 >= targetTCP1Ratio))
	fmt.Fprintf(b.out, "   LISP 64-byte UDP >= %s packets/s forwarded: %s packets/s — %s\n",
		thousands(targetUDP64PPS), thousands(lispUDP), met(lispUDP >= targetUDP64PPS))
	e1 := ratio(med("ebpf", "tcp1", gbps), plain1)
	e4 := ratio(med("ebpf", "tcp4", gbps), plain4)
	eUDP := ratio(med("ebpf", "udp64", pps), med("plain", "udp64", pps))
	fmt.Fprintf(b.out, "   lispd kernel (eBPF) TCP single stream >= %.2f× plain routing: %.3f× — %s\n",
		targetEBPFTCP1, e1, met(e1 >= targetEBPFTCP1))
	fmt.Fprintf(b.out, "   lispd kernel (eBPF) TCP 4 streams >= %.2f× plain routing: %.3f× — %s\n",
		targetEBPFTCP4, e4, met(e4 >= targetEBPFTCP4))
	fmt.Fprintf(b.out, "   lispd kernel (eBPF) 64-byte UDP received >= %.2f× plain routing: %.3f× — %s\n",
		targetEBPFUDP64, eUDP, met(eUDP >= targetEBPFUDP64))
	upd50, upd99 := median(b.mapUpdateP50), median(b.mapUpdateP99)
	fmt.Fprintf(b.out, "   lispd kernel (eBPF) map update within 1 ms of the Map-Reply: median %.3f ms, p99 %.3f ms (medians over xTRs and runs) — %s\n",
		upd50, upd99, met(len(b.mapUpdateP50) > 0 && upd50 <= 1))
	fmt.Fprintf(b.out, "   (took %v)\n", time.Since(start).Round(time.Second))
	fmt.Fprintf(b.out, "RESULT tcp1-ratio=%.3f tcp4-ratio=%.3f udp64-kpps=%.1f vxlan-tcp1-ratio=%.3f ebpf-tcp1-ratio=%.3f ebpf-tcp4-ratio=%.3f ebpf-udp64-ratio=%.3f ebpf-map-update-p50-ms=%.3f ebpf-map-update-p99-ms=%.3f\n",
		lisp1, lisp4, lispUDP/1000, vx1, e1, e4, eUDP, upd50, upd99)
	return nil
}

// runPhase sets ph up, runs every test once and takes ph down. After
// the last LISP run it prints lispd's data-plane counters and, with
// -profile, takes the CPU profiles.
func (b *bench) runPhase(ctx context.Context, ph phase, ts []test, figs map[string][]result, width int, last bool) error {
	if err := ph.up(ctx); err != nil {
		b.dumpLogs(ctx)
		return errors.Join(fmt.Errorf("%s: %w", ph.name, err), ph.down())
	}
	var line strings.Builder
	fmt.Fprintf(&line, "   %-*s", width, ph.label)
	for _, t := range ts {
		r, err := b.runIperf(ctx, t, hostB, b.duration)
		if err != nil {
			b.dumpLogs(ctx)
			return errors.Join(fmt.Errorf("%s: %w", ph.name, err), ph.down())
		}
		figs[t.name] = append(figs[t.name], r)
		line.WriteString("   " + t.name + " " + r.String(t))
	}
	fmt.Fprintln(b.out, line.String())
	if ph.name == "ebpf" {
		for _, node := range []string{"xa", "xb"} {
			dp, err := adminapi.Query(ctx, b.lab.SocketPath(node), 2*time.Second, (*adminapi.Client).DataPlane)
			if err == nil && dp.Kernel != nil && dp.Kernel.MapUpdates > 0 {
				b.mapUpdateP50 = append(b.mapUpdateP50, dp.Kernel.MapUpdateP50Seconds*1000)
				b.mapUpdateP99 = append(b.mapUpdateP99, dp.Kernel.MapUpdateP99Seconds*1000)
			}
		}
	}
	if (ph.name == "lisp" || ph.name == "ebpf") && last {
		for _, node := range []string{"xa", "xb"} {
			if s, err := b.lab.DataPlaneCounters(ctx, node); err == nil {
				fmt.Fprintf(b.out, "   %s lispd data-plane counters (this run): %s\n", node, s)
			}
		}
		if b.profileDir != "" {
			if err := b.profile(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "dpbench: profile:", err)
			}
		}
	}
	if err := ph.down(); err != nil {
		return fmt.Errorf("%s: tearing down: %w", ph.name, err)
	}
	return nil
}

// shareAutogroup gives the session of a process the lab started (in a
// session of its own, hence an autogroup of its own at nice 0) the
// scheduling weight of this one's (scripts/bench runs at -20 on a shared
// machine). Otherwise the iperf3 server and the xTRs compete with the
// machine's other load while the iperf3 client does not, and a loaded
// machine measures how often the receiver gets a CPU rather than the
// path: on a busy two-core machine the server got 0.15–0.5 of a CPU and
// lost 35–80 % of the datagrams at its socket on every path. Without
// autogroups (kernel.sched_autogroup_enabled=0) there is nothing to do.
func shareAutogroup(pid int) {
	own, err := os.ReadFile("/proc/self/autogroup")
	if err != nil {
		return
	}
	// "/autogroup-123 nice -20"
	f := strings.Fields(string(own))
	if len(f) != 3 || f[1] != "nice" {
		return
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/autogroup", pid), []byte(f[2]), 0)
}

// selected returns the phases and tests -phases and -tests ask for, in
// their usual order.
func (b *bench) selected() ([]phase, []test, error) {
	want := func(list, name string) bool {
		for _, s := range strings.Split(list, ",") {
			if strings.TrimSpace(s) == name {
				return true
			}
		}
		return false
	}
	var phs []phase
	for _, ph := range b.phases() {
		if want(b.only, ph.name) {
			phs = append(phs, ph)
		}
	}
	var ts []test
	for _, t := range tests {
		if want(b.onlyTests, t.name) {
			ts = append(ts, t)
		}
	}
	if len(phs) == 0 || len(ts) == 0 {
		return nil, nil, errors.New("-phases and -tests select nothing (phases: plain, lisp, ebpf, vxlan; tests: tcp1, tcp4, udp64)")
	}
	return phs, ts, nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// thousands formats n rounded to an integer with comma separators.
func thousands(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r result) String(t test) string {
	if t.udpLen > 0 {
		return fmt.Sprintf("%.1f kpps (of %.1f sent, %.1f%% lost)", r.PacketsSec/1000, r.SentPackets/1000, r.LossPercent)
	}
	return fmt.Sprintf("%.2f Gbit/s (%d retr)", r.BitsPerSec/1e9, r.Retransmits)
}

// dumpLogs prints the tail of every process log after a failure (not
// after an interrupt).
func (b *bench) dumpLogs(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(b.lab.Dir(), "*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		lines = lines[max(0, len(lines)-20):]
		fmt.Fprintf(os.Stderr, "--- %s\n%s\n", filepath.Base(path), strings.Join(lines, "\n"))
	}
}

// profile runs tcp1 and udp64 once more while it takes CPU profiles of
// both xTRs' lispd from their pprof endpoints (reached inside their
// namespaces), and saves them as DIR/NODE-TEST.pprof.
func (b *bench) profile(ctx context.Context) error {
	secs := max(1, int(b.duration.Seconds())-1)
	for _, t := range tests {
		if t.name == "tcp4" {
			continue
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, node := range []string{"xa", "xb"} {
			wg.Go(func() {
				path := filepath.Join(b.profileDir, node+"-"+t.name+".pprof")
				errs[i] = b.fetch(ctx, node, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), path)
			})
		}
		time.Sleep(200 * time.Millisecond)
		_, ierr := b.runIperf(ctx, t, hostB, b.duration)
		wg.Wait()
		if err := errors.Join(append(errs, ierr)...); err != nil {
			return err
		}
		fmt.Fprintf(b.out, "   profiles: %s/{xa,xb}-%s.pprof\n", b.profileDir, t.name)
	}
	return nil
}

// fetch GETs path from node's pprof listener into file.
func (b *bench) fetch(ctx context.Context, node, path, file string) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = b.lab.Do(node, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+pprofAddr+path, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", node, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", node, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}
