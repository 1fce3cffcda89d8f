/*
 * session_client: the client side of a session - parsing a request head
 * out of client.in, the checks llhttp leaves to us, building the head sent
 * upstream, and moving the request body into upstream.out as room allows.
 * It answers to session.c through enum step and never calls it.
 */
#include "session_impl.h"

#include <string.h>
#include <strings.h>

#include "log.h"
#include "route.h"

static llhttp_settings_t req_settings;
/* A request parser as llhttp_init leaves it: copied for each request
 * (cheaper than initialising one afresh). */
static llhttp_t req_parser;

static struct request *req_of(llhttp_t *p)
{
    return container_of(p, struct request, parser);
}

/* ---- llhttp callbacks ---- */

static int on_headers_complete(llhttp_t *p)
{
    /* The parser never switches protocols: an upgrade request is parsed
     * as a whole HTTP/1.1 request, and only a 101 from the backend (seen
     * by the upstream side) turns the bytes after it into a tunnel. */
    p->upgrade = 0;
    return HPE_PAUSED;
}

/* A chunk size line was parsed (its size in p->content_length): refuse
 * the body as soon as the announced total passes the limit, before any
 * byte of that chunk is forwarded (else llhttp would wait for up to
 * 2^64-1 bytes). */
static int on_chunk_header(llhttp_t *p)
{
    struct request *r = req_of(p);
    uint64_t max = cfg_of(r->s)->max_body_bytes;
    if (p->content_length > max || r->body_total > max - p->content_length) {
        r->body_too_big = true;
        return -1;
    }
    r->body_total += p->content_length;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct request *r = req_of(p);
    struct buf *out = &r->s->upstream.out;
    out->len +=
        (uint32_t)http_frame_body(buf_end(out), at, len, r->hreq.chunked);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct request *r = req_of(p);
    struct session *s = r->s;
    if (r->hreq.chunked)
        buf_append(pool_of(s), &s->upstream.out, "0\r\n\r\n", 5);
    s->client.msg = HALF_DONE;
    return HPE_PAUSED;
}

void cside_init(void)
{
    http_settings_init(&req_settings);
    req_settings.on_headers_complete = on_headers_complete;
    req_settings.on_body = on_body;
    req_settings.on_chunk_header = on_chunk_header;
    req_settings.on_message_complete = on_message_complete;
    llhttp_init(&req_parser, HTTP_REQUEST, &req_settings);
}

/* ---- the head ---- */

void cside_begin(struct session *s)
{
    struct request *r = s->req;
    struct buf *in = &s->client.in;
    buf_compact(in); /* a pipelined request starts at the front */
    r->parser = req_parser;
    r->parser.data = &r->head;
    r->head.headers = r->headers;
    r->head.max_headers = cfg_of(s)->max_headers;
    http_head_reset(&r->head, in->data);
    r->parse_off = 0;
    r->request_id_len = 0;
    s->client.msg = HALF_HEAD;
}

/* The request line for the record's method and path (only the CSV log
 * writes them: nothing without session_ctx.record_detail). */
static void copy_request_line(struct request *r)
{
    if (!r->s->ctx->record_detail)
        return;
    const char *m = llhttp_method_name((llhttp_method_t)r->parser.method);
    size_t n = strlen(m);
    if (n >= sizeof(r->method_name))
        n = sizeof(r->method_name) - 1;
    memcpy(r->method_name, m, n);
    r->method_name[n] = '\0';
    r->method_len = (uint8_t)n;
    n = r->head.url.len;
    if (n >= sizeof(r->path))
        n = sizeof(r->path) - 1;
    memcpy(r->path, r->head.base + r->head.url.off, n);
    r->path[n] = '\0';
    r->path_len = (uint16_t)n;
}

/* A request refused before it reaches a backend: answered, then closed. */
static enum step reject(struct session *s, int status)
{
    s->keep_alive = false;
    s->want_close = true;
    return step_reply(s->req, status, RECORD_BAD_REQUEST);
}

