// Package render turns decoded LISP packets into what lispctl shows: a typed
// view with the JSON keys of the user-interface contract (lower-case,
// hyphenated; see docs/interfaces.md) and a multi-line text view built
// from the same values, so that --json and --verbose never disagree.
//
// It only reads package wire's types; it never decodes bytes itself except
// for the one-line summary of the IP packet inside a LISP data packet.
package render

// Packet is one LISP datagram: a control message (UDP 4342), a data packet
// (UDP 4341), or a message given as hex. It is one element of
// `lispctl decode --json`.
//
// Keys whose value is absent for this kind of packet are omitted; "frame"
// and "type" are always present. Lists a message type has ("flags",
// "records", "locators", "itr-rlocs", "eid-prefixes") are present even
// when empty, so that consumers need not test for them.
type Packet struct {
	Frame     int    `json:"frame"`               // pcap record number, 1-based as in tshark
	Time      string `json:"time,omitempty"`      // capture time, RFC 3339 in UTC
	Src       string `json:"src,omitempty"`       // outer "address:port"
	Dst       string `json:"dst,omitempty"`       // outer "address:port"
	Length    int    `json:"length"`              // UDP payload bytes
	Truncated bool   `json:"truncated,omitempty"` // the capture holds fewer bytes than the UDP length says
	*Message
	DataHeader  *DataHeader `json:"data-header,omitempty"`  // data packets only
	InnerPacket *IPSummary  `json:"inner-packet,omitempty"` // data packets only
	Error       string      `json:"error,omitempty"`        // why decoding failed (names message, field, offset)
	Summary     string      `json:"summary,omitempty"`      // the one-line, tcpdump-like view

	// Raw is the UDP payload, kept for the hex dump of a packet that failed
	// to decode. It may alias a capture buffer: use it before reading on.
	Raw []byte `json:"-"`
}

// Failed reports whether the packet did not decode.
func (p *Packet) Failed() bool { return p.Error != "" }

// Message is a control message. Its fields are a union over all message
// types; only those the type carries are set. ECM nests its inner message.
type Message struct {
	Type  string   `json:"type"`            // "Map-Request", "Info-Reply", "ECM", "Data", ...
	Nonce string   `json:"nonce,omitempty"` // "0x" and 16 hex digits (6 for data packets)
	Flags []string `json:"flags,omitzero"`  // header flags that are set, spelled out: "want-map-notify"

	// Map-Request.
	SourceEID   string          `json:"source-eid,omitempty"`
	ITRRLOCs    []string        `json:"itr-rlocs,omitzero"`
	EIDPrefixes []RequestRecord `json:"eid-prefixes,omitzero"`
	Mapping     *Record         `json:"mapping,omitempty"` // the requester's own mapping (M bit)

	// Map-Register, Map-Notify, Map-Notify-Ack, Info.
	KeyID     *uint8 `json:"key-id,omitempty"`
	Algorithm string `json:"algorithm,omitempty"` // "hmac-sha-256-128", "none", "alg-7"
	AuthData  string `json:"auth-data,omitempty"` // hex

	// Map-Reply, Map-Register, Map-Notify, Map-Notify-Ack, Map-Referral.
	Records []Record `json:"records,omitzero"`

	// xTR-ID and Site-ID (Map-Request, Map-Register, Map-Notify, Map-Notify-Ack with the I bit).
	XTRID  string  `json:"xtr-id,omitempty"` // 32 hex digits
	SiteID *uint64 `json:"site-id,omitempty"`

	// Info-Request / Info-Reply.
	TTLMinutes *uint32 `json:"ttl-minutes,omitempty"`
	EIDPrefix  string  `json:"eid-prefix,omitempty"`
	InstanceID *uint32 `json:"instance-id,omitempty"`
	NATAddress string  `json:"nat-address,omitempty"`

	// ECM.
	InnerSrc          string   `json:"inner-src,omitempty"` // "address:port" of the inner IP/UDP header
	InnerDst          string   `json:"inner-dst,omitempty"`
	InnerChecksumsBad bool     `json:"inner-checksums-bad,omitempty"`
	Inner             *Message `json:"inner,omitempty"`

	// LISP-SEC data (Map-Reply and ECM with the S bit), hex, and decoded
	// when it decodes.
	SecurityAD string   `json:"security-ad,omitempty"`
	LISPSEC    *LISPSEC `json:"lisp-sec,omitempty"`

	// Shared-Extension and unassigned types.
	SubType *uint16 `json:"sub-type,omitempty"`
	Data    string  `json:"data,omitempty"` // hex body

	// Bytes after the last field that the decoder kept (OOR's Map-Request), hex.
	Trailing string `json:"trailing,omitempty"`
}

