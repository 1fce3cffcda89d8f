/*
 * admin_view: the flat list of backend rows the admin renderers draw
 * (src/admin_view.h).
 */
#include "admin_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backendset.h"
#include "balancer.h"
#include "config.h"
#include "stats.h"

#define ADMIN_MAX_POOLS 4096

size_t admin_pools(const struct admin_sources *src, struct admin_pool **out)
{
    size_t n = 1;
    if (src->pools)
        n = src->pools(src->pools_ctx, NULL, 0);
    if (n > ADMIN_MAX_POOLS)
        n = ADMIN_MAX_POOLS;
    *out = calloc(n ? n : 1, sizeof(**out));
    if (!*out)
        return 0;
    if (src->pools) {
        size_t got = src->pools(src->pools_ctx, *out, n);
        return got < n ? got : n;
    }
    (*out)[0] =
        (struct admin_pool){CONFIG_DEFAULT_POOL, src->backends, src->config,
                            src->stats,          src->balancer, src->pool_ctx};
    return 1;
}

/* Slots of pool p to look at: its set's (some may be removed), else its
 * stats' series. */
static size_t slots_of(const struct admin_pool *p)
{
    if (p->set)
        return backendset_count(p->set);
    return p->stats ? stats_count(p->stats) : 0;
}

/* Fills v for slot i of pool p; false when the slot holds no backend (a
 * removed one).  Ids, addresses and weights come from the set (its upstream
 * table and balancer), which runtime changes keep current; without one from
 * the configuration, else the slot numbers. */
static bool view_of(const struct admin_sources *src, const struct admin_pool *p,
                    size_t i, uint64_t now_us, bool named, struct bview *v)
{
    const struct backendset *set = p->set;
    const struct config *c = p->config;
    memset(v, 0, sizeof(*v));
    v->pool = p->name;
    v->st = p->stats && i < stats_count(p->stats) ? p->stats : NULL;
    v->si = i;
    v->weight = 1;
    v->health = "up";
    v->state = "up";
    v->admin_state = balancer_admin_str(BALANCER_READY);
    v->up = true;
    if (set) {
        if (!backendset_live(set, i))
            return false;
        snprintf(v->id, sizeof(v->id), "%s", backendset_id(set, i));
        snprintf(v->addr, sizeof(v->addr), "%s", backendset_addr(set, i));
        v->state = backendset_state(set, i);
    } else if (c && i < c->nbackends) {
        snprintf(v->id, sizeof(v->id), "%s", c->backends[i].id);
        config_backend_addr(&c->backends[i], v->addr, sizeof(v->addr));
        v->weight = c->backends[i].weight;
    } else {
        snprintf(v->id, sizeof(v->id), "%zu", i);
    }
    if (named)
        snprintf(v->key, sizeof(v->key), "%s/%s", p->name, v->id);
    else
        snprintf(v->key, sizeof(v->key), "%s", v->id);
    struct balancer *bal = set && set->bal ? set->bal : p->balancer;
    if (bal && i < balancer_count(bal)) {
        /* balancer_score refreshes an expired ejection first. */
        v->score = balancer_score(bal, i, now_us);
        const struct balancer_backend *be = balancer_backend(bal, i);
        v->health = balancer_health_str(be->health);
        v->up = be->health == BALANCER_UP && be->admin == BALANCER_READY;
        v->in_flight = be->in_flight;
        for (size_t w = 0; w < src->nworkers && w < SHM_MAX_WORKERS; w++)
            v->in_flight_w[w] = balancer_worker_in_flight(bal, (unsigned)w, i);
        v->weight = be->weight;
        v->admin_state = balancer_admin_str(be->admin);
        balancer_reason(bal, i, v->reason, sizeof(v->reason));
        v->probing = balancer_wants_probes(bal);
        v->probes_sent = be->probes_sent;
        v->probes_failed = be->probes_failed;
        v->probes_fallback = be->probes_fallback;
    }
    if (src->pool_idle)
        v->pool_idle = src->pool_idle(p->pool_ctx, i);
    return true;
}

size_t admin_views(const struct admin_sources *src, const struct admin_pool *p,
                   size_t np, uint64_t now_us, struct bview **out, bool *named)
{
    size_t n = 0;
    *named = np > 1 || (np == 1 && strcmp(p[0].name, CONFIG_DEFAULT_POOL) != 0);
    for (size_t i = 0; i < np; i++)
        n += slots_of(&p[i]);
    *out = calloc(n ? n : 1, sizeof(**out));
    if (!*out)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < slots_of(&p[i]); j++)
            if (view_of(src, &p[i], j, now_us, *named, &(*out)[k]))
                k++;
    return k;
}

const char *admin_mode(const struct admin_pool *p, size_t np)
{
    if (np == 0)
        return "";
    if (p[0].balancer)
        return balancer_mode(p[0].balancer);
    return p[0].config ? p[0].config->mode : "";
}

bool admin_persistent(const struct admin_pool *p, size_t np)
{
    return np > 0 && p[0].config && p[0].config->persistent;
}
