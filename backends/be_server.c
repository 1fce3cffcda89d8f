/*
 * be_server: the listener (accept, EMFILE back-off), the workers with their
 * FIFO queue and service timers, the phase schedule, and set-up/tear-down.
 * Connections themselves are in be_conn.c.
 */
#include "be_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "be_internal.h"

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lbbackend: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const struct be_profile *be_sched_profile(struct be_server *s)
{
    const struct be_options *o = s->o;
    uint64_t elapsed = loop_now(s->loop) - s->start_us;
    /* Phases are sorted and time only moves forward. */
    while (s->phase + 1 < o->nphases &&
           o->phases[s->phase + 1].at_us <= elapsed)
        s->phase++;
    return s->phase < 0 ? &o->profile : &o->phases[s->phase].profile;
}

/* Writes bytes as the inside of a JSON string. */

/* ---- workers ---- */

static void queue_push(struct be_server *s, struct conn *c)
{
    c->qnext = NULL;
    c->qprev = s->q_tail;
    if (s->q_tail)
        s->q_tail->qnext = c;
    else
        s->q_head = c;
    s->q_tail = c;
    s->queued++;
    if (s->queued > s->st.max_queued)
        s->st.max_queued = s->queued;
}

static void queue_remove(struct be_server *s, struct conn *c)
{
    if (c->qprev)
        c->qprev->qnext = c->qnext;
    else
        s->q_head = c->qnext;
    if (c->qnext)
        c->qnext->qprev = c->qprev;
    else
        s->q_tail = c->qprev;
    c->qnext = c->qprev = NULL;
    s->queued--;
}

static void release_worker(struct conn *c)
{
    if (!c->has_worker)
        return;
    c->has_worker = 0;
    c->srv->busy--;
}

static void finish_service(struct conn *c)
{
    release_worker(c);
    c->state = CS_READING;
    be_conn_respond_app(c);
}

/* Gives c a worker and starts its service time at start_us (the moment the
 * worker became free; now for a new request).  With inline_ok a zero
 * service time answers at once (the fast path); otherwise a timer runs. */
static void start_service(struct conn *c, int inline_ok, uint64_t start_us)
{
    struct be_server *s = c->srv;
    c->has_worker = 1;
    s->busy++;
    c->service_us = be_profile_sample(be_sched_profile(s), &s->rng);
    if (c->service_us == 0 && inline_ok) {
        finish_service(c);
        return;
    }
    c->state = CS_SERVICE;
    loop_timer_set(s->loop, &c->timer, start_us + c->service_us);
}

/* Starts queued requests on free workers.  freed_us is when the worker was
 * freed: a queued request's service starts then, not when the loop got
 * round to it, so an emulated K-worker server keeps its exact capacity
 * (K / mean service time) however late its timers fire. */
static void pump_queue(struct be_server *s, uint64_t freed_us)
{
    while (s->q_head && (s->o->workers == 0 || s->busy < s->o->workers)) {
        struct conn *c = s->q_head;
        queue_remove(s, c);
        uint64_t start = freed_us > c->queued_at ? freed_us : c->queued_at;
        c->queue_us = start - c->queued_at;
        start_service(c, 0, start);
    }
}

void be_sched_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct conn *c = t->ctx;
    struct be_server *s = c->srv;
    uint64_t freed = t->when_us;
    finish_service(c);
    pump_queue(s, freed);
    be_conn_drive(c);
}

void be_sched_submit(struct conn *c)
{
    struct be_server *s = c->srv;
    if (s->o->workers == 0 || s->busy < s->o->workers) {
        start_service(c, 1, loop_now(s->loop));
    } else {
        c->state = CS_QUEUED;
        c->queued_at = loop_now(s->loop);
        queue_push(s, c);
    }
}

void be_sched_forget(struct conn *c)
{
    struct be_server *s = c->srv;
    if (c->state == CS_QUEUED)
        queue_remove(s, c);
    if (!c->has_worker)
        return;
    release_worker(c);
    if (!s->destroying)
        pump_queue(s, loop_now(s->loop));
}

