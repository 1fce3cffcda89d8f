/*
 * session: the life cycle of one client connection - accept, the named
 * states and the one function that changes them, the drive loop that runs
 * the client side (session_client.c) and the upstream side
 * (session_upstream.c) until nothing can happen without I/O, the answers
 * of our own, the record of each request, and close.
 *
 * Memory: an idle keep-alive connection holds only its struct session;
 * the per-request state (parsers, header spans, the record) is borrowed
 * when a request's first byte arrives, and each half's buffers only while
 * they hold bytes.
 */
#include "session_impl.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "proxyproto.h"

#define DRIVE_ROUNDS 64

static const char *session_state_str(enum session_state st)
{
    switch (st) {
    case SS_IDLE:
        return "idle";
    case SS_HEAD:
        return "head";
    case SS_CONNECT:
        return "connect";
    case SS_QUEUED:
        return "queued";
    case SS_RELAY:
        return "relay";
    case SS_REPLY:
        return "reply";
    case SS_TUNNEL:
        return "tunnel";
    case SS_CLOSED:
        return "closed";
    }
    return "?";
}

/* The legal transitions: from each state, the states it may go to. */
__attribute__((unused)) static bool legal(enum session_state from,
                                          enum session_state to)
{
    if (to == SS_CLOSED)
        return from != SS_CLOSED;
    switch (from) {
    case SS_IDLE:
        return to == SS_HEAD;
    case SS_HEAD:
        return to == SS_CONNECT || to == SS_RELAY || to == SS_REPLY ||
               to == SS_QUEUED;
    case SS_QUEUED:
        return to == SS_CONNECT || to == SS_RELAY || to == SS_REPLY;
    case SS_CONNECT:
        return to == SS_CONNECT || to == SS_RELAY || to == SS_REPLY ||
               to == SS_IDLE || to == SS_QUEUED;
    case SS_RELAY:
        return to == SS_CONNECT || to == SS_RELAY || to == SS_REPLY ||
               to == SS_IDLE || to == SS_QUEUED || to == SS_TUNNEL;
    case SS_REPLY:
        return to == SS_IDLE;
    case SS_TUNNEL:
        return false; /* a tunnel only closes */
    case SS_CLOSED:
        return false;
    }
    return false;
}

/* The one place a session's state changes. */
static void session_set_state(struct session *s, enum session_state to)
{
    if (s->state == to)
        return;
    assert(legal(s->state, to));
    if (log_verbosity >= 2)
        log_debug("%s: %s -> %s", s->addr, session_state_str(s->state),
                  session_state_str(to));
    s->state = to;
}

/* ---- the circuit breaker's queue ---- */

static void queue_leave(struct session *s)
{
    struct session_ctx *ctx = s->ctx;
    if (s->q_prev)
        s->q_prev->q_next = s->q_next;
    else
        ctx->q_head = s->q_next;
    if (s->q_next)
        s->q_next->q_prev = s->q_prev;
    else
        ctx->q_tail = s->q_prev;
    s->q_prev = s->q_next = NULL;
    ctx->queued_now--;
    if (s->req && s->req->t_queued)
        ctx->queue_wait_us += now_us(s) - s->req->t_queued;
    half_deadline_clear(&s->upstream);
}

/* Joins the queue: false when it is full (max_queue). */
static bool queue_join(struct session *s)
{
    struct session_ctx *ctx = s->ctx;
    const struct config *cfg = pcfg(s->req);
    if (ctx->queued_now >= cfg->max_queue) {
        ctx->queue_full++;
        return false;
    }
    s->q_prev = ctx->q_tail;
    s->q_next = NULL;
    if (ctx->q_tail)
        ctx->q_tail->q_next = s;
    else
        ctx->q_head = s;
    ctx->q_tail = s;
    ctx->queued_now++;
    ctx->queued_total++;
    s->req->t_queued = now_us(s);
    half_deadline(ctx->loop, &s->upstream, HW_QUEUE,
                  now_us(s) + (uint64_t)cfg->queue_timeout_ms * 1000);
    return true;
}

static void queue_kick(struct session_ctx *ctx);

/* ---- close ---- */

/* Tears a session down: writes the record of a request under way, ends
 * the upstream side and frees the session after this dispatch round. */
