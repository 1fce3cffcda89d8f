/*
 * test_tls: the SNI name rule of the TLS contexts (tls_name_matches):
 * exact names without regard to case, and RFC 6125 wildcards narrowed to
 * the whole left-most label standing for exactly one label.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tls.h"

static void test_exact_names(void **state)
{
    (void)state;
    assert_true(tls_name_matches("b.test", "b.test"));
    assert_true(tls_name_matches("b.test", "B.TeSt"));
    assert_false(tls_name_matches("b.test", "a.b.test"));
    assert_false(tls_name_matches("b.test", "b.test."));
    assert_false(tls_name_matches("b.test", ""));
}

static void test_wildcards_cover_one_label(void **state)
{
    (void)state;
    assert_true(tls_name_matches("*.w.test", "x.w.test"));
    assert_true(tls_name_matches("*.w.test", "API.W.TEST"));
    assert_false(tls_name_matches("*.w.test", "w.test"));
    assert_false(tls_name_matches("*.w.test", "a.x.w.test"));
    assert_false(tls_name_matches("*.w.test", ".w.test"));
    assert_false(tls_name_matches("*.w.test", "xw.test"));
    /* a wildcard needs two labels after it */
    assert_false(tls_name_matches("*.test", "x.test"));
    /* only the whole left-most label: partial or inner ones are names */
    assert_false(tls_name_matches("f*.w.test", "foo.w.test"));
    assert_false(tls_name_matches("x.*.test", "x.w.test"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_names),
        cmocka_unit_test(test_wildcards_cover_one_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
