/*
 * nsga2_test.c: lib/nsga2.c against naive references and closed forms: survival against dominance counted
 * pair by pair, tournament selection frequencies against their exact probabilities, the SBX and
 * polynomial mutation distributions against their cumulative distribution functions, the contract on
 * children (canonical, in range, no duplicates, deterministic), and an optimisation that must beat both
 * uniform sampling and the same operators with blind selection.
 *
 * Prints TAP; exits 1 on any failure. Statistical checks use fixed seeds and tolerances of at least four
 * standard deviations, so they fail only when the distribution is wrong.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsga2.h"
#include "pareto.h"
#include "rng.h"
#include "tap.h"

#define MAXN 1024
#define MAXD 16

static struct rng R;
static double X[MAXN * MAXD], F[MAXN * 4], V[MAXN], C[MAXN * MAXD];

static int
level(double u, int L)
{
	int k = (int)(u * L);

	return k < 0 ? 0 : k >= L ? L - 1 : k;
}

static void
random_point(double *x, const int *levels, int d, struct rng *r)
{
	for (int i = 0; i < d; i++)
		x[i] = ((double)rng_below(r, (uint64_t)levels[i]) + 0.5) / levels[i];
}

static int
same_levels(const double *a, const double *b, const int *levels, int d)
{
	for (int i = 0; i < d; i++)
		if (level(a[i], levels[i]) != level(b[i], levels[i]))
			return 0;
	return 1;
}

static int
hamming(const double *a, const double *b, const int *levels, int d)
{
	int h = 0;

	for (int i = 0; i < d; i++)
		h += level(a[i], levels[i]) != level(b[i], levels[i]);
	return h;
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

static void
test_args(void)
{
	static const int lv[] = {3, 2}, bad[] = {3, 0};
	struct nsga2_params p;
	int rc = 0;

	nsga2_defaults(&p);
	random_point(X, lv, 2, &R);
	random_point(X + 2, lv, 2, &R);
	F[0] = F[1] = 0;
	check(nsga2_offspring(C, -1, X, F, NULL, 2, 2, 1, lv, &p, &R) == -1, "refuses k < 0");
	check(nsga2_offspring(C, 1, X, F, NULL, 2, -1, 1, lv, &p, &R) == -1, "refuses d < 0");
	check(nsga2_offspring(C, 1, X, F, NULL, 2, 2, 0, lv, &p, &R) == -1, "refuses m < 1");
	check(nsga2_offspring(C, 1, X, F, NULL, 2, 2, 1, bad, &p, &R) == -1, "refuses a level count of 0");
	p.popsize = 0;
	rc |= nsga2_offspring(C, 1, X, F, NULL, 2, 2, 1, lv, &p, &R) != -1;
	nsga2_defaults(&p);
	p.pc = 1.5;
	rc |= nsga2_offspring(C, 1, X, F, NULL, 2, 2, 1, lv, &p, &R) != -1;
	nsga2_defaults(&p);
	F[1] = NAN;
	rc |= nsga2_offspring(C, 1, X, F, NULL, 2, 2, 1, lv, &p, &R) != -1;
	F[1] = 0;
	V[0] = -1;
	V[1] = 0;
	rc |= nsga2_offspring(C, 1, X, F, V, 2, 2, 1, lv, &p, &R) != -1;
	check(rc == 0, "refuses popsize 0, pc 1.5, a NaN objective and a negative violation");
	check(nsga2_offspring(C, 0, X, F, NULL, 2, 2, 1, lv, NULL, &R) == 0 &&
	          nsga2_offspring(C, 2, X, F, NULL, 2, 0, 1, lv, NULL, &R) == 0,
	      "k = 0 and d = 0 succeed; p = NULL means the defaults");
}

/* Every coordinate of every child is (k + 0.5) / L exactly for an integer k in [0, L). */
static int
canonical(const double *c, int k, const int *levels, int d)
{
	for (int j = 0; j < k; j++)
		for (int i = 0; i < d; i++) {
			double u = c[j * d + i];
			int l = level(u, levels[i]);

			if (!(u > 0 && u < 1) || u != (l + 0.5) / levels[i] || (levels[i] == 1 && u != 0.5)) {
				printf("# child %d dim %d (L=%d): %.17g\n", j, i, levels[i], u);
				return 0;
			}
		}
	return 1;
}