/* The Host a request names: its absolute-form target's authority, else
 * its Host field (http_request_check allows one); *path gets the path. */
static void request_host(const struct request *r, const char **host,
                         size_t *hostlen, const char **path, size_t *pathlen)
{
    const char *url = r->head.base + r->head.url.off;
    size_t n = r->head.url.len, skip = 0;
    *host = NULL;
    *hostlen = 0;
    if (n > 7 && strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (n > 8 && strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    if (skip) {
        const char *a = url + skip, *end = url + n;
        const char *slash = memchr(a, '/', (size_t)(end - a));
        *host = a;
        *hostlen = (size_t)((slash ? slash : end) - a);
        *path = slash ? slash : "/";
        *pathlen = slash ? (size_t)(end - slash) : 1;
        return;
    }
    *path = url;
    *pathlen = n;
    if (r->head.host) {
        const struct http_header *hd = &r->head.headers[r->head.host - 1];
        *host = r->head.base + hd->value.off;
        *hostlen = hd->value.len;
    }
}

/* Chooses the request's pool (route.h): 0, or the status to answer
 * (404: routes serve this host, none this path; 421: none serves it). */
static int route_request(struct session *s, struct request *r)
{
    struct pool_set *ps = s->ctx->gen;
    int idx = ps->default_pool;
    if (ps->nroutes > 0) {
        const char *host, *path;
        size_t hl, pl;
        request_host(r, &host, &hl, &path, &pl);
        idx = route_lookup(ps->routes, host, hl, path, pl);
    }
    if (idx < 0)
        return idx == ROUTE_MISDIRECTED ? 421 : 404;
    r->gen = ps;
    ps->refs++;
    r->pool = ps->pools[idx];
    return 0;
}

/* A whole request head was parsed: check it and build the upstream head. */
static enum step head_done(struct session *s)
{
    const struct config *cfg = cfg_of(s);
    struct request *r = s->req;
    struct buf_pool *pool = pool_of(s);
    r->method = (int)r->parser.method;
    copy_request_line(r);
    if (r->parse_off > cfg->max_head_bytes)
        return reject(s, 431);
    if (http_request_check(&r->parser, &r->head, cfg->max_body_bytes,
                           &r->hreq) != 0) {
        log_debug("%s: %d %s", s->addr, r->hreq.status, r->hreq.error);
        return reject(s, r->hreq.status);
    }
    int miss = route_request(s, r);
    if (miss)
        return reject(s, miss);
    s->keep_alive = r->hreq.keep_alive && !s->ctx->draining;
    r->request_id_len = 0;
    if (cfg->request_id) {
        r->request_id_len = (uint8_t)reqid_assign(&r->head, r->request_id);
        r->hreq.request_id = r->request_id;
        r->hreq.request_id_len = r->request_id_len;
    }
    r->hreq.tls = s->client.tr->secure;
    /* Once per request, while the head's spans are valid: what the hash
     * policy of the request's pool picks by (nothing for other policies). */
    if (balancer_wants_key(r->pool->bal)) {
        r->hash_key =
            hashkey_of(&pcfg(r)->hash_key, &r->head, s->ip, s->ip_len, NULL);
        r->keyed = true;
    }
    if (!buf_get(pool, &s->upstream.out))
        return step_reply(r, 503, RECORD_BAD_REQUEST);
    int n = http_build_request_head(
        s->upstream.out.data, pool->size - FRAMING_SLACK, &r->parser, &r->head,
        &r->hreq, s->ip, s->ip_len, !pcfg(r)->persistent);
    if (n < 0)
        return reject(s, 431);
    buf_commit(pool, &s->upstream.out, (uint32_t)n);
    r->req_bytes = r->parse_off;
    buf_consume(&s->client.in, r->parse_off); /* the head is upstream now */
    llhttp_resume(&r->parser);
    s->client.msg = HALF_BODY;
    if (r->hreq.expect_continue && buf_pending(&s->client.in) == 0 &&
        buf_get(pool, &s->client.out)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        buf_append(pool, &s->client.out, cont, sizeof(cont) - 1);
    }
    if (r->hreq.has_body) {
        half_deadline(s->ctx->loop, &s->client, HW_BODY,
                      now_us(s) + cfg->client_body_timeout_ms * 1000ull);
        return STEP_HEAD;
    }
    half_deadline_clear(&s->client);
    /* End the message now, so that an answer of our own (a connect
     * failure found at once) can keep the connection alive.  llhttp ends
     * a body-less message without reading a byte (it would only call
     * on_message_complete), and the parser starts over for the next
     * request, so it is not run again. */
    r->body_started = true;
    s->client.msg = HALF_DONE;
    buf_put(pool, &s->client.in, false);
    return STEP_HEAD;
}

enum step cside_head(struct session *s)
{
    const struct config *cfg = cfg_of(s);
    struct request *r = s->req;
    struct buf *in = &s->client.in;
    if (r->parse_off == in->len)
        return STEP_WAIT;
    const char *start = in->data + r->parse_off;
    llhttp_errno_t e =
        llhttp_execute(&r->parser, start, in->len - r->parse_off);
    if (e == HPE_OK) {
        r->parse_off = in->len;
        if (in->len > cfg->max_head_bytes || in->len >= pool_of(s)->size) {
            copy_request_line(r);
            return reject(s, 431);
        }
        return STEP_WAIT;
    }
    if (e == HPE_PAUSED) {
        r->parse_off = (uint32_t)(llhttp_get_error_pos(&r->parser) - in->data);
        return head_done(s);
    }
    copy_request_line(r);
    log_debug("%s: bad request: %s", s->addr, llhttp_errno_name(e));
    if (r->head.too_many)
        return reject(s, 431);
    size_t err_off = (size_t)(llhttp_get_error_pos(&r->parser) - in->data);
    return reject(s, http_parse_error_status(e, in->data, in->len, err_off));
}

/* ---- the body ---- */

bool cside_complete(const struct session *s)
{
    return s->client.msg == HALF_DONE;
}

enum step cside_body(struct session *s)
{
    struct request *r = s->req;
    struct buf_pool *pool = pool_of(s);
    struct buf *in = &s->client.in, *out = &s->upstream.out;
    if (s->client.msg != HALF_BODY || !out->data || r->body_dropped)
        return STEP_WAIT;
    uint32_t avail = in->data ? buf_pending(in) : 0;
    if (r->body_started && avail == 0)
        return STEP_WAIT;
    /* Bytes already sent leave `out`: from now on the request cannot be
     * sent again on another connection. */
    if (out->off > 0 && out->off == out->len) {
        out->off = out->len = 0;
        r->ub_discarded = true;
    } else if (out->off > 0 && pool->size - out->len < pool->size / 4) {
        buf_compact(out);
        r->ub_discarded = true;
    }
    uint32_t room = pool->size - out->len;
    if (room <= FRAMING_SLACK)
        return STEP_WAIT;
    uint32_t n = avail;
    if (n > room - FRAMING_SLACK)
        n = room - FRAMING_SLACK;
    if (n == 0 && r->body_started)
        return STEP_WAIT;
    r->body_started = true;
    const char *start = in->data ? buf_start(in) : "";
    uint32_t before = out->len;
    llhttp_errno_t e = llhttp_execute(&r->parser, start, n);
    uint32_t used = n;
    if (e == HPE_PAUSED) {
        used = (uint32_t)(llhttp_get_error_pos(&r->parser) - start);
        half_deadline_clear(&s->client); /* the body is in */
    } else if (e != HPE_OK) {
        log_debug("%s: bad request body: %s", s->addr,
                  r->body_too_big ? "over the limit" : llhttp_errno_name(e));
        s->keep_alive = false;
        s->want_close = true;
        return step_reply(r, r->body_too_big ? 413 : 400, RECORD_BAD_REQUEST);
    }
    if (used > 0) {
        buf_consume(in, used);
        r->req_bytes += used;
    }
    buf_put(pool, in, false);
    return out->len != before || n > 0 ? STEP_MOVED : STEP_WAIT;
}
