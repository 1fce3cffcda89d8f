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
/* A response parser as llhttp_init leaves it, copied for each response. */
static llhttp_t resp_parser;
static loop_io_fn *upstream_io_fn; /* session.c's handler of upstream events */

static struct request *req_of(llhttp_t *p)
{
    return container_of(p, struct request, rparser);
}

/* ---- the connection ---- */

/* Closes the attempt's connection (RST with reset) and its deadline. */
void uside_drop(struct session *s, bool reset)
{
    half_deadline_clear(&s->upstream);
    if (s->uc) {
        upstream_close(s->uc, reset);
        s->uc = NULL;
    }
    half_use_conn(&s->upstream, NULL);
}

static void arm(struct session *s, enum half_wait w, unsigned ms)
{
    half_deadline(s->ctx->loop, &s->upstream, w,
                  now_us(s) + (uint64_t)ms * 1000);
}

/* The deadline of an attempt waiting for its first response byte. */
static void arm_response(struct session *s)
{
    unsigned t = attempt_per_try_ms(s);
    arm(s, HW_RESPONSE, t ? t : pcfg(s->req)->upstream_timeout_ms);
}

/* The response parser starts over, at the start of upstream.in. */
static void reset_response(struct session *s)
{
    struct request *r = s->req;
    r->rparser = resp_parser;
    r->rparser.data = &r->rhead;
    r->rhead.headers = r->headers + cfg_of(s)->max_headers;
    r->rhead.max_headers = cfg_of(s)->max_headers;
    http_head_reset(&r->rhead, NULL);
    r->rparse_off = s->upstream.in.off;
    r->rhead_ready = r->upstream_extra = false;
    r->ninterim = 0;
    s->upstream.msg = HALF_HEAD;
}

static void start_response(struct session *s)
{
    buf_put(pool_of(s), &s->upstream.in, true);
    reset_response(s);
    s->req->t_first_byte = 0;
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
    half_use_conn(&s->upstream, uc);
    s->upstream.out.off = 0; /* (re)send everything we hold */
    start_response(s);
    return 0;
}

static enum record_error record_error_of(const struct request *r,
                                         enum balancer_outcome outcome)
{
    if (outcome == BALANCER_CONNECT_ERR)
        return r->tls_failed ? RECORD_UPSTREAM_TLS : RECORD_CONNECT;
    return outcome == BALANCER_TIMEOUT ? RECORD_TIMEOUT : RECORD_UPSTREAM_RESET;
}

/* The hedge becomes the request's attempt (the first one was ended): its
 * answer is parsed from the start of what it read. */
enum step uside_take_hedge(struct session *s)
{
    struct request *r = s->req;
    bool connecting = hedge_hand_over(s);
    s->uc->io.fn = upstream_io_fn;
    reset_response(s);
    r->hedge_won = true;
    s->ctx->hedge_wins++;
    return connecting ? STEP_CONNECT : STEP_RELAY;
}

/* Takes a pooled connection (unless fresh) or connects. */
static enum step connect_backend(struct session *s, bool fresh)
{
    struct request *r = s->req;
    const struct config *cfg = pcfg(s->req);
    struct upstream *up = r->pool->up;
    size_t idx = (size_t)r->backend;
    struct upstream_conn *uc = NULL;
    r->tls_failed = false;
    if (!fresh && cfg->persistent)
        uc = upstream_get_idle(up, idx);
    if (uc) {
        r->reused = true;
        r->connect_us = -1;
        if (attach(s, uc, false) < 0)
            return uside_failed(s, BALANCER_RESET);
        arm_response(s);
        return STEP_RELAY;
    }
    r->reused = false;
    r->t_connect = now_us(s);
    /* A pooled connection carries many requests: TCP_NODELAY at once.  A
     * one-shot connection whose body-less request leaves in one send()
     * never needs it (uside_flush sets it before a later write). */
    bool nodelay = cfg->persistent || r->hreq.has_body;
    switch (upstream_connect(up, idx, nodelay, s->pp_out, s->pp_len, &uc)) {
    case UPSTREAM_CONNECTED:
        r->connect_us = 0;
        if (attach(s, uc, false) < 0)
            return uside_failed(s, BALANCER_CONNECT_ERR);
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
        if (!uc->tls && !r->hreq.has_body && upstream_send_preamble(uc) > 0)
            n = send(uc->io.fd, out->data, out->len, MSG_NOSIGNAL);
        if (n > 0) {
            uc->connected = true;
            if (attach(s, uc, false) < 0)
                return uside_failed(s, BALANCER_CONNECT_ERR);
            out->off = (uint32_t)n;
            s->upstream.bytes_out += (uint64_t)n;
            r->connect_us = (int64_t)(now_us(s) - r->t_connect);
            arm_response(s);
            return STEP_RELAY;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
            upstream_close(uc, false); /* refused at once */
            return uside_failed(s, BALANCER_CONNECT_ERR);
        }
        if (attach(s, uc, true) < 0)
            return uside_failed(s, BALANCER_CONNECT_ERR);
        arm(s, HW_CONNECT, cfg->upstream_connect_timeout_ms);
        return STEP_CONNECT;
    }
    case UPSTREAM_REFUSED:
        return uside_failed(s, BALANCER_CONNECT_ERR);
    case UPSTREAM_ERROR:
        log_warn("connect to backend %s", upstream_id(up, idx));
        attempt_cancel(s);
        return step_reply(r, 502, RECORD_CONNECT);
    }
    return step_reply(r, 502, RECORD_CONNECT);
}

