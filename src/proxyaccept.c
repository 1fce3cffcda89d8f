/*
 * proxyaccept: connections waiting for their PROXY protocol header (see
 * proxyaccept.h).
 */
#include "proxyaccept.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "proxyproto.h"
#include "session.h"

struct proxyaccept_conn {
    struct loop_io io;
    struct loop_timer timer;
    struct proxyaccept *pa;
    struct proxyaccept_conn *prev, *next;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    size_t have; /* header bytes consumed into buf */
    uint8_t buf[PROXYPROTO_MAX];
};

enum refusal { REFUSED_INVALID, REFUSED_TIMEOUT, REFUSED_CLOSED };

static void unlink_conn(struct proxyaccept_conn *c)
{
    struct proxyaccept *pa = c->pa;
    if (c->prev)
        c->prev->next = c->next;
    else
        pa->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pa->npending--;
    loop_timer_cancel(pa->loop, &c->timer);
    loop_defer(pa->loop, free, c);
}

static void refuse(struct proxyaccept_conn *c, enum refusal why)
{
    struct proxyaccept *pa = c->pa;
    uint64_t *n = why == REFUSED_INVALID   ? &pa->refused_invalid
                  : why == REFUSED_TIMEOUT ? &pa->refused_timeout
                                           : &pa->refused_closed;
    (*n)++;
    pa->refused++;
    if (log_verbosity >= 2) {
        char addr[NET_ADDRSTRLEN];
        net_format((struct sockaddr *)&c->peer, addr, sizeof(addr));
        log_debug("%s: PROXY header %s: closed", addr,
                  why == REFUSED_INVALID   ? "invalid"
                  : why == REFUSED_TIMEOUT ? "timed out"
                                           : "incomplete");
    }
    loop_io_close(pa->loop, &c->io);
    unlink_conn(c);
    if (pa->on_close)
        pa->on_close(pa->close_arg);
}

/* The header is in: the connection becomes a session with the addresses it
 * names (or, for LOCAL/UNKNOWN, its own). */
static void hand_over(struct proxyaccept_conn *c,
                      const struct proxyproto_hdr *h)
{
    struct proxyaccept *pa = c->pa;
    int fd = c->io.fd;
    loop_io_del(pa->loop, &c->io);
    pa->accepted++;
    const struct sockaddr *src = (const struct sockaddr *)&c->peer;
    socklen_t len = c->peer_len;
    const struct sockaddr *dst = NULL;
    if (h->has_addr) {
        src = (const struct sockaddr *)&h->src;
        dst = (const struct sockaddr *)&h->dst;
        len = sizeof(h->src);
    }
    session_accept(pa->sessions, fd, src, len, dst);
    unlink_conn(c);
}

static void on_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct proxyaccept_conn *c = io->ctx;
    size_t room = sizeof(c->buf) - c->have;
    ssize_t n = recv(io->fd, c->buf + c->have, room, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        refuse(c, REFUSED_CLOSED);
        return;
    }
    struct proxyproto_hdr h;
    int r = proxyproto_parse(c->buf, c->have + (size_t)n, &h);
    if (r == PROXYPROTO_INVALID) {
        refuse(c, REFUSED_INVALID);
        return;
    }
    /* consume what is surely header: all of it, or up to its end */
    size_t take = r == PROXYPROTO_MORE ? (size_t)n : (size_t)r - c->have;
    ssize_t got = take ? recv(io->fd, c->buf + c->have, take, 0) : 0;
    if (got != (ssize_t)take) {
        refuse(c, REFUSED_CLOSED);
        return;
    }
    c->have += take;
    if (r > 0)
        hand_over(c, &h);
}

static void on_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    refuse(t->ctx, REFUSED_TIMEOUT);
}

int proxyaccept_start(struct proxyaccept *pa, int fd, const struct sockaddr *sa,
                      socklen_t salen)
{
    struct proxyaccept_conn *c = malloc(sizeof(*c));
    if (!c) {
        close(fd);
        pa->refused++;
        pa->refused_closed++;
        return -1;
    }
    memset(c, 0, offsetof(struct proxyaccept_conn, buf));
    c->pa = pa;
    c->io.fn = on_io;
    c->io.ctx = c;
    c->timer.fn = on_timer;
    c->timer.ctx = c;
    if (salen > sizeof(c->peer))
        salen = sizeof(c->peer);
    memcpy(&c->peer, sa, salen);
    c->peer_len = salen;
    if (loop_io_add(pa->loop, &c->io, fd, LOOP_READ) < 0) {
        close(fd);
        free(c);
        pa->refused++;
        pa->refused_closed++;
        return -1;
    }
    c->next = pa->all;
    if (pa->all)
        pa->all->prev = c;
    pa->all = c;
    pa->npending++;
    loop_timer_after(pa->loop, &c->timer, (uint64_t)pa->timeout_ms * 1000u);
    return 0;
}

void proxyaccept_close_all(struct proxyaccept *pa)
{
    while (pa->all) {
        struct proxyaccept_conn *c = pa->all;
        loop_io_close(pa->loop, &c->io);
        unlink_conn(c);
    }
}
