/*
 * config: the key table (section, key, type, field, range, default), the
 * defaults derived from it, the [backends] section, the INI file (inih),
 * validation and --print-config.  The value types are config_types.c, the
 * command line config_cli.c; everything goes through the one table, so that
 * the file and the flags accept exactly the same values and report errors
 * the same way.
 *
 * The defaults of the balancer's tunables are the balancer's own
 * (balancer_params_default), not copied here.
 */
#include "config.h"
#include "config_impl.h"
#include "net.h"
#include "shm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CONFIG_TIMEOUT_MAX 86400000u /* one day, in ms */

#define CONFIG_SMA_MAX 10000u
#define CONFIG_ID_MAX (sizeof(((struct config_backend *)0)->id) - 1)

/* ---- small helpers ----------------------------------------------------- */

void config_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int config_copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

char *config_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* ---- the key table ----------------------------------------------------- */

#define CFG_FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
/* A key without a range (strings, addresses, names, booleans). */
#define K(s, k, t, f, def)                                                     \
    {                                                                          \
        s, k, &config_type_##t, 0, CFG_FIELD(f), 0, 0, 0, 0, def               \
    }
#define K_INT(s, k, flags, f, lo, hi, def)                                     \
    {                                                                          \
        s, k, &config_type_int, flags, CFG_FIELD(f), lo, hi, 0, 0, def         \
    }
#define K_MS(s, k, f, def) K_INT(s, k, 0, f, 1, CONFIG_TIMEOUT_MAX, def)
/* A tunable of struct balancer_params: the balancer owns its default. */
#define K_BAL(s, k, f, lo, hi) K_INT(s, k, 0, balancer.f, lo, hi, NULL)

