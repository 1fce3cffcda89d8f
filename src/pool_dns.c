/*
 * pool_dns: the pools' named backends following their DNS answers
 * (include/pool_dns.h).
 */
#include "pool_dns.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backendset.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "pool.h"
#include "resolver.h"

/* One named backend of one pool and the backends its answer gave. */
struct watch {
    struct pool_dns *d;
    struct pool *pool;
    struct config_backend spec; /* id, kind, name, port, weight */
    struct resolver_watch *rw;
    const char *status; /* "pending", then resolver_status_str() */
    char reason[160];
    unsigned failures;
    uint64_t answers;
    size_t n; /* backends it added, by id */
    char ids[RESOLVER_MAX_ADDRS][32];
    char addrs[RESOLVER_MAX_ADDRS][64];
    unsigned weights[RESOLVER_MAX_ADDRS];
    /* the name each is an address of (an SRV target), for TLS */
    char targets[RESOLVER_MAX_ADDRS][RESOLVER_NAME_MAX + 1];
};

struct pool_dns {
    struct loop *loop;
    size_t n;
    struct watch *w;
};

bool pool_dns_wanted(const struct pool_set *ps)
{
    for (size_t i = 0; i < ps->npools; i++)
        if (ps->pools[i]->nnamed > 0)
            return true;
    return false;
}

/* The backend id of one address of spec: "<ID>-<address>" with ':', '['
 * and ']' made '.', or when that is too long, "<ID>-" and a hash. */
static void address_id(const char *spec_id, const char *addr, char *out,
                       size_t len)
{
    char a[64];
    size_t k = 0;
    for (const char *p = addr; *p && k + 1 < sizeof(a); p++)
        if (*p != '[' && *p != ']')
            a[k++] = *p == ':' ? '.' : *p;
    a[k] = '\0';
    int n = snprintf(out, len, "%s-%s", spec_id, a);
    if (n > 0 && (size_t)n < len && config_backend_id_ok(out))
        return;
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = addr; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(out, len, "%.14s-%016llx", spec_id, (unsigned long long)h);
}

static int find_addr(const struct watch *w, const char *addr)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->addrs[i], addr) == 0)
            return (int)i;
    return -1;
}

/* Adds one address of name `target` to the watch's pool and list; false
 * when the pool refused it (logged). */
static bool add_addr(struct watch *w, const char *addr, unsigned weight,
                     const char *target)
{
    char id[32], err[256];
    if (w->n >= RESOLVER_MAX_ADDRS)
        return false;
    address_id(w->spec.id, addr, id, sizeof(id));
    uint64_t now = loop_now(w->d->loop);
    int had = backendset_find(&w->pool->set, id);
    if (had >= 0 &&
        strcmp(backendset_addr(&w->pool->set, (size_t)had), addr) == 0) {
        /* already there: what worker 0 of --workers N published before
         * this one replaced it; followed from now on */
        log_info("pool %s: %s: %s kept from before", w->pool->cfg.pool,
                 w->spec.name, addr);
    } else if (backendset_add(&w->pool->set, id, addr,
                              w->spec.tls ? target : NULL, weight, now, err,
                              sizeof(err)) < 0) {
        log_warnx("pool %s: %s: cannot add %s: %s", w->pool->cfg.pool,
                  w->spec.name, addr, err);
        return false;
    }
    snprintf(w->ids[w->n], sizeof(w->ids[0]), "%s", id);
    snprintf(w->addrs[w->n], sizeof(w->addrs[0]), "%s", addr);
    snprintf(w->targets[w->n], sizeof(w->targets[0]), "%s", target);
    w->weights[w->n++] = weight;
    return true;
}

static void drop_at(struct watch *w, size_t i)
{
    backendset_remove(&w->pool->set, w->ids[i]); /* in flight finishes */
    w->n--;
    memmove(w->ids[i], w->ids[w->n], sizeof(w->ids[0]));
    memmove(w->addrs[i], w->addrs[w->n], sizeof(w->addrs[0]));
    memmove(w->targets[i], w->targets[w->n], sizeof(w->targets[0]));
    w->weights[i] = w->weights[w->n];
}

/* Makes the watch's backends the answer's: gone ones drain, new ones
 * join, changed weights follow. */
