// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//
// The kernel data path of lispd: LISP encapsulation (ITR, PITR) and
// decapsulation (ETR) as one tc program attached with tcx on the ingress
// of the host's Ethernet interfaces. It handles the common case in the
// kernel and hands everything else, untouched, to the userspace engine
// (TC_ACT_OK: the kernel routes the packet into the TUN, or delivers the
// LISP packet to the UDP 4341 socket), which stays the reference:
// misses, negative entries other than drops, packets too big, fragments,
// IP options, expired TTLs, hosts that moved away, instances with source
// checks, PETR traffic from sources the PETR does not serve.
//
// The headers it writes are the ones the userspace engine writes (see
// internal/dataplane: itr.go, packet.go, underlay_linux.go, gso_linux.go):
// the flow hash is the engine's (same seed), so a flow picks the same
// locator and outer source port whichever path carries a packet of it.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

// Newer than Debian 12's uapi headers (6.1); values from the kernel's BTF
// (enum in include/uapi/linux/bpf.h since 6.3).
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define MAX_LOCATORS 8
#define LISP_HDR_LEN 8
#define UDP_HDR_LEN 8
#define OVERHEAD4 (20 + UDP_HDR_LEN + LISP_HDR_LEN)
#define OVERHEAD6 (40 + UDP_HDR_LEN + LISP_HDR_LEN)

#define LISP_N 0x80
#define LISP_I 0x08
#define LISP_P 0x04
#define LISP_KK 0x03
#define LISP_NEV 0xb0

#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff
#define IP_DF 0x4000

// Counters: one per-CPU slot each; the Go side names them (counters.go).
enum counter {
	C_ENCAP_PKTS,
	C_ENCAP_BYTES,
	C_DECAP_PKTS,
	C_DECAP_BYTES,
	C_PETR_ENCAP,
	C_EVENTS_LOST,
	C_PETR_DECAP,
	// Handed to the userspace path, by reason.
	C_PUNT_MISS,
	C_PUNT_EXPIRED,
	C_PUNT_NEGATIVE,
	C_PUNT_TOO_BIG,
	C_PUNT_FRAGMENT,
	C_PUNT_TTL,
	C_PUNT_NO_ROUTE,
	C_PUNT_DYNAMIC_EID,
	C_PUNT_UNHANDLED,
	C_PUNT_NOT_LOCAL_EID,
	C_PUNT_SOURCE_CHECK,
	C_PUNT_UNKNOWN_IID,
	C_PUNT_HEADER,
	C_PUNT_ECN,
	C_PUNT_ERROR,
	C_PUNT_CHECKSUM,
	C_PUNT_LOCAL_ROUTE,
	C_PUNT_PETR_SOURCE,
	// Dropped in the kernel, by reason.
	C_DROP_NEGATIVE,
	C_DROP_NEGATIVE_POLICY,
	C_DROP_NEGATIVE_AUTH,
	C_DROP_NEGATIVE_UNKNOWN,
	C_DROP_NO_LOCATOR,
	C_DROP_ERROR,
	// Encapsulated by moving the packet within its buffer (also counted
	// in C_ENCAP_PKTS): see encap_in_place.
	C_ENCAP_IN_PLACE,
	C_NUM,
};

// What a map-cache entry tells the ITR to do.
enum action {
	ACT_ENCAP = 0, // to one of the locators
	ACT_DROP = 1,  // count in counter 'reason' and drop
	ACT_PUNT = 2,  // let the userspace engine decide
};

// Keys of the LPM tries: instance ID then the address, IPv4 as
// ::ffff:a.b.c.d, so prefixlen = 32 + 96 + IPv4 prefix length. Instance
// IDs have 24 bits; KEY_IPV6 above them keeps an IPv6 prefix that covers
// ::ffff:0:0/96 from matching IPv4 addresses.
#define KEY_IPV6 (1u << 24)
struct eid_key {
	__u32 prefixlen;
	__u32 iid;
	__u8 addr[16];
};

struct locator {
	__u8 addr[16];
	__u32 cum;       // cumulative weight, this locator included
	__u16 max_inner; // largest inner packet that fits the underlay MTU
	__u8 v6;
	__u8 pad;
};

struct cache_entry {
	__u8 action;
	__u8 count;
	__u8 reason;
	__u8 petr;
	__u32 total;   // sum of the weights: hash % total picks a locator
	__u64 expires; // CLOCK_MONOTONIC ns (read coarse); 0: never
	struct locator loc[MAX_LOCATORS];
};

struct config {
	__u64 seed;       // the userspace engine's flow-hash seed
	__u64 sample_ns;  // least time between two decapsulation events per outer source
	__u8 src4[4];     // outer sources (the engine's OuterSources)
	__u8 src6[16];
	__u32 rloc_ifindex4; // where the underlay's routes are looked up from
	__u32 rloc_ifindex6;
	__u16 data_port;  // host order
	__u16 port_base;  // outer source port: port_base + srcport % port_mod when port_mod != 0
	__u16 port_mod;
	__u8 nonce;       // N bit and a random nonce
	__u8 keep_dscp;   // do not copy the outer DSCP inward
	__u8 itr;         // encapsulate (ITR or PITR)
	__u8 etr;         // decapsulate
	__u8 petr;        // decapsulate toward non-LISP hosts too (lisp_petr_sources)
	__u8 pad;
};

struct iface {
	__u32 iid; // instance of the EID-side interface (its VRF's)
	__u8 itr;  // look packets arriving here up in the map-cache
	__u8 pad[3];
	// The TUN of that instance (0: none), so that the ITR needs no
	// lookup in lisp_instances for each packet.
	__u32 tun_ifindex;
};

struct instance {
	__u32 tun_ifindex; // the instance's TUN: decapsulated packets are routed as if they came out of it
	__u8 punt;         // source checks on: every packet to userspace
	__u8 pad[3];
};

// A decapsulated packet's outer source, sampled for the control plane
// (the userspace engine's Decapsulated hook: SMR targets).
struct decap_event {
	__u8 outer[16];
	__u8 inner[16];
	__u32 iid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} lisp_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 20);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eid_key);
	__type(value, struct cache_entry);
} lisp_map_cache SEC(".maps");

// The ETR's database (value 1), the hosts that moved away (value 2, as
// /32 or /128: more specific, so they win) and the dynamic-EID ranges
// (value 3: an address where no host was seen is the engine's; a detected
// host is a /32 or /128 of value 1).
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eid_key);
	__type(value, __u8);
} lisp_local_eids SEC(".maps");

// Dynamic-EID ranges (value 1) and the hosts already detected in them
// (value 0, /32 or /128).
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eid_key);
	__type(value, __u8);
} lisp_dynamic_eids SEC(".maps");

// The inner sources a PETR relays to non-LISP hosts (petr.allowed-source-eids;
// value 1). Anything else not for a local EID goes to the userspace
// engine, which drops and counts it (RFC 6832 §4.2).
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eid_key);
	__type(value, __u8);
} lisp_petr_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u8[16]);
	__type(value, __u8);
} lisp_local_rlocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct iface);
} lisp_ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct instance);
} lisp_instances SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u8[16]);
	__type(value, __u64);
} lisp_decap_seen SEC(".maps");

// The outer source this CPU last looked up in lisp_decap_seen and the
// time recorded there: a flow's packets skip the LRU hash while it says
// the source was sampled less than sample_ns ago.
struct seen_cache {
	__u8 outer[16];
	__u64 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct seen_cache);
} lisp_decap_seen_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} lisp_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_NUM);
	__type(key, __u32);
	__type(value, __u64);
} lisp_counters SEC(".maps");

