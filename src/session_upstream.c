/*
 * session_upstream: the upstream side of a session - picking a backend,
 * taking a pooled connection or connecting, sending the request, parsing
 * and relaying the response (interim 1xx heads, the final head, the body),
 * what happens when an attempt fails (retry on a fresh connection or
 * another backend, 502/504), and the pool-return rule.  It answers to
 * session.c through enum step and never calls it.
 */
#include "session_impl.h"

#include <errno.h>
#include <sys/socket.h>

#include "log.h"
#include "retry.h"

static llhttp_settings_t resp_settings;
static loop_io_fn *upstream_io_fn; /* session.c's handler of upstream events */

static struct request *req_of(llhttp_t *p)
{
    return container_of(p, struct request, rparser);
}

/* ---- the balancer's view ---- */

static void observe(struct session *s, enum balancer_outcome outcome)
{
    struct request *r = s->req;
    if (!r->in_flight)
        return;
    r->in_flight = false;
    balancer_observe(r->gen->bal, (size_t)r->backend, now_us(s) - r->t_dispatch,
                     outcome, r->inflight_at_dispatch, now_us(s));
}

/* Releases a pick that produced no sample. */
static void cancel_pick(struct session *s)
{
    struct request *r = s->req;
    if (!r->in_flight)
        return;
    r->in_flight = false;
    balancer_cancel(r->gen->bal, (size_t)r->backend);
}

/* ---- the connection ---- */

/* Closes the attempt's connection (RST with reset) and its deadline. */
static void drop_connection(struct session *s, bool reset)
{
    half_deadline_clear(&s->upstream);
    if (s->uc) {
        upstream_close(s->uc, reset);
        s->uc = NULL;
    }
    s->upstream.io = NULL;
}

static void arm(struct session *s, enum half_wait w, unsigned ms)
{
    half_deadline(s->ctx->loop, &s->upstream, w,
                  now_us(s) + (uint64_t)ms * 1000);
}

/* The per-try deadline of the current attempt, in ms (0: none): an
 * idempotent request that holds its whole request, when timeouts may be
 * retried, waits on its first response byte at most per_try_factor times
 * the backend's latency tail, within [per_try_min_ms, per_try_max_ms]
 * (the ceiling before the backend's first sample). */
static unsigned per_try_ms(struct session *s)
{
    const struct config *cfg = cfg_of(s);
    struct request *r = s->req;
    if (cfg->per_try_min_ms == 0 || !r->hreq.idempotent || r->ub_discarded ||
        !(cfg->retry_on & RETRY_TIMEOUT))
        return 0;
    uint64_t tail = balancer_latency_tail_us(r->gen->bal, (size_t)r->backend);
    uint64_t ms =
        tail ? (tail * cfg->per_try_factor + 999) / 1000 : cfg->per_try_max_ms;
    if (ms < cfg->per_try_min_ms)
        ms = cfg->per_try_min_ms;
    if (ms > cfg->per_try_max_ms)
        ms = cfg->per_try_max_ms;
    return ms < cfg->upstream_timeout_ms ? (unsigned)ms : 0;
}

/* The deadline of an attempt waiting for its first response byte. */
static void arm_response(struct session *s)
{
    unsigned t = per_try_ms(s);
    arm(s, HW_RESPONSE, t ? t : cfg_of(s)->upstream_timeout_ms);
}

static void start_response(struct session *s)
{
    struct request *r = s->req;
    llhttp_init(&r->rparser, HTTP_RESPONSE, &resp_settings);
    r->rparser.data = &r->rhead;
    r->rhead.headers = r->headers + cfg_of(s)->max_headers;
    r->rhead.max_headers = cfg_of(s)->max_headers;
    buf_put(pool_of(s), &s->upstream.in, true);
    http_head_reset(&r->rhead, NULL);
    r->rparse_off = 0;
    r->rhead_ready = r->upstream_extra = false;
    r->ninterim = 0;
    r->t_first_byte = 0;
    s->upstream.msg = HALF_HEAD;
    s->upstream.bytes_in = 0;
    s->upstream.eof = s->upstream.error = s->upstream.filled = false;
}

