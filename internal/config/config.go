// Package config reads lispd's YAML configuration: a strict schema (unknown
// keys are errors), defaults, validation that points at the offending line,
// and a diff of two configurations for SIGHUP reloads.
//
// The user-facing contract — key names and their meaning — is the
// "Configuration" section of docs/interfaces.md. Keys may be added but
// never renamed.
//
// Load and Parse return either a fully defaulted and validated *Config or
// an Errors value listing every problem found, each as "FILE:LINE: message",
// in line order. Nothing here panics on input.
package config

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/lispd/lispd/wire"
)

// Defaults applied when a key is absent. They are exported so that
// documentation, tests and the daemon agree on one set of numbers.
const (
	DefaultAdminSocket = "/run/lispd/lispd.sock"
	DefaultControlPort = wire.ControlPort

	DefaultPerSourceRate  = 1000   // control messages per second from one source address
	DefaultPerSourceBurst = 2000   // tokens in each per-source bucket
	DefaultGlobalRate     = 200000 // control messages per second in total
	DefaultGlobalBurst    = 400000 // twice the rate, as for the per-source bucket
	// Map-Replies and Map-Notifies to one destination address: a burst
	// for an ITR that resolves many EIDs at once, then a rate that makes
	// lispd useless as a reflector (RFC 9301 §5.4). The RFC's one per 3 s
	// would let an ITR learn one new EID every 3 s from its Map-Resolver.
	DefaultPerDestinationRate  = 100
	DefaultPerDestinationBurst = 1000

	DefaultRegistrationTimeout    = 3 * time.Minute  // RFC 9301 §8.2: three missed 60 s registrations
	DefaultMaxSubscriptions       = 100000           // RFC 9437 subscriptions held at once
	DefaultMaxSubscriptionsPerXTR = 10000            // of them, what one xTR of one site may hold
	DefaultSubscriptionTTL        = 15 * time.Minute // RFC 9437 temporary subscriptions
	DefaultNotifyRetransmit       = 3 * time.Second  // RFC 9301 §5.7 Map-Notify retransmission
	DefaultEtcdPrefix             = "/lispd/"        // map-server.store.etcd.prefix
	DefaultEtcdDialTimeout        = 5 * time.Second  // map-server.store.etcd.dial-timeout
	DefaultEtcdLeaseTTL           = 10 * time.Second // map-server.store.etcd.lease-ttl
	// DefaultRequireNonceIncrease turns the Map-Register replay check on
	// (RFC 9301 §5.6: a non-increasing nonce MUST be dropped).
	DefaultRequireNonceIncrease = true
	// DefaultStateDirectory is where the Map-Server keeps what must
	// survive a restart: the last Map-Register nonce of every xTR.
	DefaultStateDirectory = "/var/lib/lispd"

	DefaultNegativeTTL     = 15 * time.Minute // negative Map-Reply for "not a LISP EID"
	DefaultUnregisteredTTL = 1 * time.Minute  // negative Map-Reply for a configured but unregistered site

	DefaultTUN                = "lisp0"
	DefaultRegisterInterval   = 60 * time.Second // RFC 9301 §8.2
	DefaultRLOCProbeInterval  = 10 * time.Second
	DefaultMapCacheMaxEntries = 1000000

	DefaultPriority  = 1
	DefaultWeight    = 100
	DefaultMPriority = 255 // 255: not used for multicast
	DefaultMWeight   = 0

	// DefaultAuthAlgorithm is used when a key gives no algorithm: RFC 9301
	// §12.5 makes HMAC-SHA-256-128 the one to support.
	DefaultAuthAlgorithm = wire.AuthHMACSHA256
)

// MaxInstanceID is the largest 24-bit LISP instance ID.
const MaxInstanceID = 1<<24 - 1

// Config is a whole lispd configuration. A nil role pointer means the role
// is off; a non-nil one (even from an empty "map-resolver: {}") means on.
type Config struct {
	Log         Log
	Admin       Admin
	Control     Control
	MapServer   *MapServer
	MapResolver *MapResolver
	XTR         *XTR
	PITR        *PITR
	PETR        *PETR
	RTR         *RTR

	// File is the name the configuration was loaded from, as given to Load
	// or Parse; it is not part of the configuration itself.
	File string
}

// Log format names.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Log configures the daemon's structured logging.
type Log struct {
	Level  slog.Level // debug, info (default), warn, error
	Format string     // LogFormatText (default) or LogFormatJSON
}

// Admin configures the operator interfaces.
type Admin struct {
	Socket  string // unix socket lispctl talks to
	Metrics string // HOST:PORT for Prometheus /metrics; "" = off
	PProf   string // HOST:PORT for /debug/pprof; "" = off (the default: it exposes the process)
	// Web is HOST:PORT of the read-only web view and the event stream
	// over TCP; "" = off. A bare ":PORT" binds loopback only.
	Web string
}

