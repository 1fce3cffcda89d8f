/*
 * be_conn: one connection serves its requests one at a time, in order:
 *
 *   READING --message complete--> (fault?) --> QUEUED --worker--> SERVICE
 *      ^                                          |                 |
 *      +------------- response queued <-----------+---- timer ------+
 *
 * The parser pauses at the end of each head and each message, so pipelined
 * requests wait in the input buffer and their answers leave in order; all
 * answers produced in one round are corked into one write.  Faults (500,
 * reset, hang) are decided when the request is complete and take effect at
 * once, without a worker.  Workers and the queue are be_sched.c; this file
 * is the only one that changes a connection's state (set_state).
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "be_internal.h"

/* ---- state ---- */

static const char *state_str(enum conn_state st)
{
    switch (st) {
    case CS_READING:
        return "reading";
    case CS_QUEUED:
        return "queued";
    case CS_SERVICE:
        return "service";
    case CS_HANG:
        return "hang";
    case CS_WS:
        return "websocket";
    case CS_CLOSED:
        return "closed";
    }
    return "?";
}

/* Whether a connection may go from one state to the other (the diagram at
 * the top; any live state may close). */
static int transition_ok(enum conn_state from, enum conn_state to)
{
    switch (to) {
    case CS_READING:
        return from == CS_SERVICE || from == CS_READING;
    case CS_QUEUED:
    case CS_HANG:
    case CS_WS:
        return from == CS_READING;
    case CS_SERVICE:
        return from == CS_READING || from == CS_QUEUED;
    case CS_CLOSED:
        return from != CS_CLOSED;
    }
    return 0;
}

/* The one place a connection's state changes. */
static void set_state(struct conn *c, enum conn_state to)
{
    if (!transition_ok(c->state, to)) {
        fprintf(stderr, "lbbackend: connection %" PRIu64 ": %s -> %s\n", c->id,
                state_str(c->state), state_str(to));
        abort();
    }
    c->state = to;
}

/* ---- small helpers ---- */

#define OUT_LIT(c, s) out_put((c), (s), sizeof(s) - 1)

static void out_u64(struct conn *c, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n > 0)
        c->out[c->out_len++] = tmp[--n];
}

static int output_pending(const struct conn *c)
{
    return c->out_sent < c->out_len || c->seg_len > 0;
}

static int output_blocked(const struct conn *c)
{
    return c->seg_len > 0 || out_free(c) < RESP_ROOM;
}

static void log_request(struct conn *c, const char *error)
{
    struct be_server *s = c->srv;
    uint64_t t = loop_now(s->loop) - s->start_us;
    if (error)
        be_reqlog_write(s->reqlog, t, c->id, error, c->in + c->in_start,
                        c->in_len - c->in_start, 0);
    else
        be_reqlog_write(s->reqlog, t, c->id, NULL, c->hbuf, c->hlen,
                        c->body_bytes);
}

/* ---- responses ---- */

void be_put_connection(struct conn *c)
{
    if (!c->keep_alive) {
        OUT_LIT(c, "Connection: close\r\n\r\n");
        c->close_after = 1;
    } else if (c->http10) {
        OUT_LIT(c, "Connection: keep-alive\r\n\r\n");
    } else {
        OUT_LIT(c, "\r\n");
    }
}

/* Queues a complete answer with a small, copied body. */
void be_respond_simple(struct conn *c, int status, const char *reason,
                       const char *ctype, const char *body, size_t len)
{
    struct be_server *s = c->srv;
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nX-Backend-Id: %s\r\n"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n",
                     status, reason, s->o->id, ctype, len);
    out_put(c, head, (size_t)n);
    be_put_connection(c);
    if (!c->is_head)
        out_put(c, body, len);
}

/* Answers an unusable request and closes after the answer. */
static void respond_fatal(struct conn *c, int status, const char *reason)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);
    c->keep_alive = 0;
    c->is_head = 0;
    /* An error may come while an earlier answer still owns the buffer. */
    if (out_free(c) < 512) {
        c->close_after = 1;
        return;
    }
    be_respond_simple(c, status, reason, "text/plain", body, (size_t)n);
}

