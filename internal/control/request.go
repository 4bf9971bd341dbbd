package control

import (
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// Sender sends one control message from local address src (invalid: any)
// to to. The batch a handler answers into (*Out) and the transport itself
// (timers: registrations, retransmissions, probes) both are one.
type Sender interface {
	Send(b []byte, src netip.Addr, to netip.AddrPort)
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(b []byte, src netip.Addr, to netip.AddrPort)

// Send implements Sender.
func (f SenderFunc) Send(b []byte, src netip.Addr, to netip.AddrPort) { f(b, src, to) }

// Request is one received control message on its way from the socket to the
// role that handles it. The transport fills in the datagram and its
// addresses; the dispatcher decodes it and fills in the rest. A Request and
// Raw are valid only during the handler call: both are reused.
type Request struct {
	Raw   []byte         // the datagram as received (for an ECM, the whole ECM)
	Src   netip.AddrPort // where it came from
	Local netip.AddrPort // our address and port it reached: answers come from that address

	// Msg is the decoded message; for an ECM, the Map-Request inside it.
	Msg wire.Message
	// ECM is the envelope Msg came in, or nil if it came bare.
	ECM *wire.ECM
	// ReplyTo is where the answer to an encapsulated Map-Request goes: an
	// ITR-RLOC and the port the ITR sent from (the inner UDP source).
	ReplyTo netip.AddrPort
}

// Handler handles one decoded control message, queuing any answer on out.
// It returns Handled when it took the message (answered it, or dropped it
// and counted that itself), else why the daemon should count it dropped.
type Handler func(r *Request, out Sender) DropReason

// Mux is the dispatch table: the handler of each message type.
type Mux struct {
	handlers [16]Handler // by the 4-bit message type
}

// Handle makes h the handler of messages of type t. Registering a type
// twice is a programming error and panics, as net/http's ServeMux does.
func (m *Mux) Handle(t wire.MessageType, h Handler) {
	if int(t) >= len(m.handlers) || h == nil {
		panic("control: bad handler registration for " + t.String())
	}
	if m.handlers[t] != nil {
		panic("control: two handlers for " + t.String())
	}
	m.handlers[t] = h
}

// Handler returns the handler of type t, or nil if no role takes it.
func (m *Mux) Handler(t wire.MessageType) Handler {
	if int(t) >= len(m.handlers) {
		return nil
	}
	return m.handlers[t]
}
