/*
 * test_csvlog: exact row format, quoting round-trip through libcsv's parser,
 * header only on new files, rotation, timer flush, and dropping (not
 * stalling) when the disk is full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/csvlog.c"

#define MAXF 32
#define MAXR 64

/* Parsed CSV: rows of fields (copies). */
struct parsed {
    char *f[MAXR][MAXF];
    size_t nf[MAXR];
    size_t nrows;
    size_t cur;
};

static void cb_field(void *s, size_t len, void *data)
{
    struct parsed *p = data;
    assert_true(p->nrows < MAXR && p->cur < MAXF);
    char *c = malloc(len + 1);
    memcpy(c, s, len);
    c[len] = 0;
    p->f[p->nrows][p->cur++] = c;
}

static void cb_row(int c, void *data)
{
    (void)c;
    struct parsed *p = data;
    p->nf[p->nrows++] = p->cur;
    p->cur = 0;
}

static void parse_file(const char *path, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct csv_parser cp;
    assert_int_equal(csv_init(&cp, CSV_STRICT | CSV_STRICT_FINI), 0);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        assert_int_equal(csv_parse(&cp, buf, n, cb_field, cb_row, p), n);
    assert_int_equal(csv_fini(&cp, cb_field, cb_row, p), 0);
    csv_free(&cp);
    fclose(f);
}

static void free_parsed(struct parsed *p)
{
    for (size_t r = 0; r < p->nrows; r++)
        for (size_t i = 0; i < p->nf[r]; i++)
            free(p->f[r][i]);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(buf, len, "%s/test_csvlog_%ld_%s", dir, (long)getpid(), name);
    unlink(buf);
}

static struct record base_record(void)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.wall_us = 1795615381123456ull; /* 2026-11-25T14:03:01.123456Z */
    r.client_addr = "127.0.0.1:54321";
    r.method = "GET";
    r.path = "/api/x?y=1";
    r.path_len = strlen(r.path);
    r.backend = 1;
    r.backend_id = "B";
    r.backend_addr = "127.0.0.1:8082";
    r.status = 200;
    r.req_bytes = 78;
    r.resp_bytes = 1234;
    r.connect_us = 250;
    r.ttfb_us = 1500;
    r.upstream_us = 2001;
    r.total_us = 2100;
    r.reused = false;
    r.retries = 0;
    r.error = RECORD_OK;
    return r;
}

static void test_header_and_exact_row(void **state)
{
    (void)state;
    assert_string_equal(csvlog_header,
                        "timestamp,client,method,path,backend_id,backend_addr,"
                        "status,req_bytes,resp_bytes,connect_ms,ttfb_ms,"
                        "upstream_ms,total_ms,reused,mode,conn_model,retries,"
                        "error,hedge,request_id,tls_version,tls_cipher,"
                        "tls_resumed,tls_handshake_ms,pool\n");
    char buf[CSVLOG_ROW_MAX];
    struct record r = base_record();
    size_t n = csvlog_format(buf, sizeof(buf), &r, "adaptive_ewma", true);
    buf[n] = 0;
    assert_string_equal(buf, "2026-11-25T14:03:01.123456Z,127.0.0.1:54321,GET,"
                             "/api/x?y=1,B,127.0.0.1:8082,200,78,1234,0.250,"
                             "1.500,2.001,2.100,0,adaptive_ewma,persistent,0,"
                             ",none,,,,,,\n");
    /* The request id, the last column. */
    r.request_id = "0b7e5c3a-9f1d-4e2b-8a6c-3d5e7f9a1b2c";
    n = csvlog_format(buf, sizeof(buf), &r, "adaptive_ewma", true);
    buf[n] = 0;
    assert_non_null(strstr(buf, ",persistent,0,,none,0b7e5c3a-9f1d-4e2b-8a6c-"
                                "3d5e7f9a1b2c,,,,,\n"));
    r.request_id = NULL;
    /* No backend, reused, error, times not applicable. */
    r.backend = -1;
    r.backend_id = NULL;
    r.backend_addr = NULL;
    r.status = 502;
    r.connect_us = -1;
    r.ttfb_us = -1;
    r.upstream_us = -1;
    r.total_us = 1000000007;
    r.reused = true;
    r.retries = 2;
    r.error = RECORD_CONNECT;
    r.hedge = RECORD_HEDGE_WON;
    r.wall_us = 1795615381000001ull;
    n = csvlog_format(buf, sizeof(buf), &r, "round_robin", false);
    buf[n] = 0;
    assert_string_equal(buf,
                        "2026-11-25T14:03:01.000001Z,127.0.0.1:54321,GET,"
                        "/api/x?y=1,,,502,78,1234,,,,1000000.007,1,"
                        "round_robin,non_persistent,2,connect,won,,,,,,\n");
    r.hedge = RECORD_HEDGE_LOST;
    n = csvlog_format(buf, sizeof(buf), &r, "round_robin", false);
    buf[n] = 0;
    assert_non_null(strstr(buf, ",connect,lost,,,,,,\n"));
    /* A request over TLS: version, cipher, resumed, handshake time. */
    r.tls_version = "TLSv1.3";
    r.tls_cipher = "TLS_AES_128_GCM_SHA256";
    r.tls_resumed = true;
    r.tls_handshake_us = 1234;
    n = csvlog_format(buf, sizeof(buf), &r, "round_robin", false);
    buf[n] = 0;
    assert_string_equal(buf,
                        "2026-11-25T14:03:01.000001Z,127.0.0.1:54321,GET,"
                        "/api/x?y=1,,,502,78,1234,,,,1000000.007,1,"
                        "round_robin,non_persistent,2,connect,lost,,TLSv1.3,"
                        "TLS_AES_128_GCM_SHA256,1,1.234,\n");
    /* The pool the request was routed to, the last column. */
    r.pool = "api";
    n = csvlog_format(buf, sizeof(buf), &r, "round_robin", false);
    buf[n] = 0;
    assert_non_null(strstr(buf, ",1,1.234,api\n"));
    r.pool = NULL;
    /* Too small a buffer: 0, never a partial row. */
    assert_int_equal(csvlog_format(buf, 20, &r, "x", false), 0);
}

