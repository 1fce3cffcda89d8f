/*
 * sharedgen: a generation of shared balancers and stats (include/sharedgen.h).
 * The stats follow the rules a reload has in one process (server.c
 * attach_stats): with one pool the total's object is the pool's; a backend
 * keeps its series by id within its pool; the total is always kept.
 */
#include "sharedgen.h"

#include <stdio.h>
#include <string.h>

#include "balancer.h"
#include "pool_balancer.h"
#include "shm.h"
#include "stats.h"
#include "log.h"
#include "upstream.h"

static const struct shared_pool *find(const struct shared_gen *g,
                                      const char *name)
{
    for (size_t i = 0; g && i < g->npools; i++)
        if (strcmp(g->pools[i].name, name) == 0)
            return &g->pools[i];
    return NULL;
}

static int id_index(const struct shared_pool *p, const char *id)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (strcmp(p->ids[i], id) == 0)
            return (int)i;
    return -1;
}

/* The stats of pool p of g (index i), from old's where it has them. */
static int make_stats(struct shared_gen *g, size_t i,
                      const struct shared_gen *old, uint64_t now)
{
    struct shared_pool *p = &g->pools[i];
    const struct shared_pool *o = find(old, p->name);
    int from[CONFIG_MAX_BACKENDS];
    bool follow = o && (g->npools == 1) == (o->stats == old->total);
    for (size_t j = 0; j < p->n; j++)
        from[j] = follow ? id_index(o, p->ids[j]) : -1;
    if (g->npools == 1) {
        p->stats = g->total =
            old ? stats_clone(old->total, p->n, from) : stats_create(p->n, now);
        return g->total ? 0 : -1;
    }
    p->stats =
        follow ? stats_clone(o->stats, p->n, from) : stats_create(p->n, now);
    return p->stats ? 0 : -1;
}

struct shared_gen *shared_gen_create(const struct config *cfg,
                                     const struct shared_gen *old, unsigned id,
                                     uint64_t now_us, char *err, size_t errlen)
{
    struct shared_gen *g = shm_calloc(1, sizeof(*g));
    size_t n = config_pool_count(cfg);
    if (!g || !(g->pools = shm_calloc(n ? n : 1, sizeof(*g->pools))))
        goto nomem;
    g->id = id;
    g->npools = n;
    if (n != 1) {
        int none[1];
        g->total =
            old ? stats_clone(old->total, 0, none) : stats_create(0, now_us);
        if (!g->total)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        struct shared_pool *p = &g->pools[i];
        struct config pc;
        if (config_pool_build(cfg, i, &pc, err, errlen) < 0)
            goto fail;
        snprintf(p->name, sizeof(p->name), "%s", pc.pool);
        size_t k = 0; /* named ones aside, as pool.c does: DNS adds them */
        for (size_t j = 0; j < pc.nbackends; j++)
            if (pc.backends[j].kind == CONFIG_BACKEND_ADDR)
                pc.backends[k++] = pc.backends[j];
        pc.nbackends = k;
        p->n = k;
        for (size_t j = 0; j < p->n; j++) {
            snprintf(p->ids[j], sizeof(p->ids[j]), "%s", pc.backends[j].id);
            p->slots[j].live = true;
            snprintf(p->slots[j].id, sizeof(p->slots[j].id), "%s",
                     pc.backends[j].id);
            config_backend_addr(&pc.backends[j], p->slots[j].addr,
                                sizeof(p->slots[j].addr));
        }
        p->bal = pool_cfg_balancer(&pc);
        if (!p->bal) {
            snprintf(err, errlen,
                     "pool %s: cannot create balancer '%s' in the shared "
                     "region",
                     p->name, pc.mode);
            goto fail;
        }
        const struct shared_pool *o = find(old, p->name);
        for (size_t j = 0; old && j < p->n; j++)
            if (id_index(o, p->ids[j]) < 0)
                balancer_slow_start(p->bal, j, now_us);
        if (make_stats(g, i, old, now_us) < 0)
            goto nomem;
    }
    return g;
nomem:
    snprintf(err, errlen, "the shared region is full");
fail:
    shared_gen_destroy(g);
    return NULL;
}

void shared_gen_destroy(struct shared_gen *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->pools && i < g->npools; i++) {
        balancer_destroy(g->pools[i].bal);
        if (g->pools[i].stats != g->total)
            stats_destroy(g->pools[i].stats);
    }
    stats_destroy(g->total);
    shm_free(g->pools);
    shm_free(g);
}

void shared_pool_publish(struct shared_pool *sp, const struct upstream *up)
{
    size_t n = upstream_count(up);
    __atomic_add_fetch(&sp->version, 1, __ATOMIC_ACQ_REL); /* odd */
    for (size_t i = 0; i < CONFIG_MAX_BACKENDS; i++) {
        struct shared_slot *sl = &sp->slots[i];
        sl->live = i < n && upstream_live(up, i);
        if (!sl->live)
            continue;
        snprintf(sl->id, sizeof(sl->id), "%s", upstream_id(up, i));
        snprintf(sl->addr, sizeof(sl->addr), "%s", upstream_addr(up, i));
        const char *th = upstream_tls_host(up, i);
        sl->tls = th != NULL;
        snprintf(sl->tls_host, sizeof(sl->tls_host), "%s", th ? th : "");
    }
    __atomic_add_fetch(&sp->version, 1, __ATOMIC_RELEASE); /* even */
}

void shared_pool_follow(const struct shared_pool *sp, struct upstream *up,
                        unsigned *seen)
{
    unsigned v = __atomic_load_n(&sp->version, __ATOMIC_ACQUIRE);
    if (v == *seen || (v & 1u))
        return;
    static struct shared_slot copy[CONFIG_MAX_BACKENDS];
    memcpy(copy, sp->slots, sizeof(copy));
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&sp->version, __ATOMIC_ACQUIRE) != v)
        return; /* written meanwhile: the next call */
    char err[256];
    size_t n = upstream_count(up);
    for (size_t i = 0; i < CONFIG_MAX_BACKENDS; i++) {
        const struct shared_slot *sl = &copy[i];
        bool mine = i < n && upstream_live(up, i);
        if (mine && (!sl->live || strcmp(upstream_id(up, i), sl->id) != 0)) {
            log_info("pool %s: backend %s removed (worker 0's change)",
                     sp->name, upstream_id(up, i));
            upstream_remove(up, i);
            mine = false;
        }
        if (sl->live && !mine) {
            if (upstream_add(up, i, sl->id, sl->addr,
                             sl->tls ? sl->tls_host : NULL, err,
                             sizeof(err)) < 0)
                log_warnx("pool %s: backend %s at %s: %s", sp->name, sl->id,
                          sl->addr, err);
            else
                log_info("pool %s: backend %s (%s) added (worker 0's "
                         "change)",
                         sp->name, sl->id, sl->addr);
        }
    }
    *seen = v;
}

void shared_gen_forget_worker(struct shared_gen *g, unsigned w)
{
    for (size_t i = 0; i < g->npools; i++)
        balancer_forget_worker(g->pools[i].bal, w);
}