// Control configures the UDP 4342 control-plane transport.
type Control struct {
	Addresses []netip.Addr // where to listen; default 0.0.0.0 and ::
	Port      uint16       // default 4342; 0 picks a free port (tests)
	RateLimit RateLimit
}

// RateLimit bounds the control messages accepted before any parsing, so a
// flood from one source cannot starve the others.
type RateLimit struct {
	PerSource      float64 // messages per second from one source address
	PerSourceBurst int
	Global         float64 // messages per second in total
	GlobalBurst    int
	// PerDestination bounds the Map-Replies and Map-Notifies sent to one
	// address, whoever asked for them (reflection).
	PerDestination      float64
	PerDestinationBurst int
}

// MapServer turns the Map-Server role on (RFC 9301 §8).
type MapServer struct {
	RegistrationTimeout    time.Duration // a registration expires this long after the last Map-Register
	RequireNonceIncrease   bool          // default for sites that do not say
	MaxSubscriptions       int
	MaxSubscriptionsPerXTR int
	SubscriptionTTL        time.Duration
	NotifyRetransmit       time.Duration
	// StateDirectory holds the persisted replay state (absolute path).
	StateDirectory string
	Sites          []Site
	// LISPSECKeys are the secrets shared with ITRs whose LISP-SEC
	// protected Map-Requests reach this Map-Server (RFC 9303 §6.7).
	LISPSECKeys []LISPSECKey
	// RTRs are the Re-encapsulating Tunnel Routers this Map-Server offers
	// in Info-Replies to xTRs behind NAT (draft-ietf-lisp-nat-traversal
	// §5.2) when their site names none of its own.
	RTRs []netip.Addr
	// RTRKeys are the keys shared with RTRs: the Map-Notify for a
	// Map-Register an RTR relays carries the MS-RTR authentication data
	// signed with that RTR's key (draft-ietf-lisp-nat-traversal §5.2).
	RTRKeys []MSRTRKey
	// Store, when set, shares the registrations with the other
	// Map-Servers of a cluster (docs/cluster.md); nil keeps them in this
	// process (store: memory, the default).
	Store *Store
}

// Store is where a Map-Server's registrations are kept beyond its own
// memory: today only etcd.
type Store struct {
	Etcd *EtcdStore
}

// EtcdStore is the etcd cluster a Map-Server shares its registrations
// through, and its name there.
type EtcdStore struct {
	Endpoints   []string // URLs, http:// or https://
	Prefix      string   // of every key, default /lispd/
	DialTimeout time.Duration
	// Node names this Map-Server in the cluster; "" is the host name.
	Node string
	// LeaseTTL is how long this node's registrations outlive it.
	LeaseTTL time.Duration
	TLS      *EtcdTLS
}

// EtcdTLS are the files of a TLS connection to etcd (absolute paths): the
// CA that signs etcd's certificate, and this node's certificate and key
// when etcd asks for one.
type EtcdTLS struct {
	CA, Cert, Key string
}

// Site is one LISP site the Map-Server accepts registrations for.
type Site struct {
	Name        string
	Description string
	Keys        []Key
	EIDPrefixes []SitePrefix
	// AllowedRLOCs, when not empty, restricts the locators a registration
	// may carry to these prefixes.
	AllowedRLOCs []netip.Prefix
	// RequireNonceIncrease is the effective setting: the site's own value,
	// or the Map-Server's when the site does not give one. When set, a
	// Map-Register whose nonce is not greater than the last one accepted
	// from the same xTR is a replay and is dropped.
	RequireNonceIncrease bool
	// RTRs, when not empty, replace the Map-Server's RTRs in the
	// Info-Replies to this site's xTRs.
	RTRs []netip.Addr
}

// Key is a shared secret that authenticates Map-Register and Map-Notify.
type Key struct {
	ID         uint8
	Algorithm  wire.AuthAlg
	Secret     []byte
	SecretFile string // path the secret was read from, resolved; "" when inline
}

// EID is an EID prefix within an instance ID.
type EID struct {
	InstanceID uint32
	Prefix     netip.Prefix
}

// SitePrefix is an EID prefix a site may register.
type SitePrefix struct {
	EID
	// AcceptMoreSpecifics lets the site register prefixes inside this one,
	// not just this exact prefix.
	AcceptMoreSpecifics bool
}

// MapResolver turns the Map-Resolver role on (RFC 9301 §8.1).
type MapResolver struct {
	// MapServers delegate EID prefixes to remote Map-Servers; prefixes of
	// a co-located Map-Server's sites are resolved locally.
	MapServers      []Delegation
	NegativeTTL     time.Duration // for EIDs no site covers
	UnregisteredTTL time.Duration // for EIDs of a site with no live registration
	// LISPSECKeys are the secrets shared with ITRs for LISP-SEC: the
	// Map-Resolver signs the negative Map-Replies of their protected
	// Map-Requests (RFC 9303 §6.7.2).
	LISPSECKeys []LISPSECKey
}

