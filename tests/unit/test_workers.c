/*
 * Unit tests of what --workers N is built on: the shared region's
 * allocator (first fit, split, merge, full, zeroed memory, plain calloc
 * without a region), its robust locks (a process that dies holding one
 * leaves it takeable), a balancer and stats in the region used by two
 * processes (in-flight counted once for both; a dead worker's row
 * forgotten; stats counted by both), CPU lists, the worker rows' sums and
 * the per-worker log names.
 *
 * The region is mapped once for the whole binary (shm_init is once per
 * process), after the tests that need none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "balancer.h"
#include "cpulist.h"
#include "record.h"
#include "shm.h"
#include "stats.h"
#include "workers.h"

static void test_without_a_region(void **st)
{
    (void)st;
    assert_false(shm_active());
    assert_null(shm_lock_new());
    shm_lock(NULL); /* no-ops */
    shm_unlock(NULL);
    int *p = shm_calloc(4, sizeof(int));
    assert_non_null(p);
    assert_int_equal(p[3], 0);
    shm_free(p);
    size_t used, size;
    shm_usage(&used, &size);
    assert_int_equal(size, 0);
}

static void test_cpulist(void **st)
{
    (void)st;
    int c[CPULIST_MAX];
    assert_int_equal(cpulist_parse("", c, CPULIST_MAX), 0);
    assert_int_equal(cpulist_parse("0,1", c, CPULIST_MAX), 2);
    assert_int_equal(c[0], 0);
    assert_int_equal(c[1], 1);
    assert_int_equal(cpulist_parse("3, 0-2 ,7", c, CPULIST_MAX), 5);
    assert_int_equal(c[0], 3);
    assert_int_equal(c[3], 2);
    assert_int_equal(c[4], 7);
    assert_int_equal(cpulist_parse("1023", c, CPULIST_MAX), 1);
    const char *bad[] = {"1024", "a",     "1,",  ",1", "2-1", "1-",
                         "1,1",  "0-3,2", "1 2", "-1", "0x1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cpulist_parse(bad[i], c, CPULIST_MAX), -1);
    assert_int_equal(cpulist_parse("0-64", c, CPULIST_MAX), -1); /* 65 */
    assert_int_equal(cpulist_parse("0-3", c, 3), -1);
}

static void test_rows_sum_and_depart(void **st)
{
    (void)st;
    struct worker_row rows[3];
    memset(rows, 0, sizeof(rows));
    rows[0].c.retries = 2;
    rows[0].c.tls.handshakes = 5;
    rows[1].c.retries = 3;
    rows[1].c.queued_now = 4;
    rows[1].c.tunnels_open = 1;
    rows[1].c.tunnels_total = 6;
    struct worker_counters sum;
    workers_sum(rows, 3, &sum);
    assert_int_equal(sum.retries, 5);
    assert_int_equal(sum.tls.handshakes, 5);
    assert_int_equal(sum.queued_now, 4);
    /* worker 1 dies: its totals stay counted, its gauges go */
    workers_depart(&rows[1], &rows[2]);
    assert_int_equal(rows[1].c.retries, 0);
    workers_sum(rows, 3, &sum);
    assert_int_equal(sum.retries, 5);
    assert_int_equal(sum.tunnels_total, 6);
    assert_int_equal(sum.queued_now, 0);
    assert_int_equal(sum.tunnels_open, 0);
}

static void test_log_names(void **st)
{
    (void)st;
    char p[128];
    snprintf(p, sizeof(p), "logs/a.b/run.csv");
    workers_log_path(p, sizeof(p), 1);
    assert_string_equal(p, "logs/a.b/run.w1.csv");
    snprintf(p, sizeof(p), "logs/a.b/run");
    workers_log_path(p, sizeof(p), 0);
    assert_string_equal(p, "logs/a.b/run.w0");
    p[0] = '\0';
    workers_log_path(p, sizeof(p), 3); /* off stays off */
    assert_string_equal(p, "");
}

/* ---- with the region ---------------------------------------------------- */

static int map_region(void **st)
{
    (void)st;
    return shm_init(8u << 20);
}

static void test_allocator(void **st)
{
    (void)st;
    assert_true(shm_active());
    size_t used0, size;
    shm_usage(&used0, &size);
    assert_true(size > (7u << 20));
    char *a = shm_calloc(1, 100), *b = shm_calloc(10, 100),
         *c = shm_calloc(1, 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true((uintptr_t)a % 64 == 0 && (uintptr_t)b % 64 == 0);
    assert_true(a + 100 <= b || b + 1000 <= a);
    memset(b, 0xab, 1000);
    shm_free(b);
    char *b2 = shm_calloc(1, 900); /* first fit: b's block, zeroed */
    assert_ptr_equal(b2, b);
    for (int i = 0; i < 900; i++)
        assert_int_equal(b2[i], 0);
    shm_free(a);
    shm_free(b2);
    shm_free(c);
    size_t used;
    shm_usage(&used, &size);
    assert_int_equal(used, used0);
    /* merged again: one block nearly the whole region fits, then none */
    char *big = shm_calloc(1, size - 4096);
    assert_non_null(big);
    assert_null(shm_calloc(1, 8192));
    shm_free(big);
    assert_null(shm_calloc(1, size * 2));
    assert_null(shm_calloc(SIZE_MAX / 2, 4)); /* overflow */
}

static void test_lock_left_by_a_dead_process(void **st)
{
    (void)st;
    struct shm_lock *l = shm_lock_new();
    assert_non_null(l);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shm_lock(l);
        _exit(0); /* dies holding it */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    shm_lock(l); /* EOWNERDEAD: taken over, not a hang */
    shm_unlock(l);
    shm_lock(l);
    shm_unlock(l);
    shm_lock_free(l);
}

static void test_balancer_shared_by_two_workers(void **st)
{
    (void)st;
    struct balancer_params p;
    balancer_params_default(&p);
    struct balancer *b = balancer_create("least-conn", &p, 2, NULL);
    assert_non_null(b);
    unsigned was;
    shm_worker = 1; /* a child picks as worker 1, twice */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int x = balancer_pick(b, 0, 1000, &was);
        int y = balancer_pick(b, 0, 1000, &was);
        _exit(x >= 0 && y >= 0 && x != y ? 0 : 1); /* least-conn spreads */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    shm_worker = 0; /* the parent, worker 0, sees both in flight */
    assert_int_equal(balancer_backend(b, 0)->in_flight, 1);
    assert_int_equal(balancer_backend(b, 1)->in_flight, 1);
    assert_int_equal(balancer_worker_in_flight(b, 1, 0), 1);
    int i = balancer_pick(b, 0, 2000, &was);
    assert_true(i == 0 || i == 1);
    assert_int_equal(was, 1); /* the global count */
    assert_int_equal(balancer_worker_in_flight(b, 0, (size_t)i), 1);
    /* worker 1 died: its two requests come off, worker 0's stays */
    balancer_forget_worker(b, 1);
    assert_int_equal(balancer_backend(b, (size_t)i)->in_flight, 1);
    assert_int_equal(balancer_backend(b, (size_t)(1 - i))->in_flight, 0);
    balancer_observe(b, (size_t)i, 1000, BALANCER_OK, 1, 3000);
    assert_int_equal(balancer_backend(b, (size_t)i)->in_flight, 0);
    assert_int_equal(balancer_worker_in_flight(b, 0, (size_t)i), 0);
    balancer_destroy(b);
}

static void test_stats_counted_by_two_processes(void **st)
{
    (void)st;
    struct stats *s = stats_create(1, 0);
    assert_non_null(s);
    struct record r;
    memset(&r, 0, sizeof(r));
    r.backend = 0;
    r.status = 200;
    r.total_us = r.upstream_us = 1000;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int k = 0; k < 5000; k++)
            stats_record(s, &r, 1000000);
        _exit(0);
    }
    for (int k = 0; k < 5000; k++)
        stats_record(s, &r, 1000000);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    struct stats_counters c;
    stats_counters(s, 0, &c);
    assert_int_equal(c.requests, 10000); /* none lost to a race */
    stats_counters(s, STATS_TOTAL, &c);
    assert_int_equal(c.requests, 10000);
    int from[2] = {-1, 0};
    struct stats *k = stats_clone(s, 2, from);
    assert_non_null(k);
    stats_counters(k, 1, &c);
    assert_int_equal(c.requests, 10000);
    stats_counters(k, 0, &c);
    assert_int_equal(c.requests, 0);
    stats_destroy(k);
    stats_destroy(s);
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_without_a_region),
        cmocka_unit_test(test_cpulist),
        cmocka_unit_test(test_rows_sum_and_depart),
        cmocka_unit_test(test_log_names),
    };
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_allocator),
        cmocka_unit_test(test_lock_left_by_a_dead_process),
        cmocka_unit_test(test_balancer_shared_by_two_workers),
        cmocka_unit_test(test_stats_counted_by_two_processes),
    };
    int rc = cmocka_run_group_tests(plain, NULL, NULL);
    return rc | cmocka_run_group_tests(shared, map_region, NULL);
}
