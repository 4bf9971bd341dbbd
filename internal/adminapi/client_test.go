package adminapi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/admin"
	"github.com/lispd/lispd/internal/adminapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs an admin.Server on a socket in a temporary directory with
// the routes given, as lispd does.
func serve(t *testing.T, routes map[string]func(*http.Request) (any, error)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "lispd.sock")
	s := admin.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for pattern, fn := range routes {
		s.HandleJSON(pattern, fn)
	}
	if err := s.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return sock
}

// TestClientServer: the typed client against the admin server, the pair
// lispctl and lispd are: answers decoded, queries encoded, errors typed
// with their wording kept, the socket private to its owner.
func TestClientServer(t *testing.T) {
	var gotQuery string
	sock := serve(t, map[string]func(*http.Request) (any, error){
		"GET " + adminapi.PathStatus: func(*http.Request) (any, error) {
			return adminapi.Status{Version: "v9", Control: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:4342")}}, nil
		},
		"GET " + adminapi.PathMapCache: func(r *http.Request) (any, error) {
			gotQuery = r.URL.RawQuery
			q, err := adminapi.ParseMapCacheQuery(r.URL.Query())
			if err != nil {
				return nil, err
			}
			return []adminapi.MapCacheEntry{{EID: adminapi.EID{InstanceID: q.IID(), EIDPrefix: q.EID}}}, nil
		},
		"GET " + adminapi.PathSite: func(r *http.Request) (any, error) {
			return nil, adminapi.NotFound("no site %q", r.URL.Query().Get(adminapi.KeyName))
		},
		"GET " + adminapi.PathSiteMoves: func(r *http.Request) (any, error) {
			return []adminapi.SiteMove{{FromSite: "dc1", ToSite: r.URL.Query().Get(adminapi.KeyName)}}, nil
		},
		"POST " + adminapi.PathReload: func(*http.Request) (any, error) { return nil, errors.New("disk on fire") },
		"GET " + adminapi.PathCluster: func(*http.Request) (any, error) {
			return adminapi.Cluster{Node: "ms1", Connected: true, Nodes: []adminapi.ClusterNode{{Name: "ms1", Self: true}}}, nil
		},
	})
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	ctx := context.Background()
	c := adminapi.NewClient(sock)

	st, err := c.Status(ctx)
	if err != nil || st.Version != "v9" || st.Control[0].Port() != 4342 {
		t.Errorf("status: %+v %v", st, err)
	}
	iid := uint32(1000)
	mc, err := c.MapCache(ctx, adminapi.MapCacheQuery{EID: netip.MustParsePrefix("2001:db8::/32"), InstanceID: &iid})
	if err != nil || len(mc) != 1 || mc[0].InstanceID != 1000 || mc[0].EIDPrefix.String() != "2001:db8::/32" {
		t.Errorf("map-cache: %+v %v", mc, err)
	}
	if gotQuery != "eid=2001%3Adb8%3A%3A%2F32&instance-id=1000" {
		t.Errorf("map-cache query sent as %q", gotQuery)
	}

	cl, err := c.Cluster(ctx)
	if err != nil || cl.Node != "ms1" || !cl.Connected || len(cl.Nodes) != 1 || !cl.Nodes[0].Self {
		t.Errorf("cluster: %+v %v", cl, err)
	}
	_, err = c.Sites(ctx, "dc9")
	var ae *adminapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || err.Error() != `lispd: no site "dc9"` {
		t.Errorf("missing site: %v", err)
	}
	if moves, err := c.SiteMoves(ctx, "dc2"); err != nil || len(moves) != 1 || moves[0].ToSite != "dc2" {
		t.Errorf("site moves: %+v, %v", moves, err)
	}
	_, err = c.Reload(ctx)
	if !errors.As(err, &ae) || ae.Status != http.StatusInternalServerError || err.Error() != "lispd: disk on fire" {
		t.Errorf("failed reload: %v", err)
	}
	// A path the server does not route: its plain-text 404, with the status.
	_, err = c.Database(ctx)
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !strings.HasPrefix(err.Error(), "lispd: 404 Not Found: ") {
		t.Errorf("unrouted path: %v", err)
	}

	none := filepath.Join(t.TempDir(), "none.sock")
	_, err = adminapi.NewClient(none).Status(ctx)
	if want := "cannot reach lispd at " + none + " (is it running? --socket or LISPD_SOCKET): "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("no daemon: %v", err)
	}
}