static void session_close(struct session *s, enum record_error err)
{
    struct session_ctx *ctx = s->ctx;
    if (s->state == SS_CLOSED)
        return;
    if (s->state == SS_QUEUED)
        queue_leave(s);
    if (s->state == SS_TUNNEL)
        tunnel_end(s);
    if (s->req) {
        if (s->req->error == RECORD_OK)
            s->req->error = err;
        uside_abort(s, s->req->error);
        record_emit(s);
        request_put(s);
    } else {
        uside_abort(s, err);
    }
    log_debug("%s: closed in state %s (%s)", s->addr,
              session_state_str(s->state), record_error_str(err));
    session_set_state(s, SS_CLOSED);
    half_deadline_stop(ctx->loop, &s->client);
    half_deadline_stop(ctx->loop, &s->upstream);
    s->client.tr->release(s->client.tr_state); /* before its socket goes */
    s->client.tr = &transport_tcp; /* nothing left to release or ask */
    s->client.tr_state = NULL;
    loop_io_close(ctx->loop, &s->cio);
    half_drop_buffers(&s->client, &ctx->bufs);
    if (s->prev)
        s->prev->next = s->next;
    else
        ctx->all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ctx->nsessions--;
    free(s->pp_out);
    loop_defer(ctx->loop, free, s);
    if (ctx->on_close)
        ctx->on_close(ctx->close_arg);
    if (ctx->q_head)
        queue_kick(ctx); /* a backend slot may have come free */
}

/* ---- answers of our own ---- */

/* Queues the answer a side asked for (req->fail_status).  The connection
 * persists afterwards only when the request was read whole. */
static void session_reply(struct session *s)
{
    struct request *r = s->req;
    struct buf *out = &s->client.out;
    if (s->state == SS_QUEUED)
        queue_leave(s);
    uside_abort(s, r->error);
    if (uside_responding(s) || (out->data && out->off > 0)) {
        /* part of a response (or of a relayed 1xx) is already out: only
         * closing is honest */
        session_close(s, r->error);
        return;
    }
    if (!buf_get(&s->ctx->bufs, out)) {
        session_close(s, r->error);
        return;
    }
    bool close = !cside_complete(s) || !s->keep_alive || s->ctx->draining;
    s->want_close = s->want_close || close;
    out->off = 0;
    out->len = (uint32_t)http_error_response(out->data, s->ctx->bufs.size,
                                             r->fail_status, s->want_close);
    r->status = r->fail_status;
    half_deadline_clear(&s->client);
    session_set_state(s, SS_REPLY);
}

/* Acts on what a side asked for (see act). */
static void apply(struct session *s, enum step st)
{
    for (int i = 0; i < DRIVE_ROUNDS; i++) {
        switch (st) {
        case STEP_WAIT:
        case STEP_MOVED:
            return;
        case STEP_HEAD:
            st = uside_dispatch(s);
            continue;
        case STEP_CONNECT:
            session_set_state(s, SS_CONNECT);
            return;
        case STEP_RELAY:
            session_set_state(s, SS_RELAY);
            return;
        case STEP_TUNNEL:
            session_set_state(s, SS_TUNNEL);
            tunnel_begin(s);
            return;
        case STEP_QUEUE:
            if (s->state == SS_QUEUED)
                return; /* still waiting, in its place */
            if (!queue_join(s)) {
                st = step_reply(s->req, 503, RECORD_CONNECT);
                continue;
            }
            session_set_state(s, SS_QUEUED);
            return;
        case STEP_REPLY:
            session_reply(s);
            return;
        case STEP_CLOSE:
            session_close(s, s->req ? s->req->error : RECORD_OK);
            return;
        }
    }
}

/* apply, called only when there is something to do: STEP_WAIT and
 * STEP_MOVED ask for nothing (the drive loop runs again or waits). */
static inline void act(struct session *s, enum step st)
{
    if (st > STEP_MOVED)
        apply(s, st);
}

/* ---- finishing a request ---- */

static void client_deadline(struct session *s, enum half_wait w, unsigned ms)
{
    half_deadline(s->ctx->loop, &s->client, w, now_us(s) + (uint64_t)ms * 1000);
}

/* The current request's answer was written whole: record it, end the
 * exchange and go on with the next request (or close). */
