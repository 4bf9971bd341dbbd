package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // "LINE: message", in order
	}{
		{"syntax", "petr: {}\nxtr: [\n", []string{
			"2: invalid YAML: did not find expected node content", // the list opened on line 2
		}},
		{"tab indentation", "petr: {}\nxtr:\n\titr: true\n", []string{
			"3: invalid YAML: found character that cannot start any token (indent with spaces: YAML does not allow tabs there)",
		}},
		{"two documents", "petr: {}\n---\npetr: {}\n", []string{
			"2: only one YAML document is allowed",
		}},
		{"empty file", "", []string{
			"1: no LISP role configured: add at least one of map-server, map-resolver, xtr, pitr, petr or rtr",
		}},
		{"no role", "# nothing\nlog: {level: debug}\n", []string{
			"2: no LISP role configured: add at least one of map-server, map-resolver, xtr, pitr, petr or rtr",
		}},
		// FuzzParse found it: an RTR with a null list of Map-Servers.
		{"rtr without map-servers", "rtr: {map-servers}\n", []string{
			"1: rtr.map-servers: needs at least one Map-Server",
		}},
		{"rtr with an empty list", "petr: {}\nrtr:\n  map-servers: []\n", []string{
			"3: rtr.map-servers: needs at least one Map-Server",
		}},
		{"top level list", "- petr\n", []string{
			"1: top level: expected a mapping, got a list",
		}},
		{"unknown keys", "petr: {}\nfoo: 1\nmap-server:\n  foo: 1\n  sites:\n    - {name: a, foo: 1, keys: [{secret: x}], eid-prefixes: [{prefix: 10.0.0.0/8}]}\n", []string{
			`2: unknown key "foo" at top level`,
			`4: unknown key "foo" in map-server`,
			`6: unknown key "foo" in map-server.sites[0]`,
		}},
		{"misspelt keys", "map_server: {}\nxtr:\n  itr: true\n  map-resolver: [192.0.2.1]\n", []string{
			`1: unknown key "map_server" at top level (did you mean "map-server"?)`,
			`4: unknown key "map-resolver" in xtr (did you mean "map-resolvers"?)`,
		}},
		{"duplicate key", "petr: {}\nlog: {level: info}\nlog: {level: debug}\n", []string{
			"3: log: duplicate key (first at line 2)",
		}},
		{"merge key", "base: &b {level: info}\npetr: {}\nlog:\n  <<: *b\n", []string{
			`1: unknown key "base" at top level`,
			"4: log: merge keys (<<) are not supported",
		}},
		{"aliases are followed", "petr: &e {}\nlog: {level: &l debug, format: *l}\n", []string{
			`2: log.format: unknown value "debug" (want text or json)`,
		}},
		{"wrong shapes", "petr: []\nlog: debug\ncontrol: {addresses: 192.0.2.1, port: [1]}\n", []string{
			`1: petr: expected a mapping, got a list`,
			`2: log: expected a mapping, got "debug"`,
			`3: control.addresses: expected a list, got "192.0.2.1"`,
			`3: control.port: expected a single value, got a list`,
		}},
		{"log and admin", "petr: {}\nlog: {level: verbose, format: xml}\nadmin: {socket: \"\", metrics: localhost}\n", []string{
			`2: log.level: unknown value "verbose" (want debug, info, warn or error)`,
			`2: log.format: unknown value "xml" (want text or json)`,
			"3: admin.socket: must not be empty",
			`3: admin.metrics: invalid address "localhost" (want HOST:PORT, e.g. 127.0.0.1:9342)`,
		}},
		{"control", `petr: {}
control:
  addresses: [192.0.2.1, 192.0.2.1, nope]
  port: 70000
  rate-limit: {per-source: 0, per-source-burst: 1.5, global: fast, global-burst: 0}
`, []string{
			"3: control.addresses[1]: duplicate address 192.0.2.1 (first at line 3)",
			`3: control.addresses[2]: invalid IP address "nope"`,
			"4: control.port: 70000 is out of range (0 to 65535)",
			"5: control.rate-limit.per-source: must be greater than 0",
			`5: control.rate-limit.per-source-burst: expected a whole number, got "1.5"`,
			`5: control.rate-limit.global: expected a number of messages per second, got "fast"`,
			"5: control.rate-limit.global-burst: 0 is out of range (1 to 2147483647)",
		}},
		{"empty address list", "petr: {}\ncontrol:\n  addresses: []\n", []string{
			"3: control.addresses: empty list; leave the key out to listen on all addresses",
		}},
		{"map-server durations", `map-server:
  registration-timeout: 3
  notify-retransmit: 0s
  subscription-ttl: -1m
  max-subscriptions: -1
  require-nonce-increase: yes
`, []string{
			`2: map-server.registration-timeout: invalid duration "3" (want a number with a unit, e.g. 60s or 3m)`,
			"3: map-server.notify-retransmit: must be greater than 0",
			"4: map-server.subscription-ttl: must not be negative",
			"5: map-server.max-subscriptions: -1 is out of range (0 to 2147483647)",
			`6: map-server.require-nonce-increase: expected true or false, got "yes"`,
		}},
		// Algorithm 3 passed the check but nothing could use it (issue 12,
		// finding 11): it is refused where it is written.
		{"hkdf refused", `map-server:
  sites:
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128-hkdf-sha256, secret: x}]
      eid-prefixes: [{prefix: 10.0.0.0/8}]
xtr:
  etr: true
  database: [{eid-prefix: 10.0.0.0/8, locators: [{address: 192.0.2.1}]}]
  map-servers: [{address: 192.0.2.9, algorithm: hmac-sha-256-128-hkdf-sha256, secret: x}]
`, []string{
			"4: map-server.sites[0].keys[0].algorithm: hmac-sha-256-128-hkdf-sha256 is not supported (RFC 9301 leaves its key derivation open, so no peer could verify it); use hmac-sha-256-128",
			"9: xtr.map-servers[0].algorithm: hmac-sha-256-128-hkdf-sha256 is not supported (RFC 9301 leaves its key derivation open, so no peer could verify it); use hmac-sha-256-128",
		}},
		{"state directory", `map-server:
  state-directory: var/lib/lispd
  sites: [{name: a, keys: [{secret: x}], eid-prefixes: [{prefix: 10.0.0.0/8}]}]
`, []string{
			`2: map-server.state-directory: "var/lib/lispd" is not an absolute path`,
		}},
		{"site keys", `map-server:
  sites:
    - name: dc1
      keys:
        - {key-id: 0, algorithm: md5, secret: x}
        - {key-id: 0, secret: y}
        - {key-id: 256, secret: z}
        - {key-id: 2, secret: y, secret-file: s.key}
        - {key-id: 3}
        - {key-id: 4, secret: ""}
      eid-prefixes: [{prefix: 10.0.0.0/8}]
`, []string{
			`5: map-server.sites[0].keys[0].algorithm: unknown value "md5" (want hmac-sha-1-96 or hmac-sha-256-128)`,
			"6: map-server.sites[0].keys[1].key-id: duplicate key-id 0 (first at line 5)",
			"7: map-server.sites[0].keys[2].key-id: 256 is out of range (0 to 255)",
			"8: map-server.sites[0].keys[3]: give either secret or secret-file, not both",
			"8: map-server.sites[0].keys[3].secret-file: cannot read s.key: no such file or directory",
			`9: map-server.sites[0].keys[4]: missing required key "secret" (or "secret-file")`,
			"10: map-server.sites[0].keys[5].secret: must not be empty",
		}},
		{"site prefixes", `map-server:
  sites:
    - name: dc1
      keys: [{secret: x}]
      eid-prefixes:
        - {prefix: 198.51.100.1/24}
        - {prefix: 10.0.0.0/8}
        - {prefix: 10.0.0.0/8}
        - {prefix: 10.0.0.0/8, instance-id: 16777216}
        - {prefix: 10.0.0.0}
        - {prefix: "::ffff:10.0.0.0/104"}
        - {instance-id: 1}
        - {prefix: 10.2.0.0/16, accept-more-specifics: 1}
      allowed-rlocs: [192.0.2.0/24, 192.0.2.0/24, 192.0.2.1/24]
`, []string{
			"6: map-server.sites[0].eid-prefixes[0].prefix: 198.51.100.1/24 has host bits set (did you mean 198.51.100.0/24?)",
			"8: map-server.sites[0].eid-prefixes[2].prefix: duplicate prefix 10.0.0.0/8 in instance-id 0 (first at line 7)",
			"9: map-server.sites[0].eid-prefixes[3].instance-id: 16777216 is out of range (0 to 16777215)",
			`10: map-server.sites[0].eid-prefixes[4].prefix: invalid prefix "10.0.0.0" (want ADDRESS/LENGTH, e.g. 198.51.100.0/24)`,
			"11: map-server.sites[0].eid-prefixes[5].prefix: ::ffff:10.0.0.0/104 is an IPv4-mapped IPv6 prefix; write IPv4 prefixes as IPv4",
			`12: map-server.sites[0].eid-prefixes[6]: missing required key "prefix"`,
			`13: map-server.sites[0].eid-prefixes[7].accept-more-specifics: expected true or false, got "1"`,
			"14: map-server.sites[0].allowed-rlocs[1]: duplicate prefix 192.0.2.0/24 (first at line 14)",
			"14: map-server.sites[0].allowed-rlocs[2]: 192.0.2.1/24 has host bits set (did you mean 192.0.2.0/24?)",
		}},
		{"sites", `map-server:
  sites:
    - name: dc1
      keys: [{secret: x}]
      eid-prefixes: [{prefix: 10.0.0.0/8}, {prefix: "2001:db8::/32", instance-id: 5}]
    - name: dc2
      keys: [{secret: x}]
      eid-prefixes:
        - {prefix: 10.1.0.0/16}
        - {prefix: 10.0.0.0/8, instance-id: 1}
        - {prefix: "2001:db8:1::/48", instance-id: 5}
    - name: dc1
      keys: []
      eid-prefixes: []
    - description: no name
    - name: " "
      keys: [{secret: x}]
      eid-prefixes: [{prefix: 10.0.0.0/8}]
`, []string{
			`9: map-server.sites[1].eid-prefixes[0].prefix: 10.1.0.0/16 in instance-id 0 overlaps 10.0.0.0/8 of site "dc1" (line 5)`,
			`11: map-server.sites[1].eid-prefixes[2].prefix: 2001:db8:1::/48 in instance-id 5 overlaps 2001:db8::/32 of site "dc1" (line 5)`,
			`12: map-server.sites[2].name: duplicate site name "dc1" (first at line 3)`,
			"13: map-server.sites[2].keys: a site needs at least one key to authenticate its registrations",
			"14: map-server.sites[2].eid-prefixes: a site needs at least one EID prefix",
			`15: map-server.sites[3]: missing required key "name"`,
			`15: map-server.sites[3]: missing required key "keys"`,
			`15: map-server.sites[3]: missing required key "eid-prefixes"`,
			"16: map-server.sites[4].name: must not be empty",
			`18: map-server.sites[4].eid-prefixes[0].prefix: 10.0.0.0/8 in instance-id 0 overlaps 10.0.0.0/8 of site "dc1" (line 5)`,
			`18: map-server.sites[4].eid-prefixes[0].prefix: 10.0.0.0/8 in instance-id 0 overlaps 10.1.0.0/16 of site "dc2" (line 9)`,
		}},
		{"shared dynamic-EID ranges", `map-server:
  sites:
    - name: dc1
      keys: [{secret: x}]
      eid-prefixes: [{prefix: 10.0.0.0/8}, {prefix: 10.1.0.0/16, accept-more-specifics: true}]
    - name: dc2
      keys: [{secret: y}]
      eid-prefixes: [{prefix: 10.1.0.0/16, accept-more-specifics: true}, {prefix: 10.2.0.0/16, accept-more-specifics: true}]
    - name: dc3
      keys: [{secret: z}]
      eid-prefixes: [{prefix: 10.1.2.0/24, accept-more-specifics: true}, {prefix: 10.2.0.0/16}]
`, []string{
			`8: map-server.sites[1].eid-prefixes[1].prefix: 10.2.0.0/16 in instance-id 0 overlaps 10.0.0.0/8 of site "dc1" (line 5)`,
			`11: map-server.sites[2].eid-prefixes[0].prefix: 10.1.2.0/24 in instance-id 0 overlaps 10.1.0.0/16 of site "dc2" (line 8)`,
			`11: map-server.sites[2].eid-prefixes[0].prefix: 10.1.2.0/24 in instance-id 0 overlaps 10.1.0.0/16 of site "dc1" (line 5)`,
			`11: map-server.sites[2].eid-prefixes[1].prefix: 10.2.0.0/16 in instance-id 0 overlaps 10.2.0.0/16 of site "dc2" (line 8)`,
			`11: map-server.sites[2].eid-prefixes[1].prefix: 10.2.0.0/16 in instance-id 0 overlaps 10.0.0.0/8 of site "dc1" (line 5)`,
		}},
		{"map-resolver", `map-resolver:
  negative-ttl: 30s
  unregistered-ttl: 90s
  map-servers:
    - {address: 192.0.2.5, eid-prefixes: [{prefix: 10.0.0.0/8}]}
    - {address: 192.0.2.5, eid-prefixes: [{prefix: 11.0.0.0/8}]}
    - {address: 0.0.0.0, eid-prefixes: []}
    - {eid-prefixes: [{prefix: 10.0.0.0/8}, {prefix: 10.0.0.0/8}]}
`, []string{
			"2: map-resolver.negative-ttl: must be a whole number of minutes (Map-Reply TTLs are in minutes), got 30s",
			"3: map-resolver.unregistered-ttl: must be a whole number of minutes (Map-Reply TTLs are in minutes), got 90s",
			"6: map-resolver.map-servers[1].address: Map-Server 192.0.2.5 is listed twice (first at line 5); merge its eid-prefixes",
			"7: map-resolver.map-servers[2].address: 0.0.0.0 must not be the unspecified address",
			"7: map-resolver.map-servers[2].eid-prefixes: a delegation needs at least one EID prefix",
			`8: map-resolver.map-servers[3]: missing required key "address"`,
			"8: map-resolver.map-servers[3].eid-prefixes[1].prefix: duplicate prefix 10.0.0.0/8 in instance-id 0 (first at line 8)",
		}},
		{"xtr roles", "xtr: {}\n", []string{
			"1: xtr: neither itr nor etr is enabled; set itr: true, etr: true or both",
		}},
		{"etr without database", "xtr:\n  etr: true\n  database: []\n", []string{
			"2: xtr: an ETR needs local EID prefixes: add a database (or dynamic-eids)",
		}},
		{"bad itr value is reported once", "xtr: {itr: on}\n", []string{
			`1: xtr.itr: expected true or false, got "on"`,
		}},
		{"xtr scalars", `xtr:
  itr: true
  tun: a/b
  eid-interfaces: [eth0, eth0, averyveryverylongname]
  map-resolvers: [224.0.0.1, "fe80::1%eth0"]
  petrs: [192.0.2.1, 192.0.2.1]
  register-interval: 0s
  rloc-probing: {interval: -1s, jitter: 1s}
  map-cache: {max-entries: 0}
  subscribe: 1
  xtr-id: abc
  site-id: -1
`, []string{
			`3: xtr.tun: invalid interface name "a/b": contains '/', ':' or white space`,
			`4: xtr.eid-interfaces[1]: duplicate interface "eth0" (first at line 4)`,
			`4: xtr.eid-interfaces[2]: invalid interface name "averyveryverylongname": longer than 15 bytes`,
			"5: xtr.map-resolvers[0]: 224.0.0.1 must not be a multicast address",
			"5: xtr.map-resolvers[1]: fe80::1%eth0 must not have a zone",
			"6: xtr.petrs[1]: duplicate address 192.0.2.1 (first at line 6)",
			"7: xtr.register-interval: must be greater than 0",
			"8: xtr.rloc-probing.interval: must not be negative",
			`8: unknown key "jitter" in xtr.rloc-probing`,
			"9: xtr.map-cache.max-entries: 0 is out of range (1 to 2147483647)",
			`10: xtr.subscribe: expected true or false, got "1"`,
			`11: xtr.xtr-id: expected 32 hex digits, got "abc"`,
			`12: xtr.site-id: expected a whole number from 0 to 18446744073709551615, got "-1"`,
		}},
		{"xtr map-servers", `xtr:
  etr: true
  database: [{eid-prefix: 10.0.0.0/8, locators: [{address: 192.0.2.1}]}]
  map-servers:
    - {address: 192.0.2.9, secret: a}
    - {address: 192.0.2.9, secret: b}
    - {address: 192.0.2.10}
    - {secret: c, algorithm: none, proxy-reply: maybe}
`, []string{
			"6: xtr.map-servers[1].address: Map-Server 192.0.2.9 is listed twice (first at line 5)",
			`7: xtr.map-servers[2]: missing required key "secret" (or "secret-file")`,
			`8: xtr.map-servers[3]: missing required key "address"`, // at the "{", left of the others
			`8: xtr.map-servers[3].algorithm: unknown value "none" (want hmac-sha-1-96 or hmac-sha-256-128)`,
			`8: xtr.map-servers[3].proxy-reply: expected true or false, got "maybe"`,
		}},
		{"database", `xtr:
  etr: true
  database:
    - eid-prefix: 10.0.0.0/8
      locators:
        - {address: 192.0.2.1, interface: eth0}
        - {priority: 256}
        - {address: 192.0.2.2}
        - {address: 192.0.2.2}
        - {interface: eth1}
        - {interface: eth1}
    - {eid-prefix: 10.0.0.0/8, locators: [{address: 192.0.2.1}]}
    - {eid-prefix: 10.0.0.0/8, instance-id: 1, locators: []}
    - {instance-id: 2}
`, []string{
			"6: xtr.database[0].locators[0]: give either address or interface, not both",
			`7: xtr.database[0].locators[1]: missing required key "address" (or "interface")`,
			"7: xtr.database[0].locators[1].priority: 256 is out of range (0 to 255)",
			"9: xtr.database[0].locators[3]: locator 192.0.2.2 is listed twice (first at line 8)",
			"11: xtr.database[0].locators[5]: locator eth1 is listed twice (first at line 10)",
			"12: xtr.database[1].eid-prefix: duplicate prefix 10.0.0.0/8 in instance-id 0 (first at line 4)",
			"13: xtr.database[2].locators: an EID prefix needs at least one locator",
			`14: xtr.database[3]: missing required key "eid-prefix"`,
			`14: xtr.database[3]: missing required key "locators"`,
		}},
		{"dynamic EIDs", `xtr:
  etr: true
  eid-interfaces: [eid0]
  dynamic-eids:
    - {name: a, prefix: 10.0.0.0/8, interface: eid0, mode: roam, notify-group: 192.0.2.1}
    - {name: a, prefix: 11.0.0.0/8, interface: eid0}
    - {name: b, prefix: 12.0.0.0/8, interface: eid9}
    - {name: c}
    - {name: d, prefix: "2001:db8::/64", interface: eid0, locators: [{address: 192.0.2.1}], timeout: 0s, max-hosts: 0, notify-group: 233.252.0.1}
    - {name: e, prefix: 10.9.0.0/16, instance-id: 5, interface: eid0, locators: [{address: 192.0.2.1}]}
`, []string{
			`5: xtr.dynamic-eids[0].mode: unknown value "roam" (want across-subnet or extended-subnet)`,
			"5: xtr.dynamic-eids[0].notify-group: 192.0.2.1 must be a multicast address",
			`6: xtr.dynamic-eids[1].name: duplicate dynamic-eid name "a" (first at line 5)`,
			`7: xtr.dynamic-eids[2].interface: "eid9" is not one of eid-interfaces`,
			`7: xtr.dynamic-eids[2]: dynamic-eid "b" needs locators: give them, or a database entry in instance-id 0 to borrow them from`,
			`8: xtr.dynamic-eids[3]: missing required key "prefix"`,
			`8: xtr.dynamic-eids[3]: missing required key "interface"`,
			`9: xtr.dynamic-eids[4].timeout: must be greater than 0`,
			`9: xtr.dynamic-eids[4].max-hosts: 0 is out of range (1 to 16777216)`,
			`9: xtr.dynamic-eids[4].notify-group: a notify group needs a group-key (any host of the LAN can send to the group; see docs/security.md)`,
			`9: xtr.dynamic-eids[4].notify-group: 233.252.0.1 is not of the family of the range 2001:db8::/64`,
			`10: xtr.dynamic-eids[5].interface: "eid0" is in no vrf of instance-id 5 (a dynamic EID outside instance-id 0 lives on an interface of its instance's vrfs[].interfaces)`,
		}},
		{"notify groups", `xtr:
  etr: true
  eid-interfaces: [eid0]
  dynamic-eids:
    - {name: a, prefix: 10.1.0.0/16, interface: eid0, locators: [{address: 192.0.2.1}], notify-group: 233.252.0.1}
    - {name: b, prefix: 10.2.0.0/16, interface: eid0, locators: [{address: 192.0.2.1}], group-key: {secret: k}, group-peers: [192.0.2.2]}
    - {name: c, prefix: 10.3.0.0/16, interface: eid0, locators: [{address: 192.0.2.1}], notify-group: 233.252.0.2, group-key: {key-id: 1}, group-peers: [233.252.0.9], group-adopt-rate: -1}
`, []string{
			"5: xtr.dynamic-eids[0].notify-group: a notify group needs a group-key (any host of the LAN can send to the group; see docs/security.md)",
			"6: xtr.dynamic-eids[1].group-key: only meaningful with a notify-group",
			"6: xtr.dynamic-eids[1].group-peers: only meaningful with a notify-group",
			`7: xtr.dynamic-eids[2].group-key: missing required key "secret" (or "secret-file")`,
			"7: xtr.dynamic-eids[2].group-peers[0]: 233.252.0.9 must not be a multicast address",
			"7: xtr.dynamic-eids[2].group-adopt-rate: -1 is out of range (0 to 65536)",
		}},
		{"pitr and petr", "pitr: {eid-prefixes: []}\npetr: {mode: x}\n", []string{
			"1: pitr.eid-prefixes: a PITR needs at least one EID prefix to attract traffic for",
			`2: unknown key "mode" in petr`,
		}},
		{"petr sources", "petr: {allowed-source-eids: [{prefix: 10.0.0.0/8}, {prefix: 10.0.0.0/8}, {instance-id: 3}]}\n", []string{
			`1: petr.allowed-source-eids[1].prefix: duplicate prefix 10.0.0.0/8 in instance-id 0 (first at line 1)`,
			`1: petr.allowed-source-eids[2]: missing required key "prefix"`,
		}},
		{"source rloc checks", `xtr:
  itr: true
  source-rloc-check:
    - {instance-id: 7}
    - {instance-id: 7, rloc-prefixes: [192.0.2.0/24]}
    - {map-cache: true}
    - {instance-id: 8, map-cache: false}
    - {instance-id: 9, rloc-prefixes: [192.0.2.1/33], mode: strict}
`, []string{
			`5: xtr.source-rloc-check[1].instance-id: instance-id 7 is checked already (line 4)`,
			`6: xtr.source-rloc-check[2]: missing required key "instance-id"`,
			`7: xtr.source-rloc-check[3]: with map-cache: false and no rloc-prefixes every packet of instance-id 8 would be dropped`,
			`8: xtr.source-rloc-check[4].rloc-prefixes[0]: invalid prefix "192.0.2.1/33" (want ADDRESS/LENGTH, e.g. 198.51.100.0/24)`,
			`8: unknown key "mode" in xtr.source-rloc-check[4]`,
		}},
		{"missing values", "petr: {}\nlog:\n  level:\nadmin: {socket: }\n", []string{
			"3: log.level: missing value",
			"4: admin.socket: missing value",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "t.yaml")
			if err == nil {
				t.Fatalf("no error; parsed %+v", c)
			}
			if c != nil {
				t.Errorf("got a config along with the error")
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = "t.yaml:" + w
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

// An alias bomb (a list of aliases to a site whose prefix list is aliases
// again) must fail fast instead of walking a million nodes.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("p: &p {prefix: 10.0.0.0/8}\ns: &s {name: s, keys: [{secret: x}], eid-prefixes: [")
	b.WriteString(strings.Repeat("*p, ", 1000))
	b.WriteString("]}\nmap-server:\n  sites: [")
	b.WriteString(strings.Repeat("*s, ", 1000))
	b.WriteString("]\n")
	start := time.Now()
	_, err := Parse([]byte(b.String()), "bomb.yaml")
	errs, _ := err.(Errors)
	if len(errs) == 0 || len(errs) > maxErrors+1 {
		t.Errorf("got %d errors, want 1 to %d:\n%v", len(errs), maxErrors+1, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// The visit budget stops a walk that would be too long, at the node where
// it ran out.
func TestVisitBudget(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parse(data, "testdata/full.yaml", 1000); err != nil {
		t.Fatalf("full.yaml needs more than 1000 visits: %v", err)
	}
	_, err = parse(data, "testdata/full.yaml", 50)
	want := "testdata/full.yaml:26: document too complex (aliases expand it too much)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// A file full of mistakes reports the first maxErrors and a count.
func TestErrorLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("petr: {}\n")
	for i := 0; i < 150; i++ {
		fmt.Fprintf(&b, "k%d: 1\n", i)
	}
	_, err := Parse([]byte(b.String()), "many.yaml")
	errs, _ := err.(Errors)
	if len(errs) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), maxErrors+1)
	}
	if got, want := errs[0].Error(), `many.yaml:2: unknown key "k0" at top level`; got != want {
		t.Errorf("first error %q, want %q", got, want)
	}
	if got, want := errs[maxErrors].Error(), "many.yaml: 50 more errors not shown"; got != want {
		t.Errorf("last error %q, want %q", got, want)
	}
}
