/*
 * Unit tests of the http module: request checks, head rebuilding, response
 * checks and the parse-error mapping, each over a real strict llhttp parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "reqid.h"

#define MAXH 32

struct parsed {
    struct http_head head; /* first: parser->data points here */
    struct http_header hdrs[MAXH];
    llhttp_t p;
    llhttp_errno_t err;
    size_t err_off;
    char buf[4096];
};

static int pause_at_headers(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED;
}

/* Parses a request or response head up to headers-complete. */
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
    x->err = llhttp_execute(&x->p, x->buf, n);
    if (x->err != HPE_OK)
        x->err_off = (size_t)(llhttp_get_error_pos(&x->p) - x->buf);
}

/* For a head either check or llhttp may refuse: true when the parse
 * reached the check; otherwise asserts that llhttp refused it (a head that
 * stopped short of its end would be neither). */
static bool reached_check(const struct parsed *x)
{
    if (x->err == HPE_PAUSED)
        return true;
    assert_true(x->err != HPE_OK);
    return false;
}

static int check_req(const char *text, struct http_request *req,
                     struct parsed *x)
{
    parse(x, HTTP_REQUEST, text);
    assert_int_equal(x->err, HPE_PAUSED);
    return http_request_check(&x->p, &x->head, 1000, req);
}

static void build_req(const char *text, char *out, size_t cap)
{
    static struct parsed x;
    struct http_request req;
    assert_int_equal(check_req(text, &req, &x), 0);
    int n = http_build_request_head(out, cap - 1, &x.p, &x.head, &req,
                                    "192.0.2.9", 9, false);
    assert_true(n > 0);
    out[n] = '\0';
}

/* Parses and checks a response to a GET and rebuilds its head for a
 * keep-alive HTTP/1.1 client. */
static const char *build_resp(const char *text, char *out, size_t cap)
{
    static struct parsed x;
    struct http_response r;
    parse(&x, HTTP_RESPONSE, text);
    assert_int_equal(x.err, HPE_PAUSED);
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     0);
    int n = http_build_response_head(out, cap - 1, &x.p, &x.head, &r, 1, true);
    assert_true(n > 0);
    out[n] = '\0';
    return out;
}

static void test_empty_header_value_is_accepted(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_request req;
    /* regression (found by fuzz_request): an empty value was mistaken for
     * an obs-fold because llhttp reports it after the line end */
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: t\r\nX-E:\r\n"
                               "X-F: \r\n\r\n",
                               &req, &x),
                     0);
    char out[1024];
    build_req("GET / HTTP/1.1\r\nHost: t\r\nX-E:\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "\r\nX-E: \r\n"));
}

/* An obs-fold continuation line: llhttp joins it to the value as a second
 * piece that does not touch the first; the request and the response are
 * refused, never forwarded with a raw CR LF inside a value. */
static void test_obs_fold_is_refused(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_request req;
    struct http_response r;
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n 2\r\n"
                               "\r\n",
                               &req, &x),
                     400);
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 200 OK\r\nX-A: 1\r\n\t2\r\n"
          "Content-Length: 0\r\n\r\n");
    if (reached_check(&x))
        assert_int_equal(
            http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r), 502);
}

static void test_obs_fold_after_empty_value_is_refused(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_request req;
    parse(&x, HTTP_REQUEST,
          "POST / HTTP/1.1\r\nHost: t\r\n"
          "Transfer-Encoding:\r\n chunked\r\n\r\n");
    assert_int_equal(x.err, HPE_PAUSED); /* reached the check */
    assert_int_equal(http_request_check(&x.p, &x.head, 1000, &req), 400);
    /* in a field no check judges, of a head with no other kind of field:
     * refused too, the request and the response */
    parse(&x, HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: t\r\nX-A:\r\n 1\r\n\r\n");
    assert_int_equal(x.err, HPE_PAUSED); /* reached the check */
    assert_int_equal(http_request_check(&x.p, &x.head, 1000, &req), 400);
    struct http_response r;
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 200 OK\r\nX-A:\r\n 1\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(x.err, HPE_PAUSED); /* reached the check */
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     502);
}

