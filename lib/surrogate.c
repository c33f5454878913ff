/*
 * surrogate.c: BOSHCODE's teacher, student and natural-parameter networks, their training, and GOBI.
 * The formulas are those of shared/reference/boshcode.md; the departures from the released code are
 * listed in tc-sample(1) and marked "Deviation" here.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "surrogate.h"
#include "util.h"

enum { ACT_NONE, ACT_SOFTPLUS, ACT_SIGMOID, ACT_NPN_RELU, ACT_NPN_SIGMOID };

#define SG_W      64                     /* widest hidden layer */
#define KEEP      0.7                    /* dropout keeps a unit with this probability */
#define NPN_KAPPA 1.5957691216057308     /* sqrt(8 / pi) */
#define NPN_ZETA2 0.39269908169872414    /* pi / 8 */
#define NPN_ALPHA 1.1715728752538097     /* 4 - 2 sqrt 2 */
#define NPN_BETA  (-0.88137358701954305) /* -ln(sqrt 2 + 1) */

/* Activations of one pass, for backward: a[c][i] is the input of layer i of chain c and a[c][nl]
 * its output; for the NPN, a holds means and s variances. */
struct cache {
	double a[3][4][SG_MAXD], s[3][4][SG_MAXD];
	double z[3][3][SG_W], zs[3][3][SG_W]; /* pre-activations (mean, variance) */
	double mask[3][3][SG_W];
};

static double
sigm(double u)
{
	return u >= 0 ? 1 / (1 + exp(-u)) : exp(u) / (1 + exp(u));
}

/* PyTorch's softplus: beta 1, linear above 20. */
static double
softplus_t(double u)
{
	return u > 20 ? u : log1p(exp(u));
}

/* Plain softplus, stable for large |u|. */
static double
softplus(double u)
{
	return u > 0 ? u + log1p(exp(-u)) : log1p(exp(u));
}

void
npn_relu(double c, double dv, double *am, double *as, double *d)
{
	double dd = dv > 1e-12 ? dv : 1e-12, r = sqrt(dd), z = c / r;
	double S = sigm(NPN_KAPPA * z), Sp = NPN_KAPPA * S * (1 - S);
	double p = exp(-0.5 * z * z) / sqrt(2 * M_PI);
	double m = S * c + r * p, Q = S * (c * c + dd) + c * r * p;

	*am = m;
	*as = Q - m * m;
	if (d) {
		double dmc = S + z * (Sp - p), dmd = (p * (1 + z * z) - z * z * Sp) / (2 * r);
		double dQc = Sp * (c * c + dd) / r + 2 * c * S + r * p - c * z * p;
		double dQd = S - Sp * z * (c * c + dd) / (2 * dd) + c * p * (1 + z * z) / (2 * r);
		d[0] = dmc;
		d[1] = dmd;
		d[2] = dQc - 2 * m * dmc;
		d[3] = dQd - 2 * m * dmd;
	}
}

void
npn_sigmoid(double c, double dv, double *am, double *as, double *d)
{
	double t = 1 + NPN_ZETA2 * dv, t2 = 1 + NPN_ZETA2 * NPN_ALPHA * NPN_ALPHA * dv;
	double A = sigm(c / sqrt(t)), B = sigm(NPN_ALPHA * (c + NPN_BETA) / sqrt(t2));

	*am = A;
	*as = B - A * A;
	if (d) {
		d[0] = A * (1 - A) / sqrt(t);
		d[1] = -0.5 * NPN_ZETA2 * c * A * (1 - A) * pow(t, -1.5);
		d[2] = B * (1 - B) * NPN_ALPHA / sqrt(t2) - 2 * A * d[0];
		d[3] = -0.5 * NPN_ZETA2 * NPN_ALPHA * NPN_ALPHA * NPN_ALPHA * (c + NPN_BETA) * B * (1 - B) *
		           pow(t2, -1.5) -
		       2 * A * d[1];
	}
}

