/*
 * nat/bpf/xlat_bpf.h: what the in-kernel fast path (nat/bpf/xlat.bpf.c,
 * a tc program) and its loader (gateway/bpf.c) share: the layout of its
 * maps and the meaning of its counters.  Included by clang -target bpf
 * and by the C compiler, so it uses the kernel's fixed-width types only.
 *
 * The program translates the common case of RFC 7915 exactly as
 * nat/xlat.c does and hands everything else, untouched, to the slow path
 * (the NFQUEUE rules and gateway/nfq.c): it never drops a packet it has
 * not rewritten, and never answers one.
 */
#ifndef NAT_BPF_XLAT_BPF_H
#define NAT_BPF_XLAT_BPF_H

#include <linux/types.h>

/* As GW_NAT64_MAX: prefixes the program walks. */
#define NAT_BPF_PREFIX_MAX 8

/* An IPv6 address: a pair's IPv6 side (the value of pair4 and the key
 * of pair6), a prefix, a mask. */
union nat_bpf_in6 {
	__u8 a[16];
	__u32 w[4];
};

/* An RFC 6052 prefix, ready to match and to embed with. */
struct nat_bpf_prefix {
	/* The prefix octets, u octet (bits 64-71) zero; match is
	 * (addr & mask) == prefix over all 16 octets, mask covering the
	 * first plen / 8 octets and the u octet (RFC 6052 §2.2: it must
	 * be zero). */
	union nat_bpf_in6 prefix;
	union nat_bpf_in6 mask;
	__u8 pos[4];       /* octets that hold the IPv4 address */
	__u32 global_only; /* RFC 6052 §3.1: the well-known prefix */
	__u32 sources;     /* nat_xlat_prefix sources */
};

/* conf flags */
/* Translate but do not look up a route or forward: the verdict is then
 * TC_ACT_REDIRECT with no redirect set (for BPF_PROG_TEST_RUN). */
#define NAT_BPF_F_NOFWD 1u

/* The one entry of the conf map. */
struct nat_bpf_conf {
	/* 0: every packet goes to the slow path (while the maps are
	 * rewritten) */
	__u32 enabled;
	__u32 flags;
	__u32 nprefixes; /* IPv4 addresses are embedded under [0] */
	/* nat_xlat_mtus: the sizes RFC 7915 judges packets by */
	__u32 mtu4;
	__u32 mtu6;
	__u32 link6;
	__u32 proxy_port; /* TCP port left to the SMTP proxy; 0: none */
	struct nat_bpf_prefix prefix[NAT_BPF_PREFIX_MAX];
};

/* The key of the scope4 map (LPM trie): nat_scope's IPv4 table. */
struct nat_bpf_lpm4 {
	__u32 plen;
	__u32 addr; /* network byte order */
};

/* scope4 values */
#define NAT_BPF_SCOPE_NONGLOBAL 1u /* RFC 6052 §3.1 keeps it out of the WKP */
#define NAT_BPF_SCOPE_REFUSED 2u   /* nat_scope_dest_refused */

/*
 * Counters, one per verdict (a per-CPU array).  XLAT46 and XLAT64 are
 * packets translated and sent on; every other one counts packets handed
 * on untouched, by the first reason found.  Keep gateway/bpf.c's names in
 * step.
 */
enum nat_bpf_count {
	NAT_BPF_C_XLAT46 = 0,
	NAT_BPF_C_XLAT64,
	NAT_BPF_C_NOT_IP,   /* neither IPv4 nor IPv6 over Ethernet */
	NAT_BPF_C_NOT_OURS, /* destination not a pair's, nor (IPv6) under a
	                       prefix */
	NAT_BPF_C_PAUSED,   /* the maps are being rewritten */
	NAT_BPF_C_PROXIED,  /* TCP to or from the proxy's port */
	NAT_BPF_C_SOURCE,   /* source unmapped, illegal or spoofed */
	NAT_BPF_C_HEADER,   /* options, extension headers, bad header */
	NAT_BPF_C_FRAGMENT, /* a fragment */
	NAT_BPF_C_TTL,      /* TTL or hop limit would expire */
	NAT_BPF_C_PROTO,    /* not TCP, UDP, ICMP echo or echo reply */
	NAT_BPF_C_L4,       /* transport header short or odd */
	NAT_BPF_C_TOO_BIG,  /* over the MTU RFC 7915 judges it by */
	NAT_BPF_C_GSO,      /* a GSO packet other than TCP */
	NAT_BPF_C_FIB,      /* no route, a local one, or forwarding off */
	NAT_BPF_C_FIB_MTU,  /* over the MTU of the route */
	NAT_BPF_C_ERROR,    /* a helper failed mid-rewrite: dropped */
	NAT_BPF_C_MAX
};

#endif
