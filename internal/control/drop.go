package control

import "strconv"

// DropReason is why a control message was not handled. Its String is the
// "reason" label of lisp_control_packets_dropped_total: operators graph
// those, so they never change. A new reason needs a label here, and the
// daemon registers a counter for every one up front.
type DropReason uint8

const (
	Handled                   DropReason = iota // not dropped
	DropTooShort                                // shorter than a message header
	DropMalformed                               // does not decode
	DropRateLimitSource                         // over its source's budget
	DropRateLimitGlobal                         // over the budget of its class
	DropNoMapServer                             // Map-Register or Map-Notify-Ack without a Map-Server
	DropECMNotMapRequest                        // an ECM carrying something else than a Map-Request
	DropNoITRRLOC                               // an encapsulated Map-Request with nowhere to answer
	DropEIDNotServed                            // the Map-Server holds no site for the EID
	DropNoMappingRole                           // an encapsulated Map-Request without a Map-Resolver or Map-Server
	DropProbeToMappingSystem                    // an RLOC-probe sent to the mapping system
	DropNotEncapsulated                         // a bare Map-Request to the mapping system
	DropUnexpectedMapReply                      // a Map-Reply without an xTR
	DropUnexpectedType                          // a message no role here takes
	DropReplyNotGlobalUnicast                   // an answer to a broadcast, multicast, link-local or unspecified address, or to loopback for a request from the network
	DropReplyToSelf                             // an answer to one of our own addresses
	DropRateLimitDestination                    // a Map-Reply or Map-Notify over its destination's budget
	DropECMInnerChecksum                        // an ECM whose inner IP or UDP checksum is zero or wrong
	DropECMInnerPort                            // an ECM'd Map-Request not to port 4342, or from 4341 or 0
	DropDontMapReply                            // a Map-Request with the D bit: no Map-Reply wanted
	NumDropReasons
)

var dropLabels = [NumDropReasons]string{
	"handled", "too-short", "malformed", "rate-limit-source", "rate-limit-global", "no-map-server",
	"ecm-not-map-request", "no-itr-rloc", "eid-not-served", "no-mapping-role", "probe-to-mapping-system",
	"map-request-not-encapsulated", "unexpected-map-reply", "unexpected-type", "reply-not-global-unicast",
	"reply-to-self", "rate-limit-destination", "ecm-inner-checksum", "ecm-inner-port", "dont-map-reply",
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropLabels[r]
	}
	return "drop-reason-" + strconv.Itoa(int(r))
}
