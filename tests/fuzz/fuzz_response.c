/*
 * libFuzzer harness: the response relay path of lbproxy without sockets.
 * The first input byte picks the request method (GET/HEAD), the client's
 * HTTP minor version, keep-alive and whether the request asked to upgrade
 * (then a 101 is a tunnel: its rebuilt head must be one whole 101 that
 * still names its protocol); the rest is what a backend sends,
 * parsed by the strict llhttp response parser as session_upstream.c does:
 * every head checked by http_response_check; interim (1xx) heads rebuilt
 * for an HTTP/1.1 client (dropped for HTTP/1.0), at most HTTP_MAX_INTERIM
 * of them, the parser reset after each; then the final head rebuilt by
 * http_build_response_head and its body re-encoded (copied, re-chunked or
 * close-delimited).  Invariants: the client would read exactly the relayed
 * 1xx responses, then one final response with the same status and body
 * bytes, and nothing after it; bytes the backend sent after the final
 * response are never part of it (the connection is not reusable then).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAXH 64
#define OUT_CAP (1 << 20)

struct resp_ctx {
    struct http_head head; /* first: parser->data points here */
    struct http_header hdrs[MAXH];
    struct http_response resp;
    int method, client_minor;
    bool upgrade;
    int complete, checked, ninterim;
    char *out;
    size_t out_len;
    char *body;
    size_t body_len;
};

