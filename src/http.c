/*
 * http: llhttp span callbacks (each field's kind recognised once), the
 * request and response rules llhttp leaves to us, and small error
 * responses.  The head rebuilds are in http_build.c.
 */
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_impl.h"

void http_head_reset(struct http_head *h, const char *base)
{
    h->base = base;
    h->nheaders = 0;
    h->url.off = h->url.len = 0;
    h->reason.off = h->reason.len = 0;
    h->seen = 0;
    h->host = 0;
    h->host_again = false;
    h->length = 0;
    h->canon_bytes = 0;
    h->too_many = false;
    h->split_value = false;
    h->loose = false;
    h->last = 0;
}

static inline uint64_t load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t load4(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Compares a field name (a token: llhttp admitted only token bytes) with a
 * lowercase literal of the same length >= 2, a word at a time.  Setting
 * bit 0x20 lowercases a letter; the only other byte it could map onto a
 * literal's '-' is CR, which no token holds, so the test is exact. */
static inline bool tok_ieq(const char *n, const char *lit, uint32_t len)
{
    if (len >= 8) {
        const uint64_t m = 0x2020202020202020ull;
        for (uint32_t i = 0; i + 8 <= len; i += 8)
            if ((load8(n + i) | m) != load8(lit + i))
                return false;
        return (load8(n + len - 8) | m) == load8(lit + len - 8);
    }
    if (len >= 4)
        return (load4(n) | 0x20202020u) == load4(lit) &&
               (load4(n + len - 4) | 0x20202020u) == load4(lit + len - 4);
    for (uint32_t i = 0; i < len; i++)
        if ((n[i] | 0x20) != lit[i])
            return false;
    return true;
}

/* The kind of a field name: one switch on the length, then one
 * comparison at most. */
static enum http_hdr classify(const char *n, uint32_t len)
{
#define IS(lit) tok_ieq(n, "" lit, sizeof(lit) - 1)
    switch (len) {
    case 0:
        return HH_EMPTY_NAME;
    case 2:
        return IS("te") ? HH_TE : HH_OTHER;
    case 3:
        return IS("via") ? HH_VIA : HH_OTHER;
    case 4:
        return IS("host") ? HH_HOST : HH_OTHER;
    case 6:
        return IS("expect") ? HH_EXPECT : HH_OTHER;
    case 7:
        if ((n[0] | 0x20) == 't')
            return IS("trailer") ? HH_TRAILER : HH_OTHER;
        return IS("upgrade") ? HH_UPGRADE : HH_OTHER;
    case 10:
        if ((n[0] | 0x20) == 'c')
            return IS("connection") ? HH_CONNECTION : HH_OTHER;
        return IS("keep-alive") ? HH_KEEP_ALIVE : HH_OTHER;
    case 12:
        return IS("x-request-id") ? HH_X_REQUEST_ID : HH_OTHER;
    case 14:
        return IS("content-length") ? HH_CONTENT_LENGTH : HH_OTHER;
    case 15:
        return IS("x-forwarded-for") ? HH_X_FORWARDED_FOR : HH_OTHER;
    case 16:
        return IS("proxy-connection") ? HH_PROXY_CONNECTION : HH_OTHER;
    case 17:
        if ((n[0] | 0x20) == 't')
            return IS("transfer-encoding") ? HH_TRANSFER_ENCODING : HH_OTHER;
        return IS("x-forwarded-proto") ? HH_X_FORWARDED_PROTO : HH_OTHER;
    default:
        return HH_OTHER;
    }
#undef IS
}

static void span_extend(struct http_span *s, const struct http_head *h,
                        const char *at, size_t len)
{
    if (s->len == 0)
        s->off = (uint32_t)(at - h->base);
    s->len += (uint32_t)len;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_head *h = p->data;
    span_extend(&h->url, h, at, len);
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    struct http_head *h = p->data;
    span_extend(&h->reason, h, at, len);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_head *h = p->data;
    if (h->last != 1) {
        if (h->nheaders == h->max_headers) {
            h->too_many = true;
            return HPE_USER;
        }
        struct http_header *hd = &h->headers[h->nheaders++];
        h->cur = hd;
        /* the value, kind and canon come with the value, which llhttp
         * reports for every field, even an empty one (on_header_value) */
        hd->name.off = (uint32_t)(at - h->base);
        hd->name.len = (uint32_t)len;
        h->last = 1;
        return 0;
    }
    h->cur->name.len += (uint32_t)len;
    return 0;
}

/* The first bytes of a field's value, len > 0, at `at`; ne is the end of
 * the name. */
static inline void value_begins(struct http_head *h, struct http_header *hd,
                                uint32_t ne, const char *at, size_t len)
{
    uint32_t off = (uint32_t)(at - h->base);
    hd->value.off = off;
    hd->value.len = (uint32_t)len;
    /* past "Name: " ("Name:\r\n value" is an obs-fold): field_scan then
     * looks at every field */
    if (off > ne + 2)
        h->loose = true;
    uint16_t sep; /* the two bytes after the name, ": " at once */
    memcpy(&sep, h->base + ne, 2);
    hd->canon = off == ne + 2 && memcmp(&sep, ": ", 2) == 0 &&
                (unsigned char)at[len - 1] > ' ';
    if (hd->canon) /* "Name: value\r\n" */
        h->canon_bytes += hd->name.len + (uint32_t)len + 4;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_head *h = p->data;
    struct http_header *hd = h->cur; /* llhttp reports a name first */
    uint32_t ne = hd->name.off + hd->name.len;
    if (h->last != 2) {
        h->last = 2;
        /* the name is complete: llhttp reports every value, even an
         * empty one, so this is the one place a field gets its kind */
        hd->kind = classify(sp(h, hd->name), hd->name.len);
        h->seen |= 1u << hd->kind;
        if (hd->kind != HH_OTHER) {
            if (hd->kind == HH_HOST) {
                if (h->host)
                    h->host_again = true;
                else
                    h->host = h->nheaders;
            } else if (hd->kind == HH_CONTENT_LENGTH) {
                h->length = h->nheaders; /* llhttp refuses a second */
            }
        }
        if (len > 0) {
            value_begins(h, hd, ne, at, len);
            return 0;
        }
        /* an empty value is reported with `at` wherever llhttp stands
         * (after the line end): anchor it right after the name */
        hd->value.off = ne;
        hd->value.len = 0;
        hd->canon = false;
        return 0;
    }
    if (len == 0)
        return 0;
    if (hd->value.len == 0) { /* after an empty piece */
        value_begins(h, hd, ne, at, len);
        return 0;
    }
    if (hd->canon) /* in pieces: the line is rewritten */
        h->canon_bytes -= hd->name.len + hd->value.len + 4;
    hd->canon = false;
    if (at != h->base + hd->value.off + hd->value.len)
        h->split_value = true; /* a span must be one run of bytes */
    hd->value.len += (uint32_t)len;
    return 0;
}

void http_settings_init(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_url = on_url;
    s->on_status = on_status;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
}

/* The blanks that may end a field value. */
static inline bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static void trim_value(const struct http_head *h, struct http_span *v)
{
    const char *s = sp(h, *v);
    while (v->len > 0 && blank(s[v->len - 1]))
        v->len--;
    while (v->len > 0 && blank(s[0])) {
        s++;
        v->off++;
        v->len--;
    }
}

/* True if anything but ':' and blanks sits between a field's name and its
 * value: llhttp folds an obs-fold line after an empty value into the value
 * ("Name:\r\n value"), which lbproxy refuses rather than normalises. */
static bool folded(const struct http_head *h, const struct http_header *hd)
{
    const char *s = h->base;
    for (uint32_t i = hd->name.off + hd->name.len; i < hd->value.off; i++)
        if (s[i] != ':' && !blank(s[i]))
            return true;
    return false;
}

/* Readies a field the checks judge: drops the blanks that end its value
 * (llhttp's value span starts at the first non-blank byte but keeps the
 * trailing ones).  False for a folded line (see folded).  Only for a head
 * marked loose may a field be folded; a field of kind HH_OTHER in any
 * other head is never looked at (the rebuild copies its line as it is, or
 * rewrites it with http_value). */
static inline bool field_scan(const struct http_head *h, struct http_header *hd)
{
    const char *b = h->base;
    uint32_t ne = hd->name.off + hd->name.len;
    struct http_span *v = &hd->value;
    /* any byte <= ' ' may be a blank: the exact test is in the loop */
    if (v->len > 0 && (unsigned char)b[v->off + v->len - 1] <= ' ') {
        while (v->len > 0 && blank(b[v->off + v->len - 1]))
            v->len--;
    }
    /* "Name:value", "Name: value" and an empty value are never folded */
    return !(v->off > ne + 2 && folded(h, hd));
}

/* Splits a comma-separated list value into trimmed token spans. */
static unsigned split_list(const struct http_head *h, struct http_span v,
                           struct http_span *out, unsigned max, bool *overflow)
{
    unsigned n = 0;
    const char *s = sp(h, v);
    uint32_t i = 0;
    while (i < v.len) {
        uint32_t start = i;
        while (i < v.len && s[i] != ',')
            i++;
        struct http_span t = {v.off + start, i - start};
        trim_value(h, &t);
        if (t.len > 0) {
            if (n == max)
                *overflow = true;
            else
                out[n++] = t;
        }
        i++; /* skip the comma */
    }
    return n;
}

/* True when an Upgrade field offers h2c: lbproxy speaks HTTP/1.1 to its
 * backends and does not tunnel HTTP/2, so such a request goes out as plain
 * HTTP/1.1 with its upgrade headers dropped (the backend answers in 1.1). */
static bool offers_h2c(const struct http_head *h)
{
    for (unsigned i = 0; i < h->nheaders; i++) {
        const struct http_header *hd = &h->headers[i];
        struct http_span t[HTTP_MAX_CONN_TOKENS];
        bool overflow = false;
        if (hd->kind != HH_UPGRADE)
            continue;
        unsigned n =
            split_list(h, hd->value, t, HTTP_MAX_CONN_TOKENS, &overflow);
        for (unsigned k = 0; k < n; k++)
            if (span_ieq(h, t[k], "h2c"))
                return true;
        if (overflow)
            return true; /* too long a list to judge: no upgrade */
    }
    return false;
}

/* Bytes a Host value (reg-name, IPv4, [IPv6], port) may hold: letters,
 * digits and .-:[]_~%!$&'()*+;= ('1' at their code; every byte has its
 * place, so no range test comes first). */
static bool host_byte(unsigned char c)
{
    static const char ok[257] = "0000000000000000" /* 0x00 */
                                "0000000000000000" /* 0x10 */
                                "0100111111110110" /* 0x20 */
                                "1111111111110100" /* 0x30 */
                                "0111111111111111" /* 0x40 */
                                "1111111111110101" /* 0x50 */
                                "0111111111111111" /* 0x60 */
                                "1111111111100010" /* 0x70 */
                                "0000000000000000" /* 0x80 */
                                "0000000000000000" /* 0x90 */
                                "0000000000000000" /* 0xa0 */
                                "0000000000000000" /* 0xb0 */
                                "0000000000000000" /* 0xc0 */
                                "0000000000000000" /* 0xd0 */
                                "0000000000000000" /* 0xe0 */
                                "0000000000000000" /* 0xf0 */;
    return ok[c] == '1';
}

static bool host_valid(const struct http_head *h, struct http_span v)
{
    const unsigned char *s = (const unsigned char *)sp(h, v);
    for (uint32_t i = 0; i < v.len; i++)
        if (!host_byte(s[i]))
            return false;
    return true;
}

static bool is_token_list(const struct http_head *h, struct http_span v)
{
    const char *s = sp(h, v);
    for (uint32_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~, \t", c)))
            return false;
    }
    return true;
}

static int reject(struct http_request *req, int status, const char *why)
{
    req->status = status;
    req->error = why;
    return status;
}

static bool method_idempotent(int m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_PUT ||
           m == HTTP_DELETE || m == HTTP_OPTIONS || m == HTTP_TRACE;
}

int http_request_check(const llhttp_t *p, struct http_head *h,
                       uint64_t max_body, struct http_request *req)
{
    /* every field but the token array, which nconn_tokens bounds */
    memset(req, 0, offsetof(struct http_request, conn_tokens));
    req->nconn_tokens = 0;
    if (h->too_many)
        return reject(req, 431, "too many header fields");
    if (p->http_major != 1 || p->http_minor > 1)
        return reject(req, 505, "unsupported HTTP version");
    if (p->method == HTTP_CONNECT)
        return reject(req, 405, "CONNECT is not supported");
    if (h->url.len == 0)
        return reject(req, 400, "empty request target");
    const char *url = sp(h, h->url);
    bool absolute = h->url.len > 7 && strncasecmp(url, "http://", 7) == 0;
    if (url[0] != '/' && !absolute &&
        !(p->method == HTTP_OPTIONS && h->url.len == 1 && url[0] == '*'))
        return reject(req, 400, "invalid request target");
    if (absolute) {
        struct http_span auth = {h->url.off + 7, 0};
        while (7 + auth.len < h->url.len && url[7 + auth.len] != '/' &&
               url[7 + auth.len] != '?')
            auth.len++;
        if (auth.len == 0 || !host_valid(h, auth))
            return reject(req, 400, "invalid authority in request target");
    }

    if (h->split_value)
        return reject(req, 400, "control character in header value");
    unsigned hosts = 0, tes = 0;
    bool keep_alive_token = false, close_token = false;
    bool upgrade_token = false, conn_overflow = false;
    req->idempotent = method_idempotent(p->method);
    /* A head of fields of kind HH_OTHER and one Host (the usual request)
     * has only its Host judged: the loop below would skip the others. */
    const uint32_t plain = (1u << HH_OTHER) | (1u << HH_HOST);
    unsigned nscan = h->nheaders;
    if (!h->loose && !(h->seen & ~plain) && !h->host_again) {
        nscan = 0;
        if (h->host) {
            struct http_header *hd = &h->headers[h->host - 1];
            hosts = 1;
            /* its trailing blanks dropped; in a head that is not loose no
             * line is folded, so the scan cannot refuse it */
            (void)field_scan(h, hd);
            if (!host_valid(h, hd->value))
                return reject(req, 400, "invalid Host");
        }
    }
    for (unsigned i = 0; i < nscan; i++) {
        struct http_header *hd = &h->headers[i];
        if (hd->name.len == 0)
            return reject(req, 400, "empty header name");
        if (hd->kind == HH_OTHER && !h->loose)
            continue; /* nothing to judge */
        /* control bytes in a value never get here: strict llhttp refuses
         * them (test_llhttp_refuses_control_bytes); a folded line does */
        if (!field_scan(h, hd))
            return reject(req, 400, "control character in header value");
        switch ((enum http_hdr)hd->kind) {
        case HH_HOST:
            hosts++;
            if (!host_valid(h, hd->value))
                return reject(req, 400, "invalid Host");
            break;
        case HH_TRANSFER_ENCODING:
            tes++;
            if (p->http_minor == 0)
                return reject(req, 400, "Transfer-Encoding in HTTP/1.0");
            if (!span_ieq(h, hd->value, "chunked"))
                return reject(req, is_token_list(h, hd->value) ? 501 : 400,
                              "Transfer-Encoding other than chunked");
            break;
        case HH_CONNECTION: {
            struct http_span *t = req->conn_tokens + req->nconn_tokens;
            unsigned n = split_list(h, hd->value, t,
                                    HTTP_MAX_CONN_TOKENS - req->nconn_tokens,
                                    &conn_overflow);
            for (unsigned k = 0; k < n; k++) {
                if (span_ieq(h, t[k], "close"))
                    close_token = true;
                else if (span_ieq(h, t[k], "keep-alive"))
                    keep_alive_token = true;
                else if (span_ieq(h, t[k], "upgrade"))
                    upgrade_token = true;
                else if (span_ieq(h, t[k], "host") ||
                         span_ieq(h, t[k], "content-length") ||
                         span_ieq(h, t[k], "transfer-encoding"))
                    return reject(req, 400,
                                  "Connection names a framing "
                                  "header");
            }
            req->nconn_tokens += n;
            break;
        }
        case HH_EXPECT:
            if (!span_ieq(h, hd->value, "100-continue"))
                return reject(req, 417, "unsupported Expect");
            req->expect_continue = true;
            break;
        default:
            break;
        }
    }
    if (conn_overflow)
        return reject(req, 400, "too many Connection options");
    if (p->http_minor == 1 && hosts != 1)
        return reject(req, 400, hosts ? "several Host fields" : "no Host");
    if (hosts > 1)
        return reject(req, 400, "several Host fields");
    if (tes > 1)
        return reject(req, 400, "several Transfer-Encoding fields");
    if (tes && (p->flags & F_CONTENT_LENGTH))
        return reject(req, 400, "Content-Length with Transfer-Encoding");
    req->chunked = (p->flags & F_CHUNKED) != 0;
    if (req->chunked != (tes == 1))
        return reject(req, 400, "inconsistent Transfer-Encoding");
    if (p->flags & F_CONTENT_LENGTH) {
        req->content_length = p->content_length;
        if (p->content_length > max_body)
            return reject(req, 413, "body larger than the limit");
    }
    req->has_body = req->chunked || req->content_length > 0;
    if (!req->has_body)
        req->expect_continue = false;
    req->keep_alive =
        p->http_minor == 1 ? !close_token : keep_alive_token && !close_token;
    /* RFC 9110 7.8: an Upgrade in HTTP/1.0 is ignored; one with a body is
     * not tunnelled (the tunnel would start mid-body) */
    req->upgrade = upgrade_token && (h->seen & (1u << HH_UPGRADE)) &&
                   p->http_minor == 1 && !req->has_body && !offers_h2c(h);
    return 0;
}

int http_response_check(const llhttp_t *p, struct http_head *h, int method,
                        int client_minor, bool upgrade,
                        struct http_response *resp)
{
    /* every field but the token array, which nconn_tokens bounds */
    memset(resp, 0, offsetof(struct http_response, conn_tokens));
    resp->nconn_tokens = 0;
    resp->upstream_keep_alive = resp->interim = resp->tunnel = false;
    resp->content_length = 0;
    int status = p->status_code;
    if (h->too_many) {
        resp->status = 502;
        resp->error = "too many response header fields";
        return 502;
    }
    if (p->http_major != 1 || status < 100 || status > 999) {
        resp->status = 502;
        resp->error = "invalid response status or version";
        return 502;
    }
    if (status == 101 && !(upgrade && (h->seen & (1u << HH_UPGRADE)))) {
        /* a switch nobody asked for, or one that names no protocol */
        resp->status = 502;
        resp->error = "101 to a request that did not ask to upgrade";
        return 502;
    }
    bool close_token = false, keep_alive_token = false, overflow = false;
    unsigned tes = 0;
    /* a head of fields of kind HH_OTHER (and Content-Length, which
     * llhttp read) is not looked at field by field */
    const uint32_t plain = (1u << HH_OTHER) | (1u << HH_CONTENT_LENGTH);
    unsigned nscan = h->loose || (h->seen & ~plain) ? h->nheaders : 0;
    if (h->split_value) {
        resp->status = 502;
        resp->error = "control character in response header";
        return 502;
    }
    for (unsigned i = 0; i < nscan; i++) {
        struct http_header *hd = &h->headers[i];
        if (hd->kind == HH_OTHER && !h->loose)
            continue;
        if (!field_scan(h, hd)) {
            resp->status = 502;
            resp->error = "control character in response header";
            return 502;
        }
        if (hd->kind == HH_TRANSFER_ENCODING) {
            tes++;
        } else if (hd->kind == HH_CONNECTION) {
            struct http_span *t = resp->conn_tokens + resp->nconn_tokens;
            unsigned n = split_list(h, hd->value, t,
                                    HTTP_MAX_CONN_TOKENS - resp->nconn_tokens,
                                    &overflow);
            for (unsigned k = 0; k < n; k++) {
                if (span_ieq(h, t[k], "close"))
                    close_token = true;
                else if (span_ieq(h, t[k], "keep-alive"))
                    keep_alive_token = true;
            }
            resp->nconn_tokens += n;
        }
    }
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool has_cl = (p->flags & F_CONTENT_LENGTH) != 0;
    if (tes && has_cl) {
        resp->status = 502;
        resp->error = "Content-Length with Transfer-Encoding";
        return 502;
    }
    if (tes && !chunked) {
        resp->status = 502;
        resp->error = "unsupported response Transfer-Encoding";
        return 502;
    }
    resp->upstream_keep_alive =
        p->http_minor == 1 ? !close_token : keep_alive_token && !close_token;
    if (status == 101) {
        resp->tunnel = true; /* the connection is the tunnel's from here */
        resp->upstream_keep_alive = false;
        resp->mode = HTTP_BODY_NONE;
    } else if (status < 200) {
        resp->interim = true; /* says nothing about the connection */
        resp->mode = HTTP_BODY_NONE;
    } else if (method == HTTP_HEAD || status == 204 || status == 304) {
        resp->mode = HTTP_BODY_NONE;
    } else if (chunked) {
        resp->mode = client_minor == 1 ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
    } else if (has_cl) {
        resp->mode = HTTP_BODY_LENGTH;
        resp->content_length = p->content_length;
    } else {
        /* read until the backend closes: never reusable */
        resp->upstream_keep_alive = false;
        resp->mode = client_minor == 1 ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
    }
    return 0;
}

int http_parse_error_status(llhttp_errno_t err, const char *buf, size_t len,
                            size_t err_off)
{
    if (err == HPE_INVALID_VERSION && err_off >= 9 && err_off <= len &&
        (err_off == len || buf[err_off] == '\r')) {
        /* " HTTP/d.d" with a version llhttp does not speak: 505 */
        const char *v = buf + err_off - 9;
        if (memcmp(v, " HTTP/", 6) == 0 && v[6] >= '0' && v[6] <= '9' &&
            v[7] == '.' && v[8] >= '0' && v[8] <= '9')
            return 505;
    }
    return 400;
}

const char *http_method_name(int method, size_t *len)
{
    /* llhttp's name and its length, looked up once per method */
    static const char *names[256];
    static unsigned char lens[256];
    unsigned idx = (unsigned)method & 0xff;
    if (!names[idx]) {
        names[idx] = llhttp_method_name((llhttp_method_t)method);
        lens[idx] = (unsigned char)strlen(names[idx]);
    }
    *len = lens[idx];
    return names[idx];
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Unknown";
}

int http_error_response(char *out, size_t cap, int status, bool close)
{
    const char *text = http_status_text(status);
    return snprintf(out, cap,
                    "HTTP/1.1 %d %s\r\n"
                    "Content-Type: text/plain\r\n"
                    "Content-Length: %zu\r\n"
                    "%s%s"
                    "\r\n"
                    "%d %s\n",
                    status, text, strlen(text) + 5,
                    status == 503 ? "Retry-After: 1\r\n" : "",
                    close ? "Connection: close\r\n" : "", status, text);
}

int http_chunk_header(char *out, size_t n)
{
    return sprintf(out, "%zx\r\n", n);
}

size_t http_frame_body(char *out, const char *at, size_t len, bool chunked)
{
    if (len == 0)
        return 0;
    size_t n = 0;
    if (chunked)
        n = (size_t)http_chunk_header(out, len);
    memcpy(out + n, at, len);
    n += len;
    if (chunked) {
        memcpy(out + n, "\r\n", 2);
        n += 2;
    }
    return n;
}
