/*
 * relay: a minimal L4 TCP relay, the kernel floor of any user-space proxy in
 * the quick benchmark (the "relay" row; docs/benchmarks.md).
 *
 *     relay LISTEN_PORT BACKEND_PORT [BACKEND_PORT...]      (all 127.0.0.1)
 *
 * One process, one thread, level-triggered epoll, non-blocking sockets.
 * Each accepted client connection gets one upstream connection, to the next
 * backend in round-robin order; from then on bytes are copied blindly both
 * ways, one recv and one send per readiness event, through a fixed buffer
 * per direction.  There is no HTTP parsing: a keep-alive request costs
 * exactly two recv and two send, as it does in lbproxy, so whatever lbproxy
 * spends beyond this relay is its own user-space work.
 *
 * Deliberately left out: half-close (either side closing ends the session),
 * timeouts, retries on a refused connect.  Not part of lbproxy or liblb;
 * built by mk/bench.mk, tested by tests/e2e/test_relay.py.  It compiles the
 * proxy's net module in (below) for listen and connect, so that it needs no
 * library and its build line stays one file.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../src/net.c"

#define RELAY_BUF 16384 /* bytes per direction and session */
#define MAX_BACKENDS 64
#define MAX_EVENTS 256
#define ACCEPT_BATCH 64 /* accepts per listener event: I/O is not starved */
#define PAUSE_MS 100    /* listener pause after EMFILE and the like */

struct session;

/*
 * One direction of a session, named by the socket its bytes are read from.
 * Invariant: off <= len <= RELAY_BUF.  off < len means bytes wait to be sent
 * to peer->fd; while they do, fd is not read (bounded memory, backpressure)
 * and peer->fd waits for EPOLLOUT.  off == len == 0 otherwise.
 */
struct half {
    int fd;
    unsigned interest; /* the events registered with epoll for fd */
    size_t off, len;
    unsigned long long bytes; /* read from fd, for the exit summary */
    struct session *sess;
    struct half *peer;
    char buf[RELAY_BUF];
};

struct session {
    struct half client, upstream;
    int connecting; /* the upstream connect() is in progress */
    int closing;    /* fds closed; freed after the dispatch round */
    struct session *prev, *next; /* live list, or the closed list */
};

struct relay {
    int epfd, lfd;
    int listening;          /* lfd is registered with epoll */
    struct timespec resume; /* when a paused listener comes back */
    struct net_addr backends[MAX_BACKENDS];
    int nbackends, next;
    struct session *live, *closed;
    unsigned long long sessions, connect_failures, accept_errors;
    unsigned long long bytes_up, bytes_down;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: relay LISTEN_PORT BACKEND_PORT [BACKEND_PORT...]\n"
            "  a blind L4 TCP relay on 127.0.0.1 (at most %d "
            "backends), round-robin per connection\n",
            MAX_BACKENDS);
}

/* Parses a TCP port (1..65535); returns 0, or -1 when s is not one. */
static int parse_port(const char *s, unsigned short *port)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 65535)
        return -1;
    *port = (unsigned short)v;
    return 0;
}

