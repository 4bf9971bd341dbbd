package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// compareBase is the configuration each Compare case edits.
const compareBase = `log: {level: info}
admin: {socket: /run/a.sock}
control: {port: 4342}
map-server:
  registration-timeout: 3m
  sites:
    - {name: a, keys: [{secret: x}], eid-prefixes: [{prefix: 10.0.0.0/8}]}
    - {name: b, keys: [{secret: y}], eid-prefixes: [{prefix: 11.0.0.0/8}]}
    - {name: c, keys: [{secret: z}], eid-prefixes: [{prefix: 12.0.0.0/8}]}
map-resolver: {negative-ttl: 15m}
xtr: {itr: true, tun: lisp0}
pitr: {eid-prefixes: [10.0.0.0/8]}
petr: {}
`

func TestCompare(t *testing.T) {
	sites := []string{"map-server.sites"}
	tests := []struct {
		name    string
		old     string // replaced in compareBase
		new     string
		want    Diff
		newFull string // instead of an edit: the whole new configuration
	}{
		{name: "same", want: Diff{}},
		{name: "log", old: "level: info", new: "level: debug", want: Diff{Keys: []string{"log.level"}}},
		{name: "admin", old: "a.sock", new: "b.sock", want: Diff{Keys: []string{"admin.socket"}}},
		{name: "control", old: "port: 4342", new: "port: 4343", want: Diff{Keys: []string{"control.port"}}},
		{name: "map-server setting", old: "registration-timeout: 3m", new: "registration-timeout: 4m",
			want: Diff{Keys: []string{"map-server.registration-timeout"}}},
		{name: "site secret", old: "secret: y", new: "secret: yy", want: Diff{SitesChanged: []string{"b"}, Keys: sites}},
		{name: "site prefix", old: "prefix: 12.0.0.0/8", new: "prefix: 12.0.0.0/8, accept-more-specifics: true",
			want: Diff{SitesChanged: []string{"c"}, Keys: sites}},
		{name: "inherited setting changes every site that inherits it",
			old: "registration-timeout: 3m", new: "require-nonce-increase: false",
			want: Diff{SitesChanged: []string{"a", "b", "c"},
				Keys: []string{"map-server.require-nonce-increase", "map-server.sites"}}},
		{name: "site renamed", old: "name: a,", new: "name: d,",
			want: Diff{SitesAdded: []string{"d"}, SitesRemoved: []string{"a"}, Keys: sites}},
		{name: "site removed", old: "    - {name: b, keys: [{secret: y}], eid-prefixes: [{prefix: 11.0.0.0/8}]}\n",
			new: "", want: Diff{SitesRemoved: []string{"b"}, Keys: sites}},
		{name: "sites reordered", old: "    - {name: a, keys: [{secret: x}], eid-prefixes: [{prefix: 10.0.0.0/8}]}\n",
			new: "    - {name: z, keys: [{secret: x}], eid-prefixes: [{prefix: 13.0.0.0/8}]}\n" +
				"    - {name: a, keys: [{secret: x}], eid-prefixes: [{prefix: 10.0.0.0/8}]}\n",
			want: Diff{SitesAdded: []string{"z"}, Keys: sites}},
		{name: "map-resolver", old: "negative-ttl: 15m", new: "negative-ttl: 16m", want: Diff{Keys: []string{"map-resolver.negative-ttl"}}},
		{name: "xtr", old: "tun: lisp0", new: "tun: lisp1", want: Diff{Keys: []string{"xtr.tun"}}},
		{name: "pitr", old: "[10.0.0.0/8]", new: "[10.0.0.0/9]", want: Diff{Keys: []string{"pitr.eid-prefixes"}}},
		{name: "source checks", old: "tun: lisp0", new: "tun: lisp0, source-rloc-check: [{instance-id: 7}]",
			want: Diff{Keys: []string{"xtr.source-rloc-check"}}},
		{name: "petr sources", old: "petr: {}", new: "petr: {allowed-source-eids: [{prefix: 10.0.0.0/8}]}",
			want: Diff{Keys: []string{"petr.allowed-source-eids"}}},
		{name: "roles off", newFull: "log: {level: info}\nadmin: {socket: /run/a.sock}\npetr: {}\n",
			want: Diff{
				SitesRemoved: []string{"a", "b", "c"},
				Keys:         []string{"map-server", "map-resolver", "xtr", "pitr"},
			}},
	}
	old := parseString(t, compareBase)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(compareBase, tt.old, tt.new, 1)
			if tt.newFull != "" {
				text = tt.newFull
			}
			if text == compareBase && tt.old != "" {
				t.Fatalf("edit %q not found", tt.old)
			}
			d := Compare(old, parseString(t, text))
			if diff := cmp.Diff(tt.want, d); diff != "" {
				t.Errorf("Compare (-want +got):\n%s", diff)
			}
			if d.Empty() != (tt.name == "same") {
				t.Errorf("Empty() = %v", d.Empty())
			}
		})
	}
}

