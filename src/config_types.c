/*
 * config_types: the value types of the key table, each one table of
 * operations (parse, check, expect, print) so that a type's rules are written
 * once for the INI file, the flags, validation and --print-config.  Names
 * owned by the balancer (modes, scores) are asked of it, never copied.
 */
#include "config.h"
#include "config_impl.h"
#include "cpulist.h"
#include "net.h"
#include "retry.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_BOOL_TEXT "a boolean (true/false, yes/no, on/off, 1/0)"

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int config_parse_ull(const char *v, bool size_suffix, unsigned long long *out)
{
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0)
        return -1;
    if (size_suffix && *end != '\0' && end[1] == '\0') {
        static const char units[] = "kmg";
        const char *u = strchr(units, tolower((unsigned char)*end));
        if (!u)
            return -1;
        unsigned shift = 10 * (unsigned)(u - units + 1); /* k=10, m=20 */
        if (x > (ULLONG_MAX >> shift))
            return -1;
        x <<= shift;
        end++;
    }
    if (*end != '\0')
        return -1;
    *out = x;
    return 0;
}

int config_parse_addr(const char *s, char *host, size_t hostlen, char *port,
                      size_t portlen)
{
    struct net_addr a;
    if (net_parse(s, &a, NULL, 0) < 0)
        return -1;
    int pn = net_port((struct sockaddr *)&a.ss);
    if (pn < 1)
        return -1; /* a configured address names a real port */
    char hb[NET_ADDRSTRLEN], pb[12];
    if (net_format_ip((struct sockaddr *)&a.ss, hb, sizeof(hb)) < 0)
        return -1;
    snprintf(pb, sizeof(pb), "%d", pn);
    if (config_copy_str(host, hostlen, hb) < 0 ||
        config_copy_str(port, portlen, pb) < 0)
        return -1;
    return 0;
}

/* Normalises an address into "host:port" / "[v6]:port"; -1 if invalid. */
static int norm_addr(const char *s, char *out, size_t len)
{
    char host[NET_ADDRSTRLEN], port[8];
    if (config_parse_addr(s, host, sizeof(host), port, sizeof(port)) < 0)
        return -1;
    return net_join(out, len, host, port);
}

/* ---- the value types --------------------------------------------------- */

/* Strings: any text that fits the field. */
static int str_parse(const struct config_key *k, const char *v, void *dst)
{
    return config_copy_str(dst, k->size, v);
}

static bool str_check(const struct config_key *k, const void *p)
{
    return memchr(p, '\0', k->size) != NULL;
}

static void str_expect(const struct config_key *k, char *buf, size_t len)
{
    snprintf(buf, len, "at most %zu characters", k->size - 1);
}

static void str_print(const struct config_key *k, const void *p, char *buf,
                      size_t len)
{
    (void)k;
    snprintf(buf, len, "%s", (const char *)p);
}

const struct config_type config_type_str = {str_parse, str_check, str_expect,
                                            str_print};

/* Addresses: stored normalised, so that "localhost:09" prints as
 * 127.0.0.1:9. */
static int addr_parse(const struct config_key *k, const char *v, void *dst)
{
    return norm_addr(v, dst, k->size);
}

static bool addr_check(const struct config_key *k, const void *p)
{
    char tmp[CONFIG_TEXT_MAX];
    return str_check(k, p) && norm_addr(p, tmp, sizeof(tmp)) == 0;
}

static void addr_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len, "%s", CONFIG_ADDR_TEXT);
}

const struct config_type config_type_addr = {addr_parse, addr_check,
                                             addr_expect, str_print};

/* An address, or "off" (any case, stored lower case). */
static int addr_off_parse(const struct config_key *k, const char *v, void *dst)
{
    if (strcasecmp(v, "off") == 0)
        return config_copy_str(dst, k->size, "off");
    return addr_parse(k, v, dst);
}

static bool addr_off_check(const struct config_key *k, const void *p)
{
    return (str_check(k, p) && strcmp(p, "off") == 0) || addr_check(k, p);
}

static void addr_off_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len, "%s or off", CONFIG_ADDR_TEXT);
}

const struct config_type config_type_addr_off = {addr_off_parse, addr_off_check,
                                                 addr_off_expect, str_print};

/* A comma-separated list of addresses (blanks around each allowed), stored
 * normalised and comma-joined; "" is the empty list. */
