/*
 * Unit tests of the upstream pool over real loopback sockets and a real
 * loop: connections come back LIFO, the pool evicts its least recently
 * used one when full, an idle connection times out, a connection with
 * unread bytes (or closed by the backend) is never handed out, a preamble
 * (send_proxy's header) is the first thing a new connection carries, once,
 * and a unix:PATH backend connects like a TCP one; a TLS backend's
 * connection is not usable before its handshake, which a peer that is no
 * TLS server fails (counted), and TLS needs the pool's TLS context.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "loop.h"
#include "net.h"
#include "tls_client.h"
#include "upstream.h"

struct fixture {
    struct loop *loop;
    struct config cfg;
    struct upstream *up;
    int lfd;      /* the "backend": a listening socket */
    int peers[8]; /* accepted ends, in connect order */
    unsigned npeers;
};

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static void setup_pool(struct fixture *f, unsigned max_idle, unsigned idle_ms)
{
    memset(f, 0, sizeof(*f));
    uint16_t port;
    f->lfd = listen_any(&port);
    config_defaults(&f->cfg);
    f->cfg.nbackends = 1;
    snprintf(f->cfg.backends[0].id, sizeof(f->cfg.backends[0].id), "A");
    snprintf(f->cfg.backends[0].host, sizeof(f->cfg.backends[0].host),
             "127.0.0.1");
    snprintf(f->cfg.backends[0].port, sizeof(f->cfg.backends[0].port), "%u",
             port);
    f->cfg.backends[0].weight = 1;
    f->cfg.pool_max_idle = max_idle;
    f->cfg.pool_idle_timeout_ms = idle_ms;
    f->loop = loop_create();
    assert_non_null(f->loop);
    char err[256];
    f->up = upstream_create(f->loop, &f->cfg, err, sizeof(err));
    assert_non_null(f->up);
}

static void teardown_pool(struct fixture *f)
{
    upstream_destroy(f->up);
    loop_destroy(f->loop);
    for (unsigned i = 0; i < f->npeers; i++)
        close(f->peers[i]);
    close(f->lfd);
}

static void on_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    (void)io;
    (void)events;
}

/* A connected, registered connection, as a session hands it back. */
static struct upstream_conn *connect_one(struct fixture *f)
{
    struct upstream_conn *uc = NULL;
    enum upstream_connect_result r =
        upstream_connect(f->up, 0, true, NULL, 0, &uc);
    assert_true(r == UPSTREAM_CONNECTED || r == UPSTREAM_IN_PROGRESS);
    f->peers[f->npeers++] = accept(f->lfd, NULL, NULL);
    uc->io.fn = on_io;
    uc->io.ctx = NULL;
    assert_int_equal(loop_io_add(f->loop, &uc->io, uc->io.fd, LOOP_READ), 0);
    assert_int_equal(upstream_finish_connect(uc), 1);
    return uc;
}

static void on_stop(struct loop *loop, struct loop_timer *t)
{
    (void)t;
    loop_stop(loop);
}

/* Runs the loop for about ms milliseconds. */
static void run_for(struct fixture *f, unsigned ms)
{
    struct loop_timer stop = {.fn = on_stop};
    loop_update_time(f->loop);
    loop_timer_after(f->loop, &stop, (uint64_t)ms * 1000);
    loop_run(f->loop);
}

static void test_lifo_and_reuse(void **state)
{
    (void)state;
    struct fixture f;
    setup_pool(&f, 4, 60000);
    struct upstream_conn *a = connect_one(&f), *b = connect_one(&f);
    upstream_release(a, true);
    upstream_release(b, true);
    assert_int_equal(upstream_idle_count(f.up, 0), 2);
    assert_ptr_equal(upstream_get_idle(f.up, 0), b); /* most recent first */
    assert_ptr_equal(upstream_get_idle(f.up, 0), a);
    assert_null(upstream_get_idle(f.up, 0));
    upstream_close(a, false);
    upstream_close(b, false);
    run_for(&f, 1); /* frees deferred */
    teardown_pool(&f);
}

