/*
 * flexibert_test.c: the whole model of lib/flexibert.c: parameter counts against the formulas of
 * flexibert-ops.md section 13 (with the absolute position table instead of the relative one), the
 * gradient of the loss against central finite differences for a tiny model of each head type and for
 * mixed models of both objectives (with and without dropout), and the invariants the trainer relies on.
 *
 * The finite differences run on parameters drawn at a larger scale than the training init (N(0, 0.2^2)),
 * so that gradients stand well above fp32 rounding: a gradient passes when a directional derivative
 * along a random direction agrees within 2e-3 relative (+1e-4) with a Richardson-extrapolated central
 * difference, and when sampled single elements of every tensor agree within 2e-2 of that tensor's
 * largest gradient plus 5e-3 (a central difference of an fp32 loss carries about 1e-4 of noise).
 *
 * Prints TAP; exits 1 on any failure.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flexibert.h"
#include "rng.h"
#include "tap.h"
#include "util.h"

static struct rng R;

static struct model_layer
layer(int h, int n, const char *ops, int nff, int f0, int f1)
{
	struct model_layer L = {0};
	L.h = h, L.n = n, L.d = h / n, L.nff = nff, L.ff[0] = f0, L.ff[1] = f1;
	for (int j = 0; j < n; j++)
		L.op[j] = (unsigned char)(ops[j] - '0');
	return L;
}

static size_t
expected_params(const struct fb_config *c)
{
	const struct model *m = &c->m;
	size_t h0 = (size_t)m->layer[0].h, hL = (size_t)m->layer[m->l - 1].h, V = (size_t)c->vocab, n;
	static const int taps[OP_COUNT] = {0, 0, 0, 0, 5, 9, 13};

	n = V * h0 + (size_t)c->max_pos * h0 + h0 + 2 * h0;
	for (int l = 0; l < m->l; l++) {
		const struct model_layer *L = &m->layer[l];
		size_t h = (size_t)L->h, d = (size_t)L->d, A = (size_t)L->n * d, fin = h;
		n += 3 * (h * A + A) + A * h + h + 2 * h;
		for (int j = 0; j < L->n; j++) {
			size_t k = (size_t)taps[L->op[j]];
			if (L->op[j] == OP_SA_WMA)
				n += d * d;
			if (k)
				n += 2 * d * d + 2 * k * d + 2 * d + k;
		}
		for (int i = 0; i < L->nff; i++) {
			n += fin * (size_t)L->ff[i] + (size_t)L->ff[i];
			fin = (size_t)L->ff[i];
		}
		n += fin * h + h + 2 * h;
		if (l + 1 < m->l && m->layer[l + 1].h != L->h)
			n += h * (size_t)m->layer[l + 1].h + (size_t)m->layer[l + 1].h;
	}
	if (c->objective == FB_CLS)
		return n + hL * hL + hL + (size_t)c->labels * hL + (size_t)c->labels;
	return n + hL * hL + hL + 2 * hL + V * hL + V;
}

struct batch {
	int B, T;
	int32_t ids[64], labels[64];
};

static double
loss_at(struct flexibert *fb, const struct batch *b, int training)
{
	return flexibert_forward(fb, b->ids, b->labels, b->B, b->T, training, 99);
}

/* Fill the parameters at the test scale, keeping the [PAD] row zero. */
static void
scramble(struct flexibert *fb)
{
	for (int i = 0; i < fb->np; i++) {
		const struct fb_param *p = &fb->p[i];
		int ln = strstr(p->name, "LayerNorm.weight") != NULL;
		for (size_t j = 0; j < p->n; j++)
			fb->params[p->off + j] = (float)((ln ? 1 : 0) + (ln ? 0.1 : 0.2) * rng_normal(&R));
	}
	memset(fb->params + fb->wte, 0, sizeof(float) * (size_t)fb->cfg.m.layer[0].h);
}

