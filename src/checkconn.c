/*
 * checkconn: one short HTTP/1.1 exchange with a backend over the loop
 * (include/checkconn.h).
 *
 * IDLE (nothing under way; a kept connection sits with no interest), then
 * CONNECTING, SENDING and READING under one deadline timer.  The answer
 * is judged as it arrives: the status line alone for a health check, the
 * whole head (and a small body, read and dropped so the connection can be
 * kept) for a probe.
 */
#include "checkconn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "proxyproto.h"
#include "upstream.h"

const char *checkconn_result_str(enum checkconn_result r)
{
    switch (r) {
    case CHECKCONN_DONE:
        return "done";
    case CHECKCONN_FAILED:
        return "failed";
    case CHECKCONN_LOCAL:
        return "local";
    }
    return "?";
}

int checkconn_status_line(const char *b, size_t len, size_t cap, int *status,
                          const char **why)
{
    const char *nl = memchr(b, '\n', len);
    if (!nl) {
        if (len >= cap) {
            *why = "status line too long";
            return 0;
        }
        return -1;
    }
    size_t n = (size_t)(nl - b);
    if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0 ||
        (b[7] != '0' && b[7] != '1') || b[8] != ' ' || b[9] < '1' ||
        b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' ||
        b[11] > '9' || (n > 12 && b[12] != ' ' && b[12] != '\r')) {
        *why = "invalid status line";
        return 0;
    }
    *status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    return 1;
}

/* Ends the exchange; the connection stays only when keep says so. */
static void finish(struct checkconn *c, enum checkconn_result r,
                   const char *why, bool keep)
{
    loop_timer_cancel(c->loop, &c->timer);
    if (c->uc && !(keep && c->keep)) {
        /* a failed exchange may have left bytes unread: reset */
        upstream_close(c->uc, r != CHECKCONN_DONE);
        c->uc = NULL;
    } else if (c->uc && loop_io_mod(c->loop, &c->uc->io, 0) < 0) {
        upstream_close(c->uc, true);
        c->uc = NULL;
    }
    c->state = CHECKCONN_IDLE;
    c->done(c, r, why);
}

/* The end of the head in buf (the offset after its blank line), or 0. */
static size_t head_end(const char *b, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (b[i] == '\n' &&
            (b[i + 1] == '\n' ||
             (b[i + 1] == '\r' && i + 2 < len && b[i + 2] == '\n')))
            return i + (b[i + 1] == '\n' ? 2 : 3);
    return 0;
}

