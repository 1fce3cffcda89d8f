/*
 * test_admin_render: the pure half of admin — path sanitising, query
 * parameters, content types, the /api/stats JSON against the contract
 * (checked by Python's json module when /usr/bin/python3 exists), the
 * Prometheus exposition (checked by promtool when installed) and the /logs/
 * listing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin_render.h"
#include "balancer.h"
#include "config.h"
#include "record.h"
#include "stats.h"
#include "upstream.h"
#include "backendset.h"

#define SEC 1000000ull
#define T0 (5000 * SEC)

static size_t fake_pool_idle(void *ctx, size_t idx)
{
    (void)ctx;
    return 10 + idx;
}

static const char *ok_paths[][2] = {
    {"/", "/"},
    {"/index.html", "/index.html"},
    {"/vendor/uplot/dist/uPlot.iife.min.js?v=1.2",
     "/vendor/uplot/dist/uPlot.iife.min.js"},
    {"/a%20b.js#frag", "/a b.js"},
    {"/logs/", "/logs/"},
    {"/x?../../etc/passwd", "/x"},
    {"/a..b/c.d", "/a..b/c.d"},
};

static const char *bad_paths[] = {
    "/../etc/passwd",
    "/%2e%2e/etc/passwd",
    "/a/../../b",
    "/a/./b",
    "/a//b",
    "/.git/config",
    "/a\\b",
    "/a%5cb",
    "/%00",
    "/x%2",
    "/x%zz",
    "relative",
    "",
    "/a/..",
    "/a/%2E%2E",
    "/tab\there",
};

static void test_sanitize_path(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i < sizeof(ok_paths) / sizeof(ok_paths[0]); i++) {
        int rc = admin_sanitize_path(ok_paths[i][0], strlen(ok_paths[i][0]),
                                     out, sizeof(out));
        if (rc != 0)
            fail_msg("rejected %s", ok_paths[i][0]);
        assert_string_equal(out, ok_paths[i][1]);
    }
    for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++)
        if (admin_sanitize_path(bad_paths[i], strlen(bad_paths[i]), out,
                                sizeof(out)) == 0)
            fail_msg("accepted %s as %s", bad_paths[i], out);
    /* Too long for the output: refused, not cut. */
    assert_int_equal(admin_sanitize_path("/abcdef", 7, out, 4), -1);
}

static void test_query_and_names(void **state)
{
    (void)state;
    char v[32];
    const char *t = "/logs/?x=1&format=json&window=5#f";
    assert_true(admin_query_param(t, strlen(t), "format", v, sizeof(v)));
    assert_string_equal(v, "json");
    assert_true(admin_query_param(t, strlen(t), "window", v, sizeof(v)));
    assert_string_equal(v, "5");
    assert_false(admin_query_param(t, strlen(t), "form", v, sizeof(v)));
    assert_false(admin_query_param("/a", 2, "x", v, sizeof(v)));
    assert_true(admin_query_param("/a?flag", 7, "flag", v, sizeof(v)));
    assert_string_equal(v, "");

    assert_true(admin_log_name_ok("adaptive_ewma_persistent.csv"));
    assert_true(admin_log_name_ok("run-1+2.csv"));
    assert_false(admin_log_name_ok(".hidden.csv"));
    assert_false(admin_log_name_ok("a.txt"));
    assert_false(admin_log_name_ok(".csv"));
    assert_false(admin_log_name_ok("a/b.csv"));
    assert_false(admin_log_name_ok("a b.csv"));

    assert_string_equal(admin_content_type("/x/index.html"),
                        "text/html; charset=utf-8");
    assert_string_equal(admin_content_type("/a.JS"),
                        "text/javascript; charset=utf-8");
    assert_string_equal(admin_content_type("/a.min.css"),
                        "text/css; charset=utf-8");
    assert_string_equal(admin_content_type("/a.map"), "application/json");
    assert_string_equal(admin_content_type("/a.svg"), "image/svg+xml");
    assert_string_equal(admin_content_type("/a.png"), "image/png");
    assert_string_equal(admin_content_type("/a.d/noext"),
                        "application/octet-stream");
}

/* A config with backends A, B, C and stats with some traffic. */
struct fixture {
    struct config cfg;
    struct stats *st;
    struct balancer *bal;
    struct upstream *up;
    struct backendset set;
    struct admin_sources src;
};

