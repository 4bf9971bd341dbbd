package lispsec_test

import (
	"fmt"
	"net/netip"

	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/wire"
)

// One protected lookup, each side in the order it runs (RFC 9303 §5): what
// the ITR, the Map-Server and the ETR call, and what the ITR keeps.
func Example() {
	itrMR := lispsec.Key{ID: 1, Secret: []byte("shared by the ITR and its Map-Resolver")}
	msETR := lispsec.Key{ID: 0, Secret: []byte("the site's Map-Register key")}
	eid := netip.MustParseAddr("198.51.100.7")
	prefix := wire.EIDADRecord{MaskLen: 24, EID: wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))}
	req := &wire.MapRequest{Nonce: 0x1234, ITRRLOCs: []wire.Address{wire.AddrFromIP(netip.MustParseAddr("192.0.2.1"))},
		Records: []wire.RequestRecord{{MaskLen: 32, EID: wire.AddrFromIP(eid)}}}

	// ITR: a fresh OTK per Map-Request, kept with the nonce until the reply.
	q, _ := lispsec.NewRequest(nil, req.Nonce, wire.SecHMACSHA256128, wire.SecKDFHKDFSHA256)
	ad, _ := q.AuthData(itrMR, wire.SecWrapAESKWHKDF)
	toMR := wire.EncapsulateMapRequest(req, eid, 61000)
	_ = toMR.SetAuthData(ad)

	// Map-Resolver/Map-Server: open the ITR-OTK, vouch for the registered
	// prefix, pass a derived MS-OTK to the ETR under the site key.
	in, _ := toMR.AuthData()
	itrOTK, err := lispsec.OpenECM(in, lispsec.Keys{itrMR.ID: itrMR.Secret}, req.Nonce, false)
	fmt.Println("map-server opens the OTK:", err)
	eidAD, _ := lispsec.NewEIDAD(in, itrOTK, []wire.EIDADRecord{prefix}, false)
	fwd, _ := lispsec.ForwardAuthData(in, itrOTK, eidAD, msETR, wire.SecWrapAESKWHKDF, req.Nonce)

	// ETR: open the MS-OTK with the site key, sign the Map-Reply.
	msOTK, err := lispsec.OpenECM(fwd, lispsec.Keys{msETR.ID: msETR.Secret}, req.Nonce, false)
	fmt.Println("etr opens the OTK:", err)
	loc := wire.Locator{Priority: 1, Weight: 100, Flags: wire.LocatorReachable,
		Address: wire.AddrFromIP(netip.MustParseAddr("192.0.2.12"))}
	reply := &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{
		{TTL: 1440, MaskLen: 24, EID: prefix.EID, Locators: []wire.Locator{loc}},
		{TTL: 1440, MaskLen: 0, EID: wire.AddrFromIP(netip.IPv4Unspecified()), Locators: []wire.Locator{loc}}, // overclaim
	}}
	msg, _ := lispsec.SignMapReply(reply, fwd.EID, fwd.RequestedHMAC, msOTK)

	// ITR: verify what arrived, install only what the Map-Server vouched for.
	got, _ := wire.Decode(msg)
	v, err := q.Verify(got.(*wire.MapReply), msg)
	fmt.Println("itr verifies:", err)
	for _, r := range v.Records {
		fmt.Println("install", r.PrefixString())
	}
	for _, r := range v.Dropped {
		fmt.Println("drop", r.PrefixString())
	}
	_, err = q.Verify(got.(*wire.MapReply), msg)
	fmt.Println("again:", err, "->", lispsec.Reason(err))
	// Output:
	// map-server opens the OTK: <nil>
	// etr opens the OTK: <nil>
	// itr verifies: <nil>
	// install 198.51.100.0/24
	// drop 0.0.0.0/0
	// again: lisp-sec: nonce does not match a pending request -> replay
}
