/*
 * http_build: rebuilding message heads - the request head sent upstream and
 * the response head sent to the client - from the parsed spans.  Fields and
 * start lines that need no change go out as runs of their source bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fmt.h"
#include "http.h"
#include "http_impl.h"

struct out {
    char *p;
    size_t len, cap;
    bool overflow;
};

/* The writers below are inlined, so that a head's struct out lives in
 * registers (a call that took its address would keep it in memory). */
#define HOT static inline __attribute__((always_inline))

HOT void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

HOT void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Appends a string literal (length known at compile time). */
#define put_lit(o, lit) put(o, "" lit, sizeof(lit) - 1)

HOT void put_span(struct out *o, const struct http_head *h, struct http_span s)
{
    put(o, sp(h, s), s.len);
}

HOT void put_u64(struct out *o, uint64_t v)
{
    char tmp[FMT_U64_LEN];
    size_t i = fmt_u64(tmp, v);
    put(o, tmp + i, sizeof(tmp) - i);
}

/* Consecutive fields copied as they are form a run of source bytes, sent
 * with one copy. */
struct run {
    uint32_t start, end; /* source offsets; end 0: empty */
};

HOT void run_flush(struct out *o, const struct http_head *h, struct run *r)
{
    if (r->end)
        put(o, h->base + r->start, r->end - r->start);
    r->start = r->end = 0;
}

/* Appends one field line.  A line that reads "Name: value\r\n" in the
 * source (the usual shape, hd->canon) joins the run of source bytes; any
 * other is rewritten in that shape. */
HOT void put_field(struct out *o, const struct http_head *h,
                   const struct http_header *hd, struct run *r)
{
    if (hd->canon) {
        if (r->end != hd->name.off) {
            run_flush(o, h, r);
            r->start = hd->name.off;
        }
        /* the CR LF after a value in a parsed head */
        r->end = hd->value.off + hd->value.len + 2;
        return;
    }
    run_flush(o, h, r);
    put_span(o, h, hd->name);
    put_lit(o, ": ");
    put_span(o, h, http_value(h, hd));
    put_lit(o, "\r\n");
}

/* Appends "Name: v1, v2, extra\r\n" merging every field of `kind` (that
 * was not named in Connection) with `extra`; `name` is "Name: ". */
HOT void put_merged(struct out *o, const struct http_head *h,
                    enum http_hdr kind, const char *name, size_t name_len,
                    const struct http_span *tokens, unsigned ntokens,
                    const char *extra, size_t extra_len)
{
    put(o, name, name_len);
    if (h->seen & (1u << kind)) {
        for (unsigned i = 0; i < h->nheaders; i++) {
            const struct http_header *hd = &h->headers[i];
            if (hd->kind != kind || hd->value.len == 0)
                continue;
            if (named_in(h, hd->name, tokens, ntokens))
                continue;
            put_span(o, h, hd->value);
            put_lit(o, ", ");
        }
    }
    put(o, extra, extra_len);
    put_lit(o, "\r\n");
}

#define LIT(s) "" s, sizeof(s) - 1

/* The end of the field lines when all of them read "Name: value\r\n"
 * (hd->canon) one right after the other from `start`: then they go out
 * as one run of source bytes, unchanged.  0 otherwise.  Canon lines do not
 * overlap and lie in order between the first and the end of the last, so
 * their bytes add up to that distance only if every line is canon and no
 * byte lies between two. */
static uint32_t lines_as_is(const struct http_head *h, uint32_t start)
{
    if (h->nheaders == 0 || h->headers[0].name.off != start)
        return 0;
    const struct http_header *last = &h->headers[h->nheaders - 1];
    uint32_t end = last->value.off + last->value.len + 2;
    return end - start == h->canon_bytes ? end : 0;
}

HOT void put_request_id(struct out *o, const char *id, size_t len)
{
    put_lit(o, "X-Request-Id: ");
    put(o, id, len);
    put_lit(o, "\r\n");
}

