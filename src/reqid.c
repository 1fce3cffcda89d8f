/*
 * reqid: keeping or making X-Request-Id values (see reqid.h).
 */
#include "reqid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t state;
static bool seeded;

void reqid_seed(unsigned long long seed)
{
    state = seed;
    seeded = true;
}

/* The first id's seed: the kernel's entropy when it has some to give
 * without blocking, else the clock and the pid (ids must only differ). */
static void seed_once(void)
{
    uint64_t s;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
            (uint64_t)getpid() << 32;
    }
    reqid_seed(s);
}

/* wyrand: a Weyl sequence through one 64x64->128 multiply and a fold. */
static uint64_t next64(void)
{
    state += 0xa0761d6478bd642full;
    __uint128_t t = (__uint128_t)state * (state ^ 0xe7037ed1a0b428dbull);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

bool reqid_sane(const char *s, size_t n)
{
    if (n == 0 || n > REQID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == ',')
            return false;
    }
    return true;
}

/* Two hex digits per byte value, made once: an id is then 16 two-byte
 * copies (the hot path: about 100 instructions for the whole id). */
static char hex_pairs[256][2];

static void hex_pairs_init(void)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 256; i++) {
        hex_pairs[i][0] = hex[i >> 4];
        hex_pairs[i][1] = hex[i & 15];
    }
}

void reqid_generate(char out[REQID_UUID_LEN + 1])
{
    /* where each of the 16 bytes goes in "8-4-4-4-12" */
    static const uint8_t at[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                   19, 21, 24, 26, 28, 30, 32, 34};
    if (!seeded)
        seed_once();
    if (hex_pairs[0][0] == '\0')
        hex_pairs_init();
    uint64_t hi = next64(), lo = next64();
    hi = (hi & ~0xf000ull) | 0x4000ull;       /* version 4 */
    lo = (lo & ~(3ull << 62)) | (2ull << 62); /* variant 10 */
    for (int i = 0; i < 8; i++) {
        memcpy(out + at[i], hex_pairs[(hi >> (56 - 8 * i)) & 0xff], 2);
        memcpy(out + at[8 + i], hex_pairs[(lo >> (56 - 8 * i)) & 0xff], 2);
    }
    out[8] = out[13] = out[18] = out[23] = '-';
    out[REQID_UUID_LEN] = '\0';
}

size_t reqid_assign(const struct http_head *h, char out[REQID_MAX + 1])
{
    const struct http_header *found = NULL;
    if (h->seen & (1u << HH_X_REQUEST_ID)) {
        for (unsigned i = 0; i < h->nheaders; i++) {
            if (h->headers[i].kind != HH_X_REQUEST_ID)
                continue;
            if (found) {
                found = NULL; /* two of them: neither is the id */
                break;
            }
            found = &h->headers[i];
        }
    }
    if (found) {
        const char *v = h->base + found->value.off;
        size_t n = found->value.len;
        if (reqid_sane(v, n)) {
            memcpy(out, v, n);
            out[n] = '\0';
            return n;
        }
    }
    reqid_generate(out);
    return REQID_UUID_LEN;
}
