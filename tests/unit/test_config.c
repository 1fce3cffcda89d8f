/*
 * Unit tests of the config module: defaults, the INI file with file:line
 * errors, the command line over the file, validation, printing.
 *
 * Run from the repository root (make unit does): a few tests read the
 * shipped config/lbproxy.ini and docs/configuration.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config.c"
#include "config_types.c"
#include "config_cli.c"

/* ---- helpers ----------------------------------------------------------- */

static char tmp_paths[16][256];
static int ntmp;

/* Writes text into a new temporary file; returns its path (removed at the
 * end of each test by remove_tmp). */
static const char *write_tmp(const char *text)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    assert_true(ntmp < 16);
    char *p = tmp_paths[ntmp++];
    snprintf(p, 256, "%s/lbproxy-test-config-XXXXXX", dir);
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return p;
}

static int remove_tmp(void **state)
{
    (void)state;
    for (int i = 0; i < ntmp; i++)
        unlink(tmp_paths[i]);
    ntmp = 0;
    config_stdout = NULL;
    return 0;
}

/* Calls config_from_args with a NULL-terminated list of arguments. */
static int run_args(struct config *c, char *err, size_t errlen, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    argv[argc++] = (char *)"lbproxy";
    va_start(ap, errlen);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL) {
        assert_true(argc < 63);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    return config_from_args(c, argc, argv, err, errlen);
}
#define RUN(c, err, ...) run_args(c, err, sizeof(err), __VA_ARGS__, NULL)

/* Asserts that s contains sub, printing both when it does not. */
#define assert_contains(s, sub)                                                \
    do {                                                                       \
        if (strstr((s), (sub)) == NULL) {                                      \
            print_error("'%s' does not contain '%s'\n", (s), (sub));           \
            fail();                                                            \
        }                                                                      \
    } while (0)

/* Captures what config_from_args prints on stdout. */
static FILE *capture_start(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    config_stdout = f;
    return f;
}

static char *capture_end(FILE *f, char *buf, size_t len)
{
    config_stdout = NULL;
    rewind(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char full_ini[] =
    "; every section\n"
    "[proxy]\n"
    "listen = 127.0.0.1:7000\n"
    "admin = off\n"
    "mode = least_conn\n"
    "persistent = no\n"
    "log = /var/tmp/x.csv\n"
    "log_flush_ms = 250\n"
    "dashboard_dir = dash\n"
    "logs_dir = lg\n"
    "verbosity = 2\n"
    "\n"
    "[timeouts]\n"
    "client_header_ms = 11\n"
    "client_body_ms = 12\n"
    "keepalive_ms = 13\n"
    "client_write_ms = 14\n"
    "upstream_connect_ms = 15\n"
    "upstream_ms = 16\n"
    "drain_ms = 17\n"
    "[limits]\n"
    "max_head_bytes = 8192\n"
    "max_headers = 50\n"
    "max_body_bytes = 2g\n"
    "max_clients = 99\n"
    "buffer_bytes = 64k\n"
    "max_retries = 0\n"
    "[pool]\n"
    "max_idle = 0\n"
    "idle_timeout_ms = 1234\n"
    "[balancer]\n"
    "sma_window = 7\n"
    "ewma_alpha = 0.125\n"
    "ewma_decay_ms = 500\n"
    "load_aware = off\n"
    "ewma_score = latency_x_inflight\n"
    "probe_interval_ms = 0\n"
    "penalty_ms = 900\n"
    "peak_tau_ms = 3000\n"
    "seed = 18446744073709551615\n"
    "hash_key = Cookie:sid\n"
    "hash_balance_factor = 1.5\n"
    "[health]\n"
    "check_path = /health\n"
    "check_interval_ms = 500\n"
    "max_fails = 0\n"
    "fail_timeout_ms = 100\n"
    "max_eject_ms = 200\n"
    "[backends]\n"
    "fast = 127.0.0.1:8081\n"
    "slow = [::1]:8082, weight=3\n"
    "  third = localhost:08083 ,weight = 10 ; comment\n";

/* ---- defaults ---------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:9090");
    assert_string_equal(c.admin, "127.0.0.1:5002");
    assert_string_equal(c.mode, "round-robin");
    assert_true(c.persistent);
    assert_string_equal(c.log_path, "");
    assert_string_equal(c.dashboard_dir, "dashboard");
    assert_string_equal(c.logs_dir, "logs");
    assert_int_equal(c.nbackends, 0);
    assert_int_equal(c.client_header_timeout_ms, 10000);
    assert_int_equal(c.client_body_timeout_ms, 30000);
    assert_int_equal(c.keepalive_timeout_ms, 60000);
    assert_int_equal(c.client_write_timeout_ms, 60000);
    assert_int_equal(c.upstream_connect_timeout_ms, 2000);
    assert_int_equal(c.upstream_timeout_ms, 30000);
    assert_int_equal(c.pool_idle_timeout_ms, 60000);
    assert_int_equal(c.drain_timeout_ms, 10000);
    assert_int_equal(c.max_head_bytes, 16384);
    assert_int_equal(c.max_headers, 100);
    assert_true(c.max_body_bytes == 104857600ull);
    assert_int_equal(c.max_clients, 10000);
    assert_int_equal(c.buffer_bytes, 16384);
    assert_int_equal(c.max_retries, 2);
    assert_int_equal(c.pool_max_idle, 256);
    assert_string_equal(c.health_check_path, "");
    assert_int_equal(c.health_check_interval_ms, 2000);
    assert_int_equal(c.log_flush_ms, 1000);
    assert_int_equal(c.verbosity, 1);
    assert_string_equal(c.config_file, "");
    assert_int_equal(c.balancer.sma_window, 20);
    assert_true(c.balancer.ewma_alpha == 0.3);
    assert_int_equal(c.balancer.ewma_decay_ms, 0);
    assert_true(c.balancer.load_aware);
    assert_int_equal(c.balancer.ewma_score, -1);
    assert_int_equal(c.balancer.probe_interval_ms, 1000);
    assert_int_equal(c.balancer.penalty_ms, 5000);
    assert_int_equal(c.balancer.peak_tau_ms, 10000);
    assert_int_equal(c.balancer.max_fails, 3);
    assert_int_equal(c.balancer.fail_timeout_ms, 2000);
    assert_int_equal(c.balancer.max_eject_ms, 30000);
    assert_true(c.balancer.seed == 1);

    /* No backends in the code defaults: not runnable as is. */
    assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
    assert_contains(err, "no backends");
    /* Every default is inside its own table range. */
    strcpy(c.backends[0].id, "A");
    strcpy(c.backends[0].host, "127.0.0.1");
    strcpy(c.backends[0].port, "8081");
    c.backends[0].weight = 1;
    c.nbackends = 1;
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
}

/* ---- INI file ---------------------------------------------------------- */

static void test_load_every_section(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    const char *path = write_tmp(full_ini);
    int rc = config_load_file(&c, path, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.config_file, path);
    assert_string_equal(c.listen, "127.0.0.1:7000");
    assert_string_equal(c.admin, "off");
    assert_string_equal(c.mode, "least-conn"); /* stored canonical */
    assert_false(c.persistent);
    assert_string_equal(c.log_path, "/var/tmp/x.csv");
    assert_int_equal(c.log_flush_ms, 250);
    assert_string_equal(c.dashboard_dir, "dash");
    assert_string_equal(c.logs_dir, "lg");
    assert_int_equal(c.verbosity, 2);
    assert_int_equal(c.client_header_timeout_ms, 11);
    assert_int_equal(c.client_body_timeout_ms, 12);
    assert_int_equal(c.keepalive_timeout_ms, 13);
    assert_int_equal(c.client_write_timeout_ms, 14);
    assert_int_equal(c.upstream_connect_timeout_ms, 15);
    assert_int_equal(c.upstream_timeout_ms, 16);
    assert_int_equal(c.drain_timeout_ms, 17);
    assert_int_equal(c.max_head_bytes, 8192);
    assert_int_equal(c.max_headers, 50);
    assert_true(c.max_body_bytes == 2ull << 30);
    assert_int_equal(c.max_clients, 99);
    assert_int_equal(c.buffer_bytes, 65536);
    assert_int_equal(c.max_retries, 0);
    assert_int_equal(c.pool_max_idle, 0);
    assert_int_equal(c.pool_idle_timeout_ms, 1234);
    assert_int_equal(c.balancer.sma_window, 7);
    assert_true(c.balancer.ewma_alpha == 0.125);
    assert_int_equal(c.balancer.ewma_decay_ms, 500);
    assert_false(c.balancer.load_aware);
    assert_int_equal(c.balancer.ewma_score, BALANCER_SCORE_LATENCY_X_INFLIGHT);
    assert_int_equal(c.balancer.probe_interval_ms, 0);
    assert_int_equal(c.balancer.penalty_ms, 900);
    assert_int_equal(c.balancer.peak_tau_ms, 3000);
    assert_true(c.balancer.seed == UINT64_MAX);
    assert_int_equal(c.hash_key.kind, HASHKEY_COOKIE);
    assert_string_equal(c.hash_key.name, "sid");
    assert_true(c.balancer.hash_balance_factor == 1.5);
    assert_string_equal(c.health_check_path, "/health");
    assert_int_equal(c.health_check_interval_ms, 500);
    assert_int_equal(c.balancer.max_fails, 0);
    assert_int_equal(c.balancer.fail_timeout_ms, 100);
    assert_int_equal(c.balancer.max_eject_ms, 200);

    assert_int_equal(c.nbackends, 3);
    assert_string_equal(c.backends[0].id, "fast");
    assert_string_equal(c.backends[0].host, "127.0.0.1");
    assert_string_equal(c.backends[0].port, "8081");
    assert_int_equal(c.backends[0].weight, 1);
    assert_string_equal(c.backends[1].id, "slow");
    assert_string_equal(c.backends[1].host, "::1");
    assert_string_equal(c.backends[1].port, "8082");
    assert_int_equal(c.backends[1].weight, 3);
    /* indented key, localhost, leading zero, blanks around '=' and ',' */
    assert_string_equal(c.backends[2].id, "third");
    assert_string_equal(c.backends[2].host, "127.0.0.1");
    assert_string_equal(c.backends[2].port, "8083");
    assert_int_equal(c.backends[2].weight, 10);
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
}

static void test_load_lenient_spellings(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    const char *path = write_tmp("# hash comment\n"
                                 "[PROXY]\n"
                                 "  Mode = P2C   ; alias, any case\n"
                                 "connection = non-persistent\n"
                                 "[balancer]\n"
                                 "ewma_score = Predicted\n"
                                 "load_aware = YES\n"
                                 "[backends]\n"
                                 "x = 10.0.0.1:80\n");
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.mode, "p2c-peak-ewma");
    assert_false(c.persistent);
    assert_int_equal(c.balancer.ewma_score, BALANCER_SCORE_PREDICTED);
    assert_true(c.balancer.load_aware);

    const char *modes[][2] = {
        {"rr", "round-robin"},
        {"round_robin", "round-robin"},
        {"Round-Robin", "round-robin"},
        {"adaptive-sma", "adaptive_sma"},
        {"adaptive_ewma", "adaptive_ewma"},
        {"least-conn", "least-conn"},
        {"p2c_peak_ewma", "p2c-peak-ewma"},
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "[proxy]\nmode = %s\n", modes[i][0]);
        path = write_tmp(text);
        assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
        assert_string_equal(c.mode, modes[i][1]);
    }
    const char *models[][2] = {{"persistent", "1"},
                               {"non_persistent", "0"},
                               {"on", "1"},
                               {"false", "0"}};
    for (size_t i = 0; i < 4; i++) {
        char text[128];
        snprintf(text, sizeof(text), "[proxy]\npersistent = %s\n",
                 models[i][0]);
        path = write_tmp(text);
        assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
        assert_int_equal(c.persistent, models[i][1][0] == '1');
    }
}

