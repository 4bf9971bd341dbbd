// Package oor runs Open Overlay Router — an independent LISP implementation
// in C, packaged by Debian as openoverlayrouter — as a peer in labs, so
// lispd is tested against code it shares nothing with. It writes OOR's
// libconfuse configuration from a Config and starts the daemon in a lab
// node with a /tmp of its own (OOR's API socket has a fixed path there,
// so two OORs on one machine would collide).
//
// What OOR does differently from lispd and the RFCs is written down in
// docs/interop.md.
package oor

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
)

// Binary is where the Debian package installs OOR.
const Binary = "/usr/sbin/oor"

// Find returns the path of the oor binary, or an error that says how to
// install it.
func Find() (string, error) {
	if p, err := exec.LookPath("oor"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(Binary); err == nil {
		return Binary, nil
	}
	return "", fmt.Errorf("open overlay router not installed (apt-get install openoverlayrouter)")
}

// Mode is OOR's operating-mode.
type Mode string

// The modes the tests use.
const (
	ModeXTR Mode = "xTR" // ITR and ETR of its database
	ModeMS  Mode = "MS"  // Map-Server and Map-Resolver
)

// KeyType is OOR's key-type: it writes it into the 16-bit field RFC 6833
// called Key ID, so RFC 9301 reads key-type 1 as key-id 0 with algorithm 1
// (HMAC-SHA-1-96). OOR 1.3 accepts no other.
type KeyType int

// KeySHA1 is the only key-type OOR 1.3 accepts.
const KeySHA1 KeyType = 1

// Config is an OOR configuration: the keys of its configuration file that
// lab tests need.
type Config struct {
	Mode  Mode
	Debug int // 0..3; 3 logs every message

	MapResolvers []netip.Addr
	MapServers   []MapServer
	ProxyETRs    []Locator
	Database     []Mapping
	Probing      Probing // zero: OOR's default (no probing)
	// NATTraversal turns on OOR's NAT traversal (nat_traversal_support):
	// Info-Requests to its Map-Servers, registration through the RTR.
	NATTraversal bool

	// Map-Server mode.
	ControlIface string
	Sites        []Site
}

// MapServer is an xTR's map-server section.
type MapServer struct {
	Address    netip.Addr
	KeyType    KeyType
	Key        string
	ProxyReply bool
}

// Locator is an RLOC: a fixed Address, or the address of Iface (OOR then
// follows that interface's address changes) of IP version 4 or 6.
type Locator struct {
	Address          netip.Addr
	Iface            string
	IPVersion        int
	Priority, Weight int
}

// Mapping is a database-mapping.
type Mapping struct {
	EIDPrefix netip.Prefix
	IID       uint32
	TTL       int // minutes; 0: OOR's default
	Locators  []Locator
}

// Probing is the rloc-probing section, in seconds.
type Probing struct {
	Interval, Retries, RetriesInterval int
}

// Site is a Map-Server's lisp-site.
type Site struct {
	EIDPrefix           netip.Prefix
	IID                 uint32
	KeyType             KeyType
	Key                 string
	AcceptMoreSpecifics bool
}

// Render writes the configuration file.
func (c *Config) Render() []byte {
	var b bytes.Buffer
	kv := func(indent, k string, v any) { fmt.Fprintf(&b, "%s%s = %v\n", indent, k, v) }
	onOff := func(v bool) string {
		if v {
			return "on"
		}
		return "off"
	}
	kv("", "debug", c.Debug)
	kv("", "operating-mode", c.Mode)
	kv("", "encapsulation", "LISP")
	kv("", "nat_traversal_support", onOff(c.NATTraversal))
	if c.ControlIface != "" {
		kv("", "control-iface", c.ControlIface)
	}
	if c.Probing != (Probing{}) {
		b.WriteString("rloc-probing {\n")
		kv("    ", "rloc-probe-interval", c.Probing.Interval)
		kv("    ", "rloc-probe-retries", c.Probing.Retries)
		kv("    ", "rloc-probe-retries-interval", c.Probing.RetriesInterval)
		b.WriteString("}\n")
	}
	if len(c.MapResolvers) > 0 {
		addrs := make([]string, len(c.MapResolvers))
		for i, a := range c.MapResolvers {
			addrs[i] = a.String()
		}
		fmt.Fprintf(&b, "map-resolver = { %s }\n", strings.Join(addrs, ", "))
	}
	for _, m := range c.MapServers {
		b.WriteString("map-server {\n")
		kv("    ", "address", m.Address)
		kv("    ", "key-type", int(m.KeyType))
		kv("    ", "key", m.Key)
		kv("    ", "proxy-reply", onOff(m.ProxyReply))
		b.WriteString("}\n")
	}
	// OOR 1.3 reads proxy-etr-ipv4 and -ipv6, by the family of the EIDs
	// whose traffic goes there (its example file's proxy-etr is refused).
	for _, p := range c.ProxyETRs {
		b.WriteString("proxy-etr-ipv4 {\n")
		kv("    ", "address", p.Address)
		kv("    ", "priority", p.Priority)
		kv("    ", "weight", p.Weight)
		b.WriteString("}\n")
		b.WriteString("proxy-etr-ipv6 {\n")
		kv("    ", "address", p.Address)
		kv("    ", "priority", p.Priority)
		kv("    ", "weight", p.Weight)
		b.WriteString("}\n")
	}
	for _, m := range c.Database {
		b.WriteString("database-mapping {\n")
		kv("    ", "eid-prefix", m.EIDPrefix)
		kv("    ", "iid", m.IID)
		if m.TTL > 0 {
			kv("    ", "ttl", m.TTL)
		}
		for _, l := range m.Locators {
			if l.Iface != "" {
				b.WriteString("    rloc-iface {\n")
				kv("        ", "interface", l.Iface)
				kv("        ", "ip_version", l.IPVersion)
			} else {
				b.WriteString("    rloc-address {\n")
				kv("        ", "address", l.Address)
			}
			kv("        ", "priority", l.Priority)
			kv("        ", "weight", l.Weight)
			b.WriteString("    }\n")
		}
		b.WriteString("}\n")
	}
	for _, s := range c.Sites {
		b.WriteString("lisp-site {\n")
		kv("    ", "eid-prefix", s.EIDPrefix)
		kv("    ", "key-type", int(s.KeyType))
		kv("    ", "key", s.Key)
		kv("    ", "iid", s.IID)
		kv("    ", "accept-more-specifics", onOff(s.AcceptMoreSpecifics))
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// Proc is an OOR running in a lab node; its log (debug output included)
// is the lab process log.
type Proc struct {
	*lab.Proc
	Config string // the configuration file
}

// Start writes c into the lab's directory and runs OOR as process name in
// node, with a /tmp of its own. The node needs a default route on its RLOC
// interface, or OOR refuses to use that interface.
func Start(l *lab.Lab, node, name string, c Config) (*Proc, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(l.Dir(), node+"-"+name+".conf")
	if err := os.WriteFile(conf, c.Render(), 0o600); err != nil {
		return nil, err
	}
	// The node's mount namespace is private to this process (lab.Exec
	// unshares it): the tmpfs on /tmp is OOR's alone and goes with it.
	script := `mount -t tmpfs oor-tmp /tmp && exec "$0" -f "$1"`
	p, err := l.Start(node, name, []string{"sh", "-c", script, bin, conf}, nil)
	if err != nil {
		return nil, err
	}
	return &Proc{Proc: p, Config: conf}, nil
}

// Log returns OOR's output so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// WaitLog waits until OOR's output contains s, or returns an error with
// the log's tail when the time is up or OOR exited.
func (p *Proc) WaitLog(ctx context.Context, timeout time.Duration, s string) error {
	found := false
	err := poll.Until(ctx, timeout, 50*time.Millisecond, func() bool {
		found = strings.Contains(p.Log(), s)
		return found || p.Exited()
	})
	if found {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("oor exited")
	}
	return fmt.Errorf("oor on %s: waiting for %q: %w\n%s", p.Node, s, err, tail(p.Log(), 30))
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
