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

void reqid_generate(char out[REQID_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    if (!seeded)
        seed_once();
    uint64_t hi = next64(), lo = next64();
    hi = (hi & ~0xf000ull) | 0x4000ull;       /* version 4 */
    lo = (lo & ~(3ull << 62)) | (2ull << 62); /* variant 10 */
    uint8_t b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(hi >> (56 - 8 * i));
        b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0xf];
    }
    *p = '\0';
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
