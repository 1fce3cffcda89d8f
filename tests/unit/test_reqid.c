/*
 * Unit tests of request ids: the sanity rule (length, visible ASCII, no
 * comma), the generated UUIDv4 shape, its uniqueness and its seeding.
 * Which id a parsed head gets and how the head rebuilds carry it are in
 * test_http.c (test_request_id_assign, test_request_id_in_heads), beside
 * the parse helper they need.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "reqid.h"

static bool is_uuid4(const char *s)
{
    if (strlen(s) != REQID_UUID_LEN)
        return false;
    for (int i = 0; i < REQID_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-'))
            return false;
        if (!dash &&
            !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_sane_rule(void **state)
{
    (void)state;
    char id[REQID_MAX + 2];
    assert_true(reqid_sane("abc-123", 7));
    assert_true(reqid_sane("!~", 2));
    assert_false(reqid_sane("", 0));
    assert_false(reqid_sane("a b", 3));
    assert_false(reqid_sane("a,b", 3));
    assert_false(reqid_sane("a\tb", 3));
    assert_false(reqid_sane("a\x7f", 2));
    assert_false(reqid_sane("caf\xc3\xa9", 5));
    memset(id, 'x', sizeof(id));
    assert_true(reqid_sane(id, REQID_MAX));
    assert_false(reqid_sane(id, REQID_MAX + 1));
}

static void test_generated_uuid4(void **state)
{
    (void)state;
    char a[REQID_UUID_LEN + 1], b[REQID_UUID_LEN + 1];
    reqid_generate(a); /* seeded from getrandom on first use */
    for (int i = 0; i < 1000; i++) {
        reqid_generate(b);
        if (!is_uuid4(b))
            fail_msg("not a UUIDv4: %s", b);
        assert_string_not_equal(a, b);
    }
    assert_true(reqid_sane(a, strlen(a)));
    /* the same seed gives the same ids (and a different one others) */
    reqid_seed(42);
    reqid_generate(a);
    reqid_seed(42);
    reqid_generate(b);
    assert_string_equal(a, b);
    reqid_seed(43);
    reqid_generate(b);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sane_rule),
        cmocka_unit_test(test_generated_uuid4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
