package render

import "github.com/lispd/lispd/wire"

// Flag names. JSON carries the names; the verbose view adds the letter the
// RFCs (and tcpdump, Wireshark) use, from flagLetters.
const (
	flagAuthoritative    = "authoritative"         // Map-Request A
	flagMapDataPresent   = "map-data-present"      // Map-Request M
	flagProbe            = "probe"                 // Map-Request P, Map-Reply P
	flagSMR              = "smr"                   // Map-Request S
	flagPITR             = "pitr"                  // Map-Request p
	flagSMRInvoked       = "smr-invoked"           // Map-Request s
	flagXTRIDPresent     = "xtr-id-present"        // I in Map-Request, Map-Register, Map-Notify(-Ack)
	flagLocalXTR         = "local-xtr"             // Map-Request L
	flagDontMapReply     = "dont-map-reply"        // Map-Request D
	flagEchoNonce        = "echo-nonce-capable"    // Map-Reply E
	flagSecurity         = "security"              // S (LISP-SEC) in Map-Reply, Map-Register, ECM
	flagProxyReply       = "proxy-map-reply"       // Map-Register P
	flagEIDNotify        = "eid-notify"            // Map-Register E
	flagUseTTL           = "ttl-for-timeout"       // Map-Register T
	flagMerge            = "merge"                 // Map-Register a
	flagWantMapNotify    = "want-map-notify"       // Map-Register M
	flagDDT              = "ddt-originated"        // ECM D
	flagToETR            = "to-etr"                // ECM E
	flagToMS             = "to-map-server"         // ECM M
	flagNoncePresent     = "nonce-present"         // data N
	flagLSBs             = "locator-status-bits"   // data L
	flagEchoNonceRequest = "echo-nonce-request"    // data E
	flagMapVersion       = "map-version-present"   // data V
	flagInstanceID       = "instance-id-present"   // data I
	flagNextProtocol     = "next-protocol-present" // data P (LISP-GPE)
)

var flagLetters = map[string]string{
	flagAuthoritative: "A", flagMapDataPresent: "M", flagProbe: "P", flagSMR: "S", flagPITR: "p",
	flagSMRInvoked: "s", flagXTRIDPresent: "I", flagLocalXTR: "L", flagDontMapReply: "D",
	flagEchoNonce: "E", flagSecurity: "S", flagProxyReply: "P", flagEIDNotify: "E", flagUseTTL: "T",
	flagMerge: "a", flagWantMapNotify: "M", flagDDT: "D", flagToETR: "E", flagToMS: "M",
	flagNoncePresent: "N", flagLSBs: "L", flagEchoNonceRequest: "E", flagMapVersion: "V",
	flagInstanceID: "I", flagNextProtocol: "P",
}

// bit pairs a flag with whether it is set.
type bit struct {
	on   bool
	name string
}

// setNames returns the names of the set bits, in header order; never nil,
// so that JSON shows "flags": [] when none is set.
func setNames(bits ...bit) []string {
	out := []string{}
	for _, b := range bits {
		if b.on {
			out = append(out, b.name)
		}
	}
	return out
}

// flagNames lists the header flags set in m, in the order they appear on
// the wire; nil for message types whose header has no flags.
func flagNames(m wire.Message) []string {
	switch m := m.(type) {
	case *wire.MapRequest:
		return setNames(bit{m.Authoritative, flagAuthoritative}, bit{m.MapReply != nil, flagMapDataPresent},
			bit{m.Probe, flagProbe}, bit{m.SMR, flagSMR}, bit{m.PITR, flagPITR}, bit{m.SMRInvoked, flagSMRInvoked},
			bit{m.HasXTRID, flagXTRIDPresent}, bit{m.Local, flagLocalXTR}, bit{m.DontReply, flagDontMapReply})
	case *wire.MapReply:
		return setNames(bit{m.Probe, flagProbe}, bit{m.EchoNonce, flagEchoNonce}, bit{m.Security, flagSecurity})
	case *wire.MapRegister:
		return setNames(bit{m.ProxyReply, flagProxyReply}, bit{m.Security, flagSecurity},
			bit{m.HasXTRID, flagXTRIDPresent}, bit{m.EIDNotify, flagEIDNotify}, bit{m.UseTTL, flagUseTTL},
			bit{m.Merge, flagMerge}, bit{m.WantMapNotify, flagWantMapNotify})
	case *wire.MapNotify:
		return setNames(bit{m.HasXTRID, flagXTRIDPresent})
	case *wire.MapNotifyAck:
		return setNames(bit{m.HasXTRID, flagXTRIDPresent})
	case *wire.ECM:
		return setNames(bit{m.Security, flagSecurity}, bit{m.DDT, flagDDT}, bit{m.ForETR, flagToETR},
			bit{m.ForMS, flagToMS})
	}
	return nil
}

// dataFlagNames lists the data header flags that are set.
func dataFlagNames(h wire.DataHeader) []string {
	return setNames(bit{h.N(), flagNoncePresent}, bit{h.L(), flagLSBs}, bit{h.E(), flagEchoNonceRequest},
		bit{h.V(), flagMapVersion}, bit{h.I(), flagInstanceID}, bit{h.P(), flagNextProtocol})
}