static void
make_batch(struct batch *b, const struct fb_config *c, int B, int T)
{
	b->B = B, b->T = T;
	for (int i = 0; i < B * T; i++) {
		int t = i % T, len = T - (i / T) * 2; /* row r has T - 2r real tokens */
		b->ids[i] = t < len ? 1 + (int)rng_below(&R, (uint64_t)c->vocab - 1) : 0;
		b->labels[i] = -100;
	}
	if (c->objective == FB_CLS)
		for (int i = 0; i < B; i++)
			b->labels[i] = (int)rng_below(&R, (uint64_t)c->labels);
	else
		for (int i = 0; i < B * T; i++)
			if (b->ids[i] && rng_below(&R, 3) == 0)
				b->labels[i] = 1 + (int)rng_below(&R, (uint64_t)c->vocab - 1);
}

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* The gradient of the loss at the batch, against finite differences; training applies dropout. */
static void
check_gradients(const char *what, const struct fb_config *cfg, int training)
{
	struct flexibert fb;
	struct tc_error err;
	struct batch b;
	double *u, gu = 0, fd, eps = 1e-3, worst = 0, lp, lm;
	int np;

	if (flexibert_init(&fb, cfg, 5, &err) < 0) {
		check(0, "%s: init: %s", what, err.msg);
		return;
	}
	scramble(&fb);
	make_batch(&b, cfg, 3, 7);
	if (cfg->dynaprop) {
		/* tau_act in the widest gap between the magnitudes at the pruning points (all of them
		 * are sampled at this size) in their lower half, so that the finite differences move no
		 * element across it. Pruning at tau moves the magnitudes after the first point, so tau is
		 * sought again from the magnitudes sampled under it, until none lies near it. */
		float *v, gap = 0, tau = 0, near = 0;
		size_t n = 0;
		for (int it = 0; it < 10; it++) {
			float t = 0;
			flexibert_prune_uniform(&fb, tau, 0, 0);
			flexibert_prune_reset(&fb);
			fb.prune.sample = 1, fb.prune.count = 1;
			loss_at(&fb, &b, training);
			fb.prune.sample = 0, fb.prune.count = 0;
			n = fb.prune.nsamp[FB_SP_ACT];
			v = fb.prune.samp[FB_SP_ACT];
			qsort(v, n, sizeof *v, cmp_float);
			near = INFINITY;
			for (size_t i = 0; i < n; i++)
				near = fminf(near, fabsf(v[i] - tau));
			if (it > 0 && near > 5e-4f)
				break;
			gap = 0;
			for (size_t i = n / 10; i < n / 2; i++)
				if (v[i + 1] - v[i] > gap) {
					gap = v[i + 1] - v[i];
					t = (v[i] + v[i + 1]) / 2;
				}
			tau = t;
		}
		flexibert_prune_reset(&fb);
		eps = 1e-4; /* a tenth of the gap or less */
		check(tau > 0 && near > 5e-4f,
		      "%s: tau_act %.4f lies %.1e from the nearest of the %zu magnitudes at the pruning "
		      "points, "
		      "sampled under it",
		      what, tau, near, n);
	}
	check(fb.nparams == expected_params(cfg), "%s: %zu parameters, as the formulas count", what,
	      fb.nparams);
	loss_at(&fb, &b, training);
	check((uintptr_t)fb.params % 64 == 0 && (uintptr_t)fb.grads % 64 == 0 && (uintptr_t)fb.m % 64 == 0 &&
	          (uintptr_t)fb.v % 64 == 0,
	      "%s: parameters, gradients and moments start on cache lines", what);
	flexibert_zero_grad(&fb);
	flexibert_backward(&fb);
	/* a directional derivative along a random direction (the [PAD] row held fixed) */
	u = emalloc(sizeof *u * fb.nparams);
	for (size_t i = 0; i < fb.nparams; i++)
		u[i] = rng_normal(&R);
	for (int c = 0; c < cfg->m.layer[0].h; c++)
		u[fb.wte + (size_t)c] = 0;
	for (size_t i = 0; i < fb.nparams; i++)
		gu += u[i] * fb.grads[i];
	{
		/* Richardson: (4 D(e/2) - D(e)) / 3 cancels the e^2 term of the central difference */
		float *p0 = emalloc(sizeof *p0 * fb.nparams);
		double d[2];
		memcpy(p0, fb.params, sizeof *p0 * fb.nparams);
		for (int k = 0; k < 2; k++) {
			double e = k ? 5e-4 : 1e-3;
			for (size_t i = 0; i < fb.nparams; i++)
				fb.params[i] = (float)(p0[i] + e * u[i]);
			lp = loss_at(&fb, &b, training);
			for (size_t i = 0; i < fb.nparams; i++)
				fb.params[i] = (float)(p0[i] - e * u[i]);
			lm = loss_at(&fb, &b, training);
			d[k] = (lp - lm) / (2 * e);
		}
		memcpy(fb.params, p0, sizeof *p0 * fb.nparams);
		fd = (4 * d[1] - d[0]) / 3;
		free(p0);
	}
	/* (a step along every parameter at once moves some pruned element across its threshold) */
	if (!cfg->dynaprop)
		check(fabs(fd - gu) < 2e-3 * fabs(gu) + 1e-4,
		      "%s: the directional derivative matches finite differences (%.6g vs %.6g)", what, gu,
		      fd);
	/* sampled elements of every tensor */
	np = 0;
	for (int i = 0; i < fb.np; i++) {
		const struct fb_param *p = &fb.p[i];
		double gmax = 1e-9;
		for (size_t j = 0; j < p->n; j++)
			gmax = fabs(fb.grads[p->off + j]) > gmax ? fabs(fb.grads[p->off + j]) : gmax;
		for (int s = 0; s < 3; s++) {
			size_t j = (size_t)rng_below(&R, p->n), k = p->off + j;
			float x0 = fb.params[k];
			if (i == 0 && j < (size_t)cfg->m.layer[0].h)
				continue;
			fb.params[k] = x0 + (float)eps;
			lp = loss_at(&fb, &b, training);
			fb.params[k] = x0 - (float)eps;
			lm = loss_at(&fb, &b, training);
			fb.params[k] = x0;
			fd = (lp - lm) / (2 * eps);
			/* rounding in an fp32 loss puts about 1e-4 of noise in a difference at a step
			 * of 1e-3 (up to 1.1e-4 seen where the gradient is 0: an SA head's key bias,
			 * to which softmax is blind), and ten times that at 1e-4: allowed 2e-4 */
			if (fabs(fd - fb.grads[k]) / (gmax + 1e-5 / eps) > worst) {
				worst = fabs(fd - fb.grads[k]) / (gmax + 1e-5 / eps);
				if (worst > 2e-2)
					printf("# %s: %s[%zu]: gradient %.6g, finite difference %.6g\n", what,
					       p->name, j, fb.grads[k], fd);
			}
			np++;
		}
	}
	check(worst < 2e-2, "%s: %d sampled elements match finite differences (worst %.1e)", what, np, worst);
	free(u);
	flexibert_release(&fb);
}

