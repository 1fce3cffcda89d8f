/*
 * Unit tests of net: every accepted address text survives parse -> format
 * unchanged (IPv4, bracketed IPv6, port 0 and 65535, unix:PATH), bad input
 * is refused with a message naming it, and listen/connect work on loopback
 * and over a Unix socket (a stale socket file replaced, a live one kept).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "net.h"

#define SA(a) ((const struct sockaddr *)&(a)->ss)

static void test_round_trips(void **state)
{
    (void)state;
    const char *good[] = {
        "127.0.0.1:80",       "0.0.0.0:0",     "255.255.255.255:65535",
        "[::1]:80",           "[::]:9090",     "[fe80::1:2:3:4]:1",
        "[2001:db8::1]:443",  "10.1.2.3:8081", "unix:/run/app.sock",
        "unix:rel/path.sock",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct net_addr a;
        char err[128] = "", out[NET_ADDRSTRLEN];
        if (net_parse(good[i], &a, err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", good[i], err);
        assert_int_equal(net_format(SA(&a), out, sizeof(out)), 0);
        assert_string_equal(out, good[i]);
    }
}

static void test_parse_fields(void **state)
{
    (void)state;
    struct net_addr a;
    char err[128], ip[NET_ADDRSTRLEN];
    assert_int_equal(net_parse("[::1]:5002", &a, err, sizeof(err)), 0);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    assert_int_equal(net_port(SA(&a)), 5002);
    assert_int_equal(net_format_ip(SA(&a), ip, sizeof(ip)), 0);
    assert_string_equal(ip, "::1");

    assert_int_equal(net_parse("localhost:9090", &a, err, sizeof(err)), 0);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    assert_int_equal(net_format(SA(&a), ip, sizeof(ip)), 0);
    assert_string_equal(ip, "127.0.0.1:9090");

    /* IPv6 text is written in its canonical (RFC 5952) form. */
    assert_int_equal(net_parse("[0:0::0001]:80", &a, err, sizeof(err)), 0);
    assert_int_equal(net_format(SA(&a), ip, sizeof(ip)), 0);
    assert_string_equal(ip, "[::1]:80");
}

static void test_parse_ip(void **state)
{
    (void)state;
    struct net_addr a;
    char err[128], out[NET_ADDRSTRLEN];
    assert_int_equal(net_parse_ip("127.0.0.1", 8081, &a, err, sizeof(err)), 0);
    assert_int_equal(net_format(SA(&a), out, sizeof(out)), 0);
    assert_string_equal(out, "127.0.0.1:8081");
    assert_int_equal(net_parse_ip("::1", 0, &a, err, sizeof(err)), 0);
    assert_int_equal(net_format(SA(&a), out, sizeof(out)), 0);
    assert_string_equal(out, "[::1]:0");
    assert_int_equal(net_parse_ip("localhost", 1, &a, err, sizeof(err)), 0);
    assert_int_equal(a.ss.ss_family, AF_INET);

    errno = 0;
    assert_int_equal(net_parse_ip("[::1]", 80, &a, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "[::1]"));
    assert_int_equal(net_parse_ip("example.com", 80, &a, err, sizeof(err)), -1);
    assert_int_equal(net_parse_ip("127.0.0.1", 65536, &a, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "65536"));
}

static void test_parse_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "127.0.0.1",        /* no port */
        "127.0.0.1:",       /* empty port */
        ":80",              /* no host */
        "127.0.0.1:65536",  /* port too large */
        "127.0.0.1:-1",     /* signed */
        "127.0.0.1:+80",    /* signed */
        "127.0.0.1:8 0",    /* space */
        "127.0.0.1:000080", /* six digits */
        "127.0.0.1:80x",    /* junk */
        "256.0.0.1:80",     /* not an address */
        "example.com:80",   /* names are not resolved */
        "::1:80",           /* IPv6 without brackets */
        "[::1]",            /* no port */
        "[::1]80",          /* no colon */
        "[::1]:",           /* empty port */
        "[127.0.0.1]:80",   /* IPv4 in brackets */
        "[localhost]:80",   /* a name in brackets */
        "[::1:80",          /* no closing bracket */
        "[]:80",            /* empty brackets */
        "[::1]:80:81",      /* junk after the port */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct net_addr a;
        char err[128] = "";
        errno = 0;
        if (net_parse(bad[i], &a, err, sizeof(err)) != -1)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(errno, EINVAL);
        /* The message quotes what was refused. */
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "'%s'", bad[i]);
        if (!strstr(err, quoted))
            fail_msg("message for '%s' does not quote it: %s", bad[i], err);
    }
    /* err may be NULL, and a short buffer is not overrun. */
    struct net_addr a;
    assert_int_equal(net_parse("nope", &a, NULL, 0), -1);
    char tiny[4] = "xyz";
    assert_int_equal(net_parse("nope", &a, tiny, 2), -1);
    assert_int_equal(tiny[1], '\0');
    assert_int_equal(tiny[2], 'z');
}

