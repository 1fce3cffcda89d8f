/*
 * be_options: one table-free setter shared by flags and INI keys.
 */
#include "be_options.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char be_options_usage[] =
    "usage: lbbackend [options]\n"
    "  --port N               listen port (default 8081)\n"
    "  --listen-address ADDR  IPv4 or IPv6 address (default 127.0.0.1)\n"
    "  --unix PATH            listen on a Unix stream socket instead of TCP\n"
    "                         (a stale socket file there is replaced)\n"
    "  --id ID                X-Backend-Id header and body text (default A)\n"
    "  --profile P            fixed:10ms | uniform:5ms-15ms | exp:10ms |\n"
    "                         lognormal:MEDIAN,SIGMA | bimodal:FAST,SLOW,P\n"
    "                         each with an optional +BASE (exp:10ms+2ms);\n"
    "                         units us, ms, s (default fixed:0ms)\n"
    "  --phase T:PROFILE      from T after start use PROFILE (repeatable)\n"
    "  --workers K            at most K requests in service, rest queue FIFO\n"
    "                         (0 = unlimited, the default)\n"
    "  --error-rate P         answer 500 at once with probability P\n"
    "  --reset-rate P         reset the connection (RST) with probability P\n"
    "  --hang-rate P          never answer with probability P\n"
    "  --body-bytes N         response body size (default: a short text)\n"
    "  --fail-health          /health answers 503\n"
    "  --no-probe             /probe answers 404 (no prequal probe endpoint)\n"
    "  --echo                 every path echoes the request body\n"
    "  --max-body N           largest body kept for an echo (default 64M)\n"
    "  --log-requests FILE    one JSON line per request: raw head, body size\n"
    "  --tls-cert FILE        serve TLS with this certificate chain (PEM)\n"
    "  --tls-key FILE         ... and its private key (PEM); /stats counts\n"
    "                         handshakes, resumed ones and the last SNI\n"
    "  --seed N               seed of the random generator\n"
    "  --config FILE          read settings from an INI file ...\n"
    "  --section NAME         ... from this section (flags override it)\n"
    "  --verbose, --quiet     more or less logging on stderr\n"
    "  --help\n";

void be_options_defaults(struct be_options *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->listen_address, sizeof(o->listen_address), "127.0.0.1");
    o->port = 8081;
    snprintf(o->id, sizeof(o->id), "A");
    o->profile.dist = BE_DIST_FIXED;
    o->body_bytes = -1;
    o->max_body = 64u << 20;
    o->verbose = 1;
}

static int parse_rate(const char *v, double *out)
{
    char *e;
    errno = 0;
    double d = strtod(v, &e);
    if (e == v || *e || errno || !(d >= 0 && d <= 1))
        return -1;
    *out = d;
    return 0;
}

/* Parses a non-negative integer with an optional K/M/G (binary) suffix. */
static int parse_size(const char *v, long long max, long long *out)
{
    char *e;
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    long long n = strtoll(v, &e, 10);
    if (e == v || errno || n < 0)
        return -1;
    int shift = 0;
    if (*e == 'k' || *e == 'K')
        shift = 10;
    else if (*e == 'm' || *e == 'M')
        shift = 20;
    else if (*e == 'g' || *e == 'G')
        shift = 30;
    if (shift)
        e++;
    if (*e || n > (max >> shift))
        return -1;
    *out = n << shift;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!v || !*v || !strcasecmp(v, "1") || !strcasecmp(v, "true") ||
        !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") ||
        !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int copy_str(char *dst, size_t len, const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n >= len)
        return -1;
    memcpy(dst, v, n + 1);
    return 0;
}

static int is_key(const char *key, const char *name)
{
    /* '-' and '_' are interchangeable so INI keys match flag names. */
    for (; *key && *name; key++, name++) {
        char a = *key == '-' ? '_' : *key;
        char b = *name == '-' ? '_' : *name;
        if (a != b)
            return 0;
    }
    return *key == *name;
}