double
npn_loss(double m, double s, double y, double *dm, double *ds)
{
	double ss = s > 1e-12 ? s : 1e-12, e = m - y;

	if (dm)
		*dm = 10 * e / ss;
	if (ds)
		*ds = 0.5 * (1 / ss - 10 * e * e / (ss * ss));
	return 0.5 * (10 * e * e / ss + log(ss));
}

/* ---- building ---- */

static void
add_layer(struct sg_net *net, int c, int in, int out, int act, int drop)
{
	struct sg_layer *L = &net->L[c][net->nl[c]++];

	L->in = in;
	L->out = out;
	L->act = act;
	L->drop = drop;
	L->w = net->np;
	net->np += in * out;
	L->b = net->np;
	net->np += out;
	if (net->npn) {
		L->ws = net->np;
		net->np += in * out;
		L->bs = net->np;
		net->np += out;
	}
}

static void
build(struct sg_net *net, int kind, int d1, int d2)
{
	int dd[2] = {d1, d2};

	memset(net, 0, sizeof *net);
	net->npn = kind == 2;
	for (int c = 0; c < 2; c++) {
		add_layer(net, c, dd[c], 32, net->npn ? ACT_NPN_RELU : ACT_SOFTPLUS, 0);
		add_layer(net, c, 32, 32, net->npn ? ACT_NPN_SIGMOID : ACT_SOFTPLUS, 0);
	}
	if (kind == 0) { /* teacher */
		add_layer(net, 2, 64, 64, ACT_SOFTPLUS, 1);
		add_layer(net, 2, 64, 32, ACT_SOFTPLUS, 1);
		add_layer(net, 2, 32, 1, ACT_SIGMOID, 0);
	} else if (kind == 1) { /* student */
		add_layer(net, 2, 64, 32, ACT_SOFTPLUS, 0);
		add_layer(net, 2, 32, 1, ACT_SOFTPLUS, 0);
	} else {
		add_layer(net, 2, 64, 32, ACT_NPN_RELU, 0);
		add_layer(net, 2, 32, 1, ACT_NPN_SIGMOID, 0);
	}
	net->p = ecalloc((size_t)net->np, sizeof *net->p);
	net->g = ecalloc((size_t)net->np, sizeof *net->g);
	net->m = ecalloc((size_t)net->np, sizeof *net->m);
	net->v = ecalloc((size_t)net->np, sizeof *net->v);
	net->vs = ecalloc((size_t)net->np, sizeof *net->vs);
	net->sg = ecalloc((size_t)net->np, sizeof *net->sg);
}

/* The NPN's variances softplus(w_s) and their derivatives sigmoid(w_s), computed once per optimiser
 * step rather than at every use. */
static void
refresh(struct sg_net *net)
{
	if (!net->npn)
		return;
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < net->nl[c]; i++) {
			const struct sg_layer *L = &net->L[c][i];
			for (int j = 0; j < L->in * L->out; j++) {
				net->vs[L->ws + j] = softplus(net->p[L->ws + j]);
				net->sg[L->ws + j] = sigm(net->p[L->ws + j]);
			}
			for (int j = 0; j < L->out; j++) {
				net->vs[L->bs + j] = softplus(net->p[L->bs + j]);
				net->sg[L->bs + j] = sigm(net->p[L->bs + j]);
			}
		}
}

static double
unif(struct rng *r, double lo, double hi)
{
	return lo + (hi - lo) * rng_uniform(r);
}

