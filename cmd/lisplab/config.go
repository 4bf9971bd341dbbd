package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/lab"
)

// topology is a topology file read and checked, with the lispd
// configuration of each of its LISP nodes.
type topology struct {
	file    string // as given on the command line
	topo    *lab.Topology
	configs []nodeConfig // in node order
}

// nodeConfig is the lispd configuration lisplab writes for one node: the
// node's lispd section with admin.socket added.
type nodeConfig struct {
	node   string
	socket string // /run/lisplab/NAME/NODE.sock
	path   string // /run/lisplab/NAME/NODE.yaml
	data   []byte
	cfg    *config.Config
}

// problems is a list of "FILE:LINE: message" lines; it prints one a line.
type problems []string

func (p problems) Error() string { return strings.Join(p, "\n") }

// loadTopology reads file, applies the name override (when not empty) and
// builds and validates every lispd configuration, without touching the
// machine. Problems are reported as problems (or lab.Errors), each
// naming a line of file.
func loadTopology(file, name string) (*topology, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, problems{fmt.Sprintf("%s: %v", file, pathReason(err))}
	}
	topo, err := lab.ParseTopology(src, file)
	if err != nil {
		return nil, err
	}
	if name != "" {
		topo.Name = name
		if err := topo.Validate(); err != nil {
			return nil, usageError("--name %s: %v", name, err)
		}
	}
	t := &topology{file: file, topo: topo}
	origins := snippetOrigins(src, topo)
	dir := filepath.Join(lab.RunRoot, topo.Name)
	var probs problems
	for i, n := range topo.Nodes {
		if n.LispdConfig == nil {
			continue
		}
		nc := nodeConfig{
			node:   n.Name,
			socket: filepath.Join(dir, n.Name+".sock"),
			path:   filepath.Join(dir, n.Name+".yaml"),
		}
		p := probs
		nc.data, nc.cfg, probs = buildConfig(file, n, origins[i], nc, topo.Name, probs)
		if len(probs) == len(p) {
			t.configs = append(t.configs, nc)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return t, nil
}

func pathReason(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// snippetOrigins finds, for each node of topo, its lispd mapping in the
// topology file's own node tree, whose nodes carry their lines in the
// file. A node whose snippet cannot be found there (nil) falls back to
// Node.LispdConfig, placed at Node.LispdLine.
func snippetOrigins(src []byte, topo *lab.Topology) []*yaml.Node {
	out := make([]*yaml.Node, len(topo.Nodes))
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 {
		return out
	}
	nodes := mapValue(doc.Content[0], "nodes")
	if nodes == nil || nodes.Kind != yaml.SequenceNode || len(nodes.Content) != len(topo.Nodes) {
		return out
	}
	for i, item := range nodes.Content {
		if v := mapValue(item, "lispd"); v != nil && v.Kind == yaml.MappingNode {
			out[i] = v
		}
	}
	return out
}

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapValue returns the value of key in mapping n (aliases followed), or
// nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	_, v := mapEntry(n, key)
	return v
}

func mapEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if kn := deref(n.Content[i]); kn.Kind == yaml.ScalarNode && kn.Value == key {
			return kn, deref(n.Content[i+1])
		}
	}
	return nil, nil
}

// copyTree copies a node tree with aliases expanded (the copy keeps the
// lines of what the aliases named), comments dropped and collections in
// block style, so that every key of the written file is on a line of its
// own and maps back to exactly one line of the topology file.
func copyTree(n *yaml.Node) *yaml.Node {
	n = deref(n)
	c := *n
	c.Anchor, c.Alias = "", nil
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	if c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode {
		c.Style &^= yaml.FlowStyle
	}
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = copyTree(child)
	}
	return &c
}

// shiftLines adds delta to the line of every node of a tree.
func shiftLines(n *yaml.Node, delta int) {
	n.Line += delta
	for _, c := range n.Content {
		shiftLines(c, delta)
	}
}

func scalar(value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
}

