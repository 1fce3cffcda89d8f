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
#include "balancer.h"
#include "config.h"
#include "stats.h"
#include "tls.h"

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

/* A counter another module owns (NULL: 0). */
static uint64_t counter(const uint64_t *p)
{
    return p ? *p : 0;
}

/* `key` (with its leading comma and colon) and a counter's value. */
static void json_counter(struct admin_buf *b, const char *key,
                         const uint64_t *p)
{
    admin_buf_str(b, key);
    json_u64(b, counter(p));
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

/* ---- one backend as the renderers see it ---- */

struct bview {
    size_t slot; /* the backend's index in the set (and the stats) */
    char id[40];
    char addr[128]; /* "host:port", "[v6]:port", "unix:PATH" */
    unsigned weight;
    const char *health;
    const char *admin_state; /* ready, drain, maint */
    const char *state;       /* backendset_state: up, draining, ... */
    bool up;
    char reason[160];
    unsigned in_flight;
    size_t pool_idle;
    double score;
};

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

/* Backend slots to look at: the set's (some may be removed), else the
 * stats' series. */
static size_t backend_count(const struct admin_sources *src)
{
    if (src->backends)
        return backendset_count(src->backends);
    return src->stats ? stats_count(src->stats) : 0;
}

/* Fills v for slot i; false when the slot holds no backend (removed). Ids,
 * addresses and weights come from the set (its upstream table and
 * balancer), which runtime changes keep current; without one, ids are the
 * slot numbers. */
static bool backend_view(const struct admin_sources *src, size_t i,
                         uint64_t now_us, struct bview *v)
{
    const struct backendset *set = src->backends;
    memset(v, 0, sizeof(*v));
    v->slot = i;
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
    } else {
        snprintf(v->id, sizeof(v->id), "%zu", i);
    }
    struct balancer *bal = set && set->bal ? set->bal : src->balancer;
    if (bal && i < balancer_count(bal)) {
        /* balancer_score refreshes an expired ejection first. */
        v->score = balancer_score(bal, i, now_us);
        const struct balancer_backend *be = balancer_backend(bal, i);
        v->health = balancer_health_str(be->health);
        v->up = be->health == BALANCER_UP;
        v->in_flight = be->in_flight;
        v->weight = be->weight;
        v->admin_state = balancer_admin_str(be->admin);
        if (be->admin != BALANCER_READY)
            v->up = false;
        balancer_reason(bal, i, v->reason, sizeof(v->reason));
    }
    if (src->pool_idle)
        v->pool_idle = src->pool_idle(src->pool_ctx, i);
    return true;
}

/* The views of every live backend into v (room for backend_count);
 * returns how many. */
static size_t backend_views(const struct admin_sources *src, uint64_t now_us,
                            struct bview *v)
{
    size_t n = backend_count(src), k = 0;
    for (size_t i = 0; i < n; i++)
        if (backend_view(src, i, now_us, &v[k]))
            k++;
    return k;
}

