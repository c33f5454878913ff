/*
 * pareto_test.c: checks lib/pareto.c against its naive references, closed forms and hand-worked cases.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Werror -O2 -Ilib tests/unit/pareto_test.c lib/pareto.c -lm
 * Prints "ok N - what" or "not ok N - what" per check, details of a failure on "# " lines after it, the
 * plan "1..N" last, and exits 1 if any check failed.
 *
 * Inputs come from splitmix64 with fixed seeds, so a failure reproduces exactly. Integer coordinates from
 * small ranges make ties and duplicate vectors common, which is where sorting algorithms break; each fast
 * routine is compared with an independent reference (pareto_rank with the O(n^2) topological count, that
 * one with peeling written here, hypervolume with the grid sum, the 2-D and 3-D sweeps with WFG, WFG at
 * m = 4 and 5 with slicing over the last objective).
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pareto.h"

#define NOTE_MAX   4096
#define NOTE_LINES 6

static int ntest, nfail, nnotes;
static char notes[NOTE_MAX];
static size_t notelen;

/* Keep a detail line for the next report (the first NOTE_LINES of them). */
static void
note(const char *fmt, ...)
{
	va_list ap;
	int w;

	if (nnotes++ >= NOTE_LINES || notelen + 2 >= NOTE_MAX)
		return;
	notes[notelen++] = '#';
	notes[notelen++] = ' ';
	va_start(ap, fmt);
	w = vsnprintf(notes + notelen, NOTE_MAX - notelen, fmt, ap);
	va_end(ap);
	if (w < 0)
		w = 0;
	notelen += (size_t)w < NOTE_MAX - notelen ? (size_t)w : NOTE_MAX - notelen - 1;
	if (notelen + 1 < NOTE_MAX)
		notes[notelen++] = '\n';
	notes[notelen] = '\0';
}

/* Print the check line and the kept details; the check passed iff ok and no detail was noted. */
static void
report(int ok, const char *fmt, ...)
{
	va_list ap;

	ok = ok && nnotes == 0;
	ntest++;
	if (!ok)
		nfail++;
	printf("%sok %d - ", ok ? "" : "not ", ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fputs(notes, stdout);
	if (nnotes > NOTE_LINES)
		printf("# ... and %d more\n", nnotes - NOTE_LINES);
	notelen = 0;
	notes[0] = '\0';
	nnotes = 0;
}

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

static int
below(uint64_t *s, int n)
{
	return (int)(next64(s) % (uint64_t)n);
}

static void
gen_int(double *p, size_t n, int m, int range, uint64_t *s)
{
	for (size_t i = 0; i < n * m; i++)
		p[i] = below(s, range);
}

static void
gen_uniform(double *p, size_t n, int m, uint64_t *s)
{
	for (size_t i = 0; i < n * m; i++)
		p[i] = unif(s);
}

/* On the simplex sum = 1: mutually non-dominated. */
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

/* On the unit sphere in the positive orthant: mutually non-dominated. */
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

/* Near a diagonal line: many fronts. */
static void
gen_chain(double *p, size_t n, int m, uint64_t *s)
{
	for (size_t i = 0; i < n; i++) {
		double t = unif(s);

		for (int k = 0; k < m; k++)
			p[i * m + k] = t + 0.05 * unif(s);
	}
}

static void
shuffle(size_t *perm, size_t n, uint64_t *s)
{
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(next64(s) % i), t = perm[i - 1];

		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

static int
dominates(const double *p, const double *q, int m)
{
	int less = 0;

	for (int k = 0; k < m; k++) {
		if (p[k] > q[k])
			return 0;
		less |= p[k] < q[k];
	}
	return less;
}

/* Ranks by repeated peeling: front f = the points not dominated by any point left after fronts < f. */
static void
rank_peel(int *rank, const double *p, size_t n, int m)
{
	size_t left = n;

	for (size_t i = 0; i < n; i++)
		rank[i] = -1;
	for (int f = 0; left > 0; f++) {
		for (size_t i = 0; i < n; i++) {
			int dom = 0;

			if (rank[i] != -1)
				continue;
			for (size_t j = 0; j < n && !dom; j++)
				dom = rank[j] < 0 && dominates(p + j * m, p + i * m, m);
			if (!dom)
				rank[i] = -2;
		}
		for (size_t i = 0; i < n; i++)
			if (rank[i] == -2) {
				rank[i] = f;
				left--;
			}
	}
}

static int
close_rel(double a, double b, double tol)
{
	return fabs(a - b) <= tol * fmax(fabs(a), fabs(b));
}

/* Compare two rank arrays, noting mismatches; returns 1 if equal. */
static int
same_ranks(const int *got, const int *want, size_t n, const char *what, int set, int m)
{
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i]) {
			note("%s set %d (n=%zu m=%d): point %zu rank %d, reference %d", what, set, n, m, i,
			     got[i], want[i]);
			return 0;
		}
	return 1;
}

