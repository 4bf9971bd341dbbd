package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lispd/lispd/internal/yamlstrict"
)

// LoadTopology reads a topology file. The schema is strict: unknown or
// repeated keys are errors. Every problem is reported as Errors whose
// entries print as "FILE:LINE: message".
//
//	name: demo
//	nodes:
//	  - name: ms
//	    role: ms
//	    sysctls: {net.ipv4.ip_forward: 1}
//	    routes: [{dst: default, via: 192.0.2.1, dev: eth0, metric: 10}]
//	    loopbacks: [198.18.0.1/32]
//	    aliases: {ms6: "2001:db8::1"}   # more host names for its addresses
//	    lispd: {...}          # any mapping, kept as Node.LispdConfig
//	    etcd: {address: 198.18.0.1, client-port: 2379, peer-port: 2380}  # a member of the lab's etcd cluster; {} for the defaults
//	  - name: sw
//	    vxlans: [{name: vx0, vni: 42, local: 192.0.2.1, remote: 192.0.2.2, dev: dci, port: 4789}]
//	    bridges:
//	      - {name: br0, ports: [p1, p2, vx0], no-learning: [vx0],
//	         fdb: [{mac: "00:00:5e:00:01:01", port: p1}]}
//	links:
//	  - {a: ms, b: r1, a-name: eth0, b-name: eth1,
//	     a-addrs: [192.0.2.2/24], b-addrs: [192.0.2.1/24], mtu: 1500, down: false,
//	     a-mac: "02:00:00:00:00:01"}
func LoadTopology(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, Errors{{File: path, Msg: msg}}
	}
	return ParseTopology(data, path)
}

// ParseTopology parses a topology held in memory; file names it in errors.
func ParseTopology(data []byte, file string) (*Topology, error) {
	p := &tparser{file: file, lines: map[string]int{}}
	p.w = yamlstrict.New(&topologyDialect, 10000+10*len(data), p.report)
	t := &Topology{}
	root, probs := yamlstrict.Decode(data)
	for _, pr := range probs {
		p.errs = append(p.errs, Error{File: file, Line: pr.Line, Msg: pr.Msg})
	}
	if root != nil {
		p.topology(root, t)
	} else if len(p.errs) == 0 {
		p.errs = append(p.errs, Error{File: file, Msg: "the topology is empty"})
	}
	if len(p.errs) == 0 {
		if err := t.Validate(); err != nil {
			for _, e := range err.(Errors) {
				e.File, e.Line = file, p.lineOf(e.Path)
				p.errs = append(p.errs, e)
			}
		}
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b Error) int { return a.Line - b.Line })
		return nil, p.errs
	}
	return t, nil
}

// topologyDialect words the problems of a topology file's shape.
var topologyDialect = yamlstrict.Dialect{
	TooComplex:   "the document expands to too many values (aliases?)",
	NotMapping:   func(what string, _ *yaml.Node) string { return what + " must be a mapping" },
	NotList:      func(what string, _ *yaml.Node) string { return what + " must be a list" },
	NotScalar:    func(what string, _ *yaml.Node) string { return what + " must be a single value" },
	KeyNotScalar: func(what string, _ *yaml.Node) string { return what + ": keys must be plain words" },
	UnknownKey: func(what, key string, known []string) string {
		return fmt.Sprintf("%s: unknown key %q (known: %s)", what, key, strings.Join(known, ", "))
	},
	DuplicateKey: func(what, key string, first int) string {
		return fmt.Sprintf("%s: key %q repeated (first at line %d)", what, key, first)
	},
	DuplicatesFirst: true,
}

// tparser walks the YAML node tree, remembering the line of every path so
// that Validate's problems can be placed.
type tparser struct {
	file  string
	w     *yamlstrict.Walker
	errs  Errors
	lines map[string]int
}

func (p *tparser) report(n *yaml.Node, msg string) {
	e := Error{File: p.file, Msg: msg}
	if n != nil {
		e.Line = n.Line
	}
	p.errs = append(p.errs, e)
}

func (p *tparser) errorf(n *yaml.Node, format string, args ...any) {
	p.w.Errorf(n, format, args...)
}

