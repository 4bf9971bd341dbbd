package lispsec

import (
	"testing"

	"github.com/lispd/lispd/wire"
)

// BenchmarkMapServer is the Map-Server's work for one protected
// Map-Request forwarded to an ETR: open the ITR-OTK, sign the EID-AD,
// derive and wrap the MS-OTK.
func BenchmarkMapServer(b *testing.B) {
	q, _ := NewRequest(nil, 1, wire.SecHMACSHA256128, wire.SecKDFHKDFSHA256)
	ad, _ := q.AuthData(itrKey, wire.SecWrapAESKWHKDF)
	auth := []wire.EIDADRecord{prefixRec("198.51.100.0/24")}
	b.ReportAllocs()
	for b.Loop() {
		otk, err := OpenECM(ad, mrKeys, 1, false)
		if err != nil {
			b.Fatal(err)
		}
		e, err := NewEIDAD(ad, otk, auth, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ForwardAuthData(ad, otk, e, etrKey, wire.SecWrapAESKWHKDF, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the ITR's check of one signed Map-Reply.
func BenchmarkVerify(b *testing.B) {
	x := newExchange(b, 7, "198.51.100.0/24")
	msg := x.reply(b, "198.51.100.0/24")
	m, _ := wire.Decode(msg)
	r := m.(*wire.MapReply)
	b.ReportAllocs()
	for b.Loop() {
		x.q.done.Store(false)
		if _, err := x.q.Verify(r, msg); err != nil {
			b.Fatal(err)
		}
	}
}