/* A file's [backends] replaces the list; without one the list stays. */
static void test_load_backends_replace(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    const char *a = write_tmp("[backends]\nA = 127.0.0.1:1\nB = 127.0.0.1:2\n");
    const char *b = write_tmp("[backends]\nZ = 127.0.0.1:3\n");
    const char *none = write_tmp("[proxy]\nmode = rr\n");
    assert_int_equal(config_load_file(&c, a, err, sizeof(err)), 0);
    assert_int_equal(c.nbackends, 2);
    assert_int_equal(config_load_file(&c, none, err, sizeof(err)), 0);
    assert_int_equal(c.nbackends, 2);
    assert_int_equal(config_load_file(&c, b, err, sizeof(err)), 0);
    assert_int_equal(c.nbackends, 1);
    assert_string_equal(c.backends[0].id, "Z");
}

/* [tls]: cert/key pairs in order, printed back as a [tls] section that
 * loads to the same bytes; the cross-field rules. */
static void test_load_tls_pairs(void **state)
{
    (void)state;
    struct config c, d;
    char err[512], out[8192];
    config_defaults(&c);
    const char *a = write_tmp("[tls]\nlisten = 127.0.0.1:9443\n"
                              "cert = a.pem\nkey = a.key\n"
                              "cert = b.pem\nkey = b.key\n"
                              "min_version = TLS1.3\nresumption = no\n"
                              "[backends]\nA = 127.0.0.1:1\n");
    assert_int_equal(config_load_file(&c, a, err, sizeof(err)), 0);
    assert_int_equal(c.ntls_certs, 2);
    assert_string_equal(c.tls_certs[1].cert, "b.pem");
    assert_string_equal(c.tls_certs[1].key, "b.key");
    assert_false(c.tls_resumption);
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    FILE *f = tmpfile();
    config_print(&c, f);
    capture_end(f, out, sizeof(out));
    assert_contains(out, "cert = a.pem\nkey = a.key\ncert = b.pem\n");
    config_defaults(&d);
    assert_int_equal(config_load_file(&d, write_tmp(out), err, sizeof(err)), 0);
    memcpy(d.config_file, c.config_file, sizeof(c.config_file));
    assert_memory_equal(&c, &d, sizeof(c));
    /* a listener needs a certificate; an unknown version is refused */
    c.ntls_certs = 0;
    assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
    assert_contains(err, "needs a certificate");
    c.ntls_certs = 2;
    strcpy(c.tls_min_version, "TLS1.1");
    assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
    assert_contains(err, "min_version");
}

