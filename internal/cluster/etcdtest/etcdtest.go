// Package etcdtest runs an etcd server inside the process, for the
// cluster tests, benchmark and simulation: one member on 127.0.0.1 ports
// chosen free at start, its data in a directory the caller owns.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Server is one in-process etcd member.
type Server struct {
	e        *embed.Etcd
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
	client, err := freeURL()
	if err != nil {
		return nil, err
	}
	peer, err := freeURL()
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

// freeURL is an http URL on 127.0.0.1 with a port free now.
func freeURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return &url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

// Endpoint is the client URL.
func (s *Server) Endpoint() string { return s.endpoint }

// Close stops the member and waits until it has.
func (s *Server) Close() {
	s.e.Close()
	<-s.e.Server.StopNotify()
}
