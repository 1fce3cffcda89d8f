/*
 * proxyproto: the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) that an L4 balancer puts in front of a connection to
 * pass on the real client address.  Pure functions over bytes: no socket,
 * no loop, so the parser is unit-tested and fuzzed on its own.
 *
 * What is accepted (everything else is invalid, and the caller refuses the
 * connection):
 *   v1: "PROXY TCP4 src dst sport dport\r\n", the same with TCP6, or
 *       "PROXY UNKNOWN...\r\n"; single spaces, ports 0..65535 without
 *       leading zeros, at most 107 bytes with the CR LF.
 *   v2: the 12-byte signature, version 2, command LOCAL or PROXY, family
 *       UNSPEC, INET, INET6 or UNIX over STREAM (or UNSPEC) transport; the
 *       address block at least as long as its family needs; TLVs after it
 *       skipped unread; the whole header at most PROXYPROTO_MAX bytes.
 * LOCAL, UNKNOWN, UNSPEC and UNIX carry no usable address: the caller keeps
 * the connection's own.
 */
#ifndef LB_PROXYPROTO_H
#define LB_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXYPROTO_V1_MAX 107 /* the spec's bound, CR LF included */
#define PROXYPROTO_MAX 1024   /* our bound on a v2 header with its TLVs */
#define PROXYPROTO_V2_SIG_LEN 12

/* What a header said. */
struct proxyproto_hdr {
    int version;   /* 1 or 2 */
    bool has_addr; /* false: LOCAL / UNKNOWN / UNSPEC / UNIX */
    struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, when has_addr */
};

/* Outcome of proxyproto_parse besides a header length. */
enum {
    PROXYPROTO_INVALID = -1, /* not a PROXY header, or a malformed one */
    PROXYPROTO_MORE = 0,     /* a valid beginning: every one of the len bytes
                                belongs to the header, more must come */
};

/* Parses a header at the start of buf.  Returns its length (> 0, the
 * first HTTP byte follows it) with *out filled, PROXYPROTO_MORE, or
 * PROXYPROTO_INVALID.  Garbage is recognised as soon as its first bytes
 * differ from both signatures; a v1 line without CR LF within 107 bytes
 * and a v2 header longer than PROXYPROTO_MAX are invalid. */
int proxyproto_parse(const uint8_t *buf, size_t len,
                     struct proxyproto_hdr *out);

/* Writes a v1 header for a connection from src to dst into out: "PROXY
 * TCP4 ..." or "TCP6" when both are of that family, else (src NULL, or
 * other families) "PROXY UNKNOWN\r\n".  Returns the length, or -1 when cap
 * is too small (PROXYPROTO_V1_MAX + 1 always suffices). */
int proxyproto_build_v1(char *out, size_t cap, const struct sockaddr *src,
                        const struct sockaddr *dst);

/* Writes a v2 header (command PROXY, no TLV) for src to dst; with src NULL
 * the command is LOCAL (a health check), with families that differ or are
 * not IP the family is UNSPEC.  Returns the length (at most 52), or -1
 * when cap is too small. */
int proxyproto_build_v2(uint8_t *out, size_t cap, const struct sockaddr *src,
                        const struct sockaddr *dst);

/* proxyproto_build_v1 (version 1) or proxyproto_build_v2 (else) into out;
 * same returns. */
int proxyproto_build(int version, uint8_t *out, size_t cap,
                     const struct sockaddr *src, const struct sockaddr *dst);

#endif
