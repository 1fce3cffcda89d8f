/*
 * session_impl: the session and request structs and the two sides' entry
 * points.  Private to session.c (the life cycle), session_client.c (the
 * client side) and session_upstream.c with session_deadline.c (the
 * upstream side and its deadlines, which calls session_upstream.c).
 *
 * Call graph, one way only: session.c calls the sides (and the tunnel,
 * session_tunnel.c, which relays bytes once a 101 made the session one);
 * the sides and the tunnel call the
 * half, buf, http, upstream and balancer modules and the inline helpers
 * below, never session.c and never each other.  A side tells the session
 * what must happen next by returning an enum step; only session.c changes
 * the session's state (session_set_state).
 */
#ifndef LB_SESSION_IMPL_H
#define LB_SESSION_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer.h"
#include "config.h"
#include "half.h"
#include "http.h"
#include "loop.h"
#include "pool.h"
#include "record.h"
#include "reqid.h"
#include "session.h"
#include "upstream.h"

#define container_of(ptr, type, member)                                        \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Room kept free in an output buffer beyond the bytes fed to a parser, for
 * chunk framing that re-chunking may add. */
#define FRAMING_SLACK 32

enum session_state {
    SS_IDLE,    /* keep-alive: waiting for the first byte of a request */
    SS_HEAD,    /* reading a request head */
    SS_CONNECT, /* request checked, upstream connect in progress */
    SS_QUEUED,  /* every eligible backend is at max_conns: waiting in line */
    SS_RELAY,   /* request forwarded; body and response streaming */
    SS_REPLY,   /* sending an answer of our own (error), then on or close */
    SS_TUNNEL,  /* after a 101: bytes relayed both ways until both end */
    SS_CLOSED,
};

/* What a side asks the session to do next. */
enum step {
    STEP_WAIT,    /* nothing more without I/O */
    STEP_MOVED,   /* progress: run the machine again */
    STEP_HEAD,    /* client: a request head is checked: dispatch it */
    STEP_CONNECT, /* upstream: a connect is in progress */
    STEP_RELAY,   /* upstream: the request is on its way */
    STEP_TUNNEL,  /* upstream: a 101 head is queued: become a tunnel */
    STEP_QUEUE,   /* upstream: every eligible backend is full: wait */
    STEP_REPLY,   /* answer req->fail_status ourselves */
    STEP_CLOSE,   /* close the session (req->error says why) */
};

/* A second attempt at another backend, running beside the first (see
 * session_attempt.c); live while request.hedging. */
struct hedge {
    struct half half; /* its own socket watch, deadline and buffers */
    struct upstream_conn *uc;
    int backend;
    unsigned inflight_at_dispatch;
    uint64_t t_dispatch, t_connect, t_first_byte;
    int64_t connect_us;
    bool in_flight, reused, connecting;
};

/* What a hedge's socket event came to. */
enum hedge_event {
    HEDGE_WAIT,   /* nothing decided */
    HEDGE_WON,    /* a whole response head arrived first */
    HEDGE_FAILED, /* it failed and was ended; the first attempt goes on */
};

/* State that only a request in progress needs; borrowed when its first
 * byte arrives, given back when it finished.  The scalars up to `parser`
 * start at zero for each request; the parsers, heads and check results
 * after them are set up by their owners. */
struct request {
    struct session *s;
    /* client side */
    uint32_t parse_off;  /* head bytes parsed so far, from client.in.data */
    bool body_too_big;   /* a chunk size took the body over max_body_bytes */
    bool body_started;   /* body parsing begun (zero-length execute done) */
    uint64_t body_total; /* chunked: sum of the chunk sizes announced */

