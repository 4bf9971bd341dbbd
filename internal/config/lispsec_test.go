package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLISPSECKeys(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "itr.key"), []byte("from a file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(`
map-server:
  lisp-sec-keys: [{key-id: 7, secret: shared-with-itrs}]
  sites: [{name: a, keys: [{secret: x}], eid-prefixes: [{prefix: 198.51.100.0/24}]}]
map-resolver:
  lisp-sec-keys: [{key-id: 7, secret: shared-with-itrs}, {key-id: 8, secret-file: itr.key}]
xtr:
  itr: true
  map-resolvers: [192.0.2.1]
  lisp-sec: required
  lisp-sec-key: {key-id: 8, secret-file: itr.key}
`), filepath.Join(dir, "lispd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.MapServer.LISPSECKeys; len(got) != 1 || got[0].ID != 7 || string(got[0].Secret) != "shared-with-itrs" {
		t.Errorf("map-server.lisp-sec-keys = %+v", got)
	}
	if got := cfg.MapResolver.LISPSECKeys; len(got) != 2 || string(got[1].Secret) != "from a file" {
		t.Errorf("map-resolver.lisp-sec-keys = %+v", got)
	}
	if x := cfg.XTR; x.LISPSEC != LISPSECRequired || x.LISPSECKey.ID != 8 || string(x.LISPSECKey.Secret) != "from a file" {
		t.Errorf("xtr lisp-sec %q, key %+v", x.LISPSEC, x.LISPSECKey)
	}

	off, err := Parse([]byte("xtr: {itr: true, map-resolvers: [192.0.2.1]}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if off.XTR.LISPSEC != LISPSECOff || off.XTR.LISPSECKey.Secret != nil {
		t.Errorf("default lisp-sec %q, key %+v; want off and none", off.XTR.LISPSEC, off.XTR.LISPSECKey)
	}
}

func TestLISPSECBadConfigs(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"xtr:\n  itr: true\n  lisp-sec: always\n", `3: xtr.lisp-sec: unknown value "always" (want off, optional or required)`},
		{"xtr:\n  itr: true\n  lisp-sec: optional\n", "3: xtr.lisp-sec: lisp-sec optional needs lisp-sec-key, the key shared with the Map-Resolvers"},
		{"xtr:\n  itr: true\n  lisp-sec: required\n  lisp-sec-key: {key-id: 1}\n", `4: xtr.lisp-sec-key: missing required key "secret" (or "secret-file")`},
		{"xtr:\n  itr: true\n  lisp-sec-key: {key-id: 256, secret: x}\n", "3: xtr.lisp-sec-key.key-id:"},
		{"map-resolver:\n  lisp-sec-keys:\n    - {key-id: 1, secret: a}\n    - {key-id: 1, secret: b}\n", "4: map-resolver.lisp-sec-keys[1].key-id: duplicate key-id 1 (first at line 3)"},
		{"map-server:\n  lisp-sec-keys: [{key-id: 1, secret: a}]\nmap-resolver:\n  lisp-sec-keys:\n    - {key-id: 1, secret: b}\n",
			"5: map-resolver.lisp-sec-keys: key-id 1 has another secret in map-server.lisp-sec-keys (line 2)"},
	} {
		_, err := Parse([]byte(c.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), "x.yaml:"+c.want) {
			t.Errorf("%q:\n got %v\nwant x.yaml:%s", c.yaml, err, c.want)
		}
	}
}