static void
test_each_head_type(void)
{
	static const char *names[OP_COUNT] = {"sa_sdp", "sa_wma", "l_dft", "l_dct", "c_5", "c_9", "c_13"};

	for (int op = 0; op < OP_COUNT; op++) {
		struct fb_config c = {0};
		char ops[3] = {(char)('0' + op), (char)('0' + op), 0}, what[64];
		c.m.l = 1;
		c.m.layer[0] = layer(16, 2, ops, 1, 24, 0);
		c.vocab = 20, c.labels = 3, c.max_pos = 8, c.objective = FB_CLS;
		snprintf(what, sizeof what, "one layer of %s heads", names[op]);
		check_gradients(what, &c, 0);
	}
}

static void
test_mixed(void)
{
	struct fb_config c = {0};

	c.m.l = 2;
	c.m.layer[0] = layer(24, 4, "0123", 2, 20, 16);
	c.m.layer[1] = layer(18, 3, "456", 1, 12, 0);
	c.vocab = 30, c.labels = 4, c.max_pos = 8, c.objective = FB_CLS;
	check_gradients("a mixed classifier with a projection", &c, 0);
	c.dropout = 0.2f;
	check_gradients("the same with dropout 0.2 (fixed masks)", &c, 1);
	c.objective = FB_MLM;
	c.dropout = 0;
	c.m.layer[1] = layer(24, 4, "6501", 1, 12, 0);
	check_gradients("a mixed masked LM", &c, 0);
	/* a last layer of SA heads alone: its queries projected at the live rows alone */
	c.m.layer[1] = layer(24, 4, "0110", 1, 12, 0);
	check_gradients("a masked LM whose last layer is SA heads alone (sdp and wma)", &c, 0);
	c.objective = FB_CLS;
	check_gradients("the same as a classifier", &c, 0);
	c.dropout = 0.2f;
	check_gradients("the same with dropout 0.2 (fixed masks)", &c, 1);
}