static void set_nodelay(int fd)
{
    int one = 1;
    /* Best effort: a failure here costs latency, not correctness. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The events fd should be registered for, from the session's state. */
static unsigned interest_of(const struct half *h)
{
    if (h->sess->connecting)
        return h == &h->sess->upstream ? EPOLLOUT : 0;
    unsigned ev = 0;
    if (h->off == h->len)
        ev |= EPOLLIN;
    if (h->peer->off < h->peer->len)
        ev |= EPOLLOUT;
    return ev;
}

/* Registers h's fd (op EPOLL_CTL_ADD) or brings its registration up to
 * date (EPOLL_CTL_MOD, only when the interest changed); 0, or -1 on error. */
static int update(struct relay *r, struct half *h, int op)
{
    unsigned ev = interest_of(h);
    if (op == EPOLL_CTL_MOD && ev == h->interest)
        return 0;
    struct epoll_event e;
    memset(&e, 0, sizeof(e));
    e.events = ev;
    e.data.ptr = h;
    if (epoll_ctl(r->epfd, op, h->fd, &e) < 0)
        return -1;
    h->interest = ev;
    return 0;
}

/* Ends a session: closes both sockets (which also drops them from epoll)
 * and moves it to the closed list.  It is freed after the dispatch round,
 * so events of this round that still point at it are recognised and
 * skipped. */
static void session_close(struct relay *r, struct session *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    close(s->client.fd);
    if (s->upstream.fd >= 0)
        close(s->upstream.fd);
    r->bytes_up += s->client.bytes;
    r->bytes_down += s->upstream.bytes;
    if (s->prev)
        s->prev->next = s->next;
    else
        r->live = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = NULL;
    s->next = r->closed;
    r->closed = s;
}

static void free_closed(struct relay *r)
{
    while (r->closed) {
        struct session *s = r->closed;
        r->closed = s->next;
        free(s);
    }
}

/* Opens the upstream connection for the accepted client socket cfd (whose
 * ownership it takes) to the next backend in turn; 0, or -1 when the
 * client had to be closed (cfd is closed then). */
static int session_open(struct relay *r, int cfd)
{
    struct session *s = calloc(1, sizeof(*s));
    if (!s) {
        close(cfd);
        return -1;
    }
    s->client.fd = cfd;
    s->upstream.fd = -1;
    s->client.sess = s->upstream.sess = s;
    s->client.peer = &s->upstream;
    s->upstream.peer = &s->client;

    const struct net_addr *b = &r->backends[r->next];
    r->next = (r->next + 1) % r->nbackends;
    int ufd = -1;
    switch (net_connect(b, &ufd, NULL, 0)) {
    case NET_CONNECTED:
        s->connecting = 0;
        break;
    case NET_IN_PROGRESS:
        s->connecting = 1;
        break;
    case NET_REFUSED:
    case NET_ERROR:
        r->connect_failures++;
        goto fail;
    }
    s->upstream.fd = ufd;
    set_nodelay(cfd);
    set_nodelay(ufd);
    if (update(r, &s->client, EPOLL_CTL_ADD) < 0 ||
        update(r, &s->upstream, EPOLL_CTL_ADD) < 0)
        goto fail;
    s->next = r->live;
    if (r->live)
        r->live->prev = s;
    r->live = s;
    r->sessions++;
    return 0;
fail:
    close(cfd);
    if (s->upstream.fd >= 0)
        close(s->upstream.fd);
    free(s);
    return -1;
}

static int would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Sends h's pending bytes to the peer socket, with one send; 0 (all or part
 * sent, or would block), or -1 on an error that ends the session. */
static int flush(struct half *h)
{
    ssize_t n =
        send(h->peer->fd, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
    if (n < 0)
        return would_block() ? 0 : -1;
    h->off += (size_t)n;
    if (h->off == h->len)
        h->off = h->len = 0;
    return 0;
}

/* Reads once from h's socket and sends what came once to the peer; 0 when
 * the session goes on, -1 on end of stream or an error. */
static int pump(struct half *h)
{
    if (h->off < h->len)
        return 0; /* still pending: backpressure (fd is not polled for IN) */
    ssize_t n = recv(h->fd, h->buf, sizeof(h->buf), 0);
    if (n == 0)
        return -1;
    if (n < 0)
        return would_block() ? 0 : -1;
    h->bytes += (unsigned long long)n;
    h->off = 0;
    h->len = (size_t)n;
    return flush(h);
}

/* Handles one epoll event of a live session's socket. */
static void on_event(struct relay *r, struct half *h, unsigned ev)
{
    struct session *s = h->sess;
    if (s->connecting) {
        /* Only the upstream is polled (for OUT); the client only reports
         * errors and hang-ups. */
        if (h != &s->upstream || net_connect_finish(h->fd) < 0) {
            if (h == &s->upstream)
                r->connect_failures++;
            session_close(r, s);
            return;
        }
        s->connecting = 0;
    } else {
        if ((ev & EPOLLOUT) && flush(h->peer) < 0) {
            session_close(r, s);
            return;
        }
        if (ev & EPOLLIN) {
            if (pump(h) < 0) {
                session_close(r, s);
                return;
            }
        } else if (ev & (EPOLLERR | EPOLLHUP)) {
            session_close(r, s);
            return;
        }
    }
    if (update(r, &s->client, EPOLL_CTL_MOD) < 0 ||
        update(r, &s->upstream, EPOLL_CTL_MOD) < 0)
        session_close(r, s);
}

static struct timespec now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static int listener_add(struct relay *r)
{
    struct epoll_event e;
    memset(&e, 0, sizeof(e));
    e.events = EPOLLIN;
    e.data.ptr = NULL; /* NULL marks the listener; sessions are non-NULL */
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->lfd, &e) < 0)
        return -1;
    r->listening = 1;
    return 0;
}

