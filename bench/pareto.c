/*
 * bench/pareto.c: times of lib/pareto.c on the workloads its header promises, beside its naive references.
 *
 * Build: gcc -std=c11 -O2 -Ilib bench/pareto.c lib/pareto.c -lm
 * Prints figures only (best of 3 runs, CLOCK_MONOTONIC); never judges a time. Where a fast routine and its
 * reference both run, their results must agree, else it prints MISMATCH and exits 1.
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pareto.h"

#define REPS    3
#define BIG     100000
#define NAIVE_N 10000
#define WFG3_N  3000

static uint64_t
next64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double
unif(uint64_t *s)
{
	return (double)(next64(s) >> 11) * 0x1.0p-53;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
gen_uniform(double *p, size_t n, int m, uint64_t *s)
{
	for (size_t i = 0; i < n * m; i++)
		p[i] = unif(s);
}

static void
gen_simplex(double *p, size_t n, int m, uint64_t *s)
{
	for (size_t i = 0; i < n; i++) {
		double sum = 0;

		for (int k = 0; k < m; k++)
			sum += p[i * m + k] = -log(1 - unif(s));
		for (int k = 0; k < m; k++)
			p[i * m + k] /= sum;
	}
}

static void
gen_sphere(double *p, size_t n, int m, uint64_t *s)
{
	for (size_t i = 0; i < n; i++) {
		double sum = 0;

		for (int k = 0; k < m; k++) {
			p[i * m + k] = 0.05 + unif(s);
			sum += p[i * m + k] * p[i * m + k];
		}
		for (int k = 0; k < m; k++)
			p[i * m + k] /= sqrt(sum);
	}
}

static void
fail(const char *what)
{
	printf("MISMATCH: %s\n", what);
	exit(1);
}

typedef int (*rank_fn)(int *, const double *, size_t, int);
typedef int (*hv_fn)(double *, const double *, size_t, int, const double *);

/* Best of REPS runs of f; *fronts = max rank + 1. */
static double
time_rank(rank_fn f, int *rank, const double *p, size_t n, int m, int *fronts)
{
	double best = INFINITY;

	for (int r = 0; r < REPS; r++) {
		double t = now();

		if (f(rank, p, n, m))
			fail("rank returned an error");
		t = now() - t;
		best = t < best ? t : best;
	}
	*fronts = 0;
	for (size_t i = 0; i < n; i++)
		*fronts = rank[i] + 1 > *fronts ? rank[i] + 1 : *fronts;
	return best;
}

static double
time_hv(hv_fn f, double *hv, const double *p, size_t n, int m, const double *ref)
{
	double best = INFINITY;

	for (int r = 0; r < REPS; r++) {
		double t = now();

		if (f(hv, p, n, m, ref))
			fail("hypervolume returned an error");
		t = now() - t;
		best = t < best ? t : best;
	}
	return best;
}

int
main(void)
{
	static const char *names[] = {"uniform", "simplex"};
	double *p = malloc(BIG * 5 * sizeof *p), ref[5] = {1.1, 1.1, 1.1, 1.1, 1.1};
	int *ra = malloc(BIG * sizeof *ra), *rb = malloc(BIG * sizeof *rb), fronts, fronts2;
	uint64_t s = 1;

	if (!p || !ra || !rb)
		return 1;
	for (int kind = 0; kind < 2; kind++) {
		double tf, tn;

		(kind ? gen_simplex : gen_uniform)(p, BIG, 4, &s);
		tf = time_rank(pareto_rank, ra, p, BIG, 4, &fronts);
		printf("rank %dx4 %s: %.3f s (%d fronts)\n", BIG, names[kind], tf, fronts);
		tf = time_rank(pareto_rank, ra, p, NAIVE_N, 4, &fronts);
		tn = time_rank(pareto_rank_naive, rb, p, NAIVE_N, 4, &fronts2);
		for (size_t i = 0; i < NAIVE_N; i++)
			if (ra[i] != rb[i])
				fail("rank and rank_naive differ");
		printf("rank %dx4 %s: %.4f s, naive %.3f s, naive/fast %.0fx (%d fronts)\n", NAIVE_N,
		       names[kind], tf, tn, tn / tf, fronts);
	}
	{
		double tf, tw, a, b;

		gen_sphere(p, BIG, 3, &s);
		tf = time_hv(pareto_hypervolume, &a, p, BIG, 3, ref);
		printf("hypervolume %dx3 sphere: %.3f s (hv %.6f)\n", BIG, tf, a);
		tf = time_hv(pareto_hypervolume, &a, p, WFG3_N, 3, ref);
		tw = time_hv(pareto_hypervolume_wfg, &b, p, WFG3_N, 3, ref);
		if (fabs(a - b) > 1e-9 * fabs(a))
			fail("3-D sweep and WFG differ");
		printf("hypervolume %dx3 sphere: %.4f s, wfg %.3f s, wfg/sweep %.0fx\n", WFG3_N, tf, tw,
		       tw / tf);
	}
	for (int m = 4; m <= 5; m++) {
		double t, a;
		size_t n = 300;

		gen_sphere(p, n, m, &s);
		t = time_hv(pareto_hypervolume, &a, p, n, m, ref);
		printf("hypervolume %zux%d sphere (WFG): %.3f s (hv %.6f)\n", n, m, t, a);
	}
	free(p);
	free(ra);
	free(rb);
	return 0;
}