int be_options_set(struct be_options *o, const char *key, const char *value,
                   char *err, size_t errlen)
{
    long long n;
    const char *v = value ? value : "";
    if (is_key(key, "port")) {
        if (parse_size(v, 65535, &n) < 0 || strpbrk(v, "kKmMgG"))
            goto bad;
        o->port = (int)n;
    } else if (is_key(key, "listen_address")) {
        if (copy_str(o->listen_address, sizeof(o->listen_address), v) < 0)
            goto bad;
    } else if (is_key(key, "unix")) {
        if (copy_str(o->unix_path, sizeof(o->unix_path), v) < 0)
            goto bad;
    } else if (is_key(key, "id")) {
        /* The id goes into a header: keep it to visible characters. */
        for (const char *c = v; *c; c++)
            if (*c <= ' ' || *c > '~' || *c == '"' || *c == '\\')
                goto bad;
        if (copy_str(o->id, sizeof(o->id), v) < 0)
            goto bad;
    } else if (is_key(key, "profile")) {
        return be_profile_parse(v, &o->profile, err, errlen);
    } else if (is_key(key, "phase")) {
        if (o->nphases == BE_MAX_PHASES) {
            snprintf(err, errlen, "at most %d phases", BE_MAX_PHASES);
            return -1;
        }
        if (be_phase_parse(v, &o->phases[o->nphases], err, errlen) < 0)
            return -1;
        o->nphases++;
    } else if (is_key(key, "workers")) {
        if (parse_size(v, 1000000, &n) < 0 || strpbrk(v, "kKmMgG"))
            goto bad;
        o->workers = (int)n;
    } else if (is_key(key, "error_rate")) {
        if (parse_rate(v, &o->error_rate) < 0)
            goto bad;
    } else if (is_key(key, "reset_rate")) {
        if (parse_rate(v, &o->reset_rate) < 0)
            goto bad;
    } else if (is_key(key, "hang_rate")) {
        if (parse_rate(v, &o->hang_rate) < 0)
            goto bad;
    } else if (is_key(key, "body_bytes")) {
        if (parse_size(v, 1ll << 30, &n) < 0)
            goto bad;
        o->body_bytes = n;
    } else if (is_key(key, "max_body")) {
        if (parse_size(v, 1ll << 32, &n) < 0)
            goto bad;
        o->max_body = (size_t)n;
    } else if (is_key(key, "fail_health")) {
        if (parse_bool(value, &o->fail_health) < 0)
            goto bad;
    } else if (is_key(key, "echo")) {
        if (parse_bool(value, &o->echo) < 0)
            goto bad;
    } else if (is_key(key, "no_probe")) {
        if (parse_bool(value, &o->no_probe) < 0)
            goto bad;
    } else if (is_key(key, "seed")) {
        char *e;
        errno = 0;
        unsigned long long s = strtoull(v, &e, 0);
        if (e == v || *e || errno || *v == '-')
            goto bad;
        o->seed = s;
        o->seed_set = 1;
    } else if (is_key(key, "tls_cert")) {
        if (copy_str(o->tls_cert, sizeof(o->tls_cert), v) < 0)
            goto bad;
    } else if (is_key(key, "tls_key")) {
        if (copy_str(o->tls_key, sizeof(o->tls_key), v) < 0)
            goto bad;
    } else if (is_key(key, "log_requests")) {
        if (copy_str(o->log_requests, sizeof(o->log_requests), v) < 0)
            goto bad;
    } else if (is_key(key, "verbose")) {
        int b;
        if (parse_bool(value, &b) < 0)
            goto bad;
        o->verbose = b ? 2 : 1;
    } else {
        snprintf(err, errlen, "unknown setting '%s'", key);
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "bad value '%s' for %s", v, key);
    return -1;
}

struct ini_ctx {
    struct be_options *o;
    const char *section;
    char *err;
    size_t errlen;
    int lineno;
    int found;
    int failed;
};

static int on_ini_line(void *user, const char *section, const char *name,
                       const char *value, int lineno)
{
    struct ini_ctx *c = user;
    const char *want = c->section ? c->section : "";
    if (strcmp(section, want) != 0)
        return 1;
    c->found = 1;
    if (!name) /* section start (INI_CALL_HANDLER_ON_NEW_SECTION) */
        return 1;
    if (be_options_set(c->o, name, value, c->err, c->errlen) < 0) {
        c->lineno = lineno;
        c->failed = 1;
        return 0;
    }
    return 1;
}

/* inih >= 52 passes the line number when built with INI_HANDLER_LINENO;
 * Debian's is not, so count the line ourselves through ini_parse_stream. */
struct line_reader {
    FILE *f;
    int lineno;
};

static char *read_line(char *buf, int size, void *stream)
{
    struct line_reader *r = stream;
    char *s = fgets(buf, size, r->f);
    if (s)
        r->lineno++;
    return s;
}

struct ini_ctx_lr {
    struct ini_ctx ctx;
    struct line_reader *lr;
};