/* Queues the answer of an emulated request whose service is over. */
static void respond_app(struct conn *c)
{
    struct be_server *s = c->srv;
    const char *body;
    size_t len;
    s->st.responses++;
    if (c->route == R_ECHO) {
        body = c->ebuf;
        len = c->elen;
        OUT_LIT(c, "HTTP/1.1 200 OK\r\nX-Backend-Id: ");
        out_put(c, s->o->id, strlen(s->o->id));
        OUT_LIT(c, "\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Length: ");
        out_u64(c, len);
        OUT_LIT(c, "\r\n");
    } else if (c->route == R_ECHO_HEADERS) {
        body = c->hbuf;
        len = c->hlen;
        OUT_LIT(c, "HTTP/1.1 200 OK\r\nX-Backend-Id: ");
        out_put(c, s->o->id, strlen(s->o->id));
        OUT_LIT(c, "\r\nContent-Type: text/plain\r\nX-Request-Body-Bytes: ");
        out_u64(c, c->body_bytes);
        OUT_LIT(c, "\r\nContent-Length: ");
        out_u64(c, len);
        OUT_LIT(c, "\r\n");
    } else {
        body = s->body;
        len = s->body_len;
        out_put(c, s->ok_prefix, s->ok_prefix_len);
    }
    OUT_LIT(c, "X-Service-Us: ");
    out_u64(c, c->job.service_us);
    OUT_LIT(c, "\r\nX-Queue-Us: ");
    out_u64(c, c->job.queue_us);
    OUT_LIT(c, "\r\n");
    be_put_connection(c);
    if (c->is_head || len == 0)
        return;
    if (len <= SMALL_BODY) {
        out_put(c, body, len);
    } else {
        c->seg = body;
        c->seg_len = len;
    }
}

/* ---- requests ---- */

static int parse_target(const char *head, size_t n, const char **path,
                        size_t *plen)
{
    const char *sp = memchr(head, ' ', n);
    if (!sp)
        return -1;
    const char *t = sp + 1;
    const char *end = memchr(t, ' ', n - (size_t)(t - head));
    if (!end)
        return -1;
    const char *q = memchr(t, '?', (size_t)(end - t));
    *path = t;
    *plen = (size_t)((q ? q : end) - t);
    return 0;
}

enum {
    HEAD_ECHO_HEADERS = 1,    /* X-Echo-Headers with a value other than 0 */
    HEAD_EXPECT_CONTINUE = 2, /* Expect: 100-continue */
};

static const char *header_value(const char *line, const char *nl, size_t nlen)
{
    const char *v = line + nlen;
    while (v < nl && (*v == ' ' || *v == '\t'))
        v++;
    return v;
}

/* One pass over the header lines for the few headers the emulator obeys. */
static unsigned scan_headers(const char *p, size_t n)
{
    const char *end = p + n;
    const char *line = memchr(p, '\n', n);
    unsigned flags = 0;
    while (line && ++line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        if (nl - line > 15 && strncasecmp(line, "x-echo-headers:", 15) == 0) {
            const char *v = header_value(line, nl, 15);
            if (v < nl && *v != '0' && *v != '\r')
                flags |= HEAD_ECHO_HEADERS;
        } else if (nl - line > 7 && strncasecmp(line, "expect:", 7) == 0) {
            const char *v = header_value(line, nl, 7);
            if (nl - v >= 12 && strncasecmp(v, "100-continue", 12) == 0)
                flags |= HEAD_EXPECT_CONTINUE;
        }
        line = nl;
    }
    return flags;
}

static void on_head_complete(struct conn *c)
{
    struct be_server *s = c->srv;
    const char *head = c->in + c->in_start;
    size_t n = c->in_parse - c->in_start;
    const char *path = "";
    size_t plen = 0;
    parse_target(head, n, &path, &plen);
    unsigned hflags = scan_headers(head, n);
    c->head_phase = 0;
    c->is_head = llhttp_get_method(&c->parser) == HTTP_HEAD;
    c->http10 = llhttp_get_http_major(&c->parser) == 1 &&
                llhttp_get_http_minor(&c->parser) == 0;
    c->body_bytes = 0;
    c->elen = 0;
    c->job.queue_us = 0;
    c->job.service_us = 0;
    if (plen == 7 && memcmp(path, "/health", 7) == 0)
        c->route = R_HEALTH;
    else if (plen == 6 && memcmp(path, "/stats", 6) == 0)
        c->route = R_STATS;
    else if (plen == 6 && memcmp(path, "/probe", 6) == 0)
        c->route = R_PROBE;
    else if (plen == 13 && memcmp(path, "/echo-headers", 13) == 0)
        c->route = R_ECHO_HEADERS;
    else if (plen == 3 && memcmp(path, "/ws", 3) == 0)
        c->route = R_WS;
    else if (hflags & HEAD_ECHO_HEADERS)
        c->route = R_ECHO_HEADERS;
    else if (s->o->echo || (plen == 5 && memcmp(path, "/echo", 5) == 0))
        c->route = R_ECHO;
    else
        c->route = R_APP;
    if (c->route == R_WS)
        be_ws_head(c, head, n);
    c->hlen = 0;
    if (c->route == R_ECHO_HEADERS || s->reqlog) {
        if (!c->hbuf)
            c->hbuf = malloc(IN_CAP);
        if (c->hbuf) {
            memcpy(c->hbuf, head, n);
            c->hlen = n;
        }
    }
    /* A client that waits for 100 Continue gets it while the body is
     * still to come. */
    if ((hflags & HEAD_EXPECT_CONTINUE) &&
        ((c->parser.flags & F_CHUNKED) || c->parser.content_length > 0) &&
        !c->http10)
        OUT_LIT(c, "HTTP/1.1 100 Continue\r\n\r\n");
    c->in_start = c->in_parse; /* the head may go; the body is not kept */
}

