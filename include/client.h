/*
 * client: one client connection and the request it is proxying, walked
 * through every module: read, parse, check, pick, connect or reuse, relay
 * both ways with backpressure, keep-alive, pipelining, timeouts, and one
 * record per finished request.
 */
#ifndef LB_CLIENT_H
#define LB_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop.h"

struct config;
struct upstream;
struct balancer;
struct record;
struct client;

/* One generation of backends: replaced on reload, freed when the last
 * session that uses it finishes. */
struct client_gen {
    struct upstream *up;
    struct balancer *bal;
    unsigned refs; /* sessions holding it, +1 while current */
};

/* What all sessions share; owned by the server module. */
struct client_ctx {
    struct loop *loop;
    const struct config *cfg;
    struct client_gen *gen; /* current backends */
    /* Called once per finished request (CSV log, stats); may be NULL. */
    void (*on_record)(void *arg, const struct record *r);
    /* Called for an attempt that failed and was retried on another
     * backend (err is a enum record_error); may be NULL. */
    void (*on_attempt_failed)(void *arg, int backend, const char *backend_id,
                              int err);
    void *record_arg;
    /* Called when a client connection closes (accept may resume). */
    void (*on_close)(void *arg);
    void *close_arg;
    const char *mode_name;
    bool draining; /* finish current requests, then close */
    size_t nclients;
    struct client *all; /* every open session */
    char **free_bufs;   /* borrowed-buffer free list */
    size_t nfree_bufs, free_cap;
    size_t buf_size;
};

/* Takes ownership of an accepted, non-blocking socket.  Returns 0, or -1
 * (the fd is closed) when out of memory or the fd cannot be watched. */
int client_accept(struct client_ctx *ctx, int fd, const struct sockaddr *sa,
                  socklen_t salen);

/* Starts draining: idle connections close now, busy ones after their
 * current response. */
void client_drain_all(struct client_ctx *ctx);
/* Closes every session at once (drain deadline). */
void client_close_all(struct client_ctx *ctx);
/* Frees the buffer free list (at exit). */
void client_ctx_cleanup(struct client_ctx *ctx);
/* Drops a reference to a generation, freeing it when unused. */
void client_gen_put(struct client_gen *g);

#endif
