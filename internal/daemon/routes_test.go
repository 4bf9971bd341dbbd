package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/xtr"
)

// rawAdmin sends method path?query to the admin socket as it is, which
// the typed client cannot: a malformed query.
func rawAdmin(t *testing.T, sock, method, pathQuery string) (int, string) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	req, err := http.NewRequest(method, "http://lispd"+pathQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body adminapi.ErrorBody
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s %s: answer %q is not JSON: %v", method, pathQuery, b, err)
	}
	return resp.StatusCode, body.Error
}

// TestInstanceIDQueryErrors: every endpoint that takes instance-id
// answers 400 with the bad value named, instead of falling back to
// instance ID 0 (as clear-map-cache once did).
func TestInstanceIDQueryErrors(t *testing.T) {
	d := startNode(t, `
control: {addresses: [127.0.0.1], port: 0}
xtr:
  itr: true
  database: [{eid-prefix: 198.51.100.0/24, locators: [{address: 127.0.0.1}]}]
`, xtr.NopDataPlane{})
	sock := d.cfg.Admin.Socket
	for _, tc := range []struct {
		method, path, query, want string
	}{
		{http.MethodGet, adminapi.PathMapCache, "?eid=198.51.100.1&instance-id=ten", `bad instance-id "ten"`},
		{http.MethodGet, adminapi.PathMapCache, "?instance-id=-1", `bad instance-id "-1"`},
		{http.MethodGet, adminapi.PathMapCache, "?instance-id=4294967296", `bad instance-id "4294967296"`},
		{http.MethodGet, adminapi.PathMapCache, "?eid=198.51.100.1&instance-id=", `bad instance-id ""`},
		{http.MethodGet, adminapi.PathMapCache, "?eid=not-an-eid", `"not-an-eid" is neither an address nor a prefix`},
		{http.MethodPost, adminapi.PathClearMapCache, "?prefix=198.51.100.0/24&instance-id=ten", `bad instance-id "ten"`},
		{http.MethodPost, adminapi.PathClearMapCache, "?instance-id=0x10", `bad instance-id "0x10"`},
		{http.MethodPost, adminapi.PathClearMapCache, "?prefix=198.51.100.0/33", `"198.51.100.0/33" is neither an address nor a prefix`},
	} {
		code, msg := rawAdmin(t, sock, tc.method, tc.path+tc.query)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s%s: %d %q, want 400 with %q", tc.method, tc.path, tc.query, code, msg, tc.want)
		}
	}
	// The same through the typed client: a good query is answered.
	c := adminapi.NewClient(sock)
	iid := uint32(7)
	q := adminapi.MapCacheQuery{EID: netip.MustParsePrefix("198.51.100.0/24"), InstanceID: &iid}
	if es, err := c.MapCache(context.Background(), q); err != nil || len(es) != 0 {
		t.Errorf("map-cache %+v: %v %+v", q, err, es)
	}
	if n, err := c.ClearMapCache(context.Background(), q); err != nil || n != 0 {
		t.Errorf("clear-map-cache %+v: %d %v", q, n, err)
	}
	// Not a Map-Server: 404, as a typed error.
	_, err := c.Sites(context.Background(), "")
	var ae *adminapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || err.Error() != "lispd: this lispd is not a Map-Server" {
		t.Errorf("sites on an xTR: %v", err)
	}
}