/* On one thread the products' one pass runs at any number of rows, and with it the LayerNorms on
 * their rows as they come (matmul_backward_ln): each layer's attention sub-layer's after the FF
 * stack's first dense, and the embeddings' (and their dropout) after the first layer's queries',
 * keys' and values' products. */
static void
test_one_thread(void)
{
	struct fb_config c = {0};
	int mt = omp_get_max_threads();

	c.m.l = 2;
	c.m.layer[0] = layer(24, 4, "0101", 2, 20, 16);
	c.m.layer[1] = layer(24, 4, "0110", 1, 12, 0);
	c.vocab = 30, c.labels = 4, c.max_pos = 8, c.objective = FB_CLS, c.dropout = 0.2f;
	omp_set_num_threads(1);
	check_gradients("SA heads on 1 thread, dropout 0.2 (fixed masks)", &c, 1);
	c.dropout = 0;
	check_gradients("SA heads on 1 thread", &c, 0);
	omp_set_num_threads(mt);
}

/* Training never moves the [PAD] row; the same seed gives the same parameters and losses. */
static void
test_invariants(void)
{
	struct fb_config c = {0};
	struct flexibert a, b;
	struct tc_error err;
	struct batch bt;
	double la[5], lb[5];
	int pad_zero = 1, same = 1;

	c.m.l = 2;
	c.m.layer[0] = layer(16, 2, "06", 1, 24, 0);
	c.m.layer[1] = layer(16, 2, "23", 1, 24, 0);
	c.vocab = 20, c.labels = 3, c.max_pos = 8, c.objective = FB_CLS, c.dropout = 0.1f;
	flexibert_init(&a, &c, 7, &err);
	flexibert_init(&b, &c, 7, &err);
	make_batch(&bt, &c, 3, 7);
	for (int s = 0; s < 5; s++) {
		la[s] = flexibert_forward(&a, bt.ids, bt.labels, 3, 7, 1, (uint64_t)s);
		flexibert_zero_grad(&a);
		flexibert_backward(&a);
		flexibert_clip(&a, 1.0);
		flexibert_adamw(&a, flexibert_lr(1e-2, s, 2, 5), 0.01);
		lb[s] = flexibert_forward(&b, bt.ids, bt.labels, 3, 7, 1, (uint64_t)s);
		flexibert_zero_grad(&b);
		flexibert_backward(&b);
		flexibert_clip(&b, 1.0);
		flexibert_adamw(&b, flexibert_lr(1e-2, s, 2, 5), 0.01);
		same &= la[s] == lb[s];
	}
	for (int i = 0; i < 16; i++)
		pad_zero &= a.params[a.wte + (size_t)i] == 0;
	same &= memcmp(a.params, b.params, sizeof(float) * a.nparams) == 0;
	check(pad_zero, "the [PAD] row stays zero through AdamW with weight decay");
	check(same, "the same seed and batches give bit-identical losses and parameters");
	check(la[4] < la[0], "five steps on one batch lower its loss (%.4f -> %.4f)", la[0], la[4]);
	flexibert_release(&a);
	flexibert_release(&b);
}

/* The token embeddings' deferred updates: a model that defers them and one that updates every row
 * at every step (flexibert_set_eager) give the same losses, in training and in evaluation between
 * steps, and after flexibert_sync the same parameters and moments, bit for bit; with DynaProp, the
 * same weight-gradient zero counts. Batches of 12 tokens from a vocabulary of 200 leave most rows
 * without a gradient at most steps. */
