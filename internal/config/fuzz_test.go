package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, and what
// it returns must keep its promises: either a configuration with a role,
// or errors that all name the file, in line order, with a message.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../../examples/*.yaml")
	for _, path := range append(seeds, examples...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("petr: {}\nx: &a [*a]\n"))
	f.Add([]byte("xtr: {itr: true, etr: true, database: [{eid-prefix: 10.0.0.0/8, locators: [{interface: eth0}]}]}"))
	// secret-file paths resolve in a directory of our own, holding one key.
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k"), []byte("secret\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("map-server: {sites: [{name: a, keys: [{secret-file: k}], eid-prefixes: [{prefix: 10.0.0.0/8}]}]}"))
	name := filepath.Join(dir, "fuzz.yaml")

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, name)
		if err != nil {
			checkErrors(t, err, name)
			return
		}
		if c.MapServer == nil && c.MapResolver == nil && c.XTR == nil && c.PITR == nil && c.PETR == nil && c.RTR == nil {
			t.Fatal("a configuration without a role was accepted")
		}
		if !Compare(c, c).Empty() {
			t.Fatal("a configuration differs from itself")
		}
		again, err := Parse(data, name)
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("parsing twice gave different results: %v", err)
		}
	})
}

func checkErrors(t *testing.T, err error, name string) {
	errs, ok := err.(Errors)
	if !ok || len(errs) == 0 {
		t.Fatalf("error %T %v is not a non-empty Errors", err, err)
	}
	if len(errs) > maxErrors+1 {
		t.Fatalf("%d errors reported", len(errs))
	}
	for i, e := range errs {
		if e.File != name || e.Msg == "" || strings.Contains(e.Msg, "\n") {
			t.Fatalf("bad error %#v", e)
		}
		if i > 0 && e.Line != 0 && e.Line < errs[i-1].Line {
			t.Fatalf("errors out of line order: %v", err)
		}
	}
}
