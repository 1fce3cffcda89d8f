/*
 * Unit tests of pools and routes in the configuration: [pool.NAME] keys
 * applied over the global ones (and flags after the file reaching pools
 * that do not set the key), [pool.NAME.backends], [route.NAME], the
 * file:line errors, the cross-section rules, and --print-config reading
 * back the same pools; TLS towards backends (the ",tls" flag and the
 * upstream_tls_* keys, globally and per pool).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char path[256];

static const char *write_tmp(const char *text)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof(path), "%s/lbproxy-test-pool-XXXXXX", dir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static int from_file(struct config *c, const char *text, char *err,
                     size_t errlen, const char *flag)
{
    char *argv[] = {"lbproxy", "--config", (char *)write_tmp(text),
                    (char *)flag, NULL};
    int rc = config_from_args(c, flag ? 4 : 3, argv, err, errlen);
    unlink(path);
    return rc;
}

static const char two_pools[] =
    "[proxy]\nmode = adaptive_ewma\n"
    "[limits]\nmax_retries = 2\n"
    "[backends]\nA = 127.0.0.1:8081\n"
    "[pool.api]\nmode = least-conn\npersistent = false\nmax_retries = 1\n"
    "ewma_alpha = 0.5\ncheck_path = /health\n"
    "[pool.api.backends]\nA = 127.0.0.1:8082\nB = 127.0.0.1:8083, weight=2\n"
    "[route.api]\nhost = API.example.com\npath_prefix = /v1/\npool = api\n"
    "[route.www]\nhost = *.example.com\npool = default\n";

static void test_pools_built(void **state)
{
    (void)state;
    static struct config c, p;
    char err[512];
    assert_int_equal(from_file(&c, two_pools, err, sizeof(err), NULL), 0);
    assert_int_equal(config_pool_count(&c), 2);
    assert_int_equal(config_pool_build(&c, 0, &p, err, sizeof(err)), 0);
    assert_string_equal(p.pool, "default");
    assert_string_equal(p.mode, "adaptive_ewma");
    assert_int_equal(p.nbackends, 1);
    assert_int_equal(p.max_retries, 2);
    assert_null(p.ext);
    assert_int_equal(config_pool_build(&c, 1, &p, err, sizeof(err)), 0);
    assert_string_equal(p.pool, "api");
    assert_string_equal(p.mode, "least-conn");
    assert_false(p.persistent);
    assert_int_equal(p.max_retries, 1);
    assert_true(p.balancer.ewma_alpha == 0.5);
    assert_string_equal(p.health_check_path, "/health");
    assert_int_equal(p.nbackends, 2);
    assert_string_equal(p.backends[1].id, "B");
    assert_int_equal(p.backends[1].weight, 2);
    assert_string_equal(p.backends[1].port, "8083");
    assert_int_not_equal(config_pool_build(&c, 2, &p, err, sizeof(err)), 0);
    assert_int_equal(config_route_count(&c), 2);
    assert_string_equal(config_route(&c, 0)->host, "api.example.com");
    assert_string_equal(config_route(&c, 0)->path_prefix, "/v1/");
    assert_string_equal(config_route(&c, 1)->path_prefix, "/");
    assert_null(config_route(&c, 2));
    config_release(&c);
    config_release(&c); /* twice is harmless */
    assert_int_equal(config_pool_count(&c), 1);
}