static void apply(struct watch *w, const struct resolver_answer *a)
{
    for (size_t i = w->n; i-- > 0;) {
        bool keep = false;
        for (size_t j = 0; j < a->n && !keep; j++)
            keep = strcmp(a->addrs[j].addr, w->addrs[i]) == 0;
        if (!keep)
            drop_at(w, i);
    }
    for (size_t j = 0; j < a->n; j++) {
        const struct resolver_addr *ra = &a->addrs[j];
        unsigned weight = w->spec.kind == CONFIG_BACKEND_SRV
                              ? ra->weight
                              : (w->spec.weight ? w->spec.weight : 1);
        int i = find_addr(w, ra->addr);
        if (i < 0) {
            add_addr(w, ra->addr, weight,
                     ra->target[0] ? ra->target : w->spec.name);
        } else if (w->weights[i] != weight &&
                   backendset_set_weight(&w->pool->set, w->ids[i], weight) ==
                       0) {
            w->weights[i] = weight;
        }
    }
    w->answers++;
}

static void on_answer(void *arg, const struct resolver_answer *a)
{
    struct watch *w = arg;
    w->status = resolver_status_str(a->status);
    w->failures = a->failures;
    snprintf(w->reason, sizeof(w->reason), "%s", a->reason);
    if (a->status != RESOLVER_OK) {
        log_warnx("pool %s: %s %s: %s (%s); keeping %zu backend(s)",
                  w->pool->cfg.pool, resolver_kind_str(a->kind), a->name,
                  w->status, a->reason, w->n);
        return;
    }
    if (a->dropped)
        log_warnx("pool %s: %s: %zu address(es) beyond %d ignored",
                  w->pool->cfg.pool, a->name, a->dropped, RESOLVER_MAX_ADDRS);
    size_t before = w->n;
    apply(w, a);
    log_info("pool %s: %s %s: %zu address(es) (was %zu), ttl %u s",
             w->pool->cfg.pool, resolver_kind_str(a->kind), a->name, w->n,
             before, (unsigned)a->ttl_s);
}

/* The old set's watch for the same pool and named backend, or NULL. */
static const struct watch *old_watch(const struct pool_dns *old,
                                     const struct watch *w)
{
    for (size_t i = 0; old && i < old->n; i++) {
        const struct watch *o = &old->w[i];
        if (strcmp(o->pool->cfg.pool, w->pool->cfg.pool) == 0 &&
            strcmp(o->spec.id, w->spec.id) == 0 &&
            strcmp(o->spec.name, w->spec.name) == 0 &&
            o->spec.kind == w->spec.kind &&
            strcmp(o->spec.port, w->spec.port) == 0)
            return o;
    }
    return NULL;
}

struct pool_dns *pool_dns_start(struct resolver *r, struct loop *loop,
                                struct pool_set *ps, const struct pool_dns *old,
                                char *err, size_t errlen)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->npools; i++)
        n += ps->pools[i]->nnamed;
    struct pool_dns *d = calloc(1, sizeof(*d));
    if (d)
        d->w = calloc(n ? n : 1, sizeof(*d->w));
    if (!d || !d->w) {
        free(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->loop = loop;
    for (size_t i = 0; i < ps->npools; i++) {
        struct pool *p = ps->pools[i];
        for (size_t j = 0; j < p->nnamed; j++) {
            struct watch *w = &d->w[d->n++];
            w->d = d;
            w->pool = p;
            w->spec = p->named[j];
            w->status = "pending";
            const struct watch *o = old_watch(old, w);
            for (size_t k = 0; o && k < o->n; k++)
                add_addr(w, o->addrs[k], o->weights[k], o->targets[k]);
            if (o) {
                w->status = o->status;
                snprintf(w->reason, sizeof(w->reason), "%s", o->reason);
            }
            bool srv = w->spec.kind == CONFIG_BACKEND_SRV;
            w->rw = resolver_watch(
                r, srv ? RESOLVER_SRV : RESOLVER_HOST, w->spec.name,
                srv ? 0 : (unsigned)atoi(w->spec.port),
                p->cfg.dns_resolve_interval_ms, on_answer, w, err, errlen);
            if (!w->rw) {
                pool_dns_stop(d);
                return NULL;
            }
        }
    }
    return d;
}

void pool_dns_stop(struct pool_dns *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        resolver_unwatch(d->w[i].rw);
    free(d->w);
    free(d);
}

size_t pool_dns_status(const struct pool_dns *d, struct pool_dns_status *out,
                       size_t max)
{
    for (size_t i = 0; d && i < d->n && i < max; i++) {
        const struct watch *w = &d->w[i];
        out[i] = (struct pool_dns_status){
            w->pool->cfg.pool,
            w->spec.id,
            w->spec.name,
            w->spec.kind == CONFIG_BACKEND_SRV ? "srv" : "host",
            w->status,
            w->reason,
            w->n,
            w->failures,
            w->answers};
    }
    return d ? d->n : 0;
}
