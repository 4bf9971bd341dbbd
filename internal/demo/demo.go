package demo

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/labweb"
	"github.com/lispd/lispd/internal/tshark"
)

// Options configure a demo run.
type Options struct {
	Name    string    // lab name (default "lispdemo")
	Lispd   string    // lispd binary
	Lispctl string    // lispctl binary, for the `show` excerpts (optional)
	Keep    bool      // leave the network up at the end
	Out     io.Writer // the story
	// Capture, when set, records the LISP traffic seen by the core router
	// into this pcap file (needs tshark).
	Capture string
	// Web, when set, serves the lab page (internal/labweb) at this
	// address while the story runs: the network, each node's state and
	// the steps lighting up. The story prints its URL.
	Web string
}

// webLinger is how long the lab page shows the end of the story before
// the network goes down.
const webLinger = 10 * time.Second

type step struct {
	name   string
	ok     bool
	figure string
}

type runner struct {
	o     Options
	lab   *lab.Lab
	net   *Network
	start time.Time
	steps []step
	web   *labweb.Server // nil without Options.Web
	cur   int            // the step running, for the lab page
}

// story is the demo's steps in order, by the name each records.
func (r *runner) story() []struct {
	name string
	run  func()
} {
	return []struct {
		name string
		run  func()
	}{
		{"registration", r.registration},
		{"first connection", r.firstConnection},
		{"load sharing", r.loadSharing},
		{"PITR/PETR", r.pxtr},
		{"RLOC failover", r.failover},
		{"VM mobility, across subnets", r.mobility},
		{"VM mobility, extended subnet", r.extendedSubnet},
	}
}

// Run builds the network, tells the story and tears it down (unless
// Keep). It returns an error if any step failed.
func Run(ctx context.Context, o Options) (err error) {
	if o.Name == "" {
		o.Name = "lispdemo"
	}
	r := &runner{o: o, start: time.Now()}
	r.say("building the network: %d namespaces (MS/MR, client xTR, two DC1 xTRs, a DC2 xTR, PxTR, hosts, two LAN switches, a hypervisor)", len(Topology(o.Name).Nodes))
	n, err := Up(ctx, o.Name, o.Lispd, Mobility{Mode: "across-subnet", Subscribe: true})
	if err != nil {
		return err
	}
	r.net, r.lab = n, n.Lab
	l := n.Lab
	defer func() {
		if o.Keep && err == nil {
			r.say("network left up (--keep): lisplab down --name %s removes it; admin sockets in %s", o.Name, l.Dir())
			return
		}
		if derr := l.Down(); derr != nil && err == nil {
			err = derr
		}
	}()
	if o.Capture != "" {
		c, err := tshark.Start(l, "core", "capture", o.Capture, tshark.LISPFilter)
		if err != nil {
			return err
		}
		defer c.Stop()
	}
	if err := n.StartLispd(); err != nil {
		return err
	}
	story := r.story()
	if o.Web != "" {
		names := make([]string, len(story))
		for i, st := range story {
			names[i] = st.name
		}
		w, err := labweb.Start(l, o.Web, names, nil)
		if err != nil {
			return err
		}
		r.web = w
		r.say("lab page: %s", w.URL())
		defer func() {
			time.Sleep(webLinger)
			w.Close()
		}()
	}
	for i, st := range story {
		r.cur = i
		r.web.SetStep(i, labweb.StepRunning, "")
		st.run()
	}
	return r.summary()
}

func (r *runner) say(format string, a ...any) {
	fmt.Fprintf(r.o.Out, "[%6.2fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, a...))
}

func (r *runner) record(name string, ok bool, figure string) {
	r.steps = append(r.steps, step{name, ok, figure})
	state := labweb.StepPassed
	if !ok {
		state = labweb.StepFailed
	}
	r.web.SetStep(r.cur, state, figure)
	mark := "ok"
	if !ok {
		mark = "FAILED"
	}
	r.say("  => %s: %s", mark, figure)
}

// show prints a lispctl excerpt, indented, if lispctl is at hand.
func (r *runner) show(node string, args ...string) {
	if r.o.Lispctl == "" {
		return
	}
	out, err := exec.Command(r.o.Lispctl, append([]string{"--socket", r.lab.SocketPath(node)}, args...)...).CombinedOutput()
	if err != nil {
		return
	}
	fmt.Fprintf(r.o.Out, "          $ lispctl show %s   (on %s)\n", strings.Join(args[1:], " "), node)
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Fprintf(r.o.Out, "          | %s\n", line)
	}
}

