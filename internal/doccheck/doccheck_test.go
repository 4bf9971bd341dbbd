package doccheck

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestRepositoryLinks is the link check of the repository: every relative
// link in README.md, docs/*.md, testdata/vectors/README.md and any other
// Markdown file resolves inside the repository.
func TestRepositoryLinks(t *testing.T) {
	root := repoRoot(t)
	files, err := MarkdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"README.md", "docs/architecture.md", "docs/interfaces.md", "docs/user-guide.md", "testdata/vectors/README.md"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is missing (found %v)", want, files)
		}
	}
	probs, err := Check(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Error(p)
	}
	// README is where a newcomer starts: it must lead to both documents.
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, l := range Links(readme) {
		targets = append(targets, l.Target)
	}
	for _, want := range []string{"docs/architecture.md", "docs/interfaces.md"} {
		if !slices.Contains(targets, want) {
			t.Errorf("README.md does not link to %s", want)
		}
	}
}

// TestNothingOutsideRepository: no file of the repository refers to the
// plans and vectors that used to sit beside it.
func TestNothingOutsideRepository(t *testing.T) {
	root := repoRoot(t)
	needles := []string{"../" + "shared", "shared" + "/vectors", "shared" + "/docs"}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() > 4<<20 {
			return err // larger files are build output or captures, not text anyone wrote
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b[:min(len(b), 8192)], []byte{0}) {
			return nil // binary: a capture
		}
		rel, _ := filepath.Rel(root, p)
		for n, line := range strings.Split(string(b), "\n") {
			for _, needle := range needles {
				if strings.Contains(line, needle) {
					t.Errorf("%s:%d: refers to %q, outside the repository: %s", rel, n+1, needle, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestInterfacesConfigExample: the configuration example of
// docs/interfaces.md is the file internal/config's TestInterfacesExample
// parses and pins, so the document and the parser cannot drift apart.
func TestInterfacesConfigExample(t *testing.T) {
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "interfaces.md"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile(filepath.Join(root, "internal", "config", "testdata", "interfaces-example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The file's leading comment says what it is; the rest is the example.
	body := string(ex)
	for strings.HasPrefix(body, "#") {
		_, body, _ = strings.Cut(body, "\n")
	}
	if !strings.Contains(string(doc), "```yaml\n"+body+"```\n") {
		t.Errorf("docs/interfaces.md does not hold internal/config/testdata/interfaces-example.yaml verbatim in a yaml block:\n%s", body)
	}
}

// TestCheckFindsBrokenLinks runs the checker on a small repository with
// good and broken links of every kind it knows.
func TestCheckFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/x\n")
	write("examples/a.yaml", "a: 1\n")
	write("docs/guide.md", "# Guide\n\n## Take it down\n\n## Take it down\n\n## `lispctl show` (and `--json`)\n")
	write("README.md", strings.Join([]string{
		"# Top", // 1
		"[guide](docs/guide.md) and [dir](examples/)",       // 2: good
		"[gone](docs/missing.md)",                           // 3: broken
		"[up](../outside.md) ![img](docs/pic.png)",          // 4: outside, missing image
		"[h](docs/guide.md#take-it-down-1) [x](#top)",       // 5: good anchors (repeat, own file)
		"[bad](docs/guide.md#no-such-heading)",              // 6: bad anchor
		"[code](docs/guide.md#lispctl-show-and---json)",     // 7: good: punctuation dropped
		"`[not a link](nowhere.md)` <https://example.com/>", // 8: code span, autolink
		"```",                      // 9
		"[in a fence](nowhere.md)", // 10: ignored
		"```",                      // 11
		"[ext](https://example.com/x) [m](mailto:a@b.c)",    // 12: external, not followed
		"[ref]: docs/nothing-here.md",                       // 13: broken reference definition
		`<a href="examples/a.yaml">a</a> <img src="x.png">`, // 14: good, missing
		"[t](examples/a.yaml \"a title\") [e]()",            // 15: good with title; empty
		"[root](/examples/a.yaml) [rootbad](/docs/nope.md)", // 16: root-relative good, bad
		"[p](docs/guide.md#Take-it-down) [q](#nowhere)",     // 17: case-insensitive good; bad own anchor
		"    [indented](docs/guide.md)",                     // 18: good
		"~~~md",                                             // 19
		"[tilde fence](nowhere.md)",                         // 20: ignored
		"~~~",                                               // 21
		"[sp](docs/guide%2Emd)",                             // 22: escaped, good
	}, "\n")+"\n")
	probs, err := Check(root, []string{"README.md", "docs/guide.md"})
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		line int
		link string
	}
	var have []got
	for _, p := range probs {
		have = append(have, got{p.Line, p.Link})
		if p.File != "README.md" || p.Msg == "" {
			t.Errorf("problem %v: want file README.md and a message", p)
		}
	}
	want := []got{
		{3, "docs/missing.md"},
		{4, "../outside.md"},
		{4, "docs/pic.png"},
		{6, "docs/guide.md#no-such-heading"},
		{13, "docs/nothing-here.md"},
		{14, "x.png"},
		{15, ""},
		{16, "/docs/nope.md"},
		{17, "#nowhere"},
	}
	if !slices.Equal(have, want) {
		t.Errorf("problems:\n got %v\nwant %v\n(all: %v)", have, want, probs)
	}
	for _, p := range probs {
		if p.Link == "../outside.md" && !strings.Contains(p.Msg, "outside the repository") {
			t.Errorf("%v: want a message saying it points outside the repository", p)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Take it down":                    "take-it-down",
		"`lispctl show` (and `--json`)":   "lispctl-show-and---json",
		"How to add a `show` command":     "how-to-add-a-show-command",
		"Data flow: a Map-Request":        "data-flow-a-map-request",
		"[docs](docs/x.md) and more":      "docs-and-more",
		"Config keys: xtr.map_cache.size": "config-keys-xtrmap_cachesize",
		"Étape 2 — ça marche":             "étape-2--ça-marche",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLinksSkipCode(t *testing.T) {
	md := "a `b](c)` [d](e) ``x `[f](g)` y`` [h](i)\n````\n```\n[j](k)\n````\n[l](m)\n"
	var got []string
	for _, l := range Links([]byte(md)) {
		got = append(got, l.Target)
	}
	if want := []string{"e", "i", "m"}; !slices.Equal(got, want) {
		t.Errorf("Links = %q, want %q", got, want)
	}
}
