package mapserver

import (
	"net/netip"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// NAT discovery (draft-ietf-lisp-nat-traversal §4.1-4.2, §5.2). An xTR
// sends an Info-Request, signed with its site's key, to learn whether a NAT
// sits between it and us and which RTRs it may use. We answer with the
// source address and port the request carried on the wire (what the NAT
// made of the xTR's), the address and port it reached, and the RTRs of its
// site. The answer is signed with the same key: the xTR must not take an
// RTR list from anyone else, and nobody without the key learns the list.
// A replayed request gets its answer sent to the replayer's (spoofed)
// source, so Info-Replies pass the ReplyGuard's per-destination budget
// like Map-Replies.

// infoReject is why an Info-Request went unanswered; each is a counter.
type infoReject uint8

const (
	infoBadAuth infoReject = iota
	infoUnknownKey
	infoNoSite
	infoBadEID
	numInfoReject
)

var infoRejectLabels = [numInfoReject]string{"bad-auth", "unknown-key-id", "no-site", "bad-eid"}

// HandleInfoRequest is the Map-Server's control.Handler of Info-Requests.
// An Info-Reply (R set) is not for the Map-Server.
func (s *Server) HandleInfoRequest(r *control.Request, out control.Sender) control.DropReason {
	m, ok := r.Msg.(*wire.Info)
	if !ok || m.Reply {
		return control.DropUnexpectedType
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src := r.Src.Addr()
	eid, ok := mapping.FromWire(m.EID, m.MaskLen)
	if !ok {
		s.infoRejectLocked(infoBadEID, src, "Info-Request without an IP EID-prefix", nil)
		return control.Handled
	}
	var buf [4]*site
	cands := s.sitesFor(buf[:0], eid)
	if len(cands) == 0 {
		s.infoRejectLocked(infoNoSite, src, "Info-Request for an EID no site may register", eid)
		return control.Handled
	}
	st, key, tried := s.verifyLocked(r.Raw, m.KeyID, m.Algorithm, cands)
	if st == nil {
		reason := infoUnknownKey
		if tried {
			reason = infoBadAuth
		}
		s.infoRejectLocked(reason, src, "Info-Request failed authentication", eid)
		return control.Handled
	}
	reply := s.infoReply(m, st, key, r.Src, r.Local)
	b, err := reply.Append(s.scratch[:0])
	if err == nil {
		err = st.authenticator(key, s.opts.Auth).Sign(b)
	}
	if err != nil {
		s.log.Error("Info-Reply not encoded", "eid", eid, "err", err)
		return control.Handled
	}
	s.scratch = b
	out.Send(b, r.Local.Addr(), r.Src)
	s.c.infoReplies.Inc()
	return control.Handled
}

// infoReply builds the answer to m, which came from src (as translated by
// any NAT on the way) to our address local.
func (s *Server) infoReply(m *wire.Info, st *site, key Key, src, local netip.AddrPort) *wire.Info {
	rtrs := st.cfg.RTRs
	if len(rtrs) == 0 {
		rtrs = s.opts.RTRs
	}
	nat := &wire.NATTraversalLCAF{
		MSPort:    local.Port(),
		ETRPort:   src.Port(),
		GlobalETR: wire.AddrFromIP(src.Addr().Unmap()),
		// §4.2: the Map-Server does not know the xTR's private address.
		PrivateETR: wire.Address{},
		RTRs:       make([]wire.Address, 0, len(rtrs)),
	}
	// A wildcard socket learns the address each request reached; an
	// unknown one is left AFI 0 rather than named wrongly.
	if a := local.Addr().Unmap(); a.IsValid() && !a.IsUnspecified() {
		nat.MS = wire.AddrFromIP(a)
	}
	for _, a := range rtrs {
		nat.RTRs = append(nat.RTRs, wire.AddrFromIP(a))
	}
	return &wire.Info{
		Reply:      true,
		Nonce:      m.Nonce,
		KeyID:      key.ID,
		Algorithm:  key.Alg,
		AuthData:   make([]byte, key.Alg.DigestLen()),
		TTL:        s.opts.InfoTTL,
		MaskLen:    m.MaskLen,
		EID:        m.EID,
		NATAddress: wire.Address{AFI: wire.AFILCAF, LCAF: &wire.LCAF{Type: wire.LCAFNATTraversal, Body: nat}},
	}
}

func (s *Server) infoRejectLocked(why infoReject, src netip.Addr, msg string, eid any) {
	s.c.infoRejected[why].Inc()
	s.authFailLog(src, msg, eid)
}
