/*
 * route: the route table (include/route.h).  One open-addressing hash
 * table holds every exact host and every wildcard suffix; each entry owns
 * a run of (prefix, pool) pairs, longest prefix first.  Routes without a
 * host form one more run.
 */
#include "route.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define ROUTE_HOST_MAX 255

struct rule {
    const char *prefix; /* into the table's copy of the routes */
    size_t prefix_len;
    int pool;
};

struct entry {
    const char *name; /* host, or wildcard suffix without "*." */
    size_t len;
    uint64_t hash;
    bool wildcard;
    unsigned first, n; /* its rules */
};

struct route_table {
    struct config_route *routes; /* owned copy */
    struct rule *rules;          /* grouped by entry, then the any-host run */
    struct entry *slots;         /* hash table, name == NULL: empty */
    size_t mask;
    size_t nroutes;
    size_t nentries; /* hosts and wildcard suffixes in slots */
    unsigned any_first, any_n;
    bool has_wildcards;
    int default_pool;
};

/* The word with its ASCII capitals in lower case (SWAR: every byte
 * compared at once; bytes >= 0x80 are left alone). */
static inline uint64_t fold_word(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = ones * 0x80;
    uint64_t low7 = w & ~high;
    uint64_t ge_a = low7 + ones * (0x80 - 'A'); /* high bit: >= 'A' */
    uint64_t gt_z = low7 + ones * (0x7f - 'Z'); /* high bit: > 'Z' */
    uint64_t upper = (ge_a & ~gt_z) & ~w & high;
    return w | (upper >> 2); /* 'A'..'Z' + 0x20 */
}

/* A name in lower case, in words, with at least 8 zero bytes after it. */
#define NAME_WORDS ((ROUTE_HOST_MAX + 1) / 8 + 2)
struct folded {
    uint64_t w[NAME_WORDS];
};

static void fold_name(struct folded *f, const char *s, size_t n)
{
    size_t full = n / 8, rest = n % 8;
    for (size_t i = 0; i < full; i++) {
        uint64_t w;
        memcpy(&w, s + 8 * i, 8);
        f->w[i] = fold_word(w);
    }
    uint64_t w = 0;
    for (size_t i = 0; i < rest; i++)
        w |= (uint64_t)(unsigned char)s[8 * full + i] << (8 * i);
    f->w[full] = fold_word(w);
    f->w[full + 1] = 0;
}

/* A hash of n lower-case bytes at s, read eight at a time; s has at least
 * 8 bytes after the end that may be read (and are masked out). */
static uint64_t hash_bytes(const char *s, size_t n, bool wildcard)
{
    uint64_t h = 0x9e3779b97f4a7c15ull * (n + (wildcard ? 0x51 : 0));
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (n - i < 8)
            w &= ((uint64_t)1 << (8 * (n - i))) - 1;
        h ^= w;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h ^ (h >> 29);
}

/* The same hash of a stored name (lower case already). */
static uint64_t hash_name(const char *s, size_t n, bool wildcard)
{
    struct folded f;
    fold_name(&f, s, n);
    return hash_bytes((const char *)f.w, n, wildcard);
}

static struct entry *slot_find(const struct route_table *t, const char *name,
                               size_t len, bool wildcard, uint64_t h)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        struct entry *e = &t->slots[i];
        if (!e->name)
            return e; /* the empty slot where it would go */
        if (e->hash == h && e->len == len && e->wildcard == wildcard &&
            memcmp(e->name, name, len) == 0)
            return e;
    }
}

static int pool_of(const char *name, const char *const *pools, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(pools[i], name) == 0)
            return (int)i;
    return -1;
}

/* Rules of one entry sort by entry, then longest prefix first. */
struct keyed {
    struct entry *e; /* NULL: any host */
    struct rule r;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->e != y->e)
        return x->e ? (y->e ? (x->e < y->e ? -1 : 1) : -1) : 1;
    return x->r.prefix_len > y->r.prefix_len   ? -1
           : x->r.prefix_len < y->r.prefix_len ? 1
                                               : 0;
}

