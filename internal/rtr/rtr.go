// Package rtr is the control plane of a Re-encapsulating Tunnel Router
// for xTRs behind NAT (draft-ietf-lisp-nat-traversal §5.3): it relays the
// ECM'd Map-Registers of NATed xTRs to their Map-Server, keeps for each
// xTR the address and port its NAT translated it to, and passes the
// Map-Server's Map-Notify back through that NAT state as a Data-Map-Notify.
//
// An xTR is served only once its Map-Server has accepted the registration
// (its Map-Notify, matched by xTR-ID and nonce): the RTR holds no site key,
// the Map-Server's answer is what authenticates the xTR. Relayed messages
// go only to the configured Map-Servers, and Map-Notifies are taken only
// from them, so the RTR relays nothing for anyone else. With a key shared
// with the Map-Server (MapServerKeys) its Map-Notifies must also carry
// MS-RTR authentication data that verifies (§4.4, §5.3): a source
// address alone is easy to forge.
//
// A Map-Server also sends unsolicited Map-Notifies for an xTR (its prefix
// moved to another site, a merged locator set) through the RTR its
// registration came through. Those match no relayed Map-Register's nonce,
// so only the MS-RTR AD vouches for them: they are passed on to a
// verified xTR of that Map-Server when it verifies, and dropped as a
// nonce mismatch without one (§5.3). They change nothing here: the xTR
// is served on what its own registrations say.
//
// Its data plane is the userspace engine's (internal/dataplane, rtr.go):
// the verified xTRs go to it through DataPlane, with a packet counter
// each way per xTR.
package rtr

import (
	"encoding/hex"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
	"github.com/lispd/lispd/wire"
)

// dataMapNotifyIID is the Instance ID of a Data-Map-Notify's LISP header
// (§5.3): what tells the xTR a control message rides in a data packet.
const dataMapNotifyIID = 0xffffff

// Options configure the RTR.
type Options struct {
	MapServers []netip.Addr // where relayed Map-Registers may go, whose Map-Notifies are taken
	// MapServerKeys are the keys shared with Map-Servers, by address: a
	// Map-Notify from one of them is taken only with the S bit and an
	// MS-RTR AD that verifies with its key. A Map-Server without one is
	// trusted on its address and the nonce match alone.
	MapServerKeys map[netip.Addr]wire.RTRKey
	// RegistrationTimeout is how long an xTR stays served after its last
	// accepted registration; default 3m (RFC 9301 §8.2's for Map-Servers).
	RegistrationTimeout time.Duration
	MaxXTRs             int // default 10000; past it new xTRs are refused
	Now                 func() time.Time
	Sender              control.Sender
	// DataPlane relays the verified xTRs' traffic; nil: control plane only.
	DataPlane DataPlane
	Stats     *stats.Registry
	Log       *slog.Logger
}

// DataPlane is what the RTR asks of a data plane: relay the traffic of
// these verified xTRs (replacing the previous set).
type DataPlane interface {
	SetNATedXTRs(xs []Forwarding)
}

// Forwarding is a verified xTR as its data plane needs it.
type Forwarding struct {
	EIDs       []mapping.EID
	Translated netip.AddrPort
	Local      netip.Addr
	// ToXTR and FromXTR are the packet counters the data plane adds to.
	ToXTR, FromXTR *atomic.Uint64
}

// NATedXTR is one xTR behind NAT the RTR serves or is about to.
type NATedXTR struct {
	XTRID      [16]byte
	SiteID     uint64
	Private    netip.AddrPort // the xTR's own RLOC and port (inner source of its Map-Register)
	Translated netip.AddrPort // as its NAT made it look to us: where we send to it
	Local      netip.Addr     // our address it used
	MapServer  netip.Addr
	EIDs       []mapping.EID
	Verified   bool // its Map-Server accepted the registration
	LastReg    time.Time
	Expires    time.Time // zero until verified
	Registers  uint64
	Notifies   uint64
	// PacketsTo and PacketsFrom are the data packets relayed to the xTR
	// and from it.
	PacketsTo, PacketsFrom uint64
}