static void test_full_pool_evicts_least_recent(void **state)
{
    (void)state;
    struct fixture f;
    setup_pool(&f, 2, 60000);
    struct upstream_conn *a = connect_one(&f), *b = connect_one(&f),
                         *c = connect_one(&f);
    upstream_release(a, false);
    upstream_release(b, false);
    upstream_release(c, false); /* a goes */
    assert_int_equal(upstream_idle_count(f.up, 0), 2);
    assert_ptr_equal(upstream_get_idle(f.up, 0), c);
    assert_ptr_equal(upstream_get_idle(f.up, 0), b);
    assert_null(upstream_get_idle(f.up, 0));
    /* the evicted one was closed: its peer reads end of stream */
    char x;
    assert_int_equal(recv(f.peers[0], &x, 1, 0), 0);
    upstream_close(b, false);
    upstream_close(c, false);
    run_for(&f, 1);
    teardown_pool(&f);
}

static void test_idle_timeout_closes_oldest_first(void **state)
{
    (void)state;
    struct fixture f;
    setup_pool(&f, 4, 500);
    struct upstream_conn *a = connect_one(&f);
    upstream_release(a, false);
    run_for(&f, 300);
    struct upstream_conn *b = connect_one(&f);
    upstream_release(b, false);
    /* a is 600 ms old: gone; b is 300 ms old: kept (200 ms of margin) */
    run_for(&f, 300);
    assert_int_equal(upstream_idle_count(f.up, 0), 1);
    char x;
    assert_int_equal(recv(f.peers[0], &x, 1, 0), 0);
    run_for(&f, 300); /* b too, by the re-armed timer */
    assert_int_equal(upstream_idle_count(f.up, 0), 0);
    assert_int_equal(recv(f.peers[1], &x, 1, 0), 0);
    teardown_pool(&f);
}

/* Bytes waiting in a pooled connection belong to no request: taking it
 * from the pool closes it and hands out the next one, even before the
 * loop saw the bytes arrive.  A release that is told more may be waiting
 * checks the socket too. */
static void test_unread_bytes_are_never_handed_out(void **state)
{
    (void)state;
    struct fixture f;
    setup_pool(&f, 4, 60000);
    struct upstream_conn *a = connect_one(&f), *b = connect_one(&f);
    upstream_release(a, false);
    upstream_release(b, false);
    assert_int_equal(send(f.peers[1], "HTTP/1.1 200 OK\r\n", 17, 0), 17);
    usleep(10000); /* in b's receive queue; the loop did not run */
    assert_ptr_equal(upstream_get_idle(f.up, 0), a);
    assert_null(upstream_get_idle(f.up, 0));
    assert_int_equal(send(f.peers[0], "x", 1, 0), 1);
    usleep(10000);
    upstream_release(a, true); /* checked: closed, not pooled */
    assert_int_equal(upstream_idle_count(f.up, 0), 0);
    run_for(&f, 1);
    teardown_pool(&f);
}

static void test_closed_by_backend_is_dropped(void **state)
{
    (void)state;
    struct fixture f;
    setup_pool(&f, 4, 60000);
    struct upstream_conn *a = connect_one(&f);
    upstream_release(a, false);
    close(f.peers[0]);
    f.peers[0] = -1;
    run_for(&f, 20); /* the idle connection's event closes it */
    assert_int_equal(upstream_idle_count(f.up, 0), 0);
    assert_null(upstream_get_idle(f.up, 0));
    f.npeers = 0;
    teardown_pool(&f);
}

/* Reads what arrived at an accepted end (waits up to a second). */
static size_t peer_read(int fd, char *buf, size_t cap)
{
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fd, buf, cap - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    return (size_t)n;
}

/* A closed connection's struct serves the next connect after its round
 * (no calloc and free per connection), as a fresh one: nothing of the old
 * connection's pool links, preamble or times is left. */
static void test_closed_struct_is_reused_clean(void **state)
{
    (void)state;
    struct fixture f;
    setup_pool(&f, 4, 60000);
    struct upstream_conn *a = connect_one(&f), *b = connect_one(&f);
    upstream_release(a, true);
    upstream_release(b, true); /* a and b linked in the idle list */
    assert_ptr_equal(upstream_get_idle(f.up, 0), b);
    upstream_close(b, false);
    run_for(&f, 1); /* the round ends: b's struct is free to reuse */
    struct upstream_conn *c = connect_one(&f);
#ifndef __SANITIZE_ADDRESS__ /* where the cache is off (upstream.c) */
    assert_ptr_equal(c, b);
#endif
    assert_null(c->prev);
    assert_null(c->next);
    assert_null(c->pre);
    assert_int_equal(c->prelen, 0);
    assert_int_equal(c->idle_since_us, 0);
    assert_false(c->tls);
    assert_false(c->tls_failed);
    assert_int_equal(upstream_idle_count(f.up, 0), 1); /* a alone */
    upstream_close(c, false);
    assert_ptr_equal(upstream_get_idle(f.up, 0), a);
    upstream_close(a, false);
    run_for(&f, 1);
    teardown_pool(&f);
}

