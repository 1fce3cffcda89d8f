/*
 * Unit tests of the retry rules: the retry-on words round-trip, and the
 * budget allows extra attempts up to a share of the requests in flight,
 * never below its minimum.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "retry.h"

static void test_retry_on_words(void **state)
{
    (void)state;
    unsigned m = 99;
    char buf[64];
    assert_int_equal(retry_on_parse("connect,reset,timeout", &m), 0);
    assert_int_equal(m, RETRY_CONNECT | RETRY_RESET | RETRY_TIMEOUT);
    retry_on_format(m, buf, sizeof(buf));
    assert_string_equal(buf, "connect,reset,timeout");
    assert_int_equal(retry_on_parse("5xx, CONNECT", &m), 0);
    assert_int_equal(m, RETRY_5XX | RETRY_CONNECT);
    retry_on_format(m, buf, sizeof(buf));
    assert_string_equal(buf, "connect,5xx");
    assert_int_equal(retry_on_parse("none", &m), 0);
    assert_int_equal(m, 0);
    retry_on_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "none");
    assert_int_equal(retry_on_parse("connect,teapot", &m), -1);
    assert_int_equal(retry_on_parse("5xx0", &m), -1); /* a longer word */
}

static void test_budget(void **state)
{
    (void)state;
    /* at least budget_min at once, whatever the load */
    assert_true(retry_budget_allows(1, 0, 20, 3));
    assert_true(retry_budget_allows(1, 2, 20, 3));
    assert_false(retry_budget_allows(1, 3, 20, 3));
    /* then 20% of the requests in flight */
    assert_true(retry_budget_allows(100, 19, 20, 3));
    assert_false(retry_budget_allows(100, 20, 20, 3));
    assert_false(retry_budget_allows(1000, 200, 20, 3));
    assert_true(retry_budget_allows(1000, 199, 20, 3));
    /* a budget of nothing allows nothing */
    assert_false(retry_budget_allows(1000, 0, 0, 0));
    /* no overflow with huge counts */
    assert_true(retry_budget_allows(4000000000u, 5, 100, 0));
}

static void test_per_try_deadline(void **state)
{
    (void)state;
    /* factor x tail, rounded up to whole ms */
    assert_int_equal(retry_per_try_ms(30000, 4, 50, 1000, 30000), 120);
    assert_int_equal(retry_per_try_ms(30001, 4, 50, 1000, 30000), 121);
    /* the floor and the ceiling */
    assert_int_equal(retry_per_try_ms(2000, 4, 50, 1000, 30000), 50);
    assert_int_equal(retry_per_try_ms(900000, 4, 50, 1000, 30000), 1000);
    /* no sample yet: the ceiling */
    assert_int_equal(retry_per_try_ms(0, 4, 50, 1000, 30000), 1000);
    /* off, and never at or past upstream_ms */
    assert_int_equal(retry_per_try_ms(30000, 4, 0, 1000, 30000), 0);
    assert_int_equal(retry_per_try_ms(30000, 4, 50, 1000, 120), 0);
    assert_int_equal(retry_per_try_ms(30000, 4, 50, 1000, 121), 120);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_on_words),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_per_try_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