static void
test_canonical(void)
{
	static const int lv[] = {1, 2, 3, 1, 8, 5, 16, 1};
	int d = 8, ok = 1, n = 40, k = 60;

	for (int i = 0; i < n; i++) {
		random_point(X + i * d, lv, d, &R);
		F[2 * i] = rng_uniform(&R);
		F[2 * i + 1] = rng_uniform(&R);
		V[i] = rng_below(&R, 4) ? 0 : rng_uniform(&R);
	}
	for (int t = 0; t < 20 && ok; t++)
		ok = nsga2_offspring(C, k, X, F, V, n, d, 2, lv, NULL, &R) == 0 && canonical(C, k, lv, d);
	check(ok, "children are canonical and in range, 1-level dimensions at 0.5 (20 calls of %d)", k);
	ok = nsga2_offspring(C, k, X, F, V, 0, d, 2, lv, NULL, &R) == 0 && canonical(C, k, lv, d) &&
	     nsga2_offspring(C, k, X, F, V, 1, d, 2, lv, NULL, &R) == 0 && canonical(C, k, lv, d);
	check(ok, "children of a history of 0 and of 1 point are canonical");
}

static void
test_determinism(void)
{
	static const int lv[] = {4, 8, 8, 1, 3, 8};
	static double a[64 * 6], b[64 * 6];
	struct rng r1, r2, r3;
	int d = 6, n = 50, k = 64, rc;

	for (int i = 0; i < n; i++) {
		random_point(X + i * d, lv, d, &R);
		F[2 * i] = (double)rng_below(&R, 5);
		F[2 * i + 1] = (double)rng_below(&R, 5);
	}
	rng_seed(&r1, 11);
	rng_seed(&r2, 11);
	rng_seed(&r3, 12);
	rc = nsga2_offspring(a, k, X, F, NULL, n, d, 2, lv, NULL, &r1);
	rc |= nsga2_offspring(b, k, X, F, NULL, n, d, 2, lv, NULL, &r2);
	check(rc == 0 && !memcmp(a, b, sizeof a) && !memcmp(&r1, &r2, sizeof r1),
	      "same seed: identical children and final rng state");
	rc = nsga2_offspring(b, k, X, F, NULL, n, d, 2, lv, NULL, &r3);
	check(rc == 0 && memcmp(a, b, sizeof a), "another seed: different children");
}

/* Returns the number of children equal to a history row or to an earlier child. */
static int
count_dups(const double *c, int k, const double *x, int n, const int *levels, int d)
{
	int dups = 0;

	for (int j = 0; j < k; j++) {
		int dup = 0;

		for (int i = 0; i < n && !dup; i++)
			dup = same_levels(c + j * d, x + i * d, levels, d);
		for (int i = 0; i < j && !dup; i++)
			dup = same_levels(c + j * d, c + i * d, levels, d);
		dups += dup;
	}
	return dups;
}