type xtrState struct {
	NATedXTR
	to, from atomic.Uint64 // the data plane's counters
	nonce    uint64        // of the Map-Register awaiting its Map-Notify
	// pendingFrom is where that Map-Register came from and what it
	// registers: taken over once its Map-Notify comes.
	pendingFrom NATedXTR
}

// Server is the RTR control plane.
type Server struct {
	mu   sync.Mutex
	opts Options
	log  *slog.Logger
	xtrs map[[16]byte]*xtrState
	c    counters
	// authLogAt rate-limits the log line of refused Map-Notifies: once a
	// minute per Map-Server (only configured ones get that far).
	authLogAt map[netip.Addr]time.Time
}

type counters struct {
	relayed, notifies, dataMapNotifies, expired *stats.Counter
	probeReplies, unsolicited                   *stats.Counter
	drops                                       map[string]*stats.Counter
}

var dropReasons = []string{"not-to-map-server", "no-xtr-id", "bad-eid", "xtr-limit", "not-from-map-server", "unknown-xtr", "nonce-mismatch",
	"ms-rtr-auth-failed", "ms-rtr-auth-missing"}

// New builds the RTR.
func New(o Options) *Server {
	if o.RegistrationTimeout == 0 {
		o.RegistrationTimeout = 3 * time.Minute
	}
	if o.MaxXTRs == 0 {
		o.MaxXTRs = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sender == nil {
		o.Sender = control.SenderFunc(func([]byte, netip.Addr, netip.AddrPort) {})
	}
	if o.Stats == nil {
		o.Stats = stats.NewRegistry()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := func(name, help string, labels ...[2]string) *stats.Counter {
		return o.Stats.Counter(stats.Desc{Subsystem: "rtr", Name: name, Help: help, Labels: labels})
	}
	s := &Server{opts: o, log: o.Log.With("role", "rtr"), xtrs: map[[16]byte]*xtrState{}, authLogAt: map[netip.Addr]time.Time{}}
	s.c = counters{
		relayed:         c("map_registers_relayed", "ECM'd Map-Registers of NATed xTRs relayed to their Map-Server."),
		notifies:        c("map_notifies_received", "Map-Notifies from Map-Servers matched to a relayed Map-Register."),
		dataMapNotifies: c("data_map_notifies_sent", "Data-Map-Notifies sent to NATed xTRs."),
		expired:         c("xtrs_expired", "NATed xTRs no longer served: no accepted registration for registration-timeout."),
		probeReplies:    c("probe_replies_sent", "RLOC-probes answered for the EIDs of the NATed xTRs served."),
		unsolicited: c("unsolicited_map_notifies_relayed",
			"Unsolicited Map-Notifies (a moved prefix, a merged locator set) with a verifying MS-RTR AD passed on to a served NATed xTR."),
		drops: map[string]*stats.Counter{},
	}
	for _, r := range dropReasons {
		s.c.drops[r] = c("messages_dropped", "Control messages the RTR did not take, by reason.", [2]string{"reason", r})
	}
	return s
}

func (s *Server) drop(reason string) control.DropReason {
	s.c.drops[reason].Inc()
	return control.Handled
}

// HandleRegister takes an ECM'd Map-Register (R bit) from an xTR behind
// NAT: it records where the xTR came from and relays the Map-Register to
// the Map-Server the inner header names, in an ECM with the N bit.
func (s *Server) HandleRegister(r *control.Request, out control.Sender) control.DropReason {
	ecm, ok := r.Msg.(*wire.ECM)
	if !ok {
		return control.DropUnexpectedType
	}
	m, ok := ecm.Message.(*wire.MapRegister)
	if !ok || ecm.ForMS {
		// R, or (Open Overlay Router) no flag: for us; N is the
		// Map-Server's.
		return control.DropUnexpectedType
	}
	ms := ecm.IP.Dst.Unmap()
	if !slices.Contains(s.opts.MapServers, ms) || ecm.DstPort != wire.ControlPort {
		return s.drop("not-to-map-server")
	}
	if !m.HasXTRID || m.XTRID == ([16]byte{}) {
		return s.drop("no-xtr-id") // §5.1.1: the xTR must send one; it keys everything here
	}
	eids := make([]mapping.EID, 0, len(m.Records))
	for i := range m.Records {
		e, ok := mapping.FromWire(m.Records[i].EID, m.Records[i].MaskLen)
		if !ok {
			return s.drop("bad-eid")
		}
		eids = append(eids, e)
	}
	s.mu.Lock()
	st, ok := s.xtrs[m.XTRID]
	if !ok {
		if len(s.xtrs) >= s.opts.MaxXTRs {
			s.mu.Unlock()
			return s.drop("xtr-limit")
		}
		st = &xtrState{}
		st.XTRID = m.XTRID
		s.xtrs[m.XTRID] = st
	}
	// Unverified until the Map-Notify: it changes where we send only when
	// the Map-Server vouches for it (HandleNotify).
	st.nonce = m.Nonce
	st.SiteID, st.MapServer, st.LastReg = m.SiteID, ms, s.opts.Now()
	st.Registers++
	pending := NATedXTR{Private: netip.AddrPortFrom(ecm.IP.Src.Unmap(), ecm.SrcPort), Translated: r.Src, Local: r.Local.Addr(), EIDs: eids}
	st.pendingFrom = pending
	s.mu.Unlock()

	relay := &wire.ECM{ForMS: true, IP: wire.InnerIP{Src: ecm.IP.Src, Dst: ecm.IP.Dst, TTL: 64}, SrcPort: ecm.SrcPort,
		DstPort: ecm.DstPort, Message: m}
	b, err := relay.Append(nil)
	if err != nil {
		s.log.Error("relayed Map-Register not encoded", "xtr", r.Src, "err", err)
		return control.Handled
	}
	// The Map-Register's authentication covers its bytes as the xTR sent
	// them; re-encoding is byte-exact, so the Map-Server verifies them.
	out.Send(b, r.Local.Addr(), netip.AddrPortFrom(ms, wire.ControlPort))
	s.c.relayed.Inc()
	return control.Handled
}

// HandleNotify takes a Map-Server's ECM'd Map-Notify (R bit) for a NATed
// xTR: matched to the xTR's relayed Map-Register by xTR-ID and nonce, it
// makes the xTR served, and goes on to the xTR as a Data-Map-Notify
// through the address and port its NAT gave it, from the address it
// reached us at, port 4342 (the NAT state its Map-Register opened).
func (s *Server) HandleNotify(r *control.Request, out control.Sender) control.DropReason {
	ecm, ok := r.Msg.(*wire.ECM)
	if !ok {
		return control.DropUnexpectedType
	}
	n, ok := ecm.Message.(*wire.MapNotify)
	if !ok || !ecm.ForETR {
		return control.DropUnexpectedType
	}
	ms := r.Src.Addr().Unmap()
	if !slices.Contains(s.opts.MapServers, ms) {
		return s.drop("not-from-map-server")
	}
	reason, signed := s.checkAuth(r, ecm, n, ms)
	if reason != "" {
		s.authLog(ms, reason)
		return s.drop(reason)
	}
	s.mu.Lock()
	st, ok := s.xtrs[n.XTRID]
	switch {
	case !n.HasXTRID || !ok:
		s.mu.Unlock()
		return s.drop("unknown-xtr")
	case (st.nonce == 0 || st.nonce != n.Nonce) && signed && st.Verified && st.MapServer == ms:
		// Unsolicited (or a retransmission of one): the Map-Server
		// vouches for it with our key; it goes on to the xTR as it is.
		to, from := st.Translated, st.Local
		s.mu.Unlock()
		if s.sendDataMapNotify(out, ecm, from, to) {
			s.c.unsolicited.Inc()
		}
		return control.Handled
	case st.nonce == 0 || st.nonce != n.Nonce:
		s.mu.Unlock()
		return s.drop("nonce-mismatch")
	}
	now := s.opts.Now()
	p := st.pendingFrom
	if !st.Verified || st.Translated != p.Translated {
		s.log.Info("nated xtr", "xtr-id", hex.EncodeToString(st.XTRID[:]), "private", p.Private, "translated", p.Translated, "eids", p.EIDs)
	}
	// The data plane is reprogrammed only when what it forwards changes,
	// not at every refresh.
	changed := !st.Verified || st.Translated != p.Translated || st.Local != p.Local || !slices.Equal(st.EIDs, p.EIDs)
	st.Private, st.Translated, st.Local, st.EIDs = p.Private, p.Translated, p.Local, p.EIDs
	st.Verified, st.Expires, st.nonce = true, now.Add(s.opts.RegistrationTimeout), 0
	st.Notifies++
	to, from := st.Translated, st.Local
	if changed {
		s.programLocked()
	}
	s.mu.Unlock()
	s.c.notifies.Inc()
	s.sendDataMapNotify(out, ecm, from, to)
	return control.Handled
}

// sendDataMapNotify passes the Map-Notify ecm carries on to the xTR at
// to, from our address from: a LISP data header with Instance ID
// 0xFFFFFF, then the Map-Notify in its inner IP and UDP headers, as the
// ECM carried them (an ECM is a 4-byte header, and the MS-RTR AD, before
// those).
func (s *Server) sendDataMapNotify(out control.Sender, ecm *wire.ECM, from netip.Addr, to netip.AddrPort) bool {
	inner, err := ecm.Append(nil)
	if err != nil || len(inner) < 4+len(ecm.SecurityAD) {
		s.log.Error("Data-Map-Notify not encoded", "xtr", to, "err", err)
		return false
	}
	b := make([]byte, 8, 8+len(inner))
	h := wire.DataHeader(b)
	h.Put(wire.DataI, 0, 0)
	h.SetInstanceID(dataMapNotifyIID)
	b = append(b, inner[4+len(ecm.SecurityAD):]...)
	out.Send(b, from, to)
	s.c.dataMapNotifies.Inc()
	return true
}

// authLog logs a Map-Notify refused by the MS-RTR checks, at most once a
// minute per Map-Server: a flood of forged ones costs a counter.
func (s *Server) authLog(ms netip.Addr, reason string) {
	now := s.opts.Now()
	s.mu.Lock()
	due := now.Sub(s.authLogAt[ms]) >= time.Minute
	if due {
		s.authLogAt[ms] = now
	}
	s.mu.Unlock()
	if due {
		s.log.Warn("Map-Notify refused: MS-RTR authentication", "map-server", ms, "reason", reason)
	}
}

// checkAuth applies the MS-RTR authentication rules of §5.3 to a
// Map-Notify from the Map-Server ms: with S set its AD must verify with
// the key we share with ms (no key: it cannot, so it does not); with S
// clear ms must be one we share no key with, and then only the nonce
// match that follows vouches for it. reason is "" when the Map-Notify may
// go on, and signed then tells whether its AD verified.
func (s *Server) checkAuth(r *control.Request, ecm *wire.ECM, n *wire.MapNotify, ms netip.Addr) (reason string, signed bool) {
	key, keyed := s.opts.MapServerKeys[ms]
	if !ecm.Security {
		if keyed {
			return "ms-rtr-auth-missing", false
		}
		return "", false
	}
	ad, err := ecm.RTRAuthData()
	if err != nil || !keyed || n.Len() > len(r.Raw) {
		return "ms-rtr-auth-failed", false
	}
	// The MAC covers the encapsulated Map-Notify as received.
	if key.Verify(ad, r.Raw[len(r.Raw)-n.Len():]) != nil {
		return "ms-rtr-auth-failed", false
	}
	return "", true
}

// Tick ends the service of xTRs whose registration was not renewed.
func (s *Server) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	gone := false
	for id, st := range s.xtrs {
		if st.Verified && now.After(st.Expires) || !st.Verified && now.Sub(st.LastReg) > s.opts.RegistrationTimeout {
			delete(s.xtrs, id)
			if st.Verified {
				s.c.expired.Inc()
				gone = true
			}
		}
	}
	if gone {
		s.programLocked()
	}
}

// SetDataPlane hands the RTR its data plane (built after it) and
// programs it with the xTRs verified so far.
func (s *Server) SetDataPlane(dp DataPlane) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.DataPlane = dp
	s.programLocked()
}