static void fixture_init(struct fixture *f, bool with_balancer)
{
    config_defaults(&f->cfg);
    strcpy(f->cfg.mode, "adaptive_ewma");
    f->cfg.persistent = true;
    f->cfg.nbackends = 3;
    const char *ids[] = {"A", "B", "C\"q"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(f->cfg.backends[i].id, sizeof(f->cfg.backends[i].id), "%s",
                 ids[i]);
        strcpy(f->cfg.backends[i].host, i == 2 ? "::1" : "127.0.0.1");
        snprintf(f->cfg.backends[i].port, sizeof(f->cfg.backends[i].port),
                 "%zu", 8081 + i);
        f->cfg.backends[i].weight = (unsigned)i + 1;
    }
    f->st = stats_create(3, T0);
    assert_non_null(f->st);
    /* the set always has a balancer (its weights are the ones shown);
     * with_balancer also hands it to the admin directly */
    unsigned w[3] = {1, 2, 3};
    f->bal = balancer_create("adaptive_ewma", NULL, 3, w);
    assert_non_null(f->bal);
    /* ids and addresses come from the upstream table (no loop needed to
     * build one: it opens nothing) */
    char err[256];
    f->up = upstream_create(NULL, &f->cfg, err, sizeof(err));
    assert_non_null(f->up);
    memset(&f->set, 0, sizeof(f->set));
    f->set.name = "default";
    f->set.up = f->up;
    f->set.bal = f->bal;
    f->set.stats = f->st;
    memset(&f->src, 0, sizeof(f->src));
    f->src.backends = &f->set;
    f->src.config = &f->cfg;
    f->src.stats = f->st;
    f->src.balancer = with_balancer ? f->bal : NULL;
    f->src.pool_idle = fake_pool_idle;
    /* 20 s of traffic: backend i gets (i+1)*10 requests per second with
     * latency (i+1) ms; B fails 1 in 10 with a 503; plus 2 requests per
     * second answered by lbproxy itself (400). */
    for (uint64_t s = 1; s <= 20; s++) {
        for (int b = 0; b < 3; b++)
            for (int k = 0; k < (b + 1) * 10; k++) {
                struct record r;
                memset(&r, 0, sizeof(r));
                r.backend = b;
                r.status = (b == 1 && k % 10 == 0) ? 503 : 200;
                r.upstream_us = (b + 1) * 1000;
                r.total_us = r.upstream_us + 50;
                r.req_bytes = 100;
                r.resp_bytes = 200;
                stats_record(f->st, &r, T0 + s * SEC + (uint64_t)k);
            }
        for (int k = 0; k < 2; k++) {
            struct record r;
            memset(&r, 0, sizeof(r));
            r.backend = -1;
            r.status = 400;
            r.error = RECORD_BAD_REQUEST;
            r.upstream_us = -1;
            r.total_us = 30;
            r.req_bytes = 10;
            r.resp_bytes = 20;
            stats_record(f->st, &r, T0 + s * SEC + 5);
        }
        for (size_t b = 0; b < 3; b++)
            stats_set_score(f->st, b, (double)b + 0.5, T0 + s * SEC + 9);
    }
}

static void fixture_free(struct fixture *f)
{
    stats_destroy(f->st);
    balancer_destroy(f->bal);
    upstream_destroy(f->up);
}

/* Runs a Python snippet with the document on stdin; 0 if it exits 0, -2
 * when Python is not there. */
