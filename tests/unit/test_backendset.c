/*
 * Unit tests of backendset: in-place changes keep the upstream table, the
 * balancer and the stats in step (one slot index in all three), refuse bad
 * input without changing anything, reuse an idle slot with fresh stats,
 * show the right state text, and map finished requests to stats by id.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backendset.h"
#include "balancer.h"
#include "config.h"
#include "log.h"
#include "record.h"
#include "stats.h"
#include "upstream.h"

#define SEC 1000000u

struct fx {
    struct config cfg;
    struct backendset s;
};

/* A set of A (8081) and B (8082), round-robin; an upstream table needs no
 * loop until it opens connections. */
static void fx_init(struct fx *f)
{
    char err[256];
    config_defaults(&f->cfg);
    f->cfg.nbackends = 2;
    for (size_t i = 0; i < 2; i++) {
        snprintf(f->cfg.backends[i].id, sizeof(f->cfg.backends[i].id), "%c",
                 (char)('A' + i));
        strcpy(f->cfg.backends[i].host, "127.0.0.1");
        snprintf(f->cfg.backends[i].port, sizeof(f->cfg.backends[i].port),
                 "%zu", 8081 + i);
        f->cfg.backends[i].weight = 1;
    }
    memset(&f->s, 0, sizeof(f->s));
    f->s.name = "default";
    f->s.up = upstream_create(NULL, &f->cfg, err, sizeof(err));
    assert_non_null(f->s.up);
    f->s.bal = balancer_create("round-robin", NULL, 2, NULL);
    assert_non_null(f->s.bal);
    f->s.stats = stats_create(2, 0);
    assert_non_null(f->s.stats);
}

static void fx_free(struct fx *f)
{
    upstream_destroy(f->s.up);
    balancer_destroy(f->s.bal);
    stats_destroy(f->s.stats);
}

static void record_on(struct stats *st, int slot, uint64_t now)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.backend = slot;
    r.status = 200;
    r.upstream_us = 1000;
    r.total_us = 1100;
    stats_record(st, &r, now);
}

static uint64_t requests_of(struct stats *st, size_t slot)
{
    struct stats_counters c;
    stats_counters(st, slot, &c);
    return c.requests;
}

static void test_add_find_remove(void **st)
{
    (void)st;
    struct fx f;
    char err[256];
    fx_init(&f);
    assert_int_equal(backendset_find(&f.s, "B"), 1);
    assert_int_equal(backendset_find(&f.s, "Z"), -1);
    int c = backendset_add(&f.s, "C", "127.0.0.1:8084", NULL, 3, 0, err,
                           sizeof(err));
    assert_int_equal(c, 2);
    assert_string_equal(backendset_id(&f.s, 2), "C");
    assert_string_equal(backendset_addr(&f.s, 2), "127.0.0.1:8084");
    assert_int_equal(balancer_backend(f.s.bal, 2)->weight, 3);
    assert_int_equal(balancer_count(f.s.bal), 3);
    assert_int_equal(stats_count(f.s.stats), 3);
    assert_string_equal(backendset_state(&f.s, 2), "up");
    /* unix: backends too */
    assert_int_equal(backendset_add(&f.s, "U", "unix:/tmp/x.sock", NULL, 1, 0,
                                    err, sizeof(err)),
                     3);
    assert_string_equal(backendset_addr(&f.s, 3), "unix:/tmp/x.sock");
    /* remove: gone from lookups and picks, the slot keeps its index */
    assert_int_equal(backendset_remove(&f.s, "A"), 0);
    assert_int_equal(backendset_find(&f.s, "A"), -1);
    assert_false(backendset_live(&f.s, 0));
    assert_string_equal(backendset_state(&f.s, 0), "removed");
    assert_int_equal(backendset_remove(&f.s, "A"), -1);
    assert_int_equal(errno, ENOENT);
    for (int k = 0; k < 20; k++) {
        int i = balancer_pick(f.s.bal, 0, 0, NULL);
        assert_true(i == 1 || i == 2 || i == 3);
        balancer_cancel(f.s.bal, (size_t)i);
    }
    fx_free(&f);
}

