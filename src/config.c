/*
 * config: built-in defaults, the INI file (inih) and the command line, all
 * driven by one table of keys, then validation before any socket is bound.
 *
 * Every INI key is also reachable from the command line as
 * `--set section.key=value`; the dedicated flags (--mode, --listen, ...) go
 * through the same table so that the file and the flags accept exactly the
 * same values and report errors the same way.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CONFIG_TIMEOUT_MAX 86400000u /* one day, in ms */
#define CONFIG_WEIGHT_MAX 10000u
#define CONFIG_SMA_MAX 10000u
#define CONFIG_ID_MAX (sizeof(((struct config_backend *)0)->id) - 1)
#define CONFIG_FMT(a, b) __attribute__((format(printf, a, b)))

enum config_type {
    CT_STR,      /* char array; too long is an error */
    CT_ADDR,     /* char array holding a checked ADDR:PORT */
    CT_ADDR_OFF, /* the same, or "off" */
    CT_UINT,     /* unsigned in min..max */
    CT_INT,      /* int in min..max (non-negative) */
    CT_ULL,      /* unsigned long long in min..max */
    CT_U64,      /* uint64_t in min..max */
    CT_DOUBLE,   /* double with dmin < value <= dmax */
    CT_BOOL,     /* true/false yes/no on/off 1/0 */
    CT_MODE,     /* a balancer policy name, stored canonical */
    CT_MODEL,    /* persistent / non-persistent, or a boolean */
    CT_SCORE,    /* default / latency / latency_x_inflight / predicted */
};

#define CF_SIZE 1u  /* accepts a k/m/g suffix (binary multiples) */
#define CF_ALIAS 2u /* another spelling of a key: not printed */

struct config_key {
    const char *section;
    const char *key;
    enum config_type type;
    unsigned flags;
    size_t off, size;
    unsigned long long min, max;
    double dmin, dmax;
};

#define CFG_FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define K_STR(s, k, f)                                                         \
    {                                                                          \
        s, k, CT_STR, 0, CFG_FIELD(f), 0, 0, 0, 0                              \
    }
#define K_TYPE(s, k, t, fl, f)                                                 \
    {                                                                          \
        s, k, t, fl, CFG_FIELD(f), 0, 0, 0, 0                                  \
    }
#define K_NUM(s, k, t, fl, f, lo, hi)                                          \
    {                                                                          \
        s, k, t, fl, CFG_FIELD(f), lo, hi, 0, 0                                \
    }
#define K_UINT(s, k, f, lo, hi) K_NUM(s, k, CT_UINT, 0, f, lo, hi)
#define K_MS(s, k, f) K_UINT(s, k, f, 1, CONFIG_TIMEOUT_MAX)

