/*
 * Unit tests of request ids: the sanity rule (length, visible ASCII, no
 * comma), the generated UUIDv4 shape and its uniqueness, which id a parsed
 * head gets (one sane field kept; none, two or a bad one replaced), and
 * how the head rebuilds carry it: upstream in place of the client's
 * fields, echoed on a final response in place of the backend's, absent
 * from an interim one, untouched when the feature is off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "reqid.h"

#define MAXH 16

struct parsed {
    struct http_head head;
    struct http_header hdrs[MAXH];
    llhttp_t p;
    char buf[2048];
};

static int pause_at_headers(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED;
}

static void parse(struct parsed *x, llhttp_type_t type, const char *text)
{
    static llhttp_settings_t s;
    http_settings_init(&s);
    s.on_headers_complete = pause_at_headers;
    memset(x, 0, sizeof(*x));
    size_t n = strlen(text);
    memcpy(x->buf, text, n);
    llhttp_init(&x->p, type, &s);
    x->p.data = &x->head;
    x->head.headers = x->hdrs;
    x->head.max_headers = MAXH;
    http_head_reset(&x->head, x->buf);
    assert_int_equal(llhttp_execute(&x->p, x->buf, n), HPE_PAUSED);
}

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

static void test_assign(void **state)
{
    (void)state;
    static struct parsed x;
    char id[REQID_MAX + 1];
    parse(&x, HTTP_REQUEST,
          "GET / HTTP/1.1\r\nHost: a\r\nx-request-id: client-1\r\n\r\n");
    assert_int_equal(reqid_assign(&x.head, id), 8);
    assert_string_equal(id, "client-1");
    const char *replaced[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: a,b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: one\r\n"
        "X-Request-Id: two\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(replaced) / sizeof(replaced[0]); i++) {
        parse(&x, HTTP_REQUEST, replaced[i]);
        assert_int_equal(reqid_assign(&x.head, id), REQID_UUID_LEN);
        if (!is_uuid4(id))
            fail_msg("case %zu: %s", i, id);
    }
    char text[512], longid[REQID_MAX + 2];
    memset(longid, 'k', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    snprintf(text, sizeof(text),
             "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: %s\r\n\r\n", longid);
    parse(&x, HTTP_REQUEST, text);
    assert_int_equal(reqid_assign(&x.head, id), REQID_UUID_LEN);
    longid[REQID_MAX] = '\0';
    snprintf(text, sizeof(text),
             "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: %s\r\n\r\n", longid);
    parse(&x, HTTP_REQUEST, text);
    assert_int_equal(reqid_assign(&x.head, id), REQID_MAX);
    assert_string_equal(id, longid);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_heads_carry_it(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_request req;
    char out[1024];
    parse(&x, HTTP_REQUEST,
          "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: bad id\r\n"
          "X-Other: 1\r\n\r\n");
    assert_int_equal(http_request_check(&x.p, &x.head, 100, &req), 0);
    assert_null(req.request_id); /* the check leaves none */
    int n = http_build_request_head(out, sizeof(out) - 1, &x.p, &x.head, &req,
                                    "192.0.2.1", false);
    out[n] = '\0';
    assert_non_null(strstr(out, "X-Request-Id: bad id\r\n")); /* off */
    req.request_id = "0b7e5c3a-9f1d-4e2b-8a6c-3d5e7f9a1b2c";
    req.request_id_len = strlen(req.request_id);
    n = http_build_request_head(out, sizeof(out) - 1, &x.p, &x.head, &req,
                                "192.0.2.1", false);
    out[n] = '\0';
    assert_null(strstr(out, "bad id"));
    assert_int_equal(count(out, "X-Request-Id:"), 1);
    assert_non_null(
        strstr(out, "X-Request-Id: 0b7e5c3a-9f1d-4e2b-8a6c-3d5e7f9a1b2c\r\n"));
    assert_non_null(strstr(out, "X-Other: 1\r\n"));

    struct http_response r;
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 200 OK\r\nX-Request-Id: backend\r\n"
          "Content-Length: 0\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, &r), 0);
    assert_null(r.request_id);
    n = http_build_response_head(out, sizeof(out) - 1, &x.p, &x.head, &r, 1,
                                 true);
    out[n] = '\0';
    assert_non_null(strstr(out, "X-Request-Id: backend\r\n"));
    r.request_id = "abc";
    r.request_id_len = 3;
    n = http_build_response_head(out, sizeof(out) - 1, &x.p, &x.head, &r, 1,
                                 true);
    out[n] = '\0';
    assert_int_equal(count(out, "X-Request-Id:"), 1);
    assert_non_null(strstr(out, "X-Request-Id: abc\r\n"));
    /* an interim response is not where the id goes */
    parse(&x, HTTP_RESPONSE, "HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, &r), 0);
    r.request_id = "abc";
    r.request_id_len = 3;
    n = http_build_response_head(out, sizeof(out) - 1, &x.p, &x.head, &r, 1,
                                 true);
    out[n] = '\0';
    assert_null(strstr(out, "X-Request-Id"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sane_rule),
        cmocka_unit_test(test_generated_uuid4),
        cmocka_unit_test(test_assign),
        cmocka_unit_test(test_heads_carry_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