/* clang-format off */
const struct config_key config_keys[] = {
    K("proxy", "listen", addr, listen, "127.0.0.1:9090"),
    K("proxy", "admin", addr_off, admin, "127.0.0.1:5002"),
    K("proxy", "mode", mode, mode, "round-robin"),
    K("proxy", "persistent", model, persistent, "true"),
    {"proxy", "connection", &config_type_model, CF_ALIAS, CFG_FIELD(persistent),
     0, 0, 0, 0, NULL},
    K("proxy", "log", str, log_path, ""),
    K_INT("proxy", "log_flush_ms", 0, log_flush_ms, 10, 3600000, "1000"),
    K("proxy", "dashboard_dir", str, dashboard_dir, "dashboard"),
    K("proxy", "logs_dir", str, logs_dir, "logs"),
    K("proxy", "admin_token_file", str, admin_token_file, ""),
    K_INT("proxy", "verbosity", 0, verbosity, 0, 3, "1"),
    K("proxy", "request_id", bool, request_id, "true"),
    K("proxy", "request_id_echo", bool, request_id_echo, "false"),
    K("proxy", "proxy_protocol", bool, proxy_protocol, "false"),
    K("proxy", "send_proxy", send_proxy, send_proxy, "off"),
    {"proxy", "workers", &config_type_workers, 0, CFG_FIELD(workers), 1,
     SHM_MAX_WORKERS, 0, 0, "1"},
    K("proxy", "worker_cpus", cpus, worker_cpus, ""),
    K("proxy", "reuseport", bool, reuseport, "true"),
    K("proxy", "shared_balancers", bool, shared_balancers, "true"),

    K_MS("timeouts", "client_header_ms", client_header_timeout_ms, "10000"),
    K_MS("timeouts", "client_body_ms", client_body_timeout_ms, "30000"),
    K_MS("timeouts", "keepalive_ms", keepalive_timeout_ms, "60000"),
    K_MS("timeouts", "client_write_ms", client_write_timeout_ms, "60000"),
    K_MS("timeouts", "upstream_connect_ms", upstream_connect_timeout_ms,
         "2000"),
    K_MS("timeouts", "upstream_ms", upstream_timeout_ms, "30000"),
    K_MS("timeouts", "drain_ms", drain_timeout_ms, "10000"),
    K_MS("timeouts", "tunnel_idle_ms", tunnel_idle_ms, "300000"),

    K_INT("limits", "max_head_bytes", CF_SIZE, max_head_bytes, 1024, 1u << 20,
          "16384"),
    K_INT("limits", "max_headers", 0, max_headers, 1, 10000, "100"),
    K_INT("limits", "max_body_bytes", CF_SIZE, max_body_bytes, 0, 1ull << 50,
          "104857600"),
    K_INT("limits", "max_clients", 0, max_clients, 1, 1000000, "10000"),
    K_INT("limits", "buffer_bytes", CF_SIZE, buffer_bytes, 4096, 1u << 24,
          "16384"),
    K_INT("limits", "max_retries", 0, max_retries, 0, CONFIG_MAX_BACKENDS - 1,
          "2"),
    K_INT("limits", "max_conns", 0, max_conns, 0, 1000000, "0"),
    K_INT("limits", "max_queue", 0, max_queue, 0, 1000000, "1024"),
    K_MS("limits", "queue_timeout_ms", queue_timeout_ms, "5000"),

    K("retry", "on", retry_on, retry_on, "connect,reset,timeout"),
    K_INT("retry", "budget_percent", 0, retry_budget_percent, 0, 100, "20"),
    K_INT("retry", "budget_min", 0, retry_budget_min, 0, 1000000, "3"),
    K_INT("retry", "per_try_factor", 0, per_try_factor, 1, 1000, "4"),
    K_INT("retry", "per_try_min_ms", 0, per_try_min_ms, 0, CONFIG_TIMEOUT_MAX,
          "50"),
    K_MS("retry", "per_try_max_ms", per_try_max_ms, "1000"),
    K("retry", "hedge", bool, hedge, "true"),

    K_INT("pool", "max_idle", 0, pool_max_idle, 0, 100000, "256"),
    K_MS("pool", "idle_timeout_ms", pool_idle_timeout_ms, "60000"),
    K("pool", "reset_on_close", bool, pool_reset_on_close, "true"),
    K("pool", "upstream_tls_ca_file", str, upstream_tls_ca_file, ""),
    K("pool", "upstream_tls_verify", bool, upstream_tls_verify, "true"),
    K("pool", "upstream_tls_sni", str, upstream_tls_sni, ""),
    K("pool", "upstream_tls_min_version", str, upstream_tls_min_version,
      "TLS1.2"),

    K_BAL("balancer", "sma_window", sma_window, 1, CONFIG_SMA_MAX),
    {"balancer", "ewma_alpha", &config_type_num, 0,
     CFG_FIELD(balancer.ewma_alpha), 0, 0, 0.0, 1.0, NULL},
    K_BAL("balancer", "ewma_decay_ms", ewma_decay_ms, 0, CONFIG_TIMEOUT_MAX),
    K("balancer", "load_aware", bool, balancer.load_aware, NULL),
    K("balancer", "ewma_score", score, balancer.ewma_score, NULL),
    K_BAL("balancer", "probe_interval_ms", probe_interval_ms, 0,
          CONFIG_TIMEOUT_MAX),
    K_BAL("balancer", "penalty_ms", penalty_ms, 0, CONFIG_TIMEOUT_MAX),
    K_BAL("balancer", "peak_tau_ms", peak_tau_ms, 1, CONFIG_TIMEOUT_MAX),
    K_BAL("balancer", "seed", seed, 0, UINT64_MAX),
    K("balancer", "hash_key", hash_key, hash_key, "client"),
    {"balancer", "hash_balance_factor", &config_type_factor, 0,
     CFG_FIELD(balancer.hash_balance_factor), 0, 0, 1.0, 100.0, NULL},
    {"balancer", "prequal_probe_rate", &config_type_num, 0,
     CFG_FIELD(balancer.prequal_probe_rate), 0, 0, 0.0, 16.0, NULL},
    K_BAL("balancer", "prequal_max_probe_rate", prequal_max_probe_rate, 1,
          1000000),
    K_BAL("balancer", "prequal_pool_size", prequal_pool_size, 1, 64),
    K_BAL("balancer", "prequal_max_age_ms", prequal_max_age_ms, 1,
          CONFIG_TIMEOUT_MAX),
    K_BAL("balancer", "prequal_reuse", prequal_reuse, 0, 1000),
    {"balancer", "prequal_q_rif", &config_type_num, 0,
     CFG_FIELD(balancer.prequal_q_rif), 0, 0, 0.0, 1.0, NULL},
    K_BAL("balancer", "prequal_idle_probe_ms", prequal_idle_probe_ms, 1,
          CONFIG_TIMEOUT_MAX),
    K("balancer", "prequal_probe_path", str, prequal_probe_path, "/probe"),
    K_INT("balancer", "prequal_probe_timeout_ms", 0, prequal_probe_timeout_ms,
          1, 60000, "100"),

    K("health", "check_path", str, health_check_path, ""),
    K_INT("health", "check_interval_ms", 0, health_check_interval_ms, 100,
          CONFIG_TIMEOUT_MAX, "2000"),
    K_BAL("health", "max_fails", max_fails, 0, 1000000),
    K_BAL("health", "fail_timeout_ms", fail_timeout_ms, 1, CONFIG_TIMEOUT_MAX),
    K_BAL("health", "max_eject_ms", max_eject_ms, 1, CONFIG_TIMEOUT_MAX),
    K_BAL("health", "slow_start_ms", slow_start_ms, 0, CONFIG_TIMEOUT_MAX),
    K_BAL("health", "outlier_window_ms", outlier_window_ms, 0,
          CONFIG_TIMEOUT_MAX),
    K_BAL("health", "outlier_min_requests", outlier_min_requests, 1, 1000000),
    K_BAL("health", "outlier_min_fail_pct", outlier_min_fail_pct, 0, 100),
    K_BAL("health", "outlier_factor", outlier_factor, 1, 1000),

    /* cert = FILE / key = FILE pairs are in config_tls.c */
    K("tls", "listen", addr_off, tls_listen, "off"),
    K("tls", "min_version", str, tls_min_version, "TLS1.2"),
    K("tls", "ciphers", str, tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20"),
    K("tls", "ciphersuites", str, tls_ciphersuites,
      "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
      "TLS_CHACHA20_POLY1305_SHA256"),
    K("tls", "resumption", bool, tls_resumption, "true"),
    K_MS("tls", "handshake_ms", tls_handshake_timeout_ms, "10000"),

    K("dns", "resolvers", addr_list, dns_resolvers, ""),
    K_INT("dns", "resolve_interval_ms", 0, dns_resolve_interval_ms, 1000,
          CONFIG_TIMEOUT_MAX, "5000"),
    K_INT("dns", "timeout_ms", 0, dns_timeout_ms, 100, 60000, "2000"),
};
/* clang-format on */
const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

const struct config_key *config_key_find(const char *section, const char *key)
{
    for (size_t i = 0; i < config_nkeys; i++)
        if (strcasecmp(config_keys[i].section, section) == 0 &&
            strcasecmp(config_keys[i].key, key) == 0)
            return &config_keys[i];
    return NULL;
}

/* The sections are those of the table, in its order, then [backends]
 * (which has ids for keys, so no rows). */
bool config_section_known(const char *section)
{
    for (size_t i = 0; i < config_nkeys; i++)
        if (strcasecmp(config_keys[i].section, section) == 0)
            return true;
    return strcasecmp(section, "backends") == 0;
}

void config_sections_text(char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < config_nkeys && off < len; i++)
        if (i == 0 ||
            strcmp(config_keys[i].section, config_keys[i - 1].section) != 0)
            off += (size_t)snprintf(buf + off, len - off, "%s, ",
                                    config_keys[i].section);
    if (off < len)
        snprintf(buf + off, len - off, "backends");
}

