/*
 * client: the session state machine and its client half.  A session is two
 * halves: the client side (socket, input buffer `in`, output buffer `cb`,
 * request parser; this file) and the upstream side (connection, output
 * buffer `ub`, input buffer `rb`, response parser; client_upstream.c).
 * Bytes only move when the buffer they go to has room, so a slow peer on
 * either side stops reading from the other (backpressure) and memory per
 * session stays at four buffers.
 */
#include "client_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "balancer.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "record.h"
#include "upstream.h"

static llhttp_settings_t req_settings;

static const char *client_state_str(enum client_state s)
{
    switch (s) {
    case CS_IDLE:
        return "idle";
    case CS_HEAD:
        return "head";
    case CS_CONNECT:
        return "connect";
    case CS_RELAY:
        return "relay";
    case CS_REPLY:
        return "reply";
    case CS_CLOSED:
        return "closed";
    }
    return "?";
}

static bool settings_ready;

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- borrowed buffers ---- */

static char *buf_get(struct client_ctx *ctx)
{
    if (ctx->nfree_bufs > 0)
        return ctx->free_bufs[--ctx->nfree_bufs];
    return malloc(ctx->buf_size);
}

static void buf_put(struct client_ctx *ctx, char **b)
{
    if (!*b)
        return;
    if (ctx->nfree_bufs == ctx->free_cap) {
        size_t cap = ctx->free_cap ? ctx->free_cap * 2 : 64;
        char **nb = realloc(ctx->free_bufs, cap * sizeof(*nb));
        if (!nb || cap > 4096) {
            free(*b);
            *b = NULL;
            if (nb)
                ctx->free_bufs = nb;
            return;
        }
        ctx->free_bufs = nb;
        ctx->free_cap = cap;
    }
    ctx->free_bufs[ctx->nfree_bufs++] = *b;
    *b = NULL;
}

void client_ctx_cleanup(struct client_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nfree_bufs; i++)
        free(ctx->free_bufs[i]);
    free(ctx->free_bufs);
    ctx->free_bufs = NULL;
    ctx->nfree_bufs = ctx->free_cap = 0;
}

void client_gen_put(struct client_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    balancer_destroy(g->bal);
    upstream_destroy(g->up);
    free(g);
}

/* ---- timers ---- */

static void arm_client_timer(struct client *c, enum client_timer_kind kind,
                             unsigned ms)
{
    c->timer_kind = kind;
    loop_timer_after(c->ctx->loop, &c->timer, (uint64_t)ms * 1000);
}

static void cancel_client_timer(struct client *c)
{
    c->timer_kind = CT_NONE;
    loop_timer_cancel(c->ctx->loop, &c->timer);
}

/* ---- the record ---- */

static void emit_record(struct client *c)
{
    struct client_ctx *ctx = c->ctx;
    if (!ctx->on_record)
        return;
    uint64_t now = now_us(c);
    struct record r = {
        .wall_us = c->wall_start,
        .client_addr = c->addr,
        .method = c->method_name,
        .path = c->path,
        .path_len = c->path_len,
        .backend = c->backend,
        .status = c->status,
        .req_bytes = c->req_bytes,
        .resp_bytes = c->resp_bytes,
        .connect_us = c->connect_us,
        .ttfb_us = -1,
        .upstream_us = -1,
        .total_us = (int64_t)(now - c->t_start),
        .reused = c->reused,
        .retries = c->retries,
        .error = c->error,
    };
    if (c->backend >= 0 && c->gen) {
        r.backend_id = upstream_id(c->gen->up, (size_t)c->backend);
        r.backend_addr = upstream_addr(c->gen->up, (size_t)c->backend);
        if (c->t_first_byte)
            r.ttfb_us = (int64_t)(c->t_first_byte - c->t_dispatch);
        if (c->resp_complete)
            r.upstream_us = (int64_t)(now - c->t_dispatch);
    }
    ctx->on_record(ctx->record_arg, &r);
}

/* Tells the balancer how the request went on the current backend. */
void client_observe(struct client *c, enum balancer_outcome outcome)
{
    if (!c->in_flight)
        return;
    c->in_flight = false;
    balancer_observe(c->gen->bal, (size_t)c->backend, now_us(c) - c->t_dispatch,
                     outcome, c->inflight_at_dispatch, now_us(c));
}