// The generation of everything an ITR verdict depends on: the Go side
// bumps it after each write to the map-cache, the dynamic-EID, interface
// and configuration maps, and on every netlink route, rule, neighbour,
// address or link notification of its namespace (kernel.go: watch). A
// flow slot filled under an older generation is stale.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lisp_gen SEC(".maps");

// What the ITR's lookups decided for one flow: the map-cache entry's
// locator, whether the kernel routes the inner packet into the TUN, and
// the underlay's next hop with its MACs. Per CPU and direct-mapped by the
// flow hash, so that a flow's packets skip the two LPM tries and both FIB
// lookups; only verdicts that encapsulate straight out (a resolved
// neighbour) are kept.
#define FLOW_SLOTS 64

struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__u32 ports;
	__u32 ifindex;
	__u8 l4proto;
	__u8 flags; // 1: IPv6, 2: ports parsed (in.proto)
	__u8 tos;
	__u8 pad[5];
};

struct itr_flow {
	struct flow_key key;
	__u64 gen; // 0: empty
	__u64 expires;
	struct locator loc;
	__u32 ifindex;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u8 petr;
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct itr_flow);
} lisp_itr_flows SEC(".maps");

// The ETR's verdict per decapsulated flow, the same way: the inner
// destination is a local EID (or a PETR's source is served), and the
// next hop out of the instance's table with its MACs. len_ok is the
// largest inner packet the FIB's MTU check passed for it.
struct etr_key {
	__u8 src[16];
	__u8 dst[16];
	__u32 iid;
	__u8 tos;
	__u8 v6p;
	__u8 pad[2];
};

struct etr_flow {
	struct etr_key key;
	__u64 gen; // 0: empty
	__u32 len_ok;
	__u32 ifindex;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u8 petr;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct etr_flow);
} lisp_etr_flows SEC(".maps");

static __always_inline __u64 read_gen(void)
{
	__u32 zero = 0;
	__u64 *g = bpf_map_lookup_elem(&lisp_gen, &zero);
	return g ? *g : 0;
}

// The last answers of the hash maps looked up for every packet, per CPU,
// valid in the generation they were read in (the Go side bumps it after
// writing any of these maps).
struct memo {
	__u64 rloc_gen; // rloc is one of lisp_local_rlocs
	__u8 rloc[16];
	__u64 inst_gen; // inst is lisp_instances[inst_iid]
	__u32 inst_iid;
	struct instance inst;
	__u64 ifc_gen; // ifc is lisp_ifaces[ifc_index]
	__u32 ifc_index;
	struct iface ifc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct memo);
} lisp_memo SEC(".maps");

// same_words compares n 8-byte words.
static __always_inline int same_words(const void *a, const void *b, int n)
{
	const __u64 *x = a, *y = b;
	__u64 d = 0;
#pragma unroll
	for (int i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

static __always_inline void count(__u32 c, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&lisp_counters, &c);
	if (v)
		*v += n;
}

static __always_inline int punt(__u32 c)
{
	count(c, 1);
	return TC_ACT_OK;
}

// load copies len bytes at off out of the packet: straight from the
// linear data where they are in it, through the helper otherwise.
//
// The packet copy is declared 4-byte aligned although headers behind a
// 14-byte Ethernet header are not: without it clang reads a packet byte by
// byte and assembles the words with shifts (about three instructions a
// byte, a few hundred a packet). The kernels this runs on have efficient
// unaligned access, where the verifier allows unaligned packet loads.
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	if (off < 256 && data + off + len <= end) {
		__builtin_memcpy(to, __builtin_assume_aligned(data + off, 4), len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

static __always_inline __u64 mix64(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static __always_inline __u64 load_be64(const __u8 *p)
{
	__u64 v;
	__builtin_memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}

static __always_inline int has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static __always_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

// ipv4_csum computes the header checksum of a 20-byte IPv4 header whose
// checksum field is zero.
static __always_inline __u16 ipv4_csum(const void *hdr)
{
	const __u16 *w = hdr;
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	return csum_fold(s);
}

// csum_replace updates a checksum after a 16-bit word changed (RFC 1624).
static __always_inline __u16 csum_replace(__u16 c, __u16 old, __u16 new)
{
	__u32 s = (__u16)~c + (__u32)(__u16)~old + new;
	return csum_fold(s);
}

// v4mapped writes ::ffff:a4. Both are 4-byte aligned (keys, events and
// headers): said, so that clang writes words, not bytes.
static __always_inline void v4mapped(__u8 *dst, const __u8 *a4)
{
	__u32 *d = __builtin_assume_aligned(dst, 4);
	d[0] = 0;
	d[1] = 0;
	d[2] = bpf_htonl(0xffff);
	__builtin_memcpy(&d[3], __builtin_assume_aligned(a4, 4), 4);
}

// ecn_decap is RFC 6040 §4.2; returns 0xff for "drop".
static __always_inline __u8 ecn_decap(__u8 outer, __u8 inner)
{
	if (outer == 3 && inner == 0)
		return 0xff;
	if (outer == 3)
		return 3;
	if (outer == 1 && inner == 2)
		return 1;
	return inner;
}

// What the ITR parses of an inner packet.
struct inner {
	union {
		struct iphdr v4;
		struct ipv6hdr v6;
	};
	__u32 ports;
	__u8 v6p;
	__u8 proto; // with ports, 0 otherwise
	__u8 ttl, tos;
	__u16 hdrlen; // IP + TCP header (for GSO) or IP
	__u32 len;    // IP length
	__u8 l4proto;
	// The transport checksum covers a pseudo-header (TCP, UDP with a
	// checksum, ICMPv6) or nothing else (ICMP): the sum of the transport
	// segment is then known without reading it (see outer_csum).
	__u8 l4sum_known;
};

// flow_hash is the userspace engine's flowHash (packet.go).
static __always_inline __u64 flow_hash(const struct inner *in, __u64 seed)
{
	__u64 h = seed;
	if (!in->v6p) {
		h = mix64(h ^ ((__u64)bpf_ntohl(in->v4.saddr) << 32 | bpf_ntohl(in->v4.daddr)));
	} else {
		const __u8 *s = (const __u8 *)&in->v6.saddr, *d = (const __u8 *)&in->v6.daddr;
		h = mix64(h ^ load_be64(s));
		h = mix64(h ^ load_be64(s + 8));
		h = mix64(h ^ load_be64(d));
		h = mix64(h ^ load_be64(d + 8));
	}
	if (in->proto)
		h ^= (__u64)in->proto << 32 | in->ports;
	return mix64(h);
}

// fib_result_ok: the FIB found a next hop out of an interface the program
// is attached to (an Ethernet interface of this node). A route into a TUN
// (lispd's own, for EID space the kernel would hand to the userspace
// engine) or any other device is left to the kernel and the engine.
static __always_inline int fib_result_ok(long rc, const struct bpf_fib_lookup *fib)
{
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	__u32 ifindex = fib->ifindex;
	return bpf_map_lookup_elem(&lisp_ifaces, &ifindex) != 0;
}

// eth_of fills in the Ethernet header of a packet the FIB lookup found a
// next hop for (the neighbour subsystem writes it otherwise).
static __always_inline void eth_of(struct ethhdr *eth, const struct bpf_fib_lookup *fib, long rc, __u16 proto)
{
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	}
	eth->h_proto = bpf_htons(proto);
}

// forward sends a packet whose Ethernet header is at offset 0 to where
// the FIB lookup said: straight out with the MACs it found, or through
// the neighbour subsystem when it has no entry yet.
static __always_inline int forward(struct __sk_buff *skb, struct bpf_fib_lookup *fib, long rc, __u16 proto)
{
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		struct ethhdr eth;
		eth_of(&eth, fib, rc, proto);
		if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), BPF_F_RECOMPUTE_CSUM))
			return TC_ACT_SHOT;
		return bpf_redirect(fib->ifindex, 0);
	}
	struct bpf_redir_neigh nh = {};
	if (fib->family == AF_INET6) {
		nh.nh_family = AF_INET6;
		__builtin_memcpy(nh.ipv6_nh, fib->ipv6_dst, 16);
	} else {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = fib->ipv4_dst;
	}
	return bpf_redirect_neigh(fib->ifindex, &nh, sizeof(nh), 0);
}


