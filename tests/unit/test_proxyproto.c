/*
 * Unit tests of the PROXY protocol parser and builders: v1 TCP4/TCP6/
 * UNKNOWN lines and v2 PROXY/LOCAL headers with and without TLVs are read
 * with the right addresses and length (the first HTTP byte after them is
 * not part of the header); every proper prefix of a valid header asks for
 * more; garbage, malformed fields, a v1 line over 107 bytes, a v2 length
 * over the bound or too short for its family, datagram transports and bad
 * versions are invalid; what the builders write, the parser reads back.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxyproto.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static int parse_str(const char *s, struct proxyproto_hdr *h)
{
    return proxyproto_parse((const uint8_t *)s, strlen(s), h);
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t n)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(buf, n, "%s:%u", ip, ntohs(a->sin_port));
    } else {
        const struct sockaddr_in6 *a = (const void *)ss;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(buf, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
}

/* The header's source and destination, as "ip:port" / "[ip6]:port". */
static void assert_addrs(const struct proxyproto_hdr *h, const char *src,
                         const char *dst)
{
    char a[64];
    addr_text(&h->src, a, sizeof(a));
    assert_string_equal(a, src);
    addr_text(&h->dst, a, sizeof(a));
    assert_string_equal(a, dst);
}

/* Every proper prefix of a valid header is "more", never invalid. */
static void assert_prefixes_more(const uint8_t *b, size_t len)
{
    struct proxyproto_hdr h;
    for (size_t i = 0; i < len; i++) {
        int r = proxyproto_parse(b, i, &h);
        if (r != PROXYPROTO_MORE)
            fail_msg("prefix of %zu bytes: %d", i, r);
    }
}

static void test_v1_valid(void **state)
{
    (void)state;
    struct proxyproto_hdr h;
    const char *l4 = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET /";
    int n = parse_str(l4, &h);
    assert_int_equal(n, (int)(strchr(l4, '\n') - l4) + 1);
    assert_int_equal(h.version, 1);
    assert_true(h.has_addr);
    assert_addrs(&h, "203.0.113.7:56324", "192.0.2.1:443");
    assert_prefixes_more((const uint8_t *)l4, (size_t)n);

    const char *l6 = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
    assert_int_equal(parse_str(l6, &h), (int)strlen(l6));
    assert_addrs(&h, "[2001:db8::1]:0", "[::1]:65535");

    assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &h), 15);
    assert_false(h.has_addr);
    const char *unk = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 "
                      "65535\r\n";
    assert_int_equal(parse_str(unk, &h), (int)strlen(unk));
    assert_false(h.has_addr);

    /* the longest v1 line the spec allows: 107 bytes */
    const char *worst = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535"
                        "\r\n";
    assert_int_equal(strlen(worst), 104);
    assert_int_equal(parse_str(worst, &h), 104);
    char max[128];
    memset(max, 'x', sizeof(max));
    memcpy(max, "PROXY UNKNOWN ", 14);
    memcpy(max + 105, "\r\n", 2);
    assert_int_equal(proxyproto_parse((uint8_t *)max, 107, &h), 107);
}

static void test_v1_invalid(void **state)
{
    (void)state;
    struct proxyproto_hdr h;
    const char *bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXZ",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",     /* bare LF */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", /* CR not before LF */
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", /* two spaces */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", /* trailing space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", /* family mismatch */
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n",
        "PROXY \r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY TCP4 1.2.3.4\x01",
        "PROXY TCP4 1.2.3.4 \xff",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse_str(bad[i], &h);
        if (r != PROXYPROTO_INVALID)
            fail_msg("case %zu accepted (%d): %s", i, r, bad[i]);
    }
    /* no CR LF within 107 bytes: invalid at 107, more before */
    char longl[200];
    memset(longl, 'x', sizeof(longl));
    memcpy(longl, "PROXY UNKNOWN ", 14);
    assert_int_equal(proxyproto_parse((uint8_t *)longl, 106, &h),
                     PROXYPROTO_MORE);
    assert_int_equal(proxyproto_parse((uint8_t *)longl, 107, &h),
                     PROXYPROTO_INVALID);
    memcpy(longl + 106, "\r\n", 2); /* 108 bytes with the CR LF */
    assert_int_equal(proxyproto_parse((uint8_t *)longl, 108, &h),
                     PROXYPROTO_INVALID);
}

