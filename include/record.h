/*
 * record: what one finished request looked like.  Filled by the client
 * module, consumed by csvlog (one CSV row) and stats (counters, histograms).
 */
#ifndef LB_RECORD_H
#define LB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum record_error {
    RECORD_OK,
    RECORD_BAD_REQUEST,    /* 400 / 431 / 413 / 501 answered by lbproxy */
    RECORD_CONNECT,        /* no backend could be connected: 502 */
    RECORD_TIMEOUT,        /* upstream timed out: 504 */
    RECORD_UPSTREAM_RESET, /* upstream closed or reset mid-exchange */
    RECORD_BAD_RESPONSE,   /* upstream sent invalid HTTP: 502 */
    RECORD_CLIENT_CLOSED,  /* the client went away first */
    RECORD_CLIENT_TIMEOUT, /* client too slow (head/body/write) */
    RECORD_SHUTDOWN,       /* drain deadline passed */
    RECORD_UPSTREAM_TLS,   /* no backend's TLS handshake succeeded: 502 */
};
const char *record_error_str(enum record_error e);

/* Whether a hedge ran for the request, and whose answer was relayed. */
enum record_hedge {
    RECORD_HEDGE_NONE,
    RECORD_HEDGE_LOST, /* hedged; the first attempt answered */
    RECORD_HEDGE_WON,  /* hedged; the hedge answered */
};

/* One request.  The stats (and on_record finding their series) read pool,
 * pool_index, backend, backend_id, status, req_bytes, resp_bytes,
 * upstream_us, total_us and error; a session whose context does not ask
 * for the detail (session_ctx.record_detail false: no CSV log) sets only
 * those, and the other fields are left unset. */
struct record {
    uint64_t wall_us;        /* request start, CLOCK_REALTIME, microseconds */
    const char *client_addr; /* "127.0.0.1:54321" */
    const char *method;
    const char *path;
    size_t path_len;
    const char *pool;         /* the pool routed to; NULL when none */
    int pool_index;           /* its index in its set, -1 when none */
    const char *mode;         /* the pool's policy; NULL: the log's own */
    const char *conn_model;   /* the pool's: "persistent", "non_persistent";
                                 NULL: the log's */
    int backend;              /* index in the pool, -1 when none */
    const char *backend_id;   /* NULL when none */
    const char *backend_addr; /* NULL when none */
    int status;               /* status sent to the client, 0 if none */
    uint64_t req_bytes;       /* bytes received from the client */
    uint64_t resp_bytes;      /* bytes sent to the client */
    int64_t connect_us;       /* -1 when not applicable (reused conn) */
    int64_t ttfb_us;          /* dispatch to first response byte, -1 none */
    int64_t upstream_us;      /* dispatch to last response byte, -1 none */
    int64_t total_us;         /* first request byte to last response byte */
    bool reused;              /* upstream connection came from the pool */
    unsigned retries;
    enum record_error error;
    enum record_hedge hedge;
    const char *request_id; /* X-Request-Id sent upstream; NULL: none */
    /* the client connection's TLS (NULL, -1: plain TCP) */
    const char *tls_version; /* "TLSv1.3" */
    const char *tls_cipher;  /* "TLS_AES_128_GCM_SHA256" */
    bool tls_resumed;        /* its handshake resumed a session */
    int64_t tls_handshake_us;
};

#endif
