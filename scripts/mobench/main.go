// Command mobench measures host-mobility convergence on the demo network
// (scripts/bench mobility): d1, a VM, moves between DC1 and DC2 under a
// long-lived TCP connection and a 1,000 packets/s UDP stream from c1,
// in three series: across-subnet with SMR only (the client's ITR does
// not subscribe), across-subnet with publish/subscribe, and
// extended-subnet with publish/subscribe; and a fourth, rarp, where the
// hypervisor announces d1 with the RARP frame QEMU sends after a live
// migration and d1 stays silent until the client's ITR has switched
// (across-subnet, publish/subscribe); and v6, the pubsub series with the
// stream, the TCP connection and d1's packets over IPv6 (d1's /128
// moves). Convergence is the time from d1's
// first packet at the new site (rarp: from the RARP frame) to the first
// packet the client's ITR sends to the new site's RLOC, seen on that
// site's uplink. Every lost packet of the stream is charged to where it
// was last seen: the old site's uplink, the new site's, or neither (the
// client's ITR). A fifth, bulk, runs on a network of its own: 500 VMs on
// ten hypervisors move from DC1 to DC2 within one second under 100
// packets/s from c1 to each (internal/demo/bulk.go), 50,000 packets a
// second in all, which the xTRs forward on the kernel (eBPF) data path
// (-bulk-data-plane) and c1 sends in sendmmsg batches from one socket;
// per VM, the time until the client's ITR sends to DC2 (its packets reach
// the VM without DC1's re-encapsulation), the time until it is reached at
// all, and the packets lost; the stream's loss before anything moved (the
// baseline, per VM a second); DC2's Map-Registers, the Map-Server's
// Map-Notifies and its CPU time, the Map-Notifies and SMRs the client's
// ITR received. It needs root and a lispd binary. The last line is
// machine readable:
//
//	RESULT pubsub-median-ms=… pubsub-worst-ms=… smr-median-ms=… lost-per-move=… rarp-median-ms=… … v6-median-ms=… … bulk500-p99-ms=… bulk500-max-ms=… bulk-lost-per-vm=… … bulk-baseline-lost-per-vm-s=… bulk-rate-pps=… bulk-data-plane=… bulk-itr-map-notifies=… bulk-itr-smrs=…
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lispd/lispd/internal/demo"
)

// Targets from the mobility issue.
const (
	targetPubSubMedian = 50 * time.Millisecond
	targetPubSubWorst  = 100 * time.Millisecond
	targetSMRMedian    = time.Second
	targetLostPerMove  = 50
	targetRARPMedian   = 10 * time.Millisecond
	targetRARPLost     = 5
	targetV6Median     = 10 * time.Millisecond
	targetBulkP99      = time.Second
	targetBulkLost     = 20
)

func main() {
	lispd := flag.String("lispd", "bin/lispd", "lispd binary")
	moves := flag.Int("moves", 10, "moves per series (even: d1 ends at home)")
	name := flag.String("name", "lispmob", "lab name")
	keep := flag.Bool("keep", false, "leave the network up at the end (lisplab down --name NAME removes it)")
	only := flag.String("series", "smr,pubsub,v6,extended,rarp,bulk", "series to run, comma-separated")
	bulkVMs := flag.Int("bulk-vms", 500, "VMs of the bulk series")
	bulkHVs := flag.Int("bulk-hypervisors", 10, "hypervisors the bulk series' VMs are spread over")
	bulkRate := flag.Int("bulk-rate", 100, "packets a second from c1 to each VM of the bulk series")
	bulkProfile := flag.String("bulk-profile", "", "save CPU profiles of the bulk series' lispd processes, from the first move for 4 s, in this directory")
	bulkDP := flag.String("bulk-data-plane", "kernel", "xtr.data-plane of the bulk series' xTRs (kernel, userspace, auto; empty: $LISPD_DATAPLANE)")
	flag.Parse()
	var result []string
	err := run(*lispd, *name, *moves, *keep, *only, &result)
	if err == nil && slices.Contains(strings.Split(*only, ","), "bulk") {
		err = runBulk(*lispd, *name+"b", *bulkVMs, *bulkHVs, *bulkRate, *bulkDP, *bulkProfile, *keep, &result)
	}
	fmt.Printf("RESULT %s\n", strings.Join(result, " "))
	if err != nil {
		fmt.Fprintln(os.Stderr, "mobench:", err)
		os.Exit(1)
	}
}

