// Package yamlstrict walks YAML documents under a strict schema: one
// document only, aliases followed within a budget (so an alias bomb costs
// little), unknown and repeated keys refused, and every problem placed at
// the line of the node at fault. lispd's configuration (internal/config)
// and lab topologies (internal/lab) are read with it, each in its own
// words: a Dialect gives the messages of the problems the walker finds
// itself.
package yamlstrict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is a problem found while decoding, at a line and column of the
// document (0 when the YAML library names none).
type Problem struct {
	Line, Column int
	Msg          string
}

// Decode parses data, which must hold at most one YAML document, and
// returns that document's root: nil for an empty document or when the
// first document cannot be read. A syntax error is reported as "invalid
// YAML: ..." at the line the YAML library names; a second document as
// "only one YAML document is allowed" where it starts.
func Decode(data []byte) (*yaml.Node, []Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := decodeNode(dec, &doc); {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, []Problem{syntaxProblem(err)}
	}
	var probs []Problem
	var extra yaml.Node
	switch err := decodeNode(dec, &extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		probs = append(probs, syntaxProblem(err))
	default:
		probs = append(probs, Problem{Line: extra.Line, Column: extra.Column, Msg: "only one YAML document is allowed"})
	}
	if len(doc.Content) == 0 {
		return nil, probs
	}
	return doc.Content[0], probs
}

// decodeNode reads the next document. The YAML library reports errors by
// panicking internally; should an unexpected panic escape it, it becomes
// an error here, because nothing may crash on input.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxProblem(err error) Problem {
	msg, line := err.Error(), 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return Problem{Line: line, Msg: "invalid YAML: " + msg}
}

// Lines prints problems one a line, each as its Error method does: the
// Error method of a list of FILE:LINE problems.
func Lines[E error](es []E) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Dialect is how one schema words the problems the walker finds. Each
// function gets the at string the caller passed to the walk (a key path,
// or a name for the value) and the node at fault.
type Dialect struct {
	// TooComplex is reported once when aliases expand the document past
	// the budget; the walk stops there.
	TooComplex   string
	NotMapping   func(at string, n *yaml.Node) string
	NotList      func(at string, n *yaml.Node) string
	NotScalar    func(at string, n *yaml.Node) string // n is null, a list or a mapping
	KeyNotScalar func(at string, k *yaml.Node) string
	// MergeKey words a "<<" key; nil: it is a key like any other.
	MergeKey     func(at string) string
	UnknownKey   func(at, key string, known []string) string
	DuplicateKey func(at, key string, firstLine int) string
	// DuplicatesFirst: a repeated key is reported as repeated even when
	// it is unknown; otherwise unknown keys are reported each time and
	// only known ones as repeated.
	DuplicatesFirst bool
}

// Walker walks one document's node tree. It reports each problem through
// its report function until it stops: when the budget runs out or the
// caller calls Stop.
type Walker struct {
	d       *Dialect
	report  func(n *yaml.Node, msg string)
	budget  int // node visits left
	stopped bool
}

// New returns a walker speaking d that may visit budget nodes (aliases
// count each time they are followed) and reports problems to report.
func New(d *Dialect, budget int, report func(n *yaml.Node, msg string)) *Walker {
	return &Walker{d: d, budget: budget, report: report}
}

// Errorf reports a problem at n (which may be nil), unless the walk has
// stopped.
func (w *Walker) Errorf(n *yaml.Node, format string, args ...any) {
	if !w.stopped {
		w.report(n, fmt.Sprintf(format, args...))
	}
}

// Stop ends the walk: nothing more is reported, and lists and mappings
// are walked no further.
func (w *Walker) Stop() { w.stopped = true }

// Stopped says whether the walk has stopped.
func (w *Walker) Stopped() bool { return w.stopped }

// null stands for a node the walk does not reach.
func null() *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"} }

// Resolve follows an alias to the node it names and charges the visit to
// the budget. Past the budget it reports TooComplex once, stops the walk
// and returns an empty value, so callers need no special case.
func (w *Walker) Resolve(n *yaml.Node) *yaml.Node {
	if n = Deref(n); n == nil {
		return null()
	}
	if w.budget--; w.budget < 0 {
		if !w.stopped {
			w.Errorf(n, "%s", w.d.TooComplex)
			w.stopped = true
		}
		return null()
	}
	return n
}