// A reload must notice a changed secret file even when the YAML is the same.
func TestCompareSecretFile(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "a.key")
	name := filepath.Join(dir, "lispd.yaml")
	text := []byte("map-server:\n  sites: [{name: a, keys: [{secret-file: a.key}], eid-prefixes: [{prefix: 10.0.0.0/8}]}]\n")
	load := func(secret string) *Config {
		t.Helper()
		if err := os.WriteFile(key, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Parse(text, name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before, after := load("one\n"), load("two\n")
	if d := Compare(before, after); !cmp.Equal(d.SitesChanged, []string{"a"}) {
		t.Errorf("Compare = %+v, want site a changed", d)
	}
	if d := Compare(before, load("one")); !d.Empty() {
		t.Errorf("only the trailing newline differs, but Compare = %+v", d)
	}
}

func TestCompareNil(t *testing.T) {
	c := parseString(t, compareBase)
	d := Compare(nil, c)
	want := Diff{
		SitesAdded: []string{"a", "b", "c"},
		Keys: []string{"log.format", "admin.socket", "control.addresses", "control.port", "control.rate-limit",
			"map-server", "map-resolver", "xtr", "pitr", "petr"},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("Compare(nil, c) (-want +got):\n%s", diff)
	}
	if d := Compare(nil, nil); !d.Empty() {
		t.Errorf("Compare(nil, nil) = %+v", d)
	}
}

// Every setting of every section must be named by some key when it
// changes: a reload that never hears of a setting would silently keep the
// old value.
func TestChangedKeysCoverEveryField(t *testing.T) {
	base := func() *Config {
		return &Config{MapServer: &MapServer{}, MapResolver: &MapResolver{}, PITR: &PITR{}, PETR: &PETR{}, RTR: &RTR{},
			XTR: &XTR{DynamicEIDs: []DynamicEID{{Name: "a"}}}}
	}
	sections := func(c *Config) map[string]reflect.Value {
		return map[string]reflect.Value{
			"log": reflect.ValueOf(&c.Log).Elem(), "admin": reflect.ValueOf(&c.Admin).Elem(),
			"control": reflect.ValueOf(&c.Control).Elem(), "map-server": reflect.ValueOf(c.MapServer).Elem(),
			"map-resolver": reflect.ValueOf(c.MapResolver).Elem(), "xtr": reflect.ValueOf(c.XTR).Elem(),
			"pitr": reflect.ValueOf(c.PITR).Elem(), "petr": reflect.ValueOf(c.PETR).Elem(), "rtr": reflect.ValueOf(c.RTR).Elem(),
			"xtr.dynamic-eids[a]": reflect.ValueOf(&c.XTR.DynamicEIDs[0]).Elem(),
		}
	}
	if n := reflect.TypeOf(Config{}).NumField(); n != 10 {
		t.Errorf("Config has %d fields: give the new section keys and add it here", n)
	}
	for name, sec := range sections(base()) {
		for i := range sec.NumField() {
			field := sec.Type().Field(i).Name
			if name == "xtr" && field == "DynamicEIDs" {
				continue // by field below
			}
			newCfg := base()
			if !mutate(sections(newCfg)[name].Field(i)) {
				t.Fatalf("%s.%s: test cannot change a %s", name, field, sec.Field(i).Type())
			}
			keys := changedKeys(base(), newCfg)
			if len(keys) == 0 || !strings.HasPrefix(keys[0], strings.TrimSuffix(name, "[a]")) {
				t.Errorf("%s.%s changed: keys %q", name, field, keys)
			}
		}
	}
}

// mutate changes v to another value.
func mutate(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	case reflect.Array:
		return mutate(v.Index(0))
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			return true
		}
		return mutate(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(netip.Addr{}) {
			v.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.1")))
			return true
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && mutate(v.Field(i)) {
				return true
			}
		}
		return false
	default:
		return false
	}
	return true
}

func parseString(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse([]byte(text), "test.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%v\n%s", err, text)
	}
	return c
}