static void
init_net(struct sg_net *net, struct rng *r)
{
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < net->nl[c]; i++) {
			const struct sg_layer *L = &net->L[c][i];
			int nw = L->in * L->out;
			if (!net->npn) { /* PyTorch's Linear: U(-1/sqrt(in), 1/sqrt(in)) */
				double k = L->in > 0 ? 1 / sqrt(L->in) : 0;
				for (int j = 0; j < nw; j++)
					net->p[L->w + j] = unif(r, -k, k);
				for (int j = 0; j < L->out; j++)
					net->p[L->b + j] = unif(r, -k, k);
			} else { /* Glorot means, small variances, biases 0 and softplus(-10) */
				double k = sqrt(6.0 / (L->in + L->out));
				for (int j = 0; j < nw; j++) {
					double w0 = 0.01 * k * rng_uniform(r);
					net->p[L->w + j] = unif(r, -k, k);
					net->p[L->ws + j] = w0 > 1e-300 ? log(expm1(w0)) : -690;
				}
				for (int j = 0; j < L->out; j++) {
					net->p[L->b + j] = 0;
					net->p[L->bs + j] = -10;
				}
			}
		}
}

void
surrogate_defaults(struct surrogate_params *p)
{
	p->epochs = 200;
	p->lr_teacher = 2e-3;
	p->lr_student = 2e-3;
	/* Deviation: the released 5e-5 suits networks warm-started over many rounds; ours are trained
	 * afresh from the history at every call, and 1e-3 fits in the same epochs. */
	p->lr_npn = 1e-3;
	p->weight_decay = 0.01;
	p->mc_passes = 10;
	p->batch = 1;
}

void
surrogate_init(struct surrogate *s, int d1, int d2, const struct surrogate_params *p, uint64_t seed)
{
	memset(s, 0, sizeof *s);
	if (d1 < 0 || d1 > SG_MAXD || d2 < 0 || d2 > SG_MAXD)
		die("surrogate: input widths %d and %d outside 0..%d", d1, d2, SG_MAXD);
	s->d1 = d1;
	s->d2 = d2;
	if (p)
		s->par = *p;
	else
		surrogate_defaults(&s->par);
	rng_seed(&s->rng, seed);
	build(&s->teacher, 0, d1, d2);
	build(&s->student, 1, d1, d2);
	build(&s->npn, 2, d1, d2);
	init_net(&s->teacher, &s->rng);
	init_net(&s->student, &s->rng);
	init_net(&s->npn, &s->rng);
	refresh(&s->npn);
}

static void
release_net(struct sg_net *n)
{
	free(n->p);
	free(n->g);
	free(n->m);
	free(n->v);
	free(n->vs);
	free(n->sg);
}

void
surrogate_release(struct surrogate *s)
{
	release_net(&s->teacher);
	release_net(&s->student);
	release_net(&s->npn);
}

/* ---- passes ---- */

/* Forward through chain c from cache->a[c][0] (and s[c][0] for the NPN). */
static void
chain_forward(const struct sg_net *net, int c, struct cache *k, int train, struct rng *r)
{
	const double *p = net->p;

	for (int i = 0; i < net->nl[c]; i++) {
		const struct sg_layer *L = &net->L[c][i];
		const double *a = k->a[c][i], *as = k->s[c][i];
		double *z = k->z[c][i], *zs = k->zs[c][i], *o = k->a[c][i + 1], *os = k->s[c][i + 1];
		for (int j = 0; j < L->out; j++) {
			z[j] = p[L->b + j];
			if (net->npn)
				zs[j] = net->vs[L->bs + j];
		}
		for (int q = 0; q < L->in; q++) {
			const double *w = p + L->w + q * L->out;
			double aq = a[q];
#pragma omp simd
			for (int j = 0; j < L->out; j++)
				z[j] += aq * w[j];
			if (net->npn) {
				const double *vw = net->vs + L->ws + q * L->out;
				double sq = as[q], a2 = aq * aq;
				for (int j = 0; j < L->out; j++) {
					double vs = vw[j];
					zs[j] += sq * (vs + w[j] * w[j]) + a2 * vs;
				}
			}
		}
		for (int j = 0; j < L->out; j++) {
			switch (L->act) {
			case ACT_SOFTPLUS:
				o[j] = softplus_t(z[j]);
				break;
			case ACT_SIGMOID:
				o[j] = sigm(z[j]);
				break;
			case ACT_NPN_RELU:
				npn_relu(z[j], zs[j], &o[j], &os[j], NULL);
				break;
			case ACT_NPN_SIGMOID:
				npn_sigmoid(z[j], zs[j], &o[j], &os[j], NULL);
				break;
			default:
				o[j] = z[j];
			}
			k->mask[c][i][j] = 1;
			if (L->drop && train) {
				k->mask[c][i][j] = rng_uniform(r) < KEEP ? 1 / KEEP : 0;
				o[j] *= k->mask[c][i][j];
			}
		}
	}
}

