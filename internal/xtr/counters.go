package xtr

import "github.com/lispd/lispd/internal/stats"

type counters struct {
	registers, registerRetrans, notifies, notifyBadAuth, notifyAcks          *stats.Counter
	replies, probeReplies, smrSent, smrReceived                              *stats.Counter
	misses, requests, requestsLimited, requestTimeouts, replyUnsolicited     *stats.Counter
	installs, evictions, expired, publications, probesSent, rlocDown, rlocUp *stats.Counter
	hostsAdded, hostsRemoved, hostsWithdrawn, movedAway, smrHost, smrCovered *stats.Counter
	smrUnmatched, recentForgotten, hostBatches, unseenHits                   *stats.Counter
	unsubscribes, withdrawn, registerEncodeFailed                            *stats.Counter
	drops                                                                    map[string]*stats.Counter
	// Labelled by reason: records of Map-Replies not installed, Map-Notifies
	// (or their records) not applied, hosts not registered, probe replies
	// not taken.
	replyRecordDrops, notifyDrops, hostsRefused, probeReplyDrops map[string]*stats.Counter
	smrDrops                                                     map[string]*stats.Counter
}

// Reasons of the labelled drop counters.
var (
	replyRecordDropReasons = []string{"not-requested", "covers-local", "too-broad", "too-many-records", "not-authorized"}
	notifyDropReasons      = []string{"replayed-publication", "unsubscribed", "replayed-move"}
	hostRefusedReasons     = []string{"range-full"}
	probeReplyDropReasons  = []string{"not-authoritative"}
)

var xtrDropReasons = []string{"no-record", "bad-eid", "not-an-etr", "probe-in-ecm", "not-my-eid", "no-itr-rloc"}

func newCounters(r *stats.Registry) counters {
	c := func(sub, name, help string) *stats.Counter {
		return r.Counter(stats.Desc{Subsystem: sub, Name: name, Help: help})
	}
	x := counters{
		registers:       c("etr", "map_registers_sent", "Map-Registers sent."),
		registerRetrans: c("etr", "map_register_retransmissions", "Map-Registers sent again for want of a Map-Notify."),
		notifies:        c("etr", "map_notifies_received", "Map-Notifies acknowledging our Map-Registers."),
		notifyBadAuth:   c("etr", "map_notifies_bad_auth", "Map-Notifies dropped: unknown Map-Server or bad authentication."),
		notifyAcks:      c("etr", "map_notify_acks_sent", "Map-Notify-Acks sent for unsolicited Map-Notifies."),
		replies:         c("etr", "map_replies_sent", "Map-Replies sent for our EIDs."),
		probeReplies:    c("rloc_probing", "replies", "RLOC-probe replies sent or received."),
		smrSent:         c("etr", "smrs_sent", "Solicit-Map-Requests sent to recent ITRs."),
		smrReceived:     c("itr", "smrs_received", "Solicit-Map-Requests received."),
		recentForgotten: c("etr", "recent_itrs_forgotten", "ITRs forgotten as SMR targets to make room: at most 4096 are kept "+
			"(their outer sources may be spoofed)."),
		smrUnmatched:     c("itr", "smrs_unmatched", "SMRs that named nothing in the map-cache, in either encoding (refreshed nothing)."),
		smrCovered:       c("itr", "smrs_in_burst", "SMRs within 200 ms of the SMR-invoked Map-Request or the publication that answers them (nothing asked)."),
		misses:           c("itr", "cache_misses", "Data-plane misses reported to the control plane."),
		requests:         c("itr", "map_requests_sent", "Map-Requests sent to Map-Resolvers."),
		requestsLimited:  c("itr", "map_requests_rate_limited", "Map-Requests held back by the rate limit."),
		requestTimeouts:  c("itr", "map_request_timeouts", "Map-Requests never answered."),
		replyUnsolicited: c("itr", "map_replies_unsolicited", "Map-Replies with no matching nonce (dropped)."),
		installs:         c("itr", "map_cache_installs", "Mappings installed or refreshed in the map-cache."),
		evictions:        c("itr", "map_cache_evictions", "Map-cache entries evicted for room."),
		expired:          c("itr", "map_cache_expired", "Map-cache entries expired."),
		publications:     c("itr", "publications_received", "Pub/sub Map-Notifies applied to the map-cache."),
		probesSent:       c("rloc_probing", "probes_sent", "RLOC-probes sent."),
		rlocDown:         c("rloc_probing", "rloc_down", "Locators marked down."),
		rlocUp:           c("rloc_probing", "rloc_up", "Locators marked up again."),
		hostsAdded:       c("mobility", "hosts_registered", "Dynamic-EID hosts detected here and added to the database."),
		hostBatches: c("mobility", "host_register_batches", "Batches of dynamic-EID host registrations sent, "+
			"each in as few Map-Registers as fit (hosts arriving together share them)."),
		hostsRemoved:   c("mobility", "hosts_removed", "Dynamic-EID hosts taken out of the database (moved or gone)."),
		hostsWithdrawn: c("mobility", "hosts_withdrawn", "Deregistrations (record TTL 0) sent for hosts that went silent."),
		movedAway:      c("mobility", "moved_away", "Map-Notifies telling us a host of ours registered elsewhere."),
		smrHost:        c("mobility", "smrs_sent", "Solicit-Map-Requests sent for hosts that moved away."),
		unseenHits: c("mobility", "unseen_host_traffic", "ITRs heard sending to an address of a dynamic-EID range "+
			"where no host is (sampled per ITR and address); each was sent an SMR for the address."),
		unsubscribes: c("itr", "unsubscribes_sent", "Pub/sub subscriptions ended (clean shutdown)."),
		withdrawn: c("etr", "map_register_withdrawals", "Deregistrations (record TTL 0) sent for database prefixes "+
			"a reload removed, or to Map-Servers it took away."),
		registerEncodeFailed: c("etr", "map_register_encode_failures", "Map-Registers that could not be encoded "+
			"(their records were not registered)."),
		drops: map[string]*stats.Counter{},
		replyRecordDrops: labelled(r, "itr", "map_reply_records_dropped",
			"EID-records of answered Map-Replies not installed, by reason.", replyRecordDropReasons),
		notifyDrops: labelled(r, "etr", "map_notifies_dropped",
			"Unsolicited Map-Notifies (or their records) verified but not applied, by reason.", notifyDropReasons),
		hostsRefused: labelled(r, "mobility", "hosts_refused",
			"Dynamic-EID hosts not registered, by reason.", hostRefusedReasons),
		smrDrops: labelled(r, "etr", "smrs_dropped",
			"Solicit-Map-Requests not sent (database changes and moved hosts), by reason.", smrDropReasons),
		probeReplyDrops: labelled(r, "rloc_probing", "replies_dropped",
			"RLOC-probe replies not taken as an answer, by reason.", probeReplyDropReasons),
	}
	for _, reason := range xtrDropReasons {
		x.drops[reason] = r.Counter(stats.Desc{Subsystem: "etr", Name: "map_requests_dropped",
			Help: "Map-Requests the xTR did not answer, by reason.", Labels: [][2]string{{"reason", reason}}})
	}
	return x
}

// labelled registers one counter per reason.
func labelled(r *stats.Registry, sub, name, help string, reasons []string) map[string]*stats.Counter {
	m := make(map[string]*stats.Counter, len(reasons))
	for _, reason := range reasons {
		m[reason] = r.Counter(stats.Desc{Subsystem: sub, Name: name, Help: help, Labels: [][2]string{{"reason", reason}}})
	}
	return m
}

func (c *counters) requestDropped(reason string) *stats.Counter { return c.drops[reason] }