// parse_inner reads the IP header (and the first transport word) of the
// packet at off. 0: ok; otherwise the punt counter.
static __always_inline int parse_inner(struct __sk_buff *skb, __u32 off, __u16 ethproto, struct inner *in)
{
	__u32 l4;
	__u8 proto;
	in->proto = 0;
	in->ports = 0;
	if (ethproto == ETH_P_IP) {
		in->v6p = 0;
		if (load(skb, off, &in->v4, sizeof(in->v4)))
			return C_PUNT_UNHANDLED;
		if (in->v4.version != 4 || in->v4.ihl != 5)
			return C_PUNT_UNHANDLED; // options: the userspace path has them
		if (bpf_ntohs(in->v4.frag_off) & (IP_MF | IP_OFFMASK))
			return C_PUNT_FRAGMENT;
		in->len = bpf_ntohs(in->v4.tot_len);
		in->ttl = in->v4.ttl;
		in->tos = in->v4.tos;
		proto = in->v4.protocol;
		l4 = off + 20;
		in->hdrlen = 20;
	} else {
		in->v6p = 1;
		if (load(skb, off, &in->v6, sizeof(in->v6)))
			return C_PUNT_UNHANDLED;
		if (in->v6.version != 6)
			return C_PUNT_UNHANDLED;
		in->len = 40 + bpf_ntohs(in->v6.payload_len);
		in->ttl = in->v6.hop_limit;
		in->tos = in->v6.priority << 4 | in->v6.flow_lbl[0] >> 4;
		proto = in->v6.nexthdr;
		if (proto == 44)
			return C_PUNT_FRAGMENT;
		l4 = off + 40;
		in->hdrlen = 40;
	}
	// Padding, jumbograms (BIG TCP), truncation: the userspace path.
	if (in->len != skb->len - off)
		return C_PUNT_UNHANDLED;
	in->l4proto = proto;
	in->l4sum_known = proto == IPPROTO_TCP || proto == IPPROTO_ICMP || proto == 58 /* ICMPv6 */;
	if (proto == IPPROTO_UDP && in->len >= in->hdrlen + 8) {
		__u16 c;
		if (load(skb, l4 + 6, &c, 2))
			return C_PUNT_UNHANDLED;
		in->l4sum_known = c != 0 || in->v6p; // IPv4 UDP without a checksum: unknown
	}
	if (has_ports(proto) && in->len >= in->hdrlen + 4) {
		__u32 w;
		if (load(skb, l4, &w, 4))
			return C_PUNT_UNHANDLED;
		in->ports = bpf_ntohl(w);
		in->proto = proto;
	}
	if (skb->gso_size) {
		// A GSO super-packet: the kernel segments it after
		// encapsulation; only TCP's segment boundaries survive growing
		// the header (bpf_skb_adjust_room lowers the MSS).
		__u8 doff;
		if (proto != IPPROTO_TCP || load(skb, l4 + 12, &doff, 1))
			return C_PUNT_UNHANDLED;
		in->hdrlen += (doff >> 4) * 4;
	}
	return 0;
}

static __always_inline int nonunicast(const struct inner *in)
{
	if (!in->v6p) {
		__u32 d = bpf_ntohl(in->v4.daddr);
		return (d >> 28) == 0xe || d == 0xffffffff || (d >> 16) == 0xa9fe || d == 0;
	}
	const __u8 *d = (const __u8 *)&in->v6.daddr;
	return d[0] == 0xff || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80);
}

static __always_inline void key_of(struct eid_key *k, __u32 iid, const struct inner *in, int src)
{
	k->iid = iid | (in->v6p ? KEY_IPV6 : 0);
	if (!in->v6p) {
		k->prefixlen = 32 + 128;
		v4mapped(k->addr, (const __u8 *)(src ? &in->v4.saddr : &in->v4.daddr));
	} else {
		k->prefixlen = 32 + 128;
		__builtin_memcpy(k->addr, src ? (const void *)&in->v6.saddr : (const void *)&in->v6.daddr, 16);
	}
}

static __always_inline __u32 sum16(const void *p, int words)
{
	const __u16 *w = p;
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 20; i++)
		if (i < words)
			s += w[i];
	return s;
}

// outer_csum is the outer UDP checksum, computed as Linux's local
// checksum offload does (Documentation/networking/checksum-offloads.rst):
// once the inner transport checksum is right (filled in already, or by
// the offload that completes a CHECKSUM_PARTIAL packet), the inner
// transport segment sums to the complement of its pseudo-header, so the
// outer checksum needs the headers only, never the payload. in holds the
// inner IP header as it leaves (TTL down by one); words are summed as
// they lie in memory (network order), which one's-complement sums allow.
static __always_inline __u16 outer_csum(const struct inner *in, __u32 outer_pseudo, const void *udp_lisp)
{
	__u32 s = outer_pseudo + sum16(udp_lisp, 8); // UDP header (checksum 0) and LISP header
	__u32 l4len = in->len - (in->v6p ? 40 : 20);
	__u32 ps;
	if (!in->v6p) {
		// A valid IPv4 header sums to zero: nothing to add for it.
		if (in->l4proto == IPPROTO_ICMP)
			return csum_fold(s) ?: 0xffff; // no pseudo-header: the segment sums to zero
		ps = sum16(&in->v4.saddr, 4);
	} else {
		s += sum16(&in->v6, 20);
		ps = sum16(&in->v6.saddr, 16);
	}
	ps += bpf_htons(in->l4proto) + bpf_htons(l4len);
	s += csum_fold(ps); // ~pseudo: what the transport segment sums to
	return csum_fold(s) ?: 0xffff;
}

// The outer headers the ITR writes in front of the inner packet, and the
// first 12 bytes of the inner header, which hold its TTL (down by one)
// and, in IPv4, the header checksum: one store for both, from eth on.
// The two bytes in front align the IP header and what follows it, so
// that clang writes and sums them in words rather than bytes (a packed
// struct with an aligned start tells it each field's alignment).
#define OUTER_LEAD 2
struct outer4 {
	__u8 lead[OUTER_LEAD];
	struct ethhdr eth;
	struct iphdr ip;
	__be16 sport, dport, ulen, ucsum;
	__u8 lisp[8];
	__u8 inner[12];
} __attribute__((packed, aligned(8)));

struct outer6 {
	__u8 lead[OUTER_LEAD];
	struct ethhdr eth;
	struct ipv6hdr ip;
	__be16 sport, dport, ulen, ucsum;
	__u8 lisp[8];
	__u8 inner[12];
} __attribute__((packed, aligned(8)));

// OUTER_LEN is the length to store of such a struct o, from eth to the
// end of its last field (sizeof would add the tail padding aligned(8)
// brings).
#define OUTER_LEN(o, last) (__builtin_offsetof(typeof(o), last) + sizeof((o).last) - OUTER_LEAD)

static __always_inline void lisp_header(__u8 *h, const struct config *cfg, __u32 iid)
{
	__u32 nonce = 0;
	h[0] = LISP_I;
	if (cfg->nonce) {
		h[0] |= LISP_N;
		nonce = bpf_get_prandom_u32() & 0xffffff;
	}
	h[1] = nonce >> 16;
	h[2] = nonce >> 8;
	h[3] = nonce;
	h[4] = iid >> 16;
	h[5] = iid >> 8;
	h[6] = iid;
	h[7] = 0; // LSBs: the userspace path does not set L either
}