static const char *mode_of(const struct admin_sources *src)
{
    if (src->balancer)
        return balancer_mode(src->balancer);
    return src->config ? src->config->mode : "";
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
        json_str(b, v[i].id);
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
    size_t n = backend_count(src);
    if (window_s < 1)
        window_s = 1;
    if (window_s > STATS_HISTORY)
        window_s = STATS_HISTORY;
    struct bview *v = calloc(n ? n : 1, sizeof(*v));
    struct stats_second(*h)[STATS_HISTORY] = calloc(n ? n : 1, sizeof(*h));
    if (!v || !h) {
        b->oom = true;
        goto out;
    }
    unsigned in_flight = 0;
    n = backend_views(src, now_us, v);
    for (size_t i = 0; i < n; i++)
        in_flight += v[i].in_flight;
    double uptime = st ? (double)(now_us - stats_start_us(st)) / 1e6 : 0;

    admin_buf_str(b, "{\"version\":");
    json_str(b, LBPROXY_VERSION);
    admin_buf_str(b, ",\"mode\":");
    json_str(b, mode_of(src));
    admin_buf_printf(b, ",\"persistent\":%s",
                     src->config && src->config->persistent ? "true" : "false");
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
    json_num(b, (double)counter(src->queue_wait_us) / 1000.0, 1);
    admin_buf_str(b, "}");
    json_counter(b, ",\"proxy_protocol\":{\"accepted\":", src->proxy_accepted);
    json_counter(b, ",\"refused\":", src->proxy_refused);
    admin_buf_str(b, "}");
    json_counter(b, ",\"tunnels\":{\"open\":", src->tunnels_open);
    json_counter(b, ",\"total\":", src->tunnels_total);
    admin_buf_str(b, "}");
    json_tls(b, src->tls);
    admin_buf_str(b, "},\"backends\":[");

    for (size_t i = 0; i < n; i++) {
        struct stats_window last;
        size_t slot = v[i].slot;
        stats_counters(st, slot, &c);
        stats_window(st, slot, window_s, now_us, &w);
        stats_window(st, slot, 1, now_us, &last);
        if (i)
            admin_buf_str(b, ",");
        admin_buf_printf(b, "{\"index\":%zu,\"id\":", slot);
        json_str(b, v[i].id);
        admin_buf_str(b, ",\"address\":");
        json_str(b, v[i].addr);
        admin_buf_printf(b, ",\"weight\":%u,\"health\":", v[i].weight);
        json_str(b, v[i].health);
        admin_buf_str(b, ",\"state\":");
        json_str(b, v[i].state);
        admin_buf_str(b, ",\"admin_state\":");
        json_str(b, v[i].admin_state);
        admin_buf_str(b, ",\"reason\":");
        json_str(b, v[i].reason);
        admin_buf_printf(b, ",\"in_flight\":%u,\"pool_idle\":%zu,\"score\":",
                         v[i].in_flight, v[i].pool_idle);
        json_num(b, v[i].score, 3);
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
        stats_history(st, slot, now_us, h[i]);
    }

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
    free(v);
    free(h);
}

/* ---- /metrics ---- */

/* A single-sample metric read from a counter other modules own (an
 * admin_sources pointer; NULL reads 0). */
struct prom_single {
    const char *name, *type, *help;
    size_t src_off; /* offset of the `const uint64_t *` in admin_sources */
};

static const struct prom_single RETRY_SINGLES[] = {
    {"lbproxy_per_try_retries_total", "counter",
     "Retries whose attempt passed its per-try deadline.",
     offsetof(struct admin_sources, per_try_retries)},
    {"lbproxy_hedges_total", "counter",
     "Hedges: second attempts started beside a first one that "
     "passed its per-try deadline (counted in the retries too).",
     offsetof(struct admin_sources, hedges)},
    {"lbproxy_hedge_wins_total", "counter",
     "Hedges whose answer was the one relayed.",
     offsetof(struct admin_sources, hedge_wins)},
    {"lbproxy_retry_budget_refused_total", "counter",
     "Retries the retry budget refused (the failure was answered).",
     offsetof(struct admin_sources, retry_budget_refused)},
    {"lbproxy_queue_length", "gauge",
     "Requests waiting for a backend under max_conns.",
     offsetof(struct admin_sources, queued_now)},
};

static const struct prom_single DOOR_SINGLES[] = {
    {"lbproxy_proxy_protocol_accepted_total", "counter",
     "Connections whose PROXY protocol header was accepted.",
     offsetof(struct admin_sources, proxy_accepted)},
    {"lbproxy_proxy_protocol_refused_total", "counter",
     "Connections closed for a missing, invalid or slow PROXY "
     "protocol header.",
     offsetof(struct admin_sources, proxy_refused)},
    {"lbproxy_tunnels_open", "gauge",
     "WebSocket/Upgrade tunnels open now (sessions after a 101).",
     offsetof(struct admin_sources, tunnels_open)},
    {"lbproxy_tunnels_total", "counter",
     "WebSocket/Upgrade tunnels opened since start.",
     offsetof(struct admin_sources, tunnels_total)},
};

