/*
 * be_internal: the types shared by the emulator's server (listener, phases,
 * set-up: be_server.c) and its connections (state, parsing, answers, I/O:
 * be_conn.c).  The workers and their queue are be_sched.c.  Private to
 * backends/.
 */
#ifndef LB_BE_INTERNAL_H
#define LB_BE_INTERNAL_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "be_options.h"
#include "be_profile.h"
#include "be_sched.h"
#include "loop.h"

#define IN_CAP 16384    /* largest request head; input buffer */
#define OUT_CAP 16384   /* corked response heads and small bodies */
#define SMALL_BODY 4096 /* bodies up to this are copied into out */
#define RESP_ROOM 6144  /* out space needed before producing an answer */
#define ACCEPT_BATCH 64
#define EMFILE_PAUSE_US 100000

/* Set only through be_conn.c's set_state(), which checks the transition. */
enum conn_state {
    CS_READING, /* parsing a request (or idle between requests) */
    CS_QUEUED,  /* complete request waiting for a worker */
    CS_SERVICE, /* holding a worker; the service timer is armed */
    CS_HANG,    /* will never answer; waits for the client to leave */
    CS_WS,      /* after a WebSocket handshake: frames (be_ws.c) */
    CS_CLOSED,
};

enum route {
    R_APP,
    R_ECHO,
    R_ECHO_HEADERS,
    R_HEALTH,
    R_STATS,
    R_PROBE,
    R_WS,
};

enum pause_on {
    PAUSE_NONE,
    PAUSE_HEADERS,
    PAUSE_MESSAGE,
};

/* The largest WebSocket data frame payload the echo takes: a bigger one is
 * answered with close 1009 (message too big). */
#define WS_MAX_FRAME (1u << 20)
/* The most a /ws?flood=N connection sends on its own. */
#define WS_MAX_FLOOD (1ull << 34)

/* A WebSocket connection's state (be_ws.c); all zero until /ws. */
struct be_ws {
    char accept[32]; /* Sec-WebSocket-Accept of a valid handshake, or "" */
    uint64_t flood;  /* bytes of server-sent binary frames still to send */
    uint64_t left;   /* payload bytes of the current data frame to echo */
    uint8_t mask[4];
    unsigned mask_pos;
    int in_frame;   /* echoing a data frame's payload */
    int in_message; /* a fragmented data message is under way */
};

struct conn {
    struct loop_io io;
    struct loop_timer timer;
    struct be_server *srv;
    struct conn *free_next;     /* the free list, once released */
    struct conn *lnext, *lprev; /* all live connections */
    uint64_t id;
    enum conn_state state;
    llhttp_t parser;
    enum pause_on paused_on;
    /* the current request */
    enum route route;
    int is_head;
    int keep_alive;
    int http10;
    int too_large;
    uint64_t body_bytes;
    struct be_sched_job job; /* its place with the workers */
    /* input: [in_start, in_parse) is kept (the current head), [in_parse,
     * in_len) is not parsed yet */
    size_t in_start, in_parse, in_len;
    int head_phase; /* 1 while the current request's head is incomplete */
    int peer_eof;
    int close_after; /* close once the output has drained */
    /* output: out[out_sent, out_len), then seg[0, seg_len) */
    size_t out_sent, out_len;
    const char *seg;
    size_t seg_len;
    char *ebuf; /* echoed request body */
    size_t elen, ecap;
    char *hbuf; /* copy of the current head (echo-headers, request log) */
    size_t hlen;
    struct be_ws ws;
    void *ssl;     /* SSL with --tls-cert (be_tls.c), else NULL */
    int tls_done;  /* its handshake finished */
    int tls_wants; /* LOOP_WRITE: the last read waits for writability */
    char in[IN_CAP];
    char out[OUT_CAP];
};

struct be_stats {
    uint64_t accepts, open, requests, responses, errors, resets, hangs;
    uint64_t health, stats, bad_requests, accept_errors;
    uint64_t bytes_in, bytes_out;
    uint64_t ws_upgrades, ws_frames;
    uint64_t tls_handshakes, tls_resumed;
    uint64_t probes;
};

/* The requests whose latency (queue + service) the probe answer's
 * estimate is the median of. */
#define BE_RECENT 32