void client_cancel_pick(struct client *c)
{
    if (!c->in_flight)
        return;
    c->in_flight = false;
    balancer_cancel(c->gen->bal, (size_t)c->backend);
}

/* ---- upstream connection handling ---- */

void client_drop_upstream(struct client *c, bool reset)
{
    loop_timer_cancel(c->ctx->loop, &c->utimer);
    if (c->uc) {
        upstream_close(c->uc, reset);
        c->uc = NULL;
    }
}

/* Resets the per-request state after it finished (or before a new one). */
static void reset_request(struct client *c)
{
    c->req_complete = c->body_started = c->body_too_big = false;
    c->body_total = 0;
    c->backend = -1;
    c->in_flight = false;
    c->tried = 0;
    c->retries = 0;
    c->reused = c->fresh_retry_done = c->ub_discarded = false;
    c->timed_out = false;
    c->ub_len = c->ub_off = c->rb_len = c->rb_off = 0;
    c->resp_started = c->resp_head_done = c->resp_head_sent = false;
    c->resp_complete = c->rhead_ready = c->upstream_extra = false;
    c->rb_filled = false;
    c->ninterim = 0;
    c->t_dispatch = c->t_connect = c->t_first_byte = 0;
    c->connect_us = -1;
    c->req_bytes = c->resp_bytes = 0;
    c->status = 0;
    c->error = RECORD_OK;
    c->path_len = 0;
    c->path[0] = '\0';
    c->method_name[0] = '\0';
}

static void return_buffers(struct client *c)
{
    buf_put(c->ctx, &c->ub);
    buf_put(c->ctx, &c->rb);
    if (c->cb_off == c->cb_len)
        buf_put(c->ctx, &c->cb);
}

/* Finishes the current request after its response (or our own answer) was
 * fully written to the client. */
static void finish_request(struct client *c)
{
    struct client_ctx *ctx = c->ctx;
    if (c->in_flight) {
        enum balancer_outcome o = BALANCER_OK;
        if (c->status >= 500 || c->status == 429)
            o = BALANCER_HTTP_ERROR;
        client_observe(c, o);
    }
    emit_record(c);
    client_upstream_done(c);
    if (!c->req_complete || c->resp.mode == HTTP_BODY_CLOSE)
        c->want_close = true;
    /* A client that half-closed after pipelining still gets an answer to
     * every complete request it sent before the FIN (close comes when
     * none is left: see client_progress). */
    bool close_now = c->want_close || !c->keep_alive || ctx->draining ||
                     (c->client_eof && c->in_off == c->in_len);
    if (c->gen) {
        client_gen_put(c->gen);
        c->gen = NULL;
    }
    reset_request(c);
    return_buffers(c);
    if (close_now) {
        c->state = CS_REPLY; /* nothing left to record */
        client_close(c, RECORD_OK);
        return;
    }
    /* Next request: move any pipelined bytes to the front. */
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    http_head_reset(&c->head, c->in);
    llhttp_resume(&c->parser);
    c->state = CS_IDLE;
    arm_client_timer(c, CT_KEEPALIVE, cfg_of(c)->keepalive_timeout_ms);
}

/* Queues an answer of our own (error) for the current request.  The
 * connection persists afterwards only when the request was read whole. */
void client_reply_error(struct client *c, int status, enum record_error err)
{
    client_drop_upstream(c, false);
    if (!c->cb)
        c->cb = buf_get(c->ctx);
    if (!c->cb) {
        client_close(c, err);
        return;
    }
    if (c->resp_head_sent || (c->cb_off > 0 && c->cb_off < c->cb_len)) {
        /* part of a response (or of a relayed 1xx) is already out: only
         * closing is honest */
        c->error = err;
        client_close(c, err);
        return;
    }
    bool close = !c->req_complete || !c->keep_alive || c->ctx->draining;
    c->want_close = c->want_close || close;
    c->cb_len = c->cb_off = 0;
    c->cb_len = (size_t)http_error_response(c->cb, c->ctx->buf_size, status,
                                            c->want_close);
    c->status = status;
    c->error = err;
    c->state = CS_REPLY;
    cancel_client_timer(c);
}

/* ---- llhttp callbacks: request ---- */

static int req_on_headers_complete(llhttp_t *p)
{
    /* lbproxy does not tunnel upgrades: the request stays plain HTTP and
     * the Upgrade header is dropped, so the parser must not switch. */
    p->upgrade = 0;
    return HPE_PAUSED;
}