/* Whole network at x = (x1, x2); returns the output (the mean for the NPN, variance into *var). */
static double
net_forward(const struct sg_net *net, int d1, const double *x, struct cache *k, int train, struct rng *r)
{
	int d2 = net->L[1][0].in;

	memcpy(k->a[0][0], x, sizeof *x * (size_t)d1);
	memcpy(k->a[1][0], x + d1, sizeof *x * (size_t)d2);
	memset(k->s[0][0], 0, sizeof *x * (size_t)d1);
	memset(k->s[1][0], 0, sizeof *x * (size_t)d2);
	chain_forward(net, 0, k, train, r);
	chain_forward(net, 1, k, train, r);
	memcpy(k->a[2][0], k->a[0][net->nl[0]], 32 * sizeof(double));
	memcpy(k->a[2][0] + 32, k->a[1][net->nl[1]], 32 * sizeof(double));
	memcpy(k->s[2][0], k->s[0][net->nl[0]], 32 * sizeof(double));
	memcpy(k->s[2][0] + 32, k->s[1][net->nl[1]], 32 * sizeof(double));
	chain_forward(net, 2, k, train, r);
	return k->a[2][net->nl[2]][0];
}

/*
 * Backward through chain c: gm (and gs) hold the gradient of the chain's output; on return they hold
 * the gradient of its input. Parameter gradients are added into g when g is not NULL.
 */
static void
chain_backward(const struct sg_net *net, int c, const struct cache *k, double *gm, double *gs, double *g)
{
	const double *p = net->p;

	for (int i = net->nl[c] - 1; i >= 0; i--) {
		const struct sg_layer *L = &net->L[c][i];
		const double *a = k->a[c][i], *as = k->s[c][i], *z = k->z[c][i], *zs = k->zs[c][i];
		const double *o = k->a[c][i + 1];
		double dz[SG_W], dzs[SG_W], na[SG_MAXD], ns[SG_MAXD];
		for (int j = 0; j < L->out; j++) {
			double d[4], om, os, u = gm[j] * k->mask[c][i][j];
			switch (L->act) {
			case ACT_SOFTPLUS:
				dz[j] = u * (z[j] > 20 ? 1 : sigm(z[j]));
				break;
			case ACT_SIGMOID:
				dz[j] = u * o[j] * (1 - o[j]);
				break;
			case ACT_NPN_RELU:
			case ACT_NPN_SIGMOID:
				(L->act == ACT_NPN_RELU ? npn_relu : npn_sigmoid)(z[j], zs[j], &om, &os, d);
				dz[j] = gm[j] * d[0] + gs[j] * d[2];
				dzs[j] = gm[j] * d[1] + gs[j] * d[3];
				if (L->act == ACT_NPN_RELU && zs[j] <= 1e-12)
					dzs[j] = 0; /* the floor is flat */
				break;
			default:
				dz[j] = u;
			}
		}
		for (int q = 0; q < L->in; q++) {
			const double *w = p + L->w + q * L->out;
			double sm = 0, ss = 0, sw = 0;
			if (!net->npn) {
				for (int j = 0; j < L->out; j++)
					sm += w[j] * dz[j];
				na[q] = sm;
				if (g)
					for (int j = 0; j < L->out; j++)
						g[L->w + q * L->out + j] += a[q] * dz[j];
				continue;
			}
			const double *vw = net->vs + L->ws + q * L->out, *sw_ = net->sg + L->ws + q * L->out;
			for (int j = 0; j < L->out; j++) {
				double vs = vw[j];
				sm += w[j] * dz[j];
				sw += vs * dzs[j];
				ss += (vs + w[j] * w[j]) * dzs[j];
				if (g) {
					g[L->w + q * L->out + j] += a[q] * dz[j] + 2 * w[j] * as[q] * dzs[j];
					g[L->ws + q * L->out + j] += (as[q] + a[q] * a[q]) * dzs[j] * sw_[j];
				}
			}
			na[q] = sm + 2 * a[q] * sw;
			ns[q] = ss;
		}
		if (g)
			for (int j = 0; j < L->out; j++) {
				g[L->b + j] += dz[j];
				if (net->npn)
					g[L->bs + j] += dzs[j] * net->sg[L->bs + j];
			}
		memcpy(gm, na, sizeof *na * (size_t)L->in);
		if (net->npn)
			memcpy(gs, ns, sizeof *ns * (size_t)L->in);
	}
}

