/*
 * transport: plain TCP (see transport.h).
 */
#include "transport.h"

#include <sys/socket.h>

static ssize_t tcp_read(int fd, void *state, char *p, size_t n)
{
    (void)state;
    return recv(fd, p, n, 0);
}

static ssize_t tcp_write(int fd, void *state, const char *p, size_t n)
{
    (void)state;
    return send(fd, p, n, MSG_NOSIGNAL);
}

static int tcp_shutdown(int fd, void *state)
{
    (void)state;
    return shutdown(fd, SHUT_WR);
}

static void tcp_release(void *state)
{
    (void)state;
}

const struct transport transport_tcp = {
    .name = "tcp",
    .read = tcp_read,
    .write = tcp_write,
    .shutdown = tcp_shutdown,
    .release = tcp_release,
};