/* Attaches a connection (fresh or pooled) to the session. */
static int attach(struct session *s, struct upstream_conn *uc, bool connecting)
{
    uc->io.fn = upstream_io_fn;
    uc->io.ctx = s;
    unsigned ev = connecting ? LOOP_WRITE : LOOP_READ;
    int rc = uc->io.registered
                 ? loop_io_mod(s->ctx->loop, &uc->io, ev)
                 : loop_io_add(s->ctx->loop, &uc->io, uc->io.fd, ev);
    if (rc < 0) {
        upstream_close(uc, false);
        return -1;
    }
    s->uc = uc;
    s->upstream.io = &uc->io;
    s->upstream.out.off = 0; /* (re)send everything we hold */
    start_response(s);
    return 0;
}

static enum step failed(struct session *s, enum balancer_outcome outcome);

/* Takes a pooled connection (unless fresh) or connects. */
static enum step connect_backend(struct session *s, bool fresh)
{
    struct request *r = s->req;
    const struct config *cfg = cfg_of(s);
    struct upstream *up = r->gen->up;
    size_t idx = (size_t)r->backend;
    struct upstream_conn *uc = NULL;
    if (!fresh && cfg->persistent)
        uc = upstream_get_idle(up, idx);
    if (uc) {
        r->reused = true;
        r->connect_us = -1;
        if (attach(s, uc, false) < 0)
            return failed(s, BALANCER_RESET);
        arm_response(s);
        return STEP_RELAY;
    }
    r->reused = false;
    r->t_connect = now_us(s);
    /* A pooled connection carries many requests: TCP_NODELAY at once.  A
     * one-shot connection whose body-less request leaves in one send()
     * never needs it (uside_flush sets it before a later write). */
    bool nodelay = cfg->persistent || r->hreq.has_body;
    switch (upstream_connect(up, idx, nodelay, &uc)) {
    case UPSTREAM_CONNECTED:
        r->connect_us = 0;
        if (attach(s, uc, false) < 0)
            return failed(s, BALANCER_CONNECT_ERR);
        arm_response(s);
        return STEP_RELAY;
    case UPSTREAM_IN_PROGRESS: {
        /* On loopback and fast links the handshake is often complete by
         * now: try the request at once, which saves a wake-up, a
         * getsockopt and an epoll_ctl; a socket still connecting answers
         * EAGAIN and we wait for writability as usual.  A request with
         * a body waits: its body is checked before any byte leaves. */
        ssize_t n = -1;
        errno = EAGAIN;
        struct buf *out = &s->upstream.out;
        if (!r->hreq.has_body)
            n = send(uc->io.fd, out->data, out->len, MSG_NOSIGNAL);
        if (n > 0) {
            uc->connected = true;
            if (attach(s, uc, false) < 0)
                return failed(s, BALANCER_CONNECT_ERR);
            out->off = (uint32_t)n;
            s->upstream.bytes_out += (uint64_t)n;
            r->connect_us = (int64_t)(now_us(s) - r->t_connect);
            arm_response(s);
            return STEP_RELAY;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
            upstream_close(uc, false); /* refused at once */
            return failed(s, BALANCER_CONNECT_ERR);
        }
        if (attach(s, uc, true) < 0)
            return failed(s, BALANCER_CONNECT_ERR);
        arm(s, HW_CONNECT, cfg->upstream_connect_timeout_ms);
        return STEP_CONNECT;
    }
    case UPSTREAM_REFUSED:
        return failed(s, BALANCER_CONNECT_ERR);
    case UPSTREAM_ERROR:
        log_warn("connect to backend %s", upstream_id(up, idx));
        cancel_pick(s);
        return step_reply(r, 502, RECORD_CONNECT);
    }
    return step_reply(r, 502, RECORD_CONNECT);
}

/* The backends at max_conns, as a bitmap (0 without a limit). */
static uint64_t full_backends(struct session *s)
{
    unsigned cap = cfg_of(s)->max_conns;
    struct balancer *bal = s->req->gen->bal;
    uint64_t full = 0;
    if (cap == 0)
        return 0;
    size_t n = balancer_count(bal);
    for (size_t i = 0; i < n && i < 64; i++)
        if (balancer_backend(bal, i)->in_flight >= cap)
            full |= (uint64_t)1 << i;
    return full;
}

/* Picks a backend not tried yet for the request and not at max_conns:
 * 1 picked, 0 none left, -1 only full ones left (the request may wait). */