static void
test_duplicates(void)
{
	static const int lv[] = {8, 8, 8, 8, 8, 8}, small[] = {3, 1, 4};
	struct nsga2_params p;
	int d = 6, n = 300, k = 100, dups = 0, rc = 0;

	/* A converged history: many copies of few points near one corner, where rounding repeats parents. */
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < d; j++)
			X[i * d + j] = (rng_below(&R, 2) + 0.5) / 8;
		F[2 * i] = rng_uniform(&R);
		F[2 * i + 1] = 1 - F[2 * i];
	}
	for (int t = 0; t < 10; t++) {
		rc |= nsga2_offspring(C, k, X, F, NULL, n, d, 2, lv, NULL, &R);
		dups += count_dups(C, k, X, n, lv, d);
	}
	check(rc == 0 && dups == 0, "no child repeats a history row or another child (10 x %d, %d found)", k,
	      dups);
	nsga2_defaults(&p);
	p.eta_c = p.eta_m = 200;
	rc = 0;
	dups = 0;
	for (int t = 0; t < 10; t++) {
		rc |= nsga2_offspring(C, k, X, F, NULL, n, d, 2, lv, &p, &R);
		dups += count_dups(C, k, X, n, lv, d);
	}
	check(rc == 0 && dups == 0, "no duplicates with eta 200, where SBX and mutation return the parents");
	/* 12 points in all, 4 in the history: 4 new ones from mating, and from random points. */
	rc = 0;
	dups = 0;
	for (int t = 0; t < 20; t++) {
		for (int i = 0; i < 4; i++) {
			random_point(X + i * 3, small, 3, &R);
			F[i] = rng_uniform(&R);
		}
		if (count_dups(X, 4, X, 0, small, 3) > 0)
			continue;
		rc |= nsga2_offspring(C, 4, X, F, NULL, 4, 3, 1, small, NULL, &R);
		dups += count_dups(C, 4, X, 4, small, 3);
		rc |= nsga2_offspring(C, 4, X, F, NULL, 1, 3, 1, small, NULL, &R);
		dups += count_dups(C, 4, X, 1, small, 3);
	}
	check(rc == 0 && dups == 0,
	      "4 new points of a 12-point space without duplicates (history of 4 and of 1)");
}

/* SBX with wide bounds: P(beta_q <= b) = b^(eta+1) / 2 for b <= 1, P(beta_q > b) = b^-(eta+1) / 2 for b >= 1.
 */
static void
test_sbx(void)
{
	static const double etas[] = {1, 15, 100};
	double spread[3], c1, c2, hi = 0;
	int ntr = 40000, out = 0, near = 0, far = 0, fair = 0;
	struct rng before;

	for (int t = 0; t < ntr; t++) {
		double y1 = 3 * rng_uniform(&R), y2 = 3 * rng_uniform(&R);

		nsga2_sbx(&c1, &c2, y1, y2, 0, 3, 2 * rng_uniform(&R), &R);
		out += !(c1 >= 0 && c1 <= 3 && c2 >= 0 && c2 <= 3);
	}
	check(out == 0, "SBX children stay in [yl, yu] (%d out of %d pairs outside)", out, ntr);
	for (int e = 0; e < 3; e++) {
		double s = 0;

		for (int t = 0; t < ntr; t++) {
			nsga2_sbx(&c1, &c2, 3, 4, 0, 7, etas[e], &R);
			s += fmin(fabs(c1 - 3), fabs(c1 - 4)) + fmin(fabs(c2 - 3), fabs(c2 - 4));
		}
		spread[e] = s / (2 * ntr);
	}
	printf("# SBX mean distance to the nearer parent, levels 3 and 4 of 0..7: eta 1 %.3f, 15 %.3f, 100 "
	       "%.4f\n",
	       spread[0], spread[1], spread[2]);
	check(spread[0] > 2 * spread[1] && spread[1] > 4 * spread[2] && spread[2] < 0.01 && spread[0] > 0.2,
	      "SBX children spread less as eta grows, and stay at the parents for eta 100");
	for (int t = 0; t < ntr; t++) {
		nsga2_sbx(&c1, &c2, 0, 1, -1e9, 1e9, 2, &R);
		near += fabs(c2 - c1) <= 0.5;
		far += fabs(c2 - c1) > 2;
		fair += c1 < c2;
		hi = fmax(hi, fabs(c1 + c2 - 1));
	}
	check(fabs(near / (double)ntr - 0.0625) < 0.006 && fabs(far / (double)ntr - 0.0625) < 0.006,
	      "SBX eta 2, wide bounds: P(beta_q <= 1/2) = %.4f and P(beta_q > 2) = %.4f, both 0.0625",
	      near / (double)ntr, far / (double)ntr);
	check(fabs(fair / (double)ntr - 0.5) < 0.01 && hi < 1e-6,
	      "SBX, wide bounds: the children's order is a fair coin (%.3f) and their mean is the parents'",
	      fair / (double)ntr);
	/* Parents on both bounds: alpha = 1, beta_q = u^(1/(eta+1)) <= 1, no clamping, mean kept. */
	near = 0;
	hi = 0;
	for (int t = 0; t < ntr; t++) {
		nsga2_sbx(&c1, &c2, 7, 3, 3, 7, 2, &R);
		near += fabs(c2 - c1) <= 2;
		hi = fmax(hi, fabs(c1 + c2 - 10));
	}
	check(fabs(near / (double)ntr - 0.125) < 0.008 && hi < 1e-12,
	      "SBX eta 2, parents on the bounds: P(beta_q <= 1/2) = %.4f, closed form 0.125; mean kept",
	      near / (double)ntr);
	before = R;
	nsga2_sbx(&c1, &c2, 2, 2, 0, 7, 15, &R);
	check(c1 == 2 && c2 == 2 && !memcmp(&before, &R, sizeof R),
	      "SBX of equal parents: unchanged, no draw");
}

