/*
 * tls_tickets: the keys that protect session tickets, rotated.  One set
 * for the process (not per context or configuration), so tickets stay
 * valid across SIGHUP reloads and whichever certificate SNI chose: the
 * current key encrypts new tickets; it is replaced every TICKET_ROTATE_S
 * seconds and then still decrypts for one more period, and a ticket it
 * opens is renewed under the new key.  Older tickets fall back to a full
 * handshake.  Keys are random (RAND_bytes), never written anywhere.
 */
#include "tls_impl.h"
#include "shm.h"
#include "tls.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#define TICKET_ROTATE_S 3600 /* a key encrypts for an hour, decrypts for 2 */

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t born; /* 0: unset */
};

/* [0] the current key, [1] the previous one: this process's, or with
 * --workers N the shared region's (tls_tickets_share), so that a ticket
 * one worker issued opens on every other; keys_lock then guards them */
static struct ticket_key own_keys[2];
static struct ticket_key *keys = own_keys;
static struct shm_lock *keys_lock;

static int key_new(struct ticket_key *k, time_t now)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
        RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return -1;
    k->born = now;
    return 0;
}

static int rotate(void)
{
    time_t now = time(NULL);
    if (keys[0].born && now - keys[0].born < TICKET_ROTATE_S)
        return 0;
    keys[1] = keys[0]; /* unset on the first call: born 0 never matches */
    return key_new(&keys[0], now);
}

static int set_hmac(EVP_MAC_CTX *hctx, struct ticket_key *k)
{
    static char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac,
                                          sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* OpenSSL's ticket key callback: 1 done, 2 done and renew the ticket, 0
 * unknown key (full handshake), -1 error.  A ticket that decrypts is always
 * renewed: without that, OpenSSL's TLS 1.3 server issues no ticket after a
 * resumption, and a client that uses each ticket once (RFC 8446 C.4, as
 * wrk's reconnects do) is left with a spent one, so every other
 * connection made a full handshake. */
static int on_ticket_key(SSL *ssl, unsigned char *name, unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    struct ticket_key snap[2];
    shm_lock(keys_lock);
    int rc = rotate();
    memcpy(snap, keys, sizeof(snap));
    shm_unlock(keys_lock);
    if (rc < 0)
        return -1;
    if (enc) {
        struct ticket_key *k = &snap[0];
        if (RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(name, k->name, sizeof(k->name));
        if (!EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) ||
            !set_hmac(hctx, k))
            return -1;
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        struct ticket_key *k = &snap[i];
        if (!k->born || memcmp(name, k->name, sizeof(k->name)) != 0)
            continue;
        if (time(NULL) - k->born >= 2 * TICKET_ROTATE_S)
            return 0; /* past its time: a full handshake */
        if (!set_hmac(hctx, k) ||
            !EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
            return -1;
        return 2; /* a fresh ticket on every resumption */
    }
    return 0;
}

int tls_tickets_share(void)
{
    struct ticket_key *k = shm_calloc(2, sizeof(*k));
    struct shm_lock *l = shm_lock_new();
    if (!k || !l) {
        shm_free(k);
        shm_lock_free(l);
        return -1;
    }
    memcpy(k, keys, 2 * sizeof(*k));
    keys = k;
    keys_lock = l;
    return rotate();
}

int tls_tickets_enable(SSL_CTX *ctx)
{
    shm_lock(keys_lock);
    int rc = rotate();
    shm_unlock(keys_lock);
    if (rc < 0)
        return -1;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key) ? 0 : -1;
}