// buildConfig makes node n's lispd configuration from its lispd mapping
// origin (nil: from n.LispdConfig) and validates it with the config
// package, appending problems to probs as FILE:LINE lines of the topology
// file.
func buildConfig(file string, n lab.Node, origin *yaml.Node, nc nodeConfig, labName string, probs problems) ([]byte, *config.Config, problems) {
	at := func(line int, format string, a ...any) {
		if line <= 0 {
			line = n.LispdLine
		}
		where := file
		if line > 0 {
			where = fmt.Sprintf("%s:%d", file, line)
		}
		probs = append(probs, fmt.Sprintf("%s: node %s: lispd: %s", where, n.Name, fmt.Sprintf(format, a...)))
	}
	var root *yaml.Node
	if origin != nil {
		root = copyTree(origin)
	} else {
		var doc yaml.Node
		if err := yaml.Unmarshal(n.LispdConfig, &doc); err != nil || len(doc.Content) == 0 {
			at(0, "cannot read the section: %v", err)
			return nil, nil, probs
		}
		root = copyTree(doc.Content[0])
		if n.LispdLine > 0 {
			shiftLines(root, n.LispdLine-1)
		}
	}

	// admin.socket is where lisplab and lispctl find the daemon: ours.
	// Inserted nodes have line 0, which maps to the start of the section.
	adminKey, admin := mapEntry(root, "admin")
	switch {
	case admin == nil:
		root.Content = append(root.Content, scalar("admin"),
			&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{scalar("socket"), scalar(nc.socket)}})
	case admin.Kind == yaml.ScalarNode && admin.Tag == "!!null":
		*admin = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: adminKey.Line,
			Content: []*yaml.Node{scalar("socket"), scalar(nc.socket)}}
	case admin.Kind == yaml.MappingNode:
		if k, _ := mapEntry(admin, "socket"); k != nil {
			at(k.Line, "admin.socket is set by lisplab (%s, where lispctl --socket and lisplab status look); leave it out", nc.socket)
			return nil, nil, probs
		}
		admin.Content = append(admin.Content, scalar("socket"), scalar(nc.socket))
	}
	// Secret files are named relative to the topology file, but lispd
	// reads the config from /run/lisplab/NAME/.
	absolutizeSecretFiles(root, filepath.Dir(file))

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# lispd configuration of node %s of lab %s, written by lisplab up\n", n.Name, labName)
	fmt.Fprintf(&buf, "# from the lispd section of %s (line %d), with admin.socket added.\n", absPath(file), n.LispdLine)
	fmt.Fprintf(&buf, "# Edit the topology file, not this one: lisplab up writes it again.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		at(0, "cannot write the configuration: %v", err)
		return nil, nil, probs
	}
	if err := enc.Close(); err != nil {
		at(0, "cannot write the configuration: %v", err)
		return nil, nil, probs
	}
	data := buf.Bytes()

	cfg, err := config.Parse(data, nc.path)
	if err != nil {
		lines := lineMap(data, root)
		var ces config.Errors
		if !errors.As(err, &ces) {
			at(0, "%v", err)
			return nil, nil, probs
		}
		for _, e := range ces {
			at(lines.origin(e.Line), "%s", e.Msg)
		}
		return nil, nil, probs
	}
	return data, cfg, probs
}

func absPath(file string) string {
	if a, err := filepath.Abs(file); err == nil {
		return a
	}
	return file
}

// absolutizeSecretFiles rewrites relative secret-file paths to be
// relative to dir.
func absolutizeSecretFiles(n *yaml.Node, dir string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "secret-file" && v.Kind == yaml.ScalarNode &&
				v.Value != "" && !filepath.IsAbs(v.Value) {
				v.Value = filepath.Join(absPath(dir), v.Value)
				v.Style = 0
			}
		}
	}
	for _, c := range n.Content {
		absolutizeSecretFiles(c, dir)
	}
}

// lineIndex maps lines of the written configuration to lines of the
// topology file.
type lineIndex map[int]int

// lineMap parses the written configuration data and walks it beside
// root, the tree it was written from, whose nodes carry topology lines.
func lineMap(data []byte, root *yaml.Node) lineIndex {
	m := lineIndex{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return m
	}
	// The first scalar on a line names it: a collection starts on the
	// line of its first key, but its own line in the topology may be that
	// of an anchor or a flow bracket. Collections fill in lines that hold
	// no scalar.
	scalarSet := map[int]bool{}
	var walk func(g, o *yaml.Node)
	walk = func(g, o *yaml.Node) {
		_, seen := m[g.Line]
		switch {
		case g.Kind == yaml.ScalarNode && !scalarSet[g.Line]:
			m[g.Line], scalarSet[g.Line] = o.Line, true
		case !seen:
			m[g.Line] = o.Line
		}
		if len(g.Content) != len(o.Content) {
			return
		}
		for i := range g.Content {
			walk(g.Content[i], o.Content[i])
		}
	}
	walk(doc.Content[0], root)
	return m
}

// origin is the topology line of line of the written configuration: that
// of the nearest line at or above it that holds a node; 0 when unknown.
func (m lineIndex) origin(line int) int {
	for l := line; l > 0; l-- {
		if o, ok := m[l]; ok {
			return o
		}
	}
	return 0
}
