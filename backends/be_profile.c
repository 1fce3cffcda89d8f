/*
 * be_profile: duration and profile parsing, sampling, phase selection.
 */
#include "be_profile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BE_SAMPLE_MAX_US 3600e6 /* one hour: keeps a wild tail finite */

const char *be_dist_str(enum be_dist d)
{
    switch (d) {
    case BE_DIST_FIXED:
        return "fixed";
    case BE_DIST_UNIFORM:
        return "uniform";
    case BE_DIST_EXP:
        return "exp";
    case BE_DIST_LOGNORMAL:
        return "lognormal";
    case BE_DIST_BIMODAL:
        return "bimodal";
    }
    return "?";
}

/* Parses a duration at the start of s; *end gets the first unused byte. */
static int parse_duration_prefix(const char *s, double *us, const char **end)
{
    char *e;
    if (*s < '0' || *s > '9') {
        if (*s != '.')
            return -1;
    }
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || errno || !isfinite(v) || v < 0)
        return -1;
    double mul;
    if (strncmp(e, "us", 2) == 0) {
        mul = 1;
        e += 2;
    } else if (strncmp(e, "ms", 2) == 0) {
        mul = 1e3;
        e += 2;
    } else if (*e == 's') {
        mul = 1e6;
        e += 1;
    } else if (v == 0) {
        mul = 0; /* a bare "0" needs no unit */
    } else {
        return -1;
    }
    *us = v * mul;
    *end = e;
    return 0;
}

int be_parse_duration(const char *s, double *us)
{
    const char *end;
    if (!s || parse_duration_prefix(s, us, &end) < 0 || *end != '\0')
        return -1;
    return 0;
}

static int parse_prob(const char *s, double *p, const char **end)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || errno || !(v >= 0 && v <= 1))
        return -1;
    *p = v;
    *end = e;
    return 0;
}

static int expect(const char **s, char c)
{
    if (**s != c)
        return -1;
    (*s)++;
    return 0;
}

int be_profile_parse(const char *s, struct be_profile *p, char *err,
                     size_t errlen)
{
    struct be_profile r = {0};
    const char *q;
    if (!s)
        s = "";
    if (strncmp(s, "fixed:", 6) == 0) {
        r.dist = BE_DIST_FIXED;
        q = s + 6;
        if (parse_duration_prefix(q, &r.a, &q) < 0)
            goto bad;
    } else if (strncmp(s, "uniform:", 8) == 0) {
        r.dist = BE_DIST_UNIFORM;
        q = s + 8;
        if (parse_duration_prefix(q, &r.a, &q) < 0 || expect(&q, '-') < 0 ||
            parse_duration_prefix(q, &r.b, &q) < 0)
            goto bad;
        if (r.b < r.a) {
            snprintf(err, errlen, "profile '%s': upper bound below lower", s);
            return -1;
        }
    } else if (strncmp(s, "exp:", 4) == 0) {
        r.dist = BE_DIST_EXP;
        q = s + 4;
        if (parse_duration_prefix(q, &r.a, &q) < 0)
            goto bad;
    } else if (strncmp(s, "lognormal:", 10) == 0) {
        r.dist = BE_DIST_LOGNORMAL;
        q = s + 10;
        char *e;
        if (parse_duration_prefix(q, &r.a, &q) < 0 || expect(&q, ',') < 0)
            goto bad;
        errno = 0;
        r.p = strtod(q, &e);
        if (e == q || errno || !(r.p >= 0 && r.p <= 5))
            goto bad;
        q = e;
    } else if (strncmp(s, "bimodal:", 8) == 0) {
        r.dist = BE_DIST_BIMODAL;
        q = s + 8;
        if (parse_duration_prefix(q, &r.a, &q) < 0 || expect(&q, ',') < 0 ||
            parse_duration_prefix(q, &r.b, &q) < 0 || expect(&q, ',') < 0 ||
            parse_prob(q, &r.p, &q) < 0)
            goto bad;
    } else {
        snprintf(err, errlen,
                 "profile '%s': expected fixed:, uniform:, exp:, "
                 "lognormal: or bimodal:",
                 s);
        return -1;
    }
    if (*q == '+') {
        q++;
        if (parse_duration_prefix(q, &r.base_us, &q) < 0)
            goto bad;
    }
    if (*q != '\0')
        goto bad;
    *p = r;
    return 0;
bad:
    snprintf(err, errlen,
             "bad profile '%s' (e.g. fixed:10ms, uniform:5ms-15ms, exp:10ms, "
             "lognormal:10ms,0.5, bimodal:5ms,200ms,0.05, each optionally "
             "+BASE like exp:10ms+2ms; units us, ms, s)",
             s);
    return -1;
}

/* Formats a microsecond value with the largest unit that keeps it exact. */
static void fmt_us(char *buf, size_t len, double us)
{
    if (us >= 1e6 && fmod(us, 1e6) == 0)
        snprintf(buf, len, "%gs", us / 1e6);
    else if (us >= 1e3 && fmod(us, 1e3) == 0)
        snprintf(buf, len, "%gms", us / 1e3);
    else if (us == 0)
        snprintf(buf, len, "0ms");
    else
        snprintf(buf, len, "%gus", us);
}

