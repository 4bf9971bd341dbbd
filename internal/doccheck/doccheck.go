// Package doccheck checks the repository's Markdown the way a reader
// clicks through it: every relative link must name a file or directory
// inside the repository, and a link to a heading (#anchor) of a Markdown
// file must name a heading that exists. External links (https:, mailto:)
// are not followed. Only tests use it (see its tests for the repository
// run).
package doccheck

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Link is one link target found in a Markdown document.
type Link struct {
	Line   int    // 1-based
	Target string // as written, e.g. "docs/user-guide.md#take-it-down"
}

// Problem is a link that does not resolve.
type Problem struct {
	File string // slash-separated, relative to the repository root
	Line int
	Link string
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Link, p.Msg) }

var (
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	refDef     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)`)
	htmlRef    = regexp.MustCompile(`(?i)\b(?:href|src)\s*=\s*"([^"]*)"`)
	htmlAnchor = regexp.MustCompile(`(?i)<a\s[^>]*\b(?:name|id)\s*=\s*"([^"]+)"`)
	scheme     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	inlineLink = regexp.MustCompile(`\[[^\]]*\]\(([^)]*)\)`)
)

// lines calls fn for every line of md outside fenced code blocks, as
// written and with inline code spans blanked out (so that examples are
// never read as links).
func lines(md []byte, fn func(n int, line, code string)) {
	var fence string // the opening fence while inside a fenced block
	for i, raw := range strings.Split(string(md), "\n") {
		line := strings.TrimRight(raw, "\r")
		trimmed := strings.TrimLeft(line, " ")
		if len(line)-len(trimmed) <= 3 {
			if fence != "" {
				if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
					fence = ""
				}
				continue
			}
			if f := fenceOf(trimmed); f != "" {
				fence = f
				continue
			}
		} else if fence != "" {
			continue
		}
		fn(i+1, line, blankCode(line))
	}
}

// fenceOf returns the run of ``` or ~~~ (three or more) a line opens a
// fenced code block with, or "".
func fenceOf(s string) string {
	for _, c := range []string{"`", "~"} {
		n := len(s) - len(strings.TrimLeft(s, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

// blankCode replaces inline code spans (`…`, “…“) by spaces.
func blankCode(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(b) && b[i+n] == '`' {
			n++
		}
		delim := strings.Repeat("`", n)
		end := strings.Index(string(b[i+n:]), delim)
		if end < 0 {
			i += n // an unmatched run is literal text
			continue
		}
		for j := i; j < i+n+end+n; j++ {
			b[j] = ' '
		}
		i += n + end + n
	}
	return string(b)
}

// Links returns the link targets of md: inline links and images
// ([text](target "title")), reference definitions ([id]: target) and HTML
// href/src attributes, outside code.
func Links(md []byte) []Link {
	var out []Link
	lines(md, func(n int, _, line string) {
		if m := refDef.FindStringSubmatch(line); m != nil {
			out = append(out, Link{n, strings.Trim(m[1], "<>")})
			return
		}
		for i := 0; ; {
			j := strings.Index(line[i:], "](")
			if j < 0 {
				break
			}
			start := i + j + 2
			target, end := inlineTarget(line[start:])
			out = append(out, Link{n, target})
			i = start + end
		}
		for _, m := range htmlRef.FindAllStringSubmatch(line, -1) {
			out = append(out, Link{n, m[1]})
		}
	})
	return out
}

// inlineTarget reads the destination of an inline link from s, which
// starts just after "](": <target> or a run with balanced parentheses,
// optionally followed by a title. It returns the target and how much of s
// the link used.
func inlineTarget(s string) (string, int) {
	s2 := strings.TrimLeft(s, " ")
	skip := len(s) - len(s2)
	if strings.HasPrefix(s2, "<") {
		if k := strings.IndexByte(s2, '>'); k > 0 {
			return s2[1:k], skip + k + 1
		}
	}
	depth := 0
	for k, r := range s2 {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth == 0:
			return s2[:k], skip + k + 1
		case r == ')':
			depth--
		case r == ' ' || r == '\t':
			return s2[:k], skip + k // a title follows
		}
	}
	return s2, len(s)
}

// Anchors returns the anchors of md's headings as GitHub makes them
// (see Slug; a repeated heading gets -1, -2, …) and those of explicit
// <a name/id="…"> tags.
func Anchors(md []byte) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	lines(md, func(_ int, line, code string) {
		for _, m := range htmlAnchor.FindAllStringSubmatch(code, -1) {
			out[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			return
		}
		s := Slug(m[2])
		if k := seen[s]; k > 0 {
			out[fmt.Sprintf("%s-%d", s, k)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	})
	return out
}

// Slug is GitHub's anchor for a heading: the text without link syntax and
// emphasis, lower-cased, with everything but letters, digits, '-', '_'
// and spaces dropped and each space made a '-'.
func Slug(heading string) string {
	heading = inlineLink.ReplaceAllStringFunc(heading, func(l string) string {
		return l[1:strings.Index(l, "](")]
	})
	var sb strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			sb.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// Check reads each Markdown file (slash-separated, relative to root) and
// returns every link that does not resolve inside root.
func Check(root string, files []string) ([]Problem, error) {
	anchors := map[string]map[string]bool{} // by file, read once
	anchorsOf := func(rel string) (map[string]bool, error) {
		if a, ok := anchors[rel]; ok {
			return a, nil
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		anchors[rel] = Anchors(b)
		return anchors[rel], nil
	}
	var probs []Problem
	for _, file := range files {
		md, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			return nil, err
		}
		for _, l := range Links(md) {
			if msg := checkLink(root, file, l.Target, anchorsOf); msg != "" {
				probs = append(probs, Problem{File: file, Line: l.Line, Link: l.Target, Msg: msg})
			}
		}
	}
	return probs, nil
}

// checkLink says what is wrong with one link of file, or "".
func checkLink(root, file, target string, anchorsOf func(string) (map[string]bool, error)) string {
	if target == "" {
		return "empty link"
	}
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return "" // external: not followed
	}
	p, frag, _ := strings.Cut(target, "#")
	p, err := url.PathUnescape(p)
	if err != nil {
		return "bad escape in path"
	}
	var rel string
	switch {
	case p == "":
		rel = file
	case strings.HasPrefix(p, "/"): // GitHub resolves these from the repository root
		rel = path.Clean(strings.TrimPrefix(p, "/"))
	default:
		rel = path.Join(path.Dir(file), p)
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "points outside the repository"
	}
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return "no such file or directory: " + rel
	}
	if frag == "" || fi.IsDir() || !strings.HasSuffix(strings.ToLower(rel), ".md") {
		return ""
	}
	a, err := anchorsOf(rel)
	if err != nil {
		return err.Error()
	}
	if frag, err = url.PathUnescape(frag); err != nil {
		return "bad escape in anchor"
	}
	if !a[frag] && !a[strings.ToLower(frag)] {
		return fmt.Sprintf("no heading #%s in %s", frag, rel)
	}
	return ""
}

// MarkdownFiles lists the Markdown files under root (slash-separated,
// relative to root), leaving out hidden directories and build output.
func MarkdownFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.EqualFold(filepath.Ext(name), ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

// Root finds the repository root: the nearest directory at or above dir
// holding go.mod.
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod at or above %s", dir)
		}
		dir = parent
	}
}
