package adminapi

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func eid(iid uint32, p string) EID { return EID{InstanceID: iid, EIDPrefix: netip.MustParsePrefix(p)} }

// TestEIDOrder: numeric order by instance ID, address, prefix length —
// which string order gets wrong for these very prefixes.
func TestEIDOrder(t *testing.T) {
	want := []EID{
		eid(0, "10.0.0.0/8"),
		eid(0, "10.0.0.0/16"),
		eid(0, "203.0.113.8/29"),
		eid(0, "203.0.113.10/32"),
		eid(0, "2001:db8::/32"),
		eid(7, "198.51.100.0/24"),
		eid(1000, "192.0.2.0/24"),
	}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, EID.Compare)
	if !slices.Equal(got, want) {
		t.Errorf("sorted %v, want %v", got, want)
	}
	// The old order (instance ID, then the prefix as a string) fails here.
	byString := slices.Clone(want)
	slices.SortFunc(byString, func(a, b EID) int {
		if a.InstanceID != b.InstanceID {
			return int(a.InstanceID) - int(b.InstanceID)
		}
		return strings.Compare(a.EIDPrefix.String(), b.EIDPrefix.String())
	})
	if slices.Equal(byString, want) {
		t.Error("the test prefixes do not tell numeric from string order")
	}
}

