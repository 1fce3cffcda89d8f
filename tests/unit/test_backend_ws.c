/*
 * Unit tests of the emulator's WebSocket pieces: SHA-1 and base64 against
 * the FIPS 180 and RFC 4648 test vectors, and the handshake key of RFC 6455
 * section 1.3 through be_ws_head.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../backends/be_sha1.c"
#include "../../backends/be_ws.c"

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < BE_SHA1_LEN; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_sha1_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } v[] = {
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    };
    uint8_t d[BE_SHA1_LEN];
    char h[2 * BE_SHA1_LEN + 1];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        be_sha1(v[i].in, strlen(v[i].in), d);
        hex(d, h);
        assert_string_equal(h, v[i].want);
    }
    /* a million 'a's: many blocks, the length in two words */
    static char million[1000000];
    memset(million, 'a', sizeof(million));
    be_sha1(million, sizeof(million), d);
    hex(d, h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    /* 55 and 56 bytes: the padding fits one block, then needs two */
    be_sha1(million, 55, d);
    hex(d, h);
    assert_string_equal(h, "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    be_sha1(million, 56, d);
    hex(d, h);
    assert_string_equal(h, "c2db330f6083854c99d4b5bfb6e8f29f201be699");
}

static void test_base64_vectors(void **state)
{
    (void)state;
    static const char *const want[] = {
        "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char out[16];
    for (size_t n = 0; n <= 6; n++) {
        assert_int_equal(be_base64((const uint8_t *)"foobar", n, out),
                         strlen(want[n]));
        assert_string_equal(out, want[n]);
    }
}

static void test_handshake_key(void **state)
{
    (void)state;
    static struct conn c;
    static const char head[] = "GET /ws?flood=123 HTTP/1.1\r\nHost: t\r\n"
                               "upgrade: WebSocket\r\n"
                               "Connection: keep-alive, Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n";
    be_ws_head(&c, head, sizeof(head) - 1);
    assert_string_equal(c.ws.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(c.ws.flood, 123);
    static const char *const bad[] = {
        /* an old version of the protocol */
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 8\r\n\r\n",
        /* a key that is not 16 bytes in base64 */
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        /* no Connection: upgrade */
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        be_ws_head(&c, bad[i], strlen(bad[i]));
        assert_string_equal(c.ws.accept, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_vectors),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_handshake_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
