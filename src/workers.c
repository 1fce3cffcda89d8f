/*
 * workers: the rows the workers of --workers N publish (include/workers.h).
 */
#include "workers.h"

#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "proxyaccept.h"
#include "session.h"

_Static_assert(sizeof(struct worker_counters) % sizeof(uint64_t) == 0,
               "struct worker_counters is all uint64_t");
#define NCOUNTERS (sizeof(struct worker_counters) / sizeof(uint64_t))

void workers_sum(const struct worker_row *rows, size_t n,
                 struct worker_counters *out)
{
    uint64_t acc[NCOUNTERS] = {0}, v[NCOUNTERS];
    for (size_t i = 0; i < n; i++) {
        memcpy(v, &rows[i].c, sizeof(v));
        for (size_t k = 0; k < NCOUNTERS; k++)
            acc[k] += v[k];
    }
    memcpy(out, acc, sizeof(acc));
}

void workers_depart(struct worker_row *row, struct worker_row *departed)
{
    struct worker_counters c = row->c;
    c.queued_now = 0; /* gauges: what it held is gone with it */
    c.tunnels_open = 0;
    c.tls.in_progress = 0;
    struct worker_row both[2] = {{.c = c}, {.c = departed->c}};
    workers_sum(both, 2, &departed->c);
    memset(&row->c, 0, sizeof(row->c));
}

void workers_log_path(char *path, size_t len, unsigned i)
{
    if (!path[0])
        return;
    char base[512];
    snprintf(base, sizeof(base), "%s", path);
    char *dot = strrchr(base, '.'), *slash = strrchr(base, '/');
    const char *ext = "";
    if (dot && (!slash || dot > slash)) {
        *dot = '\0';
        ext = dot + 1;
    }
    snprintf(path, len, "%s.w%u%s%s", base, i, *ext ? "." : "", ext);
}

void workers_admin_sources(struct admin_sources *a, struct worker_counters *c,
                           bool tls)
{
    a->retries = &c->retries;
    a->retries_5xx = &c->retries_5xx;
    a->retry_budget_refused = &c->budget_refused;
    a->per_try_retries = &c->per_try_retries;
    a->hedges = &c->hedges;
    a->hedge_wins = &c->hedge_wins;
    a->queued_now = &c->queued_now;
    a->queued_total = &c->queued_total;
    a->queue_full = &c->queue_full;
    a->queue_timeouts = &c->queue_timeouts;
    a->queue_wait_us = &c->queue_wait_us;
    a->proxy_accepted = &c->proxy_accepted;
    a->proxy_refused = &c->proxy_refused;
    a->tunnels_open = &c->tunnels_open;
    a->tunnels_total = &c->tunnels_total;
    a->tls = tls ? &c->tls : NULL;
    a->upstream_tls = &c->upstream_tls;
}

void workers_publish(struct worker_row *row, const struct session_ctx *ctx,
                     const struct proxyaccept *pa,
                     const struct tls_counters *tls)
{
    row->c = (struct worker_counters){
        .retries = ctx->retries,
        .retries_5xx = ctx->retries_5xx,
        .budget_refused = ctx->budget_refused,
        .per_try_retries = ctx->per_try_retries,
        .hedges = ctx->hedges,
        .hedge_wins = ctx->hedge_wins,
        .queued_now = ctx->queued_now,
        .queued_total = ctx->queued_total,
        .queue_full = ctx->queue_full,
        .queue_timeouts = ctx->queue_timeouts,
        .queue_wait_us = ctx->queue_wait_us,
        .proxy_accepted = pa->accepted,
        .proxy_refused = pa->refused,
        .tunnels_open = ctx->tunnels_open,
        .tunnels_total = ctx->tunnels_total,
        .tls = tls ? *tls : (struct tls_counters){0},
        .upstream_tls = *tls_client_counters(),
    };
}
