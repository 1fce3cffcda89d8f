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
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct balancer;
struct stats;

struct shared_pool {
    char name[32];
    size_t n; /* backends, in the configuration's order */
    char ids[CONFIG_MAX_BACKENDS][sizeof(((struct config_backend *)0)->id)];
    struct balancer *bal;
    struct stats *stats; /* the total's object when there is one pool */
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
/* Worker w of g died: what it had in flight is forgotten. */
void shared_gen_forget_worker(struct shared_gen *g, unsigned w);
#endif
