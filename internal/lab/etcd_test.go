package lab

import (
	"slices"
	"strings"
	"testing"
)

func TestEtcdMembers(t *testing.T) {
	const src = `name: etcdlab
nodes:
  - {name: r, role: router}
  - {name: ms1, etcd: {}, loopbacks: [198.18.1.2/32]}
  - {name: ms2, etcd: {address: 198.18.12.2, client-port: 12379, peer-port: 12380}}
  - {name: h}
links:
  - {a: r, b: ms1, a-addrs: [198.18.11.1/24], b-addrs: [198.18.11.2/24]}
  - {a: r, b: ms2, a-addrs: [198.18.12.1/24], b-addrs: [198.18.12.2/24]}
`
	topo, err := ParseTopology([]byte(src), "etcd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://198.18.11.2:2379", "http://198.18.12.2:12379"}
	if got := topo.EtcdEndpoints(); !slices.Equal(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
	if c := topo.clone(); c.Node("ms2").Etcd == topo.Node("ms2").Etcd {
		t.Error("clone shares the Etcd")
	}
	for _, bad := range []struct{ etcd, want string }{
		{"{address: 198.18.99.9}", "etcd.yaml:4: node ms1: etcd address 198.18.99.9 is not an address of the node"},
		{"{client-port: 70000}", "etcd client-port 70000 is outside"},
		{"{client-port: 2380}", "client and peer ports are both 2380"},
		{"{port: 1}", `unknown key "port"`},
	} {
		_, err := ParseTopology([]byte(strings.Replace(src, "{name: ms1, etcd: {}, loopbacks: [198.18.1.2/32]}", "{name: ms1, etcd: "+bad.etcd+", loopbacks: [198.18.1.2/32]}", 1)), "etcd.yaml")
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("etcd %s: %v, want %q", bad.etcd, err, bad.want)
		}
	}
	if _, err := ParseTopology([]byte(strings.Replace(src, "{name: h}", "{name: h, etcd: {}}", 1)), "etcd.yaml"); err == nil ||
		!strings.Contains(err.Error(), "node h: an etcd member needs an address") {
		t.Errorf("member without address: %v", err)
	}
}
