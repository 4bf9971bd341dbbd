package mapping

import (
	"iter"
	"net/netip"

	"github.com/gaissmai/bart"
)

// Table is a longest-prefix-match table keyed by EID: one bart table per
// instance ID, holding IPv4 and IPv6 prefixes. It is not safe for
// concurrent mutation; callers serialize writes.
type Table[V any] struct {
	byIID map[uint32]*bart.Table[V]
	size  int
}

// NewTable returns an empty table.
func NewTable[V any]() *Table[V] { return &Table[V]{byIID: map[uint32]*bart.Table[V]{}} }

func (t *Table[V]) iid(iid uint32, create bool) *bart.Table[V] {
	b := t.byIID[iid]
	if b == nil && create {
		b = new(bart.Table[V])
		t.byIID[iid] = b
	}
	return b
}

// Len is the number of prefixes in all instance IDs.
func (t *Table[V]) Len() int { return t.size }

// Insert sets the value of e, replacing any previous one.
func (t *Table[V]) Insert(e EID, v V) {
	b := t.iid(e.IID, true)
	if _, ok := b.Get(e.Prefix); !ok {
		t.size++
	}
	b.Insert(e.Prefix, v)
}

// Delete removes e if present.
func (t *Table[V]) Delete(e EID) {
	b := t.iid(e.IID, false)
	if b == nil {
		return
	}
	if _, ok := b.Get(e.Prefix); ok {
		b.Delete(e.Prefix)
		t.size--
		if b.Size() == 0 {
			delete(t.byIID, e.IID)
		}
	}
}

// Get returns the value stored for exactly e.
func (t *Table[V]) Get(e EID) (V, bool) {
	if b := t.iid(e.IID, false); b != nil {
		return b.Get(e.Prefix)
	}
	var zero V
	return zero, false
}

// Lookup returns the longest prefix containing addr in iid.
func (t *Table[V]) Lookup(iid uint32, addr netip.Addr) (EID, V, bool) {
	return t.LookupPrefix(HostEID(iid, addr))
}

// LookupPrefix returns the longest prefix that contains e (e itself counts).
func (t *Table[V]) LookupPrefix(e EID) (EID, V, bool) {
	if b := t.iid(e.IID, false); b != nil {
		if p, v, ok := b.LookupPrefixLPM(e.Prefix); ok {
			return EID{IID: e.IID, Prefix: p}, v, true
		}
	}
	var zero V
	return EID{}, zero, false
}

// Related returns the longest prefix that contains e or, failing that, the
// first prefix inside e: what answers a request for e when e may be wider
// than the entries (a Map-Request or SMR for a covering prefix).
func (t *Table[V]) Related(e EID) (EID, V, bool) {
	if p, v, ok := t.LookupPrefix(e); ok {
		return p, v, true
	}
	for p, v := range t.Subnets(e) {
		return p, v, true
	}
	var zero V
	return EID{}, zero, false
}

// Overlaps reports whether any prefix in the table overlaps e.
func (t *Table[V]) Overlaps(e EID) bool {
	b := t.iid(e.IID, false)
	return b != nil && b.OverlapsPrefix(e.Prefix)
}

// Subnets yields the prefixes equal to or more specific than e.
func (t *Table[V]) Subnets(e EID) iter.Seq2[EID, V] {
	return func(yield func(EID, V) bool) {
		if b := t.iid(e.IID, false); b != nil {
			for p, v := range b.Subnets(e.Prefix) {
				if !yield(EID{IID: e.IID, Prefix: p}, v) {
					return
				}
			}
		}
	}
}

// Supernets yields the prefixes equal to or less specific than e,
// most specific first.
func (t *Table[V]) Supernets(e EID) iter.Seq2[EID, V] {
	return func(yield func(EID, V) bool) {
		if b := t.iid(e.IID, false); b != nil {
			for p, v := range b.Supernets(e.Prefix) {
				if !yield(EID{IID: e.IID, Prefix: p}, v) {
					return
				}
			}
		}
	}
}

// All yields every entry, instance ID by instance ID, prefixes sorted.
func (t *Table[V]) All() iter.Seq2[EID, V] {
	return func(yield func(EID, V) bool) {
		for iid, b := range t.byIID {
			for p, v := range b.AllSorted() {
				if !yield(EID{IID: iid, Prefix: p}, v) {
					return
				}
			}
		}
	}
}

// LeastSpecificHole returns the shortest prefix that contains addr and
// overlaps no entry of the table, searching masks from minBits up; ok is
// false when even the host prefix overlaps an entry. The Map-Resolver
// uses it for negative Map-Replies (RFC 9301 §8.3).
func (t *Table[V]) LeastSpecificHole(iid uint32, addr netip.Addr, minBits int) (EID, bool) {
	for bits := minBits; bits <= addr.BitLen(); bits++ {
		p, _ := addr.Prefix(bits)
		e := EID{IID: iid, Prefix: p}
		if !t.Overlaps(e) {
			return e, true
		}
	}
	return EID{}, false
}
