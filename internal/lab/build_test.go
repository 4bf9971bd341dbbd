package lab

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestBuilder(t *testing.T) {
	b := NewBuilder("b")
	b.Node("r", "router", true)
	b.Node("h", "host", false, Via("0.0.0.0/0", "192.0.2.1").WithMetric(5))
	b.Link("r", "eth0", "h", "", "192.0.2.1/24 2001:db8::1/64", "192.0.2.2/24")
	want := &Topology{Name: "b",
		Nodes: []Node{
			{Name: "r", Role: "router", Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}},
			{Name: "h", Role: "host", Routes: []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Metric: 5}}},
		},
		Links: []Link{{A: "r", AName: "eth0", B: "h",
			AAddrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")},
			BAddrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}}},
	}
	if !reflect.DeepEqual(b.T, want) {
		t.Errorf("built %+v\nwant  %+v", b.T, want)
	}
	if err := b.T.Validate(); err != nil {
		t.Error(err)
	}
}
