/*
 * workers: what the master of --workers N and its workers know of each
 * other (docs/workers.md).  The master (master.c) forks the workers of a
 * generation with a struct worker_self each; a worker is the program of a
 * single process (server.c) serving from listeners the master bound, with
 * the generation's shared balancers and stats, and its row of figures in
 * the shared region.
 */
#ifndef LB_WORKERS_H
#define LB_WORKERS_H
#include <stdint.h>

struct shared_gen;

/* One worker's figures, written by the worker (counts) and the master
 * (pid, restarts), read by the admin of worker 0. */
struct worker_row {
    int pid;              /* 0: not running (being restarted) */
    unsigned restarts;    /* times the master started this index again */
    uint64_t started_us;  /* monotonic, when the master forked it */
    uint64_t requests;    /* finished requests, counted by the worker */
    uint64_t connections; /* client connections open now */
};

struct worker_self {
    unsigned index, count; /* this worker, of count */
    unsigned gen;          /* the generation's id (shared_gen.id) */
    int listen_fd;         /* the master's listeners; -1: bind one */
    int tls_listen_fd;     /* (with SO_REUSEPORT) */
    int admin_fd;          /* worker 0's admin listener */
    const struct shared_gen *shared;
    struct worker_row *rows; /* count of them, in the shared region */
    int ready_fd;            /* a byte (the index) written once serving */
};
#endif
