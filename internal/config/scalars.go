package config

import (
	"encoding/hex"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// scalar returns the single value at n, reporting a missing value or a
// list or mapping where a value belongs.
func (p *parser) scalar(n *yaml.Node, at string) (*yaml.Node, bool) {
	return p.w.Scalar(n, at)
}

// str returns a string value. Numbers and booleans are taken as written
// ("secret: 1234" means the four characters), since a string is wanted.
func (p *parser) str(n *yaml.Node, at string) (string, *yaml.Node, bool) {
	v, ok := p.scalar(n, at)
	if !ok {
		return "", nil, false
	}
	return v.Value, v, true
}

func (p *parser) strTo(dst *string) setter {
	return func(n *yaml.Node, at string) {
		if s, _, ok := p.str(n, at); ok {
			*dst = s
		}
	}
}

// nonEmpty reports a blank value v; it returns whether v is usable.
func (p *parser) nonEmpty(v *yaml.Node, at string) bool {
	if strings.TrimSpace(v.Value) == "" {
		p.errorf(v, "%s: must not be empty", at)
		return false
	}
	return true
}

// nonEmptyTo is strTo for values that must say something.
func (p *parser) nonEmptyTo(dst *string) setter {
	return func(n *yaml.Node, at string) {
		if s, v, ok := p.str(n, at); ok && p.nonEmpty(v, at) {
			*dst = s
		}
	}
}

// boolean accepts only true and false: YAML 1.1's yes/no/on/off are
// strings in YAML 1.2 and a classic source of surprises.
func (p *parser) boolean(n *yaml.Node, at string) (bool, bool) {
	v, ok := p.scalar(n, at)
	if !ok {
		return false, false
	}
	if v.ShortTag() != "!!bool" {
		p.errorf(v, "%s: expected true or false, got %q", at, v.Value)
		return false, false
	}
	return strings.EqualFold(v.Value, "true"), true
}

func (p *parser) boolTo(dst *bool) setter {
	return func(n *yaml.Node, at string) {
		if b, ok := p.boolean(n, at); ok {
			*dst = b
		}
	}
}

// integer reads a whole number in [lo, hi].
func (p *parser) integer(n *yaml.Node, at string, lo, hi int64) (int64, bool) {
	v, ok := p.scalar(n, at)
	if !ok {
		return 0, false
	}
	var i int64
	if v.ShortTag() != "!!int" || v.Decode(&i) != nil {
		p.errorf(v, "%s: expected a whole number, got %q", at, v.Value)
		return 0, false
	}
	if i < lo || i > hi {
		p.errorf(v, "%s: %d is out of range (%d to %d)", at, i, lo, hi)
		return 0, false
	}
	return i, true
}

// intTo stores a whole number in [lo, hi] into any integer field.
func intTo[T ~uint8 | ~uint16 | ~uint32 | ~int](p *parser, dst *T, lo, hi int64) setter {
	return func(n *yaml.Node, at string) {
		if i, ok := p.integer(n, at, lo, hi); ok {
			*dst = T(i)
		}
	}
}

// uint64To reads the full unsigned 64-bit range (site-id).
func (p *parser) uint64To(dst *uint64) setter {
	return func(n *yaml.Node, at string) {
		v, ok := p.scalar(n, at)
		if !ok {
			return
		}
		var u uint64
		if v.ShortTag() != "!!int" || v.Decode(&u) != nil {
			p.errorf(v, "%s: expected a whole number from 0 to %d, got %q", at, uint64(math.MaxUint64), v.Value)
			return
		}
		*dst = u
	}
}

// rateTo reads a positive rate in events per second.
func (p *parser) rateTo(dst *float64) setter {
	return func(n *yaml.Node, at string) {
		v, ok := p.scalar(n, at)
		if !ok {
			return
		}
		var f float64
		tag := v.ShortTag()
		if tag != "!!int" && tag != "!!float" || v.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			p.errorf(v, "%s: expected a number of messages per second, got %q", at, v.Value)
			return
		}
		if f <= 0 {
			p.errorf(v, "%s: must be greater than 0", at)
			return
		}
		*dst = f
	}
}

