package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lispd/lispd/internal/yamlstrict"
)

// Load reads the configuration file at path, parses it, applies defaults
// and validates it. Errors are reported as Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: pathErrorReason(err)}}
	}
	return Parse(data, path)
}

// Parse parses a configuration held in memory. name is the file name used
// in error messages and in Config.File; secret-file paths are resolved
// relative to its directory. On failure the error is an Errors listing
// every problem found, in line order.
func Parse(data []byte, name string) (*Config, error) {
	return parse(data, name, baseVisits+visitsPerByte*len(data))
}

// parse is Parse with a given node-visit budget (tests use small ones).
func parse(data []byte, name string, budget int) (*Config, error) {
	p := newParser(name, budget)
	root := p.document(data)
	return p.parseRoot(root)
}

// ParseNode parses a configuration that is part of a larger YAML
// document, already read as the node tree root (the lispd section of a
// lab topology, say): errors carry the lines of root's nodes, in the
// larger document. name is used as by Parse. An empty mapping is an empty
// configuration.
func ParseNode(root *yaml.Node, name string) (*Config, error) {
	return newParser(name, baseVisits+visitsPerByte*treeSize(root)).parseRoot(root)
}

// treeSize is the number of nodes in the tree at n, aliases not followed.
func treeSize(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	size := 1
	for _, c := range n.Content {
		size += treeSize(c)
	}
	return size
}

func newParser(name string, budget int) *parser {
	p := &parser{file: name, dir: filepath.Dir(name)}
	p.w = yamlstrict.New(&configDialect, budget, p.report)
	return p
}

func (p *parser) parseRoot(root *yaml.Node) (*Config, error) {
	var cfg *Config
	if len(p.errs) == 0 {
		cfg = p.config(root)
	}
	if errs := p.finish(); errs != nil {
		return nil, errs
	}
	cfg.File = p.file
	return cfg, nil
}

// Limits that keep hostile input (alias bombs, error floods) cheap.
const (
	maxErrors = 100 // reported problems; more are summarized in one line
	// Each node of a legitimate file takes at least a couple of bytes, so
	// the budget only bites when aliases expand the document many times.
	baseVisits    = 100000
	visitsPerByte = 10
)

// parser walks the YAML node tree, filling the Config and collecting every
// problem with the position of the node at fault.
type parser struct {
	file string // name for error messages
	dir  string // directory secret-file paths are relative to
	errs Errors
	// w walks the tree; it stops at the alias budget (the document
	// expands too much) or at the error limit.
	w *yamlstrict.Walker
	// truncated: the walk stopped at the error limit, so the count of
	// errors not shown is a lower bound.
	truncated bool
	// msSecLines, mrSecLines: where each LISP-SEC key ID of the
	// Map-Server and the Map-Resolver was written.
	msSecLines, mrSecLines map[uint8]int
}

// setter stores the value node v found at path at somewhere in the Config.
type setter func(v *yaml.Node, at string)

// configDialect words the problems of a configuration's shape.
var configDialect = yamlstrict.Dialect{
	TooComplex: "document too complex (aliases expand it too much)",
	NotMapping: func(path string, n *yaml.Node) string {
		return fmt.Sprintf("%s: expected a mapping, got %s", where(path), describe(n))
	},
	NotList: func(path string, n *yaml.Node) string {
		return fmt.Sprintf("%s: expected a list, got %s", path, describe(n))
	},
	NotScalar: func(at string, n *yaml.Node) string {
		if isNull(n) {
			return at + ": missing value"
		}
		return fmt.Sprintf("%s: expected a single value, got %s", at, describe(n))
	},
	KeyNotScalar: func(path string, k *yaml.Node) string {
		return fmt.Sprintf("%s: keys must be plain names, got %s", where(path), describe(k))
	},
	MergeKey: func(path string) string { return where(path) + ": merge keys (<<) are not supported" },
	UnknownKey: func(path, key string, known []string) string {
		in := "in " + path
		if path == "" {
			in = "at top level"
		}
		if s := suggest(key, known); s != "" {
			return fmt.Sprintf("unknown key %q %s (did you mean %q?)", key, in, s)
		}
		return fmt.Sprintf("unknown key %q %s", key, in)
	},
	DuplicateKey: func(path, key string, first int) string {
		return fmt.Sprintf("%s: duplicate key (first at line %d)", join(path, key), first)
	},
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.w.Errorf(n, format, args...)
}

// report records a problem the walk found.
func (p *parser) report(n *yaml.Node, msg string) {
	e := Error{File: p.file, Msg: msg}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
	if len(p.errs) >= 10*maxErrors {
		// Enough to sort and report; the rest would only cost memory.
		p.truncated = true
		p.w.Stop()
	}
}

// errorCount is a mark for clean: the number of problems found so far.
func (p *parser) errorCount() int { return len(p.errs) }

// clean says whether no problem was found since mark. Only clean entries
// join cross-entry checks such as site overlaps, so that one mistake is
// reported once, not again as a clash with its neighbours.
func (p *parser) clean(mark int) bool { return len(p.errs) == mark && !p.w.Stopped() }