/* PM at the centre of a wide range: P(|y' - y| <= t (yu - yl)) = 1 - (1 - t)^(eta+1), up to 2^-eta. */
static void
test_pm(void)
{
	static const double etas[] = {1, 20, 200};
	double spread[3];
	int ntr = 40000, out = 0, below = 0, within = 0;

	for (int t = 0; t < ntr; t++) {
		double y = 7 * rng_uniform(&R), z = nsga2_pm(y, 0, 7, 3 * rng_uniform(&R), &R);

		out += !(z >= 0 && z <= 7);
	}
	for (int t = 0; t < ntr; t++) {
		out += nsga2_pm(0, 0, 7, 5, &R) < 0;
		out += nsga2_pm(7, 0, 7, 5, &R) > 7;
	}
	check(out == 0, "PM stays in [yl, yu], also from the bounds (%d outside)", out);
	for (int e = 0; e < 3; e++) {
		double s = 0;

		for (int t = 0; t < ntr; t++)
			s += fabs(nsga2_pm(3, 0, 7, etas[e], &R) - 3);
		spread[e] = s / ntr;
	}
	printf("# PM mean |y' - y| at level 3 of 0..7: eta 1 %.3f, 20 %.3f, 200 %.4f\n", spread[0], spread[1],
	       spread[2]);
	check(spread[0] > 3 * spread[1] && spread[1] > 5 * spread[2] && spread[2] < 0.05,
	      "PM moves less as eta grows");
	for (int t = 0; t < ntr; t++) {
		double z = nsga2_pm(0.5, 0, 1, 20, &R);

		below += z < 0.5;
		within += fabs(z - 0.5) <= 0.05;
	}
	check(fabs(below / (double)ntr - 0.5) < 0.01, "PM at the centre moves down half the time (%.4f)",
	      below / (double)ntr);
	check(fabs(within / (double)ntr - (1 - pow(0.95, 21))) < 0.01,
	      "PM eta 20: P(|y' - y| <= 0.05) = %.4f, closed form %.4f", within / (double)ntr,
	      1 - pow(0.95, 21));
}

/* Feasible points dominated by no feasible point, by the definition. */
static int
naive_front(int *in, const double *f, const double *viol, int n, int m)
{
	int count = 0;

	for (int i = 0; i < n; i++) {
		in[i] = viol[i] == 0;
		for (int j = 0; j < n && in[i]; j++)
			in[i] = !(viol[j] == 0 && dominates(f + j * m, f + i * m, m));
		count += in[i];
	}
	return count;
}

