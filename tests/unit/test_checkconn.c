/*
 * Unit tests of the pure parts of the health checks' and probes' exchange
 * (checkconn) and of the probe answer (prequal_probe_parse): the status
 * line (valid, invalid, incomplete, too long), head fields (case, blanks,
 * first line only, absent), and a probe answer with its two fields, or
 * without them (a 404, an application page, a malformed number).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "checkconn.h"
#include "prequal_probe.h"

static int status_of(const char *s, size_t cap, const char **why)
{
    int st = 0;
    int v = checkconn_status_line(s, strlen(s), cap, &st, why);
    return v == 1 ? st : -v - 10; /* -10: invalid, -9: incomplete */
}

static void test_status_line(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\n", 256, &why), 200);
    assert_int_equal(status_of("HTTP/1.0 404\r\n", 256, &why), 404);
    assert_int_equal(status_of("HTTP/1.1 503 Busy\n", 256, &why), 503);
    assert_int_equal(status_of("HTTP/1.1 200 OK", 256, &why), -9);
    assert_int_equal(status_of("HTTP/2.0 200 OK\r\n", 256, &why), -10);
    assert_string_equal(why, "invalid status line");
    assert_int_equal(status_of("HTTP/1.1 600 No\r\n", 256, &why), -10);
    assert_int_equal(status_of("HTTP/1.1 20x OK\r\n", 256, &why), -10);
    assert_int_equal(status_of("HTTP/1.1 2000 OK\r\n", 256, &why), -10);
    assert_int_equal(status_of("garbage\r\n", 256, &why), -10);
    /* no line end within the buffer's capacity */
    assert_int_equal(status_of("HTTP/1.1 200 OKxxxxxxxx", 16, &why), -10);
    assert_string_equal(why, "status line too long");
}

static void test_fields(void **state)
{
    (void)state;
    const char *h = "HTTP/1.1 200 OK\r\ncontent-length:  12 \r\n"
                    "X-A: first\r\nX-A: second\r\nX-Empty:\r\n\r\n";
    size_t n = strlen(h), vl;
    const char *v = checkconn_field(h, n, "Content-Length", &vl);
    assert_non_null(v);
    assert_int_equal(vl, 2);
    assert_memory_equal(v, "12", 2);
    v = checkconn_field(h, n, "x-a", &vl);
    assert_non_null(v);
    assert_int_equal(vl, 5);
    assert_memory_equal(v, "first", 5);
    v = checkconn_field(h, n, "X-Empty", &vl);
    assert_non_null(v);
    assert_int_equal(vl, 0);
    assert_null(checkconn_field(h, n, "X-Missing", &vl));
    assert_null(checkconn_field(h, n, "X", &vl)); /* a prefix is no name */
}

static void test_probe_parse(void **state)
{
    (void)state;
    unsigned rif = 99;
    uint64_t lat = 99;
    const char *ok = "HTTP/1.1 200 OK\r\nX-Backend-Id: A\r\n"
                     "X-Prequal-Rif: 7\r\nX-Prequal-Latency-Us: 12345\r\n"
                     "Content-Length: 0\r\n\r\n";
    assert_int_equal(prequal_probe_parse(ok, strlen(ok), &rif, &lat), 1);
    assert_int_equal(rif, 7);
    assert_int_equal(lat, 12345);
    const char *bad[] = {
        /* a server without the endpoint */
        "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\n",
        /* a catch-all application page */
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        /* a field missing, malformed, negative or absurd */
        "HTTP/1.1 200 OK\r\nX-Prequal-Rif: 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Prequal-Rif: 3x\r\n"
        "X-Prequal-Latency-Us: 10\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Prequal-Rif: -1\r\n"
        "X-Prequal-Latency-Us: 10\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Prequal-Rif: 99999999999\r\n"
        "X-Prequal-Latency-Us: 10\r\n\r\n",
        "HTTP/1.1 500 Oops\r\nX-Prequal-Rif: 3\r\n"
        "X-Prequal-Latency-Us: 10\r\n\r\n",
        "not http at all\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            prequal_probe_parse(bad[i], strlen(bad[i]), &rif, &lat), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_probe_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