static enum step finish_request(struct session *s)
{
    struct session_ctx *ctx = s->ctx;
    record_emit(s);
    uside_done(s);
    if (!cside_complete(s) || s->req->body_dropped || uside_closes_client(s))
        s->want_close = true;
    request_put(s);
    s->client.msg = HALF_IDLE;
    /* A client that half-closed after pipelining still gets an answer to
     * every complete request it sent before the FIN (see drive()). */
    bool pending = s->client.in.data && buf_pending(&s->client.in) > 0;
    if (s->want_close || !s->keep_alive || ctx->draining ||
        (s->client.eof && !pending)) {
        session_close(s, RECORD_OK);
        return STEP_WAIT;
    }
    session_set_state(s, SS_IDLE);
    buf_put(&ctx->bufs, &s->client.in, false);
    client_deadline(s, HW_KEEPALIVE, cfg_of(s)->keepalive_timeout_ms);
    return STEP_MOVED;
}

/* ---- the drive loop ---- */

static enum step flush_client(struct session *s)
{
    if (!s->client.out.data) { /* nothing to write, no buffer to return */
        if (s->client.wait == HW_WRITE)
            half_deadline_clear(&s->client);
        return STEP_WAIT;
    }
    int n = half_flush(&s->client, &s->ctx->bufs);
    if (n < 0) {
        s->want_close = true;
        return s->req ? step_close(s->req, RECORD_CLIENT_CLOSED) : STEP_CLOSE;
    }
    if (s->client.out.data && buf_pending(&s->client.out) > 0) {
        if (s->client.wait != HW_WRITE || n > 0)
            client_deadline(s, HW_WRITE, cfg_of(s)->client_write_timeout_ms);
    } else if (s->client.wait == HW_WRITE) {
        half_deadline_clear(&s->client);
    }
    return n > 0 ? STEP_MOVED : STEP_WAIT;
}

/* Request body, request bytes out, response in, response bytes out. */
static enum step relay(struct session *s)
{
    bool moved = false, sent = false;
    /* request body bytes move only while it is read */
    enum step st = s->client.msg == HALF_BODY ? cside_body(s) : STEP_WAIT;
    if (st > STEP_MOVED)
        return st;
    moved |= st == STEP_MOVED;
    if (s->state == SS_RELAY) {
        st = uside_flush(s);
        if (st > STEP_MOVED)
            return st;
        sent = st == STEP_MOVED;
        st = uside_response(s);
        if (st > STEP_MOVED)
            return st;
        moved |= st == STEP_MOVED;
    }
    st = flush_client(s);
    if (st > STEP_MOVED)
        return st;
    moved |= st == STEP_MOVED;
    if (uside_complete(s) &&
        (!s->client.out.data || buf_pending(&s->client.out) == 0))
        return finish_request(s);
    /* Request bytes sent upstream make room only for more of the body:
     * when nothing else moved and no body is being read, another round
     * could move nothing before the next event. */
    if (sent && !moved && s->client.msg == HALF_BODY)
        return STEP_MOVED;
    return moved ? STEP_MOVED : STEP_WAIT;
}

/* One step of the current state. */
static enum step run_state(struct session *s)
{
    switch (s->state) {
    case SS_IDLE:
        if (!s->client.in.data || buf_pending(&s->client.in) == 0)
            return STEP_WAIT;
        s->req = request_get(s);
        if (!s->req)
            return STEP_CLOSE;
        cside_begin(s);
        session_set_state(s, SS_HEAD);
        client_deadline(s, HW_HEADER, cfg_of(s)->client_header_timeout_ms);
        return cside_head(s); /* parse what arrived */
    case SS_HEAD:
        return cside_head(s);
    case SS_CONNECT:
    case SS_QUEUED:
    case SS_RELAY:
        return relay(s);
    case SS_REPLY: {
        enum step st = flush_client(s);
        if (st > STEP_MOVED)
            return st;
        if (s->client.out.data && buf_pending(&s->client.out) > 0)
            return STEP_WAIT;
        return finish_request(s);
    }
    case SS_TUNNEL:
        return tunnel_relay(s);
    case SS_CLOSED:
        return STEP_WAIT;
    }
    return STEP_WAIT;
}