    /* upstream side */
    struct pool_set *gen; /* the pools when the request was routed */
    struct pool *pool;    /* the one chosen (NULL: not routed yet) */
    uint32_t rparse_off;  /* response head bytes parsed, from upstream.in */
    uint64_t body_left;   /* Content-Length body bytes not relayed yet */
    int backend;
    uint64_t tried;
    unsigned retries, inflight_at_dispatch, ninterim;
    bool in_flight;    /* counted by the balancer */
    bool keyed;        /* the policy picks by key: hash_key is set */
    uint64_t hash_key; /* hashkey_of the request, when keyed */
    bool reused, fresh_retry_done;
    bool ub_discarded;   /* request bytes left `out`: no resend possible */
    bool timed_out;      /* the last upstream attempt ended in a timeout */
    bool tls_failed;     /* ... in a failed TLS handshake */
    bool rhead_ready;    /* a response head is parsed, not yet relayed */
    bool resp_head_sent; /* the final head was queued for the client */
    bool upstream_extra; /* bytes after the response were read */
    bool body_dropped;   /* the backend answered early and stopped reading:
                            the rest of the request body goes nowhere */
    bool dispatched;     /* uside_dispatch has seen it */
    bool active;         /* counted in ctx->active_requests */
    uint64_t t_queued;   /* when it joined the queue (0: never) */
    bool retrying;       /* counted in ctx->active_retries */
    bool hedging;        /* a hedge runs (struct hedge below is live) */
    bool hedged;         /* a hedge was started for the request */
    bool hedge_won;      /* ... and its answer is the one relayed */
    uint64_t t_tunnel;   /* when the 101 made it a tunnel (0: never) */
    bool shut_client;    /* tunnel: the client's sending direction ended */
    bool shut_upstream;  /* tunnel: the backend's sending direction ended */

    /* what the session does on STEP_REPLY / STEP_CLOSE */
    int fail_status;

    /* the record */
    uint64_t t_start, wall_start, t_dispatch, t_connect, t_first_byte;
    int64_t connect_us;
    uint64_t req_bytes, resp_bytes0; /* client bytes_out at the start */
    int status;
    enum record_error error;
    int method;
    uint8_t method_len;
    uint16_t path_len;
    char method_name[24];

    /* set up by cside_begin, http_request_check, start_response and
     * http_response_check */
    llhttp_t parser;
    struct http_head head;
    struct http_request hreq;
    llhttp_t rparser;
    struct http_head rhead;
    struct http_response resp;
    struct hedge hedge;
    char path[512];
    uint8_t request_id_len;         /* 0: none (request_id off, or the
                                       head never completed) */
    char request_id[REQID_MAX + 1]; /* X-Request-Id (reqid.h) */

    struct http_header headers[]; /* request, then response */
};

struct session {
    struct loop_io cio; /* the client socket */
    struct half client, upstream;
    struct session_ctx *ctx;
    struct session *prev, *next;
    struct request *req;             /* NULL between requests */
    struct session *q_prev, *q_next; /* the backend queue, while SS_QUEUED */
    struct upstream_conn *uc; /* the upstream connection of the attempt */
    enum session_state state;
    bool keep_alive; /* the client connection may persist */
    bool want_close; /* close after the current response */
    uint8_t pp_len;  /* bytes at pp_out */
    uint8_t ip_len;  /* strlen(ip) */
    uint8_t *pp_out; /* send_proxy: the PROXY header each new upstream
                        connection of this client starts with, or NULL */
    char addr[64];
    char ip[48];
};

static inline const struct config *cfg_of(const struct session *s)
{
    return s->ctx->cfg;
}

/* The configuration of the request's pool: what [pool.NAME] sets (mode,
 * persistent, retries, upstream timeouts, ...), the global values else. */
static inline const struct config *pcfg(const struct request *r)
{
    return &r->pool->cfg;
}

static inline uint64_t now_us(const struct session *s)
{
    return loop_now(s->ctx->loop);
}

static inline struct buf_pool *pool_of(struct session *s)
{
    return &s->ctx->bufs;
}

/* The half's socket watch and transport become those of uc (NULL: none;
 * plain TCP until the next one). */
static inline void half_use_conn(struct half *h, struct upstream_conn *uc)
{
    h->io = uc ? &uc->io : NULL;
    h->tr = uc ? uc->tr : &transport_tcp;
    h->tr_state = uc ? uc->tr_state : NULL;
}