// TestJSONContract: typed prefixes and addresses marshal to the strings
// of the admin API's JSON, field names unchanged, and decoding and
// re-encoding (what lispctl --json does) gives the same bytes.
func TestJSONContract(t *testing.T) {
	rtt := 1.5
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    any
		want string
	}{
		{MapCacheEntry{EID: eid(1000, "203.0.113.8/29"), TTL: 900, Source: "map-reply", Locators: []Locator{
			{Address: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 100, State: "up", RTTms: &rtt}}},
			`{"instance-id":1000,"eid-prefix":"203.0.113.8/29","negative":false,"ttl-seconds":900,"expires-in-seconds":0,` +
				`"uptime-seconds":0,"source":"map-reply","subscribed":false,"locators":[{"address":"192.0.2.1","priority":1,` +
				`"weight":100,"m-priority":0,"m-weight":0,"state":"up","rtt-ms":1.5}]}`},
		{Database{Entries: []DatabaseEntry{{EID: eid(0, "2001:db8:a::/48")}}, MapServers: []MapServerState{
			{Address: netip.MustParseAddr("198.51.100.1"), KeyID: 1, Algorithm: "hmac-sha-256-128", LastRegister: &at, State: "registered"}},
			XTRID: "00", SiteID: 3},
			`{"database":[{"instance-id":0,"eid-prefix":"2001:db8:a::/48","locators":null}],"map-servers":[{"address":"198.51.100.1",` +
				`"key-id":1,"algorithm":"hmac-sha-256-128","proxy-reply":false,"want-map-notify":false,"last-register":"2026-01-02T03:04:05Z",` +
				`"registers":0,"map-notifies":0,"state":"registered"}],"xtr-id":"00","site-id":3}`},
		{NATDiscovery{MapServer: netip.MustParseAddr("192.0.2.1"), LocalRLOC: netip.MustParseAddr("198.18.1.2"), State: "behind-nat",
			Translated: new(netip.MustParseAddrPort("203.0.113.7:61000")), RTRs: []netip.Addr{netip.MustParseAddr("192.0.2.50")}, LastReply: &at, Requests: 2, Replies: 1},
			`{"map-server":"192.0.2.1","local-rloc":"198.18.1.2","state":"behind-nat","translated":"203.0.113.7:61000",` +
				`"rtrs":["192.0.2.50"],"last-reply":"2026-01-02T03:04:05Z","info-requests":2,"info-replies":1}`},
		{NATedXTR{XTRID: "05", Private: netip.MustParseAddrPort("198.18.1.2:4341"), Translated: netip.MustParseAddrPort("203.0.113.7:61000"),
			MapServer: netip.MustParseAddr("192.0.2.1"), EIDs: []EID{eid(0, "198.51.100.0/24")}, State: "verified", LastRegister: at, Expires: &at,
			Registers: 2, Notifies: 1, PacketsToXTR: 7, PacketsFromXTR: 9},
			`{"xtr-id":"05","site-id":0,"private-rloc":"198.18.1.2:4341","translated-rloc":"203.0.113.7:61000","map-server":"192.0.2.1",` +
				`"eid-prefixes":[{"instance-id":0,"eid-prefix":"198.51.100.0/24"}],"state":"verified","last-register":"2026-01-02T03:04:05Z",` +
				`"expires":"2026-01-02T03:04:05Z","registers":2,"map-notifies":1,"packets-to-xtr":7,"packets-from-xtr":9}`},
		{SiteMove{Time: at, EID: eid(7, "203.0.113.10/32"), FromSite: "dc1", ToSite: "dc2",
			From: netip.MustParseAddr("198.18.3.2"), By: netip.MustParseAddr("198.18.6.2")},
			`{"time":"2026-01-02T03:04:05Z","instance-id":7,"eid-prefix":"203.0.113.10/32","from-site":"dc1","to-site":"dc2",` +
				`"from":"198.18.3.2","by":"198.18.6.2"}`},
		{ProbedRLOC{Address: netip.MustParseAddr("198.18.3.2"), State: "down", Missed: 3},
			`{"address":"198.18.3.2","state":"down","rtt-ms":0,"probes":0,"replies":0,"missed":3}`},
		{Site{Name: "dc1", EIDPrefixes: []string{"203.0.113.0/24 (accept-more-specifics)"}, Registrations: []Registration{{
			EID: eid(0, "203.0.113.10/32"), Locators: []Locator{{Address: netip.MustParseAddr("192.0.2.31"), State: "up"}},
			RegisteredBy: []RegisteredBy{{Source: netip.MustParseAddrPort("192.0.2.31:4342"), LastRegister: at, TTL: 1440}}}}},
			`{"name":"dc1","eid-prefixes":["203.0.113.0/24 (accept-more-specifics)"],"auth-failures":0,"registers":0,` +
				`"registrations":[{"instance-id":0,"eid-prefix":"203.0.113.10/32","locators":[{"address":"192.0.2.31","priority":0,` +
				`"weight":0,"m-priority":0,"m-weight":0,"state":"up"}],"registered-by":[{"source":"192.0.2.31:4342",` +
				`"last-register":"2026-01-02T03:04:05Z","expires-in-seconds":0,"proxy-reply":false,"want-map-notify":false,` +
				`"merge":false,"ttl-minutes":1440,"locators":null}],"moves":0}]}`},
		{Subscription{EID: eid(0, "198.51.100.0/24"), XTRID: "ab", Site: "dc1", ITRRLOCs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}, Nonce: "0x1"},
			`{"instance-id":0,"eid-prefix":"198.51.100.0/24","xtr-id":"ab","site-id":0,"site":"dc1","itr-rlocs":["2001:db8::1"],"nonce":"0x1"}`},
		{DynamicEIDRange{Name: "vms", EID: eid(0, "203.0.113.8/29"), Interface: "lan0", Mode: "across-subnet", TimeoutSec: 30,
			Hosts: []DynamicEIDHost{{EID: netip.MustParseAddr("203.0.113.10"), State: HostLocal, DetectedBy: "arp",
				MovedTo: []netip.Addr{netip.MustParseAddr("198.18.6.2")}}}},
			`{"name":"vms","instance-id":0,"eid-prefix":"203.0.113.8/29","interface":"lan0","mode":"across-subnet",` +
				`"timeout-seconds":30,"hosts":[{"eid":"203.0.113.10","state":"local","detected-by":"arp","since-seconds":0,` +
				`"last-seen-seconds":0,"moves":0,"moved-to":["198.18.6.2"]}]}`},
		{DynamicEIDRange{Name: "g", NotifyGroup: netip.MustParseAddr("233.252.0.1"), Hosts: []DynamicEIDHost{}},
			`{"name":"g","instance-id":0,"eid-prefix":"","interface":"","mode":"","notify-group":"233.252.0.1","timeout-seconds":0,"hosts":[]}`},
		{Status{Version: "v1", Roles: []string{"xtr"}, Control: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:4342")}},
			`{"version":"v1","uptime-seconds":0,"roles":["xtr"],"control-addresses":["[2001:db8::1]:4342"]}`},
		{Status{Version: "v1", Roles: []string{"xtr"}, Web: "127.0.0.1:9343", DynamicEIDs: true},
			`{"version":"v1","uptime-seconds":0,"roles":["xtr"],"control-addresses":null,"web":"127.0.0.1:9343","dynamic-eids":true}`},
		{Event{Seq: 7, Time: at, Type: EventRegistrationMoved, InstanceID: 5, EIDPrefix: netip.MustParsePrefix("203.0.113.0/24"),
			Site: "dc2", FromSite: "dc1", Peer: netip.MustParseAddr("192.0.2.3"), Locators: []netip.Addr{netip.MustParseAddr("192.0.2.3")}},
			`{"seq":7,"time":"2026-01-02T03:04:05Z","type":"registration-moved","instance-id":5,"eid-prefix":"203.0.113.0/24",` +
				`"site":"dc2","from-site":"dc1","peer":"192.0.2.3","locators":["192.0.2.3"]}`},
		{Event{Seq: 8, Time: at, Type: EventLocatorDown, RLOC: netip.MustParseAddr("198.18.0.2"), Count: 2},
			`{"seq":8,"time":"2026-01-02T03:04:05Z","type":"locator-down","rloc":"198.18.0.2","count":2}`},
		{Counter{Subsystem: "control", Name: "packets_dropped", Labels: map[string]string{"reason": "malformed"}, Value: 2},
			`{"subsystem":"control","name":"packets_dropped","labels":{"reason":"malformed"},"value":2}`},
		{DataPlane{Path: "kernel+userspace", Mode: "auto", Programs: []DataPlaneProgram{{Interface: "eth0", Ifindex: 2,
			Hook: "tcx-ingress", Program: "lispd_ingress", ProgramID: 40, LinkID: 7}},
			Kernel: &DataPlaneKernelCount{EncapsulatedPackets: 5, EncapsulatedInPlace: 3, Punted: map[string]uint64{"too-big": 1}, Dropped: map[string]uint64{}}},
			`{"path":"kernel+userspace","mode":"auto","programs":[{"interface":"eth0","ifindex":2,"hook":"tcx-ingress",` +
				`"program":"lispd_ingress","program-id":40,"link-id":7}],"kernel":{"encapsulated-packets":5,"encapsulated-bytes":0,` +
				`"encapsulated-in-place":3,"decapsulated-packets":0,"decapsulated-bytes":0,"petr-encapsulated":0,"petr-decapsulated":0,"events-lost":0,` +
				`"punted":{"too-big":1},` +
				`"dropped":{},"map-cache-entries":0,"map-updates":0,"map-update-p50-seconds":0,"map-update-p99-seconds":0,` +
				`"map-update-max-seconds":0},"userspace":{"encapsulated-packets":0,"decapsulated-packets":0,` +
				`"cache-misses":0,"miss-queued":0,"miss-released":0,"map-cache-entries":0}}`},
		{DataPlane{Path: "userspace", Mode: "userspace", KernelReason: "xtr.data-plane: userspace", Programs: []DataPlaneProgram{}},
			`{"path":"userspace","mode":"userspace","kernel-reason":"xtr.data-plane: userspace","programs":[],` +
				`"userspace":{"encapsulated-packets":0,"decapsulated-packets":0,"cache-misses":0,"miss-queued":0,` +
				`"miss-released":0,"map-cache-entries":0}}`},
		{RegisteredBy{Source: netip.MustParseAddrPort("192.0.2.31:4342"), LastRegister: at, Node: "ms2"},
			`{"source":"192.0.2.31:4342","last-register":"2026-01-02T03:04:05Z","expires-in-seconds":0,"proxy-reply":false,` +
				`"want-map-notify":false,"merge":false,"ttl-minutes":0,"locators":null,"node":"ms2"}`},
		{Cluster{Node: "ms1", Store: "etcd", Endpoints: []string{"http://192.0.2.5:2379"}, Prefix: "/lispd/", UnreachableSince: &at,
			Lease: "1f", LeaseTTL: 10, Revision: 7, Head: 9, LagSeconds: 1.5, Nodes: []ClusterNode{{Name: "ms1", Self: true, Alive: true,
				Lease: "1f", Started: &at, Prefixes: 3}}},
			`{"node":"ms1","store":"etcd","endpoints":["http://192.0.2.5:2379"],"prefix":"/lispd/","connected":false,` +
				`"unreachable-since":"2026-01-02T03:04:05Z","lease":"1f","lease-ttl-seconds":10,"revision":7,"head-revision":9,` +
				`"lag-seconds":1.5,"pending-writes":0,"nodes":[{"name":"ms1","self":true,"alive":true,"lease":"1f",` +
				`"started":"2026-01-02T03:04:05Z","prefixes":3}]}`},
		{ClearResult{Cleared: 4}, `{"cleared":4}`},
		{ReloadResult{Result: "reloaded"}, `{"result":"reloaded"}`},
		{ReloadResult{Result: "reloaded", Applied: map[string][]string{"xtr": {"xtr.database"}}, SitesAdded: []string{"a"},
			SitesRemoved: []string{"b"}, SitesChanged: []string{"c"}},
			`{"result":"reloaded","applied":{"xtr":["xtr.database"]},"sites-added":["a"],"sites-removed":["b"],"sites-changed":["c"]}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.v, b, tc.want)
			continue
		}
		// Round trip through a fresh value of the same type.
		p := reflect.New(reflect.TypeOf(tc.v)).Interface()
		if err := json.Unmarshal(b, p); err != nil {
			t.Fatalf("%T: %v", tc.v, err)
		}
		if again, _ := json.Marshal(p); string(again) != tc.want {
			t.Errorf("%T round trip:\n got %s\nwant %s", tc.v, again, tc.want)
		}
	}
}

func TestMapCacheQuery(t *testing.T) {
	seven := uint32(7)
	for _, tc := range []struct {
		raw  string // as sent
		want MapCacheQuery
		enc  string // as the client encodes want ("" = raw)
	}{
		{"", MapCacheQuery{}, ""},
		{"eid=198.51.100.20", MapCacheQuery{EID: netip.MustParsePrefix("198.51.100.20/32")}, ""},
		{"eid=198.51.100.20/24", MapCacheQuery{EID: netip.MustParsePrefix("198.51.100.0/24")}, "eid=198.51.100.0%2F24"},
		{"eid=2001:db8::1&instance-id=7", MapCacheQuery{EID: netip.MustParsePrefix("2001:db8::1/128"), InstanceID: &seven},
			"eid=2001%3Adb8%3A%3A1&instance-id=7"},
		{"instance-id=7", MapCacheQuery{InstanceID: &seven}, ""},
	} {
		v, _ := url.ParseQuery(tc.raw)
		q, err := ParseMapCacheQuery(v)
		if err != nil {
			t.Errorf("%q: %v", tc.raw, err)
			continue
		}
		if q.EID != tc.want.EID || q.IID() != tc.want.IID() || (q.InstanceID == nil) != (tc.want.InstanceID == nil) {
			t.Errorf("%q: %+v, want %+v", tc.raw, q, tc.want)
		}
		enc := tc.enc
		if enc == "" {
			enc = tc.raw
		}
		if got := tc.want.values(KeyEID).Encode(); got != enc {
			t.Errorf("%+v encodes as %q, want %q", tc.want, got, enc)
		}
	}
	for _, raw := range []string{"instance-id=x", "instance-id=", "instance-id=4294967296", "instance-id=16777216", "instance-id=-1", "eid=10.0.0.1&instance-id=1e3"} {
		v, _ := url.ParseQuery(raw)
		_, err := ParseMapCacheQuery(v)
		if e, ok := err.(*Error); !ok || e.Status != 400 || !strings.HasPrefix(e.Msg, "bad instance-id ") {
			t.Errorf("%q: %v, want a 400 naming instance-id", raw, err)
		}
	}
	for _, raw := range []string{"prefix=10.0.0.0/33", "prefix=example.com"} {
		v, _ := url.ParseQuery(raw)
		if _, err := ParseClearMapCacheQuery(v); err == nil || !strings.Contains(err.Error(), "neither an address nor a prefix") {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

func TestSelects(t *testing.T) {
	seven := uint32(7)
	e := eid(7, "203.0.113.8/29")
	for _, tc := range []struct {
		q    MapCacheQuery
		want bool
	}{
		{MapCacheQuery{}, true},
		{MapCacheQuery{InstanceID: &seven}, true},
		{MapCacheQuery{EID: netip.MustParsePrefix("203.0.113.9/32")}, false}, // instance ID 0
		{MapCacheQuery{EID: netip.MustParsePrefix("203.0.113.9/32"), InstanceID: &seven}, true},
		{MapCacheQuery{EID: netip.MustParsePrefix("203.0.113.0/24"), InstanceID: &seven}, true},
		{MapCacheQuery{EID: netip.MustParsePrefix("203.0.113.16/32"), InstanceID: &seven}, false},
	} {
		if got := tc.q.Selects(e); got != tc.want {
			t.Errorf("%+v selects %v: %v, want %v", tc.q, e, got, tc.want)
		}
	}
}