static void
test_lazy(int dynaprop)
{
	struct fb_config c = {0};
	struct flexibert a, b;
	struct tc_error err;
	struct batch bt, ev;
	int same_loss = 1, stale = 0, same = 1, cleared = 1;

	c.m.l = 2;
	c.m.layer[0] = layer(16, 2, "06", 1, 24, 0);
	c.m.layer[1] = layer(16, 2, "23", 1, 24, 0);
	c.vocab = 200, c.labels = 3, c.max_pos = 8, c.objective = FB_CLS, c.dropout = 0.1f;
	c.dynaprop = dynaprop;
	flexibert_init(&a, &c, 5, &err);
	flexibert_init(&b, &c, 5, &err);
	flexibert_set_eager(&b, 1);
	if (dynaprop) {
		flexibert_prune_uniform(&a, 0.01f, 0.001f, 0.002f);
		flexibert_prune_uniform(&b, 0.01f, 0.001f, 0.002f);
	}
	for (int s = 0; s < 60; s++) {
		double la, lb, na, nb;
		make_batch(&bt, &c, 2, 6);
		la = flexibert_forward(&a, bt.ids, bt.labels, 2, 6, 1, (uint64_t)s);
		flexibert_zero_grad(&a);
		flexibert_backward(&a);
		na = flexibert_clip(&a, 0.5);
		flexibert_adamw(&a, flexibert_lr(3e-2, s, 5, 60), 0.05);
		lb = flexibert_forward(&b, bt.ids, bt.labels, 2, 6, 1, (uint64_t)s);
		flexibert_zero_grad(&b);
		flexibert_backward(&b);
		nb = flexibert_clip(&b, 0.5);
		flexibert_adamw(&b, flexibert_lr(3e-2, s, 5, 60), 0.05);
		same_loss &= la == lb && na == nb;
		for (size_t i = 0; i < a.nparams; i++) /* AdamW leaves them 0 for the next step */
			cleared &= a.grads[i] == 0 && b.grads[i] == 0;
		if (s % 7 == 3) { /* an evaluation between steps reads rows that missed updates */
			make_batch(&ev, &c, 3, 7);
			same_loss &= loss_at(&a, &ev, 0) == loss_at(&b, &ev, 0);
		}
		if (s == 30)
			flexibert_sync(&a);
	}
	for (size_t i = a.wte; i < a.wte + (size_t)c.vocab * 16; i++)
		stale += a.params[i] != b.params[i];
	flexibert_sync(&a);
	same &= memcmp(a.params, b.params, sizeof(float) * a.nparams) == 0;
	same &= memcmp(a.m, b.m, sizeof(float) * a.nparams) == 0;
	same &= memcmp(a.v, b.v, sizeof(float) * a.nparams) == 0;
	if (dynaprop)
		same &= a.prune.zeros[0][FB_SP_WGRAD] == b.prune.zeros[0][FB_SP_WGRAD] &&
		        a.prune.total[0][FB_SP_WGRAD] == b.prune.total[0][FB_SP_WGRAD] &&
		        a.prune.zeros[0][FB_SP_WGRAD] > 0;
	check(same_loss,
	      "%sdeferred embedding rows: the losses and gradient norms of 60 steps and 9 "
	      "evaluations equal updating every row",
	      dynaprop ? "DynaProp, " : "");
	check(cleared, "%sflexibert_adamw leaves every gradient 0, deferring and not",
	      dynaprop ? "DynaProp, " : "");
	check(stale > 0, "%sbefore flexibert_sync, %d embedding parameters await their updates",
	      dynaprop ? "DynaProp, " : "", stale);
	check(same, "%safter it, parameters and both moments equal updating every row, bit for bit%s",
	      dynaprop ? "DynaProp, " : "", dynaprop ? ", and so do the weight-gradient zero counts" : "");
	flexibert_release(&a);
	flexibert_release(&b);
}

/* Extra padding changes nothing at real positions for SA and conv heads (the LT transforms depend
 * on the padded length by design). */
static void
test_padding(void)
{
	struct fb_config c = {0};
	struct flexibert fb;
	struct tc_error err;
	int32_t ids5[10] = {3, 4, 5, 0, 0, 7, 8, 9, 10, 11}, ids8[16] = {0}, lab[2] = {1, 2};
	float l5[6], l8[6];
	double worst = 0;

	c.m.l = 2;
	c.m.layer[0] = layer(16, 4, "0156", 1, 24, 0);
	c.m.layer[1] = layer(16, 2, "14", 1, 24, 0);
	c.vocab = 20, c.labels = 3, c.max_pos = 8, c.objective = FB_CLS;
	flexibert_init(&fb, &c, 3, &err);
	for (int b = 0; b < 2; b++)
		memcpy(ids8 + b * 8, ids5 + b * 5, sizeof(int32_t) * 5);
	flexibert_forward(&fb, ids5, lab, 2, 5, 0, 0);
	memcpy(l5, fb.logits, sizeof l5);
	flexibert_forward(&fb, ids8, lab, 2, 8, 0, 0);
	memcpy(l8, fb.logits, sizeof l8);
	for (int i = 0; i < 6; i++)
		worst = fabs(l5[i] - l8[i]) > worst ? fabs(l5[i] - l8[i]) : worst;
	check(worst < 1e-5, "padding a batch further leaves SA and conv models' logits unchanged (%.1e)",
	      worst);
	flexibert_release(&fb);
}