/* A chunk size line was parsed (its size in p->content_length): refuse
 * the body as soon as the announced total passes the limit, before any
 * byte of that chunk is forwarded (else llhttp would wait for up to
 * 2^64-1 bytes). */
static int req_on_chunk_header(llhttp_t *p)
{
    struct client *c = container_of(p, struct client, parser);
    uint64_t max = cfg_of(c)->max_body_bytes;
    if (p->content_length > max || c->body_total > max - p->content_length) {
        c->body_too_big = true;
        return -1;
    }
    c->body_total += p->content_length;
    return 0;
}

static int req_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct client *c = container_of(p, struct client, parser);
    c->ub_len += http_frame_body(c->ub + c->ub_len, at, len, c->req.chunked);
    return 0;
}

static int req_on_message_complete(llhttp_t *p)
{
    struct client *c = container_of(p, struct client, parser);
    if (c->req.chunked)
        ub_append(c, "0\r\n\r\n", 5);
    c->req_complete = true;
    return HPE_PAUSED;
}

static void init_settings(void)
{
    if (settings_ready)
        return;
    http_settings_init(&req_settings);
    req_settings.on_headers_complete = req_on_headers_complete;
    req_settings.on_body = req_on_body;
    req_settings.on_chunk_header = req_on_chunk_header;
    req_settings.on_message_complete = req_on_message_complete;
    client_upstream_init();
    settings_ready = true;
}

/* ---- request side ---- */

static void copy_request_line(struct client *c)
{
    const char *m = llhttp_method_name((llhttp_method_t)c->parser.method);
    size_t n = strlen(m);
    if (n >= sizeof(c->method_name))
        n = sizeof(c->method_name) - 1;
    memcpy(c->method_name, m, n);
    c->method_name[n] = '\0';
    n = c->head.url.len;
    if (n >= sizeof(c->path))
        n = sizeof(c->path) - 1;
    memcpy(c->path, c->head.base + c->head.url.off, n);
    c->path[n] = '\0';
    c->path_len = n;
}

/* Answers a request we reject before it reaches a backend. */
static void reject_request(struct client *c, int status)
{
    c->keep_alive = false;
    c->want_close = true;
    client_reply_error(c, status, RECORD_BAD_REQUEST);
}

/* A whole request head is in `in`: check it and send it on its way. */
static void handle_head(struct client *c)
{
    const struct config *cfg = cfg_of(c);
    c->method = (int)c->parser.method;
    copy_request_line(c);
    if (c->in_off > cfg->max_head_bytes) {
        reject_request(c, 431);
        return;
    }
    if (http_request_check(&c->parser, &c->head, cfg->max_body_bytes,
                           &c->req) != 0) {
        log_debug("%s: %d %s", c->addr, c->req.status, c->req.error);
        reject_request(c, c->req.status);
        return;
    }
    c->keep_alive = c->req.keep_alive && !c->ctx->draining;
    c->ub = buf_get(c->ctx);
    c->rb = buf_get(c->ctx);
    if (!c->cb)
        c->cb = buf_get(c->ctx);
    if (!c->ub || !c->rb || !c->cb) {
        client_reply_error(c, 503, RECORD_BAD_REQUEST);
        return;
    }
    int n = http_build_request_head(c->ub, c->ctx->buf_size - FRAMING_SLACK,
                                    &c->parser, &c->head, &c->req, c->ip,
                                    !cfg->persistent);
    if (n < 0) {
        reject_request(c, 431);
        return;
    }
    c->ub_len = (size_t)n;
    c->req_bytes = c->in_off;
    llhttp_resume(&c->parser);
    if (c->req.expect_continue && c->in_off == c->in_len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        cb_append(c, cont, sizeof(cont) - 1);
    }
    if (c->req.has_body) {
        arm_client_timer(c, CT_BODY, cfg->client_body_timeout_ms);
    } else {
        cancel_client_timer(c);
        /* End the message now, so that an answer of our own (a connect
         * failure found at once) can keep the connection alive. */
        client_pump_request(c);
        if (c->state == CS_REPLY || c->state == CS_CLOSED)
            return;
    }
    client_dispatch(c);
}