static void test_error_names(void **state)
{
    (void)state;
    const char *want[] = {"",
                          "bad_request",
                          "connect",
                          "timeout",
                          "upstream_reset",
                          "bad_response",
                          "client_closed",
                          "client_timeout",
                          "shutdown"};
    for (int e = RECORD_OK; e <= RECORD_SHUTDOWN; e++)
        assert_string_equal(record_error_str((enum record_error)e), want[e]);
}

static void test_quoting_round_trip(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof(path), "quote.csv");
    const char *paths[] = {
        "/plain",
        "/a,b",
        "/say \"hi\"",
        "/line\nbreak",
        "/cr\r\nlf",
        "\"\"",
        " leading and trailing ",
        ",",
        "/mixed,\"quote\"\n,end\"",
        "",
    };
    size_t np = sizeof(paths) / sizeof(paths[0]);
    struct csvlog *l = csvlog_open(NULL, path, "weird,mode", true, 100);
    assert_non_null(l);
    for (size_t i = 0; i < np; i++) {
        struct record r = base_record();
        r.path = paths[i];
        r.path_len = strlen(paths[i]);
        r.method = i % 2 ? "GE\"T" : "GET";
        r.client_addr = "[::1]:5,5";
        csvlog_write(l, &r);
    }
    csvlog_close(l);

    struct parsed p;
    parse_file(path, &p);
    assert_int_equal(p.nrows, np + 1);
    assert_int_equal(p.nf[0], 25);
    assert_string_equal(p.f[0][3], "path");
    for (size_t i = 0; i < np; i++) {
        assert_int_equal(p.nf[i + 1], 25);
        assert_string_equal(p.f[i + 1][3], paths[i]);
        assert_string_equal(p.f[i + 1][2], i % 2 ? "GE\"T" : "GET");
        assert_string_equal(p.f[i + 1][1], "[::1]:5,5");
        assert_string_equal(p.f[i + 1][14], "weird,mode");
        assert_string_equal(p.f[i + 1][15], "persistent");
    }
    free_parsed(&p);
    unlink(path);
}

static void test_long_path_is_cut(void **state)
{
    (void)state;
    static char longp[3 * CSVLOG_PATH_MAX];
    memset(longp, '"', sizeof(longp)); /* worst case: every byte doubles */
    struct record r = base_record();
    r.path = longp;
    r.path_len = sizeof(longp);
    static char buf[CSVLOG_ROW_MAX];
    size_t n = csvlog_format(buf, sizeof(buf), &r, "m", true);
    assert_true(n > 2 * CSVLOG_PATH_MAX);
    assert_true(n <= CSVLOG_ROW_MAX);
}

