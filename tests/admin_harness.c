/*
 * admin_harness: runs the admin listener alone on a loop, with stats fed by
 * synthetic traffic and a real balancer, so tests/e2e/test_admin_server.py
 * can check it over real sockets before (and independently of) the proxy.
 *
 *   admin_harness PORT DASHBOARD_DIR LOGS_DIR
 *
 * Prints "listening PORT" on stdout once it accepts connections; exits
 * cleanly on SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "backendset.h"
#include "balancer.h"
#include "config.h"
#include "loop.h"
#include "record.h"
#include "stats.h"
#include "upstream.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct harness {
    struct stats *stats;
    struct balancer *bal;
    struct config cfg;
    struct loop_timer traffic;
    uint64_t n;
};

static size_t pool_idle(void *ctx, size_t idx)
{
    (void)ctx;
    return idx + 1;
}

/* Every 10 ms: one request per backend through the balancer, latency
 * (backend + 1) ms, backend C answering 1 in 5 with a 500. */
static void on_traffic(struct loop *loop, struct loop_timer *t)
{
    struct harness *h = t->ctx;
    if (stop_requested) {
        loop_stop(loop);
        return;
    }
    uint64_t now = loop_now(loop);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int i = 0; i < 3; i++) {
        unsigned inflight;
        uint64_t tried = ~(uint64_t)0 ^ ((uint64_t)1 << i);
        int b = balancer_pick(h->bal, tried, now, &inflight);
        if (b < 0)
            continue;
        bool fail = b == 2 && h->n++ % 5 == 0;
        struct record r;
        memset(&r, 0, sizeof(r));
        r.wall_us =
            (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
        r.backend = b;
        r.backend_id = h->cfg.backends[b].id;
        r.status = fail ? 500 : 200;
        r.upstream_us = (b + 1) * 1000;
        r.total_us = r.upstream_us + 100;
        r.connect_us = -1;
        r.ttfb_us = r.upstream_us / 2;
        r.req_bytes = 80;
        r.resp_bytes = 1000;
        stats_record(h->stats, &r, now);
        balancer_observe(h->bal, (size_t)b, (uint64_t)r.upstream_us,
                         fail ? BALANCER_HTTP_ERROR : BALANCER_OK, inflight,
                         now);
    }
    /* One request lbproxy answered itself, every 100 ms. */
    if (h->n % 10 == 0) {
        struct record r;
        memset(&r, 0, sizeof(r));
        r.backend = -1;
        r.status = 400;
        r.error = RECORD_BAD_REQUEST;
        r.upstream_us = -1;
        r.total_us = 20;
        stats_record(h->stats, &r, now);
    }
    loop_timer_after(loop, t, 10000);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: admin_harness PORT DASHBOARD_DIR LOGS_DIR\n");
        return 2;
    }
    struct harness h;
    memset(&h, 0, sizeof(h));
    config_defaults(&h.cfg);
    strcpy(h.cfg.mode, "adaptive_ewma");
    h.cfg.persistent = true;
    snprintf(h.cfg.dashboard_dir, sizeof(h.cfg.dashboard_dir), "%s", argv[2]);
    snprintf(h.cfg.logs_dir, sizeof(h.cfg.logs_dir), "%s", argv[3]);
    h.cfg.nbackends = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(h.cfg.backends[i].id, sizeof(h.cfg.backends[i].id), "%c",
                 'A' + i);
        strcpy(h.cfg.backends[i].host, "127.0.0.1");
        snprintf(h.cfg.backends[i].port, sizeof(h.cfg.backends[i].port), "%d",
                 8081 + i);
        h.cfg.backends[i].weight = 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct loop *loop = loop_create();
    h.stats = stats_create(3, loop_now(loop));
    h.bal = balancer_create(h.cfg.mode, NULL, 3, NULL);
    char err[256];
    struct upstream *up =
        loop ? upstream_create(loop, &h.cfg, err, sizeof(err)) : NULL;
    if (!loop || !h.stats || !h.bal || !up)
        return 1;
    /* ids and addresses come from the set's upstream table */
    struct backendset set = {
        .name = "default", .up = up, .bal = h.bal, .stats = h.stats};
    struct admin_sources src = {
        .config = &h.cfg,
        .stats = h.stats,
        .balancer = h.bal,
        .pool_idle = pool_idle,
        .backends = &set,
    };
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[1]);
    struct admin *a = admin_create(loop, addr, &src);
    if (!a)
        return 1;
    h.traffic.fn = on_traffic;
    h.traffic.ctx = &h;
    loop_timer_after(loop, &h.traffic, 10000);
    printf("listening %d\n", admin_port(a));
    fflush(stdout);
    loop_run(loop);
    admin_destroy(a);
    upstream_destroy(up);
    loop_destroy(loop);
    balancer_destroy(h.bal);
    stats_destroy(h.stats);
    return 0;
}