int http_build_request_head(char *buf, size_t cap, const llhttp_t *p,
                            const struct http_head *h,
                            const struct http_request *req,
                            const char *client_ip, size_t client_ip_len,
                            bool close_upstream)
{
    struct out o = {buf, 0, cap, false};
    struct http_span target = h->url;
    struct http_span authority = {0, 0};
    const char *url = sp(h, h->url);
    if (h->url.len > 7 && strncasecmp(url, "http://", 7) == 0) {
        /* absolute-form: forward origin-form, the authority becomes Host */
        uint32_t i = 7;
        while (i < h->url.len && url[i] != '/' && url[i] != '?')
            i++;
        authority.off = h->url.off + 7;
        authority.len = i - 7;
        target.off = h->url.off + i;
        target.len = h->url.len - i;
    }
    size_t mlen;
    const char *m = http_method_name(p->method, &mlen);
    struct run run = {0, 0};
    uint32_t url_end = h->url.off + h->url.len;
    if (authority.len == 0 && h->url.off > mlen && sp(h, h->url)[0] != '?' &&
        p->http_minor == 1 &&
        memcmp(h->base + url_end, " HTTP/1.1\r\n", 11) == 0 &&
        h->base[h->url.off - 1] == ' ' && h->base[h->url.off - 2] != ' ') {
        /* the request line goes out as it came: start the run with it.
         * llhttp read the method as it is spelt (strict mode matches it
         * byte for byte), then one space or more: with one, the method's
         * bytes stand right before it */
        run.start = h->url.off - 1 - (uint32_t)mlen;
        run.end = url_end + 11;
    } else {
        put(&o, m, mlen);
        put_lit(&o, " ");
        if (target.len == 0 || sp(h, target)[0] == '?')
            put_lit(&o, "/");
        put_span(&o, h, target);
        put_lit(&o, " HTTP/1.1\r\n");
    }

    /* dropped: hop-by-hop fields, those named in Connection, Expect (we
     * answer it), and the forwarding fields we rewrite below */
    uint32_t drop = HTTP_HOP_BY_HOP | (1u << HH_EXPECT) |
                    (1u << HH_X_FORWARDED_FOR) | (1u << HH_X_FORWARDED_PROTO) |
                    (1u << HH_VIA);
    if (req->request_id)
        drop |= 1u << HH_X_REQUEST_ID; /* ours replaces the client's */
    if (req->upgrade) /* kept, though hop-by-hop and named in Connection */
        drop &= ~(1u << HH_UPGRADE);
    uint32_t lines_end = 0;
    if (run.end && !(h->seen & drop) && req->nconn_tokens == 0)
        lines_end = lines_as_is(h, run.end); /* no field changes */
    if (lines_end)
        run.end = lines_end;
    for (unsigned i = 0; i < h->nheaders && !lines_end; i++) {
        const struct http_header *hd = &h->headers[i];
        if ((drop >> hd->kind) & 1)
            continue;
        if (req->nconn_tokens && !(req->upgrade && hd->kind == HH_UPGRADE) &&
            named_in(h, hd->name, req->conn_tokens, req->nconn_tokens))
            continue;
        if (authority.len > 0 && hd->kind == HH_HOST) {
            run_flush(&o, h, &run);
            put_lit(&o, "Host: ");
            put_span(&o, h, authority);
            put_lit(&o, "\r\n");
            continue;
        }
        put_field(&o, h, hd, &run);
    }
    run_flush(&o, h, &run);
    if (!(h->seen & (1u << HH_HOST))) {
        /* an HTTP/1.0 request without Host goes out as HTTP/1.1, which
         * requires one: the target's authority, or empty (RFC 9112 3.2) */
        put_lit(&o, "Host: ");
        put_span(&o, h, authority);
        put_lit(&o, "\r\n");
    }
    put_merged(&o, h, HH_X_FORWARDED_FOR, LIT("X-Forwarded-For: "),
               req->conn_tokens, req->nconn_tokens, client_ip, client_ip_len);
    if (!req->tls && !(h->seen & (1u << HH_VIA)) && p->http_minor == 1) {
        /* the usual case, in one copy of a constant */
        put_lit(&o, "X-Forwarded-Proto: http\r\nVia: 1.1 " PROXY_NAME "\r\n");
    } else {
        if (req->tls)
            put_lit(&o, "X-Forwarded-Proto: https\r\n");
        else
            put_lit(&o, "X-Forwarded-Proto: http\r\n");
        put_merged(&o, h, HH_VIA, LIT("Via: "), req->conn_tokens,
                   req->nconn_tokens,
                   p->http_minor == 0 ? "1.0 " PROXY_NAME : "1.1 " PROXY_NAME,
                   sizeof("1.1 " PROXY_NAME) - 1);
    }
    if (req->request_id)
        put_request_id(&o, req->request_id, req->request_id_len);
    if (req->chunked) {
        put_lit(&o, "Transfer-Encoding: chunked\r\n");
    } else if (p->flags & F_CONTENT_LENGTH) {
        put_lit(&o, "Content-Length: ");
        put_u64(&o, req->content_length);
        put_lit(&o, "\r\n");
    }
    if (req->upgrade)
        put_lit(&o, "Connection: upgrade\r\n");
    else if (close_upstream)
        put_lit(&o, "Connection: close\r\n");
    put_lit(&o, "\r\n");
    return o.overflow ? -1 : (int)o.len;
}

/* True when the response's status line reads "HTTP/1.1 NNN reason\r\n" in
 * the source and an HTTP/1.1 client gets it unchanged. */
