package config

import (
	"strings"
	"testing"
	"time"
)

func TestMapServerStore(t *testing.T) {
	c := parseString(t, `map-server:
  store:
    etcd:
      endpoints: [http://192.0.2.5:2379, https://192.0.2.6:2379]
      prefix: /lab/
      dial-timeout: 2s
      node: ms1
      lease-ttl: 6s
      tls: {ca: /etc/lispd/etcd-ca.pem, cert: /etc/lispd/ms1.pem, key: /etc/lispd/ms1-key.pem}
  sites: []
`)
	e := c.MapServer.Store.Etcd
	if len(e.Endpoints) != 2 || e.Prefix != "/lab/" || e.DialTimeout != 2*time.Second || e.Node != "ms1" ||
		e.LeaseTTL != 6*time.Second || e.TLS == nil || e.TLS.Key != "/etc/lispd/ms1-key.pem" {
		t.Errorf("store: %+v", e)
	}
	c = parseString(t, "map-server:\n  store:\n    etcd: {endpoints: [http://127.0.0.1:2379]}\n  sites: []\n")
	e = c.MapServer.Store.Etcd
	if e.Prefix != DefaultEtcdPrefix || e.DialTimeout != DefaultEtcdDialTimeout || e.LeaseTTL != DefaultEtcdLeaseTTL || e.Node != "" {
		t.Errorf("defaults: %+v", e)
	}
	if c := parseString(t, "map-server:\n  store: memory\n  sites: []\n"); c.MapServer.Store != nil {
		t.Error("store: memory is not the memory store")
	}
	for _, tc := range []struct{ yaml, want string }{
		{"store: {etcd: {endpoints: [192.0.2.5:2379]}}", "not an etcd client URL"},
		{"store: {etcd: {endpoints: []}}", "at least one etcd endpoint"},
		{"store: {etcd: {endpoints: [http://192.0.2.5:2379], prefix: lispd}}", "must start and end with /"},
		{"store: {etcd: {endpoints: [http://192.0.2.5:2379], node: a/b}}", "no '/' or spaces"},
		{"store: {etcd: {endpoints: [http://192.0.2.5:2379], lease-ttl: 1s}}", "at least 2s"},
		{"store: {etcd: {endpoints: [http://192.0.2.5:2379], tls: {cert: /a.pem}}}", "cert and key go together"},
		{"store: {etcd: {endpoints: [http://192.0.2.5:2379], tls: {ca: ca.pem}}}", "not an absolute path"},
		{"store: {zookeeper: {}}", `unknown key "zookeeper"`},
		{"store: disk", "unknown value"},
	} {
		_, err := Parse([]byte("map-server:\n  "+tc.yaml+"\n  sites: []\n"), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
