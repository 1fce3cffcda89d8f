/*
 * Unit tests of the two llhttp builds (src/llhttp_cpu.c): the SSE4.2 build
 * must parse every input exactly as the baseline build does - the same
 * callbacks with the same spans, the same result and error position - fed
 * whole, in 7-byte pieces and byte by byte, with and without a pause after
 * each head (tests/lib/llhttp_trace.c).  The inputs are the fuzz
 * corpus (requests and responses) and header values in which each byte
 * value sits at each place of a 16-byte scan window.  On a CPU without
 * SSE4.2 only the baseline runs and the comparison is skipped.
 */
#include <dirent.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llhttp_cpu.h"
#include "llhttp_trace.h"

/* Parses `data` with one build, `piece` bytes per call (0: whole). */
static struct llhttp_trace parse(llhttp_execute_fn exec, llhttp_type_t type,
                                 const char *data, size_t len, size_t piece)
{
    return llhttp_trace_parse(exec, type, data, len,
                              (struct llhttp_feed){piece, false});
}

static bool have_sse42(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

static unsigned compared;

/* Both builds, three ways of feeding, with and without a pause after
 * each head, both parser types. */
static void compare(const char *data, size_t len, const char *what)
{
    static const size_t pieces[] = {0, 7, 1};
    for (int type = HTTP_REQUEST; type <= HTTP_RESPONSE; type++) {
        for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
            if (pieces[i] == 1 && len > 65536)
                continue; /* byte by byte only for the smaller inputs */
            for (int pause = 0; pause < 2; pause++) {
                char why[256];
                struct llhttp_feed feed = {pieces[i], pause};
                if (!llhttp_trace_same(type, data, len, feed, why, sizeof(why)))
                    fail_msg("%s (%s)", what, why);
                compared++;
            }
        }
    }
}

static void compare_dir(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    unsigned files = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        compare(buf, (size_t)n, path);
        if (n > 1) /* the response harness reads its first byte as flags */
            compare(buf + 1, (size_t)n - 1, path);
        free(buf);
        files++;
    }
    closedir(d);
    assert_true(files > 10); /* the corpus is there */
}

static void test_fuzz_corpus_same(void **state)
{
    (void)state;
    if (!have_sse42())
        skip();
    compared = 0;
    compare_dir("tests/fuzz/corpus/fuzz_request");
    compare_dir("tests/fuzz/corpus/fuzz_response");
    assert_true(compared > 500);
}

/* A 40-byte header value with byte `c` at `at`, in a request and in a
 * response: the SSE4.2 scan looks at 16 bytes at once, so every byte value
 * at every place of that window (and across two windows) must end or
 * continue the value as the byte loop does. */
static void test_value_bytes_same(void **state)
{
    (void)state;
    if (!have_sse42())
        skip();
    static const char *starts[] = {"GET / HTTP/1.1\r\nHost: a\r\nX-V: ",
                                   "HTTP/1.1 200 OK\r\nX-V: "};
    for (size_t s = 0; s < 2; s++) {
        for (unsigned at = 0; at < 40; at++) {
            for (unsigned c = 0; c < 256; c++) {
                char msg[160];
                size_t n = strlen(starts[s]);
                memcpy(msg, starts[s], n);
                memset(msg + n, 'v', 40);
                msg[n + at] = (char)c;
                n += 40;
                memcpy(msg + n, "\r\nContent-Length: 0\r\n\r\n", 23);
                n += 23;
                char what[64];
                snprintf(what, sizeof(what), "value byte 0x%02x at %u", c, at);
                compare(msg, n, what);
            }
        }
    }
}

/* The entry point api.c calls gives what the chosen build gives. */
static void test_dispatch(void **state)
{
    (void)state;
    static const char req[] =
        "GET /a HTTP/1.1\r\nHost: example.test\r\n"
        "User-Agent: a-longer-value-than-16-bytes\r\n\r\n";
    struct llhttp_trace a =
        parse(llhttp__internal_execute, HTTP_REQUEST, req, sizeof(req) - 1, 0);
    struct llhttp_trace b = parse(llhttp__internal_execute_base, HTTP_REQUEST,
                                  req, sizeof(req) - 1, 0);
    assert_int_equal(a.err, HPE_OK);
    assert_true(a.hash == b.hash && a.events == b.events);
    assert_true(a.events > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_corpus_same),
        cmocka_unit_test(test_value_bytes_same),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