static int ini_handler_lr(void *user, const char *section, const char *name,
                          const char *value)
{
    struct ini_ctx_lr *c = user;
    return on_ini_line(&c->ctx, section, name, value, c->lr->lineno);
}

int be_options_load(struct be_options *o, const char *path, const char *section,
                    char *err, size_t errlen)
{
    struct line_reader lr = {fopen(path, "r"), 0};
    if (!lr.f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char msg[256] = "";
    struct ini_ctx_lr c = {{o, section, msg, sizeof(msg), 0, 0, 0}, &lr};
    int rc = ini_parse_stream(read_line, &lr, ini_handler_lr, &c);
    fclose(lr.f);
    if (c.ctx.failed) {
        snprintf(err, errlen, "%s:%d: %s", path, c.ctx.lineno, msg);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s:%d: syntax error", path, rc);
        return -1;
    }
    if (section && !c.ctx.found) {
        snprintf(err, errlen, "%s: no section [%s]", path, section);
        return -1;
    }
    return 0;
}

static int phase_cmp(const void *a, const void *b)
{
    const struct be_phase *x = a, *y = b;
    return x->at_us < y->at_us ? -1 : x->at_us > y->at_us;
}

int be_options_validate(struct be_options *o, char *err, size_t errlen)
{
    if (o->error_rate + o->reset_rate + o->hang_rate > 1.0 + 1e-9) {
        snprintf(err, errlen, "error-rate + reset-rate + hang-rate > 1");
        return -1;
    }
    if (!o->tls_cert[0] != !o->tls_key[0]) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    /* Stable enough: equal start times keep no particular order. */
    qsort(o->phases, (size_t)o->nphases, sizeof(o->phases[0]), phase_cmp);
    return 0;
}

/* Flags that take no value. */
static int is_switch(const char *name)
{
    return is_key(name, "echo") || is_key(name, "fail_health") ||
           is_key(name, "no_probe") || is_key(name, "verbose") ||
           is_key(name, "quiet") || is_key(name, "help");
}

/* Splits argv[*i] into a flag name and value; advances *i past both. */
static int next_flag(int argc, char **argv, int *i, const char **name,
                     const char **value, char *buf, size_t buflen, char *err,
                     size_t errlen)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
        snprintf(err, errlen, "unexpected argument '%s'", a);
        return -1;
    }
    a += 2;
    const char *eq = strchr(a, '=');
    if (eq) {
        size_t n = (size_t)(eq - a);
        if (n >= buflen) {
            snprintf(err, errlen, "flag too long: %s", argv[*i]);
            return -1;
        }
        memcpy(buf, a, n);
        buf[n] = '\0';
        *name = buf;
        *value = eq + 1;
        (*i)++;
        return 0;
    }
    *name = a;
    if (is_switch(a)) {
        *value = NULL;
        (*i)++;
        return 0;
    }
    if (*i + 1 >= argc) {
        snprintf(err, errlen, "--%s needs a value", a);
        return -1;
    }
    *value = argv[*i + 1];
    *i += 2;
    return 0;
}

int be_options_parse(struct be_options *o, int argc, char **argv, char *err,
                     size_t errlen)
{
    const char *config = NULL, *section = NULL, *name, *value;
    char buf[64];
    /* Pass 1: the file, so that pass 2's flags override it. */
    for (int i = 1; i < argc;) {
        if (next_flag(argc, argv, &i, &name, &value, buf, sizeof(buf), err,
                      errlen) < 0)
            return -1;
        if (is_key(name, "help"))
            return 1;
        if (is_key(name, "config"))
            config = value;
        else if (is_key(name, "section"))
            section = value;
    }
    if (section && !config) {
        snprintf(err, errlen, "--section needs --config");
        return -1;
    }
    if (config && be_options_load(o, config, section, err, errlen) < 0)
        return -1;
    int cli_phases = 0;
    for (int i = 1; i < argc;) {
        next_flag(argc, argv, &i, &name, &value, buf, sizeof(buf), err, errlen);
        if (is_key(name, "config") || is_key(name, "section"))
            continue;
        if (is_key(name, "quiet")) {
            o->verbose = 0;
            continue;
        }
        if (is_key(name, "phase") && !cli_phases) {
            cli_phases = 1; /* phases on the command line replace the file's */
            o->nphases = 0;
        }
        char msg[256];
        if (be_options_set(o, name, value, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "--%s: %s", name, msg);
            return -1;
        }
    }
    return be_options_validate(o, err, errlen);
}
