/*
 * Unit tests of the backend emulator's pure parts: durations, profiles,
 * sampling (means and shapes within tolerances derived from each
 * distribution's variance), phases, flags and INI sections.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../backends/be_options.c"
#include "../../backends/be_profile.c"

#define NSAMPLES 200000

static void test_durations(void **state)
{
    (void)state;
    double us;
    assert_int_equal(be_parse_duration("10ms", &us), 0);
    assert_true(us == 10000);
    assert_int_equal(be_parse_duration("2.5s", &us), 0);
    assert_true(us == 2500000);
    assert_int_equal(be_parse_duration("300us", &us), 0);
    assert_true(us == 300);
    assert_int_equal(be_parse_duration("0", &us), 0);
    assert_true(us == 0);
    assert_int_equal(be_parse_duration(".5ms", &us), 0);
    assert_true(us == 500);
    const char *bad[] = {"10", "ms",  "-1ms", "10msx", "",
                         "1m", "inf", "nan",  " 1ms",  "1 ms"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (be_parse_duration(bad[i], &us) == 0)
            fail_msg("'%s' parsed as %g us", bad[i], us);
    }
}

static void test_profile_parse(void **state)
{
    (void)state;
    struct be_profile p;
    char err[256], buf[128];
    assert_int_equal(be_profile_parse("fixed:10ms", &p, err, sizeof(err)), 0);
    assert_int_equal(p.dist, BE_DIST_FIXED);
    assert_true(p.a == 10000 && p.base_us == 0);
    assert_int_equal(be_profile_parse("uniform:5ms-15ms", &p, err, 256), 0);
    assert_true(p.dist == BE_DIST_UNIFORM && p.a == 5000 && p.b == 15000);
    assert_int_equal(be_profile_parse("exp:10ms+2ms", &p, err, 256), 0);
    assert_true(p.dist == BE_DIST_EXP && p.a == 10000 && p.base_us == 2000);
    assert_int_equal(be_profile_parse("lognormal:10ms,0.5", &p, err, 256), 0);
    assert_true(p.dist == BE_DIST_LOGNORMAL && p.a == 10000 && p.p == 0.5);
    assert_int_equal(
        be_profile_parse("bimodal:5ms,200ms,0.05+1ms", &p, err, 256), 0);
    assert_true(p.dist == BE_DIST_BIMODAL && p.a == 5000 && p.b == 200000 &&
                p.p == 0.05 && p.base_us == 1000);
    assert_string_equal(be_profile_str(&p, buf, sizeof(buf)),
                        "bimodal:5ms,200ms,0.05+1ms");
    const char *bad[] = {"fixed",
                         "fixed:",
                         "fixed:10",
                         "uniform:15ms-5ms",
                         "uniform:5ms",
                         "exp:10ms+",
                         "lognormal:10ms",
                         "lognormal:10ms,-1",
                         "bimodal:5ms,200ms",
                         "bimodal:5ms,200ms,1.5",
                         "normal:10ms",
                         "",
                         "fixed:10ms junk"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (be_profile_parse(bad[i], &p, err, sizeof(err)) == 0)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_profile_str_roundtrip(void **state)
{
    (void)state;
    const char *texts[] = {"fixed:0ms",          "fixed:250us",
                           "uniform:5ms-15ms",   "exp:10ms+2ms",
                           "lognormal:10ms,0.5", "bimodal:5ms,1s,0.05"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct be_profile p;
        char err[256], buf[128];
        assert_int_equal(be_profile_parse(texts[i], &p, err, 256), 0);
        assert_string_equal(be_profile_str(&p, buf, sizeof(buf)), texts[i]);
    }
}

/* The sample mean must be within 5 standard errors of the theoretical
 * mean (plus 0.5 us: samples are rounded to whole microseconds). */
static void check_mean(const char *text, uint64_t seed)
{
    struct be_profile p;
    struct be_rng rng;
    char err[256];
    assert_int_equal(be_profile_parse(text, &p, err, sizeof(err)), 0);
    be_rng_seed(&rng, seed);
    double sum = 0;
    for (int i = 0; i < NSAMPLES; i++)
        sum += (double)be_profile_sample(&p, &rng);
    double mean = sum / NSAMPLES;
    double want = be_profile_mean(&p);
    double tol = 5 * sqrt(be_profile_variance(&p) / NSAMPLES) + 0.5;
    if (fabs(mean - want) > tol)
        fail_msg("%s: sample mean %.2f us, expected %.2f +- %.2f", text, mean,
                 want, tol);
}

static void test_sample_means(void **state)
{
    (void)state;
    const char *profiles[] = {
        "fixed:10ms",      "fixed:10ms+2ms",         "uniform:5ms-15ms",
        "exp:10ms",        "exp:10ms+2ms",           "lognormal:10ms,0.5",
        "lognormal:5ms,1", "bimodal:5ms,200ms,0.05", "uniform:0ms-1ms+3ms"};
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
        for (uint64_t seed = 1; seed <= 3; seed++)
            check_mean(profiles[i], seed);
}