static int addr_list_parse(const struct config_key *k, const char *v, void *dst)
{
    char buf[CONFIG_TEXT_MAX], one[CONFIG_TEXT_MAX];
    char *out = dst, *tok = buf;
    size_t off = 0;
    if (config_copy_str(buf, sizeof(buf), v) < 0)
        return -1;
    out[0] = '\0';
    if (config_trim(buf)[0] == '\0')
        return 0;
    for (bool more = true; more;) {
        char *comma = strchr(tok, ',');
        more = comma != NULL;
        if (comma)
            *comma = '\0';
        /* an empty element ("a,,b", a trailing ',') is an error */
        if (norm_addr(config_trim(tok), one, sizeof(one)) < 0)
            return -1;
        int n = snprintf(out + off, k->size - off, "%s%s", off ? "," : "", one);
        if (n < 0 || (size_t)n >= k->size - off)
            return -1;
        off += (size_t)n;
        if (more)
            tok = comma + 1;
    }
    return 0;
}

static bool addr_list_check(const struct config_key *k, const void *p)
{
    char tmp[CONFIG_VALUE_MAX];
    struct config_key big = *k;
    big.size = sizeof(tmp);
    return str_check(k, p) && addr_list_parse(&big, p, tmp) == 0 &&
           strcmp(tmp, p) == 0;
}

static void addr_list_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len,
             "a comma-separated list of %s, or nothing for /etc/resolv.conf",
             CONFIG_ADDR_TEXT);
}

const struct config_type config_type_addr_list = {
    addr_list_parse, addr_list_check, addr_list_expect, str_print};

/* Integers in min..max.  The field is any unsigned integer of 4 or 8 bytes,
 * or a non-negative int (read as unsigned, a negative one is out of
 * range); the unit test checks every integer key's size. */
static unsigned long long int_load(const struct config_key *k, const void *p)
{
    if (k->size == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static int int_parse(const struct config_key *k, const char *v, void *dst)
{
    unsigned long long u;
    /* the range is checked here too: storing first could truncate */
    if (config_parse_ull(v, k->flags & CF_SIZE, &u) < 0 || u < k->min ||
        u > k->max)
        return -1;
    if (k->size == sizeof(uint32_t)) {
        uint32_t w = (uint32_t)u;
        memcpy(dst, &w, sizeof(w));
    } else {
        uint64_t w = u;
        memcpy(dst, &w, sizeof(w));
    }
    return 0;
}

static bool int_check(const struct config_key *k, const void *p)
{
    unsigned long long u = int_load(k, p);
    return u >= k->min && u <= k->max;
}

static void int_expect(const struct config_key *k, char *buf, size_t len)
{
    snprintf(buf, len, "an integer in %llu..%llu%s", k->min, k->max,
             (k->flags & CF_SIZE) ? " (k/m/g suffix allowed)" : "");
}

static void int_print(const struct config_key *k, const void *p, char *buf,
                      size_t len)
{
    snprintf(buf, len, "%llu", int_load(k, p));
}

const struct config_type config_type_int = {int_parse, int_check, int_expect,
                                            int_print};

/* Numbers (double) with dmin < value <= dmax; no nan or inf. */
static int num_parse(const struct config_key *k, const char *v, void *dst)
{
    (void)k;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno != 0 || !isfinite(d))
        return -1;
    memcpy(dst, &d, sizeof(d));
    return 0;
}

static bool num_check(const struct config_key *k, const void *p)
{
    double d;
    memcpy(&d, p, sizeof(d));
    return d > k->dmin && d <= k->dmax; /* false for nan too */
}

static void num_expect(const struct config_key *k, char *buf, size_t len)
{
    snprintf(buf, len, "a number greater than %g and at most %g", k->dmin,
             k->dmax);
}

/* The shortest decimal that reads back as the same double. */
static void num_print(const struct config_key *k, const void *p, char *buf,
                      size_t len)
{
    (void)k;
    double d;
    memcpy(&d, p, sizeof(d));
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
}

const struct config_type config_type_num = {num_parse, num_check, num_expect,
                                            num_print};

/* Booleans; a bool field holds nothing but true or false. */
static int bool_parse(const struct config_key *k, const char *v, void *dst)
{
    (void)k;
    return parse_bool(v, dst);
}

static bool bool_check(const struct config_key *k, const void *p)
{
    (void)k;
    (void)p;
    return true;
}

static void bool_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len, "%s", CONFIG_BOOL_TEXT);
}

static void bool_print(const struct config_key *k, const void *p, char *buf,
                       size_t len)
{
    (void)k;
    snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false");
}

const struct config_type config_type_bool = {bool_parse, bool_check,
                                             bool_expect, bool_print};

/* The connection model: a boolean, or the words persistent and
 * non-persistent (spelt as loosely as mode names). */
