/*
 * nsga2.c: NSGA-II survival, tournament, SBX and polynomial mutation on level indices, d = dimensions,
 * m = objectives, n = history rows, k = children.
 *
 * The population is the whole history, reduced to popsize survivors on every call: a search evaluates a
 * batch, appends it and asks again, so nothing needs to be kept between calls and a restarted search
 * proposes exactly what an uninterrupted one would. Survival costs one pareto_rank and one
 * pareto_crowding over the feasible rows, O(n log n) for m = 2. Duplicates are found through a hash set of
 * the level vectors of the history and of the children so far, so a redraw costs O(d), not O(n d).
 *
 * Variation works on level indices y in [0, L - 1] as reals, following pymoo's bounded SBX and polynomial
 * mutation, and rounds back to the nearest level: treating levels as ordinal lets children of nearby
 * parents stay nearby.
 */
#include "nsga2.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pareto.h"
#include "util.h"

#define NSGA2_TRIES 50

void
nsga2_defaults(struct nsga2_params *p)
{
	p->popsize = 32;
	p->pc = 0.9;
	p->eta_c = 15;
	p->pm = 0;
	p->eta_m = 20;
}

/* ---- survival ---- */

struct key {
	double viol, crowd;
	int rank, i;
};

static int
key_cmp(const void *pa, const void *pb)
{
	const struct key *a = pa, *b = pb;

	if (a->viol != b->viol)
		return a->viol < b->viol ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	if (a->crowd != b->crowd)
		return a->crowd > b->crowd ? -1 : 1;
	return (a->i > b->i) - (a->i < b->i);
}

int
nsga2_survivors(int *idx, int *rank, double *crowd, const double *f, const double *viol, int n, int m,
                int popsize)
{
	double *ff = NULL, *fc = NULL; /* (nf, m), (nf) */
	int *fi = NULL, *fr = NULL;    /* (nf), (nf) */
	struct key *key = NULL;        /* (n) */
	int nf = 0, worst = -1, kept = -1;

	if (n < 0 || m < 1 || popsize < 1)
		return -1;
	for (size_t j = 0; j < (size_t)n * m; j++)
		if (!isfinite(f[j]))
			return -1;
	for (int i = 0; viol && i < n; i++)
		if (!(viol[i] >= 0))
			return -1;
	ff = malloc(sizeof *ff * ((size_t)n * m + 1));
	fc = malloc(sizeof *fc * ((size_t)n + 1));
	fi = malloc(sizeof *fi * ((size_t)n + 1));
	fr = malloc(sizeof *fr * ((size_t)n + 1));
	key = malloc(sizeof *key * ((size_t)n + 1));
	if (!ff || !fc || !fi || !fr || !key)
		goto out;

	for (int i = 0; i < n; i++)
		if (!viol || viol[i] == 0) {
			memcpy(ff + (size_t)nf * m, f + (size_t)i * m, sizeof *ff * m);
			fi[nf++] = i;
		}
	if (pareto_rank(fr, ff, (size_t)nf, m) || pareto_crowding(fc, ff, fr, (size_t)nf, m))
		goto out;
	for (int i = 0; i < n; i++) {
		rank[i] = 0;
		crowd[i] = 0;
	}
	for (int j = 0; j < nf; j++) {
		rank[fi[j]] = fr[j];
		crowd[fi[j]] = fc[j];
		worst = fr[j] > worst ? fr[j] : worst;
	}
	for (int i = 0; i < n; i++) {
		if (viol && viol[i] > 0)
			rank[i] = worst + 1;
		key[i] = (struct key){viol ? viol[i] : 0, crowd[i], rank[i], i};
	}
	qsort(key, (size_t)n, sizeof *key, key_cmp);
	kept = n < popsize ? n : popsize;
	for (int j = 0; j < kept; j++)
		idx[j] = key[j].i;
out:
	free(ff);
	free(fc);
	free(fi);
	free(fr);
	free(key);
	return kept;
}

/* ---- variation on one variable ---- */

/* SBX spread factor for the bounded form: beta measures the room beyond the nearer parent. */
static double
betaq(double beta, double u, double eta)
{
	double alpha = 2 - pow(beta, -(eta + 1));

	if (u <= 1 / alpha)
		return pow(u * alpha, 1 / (eta + 1));
	return pow(1 / (2 - u * alpha), 1 / (eta + 1));
}

static double
clamp(double y, double lo, double hi)
{
	return y < lo ? lo : y > hi ? hi : y;
}

