/*
 * client_upstream: the upstream half of a session - picking a backend,
 * taking a pooled connection or connecting, sending the request, parsing
 * and relaying the response, and what happens when an attempt fails
 * (retry on a fresh connection or another backend, 502/504).
 */
#include "client_impl.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "log.h"

static llhttp_settings_t resp_settings;

/* The current upstream attempt failed before any response byte. */
void client_upstream_failed(struct client *c, enum balancer_outcome outcome)
{
    bool was_reused = c->reused;
    client_drop_upstream(c, false);
    if (c->resp_head_sent) {
        client_observe(c, outcome);
        client_close(c, RECORD_UPSTREAM_RESET);
        return;
    }
    bool can_resend = !c->ub_discarded;
    /* The classic keep-alive race: a pooled connection closed by the
     * backend just as we reused it.  Retry once on a fresh connection. */
    if (outcome == BALANCER_RESET && was_reused && !c->fresh_retry_done &&
        can_resend && (c->req.idempotent || !c->req.has_body)) {
        c->fresh_retry_done = true;
        c->retries++;
        client_connect_backend(c, true);
        return;
    }
    client_observe(c, outcome);
    c->timed_out = outcome == BALANCER_TIMEOUT;
    bool retry = outcome == BALANCER_CONNECT_ERR ||
                 ((outcome == BALANCER_RESET || outcome == BALANCER_TIMEOUT) &&
                  c->req.idempotent);
    enum record_error err = outcome == BALANCER_CONNECT_ERR ? RECORD_CONNECT
                            : outcome == BALANCER_TIMEOUT
                                ? RECORD_TIMEOUT
                                : RECORD_UPSTREAM_RESET;
    if (retry && can_resend && c->retries < cfg_of(c)->max_retries) {
        /* The client will not see this failure, but the backend's error
         * counters must (its ejection would otherwise be unexplained). */
        if (c->ctx->on_attempt_failed)
            c->ctx->on_attempt_failed(
                c->ctx->record_arg, c->backend,
                upstream_id(c->gen->up, (size_t)c->backend), err);
        c->tried |= (uint64_t)1 << c->backend;
        c->retries++;
        client_dispatch(c);
        return;
    }
    client_reply_error(c, outcome == BALANCER_TIMEOUT ? 504 : 502, err);
}

void client_on_upstream_timeout(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct client *c = t->ctx;
    if (c->state == CS_CONNECT) {
        client_upstream_failed(c, BALANCER_CONNECT_ERR);
    } else if (!c->resp_started && c->req.idempotent) {
        client_upstream_failed(c, BALANCER_TIMEOUT); /* retried elsewhere */
    } else if (!c->resp_head_sent) {
        client_observe(c, BALANCER_TIMEOUT);
        client_reply_error(c, 504, RECORD_TIMEOUT);
    } else {
        client_observe(c, BALANCER_TIMEOUT);
        client_close(c, RECORD_TIMEOUT);
        return;
    }
    client_progress(c);
}

static void start_response_parser(struct client *c)
{
    llhttp_init(&c->rparser, HTTP_RESPONSE, &resp_settings);
    c->rparser.data = &c->rhead;
    c->rhead.headers = c->headers + c->max_headers;
    c->rhead.max_headers = c->max_headers;
    http_head_reset(&c->rhead, c->rb);
    c->rb_len = c->rb_off = 0;
    c->resp_started = c->resp_head_done = c->resp_complete = false;
    c->rhead_ready = c->upstream_extra = c->rb_filled = false;
    c->ninterim = 0;
    c->t_first_byte = 0;
}

/* Attaches a connection (fresh or pooled) to the session. */
static int attach(struct client *c, struct uconn *uc, bool connecting)
{
    uc->io.fn = client_on_upstream_io;
    uc->io.ctx = c;
    unsigned ev = connecting ? LOOP_WRITE : LOOP_READ;
    int rc = uc->io.registered
                 ? loop_io_mod(c->ctx->loop, &uc->io, ev)
                 : loop_io_add(c->ctx->loop, &uc->io, uc->io.fd, ev);
    if (rc < 0) {
        upstream_close(uc, false);
        return -1;
    }
    c->uc = uc;
    c->ub_off = 0; /* (re)send everything we hold */
    start_response_parser(c);
    return 0;
}