// outer4_fill writes the Ethernet, IPv4, UDP (but its checksum) and LISP
// headers of a zeroed outer4 for an inner packet of ilen bytes, and
// returns the outer UDP pseudo-header sum.
static __always_inline __u32 outer4_fill(struct outer4 *o, const struct config *cfg, const struct locator *l,
					 const struct bpf_fib_lookup *fib, long frc, const struct inner *in, __u8 ttl,
					 __u16 sport, __u32 ilen, __u32 iid)
{
	eth_of(&o->eth, fib, frc, ETH_P_IP);
	o->ip.version = 4;
	o->ip.ihl = 5;
	o->ip.tos = in->tos;
	o->ip.tot_len = bpf_htons(ilen + OVERHEAD4);
	o->ip.frag_off = bpf_htons(IP_DF);
	o->ip.ttl = ttl;
	o->ip.protocol = IPPROTO_UDP;
	__builtin_memcpy(&o->ip.saddr, cfg->src4, 4);
	__builtin_memcpy(&o->ip.daddr, l->addr + 12, 4);
	o->ip.check = ipv4_csum(&o->ip);
	o->sport = bpf_htons(sport);
	o->dport = bpf_htons(cfg->data_port);
	o->ulen = bpf_htons(ilen + UDP_HDR_LEN + LISP_HDR_LEN);
	lisp_header(o->lisp, cfg, iid);
	return sum16(&o->ip.saddr, 4) + bpf_htons(IPPROTO_UDP) + o->ulen;
}

// routed_to_tun: the kernel would route the inner packet into the TUN of
// its instance, as it routes every packet the userspace engine sees. A
// more specific route elsewhere (a dynamic EID's host route, a connected
// subnet, a route the operator added) wins over any map-cache entry, as it
// does on the userspace path, where such packets never reach the engine.
static __always_inline int routed_to_tun(struct __sk_buff *skb, const struct iface *ifc, const struct inner *in,
					 struct bpf_fib_lookup *fib)
{
	if (!ifc->tun_ifindex)
		return 0;
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->ifindex = skb->ingress_ifindex;
	fib->l4_protocol = in->l4proto;
	if (in->proto) {
		fib->sport = bpf_htons(in->ports >> 16);
		fib->dport = bpf_htons(in->ports & 0xffff);
	}
	if (!in->v6p) {
		fib->family = AF_INET;
		fib->tos = in->tos;
		fib->ipv4_src = in->v4.saddr;
		fib->ipv4_dst = in->v4.daddr;
	} else {
		fib->family = AF_INET6;
		__builtin_memcpy(fib->ipv6_src, &in->v6.saddr, 16);
		__builtin_memcpy(fib->ipv6_dst, &in->v6.daddr, 16);
	}
	long rc = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	// FRAG_NEEDED: a packet bigger than the TUN's MTU (the kernel checks
	// it after a successful lookup); the TUN is where it goes all the
	// same, and the MTU check further on hands it to the userspace path.
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH && rc != BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return 0;
	return fib->ifindex == ifc->tun_ifindex;
}

static __always_inline void flow_key_of(struct flow_key *k, const struct inner *in, __u32 ifindex)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (!in->v6p) {
		__builtin_memcpy(k->src, &in->v4.saddr, 4);
		__builtin_memcpy(k->dst, &in->v4.daddr, 4);
	} else {
		__builtin_memcpy(k->src, &in->v6.saddr, 16);
		__builtin_memcpy(k->dst, &in->v6.daddr, 16);
	}
	k->ports = in->ports;
	k->ifindex = ifindex;
	k->l4proto = in->l4proto;
	k->flags = in->v6p | (in->proto ? 2 : 0);
	k->tos = in->tos;
}

// itr_lookup decides where the inner packet goes: the locator (*loc), the
// FIB result of the underlay next hop (*fib, *frc) and whether the entry
// is a PETR's. GO_ENCAP: encapsulate; otherwise the program's verdict
// (TC_ACT_OK, 0, among them).
#define GO_ENCAP (-1)
static __always_inline int itr_lookup(struct __sk_buff *skb, const struct config *cfg, const struct iface *ifc,
				      __u64 gen, const struct inner *in, __u64 h, struct locator *loc,
				      struct bpf_fib_lookup *fib, long *frc, __u8 *petr)
{
	__u32 idx = h & (FLOW_SLOTS - 1);
	struct itr_flow *slot = bpf_map_lookup_elem(&lisp_itr_flows, &idx);
	struct flow_key fk;
	flow_key_of(&fk, in, skb->ingress_ifindex);
	if (slot && slot->gen == gen && same_words(&slot->key, &fk, sizeof(fk) / 8) &&
	    (!slot->expires || bpf_ktime_get_coarse_ns() < slot->expires)) {
		__builtin_memcpy(loc, &slot->loc, sizeof(*loc));
		fib->ifindex = slot->ifindex;
		__builtin_memcpy(fib->dmac, slot->dmac, ETH_ALEN);
		__builtin_memcpy(fib->smac, slot->smac, ETH_ALEN);
		*frc = BPF_FIB_LKUP_RET_SUCCESS;
		*petr = slot->petr;
		return GO_ENCAP;
	}

	struct eid_key key;
	key_of(&key, ifc->iid, in, 1);
	__u8 *dyn = bpf_map_lookup_elem(&lisp_dynamic_eids, &key);
	if (dyn && *dyn)
		return punt(C_PUNT_DYNAMIC_EID); // a host the control plane has not seen yet

	key_of(&key, ifc->iid, in, 0);
	struct cache_entry *e = bpf_map_lookup_elem(&lisp_map_cache, &key);
	if (!e)
		return punt(C_PUNT_MISS);
	if (!routed_to_tun(skb, ifc, in, fib))
		return punt(C_PUNT_LOCAL_ROUTE);
	// The coarse clock (one tick behind at most) costs a memory read
	// where the precise one reads the clock source: an entry may live a
	// few milliseconds past its TTL of minutes.
	if (e->expires && bpf_ktime_get_coarse_ns() >= e->expires)
		return punt(C_PUNT_EXPIRED);
	if (e->action == ACT_PUNT)
		return punt(C_PUNT_NEGATIVE);
	if (e->action == ACT_DROP) {
		__u32 r = e->reason;
		if (r < C_DROP_NEGATIVE || r >= C_NUM)
			r = C_DROP_NEGATIVE_UNKNOWN;
		count(r, 1);
		return TC_ACT_SHOT;
	}
	if (e->count == 0 || e->total == 0) {
		count(C_DROP_NO_LOCATOR, 1);
		return TC_ACT_SHOT;
	}
	if (in->ttl <= 1)
		return punt(C_PUNT_TTL); // the kernel answers time-exceeded

	// The userspace engine's fwdEntry.pick: hash modulo the total weight,
	// the first locator whose cumulative weight is above it.
	__u32 r = h % e->total;
	__u32 i = e->count - 1;
#pragma unroll
	for (int j = 0; j < MAX_LOCATORS; j++) {
		if (j < e->count && r < e->loc[j].cum) {
			i = j;
			break;
		}
	}
	if (i >= MAX_LOCATORS)
		return punt(C_PUNT_ERROR);
	__builtin_memcpy(loc, &e->loc[i], sizeof(*loc));
	*petr = e->petr;

