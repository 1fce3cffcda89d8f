/*
 * session_record: what a session keeps per request and what it reports -
 * the free lists of request state and buffers shared by all sessions, the
 * generation references, borrowing and returning a request's state, and
 * the record of a finished request (wall clock, times, bytes, backend,
 * hedge, request id, TLS) handed to the record callback.  Called by
 * session.c; it calls no session file but the upstream side's
 * uside_complete.
 */
#include "session_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define FREE_BUFS 256 /* free buffers kept for reuse */
#define FREE_REQS 256 /* free request states kept for reuse */

/* Wall-clock microseconds for the record: the loop's monotonic time plus
 * an offset read from CLOCK_REALTIME at most once a second (a clock call
 * per request shows in the profile; a second of drift never does). */
static uint64_t wall_us(struct session_ctx *ctx)
{
    uint64_t now = loop_now(ctx->loop);
    if (ctx->wall_read_us == 0 || now - ctx->wall_read_us > 1000000) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wall =
            (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        ctx->wall_offset_us = (int64_t)(wall - now);
        ctx->wall_read_us = now;
    }
    return (uint64_t)((int64_t)now + ctx->wall_offset_us);
}

/* ---- shared parts ---- */

int session_ctx_init(struct session_ctx *ctx, size_t buf_size)
{
    if (buf_pool_init(&ctx->bufs, (uint32_t)buf_size, FREE_BUFS) < 0)
        return -1;
    ctx->max_free_reqs = FREE_REQS;
    ctx->nfree_reqs = 0;
    ctx->free_reqs = calloc(FREE_REQS, sizeof(*ctx->free_reqs));
    if (!ctx->free_reqs) {
        buf_pool_cleanup(&ctx->bufs);
        return -1;
    }
    return 0;
}

void session_ctx_cleanup(struct session_ctx *ctx)
{
    buf_pool_cleanup(&ctx->bufs);
    if (ctx->free_reqs) {
        for (unsigned i = 0; i < ctx->nfree_reqs; i++)
            free(ctx->free_reqs[i]);
        free(ctx->free_reqs);
        ctx->free_reqs = NULL;
    }
    ctx->nfree_reqs = 0;
}

/* ---- per-request state ---- */

/* Zeroes a request's scalars (those before `parser`).  GCC turns a memset
 * of this size into a rep stos, which starts slowly; with SSE2 these are
 * 16-byte stores the compiler unrolls. */
static void zero_scalars(struct request *r)
{
    size_t n = offsetof(struct request, parser), i = 0;
    char *p = (char *)r;
#ifdef __SSE2__
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(void *)(p + i), _mm_setzero_si128());
#endif
    memset(p + i, 0, n - i);
}

struct request *request_get(struct session *s)
{
    struct session_ctx *ctx = s->ctx;
    struct request *r;
    if (ctx->nfree_reqs > 0) {
        r = ctx->free_reqs[--ctx->nfree_reqs];
    } else {
        size_t nh = 2 * (size_t)ctx->cfg->max_headers;
        r = malloc(sizeof(*r) + nh * sizeof(r->headers[0]));
        if (!r)
            return NULL;
    }
    zero_scalars(r);
    /* read before any check may have run (an early refusal) */
    memset(&r->hreq, 0, offsetof(struct http_request, conn_tokens));
    memset(&r->resp, 0, offsetof(struct http_response, conn_tokens));
    r->path[0] = '\0';
    r->s = s;
    r->backend = -1;
    r->connect_us = -1;
    r->t_start = now_us(s);
    if (ctx->record_detail) /* only the CSV log has a wall clock column */
        r->wall_start = wall_us(ctx);
    r->resp_bytes0 = s->client.bytes_out;
    return r;
}

void request_put(struct session *s)
{
    struct session_ctx *ctx = s->ctx;
    struct request *r = s->req;
    if (!r)
        return;
    s->req = NULL;
    pool_set_put(r->gen);
    r->gen = NULL;
    r->pool = NULL;
    if (ctx->nfree_reqs < ctx->max_free_reqs)
        ctx->free_reqs[ctx->nfree_reqs++] = r;
    else
        free(r);
}

/* ---- the record ---- */

/* The fields the stats read (marked in record.h): all a record holds
 * without session_ctx.record_detail. */
static void record_stats_part(struct session *s, struct record *rec,
                              uint64_t now)
{
    struct request *r = s->req;
    rec->backend = r->backend;
    rec->backend_id = NULL;
    rec->status = r->status;
    rec->error = r->error;
    rec->req_bytes = r->req_bytes;
    rec->resp_bytes = resp_bytes(s);
    rec->total_us = (int64_t)(now - r->t_start);
    rec->upstream_us = -1;
    rec->pool = r->pool ? r->pool->cfg.pool : NULL;
    rec->pool_index = r->pool ? (int)r->pool->index : -1;
    if (r->backend >= 0 && r->pool) {
        rec->backend_id = upstream_id(r->pool->up, (size_t)r->backend);
        if (uside_complete(s))
            rec->upstream_us = (int64_t)(now - r->t_dispatch);
        else if (r->t_tunnel) /* the exchange was the 101 */
            rec->upstream_us = (int64_t)(r->t_tunnel - r->t_dispatch);
    }
}

/* Every field, for the CSV log (session_ctx.record_detail). */
static void record_detail(struct session *s, struct record *rec, uint64_t now)
{
    struct request *r = s->req;
    *rec = (struct record){
        .wall_us = r->wall_start,
        .client_addr = s->addr,
        .method = r->method_name,
        .path = r->path,
        .path_len = r->path_len,
        .connect_us = r->connect_us,
        .ttfb_us = -1,
        .reused = r->reused,
        .retries = r->retries,
        .hedge = r->hedge_won ? RECORD_HEDGE_WON
                 : r->hedged  ? RECORD_HEDGE_LOST
                              : RECORD_HEDGE_NONE,
        .request_id = r->request_id_len ? r->request_id : NULL,
        .tls_handshake_us = -1,
        .mode = r->pool ? r->pool->cfg.mode : NULL,
        .conn_model = !r->pool                  ? NULL
                      : r->pool->cfg.persistent ? "persistent"
                                                : "non_persistent",
    };
    record_stats_part(s, rec, now);
    if (s->client.tr->info) {
        struct transport_info ti = {0};
        s->client.tr->info(s->client.tr_state, &ti);
        rec->tls_version = ti.version;
        rec->tls_cipher = ti.cipher;
        rec->tls_resumed = ti.resumed;
        rec->tls_handshake_us = ti.handshake_us;
    }
    if (r->backend >= 0 && r->pool) {
        rec->backend_addr = upstream_addr(r->pool->up, (size_t)r->backend);
        if (r->t_first_byte)
            rec->ttfb_us = (int64_t)(r->t_first_byte - r->t_dispatch);
    }
}

void record_emit(struct session *s)
{
    struct session_ctx *ctx = s->ctx;
    if (!ctx->on_record)
        return;
    uint64_t now = now_us(s);
    struct record rec;
    if (ctx->record_detail)
        record_detail(s, &rec, now);
    else
        record_stats_part(s, &rec, now); /* the rest stays unset */
    ctx->on_record(ctx->record_arg, &rec);
}
