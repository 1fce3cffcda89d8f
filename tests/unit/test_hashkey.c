/*
 * Unit tests of hashkey (src/hashkey.c): the hash_key spec (parse, print
 * back, refusals), the hash's spread, the key from a header, a cookie,
 * the path or the client address, the fallback to the client address
 * when the named header or cookie is absent or empty, and the cookie
 * parser against malformed and random input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hashkey.h"
#include "http.h"

/* A head over `base` with the given "Name: value" fields (spans found in
 * base) and request target `url` (also in base). */
struct fake {
    char base[1024];
    struct http_header hdr[8];
    struct http_head h;
};

static struct http_span put(struct fake *f, size_t *off, const char *s)
{
    size_t n = strlen(s);
    struct http_span sp = {(uint32_t)*off, (uint32_t)n};
    assert_true(*off + n < sizeof(f->base));
    memcpy(f->base + *off, s, n);
    *off += n;
    return sp;
}

static void fake_init(struct fake *f, const char *url, const char *const *kv,
                      size_t n)
{
    size_t off = 0;
    memset(f, 0, sizeof(*f));
    f->h.base = f->base;
    f->h.headers = f->hdr;
    f->h.max_headers = 8;
    f->h.url = put(f, &off, url);
    for (size_t i = 0; i < n; i++) {
        f->hdr[i].name = put(f, &off, kv[2 * i]);
        f->hdr[i].value = put(f, &off, kv[2 * i + 1]);
    }
    f->h.nheaders = (unsigned)n;
}

static uint64_t H(const char *s)
{
    return hashkey_hash(s, strlen(s));
}

