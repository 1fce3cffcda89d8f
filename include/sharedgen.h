/*
 * sharedgen: one generation of what the workers of --workers N share
 * (docs/workers.md): each pool's balancer and stats, and the total's
 * stats, made by the master in the shared region (shm.h) from one
 * configuration before it forks the workers that serve it.  A reload is a
 * new generation, made from the new configuration with the stats following
 * each pool and backend by name and id, and new workers; the old
 * generation is freed when its last worker has finished draining.
 *
 * A worker builds everything else of its pools itself (pool.h: upstream
 * tables and connections, health checks in worker 0) from the same
 * configuration, and takes the balancers and stats from here.
 */
#ifndef LB_SHAREDGEN_H
#define LB_SHAREDGEN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct balancer;
struct stats;

/* One slot of a pool's backend table as worker 0 last published it. */
struct shared_slot {
    bool live;
    char id[sizeof(((struct config_backend *)0)->id)];
    char addr[128]; /* config_backend_addr's text */
    bool tls;
    char tls_host[256]; /* upstream_tls_host's, when tls */
};

struct shared_pool {
    char name[32];
    size_t n; /* the configuration's numeric backends, in its order */
    char ids[CONFIG_MAX_BACKENDS][sizeof(((struct config_backend *)0)->id)];
    struct balancer *bal;
    struct stats *stats; /* the total's object when there is one pool */
    /* The backend table at run time: worker 0 (DNS answers, the runtime
     * API) publishes every change, the other workers follow it into their
     * own upstream tables before they pick.  A seqlock: odd while being
     * written. */
    unsigned version;
    struct shared_slot slots[CONFIG_MAX_BACKENDS];
};

struct shared_gen {
    unsigned id; /* 1 at start, +1 per reload */
    size_t npools;
    struct shared_pool *pools;
    struct stats *total;
};

/* Makes generation id of cfg's pools, the stats taken over from old (NULL
 * at start) by pool name and backend id, and a backend old did not have
 * ramping up (health.slow_start_ms).  NULL with err filled on failure. */
struct shared_gen *shared_gen_create(const struct config *cfg,
                                     const struct shared_gen *old, unsigned id,
                                     uint64_t now_us, char *err, size_t errlen);
/* Frees g (no worker of it may be left). */
void shared_gen_destroy(struct shared_gen *g);
/* Worker 0: publishes up's slots (ids, addresses, live) as sp's table. */
struct upstream;
void shared_pool_publish(struct shared_pool *sp, const struct upstream *up);
/* Another worker: makes up's slots what sp's table says (adding and
 * removing backends) when its version is not *seen; *seen follows.  A
 * table being written is left for the next call. */
void shared_pool_follow(const struct shared_pool *sp, struct upstream *up,
                        unsigned *seen);
/* Worker w of g died: what it had in flight is forgotten. */
void shared_gen_forget_worker(struct shared_gen *g, unsigned w);
#endif
