/*
 * resolver: backends by name.  Watches DNS names with c-ares on the event
 * loop (never a blocking getaddrinfo) and reports each name's set of
 * addresses to a callback, re-resolving it at the smaller of its interval
 * and its TTL.  Two kinds of watch:
 *
 *   RESOLVER_HOST  "name" + a port: the name's A and AAAA records (and
 *                  /etc/hosts, as getaddrinfo would), each at that port,
 *                  weight 1.
 *   RESOLVER_SRV   "_service._proto.name": its SRV records; only the group
 *                  with the lowest priority is used (the others are
 *                  fail-over groups that a balancer with health checks does
 *                  not need); each record's weight becomes the backend
 *                  weight (0 -> 1, capped at RESOLVER_WEIGHT_MAX); each
 *                  target is resolved to its A/AAAA addresses at the
 *                  record's port.
 *
 * What a callback hears (resolver_fn): every answer that differs from the
 * last one reported for that watch — another status or reason, or for an
 * ok answer another set of addresses, ports or weights.  An unchanged
 * answer is not reported.  The first answer is always reported.  A failed
 * or empty answer says why and carries no addresses: the resolver keeps no
 * set for the consumer, which keeps its last good one.  `changed` is true
 * on an ok answer whose set differs from the last ok answer reported (so a
 * recovery to the same set has changed = false).
 *
 * The answers are hostile network input: c-ares parses the messages, the
 * names in them are checked (net_name_valid), at most RESOLVER_MAX_ADDRS
 * addresses are kept (the rest counted in `dropped`), and each watch has at
 * most one resolution in flight (for SRV: one SRV query, then one A/AAAA
 * lookup per distinct target, at most RESOLVER_MAX_ADDRS).
 *
 * Ownership: the resolver owns its watches; resolver_unwatch() and
 * resolver_destroy() may be called at any time, also from inside a
 * callback, and no callback of that watch (of any watch) follows; after
 * resolver_destroy() every watch pointer is invalid.  The resolver must be
 * destroyed before its loop.
 */
#ifndef LB_RESOLVER_H
#define LB_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer.h"

struct loop;
struct resolver;
struct resolver_watch;

#define RESOLVER_MAX_ADDRS BALANCER_MAX_BACKENDS
#define RESOLVER_MAX_WATCHES BALANCER_MAX_BACKENDS
#define RESOLVER_WEIGHT_MAX 10000u     /* the config's backend weight range */
#define RESOLVER_MIN_INTERVAL_MS 1000u /* floor of a TTL-driven re-query */
#define RESOLVER_NAME_MAX 255

enum resolver_kind {
    RESOLVER_HOST,
    RESOLVER_SRV,
};

enum resolver_status {
    RESOLVER_OK,    /* at least one address */
    RESOLVER_EMPTY, /* the name exists nowhere or has no address (NXDOMAIN,
                       no data, an SRV "." target, no target resolved) */
    RESOLVER_ERROR, /* no usable answer: timeout, malformed answer, server
                       failure or refusal, bad names in the answer */
};

/* "ok", "empty", "error". */
const char *resolver_status_str(enum resolver_status s);
/* "host", "srv". */
const char *resolver_kind_str(enum resolver_kind k);

/* One address of an answer. */
struct resolver_addr {
    char addr[64]; /* "10.0.0.1:8080" or "[fd00::1]:8080" (net_parse) */
    char target[RESOLVER_NAME_MAX + 1]; /* the name it is an address of */
    uint16_t port;
    unsigned weight;      /* 1..RESOLVER_WEIGHT_MAX; 1 for RESOLVER_HOST */
    unsigned priority;    /* the SRV priority; 0 for RESOLVER_HOST */
    int family;           /* AF_INET or AF_INET6 */
    unsigned char ip[16]; /* the address bytes (the sort key) */
};

/* One answer: the addresses sorted by (family, address, port), each
 * address:port once (of SRV records naming the same one, the larger
 * weight and the lower priority are kept). */
struct resolver_answer {
    const char *name; /* the watched name */
    enum resolver_kind kind;
    enum resolver_status status;
    char reason[160];  /* "" when ok, else why (e.g. "nxdomain") */
    bool changed;      /* see the top of this file */
    uint32_t ttl_s;    /* smallest TTL of the records used */
    uint32_t next_ms;  /* the next resolution starts in this long */
    unsigned failures; /* consecutive failed or empty answers */
    size_t dropped;    /* addresses beyond RESOLVER_MAX_ADDRS, not kept */
    size_t n;
    struct resolver_addr addrs[RESOLVER_MAX_ADDRS];
};

