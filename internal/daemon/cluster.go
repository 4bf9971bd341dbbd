package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/lispd/lispd/internal/cluster"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/stats"
)

// newClusterStore makes the etcd store of map-server.store.etcd; the
// node name defaults to the host name.
func newClusterStore(c *config.EtcdStore, reg *stats.Registry, log *slog.Logger) (*cluster.Store, error) {
	node := c.Node
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("node: no name given and no host name: %w", err)
		}
		node = h
	}
	o := cluster.Options{Endpoints: c.Endpoints, Prefix: c.Prefix, DialTimeout: c.DialTimeout, Node: node,
		LeaseTTL: c.LeaseTTL, Stats: reg, Log: log}
	if c.TLS != nil {
		t, err := etcdTLS(c.TLS)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		o.TLS = t
	}
	return cluster.New(o)
}

func etcdTLS(c *config.EtcdTLS) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, err
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New(c.CA + ": no PEM certificate")
		}
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, err
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}