static void prom_label(struct admin_buf *b, const char *s)
{
    admin_buf_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            admin_buf_add(b, "\\", 1);
        if (*s == '\n') {
            admin_buf_add(b, "\\n", 2);
            continue;
        }
        admin_buf_add(b, s, 1);
    }
    admin_buf_add(b, "\"", 1);
}

static void prom_float(struct admin_buf *b, double v)
{
    if (isnan(v))
        admin_buf_str(b, "NaN");
    else if (isinf(v))
        admin_buf_str(b, v > 0 ? "+Inf" : "-Inf");
    else
        admin_buf_printf(b, "%.9g", v);
}

static void prom_head(struct admin_buf *b, const char *name, const char *type,
                      const char *help)
{
    admin_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Counters and histogram of one label value: a backend, or "none" for the
 * requests lbproxy answered itself (total minus every backend). */
/* A metric with one unlabelled sample. */
static void prom_one(struct admin_buf *b, const char *name, const char *type,
                     const char *help, uint64_t v)
{
    prom_head(b, name, type, help);
    admin_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void prom_singles(struct admin_buf *b, const struct admin_sources *src,
                         const struct prom_single *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint64_t *const *p =
            (const void *)((const char *)src + t[i].src_off);
        prom_one(b, t[i].name, t[i].type, t[i].help, counter(*p));
    }
}

/* The TLS handshake metrics; nothing without a TLS listener. */
static void prom_tls(struct admin_buf *b, const struct tls_counters *t)
{
    if (!t)
        return;
    prom_head(b, "lbproxy_tls_handshakes_total", "counter",
              "Finished TLS handshakes, full or resumed.");
    admin_buf_printf(b,
                     "lbproxy_tls_handshakes_total{kind=\"full\"} %llu\n"
                     "lbproxy_tls_handshakes_total{kind=\"resumed\"} %llu\n",
                     (unsigned long long)(t->handshakes - t->resumed),
                     (unsigned long long)t->resumed);
    prom_head(b, "lbproxy_tls_handshake_failures_total", "counter",
              "TLS handshakes that failed, by reason.");
    for (int i = 0; i < TLS_FAIL_COUNT; i++)
        admin_buf_printf(
            b, "lbproxy_tls_handshake_failures_total{reason=\"%s\"} %llu\n",
            tls_fail_str((enum tls_fail)i), (unsigned long long)t->failed[i]);
    prom_head(b, "lbproxy_tls_handshake_seconds_total", "counter",
              "Time the finished TLS handshakes took, summed.");
    admin_buf_str(b, "lbproxy_tls_handshake_seconds_total ");
    prom_float(b, (double)t->handshake_us / 1e6);
    admin_buf_str(b, "\n");
    prom_one(b, "lbproxy_tls_handshakes_in_progress", "gauge",
             "TLS handshakes under way.", t->in_progress);
}

struct pseries {
    const char *label;
    struct stats_counters c;
    uint64_t le[STATS_LE_COUNT], count, sum_us;
};

static void sub_series(struct pseries *none, const struct pseries *be)
{
    none->c.requests -= be->c.requests;
    none->c.errors -= be->c.errors;
    for (int k = 0; k < STATS_ERR_COUNT; k++)
        none->c.err[k] -= be->c.err[k];
    none->c.bytes_in -= be->c.bytes_in;
    none->c.bytes_out -= be->c.bytes_out;
    for (int k = 0; k < STATS_LE_COUNT; k++)
        none->le[k] -= be->le[k];
    none->count -= be->count;
    none->sum_us -= be->sum_us;
}

void admin_render_metrics(struct admin_buf *b, const struct admin_sources *src,
                          uint64_t now_us)
{
    struct stats *st = src->stats;
    size_t n = backend_count(src);
    struct bview *v = calloc(n ? n : 1, sizeof(*v));
    struct pseries *ps = calloc(n + 1, sizeof(*ps));
    if (!v || !ps) {
        b->oom = true;
        goto out;
    }
    n = backend_views(src, now_us, v);
    for (size_t i = 0; i < n; i++) {
        ps[i].label = v[i].id;
        stats_counters(st, v[i].slot, &ps[i].c);
        stats_duration(st, v[i].slot, ps[i].le, &ps[i].count, &ps[i].sum_us);
    }
    struct pseries *none = &ps[n];
    none->label = "none";
    if (st) {
        stats_counters(st, STATS_TOTAL, &none->c);
        stats_duration(st, STATS_TOTAL, none->le, &none->count, &none->sum_us);
    }
    for (size_t i = 0; i < n; i++)
        sub_series(none, &ps[i]);

    prom_head(b, "lbproxy_info", "gauge",
              "Version, balancing mode and connection model.");
    admin_buf_str(b, "lbproxy_info{version=");
    prom_label(b, LBPROXY_VERSION);
    admin_buf_str(b, ",mode=");
    prom_label(b, mode_of(src));
    admin_buf_str(b, ",conn_model=");
    prom_label(b, src->config && src->config->persistent ? "persistent"
                                                         : "non_persistent");
    admin_buf_str(b, "} 1\n");
    prom_head(b, "lbproxy_uptime_seconds", "gauge",
              "Seconds since the stats were created.");
    admin_buf_str(b, "lbproxy_uptime_seconds ");
    prom_float(b, st ? (double)(now_us - stats_start_us(st)) / 1e6 : 0);
    admin_buf_str(b, "\n");

    prom_head(b, "lbproxy_requests_total", "counter",
              "Finished requests by backend (\"none\": answered by lbproxy "
              "without a backend).");
    for (size_t i = 0; i <= n; i++) {
        admin_buf_str(b, "lbproxy_requests_total{backend=");
        prom_label(b, ps[i].label);
        admin_buf_printf(b, "} %llu\n", (unsigned long long)ps[i].c.requests);
    }
    prom_head(b, "lbproxy_retries_total", "counter",
              "Extra attempts on another backend, by what the last one met "
              "(\"failure\": connect, reset or timeout; \"5xx\": a 5xx head).");
    admin_buf_printf(b, "lbproxy_retries_total{reason=\"failure\"} %llu\n",
                     (unsigned long long)(counter(src->retries) -
                                          counter(src->retries_5xx)));
    admin_buf_printf(b, "lbproxy_retries_total{reason=\"5xx\"} %llu\n",
                     (unsigned long long)counter(src->retries_5xx));
    prom_singles(b, src, RETRY_SINGLES,
                 sizeof(RETRY_SINGLES) / sizeof(RETRY_SINGLES[0]));
    prom_head(b, "lbproxy_queue_total", "counter",
              "Requests that waited, by how it ended (\"full\", "
              "\"timeout\": answered 503; \"all\": every one that joined).");
    admin_buf_printf(b,
                     "lbproxy_queue_total{end=\"all\"} %llu\n"
                     "lbproxy_queue_total{end=\"full\"} %llu\n"
                     "lbproxy_queue_total{end=\"timeout\"} %llu\n",
                     (unsigned long long)counter(src->queued_total),
                     (unsigned long long)counter(src->queue_full),
                     (unsigned long long)counter(src->queue_timeouts));
    prom_head(b, "lbproxy_queue_wait_seconds_total", "counter",
              "Time requests spent in the queue, summed.");
    admin_buf_str(b, "lbproxy_queue_wait_seconds_total ");
    prom_float(b, (double)counter(src->queue_wait_us) / 1e6);
    admin_buf_str(b, "\n");
    prom_singles(b, src, DOOR_SINGLES,
                 sizeof(DOOR_SINGLES) / sizeof(DOOR_SINGLES[0]));
    prom_tls(b, src->tls);
    prom_head(b, "lbproxy_errors_total", "counter",
              "Failed requests by backend and kind.");
    for (size_t i = 0; i <= n; i++)
        for (int k = 0; k < STATS_ERR_COUNT; k++) {
            admin_buf_str(b, "lbproxy_errors_total{backend=");
            prom_label(b, ps[i].label);
            admin_buf_printf(b, ",kind=\"%s\"} %llu\n",
                             stats_err_str((enum stats_err)k),
                             (unsigned long long)ps[i].c.err[k]);
        }
    prom_head(b, "lbproxy_bytes_total", "counter",
              "Bytes received from (in) and sent to (out) clients.");
    for (size_t i = 0; i <= n; i++) {
        admin_buf_str(b, "lbproxy_bytes_total{backend=");
        prom_label(b, ps[i].label);
        admin_buf_printf(b, ",direction=\"in\"} %llu\n",
                         (unsigned long long)ps[i].c.bytes_in);
        admin_buf_str(b, "lbproxy_bytes_total{backend=");
        prom_label(b, ps[i].label);
        admin_buf_printf(b, ",direction=\"out\"} %llu\n",
                         (unsigned long long)ps[i].c.bytes_out);
    }

    static const struct {
        const char *name, *help;
    } gauges[] = {
        {"lbproxy_in_flight", "Requests dispatched to the backend and not "
                              "yet finished."},
        {"lbproxy_pool_idle", "Idle pooled connections to the backend."},
        {"lbproxy_backend_up", "1 when the backend takes new requests (not "
                               "ejected, probing or down, not drained or in "
                               "maintenance)."},
        {"lbproxy_backend_score", "The selector's score of the backend "
                                  "(lower is preferred)."},
    };
    for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        prom_head(b, gauges[g].name, "gauge", gauges[g].help);
        for (size_t i = 0; i < n; i++) {
            admin_buf_printf(b, "%s{backend=", gauges[g].name);
            prom_label(b, v[i].id);
            admin_buf_str(b, "} ");
            switch (g) {
            case 0:
                admin_buf_printf(b, "%u", v[i].in_flight);
                break;
            case 1:
                admin_buf_printf(b, "%zu", v[i].pool_idle);
                break;
            case 2:
                admin_buf_str(b, v[i].up ? "1" : "0");
                break;
            default:
                prom_float(b, v[i].score);
                break;
            }
            admin_buf_str(b, "\n");
        }
    }

    prom_head(b, "lbproxy_request_duration_seconds", "histogram",
              "Latency of finished requests: dispatch to last response byte "
              "when a backend was reached, else the whole request.");
    for (size_t i = 0; i <= n; i++) {
        for (int k = 0; k < STATS_LE_COUNT; k++) {
            admin_buf_str(b, "lbproxy_request_duration_seconds_bucket{"
                             "backend=");
            prom_label(b, ps[i].label);
            admin_buf_printf(b, ",le=\"%g\"} %llu\n", stats_le_bounds[k],
                             (unsigned long long)ps[i].le[k]);
        }
        admin_buf_str(b, "lbproxy_request_duration_seconds_bucket{backend=");
        prom_label(b, ps[i].label);
        admin_buf_printf(b, ",le=\"+Inf\"} %llu\n",
                         (unsigned long long)ps[i].count);
        admin_buf_str(b, "lbproxy_request_duration_seconds_sum{backend=");
        prom_label(b, ps[i].label);
        admin_buf_str(b, "} ");
        prom_float(b, (double)ps[i].sum_us / 1e6);
        admin_buf_str(b, "\nlbproxy_request_duration_seconds_count{backend=");
        prom_label(b, ps[i].label);
        admin_buf_printf(b, "} %llu\n", (unsigned long long)ps[i].count);
    }
out:
    free(v);
    free(ps);
}
