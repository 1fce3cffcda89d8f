/*
 * proxyproto: PROXY protocol v1/v2 header parsing and building (see
 * proxyproto.h).  Every read is bounded by the length given; nothing is
 * allocated.
 */
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_sig[PROXYPROTO_V2_SIG_LEN] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

#define V2_HEAD 16 /* signature, version/command, family, length */

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- v1: one text line ---- */

/* A port: 1..5 digits, no leading zero (but "0"), at most 65535. */
static int v1_port(const char *p, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* An address of the family in a NUL-terminated copy of [p, p+n). */
static int v1_ip(const char *p, size_t n, int family,
                 struct sockaddr_storage *ss)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    ss->ss_family = (sa_family_t)family;
    void *dst = family == AF_INET
                    ? (void *)&((struct sockaddr_in *)ss)->sin_addr
                    : (void *)&((struct sockaddr_in6 *)ss)->sin6_addr;
    return inet_pton(family, tmp, dst) == 1 ? 0 : -1;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The line without its CR LF, n bytes: "PROXY " already matched. */
static int v1_line(const char *line, size_t n, struct proxyproto_hdr *out)
{
    const char *p = line + 6, *end = line + n;
    if ((size_t)(end - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 &&
        (p + 7 == end || p[7] == ' ')) {
        out->has_addr = false; /* the rest of the line is ignored */
        return 0;
    }
    int family;
    if ((size_t)(end - p) >= 5 && memcmp(p, "TCP4 ", 5) == 0)
        family = AF_INET;
    else if ((size_t)(end - p) >= 5 && memcmp(p, "TCP6 ", 5) == 0)
        family = AF_INET6;
    else
        return -1;
    p += 5;
    /* four fields, single spaces between them, none after */
    const char *f[4];
    size_t fl[4];
    for (int i = 0; i < 4; i++) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if ((i < 3) != (sp != NULL))
            return -1;
        f[i] = p;
        fl[i] = (size_t)((sp ? sp : end) - p);
        p = sp ? sp + 1 : end;
    }
    uint16_t sport, dport;
    if (v1_ip(f[0], fl[0], family, &out->src) < 0 ||
        v1_ip(f[1], fl[1], family, &out->dst) < 0 ||
        v1_port(f[2], fl[2], &sport) < 0 || v1_port(f[3], fl[3], &dport) < 0)
        return -1;
    set_port(&out->src, sport);
    set_port(&out->dst, dport);
    out->has_addr = true;
    return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, struct proxyproto_hdr *out)
{
    size_t scan = min_size(len, PROXYPROTO_V1_MAX);
    for (size_t i = 0; i < scan; i++) {
        uint8_t c = buf[i];
        if (c == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return PROXYPROTO_INVALID;
            out->version = 1;
            if (v1_line((const char *)buf, i - 1, out) < 0)
                return PROXYPROTO_INVALID;
            return (int)(i + 1);
        }
        /* printable text, and a CR only right before the LF */
        if ((c < ' ' && c != '\r') || c > '~' ||
            (c == '\r' && i + 1 < len && buf[i + 1] != '\n'))
            return PROXYPROTO_INVALID;
    }
    return len >= PROXYPROTO_V1_MAX ? PROXYPROTO_INVALID : PROXYPROTO_MORE;
}

/* ---- v2: binary ---- */

/* Checks the version/command and family bytes as far as they arrived. */
static bool v2_bytes_ok(const uint8_t *buf, size_t len)
{
    if (len > 12 && ((buf[12] >> 4) != 2 || (buf[12] & 0xf) > 1))
        return false;
    if (len > 13) {
        unsigned fam = buf[13] >> 4, proto = buf[13] & 0xf;
        if (fam > 3 || proto > 1)
            return false; /* only stream (or unspecified) transports */
    }
    return true;
}

static int parse_v2(const uint8_t *buf, size_t len, struct proxyproto_hdr *out)
{
    if (!v2_bytes_ok(buf, len))
        return PROXYPROTO_INVALID;
    if (len < V2_HEAD)
        return PROXYPROTO_MORE;
    size_t alen = (size_t)buf[14] << 8 | buf[15];
    size_t total = V2_HEAD + alen;
    if (total > PROXYPROTO_MAX)
        return PROXYPROTO_INVALID;
    /* the address block must be long enough for its family */
    static const size_t need[4] = {0, 12, 36, 216};
    if (alen < need[buf[13] >> 4])
        return PROXYPROTO_INVALID;
    if (len < total)
        return PROXYPROTO_MORE;
    out->version = 2;
    out->has_addr = false;
    unsigned fam = buf[13] >> 4;
    if ((buf[12] & 0xf) == 0 || (fam != 1 && fam != 2))
        return (int)total; /* LOCAL, UNSPEC or UNIX: no address to use */
    const uint8_t *a = buf + V2_HEAD;
    memset(&out->src, 0, sizeof(out->src));
    memset(&out->dst, 0, sizeof(out->dst));
    if (fam == 1) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2); /* both in network order */
        memcpy(&d->sin_port, a + 10, 2);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
    }
    out->has_addr = true;
    return (int)total; /* TLVs after the addresses are skipped */
}