const char *checkconn_field(const char *b, size_t len, const char *name,
                            size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = b, *end = b + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' &&
            strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vlen = (size_t)(e - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Judges what has arrived: 1 done (*keep: the connection can carry the
 * next exchange), 0 failed (*why), -1 wait for more. */
static int judge(struct checkconn *c, bool *keep, const char **why)
{
    int v =
        checkconn_status_line(c->buf, c->len, sizeof(c->buf), &c->status, why);
    *keep = false;
    if (v <= 0 || !c->head)
        return v;
    size_t h = head_end(c->buf, c->len);
    if (h == 0) {
        if (c->len >= sizeof(c->buf)) {
            *why = "head too long";
            return 0;
        }
        return -1;
    }
    size_t vl;
    const char *cl = checkconn_field(c->buf, h, "Content-Length", &vl);
    const char *conn = checkconn_field(c->buf, h, "Connection", &vl);
    bool closes = conn && vl == 5 && strncasecmp(conn, "close", 5) == 0;
    if (!cl || checkconn_field(c->buf, h, "Transfer-Encoding", &vl))
        return 1; /* a body of unknown length: not kept */
    char *e;
    unsigned long long n = strtoull(cl, &e, 10);
    if (e == cl || n > sizeof(c->buf) - h)
        return 1; /* too big to read through here: not kept */
    if (c->len < h + n)
        return -1; /* the rest of a small body */
    *keep = !closes && c->len == h + n;
    return 1;
}

/* Waits for ev and for what the transport (TLS) waits for on its own. */
static void want(struct checkconn *c, unsigned ev)
{
    struct upstream_conn *uc = c->uc;
    if (uc->tr->wants)
        ev |= uc->tr->wants(uc->tr_state);
    if (loop_io_mod(c->loop, &uc->io, ev) < 0)
        finish(c, CHECKCONN_LOCAL, "epoll", false);
}

static void on_readable(struct checkconn *c)
{
    const char *why = c->head ? "closed before the head ended"
                              : "closed before a status line";
    for (;;) {
        size_t room = sizeof(c->buf) - c->len;
        if (room == 0)
            break;
        struct upstream_conn *uc = c->uc;
        ssize_t r =
            uc->tr->read(uc->io.fd, uc->tr_state, c->buf + c->len, room);
        if (r > 0) {
            bool keep;
            c->len += (size_t)r;
            int v = judge(c, &keep, &why);
            if (v >= 0) {
                finish(c, v ? CHECKCONN_DONE : CHECKCONN_FAILED, why, keep);
                return;
            }
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want(c, LOOP_READ);
            return;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            why = "read error";
        finish(c, CHECKCONN_FAILED, why, false);
        return;
    }
    bool keep;
    if (judge(c, &keep, &why) != 1)
        finish(c, CHECKCONN_FAILED, why, false);
    else
        finish(c, CHECKCONN_DONE, why, keep);
}

static void on_writable(struct checkconn *c)
{
    while (c->sent < c->req_len) {
        struct upstream_conn *uc = c->uc;
        ssize_t w = uc->tr->write(uc->io.fd, uc->tr_state, c->req + c->sent,
                                  c->req_len - c->sent);
        if (w > 0) {
            c->sent += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want(c, LOOP_WRITE);
            return;
        }
        if (w < 0 && errno == EINTR)
            continue;
        finish(c, CHECKCONN_FAILED, "write error", false);
        return;
    }
    c->state = CHECKCONN_READING;
    want(c, LOOP_READ);
}

static void on_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct checkconn *c = io->ctx;
    (void)events; /* each state tries its step on any event */
    switch (c->state) {
    case CHECKCONN_IDLE:
        /* A kept connection has no interest: only an error or a hang-up
         * reaches it (level-triggered), and it is of no use any more. */
        upstream_close(c->uc, true);
        c->uc = NULL;
        return;
    case CHECKCONN_CONNECTING: { /* writable, or a TLS handshake's event */
        int rc = upstream_finish_connect(c->uc);
        if (rc == 0)
            return;
        if (rc < 0) {
            finish(c, CHECKCONN_FAILED,
                   c->uc->tls_failed       ? "TLS handshake failed"
                   : errno == ECONNREFUSED ? "connection refused"
                                           : "connect failed",
                   false);
            return;
        }
        c->state = CHECKCONN_SENDING;
    }
        /* fall through */
    case CHECKCONN_SENDING:
        on_writable(c);
        return;
    case CHECKCONN_READING: /* readable, or writable for a TLS read */
        on_readable(c);
        return;
    }
}

static void on_deadline(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct checkconn *c = t->ctx;
    finish(c, CHECKCONN_FAILED,
           c->state == CHECKCONN_CONNECTING ? "connect timeout"
                                            : "response timeout",
           false);
}

void checkconn_start(struct checkconn *c, const char *req, size_t req_len,
                     uint64_t deadline_us)
{
    c->req = req;
    c->req_len = req_len;
    c->sent = 0;
    c->len = 0;
    c->status = 0;
    c->timer.fn = on_deadline;
    c->timer.ctx = c;
    if (c->uc && !upstream_conn_reusable(c->uc)) {
        upstream_close(c->uc, true);
        c->uc = NULL;
    }
    if (c->uc) {
        c->state = CHECKCONN_SENDING;
        upstream_nodelay(c->uc);
        if (loop_io_mod(c->loop, &c->uc->io, LOOP_WRITE) < 0) {
            finish(c, CHECKCONN_LOCAL, "epoll", false);
            return;
        }
        loop_timer_set(c->loop, &c->timer, deadline_us);
        return;
    }
    struct upstream_conn *uc = NULL;
    switch (upstream_connect(c->up, c->idx, true, c->pre, c->prelen, &uc)) {
    case UPSTREAM_REFUSED:
        c->state = CHECKCONN_CONNECTING;
        finish(c, CHECKCONN_FAILED, "connection refused", false);
        return;
    case UPSTREAM_ERROR:
        c->state = CHECKCONN_CONNECTING;
        finish(c, CHECKCONN_LOCAL, "connect", false);
        return;
    case UPSTREAM_CONNECTED:
    case UPSTREAM_IN_PROGRESS:
        break;
    }
    c->uc = uc;
    uc->io.fn = on_io;
    uc->io.ctx = c;
    /* Connected or not, writability says when to send (or that the connect
     * finished, with its result in SO_ERROR). */
    c->state = uc->connected ? CHECKCONN_SENDING : CHECKCONN_CONNECTING;
    if (loop_io_add(c->loop, &uc->io, uc->io.fd, LOOP_WRITE) < 0) {
        finish(c, CHECKCONN_LOCAL, "epoll", false);
        return;
    }
    loop_timer_set(c->loop, &c->timer, deadline_us);
}

void checkconn_stop(struct checkconn *c)
{
    if (c->loop)
        loop_timer_cancel(c->loop, &c->timer);
    if (c->uc) {
        upstream_close(c->uc, true);
        c->uc = NULL;
    }
    c->state = CHECKCONN_IDLE;
}

size_t checkconn_preamble(int send_proxy, uint8_t *buf, size_t cap)
{
    if (send_proxy == CONFIG_SEND_PROXY_OFF)
        return 0;
    int n = proxyproto_build(send_proxy == CONFIG_SEND_PROXY_V1 ? 1 : 2, buf,
                             cap, NULL, NULL);
    return n > 0 ? (size_t)n : 0;
}
