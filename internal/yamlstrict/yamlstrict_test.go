package yamlstrict

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		root      bool
		want      []Problem
	}{
		{"empty", "", false, nil},
		{"comment only", "# nothing\n", false, nil},
		{"one", "a: 1\n", true, nil},
		{"syntax", "a: [1\n", false, []Problem{{Line: 1, Msg: "invalid YAML: did not find expected ',' or ']'"}}},
		{"two documents", "a: 1\n---\nb: 2\n", true, []Problem{{Line: 2, Column: 1, Msg: "only one YAML document is allowed"}}},
		{"second one broken", "a: 1\n---\nb: [\n", true, []Problem{{Line: 3, Msg: "invalid YAML: did not find expected node content"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, probs := Decode([]byte(tc.doc))
			if (root != nil) != tc.root {
				t.Errorf("root %v, want one: %v", root, tc.root)
			}
			if !slices.Equal(probs, tc.want) {
				t.Errorf("problems %+v, want %+v", probs, tc.want)
			}
		})
	}
}

var testDialect = Dialect{
	TooComplex:   "too complex",
	NotMapping:   func(at string, n *yaml.Node) string { return at + ": not a mapping but " + Describe(n) },
	NotList:      func(at string, n *yaml.Node) string { return at + ": not a list but " + Describe(n) },
	NotScalar:    func(at string, n *yaml.Node) string { return at + ": not a value but " + Describe(n) },
	KeyNotScalar: func(at string, _ *yaml.Node) string { return at + ": odd key" },
	MergeKey:     func(at string) string { return at + ": merge key" },
	UnknownKey: func(at, key string, known []string) string {
		return fmt.Sprintf("%s: unknown %s (known %s)", at, key, strings.Join(known, ","))
	},
	DuplicateKey: func(at, key string, first int) string { return fmt.Sprintf("%s: %s again (line %d)", at, key, first) },
}

// walk reads {a: VALUE, b: [VALUES]} and returns what it read and the
// problems as "LINE: message".
func walk(t *testing.T, d Dialect, budget int, doc string) (got []string, probs []string) {
	t.Helper()
	root, dp := Decode([]byte(doc))
	if len(dp) > 0 {
		t.Fatal(dp)
	}
	w := New(&d, budget, func(n *yaml.Node, msg string) { probs = append(probs, fmt.Sprintf("%d: %s", n.Line, msg)) })
	fields := map[string]func(v *yaml.Node){
		"a": func(v *yaml.Node) {
			if s, ok := w.Scalar(v, "a"); ok {
				got = append(got, "a="+s.Value)
			}
		},
		"b": func(v *yaml.Node) {
			w.Sequence(v, "b", func(i int, item *yaml.Node) {
				if s, ok := w.Scalar(item, fmt.Sprintf("b[%d]", i)); ok {
					got = append(got, "b="+s.Value)
				}
			})
		},
	}
	Mapping(w, root, "top", fields, func(_, v *yaml.Node, f func(*yaml.Node)) { f(v) })
	return got, probs
}

func TestWalk(t *testing.T) {
	dupFirst := testDialect
	dupFirst.DuplicatesFirst = true
	noMerge := testDialect
	noMerge.MergeKey = nil
	for _, tc := range []struct {
		name      string
		d         Dialect
		doc       string
		got, want []string
	}{
		{"values and aliases", testDialect, "a: &x 1\nb: [*x, 2]\n", []string{"a=1", "b=1", "b=2"}, nil},
		{"null is empty", testDialect, "a: 1\nb:\n", []string{"a=1"}, nil},
		{"shapes", testDialect, "a: [1]\nb: {c: 1}\n", nil, []string{"1: a: not a value but a list", "2: b: not a list but a mapping"}},
		{"missing value", testDialect, "a:\nb: [~]\n", nil, []string{"1: a: not a value but nothing", "2: b[0]: not a value but nothing"}},
		{"unknown then repeated", testDialect, "c: 1\nc: 2\na: 1\na: 2\n", []string{"a=1"},
			[]string{"1: top: unknown c (known a,b)", "2: top: unknown c (known a,b)", "4: top: a again (line 3)"}},
		{"repeated first", dupFirst, "c: 1\nc: 2\n", nil, []string{"1: top: unknown c (known a,b)", "2: top: c again (line 1)"}},
		{"odd key", testDialect, "[x]: 1\n", nil, []string{"1: top: odd key"}},
		{"merge key", testDialect, "<<: {a: 1}\n", nil, []string{"1: top: merge key"}},
		{"merge key as a key", noMerge, "<<: {a: 1}\n", nil, []string{"1: top: unknown << (known a,b)"}},
		{"not a mapping", testDialect, "[1]\n", nil, []string{"1: top: not a mapping but a list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, probs := walk(t, tc.d, 1000, tc.doc)
			if !slices.Equal(got, tc.got) || !slices.Equal(probs, tc.want) {
				t.Errorf("read %q, problems %q\nwant %q, %q", got, probs, tc.got, tc.want)
			}
		})
	}
}

// An alias bomb stops the walk at the budget, with one problem.
func TestBudget(t *testing.T) {
	doc := "x: &a [1, 1, 1, 1, 1, 1, 1, 1]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nz: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nb: [*c, *c, *c, *c, *c, *c, *c, *c]\n"
	root, _ := Decode([]byte(doc))
	var probs []string
	w := New(&testDialect, 100, func(n *yaml.Node, msg string) { probs = append(probs, msg) })
	w.Expand(root)
	if !slices.Equal(probs, []string{"too complex"}) || !w.Stopped() {
		t.Errorf("problems %q, stopped %v; want one, stopped", probs, w.Stopped())
	}
	w.Errorf(root, "after the stop")
	if len(probs) != 1 {
		t.Errorf("reported after the stop: %q", probs)
	}
	if got, _ := walk(t, testDialect, 1000, "a: 1\nb: [1, 2]\n"); len(got) != 3 {
		t.Errorf("a small document within a budget: %q", got)
	}
}

func TestExpand(t *testing.T) {
	root, _ := Decode([]byte("a: &x\n  k: v\nb: *x\n"))
	c := Expand(root)
	_, b := MapEntry(c, "b")
	if b == nil || b.Kind != yaml.MappingNode || b.Anchor != "" || b.Line != 1 {
		t.Fatalf("b = %+v, want a copy of a's mapping (line 1, its anchor's)", b)
	}
	k, v := MapEntry(b, "k")
	if k == nil || v.Value != "v" || v.Line != 2 {
		t.Errorf("b.k = %+v", v)
	}
	// The copy is the caller's: changing it leaves the original alone.
	v.Value = "changed"
	if _, ov := MapEntry(root, "a"); ov.Content[1].Value != "v" {
		t.Error("Expand shares nodes with the original")
	}
	if k, v := MapEntry(c, "nope"); k != nil || v != nil {
		t.Error("MapEntry found a missing key")
	}
}

func TestLines(t *testing.T) {
	es := []error{fmt.Errorf("a.yaml:1: one"), fmt.Errorf("a.yaml:3: two")}
	if got := Lines(es); got != "a.yaml:1: one\na.yaml:3: two" {
		t.Errorf("Lines = %q", got)
	}
	if got := Lines([]error(nil)); got != "" {
		t.Errorf("Lines(nil) = %q", got)
	}
}
