package adminapi

import (
	"net/netip"
	"net/url"
	"testing"
	"time"
)

func TestEventQuery(t *testing.T) {
	q, err := ParseEventQuery(url.Values{KeyType: {"locator,registration-moved"}, KeyHistory: {"10"}})
	if err != nil {
		t.Fatal(err)
	}
	if q.History != 10 || len(q.Types) != 2 {
		t.Fatalf("%+v", q)
	}
	for typ, want := range map[string]bool{
		EventLocatorDown: true, EventLocatorUp: true, EventRegistrationMoved: true,
		EventRegistered: false, EventMapCacheInstall: false, EventLost: true, // a hole is always shown
	} {
		if q.Selects(typ) != want {
			t.Errorf("Selects(%s) = %v", typ, !want)
		}
	}
	if (EventQuery{}).Selects(EventDrop) != true {
		t.Error("an empty query refuses an event")
	}
	for _, bad := range []url.Values{{KeyType: {"locator-sideways"}}, {KeyType: {"loc"}}, {KeyHistory: {"-1"}}, {KeyHistory: {"100000"}}, {KeyHistory: {"x"}}} {
		if _, err := ParseEventQuery(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestEventString(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	e := Event{Time: at, Type: EventRegistrationMoved, InstanceID: 5, EIDPrefix: netip.MustParsePrefix("203.0.113.0/24"),
		Site: "dc2", FromSite: "dc1", Peer: netip.MustParseAddr("192.0.2.3"), Node: "ms"}
	want := "2026-01-02T03:04:05.006Z ms: registration-moved eid=[5]203.0.113.0/24 from-site=dc1 site=dc2 peer=192.0.2.3"
	if got := e.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	e = Event{Time: at, Type: EventLocatorUp, RLOC: netip.MustParseAddr("198.18.0.2"), RTTms: 1.25}
	if got, want := e.String(), "2026-01-02T03:04:05.006Z locator-up rloc=198.18.0.2 rtt-ms=1.250"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