/* One training pass (forward, backward, weight-gradient pruning) at the given thresholds: the
 * loss, the gradients (caller frees) and the counts. */
static double
dynaprop_pass(const struct fb_config *c, const struct batch *bt, float ta, float tg, float tw, float **grads,
              struct fb_prune *counts)
{
	struct flexibert fb;
	struct tc_error err;
	double loss;

	flexibert_init(&fb, c, 7, &err);
	rng_seed(&R, 123); /* the same parameters every pass */
	scramble(&fb);
	flexibert_prune_uniform(&fb, ta, tg, tw);
	loss = flexibert_forward(&fb, bt->ids, bt->labels, bt->B, bt->T, 1, 3);
	flexibert_zero_grad(&fb);
	flexibert_backward(&fb);
	flexibert_clip(&fb, INFINITY); /* prunes weight gradients, scales nothing */
	*grads = emalloc(sizeof(float) * fb.nparams);
	memcpy(*grads, fb.grads, sizeof(float) * fb.nparams);
	if (counts) {
		memcpy(counts, &fb.prune, sizeof *counts);
		for (int k = 0; k < FB_SP_COUNT; k++)
			counts->samp[k] = counts->sampw[k] = NULL, counts->sampp[k] = NULL;
	}
	flexibert_release(&fb);
	return loss;
}

static double
fraction(const struct fb_prune *p, int l, int cls)
{
	return p->total[l][cls] > 0 ? p->zeros[l][cls] / p->total[l][cls] : -1;
}

/* DynaProp: zero thresholds change nothing; thresholds prune what they say; gradients of the pruned
 * model match finite differences of its loss where no element sits near a threshold. */
