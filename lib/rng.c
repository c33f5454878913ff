/*
 * rng.c: xoshiro256** with splitmix64 seeding. Written from the published algorithm description;
 * the constants are the authors'. All arithmetic is on uint64_t, so results are identical on every
 * platform.
 */
#include <math.h>

#include "rng.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

void
rng_seed_stream(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ 0x6a09e667f3bcc909ULL;

	x = splitmix64(&x) ^ (stream * 0xd1b54a32d192ed03ULL);
	rng_seed(r, splitmix64(&x));
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
rng_uniform(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
rng_below(struct rng *r, uint64_t n)
{
	uint64_t x, limit = -n % n; /* 2^64 mod n: draws below it would bias the result */

	do
		x = rng_next(r);
	while (x < limit);
	return x % n;
}

double
rng_normal(struct rng *r)
{
	double u, v, s;

	do {
		u = 2 * rng_uniform(r) - 1;
		v = 2 * rng_uniform(r) - 1;
		s = u * u + v * v;
	} while (s >= 1 || s == 0);
	return u * sqrt(-2 * log(s) / s);
}

void
rng_permutation(struct rng *r, size_t *perm, size_t n)
{
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(r, i), t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}