// programLocked gives the data plane the verified xTRs.
func (s *Server) programLocked() {
	if s.opts.DataPlane == nil {
		return
	}
	fs := make([]Forwarding, 0, len(s.xtrs))
	for _, st := range s.xtrs {
		if st.Verified {
			fs = append(fs, Forwarding{EIDs: slices.Clone(st.EIDs), Translated: st.Translated, Local: st.Local, ToXTR: &st.to, FromXTR: &st.from})
		}
	}
	s.opts.DataPlane.SetNATedXTRs(fs)
}

// XTRs returns the NATed xTRs, verified or not, by xTR-ID.
func (s *Server) XTRs() []NATedXTR {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NATedXTR, 0, len(s.xtrs))
	for _, st := range s.xtrs {
		x := st.NATedXTR
		x.EIDs = slices.Clone(x.EIDs)
		x.PacketsTo, x.PacketsFrom = st.to.Load(), st.from.Load()
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b NATedXTR) int {
		for i := range a.XTRID {
			if a.XTRID[i] != b.XTRID[i] {
				return int(a.XTRID[i]) - int(b.XTRID[i])
			}
		}
		return 0
	})
	return out
}

// HandleProbe answers an RLOC-probe (a bare Map-Request with P) for an EID
// of a verified xTR: the Map-Server gave ITRs our RLOC for it, so we are
// the locator they probe (draft-ietf-lisp-nat-traversal §5.1.2). The
// reply names the xTR's prefix with our address as the one, probed,
// locator. ok is false when no verified xTR has the EID: not ours to
// answer.
func (s *Server) HandleProbe(r *control.Request, out control.Sender) (reason control.DropReason, ok bool) {
	m, isReq := r.Msg.(*wire.MapRequest)
	if !isReq || !m.Probe || r.ECM != nil || len(m.Records) == 0 {
		return control.DropUnexpectedType, false
	}
	eid, valid := mapping.FromWire(m.Records[0].EID, m.Records[0].MaskLen)
	if !valid {
		return control.DropUnexpectedType, false
	}
	local := r.Local.Addr().Unmap()
	var prefix mapping.EID
	found := false
	s.mu.Lock()
	for _, st := range s.xtrs {
		if !st.Verified {
			continue
		}
		for _, e := range st.EIDs {
			if e.IID == eid.IID && e.Prefix.Overlaps(eid.Prefix) && e.Prefix.Bits() <= eid.Prefix.Bits() {
				prefix, found = e, true
			}
		}
	}
	s.mu.Unlock()
	if !found {
		return control.DropUnexpectedType, false
	}
	to := r.Src
	for _, a := range m.ITRRLOCs {
		if ip, ok := a.Addr(); ok && ip.Is4() == local.Is4() && !ip.IsUnspecified() {
			to = netip.AddrPortFrom(ip, r.Src.Port())
			break
		}
	}
	mp := mapping.Mapping{EID: prefix, TTL: uint32(s.opts.RegistrationTimeout / time.Minute), Authoritative: true,
		Locators: []mapping.Locator{{Addr: local, Priority: 1, Weight: 100,
			Flags: wire.LocatorLocal | wire.LocatorReachable | wire.LocatorProbed}}}
	b, err := wire.Encode(&wire.MapReply{Probe: true, Nonce: m.Nonce, Records: []wire.EIDRecord{mp.Record()}})
	if err != nil {
		return control.Handled, true
	}
	out.Send(b, local, to)
	s.c.probeReplies.Inc()
	return control.Handled, true
}
