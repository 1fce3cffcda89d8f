/*
 * hashkey: the hash_key spec and the key of one request (see hashkey.h).
 */
#include "hashkey.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"

const char *hashkey_kind_str(enum hashkey_kind k)
{
    switch (k) {
    case HASHKEY_CLIENT:
        return "client";
    case HASHKEY_PATH:
        return "path";
    case HASHKEY_HEADER:
        return "header";
    case HASHKEY_COOKIE:
        return "cookie";
    }
    return "?";
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int hashkey_parse(const char *spec, struct hashkey *k)
{
    static const enum hashkey_kind named[] = {HASHKEY_HEADER, HASHKEY_COOKIE};
    memset(k, 0, sizeof(*k));
    if (strcasecmp(spec, "client") == 0) {
        k->kind = HASHKEY_CLIENT;
        return 0;
    }
    if (strcasecmp(spec, "path") == 0) {
        k->kind = HASHKEY_PATH;
        return 0;
    }
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        const char *w = hashkey_kind_str(named[i]);
        size_t wl = strlen(w);
        if (strncasecmp(spec, w, wl) != 0 || spec[wl] != ':')
            continue;
        const char *name = spec + wl + 1;
        size_t n = strlen(name);
        if (n == 0 || n > HASHKEY_NAME_MAX)
            return -1;
        for (size_t j = 0; j < n; j++)
            if (!is_tchar((unsigned char)name[j]))
                return -1;
        k->kind = named[i];
        k->name_len = (unsigned)n;
        memcpy(k->name, name, n);
        return 0;
    }
    return -1;
}

const char *hashkey_format(const struct hashkey *k, char *buf, size_t len)
{
    const char *w = hashkey_kind_str((enum hashkey_kind)k->kind);
    if (k->kind == HASHKEY_HEADER || k->kind == HASHKEY_COOKIE)
        snprintf(buf, len, "%s:%.*s", w, (int)k->name_len, k->name);
    else
        snprintf(buf, len, "%s", w);
    return buf;
}

uint64_t hashkey_hash(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3u; /* FNV 64 prime */
    }
    /* FNV-1a's last bytes barely reach the high bits; a ring needs them.
     * The finaliser of MurmurHash3 (fmix64) spreads every bit. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

bool hashkey_cookie(const char *v, size_t len, const char *name,
                    size_t name_len, size_t *off, size_t *vlen)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i, end, eq;
        while (i < len && v[i] != ';')
            i++;
        end = i++; /* past the ';' (or the end) */
        while (start < end && blank(v[start]))
            start++;
        while (end > start && blank(v[end - 1]))
            end--;
        eq = start;
        while (eq < end && v[eq] != '=')
            eq++;
        if (eq == end) /* no '=': not a pair */
            continue;
        size_t nl = eq - start;
        while (nl > 0 && blank(v[start + nl - 1]))
            nl--;
        if (nl != name_len || memcmp(v + start, name, nl) != 0)
            continue;
        size_t vs = eq + 1;
        while (vs < end && blank(v[vs]))
            vs++;
        if (end - vs >= 2 && v[vs] == '"' && v[end - 1] == '"') {
            vs++;
            end--;
        }
        if (vs == end)
            return false; /* present but empty: the caller falls back */
        *off = vs;
        *vlen = end - vs;
        return true;
    }
    return false;
}

/* The path of a request target: origin-form up to '?' or '#'; for an
 * absolute-form target the part after the authority. */
static void target_path(const char *t, size_t len, size_t *off, size_t *plen)
{
    size_t s = 0, e;
    const char *sep = len > 3 ? memchr(t, ':', len) : NULL;
    if (t[0] != '/' && sep && (size_t)(sep - t) + 2 < len && sep[1] == '/' &&
        sep[2] == '/') {
        s = (size_t)(sep - t) + 3;
        while (s < len && t[s] != '/' && t[s] != '?')
            s++;
    }
    e = s;
    while (e < len && t[e] != '?' && t[e] != '#')
        e++;
    if (e == s) { /* "http://host" and "http://host?q" mean "/" */
        *off = 0;
        *plen = 0;
        return;
    }
    *off = s;
    *plen = e - s;
}

uint64_t hashkey_of(const struct hashkey *k, const struct http_head *h,
                    const char *client, size_t client_len,
                    enum hashkey_kind *used)
{
    enum hashkey_kind kind = (enum hashkey_kind)k->kind;
    for (unsigned i = 0; h && i < h->nheaders; i++) {
        const struct http_header *f = &h->headers[i];
        if (kind != HASHKEY_HEADER && kind != HASHKEY_COOKIE)
            break;
        const char *name = h->base + f->name.off;
        if (kind == HASHKEY_HEADER) {
            if (f->name.len == k->name_len &&
                strncasecmp(name, k->name, k->name_len) == 0) {
                struct http_span v = http_value(h, f);
                if (v.len == 0)
                    continue;
                if (used)
                    *used = HASHKEY_HEADER;
                return hashkey_hash(h->base + v.off, v.len);
            }
            continue;
        }
        size_t off, vl;
        const char *v = h->base + f->value.off;
        if (f->name.len == 6 && strncasecmp(name, "cookie", 6) == 0 &&
            hashkey_cookie(v, http_value(h, f).len, k->name, k->name_len, &off,
                           &vl)) {
            if (used)
                *used = HASHKEY_COOKIE;
            return hashkey_hash(v + off, vl);
        }
    }
    if (kind == HASHKEY_PATH && h && h->url.len > 0) {
        size_t off, pl;
        target_path(h->base + h->url.off, h->url.len, &off, &pl);
        if (used)
            *used = HASHKEY_PATH;
        return pl ? hashkey_hash(h->base + h->url.off + off, pl)
                  : hashkey_hash("/", 1);
    }
    if (used)
        *used = HASHKEY_CLIENT;
    return hashkey_hash(client, client_len);
}