/* Backward of the whole network from output seeds (dm, ds): parameter gradients added into g (or
 * not), input gradient into dx (or not). */
static void
net_backward(const struct sg_net *net, int d1, const struct cache *k, double dm, double ds, double *g,
             double *dx)
{
	double gm[3][SG_MAXD] = {{0}}, gs[3][SG_MAXD] = {{0}};
	int d2 = net->L[1][0].in;

	gm[2][0] = dm;
	gs[2][0] = ds;
	chain_backward(net, 2, k, gm[2], gs[2], g);
	for (int c = 0; c < 2; c++) {
		memcpy(gm[c], gm[2] + 32 * c, 32 * sizeof(double));
		memcpy(gs[c], gs[2] + 32 * c, 32 * sizeof(double));
		chain_backward(net, c, k, gm[c], gs[c], g);
	}
	if (dx) {
		memcpy(dx, gm[0], sizeof *dx * (size_t)d1);
		memcpy(dx + d1, gm[1], sizeof *dx * (size_t)d2);
	}
}

double
sg_forward_out(struct sg_net *net, int d1, const double *x, int train, struct rng *rng, double *var)
{
	struct cache *k = emalloc(sizeof *k);
	double out;

	refresh(net);
	out = net_forward(net, d1, x, k, train, rng);
	if (var)
		*var = k->s[2][net->nl[2]][0];
	free(k);
	return out;
}

double
sg_param_grad(struct sg_net *net, int d1, const double *x, double y, int train, struct rng *rng)
{
	struct cache *k = emalloc(sizeof *k);
	double out, loss, dm, ds = 0;

	refresh(net);
	out = net_forward(net, d1, x, k, train, rng);
	if (net->npn) {
		loss = npn_loss(out, k->s[2][net->nl[2]][0], y, &dm, &ds);
	} else {
		loss = (out - y) * (out - y);
		dm = 2 * (out - y);
	}
	memset(net->g, 0, sizeof *net->g * (size_t)net->np);
	net_backward(net, d1, k, dm, ds, net->g, NULL);
	free(k);
	return loss;
}

/* ---- training ---- */

static void
adamw_step(struct sg_net *n, double lr, double wd)
{
	double b1 = 0.9, b2 = 0.999, step, isc2, decay = 1 - lr * wd;
	double *restrict p = n->p, *restrict m = n->m, *restrict v = n->v;
	const double *restrict g = n->g;

	n->t++;
	step = lr / (1 - pow(b1, (double)n->t));
	isc2 = 1 / sqrt(1 - pow(b2, (double)n->t));
#pragma omp simd
	for (int i = 0; i < n->np; i++) {
		m[i] = b1 * m[i] + (1 - b1) * g[i];
		v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
		p[i] = p[i] * decay - step * m[i] / (sqrt(v[i]) * isc2 + 1e-8);
	}
}