int config_key_apply(struct config *c, const struct config_key *k,
                     const char *text, char *what, size_t wlen)
{
    /* Parsed aside and copied whole, so a bad value leaves c untouched and
     * a string field is zero-padded (two configurations with the same
     * values have the same bytes). */
    union {
        max_align_t align;
        unsigned char bytes[CONFIG_VALUE_MAX];
    } tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (k->size > sizeof(tmp.bytes) || k->type->parse(k, text, &tmp) < 0 ||
        !k->type->check(k, &tmp)) {
        k->type->expect(k, what, wlen);
        return -1;
    }
    memcpy((char *)c + k->off, &tmp, k->size);
    return 0;
}

void config_key_text(const struct config *c, const struct config_key *k,
                     char *buf, size_t len)
{
    k->type->print(k, (const char *)c + k->off, buf, len);
}

void config_defaults(struct config *c)
{
    char what[CONFIG_TEXT_MAX];
    memset(c, 0, sizeof(*c));
    balancer_params_default(&c->balancer);
    for (size_t i = 0; i < config_nkeys; i++)
        if (config_keys[i].def &&
            config_key_apply(c, &config_keys[i], config_keys[i].def, what,
                             sizeof(what)) < 0)
            abort(); /* a default its own type rejects: a bug in the table */
}