// decapsulated counts the packets node decapsulated on either data path
// (the kernel path's counters are a subsystem of their own).
func (r *runner) decapsulated(node string) uint64 {
	return r.counter(node, "dataplane", "packets_decapsulated") + r.counter(node, "dataplane_kernel", "packets_decapsulated")
}

func (r *runner) counter(node, subsystem, name string) uint64 {
	return sumCounter(r.net.Lab, node, subsystem, name)
}

// Step 1: the ETRs register (Map-Register, Map-Notify) with the Map-Server.
func (r *runner) registration() {
	r.say("step 1: the ETRs of the client site, DC1 and DC2 register their EID prefixes (Map-Register, HMAC-SHA-256; Map-Notify back)")
	t0 := time.Now()
	err := r.net.WaitRegistered(15 * time.Second)
	if err == nil {
		err = waitFor(5*time.Second, func() bool {
			st, err := query(r.net, r.net.MapServer(), (*adminapi.Client).Status)
			return err == nil && st.Prefixes >= 5
		})
	}
	r.show(r.net.MapServer(), "show", "site")
	if dp, err := query(r.net, "xc", (*adminapi.Client).DataPlane); err == nil {
		why := ""
		if dp.KernelReason != "" {
			why = " (kernel path not used: " + dp.KernelReason + ")"
		}
		r.say("  data path of the xTRs: %s, %d interfaces with the eBPF program on xc%s", dp.Path, len(dp.Programs), why)
	}
	r.record("registration", err == nil, fmt.Sprintf("4 ETRs registered 5 prefixes (3 IPv4, 2 IPv6), Map-Notify received, in %v", time.Since(t0).Round(time.Millisecond)))
}

// Step 2: the first TCP connection from C1 to d1: a miss, a Map-Request
// through the Map-Resolver and Map-Server to a DC1 ETR, its Map-Reply
// straight to the ITR, the SYN held meanwhile.
func (r *runner) firstConnection() {
	r.say("step 2: C1 opens a TCP connection to d1 (%s): the ITR misses, asks the Map-Resolver, the Map-Server forwards to a DC1 ETR, which replies to the ITR directly", d1Addr)
	first, err := r.net.FirstConnection()
	if err != nil {
		r.record("first connection", false, err.Error())
		return
	}
	r.show("xc", "show", "map-cache")
	r.record("first connection", true, fmt.Sprintf("connect and first echo from d1 in %v, resolution included", first.Round(time.Microsecond)))
}

// FirstConnection opens a TCP connection from c1 to d1 and waits for
// the echo of its first bytes: the story's step 2, resolution included
// when the client's ITR does not know d1 yet. It returns how long that
// took.
func (n *Network) FirstConnection() (time.Duration, error) {
	var ln net.Listener
	if err := n.Lab.Do("d1", func() (err error) { ln, err = net.Listen("tcp", d1Addr+":8080"); return err }); err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	var first time.Duration
	err := n.Lab.Do("c1", func() error {
		t0 := time.Now()
		c, err := net.DialTimeout("tcp", d1Addr+":8080", 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("hello d1")); err != nil {
			return err
		}
		buf := make([]byte, 8)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		first = time.Since(t0)
		return nil
	})
	return first, err
}

// Step 3: many flows from C1 to d1 spread over DC1's two RLOCs by weight.
func (r *runner) loadSharing() {
	const flows, perFlow = 400, 5
	r.say("step 3: %d UDP flows from C1 to d1: the ITR hashes each flow to one of DC1's two RLOCs, weights 50/50", flows)
	a0, b0 := r.decapsulated("dc1a"), r.decapsulated("dc1b")
	err := r.lab.Do("c1", func() error {
		for i := range flows {
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(c1Addr), Port: 20000 + i}, &net.UDPAddr{IP: net.ParseIP(d1Addr), Port: 9000})
			if err != nil {
				return err
			}
			for range perFlow {
				c.Write([]byte("flow"))
			}
			c.Close()
			time.Sleep(200 * time.Microsecond) // a steady trickle, not one burst
		}
		return nil
	})
	// The ETRs count what they have read: on a loaded machine they may
	// still be reading when c1 is done, so the count is taken once it
	// stops growing rather than after a fixed pause.
	var a, b uint64
	last, still := uint64(0), 0
	waitFor(5*time.Second, func() bool {
		a, b = r.decapsulated("dc1a")-a0, r.decapsulated("dc1b")-b0
		if a+b == last {
			still++
		} else {
			last, still = a+b, 0
		}
		return a+b >= flows*perFlow || still >= 15 // 15 polls, 300 ms at least, without one more
	})
	total := a + b
	if err != nil || total == 0 {
		r.record("load sharing", false, fmt.Sprint("no packets decapsulated ", err))
		r.sayCounters("xc", "dc1a", "dc1b")
		return
	}
	share := float64(a) / float64(total) * 100
	ok := share > 40 && share < 60 && total >= flows*perFlow*9/10
	r.record("load sharing", ok,
		fmt.Sprintf("dc1a decapsulated %d packets (%.1f %%), dc1b %d (%.1f %%)", a, share, b, 100-share))
	if !ok {
		r.sayCounters("xc", "dc1a", "dc1b")
	}
}

