// Package cluster runs a Map-Server/Map-Resolver cluster on the real etcd
// server in network namespaces: the demo network (internal/demo) with its
// mapping system made three lispd nodes, each with an etcd member, all
// answering on one anycast Map-Resolver address. It needs root and the
// etcd server (Debian package etcd-server); without either every test
// skips with a message.
package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/demo"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
	"github.com/lispd/lispd/internal/tshark"
)

// lispdBin is the lispd binary built once for all tests (as root).
var lispdBin string

func TestMain(m *testing.M) { os.Exit(lab.MainWithLispd(m, os.Geteuid() == 0, &lispdBin)) }

// The demo's addresses (internal/demo/topology.go).
const (
	c1Addr = "198.51.100.10"
	d1Addr = "203.0.113.10"
)

// TestClusterDemo: the ITRs resolve through the anycast Map-Resolver
// address (ms1 first); ms1 is killed (lispd and its etcd member, SIGKILL,
// its link down) under a stream from c1 to d1, which goes on; the demo's
// first connection then resolves through ms2, and its VM-move series
// passes on the two nodes left; Wireshark finds nothing wrong in the
// capture; and nothing of the lab, its etcd members or their data is left.
func TestClusterDemo(t *testing.T) {
	lab.RequireRoot(t)
	if _, err := lab.EtcdBinary(); err != nil {
		t.Skip(err)
	}
	name := fmt.Sprintf("mscl%d", os.Getpid())
	n, err := demo.UpCluster(context.Background(), name, lispdBin, demo.Mobility{Mode: "across-subnet", Subscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Down() })
	dir := n.Lab.Dir()
	capture := ""
	if _, err := tshark.Find(); err == nil {
		capture = filepath.Join(t.TempDir(), "cluster.pcap")
		c, err := tshark.Start(n.Lab, "core", "capture", capture, tshark.LISPFilter)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
	} else {
		t.Log("tshark not installed: the capture check is skipped")
	}
	if err := n.StartLispd(); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitRegistered(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Every node answers for the whole cluster: the three sites' prefixes.
	for _, ms := range demo.ClusterNodes {
		waitFor(t, 15*time.Second, func() bool {
			st, err := query(n, ms, (*adminapi.Client).Status)
			return err == nil && st.Prefixes >= 3
		}, ms+" does not hold the cluster's prefixes")
		v, err := query(n, ms, (*adminapi.Client).Cluster)
		if err != nil || !v.Connected || len(v.Nodes) != 3 {
			t.Fatalf("%s: show cluster %+v (%v)", ms, v, err)
		}
	}

	// The first connection resolves through the anycast address: ms1.
	e1, e2 := ecms(t, n, "ms1"), ecms(t, n, "ms2")
	first, err := n.FirstConnection()
	if err != nil {
		t.Fatal("first connection:", err)
	}
	t.Logf("first connection through ms1: %v", first)
	if ecms(t, n, "ms1") == e1 || ecms(t, n, "ms2") != e2 {
		t.Error("the client's ITR did not resolve through ms1, the anycast address's nearest node")
	}

	// ms1 dies under a 500 packets/s stream from c1 to d1.
	lost, err := streamAcross(n, 500, 4*time.Second, func() error { return n.KillMS("ms1") })
	if err != nil {
		t.Fatal(err)
	}
	if lost > 50 {
		t.Errorf("the stream lost %d packets when ms1 died", lost)
	}
	// The client's ITR forgets d1: the next first connection resolves
	// again, now through ms2, which answers for the ETRs' registrations
	// (they register with every node).
	if _, err := query(n, "xc", func(c *adminapi.Client, ctx context.Context) (int, error) {
		return c.ClearMapCache(ctx, adminapi.MapCacheQuery{})
	}); err != nil {
		t.Fatal(err)
	}
	e2 = ecms(t, n, "ms2")
	if first, err = n.FirstConnection(); err != nil {
		t.Fatal("first connection with ms1 dead:", err)
	}
	t.Logf("first connection through ms2: %v", first)
	if ecms(t, n, "ms2") == e2 {
		t.Error("ms2 did not answer for the dead ms1")
	}
	// ms1's lease ends: the others drop its Records and see it gone.
	waitFor(t, 20*time.Second, func() bool {
		v, err := query(n, "ms2", (*adminapi.Client).Cluster)
		if err != nil {
			return false
		}
		for _, nd := range v.Nodes {
			if nd.Name == "ms1" && (nd.Alive || nd.Prefixes > 0) {
				return false
			}
		}
		return true
	}, "ms2 still sees ms1's lease or Records")

	// The demo's VM-move step on the two nodes left.
	var out strings.Builder
	res, err := n.MoveSeries(demo.MoveOptions{Moves: 2, Settle: 1500 * time.Millisecond, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.TCPErr != nil || res.StaleErr != nil || res.Worst() >= 100*time.Millisecond || res.LostPerMove() > 50 {
		t.Errorf("VM moves: worst convergence %v, %.0f lost per move, TCP: %v, stale state: %v",
			res.Worst(), res.LostPerMove(), res.TCPErr, res.StaleErr)
	}

	if capture != "" {
		time.Sleep(300 * time.Millisecond)
		findings, err := tshark.Check(capture)
		if err != nil {
			t.Error(err)
		}
		for _, f := range findings {
			t.Errorf("tshark: %s", f)
		}
		if k, err := tshark.Count(capture, "lisp || lisp-data"); err != nil || k < 1000 {
			t.Errorf("the capture holds only %d LISP frames (%v)", k, err)
		}
	}

	// Down leaves nothing: no etcd member, no data directory.
	if err := n.Down(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left behind: %v", dir, err)
	}
	if pids := etcdOf(name); len(pids) > 0 {
		t.Errorf("etcd processes of the lab left running: %v", pids)
	}
}

// streamAcross sends a UDP stream of rate packets/s from c1 to d1 for d,
// calls during halfway through, and returns how many packets d1 missed.
func streamAcross(n *demo.Network, rate int, d time.Duration, during func() error) (int, error) {
	var in *net.UDPConn
	if err := n.Lab.Do("d1", func() (err error) {
		in, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(d1Addr), Port: 9300})
		return err
	}); err != nil {
		return 0, err
	}
	defer in.Close()
	total := rate * int(d/time.Second)
	got := make([]atomic.Bool, total)
	go func() {
		buf := make([]byte, 64)
		for {
			k, err := in.Read(buf)
			if err != nil {
				return
			}
			if seq := int(binary.BigEndian.Uint32(buf)); k >= 4 && seq < total {
				got[seq].Store(true)
			}
		}
	}()
	errc := make(chan error, 1)
	go func() {
		time.Sleep(d / 2)
		errc <- during()
	}()
	err := n.Lab.Do("c1", func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(c1Addr)}, &net.UDPAddr{IP: net.ParseIP(d1Addr), Port: 9300})
		if err != nil {
			return err
		}
		defer c.Close()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		b := make([]byte, 64)
		for seq := range total {
			<-tick.C
			binary.BigEndian.PutUint32(b, uint32(seq))
			_, _ = c.Write(b)
		}
		return nil
	})
	if derr := <-errc; err == nil {
		err = derr
	}
	time.Sleep(200 * time.Millisecond)
	lost := 0
	for i := range got {
		if !got[i].Load() {
			lost++
		}
	}
	return lost, err
}

// ecms is how many ECM'd Map-Requests node's lispd received.
func ecms(t *testing.T, n *demo.Network, node string) uint64 {
	t.Helper()
	var v uint64
	for k, c := range n.Counters(node) {
		if strings.HasSuffix(k, "/messages_received{type=ecm}") {
			v += c
		}
	}
	return v
}

func query[T any](n *demo.Network, node string, f func(*adminapi.Client, context.Context) (T, error)) (T, error) {
	return adminapi.Query(context.Background(), n.Lab.SocketPath(node), 2*time.Second, f)
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	if err := poll.Until(context.Background(), limit, 50*time.Millisecond, cond); err != nil {
		t.Fatalf("%s after %v", what, limit)
	}
}

// etcdOf lists the pids of etcd processes still running with lab name's
// data directory.
func etcdOf(name string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), filepath.Join(lab.RunRoot, name)+"/") && strings.Contains(string(cmd), "etcd") {
			out = append(out, e.Name())
		}
	}
	return out
}
