package adminapi

import (
	"cmp"
	"net/netip"
	"time"
)

// EID is an EID prefix in an instance ID, as every view carries it: two
// JSON fields, "instance-id" and "eid-prefix".
type EID struct {
	InstanceID uint32       `json:"instance-id"`
	EIDPrefix  netip.Prefix `json:"eid-prefix"`
}

// Compare orders EIDs numerically: by instance ID, then address (IPv4
// before IPv6), then prefix length. (As strings, 203.0.113.10/32 would
// sort before 203.0.113.8/29.)
func (e EID) Compare(o EID) int {
	if c := cmp.Compare(e.InstanceID, o.InstanceID); c != 0 {
		return c
	}
	if c := e.EIDPrefix.Addr().Compare(o.EIDPrefix.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(e.EIDPrefix.Bits(), o.EIDPrefix.Bits())
}

// Status is the summary `lispctl show status` prints (PathStatus).
type Status struct {
	Version  string           `json:"version"`
	Uptime   float64          `json:"uptime-seconds"`
	Roles    []string         `json:"roles"`
	Control  []netip.AddrPort `json:"control-addresses"`
	Metrics  string           `json:"metrics,omitempty"`
	Config   string           `json:"config-file,omitempty"`
	Sites    int              `json:"sites,omitempty"`
	Prefixes int              `json:"registered-prefixes,omitempty"`
	// Web is the address of the web view (admin.web), when on.
	Web string `json:"web,omitempty"`
	// DynamicEIDs tells that GET /v1/dynamic-eid has ranges to show.
	DynamicEIDs bool `json:"dynamic-eids,omitempty"`
}

// Counter is one statistic (PathStatistics).
type Counter struct {
	Subsystem string            `json:"subsystem"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	Value     uint64            `json:"value"`
}

// Locator is a locator of a map-cache entry, a database entry or a
// registration. RTTms is known only in the map-cache, for probed RLOCs.
type Locator struct {
	Address   netip.Addr `json:"address"`
	Priority  uint8      `json:"priority"`
	Weight    uint8      `json:"weight"`
	MPriority uint8      `json:"m-priority"`
	MWeight   uint8      `json:"m-weight"`
	State     string     `json:"state"`
	RTTms     *float64   `json:"rtt-ms,omitempty"`
}

// MapCacheEntry is one map-cache entry of an ITR (PathMapCache).
type MapCacheEntry struct {
	EID
	Negative   bool      `json:"negative"`
	Action     string    `json:"action,omitempty"`
	TTL        uint32    `json:"ttl-seconds"`
	ExpiresIn  float64   `json:"expires-in-seconds"`
	Uptime     float64   `json:"uptime-seconds"`
	Source     string    `json:"source"`
	Subscribed bool      `json:"subscribed"`
	Locators   []Locator `json:"locators"`
}

// ClearResult is the answer of PathClearMapCache.
type ClearResult struct {
	Cleared int `json:"cleared"`
}

// Database is an ETR's local EID prefixes and its registration state per
// Map-Server (PathDatabase).
type Database struct {
	Entries    []DatabaseEntry  `json:"database"`
	MapServers []MapServerState `json:"map-servers"`
	XTRID      string           `json:"xtr-id"`
	SiteID     uint64           `json:"site-id"`
}

// DatabaseEntry is one local EID prefix.
type DatabaseEntry struct {
	EID
	Locators []Locator `json:"locators"`
}

// MapServerState is the registration state with one Map-Server.
type MapServerState struct {
	Address       netip.Addr `json:"address"`
	KeyID         uint8      `json:"key-id"`
	Algorithm     string     `json:"algorithm"`
	ProxyReply    bool       `json:"proxy-reply"`
	WantMapNotify bool       `json:"want-map-notify"`
	LastRegister  *time.Time `json:"last-register,omitempty"`
	LastNotify    *time.Time `json:"last-map-notify,omitempty"`
	Registers     uint64     `json:"registers"`
	Notifies      uint64     `json:"map-notifies"`
	State         string     `json:"state"`
}

// ProbedRLOC is one remote locator under RLOC probing (PathRLOCProbing).
type ProbedRLOC struct {
	Address   netip.Addr `json:"address"`
	State     string     `json:"state"`
	RTTms     float64    `json:"rtt-ms"`
	LastProbe *time.Time `json:"last-probe,omitempty"`
	LastReply *time.Time `json:"last-reply,omitempty"`
	Probes    uint64     `json:"probes"`
	Replies   uint64     `json:"replies"`
	Missed    int        `json:"missed"`
}

// NATDiscovery is what an ETR learned about NAT on the path from one of its
// local RLOCs to one Map-Server (PathNAT; draft-ietf-lisp-nat-traversal).
type NATDiscovery struct {
	MapServer netip.Addr `json:"map-server"`
	LocalRLOC netip.Addr `json:"local-rloc"`
	// State is "discovering" (no Info-Reply yet), "behind-nat" or "no-nat".
	State string `json:"state"`
	// Translated is the RLOC and port the Map-Server saw; absent before a reply.
	Translated *netip.AddrPort `json:"translated,omitempty"`
	RTRs       []netip.Addr    `json:"rtrs"`
	LastReply  *time.Time      `json:"last-reply,omitempty"`
	Requests   uint64          `json:"info-requests"`
	Replies    uint64          `json:"info-replies"`
}

// NATedXTR is an xTR behind NAT an RTR serves or is about to (PathRTR).
type NATedXTR struct {
	XTRID      string         `json:"xtr-id"` // hex
	SiteID     uint64         `json:"site-id"`
	Private    netip.AddrPort `json:"private-rloc"`    // the xTR's own RLOC and port
	Translated netip.AddrPort `json:"translated-rloc"` // as its NAT made it look: where the RTR sends to it
	MapServer  netip.Addr     `json:"map-server"`
	EIDs       []EID          `json:"eid-prefixes"`
	// State is "verified" (its Map-Server accepted the registration) or
	// "pending" (a Map-Register relayed, no Map-Notify yet).
	State        string     `json:"state"`
	LastRegister time.Time  `json:"last-register"`
	Expires      *time.Time `json:"expires,omitempty"`
	Registers    uint64     `json:"registers"`
	Notifies     uint64     `json:"map-notifies"`
	// PacketsToXTR and PacketsFromXTR are the data packets the RTR relayed
	// to the xTR (through its NAT) and from it.
	PacketsToXTR   uint64 `json:"packets-to-xtr"`
	PacketsFromXTR uint64 `json:"packets-from-xtr"`
}

// Site is a Map-Server site with its registrations (PathSite).
type Site struct {
	Name         string     `json:"name"`
	Description  string     `json:"description,omitempty"`
	EIDPrefixes  []string   `json:"eid-prefixes"` // as configured: "[iid]prefix", maybe " (accept-more-specifics)"
	AuthFailures uint64     `json:"auth-failures"`
	Registers    uint64     `json:"registers"`
	LastRegister *time.Time `json:"last-register,omitempty"`
	// Registrations are the live registrations, in EID order.
	Registrations []Registration `json:"registrations"`
}

// Registration is a registered EID prefix.
type Registration struct {
	EID
	Locators     []Locator      `json:"locators"`
	RegisteredBy []RegisteredBy `json:"registered-by"`
	Moves        uint32         `json:"moves"`               // times another site took the prefix over
	LastMove     *time.Time     `json:"last-move,omitempty"` // nil before the first move
}

// SiteMove is one entry of the Map-Server's move log (PathSiteMoves): a
// registration taken over by an xTR of another site (or site-ID), as a
// dynamic-EID host moving does.
type SiteMove struct {
	Time time.Time `json:"time"`
	EID
	FromSite string     `json:"from-site"`
	ToSite   string     `json:"to-site"`
	From     netip.Addr `json:"from"` // the xTR that held it (the first, when several did)
	By       netip.Addr `json:"by"`   // the xTR that registered it at the new site
}

// RegisteredBy is one xTR's registration of a prefix.
type RegisteredBy struct {
	Source       netip.AddrPort `json:"source"`
	XTRID        string         `json:"xtr-id,omitempty"`
	SiteID       uint64         `json:"site-id,omitempty"`
	LastRegister time.Time      `json:"last-register"`
	ExpiresIn    float64        `json:"expires-in-seconds"`
	ProxyReply   bool           `json:"proxy-reply"`
	WantNotify   bool           `json:"want-map-notify"`
	Merge        bool           `json:"merge"`
	TTL          uint32         `json:"ttl-minutes"`
	Locators     []Locator      `json:"locators"`
	// Node is the Map-Server of the cluster that took this registration
	// (PathCluster); empty without a cluster. Another node's registration
	// lasts until that node withdraws it, so ExpiresIn is 0 for it.
	Node string `json:"node,omitempty"`
}

// Cluster is a Map-Server's view of the cluster it shares its
// registrations with (PathCluster).
type Cluster struct {
	Node      string   `json:"node"`
	Store     string   `json:"store"` // "etcd"
	Endpoints []string `json:"endpoints"`
	Prefix    string   `json:"prefix"`
	// Connected says the store answered within the last seconds; when it
	// does not, the node answers from the table it last had and says since
	// when here.
	Connected        bool       `json:"connected"`
	UnreachableSince *time.Time `json:"unreachable-since,omitempty"`
	Lease            string     `json:"lease"` // hex, "" without one
	LeaseTTL         float64    `json:"lease-ttl-seconds"`
	// Revision is the store revision the node's table reflects, Head the
	// newest it has seen; LagSeconds is how long it has been behind.
	Revision     int64         `json:"revision"`
	Head         int64         `json:"head-revision"`
	LagSeconds   float64       `json:"lag-seconds"`
	PendingWrite int           `json:"pending-writes"`
	Nodes        []ClusterNode `json:"nodes"`
}

// ClusterNode is one Map-Server of a cluster.
type ClusterNode struct {
	Name     string     `json:"name"`
	Self     bool       `json:"self"`
	Alive    bool       `json:"alive"` // its lease holds
	Lease    string     `json:"lease,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Prefixes int        `json:"prefixes"` // registrations it holds
}

// Subscription is one publish/subscribe subscriber of one prefix
// (PathSubscriptions).
type Subscription struct {
	EID
	XTRID    string       `json:"xtr-id"`
	SiteID   uint64       `json:"site-id"`
	Site     string       `json:"site"`
	ITRRLOCs []netip.Addr `json:"itr-rlocs"`
	Nonce    string       `json:"nonce"`
}

// DynamicEIDRange is a dynamic-EID range and the hosts in it
// (PathDynamicEID).
type DynamicEIDRange struct {
	Name string `json:"name"`
	EID
	Interface   string           `json:"interface"`
	Mode        string           `json:"mode"`
	NotifyGroup netip.Addr       `json:"notify-group,omitzero"`
	TimeoutSec  float64          `json:"timeout-seconds"`
	Hosts       []DynamicEIDHost `json:"hosts"`
}

// States of a DynamicEIDHost.
const (
	HostLocal  = "local"  // detected here, registered by us
	HostAway   = "away"   // was here, registered elsewhere now: we forward there
	HostMoving = "moving" // another xTR of the LAN claimed it; the Map-Server has not confirmed yet
)

// DynamicEIDHost is one host of a dynamic-EID range.
type DynamicEIDHost struct {
	EID         netip.Addr   `json:"eid"`
	State       string       `json:"state"`
	DetectedBy  string       `json:"detected-by"`
	SinceSec    float64      `json:"since-seconds"`
	LastSeenSec float64      `json:"last-seen-seconds"`
	Moves       int          `json:"moves"`
	MovedTo     []netip.Addr `json:"moved-to,omitempty"`
}

// ReloadResult is the answer of PathReload to a reload that was applied:
// every changed setting now runs. A reload that cannot be applied whole is
// refused (409 Conflict, the keys that need a restart in the error) and
// changes nothing.
type ReloadResult struct {
	// Result is "reloaded": the configuration file was read again and
	// whatever changed in it is applied.
	Result string `json:"result"`
	// Applied lists the changed settings by section ("xtr", "map-server",
	// "log", …) and configuration key ("xtr.database"); absent when the
	// file holds nothing new.
	Applied map[string][]string `json:"applied,omitempty"`
	// Sites added, removed or changed at the Map-Server, by name.
	SitesAdded   []string `json:"sites-added,omitempty"`
	SitesRemoved []string `json:"sites-removed,omitempty"`
	SitesChanged []string `json:"sites-changed,omitempty"`
}

// DataPlane is the data path of a tunnel router (PathDataPlane).
type DataPlane struct {
	// Path is "kernel+userspace" (the eBPF program in front of the
	// userspace engine, which takes what it hands up) or "userspace".
	Path string `json:"path"`
	// Mode is the configured xtr.data-plane.
	Mode string `json:"mode"`
	// KernelReason says why the kernel path is not in use ("" when it is).
	KernelReason string                `json:"kernel-reason,omitempty"`
	Programs     []DataPlaneProgram    `json:"programs"`
	Kernel       *DataPlaneKernelCount `json:"kernel,omitempty"`
	// Userspace are the engine's counts (as in show statistics).
	Userspace DataPlaneUserspaceCount `json:"userspace"`
}

// DataPlaneProgram is one attachment of the kernel path's program.
type DataPlaneProgram struct {
	Interface string `json:"interface"`
	Ifindex   int    `json:"ifindex"`
	Hook      string `json:"hook"` // "tcx-ingress"
	Program   string `json:"program"`
	ProgramID uint32 `json:"program-id"`
	LinkID    uint32 `json:"link-id"`
}

// DataPlaneKernelCount are the kernel path's counters.
type DataPlaneKernelCount struct {
	EncapsulatedPackets uint64 `json:"encapsulated-packets"`
	EncapsulatedBytes   uint64 `json:"encapsulated-bytes"`
	// EncapsulatedInPlace of them were moved within their buffer (too
	// little room in front for the outer headers).
	EncapsulatedInPlace uint64            `json:"encapsulated-in-place"`
	DecapsulatedPackets uint64            `json:"decapsulated-packets"`
	DecapsulatedBytes   uint64            `json:"decapsulated-bytes"`
	PETREncapsulated    uint64            `json:"petr-encapsulated"`
	PETRDecapsulated    uint64            `json:"petr-decapsulated"`
	EventsLost          uint64            `json:"events-lost"`
	Punted              map[string]uint64 `json:"punted"`
	Dropped             map[string]uint64 `json:"dropped"`
	MapCacheEntries     int               `json:"map-cache-entries"`
	// MapUpdates mappings the control plane learnt were written to the
	// BPF map-cache; the delays (median, 99th percentile, maximum of the
	// latest 1024) from the message that brought each to its entry.
	MapUpdates          int     `json:"map-updates"`
	MapUpdateP50Seconds float64 `json:"map-update-p50-seconds"`
	MapUpdateP99Seconds float64 `json:"map-update-p99-seconds"`
	MapUpdateMaxSeconds float64 `json:"map-update-max-seconds"`
}

// DataPlaneUserspaceCount are the userspace engine's main counts.
type DataPlaneUserspaceCount struct {
	EncapsulatedPackets uint64 `json:"encapsulated-packets"`
	DecapsulatedPackets uint64 `json:"decapsulated-packets"`
	CacheMisses         uint64 `json:"cache-misses"`
	MissQueued          uint64 `json:"miss-queued"`
	MissReleased        uint64 `json:"miss-released"`
	MapCacheEntries     int    `json:"map-cache-entries"`
}