struct be_server {
    struct loop *loop;
    const struct be_options *o;
    struct loop_io lio;
    struct loop_timer accept_timer;
    int port;
    uint64_t start_us;
    uint64_t last_emfile_warn;
    struct be_rng rng;
    int phase; /* index into o->phases, -1 = base profile */
    double fault_total;
    struct be_sched sched;
    struct conn *free_list;
    struct conn *live;
    uint64_t next_conn_id;
    char *body;
    size_t body_len;
    char ok_prefix[256]; /* "HTTP/1.1 200 OK" ... through Content-Length */
    size_t ok_prefix_len;
    FILE *reqlog;
    void *tls;         /* SSL_CTX with --tls-cert, else NULL */
    char tls_sni[256]; /* the SNI of the last handshake */
    int destroying;
    struct be_stats st;
    uint32_t recent[BE_RECENT]; /* the last latencies, a ring (us) */
    unsigned nrecent, rpos;
};

static inline size_t out_free(const struct conn *c)
{
    return OUT_CAP - c->out_len;
}

/* Appends n bytes to the output; the caller made sure of the room. */
static inline void out_put(struct conn *c, const void *p, size_t n)
{
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* ---- be_conn.c's answers, for the endpoints in other files ---- */

/* Queues a complete answer with a small, copied body. */
void be_respond_simple(struct conn *c, int status, const char *reason,
                       const char *ctype, const char *body, size_t len);
/* Ends a head: the Connection field the request asks for, the blank line
 * (and close_after when the connection ends). */
void be_put_connection(struct conn *c);

/* ---- be_status.c: the emulator's own endpoints ---- */

/* /stats: the counters as one JSON object. */
void be_respond_stats(struct conn *c);
/* /probe (prequal, docs/backend.md): requests in flight (with a worker or
 * queued) and the median latency of the last BE_RECENT requests, in the
 * head; 404 with --no-probe.  Never queued, no latency, no faults. */
void be_respond_probe(struct conn *c);
/* Records one finished request's latency for /probe. */
void be_probe_record(struct be_server *s, uint64_t latency_us);

/* ---- be_ws.c: the WebSocket echo endpoint (RFC 6455) ---- */

/* Checks the head of a /ws request (Upgrade: websocket, Connection:
 * upgrade, Sec-WebSocket-Version: 13, a 16-byte Sec-WebSocket-Key) and
 * fills c->ws.accept when it is a valid handshake; reads ?flood=N. */
void be_ws_head(struct conn *c, const char *head, size_t n);
/* At the end of a /ws request: queues the 101 answer and returns 1 when
 * the request was a valid handshake (a body-less HTTP/1.1 GET; the caller
 * switches the state to CS_WS), else counts a bad request and returns 0. */
int be_ws_accept(struct conn *c);
/* Echoes the frames in c->in as output room allows (text and binary
 * unmasked and sent back, ping answered by pong, close by close), then
 * the flood; a bad frame queues a close (1002, 1009) and close_after.
 * Returns 1 when it consumed input or queued output, else 0 (a partial
 * frame, or no output room). */
int be_ws_input(struct conn *c);

/* ---- be_tls.c: TLS with --tls-cert / --tls-key ---- */

/* Loads the certificate and key into s->tls (nothing without them): 0, or
 * -1 with OpenSSL's reason in err. */
int be_tls_init(struct be_server *s, char *err, size_t errlen);
void be_tls_fini(struct be_server *s);
/* A new connection's server side on fd (when TLS is on): 0, or -1. */
int be_tls_open(struct conn *c, int fd);
/* Frees it (a close_notify first after a finished handshake). */
void be_tls_close(struct conn *c);
/* The connection's read and writev: plain, or through TLS (the handshake
 * runs inside the first reads); as read(2) and writev(2), EAGAIN also
 * while TLS waits (c->tls_wants: for writability). */
ssize_t be_io_read(struct conn *c, void *p, size_t n);
ssize_t be_io_writev(struct conn *c, const struct iovec *iov, int n);
/* The /stats fields of TLS (",\"tls\":..."): like snprintf. */
int be_tls_stats(const struct be_server *s, char *buf, size_t len);

/* One line of the request log (be_reqlog.c): head is the request head,
 * or with error the bytes of a refused request. */
void be_reqlog_write(FILE *f, uint64_t t_us, uint64_t conn, const char *error,
                     const char *head, size_t n, uint64_t body_bytes);

/* Starts serving a new connection on fd (closes fd on failure). */
void be_conn_open(struct be_server *s, int fd);
/* Closes a connection, gives back its worker or queue place; the memory is
 * released after the dispatch round (at once while destroying). */
void be_conn_close(struct conn *c);

/* The profile in effect now (the base one or the current phase's). */
const struct be_profile *be_server_profile(struct be_server *s);
/* be_sched's start callback (ctx is the server): a queued request got a
 * worker, its service timer is armed. */
void be_conn_service_start(struct be_sched_job *j, void *ctx);

#endif