static void test_flag_reaches_pools(void **state)
{
    (void)state;
    static struct config c, p;
    char err[512];
    /* --mode after the file: the default pool and pools without a mode
     * of their own follow it, [pool.api] keeps least-conn */
    const char text[] = "[backends]\nA = 127.0.0.1:1\n"
                        "[pool.api]\nmode = least-conn\n"
                        "[pool.api.backends]\nA = 127.0.0.1:2\n"
                        "[pool.web.backends]\nA = 127.0.0.1:3\n";
    assert_int_equal(from_file(&c, text, err, sizeof(err), "--mode=p2c"), 0);
    assert_int_equal(config_pool_count(&c), 3);
    config_pool_build(&c, 0, &p, err, sizeof(err));
    assert_string_equal(p.mode, "p2c-peak-ewma");
    config_pool_build(&c, 1, &p, err, sizeof(err));
    assert_string_equal(p.mode, "least-conn");
    config_pool_build(&c, 2, &p, err, sizeof(err));
    assert_string_equal(p.pool, "web");
    assert_string_equal(p.mode, "p2c-peak-ewma");
    config_release(&c);

    /* pools without [backends]: no default pool */
    const char nodef[] = "[pool.web.backends]\nA = 127.0.0.1:3\n"
                         "[route.all]\npool = web\n";
    assert_int_equal(from_file(&c, nodef, err, sizeof(err), NULL), 0);
    assert_int_equal(config_pool_count(&c), 1);
    config_pool_build(&c, 0, &p, err, sizeof(err));
    assert_string_equal(p.pool, "web");
    config_release(&c);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[backends]\nA = 127.0.0.1:1\n[pool.x]\nlisten = 127.0.0.1:2\n",
         ":4: [pool.x] listen: unknown key"},
        {"[backends]\nA = 127.0.0.1:1\n[pool.x]\nmode = nope\n",
         ":4: [pool.x] mode: expected"},
        {"[backends]\nA = 127.0.0.1:1\n[pool.x.backends]\nA = nohost\n",
         ":4: [pool.x.backends] [backends] A: expected"},
        {"[backends]\nA = 127.0.0.1:1\n[pool.x.backends]\nA = 127.0.0.1:2\n"
         "A = 127.0.0.1:3\n",
         "duplicate backend id"},
        {"[backends]\nA = 127.0.0.1:1\n[pool.default]\nmode = rr\n",
         "is [backends]"},
        {"[backends]\nA = 127.0.0.1:1\n[pool.x]\nmode = rr\n",
         "pool x has no backends"},
        {"[backends]\nA = 127.0.0.1:1\n[route.r]\nhost = a.b\n",
         "[route.r] has no pool"},
        {"[backends]\nA = 127.0.0.1:1\n[route.r]\npool = api\n",
         "pool api: no such pool"},
        {"[pool.x.backends]\nA = 127.0.0.1:1\n[route.r]\npool = default\n",
         "pool default: no such pool"},
        {"[backends]\nA = 127.0.0.1:1\n[route.r]\nhost = a:80\npool = "
         "default\n",
         "host: expected a host name"},
        {"[backends]\nA = 127.0.0.1:1\n[route.r]\npath_prefix = v1\n",
         "path_prefix: expected"},
        {"[backends]\nA = 127.0.0.1:1\n[route.r]\nweight = 1\n",
         "weight: unknown key"},
        {"[backends]\nA = 127.0.0.1:1\n[route.a]\nhost = x.y\npool = "
         "default\n[route.b]\nhost = X.Y\npool = default\n",
         "[route.a] and [route.b] match the same host"},
        {"[backends]\nA = 127.0.0.1:1\n[pool.x]\nfail_timeout_ms = 90000\n"
         "[pool.x.backends]\nA = 127.0.0.1:2\n",
         "pool x: invalid configuration: [health] fail_timeout_ms"},
        {"[backends]\nA = 127.0.0.1:1\n[pool.a.b.c]\n", "unknown section"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static struct config c;
        char err[512] = "";
        assert_int_equal(from_file(&c, cases[i].text, err, sizeof(err), NULL),
                         -1);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].want);
        assert_null(c.ext); /* a refused file keeps nothing on the heap */
    }
}

static void test_print_round_trip(void **state)
{
    (void)state;
    static struct config a, b, pa, pb;
    char err[512];
    assert_int_equal(from_file(&a, two_pools, err, sizeof(err), NULL), 0);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    config_print(&a, f);
    fclose(f);
    assert_int_equal(from_file(&b, out, err, sizeof(err), NULL), 0);
    free(out);
    assert_int_equal(config_pool_count(&b), 2);
    assert_int_equal(config_route_count(&b), 2);
    for (size_t i = 0; i < 2; i++) {
        config_pool_build(&a, i, &pa, err, sizeof(err));
        config_pool_build(&b, i, &pb, err, sizeof(err));
        assert_string_equal(pa.pool, pb.pool);
        assert_string_equal(pa.mode, pb.mode);
        assert_int_equal(pa.nbackends, pb.nbackends);
        assert_int_equal(pa.max_retries, pb.max_retries);
        assert_memory_equal(&pa.balancer, &pb.balancer, sizeof(pa.balancer));
        assert_memory_equal(pa.backends, pb.backends,
                            pa.nbackends * sizeof(pa.backends[0]));
    }
    assert_memory_equal(config_route(&a, 0), config_route(&b, 0),
                        sizeof(struct config_route));
    config_release(&a);
    config_release(&b);
}

