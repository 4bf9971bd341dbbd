package mapserver

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

// addrs lists the locators' addresses, for an event.
func addrs(ls []mapping.Locator) []netip.Addr {
	out := make([]netip.Addr, len(ls))
	for i, l := range ls {
		out[i] = l.Addr
	}
	return out
}
