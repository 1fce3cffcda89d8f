/*
 * transport: how a half of a session moves bytes over its socket.  A
 * transport is a table of functions; plain TCP is one (here), TLS the
 * other (tls.h, transport_tls.c), so the session logic never knows which
 * one carries its bytes.
 *
 * read and write return >0 bytes moved, 0 for end of stream (read only),
 * or -1 with errno set (EAGAIN when it would block).
 *
 * A transport with a protocol of its own (TLS) may need the socket in the
 * other direction: a read that must first write (a key update, session
 * tickets) or a write that must first read.  It says so through `wants`,
 * and the owner of the socket adds those events to its interest and
 * retries the blocked direction when one fires.  It may also hold bytes it
 * already took from the socket and decoded (`buffered`): no socket event
 * announces them, so the owner reads again while it has room.  Plain TCP
 * leaves these NULL.
 */
#ifndef LB_TRANSPORT_H
#define LB_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a transport tells the log about a connection. */
struct transport_info {
    const char *version; /* "TLSv1.3" */
    const char *cipher;  /* "TLS_AES_128_GCM_SHA256" */
    bool resumed;        /* an abbreviated (resumed) handshake */
    uint32_t handshake_us;
};

struct transport {
    const char *name;
    bool secure; /* the client's bytes were protected (X-Forwarded-Proto) */
    ssize_t (*read)(int fd, void *state, char *p, size_t n);
    ssize_t (*write)(int fd, void *state, const char *p, size_t n);
    /* Ends the sending direction (the peer reads end of stream). */
    int (*shutdown)(int fd, void *state);
    /* Frees the transport's state (not the fd; still open when called). */
    void (*release)(void *state);
    /* Optional: LOOP_READ / LOOP_WRITE (loop.h) the transport waits for on
     * its own after read or write said EAGAIN, 0 when none. */
    unsigned (*wants)(const void *state);
    /* Optional: decoded bytes are waiting for a read. */
    bool (*buffered)(const void *state);
    /* Optional: fills *out. */
    void (*info)(const void *state, struct transport_info *out);
};

/* Plain TCP: recv/send, no state. */
extern const struct transport transport_tcp;

#endif