static const char tls_pools[] =
    "[pool]\nupstream_tls_ca_file = /etc/ca.pem\n"
    "upstream_tls_min_version = TLS1.3\n"
    "[backends]\nA = 127.0.0.1:8443, tls\nB = 127.0.0.1:8081, weight=2\n"
    "[pool.api]\nupstream_tls_verify = false\n"
    "upstream_tls_sni = api.internal\n"
    "[pool.api.backends]\nA = 127.0.0.1:9443 ,weight=3, TLS\n"
    "S = unix:/run/s.sock, tls\n"
    "[route.api]\nhost = api.example.com\npool = api\n";

/* The flag and the keys, each pool's own over the global ones, read back
 * the same from --print-config; the command line's spelling too. */
static void test_upstream_tls(void **state)
{
    (void)state;
    static struct config c, p, b, pb;
    char err[512];
    assert_int_equal(from_file(&c, tls_pools, err, sizeof(err), NULL), 0);
    assert_int_equal(config_pool_build(&c, 0, &p, err, sizeof(err)), 0);
    assert_true(p.backends[0].tls);
    assert_false(p.backends[1].tls);
    assert_int_equal(p.backends[1].weight, 2);
    assert_true(p.upstream_tls_verify);
    assert_string_equal(p.upstream_tls_ca_file, "/etc/ca.pem");
    assert_string_equal(p.upstream_tls_sni, "");
    assert_string_equal(p.upstream_tls_min_version, "TLS1.3");
    assert_int_equal(config_pool_build(&c, 1, &p, err, sizeof(err)), 0);
    assert_true(p.backends[0].tls);
    assert_int_equal(p.backends[0].weight, 3);
    assert_true(p.backends[1].tls);
    assert_false(p.upstream_tls_verify);
    assert_string_equal(p.upstream_tls_sni, "api.internal");
    assert_string_equal(p.upstream_tls_ca_file, "/etc/ca.pem"); /* global */

    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    config_print(&c, f);
    fclose(f);
    assert_non_null(strstr(out, "A = 127.0.0.1:8443, tls\n"));
    assert_int_equal(from_file(&b, out, err, sizeof(err), NULL), 0);
    free(out);
    for (size_t i = 0; i < 2; i++) {
        config_pool_build(&c, i, &p, err, sizeof(err));
        config_pool_build(&b, i, &pb, err, sizeof(err));
        assert_memory_equal(p.backends, pb.backends,
                            p.nbackends * sizeof(p.backends[0]));
        assert_string_equal(p.upstream_tls_sni, pb.upstream_tls_sni);
        assert_int_equal(p.upstream_tls_verify, pb.upstream_tls_verify);
    }
    config_release(&c);
    config_release(&b);

    char *argv[] = {"lbproxy",
                    "--backend",
                    "127.0.0.1:8443,tls,id=x",
                    "--set",
                    "pool.upstream_tls_verify=false",
                    NULL};
    assert_int_equal(config_from_args(&c, 5, argv, err, sizeof(err)), 0);
    assert_true(c.backends[0].tls);
    assert_string_equal(c.backends[0].id, "x");
    assert_false(c.upstream_tls_verify);
    config_release(&c);
}

/* What the TLS keys and the flag refuse, with the key named. */
static void test_upstream_tls_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"[backends]\nA = 127.0.0.1:8443, tls=1\n", "[, tls]"},
        {"[backends]\nA = 127.0.0.1:8443, tlsx\n", "[, tls]"},
        {"[pool]\nupstream_tls_verify = maybe\n[backends]\nA = "
         "127.0.0.1:1\n",
         "upstream_tls_verify"},
        {"[pool]\nupstream_tls_min_version = SSL3\n[backends]\nA = "
         "127.0.0.1:1\n",
         "upstream_tls_min_version"},
        {"[pool]\nupstream_tls_sni = 10.0.0.1\n[backends]\nA = 127.0.0.1:1\n",
         "upstream_tls_sni"},
        {"[backends]\nA = unix:/run/a.sock, tls\n", "upstream_tls_sni"},
        {"[backends]\nA = 127.0.0.1:1\n[pool.p]\nupstream_tls_sni = a..b\n"
         "[pool.p.backends]\nA = 127.0.0.1:2, tls\n",
         "pool p"},
    };
    static struct config c;
    char err[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(from_file(&c, bad[i].text, err, sizeof(err), NULL),
                         -1);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
    }
    /* a Unix socket with a name to check, or without checks, is fine */
    assert_int_equal(
        from_file(&c,
                  "[pool]\nupstream_tls_verify = false\n[backends]\nA = "
                  "unix:/run/a.sock, tls\n",
                  err, sizeof(err), NULL),
        0);
    config_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pools_built),
        cmocka_unit_test(test_flag_reaches_pools),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_upstream_tls),
        cmocka_unit_test(test_upstream_tls_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