static const struct config_key config_keys[] = {
    K_TYPE("proxy", "listen", CT_ADDR, 0, listen),
    K_TYPE("proxy", "admin", CT_ADDR_OFF, 0, admin),
    K_TYPE("proxy", "mode", CT_MODE, 0, mode),
    K_TYPE("proxy", "persistent", CT_MODEL, 0, persistent),
    K_TYPE("proxy", "connection", CT_MODEL, CF_ALIAS, persistent),
    K_STR("proxy", "log", log_path),
    K_UINT("proxy", "log_flush_ms", log_flush_ms, 10, 3600000),
    K_STR("proxy", "dashboard_dir", dashboard_dir),
    K_STR("proxy", "logs_dir", logs_dir),
    K_NUM("proxy", "verbosity", CT_INT, 0, verbosity, 0, 3),

    K_MS("timeouts", "client_header_ms", client_header_timeout_ms),
    K_MS("timeouts", "client_body_ms", client_body_timeout_ms),
    K_MS("timeouts", "keepalive_ms", keepalive_timeout_ms),
    K_MS("timeouts", "client_write_ms", client_write_timeout_ms),
    K_MS("timeouts", "upstream_connect_ms", upstream_connect_timeout_ms),
    K_MS("timeouts", "upstream_ms", upstream_timeout_ms),
    K_MS("timeouts", "drain_ms", drain_timeout_ms),

    K_NUM("limits", "max_head_bytes", CT_UINT, CF_SIZE, max_head_bytes, 1024,
          1u << 20),
    K_UINT("limits", "max_headers", max_headers, 1, 10000),
    K_NUM("limits", "max_body_bytes", CT_ULL, CF_SIZE, max_body_bytes, 0,
          1ull << 50),
    K_UINT("limits", "max_clients", max_clients, 1, 1000000),
    K_NUM("limits", "buffer_bytes", CT_UINT, CF_SIZE, buffer_bytes, 4096,
          1u << 24),
    K_UINT("limits", "max_retries", max_retries, 0, CONFIG_MAX_BACKENDS - 1),

    K_UINT("pool", "max_idle", pool_max_idle, 0, 100000),
    K_MS("pool", "idle_timeout_ms", pool_idle_timeout_ms),
    K_TYPE("pool", "reset_on_close", CT_BOOL, 0, pool_reset_on_close),

    K_UINT("balancer", "sma_window", balancer.sma_window, 1, CONFIG_SMA_MAX),
    {"balancer", "ewma_alpha", CT_DOUBLE, 0, CFG_FIELD(balancer.ewma_alpha), 0,
     0, 0.0, 1.0},
    K_UINT("balancer", "ewma_decay_ms", balancer.ewma_decay_ms, 0,
           CONFIG_TIMEOUT_MAX),
    K_TYPE("balancer", "load_aware", CT_BOOL, 0, balancer.load_aware),
    K_TYPE("balancer", "ewma_score", CT_SCORE, 0, balancer.ewma_score),
    K_UINT("balancer", "probe_interval_ms", balancer.probe_interval_ms, 0,
           CONFIG_TIMEOUT_MAX),
    K_UINT("balancer", "penalty_ms", balancer.penalty_ms, 0,
           CONFIG_TIMEOUT_MAX),
    K_MS("balancer", "peak_tau_ms", balancer.peak_tau_ms),
    K_NUM("balancer", "seed", CT_U64, 0, balancer.seed, 0, UINT64_MAX),

    K_STR("health", "check_path", health_check_path),
    K_UINT("health", "check_interval_ms", health_check_interval_ms, 100,
           CONFIG_TIMEOUT_MAX),
    K_UINT("health", "max_fails", balancer.max_fails, 0, 1000000),
    K_MS("health", "fail_timeout_ms", balancer.fail_timeout_ms),
    K_MS("health", "max_eject_ms", balancer.max_eject_ms),
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const char *const config_sections[] = {
    "proxy", "timeouts", "limits", "pool", "balancer", "health", "backends",
};

#define CONFIG_MODES_TEXT                                                      \
    "round-robin, adaptive_sma, adaptive_ewma, least-conn, p2c-peak-ewma"

static const struct {
    const char *name;
    int value;
} config_scores[] = {
    {"default", -1},
    {"latency", BALANCER_SCORE_LATENCY},
    {"latency_x_inflight", BALANCER_SCORE_LATENCY_X_INFLIGHT},
    {"predicted", BALANCER_SCORE_PREDICTED},
    {"fill", BALANCER_SCORE_FILL},
};

#define CONFIG_ADDR_TEXT                                                       \
    "ADDR:PORT (a.b.c.d:port or [ipv6]:port, port 1..65535)"
#define CONFIG_BOOL_TEXT "a boolean (true/false, yes/no, on/off, 1/0)"

/* Where --help/--version/--check write; tests point it at a file. */
static FILE *config_stdout;

static FILE *config_out(void)
{
    return config_stdout ? config_stdout : stdout;
}

static void CONFIG_FMT(3, 4)
    set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copies src into dst[size]; -1 (dst untouched) when it does not fit. */
static int copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* Compares ignoring case, with '-' and '_' equal. */
static bool name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        int x = (*a == '_') ? '-' : (*a >= 'A' && *a <= 'Z') ? *a + 32 : *a;
        int y = (*b == '_') ? '-' : (*b >= 'A' && *b <= 'Z') ? *b + 32 : *b;
        if (x != y)
            return false;
        if (x == '\0')
            return true;
    }
}

/* The policy's canonical name for a mode name or alias (the balancer's own
 * registry decides, so config and balancer can never disagree); NULL if
 * unknown. */
static const char *mode_canonical(const char *name)
{
    const struct balancer_policy *p = balancer_find(name);
    return p ? p->name : NULL;
}

static const char *score_name(int v)
{
    for (size_t i = 0; i < sizeof(config_scores) / sizeof(config_scores[0]);
         i++)
        if (config_scores[i].value == v)
            return config_scores[i].name;
    return NULL;
}

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

/* Decimal digits only (no sign, no blanks), optionally k/m/g (x1024^n). */
static int parse_ull(const char *v, bool size_suffix, unsigned long long *out)
{
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0)
        return -1;
    if (size_suffix && *end != '\0' && end[1] == '\0') {
        unsigned shift = 0;
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            return -1;
        }
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

static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > CONFIG_ID_MAX)
        return false;
    for (; *id; id++) {
        char ch = *id;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* "A".."Z", then "AA", "AB", ... for the i-th backend without an id. */
static void default_id(size_t i, char *buf, size_t len)
{
    if (i < 26)
        snprintf(buf, len, "%c", (char)('A' + i));
    else
        snprintf(buf, len, "%c%c", (char)('A' + i / 26 - 1),
                 (char)('A' + i % 26));
}

int config_parse_addr(const char *s, char *host, size_t hostlen, char *port,
                      size_t portlen)
{
    const char *h, *p;
    size_t hl;
    int family;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        p = rb + 2;
        family = AF_INET6;
    } else {
        const char *colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -1;
        h = s;
        hl = (size_t)(colon - s);
        p = colon + 1;
        family = AF_INET;
    }
    char hb[INET6_ADDRSTRLEN];
    if (hl == 0 || hl >= sizeof(hb))
        return -1;
    memcpy(hb, h, hl);
    hb[hl] = '\0';
    if (family == AF_INET && strcasecmp(hb, "localhost") == 0)
        strcpy(hb, "127.0.0.1");
    unsigned char bin[16];
    if (inet_pton(family, hb, bin) != 1)
        return -1;
    unsigned long long pn;
    if (strlen(p) > 5 || parse_ull(p, false, &pn) < 0 || pn < 1 || pn > 65535)
        return -1;
    char pb[8];
    snprintf(pb, sizeof(pb), "%llu", pn);
    if (copy_str(host, hostlen, hb) < 0 || copy_str(port, portlen, pb) < 0)
        return -1;
    return 0;
}

