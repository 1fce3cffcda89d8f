/*
 * libFuzzer harness: the request path of lbproxy without sockets.  Input
 * bytes go through the strict llhttp request parser, http_request_check and
 * http_build_request_head, and the body is re-chunked as client.c does.
 * Invariant checked: whatever lbproxy would forward is read by a fresh
 * strict parser as exactly one request with the same method and body, which
 * passes http_request_check again (normalisation is stable), and the
 * check and the rebuild come to what their long ways give (same_check,
 * same_head).  Bytes after a complete request are the next pipelined
 * request on a keep-alive connection, parsed by the same parser after it
 * resumes (as client.c does, up to MAX_PIPELINED per input), each checked
 * the same way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAXH 64
#define MAX_BODY 65536
#define OUT_CAP (16384 + 4 * MAX_BODY)
#define MAX_PIPELINED 8

struct req_ctx {
    struct http_head head; /* first: parser->data points here */
    struct http_header hdrs[MAXH];
    struct http_request req;
    char *out;
    size_t out_len;
    uint64_t chunk_total;
    int complete;
    int too_big;
    char body[MAX_BODY * 2];
    size_t body_len;
};

static void append(struct req_ctx *c, const char *p, size_t n)
{
    if (c->out_len + n > OUT_CAP)
        abort(); /* the re-encoding can never outgrow its bound */
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static int on_headers_complete(llhttp_t *p)
{
    p->upgrade = 0; /* as client.c: never tunnel */
    return HPE_PAUSED;
}

static int on_chunk_header(llhttp_t *p)
{
    struct req_ctx *c = p->data;
    if (p->content_length > MAX_BODY ||
        c->chunk_total > MAX_BODY - p->content_length) {
        c->too_big = 1;
        return -1;
    }
    c->chunk_total += p->content_length;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct req_ctx *c = p->data;
    if (len == 0)
        return 0;
    if (c->body_len + len > sizeof(c->body))
        abort(); /* more body than the limit let through */
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    if (c->req.chunked) {
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
    struct req_ctx *c = p->data;
    if (c->req.chunked)
        append(c, "0\r\n\r\n", 5);
    c->complete = 1;
    return HPE_PAUSED;
}

/* The re-parse of what would be forwarded. */
struct check_ctx {
    struct http_head head;
    struct http_header hdrs[MAXH + 8];
    int complete;
    char body[MAX_BODY * 2];
    size_t body_len;
};

static int chk_body(llhttp_t *p, const char *at, size_t len)
{
    struct check_ctx *c = p->data;
    if (c->body_len + len > sizeof(c->body))
        abort();
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int chk_complete(llhttp_t *p)
{
    ((struct check_ctx *)p->data)->complete = 1;
    return HPE_PAUSED;
}

static int chk_headers(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED;
}

static void check_forwarded(const struct req_ctx *rc, const llhttp_t *orig,
                            size_t head_len)
{
    static struct check_ctx cc;
    llhttp_settings_t s;
    http_settings_init(&s);
    s.on_headers_complete = chk_headers;
    s.on_body = chk_body;
    s.on_message_complete = chk_complete;
    memset(&cc, 0, offsetof(struct check_ctx, body));
    cc.body_len = 0;
    llhttp_t p;
    llhttp_init(&p, HTTP_REQUEST, &s);
    p.data = &cc;
    cc.head.headers = cc.hdrs;
    cc.head.max_headers = MAXH + 8;
    http_head_reset(&cc.head, rc->out);
    llhttp_errno_t e = llhttp_execute(&p, rc->out, rc->out_len);
    if (e != HPE_PAUSED ||
        (size_t)(llhttp_get_error_pos(&p) - rc->out) != head_len) {
        fprintf(stderr, "forwarded head does not re-parse: %s\n%.*s\n",
                llhttp_errno_name(e), (int)rc->out_len, rc->out);
        abort();
    }
    if (p.method != orig->method || p.http_major != 1 || p.http_minor != 1)
        abort();
    struct http_request again;
    if (http_request_check(&p, &cc.head, MAX_BODY, &again) != 0) {
        fprintf(stderr, "forwarded head fails the check: %s\n%.*s\n",
                again.error, (int)head_len, rc->out);
        abort();
    }
    if (again.chunked != rc->req.chunked)
        abort();
    if (!rc->complete)
        return;
    llhttp_resume(&p);
    const char *rest = rc->out + head_len;
    size_t nrest = rc->out_len - head_len;
    if (nrest == 0 && !cc.complete)
        e = llhttp_execute(&p, rest, 0);
    else
        e = llhttp_execute(&p, rest, nrest);
    if (!cc.complete || (e == HPE_PAUSED &&
                         (size_t)(llhttp_get_error_pos(&p) - rest) != nrest)) {
        fprintf(stderr, "forwarded request is not exactly one message\n");
        abort();
    }
    if (cc.body_len != rc->body_len ||
        memcmp(cc.body, rc->body, rc->body_len) != 0) {
        fprintf(stderr, "forwarded body differs\n");
        abort();
    }
}

static struct req_ctx rc;
static char out[OUT_CAP];

/* The check and the rebuild take shortcuts for the usual heads (fields of
 * no interest and one Host: only the Host judged; every line "Name:
 * value": one run of source bytes).  A copy of the head that claims a
 * second Host and no canon bytes takes the long way; both must come to
 * the same answer and write the same bytes. */
static struct http_head slow;
static struct http_header slow_hdrs[MAXH];
static struct http_request slow_req;
static char slow_out[16384];

static void copy_slow(const struct http_head *h)
{
    slow = *h;
    memcpy(slow_hdrs, h->headers, h->nheaders * sizeof(*h->headers));
    slow.headers = slow_hdrs;
    slow.host_again = true;
    slow.canon_bytes = UINT32_MAX;
}

static void same_check(const llhttp_t *p, int st)
{
    if (http_request_check(p, &slow, MAX_BODY, &slow_req) != st ||
        memcmp(&rc.req, &slow_req,
               offsetof(struct http_request, conn_tokens)) ||
        rc.req.nconn_tokens != slow_req.nconn_tokens ||
        memcmp(rc.req.conn_tokens, slow_req.conn_tokens,
               rc.req.nconn_tokens * sizeof(rc.req.conn_tokens[0])))
        abort();
}

static void same_head(const llhttp_t *p, int n, bool close_upstream)
{
    int m = http_build_request_head(slow_out, sizeof(slow_out), p, &slow,
                                    &slow_req, "127.0.0.1", 9, close_upstream);
    if (m != n || memcmp(slow_out, out, (size_t)n) != 0)
        abort();
}

/* Parses, checks and forwards one request starting at buf + *off.  Returns
 * 1 when it completed on a keep-alive connection and bytes follow (the
 * next pipelined request starts at the updated *off), else 0. */
static int one_request(llhttp_t *p, char *buf, size_t *off, size_t size)
{
    memset(&rc, 0, offsetof(struct req_ctx, body));
    rc.body_len = 0;
    rc.out = out;
    rc.head.headers = rc.hdrs;
    rc.head.max_headers = MAXH;
    http_head_reset(&rc.head, buf);
    size_t start = *off;
    llhttp_errno_t e = llhttp_execute(p, buf + start, size - start);
    if (e != HPE_PAUSED) {
        if (e != HPE_OK) {
            size_t eoff = (size_t)(llhttp_get_error_pos(p) - buf);
            int st = http_parse_error_status(e, buf, size, eoff);
            if (st != 400 && st != 505)
                abort();
        }
        return 0;
    }
    size_t hoff = (size_t)(llhttp_get_error_pos(p) - buf);
    copy_slow(&rc.head);
    int st = http_request_check(p, &rc.head, MAX_BODY, &rc.req);
    same_check(p, st);
    if (st != 0) {
        if (rc.req.status < 400 || rc.req.status > 505 || !rc.req.error)
            abort();
        return 0;
    }
    int n = http_build_request_head(out, 16384, p, &rc.head, &rc.req,
                                    "127.0.0.1", 9, size & 1);
    if (n < 0)
        return 0;
    same_head(p, n, size & 1);
    rc.out_len = (size_t)n;
    llhttp_resume(p);
    /* body bytes in two pieces, as they may arrive from the socket */
    size_t mid = hoff + (size - hoff) / 2;
    e = llhttp_execute(p, buf + hoff, mid - hoff);
    if (e == HPE_OK)
        e = llhttp_execute(p, buf + mid, size - mid);
    if (e != HPE_OK && e != HPE_PAUSED && !rc.too_big)
        rc.complete = 0;
    if (e != HPE_OK && e != HPE_PAUSED)
        return 0; /* 400/413 before or while forwarding */
    check_forwarded(&rc, p, (size_t)n);
    if (e != HPE_PAUSED || !rc.complete || !rc.req.keep_alive)
        return 0;
    *off = (size_t)(llhttp_get_error_pos(p) - buf);
    llhttp_resume(p);
    return *off < size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static llhttp_settings_t s;
    static int ready;
    if (!ready) {
        http_settings_init(&s);
        s.on_headers_complete = on_headers_complete;
        s.on_chunk_header = on_chunk_header;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        ready = 1;
    }
    /* an exact-size copy, so ASan sees any read past the input */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    llhttp_t p;
    llhttp_init(&p, HTTP_REQUEST, &s);
    p.data = &rc;
    size_t off = 0;
    for (int i = 0; i < MAX_PIPELINED && one_request(&p, buf, &off, size); i++)
        ;
    free(buf);
    return 0;
}
