/*
 * backendset: one set of backends changed in place at run time — the
 * upstream table (ids, addresses, pools), the balancer (weights, health,
 * administrative state), the per-backend stats and the active health checks
 * kept in step.  A backend's slot index is the same in all four and never
 * moves while the set lives; a removed slot is reused once it is idle.
 *
 * The set does not own its parts: the server (later a pool) creates them
 * and points a backendset at them; a reload points it at new ones.  Every
 * change is logged.  No sockets of its own, no loop: the time is passed in.
 */
#ifndef LB_BACKENDSET_H
#define LB_BACKENDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer.h"

struct upstream;
struct stats;
struct health;

struct backendset {
    const char *name;      /* for logs and the API: "default" */
    struct upstream *up;   /* ids and addresses: the source of truth */
    struct balancer *bal;  /* NULL: weights 1, state "up" */
    struct stats *stats;   /* NULL: no per-backend stats */
    struct health *health; /* NULL: no active checks */
    /* called after every change of the table (add, remove): --workers N
     * publishes it to the other workers; NULL: nothing */
    void (*on_change)(void *ctx, const struct backendset *s);
    void *on_change_ctx;
};

/* The live backend named id: its slot index, or -1. */
int backendset_find(const struct backendset *s, const char *id);
/* Adds backend id at addr ("ADDR:PORT" or "unix:PATH") with weight w
 * (1..CONFIG_WEIGHT_MAX; 0 means 1), over TLS unless tls_host is NULL
 * (upstream_add): a free slot, a slow start, fresh
 * stats, health checks when they are on.  Returns the slot index, or -1
 * with errno EINVAL (bad id, address or weight), EEXIST (id taken) or
 * ENOSPC (every slot taken) and a message in err; nothing changes then. */
int backendset_add(struct backendset *s, const char *id, const char *addr,
                   const char *tls_host, unsigned weight, uint64_t now_us,
                   char *err, size_t errlen);
/* Removes backend id: never picked again, idle connections closed, its
 * requests in flight finish; the slot is reused once idle.  Returns 0, or
 * -1 with errno ENOENT. */
int backendset_remove(struct backendset *s, const char *id);
/* Sets backend id's weight (1..CONFIG_WEIGHT_MAX).  Returns 0, or -1 with
 * errno ENOENT or EINVAL. */
int backendset_set_weight(struct backendset *s, const char *id,
                          unsigned weight);
/* Sets backend id's administrative state: drain (no new requests), maint
 * (the same, and no health checks) or ready.  Returns 0, or -1 with errno
 * ENOENT. */
int backendset_set_state(struct backendset *s, const char *id,
                         enum balancer_admin a, uint64_t now_us);

/* Slots (live and removed), whether slot idx holds a backend, and its id
 * and address ("host:port", "[v6]:port", "unix:PATH"): the upstream
 * table's, for readers that have no business with connections. */
size_t backendset_count(const struct backendset *s);
bool backendset_live(const struct backendset *s, size_t idx);
const char *backendset_id(const struct backendset *s, size_t idx);
const char *backendset_addr(const struct backendset *s, size_t idx);
/* The name a TLS backend was added with ("" for none), or NULL for a
 * backend spoken to in plain TCP. */
const char *backendset_tls_host(const struct backendset *s, size_t idx);

/* The state of slot idx for display: "maint"; "draining" (drain with
 * requests in flight) or "drained" (drain and idle); else the health:
 * "up", "ejected", "probing", "down"; "removed" for a removed slot. */
const char *backendset_state(const struct backendset *s, size_t idx);
/* The stats index of a backend named by a finished request (slot and id
 * when it started): the slot while it still holds that id, else the live
 * backend of that id, else -1 (gone). */
int backendset_stats_index(const struct backendset *s, int slot,
                           const char *id);

#endif
