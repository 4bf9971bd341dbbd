package mapserver

import "github.com/lispd/lispd/internal/stats"

// counters are the Map-Server's metrics (subsystem map_server).
type counters struct {
	registerOK, notifySent, notifyRetrans, notifyGiveUp, ackRecv, ackUnknown *stats.Counter
	badAuth, unknownKey, noSite, outOfSite, replay, badRecord, rlocDenied    *stats.Counter
	expired, proxyReply, forwarded, negative, subscribe, unsubscribe         *stats.Counter
	published, moves, withdrawn, movedNotifies                               *stats.Counter
	subExpired, duplicate, xtrEvicted, stateSaveFailed, staleAfterMove       *stats.Counter
	subRejected                                                              [numSubReject]*stats.Counter
	subDropped                                                               [numSubDrop]*stats.Counter
	infoReplies, relayed, notFromRTR                                         *stats.Counter
	infoRejected                                                             [numInfoReject]*stats.Counter
}

func newCounters(r *stats.Registry) counters {
	c := func(name, help string, labels ...[2]string) *stats.Counter {
		return r.Counter(stats.Desc{Subsystem: "map_server", Name: name, Help: help, Labels: labels})
	}
	rej := func(reason string) *stats.Counter {
		return c("registers_rejected", "Map-Registers rejected, by reason.", [2]string{"reason", reason})
	}
	c0 := counters{
		registerOK:    c("registers_accepted", "Map-Registers accepted."),
		notifySent:    c("notifies_sent", "Map-Notifies sent (acks and unsolicited)."),
		notifyRetrans: c("notify_retransmissions", "Unsolicited Map-Notifies sent again for want of an ack."),
		notifyGiveUp:  c("notify_give_ups", "Unsolicited Map-Notifies never acknowledged."),
		ackRecv:       c("notify_acks_received", "Map-Notify-Acks matched to a pending Map-Notify."),
		ackUnknown:    c("notify_acks_unmatched", "Map-Notify-Acks with no pending Map-Notify or bad auth."),
		badAuth:       rej("bad-auth"),
		unknownKey:    rej("unknown-key-id"),
		noSite:        rej("no-site"),
		outOfSite:     rej("prefix-outside-site"),
		replay:        rej("nonce-not-increasing"),
		badRecord:     rej("bad-record"),
		rlocDenied:    rej("rloc-not-allowed"),
		expired:       c("registrations_expired", "Registrations that timed out."),
		proxyReply:    c("proxy_replies", "Map-Requests answered by the Map-Server for the ETR."),
		forwarded:     c("requests_forwarded", "Map-Requests forwarded to a registered ETR."),
		negative:      c("negative_replies", "Negative Map-Replies for configured but unregistered EIDs."),
		subscribe:     c("subscriptions_added", "Pub/sub subscriptions accepted."),
		unsubscribe:   c("subscriptions_removed", "Pub/sub subscriptions removed."),
		subExpired:    c("subscriptions_expired", "Temporary pub/sub subscriptions (no registration to follow) ended by subscription-ttl."),
		published:     c("publications", "Map-Notifies sent to subscribers on a mapping change."),
		moves:         c("registrations_moved", "Registrations taken over by an xTR of another site or site-ID (an EID moved)."),
		movedNotifies: c("moved_notifies_sent", "Map-Notifies telling old xTRs that hosts of theirs registered elsewhere "+
			"(one per old xTR and Map-Register, with every host it lost in it)."),
		withdrawn: c("registrations_withdrawn", "Registrations withdrawn by their xTR (record TTL 0 with the T bit)."),
		duplicate: rej("replayed-duplicate"),
		xtrEvicted: c("xtrs_forgotten", "xTRs forgotten (replay state, pub/sub association) by reason.",
			[2]string{"reason", "site-limit"}),
		stateSaveFailed: c("state_save_failures", "Failed writes of the replay state to the state directory."),
		staleAfterMove: c("register_records_ignored", "EID-records of accepted Map-Registers left out, by reason.",
			[2]string{"reason", "stale-after-move"}),
	}
	c0.relayed = c("registers_relayed", "Map-Registers of xTRs behind NAT relayed by an RTR (ECM with N), before their own checks.")
	c0.notFromRTR = rej("not-from-rtr")
	c0.infoReplies = c("info_replies", "Info-Replies sent to xTRs discovering NAT (draft-ietf-lisp-nat-traversal).")
	for i := range c0.infoRejected {
		c0.infoRejected[i] = c("info_requests_rejected", "Info-Requests left unanswered, by reason.",
			[2]string{"reason", infoRejectLabels[i]})
	}
	for i := range c0.subRejected {
		c0.subRejected[i] = c("subscriptions_rejected", "Pub/sub subscriptions refused, by reason.",
			[2]string{"reason", subRejectLabels[i]})
	}
	for i := range c0.subDropped {
		c0.subDropped[i] = c("subscriptions_dropped", "Pub/sub subscriptions the Map-Server ended, by reason.",
			[2]string{"reason", subDropLabels[i]})
	}
	return c0
}
