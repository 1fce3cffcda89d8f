/*
 * transport: how a half of a session moves bytes over its socket.  A
 * transport is a table of four functions; plain TCP is the one lbproxy has,
 * and TLS is meant to be a second table of the same shape, so the session
 * logic never knows which one carries its bytes.
 *
 * read and write return >0 bytes moved, 0 for end of stream (read only),
 * or -1 with errno set (EAGAIN when it would block).
 */
#ifndef LB_TRANSPORT_H
#define LB_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>

struct transport {
    const char *name;
    ssize_t (*read)(int fd, void *state, char *p, size_t n);
    ssize_t (*write)(int fd, void *state, const char *p, size_t n);
    /* Ends the sending direction (the peer reads end of stream). */
    int (*shutdown)(int fd, void *state);
    /* Frees the transport's state (not the fd). */
    void (*release)(void *state);
};

/* Plain TCP: recv/send, no state. */
extern const struct transport transport_tcp;

#endif
