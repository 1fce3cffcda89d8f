/*
 * config: the key table with its defaults, INI loading (inih) and validation
 * (src/config.c); the command line and its usage (src/config_cli.c).
 * Everything is checked before any socket is bound.
 */
#ifndef LB_CONFIG_H
#define LB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "balancer.h"
#include "hashkey.h"

#define CONFIG_MAX_BACKENDS BALANCER_MAX_BACKENDS
#define CONFIG_MAX_CERTS 16      /* [tls] certificate/key pairs */
#define CONFIG_WEIGHT_MAX 10000u /* a backend's weight: 1..this */
#define CONFIG_DEFAULT_FILE "config/lbproxy.ini"
#define LBPROXY_VERSION "0.1.0"

/* The PROXY protocol header written on each new upstream connection. */
enum config_send_proxy {
    CONFIG_SEND_PROXY_OFF,
    CONFIG_SEND_PROXY_V1,
    CONFIG_SEND_PROXY_V2,
};

/* How a backend's address is known.  A named backend is resolved by DNS
 * (src/resolver.c) into the addresses the proxy connects to. */
enum config_backend_kind {
    CONFIG_BACKEND_ADDR, /* a numeric address or unix:PATH */
    CONFIG_BACKEND_NAME, /* "name:port": the name's A and AAAA records */
    CONFIG_BACKEND_SRV,  /* "srv:_service._proto.name": its SRV records */
};

struct config_backend {
    char id[32];   /* "A", "B", ... (default: letters in order) */
    char host[64]; /* numeric IPv4/IPv6 address (CONFIG_BACKEND_ADDR) */
    char port[8];  /* ADDR and NAME; "" for SRV (the records give it) */
    /* a "unix:PATH" backend: the socket path (host and port empty); ""
     * for a TCP backend */
    char unix_path[108];
    unsigned weight;
    int kind;       /* enum config_backend_kind */
    char name[256]; /* NAME and SRV: the name to resolve (net_name_valid) */
    bool tls;       /* ",tls": TLS towards it (docs/tls.md) */
};

/* The backend's address as text: "host:port", "[v6]:port", "unix:PATH",
 * or for a named one "name:port" or "srv:name".
 * Returns 0, or -1 when buf is too small (128 bytes always suffice). */
int config_backend_addr(const struct config_backend *b, char *buf, size_t len);
/* Parses "ADDR:PORT|unix:PATH[,weight=N][,id=NAME][,tls]" (id= only when
 * allow_id) into b; *has_id tells whether an id was given.  0, or -1 with
 * what[] filled on error. */
int config_backend_parse(const char *spec, bool allow_id,
                         struct config_backend *b, bool *has_id, char *what,
                         size_t wlen);
/* Whether id is a valid backend id: 1..31 letters, digits, '_', '-', '.'. */
bool config_backend_id_ok(const char *id);
/* A TLS certificate (chain, PEM) and its private key (PEM). */
struct config_cert {
    char cert[256];
    char key[256];
};

/* Named pools and the routes to them ([pool.NAME], [pool.NAME.backends],
 * [route.NAME]; src/config_pool.c).  Held on the heap by struct config
 * (config_release frees it); read them through config_pool_count and
 * config_pool_build, which apply a pool's keys over the global ones. */
struct config_ext;

/* One [route.NAME]: requests whose Host matches `host` (exact, "*.suffix",
 * or "" for any) and whose path starts with path_prefix go to `pool`. */
struct config_route {
    char name[32];
    char host[256];        /* lower case, no port; "" = any host */
    char path_prefix[256]; /* "/" when not given */
    char pool[32];
};

struct config {
    char listen[128]; /* "127.0.0.1:9090" */
    char admin[128];  /* "127.0.0.1:5002"; "off" disables */
    char mode[32];    /* a balancer policy name */
    bool persistent;
    char log_path[256];         /* "" = logs/<mode>_<model>.csv, "off" = none */
    char dashboard_dir[256];    /* "dashboard" */
    char logs_dir[256];         /* directory served under /logs/ ("logs") */
    char admin_token_file[256]; /* "" = no runtime API (docs/api.md) */