static void test_bad_input_changes_nothing(void **st)
{
    (void)st;
    struct fx f;
    char err[256];
    fx_init(&f);
    static const struct {
        const char *id, *addr;
        unsigned w;
        int err;
    } bad[] = {
        {"B", "127.0.0.1:9000", 1, EEXIST},
        {"bad id", "127.0.0.1:9000", 1, EINVAL},
        {"", "127.0.0.1:9000", 1, EINVAL},
        {"D", "nowhere", 1, EINVAL},
        {"D", "127.0.0.1:0", 1, EINVAL},
        {"D", "127.0.0.1:9000,weight=2", 1, EINVAL},
        {"D", "127.0.0.1:9000", 10001, EINVAL},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        assert_int_equal(backendset_add(&f.s, bad[k].id, bad[k].addr, NULL,
                                        bad[k].w, 0, err, sizeof(err)),
                         -1);
        assert_int_equal(errno, bad[k].err);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(backendset_count(&f.s), 2);
    assert_int_equal(stats_count(f.s.stats), 2);
    for (int k = 0; k < 10; k++) {
        int i = balancer_pick(f.s.bal, 0, 0, NULL);
        assert_true(i == 0 || i == 1);
        balancer_cancel(f.s.bal, (size_t)i);
    }
    assert_int_equal(backendset_set_weight(&f.s, "A", 0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(backendset_set_weight(&f.s, "Q", 2), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(backendset_set_state(&f.s, "Q", BALANCER_DRAIN, 0), -1);
    assert_int_equal(errno, ENOENT);
    fx_free(&f);
}

/* A removed slot is reused once idle, with fresh stats; the other
 * backends keep theirs. */
static void test_reuse_fresh_stats(void **st)
{
    (void)st;
    struct fx f;
    char err[256];
    fx_init(&f);
    record_on(f.s.stats, 0, 1 * SEC);
    record_on(f.s.stats, 1, 1 * SEC);
    unsigned x;
    assert_int_equal(balancer_pick(f.s.bal, 2, 0, &x), 0); /* busy A */
    assert_int_equal(backendset_remove(&f.s, "A"), 0);
    /* A's request finishes after the removal: still counted to slot 0 */
    assert_int_equal(backendset_stats_index(&f.s, 0, "A"), 0);
    assert_int_equal(backendset_add(&f.s, "C", "127.0.0.1:8084", NULL, 1, 0,
                                    err, sizeof(err)),
                     2); /* slot 0 is busy */
    balancer_observe(f.s.bal, 0, 1000, BALANCER_OK, x, 0);
    assert_int_equal(backendset_add(&f.s, "D", "127.0.0.1:8085", NULL, 1, 0,
                                    err, sizeof(err)),
                     0);
    assert_int_equal(requests_of(f.s.stats, 0), 0); /* fresh */
    assert_int_equal(requests_of(f.s.stats, 1), 1); /* B kept */
    /* a late record of A (slot 0, now D's) counts nowhere per backend */
    assert_int_equal(backendset_stats_index(&f.s, 0, "A"), -1);
    assert_int_equal(backendset_stats_index(&f.s, 0, "D"), 0);
    assert_int_equal(backendset_stats_index(&f.s, 5, "B"), 1);
    assert_int_equal(backendset_stats_index(&f.s, -1, "B"), -1);
    fx_free(&f);
}

static void test_states_and_full(void **st)
{
    (void)st;
    struct fx f;
    char err[256], id[8];
    fx_init(&f);
    unsigned x;
    assert_int_equal(balancer_pick(f.s.bal, 2, 0, &x), 0);
    assert_int_equal(backendset_set_state(&f.s, "A", BALANCER_DRAIN, 0), 0);
    assert_string_equal(backendset_state(&f.s, 0), "draining");
    balancer_observe(f.s.bal, 0, 1000, BALANCER_OK, x, 0);
    assert_string_equal(backendset_state(&f.s, 0), "drained");
    assert_int_equal(balancer_pick(f.s.bal, 0, 0, NULL), 1);
    assert_int_equal(backendset_set_state(&f.s, "A", BALANCER_MAINT, 0), 0);
    assert_string_equal(backendset_state(&f.s, 0), "maint");
    assert_int_equal(backendset_set_state(&f.s, "A", BALANCER_READY, 0), 0);
    assert_string_equal(backendset_state(&f.s, 0), "up");
    balancer_set_health(f.s.bal, 1, false, 0);
    assert_string_equal(backendset_state(&f.s, 1), "down");
    assert_int_equal(backendset_set_weight(&f.s, "B", 7), 0);
    assert_int_equal(balancer_backend(f.s.bal, 1)->weight, 7);
    for (int k = 2; k < CONFIG_MAX_BACKENDS; k++) {
        snprintf(id, sizeof(id), "n%d", k);
        assert_int_equal(backendset_add(&f.s, id, "127.0.0.1:9000", NULL, 1, 0,
                                        err, sizeof(err)),
                         k);
    }
    assert_int_equal(backendset_add(&f.s, "full", "127.0.0.1:9000", NULL, 1, 0,
                                    err, sizeof(err)),
                     -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(stats_count(f.s.stats), CONFIG_MAX_BACKENDS);
    fx_free(&f);
}

int main(void)
{
    log_verbosity = 0; /* every change logs a line at info */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_remove),
        cmocka_unit_test(test_bad_input_changes_nothing),
        cmocka_unit_test(test_reuse_fresh_stats),
        cmocka_unit_test(test_states_and_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
