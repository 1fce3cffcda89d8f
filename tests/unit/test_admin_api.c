/*
 * Unit tests of the runtime API without sockets: the Authorization header
 * gathered from llhttp-sized spans, the bearer check (missing, wrong,
 * repeated, another scheme: 401 and nothing changes), the routes and their
 * errors, a change validated whole before it applies, and the token file's
 * rules (first line, 16..255 visible bytes, not readable by others).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin_api.h"
#include "backendset.h"
#include "balancer.h"
#include "config.h"
#include "log.h"
#include "upstream.h"

#define TOKEN "0123456789abcdef-token"

static struct backendset set;

static struct backendset *pool_at(void *ctx, size_t i)
{
    (void)ctx;
    return i == 0 ? &set : NULL;
}

static struct backendset *lookup(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "default") == 0 ? &set : NULL;
}

static const struct admin_control control = {pool_at, lookup, NULL};

struct fx {
    struct config cfg;
    struct admin_sources src;
    struct admin_buf out;
};

static void fx_init(struct fx *f)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    config_defaults(&f->cfg);
    f->cfg.nbackends = 1;
    strcpy(f->cfg.backends[0].id, "A");
    strcpy(f->cfg.backends[0].host, "127.0.0.1");
    strcpy(f->cfg.backends[0].port, "8081");
    memset(&set, 0, sizeof(set));
    set.name = "default";
    set.up = upstream_create(NULL, &f->cfg, err, sizeof(err));
    set.bal = balancer_create("round-robin", NULL, 1, NULL);
    assert_non_null(set.up);
    assert_non_null(set.bal);
    f->src.control = &control;
}

static void fx_free(struct fx *f)
{
    admin_buf_free(&f->out);
    upstream_destroy(set.up);
    balancer_destroy(set.bal);
}

/* Feeds header lines ("Name: value") split into 3-byte spans. */
static void feed(struct admin_api_auth *a, const char *const *hdrs, size_t n)
{
    admin_api_auth_reset(a);
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(hdrs[i], ':');
        const char *v = colon + 2;
        for (const char *p = hdrs[i]; p < colon; p += 3)
            admin_api_auth_field(a, p, colon - p < 3 ? (size_t)(colon - p) : 3);
        size_t len = strlen(v);
        for (size_t k = 0; k < len; k += 3)
            admin_api_auth_value(a, v + k, len - k < 3 ? len - k : 3);
        admin_api_auth_value_done(a);
    }
}

/* One call: the status; the body is left in f->out (NUL-terminated). */
static int call(struct fx *f, const char *method, const char *path,
                const char *body, const char *const *hdrs, size_t nh)
{
    struct admin_api_auth a;
    const char *extra;
    feed(&a, hdrs, nh);
    struct admin_api_req rq = {
        .method = method,
        .path = path,
        .auth = &a,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .body_kept = body ? strlen(body) : 0,
    };
    f->out.len = 0;
    int st = admin_api_handle(&f->src, TOKEN, &rq, 0, &f->out, &extra);
    admin_buf_add(&f->out, "", 1);
    if (st == 401)
        assert_non_null(strstr(extra, "WWW-Authenticate: Bearer"));
    return st;
}

static const char *const good[] = {"Authorization: Bearer " TOKEN};

static void test_bearer_check(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f);
    const char *const wrong[] = {"Authorization: Bearer " TOKEN "x"};
    const char *const scheme[] = {"Authorization: Basic " TOKEN};
    const char *const twice[] = {"Authorization: Bearer " TOKEN,
                                 "authorization: Bearer " TOKEN};
    const char *const other[] = {"X-Authorization: Bearer " TOKEN,
                                 "Authorizatio: Bearer " TOKEN};
    const char *const lower[] = {"AUTHORIZATION: bearer " TOKEN};
    const char *body = "{\"id\":\"B\",\"address\":\"127.0.0.1:8082\"}";
    assert_int_equal(
        call(&f, "POST", "/api/pools/default/backends", body, NULL, 0), 401);
    assert_int_equal(
        call(&f, "POST", "/api/pools/default/backends", body, wrong, 1), 401);
    assert_int_equal(
        call(&f, "POST", "/api/pools/default/backends", body, scheme, 1), 401);
    assert_int_equal(
        call(&f, "POST", "/api/pools/default/backends", body, twice, 2), 401);
    assert_int_equal(
        call(&f, "POST", "/api/pools/default/backends", body, other, 2), 401);
    assert_int_equal(
        call(&f, "DELETE", "/api/pools/default/backends/A", NULL, wrong, 1),
        401);
    assert_int_equal(backendset_count(&set), 1);
    assert_int_equal(backendset_find(&set, "A"), 0);
    /* case of the name and of the scheme does not matter */
    assert_int_equal(
        call(&f, "POST", "/api/pools/default/backends", body, lower, 1), 201);
    assert_int_equal(backendset_find(&set, "B"), 1);
    /* off: no token, no API */
    struct admin_api_auth a;
    const char *extra;
    feed(&a, good, 1);
    struct admin_api_req rq = {
        .method = "GET", .path = "/api/pools", .auth = &a};
    assert_int_equal(admin_api_handle(&f.src, "", &rq, 0, &f.out, &extra), 404);
    fx_free(&f);
}

