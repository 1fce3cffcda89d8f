/*
 * retry: the retry-on words and the retry budget (see retry.h).
 */
#include "retry.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    unsigned bit;
} words[] = {
    {"connect", RETRY_CONNECT},
    {"reset", RETRY_RESET},
    {"timeout", RETRY_TIMEOUT},
    {"5xx", RETRY_5XX},
};

int retry_on_parse(const char *text, unsigned *mask)
{
    unsigned m = 0;
    const char *p = text;
    if (strcasecmp(text, "none") == 0) {
        *mask = 0;
        return 0;
    }
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            break;
        size_t i;
        for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strlen(words[i].name) == n &&
                strncasecmp(p, words[i].name, n) == 0)
                break;
        if (i == sizeof(words) / sizeof(words[0]))
            return -1;
        m |= words[i].bit;
        p += n;
    }
    *mask = m;
    return 0;
}

void retry_on_format(unsigned mask, char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (!(mask & words[i].bit))
            continue;
        int n = snprintf(buf + off, len - off, "%s%s", off ? "," : "",
                         words[i].name);
        if (n < 0 || (size_t)n >= len - off)
            return;
        off += (size_t)n;
    }
    if (off == 0)
        snprintf(buf, len, "none");
}

bool retry_budget_allows(unsigned active_requests, unsigned active_retries,
                         unsigned budget_percent, unsigned budget_min)
{
    unsigned long long allowed =
        (unsigned long long)active_requests * budget_percent / 100;
    if (allowed < budget_min)
        allowed = budget_min;
    return active_retries < allowed;
}

unsigned retry_per_try_ms(uint64_t tail_us, unsigned factor, unsigned min_ms,
                          unsigned max_ms, unsigned upstream_ms)
{
    if (min_ms == 0)
        return 0;
    uint64_t ms = tail_us ? (tail_us * factor + 999) / 1000 : max_ms;
    if (ms < min_ms)
        ms = min_ms;
    if (ms > max_ms)
        ms = max_ms;
    return ms < upstream_ms ? (unsigned)ms : 0;
}