static int run_checker(const char *argv0, const char *code, const char *doc,
                       size_t len)
{
    if (access(argv0, X_OK) != 0)
        return -2;
    char tmpl[] = "/tmp/test_admin_render_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, doc, len), (ssize_t)len);
    close(fd);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "%s %s < %s", argv0, code, tmpl);
    int rc = system(cmd);
    unlink(tmpl);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const char *json_check =
    "-c 'import json, sys\n"
    "d = json.load(sys.stdin)\n"
    "for k in (\"version\", \"mode\", \"persistent\", \"time\", \"uptime_s\",\n"
    "          \"window_s\", \"total\", \"backends\", \"history\"):\n"
    "    assert k in d, k\n"
    "assert d[\"mode\"] == \"adaptive_ewma\" and d[\"persistent\"] is True\n"
    "assert d[\"window_s\"] == 10\n"
    "t = d[\"total\"]\n"
    "assert t[\"requests\"] == 20 * 62, t\n"
    "assert t[\"errors\"] == 20 * 4, t\n"
    "assert abs(t[\"rps\"] - 62) < 1e-6, t\n"
    "assert set(t[\"latency_ms\"]) == {\"mean\", \"p50\", \"p90\", \"p99\", "
    "\"p999\"}\n"
    "bs = d[\"backends\"]\n"
    "assert [b[\"id\"] for b in bs] == [\"A\", \"B\", \"C\\\"q\"], bs\n"
    "assert bs[2][\"address\"] == \"[::1]:8083\"\n"
    "assert [b[\"weight\"] for b in bs] == [1, 2, 3]\n"
    "assert [b[\"pool_idle\"] for b in bs] == [10, 11, 12]\n"
    "assert [b[\"requests\"] for b in bs] == [200, 400, 600]\n"
    "assert [b[\"rps\"] for b in bs] == [10, 20, 30]\n"
    "assert bs[1][\"errors\"][\"total\"] == 40 and "
    "bs[1][\"errors\"][\"http_5xx\"] == 40\n"
    "for k in (\"connect\", \"timeout\", \"reset\", \"bad_response\"):\n"
    "    assert bs[0][\"errors\"][k] == 0\n"
    "for i, b in enumerate(bs):\n"
    "    assert b[\"index\"] == i and b[\"health\"] == \"up\" and "
    "b[\"reason\"] == \"\"\n"
    "    assert abs(b[\"latency_ms\"][\"p50\"] - (i + 1)) < 0.02 * (i + 1), b\n"
    "    assert b[\"last_second\"][\"requests\"] == (i + 1) * 10\n"
    "    assert abs(b[\"last_second\"][\"p99_ms\"] - (i + 1)) < 0.02 * (i + "
    "1)\n"
    "    assert b[\"bytes_in\"] == b[\"requests\"] * 100\n"
    "h = d[\"history\"]\n"
    "assert len(h[\"t\"]) == 60 and h[\"t\"] == sorted(h[\"t\"])\n"
    "assert h[\"t\"][-1] == int(d[\"time\"]) - 1\n"
    "for f in (\"requests\", \"errors\", \"p50_ms\", \"p99_ms\", \"score\"):\n"
    "    assert list(h[f]) == [\"A\", \"B\", \"C\\\"q\"], f\n"
    "    for v in h[f].values():\n"
    "        assert len(v) == 60, f\n"
    "assert h[\"requests\"][\"C\\\"q\"][-20:] == [30] * 20\n"
    "assert h[\"requests\"][\"A\"][:40] == [0] * 40\n"
    "assert h[\"p50_ms\"][\"A\"][0] is None and h[\"p50_ms\"][\"A\"][-1] > 0\n"
    "assert h[\"score\"][\"B\"][-1] == 1.5 and h[\"score\"][\"B\"][0] is None\n"
    "assert h[\"errors\"][\"B\"][-1] == 2\n"
    "'";

static void test_stats_json(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, false);
    struct admin_buf b = {0};
    /* 1764079200.5 wall, monotonic 21.5 s after T0. */
    admin_render_stats(&b, &f.src, T0 + 21 * SEC + 500000, 1764079200.5, 10);
    assert_false(b.oom);
    assert_non_null(memmem(b.p, b.len, "\"version\":\"0.1.0\"", 17));
    assert_null(memchr(b.p, '\n', b.len)); /* one line, for SSE */
    int rc = run_checker("/usr/bin/python3", json_check, b.p, b.len);
    if (rc == -2)
        skip();
    if (rc != 0)
        fail_msg("JSON check failed (%d): %.*s", rc, (int)b.len, b.p);
    admin_buf_free(&b);
    fixture_free(&f);
}

/* The last history label of a /api/stats body. */
static long long last_history_label(const struct admin_buf *b)
{
    const char *p = memmem(b->p, b->len, "\"t\":[", 5);
    assert_non_null(p);
    const char *end = memchr(p, ']', b->len - (size_t)(p - b->p));
    assert_non_null(end);
    const char *q = end;
    while (q > p && q[-1] != ',' && q[-1] != '[')
        q--;
    return strtoll(q, NULL, 10);
}

