package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/dynamiceid"
	"github.com/lispd/lispd/wire"
)

// MoveOptions shape a series of VM moves.
type MoveOptions struct {
	Moves int // d1 goes DC1 → DC2 → DC1 …; an even number ends at home
	// Settle is the pause after a move has converged before the next
	// (SMR is rate-limited to one per 3 s per prefix at the ITR).
	Settle time.Duration
	Rate   int       // UDP stream, packets per second (default 1000)
	Out    io.Writer // a line per move, if set
	// Announce makes the hypervisor announce d1 with RARP as it moves
	// (between leaving the old uplink and joining the new one), as QEMU
	// does at the end of a live migration, and d1 stay silent until
	// the client's ITR sends to the new site (or 300 ms passed):
	// convergence is then measured from the RARP frame.
	Announce bool
	// IPv6 runs the stream, the TCP connection and d1's hellos over IPv6
	// (c1's and d1's IPv6 addresses): the move measured is that of d1's
	// /128.
	IPv6 bool
}

// MoveResult is what a series measured.
type MoveResult struct {
	Mobility
	Convergence []time.Duration // per move: d1's first packet at the new site → the ITR's first packet to it
	Lost        []int           // per move: UDP packets of the stream never received
	Sent        int
	Received    int
	TCPBytes    int64 // echoed back over the long-lived connection and verified
	TCPErr      error // nil: the connection survived every move
	StaleErr    error // nil: afterwards one registration, nothing left at the old site, caches current
	// DetectedBy is, per move, how the new site's xTR detected d1 (rarp,
	// arp, data), as its `show dynamic-eid` says once the move converged.
	DetectedBy []string
	// LostAt says where each lost UDP packet was last seen: LostOldSite
	// (the client's ITR sent it to the site d1 had left), LostNewSite (it
	// reached the new site's uplink and went no further) or LostAtITR
	// (it never reached a data centre: dropped at the client's ITR).
	LostAt map[string]int
}

// Where lost packets went, the keys of MoveResult.LostAt.
const (
	LostOldSite = "old-site"
	LostNewSite = "new-site"
	LostAtITR   = "itr"
)

// MedianLost is the median number of packets lost per move.
func (r *MoveResult) MedianLost() float64 {
	if len(r.Lost) == 0 {
		return 0
	}
	s := slices.Clone(r.Lost)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

// Median and Worst summarise the convergence times.
func (r *MoveResult) Median() time.Duration { return median(r.Convergence) }

// Worst is the longest convergence.
func (r *MoveResult) Worst() time.Duration {
	if len(r.Convergence) == 0 {
		return 0
	}
	return slices.Max(r.Convergence)
}

// LostPerMove is the mean number of packets lost per move.
func (r *MoveResult) LostPerMove() float64 { return mean(r.Lost) }

// mean is the mean of counts, 0 for none.
func mean(counts []int) float64 {
	if len(counts) == 0 {
		return 0
	}
	t := 0
	for _, c := range counts {
		t += c
	}
	return float64(t) / float64(len(counts))
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// siteOf names the data centre behind a switch, and its xTRs' uplinks.
var siteUplinks = map[string][]string{"sw1": {"dc1a", "dc1b"}, "sw2": {"dc2"}}

// MoveD1 migrates d1 to the other data centre: the hypervisor's bridge
// swaps its uplink, to DC2's own LAN in the across-subnet mode or to the
// stretched DC1 LAN in the extended-subnet mode. d1 keeps its address,
// gateway, ARP cache and link.
func (n *Network) MoveD1() error { return n.moveD1(nil) }

// moveD1 is MoveD1; announce, if not nil, runs with the new uplink while
// d1 is on neither: the hypervisor's RARP then reaches the new site
// before anything d1 sends there, as QEMU announces a migrated VM before
// it runs again. (Announced after the swap, the RARP raced d1's own TCP
// retransmissions and, on a loaded machine, sometimes lost.)
func (n *Network) moveD1(announce func(port string) error) error {
	to, port := "sw2", "to2a"
	if n.mob.Mode == dynamiceid.ExtendedSubnet {
		port = "to2b"
	}
	if n.d1At == "sw2" {
		to, port = "sw1", "to1"
	}
	if err := n.Lab.SetMaster("hv", n.d1Port, ""); err != nil {
		return fmt.Errorf("move d1: %w", err)
	}
	if announce != nil {
		if err := announce(port); err != nil {
			return err
		}
	}
	if err := n.Lab.SetMaster("hv", port, "hvbr"); err != nil {
		return fmt.Errorf("move d1: %w", err)
	}
	n.d1At, n.d1Port = to, port
	return nil
}

// Disconnect takes d1 off the network (its hypervisor uplink goes), as
// if the VM were shut down; Reconnect puts it back where it was.
func (n *Network) Disconnect() error {
	if err := n.Lab.SetMaster("hv", n.d1Port, ""); err != nil {
		return fmt.Errorf("disconnect d1: %w", err)
	}
	return nil
}

// Reconnect undoes Disconnect.
func (n *Network) Reconnect() error {
	if err := n.Lab.SetMaster("hv", n.d1Port, "hvbr"); err != nil {
		return fmt.Errorf("reconnect d1: %w", err)
	}
	return nil
}

// Hello makes d1 send one packet (to c1), as a VM does when it wakes up.
func (n *Network) Hello() error {
	return n.Lab.Do("d1", func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(d1Addr)})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteToUDP([]byte("here"), &net.UDPAddr{IP: net.ParseIP(c1Addr), Port: 9201})
		return err
	})
}

