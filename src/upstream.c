/*
 * upstream: backend addresses, idle pools and non-blocking connect (and,
 * for a backend marked ",tls", the TLS handshake after it: tls_client.c).
 */
#include "upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "net.h"
#include "tls.h"
#include "tls_client.h"

#define TLS_WARN_US 10000000u /* a backend's TLS failures: one warning/10 s */

struct backend {
    char id[32];
    char addr_str[NET_ADDRSTRLEN];
    struct net_addr addr;
    struct upstream_conn *idle_head, *idle_tail; /* head = most recent */
    size_t nidle;
    /* One timer per pool, for its oldest connection (the tail): pooling
     * and unpooling cost no timer operation. */
    struct loop_timer idle_timer;
    struct upstream *up;
    bool live;    /* false: removed (or never used) */
    unsigned gen; /* grows at each removal: older connections are stale */
    bool tls;
    char tls_host[256];   /* as given to upstream_add */
    char tls_sni[256];    /* the SNI sent ("": none) */
    char tls_verify[256]; /* what the certificate must name ("": none) */
    struct tls_resume resume;
    uint64_t tls_warned_us;
};

struct upstream {
    struct loop *loop;
    size_t nbackends;
    unsigned pool_max_idle;
    uint64_t pool_idle_timeout_us;
    struct tls_client *tls; /* NULL: no backend of the pool speaks TLS */
    char tls_sni[256];      /* [pool] upstream_tls_sni ("": the names) */
    struct backend backends[CONFIG_MAX_BACKENDS];
};

static void on_idle_timeout(struct loop *loop, struct loop_timer *t);

struct upstream *upstream_create(struct loop *loop, const struct config *cfg,
                                 char *err, size_t errlen)
{
    struct upstream *up = calloc(1, sizeof(*up));
    if (!up) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    up->loop = loop;
    if (tls_client_wanted(cfg) && upstream_enable_tls(up, cfg, err, errlen)) {
        free(up);
        return NULL;
    }
    up->pool_max_idle = cfg->pool_max_idle;
    up->pool_idle_timeout_us = (uint64_t)cfg->pool_idle_timeout_ms * 1000;
    for (size_t i = 0; i < CONFIG_MAX_BACKENDS; i++) {
        struct backend *b = &up->backends[i];
        b->up = up;
        b->idle_timer.fn = on_idle_timeout;
        b->idle_timer.ctx = b;
    }
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const struct config_backend *cb = &cfg->backends[i];
        char spec[128];
        if (cb->kind != CONFIG_BACKEND_ADDR) {
            /* a name is resolved (src/pool_dns.c) and added when answered */
            snprintf(err, errlen, "backend %s: %s is a name to resolve", cb->id,
                     cb->name);
            goto fail;
        }
        if (config_backend_addr(cb, spec, sizeof(spec)) < 0) {
            snprintf(err, errlen, "backend %s: address too long", cb->id);
            goto fail;
        }
        if (upstream_add(up, i, cb->id, spec, cb->tls ? "" : NULL, err,
                         errlen) < 0)
            goto fail;
    }
    return up;
fail:
    upstream_destroy(up);
    return NULL;
}

int upstream_enable_tls(struct upstream *up, const struct config *cfg,
                        char *err, size_t errlen)
{
    if (up->tls)
        return 0;
    up->tls = tls_client_create(cfg, err, errlen);
    if (!up->tls)
        return -1;
    snprintf(up->tls_sni, sizeof(up->tls_sni), "%s", cfg->upstream_tls_sni);
    return 0;
}

/* What a TLS backend's connections send as SNI and check its certificate
 * against: the pool's override, else the name it was known by, else (no
 * SNI) its numeric address; a Unix socket has none. */
static void tls_names(struct backend *b, const struct upstream *up,
                      const char *host, const struct config_backend *cb)
{
    const char *name = up->tls_sni[0] ? up->tls_sni : host;
    snprintf(b->tls_host, sizeof(b->tls_host), "%s", host);
    snprintf(b->tls_sni, sizeof(b->tls_sni), "%s", name);
    snprintf(b->tls_verify, sizeof(b->tls_verify), "%s",
             name[0] ? name : cb->host);
}