static void test_history_labels_follow_wall_seconds(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, false);
    struct admin_buf b = {0};
    /* The last complete slot covers monotonic [20 s, 21 s) after T0.  With
     * the monotonic clock at .9 and the wall clock at .1, that is wall
     * [1764079198.2, 1764079199.2): mostly the second 1764079198. */
    admin_render_stats(&b, &f.src, T0 + 21 * SEC + 900000, 1764079200.1, 10);
    assert_int_equal(last_history_label(&b), 1764079198LL);
    /* The other way round (.1 and .9): wall [1764079199.8, 1764079200.8). */
    b.len = 0;
    admin_render_stats(&b, &f.src, T0 + 21 * SEC + 100000, 1764079200.9, 10);
    assert_int_equal(last_history_label(&b), 1764079200LL);
    admin_buf_free(&b);
    fixture_free(&f);
}

static void test_stats_json_with_balancer(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, true);
    /* Eject B: consecutive connect failures. */
    uint64_t now = T0 + 21 * SEC;
    for (int i = 0; i < 20; i++) {
        unsigned inflight;
        int idx = balancer_pick(f.bal, ~(uint64_t)2, now, &inflight);
        assert_int_equal(idx, 1);
        balancer_observe(f.bal, 1, 1000, BALANCER_CONNECT_ERR, inflight, now);
    }
    unsigned inflight;
    assert_int_equal(balancer_pick(f.bal, ~(uint64_t)1, now, &inflight), 0);
    struct admin_buf b = {0};
    admin_render_stats(&b, &f.src, now, 1764079200.0, 10);
    const char *py =
        "-c 'import json, sys\n"
        "d = json.load(sys.stdin)\n"
        "bs = d[\"backends\"]\n"
        "assert d[\"mode\"] == \"adaptive_ewma\", d[\"mode\"]\n"
        "assert bs[1][\"health\"] in (\"ejected\", \"probing\"), bs[1]\n"
        "assert bs[1][\"reason\"] != \"\"\n"
        "assert bs[0][\"in_flight\"] == 1 and d[\"total\"][\"in_flight\"] == "
        "1\n"
        "assert bs[0][\"health\"] == \"up\"\n"
        "'";
    int rc = run_checker("/usr/bin/python3", py, b.p, b.len);
    if (rc == -2)
        skip();
    if (rc != 0)
        fail_msg("JSON check failed (%d): %.*s", rc, (int)b.len, b.p);
    /* Prometheus: backend_up follows health. */
    b.len = 0;
    admin_render_metrics(&b, &f.src, now);
    admin_buf_add(&b, "", 1);
    assert_non_null(strstr(b.p, "lbproxy_backend_up{backend=\"B\"} 0\n"));
    assert_non_null(strstr(b.p, "lbproxy_backend_up{backend=\"A\"} 1\n"));
    assert_non_null(strstr(b.p, "lbproxy_in_flight{backend=\"A\"} 1\n"));
    admin_buf_free(&b);
    fixture_free(&f);
}

