/*
 * test_tls_idle: OpenSSL's record buffers of a quiet TLS connection are
 * freed by the idle sweep (tls_idle.c) and come back when it moves again:
 * a client and a server SSL over memory BIOs (a certificate made here),
 * the sweep run through the real loop.  A record read only in part is
 * never freed (its rest is still read whole), a connection that took a
 * step since stays on the list, a forgotten one is left alone, and an SSL
 * adopted while the sweep is off keeps SSL_MODE_RELEASE_BUFFERS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "loop.h"
#include "tls_impl.h"

struct end {
    SSL *ssl;
    BIO *in, *out; /* what it reads, what it wrote */
};

static SSL_CTX *server_ctx(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)"t.test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    return ctx;
}

static void end_init(struct end *e, SSL_CTX *ctx, bool server)
{
    e->ssl = SSL_new(ctx);
    e->in = BIO_new(BIO_s_mem());
    e->out = BIO_new(BIO_s_mem());
    assert_non_null(e->ssl);
    SSL_set_bio(e->ssl, e->in, e->out);
    if (server)
        SSL_set_accept_state(e->ssl);
    else
        SSL_set_connect_state(e->ssl);
}

/* Moves what one end wrote to the other's input. */
static void pump(struct end *from, struct end *to)
{
    char b[16384];
    int n;
    while ((n = BIO_read(from->out, b, sizeof(b))) > 0)
        assert_int_equal(BIO_write(to->in, b, n), n);
}

static void handshake(struct end *c, struct end *s)
{
    for (int i = 0; i < 20; i++) {
        int rc = SSL_do_handshake(c->ssl);
        pump(c, s);
        int rs = SSL_do_handshake(s->ssl);
        pump(s, c);
        if (rc == 1 && rs == 1)
            return;
    }
    fail_msg("no handshake");
}

/* Sends n bytes from one end to the other, as one record. */
static void send_bytes(struct end *from, struct end *to, const char *p, int n)
{
    assert_int_equal(SSL_write(from->ssl, p, n), n);
    pump(from, to);
}

static void on_stop(struct loop *loop, struct loop_timer *t)
{
    (void)t;
    loop_stop(loop);
}

/* Runs the loop for ms, so a sweep due in that time runs. */
static void run_for(struct loop *loop, unsigned ms)
{
    struct loop_timer t = {.fn = on_stop};
    loop_timer_after(loop, &t, (uint64_t)ms * 1000);
    assert_int_equal(loop_run(loop), 0);
}

static void test_quiet_buffers_freed_and_back(void **state)
{
    (void)state;
    struct loop *loop = loop_create();
    assert_non_null(loop);
    tls_idle_start(loop, 5);
    SSL_CTX *sctx = server_ctx();
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    struct end s, c;
    end_init(&s, sctx, true);
    end_init(&c, cctx, false);
    struct tls_idle node = {0};
    tls_idle_adopt(&node, s.ssl);
    assert_int_equal(SSL_get_mode(s.ssl) & SSL_MODE_RELEASE_BUFFERS, 0);
    handshake(&c, &s);

    /* a record read in part: its rest is kept through a sweep */
    char msg[100], got[100];
    memset(msg, 'a', sizeof(msg));
    send_bytes(&c, &s, msg, sizeof(msg));
    tls_idle_touch(&node);
    assert_int_equal(SSL_read(s.ssl, got, 1), 1);
    uint64_t r0 = tls_idle_released();
    run_for(loop, 20);
    assert_int_equal(tls_idle_released(), r0);
    assert_false(node.linked);
    tls_idle_touch(&node);
    assert_int_equal(SSL_read(s.ssl, got, 99), 99);
    assert_memory_equal(got, msg, 99);

    /* read whole, quiet: freed; the next record is read with new ones */
    run_for(loop, 20);
    assert_int_equal(tls_idle_released(), r0 + 1);
    memset(msg, 'b', sizeof(msg));
    send_bytes(&c, &s, msg, sizeof(msg));
    tls_idle_touch(&node);
    assert_int_equal(SSL_read(s.ssl, got, 100), 100);
    assert_memory_equal(got, msg, 100);
    send_bytes(&s, &c, msg, sizeof(msg)); /* and written */
    assert_int_equal(SSL_read(c.ssl, got, 100), 100);
    assert_memory_equal(got, msg, 100);

    /* a step within the delay keeps it on the list */
    tls_idle_stop();
    tls_idle_start(loop, 1000);
    tls_idle_touch(&node);
    run_for(loop, 10);
    assert_true(node.linked);
    assert_int_equal(tls_idle_released(), r0 + 1);

    /* forgotten: off the list, never swept */
    tls_idle_forget(&node);
    assert_false(node.linked);
    tls_idle_touch(&node);
    assert_false(node.linked);
    tls_idle_stop();

    /* adopted while off: OpenSSL frees per record, as before */
    SSL *plain = SSL_new(sctx);
    struct tls_idle n2 = {0};
    tls_idle_adopt(&n2, plain);
    assert_int_not_equal(SSL_get_mode(plain) & SSL_MODE_RELEASE_BUFFERS, 0);
    assert_false(n2.linked);
    tls_idle_forget(&n2);
    SSL_free(plain);
    SSL_free(s.ssl);
    SSL_free(c.ssl);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiet_buffers_freed_and_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