static void update_interest(struct session *s)
{
    struct buf_pool *pool = &s->ctx->bufs;
    unsigned ev = 0;
    if (s->state != SS_REPLY && half_may_read(&s->client, pool))
        ev |= LOOP_READ;
    if (s->client.out.data && buf_pending(&s->client.out) > 0)
        ev |= LOOP_WRITE;
    ev |= half_tr_wants(&s->client);
    loop_io_mod(s->ctx->loop, &s->cio, ev);
    if (s->uc && (s->state == SS_RELAY || s->state == SS_TUNNEL)) {
        unsigned uev = 0;
        /* a tunnel's upstream bytes are no message: the 101 response's
         * completion says nothing about them */
        if ((s->state == SS_TUNNEL || !uside_complete(s)) &&
            half_may_read(&s->upstream, pool))
            uev |= LOOP_READ;
        if (s->upstream.out.data && buf_pending(&s->upstream.out) > 0)
            uev |= LOOP_WRITE;
        uev |= half_tr_wants(&s->upstream);
        loop_io_mod(s->ctx->loop, &s->uc->io, uev);
    }
}

/* After a turn of the drive loop that used every round while bytes still
 * moved: some may be left that could move now and that no I/O would
 * announce (one side's input partly passed on, with no room left to read
 * into, while the other side's output was flushed whole).  Both sockets
 * also wait for writability, which they nearly always have, so the next
 * loop round drives the session on; the turn after that sets the interest
 * sets anew.  Not inlined: drive's usual path keeps its registers. */
__attribute__((noinline)) static void drive_again(struct session *s)
{
    loop_io_mod(s->ctx->loop, &s->cio, s->cio.events | LOOP_WRITE);
    if (s->uc && (s->state == SS_RELAY || s->state == SS_TUNNEL))
        loop_io_mod(s->ctx->loop, &s->uc->io, s->uc->io.events | LOOP_WRITE);
}

static void client_ended(struct session *s);

/* Reads what a transport already holds decoded (TLS), which no socket
 * event would announce: true when bytes came or the session ended its
 * client side, or the upstream side was read, so the machine should run
 * again. */
static bool read_buffered(struct session *s)
{
    struct half *u = &s->upstream;
    if (s->uc && (s->state == SS_RELAY || s->state == SS_TUNNEL) &&
        half_tr_buffered(u) && half_may_read(u, &s->ctx->bufs) &&
        (s->state == SS_TUNNEL || !uside_complete(s))) {
        uint64_t before = u->bytes_in;
        enum session_state was = s->state;
        apply(s, s->state == SS_TUNNEL ? tunnel_io(s, LOOP_READ)
                                       : uside_io(s, LOOP_READ, false));
        /* a partial record is pending too: then nothing moved */
        if (u->bytes_in != before || s->state != was || u->eof || u->error)
            return true;
    }
    if (s->state == SS_CLOSED || s->state == SS_REPLY ||
        !half_tr_buffered(&s->client) ||
        !half_may_read(&s->client, &s->ctx->bufs))
        return false;
    int n = half_read(&s->client, &s->ctx->bufs);
    if (n < 0)
        client_ended(s);
    return n != 0;
}

/* Runs the state machine until nothing more can happen without I/O. */
static void drive(struct session *s)
{
    int round;
    for (round = 0; round < DRIVE_ROUNDS; round++) {
        if (s->state == SS_CLOSED)
            return;
        enum step st = run_state(s);
        if (st == STEP_WAIT && !read_buffered(s))
            break;
        act(s, st);
    }
    if (s->state == SS_CLOSED)
        return;
    if (s->client.eof && (s->state == SS_IDLE || s->state == SS_HEAD)) {
        /* half-closed and no complete request left: nothing more can come */
        session_close(s, RECORD_CLIENT_CLOSED);
        return;
    }
    update_interest(s);
    if (round == DRIVE_ROUNDS)
        drive_again(s);
    if (s->ctx->q_head)
        queue_kick(s->ctx); /* a backend slot may have come free */
}

