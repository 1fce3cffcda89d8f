/*
 * pool: builds the pools of a configuration and their route table
 * (include/pool.h).
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "pool_balancer.h"
#include "health.h"
#include "prequal_probe.h"
#include "route.h"
#include "sharedgen.h"
#include "tls_client.h"
#include "upstream.h"

static void pool_destroy(struct pool *p)
{
    if (!p)
        return;
    health_destroy(p->health);
    prequal_probe_destroy(p->probe);
    if (!p->bal_shared) /* a shared one is the master's */
        balancer_destroy(p->bal);
    upstream_destroy(p->up);
    free(p);
}

void pool_follow_sync(struct pool *p)
{
    shared_pool_follow(p->follow, p->up, &p->seen);
}

static struct pool *pool_create(struct loop *loop, const struct config *cfg,
                                struct shared_gen *sg, size_t i, char *err,
                                size_t errlen)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->index = i;
    if (config_pool_build(cfg, i, &p->cfg, err, errlen) < 0)
        goto fail;
    bool tls = tls_client_wanted(&p->cfg);
    size_t k = 0; /* named backends aside: their addresses come later */
    for (size_t j = 0; j < p->cfg.nbackends; j++) {
        const struct config_backend *b = &p->cfg.backends[j];
        if (b->kind == CONFIG_BACKEND_ADDR)
            p->cfg.backends[k++] = *b;
        else
            p->named[p->nnamed++] = *b;
    }
    p->cfg.nbackends = k;
    p->up = upstream_create(loop, &p->cfg, err, errlen);
    if (!p->up || (tls && upstream_enable_tls(p->up, &p->cfg, err, errlen)))
        goto fail;
    if (sg && (i >= sg->npools || strcmp(sg->pools[i].name, p->cfg.pool) ||
               sg->pools[i].n != p->cfg.nbackends)) {
        snprintf(err, errlen, "pool %s: not the shared generation's",
                 p->cfg.pool);
        goto fail;
    }
    p->bal_shared = sg != NULL;
    p->follow = sg ? &sg->pools[i] : NULL;
    p->bal = sg ? sg->pools[i].bal : pool_cfg_balancer(&p->cfg);
    if (!p->bal) {
        snprintf(err, errlen, "pool %s: cannot create balancer '%s'",
                 p->cfg.pool, p->cfg.mode);
        goto fail;
    }
    p->set.name = p->cfg.pool;
    p->set.up = p->up;
    p->set.bal = p->bal;
    return p;
fail:
    pool_destroy(p);
    return NULL;
}

static void set_free(struct pool_set *ps)
{
    for (size_t i = 0; i < ps->npools; i++)
        pool_destroy(ps->pools[i]);
    free(ps->pools);
    route_table_destroy(ps->routes);
    free(ps);
}

struct pool_set *pool_set_create(struct loop *loop, const struct config *cfg,
                                 char *err, size_t errlen)
{
    return pool_set_create_shared(loop, cfg, NULL, err, errlen);
}

struct pool_set *pool_set_create_shared(struct loop *loop,
                                        const struct config *cfg,
                                        struct shared_gen *sg, char *err,
                                        size_t errlen)
{
    struct pool_set *ps = calloc(1, sizeof(*ps));
    size_t n = config_pool_count(cfg);
    const char **names = calloc(n ? n : 1, sizeof(*names));
    if (!ps || !names || !(ps->pools = calloc(n ? n : 1, sizeof(*ps->pools)))) {
        snprintf(err, errlen, "out of memory");
        free(names);
        if (ps)
            set_free(ps);
        return NULL;
    }
    ps->refs = 1;
    ps->default_pool = -1;
    for (size_t i = 0; i < n; i++) {
        ps->pools[i] = pool_create(loop, cfg, sg, i, err, errlen);
        if (!ps->pools[i])
            goto fail;
        ps->npools++;
        names[i] = ps->pools[i]->cfg.pool;
        if (strcmp(names[i], CONFIG_DEFAULT_POOL) == 0)
            ps->default_pool = (int)i;
    }
    /* a lone pool without routes takes everything, as [backends] did */
    size_t nr = config_route_count(cfg);
    int fallback = ps->default_pool >= 0 ? ps->default_pool
                   : (nr == 0 && n == 1) ? 0
                                         : -1;
    ps->routes = route_table_create(nr ? config_route(cfg, 0) : NULL, nr, names,
                                    n, fallback, err, errlen);
    if (!ps->routes)
        goto fail;
    ps->nroutes = nr;
    if (nr == 0)
        ps->default_pool = fallback;
    free(names);
    return ps;
fail:
    free(names);
    set_free(ps);
    return NULL;
}

void pool_set_put(struct pool_set *ps)
{
    if (ps && --ps->refs == 0)
        set_free(ps);
}

int pool_set_start_health(struct pool_set *ps, struct loop *loop, char *err,
                          size_t errlen)
{
    for (size_t i = 0; i < ps->npools; i++) {
        struct pool *p = ps->pools[i];
        if (!p->probe && balancer_wants_probes(p->bal)) {
            p->probe =
                prequal_probe_create(loop, &p->cfg, p->up, p->bal, err, errlen);
            if (!p->probe)
                return -1;
        }
        if (p->health || !health_enabled(&p->cfg))
            continue;
        p->health = health_create(loop, &p->cfg, p->up, p->bal, err, errlen);
        if (!p->health)
            return -1;
        p->set.health = p->health;
    }
    return 0;
}

void pool_set_stop_health(struct pool_set *ps)
{
    for (size_t i = 0; ps && i < ps->npools; i++) {
        health_destroy(ps->pools[i]->health);
        ps->pools[i]->health = NULL;
        prequal_probe_destroy(ps->pools[i]->probe);
        ps->pools[i]->probe = NULL;
        ps->pools[i]->set.health = NULL;
    }
}

struct pool *pool_set_find(const struct pool_set *ps, const char *name)
{
    for (size_t i = 0; ps && i < ps->npools; i++)
        if (strcmp(ps->pools[i]->cfg.pool, name) == 0)
            return ps->pools[i];
    return NULL;
}

struct stats *pool_set_attach_shared_stats(struct pool_set *ps,
                                           const struct shared_gen *sg)
{
    for (size_t i = 0; i < ps->npools && i < sg->npools; i++) {
        ps->pools[i]->stats = sg->pools[i].stats;
        ps->pools[i]->set.stats = sg->pools[i].stats;
    }
    return sg->total;
}
