/*
 * workers: what the master of --workers N and its workers know of each
 * other (docs/workers.md).  The master (master.c) forks the workers of a
 * generation with a struct worker_self each; a worker is the program of a
 * single process (server.c) serving from listeners the master bound, with
 * the generation's shared balancers and stats, and its row of figures in
 * the shared region.
 */
#ifndef LB_WORKERS_H
#define LB_WORKERS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"
#include "tls_client.h"

struct shared_gen;

/* The counters a worker keeps for itself (the session, PROXY-header and
 * TLS modules'), as it last published them to its row, every
 * WORKER_PUBLISH_MS; worker 0's admin shows their sum.  Every field is a
 * uint64_t (summed as such). */
struct worker_counters {
    uint64_t retries, retries_5xx, budget_refused, per_try_retries;
    uint64_t hedges, hedge_wins;
    uint64_t queued_now, queued_total, queue_full, queue_timeouts;
    uint64_t queue_wait_us;
    uint64_t proxy_accepted, proxy_refused;
    uint64_t tunnels_open, tunnels_total;
    struct tls_counters tls;
    struct tls_client_counters upstream_tls;
};
#define WORKER_PUBLISH_MS 100

/* One worker's figures, written by the worker (counts) and the master
 * (pid, restarts), read by the admin of worker 0. */
struct worker_row {
    int pid;              /* 0: not running (being restarted) */
    unsigned restarts;    /* times the master started this index again */
    uint64_t started_us;  /* monotonic, when the master forked it */
    uint64_t requests;    /* finished requests, counted by the worker */
    uint64_t connections; /* client connections open now */
    struct worker_counters c;
};

struct worker_self {
    unsigned index, count; /* this worker, of count */
    unsigned gen;          /* the generation's id (shared_gen.id) */
    int listen_fd;         /* the master's listeners; -1: bind one */
    int tls_listen_fd;     /* (with SO_REUSEPORT) */
    int admin_fd;          /* worker 0's admin listener */
    struct shared_gen *shared;
    /* count + 1 of them, in the shared region: the last holds what the
     * workers that died had counted */
    struct worker_row *rows;
    int ready_fd; /* a byte (the index) written once serving */
};
/* out = the sum of rows[0..n-1]'s counters. */
void workers_sum(const struct worker_row *rows, size_t n,
                 struct worker_counters *out);
/* A worker that died: its counters move into the departed row (gauges
 * such as queued_now drop to 0), its own start from 0 again. */
void workers_depart(struct worker_row *row, struct worker_row *departed);
/* Points the admin's counters (retries, queue, PROXY headers, tunnels,
 * TLS when tls) at c: worker 0 shows every worker's sum. */
struct admin_sources;
void workers_admin_sources(struct admin_sources *a, struct worker_counters *c,
                           bool tls);
/* Copies this worker's own counters (the session module's, the PROXY
 * acceptor's, the TLS acceptor's when tls is not NULL) into its row. */
struct session_ctx;
struct proxyaccept;
void workers_publish(struct worker_row *row, const struct session_ctx *ctx,
                     const struct proxyaccept *pa,
                     const struct tls_counters *tls);
/* Worker i's CSV log: path with ".w<i>" before its extension. */
void workers_log_path(char *path, size_t len, unsigned i);
#endif