int upstream_add(struct upstream *up, size_t idx, const char *id,
                 const char *addr, const char *tls_host, char *err,
                 size_t errlen)
{
    struct config_backend cb;
    struct net_addr na;
    bool has_id;
    char what[160], spec[128];

    if (idx >= CONFIG_MAX_BACKENDS || idx > up->nbackends ||
        (idx < up->nbackends && up->backends[idx].live)) {
        snprintf(err, errlen, "backend %s: slot %zu is not free", id, idx);
        return -1;
    }
    if (strlen(id) >= sizeof(up->backends[idx].id)) {
        snprintf(err, errlen, "backend id too long");
        return -1;
    }
    /* the configuration's spelling, without options: ADDR:PORT|unix:PATH */
    if (strchr(addr, ',') ||
        config_backend_parse(addr, false, &cb, &has_id, what, sizeof(what)) <
            0 ||
        config_backend_addr(&cb, spec, sizeof(spec)) < 0 ||
        net_parse(spec, &na, what, sizeof(what)) < 0) {
        snprintf(err, errlen, "backend %s: expected ADDR:PORT or unix:PATH",
                 id);
        return -1;
    }
    if (tls_host && !up->tls) {
        snprintf(err, errlen,
                 "backend %s: TLS in a pool without a TLS "
                 "backend or upstream_tls_ca_file in its configuration",
                 id);
        return -1;
    }
    if (tls_host && !tls_host[0] && cb.unix_path[0] && !up->tls_sni[0] &&
        tls_client_verifies(up->tls)) {
        snprintf(err, errlen,
                 "backend %s: TLS over unix:%s has no host name to verify: "
                 "give one (tls_name)",
                 id, cb.unix_path);
        return -1;
    }
    struct backend *b = &up->backends[idx];
    tls_resume_clear(&b->resume); /* a new occupant's sessions are its own */
    b->tls = tls_host != NULL;
    if (b->tls)
        tls_names(b, up, tls_host, &cb);
    b->addr = na;
    snprintf(b->id, sizeof(b->id), "%s", id);
    net_format((struct sockaddr *)&b->addr.ss, b->addr_str,
               sizeof(b->addr_str));
    b->live = true;
    if (idx == up->nbackends)
        up->nbackends++;
    return 0;
}

/* Connection structs whose round is over, kept for the next connects: a
 * connection per request would otherwise cost a calloc and a free each.
 * Bounded; emptied when an upstream table goes.  Off under AddressSanitizer,
 * so that a use of a closed connection is still caught there rather than
 * landing in the next one. */
#ifdef __SANITIZE_ADDRESS__
#define CONN_CACHE_ON 0
#else
#define CONN_CACHE_ON 1
#endif
#define CONN_CACHE 64
static struct upstream_conn *conn_cache[CONN_CACHE];
static unsigned nconn_cache;

static struct upstream_conn *conn_alloc(void)
{
    if (!CONN_CACHE_ON || nconn_cache == 0)
        return calloc(1, sizeof(struct upstream_conn));
    struct upstream_conn *uc = conn_cache[--nconn_cache];
    memset(uc, 0, sizeof(*uc));
    return uc;
}

static void conn_recycle(void *p)
{
    if (CONN_CACHE_ON && nconn_cache < CONN_CACHE)
        conn_cache[nconn_cache++] = p;
    else
        free(p);
}

static void conn_free(struct upstream_conn *uc, bool reset)
{
    struct loop *loop = uc->up->loop;
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(uc->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (uc->tr)
        uc->tr->release(uc->tr_state); /* before its socket goes */
    uc->tr_state = NULL;
    loop_io_close(loop, &uc->io);
    free(uc->pre);
    uc->pre = NULL;
    loop_defer(loop, conn_recycle, uc); /* after the round: stale events */
}

static void idle_unlink(struct backend *b, struct upstream_conn *uc)
{
    if (uc->prev)
        uc->prev->next = uc->next;
    else
        b->idle_head = uc->next;
    if (uc->next)
        uc->next->prev = uc->prev;
    else
        b->idle_tail = uc->prev;
    uc->prev = uc->next = NULL;
    b->nidle--;
}

static void close_idle(struct upstream *up, struct backend *b)
{
    loop_timer_cancel(up->loop, &b->idle_timer);
    while (b->idle_head) {
        struct upstream_conn *uc = b->idle_head;
        idle_unlink(b, uc);
        conn_free(uc, false);
    }
}

void upstream_destroy(struct upstream *up)
{
    if (!up)
        return;
    for (size_t i = 0; i < up->nbackends; i++) {
        close_idle(up, &up->backends[i]);
        tls_resume_clear(&up->backends[i].resume);
    }
    tls_client_destroy(up->tls);
    free(up);
    while (nconn_cache > 0)
        free(conn_cache[--nconn_cache]);
}

int upstream_remove(struct upstream *up, size_t idx)
{
    if (!upstream_live(up, idx))
        return -1;
    struct backend *b = &up->backends[idx];
    close_idle(up, b);
    tls_resume_clear(&b->resume);
    b->live = false;
    b->gen++;
    return 0;
}

bool upstream_live(const struct upstream *up, size_t idx)
{
    return idx < up->nbackends && up->backends[idx].live;
}

size_t upstream_count(const struct upstream *up)
{
    return up->nbackends;
}

const char *upstream_id(const struct upstream *up, size_t idx)
{
    return up->backends[idx].id;
}

const char *upstream_addr(const struct upstream *up, size_t idx)
{
    return up->backends[idx].addr_str;
}

const char *upstream_tls_host(const struct upstream *up, size_t idx)
{
    return up->backends[idx].tls ? up->backends[idx].tls_host : NULL;
}

size_t upstream_idle_count(const struct upstream *up, size_t idx)
{
    return idx < up->nbackends ? up->backends[idx].nidle : 0;
}

size_t upstream_pool_idle(void *up, size_t idx)
{
    return upstream_idle_count(up, idx);
}

/* An idle connection became readable: the backend closed it, or sent bytes
 * nobody asked for.  Either way it is unusable. */
static void on_idle_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct upstream_conn *uc = io->ctx;
    idle_unlink(&uc->up->backends[uc->backend], uc);
    conn_free(uc, false);
}