	__builtin_memset(fib, 0, sizeof(*fib));
	if (!loc->v6) {
		fib->family = AF_INET;
		__builtin_memcpy(&fib->ipv4_src, cfg->src4, 4);
		__builtin_memcpy(&fib->ipv4_dst, loc->addr + 12, 4);
		fib->ifindex = cfg->rloc_ifindex4;
	} else {
		fib->family = AF_INET6;
		__builtin_memcpy(fib->ipv6_src, cfg->src6, 16);
		__builtin_memcpy(fib->ipv6_dst, loc->addr, 16);
		fib->ifindex = cfg->rloc_ifindex6;
	}
	*frc = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	if (!fib_result_ok(*frc, fib))
		return punt(C_PUNT_NO_ROUTE);
	if (slot && *frc == BPF_FIB_LKUP_RET_SUCCESS) {
		// gen was read before the lookups: a change after it leaves
		// the slot stale for the next packet.
		__builtin_memcpy(&slot->key, &fk, sizeof(fk));
		slot->gen = gen;
		slot->expires = e->expires;
		__builtin_memcpy(&slot->loc, loc, sizeof(*loc));
		slot->ifindex = fib->ifindex;
		__builtin_memcpy(slot->dmac, fib->dmac, ETH_ALEN);
		__builtin_memcpy(slot->smac, fib->smac, ETH_ALEN);
		slot->petr = *petr;
	}
	return GO_ENCAP;
}

// The fields of the kernel's sk_buff that in-place encapsulation reads,
// through bpf_cast_to_kern_ctx (Linux 6.2); CO-RE takes their offsets
// from the running kernel's BTF.
struct sk_buff___lisp {
	__u16 mac_header; // offset from head: the headroom, at tc ingress
	__u16 csum_start; // CHECKSUM_PARTIAL: offset from head
	__u16 csum_offset;
	__u8 ip_summed : 2;
} __attribute__((preserve_access_index));

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

#define CHECKSUM_NONE 0
#define CHECKSUM_UNNECESSARY 1
#define CHECKSUM_PARTIAL 3

// In-place encapsulation handles IPv4 packets up to this size.
#define IN_PLACE_MAX 256

// A per-CPU buffer for a packet encapsulated in place: its outer
// headers, then the inner packet (and the zero padding its checksum
// sum needs).
#define IN_PLACE_BUF (__builtin_offsetof(struct outer4, inner) + IN_PLACE_MAX + 4)
struct in_place_buf {
	__u64 b[(IN_PLACE_BUF + 7) / 8]; // a struct outer4, whose inner[] is where the inner packet starts
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct in_place_buf);
} lisp_in_place SEC(".maps");

// in_place_ok says whether a small IPv4 packet is better encapsulated in
// place, and how. bpf_skb_adjust_room reallocates the head of every
// packet with less than 36 bytes in front of its Ethernet header, which
// is what a local UDP socket behind a veth (a container) leaves: 2
// bytes. That reallocation took half the ITR's time and made 64-byte UDP
// 15 % slower. Moving the packet 36 bytes towards its tail, where such a
// buffer has room, then writing the outer headers in front, costs two
// copies of a small packet instead. It is safe only where the offsets
// the kernel keeps from the head still mean the same after the move: the
// network and transport header offsets now name the outer IPv4 and UDP
// headers, which is right; a pending checksum (CHECKSUM_PARTIAL) names a
// field by offset, which the move would point elsewhere — unless it was
// the inner UDP checksum of a 20-byte IPv4 header, whose offset the
// outer UDP checksum takes over exactly: the program then finishes the
// inner checksum itself and leaves the outer one pending. Any other
// pending checksum (TCP, another offset, one a guest made up) and
// CHECKSUM_COMPLETE keep to bpf_skb_adjust_room.
enum in_place {
	NOT_IN_PLACE,
	IN_PLACE,            // no checksum state to carry (CHECKSUM_NONE)
	IN_PLACE_VERIFIED,   // CHECKSUM_UNNECESSARY: reset, the outer UDP is unverified
	IN_PLACE_FINISH_UDP, // CHECKSUM_PARTIAL on the inner UDP checksum
};

static __always_inline enum in_place in_place_ok(struct __sk_buff *skb, const struct inner *in, __u32 ilen)
{
	if (skb->gso_size || in->v6p || ilen > IN_PLACE_MAX)
		return NOT_IN_PLACE;
	struct sk_buff___lisp *k = bpf_cast_to_kern_ctx(skb);
	if (k->mac_header >= OVERHEAD4)
		return NOT_IN_PLACE; // room in front: bpf_skb_adjust_room moves nothing
	__u8 summed = BPF_CORE_READ_BITFIELD(k, ip_summed);
	if (summed == CHECKSUM_NONE)
		return IN_PLACE;
	if (summed == CHECKSUM_UNNECESSARY)
		return IN_PLACE_VERIFIED;
	if (summed == CHECKSUM_PARTIAL && in->l4proto == IPPROTO_UDP && ilen >= 20 + UDP_HDR_LEN &&
	    k->csum_start == k->mac_header + ETH_HLEN + 20 && k->csum_offset == 6)
		return IN_PLACE_FINISH_UDP;
	return NOT_IN_PLACE;
}

// encap_in_place encapsulates as in_place_ok said: the inner packet is
// read into a per-CPU buffer behind its outer headers, the packet grows
// 36 bytes at its tail and the whole frame is written back in one store.
// Returns GO_ENCAP when it did, otherwise the program's verdict.
static __always_inline int encap_in_place(struct __sk_buff *skb, enum in_place how, const struct config *cfg,
					  const struct locator *l, const struct bpf_fib_lookup *fib, long frc,
					  const struct inner *in, __u8 ttl, __u16 sport, __u32 ilen, __u32 iid)
{
	__u32 zero = 0;
	struct in_place_buf *buf = bpf_map_lookup_elem(&lisp_in_place, &zero);
	if (!buf)
		return punt(C_PUNT_ERROR);
	// A length the verifier can bound: [20, IN_PLACE_MAX].
	__u64 n = ilen - 20;
	asm volatile("%0 &= 0x1ff" : "+r"(n));
	if (n > IN_PLACE_MAX - 20)
		return punt(C_PUNT_ERROR);
	n += 20;
	struct outer4 *o = (struct outer4 *)buf->b;
	__u8 *ip = o->inner;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, n))
		return punt(C_PUNT_ERROR); // nothing changed yet
	__builtin_memcpy(ip, &in->v4, 12); // TTL down by one, checksum updated
	__builtin_memset(o, 0, __builtin_offsetof(struct outer4, inner));
	__u32 ps = outer4_fill(o, cfg, l, fib, frc, in, ttl, sport, ilen, iid);
	if (how == IN_PLACE_FINISH_UDP) {
		// The inner UDP checksum field holds its pseudo-header sum;
		// the checksum covers that and the segment (zero-padded to
		// whole words here, not in the packet).
		__u64 ul4 = (n - 20 + 3) & ~3ULL;
		ip[n] = 0;
		ip[n + 1] = 0;
		ip[n + 2] = 0;
		asm volatile("%0 &= 0x1ff" : "+r"(ul4));
		if (ul4 > IN_PLACE_MAX - 20 + 4)
			return punt(C_PUNT_ERROR);
		__s64 sum = bpf_csum_diff(0, 0, (__be32 *)(ip + 20), ul4, 0);
		if (sum < 0)
			return punt(C_PUNT_ERROR);
		__u16 c = csum_fold((__u32)sum) ?: 0xffff;
		__builtin_memcpy(ip + 26, &c, 2);
		// The outer UDP checksum is now the pending one: its field
		// holds the pseudo-header sum, as a UDP socket leaves it.
		o->ucsum = (__u16)~csum_fold(ps);
	} else if (in->l4sum_known) {
		o->ucsum = outer_csum(in, ps, &o->sport);
	}
	if (bpf_skb_change_tail(skb, skb->len + OVERHEAD4, 0)) {
		count(C_DROP_ERROR, 1); // the tail may have grown: not the packet it was
		return TC_ACT_SHOT;
	}
	// CHECKSUM_UNNECESSARY said the inner checksum was verified;
	// nothing verified the outer one.
	if (how == IN_PLACE_VERIFIED)
		bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET);
	// n again, bounded again: the verifier lost it across the calls.
	__u64 all = n - 20;
	asm volatile("%0 &= 0x1ff" : "+r"(all));
	if (all > IN_PLACE_MAX - 20)
		return TC_ACT_SHOT; // cannot happen: n was checked
	all += 20 + ETH_HLEN + OVERHEAD4;
	if (bpf_skb_store_bytes(skb, 0, &o->eth, all, 0)) {
		count(C_DROP_ERROR, 1);
		return TC_ACT_SHOT;
	}
	count(C_ENCAP_IN_PLACE, 1);
	return GO_ENCAP;
}