    /* the front door (docs/configuration.md) */
    bool request_id;      /* keep a sane X-Request-Id or make one */
    bool request_id_echo; /* ... and send it back in the response */
    bool proxy_protocol;  /* the listener expects a PROXY v1/v2 header */
    int send_proxy;       /* enum config_send_proxy: header towards backends */

    /* every core (docs/workers.md) */
    unsigned workers;      /* worker processes; 0 = auto (the usable CPUs) */
    char worker_cpus[128]; /* "0,1": worker i pinned to the i-th; "" none */
    bool reuseport;        /* a listener per worker (SO_REUSEPORT) */
    bool shared_balancers; /* false: a balancer per worker (to compare) */

    struct config_backend backends[CONFIG_MAX_BACKENDS];
    size_t nbackends;

    /* timeouts, milliseconds */
    unsigned client_header_timeout_ms; /* whole request head (slowloris) */
    unsigned client_body_timeout_ms;   /* between body reads */
    unsigned keepalive_timeout_ms;     /* idle client connection */
    unsigned tunnel_idle_ms;           /* tunnel with no byte either way */
    unsigned client_write_timeout_ms;  /* client not reading a response */
    unsigned upstream_connect_timeout_ms;
    unsigned upstream_timeout_ms;  /* no response progress -> 504 */
    unsigned pool_idle_timeout_ms; /* idle pooled upstream conn */
    unsigned drain_timeout_ms;     /* graceful shutdown deadline */

    /* limits */
    unsigned max_head_bytes;           /* request head -> 431 */
    unsigned max_headers;              /* header count -> 431 */
    unsigned long long max_body_bytes; /* -> 413 */
    unsigned max_clients;              /* concurrent client connections */
    unsigned buffer_bytes;             /* per-direction buffer size */
    unsigned max_retries;    /* other backends tried after a failure */
    unsigned retry_on;       /* enum retry_on mask: what may be retried */
    unsigned per_try_factor; /* per-try deadline: factor x latency tail */
    unsigned per_try_min_ms; /* ... at least, 0: no per-try deadline */
    unsigned per_try_max_ms; /* ... at most (also before any sample) */
    bool hedge; /* a per-try deadline starts a hedge (false: cancel, retry) */
    unsigned max_conns;        /* requests in flight per backend, 0: no cap */
    unsigned max_queue;        /* requests waiting for a free backend */
    unsigned queue_timeout_ms; /* longest wait in that queue: then 503 */
    unsigned retry_budget_percent; /* extra attempts: share of requests */
    unsigned retry_budget_min;     /* ... but always this many at once */
    unsigned pool_max_idle;        /* idle upstream connections per backend */
    bool pool_reset_on_close; /* end finished, unpooled exchanges with RST */

    /* active health checks ("" path = off) */
    char health_check_path[128];
    unsigned health_check_interval_ms;

    /* mode = prequal: the probes' path and deadline (src/prequal_probe.c) */
    char prequal_probe_path[128];
    unsigned prequal_probe_timeout_ms;

    /* CSV log */
    unsigned log_flush_ms;

    /* DNS for named backends ([dns]; src/resolver.c) */
    char dns_resolvers[256]; /* "ADDR:PORT,...", "" = /etc/resolv.conf */
    unsigned dns_resolve_interval_ms; /* re-resolution, at most (TTL first) */
    unsigned dns_timeout_ms;          /* first try of a query */