static void
sgd_step(struct sg_net *n, double lr)
{
	n->t++;
	for (int i = 0; i < n->np; i++)
		n->p[i] -= lr * n->g[i];
}

/* MC-dropout deviation of the teacher at x: the student's target. */
static double
mc_std(struct surrogate *s, const double *x, struct cache *k)
{
	double f[64], mean = 0, ss = 0;
	int T = s->par.mc_passes < 2 ? 2 : s->par.mc_passes > 64 ? 64 : s->par.mc_passes;

	for (int t = 0; t < T; t++) {
		f[t] = net_forward(&s->teacher, s->d1, x, k, 1, &s->rng);
		mean += f[t];
	}
	mean /= T;
	for (int t = 0; t < T; t++)
		ss += (f[t] - mean) * (f[t] - mean);
	return sqrt(ss / (T - 1));
}

/* One sample's loss; with grad, its gradient is added into the network's (the caller steps). */
static double
sample_loss(struct surrogate *s, int which, const double *x, double y, int grad, struct cache *k)
{
	struct sg_net *n = which == 0 ? &s->teacher : which == 1 ? &s->student : &s->npn;
	double out, loss, dm, ds = 0;

	if (which == 1)
		y = mc_std(s, x, k);
	/* the teacher stays in its training state during its own validation, as released */
	out = net_forward(n, s->d1, x, k, which == 0, &s->rng);
	if (which == 2) {
		loss = npn_loss(out, k->s[2][n->nl[2]][0], y, &dm, &ds);
	} else {
		loss = (out - y) * (out - y);
		dm = 2 * (out - y);
	}
	if (grad)
		net_backward(n, s->d1, k, dm, ds, n->g, NULL);
	return loss;
}

/* The optimiser step on the mean gradient of b samples. */
static void
net_step(struct surrogate *s, int which, int b)
{
	struct sg_net *n = which == 0 ? &s->teacher : which == 1 ? &s->student : &s->npn;

	if (b > 1)
		for (int i = 0; i < n->np; i++)
			n->g[i] /= b;
	if (which == 0)
		adamw_step(n, s->par.lr_teacher, s->par.weight_decay);
	else if (which == 1)
		sgd_step(n, s->par.lr_student);
	else
		adamw_step(n, s->par.lr_npn, s->par.weight_decay);
	refresh(n);
	memset(n->g, 0, sizeof *n->g * (size_t)n->np);
}

/* Stop after epoch E when none of the last seven comparisons of validation losses decreased. */
static int
early_stop(const double *v, int E)
{
	if (E < 11)
		return 0;
	for (int e = E - 7; e < E; e++)
		if (v[e] < v[e - 1])
			return 0;
	return 1;
}

void
surrogate_train(struct surrogate *s, const double *x, const double *y, int n)
{
	int d = s->d1 + s->d2, ntr = (int)(0.8 * n);
	size_t *perm = emalloc(sizeof *perm * (size_t)(n > 0 ? n : 1));
	double *val = emalloc(sizeof *val * (size_t)(s->par.epochs + 1));
	struct cache *k = emalloc(sizeof *k);

	if (n < 2)
		die("surrogate: training needs at least 2 samples, got %d", n);
	for (int which = 0; which < 3; which++) {
		struct sg_net *net = which == 0 ? &s->teacher : which == 1 ? &s->student : &s->npn;
		int E = 0, B = s->par.batch < 1 ? 1 : s->par.batch;
		memset(net->g, 0, sizeof *net->g * (size_t)net->np);
		while (E < s->par.epochs) {
			double vl = 0;
			int inb = 0;
			rng_permutation(&s->rng, perm, (size_t)n);
			for (int i = 0; i < n; i++) {
				const double *xi = x + (size_t)perm[i] * (size_t)d;
				double l = sample_loss(s, which, xi, y[perm[i]], i < ntr, k);
				if (i >= ntr)
					vl += l;
				else if (++inb == B || i == ntr - 1) {
					net_step(s, which, inb);
					inb = 0;
				}
			}
			val[E++] = vl / (n - ntr);
			if (early_stop(val, E))
				break;
		}
		s->epochs_run[which] = E;
	}
	free(k);
	free(val);
	free(perm);
}