static int model_parse(const struct config_key *k, const char *v, void *dst)
{
    bool *b = dst;
    if (balancer_name_eq(v, "persistent"))
        *b = true;
    else if (balancer_name_eq(v, "non-persistent"))
        *b = false;
    else
        return bool_parse(k, v, dst);
    return 0;
}

static void model_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len, "persistent, non-persistent or %s", CONFIG_BOOL_TEXT);
}

const struct config_type config_type_model = {model_parse, bool_check,
                                              model_expect, bool_print};

/* A balancer policy, stored under the canonical name the balancer's
 * registry gives it. */
static int mode_parse(const struct config_key *k, const char *v, void *dst)
{
    const struct balancer_policy *p = balancer_find(v);
    return p ? config_copy_str(dst, k->size, p->name) : -1;
}

static bool mode_check(const struct config_key *k, const void *p)
{
    return str_check(k, p) && balancer_find(p) != NULL;
}

static void mode_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    char names[CONFIG_TEXT_MAX];
    balancer_names(names, sizeof(names));
    snprintf(buf, len, "one of %s", names);
}

const struct config_type config_type_mode = {mode_parse, mode_check,
                                             mode_expect, str_print};

/* Score names: -1 is "default" (each policy's own choice), then the
 * balancer's own names; its enum counts up from 0 and a value past the last
 * has no name that reads back.  NULL when v is not a score. */
static const char *score_name(int v)
{
    if (v == -1)
        return "default";
    if (v < -1)
        return NULL;
    const char *s = balancer_score_mode_str((enum balancer_score_mode)v);
    return balancer_score_mode_parse(s) == v ? s : NULL;
}

static int score_parse(const struct config_key *k, const char *v, void *dst)
{
    (void)k;
    const char *s;
    for (int i = -1; (s = score_name(i)) != NULL; i++) {
        if (balancer_name_eq(v, s)) {
            memcpy(dst, &i, sizeof(i));
            return 0;
        }
    }
    return -1;
}

static bool score_check(const struct config_key *k, const void *p)
{
    (void)k;
    int v;
    memcpy(&v, p, sizeof(v));
    return score_name(v) != NULL;
}

static void score_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    size_t off = (size_t)snprintf(buf, len, "one of");
    const char *s;
    for (int i = -1; (s = score_name(i)) != NULL && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s %s",
                                i > -1 ? "," : "", s);
}

static void score_print(const struct config_key *k, const void *p, char *buf,
                        size_t len)
{
    (void)k;
    int v;
    memcpy(&v, p, sizeof(v));
    const char *s = score_name(v);
    snprintf(buf, len, "%s", s ? s : "default");
}

const struct config_type config_type_score = {score_parse, score_check,
                                              score_expect, score_print};

/* What may be retried: a comma list of retry.h's words. */
static int retry_on_type_parse(const struct config_key *k, const char *v,
                               void *dst)
{
    (void)k;
    unsigned m;
    if (retry_on_parse(v, &m) < 0)
        return -1;
    memcpy(dst, &m, sizeof(m));
    return 0;
}

static bool retry_on_check(const struct config_key *k, const void *p)
{
    (void)k;
    unsigned m;
    memcpy(&m, p, sizeof(m));
    return (m & ~(unsigned)(RETRY_CONNECT | RETRY_RESET | RETRY_TIMEOUT |
                            RETRY_5XX)) == 0;
}

static void retry_on_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len,
             "a comma list of connect, reset, timeout, 5xx (or none)");
}

static void retry_on_print(const struct config_key *k, const void *p, char *buf,
                           size_t len)
{
    (void)k;
    unsigned m;
    memcpy(&m, p, sizeof(m));
    retry_on_format(m, buf, len);
}

const struct config_type config_type_retry_on = {
    retry_on_type_parse, retry_on_check, retry_on_expect, retry_on_print};

/* The PROXY protocol version sent to backends, by enum config_send_proxy. */
static const char *const send_proxy_words[] = {"off", "v1", "v2"};
#define SEND_PROXY_N (sizeof(send_proxy_words) / sizeof(send_proxy_words[0]))

static int send_proxy_parse(const struct config_key *k, const char *v,
                            void *dst)
{
    (void)k;
    for (int i = 0; i < (int)SEND_PROXY_N; i++) {
        if (strcasecmp(v, send_proxy_words[i]) == 0) {
            memcpy(dst, &i, sizeof(i));
            return 0;
        }
    }
    return -1;
}