static int pick(struct session *s)
{
    struct request *r = s->req;
    unsigned inflight = 0;
    uint64_t full = full_backends(s) & ~r->tried;
    int idx = balancer_pick(r->gen->bal, r->tried | full, now_us(s), &inflight);
    if (idx < 0)
        return full ? -1 : 0;
    r->backend = idx;
    r->in_flight = true;
    r->inflight_at_dispatch = inflight;
    r->t_dispatch = now_us(s);
    return 1;
}

enum step uside_dispatch(struct session *s)
{
    struct request *r = s->req;
    if (!r->gen) {
        r->gen = s->ctx->gen;
        r->gen->refs++;
        r->active = true;
        s->ctx->active_requests++;
    }
    int got = pick(s);
    if (got < 0)
        return STEP_QUEUE;
    if (got == 0)
        return r->timed_out ? step_reply(r, 504, RECORD_TIMEOUT)
                            : step_reply(r, 502, RECORD_CONNECT);
    s->upstream.retain = true;
    return connect_backend(s, false);
}

/* Whether an extra attempt may start now: within max_retries, with the
 * request still held whole, and within the retry budget (a request that
 * is already on an extra attempt keeps its place in the budget). */
/* Whether may_retry would say yes, without taking a place in the budget. */
static bool retry_possible(const struct session *s)
{
    const struct request *r = s->req;
    const struct session_ctx *ctx = s->ctx;
    const struct config *cfg = cfg_of(s);
    if (r->ub_discarded || r->retries >= cfg->max_retries)
        return false;
    return r->retrying || retry_budget_allows(
                              ctx->active_requests, ctx->active_retries,
                              cfg->retry_budget_percent, cfg->retry_budget_min);
}

static bool may_retry(struct session *s)
{
    struct request *r = s->req;
    struct session_ctx *ctx = s->ctx;
    const struct config *cfg = cfg_of(s);
    if (r->ub_discarded || r->retries >= cfg->max_retries)
        return false;
    if (!r->retrying) {
        if (!retry_budget_allows(ctx->active_requests, ctx->active_retries,
                                 cfg->retry_budget_percent,
                                 cfg->retry_budget_min)) {
            ctx->budget_refused++;
            return false;
        }
        r->retrying = true;
        ctx->active_retries++;
    }
    ctx->retries++;
    return true;
}

/* The end of a request for the retry budget. */
static void leave_budget(struct session *s)
{
    struct request *r = s->req;
    if (r->retrying) {
        r->retrying = false;
        s->ctx->active_retries--;
    }
    if (r->active) {
        r->active = false;
        s->ctx->active_requests--;
    }
}

/* Tells the stats of an attempt that failed and is retried elsewhere (the
 * client will not see it, but the backend's error counters must). */
static void note_retried(struct session *s, enum record_error err)
{
    struct request *r = s->req;
    struct session_ctx *ctx = s->ctx;
    if (ctx->on_attempt_failed)
        ctx->on_attempt_failed(ctx->record_arg, r->backend,
                               upstream_id(r->gen->up, (size_t)r->backend),
                               err);
    r->tried |= (uint64_t)1 << r->backend;
    r->retries++;
}

/* The current attempt failed before any response byte reached the client:
 * retry (a fresh connection or another backend) or answer 502/504. */
static enum step failed(struct session *s, enum balancer_outcome outcome)
{
    struct request *r = s->req;
    bool was_reused = r->reused;
    drop_connection(s, false);
    if (r->resp_head_sent) {
        observe(s, outcome);
        return step_close(r, RECORD_UPSTREAM_RESET);
    }
    bool can_resend = !r->ub_discarded;
    /* The classic keep-alive race: a pooled connection closed by the
     * backend just as we reused it.  Retry once on a fresh connection. */
    if (outcome == BALANCER_RESET && was_reused && !r->fresh_retry_done &&
        can_resend && (r->hreq.idempotent || !r->hreq.has_body)) {
        r->fresh_retry_done = true;
        r->retries++;
        return connect_backend(s, true);
    }
    observe(s, outcome);
    r->timed_out = outcome == BALANCER_TIMEOUT;
    unsigned on = cfg_of(s)->retry_on;
    bool retry = (outcome == BALANCER_CONNECT_ERR && (on & RETRY_CONNECT)) ||
                 (r->hreq.idempotent &&
                  ((outcome == BALANCER_RESET && (on & RETRY_RESET)) ||
                   (outcome == BALANCER_TIMEOUT && (on & RETRY_TIMEOUT))));
    enum record_error err = outcome == BALANCER_CONNECT_ERR ? RECORD_CONNECT
                            : outcome == BALANCER_TIMEOUT
                                ? RECORD_TIMEOUT
                                : RECORD_UPSTREAM_RESET;
    if (retry && may_retry(s)) {
        note_retried(s, err);
        return uside_dispatch(s);
    }
    return step_reply(r, outcome == BALANCER_TIMEOUT ? 504 : 502, err);
}