static __always_inline int itr(struct __sk_buff *skb, const struct config *cfg, const struct iface *ifc, __u64 gen,
			       __u16 ethproto)
{
	struct inner in;
	int rc = parse_inner(skb, ETH_HLEN, ethproto, &in);
	if (rc)
		return punt(rc);
	if (nonunicast(&in))
		return TC_ACT_OK;

	__u64 h = flow_hash(&in, cfg->seed);
	struct locator lc;
	struct bpf_fib_lookup fib;
	long frc;
	__u8 petr;
	rc = itr_lookup(skb, cfg, ifc, gen, &in, h, &lc, &fib, &frc, &petr);
	if (rc != GO_ENCAP)
		return rc;
	if (in.ttl <= 1)
		return punt(C_PUNT_TTL); // the kernel answers time-exceeded
	const struct locator *l = &lc;

	// Too big for the underlay: the userspace path answers ICMP or
	// fragments (its TUN has the reduced MTU).
	if (skb->gso_size) {
		if (skb->gso_size + in.hdrlen > l->max_inner + (l->v6 ? OVERHEAD6 : OVERHEAD4))
			return punt(C_PUNT_TOO_BIG);
	} else if (in.len > l->max_inner) {
		return punt(C_PUNT_TOO_BIG);
	}

	// An IPv6 outer header needs a UDP checksum (RFC 8200; zero is for
	// tunnels that agreed on it, RFC 6935, and capture tools call it
	// illegal): the program computes it from the headers when the inner
	// transport checksum allows (outer_csum); a GSO packet would need it
	// per segment, which tcx cannot ask the kernel for.
	if (l->v6 && (skb->gso_size || !in.l4sum_known))
		return punt(C_PUNT_CHECKSUM);

	// The inner packet is forwarded: its TTL goes down by one, as the
	// kernel's forwarding into the TUN does on the userspace path.
	// It is written with the outer headers.
	__u8 ttl = in.ttl - 1;
	if (!in.v6p) {
		__u16 old = bpf_ntohs(*(__u16 *)&in.v4.ttl);
		in.v4.ttl = ttl;
		in.v4.check = bpf_htons(csum_replace(bpf_ntohs(in.v4.check), old, bpf_ntohs(*(__u16 *)&in.v4.ttl)));
	} else {
		in.v6.hop_limit = ttl;
	}

	__u32 segs = skb->gso_segs > 1 ? skb->gso_segs : 1; // adjust_room resets it
	__u16 sport = 0xc000 | ((h >> 48) & 0x3fff);
	if (cfg->port_mod)
		sport = cfg->port_base + sport % cfg->port_mod;
	__u32 ilen = skb->len - ETH_HLEN;
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2(LISP_HDR_LEN);
	enum in_place how = l->v6 ? NOT_IN_PLACE : in_place_ok(skb, &in, ilen);
	if (how != NOT_IN_PLACE) {
		rc = encap_in_place(skb, how, cfg, l, &fib, frc, &in, ttl, sport, ilen, ifc->iid);
		if (rc != GO_ENCAP)
			return rc;
	} else if (!l->v6) {
		if (bpf_skb_adjust_room(skb, OVERHEAD4, BPF_ADJ_ROOM_MAC, flags | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
			return punt(C_PUNT_ERROR); // nothing changed yet
		struct outer4 o = {};
		__u32 ps = outer4_fill(&o, cfg, l, &fib, frc, &in, ttl, sport, ilen, ifc->iid);
		// IPv4 allows a zero UDP checksum (RFC 9300 §5.3 recommends it);
		// it is computed where that costs nothing, as the userspace path
		// computes it, so that both put the same bytes on the wire.
		if (!skb->gso_size && in.l4sum_known)
			o.ucsum = outer_csum(&in, ps, &o.sport);
		__builtin_memcpy(o.inner, &in.v4, sizeof(o.inner)); // in.v6 alike: a union
		if (bpf_skb_store_bytes(skb, 0, &o.eth, OUTER_LEN(o, inner), BPF_F_RECOMPUTE_CSUM)) {
			count(C_DROP_ERROR, 1);
			return TC_ACT_SHOT;
		}
	} else {
		if (bpf_skb_adjust_room(skb, OVERHEAD6, BPF_ADJ_ROOM_MAC, flags | BPF_F_ADJ_ROOM_ENCAP_L3_IPV6))
			return punt(C_PUNT_ERROR); // nothing changed yet
		struct outer6 o = {};
		eth_of(&o.eth, &fib, frc, ETH_P_IPV6);
		__u32 flow = ((__u32)sport * 0x9e37) & 0xfffff;
		__u32 w0 = 6 << 28 | (__u32)in.tos << 20 | flow;
		__be32 w0be = bpf_htonl(w0);
		__builtin_memcpy(&o.ip, &w0be, 4);
		o.ip.payload_len = bpf_htons(ilen + UDP_HDR_LEN + LISP_HDR_LEN);
		o.ip.nexthdr = IPPROTO_UDP;
		o.ip.hop_limit = ttl;
		__builtin_memcpy(&o.ip.saddr, cfg->src6, 16);
		__builtin_memcpy(&o.ip.daddr, l->addr, 16);
		o.sport = bpf_htons(sport);
		o.dport = bpf_htons(cfg->data_port);
		o.ulen = o.ip.payload_len;
		lisp_header(o.lisp, cfg, ifc->iid);
		__u32 ps = sum16(&o.ip.saddr, 16) + bpf_htons(IPPROTO_UDP) + o.ulen;
		o.ucsum = outer_csum(&in, ps, &o.sport);
		__builtin_memcpy(o.inner, &in.v4, sizeof(o.inner));
		if (bpf_skb_store_bytes(skb, 0, &o.eth, OUTER_LEN(o, inner), BPF_F_RECOMPUTE_CSUM)) {
			count(C_DROP_ERROR, 1);
			return TC_ACT_SHOT;
		}
	}
	count(C_ENCAP_PKTS, segs);
	count(C_ENCAP_BYTES, ilen);
	if (petr)
		count(C_PETR_ENCAP, 1);
	if (frc == BPF_FIB_LKUP_RET_SUCCESS)
		return bpf_redirect(fib.ifindex, 0); // the MACs are written
	return forward(skb, &fib, frc, l->v6 ? ETH_P_IPV6 : ETH_P_IP);
}

// same16 compares two 8-byte aligned 16-byte addresses.
static __always_inline int same16(const __u8 *a, const __u8 *b)
{
	const __u64 *x = __builtin_assume_aligned(a, 8), *y = __builtin_assume_aligned(b, 8);
	__u64 a0 = x[0], a1 = x[1], b0 = y[0], b1 = y[1];
	return a0 == b0 && a1 == b1;
}

// sample tells the control plane, at most once per sample_ns per outer
// source, which ITR sent us traffic (the recent ITRs SMRs go to).
static __always_inline void sample(const struct config *cfg, const __u8 *outer, const struct inner *in, __u32 iid)
{
	__u64 now = bpf_ktime_get_coarse_ns(); // a rate limit: a tick's precision is plenty
	__u32 zero = 0;
	struct seen_cache *sc = bpf_map_lookup_elem(&lisp_decap_seen_cpu, &zero);
	// sc->last is the time lisp_decap_seen held for sc->outer (never
	// older): within sample_ns of it the hash would say the same.
	if (sc && now - sc->last < cfg->sample_ns && same16(sc->outer, outer))
		return;
	__u64 *last = bpf_map_lookup_elem(&lisp_decap_seen, outer);
	if (last && now - *last < cfg->sample_ns) {
		if (sc) {
			__builtin_memcpy(sc->outer, outer, 16);
			sc->last = *last;
		}
		return;
	}
	bpf_map_update_elem(&lisp_decap_seen, outer, &now, BPF_ANY);
	if (sc) {
		__builtin_memcpy(sc->outer, outer, 16);
		sc->last = now;
	}
	struct decap_event ev = {};
	__builtin_memcpy(ev.outer, outer, 16);
	if (!in->v6p)
		v4mapped(ev.inner, (const __u8 *)&in->v4.saddr);
	else
		__builtin_memcpy(ev.inner, &in->v6.saddr, 16);
	ev.iid = iid;
	if (bpf_ringbuf_output(&lisp_events, &ev, sizeof(ev), 0))
		count(C_EVENTS_LOST, 1);
}

// The generation is never 0 while the program is attached (Open bumps it
// first), so an empty memo or slot never matches.
static __always_inline int local_rloc(struct memo *m, __u64 gen, const __u8 *a)
{
	if (m->rloc_gen == gen && same16(m->rloc, a))
		return 1;
	if (!bpf_map_lookup_elem(&lisp_local_rlocs, a))
		return 0;
	__builtin_memcpy(m->rloc, a, 16);
	m->rloc_gen = gen;
	return 1;
}

static __always_inline int instance_of(struct memo *m, __u64 gen, __u32 iid, struct instance *out)
{
	if (m->inst_gen != gen || m->inst_iid != iid) {
		struct instance *inst = bpf_map_lookup_elem(&lisp_instances, &iid);
		if (!inst)
			return 0;
		m->inst = *inst;
		m->inst_iid = iid;
		m->inst_gen = gen;
	}
	*out = m->inst;
	return 1;
}

static __always_inline int iface_of(struct memo *m, __u64 gen, __u32 ifindex, struct iface *out)
{
	if (m->ifc_gen != gen || m->ifc_index != ifindex) {
		struct iface *ifc = bpf_map_lookup_elem(&lisp_ifaces, &ifindex);
		if (!ifc)
			return 0;
		m->ifc = *ifc;
		m->ifc_index = ifindex;
		m->ifc_gen = gen;
	}
	*out = m->ifc;
	return 1;
}

// NOT_LISP: etr's verdict for a packet that is not LISP data to one of
// our RLOCs (the ITR looks at it next).
#define NOT_LISP (-1)

static __always_inline int etr(struct __sk_buff *skb, const struct config *cfg, __u16 ethproto, __u64 gen,
			       struct memo *m)
{
	__u8 outer_src[16] __attribute__((aligned(8))), outer_dst[16] __attribute__((aligned(8)));
	__u8 ottl, otos;
	__u32 off;
	struct {
		__be16 sport, dport, len, csum;
	} udp;
	if (ethproto == ETH_P_IP) {
		struct iphdr ip;
		if (load(skb, ETH_HLEN, &ip, sizeof(ip)))
			return NOT_LISP;
		if (ip.protocol != IPPROTO_UDP || ip.version != 4)
			return NOT_LISP;
		if (ip.ihl != 5)
			return NOT_LISP; // options: not ours to judge
		// The port first: it spares the hash lookup for the EID
		// side's UDP traffic.
		if (load(skb, ETH_HLEN + 20, &udp, sizeof(udp)))
			return NOT_LISP;
		if (bpf_ntohs(udp.dport) != cfg->data_port)
			return NOT_LISP;
		v4mapped(outer_dst, (const __u8 *)&ip.daddr);
		if (!local_rloc(m, gen, outer_dst))
			return NOT_LISP;
		if (bpf_ntohs(ip.frag_off) & (IP_MF | IP_OFFMASK))
			return punt(C_PUNT_FRAGMENT);
		v4mapped(outer_src, (const __u8 *)&ip.saddr);
		ottl = ip.ttl;
		otos = ip.tos;
		off = ETH_HLEN + 20;
	} else {
		struct ipv6hdr ip;
		if (load(skb, ETH_HLEN, &ip, sizeof(ip)))
			return NOT_LISP;
		if (ip.nexthdr != IPPROTO_UDP || ip.version != 6)
			return NOT_LISP;
		if (load(skb, ETH_HLEN + 40, &udp, sizeof(udp)))
			return NOT_LISP;
		if (bpf_ntohs(udp.dport) != cfg->data_port)
			return NOT_LISP;
		__builtin_memcpy(outer_dst, &ip.daddr, 16);
		if (!local_rloc(m, gen, outer_dst))
			return NOT_LISP;
		__builtin_memcpy(outer_src, &ip.saddr, 16);
		ottl = ip.hop_limit;
		otos = ip.priority << 4 | ip.flow_lbl[0] >> 4;
		off = ETH_HLEN + 40;
	}
	__u32 olen = off - ETH_HLEN + UDP_HDR_LEN + LISP_HDR_LEN;
	__u8 lh[8] __attribute__((aligned(8)));
	if (load(skb, off + UDP_HDR_LEN, lh, sizeof(lh)))
		return punt(C_PUNT_HEADER);
	if (lh[0] & (LISP_KK | LISP_P))
		return punt(C_PUNT_HEADER); // lisp-crypto or GPE: the userspace path decides
	__u32 iid = 0;
	if (lh[0] & LISP_I)
		iid = (__u32)lh[4] << 16 | (__u32)lh[5] << 8 | lh[6];
	struct instance instance, *inst = &instance;
	if (!instance_of(m, gen, iid, inst))
		return punt(C_PUNT_UNKNOWN_IID);
	if (inst->punt)
		return punt(C_PUNT_SOURCE_CHECK);

	__u32 ioff = off + UDP_HDR_LEN + LISP_HDR_LEN;
	__u8 ver;
	if (load(skb, ioff, &ver, 1))
		return punt(C_PUNT_UNHANDLED);
	__u16 iproto = (ver >> 4) == 4 ? ETH_P_IP : (ver >> 4) == 6 ? ETH_P_IPV6 : 0;
	if (!iproto)
		return punt(C_PUNT_UNHANDLED);
	struct inner in;
	int rc = parse_inner(skb, ioff, iproto, &in);
	if (rc)
		return punt(rc);

	// TTL (RFC 9300 §5.3): never grows across the tunnel; then down by
	// one as the kernel's forwarding out of the TUN does. DSCP from the
	// outer header unless configured not to; ECN per RFC 6040.
	__u8 ttl = in.ttl;
	if (ottl && ottl < ttl)
		ttl = ottl;
	__u8 ecn = ecn_decap(otos & 3, in.tos & 3);
	__u8 tos = (cfg->keep_dscp ? in.tos & ~3 : otos & ~3) | (ecn & 3);

	struct etr_key fk = {};
	if (!in.v6p) {
		__builtin_memcpy(fk.src, &in.v4.saddr, 4);
		__builtin_memcpy(fk.dst, &in.v4.daddr, 4);
	} else {
		__builtin_memcpy(fk.src, &in.v6.saddr, 16);
		__builtin_memcpy(fk.dst, &in.v6.daddr, 16);
	}
	fk.iid = iid;
	fk.tos = tos;
	fk.v6p = in.v6p;
	__u32 idx = mix64(load_be64(fk.src + 8) ^ load_be64(fk.dst + 8) ^ iid) & (FLOW_SLOTS - 1);
	struct etr_flow *slot = bpf_map_lookup_elem(&lisp_etr_flows, &idx);
	struct bpf_fib_lookup fib = {};
	long frc;
	int petr = 0;
	// GSO packets take the lookups: their MTU check is the kernel's own.
	if (!skb->gso_size && slot && slot->gen == gen && same_words(&slot->key, &fk, sizeof(fk) / 8) &&
	    in.len <= slot->len_ok) {
		if (ttl <= 1)
			return punt(C_PUNT_TTL);
		if (ecn == 0xff)
			return punt(C_PUNT_ECN);
		fib.ifindex = slot->ifindex;
		__builtin_memcpy(fib.dmac, slot->dmac, ETH_ALEN);
		__builtin_memcpy(fib.smac, slot->smac, ETH_ALEN);
		frc = BPF_FIB_LKUP_RET_SUCCESS;
		petr = slot->petr;
	} else {
		struct eid_key key;
		key_of(&key, iid, &in, 0);
		__u8 *local = bpf_map_lookup_elem(&lisp_local_eids, &key);
		if (local && *local == 3)
			return punt(C_PUNT_DYNAMIC_EID); // no host seen there: the engine tells the control plane
		if (local && *local != 1)
			return punt(C_PUNT_NOT_LOCAL_EID); // a host that moved away: re-encapsulated in userspace
		if (!local) {
			// Not for a site of ours: a PETR relays it to the non-LISP
			// Internet, for the sources it serves only.
			if (!cfg->petr)
				return punt(C_PUNT_NOT_LOCAL_EID);
			key_of(&key, iid, &in, 1);
			__u8 *ok = bpf_map_lookup_elem(&lisp_petr_sources, &key);
			if (!ok || !*ok)
				return punt(C_PUNT_PETR_SOURCE);
			petr = 1;
		}
		if (ttl <= 1)
			return punt(C_PUNT_TTL);
		if (ecn == 0xff)
			return punt(C_PUNT_ECN);

		fib.ifindex = inst->tun_ifindex;
		// The MTU the kernel checks is the inner packet's: without
		// tot_len it would check this skb, outer headers included, and
		// hand inner packets that fit the EID link exactly to the
		// userspace path.
		if (!skb->gso_size)
			fib.tot_len = in.len;
		if (!in.v6p) {
			fib.family = AF_INET;
			fib.tos = tos;
			fib.ipv4_src = in.v4.saddr;
			fib.ipv4_dst = in.v4.daddr;
		} else {
			fib.family = AF_INET6;
			__builtin_memcpy(fib.ipv6_src, &in.v6.saddr, 16);
			__builtin_memcpy(fib.ipv6_dst, &in.v6.daddr, 16);
		}
		frc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
		if (!fib_result_ok(frc, &fib))
			return punt(C_PUNT_NO_ROUTE); // local delivery among others: the userspace path
		if (!skb->gso_size && slot && frc == BPF_FIB_LKUP_RET_SUCCESS) {
			__builtin_memcpy(&slot->key, &fk, sizeof(fk));
			slot->gen = gen;
			slot->len_ok = in.len;
			slot->ifindex = fib.ifindex;
			__builtin_memcpy(slot->dmac, fib.dmac, ETH_ALEN);
			__builtin_memcpy(slot->smac, fib.smac, ETH_ALEN);
			slot->petr = petr;
		}
	}
	ttl--;

	sample(cfg, outer_src, &in, iid);
	__u32 segs = skb->gso_segs > 1 ? skb->gso_segs : 1; // adjust_room resets it

	__u64 flags = in.v6p ? BPF_F_ADJ_ROOM_DECAP_L3_IPV6 : BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
	if (bpf_skb_adjust_room(skb, -(__s32)olen, BPF_ADJ_ROOM_MAC, flags))
		return punt(C_PUNT_ERROR); // nothing changed yet
	int macs = 0; // the Ethernet header is written too
	if (!in.v6p) {
		__u16 old0 = bpf_ntohs(*(__u16 *)&in.v4), old8 = bpf_ntohs(*(__u16 *)&in.v4.ttl);
		in.v4.tos = tos;
		in.v4.ttl = ttl;
		__u16 c = csum_replace(bpf_ntohs(in.v4.check), old0, bpf_ntohs(*(__u16 *)&in.v4));
		c = csum_replace(c, old8, bpf_ntohs(*(__u16 *)&in.v4.ttl));
		in.v4.check = bpf_htons(c);
		// With the next hop's MACs known, the Ethernet header and the
		// inner header's first 12 bytes, adjacent, go in one store.
		struct {
			__u8 lead[OUTER_LEAD];
			struct ethhdr eth;
			__u8 ip[12];
		} __attribute__((packed, aligned(8))) h;
		__builtin_memcpy(h.ip, &in.v4, sizeof(h.ip));
		long err;
		macs = frc == BPF_FIB_LKUP_RET_SUCCESS;
		if (macs) {
			eth_of(&h.eth, &fib, frc, ETH_P_IP);
			err = bpf_skb_store_bytes(skb, 0, &h.eth, OUTER_LEN(h, ip), BPF_F_RECOMPUTE_CSUM);
		} else {
			err = bpf_skb_store_bytes(skb, ETH_HLEN, h.ip, sizeof(h.ip), BPF_F_RECOMPUTE_CSUM);
		}
		if (err) {
			count(C_DROP_ERROR, 1);
			return TC_ACT_SHOT;
		}
	} else {
		__u8 w[2];
		in.v6.hop_limit = ttl;
		w[0] = 0x60 | tos >> 4;
		w[1] = (tos << 4) | (in.v6.flow_lbl[0] & 0x0f);
		if (bpf_skb_store_bytes(skb, ETH_HLEN, w, 2, BPF_F_RECOMPUTE_CSUM) ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + 7, &ttl, 1, BPF_F_RECOMPUTE_CSUM)) {
			count(C_DROP_ERROR, 1);
			return TC_ACT_SHOT;
		}
	}
	count(C_DECAP_PKTS, segs);
	count(C_DECAP_BYTES, skb->len - ETH_HLEN);
	if (petr)
		count(C_PETR_DECAP, segs);
	if (macs)
		return bpf_redirect(fib.ifindex, 0);
	return forward(skb, &fib, frc, in.v6p ? ETH_P_IPV6 : ETH_P_IP);
}

SEC("tc")
int lispd_ingress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&lisp_config, &zero);
	if (!cfg)
		return TC_ACT_OK;
	__u16 proto = bpf_ntohs(skb->protocol);
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return TC_ACT_OK;
	// Read before any lookup: a change after it leaves what this packet
	// memoizes stale for the next one.
	__u64 gen = read_gen();
	struct memo *m = bpf_map_lookup_elem(&lisp_memo, &zero);
	if (!m)
		return TC_ACT_OK;
	if (cfg->etr || cfg->petr) {
		int rc = etr(skb, cfg, proto, gen, m);
		if (rc != NOT_LISP)
			return rc;
	}
	// Only what is sent to this router is routed by it: a frame bridged
	// past it (another host's MAC) is none of the ITR's business.
	if (!cfg->itr || skb->pkt_type != 0 /* PACKET_HOST */)
		return TC_ACT_OK;
	__u32 ifindex = skb->ingress_ifindex;
	struct iface ifc;
	if (!iface_of(m, gen, ifindex, &ifc) || !ifc.itr)
		return TC_ACT_OK;
	return itr(skb, cfg, &ifc, gen, proto);
}

char _license[] SEC("license") = "Dual BSD/GPL";
