package wire

import (
	"net/netip"
	"testing"
)

// Decoding an LCAF costs the LCAF and its body and nothing else: the body
// reader must stay on the stack although each body type decodes itself
// through the LCAFBody interface.
func TestDecodeLCAFAllocs(t *testing.T) {
	b, err := AddrWithIID(1000, AddrFromIP(netip.MustParseAddr("198.51.100.20"))).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := DecodeAddress(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("DecodeAddress of an Instance-ID LCAF: %v allocations, want 2 (LCAF and body)", allocs)
	}
}