/* Whether a backend other than the current one and those tried is left
 * for the request (a pick that is given back at once). */
static bool another_backend(struct session *s)
{
    struct request *r = s->req;
    uint64_t tried = r->tried | (uint64_t)1 << r->backend;
    unsigned inflight;
    int idx = balancer_pick(r->gen->bal, tried, now_us(s), &inflight);
    if (idx < 0)
        return false;
    balancer_cancel(r->gen->bal, (size_t)idx);
    return true;
}

/* A 5xx head arrived and `[retry] on` names 5xx: when nothing of it went
 * out, the request is idempotent and another backend is left, the answer
 * is dropped (its connection closed: the body is unread) and the request
 * goes there.  True when it did. */
static bool retry_5xx(struct session *s)
{
    struct request *r = s->req;
    if (r->status < 500 || !(cfg_of(s)->retry_on & RETRY_5XX) ||
        !r->hreq.idempotent || r->resp_head_sent)
        return false;
    uint64_t tried = r->tried | (uint64_t)1 << r->backend;
    if (!another_backend(s))
        return false; /* nowhere else to go: the 5xx is the answer */
    if (!may_retry(s))
        return false;
    observe(s, BALANCER_HTTP_ERROR); /* the balancer hears of it */
    drop_connection(s, true);
    r->tried = tried;
    r->retries++;
    s->ctx->retries_5xx++;
    return true;
}

enum step uside_timeout(struct session *s, bool connecting)
{
    struct request *r = s->req;
    if (connecting)
        return failed(s, BALANCER_CONNECT_ERR);
    if (s->upstream.bytes_in == 0 && r->hreq.idempotent) {
        uint64_t full = (uint64_t)cfg_of(s)->upstream_timeout_ms * 1000;
        uint64_t waited = now_us(s) - r->t_dispatch;
        if (waited < full) {
            /* a per-try deadline: another backend when one is left and
             * the budget allows, else this attempt goes on and is looked
             * at again later (cancelling it would turn a slow answer into
             * an error) */
            if (!retry_possible(s) || !another_backend(s)) {
                unsigned t = per_try_ms(s);
                uint64_t next = t ? (uint64_t)t * 1000 : full - waited;
                if (next > full - waited)
                    next = full - waited;
                half_deadline(s->ctx->loop, &s->upstream, HW_RESPONSE,
                              now_us(s) + next);
                return STEP_WAIT;
            }
            s->ctx->per_try_retries++;
        }
        return failed(s, BALANCER_TIMEOUT); /* retried elsewhere */
    }
    observe(s, BALANCER_TIMEOUT);
    if (!r->resp_head_sent)
        return step_reply(r, 504, RECORD_TIMEOUT);
    return step_close(r, RECORD_TIMEOUT);
}

/* ---- the response ---- */

static int on_headers_complete(llhttp_t *p)
{
    struct request *r = req_of(p);
    http_response_check(p, &r->rhead, r->method, r->parser.http_minor,
                        r->hreq.upgrade, &r->resp);
    if (r->resp.mode == HTTP_BODY_NONE)
        p->flags |= F_SKIPBODY; /* HEAD/1xx/204/304: never wait for a body */
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct request *r = req_of(p);
    struct buf *out = &r->s->client.out;
    out->len += (uint32_t)http_frame_body(buf_end(out), at, len,
                                          r->resp.mode == HTTP_BODY_CHUNKED);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct request *r = req_of(p);
    struct session *s = r->s;
    if (r->resp.mode == HTTP_BODY_CHUNKED)
        buf_append(pool_of(s), &s->client.out, "0\r\n\r\n", 5);
    s->upstream.msg = HALF_DONE;
    return HPE_PAUSED;
}

/* A response head was queued for the client but not one byte of this
 * request's answer reached it yet: take it back so that an error can
 * still be answered. */
static void withdraw_response(struct session *s)
{
    struct request *r = s->req;
    if (r->resp_head_sent && resp_bytes(s) == 0) {
        s->client.out.off = s->client.out.len = 0;
        r->resp_head_sent = false;
    }
}