// lineOf finds the line of path, or of its nearest recorded ancestor.
func (p *tparser) lineOf(path string) int {
	for path != "" {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// mapping walks a mapping node, calling fields[key] for each key and
// reporting unknown and repeated keys. what names the mapping in errors.
func (p *tparser) mapping(n *yaml.Node, path, what string, fields map[string]func(v *yaml.Node, path string)) {
	yamlstrict.Mapping(p.w, n, what, fields, func(k, v *yaml.Node, set func(*yaml.Node, string)) {
		kp := k.Value
		if path != "" {
			kp = path + "." + k.Value
		}
		p.lines[kp] = k.Line
		set(v, kp)
	})
}

// sequence calls each for every item of a sequence node.
func (p *tparser) sequence(n *yaml.Node, path, what string, each func(i int, v *yaml.Node, path string)) {
	p.w.Sequence(n, what, func(i int, item *yaml.Node) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		p.lines[ip] = item.Line
		each(i, item, ip)
	})
}

func isNull(n *yaml.Node) bool { return yamlstrict.IsNull(n) }

// scalar returns the text of a scalar node, reporting anything else.
func (p *tparser) scalar(n *yaml.Node, what string) (string, bool) {
	v, ok := p.w.Scalar(n, what)
	if !ok {
		return "", false
	}
	return v.Value, true
}

// value reads a scalar that parse turns into *dst; wrong says what a
// value parse refuses is not.
func value[T any](p *tparser, dst *T, what, wrong string, parse func(string) (T, bool)) func(*yaml.Node, string) {
	return func(n *yaml.Node, _ string) {
		s, ok := p.scalar(n, what)
		if !ok {
			return
		}
		v, ok := parse(s)
		if !ok {
			p.errorf(n, "%s: %q %s", what, s, wrong)
			return
		}
		*dst = v
	}
}

func (p *tparser) integer(dst *int, what string) func(*yaml.Node, string) {
	return value(p, dst, what, "is not a whole number", func(s string) (int, bool) {
		v, err := strconv.Atoi(s)
		return v, err == nil
	})
}

func (p *tparser) boolean(dst *bool, what string) func(*yaml.Node, string) {
	return value(p, dst, what, "is not true or false", func(s string) (bool, bool) {
		return s == "true", s == "true" || s == "false"
	})
}

func (p *tparser) addr(dst *netip.Addr, what string) func(*yaml.Node, string) {
	return value(p, dst, what, "is not an IP address", func(s string) (netip.Addr, bool) {
		a, err := netip.ParseAddr(s)
		return a, err == nil
	})
}

func (p *tparser) mac(dst *net.HardwareAddr, what string) func(*yaml.Node, string) {
	return value(p, dst, what, "is not a MAC address like 02:00:5e:00:53:01", func(s string) (net.HardwareAddr, bool) {
		m, err := net.ParseMAC(s)
		return m, err == nil && len(m) == 6
	})
}

func (p *tparser) str(dst *string, what string) func(*yaml.Node, string) {
	return func(n *yaml.Node, _ string) {
		if s, ok := p.scalar(n, what); ok {
			*dst = s
		}
	}
}

// prefixes reads a list of address prefixes. hostDefault lets a bare
// address stand for a host prefix (/32, /128).
func (p *tparser) prefixes(dst *[]netip.Prefix, what string, hostDefault bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		p.sequence(n, path, what, func(_ int, v *yaml.Node, _ string) {
			s, ok := p.scalar(v, what)
			if !ok {
				return
			}
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				switch {
				case aerr == nil && hostDefault:
					pfx = netip.PrefixFrom(a, a.BitLen())
				case aerr == nil:
					p.errorf(v, "%s: %s needs a prefix length, e.g. %s/%d", what, s, s, map[bool]int{true: 24, false: 64}[a.Is4()])
					return
				default:
					p.errorf(v, "%s: %q is not an address with prefix length", what, s)
					return
				}
			}
			*dst = append(*dst, pfx)
		})
	}
}

func (p *tparser) topology(root *yaml.Node, t *Topology) {
	p.mapping(root, "", "topology", map[string]func(*yaml.Node, string){
		"name":  p.str(&t.Name, "name"),
		"nodes": list(p, &t.Nodes, "nodes", p.node),
		"links": list(p, &t.Links, "links", p.link),
	})
}

// list reads a list of mappings, each into a new element of *dst.
func list[T any](p *tparser, dst *[]T, what string, read func(n *yaml.Node, path string, item *T)) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		p.sequence(n, path, what, func(_ int, v *yaml.Node, ip string) {
			*dst = append(*dst, *new(T))
			read(v, ip, &(*dst)[len(*dst)-1])
		})
	}
}

