/*
 * sample.c: uniform and Latin hypercube designs.
 *
 * LHS: dimension d splits [0, 1) into n strata and gives point i the stratum perm[d][i] of a
 * random permutation, with a uniform offset inside it, so every one-dimensional projection covers
 * every stratum exactly once. Decoders map a coordinate to a list index by floor(u * count), so a
 * parameter with k values gets each value n/k times (within one) over the design.
 */
#include <stdlib.h>
#include <string.h>

#include "sample.h"

int
sample_method_parse(const char *name)
{
	if (strcmp(name, "random") == 0)
		return SAMPLE_RANDOM;
	if (strcmp(name, "lhs") == 0)
		return SAMPLE_LHS;
	return -1;
}

int
sampler_init(struct sampler *s, enum sample_method method, uint64_t n, int dim, uint64_t seed,
             struct tc_error *err)
{
	struct rng r;
	size_t *tmp;

	memset(s, 0, sizeof *s);
	s->method = method;
	s->seed = seed;
	s->n = n;
	s->dim = dim;
	if (method != SAMPLE_LHS || n == 0 || dim == 0)
		return 0;
	if (n > UINT32_MAX || (double)n * (double)dim * sizeof(uint32_t) > (double)SAMPLE_LHS_MAX_BYTES)
		return tc_error_set(
		    err,
		    "a Latin hypercube of %llu points in %d dimensions needs more than %lu MB; "
		    "use fewer points or --method random",
		    (unsigned long long)n, dim, SAMPLE_LHS_MAX_BYTES >> 20);
	s->perm = emalloc(sizeof *s->perm * (size_t)n * (size_t)dim);
	tmp = emalloc(sizeof *tmp * (size_t)n);
	rng_seed_stream(&r, seed, UINT64_MAX);
	for (int d = 0; d < dim; d++) {
		rng_permutation(&r, tmp, (size_t)n);
		for (uint64_t i = 0; i < n; i++)
			s->perm[(size_t)d * n + i] = (uint32_t)tmp[i];
	}
	free(tmp);
	return 0;
}

void
sampler_point(const struct sampler *s, uint64_t i, double *u)
{
	struct rng r;

	rng_seed_stream(&r, s->seed, i);
	for (int d = 0; d < s->dim; d++) {
		double x = rng_uniform(&r);
		if (s->method == SAMPLE_LHS)
			x = ((double)s->perm[(size_t)d * s->n + i] + x) / (double)s->n;
		u[d] = x < 1 ? x : 0x1.fffffffffffffp-1;
	}
}

void
sampler_release(struct sampler *s)
{
	free(s->perm);
	memset(s, 0, sizeof *s);
}