/* Parses request head bytes in `in`.  Returns true if it made progress. */
static bool parse_head(struct client *c)
{
    const struct config *cfg = cfg_of(c);
    if (c->state == CS_IDLE) {
        c->state = CS_HEAD;
        c->t_start = now_us(c);
        c->wall_start = wall_us();
        arm_client_timer(c, CT_HEADER, cfg->client_header_timeout_ms);
    }
    const char *start = c->in + c->in_off;
    llhttp_errno_t e = llhttp_execute(&c->parser, start, c->in_len - c->in_off);
    if (e == HPE_OK) {
        c->in_off = c->in_len;
        if (c->in_len > cfg->max_head_bytes ||
            c->in_len >= c->ctx->buf_size - FRAMING_SLACK) {
            copy_request_line(c);
            reject_request(c, 431);
        }
        return true;
    }
    if (e == HPE_PAUSED) {
        c->in_off = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
        handle_head(c);
        return true;
    }
    copy_request_line(c);
    log_debug("%s: bad request: %s", c->addr, llhttp_errno_name(e));
    if (c->head.too_many) {
        reject_request(c, 431);
        return true;
    }
    size_t err_off = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
    reject_request(c, http_parse_error_status(e, c->in, c->in_len, err_off));
    return true;
}

/* Moves request body bytes from `in` to `ub` as room allows. */
bool client_pump_request(struct client *c)
{
    if (c->req_complete || !c->ub)
        return false;
    if (c->body_started && c->in_off == c->in_len)
        return false;
    size_t size = c->ctx->buf_size;
    if (c->ub_off > 0 && c->ub_off == c->ub_len && c->ub_len > 0) {
        c->ub_len = c->ub_off = 0; /* all sent: start over */
        c->ub_discarded = true;
    } else if (c->ub_off > 0 && size - c->ub_len < size / 4) {
        memmove(c->ub, c->ub + c->ub_off, c->ub_len - c->ub_off);
        c->ub_len -= c->ub_off;
        c->ub_off = 0;
        c->ub_discarded = true;
    }
    size_t room = size - c->ub_len;
    if (room <= FRAMING_SLACK)
        return false;
    size_t n = c->in_len - c->in_off;
    if (n > room - FRAMING_SLACK)
        n = room - FRAMING_SLACK;
    if (n == 0 && c->body_started)
        return false;
    c->body_started = true;
    const char *start = c->in + c->in_off;
    size_t before = c->ub_len;
    llhttp_errno_t e = llhttp_execute(&c->parser, start, n);
    if (e == HPE_OK) {
        c->in_off += n;
        c->req_bytes += n;
    } else if (e == HPE_PAUSED) {
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - start);
        c->in_off += used;
        c->req_bytes += used;
        cancel_client_timer(c);
    } else {
        log_debug("%s: bad request body: %s", c->addr,
                  c->body_too_big ? "over the limit" : llhttp_errno_name(e));
        client_cancel_pick(c);
        c->keep_alive = false;
        c->want_close = true;
        client_reply_error(c, c->body_too_big ? 413 : 400, RECORD_BAD_REQUEST);
        return true;
    }
    if (c->in_off == c->in_len && !c->req_complete)
        c->in_off = c->in_len = 0; /* body bytes all moved: reuse `in` */
    return c->ub_len != before || n > 0;
}

/* ---- writing ---- */

/* Writes pending bytes to the client.  Returns false if the session closed. */
bool client_flush(struct client *c)
{
    if (!c->cb || c->cb_off == c->cb_len)
        return true;
    ssize_t n =
        send(c->io.fd, c->cb + c->cb_off, c->cb_len - c->cb_off, MSG_NOSIGNAL);
    if (n > 0) {
        c->cb_off += (size_t)n;
        c->resp_bytes += (uint64_t)n;
        if (c->cb_off == c->cb_len) {
            c->cb_off = c->cb_len = 0;
            if (c->timer_kind == CT_WRITE)
                cancel_client_timer(c);
        } else {
            arm_client_timer(c, CT_WRITE, cfg_of(c)->client_write_timeout_ms);
        }
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (c->timer_kind != CT_WRITE)
            arm_client_timer(c, CT_WRITE, cfg_of(c)->client_write_timeout_ms);
        return true;
    }
    c->want_close = true;
    client_close(c, RECORD_CLIENT_CLOSED);
    return false;
}

/* ---- client socket ---- */