static double pbuf[20000 * 6], qbuf[20000 * 6];
static int ra[2000], rb[2000];

/* Small sets: pareto_rank against pareto_rank_naive, and the naive against peeling. */
static void
test_rank_small(int integer, int sets, uint64_t seed)
{
	uint64_t s = seed;
	int bad = 0, badpeel = 0, worst = 0;

	for (int t = 0; t < sets; t++) {
		size_t n = (size_t)below(&s, 61);
		int m = 1 + below(&s, 6);

		if (integer)
			gen_int(pbuf, n, m, 2 + below(&s, 5), &s);
		else if (t % 3 == 0)
			gen_simplex(pbuf, n, m, &s);
		else
			gen_uniform(pbuf, n, m, &s);
		if (pareto_rank(ra, pbuf, n, m) || pareto_rank_naive(rb, pbuf, n, m)) {
			note("set %d: error return", t);
			bad++;
			continue;
		}
		bad += !same_ranks(ra, rb, n, "fast vs naive", t, m);
		rank_peel(ra, pbuf, n, m);
		badpeel += !same_ranks(rb, ra, n, "naive vs peeling", t, m);
		for (size_t i = 0; i < n; i++)
			worst = rb[i] > worst ? rb[i] : worst;
	}
	report(bad == 0, "rank = naive on %d random %s sets, n 0..60, m 1..6 (deepest front %d)", sets,
	       integer ? "integer (ties, duplicates)" : "continuous", worst);
	report(badpeel == 0, "naive rank = repeated peeling on the same %d %s sets", sets,
	       integer ? "integer" : "continuous");
}

static void
test_rank_large(void)
{
	static const char *kinds[] = {"uniform", "simplex (all non-dominated)", "integer 0..9", "chain"};
	uint64_t s = 42;

	for (int kind = 0; kind < 4; kind++) {
		int bad = 0, fronts = 0;

		for (int m = 2; m <= 5; m++) {
			size_t n = 2000;

			if (kind == 0)
				gen_uniform(pbuf, n, m, &s);
			else if (kind == 1)
				gen_simplex(pbuf, n, m, &s);
			else if (kind == 2)
				gen_int(pbuf, n, m, 10, &s);
			else
				gen_chain(pbuf, n, m, &s);
			if (pareto_rank(ra, pbuf, n, m) || pareto_rank_naive(rb, pbuf, n, m)) {
				note("m=%d: error return", m);
				bad++;
				continue;
			}
			bad += !same_ranks(ra, rb, n, kinds[kind], m, m);
			for (size_t i = 0; i < n; i++) {
				fronts = rb[i] + 1 > fronts ? rb[i] + 1 : fronts;
				if (kind == 1 && ra[i] != 0) {
					note("simplex m=%d: point %zu has rank %d", m, i, ra[i]);
					bad++;
					break;
				}
			}
		}
		report(bad == 0, "rank = naive on 2000 %s points, m 2..5 (at most %d fronts)", kinds[kind],
		       fronts);
	}
}

/* Large enough for sweeps over more than 2048 points (the radix sort's wide digits). */
static void
test_rank_wide(void)
{
	static int rc_[6000], rd_[6000];
	uint64_t s = 43;
	int bad = 0;

	for (int m = 3; m <= 4; m++) {
		size_t n = 6000;

		gen_uniform(qbuf, n, m, &s);
		if (pareto_rank(rc_, qbuf, n, m) || pareto_rank_naive(rd_, qbuf, n, m)) {
			note("m=%d: error return", m);
			bad++;
			continue;
		}
		bad += !same_ranks(rc_, rd_, n, "uniform", m, m);
	}
	report(bad == 0, "rank = naive on 6000 uniform points, m 3..4");
}

