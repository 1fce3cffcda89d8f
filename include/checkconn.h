/*
 * checkconn: one short HTTP/1.1 exchange with a backend over the event
 * loop, for the active health checks (health.c) and the prequal probes
 * (prequal_probe.c): connect (or reuse the connection kept from the last
 * exchange), send a request, read the answer's status line or whole head,
 * all under one deadline.  It owns at most one socket and never touches
 * the request pools.
 */
#ifndef LB_CHECKCONN_H
#define LB_CHECKCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

struct upstream;
struct upstream_conn;

#define CHECKCONN_BUF 512 /* the answer kept: a status line, a small head */

/* How an exchange ended. */
enum checkconn_result {
    CHECKCONN_DONE,   /* an answer: status and buf hold it */
    CHECKCONN_FAILED, /* refused, reset, timeout, garbage: why says */
    CHECKCONN_LOCAL,  /* not started for a local reason (EMFILE, ...) */
};
/* "done", "failed", "local". */
const char *checkconn_result_str(enum checkconn_result r);

struct checkconn;
/* Called once per exchange started; the answer (status line, or the head
 * with `head`) is c->buf[0..c->len), its status c->status.  The callback
 * may start the next exchange. */
typedef void checkconn_done_fn(struct checkconn *c, enum checkconn_result r,
                               const char *why);

enum checkconn_state {
    CHECKCONN_IDLE,
    CHECKCONN_CONNECTING,
    CHECKCONN_SENDING,
    CHECKCONN_READING,
};

struct checkconn {
    /* set by the owner before the first exchange */
    struct loop *loop;
    struct upstream *up;
    unsigned idx;    /* the backend's slot */
    bool head;       /* read the whole head, not only the status line */
    bool keep;       /* keep the connection for the next exchange */
    const void *pre; /* a preamble for a new connection (send_proxy) */
    size_t prelen;
    checkconn_done_fn *done;
    void *ctx;
    /* the exchange */
    enum checkconn_state state;
    struct loop_timer timer;  /* its deadline */
    struct upstream_conn *uc; /* while busy, and kept between with keep */
    const char *req;
    size_t req_len, sent;
    char buf[CHECKCONN_BUF];
    size_t len;
    int status; /* 100..599 once DONE */
};

/* The preamble for a new check connection under send_proxy (one of enum
 * config_send_proxy): the PROXY header with no client address ("LOCAL"),
 * written into buf (cap bytes); returns its length, 0 when there is none
 * or it does not fit. */
size_t checkconn_preamble(int send_proxy, uint8_t *buf, size_t cap);

/* Starts one exchange: sends req (req_len bytes, which must live until
 * the end) on the kept connection or a new one, with a deadline at
 * deadline_us.  The outcome comes through c->done, possibly before this
 * returns (a refused connect).  c must be idle. */
void checkconn_start(struct checkconn *c, const char *req, size_t req_len,
                     uint64_t deadline_us);
/* Ends an exchange under way without calling done, and closes the kept
 * connection.  Safe on an idle one. */
void checkconn_stop(struct checkconn *c);
/* Whether an exchange is under way. */
static inline bool checkconn_busy(const struct checkconn *c)
{
    return c->state != CHECKCONN_IDLE;
}

/* Parses "HTTP/1.x DDD ..." at the start of buf: 1 with *status set when
 * the line is complete and valid, 0 when it is invalid or too long (*why
 * says), -1 while it is incomplete.  Pure. */
int checkconn_status_line(const char *buf, size_t len, size_t cap, int *status,
                          const char **why);

/* The value of head field `name` (its first line; name case ignored) in
 * buf[0..len), or NULL; *vlen is its length without surrounding blanks.
 * Pure. */
const char *checkconn_field(const char *buf, size_t len, const char *name,
                            size_t *vlen);

#endif
