package adminapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PathEvents streams the daemon's events as they happen: one JSON Event
// per line (application/x-ndjson), or server-sent events when the client
// accepts text/event-stream (a browser's EventSource).
const PathEvents = "/v1/events"

// Query keys of PathEvents.
const (
	KeyType    = "type"    // comma-separated event types or families (EventQuery.Types)
	KeyHistory = "history" // how many recent events to send first (default 0)
)

// Event types. A family is the part before the first '-' ("locator"
// selects locator-up and locator-down).
const (
	EventRegistered          = "registration-new"       // Map-Server: a prefix registered for the first time
	EventRegistrationMoved   = "registration-moved"     // Map-Server: another site or site-ID took the prefix over
	EventRegistrationChanged = "registration-changed"   // Map-Server: the merged locator set changed
	EventWithdrawn           = "registration-withdrawn" // Map-Server: an xTR withdrew the prefix
	EventExpired             = "registration-expired"   // Map-Server: no xTR refreshed it in time
	EventPublication         = "publication"            // Map-Server: a Map-Notify to a subscriber (RFC 9437)
	EventAuthFailure         = "auth-failure"           // Map-Server: a Map-Register failed authentication (rate-limited)
	EventMapCacheInstall     = "map-cache-install"      // ITR: a mapping entered the map-cache
	EventMapCacheUpdate      = "map-cache-update"       // ITR: a cached mapping was replaced
	EventMapCacheExpire      = "map-cache-expire"       // ITR: a mapping timed out or was withdrawn
	EventLocatorUp           = "locator-up"             // ITR: a probed RLOC answers again
	EventLocatorDown         = "locator-down"           // ITR: a probed RLOC stopped answering
	EventSMRReceived         = "smr-received"           // ITR: a Solicit-Map-Request arrived
	EventSMRSent             = "smr-sent"               // ETR: SMRs sent after a database change
	EventHostMoved           = "host-moved"             // xTR: a dynamic-EID host of ours registered elsewhere
	EventHostDetected        = "host-detected"          // xTR: a dynamic-EID host appeared on one of our LANs (Reason: how)
	EventHostGone            = "host-gone"              // xTR: a dynamic-EID host went silent and was unregistered
	EventDrop                = "drop"                   // a control packet dropped (rate-limited; the counters count all)
	EventLost                = "events-lost"            // this stream fell behind and lost Count events
)

// EventTypes lists every event type, for filters and documentation.
var EventTypes = []string{
	EventRegistered, EventRegistrationMoved, EventRegistrationChanged, EventWithdrawn, EventExpired,
	EventPublication, EventAuthFailure, EventMapCacheInstall, EventMapCacheUpdate, EventMapCacheExpire,
	EventLocatorUp, EventLocatorDown, EventSMRReceived, EventSMRSent, EventHostMoved, EventHostDetected, EventHostGone,
	EventDrop, EventLost,
}

