/*
 * reqid: keeping or making X-Request-Id values (see reqid.h).
 */
#include "reqid.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
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

#ifdef __SSE2__
/* The 32 lowercase hex digits of hi then lo, most significant first:
 * each nibble becomes a byte (shift, mask, interleave), then '0' +
 * nibble, plus 'a' - '0' - 10 for those over 9, 16 digits at a time. */
static void hex32(char t[32], uint64_t hi, uint64_t lo)
{
    __m128i x = _mm_set_epi64x((long long)__builtin_bswap64(lo),
                               (long long)__builtin_bswap64(hi));
    __m128i m = _mm_set1_epi8(0x0f);
    __m128i up = _mm_and_si128(_mm_srli_epi16(x, 4), m);
    __m128i down = _mm_and_si128(x, m);
    __m128i n[2] = {_mm_unpacklo_epi8(up, down), _mm_unpackhi_epi8(up, down)};
    for (int i = 0; i < 2; i++) {
        __m128i over9 = _mm_cmpgt_epi8(n[i], _mm_set1_epi8(9));
        __m128i add =
            _mm_add_epi8(_mm_set1_epi8('0'),
                         _mm_and_si128(over9, _mm_set1_epi8('a' - '0' - 10)));
        _mm_storeu_si128((__m128i *)(void *)(t + 16 * i),
                         _mm_add_epi8(n[i], add));
    }
}
#else
static void hex32(char t[32], uint64_t hi, uint64_t lo)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        t[i] = hex[(hi >> (60 - 4 * i)) & 15];
        t[16 + i] = hex[(lo >> (60 - 4 * i)) & 15];
    }
}
#endif

void reqid_generate(char out[REQID_UUID_LEN + 1])
{
    if (!seeded)
        seed_once();
    uint64_t hi = next64(), lo = next64();
    hi = (hi & ~0xf000ull) | 0x4000ull;       /* version 4 */
    lo = (lo & ~(3ull << 62)) | (2ull << 62); /* variant 10 */
    char t[32]; /* the digits, then in "8-4-4-4-12" */
    hex32(t, hi, lo);
    memcpy(out, t, 8);
    memcpy(out + 9, t + 8, 4);
    memcpy(out + 14, t + 12, 4);
    memcpy(out + 19, t + 16, 4);
    memcpy(out + 24, t + 20, 12);
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