/* ---- backends ---------------------------------------------------------- */

bool config_backend_id_ok(const char *id)
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

void config_default_id(size_t i, char *buf, size_t len)
{
    if (i < 26)
        snprintf(buf, len, "%c", (char)('A' + i));
    else
        snprintf(buf, len, "%c%c", (char)('A' + i / 26 - 1),
                 (char)('A' + i % 26));
}

/* "name:port" with a DNS name (resolved later) and a port 1..65535. */
static int parse_named(const char *addr, struct config_backend *b)
{
    const char *colon = strrchr(addr, ':');
    unsigned long long port;
    if (!colon || (size_t)(colon - addr) >= sizeof(b->name) ||
        config_parse_ull(colon + 1, false, &port) < 0 || port < 1 ||
        port > 65535)
        return -1;
    memcpy(b->name, addr, (size_t)(colon - addr));
    b->name[colon - addr] = '\0';
    if (!net_name_valid(b->name)) {
        b->name[0] = '\0';
        return -1;
    }
    b->host[0] = '\0';
    snprintf(b->port, sizeof(b->port), "%llu", port);
    b->kind = CONFIG_BACKEND_NAME;
    return 0;
}

int config_backend_parse(const char *spec, bool allow_id,
                         struct config_backend *b, bool *has_id, char *what,
                         size_t wlen)
{
    char buf[256];
    if (config_copy_str(buf, sizeof(buf), spec) < 0) {
        config_set_err(what, wlen, "at most %zu characters", sizeof(buf) - 1);
        return -1;
    }
    memset(b, 0, sizeof(*b));
    b->weight = 1;
    *has_id = false;
    char *save = NULL;
    char *tok = strtok_r(buf, ",", &save);
    char *addr = config_trim(tok ? tok : buf);
    struct net_addr ua;
    if (strncasecmp(addr, "srv:", 4) == 0) {
        if (config_copy_str(b->name, sizeof(b->name), addr + 4) < 0 ||
            !net_name_valid(b->name)) {
            config_set_err(what, wlen, "srv:_service._proto.name");
            return -1;
        }
        b->kind = CONFIG_BACKEND_SRV;
    } else if (strncmp(addr, "unix:", 5) == 0) {
        if (net_parse(addr, &ua, NULL, 0) < 0) {
            config_set_err(what, wlen, "unix:PATH with a path of 1..%d bytes",
                           NET_UNIX_PATH_MAX);
            return -1;
        }
        strcpy(b->unix_path, addr + 5); /* net_parse checked its length */
    } else if (config_parse_addr(addr, b->host, sizeof(b->host), b->port,
                                 sizeof(b->port)) < 0 &&
               parse_named(addr, b) < 0) {
        config_set_err(what, wlen, "%s, NAME:PORT, srv:NAME or unix:PATH",
                       CONFIG_ADDR_TEXT);
        return -1;
    }
    while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
        char *opt = config_trim(tok);
        char *eq = strchr(opt, '=');
        char *val = eq ? config_trim(eq + 1) : NULL;
        if (eq) {
            *eq = '\0';
            opt = config_trim(opt);
        }
        unsigned long long w;
        if (val && b->kind != CONFIG_BACKEND_SRV &&
            strcasecmp(opt, "weight") == 0) {
            if (config_parse_ull(val, false, &w) < 0 || w < 1 ||
                w > CONFIG_WEIGHT_MAX) {
                config_set_err(what, wlen, "weight=N with N in 1..%u",
                               CONFIG_WEIGHT_MAX);
                return -1;
            }
            b->weight = (unsigned)w;
        } else if (!val && strcasecmp(opt, "tls") == 0) {
            b->tls = true;
        } else if (val && allow_id && strcasecmp(opt, "id") == 0) {
            if (!config_backend_id_ok(val)) {
                config_set_err(what, wlen,
                               "id=NAME with 1..%zu letters, digits, "
                               "'_', '-' or '.'",
                               CONFIG_ID_MAX);
                return -1;
            }
            strcpy(b->id, val);
            *has_id = true;
        } else {
            config_set_err(what, wlen,
                           "ADDR:PORT|unix:PATH[, weight=N]%s[, tls] (ADDR "
                           "may be a DNS name) or srv:NAME%s[, tls]",
                           allow_id ? "[, id=NAME]" : "",
                           allow_id ? "[, id=NAME]" : "");
            return -1;
        }
    }
    return 0;
}