static void
test_survivors(void)
{
	static int idx[MAXN], rank[MAXN], ref[MAXN], in[MAXN], kept[MAXN];
	static double crowd[MAXN];
	int bad = 0, badorder = 0, badinf = 0, badtrunc = 0;

	for (int t = 0; t < 200; t++) {
		int n = 1 + (int)rng_below(&R, 200), m = 1 + (int)rng_below(&R, 3), nf = 0, nfront, got;

		for (int i = 0; i < n * m; i++)
			F[i] = (double)rng_below(&R, 6);
		for (int i = 0; i < n; i++) {
			V[i] = rng_below(&R, 3) ? 0 : 1 + (double)rng_below(&R, 10);
			nf += V[i] == 0;
		}
		nfront = naive_front(in, F, V, n, m);
		if (nfront == 0)
			continue;
		got = nsga2_survivors(idx, rank, crowd, F, V, n, m, nfront);
		memset(kept, 0, sizeof kept);
		for (int j = 0; j < got; j++)
			kept[idx[j]] = 1;
		for (int i = 0; i < n; i++)
			bad += got != nfront || kept[i] != in[i] || (V[i] == 0 && (rank[i] == 0) != in[i]);
		/* Ranks of the feasible points against pareto_rank_naive of their rows. */
		nf = 0;
		for (int i = 0; i < n; i++)
			if (V[i] == 0) {
				memcpy(X + nf * m, F + i * m, sizeof *F * m);
				in[nf++] = i;
			}
		pareto_rank_naive(ref, X, (size_t)nf, m);
		for (int j = 0; j < nf; j++)
			bad += rank[in[j]] != ref[j];
		/* Everything, in order: feasible by (rank, -crowd), then infeasible by violation. */
		got = nsga2_survivors(idx, rank, crowd, F, V, n, m, n + 5);
		badorder += got != n;
		for (int j = 1; j < got; j++) {
			int a = idx[j - 1], b = idx[j];

			if (V[a] == 0 && V[b] == 0)
				badorder += rank[a] > rank[b] || (rank[a] == rank[b] && crowd[a] < crowd[b]);
			else
				badinf += V[a] > V[b];
		}
		/* Truncating the first front keeps its points of largest crowding distance. */
		if (nfront > 3) {
			double least = INFINITY;

			got = nsga2_survivors(idx, rank, crowd, F, V, n, m, nfront - 2);
			for (int j = 0; j < got; j++)
				least = fmin(least, crowd[idx[j]]);
			memset(kept, 0, sizeof kept);
			for (int j = 0; j < got; j++)
				kept[idx[j]] = 1;
			for (int i = 0; i < n; i++)
				badtrunc += !kept[i] && V[i] == 0 && rank[i] == 0 && crowd[i] > least;
			for (int j = 0; j < got; j++)
				badtrunc += rank[idx[j]] != 0 || V[idx[j]] != 0;
		}
	}
	check(bad == 0,
	      "survivors with popsize = size of the feasible front are exactly that front (200 sets)");
	check(badorder == 0, "all survive when popsize > n, feasible by rank then crowding distance");
	check(badinf == 0, "infeasible survivors come after the feasible ones, by increasing violation");
	check(badtrunc == 0, "truncating the first front drops its most crowded points only");
}

/*
 * Only survivors are parents: the 8 survivors lie in {0, 1, 2}^6, the other points in {5, 6, 7}^6, dominated
 * or infeasible (with better objectives). Without crossover a child is its parent with one level moved when
 * mutation is off, and also when every variable mutates by less than half a level, which rounds back.
 */
static void
test_parents(void)
{
	static const int lv[] = {8, 8, 8, 8, 8, 8};
	struct nsga2_params p;
	int d = 6, n = 40, ns = 8, k = 16;

	for (int i = 0; i < n; i++) {
		for (int j = 0; j < d; j++)
			X[i * d + j] = ((i < ns ? 0 : 5) + (double)rng_below(&R, 3) + 0.5) / 8;
		F[2 * i] = i < ns ? i : i % 3 == 0 ? -10 : 20 + i;
		F[2 * i + 1] = i < ns ? ns - i : i % 3 == 0 ? -10 : 20 + i;
		V[i] = i >= ns && i % 3 == 0 ? 0.5 : 0;
	}
	for (int variant = 0; variant < 2; variant++) {
		int bad = 0, rc = 0;

		nsga2_defaults(&p);
		p.popsize = ns;
		p.pc = 0;
		p.pm = variant ? 1 : 1e-300;
		p.eta_m = 2000;
		for (int t = 0; t < 50; t++) {
			rc |= nsga2_offspring(C, k, X, F, V, n, d, 2, lv, &p, &R);
			for (int j = 0; j < k; j++) {
				int best = d;

				for (int i = 0; i < ns; i++)
					best = fmin(best, hamming(C + j * d, X + i * d, lv, d));
				bad += best != 1;
			}
		}
		if (variant == 0)
			check(rc == 0 && bad == 0,
			      "only survivors are parents (%d of %d children not next to one)", bad, 50 * k);
		else
			check(rc == 0 && bad == 0,
			      "mutation by less than half a level rounds back to the parent (%d of %d "
			      "children not "
			      "next to a survivor)",
			      bad, 50 * k);
	}
}

