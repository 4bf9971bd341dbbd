package render

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/lispd/lispd/internal/lisptest"
)

// seeds are well-formed and broken messages of the kinds lispctl meets.
var seeds = []string{
	"10400001010203040506070800010a0101010001c0000201001800010a020200",
	"800000004500003c000100004011acabc00002010a020202ee4a10f60028000010400001010203040506070800010a0101010001c0000201001800010a020200",
	"2000000101020304050607080000000f00102000000000010a090000",
	"3a000101000000000000000100020020b438923d0b9ba545ef2b3190290d1ba61b23194807dd06195526e834cc825486000005a001181000000000010a0202000164ff0000050001c6336401000102030405060708090a0b0c0d0e0f000000000000002a",
	"c8abcdef0000ff03",
	"1812345600000500",
	"10400001",
}

// FuzzPackets: whatever the bytes, building the views and writing them as
// text and JSON neither panics nor fails.
func FuzzPackets(f *testing.F) {
	for _, s := range seeds {
		f.Add(lisptest.MustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range []Packet{ControlPacket(b), DataPacket(b)} {
			if p.Message == nil || p.Type == "" {
				t.Fatalf("%x: no type", b)
			}
			if p.Failed() == (p.Summary != "") {
				t.Fatalf("%x: error %q and summary %q", b, p.Error, p.Summary)
			}
			if err := WriteText(io.Discard, &p, true); err != nil {
				t.Fatal(err)
			}
			if _, err := json.Marshal(&p); err != nil {
				t.Fatal(err)
			}
		}
	})
}
