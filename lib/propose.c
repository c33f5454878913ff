/*
 * propose.c: one BOSHCODE round: train a surrogate per objective on the evaluated candidates, run
 * GOBI from the pool's most promising points, and choose the queries.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pareto.h"
#include "propose.h"
#include "util.h"

void
bo_defaults(struct bo_params *p)
{
	p->starts = 4;
	p->pool = 1000;
	p->k_ep = 0.5;
	p->k_al = 0.5;
	p->use_al = 1;
	p->p_unc = 0;
	p->p_div = 0;
	surrogate_defaults(&p->sp);
}

struct cand {
	double *x;
	struct bo_pred pr;
	double o[BO_MAX_OBJ]; /* optimistic loss per objective: mu - k_ep sep - k_al sal */
	double unc;           /* summed epistemic deviation */
	int used;
};

/* GOBI's objective: the bound (one objective) or a weighted Chebyshev scalarisation of the
 * per-objective bounds (several), which GOBI can follow with gradients where a hypervolume gain
 * would be flat. */
struct acq_ctx {
	const struct surrogate *s;
	int m, d;
	double w[BO_MAX_OBJ];
	double c_ep, c_al;
};

static double
acq_value(void *vctx, const double *x, double *grad)
{
	struct acq_ctx *c = vctx;
	double o[BO_MAX_OBJ], g[BO_MAX_OBJ][2 * SG_MAXD], best = -INFINITY, sum = 0;
	int arg = 0;

	for (int j = 0; j < c->m; j++) {
		o[j] = surrogate_combo(&c->s[j], x, 1, c->c_ep, c->c_al, grad ? g[j] : NULL);
		if (c->m == 1)
			break;
		if (c->w[j] * o[j] > best) {
			best = c->w[j] * o[j];
			arg = j;
		}
		sum += c->w[j] * o[j];
	}
	if (c->m == 1) {
		if (grad)
			memcpy(grad, g[0], sizeof *grad * (size_t)c->d);
		return o[0];
	}
	if (grad)
		for (int i = 0; i < c->d; i++) {
			grad[i] = c->w[arg] * g[arg][i];
			for (int j = 0; j < c->m; j++)
				grad[i] += 0.05 * c->w[j] * g[j][i];
		}
	return best + 0.05 * sum;
}

static void
predict(struct cand *c, const struct surrogate *s, int m, const struct bo_params *p)
{
	c->unc = 0;
	for (int j = 0; j < m; j++) {
		surrogate_predict(&s[j], c->x, &c->pr.mu[j], &c->pr.sep[j], &c->pr.sal[j]);
		c->o[j] = c->pr.mu[j] - p->k_ep * c->pr.sep[j] - (p->use_al ? p->k_al * c->pr.sal[j] : 0);
		c->unc += c->pr.sep[j];
	}
}

/* Add x (owned from here on) as candidate c if it snaps to a new one; 1 if added. */
static int
add_cand(struct cand *c, double *x, int how, const struct surrogate *s, int m, const struct bo_params *p,
         const struct bo_space *sp)
{
	if (!sp->snap(sp->ctx, x, 0)) {
		free(x);
		return 0;
	}
	c->x = x;
	c->pr.how = how;
	predict(c, s, m, p);
	return 1;
}

/* Hypervolume gain of adding point o to the front (rows of m), reference 1 in every objective. */
static double
hv_gain(const double *front, int nf, const double *o, int m, double base)
{
	double *pts = emalloc(sizeof *pts * (size_t)(nf + 1) * (size_t)m), ref[BO_MAX_OBJ], hv = base;

	for (int j = 0; j < m; j++)
		ref[j] = 1;
	memcpy(pts, front, sizeof *pts * (size_t)nf * (size_t)m);
	memcpy(pts + (size_t)nf * (size_t)m, o, sizeof *o * (size_t)m);
	if (pareto_hypervolume(&hv, pts, (size_t)nf + 1, m, ref) < 0)
		die("propose: hypervolume failed");
	free(pts);
	return hv - base;
}

static int
by_value(const void *a, const void *b)
{
	const double *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1];
}