enum step uside_dispatch(struct session *s)
{
    struct request *r = s->req;
    if (!r->dispatched) {
        r->dispatched = true;
        r->active = true;
        s->ctx->active_requests++;
    }
    int got = attempt_pick(s);
    if (got < 0)
        return STEP_QUEUE;
    if (got == 0)
        return r->timed_out    ? step_reply(r, 504, RECORD_TIMEOUT)
               : r->tls_failed ? step_reply(r, 502, RECORD_UPSTREAM_TLS)
                               : step_reply(r, 502, RECORD_CONNECT);
    s->upstream.retain = true;
    return connect_backend(s, false);
}

/* The current attempt failed before any response byte reached the client:
 * retry (a fresh connection or another backend) or answer 502/504. */
enum step uside_failed(struct session *s, enum balancer_outcome outcome)
{
    struct request *r = s->req;
    bool was_reused = r->reused;
    uside_drop(s, false);
    if (r->resp_head_sent) {
        attempt_observe(s, outcome);
        return step_close(r, RECORD_UPSTREAM_RESET);
    }
    if (r->hedging && outcome != BALANCER_TIMEOUT) {
        /* a hedge runs: it goes on as the request's attempt */
        attempt_observe(s, outcome);
        attempt_note_failed(s, record_error_of(r, outcome));
        return uside_take_hedge(s);
    }
    hedge_end_if(s); /* upstream_ms passed: it waited as long */
    bool can_resend = !r->ub_discarded;
    /* The classic keep-alive race: a pooled connection closed by the
     * backend just as we reused it.  Retry once on a fresh connection. */
    if (outcome == BALANCER_RESET && was_reused && !r->fresh_retry_done &&
        can_resend && (r->hreq.idempotent || !r->hreq.has_body)) {
        r->fresh_retry_done = true;
        r->retries++;
        return connect_backend(s, true);
    }
    attempt_observe(s, outcome);
    r->timed_out = outcome == BALANCER_TIMEOUT;
    unsigned on = pcfg(s->req)->retry_on;
    bool retry = (outcome == BALANCER_CONNECT_ERR && (on & RETRY_CONNECT)) ||
                 (r->hreq.idempotent &&
                  ((outcome == BALANCER_RESET && (on & RETRY_RESET)) ||
                   (outcome == BALANCER_TIMEOUT && (on & RETRY_TIMEOUT))));
    enum record_error err = record_error_of(r, outcome);
    if (retry && attempt_may_retry(s)) {
        attempt_note_retried(s, err);
        return uside_dispatch(s);
    }
    return step_reply(r, outcome == BALANCER_TIMEOUT ? 504 : 502, err);
}

/* A 5xx head arrived and `[retry] on` names 5xx: when nothing of it went
 * out, the request is idempotent and another backend is left, the answer
 * is dropped (its connection closed: the body is unread) and the request
 * goes there.  True when it did. */
