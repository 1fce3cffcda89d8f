/*
 * admin_render: JSON and Prometheus text rendered into a growable buffer.
 * The log listing and URL paths are in admin_paths.c, the buffer in
 * admin_buf.c.  See include/admin_render.h.
 */
#include "admin_render.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backendset.h"
#include "pool_dns.h"
#include "balancer.h"
#include "config.h"
#include "stats.h"
#include "tls.h"
#include "tls_client.h"
#include "admin_view.h"
#include "workers.h"

/* ---- JSON helpers ---- */

static void json_str(struct admin_buf *b, const char *s)
{
    admin_buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            admin_buf_add(b, e, 2);
        } else if (*p < 0x20) {
            admin_buf_printf(b, "\\u%04x", *p);
        } else {
            admin_buf_add(b, p, 1);
        }
    }
    admin_buf_add(b, "\"", 1);
}

/* ,"key":"value" (the comma included). */
static void json_kv(struct admin_buf *b, const char *key, const char *value)
{
    admin_buf_printf(b, ",\"%s\":", key);
    json_str(b, value);
}

/* A number with `prec` decimals; JSON has no NaN or infinity: null. */
static void json_num(struct admin_buf *b, double v, int prec)
{
    if (!isfinite(v))
        admin_buf_str(b, "null");
    else
        admin_buf_printf(b, "%.*f", prec, v);
}

static void json_u64(struct admin_buf *b, uint64_t v)
{
    admin_buf_printf(b, "%llu", (unsigned long long)v);
}

/* `key` (with its leading comma and colon) and a counter's value. */
static void json_counter(struct admin_buf *b, const char *key,
                         const uint64_t *p)
{
    admin_buf_str(b, key);
    json_u64(b, admin_counter(p));
}

static void json_latency(struct admin_buf *b, const struct stats_latency *l)
{
    admin_buf_str(b, "{\"mean\":");
    json_num(b, l->mean_ms, 3);
    admin_buf_str(b, ",\"p50\":");
    json_num(b, l->p50_ms, 3);
    admin_buf_str(b, ",\"p90\":");
    json_num(b, l->p90_ms, 3);
    admin_buf_str(b, ",\"p99\":");
    json_num(b, l->p99_ms, 3);
    admin_buf_str(b, ",\"p999\":");
    json_num(b, l->p999_ms, 3);
    admin_buf_str(b, "}");
}

/* The TLS handshakes: ,"tls":{...}, nothing without a TLS listener. */
static void json_tls(struct admin_buf *b, const struct tls_counters *t)
{
    if (!t)
        return;
    admin_buf_str(b, ",\"tls\":{\"handshakes\":");
    json_u64(b, t->handshakes);
    admin_buf_str(b, ",\"resumed\":");
    json_u64(b, t->resumed);
    admin_buf_str(b, ",\"tls13\":");
    json_u64(b, t->tls13);
    admin_buf_str(b, ",\"in_progress\":");
    json_u64(b, t->in_progress);
    admin_buf_str(b, ",\"handshake_ms_avg\":");
    json_num(b,
             t->handshakes
                 ? (double)t->handshake_us / 1000.0 / (double)t->handshakes
                 : 0.0,
             3);
    admin_buf_str(b, ",\"failed\":{");
    for (int i = 0; i < TLS_FAIL_COUNT; i++) {
        admin_buf_printf(b, "%s\"%s\":", i ? "," : "",
                         tls_fail_str((enum tls_fail)i));
        json_u64(b, t->failed[i]);
    }
    admin_buf_str(b, "}}");
}

/* ---- /api/stats ---- */

static void json_errors(struct admin_buf *b, const struct stats_counters *c)
{
    admin_buf_str(b, "{\"total\":");
    json_u64(b, c->errors);
    for (int k = 0; k < STATS_ERR_COUNT; k++) {
        admin_buf_printf(b, ",\"%s\":", stats_err_str((enum stats_err)k));
        json_u64(b, c->err[k]);
    }
    admin_buf_str(b, "}");
}

enum hist_field { H_REQUESTS, H_ERRORS, H_P50, H_P99, H_SCORE };