static void test_header_once_and_reopen(void **state)
{
    (void)state;
    char path[512], moved[512];
    tmp_path(path, sizeof(path), "rot.csv");
    tmp_path(moved, sizeof(moved), "rot.csv.1");
    struct record r = base_record();

    struct csvlog *l = csvlog_open(NULL, path, "m", true, 100);
    assert_non_null(l);
    /* The header is on disk at once, before any row. */
    assert_string_equal(read_all(path), csvlog_header);
    csvlog_write(l, &r);
    csvlog_close(l);
    /* Appending to a non-empty file adds no second header. */
    l = csvlog_open(NULL, path, "m", true, 100);
    csvlog_write(l, &r);
    /* Rotation: rename, reopen; buffered rows go to the old file. */
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(csvlog_reopen(l), 0);
    r.status = 404;
    csvlog_write(l, &r);
    csvlog_close(l);

    struct parsed p;
    parse_file(moved, &p);
    assert_int_equal(p.nrows, 3);
    assert_string_equal(p.f[0][0], "timestamp");
    assert_string_equal(p.f[1][6], "200");
    assert_string_equal(p.f[2][6], "200");
    free_parsed(&p);
    parse_file(path, &p);
    assert_int_equal(p.nrows, 2);
    assert_string_equal(p.f[0][0], "timestamp");
    assert_string_equal(p.f[1][6], "404");
    free_parsed(&p);

    /* A path that cannot be opened fails with errno. */
    errno = 0;
    assert_null(csvlog_open(NULL, "/nonexistent-dir/x.csv", "m", true, 10));
    assert_int_equal(errno, ENOENT);
    unlink(path);
    unlink(moved);
}

static void test_disk_full_drops(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof(path), "full.csv");
    struct csvlog *l = csvlog_open(NULL, path, "m", true, 100);
    assert_non_null(l);
    int full = open("/dev/full", O_WRONLY);
    if (full < 0)
        skip();
    dup2(full, l->fd); /* every write now fails with ENOSPC */
    close(full);
    struct record r = base_record();
    for (int i = 0; i < 5000; i++) /* several buffers' worth */
        csvlog_write(l, &r);
    assert_true(csvlog_dropped(l) > 0);
    assert_int_equal(csvlog_flush(l), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(csvlog_dropped(l), 5000);
    /* Back on a working file: rows are written again. */
    assert_int_equal(csvlog_reopen(l), 0);
    csvlog_write(l, &r);
    assert_int_equal(csvlog_flush(l), 0);
    csvlog_close(l);
    struct parsed p;
    parse_file(path, &p);
    assert_int_equal(p.nrows, 2);
    free_parsed(&p);
    unlink(path);
}

static void stop_loop(struct loop *loop, struct loop_timer *t)
{
    (void)t;
    loop_stop(loop);
}

static void test_timer_flush(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof(path), "timer.csv");
    struct loop *loop = loop_create();
    assert_non_null(loop);
    struct csvlog *l = csvlog_open(loop, path, "m", true, 20);
    assert_non_null(l);
    struct record r = base_record();
    csvlog_write(l, &r);
    /* Still buffered: only the header is on disk. */
    assert_string_equal(read_all(path), csvlog_header);
    /* The flush timer (20 ms) fires before the stop timer (200 ms). */
    struct loop_timer stop = {.fn = stop_loop};
    loop_timer_after(loop, &stop, 200000);
    assert_int_equal(loop_run(loop), 0);
    assert_true(strlen(read_all(path)) > sizeof(csvlog_header));
    assert_false(loop_timer_armed(&l->timer));
    csvlog_close(l);
    csvlog_close(NULL);
    loop_destroy(loop);
    unlink(path);
}

/* latest.csv is a relative link to the newest run's file, replaced as each
 * run starts; it refuses to point at itself. */
static void test_link_latest(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_csvlog_latest_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char run1[256], run2[256], link[256], target[256];
    snprintf(run1, sizeof(run1), "%s/m_persistent-20261201-223000.csv", dir);
    snprintf(run2, sizeof(run2), "%s/m_persistent-20261201-223105.csv", dir);
    snprintf(link, sizeof(link), "%s/latest.csv", dir);
    assert_int_equal(csvlog_link_latest(run1), 0);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "m_persistent-20261201-223000.csv");
    assert_int_equal(csvlog_link_latest(run2), 0);
    n = readlink(link, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "m_persistent-20261201-223105.csv");
    assert_int_equal(csvlog_link_latest(link), -1);
    assert_int_equal(errno, EINVAL);
    unlink(link);
    assert_int_equal(rmdir(dir), 0); /* no temporary name left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_exact_row),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_quoting_round_trip),
        cmocka_unit_test(test_long_path_is_cut),
        cmocka_unit_test(test_header_once_and_reopen),
        cmocka_unit_test(test_disk_full_drops),
        cmocka_unit_test(test_timer_flush),
        cmocka_unit_test(test_link_latest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