/* Dispatches waiting requests, oldest first, while backends have room. */
static void queue_kick(struct session_ctx *ctx)
{
    static bool kicking; /* a dispatched request may finish at once */
    if (kicking)
        return;
    kicking = true;
    unsigned budget = 64; /* dispatches per kick */
    /* Pools share the queue: a waiter whose pool is still full does not
     * hold up those of other pools behind it (each pool keeps its order). */
    const struct pool *full[8];
    unsigned nfull = 0;
    struct session *next;
    for (struct session *s = ctx->q_head; s && nfull < 8; s = next) {
        next = s->q_next; /* s may leave the queue below */
        const struct pool *p = s->req->pool;
        bool skip = false;
        for (unsigned k = 0; k < nfull && !skip; k++)
            skip = full[k] == p;
        if (skip)
            continue;
        enum step st = uside_dispatch(s);
        if (st == STEP_QUEUE) { /* its backends are still full */
            full[nfull++] = p;
            continue;
        }
        queue_leave(s);
        apply(s, st);
        if (s->state != SS_CLOSED)
            drive(s);
        if (--budget == 0)
            break;
        /* the sessions before next were all of full pools; next itself
         * may have left the queue meanwhile: then start at the head */
        if (next && !next->q_prev && ctx->q_head != next)
            next = ctx->q_head;
    }
    kicking = false;
}

/* ---- events ---- */

/* The client ended its sending direction, or its socket failed. */
static void client_ended(struct session *s)
{
    if (s->state == SS_TUNNEL) {
        /* end of stream is a half-close the tunnel forwards */
        if (s->client.error)
            session_close(s, RECORD_CLIENT_CLOSED);
        return;
    }
    bool mid_request = s->state == SS_HEAD ||
                       ((s->state == SS_RELAY || s->state == SS_CONNECT) &&
                        !cside_complete(s));
    if (s->client.error || s->state == SS_IDLE || mid_request)
        session_close(s, RECORD_CLIENT_CLOSED);
}

static void on_client_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct session *s = io->ctx;
    /* a transport's read may be waiting for the socket to be writable */
    if ((events & LOOP_READ) ||
        (events & half_tr_wants(&s->client) & LOOP_WRITE)) {
        if (s->state == SS_TUNNEL)
            tunnel_woken(&s->client, &s->ctx->bufs);
        int n = half_read(&s->client, &s->ctx->bufs);
        if (n > 0 && s->client.wait == HW_BODY)
            client_deadline(s, HW_BODY, cfg_of(s)->client_body_timeout_ms);
        if (n < 0) {
            client_ended(s);
            if (s->state == SS_CLOSED)
                return;
        }
    }
    drive(s);
}

static void on_upstream_io(struct loop *loop, struct loop_io *io,
                           unsigned events)
{
    (void)loop;
    struct session *s = io->ctx;
    if (s->state == SS_TUNNEL)
        act(s, tunnel_io(s, events));
    else
        act(s, uside_io(s, events, s->state == SS_CONNECT));
    if (s->state != SS_CLOSED)
        drive(s);
}

static void on_client_timer(struct loop *loop, struct loop_timer *t)
{
    struct session *s = t->ctx;
    switch (half_deadline_due(loop, &s->client)) {
    case HW_KEEPALIVE:
        session_close(s, RECORD_OK);
        return;
    case HW_HEADER:
        s->keep_alive = false;
        apply(s, step_reply(s->req, 408, RECORD_CLIENT_TIMEOUT));
        break;
    case HW_BODY:
        if (uside_responding(s)) {
            session_close(s, RECORD_CLIENT_TIMEOUT);
            return;
        }
        s->keep_alive = false;
        apply(s, step_reply(s->req, 408, RECORD_CLIENT_TIMEOUT));
        break;
    case HW_WRITE:
        session_close(s, RECORD_CLIENT_TIMEOUT);
        return;
    case HW_TUNNEL:
        session_close(s, RECORD_TIMEOUT); /* idle for tunnel_idle_ms */
        return;
    case HW_NONE:
    case HW_CONNECT:
    case HW_RESPONSE:
    case HW_QUEUE:
        return;
    }
    if (s->state != SS_CLOSED)
        drive(s);
}

static void on_hedge_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct session *s = io->ctx;
    apply(s, uside_hedge_io(s, events));
    if (s->state != SS_CLOSED)
        drive(s);
}

static void on_hedge_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct session *s = t->ctx;
    apply(s, uside_hedge_timeout(s));
    if (s->state != SS_CLOSED)
        drive(s);
}