/* Blanks that end a value never reach the other side, in a field a check
 * judges or not: the line is rewritten without them. */
static void test_trailing_blanks_are_dropped(void **state)
{
    (void)state;
    char out[1024];
    build_req("GET / HTTP/1.1\r\nHost: t \r\nX-A: a b \t\r\nX-B: c\r\n"
              "X-Forwarded-For: 6.6.6.6\t\r\n\r\n",
              out, sizeof(out));
    assert_non_null(strstr(out, "\r\nHost: t\r\nX-A: a b\r\nX-B: c\r\n"));
    assert_non_null(strstr(out, "\r\nX-Forwarded-For: 6.6.6.6, 192.0.2.9\r\n"));
    build_resp("HTTP/1.1 200 OK\r\nX-A: a  \r\nContent-Length: 0\r\n\r\n", out,
               sizeof(out));
    assert_non_null(strstr(out, "\r\nX-A: a\r\n"));
}

static void test_absolute_form(void **state)
{
    (void)state;
    char out[1024];
    build_req("GET http://a.test:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n", out,
              sizeof(out));
    assert_memory_equal(out, "GET /p?q HTTP/1.1\r\nHost: a.test:81\r\n", 36);
    static struct parsed x;
    struct http_request req;
    assert_int_equal(
        check_req("GET http://u@evil/ HTTP/1.1\r\nHost: t\r\n\r\n", &req, &x),
        400);
    assert_int_equal(
        check_req("GET http:/// HTTP/1.1\r\nHost: t\r\n\r\n", &req, &x), 400);
}

static void test_http10_without_host_gets_one(void **state)
{
    (void)state;
    char out[1024];
    build_req("GET / HTTP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "GET / HTTP/1.1\r\nHost: \r\n"));
    build_req("GET http://h.test/x HTTP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "GET /x HTTP/1.1\r\nHost: h.test\r\n"));
}

static void test_connection_cannot_drop_our_headers(void **state)
{
    (void)state;
    char out[1024];
    build_req("GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 6.6.6.6\r\n"
              "Connection: close, X-Forwarded-For, Via\r\n\r\n",
              out, sizeof(out));
    assert_non_null(strstr(out, "\r\nX-Forwarded-For: 192.0.2.9\r\n"));
    assert_null(strstr(out, "6.6.6.6"));
    assert_non_null(strstr(out, "\r\nVia: 1.1 lbproxy\r\n"));
}

static void test_transfer_encodings(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_request req;
    assert_int_equal(check_req("POST / HTTP/1.1\r\nHost: t\r\n"
                               "Transfer-Encoding: Chunked\r\n\r\n",
                               &req, &x),
                     0);
    assert_true(req.chunked);
    char out[1024];
    build_req(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n", out,
        sizeof(out));
    assert_non_null(strstr(out, "\r\nTransfer-Encoding: chunked\r\n"));
    parse(&x, HTTP_REQUEST,
          "POST / HTTP/1.1\r\nHost: t\r\n"
          "Transfer-Encoding: gzip, chunked\r\n\r\n");
    assert_int_equal(x.err, HPE_PAUSED);
    assert_int_equal(http_request_check(&x.p, &x.head, 1000, &req), 501);
    parse(&x, HTTP_REQUEST,
          "POST / HTTP/1.0\r\nHost: t\r\n"
          "Transfer-Encoding: chunked\r\n\r\n");
    if (reached_check(&x))
        assert_int_equal(http_request_check(&x.p, &x.head, 1000, &req), 400);
}

static void test_limits_and_hosts(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_request req;
    assert_int_equal(check_req("POST / HTTP/1.1\r\nHost: t\r\n"
                               "Content-Length: 1001\r\n\r\n",
                               &req, &x),
                     413);
    assert_int_equal(check_req("GET / HTTP/1.1\r\n\r\n", &req, &x), 400);
    assert_int_equal(
        check_req("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", &req, &x),
        400);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: t\r\n"
                               "Connection: Content-Length\r\n\r\n",
                               &req, &x),
                     400);
    /* every byte value inside a Host: only letters, digits and
     * .-:[]_~%!$&'()*+;= pass (others fail the check, or llhttp first) */
    for (unsigned c = 1; c < 256; c++) {
        char text[64];
        snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a%cb\r\n\r\n",
                 (int)c);
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') ||
                  (c < 128 && strchr(".-:[]_~%!$&'()*+;=", (int)c));
        parse(&x, HTTP_REQUEST, text);
        if (ok) {
            assert_int_equal(x.err, HPE_PAUSED);
            assert_int_equal(http_request_check(&x.p, &x.head, 1000, &req), 0);
        } else if (reached_check(&x)) {
            assert_int_equal(http_request_check(&x.p, &x.head, 1000, &req),
                             400);
        }
    }
}