static void
test_rank_hand(void)
{
	/* m = 1: dense rank of distinct values. */
	static const double p1[] = {3, 1, 3, 2, -1, 2};
	static const int w1[] = {3, 1, 3, 2, 0, 2};
	/* m = 2: (1,1) twice, (0,2) and (2,0) undominated; (2,2) twice behind them; (3,3) last. */
	static const double p2[] = {1, 1, 2, 2, 0, 2, 1, 1, 3, 3, 2, 0, 2, 2};
	static const int w2[] = {0, 1, 0, 0, 2, 0, 1};
	/* m = 3: a chain of three, a point equal to the middle one, and one incomparable. */
	static const double p3[] = {0, 0, 0, 1, 1, 1, 2, 2, 2, 1, 1, 1, -1, 5, 5};
	static const int w3[] = {0, 1, 2, 1, 0};
	int got[7], rc;

	rc = pareto_rank(got, p1, 6, 1);
	report(rc == 0 && same_ranks(got, w1, 6, "m=1", 0, 1), "rank of 1-objective values: dense rank");
	rc = pareto_rank(got, p2, 7, 2);
	report(rc == 0 && same_ranks(got, w2, 7, "m=2", 0, 2), "rank of a hand-worked 2-D set, duplicates");
	rc = pareto_rank(got, p3, 5, 3);
	report(rc == 0 && same_ranks(got, w3, 5, "m=3", 0, 3), "rank of a hand-worked 3-D chain, duplicate");
	rc = pareto_rank(got, p3, 0, 3) | pareto_rank_naive(got, p3, 0, 3);
	report(rc == 0, "rank of an empty set succeeds");
	rc = pareto_rank(got, p3, 5, 0);
	report(rc == -1, "rank refuses m = 0");
}