func (p *tparser) node(n *yaml.Node, path string, nd *Node) {
	p.mapping(n, path, "node", map[string]func(*yaml.Node, string){
		"name":      p.str(&nd.Name, "node name"),
		"role":      p.str(&nd.Role, "role"),
		"sysctls":   p.sysctls(nd),
		"routes":    list(p, &nd.Routes, "routes", p.route),
		"loopbacks": p.prefixes(&nd.Loopbacks, "loopbacks", true),
		"aliases":   p.aliases(nd),
		"vxlans":    list(p, &nd.VXLANs, "vxlans", p.vxlan),
		"bridges":   list(p, &nd.Bridges, "bridges", p.bridge),
		"nat": func(v *yaml.Node, path string) {
			if v = p.w.Resolve(v); isNull(v) {
				return
			}
			nd.NAT = &NAT{}
			p.mapping(v, path, "nat", map[string]func(*yaml.Node, string){
				"outside":     p.str(&nd.NAT.Outside, "nat outside"),
				"symmetric":   p.boolean(&nd.NAT.Symmetric, "nat symmetric"),
				"udp-timeout": p.integer(&nd.NAT.UDPTimeout, "nat udp-timeout"),
			})
		},
		"etcd": func(v *yaml.Node, path string) {
			v = p.w.Resolve(v)
			nd.Etcd = &Etcd{}
			if isNull(v) {
				return // etcd: {} or etcd: with every default
			}
			p.mapping(v, path, "etcd", map[string]func(*yaml.Node, string){
				"address":     p.addr(&nd.Etcd.Address, "etcd address"),
				"client-port": p.integer(&nd.Etcd.ClientPort, "etcd client-port"),
				"peer-port":   p.integer(&nd.Etcd.PeerPort, "etcd peer-port"),
			})
		},
		"lispd": func(v *yaml.Node, _ string) {
			v = p.w.Resolve(v)
			if isNull(v) {
				return
			}
			if v.Kind != yaml.MappingNode {
				p.errorf(v, "lispd must be a mapping (the node's lispd configuration)")
				return
			}
			tree := p.w.Expand(v)
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(tree); err != nil {
				p.errorf(v, "lispd: %v", err)
				return
			}
			_ = enc.Close()
			nd.LispdConfig, nd.LispdLine, nd.LispdYAML = buf.Bytes(), v.Line, tree
		},
	})
}

// freeMapping walks a mapping whose keys are the user's (sysctl names,
// host names): each key once, its line recorded under path.key, and its
// value resolved. The messages: shape when n is no mapping, keyWhat for a
// key that is no scalar, dupPrefix before a repeated key.
func (p *tparser) freeMapping(n *yaml.Node, path, shape, keyWhat, dupPrefix string, entry func(key string, v *yaml.Node)) bool {
	n = p.w.Resolve(n)
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s", shape)
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := p.w.Resolve(n.Content[i])
		key, ok := p.scalar(k, keyWhat)
		if !ok {
			continue
		}
		if line, dup := seen[key]; dup {
			p.errorf(k, "%s%q repeated (first at line %d)", dupPrefix, key, line)
			continue
		}
		seen[key] = k.Line
		p.lines[path+"."+key] = k.Line
		entry(key, p.w.Resolve(n.Content[i+1]))
	}
	return true
}

func (p *tparser) sysctls(nd *Node) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		sysctls := map[string]string{}
		if p.freeMapping(n, path, "sysctls must be a mapping of key: value", "sysctl key", "sysctls: key ", func(key string, v *yaml.Node) {
			if val, ok := p.scalar(v, "sysctl "+key); ok {
				sysctls[key] = val
			}
		}) {
			nd.Sysctls = sysctls
		}
	}
}

// aliases reads a mapping of host name -> address.
func (p *tparser) aliases(nd *Node) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		aliases := map[string]netip.Addr{}
		if p.freeMapping(n, path, "aliases must be a mapping of host name: address", "alias", "aliases: ", func(name string, v *yaml.Node) {
			s, ok := p.scalar(v, "alias "+name)
			if !ok {
				return
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				p.errorf(v, "alias %s: %q is not an IP address", name, s)
				return
			}
			aliases[name] = a
		}) {
			nd.Aliases = aliases
		}
	}
}

