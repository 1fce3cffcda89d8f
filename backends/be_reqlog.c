/*
 * be_reqlog: one JSON line per request for lbbackend's --log-requests: the
 * time since start, the connection, and the request head (or, for a
 * request refused as malformed, the bytes received and the error).
 */
#include <inttypes.h>

#include "be_internal.h"

static void json_escape(FILE *f, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
}

void be_reqlog_write(FILE *f, uint64_t t_us, uint64_t conn, const char *error,
                     const char *head, size_t n, uint64_t body_bytes)
{
    fprintf(f, "{\"t_us\":%" PRIu64 ",\"conn\":%" PRIu64, t_us, conn);
    if (error)
        fprintf(f, ",\"error\":\"%s\",\"head\":\"", error);
    else
        fprintf(f, ",\"body_bytes\":%" PRIu64 ",\"head\":\"", body_bytes);
    json_escape(f, head, n);
    fputs("\"}\n", f);
    fflush(f);
}
