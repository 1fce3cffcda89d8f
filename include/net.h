/*
 * net: stream socket set-up and address text.  Listen, non-blocking
 * connect, and the one textual form of an address used everywhere:
 * "1.2.3.4:80" for IPv4, "[::1]:80" for IPv6 (RFC 3986 brackets),
 * "unix:/run/app.sock" for a Unix-domain stream socket (a path of at most
 * NET_UNIX_PATH_MAX bytes, no abstract names).  Hosts are numeric (no name
 * resolution, so nothing here blocks), except that "localhost" means
 * 127.0.0.1.
 *
 * Errors are reported one way, as in Redis anet.c: the function returns -1
 * (or NET_ERROR) with errno kept and a one-line message in the caller's
 * buffer `err` of `errlen` bytes.  err may be NULL where a caller only wants
 * errno (the connect path, which runs per request).
 */
#ifndef LB_NET_H
#define LB_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* Longest path of a "unix:" address (sun_path less its NUL). */
#define NET_UNIX_PATH_MAX 107
/* Longest text net_format writes: "unix:" and a path (longer than "["
 * IPv6 "]:" port), and the NUL. */
#define NET_ADDRSTRLEN (5 + NET_UNIX_PATH_MAX + 1)

/* An address of either family, ready for bind() or connect(). */
struct net_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses "HOST:PORT" (IPv4 or "localhost"), "[IPv6]:PORT" or "unix:PATH"
 * into a; port 0..65535 (0 asks the kernel for one when listening).
 * Returns 0, or -1 (errno EINVAL) with a message in err. */
int net_parse(const char *spec, struct net_addr *a, char *err, size_t errlen);

/* Like net_parse for a host and a port given apart: host is an IPv4 or IPv6
 * address without brackets, or "localhost".  Returns 0, or -1 (EINVAL)
 * with a message in err. */
int net_parse_ip(const char *host, unsigned port, struct net_addr *a, char *err,
                 size_t errlen);

/* Writes "1.2.3.4:80", "[::1]:80" or "unix:/path" for an AF_INET, AF_INET6
 * or AF_UNIX address into buf (NET_ADDRSTRLEN is always enough).  Returns 0, or
 * -1 with "unknown" in buf (when len allows) for another family or a buffer too
 * small. */
int net_format(const struct sockaddr *sa, char *buf, size_t len);

/* The address alone, "1.2.3.4" or "::1" (no brackets, no port); same
 * returns as net_format. */
int net_format_ip(const struct sockaddr *sa, char *buf, size_t len);

/* Joins a host and a port kept as text into "host:port", bracketing the
 * host when it contains ':' (IPv6).  Returns 0, or -1 when buf is too
 * small (buf then holds a truncated string). */
int net_join(char *buf, size_t len, const char *host, const char *port);

/* Whether name is a DNS host name as a backend or an SRV record may name
 * it: 1..253 characters (a trailing dot allowed), dot-separated labels of
 * 1..63 letters, digits, '-' or '_' that neither start nor end with '-',
 * and a last label that is not all digits (so that "1.2.3.400" is a bad
 * address, not a name).  Pure; nothing is resolved. */
int net_name_valid(const char *name);

/* True for a "unix:" address (AF_UNIX): no port, no TCP options. */
int net_is_unix(const struct net_addr *a);

/* The port of an AF_INET/AF_INET6 address, or -1 for another family. */
int net_port(const struct sockaddr *sa);

/* The port a socket is bound to (after binding port 0), or -1 with errno
 * set. */
int net_local_port(int fd);

/* A listening stream socket on a: SO_REUSEADDR, non-blocking,
 * close-on-exec (IPV6_V6ONLY is left at the system default).  For a
 * "unix:" address a stale socket file at the path (one nobody listens on)
 * is removed first; any other file there is an error.  Returns the fd, or -1
 * with errno kept and "listen on ADDR: reason" in err.  flags:
 * NET_LISTEN_REUSEPORT binds with SO_REUSEPORT as well (a listener per
 * worker, the kernel spreading connections among them). */
#define NET_LISTEN_REUSEPORT 1u
int net_listen(const struct net_addr *a, int backlog, unsigned flags, char *err,
               size_t errlen);

/* net_parse then net_listen: the fd, or -1 with a message in err. */
int net_listen_spec(const char *spec, int backlog, char *err, size_t errlen);
/* The same with net_listen's flags. */
int net_listen_spec_flags(const char *spec, int backlog, unsigned flags,
                          char *err, size_t errlen);

/* The distinct outcomes of a connect (nginx ngx_event_connect.c): refused
 * means "try another peer", error means a local problem (EMFILE, ...). */
enum net_connect_result {
    NET_CONNECTED,   /* *fd is connected (loopback may finish at once) */
    NET_IN_PROGRESS, /* *fd is connecting: wait for writability, then
                        net_connect_finish() */
    NET_REFUSED,     /* the peer cannot be reached; no fd, errno kept */
    NET_ERROR,       /* a local failure; no fd, errno kept */
};

/* Starts a non-blocking, close-on-exec connect to a.  On NET_CONNECTED and
 * NET_IN_PROGRESS *fd is the socket (the caller owns it); otherwise no fd
 * is left open and err (may be NULL) says why. */
enum net_connect_result net_connect(const struct net_addr *a, int *fd,
                                    char *err, size_t errlen);

/* The result of a connect that was in progress, once fd is writable:
 * 0 connected, or -1 with errno set to the connect's error. */
int net_connect_finish(int fd);

/* The text of an enum net_connect_result, for logs and tests. */
const char *net_connect_result_str(enum net_connect_result r);

#endif