/* "workers" (--workers N only): each worker's row (workers.h). */
static void json_workers(struct admin_buf *b, const struct admin_sources *src,
                         uint64_t now_us)
{
    if (src->nworkers == 0)
        return;
    admin_buf_str(b, ",\"workers\":[");
    for (size_t i = 0; i < src->nworkers; i++) {
        const struct worker_row *w = &src->workers[i];
        admin_buf_printf(b,
                         "%s{\"index\":%zu,\"pid\":%d,\"up\":%s,"
                         "\"restarts\":%u,\"requests\":",
                         i ? "," : "", i, w->pid, w->pid > 0 ? "true" : "false",
                         w->restarts);
        json_u64(b, w->requests);
        admin_buf_str(b, ",\"connections\":");
        json_u64(b, w->connections);
        admin_buf_str(b, ",\"uptime_s\":");
        json_num(b,
                 w->pid > 0 && now_us > w->started_us
                     ? (double)(now_us - w->started_us) / 1e6
                     : 0.0,
                 1);
        admin_buf_str(b, "}");
    }
    admin_buf_str(b, "]");
}

/* "dns": each named backend, its last answer and the backends it gave. */
static void json_dns(struct admin_buf *b, const struct pool_dns *d)
{
    struct pool_dns_status s[64];
    size_t n = pool_dns_status(d, s, sizeof(s) / sizeof(s[0]));
    for (size_t i = 0; i < n && i < sizeof(s) / sizeof(s[0]); i++) {
        admin_buf_str(b, i ? ",{\"pool\":" : "{\"pool\":");
        json_str(b, s[i].pool);
        json_kv(b, "id", s[i].id);
        json_kv(b, "name", s[i].name);
        json_kv(b, "kind", s[i].kind);
        json_kv(b, "status", s[i].status);
        json_kv(b, "reason", s[i].reason);
        admin_buf_printf(b, ",\"addresses\":%zu,\"failures\":%u,",
                         s[i].addresses, s[i].failures);
        admin_buf_printf(b, "\"answers\":%llu}",
                         (unsigned long long)s[i].answers);
    }
}

/* "pools": each pool's name, policy, connection model, backend count and
 * its own totals over the window. */
static void json_pools(struct admin_buf *b, const struct admin_pool *p,
                       size_t np, unsigned window_s, uint64_t now_us)
{
    for (size_t i = 0; i < np; i++) {
        struct stats_counters c = {0};
        struct stats_window w = {0};
        if (p[i].stats) {
            stats_counters(p[i].stats, STATS_TOTAL, &c);
            stats_window(p[i].stats, STATS_TOTAL, window_s, now_us, &w);
        }
        admin_buf_str(b, i ? ",{\"name\":" : "{\"name\":");
        json_str(b, p[i].name);
        json_kv(b, "mode", admin_mode(&p[i], 1));
        admin_buf_printf(b,
                         ",\"persistent\":%s,\"backends\":%zu,"
                         "\"requests\":",
                         admin_persistent(&p[i], 1) ? "true" : "false",
                         p[i].stats ? stats_count(p[i].stats) : 0);
        json_u64(b, c.requests);
        admin_buf_str(b, ",\"errors\":");
        json_u64(b, c.errors);
        admin_buf_str(b, ",\"rps\":");
        json_num(b, w.rps, 1);
        admin_buf_str(b, ",\"latency_ms\":");
        json_latency(b, &w.latency);
        admin_buf_str(b, "}");
    }
}

/* The history's "flow": per second, the extra attempts and hedges started
 * and the queue length (sampled each second; null before sampling). */
static void json_history_flow(struct admin_buf *b, const struct stats *st,
                              uint64_t now_us)
{
    struct stats_second *t = malloc(STATS_HISTORY * sizeof(*t));
    if (!t)
        return;
    stats_history(st, STATS_TOTAL, now_us, t);
    static const char *const names[] = {"retries", "hedges", "queue"};
    admin_buf_str(b, ",\"flow\":{");
    for (int f = 0; f < 3; f++) {
        admin_buf_printf(b, "%s\"%s\":[", f ? "," : "", names[f]);
        for (size_t j = 0; j < STATS_HISTORY; j++) {
            const struct stats_second *s = &t[j];
            uint32_t x = f == 0 ? s->retries : f == 1 ? s->hedges : s->queue;
            if (j)
                admin_buf_str(b, ",");
            if (s->has_flow)
                json_u64(b, x);
            else
                admin_buf_str(b, "null");
        }
        admin_buf_str(b, "]");
    }
    admin_buf_str(b, "}");
    free(t);
}