/* Normalises an address into "host:port" / "[v6]:port"; -1 if invalid. */
static int norm_addr(const char *s, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN], port[8];
    if (config_parse_addr(s, host, sizeof(host), port, sizeof(port)) < 0)
        return -1;
    int n = strchr(host, ':') ? snprintf(out, len, "[%s]:%s", host, port)
                              : snprintf(out, len, "%s:%s", host, port);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static const struct config_key *key_find(const char *section, const char *key)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcasecmp(config_keys[i].section, section) == 0 &&
            strcasecmp(config_keys[i].key, key) == 0)
            return &config_keys[i];
    return NULL;
}

static bool section_known(const char *section)
{
    for (size_t i = 0; i < sizeof(config_sections) / sizeof(char *); i++)
        if (strcasecmp(config_sections[i], section) == 0)
            return true;
    return false;
}

/* Stores value v for key k into c; on error writes what was expected into
 * what[] and returns -1 (c untouched). */
static int key_apply(struct config *c, const struct config_key *k,
                     const char *v, char *what, size_t wlen)
{
    void *p = (char *)c + k->off;
    unsigned long long u;
    bool b;
    switch (k->type) {
    case CT_STR:
        if (copy_str(p, k->size, v) < 0) {
            set_err(what, wlen, "at most %zu characters", k->size - 1);
            return -1;
        }
        return 0;
    case CT_ADDR:
    case CT_ADDR_OFF:
        if (k->type == CT_ADDR_OFF && strcasecmp(v, "off") == 0) {
            strcpy(p, "off");
            return 0;
        }
        if (norm_addr(v, p, k->size) < 0) {
            set_err(what, wlen, "%s%s", CONFIG_ADDR_TEXT,
                    k->type == CT_ADDR_OFF ? " or off" : "");
            return -1;
        }
        return 0;
    case CT_UINT:
    case CT_INT:
    case CT_ULL:
    case CT_U64:
        if (parse_ull(v, k->flags & CF_SIZE, &u) < 0 || u < k->min ||
            u > k->max) {
            set_err(what, wlen, "an integer in %llu..%llu%s", k->min, k->max,
                    (k->flags & CF_SIZE) ? " (k/m/g suffix allowed)" : "");
            return -1;
        }
        if (k->type == CT_UINT)
            *(unsigned *)p = (unsigned)u;
        else if (k->type == CT_INT)
            *(int *)p = (int)u;
        else if (k->type == CT_ULL)
            *(unsigned long long *)p = u;
        else
            *(uint64_t *)p = (uint64_t)u;
        return 0;
    case CT_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (*v == '\0' || *end != '\0' || errno != 0 || !isfinite(d) ||
            !(d > k->dmin && d <= k->dmax)) {
            set_err(what, wlen, "a number greater than %g and at most %g",
                    k->dmin, k->dmax);
            return -1;
        }
        *(double *)p = d;
        return 0;
    }
    case CT_BOOL:
        if (parse_bool(v, &b) < 0) {
            set_err(what, wlen, "%s", CONFIG_BOOL_TEXT);
            return -1;
        }
        *(bool *)p = b;
        return 0;
    case CT_MODE: {
        const char *m = mode_canonical(v);
        if (!m) {
            set_err(what, wlen, "one of %s", CONFIG_MODES_TEXT);
            return -1;
        }
        return copy_str(p, k->size, m);
    }
    case CT_MODEL:
        if (name_eq(v, "persistent"))
            b = true;
        else if (name_eq(v, "non-persistent"))
            b = false;
        else if (parse_bool(v, &b) < 0) {
            set_err(what, wlen, "persistent, non-persistent or %s",
                    CONFIG_BOOL_TEXT);
            return -1;
        }
        *(bool *)p = b;
        return 0;
    case CT_SCORE:
        for (size_t i = 0; i < sizeof(config_scores) / sizeof(config_scores[0]);
             i++) {
            if (name_eq(v, config_scores[i].name)) {
                *(int *)p = config_scores[i].value;
                return 0;
            }
        }
        set_err(what, wlen,
                "one of default, latency, latency_x_inflight, "
                "predicted, fill");
        return -1;
    }
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Parses "ADDR:PORT[,weight=N][,id=NAME]" (id= only when allow_id); *has_id
 * tells whether an id was given.  -1 with what[] filled on error. */