static void append(struct resp_ctx *c, const char *p, size_t n)
{
    if (c->out_len + n > OUT_CAP)
        abort();
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static int on_headers_complete(llhttp_t *p)
{
    struct resp_ctx *c = p->data;
    http_response_check(p, &c->head, c->method, c->client_minor, c->upgrade,
                        &c->resp);
    c->checked = 1;
    if (c->resp.mode == HTTP_BODY_NONE)
        p->flags |= F_SKIPBODY;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct resp_ctx *c = p->data;
    if (len == 0)
        return 0;
    memcpy(c->body + c->body_len, at, len); /* bounded by the input */
    c->body_len += len;
    if (c->resp.mode == HTTP_BODY_CHUNKED) {
        char hdr[24];
        int n = http_chunk_header(hdr, len);
        append(c, hdr, (size_t)n);
        append(c, at, len);
        append(c, "\r\n", 2);
    } else {
        append(c, at, len);
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct resp_ctx *c = p->data;
    if (c->resp.interim)
        abort(); /* an interim head is never parsed on: the parser resets */
    if (c->resp.mode == HTTP_BODY_CHUNKED)
        append(c, "0\r\n\r\n", 5);
    c->complete = 1;
    return HPE_PAUSED;
}

struct check_ctx {
    struct http_head head;
    struct http_header hdrs[MAXH + 8];
    int skip, complete;
    char *body;
    size_t body_len;
};

static int chk_headers(llhttp_t *p)
{
    struct check_ctx *c = p->data;
    if (c->skip)
        p->flags |= F_SKIPBODY;
    return 0;
}

static int chk_body(llhttp_t *p, const char *at, size_t len)
{
    struct check_ctx *c = p->data;
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int chk_complete(llhttp_t *p)
{
    ((struct check_ctx *)p->data)->complete = 1;
    return HPE_PAUSED;
}

static void check_relayed(struct resp_ctx *rc, int status)
{
    static struct check_ctx cc;
    static char cbody[OUT_CAP];
    llhttp_settings_t s;
    http_settings_init(&s);
    s.on_headers_complete = chk_headers;
    s.on_body = chk_body;
    s.on_message_complete = chk_complete;
    memset(&cc, 0, sizeof(cc));
    cc.body = cbody;
    cc.skip = rc->resp.mode == HTTP_BODY_NONE;
    cc.head.headers = cc.hdrs;
    cc.head.max_headers = MAXH + 8;
    llhttp_t p;
    llhttp_init(&p, HTTP_RESPONSE, &s);
    p.data = &cc;
    /* the relayed 1xx first: exactly as many as were relayed, each one a
     * complete body-less message with a 1xx status */
    size_t pos = 0;
    int nrelayed = rc->client_minor == 1 ? rc->ninterim : 0;
    for (int i = 0; i < nrelayed; i++) {
        cc.skip = 1;
        cc.complete = 0;
        http_head_reset(&cc.head, rc->out);
        llhttp_errno_t ie =
            llhttp_execute(&p, rc->out + pos, rc->out_len - pos);
        if (ie != HPE_PAUSED || !cc.complete || p.status_code < 100 ||
            p.status_code > 199 || p.status_code == 101) {
            fprintf(stderr, "relayed interim response %d is wrong\n", i);
            abort();
        }
        pos = (size_t)(llhttp_get_error_pos(&p) - rc->out);
        llhttp_reset(&p);
    }
    cc.skip = rc->resp.mode == HTTP_BODY_NONE;
    cc.complete = 0;
    cc.body_len = 0;
    http_head_reset(&cc.head, rc->out);
    const char *fin = rc->out + pos;
    size_t fin_len = rc->out_len - pos;
    llhttp_errno_t e = llhttp_execute(&p, fin, fin_len);
    int finished = 0;
    if (e == HPE_OK && rc->resp.mode == HTTP_BODY_CLOSE) {
        e = llhttp_finish(&p);
        finished = 1;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        fprintf(stderr, "relayed response does not parse: %s (%s)\n%.*s\n",
                llhttp_errno_name(e), llhttp_get_error_reason(&p), (int)fin_len,
                fin);
        abort();
    }
    if (!cc.complete || p.status_code != status) {
        fprintf(stderr, "relayed response incomplete or other status\n");
        abort();
    }
    if (e == HPE_PAUSED && !finished &&
        (size_t)(llhttp_get_error_pos(&p) - fin) != fin_len) {
        fprintf(stderr, "bytes after the relayed response\n");
        abort();
    }
    if (cc.body_len != rc->body_len ||
        memcmp(cc.body, rc->body, rc->body_len) != 0) {
        fprintf(stderr, "relayed body differs\n");
        abort();
    }
}

/* http_build_response_head, and the same head built the long way: a copy
 * that claims no canon bytes, so no run of lines goes out whole.  Both
 * must write the same bytes. */
static int build_head(char *out, size_t cap, const llhttp_t *p,
                      const struct http_head *h,
                      const struct http_response *resp, int client_minor,
                      bool keep_alive)
{
    static struct http_head slow;
    static char alt[16384];
    int n = http_build_response_head(out, cap, p, h, resp, client_minor,
                                     keep_alive);
    slow = *h;
    slow.canon_bytes = UINT32_MAX;
    int m = http_build_response_head(alt, sizeof(alt), p, &slow, resp,
                                     client_minor, keep_alive);
    if (n >= 0 && (m != n || memcmp(alt, out, (size_t)n) != 0)) {
        fprintf(stderr, "the head's run differs from its field lines\n");
        abort();
    }
    return n;
}

/* A tunnel's 101: the head built for the client parses as one complete
 * 101 with an Upgrade field and nothing after it. */
static void check_tunnel(struct resp_ctx *rc, llhttp_t *src, int keep_alive)
{
    static struct check_ctx cc;
    char *head = rc->out + rc->out_len;
    int n = build_head(head, 16384 - rc->out_len, src, &rc->head, &rc->resp,
                       rc->client_minor, keep_alive);
    if (n < 0)
        return; /* too large: a 502 */
    llhttp_settings_t s;
    http_settings_init(&s);
    s.on_message_complete = chk_complete;
    memset(&cc, 0, sizeof(cc));
    cc.head.headers = cc.hdrs;
    cc.head.max_headers = MAXH + 8;
    http_head_reset(&cc.head, head);
    llhttp_t p;
    llhttp_init(&p, HTTP_RESPONSE, &s);
    p.data = &cc;
    llhttp_errno_t e = llhttp_execute(&p, head, (size_t)n);
    if (e != HPE_PAUSED || !cc.complete || p.status_code != 101 ||
        !(cc.head.seen & (1u << HH_UPGRADE)) ||
        llhttp_get_error_pos(&p) != head + n) {
        fprintf(stderr, "relayed 101 is wrong: %s\n%.*s\n",
                llhttp_errno_name(e), n, head);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct resp_ctx rc;
    static char out[OUT_CAP];
    static char body[OUT_CAP];
    static llhttp_settings_t s;
    static int ready;
    if (!ready) {
        http_settings_init(&s);
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        ready = 1;
    }
    if (size < 1 || size > OUT_CAP / 4)
        return 0;
    unsigned flags = data[0];
    data++;
    size--;
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    memset(&rc, 0, sizeof(rc));
    rc.out = out;
    rc.body = body;
    rc.method = (flags & 1) ? HTTP_HEAD : HTTP_GET;
    rc.client_minor = (flags & 2) ? 0 : 1;
    rc.upgrade = (flags & 8) != 0 && rc.client_minor == 1; /* as http.c */
    int keep_alive = (flags & 4) != 0;
    llhttp_t p;
    llhttp_init(&p, HTTP_RESPONSE, &s);
    p.data = &rc;
    rc.head.headers = rc.hdrs;
    rc.head.max_headers = MAXH;
    size_t off = 0;
    llhttp_errno_t e;
    for (;;) {
        http_head_reset(&rc.head, buf);
        e = llhttp_execute(&p, buf + off, size - off);
        if (e != HPE_PAUSED)
            goto out; /* incomplete or invalid head: no response relayed */
        off = (size_t)(llhttp_get_error_pos(&p) - buf);
        llhttp_resume(&p);
        if (!rc.checked || rc.resp.status != 0) {
            if (!rc.checked || rc.resp.status != 502 || !rc.resp.error)
                abort();
            goto out;
        }
        if (!rc.resp.interim)
            break;
        if (++rc.ninterim > HTTP_MAX_INTERIM)
            goto out; /* 502: a backend cannot hold the session with 1xx */
        if (rc.client_minor == 1) {
            int n = build_head(out + rc.out_len, 16384 - rc.out_len, &p,
                               &rc.head, &rc.resp, 1, 1);
            if (n < 0)
                goto out;
            rc.out_len += (size_t)n;
        }
        llhttp_reset(&p); /* the final response starts afresh */
        rc.checked = 0;
    }
    if (rc.resp.tunnel) {
        if (!rc.upgrade)
            abort(); /* a 101 nobody asked for is a 502 */
        check_tunnel(&rc, &p, keep_alive);
        goto out;
    }
    int status = p.status_code;
    if (status < 200)
        abort();
    if (rc.resp.mode == HTTP_BODY_CLOSE)
        keep_alive = 0; /* as client.c */
    int n = build_head(out + rc.out_len, 16384 - rc.out_len, &p, &rc.head,
                       &rc.resp, rc.client_minor, keep_alive);
    if (n < 0)
        goto out;
    rc.out_len += (size_t)n;
    e = llhttp_execute(&p, buf + off, size - off);
    if (e == HPE_OK && !rc.complete && rc.resp.mode != HTTP_BODY_NONE) {
        /* the backend closes here: only a close-delimited body ends well */
        e = llhttp_finish(&p);
    }
    if ((e != HPE_OK && e != HPE_PAUSED) || !rc.complete)
        goto out; /* truncated or invalid: lbproxy closes, never completes */
    if (e == HPE_PAUSED) {
        /* bytes after the final response belong to no request: they must
         * not be in what was relayed (check_relayed), and the connection
         * must not be reused (session_upstream.c pool_or_close: upstream_extra)
         */
        size_t end = (size_t)(llhttp_get_error_pos(&p) - buf);
        if (end > size)
            abort();
    }
    check_relayed(&rc, status);
out:
    free(buf);
    return 0;
}