static void test_preamble_first_and_once(void **state)
{
    (void)state;
    struct fixture f;
    setup_pool(&f, 4, 60000);
    static const char pre[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    struct upstream_conn *uc = NULL;
    enum upstream_connect_result r =
        upstream_connect(f.up, 0, true, pre, sizeof(pre) - 1, &uc);
    assert_true(r == UPSTREAM_CONNECTED || r == UPSTREAM_IN_PROGRESS);
    int peer = f.peers[f.npeers++] = accept(f.lfd, NULL, NULL);
    uc->io.fn = on_io;
    assert_int_equal(loop_io_add(f.loop, &uc->io, uc->io.fd, LOOP_READ), 0);
    if (r == UPSTREAM_IN_PROGRESS)
        assert_int_equal(upstream_finish_connect(uc), 1);
    /* sent, or still to send once: never twice */
    assert_int_equal(upstream_send_preamble(uc), 1);
    assert_int_equal(upstream_send_preamble(uc), 1);
    assert_int_equal(send(uc->io.fd, "GET", 3, 0), 3);
    char buf[256];
    size_t got = 0;
    while (got < sizeof(pre) - 1 + 3)
        got += peer_read(peer, buf + got, sizeof(buf) - got);
    assert_string_equal(buf, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET");
    /* pooled and handed out again: no second header */
    upstream_release(uc, false);
    uc = upstream_get_idle(f.up, 0);
    assert_non_null(uc);
    assert_int_equal(send(uc->io.fd, "NEXT", 4, 0), 4);
    peer_read(peer, buf, sizeof(buf));
    assert_string_equal(buf, "NEXT");
    upstream_close(uc, false);
    teardown_pool(&f);
}

static void test_unix_backend(void **state)
{
    (void)state;
    struct fixture f;
    setup_pool(&f, 4, 60000);
    upstream_destroy(f.up);
    char path[108];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof(path), "%s/test_upstream_%ld.sock", dir,
             (long)getpid());
    char spec[128], err[256];
    snprintf(spec, sizeof(spec), "unix:%s", path);
    int ufd = net_listen_spec(spec, 16, err, sizeof(err));
    assert_true(ufd >= 0);
    f.cfg.backends[0].host[0] = f.cfg.backends[0].port[0] = '\0';
    snprintf(f.cfg.backends[0].unix_path, sizeof(f.cfg.backends[0].unix_path),
             "%s", path);
    f.up = upstream_create(f.loop, &f.cfg, err, sizeof(err));
    assert_non_null(f.up);
    assert_string_equal(upstream_addr(f.up, 0), spec);
    struct upstream_conn *uc = NULL;
    assert_int_equal(upstream_connect(f.up, 0, true, "P", 1, &uc),
                     UPSTREAM_CONNECTED);
    assert_true(uc->nodelay); /* no TCP_NODELAY call on a Unix socket */
    int peer = accept(ufd, NULL, NULL);
    char buf[16];
    peer_read(peer, buf, sizeof(buf));
    assert_string_equal(buf, "P");
    upstream_close(uc, false);
    close(peer);
    close(ufd);
    unlink(path);
    /* the socket file gone: refused, the caller tries another backend */
    assert_int_equal(upstream_connect(f.up, 0, true, NULL, 0, &uc),
                     UPSTREAM_REFUSED);
    teardown_pool(&f);
}

/* Removing a backend closes its idle connections; one handed out before
 * the removal is closed on release, never pooled, also after the slot was
 * given to a new backend. */
static void test_removed_slot_never_pools_old_connections(void **state)
{
    (void)state;
    struct fixture f;
    char err[256], spec[64], x;
    setup_pool(&f, 4, 60000);
    struct upstream_conn *idle = connect_one(&f), *out = connect_one(&f);
    upstream_release(idle, false);
    assert_int_equal(upstream_idle_count(f.up, 0), 1);
    assert_int_equal(upstream_remove(f.up, 0), 0);
    assert_false(upstream_live(f.up, 0));
    assert_int_equal(upstream_remove(f.up, 0), -1);
    assert_int_equal(upstream_idle_count(f.up, 0), 0);
    assert_int_equal(recv(f.peers[0], &x, 1, 0), 0); /* closed */
    /* slot 0 taken again (same address: the listener is still there) */
    snprintf(spec, sizeof(spec), "127.0.0.1:%s", f.cfg.backends[0].port);
    assert_int_equal(upstream_add(f.up, 0, "B", spec, NULL, err, sizeof(err)),
                     0);
    assert_int_equal(upstream_add(f.up, 0, "C", spec, NULL, err, sizeof(err)),
                     -1);
    assert_string_equal(upstream_id(f.up, 0), "B");
    upstream_release(out, false); /* the old occupant's: closed */
    assert_int_equal(upstream_idle_count(f.up, 0), 0);
    assert_int_equal(recv(f.peers[1], &x, 1, 0), 0);
    /* the new occupant's connections pool as usual */
    struct upstream_conn *fresh = connect_one(&f);
    upstream_release(fresh, false);
    assert_int_equal(upstream_idle_count(f.up, 0), 1);
    assert_int_equal(
        upstream_add(f.up, 1, "D", "nowhere", NULL, err, sizeof(err)), -1);
    assert_int_equal(upstream_add(f.up, 2, "D", spec, NULL, err, sizeof(err)),
                     -1);
    assert_int_equal(
        upstream_add(f.up, 1, "D", "unix:/tmp/d.sock", NULL, err, sizeof(err)),
        0);
    assert_int_equal(upstream_count(f.up), 2);
    run_for(&f, 1);
    teardown_pool(&f);
}

static void test_tls_backend(void **state)
{
    (void)state;
    struct fixture f;
    char err[256], x;
    setup_pool(&f, 4, 60000);
    assert_null(upstream_tls_host(f.up, 0));
    /* a pool built without a TLS backend has no context for one */
    assert_int_equal(
        upstream_add(f.up, 1, "T", "127.0.0.1:1", "", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "TLS"));
    upstream_destroy(f.up);
    /* a CA file that does not load: no table, the file named */
    f.cfg.backends[0].tls = true;
    snprintf(f.cfg.upstream_tls_ca_file, sizeof(f.cfg.upstream_tls_ca_file),
             "/nonexistent/ca.pem");
    assert_null(upstream_create(f.loop, &f.cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    f.cfg.upstream_tls_ca_file[0] = '\0'; /* the system's paths */
    f.up = upstream_create(f.loop, &f.cfg, err, sizeof(err));
    assert_non_null(f.up);
    assert_string_equal(upstream_tls_host(f.up, 0), "");
    /* the peer is no TLS server: it reads the ClientHello and closes */
    uint64_t failed = tls_client_counters()->failures;
    struct upstream_conn *uc = NULL;
    assert_int_equal(upstream_connect(f.up, 0, false, NULL, 0, &uc),
                     UPSTREAM_IN_PROGRESS);
    assert_true(uc->tls && !uc->connected);
    int peer = accept(f.lfd, NULL, NULL);
    uc->io.fn = on_io;
    assert_int_equal(loop_io_add(f.loop, &uc->io, uc->io.fd, LOOP_WRITE), 0);
    assert_int_equal(upstream_finish_connect(uc), 0); /* ClientHello out */
    assert_false(uc->connected);
    assert_true(recv(peer, &x, 1, 0) == 1); /* a TLS record's first byte */
    assert_int_equal(x, 0x16);
    close(peer);
    int rc;
    for (int i = 0; i < 100 && (rc = upstream_finish_connect(uc)) == 0; i++)
        run_for(&f, 1);
    assert_int_equal(rc, -1);
    assert_true(uc->tls_failed);
    assert_int_equal(tls_client_counters()->failures, failed + 1);
    upstream_close(uc, false);
    run_for(&f, 1);
    teardown_pool(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifo_and_reuse),
        cmocka_unit_test(test_full_pool_evicts_least_recent),
        cmocka_unit_test(test_idle_timeout_closes_oldest_first),
        cmocka_unit_test(test_unread_bytes_are_never_handed_out),
        cmocka_unit_test(test_closed_by_backend_is_dropped),
        cmocka_unit_test(test_closed_struct_is_reused_clean),
        cmocka_unit_test(test_preamble_first_and_once),
        cmocka_unit_test(test_unix_backend),
        cmocka_unit_test(test_removed_slot_never_pools_old_connections),
        cmocka_unit_test(test_tls_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
