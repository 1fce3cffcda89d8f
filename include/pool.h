/*
 * pool: the named pools of one configuration and the route table that
 * chooses among them.  A pool is one set of backends with its own
 * configuration (the global keys with its [pool.NAME] keys applied), its
 * upstream table and connection pools, its balancer and its active health
 * checks.  The whole set is one generation: replaced on reload, freed when
 * the last request that uses it finishes.
 */
#ifndef LB_POOL_H
#define LB_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "backendset.h"
#include "config.h"
#include "sharedgen.h"

struct loop;
struct upstream;
struct balancer;
struct health;
struct prequal_probe;
struct stats;
struct route_table;

struct pool {
    /* cfg.pool is the name; cfg.backends holds the numeric ones, named[]
     * those DNS resolves (pool_dns.h), whose addresses join at run time */
    struct config cfg;
    struct config_backend named[CONFIG_MAX_BACKENDS];
    size_t nnamed;
    size_t index; /* in its set */
    struct upstream *up;
    struct balancer *bal;
    bool bal_shared; /* bal is a shared generation's (--workers N) */
    /* --workers N: the generation's table of this pool's backends, which
     * worker 0 publishes and the others follow (NULL: one process) */
    struct shared_pool *follow;
    unsigned seen;         /* follow's version the upstream table matches */
    struct health *health; /* NULL: no active checks (or stopped) */
    /* mode = prequal: the probes (NULL: none, or stopped) */
    struct prequal_probe *probe;
    struct stats *stats; /* per-backend series; the server's, borrowed */
    /* the four above as one set the runtime API changes in place (its
     * name is cfg.pool) */
    struct backendset set;
};

struct pool_set {
    struct pool **pools;
    size_t npools;
    struct route_table *routes;
    size_t nroutes;   /* 0: every request goes to pools[default_pool] */
    int default_pool; /* index, -1: none */
    unsigned refs;    /* requests holding it, +1 while current */
};

/* Builds every pool of cfg (config_pool_count of them) and the routes,
 * with refs 1 and no health checks.  NULL with err filled on failure. */
struct pool_set *pool_set_create(struct loop *loop, const struct config *cfg,
                                 char *err, size_t errlen);
/* The same with each pool's balancer taken from sg, the shared generation
 * the master made of the same configuration (--workers N); sg NULL is
 * pool_set_create. */
struct shared_gen;
struct pool_set *pool_set_create_shared(struct loop *loop,
                                        const struct config *cfg,
                                        struct shared_gen *sg, char *err,
                                        size_t errlen);
struct shared_pool;
/* Brings p's upstream table up to worker 0's published one (a no-op
 * without workers, or when nothing changed): before every pick. */
void pool_follow_sync(struct pool *p);
static inline void pool_follow(struct pool *p)
{
    if (p->follow &&
        __atomic_load_n(&p->follow->version, __ATOMIC_ACQUIRE) != p->seen)
        pool_follow_sync(p);
}
/* --workers N: gives each pool of ps (built from sg's configuration)
 * sg's stats; returns the total's. */
struct stats *pool_set_attach_shared_stats(struct pool_set *ps,
                                           const struct shared_gen *sg);
/* Drops a reference, freeing the set (and stopping its checks) when it was
 * the last. */
void pool_set_put(struct pool_set *ps);
/* Starts each pool's active health checks (where its configuration asks
 * for them) and its prequal probes (where its policy wants probes); 0, or
 * -1 with err filled. */
int pool_set_start_health(struct pool_set *ps, struct loop *loop, char *err,
                          size_t errlen);
/* Stops both (a set that a reload replaced). */
void pool_set_stop_health(struct pool_set *ps);
/* The pool named name, or NULL. */
struct pool *pool_set_find(const struct pool_set *ps, const char *name);

#endif