/* ---- workers (be_sched) ---- */

static void conn_drive(struct conn *c);

/* The service of c is over at done_us: its answer is queued, its worker
 * goes to the next queued request. */
static void finish_service(struct conn *c, uint64_t done_us)
{
    set_state(c, CS_READING);
    be_probe_record(c->srv, c->job.queue_us + c->job.service_us);
    respond_app(c);
    be_sched_done(&c->srv->sched, &c->job, done_us);
}

static void on_service_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct conn *c = t->ctx;
    /* The deadline, not now: a late timer must not delay the next one. */
    finish_service(c, t->when_us);
    conn_drive(c);
}

void be_conn_service_start(struct be_sched_job *j, void *ctx)
{
    struct be_server *s = ctx;
    struct conn *c =
        (struct conn *)(void *)((char *)j - offsetof(struct conn, job));
    set_state(c, CS_SERVICE);
    loop_timer_set(s->loop, &c->timer, j->start_us + j->service_us);
}

/* Gives a complete request a worker, or queues it FIFO when all are busy;
 * a zero service time with a free worker answers at once. */
static void submit(struct conn *c)
{
    struct be_server *s = c->srv;
    uint64_t now = loop_now(s->loop);
    if (!be_sched_submit(&s->sched, &c->job, now)) {
        set_state(c, CS_QUEUED);
        return;
    }
    if (c->job.service_us == 0) {
        finish_service(c, now);
        return;
    }
    set_state(c, CS_SERVICE);
    loop_timer_set(s->loop, &c->timer, now + c->job.service_us);
}