// Hosts returns what a node's lispd shows for dynamic EIDs.
func (n *Network) Hosts(node string) ([]adminapi.DynamicEIDHost, error) {
	rs, err := query(n, node, (*adminapi.Client).DynamicEIDs)
	if err != nil {
		return nil, err
	}
	var out []adminapi.DynamicEIDHost
	for _, r := range rs {
		out = append(out, r.Hosts...)
	}
	return out, nil
}

// sniffer timestamps the encapsulated packets the client's ITR sends to
// d1, as they arrive on a data-centre xTR's uplink.
type sniffer struct {
	mu    sync.Mutex
	seen  map[string][]time.Time // by node
	seqAt map[int][]string       // UDP stream sequence number → nodes whose uplink saw it
	stop  atomic.Bool
	wg    sync.WaitGroup
	socks []int
}

func (n *Network) sniff(dst netip.Addr, nodes ...string) (*sniffer, error) {
	s := &sniffer{seen: map[string][]time.Time{}, seqAt: map[int][]string{}}
	src := netip.MustParseAddr(xcRLOC).As4()
	for _, node := range nodes {
		var fd int
		err := n.Lab.Do(node, func() error {
			ifi, err := net.InterfaceByName("up0")
			if err != nil {
				return err
			}
			// ETH_P_ALL: taps see a packet before tc ingress, where
			// lispd's kernel data path decapsulates and redirects it
			// (an ETH_P_IP socket is served after, and never would).
			fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return err
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
				unix.Close(fd)
				return err
			}
			return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
		})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("sniff on %s: %w", node, err)
		}
		s.socks = append(s.socks, fd)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			buf := make([]byte, 2048)
			for !s.stop.Load() {
				k, from, err := unix.Recvfrom(fd, buf, 0)
				if err != nil || k < 20+8+8+20 {
					continue
				}
				if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Protocol != htons(unix.ETH_P_IP) || ll.Pkttype == unix.PACKET_OUTGOING {
					continue
				}
				now := time.Now()
				ihl := int(buf[0]&0x0f) * 4
				if buf[9] != unix.IPPROTO_UDP || [4]byte(buf[12:16]) != src || k < ihl+8+8+20 ||
					binary.BigEndian.Uint16(buf[ihl+2:]) != wire.DataPort {
					continue
				}
				inner := buf[ihl+16 : k]
				iihl, proto, ok := innerTo(inner, dst)
				if !ok {
					continue
				}
				seq := -1
				if proto == unix.IPPROTO_UDP && len(inner) >= iihl+8+4 &&
					binary.BigEndian.Uint16(inner[iihl+2:]) == streamPort {
					seq = int(binary.BigEndian.Uint32(inner[iihl+8:]))
				}
				s.mu.Lock()
				s.seen[node] = append(s.seen[node], now)
				if seq >= 0 {
					s.seqAt[seq] = append(s.seqAt[seq], node)
				}
				s.mu.Unlock()
			}
		}()
	}
	return s, nil
}