static int backend_parse(const char *spec, bool allow_id,
                         struct config_backend *b, bool *has_id, char *what,
                         size_t wlen)
{
    char buf[256];
    if (copy_str(buf, sizeof(buf), spec) < 0) {
        set_err(what, wlen, "at most %zu characters", sizeof(buf) - 1);
        return -1;
    }
    memset(b, 0, sizeof(*b));
    b->weight = 1;
    *has_id = false;
    char *save = NULL;
    char *tok = strtok_r(buf, ",", &save);
    char *addr = trim(tok ? tok : buf);
    if (config_parse_addr(addr, b->host, sizeof(b->host), b->port,
                          sizeof(b->port)) < 0) {
        set_err(what, wlen, "%s", CONFIG_ADDR_TEXT);
        return -1;
    }
    while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
        char *opt = trim(tok);
        char *eq = strchr(opt, '=');
        char *val = eq ? trim(eq + 1) : NULL;
        if (eq) {
            *eq = '\0';
            opt = trim(opt);
        }
        unsigned long long w;
        if (val && strcasecmp(opt, "weight") == 0) {
            if (parse_ull(val, false, &w) < 0 || w < 1 ||
                w > CONFIG_WEIGHT_MAX) {
                set_err(what, wlen, "weight=N with N in 1..%u",
                        CONFIG_WEIGHT_MAX);
                return -1;
            }
            b->weight = (unsigned)w;
        } else if (val && allow_id && strcasecmp(opt, "id") == 0) {
            if (!valid_id(val)) {
                set_err(what, wlen,
                        "id=NAME with 1..%zu letters, digits, "
                        "'_', '-' or '.'",
                        CONFIG_ID_MAX);
                return -1;
            }
            strcpy(b->id, val);
            *has_id = true;
        } else {
            set_err(what, wlen, "ADDR:PORT[, weight=N]%s",
                    allow_id ? "[, id=NAME]" : "");
            return -1;
        }
    }
    return 0;
}

static ssize_t backend_index(const struct config *c, const char *id)
{
    for (size_t i = 0; i < c->nbackends; i++)
        if (strcmp(c->backends[i].id, id) == 0)
            return (ssize_t)i;
    return -1;
}

/* Adds backend `id = spec` (replace: an existing id is overwritten rather
 * than an error).  0, or -1 with a complete message after `prefix`. */
static int backend_add(struct config *c, const char *id, const char *spec,
                       bool replace, const char *prefix, char *err,
                       size_t errlen)
{
    struct config_backend b;
    bool has_id;
    char what[160];
    if (!valid_id(id)) {
        set_err(err, errlen,
                "%s[backends] %s: expected an id of 1..%zu letters, digits, "
                "'_', '-' or '.'",
                prefix, id, CONFIG_ID_MAX);
        return -1;
    }
    if (backend_parse(spec, false, &b, &has_id, what, sizeof(what)) < 0) {
        set_err(err, errlen, "%s[backends] %s: expected %s, got '%s'", prefix,
                id, what, spec);
        return -1;
    }
    strcpy(b.id, id);
    ssize_t i = backend_index(c, id);
    if (i >= 0 && !replace) {
        set_err(err, errlen, "%s[backends] %s: duplicate backend id", prefix,
                id);
        return -1;
    }
    if (i < 0 && c->nbackends >= CONFIG_MAX_BACKENDS) {
        set_err(err, errlen, "%s[backends] %s: more than %d backends", prefix,
                id, CONFIG_MAX_BACKENDS);
        return -1;
    }
    if (i < 0)
        i = (ssize_t)c->nbackends++;
    c->backends[i] = b;
    return 0;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->listen, "127.0.0.1:9090");
    strcpy(c->admin, "127.0.0.1:5002");
    strcpy(c->mode, "round-robin");
    c->persistent = true;
    strcpy(c->dashboard_dir, "dashboard");
    strcpy(c->logs_dir, "logs");

    c->client_header_timeout_ms = 10000;
    c->client_body_timeout_ms = 30000;
    c->keepalive_timeout_ms = 60000;
    c->client_write_timeout_ms = 60000;
    c->upstream_connect_timeout_ms = 2000;
    c->upstream_timeout_ms = 30000;
    c->pool_idle_timeout_ms = 60000;
    c->drain_timeout_ms = 10000;

    c->max_head_bytes = 16384;
    c->max_headers = 100;
    c->max_body_bytes = 104857600;
    c->max_clients = 10000;
    c->buffer_bytes = 16384;
    c->max_retries = 2;
    c->pool_max_idle = 256;
    c->pool_reset_on_close = true;

    c->health_check_interval_ms = 2000;
    c->log_flush_ms = 1000;
    c->verbosity = 1;

    balancer_params_default(&c->balancer);
}

/* ---- INI file ---------------------------------------------------------- */

struct ini_ctx {
    struct config *c;
    const char *path;
    FILE *f;
    char *line;
    size_t linecap;
    int lineno;
    int err_line; /* line of the first error, 0 = none */
    char *err;
    size_t errlen;
    bool backends_seen; /* the file's first backend replaces the list */
};

static void CONFIG_FMT(2, 3) ini_error(struct ini_ctx *x, const char *fmt, ...)
{
    if (x->err_line != 0)
        return; /* the first error is the one worth reading */
    x->err_line = x->lineno;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_err(x->err, x->errlen, "%s:%d: %s", x->path, x->lineno, msg);
}

/* Reads one line for inih.  Leading blanks are dropped, so an indented key
 * is a key rather than inih's continuation of the previous value; section
 * headers are checked here because inih does not report empty sections. */