struct bad_case {
    const char *text;  /* file contents */
    const char *where; /* "FILE" is replaced by the path: "FILE:3:" */
    const char *also;  /* another substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"[proxy]\nlisten = 127.0.0.1:0\n", ":2: [proxy] listen: expected",
     "got '127.0.0.1:0'"},
    {"[proxy]\nlisten = 127.0.0.1:70000\n", ":2: [proxy] listen", "65535"},
    {"[proxy]\nlisten = 127.0.0.1\n", ":2: [proxy] listen", "ADDR:PORT"},
    {"[proxy]\nlisten = example.com:80\n", ":2: [proxy] listen", "ADDR:PORT"},
    {"[proxy]\nlisten = [::1:80\n", ":2: [proxy] listen", "ADDR:PORT"},
    {"[proxy]\nadmin = 300.1.1.1:80\n", ":2: [proxy] admin", "or off"},
    {"\n[timeouts]\nupstream_ms = -5\n", ":3: [timeouts] upstream_ms",
     "got '-5'"},
    {"[timeouts]\nupstream_ms = 0\n", ":2: [timeouts] upstream_ms",
     "an integer in 1..86400000"},
    {"[timeouts]\ndrain_ms = ten\n", ":2: [timeouts] drain_ms", "got 'ten'"},
    {"[timeouts]\ndrain_ms = 10ms\n", ":2: [timeouts] drain_ms", "10ms"},
    {"[timeouts]\ndrain_ms = 99999999999999999999999\n",
     ":2: [timeouts] drain_ms", "integer"},
    {"[timeouts]\ndrain_ms =\n", ":2: [timeouts] drain_ms", "got ''"},
    {"[limits]\nmax_head_bytes = 100\n", ":2: [limits] max_head_bytes",
     "1024..1048576"},
    {"[limits]\nbuffer_bytes = 16q\n", ":2: [limits] buffer_bytes", "suffix"},
    {"[limits]\nmax_body_bytes = 99999999999g\n", ":2: [limits] max_body_bytes",
     "integer"},
    {"[balancer]\newma_alpha = 1.5\n", ":2: [balancer] ewma_alpha",
     "at most 1"},
    {"[balancer]\newma_alpha = 0\n", ":2: [balancer] ewma_alpha",
     "greater than 0"},
    {"[balancer]\newma_alpha = nan\n", ":2: [balancer] ewma_alpha", "nan"},
    {"[balancer]\newma_alpha = 0.3x\n", ":2: [balancer] ewma_alpha", "0.3x"},
    {"[balancer]\nload_aware = maybe\n", ":2: [balancer] load_aware",
     "boolean"},
    {"[balancer]\newma_score = fastest\n", ":2: [balancer] ewma_score",
     "latency_x_inflight"},
    {"[balancer]\nseed = -1\n", ":2: [balancer] seed", "integer"},
    {"[balancer]\nhash_key = header:\n", ":2: [balancer] hash_key",
     "header:NAME"},
    {"[balancer]\nhash_key = source\n", ":2: [balancer] hash_key",
     "got 'source'"},
    {"[balancer]\nhash_balance_factor = 0.9\n",
     ":2: [balancer] hash_balance_factor", "0 (off) or a number from 1"},
    {"[balancer]\nhash_balance_factor = -1\n",
     ":2: [balancer] hash_balance_factor", "got '-1'"},
    {"[proxy]\nmode = fastest\n", ":2: [proxy] mode",
     "expected one of round-robin"},
    {"[proxy]\npersistent = sometimes\n", ":2: [proxy] persistent",
     "non-persistent"},
    {"[proxy]\nfoo = 1\n", ":2: [proxy] foo: unknown key", ""},
    {"[proxy]\nmode = rr\n[prxy]\nmode = rr\n", ":3: unknown section [prxy]",
     "known: proxy"},
    {"[empty]\n", ":1: unknown section [empty]", ""},
    {"mode = rr\n", ":1: mode: key outside", ""},
    {"[proxy]\nthis line has no equals sign\n", ":2: syntax error", ""},
    {"[proxy\n", ":1: syntax error", ""},
    {"[tls]\nkey = a.key\n", ":2: [tls] key: expected a key after its cert",
     ""},
    {"[tls]\ncert = a.pem\ncert = b.pem\n", ":3: [tls] cert: expected",
     "the key of the cert before (a.pem)"},
    {"[tls]\ncert =\n", ":2: [tls] cert: expected a file name", ""},
    {"[tls]\nlisten = nowhere\n", ":2: [tls] listen", "or off"},
    {"[backends]\nA = 127.0.0.1:8081\nA = 127.0.0.1:8082\n",
     ":3: [backends] A: duplicate", ""},
    {"[backends]\nA = 127.0.0.1:0\n", ":2: [backends] A: expected",
     "got '127.0.0.1:0'"},
    {"[backends]\nA = 127.0.0.1:80, weight=0\n", ":2: [backends] A",
     "weight=N"},
    {"[backends]\nA = 127.0.0.1:80, weight=x\n", ":2: [backends] A",
     "weight=N"},
    {"[backends]\nA = 127.0.0.1:80, colour=red\n", ":2: [backends] A",
     "ADDR:PORT|unix:PATH[, weight=N]"},
    {"[backends]\nA = 127.0.0.1:80, id=B\n", ":2: [backends] A",
     "ADDR:PORT|unix:PATH[, weight=N]"},
    {"[backends]\na/b = 127.0.0.1:80\n", ":2: [backends] a/b",
     "expected an id"},
    {"[proxy]\ndashboard_dir = "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "\n",
     ":2: line longer than", ""},
    {"[health]\ncheck_path = "
     "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     ":2: [health] check_path: expected at most 127 characters", ""},
    /* The first error wins, even when a later one is a syntax error. */
    {"[proxy]\nmode = bad\nnot a pair\n", ":2: [proxy] mode", ""},
    {"[proxy]\nmode = bad\nlisten = bad\n", ":2: [proxy] mode", ""},
    {"[proxy]\nnot a pair\nmode = bad\n", ":2: syntax error", ""},
};

static void test_load_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct config c, before;
        char err[512] = "", want[512];
        config_defaults(&c);
        const char *path = write_tmp(bc->text);
        before = c;
        int rc = config_load_file(&c, path, err, sizeof(err));
        if (rc != -1)
            print_error("case %zu: accepted:\n%s", i, bc->text);
        assert_int_equal(rc, -1);
        snprintf(want, sizeof(want), "%s%s", path, bc->where);
        if (strncmp(err, want, strlen(want)) != 0)
            print_error("case %zu: '%s' does not start with '%s'\n", i, err,
                        want);
        assert_true(strncmp(err, want, strlen(want)) == 0);
        assert_contains(err, bc->also);
        /* a failed load changes nothing (matters for reload) */
        assert_memory_equal(&c, &before, sizeof(c));
        unlink(path);
        ntmp--;
    }
}

static void test_load_missing_file(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "no/such/file.ini", err, sizeof(err)),
                     -1);
    assert_contains(err, "no/such/file.ini");
    assert_contains(err, "No such file");
}