static bool retry_5xx(struct session *s)
{
    struct request *r = s->req;
    if (r->status < 500 || !(pcfg(s->req)->retry_on & RETRY_5XX) ||
        !r->hreq.idempotent || r->resp_head_sent)
        return false;
    uint64_t tried = r->tried | (uint64_t)1 << r->backend;
    if (!attempt_another_backend(s))
        return false; /* nowhere else to go: the 5xx is the answer */
    if (!attempt_may_retry(s))
        return false;
    attempt_observe(s, BALANCER_HTTP_ERROR); /* the balancer hears of it */
    attempt_note_failed(s, RECORD_OK);       /* and the backend's errors */
    uside_drop(s, true);
    r->tried = tried;
    r->retries++;
    s->ctx->retries_5xx++;
    return true;
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
              upstream_id(r->pool->up, (size_t)r->backend), why);
    attempt_observe(s, BALANCER_RESET);
    uside_drop(s, true);
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
    if (cfg_of(s)->request_id_echo && r->request_id_len) {
        r->resp.request_id = r->request_id; /* [proxy] request_id_echo */
        r->resp.request_id_len = r->request_id_len;
    }
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
    r->body_left = r->resp.content_length;
    s->upstream.msg = HALF_BODY;
    if (r->resp.tunnel) { /* 101: the exchange ends; the bytes go on */
        attempt_observe(s, BALANCER_OK);
        attempt_leave_budget(s);
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
            hedge_end_if(s); /* this attempt's head came first */
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
    uint32_t used = n;
    llhttp_errno_t e = HPE_OK;
    if (r->resp.mode == HTTP_BODY_LENGTH) {
        /* a Content-Length body is bytes counted: llhttp would only count
         * them too (its parser is set up anew for the next response) */
        if (used > r->body_left)
            used = (uint32_t)r->body_left;
        buf_append(pool, out, start, used);
        r->body_left -= used;
        if (r->body_left == 0) {
            u->msg = HALF_DONE;
            e = HPE_PAUSED;
        }
    } else {
        e = llhttp_execute(&r->rparser, start, n);
        if (e == HPE_PAUSED)
            used = (uint32_t)(llhttp_get_error_pos(&r->rparser) - start);
    }
    if (e == HPE_PAUSED) {
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
        return uside_failed(s, BALANCER_RESET);
    /* truncated response: never present it as complete */
    uside_drop(s, false);
    withdraw_response(s);
    if (!r->resp_head_sent && r->hreq.idempotent)
        return uside_failed(s, BALANCER_RESET); /* nothing reached the client */
    attempt_observe(s, BALANCER_RESET);
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
        arm(s, HW_RESPONSE, pcfg(s->req)->upstream_timeout_ms);
        return STEP_MOVED;
    }
    if (n == 0)
        return STEP_WAIT;
    if (u->eof || (u->bytes_in > 0 && u->msg != HALF_HEAD))
        return upstream_eof(s);
    return uside_failed(s, BALANCER_RESET);
}

enum step uside_io(struct session *s, unsigned events, bool connecting)
{
    struct request *r = s->req;
    if (connecting) { /* writable, or a TLS handshake's event */
        int rc = upstream_finish_connect(s->uc);
        r->tls_failed = s->uc->tls_failed;
        if (rc == 0)
            return STEP_WAIT;
        if (rc < 0)
            return uside_failed(s, BALANCER_CONNECT_ERR);
        r->connect_us = (int64_t)(now_us(s) - r->t_connect);
        arm_response(s);
        return STEP_RELAY;
    }
    /* a TLS read may wait for writability */
    if ((events & LOOP_READ) ||
        (events & half_tr_wants(&s->upstream) & LOOP_WRITE))
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
    return uside_failed(s, BALANCER_RESET);
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
    if (!s->uc)
        return;
    const struct config *cfg = pcfg(r);
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
    half_use_conn(&s->upstream, NULL);
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
    hedge_end_if(s);
    attempt_leave_budget(s);
    if (r->in_flight)
        attempt_observe(s, r->status >= 500 || r->status == 429
                               ? BALANCER_HTTP_ERROR
                               : BALANCER_OK);
    pool_or_close(s);
    end_exchange(s);
}

void uside_abort(struct session *s, enum record_error err)
{
    hedge_end_if(s);
    if (s->req)
        attempt_leave_budget(s);
    if (s->req && s->req->in_flight) {
        if (err == RECORD_UPSTREAM_RESET)
            attempt_observe(s, BALANCER_RESET);
        else
            attempt_cancel(s);
    }
    uside_drop(s, false);
    end_exchange(s);
}

void uside_init(loop_io_fn *on_io, loop_io_fn *on_hedge_io,
                loop_timer_fn *on_hedge_timer)
{
    upstream_io_fn = on_io;
    hedge_init(on_hedge_io, on_hedge_timer);
    http_settings_init(&resp_settings);
    resp_settings.on_headers_complete = on_headers_complete;
    resp_settings.on_body = on_body;
    resp_settings.on_message_complete = on_message_complete;
    llhttp_init(&resp_parser, HTTP_RESPONSE, &resp_settings);
}