int
bo_propose(double *out, struct bo_pred *pred, int k, const double *x, const double *y, int n, int m, int d1,
           int d2, const struct bo_params *p, uint64_t seed, const struct bo_space *sp)
{
	int d = d1 + d2, nc = 0, got = 0, nf = n;
	struct surrogate *s = ecalloc((size_t)m, sizeof *s);
	double *yn = emalloc(sizeof *yn * (size_t)n * (size_t)m), *col = emalloc(sizeof *col * (size_t)n);
	double *front = emalloc(sizeof *front * (size_t)(n + k) * (size_t)m), base = 0;
	struct cand *c = ecalloc((size_t)(p->pool + p->starts), sizeof *c);
	double *order = emalloc(sizeof *order * 2 * (size_t)(p->pool + p->starts));
	struct rng r;

	if (n < 2 || m < 1 || m > BO_MAX_OBJ || d < 1)
		die("propose: bad arguments (n %d, m %d, d %d)", n, m, d);
	rng_seed_stream(&r, seed, 0);
	/* targets scaled to [0.1, 0.9] per objective: the networks' outputs are sigmoids */
	for (int j = 0; j < m; j++) {
		double lo = INFINITY, hi = -INFINITY;
		for (int i = 0; i < n; i++) {
			lo = fmin(lo, y[i * m + j]);
			hi = fmax(hi, y[i * m + j]);
		}
		for (int i = 0; i < n; i++)
			yn[i * m + j] = hi > lo ? 0.1 + 0.8 * (y[i * m + j] - lo) / (hi - lo) : 0.5;
	}
	memcpy(front, yn, sizeof *front * (size_t)n * (size_t)m);
#pragma omp parallel for schedule(dynamic, 1) if (m > 1)
	for (int j = 0; j < m; j++) {
		double *cj = emalloc(sizeof *cj * (size_t)n);
		for (int i = 0; i < n; i++)
			cj[i] = yn[i * m + j];
		surrogate_init(&s[j], d1, d2, &p->sp, tc_hash_final(seed ^ (0x5eedULL + (uint64_t)j)));
		surrogate_train(&s[j], x, cj, n);
		free(cj);
	}
	if (m > 1) {
		double ref[BO_MAX_OBJ];
		for (int j = 0; j < m; j++)
			ref[j] = 1;
		if (pareto_hypervolume(&base, front, (size_t)n, m, ref) < 0)
			die("propose: hypervolume failed");
	}

	/* the pool: random candidates not evaluated yet */
	for (int i = 0; i < p->pool; i++) {
		double *xi = emalloc(sizeof *xi * (size_t)d);
		sp->draw(sp->ctx, &r, xi);
		nc += add_cand(&c[nc], xi, 1, s, m, p, sp);
	}

	/* GOBI from the pool's best points by its own objective, one weight vector per start */
	for (int t = 0; t < p->starts && nc > 0; t++) {
		struct acq_ctx ac = {s, m, d, {0}, -p->k_ep, p->use_al ? -p->k_al : 0};
		struct rng rs;
		double wsum = 0, *xs;
		int npool = nc;
		rng_seed_stream(&rs, seed, 1 + (uint64_t)t);
		for (int j = 0; j < m; j++)
			wsum += ac.w[j] = -log(1 - rng_uniform(&rs)); /* uniform on the simplex */
		for (int j = 0; j < m; j++)
			ac.w[j] /= wsum;
		for (int i = 0; i < npool; i++) {
			order[2 * i] = acq_value(&ac, c[i].x, NULL);
			order[2 * i + 1] = i;
		}
		qsort(order, (size_t)npool, 2 * sizeof *order, by_value);
		/* the t-th best for the single objective, so that starts differ */
		xs = emalloc(sizeof *xs * (size_t)d);
		memcpy(xs, c[(int)order[2 * (m == 1 ? (t < npool ? t : npool - 1) : 0) + 1]].x,
		       sizeof *xs * (size_t)d);
		gobi(xs, d, acq_value, &ac, &rs);
		nc += add_cand(&c[nc], xs, 0, s, m, p, sp);
	}

	/* the queries */
	for (int q = 0; q < k; q++) {
		double u = rng_uniform(&r), best = -INFINITY;
		int pick = -1;
		for (int i = 0; i < nc; i++) {
			double v;
			if (c[i].used)
				continue;
			if (!sp->snap(sp->ctx, c[i].x, 0)) { /* proposed already, as another pool member */
				c[i].used = 1;
				continue;
			}
			if (u < p->p_div)
				v = rng_uniform(&r);
			else if (u < p->p_div + p->p_unc)
				v = c[i].unc;
			else if (m == 1)
				v = -c[i].o[0];
			else {
				/* the hypervolume gain, with a small pull towards low optimistic losses so
				 * that candidates without gain are still ordered */
				double g = hv_gain(front, nf, c[i].o, m, base), sum = 0;
				for (int j = 0; j < m; j++)
					sum += c[i].o[j];
				v = g - 1e-6 * sum;
				c[i].pr.acq = g;
			}
			if (v > best) {
				best = v;
				pick = i;
			}
		}
		if (pick < 0)
			break;
		c[pick].used = 1;
		sp->snap(sp->ctx, c[pick].x, 1);
		memcpy(out + (size_t)got * (size_t)d, c[pick].x, sizeof *out * (size_t)d);
		if (m == 1)
			c[pick].pr.acq = c[pick].o[0];
		if (u < p->p_div)
			c[pick].pr.how = 3;
		else if (u < p->p_div + p->p_unc)
			c[pick].pr.how = 2;
		if (pred)
			pred[got] = c[pick].pr;
		got++;
		if (m > 1) { /* believe the optimistic point, so the next query looks elsewhere */
			base += hv_gain(front, nf, c[pick].o, m, base);
			memcpy(front + (size_t)nf * (size_t)m, c[pick].o, sizeof *front * (size_t)m);
			nf++;
		}
	}

	for (int i = 0; i < nc; i++)
		free(c[i].x);
	for (int j = 0; j < m; j++)
		surrogate_release(&s[j]);
	free(s);
	free(c);
	free(order);
	free(front);
	free(col);
	free(yn);
	return got;
}
