/*
 * flexibert.c: the FlexiBERT 2.0 encoder of tests/reference/README.md, its heads, its training step.
 *
 * Sizes: B batch, T tokens, N = B T rows, h a layer's width, A = n d its heads' width, f an FF width,
 * hL the last layer's width, C labels, V vocabulary, M labelled tokens (masked LM).
 *
 * Forward keeps, per layer, the inputs every backward kernel needs (q, k, v, the attention
 * probabilities before dropout, the DSC heads' intermediates, the context, the pre-LayerNorm sums
 * with their statistics, the FF activations and GELU's derivative at their pre-activations, which
 * spares backward every erf and exp); dropout masks are recomputed from their site keys (nn.h).
 * Backward walks the layers in reverse with a fixed set of gradient buffers sized for the widest
 * layer, reused by every layer; each FF activation's buffer takes that activation's gradient.
 */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flexibert.h"
#include "nn.h"
#include "rng.h"
#include "tensor.h"
#include "util.h"

enum { INIT_NORMAL, INIT_ZERO, INIT_ONE, INIT_UNIFORM };

struct fb_lacts {
	float *q, *k, *v, *ctx, *ares, *m1, *r1, *y, *fres, *m2, *r2, *hout, *xnext;
	float *ffout[MODEL_MAX_FF]; /* the FF activations, GELU's outputs; in backward, their gradients */
	float *ffder[MODEL_MAX_FF]; /* their pre-activations, then GELU' at those */
	float *probs[MODEL_MAX_HEADS];
	uint64_t *keep_a, *keep_f; /* DynaProp: which outputs of the attention-output and FF-output dense
	                              layers were kept (the stored sums include the residual) */
	struct dsc_saved dsc[MODEL_MAX_HEADS];
	int tT;                 /* the T the transform matrices are built for, 0 if none */
	float *dft[4], *dct[2]; /* (T, T), (T, T), (D, D), (D, D); (T, T), (D, D) */
};

struct fb_acts {
	int Bcap, Tcap;
	float *mem;
	float *mask;                 /* (N) */
	int32_t *ids;                /* (N) */
	float *eres, *em, *er, *emb; /* embeddings: pre-LN sum, its statistics, the output */
	struct fb_lacts L[MODEL_MAX_LAYERS];
	float *first, *ppre, *pool, *pdrop, *clogits, *cdlogits; /* FB_CLS: (B, hL) x 4, (B, C) x 2 */
	int32_t *clabels;                                        /* (B) */
	float *gx, *gx2, *gh, *gf, *gy; /* backward buffers, (N, widest layer) each */
	/* the heads' gradients, one pool */
	float *gq, *gk, *gv, *gctx;
	float *scratch;
	/* FB_MLM, sized for Mcap labelled tokens */
	size_t Mcap;
	float *mmem, *g, *tpre, *tact, *tln, *tm, *tr, *mlogits, *mdlogits;
	int32_t *rowlab;
	int M;
	uint64_t dropkey;
	int training;
	/* The rows the loss depends on (B first tokens, or the M labelled ones), nlive of them, or
	 * nlive < 0 when every row is wanted. Past the last layer's attention, nothing else is used:
	 * that layer's output dense, LayerNorms and FF stack run on these rows alone, packed. */
	int32_t *live; /* (N) */
	int nlive;
	/* The live rows as attention's query rows (nn_qrows): the last layer's SA heads compute only
	 * these rows' scores, probabilities and contexts; qoff[b] is sequence b's first in live */
	int32_t *qoff; /* (B + 1) */
	int qlive;     /* whether the last layer's SA heads take them (see live_queries) */
	int dead;      /* in the last layer's backward, up to the heads: the rows not computed (N - nlive) */
};

static const int taps_of[OP_COUNT] = {0, 0, 0, 0, 5, 9, 13};

static int
is_sa(int op)
{
	return op == OP_SA_SDP || op == OP_SA_WMA;
}

static int
is_conv(int op)
{
	return op >= OP_C_5;
}

/* ---- the parameter table ---- */

struct builder {
	struct flexibert *fb;
	unsigned char *init; /* per parameter */
	size_t cap;
};