static void test_shipped_ini(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    int rc = config_load_file(&c, CONFIG_DEFAULT_FILE, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    assert_string_equal(c.mode, "adaptive_ewma");
    assert_true(c.persistent);
    assert_int_equal(c.nbackends, 3);
    const char *ids[] = {"A", "B", "C"}, *ports[] = {"8081", "8082", "8083"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(c.backends[i].id, ids[i]);
        assert_string_equal(c.backends[i].host, "127.0.0.1");
        assert_string_equal(c.backends[i].port, ports[i]);
    }
    /* Everything else in the shipped file is the code default. */
    struct config d;
    config_defaults(&d);
    strcpy(d.mode, c.mode);
    memcpy(d.backends, c.backends, sizeof(d.backends));
    d.nbackends = c.nbackends;
    strcpy(d.config_file, c.config_file);
    assert_memory_equal(&c, &d, sizeof(c));
}

/* ---- command line ------------------------------------------------------ */

static void test_args_flags_override_file(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    const char *path = write_tmp(full_ini);
    int rc = RUN(&c, err, "--config", path, "--mode", "adaptive_sma",
                 "--persistent", "--listen", "127.0.0.1:9999", "--admin",
                 "127.0.0.1:9998", "--log", "off", "--seed", "42", "-v");
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.config_file, path);
    assert_string_equal(c.mode, "adaptive_sma");
    assert_true(c.persistent);
    assert_string_equal(c.listen, "127.0.0.1:9999");
    assert_string_equal(c.admin, "127.0.0.1:9998");
    assert_string_equal(c.log_path, "off");
    assert_true(c.balancer.seed == 42);
    assert_int_equal(c.verbosity, 3); /* 2 from the file, +1 */
    /* untouched keys keep the file's value */
    assert_int_equal(c.upstream_timeout_ms, 16);
    assert_int_equal(c.nbackends, 3);

    /* the last of two flags wins; --non-persistent after --persistent */
    rc = RUN(&c, err, "--config", path, "--persistent", "--non-persistent",
             "--mode", "rr", "--mode", "least-conn");
    assert_int_equal(rc, 0);
    assert_false(c.persistent);
    assert_string_equal(c.mode, "least-conn");
}

static void test_args_equals_form(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    int rc = RUN(&c, err, "--config=/dev/null", "--mode=adaptive_ewma",
                 "--backend=127.0.0.1:81,weight=2", "--listen=[::1]:9000",
                 "--set=timeouts.upstream_ms=77", "--admin=off", "--seed=7",
                 "--log=x.csv");
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.config_file, "/dev/null");
    assert_string_equal(c.mode, "adaptive_ewma");
    assert_int_equal(c.backends[0].weight, 2);
    assert_string_equal(c.listen, "[::1]:9000");
    assert_int_equal(c.upstream_timeout_ms, 77);
    assert_string_equal(c.admin, "off");
    assert_true(c.balancer.seed == 7);
    assert_string_equal(c.log_path, "x.csv");
}

static void test_args_backends(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    const char *path = write_tmp(full_ini);
    /* the first --backend replaces the file's three; ids by position */
    int rc =
        RUN(&c, err, "--config", path, "--backend", "127.0.0.1:9001",
            "--backend", "127.0.0.1:9002,weight=5", "--backend",
            "127.0.0.1:9003, id=fast , weight=2", "--backend", "[::1]:9004");
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(c.nbackends, 4);
    assert_string_equal(c.backends[0].id, "A");
    assert_string_equal(c.backends[0].port, "9001");
    assert_int_equal(c.backends[0].weight, 1);
    assert_string_equal(c.backends[1].id, "B");
    assert_int_equal(c.backends[1].weight, 5);
    assert_string_equal(c.backends[2].id, "fast");
    assert_int_equal(c.backends[2].weight, 2);
    assert_string_equal(c.backends[3].id, "D");
    assert_string_equal(c.backends[3].host, "::1");

    /* Unix-socket backends, beside TCP ones; --print-config reads back */
    rc = RUN(&c, err, "--config", "/dev/null", "--backend",
             "unix:/run/app.sock, weight=3,id=sock", "--backend",
             "127.0.0.1:9001");
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.backends[0].unix_path, "/run/app.sock");
    assert_string_equal(c.backends[0].host, "");
    assert_int_equal(c.backends[0].weight, 3);
    assert_string_equal(c.backends[1].unix_path, "");
    char addr[128];
    assert_int_equal(config_backend_addr(&c.backends[0], addr, sizeof(addr)),
                     0);
    assert_string_equal(addr, "unix:/run/app.sock");
    assert_int_equal(config_backend_addr(&c.backends[1], addr, sizeof(addr)),
                     0);
    assert_string_equal(addr, "127.0.0.1:9001");
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    const char *upath = write_tmp("[backends]\nU = unix:/tmp/u.sock, "
                                  "weight=2\n[proxy]\nsend_proxy = v2\n");
    rc = RUN(&c, err, "--config", upath);
    assert_int_equal(rc, 0);
    assert_string_equal(c.backends[0].unix_path, "/tmp/u.sock");
    assert_int_equal(c.send_proxy, CONFIG_SEND_PROXY_V2);
    rc = RUN(&c, err, "--config", "/dev/null", "--backend", "127.0.0.1:1",
             "--send-proxy", "v3");
    assert_int_equal(rc, -1);
    assert_contains(err, "one of off, v1, v2");

    /* explicit ids clashing with positional ones */
    rc = RUN(&c, err, "--config", "/dev/null", "--backend", "127.0.0.1:1,id=B",
             "--backend", "127.0.0.1:2");
    assert_int_equal(rc, -1);
    assert_contains(err, "--backend");
    assert_contains(err, "duplicate backend id 'B'");

    const char *bad[][2] = {
        {"127.0.0.1", "ADDR:PORT"},
        {"127.0.0.1:0", "ADDR:PORT"},
        {"127.0.0.1:65536", "ADDR:PORT"},
        {"127.0.0.1:80,weight=0", "weight=N"},
        {"127.0.0.1:80,weight=10001", "weight=N"},
        {"127.0.0.1:80,weight=", "weight=N"},
        {"127.0.0.1:80,id=", "id=NAME"},
        {"127.0.0.1:80,id=a b", "id=NAME"},
        {"127.0.0.1:80,id=0123456789012345678901234567890123", "id=NAME"},
        {"127.0.0.1:80,speed=9", "[, id=NAME]"},
        {"unix:", "unix:PATH"},
        {"unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
         "1..107 bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = RUN(&c, err, "--config", "/dev/null", "--backend",
                 (char *)bad[i][0]);
        assert_int_equal(rc, -1);
        assert_contains(err, "--backend: expected");
        assert_contains(err, bad[i][1]);
        assert_contains(err, bad[i][0]);
    }

    /* 26 and more backends get two-letter ids; 65 are too many */
    char *argv[2 + 2 * 65];
    char addrs[65][32];
    int argc = 0;
    argv[argc++] = (char *)"lbproxy";
    argv[argc++] = (char *)"--config=/dev/null";
    for (int i = 0; i < 65; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "--backend=127.0.0.1:%d",
                 10000 + i);
        argv[argc++] = addrs[i];
    }
    rc = config_from_args(&c, 2 + 64, argv, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(c.nbackends, 64);
    assert_string_equal(c.backends[25].id, "Z");
    assert_string_equal(c.backends[26].id, "AA");
    assert_string_equal(c.backends[63].id, "BL");
    rc = config_from_args(&c, 2 + 65, argv, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_contains(err, "more than 64 backends");
}

static void test_args_set(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    const char *path = write_tmp(full_ini);
    int rc = RUN(&c, err, "--config", path, "--set", "limits.max_headers=7",
                 "--set", "balancer.ewma_alpha = 1", "--set",
                 "health.check_path=", "--set", "backends.fast=127.0.0.1:1",
                 "--set", "backends.new=127.0.0.1:2,weight=4", "--set",
                 "proxy.mode=p2c", "--set", "Balancer.Load_Aware=false");
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(c.max_headers, 7);
    assert_true(c.balancer.ewma_alpha == 1.0);
    assert_string_equal(c.health_check_path, "");
    assert_int_equal(c.nbackends, 4); /* fast replaced in place, new added */
    assert_string_equal(c.backends[0].id, "fast");
    assert_string_equal(c.backends[0].port, "1");
    assert_string_equal(c.backends[3].id, "new");
    assert_int_equal(c.backends[3].weight, 4);
    assert_string_equal(c.mode, "p2c-peak-ewma");
    assert_false(c.balancer.load_aware);

    struct {
        const char *arg, *want;
    } bad[] = {
        {"limits.max_headers", "expected SECTION.KEY=VALUE"},
        {"max_headers=5", "expected SECTION.KEY=VALUE"},
        {"limits.nope=5", "unknown key [limits] nope"},
        {"nope.x=5", "unknown section [nope]"},
        {"limits.max_headers=0", "[limits] max_headers: expected an integer"},
        {"balancer.ewma_alpha=2", "[balancer] ewma_alpha: expected"},
        {"backends.A=nowhere", "[backends] A: expected ADDR:PORT"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = RUN(&c, err, "--config", path, "--set", (char *)bad[i].arg);
        assert_int_equal(rc, -1);
        assert_contains(err, "--set");
        assert_contains(err, bad[i].want);
    }
}

/* Every key of the table can be set from the command line. */
static void test_args_set_every_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        struct config c, d;
        char err[512], arg[600], printed[256];
        config_defaults(&d);
        /* print the default value through config_print's formatting */
        FILE *f = tmpfile();
        config_print(&d, f);
        rewind(f);
        char line[512];
        const char *value = NULL;
        char section[32] = "";
        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\n")] = '\0';
            if (line[0] == '[')
                sscanf(line, "[%31[^]]]", section);
            size_t kl = strlen(k->key);
            if (strcmp(section, k->section) == 0 &&
                strncmp(line, k->key, kl) == 0 &&
                strncmp(line + kl, " = ", 3) == 0) {
                snprintf(printed, sizeof(printed), "%s", line + kl + 3);
                value = printed;
            }
        }
        fclose(f);
        if (k->flags & CF_ALIAS) {
            assert_null(value);
            value = "persistent";
        }
        assert_non_null(value);
        snprintf(arg, sizeof(arg), "%s.%s=%s", k->section, k->key, value);
        int rc = RUN(&c, err, "--config", "/dev/null", "--backend",
                     "127.0.0.1:1", "--set", arg);
        if (rc != 0)
            print_error("--set %s: %s\n", arg, err);
        assert_int_equal(rc, 0);
    }
}

