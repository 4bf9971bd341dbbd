package mapserver

import (
	"math/rand/v2"
	"net/netip"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/wire"
)

// pendingNotify is an unsolicited Map-Notify waiting for its Map-Notify-Ack.
type pendingNotify struct {
	msg      []byte
	key      Key
	src      netip.Addr
	dst      netip.AddrPort
	tries    int
	next     int64
	onGiveUp func()
}

// Retransmission schedule of unsolicited Map-Notifies (RFC 9301 §5.7):
// three tries at the base interval, then three more doubling it.
const notifyTries = 6

// newNonce numbers the Map-Server's own unsolicited Map-Notifies (a
// move, a merged locator set) upwards from the clock: an xTR drops one
// whose nonce does not exceed the last it took about the prefix (an old
// one replayed), so they must grow, across restarts too. The random step
// keeps the next one unguessable off-path.
func (s *Server) newNonce() uint64 {
	for {
		s.notifyNonce += 1 + rand.Uint64N(1<<20)
		if _, busy := s.pending[s.notifyNonce]; !busy {
			return s.notifyNonce
		}
	}
}

// sendUnsolicitedLocked signs and sends n, and keeps it for retransmission
// until a Map-Notify-Ack with its nonce arrives.
func (s *Server) sendUnsolicitedLocked(n *wire.MapNotify, key Key, src netip.Addr, dst netip.AddrPort) *pendingNotify {
	b, err := wire.EncodeSigned(n, key.Secret, s.opts.Auth)
	if err != nil {
		s.log.Warn("cannot encode Map-Notify", "err", err)
		return nil
	}
	p := &pendingNotify{msg: b, key: key, src: src, dst: dst, tries: 1,
		next: s.now() + int64(s.opts.NotifyRetransmit)}
	s.pending[n.Nonce] = p
	s.c.notifySent.Inc()
	s.opts.Sender.Send(b, src, dst)
	return p
}

func (s *Server) retransmitLocked(now int64) {
	for nonce, p := range s.pending {
		if p.next > now {
			continue
		}
		if p.tries >= notifyTries {
			delete(s.pending, nonce)
			s.c.notifyGiveUp.Inc()
			s.log.Info("Map-Notify never acknowledged", "to", p.dst, "nonce", nonce)
			if p.onGiveUp != nil {
				p.onGiveUp()
			}
			continue
		}
		wait := s.opts.NotifyRetransmit
		if p.tries >= 3 {
			wait <<= p.tries - 2
		}
		p.tries++
		p.next = now + int64(wait)
		s.c.notifyRetrans.Inc()
		s.opts.Sender.Send(p.msg, p.src, p.dst)
	}
}

// HandleMapNotifyAck is the Map-Server's control.Handler of
// Map-Notify-Acks: it stops the retransmission of the Map-Notify the ack
// names, after checking it is signed with the key that Map-Notify used.
func (s *Server) HandleMapNotifyAck(r *control.Request, _ control.Sender) control.DropReason {
	m, ok := r.Msg.(*wire.MapNotifyAck)
	if !ok {
		return control.DropUnexpectedType
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[m.Nonce]
	if !ok || m.KeyID != p.key.ID || wire.Verify(r.Raw, p.key.Secret, s.opts.Auth) != nil {
		s.c.ackUnknown.Inc()
		return control.Handled
	}
	delete(s.pending, m.Nonce)
	s.c.ackRecv.Inc()
	return control.Handled
}

// PendingNotifies is the number of unacknowledged unsolicited Map-Notifies.
func (s *Server) PendingNotifies() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}