static char *ini_read_line(char *str, int num, void *stream)
{
    struct ini_ctx *x = stream;
    ssize_t n = getline(&x->line, &x->linecap, x->f);
    if (n < 0)
        return NULL;
    x->lineno++;
    char *s = x->line;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s), content = len;
    while (content > 0 && (s[content - 1] == '\n' || s[content - 1] == '\r'))
        content--;
    /* inih needs room for "\r\n\0" after the text */
    if (content + 3 > (size_t)num) {
        ini_error(x, "line longer than %d characters", num - 3);
        str[0] = '\0';
        return str;
    }
    if (*s == '[') {
        char *rb = strchr(s, ']');
        if (rb) {
            char name[128];
            size_t nl = (size_t)(rb - s - 1);
            if (nl >= sizeof(name))
                nl = sizeof(name) - 1;
            memcpy(name, s + 1, nl);
            name[nl] = '\0';
            if (!section_known(name))
                ini_error(x,
                          "unknown section [%s] (known: proxy, timeouts, "
                          "limits, pool, balancer, health, backends)",
                          name);
        }
    }
    memcpy(str, s, len + 1);
    return str;
}

static int ini_on_key(void *user, const char *section, const char *name,
                      const char *value)
{
    struct ini_ctx *x = user;
    char msg[512], what[160];
    if (section[0] == '\0') {
        ini_error(x, "%s: key outside of any [section]", name);
        return 0;
    }
    if (strcasecmp(section, "backends") == 0) {
        if (!x->backends_seen) {
            x->c->nbackends = 0;
            x->backends_seen = true;
        }
        if (backend_add(x->c, name, value, false, "", msg, sizeof(msg)) < 0) {
            ini_error(x, "%s", msg);
            return 0;
        }
        return 1;
    }
    if (!section_known(section))
        return 0; /* already reported at the section header */
    const struct config_key *k = key_find(section, name);
    if (!k) {
        ini_error(x, "[%s] %s: unknown key", section, name);
        return 0;
    }
    if (key_apply(x->c, k, value, what, sizeof(what)) < 0) {
        ini_error(x, "[%s] %s: expected %s, got '%s'", k->section, k->key, what,
                  value);
        return 0;
    }
    return 1;
}