static void read_client(struct client *c)
{
    size_t size = c->ctx->buf_size - FRAMING_SLACK;
    if (c->in_len == size && c->in_off > 0 &&
        (c->state == CS_RELAY || c->state == CS_CONNECT) && !c->req_complete) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len >= size)
        return;
    ssize_t n = recv(c->io.fd, c->in + c->in_len, size - c->in_len, 0);
    if (n > 0) {
        c->in_len += (size_t)n;
        if (c->timer_kind == CT_BODY)
            arm_client_timer(c, CT_BODY, cfg_of(c)->client_body_timeout_ms);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    /* EOF or error from the client */
    c->client_eof = true;
    bool mid_request =
        c->state == CS_HEAD ||
        ((c->state == CS_RELAY || c->state == CS_CONNECT) && !c->req_complete);
    if (c->state == CS_IDLE || mid_request || n < 0) {
        if (c->state == CS_IDLE && c->in_len == 0)
            c->state = CS_REPLY; /* nothing to record */
        client_cancel_pick(c);
        client_close(c, RECORD_CLIENT_CLOSED);
    }
}

static void update_interest(struct client *c)
{
    if (c->state == CS_CLOSED)
        return;
    unsigned ev = 0;
    if (!c->client_eof && c->in_len < c->ctx->buf_size - FRAMING_SLACK &&
        c->state != CS_REPLY)
        ev |= LOOP_READ;
    if (c->cb && c->cb_off < c->cb_len)
        ev |= LOOP_WRITE;
    loop_io_mod(c->ctx->loop, &c->io, ev);
    if (c->uc && c->state == CS_RELAY) {
        unsigned uev = 0;
        if (c->rb && c->rb_len < c->ctx->buf_size && !c->resp_complete)
            uev |= LOOP_READ;
        if (c->ub_off < c->ub_len)
            uev |= LOOP_WRITE;
        loop_io_mod(c->ctx->loop, &c->uc->io, uev);
    }
}

/* Runs the state machine until nothing more can happen without I/O. */
void client_progress(struct client *c)
{
    for (int round = 0; round < 64; round++) {
        bool moved = false;
        switch (c->state) {
        case CS_IDLE:
        case CS_HEAD:
            if (c->in_off < c->in_len)
                moved = parse_head(c);
            break;
        case CS_CONNECT:
            moved = client_pump_request(c);
            break;
        case CS_RELAY:
            moved = client_pump_request(c);
            if (c->state != CS_RELAY)
                break;
            moved |= client_flush_upstream(c);
            if (c->state != CS_RELAY)
                break;
            moved |= client_pump_response(c);
            if (c->state != CS_RELAY)
                break;
            {
                size_t pending = c->cb ? c->cb_len - c->cb_off : 0;
                if (!client_flush(c))
                    return;
                if (c->cb && c->cb_len - c->cb_off != pending)
                    moved = true;
            }
            if (c->resp_complete && c->cb_off == c->cb_len) {
                finish_request(c);
                moved = true;
            }
            break;
        case CS_REPLY:
            if (!client_flush(c))
                return;
            if (c->cb_off == c->cb_len) {
                finish_request(c);
                moved = c->state != CS_CLOSED;
            }
            break;
        case CS_CLOSED:
            return;
        }
        if (c->state == CS_CLOSED)
            return;
        if (!moved)
            break;
    }
    if (c->client_eof && (c->state == CS_IDLE || c->state == CS_HEAD)) {
        /* half-closed and no complete request left: nothing more can come */
        if (c->state == CS_IDLE)
            c->state = CS_REPLY; /* nothing to record */
        client_close(c, RECORD_CLIENT_CLOSED);
        return;
    }
    update_interest(c);
}

static void on_client_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct client *c = io->ctx;
    if (events & LOOP_READ) {
        read_client(c);
        if (c->state == CS_CLOSED)
            return;
    }
    client_progress(c);
}