static void dispatch(struct conn *c)
{
    struct be_server *s = c->srv;
    if (s->reqlog)
        log_request(c, NULL);
    if (c->route == R_HEALTH) {
        s->st.health++;
        if (s->o->fail_health)
            be_respond_simple(c, 503, "Service Unavailable", "text/plain",
                              "unhealthy\n", 10);
        else
            be_respond_simple(c, 200, "OK", "text/plain", "ok\n", 3);
        return;
    }
    if (c->route == R_STATS) {
        be_respond_stats(c);
        return;
    }
    if (c->route == R_PROBE) {
        be_respond_probe(c);
        return;
    }
    if (c->route == R_WS) { /* a valid handshake switches */
        if (be_ws_accept(c))
            set_state(c, CS_WS);
        else
            be_respond_simple(c, 400, "Bad Request", "text/plain",
                              "not a WebSocket handshake\n", 26);
        return;
    }
    if (llhttp_get_method(&c->parser) == HTTP_CONNECT) {
        s->st.bad_requests++;
        respond_fatal(c, 405, "Method Not Allowed");
        return;
    }
    s->st.requests++;
    if (s->fault_total > 0) {
        double u = be_rng_double(&s->rng);
        const struct be_options *o = s->o;
        if (u < o->reset_rate) {
            s->st.resets++;
            /* Earlier pipelined answers get one chance to leave first. */
            if (c->out_sent < c->out_len) {
                struct iovec iov = {c->out + c->out_sent,
                                    c->out_len - c->out_sent};
                (void)be_io_writev(c, &iov, 1);
            }
            struct linger lg = {1, 0};
            setsockopt(c->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            be_conn_close(c);
            return;
        }
        if (u < o->reset_rate + o->hang_rate) {
            s->st.hangs++;
            set_state(c, CS_HANG);
            return;
        }
        if (u < o->reset_rate + o->hang_rate + o->error_rate) {
            s->st.errors++;
            be_respond_simple(c, 500, "Internal Server Error", "text/plain",
                              "injected error\n", 15);
            return;
        }
    }
    submit(c);
}

static int on_headers_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->paused_on = PAUSE_HEADERS;
    return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->keep_alive = llhttp_should_keep_alive(p);
    c->paused_on = PAUSE_MESSAGE;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    c->body_bytes += len;
    if (c->route != R_ECHO)
        return 0;
    size_t max = c->srv->o->max_body;
    if (c->elen + len > max) {
        c->too_large = 1;
        return -1;
    }
    if (c->elen + len > c->ecap) {
        size_t cap = c->ecap ? c->ecap : 65536;
        while (cap < c->elen + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *b = realloc(c->ebuf, cap);
        if (!b) {
            c->too_large = 1;
            return -1;
        }
        c->ebuf = b;
        c->ecap = cap;
    }
    memcpy(c->ebuf + c->elen, at, len);
    c->elen += len;
    return 0;
}

static void bad_request(struct conn *c, llhttp_errno_t e)
{
    struct be_server *s = c->srv;
    s->st.bad_requests++;
    if (s->reqlog)
        log_request(c, llhttp_errno_name(e));
    if (c->too_large)
        respond_fatal(c, 413, "Payload Too Large");
    else
        respond_fatal(c, 400, "Bad Request");
}

/* Parses buffered requests and answers them until one must wait (for a
 * worker, a timer, more input or output space). */
static void process_input(struct conn *c)
{
    while (c->state == CS_READING && !c->close_after && !output_blocked(c)) {
        int pending_pause = c->paused_on != PAUSE_NONE;
        if (c->in_parse == c->in_len && !pending_pause)
            break;
        c->paused_on = PAUSE_NONE;
        llhttp_errno_t e = llhttp_execute(&c->parser, c->in + c->in_parse,
                                          c->in_len - c->in_parse);
        if (e == HPE_OK) {
            c->in_parse = c->in_len;
            if (!c->head_phase)
                c->in_start = c->in_parse;
            if (c->head_phase && c->in_start == 0 && c->in_len == IN_CAP) {
                c->srv->st.bad_requests++;
                respond_fatal(c, 431, "Request Header Fields Too Large");
            }
            break;
        }
        if (e == HPE_PAUSED_UPGRADE) {
            /* The previous request asked for an upgrade; a server may
             * ignore that (RFC 9110, 7.8) and go on with HTTP/1.1. */
            llhttp_resume_after_upgrade(&c->parser);
            continue;
        }
        if (e != HPE_PAUSED) {
            bad_request(c, e);
            break;
        }
        c->in_parse = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
        llhttp_resume(&c->parser);
        if (c->paused_on == PAUSE_HEADERS) {
            on_head_complete(c);
            /* Run the parser once more even with no bytes left: a message
             * without a body completes right after its head. */
            continue;
        }
        c->paused_on = PAUSE_NONE;
        c->in_start = c->in_parse;
        c->head_phase = 1;
        dispatch(c);
        if (c->state == CS_CLOSED)
            return;
    }
}

static const llhttp_settings_t parser_settings = {
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
    .on_body = on_body,
};

/* ---- connection I/O ---- */

/* Writes pending output; returns 1 when all is out, 0 when the socket is
 * full, -1 after closing the connection on an error. */
static int conn_flush(struct conn *c)
{
    while (output_pending(c)) {
        struct iovec iov[2];
        int n = 0;
        if (c->out_sent < c->out_len) {
            iov[n].iov_base = c->out + c->out_sent;
            iov[n].iov_len = c->out_len - c->out_sent;
            n++;
        }
        if (c->seg_len > 0) {
            iov[n].iov_base = (void *)c->seg;
            iov[n].iov_len = c->seg_len;
            n++;
        }
        ssize_t w = be_io_writev(c, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            be_conn_close(c);
            return -1;
        }
        c->srv->st.bytes_out += (uint64_t)w;
        size_t ws = (size_t)w;
        size_t from_out = c->out_len - c->out_sent;
        if (ws < from_out) {
            c->out_sent += ws;
            continue;
        }
        ws -= from_out;
        c->out_sent = c->out_len = 0;
        c->seg += ws;
        c->seg_len -= ws;
    }
    c->out_sent = c->out_len = 0;
    c->seg = NULL;
    return 1;
}

static void update_interest(struct conn *c)
{
    unsigned ev = 0;
    if (c->state == CS_HANG) {
        ev = LOOP_READ;
    } else if (!c->peer_eof && !c->close_after && !output_blocked(c) &&
               (c->in_len < IN_CAP || c->in_start > 0)) {
        ev = LOOP_READ;
    }
    if (output_pending(c))
        ev |= LOOP_WRITE;
    ev |= (unsigned)c->tls_wants;
    if (loop_io_mod(c->srv->loop, &c->io, ev) < 0)
        be_conn_close(c);
}

/* Parses, answers and writes what it can, then sets the interest set. */
static void conn_drive(struct conn *c)
{
    for (int round = 0;; round++) {
        /* A WebSocket goes on while it moves bytes, or while output that
         * may have limited it is pending (flushed below, then tried with
         * an empty buffer); one that just switched starts at once. */
        int ws_more = c->state != CS_WS;
        if (c->state == CS_WS)
            ws_more = output_pending(c) | be_ws_input(c);
        else
            process_input(c);
        if (c->state == CS_CLOSED)
            return;
        if (round >= 64 && output_pending(c))
            break; /* a flood: the rest when the socket is writable */
        int r = conn_flush(c);
        if (r < 0)
            return;
        if (r == 0)
            break;
        if (c->close_after) {
            be_conn_close(c);
            return;
        }
        if (c->state == CS_WS) {
            if (!ws_more)
                break;
            continue;
        }
        /* Everything left; parse on if pipelined requests still wait. */
        if (c->state != CS_READING ||
            (c->in_parse == c->in_len && c->paused_on == PAUSE_NONE))
            break;
    }
    if (c->peer_eof && (c->state == CS_READING || c->state == CS_WS) &&
        !output_pending(c)) {
        be_conn_close(c); /* the client has left and everything is answered */
        return;
    }
    update_interest(c);
}

static void conn_read(struct conn *c)
{
    if (c->state == CS_HANG) {
        ssize_t r = be_io_read(c, c->in, IN_CAP);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            be_conn_close(c);
        return;
    }
    if (c->in_start == c->in_len) {
        c->in_start = c->in_parse = c->in_len = 0;
    } else if (c->in_start > 0 && IN_CAP - c->in_len < 4096) {
        memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
        c->in_len -= c->in_start;
        c->in_parse -= c->in_start;
        c->in_start = 0;
    }
    if (c->in_len == IN_CAP)
        return;
    ssize_t r = be_io_read(c, c->in + c->in_len, IN_CAP - c->in_len);
    if (r > 0) {
        c->in_len += (size_t)r;
        c->srv->st.bytes_in += (uint64_t)r;
    } else if (r == 0) {
        /* A second end-of-file report means the socket hung up entirely
         * (we stop reading after the first one). */
        if (c->peer_eof)
            be_conn_close(c);
        c->peer_eof = 1;
    } else if (errno != EAGAIN && errno != EINTR) {
        be_conn_close(c);
    }
}

static void on_conn_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct conn *c = io->ctx;
    if (events & (LOOP_READ | (unsigned)c->tls_wants)) {
        conn_read(c);
        if (c->state == CS_CLOSED)
            return;
    }
    conn_drive(c);
}