/* a: valid only during the call. */
typedef void resolver_fn(void *arg, const struct resolver_answer *a);

/* Creates a resolver on loop.  servers: "ADDR:PORT,..." (IPv4 or
 * "[IPv6]" with a port), or "" for the servers of /etc/resolv.conf.
 * timeout_ms: the first try of a query (c-ares doubles it on the retry;
 * two tries per server).  Returns NULL with err filled on failure. */
struct resolver *resolver_create(struct loop *loop, const char *servers,
                                 unsigned timeout_ms, char *err, size_t errlen);

/* Stops every watch (no callback afterwards) and frees the resolver (its
 * memory after the current dispatch round).  NULL is a no-op. */
void resolver_destroy(struct resolver *r);

/* Watches name (a host name, or for RESOLVER_SRV an SRV record name; a
 * trailing dot allowed) and starts its first resolution at once.  port:
 * RESOLVER_HOST's port 1..65535 (ignored for SRV).  interval_ms: the
 * longest time between resolutions (at least RESOLVER_MIN_INTERVAL_MS);
 * a shorter TTL comes first, never below RESOLVER_MIN_INTERVAL_MS; after a
 * failure the next try comes after 1 s, doubling up to interval_ms.
 * Returns the watch, or NULL with err filled (bad name or port, too many
 * watches, out of memory). */
struct resolver_watch *resolver_watch(struct resolver *r,
                                      enum resolver_kind kind, const char *name,
                                      unsigned port, unsigned interval_ms,
                                      resolver_fn *fn, void *arg, char *err,
                                      size_t errlen);

/* Stops a watch: no callback of it follows.  Queries in flight finish
 * inside c-ares and are ignored.  NULL is a no-op. */
void resolver_unwatch(struct resolver_watch *w);

/* Queries in flight in c-ares (for tests and stats). */
size_t resolver_queries(const struct resolver *r);

/* ---- the pure part (src/resolver_answer.c), unit-tested ---- */

/* Empties a (keeps name and kind). */
void resolver_answer_clear(struct resolver_answer *a);

/* Adds an AF_INET/AF_INET6 address (its port is ignored: port is used) of
 * target, weight clamped to 1..RESOLVER_WEIGHT_MAX.  The same address:port
 * again keeps the larger weight and the lower priority.  Returns 1 added, 0
 * merged, -1 when full (counted in a->dropped) or another family. */
int resolver_answer_add(struct resolver_answer *a, const void *sockaddr,
                        unsigned port, unsigned weight, unsigned priority,
                        const char *target);

/* Sorts by (family, address, port). */
void resolver_answer_sort(struct resolver_answer *a);

/* Whether two answers have the same addresses, ports, weights and
 * priorities (both sorted). */
bool resolver_answer_same_set(const struct resolver_answer *a,
                              const struct resolver_answer *b);

/* One SRV record as the resolver keeps it. */
struct resolver_srv {
    char target[RESOLVER_NAME_MAX + 1];
    unsigned port, weight, priority;
};

/* Keeps the records of the lowest priority, in place, with weight 0 read
 * as 1 and weights capped at RESOLVER_WEIGHT_MAX; drops a record whose
 * port is 0.  Returns how many are kept. */
size_t resolver_srv_select(struct resolver_srv *recs, size_t n);

/* The smallest TTL among the answer records of type `type` (1 = A, 28 =
 * AAAA, 33 = SRV) of a DNS message.  Reads only inside msg[0..len), never
 * follows a compression pointer (names are skipped, not expanded), so any
 * bytes are safe.  Returns 0 with *ttl set, or -1 when the message is
 * malformed or has no such record. */
int resolver_msg_min_ttl(const unsigned char *msg, size_t len, unsigned type,
                         uint32_t *ttl);

/* The next delay in ms: min(interval, ttl) but at least
 * RESOLVER_MIN_INTERVAL_MS when ok; after `failures` failures 1 s doubled
 * (failures - 1) times, at most interval. */
uint32_t resolver_next_ms(bool ok, uint32_t ttl_s, unsigned failures,
                          unsigned interval_ms);

#endif