static void test_args_help_version(void **state)
{
    (void)state;
    struct config c;
    char err[512], out[8192];
    FILE *f = capture_start();
    assert_int_equal(RUN(&c, err, "--help"), 1);
    capture_end(f, out, sizeof(out));
    assert_contains(out, "usage: lbproxy");
    for (size_t i = 0; i < CLI_NOPTIONS; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", cli_options[i].name);
        assert_contains(out, flag);
    }

    f = capture_start();
    /* -h wins over a bad flag */
    assert_int_equal(RUN(&c, err, "--bogus", "-h"), 1);
    capture_end(f, out, sizeof(out));
    assert_contains(out, "usage: lbproxy");

    f = capture_start();
    assert_int_equal(RUN(&c, err, "--version"), 1);
    capture_end(f, out, sizeof(out));
    assert_string_equal(out, "lbproxy " LBPROXY_VERSION "\n");
}

static void test_args_check_and_print(void **state)
{
    (void)state;
    struct config c;
    char err[512], out[8192];
    const char *path = write_tmp(full_ini);
    FILE *f = capture_start();
    assert_int_equal(RUN(&c, err, "--config", path, "--check"), 1);
    capture_end(f, out, sizeof(out));
    assert_contains(out, "[proxy]\nlisten = 127.0.0.1:7000\n");
    assert_contains(out, "; configuration OK\n");

    /* --check with an invalid configuration is an error, not a print */
    f = capture_start();
    assert_int_equal(RUN(&c, err, "--config", "/dev/null", "--check"), -1);
    capture_end(f, out, sizeof(out));
    assert_string_equal(out, "");
    assert_contains(err, "no backends");

    /* --print-config prints and runs */
    f = capture_start();
    assert_int_equal(RUN(&c, err, "--config", path, "--print-config"), 0);
    capture_end(f, out, sizeof(out));
    assert_contains(out, "[backends]\nfast = 127.0.0.1:8081\n");
    assert_contains(out, "slow = [::1]:8082, weight=3\n");
}

static void test_args_errors(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--mode", "fastest", "--mode: expected one of round-robin"},
        {"--mode", NULL, "--mode: expected a value (NAME)"},
        {"--listen", "127.0.0.1:0", "--listen: expected ADDR:PORT"},
        {"--listen", "localhost", "got 'localhost'"},
        {"--admin", "nowhere", "--admin: expected ADDR:PORT"},
        {"--seed", "-3", "--seed: expected an integer"},
        {"--seed", "x", "got 'x'"},
        {"--backend", NULL, "--backend: expected a value (ADDR:PORT"},
        {"--set", NULL, "--set: expected a value (SECTION.KEY=VALUE)"},
        {"--persistent=yes", NULL, "--persistent: takes no value"},
        {"--help=me", NULL, "--help (-h): takes no value"},
        {"--frobnicate", NULL, "unknown or ambiguous option '--frobnicate'"},
        {"--p", NULL, "unknown or ambiguous option '--p'"},
        {"-x", NULL, "unknown option '-x'"},
        {"stray", NULL, "unexpected argument 'stray'"},
        {"--config", "no/such.ini", "no/such.ini: cannot open"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        if (strcmp(cases[i].a, "--config") == 0)
            rc = RUN(&c, err, "--config", (char *)cases[i].b);
        else
            rc = RUN(&c, err, "--config", "/dev/null", "--backend",
                     "127.0.0.1:1", (char *)cases[i].a, (char *)cases[i].b);
        if (rc != -1)
            print_error("case %zu accepted\n", i);
        assert_int_equal(rc, -1);
        assert_contains(err, cases[i].want);
    }
    /* a bad file reports its line through config_from_args too */
    const char *path = write_tmp("[proxy]\n\nmode = x\n");
    assert_int_equal(RUN(&c, err, "--config", path), -1);
    assert_contains(err, ":3: [proxy] mode");
    /* abbreviations of long options work when unambiguous */
    assert_int_equal(
        RUN(&c, err, "--config", "/dev/null", "--back", "127.0.0.1:1", "--non"),
        0);
    assert_false(c.persistent);
}

/* getopt keeps global state: calling twice must start over each time. */
static void test_args_repeatable(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(RUN(&c, err, "--config", "/dev/null", "--backend",
                             "127.0.0.1:1", "--mode", "rr"),
                         0);
        assert_string_equal(c.mode, "round-robin");
        assert_int_equal(RUN(&c, err, "--bogus"), -1);
        assert_int_equal(RUN(&c, err, "--config", "/dev/null", "--backend",
                             "127.0.0.1:2", "-vv"),
                         0);
        assert_int_equal(c.verbosity, 3);
        assert_string_equal(c.backends[0].port, "2");
    }
}

