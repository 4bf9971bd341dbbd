package mapserver

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/mapping"
)

// LocatorView is a locator as the admin API shows it.
type LocatorView struct {
	Address   string `json:"address"`
	Priority  uint8  `json:"priority"`
	Weight    uint8  `json:"weight"`
	MPriority uint8  `json:"m-priority"`
	MWeight   uint8  `json:"m-weight"`
	State     string `json:"state"`
}

// RegisteredBy is one xTR's registration of a prefix.
type RegisteredBy struct {
	Source       string        `json:"source"`
	XTRID        string        `json:"xtr-id,omitempty"`
	SiteID       uint64        `json:"site-id,omitempty"`
	LastRegister time.Time     `json:"last-register"`
	ExpiresIn    float64       `json:"expires-in-seconds"`
	ProxyReply   bool          `json:"proxy-reply"`
	WantNotify   bool          `json:"want-map-notify"`
	Merge        bool          `json:"merge"`
	TTL          uint32        `json:"ttl-minutes"`
	Locators     []LocatorView `json:"locators"`
}

// RegistrationView is a registered EID prefix.
type RegistrationView struct {
	InstanceID   uint32         `json:"instance-id"`
	EIDPrefix    string         `json:"eid-prefix"`
	Locators     []LocatorView  `json:"locators"`
	RegisteredBy []RegisteredBy `json:"registered-by"`
	Moves        uint32         `json:"moves"`               // times another site took the prefix over
	LastMove     *time.Time     `json:"last-move,omitempty"` // nil before the first move
}

// SiteView is a site with its registrations, for `lispctl show site`.
type SiteView struct {
	Name          string             `json:"name"`
	Description   string             `json:"description,omitempty"`
	EIDPrefixes   []string           `json:"eid-prefixes"`
	AuthFailures  uint64             `json:"auth-failures"`
	Registers     uint64             `json:"registers"`
	LastRegister  *time.Time         `json:"last-register,omitempty"`
	Registrations []RegistrationView `json:"registrations"`
}

func locViews(ls []mapping.Locator) []LocatorView {
	out := make([]LocatorView, len(ls))
	for i, l := range ls {
		st := "up"
		if !l.Reachable() {
			st = "down"
		}
		out[i] = LocatorView{Address: l.Addr.String(), Priority: l.Priority, Weight: l.Weight,
			MPriority: l.MPriority, MWeight: l.MWeight, State: st}
	}
	return out
}

// Sites returns every site (or only name, if given) with its live registrations.
func (s *Server) Sites(name string) []SiteView {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	nowNs := now.UnixNano()
	views := map[*site]*SiteView{}
	var order []*site
	for _, st := range s.sites {
		if name != "" && st.cfg.Name != name {
			continue
		}
		v := &SiteView{Name: st.cfg.Name, Description: st.cfg.Description, AuthFailures: st.authFailures,
			Registers: st.registers, Registrations: []RegistrationView{}}
		if !st.lastRegister.IsZero() {
			t := st.lastRegister
			v.LastRegister = &t
		}
		for _, p := range st.cfg.Prefixes {
			ps := p.EID.String()
			if p.AcceptMoreSpecifics {
				ps += " (accept-more-specifics)"
			}
			v.EIDPrefixes = append(v.EIDPrefixes, ps)
		}
		views[st] = v
		order = append(order, st)
	}
	for eid, r := range s.regs.All() {
		v, ok := views[r.site]
		if !ok {
			continue
		}
		rv := RegistrationView{InstanceID: eid.IID, EIDPrefix: eid.Prefix.String(), Locators: locViews(r.merged(nowNs)),
			Moves: s.moved[eid].moves}
		if rv.Moves > 0 {
			t := time.Unix(0, s.moved[eid].last)
			rv.LastMove = &t
		}
		for _, e := range r.etrs {
			if e.expires <= nowNs {
				continue
			}
			rb := RegisteredBy{Source: e.src.String(), LastRegister: time.Unix(0, e.last),
				ExpiresIn: float64(e.expires-nowNs) / 1e9, ProxyReply: e.flags&flagProxy != 0,
				WantNotify: e.flags&flagWantNotify != 0, Merge: e.flags&flagMerge != 0, TTL: e.ttl,
				Locators: locViews(e.locators)}
			if e.flags&flagXTRID != 0 {
				rb.XTRID, rb.SiteID = hex.EncodeToString(e.xtrID[:]), e.siteID
			}
			rv.RegisteredBy = append(rv.RegisteredBy, rb)
		}
		v.Registrations = append(v.Registrations, rv)
	}
	slices.SortFunc(order, func(a, b *site) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	out := make([]SiteView, 0, len(order))
	for _, st := range order {
		v := views[st]
		slices.SortFunc(v.Registrations, func(a, b RegistrationView) int {
			if a.InstanceID != b.InstanceID {
				return int(a.InstanceID) - int(b.InstanceID)
			}
			return strings.Compare(a.EIDPrefix, b.EIDPrefix)
		})
		out = append(out, *v)
	}
	return out
}

// SubscriptionView is one subscriber of one prefix.
type SubscriptionView struct {
	InstanceID uint32   `json:"instance-id"`
	EIDPrefix  string   `json:"eid-prefix"`
	XTRID      string   `json:"xtr-id"`
	SiteID     uint64   `json:"site-id"`
	Site       string   `json:"site"`
	ITRRLOCs   []string `json:"itr-rlocs"`
	Nonce      string   `json:"nonce"`
}

// Subscriptions lists the pub/sub subscribers.
func (s *Server) Subscriptions() []SubscriptionView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []SubscriptionView{}
	for eid, subs := range s.subs.All() {
		for _, sub := range subs {
			v := SubscriptionView{InstanceID: eid.IID, EIDPrefix: eid.Prefix.String(),
				XTRID: hex.EncodeToString(sub.xtrID[:]), SiteID: sub.siteID, Site: sub.site.cfg.Name,
				Nonce: fmt.Sprintf("%#x", sub.nonce)}
			for _, a := range sub.rlocs {
				v.ITRRLOCs = append(v.ITRRLOCs, a.String())
			}
			out = append(out, v)
		}
	}
	return out
}

// Registrations is the number of registered EID prefixes.
func (s *Server) Registrations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regs.Len()
}