void
nsga2_sbx(double *c1, double *c2, double y1, double y2, double yl, double yu, double eta, struct rng *rng)
{
	double lo = fmin(y1, y2), hi = fmax(y1, y2), dy = hi - lo, u, a, b;

	if (dy <= 1e-14) {
		*c1 = y1;
		*c2 = y2;
		return;
	}
	u = rng_uniform(rng);
	a = 0.5 * ((lo + hi) - betaq(1 + 2 * (lo - yl) / dy, u, eta) * dy);
	b = 0.5 * ((lo + hi) + betaq(1 + 2 * (yu - hi) / dy, u, eta) * dy);
	a = clamp(a, yl, yu);
	b = clamp(b, yl, yu);
	if (rng_uniform(rng) < 0.5) {
		*c1 = b;
		*c2 = a;
	} else {
		*c1 = a;
		*c2 = b;
	}
}

double
nsga2_pm(double y, double yl, double yu, double eta, struct rng *rng)
{
	double d1 = (y - yl) / (yu - yl), d2 = (yu - y) / (yu - yl), q = 1 / (eta + 1);
	double u = rng_uniform(rng), dq;

	if (u <= 0.5)
		dq = pow(2 * u + (1 - 2 * u) * pow(1 - d1, eta + 1), q) - 1;
	else
		dq = 1 - pow(2 * (1 - u) + 2 * (u - 0.5) * pow(1 - d2, eta + 1), q);
	return clamp(y + dq * (yu - yl), yl, yu);
}

/* ---- offspring ---- */

struct gen {
	const int *levels;
	int d, nfree;
	const struct nsga2_params *p;
	double pm;
	struct rng *rng;
	int n, nsurv;
	const int *surv, *rank; /* (nsurv), (n) */
	const double *crowd;    /* (n) */
	const double *viol;     /* (n) or NULL */
	const int *lv;          /* (n, d): levels of the history rows */
	double *y;              /* (2, d) scratch */
};

static int
decode(double u, int L)
{
	double t = u * L;

	return t >= L ? L - 1 : t > 0 ? (int)t : 0;
}

static int
tournament(const struct gen *g)
{
	int a = g->surv[rng_below(g->rng, (uint64_t)g->nsurv)];
	int b = g->surv[rng_below(g->rng, (uint64_t)g->nsurv)];
	double va = g->viol ? g->viol[a] : 0, vb = g->viol ? g->viol[b] : 0;

	if (va != vb)
		return va < vb ? a : b;
	if (va == 0 && g->rank[a] != g->rank[b])
		return g->rank[a] < g->rank[b] ? a : b;
	if (va == 0 && g->crowd[a] != g->crowd[b])
		return g->crowd[a] > g->crowd[b] ? a : b;
	return rng_below(g->rng, 2) ? b : a;
}

/* Move one random free dimension of c to another level, uniformly. */
static void
nudge(const struct gen *g, int *c)
{
	int r = (int)rng_below(g->rng, (uint64_t)g->nfree), i = 0, v;

	while (g->levels[i] == 1 || r-- > 0)
		i++;
	v = (int)rng_below(g->rng, (uint64_t)g->levels[i] - 1);
	c[i] = v >= c[i] ? v + 1 : v;
}

static void
round_levels(int *c, const double *y, const struct gen *g)
{
	for (int i = 0; i < g->d; i++) {
		int v = (int)floor(y[i] + 0.5), hi = g->levels[i] - 1;

		c[i] = v < 0 ? 0 : v > hi ? hi : v;
	}
}

/* Two children kid (2, d) of one mating pair, or uniform random ones when n < 2. */
static void
mate(const struct gen *g, int *kid)
{
	const int *pa, *pb;
	double *ya = g->y, *yb = g->y + g->d;
	size_t sz = sizeof *kid * g->d;

	if (g->n < 2) {
		for (int i = 0; i < 2 * g->d; i++)
			kid[i] = (int)rng_below(g->rng, (uint64_t)g->levels[i % g->d]);
		return;
	}
	pa = g->lv + (size_t)tournament(g) * g->d;
	pb = g->lv + (size_t)tournament(g) * g->d;
	for (int i = 0; i < g->d; i++) {
		ya[i] = pa[i];
		yb[i] = pb[i];
	}
	if (rng_uniform(g->rng) < g->p->pc)
		for (int i = 0; i < g->d; i++)
			if (g->levels[i] > 1 && rng_uniform(g->rng) < 0.5)
				nsga2_sbx(&ya[i], &yb[i], pa[i], pb[i], 0, g->levels[i] - 1, g->p->eta_c,
				          g->rng);
	for (int c = 0; c < 2; c++) {
		double *y = g->y + c * g->d;
		int *k = kid + c * g->d;

		for (int i = 0; i < g->d; i++)
			if (g->levels[i] > 1 && rng_uniform(g->rng) < g->pm)
				y[i] = nsga2_pm(y[i], 0, g->levels[i] - 1, g->p->eta_m, g->rng);
		round_levels(k, y, g);
		if (g->nfree > 0 && (!memcmp(k, pa, sz) || !memcmp(k, pb, sz)))
			nudge(g, k);
	}
}

