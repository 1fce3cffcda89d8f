/*
 * backendset: in-place changes of one backend set, the upstream table, the
 * balancer, the stats and the health checks kept in step (slot i is the
 * same backend in all of them).  See include/backendset.h.
 */
#include "backendset.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "stats.h"
#include "upstream.h"

int backendset_find(const struct backendset *s, const char *id)
{
    size_t n = upstream_count(s->up);
    for (size_t i = 0; i < n; i++)
        if (upstream_live(s->up, i) && strcmp(upstream_id(s->up, i), id) == 0)
            return (int)i;
    return -1;
}

/* Gives slot idx a fresh stats series (growing the stats to hold it);
 * every other series keeps its history. */
static void stats_fresh(struct stats *st, size_t idx)
{
    int from[CONFIG_MAX_BACKENDS];
    size_t n = stats_count(st);
    if (idx >= n)
        n = idx + 1;
    for (size_t i = 0; i < n; i++)
        from[i] = i == idx ? -1 : (int)i;
    if (stats_remap(st, n, from) < 0)
        log_warn("stats of the new backend in slot %zu", idx);
}

int backendset_add(struct backendset *s, const char *id, const char *addr,
                   const char *tls_host, unsigned weight, uint64_t now_us,
                   char *err, size_t errlen)
{
    if (!config_backend_id_ok(id)) {
        snprintf(err, errlen,
                 "id: 1..31 letters, digits, '_', '-' or '.' expected");
        errno = EINVAL;
        return -1;
    }
    if (weight == 0)
        weight = 1;
    if (weight > CONFIG_WEIGHT_MAX) {
        snprintf(err, errlen, "weight: 1..%u expected", CONFIG_WEIGHT_MAX);
        errno = EINVAL;
        return -1;
    }
    if (backendset_find(s, id) >= 0) {
        snprintf(err, errlen, "backend %s exists in pool %s", id, s->name);
        errno = EEXIST;
        return -1;
    }
    /* without a balancer, the next slot after the table's last */
    int idx = s->bal ? balancer_add(s->bal, weight, now_us)
                     : (int)upstream_count(s->up);
    if (idx < 0 || idx >= CONFIG_MAX_BACKENDS) {
        snprintf(err, errlen, "pool %s is full (%d backends)", s->name,
                 CONFIG_MAX_BACKENDS);
        errno = ENOSPC;
        return -1;
    }
    if (upstream_add(s->up, (size_t)idx, id, addr, tls_host, err, errlen) < 0) {
        if (s->bal)
            balancer_remove(s->bal, (size_t)idx);
        errno = EINVAL;
        return -1;
    }
    if (s->stats)
        stats_fresh(s->stats, (size_t)idx);
    char why[256];
    if (health_add(s->health, (unsigned)idx, why, sizeof(why)) < 0)
        log_warnx("pool %s: backend %s: no health checks: %s", s->name, id,
                  why);
    log_info("pool %s: backend %s (%s) added, weight %u, slot %d", s->name, id,
             upstream_addr(s->up, (size_t)idx), weight, idx);
    if (s->on_change)
        s->on_change(s->on_change_ctx, s);
    return idx;
}

/* The live slot of id, or -1 with errno ENOENT. */
static int find_or_enoent(const struct backendset *s, const char *id)
{
    int idx = backendset_find(s, id);
    if (idx < 0)
        errno = ENOENT;
    return idx;
}

int backendset_remove(struct backendset *s, const char *id)
{
    int idx = find_or_enoent(s, id);
    if (idx < 0)
        return -1;
    unsigned in_flight = 0;
    if (s->bal) {
        in_flight = balancer_backend(s->bal, (size_t)idx)->in_flight;
        balancer_remove(s->bal, (size_t)idx);
    }
    health_remove(s->health, (unsigned)idx);
    upstream_remove(s->up, (size_t)idx);
    if (s->on_change)
        s->on_change(s->on_change_ctx, s);
    log_info("pool %s: backend %s (%s) removed, %u request(s) in flight",
             s->name, id, upstream_addr(s->up, (size_t)idx), in_flight);
    return 0;
}

int backendset_set_weight(struct backendset *s, const char *id, unsigned weight)
{
    int idx = find_or_enoent(s, id);
    if (idx < 0)
        return -1;
    if (weight < 1 || weight > CONFIG_WEIGHT_MAX || !s->bal ||
        balancer_set_weight(s->bal, (size_t)idx, weight) < 0) {
        errno = EINVAL;
        return -1;
    }
    log_info("pool %s: backend %s weight %u", s->name, id, weight);
    return 0;
}

int backendset_set_state(struct backendset *s, const char *id,
                         enum balancer_admin a, uint64_t now_us)
{
    int idx = find_or_enoent(s, id);
    if (idx < 0)
        return -1;
    if (!s->bal) {
        errno = EINVAL;
        return -1;
    }
    balancer_set_admin(s->bal, (size_t)idx, a, now_us);
    health_pause(s->health, (unsigned)idx, a == BALANCER_MAINT);
    log_info("pool %s: backend %s %s, %u request(s) in flight", s->name, id,
             balancer_admin_str(a),
             balancer_backend(s->bal, (size_t)idx)->in_flight);
    return 0;
}

const char *backendset_state(const struct backendset *s, size_t idx)
{
    if (!upstream_live(s->up, idx))
        return "removed";
    if (!s->bal || !balancer_live(s->bal, idx))
        return "up";
    const struct balancer_backend *be = balancer_backend(s->bal, idx);
    switch (be->admin) {
    case BALANCER_MAINT:
        return "maint";
    case BALANCER_DRAIN:
        return be->in_flight > 0 ? "draining" : "drained";
    case BALANCER_READY:
        break;
    }
    return balancer_health_str(be->health);
}

int backendset_stats_index(const struct backendset *s, int slot, const char *id)
{
    if (slot < 0 || !id)
        return -1;
    if ((size_t)slot < upstream_count(s->up)) {
        /* a record of this set names its backend by the slot's own id */
        const char *own = upstream_id(s->up, (size_t)slot);
        if (own == id || strcmp(own, id) == 0)
            return slot;
    }
    return backendset_find(s, id);
}

size_t backendset_count(const struct backendset *s)
{
    return upstream_count(s->up);
}

bool backendset_live(const struct backendset *s, size_t idx)
{
    return upstream_live(s->up, idx);
}

const char *backendset_id(const struct backendset *s, size_t idx)
{
    return upstream_id(s->up, idx);
}

const char *backendset_addr(const struct backendset *s, size_t idx)
{
    return upstream_addr(s->up, idx);
}

const char *backendset_tls_host(const struct backendset *s, size_t idx)
{
    return upstream_tls_host(s->up, idx);
}
