/*
 * be_sha1: the WebSocket handshake's SHA-1 and base64 (see be_sha1.h),
 * from OpenSSL's libcrypto, which lbproxy links for TLS already.
 */
#include "be_sha1.h"

#include <openssl/evp.h>

void be_sha1(const void *p, size_t n, uint8_t out[BE_SHA1_LEN])
{
    unsigned int len = BE_SHA1_LEN;
    if (EVP_Digest(p, n, out, &len, EVP_sha1(), NULL) != 1 ||
        len != BE_SHA1_LEN) {
        for (unsigned i = 0; i < BE_SHA1_LEN; i++)
            out[i] = 0; /* cannot happen with a working libcrypto */
    }
}

size_t be_base64(const uint8_t *p, size_t n, char *out)
{
    /* EVP_EncodeBlock pads with '=' and writes the NUL */
    return (size_t)EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}
