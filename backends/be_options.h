/*
 * be_options: the emulator's settings, from command-line flags and/or one
 * section of an INI file (flags override the file).
 */
#ifndef LB_BE_OPTIONS_H
#define LB_BE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "be_profile.h"

struct be_options {
    char listen_address[64];
    int port;
    char unix_path[108]; /* listen on this Unix socket instead ("": TCP) */
    char id[64];
    struct be_profile profile; /* in effect before the first phase */
    struct be_phase phases[BE_MAX_PHASES]; /* sorted by at_us */
    int nphases;
    int workers; /* 0 = unlimited */
    double error_rate, reset_rate, hang_rate;
    long long body_bytes; /* -1 = the default text body */
    int fail_health;
    int no_probe; /* /probe answers 404, as a server without it would */
    int echo;     /* echo the request body on every path */
    uint64_t seed;
    int seed_set;
    size_t max_body;        /* largest request body kept for an echo */
    char log_requests[256]; /* "" = off */
    char tls_cert[256];     /* TLS (be_tls.c) with this chain; "" = plain */
    char tls_key[256];
    int verbose;
};

/* Fills in the defaults (port 8081, id A, fixed:0ms, unlimited workers). */
void be_options_defaults(struct be_options *o);

/* Applies one setting by name (INI key or flag name without "--"; '-' and
 * '_' are the same).  Returns 0, or -1 with a message in err. */
int be_options_set(struct be_options *o, const char *key, const char *value,
                   char *err, size_t errlen);

/* Loads one section of an INI file (NULL: keys outside any section).
 * Returns 0, or -1 with a "file:line: ..." message in err. */
int be_options_load(struct be_options *o, const char *path, const char *section,
                    char *err, size_t errlen);

/* Parses argv (after defaults), reading --config/--section first so that
 * other flags override the file.  Returns 0, 1 when --help was given, or
 * -1 with a message in err. */
int be_options_parse(struct be_options *o, int argc, char **argv, char *err,
                     size_t errlen);

/* Checks cross-field constraints and sorts phases.  Returns 0 or -1. */
int be_options_validate(struct be_options *o, char *err, size_t errlen);

/* The usage text. */
extern const char be_options_usage[];

#endif