static void test_parse_error_status(void **state)
{
    (void)state;
    static struct parsed x;
    parse(&x, HTTP_REQUEST, "GET / HTTP/1.2\r\nHost: t\r\n\r\n");
    assert_int_equal(x.err, HPE_INVALID_VERSION);
    assert_int_equal(
        http_parse_error_status(x.err, x.buf, strlen(x.buf), x.err_off), 505);
    parse(&x, HTTP_REQUEST, "GET / HTTP/1.x\r\nHost: t\r\n\r\n");
    assert_int_not_equal(x.err, HPE_PAUSED);
    assert_int_equal(
        http_parse_error_status(x.err, x.buf, strlen(x.buf), x.err_off), 400);
    assert_int_equal(http_parse_error_status(HPE_INVALID_VERSION, "x", 1, 0),
                     400);
}

static void test_response_checks(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_response r;
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
          "Transfer-Encoding: chunked\r\n\r\n");
    if (reached_check(&x))
        assert_int_equal(
            http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r), 502);
    parse(&x, HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(
        http_response_check(&x.p, &x.head, HTTP_HEAD, 1, false, &r), 0);
    assert_int_equal(r.mode, HTTP_BODY_NONE);
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
          "\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 0, false, &r),
                     0);
    assert_int_equal(r.mode, HTTP_BODY_CLOSE);
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     0);
    assert_int_equal(r.mode, HTTP_BODY_CHUNKED);
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 200 OK\r\nX-E:\r\n"
          "Content-Length: 1\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     0);
}

/* http_request_check and http_response_check leave control bytes in
 * field values to the parser: strict llhttp must refuse them (NUL, other
 * C0 controls but HTAB, DEL) in requests and responses alike. */
static void test_llhttp_refuses_control_bytes(void **state)
{
    (void)state;
    static struct parsed x;
    const char bad[] = {0x00, 0x01, 0x08, 0x0b, 0x1f, 0x7f};
    for (size_t i = 0; i < sizeof(bad); i++) {
        char req[64], resp[64];
        snprintf(req, sizeof(req),
                 "GET / HTTP/1.1\r\nHost: a\r\nX: a%cb\r\n\r\n", 'Q');
        snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nX: a%cb\r\n\r\n", 'Q');
        *strchr(req, 'Q') = bad[i];
        *strchr(resp, 'Q') = bad[i];
        /* parse() takes a C string: a NUL ends it early, so feed it by hand */
        size_t rl = strlen(req) + strlen(req + strlen(req) + 1) + 1;
        size_t pl = strlen(resp) + strlen(resp + strlen(resp) + 1) + 1;
        static llhttp_settings_t s;
        http_settings_init(&s);
        llhttp_t p;
        llhttp_init(&p, HTTP_REQUEST, &s);
        memset(&x, 0, sizeof(x));
        x.head.headers = x.hdrs;
        x.head.max_headers = MAXH;
        http_head_reset(&x.head, req);
        p.data = &x.head;
        assert_int_not_equal(llhttp_execute(&p, req, rl), HPE_OK);
        llhttp_init(&p, HTTP_RESPONSE, &s);
        http_head_reset(&x.head, resp);
        p.data = &x.head;
        assert_int_not_equal(llhttp_execute(&p, resp, pl), HPE_OK);
    }
    parse(&x, HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n");
    assert_int_equal(x.err, HPE_PAUSED); /* HTAB is allowed */
}

/* A 1xx other than 101 is an interim head with no body, rebuilt for an
 * HTTP/1.1 client with its end-to-end headers and no framing or Connection
 * header; a 101 to a request that did not ask to upgrade is refused. */
static void test_interim_responses(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_response r;
    char out[512];
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 103 Early Hints\r\n"
          "Link: </a.css>; rel=preload\r\n"
          "Connection: close, X-Hop\r\nX-Hop: 1\r\n"
          "Content-Length: 7\r\n\r\n");
    assert_int_equal(x.err, HPE_PAUSED);
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     0);
    assert_true(r.interim);
    assert_int_equal(r.mode, HTTP_BODY_NONE);
    int n =
        http_build_response_head(out, sizeof(out), &x.p, &x.head, &r, 1, true);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "HTTP/1.1 103 Early Hints\r\n"
                             "Link: </a.css>; rel=preload\r\n"
                             "Via: 1.1 lbproxy\r\n\r\n");
    parse(&x, HTTP_RESPONSE, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(
        http_response_check(&x.p, &x.head, HTTP_POST, 1, false, &r), 0);
    assert_true(r.interim);
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 101 Switching Protocols\r\n"
          "Upgrade: websocket\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     502);
    parse(&x, HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     0);
    assert_false(r.interim);
}