static bool status_line_as_is(const llhttp_t *p, const struct http_head *h,
                              int client_minor)
{
    if (h->reason.len == 0 || h->reason.off < 13 || client_minor == 0 ||
        p->http_minor != 1)
        return false;
    const char *line = h->base + h->reason.off - 13; /* "HTTP/1.1 200 " */
    return memcmp(line, "HTTP/1.1 ", 9) == 0 && line[12] == ' ' &&
           (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0') ==
               p->status_code &&
           h->base[h->reason.off + h->reason.len] == '\r';
}

/* True when a Content-Length field reads "Content-Length: N\r\n" with N
 * as put_u64 writes it: llhttp has read N as digits alone (anything else
 * fails the parse), so it is the length, and without a leading zero it is
 * that length's one spelling. */
static bool length_as_is(const struct http_head *h,
                         const struct http_header *hd)
{
    return hd->canon && (hd->value.len == 1 || h->base[hd->value.off] != '0');
}

int http_build_response_head(char *buf, size_t cap, const llhttp_t *p,
                             const struct http_head *h,
                             const struct http_response *resp, int client_minor,
                             bool keep_alive)
{
    struct out o = {buf, 0, cap, false};
    const struct http_span *tokens = resp->conn_tokens;
    unsigned ntokens = resp->nconn_tokens;
    struct run run = {0, 0};
    if (status_line_as_is(p, h, client_minor)) {
        /* the status line goes out as it came: start the run with it */
        run.start = h->reason.off - 13;
        run.end = h->reason.off + h->reason.len + 2;
    } else {
        put_lit(&o, "HTTP/1.");
        put_u64(&o, client_minor == 0 ? 0 : 1);
        put_lit(&o, " ");
        put_u64(&o, p->status_code);
        put_lit(&o, " ");
        if (h->reason.len)
            put_span(&o, h, h->reason);
        else
            puts_(&o, http_status_text(p->status_code));
        put_lit(&o, "\r\n");
    }
    /* HEAD and 304 keep the length of the representation; an interim
     * response has none */
    uint32_t drop = HTTP_HOP_BY_HOP | (1u << HH_VIA);
    bool echo = resp->request_id && !resp->interim;
    if (resp->mode == HTTP_BODY_NONE && !resp->interim && !resp->tunnel)
        drop &= ~(1u << HH_CONTENT_LENGTH);
    if (echo)
        drop |= 1u << HH_X_REQUEST_ID;
    if (resp->tunnel) /* kept, though hop-by-hop and named in Connection */
        drop &= ~(1u << HH_UPGRADE);
    bool length_kept = false;
    uint32_t lines_end = 0;
    if (run.end && resp->mode == HTTP_BODY_LENGTH && h->length &&
        !(h->seen & drop & ~(1u << HH_CONTENT_LENGTH)) &&
        length_as_is(h, &h->headers[h->length - 1]))
        lines_end = lines_as_is(h, run.end); /* no field changes */
    if (lines_end) {
        run.end = lines_end;
        length_kept = true;
    }
    for (unsigned i = 0; i < h->nheaders && !lines_end; i++) {
        const struct http_header *hd = &h->headers[i];
        bool keep_length = false;
        if ((drop >> hd->kind) & 1) {
            /* a Content-Length line that reads as the one written below
             * would stays in the run (one copy fewer) */
            if (!(hd->kind == HH_CONTENT_LENGTH &&
                  resp->mode == HTTP_BODY_LENGTH && !length_kept &&
                  length_as_is(h, hd)))
                continue;
            keep_length = true;
        }
        if (ntokens && !(resp->tunnel && hd->kind == HH_UPGRADE) &&
            named_in(h, hd->name, tokens, ntokens))
            continue;
        length_kept |= keep_length;
        put_field(&o, h, hd, &run);
    }
    run_flush(&o, h, &run);
    if (!(h->seen & (1u << HH_VIA)) && p->http_minor == 1)
        put_lit(&o, "Via: 1.1 " PROXY_NAME "\r\n");
    else
        put_merged(&o, h, HH_VIA, LIT("Via: "), tokens, ntokens,
                   p->http_minor == 0 ? "1.0 " PROXY_NAME : "1.1 " PROXY_NAME,
                   sizeof("1.1 " PROXY_NAME) - 1);
    if (echo)
        put_request_id(&o, resp->request_id, resp->request_id_len);
    if (resp->mode == HTTP_BODY_LENGTH && !length_kept) {
        put_lit(&o, "Content-Length: ");
        put_u64(&o, resp->content_length);
        put_lit(&o, "\r\n");
    } else if (resp->mode == HTTP_BODY_CHUNKED) {
        put_lit(&o, "Transfer-Encoding: chunked\r\n");
    }
    if (resp->tunnel)
        put_lit(&o, "Connection: upgrade\r\n");
    else if (resp->interim)
        ; /* the final response says what happens to the connection */
    else if (!keep_alive)
        put_lit(&o, "Connection: close\r\n");
    else if (client_minor == 0)
        put_lit(&o, "Connection: keep-alive\r\n");
    put_lit(&o, "\r\n");
    return o.overflow ? -1 : (int)o.len;
}
