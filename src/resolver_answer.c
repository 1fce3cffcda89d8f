/*
 * resolver_answer: the pure part of the resolver — building, sorting and
 * comparing answers, choosing SRV records, the TTL of a raw DNS message and
 * the re-resolution delay.  No socket, no c-ares, no loop: unit-tested in
 * tests/unit/test_resolver.c.
 */
#include "resolver.h"

#include "net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

const char *resolver_status_str(enum resolver_status s)
{
    switch (s) {
    case RESOLVER_OK:
        return "ok";
    case RESOLVER_EMPTY:
        return "empty";
    case RESOLVER_ERROR:
        return "error";
    }
    return "?";
}

const char *resolver_kind_str(enum resolver_kind k)
{
    switch (k) {
    case RESOLVER_HOST:
        return "host";
    case RESOLVER_SRV:
        return "srv";
    }
    return "?";
}

void resolver_answer_clear(struct resolver_answer *a)
{
    a->status = RESOLVER_OK;
    a->reason[0] = '\0';
    a->changed = false;
    a->ttl_s = UINT32_MAX;
    a->next_ms = 0;
    a->dropped = 0;
    a->n = 0;
}

int resolver_answer_add(struct resolver_answer *a, const void *sockaddr,
                        unsigned port, unsigned weight, unsigned priority,
                        const char *target)
{
    const struct sockaddr *sa = sockaddr;
    unsigned char ip[16] = {0};
    size_t iplen;
    if (sa->sa_family == AF_INET) {
        iplen = 4;
        memcpy(ip, &((const struct sockaddr_in *)sockaddr)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        iplen = 16;
        memcpy(ip, &((const struct sockaddr_in6 *)sockaddr)->sin6_addr, 16);
    } else {
        return -1;
    }
    if (weight < 1)
        weight = 1;
    if (weight > RESOLVER_WEIGHT_MAX)
        weight = RESOLVER_WEIGHT_MAX;
    for (size_t i = 0; i < a->n; i++) {
        struct resolver_addr *e = &a->addrs[i];
        if (e->family == sa->sa_family && e->port == port &&
            memcmp(e->ip, ip, 16) == 0) {
            if (weight > e->weight)
                e->weight = weight;
            if (priority < e->priority)
                e->priority = priority;
            return 0;
        }
    }
    if (a->n >= RESOLVER_MAX_ADDRS) {
        a->dropped++;
        return -1;
    }
    struct resolver_addr *e = &a->addrs[a->n];
    memset(e, 0, sizeof(*e));
    e->family = sa->sa_family;
    memcpy(e->ip, ip, iplen);
    e->port = (uint16_t)port;
    e->weight = weight;
    e->priority = priority;
    snprintf(e->target, sizeof(e->target), "%s", target ? target : "");
    char host[INET6_ADDRSTRLEN], portbuf[8];
    inet_ntop(e->family, ip, host, sizeof(host));
    snprintf(portbuf, sizeof(portbuf), "%u", port);
    net_join(e->addr, sizeof(e->addr), host, portbuf);
    a->n++;
    return 1;
}

static int addr_cmp(const void *pa, const void *pb)
{
    const struct resolver_addr *x = pa, *y = pb;
    if (x->family != y->family)
        return x->family == AF_INET ? -1 : 1;
    int c = memcmp(x->ip, y->ip, 16);
    if (c != 0)
        return c;
    return (int)x->port - (int)y->port;
}

void resolver_answer_sort(struct resolver_answer *a)
{
    qsort(a->addrs, a->n, sizeof(a->addrs[0]), addr_cmp);
}

bool resolver_answer_same_set(const struct resolver_answer *a,
                              const struct resolver_answer *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct resolver_addr *x = &a->addrs[i], *y = &b->addrs[i];
        if (addr_cmp(x, y) != 0 || x->weight != y->weight ||
            x->priority != y->priority)
            return false;
    }
    return true;
}

size_t resolver_srv_select(struct resolver_srv *recs, size_t n)
{
    unsigned best = UINT32_MAX;
    for (size_t i = 0; i < n; i++)
        if (recs[i].port != 0 && recs[i].priority < best)
            best = recs[i].priority;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].port == 0 || recs[i].priority != best)
            continue;
        struct resolver_srv r = recs[i];
        if (r.weight == 0)
            r.weight = 1; /* RFC 2782: 0 is "rarely"; here a share of 1 */
        if (r.weight > RESOLVER_WEIGHT_MAX)
            r.weight = RESOLVER_WEIGHT_MAX;
        recs[kept++] = r;
    }
    return kept;
}

/* ---- a DNS message's TTLs (RFC 1035 4.1), read-only and bounded ---- */

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Skips the name at *off; -1 if it runs past the end or is malformed.  A
 * compression pointer ends a name (it is not followed), so this cannot
 * loop. */
static int skip_name(const unsigned char *msg, size_t len, size_t *off)
{
    size_t o = *off;
    for (unsigned labels = 0; labels < 128; labels++) {
        if (o >= len)
            return -1;
        unsigned c = msg[o];
        if ((c & 0xC0) == 0xC0) {
            if (o + 2 > len)
                return -1;
            *off = o + 2;
            return 0;
        }
        if ((c & 0xC0) != 0)
            return -1; /* the 0x40 and 0x80 label types are obsolete */
        o += 1 + c;
        if (c == 0) {
            *off = o;
            return 0;
        }
    }
    return -1;
}

int resolver_msg_min_ttl(const unsigned char *msg, size_t len, unsigned type,
                         uint32_t *ttl)
{
    if (!msg || len < 12)
        return -1;
    unsigned qd = get16(msg + 4), an = get16(msg + 6);
    size_t off = 12;
    for (unsigned i = 0; i < qd; i++) {
        if (skip_name(msg, len, &off) < 0 || off + 4 > len)
            return -1;
        off += 4;
    }
    uint32_t best = UINT32_MAX;
    int found = 0;
    for (unsigned i = 0; i < an; i++) {
        if (skip_name(msg, len, &off) < 0 || off + 10 > len)
            return -1;
        unsigned rtype = get16(msg + off), rdlen = get16(msg + off + 8);
        uint32_t t = (uint32_t)msg[off + 4] << 24 |
                     (uint32_t)msg[off + 5] << 16 |
                     (uint32_t)msg[off + 6] << 8 | msg[off + 7];
        if (t > 0x7fffffffu)
            t = 0; /* RFC 2181 8: a TTL with the top bit set is zero */
        off += 10;
        if (off + rdlen > len)
            return -1;
        off += rdlen;
        if (rtype == type) {
            found = 1;
            if (t < best)
                best = t;
        }
    }
    if (!found)
        return -1;
    *ttl = best;
    return 0;
}

uint32_t resolver_next_ms(bool ok, uint32_t ttl_s, unsigned failures,
                          unsigned interval_ms)
{
    uint64_t ms;
    if (interval_ms < RESOLVER_MIN_INTERVAL_MS)
        interval_ms = RESOLVER_MIN_INTERVAL_MS;
    if (ok) {
        ms = (uint64_t)ttl_s * 1000u;
        if (ms > interval_ms)
            ms = interval_ms;
    } else {
        unsigned shift = failures > 1 ? failures - 1 : 0;
        ms = shift >= 32 ? interval_ms
                         : (uint64_t)RESOLVER_MIN_INTERVAL_MS << shift;
        if (ms > interval_ms)
            ms = interval_ms;
    }
    if (ms < RESOLVER_MIN_INTERVAL_MS)
        ms = RESOLVER_MIN_INTERVAL_MS;
    return (uint32_t)ms;
}
