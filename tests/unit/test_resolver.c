/*
 * Unit tests of the resolver's pure part (src/resolver_answer.c) and of
 * net_name_valid: answers are deduplicated, sorted and compared by set;
 * SRV records keep the lowest priority with weight 0 read as 1; the TTL
 * walker reads only inside a message whatever its bytes (truncated,
 * pointer loops, counts larger than the packet, random bytes); the
 * re-resolution delay follows the TTL with a 1-s floor and backs off after
 * failures; and a resolver created and destroyed with watches in flight
 * calls no callback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "loop.h"
#include "net.h"
#include "resolver.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    return ss;
}

static struct resolver_answer *new_answer(void)
{
    struct resolver_answer *a = calloc(1, sizeof(*a));
    assert_non_null(a);
    resolver_answer_clear(a);
    return a;
}

static void add(struct resolver_answer *a, struct sockaddr_storage ss,
                unsigned port, unsigned weight)
{
    resolver_answer_add(a, &ss, port, weight, 0, "t.test");
}

static void test_answer_sort_dedupe(void **state)
{
    (void)state;
    struct resolver_answer *a = new_answer();
    assert_int_equal(
        resolver_answer_add(a, &(struct sockaddr_storage){0}, 80, 1, 0, "x"),
        -1); /* AF_UNSPEC */
    add(a, v6("fd00::1"), 80, 1);
    add(a, v4("10.0.0.10"), 80, 1);
    add(a, v4("10.0.0.9"), 80, 1);
    add(a, v4("10.0.0.9"), 79, 1);
    struct sockaddr_storage dup = v4("10.0.0.9");
    assert_int_equal(resolver_answer_add(a, &dup, 80, 7, 3, "x"), 0);
    assert_int_equal(a->n, 4);
    resolver_answer_sort(a);
    /* numeric order, IPv4 first, then the port */
    assert_string_equal(a->addrs[0].addr, "10.0.0.9:79");
    assert_string_equal(a->addrs[1].addr, "10.0.0.9:80");
    assert_int_equal(a->addrs[1].weight, 7); /* the larger weight kept */
    assert_int_equal(a->addrs[1].priority, 0);
    assert_string_equal(a->addrs[2].addr, "10.0.0.10:80");
    assert_string_equal(a->addrs[3].addr, "[fd00::1]:80");
    assert_int_equal(a->addrs[3].port, 80);
    assert_string_equal(a->addrs[3].target, "t.test");

    /* weights clamped into 1..RESOLVER_WEIGHT_MAX */
    struct resolver_answer *w = new_answer();
    add(w, v4("10.0.0.1"), 1, 0);
    add(w, v4("10.0.0.2"), 1, 65535);
    assert_int_equal(w->addrs[0].weight, 1);
    assert_int_equal(w->addrs[1].weight, RESOLVER_WEIGHT_MAX);

    /* at most RESOLVER_MAX_ADDRS; the rest counted */
    struct resolver_answer *big = new_answer();
    for (unsigned i = 0; i < RESOLVER_MAX_ADDRS + 5; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.1.%u.%u", i / 200, i % 200 + 1);
        add(big, v4(ip), 80, 1);
    }
    assert_int_equal(big->n, RESOLVER_MAX_ADDRS);
    assert_int_equal(big->dropped, 5);
    free(a);
    free(w);
    free(big);
}

static void test_answer_same_set(void **state)
{
    (void)state;
    struct resolver_answer *a = new_answer(), *b = new_answer();
    add(a, v4("10.0.0.1"), 80, 1);
    add(a, v4("10.0.0.2"), 80, 1);
    add(b, v4("10.0.0.2"), 80, 1);
    add(b, v4("10.0.0.1"), 80, 1);
    resolver_answer_sort(a);
    resolver_answer_sort(b);
    assert_true(resolver_answer_same_set(a, b));
    b->ttl_s = 5; /* the TTL is not part of the set */
    assert_true(resolver_answer_same_set(a, b));
    b->addrs[0].weight = 2;
    assert_false(resolver_answer_same_set(a, b));
    b->addrs[0].weight = 1;
    b->addrs[1].port = 81;
    assert_false(resolver_answer_same_set(a, b));
    add(a, v4("10.0.0.3"), 80, 1);
    assert_false(resolver_answer_same_set(a, b));
    free(a);
    free(b);
}

