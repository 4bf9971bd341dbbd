package render

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteText writes one packet as a block: the header line
// "#N TIME SRC > DST LEN bytes", then the one-line summary (or the error).
// With verbose, a detailed view follows: every field, flags spelled out,
// each record and locator on its own lines; for a packet that failed to
// decode, a hex dump whose offsets match those in the error. Verbose
// blocks end with a blank line to keep them apart.
func WriteText(w io.Writer, p *Packet, verbose bool) error {
	var sb strings.Builder
	sb.WriteString(HeaderLine(p))
	sb.WriteByte('\n')
	if p.Failed() {
		fmt.Fprintf(&sb, "  error: %s\n", errorLine(p))
	} else {
		fmt.Fprintf(&sb, "  %s\n", p.Summary)
	}
	if verbose {
		writeDetail(&tree{sb: &sb, indent: 4}, p)
		sb.WriteByte('\n')
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// HeaderLine is the first line of a packet's block. Parts that are not
// known (time and addresses of a message given as hex) are left out.
func HeaderLine(p *Packet) string {
	parts := []string{"#" + strconv.Itoa(p.Frame)}
	if p.Time != "" {
		parts = append(parts, p.Time)
	}
	if p.Src != "" || p.Dst != "" {
		parts = append(parts, p.Src, ">", p.Dst)
	}
	parts = append(parts, strconv.Itoa(p.Length), "bytes")
	if p.Truncated {
		parts = append(parts, "(cut short by the capture)")
	}
	return strings.Join(parts, " ")
}

// errorLine is the error of a failed packet, prefixed with the message
// type when the error names only an inner structure ("address: AFI ...").
func errorLine(p *Packet) string {
	if p.Message == nil || p.Type == TypeData || strings.HasPrefix(p.Error, p.Type+":") {
		return p.Error
	}
	return p.Type + ": " + p.Error
}

func writeDetail(t *tree, p *Packet) {
	switch {
	case p.Failed():
		if p.Message != nil {
			t.field("Type", p.Type)
		}
		t.field("Bytes", "")
		t.hexDump(p.Raw)
	case p.DataHeader != nil:
		writeData(t, p.DataHeader, p.InnerPacket)
	case p.Message != nil:
		writeMessage(t, p.Message)
	}
}

func writeData(t *tree, h *DataHeader, inner *IPSummary) {
	t.field("Type", TypeData)
	t.field("Flags", spellFlags(h.Flags))
	t.fieldIf(h.Nonce != "", "Nonce", h.Nonce)
	if h.SourceMapVersion != nil {
		t.field("Map-Version", fmt.Sprintf("source %d, destination %d", *h.SourceMapVersion, *h.DestMapVersion))
	}
	if h.NextProtocol != nil {
		t.field("Next protocol", fmt.Sprintf("%#02x (%s)", *h.NextProtocol, gpeName(*h.NextProtocol)))
	}
	if h.InstanceID != nil {
		t.field("Instance ID", strconv.FormatUint(uint64(*h.InstanceID), 10))
	}
	if h.LSB != nil {
		t.field("LSBs", fmt.Sprintf("%#x (binary %b)", *h.LSB, *h.LSB))
	}
	t.fieldIf(h.KeyID != 0, "Key ID", strconv.Itoa(int(h.KeyID)))
	if inner != nil {
		t.field("Inner packet", inner.String())
	}
}

// writeMessage shows the fields m has, in wire order. Absent fields are
// empty in the view, which is how they are skipped here as in the JSON.
func writeMessage(t *tree, m *Message) {
	t.field("Type", m.Type)
	t.fieldIf(m.Flags != nil, "Flags", spellFlags(m.Flags))
	t.fieldIf(m.Nonce != "", "Nonce", m.Nonce)
	if m.KeyID != nil {
		t.field("Key ID", strconv.Itoa(int(*m.KeyID)))
		t.field("Algorithm", m.Algorithm)
		t.field("Auth data", hexWithLen(m.AuthData))
	}
	writeMapRequestParts(t, m)
	writeInfoParts(t, m)
	for i := range m.Records {
		writeRecord(t, "Record "+strconv.Itoa(i+1), &m.Records[i])
	}
	t.fieldIf(m.XTRID != "", "xTR-ID", m.XTRID)
	if m.SiteID != nil {
		t.field("Site-ID", strconv.FormatUint(*m.SiteID, 10))
	}
	t.fieldIf(m.SecurityAD != "", "LISP-SEC data", hexWithLen(m.SecurityAD))
	if l := m.LISPSEC; l != nil {
		t.fieldIf(l.RequestedHMAC != "", "Requested HMAC", l.RequestedHMAC)
		if l.KeyID != nil {
			t.field("OTK key ID", strconv.Itoa(int(*l.KeyID)))
			t.field("OTK wrap", l.OTKWrap)
		}
		t.field("KDF", l.KDF)
		t.fieldIf(l.ETRCantSign, "ETR cannot sign", "yes")
		t.fieldIf(len(l.Authorized) > 0, "Authorized EIDs", strings.Join(l.Authorized, ", "))
		t.fieldIf(l.EIDHMAC != "", "EID HMAC", l.EIDHMAC+" "+l.EIDHMACHex)
		t.fieldIf(l.PKTHMAC != "", "PKT HMAC", l.PKTHMAC+" "+l.PKTHMACHex)
	}
	if m.SubType != nil {
		t.field("Sub-type", strconv.Itoa(int(*m.SubType)))
	}
	t.fieldIf(m.Data != "", "Data", hexWithLen(m.Data))
	t.fieldIf(m.Trailing != "", "Trailing bytes", hexWithLen(m.Trailing))
	writeECMParts(t, m)
}

func writeMapRequestParts(t *tree, m *Message) {
	t.fieldIf(m.SourceEID != "", "Source EID", m.SourceEID)
	t.fieldIf(len(m.ITRRLOCs) > 0, "ITR-RLOCs", strings.Join(m.ITRRLOCs, ", "))
	for i, r := range m.EIDPrefixes {
		v := withIID(r.InstanceID, r.EIDPrefix)
		if r.Subscribe {
			v += " (subscribe)"
		}
		t.field("Requested EID "+strconv.Itoa(i+1), v)
	}
	if m.Mapping != nil {
		writeRecord(t, "Mapping", m.Mapping)
	}
}

func writeInfoParts(t *tree, m *Message) {
	if m.TTLMinutes != nil {
		t.field("TTL", ttlText(*m.TTLMinutes))
	}
	if m.InstanceID != nil {
		t.field("EID prefix", withIID(*m.InstanceID, m.EIDPrefix))
	}
	t.fieldIf(m.NATAddress != "", "NAT address", m.NATAddress)
}

func writeECMParts(t *tree, m *Message) {
	if m.InnerSrc == "" {
		return
	}
	hdr := m.InnerSrc + " > " + m.InnerDst
	if m.InnerChecksumsBad {
		hdr += " (bad checksum)"
	}
	t.field("Inner IP/UDP", hdr)
	if m.Inner != nil {
		t.field("Inner message", "")
		writeMessage(t.nested(), m.Inner)
	}
}

func writeRecord(t *tree, label string, r *Record) {
	t.field(label, withIID(r.InstanceID, r.EIDPrefix))
	n := t.nested()
	n.field("TTL", ttlText(r.TTLMinutes))
	n.field("Action", r.Action)
	n.field("Authoritative", yesNo(r.Authoritative))
	n.fieldIf(r.Incomplete, "Incomplete", "yes")
	n.field("Map-Version", strconv.Itoa(int(r.MapVersion)))
	if len(r.Locators) == 0 {
		n.field("Locators", "none (negative mapping)")
	}
	for i, l := range r.Locators {
		n.field("Locator "+strconv.Itoa(i+1), l.Address)
		ln := n.nested()
		ln.field("Priority/weight", fmt.Sprintf("%d/%d", l.Priority, l.Weight))
		ln.field("M-priority/weight", fmt.Sprintf("%d/%d", l.MPriority, l.MWeight))
		ln.field("Flags", spellFlags(setNames(bit{l.Local, "local"}, bit{l.Probed, "probed"},
			bit{l.Reachable, "reachable"})))
	}
	n.fieldIf(r.Signatures > 0, "Signatures", strconv.Itoa(r.Signatures))
}

// locatorLetters are the RFC 9301 letters of the locator flags.
var locatorLetters = map[string]string{"local": "L", "probed": "p", "reachable": "R"}

// spellFlags writes "want-map-notify (M), proxy-map-reply (P)".
func spellFlags(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	out := make([]string, len(names))
	for i, n := range names {
		l, ok := flagLetters[n]
		if !ok {
			l, ok = locatorLetters[n]
		}
		out[i] = n
		if ok {
			out[i] += " (" + l + ")"
		}
	}
	return strings.Join(out, ", ")
}

// withIID prints an EID as routers do: "[iid]prefix", the IID only if set.
func withIID(iid uint32, prefix string) string {
	if iid == 0 {
		return prefix
	}
	return "[" + strconv.FormatUint(uint64(iid), 10) + "]" + prefix
}

// ttlText explains the TTL; all ones means "let the receiver decide".
func ttlText(minutes uint32) string {
	if minutes == 0xffffffff {
		return "unspecified (0xffffffff)"
	}
	return strconv.FormatUint(uint64(minutes), 10) + " minutes"
}

func hexWithLen(h string) string {
	if h == "" {
		return "none"
	}
	return fmt.Sprintf("%s (%d bytes)", h, len(h)/2)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// tree writes "Label: value" lines, values aligned within a level, each
// level indented two more spaces.
type tree struct {
	sb     *strings.Builder
	indent int
}

// labelWidth fits the longest label ("M-priority/weight:") and a space.
const labelWidth = 19

func (t *tree) field(label, value string) {
	if value == "" { // a heading for nested lines: no trailing blanks
		fmt.Fprintf(t.sb, "%*s%s:\n", t.indent, "", label)
		return
	}
	fmt.Fprintf(t.sb, "%*s%-*s%s\n", t.indent, "", labelWidth, label+":", value)
}

func (t *tree) fieldIf(cond bool, label, value string) {
	if cond {
		t.field(label, value)
	}
}

func (t *tree) nested() *tree { return &tree{sb: t.sb, indent: t.indent + 2} }

// hexDump writes b as "hexdump -C" does, at the tree's indentation plus
// two, so that the offsets named by a decode error can be found.
func (t *tree) hexDump(b []byte) {
	pad := strings.Repeat(" ", t.indent+2)
	for line := range strings.Lines(hex.Dump(b)) {
		t.sb.WriteString(pad + line)
	}
}
