/*
 * admin: the admin HTTP/1.1 server.  One small state per connection: an
 * input buffer parsed by llhttp (paused at each message end so pipelined
 * requests are answered in order), an output buffer, and an optional file
 * sent with sendfile() as the socket drains.  While a response is pending
 * the connection is not read (backpressure); stream subscribers are only
 * read to notice that they went away.
 */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin_api.h"
#include "admin_events.h"
#include "admin_render.h"
#include "admin_view.h"
#include "balancer.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "stats.h"

#include "admin_impl.h"

static void conn_io(struct loop *loop, struct loop_io *io, unsigned events);
static void conn_process(struct admin_conn *c);

/* ---- connection life cycle ---- */

static void conn_free(void *ptr)
{
    struct admin_conn *c = ptr;
    admin_buf_free(&c->out);
    free(c);
}

static void conn_close(struct admin_conn *c)
{
    if (c->closed)
        return;
    struct admin *a = c->a;
    c->closed = true;
    loop_io_del(a->loop, &c->io);
    loop_timer_cancel(a->loop, &c->timer);
    close(c->io.fd);
    if (c->file_fd >= 0)
        close(c->file_fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->nconns--;
    /* Events of this dispatch round may still name c: free it later. */
    loop_defer(a->loop, conn_free, c);
}

static void conn_timeout(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    conn_close(t->ctx);
}

static bool conn_pending(const struct admin_conn *c)
{
    return c->out_off < c->out.len || c->file_fd >= 0;
}

/* Sets the interest set and the idle timer after a change of state; `more`
 * asks for a writable event to go on with buffered requests. */
static void conn_update(struct admin_conn *c, bool more)
{
    struct loop *loop = c->a->loop;
    bool pending = conn_pending(c);
    unsigned ev = 0;
    if (pending || more)
        ev |= LOOP_WRITE;
    /* Stream subscribers are read to see them leave; others only when
     * there is no response in progress (backpressure). */
    if (c->sse ? !c->peer_eof : (!pending && !c->peer_eof))
        ev |= LOOP_READ;
    if (loop_io_mod(loop, &c->io, ev) < 0) {
        conn_close(c);
        return;
    }
    if (c->sse && !pending)
        loop_timer_cancel(loop, &c->timer);
    else
        loop_timer_after(loop, &c->timer, IDLE_US);
}

/* Writes what is pending, a bounded amount.  Returns -1 when the connection
 * was closed. */
static int conn_flush(struct admin_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->io.fd, c->out.p + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            conn_close(c);
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out.len = 0;
    c->out_off = 0;
    if (c->file_fd >= 0) {
        size_t sent = 0;
        while (c->file_off < c->file_end && sent < SEND_CHUNK) {
            size_t want = (size_t)(c->file_end - c->file_off);
            if (want > SEND_CHUNK - sent)
                want = SEND_CHUNK - sent;
            ssize_t n = sendfile(c->io.fd, c->file_fd, &c->file_off, want);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return 0;
                conn_close(c);
                return -1;
            }
            if (n == 0) {
                /* The file shrank under us: the promised length cannot
                 * be kept, so the connection cannot be reused. */
                conn_close(c);
                return -1;
            }
            sent += (size_t)n;
        }
        if (c->file_off < c->file_end)
            return 0; /* more on the next writable event */
        close(c->file_fd);
        c->file_fd = -1;
    }
    return 0;
}

/* ---- responses ---- */