// sayCounters shows where the packets went on each node: both data
// paths' non-zero counters, drops by reason included.
func (r *runner) sayCounters(nodes ...string) {
	for _, node := range nodes {
		s, err := r.lab.DataPlaneCounters(context.Background(), node)
		if err != nil {
			s = err.Error()
		}
		r.say("     %s data-plane counters: %s", node, s)
	}
}

// Step 4: the non-LISP host reaches d1 through the PITR; d1 reaches it
// through the PETR.
func (r *runner) pxtr() {
	r.say("step 4: the non-LISP host %s pings d1 through the PITR, and d1 pings it back through the PETR", nlAddr)
	ping := func(node, dst string, extra ...string) error {
		var err error
		for range 3 {
			var out []byte
			args := append([]string{"ping", "-n", "-c", "3", "-i", "0.2", "-W", "1"}, extra...)
			out, err = r.lab.Exec(node, append(args, dst)...).CombinedOutput()
			if err == nil {
				return nil
			}
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return err
	}
	t0 := time.Now()
	e1 := ping("nl", d1Addr)
	e2 := ping("d1", nlAddr, "-I", d1Addr) // from its EID, not its link address
	ok := e1 == nil && e2 == nil
	fig := fmt.Sprintf("non-LISP -> d1 via PITR and d1 -> non-LISP via PETR both answered, %v", time.Since(t0).Round(time.Millisecond))
	if !ok {
		fig = fmt.Sprintf("PITR: %v; PETR: %v", e1, e2)
	}
	r.record("PITR/PETR", ok, fig)
}

// Step 5: a DC1 uplink fails under a 1,000 packets/s stream; RLOC probing
// moves the traffic to the other RLOC. The outage is the longest gap in
// the sequence numbers d1 receives.
func (r *runner) failover() {
	r.say("step 5: a 1000 packets/s stream from C1 to d1; dc1a's uplink (RLOC %s) is cut; RLOC probing (1 s) moves traffic to %s", dc1aRLOC, dc1bRLOC)
	var conn *net.UDPConn
	if err := r.lab.Do("d1", func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(d1Addr), Port: 9100})
		return err
	}); err != nil {
		r.record("RLOC failover", false, err.Error())
		return
	}
	defer conn.Close()
	var mu sync.Mutex
	arrivals := map[uint32]time.Time{}
	go func() {
		buf := make([]byte, 64)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			if k >= 4 {
				mu.Lock()
				arrivals[binary.BigEndian.Uint32(buf)] = time.Now()
				mu.Unlock()
			}
		}
	}()
	// Flows whose hash picks dc1a are the ones that feel the cut: use
	// many source ports so some surely do.
	const rate, seconds = 1000, 7
	var sendErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendErr = r.lab.Do("c1", func() error {
			var cs []*net.UDPConn
			for i := range 16 {
				c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(c1Addr), Port: 30000 + i}, &net.UDPAddr{IP: net.ParseIP(d1Addr), Port: 9100})
				if err != nil {
					return err
				}
				defer c.Close()
				cs = append(cs, c)
			}
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			b := make([]byte, 64)
			for seq := range uint32(rate * seconds) {
				<-tick.C
				binary.BigEndian.PutUint32(b, seq)
				cs[seq%16].Write(b)
			}
			return nil
		})
	}()
	time.Sleep(2 * time.Second)
	cut := time.Now()
	if err := r.lab.SetLink("core", "dc1a", false); err != nil {
		r.record("RLOC failover", false, err.Error())
		return
	}
	<-done
	time.Sleep(200 * time.Millisecond)
	r.show("xc", "show", "rloc-probing")
	_ = r.lab.SetLink("core", "dc1a", true)
	mu.Lock()
	defer mu.Unlock()
	if sendErr != nil {
		r.record("RLOC failover", false, sendErr.Error())
		return
	}
	// The outage: the longest stretch after the cut with a missing packet.
	lost := 0
	var lastBefore, firstAfter time.Time
	for seq := range uint32(rate * seconds) {
		t, ok := arrivals[seq]
		if !ok {
			lost++
			continue
		}
		if t.Before(cut) && t.After(lastBefore) {
			lastBefore = t
		}
	}
	// Recovery: from the cut to the point after which nothing more is lost.
	lastLoss := uint32(0)
	for seq := range uint32(rate * seconds) {
		if _, ok := arrivals[seq]; !ok {
			lastLoss = seq
		}
	}
	if t, ok := arrivals[lastLoss+1]; ok {
		firstAfter = t
	}
	outage := firstAfter.Sub(cut)
	if lost == 0 {
		outage = 0
	}
	ok := lost < rate*seconds/2 && len(arrivals) > 0 && outage < 3*time.Second
	r.record("RLOC failover", ok, fmt.Sprintf("outage %v, %d of %d packets lost, traffic on %s afterwards", outage.Round(time.Millisecond), lost, rate*seconds, dc1bRLOC))
}