int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_hdr *out)
{
    if (len == 0)
        return PROXYPROTO_MORE;
    if (buf[0] == 'P') {
        size_t n = min_size(len, sizeof(v1_sig) - 1);
        if (memcmp(buf, v1_sig, n) != 0)
            return PROXYPROTO_INVALID;
        return len < sizeof(v1_sig) - 1 ? PROXYPROTO_MORE
                                        : parse_v1(buf, len, out);
    }
    size_t n = min_size(len, PROXYPROTO_V2_SIG_LEN);
    if (memcmp(buf, v2_sig, n) != 0)
        return PROXYPROTO_INVALID;
    return len < PROXYPROTO_V2_SIG_LEN ? PROXYPROTO_MORE
                                       : parse_v2(buf, len, out);
}

/* ---- building ---- */

/* The family both addresses share (AF_INET or AF_INET6), else 0. */
static int same_ip_family(const struct sockaddr *src,
                          const struct sockaddr *dst)
{
    if (!src || !dst || src->sa_family != dst->sa_family)
        return 0;
    return src->sa_family == AF_INET || src->sa_family == AF_INET6
               ? src->sa_family
               : 0;
}

int proxyproto_build_v1(char *out, size_t cap, const struct sockaddr *src,
                        const struct sockaddr *dst)
{
    int fam = same_ip_family(src, dst);
    int n;
    if (!fam) {
        n = snprintf(out, cap, "PROXY UNKNOWN\r\n");
    } else {
        char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
        unsigned sp, dp;
        if (fam == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)src;
            const struct sockaddr_in *b = (const struct sockaddr_in *)dst;
            inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
            inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
            sp = ntohs(a->sin_port);
            dp = ntohs(b->sin_port);
        } else {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;
            const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)dst;
            inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
            inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
            sp = ntohs(a->sin6_port);
            dp = ntohs(b->sin6_port);
        }
        n = snprintf(out, cap, "PROXY %s %s %s %u %u\r\n",
                     fam == AF_INET ? "TCP4" : "TCP6", s, d, sp, dp);
    }
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int proxyproto_build_v2(uint8_t *out, size_t cap, const struct sockaddr *src,
                        const struct sockaddr *dst)
{
    int fam = same_ip_family(src, dst);
    size_t alen = fam == AF_INET ? 12 : fam == AF_INET6 ? 36 : 0;
    if (cap < V2_HEAD + alen)
        return -1;
    memcpy(out, v2_sig, sizeof(v2_sig));
    out[12] = src ? 0x21 : 0x20; /* version 2, PROXY or LOCAL */
    out[13] = fam == AF_INET ? 0x11 : fam == AF_INET6 ? 0x21 : 0x00;
    out[14] = 0;
    out[15] = (uint8_t)alen;
    uint8_t *a = out + V2_HEAD;
    if (fam == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
        memcpy(a, &s->sin_addr, 4);
        memcpy(a + 4, &d->sin_addr, 4);
        memcpy(a + 8, &s->sin_port, 2);
        memcpy(a + 10, &d->sin_port, 2);
    } else if (fam == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)dst;
        memcpy(a, &s->sin6_addr, 16);
        memcpy(a + 16, &d->sin6_addr, 16);
        memcpy(a + 32, &s->sin6_port, 2);
        memcpy(a + 34, &d->sin6_port, 2);
    }
    return (int)(V2_HEAD + alen);
}

int proxyproto_build(int version, uint8_t *out, size_t cap,
                     const struct sockaddr *src, const struct sockaddr *dst)
{
    if (version == 1)
        return proxyproto_build_v1((char *)out, cap, src, dst);
    return proxyproto_build_v2(out, cap, src, dst);
}
