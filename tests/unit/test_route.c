/*
 * Unit tests of the route table: the documented matching order (exact
 * host, then wildcards nearest first, then host-less routes, then the
 * default pool; the longest prefix within each), host normalisation
 * (case, port, trailing dot, IPv6 literal, over-long names), 404 versus
 * 421, and a table of 1,000 hosts and 100 pools.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "route.h"

static struct config_route R(const char *host, const char *prefix,
                             const char *pool) {
    struct config_route r;
    memset(&r, 0, sizeof(r));
    snprintf(r.name, sizeof(r.name), "r");
    snprintf(r.host, sizeof(r.host), "%s", host);
    snprintf(r.path_prefix, sizeof(r.path_prefix), "%s", prefix);
    snprintf(r.pool, sizeof(r.pool), "%s", pool);
    return r;
}

static const char *const pools[] = {"default", "api", "www", "any", "v2"};
#define NP (sizeof(pools) / sizeof(pools[0]))

static int look(const struct route_table *t, const char *host, const char *path)
{
    return route_lookup(t, host, host ? strlen(host) : 0, path, strlen(path));
}

static void test_order(void **state)
{
    (void)state;
    struct config_route rs[] = {
        R("", "/", "any"),
        R("*.example.com", "/", "www"),
        R("api.example.com", "/v1/", "api"),
        R("api.example.com", "/v1/beta/", "v2"),
        R("*.eu.example.com", "/", "v2"),
    };
    char err[128];
    struct route_table *t =
        route_table_create(rs, 5, pools, NP, -1, err, sizeof(err));
    assert_non_null(t);
    /* exact host, longest prefix first */
    assert_int_equal(look(t, "api.example.com", "/v1/x"), 1);
    assert_int_equal(look(t, "api.example.com", "/v1/beta/x"), 4);
    /* exact host whose prefixes miss: falls to the wildcard */
    assert_int_equal(look(t, "api.example.com", "/other"), 2);
    /* wildcards: any depth, nearest suffix first */
    assert_int_equal(look(t, "a.example.com", "/"), 2);
    assert_int_equal(look(t, "a.b.example.com", "/"), 2);
    assert_int_equal(look(t, "x.eu.example.com", "/"), 4);
    /* a wildcard does not match the bare domain */
    assert_int_equal(look(t, "example.com", "/"), 3);
    /* host-less routes catch every other host, and requests with none */
    assert_int_equal(look(t, "other.org", "/a"), 3);
    assert_int_equal(look(t, NULL, "/a"), 3);
    /* normalisation: case, port, trailing dot */
    assert_int_equal(look(t, "API.Example.COM:8080", "/v1/"), 1);
    assert_int_equal(look(t, "api.example.com.", "/v1/"), 1);
    route_table_destroy(t);
}

static void test_404_421_default(void **state)
{
    (void)state;
    struct config_route rs[] = {
        R("api.example.com", "/v1/", "api"),
        R("*.example.org", "/app/", "www"),
    };
    char err[128];
    struct route_table *t =
        route_table_create(rs, 2, pools, NP, -1, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(look(t, "api.example.com", "/v2/"), ROUTE_NOT_FOUND);
    assert_int_equal(look(t, "x.example.org", "/"), ROUTE_NOT_FOUND);
    assert_int_equal(look(t, "unknown.net", "/v1/"), ROUTE_MISDIRECTED);
    assert_int_equal(look(t, NULL, "/v1/"), ROUTE_MISDIRECTED);
    assert_int_equal(look(t, "[::1]:9090", "/v1/"), ROUTE_MISDIRECTED);
    /* a name longer than any host matches nothing but host-less routes */
    char longname[400];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(look(t, longname, "/v1/"), ROUTE_MISDIRECTED);
    route_table_destroy(t);

    /* with a default pool, what matches nothing goes there */
    t = route_table_create(rs, 2, pools, NP, 0, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(look(t, "unknown.net", "/"), 0);
    assert_int_equal(look(t, "api.example.com", "/v2/"), 0);
    assert_int_equal(look(t, "api.example.com", "/v1/a"), 1);
    route_table_destroy(t);

    /* no routes: everything to the default pool, or 421 without one */
    t = route_table_create(NULL, 0, pools, NP, 0, err, sizeof(err));
    assert_int_equal(look(t, "x", "/"), 0);
    route_table_destroy(t);
    t = route_table_create(NULL, 0, pools, NP, -1, err, sizeof(err));
    assert_int_equal(look(t, "x", "/"), ROUTE_MISDIRECTED);
    route_table_destroy(t);

    /* an unknown pool is refused */
    struct config_route bad = R("", "/", "nope");
    assert_null(route_table_create(&bad, 1, pools, NP, -1, err, sizeof(err)));
    assert_non_null(strstr(err, "nope"));
}

static void test_thousand_hosts(void **state)
{
    (void)state;
    enum { NH = 1000, NPOOLS = 100 };
    static struct config_route rs[NH];
    static char names[NPOOLS][16];
    const char *pn[NPOOLS];
    for (int i = 0; i < NPOOLS; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        pn[i] = names[i];
    }
    for (int i = 0; i < NH; i++) {
        char host[64];
        snprintf(host, sizeof(host), "h%d.example.com", i);
        rs[i] = R(host, i % 2 ? "/api/" : "/", names[i % NPOOLS]);
    }
    char err[128];
    struct route_table *t =
        route_table_create(rs, NH, pn, NPOOLS, -1, err, sizeof(err));
    assert_non_null(t);
    for (int i = 0; i < NH; i++) {
        char host[64];
        snprintf(host, sizeof(host), "H%d.example.com:80", i);
        assert_int_equal(look(t, host, "/api/x"), i % NPOOLS);
        assert_int_equal(look(t, host, "/"),
                         i % 2 ? ROUTE_NOT_FOUND : i % NPOOLS);
    }
    assert_int_equal(look(t, "h1000.example.com", "/"), ROUTE_MISDIRECTED);
    route_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_404_421_default),
        cmocka_unit_test(test_thousand_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
