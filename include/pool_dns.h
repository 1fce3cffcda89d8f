/*
 * pool_dns: keeps the pools' named backends (`name:port`, `srv:NAME`) in
 * step with their DNS answers (resolver.h).  Each named backend of a pool
 * is one watch; an answer's addresses become that pool's backends, with
 * ids "<ID>-<address>", added and removed in place through the pool's
 * backendset: an address that stays keeps its slot, state and stats, a
 * new one slow-starts, a gone one drains (its requests in flight finish).
 * A failed or empty answer changes nothing: the last good set stays, and
 * the reason is logged and shown (/api/stats "dns").
 *
 * A pool set that replaces another (reload) starts with the addresses the
 * old set had for the same pool and name, so a reload while DNS is down
 * keeps the backends; its watches then correct the set on their first
 * answer.
 */
#ifndef LB_POOL_DNS_H
#define LB_POOL_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct pool_set;
struct pool_dns;
struct resolver;

/* Whether any pool of the set has a named backend. */
bool pool_dns_wanted(const struct pool_set *ps);

/* Watches every named backend of ps with r, seeding from old (may be
 * NULL).  NULL with err filled on failure (a bad name, too many watches,
 * out of memory). */
struct pool_dns *pool_dns_start(struct resolver *r, struct loop *loop,
                                struct pool_set *ps, const struct pool_dns *old,
                                char *err, size_t errlen);
/* Stops the watches (no change to the pools follows) and frees d; NULL is
 * a no-op. */
void pool_dns_stop(struct pool_dns *d);

/* One named backend as /api/stats shows it. */
struct pool_dns_status {
    const char *pool, *id, *name;
    const char *kind;   /* "host" or "srv" */
    const char *status; /* "pending" (no answer yet), "ok", "empty", "error" */
    const char *reason; /* "" or why */
    size_t addresses;   /* backends it has now */
    unsigned failures;  /* consecutive failed or empty answers */
    uint64_t answers;   /* answers applied (changes of the set) */
};
/* Fills out[0..max-1]; returns how many named backends there are. */
size_t pool_dns_status(const struct pool_dns *d, struct pool_dns_status *out,
                       size_t max);

#endif