func TestCoversAndSiteFor(t *testing.T) {
	ms := parseString(t, `map-server:
  sites:
    - name: wide
      keys: [{secret: x}]
      eid-prefixes:
        - {prefix: 10.0.0.0/8, accept-more-specifics: true}
        - {prefix: 10.1.0.0/16, accept-more-specifics: true}
        - {prefix: "2001:db8::/32"}
        - {prefix: 192.0.2.0/24, instance-id: 7, accept-more-specifics: true}
    - name: exact
      keys: [{secret: x}]
      eid-prefixes:
        - {prefix: 198.51.100.0/24}
        - {prefix: 10.0.0.0/8, instance-id: 1, accept-more-specifics: true}
`).MapServer
	tests := []struct {
		iid    uint32
		prefix string
		site   string // "" for none
		bits   int    // length of the covering prefix
	}{
		{0, "10.0.0.0/8", "wide", 8},
		{0, "10.2.3.0/24", "wide", 8},
		{0, "10.1.2.0/24", "wide", 16}, // longest of the site's prefixes
		{0, "10.1.2.3/24", "wide", 16}, // host bits ignored
		{0, "10.0.0.0/7", "", 0},       // less specific
		{0, "11.0.0.0/8", "", 0},
		{1, "10.5.0.0/16", "exact", 8}, // other instance, other site
		{2, "10.5.0.0/16", "", 0},
		{0, "2001:db8::/32", "wide", 32},
		{0, "2001:db8:1::/48", "", 0}, // no more-specifics there
		{0, "198.51.100.0/24", "exact", 24},
		{0, "198.51.100.0/25", "", 0},
		{7, "192.0.2.128/25", "wide", 24},
		{0, "192.0.2.128/25", "", 0},
		{0, "::ffff:10.0.0.0/104", "", 0}, // IPv4-mapped is IPv6, not IPv4
	}
	for _, tt := range tests {
		p := netip.MustParsePrefix(tt.prefix)
		s := ms.SiteFor(tt.iid, p)
		var got string
		if s != nil {
			got = s.Name
			if !s.Covers(tt.iid, p) {
				t.Errorf("SiteFor(%d, %s) = %s, which does not cover it", tt.iid, tt.prefix, got)
			}
			if sp, _ := s.covering(tt.iid, p); sp.Prefix.Bits() != tt.bits {
				t.Errorf("%d %s: covered by /%d, want /%d", tt.iid, tt.prefix, sp.Prefix.Bits(), tt.bits)
			}
		}
		if got != tt.site {
			t.Errorf("SiteFor(%d, %s) = %q, want %q", tt.iid, tt.prefix, got, tt.site)
		}
		for _, site := range ms.Sites {
			if want := site.Name == tt.site; site.Covers(tt.iid, p) != want {
				t.Errorf("%s.Covers(%d, %s) = %v, want %v", site.Name, tt.iid, tt.prefix, !want, want)
			}
		}
	}
	if ms.SiteFor(0, netip.Prefix{}) != nil {
		t.Error("SiteFor(invalid prefix) found a site")
	}
}

// BenchmarkParseSites measures a large Map-Server configuration: 10000
// sites with two prefixes each, checked for overlaps.
func BenchmarkParseSites(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("map-server:\n  sites:\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "    - {name: s%d, keys: [{secret: k}], eid-prefixes: [{prefix: 10.%d.%d.0/24}, {prefix: \"2001:db8:%x::/48\", instance-id: 3}]}\n",
			i, i/256, i%256, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, "big.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

// Printing a configuration, as a debug log might, must not reveal secrets.
func TestSecretsNotPrinted(t *testing.T) {
	c := mustLoad(t, "testdata/full.yaml")
	for _, verb := range []string{"%v", "%+v", "%s"} {
		out := fmt.Sprintf(verb, *c.MapServer) + fmt.Sprintf(verb, *c.XTR)
		for _, secret := range []string{"s3cret", "file-secret-1", "ms-secret", "12345"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output contains secret %q:\n%s", verb, secret, out)
			}
		}
	}
	want := "key-id 1 hmac-sha-1-96 (secret from testdata/secrets/dc1.key)"
	if got := c.MapServer.Sites[0].Keys[1].String(); got != want {
		t.Errorf("Key.String() = %q, want %q", got, want)
	}
}
