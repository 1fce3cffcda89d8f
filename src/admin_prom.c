/*
 * admin_prom: the Prometheus text exposition (format 0.0.4) of
 * admin_render_metrics (include/admin_render.h).  With named pools every
 * backend series carries a pool label beside its backend label.
 */
#include "admin_render.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_view.h"
#include "workers.h"
#include "stats.h"
#include "tls.h"
#include "tls_client.h"

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

struct pseries {
    const char *label;
    const char *pool; /* NULL: no pool label */
    struct stats_counters c;
    uint64_t le[STATS_LE_COUNT], count, sum_us;
};

/* The labels of one series: pool="..", when pools are named, and
 * backend="..". */
static void prom_series(struct admin_buf *b, const struct pseries *s)
{
    if (s->pool) {
        admin_buf_str(b, "pool=");
        prom_label(b, s->pool);
        admin_buf_str(b, ",");
    }
    admin_buf_str(b, "backend=");
    prom_label(b, s->label);
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
        prom_one(b, t[i].name, t[i].type, t[i].help, admin_counter(*p));
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

/* mode = prequal: each probing backend's probes by what became of them
 * (none of it for the other modes). */
static void prom_probes(struct admin_buf *b, const struct bview *v,
                        const struct pseries *ps, size_t n)
{
    static const char *const results[] = {"sent", "failed", "fallback"};
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any = any || v[i].probing;
    if (!any)
        return;
    prom_head(b, "lbproxy_backend_probes_total", "counter",
              "prequal probes of the backend: sent, failed (no answer), "
              "fallback (answered without the probe endpoint).");
    for (size_t i = 0; i < n; i++) {
        const uint64_t c[] = {v[i].probes_sent, v[i].probes_failed,
                              v[i].probes_fallback};
        if (!v[i].probing)
            continue;
        for (size_t k = 0; k < 3; k++) {
            admin_buf_str(b, "lbproxy_backend_probes_total{");
            prom_series(b, &ps[i]);
            admin_buf_printf(b, ",result=\"%s\"} %llu\n", results[k],
                             (unsigned long long)c[k]);
        }
    }
}

/* The TLS handshakes towards backends (zeros without any). */
static void prom_upstream_tls(struct admin_buf *b,
                              const struct tls_client_counters *u)
{
    const struct tls_client_counters z = {0};
    if (!u)
        u = &z;
    prom_head(b, "lbproxy_upstream_tls_handshakes_total", "counter",
              "Finished TLS handshakes towards backends, full or resumed.");
    admin_buf_printf(
        b,
        "lbproxy_upstream_tls_handshakes_total{kind=\"full\"} %llu\n"
        "lbproxy_upstream_tls_handshakes_total{kind=\"resumed\"} %llu\n",
        (unsigned long long)(u->handshakes - u->resumed),
        (unsigned long long)u->resumed);
    prom_head(b, "lbproxy_upstream_tls_failures_total", "counter",
              "TLS handshakes towards backends that failed: the "
              "certificate refused (verify), or any other reason.");
    admin_buf_printf(
        b,
        "lbproxy_upstream_tls_failures_total{reason=\"verify\"} %llu\n"
        "lbproxy_upstream_tls_failures_total{reason=\"other\"} %llu\n",
        (unsigned long long)u->verify_failures,
        (unsigned long long)(u->failures - u->verify_failures));
}

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

/* --workers N: each worker's row, and each backend's in-flight by worker. */
static void prom_workers(struct admin_buf *b, const struct admin_sources *src,
                         const struct bview *v, const struct pseries *ps,
                         size_t n)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"lbproxy_worker_up", "gauge", "1 while the worker process runs."},
        {"lbproxy_worker_requests_total", "counter",
         "Requests finished by the worker of this index (a replacement "
         "goes on from its predecessor's count) since the last reload."},
        {"lbproxy_worker_connections", "gauge",
         "Client connections the worker holds open."},
        {"lbproxy_worker_restarts_total", "counter",
         "Times the master started the worker again after it died."},
    };
    for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
        prom_head(b, m[k].name, m[k].type, m[k].help);
        for (size_t i = 0; i < src->nworkers; i++) {
            const struct worker_row *w = &src->workers[i];
            unsigned long long x = k == 0   ? (w->pid > 0)
                                   : k == 1 ? w->requests
                                   : k == 2 ? w->connections
                                            : w->restarts;
            admin_buf_printf(b, "%s{worker=\"%zu\"} %llu\n", m[k].name, i, x);
        }
    }
    prom_head(b, "lbproxy_worker_in_flight", "gauge",
              "Requests in flight to the backend, by the worker that sent "
              "them (lbproxy_in_flight is their sum).");
    for (size_t i = 0; i < n; i++)
        for (size_t w = 0; w < src->nworkers; w++) {
            admin_buf_str(b, "lbproxy_worker_in_flight{");
            prom_series(b, &ps[i]);
            admin_buf_printf(b, ",worker=\"%zu\"} %u\n", w,
                             v[i].in_flight_w[w]);
        }
}