static void test_metrics(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, false);
    struct admin_buf b = {0};
    admin_render_metrics(&b, &f.src, T0 + 21 * SEC);
    admin_buf_add(&b, "", 1);
    const char *want[] = {
        "# TYPE lbproxy_requests_total counter\n",
        "lbproxy_requests_total{backend=\"A\"} 200\n",
        "lbproxy_requests_total{backend=\"C\\\"q\"} 600\n",
        "lbproxy_requests_total{backend=\"none\"} 40\n",
        "lbproxy_errors_total{backend=\"B\",kind=\"http_5xx\"} 40\n",
        "lbproxy_errors_total{backend=\"none\",kind=\"bad_request\"} 40\n",
        "lbproxy_errors_total{backend=\"A\",kind=\"connect\"} 0\n",
        "lbproxy_bytes_total{backend=\"A\",direction=\"in\"} 20000\n",
        "lbproxy_bytes_total{backend=\"A\",direction=\"out\"} 40000\n",
        "lbproxy_pool_idle{backend=\"B\"} 11\n",
        "lbproxy_backend_up{backend=\"A\"} 1\n",
        "# TYPE lbproxy_request_duration_seconds histogram\n",
        /* A: 1 ms each, so not <= 0.5 ms, all <= 1 ms */
        "lbproxy_request_duration_seconds_bucket{backend=\"A\",le=\"0.0005\"} "
        "0\n",
        "lbproxy_request_duration_seconds_bucket{backend=\"A\",le=\"0.001\"} "
        "200\n",
        "lbproxy_request_duration_seconds_bucket{backend=\"A\",le=\"+Inf\"} "
        "200\n",
        "lbproxy_request_duration_seconds_sum{backend=\"A\"} 0.2\n",
        "lbproxy_request_duration_seconds_count{backend=\"A\"} 200\n",
        "lbproxy_request_duration_seconds_bucket{backend=\"none\",le=\"0."
        "0005\"} 40\n",
        "lbproxy_info{version=\"0.1.0\",mode=\"adaptive_ewma\","
        "conn_model=\"persistent\"} 1\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(b.p, want[i]))
            fail_msg("missing %s in:\n%s", want[i], b.p);
    /* Every sample line is "name{labels} value" or "name value". */
    for (char *line = b.p; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        if (line[0] != '#') {
            char *sp = memrchr(line, ' ', (size_t)(nl - line));
            assert_non_null(sp);
            assert_true(sp[1] != '\n');
        }
        line = nl + 1;
    }
    int rc = run_checker("/usr/bin/promtool", "check metrics", b.p, b.len - 1);
    if (rc != -2 && rc != 0)
        fail_msg("promtool check metrics failed (%d)", rc);
    admin_buf_free(&b);
    fixture_free(&f);
}

static void test_logs_listing(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_admin_logs_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *files[] = {"b_run.csv", "a_run.csv", "c_run.csv", ".hidden.csv",
                           "notes.txt"};
    /* a_run.csv was written last; b and c at the same time */
    const time_t mtimes[] = {1000, 2000, 1000, 3000, 3000};
    char path[512];
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("timestamp\n", fp);
        fclose(fp);
        struct timespec ts[2] = {{mtimes[i], 0}, {mtimes[i], 0}};
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    }
    snprintf(path, sizeof(path), "%s/dir.csv", dir);
    assert_int_equal(mkdir(path, 0755), 0);

    struct admin_buf b = {0};
    assert_int_equal(admin_render_logs(&b, dir, true), 0);
    admin_buf_add(&b, "", 1);
    const char *a = strstr(b.p, "\"name\":\"a_run.csv\",\"size\":10,");
    const char *bb = strstr(b.p, "\"name\":\"b_run.csv\"");
    const char *cc = strstr(b.p, "\"name\":\"c_run.csv\"");
    assert_non_null(a);
    assert_non_null(bb);
    assert_non_null(cc);
    /* newest first, then the greater name */
    assert_true(a < cc);
    assert_true(cc < bb);
    assert_null(strstr(b.p, "hidden"));
    assert_null(strstr(b.p, "notes"));
    assert_null(strstr(b.p, "dir.csv"));
    b.len = 0;
    assert_int_equal(admin_render_logs(&b, dir, false), 0);
    admin_buf_add(&b, "", 1);
    assert_non_null(strstr(b.p, "<a href=\"/logs/a_run.csv\">a_run.csv</a>"));
    admin_buf_free(&b);
    assert_int_equal(admin_render_logs(&b, "/nonexistent-dir-x", true), -1);
    admin_buf_free(&b);

    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/dir.csv", dir);
    rmdir(path);
    rmdir(dir);
}

static void test_buf(void **state)
{
    (void)state;
    struct admin_buf b = {0};
    for (int i = 0; i < 1000; i++)
        admin_buf_printf(&b, "%d,", i);
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    admin_buf_printf(&b, "%s", big); /* longer than the printf scratch */
    assert_int_equal(b.len, 3890 + 599);
    admin_buf_consume(&b, 2);
    assert_memory_equal(b.p, "1,2,", 4);
    admin_buf_consume(&b, 100000);
    assert_int_equal(b.len, 0);
    admin_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize_path),
        cmocka_unit_test(test_query_and_names),
        cmocka_unit_test(test_stats_json),
        cmocka_unit_test(test_history_labels_follow_wall_seconds),
        cmocka_unit_test(test_stats_json_with_balancer),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_logs_listing),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