static void test_format_edges(void **state)
{
    (void)state;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char buf[NET_ADDRSTRLEN];
    assert_int_equal(net_format((struct sockaddr *)&un, buf, sizeof(buf)), -1);
    assert_string_equal(buf, "unknown");
    assert_int_equal(net_format_ip((struct sockaddr *)&un, buf, sizeof(buf)),
                     -1);
    assert_string_equal(buf, "unknown");
    assert_int_equal(net_port((struct sockaddr *)&un), -1);

    /* The longest IPv6 text with the longest port fits NET_ADDRSTRLEN. */
    struct net_addr a;
    const char *longest = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]"
                          ":65535";
    assert_int_equal(net_parse(longest, &a, NULL, 0), 0);
    assert_int_equal(net_format(SA(&a), buf, sizeof(buf)), 0);
    assert_true(strlen(buf) < NET_ADDRSTRLEN);

    /* Too small: an error, never a truncated address. */
    assert_int_equal(net_parse("[::1]:80", &a, NULL, 0), 0);
    char small[8];
    assert_int_equal(net_format(SA(&a), small, sizeof(small)), -1);
    assert_string_equal(small, "unknown");
    assert_int_equal(net_format(SA(&a), small, 4), -1);
    assert_string_equal(small, "");
}

static void test_join(void **state)
{
    (void)state;
    char buf[NET_ADDRSTRLEN];
    assert_int_equal(net_join(buf, sizeof(buf), "127.0.0.1", "80"), 0);
    assert_string_equal(buf, "127.0.0.1:80");
    assert_int_equal(net_join(buf, sizeof(buf), "::1", "8081"), 0);
    assert_string_equal(buf, "[::1]:8081");
    /* What net_join writes, net_parse reads back. */
    struct net_addr a;
    assert_int_equal(net_parse(buf, &a, NULL, 0), 0);
    assert_int_equal(net_port(SA(&a)), 8081);
    assert_int_equal(net_join(buf, 6, "::1", "8081"), -1);
}

static void test_listen_connect(void **state)
{
    (void)state;
    char err[128] = "";
    int lfd = net_listen_spec("127.0.0.1:0", 16, err, sizeof(err));
    if (lfd < 0)
        fail_msg("listen: %s", err);
    int port = net_local_port(lfd);
    assert_true(port > 0);

    struct net_addr a;
    assert_int_equal(
        net_parse_ip("127.0.0.1", (unsigned)port, &a, err, sizeof(err)), 0);
    int fd = -1;
    enum net_connect_result r = net_connect(&a, &fd, err, sizeof(err));
    if (r != NET_CONNECTED && r != NET_IN_PROGRESS)
        fail_msg("connect: %s: %s", net_connect_result_str(r), err);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(net_connect_finish(fd), 0);
    close(fd);

    /* A second listener on the same port is refused, with the address in
     * the message. */
    char spec[32];
    snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
    err[0] = '\0';
    errno = 0;
    assert_int_equal(net_listen_spec(spec, 16, err, sizeof(err)), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_non_null(strstr(err, spec));
    close(lfd);

    /* Nobody listens now: refused, at once or through SO_ERROR. */
    fd = -1;
    r = net_connect(&a, &fd, NULL, 0);
    if (r == NET_IN_PROGRESS) {
        struct pollfd q = {.fd = fd, .events = POLLOUT};
        assert_int_equal(poll(&q, 1, 5000), 1);
        assert_int_equal(net_connect_finish(fd), -1);
        assert_int_equal(errno, ECONNREFUSED);
        close(fd);
    } else {
        assert_int_equal(r, NET_REFUSED);
        assert_int_equal(errno, ECONNREFUSED);
    }
}

/* unix:PATH: the bounds of the path, the family, listen and connect. */
static void test_unix(void **state)
{
    (void)state;
    struct net_addr a;
    char err[128] = "", spec[160], buf[NET_ADDRSTRLEN];
    assert_int_equal(net_parse("unix:", &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unix:PATH"));
    char path[NET_UNIX_PATH_MAX + 2];
    memset(path, 'p', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    snprintf(spec, sizeof(spec), "unix:%s", path); /* 108 bytes: too long */
    assert_int_equal(net_parse(spec, &a, err, sizeof(err)), -1);
    spec[strlen(spec) - 1] = '\0'; /* 107: the longest */
    assert_int_equal(net_parse(spec, &a, err, sizeof(err)), 0);
    assert_true(net_is_unix(&a));
    assert_int_equal(net_format(SA(&a), buf, sizeof(buf)), 0);
    assert_string_equal(buf, spec);
    assert_int_equal(net_port(SA(&a)), -1);
    assert_int_equal(net_parse("127.0.0.1:1", &a, NULL, 0), 0);
    assert_false(net_is_unix(&a));

    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(spec, sizeof(spec), "unix:%s/test_net_%ld.sock", dir,
             (long)getpid());
    int lfd = net_listen_spec(spec, 16, err, sizeof(err));
    if (lfd < 0)
        fail_msg("listen: %s", err);
    /* a live listener keeps its path */
    assert_int_equal(net_listen_spec(spec, 16, err, sizeof(err)), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_int_equal(net_parse(spec, &a, NULL, 0), 0);
    int fd = -1;
    assert_int_equal(net_connect(&a, &fd, NULL, 0), NET_CONNECTED);
    close(fd);
    close(lfd);
    /* the file it left is stale: the next listen replaces it */
    lfd = net_listen_spec(spec, 16, err, sizeof(err));
    if (lfd < 0)
        fail_msg("listen again: %s", err);
    close(lfd);
    unlink(spec + 5);
    /* no file: refused (try another backend), not a local error */
    fd = -1;
    assert_int_equal(net_connect(&a, &fd, NULL, 0), NET_REFUSED);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_ip),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_format_edges),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_listen_connect),
        cmocka_unit_test(test_unix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