func run(lispd, name string, moves int, keep bool, only string, result *[]string) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	type serie struct {
		name     string
		m        demo.Mobility
		settle   time.Duration
		announce bool
		ipv6     bool
	}
	var series []serie
	for _, s := range []serie{
		{"smr", demo.Mobility{Mode: "across-subnet", Subscribe: false}, 3500 * time.Millisecond, false, false},
		{"pubsub", demo.Mobility{Mode: "across-subnet", Subscribe: true}, 1500 * time.Millisecond, false, false},
		{"v6", demo.Mobility{Mode: "across-subnet", Subscribe: true}, 1500 * time.Millisecond, false, true},
		{"extended", demo.Mobility{Mode: "extended-subnet", Subscribe: true}, 1500 * time.Millisecond, false, false},
		{"rarp", demo.Mobility{Mode: "across-subnet", Subscribe: true}, 1500 * time.Millisecond, true, false},
	} {
		if slices.Contains(strings.Split(only, ","), s.name) {
			series = append(series, s)
		}
	}
	if len(series) == 0 {
		if slices.Contains(strings.Split(only, ","), "bulk") {
			return nil
		}
		return fmt.Errorf("-series %q names none of smr, pubsub, v6, extended, rarp, bulk", only)
	}
	fmt.Printf("building the demo network %q\n", name)
	n, err := demo.Up(ctx, name, lispd, series[0].m)
	if err != nil {
		return err
	}
	defer func() {
		if !keep {
			err = errors.Join(err, n.Down())
		}
	}()
	if err := n.StartLispd(); err != nil {
		return err
	}
	if err := n.WaitRegistered(15 * time.Second); err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	smr := &demo.MoveResult{}
	pubsub := &demo.MoveResult{}
	var rarp, v6 *demo.MoveResult
	var failures []error
	for _, s := range series {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := n.Reconfigure(s.m); err != nil {
			return err
		}
		if s.announce {
			// A site resolves a RARP with the MAC bindings it learnt from
			// the VM's ARP: d1 visits DC2 once, unmeasured, so that both
			// sites have seen it, as the sites of a live data centre have.
			fmt.Printf("\n== warm-up for rarp: d1 visits DC2 once (2 moves, not measured)\n")
			if _, err := n.MoveSeries(demo.MoveOptions{Moves: 2, Settle: s.settle}); err != nil {
				return err
			}
		}
		fmt.Printf("\n== %s, %s%s%s: %d moves\n", s.m.Mode, updates(s.m), map[bool]string{true: ", announced by RARP"}[s.announce],
			map[bool]string{true: ", over IPv6 (d1's /128)"}[s.ipv6], moves)
		r, err := n.MoveSeries(demo.MoveOptions{Moves: moves, Settle: s.settle, Out: os.Stdout, Announce: s.announce, IPv6: s.ipv6})
		if err != nil {
			return err
		}
		fmt.Printf("   convergence median %v, worst %v; UDP lost per move %.1f, median %.1f, by move %v (%d of %d sent; lost at the old site %d, at the new site %d, at the client's ITR %d); TCP %d bytes echoed, %s; state %s; detected by %v\n",
			ms(r.Median()), ms(r.Worst()), r.LostPerMove(), r.MedianLost(), r.Lost, r.Sent-r.Received, r.Sent,
			r.LostAt[demo.LostOldSite], r.LostAt[demo.LostNewSite], r.LostAt[demo.LostAtITR],
			r.TCPBytes, okOr(r.TCPErr, "survived"), okOr(r.StaleErr, "clean"), r.DetectedBy)
		if r.TCPErr != nil {
			failures = append(failures, fmt.Errorf("%s/%s: TCP: %w", s.m.Mode, updates(s.m), r.TCPErr))
		}
		if r.StaleErr != nil {
			failures = append(failures, fmt.Errorf("%s/%s: stale state: %w", s.m.Mode, updates(s.m), r.StaleErr))
		}
		if s.announce {
			rarp = r
			continue
		}
		if s.ipv6 {
			v6 = r
			continue
		}
		into := pubsub
		if !s.m.Subscribe {
			into = smr
		}
		into.Convergence = append(into.Convergence, r.Convergence...)
		into.Lost = append(into.Lost, r.Lost...)
	}
	fmt.Printf("\n%-44s %10s %10s %s\n", "", "median", "worst", "target")
	var res []string
	defer func() { *result = append(*result, res...) }()
	if len(pubsub.Convergence) > 0 {
		fmt.Printf("%-44s %10s %10s ≤ %v median, ≤ %v worst\n", "publish/subscribe", ms(pubsub.Median()), ms(pubsub.Worst()), targetPubSubMedian, targetPubSubWorst)
		res = append(res, fmt.Sprintf("pubsub-median-ms=%.1f pubsub-worst-ms=%.1f", msf(pubsub.Median()), msf(pubsub.Worst())))
	}
	if len(smr.Convergence) > 0 {
		fmt.Printf("%-44s %10s %10s ≤ %v median\n", "SMR only (across-subnet)", ms(smr.Median()), ms(smr.Worst()), targetSMRMedian)
		res = append(res, fmt.Sprintf("smr-median-ms=%.1f", msf(smr.Median())))
	}
	if len(pubsub.Lost) > 0 {
		fmt.Printf("%-44s %10.1f %10s ≤ %d\n", "UDP packets lost per move, publish/subscribe", pubsub.LostPerMove(), "", targetLostPerMove)
		res = append(res, fmt.Sprintf("lost-per-move=%.1f", pubsub.LostPerMove()))
	}
	if v6 != nil {
		fmt.Printf("%-44s %10s %10s ≤ %v median; UDP lost per move %.1f\n", "IPv6 (d1's /128, publish/subscribe)",
			ms(v6.Median()), ms(v6.Worst()), targetV6Median, v6.LostPerMove())
		res = append(res, fmt.Sprintf("v6-median-ms=%.1f v6-worst-ms=%.1f v6-lost-per-move=%.1f", msf(v6.Median()), msf(v6.Worst()), v6.LostPerMove()))
	}
	if rarp != nil {
		byRARP := 0
		for _, how := range rarp.DetectedBy {
			if how == "rarp" {
				byRARP++
			}
		}
		perMove := func(where string) float64 { return float64(rarp.LostAt[where]) / float64(len(rarp.Lost)) }
		fmt.Printf("%-44s %10s %10s ≤ %v median (%d of %d moves detected by the RARP)\n", "announced by RARP (from the frame)",
			ms(rarp.Median()), ms(rarp.Worst()), targetRARPMedian, byRARP, len(rarp.DetectedBy))
		fmt.Printf("%-44s %10.1f %10s ≤ %d median; per move %.1f at the old site, %.1f at the new site, %.1f at the client's ITR\n",
			"UDP packets lost per move, RARP", rarp.MedianLost(), "", targetRARPLost,
			perMove(demo.LostOldSite), perMove(demo.LostNewSite), perMove(demo.LostAtITR))
		res = append(res, fmt.Sprintf("rarp-median-ms=%.1f rarp-worst-ms=%.1f rarp-detected=%d/%d rarp-lost-median=%.1f rarp-lost-old-site=%.1f rarp-lost-new-site=%.1f rarp-lost-itr=%.1f",
			msf(rarp.Median()), msf(rarp.Worst()), byRARP, len(rarp.DetectedBy), rarp.MedianLost(),
			perMove(demo.LostOldSite), perMove(demo.LostNewSite), perMove(demo.LostAtITR)))
	}
	return errors.Join(failures...)
}

