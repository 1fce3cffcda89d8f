/*
 * be_internal: the types shared by the emulator's server (listener,
 * workers, set-up: be_server.c) and its connections (parsing, answers,
 * I/O: be_conn.c).  Private to backends/.
 */
#ifndef LB_BE_INTERNAL_H
#define LB_BE_INTERNAL_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "be_options.h"
#include "be_profile.h"
#include "loop.h"

#define IN_CAP 16384    /* largest request head; input buffer */
#define OUT_CAP 16384   /* corked response heads and small bodies */
#define SMALL_BODY 4096 /* bodies up to this are copied into out */
#define RESP_ROOM 6144  /* out space needed before producing an answer */
#define ACCEPT_BATCH 64
#define EMFILE_PAUSE_US 100000

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
    struct conn *qnext, *qprev; /* worker queue, or the free list */
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
    uint64_t queued_at, queue_us, service_us;
    int has_worker;
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
    uint64_t max_queued, bytes_in, bytes_out;
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
    int busy;
    size_t queued;
    struct conn *q_head, *q_tail;
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
/* Parses, answers and writes what it can, then sets the interest set. */
void be_conn_drive(struct conn *c);
/* Queues the answer of an emulated request whose service is over. */
void be_conn_respond_app(struct conn *c);

/* The profile in effect now (the base one or the current phase's). */
const struct be_profile *be_sched_profile(struct be_server *s);
/* Gives a complete request a worker, or queues it FIFO when all are busy;
 * a zero service time with a free worker answers at once. */
void be_sched_submit(struct conn *c);
/* Forgets a closing connection: leaves the queue or frees its worker. */
void be_sched_forget(struct conn *c);
/* The service timer of a connection: its service time is over. */
void be_sched_timer(struct loop *loop, struct loop_timer *t);

#endif
