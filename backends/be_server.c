/*
 * be_server: the listener (accept, EMFILE back-off), the phase schedule,
 * and set-up/tear-down.  Connections are in be_conn.c, the workers and
 * their queue in be_sched.c.
 */
#include "be_server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "be_internal.h"
#include "net.h"

#define BE_BACKLOG 4096 /* a benchmark opens thousands of connections */

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

const struct be_profile *be_server_profile(struct be_server *s)
{
    const struct be_options *o = s->o;
    uint64_t elapsed = loop_now(s->loop) - s->start_us;
    /* Phases are sorted and time only moves forward. */
    while (s->phase + 1 < o->nphases &&
           o->phases[s->phase + 1].at_us <= elapsed)
        s->phase++;
    return s->phase < 0 ? &o->profile : &o->phases[s->phase].profile;
}

/* be_sched's draw of a service time: from the profile in effect now. */
static uint64_t sample_service(void *ctx)
{
    struct be_server *s = ctx;
    return be_profile_sample(be_server_profile(s), &s->rng);
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
    /* the text repeated: one copy, then doubling (a byte loop with a
     * modulo took seconds for --body-bytes 1g) */
    size_t done = s->body_len < (size_t)n ? s->body_len : (size_t)n;
    memcpy(s->body, text, done);
    while (done < s->body_len) {
        size_t chunk = done < s->body_len - done ? done : s->body_len - done;
        memcpy(s->body + done, s->body, chunk);
        done += chunk;
    }
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
    be_sched_init(&s->sched, o->workers, sample_service, be_conn_service_start,
                  s);
    s->accept_timer.fn = on_accept_resume;
    s->accept_timer.ctx = s;
    if (make_body(s) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (be_tls_init(s, err, errlen) < 0)
        goto fail;
    if (o->log_requests[0]) {
        s->reqlog = fopen(o->log_requests, "a");
        if (!s->reqlog) {
            snprintf(err, errlen, "%s: %s", o->log_requests, strerror(errno));
            goto fail;
        }
    }
    struct net_addr sa;
    char spec[sizeof(o->unix_path) + 8];
    snprintf(spec, sizeof(spec), "unix:%s", o->unix_path);
    if (o->unix_path[0] ? net_parse(spec, &sa, err, errlen) < 0
                        : net_parse_ip(o->listen_address, (unsigned)o->port,
                                       &sa, err, errlen) < 0)
        goto fail;
    s->lio.fd = net_listen(&sa, BE_BACKLOG, 0, err, errlen);
    if (s->lio.fd < 0)
        goto fail;
    s->port = o->unix_path[0] ? 0 : net_local_port(s->lio.fd);
    s->lio.fn = on_accept;
    s->lio.ctx = s;
    if (loop_io_add(loop, &s->lio, s->lio.fd, LOOP_READ) < 0) {
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
        s->free_list = c->free_next;
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
    be_tls_fini(s);
    free(s->body);
    free(s);
}
