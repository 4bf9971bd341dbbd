// Package etcdtest runs an etcd server for the cluster tests, benchmark
// and simulation: one member on 127.0.0.1 ports chosen free at start, its
// data in a directory the caller owns; inside the process (Start), or the
// real etcd server as a child process (StartBinary).
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is one etcd member.
type Server struct {
	e        *embed.Etcd // in the process; or
	cmd      *exec.Cmd   // a child process
	done     chan struct{}
	endpoint string
}

// Start runs a single-member etcd with its data in dir (which must be
// empty or absent).
func Start(dir string) (*Server, error) {
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = dir
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"/dev/null"}
	// A bench writes much; the default 100,000-entry snapshot interval
	// and 2 GiB quota are fine, the request size is what big batches need.
	cfg.MaxRequestBytes = 8 << 20
	client, peer, err := freeURLs()
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd not ready after 30s")
	}
	return &Server{e: e, endpoint: client.String()}, nil
}

// freeURLs are a client and a peer URL for a member.
func freeURLs() (client, peer *url.URL, err error) {
	if client, err = freeURL(); err != nil {
		return nil, nil, err
	}
	if peer, err = freeURL(); err != nil {
		return nil, nil, err
	}
	return client, peer, nil
}

// freeURL is an http URL on 127.0.0.1 with a port free now.
func freeURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return &url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

// StartBinary runs the etcd server at bin (the real one, as operators
// run it) as a single member with its data in dir (which must be empty or
// absent) and its log in dir/etcd.log, and waits until it answers.
func StartBinary(bin, dir string) (*Server, error) {
	client, peer, err := freeURLs()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(bin, "--name", "etcdtest", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client.String(), "--advertise-client-urls", client.String(),
		"--listen-peer-urls", peer.String(), "--initial-advertise-peer-urls", peer.String(),
		"--initial-cluster", "etcdtest="+peer.String(), "--logger", "zap", "--log-outputs", "stderr")
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, and killed with this process if it dies
	// first: no etcd outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{}), endpoint: client.String()}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Close()
		b, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
		return nil, fmt.Errorf("etcd %s: %w\n%s", bin, err, b[max(0, len(b)-2000):])
	}
	return s, nil
}

// waitReady waits until the member answers a read.
func (s *Server) waitReady(limit time.Duration) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.done:
			return errors.New("exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %v: %w", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Endpoint is the client URL.
func (s *Server) Endpoint() string { return s.endpoint }

// Close stops the member and waits until it has.
func (s *Server) Close() {
	if s.cmd != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		return
	}
	s.e.Close()
	<-s.e.Server.StopNotify()
}
