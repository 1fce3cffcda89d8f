/*
 * transport_tls: the handshake of each accepted TLS connection, driven by
 * the loop under its own deadline, and the transport table that carries a
 * finished connection's bytes (see tls.h and transport.h).
 *
 * A handshake has its own small object (socket watch, timer, SSL) so the
 * session never sees a connection that is not yet usable; when it
 * finishes, the socket is handed over (its watch removed, the session adds
 * its own) with a struct tls_conn as the transport's state.  The client
 * side towards backends (tls_client.c) uses the same transport.
 *
 * OpenSSL's error queue is emptied after every failure, so SSL_get_error
 * never reads a stale entry.
 */
#include "tls_impl.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

/* ---- the transport ---- */

/* Turns a failed SSL_read_ex/SSL_write_ex into the transport's answer. */
static ssize_t tls_fail_io(struct tls_conn *c, int rc, bool reading)
{
    int e = SSL_get_error(c->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        if (!reading)
            c->write_wants_read = true;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        if (reading)
            c->read_wants_write = true;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN: /* close_notify (or EOF, see tls.c) */
        if (reading)
            return 0;
        errno = EPIPE;
        return -1;
    case SSL_ERROR_SYSCALL:
        c->fatal = true;
        ERR_clear_error();
        if (errno == 0) {
            if (reading)
                return 0;
            errno = EPIPE;
        }
        return -1;
    default:
        c->fatal = true;
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

static ssize_t tls_read(int fd, void *state, char *p, size_t n)
{
    (void)fd;
    struct tls_conn *c = state;
    size_t got;
    c->read_wants_write = false;
    tls_idle_touch(&c->idle);
    errno = 0;
    int rc = SSL_read_ex(c->ssl, p, n, &got);
    if (rc == 1) {
        c->write_wants_read = false; /* what a write waited for came */
        return (ssize_t)got;
    }
    return tls_fail_io(c, rc, true);
}

static ssize_t tls_write(int fd, void *state, const char *p, size_t n)
{
    (void)fd;
    struct tls_conn *c = state;
    size_t put;
    c->write_wants_read = false;
    tls_idle_touch(&c->idle);
    errno = 0;
    int rc = SSL_write_ex(c->ssl, p, n, &put);
    if (rc == 1) {
        c->read_wants_write = false; /* what a read waited for went */
        return (ssize_t)put;
    }
    return tls_fail_io(c, rc, false);
}

static int tls_shutdown(int fd, void *state)
{
    (void)fd;
    struct tls_conn *c = state;
    if (!c->fatal && SSL_shutdown(c->ssl) < 0)
        ERR_clear_error(); /* the alert is best effort */
    return 0;
}

static void tls_release(void *state)
{
    struct tls_conn *c = state;
    if (!c)
        return;
    /* one try at close_notify: the socket is closed right after */
    tls_shutdown(-1, c);
    tls_idle_forget(&c->idle);
    SSL_free(c->ssl);
    free(c);
}

static unsigned tls_wants(const void *state)
{
    const struct tls_conn *c = state;
    return (c->read_wants_write ? LOOP_WRITE : 0u) |
           (c->write_wants_read ? LOOP_READ : 0u);
}

static bool tls_buffered(const void *state)
{
    const struct tls_conn *c = state;
    return SSL_has_pending(c->ssl) != 0;
}

static void tls_info(const void *state, struct transport_info *out)
{
    const struct tls_conn *c = state;
    out->version = SSL_get_version(c->ssl);
    out->cipher = SSL_get_cipher_name(c->ssl);
    out->resumed = SSL_session_reused(c->ssl) != 0;
    out->handshake_us = c->handshake_us;
}

const struct transport transport_tls = {
    .name = "tls",
    .secure = true,
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .release = tls_release,
    .wants = tls_wants,
    .buffered = tls_buffered,
    .info = tls_info,
};

/* ---- handshakes ---- */

struct tls_hs {
    struct loop_io io;
    struct loop_timer timer;
    struct tls_acceptor *a;
    struct tls_server *ts; /* the contexts it started on (a reference) */
    SSL *ssl;
    struct tls_idle idle; /* a stalled handshake frees its buffers too */
    uint64_t t0;
    struct tls_hs *prev, *next;
    socklen_t salen;
    struct sockaddr_storage sa;
};

struct tls_acceptor {
    struct loop *loop;
    struct tls_server *ts;
    unsigned handshake_ms;
    tls_ready_fn *ready;
    tls_gone_fn *gone;
    void *arg;
    struct tls_hs *all;
    struct tls_counters c;
};

static void hs_unlink(struct tls_hs *hs)
{
    struct tls_acceptor *a = hs->a;
    if (hs->prev)
        hs->prev->next = hs->next;
    else
        a->all = hs->next;
    if (hs->next)
        hs->next->prev = hs->prev;
    a->c.in_progress--;
    tls_idle_forget(&hs->idle);
    loop_timer_cancel(a->loop, &hs->timer);
    tls_server_put(hs->ts);
    loop_defer(a->loop, free, hs);
}

/* Why a handshake failed, from SSL_get_error and the queue's reason. */
static enum tls_fail classify(int e)
{
    if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
        return TLS_FAIL_CLOSED;
    unsigned long err = ERR_peek_last_error();
    if (e != SSL_ERROR_SSL || ERR_GET_LIB(err) != ERR_LIB_SSL)
        return TLS_FAIL_OTHER;
    switch (ERR_GET_REASON(err)) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return TLS_FAIL_CLOSED;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        return TLS_FAIL_CIPHER;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return TLS_FAIL_VERSION;
    default:
        return TLS_FAIL_PROTOCOL;
    }
}

static void hs_fail(struct tls_hs *hs, enum tls_fail why)
{
    struct tls_acceptor *a = hs->a;
    a->c.failed[why]++;
    if (log_verbosity >= 2) {
        char buf[160] = "";
        unsigned long e = ERR_peek_last_error();
        if (e)
            ERR_error_string_n(e, buf, sizeof(buf));
        log_debug("TLS handshake failed (%s) %s", tls_fail_str(why), buf);
    }
    ERR_clear_error();
    tls_idle_forget(&hs->idle);
    SSL_free(hs->ssl);
    hs->ssl = NULL;
    loop_io_close(a->loop, &hs->io);
    hs_unlink(hs);
    if (a->gone)
        a->gone(a->arg);
}

static void hs_done(struct tls_hs *hs)
{
    struct tls_acceptor *a = hs->a;
    struct tls_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        hs_fail(hs, TLS_FAIL_OTHER);
        return;
    }
    uint64_t us = loop_now(a->loop) - hs->t0;
    c->ssl = hs->ssl;
    tls_idle_forget(&hs->idle);
    tls_idle_adopt(&c->idle, c->ssl);
    c->handshake_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    a->c.handshakes++;
    a->c.handshake_us += us;
    if (SSL_session_reused(c->ssl))
        a->c.resumed++;
    if (SSL_version(c->ssl) == TLS1_3_VERSION)
        a->c.tls13++;
    int fd = hs->io.fd;
    loop_io_del(a->loop, &hs->io);
    hs->ssl = NULL;
    struct sockaddr_storage sa = hs->sa;
    socklen_t salen = hs->salen;
    hs_unlink(hs);
    a->ready(a->arg, fd, (struct sockaddr *)&sa, salen, &transport_tls, c);
}

