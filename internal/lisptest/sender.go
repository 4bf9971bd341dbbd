package lisptest

import (
	"net/netip"
	"sync"
)

// Sent is one control message a role handed to its sender.
type Sent struct {
	B   []byte         // the message (a copy)
	Src netip.Addr     // the local address it was to leave from; may be invalid
	To  netip.AddrPort // where it was going
}

// Sender records the control messages a role sends instead of sending
// them. It is safe for concurrent use.
type Sender struct {
	mu   sync.Mutex
	msgs []Sent
}

// Send records b, copied, with its addresses.
func (s *Sender) Send(b []byte, src netip.Addr, to netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, Sent{B: append([]byte(nil), b...), Src: src, To: to})
}

// Take returns what was sent since the last Take and forgets it.
func (s *Sender) Take() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs
	s.msgs = nil
	return m
}

// Len is the number of messages not yet taken.
func (s *Sender) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// All returns what was sent and not yet taken, and keeps it.
func (s *Sender) All() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.msgs...)
}
