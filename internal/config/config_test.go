package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/lispd/lispd/wire"
)

// Parsing starts no goroutines; goleak keeps it that way.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cmpOpts compares netip values, whose fields are unexported, by value.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, addr(s))
	}
	return out
}
func eid(iid uint32, p string) EID { return EID{InstanceID: iid, Prefix: prefix(p)} }

// defaultControl is the control section when the file has none.
func defaultControl() Control {
	return Control{
		Addresses: addrs("0.0.0.0", "::"),
		Port:      4342,
		RateLimit: RateLimit{PerSource: 1000, PerSourceBurst: 2000, Global: 200000, GlobalBurst: 400000,
			PerDestination: 100, PerDestinationBurst: 1000},
	}
}

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return c
}

func TestFull(t *testing.T) {
	got := mustLoad(t, "testdata/full.yaml")
	want := &Config{
		File:  "testdata/full.yaml",
		Log:   Log{Level: slog.LevelDebug, Format: "json"},
		Admin: Admin{Socket: "/tmp/lispd-test.sock", Metrics: "[::1]:9342", PProf: "127.0.0.1:6060"},
		Control: Control{
			Addresses: addrs("192.0.2.1", "2001:db8::1", "192.0.2.2"), // IPv4-mapped is unmapped
			Port:      14342,
			RateLimit: RateLimit{PerSource: 50.5, PerSourceBurst: 100, Global: 10000, GlobalBurst: 20000,
				PerDestination: 0.5, PerDestinationBurst: 30},
		},
		MapServer: &MapServer{
			RegistrationTimeout:    5 * time.Minute,
			RequireNonceIncrease:   true,
			MaxSubscriptions:       10,
			SubscriptionTTL:        time.Hour,
			NotifyRetransmit:       2 * time.Second,
			StateDirectory:         "/srv/lispd-state",
			MaxSubscriptionsPerXTR: DefaultMaxSubscriptionsPerXTR,
			RTRs:                   addrs("192.0.2.60", "2001:db8::60"),
			Sites: []Site{
				{
					Name:        "dc1",
					Description: "first site",
					Keys: []Key{
						{ID: 0, Algorithm: wire.AuthHMACSHA256, Secret: []byte("s3cret")},
						{ID: 1, Algorithm: wire.AuthHMACSHA1, Secret: []byte("file-secret-1"), SecretFile: "testdata/secrets/dc1.key"},
						{ID: 255, Algorithm: wire.AuthHMACSHA256, Secret: []byte("12345")},
					},
					EIDPrefixes: []SitePrefix{
						{EID: eid(0, "198.51.100.0/24"), AcceptMoreSpecifics: true},
						{EID: eid(0, "2001:db8:1::/48")},
					},
					AllowedRLOCs:         []netip.Prefix{prefix("192.0.2.0/24"), prefix("2001:db8:ff::/48")},
					RTRs:                 addrs("192.0.2.61"),
					RequireNonceIncrease: false, // the site's own setting wins
				},
				{
					Name:                 "dc2",
					Keys:                 []Key{{ID: 0, Algorithm: wire.AuthHMACSHA256, Secret: []byte("dc2")}},
					EIDPrefixes:          []SitePrefix{{EID: eid(0, "203.0.113.0/24")}, {EID: eid(MaxInstanceID, "203.0.113.0/24")}},
					RequireNonceIncrease: true, // inherited from the Map-Server
				},
			},
		},
		MapResolver: &MapResolver{
			NegativeTTL:     30 * time.Minute,
			UnregisteredTTL: 2 * time.Minute,
			MapServers: []Delegation{{
				Address:     addr("192.0.2.50"),
				EIDPrefixes: []EID{eid(0, "198.18.0.0/16"), eid(7, "2001:db8:2::/48")},
			}},
		},
		XTR: &XTR{
			ITR:           true,
			ETR:           true,
			TUN:           "lisp9",
			EIDInterfaces: []string{"eid0", "eid1"},
			MapResolvers:  addrs("192.0.2.1", "2001:db8::1"),
			MapServers: []MapServerPeer{
				{Address: addr("192.0.2.1"), KeyID: 3, Algorithm: wire.AuthHMACSHA1, Secret: []byte("s3cret"), ProxyReply: true, WantMapNotify: false},
				{Address: addr("2001:db8::1"), Algorithm: wire.AuthHMACSHA256, Secret: []byte("ms-secret"), SecretFile: "testdata/secrets/ms.key", WantMapNotify: true},
			},
			RegisterInterval: 30 * time.Second,
			DataPlane:        DataPlaneUserspace, DataPort: DefaultDataPort, UnderlayMTU: DefaultUnderlayMTU, DataNonce: true, LISPSEC: DefaultLISPSEC,
			Database: []DatabaseEntry{
				{EID: eid(0, "198.51.100.0/24"), Locators: []Locator{
					{Address: addr("192.0.2.12"), Priority: 2, Weight: 50, MPriority: 10, MWeight: 20},
					{Interface: "eth1", Priority: 1, Weight: 100, MPriority: 255, MWeight: 0},
				}},
				{EID: eid(42, "2001:db8:1::/48"), Locators: []Locator{
					{Address: addr("2001:db8:ff::12"), Priority: 1, Weight: 100, MPriority: 255},
				}},
			},
			PETRs:        addrs("192.0.2.100"),
			RLOCProbing:  RLOCProbing{Interval: 0},
			NATTraversal: NATTraversal{Enabled: true, InfoInterval: 2 * time.Minute},
			MapCache:     MapCache{MaxEntries: 5000},
			Subscribe:    true,
			DynamicEIDs: []DynamicEID{
				{Name: "roaming", EID: eid(0, "203.0.113.128/25"), Interface: "eid0", Mode: ModeAcrossSubnet, Timeout: DefaultDynamicEIDTimeout, MaxHosts: DefaultDynamicEIDMaxHosts},
				{Name: "stretched", EID: eid(0, "198.51.100.128/25"), Interface: "eid1", Mode: ModeExtendedSubnet,
					NotifyGroup: addr("233.252.0.1"), Timeout: DefaultDynamicEIDTimeout, MaxHosts: DefaultDynamicEIDMaxHosts,
					GroupKey:   &Key{ID: 7, Algorithm: wire.AuthHMACSHA256, Secret: []byte("group-s3cret")},
					GroupPeers: addrs("198.51.100.130", "198.51.100.131"), GroupMaxAdopted: 100, GroupAdoptRate: 5},
			},
			HasXTRID: true,
			XTRID:    [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
			SiteID:   18446744073709551615,
			SourceRLOCChecks: []SourceRLOCCheck{
				{InstanceID: 42, MapCache: true, RLOCPrefixes: []netip.Prefix{prefix("192.0.2.0/24")}},
				{InstanceID: 7, RLOCPrefixes: []netip.Prefix{prefix("2001:db8:ff::/48"), prefix("198.18.0.0/15")}},
			},
		},
		PITR: &PITR{EIDPrefixes: []netip.Prefix{prefix("198.51.100.0/24"), prefix("2001:db8:1::/48")}},
		PETR: &PETR{AllowedSourceEIDs: []EID{eid(0, "198.51.100.0/24"), eid(42, "2001:db8:1::/48")}},
		RTR:  &RTR{MapServers: addrs("192.0.2.1"), RegistrationTimeout: 5 * time.Minute},
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("testdata/full.yaml (-want +got):\n%s", diff)
	}
}

// The example in docs/interfaces.md is the user-facing contract
// (internal/doccheck checks the document holds this file verbatim).
func TestInterfacesExample(t *testing.T) {
	got := mustLoad(t, "testdata/interfaces-example.yaml")
	secret := []byte("s3cret")
	want := &Config{
		File:  "testdata/interfaces-example.yaml",
		Log:   Log{Level: slog.LevelInfo, Format: "text"},
		Admin: Admin{Socket: "/run/lispd/lispd.sock", Metrics: "127.0.0.1:9342"},
		Control: func() Control {
			c := defaultControl()
			c.Addresses = addrs("192.0.2.1")
			return c
		}(),
		MapServer: &MapServer{
			RegistrationTimeout:    3 * time.Minute,
			MaxSubscriptions:       100000,
			SubscriptionTTL:        15 * time.Minute,
			NotifyRetransmit:       3 * time.Second,
			RequireNonceIncrease:   true,
			StateDirectory:         DefaultStateDirectory,
			MaxSubscriptionsPerXTR: DefaultMaxSubscriptionsPerXTR,
			Sites: []Site{{
				Name:                 "dc1",
				Keys:                 []Key{{ID: 0, Algorithm: wire.AuthHMACSHA256, Secret: secret}},
				EIDPrefixes:          []SitePrefix{{EID: eid(0, "198.51.100.0/24"), AcceptMoreSpecifics: true}},
				RequireNonceIncrease: true,
			}},
		},
		MapResolver: &MapResolver{NegativeTTL: 15 * time.Minute, UnregisteredTTL: time.Minute},
		XTR: &XTR{
			ITR:           true,
			ETR:           true,
			TUN:           "lisp0",
			EIDInterfaces: []string{"eid0"},
			MapResolvers:  addrs("192.0.2.1"),
			MapServers: []MapServerPeer{{
				Address: addr("192.0.2.1"), Algorithm: wire.AuthHMACSHA256, Secret: secret, WantMapNotify: true,
			}},
			RegisterInterval: time.Minute,
			DataPlane:        DataPlaneUserspace, DataPort: DefaultDataPort, UnderlayMTU: DefaultUnderlayMTU, DataNonce: true, LISPSEC: DefaultLISPSEC,
			Database: []DatabaseEntry{{EID: eid(0, "198.51.100.0/24"), Locators: []Locator{
				{Address: addr("192.0.2.12"), Priority: 1, Weight: 50, MPriority: 255},
				{Address: addr("192.0.2.13"), Priority: 1, Weight: 50, MPriority: 255},
			}}},
			PETRs:       addrs("192.0.2.100"),
			RLOCProbing: RLOCProbing{Interval: 10 * time.Second}, NATTraversal: NATTraversal{InfoInterval: DefaultInfoInterval},
			MapCache:  MapCache{MaxEntries: 1000000},
			Subscribe: true,
			DynamicEIDs: []DynamicEID{{Name: "roaming", EID: eid(0, "203.0.113.128/25"), Interface: "eid0", Mode: ModeAcrossSubnet,
				Timeout: DefaultDynamicEIDTimeout, MaxHosts: DefaultDynamicEIDMaxHosts}},
		},
		PITR: &PITR{EIDPrefixes: []netip.Prefix{prefix("198.51.100.0/24")}},
		PETR: &PETR{AllowedSourceEIDs: []EID{eid(0, "198.51.100.0/24")}},
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("interfaces example (-want +got):\n%s", diff)
	}
}

// Every example shipped in the repository must stay valid.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples/*.yaml found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { mustLoad(t, f) })
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want *Config
	}{
		{"petr only", "petr: {}", &Config{PETR: &PETR{}}},
		{"roles as null", "map-server:\nmap-resolver:\npetr:\n", &Config{
			MapServer: &MapServer{
				RegistrationTimeout: 3 * time.Minute, MaxSubscriptions: 100000,
				SubscriptionTTL: 15 * time.Minute, NotifyRetransmit: 3 * time.Second,
				RequireNonceIncrease: true, StateDirectory: DefaultStateDirectory,
				MaxSubscriptionsPerXTR: DefaultMaxSubscriptionsPerXTR,
			},
			MapResolver: &MapResolver{NegativeTTL: 15 * time.Minute, UnregisteredTTL: time.Minute},
			PETR:        &PETR{},
		}},
		{"xtr", `
xtr:
  itr: true
  etr: true
  map-servers: [{address: 192.0.2.1, secret: k}]
  database:
    - eid-prefix: 10.0.0.0/8
      locators: [{address: 192.0.2.2}]
`, &Config{XTR: &XTR{
			ITR: true, ETR: true, TUN: "lisp0",
			MapServers: []MapServerPeer{{
				Address: addr("192.0.2.1"), KeyID: 0, Algorithm: wire.AuthHMACSHA256, Secret: []byte("k"), WantMapNotify: true,
			}},
			RegisterInterval: 60 * time.Second,
			DataPlane:        DataPlaneUserspace, DataPort: DefaultDataPort, UnderlayMTU: DefaultUnderlayMTU, DataNonce: true, LISPSEC: DefaultLISPSEC,
			Database: []DatabaseEntry{{EID: eid(0, "10.0.0.0/8"), Locators: []Locator{
				{Address: addr("192.0.2.2"), Priority: 1, Weight: 100, MPriority: 255, MWeight: 0},
			}}},
			RLOCProbing: RLOCProbing{Interval: 10 * time.Second}, NATTraversal: NATTraversal{InfoInterval: DefaultInfoInterval},
			MapCache: MapCache{MaxEntries: 1000000},
		}}},
		{"etr with only dynamic EIDs", `
xtr:
  etr: true
  eid-interfaces: [eth0]
  dynamic-eids:
    - {name: vm, prefix: 10.1.0.0/16, interface: eth0, locators: [{address: 192.0.2.7}]}
    - {name: big, prefix: 10.2.0.0/16, interface: eth0, locators: [{address: 192.0.2.7}], max-hosts: 20000}
`, &Config{XTR: &XTR{
			ETR: true, TUN: "lisp0", EIDInterfaces: []string{"eth0"}, RegisterInterval: time.Minute,
			DataPlane: DataPlaneUserspace, DataPort: DefaultDataPort, UnderlayMTU: DefaultUnderlayMTU, DataNonce: true, LISPSEC: DefaultLISPSEC,
			DynamicEIDs: []DynamicEID{{Name: "vm", EID: eid(0, "10.1.0.0/16"), Interface: "eth0", Mode: ModeAcrossSubnet,
				Locators: []Locator{{Address: netip.MustParseAddr("192.0.2.7"), Priority: 1, Weight: 100, MPriority: 255}},
				Timeout:  DefaultDynamicEIDTimeout, MaxHosts: DefaultDynamicEIDMaxHosts},
				{Name: "big", EID: eid(0, "10.2.0.0/16"), Interface: "eth0", Mode: ModeAcrossSubnet,
					Locators: []Locator{{Address: netip.MustParseAddr("192.0.2.7"), Priority: 1, Weight: 100, MPriority: 255}},
					Timeout:  DefaultDynamicEIDTimeout, MaxHosts: 20000}},
			RLOCProbing: RLOCProbing{Interval: 10 * time.Second}, NATTraversal: NATTraversal{InfoInterval: DefaultInfoInterval},
			MapCache: MapCache{MaxEntries: 1000000},
		}}},
		{"site defaults", `
map-server:
  sites: [{name: a, keys: [{secret: x}], eid-prefixes: [{prefix: "::/0"}]}]
`, &Config{MapServer: &MapServer{
			RegistrationTimeout: 3 * time.Minute, MaxSubscriptions: 100000, RequireNonceIncrease: true,
			SubscriptionTTL: 15 * time.Minute, NotifyRetransmit: 3 * time.Second, StateDirectory: "/var/lib/lispd",
			MaxSubscriptionsPerXTR: DefaultMaxSubscriptionsPerXTR,
			Sites: []Site{{
				Name:                 "a",
				Keys:                 []Key{{Algorithm: wire.AuthHMACSHA256, Secret: []byte("x")}},
				EIDPrefixes:          []SitePrefix{{EID: eid(0, "::/0")}},
				RequireNonceIncrease: true,
			}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), "test.yaml")
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			want := *tt.want
			want.File = "test.yaml"
			want.Log = Log{Level: slog.LevelInfo, Format: LogFormatText}
			want.Admin = Admin{Socket: "/run/lispd/lispd.sock"}
			want.Control = defaultControl()
			if diff := cmp.Diff(&want, got, cmpOpts); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("lf.key", "one\n")
	write("crlf.key", "two\r\n")
	write("none.key", "three")
	write("inner.key", "four\nfive\n\n")
	write("empty.key", "\n")
	write("big.key", strings.Repeat("x", maxSecretFile+1))
	abs := write("abs.key", "six\n")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("sub/nested.key", "seven\n")

	tests := []struct {
		file    string // secret-file value
		want    string // the secret, or
		wantErr string // the error after "cfg.yaml:4: map-server.sites[0].keys[0].secret-file: "
	}{
		{file: "lf.key", want: "one"},
		{file: "crlf.key", want: "two"},
		{file: "none.key", want: "three"},
		{file: "inner.key", want: "four\nfive"},
		{file: abs, want: "six"},
		{file: "sub/nested.key", want: "seven"},
		{file: "./sub/../lf.key", want: "one"},
		{file: "missing.key", wantErr: "cannot read " + dir + "/missing.key: no such file or directory"},
		{file: "empty.key", wantErr: dir + "/empty.key is empty"},
		{file: "sub", wantErr: dir + "/sub is not a regular file"},
		{file: "big.key", wantErr: dir + "/big.key is too large for a secret (65537 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			yaml := "map-server:\n  sites:\n    - name: s\n      keys: [{secret-file: " + tt.file + "}]\n" +
				"      eid-prefixes: [{prefix: 10.0.0.0/8}]\n"
			name := filepath.Join(dir, "cfg.yaml")
			c, err := Parse([]byte(yaml), name)
			if tt.wantErr != "" {
				want := name + ":4: map-server.sites[0].keys[0].secret-file: " + tt.wantErr
				if err == nil || err.Error() != want {
					t.Fatalf("got error\n%v\nwant\n%s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(c.MapServer.Sites[0].Keys[0].Secret); got != tt.want {
				t.Errorf("secret = %q, want %q", got, tt.want)
			}
		})
	}
}

// Errors is what callers get, and it carries every position.
func TestErrorsType(t *testing.T) {
	_, err := Parse([]byte("petr: {}\nfoo: 1\nbar: 2\n"), "x.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors", err)
	}
	want := Errors{
		{File: "x.yaml", Line: 2, Column: 1, Msg: `unknown key "foo" at top level`},
		{File: "x.yaml", Line: 3, Column: 1, Msg: `unknown key "bar" at top level`},
	}
	if diff := cmp.Diff(want, errs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := (Error{File: "f", Msg: "m"}).Error(); got != "f: m" {
		t.Errorf("line-less error prints %q", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if want := "testdata/does-not-exist.yaml: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