static void json_history_field(struct admin_buf *b, const char *name,
                               enum hist_field f, size_t n,
                               const struct bview *v,
                               struct stats_second (*h)[STATS_HISTORY])
{
    admin_buf_printf(b, ",\"%s\":{", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            admin_buf_str(b, ",");
        json_str(b, v[i].key);
        admin_buf_str(b, ":[");
        for (size_t j = 0; j < STATS_HISTORY; j++) {
            const struct stats_second *s = &h[i][j];
            if (j)
                admin_buf_str(b, ",");
            switch (f) {
            case H_REQUESTS:
                json_u64(b, s->requests);
                break;
            case H_ERRORS:
                json_u64(b, s->errors);
                break;
            case H_P50:
                if (s->has_latency)
                    json_num(b, s->p50_ms, 3);
                else
                    admin_buf_str(b, "null");
                break;
            case H_P99:
                if (s->has_latency)
                    json_num(b, s->p99_ms, 3);
                else
                    admin_buf_str(b, "null");
                break;
            case H_SCORE:
                if (s->has_score)
                    json_num(b, s->score, 3);
                else
                    admin_buf_str(b, "null");
                break;
            }
        }
        admin_buf_str(b, "]");
    }
    admin_buf_str(b, "}");
}

void admin_render_stats(struct admin_buf *b, const struct admin_sources *src,
                        uint64_t now_us, double wall_s, unsigned window_s)
{
    struct stats *st = src->stats;
    if (window_s < 1)
        window_s = 1;
    if (window_s > STATS_HISTORY)
        window_s = STATS_HISTORY;
    struct admin_pool *pl = NULL;
    struct bview *v = NULL;
    bool named = false;
    size_t np = admin_pools(src, &pl);
    size_t n = pl ? admin_views(src, pl, np, now_us, &v, &named) : 0;
    struct stats_second(*h)[STATS_HISTORY] = calloc(n ? n : 1, sizeof(*h));
    if (!pl || !v || !h) {
        b->oom = true;
        goto out;
    }
    unsigned in_flight = 0;
    for (size_t i = 0; i < n; i++)
        in_flight += v[i].in_flight;
    double uptime = st ? (double)(now_us - stats_start_us(st)) / 1e6 : 0;

    admin_buf_str(b, "{\"version\":");
    json_str(b, LBPROXY_VERSION);
    json_kv(b, "mode", admin_mode(pl, np));
    admin_buf_printf(b, ",\"persistent\":%s",
                     admin_persistent(pl, np) ? "true" : "false");
    admin_buf_str(b, ",\"time\":");
    json_num(b, wall_s, 3);
    admin_buf_str(b, ",\"uptime_s\":");
    json_num(b, uptime, 1);
    admin_buf_printf(b, ",\"window_s\":%u", window_s);

    struct stats_counters c = {0};
    struct stats_window w = {0};
    if (st) {
        stats_counters(st, STATS_TOTAL, &c);
        stats_window(st, STATS_TOTAL, window_s, now_us, &w);
    }
    admin_buf_str(b, ",\"total\":{\"requests\":");
    json_u64(b, c.requests);
    admin_buf_str(b, ",\"errors\":");
    json_u64(b, c.errors);
    admin_buf_str(b, ",\"rps\":");
    json_num(b, w.rps, 1);
    admin_buf_printf(b, ",\"in_flight\":%u,\"bytes_in\":", in_flight);
    json_u64(b, c.bytes_in);
    admin_buf_str(b, ",\"bytes_out\":");
    json_u64(b, c.bytes_out);
    admin_buf_str(b, ",\"latency_ms\":");
    json_latency(b, &w.latency);
    json_counter(b, ",\"retries\":", src->retries);
    json_counter(b, ",\"retries_5xx\":", src->retries_5xx);
    json_counter(b, ",\"retry_budget_refused\":", src->retry_budget_refused);
    json_counter(b, ",\"per_try_retries\":", src->per_try_retries);
    json_counter(b, ",\"hedges\":", src->hedges);
    json_counter(b, ",\"hedge_wins\":", src->hedge_wins);
    json_counter(b, ",\"queue\":{\"length\":", src->queued_now);
    json_counter(b, ",\"total\":", src->queued_total);
    json_counter(b, ",\"full\":", src->queue_full);
    json_counter(b, ",\"timeouts\":", src->queue_timeouts);
    admin_buf_str(b, ",\"wait_ms\":");
    json_num(b, (double)admin_counter(src->queue_wait_us) / 1000.0, 1);
    admin_buf_str(b, "}");
    json_counter(b, ",\"proxy_protocol\":{\"accepted\":", src->proxy_accepted);
    json_counter(b, ",\"refused\":", src->proxy_refused);
    admin_buf_str(b, "}");
    json_counter(b, ",\"tunnels\":{\"open\":", src->tunnels_open);
    json_counter(b, ",\"total\":", src->tunnels_total);
    admin_buf_str(b, "}");
    const struct tls_client_counters *u = src->upstream_tls, z = {0};
    if (!u)
        u = &z;
    json_counter(b, ",\"upstream_tls\":{\"handshakes\":", &u->handshakes);
    json_counter(b, ",\"resumed\":", &u->resumed);
    json_counter(b, ",\"failures\":", &u->failures);
    json_counter(b, ",\"verify_failures\":", &u->verify_failures);
    admin_buf_str(b, "}");
    json_tls(b, src->tls);
    admin_buf_str(b, "}");
    json_workers(b, src, now_us);
    admin_buf_str(b, ",\"backends\":[");

    for (size_t i = 0; i < n; i++) {
        struct stats_window last;
        stats_counters(v[i].st, v[i].si, &c);
        stats_window(v[i].st, v[i].si, window_s, now_us, &w);
        stats_window(v[i].st, v[i].si, 1, now_us, &last);
        if (i)
            admin_buf_str(b, ",");
        admin_buf_printf(b, "{\"index\":%zu,\"id\":", v[i].si);
        json_str(b, v[i].id);
        json_kv(b, "pool", v[i].pool);
        json_kv(b, "key", v[i].key);
        json_kv(b, "address", v[i].addr);
        admin_buf_printf(b, ",\"weight\":%u,\"health\":", v[i].weight);
        json_str(b, v[i].health);
        json_kv(b, "state", v[i].state);
        json_kv(b, "admin_state", v[i].admin_state);
        json_kv(b, "reason", v[i].reason);
        admin_buf_printf(b, ",\"in_flight\":%u", v[i].in_flight);
        for (size_t k = 0; k < src->nworkers; k++)
            admin_buf_printf(b, "%s%u", k ? "," : ",\"in_flight_by_worker\":[",
                             v[i].in_flight_w[k]);
        admin_buf_printf(b, "%s,\"pool_idle\":%zu,\"score\":",
                         src->nworkers ? "]" : "", v[i].pool_idle);
        json_num(b, v[i].score, 3);
        if (v[i].probing) {
            admin_buf_str(b, ",\"probes\":{\"sent\":");
            json_u64(b, v[i].probes_sent);
            admin_buf_str(b, ",\"failed\":");
            json_u64(b, v[i].probes_failed);
            admin_buf_str(b, ",\"fallback\":");
            json_u64(b, v[i].probes_fallback);
            admin_buf_str(b, "}");
        }
        admin_buf_str(b, ",\"requests\":");
        json_u64(b, c.requests);
        admin_buf_str(b, ",\"rps\":");
        json_num(b, w.rps, 1);
        admin_buf_str(b, ",\"errors\":");
        json_errors(b, &c);
        admin_buf_str(b, ",\"bytes_in\":");
        json_u64(b, c.bytes_in);
        admin_buf_str(b, ",\"bytes_out\":");
        json_u64(b, c.bytes_out);
        admin_buf_str(b, ",\"latency_ms\":");
        json_latency(b, &w.latency);
        admin_buf_str(b, ",\"last_second\":{\"requests\":");
        json_u64(b, last.requests);
        admin_buf_str(b, ",\"errors\":");
        json_u64(b, last.errors);
        admin_buf_str(b, ",\"p50_ms\":");
        json_num(b, last.latency.p50_ms, 3);
        admin_buf_str(b, ",\"p99_ms\":");
        json_num(b, last.latency.p99_ms, 3);
        admin_buf_str(b, "}}");
        stats_history(v[i].st, v[i].si, now_us, h[i]);
    }
    admin_buf_str(b, "],\"pools\":[");
    json_pools(b, pl, np, window_s, now_us);
    admin_buf_str(b, "],\"dns\":[");
    json_dns(b, src->dns ? *src->dns : NULL);

    /* Slots are keyed by monotonic seconds, whose boundaries need not
     * fall on wall seconds: a slot is labelled with the wall second that
     * holds its middle. */
    uint64_t cur = now_us / 1000000u;
    double offset = wall_s - (double)now_us / 1e6;
    admin_buf_str(b, "],\"history\":{\"t\":[");
    for (uint64_t j = 0; j < STATS_HISTORY; j++) {
        if (j)
            admin_buf_str(b, ",");
        double mid = (double)(cur - STATS_HISTORY + j) + 0.5 + offset;
        admin_buf_printf(b, "%lld", (long long)floor(mid));
    }
    admin_buf_str(b, "]");
    json_history_field(b, "requests", H_REQUESTS, n, v, h);
    json_history_field(b, "errors", H_ERRORS, n, v, h);
    json_history_field(b, "p50_ms", H_P50, n, v, h);
    json_history_field(b, "p99_ms", H_P99, n, v, h);
    json_history_field(b, "score", H_SCORE, n, v, h);
    json_history_flow(b, st, now_us);
    admin_buf_str(b, "}}");
out:
    free(pl);
    free(v);
    free(h);
}