void client_arm_upstream_timer(struct client *c, unsigned ms)
{
    loop_timer_after(c->ctx->loop, &c->utimer, (uint64_t)ms * 1000);
}

void client_connect_backend(struct client *c, bool fresh)
{
    struct upstream *up = c->gen->up;
    size_t idx = (size_t)c->backend;
    struct uconn *uc = NULL;
    if (!fresh && cfg_of(c)->persistent)
        uc = upstream_get_idle(up, idx);
    if (uc) {
        c->reused = true;
        c->connect_us = -1;
        if (attach(c, uc, false) < 0) {
            client_upstream_failed(c, BALANCER_RESET);
            return;
        }
        c->state = CS_RELAY;
        client_arm_upstream_timer(c, cfg_of(c)->upstream_timeout_ms);
        return;
    }
    c->reused = false;
    c->t_connect = now_us(c);
    /* A pooled connection carries many requests: TCP_NODELAY at once.  A
     * one-shot connection whose body-less request leaves in one send()
     * never needs it (client_flush_upstream sets it before a later
     * write). */
    bool nodelay = cfg_of(c)->persistent || c->req.has_body;
    switch (upstream_connect(up, idx, nodelay, &uc)) {
    case UPSTREAM_CONNECTED:
        c->connect_us = 0;
        if (attach(c, uc, false) < 0) {
            client_upstream_failed(c, BALANCER_CONNECT_ERR);
            return;
        }
        c->state = CS_RELAY;
        client_arm_upstream_timer(c, cfg_of(c)->upstream_timeout_ms);
        return;
    case UPSTREAM_IN_PROGRESS: {
        /* On loopback and fast links the handshake is often complete by
         * now: try the request at once, which saves a wake-up, a
         * getsockopt and an epoll_ctl; a socket still connecting answers
         * EAGAIN and we wait for writability as usual.  A request with
         * a body waits: its body is checked before any byte leaves. */
        ssize_t n = -1;
        errno = EAGAIN;
        if (!c->req.has_body)
            n = send(uc->io.fd, c->ub, c->ub_len, MSG_NOSIGNAL);
        if (n > 0) {
            uc->connected = true;
            if (attach(c, uc, false) < 0) {
                client_upstream_failed(c, BALANCER_CONNECT_ERR);
                return;
            }
            c->ub_off = (size_t)n;
            c->connect_us = (int64_t)(now_us(c) - c->t_connect);
            c->state = CS_RELAY;
            client_arm_upstream_timer(c, cfg_of(c)->upstream_timeout_ms);
            return;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
            upstream_close(uc, false); /* refused at once */
            client_upstream_failed(c, BALANCER_CONNECT_ERR);
            return;
        }
        if (attach(c, uc, true) < 0) {
            client_upstream_failed(c, BALANCER_CONNECT_ERR);
            return;
        }
        c->state = CS_CONNECT;
        client_arm_upstream_timer(c, cfg_of(c)->upstream_connect_timeout_ms);
        return;
    }
    case UPSTREAM_REFUSED:
        client_upstream_failed(c, BALANCER_CONNECT_ERR);
        return;
    case UPSTREAM_ERROR:
        log_warn("connect to backend %s", upstream_id(up, idx));
        client_cancel_pick(c);
        client_reply_error(c, 502, RECORD_CONNECT);
        return;
    }
}

/* Picks a backend not tried yet for this request and starts sending. */
void client_dispatch(struct client *c)
{
    if (!c->gen) {
        c->gen = c->ctx->gen;
        c->gen->refs++;
    }
    unsigned inflight = 0;
    int idx = balancer_pick(c->gen->bal, c->tried, now_us(c), &inflight);
    if (idx < 0 && c->timed_out) {
        client_reply_error(c, 504, RECORD_TIMEOUT); /* the last try timed out */
        return;
    }
    if (idx < 0) {
        client_reply_error(c, 502, RECORD_CONNECT);
        return;
    }
    c->backend = idx;
    c->in_flight = true;
    c->inflight_at_dispatch = inflight;
    c->t_dispatch = now_us(c);
    client_connect_backend(c, false);
}