void
surrogate_predict(const struct surrogate *s, const double *x, double *mu, double *sep, double *sal)
{
	struct cache *k = emalloc(sizeof *k);
	double m = net_forward(&s->npn, s->d1, x, k, 0, NULL);

	if (mu)
		*mu = m;
	if (sal)
		*sal = k->s[2][s->npn.nl[2]][0];
	if (sep)
		*sep = net_forward(&s->student, s->d1, x, k, 0, NULL);
	free(k);
}

double
surrogate_combo(const struct surrogate *s, const double *x, double c_mu, double c_ep, double c_al,
                double *grad)
{
	struct cache *k = emalloc(sizeof *k);
	int d = s->d1 + s->d2;
	double m = net_forward(&s->npn, s->d1, x, k, 0, NULL), v = k->s[2][s->npn.nl[2]][0], ep = 0,
	       dx[2 * SG_MAXD];

	if (grad) {
		net_backward(&s->npn, s->d1, k, c_mu, c_al, NULL, grad);
	}
	if (c_ep != 0) {
		ep = net_forward(&s->student, s->d1, x, k, 0, NULL);
		if (grad) {
			net_backward(&s->student, s->d1, k, c_ep, 0, NULL, dx);
			for (int i = 0; i < d; i++)
				grad[i] += dx[i];
		}
	}
	free(k);
	return c_mu * m + c_ep * ep + c_al * v;
}

/* ---- GOBI ---- */

int
gobi(double *x, int d, acq_fn acq, void *ctx, struct rng *rng)
{
	double *g = emalloc(sizeof *g * (size_t)(5 * d + 1)), *gp = g + d, *gq = gp + d, *m = gq + d,
	       *u = m + d;
	double *xv = emalloc(sizeof *xv * (size_t)(d + 1)), zprev = 100, h = 1e-4;
	int t, same = 0;

	memset(m, 0, sizeof *m * (size_t)d);
	memset(u, 0, sizeof *u * (size_t)d);
	for (t = 0; t < 200; t++) {
		double z = acq(ctx, x, g), eta = 0.25 * (1 + cos(M_PI * t / 2));
		double c1 = 1 - pow(0.9, t + 1), c2 = 1 - pow(0.999, t + 1);
		/* Hessian-vector product with a Rademacher vector, by central differences of the gradient */
		for (int i = 0; i < d; i++)
			xv[i] = (rng_next(rng) >> 63) ? 1 : -1;
		for (int i = 0; i < d; i++)
			gp[i] = x[i] + h * xv[i];
		acq(ctx, gp, gq);
		for (int i = 0; i < d; i++)
			gp[i] = x[i] - h * xv[i];
		memcpy(xv, gq, sizeof *xv * (size_t)d);
		acq(ctx, gp, gq);
		for (int i = 0; i < d; i++) {
			double D = fabs((xv[i] - gq[i]) / (2 * h));
			m[i] = 0.9 * m[i] + 0.1 * g[i];
			u[i] = 0.999 * u[i] + 0.001 * D * D;
			x[i] -= eta * (m[i] / c1) / (sqrt(u[i] / c2) + 1e-4);
			x[i] = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
		}
		same = fabs(z - zprev) < 1e-5 ? same + 1 : 0;
		if (same > 5) {
			t++;
			break;
		}
		zprev = z;
	}
	free(xv);
	free(g);
	return t;
}
