/*
 * net: listen, connect and address text (see net.h).  Depends on nothing
 * but libc, so a stand-alone tool may compile it in.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void err_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Reports EINVAL with a message; always returns -1. */
static int bad_addr(char *err, size_t errlen, const char *what, const char *why)
{
    err_set(err, errlen, "address '%s': %s", what, why);
    errno = EINVAL;
    return -1;
}

/* A port of 1 to 5 digits, at most 65535; -1 otherwise. */
static long port_value(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

/* Fills a from a numeric host of the given family (AF_UNSPEC: either). */
static int fill_addr(const char *host, int family, unsigned port,
                     struct net_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (family != AF_INET6 && strcasecmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
    if (family != AF_INET6 && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        a->len = sizeof(*s4);
        return 0;
    }
    if (family != AF_INET && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        a->len = sizeof(*s6);
        return 0;
    }
    return -1;
}

/* "unix:PATH": a path of 1..NET_UNIX_PATH_MAX bytes (no abstract name). */
static int parse_unix(const char *spec, struct net_addr *a, char *err,
                      size_t errlen)
{
    const char *path = spec + 5;
    size_t n = strlen(path);
    if (n == 0)
        return bad_addr(err, errlen, spec, "expected unix:PATH");
    if (n > NET_UNIX_PATH_MAX)
        return bad_addr(err, errlen, spec, "a unix: path of at most 107 bytes");
    memset(a, 0, sizeof(*a));
    struct sockaddr_un *su = (struct sockaddr_un *)&a->ss;
    su->sun_family = AF_UNIX;
    memcpy(su->sun_path, path, n + 1);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int net_is_unix(const struct net_addr *a)
{
    return a->ss.ss_family == AF_UNIX;
}

int net_parse(const char *spec, struct net_addr *a, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN];
    if (strncmp(spec, "unix:", 5) == 0)
        return parse_unix(spec, a, err, errlen);
    const char *h, *p;
    size_t hl;
    int family;
    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (!rb || rb[1] != ':')
            return bad_addr(err, errlen, spec, "expected [IPv6]:PORT");
        h = spec + 1;
        hl = (size_t)(rb - h);
        p = rb + 2;
        family = AF_INET6;
    } else {
        const char *colon = strchr(spec, ':');
        if (!colon)
            return bad_addr(err, errlen, spec, "expected HOST:PORT");
        if (strchr(colon + 1, ':'))
            return bad_addr(err, errlen, spec,
                            "an IPv6 address needs brackets: [IPv6]:PORT");
        h = spec;
        hl = (size_t)(colon - spec);
        p = colon + 1;
        family = AF_INET;
    }
    if (hl == 0)
        return bad_addr(err, errlen, spec, "no host");
    long port = port_value(p);
    if (port < 0)
        return bad_addr(err, errlen, spec, "port must be 0..65535");
    const char *why =
        family == AF_INET6 ? "not an IPv6 address" : "not an IPv4 address";
    if (hl >= sizeof(host))
        return bad_addr(err, errlen, spec, why);
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (fill_addr(host, family, (unsigned)port, a) < 0)
        return bad_addr(err, errlen, spec, why);
    return 0;
}

int net_parse_ip(const char *host, unsigned port, struct net_addr *a, char *err,
                 size_t errlen)
{
    if (port > 65535) {
        err_set(err, errlen, "port %u: must be 0..65535", port);
        errno = EINVAL;
        return -1;
    }
    if (fill_addr(host, AF_UNSPEC, port, a) < 0)
        return bad_addr(err, errlen, host, "not an IPv4 or IPv6 address");
    return 0;
}

/* Writes "unknown" when it fits; always returns -1. */
static int unknown_text(char *buf, size_t len)
{
    if (len > 0)
        snprintf(buf, len, "%s", len > 7 ? "unknown" : "");
    return -1;
}

int net_format_ip(const struct sockaddr *sa, char *buf, size_t len)
{
    const void *ip;
    if (sa->sa_family == AF_INET)
        ip = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        ip = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    else
        return unknown_text(buf, len);
    /* inet_ntop fails (ENOSPC) when buf is too small. */
    if (!inet_ntop(sa->sa_family, ip, buf,
                   len > INET6_ADDRSTRLEN ? INET6_ADDRSTRLEN : (socklen_t)len))
        return unknown_text(buf, len);
    return 0;
}

int net_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *su = (const struct sockaddr_un *)sa;
        if (su->sun_path[0] == '\0')
            return unknown_text(buf, len); /* unnamed, or abstract */
        int n = snprintf(buf, len, "unix:%.*s", (int)sizeof(su->sun_path),
                         su->sun_path);
        return n < 0 || (size_t)n >= len ? unknown_text(buf, len) : 0;
    }
    if (net_format_ip(sa, ip, sizeof(ip)) < 0)
        return unknown_text(buf, len);
    int n = snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
                     ip, net_port(sa));
    if (n < 0 || (size_t)n >= len)
        return unknown_text(buf, len);
    return 0;
}