/* A v2 header: command, family byte, address block of alen bytes. */
static size_t v2(uint8_t *b, uint8_t cmd, uint8_t fam, size_t alen)
{
    memcpy(b, sig, 12);
    b[12] = cmd;
    b[13] = fam;
    b[14] = (uint8_t)(alen >> 8);
    b[15] = (uint8_t)alen;
    for (size_t i = 0; i < alen; i++)
        b[16 + i] = (uint8_t)(i + 1);
    return 16 + alen;
}

static void test_v2_valid(void **state)
{
    (void)state;
    struct proxyproto_hdr h;
    uint8_t b[PROXYPROTO_MAX + 64];
    size_t n = v2(b, 0x21, 0x11, 12);
    memcpy(b + 16, "\xcb\x00\x71\x07\xc0\x00\x02\x01\xdc\x04\x01\xbb", 12);
    memcpy(b + n, "GET", 3);
    assert_int_equal(proxyproto_parse(b, n + 3, &h), (int)n);
    assert_int_equal(h.version, 2);
    assert_true(h.has_addr);
    assert_addrs(&h, "203.0.113.7:56324", "192.0.2.1:443");
    assert_prefixes_more(b, n);

    /* IPv6 with TLVs after the addresses: skipped */
    n = v2(b, 0x21, 0x21, 36 + 20);
    memset(b + 16, 0, 32);
    b[16 + 15] = 9; /* src ::9 */
    b[32 + 15] = 1; /* dst ::1 */
    b[48] = 0x1f;   /* sport 8080 */
    b[49] = 0x90;
    b[50] = 0; /* dport 80 */
    b[51] = 80;
    assert_int_equal(proxyproto_parse(b, n, &h), (int)n);
    assert_addrs(&h, "[::9]:8080", "[::1]:80");

    /* LOCAL (health checks of the balancer in front): no address, even
     * with one in the block; PROXY over UNSPEC or a Unix socket: valid, no
     * address to use */
    const struct {
        uint8_t cmd, fam;
        size_t alen;
    } none[] = {
        {0x20, 0x00, 0}, {0x20, 0x11, 12}, {0x21, 0x00, 0}, {0x21, 0x31, 216}};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        n = v2(b, none[i].cmd, none[i].fam, none[i].alen);
        assert_int_equal(proxyproto_parse(b, n, &h), (int)n);
        assert_false(h.has_addr);
    }
    /* the largest header we take */
    n = v2(b, 0x21, 0x11, PROXYPROTO_MAX - 16);
    assert_int_equal(proxyproto_parse(b, n, &h), PROXYPROTO_MAX);
}

static void test_v2_invalid(void **state)
{
    (void)state;
    struct proxyproto_hdr h;
    uint8_t b[PROXYPROTO_MAX + 64];
    size_t n = v2(b, 0x21, 0x11, 12);
    b[5] ^= 1; /* signature */
    assert_int_equal(proxyproto_parse(b, n, &h), PROXYPROTO_INVALID);
    assert_int_equal(proxyproto_parse(b, 6, &h), PROXYPROTO_INVALID);
    struct {
        uint8_t cmd, fam;
        size_t alen;
    } bad[] = {
        {0x11, 0x11, 12}, /* version 1 in binary */
        {0x31, 0x11, 12}, /* version 3 */
        {0x22, 0x11, 12}, /* command 2 */
        {0x21, 0x12, 12}, /* UDP over IPv4 */
        {0x21, 0x22, 36}, /* UDP over IPv6 */
        {0x21, 0x41, 12}, /* family 4 */
        {0x21, 0x11, 11}, /* too short for IPv4 */
        {0x21, 0x21, 35}, /* too short for IPv6 */
        {0x21, 0x31, 215},
        {0x21, 0x11, PROXYPROTO_MAX - 15}, /* over our bound */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = v2(b, bad[i].cmd, bad[i].fam, bad[i].alen);
        if (n > sizeof(b))
            n = sizeof(b);
        int r = proxyproto_parse(b, n, &h);
        if (r != PROXYPROTO_INVALID)
            fail_msg("case %zu accepted (%d)", i, r);
        /* refused as soon as the bad byte arrived, not at the end */
        r = proxyproto_parse(b, 16, &h);
        if (r != PROXYPROTO_INVALID)
            fail_msg("case %zu: its first 16 bytes gave %d", i, r);
    }
    /* a huge announced length is refused at once, never waited for */
    n = v2(b, 0x21, 0x11, 12);
    b[14] = 0xff;
    b[15] = 0xff;
    assert_int_equal(proxyproto_parse(b, 16, &h), PROXYPROTO_INVALID);
}

