package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/lispd/lispd/wire"
)

func TestMSRTRKeys(t *testing.T) {
	c, err := Parse([]byte(`map-server:
  rtrs: [192.0.2.10]
  rtr-keys:
    - {address: 192.0.2.10, key-id: 300, algorithm: hmac-sha-1-96, secret: ms-rtr}
    - {address: 192.0.2.11, secret: other}
  sites:
    - name: a
      keys: [{secret: x}]
      eid-prefixes: [{prefix: 10.0.0.0/8}]
      rtrs: [192.0.2.11]
rtr:
  map-servers: [192.0.2.1]
  map-server-keys: [{address: 192.0.2.1, key-id: 300, algorithm: hmac-sha-1-96, secret: ms-rtr}]
`), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := MSRTRKey{Address: netip.MustParseAddr("192.0.2.10"), ID: 300, Algorithm: wire.AuthHMACSHA1, Secret: []byte("ms-rtr")}
	if got := c.MapServer.RTRKeys; len(got) != 2 || got[0].Address != want.Address || got[0].ID != 300 ||
		got[0].Algorithm != want.Algorithm || string(got[0].Secret) != "ms-rtr" || got[1].ID != 0 || got[1].Algorithm != DefaultAuthAlgorithm {
		t.Errorf("map-server.rtr-keys = %+v", got)
	}
	if got := c.RTR.MapServerKeys; len(got) != 1 || got[0].Address != netip.MustParseAddr("192.0.2.1") || got[0].ID != 300 {
		t.Errorf("rtr.map-server-keys = %+v", got)
	}
}

func TestMSRTRKeysBadConfigs(t *testing.T) {
	const site = "  sites: [{name: a, keys: [{secret: x}], eid-prefixes: [{prefix: 10.0.0.0/8}]}]\n"
	for _, c := range []struct{ yaml, want string }{
		{"rtr:\n  map-servers: [192.0.2.1]\n  map-server-keys:\n    - {address: 192.0.2.1, secret: a}\n    - {address: 192.0.2.1, secret: b}\n",
			"5: rtr.map-server-keys[1].address: a second key for 192.0.2.1 (first at line 4)"},
		{"rtr:\n  map-servers: [192.0.2.1]\n  map-server-keys:\n    - {address: 192.0.2.2, secret: a}\n",
			"4: rtr.map-server-keys.address: 192.0.2.2 is none of rtr.map-servers, so the key could never be used"},
		{"rtr:\n  map-servers: [192.0.2.1]\n  map-server-keys:\n    - {secret: a}\n",
			`4: rtr.map-server-keys[0]: missing required key "address"`},
		{"rtr:\n  map-servers: [192.0.2.1]\n  map-server-keys:\n    - {address: 192.0.2.1}\n",
			`4: rtr.map-server-keys[0]: missing required key "secret" (or "secret-file")`},
		{"rtr:\n  map-servers: [192.0.2.1]\n  map-server-keys:\n    - {address: 192.0.2.1, key-id: 65536, secret: a}\n",
			"4: rtr.map-server-keys[0].key-id:"},
		{"rtr:\n  map-servers: [192.0.2.1]\n  map-server-keys:\n    - {address: 192.0.2.1, algorithm: none, secret: a}\n",
			"4: rtr.map-server-keys[0].algorithm:"},
		{"map-server:\n  rtrs: [192.0.2.10]\n  rtr-keys:\n    - {address: 192.0.2.9, secret: a}\n" + site,
			"4: map-server.rtr-keys.address: 192.0.2.9 is none of the RTRs of map-server.rtrs or of a site, so the key could never be used"},
		{"map-server:\n  rtrs: [192.0.2.10]\n  rtr-keys:\n    - {address: 224.0.0.1, secret: a}\n" + site,
			"4: map-server.rtr-keys[0].address: 224.0.0.1 must not be a multicast address"},
	} {
		_, err := Parse([]byte(c.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), "x.yaml:"+c.want) {
			t.Errorf("%q:\n got %v\nwant x.yaml:%s", c.yaml, err, c.want)
		}
	}
}