/* A side's way to ask for an answer of our own. */
static inline enum step step_reply(struct request *r, int status,
                                   enum record_error err)
{
    r->fail_status = status;
    r->error = err;
    return STEP_REPLY;
}

/* A side's way to ask for the session to close. */
static inline enum step step_close(struct request *r, enum record_error err)
{
    if (r->error == RECORD_OK)
        r->error = err;
    return STEP_CLOSE;
}

/* Bytes of this request's answer written to the client so far. */
static inline uint64_t resp_bytes(const struct session *s)
{
    return s->client.bytes_out - s->req->resp_bytes0;
}

/* ---- session_record.c: per-request state and the record ---- */

/* Borrows the state of a request whose first byte arrived (NULL when out
 * of memory); request_put gives it back. */
struct request *request_get(struct session *s);
void request_put(struct session *s);
/* Hands the record of the current request to ctx->on_record. */
void record_emit(struct session *s);

/* ---- session_client.c: the client side ---- */

/* Sets the request parser callbacks up (once). */
void cside_init(void);
/* Starts a request (the first byte arrived): resets the parser. */
void cside_begin(struct session *s);
/* Parses request head bytes: STEP_WAIT (more needed), STEP_HEAD (checked,
 * the upstream head built in upstream.out), STEP_REPLY (refused). */
enum step cside_head(struct session *s);
/* Moves request body bytes from client.in to upstream.out as room allows:
 * STEP_MOVED, STEP_WAIT or STEP_REPLY (400/413). */
enum step cside_body(struct session *s);
/* True when the request was read whole. */
bool cside_complete(const struct session *s);

/* ---- session_attempt.c: attempts, the budget, the hedge ---- */

/* The balancer hears how the current attempt ended (a latency sample). */
void attempt_observe(struct session *s, enum balancer_outcome outcome);
/* Releases the current attempt's pick without a sample. */
void attempt_cancel(struct session *s);
/* Picks a backend not tried yet and not at max_conns for the current
 * attempt: 1 picked, 0 none left, -1 only full ones left (may wait). */
int attempt_pick(struct session *s);
/* Whether a backend other than those tried, the current and the hedge's
 * is left (a pick that is given back at once). */
bool attempt_another_backend(struct session *s);
/* Whether attempt_may_retry would say yes, without taking a place. */
bool attempt_retry_possible(const struct session *s);
/* Whether an extra attempt may start now: within max_retries, with the
 * request still held whole, and within the retry budget (a request that
 * is already on an extra attempt keeps its place); counts it. */
bool attempt_may_retry(struct session *s);
/* The end of a request for the retry budget. */
void attempt_leave_budget(struct session *s);
/* The current attempt failed and the request goes on elsewhere: the stats
 * hear of it, the backend counts as tried; _retried also counts the
 * extra attempt. */
void attempt_note_failed(struct session *s, enum record_error err);
void attempt_note_retried(struct session *s, enum record_error err);
/* The per-try deadline of the current attempt in ms (0: none): an
 * idempotent request that holds its whole request, when timeouts may be
 * retried, waits on its first response byte at most per_try_factor times
 * the backend's latency tail, within [per_try_min_ms, per_try_max_ms]
 * (the ceiling before the backend's first sample). */
unsigned attempt_per_try_ms(struct session *s);

/* The handlers hedge connections and deadlines get (once). */
void hedge_init(loop_io_fn *io_fn, loop_timer_fn *timer_fn);
/* Starts a hedge: the request's bytes (upstream.out, held whole) go to
 * another backend on a pooled or new connection.  The caller took the
 * place in the retry budget.  False when no backend or connection. */
bool hedge_start(struct session *s);
/* The hedge's socket had events: connect, send, read. */
enum hedge_event hedge_io(struct session *s, unsigned events);
/* The hedge's timer fired: true when its deadline passed and it failed
 * (the first attempt goes on). */