static void
test_dynaprop(void)
{
	struct fb_config c = {0}, cp;
	struct batch bt;
	struct fb_prune cnt;
	float *g0, *g1, *g2;
	size_t n;
	double l0, l1, worst = 0, prev = -1;
	int zeroed = 1, monotone = 1;

	c.m.l = 2;
	c.m.layer[0] = layer(24, 4, "0123", 2, 20, 16);
	c.m.layer[1] = layer(18, 3, "456", 1, 12, 0);
	c.vocab = 30, c.labels = 4, c.max_pos = 8, c.objective = FB_CLS, c.dropout = 0.2f;
	{
		struct flexibert fb;
		struct tc_error err;
		flexibert_init(&fb, &c, 7, &err);
		n = fb.nparams;
		flexibert_release(&fb);
	}
	make_batch(&bt, &c, 3, 7);
	cp = c;
	cp.dynaprop = 1;
	l0 = dynaprop_pass(&c, &bt, 0, 0, 0, &g0, NULL);
	l1 = dynaprop_pass(&cp, &bt, 0, 0, 0, &g1, &cnt);
	for (size_t i = 0; i < n; i++)
		worst = fabs(g0[i] - g1[i]) > worst ? fabs(g0[i] - g1[i]) : worst;
	check(l0 == l1 && worst < 1e-6,
	      "DynaProp with zero thresholds: the loss and gradients of dense training (loss %.9g vs %.9g, "
	      "gradients within %.1e)",
	      l0, l1, worst);
	/* gradients are zero at padding (attention probabilities, transforms) and masked rows */
	check(fraction(&cnt, 0, FB_SP_ACT) >= 0 && fraction(&cnt, 0, FB_SP_ACT) < 0.05 &&
	          fraction(&cnt, 0, FB_SP_GRAD) >= 0 && fraction(&cnt, 0, FB_SP_GRAD) <= 1,
	      "with zero thresholds only exact zeros count (layer 0: activations %.3f, gradients %.3f)",
	      fraction(&cnt, 0, FB_SP_ACT), fraction(&cnt, 0, FB_SP_GRAD));
	free(g1);
	/* sparsity grows with each threshold; a weight threshold zeroes exactly the small gradients */
	for (int k = 0; k < 4; k++) {
		float tau = k * 0.05f;
		double f;
		dynaprop_pass(&cp, &bt, tau, tau * 0.01f, 0, &g1, &cnt);
		f = fraction(&cnt, 0, FB_SP_ACT) + fraction(&cnt, 1, FB_SP_ACT);
		monotone &= f > prev;
		prev = f;
		free(g1);
	}
	check(monotone, "activation sparsity grows with tau_act (last: %.3f, %.3f of layers 0, 1)",
	      fraction(&cnt, 0, FB_SP_ACT), fraction(&cnt, 1, FB_SP_ACT));
	/* the counts per point add up to those per layer; a threshold at one point prunes there: all
	 * of it above every magnitude, and nothing new at the points before it */
	for (int pt = 0; pt < FB_PT_COUNT; pt++) {
		struct flexibert fb;
		struct tc_error err;
		double zl = 0, zp = 0, nl = 0, np = 0, z0[FB_PT_COUNT];
		int ok = 1;
		for (int pass = 0; pass < 2; pass++) {
			flexibert_init(&fb, &cp, 7, &err);
			rng_seed(&R, 123);
			scramble(&fb);
			flexibert_prune_uniform(&fb, 0, 0, 0);
			fb.prune.tau_act[pt] = pass ? 1e30f : 0.0f;
			flexibert_forward(&fb, bt.ids, bt.labels, bt.B, bt.T, 1, 3);
			flexibert_zero_grad(&fb);
			flexibert_backward(&fb);
			for (int i = 0; i < FB_PT_COUNT && !pass; i++)
				z0[i] = fb.prune.pz[0][i];
			memcpy(&cnt, &fb.prune, sizeof cnt);
			flexibert_release(&fb);
		}
		for (int l = 0; l < cp.m.l; l++)
			for (int k = 0; k < 2; k++)
				zl += cnt.zeros[l][k], nl += cnt.total[l][k];
		for (int i = 0; i < FB_PT_COUNT; i++)
			for (int k = 0; k < 2; k++)
				zp += cnt.pz[k][i], np += cnt.pn[k][i];
		ok &= zl == zp && nl == np && cnt.pz[0][pt] == cnt.pn[0][pt];
		for (int i = 0; i < pt && pt != FB_PT_OUT; i++) /* (out feeds the next layer's points) */
			ok &= cnt.pz[0][i] == z0[i];
		check(ok,
		      "tau_act at %s alone prunes all of it (%.0f of %.0f) and adds no zeros before it; "
		      "%.0f zeros of %.0f by point, %.0f of %.0f by layer",
		      fb_point_name[pt], cnt.pz[0][pt], cnt.pn[0][pt], zp, np, zl, nl);
	}
	dynaprop_pass(&cp, &bt, 0, 0, 0, &g1, NULL);
	dynaprop_pass(&cp, &bt, 0, 0, 1e-3f, &g2, &cnt);
	{
		size_t small = 0;
		for (size_t i = 0; i < n; i++) {
			small += fabsf(g1[i]) <= 1e-3f;
			zeroed &= fabsf(g1[i]) <= 1e-3f ? g2[i] == 0 : g2[i] == g1[i];
		}
		free(g1);
		check(
		    zeroed && cnt.zeros[0][FB_SP_WGRAD] == (double)small &&
		        cnt.total[0][FB_SP_WGRAD] == (double)n,
		    "tau_weight zeroes exactly the %zu weight gradients at most 1e-3 of %zu, and counts them",
		    small, n);
	}
	free(g0);
	free(g2);
	/* the pruned model's gradients (no gradient threshold) against its own finite differences, on
	 * heads whose every pruning point flexibert sees (attention's own are tested in nn_test) */
	cp.dropout = 0;
	cp.m.layer[0] = layer(24, 4, "2345", 2, 20, 16);
	check_gradients("DynaProp (LT and DSC heads, FF stack, projection)", &cp, 0);
}

int
main(void)
{
	rng_seed(&R, 11);
	test_each_head_type();
	test_mixed();
	test_one_thread();
	test_invariants();
	test_lazy(0);
	test_lazy(1);
	test_padding();
	test_dynaprop();
	return tap_done();
}