func (p *tparser) route(n *yaml.Node, path string, r *Route) {
	var dst, via string
	var dstNode, viaNode *yaml.Node
	p.mapping(n, path, "route", map[string]func(*yaml.Node, string){
		"dst": func(v *yaml.Node, _ string) {
			dstNode = p.w.Resolve(v)
			dst, _ = p.scalar(v, "dst")
		},
		"via": func(v *yaml.Node, _ string) {
			viaNode = p.w.Resolve(v)
			via, _ = p.scalar(v, "via")
		},
		"dev":    p.str(&r.Dev, "dev"),
		"metric": p.integer(&r.Metric, "metric"),
	})
	if via != "" {
		a, err := netip.ParseAddr(via)
		if err != nil {
			p.errorf(viaNode, "via: %q is not an IP address", via)
			return
		}
		r.Via = a
	}
	switch {
	case dstNode == nil:
		p.errorf(n, "route: dst is missing")
	case dst == "":
	case dst == "default":
		switch {
		case r.Via.Is4():
			r.Dst = netip.MustParsePrefix("0.0.0.0/0")
		case r.Via.Is6():
			r.Dst = netip.MustParsePrefix("::/0")
		default:
			p.errorf(dstNode, "dst: default needs via to tell the address family; write 0.0.0.0/0 or ::/0")
		}
	default:
		pfx, err := netip.ParsePrefix(dst)
		if err != nil {
			p.errorf(dstNode, "dst: %q is not a prefix like 198.51.100.0/24 (or default)", dst)
			return
		}
		r.Dst = pfx
	}
}

func (p *tparser) link(n *yaml.Node, path string, l *Link) {
	p.mapping(n, path, "link", map[string]func(*yaml.Node, string){
		"a":       p.str(&l.A, "a"),
		"b":       p.str(&l.B, "b"),
		"a-name":  p.str(&l.AName, "a-name"),
		"b-name":  p.str(&l.BName, "b-name"),
		"a-addrs": p.prefixes(&l.AAddrs, "a-addrs", false),
		"b-addrs": p.prefixes(&l.BAddrs, "b-addrs", false),
		"mtu":     p.integer(&l.MTU, "mtu"),
		"down":    p.boolean(&l.Down, "down"),
		"a-mac":   p.mac(&l.AMAC, "a-mac"),
		"b-mac":   p.mac(&l.BMAC, "b-mac"),
	})
}

func (p *tparser) vxlan(n *yaml.Node, path string, x *VXLAN) {
	vni := -1
	p.mapping(n, path, "vxlan", map[string]func(*yaml.Node, string){
		"name":   p.str(&x.Name, "vxlan name"),
		"vni":    p.integer(&vni, "vni"),
		"local":  p.addr(&x.Local, "local"),
		"remote": p.addr(&x.Remote, "remote"),
		"dev":    p.str(&x.Dev, "dev"),
		"port":   p.integer(&x.Port, "port"),
	})
	switch {
	case vni == -1:
		p.errorf(n, "vxlan: vni is missing")
	case vni < 0 || vni > 1<<24-1:
		p.errorf(n, "vxlan: vni %d is outside 0..16777215", vni)
	default:
		x.VNI = uint32(vni)
	}
}

func (p *tparser) bridge(n *yaml.Node, path string, b *Bridge) {
	p.mapping(n, path, "bridge", map[string]func(*yaml.Node, string){
		"name":        p.str(&b.Name, "bridge name"),
		"ports":       p.strs(&b.Ports, "ports"),
		"no-learning": p.strs(&b.NoLearning, "no-learning"),
		"fdb": list(p, &b.FDB, "fdb", func(n *yaml.Node, path string, e *FDBEntry) {
			p.mapping(n, path, "fdb entry", map[string]func(*yaml.Node, string){
				"mac":  p.mac(&e.MAC, "mac"),
				"port": p.str(&e.Port, "port"),
			})
		}),
	})
}

// strs reads a list of words (interface names).
func (p *tparser) strs(dst *[]string, what string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		p.sequence(n, path, what, func(_ int, v *yaml.Node, _ string) {
			if s, ok := p.scalar(v, what); ok {
				*dst = append(*dst, s)
			}
		})
	}
}