char *be_profile_str(const struct be_profile *p, char *buf, size_t len)
{
    char a[32], b[32], base[40] = "";
    fmt_us(a, sizeof(a), p->a);
    fmt_us(b, sizeof(b), p->b);
    if (p->base_us > 0) {
        base[0] = '+';
        fmt_us(base + 1, sizeof(base) - 1, p->base_us);
    }
    switch (p->dist) {
    case BE_DIST_FIXED:
    case BE_DIST_EXP:
        snprintf(buf, len, "%s:%s%s", be_dist_str(p->dist), a, base);
        break;
    case BE_DIST_UNIFORM:
        snprintf(buf, len, "uniform:%s-%s%s", a, b, base);
        break;
    case BE_DIST_LOGNORMAL:
        snprintf(buf, len, "lognormal:%s,%g%s", a, p->p, base);
        break;
    case BE_DIST_BIMODAL:
        snprintf(buf, len, "bimodal:%s,%s,%g%s", a, b, p->p, base);
        break;
    }
    return buf;
}

double be_profile_mean(const struct be_profile *p)
{
    double m = 0;
    switch (p->dist) {
    case BE_DIST_FIXED:
    case BE_DIST_EXP:
        m = p->a;
        break;
    case BE_DIST_UNIFORM:
        m = (p->a + p->b) / 2;
        break;
    case BE_DIST_LOGNORMAL:
        m = p->a * exp(p->p * p->p / 2);
        break;
    case BE_DIST_BIMODAL:
        m = (1 - p->p) * p->a + p->p * p->b;
        break;
    }
    return m + p->base_us;
}

double be_profile_variance(const struct be_profile *p)
{
    switch (p->dist) {
    case BE_DIST_FIXED:
        return 0;
    case BE_DIST_UNIFORM:
        return (p->b - p->a) * (p->b - p->a) / 12;
    case BE_DIST_EXP:
        return p->a * p->a;
    case BE_DIST_LOGNORMAL: {
        double s2 = p->p * p->p;
        return (exp(s2) - 1) * p->a * p->a * exp(s2);
    }
    case BE_DIST_BIMODAL:
        return p->p * (1 - p->p) * (p->b - p->a) * (p->b - p->a);
    }
    return 0;
}

uint64_t be_profile_sample(const struct be_profile *p, struct be_rng *rng)
{
    double v = 0;
    switch (p->dist) {
    case BE_DIST_FIXED:
        v = p->a;
        break;
    case BE_DIST_UNIFORM:
        v = p->a + (p->b - p->a) * be_rng_double(rng);
        break;
    case BE_DIST_EXP:
        v = -p->a * log1p(-be_rng_double(rng));
        break;
    case BE_DIST_LOGNORMAL:
        v = p->a * exp(p->p * be_rng_normal(rng));
        break;
    case BE_DIST_BIMODAL:
        v = be_rng_double(rng) < p->p ? p->b : p->a;
        break;
    }
    v += p->base_us;
    if (!(v >= 0))
        v = 0;
    if (v > BE_SAMPLE_MAX_US)
        v = BE_SAMPLE_MAX_US;
    return (uint64_t)(v + 0.5);
}

int be_phase_parse(const char *s, struct be_phase *ph, char *err, size_t errlen)
{
    const char *colon = s ? strchr(s, ':') : NULL;
    char when[64];
    double at;
    if (!colon || (size_t)(colon - s) >= sizeof(when)) {
        snprintf(err, errlen,
                 "bad phase '%s' (expected TIME:PROFILE, "
                 "e.g. 30s:fixed:200ms)",
                 s ? s : "");
        return -1;
    }
    memcpy(when, s, (size_t)(colon - s));
    when[colon - s] = '\0';
    if (be_parse_duration(when, &at) < 0) {
        snprintf(err, errlen, "bad phase start '%s' in '%s'", when, s);
        return -1;
    }
    if (be_profile_parse(colon + 1, &ph->profile, err, errlen) < 0)
        return -1;
    ph->at_us = (uint64_t)(at + 0.5);
    return 0;
}

int be_phase_select(const struct be_phase *phases, int n, uint64_t elapsed_us)
{
    int cur = -1;
    for (int i = 0; i < n && phases[i].at_us <= elapsed_us; i++)
        cur = i;
    return cur;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void be_rng_seed(struct be_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t be_rng_next(struct be_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double be_rng_double(struct be_rng *rng)
{
    return (double)(be_rng_next(rng) >> 11) * 0x1.0p-53;
}

double be_rng_normal(struct be_rng *rng)
{
    /* One of the Box-Muller pair; sampling is far from the hot path's cost. */
    double u1 = 1.0 - be_rng_double(rng); /* (0, 1]: log stays finite */
    double u2 = be_rng_double(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
