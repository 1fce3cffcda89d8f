/*
 * be_profile: latency profiles of the backend emulator — durations, a seeded
 * RNG, the distributions, and the phase schedule that switches profiles at
 * given times.  Pure code: no sockets, no loop, unit-testable.
 */
#ifndef LB_BE_PROFILE_H
#define LB_BE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

enum be_dist {
    BE_DIST_FIXED,
    BE_DIST_UNIFORM,
    BE_DIST_EXP,
    BE_DIST_LOGNORMAL,
    BE_DIST_BIMODAL,
};

/* A latency profile; all times in microseconds.  Meaning of a and b:
 * fixed: a; uniform: [a, b]; exp: mean a; lognormal: median a, sigma p;
 * bimodal: a with probability 1-p, b with probability p.  Every sample
 * gets base_us added. */
struct be_profile {
    enum be_dist dist;
    double a, b, p;
    double base_us;
};

/* xoshiro256** state, seeded through splitmix64. */
struct be_rng {
    uint64_t s[4];
};

#define BE_MAX_PHASES 16

/* A profile that applies from at_us (since start) on. */
struct be_phase {
    uint64_t at_us;
    struct be_profile profile;
};

/* Name of a distribution ("fixed", "uniform", ...). */
const char *be_dist_str(enum be_dist d);

/* Parses "10ms", "2.5s", "300us" or "0" into microseconds.  Returns 0, or
 * -1 if the text is not exactly a non-negative duration. */
int be_parse_duration(const char *s, double *us);

/* Parses a profile such as "exp:10ms+2ms" or "lognormal:10ms,0.5".
 * Returns 0, or -1 with a message in err (errlen bytes). */
int be_profile_parse(const char *s, struct be_profile *p, char *err,
                     size_t errlen);

/* Writes the canonical text of a profile into buf; returns buf. */
char *be_profile_str(const struct be_profile *p, char *buf, size_t len);

/* The theoretical mean of a profile's samples in microseconds. */
double be_profile_mean(const struct be_profile *p);

/* The theoretical variance of a profile's samples (us^2). */
double be_profile_variance(const struct be_profile *p);

/* Draws one service time in microseconds (clamped to one hour). */
uint64_t be_profile_sample(const struct be_profile *p, struct be_rng *rng);

/* Parses a phase "30s:fixed:200ms" (start time, then a profile).
 * Returns 0, or -1 with a message in err. */
int be_phase_parse(const char *s, struct be_phase *ph, char *err,
                   size_t errlen);

/* Index of the phase in effect elapsed_us after start, or -1 when none has
 * started yet (the base profile applies).  Phases must be sorted by at_us. */
int be_phase_select(const struct be_phase *phases, int n, uint64_t elapsed_us);

/* Seeds the generator deterministically from seed. */
void be_rng_seed(struct be_rng *rng, uint64_t seed);
/* Next 64 random bits. */
uint64_t be_rng_next(struct be_rng *rng);
/* Uniform double in [0, 1). */
double be_rng_double(struct be_rng *rng);
/* Standard normal deviate (Box-Muller). */
double be_rng_normal(struct be_rng *rng);

#endif
