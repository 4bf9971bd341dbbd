package wire_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/lisptest"
	"github.com/lispd/lispd/wire"
)

// tsharkCase is one packet we encode and the facts Wireshark must agree on.
type tsharkCase struct {
	name    string
	msg     wire.Message // control message (port 4342), or nil for data
	data    []byte       // data packet (LISP header + inner IP) when msg is nil
	typ     wire.MessageType
	inner   wire.MessageType // ECM only
	nonce   uint64
	eids    []string // "addr/len" of every EID prefix, "[iid]" for instance IDs
	rlocs   []string
	dataIID int // -1: no instance ID expected
}

func tsharkCases(t *testing.T) []tsharkCase {
	eid4 := wire.AddrFromIP(netip.MustParseAddr("198.51.100.0"))
	eid6 := wire.AddrFromIP(netip.MustParseAddr("2001:db8:1::"))
	rloc4 := wire.AddrFromIP(netip.MustParseAddr("192.0.2.12"))
	rloc6 := wire.AddrFromIP(netip.MustParseAddr("2001:db8:ff::12"))
	itr := wire.AddrFromIP(netip.MustParseAddr("192.0.2.11"))
	locs := []wire.Locator{
		{Priority: 1, Weight: 50, MPriority: 255, Flags: wire.LocatorReachable, Address: rloc4},
		{Priority: 1, Weight: 50, MPriority: 255, Flags: wire.LocatorReachable | wire.LocatorLocal, Address: rloc6},
	}
	type eidVariant struct {
		name string
		addr wire.Address
		ml   uint8
		want string
	}
	variants := []eidVariant{
		{"v4", eid4, 24, "198.51.100.0/24"},
		{"v6", eid6, 48, "2001:db8:1::/48"},
		{"v4-iid", wire.AddrWithIID(1000, eid4), 24, "[1000]198.51.100.0/24"},
		{"v6-iid", wire.AddrWithIID(1000, eid6), 48, "[1000]2001:db8:1::/48"},
	}
	var cases []tsharkCase
	nonce := uint64(0x1000)
	for _, v := range variants {
		rec := wire.EIDRecord{TTL: 1440, MaskLen: v.ml, Authoritative: true, EID: v.addr, Locators: locs}
		neg := wire.EIDRecord{TTL: 15, MaskLen: v.ml, Action: wire.ActionNativelyForward, EID: v.addr}
		rlocs := []string{"192.0.2.12", "2001:db8:ff::12"}
		nonce++
		req := &wire.MapRequest{Nonce: nonce, SourceEID: itr, ITRRLOCs: []wire.Address{itr, rloc6},
			Records: []wire.RequestRecord{{MaskLen: v.ml, EID: v.addr}}}
		cases = append(cases,
			tsharkCase{name: "map-request-" + v.name, msg: req, typ: wire.TypeMapRequest, nonce: nonce, eids: []string{v.want}},
			tsharkCase{name: "map-request-smr-" + v.name, msg: &wire.MapRequest{SMR: true, DontReply: true, Nonce: nonce + 1, SourceEID: v.addr,
				ITRRLOCs: []wire.Address{itr}, Records: []wire.RequestRecord{{MaskLen: v.ml, EID: v.addr}}}, typ: wire.TypeMapRequest, nonce: nonce + 1, eids: []string{v.want}},
			tsharkCase{name: "map-reply-" + v.name, msg: &wire.MapReply{Nonce: nonce, Records: []wire.EIDRecord{rec}}, typ: wire.TypeMapReply,
				nonce: nonce, eids: []string{v.want}, rlocs: rlocs},
			tsharkCase{name: "negative-map-reply-" + v.name, msg: &wire.MapReply{Nonce: nonce, Records: []wire.EIDRecord{neg}}, typ: wire.TypeMapReply,
				nonce: nonce, eids: []string{v.want}},
			tsharkCase{name: "map-register-" + v.name, msg: &wire.MapRegister{WantMapNotify: true, ProxyReply: true,
				AuthBody: wire.AuthBody{Nonce: nonce, Algorithm: wire.AuthHMACSHA256, Records: []wire.EIDRecord{rec}, HasXTRID: true, XTRID: [16]byte{1, 2, 3}, SiteID: 7}},
				typ: wire.TypeMapRegister, nonce: nonce, eids: []string{v.want}, rlocs: rlocs},
			tsharkCase{name: "map-notify-" + v.name, msg: &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: nonce, Algorithm: wire.AuthHMACSHA1, Records: []wire.EIDRecord{rec}}},
				typ: wire.TypeMapNotify, nonce: nonce, eids: []string{v.want}, rlocs: rlocs},
			// Wireshark 4.0 names type 5 but decodes none of its fields.
			tsharkCase{name: "map-notify-ack-" + v.name, msg: &wire.MapNotifyAck{AuthBody: wire.AuthBody{Nonce: nonce, Algorithm: wire.AuthHMACSHA256, Records: []wire.EIDRecord{rec}}},
				typ: wire.TypeMapNotifyAck},
			tsharkCase{name: "map-referral-" + v.name, msg: &wire.MapReferral{Nonce: nonce, Records: []wire.EIDRecord{{TTL: 1440, MaskLen: v.ml,
				Action: wire.ReferralMSAck, EID: v.addr, Locators: locs}}}, typ: wire.TypeMapReferral, nonce: nonce, eids: []string{v.want}, rlocs: rlocs},
		)
		// Wireshark 4.0 does not decode an LCAF EID in an Info message, so
		// those two go in with plain EIDs only.
		if v.addr.AFI != wire.AFILCAF {
			cases = append(cases,
				tsharkCase{name: "info-request-" + v.name, msg: &wire.Info{Nonce: nonce, Algorithm: wire.AuthHMACSHA1, AuthData: make([]byte, 20),
					MaskLen: v.ml, EID: v.addr}, typ: wire.TypeInfo, nonce: nonce, eids: []string{v.want}},
				tsharkCase{name: "info-reply-" + v.name, msg: &wire.Info{Reply: true, Nonce: nonce, Algorithm: wire.AuthHMACSHA1, AuthData: make([]byte, 20),
					TTL: 15, MaskLen: v.ml, EID: v.addr, NATAddress: wire.Address{AFI: wire.AFILCAF, LCAF: &wire.LCAF{Type: wire.LCAFNATTraversal,
						Body: &wire.NATTraversalLCAF{MSPort: 4342, ETRPort: 61000, GlobalETR: rloc4, MS: itr, PrivateETR: rloc4,
							RTRs: []wire.Address{rloc4}}}}}, typ: wire.TypeInfo, nonce: nonce, eids: []string{v.want}},
			)
		}
		for _, innerV6 := range []bool{false, true} {
			src, dst := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("198.51.100.1")
			if innerV6 {
				src, dst = netip.MustParseAddr("2001:db8:ff::11"), netip.MustParseAddr("2001:db8:1::1")
			}
			ecm := &wire.ECM{IP: wire.InnerIP{Src: src, Dst: dst, TTL: 64}, SrcPort: 61002, DstPort: 4342, Message: req}
			cases = append(cases, tsharkCase{name: fmt.Sprintf("ecm-inner-v6=%v-%s", innerV6, v.name), msg: ecm, typ: wire.TypeECM,
				inner: wire.TypeMapRequest, nonce: nonce, eids: []string{v.want}})
		}
	}
	// Data packets: an IPv4 and an IPv6 inner packet, with and without an instance ID.
	inner4 := lisptest.MustHex(t, "4500001c00004000400100000a0101010a0202020800f7ff00000000")
	inner6 := lisptest.MustHex(t, "6000000000083a4020010db8000100000000000000000001"+"20010db8000200000000000000000002"+"8000244500000000")
	for i, in := range [][]byte{inner4, inner6} {
		for _, iid := range []int{-1, 4660} {
			h := make(wire.DataHeader, wire.DataHeaderLen, wire.DataHeaderLen+len(in))
			h.SetNonce(0xabcdef)
			if iid >= 0 {
				h.SetInstanceID(uint32(iid))
			}
			h.SetLSBs(3)
			cases = append(cases, tsharkCase{name: fmt.Sprintf("data-%d-iid%d", i, iid), data: append(h, in...),
				nonce: 0xabcdef, dataIID: iid})
		}
	}
	return cases
}