// duration reads a Go duration ("60s", "3m", "1h30m"), which must not be
// negative.
func (p *parser) duration(n *yaml.Node, at string) (time.Duration, *yaml.Node, bool) {
	v, ok := p.scalar(n, at)
	if !ok {
		return 0, nil, false
	}
	d, err := time.ParseDuration(v.Value)
	if err != nil {
		p.errorf(v, "%s: invalid duration %q (want a number with a unit, e.g. 60s or 3m)", at, v.Value)
		return 0, nil, false
	}
	if d < 0 {
		p.errorf(v, "%s: must not be negative", at)
		return 0, nil, false
	}
	return d, v, true
}

// durationTo stores a duration that may be zero (zero disables something).
func (p *parser) durationTo(dst *time.Duration) setter {
	return func(n *yaml.Node, at string) {
		if d, _, ok := p.duration(n, at); ok {
			*dst = d
		}
	}
}

// positiveDurationTo stores a duration that must be greater than zero: a
// zero timer or period would spin or expire everything at once.
func (p *parser) positiveDurationTo(dst *time.Duration) setter {
	return func(n *yaml.Node, at string) {
		d, v, ok := p.duration(n, at)
		switch {
		case !ok:
		case d == 0:
			p.errorf(v, "%s: must be greater than 0", at)
		default:
			*dst = d
		}
	}
}

// ttlTo stores a TTL sent in Map-Replies, whose TTL field counts minutes:
// anything else would be silently rounded on the wire.
func (p *parser) ttlTo(dst *time.Duration) setter {
	return func(n *yaml.Node, at string) {
		d, v, ok := p.duration(n, at)
		switch {
		case !ok:
		case d%time.Minute != 0:
			p.errorf(v, "%s: must be a whole number of minutes (Map-Reply TTLs are in minutes), got %s", at, v.Value)
		case d/time.Minute > math.MaxUint32-1:
			p.errorf(v, "%s: too long", at)
		default:
			*dst = d
		}
	}
}

// enum reads one of a fixed set of words.
func (p *parser) enum(n *yaml.Node, at string, words ...string) (string, bool) {
	s, v, ok := p.str(n, at)
	if !ok {
		return "", false
	}
	for _, w := range words {
		if s == w {
			return s, true
		}
	}
	p.errorf(v, "%s: unknown value %q (want %s)", at, s, alternatives(words))
	return "", false
}

// alternatives lists words as `a, b or c`.
func alternatives(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// addrRule says which addresses are acceptable where; it returns why an
// address is not, or "".
type addrRule func(netip.Addr) string

// anyAddr accepts wildcard and link-local listen addresses (with a zone).
func anyAddr(netip.Addr) string { return "" }

// unicastAddr is for peers and locators: something packets can be sent to.
func unicastAddr(a netip.Addr) string {
	switch {
	case a.Zone() != "":
		return "must not have a zone"
	case a.IsUnspecified():
		return "must not be the unspecified address"
	case a.IsMulticast():
		return "must not be a multicast address"
	}
	return ""
}

// multicastAddr is for groups.
func multicastAddr(a netip.Addr) string {
	if !a.IsMulticast() {
		return "must be a multicast address"
	}
	return ""
}

// addr reads an IPv4 or IPv6 address. IPv4-mapped IPv6 addresses are
// unmapped, since LISP carries IPv4 as IPv4 (AFI 1).
func (p *parser) addr(n *yaml.Node, at string, rule addrRule) (netip.Addr, bool) {
	s, v, ok := p.str(n, at)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		p.errorf(v, "%s: invalid IP address %q", at, s)
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if why := rule(a); why != "" {
		p.errorf(v, "%s: %s %s", at, s, why)
		return netip.Addr{}, false
	}
	return a, true
}

func (p *parser) addrTo(dst *netip.Addr, rule addrRule) setter {
	return func(n *yaml.Node, at string) {
		if a, ok := p.addr(n, at, rule); ok {
			*dst = a
		}
	}
}

// addrsTo reads a list of distinct addresses.
func (p *parser) addrsTo(dst *[]netip.Addr, rule addrRule) setter {
	return distinctTo(p, dst, func(v *yaml.Node, at string) (netip.Addr, *yaml.Node, bool) {
		a, ok := p.addr(v, at, rule)
		return a, v, ok
	}, func(a netip.Addr) string { return "address " + a.String() })
}

// distinctTo reads a list whose items read reads, refusing an item written
// twice (what names it in the message).
func distinctTo[T comparable](p *parser, dst *[]T, read func(*yaml.Node, string) (T, *yaml.Node, bool), what func(T) string) setter {
	return func(n *yaml.Node, at string) {
		firstLine := map[T]int{}
		var list []T
		p.seq(n, at, func(n *yaml.Node, at string) {
			item, v, ok := read(n, at)
			if !ok {
				return
			}
			if line, dup := firstLine[item]; dup {
				p.errorf(v, "%s: duplicate %s (first at line %d)", at, what(item), line)
				return
			}
			firstLine[item] = v.Line
			list = append(list, item)
		})
		*dst = list
	}
}

// prefix reads an EID or RLOC prefix in CIDR form. The address must be the
// network address: "198.51.100.1/24" is almost always a typo for a host
// route or for 198.51.100.0/24, and registrations are matched exactly.
func (p *parser) prefix(n *yaml.Node, at string) (netip.Prefix, bool) {
	s, v, ok := p.str(n, at)
	if !ok {
		return netip.Prefix{}, false
	}
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		p.errorf(v, "%s: invalid prefix %q (want ADDRESS/LENGTH, e.g. 198.51.100.0/24)", at, s)
	case pfx.Addr().Is4In6():
		p.errorf(v, "%s: %s is an IPv4-mapped IPv6 prefix; write IPv4 prefixes as IPv4", at, s)
	case pfx != pfx.Masked():
		p.errorf(v, "%s: %s has host bits set (did you mean %s?)", at, s, pfx.Masked())
	default:
		return pfx, true
	}
	return netip.Prefix{}, false
}