    /* TLS termination ([tls]; src/config_tls.c checks it) */
    char tls_listen[128];                           /* "off": no TLS listener */
    struct config_cert tls_certs[CONFIG_MAX_CERTS]; /* the first: default */
    size_t ntls_certs;
    char tls_min_version[16];   /* "TLS1.2" or "TLS1.3" */
    char tls_ciphers[256];      /* TLS 1.2 cipher list (OpenSSL syntax) */
    char tls_ciphersuites[256]; /* TLS 1.3 suites */
    bool tls_resumption;        /* session tickets and a session cache */
    unsigned tls_handshake_timeout_ms;

    /* TLS towards backends marked ",tls" ([pool] upstream_tls_*; per pool;
     * src/tls_client.c) */
    char upstream_tls_ca_file[256];    /* "": the system's default paths */
    bool upstream_tls_verify;          /* certificate and name checked */
    char upstream_tls_sni[256];        /* "": the backend's name, if any */
    char upstream_tls_min_version[16]; /* "TLS1.2" or "TLS1.3" */

    struct balancer_params balancer;
    struct hashkey hash_key; /* mode hash: what a request is keyed by */

    /* pools and routes beyond [backends] (NULL: none) */
    struct config_ext *ext;
    /* set by config_pool_build: the pool this configuration describes */
    char pool[32];

    /* where the values came from, for messages */
    char config_file[256]; /* "" when none was read */

    /* log level for log_verbosity: 0 warnings, 1 info (default), 2 debug;
     * each -v adds one */
    int verbosity;
};

/* Fills every field with the built-in defaults (no backends): the default
 * column of the key table, and balancer_params_default for the balancer's
 * tunables. */
void config_defaults(struct config *c);

/* Reads an INI file over the current values.  Returns 0, or -1 with a
 * "FILE:LINE: key: expected ..." message in err. */
int config_load_file(struct config *c, const char *path, char *err,
                     size_t errlen);

/* Full start-up: defaults, then the config file (--config FILE, or
 * CONFIG_DEFAULT_FILE when it exists), then the flags, then config_validate
 * (the caller need not validate again).  Returns 0 to run, 1 when
 * --help/--version/--check was printed (exit 0), -1 with err filled on a
 * bad file, flag or value (exit 2). */
int config_from_args(struct config *c, int argc, char **argv, char *err,
                     size_t errlen);

/* Checks every value against its key's type and range, the backends and
 * the cross-field rules; 0 or -1 with err filled. */
int config_validate(const struct config *c, char *err, size_t errlen);

/* The CSV log path after defaults: "" when logging is off, log_path when
 * one is set, else a new file per run named after the mode, the connection
 * model and start (UTC): logs_dir/MODE_persistent-YYYYMMDD-HHMMSS.csv. */
void config_log_path(const struct config *c, time_t start, char *buf,
                     size_t len);

/* Frees what the configuration holds on the heap (its pools and routes);
 * the fields stay valid, with no pools.  Safe to call twice. */
void config_release(struct config *c);
/* The name of the pool that [backends] forms. */
#define CONFIG_DEFAULT_POOL "default"
/* Number of pools: the default pool (when [backends] has any backend)
 * then each [pool.NAME] in the order the file first names it. */
size_t config_pool_count(const struct config *c);
/* Pool i's configuration: c's values with the pool's own keys applied,
 * its backends, pool set to its name and no pools of its own.  0, or -1
 * with err filled (a key whose value is out of range for this pool). */
int config_pool_build(const struct config *c, size_t i, struct config *out,
                      char *err, size_t errlen);
/* Number of routes and route i (NULL when out of range). */
size_t config_route_count(const struct config *c);
const struct config_route *config_route(const struct config *c, size_t i);

/* Prints the effective configuration (for --print-config and logs). */
void config_print(const struct config *c, FILE *out);

/* Splits "a.b.c.d:port", "[v6]:port" or "localhost:port" (-> 127.0.0.1)
 * into a numeric host (no brackets) and a port "1".."65535".  Returns 0, or
 * -1 when the text is not such an address or a buffer is too small. */
int config_parse_addr(const char *s, char *host, size_t hostlen, char *port,
                      size_t portlen);

#endif