static size_t add(struct builder *bd, int init, int ndim, int s0, int s1, int s2, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static size_t
add(struct builder *bd, int init, int ndim, int s0, int s1, int s2, const char *fmt, ...)
{
	struct flexibert *fb = bd->fb;
	struct fb_param *p;
	va_list ap;
	size_t len;

	fb->p = egrow(fb->p, &bd->cap, (size_t)fb->np + 1, sizeof *fb->p);
	bd->init = erealloc(bd->init, bd->cap);
	p = &fb->p[fb->np];
	memset(p, 0, sizeof *p);
	va_start(ap, fmt);
	vsnprintf(p->name, sizeof p->name, fmt, ap);
	va_end(ap);
	p->ndim = ndim;
	p->shape[0] = s0, p->shape[1] = s1, p->shape[2] = s2;
	p->n = (size_t)s0 * (ndim > 1 ? (size_t)s1 : 1) * (ndim > 2 ? (size_t)s2 : 1);
	p->off = fb->nparams;
	len = strlen(p->name);
	p->decay = (len > 7 && strcmp(p->name + len - 7, ".weight") == 0 && !strstr(p->name, "LayerNorm")) ||
	           init == INIT_UNIFORM;
	bd->init[fb->np] = (unsigned char)init;
	fb->nparams += p->n;
	fb->np++;
	return p->off;
}

static int
check_config(const struct fb_config *cfg, struct tc_error *err)
{
	const struct model *m = &cfg->m;

	if (m->l < 1 || m->l > MODEL_MAX_LAYERS)
		return tc_error_set(err, "model: %d layers (expected 1 to %d)", m->l, MODEL_MAX_LAYERS);
	if (cfg->vocab < 6)
		return tc_error_set(err, "vocabulary of %d tokens (expected at least 6)", cfg->vocab);
	if (cfg->objective == FB_CLS && cfg->labels < 2)
		return tc_error_set(err, "%d labels (expected at least 2)", cfg->labels);
	if (cfg->max_pos < 1)
		return tc_error_set(err, "max_pos %d (expected at least 1)", cfg->max_pos);
	if (!(cfg->dropout >= 0 && cfg->dropout < 1))
		return tc_error_set(err, "dropout %g (expected 0 <= p < 1)", cfg->dropout);
	for (int l = 0; l < m->l; l++) {
		const struct model_layer *L = &m->layer[l];
		if (L->h < 1 || L->n < 1 || L->n > MODEL_MAX_HEADS || L->d < 1 || L->nff < 1 ||
		    L->nff > MODEL_MAX_FF)
			return tc_error_set(err, "model layer %d: h %d, %d heads of %d, FF depth %d", l, L->h,
			                    L->n, L->d, L->nff);
		for (int i = 0; i < L->nff; i++)
			if (L->ff[i] < 1)
				return tc_error_set(err, "model layer %d: FF width %d", l, L->ff[i]);
		for (int j = 0; j < L->n; j++)
			if (L->op[j] >= OP_COUNT)
				return tc_error_set(err, "model layer %d: unknown head op %d", l, L->op[j]);
	}
	return 0;
}

static void
build_table(struct flexibert *fb, struct builder *bd)
{
	const struct fb_config *cfg = &fb->cfg;
	const struct model *m = &cfg->m;
	int h0 = m->layer[0].h, hL = m->layer[m->l - 1].h;

	fb->wte = add(bd, INIT_NORMAL, 2, cfg->vocab, h0, 0, "bert.embeddings.word_embeddings.weight");
	fb->wpe = add(bd, INIT_NORMAL, 2, cfg->max_pos, h0, 0, "bert.embeddings.position_embeddings.weight");
	fb->wtt = add(bd, INIT_NORMAL, 2, 1, h0, 0, "bert.embeddings.token_type_embeddings.weight");
	fb->elnw = add(bd, INIT_ONE, 1, h0, 0, 0, "bert.embeddings.LayerNorm.weight");
	fb->elnb = add(bd, INIT_ZERO, 1, h0, 0, 0, "bert.embeddings.LayerNorm.bias");
	for (int l = 0; l < m->l; l++) {
		const struct model_layer *ml = &m->layer[l];
		struct fb_layer *L = &fb->L[l];
		char pre[64];
		int A = ml->n * ml->d, d = ml->d, nw = 0, nc = 0, fin = ml->h;
		snprintf(pre, sizeof pre, "bert.encoder.layer.%d.", l);
		L->h = ml->h, L->n = ml->n, L->d = d, L->A = A;
		L->hnext = l + 1 < m->l ? m->layer[l + 1].h : ml->h;
		L->proj = L->hnext != ml->h;
		L->wq = add(bd, INIT_NORMAL, 2, A, ml->h, 0, "%sattention.self.query.weight", pre);
		L->bq = add(bd, INIT_ZERO, 1, A, 0, 0, "%sattention.self.query.bias", pre);
		L->wk = add(bd, INIT_NORMAL, 2, A, ml->h, 0, "%sattention.self.key.weight", pre);
		L->bk = add(bd, INIT_ZERO, 1, A, 0, 0, "%sattention.self.key.bias", pre);
		L->wv = add(bd, INIT_NORMAL, 2, A, ml->h, 0, "%sattention.self.value.weight", pre);
		L->bv = add(bd, INIT_ZERO, 1, A, 0, 0, "%sattention.self.value.bias", pre);
		for (int j = 0; j < ml->n; j++)
			if (ml->op[j] == OP_SA_WMA)
				L->wma[j] =
				    add(bd, INIT_UNIFORM, 2, d, d, 0, "%sattention.self.W%d", pre, nw++);
		for (int j = 0; j < ml->n; j++) {
			int k = taps_of[ml->op[j]];
			if (!is_conv(ml->op[j]))
				continue;
			L->cdw[j] = add(bd, INIT_NORMAL, 3, d, 1, k,
			                "%sattention.self.key_conv_attn_layer%d.depthwise.weight", pre, nc);
			L->cpw[j] = add(bd, INIT_NORMAL, 3, d, d, 1,
			                "%sattention.self.key_conv_attn_layer%d.pointwise.weight", pre, nc);
			L->cbeta[j] = add(bd, INIT_ZERO, 2, d, 1, 0,
			                  "%sattention.self.key_conv_attn_layer%d.bias", pre, nc);
			L->ckw[j] = add(bd, INIT_NORMAL, 2, k, d, 0,
			                "%sattention.self.conv_kernel_layer%d.weight", pre, nc);
			L->ckb[j] = add(bd, INIT_ZERO, 1, k, 0, 0,
			                "%sattention.self.conv_kernel_layer%d.bias", pre, nc);
			L->cuw[j] = add(bd, INIT_NORMAL, 2, d, d, 0,
			                "%sattention.self.conv_out_layer%d.weight", pre, nc);
			L->cub[j] =
			    add(bd, INIT_ZERO, 1, d, 0, 0, "%sattention.self.conv_out_layer%d.bias", pre, nc);
			nc++;
		}
		L->wo = add(bd, INIT_NORMAL, 2, ml->h, A, 0, "%sattention.output.dense.weight", pre);
		L->bo = add(bd, INIT_ZERO, 1, ml->h, 0, 0, "%sattention.output.dense.bias", pre);
		L->ln1w = add(bd, INIT_ONE, 1, ml->h, 0, 0, "%sattention.output.LayerNorm.weight", pre);
		L->ln1b = add(bd, INIT_ZERO, 1, ml->h, 0, 0, "%sattention.output.LayerNorm.bias", pre);
		for (int i = 0; i < ml->nff; i++) {
			L->ffw[i] = add(bd, INIT_NORMAL, 2, ml->ff[i], fin, 0,
			                "%sintermediate.sequential.%d.weight", pre, 2 * i);
			L->ffb[i] = add(bd, INIT_ZERO, 1, ml->ff[i], 0, 0,
			                "%sintermediate.sequential.%d.bias", pre, 2 * i);
			fin = ml->ff[i];
		}
		L->wout = add(bd, INIT_NORMAL, 2, ml->h, fin, 0, "%soutput.dense.weight", pre);
		L->bout = add(bd, INIT_ZERO, 1, ml->h, 0, 0, "%soutput.dense.bias", pre);
		L->ln2w = add(bd, INIT_ONE, 1, ml->h, 0, 0, "%soutput.LayerNorm.weight", pre);
		L->ln2b = add(bd, INIT_ZERO, 1, ml->h, 0, 0, "%soutput.LayerNorm.bias", pre);
		if (L->proj) {
			L->wp = add(bd, INIT_NORMAL, 2, L->hnext, ml->h, 0, "%soutput.proj_head.weight", pre);
			L->bp = add(bd, INIT_ZERO, 1, L->hnext, 0, 0, "%soutput.proj_head.bias", pre);
		}
	}
	if (cfg->objective == FB_CLS) {
		fb->poolw = add(bd, INIT_NORMAL, 2, hL, hL, 0, "bert.pooler.dense.weight");
		fb->poolb = add(bd, INIT_ZERO, 1, hL, 0, 0, "bert.pooler.dense.bias");
		fb->clsw = add(bd, INIT_NORMAL, 2, cfg->labels, hL, 0, "classifier.weight");
		fb->clsb = add(bd, INIT_ZERO, 1, cfg->labels, 0, 0, "classifier.bias");
	} else {
		fb->mtw = add(bd, INIT_NORMAL, 2, hL, hL, 0, "cls.predictions.transform.dense.weight");
		fb->mtb = add(bd, INIT_ZERO, 1, hL, 0, 0, "cls.predictions.transform.dense.bias");
		fb->mlnw = add(bd, INIT_ONE, 1, hL, 0, 0, "cls.predictions.transform.LayerNorm.weight");
		fb->mlnb = add(bd, INIT_ZERO, 1, hL, 0, 0, "cls.predictions.transform.LayerNorm.bias");
		fb->decw = add(bd, INIT_NORMAL, 2, cfg->vocab, hL, 0, "cls.predictions.decoder.weight");
		fb->decb = add(bd, INIT_ZERO, 1, cfg->vocab, 0, 0, "cls.predictions.bias");
	}
}

/* The token embeddings' deferred updates (flexibert_adamw). Row r has had the first at[r] of the n
 * updates in hist applied; marked rows (listed in rows, in row order, by flexibert_clip) hold a
 * gradient since flexibert_zero_grad. */
struct fb_lazy {
	int V, h, pi;         /* rows, their width, the index of the table in fb->p */
	int eager;            /* every row counts as holding a gradient: updated at every step */
	int *at;              /* V */
	float (*hist)[4];     /* per update: lr, decay, 1 / bc1, 1 / bc2, as adamw_run takes them */
	int n;                /* updates in hist (LAZY_CAP at most: then flexibert_sync) */
	unsigned char *mark;  /* V */
	int32_t *rows, nrows; /* V */
	int32_t *todo;        /* V: the stale rows a forward pass reads */
	float *zero;          /* h zeros: a row's gradient in a replay */
};

static void take_ids(struct flexibert *fb, const int32_t *ids, int n);

#define LAZY_CAP 4096

static void
lazy_init(struct flexibert *fb)
{
	struct fb_lazy *z = ecalloc(1, sizeof *z);

	z->V = fb->cfg.vocab;
	z->h = fb->cfg.m.layer[0].h;
	for (z->pi = 0; z->pi < fb->np && fb->p[z->pi].off != fb->wte; z->pi++)
		;
	z->at = ecalloc((size_t)z->V, sizeof *z->at);
	z->hist = ecalloc(LAZY_CAP, sizeof *z->hist);
	z->mark = ecalloc((size_t)z->V, 1);
	z->rows = ecalloc((size_t)z->V, sizeof *z->rows);
	z->todo = ecalloc((size_t)z->V, sizeof *z->todo);
	z->zero = ecalloc((size_t)z->h, sizeof *z->zero);
	fb->lazy = z;
}

static void
lazy_free(struct fb_lazy *z)
{
	if (!z)
		return;
	free(z->at);
	free(z->hist);
	free(z->mark);
	free(z->rows);
	free(z->todo);
	free(z->zero);
	free(z);
}

size_t
flexibert_nparams(const struct fb_config *cfg)
{
	struct flexibert fb;
	struct builder bd = {&fb, NULL, 0};

	memset(&fb, 0, sizeof fb);
	if (check_config(cfg, NULL) < 0)
		return 0;
	fb.cfg = *cfg;
	build_table(&fb, &bd);
	free(fb.p);
	free(bd.init);
	return fb.nparams;
}

int
flexibert_init(struct flexibert *fb, const struct fb_config *cfg, uint64_t seed, struct tc_error *err)
{
	struct builder bd = {fb, NULL, 0};
	struct rng r;

	memset(fb, 0, sizeof *fb);
	if (check_config(cfg, err) < 0)
		return -1;
	fb->cfg = *cfg;
	fb->gscale = 1;
	build_table(fb, &bd);
	fb->params = emalloc64(sizeof *fb->params * fb->nparams);
	fb->grads = ecalloc64(fb->nparams, sizeof *fb->grads);
	fb->m = ecalloc64(fb->nparams, sizeof *fb->m);
	fb->v = ecalloc64(fb->nparams, sizeof *fb->v);
	rng_seed(&r, seed);
	for (int i = 0; i < fb->np; i++) {
		float *x = fb->params + fb->p[i].off;
		for (size_t j = 0; j < fb->p[i].n; j++)
			switch (bd.init[i]) {
			case INIT_NORMAL:
				x[j] = (float)(0.02 * rng_normal(&r));
				break;
			case INIT_ZERO:
				x[j] = 0;
				break;
			case INIT_ONE:
				x[j] = 1;
				break;
			default:
				x[j] = (float)(0.2 * rng_uniform(&r) - 0.1);
			}
	}
	memset(fb->params + fb->wte, 0, sizeof *fb->params * (size_t)cfg->m.layer[0].h); /* [PAD] */
	free(bd.init);
	fb->a = ecalloc(1, sizeof *fb->a);
	lazy_init(fb);
	return 0;
}

static void
acts_free(struct fb_acts *a)
{
	free(a->mem);
	free(a->mmem);
	for (int l = 0; l < MODEL_MAX_LAYERS; l++) {
		for (int i = 0; i < 4; i++)
			free(a->L[l].dft[i]);
		for (int i = 0; i < 2; i++)
			free(a->L[l].dct[i]);
	}
}

void
flexibert_release(struct flexibert *fb)
{
	if (fb->a) {
		acts_free(fb->a);
		free(fb->a);
	}
	free(fb->p);
	free(fb->params);
	free(fb->grads);
	free(fb->m);
	free(fb->v);
	lazy_free(fb->lazy);
	for (int k = 0; k < FB_SP_COUNT; k++)
		free(fb->prune.samp[k]), free(fb->prune.sampw[k]), free(fb->prune.sampp[k]);
	memset(fb, 0, sizeof *fb);
}

const struct fb_param *
flexibert_param(const struct flexibert *fb, const char *name)
{
	for (int i = 0; i < fb->np; i++)
		if (strcmp(fb->p[i].name, name) == 0)
			return &fb->p[i];
	return NULL;
}

/* ---- activation memory ---- */

/* Lay out (when base is NULL, just count) the activation buffers for B x T; returns floats used. */
static size_t
layout(struct flexibert *fb, float *base, int B, int T)
{
	struct fb_acts *a = fb->a;
	const struct model *m = &fb->cfg.m;
	size_t off = 0, N = (size_t)B * T;
	int hmax = 0, amax = 0, dmax = 0, kmax = 0, hL = m->layer[m->l - 1].h, nt = omp_get_max_threads();
	size_t scratch;

#define TAKE(ptr, count)                                                                                     \
	do {                                                                                                 \
		if (base)                                                                                    \
			(ptr) = (void *)(base + off);                                                        \
		off += ((size_t)(count) + 15) & ~(size_t)15;                                                 \
	} while (0)
	TAKE(a->mask, N);
	TAKE(a->eres, N * m->layer[0].h);
	TAKE(a->em, N);
	TAKE(a->er, N);
	TAKE(a->emb, N * m->layer[0].h);
	for (int l = 0; l < m->l; l++) {
		const struct fb_layer *W = &fb->L[l];
		const struct model_layer *ml = &m->layer[l];
		struct fb_lacts *La = &a->L[l];
		size_t h = (size_t)W->h, A = (size_t)W->A, d = (size_t)W->d;
		TAKE(La->q, N * A);
		TAKE(La->k, N * A);
		TAKE(La->v, N * A);
		for (int j = 0; j < W->n; j++) {
			if (is_sa(ml->op[j]))
				TAKE(La->probs[j], N * T);
			if (is_conv(ml->op[j])) {
				TAKE(La->dsc[j].kd, N * d);
				TAKE(La->dsc[j].ks, N * d);
				TAKE(La->dsc[j].alpha, N * taps_of[ml->op[j]]);
				TAKE(La->dsc[j].u, N * d);
				kmax = taps_of[ml->op[j]] > kmax ? taps_of[ml->op[j]] : kmax;
			}
		}
		TAKE(La->ctx, N * A);
		TAKE(La->ares, N * h);
		TAKE(La->m1, N);
		TAKE(La->r1, N);
		TAKE(La->y, N * h);
		for (int i = 0; i < ml->nff; i++) {
			TAKE(La->ffout[i], N * ml->ff[i]);
			TAKE(La->ffder[i], N * ml->ff[i]);
		}
		TAKE(La->fres, N * h);
		if (fb->cfg.dynaprop) {
			TAKE(La->keep_a, (N * h + 63) / 64 * 2);
			TAKE(La->keep_f, (N * h + 63) / 64 * 2);
		}
		TAKE(La->m2, N);
		TAKE(La->r2, N);
		TAKE(La->hout, N * h);
		if (W->proj)
			TAKE(La->xnext, N * W->hnext);
		hmax = W->h > hmax ? W->h : hmax;
		amax = W->A > amax ? W->A : amax;
		dmax = W->d > dmax ? W->d : dmax;
	}
	if (fb->cfg.objective == FB_CLS) {
		TAKE(a->first, (size_t)B * hL);
		TAKE(a->ppre, (size_t)B * hL);
		TAKE(a->pool, (size_t)B * hL);
		TAKE(a->pdrop, (size_t)B * hL);
		TAKE(a->clogits, (size_t)B * fb->cfg.labels);
		TAKE(a->cdlogits, (size_t)B * fb->cfg.labels);
		TAKE(a->clabels, B); /* int32 fits a float slot */
	}
	TAKE(a->ids, N);
	TAKE(a->live, N);
	TAKE(a->qoff, (size_t)B + 1);
	TAKE(a->gx, N * hmax);
	TAKE(a->gx2, N * hmax);
	TAKE(a->gh, N * hmax);
	TAKE(a->gf, N * hmax);
	TAKE(a->gy, N * hmax);
	{
		float *pbase = NULL;
		TAKE(pbase, 4 * N * (size_t)amax);
		if (base) {
			a->gq = pbase, a->gk = pbase + N * (size_t)amax, a->gv = pbase + 2 * N * (size_t)amax;
			a->gctx = pbase + 3 * N * (size_t)amax;
		}
	}
	scratch = NN_ATTN_SCRATCH(nt, B, T, dmax);
	if ((size_t)nt * 3 * T * dmax > scratch)
		scratch = (size_t)nt * 3 * T * dmax;
	if (kmax && NN_DSC_SCRATCH(B, T, dmax, kmax) > scratch)
		scratch = NN_DSC_SCRATCH(B, T, dmax, kmax);
	TAKE(a->scratch, scratch);
#undef TAKE
	return off;
}

static void
reserve(struct flexibert *fb, int B, int T)
{
	struct fb_acts *a = fb->a;

	if (B <= a->Bcap && T <= a->Tcap)
		return;
	if (B < a->Bcap)
		B = a->Bcap;
	if (T < a->Tcap)
		T = a->Tcap;
	free(a->mem);
	a->mem = emalloc64(sizeof(float) * layout(fb, NULL, B, T));
	layout(fb, a->mem, B, T);
	a->Bcap = B;
	a->Tcap = T;
}

/* The layer's transform matrices for T tokens. */
static void
transform_matrices(struct fb_lacts *La, const struct fb_layer *W, const struct model_layer *ml, int T)
{
	int dft = 0, dct = 0, d = W->d;

	if (La->tT == T)
		return;
	for (int j = 0; j < W->n; j++) {
		dft |= ml->op[j] == OP_L_DFT;
		dct |= ml->op[j] == OP_L_DCT;
	}
	if (dft) {
		for (int i = 0; i < 4; i++)
			La->dft[i] = erealloc(La->dft[i], sizeof(float) * (size_t)(i < 2 ? T * T : d * d));
		nn_transform_matrices(NN_DFT, La->dft[0], La->dft[1], La->dft[2], La->dft[3], T, d);
	}
	if (dct) {
		La->dct[0] = erealloc(La->dct[0], sizeof(float) * (size_t)T * T);
		La->dct[1] = erealloc(La->dct[1], sizeof(float) * (size_t)d * d);
		nn_transform_matrices(NN_DCT, La->dct[0], NULL, La->dct[1], NULL, T, d);
	}
	La->tT = T;
}

/* ---- forward ---- */

/* Dropout sites: the embedding output, per layer the attention probabilities of each head, the
 * attention output and the FF output, and the pooled vector. */
static uint64_t
site(uint64_t dropkey, int l, int what)
{
	uint64_t z = dropkey ^ (((uint64_t)l << 32 | (uint32_t)what) * 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9u;
	return z ^ (z >> 29);
}
enum { SITE_ATTN_OUT = MODEL_MAX_HEADS, SITE_FF_OUT, SITE_EMB, SITE_POOL };

static void
dsc_weights(struct dsc_params *w, const float *P, const struct fb_layer *W, int j)
{
	w->dw = P + W->cdw[j], w->pw = P + W->cpw[j], w->beta = P + W->cbeta[j];
	w->wk = P + W->ckw[j], w->bk = P + W->ckb[j], w->wu = P + W->cuw[j], w->bu = P + W->cub[j];
}

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* ---- DynaProp ---- */

const char *const fb_point_name[FB_PT_COUNT] = {"qkv", "score", "prob", "ctx", "ff", "out"};

/* Magnitudes of x (n) into the samples of class cls at point pt, together standing for total
 * elements. */
CLONES static void
prune_sample_n(struct flexibert *fb, int cls, int pt, const float *x, size_t n, double total)
{
	struct fb_prune *pr = &fb->prune;
	size_t k, at = pr->nsamp[cls];

	pr->samp[cls] = egrow(pr->samp[cls], &pr->capsamp[cls], at + FB_SAMPLE, sizeof(float));
	pr->sampw[cls] = egrow(pr->sampw[cls], &pr->capsampw[cls], at + FB_SAMPLE, sizeof(float));
	pr->sampp[cls] = egrow(pr->sampp[cls], &pr->capsampp[cls], at + FB_SAMPLE, 1);
	k = nn_sample_abs(pr->samp[cls] + at, FB_SAMPLE, x, n);
	for (size_t i = 0; i < k; i++) {
		pr->sampw[cls][at + i] = (float)(total / (double)k);
		pr->sampp[cls][at + i] = (unsigned char)pt;
	}
	pr->nsamp[cls] += k;
}

static void
prune_sample(struct flexibert *fb, int cls, int pt, const float *x, size_t n)
{
	prune_sample_n(fb, cls, pt, x, n, (double)n);
}

/* Attention rows for calibration */
#define FB_SAMPLE_ROWS 16

/* Whether layer l runs on the live rows alone past its attention: the last layer, when the loss
 * depends on some rows only. */
static int
packed(const struct flexibert *fb, int l)
{
	return l == fb->cfg.m.l - 1 && fb->a->nlive >= 0;
}

/* The live rows as the query rows of layer l's SA heads, into qr, or NULL where that layer computes
 * every row's */
static const struct nn_qrows *
live_queries(const struct flexibert *fb, int l, struct nn_qrows *qr)
{
	if (!packed(fb, l) || !fb->a->qlive)
		return NULL;
	qr->off = fb->a->qoff;
	qr->row = fb->a->live;
	/* the queries themselves projected at those rows alone, unless a convolution head reads
	 * every row's */
	qr->packed_q = 1;
	for (int j = 0; j < fb->cfg.m.layer[l].n; j++)
		qr->packed_q &= !is_conv(fb->cfg.m.layer[l].op[j]);
	return qr;
}

/* Whether every head of layer l is an SA head */
static int
sa_only(const struct flexibert *fb, int l)
{
	for (int j = 0; j < fb->cfg.m.layer[l].n; j++)
		if (!is_sa(fb->cfg.m.layer[l].op[j]))
			return 0;
	return 1;
}

/* Whether a head of layer l is SA with weighted multiplicative similarity */
static int
any_wma(const struct flexibert *fb, int l)
{
	for (int j = 0; j < fb->cfg.m.layer[l].n; j++)
		if (fb->cfg.m.layer[l].op[j] == OP_SA_WMA)
			return 1;
	return 0;
}

/* Whether layer l's SA heads go without keys and values (attention_forward_xkv): where they take the
 * live rows' queries alone, projected at those rows, every head is SA (no other reads k or v), and
 * without DynaProp (which prunes k and v as activations) */
static int
xkv_layer(const struct flexibert *fb, int l, const struct nn_qrows *qr)
{
	return qr && qr->packed_q && !fb->cfg.dynaprop && sa_only(fb, l);
}

/*
 * Head j of layer l (SA): for FB_SAMPLE_ROWS query rows spread over the batch, the raw scores and
 * the stored probabilities (forward), or the gradients at the probabilities and at the scores
 * (backward, from the context's gradient gctx; dropout left out), as samples of all the rows
 * computed: B T of T, or the live rows' where the layer takes them alone as queries.
 */
static void
sample_attention(struct flexibert *fb, int l, int j, const float *gctx, int B, int T)
{
	const struct fb_layer *W = &fb->L[l];
	const struct fb_lacts *La = &fb->a->L[l];
	const float *wma = fb->cfg.m.layer[l].op[j] == OP_SA_WMA ? fb->params + W->wma[j] : NULL;
	struct nn_qrows qrows;
	const struct nn_qrows *qr = live_queries(fb, l, &qrows);
	int R = qr ? fb->a->nlive : B * T; /* the rows computed: probs' and (backward) gctx's */
	int A = W->A, d = W->d, c = j * d, rows = R < FB_SAMPLE_ROWS ? R : FB_SAMPLE_ROWS;
	float *s = emalloc(sizeof *s * (size_t)T), *g = emalloc(sizeof *g * (size_t)T);
	float *qw = emalloc(sizeof *qw * (size_t)d);
	double total = (double)R * T / rows;

	for (int r = 0; r < rows; r++) {
		int i = (int)((long)r * R / rows), row = qr ? qr->row[i] : i, b = row / T;
		const float *P = La->probs[j] + (size_t)i * T,
		            *qi = La->q + (size_t)(qr && qr->packed_q ? i : row) * A + c;
		for (int e = 0; e < d; e++) {
			double x = 0;
			for (int f = 0; wma && f < d; f++)
				x += (double)qi[f] * wma[f * d + e];
			qw[e] = wma ? (float)x : qi[e];
		}
		if (!gctx) {
			for (int t = 0; t < T; t++) {
				const float *kt = La->k + ((size_t)b * T + t) * A + c;
				double x = 0;
				for (int e = 0; e < d; e++)
					x += (double)qw[e] * kt[e];
				s[t] = (float)x; /* raw: pruned before the scaling */
			}
			if (fb->prune.sample != 1)
				continue;
			prune_sample_n(fb, FB_SP_ACT, FB_PT_SCORE, s, (size_t)T, total);
			/* the probabilities before their own pruning (P has it): the row's softmax
			 * again, from the scores pruned as attention_forward prunes them */
			double mx = -INFINITY, sum = 0;
			for (int t = 0; t < T; t++) {
				float x = fabsf(s[t]) > fb->prune.tau_act[FB_PT_SCORE] ? s[t] : 0.0f;
				g[t] = x / sqrtf((float)d) +
				       (fb->a->mask[b * T + t] == 0 ? NN_MASKED_SCORE : 0.0f);
				mx = fmax(mx, g[t]);
			}
			for (int t = 0; t < T; t++)
				sum += exp(g[t] - mx);
			int nk = 0;
			for (int t = 0; t < T; t++)
				nk += fb->a->mask[b * T + t] != 0;
			for (int t = 0; t < T; t++)
				g[t] = (float)(exp(g[t] - mx) / sum * (fb->prune.relative ? nk : 1));
			prune_sample_n(fb, FB_SP_ACT, FB_PT_PROB, g, (size_t)T, total);
		} else {
			const float *gi = gctx + (size_t)i * A + c;
			double dot = 0;
			for (int t = 0; t < T; t++) {
				const float *vt = La->v + ((size_t)b * T + t) * A + c;
				double x = 0;
				for (int e = 0; e < d; e++)
					x += (double)gi[e] * vt[e];
				g[t] = P[t] != 0 ? (float)x : 0.0f; /* none where pruned */
				dot += (double)P[t] * x;
			}
			prune_sample_n(fb, FB_SP_GRAD, FB_PT_PROB, g, (size_t)T, total);
			for (int t = 0; t < T; t++)
				g[t] = (float)(P[t] * (g[t] - dot));
			prune_sample_n(fb, FB_SP_GRAD, FB_PT_SCORE, g, (size_t)T, total);
		}
	}
	free(s), free(g), free(qw);
}

/* z zeros of n at point pt of layer l, counted in training and when asked to count */
static void
count_act(struct flexibert *fb, int l, int pt, size_t z, size_t n)
{
	struct fb_prune *pr = &fb->prune;

	if (fb->a->training || pr->count) {
		pr->zeros[l][FB_SP_ACT] += (double)z;
		pr->total[l][FB_SP_ACT] += (double)n;
		pr->pz[0][pt] += (double)z;
		pr->pn[0][pt] += (double)n;
	}
}

/* An activation of layer l at point pt (keep: its keep mask, or NULL when the stored value tells). */
static void
prune_act(struct flexibert *fb, int l, int pt, float *x, uint64_t *keep, size_t n)
{
	struct fb_prune *pr = &fb->prune;
	size_t z;

	if (!fb->cfg.dynaprop)
		return;
	if (pr->sample == 1 && (fb->a->training || pr->count))
		prune_sample(fb, FB_SP_ACT, pt, x, n);
	z = nn_prune(x, keep, n, pr->tau_act[pt]);
	count_act(fb, l, pt, z, n);
}

/* A layer of the FF stack: pre = x w^T + b, pruned at FB_PT_FF (in the product's own pass where
 * lib/gemm can, and no step samples the point's magnitudes), then out = GELU(pre) and GELU' (0
 * where pruned) over pre for the backward */
static void
ff_forward(struct flexibert *fb, int l, float *out, float *pre, const float *x, size_t w, size_t b, int N,
           int C, int OC)
{
	struct fb_prune *pr = &fb->prune;
	const float *P = fb->params;
	size_t n = (size_t)N * OC;
	struct nn_epi e = {.tau = -1.0f};

	if (!fb->cfg.dynaprop) {
		matmul_forward_gelu(out, pre, x, P + w, P + b, N, C, OC);
		return;
	}
	if (pr->sample == 1 && (fb->a->training || pr->count)) {
		matmul_forward(pre, x, P + w, P + b, N, C, OC);
		prune_sample(fb, FB_SP_ACT, FB_PT_FF, pre, n);
		count_act(fb, l, FB_PT_FF, nn_prune_gelu(out, pre, pre, n, pr->tau_act[FB_PT_FF]), n);
		return;
	}
	e.tau = pr->tau_act[FB_PT_FF];
	matmul_forward_epi(pre, x, P + w, P + b, N, C, OC, &e);
	gelu_forward_der_pruned(out, pre, pre, n);
	count_act(fb, l, FB_PT_FF, e.zeros, n);
}

/* Gradients are counted as whole tensors: where the last layer's backward runs on the live rows
 * alone, the gradient at every other row is 0, and counted so (and sampled so, by its weight). */
static size_t
dead_elements(const struct flexibert *fb, size_t n)
{
	return fb->a->dead ? n / (size_t)fb->a->nlive * (size_t)fb->a->dead : 0;
}

static void
count_grad(struct flexibert *fb, int l, int pt, size_t z, size_t n)
{
	struct fb_prune *pr = &fb->prune;
	size_t dead = dead_elements(fb, n);

	z += dead, n += dead;
	pr->zeros[l][FB_SP_GRAD] += (double)z;
	pr->total[l][FB_SP_GRAD] += (double)n;
	pr->pz[1][pt] += (double)z;
	pr->pn[1][pt] += (double)n;
}

/* The gradient d arriving at a pruned activation y (or keep) of layer l at point pt; sampled after
 * the zeros of the pruned activations. */
static void
prune_grad(struct flexibert *fb, int l, int pt, float *d, const float *y, const uint64_t *keep, size_t n)
{
	struct fb_prune *pr = &fb->prune;
	size_t z;

	if (!fb->cfg.dynaprop)
		return;
	if (pr->sample) {
		const float zero = 0.0f;
		nn_prune_grad(d, y, keep, n, 0.0f);
		prune_sample(fb, FB_SP_GRAD, pt, d, n);
		if (dead_elements(fb, n))
			prune_sample_n(fb, FB_SP_GRAD, pt, &zero, 1, (double)dead_elements(fb, n));
	}
	z = nn_prune_grad(d, y, keep, n, pr->tau_grad[pt]);
	count_grad(fb, l, pt, z, n);
}

/* d *= GELU' (der, 0 where the activation was pruned), then the gradient's pruning at FB_PT_FF: in
 * one pass unless sampling */
static void
gelu_back_prune(struct flexibert *fb, int l, float *d, const float *der, size_t n)
{
	if (!fb->cfg.dynaprop || fb->prune.sample) {
		gelu_backward_der(d, der, n);
		prune_grad(fb, l, FB_PT_FF, d, der, NULL, n);
		return;
	}
	count_grad(fb, l, FB_PT_FF, nn_gelu_backward_prune(d, der, n, fb->prune.tau_grad[FB_PT_FF]), n);
}

/* d = dropout's backward of src (p, key), then the gradient's pruning at FB_PT_OUT behind keep:
 * in one pass unless sampling */
static void
drop_prune_grad(struct flexibert *fb, int l, float *d, const float *src, const uint64_t *keep, size_t n,
                float p, uint64_t key)
{
	if (!fb->cfg.dynaprop || fb->prune.sample) {
		dropout_copy(d, src, n, p, key);
		prune_grad(fb, l, FB_PT_OUT, d, NULL, keep, n);
		return;
	}
	count_grad(fb, l, FB_PT_OUT,
	           nn_dropout_prune_grad(d, src, n, p, key, keep, fb->prune.tau_grad[FB_PT_OUT]), n);
}

/* LayerNorm's backward into d (set), then dropout's backward of d into dd (p, key) with the
 * gradient's pruning at FB_PT_OUT behind keep: without DynaProp, in the one pass */
static void
ln_back_drop(struct flexibert *fb, int l, float *d, float *dd, float *dw, float *db, const float *dout,
             const float *inp, const float *w, const float *mean, const float *rstd, int N, int C,
             const uint64_t *keep, float p, uint64_t key)
{
	if (!fb->cfg.dynaprop) {
		layernorm_backward_set_drop(d, dd, dw, db, dout, inp, w, mean, rstd, N, C, p, key);
		return;
	}
	layernorm_backward_set(d, dw, db, dout, inp, w, mean, rstd, N, C);
	drop_prune_grad(fb, l, dd, d, keep, (size_t)N * C, p, key);
}

/* The attention kernels' thresholds */
static struct nn_attn_prune
attn_prune(const struct flexibert *fb)
{
	const struct fb_prune *pr = &fb->prune;
	struct nn_attn_prune ap = {.tau = pr->tau_act[FB_PT_SCORE],
	                           .tau_grad = pr->tau_grad[FB_PT_SCORE],
	                           .tau_p = pr->tau_act[FB_PT_PROB],
	                           .tau_grad_p = pr->tau_grad[FB_PT_PROB],
	                           .relative = pr->relative,
	                           .topk = pr->topk};
	return ap;
}

/* The counts of the attention kernels' own pruning, into layer l's. */
static void
prune_attn_count(struct flexibert *fb, int l, const struct nn_attn_prune *ap)
{
	struct fb_prune *pr = &fb->prune;
	double half = (double)ap->total[0] / 2;

	if (fb->a->training || pr->count) {
		pr->zeros[l][FB_SP_ACT] += (double)ap->zeros[0];
		pr->total[l][FB_SP_ACT] += (double)ap->total[0];
		pr->pz[0][FB_PT_SCORE] += (double)ap->split[0], pr->pn[0][FB_PT_SCORE] += half;
		pr->pz[0][FB_PT_PROB] += (double)ap->split[1], pr->pn[0][FB_PT_PROB] += half;
	}
	half = (double)ap->total[1] / 2;
	pr->zeros[l][FB_SP_GRAD] += (double)ap->zeros[1];
	pr->total[l][FB_SP_GRAD] += (double)ap->total[1];
	pr->pz[1][FB_PT_PROB] += (double)ap->split[2], pr->pn[1][FB_PT_PROB] += half;
	pr->pz[1][FB_PT_SCORE] += (double)ap->split[3], pr->pn[1][FB_PT_SCORE] += half;
}

void
flexibert_prune_uniform(struct flexibert *fb, float tau_act, float tau_grad, float tau_weight)
{
	for (int i = 0; i < FB_PT_COUNT; i++)
		fb->prune.tau_act[i] = tau_act, fb->prune.tau_grad[i] = tau_grad;
	fb->prune.tau_weight = tau_weight;
}

void
flexibert_prune_reset(struct flexibert *fb)
{
	struct fb_prune *pr = &fb->prune;

	memset(pr->zeros, 0, sizeof pr->zeros);
	memset(pr->total, 0, sizeof pr->total);
	memset(pr->pz, 0, sizeof pr->pz);
	memset(pr->pn, 0, sizeof pr->pn);
	for (int k = 0; k < FB_SP_COUNT; k++)
		pr->nsamp[k] = 0;
}

static void
add_run(float *y, const float *x, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

static void
add_rows(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		add_run(y + i0, x + i0, n - i0 < 4096 ? n - i0 : 4096);
}

/* A LayerNorm after a dense layer: its output, mean and rstd, and its parameters' offsets */
struct fb_ln {
	float *out, *mean, *rstd;
	size_t w, b;
};

/*
 * out (N, OC) = x w^T + b, then pruned at point pt of layer l (DynaProp; keep: its mask, or NULL),
 * dropped out at p under key and res added (or NULL), then the LayerNorm ln of out where ln is not
 * NULL: in the product's own pass where lib/gemm can (the LayerNorm on each piece of rows as the
 * product writes it), in passes of their own where it cannot or where this step samples the
 * point's magnitudes first.
 */
static void
dense_forward_ln(struct flexibert *fb, int l, int pt, float *out, const float *x, size_t w, size_t b, int N,
                 int C, int OC, uint64_t *keep, float p, uint64_t key, const float *res,
                 const struct fb_ln *ln)
{
	struct fb_prune *pr = &fb->prune;
	const float *P = fb->params;
	size_t n = (size_t)N * OC;
	struct nn_epi e = {.tau = -1.0f, .keep = NULL, .p = p, .key = key, .res = res};

	if (fb->cfg.dynaprop && pr->sample == 1 && (fb->a->training || pr->count)) {
		matmul_forward(out, x, P + w, P + b, N, C, OC);
		prune_act(fb, l, pt, out, keep, n);
		dropout_apply(out, n, p, key);
		if (res)
			add_rows(out, res, n);
		if (ln)
			layernorm_forward(ln->out, ln->mean, ln->rstd, out, P + ln->w, P + ln->b, N, OC);
		return;
	}
	if (fb->cfg.dynaprop)
		e.tau = pr->tau_act[pt], e.keep = keep;
	if (ln)
		e.ln_out = ln->out, e.ln_mean = ln->mean, e.ln_rstd = ln->rstd, e.ln_w = P + ln->w,
		e.ln_b = P + ln->b;
	matmul_forward_epi(out, x, P + w, P + b, N, C, OC, &e);
	if (fb->cfg.dynaprop)
		count_act(fb, l, pt, e.zeros, n);
}

static void
dense_forward(struct flexibert *fb, int l, int pt, float *out, const float *x, size_t w, size_t b, int N,
              int C, int OC, uint64_t *keep, float p, uint64_t key, const float *res)
{
	dense_forward_ln(fb, l, pt, out, x, w, b, N, C, OC, keep, p, key, res, NULL);
}

/* Rows live[0..n) of src, w wide, packed in order into dst, which may be src (live ascends). */
static void
pack_rows(float *dst, const float *src, const int32_t *live, int n, size_t w)
{
	for (int r = 0; r < n; r++)
		memmove(dst + (size_t)r * w, src + (size_t)live[r] * w, sizeof *dst * w);
}

/* pack_rows undone in place: the n packed rows of x go back to rows live[] of N, and every other row
 * becomes zero (the gaps spread over the threads: most of x, serial, was 2% of a step on 2). */
static void
unpack_rows(float *x, const int32_t *live, int n, int N, size_t w)
{
	for (int r = n - 1; r >= 0; r--) /* from the last: a row goes to its place or further */
		if (live[r] != r)
			memmove(x + (size_t)live[r] * w, x + (size_t)r * w, sizeof *x * w);
#pragma omp parallel for schedule(static)
	for (int r = 0; r <= n; r++) { /* the gap before live row r (r = n: after the last) */
		size_t from = r == 0 ? 0 : (size_t)live[r - 1] + 1, to = r == n ? (size_t)N : (size_t)live[r];
		memset(x + from * w, 0, sizeof *x * (to - from) * w);
	}
}

/* Layer l's heads' WMA matrices (NULL for a head without), their gradients (unless dwma is NULL)
 * and their dropout keys */
static void
xkv_heads(const struct flexibert *fb, int l, const float **wma, float **dwma, uint64_t *key)
{
	const struct fb_layer *W = &fb->L[l];

	for (int j = 0; j < W->n; j++) {
		int w = fb->cfg.m.layer[l].op[j] == OP_SA_WMA;
		wma[j] = w ? fb->params + W->wma[j] : NULL;
		if (dwma)
			dwma[j] = w ? fb->grads + W->wma[j] : NULL;
		key[j] = site(fb->a->dropkey, l, j);
	}
}

/* Layer l's heads (all SA) without keys and values (xkv_layer), every one at once, forward */
static void
xkv_forward(struct flexibert *fb, int l, const struct nn_qrows *qr, float p, const float *x)
{
	struct fb_acts *a = fb->a;
	const struct fb_layer *W = &fb->L[l];
	struct fb_lacts *La = &a->L[l];
	const float *P = fb->params, *wma[MODEL_MAX_HEADS];
	uint64_t key[MODEL_MAX_HEADS];

	xkv_heads(fb, l, wma, NULL, key);
	attention_forward_xkv(W->n, La->ctx, La->probs, La->q, x, W->h, P + W->wk, P + W->bk, P + W->wv,
	                      P + W->bv, wma, a->mask, p, key, qr, fb->B, fb->T, W->A, W->d);
}

/* The same backward: through the keys and values into gin, every row of it */
static void
xkv_backward(struct flexibert *fb, int l, const struct nn_qrows *qr, float p, const float *x, float *gin)
{
	struct fb_acts *a = fb->a;
	const struct fb_layer *W = &fb->L[l];
	struct fb_lacts *La = &a->L[l];
	const float *P = fb->params, *wma[MODEL_MAX_HEADS];
	float *G = fb->grads, *dwma[MODEL_MAX_HEADS];
	uint64_t key[MODEL_MAX_HEADS];

	xkv_heads(fb, l, wma, dwma, key);
	attention_backward_xkv(W->n, a->gq, gin, G + W->wk, G + W->bk, G + W->wv, G + W->bv, dwma, a->gctx,
	                       La->probs, La->q, x, W->h, P + W->wk, P + W->bk, P + W->wv, P + W->bv, wma, p,
	                       key, qr, fb->B, fb->T, W->A, W->d);
}

/* SA head j of layer l forward, on the query rows qr (NULL: all) */
static void
sa_forward(struct flexibert *fb, int l, int j, struct nn_attn_prune *ap, const struct nn_qrows *qr, float p)
{
	struct fb_acts *a = fb->a;
	const struct fb_layer *W = &fb->L[l];
	struct fb_lacts *La = &a->L[l];
	int op = fb->cfg.m.layer[l].op[j], c = j * W->d;

	attention_forward(La->ctx + c, La->probs[j], La->q + c, La->k + c, La->v + c,
	                  op == OP_SA_WMA ? fb->params + W->wma[j] : NULL, a->mask, p, site(a->dropkey, l, j),
	                  fb->cfg.dynaprop ? ap : NULL, qr, a->scratch, fb->B, fb->T, W->A, W->d);
	if (fb->cfg.dynaprop && fb->prune.sample && (a->training || fb->prune.count))
		sample_attention(fb, l, j, NULL, fb->B, fb->T);
}

static const float *
layer_forward(struct flexibert *fb, int l, const float *x, int B, int T, float p)
{
	struct fb_acts *a = fb->a;
	const struct fb_layer *W = &fb->L[l];
	const struct model_layer *ml = &fb->cfg.m.layer[l];
	struct fb_lacts *La = &a->L[l];
	const float *P = fb->params;
	int N = B * T, h = W->h, A = W->A, d = W->d;
	const float *z = La->y;

	struct nn_attn_prune ap = attn_prune(fb);
	struct nn_qrows qrows;
	const struct nn_qrows *qr = live_queries(fb, l, &qrows);

	const float *xin = x; /* (x becomes the live rows packed, below) */
	int xkv = xkv_layer(fb, l, qr), together = !qr && !fb->cfg.dynaprop && W->n > 1 && sa_only(fb, l);

	if (qr && qr->packed_q) { /* the live rows' queries alone, from their inputs packed */
		pack_rows(a->gy, x, a->live, a->nlive, h); /* (a backward buffer, free until then) */
		dense_forward(fb, l, FB_PT_QKV, La->q, a->gy, W->wq, W->bq, a->nlive, h, A, NULL, 0, 0, NULL);
	} else
		dense_forward(fb, l, FB_PT_QKV, La->q, x, W->wq, W->bq, N, h, A, NULL, 0, 0, NULL);
	if (!xkv) { /* (else the heads go without keys and values) */
		dense_forward(fb, l, FB_PT_QKV, La->k, x, W->wk, W->bk, N, h, A, NULL, 0, 0, NULL);
		dense_forward(fb, l, FB_PT_QKV, La->v, x, W->wv, W->bv, N, h, A, NULL, 0, 0, NULL);
	}
	transform_matrices(La, W, ml, T);
	if (together) { /* every head SA, over every row: a sequence's heads one after another */
		const float *wma[MODEL_MAX_HEADS];
		uint64_t key[MODEL_MAX_HEADS];
		for (int j = 0; j < W->n; j++) {
			wma[j] = ml->op[j] == OP_SA_WMA ? P + W->wma[j] : NULL;
			key[j] = site(a->dropkey, l, j);
		}
		attention_forward_heads(W->n, La->ctx, La->probs, La->q, La->k, La->v, wma, a->mask, p, key,
		                        a->scratch, B, T, A, d);
	}
	for (int j = 0; j < W->n && !together; j++) {
		int op = ml->op[j], c = j * d;
		if (is_sa(op) && qr) {
			continue; /* below, on the live rows packed */
		} else if (is_sa(op)) {
			sa_forward(fb, l, j, &ap, NULL, p);
		} else if (op == OP_L_DFT) {
			transform_forward(NN_DFT, La->ctx + c, La->v + c, a->mask, La->dft[0], La->dft[1],
			                  La->dft[2], La->dft[3], a->scratch, B, T, A, d);
		} else if (op == OP_L_DCT) {
			transform_forward(NN_DCT, La->ctx + c, La->v + c, a->mask, La->dct[0], NULL,
			                  La->dct[1], NULL, a->scratch, B, T, A, d);
		} else {
			struct dsc_params w;
			dsc_weights(&w, P, W, j);
			dsc_forward(La->ctx + c, &La->dsc[j], La->q + c, La->k + c, La->v + c, &w, a->mask, B,
			            T, A, d, taps_of[op]);
		}
	}
	if (packed(fb, l)) {
		/* the heads' outputs and the residual at the live rows: the rest of the layer on those */
		N = a->nlive;
		if (N == 0) {
			if (fb->cfg.dynaprop)
				prune_attn_count(fb, l, &ap);
			return La->hout;
		}
		pack_rows(La->ctx, La->ctx, a->live, N, A);
		if (!qr || !qr->packed_q)                   /* (else done above) */
			pack_rows(a->gy, x, a->live, N, h); /* (a backward buffer, free until then) */
		x = a->gy;
		if (xkv) /* the heads' columns, written packed */
			xkv_forward(fb, l, qr, p, xin);
		for (int j = 0; j < W->n && qr && !xkv; j++)
			if (is_sa(ml->op[j]))
				sa_forward(fb, l, j, &ap, qr, p);
	}
	if (fb->cfg.dynaprop)
		prune_attn_count(fb, l, &ap);
	prune_act(fb, l, FB_PT_CTX, La->ctx, NULL, (size_t)N * A);
	struct fb_ln ln1 = {La->y, La->m1, La->r1, W->ln1w, W->ln1b},
	             ln2 = {La->hout, La->m2, La->r2, W->ln2w, W->ln2b};
	dense_forward_ln(fb, l, FB_PT_OUT, La->ares, La->ctx, W->wo, W->bo, N, A, h, La->keep_a, p,
	                 site(a->dropkey, l, SITE_ATTN_OUT), x, &ln1);
	for (int i = 0, fin = h; i < ml->nff; fin = ml->ff[i], i++) {
		ff_forward(fb, l, La->ffout[i], La->ffder[i], z, W->ffw[i], W->ffb[i], N, fin, ml->ff[i]);
		z = La->ffout[i];
	}
	dense_forward_ln(fb, l, FB_PT_OUT, La->fres, z, W->wout, W->bout, N, ml->ff[ml->nff - 1], h,
	                 La->keep_f, p, site(a->dropkey, l, SITE_FF_OUT), La->y, &ln2);
	if (!W->proj)
		return La->hout;
	dense_forward(fb, l, FB_PT_OUT, La->xnext, La->hout, W->wp, W->bp, N, h, W->hnext, NULL, 0, 0, NULL);
	return La->xnext;
}

static void
mlm_reserve(struct flexibert *fb, size_t M)
{
	struct fb_acts *a = fb->a;
	size_t hL = (size_t)fb->cfg.m.layer[fb->cfg.m.l - 1].h, V = (size_t)fb->cfg.vocab, off = 0;

	if (M <= a->Mcap && a->mmem)
		return;
	free(a->mmem);
	a->mmem = emalloc64(sizeof(float) * (M * (5 * hL + 2 * V + 4) + 64));
	a->g = a->mmem;
	a->tpre = a->g + M * hL;
	a->tact = a->tpre + M * hL;
	a->tln = a->tact + M * hL;
	a->tm = a->tln + M * hL;
	a->tr = a->tm + M;
	a->mlogits = a->tr + M;
	a->mdlogits = a->mlogits + M * V;
	off = (size_t)(a->mdlogits + M * V - a->mmem);
	a->rowlab = (int32_t *)(a->mmem + off);
	a->Mcap = M;
}

double
flexibert_forward(struct flexibert *fb, const int32_t *ids, const int32_t *labels, int B, int T, int training,
                  uint64_t dropkey)
{
	struct fb_acts *a;
	const struct model *m = &fb->cfg.m;
	const float *P = fb->params, *x;
	float p = training ? fb->cfg.dropout : 0.0f;
	int N = B * T, h0 = m->layer[0].h, hL = m->layer[m->l - 1].h, C = fb->cfg.labels;
	int count;

	reserve(fb, B, T);
	a = fb->a;
	fb->B = B, fb->T = T;
	a->dropkey = dropkey;
	a->training = training;
	take_ids(fb, ids, N);
	a->nlive = -1;
	if (fb->cfg.objective == FB_CLS) {
		for (int b = 0; b < B; b++)
			a->live[b] = b * T;
		a->nlive = B;
	} else if (labels) {
		a->nlive = 0;
		for (int i = 0; i < N; i++)
			if (labels[i] >= 0)
				a->live[a->nlive++] = i;
	}
	/* the live rows as query rows: only where few enough (attention_backward's gather of q for
	 * a WMA head needs at most half the rows) and at least one (a layer without live rows stops
	 * at its heads, all of them computed) */
	a->qlive = a->nlive > 0 && 2 * (long)a->nlive <= (long)N;
	if (a->qlive)
		for (int b = 0, r = 0; b <= B; b++) {
			while (r < a->nlive && a->live[r] < b * T)
				r++;
			a->qoff[b] = r;
		}
	embed_ln_forward(a->eres, a->emb, a->em, a->er, ids, P + fb->wte, P + fb->wpe, P + fb->wtt,
	                 P + fb->elnw, P + fb->elnb, B, T, h0, p, site(dropkey, 0, SITE_EMB));
	x = a->emb;
	for (int l = 0; l < m->l; l++)
		x = layer_forward(fb, l, x, B, T, p);
	fb->loss = 0;
	if (fb->cfg.objective == FB_CLS) {
		for (int b = 0; b < B; b++)
			memcpy(a->first + (size_t)b * hL, x + (size_t)b * hL, sizeof *x * (size_t)hL);
		matmul_forward(a->ppre, a->first, P + fb->poolw, P + fb->poolb, B, hL, hL);
		tanh_forward(a->pool, a->ppre, (size_t)B * hL);
		memcpy(a->pdrop, a->pool, sizeof *a->pool * (size_t)B * hL);
		dropout_apply(a->pdrop, (size_t)B * hL, p, site(dropkey, 0, SITE_POOL));
		matmul_forward(a->clogits, a->pdrop, P + fb->clsw, P + fb->clsb, B, hL, C);
		fb->logits = a->clogits;
		fb->nlogit_rows = B;
		if (labels) {
			memcpy(a->clabels, labels, sizeof *labels * (size_t)B);
			fb->loss = crossentropy_forward_backward(a->cdlogits, a->clogits, labels, B, C,
			                                         fb->cfg.smoothing, &count);
		}
		return fb->loss;
	}
	/* masked LM: the head runs on the labelled tokens only, which is all the loss depends on */
	a->M = 0;
	if (!labels) {
		fb->nlogit_rows = 0;
		return 0;
	}
	a->M = a->nlive; /* the labelled tokens, whose last layer's outputs x holds packed */
	mlm_reserve(fb, a->M ? (size_t)a->M : 1);
	for (int r = 0; r < a->M; r++) {
		a->rowlab[r] = labels[a->live[r]];
		memcpy(a->g + (size_t)r * hL, x + (size_t)r * hL, sizeof *x * (size_t)hL);
	}
	fb->nlogit_rows = a->M;
	fb->logits = a->mlogits;
	if (a->M == 0)
		return 0;
	matmul_forward(a->tpre, a->g, P + fb->mtw, P + fb->mtb, a->M, hL, hL);
	gelu_forward(a->tact, a->tpre, (size_t)a->M * hL);
	layernorm_forward(a->tln, a->tm, a->tr, a->tact, P + fb->mlnw, P + fb->mlnb, a->M, hL);
	matmul_forward(a->mlogits, a->tln, P + fb->decw, P + fb->decb, a->M, hL, fb->cfg.vocab);
	fb->loss = crossentropy_forward_backward(a->mdlogits, a->mlogits, a->rowlab, a->M, fb->cfg.vocab,
	                                         fb->cfg.smoothing, &count);
	return fb->loss;
}

/* ---- backward ---- */

/* x[0..n) = 0, the threads taking a share each where n is large: on 2 threads a serial memset of the
 * backward's buffers was 3% of the step */
static void
zero(float *x, size_t n)
{
	if (n < ((size_t)1 << 16)) {
		memset(x, 0, sizeof *x * n);
		return;
	}
#pragma omp parallel
	{
		size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
		size_t lo = n * t / nt, hi = n * (t + 1) / nt;
		memset(x + lo, 0, sizeof *x * (hi - lo));
	}
}

/* A dense layer's backward with DynaProp's sparse kernels, or the dense ones: dinp (may be NULL) is
 * added to, or overwritten when overwrite is set; dw and db are added to. */
static void
dense_backward(const struct flexibert *fb, float *dinp, float *dw, float *db, const float *dout,
               const float *inp, const float *w, int N, int C, int OC, int overwrite)
{
	if (fb->cfg.dynaprop) {
		matmul_backward_sparse(dinp, dw, db, dout, inp, w, N, C, OC, overwrite);
		return;
	}
	if (dinp && overwrite) {
		if (dw)
			matmul_backward_set(dinp, dw, db, dout, inp, w, NULL, N, C, OC);
		else
			matmul_backward_input(dinp, dout, w, N, C, OC, 0);
		return;
	}
	matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
}

/* The backward of a dense layer (w, its gradients dw and db; OC outputs, whose gradient is dout) whose
 * input act (N, C) is an FF layer's output (GELU's, derivative der): dw and db added to, and act's
 * buffer overwritten with the gradient at the FF layer's pre-activation, once the weight gradient
 * has read it; without DynaProp in one pass, the derivative in the product's registers */
static void
ff_backward(struct flexibert *fb, int l, float *act, float *dw, float *db, const float *dout, const float *w,
            const float *der, int N, int C, int OC)
{
	if (!fb->cfg.dynaprop) {
		matmul_backward_set(act, dw, db, dout, act, w, der, N, C, OC);
		return;
	}
	dense_backward(fb, NULL, dw, db, dout, act, w, N, C, OC, 0);
	dense_backward(fb, act, NULL, NULL, dout, NULL, w, N, C, OC, 1);
	gelu_back_prune(fb, l, act, der, (size_t)N * C);
}

/* Layer l's backward: gout (N, hnext) is the gradient of its output; writes the gradient of its input
 * x (N, h) into gin (which may be gout's buffer once gout is consumed: it is zeroed after use). */
/* SA head j of layer l backward, on the query rows qr (NULL: all), from a->gctx (packed with qr) */
static void
sa_backward(struct flexibert *fb, int l, int j, struct nn_attn_prune *ap, const struct nn_qrows *qr, float p,
            int set)
{
	struct fb_acts *a = fb->a;
	const struct fb_layer *W = &fb->L[l];
	const struct fb_lacts *La = &a->L[l];
	int wma = fb->cfg.m.layer[l].op[j] == OP_SA_WMA, c = j * W->d;

	if (fb->cfg.dynaprop && fb->prune.sample)
		sample_attention(fb, l, j, a->gctx, fb->B, fb->T);
	if (set) /* (without qr) its columns of gq, gk and gv written whole */
		attention_backward_set(a->gq + c, a->gk + c, a->gv + c, wma ? fb->grads + W->wma[j] : NULL,
		                       a->gctx + c, La->probs[j], La->q + c, La->k + c, La->v + c,
		                       wma ? fb->params + W->wma[j] : NULL, p, site(a->dropkey, l, j),
		                       fb->cfg.dynaprop ? ap : NULL, a->scratch, fb->B, fb->T, W->A, W->d);
	else
		attention_backward(a->gq + c, a->gk + c, a->gv + c, wma ? fb->grads + W->wma[j] : NULL,
		                   a->gctx + c, La->probs[j], La->q + c, La->k + c, La->v + c,
		                   wma ? fb->params + W->wma[j] : NULL, p, site(a->dropkey, l, j),
		                   fb->cfg.dynaprop ? ap : NULL, qr, a->scratch, fb->B, fb->T, W->A, W->d);
}

static int
layer_backward(struct flexibert *fb, int l, const float *x, float *gout, float *gin, int B, int T, float p,
               const struct nn_ln_back *after)
{
	struct fb_acts *a = fb->a;
	const struct fb_layer *W = &fb->L[l];
	const struct model_layer *ml = &fb->cfg.m.layer[l];
	struct fb_lacts *La = &a->L[l];
	const float *P = fb->params;
	float *G = fb->grads, *dH = gout, *dres = a->gf, *dy = a->gy, *dz, *dA = a->gh;
	int N = B * T, h = W->h, A = W->A, d = W->d, m = ml->nff;

	struct nn_attn_prune ap = attn_prune(fb);
	struct nn_qrows qrows;
	const struct nn_qrows *qr = live_queries(fb, l, &qrows);
	int xkv = xkv_layer(fb, l, qr), hset = !qr && sa_only(fb, l);
	int together = hset && !fb->cfg.dynaprop && W->n > 1 && !any_wma(fb, l);

	/* the heads add into these; with qr, the SA heads run before the rest is unpacked; without keys
	 * and values (xkv), the queries' gradient at the live rows alone. Where every head is SA and
	 * takes every row (hset), each writes its columns whole instead, and nothing is zeroed. */
	if (!hset) {
		zero(a->gq, (size_t)(xkv ? a->nlive : N) * A);
		if (!xkv) {
			zero(a->gk, (size_t)N * A);
			zero(a->gv, (size_t)N * A);
		}
	}
	if (packed(fb, l)) {
		/* gout holds the live rows, packed, and so does everything up to the heads' outputs */
		N = a->nlive;
		a->dead = B * T - N;
		if (N == 0) {
			a->dead = 0;
			N = B * T;
			zero(gin, (size_t)N * h);
			zero(a->gctx, (size_t)N * A);
			goto heads;
		}
	}
	if (W->proj) {
		dH = a->gh;
		prune_grad(fb, l, FB_PT_OUT, gout, La->xnext, NULL, (size_t)N * W->hnext);
		zero(dH, (size_t)N * h);
		dense_backward(fb, dH, G + W->wp, G + W->bp, gout, La->hout, P + W->wp, N, h, W->hnext, 0);
	}
	/* the FF sub-layer: LayerNorm, the residual, the output dense, the stack */
	/* dy: the gradient at the sub-layer's input (the residual's); dres: the output dense's, dropped */
	ln_back_drop(fb, l, dy, dres, G + W->ln2w, G + W->ln2b, dH, La->fres, P + W->ln2w, La->m2, La->r2, N,
	             h, La->keep_f, p, site(a->dropkey, l, SITE_FF_OUT));
	/* each FF activation's buffer takes its gradient once the weight gradient has read it */
	dz = La->ffout[m - 1];
	ff_backward(fb, l, dz, G + W->wout, G + W->bout, dres, P + W->wout, La->ffder[m - 1], N,
	            ml->ff[m - 1], h);
	/* the attention sub-layer's LayerNorm on the rows of dy as the FF stack's first dense gives
	 * them, where it can (ln1) */
	struct nn_ln_back ln1 = {.dinp = gin,
	                         .ddrop = dA,
	                         .dw = G + W->ln1w,
	                         .db = G + W->ln1b,
	                         .inp = La->ares,
	                         .w = P + W->ln1w,
	                         .mean = La->m1,
	                         .rstd = La->r1,
	                         .p_out = p,
	                         .key_out = site(a->dropkey, l, SITE_ATTN_OUT)};
	int ln1_done = 0;
	for (int i = m - 1; i >= 0; i--) {
		int fin = i > 0 ? ml->ff[i - 1] : h;
		if (i == 0) {
			ln1_done = !fb->cfg.dynaprop &&
			           matmul_backward_ln(dy, G + W->ffw[0], G + W->ffb[0], dz, La->y,
			                              P + W->ffw[0], N, h, ml->ff[0], &ln1) == 0;
			if (!ln1_done)
				dense_backward(fb, dy, G + W->ffw[0], G + W->ffb[0], dz, La->y, P + W->ffw[0],
				               N, h, ml->ff[0], 0);
			break;
		}
		ff_backward(fb, l, La->ffout[i - 1], G + W->ffw[i], G + W->ffb[i], dz, P + W->ffw[i],
		            La->ffder[i - 1], N, fin, ml->ff[i]);
		dz = La->ffout[i - 1];
	}
	/* the attention sub-layer: LayerNorm, the residual, the output dense */
	if (!ln1_done)
		ln_back_drop(fb, l, gin, dA, G + W->ln1w, G + W->ln1b, dy, La->ares, P + W->ln1w, La->m1,
		             La->r1, N, h, La->keep_a, p, site(a->dropkey, l, SITE_ATTN_OUT));
	dense_backward(fb, a->gctx, G + W->wo, G + W->bo, dA, La->ctx, P + W->wo, N, A, h, 1);
	prune_grad(fb, l, FB_PT_CTX, a->gctx, La->ctx, NULL, (size_t)N * A);
	if (packed(fb, l)) {
		if (xkv) {
			/* gin's live rows to their places first: the heads add into every row. Then the
			 * queries' projection on the live rows, its input gradient into gh (free) and
			 * added to its rows */
			unpack_rows(gin, a->live, N, B * T, h);
			xkv_backward(fb, l, qr, p, x, gin);
			pack_rows(a->gf, x, a->live, N, h);
			dense_backward(fb, a->gh, G + W->wq, G + W->bq, a->gq, a->gf, P + W->wq, N, h, A, 1);
			for (int r = 0; r < N; r++)
				add_run(gin + (size_t)a->live[r] * h, a->gh + (size_t)r * h, (size_t)h);
			N = B * T;
			a->dead = 0;
			goto heads;
		}
		for (int j = 0; j < W->n && qr; j++) /* the SA heads, from the packed gctx */
			if (is_sa(ml->op[j]))
				sa_backward(fb, l, j, &ap, qr, p, 0);
		if (qr && qr->packed_q) { /* the queries' projection, on the live rows (gin's, packed) */
			prune_grad(fb, l, FB_PT_QKV, a->gq, La->q, NULL, (size_t)N * A);
			pack_rows(a->gf, x, a->live, N, h); /* (the input, packed again: gy is dy now) */
			dense_backward(fb, gin, G + W->wq, G + W->bq, a->gq, a->gf, P + W->wq, N, h, A, 0);
		}
		if (!qr || !sa_only(fb, l)) /* (else nothing reads gctx further) */
			unpack_rows(a->gctx, a->live, N, B * T, A);
		unpack_rows(gin, a->live, N, B * T, h);
		N = B * T;
		a->dead = 0;
	}
	/* the heads */
heads:
	if (together) { /* (as in the forward) */
		uint64_t key[MODEL_MAX_HEADS];
		for (int j = 0; j < W->n; j++)
			key[j] = site(a->dropkey, l, j);
		attention_backward_set_heads(W->n, a->gq, a->gk, a->gv, a->gctx, La->probs, La->q, La->k,
		                             La->v, p, key, a->scratch, B, T, A, d);
	}
	for (int j = 0; j < W->n && !together; j++) {
		int op = ml->op[j], c = j * d;
		if (is_sa(op) && qr) {
			continue; /* done above */
		} else if (is_sa(op)) {
			sa_backward(fb, l, j, &ap, NULL, p, hset);
		} else if (op == OP_L_DFT) {
			transform_backward(NN_DFT, a->gv + c, a->gctx + c, a->mask, La->dft[0], La->dft[1],
			                   La->dft[2], La->dft[3], a->scratch, B, T, A, d);
		} else if (op == OP_L_DCT) {
			transform_backward(NN_DCT, a->gv + c, a->gctx + c, a->mask, La->dct[0], NULL,
			                   La->dct[1], NULL, a->scratch, B, T, A, d);
		} else {
			struct dsc_params w;
			struct dsc_grads g = {G + W->cdw[j], G + W->cpw[j], G + W->cbeta[j], G + W->ckw[j],
			                      G + W->ckb[j], G + W->cuw[j], G + W->cub[j]};
			dsc_weights(&w, P, W, j);
			dsc_backward(a->gq + c, a->gk + c, a->gv + c, &g, a->gctx + c, &La->dsc[j], La->q + c,
			             La->k + c, La->v + c, &w, a->mask, a->scratch, B, T, A, d, taps_of[op]);
		}
	}
	if (fb->cfg.dynaprop)
		prune_attn_count(fb, l, &ap);
	if (!qr || !qr->packed_q)
		prune_grad(fb, l, FB_PT_QKV, a->gq, La->q, NULL, (size_t)N * A);
	prune_grad(fb, l, FB_PT_QKV, a->gk, La->k, NULL, (size_t)N * A);
	prune_grad(fb, l, FB_PT_QKV, a->gv, La->v, NULL, (size_t)N * A);
	if (!fb->cfg.dynaprop && (!qr || !qr->packed_q) && !xkv) { /* the three in one pass over x */
		float *dw[] = {G + W->wq, G + W->wk, G + W->wv}, *db[] = {G + W->bq, G + W->bk, G + W->bv};
		const float *dout[] = {a->gq, a->gk, a->gv}, *w[] = {P + W->wq, P + W->wk, P + W->wv};
		if (after && matmul_backward_n_ln(3, gin, dw, db, dout, x, w, N, h, A, after) == 0)
			return 1;
		matmul_backward_n(3, gin, dw, db, dout, x, w, N, h, A);
		return 0;
	}
	if (!qr || !qr->packed_q)
		dense_backward(fb, gin, G + W->wq, G + W->bq, a->gq, x, P + W->wq, N, h, A, 0);
	if (xkv)
		return 0;
	dense_backward(fb, gin, G + W->wk, G + W->bk, a->gk, x, P + W->wk, N, h, A, 0);
	dense_backward(fb, gin, G + W->wv, G + W->bv, a->gv, x, P + W->wv, N, h, A, 0);
	return 0;
}

void
flexibert_zero_grad(struct flexibert *fb)
{
	struct fb_lazy *z = fb->lazy;
	size_t lo = fb->wte, hi = fb->wte + (size_t)z->V * z->h;

	if (fb->grads_zero)
		return;
	if (z->eager) {
		zero(fb->grads, fb->nparams);
		return;
	}
	/* in one region, the rows that hold a gradient too: serial, their memsets were 0.07 ms of a
	 * 2-thread step (bench/train) */
#pragma omp parallel
	{
		size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
		size_t n = lo + (fb->nparams - hi), a = n * t / nt, b = n * (t + 1) / nt;
		if (a < lo) /* [a, b) of the elements outside the table, those before it first */
			memset(fb->grads + a, 0, sizeof *fb->grads * ((b < lo ? b : lo) - a));
		if (b > lo) {
			a = a > lo ? a : lo;
			memset(fb->grads + hi + (a - lo), 0, sizeof *fb->grads * (b - a));
		}
#pragma omp for schedule(static)
		for (int r = 0; r < z->V; r++)
			if (z->mark[r]) {
				memset(fb->grads + lo + (size_t)r * z->h, 0,
				       sizeof *fb->grads * (size_t)z->h);
				z->mark[r] = 0;
			}
	}
}

void
flexibert_backward(struct flexibert *fb)
{
	struct fb_acts *a = fb->a;
	const struct model *m = &fb->cfg.m;
	const float *P = fb->params;
	float *G = fb->grads, p = a->training ? fb->cfg.dropout : 0.0f;
	int B = fb->B, T = fb->T, N = B * T, hL = m->layer[m->l - 1].h, h0 = m->layer[0].h;
	float *gx = a->gx, *gin = a->gx2;

	fb->grads_zero = 0;

	/* the last layer reads its output's gradient at its live rows alone, packed, where it runs on
	 * them (every row's zeroed, 2 MB at B 32, T 128, took 0.2 ms of a 2-thread step) */
	zero(gx, (size_t)(packed(fb, m->l - 1) && a->nlive >= 0 ? a->nlive : N) * hL);
	if (fb->cfg.objective == FB_CLS) {
		float *dpd = a->gf, *dpp = a->gh, *dfirst = a->gy; /* (B, hL) each, free until the layers */
		zero(dpd, (size_t)B * hL);
		zero(dpp, (size_t)B * hL);
		zero(dfirst, (size_t)B * hL);
		matmul_backward(dpd, G + fb->clsw, G + fb->clsb, a->cdlogits, a->pdrop, P + fb->clsw, B, hL,
		                fb->cfg.labels);
		dropout_apply(dpd, (size_t)B * hL, p, site(a->dropkey, 0, SITE_POOL));
		tanh_backward(dpp, a->pool, dpd, (size_t)B * hL);
		matmul_backward(dfirst, G + fb->poolw, G + fb->poolb, dpp, a->first, P + fb->poolw, B, hL,
		                hL);
		for (int b = 0; b < B; b++)
			memcpy(gx + (size_t)b * hL, dfirst + (size_t)b * hL, sizeof *gx * (size_t)hL);
	} else if (a->M > 0) {
		size_t M = (size_t)a->M;
		float *dtln = a->gf, *tmp = a->gh; /* (M, hL) each, free until the layers */
		zero(dtln, M * hL);
		matmul_backward(dtln, G + fb->decw, G + fb->decb, a->mdlogits, a->tln, P + fb->decw, a->M, hL,
		                fb->cfg.vocab);
		zero(tmp, M * hL);
		layernorm_backward(tmp, G + fb->mlnw, G + fb->mlnb, dtln, a->tact, P + fb->mlnw, a->tm, a->tr,
		                   a->M, hL);
		zero(dtln, M * hL);
		gelu_backward(dtln, a->tpre, tmp, M * hL);
		zero(tmp, M * hL);
		matmul_backward(tmp, G + fb->mtw, G + fb->mtb, dtln, a->g, P + fb->mtw, a->M, hL, hL);
		for (size_t r = 0; r < M; r++)
			memcpy(gx + r * hL, tmp + r * hL, sizeof *gx * (size_t)hL);
	}
	int emb_done = 0;
	for (int l = m->l - 1; l >= 0; l--) {
		const float *x = l > 0 ? (fb->L[l - 1].proj ? a->L[l - 1].xnext : a->L[l - 1].hout) : a->emb;
		/* the embeddings' dropout and LayerNorm on the rows of the first layer's input gradient
		 * as its queries', keys' and values' products give them, where they can: into gx, which
		 * that layer's gout leaves free, as below */
		struct nn_ln_back emb = {.dinp = gx,
		                         .dw = G + fb->elnw,
		                         .db = G + fb->elnb,
		                         .inp = a->eres,
		                         .w = P + fb->elnw,
		                         .mean = a->em,
		                         .rstd = a->er,
		                         .p_in = p,
		                         .key_in = site(a->dropkey, 0, SITE_EMB)};
		float *t;
		emb_done = layer_backward(fb, l, x, gx, gin, B, T, p, l == 0 ? &emb : NULL);
		t = gx, gx = gin, gin = t;
	}
	/* embeddings */
	if (!emb_done) {
		dropout_apply(gx, (size_t)N * h0, p, site(a->dropkey, 0, SITE_EMB));
		layernorm_backward_set(gin, G + fb->elnw, G + fb->elnb, gx, a->eres, P + fb->elnw, a->em,
		                       a->er, N, h0);
	}
	embed_backward(G + fb->wte, G + fb->wpe, G + fb->wtt, gin, a->ids, 0, B, T, h0);
	for (int i = 0; i < N; i++) /* the rows that now hold a gradient */
		if (a->ids[i] != 0)
			fb->lazy->mark[a->ids[i]] = 1;
}

/* ---- the optimizer ---- */

/* The sum of squares of g[0..n) in double, after DynaProp's weight rule in the same pass: g[i] = 0
 * where |g[i]| <= tau (none when tau < 0), counted into *zeros. Stores go only to runs of 128 that
 * hold a nonzero to prune: most of the embeddings' gradient is zero already, and its cache lines
 * stay clean. */
CLONES static double
sumsq_run(float *g, size_t n, float tau, size_t *zeros)
{
	double s = 0;
	size_t z = 0;

	if (tau < 0) {
#pragma omp simd reduction(+ : s)
		for (size_t i = 0; i < n; i++)
			s += (double)g[i] * g[i];
		return s;
	}
	for (size_t c0 = 0; c0 < n; c0 += 128) {
		/* counts in float (exact to 2^24), so the loop vectorizes */
		float *gc = g + c0, zc = 0, hit = 0;
		int m = n - c0 < 128 ? (int)(n - c0) : 128;
#pragma omp simd reduction(+ : s, zc, hit)
		for (int i = 0; i < m; i++) {
			float x = gc[i], a = fabsf(x), p = a <= tau ? 1.0f : 0.0f;
			hit += a > 0 ? p : 0.0f;
			x -= p * x;
			s += (double)x * x;
			zc += p;
		}
		z += (size_t)zc;
		if (hit > 0)
#pragma omp simd
			for (int i = 0; i < m; i++)
				gc[i] = fabsf(gc[i]) <= tau ? 0.0f : gc[i];
	}
	*zeros += z;
	return s;
}

/* The rows of the token embeddings that hold a gradient, in row order: every row when eager. */
static void
lazy_list(struct fb_lazy *z)
{
	z->nrows = 0;
	for (int r = 0; r < z->V; r++)
		if (z->eager || z->mark[r])
			z->rows[z->nrows++] = r;
}

/* The first of z's listed rows at or after row r */
static int
rows_from(const struct fb_lazy *z, int r)
{
	int lo = 0, hi = z->nrows;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (z->rows[mid] < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

double
flexibert_clip(struct flexibert *fb, double max_norm)
{
	struct fb_prune *pr = &fb->prune;
	double ss = 0, norm, c;
	float *g = fb->grads;
	size_t n = fb->nparams, zeros = 0;
	float tau = fb->cfg.dynaprop ? pr->tau_weight : -1.0f;

	if (fb->cfg.dynaprop && pr->sample == 1)
		prune_sample(fb, FB_SP_WGRAD, 0, g, n);
	/* per thread, added in thread order: the same bits for a thread count; each thread's share of
	 * the token embeddings' rows that hold a gradient after its share of the rest, in row order
	 * (the other rows are 0; serial, these rows were 0.1 ms of a 2-thread step) */
	struct fb_lazy *lz = fb->lazy;
	size_t lo = fb->wte, hi = fb->wte + (size_t)lz->V * lz->h;
	double part[256] = {0};
	size_t zpart[256] = {0};
	lazy_list(lz);
#pragma omp parallel num_threads(omp_get_max_threads() < 256 ? omp_get_max_threads() : 256)
	{
		double s = 0;
		size_t z = 0;
#pragma omp for schedule(static) nowait
		for (size_t i0 = 0; i0 < lo; i0 += 4096)
			s += sumsq_run(g + i0, lo - i0 < 4096 ? lo - i0 : 4096, tau, &z);
#pragma omp for schedule(static) nowait
		for (size_t i0 = hi; i0 < n; i0 += 4096)
			s += sumsq_run(g + i0, n - i0 < 4096 ? n - i0 : 4096, tau, &z);
		/* the rows split by their index, as eager's every row would be: the rows without a
		 * gradient add exact zeros, and deferring them leaves the bits unchanged */
		int nt = omp_get_num_threads(), t = omp_get_thread_num();
		int k0 = rows_from(lz, (int)((long)lz->V * t / nt)),
		    k1 = rows_from(lz, (int)((long)lz->V * (t + 1) / nt));
		for (int k = k0; k < k1; k++)
			s += sumsq_run(g + lo + (size_t)lz->rows[k] * lz->h, (size_t)lz->h, tau, &z);
		part[t] = s;
		zpart[t] = z;
	}
	for (int t = 0; t < 256; t++)
		ss += part[t], zeros += zpart[t];
	zeros += (size_t)(lz->V - lz->nrows) * (size_t)lz->h;
	if (fb->cfg.dynaprop) {
		pr->zeros[0][FB_SP_WGRAD] += (double)zeros;
		pr->total[0][FB_SP_WGRAD] += (double)n;
	}
	norm = sqrt(ss);
	c = max_norm / (norm + 1e-6);
	fb->gscale = c < 1 ? (float)c : 1.0f;
	return norm;
}

double
flexibert_lr(double lr, long step, long warmup, long total)
{
	if (step < warmup)
		return lr * (double)(step + 1) / (double)warmup;
	if (total <= warmup)
		return lr;
	return lr * (double)(total - step) / (double)(total - warmup);
}

/* AdamW on element j (torch's order: decay, moments, update), in float as torch computes it */
static inline void
adamw_one(float *w, float *m, float *v, size_t j, float gj, float decay, float lr, float ibc1, float ibc2)
{
	float mj = 0.9f * m[j] + 0.1f * gj, vj = 0.999f * v[j] + 0.001f * gj * gj;
	m[j] = mj;
	v[j] = vj;
	w[j] = w[j] * decay - lr * (mj * ibc1) / (sqrtf(vj * ibc2) + 1e-8f);
}

/* AdamW on n elements with gradient g (read only: the deferred rows' updates pass a shared zero) */
CLONES static void
adamw_run(float *w, float *m, float *v, const float *g, size_t n, float gscale, float decay, float lr,
          float ibc1, float ibc2)
{
#pragma omp simd
	for (size_t j = 0; j < n; j++)
		adamw_one(w, m, v, j, g[j] * gscale, decay, lr, ibc1, ibc2);
}

/* adamw_run on a step's gradient, which it leaves 0: flexibert_zero_grad's pass over the gradients
 * (0.27 ms of a 1-thread step) done where they are in cache already */
CLONES static void
adamw_clear(float *w, float *m, float *v, float *g, size_t n, float gscale, float decay, float lr, float ibc1,
            float ibc2)
{
#pragma omp simd
	for (size_t j = 0; j < n; j++) {
		float gj = g[j] * gscale;
		g[j] = 0.0f;
		adamw_one(w, m, v, j, gj, decay, lr, ibc1, ibc2);
	}
}

/* Row r of the token embeddings brought up to date: the updates it missed, with a zero gradient. */
static void
lazy_row(struct flexibert *fb, int r, int from)
{
	struct fb_lazy *z = fb->lazy;
	size_t o = fb->wte + (size_t)r * z->h;

	for (int s = from; s < z->n; s++)
		adamw_run(fb->params + o, fb->m + o, fb->v + o, z->zero, (size_t)z->h, 1.0f, z->hist[s][1],
		          z->hist[s][0], z->hist[s][2], z->hist[s][3]);
	z->at[r] = z->n;
}

/* Before a forward pass: its ids (n) and their mask into the activations, and the token embeddings'
 * rows they read brought up to date (the updates they missed), in one region: on 2 threads the
 * serial copy and mask took 30-150 us of a step. */
static void
take_ids(struct flexibert *fb, const int32_t *ids, int n)
{
	struct fb_acts *a = fb->a;
	struct fb_lazy *z = fb->lazy;
	int nt = 0;

	for (int i = 0; i < n && z->n; i++) {
		int r = ids[i];
		if (r >= 0 && r < z->V && z->at[r] >= 0 && z->at[r] < z->n) {
			z->at[r] = -1 - z->at[r]; /* listed */
			z->todo[nt++] = r;
		}
	}
#pragma omp parallel
	{
#pragma omp for schedule(static) nowait
		for (int i = 0; i < n; i++) {
			a->ids[i] = ids[i];
			a->mask[i] = ids[i] != 0;
		}
#pragma omp for schedule(dynamic, 4)
		for (int k = 0; k < nt; k++)
			lazy_row(fb, z->todo[k], -1 - z->at[z->todo[k]]);
	}
}

void
flexibert_sync(struct flexibert *fb)
{
	struct fb_lazy *z = fb->lazy;

	if (!z || !z->n)
		return;
#pragma omp parallel for schedule(dynamic, 16)
	for (int r = 0; r < z->V; r++)
		if (z->at[r] < z->n)
			lazy_row(fb, r, z->at[r]);
	z->n = 0;
	memset(z->at, 0, sizeof *z->at * (size_t)z->V);
}

void
flexibert_set_eager(struct flexibert *fb, int eager)
{
	flexibert_sync(fb);
	fb->lazy->eager = eager;
	memset(fb->lazy->mark, 1, (size_t)fb->lazy->V); /* the next flexibert_zero_grad clears every row */
	fb->grads_zero = 0;
}

void
flexibert_adamw(struct flexibert *fb, double lr, double wd)
{
	const double b1 = 0.9, b2 = 0.999;
	struct fb_lazy *z = fb->lazy;
	double bc1, bc2;
	float lrf = (float)lr, i1, i2, zdecay = fb->p[z->pi].decay ? (float)(1 - lr * wd) : 1.0f;

	fb->step++;
	bc1 = 1 - pow(b1, (double)fb->step);
	bc2 = 1 - pow(b2, (double)fb->step);
	i1 = (float)(1 / bc1), i2 = (float)(1 / bc2);
	if (z->n == LAZY_CAP)
		flexibert_sync(fb);
	lazy_list(z);
	size_t all = 0;
	for (int i = 0; i < fb->np; i++)
		all += i == z->pi ? 0 : fb->p[i].n;
	/* one parallel region for every tensor (each element's update is its own, so no barrier between
	 * tensors): dozens of small tensors each paid a fork and a join. The tensors other than the
	 * token embeddings, end to end, in an equal part per thread: split tensor by tensor in blocks
	 * of 4096, each tensor under 4096 went whole to the first thread, which took 0.2 ms a step
	 * longer than the second on 2 threads. Then the token embeddings by rows, those that hold a
	 * gradient. */
#pragma omp parallel
	{
		int t = omp_get_thread_num(), nt = omp_get_num_threads();
		size_t lo = all * (size_t)t / (size_t)nt, hi = all * (size_t)(t + 1) / (size_t)nt, at = 0;
		for (int i = 0; i < fb->np && at < hi; i++) {
			const struct fb_param *pp = &fb->p[i];
			size_t n = pp->n, a = lo > at ? lo - at : 0, b = hi - at < n ? hi - at : n;
			if (i == z->pi)
				continue;
			if (a < b)
				adamw_clear(fb->params + pp->off + a, fb->m + pp->off + a,
				            fb->v + pp->off + a, fb->grads + pp->off + a, b - a, fb->gscale,
				            pp->decay ? (float)(1 - lr * wd) : 1.0f, lrf, i1, i2);
			at += n;
		}
#pragma omp for schedule(static) nowait
		for (int k = 0; k < z->nrows; k++) {
			int r = z->rows[k];
			size_t o = fb->wte + (size_t)r * z->h;
			if (z->at[r] < z->n)
				lazy_row(fb, r, z->at[r]);
			adamw_clear(fb->params + o, fb->m + o, fb->v + o, fb->grads + o, (size_t)z->h,
			            fb->gscale, zdecay, lrf, i1, i2);
			z->at[r] = z->n + 1;
			z->mark[r] = 0;
		}
	}
	z->hist[z->n][0] = lrf;
	z->hist[z->n][1] = zdecay;
	z->hist[z->n][2] = i1;
	z->hist[z->n][3] = i2;
	z->n++;
	fb->gscale = 1;
	fb->grads_zero = 1;
}

/* ---- FLOPs ---- */

double
flexibert_flops(const struct fb_config *cfg, int B, int T, int training)
{
	const struct model *m = &cfg->m;
	double N = (double)B * T, macs = 0, Td = T;
	double live = cfg->objective == FB_CLS ? B : 0.15 * N; /* the rows the loss depends on */
	int hL = m->layer[m->l - 1].h;

	for (int l = 0; l < m->l; l++) {
		const struct model_layer *L = &m->layer[l];
		double h = L->h, d = L->d, A = (double)L->n * L->d, fin = h;
		double Np = l == m->l - 1 ? live : N; /* past the attention, the last layer's live rows */
		int hnext = l + 1 < m->l ? m->layer[l + 1].h : L->h;
		int pq = l == m->l - 1 && Np < N && 2 * Np <= N; /* queries at the live rows alone */
		int xkv = pq && !cfg->dynaprop;                  /* and no keys or values (xkv_layer) */
		for (int j = 0; j < L->n; j++)
			pq &= !is_conv(L->op[j]), xkv &= is_sa(L->op[j]);
		macs += (pq ? Np : N) * h * A + (xkv ? 0 : N * h * A * 2) + Np * A * h;
		for (int j = 0; j < L->n; j++) {
			int op = L->op[j];
			double k = taps_of[op];
			if (xkv) /* q' wk, its scores against x, drop(P) x, and that by wv */
				macs += Np * (2 * d * h + 2 * Td * h) + (op == OP_SA_WMA ? Np * d * d : 0);
			else if (is_sa(op) && Np < N && 2 * Np <= N) /* the live rows' queries alone */
				macs += 2 * Np * Td * d + (op == OP_SA_WMA ? Np * d * d : 0);
			else if (is_sa(op))
				macs += 2 * B * Td * Td * d + (op == OP_SA_WMA ? N * d * d : 0);
			else if (op == OP_L_DFT)
				macs += 2 * B * (Td * Td * d + Td * d * d);
			else if (op == OP_L_DCT)
				macs += B * (Td * Td * d + Td * d * d);
			else
				macs += N * (2 * d * k + 2 * d * d + k * d);
		}
		for (int i = 0; i < L->nff; i++) {
			macs += Np * fin * L->ff[i];
			fin = L->ff[i];
		}
		macs += Np * fin * h;
		if (hnext != L->h)
			macs += N * h * hnext;
	}
	if (cfg->objective == FB_CLS)
		macs += (double)B * hL * (hL + cfg->labels);
	else
		macs += 0.15 * N * hL * (hL + cfg->vocab);
	return 2 * macs * (training ? 3 : 1);
}

/* ---- parameters as tensors ---- */

int
flexibert_export(struct flexibert *fb, struct tensor_set *set, const char *prefix, const float *src,
                 struct tc_error *err)
{
	flexibert_sync(fb);
	for (int i = 0; i < fb->np; i++) {
		const struct fb_param *pp = &fb->p[i];
		int64_t shape[3] = {pp->shape[0], pp->shape[1], pp->shape[2]};
		char name[160];
		struct tensor *t;
		snprintf(name, sizeof name, "%s%s", prefix, pp->name);
		if (!(t = tensor_set_add(set, name, TENSOR_F32, pp->ndim, shape, err)))
			return -1;
		memcpy(t->data, src + pp->off, sizeof(float) * pp->n);
	}
	return 0;
}

int
flexibert_import(struct flexibert *fb, const struct tensor_set *set, const char *prefix, float *dst,
                 struct tc_error *err)
{
	flexibert_sync(fb);
	for (int i = 0; i < fb->np; i++) {
		const struct fb_param *pp = &fb->p[i];
		const struct tensor *t;
		char name[160];
		snprintf(name, sizeof name, "%s%s", prefix, pp->name);
		if (!(t = tensor_set_find(set, name)))
			return tc_error_set(err, "missing tensor '%s'", name);
		if (t->dtype != TENSOR_F32 || t->ndim != pp->ndim)
			return tc_error_set(err, "tensor '%s': expected F32 with %d dimensions", name,
			                    pp->ndim);
		for (int k = 0; k < pp->ndim; k++)
			if (t->shape[k] != pp->shape[k])
				return tc_error_set(err, "tensor '%s': dimension %d is %lld, expected %d",
				                    name, k, (long long)t->shape[k], pp->shape[k]);
		memcpy(dst + pp->off, t->data, sizeof(float) * pp->n);
	}
	return 0;
}