static void http_date(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Appends a status line and the common headers; `extra` is "" or complete
 * header lines. */
void admin_put_head(struct admin_conn *c, int status, const char *type,
                    long long length, const char *extra)
{
    char date[64];
    http_date(date, sizeof(date));
    admin_buf_printf(&c->out,
                     "HTTP/1.1 %d %s\r\nServer: lbproxy\r\n"
                     "Date: %s\r\n",
                     status, http_status_text(status), date);
    if (type)
        admin_buf_printf(&c->out, "Content-Type: %s\r\n", type);
    if (length >= 0)
        admin_buf_printf(&c->out, "Content-Length: %lld\r\n", length);
    if (!c->keep_alive)
        c->close_after = true;
    admin_buf_printf(&c->out, "%sConnection: %s\r\n\r\n", extra,
                     c->close_after ? "close" : "keep-alive");
}

void admin_respond(struct admin_conn *c, int status, const char *type,
                   const char *extra, const char *body, size_t len, bool head)
{
    admin_put_head(c, status, type, (long long)len, extra);
    if (!head)
        admin_buf_add(&c->out, body, len);
}

void admin_respond_text(struct admin_conn *c, int status, const char *extra,
                        const char *msg, bool head)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s%s%s\n", status,
                     http_status_text(status), msg[0] ? ": " : "", msg);
    if (n >= (int)sizeof(body))
        n = (int)sizeof(body) - 1;
    admin_respond(c, status, "text/plain; charset=utf-8", extra, body,
                  (size_t)n, head);
}

void admin_respond_render(struct admin_conn *c, const char *type, bool head)
{
    struct admin_buf *r = &c->a->render;
    if (r->oom) {
        r->oom = false;
        r->len = 0;
        admin_respond_text(c, 500, API_HEADERS, "out of memory", head);
        return;
    }
    admin_respond(c, 200, type, API_HEADERS, r->p, r->len, head);
    r->len = 0;
}

static void render_event(struct admin *a, uint64_t now_us);

void admin_start_stream(struct admin_conn *c, bool head)
{
    c->close_after = false;
    admin_buf_str(&c->out, "HTTP/1.1 200 OK\r\nServer: lbproxy\r\n"
                           "Content-Type: text/event-stream\r\n" API_HEADERS
                           "X-Accel-Buffering: no\r\nConnection: close\r\n"
                           "\r\n");
    if (head) {
        c->close_after = true;
        return;
    }
    c->sse = true;
    admin_buf_str(&c->out, "retry: 1000\n\n");
    /* The first event at once, so a new page needs no wait. */
    struct admin *a = c->a;
    render_event(a, loop_now(a->loop));
    admin_buf_add(&c->out, a->render.p, a->render.len);
    a->render.len = 0;
}

/* ---- parsing ---- */

static struct admin_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int on_message_begin(llhttp_t *p)
{
    struct admin_conn *c = conn_of(p);
    c->url_len = 0;
    c->head_bytes = 0;
    c->body_bytes = 0;
    c->too_large = 0;
    admin_api_auth_reset(&c->auth);
    return 0;
}