static void test_sample_shapes(void **state)
{
    (void)state;
    struct be_profile p;
    struct be_rng rng;
    char err[256];
    be_rng_seed(&rng, 42);
    /* fixed: every sample equal */
    be_profile_parse("fixed:7ms+1ms", &p, err, sizeof(err));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(be_profile_sample(&p, &rng), 8000);
    /* uniform: inside the bounds */
    be_profile_parse("uniform:5ms-15ms", &p, err, sizeof(err));
    for (int i = 0; i < NSAMPLES; i++) {
        uint64_t v = be_profile_sample(&p, &rng);
        assert_in_range(v, 5000, 15000);
    }
    /* lognormal: half the samples below the median (binomial, 5 sd) */
    be_profile_parse("lognormal:10ms,0.5", &p, err, sizeof(err));
    int below = 0;
    for (int i = 0; i < NSAMPLES; i++)
        below += be_profile_sample(&p, &rng) < 10000;
    double sd = sqrt(NSAMPLES * 0.25);
    assert_true(fabs(below - NSAMPLES / 2.0) < 5 * sd);
    /* bimodal: the slow mode at its probability, only the two values */
    be_profile_parse("bimodal:5ms,200ms,0.05", &p, err, sizeof(err));
    int slow = 0;
    for (int i = 0; i < NSAMPLES; i++) {
        uint64_t v = be_profile_sample(&p, &rng);
        assert_true(v == 5000 || v == 200000);
        slow += v == 200000;
    }
    sd = sqrt(NSAMPLES * 0.05 * 0.95);
    assert_true(fabs(slow - NSAMPLES * 0.05) < 5 * sd);
    /* exp: P(X > mean) = 1/e */
    be_profile_parse("exp:10ms", &p, err, sizeof(err));
    int above = 0;
    for (int i = 0; i < NSAMPLES; i++)
        above += be_profile_sample(&p, &rng) > 10000;
    double q = exp(-1);
    sd = sqrt(NSAMPLES * q * (1 - q));
    assert_true(fabs(above - NSAMPLES * q) < 5 * sd);
}

static void test_rng_seeded(void **state)
{
    (void)state;
    struct be_rng a, b, c;
    be_rng_seed(&a, 7);
    be_rng_seed(&b, 7);
    be_rng_seed(&c, 8);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = be_rng_next(&a);
        assert_true(x == be_rng_next(&b));
        differ += x != be_rng_next(&c);
    }
    assert_true(differ > 90);
    for (int i = 0; i < 100000; i++) {
        double d = be_rng_double(&a);
        assert_true(d >= 0 && d < 1);
    }
}

static void test_phases(void **state)
{
    (void)state;
    struct be_phase ph[2];
    char err[256];
    assert_int_equal(be_phase_parse("20s:fixed:100ms", &ph[0], err, 256), 0);
    assert_int_equal(be_phase_parse("40s:fixed:10ms", &ph[1], err, 256), 0);
    assert_true(ph[0].at_us == 20000000 && ph[0].profile.a == 100000);
    assert_int_equal(be_phase_select(ph, 2, 0), -1);
    assert_int_equal(be_phase_select(ph, 2, 19999999), -1);
    assert_int_equal(be_phase_select(ph, 2, 20000000), 0);
    assert_int_equal(be_phase_select(ph, 2, 39999999), 0);
    assert_int_equal(be_phase_select(ph, 2, 40000000), 1);
    assert_int_equal(be_phase_select(ph, 2, UINT64_MAX), 1);
    assert_int_equal(be_phase_select(ph, 0, 5), -1);
    assert_int_equal(be_phase_parse("fixed:1ms", &ph[0], err, 256), -1);
    assert_int_equal(be_phase_parse("20:fixed:1ms", &ph[0], err, 256), -1);
    assert_int_equal(be_phase_parse("20s:oops", &ph[0], err, 256), -1);
}