int config_load_file(struct config *c, const char *path, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* Parse into a copy: a file with an error changes nothing (reload). */
    struct config *tmp = malloc(sizeof(*tmp));
    if (!tmp) {
        fclose(f);
        set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    *tmp = *c;
    struct ini_ctx x = {
        .c = tmp, .path = path, .f = f, .err = err, .errlen = errlen};
    int rc = ini_parse_stream(ini_read_line, &x, ini_on_key, &x);
    bool read_error = ferror(f);
    fclose(f);
    free(x.line);
    if (rc == -2 || read_error) {
        set_err(err, errlen, "%s: %s", path,
                rc == -2 ? "out of memory" : "read error");
        x.err_line = -1;
    } else if (rc > 0 && (x.err_line == 0 || rc < x.err_line)) {
        set_err(err, errlen,
                "%s:%d: syntax error: expected [section], key = value or a "
                "comment",
                path, rc);
        x.err_line = rc;
    }
    if (x.err_line == 0 &&
        copy_str(tmp->config_file, sizeof(tmp->config_file), path) < 0) {
        set_err(err, errlen, "%s: path too long", path);
        x.err_line = -1;
    }
    if (x.err_line == 0)
        *c = *tmp;
    free(tmp);
    return x.err_line == 0 ? 0 : -1;
}

/* ---- command line ------------------------------------------------------ */

enum {
    OPT_CONFIG = 256,
    OPT_MODE,
    OPT_PERSISTENT,
    OPT_NON_PERSISTENT,
    OPT_LISTEN,
    OPT_BACKEND,
    OPT_ADMIN,
    OPT_LOG,
    OPT_SEED,
    OPT_SET,
    OPT_CHECK,
    OPT_PRINT,
    OPT_VERSION,
};

static const struct option config_options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"mode", required_argument, NULL, OPT_MODE},
    {"persistent", no_argument, NULL, OPT_PERSISTENT},
    {"non-persistent", no_argument, NULL, OPT_NON_PERSISTENT},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"log", required_argument, NULL, OPT_LOG},
    {"seed", required_argument, NULL, OPT_SEED},
    {"set", required_argument, NULL, OPT_SET},
    {"check", no_argument, NULL, OPT_CHECK},
    {"print-config", no_argument, NULL, OPT_PRINT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* What each option's value looks like, in config_options order. */
static const char *const config_option_args[] = {
    "FILE",
    "NAME",
    NULL,
    NULL,
    "ADDR:PORT",
    "ADDR:PORT[,weight=N][,id=NAME]",
    "ADDR:PORT|off",
    "FILE|off",
    "N",
    "SECTION.KEY=VALUE",
};

static const char config_usage[] =
    "usage: lbproxy [options]\n"
    "HTTP/1.1 reverse-proxy load balancer (one process, one epoll loop).\n"
    "\n"
    "  --config FILE         INI file (default: " CONFIG_DEFAULT_FILE
    " if it exists)\n"
    "  --mode NAME           " CONFIG_MODES_TEXT "\n"
    "  --persistent          reuse upstream connections (pooled keep-alive)\n"
    "  --non-persistent      one upstream connection per request\n"
    "  --listen ADDR:PORT    client listener (default 127.0.0.1:9090)\n"
    "  --backend ADDR:PORT[,weight=N][,id=NAME]\n"
    "                        a backend; repeat for more.  The first --backend\n"
    "                        replaces the file's [backends]; ids default to\n"
    "                        A, B, C... in order\n"
    "  --admin ADDR:PORT|off admin and dashboard listener (default\n"
    "                        127.0.0.1:5002)\n"
    "  --log FILE|off        CSV request log (default\n"
    "                        logs/<mode>_<persistent|non_persistent>.csv)\n"
    "  --seed N              random seed of the balancer\n"
    "  --set SECTION.KEY=VALUE\n"
    "                        any key of the INI file, e.g.\n"
    "                        --set timeouts.upstream_ms=5000\n"
    "  --check               validate, print the effective configuration, "
    "exit\n"
    "  --print-config        print the effective configuration, then run\n"
    "  -v, --verbose         more log output (repeat for more)\n"
    "  -h, --help            this help\n"
    "  --version             print the version\n"
    "\n"
    "Both --flag VALUE and --flag=VALUE work.  Later flags override earlier\n"
    "ones and the file.  Exit status 2 on a configuration error.\n";

static const char *option_name(int val, const char **arg)
{
    for (size_t i = 0; config_options[i].name; i++) {
        if (config_options[i].val == val) {
            if (arg)
                *arg = i < sizeof(config_option_args) / sizeof(char *)
                           ? config_option_args[i]
                           : NULL;
            return config_options[i].name;
        }
    }
    return NULL;
}

/* Turns a getopt error ('?' or ':') into a message naming the flag. */
static void option_error(int ch, char **argv, char *err, size_t errlen)
{
    const char *arg = NULL;
    const char *name = option_name(optopt, &arg);
    if (ch == ':' && name)
        set_err(err, errlen, "--%s: expected a value (%s)", name,
                arg ? arg : "?");
    else if (optopt == 0)
        set_err(err, errlen, "unknown or ambiguous option '%s' (see --help)",
                argv[optind - 1]);
    else if (name && optopt >= 256)
        set_err(err, errlen, "--%s: takes no value", name);
    else if (name)
        set_err(err, errlen, "--%s (-%c): takes no value", name, optopt);
    else
        set_err(err, errlen, "unknown option '-%c' (see --help)", optopt);
}

/* Sets one table key from a flag; the message names the flag. */
static int flag_key(struct config *c, const char *flag, const char *section,
                    const char *key, const char *v, char *err, size_t errlen)
{
    const struct config_key *k = key_find(section, key);
    char what[160];
    if (!k || key_apply(c, k, v, what, sizeof(what)) < 0) {
        set_err(err, errlen, "%s: expected %s, got '%s'", flag, k ? what : "?",
                v);
        return -1;
    }
    return 0;
}

/* --set section.key=value, through the same table as the file. */
static int flag_set(struct config *c, const char *arg, char *err, size_t errlen)
{
    char buf[512];
    if (copy_str(buf, sizeof(buf), arg) < 0) {
        set_err(err, errlen, "--set: value too long");
        return -1;
    }
    char *eq = strchr(buf, '=');
    char *dot = strchr(buf, '.');
    if (!eq || !dot || dot > eq) {
        set_err(err, errlen, "--set: expected SECTION.KEY=VALUE, got '%s'",
                arg);
        return -1;
    }
    *dot = '\0';
    *eq = '\0';
    char *section = trim(buf), *key = trim(dot + 1), *value = trim(eq + 1);
    if (strcasecmp(section, "backends") == 0)
        return backend_add(c, key, value, true, "--set ", err, errlen);
    if (!section_known(section)) {
        set_err(err, errlen,
                "--set %s: unknown section [%s] (known: proxy, timeouts, "
                "limits, pool, balancer, health, backends)",
                arg, section);
        return -1;
    }
    const struct config_key *k = key_find(section, key);
    char what[160];
    if (!k) {
        set_err(err, errlen, "--set %s: unknown key [%s] %s", arg, section,
                key);
        return -1;
    }
    if (key_apply(c, k, value, what, sizeof(what)) < 0) {
        set_err(err, errlen, "--set [%s] %s: expected %s, got '%s'", k->section,
                k->key, what, value);
        return -1;
    }
    return 0;
}

static int flag_backend(struct config *c, const char *arg, bool *seen,
                        char *err, size_t errlen)
{
    struct config_backend b;
    bool has_id;
    char what[160];
    if (backend_parse(arg, true, &b, &has_id, what, sizeof(what)) < 0) {
        set_err(err, errlen, "--backend: expected %s, got '%s'", what, arg);
        return -1;
    }
    if (!*seen) {
        c->nbackends = 0;
        *seen = true;
    }
    if (c->nbackends >= CONFIG_MAX_BACKENDS) {
        set_err(err, errlen, "--backend: more than %d backends",
                CONFIG_MAX_BACKENDS);
        return -1;
    }
    if (!has_id)
        default_id(c->nbackends, b.id, sizeof(b.id));
    if (backend_index(c, b.id) >= 0) {
        set_err(err, errlen, "--backend %s: duplicate backend id '%s'", arg,
                b.id);
        return -1;
    }
    c->backends[c->nbackends++] = b;
    return 0;
}

int config_from_args(struct config *c, int argc, char **argv, char *err,
                     size_t errlen)
{
    /* "+": stop at the first non-option (no permutation of argv);
     * ":": report a missing value as ':' so it gets its own message. */
    static const char optstring[] = "+:hv";
    const char *config_path = NULL;
    bool help = false, version = false, check = false, print = false;
    bool backends_seen = false;
    int ch, bad = 0;
    char first_err[512] = "";

    /* Pass 1: find --config (the file comes before every other flag) and
     * catch malformed flags.  optind = 0 makes glibc start over. */
    opterr = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, optstring, config_options, NULL)) !=
           -1) {
        if (ch == '?' || ch == ':') {
            if (!bad++)
                option_error(ch, argv, first_err, sizeof(first_err));
        } else if (ch == OPT_CONFIG) {
            config_path = optarg;
        } else if (ch == 'h') {
            help = true;
        } else if (ch == OPT_VERSION) {
            version = true;
        }
    }
    if (!bad && optind < argc) {
        bad = 1;
        set_err(first_err, sizeof(first_err),
                "unexpected argument '%s' (see --help)", argv[optind]);
    }
    if (help) {
        fputs(config_usage, config_out());
        return 1;
    }
    if (version) {
        fprintf(config_out(), "lbproxy %s\n", LBPROXY_VERSION);
        return 1;
    }
    if (bad) {
        set_err(err, errlen, "%s", first_err);
        return -1;
    }

    config_defaults(c);
    if (config_path) {
        if (config_load_file(c, config_path, err, errlen) < 0)
            return -1;
    } else if (access(CONFIG_DEFAULT_FILE, F_OK) == 0) {
        if (config_load_file(c, CONFIG_DEFAULT_FILE, err, errlen) < 0)
            return -1;
    }

    /* Pass 2: the flags, in order, over the file. */
    optind = 0;
    int rc = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, optstring, config_options,
                                        NULL)) != -1) {
        switch (ch) {
        case OPT_MODE:
            rc = flag_key(c, "--mode", "proxy", "mode", optarg, err, errlen);
            break;
        case OPT_PERSISTENT:
            c->persistent = true;
            break;
        case OPT_NON_PERSISTENT:
            c->persistent = false;
            break;
        case OPT_LISTEN:
            rc =
                flag_key(c, "--listen", "proxy", "listen", optarg, err, errlen);
            break;
        case OPT_BACKEND:
            rc = flag_backend(c, optarg, &backends_seen, err, errlen);
            break;
        case OPT_ADMIN:
            rc = flag_key(c, "--admin", "proxy", "admin", optarg, err, errlen);
            break;
        case OPT_LOG:
            rc = flag_key(c, "--log", "proxy", "log", optarg, err, errlen);
            break;
        case OPT_SEED:
            rc = flag_key(c, "--seed", "balancer", "seed", optarg, err, errlen);
            break;
        case OPT_SET:
            rc = flag_set(c, optarg, err, errlen);
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_PRINT:
            print = true;
            break;
        case 'v':
            if (c->verbosity < 3)
                c->verbosity++;
            break;
        default: /* --config, already read */
            break;
        }
    }
    optind = 0;
    if (rc < 0)
        return -1;
    if (config_validate(c, err, errlen) < 0)
        return -1;
    if (check || print)
        config_print(c, config_out());
    if (check) {
        fprintf(config_out(), "; configuration OK\n");
        return 1;
    }
    return 0;
}