void admin_render_metrics(struct admin_buf *b, const struct admin_sources *src,
                          uint64_t now_us)
{
    struct stats *st = src->stats;
    struct admin_pool *pl = NULL;
    struct bview *v = NULL;
    bool named = false;
    size_t np = admin_pools(src, &pl);
    size_t n = pl ? admin_views(src, pl, np, now_us, &v, &named) : 0;
    struct pseries *ps = calloc(n + 1, sizeof(*ps));
    if (!pl || !v || !ps) {
        b->oom = true;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ps[i].label = v[i].id;
        ps[i].pool = named ? v[i].pool : NULL;
        stats_counters(v[i].st, v[i].si, &ps[i].c);
        stats_duration(v[i].st, v[i].si, ps[i].le, &ps[i].count, &ps[i].sum_us);
    }
    struct pseries *none = &ps[n];
    none->label = "none";
    none->pool = named ? "" : NULL;
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
    prom_label(b, admin_mode(pl, np));
    admin_buf_str(b, ",conn_model=");
    prom_label(b, admin_persistent(pl, np) ? "persistent" : "non_persistent");
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
        admin_buf_str(b, "lbproxy_requests_total{");
        prom_series(b, &ps[i]);
        admin_buf_printf(b, "} %llu\n", (unsigned long long)ps[i].c.requests);
    }
    prom_head(b, "lbproxy_retries_total", "counter",
              "Extra attempts on another backend, by what the last one met "
              "(\"failure\": connect, reset or timeout; \"5xx\": a 5xx head).");
    admin_buf_printf(b, "lbproxy_retries_total{reason=\"failure\"} %llu\n",
                     (unsigned long long)(admin_counter(src->retries) -
                                          admin_counter(src->retries_5xx)));
    admin_buf_printf(b, "lbproxy_retries_total{reason=\"5xx\"} %llu\n",
                     (unsigned long long)admin_counter(src->retries_5xx));
    prom_singles(b, src, RETRY_SINGLES,
                 sizeof(RETRY_SINGLES) / sizeof(RETRY_SINGLES[0]));
    prom_head(b, "lbproxy_queue_total", "counter",
              "Requests that waited, by how it ended (\"full\", "
              "\"timeout\": answered 503; \"all\": every one that joined).");
    admin_buf_printf(b,
                     "lbproxy_queue_total{end=\"all\"} %llu\n"
                     "lbproxy_queue_total{end=\"full\"} %llu\n"
                     "lbproxy_queue_total{end=\"timeout\"} %llu\n",
                     (unsigned long long)admin_counter(src->queued_total),
                     (unsigned long long)admin_counter(src->queue_full),
                     (unsigned long long)admin_counter(src->queue_timeouts));
    prom_head(b, "lbproxy_queue_wait_seconds_total", "counter",
              "Time requests spent in the queue, summed.");
    admin_buf_str(b, "lbproxy_queue_wait_seconds_total ");
    prom_float(b, (double)admin_counter(src->queue_wait_us) / 1e6);
    admin_buf_str(b, "\n");
    prom_singles(b, src, DOOR_SINGLES,
                 sizeof(DOOR_SINGLES) / sizeof(DOOR_SINGLES[0]));
    prom_tls(b, src->tls);
    prom_upstream_tls(b, src->upstream_tls);
    prom_head(b, "lbproxy_errors_total", "counter",
              "Failed requests by backend and kind.");
    for (size_t i = 0; i <= n; i++)
        for (int k = 0; k < STATS_ERR_COUNT; k++) {
            admin_buf_str(b, "lbproxy_errors_total{");
            prom_series(b, &ps[i]);
            admin_buf_printf(b, ",kind=\"%s\"} %llu\n",
                             stats_err_str((enum stats_err)k),
                             (unsigned long long)ps[i].c.err[k]);
        }
    prom_head(b, "lbproxy_bytes_total", "counter",
              "Bytes received from (in) and sent to (out) clients.");
    for (size_t i = 0; i <= n; i++) {
        admin_buf_str(b, "lbproxy_bytes_total{");
        prom_series(b, &ps[i]);
        admin_buf_printf(b, ",direction=\"in\"} %llu\n",
                         (unsigned long long)ps[i].c.bytes_in);
        admin_buf_str(b, "lbproxy_bytes_total{");
        prom_series(b, &ps[i]);
        admin_buf_printf(b, ",direction=\"out\"} %llu\n",
                         (unsigned long long)ps[i].c.bytes_out);
    }

    static const struct {
        const char *name, *help;
    } gauges[] = {
        {"lbproxy_in_flight", "Requests dispatched to the backend and not "
                              "yet finished."},
        {"lbproxy_pool_idle", "Idle pooled connections to the backend."},
        {"lbproxy_backend_up", "1 when the backend is up (not ejected, "
                               "probing or down)."},
        {"lbproxy_backend_score", "The selector's score of the backend "
                                  "(lower is preferred)."},
    };
    for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        prom_head(b, gauges[g].name, "gauge", gauges[g].help);
        for (size_t i = 0; i < n; i++) {
            admin_buf_printf(b, "%s{", gauges[g].name);
            prom_series(b, &ps[i]);
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

    prom_probes(b, v, ps, n);

    prom_head(b, "lbproxy_request_duration_seconds", "histogram",
              "Latency of finished requests: dispatch to last response byte "
              "when a backend was reached, else the whole request.");
    for (size_t i = 0; i <= n; i++) {
        for (int k = 0; k < STATS_LE_COUNT; k++) {
            admin_buf_str(b, "lbproxy_request_duration_seconds_bucket{");
            prom_series(b, &ps[i]);
            admin_buf_printf(b, ",le=\"%g\"} %llu\n", stats_le_bounds[k],
                             (unsigned long long)ps[i].le[k]);
        }
        admin_buf_str(b, "lbproxy_request_duration_seconds_bucket{");
        prom_series(b, &ps[i]);
        admin_buf_printf(b, ",le=\"+Inf\"} %llu\n",
                         (unsigned long long)ps[i].count);
        admin_buf_str(b, "lbproxy_request_duration_seconds_sum{");
        prom_series(b, &ps[i]);
        admin_buf_str(b, "} ");
        prom_float(b, (double)ps[i].sum_us / 1e6);
        admin_buf_str(b, "\nlbproxy_request_duration_seconds_count{");
        prom_series(b, &ps[i]);
        admin_buf_printf(b, "} %llu\n", (unsigned long long)ps[i].count);
    }
    if (src->nworkers)
        prom_workers(b, src, v, ps, n);
out:
    free(pl);
    free(v);
    free(ps);
}