bool hedge_timeout(struct session *s);
/* Ends a running hedge without a sample (the first attempt answered, or
 * the request ended); its connection is closed, never pooled.  Callers
 * use hedge_end_if, which costs a test when no hedge runs. */
void hedge_cancel(struct session *s);
static inline void hedge_end_if(struct session *s)
{
    if (s->req && s->req->hedging)
        hedge_cancel(s);
}
/* The hedge becomes the request's attempt: its connection, the bytes it
 * read, its backend and deadline move to the upstream half (the caller
 * ended the first attempt).  True when its connect is still under way. */
bool hedge_hand_over(struct session *s);

/* ---- session_upstream.c: the upstream side ---- */

/* Sets the response parser callbacks up (once); on_io is the handler of
 * upstream socket events that attached connections get, on_hedge_io and
 * on_hedge_timer those of hedges. */
void uside_init(loop_io_fn *on_io, loop_io_fn *on_hedge_io,
                loop_timer_fn *on_hedge_timer);
/* Picks a backend not tried yet and starts sending: STEP_CONNECT,
 * STEP_RELAY or STEP_REPLY (502/504). */
enum step uside_dispatch(struct session *s);
/* The upstream socket had events: finishes a connect, reads. */
enum step uside_io(struct session *s, unsigned events, bool connecting);
/* Writes request bytes upstream. */
enum step uside_flush(struct session *s);
/* Moves response bytes from upstream.in to client.out as room allows. */
enum step uside_response(struct session *s);
/* True when the response was read whole. */
bool uside_complete(const struct session *s);
/* True once part of the final response was queued for the client. */
bool uside_responding(const struct session *s);
/* Ends a finished exchange: tells the balancer, then pools or closes the
 * connection (the pool-return rule). */
void uside_done(struct session *s);
/* Ends the exchange early (an answer of our own, or a close): the balancer
 * hears `err` for a request in flight, the connection is closed. */
void uside_abort(struct session *s, enum record_error err);
/* The response says the client connection must close afterwards. */
bool uside_closes_client(const struct session *s);
/* For session_deadline.c: closes the attempt's connection (an RST with
 * reset) and its deadline; the attempt failed before any response byte
 * reached the client (retry on a fresh connection or another backend, or
 * answer 502/504); the hedge becomes the attempt (the first one ended). */
void uside_drop(struct session *s, bool reset);
enum step uside_failed(struct session *s, enum balancer_outcome outcome);
enum step uside_take_hedge(struct session *s);

/* ---- session_deadline.c: the upstream side's deadlines ---- */

/* The upstream deadline passed. */
enum step uside_timeout(struct session *s, bool connecting);
/* A hedge's socket had events / its deadline passed. */
enum step uside_hedge_io(struct session *s, unsigned events);
enum step uside_hedge_timeout(struct session *s);

/* ---- session_tunnel.c: the tunnel after a 101 ---- */

/* The session just became a tunnel (SS_TUNNEL): the 101 head is queued in
 * client.out, bytes after it wait in upstream.in, client bytes after the
 * request in client.in.  Arms the idle deadline. */
void tunnel_begin(struct session *s);
/* Moves bytes both ways as the peers' buffers allow, flushes them and
 * forwards a half-close once a side's bytes are all out: STEP_MOVED,
 * STEP_WAIT, or STEP_CLOSE when both directions ended (req->error
 * RECORD_OK) or a side failed. */
enum step tunnel_relay(struct session *s);
/* The upstream socket had events: reads what the backend sent. */
enum step tunnel_io(struct session *s, unsigned events);
/* A tunnel's half is woken for reading: when it asked for no read (end of
 * stream seen, or `in` full), only a hang-up or a socket error does that,
 * and level-triggered epoll would report it for ever, so the side is taken
 * as failed (h->error). */
void tunnel_woken(struct half *h, const struct buf_pool *pool);
/* The tunnel ends (any reason): its counters. */
void tunnel_end(struct session *s);

#endif