// Delegation sends Map-Requests for its EID prefixes to a Map-Server.
type Delegation struct {
	Address     netip.Addr
	EIDPrefixes []EID
}

// XTR turns the ITR and/or ETR roles on.
type XTR struct {
	ITR           bool
	ETR           bool
	TUN           string   // TUN device name
	EIDInterfaces []string // interfaces facing the EID hosts
	MapResolvers  []netip.Addr
	MapServers    []MapServerPeer
	// RegisterInterval is the period of Map-Registers to each Map-Server.
	RegisterInterval time.Duration
	Database         []DatabaseEntry
	PETRs            []netip.Addr
	RLOCProbing      RLOCProbing
	MapCache         MapCache
	Subscribe        bool // RFC 9437 publish/subscribe
	// NATTraversal: NAT discovery toward the Map-Servers
	// (draft-ietf-lisp-nat-traversal).
	NATTraversal NATTraversal
	DynamicEIDs  []DynamicEID
	// HasXTRID says whether XTRID was configured; without one the daemon
	// picks its own.
	HasXTRID bool
	XTRID    [16]byte
	SiteID   uint64 // 0 when not configured
	// EIDRoutes are the remote EID space routed into the TUN device
	// (the RLOC network must stay reachable outside them).
	EIDRoutes []netip.Prefix
	// TUNAddresses go on the TUN device (e.g. a PITR's own address).
	TUNAddresses []netip.Prefix
	// DataPlane is DataPlaneAuto (the userspace engine, with the kernel
	// path in front of it where the kernel supports it), DataPlaneKernel
	// (the same, and start-up fails without the kernel path),
	// DataPlaneUserspace (TUN + UDP 4341 only) or DataPlaneNone (control
	// plane only, for route reflectors and tests). The default is
	// DataPlaneUserspace.
	DataPlane   string
	DataPort    int // UDP port of the data plane, default 4341
	UnderlayMTU int // MTU of the RLOC network, default 1500
	// DataNonce sets the N bit and a random nonce in every encapsulated
	// packet (default true); false sends the N, L, E and V bits all 0,
	// as RFC 9300 §4.1 allows on the public Internet.
	DataNonce bool
	// VRFs put instance IDs other than 0 in their own Linux VRF with
	// their EID interfaces and TUN, so overlapping prefixes stay apart.
	VRFs []VRF
	// LISPSEC is the LISP-SEC mode (RFC 9303): LISPSECOff (default),
	// LISPSECOptional or LISPSECRequired. An ITR protects its Map-Requests
	// and verifies the replies; an ETR registers with S and signs its
	// Map-Replies with the key of the Map-Server that forwarded the request.
	LISPSEC string
	// LISPSECKey is the ITR's key shared with its Map-Resolvers (Secret
	// nil when not configured).
	LISPSECKey LISPSECKey
	// SourceRLOCChecks are the instance IDs whose decapsulated packets
	// must come from an RLOC that vouches for them (anti-spoofing, RFC
	// 9300 §8); the others take any outer source.
	SourceRLOCChecks []SourceRLOCCheck
}

// SourceRLOCCheck checks the outer source of the packets decapsulated in
// one instance ID: it must lie in RLOCPrefixes or, with MapCache, be a
// locator of the map-cache entry covering the inner source.
type SourceRLOCCheck struct {
	InstanceID   uint32
	MapCache     bool // default true
	RLOCPrefixes []netip.Prefix
}

// VRF is the Linux VRF of one instance ID.
type VRF struct {
	InstanceID uint32
	Name       string   // VRF device name
	Table      uint32   // routing table of the VRF
	Interfaces []string // EID interfaces moved into the VRF
	EIDRoutes  []netip.Prefix
}

// Data-plane kinds.
const (
	DataPlaneAuto      = "auto"
	DataPlaneKernel    = "kernel"
	DataPlaneUserspace = "userspace"
	DataPlaneNone      = "none"
	DefaultDataPort    = wire.DataPort
	DefaultUnderlayMTU = 1500
)

// MapServerPeer is a Map-Server the ETR registers with.
type MapServerPeer struct {
	Address       netip.Addr
	KeyID         uint8
	Algorithm     wire.AuthAlg
	Secret        []byte
	SecretFile    string // path the secret was read from, resolved; "" when inline
	ProxyReply    bool   // ask the Map-Server to answer Map-Requests for us
	WantMapNotify bool   // ask for a Map-Notify for every Map-Register (default true)
}