static void on_upstream_timer(struct loop *loop, struct loop_timer *t)
{
    struct session *s = t->ctx;
    enum half_wait w = half_deadline_due(loop, &s->upstream);
    if (w == HW_NONE || !s->req)
        return;
    if (w == HW_QUEUE) {
        /* no backend came free in time: 503, try again later */
        s->ctx->queue_timeouts++;
        apply(s, step_reply(s->req, 503, RECORD_TIMEOUT));
        if (s->state != SS_CLOSED)
            drive(s);
        return;
    }
    apply(s, uside_timeout(s, s->state == SS_CONNECT));
    if (s->state != SS_CLOSED)
        drive(s);
}

/* ---- accept, drain ---- */

/* send_proxy: the PROXY header of this client's upstream connections,
 * client sa to local (the listener's address when NULL). */
static void make_preamble(struct session *s, int fd, const struct sockaddr *sa,
                          const struct sockaddr *local)
{
    int v = cfg_of(s)->send_proxy;
    if (v == CONFIG_SEND_PROXY_OFF)
        return;
    struct sockaddr_storage ls;
    socklen_t ll = sizeof(ls);
    if (!local && getsockname(fd, (struct sockaddr *)&ls, &ll) == 0)
        local = (struct sockaddr *)&ls;
    uint8_t tmp[PROXYPROTO_V1_MAX + 1];
    int n = proxyproto_build(v == CONFIG_SEND_PROXY_V1 ? 1 : 2, tmp,
                             sizeof(tmp), sa, local);
    if (n > 0 && (s->pp_out = malloc((size_t)n)) != NULL) {
        memcpy(s->pp_out, tmp, (size_t)n);
        s->pp_len = (uint8_t)n;
    }
}

int session_accept(struct session_ctx *ctx, int fd, const struct sockaddr *sa,
                   socklen_t salen, const struct sockaddr *local)
{
    return session_accept_tr(ctx, fd, sa, salen, local, &transport_tcp, NULL);
}

int session_accept_tr(struct session_ctx *ctx, int fd,
                      const struct sockaddr *sa, socklen_t salen,
                      const struct sockaddr *local, const struct transport *tr,
                      void *tr_state)
{
    (void)salen;
    static bool ready;
    if (!ready) {
        cside_init();
        uside_init(on_upstream_io, on_hedge_io, on_hedge_timer);
        ready = true;
    }
    struct session *s = calloc(1, sizeof(*s));
    if (!s) {
        tr->release(tr_state);
        close(fd);
        return -1;
    }
    s->ctx = ctx;
    s->cio.fn = on_client_io;
    s->cio.ctx = s;
    s->client.io = &s->cio;
    s->client.tr = tr;
    s->client.tr_state = tr_state;
    s->client.timer.fn = on_client_timer;
    s->client.timer.ctx = s;
    s->upstream.tr = &transport_tcp;
    s->upstream.timer.fn = on_upstream_timer;
    s->upstream.timer.ctx = s;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    net_format_ip(sa, s->ip, sizeof(s->ip)); /* "unknown" for other */
    s->ip_len = (uint8_t)strlen(s->ip);
    net_format(sa, s->addr, sizeof(s->addr));
    make_preamble(s, fd, sa, local);
    if (loop_io_add(ctx->loop, &s->cio, fd, LOOP_READ) < 0) {
        free(s->pp_out);
        tr->release(tr_state);
        free(s);
        close(fd);
        return -1;
    }
    s->state = SS_IDLE;
    s->keep_alive = true;
    s->next = ctx->all;
    if (ctx->all)
        ctx->all->prev = s;
    ctx->all = s;
    ctx->nsessions++;
    client_deadline(s, HW_KEEPALIVE, ctx->cfg->client_header_timeout_ms);
    if (half_tr_buffered(&s->client)) /* the first request came with it */
        on_client_io(ctx->loop, &s->cio, LOOP_READ);
    return 0;
}

void session_drain_all(struct session_ctx *ctx)
{
    ctx->draining = true;
    struct session *s = ctx->all;
    while (s) {
        struct session *next = s->next;
        if (s->state == SS_IDLE &&
            (!s->client.in.data || buf_pending(&s->client.in) == 0))
            session_close(s, RECORD_OK);
        else
            s->want_close = true;
        s = next;
    }
}

void session_close_all(struct session_ctx *ctx)
{
    while (ctx->all)
        session_close(ctx->all, RECORD_SHUTDOWN);
}
