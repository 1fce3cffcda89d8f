/*
 * be_status: the emulator's own endpoints, answered at once (never queued,
 * no latency profile, no faults): /stats, its counters as JSON, and
 * /probe, the load report a prequal balancer asks for
 * (docs/backend.md).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be_internal.h"

void be_respond_stats(struct conn *c)
{
    struct be_server *s = c->srv;
    const struct be_stats *t = &s->st;
    char prof[128], body[2048];
    be_profile_str(be_server_profile(s), prof, sizeof(prof));
    int n = snprintf(
        body, sizeof(body),
        "{\"id\":\"%s\",\"uptime_us\":%" PRIu64 ",\"accepts\":%" PRIu64
        ",\"open_connections\":%" PRIu64 ",\"requests\":%" PRIu64
        ",\"responses\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"resets\":%" PRIu64
        ",\"hangs\":%" PRIu64 ",\"health_checks\":%" PRIu64
        ",\"stats_requests\":%" PRIu64 ",\"bad_requests\":%" PRIu64
        ",\"accept_errors\":%" PRIu64 ",\"in_service\":%d,\"queued\":%zu"
        ",\"max_queued\":%" PRIu64 ",\"workers\":%d,\"phase\":%d"
        ",\"profile\":\"%s\",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
        ",\"ws_upgrades\":%" PRIu64 ",\"ws_frames\":%" PRIu64
        ",\"probes\":%" PRIu64 ",\"idle_worker_us\":%" PRIu64,
        s->o->id, loop_now(s->loop) - s->start_us, t->accepts, t->open,
        t->requests, t->responses, t->errors, t->resets, t->hangs, t->health,
        t->stats + 1, t->bad_requests, t->accept_errors, s->sched.busy,
        s->sched.queued, s->sched.max_queued, s->o->workers, s->phase + 1, prof,
        t->bytes_in, t->bytes_out, t->ws_upgrades, t->ws_frames, t->probes,
        be_sched_idle_us(&s->sched, loop_now(s->loop)));
    n += be_tls_stats(s, body + n, sizeof(body) - (size_t)n - 2);
    n += snprintf(body + n, sizeof(body) - (size_t)n, "}\n");
    s->st.stats++;
    be_respond_simple(c, 200, "OK", "application/json", body, (size_t)n);
}

void be_probe_record(struct be_server *s, uint64_t latency_us)
{
    s->recent[s->rpos] =
        latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us;
    s->rpos = (s->rpos + 1) % BE_RECENT;
    if (s->nrecent < BE_RECENT)
        s->nrecent++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void be_respond_probe(struct conn *c)
{
    struct be_server *s = c->srv;
    uint32_t v[BE_RECENT];
    char head[256];

    s->st.probes++;
    if (s->o->no_probe) {
        be_respond_simple(c, 404, "Not Found", "text/plain", "not found\n", 10);
        return;
    }
    memcpy(v, s->recent, s->nrecent * sizeof(v[0]));
    qsort(v, s->nrecent, sizeof(v[0]), cmp_u32);
    /* requests in flight: those holding a worker and those queued */
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nX-Backend-Id: %s\r\n"
                     "X-Prequal-Rif: %zu\r\nX-Prequal-Latency-Us: %" PRIu32
                     "\r\nContent-Length: 0\r\n",
                     s->o->id, (size_t)s->sched.busy + s->sched.queued,
                     s->nrecent ? v[s->nrecent / 2] : 0);
    out_put(c, head, (size_t)n);
    be_put_connection(c);
}