// innerTo reports whether the inner packet p is addressed to dst, and
// where its transport header starts and which protocol it is.
func innerTo(p []byte, dst netip.Addr) (hdr int, proto byte, ok bool) {
	switch {
	case dst.Is4() && len(p) >= 20 && p[0]>>4 == 4 && [4]byte(p[16:20]) == dst.As4():
		return int(p[0]&0x0f) * 4, p[9], true
	case dst.Is6() && len(p) >= 40 && p[0]>>4 == 6 && [16]byte(p[24:40]) == dst.As16():
		return 40, p[6], true
	}
	return 0, 0, false
}

// first returns the first time at or after t that one of nodes saw a
// packet.
func (s *sniffer) first(t time.Time, nodes []string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best time.Time
	for _, node := range nodes {
		ts := s.seen[node]
		i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(t) })
		if i < len(ts) && (best.IsZero() || ts[i].Before(best)) {
			best = ts[i]
		}
	}
	return best, !best.IsZero()
}

// sawSeq lists the nodes whose uplink saw packet seq of the stream.
func (s *sniffer) sawSeq(seq int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seqAt[seq]
}

func (s *sniffer) close() {
	s.stop.Store(true)
	s.wg.Wait()
	for _, fd := range s.socks {
		unix.Close(fd)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// MoveSeries moves d1 back and forth under a long-lived TCP connection
// and a UDP stream from c1, and measures each move.
func (n *Network) MoveSeries(o MoveOptions) (*MoveResult, error) {
	if o.Rate == 0 {
		o.Rate = 1000
	}
	res := &MoveResult{Mobility: n.mob}
	say := func(format string, a ...any) {
		if o.Out != nil {
			fmt.Fprintf(o.Out, format+"\n", a...)
		}
	}
	// The addresses the series runs between, and d1's host prefix and
	// DC1's subnet in that family.
	vm, client, dcSpace := netip.MustParseAddr(d1Addr), netip.MustParseAddr(c1Addr), netip.MustParsePrefix("203.0.113.0/24")
	if o.IPv6 {
		vm, client, dcSpace = netip.MustParseAddr(d1Addr6), netip.MustParseAddr(c1Addr6), netip.MustParsePrefix("2001:db8:d::/64")
	}
	host := netip.PrefixFrom(vm, vm.BitLen())
	sn, err := n.sniff(vm, "dc1a", "dc1b", "dc2")
	if err != nil {
		return nil, err
	}
	defer sn.close()

	// d1: the UDP sink, the TCP echo server, and the socket it says
	// "I am here" from after each move.
	var udpIn, hello *net.UDPConn
	var tcpLn net.Listener
	if err := n.Lab.Do("d1", func() (err error) {
		if udpIn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(vm, streamPort))); err != nil {
			return err
		}
		// Not connected: a connected socket would fail its next send
		// with the ICMP port-unreachable c1 answers the last one with.
		if hello, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(vm, 0))); err != nil {
			return err
		}
		tcpLn, err = net.Listen("tcp", netip.AddrPortFrom(vm, 8081).String())
		return err
	}); err != nil {
		return nil, err
	}
	defer udpIn.Close()
	defer hello.Close()
	defer tcpLn.Close()
	maxSeq := o.Rate * (o.Moves*10 + 120)
	arrived := make([]atomic.Bool, maxSeq)
	go func() {
		buf := make([]byte, 64)
		for {
			k, err := udpIn.Read(buf)
			if err != nil {
				return
			}
			if k >= 4 {
				if seq := int(binary.BigEndian.Uint32(buf)); seq < maxSeq {
					arrived[seq].Store(true)
				}
			}
		}
	}()
	go func() {
		for {
			c, err := tcpLn.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	helloTo := net.UDPAddrFromAddrPort(netip.AddrPortFrom(client, 9201))
	sayHello := func() { _, _ = hello.WriteToUDP([]byte("here"), helloTo) }
	// Warm up: d1 is detected at home and registered; the client's ITR
	// forgets whatever it had for DC1 (a /25 learnt before d1 spoke) so
	// that the stream makes it ask for d1's /32.
	sayHello()
	if err := waitFor(10*time.Second, func() bool { return n.registeredBy(host) == map[string]string{"sw1": "dc1", "sw2": "dc2"}[n.d1At] }); err != nil {
		return nil, fmt.Errorf("d1 never registered at home")
	}
	clearDC := func(c *adminapi.Client, ctx context.Context) (int, error) {
		return c.ClearMapCache(ctx, adminapi.MapCacheQuery{EID: dcSpace})
	}
	if _, err := query(n, "xc", clearDC); err != nil {
		return nil, err
	}

	// c1: the TCP connection and the stream.
	var tcp net.Conn
	var udpOut *net.UDPConn
	if err := n.Lab.Do("c1", func() (err error) {
		if tcp, err = net.DialTimeout("tcp", netip.AddrPortFrom(vm, 8081).String(), 5*time.Second); err != nil {
			return err
		}
		udpOut, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(client, 40000)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(vm, streamPort)))
		return err
	}); err != nil {
		return nil, err
	}
	defer tcp.Close()
	defer udpOut.Close()
	pattern := func(i int64) byte { return byte(i % 251) }
	var tcpSent, tcpGot atomic.Int64
	var tcpErr atomic.Pointer[error]
	setTCPErr := func(err error) { tcpErr.CompareAndSwap(nil, &err) }
	stopTCP := make(chan struct{})
	go func() { // writer: 1 KB every 5 ms
		chunk := make([]byte, 1024)
		for {
			select {
			case <-stopTCP:
				return
			case <-time.After(5 * time.Millisecond):
			}
			off := tcpSent.Load()
			for i := range chunk {
				chunk[i] = pattern(off + int64(i))
			}
			if _, err := tcp.Write(chunk); err != nil {
				setTCPErr(err)
				return
			}
			tcpSent.Add(int64(len(chunk)))
		}
	}()
	go func() { // reader: checks every byte echoed
		buf := make([]byte, 4096)
		for {
			k, err := tcp.Read(buf)
			for i := range k {
				if buf[i] != pattern(tcpGot.Load()+int64(i)) {
					setTCPErr(fmt.Errorf("echoed byte %d is wrong", tcpGot.Load()+int64(i)))
					return
				}
			}
			tcpGot.Add(int64(k))
			if err != nil {
				select {
				case <-stopTCP:
				default:
					setTCPErr(err)
				}
				return
			}
		}
	}()
	var sent atomic.Int64
	sendTimes := make([]time.Time, maxSeq)
	stopUDP := make(chan struct{})
	udpDone := make(chan struct{})
	go func() {
		defer close(udpDone)
		b := make([]byte, 64)
		tick := time.NewTicker(time.Second / time.Duration(o.Rate))
		defer tick.Stop()
		for seq := 0; seq < maxSeq; seq++ {
			select {
			case <-stopUDP:
				return
			case <-tick.C:
			}
			binary.BigEndian.PutUint32(b, uint32(seq))
			sendTimes[seq] = time.Now()
			_, _ = udpOut.Write(b)
			sent.Store(int64(seq + 1))
		}
	}()
	if err := waitFor(10*time.Second, func() bool { return n.cachedAt("xc", host, sitesRLOCs[n.d1At]) }); err != nil {
		close(stopUDP)
		close(stopTCP)
		return nil, fmt.Errorf("d1 never cached at home by the client's ITR")
	}
	time.Sleep(time.Second)

	var d1MAC net.HardwareAddr
	if o.Announce {
		var err error
		if d1MAC, err = n.Lab.MAC("d1", "eth0"); err != nil {
			close(stopUDP)
			close(stopTCP)
			return nil, err
		}
	}
	var moveAt []time.Time
	var fromSite []string // per move, the switch d1 left
	for i := range o.Moves {
		fromSite = append(fromSite, n.d1At)
		var t0 time.Time
		var announce func(port string) error
		what := "d1's first packet"
		if o.Announce {
			what = "the hypervisor's RARP"
			announce = func(port string) error {
				t0 = time.Now()
				return n.Lab.AnnounceRARP("hv", port, d1MAC)
			}
		}
		if err := n.moveD1(announce); err != nil {
			close(stopUDP)
			close(stopTCP)
			return nil, err
		}
		if !o.Announce {
			t0 = time.Now()
			sayHello()
		}
		moveAt = append(moveAt, t0)
		var conv time.Duration
		switched := func() bool {
			t1, ok := sn.first(t0, siteUplinks[n.d1At])
			conv = t1.Sub(t0)
			return ok
		}
		// Announced, d1 stays silent until the client's ITR has switched
		// (the RARP alone must do it), but not for ever: a site that never
		// saw d1's MAC cannot resolve the RARP and waits for d1's packet.
		if o.Announce {
			_ = waitFor(300*time.Millisecond, switched)
			sayHello()
		}
		err := waitFor(5*time.Second, switched)
		if err != nil {
			conv = 5 * time.Second
			say("  move %d to %s: the client's ITR did not switch within 5 s", i+1, siteName[n.d1At])
		} else {
			say("  move %d to %s: the client's ITR sends there %v after %s there", i+1, siteName[n.d1At], conv.Round(100*time.Microsecond), what)
		}
		res.Convergence = append(res.Convergence, conv)
		res.DetectedBy = append(res.DetectedBy, n.detectedBy(siteUplinks[n.d1At], vm))
		time.Sleep(o.Settle)
	}
	time.Sleep(300 * time.Millisecond)
	close(stopUDP)
	<-udpDone
	time.Sleep(300 * time.Millisecond)
	close(stopTCP)
	want := tcpSent.Load()
	_ = waitFor(10*time.Second, func() bool { return tcpGot.Load() >= want || tcpErr.Load() != nil })
	res.TCPBytes = tcpGot.Load()
	if p := tcpErr.Load(); p != nil {
		res.TCPErr = *p
	} else if res.TCPBytes < want {
		res.TCPErr = fmt.Errorf("only %d of %d bytes echoed", res.TCPBytes, want)
	}

	// Losses, each charged to the move before it.
	res.Sent = int(sent.Load())
	res.Lost = make([]int, len(moveAt))
	res.LostAt = map[string]int{}
	for seq := range res.Sent {
		if arrived[seq].Load() {
			res.Received++
			continue
		}
		k := sort.Search(len(moveAt), func(i int) bool { return moveAt[i].After(sendTimes[seq]) }) - 1
		// A packet sent while the cable was being moved counts for the
		// move that follows.
		if k+1 < len(moveAt) && moveAt[k+1].Sub(sendTimes[seq]) < 50*time.Millisecond {
			k++
		}
		if k >= 0 {
			res.Lost[k]++
			res.LostAt[n.lostWhere(sn.sawSeq(seq), fromSite[k])]++
		}
	}
	res.StaleErr = n.checkState(host)
	return res, nil
}