func updates(m demo.Mobility) string {
	if m.Subscribe {
		return "publish/subscribe"
	}
	return "SMR only"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", msf(d)) }
func msf(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

func okOr(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

// runBulk runs the bulk series on a network of its own.
func runBulk(lispd, name string, vms, hypervisors, rate int, dataPlane, profile string, keep bool, result *[]string) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("\n== bulk: %d VMs on %d hypervisors move from DC1 to DC2 within 1 s, %d packets/s from c1 to each, xTRs on the %s data path; building %q\n",
		vms, hypervisors, rate, orDefault(dataPlane, "$"+"LISPD_DATAPLANE"), name)
	// Linux keeps one ARP table for every namespace: each VM takes an
	// entry at both sites and in its own node, and past gc_thresh3 the
	// kernel drops packets ("neighbor table overflow"), which would be
	// charged to the migration. The bench raises the thresholds for its
	// run and puts them back after.
	restore, err := roomInARPTable(3*vms + 512)
	if err != nil {
		fmt.Printf("   warning: %v: raise net.ipv4.neigh.default.gc_thresh3 to %d or more, or packets are lost to the table, not to the migration\n", err, 3*vms+512)
	}
	defer restore()
	b, err := demo.UpBulk(ctx, name, lispd, demo.BulkOptions{VMs: vms, Hypervisors: hypervisors, Subscribe: true, Rate: rate, DataPlane: dataPlane, Profile: profile,
		Out: func(format string, a ...any) { fmt.Printf("   "+format+"\n", a...) }})
	if err != nil {
		return err
	}
	defer func() {
		if !keep {
			err = errors.Join(err, b.Down())
		}
	}()
	r, err := b.Migrate(20 * time.Second)
	if err != nil {
		return err
	}
	q := demo.Quantile
	fmt.Printf("   switched to DC2 (the client's ITR sends there): p50 %s, p99 %s, max %s (target p99 ≤ %v)\n",
		ms(q(r.Switched, 0.5)), ms(q(r.Switched, 0.99)), ms(q(r.Switched, 1)), targetBulkP99)
	fmt.Printf("   reached at DC2 at all (re-encapsulated by DC1 too): p50 %s, p99 %s, max %s\n",
		ms(q(r.Reached, 0.5)), ms(q(r.Reached, 0.99)), ms(q(r.Reached, 1)))
	fmt.Printf("   packets lost per VM %.1f (target ≤ %d; %d of %d sent, from 1 s before the first move); baseline loss of the stream before the moves %.1f per VM a second\n",
		r.LostPerVM(), targetBulkLost, r.Sent-r.Received, r.Sent, r.BaselineLost)
	fmt.Printf("   DC2 sent %d Map-Registers for %d VMs; the Map-Server sent %d Map-Notifies (%d of them to DC1 about moved hosts); Map-Server CPU %v; span %v\n",
		r.MapRegisters, r.VMs, r.MapNotifies, r.MovedNotifies, r.MapServerCPU, r.Wall.Round(time.Millisecond))
	fmt.Printf("   the client's ITR received %d Map-Notifies (publications, several hosts each, and its subscriptions' acknowledgements) and %d SMRs (one host each)\n",
		r.ITRMapNotifies, r.ITRSMRs)
	tag := fmt.Sprintf("bulk%d", vms)
	*result = append(*result, fmt.Sprintf("%s-p50-ms=%.1f %s-p99-ms=%.1f %s-max-ms=%.1f bulk-lost-per-vm=%.1f bulk-reached-p99-ms=%.1f bulk-map-registers=%d bulk-map-notifies=%d bulk-moved-notifies=%d bulk-ms-cpu-ms=%.0f bulk-baseline-lost-per-vm-s=%.1f bulk-rate-pps=%d bulk-data-plane=%s bulk-itr-map-notifies=%d bulk-itr-smrs=%d",
		tag, msf(q(r.Switched, 0.5)), tag, msf(q(r.Switched, 0.99)), tag, msf(q(r.Switched, 1)), r.LostPerVM(),
		msf(q(r.Reached, 0.99)), r.MapRegisters, r.MapNotifies, r.MovedNotifies, msf(r.MapServerCPU), r.BaselineLost, rate, b.DataPlane(), r.ITRMapNotifies, r.ITRSMRs))
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// neighThresholds are the host's ARP table limits (one table for every
// namespace): gc_thresh2, gc_thresh3.
var neighThresholds = []string{
	"/proc/sys/net/ipv4/neigh/default/gc_thresh2",
	"/proc/sys/net/ipv4/neigh/default/gc_thresh3",
}

// roomInARPTable raises the ARP table's thresholds so that it holds n
// entries without the kernel dropping packets, and returns what puts the
// old values back.
func roomInARPTable(n int) (restore func(), err error) {
	old := make([]string, len(neighThresholds))
	for i, p := range neighThresholds {
		b, err := os.ReadFile(p)
		if err != nil {
			return func() {}, err
		}
		old[i] = strings.TrimSpace(string(b))
	}
	if v, _ := strconv.Atoi(old[1]); v >= n {
		return func() {}, nil
	}
	restore = func() {
		for i, p := range neighThresholds {
			_ = os.WriteFile(p, []byte(old[i]), 0o644)
		}
	}
	for i, v := range []int{2 * n, 4 * n} {
		if err := os.WriteFile(neighThresholds[i], []byte(strconv.Itoa(v)), 0o644); err != nil {
			restore()
			return func() {}, err
		}
	}
	fmt.Printf("   ARP table thresholds raised for the run (gc_thresh2/3 %d/%d, were %s)\n", 2*n, 4*n, strings.Join(old, "/"))
	return restore, nil
}