static void on_accept_resume(struct loop *loop, struct loop_timer *t)
{
    struct be_server *s = t->ctx;
    loop_io_mod(loop, &s->lio, LOOP_READ);
}

static void on_accept(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)events;
    struct be_server *s = io->ctx;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            be_conn_open(s, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN)
            return;
        s->st.accept_errors++;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            /* Level-triggered: pause the listener or we would spin. */
            uint64_t now = loop_now(loop);
            if (now - s->last_emfile_warn > 1000000 || !s->last_emfile_warn) {
                warnx_("accept: %s; pausing the listener", strerror(errno));
                s->last_emfile_warn = now;
            }
            loop_io_mod(loop, io, 0);
            loop_timer_after(loop, &s->accept_timer, EMFILE_PAUSE_US);
            return;
        }
        warnx_("accept: %s", strerror(errno));
        return;
    }
}

/* ---- setup ---- */

static int make_body(struct be_server *s)
{
    const struct be_options *o = s->o;
    char text[128];
    int n = snprintf(text, sizeof(text), "Hello from backend %s\n", o->id);
    s->body_len = o->body_bytes < 0 ? (size_t)n : (size_t)o->body_bytes;
    s->body = malloc(s->body_len + 1);
    if (!s->body)
        return -1;
    for (size_t i = 0; i < s->body_len; i++)
        s->body[i] = text[i % (size_t)n];
    if (o->body_bytes > 0)
        s->body[s->body_len - 1] = '\n';
    s->ok_prefix_len = (size_t)snprintf(
        s->ok_prefix, sizeof(s->ok_prefix),
        "HTTP/1.1 200 OK\r\nX-Backend-Id: %s\r\nContent-Type: text/plain\r\n"
        "Content-Length: %zu\r\n",
        o->id, s->body_len);
    return 0;
}

struct be_server *be_server_create(struct loop *loop,
                                   const struct be_options *o, char *err,
                                   size_t errlen)
{
    struct be_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->o = o;
    s->lio.fd = -1;
    s->phase = -1;
    s->start_us = loop_now(loop);
    s->fault_total = o->error_rate + o->reset_rate + o->hang_rate;
    uint64_t seed =
        o->seed_set ? o->seed : loop_clock_us() ^ ((uint64_t)getpid() << 32);
    be_rng_seed(&s->rng, seed);
    s->accept_timer.fn = on_accept_resume;
    s->accept_timer.ctx = s;
    if (make_body(s) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (o->log_requests[0]) {
        s->reqlog = fopen(o->log_requests, "a");
        if (!s->reqlog) {
            snprintf(err, errlen, "%s: %s", o->log_requests, strerror(errno));
            goto fail;
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->listen_address, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "bad listen address '%s' (IPv4 expected)",
                 o->listen_address);
        goto fail;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto fail;
    }
    s->lio.fd = fd;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 4096) < 0) {
        snprintf(err, errlen, "%s:%d: %s", o->listen_address, o->port,
                 strerror(errno));
        goto fail;
    }
    socklen_t slen = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &slen);
    s->port = ntohs(sa.sin_port);
    s->lio.fn = on_accept;
    s->lio.ctx = s;
    if (loop_io_add(loop, &s->lio, fd, LOOP_READ) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        goto fail;
    }
    if (o->verbose >= 2)
        warnx_("seed %" PRIu64, seed);
    return s;
fail:
    be_server_destroy(s);
    return NULL;
}

int be_server_port(const struct be_server *s)
{
    return s->port;
}

void be_server_destroy(struct be_server *s)
{
    if (!s)
        return;
    /* Called after loop_run returned: no dispatch round is running, so
     * connections are released at once instead of deferred. */
    s->destroying = 1;
    while (s->live)
        be_conn_close(s->live);
    while (s->free_list) {
        struct conn *c = s->free_list;
        s->free_list = c->qnext;
        free(c->hbuf);
        free(c);
    }
    loop_timer_cancel(s->loop, &s->accept_timer);
    if (s->lio.fd >= 0) {
        loop_io_del(s->loop, &s->lio);
        close(s->lio.fd);
    }
    if (s->reqlog)
        fclose(s->reqlog);
    free(s->body);
    free(s);
}
