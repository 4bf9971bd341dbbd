package mapresolver

import (
	"testing"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/lispsec"
	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// protected is request() sent with LISP-SEC authentication data wrapped in
// key, and the ITR's pending state.
func protected(t *testing.T, addr string, key lispsec.Key) (*control.Request, *lispsec.Request) {
	t.Helper()
	req := request(0, addr)
	q, err := lispsec.NewRequest(nil, 42, wire.SecHMACSHA256128, wire.SecKDFHKDFSHA256)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := q.AuthData(key, wire.SecWrapAESKWHKDF)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.ECM.SetAuthData(ad); err != nil {
		t.Fatal(err)
	}
	return req, q
}

// The Map-Resolver signs its negative replies to protected requests; a
// request it cannot open gets no answer, and is counted.
func TestLISPSECNegative(t *testing.T) {
	key := lispsec.Key{ID: 5, Secret: []byte("itr-mr")}
	reg := stats.NewRegistry()
	r := New(nil, nil, Options{Stats: reg, LISPSECKeys: lispsec.Keys{key.ID: key.Secret}})
	req, q := protected(t, "192.0.2.5", key)
	var c lisptest.Sender
	r.HandleMapRequest(req, &c)
	rec := reply(t, &c)
	m, _ := wire.Decode(c.All()[0].B)
	v, err := q.Verify(m.(*wire.MapReply), c.All()[0].B)
	if err != nil {
		t.Fatalf("ITR rejects the Map-Resolver's negative reply: %v", err)
	}
	if len(v.Records) != 1 || v.Records[0].PrefixString() != rec.PrefixString() || v.EID.Records[0].String() != "0.0.0.0/0" {
		t.Fatalf("verified %+v", v)
	}
	if got := lisptest.Counter(t, reg, "map_resolver.lispsec_replies"); got != 1 {
		t.Errorf("lispsec_replies = %d", got)
	}

	req, _ = protected(t, "192.0.2.5", lispsec.Key{ID: key.ID, Secret: []byte("not-the-key")})
	c.Take()
	r.HandleMapRequest(req, &c)
	if len(c.All()) != 0 {
		t.Fatalf("answered a request it cannot open: %+v", c.All())
	}
	if got := lisptest.Counter(t, reg, "map_resolver.lispsec_requests_dropped{reason=otk}"); got != 1 {
		t.Errorf("lispsec_requests_dropped{otk} = %d", got)
	}

	// Without keys, the answer is the plain negative reply, as before.
	plain := New(nil, nil, Options{})
	req, _ = protected(t, "192.0.2.5", key)
	c.Take()
	plain.HandleMapRequest(req, &c)
	if m, _ := wire.Decode(c.All()[0].B); m.(*wire.MapReply).Security {
		t.Fatal("signed without keys")
	}
}
