/*
 * rng.h: a seeded pseudo-random generator with explicit state (no globals), so that the same seed
 * gives the same stream on every machine and independent streams can be derived by index.
 *
 * Ownership: the caller owns struct rng; nothing here allocates.
 *
 * The generator is xoshiro256** (Blackman and Vigna), seeded by expanding the 64-bit seed with
 * splitmix64. Streams: rng_seed_stream(r, seed, k) gives stream k of seed, for per-start or
 * per-worker generators that do not depend on scheduling.
 */
#ifndef TC_RNG_H
#define TC_RNG_H

#include <stddef.h>
#include <stdint.h>

struct rng {
	uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
void rng_seed_stream(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(struct rng *r);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Standard normal (Marsaglia's polar method; one value per call, the pair's second is dropped so
 * that the stream position does not depend on call history). */
double rng_normal(struct rng *r);
/* perm[0..n) = a uniformly random permutation of 0..n-1 (Fisher-Yates). */
void rng_permutation(struct rng *r, size_t *perm, size_t n);

#endif