// checked wraps a setter, recording in ok whether its value was good. It
// guards the values that identify a list entry: an entry whose identity is
// known takes part in duplicate checks even when its other values are bad.
func (p *parser) checked(ok *bool, set setter) setter {
	return func(v *yaml.Node, at string) {
		mark := p.errorCount()
		set(v, at)
		*ok = p.clean(mark)
	}
}

// errorAt reports a problem at a line remembered from an earlier node.
func (p *parser) errorAt(line int, format string, args ...any) {
	p.errorf(&yaml.Node{Line: line}, format, args...)
}

// finish returns the collected errors in line order, at most maxErrors of
// them, or nil when there are none.
func (p *parser) finish() error {
	if len(p.errs) == 0 {
		return nil
	}
	p.errs.sort()
	if len(p.errs) > maxErrors {
		msg := fmt.Sprintf("%d more errors not shown", len(p.errs)-maxErrors)
		if p.truncated {
			msg = fmt.Sprintf("more than %d further errors; stopped looking", len(p.errs)-maxErrors)
		}
		p.errs = append(p.errs[:maxErrors], Error{File: p.file, Msg: msg})
	}
	return p.errs
}

// document parses data into a node tree and returns the single document's
// root, or nil for an empty file or a syntax error (reported). A syntax
// error the YAML library gives no line for is put on line 1.
func (p *parser) document(data []byte) *yaml.Node {
	root, probs := yamlstrict.Decode(data)
	for _, pr := range probs {
		if pr.Line == 0 {
			pr.Line = 1
		}
		if strings.Contains(pr.Msg, "cannot start any token") && startsWithTab(data, pr.Line) {
			pr.Msg += " (indent with spaces: YAML does not allow tabs there)"
		}
		p.errs = append(p.errs, Error{File: p.file, Line: pr.Line, Column: pr.Column, Msg: pr.Msg})
	}
	return root
}

// startsWithTab says whether line (1-based) of data is indented with a tab.
func startsWithTab(data []byte, line int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(lines[line-1], " "), []byte("\t"))
}

func isNull(n *yaml.Node) bool { return yamlstrict.IsNull(n) }

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string { return yamlstrict.Describe(n) }

// join extends a key path: "map-server" + "sites" = "map-server.sites".
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields walks the mapping n found at path: it calls the setter of every
// known key and reports unknown, duplicate and non-string keys. A null n
// (a key with nothing after it) is an empty mapping. It returns the keys
// present, for required and mutually exclusive keys.
func (p *parser) fields(n *yaml.Node, path string, setters map[string]setter) map[string]keyValue {
	seen := map[string]keyValue{}
	for key, e := range yamlstrict.Mapping(p.w, n, path, setters, func(k, v *yaml.Node, set setter) {
		set(v, join(path, k.Value))
	}) {
		seen[key] = keyValue{e.Key, e.Value}
	}
	return seen
}

// keyValue is one entry of a mapping.
type keyValue struct{ key, value *yaml.Node }

// isEmpty says whether the value is null or an empty list or mapping,
// without charging the alias budget (the value was walked already).
func (kv keyValue) isEmpty() bool {
	v := deref(kv.value)
	return v == nil || isNull(v) || v.Kind != yaml.ScalarNode && len(v.Content) == 0
}

// deref follows aliases without charging the budget, for nodes already
// walked; nil when there is no node.
func deref(n *yaml.Node) *yaml.Node { return yamlstrict.Deref(n) }

// where names a path for messages; the root has no path.
func where(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// suggest returns the known key closest to a misspelt one, if it is close
// enough to be the likely intent: one edit for short keys, two for keys of
// eight or more characters ("foo" is two edits from "log", but no typo).
func suggest(key string, known []string) string {
	limit := min(2, max(1, len(key)/4))
	best, bestDist := "", limit+1
	for _, name := range known {
		if d := editDistance(key, name); d < bestDist || d == bestDist && name < best {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, for short keys only.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// isMapping says whether n is a mapping or null (an empty one). Checks on
// a mapping's keys skip anything else: fields reported it already.
func isMapping(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && (n.Kind == yaml.MappingNode || isNull(n))
}

// require reports each key of names missing from the mapping n.
func (p *parser) require(n *yaml.Node, path string, seen map[string]keyValue, names ...string) bool {
	if !isMapping(n) {
		return false
	}
	ok := true
	for _, name := range names {
		if _, present := seen[name]; !present {
			p.errorf(n, "%s: missing required key %q", where(path), name)
			ok = false
		}
	}
	return ok
}

// seq walks the list n found at path, calling item for each element. A null
// n is an empty list.
func (p *parser) seq(n *yaml.Node, path string, item func(v *yaml.Node, at string)) {
	p.w.Sequence(n, path, func(i int, v *yaml.Node) {
		item(v, fmt.Sprintf("%s[%d]", path, i))
	})
}

// pathErrorReason drops the operation and path from a file-system error;
// the message already names the file.
func pathErrorReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