static enum step bad_response(struct session *s, const char *why)
{
    struct request *r = s->req;
    log_debug("%s: bad response from %s: %s", s->addr,
              upstream_id(r->gen->up, (size_t)r->backend), why);
    observe(s, BALANCER_RESET);
    drop_connection(s, true);
    withdraw_response(s);
    if (r->resp_head_sent)
        return step_close(r, RECORD_BAD_RESPONSE);
    return step_reply(r, 502, RECORD_BAD_RESPONSE);
}

/* Parses response head bytes in upstream.in (they stay there, from
 * in.off, until the head is relayed).  Returns STEP_HEAD when a head is
 * ready (rhead_ready), STEP_WAIT when more bytes are needed, or the step
 * of a refused response. */
static enum step parse_head(struct session *s)
{
    struct request *r = s->req;
    struct buf *in = &s->upstream.in;
    if (!in->data || r->rparse_off == in->len)
        return STEP_WAIT;
    r->rhead.base = in->data;
    const char *start = in->data + r->rparse_off;
    llhttp_errno_t e =
        llhttp_execute(&r->rparser, start, in->len - r->rparse_off);
    if (e == HPE_OK) {
        r->rparse_off = in->len;
        if (in->len >= pool_of(s)->size)
            return bad_response(s, "response head too large");
        return STEP_WAIT;
    }
    if (e != HPE_PAUSED)
        return bad_response(s, llhttp_errno_name(e));
    r->rparse_off = (uint32_t)(llhttp_get_error_pos(&r->rparser) - in->data);
    llhttp_resume(&r->rparser);
    if (r->resp.status != 0)
        return bad_response(s, r->resp.error);
    if (r->resp.interim && ++r->ninterim > HTTP_MAX_INTERIM)
        return bad_response(s, "too many interim responses");
    r->rhead_ready = true;
    return STEP_HEAD;
}

/* Room in client.out for a head after the bytes still queued there. */
static uint32_t head_room(struct session *s)
{
    struct buf *out = &s->client.out;
    return pool_of(s)->size - out->len - FRAMING_SLACK;
}

/* The parsed head's bytes leave upstream.in. */
static void consume_head(struct session *s)
{
    struct request *r = s->req;
    struct buf *in = &s->upstream.in;
    buf_consume(in, r->rparse_off - in->off);
    r->rparse_off = in->off;
    r->rhead_ready = false;
}

/* An interim (1xx) head is ready: relay it to an HTTP/1.1 client (an
 * HTTP/1.0 one does not know them, RFC 9110 15.2), then parse the final
 * response from a fresh parser.  STEP_WAIT while client.out has no room
 * for it (the client must read first). */
static enum step relay_interim(struct session *s)
{
    struct request *r = s->req;
    struct buf *out = &s->client.out;
    if (r->parser.http_major == 1 && r->parser.http_minor == 1) {
        bool queued = buf_pending(out) > 0;
        int n =
            http_build_response_head(buf_end(out), head_room(s), &r->rparser,
                                     &r->rhead, &r->resp, 1, true);
        if (n < 0 && queued)
            return STEP_WAIT;
        if (n < 0)
            return bad_response(s, "interim response head too large");
        buf_commit(pool_of(s), out, (uint32_t)n);
    }
    consume_head(s);
    llhttp_reset(&r->rparser);
    http_head_reset(&r->rhead, NULL);
    return STEP_MOVED;
}

/* The final response head is ready: build the client's head into
 * client.out.  STEP_MOVED when built, STEP_WAIT while relayed 1xx bytes
 * leave no room. */
static enum step final_head(struct session *s)
{
    struct request *r = s->req;
    struct buf *out = &s->client.out;
    r->status = r->rparser.status_code;
    if (r->status >= 500 && retry_5xx(s)) {
        r->status = 0;
        return uside_dispatch(s);
    }
    bool ka = s->keep_alive && !s->want_close && !s->ctx->draining &&
              r->resp.mode != HTTP_BODY_CLOSE;
    bool queued = buf_pending(out) > 0;
    int n =
        http_build_response_head(buf_end(out), head_room(s), &r->rparser,
                                 &r->rhead, &r->resp, r->parser.http_minor, ka);
    if (n < 0 && queued)
        return STEP_WAIT; /* interim heads still queued: wait for the client */
    if (n < 0)
        return bad_response(s, "response head too large for the buffer");
    if (!ka)
        s->want_close = true;
    buf_commit(pool_of(s), out, (uint32_t)n);
    consume_head(s);
    r->resp_head_sent = true;
    s->upstream.msg = HALF_BODY;
    if (r->resp.tunnel) { /* 101: the exchange ends; the bytes go on */
        observe(s, BALANCER_OK);
        leave_budget(s);
        return STEP_TUNNEL;
    }
    return STEP_MOVED;
}