// IsNull says whether n is an empty value ("key:" with nothing after it,
// null, ~).
func IsNull(n *yaml.Node) bool { return n.ShortTag() == "!!null" }

// Deref follows aliases without charging the budget, for nodes already
// walked; nil when there is no node (or a chain of aliases too long).
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 10; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// Describe names what a node is, for "expected X, got Y" messages.
func Describe(n *yaml.Node) string {
	switch {
	case IsNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

// Entry is one key and its value in a mapping.
type Entry struct{ Key, Value *yaml.Node }

// Mapping walks the mapping n found at at: it calls each for every key of
// fields present, with the key's resolved node, its (unresolved) value and
// the field, and reports keys that are unknown, repeated or no plain
// scalar. A null n is an empty mapping. It returns the entries present by
// key, for required and mutually exclusive keys.
func Mapping[F any](w *Walker, n *yaml.Node, at string, fields map[string]F, each func(k, v *yaml.Node, field F)) map[string]Entry {
	n = w.Resolve(n)
	seen := map[string]Entry{}
	if IsNull(n) {
		return seen
	}
	if n.Kind != yaml.MappingNode {
		w.Errorf(n, "%s", w.d.NotMapping(at, n))
		return seen
	}
	for i := 0; i+1 < len(n.Content) && !w.stopped; i += 2 {
		k, v := w.Resolve(n.Content[i]), n.Content[i+1]
		switch {
		case w.d.MergeKey != nil && k.ShortTag() == "!!merge":
			w.Errorf(k, "%s", w.d.MergeKey(at))
			continue
		case k.Kind != yaml.ScalarNode:
			w.Errorf(k, "%s", w.d.KeyNotScalar(at, k))
			continue
		}
		first, dup := seen[k.Value]
		if dup && w.d.DuplicatesFirst {
			w.Errorf(k, "%s", w.d.DuplicateKey(at, k.Value, first.Key.Line))
			continue
		}
		field, known := fields[k.Value]
		if !known {
			if w.d.DuplicatesFirst {
				seen[k.Value] = Entry{k, v}
			}
			w.Errorf(k, "%s", w.d.UnknownKey(at, k.Value, slices.Sorted(maps.Keys(fields))))
			continue
		}
		if dup {
			w.Errorf(k, "%s", w.d.DuplicateKey(at, k.Value, first.Key.Line))
			continue
		}
		seen[k.Value] = Entry{k, v}
		each(k, v, field)
	}
	return seen
}

// Sequence walks the list n found at at, calling each for every item
// (unresolved). A null n is an empty list.
func (w *Walker) Sequence(n *yaml.Node, at string, each func(i int, v *yaml.Node)) {
	n = w.Resolve(n)
	if IsNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		w.Errorf(n, "%s", w.d.NotList(at, n))
		return
	}
	for i, v := range n.Content {
		if w.stopped {
			return
		}
		each(i, v)
	}
}

// Scalar returns the single value at n, reporting a missing value or a
// list or mapping where a value belongs.
func (w *Walker) Scalar(n *yaml.Node, at string) (*yaml.Node, bool) {
	n = w.Resolve(n)
	if IsNull(n) || n.Kind != yaml.ScalarNode {
		w.Errorf(n, "%s", w.d.NotScalar(at, n))
		return nil, false
	}
	return n, true
}

// Expand returns a copy of the tree at n with every alias replaced by a
// copy of what it names (anchors dropped), so that the copy stands on its
// own; the copies keep the lines of the nodes they copy. Each node copied
// is charged to the budget.
func (w *Walker) Expand(n *yaml.Node) *yaml.Node {
	return expand(n, w.Resolve)
}

// Expand is Walker.Expand for a tree already walked: nothing is charged.
func Expand(n *yaml.Node) *yaml.Node {
	return expand(n, func(n *yaml.Node) *yaml.Node {
		if n = Deref(n); n == nil {
			return null()
		}
		return n
	})
}

func expand(n *yaml.Node, resolve func(*yaml.Node) *yaml.Node) *yaml.Node {
	n = resolve(n)
	c := *n
	c.Anchor, c.Alias = "", nil
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = expand(child, resolve)
	}
	return &c
}

// MapEntry returns the key and value nodes of key in the mapping n
// (aliases followed, nothing charged), or nils.
func MapEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = Deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if kn := Deref(n.Content[i]); kn != nil && kn.Kind == yaml.ScalarNode && kn.Value == key {
			return kn, Deref(n.Content[i+1])
		}
	}
	return nil, nil
}