// TestTsharkCrossCheck writes one of every message we encode into a pcap and
// asks Wireshark's dissector, an independent implementation, to read it back.
func TestTsharkCrossCheck(t *testing.T) {
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark); CI installs it")
	}
	cases := tsharkCases(t)
	path := filepath.Join(t.TempDir(), "all.pcap")
	if keep := os.Getenv("LISPD_KEEP_PCAP"); keep != "" {
		path = keep
	}
	var pkts []lisptest.UDP
	for _, c := range cases {
		payload, port := c.data, uint16(4341)
		if c.msg != nil {
			switch c.msg.(type) {
			case *wire.MapRegister, *wire.MapNotify, *wire.MapNotifyAck:
				payload, err = wire.EncodeSigned(c.msg, password, wire.AuthOptions{})
			default:
				payload, err = wire.Encode(c.msg)
			}
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			port = 4342
		}
		pkts = append(pkts, lisptest.UDP{Src: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.11"), 61000),
			Dst: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.12"), port), Payload: payload})
	}
	lisptest.WritePcap(t, path, pkts...)
	out, err := exec.Command(bin, "-n", "-r", path, "-T", "json", "--no-duplicate-keys").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var frames []struct {
		Source struct {
			Layers map[string]json.RawMessage `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(out, &frames); err != nil {
		t.Fatalf("tshark JSON: %v", err)
	}
	if len(frames) != len(cases) {
		t.Fatalf("tshark read %d frames, we wrote %d", len(frames), len(cases))
	}
	for i, c := range cases {
		layers := frames[i].Source.Layers
		all := leaves(layers)
		if _, bad := layers["_ws.malformed"]; bad {
			t.Errorf("%s: tshark says malformed", c.name)
		}
		for k, vs := range all {
			if strings.HasSuffix(k, "_ws.expert.severity") {
				for _, v := range vs {
					if sev, _ := strconv.ParseInt(v, 0, 64); sev >= 0x00600000 {
						t.Errorf("%s: tshark expert warning/error: %v", c.name, all["_ws.expert.message"])
					}
				}
			}
		}
		if c.msg == nil {
			checkTsharkData(t, c, leaves(layers["lisp-data"]))
			continue
		}
		lisp := lispLayers(t, layers["lisp"])
		if len(lisp) == 0 {
			t.Errorf("%s: no lisp layer", c.name)
			continue
		}
		if got := first(lisp[0], "lisp.type"); got != strconv.Itoa(int(c.typ)) {
			t.Errorf("%s: tshark type %s, want %d", c.name, got, c.typ)
		}
		fields := lisp[0]
		if c.typ == wire.TypeECM {
			if len(lisp) < 2 {
				t.Errorf("%s: tshark did not decode the ECM's inner message", c.name)
				continue
			}
			fields = lisp[1]
			if got := first(fields, "lisp.type"); got != strconv.Itoa(int(c.inner)) {
				t.Errorf("%s: inner type %s, want %d", c.name, got, c.inner)
			}
		}
		if c.nonce != 0 {
			if got := first(fields, "lisp.nonce"); got != fmt.Sprintf("0x%016x", c.nonce) {
				t.Errorf("%s: nonce %s, want %#016x", c.name, got, c.nonce)
			}
		}
		for _, want := range c.eids {
			if got := tsharkEIDs(fields); !slices.Contains(got, want) {
				t.Errorf("%s: tshark EIDs %v, want %s", c.name, got, want)
			}
		}
		if got := fields["lisp.loc.locator"]; !slices.Equal(got, c.rlocs) {
			t.Errorf("%s: tshark RLOCs %v, want %v", c.name, got, c.rlocs)
		}
	}
}

func checkTsharkData(t *testing.T, c tsharkCase, f map[string][]string) {
	t.Helper()
	if got := first(f, "lisp-data.nonce"); got != strconv.FormatUint(c.nonce, 10) && got != fmt.Sprintf("0x%06x", c.nonce) {
		t.Errorf("%s: data nonce %q, want %#x (fields %v)", c.name, got, c.nonce, f)
	}
	if c.dataIID >= 0 {
		if got := first(f, "lisp-data.iid"); got != strconv.Itoa(c.dataIID) {
			t.Errorf("%s: data iid %q, want %d", c.name, got, c.dataIID)
		}
	}
}

// tsharkEIDs rebuilds "[iid]addr/len" strings from the dissector's fields.
func tsharkEIDs(f map[string][]string) []string {
	var out []string
	iids := f["lisp.lcaf.iid"]
	masks := append(append(append(f["lisp.mapping.eid.masklen"], f["lisp.mreq.record.prefix.length"]...),
		f["lisp.info.prefix.masklen"]...), f["lisp.mreq.record.prefix.masklen"]...)
	var addrs []string
	for k, vs := range f {
		if strings.HasSuffix(k, ".ipv4") || strings.HasSuffix(k, ".ipv6") {
			if strings.Contains(k, "eid") || strings.Contains(k, "prefix") || strings.Contains(k, "lcaf.iid.") {
				addrs = append(addrs, vs...)
			}
		}
	}
	for _, a := range addrs {
		for _, m := range masks {
			if len(iids) > 0 {
				out = append(out, fmt.Sprintf("[%s]%s/%s", iids[0], a, m))
			}
			out = append(out, fmt.Sprintf("%s/%s", a, m))
		}
	}
	return out
}

func first(f map[string][]string, k string) string {
	if v := f[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// lispLayers splits the "lisp" layer, which is an array for an ECM (outer
// and inner message), into one field map per message.
func lispLayers(t *testing.T, raw json.RawMessage) []map[string][]string {
	if len(raw) == 0 {
		return nil
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		var out []map[string][]string
		for _, a := range arr {
			out = append(out, leaves(a))
		}
		return out
	}
	return []map[string][]string{leaves(raw)}
}

// leaves flattens a tshark JSON tree into field name -> values.
func leaves(v any) map[string][]string {
	out := map[string][]string{}
	var walk func(k string, v any)
	walk = func(k string, v any) {
		switch x := v.(type) {
		case json.RawMessage:
			var a any
			if json.Unmarshal(x, &a) == nil {
				walk(k, a)
			}
		case map[string]json.RawMessage:
			for kk, vv := range x {
				walk(kk, vv)
			}
		case map[string]any:
			for kk, vv := range x {
				walk(kk, vv)
			}
		case []any:
			for _, vv := range x {
				walk(k, vv)
			}
		case string:
			out[k] = append(out[k], x)
		}
	}
	walk("", v)
	return out
}