enum step uside_response(struct session *s)
{
    struct request *r = s->req;
    struct buf_pool *pool = pool_of(s);
    struct half *u = &s->upstream;
    if (!s->uc || !u->in.data || u->msg == HALF_DONE || u->msg == HALF_IDLE)
        return STEP_WAIT; /* nothing to parse */
    if (!buf_get(pool, &s->client.out))
        return STEP_WAIT;
    if (u->msg == HALF_HEAD) {
        if (!r->rhead_ready) {
            enum step st = parse_head(s);
            if (st != STEP_HEAD)
                return st;
        }
        enum step st = r->resp.interim ? relay_interim(s) : final_head(s);
        if (st != STEP_MOVED || u->msg == HALF_HEAD)
            return st;
        /* on to the body, which may be empty */
    }
    struct buf *in = &u->in, *out = &s->client.out;
    buf_compact_if_low(pool, out);
    uint32_t room = pool->size - out->len;
    if (room <= FRAMING_SLACK)
        return STEP_WAIT;
    uint32_t n = buf_pending(in);
    if (n > room - FRAMING_SLACK)
        n = room - FRAMING_SLACK;
    const char *start = buf_start(in);
    llhttp_errno_t e = llhttp_execute(&r->rparser, start, n);
    uint32_t used = n;
    if (e == HPE_PAUSED) {
        used = (uint32_t)(llhttp_get_error_pos(&r->rparser) - start);
        llhttp_resume(&r->rparser);
        if (used < n || buf_pending(in) > n)
            r->upstream_extra = true; /* bytes nobody asked for */
        half_deadline_clear(u);
    } else if (e != HPE_OK) {
        return bad_response(s, llhttp_errno_name(e));
    }
    buf_consume(in, used);
    buf_put(pool, in, false);
    return n > 0 || u->msg == HALF_DONE ? STEP_MOVED : STEP_WAIT;
}

/* The backend closed its side. */
static enum step upstream_eof(struct session *s)
{
    struct request *r = s->req;
    struct half *u = &s->upstream;
    if (u->msg == HALF_BODY && buf_get(pool_of(s), &s->client.out)) {
        llhttp_finish(&r->rparser); /* may end the body: "0\r\n\r\n" */
        if (u->msg == HALF_DONE) {  /* a read-until-close body ended */
            half_deadline_clear(u);
            return STEP_MOVED;
        }
    }
    if (u->msg == HALF_DONE)
        return STEP_MOVED;
    if (u->bytes_in == 0)
        return failed(s, BALANCER_RESET);
    /* truncated response: never present it as complete */
    drop_connection(s, false);
    withdraw_response(s);
    if (!r->resp_head_sent && r->hreq.idempotent)
        return failed(s, BALANCER_RESET); /* nothing reached the client */
    observe(s, BALANCER_RESET);
    if (r->resp_head_sent)
        return step_close(r, RECORD_UPSTREAM_RESET); /* flushed first */
    return step_reply(r, 502, RECORD_UPSTREAM_RESET);
}

static enum step read_upstream(struct session *s)
{
    struct request *r = s->req;
    struct half *u = &s->upstream;
    if (u->msg == HALF_DONE)
        return STEP_WAIT;
    int n = half_read(u, pool_of(s));
    if (n > 0) {
        if (r->t_first_byte == 0)
            r->t_first_byte = now_us(s);
        arm(s, HW_RESPONSE, cfg_of(s)->upstream_timeout_ms);
        return STEP_MOVED;
    }
    if (n == 0)
        return STEP_WAIT;
    if (u->eof || (u->bytes_in > 0 && u->msg != HALF_HEAD))
        return upstream_eof(s);
    return failed(s, BALANCER_RESET);
}