/*
 * Parent frequencies of a history where everything survives, against the binary tournament's: with the
 * points split into classes ordered best first, the parent is in class c with probability
 * (A_c / N)^2 - (A_{c+1} / N)^2, A_c = the number of points in classes >= c. Without crossover or mutation
 * each child is its parent with one level moved, and history rows are 3 or more levels apart, so the parent
 * is the one row at Hamming distance 1. Returns 1 if every class is within 4 standard deviations.
 */
static int
tournament_freq(const int *cls, const int *size, int nclass, int n)
{
	static const int lv[] = {8, 8, 8, 8, 8, 8};
	struct nsga2_params p;
	int d = 6, k = 8, calls = 600, count[MAXN] = {0}, lost = 0, rc = 0, bad = 0;
	double above = n;

	for (int i = 0; i < n; i++) {
		int near;

		do {
			random_point(X + i * d, lv, d, &R);
			near = 0;
			for (int j = 0; j < i; j++)
				near |= hamming(X + i * d, X + j * d, lv, d) < 3;
		} while (near);
	}
	nsga2_defaults(&p);
	p.popsize = n;
	p.pc = 0;
	p.pm = 1e-300;
	for (int t = 0; t < calls; t++) {
		rc |= nsga2_offspring(C, k, X, F, V, n, d, 2, lv, &p, &R);
		for (int j = 0; j < k; j++) {
			int parent = -1;

			for (int i = 0; i < n; i++)
				if (hamming(C + j * d, X + i * d, lv, d) == 1)
					parent = i;
			if (parent < 0)
				lost++;
			else
				count[cls[parent]]++;
		}
	}
	for (int c = 0; c < nclass; c++) {
		double got = count[c] / (double)(calls * k), want;

		want = (above / n) * (above / n) - ((above - size[c]) / n) * ((above - size[c]) / n);
		above -= size[c];
		if (fabs(got - want) > 4 * sqrt(want * (1 - want) / (calls * k)) + 1e-3) {
			printf("# class %d: parent frequency %.4f, expected %.4f\n", c, got, want);
			bad++;
		}
	}
	return rc == 0 && lost == 0 && bad == 0;
}

static void
test_tournament(void)
{
	static const int size[] = {4, 4, 4, 4, 1, 1, 1, 1}, size1[] = {2, 1, 1, 1, 1, 1, 1};
	static const int t[] = {0, 1, 3, 6, 10, 15, 21, 28}, cls1[] = {0, 6, 5, 4, 3, 2, 1, 0};
	int cls[20];

	/* 4 fronts of 4 points, each dominating the next; 4 infeasible points with the best objectives. */
	for (int i = 0; i < 20; i++) {
		cls[i] = i < 16 ? i / 4 : i - 12;
		F[2 * i] = i < 16 ? i / 4 + (i % 4) * 0.1 : 0;
		F[2 * i + 1] = i < 16 ? i / 4 + (3 - i % 4) * 0.1 : 0;
		V[i] = i < 16 ? 0 : i - 15;
	}
	check(tournament_freq(cls, size, 8, 20),
	      "tournament: feasible first, then lower rank or smaller violation: "
	      "parent frequencies (A_c/N)^2 - (A_{c+1}/N)^2");
	/* One front whose interior gaps 3, 5, ..., 13 order the crowding distances; both ends infinite. */
	for (int i = 0; i < 8; i++) {
		F[2 * i] = t[i];
		F[2 * i + 1] = 28 - t[i];
		V[i] = 0;
	}
	check(tournament_freq(cls1, size1, 7, 8),
	      "tournament within a front by crowding distance: frequencies");
}

