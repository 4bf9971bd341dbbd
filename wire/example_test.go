package wire_test

import (
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// Decode a Map-Reply as Open Overlay Router sent it (frame 10 of
// testdata/vectors/oor/oor-capture.pcap) and the Encapsulated Control
// Message that asked for it (frame 9).
func ExampleDecode() {
	for _, payload := range []string{
		"800000004500003c00034000ff11155bcb00710ac633641410f610f60028e6a6" +
			"10000001ddd74e7b684dc3940001cb00710a0001c000020b00200001c6336414",
		"20000001ddd74e7b684dc3940000000a0118000000000001c63364000164ff0000010001c000020c",
	} {
		b, _ := hex.DecodeString(payload)
		m, err := wire.Decode(b)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(m)
		// The typed message is one type switch away.
		if ecm, ok := m.(*wire.ECM); ok {
			if req, ok := ecm.Message.(*wire.MapRequest); ok {
				fmt.Printf("  %s asks for %s/%d\n", ecm.IP.Src, req.Records[0].EID, req.Records[0].MaskLen)
			}
		}
	}
	// Output:
	// ECM 203.0.113.10:4342 > 198.51.100.20:4342 | Map-Request nonce 0xddd74e7b684dc394 source-eid 203.0.113.10 itr-rlocs 192.0.2.11 eid 198.51.100.20/32
	//   203.0.113.10 asks for 198.51.100.20/32
	// Map-Reply nonce 0xddd74e7b684dc394 1 records {198.51.100.0/24 ttl 10 [192.0.2.12 p1/w100 mp255/mw0 R]}
}

// Check the HMAC of a Map-Register Open Overlay Router sent (frame 1 of the
// same capture, HMAC-SHA-1 with the key "password") before trusting it.
func ExampleVerify() {
	b, _ := hex.DecodeString("30000101bf56a97b06aa468b000100144f0ea9ac72e5d501cff363547e6c8f1b" +
		"f55fc3160000000a0118100000000001cb0071000164ff0000050001c000020b")
	fmt.Println(wire.Verify(b, []byte("password"), wire.AuthOptions{}))
	fmt.Println(wire.Verify(b, []byte("wrong"), wire.AuthOptions{}))
	// Output:
	// <nil>
	// authentication failed
}

// Build a Map-Register for an EID prefix behind one RLOC and sign it with
// HMAC-SHA-256. EncodeSigned sizes and fills the Authentication Data; the
// receiver checks it with Verify on the bytes it got.
func ExampleEncodeSigned() {
	reg := &wire.MapRegister{
		WantMapNotify: true,
		AuthBody: wire.AuthBody{
			Nonce:     0x0123456789abcdef,
			KeyID:     0,
			Algorithm: wire.AuthHMACSHA256,
			Records: []wire.EIDRecord{{
				TTL:           1440, // minutes
				MaskLen:       24,
				Authoritative: true,
				EID:           wire.AddrWithIID(1000, wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))),
				Locators: []wire.Locator{{
					Priority: 1, Weight: 100, MPriority: 255,
					Flags:   wire.LocatorLocal | wire.LocatorReachable,
					Address: wire.AddrFromIP(netip.MustParseAddr("192.0.2.12")),
				}},
			}},
		},
	}
	key := []byte("password")
	b, err := wire.EncodeSigned(reg, key, wire.AuthOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%x\n", b)
	fmt.Println("verify:", wire.Verify(b, key, wire.AuthOptions{}))
	m, _ := wire.Decode(b)
	fmt.Println(m)
	// Output:
	// 300001010123456789abcdef000200200042c718d2646bb9e02a7f8c9844c439f3dc609c6fbde46c5e715dfce8af1e11000005a0011810000000400300000200000a000003e80001c63364000164ff0000050001c000020c
	// verify: <nil>
	// Map-Register [M(want-map-notify)] nonce 0x0123456789abcdef key-id 0 hmac-sha-256-128 auth-len 32 1 records {[1000]198.51.100.0/24 ttl 1440 auth [192.0.2.12 p1/w100 mp255/mw0 LR]}
}