static int parse_argv(struct be_options *o, char *err, const char *first, ...)
{
    char *argv[32] = {"lbbackend"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    be_options_defaults(o);
    return be_options_parse(o, argc, argv, err, 256);
}

static void test_flags(void **state)
{
    (void)state;
    struct be_options o;
    char err[256];
    assert_int_equal(
        parse_argv(&o, err, "--port", "9001", "--id", "Z", "--profile",
                   "exp:10ms+2ms", "--workers=4", "--phase", "40s:fixed:10ms",
                   "--phase", "20s:fixed:100ms", "--error-rate", "0.1",
                   "--reset_rate", "0.2", "--hang-rate", "0.05", "--body-bytes",
                   "4k", "--fail-health", "--echo", "--seed", "99",
                   "--listen-address", "127.0.0.2", NULL),
        0);
    assert_int_equal(o.port, 9001);
    assert_string_equal(o.id, "Z");
    assert_int_equal(o.profile.dist, BE_DIST_EXP);
    assert_int_equal(o.workers, 4);
    assert_int_equal(o.nphases, 2);
    assert_true(o.phases[0].at_us == 20000000); /* sorted */
    assert_true(o.error_rate == 0.1 && o.reset_rate == 0.2 &&
                o.hang_rate == 0.05);
    assert_int_equal(o.body_bytes, 4096);
    assert_true(o.fail_health && o.echo && o.seed_set && o.seed == 99);
    assert_string_equal(o.listen_address, "127.0.0.2");

    assert_int_equal(parse_argv(&o, err, "--help", NULL), 1);
    assert_int_equal(parse_argv(&o, err, "--port", NULL), -1);
    assert_int_equal(parse_argv(&o, err, "--port", "70000", NULL), -1);
    assert_int_equal(parse_argv(&o, err, "--bogus", "1", NULL), -1);
    assert_int_equal(parse_argv(&o, err, "--error-rate", "1.5", NULL), -1);
    assert_int_equal(parse_argv(&o, err, "--id", "a b", NULL), -1);
    assert_int_equal(
        parse_argv(&o, err, "--error-rate", "0.6", "--reset-rate", "0.6", NULL),
        -1);
    assert_non_null(strstr(err, "> 1"));
    assert_int_equal(parse_argv(&o, err, "stray", NULL), -1);
    assert_int_equal(parse_argv(&o, err, "--section", "A", NULL), -1);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_ini(void **state)
{
    (void)state;
    char path[] = "/tmp/test_backend_ini_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "; comment\n[A]\nport = 9101\nid = A\n"
                     "profile = lognormal:5ms,0.3\nworkers = 8\n"
                     "phase = 10s:fixed:50ms\n\n[B]\nport = 9102\nid = B\n"
                     "listen-address = 127.0.0.1\nfail_health = true\n");
    struct be_options o;
    char err[256];
    assert_int_equal(
        parse_argv(&o, err, "--config", path, "--section", "B", NULL), 0);
    assert_int_equal(o.port, 9102);
    assert_string_equal(o.id, "B");
    assert_true(o.fail_health);
    assert_int_equal(o.workers, 0);
    /* flags override the file; phases on the command line replace it */
    assert_int_equal(parse_argv(&o, err, "--port", "9999", "--config", path,
                                "--section", "A", "--phase", "1s:fixed:1ms",
                                NULL),
                     0);
    assert_int_equal(o.port, 9999);
    assert_int_equal(o.workers, 8);
    assert_int_equal(o.profile.dist, BE_DIST_LOGNORMAL);
    assert_int_equal(o.nphases, 1);
    assert_true(o.phases[0].at_us == 1000000);
    assert_int_equal(
        parse_argv(&o, err, "--config", path, "--section", "C", NULL), -1);
    assert_non_null(strstr(err, "no section"));
    /* errors name the file and line */
    write_file(path, "[A]\nport = 9101\nworkers = lots\n");
    assert_int_equal(
        parse_argv(&o, err, "--config", path, "--section", "A", NULL), -1);
    char want[300];
    snprintf(want, sizeof(want), "%s:3:", path);
    if (!strstr(err, want))
        fail_msg("error '%s' does not name '%s'", err, want);
    write_file(path, "[A]\nspeed = 3\n");
    assert_int_equal(
        parse_argv(&o, err, "--config", path, "--section", "A", NULL), -1);
    assert_non_null(strstr(err, "unknown setting"));
    unlink(path);
}

/* The shipped sets must load; run from the top of the tree. */
static void test_shipped_configs(void **state)
{
    (void)state;
    const char *files[] = {"config/backends.ini", "config/backends-flat.ini",
                           "config/backends-capped.ini",
                           "config/backends-degrade.ini",
                           "config/backends-faulty.ini"};
    const char *ids[] = {"A", "B", "C"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        if (access(files[f], R_OK) != 0)
            fail_msg("%s missing (run from the top of the tree)", files[f]);
        for (int i = 0; i < 3; i++) {
            struct be_options o;
            char err[256];
            if (parse_argv(&o, err, "--config", files[f], "--section", ids[i],
                           NULL) != 0)
                fail_msg("%s [%s]: %s", files[f], ids[i], err);
            assert_string_equal(o.id, ids[i]);
            assert_int_equal(o.port, 8081 + i);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_profile_parse),
        cmocka_unit_test(test_profile_str_roundtrip),
        cmocka_unit_test(test_sample_means),
        cmocka_unit_test(test_sample_shapes),
        cmocka_unit_test(test_rng_seeded),
        cmocka_unit_test(test_phases),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_ini),
        cmocka_unit_test(test_shipped_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
