package xtr

import (
	"net/netip"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/mapping"
)

// event publishes e about eid on the event bus, if there is one.
func (s *Server) event(e adminapi.Event, eid mapping.EID) {
	if s.opts.Events == nil {
		return
	}
	e.InstanceID, e.EIDPrefix = eid.IID, eid.Prefix
	s.opts.Events.Publish(e)
}

// locatorAddrs lists the locators' addresses, for an event.
func locatorAddrs(ls []mapping.Locator) []netip.Addr {
	out := make([]netip.Addr, len(ls))
	for i, l := range ls {
		out[i] = l.Addr
	}
	return out
}

// sameLocators reports whether a and b are the same locator set in the
// same order: a refresh that changes nothing is no event.
func sameLocators(a, b []mapping.Locator) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Addr != b[i].Addr || a[i].Priority != b[i].Priority || a[i].Weight != b[i].Weight {
			return false
		}
	}
	return true
}
