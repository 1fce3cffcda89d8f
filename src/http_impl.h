/*
 * http_impl: helpers over spans shared by the checks (http.c) and the head
 * rebuilds (http_build.c).  Private to those two files.
 */
#ifndef LB_HTTP_IMPL_H
#define LB_HTTP_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

#define PROXY_NAME "lbproxy"

static inline const char *sp(const struct http_head *h, struct http_span s)
{
    return h->base + s.off;
}

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* ASCII case-insensitive equality of n bytes (no locale, no call). */
static inline bool ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

static inline bool span_ieq_n(const struct http_head *h, struct http_span s,
                              const char *lit, size_t n)
{
    return s.len == n && ieq(sp(h, s), lit, n);
}

/* Compares a span with a string literal; the length is known at compile
 * time. */
#define span_ieq(h, s, lit) span_ieq_n(h, s, "" lit, sizeof(lit) - 1)

static inline bool named_in(const struct http_head *h, struct http_span name,
                            const struct http_span *tokens, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (tokens[i].len == name.len &&
            ieq(sp(h, tokens[i]), sp(h, name), name.len))
            return true;
    return false;
}

#endif