static void hs_step(struct tls_hs *hs)
{
    tls_idle_touch(&hs->idle);
    int rc = SSL_do_handshake(hs->ssl);
    if (rc == 1) {
        hs_done(hs);
        return;
    }
    int e = SSL_get_error(hs->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        unsigned ev = e == SSL_ERROR_WANT_READ ? LOOP_READ : LOOP_WRITE;
        if (loop_io_mod(hs->a->loop, &hs->io, ev) < 0)
            hs_fail(hs, TLS_FAIL_OTHER);
        return;
    }
    hs_fail(hs, classify(e));
}

static void on_hs_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    hs_step(io->ctx);
}

static void on_hs_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    hs_fail(t->ctx, TLS_FAIL_TIMEOUT);
}

int tls_accept(struct tls_acceptor *a, int fd, const struct sockaddr *sa,
               socklen_t salen)
{
    struct tls_hs *hs = calloc(1, sizeof(*hs));
    if (!hs)
        goto fail;
    hs->ssl = tls_server_new_ssl(a->ts);
    if (!hs->ssl || !SSL_set_fd(hs->ssl, fd))
        goto fail;
    SSL_set_accept_state(hs->ssl);
    hs->io.fn = on_hs_io;
    hs->io.ctx = hs;
    if (loop_io_add(a->loop, &hs->io, fd, LOOP_READ) < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    hs->a = a;
    hs->ts = tls_server_ref(a->ts);
    hs->t0 = loop_now(a->loop);
    if (salen > sizeof(hs->sa))
        salen = sizeof(hs->sa);
    memcpy(&hs->sa, sa, salen);
    hs->salen = salen;
    hs->timer.fn = on_hs_timer;
    hs->timer.ctx = hs;
    loop_timer_after(a->loop, &hs->timer, (uint64_t)a->handshake_ms * 1000);
    hs->next = a->all;
    if (a->all)
        a->all->prev = hs;
    a->all = hs;
    a->c.in_progress++;
    tls_idle_adopt(&hs->idle, hs->ssl);
    return 0;
fail:
    if (hs)
        SSL_free(hs->ssl);
    ERR_clear_error();
    free(hs);
    close(fd);
    return -1;
}

/* ---- the acceptor ---- */

struct tls_acceptor *tls_acceptor_create(struct loop *loop,
                                         struct tls_server *ts,
                                         unsigned handshake_ms,
                                         tls_ready_fn *ready, tls_gone_fn *gone,
                                         void *arg)
{
    struct tls_acceptor *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->loop = loop;
    a->ts = tls_server_ref(ts);
    a->handshake_ms = handshake_ms;
    a->ready = ready;
    a->gone = gone;
    a->arg = arg;
    return a;
}

void tls_acceptor_swap(struct tls_acceptor *a, struct tls_server *ts,
                       unsigned handshake_ms)
{
    struct tls_server *old = a->ts;
    a->ts = tls_server_ref(ts);
    a->handshake_ms = handshake_ms;
    tls_server_put(old);
}

size_t tls_acceptor_pending(const struct tls_acceptor *a)
{
    return a ? (size_t)a->c.in_progress : 0;
}

const struct tls_counters *tls_acceptor_counters(const struct tls_acceptor *a)
{
    return &a->c;
}

void tls_acceptor_abort(struct tls_acceptor *a)
{
    if (!a)
        return;
    tls_gone_fn *gone = a->gone;
    a->gone = NULL; /* one call for all of them, below */
    while (a->all)  /* each call unlinks one */
        hs_fail(a->all, TLS_FAIL_OTHER);
    a->gone = gone;
    if (gone)
        gone(a->arg);
}

void tls_acceptor_destroy(struct tls_acceptor *a)
{
    if (!a)
        return;
    a->gone = NULL; /* nobody to tell: everything is going */
    tls_acceptor_abort(a);
    tls_server_put(a->ts);
    loop_defer(a->loop, free, a);
}