// Record is an EID-record (mapping record) of a Map-Reply, Map-Register,
// Map-Notify, Map-Notify-Ack or Map-Referral.
type Record struct {
	InstanceID    uint32    `json:"instance-id"`
	EIDPrefix     string    `json:"eid-prefix"`  // "198.51.100.0/24", or another family's text
	TTLMinutes    uint32    `json:"ttl-minutes"` // record TTL is in minutes on the wire
	Action        string    `json:"action"`      // "no-action", ...; Map-Referral: "ms-ack", ...
	Authoritative bool      `json:"authoritative"`
	Incomplete    bool      `json:"incomplete,omitempty"` // Map-Referral only
	MapVersion    uint16    `json:"map-version"`
	Locators      []Locator `json:"locators"` // empty for a negative record
	Signatures    int       `json:"signatures,omitempty"`
}

// Locator is an RLOC-record (or, in a Map-Referral, a referral address).
type Locator struct {
	Address   string `json:"address"`
	Priority  uint8  `json:"priority"`
	Weight    uint8  `json:"weight"`
	MPriority uint8  `json:"m-priority"`
	MWeight   uint8  `json:"m-weight"`
	Local     bool   `json:"local"`
	Probed    bool   `json:"probed"`
	Reachable bool   `json:"reachable"`
}

// RequestRecord is one EID asked for in a Map-Request.
type RequestRecord struct {
	InstanceID uint32 `json:"instance-id"`
	EIDPrefix  string `json:"eid-prefix"`
	Subscribe  bool   `json:"subscribe"` // N bit, RFC 9437
}

// DataHeader is the 8-byte LISP data header (RFC 9300 §5.3, RFC 9305).
// Fields a flag makes meaningful are present only when the flag is set.
type DataHeader struct {
	Flags            []string `json:"flags"`                        // "nonce-present", "instance-id-present", ...
	Nonce            string   `json:"nonce,omitempty"`              // "0x" and 6 hex digits (N)
	SourceMapVersion *uint16  `json:"source-map-version,omitempty"` // V
	DestMapVersion   *uint16  `json:"dest-map-version,omitempty"`   // V
	NextProtocol     *uint8   `json:"next-protocol,omitempty"`      // P (LISP-GPE)
	InstanceID       *uint32  `json:"instance-id,omitempty"`        // I
	LSB              *uint32  `json:"lsb,omitempty"`                // L: locator-status-bits (8 of them when I is set)
	KeyID            uint8    `json:"key-id,omitempty"`             // KK (lisp-crypto)
}

// IPSummary describes the packet inside a LISP data packet.
type IPSummary struct {
	Version  int    `json:"version,omitempty"`  // 4 or 6
	Src      string `json:"src,omitempty"`      // address
	Dst      string `json:"dst,omitempty"`      // address
	Protocol string `json:"protocol,omitempty"` // "udp", "icmp", or the number
	Length   int    `json:"length"`             // from the IP header; else the bytes present
	Note     string `json:"note,omitempty"`     // why the rest is missing (not IP, cut short)
}

// LISPSEC is LISP-SEC Authentication Data (RFC 9303 §6.1, §6.2): the OTK
// fields of an ECM's, the EID-AD of both, the PKT-AD of a Map-Reply's.
type LISPSEC struct {
	RequestedHMAC string `json:"requested-hmac,omitempty"` // ECM
	KeyID         *uint8 `json:"key-id,omitempty"`         // ECM
	OTKWrap       string `json:"otk-wrap,omitempty"`       // ECM
	OTK           string `json:"otk,omitempty"`            // ECM: preamble and wrapped key, hex
	KDF           string `json:"kdf"`
	ETRCantSign   bool   `json:"etr-cant-sign,omitempty"`
	EIDHMAC       string `json:"eid-hmac-id,omitempty"`
	// Authorized are the EID-AD's prefixes, "[iid]prefix/len".
	Authorized []string `json:"authorized,omitempty"`
	EIDHMACHex string   `json:"eid-hmac,omitempty"`
	PKTHMAC    string   `json:"pkt-hmac-id,omitempty"` // Map-Reply
	PKTHMACHex string   `json:"pkt-hmac,omitempty"`    // Map-Reply
}