/* Open addressing over the rows of lv (d levels each); slots hold a row index or -1. */
struct set {
	int *slot;
	size_t mask;
	const int *lv;
	int d;
};

static size_t
row_hash(const int *row, int d)
{
	return (size_t)tc_hash_final(tc_hash_bytes(TC_HASH_INIT, row, sizeof *row * d));
}

/* Whether row is in the set; if not and add, row index r is added (r's levels must equal row). */
static int
set_has(struct set *s, const int *row, int r, int add)
{
	size_t h = row_hash(row, s->d) & s->mask;

	for (; s->slot[h] >= 0; h = (h + 1) & s->mask)
		if (!memcmp(s->lv + (size_t)s->slot[h] * s->d, row, sizeof *row * s->d))
			return 1;
	if (add)
		s->slot[h] = r;
	return 0;
}

static int
bad_params(const struct nsga2_params *p)
{
	return p->popsize < 1 || !(p->pc >= 0 && p->pc <= 1) || !(p->eta_c >= 0 && isfinite(p->eta_c)) ||
	       !(p->eta_m >= 0 && isfinite(p->eta_m)) || isnan(p->pm);
}

int
nsga2_offspring(double *child, int k, const double *x, const double *f, const double *viol, int n, int d,
                int m, const int *levels, const struct nsga2_params *p, struct rng *rng)
{
	struct nsga2_params def;
	struct gen g = {0};
	struct set s = {0};
	int *lv = NULL, *surv = NULL, *rank = NULL, *pend = NULL; /* (n + k, d), (n), (n), (2, d) */
	double *crowd = NULL, *y = NULL;                          /* (n), (2, d) */
	int npend = 0, rc = -1;
	size_t cap = 1;

	if (!p) {
		nsga2_defaults(&def);
		p = &def;
	}
	if (k < 0 || d < 0 || m < 1 || n < 0 || bad_params(p))
		return -1;
	for (int i = 0; i < d; i++)
		if (levels[i] < 1)
			return -1;
	g = (struct gen){.levels = levels, .d = d, .p = p, .rng = rng, .n = n, .viol = viol};
	for (int i = 0; i < d; i++)
		g.nfree += levels[i] > 1;
	g.pm = p->pm > 0 ? p->pm : g.nfree > 2 ? 1.0 / g.nfree : 0.5;
	while (cap < 2 * ((size_t)n + k) + 1)
		cap *= 2;
	lv = malloc(sizeof *lv * (((size_t)n + k) * d + 1));
	surv = malloc(sizeof *surv * ((size_t)n + 1));
	rank = malloc(sizeof *rank * ((size_t)n + 1));
	crowd = malloc(sizeof *crowd * ((size_t)n + 1));
	pend = malloc(sizeof *pend * (2 * (size_t)d + 1));
	y = malloc(sizeof *y * (2 * (size_t)d + 1));
	s.slot = malloc(sizeof *s.slot * cap);
	if (!lv || !surv || !rank || !crowd || !pend || !y || !s.slot)
		goto out;
	if ((g.nsurv = nsga2_survivors(surv, rank, crowd, f, viol, n, m, p->popsize)) < 0)
		goto out;
	g.surv = surv;
	g.rank = rank;
	g.crowd = crowd;
	g.lv = lv;
	g.y = y;
	s = (struct set){s.slot, cap - 1, lv, d};
	memset(s.slot, -1, sizeof *s.slot * cap);
	for (int r = 0; r < n; r++) {
		for (int i = 0; i < d; i++)
			lv[(size_t)r * d + i] = decode(x[(size_t)r * d + i], levels[i]);
		set_has(&s, lv + (size_t)r * d, r, 1);
	}

	for (int j = 0; j < k; j++) {
		int *c = lv + ((size_t)n + j) * d;

		for (int t = 1;; t++) {
			if (npend == 0) {
				mate(&g, pend);
				npend = 2;
			}
			memcpy(c, pend + (size_t)(2 - npend--) * d, sizeof *c * d);
			if (!set_has(&s, c, n + j, 1) || t == NSGA2_TRIES)
				break;
		}
		for (int i = 0; i < d; i++)
			child[(size_t)j * d + i] = (c[i] + 0.5) / levels[i];
	}
	rc = 0;
out:
	free(lv);
	free(surv);
	free(rank);
	free(crowd);
	free(pend);
	free(y);
	free(s.slot);
	return rc;
}
