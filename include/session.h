/*
 * session: one client connection and the requests it carries, each walked
 * from the client half (read, parse, check) through the upstream half
 * (pick, connect or reuse, relay) and back, with keep-alive, pipelining,
 * timeouts and one record per finished request.
 */
#ifndef LB_SESSION_H
#define LB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "loop.h"

struct config;
struct upstream;
struct balancer;
struct record;
struct session;
struct request;
struct transport;
struct pool_set;
struct pool;

/* What all sessions share; owned by the server module. */
struct session_ctx {
    struct loop *loop;
    const struct config *cfg;
    struct pool_set *gen; /* current pools (pool.h) */
    /* Called once per finished request (CSV log, stats); may be NULL. */
    void (*on_record)(void *arg, const struct record *r);
    /* Called for an attempt that failed and was retried on another
     * backend (err is a enum record_error; RECORD_OK with the status of
     * a 5xx retried elsewhere); may be NULL. */
    void (*on_attempt_failed)(void *arg, const struct pool *pool, int backend,
                              const char *backend_id, int err, int status);
    void *record_arg;
    /* on_record reads the fields only the CSV log writes (method, path,
     * client address, request id, times, TLS; record.h): false leaves
     * them out (NULL, 0, -1) and saves their cost per request */
    bool record_detail;
    /* Called when a client connection closes (accept may resume). */
    void (*on_close)(void *arg);
    void *close_arg;
    bool draining; /* finish current requests, then close */
    size_t nsessions;
    struct session *all; /* every open session */
    struct buf_pool bufs;
    struct request **free_reqs; /* per-request state kept for reuse */
    unsigned nfree_reqs, max_free_reqs;
    /* the retry budget (retry.h) and what it did */
    unsigned active_requests; /* requests dispatched, not finished */
    unsigned active_retries;  /* of those, the ones on an extra attempt */
    uint64_t retries, retries_5xx, budget_refused;
    uint64_t per_try_retries;    /* of the retries, per-try deadlines passed */
    uint64_t hedges, hedge_wins; /* hedges started, and those that won */
    /* the circuit breaker's queue of sessions waiting for a backend */
    struct session *q_head, *q_tail;
    uint64_t queued_now, queued_total, queue_full, queue_timeouts;
    uint64_t queue_wait_us; /* summed over the requests that left it */
    uint64_t tunnels_open, tunnels_total; /* sessions after a 101 */
    uint64_t wall_read_us;  /* loop time when the wall clock was read */
    int64_t wall_offset_us; /* wall clock minus loop time then */
};

/* Sets the shared parts up (buffers of buf_size bytes).  Returns 0, or -1
 * (errno ENOMEM). */
int session_ctx_init(struct session_ctx *ctx, size_t buf_size);
/* Frees what session_ctx_init made (at exit, after session_close_all). */
void session_ctx_cleanup(struct session_ctx *ctx);

/* Takes ownership of an accepted, non-blocking socket from client sa (the
 * peer, or the source a PROXY header named) to local (NULL: the socket's
 * own address, asked only when send_proxy needs it).  Returns 0, or -1
 * (the fd is closed) when out of memory or the fd cannot be watched. */
int session_accept(struct session_ctx *ctx, int fd, const struct sockaddr *sa,
                   socklen_t salen, const struct sockaddr *local);
/* The same for a connection on another transport (TLS after its
 * handshake): takes ownership of the fd and of tr_state too (released
 * with tr->release, also when -1 is returned). */
int session_accept_tr(struct session_ctx *ctx, int fd,
                      const struct sockaddr *sa, socklen_t salen,
                      const struct sockaddr *local, const struct transport *tr,
                      void *tr_state);

/* Starts draining: idle connections close now, busy ones after their
 * current response. */
void session_drain_all(struct session_ctx *ctx);
/* Closes every session at once (drain deadline). */
void session_close_all(struct session_ctx *ctx);

#endif