/* The pool's oldest connection may have idled out: close every one that
 * did, then wait for the next oldest. */
static void on_idle_timeout(struct loop *loop, struct loop_timer *t)
{
    struct backend *b = t->ctx;
    uint64_t timeout = b->up->pool_idle_timeout_us;
    uint64_t now = loop_now(loop);
    struct upstream_conn *uc;
    while ((uc = b->idle_tail) != NULL && uc->idle_since_us + timeout <= now) {
        idle_unlink(b, uc);
        conn_free(uc, false);
    }
    if (uc)
        loop_timer_set(loop, &b->idle_timer, uc->idle_since_us + timeout);
}

/* True when nothing waits to be read on a connection.  A byte there belongs
 * to no request (a body longer than its Content-Length, a body after a
 * HEAD, 204 or 304 answer, a close), so the connection is unusable. */
static bool socket_quiet(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* socket_quiet for a connection: its TLS holds no decoded byte either
 * (the socket is asked only with check_socket). */
static bool conn_quiet(const struct upstream_conn *uc, bool check_socket)
{
    if (uc->tr->buffered && uc->tr->buffered(uc->tr_state))
        return false;
    return !check_socket || socket_quiet(uc->io.fd);
}

bool upstream_conn_reusable(const struct upstream_conn *uc)
{
    const struct upstream *up = uc->up;
    return upstream_live(up, uc->backend) &&
           uc->gen == up->backends[uc->backend].gen && conn_quiet(uc, true);
}

struct upstream_conn *upstream_get_idle(struct upstream *up, size_t idx)
{
    struct backend *b = &up->backends[idx];
    struct upstream_conn *uc;
    while ((uc = b->idle_head) != NULL) {
        idle_unlink(b, uc);
        /* bytes that arrived since it was pooled would be taken for the
         * response.  It was quiet when pooled (upstream_release), and an
         * event for it closes it (on_idle_io), so the socket is asked
         * only when the loop may hold such an event not yet dispatched;
         * what came after this round's wait is not seen either way */
        if (conn_quiet(uc, loop_io_maybe_ready(up->loop, &uc->io)))
            return uc;
        conn_free(uc, false);
    }
    return NULL;
}

void upstream_nodelay(struct upstream_conn *uc)
{
    if (uc->nodelay)
        return;
    int one = 1;
    setsockopt(uc->io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uc->nodelay = true;
}

int upstream_send_preamble(struct upstream_conn *uc)
{
    if (!uc->pre)
        return 1;
    ssize_t n = send(uc->io.fd, uc->pre, uc->prelen, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN))
        return 0;
    if (n < 0)
        return -1;
    if ((size_t)n != uc->prelen) {
        errno = EIO; /* a fresh socket's buffer holds a few hundred bytes */
        return -1;
    }
    free(uc->pre);
    uc->pre = NULL;
    uc->prelen = 0;
    return 1;
}

/* Keeps (or, when connected, sends) the preamble of a new connection;
 * 0, or -1 with errno set. */
static int start_preamble(struct upstream_conn *uc, const void *pre,
                          size_t prelen)
{
    if (prelen == 0)
        return 0;
    if (prelen > UPSTREAM_PREAMBLE_MAX) {
        errno = EINVAL;
        return -1;
    }
    uc->pre = malloc(prelen);
    if (!uc->pre) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(uc->pre, pre, prelen);
    uc->prelen = (uint16_t)prelen;
    if (!uc->connected)
        return 0;
    int rc = upstream_send_preamble(uc);
    if (rc == 0)
        errno = EIO;
    return rc > 0 ? 0 : -1;
}

enum upstream_connect_result upstream_connect(struct upstream *up, size_t idx,
                                              bool nodelay, const void *pre,
                                              size_t prelen,
                                              struct upstream_conn **out)
{
    struct upstream_conn *uc = conn_alloc();
    if (!uc) {
        errno = ENOMEM;
        return UPSTREAM_ERROR;
    }
    struct backend *b = &up->backends[idx];
    uc->tr = &transport_tcp;
    int fd = -1;
    enum net_connect_result r = net_connect(&b->addr, &fd, NULL, 0);
    if (r == NET_REFUSED || r == NET_ERROR) {
        int e = errno;
        conn_recycle(uc);
        errno = e;
        return r == NET_REFUSED ? UPSTREAM_REFUSED : UPSTREAM_ERROR;
    }
    if (b->tls) { /* set up now, so its holder sees it from the start */
        uc->tr_state = tls_client_start(up->tls, fd, b->tls_sni,
                                        b->tls_verify[0] ? b->tls_verify : NULL,
                                        &b->resume);
        if (!uc->tr_state) {
            close(fd);
            conn_recycle(uc);
            errno = ENOMEM;
            return UPSTREAM_ERROR;
        }
        uc->tr = &transport_tls;
        uc->tls = true;
        nodelay = true; /* the handshake's flights, then many requests */
    }
    uc->io.fd = fd;
    uc->up = up;
    uc->backend = idx;
    uc->gen = up->backends[idx].gen;
    uc->nodelay = net_is_unix(&up->backends[idx].addr); /* no Nagle there */
    if (nodelay)
        upstream_nodelay(uc);
    uc->connected = r == NET_CONNECTED;
    if (start_preamble(uc, pre, prelen) < 0) {
        int e = errno;
        uc->tr->release(uc->tr_state);
        free(uc->pre);
        close(fd);
        conn_recycle(uc);
        errno = e;
        return e == ENOMEM || e == EINVAL ? UPSTREAM_ERROR : UPSTREAM_REFUSED;
    }
    if (uc->tls)
        uc->connected = false; /* the handshake comes first */
    *out = uc;
    return uc->connected ? UPSTREAM_CONNECTED : UPSTREAM_IN_PROGRESS;
}

/* One step of a TLS handshake: upstream_finish_connect's answer. */
static int tls_step(struct upstream_conn *uc)
{
    struct backend *b = &uc->up->backends[uc->backend];
    char why[200];
    unsigned ev = LOOP_READ;
    switch (tls_client_handshake(uc->tr_state, why, sizeof(why))) {
    case TLSC_DONE:
        uc->handshaking = false;
        uc->connected = true;
        return 1;
    case TLSC_WANT_READ:
        break;
    case TLSC_WANT_WRITE:
        ev = LOOP_WRITE;
        break;
    case TLSC_FAILED: {
        uint64_t now = loop_now(uc->up->loop);
        uc->tls_failed = true;
        if (b->tls_warned_us == 0 || now - b->tls_warned_us >= TLS_WARN_US) {
            b->tls_warned_us = now;
            log_warnx("backend %s (%s): TLS handshake failed: %s", b->id,
                      b->addr_str, why);
        }
        errno = EPROTO;
        return -1;
    }
    }
    if (loop_io_mod(uc->up->loop, &uc->io, ev) < 0)
        return -1;
    errno = EAGAIN;
    return 0;
}

int upstream_finish_connect(struct upstream_conn *uc)
{
    if (!uc->handshaking) {
        if (net_connect_finish(uc->io.fd) < 0)
            return -1;
        if (upstream_send_preamble(uc) <= 0) { /* before TLS, if any */
            if (uc->pre && errno == EAGAIN)
                errno = EIO;
            return -1;
        }
        if (!uc->tls) {
            uc->connected = true;
            return 1;
        }
        uc->handshaking = true;
    }
    return tls_step(uc);
}

void upstream_close(struct upstream_conn *uc, bool reset)
{
    conn_free(uc, reset);
}

void upstream_release(struct upstream_conn *uc, bool check_socket)
{
    struct upstream *up = uc->up;
    struct backend *b = &up->backends[uc->backend];
    /* a removed backend's, or its slot's previous occupant's: closed */
    if (up->pool_max_idle == 0 || !uc->io.registered || !b->live ||
        uc->gen != b->gen || !conn_quiet(uc, check_socket)) {
        conn_free(uc, false);
        return;
    }
    if (b->nidle >= up->pool_max_idle) {
        struct upstream_conn *old =
            b->idle_tail; /* evict the least recently used */
        idle_unlink(b, old);
        conn_free(old, false);
    }
    uc->io.fn = on_idle_io;
    uc->io.ctx = uc;
    loop_io_mod(up->loop, &uc->io, LOOP_READ);
    uc->idle_since_us = loop_now(up->loop);
    if (!loop_timer_armed(&b->idle_timer))
        loop_timer_set(up->loop, &b->idle_timer,
                       uc->idle_since_us + up->pool_idle_timeout_us);
    uc->prev = NULL;
    uc->next = b->idle_head;
    if (b->idle_head)
        b->idle_head->prev = uc;
    else
        b->idle_tail = uc;
    b->idle_head = uc;
    b->nidle++;
}
