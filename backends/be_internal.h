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
    CS_CLOSED,
};

enum route {
    R_APP,
    R_ECHO,
    R_ECHO_HEADERS,
    R_HEALTH,
    R_STATS,
};

enum pause_on {
    PAUSE_NONE,
    PAUSE_HEADERS,
    PAUSE_MESSAGE,
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
    char in[IN_CAP];
    char out[OUT_CAP];
};

struct be_stats {
    uint64_t accepts, open, requests, responses, errors, resets, hangs;
    uint64_t health, stats, bad_requests, accept_errors;
    uint64_t bytes_in, bytes_out;
};

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
    int destroying;
    struct be_stats st;
};

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