static int count_head(struct admin_conn *c, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > MAX_HEAD) {
        c->too_large = 431;
        return -1;
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct admin_conn *c = conn_of(p);
    if (c->url_len + n >= URL_MAX) {
        c->too_large = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    c->url[c->url_len] = '\0';
    return count_head(c, n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    admin_api_auth_field(&conn_of(p)->auth, at, n);
    return count_head(conn_of(p), n + 4); /* ": " and CRLF */
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    admin_api_auth_value(&conn_of(p)->auth, at, n);
    return count_head(conn_of(p), n + 4);
}

static int on_header_value_complete(llhttp_t *p)
{
    admin_api_auth_value_done(&conn_of(p)->auth);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct admin_conn *c = conn_of(p);
    if (c->body_bytes < sizeof(c->body)) {
        size_t room = sizeof(c->body) - c->body_bytes;
        memcpy(c->body + c->body_bytes, at, n < room ? n : room);
    }
    c->body_bytes += n;
    if (c->body_bytes > MAX_BODY) {
        c->too_large = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    conn_of(p)->msg_done = true;
    return HPE_PAUSED; /* one request at a time, in order */
}

/* Parses buffered input up to the end of one request and answers it (or
 * consumes all input when no request is complete yet). */
static void parse_one(struct admin_conn *c)
{
    llhttp_errno_t err = llhttp_execute(&c->parser, c->in, c->in_len);
    size_t used = c->in_len;
    if (err == HPE_PAUSED) {
        used = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
        llhttp_resume(&c->parser);
    } else if (err != HPE_OK) {
        /* Malformed or too large: answer and close. */
        c->keep_alive = false;
        admin_respond_text(c, c->too_large ? c->too_large : 400, "",
                           c->too_large ? "" : "malformed request", false);
        c->in_len = 0;
        return;
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (c->msg_done) {
        c->msg_done = false;
        admin_handle_request(c);
    }
    if (c->close_after)
        c->in_len = 0; /* nothing after a closing response is read */
}

/* Writes pending output and answers buffered requests, a bounded number per
 * call; then closes the connection or sets what to wait for. */
static void conn_process(struct admin_conn *c)
{
    int budget = REQUESTS_PER_EVENT;
    for (;;) {
        if (conn_flush(c) < 0)
            return;
        if (conn_pending(c))
            break;
        if (c->close_after || (c->peer_eof && !c->sse && c->in_len == 0)) {
            conn_close(c);
            return;
        }
        if (c->sse || c->in_len == 0)
            break;
        if (budget-- == 0) {
            conn_update(c, true); /* go on at the next round */
            return;
        }
        parse_one(c);
    }
    conn_update(c, false);
}

static void conn_read(struct admin_conn *c)
{
    if (c->sse) {
        char sink[512]; /* subscribers have nothing more to say */
        ssize_t n = recv(c->io.fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    if (c->in_len == IN_SIZE)
        return; /* cannot happen: the parser consumes all unpaused input */
    ssize_t n = recv(c->io.fd, c->in + c->in_len, IN_SIZE - c->in_len, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_close(c);
        return;
    }
    if (n == 0) {
        c->peer_eof = true;
        if (c->in_len == 0) {
            conn_close(c);
            return;
        }
    }
    c->in_len += (size_t)n;
    loop_timer_after(c->a->loop, &c->timer, IDLE_US);
    conn_process(c);
}

static void conn_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct admin_conn *c = io->ctx;
    if (c->closed)
        return;
    if (events & LOOP_WRITE) {
        conn_process(c);
        if (c->closed)
            return;
    }
    if (events & LOOP_READ)
        conn_read(c);
}

/* ---- listener ---- */

static void accept_resume(struct loop *loop, struct loop_timer *t)
{
    struct admin *a = t->ctx;
    loop_io_mod(loop, &a->io, LOOP_READ);
}

static void on_accept(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)events;
    struct admin *a = io->ctx;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* Pause instead of spinning on a full fd table. */
                uint64_t now = loop_now(loop);
                if (now - a->last_accept_warn > 10000000u) {
                    log_warn("admin: accept");
                    a->last_accept_warn = now;
                }
                loop_io_mod(loop, &a->io, 0);
                loop_timer_after(loop, &a->accept_resume, 100000);
            }
            return;
        }
        struct admin_conn *c = NULL;
        if (a->nconns < MAX_CONNS)
            c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->file_fd = -1;
        c->a = a;
        c->io.fn = conn_io;
        c->io.ctx = c;
        c->timer.fn = conn_timeout;
        c->timer.ctx = c;
        llhttp_init(&c->parser, HTTP_REQUEST, &a->settings);
        c->parser.data = c;
        if (loop_io_add(loop, &c->io, fd, LOOP_READ) < 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = a->conns;
        if (a->conns)
            a->conns->prev = c;
        a->conns = c;
        a->nconns++;
        loop_timer_after(loop, &c->timer, IDLE_US);
    }
}

/* Renders one SSE event (event: stats) into a->render. */
static void render_event(struct admin *a, uint64_t now_us)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    admin_buf_str(&a->render, "event: stats\ndata: ");
    admin_render_stats(&a->render, a->src, now_us,
                       (double)ts.tv_sec + ts.tv_nsec / 1e9, ADMIN_WINDOW_S);
    admin_events_append_json(&a->events, &a->render);
    admin_buf_str(&a->render, "\n\n");
    if (a->render.oom) {
        a->render.oom = false;
        a->render.len = 0;
    }
}

static void arm_tick(struct admin *a)
{
    uint64_t now = loop_now(a->loop);
    uint64_t next = (now / 1000000u + 1) * 1000000u + TICK_OFFSET_US;
    loop_timer_set(a->loop, &a->tick, next);
}

static void on_tick(struct loop *loop, struct loop_timer *t)
{
    struct admin *a = t->ctx;
    uint64_t now = loop_now(loop);
    /* The only place scores are sampled into the stats: just after each
     * second turns, so every second holds one sample and the event pushed
     * below carries the fresh one. */
    struct admin_pool *pl = NULL;
    size_t np = admin_pools(a->src, &pl);
    for (size_t p = 0; p < np; p++) {
        struct balancer *b = pl[p].balancer;
        size_t n = b && pl[p].stats ? balancer_count(b) : 0;
        for (size_t i = 0; i < n; i++)
            stats_set_score(pl[p].stats, i, balancer_score(b, i, now), now);
    }
    free(pl);
    if (a->src->stats) {
        uint64_t r = a->src->retries ? *a->src->retries : 0;
        uint64_t h = a->src->hedges ? *a->src->hedges : 0;
        uint64_t q = a->src->queued_now ? *a->src->queued_now : 0;
        stats_set_flow(a->src->stats, (uint32_t)(r - a->flow_retries),
                       (uint32_t)(h - a->flow_hedges), (uint32_t)q, now);
        a->flow_retries = r;
        a->flow_hedges = h;
    }
    bool rendered = false;
    struct admin_conn *next;
    for (struct admin_conn *c = a->conns; c; c = next) {
        next = c->next; /* c may close below */
        if (!c->sse || c->out.len - c->out_off > SSE_MAX_PENDING)
            continue;
        if (!rendered) {
            render_event(a, now);
            rendered = true;
        }
        admin_buf_add(&c->out, a->render.p, a->render.len);
        conn_process(c);
    }
    a->render.len = 0;
    arm_tick(a);
}

struct admin *admin_create(struct loop *loop, const char *listen_addr,
                           const struct admin_sources *src)
{
    struct admin *a = calloc(1, sizeof(*a));
    if (!a) {
        log_warn("admin: out of memory");
        return NULL;
    }
    a->loop = loop;
    a->src = src;
    char msg[256];
    a->fd = src->has_listen_fd
                ? src->listen_fd
                : net_listen_spec(listen_addr, ADMIN_BACKLOG, msg, sizeof(msg));
    if (a->fd < 0) {
        log_warnx("admin: %s", msg);
        goto fail;
    }
    a->port = net_local_port(a->fd);
    const char *dash = src->config && src->config->dashboard_dir[0]
                           ? src->config->dashboard_dir
                           : "dashboard";
    snprintf(a->vendor_root, sizeof(a->vendor_root), "%s/../node_modules",
             dash);
    llhttp_settings_init(&a->settings);
    a->settings.on_message_begin = on_message_begin;
    a->settings.on_url = on_url;
    a->settings.on_header_field = on_header_field;
    a->settings.on_header_value = on_header_value;
    a->settings.on_header_value_complete = on_header_value_complete;
    a->settings.on_body = on_body;
    a->settings.on_message_complete = on_message_complete;
    a->io.fn = on_accept;
    a->io.ctx = a;
    if (loop_io_add(loop, &a->io, a->fd, LOOP_READ) < 0) {
        log_warn("admin: epoll");
        goto fail;
    }
    a->accept_resume.fn = accept_resume;
    a->accept_resume.ctx = a;
    a->tick.fn = on_tick;
    a->tick.ctx = a;
    arm_tick(a);
    return a;
fail:;
    int err = errno;
    if (a->fd >= 0)
        close(a->fd);
    free(a);
    errno = err;
    return NULL;
}

static void admin_free(void *ptr)
{
    struct admin *a = ptr;
    admin_buf_free(&a->render);
    free(a);
}

void admin_stop_accepting(struct admin *a)
{
    if (!a || a->fd < 0)
        return;
    if (a->io.registered)
        loop_io_del(a->loop, &a->io);
    loop_timer_cancel(a->loop, &a->accept_resume);
    close(a->fd);
    a->fd = -1;
}

void admin_destroy(struct admin *a)
{
    if (!a)
        return;
    while (a->conns)
        conn_close(a->conns);
    admin_stop_accepting(a);
    loop_timer_cancel(a->loop, &a->tick);
    loop_defer(a->loop, admin_free, a);
}

int admin_port(const struct admin *a)
{
    return a->port;
}