static void test_build_round_trip(void **state)
{
    (void)state;
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(5555)};
    struct sockaddr_in d4 = {.sin_family = AF_INET, .sin_port = htons(9090)};
    inet_pton(AF_INET, "203.0.113.7", &s4.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &d4.sin_addr);
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    struct sockaddr_in6 d6 = {.sin6_family = AF_INET6,
                              .sin6_port = htons(65535)};
    inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
    inet_pton(AF_INET6, "::1", &d6.sin6_addr);
    const struct sockaddr *S4 = (const void *)&s4, *D4 = (const void *)&d4;
    const struct sockaddr *S6 = (const void *)&s6, *D6 = (const void *)&d6;
    char t[PROXYPROTO_V1_MAX + 1];
    uint8_t b[64];
    struct proxyproto_hdr h;

    int n = proxyproto_build_v1(t, sizeof(t), S4, D4);
    assert_string_equal(t, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 9090\r\n");
    assert_int_equal(proxyproto_parse((uint8_t *)t, (size_t)n, &h), n);
    n = proxyproto_build_v1(t, sizeof(t), S6, D6);
    assert_string_equal(t, "PROXY TCP6 2001:db8::7 ::1 1 65535\r\n");
    n = proxyproto_build_v1(t, sizeof(t), NULL, NULL);
    assert_string_equal(t, "PROXY UNKNOWN\r\n");
    n = proxyproto_build_v1(t, sizeof(t), S4, D6); /* mixed families */
    assert_string_equal(t, "PROXY UNKNOWN\r\n");
    assert_int_equal(proxyproto_build_v1(t, 10, S4, D4), -1);

    n = proxyproto_build_v2(b, sizeof(b), S4, D4);
    assert_int_equal(n, 28);
    assert_int_equal(proxyproto_parse(b, (size_t)n, &h), 28);
    assert_true(h.has_addr);
    assert_addrs(&h, "203.0.113.7:5555", "127.0.0.1:9090");
    n = proxyproto_build_v2(b, sizeof(b), S6, D6);
    assert_int_equal(n, 52);
    assert_int_equal(proxyproto_parse(b, (size_t)n, &h), 52);
    assert_addrs(&h, "[2001:db8::7]:1", "[::1]:65535");
    n = proxyproto_build_v2(b, sizeof(b), NULL, NULL); /* LOCAL */
    assert_int_equal(n, 16);
    assert_int_equal(b[12], 0x20);
    assert_int_equal(proxyproto_parse(b, 16, &h), 16);
    assert_false(h.has_addr);
    n = proxyproto_build_v2(b, sizeof(b), S4, NULL); /* PROXY, UNSPEC */
    assert_int_equal(n, 16);
    assert_int_equal(b[12], 0x21);
    assert_int_equal(b[13], 0x00);
    assert_int_equal(proxyproto_build_v2(b, 20, S4, D4), -1);
    assert_int_equal(proxyproto_build(1, b, sizeof(b), S4, D4), 44);
    assert_int_equal(proxyproto_build(2, b, sizeof(b), S4, D4), 28);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),
        cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v2_valid),
        cmocka_unit_test(test_v2_invalid),
        cmocka_unit_test(test_build_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