// streamPort is d1's UDP port of the measured stream.
const streamPort = 9200

// lostWhere names where a lost packet went from the uplinks that saw it
// and the site d1 had left.
func (n *Network) lostWhere(sawAt []string, left string) string {
	for _, node := range sawAt {
		if slices.Contains(siteUplinks[left], node) {
			return LostOldSite
		}
	}
	if len(sawAt) > 0 {
		return LostNewSite
	}
	return LostAtITR
}

// detectedBy says how the xTRs of a site detected d1's address vm (""
// if none holds it).
func (n *Network) detectedBy(nodes []string, vm netip.Addr) string {
	for _, node := range nodes {
		hosts, err := n.Hosts(node)
		if err != nil {
			continue
		}
		for _, h := range hosts {
			if h.EID == vm && h.State == adminapi.HostLocal {
				return h.DetectedBy
			}
		}
	}
	return ""
}

var (
	siteName   = map[string]string{"sw1": "DC1", "sw2": "DC2"}
	sitesRLOCs = map[string][]string{"sw1": {dc1aRLOC, dc1bRLOC}, "sw2": {dc2RLOC}}
)

// cacheOf returns the locators a node's map-cache holds for d1, one of
// d1's host prefixes.
func (n *Network) cacheOf(node string, d1 netip.Prefix) ([]string, bool) {
	mc, err := query(n, node, func(c *adminapi.Client, ctx context.Context) ([]adminapi.MapCacheEntry, error) {
		return c.MapCache(ctx, adminapi.MapCacheQuery{EID: d1})
	})
	if err != nil {
		return nil, false
	}
	for _, e := range mc {
		if e.EIDPrefix != d1 {
			continue
		}
		var got []string
		for _, l := range e.Locators {
			got = append(got, l.Address.String())
		}
		slices.Sort(got)
		return got, true
	}
	return nil, false
}