struct route_table *route_table_create(const struct config_route *routes,
                                       size_t n, const char *const *pools,
                                       size_t npools, int default_pool,
                                       char *err, size_t errlen)
{
    struct route_table *t = calloc(1, sizeof(*t));
    struct keyed *k = calloc(n ? n : 1, sizeof(*k));
    size_t cap = 8;
    while (cap < 2 * n + 2)
        cap *= 2;
    if (t) {
        t->default_pool = default_pool;
        t->nroutes = n;
        t->mask = cap - 1;
        t->routes = calloc(n ? n : 1, sizeof(*t->routes));
        t->rules = calloc(n ? n : 1, sizeof(*t->rules));
        t->slots = calloc(cap, sizeof(*t->slots));
    }
    if (!t || !k || !t->routes || !t->rules || !t->slots) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (n)
        memcpy(t->routes, routes, n * sizeof(*routes));
    for (size_t i = 0; i < n; i++) {
        const struct config_route *r = &t->routes[i];
        int pool = pool_of(r->pool, pools, npools);
        if (pool < 0) {
            snprintf(err, errlen, "route %s: no pool %s", r->name, r->pool);
            goto fail;
        }
        k[i].r = (struct rule){r->path_prefix, strlen(r->path_prefix), pool};
        if (!r->host[0])
            continue;
        bool wild = strncmp(r->host, "*.", 2) == 0;
        const char *name = wild ? r->host + 2 : r->host;
        size_t len = strlen(name);
        uint64_t h = hash_name(name, len, wild);
        struct entry *e = slot_find(t, name, len, wild, h);
        if (!e->name) {
            *e = (struct entry){name, len, h, wild, 0, 0};
            t->nentries++;
        }
        t->has_wildcards |= wild;
        k[i].e = e;
    }
    qsort(k, n, sizeof(*k), cmp_keyed);
    for (size_t i = 0; i < n; i++) {
        t->rules[i] = k[i].r;
        struct entry *e = k[i].e;
        if (e && e->n++ == 0)
            e->first = (unsigned)i;
        if (!e && t->any_n++ == 0)
            t->any_first = (unsigned)i;
    }
    free(k);
    return t;
fail:
    free(k);
    route_table_destroy(t);
    return NULL;
}

void route_table_destroy(struct route_table *t)
{
    if (!t)
        return;
    free(t->routes);
    free(t->rules);
    free(t->slots);
    free(t);
}

/* The length of the host without its port and trailing dots ("[v6]" kept
 * whole); 0 when it is longer than any name (then it matches only
 * host-less routes). */
static size_t host_len(const char *host, size_t n)
{
    bool v6 = n > 0 && host[0] == '[';
    const char *stop = memchr(host, v6 ? ']' : ':', n);
    size_t len = !stop ? n : (size_t)(stop - host) + (v6 ? 1 : 0);
    while (len > 0 && host[len - 1] == '.')
        len--;
    return len <= ROUTE_HOST_MAX ? len : 0;
}

static int match_run(const struct route_table *t, unsigned first, unsigned n,
                     const char *path, size_t pathlen)
{
    for (unsigned i = first; i < first + n; i++) {
        const struct rule *r = &t->rules[i];
        if (r->prefix_len <= pathlen &&
            memcmp(r->prefix, path, r->prefix_len) == 0)
            return r->pool;
    }
    return -1;
}

int route_lookup(const struct route_table *t, const char *host, size_t hostlen,
                 const char *path, size_t pathlen)
{
    if (!t)
        return ROUTE_NOT_FOUND;
    if (t->nroutes == 0)
        return t->default_pool >= 0 ? t->default_pool : ROUTE_MISDIRECTED;
    size_t len = host && t->nentries ? host_len(host, hostlen) : 0;
    bool host_known = false;
    int pool;
    if (len > 0) {
        struct folded f;
        fold_name(&f, host, len);
        const char *name = (const char *)f.w;
        const struct entry *e =
            slot_find(t, name, len, false, hash_bytes(name, len, false));
        if (e->name) {
            host_known = true;
            if ((pool = match_run(t, e->first, e->n, path, pathlen)) >= 0)
                return pool;
        }
        /* the parent domains, nearest (longest suffix) first */
        for (size_t i = 0; t->has_wildcards && i < len; i++) {
            if (name[i] != '.')
                continue;
            const char *sfx = name + i + 1;
            size_t sl = len - i - 1;
            e = slot_find(t, sfx, sl, true, hash_bytes(sfx, sl, true));
            if (!e->name)
                continue;
            host_known = true;
            if ((pool = match_run(t, e->first, e->n, path, pathlen)) >= 0)
                return pool;
        }
    }
    if (t->any_n) {
        host_known = true;
        if ((pool = match_run(t, t->any_first, t->any_n, path, pathlen)) >= 0)
            return pool;
    }
    if (t->default_pool >= 0)
        return t->default_pool;
    return host_known ? ROUTE_NOT_FOUND : ROUTE_MISDIRECTED;
}