// Event is one thing that happened in the daemon. Seq orders the events of
// one daemon; fields that do not apply to the type are left out.
type Event struct {
	Seq        uint64       `json:"seq"`
	Time       time.Time    `json:"time"`
	Type       string       `json:"type"`
	InstanceID uint32       `json:"instance-id,omitempty"`
	EIDPrefix  netip.Prefix `json:"eid-prefix,omitzero"`
	Site       string       `json:"site,omitempty"`
	FromSite   string       `json:"from-site,omitempty"`
	// Peer is who the event concerns: the registering xTR, the
	// subscriber, the SMR's sender, the dropped packet's source.
	Peer     netip.Addr   `json:"peer,omitzero"`
	RLOC     netip.Addr   `json:"rloc,omitzero"`
	Locators []netip.Addr `json:"locators,omitempty"`
	RTTms    float64      `json:"rtt-ms,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Count    uint64       `json:"count,omitempty"`
	// Node names the daemon when lispctl monitor or a lab page merges the
	// streams of several; a daemon leaves it out.
	Node string `json:"node,omitempty"`
}

// String is the one-line text form lispctl monitor prints.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Time.Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteByte(' ')
	if e.Node != "" {
		b.WriteString(e.Node + ": ")
	}
	b.WriteString(e.Type)
	if e.EIDPrefix.IsValid() {
		b.WriteString(" eid=")
		if e.InstanceID != 0 {
			fmt.Fprintf(&b, "[%d]", e.InstanceID)
		}
		b.WriteString(e.EIDPrefix.String())
	}
	if e.FromSite != "" {
		b.WriteString(" from-site=" + e.FromSite)
	}
	if e.Site != "" {
		b.WriteString(" site=" + e.Site)
	}
	if e.Peer.IsValid() {
		b.WriteString(" peer=" + e.Peer.String())
	}
	if e.RLOC.IsValid() {
		b.WriteString(" rloc=" + e.RLOC.String())
	}
	if len(e.Locators) > 0 {
		b.WriteString(" locators=")
		for i, l := range e.Locators {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.String())
		}
	}
	if e.RTTms != 0 {
		b.WriteString(" rtt-ms=" + strconv.FormatFloat(e.RTTms, 'f', 3, 64))
	}
	if e.Reason != "" {
		b.WriteString(" reason=" + e.Reason)
	}
	if e.Count != 0 {
		b.WriteString(" count=" + strconv.FormatUint(e.Count, 10))
	}
	return b.String()
}

// EventQuery selects the events of a stream.
type EventQuery struct {
	// Types are event types or families; empty selects every event.
	Types []string
	// History is how many of the most recent events to send before the
	// live ones.
	History int
}

// maxHistory bounds EventQuery.History: the daemon keeps no more.
const maxHistory = 1024

// Selects reports whether q lets an event of type t through.
func (q EventQuery) Selects(t string) bool {
	if len(q.Types) == 0 || t == EventLost {
		return true
	}
	for _, want := range q.Types {
		if t == want || (strings.HasPrefix(t, want) && len(t) > len(want) && t[len(want)] == '-') {
			return true
		}
	}
	return false
}

// ParseEventTypes reads a comma-separated filter: each item an event type
// or a family (the part of types before '-'); an unknown one is an error.
func ParseEventTypes(s string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		known := false
		for _, t := range EventTypes {
			if t == item || strings.HasPrefix(t, item+"-") {
				known = true
				break
			}
		}
		if !known {
			return nil, fmt.Errorf("unknown event type %q (known: %s)", item, strings.Join(EventTypes, ", "))
		}
		out = append(out, item)
	}
	return out, nil
}

// ParseEventQuery reads the query of PathEvents.
func ParseEventQuery(v url.Values) (EventQuery, error) {
	var q EventQuery
	for _, s := range v[KeyType] {
		t, err := ParseEventTypes(s)
		if err != nil {
			return q, BadRequest("%v", err)
		}
		q.Types = append(q.Types, t...)
	}
	if s := v.Get(KeyHistory); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxHistory {
			return q, BadRequest("bad history %q: want a number from 0 to %d", s, maxHistory)
		}
		q.History = n
	}
	return q, nil
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	if len(q.Types) > 0 {
		v.Set(KeyType, strings.Join(q.Types, ","))
	}
	if q.History > 0 {
		v.Set(KeyHistory, strconv.Itoa(q.History))
	}
	return v
}

// Events streams the daemon's events that q selects to fn until ctx ends,
// fn returns an error, or the daemon closes the stream. It returns nil
// when ctx ended.
func (c *Client) Events(ctx context.Context, q EventQuery, fn func(Event) error) error {
	u := "http://lispd" + PathEvents
	if v := q.values(); len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	// The stream has no end: the client's whole-call timeout must not
	// apply, only ctx.
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach lispd at %s (is it running? --socket or LISPD_SOCKET): %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e ErrorBody
		msg := resp.Status
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return fmt.Errorf("lispd: %w", &Error{Status: resp.StatusCode, Msg: msg})
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue // keep-alive
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("lispd at %s: event stream: %w", c.socket, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("lispd at %s: event stream: %w", c.socket, err)
	}
	return fmt.Errorf("lispd at %s closed the event stream", c.socket)
}