// cachedAt reports whether a node's map-cache maps d1 (a host prefix of
// d1) to exactly rlocs.
func (n *Network) cachedAt(node string, d1 netip.Prefix, rlocs []string) bool {
	got, ok := n.cacheOf(node, d1)
	return ok && slices.Equal(got, rlocs)
}

// allSites fetches every Map-Server site.
func allSites(c *adminapi.Client, ctx context.Context) ([]adminapi.Site, error) {
	return c.Sites(ctx, "")
}

// RegisteredBy names the Map-Server site holding d1's /32 ("" for none,
// "dc1+dc2" for two).
func (n *Network) RegisteredBy() string {
	return n.registeredBy(netip.PrefixFrom(netip.MustParseAddr(d1Addr), 32))
}

// registeredBy is RegisteredBy for one of d1's host prefixes.
func (n *Network) registeredBy(d1 netip.Prefix) string {
	sites, err := query(n, n.MapServer(), allSites)
	if err != nil {
		return ""
	}
	var by []string
	for _, st := range sites {
		for _, r := range st.Registrations {
			if r.EIDPrefix == d1 {
				by = append(by, st.Name)
			}
		}
	}
	return strings.Join(by, "+")
}

// checkState verifies nothing stale is left after moves: the Map-Server
// holds d1 for one site only, the other site's xTRs do not claim it, and
// the client's ITR maps it to where it is. d1 is the host prefix of d1
// the series moved.
func (n *Network) checkState(d1 netip.Prefix) error {
	here, there := n.d1At, "sw1"
	if here == "sw1" {
		there = "sw2"
	}
	var errs []error
	sites, err := query(n, n.MapServer(), allSites)
	if err != nil {
		return err
	}
	holders := 0
	for _, st := range sites {
		for _, r := range st.Registrations {
			if r.EIDPrefix != d1 {
				continue
			}
			holders++
			if want := map[string]string{"sw1": "dc1", "sw2": "dc2"}[here]; st.Name != want {
				errs = append(errs, fmt.Errorf("Map-Server: d1 registered by site %s, want %s", st.Name, want))
			}
		}
	}
	if holders != 1 {
		errs = append(errs, fmt.Errorf("Map-Server: %d registrations of d1, want 1", holders))
	}
	for _, node := range siteUplinks[there] {
		rs, err := query(n, node, (*adminapi.Client).DynamicEIDs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range rs {
			for _, h := range r.Hosts {
				if h.EID == d1.Addr() && h.State == adminapi.HostLocal {
					errs = append(errs, fmt.Errorf("%s still claims d1", node))
				}
			}
		}
	}
	// The client's ITR maps d1 to where it is, and so does any other
	// map-cache that holds it (the PxTR's, the old site's away entries) —
	// within the 3 s an ITR may hold back an SMR-invoked Map-Request.
	caches := func() []error {
		var errs []error
		if !n.cachedAt("xc", d1, sitesRLOCs[here]) {
			errs = append(errs, fmt.Errorf("client ITR does not map d1 to %s", siteName[here]))
		}
		for _, node := range append([]string{"px"}, siteUplinks[there]...) {
			if got, has := n.cacheOf(node, d1); has && !n.cachedAt(node, d1, sitesRLOCs[here]) {
				errs = append(errs, fmt.Errorf("%s maps d1 to %v, not %s", node, got, siteName[here]))
			}
		}
		return errs
	}
	_ = waitFor(5*time.Second, func() bool { return len(caches()) == 0 })
	errs = append(errs, caches()...)
	return errors.Join(errs...)
}