static void test_routes_and_errors(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f);
    const char *b = "/api/pools/default/backends";
    assert_int_equal(call(&f, "GET", "/api/pools", NULL, good, 1), 200);
    assert_non_null(strstr(f.out.p, "\"name\":\"default\""));
    assert_non_null(strstr(f.out.p, "\"address\":\"127.0.0.1:8081\""));
    assert_int_equal(call(&f, "GET", "/api/pools/default", NULL, good, 1), 200);
    assert_int_equal(call(&f, "GET", b, NULL, good, 1), 200);
    assert_int_equal(call(&f, "GET", "/api/pools/x", NULL, good, 1), 404);
    assert_int_equal(call(&f, "GET", "/api/pools/default/x", NULL, good, 1),
                     404);
    assert_int_equal(
        call(&f, "GET", "/api/pools/default/backends/A/x", NULL, good, 1), 404);
    assert_int_equal(call(&f, "GET", "/api/pools//backends", NULL, good, 1),
                     404);
    assert_int_equal(call(&f, "PUT", "/api/pools", NULL, good, 1), 405);
    assert_int_equal(call(&f, "DELETE", b, NULL, good, 1), 405);
    assert_int_equal(
        call(&f, "GET", "/api/pools/default/backends/Z", NULL, good, 1), 404);
    /* a half-valid change applies nothing */
    assert_int_equal(call(&f, "PATCH", "/api/pools/default/backends/A",
                          "{\"weight\":4,\"state\":\"nap\"}", good, 1),
                     400);
    assert_int_equal(balancer_backend(set.bal, 0)->weight, 1);
    assert_int_equal(call(&f, "PATCH", "/api/pools/default/backends/A",
                          "{\"weight\":4,\"state\":\"drain\"}", good, 1),
                     200);
    assert_int_equal(balancer_backend(set.bal, 0)->weight, 4);
    assert_int_equal(balancer_backend(set.bal, 0)->admin, BALANCER_DRAIN);
    assert_non_null(strstr(f.out.p, "\"state\":\"drained\""));
    static const char *const bad[] = {
        "",
        "null",
        "{",
        "[]",
        "{\"weight\":-1}",
        "{\"weight\":1e9}",
        "{\"weight\":true}",
        "{\"id\":\"A\"}",
        "{\"state\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            call(&f, "PATCH", "/api/pools/default/backends/A", bad[i], good, 1),
            400);
    assert_int_equal(call(&f, "POST", b,
                          "{\"id\":\"A\",\"address\":\"127.0.0.1:1\"}", good,
                          1),
                     409);
    char big[ADMIN_API_BODY_MAX + 2];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(call(&f, "POST", b, big, good, 1), 413);
    assert_int_equal(
        call(&f, "DELETE", "/api/pools/default/backends/A", NULL, good, 1),
        200);
    assert_non_null(strstr(f.out.p, "\"state\":\"removed\""));
    assert_int_equal(backendset_find(&set, "A"), -1);
    assert_true(admin_api_path("/api/pools"));
    assert_true(admin_api_path("/api/pools/x"));
    assert_false(admin_api_path("/api/poolsx"));
    assert_false(admin_api_path("/api/stats"));
    fx_free(&f);
}

static int token_file(const char *text, mode_t mode, char *path, size_t len)
{
    snprintf(path, len, "/tmp/lbproxy-token-%d", (int)getpid());
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return chmod(path, mode);
}

static void test_token_file(void **st)
{
    (void)st;
    char path[64], tok[ADMIN_API_TOKEN_MAX + 1], err[256];
    assert_int_equal(token_file(TOKEN "\nignored\n", 0600, path, sizeof(path)),
                     0);
    assert_int_equal(
        admin_api_read_token(path, tok, sizeof(tok), err, sizeof(err)), 0);
    assert_string_equal(tok, TOKEN);
    token_file(TOKEN, 0640, path, sizeof(path)); /* no newline, group: ok */
    assert_int_equal(
        admin_api_read_token(path, tok, sizeof(tok), err, sizeof(err)), 0);
    token_file(TOKEN "\n", 0604, path, sizeof(path));
    assert_int_equal(
        admin_api_read_token(path, tok, sizeof(tok), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "others"));
    static const char *const bad[] = {"short\n", "with space in the token\n",
                                      "\n" TOKEN "\n", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        token_file(bad[i], 0600, path, sizeof(path));
        assert_int_equal(
            admin_api_read_token(path, tok, sizeof(tok), err, sizeof(err)), -1);
    }
    unlink(path);
    assert_int_equal(
        admin_api_read_token(path, tok, sizeof(tok), err, sizeof(err)), -1);
}

int main(void)
{
    log_verbosity = 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer_check),
        cmocka_unit_test(test_routes_and_errors),
        cmocka_unit_test(test_token_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
