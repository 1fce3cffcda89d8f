/*
 * client_impl: what the two halves of a session share - the session
 * struct, its states and the functions one half calls in the other.
 * Private to client.c and client_upstream.c.
 */
#ifndef LB_CLIENT_IMPL_H
#define LB_CLIENT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "balancer.h"
#include "client.h"
#include "config.h"
#include "http.h"
#include "loop.h"
#include "record.h"
#include "upstream.h"

#define container_of(ptr, type, member)                                        \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Room kept free in an output buffer beyond the bytes fed to a parser, for
 * chunk framing that re-chunking may add. */
#define FRAMING_SLACK 32

enum client_state {
    CS_IDLE,    /* keep-alive: waiting for the first byte of a request */
    CS_HEAD,    /* reading a request head */
    CS_CONNECT, /* request checked, upstream connect in progress */
    CS_RELAY,   /* request forwarded; body and response streaming */
    CS_REPLY,   /* sending an answer of our own (error), then on or close */
    CS_CLOSED,
};

enum client_timer_kind {
    CT_NONE,
    CT_KEEPALIVE,
    CT_HEADER,
    CT_BODY,
    CT_WRITE,
};

struct client {
    struct loop_io io;
    struct loop_timer timer;  /* client-side deadline */
    struct loop_timer utimer; /* upstream deadline (connect / response) */
    struct client_ctx *ctx;
    struct client *prev, *next;
    enum client_state state;
    enum client_timer_kind timer_kind;
    char addr[64];
    char ip[48];

    /* client side */
    llhttp_t parser;
    struct http_head head;
    struct http_request req;
    char *in;
    size_t in_len, in_off;
    bool body_started;   /* body parsing begun (zero-length execute done) */
    bool body_too_big;   /* a chunk size took the body over max_body_bytes */
    uint64_t body_total; /* chunked: sum of the chunk sizes announced */
    bool req_complete;
    bool client_eof;
    bool keep_alive;
    bool want_close;
    char *cb;
    size_t cb_len, cb_off;

    /* upstream side */
    struct client_gen *gen;
    struct uconn *uc;
    int backend;
    bool in_flight; /* counted by the balancer */
    uint64_t tried;
    unsigned retries;
    unsigned inflight_at_dispatch;
    bool reused, fresh_retry_done, ub_discarded;
    bool timed_out; /* the last upstream attempt ended in a timeout */
    char *ub;
    size_t ub_len, ub_off;
    char *rb;
    size_t rb_len, rb_off;
    llhttp_t rparser;
    struct http_head rhead;
    struct http_response resp;
    bool resp_started, resp_head_done, resp_head_sent, resp_complete;
    bool rhead_ready;    /* a response head is parsed, not yet relayed */
    bool upstream_extra; /* bytes after the response were read */
    bool rb_filled;      /* the last read filled `rb`: more may wait */
    unsigned ninterim;   /* 1xx heads seen in this attempt */

    /* the record */
    uint64_t t_start, wall_start, t_dispatch, t_connect, t_first_byte;
    int64_t connect_us;
    uint64_t req_bytes, resp_bytes;
    int status;
    enum record_error error;
    int method;
    char method_name[24];
    char path[512];
    size_t path_len;

    unsigned max_headers;
    struct http_header headers[]; /* request, then response */
};

static inline const struct config *cfg_of(const struct client *c)
{
    return c->ctx->cfg;
}

static inline uint64_t now_us(const struct client *c)
{
    return loop_now(c->ctx->loop);
}

static inline void cb_append(struct client *c, const char *p, size_t n)
{
    /* callers guarantee room (FRAMING_SLACK and fed-length rule) */
    memcpy(c->cb + c->cb_len, p, n);
    c->cb_len += n;
}

static inline void ub_append(struct client *c, const char *p, size_t n)
{
    memcpy(c->ub + c->ub_len, p, n);
    c->ub_len += n;
}

/* ---- client.c: the client half and the session ---- */

/* Runs the state machine until nothing more can happen without I/O. */
void client_progress(struct client *c);
/* Tears a session down (writes its record if a request was under way). */
void client_close(struct client *c, enum record_error err);
/* Queues an answer of our own for the current request. */
void client_reply_error(struct client *c, int status, enum record_error err);
/* Writes pending bytes to the client; false if the session closed. */
bool client_flush(struct client *c);
/* Moves request body bytes from `in` to `ub`; true on progress. */
bool client_pump_request(struct client *c);
/* Tells the balancer how the request went on the current backend. */
void client_observe(struct client *c, enum balancer_outcome outcome);
/* Releases a pick that never produced a sample. */
void client_cancel_pick(struct client *c);
/* Closes the upstream connection of the session (RST with reset). */
void client_drop_upstream(struct client *c, bool reset);

/* ---- client_upstream.c: the upstream half ---- */

/* Sets up the response parser callbacks (once). */
void client_upstream_init(void);
/* Picks a backend not tried yet for this request and starts sending. */
void client_dispatch(struct client *c);
/* Takes a pooled connection (unless fresh) or connects. */
void client_connect_backend(struct client *c, bool fresh);
/* The current attempt failed before any response byte: retry or answer. */
void client_upstream_failed(struct client *c, enum balancer_outcome outcome);
/* Writes pending request bytes upstream; true on progress. */
bool client_flush_upstream(struct client *c);
/* Moves response bytes from `rb` to `cb`; true on progress. */
bool client_pump_response(struct client *c);
/* Reads from the upstream connection into `rb`. */
void client_read_upstream(struct client *c);
void client_arm_upstream_timer(struct client *c, unsigned ms);
void client_on_upstream_timeout(struct loop *loop, struct loop_timer *t);
void client_on_upstream_io(struct loop *loop, struct loop_io *io,
                           unsigned events);
/* Ends the upstream side of a finished exchange: pools or closes the
 * connection (the pool-return rule). */
void client_upstream_done(struct client *c);

#endif
