/*
 * upstream: backend addresses, idle pools and non-blocking connect.
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
};

struct upstream {
    struct loop *loop;
    size_t nbackends;
    unsigned pool_max_idle;
    uint64_t pool_idle_timeout_us;
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
            free(up);
            return NULL;
        }
        if (config_backend_addr(cb, spec, sizeof(spec)) < 0) {
            snprintf(err, errlen, "backend %s: address too long", cb->id);
            free(up);
            return NULL;
        }
        if (upstream_add(up, i, cb->id, spec, err, errlen) < 0) {
            free(up);
            return NULL;
        }
    }
    return up;
}

int upstream_add(struct upstream *up, size_t idx, const char *id,
                 const char *addr, char *err, size_t errlen)
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
    struct backend *b = &up->backends[idx];
    b->addr = na;
    snprintf(b->id, sizeof(b->id), "%s", id);
    net_format((struct sockaddr *)&b->addr.ss, b->addr_str,
               sizeof(b->addr_str));
    b->live = true;
    if (idx == up->nbackends)
        up->nbackends++;
    return 0;
}

static void conn_free(struct upstream_conn *uc, bool reset)
{
    struct loop *loop = uc->up->loop;
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(uc->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    loop_io_close(loop, &uc->io);
    free(uc->pre);
    uc->pre = NULL;
    loop_defer(loop, free, uc);
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
    for (size_t i = 0; i < up->nbackends; i++)
        close_idle(up, &up->backends[i]);
    free(up);
}

int upstream_remove(struct upstream *up, size_t idx)
{
    if (!upstream_live(up, idx))
        return -1;
    struct backend *b = &up->backends[idx];
    close_idle(up, b);
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

bool upstream_conn_reusable(const struct upstream_conn *uc)
{
    const struct upstream *up = uc->up;
    return upstream_live(up, uc->backend) &&
           uc->gen == up->backends[uc->backend].gen && socket_quiet(uc->io.fd);
}

struct upstream_conn *upstream_get_idle(struct upstream *up, size_t idx)
{
    struct backend *b = &up->backends[idx];
    struct upstream_conn *uc;
    while ((uc = b->idle_head) != NULL) {
        idle_unlink(b, uc);
        /* bytes that arrived since it was pooled (their event may still
         * be in this dispatch round) would be taken for the response */
        if (socket_quiet(uc->io.fd))
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
    struct upstream_conn *uc = calloc(1, sizeof(*uc));
    if (!uc) {
        errno = ENOMEM;
        return UPSTREAM_ERROR;
    }
    int fd = -1;
    enum net_connect_result r =
        net_connect(&up->backends[idx].addr, &fd, NULL, 0);
    if (r == NET_REFUSED || r == NET_ERROR) {
        int e = errno;
        free(uc);
        errno = e;
        return r == NET_REFUSED ? UPSTREAM_REFUSED : UPSTREAM_ERROR;
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
        free(uc->pre);
        close(fd);
        free(uc);
        errno = e;
        return e == ENOMEM || e == EINVAL ? UPSTREAM_ERROR : UPSTREAM_REFUSED;
    }
    *out = uc;
    return uc->connected ? UPSTREAM_CONNECTED : UPSTREAM_IN_PROGRESS;
}

int upstream_finish_connect(struct upstream_conn *uc)
{
    if (net_connect_finish(uc->io.fd) < 0)
        return -1;
    uc->connected = true;
    if (upstream_send_preamble(uc) <= 0) {
        if (uc->pre && errno == EAGAIN)
            errno = EIO;
        return -1;
    }
    return 0;
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
        uc->gen != b->gen || (check_socket && !socket_quiet(uc->io.fd))) {
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
