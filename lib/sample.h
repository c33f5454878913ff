/*
 * sample.h: designs of experiments over the unit hypercube, turned into design points by the
 * decoders of space.h: independent uniform sampling and Latin hypercube sampling (LHS).
 *
 * Ownership: struct sampler owns its permutation tables; sampler_release frees them.
 *
 * Point i of a run depends only on (method, seed, n, dim, i), never on how many points were
 * consumed before a restart: the random method derives one RNG stream per point, and LHS draws
 * its permutations up front from the seed.
 */
#ifndef TC_SAMPLE_H
#define TC_SAMPLE_H

#include <stdint.h>

#include "rng.h"
#include "util.h"

enum sample_method { SAMPLE_RANDOM, SAMPLE_LHS };

/* LHS keeps dim permutations of n 32-bit indices; larger designs are refused. */
#define SAMPLE_LHS_MAX_BYTES (1UL << 30)

struct sampler {
	enum sample_method method;
	uint64_t seed, n;
	int dim;
	uint32_t *perm; /* (dim, n): LHS stratum of point i in dimension d */
};

/* Prepare a design of n points in dim dimensions. Returns 0, or -1 if LHS would be too large. */
int sampler_init(struct sampler *s, enum sample_method method, uint64_t n, int dim, uint64_t seed,
                 struct tc_error *err);
/* Coordinates of point i (i < n for LHS) into u[0..dim). */
void sampler_point(const struct sampler *s, uint64_t i, double *u);
void sampler_release(struct sampler *s);
/* "random" or "lhs"; -1 for anything else. */
int sample_method_parse(const char *name);

#endif