static void conn_release(void *ptr)
{
    struct conn *c = ptr;
    struct be_server *s = c->srv;
    free(c->ebuf);
    c->ebuf = NULL;
    c->ecap = c->elen = 0;
    c->free_next = s->free_list;
    s->free_list = c;
}

void be_conn_close(struct conn *c)
{
    struct be_server *s = c->srv;
    if (c->state == CS_CLOSED)
        return;
    if (be_sched_forget(&s->sched, &c->job, loop_now(s->loop)) &&
        !s->destroying)
        be_sched_pump(&s->sched, loop_now(s->loop));
    loop_timer_cancel(s->loop, &c->timer);
    be_tls_close(c); /* before its socket goes */
    loop_io_close(s->loop, &c->io);
    set_state(c, CS_CLOSED);
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        s->live = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    s->st.open--;
    if (s->destroying) {
        conn_release(c);
        return;
    }
    loop_defer(s->loop, conn_release, c);
}

void be_conn_open(struct be_server *s, int fd)
{
    struct conn *c = s->free_list;
    if (c) {
        s->free_list = c->free_next;
    } else {
        c = malloc(sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        c->hbuf = NULL;
        c->ebuf = NULL;
    }
    char *hbuf = c->hbuf;
    memset(c, 0, offsetof(struct conn, in));
    c->hbuf = hbuf;
    c->srv = s;
    c->id = ++s->next_conn_id;
    c->head_phase = 1;
    c->state = CS_READING; /* a fresh connection: no transition */
    c->io.fn = on_conn_io;
    c->io.ctx = c;
    c->timer.fn = on_service_timer;
    c->timer.ctx = c;
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (be_tls_open(c, fd) < 0 ||
        loop_io_add(s->loop, &c->io, fd, LOOP_READ) < 0) {
        be_tls_close(c);
        close(fd);
        c->free_next = s->free_list;
        s->free_list = c;
        return;
    }
    c->lnext = s->live;
    if (s->live)
        s->live->lprev = c;
    s->live = c;
    s->st.accepts++;
    s->st.open++;
}
