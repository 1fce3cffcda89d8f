/*
 * obs_microbench: cost of the per-request observability work (stats_record,
 * CSV row formatting and buffered writing) and of rendering /api/stats and
 * /metrics.  A measurement, never a test: `make obs-bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_render.h"
#include "csvlog.h"
#include "record.h"
#include "stats.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *csv_path = argc > 1 ? argv[1] : "/dev/shm/obs_microbench.csv";
    static char row[CSVLOG_ROW_MAX];
    struct record r;
    memset(&r, 0, sizeof(r));
    r.backend = 1;
    r.status = 200;
    r.total_us = 1300;
    r.client_addr = "127.0.0.1:50000";
    r.method = "GET";
    r.path = "/api/items?id=42";
    r.path_len = strlen(r.path);
    r.backend_id = "B";
    r.backend_addr = "127.0.0.1:8082";
    r.connect_us = -1;
    r.ttfb_us = 900;
    r.wall_us = 1795615381123456ull;

    struct stats *s = stats_create(3, 1000000000ull);
    long n = 10000000;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        r.upstream_us = 100 + (i * 7919) % 50000;
        stats_record(s, &r, 1000000000ull + (uint64_t)i * 100);
    }
    double t1 = now_s();
    printf("stats_record: %.1f ns/request\n", (t1 - t0) / n * 1e9);

    n = 5000000;
    size_t bytes = 0;
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        r.wall_us += 37;
        bytes += csvlog_format(row, sizeof(row), &r, "adaptive_ewma", true);
    }
    t1 = now_s();
    printf("csvlog_format: %.1f ns/row (%zu bytes/row)\n", (t1 - t0) / n * 1e9,
           bytes / (size_t)n);

    struct csvlog *l = csvlog_open(NULL, csv_path, "adaptive_ewma", true, 1000);
    if (!l) {
        perror(csv_path);
        return 1;
    }
    n = 3000000;
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        r.wall_us += 37;
        csvlog_write(l, &r);
    }
    csvlog_close(l);
    t1 = now_s();
    printf("csvlog_write to %s: %.1f ns/row\n", csv_path, (t1 - t0) / n * 1e9);
    remove(csv_path);

    struct admin_sources src = {.stats = s};
    struct admin_buf b = {0};
    uint64_t now = 1000000000ull + 1000000000ull;
    t0 = now_s();
    for (int i = 0; i < 1000; i++) {
        b.len = 0;
        admin_render_stats(&b, &src, now, 1.7e9, ADMIN_WINDOW_S);
    }
    t1 = now_s();
    printf("render /api/stats (3 backends): %.1f us, %zu bytes\n",
           (t1 - t0) * 1e3, b.len);
    t0 = now_s();
    for (int i = 0; i < 1000; i++) {
        b.len = 0;
        admin_render_metrics(&b, &src, now);
    }
    t1 = now_s();
    printf("render /metrics (3 backends): %.1f us, %zu bytes\n",
           (t1 - t0) * 1e3, b.len);
    admin_buf_free(&b);
    stats_destroy(s);
    return 0;
}