/* Body bytes are copied as they are, or framed as one chunk; an empty span
 * never becomes "0\r\n\r\n" (which would end a chunked stream early). */
static void test_frame_body(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(http_frame_body(out, "abc", 0, true), 0);
    assert_int_equal(http_frame_body(out, "abc", 0, false), 0);
    size_t n = http_frame_body(out, "hello", 5, false);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    char body[26];
    memset(body, 'x', sizeof(body));
    n = http_frame_body(out, body, sizeof(body), true);
    assert_int_equal(n, 4 + 26 + 2);
    assert_memory_equal(out, "1a\r\n", 4);
    assert_memory_equal(out + 4, body, 26);
    assert_memory_equal(out + 30, "\r\n", 2);
}

/* Request ids (reqid.h) over real parses: one sane client field kept;
 * none, two, an empty, odd or too long one replaced by a UUIDv4; the
 * rebuilt heads carry the id in place of the client's (request) or the
 * backend's (final response) fields, never on an interim response, and
 * leave the fields alone when no id is set. */
static void test_request_id_assign(void **state)
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
        if (id[8] != '-' || id[14] != '4')
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

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_request_id_in_heads(void **state)
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
                                    "192.0.2.1", 9, false);
    out[n] = '\0';
    assert_non_null(strstr(out, "X-Request-Id: bad id\r\n")); /* off */
    req.request_id = "0b7e5c3a-9f1d-4e2b-8a6c-3d5e7f9a1b2c";
    req.request_id_len = strlen(req.request_id);
    n = http_build_request_head(out, sizeof(out) - 1, &x.p, &x.head, &req,
                                "192.0.2.1", 9, false);
    out[n] = '\0';
    assert_null(strstr(out, "bad id"));
    assert_int_equal(count_of(out, "X-Request-Id:"), 1);
    assert_non_null(
        strstr(out, "X-Request-Id: 0b7e5c3a-9f1d-4e2b-8a6c-3d5e7f9a1b2c\r\n"));
    assert_non_null(strstr(out, "X-Other: 1\r\n"));

    struct http_response r;
    parse(&x, HTTP_RESPONSE,
          "HTTP/1.1 200 OK\r\nX-Request-Id: backend\r\n"
          "Content-Length: 0\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     0);
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
    assert_int_equal(count_of(out, "X-Request-Id:"), 1);
    assert_non_null(strstr(out, "X-Request-Id: abc\r\n"));
    /* an interim response is not where the id goes */
    parse(&x, HTTP_RESPONSE, "HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     0);
    r.request_id = "abc";
    r.request_id_len = 3;
    n = http_build_response_head(out, sizeof(out) - 1, &x.p, &x.head, &r, 1,
                                 true);
    out[n] = '\0';
    assert_null(strstr(out, "X-Request-Id"));
}

/* The response's Content-Length line: kept as it came when it reads as
 * the rebuild would write it, else rewritten; exactly one either way. */
static void test_response_length_line(void **state)
{
    (void)state;
    char out[1024];
    assert_string_equal(
        build_resp("HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 21\r\n"
                   "X-B: 2\r\n\r\n",
                   out, sizeof(out)),
        "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 21\r\nX-B: 2\r\n"
        "Via: 1.1 lbproxy\r\n\r\n");
    assert_string_equal(
        build_resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", out,
                   sizeof(out)),
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.1 lbproxy\r\n\r\n");
    /* a leading zero, no blank after the colon, a trailing blank: the
     * line is written anew */
    static const char *odd[] = {"Content-Length: 021", "Content-Length:21",
                                "Content-Length: 21 ", "Content-Length:  21"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\n%s\r\nX-B: 2\r\n\r\n",
                 odd[i]);
        build_resp(in, out, sizeof(out));
        assert_int_equal(count_of(out, "Content-Length: 21\r\n"), 1);
        assert_int_equal(count_of(out, "Content-Length"), 1); /* that one */
    }
    /* another spelling of the name stays as it came */
    build_resp("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", out,
               sizeof(out));
    assert_non_null(strstr(out, "\r\ncontent-length: 5\r\n"));
    assert_null(strstr(out, "Content-Length"));
    /* named in Connection: still framed, once */
    build_resp("HTTP/1.1 200 OK\r\nConnection: content-length\r\n"
               "Content-Length: 3\r\n\r\n",
               out, sizeof(out));
    assert_int_equal(count_of(out, "Content-Length: 3\r\n"), 1);
    assert_int_equal(count_of(out, "ength:"), 1);
}