int config_backend_addr(const struct config_backend *b, char *buf, size_t len)
{
    if (b->kind != CONFIG_BACKEND_ADDR) {
        int n = b->kind == CONFIG_BACKEND_SRV
                    ? snprintf(buf, len, "srv:%s", b->name)
                    : snprintf(buf, len, "%s:%s", b->name, b->port);
        return n < 0 || (size_t)n >= len ? -1 : 0;
    }
    if (b->unix_path[0] == '\0')
        return net_join(buf, len, b->host, b->port);
    int n = snprintf(buf, len, "unix:%s", b->unix_path);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

ssize_t config_backend_index(const struct config *c, const char *id)
{
    for (size_t i = 0; i < c->nbackends; i++)
        if (strcmp(c->backends[i].id, id) == 0)
            return (ssize_t)i;
    return -1;
}

int config_backend_add(struct config *c, const char *id, const char *spec,
                       bool replace, const char *prefix, char *err,
                       size_t errlen)
{
    struct config_backend b;
    bool has_id;
    char what[160];
    if (!config_backend_id_ok(id)) {
        config_set_err(err, errlen,
                       "%s[backends] %s: expected an id of 1..%zu letters, "
                       "digits, '_', '-' or '.'",
                       prefix, id, CONFIG_ID_MAX);
        return -1;
    }
    if (config_backend_parse(spec, false, &b, &has_id, what, sizeof(what)) <
        0) {
        config_set_err(err, errlen, "%s[backends] %s: expected %s, got '%s'",
                       prefix, id, what, spec);
        return -1;
    }
    strcpy(b.id, id);
    ssize_t i = config_backend_index(c, id);
    if (i >= 0 && !replace) {
        config_set_err(err, errlen, "%s[backends] %s: duplicate backend id",
                       prefix, id);
        return -1;
    }
    if (i < 0 && c->nbackends >= CONFIG_MAX_BACKENDS) {
        config_set_err(err, errlen, "%s[backends] %s: more than %d backends",
                       prefix, id, CONFIG_MAX_BACKENDS);
        return -1;
    }
    if (i < 0)
        i = (ssize_t)c->nbackends++;
    c->backends[i] = b;
    return 0;
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
    config_set_err(x->err, x->errlen, "%s:%d: %s", x->path, x->lineno, msg);
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
    char *rb = *s == '[' ? strchr(s, ']') : NULL;
    if (rb) {
        char name[128], known[128];
        size_t nl = (size_t)(rb - s - 1);
        if (nl >= sizeof(name))
            nl = sizeof(name) - 1;
        memcpy(name, s + 1, nl);
        name[nl] = '\0';
        char pname[32];
        int kind = config_ext_section(name, pname, sizeof(pname));
        if (kind)
            config_ext_declare(x->c, kind, pname);
        else if (!config_section_known(name)) {
            config_sections_text(known, sizeof(known));
            ini_error(x, "unknown section [%s] (known: %s)", name, known);
        }
    }
    memcpy(str, s, len + 1);
    return str;
}

static int ini_on_key(void *user, const char *section, const char *name,
                      const char *value)
{
    struct ini_ctx *x = user;
    char msg[512], what[CONFIG_TEXT_MAX];
    if (section[0] == '\0') {
        ini_error(x, "%s: key outside of any [section]", name);
        return 0;
    }
    if (strcasecmp(section, "backends") == 0) {
        if (!x->backends_seen) {
            x->c->nbackends = 0;
            x->backends_seen = true;
        }
        if (config_backend_add(x->c, name, value, false, "", msg, sizeof(msg)) <
            0) {
            ini_error(x, "%s", msg);
            return 0;
        }
        return 1;
    }
    char pname[32];
    int kind = config_ext_section(section, pname, sizeof(pname));
    if (kind) {
        if (config_ext_key(x->c, kind, pname, name, value, msg, sizeof(msg)) <
            0) {
            ini_error(x, "[%s] %s", section, msg);
            return 0;
        }
        return 1;
    }
    if (!config_section_known(section))
        return 0; /* already reported at the section header */
    if (config_tls_pair_key(section, name)) {
        if (config_tls_add(x->c, name, value, NULL, what, sizeof(what)) < 0) {
            ini_error(x, "[tls] %s: expected %s, got '%s'", name, what, value);
            return 0;
        }
        return 1;
    }
    const struct config_key *k = config_key_find(section, name);
    if (!k) {
        ini_error(x, "[%s] %s: unknown key", section, name);
        return 0;
    }
    if (config_key_apply(x->c, k, value, what, sizeof(what)) < 0) {
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
        config_set_err(err, errlen, "%s: cannot open: %s", path,
                       strerror(errno));
        return -1;
    }
    /* Parse into a copy: a file with an error changes nothing (reload). */
    struct config *tmp = malloc(sizeof(*tmp));
    if (!tmp) {
        fclose(f);
        config_set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    *tmp = *c;
    if (config_ext_dup(tmp) < 0) {
        fclose(f);
        free(tmp);
        config_set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    struct ini_ctx x = {
        .c = tmp, .path = path, .f = f, .err = err, .errlen = errlen};
    int rc = ini_parse_stream(ini_read_line, &x, ini_on_key, &x);
    bool read_error = ferror(f);
    fclose(f);
    free(x.line);
    if (rc == -2 || read_error) {
        config_set_err(err, errlen, "%s: %s", path,
                       rc == -2 ? "out of memory" : "read error");
        x.err_line = -1;
    } else if (rc > 0 && (x.err_line == 0 || rc < x.err_line)) {
        config_set_err(err, errlen,
                       "%s:%d: syntax error: expected [section], key = value "
                       "or a comment",
                       path, rc);
        x.err_line = rc;
    }
    if (x.err_line == 0 &&
        config_copy_str(tmp->config_file, sizeof(tmp->config_file), path) < 0) {
        config_set_err(err, errlen, "%s: path too long", path);
        x.err_line = -1;
    }
    if (x.err_line == 0) {
        config_release(c);
        *c = *tmp;
    } else {
        config_release(tmp);
    }
    free(tmp);
    return x.err_line == 0 ? 0 : -1;
}

/* ---- validation and output --------------------------------------------- */

#define INVALID(...)                                                           \
    do {                                                                       \
        config_set_err(err, errlen, "invalid configuration: " __VA_ARGS__);    \
        return -1;                                                             \
    } while (0)

static int validate_backends(const struct config *c, char *err, size_t errlen)
{
    if (c->nbackends == 0 && config_pool_count(c) > 0)
        return 0; /* pools without a default pool */
    if (c->nbackends == 0)
        INVALID("no backends (add a [backends] section or --backend "
                "ADDR:PORT)");
    if (c->nbackends > CONFIG_MAX_BACKENDS)
        INVALID("%zu backends, at most %d", c->nbackends, CONFIG_MAX_BACKENDS);
    for (size_t i = 0; i < c->nbackends; i++) {
        const struct config_backend *b = &c->backends[i];
        char host[NET_ADDRSTRLEN], port[8], addr[300];
        struct net_addr ua;
        struct config_backend named;
        config_backend_addr(b, addr, sizeof(addr));
        if (!config_backend_id_ok(b->id))
            INVALID("backend %zu has an invalid id '%s'", i + 1, b->id);
        if (b->kind == CONFIG_BACKEND_SRV    ? !net_name_valid(b->name)
            : b->kind == CONFIG_BACKEND_NAME ? parse_named(addr, &named) < 0
            : b->unix_path[0]                ? net_parse(addr, &ua, NULL, 0) < 0
                              : config_parse_addr(addr, host, sizeof(host),
                                                  port, sizeof(port)) < 0)
            INVALID("backend %s: expected %s, got '%s'", b->id,
                    CONFIG_ADDR_TEXT, addr);
        if (b->weight < 1 || b->weight > CONFIG_WEIGHT_MAX)
            INVALID("backend %s: weight %u not in 1..%u", b->id, b->weight,
                    CONFIG_WEIGHT_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->backends[j].id, b->id) == 0)
                INVALID("duplicate backend id '%s'", b->id);
    }
    return 0;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
    if (validate_backends(c, err, errlen) < 0 ||
        config_tls_validate(c, err, errlen) < 0 ||
        config_pools_validate(c, config_validate, err, errlen) < 0)
        return -1;
    /* Every value in its table range (flags and code can bypass parsing). */
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        if (!k->type->check(k, (const char *)c + k->off))
            INVALID("[%s] %s out of range", k->section, k->key);
    }
    if (c->max_head_bytes > c->buffer_bytes)
        INVALID("[limits] max_head_bytes (%u) must not exceed [limits] "
                "buffer_bytes (%u): a request head must fit the buffer",
                c->max_head_bytes, c->buffer_bytes);
    if (c->balancer.fail_timeout_ms > c->balancer.max_eject_ms)
        INVALID("[health] fail_timeout_ms (%u) must not exceed [health] "
                "max_eject_ms (%u)",
                c->balancer.fail_timeout_ms, c->balancer.max_eject_ms);
    const char *hp = c->health_check_path;
    if (hp[0] != '\0' && (hp[0] != '/' || strpbrk(hp, " \t\r\n")))
        INVALID("[health] check_path: expected a path starting with '/' and "
                "without blanks, got '%s'",
                hp);
    const char *pp = c->prequal_probe_path;
    if (pp[0] != '/' || strpbrk(pp, " \t\r\n"))
        INVALID("[balancer] prequal_probe_path: expected a path starting "
                "with '/' and without blanks, got '%s'",
                pp);
    if (strcmp(c->listen, c->admin) == 0)
        INVALID("[proxy] listen and admin are the same address %s", c->listen);
    if (c->listen[0] == '\0' || c->logs_dir[0] == '\0' ||
        c->dashboard_dir[0] == '\0')
        INVALID("[proxy] listen, dashboard_dir and logs_dir must not be "
                "empty");
    return 0;
}

void config_log_path(const struct config *c, time_t start, char *buf,
                     size_t len)
{
    if (len == 0)
        return;
    struct tm tm;
    char stamp[32] = "";
    if (gmtime_r(&start, &tm))
        strftime(stamp, sizeof(stamp), "-%Y%m%d-%H%M%S", &tm);
    if (strcmp(c->log_path, "off") == 0)
        buf[0] = '\0';
    else if (c->log_path[0] != '\0')
        snprintf(buf, len, "%s", c->log_path);
    else
        snprintf(buf, len, "%s%s%s_%s%s.csv", c->logs_dir,
                 c->logs_dir[0] ? "/" : "", c->mode,
                 c->persistent ? "persistent" : "non_persistent", stamp);
}

void config_backend_print(const struct config_backend *b, FILE *out)
{
    char addr[300];
    config_backend_addr(b, addr, sizeof(addr));
    fprintf(out, "%s = %s", b->id, addr);
    if (b->weight != 1)
        fprintf(out, ", weight=%u", b->weight);
    fprintf(out, "%s\n", b->tls ? ", tls" : "");
}

void config_print(const struct config *c, FILE *out)
{
    const char *section = NULL;
    char text[CONFIG_TEXT_MAX];
    fprintf(out, "; lbproxy %s effective configuration%s%s\n", LBPROXY_VERSION,
            c->config_file[0] ? " from " : "", c->config_file);
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        if (k->flags & CF_ALIAS)
            continue;
        if (!section || strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
        }
        config_key_text(c, k, text, sizeof(text));
        fprintf(out, "%s = %s\n", k->key, text);
    }
    config_tls_print(c, out);
    fprintf(out, "\n[backends]\n");
    for (size_t i = 0; i < c->nbackends && i < CONFIG_MAX_BACKENDS; i++)
        config_backend_print(&c->backends[i], out);
    config_pools_print(c, out);
}
