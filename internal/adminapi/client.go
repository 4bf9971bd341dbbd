package adminapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the admin API of one lispd over its unix socket. It keeps
// no connection open between calls, so it needs no closing.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the admin socket at path.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		// One connection per call: callers poll from many short-lived
		// clients, and idle connections would outlive them.
		DisableKeepAlives: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Socket is the path of the admin socket the client calls.
func (c *Client) Socket() string { return c.socket }

// Status returns the daemon's summary.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return call[Status](ctx, c, http.MethodGet, PathStatus, nil)
}

// Statistics returns every counter.
func (c *Client) Statistics(ctx context.Context) ([]Counter, error) {
	return call[[]Counter](ctx, c, http.MethodGet, PathStatistics, nil)
}

// Sites returns the Map-Server's sites, or only the one named name when
// name is not empty (an error if there is none).
func (c *Client) Sites(ctx context.Context, name string) ([]Site, error) {
	var q url.Values
	if name != "" {
		q = url.Values{KeyName: {name}}
	}
	return call[[]Site](ctx, c, http.MethodGet, PathSite, q)
}

// SiteMoves returns the Map-Server's move log, oldest first: every move,
// or those from or to the site named site when it is not empty.
func (c *Client) SiteMoves(ctx context.Context, site string) ([]SiteMove, error) {
	var q url.Values
	if site != "" {
		q = url.Values{KeyName: {site}}
	}
	return call[[]SiteMove](ctx, c, http.MethodGet, PathSiteMoves, q)
}

// Subscriptions returns the Map-Server's publish/subscribe subscribers.
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	return call[[]Subscription](ctx, c, http.MethodGet, PathSubscriptions, nil)
}

// Cluster returns the Map-Server's view of its cluster (a shared store).
func (c *Client) Cluster(ctx context.Context) (Cluster, error) {
	return call[Cluster](ctx, c, http.MethodGet, PathCluster, nil)
}

// MapCache returns the ITR's map-cache entries that q selects.
func (c *Client) MapCache(ctx context.Context, q MapCacheQuery) ([]MapCacheEntry, error) {
	return call[[]MapCacheEntry](ctx, c, http.MethodGet, PathMapCache, q.values(KeyEID))
}

// ClearMapCache removes the map-cache entries q selects (inside q.EID)
// and returns how many it removed.
func (c *Client) ClearMapCache(ctx context.Context, q MapCacheQuery) (int, error) {
	r, err := call[ClearResult](ctx, c, http.MethodPost, PathClearMapCache, q.values(KeyPrefix))
	return r.Cleared, err
}

// Database returns the ETR's local EID prefixes and registration state.
func (c *Client) Database(ctx context.Context) (Database, error) {
	return call[Database](ctx, c, http.MethodGet, PathDatabase, nil)
}

// RTR returns the xTRs behind NAT an RTR serves.
func (c *Client) RTR(ctx context.Context) ([]NATedXTR, error) {
	return call[[]NATedXTR](ctx, c, http.MethodGet, PathRTR, nil)
}

// NAT returns the ETR's NAT discoveries.
func (c *Client) NAT(ctx context.Context) ([]NATDiscovery, error) {
	return call[[]NATDiscovery](ctx, c, http.MethodGet, PathNAT, nil)
}

// RLOCProbing returns the probed remote locators.
func (c *Client) RLOCProbing(ctx context.Context) ([]ProbedRLOC, error) {
	return call[[]ProbedRLOC](ctx, c, http.MethodGet, PathRLOCProbing, nil)
}

// DataPlane returns which data path runs, where the kernel path is
// attached and its counters.
func (c *Client) DataPlane(ctx context.Context) (DataPlane, error) {
	return call[DataPlane](ctx, c, http.MethodGet, PathDataPlane, nil)
}

// DynamicEIDs returns the dynamic-EID ranges and their hosts.
func (c *Client) DynamicEIDs(ctx context.Context) ([]DynamicEIDRange, error) {
	return c.DynamicEIDsMatching(ctx, DynamicEIDQuery{})
}

// DynamicEIDsMatching returns the dynamic-EID ranges q selects, with their
// hosts.
func (c *Client) DynamicEIDsMatching(ctx context.Context, q DynamicEIDQuery) ([]DynamicEIDRange, error) {
	return call[[]DynamicEIDRange](ctx, c, http.MethodGet, PathDynamicEID, q.values())
}

// Reload makes the daemon re-read its configuration file.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	return call[ReloadResult](ctx, c, http.MethodPost, PathReload, nil)
}

// call sends method path?q and returns the JSON answer as a T.
func call[T any](ctx context.Context, c *Client, method, path string, q url.Values) (T, error) {
	var out T
	err := c.do(ctx, method, path, q, &out)
	return out, err
}

// do sends method path?q and decodes the JSON answer into out. An
// answer other than 200 OK is an *Error wrapped as "lispd: message".
func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := "http://lispd" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach lispd at %s (is it running? --socket or LISPD_SOCKET): %w", c.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("lispd at %s: reading the answer: %w", c.socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		} else {
			msg = resp.Status + ": " + msg
		}
		return fmt.Errorf("lispd: %w", &Error{Status: resp.StatusCode, Msg: msg})
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("lispd at %s: %s answer: %w", c.socket, path, err)
	}
	return nil
}

// Query calls f (a Client method, such as (*Client).Status) on the daemon
// at socket within timeout: the one-shot form the tools and tests that
// poll many daemons use.
func Query[T any](ctx context.Context, socket string, timeout time.Duration, f func(*Client, context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(NewClient(socket), ctx)
}
