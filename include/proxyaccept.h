/*
 * proxyaccept: the listener side of the PROXY protocol ([proxy]
 * proxy_protocol).  An accepted connection waits here, reading nothing but
 * its PROXY v1/v2 header (proxyproto.h), before it becomes a session: the
 * header's source address then replaces the peer's (log, X-Forwarded-For,
 * stats, send_proxy).  Bytes are peeked and only those known to belong to
 * the header are consumed, so the first HTTP byte stays in the socket for
 * the session.  A connection whose first bytes are not a valid header, that
 * closes, or whose header is not complete within the client header timeout
 * is closed and counted.  Memory: one PROXYPROTO_MAX-byte buffer per
 * waiting connection, freed once the header is in.
 */
#ifndef LB_PROXYACCEPT_H
#define LB_PROXYACCEPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop.h"

struct session_ctx;
struct proxyaccept_conn;

struct proxyaccept {
    struct loop *loop;
    struct session_ctx *sessions; /* where a connection goes after its header */
    unsigned timeout_ms;          /* for the whole header */
    /* Called when a waiting connection was refused (accept may resume). */
    void (*on_close)(void *arg);
    void *close_arg;
    size_t npending; /* connections waiting for their header */
    struct proxyaccept_conn *all;
    uint64_t accepted;        /* headers accepted */
    uint64_t refused_invalid; /* not a valid header (garbage, too long) */
    uint64_t refused_timeout; /* not complete in time */
    uint64_t refused_closed;  /* closed (or failed) before it was complete */
    uint64_t refused;         /* the three above, summed */
};

/* Takes ownership of an accepted non-blocking socket that must start with
 * a PROXY header.  Returns 0, or -1 (the fd is closed, counted as refused)
 * when out of memory or the fd cannot be watched. */
int proxyaccept_start(struct proxyaccept *pa, int fd, const struct sockaddr *sa,
                      socklen_t salen);

/* Closes every connection still waiting for its header (drain, exit). */
void proxyaccept_close_all(struct proxyaccept *pa);

#endif