// DatabaseEntry is a local EID prefix and the locators that reach it.
type DatabaseEntry struct {
	EID
	Locators []Locator
}

// Locator is one RLOC of a database entry: a fixed address or the current
// address of an interface (exactly one of the two is set).
type Locator struct {
	Address   netip.Addr
	Interface string
	Priority  uint8
	Weight    uint8
	MPriority uint8
	MWeight   uint8
}

// NATTraversal configures an ETR's NAT discovery: an Info-Request to each
// Map-Server from each local RLOC at start, when the RLOCs change, and
// every InfoInterval.
type NATTraversal struct {
	Enabled      bool
	InfoInterval time.Duration
}

// DefaultInfoInterval is how often an ETR repeats its NAT discovery.
const DefaultInfoInterval = time.Minute

// RLOCProbing configures RLOC-probing (RFC 9301 §7.1).
type RLOCProbing struct {
	Interval time.Duration // 0 disables probing
}

// MapCache bounds the ITR map-cache.
type MapCache struct {
	MaxEntries int
}

// Dynamic-EID modes.
const (
	ModeAcrossSubnet   = "across-subnet"   // the dynamic-EID prefix is not the EID interface's subnet
	ModeExtendedSubnet = "extended-subnet" // the subnet stretches across sites
)

// DynamicEID is a range of EIDs that may move to and away from this xTR.
type DynamicEID struct {
	Name        string
	EID                    // instance-id (default 0) and prefix
	Interface   string     // where arriving EIDs are detected
	Mode        string     // ModeAcrossSubnet (default) or ModeExtendedSubnet
	NotifyGroup netip.Addr // multicast group told of moves; invalid when not configured
	// Locators a detected host is registered with; empty: those of the
	// database entry covering the range, else of the first database entry
	// of its instance ID.
	Locators []Locator
	// Timeout: a host silent this long (no traffic, no ARP answer) is
	// unregistered.
	Timeout time.Duration
	// MaxHosts caps the hosts of the range registered at once: every
	// one is a record at the Map-Servers and a route here, and a LAN may
	// show endless addresses.
	MaxHosts int
	// GroupKey signs and verifies the notify group's Map-Notifies: any
	// host of the LAN can send to the group, so an unsigned claim is
	// dropped. Required with NotifyGroup; nil without one.
	GroupKey *Key
	// GroupPeers are the xTRs whose claims are accepted; empty: any
	// address of a subnet configured on Interface (on-link).
	GroupPeers []netip.Addr
	// GroupMaxAdopted caps the hosts adopted on a group claim alone
	// (not yet seen here) at once; GroupAdoptRate is how many a second
	// may be adopted (burst as many). Both bound what a peer holding
	// the key can make us register.
	GroupMaxAdopted int
	GroupAdoptRate  int
}

// DefaultDynamicEIDTimeout is how long a detected host may stay silent.
const DefaultDynamicEIDTimeout = 3 * time.Minute

// DefaultDynamicEIDMaxHosts is how many hosts a dynamic-EID range
// registers at most: room for a few thousand roaming VMs, each a /32.
const DefaultDynamicEIDMaxHosts = 8192

// Defaults of the notify group's adoption limits: an xTR of the same site
// normally also sees the hosts itself (data, ARP), so adoption only
// speeds that up and needs no room for every host.
const (
	DefaultGroupMaxAdopted = 1024
	DefaultGroupAdoptRate  = 10
)

// PITR turns the Proxy-ITR role on (RFC 6832).
type PITR struct {
	EIDPrefixes []netip.Prefix // prefixes attracted from non-LISP sites
}

// RTR turns on the Re-encapsulating Tunnel Router's control plane for
// xTRs behind NAT (draft-ietf-lisp-nat-traversal §5.3).
type RTR struct {
	// MapServers are where it relays the NATed xTRs' Map-Registers, and
	// the only sources of the Map-Notifies it takes.
	MapServers []netip.Addr
	// RegistrationTimeout is how long an xTR is served after its last
	// accepted registration.
	RegistrationTimeout time.Duration
	// MapServerKeys are the keys shared with Map-Servers: a Map-Notify
	// from one of them must carry MS-RTR authentication data that
	// verifies with its key (draft-ietf-lisp-nat-traversal §5.3).
	MapServerKeys []MSRTRKey
}

// DefaultRTRRegistrationTimeout is the RTR's default registration-timeout.
const DefaultRTRRegistrationTimeout = 3 * time.Minute

// PETR turns the Proxy-ETR role on (RFC 6832).
type PETR struct {
	// AllowedSourceEIDs are the inner sources the PETR relays, per
	// instance ID: the EID prefixes of the sites it serves. Empty: it
	// relays nothing (RFC 6832 §4.2: a PETR must not forward spoofed
	// sources).
	AllowedSourceEIDs []EID
}