/* ---- validation and output --------------------------------------------- */

int config_validate(const struct config *c, char *err, size_t errlen)
{
    const char *pre = "invalid configuration";
    if (c->nbackends == 0) {
        set_err(err, errlen,
                "%s: no backends (add a [backends] section or --backend "
                "ADDR:PORT)",
                pre);
        return -1;
    }
    if (c->nbackends > CONFIG_MAX_BACKENDS) {
        set_err(err, errlen, "%s: %zu backends, at most %d", pre, c->nbackends,
                CONFIG_MAX_BACKENDS);
        return -1;
    }
    for (size_t i = 0; i < c->nbackends; i++) {
        const struct config_backend *b = &c->backends[i];
        char host[INET6_ADDRSTRLEN], port[8], addr[128];
        snprintf(addr, sizeof(addr), strchr(b->host, ':') ? "[%s]:%s" : "%s:%s",
                 b->host, b->port);
        if (!valid_id(b->id)) {
            set_err(err, errlen, "%s: backend %zu has an invalid id '%s'", pre,
                    i + 1, b->id);
            return -1;
        }
        if (config_parse_addr(addr, host, sizeof(host), port, sizeof(port)) <
            0) {
            set_err(err, errlen, "%s: backend %s: expected %s, got '%s'", pre,
                    b->id, CONFIG_ADDR_TEXT, addr);
            return -1;
        }
        if (b->weight < 1 || b->weight > CONFIG_WEIGHT_MAX) {
            set_err(err, errlen, "%s: backend %s: weight %u not in 1..%u", pre,
                    b->id, b->weight, CONFIG_WEIGHT_MAX);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->backends[j].id, b->id) == 0) {
                set_err(err, errlen, "%s: duplicate backend id '%s'", pre,
                        b->id);
                return -1;
            }
        }
    }
    /* Every value in its table range (flags and code can bypass parsing). */
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        const void *p = (const char *)c + k->off;
        unsigned long long u = 0;
        bool bad = false;
        char tmp[256];
        switch (k->type) {
        case CT_STR:
            bad = memchr(p, '\0', k->size) == NULL;
            break;
        case CT_ADDR:
            bad = norm_addr(p, tmp, sizeof(tmp)) < 0;
            break;
        case CT_ADDR_OFF:
            bad = strcmp(p, "off") != 0 && norm_addr(p, tmp, sizeof(tmp)) < 0;
            break;
        case CT_UINT:
            u = *(const unsigned *)p;
            break;
        case CT_INT:
            bad = *(const int *)p < 0;
            u = (unsigned long long)*(const int *)p;
            break;
        case CT_ULL:
            u = *(const unsigned long long *)p;
            break;
        case CT_U64:
            u = *(const uint64_t *)p;
            break;
        case CT_DOUBLE: {
            double d = *(const double *)p;
            bad = !(d > k->dmin && d <= k->dmax);
            break;
        }
        case CT_BOOL:
        case CT_MODEL:
            break;
        case CT_MODE:
            bad = mode_canonical(p) == NULL;
            break;
        case CT_SCORE:
            bad = score_name(*(const int *)p) == NULL;
            break;
        }
        if (k->type == CT_UINT || k->type == CT_INT || k->type == CT_ULL ||
            k->type == CT_U64)
            bad = bad || u < k->min || u > k->max;
        if (bad) {
            set_err(err, errlen, "%s: [%s] %s out of range", pre, k->section,
                    k->key);
            return -1;
        }
    }
    if (c->max_head_bytes > c->buffer_bytes) {
        set_err(err, errlen,
                "%s: [limits] max_head_bytes (%u) must not exceed [limits] "
                "buffer_bytes (%u): a request head must fit the buffer",
                pre, c->max_head_bytes, c->buffer_bytes);
        return -1;
    }
    if (c->balancer.fail_timeout_ms > c->balancer.max_eject_ms) {
        set_err(err, errlen,
                "%s: [health] fail_timeout_ms (%u) must not exceed [health] "
                "max_eject_ms (%u)",
                pre, c->balancer.fail_timeout_ms, c->balancer.max_eject_ms);
        return -1;
    }
    const char *hp = c->health_check_path;
    if (hp[0] != '\0' && (hp[0] != '/' || strpbrk(hp, " \t\r\n"))) {
        set_err(err, errlen,
                "%s: [health] check_path: expected a path starting with '/' "
                "and without blanks, got '%s'",
                pre, hp);
        return -1;
    }
    if (strcmp(c->listen, c->admin) == 0) {
        set_err(err, errlen,
                "%s: [proxy] listen and admin are the same address %s", pre,
                c->listen);
        return -1;
    }
    if (c->listen[0] == '\0' || c->logs_dir[0] == '\0' ||
        c->dashboard_dir[0] == '\0') {
        set_err(err, errlen,
                "%s: [proxy] listen, dashboard_dir and logs_dir must not be "
                "empty",
                pre);
        return -1;
    }
    return 0;
}

