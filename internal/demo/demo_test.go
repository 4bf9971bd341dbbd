package demo

import (
	"testing"

	lispdconfig "github.com/lispd/lispd/internal/config"
)

func TestDemoTopologyValid(t *testing.T) {
	if err := Topology("lispdemo").Validate(); err != nil {
		t.Fatal(err)
	}
}

// The story itself runs as root in test/e2e (TestDemoStory).

// The cluster variant's topology holds, and every lispd configuration of
// it is valid: the Map-Servers with the etcd store on the three members,
// the xTRs registering with every node.
func TestClusterTopologyValid(t *testing.T) {
	topo := ClusterTopology("lispdemo")
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	endpoints := topo.EtcdEndpoints()
	if len(endpoints) != 3 || endpoints[0] != "http://198.18.11.2:2379" {
		t.Fatalf("etcd members %v", endpoints)
	}
	for _, node := range clusterLispNodes {
		cfg, err := lispdconfig.Parse([]byte(config(node, Mobility{Mode: "across-subnet", Subscribe: true}, endpoints)), node)
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		switch {
		case cfg.MapServer != nil:
			if e := cfg.MapServer.Store.Etcd; e == nil || len(e.Endpoints) != 3 || e.Node != node {
				t.Errorf("%s: store %+v", node, cfg.MapServer.Store)
			}
		case cfg.XTR != nil && cfg.XTR.ETR:
			if len(cfg.XTR.MapServers) != 3 {
				t.Errorf("%s registers with %d Map-Servers, want the 3 nodes", node, len(cfg.XTR.MapServers))
			}
		}
	}
}
