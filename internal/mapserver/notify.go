package mapserver

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// pendingNotify is an unsolicited Map-Notify waiting for its Map-Notify-Ack.
type pendingNotify struct {
	n        *wire.MapNotify // to sign again when a reload changes the key
	site     string          // whose key signs it
	msg      []byte
	key      Key
	src      netip.Addr
	dst      netip.AddrPort
	via      netip.AddrPort // the RTR it goes through (relay.go); zero: direct
	tries    int
	next     int64
	onGiveUp func()
	// moved are the EIDs a "moved" Map-Notify tells its xTR it lost:
	// until the xTR acknowledges it, that xTR's registrations of them are
	// stale (Server.leaving).
	moved []mapping.EID
}

// unpendLocked ends the wait for the ack of the Map-Notify with nonce:
// acknowledged, given up, or unverifiable after a reload.
func (s *Server) unpendLocked(nonce uint64) {
	p, ok := s.pending[nonce]
	if !ok {
		return
	}
	delete(s.pending, nonce)
	for _, eid := range p.moved {
		ls := slices.DeleteFunc(s.leaving[eid], func(l leaving) bool { return l.p == p })
		if len(ls) == 0 {
			delete(s.leaving, eid)
		} else {
			s.leaving[eid] = ls
		}
	}
}

// Retransmission schedule of unsolicited Map-Notifies (RFC 9301 §5.7):
// three retransmissions at the base interval, then three more doubling it
// (with 3 s: at 3, 6, 9, 15, 27 and 51 s), then a last doubled wait for
// the ack before giving up (99 s).
const notifySends = 7

// notifyWait is how long to wait for an ack after the sends-th send.
func notifyWait(base time.Duration, sends int) time.Duration {
	return base << max(0, sends-3)
}

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

// sendUnsolicitedLocked signs and sends n to dst, through the RTR at via
// when that is valid, and keeps it for retransmission until a
// Map-Notify-Ack with its nonce arrives.
func (s *Server) sendUnsolicitedLocked(n *wire.MapNotify, key Key, site string, src netip.Addr, dst, via netip.AddrPort) *pendingNotify {
	b, err := wire.EncodeSigned(n, key.Secret, s.opts.Auth)
	if err != nil {
		s.log.Warn("cannot encode Map-Notify", "err", err)
		return nil
	}
	p := &pendingNotify{n: n, site: site, msg: b, key: key, src: src, dst: dst, via: via, tries: 1,
		next: s.now() + int64(notifyWait(s.opts.NotifyRetransmit, 1))}
	s.pending[n.Nonce] = p
	s.c.notifySent.Inc()
	s.sendPendingLocked(p)
	return p
}

// sendPendingLocked sends (again) an unsolicited Map-Notify: directly, or
// for an xTR behind NAT in an ECM to the RTR its registration came
// through, signed with the key we share with that RTR as it is now (a
// reload may have changed it between retransmissions).
func (s *Server) sendPendingLocked(p *pendingNotify) {
	if !p.via.IsValid() {
		s.opts.Sender.Send(p.msg, p.src, p.dst)
		return
	}
	key, keyed := s.opts.RTRKeys[p.via.Addr()]
	s.sendToRTR(s.opts.Sender, p.msg, p.src, p.dst, p.via, key, keyed)
}

func (s *Server) retransmitLocked(now int64) {
	for nonce, p := range s.pending {
		if p.next > now {
			continue
		}
		if p.tries >= notifySends {
			s.unpendLocked(nonce)
			s.c.notifyGiveUp.Inc()
			s.log.Info("Map-Notify never acknowledged", "to", p.dst, "nonce", nonce)
			if p.onGiveUp != nil {
				p.onGiveUp()
			}
			continue
		}
		p.tries++
		p.next = now + int64(notifyWait(s.opts.NotifyRetransmit, p.tries))
		s.c.notifyRetrans.Inc()
		s.sendPendingLocked(p)
	}
}

// resignPendingLocked brings the unacknowledged Map-Notifies in line
// with reloaded keys: one whose site or key is gone is dropped (nobody
// could verify it), one whose key changed is signed again with the new
// one, so that retransmissions after a key rotation verify.
func (s *Server) resignPendingLocked() {
	for nonce, p := range s.pending {
		st, ok := s.sites[p.site]
		var key Key
		if ok {
			key, ok = st.key(p.key.ID)
		}
		if !ok {
			s.unpendLocked(nonce)
			continue
		}
		if key.Alg == p.key.Alg && bytes.Equal(key.Secret, p.key.Secret) {
			continue
		}
		p.n.Algorithm = key.Alg
		b, err := wire.EncodeSigned(p.n, key.Secret, s.opts.Auth)
		if err != nil {
			s.unpendLocked(nonce)
			continue
		}
		p.msg, p.key = b, key
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
	s.unpendLocked(m.Nonce)
	s.c.ackRecv.Inc()
	return control.Handled
}

// PendingNotifies is the number of unacknowledged unsolicited Map-Notifies.
func (s *Server) PendingNotifies() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}