static bool send_proxy_check(const struct config_key *k, const void *p)
{
    (void)k;
    int v;
    memcpy(&v, p, sizeof(v));
    return v >= 0 && v < (int)SEND_PROXY_N;
}

static void send_proxy_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len, "one of off, v1, v2");
}

static void send_proxy_print(const struct config_key *k, const void *p,
                             char *buf, size_t len)
{
    (void)k;
    int v;
    memcpy(&v, p, sizeof(v));
    snprintf(buf, len, "%s",
             send_proxy_check(k, p) ? send_proxy_words[v] : "off");
}

const struct config_type config_type_send_proxy = {
    send_proxy_parse, send_proxy_check, send_proxy_expect, send_proxy_print};

/* The hash policy's key: a struct hashkey, written as its spec. */
static int hash_key_parse(const struct config_key *k, const char *v, void *dst)
{
    (void)k;
    struct hashkey hk;
    if (hashkey_parse(v, &hk) < 0)
        return -1;
    memcpy(dst, &hk, sizeof(hk));
    return 0;
}

static bool hash_key_check(const struct config_key *k, const void *p)
{
    (void)k;
    struct hashkey hk, back;
    char text[HASHKEY_NAME_MAX + 16];
    memcpy(&hk, p, sizeof(hk));
    return hk.name_len <= HASHKEY_NAME_MAX &&
           hashkey_parse(hashkey_format(&hk, text, sizeof(text)), &back) == 0 &&
           back.kind == hk.kind;
}

static void hash_key_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len, "client, path, header:NAME or cookie:NAME");
}

static void hash_key_print(const struct config_key *k, const void *p, char *buf,
                           size_t len)
{
    (void)k;
    struct hashkey hk;
    memcpy(&hk, p, sizeof(hk));
    hashkey_format(&hk, buf, len);
}

const struct config_type config_type_hash_key = {
    hash_key_parse, hash_key_check, hash_key_expect, hash_key_print};

/* A factor: 0 (off), or a number in dmin..dmax. */
static bool factor_check(const struct config_key *k, const void *p)
{
    double d;
    memcpy(&d, p, sizeof(d));
    return d == 0.0 || (d >= k->dmin && d <= k->dmax);
}

static void factor_expect(const struct config_key *k, char *buf, size_t len)
{
    snprintf(buf, len, "0 (off) or a number from %g to %g", k->dmin, k->dmax);
}

const struct config_type config_type_factor = {num_parse, factor_check,
                                               factor_expect, num_print};

/* Worker processes: "auto" (stored 0: the CPUs the process may run on) or
 * a count in min..max. */
static int workers_parse(const struct config_key *k, const char *v, void *dst)
{
    unsigned w = 0;
    if (strcasecmp(v, "auto") != 0) {
        unsigned long long u;
        if (config_parse_ull(v, false, &u) < 0 || u < k->min || u > k->max)
            return -1;
        w = (unsigned)u;
    }
    memcpy(dst, &w, sizeof(w));
    return 0;
}

static bool workers_check(const struct config_key *k, const void *p)
{
    unsigned w;
    memcpy(&w, p, sizeof(w));
    return w == 0 || (w >= k->min && w <= k->max);
}

static void workers_expect(const struct config_key *k, char *buf, size_t len)
{
    snprintf(buf, len, "auto or an integer in %llu..%llu", k->min, k->max);
}

static void workers_print(const struct config_key *k, const void *p, char *buf,
                          size_t len)
{
    (void)k;
    unsigned w;
    memcpy(&w, p, sizeof(w));
    if (w == 0)
        snprintf(buf, len, "auto");
    else
        snprintf(buf, len, "%u", w);
}

const struct config_type config_type_workers = {workers_parse, workers_check,
                                                workers_expect, workers_print};

/* A CPU list ("0,1", "0-3"; "" for none), kept as text. */
static bool cpus_check(const struct config_key *k, const void *p)
{
    int cpus[CPULIST_MAX];
    return str_check(k, p) && cpulist_parse(p, cpus, CPULIST_MAX) >= 0;
}

static int cpus_parse(const struct config_key *k, const char *v, void *dst)
{
    if (str_parse(k, v, dst) < 0 || !cpus_check(k, dst))
        return -1;
    return 0;
}

static void cpus_expect(const struct config_key *k, char *buf, size_t len)
{
    (void)k;
    snprintf(buf, len,
             "a CPU list such as 0,1 or 0-3 (at most %d CPUs), or "
             "nothing",
             CPULIST_MAX);
}

const struct config_type config_type_cpus = {cpus_parse, cpus_check,
                                             cpus_expect, str_print};
