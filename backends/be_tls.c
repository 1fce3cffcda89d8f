/*
 * be_tls: the emulator's TLS (--tls-cert FILE --tls-key FILE), so tests of
 * lbproxy's TLS towards backends need no outside server.  OpenSSL on the
 * connection's non-blocking socket: the handshake runs inside the first
 * reads (SSL_read in the accept state), and the connection's I/O goes
 * through be_io_read / be_io_writev, which are plain read/writev without
 * TLS.  Session tickets and OpenSSL's server session cache are on, so a
 * client can resume; /stats counts the finished handshakes, the resumed
 * ones and shows the last SNI name.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

#include "be_internal.h"

int be_tls_init(struct be_server *s, char *err, size_t errlen)
{
    const struct be_options *o = s->o;
    if (!o->tls_cert[0])
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    static const unsigned char sid[] = "lbbackend";
    if (!ctx || !SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) ||
        !SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) ||
        !SSL_CTX_check_private_key(ctx) ||
        !SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1)) {
        char why[160] = "out of memory";
        unsigned long e = ERR_peek_last_error();
        if (e)
            ERR_error_string_n(e, why, sizeof(why));
        ERR_clear_error();
        snprintf(err, errlen, "TLS: %s / %s: %s", o->tls_cert, o->tls_key, why);
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    s->tls = ctx;
    return 0;
}

void be_tls_fini(struct be_server *s)
{
    SSL_CTX_free(s->tls);
    s->tls = NULL;
}

int be_tls_open(struct conn *c, int fd)
{
    if (!c->srv->tls)
        return 0;
    c->ssl = SSL_new(c->srv->tls);
    if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
        return -1;
    }
    SSL_set_accept_state(c->ssl);
    return 0;
}

void be_tls_close(struct conn *c)
{
    if (!c->ssl)
        return;
    if (c->tls_done && SSL_shutdown(c->ssl) < 0)
        ERR_clear_error(); /* close_notify is best effort */
    SSL_free(c->ssl);
    c->ssl = NULL;
}

/* The first time the handshake is seen finished: its counters and SNI. */
static void handshake_done(struct conn *c)
{
    struct be_server *s = c->srv;
    c->tls_done = 1;
    s->st.tls_handshakes++;
    if (SSL_session_reused(c->ssl))
        s->st.tls_resumed++;
    const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
    size_t k = 0; /* shown in JSON: host name characters only */
    for (; sni && *sni && k + 1 < sizeof(s->tls_sni); sni++)
        if (isalnum((unsigned char)*sni) || strchr(".-_", *sni))
            s->tls_sni[k++] = *sni;
    s->tls_sni[k] = '\0';
}

/* A failed SSL_read/SSL_write as read/write would say it (errno). */
static ssize_t io_fail(struct conn *c, int rc, int reading)
{
    int e = SSL_get_error(c->ssl, rc);
    c->tls_wants = 0;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (reading && e == SSL_ERROR_WANT_WRITE)
            c->tls_wants = LOOP_WRITE;
        errno = EAGAIN;
        return -1;
    }
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN && reading)
        return 0;
    if (e == SSL_ERROR_SYSCALL && errno == 0 && reading)
        return 0;
    if (e != SSL_ERROR_SYSCALL || errno == 0)
        errno = EPROTO; /* not TLS, or a bad record: the connection ends */
    return -1;
}

ssize_t be_io_read(struct conn *c, void *p, size_t n)
{
    if (!c->ssl)
        return read(c->io.fd, p, n);
    size_t got;
    errno = 0;
    int rc = SSL_read_ex(c->ssl, p, n, &got);
    if (!c->tls_done && SSL_is_init_finished(c->ssl))
        handshake_done(c);
    if (rc == 1) {
        c->tls_wants = 0;
        return (ssize_t)got;
    }
    return io_fail(c, rc, 1);
}

ssize_t be_io_writev(struct conn *c, const struct iovec *iov, int n)
{
    if (!c->ssl)
        return n == 1 ? write(c->io.fd, iov[0].iov_base, iov[0].iov_len)
                      : writev(c->io.fd, iov, n);
    size_t put; /* one record's worth at a time; the caller loops */
    errno = 0;
    int rc = SSL_write_ex(c->ssl, iov[0].iov_base, iov[0].iov_len, &put);
    return rc == 1 ? (ssize_t)put : io_fail(c, rc, 0);
}

int be_tls_stats(const struct be_server *s, char *buf, size_t len)
{
    return snprintf(buf, len,
                    ",\"tls\":%s,\"tls_handshakes\":%" PRIu64
                    ",\"tls_resumed\":%" PRIu64 ",\"tls_sni\":\"%s\"",
                    s->tls ? "true" : "false", s->st.tls_handshakes,
                    s->st.tls_resumed, s->tls_sni);
}