int net_join(char *buf, size_t len, const char *host, const char *port)
{
    int n =
        snprintf(buf, len, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int net_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--; /* the root label of a fully qualified name */
    if (len == 0 || len > 253)
        return 0;
    size_t label = 0;
    int digits_only = 1;
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? name[i] : '.';
        if (ch == '.') {
            if (label == 0 || label > 63 || name[i - 1] == '-')
                return 0;
            label = 0;
            if (i < len)
                digits_only = 1;
            continue;
        }
        int digit = ch >= '0' && ch <= '9';
        int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        if (!digit && !alpha && ch != '-' && ch != '_')
            return 0;
        if (label == 0 && ch == '-')
            return 0;
        digits_only = digits_only && digit;
        label++;
    }
    return !digits_only;
}

int net_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -1;
}

int net_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    int port = net_port((struct sockaddr *)&ss);
    if (port < 0)
        errno = EAFNOSUPPORT;
    return port;
}

/* Before binding a Unix socket path: removes a socket file nobody listens
 * on (left by a process that died); 0, or -1 with errno EADDRINUSE when a
 * live server or another kind of file holds the path. */
static int unlink_stale(const struct net_addr *a)
{
    const char *path = ((const struct sockaddr_un *)&a->ss)->sun_path;
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0; /* nothing there (or bind reports why) */
    if (!S_ISSOCK(st.st_mode)) {
        errno = EADDRINUSE;
        return -1;
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    int rc = connect(s, (const struct sockaddr *)&a->ss, a->len);
    int e = errno;
    close(s);
    if (rc == 0 || e != ECONNREFUSED) {
        errno = EADDRINUSE; /* someone answers (or its backlog is full) */
        return -1;
    }
    return unlink(path);
}

int net_listen(const struct net_addr *a, int backlog, unsigned flags, char *err,
               size_t errlen)
{
    char text[NET_ADDRSTRLEN];
    net_format((const struct sockaddr *)&a->ss, text, sizeof(text));
    if (net_is_unix(a) && unlink_stale(a) < 0)
        goto fail;
    int fd =
        socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    /* A restarted server must rebind at once, TIME_WAIT or not. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        ((flags & NET_LISTEN_REUSEPORT) &&
         setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
        listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        goto fail;
    }
    return fd;
fail:
    err_set(err, errlen, "listen on %s: %s", text, strerror(errno));
    return -1;
}

int net_listen_spec_flags(const char *spec, int backlog, unsigned flags,
                          char *err, size_t errlen)
{
    struct net_addr a;
    if (net_parse(spec, &a, err, errlen) < 0)
        return -1;
    return net_listen(&a, backlog, flags, err, errlen);
}

int net_listen_spec(const char *spec, int backlog, char *err, size_t errlen)
{
    return net_listen_spec_flags(spec, backlog, 0, err, errlen);
}

/* Errors that say the peer is unreachable (try another one), as opposed to
 * a local shortage.  A Unix socket path adds: no such file (ENOENT, or a
 * directory missing), and a full listen backlog (EAGAIN: the server is
 * overloaded, not us). */
static int peer_error(int e, int family)
{
    if (family == AF_UNIX &&
        (e == ENOENT || e == ENOTDIR || e == EAGAIN || e == EACCES))
        return 1;
    return e == ECONNREFUSED || e == ENETUNREACH || e == EHOSTUNREACH ||
           e == ETIMEDOUT || e == ECONNRESET;
}

enum net_connect_result net_connect(const struct net_addr *a, int *fd,
                                    char *err, size_t errlen)
{
    int s =
        socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
        err_set(err, errlen, "socket: %s", strerror(errno));
        return NET_ERROR;
    }
    if (connect(s, (const struct sockaddr *)&a->ss, a->len) == 0) {
        *fd = s;
        return NET_CONNECTED;
    }
    if (errno == EINPROGRESS) {
        *fd = s;
        return NET_IN_PROGRESS;
    }
    int e = errno;
    close(s);
    errno = e;
    if (err) {
        char text[NET_ADDRSTRLEN];
        net_format((const struct sockaddr *)&a->ss, text, sizeof(text));
        err_set(err, errlen, "connect to %s: %s", text, strerror(e));
    }
    return peer_error(e, a->ss.ss_family) ? NET_REFUSED : NET_ERROR;
}

int net_connect_finish(int fd)
{
    int e = 0;
    socklen_t len = sizeof(e);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        return -1;
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

const char *net_connect_result_str(enum net_connect_result r)
{
    switch (r) {
    case NET_CONNECTED:
        return "connected";
    case NET_IN_PROGRESS:
        return "in progress";
    case NET_REFUSED:
        return "refused";
    case NET_ERROR:
        return "error";
    }
    return "?";
}