/* Without --config, CONFIG_DEFAULT_FILE is read when it exists. */
static void test_args_default_file(void **state)
{
    (void)state;
    struct config c;
    char err[512], cwd[4096], dir[256], sub[300], file[320];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof(dir), "%s/lbproxy-test-cwd-XXXXXX", tmp);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);

    /* no file: code defaults, and no backends */
    int rc = RUN(&c, err, "--mode", "rr");
    assert_int_equal(rc, -1);
    assert_contains(err, "no backends");
    assert_int_equal(RUN(&c, err, "--backend", "127.0.0.1:1"), 0);
    assert_string_equal(c.config_file, "");

    snprintf(sub, sizeof(sub), "%s/config", dir);
    snprintf(file, sizeof(file), "%s/" CONFIG_DEFAULT_FILE, dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("[proxy]\nmode = least-conn\n[backends]\nQ = 127.0.0.1:5\n", f);
    fclose(f);
    rc = RUN(&c, err, "--non-persistent");
    assert_int_equal(rc, 0);
    assert_string_equal(c.config_file, CONFIG_DEFAULT_FILE);
    assert_string_equal(c.mode, "least-conn");
    assert_string_equal(c.backends[0].id, "Q");
    assert_false(c.persistent);

    unlink(file);
    rmdir(sub);
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
}

/* ---- validation -------------------------------------------------------- */

static void valid_config(struct config *c)
{
    config_defaults(c);
    c->nbackends = 2;
    for (int i = 0; i < 2; i++) {
        snprintf(c->backends[i].id, sizeof(c->backends[i].id), "%c", 'A' + i);
        strcpy(c->backends[i].host, "127.0.0.1");
        snprintf(c->backends[i].port, sizeof(c->backends[i].port), "%d",
                 8081 + i);
        c->backends[i].weight = 1;
    }
}

static void test_validate(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    valid_config(&c);
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);

#define EXPECT_INVALID(stmt, want)                                             \
    do {                                                                       \
        valid_config(&c);                                                      \
        stmt;                                                                  \
        err[0] = '\0';                                                         \
        assert_int_equal(config_validate(&c, err, sizeof(err)), -1);           \
        assert_contains(err, want);                                            \
    } while (0)

    EXPECT_INVALID(c.max_head_bytes = 32768, "max_head_bytes (32768) must "
                                             "not exceed [limits] "
                                             "buffer_bytes (16384)");
    EXPECT_INVALID(strcpy(c.backends[1].id, "A"), "duplicate backend id 'A'");
    EXPECT_INVALID(strcpy(c.backends[1].id, ""), "invalid id");
    EXPECT_INVALID(strcpy(c.backends[1].port, "0"), "backend B: expected");
    EXPECT_INVALID(strcpy(c.backends[1].host, "nowhere"),
                   "backend B: expected");
    EXPECT_INVALID(c.backends[0].weight = 0, "weight 0 not in 1..");
    EXPECT_INVALID(c.nbackends = 0, "no backends");
    EXPECT_INVALID(c.nbackends = CONFIG_MAX_BACKENDS + 1, "at most 64");
    EXPECT_INVALID(c.buffer_bytes = 1024, "[limits] buffer_bytes out of range");
    EXPECT_INVALID(c.upstream_timeout_ms = 0,
                   "[timeouts] upstream_ms out of range");
    EXPECT_INVALID(c.drain_timeout_ms = 0, "[timeouts] drain_ms out of range");
    EXPECT_INVALID(c.balancer.ewma_alpha = 0.0,
                   "[balancer] ewma_alpha out of range");
    EXPECT_INVALID(c.balancer.ewma_alpha = NAN, "ewma_alpha out of range");
    EXPECT_INVALID(c.balancer.sma_window = 0, "sma_window out of range");
    EXPECT_INVALID(c.balancer.ewma_score = 7, "ewma_score out of range");
    EXPECT_INVALID(strcpy(c.mode, "fastest"), "[proxy] mode out of range");
    EXPECT_INVALID(strcpy(c.listen, "nowhere"), "[proxy] listen");
    EXPECT_INVALID(strcpy(c.admin, "nowhere"), "[proxy] admin");
    EXPECT_INVALID(strcpy(c.admin, c.listen), "same address");
    EXPECT_INVALID(c.verbosity = -1, "verbosity");
    EXPECT_INVALID(
        (c.balancer.fail_timeout_ms = 5000, c.balancer.max_eject_ms = 1000),
        "fail_timeout_ms (5000) must not exceed");
    EXPECT_INVALID(strcpy(c.health_check_path, "health"), "check_path");
    EXPECT_INVALID(strcpy(c.health_check_path, "/a b"), "check_path");
    EXPECT_INVALID(strcpy(c.logs_dir, ""), "must not be empty");
    EXPECT_INVALID(memset(c.dashboard_dir, 'x', sizeof(c.dashboard_dir)),
                   "dashboard_dir out of range");

    /* admin off and IPv6 backends are fine */
    valid_config(&c);
    strcpy(c.admin, "off");
    strcpy(c.backends[0].host, "::1");
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);

    /* the validation runs inside config_from_args too */
    assert_int_equal(RUN(&c, err, "--config", "/dev/null", "--backend",
                         "127.0.0.1:1", "--set", "limits.max_head_bytes=64k"),
                     -1);
    assert_contains(err, "max_head_bytes (65536) must not exceed");
    assert_int_equal(RUN(&c, err, "--config", "/dev/null", "--backend",
                         "127.0.0.1:1", "--listen", "127.0.0.1:5002"),
                     -1);
    assert_contains(err, "same address");
}

/* ---- addresses, log path, printing ------------------------------------- */

static void test_parse_addr(void **state)
{
    (void)state;
    char host[64], port[8];
    struct {
        const char *in, *host, *port;
    } ok[] = {
        {"127.0.0.1:80", "127.0.0.1", "80"},
        {"0.0.0.0:65535", "0.0.0.0", "65535"},
        {"[::1]:1", "::1", "1"},
        {"[fe80::1:2]:8080", "fe80::1:2", "8080"},
        {"LOCALHOST:009", "127.0.0.1", "9"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(
            config_parse_addr(ok[i].in, host, sizeof(host), port, sizeof(port)),
            0);
        assert_string_equal(host, ok[i].host);
        assert_string_equal(port, ok[i].port);
    }
    const char *bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        ":80",
        "1.2.3:80",
        "1.2.3.4:0",
        "1.2.3.4:65536",
        "1.2.3.4:123456",
        "::1:80",
        "[::1]",
        "[::1]80",
        "[127.0.0.1]:80",
        "host:80",
        "1.2.3.4:-1",
        "1.2.3.4:+80",
        "1.2.3.4:80 ",
        " 1.2.3.4:80",
        "[::1:80",
        "1.2.3.4:8o",
        "[]:80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (config_parse_addr(bad[i], host, sizeof(host), port, sizeof(port)) !=
            -1)
            print_error("accepted '%s'\n", bad[i]);
        assert_int_equal(
            config_parse_addr(bad[i], host, sizeof(host), port, sizeof(port)),
            -1);
    }
    /* buffers too small */
    assert_int_equal(config_parse_addr("127.0.0.1:80", host, 4, port, 8), -1);
    assert_int_equal(config_parse_addr("127.0.0.1:8080", host, 64, port, 3),
                     -1);
}