static void test_srv_select(void **state)
{
    (void)state;
    struct resolver_srv r[] = {
        {"b.test", 80, 5, 20}, {"a.test", 81, 0, 10},     {"c.test", 82, 3, 10},
        {"d.test", 0, 3, 1},   {"e.test", 83, 70000, 10},
    };
    size_t n = resolver_srv_select(r, 5);
    assert_int_equal(n, 3); /* priority 10; the port-0 record ignored */
    assert_string_equal(r[0].target, "a.test");
    assert_int_equal(r[0].weight, 1);
    assert_string_equal(r[1].target, "c.test");
    assert_int_equal(r[1].weight, 3);
    assert_int_equal(r[2].weight, RESOLVER_WEIGHT_MAX);
    assert_int_equal(resolver_srv_select(r, 0), 0);
}

/* A message: header, question "a.test" A IN, then answers appended. */
static size_t msg_start(unsigned char *m, unsigned an)
{
    static const unsigned char head[] = {0x12, 0x34, 0x81, 0x80, 0, 1,   0, 0,
                                         0,    0,    0,    0,    1, 'a', 4, 't',
                                         'e',  's',  't',  0,    0, 1,   0, 1};
    memcpy(m, head, sizeof(head));
    m[7] = (unsigned char)an;
    return sizeof(head);
}

static size_t msg_rr(unsigned char *m, size_t off, unsigned type, uint32_t ttl)
{
    unsigned char rr[] = {0xc0,
                          0x0c,
                          0,
                          (unsigned char)type,
                          0,
                          1,
                          (unsigned char)(ttl >> 24),
                          (unsigned char)(ttl >> 16),
                          (unsigned char)(ttl >> 8),
                          (unsigned char)ttl,
                          0,
                          4,
                          10,
                          0,
                          0,
                          1};
    memcpy(m + off, rr, sizeof(rr));
    return off + sizeof(rr);
}

static void test_msg_min_ttl(void **state)
{
    (void)state;
    unsigned char m[512];
    uint32_t ttl = 0;
    size_t len = msg_start(m, 3);
    len = msg_rr(m, len, 1, 300);
    len = msg_rr(m, len, 28, 5);
    len = msg_rr(m, len, 1, 30);
    assert_int_equal(resolver_msg_min_ttl(m, len, 1, &ttl), 0);
    assert_int_equal(ttl, 30);
    assert_int_equal(resolver_msg_min_ttl(m, len, 28, &ttl), 0);
    assert_int_equal(ttl, 5);
    assert_int_equal(resolver_msg_min_ttl(m, len, 33, &ttl), -1);

    /* the top bit set reads as 0 (RFC 2181) */
    size_t l2 = msg_rr(m, msg_start(m, 1), 1, 0x80000001u);
    assert_int_equal(resolver_msg_min_ttl(m, l2, 1, &ttl), 0);
    assert_int_equal(ttl, 0);

    /* every truncation of a good message is refused or read inside */
    len = msg_rr(m, msg_rr(m, msg_start(m, 2), 1, 300), 1, 30);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(resolver_msg_min_ttl(m, cut, 1, &ttl), -1);

    /* more answers announced than present */
    len = msg_rr(m, msg_start(m, 50), 1, 300);
    assert_int_equal(resolver_msg_min_ttl(m, len, 1, &ttl), -1);

    /* a name that points at itself is skipped, not followed */
    len = msg_start(m, 1);
    size_t at = len;
    len = msg_rr(m, len, 1, 9);
    m[at] = 0xc0;
    m[at + 1] = (unsigned char)at;
    assert_int_equal(resolver_msg_min_ttl(m, len, 1, &ttl), 0);
    assert_int_equal(ttl, 9);

    /* rdlength beyond the end */
    len = msg_rr(m, msg_start(m, 1), 1, 9);
    m[len - 5] = 200;
    assert_int_equal(resolver_msg_min_ttl(m, len, 1, &ttl), -1);

    /* random bytes: never read outside (ASan) and never crash */
    unsigned seed = 1;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rand_r(&seed) % 80);
        unsigned char *r = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            r[i] = (unsigned char)rand_r(&seed);
        if (n > 7 && round % 2) {
            r[4] = 0;
            r[5] = 1;
            r[6] = 0;
            r[7] = (unsigned char)(round % 5);
        }
        resolver_msg_min_ttl(r, n, 1, &ttl);
        free(r);
    }
    assert_int_equal(resolver_msg_min_ttl(NULL, 0, 1, &ttl), -1);
}