enum step uside_io(struct session *s, unsigned events, bool connecting)
{
    struct request *r = s->req;
    if (connecting) {
        if (!(events & LOOP_WRITE))
            return STEP_WAIT;
        if (upstream_finish_connect(s->uc) < 0)
            return failed(s, BALANCER_CONNECT_ERR);
        r->connect_us = (int64_t)(now_us(s) - r->t_connect);
        arm_response(s);
        return STEP_RELAY;
    }
    if (events & LOOP_READ)
        return read_upstream(s);
    return STEP_MOVED;
}

enum step uside_flush(struct session *s)
{
    struct request *r = s->req;
    struct half *u = &s->upstream;
    if (!s->uc || !s->uc->connected || !u->out.data ||
        buf_pending(&u->out) == 0)
        return STEP_WAIT;
    upstream_nodelay(s->uc);
    int n = half_flush(u, pool_of(s));
    if (n > 0)
        return STEP_MOVED;
    if (n == 0)
        return STEP_WAIT;
    if (u->bytes_in == 0) {
        /* the backend may have answered before it stopped reading: an
         * early response (413, 403, ...) is in the socket, read it */
        struct upstream_conn *uc = s->uc;
        enum step st = read_upstream(s);
        if (s->uc != uc || st > STEP_MOVED)
            return st; /* the read already failed the attempt */
    }
    if (u->bytes_in > 0) {
        /* the backend answered early and stopped reading: keep relaying
         * the response, drop the rest of the request body */
        u->out.off = u->out.len;
        r->body_dropped = true;
        s->want_close = true;
        return STEP_MOVED;
    }
    return failed(s, BALANCER_RESET);
}

/* ---- the end of an exchange ---- */

bool uside_complete(const struct session *s)
{
    return s->upstream.msg == HALF_DONE;
}

bool uside_responding(const struct session *s)
{
    return s->req && s->req->resp_head_sent;
}

bool uside_closes_client(const struct session *s)
{
    return s->req->resp.mode == HTTP_BODY_CLOSE;
}

/* The pool-return rule: after a finished exchange, the connection goes
 * back to its backend's pool only when it is known to hold nothing beyond
 * the response - persistent mode, the response read whole and keep-alive
 * allowed by the backend, the request read and sent whole, no upgrade
 * asked for (a backend that refused one may still have switched), no byte
 * after the response in upstream.in, and (checked by upstream_release when
 * the last read filled its room) none waiting in the socket.  Anything
 * else closes it: a byte nobody asked for must never become the next
 * request's response.  A finished unpooled exchange ends with an RST (no
 * TIME_WAIT). */
static void pool_or_close(struct session *s)
{
    struct request *r = s->req;
    const struct config *cfg = cfg_of(s);
    if (!s->uc)
        return;
    bool complete = s->upstream.msg == HALF_DONE;
    bool reusable = cfg->persistent && complete &&
                    r->resp.upstream_keep_alive && s->client.msg == HALF_DONE &&
                    !r->body_dropped && buf_pending(&s->upstream.out) == 0 &&
                    !r->upstream_extra && !r->hreq.upgrade;
    if (reusable)
        upstream_release(s->uc, s->upstream.filled);
    else
        upstream_close(s->uc, complete && cfg->pool_reset_on_close);
    s->uc = NULL;
    s->upstream.io = NULL;
}

static void end_exchange(struct session *s)
{
    struct half *u = &s->upstream;
    half_deadline_clear(u);
    u->retain = false;
    u->msg = HALF_IDLE;
    half_drop_buffers(u, pool_of(s));
}

void uside_done(struct session *s)
{
    struct request *r = s->req;
    leave_budget(s);
    if (r->in_flight)
        observe(s, r->status >= 500 || r->status == 429 ? BALANCER_HTTP_ERROR
                                                        : BALANCER_OK);
    pool_or_close(s);
    end_exchange(s);
}

void uside_abort(struct session *s, enum record_error err)
{
    if (s->req)
        leave_budget(s);
    if (s->req && s->req->in_flight) {
        if (err == RECORD_UPSTREAM_RESET)
            observe(s, BALANCER_RESET);
        else
            cancel_pick(s);
    }
    drop_connection(s, false);
    end_exchange(s);
}

void uside_init(loop_io_fn *on_io)
{
    upstream_io_fn = on_io;
    http_settings_init(&resp_settings);
    resp_settings.on_headers_complete = on_headers_complete;
    resp_settings.on_body = on_body;
    resp_settings.on_message_complete = on_message_complete;
}