// Step 6: d1, a VM, migrates to DC2 and back (across subnets): the new
// xTR sees its first packet, registers its /32, the Map-Server moves the
// registration, tells the old xTRs (which keep forwarding what still
// arrives) and publishes the change to the client's ITR.
func (r *runner) mobility() {
	r.say("step 6: d1 (%s, a VM) migrates to DC2 and back, keeping its address; the new xTR detects it, the Map-Server moves its /32 and publishes the move to the client's ITR (publish/subscribe); a TCP connection and a 1000 packets/s stream from C1 keep running", d1Addr)
	res, err := r.net.MoveSeries(MoveOptions{Moves: 2, Settle: 1500 * time.Millisecond, Out: indent{r.o.Out}})
	if err != nil {
		r.record("VM mobility, across subnets", false, err.Error())
		return
	}
	r.show("dc1a", "show", "dynamic-eid")
	r.recordMoves("VM mobility, across subnets", res)
}

// Step 7: the same with DC1's subnet stretched to DC2 (VXLAN): the xTRs
// of the LAN tell each other over the notify group.
func (r *runner) extendedSubnet() {
	r.say("step 7: the DC1 subnet is stretched to DC2 at layer 2 (VXLAN); d1 migrates there and back; the xTRs of the LAN tell each other of it (Map-Notify to %s)", notifyGroup)
	if err := r.net.Reconfigure(Mobility{Mode: "extended-subnet", Subscribe: true}); err != nil {
		r.record("VM mobility, extended subnet", false, err.Error())
		return
	}
	res, err := r.net.MoveSeries(MoveOptions{Moves: 2, Settle: 1500 * time.Millisecond, Out: indent{r.o.Out}})
	if err != nil {
		r.record("VM mobility, extended subnet", false, err.Error())
		return
	}
	r.show("dc2", "show", "dynamic-eid")
	r.recordMoves("VM mobility, extended subnet", res)
}

func (r *runner) recordMoves(name string, res *MoveResult) {
	ok := res.TCPErr == nil && res.StaleErr == nil && res.Worst() < 100*time.Millisecond && res.LostPerMove() <= 50
	fig := fmt.Sprintf("%d moves: ITR switched %v median, %v worst after d1's first packet; %.0f UDP packets lost per move; TCP survived (%d KB echoed)",
		len(res.Convergence), res.Median().Round(100*time.Microsecond), res.Worst().Round(100*time.Microsecond), res.LostPerMove(), res.TCPBytes/1024)
	if res.TCPErr != nil {
		fig += "; TCP: " + res.TCPErr.Error()
	}
	if res.StaleErr != nil {
		fig += "; stale state: " + res.StaleErr.Error()
	}
	r.record(name, ok, fig)
}

// indent prefixes the lines a series prints to fit the story.
type indent struct{ w io.Writer }

func (i indent) Write(b []byte) (int, error) {
	_, err := fmt.Fprintf(i.w, "          %s", b)
	return len(b), err
}

func (r *runner) summary() error {
	fmt.Fprintln(r.o.Out)
	tw := tabwriter.NewWriter(r.o.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tRESULT\tMEASURED")
	failed := 0
	for i, s := range r.steps {
		res := "pass"
		if !s.ok {
			res, failed = "FAIL", failed+1
		}
		fmt.Fprintf(tw, "%d. %s\t%s\t%s\n", i+1, s.name, res, s.figure)
	}
	tw.Flush()
	fmt.Fprintf(r.o.Out, "\n%d of %d steps passed in %v\n", len(r.steps)-failed, len(r.steps), time.Since(r.start).Round(100*time.Millisecond))
	if failed > 0 {
		return fmt.Errorf("%d demo steps failed", failed)
	}
	return nil
}
