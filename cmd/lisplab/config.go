package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/yamlstrict"
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
			return nil, cli.Usagef("--name %s: %v", name, err)
		}
	}
	t := &topology{file: file, topo: topo}
	dir := filepath.Join(lab.RunRoot, topo.Name)
	var probs problems
	for _, n := range topo.Nodes {
		if n.LispdConfig == nil {
			continue
		}
		nc := nodeConfig{
			node:   n.Name,
			socket: filepath.Join(dir, n.Name+".sock"),
			path:   filepath.Join(dir, n.Name+".yaml"),
		}
		p := probs
		nc.data, nc.cfg, probs = buildConfig(file, n, nc, topo.Name, probs)
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

// blockStyle strips comments and flow style from a tree, so that the
// written configuration has every key on a line of its own.
func blockStyle(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style &^= yaml.FlowStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func scalar(value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
}

// buildConfig makes node n's lispd configuration from its lispd mapping
// and validates it with the config package, appending problems to probs
// as FILE:LINE lines of the topology file: the mapping's nodes carry
// their lines there.
func buildConfig(file string, n lab.Node, nc nodeConfig, labName string, probs problems) ([]byte, *config.Config, problems) {
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
	if n.LispdYAML == nil {
		at(0, "the section was not read from the topology file")
		return nil, nil, probs
	}
	root := yamlstrict.Expand(n.LispdYAML) // ours to change
	blockStyle(root)

	// admin.socket is where lisplab and lispctl find the daemon: ours.
	// Inserted nodes have line 0, which maps to the start of the section.
	adminKey, admin := yamlstrict.MapEntry(root, "admin")
	switch {
	case admin == nil:
		root.Content = append(root.Content, scalar("admin"),
			&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{scalar("socket"), scalar(nc.socket)}})
	case admin.Kind == yaml.ScalarNode && admin.Tag == "!!null":
		*admin = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: adminKey.Line,
			Content: []*yaml.Node{scalar("socket"), scalar(nc.socket)}}
	case admin.Kind == yaml.MappingNode:
		if k, _ := yamlstrict.MapEntry(admin, "socket"); k != nil {
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
	cfg, err := config.ParseNode(root, nc.path)
	if err != nil {
		var ces config.Errors
		if !errors.As(err, &ces) {
			at(0, "%v", err)
			return nil, nil, probs
		}
		for _, e := range ces {
			at(e.Line, "%s", e.Msg)
		}
		return nil, nil, probs
	}
	// lispd reads the file written from the tree: it must say the same.
	if _, err := config.Parse(buf.Bytes(), nc.path); err != nil {
		at(0, "the configuration written does not read back: %v", err)
		return nil, nil, probs
	}
	return buf.Bytes(), cfg, probs
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