/*
 * ZDT1 on levels: x0 in 8 levels gives f1 = x0 / 7, g = 1 + 9 (x1 + ... + x5) / 35, f2 = g (1 - sqrt(f1 /
 * g)). 8 random points then 30 generations of 8 children, 248 evaluations, against 248 uniform points and
 * against the same operators given random objectives (selection blind).
 */
enum { RUN_NSGA2, RUN_BLIND, RUN_UNIFORM };

static void
zdt1(double *f, const double *x, const int *levels)
{
	double g = 0, f1 = level(x[0], levels[0]) / 7.0;

	for (int i = 1; i < 6; i++)
		g += level(x[i], levels[i]);
	g = 1 + 9 * g / 35;
	f[0] = f1;
	f[1] = g * (1 - sqrt(f1 / g));
}

static double
run(int mode, uint64_t seed)
{
	static const int lv[] = {8, 8, 8, 8, 8, 8};
	static const double ref[] = {1.1, 10.1};
	static double blind[MAXN * 2];
	struct rng r;
	int d = 6, n = 0;
	double hv;

	rng_seed(&r, seed);
	for (int g = 0; g <= 30; g++) {
		int k = 8;

		if (mode == RUN_UNIFORM || g == 0)
			for (int j = 0; j < k; j++)
				random_point(X + (n + j) * d, lv, d, &r);
		else if (nsga2_offspring(X + n * d, k, X, mode == RUN_BLIND ? blind : F, NULL, n, d, 2, lv,
		                         NULL, &r))
			return -1;
		for (int i = n; i < n + k; i++) {
			zdt1(F + i * 2, X + i * d, lv);
			blind[2 * i] = rng_uniform(&r);
			blind[2 * i + 1] = rng_uniform(&r);
		}
		n += k;
	}
	if (pareto_hypervolume(&hv, F, (size_t)n, 2, ref))
		return -1;
	return hv;
}

static void
test_optimise(void)
{
	static const double ref[] = {1.1, 10.1};
	double hv[3] = {0}, front[16], opt, worst = INFINITY, best = 0, gap[3];
	int seeds = 8, ok = 1;

	for (int i = 0; i < 8; i++) {
		front[2 * i] = i / 7.0;
		front[2 * i + 1] = 1 - sqrt(i / 7.0);
	}
	pareto_hypervolume(&opt, front, 8, 2, ref);
	for (uint64_t s = 1; s <= (uint64_t)seeds; s++) {
		double a = run(RUN_NSGA2, s), b = run(RUN_BLIND, s), c = run(RUN_UNIFORM, s);

		ok &= a >= 0 && b >= 0 && c >= 0 && a <= opt + 1e-9;
		hv[0] += a / seeds;
		hv[1] += b / seeds;
		hv[2] += c / seeds;
		worst = fmin(worst, a);
		best = fmax(best, fmax(b, c));
	}
	for (int i = 0; i < 3; i++)
		gap[i] = opt - hv[i];
	printf("# ZDT1 on 8^6 levels, 248 evaluations, mean hypervolume of %d seeds (optimum %.3f): NSGA-II "
	       "%.3f, "
	       "blind selection %.3f, uniform %.3f; worst NSGA-II %.3f, best other %.3f\n",
	       seeds, opt, hv[0], hv[1], hv[2], worst, best);
	check(
	    ok && gap[0] < gap[1] / 4 && gap[0] < gap[2] / 4 && worst > best,
	    "NSGA-II ends 4 times nearer the optimal hypervolume than uniform sampling and blind selection");
}

int
main(void)
{
	rng_seed(&R, 2002);
	test_args();
	test_canonical();
	test_determinism();
	test_duplicates();
	test_sbx();
	test_pm();
	test_survivors();
	test_parents();
	test_tournament();
	test_optimise();
	return tap_done();
}