static void test_log_path(void **state)
{
    (void)state;
    struct config c;
    char buf[512];
    time_t start = 1796164200; /* 2026-12-01 22:30:00 UTC */
    config_defaults(&c);
    config_log_path(&c, start, buf, sizeof(buf));
    assert_string_equal(buf, "logs/round-robin_persistent-20261201-223000.csv");
    strcpy(c.mode, "adaptive_ewma");
    c.persistent = false;
    config_log_path(&c, start + 61, buf, sizeof(buf));
    assert_string_equal(
        buf, "logs/adaptive_ewma_non_persistent-20261201-223101.csv");
    strcpy(c.logs_dir, "/var/log/lbproxy");
    config_log_path(&c, start, buf, sizeof(buf));
    assert_string_equal(
        buf,
        "/var/log/lbproxy/adaptive_ewma_non_persistent-20261201-223000.csv");
    /* an explicit file has no timestamp: every run appends to it */
    strcpy(c.log_path, "requests.csv");
    config_log_path(&c, start, buf, sizeof(buf));
    assert_string_equal(buf, "requests.csv");
    strcpy(c.log_path, "off");
    config_log_path(&c, start, buf, sizeof(buf));
    assert_string_equal(buf, "");
    /* truncates rather than overflows */
    strcpy(c.log_path, "");
    config_log_path(&c, start, buf, 5);
    assert_string_equal(buf, "/var");
}

/* config_print writes an INI that reads back into the same configuration. */
static void test_print_round_trip(void **state)
{
    (void)state;
    struct config a, b;
    char err[512], out1[8192], out2[8192];
    const char *path = write_tmp(full_ini);
    config_defaults(&a);
    assert_int_equal(config_load_file(&a, path, err, sizeof(err)), 0);
    a.balancer.ewma_alpha = 0.1234567; /* needs 7 digits */

    FILE *f = tmpfile();
    config_print(&a, f);
    capture_end(f, out1, sizeof(out1));
    const char *printed = write_tmp(out1);
    config_defaults(&b);
    int rc = config_load_file(&b, printed, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n%s", err, out1);
    assert_int_equal(rc, 0);
    assert_true(b.balancer.ewma_alpha == 0.1234567);
    assert_contains(out1, "ewma_alpha = 0.1234567\n");
    memcpy(b.config_file, a.config_file, sizeof(a.config_file));
    assert_memory_equal(&a, &b, sizeof(a));

    f = tmpfile();
    config_print(&b, f);
    capture_end(f, out2, sizeof(out2));
    assert_string_equal(strchr(out1, '\n'), strchr(out2, '\n'));

    /* defaults too (empty strings, "default" score) */
    config_defaults(&a);
    f = tmpfile();
    config_print(&a, f);
    capture_end(f, out1, sizeof(out1));
    assert_contains(out1, "log = \n");
    assert_contains(out1, "ewma_score = default\n");
    printed = write_tmp(out1);
    config_defaults(&b);
    b.balancer.ewma_score = 2;
    strcpy(b.log_path, "x");
    assert_int_equal(config_load_file(&b, printed, err, sizeof(err)), 0);
    memcpy(b.config_file, a.config_file, sizeof(a.config_file));
    assert_memory_equal(&a, &b, sizeof(a));
}

/* ---- the tables themselves --------------------------------------------- */

/* Every key's default (the table's column, or the balancer's for its
 * tunables) prints and parses back to the same bytes, is spelt the way
 * config_print spells it, and passes the key's own check. */
static void test_table_defaults_round_trip(void **state)
{
    (void)state;
    struct config d, e;
    config_defaults(&d);
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        char text[CONFIG_TEXT_MAX], what[CONFIG_TEXT_MAX] = "";
        const char *field = (const char *)&d + k->off;
        assert_true(k->size <= CONFIG_VALUE_MAX);
        if (k->type == &config_type_int)
            assert_true(k->size == 4 || k->size == 8);
        if (k->flags & CF_ALIAS) {
            assert_null(k->def);
            continue;
        }
        /* sections are contiguous, so config_print writes each once */
        if (i > 0 && strcmp(config_keys[i - 1].section, k->section) != 0)
            for (size_t j = 0; j < i; j++)
                assert_string_not_equal(config_keys[j].section, k->section);
        assert_true(k->type->check(k, field));
        config_key_text(&d, k, text, sizeof(text));
        if (k->def)
            assert_string_equal(text, k->def);
        else /* no column: the balancer's own default */
            assert_true(k->off >= offsetof(struct config, balancer) &&
                        k->off < offsetof(struct config, balancer) +
                                     sizeof(struct balancer_params));
        memset(&e, 0xa5, sizeof(e));
        int rc = config_key_apply(&e, k, text, what, sizeof(what));
        if (rc != 0)
            print_error("[%s] %s = '%s': expected %s\n", k->section, k->key,
                        text, what);
        assert_int_equal(rc, 0);
        assert_memory_equal((const char *)&e + k->off, field, k->size);
    }
    /* the balancer's part is exactly balancer_params_default */
    struct balancer_params p;
    balancer_params_default(&p);
    assert_memory_equal(&d.balancer, &p, sizeof(p));
}

/* The --help text is made from the option table: every option with its
 * value and help, the defaults and values of the keys behind them, and the
 * balancer's mode names; no line is wider than 79 columns. */
static void test_usage_derived(void **state)
{
    (void)state;
    struct config c;
    char err[512], out[8192], want[512];
    FILE *f = capture_start();
    assert_int_equal(RUN(&c, err, "--help"), 1);
    capture_end(f, out, sizeof(out));
    for (size_t i = 0; i < CLI_NOPTIONS; i++) {
        const struct cli_option *o = &cli_options[i];
        /* "  -v, --verbose" or "  --mode NAME" starts a line */
        char head[128];
        int n = snprintf(head, sizeof(head), "\n  ");
        if (o->short_name)
            n += snprintf(head + n, sizeof(head) - (size_t)n, "-%c, ",
                          o->short_name);
        snprintf(head + n, sizeof(head) - (size_t)n, "--%s%s%s", o->name,
                 o->arg ? " " : "", o->arg ? o->arg : "");
        assert_contains(out, head);
        /* a flag for a key names one that exists */
        if (o->action == CLI_KEY)
            assert_non_null(config_key_find(o->section, o->key));
        char first[64];
        snprintf(first, sizeof(first), "%.*s", (int)strcspn(o->help, " "),
                 o->help);
        assert_contains(out, first);
    }
    char modes[512];
    balancer_names(modes, sizeof(modes));
    for (char *save = NULL, *m = strtok_r(modes, ", ", &save); m;
         m = strtok_r(NULL, ", ", &save))
        assert_contains(out, m);
    config_defaults(&c);
    assert_contains(out, "client listener (default 127.0.0.1:9090)");
    snprintf(want, sizeof(want), "(default %s)", c.admin);
    assert_contains(out, want);
    for (const char *line = out; *line;) {
        size_t n = strcspn(line, "\n");
        if (n > 79)
            print_error("too wide: %.*s\n", (int)n, line);
        assert_true(n <= 79);
        line += n + (line[n] == '\n');
    }
}

/* Backends by name (name:port, srv:NAME) are kept as names to resolve;
 * numeric addresses and localhost stay addresses; [dns] resolvers is a
 * normalised address list. */