static void
test_rank_permutation(void)
{
	uint64_t s = 7;
	size_t perm[2000];
	int bad = 0;

	for (int t = 0; t < 40; t++) {
		size_t n = t < 20 ? 2000 : (size_t)below(&s, 200);
		int m = 1 + t % 5;

		if (t % 2)
			gen_int(pbuf, n, m, 4, &s);
		else
			gen_chain(pbuf, n, m, &s);
		shuffle(perm, n, &s);
		for (size_t i = 0; i < n; i++)
			memcpy(qbuf + i * m, pbuf + perm[i] * m, m * sizeof *pbuf);
		if (pareto_rank(ra, pbuf, n, m) || pareto_rank(rb, qbuf, n, m)) {
			note("set %d: error return", t);
			bad++;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			if (rb[i] != ra[perm[i]]) {
				note("set %d (n=%zu m=%d): point %zu rank %d, %d after shuffling", t, n, m,
				     perm[i], ra[perm[i]], rb[i]);
				bad++;
				break;
			}
	}
	report(bad == 0, "rank of each point is unchanged by shuffling the input (40 sets)");
}

static void
test_crowding(void)
{
	/* Front 0: (0,4) (1,2) (2,1) (4,0); front 1: two points; front 2: objective 1 constant. */
	static const double p[] = {0, 4, 1, 2, 2, 1, 4, 0, 5, 5, 6, 6, 1, 7, 2, 7, 4, 7};
	static const int rank[] = {0, 0, 0, 0, 1, 1, 2, 2, 2};
	double inf = INFINITY;
	const double want[] = {inf, 0.5 + 0.75, 0.75 + 0.5, inf, inf, inf, inf, 1.0, inf};
	double got[9];
	int bad = 0, badrank[] = {0, 0, 9};

	if (pareto_crowding(got, p, rank, 9, 2)) {
		note("error return");
	} else {
		for (int i = 0; i < 9; i++)
			if (!(got[i] == want[i] || (isfinite(want[i]) && fabs(got[i] - want[i]) < 1e-12))) {
				note("point %d: distance %g, expected %g", i, got[i], want[i]);
				bad++;
			}
	}
	report(bad == 0, "crowding distance, hand-worked (boundaries, 2-point front, flat objective)");
	report(pareto_crowding(got, p, badrank, 3, 2) == -1, "crowding refuses a rank label >= n");
	report(pareto_crowding(got, p, rank, 0, 2) == 0, "crowding of an empty set succeeds");
}

/* A random hypervolume test set: ties, duplicates, dominated points and points at or beyond ref. */
static void
gen_hv_set(double *p, double *ref, size_t n, int m, int integer, uint64_t *s)
{
	if (integer) {
		int range = 2 + below(s, 4);

		gen_int(p, n, m, range + 1, s);
		for (int k = 0; k < m; k++)
			ref[k] = range;
	} else {
		gen_uniform(p, n, m, s);
		for (int k = 0; k < m; k++)
			ref[k] = 0.9 + 0.2 * unif(s);
	}
	if (n > 1 && below(s, 2)) {
		size_t a = (size_t)below(s, (int)n), b = (size_t)below(s, (int)n);

		memcpy(p + a * m, p + b * m, m * sizeof *p);
	}
}

static void
test_hv_small(int mmax, size_t nmax, int sets, uint64_t seed)
{
	uint64_t s = seed;
	double ref[8];
	int bad = 0, nonzero = 0;

	for (int t = 0; t < sets; t++) {
		size_t n = (size_t)below(&s, (int)nmax + 1);
		int m = 1 + below(&s, mmax);
		double a, b;

		gen_hv_set(pbuf, ref, n, m, t % 2, &s);
		if (pareto_hypervolume(&a, pbuf, n, m, ref) ||
		    pareto_hypervolume_naive(&b, pbuf, n, m, ref)) {
			note("set %d: error return", t);
			bad++;
			continue;
		}
		nonzero += b > 0;
		if (!close_rel(a, b, 1e-9)) {
			note("set %d (n=%zu m=%d %s): hypervolume %.17g, naive %.17g", t, n, m,
			     t % 2 ? "integer" : "continuous", a, b);
			bad++;
		}
	}
	report(bad == 0 && nonzero > sets / 2,
	       "hypervolume = naive grid sum on %d random sets, m 1..%d, n 0..%zu", sets, mmax, nmax);
}

static void
test_hv_closed(void)
{
	static const double two[] = {1, 3, 2, 1}, ref2[] = {4, 4};
	static const double three[] = {0, 0, 0, 1, 1, 1, 2, -1, 2, 5, 5, 5}, ref3[] = {3, 3, 3};
	double p[6], ref[6], v, want;
	int bad = 0;

	for (int m = 1; m <= 6; m++) {
		want = 1;
		for (int k = 0; k < m; k++) {
			p[k] = 0.25 * k - 1;
			ref[k] = 1.5 + k;
			want *= ref[k] - p[k];
		}
		if (pareto_hypervolume(&v, p, 1, m, ref) || !close_rel(v, want, 1e-12)) {
			note("m=%d: %.17g, expected %.17g", m, v, want);
			bad++;
		}
	}
	report(bad == 0, "hypervolume of one point is the product of (ref - p), m 1..6");
	/* Boxes 3 x 1 and 2 x 3 overlapping in 2 x 1. */
	report(pareto_hypervolume(&v, two, 2, 2, ref2) == 0 && v == 7,
	       "hypervolume of (1,3), (2,1) to (4,4) is 7");
	/* (0,0,0) covers 27; (2,-1,2) adds the 1 x 1 x 1 slab at y < 0; (1,1,1) is dominated; (5,5,5) out. */
	report(pareto_hypervolume(&v, three, 4, 3, ref3) == 0 && v == 28,
	       "hypervolume of a hand-worked 3-D set with a dominated and an outside point is 28");
	report(pareto_hypervolume(&v, three + 9, 1, 3, ref3) == 0 && v == 0 &&
	           pareto_hypervolume(&v, three, 0, 3, ref3) == 0 && v == 0,
	       "hypervolume of the empty set and of a point beyond ref is 0");
	p[0] = 0;
	p[1] = 4;
	report(pareto_hypervolume(&v, p, 1, 2, ref2) == 0 && v == 0,
	       "hypervolume of a point on the reference boundary is 0");
	report(pareto_hypervolume(&v, p, 1, 0, ref2) == -1, "hypervolume refuses m = 0");
}

/* The 2-D and 3-D sweeps against WFG forced at the top level. */
static void
test_hv_sweeps(void)
{
	static const char *kinds[] = {"sphere (non-dominated)", "uniform", "integer 0..7"};
	uint64_t s = 99;
	double ref[3] = {1.1, 1.1, 1.1}, a, b;

	for (int m = 2; m <= 3; m++)
		for (int kind = 0; kind < 3; kind++) {
			size_t n = kind == 0 ? 400 : 300;
			int bad = 0;

			if (kind == 0)
				gen_sphere(pbuf, n, m, &s);
			else if (kind == 1)
				gen_uniform(pbuf, n, m, &s);
			else
				gen_int(pbuf, n, m, 8, &s);
			for (int k = 0; k < m; k++)
				ref[k] = kind == 2 ? 7 : 1.1;
			if (pareto_hypervolume(&a, pbuf, n, m, ref) ||
			    pareto_hypervolume_wfg(&b, pbuf, n, m, ref)) {
				note("error return");
				bad++;
			} else if (!close_rel(a, b, 1e-9) || a <= 0) {
				note("sweep %.17g, wfg %.17g", a, b);
				bad++;
			}
			report(bad == 0, "%d-D sweep = WFG on %zu %s points", m, n, kinds[kind]);
		}
}

/*
 * The 3-D sweep (on enough points for three levels of its bit tree) and WFG at m = 4 and 5 against slicing
 * by the last objective (integer-valued there) into m - 1 dimensional volumes. The last set is large and
 * mostly dominated, with duplicated rows, so the non-dominated filter ranks it.
 */
static void
test_hv_slicing(void)
{
	static const struct {
		int m, n, kind;
	} sets[] = {{3, 20000, 0}, {4, 300, 0}, {5, 120, 0}, {4, 2000, 1}};
	uint64_t s = 2024;

	for (int t = 0; t < 4; t++) {
		int m = sets[t].m, bad = 0, levels = 6;
		size_t n = (size_t)sets[t].n;
		double ref[5], a, b = 0;

		if (sets[t].kind == 0) {
			gen_sphere(pbuf, n, m, &s);
		} else {
			gen_int(pbuf, n, m, 20, &s);
			for (size_t i = 0; i < n; i += 7)
				memcpy(pbuf + i * m, pbuf + (size_t)below(&s, (int)n) * m, m * sizeof *pbuf);
		}
		for (size_t i = 0; i < n; i++)
			pbuf[i * m + m - 1] = below(&s, levels);
		for (int k = 0; k < m; k++)
			ref[k] = k == m - 1 ? levels : sets[t].kind == 0 ? 1.05 : 19;
		for (int z = 0; z < levels; z++) {
			size_t k = 0;
			double slice;

			for (size_t i = 0; i < n; i++)
				if (pbuf[i * m + m - 1] <= z)
					memcpy(qbuf + k++ * (m - 1), pbuf + i * m, (m - 1) * sizeof *pbuf);
			if (pareto_hypervolume(&slice, qbuf, k, m - 1, ref)) {
				bad++;
				note("error return in a slice");
			}
			b += slice;
		}
		if (pareto_hypervolume(&a, pbuf, n, m, ref)) {
			bad++;
			note("error return");
		} else if (!close_rel(a, b, 1e-9)) {
			bad++;
			note("wfg %.17g, slices %.17g", a, b);
		}
		report(bad == 0, "%d-D %s = sum of %d-D slices on %zu %s points", m, m == 3 ? "sweep" : "WFG",
		       m - 1, n, sets[t].kind == 0 ? "sphere" : "integer (duplicated, mostly dominated)");
	}
}

static void
test_hv_permutation(void)
{
	uint64_t s = 5;
	size_t perm[400];
	double ref[5];
	int bad = 0;

	for (int t = 0; t < 20; t++) {
		int m = 2 + t % 4;
		size_t n = m <= 3 ? 400 : 60;
		double a, b;

		if (t % 2)
			gen_sphere(pbuf, n, m, &s);
		else
			gen_int(pbuf, n, m, 6, &s);
		for (int k = 0; k < m; k++)
			ref[k] = t % 2 ? 1.1 : 5;
		shuffle(perm, n, &s);
		for (size_t i = 0; i < n; i++)
			memcpy(qbuf + i * m, pbuf + perm[i] * m, m * sizeof *pbuf);
		if (pareto_hypervolume(&a, pbuf, n, m, ref) || pareto_hypervolume(&b, qbuf, n, m, ref)) {
			note("set %d: error return", t);
			bad++;
		} else if (!close_rel(a, b, 1e-12)) {
			note("set %d (n=%zu m=%d): %.17g, %.17g after shuffling", t, n, m, a, b);
			bad++;
		}
	}
	report(bad == 0, "hypervolume is unchanged by shuffling the input (20 sets, m 2..5)");
}

int
main(void)
{
	test_rank_hand();
	test_rank_small(1, 3000, 1);
	test_rank_small(0, 2000, 2);
	test_rank_large();
	test_rank_wide();
	test_rank_permutation();
	test_crowding();
	test_hv_closed();
	test_hv_small(5, 8, 3000, 3);
	test_hv_small(3, 30, 1000, 4);
	test_hv_sweeps();
	test_hv_slicing();
	test_hv_permutation();
	printf("1..%d\n", ntest);
	if (nfail)
		printf("# %d of %d checks failed\n", nfail, ntest);
	return nfail != 0;
}
