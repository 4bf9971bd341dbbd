// Package adminapi is the contract of lispd's admin API: the endpoint
// paths, the query each takes, every request and response type, and a
// typed client. The daemon serves it (internal/admin, internal/daemon);
// lispctl, lisplab, the demo, the end-to-end tests and the benches use
// only this package, so none of them links a role or the data plane.
//
// JSON field names are part of the user contract: they never change.
// Prefixes and addresses are typed (netip) and marshal to the strings
// operators know.
package adminapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
)

// Endpoint paths. The daemon registers its handlers on them and the
// client calls them: each appears here and nowhere else.
const (
	PathStatus        = "/v1/status"
	PathStatistics    = "/v1/statistics"
	PathSite          = "/v1/site"
	PathSiteMoves     = "/v1/site/moves"
	PathSubscriptions = "/v1/subscriptions"
	PathCluster       = "/v1/cluster"
	PathMapCache      = "/v1/map-cache"
	PathDatabase      = "/v1/database"
	PathRLOCProbing   = "/v1/rloc-probing"
	PathNAT           = "/v1/nat"
	PathRTR           = "/v1/rtr"
	PathDynamicEID    = "/v1/dynamic-eid"
	PathClearMapCache = "/v1/clear-map-cache"
	PathReload        = "/v1/reload"
	PathDataPlane     = "/v1/dataplane"
)

// Query keys.
const (
	KeyName       = "name"        // PathSite: one site; PathSiteMoves: moves from or to it
	KeyEID        = "eid"         // PathMapCache: an address or a prefix
	KeyPrefix     = "prefix"      // PathClearMapCache: an address or a prefix
	KeyInstanceID = "instance-id" // PathMapCache, PathClearMapCache, PathDynamicEID
	KeyFamily     = "family"      // PathDynamicEID: FamilyIPv4 or FamilyIPv6
)

// Error is an API error: the HTTP status and the message the server
// sends as {"error": Msg}.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// NotFound reports that what was asked for is not there (404).
func NotFound(format string, a ...any) error {
	return &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf(format, a...)}
}

// BadRequest reports a malformed request (400).
func BadRequest(format string, a ...any) error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, a...)}
}

// ErrorBody is the JSON body of every answer that is not 200 OK.
type ErrorBody struct {
	Error string `json:"error"`
}

// MapCacheQuery selects map-cache entries, for showing (PathMapCache) or
// clearing (PathClearMapCache).
type MapCacheQuery struct {
	// EID, when valid, selects the entries overlapping it (show) or
	// inside it (clear). A host is a /32 or /128.
	EID netip.Prefix
	// InstanceID scopes EID (nil: instance ID 0). Without EID it selects
	// one instance ID's entries; nil then means every instance ID.
	InstanceID *uint32
}

// IID is the instance ID the query is scoped to: its InstanceID, or 0.
func (q MapCacheQuery) IID() uint32 {
	if q.InstanceID != nil {
		return *q.InstanceID
	}
	return 0
}

// Selects reports whether the map-cache entry of e is one q shows: every
// entry, those of one instance ID, or those of q's instance ID that
// overlap q.EID.
func (q MapCacheQuery) Selects(e EID) bool {
	switch {
	case q.EID.IsValid():
		return e.InstanceID == q.IID() && e.EIDPrefix.Overlaps(q.EID)
	case q.InstanceID != nil:
		return e.InstanceID == *q.InstanceID
	}
	return true
}

// values encodes q with the EID under key. A host EID is sent as a bare
// address, as operators type it.
func (q MapCacheQuery) values(key string) url.Values {
	v := url.Values{}
	if q.EID.IsValid() {
		if q.EID.IsSingleIP() {
			v.Set(key, q.EID.Addr().String())
		} else {
			v.Set(key, q.EID.String())
		}
	}
	if q.InstanceID != nil {
		v.Set(KeyInstanceID, strconv.FormatUint(uint64(*q.InstanceID), 10))
	}
	return v
}

// ParseMapCacheQuery reads the query of PathMapCache.
func ParseMapCacheQuery(v url.Values) (MapCacheQuery, error) { return parseMapCacheQuery(v, KeyEID) }

// ParseClearMapCacheQuery reads the query of PathClearMapCache.
func ParseClearMapCacheQuery(v url.Values) (MapCacheQuery, error) {
	return parseMapCacheQuery(v, KeyPrefix)
}

// parseMapCacheQuery is the one parser of instance IDs and EIDs: a bad
// value is a 400, never a silent default.
func parseMapCacheQuery(v url.Values, key string) (MapCacheQuery, error) {
	var q MapCacheQuery
	if s := v.Get(KeyInstanceID); s != "" || v.Has(KeyInstanceID) {
		iid, err := ParseInstanceID(s)
		if err != nil {
			return q, BadRequest("%v", err)
		}
		q.InstanceID = &iid
	}
	if s := v.Get(key); s != "" {
		p, err := ParseEIDOrPrefix(s)
		if err != nil {
			return q, BadRequest("%v", err)
		}
		q.EID = p
	}
	return q, nil
}

// Address families a DynamicEIDQuery selects.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
)

// DynamicEIDQuery selects dynamic-EID ranges (PathDynamicEID) by address
// family and instance ID; the zero value selects all.
type DynamicEIDQuery struct {
	Family     string // "", FamilyIPv4 or FamilyIPv6
	InstanceID *uint32
}

// Selects reports whether q selects the range r.
func (q DynamicEIDQuery) Selects(r DynamicEIDRange) bool {
	switch {
	case q.InstanceID != nil && r.EID.InstanceID != *q.InstanceID:
		return false
	case q.Family == FamilyIPv4 && !r.EID.EIDPrefix.Addr().Is4(), q.Family == FamilyIPv6 && !r.EID.EIDPrefix.Addr().Is6():
		return false
	}
	return true
}

func (q DynamicEIDQuery) values() url.Values {
	v := url.Values{}
	if q.Family != "" {
		v.Set(KeyFamily, q.Family)
	}
	if q.InstanceID != nil {
		v.Set(KeyInstanceID, strconv.FormatUint(uint64(*q.InstanceID), 10))
	}
	return v
}

// ParseDynamicEIDQuery reads the query of PathDynamicEID; a bad family or
// instance ID is an error (a 400).
func ParseDynamicEIDQuery(v url.Values) (DynamicEIDQuery, error) {
	var q DynamicEIDQuery
	if v.Has(KeyFamily) {
		switch f := v.Get(KeyFamily); f {
		case FamilyIPv4, FamilyIPv6:
			q.Family = f
		default:
			return q, BadRequest("bad family %q: want %s or %s", f, FamilyIPv4, FamilyIPv6)
		}
	}
	if v.Has(KeyInstanceID) {
		iid, err := ParseInstanceID(v.Get(KeyInstanceID))
		if err != nil {
			return q, BadRequest("%v", err)
		}
		q.InstanceID = &iid
	}
	return q, nil
}

// ParseInstanceID reads a decimal instance ID.
func ParseInstanceID(s string) (uint32, error) {
	// Instance IDs are 24 bits on the wire (RFC 8060 §4.1) and in the
	// configuration: anything larger could never match.
	const maxIID = 1<<24 - 1
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > maxIID {
		return 0, fmt.Errorf("bad instance-id %q: want a decimal number from 0 to %d", s, maxIID)
	}
	return uint32(n), nil
}

// ParseEIDOrPrefix reads "198.51.100.20" (a host, returned as a /32 or
// /128) or "198.51.100.0/24" (returned masked).
func ParseEIDOrPrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a prefix", s)
	}
	a = a.WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}
