/*
 * admin_view: the backends of every pool as the renderers (admin_render.c,
 * admin_prom.c) see them: one flat list of rows, each naming its pool and
 * its stats series.  Private to the admin renderers.
 */
#ifndef LB_ADMIN_VIEW_H
#define LB_ADMIN_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "shm.h"

struct bview {
    char id[40];
    /* the name of its series in the history and the dashboard: the id, or
     * "pool/id" when there are named pools (ids are unique per pool) */
    char key[80];
    const char *pool;
    struct stats *st; /* its series: backend si of st (NULL: none) */
    size_t si;
    char addr[128]; /* config_backend_addr: "unix:" and a path */
    unsigned weight;
    const char *health;
    const char *admin_state; /* ready, drain, maint */
    const char *state;       /* backendset_state: up, draining, ... */
    bool up;
    char reason[160];
    unsigned in_flight;
    /* --workers N: in_flight as each worker holds it (admin_sources
     * nworkers of them) */
    unsigned in_flight_w[SHM_MAX_WORKERS];
    size_t pool_idle;
    double score;
    /* mode = prequal: its pool's balancer probes; sent, failed (no
     * answer), answered without the endpoint (own view used) */
    bool probing;
    uint64_t probes_sent, probes_failed, probes_fallback;
};

/* The pools (admin_sources.pools or the one plain pool): a new array in
 * *out (free it) and its length; 0 with *out NULL when out of memory. */
size_t admin_pools(const struct admin_sources *src, struct admin_pool **out);
/* Every backend of the pools, in pool order: a new array (free it) in *out
 * and its length; *out NULL when out of memory.  *named says whether the
 * pools go beyond the default one (the pool label and keys then show). */
size_t admin_views(const struct admin_sources *src, const struct admin_pool *p,
                   size_t np, uint64_t now_us, struct bview **out, bool *named);
/* The first pool's balancing mode and connection model, for the headline. */
const char *admin_mode(const struct admin_pool *p, size_t np);
bool admin_persistent(const struct admin_pool *p, size_t np);
/* A counter another module owns (NULL: 0). */
static inline uint64_t admin_counter(const uint64_t *p)
{
    return p ? *p : 0;
}

#endif