func (p *parser) prefixTo(dst *netip.Prefix) setter {
	return func(n *yaml.Node, at string) {
		if pfx, ok := p.prefix(n, at); ok {
			*dst = pfx
		}
	}
}

// prefixesTo reads a list of distinct prefixes.
func (p *parser) prefixesTo(dst *[]netip.Prefix) setter {
	return distinctTo(p, dst, func(v *yaml.Node, at string) (netip.Prefix, *yaml.Node, bool) {
		pfx, ok := p.prefix(v, at)
		return pfx, v, ok
	}, func(pfx netip.Prefix) string { return "prefix " + pfx.String() })
}

// instanceIDTo reads a 24-bit instance ID.
func (p *parser) instanceIDTo(dst *uint32) setter {
	return intTo(p, dst, 0, MaxInstanceID)
}

// ifname reads a Linux network interface name.
func (p *parser) ifname(n *yaml.Node, at string) (string, *yaml.Node, bool) {
	s, v, ok := p.str(n, at)
	if !ok {
		return "", nil, false
	}
	if why := checkIfname(s); why != "" {
		p.errorf(v, "%s: invalid interface name %q: %s", at, s, why)
		return "", nil, false
	}
	return s, v, true
}

func (p *parser) ifnameTo(dst *string) setter {
	return func(n *yaml.Node, at string) {
		if s, _, ok := p.ifname(n, at); ok {
			*dst = s
		}
	}
}

// ifnamesTo reads a list of distinct interface names.
func (p *parser) ifnamesTo(dst *[]string) setter {
	return distinctTo(p, dst, p.ifname, func(name string) string { return "interface " + strconv.Quote(name) })
}

// checkIfname applies the kernel's rules (dev_valid_name), so a bad name
// fails here rather than when the daemon starts.
func checkIfname(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > 15:
		return "longer than 15 bytes"
	case s == "." || s == "..":
		return "reserved name"
	case strings.ContainsAny(s, "/: \t\n\r\v\f"):
		return "contains '/', ':' or white space"
	}
	return ""
}

// hostPortTo reads a HOST:PORT listen address such as 127.0.0.1:9342,
// [::1]:9342 or :9342.
func (p *parser) hostPortTo(dst *string) setter {
	return func(n *yaml.Node, at string) {
		s, v, ok := p.str(n, at)
		if !ok {
			return
		}
		_, port, err := net.SplitHostPort(s)
		if err == nil {
			_, err = strconv.ParseUint(port, 10, 16)
		}
		if err != nil {
			p.errorf(v, "%s: invalid address %q (want HOST:PORT, e.g. 127.0.0.1:9342)", at, s)
			return
		}
		*dst = s
	}
}

// hexTo reads exactly len(dst) bytes written as hex digits.
func (p *parser) hexTo(dst []byte, set *bool) setter {
	return func(n *yaml.Node, at string) {
		s, v, ok := p.str(n, at)
		if !ok {
			return
		}
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(dst) {
			p.errorf(v, "%s: expected %d hex digits, got %q", at, 2*len(dst), s)
			return
		}
		copy(dst, b)
		*set = true
	}
}
