/*
 * admin: the admin HTTP/1.1 listener on the proxy's loop.  Serves the
 * dashboard's static files (and its npm libraries under /vendor/), the stats
 * as JSON (/api/stats) and as a server-sent event stream (/api/stream), the
 * Prometheus exposition (/metrics) and the CSV logs (/logs/).
 *
 * Work per event is bounded (at most one response rendered, file bodies sent
 * in chunks as the socket drains), so the admin side never stalls the proxy.
 * A one-second timer samples every backend's score into the stats and pushes
 * one event to all stream subscribers.
 */
#ifndef LB_ADMIN_H
#define LB_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct config;
struct stats;
struct balancer;
struct admin;
struct tls_counters;
struct tls_client_counters;
struct backendset;

/* How the runtime API (admin_api) reaches the backend sets: the server's
 * pools, each a struct backendset with its name. */
struct admin_control {
    /* The i-th pool (from 0), or NULL past the last. */
    struct backendset *(*pool_at)(void *ctx, size_t i);
    /* The pool of that name, or NULL. */
    struct backendset *(*lookup_pool)(void *ctx, const char *name);
    void *ctx;
};

/* One pool as the admin shows it (pool.h's, seen through plain
 * pointers so that the renderers stay testable without a loop). */
struct admin_pool {
    const char *name;
    /* its backends' ids, addresses, weights and states (NULL: from config,
     * else slot numbers) */
    const struct backendset *set;
    const struct config *config;
    struct stats *stats; /* its per-backend series (and its total) */
    struct balancer *balancer;
    void *pool_ctx; /* for pool_idle */
};

/* What the admin reads.  The admin keeps a pointer to this struct (not a
 * copy), so a caller may swap `balancer` or `pool_ctx` on reload; it and
 * everything it points to must outlive the admin.  config may be NULL,
 * balancer may be NULL (score 0, health "up", in-flight 0), pool_idle may be
 * NULL (0). */
struct worker_row;

struct admin_sources {
    const struct config *config;
    struct stats *stats;
    struct balancer *balancer;
    /* idle pooled connections of backend idx (the upstream module) */
    size_t (*pool_idle)(void *ctx, size_t idx);
    void *pool_ctx;
    /* what the retry budget did (the session module's counters); NULL: 0 */
    const uint64_t *retries, *retries_5xx, *retry_budget_refused,
        *per_try_retries, *hedges, *hedge_wins;
    /* the circuit breaker's queue (the session module's); NULL: 0 */
    const uint64_t *queued_now, *queued_total, *queue_full, *queue_timeouts,
        *queue_wait_us;
    /* PROXY protocol headers accepted and connections refused for want
     * of one (the proxyaccept module's); NULL: 0 */
    const uint64_t *proxy_accepted, *proxy_refused;
    /* WebSocket/Upgrade tunnels open now and ever (the session module's) */
    const uint64_t *tunnels_open, *tunnels_total;
    /* the TLS handshakes (tls.h); NULL: no TLS listener, nothing shown */
    const struct tls_counters *tls;
    /* the TLS handshakes towards backends (tls_client.h); NULL: zeros */
    const struct tls_client_counters *upstream_tls;
    /* The pools: fills out[0..max-1] and returns how many there are.  NULL:
     * one pool, "default", made of config, stats, balancer and pool_ctx
     * above.  With pools, `stats` above is the total over all of them. */
    size_t (*pools)(void *ctx, struct admin_pool *out, size_t max);
    void *pools_ctx;
    /* the backends shown (ids, addresses, weights and states come from
     * its upstream table and balancer); NULL: none shown */
    const struct backendset *backends;
    /* the runtime API: its pools, and its bearer token ("" or NULL: off;
     * the caller's buffer, re-read on reload) */
    const struct admin_control *control;
    const char *token;
    /* the pools' named backends and their DNS answers (pool_dns.h); the
     * pointed-to pointer may be NULL (none) and is swapped on reload */
    struct pool_dns *const *dns;
    /* --workers N: a listener the master bound (instead of binding
     * listen_addr), and the workers' rows (workers.h) shown beside the
     * figures, which the shared region makes global; 0 rows: one process */
    bool has_listen_fd;
    int listen_fd;
    const struct worker_row *workers;
    size_t nworkers;
};

/* Binds listen_addr ("127.0.0.1:5002", "[::1]:5002") and starts serving on
 * loop.  Returns NULL after logging why on failure (errno set). */
struct admin *admin_create(struct loop *loop, const char *listen_addr,
                           const struct admin_sources *src);
/* Stops accepting (a worker that drains leaves the admin listener to its
 * successor); open admin connections are served to their end. */
void admin_stop_accepting(struct admin *a);
/* Closes the listener and every admin connection; call it before
 * loop_destroy().  NULL is a no-op. */
void admin_destroy(struct admin *a);
/* The bound port (useful when listen_addr asked for port 0). */
int admin_port(const struct admin *a);

#endif