static void test_next_ms(void **state)
{
    (void)state;
    assert_int_equal(resolver_next_ms(true, 300, 0, 5000), 5000);
    assert_int_equal(resolver_next_ms(true, 2, 0, 5000), 2000);
    assert_int_equal(resolver_next_ms(true, 0, 0, 5000), 1000);
    assert_int_equal(resolver_next_ms(true, UINT32_MAX, 0, 86400000), 86400000);
    assert_int_equal(resolver_next_ms(true, 300, 0, 10), 1000);
    assert_int_equal(resolver_next_ms(false, 0, 1, 30000), 1000);
    assert_int_equal(resolver_next_ms(false, 0, 2, 30000), 2000);
    assert_int_equal(resolver_next_ms(false, 0, 3, 30000), 4000);
    assert_int_equal(resolver_next_ms(false, 0, 10, 30000), 30000);
    assert_int_equal(resolver_next_ms(false, 0, 1000, 30000), 30000);
}

static void test_name_valid(void **state)
{
    (void)state;
    const char *good[] = {"web.test", "a",         "_http._tcp.web.test",
                          "a-b.c_d",  "web.test.", "x1.2a",
                          "localhost"};
    const char *bad[] = {"",           ".",     "a..b",  "-a.test",
                         "a-.test",    "a b",   "a\\.b", "10.0.0.1",
                         "10.0.0.300", "a.123", "a/b",   "é.test"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!net_name_valid(good[i]))
            fail_msg("'%s' refused", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (net_name_valid(bad[i]))
            fail_msg("'%s' accepted", bad[i]);
    char label[80], name[300];
    memset(label, 'a', 64);
    label[64] = '\0';
    assert_false(net_name_valid(label)); /* a label of 64 */
    label[63] = '\0';
    assert_true(net_name_valid(label));
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
    memset(name, 'a', 253);
    name[253] = '\0';
    name[63] = name[127] = name[191] = '.';
    assert_int_equal(strlen(name), 253);
    assert_true(net_name_valid(name));
    strcat(name, "a");
    assert_false(net_name_valid(name));
}

static void never(void *arg, const struct resolver_answer *a)
{
    (void)arg;
    (void)a;
    fail_msg("a callback after destroy");
}

/* Watches created and the resolver destroyed before the loop ever runs
 * them: nothing is called, nothing leaks (ASan); bad watches refused. */
static void test_create_destroy(void **state)
{
    (void)state;
    struct loop *loop = loop_create();
    char err[256];
    assert_null(resolver_create(loop, "nowhere:53", 500, err, sizeof(err)));
    struct resolver *r =
        resolver_create(loop, "127.0.0.1:9,[::1]:9", 500, err, sizeof(err));
    if (!r)
        fail_msg("%s", err);
    assert_non_null(resolver_watch(r, RESOLVER_HOST, "a.test", 80, 1000, never,
                                   NULL, err, sizeof(err)));
    struct resolver_watch *w =
        resolver_watch(r, RESOLVER_SRV, "_x._tcp.a.test", 0, 1000, never, NULL,
                       err, sizeof(err));
    assert_non_null(w);
    resolver_unwatch(w);
    assert_null(resolver_watch(r, RESOLVER_HOST, "a.test", 0, 1000, never, NULL,
                               err, sizeof(err)));
    assert_non_null(strstr(err, "port"));
    assert_null(resolver_watch(r, RESOLVER_HOST, "a b", 80, 1000, never, NULL,
                               err, sizeof(err)));
    assert_non_null(strstr(err, "not a DNS name"));
    assert_int_equal(resolver_queries(r), 0);
    resolver_destroy(r);
    resolver_destroy(NULL);
    loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_sort_dedupe),
        cmocka_unit_test(test_answer_same_set),
        cmocka_unit_test(test_srv_select),
        cmocka_unit_test(test_msg_min_ttl),
        cmocka_unit_test(test_next_ms),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_create_destroy),
    };
    return cmocka_run_group_tests_name("resolver", tests, NULL, NULL);
}