static void on_client_timeout(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct client *c = t->ctx;
    enum client_timer_kind kind = c->timer_kind;
    c->timer_kind = CT_NONE;
    switch (kind) {
    case CT_KEEPALIVE:
        c->state = CS_REPLY; /* nothing to record */
        client_close(c, RECORD_OK);
        return;
    case CT_HEADER:
        c->keep_alive = false;
        client_reply_error(c, 408, RECORD_CLIENT_TIMEOUT);
        break;
    case CT_BODY:
        client_cancel_pick(c);
        if (c->resp_head_sent) {
            client_close(c, RECORD_CLIENT_TIMEOUT);
            return;
        }
        c->keep_alive = false;
        client_reply_error(c, 408, RECORD_CLIENT_TIMEOUT);
        break;
    case CT_WRITE:
        client_cancel_pick(c);
        client_close(c, RECORD_CLIENT_TIMEOUT);
        return;
    case CT_NONE:
        return;
    }
    if (c->state != CS_CLOSED)
        client_progress(c);
}

/* Tears a session down: writes its record if a request was under way,
 * releases the upstream side and frees it after this dispatch round. */
void client_close(struct client *c, enum record_error err)
{
    struct client_ctx *ctx = c->ctx;
    if (c->state == CS_CLOSED)
        return;
    bool busy = c->state == CS_HEAD || c->state == CS_CONNECT ||
                c->state == CS_RELAY ||
                (c->state == CS_REPLY && c->status != 0);
    if (busy) {
        if (c->error == RECORD_OK)
            c->error = err;
        if (c->in_flight)
            client_observe(c, err == RECORD_UPSTREAM_RESET ? BALANCER_RESET
                                                           : BALANCER_OK);
        emit_record(c);
    }
    client_cancel_pick(c);
    log_debug("%s: closed in state %s (%s)", c->addr,
              client_state_str(c->state), record_error_str(err));
    c->state = CS_CLOSED;
    client_drop_upstream(c, false);
    cancel_client_timer(c);
    loop_io_close(ctx->loop, &c->io);
    c->cb_off = c->cb_len;
    return_buffers(c);
    free(c->in);
    c->in = NULL;
    if (c->gen) {
        client_gen_put(c->gen);
        c->gen = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        ctx->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ctx->nclients--;
    loop_defer(ctx->loop, free, c);
    if (ctx->on_close)
        ctx->on_close(ctx->close_arg);
}

int client_accept(struct client_ctx *ctx, int fd, const struct sockaddr *sa,
                  socklen_t salen)
{
    (void)salen;
    init_settings();
    unsigned maxh = ctx->cfg->max_headers;
    struct client *c = calloc(1, sizeof(*c) + 2 * maxh * sizeof(c->headers[0]));
    if (!c)
        goto fail;
    c->in = malloc(ctx->buf_size);
    if (!c->in)
        goto fail;
    c->ctx = ctx;
    c->max_headers = maxh;
    c->io.fn = on_client_io;
    c->io.ctx = c;
    c->timer.fn = on_client_timeout;
    c->timer.ctx = c;
    c->utimer.fn = client_on_upstream_timeout;
    c->utimer.ctx = c;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, c->ip, sizeof(c->ip));
        snprintf(c->addr, sizeof(c->addr), "%s:%u", c->ip, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, c->ip, sizeof(c->ip));
        snprintf(c->addr, sizeof(c->addr), "[%s]:%u", c->ip,
                 ntohs(s6->sin6_port));
    } else {
        snprintf(c->ip, sizeof(c->ip), "unknown");
        snprintf(c->addr, sizeof(c->addr), "unknown");
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &req_settings);
    c->parser.data = &c->head;
    c->head.headers = c->headers;
    c->head.max_headers = maxh;
    http_head_reset(&c->head, c->in);
    reset_request(c);
    if (loop_io_add(ctx->loop, &c->io, fd, LOOP_READ) < 0)
        goto fail;
    c->state = CS_IDLE;
    c->keep_alive = true;
    c->next = ctx->all;
    if (ctx->all)
        ctx->all->prev = c;
    ctx->all = c;
    ctx->nclients++;
    arm_client_timer(c, CT_KEEPALIVE, ctx->cfg->client_header_timeout_ms);
    return 0;
fail:
    if (c)
        free(c->in);
    free(c);
    close(fd);
    return -1;
}

void client_drain_all(struct client_ctx *ctx)
{
    ctx->draining = true;
    struct client *c = ctx->all;
    while (c) {
        struct client *next = c->next;
        if (c->state == CS_IDLE && c->in_len == 0)
            client_close(c, RECORD_OK);
        else
            c->want_close = true;
        c = next;
    }
}

void client_close_all(struct client_ctx *ctx)
{
    while (ctx->all)
        client_close(ctx->all, RECORD_SHUTDOWN);
}