/* Requests of fields of no interest and Host: the one Host is judged,
 * as a head of other fields would have it judged (same answers, same
 * reasons); a field without a name is refused wherever it stands. */
static void test_plain_request_heads(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_request req;
    static const struct {
        const char *head;
        int status;
        const char *why;
    } cases[] = {
        {"GET / HTTP/1.1\r\nX-A: 1\r\nHost: a\r\nX-B: 2\r\n\r\n", 0, NULL},
        {"GET / HTTP/1.1\r\nHost: a \t \r\n\r\n", 0, NULL},
        {"GET / HTTP/1.1\r\nX-A: 1\r\n: x\r\nHost: a\r\n\r\n", 400,
         "empty header name"},
        {"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400, "empty header name"},
        {"GET / HTTP/1.1\r\n: x\r\n\r\n", 400, "empty header name"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nHost: a\r\n\r\n", 400,
         "several Host fields"},
        {"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400,
         "several Host fields"},
        {"GET / HTTP/1.1\r\nX-A: 1\r\nHost: a b\r\n\r\n", 400, "invalid Host"},
        {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, NULL},
        {"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400, "no Host"},
        {"GET / HTTP/1.0\r\nX-A: 1\r\n\r\n", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(check_req(cases[i].head, &req, &x), cases[i].status);
        if (cases[i].why)
            assert_string_equal(req.error, cases[i].why);
    }
    char out[1024];
    build_req("GET / HTTP/1.1\r\nHost: a \t \r\nX-A: 1\r\n\r\n", out,
              sizeof(out));
    assert_non_null(strstr(out, "\r\nHost: a\r\nX-A: 1\r\n"));
}

/* A request line goes out as it came only when it reads "METHOD target
 * HTTP/1.1": other spacings and leading blank lines are rewritten. */
static void test_request_line(void **state)
{
    (void)state;
    static const char *in[] = {
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET  /a HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET   /a HTTP/1.1\r\nHost: h\r\n\r\n",
        "\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        "\r\n\r\nGET  /a HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char out[1024];
        build_req(in[i], out, sizeof(out));
        const char *want = "GET /a HTTP/1.1\r\nHost: h\r\n";
        assert_true(strncmp(out, want, strlen(want)) == 0);
    }
    static const char *methods[] = {"DELETE", "OPTIONS", "PROPFIND",
                                    "M-SEARCH"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char text[128], out[1024];
        for (int spaces = 1; spaces <= 2; spaces++) {
            snprintf(text, sizeof(text), "%s%s/x HTTP/1.1\r\nHost: h\r\n\r\n",
                     methods[i], spaces == 1 ? " " : "  ");
            build_req(text, out, sizeof(out));
            char want[64];
            snprintf(want, sizeof(want), "%s /x HTTP/1.1\r\n", methods[i]);
            assert_true(strncmp(out, want, strlen(want)) == 0);
        }
    }
}

/* Like build_resp and build_req, with the head fed to llhttp in two
 * pieces cut at `cut` (0: whole). */
static void build_cut(llhttp_type_t type, const char *text, size_t cut,
                      char *out, size_t cap)
{
    static struct parsed x;
    parse(&x, type, "");
    size_t n = strlen(text);
    memcpy(x.buf, text, n);
    x.err = llhttp_execute(&x.p, x.buf, cut);
    if (x.err == HPE_OK)
        x.err = llhttp_execute(&x.p, x.buf + cut, n - cut);
    assert_int_equal(x.err, HPE_PAUSED);
    int len;
    if (type == HTTP_REQUEST) {
        struct http_request req;
        assert_int_equal(http_request_check(&x.p, &x.head, 1000, &req), 0);
        len = http_build_request_head(out, cap - 1, &x.p, &x.head, &req,
                                      "192.0.2.9", 9, false);
    } else {
        struct http_response r;
        assert_int_equal(
            http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r), 0);
        len =
            http_build_response_head(out, cap - 1, &x.p, &x.head, &r, 1, true);
    }
    assert_true(len > 0);
    out[len] = '\0';
}

/* build_cut at every cut of `in`: each rebuild reads `expect`. */
static void every_cut(llhttp_type_t type, const char *in, const char *expect)
{
    char out[1024];
    for (size_t cut = 0; cut < strlen(in); cut++) {
        build_cut(type, in, cut, out, sizeof(out));
        assert_string_equal(out, expect);
    }
}

/* A head whose lines all read "Name: value\r\n" goes out as one run of
 * its bytes; one line of another shape anywhere (first, middle, last), or
 * a head that came in two pieces, must come out the same as the rebuilt
 * head, line by line. */
static void test_heads_out_as_one_run(void **state)
{
    (void)state;
    static const char *odd[] = {"X-B:2", "X-B:  2", "X-B: 2 ", "X-B: 2\t",
                                "X-B: 2"};
    /* the lines before and after the odd one */
    static const char *before[] = {"", "X-A: 1\r\n", "X-A: 1\r\nX-C: 3\r\n"};
    static const char *after[] = {"X-A: 1\r\nX-C: 3\r\n", "X-C: 3\r\n", ""};
    static const char *want[] = {"X-B: 2\r\nX-A: 1\r\nX-C: 3\r\n",
                                 "X-A: 1\r\nX-B: 2\r\nX-C: 3\r\n",
                                 "X-A: 1\r\nX-C: 3\r\nX-B: 2\r\n"};
    for (size_t k = 0; k < 3; k++) {
        for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
            char fields[128], in[512], expect[512];
            snprintf(fields, sizeof(fields), "%s%s\r\n%s", before[k], odd[i],
                     after[k]);
            /* the response */
            snprintf(in, sizeof(in),
                     "HTTP/1.1 200 OK\r\n%sContent-Length: 4\r\n\r\n", fields);
            snprintf(expect, sizeof(expect),
                     "HTTP/1.1 200 OK\r\n%sContent-Length: 4\r\n"
                     "Via: 1.1 lbproxy\r\n\r\n",
                     want[k]);
            every_cut(HTTP_RESPONSE, in, expect);
            /* the request */
            snprintf(in, sizeof(in), "GET /x HTTP/1.1\r\nHost: h\r\n%s\r\n",
                     fields);
            snprintf(expect, sizeof(expect),
                     "GET /x HTTP/1.1\r\nHost: h\r\n%s"
                     "X-Forwarded-For: 192.0.2.9\r\n"
                     "X-Forwarded-Proto: http\r\nVia: 1.1 lbproxy\r\n\r\n",
                     want[k]);
            every_cut(HTTP_REQUEST, in, expect);
        }
    }
    /* an empty value among canon lines is written "Name: " */
    char out[1024];
    build_cut(HTTP_RESPONSE,
              "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-E:\r\nContent-Length: 4\r\n"
              "\r\n",
              0, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-E: \r\n"
                             "Content-Length: 4\r\nVia: 1.1 lbproxy\r\n\r\n");
}

/* Connection: upgrade with an Upgrade field on a body-less HTTP/1.1
 * request travels upstream with both (Connection naming Upgrade does not
 * drop it); h2c, HTTP/1.0, a body, or an Upgrade without the Connection
 * token are plain requests with the upgrade headers dropped. */
static void test_upgrade_requests(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_request req;
    char out[1024];
    assert_int_equal(check_req("GET /ws HTTP/1.1\r\nHost: t\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: keep-alive, Upgrade\r\n"
                               "Sec-WebSocket-Key: k\r\n\r\n",
                               &req, &x),
                     0);
    assert_true(req.upgrade);
    build_req("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: k\r\n\r\n",
              out, sizeof(out));
    assert_non_null(strstr(out, "\r\nUpgrade: websocket\r\n"));
    assert_non_null(strstr(out, "\r\nSec-WebSocket-Key: k\r\n"));
    assert_non_null(strstr(out, "\r\nConnection: upgrade\r\n"));
    assert_null(strstr(out, "Connection: close"));
    static const char *const plain[] = {
        "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\n"
        "Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAA\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket, H2C\r\n"
        "Connection: Upgrade\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: t\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        assert_int_equal(check_req(plain[i], &req, &x), 0);
        assert_false(req.upgrade);
        build_req(plain[i], out, sizeof(out));
        assert_null(strstr(out, "Upgrade"));
        assert_null(strstr(out, "HTTP2-Settings"));
    }
}

/* A 101 is a tunnel only for a request that asked to upgrade and when it
 * names its protocol; its head keeps Upgrade and says Connection: upgrade,
 * without framing fields. */
static void test_101_tunnel(void **state)
{
    (void)state;
    static struct parsed x;
    struct http_response r;
    char out[512];
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: abc\r\n"
                               "Content-Length: 5\r\n\r\n";
    parse(&x, HTTP_RESPONSE, head);
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, false, &r),
                     502);
    parse(&x, HTTP_RESPONSE, head);
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, true, &r),
                     0);
    assert_true(r.tunnel);
    assert_false(r.interim);
    assert_false(r.upstream_keep_alive);
    assert_int_equal(r.mode, HTTP_BODY_NONE);
    int n =
        http_build_response_head(out, sizeof(out), &x.p, &x.head, &r, 1, true);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Sec-WebSocket-Accept: abc\r\n"
                             "Via: 1.1 lbproxy\r\n"
                             "Connection: upgrade\r\n\r\n");
    parse(&x, HTTP_RESPONSE, "HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert_int_equal(http_response_check(&x.p, &x.head, HTTP_GET, 1, true, &r),
                     502); /* no Upgrade: no protocol to switch to */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_id_assign),
        cmocka_unit_test(test_request_id_in_heads),
        cmocka_unit_test(test_upgrade_requests),
        cmocka_unit_test(test_101_tunnel),
        cmocka_unit_test(test_empty_header_value_is_accepted),
        cmocka_unit_test(test_obs_fold_after_empty_value_is_refused),
        cmocka_unit_test(test_obs_fold_is_refused),
        cmocka_unit_test(test_trailing_blanks_are_dropped),
        cmocka_unit_test(test_response_length_line),
        cmocka_unit_test(test_heads_out_as_one_run),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_http10_without_host_gets_one),
        cmocka_unit_test(test_connection_cannot_drop_our_headers),
        cmocka_unit_test(test_transfer_encodings),
        cmocka_unit_test(test_limits_and_hosts),
        cmocka_unit_test(test_plain_request_heads),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_parse_error_status),
        cmocka_unit_test(test_response_checks),
        cmocka_unit_test(test_interim_responses),
        cmocka_unit_test(test_llhttp_refuses_control_bytes),
        cmocka_unit_test(test_frame_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
