package wire

import (
	"net/netip"
	"testing"
)

var sinkU32 uint32

// BenchmarkDataHeader encodes a full header (nonce, IID, LSBs) and reads
// every field back, as the encapsulation and decapsulation paths do.
func BenchmarkDataHeader(b *testing.B) {
	buf := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h := DataHeader(buf[:DataHeaderLen])
		h.Put(DataN|DataL|DataI, uint32(i), uint32(i)<<8|3)
		d, err := DecodeDataHeader(buf)
		if err != nil {
			b.Fatal(err)
		}
		sinkU32 += d.Nonce() + d.InstanceID() + d.LSBs()
	}
}

func benchMapRequest() []byte {
	itr := AddrFromIP(netip.MustParseAddr("192.0.2.11"))
	m := &MapRequest{Nonce: 0x0102030405060708, SourceEID: AddrFromIP(netip.MustParseAddr("203.0.113.10")),
		ITRRLOCs: []Address{itr}, Records: []RequestRecord{{MaskLen: 32,
			EID: AddrWithIID(1000, AddrFromIP(netip.MustParseAddr("198.51.100.20")))}}}
	b, err := Encode(m)
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkMapRequestDecode(b *testing.B) {
	msg := benchMapRequest()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := DecodeMapRequest(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapRequestEncode(b *testing.B) {
	m, _ := DecodeMapRequest(benchMapRequest())
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// password is the authentication key of the signed benchmarks.
var password = []byte("password")

func benchRegister(b *testing.B) []byte {
	rloc := AddrFromIP(netip.MustParseAddr("192.0.2.12"))
	m := &MapRegister{WantMapNotify: true, AuthBody: AuthBody{Nonce: 7, Algorithm: AuthHMACSHA256,
		Records: []EIDRecord{{TTL: 1440, MaskLen: 24, Authoritative: true,
			EID:      AddrFromIP(netip.MustParseAddr("198.51.100.0")),
			Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Flags: LocatorReachable, Address: rloc}}}},
		HasXTRID: true}}
	msg, err := EncodeSigned(m, password, AuthOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

func BenchmarkMapRegisterVerifySHA256(b *testing.B) {
	msg := benchRegister(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := Verify(msg, password, AuthOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapRegisterDecode(b *testing.B) {
	msg := benchRegister(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