static void test_parse(void **st)
{
    (void)st;
    struct hashkey k;
    char buf[96];
    assert_int_equal(hashkey_parse("client", &k), 0);
    assert_int_equal(k.kind, HASHKEY_CLIENT);
    assert_int_equal(hashkey_parse("PATH", &k), 0);
    assert_int_equal(k.kind, HASHKEY_PATH);
    assert_string_equal(hashkey_format(&k, buf, sizeof(buf)), "path");
    assert_int_equal(hashkey_parse("header:X-User", &k), 0);
    assert_int_equal(k.kind, HASHKEY_HEADER);
    assert_int_equal(k.name_len, 6);
    assert_string_equal(hashkey_format(&k, buf, sizeof(buf)), "header:X-User");
    assert_int_equal(hashkey_parse("Cookie:session_id", &k), 0);
    assert_int_equal(k.kind, HASHKEY_COOKIE);
    assert_string_equal(hashkey_format(&k, buf, sizeof(buf)),
                        "cookie:session_id");
    static const char *const bad[] = {
        "",           "clients",    "header",      "header:",  "cookie:",
        "header:a b", "header:a:b", "cookie:x;y",  "header=X", " client",
        "path?",      "source",     "header:\x01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (hashkey_parse(bad[i], &k) == 0)
            fail_msg("accepted '%s'", bad[i]);
    char longname[HASHKEY_NAME_MAX + 16] = "header:";
    memset(longname + 7, 'a', HASHKEY_NAME_MAX);
    assert_int_equal(hashkey_parse(longname, &k), 0);
    strcat(longname, "a");
    assert_int_equal(hashkey_parse(longname, &k), -1);
}

/* The hash differs for near inputs and flips about half of the bits when
 * one input bit changes (FNV-1a alone would not, in the high bits). */
static void test_hash_spread(void **st)
{
    (void)st;
    assert_int_equal(H("abc"), H("abc"));
    assert_int_not_equal(H("user1"), H("user2"));
    assert_int_not_equal(H(""), H("a"));
    unsigned long bits = 0, n = 0;
    for (unsigned i = 0; i < 2000; i++) {
        char a[16];
        snprintf(a, sizeof(a), "k%u", i);
        uint64_t x = H(a);
        a[0] ^= 1;
        bits += (unsigned long)__builtin_popcountll(x ^ H(a));
        n++;
    }
    double avg = (double)bits / (double)n;
    if (avg < 30.0 || avg > 34.0)
        fail_msg("one flipped bit changed %.2f of 64 output bits", avg);
    /* High bits matter to the ring: keys "0".."9999" fill both halves. */
    unsigned high = 0;
    for (unsigned i = 0; i < 10000; i++) {
        char a[16];
        snprintf(a, sizeof(a), "%u", i);
        high += H(a) >> 63;
    }
    assert_in_range(high, 4800, 5200);
}

static void test_header_key(void **st)
{
    (void)st;
    struct hashkey k;
    struct fake f;
    enum hashkey_kind used;
    const char *kv[] = {"Host", "h", "x-user", "alice", "X-User", "bob"};
    assert_int_equal(hashkey_parse("header:X-User", &k), 0);
    fake_init(&f, "/", kv, 3);
    /* The first field of that name, case ignored in the name. */
    assert_int_equal(hashkey_of(&k, &f.h, "10.0.0.1", 8, &used), H("alice"));
    assert_int_equal(used, HASHKEY_HEADER);
    /* Absent: the client address. */
    fake_init(&f, "/", kv, 1);
    assert_int_equal(hashkey_of(&k, &f.h, "10.0.0.1", 8, &used), H("10.0.0.1"));
    assert_int_equal(used, HASHKEY_CLIENT);
    /* Empty: the next one of that name, else the client address. */
    const char *empty[] = {"X-User", "", "X-User", "carol"};
    fake_init(&f, "/", empty, 2);
    assert_int_equal(hashkey_of(&k, &f.h, "c", 1, &used), H("carol"));
    fake_init(&f, "/", empty, 1);
    assert_int_equal(hashkey_of(&k, &f.h, "c", 1, &used), H("c"));
    assert_int_equal(used, HASHKEY_CLIENT);
    /* A name that only starts the same is another header. */
    const char *pre[] = {"X-Users", "dave"};
    fake_init(&f, "/", pre, 1);
    assert_int_equal(hashkey_of(&k, &f.h, "c", 1, &used), H("c"));
    /* The blanks that end a value (kept in a field no check judges) are
     * not part of the key; only blanks count as empty. */
    const char *blanks[] = {"X-User", "erin \t", "X-User", " \t"};
    fake_init(&f, "/", blanks, 1);
    assert_int_equal(hashkey_of(&k, &f.h, "c", 1, &used), H("erin"));
    fake_init(&f, "/", blanks + 2, 1);
    assert_int_equal(hashkey_of(&k, &f.h, "c", 1, &used), H("c"));
}

static void test_cookie_key(void **st)
{
    (void)st;
    struct hashkey k;
    struct fake f;
    enum hashkey_kind used;
    assert_int_equal(hashkey_parse("cookie:sid", &k), 0);
    const char *kv[] = {"Cookie", "a=1; xsid=no; sid = abc ;b=2"};
    fake_init(&f, "/", kv, 1);
    assert_int_equal(hashkey_of(&k, &f.h, "c", 1, &used), H("abc"));
    assert_int_equal(used, HASHKEY_COOKIE);
    /* Quoted value; second Cookie field. */
    const char *two[] = {"cookie", "a=1", "COOKIE", "sid=\"q v\""};
    fake_init(&f, "/", two, 2);
    assert_int_equal(hashkey_of(&k, &f.h, "c", 1, &used), H("q v"));
    /* Missing, empty, names are case-sensitive: the client address. */
    static const char *const miss[] = {
        "a=1; b=2", "sid=", "sid=\"\"", "SID=x", ";;;", "sid", "", "=sid",
    };
    for (size_t i = 0; i < sizeof(miss) / sizeof(miss[0]); i++) {
        const char *m[] = {"Cookie", miss[i]};
        fake_init(&f, "/", m, 1);
        assert_int_equal(hashkey_of(&k, &f.h, "c", 1, &used), H("c"));
        assert_int_equal(used, HASHKEY_CLIENT);
    }
    /* Random bytes: never out of bounds, never a crash (ASan build). */
    uint64_t s = 12345;
    for (int it = 0; it < 20000; it++) {
        char v[64];
        size_t len = (size_t)(s % sizeof(v)), off, vl;
        for (size_t i = 0; i < len; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            v[i] = "sid=; \"\t\x00x"[s % 11];
        }
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        if (hashkey_cookie(v, len, "sid", 3, &off, &vl))
            assert_true(vl > 0 && off + vl <= len);
    }
}

static void test_path_and_client_key(void **st)
{
    (void)st;
    struct hashkey k;
    struct fake f;
    enum hashkey_kind used;
    assert_int_equal(hashkey_parse("path", &k), 0);
    static const struct {
        const char *url, *path;
    } cases[] = {
        {"/a/b?x=1", "/a/b"},
        {"/a/b", "/a/b"},
        {"/a/b#frag", "/a/b"},
        {"http://h:80/a/b?q", "/a/b"},
        {"https://host", "/"},
        {"http://host?x", "/"},
        {"*", "*"},
        {"/?only=query", "/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_init(&f, cases[i].url, NULL, 0);
        if (hashkey_of(&k, &f.h, "c", 1, &used) != H(cases[i].path))
            fail_msg("%s is not keyed as %s", cases[i].url, cases[i].path);
        assert_int_equal(used, HASHKEY_PATH);
    }
    assert_int_equal(hashkey_parse("client", &k), 0);
    const char *kv[] = {"X-User", "alice"};
    fake_init(&f, "/x", kv, 1);
    assert_int_equal(hashkey_of(&k, &f.h, "::1", 3, &used), H("::1"));
    assert_int_equal(used, HASHKEY_CLIENT);
    assert_int_equal(hashkey_of(&k, NULL, "::1", 3, &used), H("::1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_hash_spread),
        cmocka_unit_test(test_header_key),
        cmocka_unit_test(test_cookie_key),
        cmocka_unit_test(test_path_and_client_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