/* Out of descriptors or memory: stop polling the listener for PAUSE_MS
 * instead of spinning on a level-triggered event that cannot be served. */
static void listener_pause(struct relay *r, int err)
{
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->lfd, NULL);
    r->listening = 0;
    r->resume = now();
    r->resume.tv_nsec += PAUSE_MS * 1000000L;
    if (r->resume.tv_nsec >= 1000000000L) {
        r->resume.tv_sec++;
        r->resume.tv_nsec -= 1000000000L;
    }
    fprintf(stderr, "relay: accept: %s; listener paused for %d ms\n",
            strerror(err), PAUSE_MS);
}

static void accept_some(struct relay *r)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            session_open(r, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        r->accept_errors++;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM)
            listener_pause(r, errno);
        return;
    }
}

/* The event loop; returns when SIGTERM or SIGINT arrives (0) or epoll
 * fails (-1).  Those signals are blocked except inside epoll_pwait, so a
 * stop request is never lost between the check and the wait. */
static int run(struct relay *r, const sigset_t *waitmask)
{
    struct epoll_event evs[MAX_EVENTS];
    while (!stop_requested) {
        int n = epoll_pwait(r->epfd, evs, MAX_EVENTS,
                            r->listening ? -1 : PAUSE_MS, waitmask);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("relay: epoll_pwait");
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct half *h = evs[i].data.ptr;
            if (!h)
                accept_some(r);
            else if (!h->sess->closing)
                on_event(r, h, evs[i].events);
        }
        free_closed(r);
        if (!r->listening) {
            struct timespec t = now();
            if ((t.tv_sec > r->resume.tv_sec ||
                 (t.tv_sec == r->resume.tv_sec &&
                  t.tv_nsec >= r->resume.tv_nsec)) &&
                listener_add(r) < 0) {
                perror("relay: epoll_ctl (listener)");
                return -1;
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct relay r; /* static: the backend table stays off the stack */
    unsigned short lport, bport;
    if (argc < 3 || argc - 2 > MAX_BACKENDS || parse_port(argv[1], &lport)) {
        usage();
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (parse_port(argv[i], &bport)) {
            fprintf(stderr, "relay: bad backend port %s\n", argv[i]);
            usage();
            return 2;
        }
        net_parse_ip("127.0.0.1", bport, &r.backends[r.nbackends++], NULL, 0);
    }

    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct net_addr la;
    char err[256];
    net_parse_ip("127.0.0.1", lport, &la, NULL, 0);
    r.lfd = net_listen(&la, SOMAXCONN, 0, err, sizeof(err));
    if (r.lfd < 0) {
        fprintf(stderr, "relay: %s\n", err);
        return 1;
    }
    r.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r.epfd < 0 || listener_add(&r) < 0) {
        perror("relay: epoll");
        return 1;
    }
    fprintf(stderr, "relay: listening on 127.0.0.1:%u, %d backend(s)\n", lport,
            r.nbackends);

    int rc = run(&r, &waitmask) < 0 ? 1 : 0;

    while (r.live)
        session_close(&r, r.live);
    free_closed(&r);
    close(r.lfd);
    close(r.epfd);
    fprintf(stderr,
            "relay: exit: %llu sessions, %llu connect failures, %llu accept "
            "errors, %llu bytes client->upstream, %llu upstream->client\n",
            r.sessions, r.connect_failures, r.accept_errors, r.bytes_up,
            r.bytes_down);
    return rc;
}
