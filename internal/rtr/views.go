package rtr

import (
	"encoding/hex"

	"github.com/lispd/lispd/internal/adminapi"
)

// View returns the NATed xTRs for the admin API (lispctl show rtr).
func (s *Server) View() []adminapi.NATedXTR {
	xs := s.XTRs()
	out := make([]adminapi.NATedXTR, 0, len(xs))
	for _, x := range xs {
		v := adminapi.NATedXTR{XTRID: hex.EncodeToString(x.XTRID[:]), SiteID: x.SiteID, Private: x.Private,
			Translated: x.Translated, MapServer: x.MapServer, EIDs: make([]adminapi.EID, 0, len(x.EIDs)), State: "pending",
			LastRegister: x.LastReg, Registers: x.Registers, Notifies: x.Notifies,
			PacketsToXTR: x.PacketsTo, PacketsFromXTR: x.PacketsFrom}
		if x.Verified {
			v.State = "verified"
			exp := x.Expires
			v.Expires = &exp
		}
		for _, e := range x.EIDs {
			v.EIDs = append(v.EIDs, adminapi.EID{InstanceID: e.IID, EIDPrefix: e.Prefix})
		}
		out = append(out, v)
	}
	return out
}