static int resp_on_headers_complete(llhttp_t *p)
{
    struct client *c = container_of(p, struct client, rparser);
    http_response_check(p, &c->rhead, c->method, c->parser.http_minor,
                        &c->resp);
    if (c->resp.mode == HTTP_BODY_NONE)
        p->flags |= F_SKIPBODY; /* HEAD/1xx/204/304: never wait for a body */
    return HPE_PAUSED;
}

static int resp_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct client *c = container_of(p, struct client, rparser);
    c->cb_len += http_frame_body(c->cb + c->cb_len, at, len,
                                 c->resp.mode == HTTP_BODY_CHUNKED);
    return 0;
}

static int resp_on_message_complete(llhttp_t *p)
{
    struct client *c = container_of(p, struct client, rparser);
    if (c->resp.mode == HTTP_BODY_CHUNKED)
        cb_append(c, "0\r\n\r\n", 5);
    c->resp_complete = true;
    return HPE_PAUSED;
}

/* Writes pending bytes upstream.  Returns true if anything moved. */
bool client_flush_upstream(struct client *c)
{
    if (!c->uc || !c->uc->connected || c->ub_off == c->ub_len)
        return false;
    upstream_nodelay(c->uc);
    ssize_t n = send(c->uc->io.fd, c->ub + c->ub_off, c->ub_len - c->ub_off,
                     MSG_NOSIGNAL);
    if (n > 0) {
        c->ub_off += (size_t)n;
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    if (!c->resp_started && c->rb) {
        /* the backend may have answered before it stopped reading: an
         * early response (413, 403, ...) is in the socket, read it */
        struct uconn *uc = c->uc;
        client_read_upstream(c);
        if (c->uc != uc || c->state != CS_RELAY)
            return true; /* read_upstream already failed the attempt */
    }
    if (c->resp_started) {
        /* the backend answered early and stopped reading: keep relaying
         * the response, drop the rest of the request body */
        c->ub_off = c->ub_len;
        c->req_complete = false;
        c->want_close = true;
        return true;
    }
    client_upstream_failed(c, BALANCER_RESET);
    return true;
}

/* A response head was built into `cb` but not one byte of it reached the
 * client yet: take it back so that an error can still be answered. */
static void withdraw_response(struct client *c)
{
    if (c->resp_head_sent && c->resp_bytes == 0) {
        c->cb_len = c->cb_off = 0;
        c->resp_head_sent = false;
    }
}

static void bad_response(struct client *c, const char *why)
{
    log_debug("%s: bad response from %s: %s", c->addr,
              upstream_id(c->gen->up, (size_t)c->backend), why);
    client_observe(c, BALANCER_RESET);
    client_drop_upstream(c, true);
    withdraw_response(c);
    if (c->resp_head_sent) {
        client_close(c, RECORD_BAD_RESPONSE);
        return;
    }
    client_reply_error(c, 502, RECORD_BAD_RESPONSE);
}

/* Parses response head bytes in `rb`.  Returns 1 when a head is ready in
 * rhead (rhead_ready), 0 when more bytes are needed, -1 when the response
 * was refused (the session answered or closed). */
static int parse_response_head(struct client *c)
{
    if (c->rb_off == c->rb_len)
        return 0;
    const char *start = c->rb + c->rb_off;
    llhttp_errno_t e =
        llhttp_execute(&c->rparser, start, c->rb_len - c->rb_off);
    if (e == HPE_OK) {
        c->rb_off = c->rb_len;
        if (c->rb_len >= c->ctx->buf_size) {
            bad_response(c, "response head too large");
            return -1;
        }
        return 0;
    }
    if (e != HPE_PAUSED) {
        bad_response(c, llhttp_errno_name(e));
        return -1;
    }
    c->rb_off = (size_t)(llhttp_get_error_pos(&c->rparser) - c->rb);
    llhttp_resume(&c->rparser);
    if (c->resp.status != 0) {
        bad_response(c, c->resp.error);
        return -1;
    }
    if (c->resp.interim && ++c->ninterim > HTTP_MAX_INTERIM) {
        bad_response(c, "too many interim responses");
        return -1;
    }
    c->rhead_ready = true;
    return 1;
}

/* Room in `cb` for a head: drops what was sent, then gives what is left
 * after the bytes still queued (minus the framing slack). */
static size_t cb_head_room(struct client *c)
{
    if (c->cb_off > 0 && c->cb_off == c->cb_len)
        c->cb_off = c->cb_len = 0;
    return c->ctx->buf_size - c->cb_len - FRAMING_SLACK;
}

/* An interim (1xx) head is ready: relay it to an HTTP/1.1 client (an
 * HTTP/1.0 one does not know them, RFC 9110 15.2), then parse the final
 * response from a fresh parser.  Returns true on progress, false while
 * `cb` has no room for the head (the client must read first). */
static bool relay_interim(struct client *c)
{
    if (c->parser.http_major == 1 && c->parser.http_minor == 1) {
        bool queued = c->cb_off < c->cb_len;
        int n =
            http_build_response_head(c->cb + c->cb_len, cb_head_room(c),
                                     &c->rparser, &c->rhead, &c->resp, 1, true);
        if (n < 0 && queued)
            return false;
        if (n < 0) {
            bad_response(c, "interim response head too large");
            return true;
        }
        c->cb_len += (size_t)n;
    }
    memmove(c->rb, c->rb + c->rb_off, c->rb_len - c->rb_off);
    c->rb_len -= c->rb_off;
    c->rb_off = 0;
    llhttp_reset(&c->rparser);
    http_head_reset(&c->rhead, c->rb);
    c->rhead_ready = false;
    return true;
}

/* The final response head is ready: build the client's head into `cb`.
 * Returns 1 when it was built, 0 when the session must wait for room, -1
 * when the response was refused (the session answered or closed). */
static int build_final_head(struct client *c)
{
    c->status = c->rparser.status_code;
    bool ka = c->keep_alive && !c->want_close && !c->ctx->draining &&
              c->resp.mode != HTTP_BODY_CLOSE;
    bool queued = c->cb_off < c->cb_len;
    int n = http_build_response_head(c->cb + c->cb_len, cb_head_room(c),
                                     &c->rparser, &c->rhead, &c->resp,
                                     c->parser.http_minor, ka);
    if (n < 0 && queued)
        return 0; /* interim heads still queued: wait for the client */
    if (n < 0) {
        bad_response(c, "response head too large for the buffer");
        return -1;
    }
    if (!ka)
        c->want_close = true;
    c->cb_len += (size_t)n;
    c->rhead_ready = false;
    c->resp_head_done = true;
    c->resp_head_sent = true;
    if (c->rb_off == c->rb_len)
        c->rb_off = c->rb_len = 0;
    return 1;
}

/* Moves response bytes from `rb` to `cb` as room allows.  Returns true if it
 * made progress. */
bool client_pump_response(struct client *c)
{
    if (!c->rb || c->resp_complete || c->state != CS_RELAY)
        return false;
    size_t size = c->ctx->buf_size;
    if (!c->resp_head_done) {
        if (!c->rhead_ready) {
            int r = parse_response_head(c);
            if (r <= 0)
                return r < 0;
        }
        if (c->resp.interim)
            return relay_interim(c);
        int r = build_final_head(c);
        if (r <= 0)
            return r < 0;
        /* fall through to the body, which may be empty */
    }
    if (c->cb_off > 0 && c->cb_off == c->cb_len)
        c->cb_off = c->cb_len = 0;
    else if (c->cb_off > 0 && size - c->cb_len < size / 4) {
        memmove(c->cb, c->cb + c->cb_off, c->cb_len - c->cb_off);
        c->cb_len -= c->cb_off;
        c->cb_off = 0;
    }
    size_t room = size - c->cb_len;
    if (room <= FRAMING_SLACK)
        return false;
    size_t n = c->rb_len - c->rb_off;
    if (n > room - FRAMING_SLACK)
        n = room - FRAMING_SLACK;
    const char *start = c->rb + c->rb_off;
    llhttp_errno_t e = llhttp_execute(&c->rparser, start, n);
    if (e == HPE_OK) {
        c->rb_off += n;
    } else if (e == HPE_PAUSED) {
        c->rb_off += (size_t)(llhttp_get_error_pos(&c->rparser) - start);
        llhttp_resume(&c->rparser);
        if (c->rb_off < c->rb_len)
            c->upstream_extra = true; /* bytes nobody asked for */
        loop_timer_cancel(c->ctx->loop, &c->utimer);
    } else {
        bad_response(c, llhttp_errno_name(e));
        return true;
    }
    if (c->rb_off == c->rb_len)
        c->rb_off = c->rb_len = 0;
    return n > 0 || c->resp_complete;
}

/* The backend closed its side. */
static void upstream_eof(struct client *c)
{
    if (c->resp_head_done && !c->resp_complete) {
        llhttp_finish(&c->rparser);
        if (c->resp_complete) { /* a read-until-close body ended */
            loop_timer_cancel(c->ctx->loop, &c->utimer);
            return;
        }
    }
    if (c->resp_complete)
        return;
    if (!c->resp_started) {
        client_upstream_failed(c, BALANCER_RESET);
        return;
    }
    /* truncated response: never present it as complete */
    client_drop_upstream(c, false);
    withdraw_response(c);
    if (!c->resp_head_sent && c->req.idempotent) {
        /* nothing of it reached the client: as if it never started */
        client_upstream_failed(c, BALANCER_RESET);
        return;
    }
    client_observe(c, BALANCER_RESET);
    if (c->resp_head_sent) {
        c->error = RECORD_UPSTREAM_RESET;
        client_flush(c);
        if (c->state != CS_CLOSED)
            client_close(c, RECORD_UPSTREAM_RESET);
        return;
    }
    client_reply_error(c, 502, RECORD_UPSTREAM_RESET);
}

void client_read_upstream(struct client *c)
{
    if (!c->rb || c->resp_complete)
        return;
    size_t size = c->ctx->buf_size;
    if (c->rb_len == size)
        return; /* full: wait for the client to drain */
    size_t want = size - c->rb_len;
    ssize_t n = recv(c->uc->io.fd, c->rb + c->rb_len, want, 0);
    if (n > 0) {
        /* a read that filled its room may have left bytes in the socket */
        c->rb_filled = (size_t)n == want;
        if (!c->resp_started) {
            c->resp_started = true;
            c->t_first_byte = now_us(c);
        }
        c->rb_len += (size_t)n;
        client_arm_upstream_timer(c, cfg_of(c)->upstream_timeout_ms);
        return;
    }
    if (n == 0) {
        upstream_eof(c);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
    if (c->resp_started && c->resp_head_done) {
        upstream_eof(c);
        return;
    }
    client_upstream_failed(c, BALANCER_RESET);
}

void client_on_upstream_io(struct loop *loop, struct loop_io *io,
                           unsigned events)
{
    (void)loop;
    struct client *c = io->ctx;
    if (c->state == CS_CONNECT) {
        if (!(events & LOOP_WRITE))
            return;
        if (upstream_finish_connect(c->uc) < 0) {
            client_upstream_failed(c, BALANCER_CONNECT_ERR);
            client_progress(c);
            return;
        }
        c->connect_us = (int64_t)(now_us(c) - c->t_connect);
        c->state = CS_RELAY;
        client_arm_upstream_timer(c, cfg_of(c)->upstream_timeout_ms);
    } else if (events & LOOP_READ) {
        client_read_upstream(c);
    }
    if (c->state != CS_CLOSED)
        client_progress(c);
}

/* The pool-return rule: after a finished exchange, the connection goes
 * back to its backend's pool only when it is known to hold nothing beyond
 * the response - persistent mode, the response read whole and keep-alive
 * allowed by the backend, the request read and sent whole, no byte after
 * the response in `rb`, and (checked by upstream_release when the last
 * read filled its room) none waiting in the socket.  Anything else closes
 * it: a byte nobody asked for must never become the next request's
 * response.  A finished unpooled exchange ends with an RST (no TIME_WAIT). */
void client_upstream_done(struct client *c)
{
    loop_timer_cancel(c->ctx->loop, &c->utimer);
    if (!c->uc)
        return;
    bool reusable = cfg_of(c)->persistent && c->resp_complete &&
                    c->resp.upstream_keep_alive && c->req_complete &&
                    c->ub_off == c->ub_len && !c->upstream_extra;
    if (reusable)
        upstream_release(c->uc, c->rb_filled);
    else
        upstream_close(c->uc,
                       c->resp_complete && cfg_of(c)->pool_reset_on_close);
    c->uc = NULL;
}

void client_upstream_init(void)
{
    http_settings_init(&resp_settings);
    resp_settings.on_headers_complete = resp_on_headers_complete;
    resp_settings.on_body = resp_on_body;
    resp_settings.on_message_complete = resp_on_message_complete;
}