static void test_backend_names(void **state)
{
    (void)state;
    struct config c;
    char err[512], addr[300];
    int rc =
        RUN(&c, err, "--config", "/dev/null", "--backend",
            "web.test:8080, weight=3", "--backend", "srv:_http._tcp.Web.Test.",
            "--backend", "localhost:81", "--backend", "10.0.0.1:82");
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(c.backends[0].kind, CONFIG_BACKEND_NAME);
    assert_string_equal(c.backends[0].name, "web.test");
    assert_string_equal(c.backends[0].port, "8080");
    assert_string_equal(c.backends[0].host, "");
    assert_int_equal(c.backends[0].weight, 3);
    assert_int_equal(c.backends[1].kind, CONFIG_BACKEND_SRV);
    assert_string_equal(c.backends[1].name, "_http._tcp.Web.Test.");
    assert_int_equal(c.backends[2].kind, CONFIG_BACKEND_ADDR);
    assert_string_equal(c.backends[2].host, "127.0.0.1");
    assert_int_equal(c.backends[3].kind, CONFIG_BACKEND_ADDR);
    assert_string_equal(c.backends[3].host, "10.0.0.1");
    assert_int_equal(config_backend_addr(&c.backends[0], addr, sizeof(addr)),
                     0);
    assert_string_equal(addr, "web.test:8080");
    assert_int_equal(config_backend_addr(&c.backends[1], addr, sizeof(addr)),
                     0);
    assert_string_equal(addr, "srv:_http._tcp.Web.Test.");
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);

    /* --print-config's [backends] reads back to the same backends */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print(&c, out);
    fclose(out);
    struct config back;
    rc = RUN(&back, err, "--config", write_tmp(text));
    free(text);
    assert_int_equal(rc, 0);
    assert_int_equal(back.nbackends, 4);
    for (size_t i = 0; i < 4; i++)
        assert_memory_equal(&back.backends[i], &c.backends[i],
                            sizeof(c.backends[i]));

    const char *bad[] = {
        "web.test:0",     "web.test",
        "web.test:65536", "-web.test:80",
        "web..test:80",   "a b.test:80",
        "10.0.0.300:80",  "srv:",
        "srv:a b",        "srv:_x._tcp.web.test, weight=2",
        "web.test:8x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = RUN(&c, err, "--config", "/dev/null", "--backend", (char *)bad[i]);
        if (rc != -1)
            print_error("accepted '%s'\n", bad[i]);
        assert_int_equal(rc, -1);
        assert_contains(err, "--backend: expected");
    }

    rc = RUN(&c, err, "--config", "/dev/null", "--backend", "127.0.0.1:1",
             "--set", "dns.resolvers= 127.0.0.1:5353 , [::1]:53");
    assert_int_equal(rc, 0);
    assert_string_equal(c.dns_resolvers, "127.0.0.1:5353,[::1]:53");
    assert_int_equal(c.dns_resolve_interval_ms, 5000);
    const char *bad_lists[] = {"nowhere:53", ",", "127.0.0.1:53,,", "1.2.3.4"};
    for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++) {
        char set[64];
        snprintf(set, sizeof(set), "dns.resolvers=%s", bad_lists[i]);
        rc = RUN(&c, err, "--config", "/dev/null", "--backend", "127.0.0.1:1",
                 "--set", set);
        if (rc != -1)
            print_error("accepted '%s'\n", bad_lists[i]);
        assert_int_equal(rc, -1);
        assert_contains(err, "comma-separated list");
    }
}

/* docs/configuration.md gives every key's default as the table has it. */
static void test_docs_defaults(void **state)
{
    (void)state;
    FILE *f = fopen("docs/configuration.md", "r");
    assert_non_null(f);
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = '\0';
    fclose(f);
    struct config d;
    config_defaults(&d);
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        char row[96], text[CONFIG_TEXT_MAX], want[CONFIG_TEXT_MAX + 8];
        if (k->flags & CF_ALIAS)
            continue;
        /* the row in its section's table (two sections have `listen`) */
        snprintf(row, sizeof(row), "\n## [%s]", k->section);
        const char *sec = strstr(doc, row);
        assert_non_null(sec);
        snprintf(row, sizeof(row), "\n| `%s` |", k->key);
        const char *line = strstr(sec, row);
        assert_non_null(line);
        char copy[4096];
        snprintf(copy, sizeof(copy), "%.*s", (int)strcspn(line + 1, "\n"),
                 line + 1);
        config_key_text(&d, k, text, sizeof(text));
        if (text[0])
            snprintf(want, sizeof(want), "| `%s`", text);
        else
            snprintf(want, sizeof(want), "| empty |");
        assert_contains(copy, want);
    }
}

/* docs/configuration.md describes every key and every flag. */
static void test_docs_cover_every_key(void **state)
{
    (void)state;
    FILE *f = fopen("docs/configuration.md", "r");
    assert_non_null(f);
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < config_nkeys; i++) {
        char want[96];
        snprintf(want, sizeof(want), "| `%s` |", config_keys[i].key);
        assert_contains(doc, want);
        snprintf(want, sizeof(want), "[%s]", config_keys[i].section);
        assert_contains(doc, want);
    }
    for (size_t i = 0; i < CLI_NOPTIONS; i++) {
        char want[64];
        snprintf(want, sizeof(want), "`--%s", cli_options[i].name);
        assert_contains(doc, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_defaults, remove_tmp),
        cmocka_unit_test_teardown(test_load_every_section, remove_tmp),
        cmocka_unit_test_teardown(test_load_lenient_spellings, remove_tmp),
        cmocka_unit_test_teardown(test_load_backends_replace, remove_tmp),
        cmocka_unit_test_teardown(test_load_tls_pairs, remove_tmp),
        cmocka_unit_test_teardown(test_load_bad_values, remove_tmp),
        cmocka_unit_test_teardown(test_load_missing_file, remove_tmp),
        cmocka_unit_test_teardown(test_shipped_ini, remove_tmp),
        cmocka_unit_test_teardown(test_args_flags_override_file, remove_tmp),
        cmocka_unit_test_teardown(test_args_equals_form, remove_tmp),
        cmocka_unit_test_teardown(test_args_backends, remove_tmp),
        cmocka_unit_test_teardown(test_args_set, remove_tmp),
        cmocka_unit_test_teardown(test_args_set_every_key, remove_tmp),
        cmocka_unit_test_teardown(test_args_help_version, remove_tmp),
        cmocka_unit_test_teardown(test_args_check_and_print, remove_tmp),
        cmocka_unit_test_teardown(test_args_errors, remove_tmp),
        cmocka_unit_test_teardown(test_args_repeatable, remove_tmp),
        cmocka_unit_test_teardown(test_args_default_file, remove_tmp),
        cmocka_unit_test_teardown(test_validate, remove_tmp),
        cmocka_unit_test_teardown(test_parse_addr, remove_tmp),
        cmocka_unit_test_teardown(test_log_path, remove_tmp),
        cmocka_unit_test_teardown(test_print_round_trip, remove_tmp),
        cmocka_unit_test_teardown(test_docs_cover_every_key, remove_tmp),
        cmocka_unit_test_teardown(test_table_defaults_round_trip, remove_tmp),
        cmocka_unit_test_teardown(test_usage_derived, remove_tmp),
        cmocka_unit_test_teardown(test_docs_defaults, remove_tmp),
        cmocka_unit_test_teardown(test_backend_names, remove_tmp),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