void config_log_path(const struct config *c, char *buf, size_t len)
{
    if (len == 0)
        return;
    if (strcmp(c->log_path, "off") == 0)
        buf[0] = '\0';
    else if (c->log_path[0] != '\0')
        snprintf(buf, len, "%s", c->log_path);
    else
        snprintf(buf, len, "%s%s%s_%s.csv", c->logs_dir,
                 c->logs_dir[0] ? "/" : "", c->mode,
                 c->persistent ? "persistent" : "non_persistent");
}

/* Prints the shortest decimal that reads back as the same double. */
static void print_double(FILE *out, double d)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    fputs(buf, out);
}

void config_print(const struct config *c, FILE *out)
{
    const char *section = NULL;
    fprintf(out, "; lbproxy %s effective configuration%s%s\n", LBPROXY_VERSION,
            c->config_file[0] ? " from " : "", c->config_file);
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        const void *p = (const char *)c + k->off;
        if (k->flags & CF_ALIAS)
            continue;
        if (!section || strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
        }
        fprintf(out, "%s = ", k->key);
        switch (k->type) {
        case CT_STR:
        case CT_ADDR:
        case CT_ADDR_OFF:
        case CT_MODE:
            fprintf(out, "%s", (const char *)p);
            break;
        case CT_UINT:
            fprintf(out, "%u", *(const unsigned *)p);
            break;
        case CT_INT:
            fprintf(out, "%d", *(const int *)p);
            break;
        case CT_ULL:
            fprintf(out, "%llu", *(const unsigned long long *)p);
            break;
        case CT_U64:
            fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)p);
            break;
        case CT_DOUBLE:
            print_double(out, *(const double *)p);
            break;
        case CT_BOOL:
        case CT_MODEL:
            fprintf(out, "%s", *(const bool *)p ? "true" : "false");
            break;
        case CT_SCORE: {
            const char *s = score_name(*(const int *)p);
            fprintf(out, "%s", s ? s : "default");
            break;
        }
        }
        fputc('\n', out);
    }
    fprintf(out, "\n[backends]\n");
    for (size_t i = 0; i < c->nbackends && i < CONFIG_MAX_BACKENDS; i++) {
        const struct config_backend *b = &c->backends[i];
        fprintf(out, strchr(b->host, ':') ? "%s = [%s]:%s" : "%s = %s:%s",
                b->id, b->host, b->port);
        if (b->weight != 1)
            fprintf(out, ", weight=%u", b->weight);
        fputc('\n', out);
    }
}
