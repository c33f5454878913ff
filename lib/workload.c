/*
 * workload.c: FlexiBERT 2.0 models decomposed into tiled operations, forward and backward.
 *
 * The model is the one tc-train trains (shared/reference/flexibert-ops.md, with this project's
 * decisions): learned absolute positions; per head, Q, K and V projections only where the head
 * uses them (SA and DSC heads: all three; LT heads: V); SA heads return softmax(Q K^T) V (WMA:
 * Q W K^T); LT heads the orthonormal 2-D DFT (real part: C V C' - S V S', four products) or DCT-II
 * (C V C', two products) of their V slice; DSC heads the span-based dynamic convolution of
 * section 8 (depthwise k-tap and pointwise convolution of K, gate with Q, kernel generator,
 * softmax over taps, value map, dynamic k-tap convolution); one output projection per layer;
 * post-norm residual blocks; FF stacks with GELU after every layer; a bare projection between
 * layers of different width; a pooler and a classifier on the first token.
 *
 * Backward follows reverse-mode differentiation of exactly those operations: every matrix
 * product Y = X W of a trainable W gives dW = X^T dY and dX = dY W^T; products of two
 * activations give both operand gradients; softmax, layer-norm and GELU backward run on the
 * units that ran them forward; the embedding gradient is a scatter-add of the touched rows; the
 * optimizer then updates every parameter, reading its state from main memory.
 *
 * Workload sizes: BERT-Tiny at batch 4 x 128 tokens has 48 forward ops; training adds 121.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

const char *const wl_kind_names[WL_NKIND] = {"matmul",  "conv",      "elementwise",
                                             "softmax", "layernorm", "update"};
const char *const wl_class_names[WL_NCLASS] = {"activation",      "gradient", "weight",
                                               "weight_gradient", "state",    "constant"};

struct builder {
	struct workload *w;
	const struct wl_options *o;
	int phase;
	int block, stream;
};

static int tensor(struct builder *b, int cls, double elements, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
tensor(struct builder *b, int cls, double elements, const char *fmt, ...)
{
	struct workload *w = b->w;
	struct wl_tensor *t;
	va_list ap;

	w->t = egrow(w->t, &w->capt, (size_t)w->nt + 1, sizeof *w->t);
	t = &w->t[w->nt];
	memset(t, 0, sizeof *t);
	if (b->o->names || cls == WL_CONST) { /* constants are shared by name */
		va_start(ap, fmt);
		vsnprintf(t->name, sizeof t->name, fmt, ap);
		va_end(ap);
	}
	t->cls = (unsigned char)cls;
	t->elements = elements;
	t->producer = -1;
	t->last_use = -1;
	if (cls == WL_WEIGHT && b->o->training)
		t->writeback = 1;
	return w->nt++;
}

/* A trainable weight tensor (rows x cols), counted in the parameters. */
static int
weight(struct builder *b, double rows, double cols, const char *name)
{
	b->w->params += rows * cols;
	return tensor(b, WL_WEIGHT, rows * cols, "%s", name);
}

static void
read_tensor(struct builder *b, struct wl_op *op, int t)
{
	if (t < 0)
		return;
	for (int i = 0; i < op->nin; i++)
		if (op->in[i] == t)
			return;
	if (op->nin < WL_MAX_IN)
		op->in[op->nin++] = t;
	b->w->t[t].last_use = (int)(op - b->w->op);
}

static struct wl_op *
op_new(struct builder *b, int kind, int unit, const char *name)
{
	struct workload *w = b->w;
	struct wl_op *op;

	w->op = egrow(w->op, &w->capop, (size_t)w->nop + 1, sizeof *w->op);
	op = &w->op[w->nop++];
	memset(op, 0, sizeof *op);
	if (b->o->names)
		snprintf(op->name, sizeof op->name, "%s", name);
	op->kind = (unsigned char)kind;
	op->unit = (unsigned char)unit;
	op->phase = (unsigned char)b->phase;
	op->block = b->block;
	op->stream = b->stream;
	op->a = op->b = op->out = -1;
	op->k = 1;
	if (b->stream + 1 > w->nstream_max)
		w->nstream_max = b->stream + 1;
	return op;
}

/* The result tensor of op, of class cls and the given number of elements. */
static int
result_n(struct builder *b, struct wl_op *op, int cls, double elements)
{
	int idx = (int)(op - b->w->op);
	int t = tensor(b, cls, elements, "%s", op->name);

	b->w->op[idx].out = t;
	b->w->t[t].producer = idx;
	return t;
}

/* The result tensor of op: one element per (b, i, j). */
static int
result(struct builder *b, struct wl_op *op, int cls)
{
	return result_n(b, op, cls, (double)op->bt * (double)op->m * (double)op->n);
}

/* A constant (a transform matrix), shared by every op that names it. */
static int
constant(struct builder *b, double elements, const char *name)
{
	for (int i = 0; i < b->w->nt; i++)
		if (b->w->t[i].cls == WL_CONST && strcmp(b->w->t[i].name, name) == 0)
			return i;
	return tensor(b, WL_CONST, elements, "%s", name);
}

static void
new_block(struct builder *b)
{
	b->block = ++b->w->nblock - 1;
	b->stream = 0;
}

/*
 * C (bt, m, n) = A (bt?, m, k) x B (bt?, k, n): a_batched and b_batched say whether an operand
 * has its own matrix per batch element (activations) or one for all (weights, transforms).
 */
static int
matmul(struct builder *b, const char *name, int A, int B, int cls, long bt, long m, long k, long n,
       int a_batched, int b_batched)
{
	struct wl_op *op = op_new(b, WL_MATMUL, UNIT_MAC, name);
	int bdim = bt > 1 ? DIM_B : 0;

	op->bt = bt, op->m = m, op->k = k, op->n = n;
	op->k_tiled = 1;
	op->dep_a = (unsigned char)((a_batched ? bdim : 0) | DIM_I | DIM_K);
	op->dep_b = (unsigned char)((b_batched ? bdim : 0) | DIM_K | DIM_J);
	op->dep_out = (unsigned char)(bdim | DIM_I | DIM_J);
	op->a = A, op->b = B;
	read_tensor(b, op, A);
	read_tensor(b, op, B);
	b->w->macs += (double)bt * m * n * k;
	return result(b, op, cls);
}

/* Activation rows (B x N, h) times a shared weight (h, n): the most common product. */
static int
linear(struct builder *b, const char *name, int X, int W, int cls, long h, long n)
{
	return matmul(b, name, X, W, cls, b->o->batch, b->o->seq, h, n, 1, 0);
}

/* Weight gradient: dW (rows, cols) = X^T dY, the reduction over all B x N positions. */
static int
wgrad(struct builder *b, const char *name, int X, int dY, long rows, long cols)
{
	return matmul(b, name, X, dY, WL_WGRAD, 1, rows, b->o->batch * b->o->seq, cols, 0, 0);
}

/*
 * A taps-long convolution along the tokens of X (B, N, channels): kern depends on the loops in
 * kern_dep (a depthwise weight on the channel j; dynamic kernels on the batch and token b, i),
 * the result on those in out_dep, and has out_elements elements.
 */
static int
conv(struct builder *b, const char *name, int X, int kern, int kern_dep, int out_dep, int cls, long channels,
     long taps, double out_elements)
{
	struct wl_op *op = op_new(b, WL_CONV, UNIT_MAC, name);
	int keep = b->o->batch > 1 ? ~0 : ~DIM_B;

	op->bt = b->o->batch, op->m = b->o->seq, op->n = channels, op->k = taps;
	op->dep_a = (unsigned char)((DIM_B | DIM_I | DIM_J) & keep);
	op->dep_b = (unsigned char)(kern_dep & keep);
	op->dep_out = (unsigned char)(out_dep & keep);
	op->a = X, op->b = kern;
	read_tensor(b, op, X);
	read_tensor(b, op, kern);
	b->w->macs += (double)op->bt * op->m * op->n * op->k;
	return result_n(b, op, cls, out_elements);
}

/* An op over (bt, m, n) reading X (and Y) element by element or row by row. */
static int
rowwise(struct builder *b, int kind, int unit, const char *name, int X, int Y, int cls, long bt, long m,
        long n, double work)
{
	struct wl_op *op = op_new(b, kind, unit, name);
	int bdim = bt > 1 ? DIM_B : 0;

	op->bt = bt, op->m = m, op->n = n, op->work = work;
	op->dep_a = op->dep_b = op->dep_out = (unsigned char)(bdim | DIM_I | DIM_J);
	op->a = X, op->b = Y;
	read_tensor(b, op, X);
	read_tensor(b, op, Y);
	return result(b, op, cls);
}

/* Elementwise, ops operations per element, on the MAC lanes. */
static int
elem(struct builder *b, const char *name, int X, int Y, int cls, long bt, long m, long n, double ops)
{
	return rowwise(b, WL_ELEM, UNIT_MAC, name, X, Y, cls, bt, m, n, ops);
}

static int
softmax(struct builder *b, const char *name, int X, int Y, int cls, long bt, long m, long n)
{
	return rowwise(b, WL_SOFTMAX, UNIT_SOFTMAX, name, X, Y, cls, bt, m, n, 0);
}

static int
layernorm(struct builder *b, const char *name, int X, int Y, int cls, long h)
{
	return rowwise(b, WL_LAYERNORM, UNIT_LN, name, X, Y, cls, b->o->batch, b->o->seq, h, 0);
}

/* The optimizer step of the first n elements of W from its gradient dW (all of W when n = 0). */
static void
update_n(struct builder *b, int W, int dW, double n)
{
	char name[2 * WL_NAME], wname[WL_NAME];
	struct wl_op *op;
	int state;

	if (n <= 0)
		n = b->w->t[W].elements;
	/* copies: tensor() may move the tensor array */
	memcpy(wname, b->w->t[W].name, sizeof wname);
	snprintf(name, sizeof name, "update.%s", wname);
	state = tensor(b, WL_STATE, n * b->o->opt_state, "state.%s", wname);
	op = op_new(b, WL_UPDATE, UNIT_MAC, name);
	op->bt = 1, op->m = 1, op->n = (long)n, op->work = b->o->opt_ops;
	op->dep_a = op->dep_b = op->dep_out = DIM_I | DIM_J;
	op->a = W, op->b = dW;
	read_tensor(b, op, W);
	read_tensor(b, op, dW);
	read_tensor(b, op, state);
}

static void
update(struct builder *b, int W, int dW)
{
	update_n(b, W, dW, 0);
}

/* ---- the model ---- */

struct head_saved {
	int type;           /* enum head_op */
	int wq, wk, wv, wa; /* weights (or -1) */
	int q, k, v, kw, p; /* SA: projections, W K^T for WMA, probabilities */
	int t[4];           /* LT: transform constants (C_N, S_N, C_d, S_d) and the first products */
	int t1[2];
	int dw, pw, kg, wu; /* DSC weights: depthwise, pointwise, kernel generator, value map */
	int dd, ks, gt, alpha, ucv;
	int out; /* the head's output slice of the context */
};

struct layer_saved {
	int x; /* input (B N, h) */
	int nh;
	struct head_saved head[MODEL_MAX_HEADS];
	int wo, attn, y; /* output projection weight, its result, the attention sub-layer output */
	int nff, wff[MODEL_MAX_FF + 1], zpre[MODEL_MAX_FF + 1], z[MODEL_MAX_FF + 1];
	int ffo, hout; /* FF output projection result, the layer output after LayerNorm */
	int wp, xnext; /* width projection (or -1) and the next layer's input */
};

static int
op_kind(int op)
{
	return op <= OP_SA_WMA ? 0 : op <= OP_L_DCT ? 1 : 2;
}

static int
op_taps(int op)
{
	return op == OP_C_5 ? 5 : op == OP_C_9 ? 9 : 13;
}

/* Forward of head j: its output (B N, d). */
static int
head_forward(struct builder *b, struct head_saved *s, int X, int l, int j, long h, long d)
{
	long B = b->o->batch, N = b->o->seq;
	char nm[WL_NAME];
	int kind = op_kind(s->type);

#define NM(suffix) (b->o->names ? (snprintf(nm, sizeof nm, "l%d.h%d.%s", l, j, suffix), nm) : "")
	s->wq = s->wk = s->wa = -1;
	if (kind != 1) {
		s->wq = weight(b, h, d, NM("wq"));
		s->wk = weight(b, h, d, NM("wk"));
	}
	s->wv = weight(b, h, d, NM("wv"));
	if (kind != 1) {
		s->q = linear(b, NM("q"), X, s->wq, WL_ACT, h, d);
		s->k = linear(b, NM("k"), X, s->wk, WL_ACT, h, d);
	}
	s->v = linear(b, NM("v"), X, s->wv, WL_ACT, h, d);
	if (kind == 0) {
		int kk = s->k, sc;
		if (s->type == OP_SA_WMA) {
			s->wa = weight(b, d, d, NM("wa"));
			s->kw = kk = linear(b, NM("kw"), s->k, s->wa, WL_ACT, d, d);
		}
		sc = matmul(b, NM("scores"), s->q, kk, WL_ACT, B, N, d, N, 1, 1);
		s->p = softmax(b, NM("softmax"), sc, -1, WL_ACT, B, N, N);
		return matmul(b, NM("context"), s->p, s->v, WL_ACT, B, N, N, d, 1, 1);
	}
	if (kind == 1) {
		int dft = s->type == OP_L_DFT, n = dft ? 2 : 1, r;
		char cn[WL_NAME];
		s->t[0] = constant(b, (double)N * N, dft ? "dft.cos_tokens" : "dct.tokens");
		s->t[1] = dft ? constant(b, (double)N * N, "dft.sin_tokens") : -1;
		snprintf(cn, sizeof cn, "%s.features%ld", dft ? "dft.cos" : "dct", d);
		s->t[2] = constant(b, (double)d * d, cn);
		snprintf(cn, sizeof cn, "dft.sin.features%ld", d);
		s->t[3] = dft ? constant(b, (double)d * d, cn) : -1;
		for (int i = 0; i < n; i++)
			s->t1[i] = matmul(b, NM(i ? "sin_tokens" : "cos_tokens"), s->t[i], s->v, WL_ACT, B, N,
			                  N, d, 0, 1);
		r = linear(b, NM("cos_features"), s->t1[0], s->t[2], WL_ACT, d, d);
		if (dft) {
			int r2 = linear(b, NM("sin_features"), s->t1[1], s->t[3], WL_ACT, d, d);
			r = elem(b, NM("real"), r, r2, WL_ACT, B, N, d, 1);
		}
		return r;
	}
	{
		long taps = op_taps(s->type), BND = B * N * d;
		s->dw = weight(b, d, taps, NM("depthwise"));
		s->pw = weight(b, d, d, NM("pointwise"));
		s->kg = weight(b, d, taps, NM("kernel"));
		s->wu = weight(b, d, d, NM("value_map"));
		s->dd =
		    conv(b, NM("key_conv"), s->k, s->dw, DIM_J, DIM_B | DIM_I | DIM_J, WL_ACT, d, taps, BND);
		s->ks = linear(b, NM("key_point"), s->dd, s->pw, WL_ACT, d, d);
		s->gt = elem(b, NM("gate"), s->ks, s->q, WL_ACT, B, N, d, 1);
		{
			int z = linear(b, NM("kernel_logits"), s->gt, s->kg, WL_ACT, d, taps);
			s->alpha = softmax(b, NM("kernel_softmax"), z, -1, WL_ACT, B, N, taps);
		}
		s->ucv = linear(b, NM("value_conv"), s->v, s->wu, WL_ACT, d, d);
		return conv(b, NM("dynamic_conv"), s->ucv, s->alpha, DIM_B | DIM_I, DIM_B | DIM_I | DIM_J,
		            WL_ACT, d, taps, BND);
	}
#undef NM
}

static void
layer_forward(struct builder *b, struct layer_saved *s, const struct model_layer *L, int l, int X, int next_h)
{
	long B = b->o->batch, N = b->o->seq, h = L->h, d = L->d, A = (long)L->n * L->d;
	char nm[WL_NAME];
	int ctx_op, z;

#define NM(...) (b->o->names ? (snprintf(nm, sizeof nm, __VA_ARGS__), nm) : "")
	s->x = X;
	s->nh = L->n;
	new_block(b);
	for (int j = 0; j < L->n; j++) {
		b->stream = j;
		s->head[j].type = L->op[j];
		s->head[j].out = head_forward(b, &s->head[j], X, l, j, h, d);
	}
	new_block(b);
	s->wo = weight(b, A, h, NM("l%d.wo", l));
	s->attn = linear(b, NM("l%d.attn_out", l), s->head[0].out, s->wo, WL_ACT, A, h);
	ctx_op = b->w->t[s->attn].producer;
	for (int j = 1; j < L->n; j++)
		read_tensor(b, &b->w->op[ctx_op], s->head[j].out);
	z = elem(b, NM("l%d.attn_residual", l), s->attn, X, WL_ACT, B, N, h, 1);
	s->y = layernorm(b, NM("l%d.attn_norm", l), z, -1, WL_ACT, h);

	s->nff = L->nff;
	s->z[0] = s->y;
	for (int i = 0; i < L->nff; i++) {
		long in = i ? L->ff[i - 1] : h;
		s->wff[i] = weight(b, in, L->ff[i], NM("l%d.ff%d.w", l, i));
		s->zpre[i + 1] = linear(b, NM("l%d.ff%d", l, i), s->z[i], s->wff[i], WL_ACT, in, L->ff[i]);
		s->z[i + 1] =
		    elem(b, NM("l%d.ff%d.gelu", l, i), s->zpre[i + 1], -1, WL_ACT, B, N, L->ff[i], 1);
	}
	s->wff[L->nff] = weight(b, L->ff[L->nff - 1], h, NM("l%d.ff_out.w", l));
	s->ffo = linear(b, NM("l%d.ff_out", l), s->z[L->nff], s->wff[L->nff], WL_ACT, L->ff[L->nff - 1], h);
	z = elem(b, NM("l%d.ff_residual", l), s->ffo, s->y, WL_ACT, B, N, h, 1);
	s->hout = layernorm(b, NM("l%d.ff_norm", l), z, -1, WL_ACT, h);
	s->wp = -1;
	s->xnext = s->hout;
	if (next_h && next_h != h) {
		s->wp = weight(b, h, next_h, NM("l%d.proj.w", l));
		s->xnext = linear(b, NM("l%d.proj", l), s->hout, s->wp, WL_ACT, h, next_h);
	}
#undef NM
}

/* Backward of head j given dO (B N, d); returns the head's contributions to dX in dx[]. */
static int
head_backward(struct builder *b, const struct head_saved *s, int X, int dO, int l, int j, long h, long d,
              int *dx)
{
	long B = b->o->batch, N = b->o->seq;
	int kind = op_kind(s->type), n = 0, dq = -1, dk = -1, dv;
	char nm[WL_NAME];

#define NM(suffix) (b->o->names ? (snprintf(nm, sizeof nm, "l%d.h%d.d%s", l, j, suffix), nm) : "")
	if (kind == 0) {
		int kk = s->type == OP_SA_WMA ? s->kw : s->k, dp, ds, dkk;
		dv = matmul(b, NM("v"), s->p, dO, WL_GRAD, B, N, N, d, 1, 1);
		dp = matmul(b, NM("probs"), dO, s->v, WL_GRAD, B, N, d, N, 1, 1);
		ds = softmax(b, NM("scores"), dp, s->p, WL_GRAD, B, N, N);
		dq = matmul(b, NM("q"), ds, kk, WL_GRAD, B, N, N, d, 1, 1);
		dkk = matmul(b, NM("k"), ds, s->q, WL_GRAD, B, N, N, d, 1, 1);
		dk = dkk;
		if (s->type == OP_SA_WMA) {
			int dwa = wgrad(b, NM("wa"), s->k, dkk, d, d);
			update(b, s->wa, dwa);
			dk = linear(b, NM("k_in"), dkk, s->wa, WL_GRAD, d, d);
		}
	} else if (kind == 1) {
		int dft = s->type == OP_L_DFT, dt[2];
		dt[0] = linear(b, NM("cos_features"), dO, s->t[2], WL_GRAD, d, d);
		dv = matmul(b, NM("cos_tokens"), s->t[0], dt[0], WL_GRAD, B, N, N, d, 0, 1);
		if (dft) {
			dt[1] = linear(b, NM("sin_features"), dO, s->t[3], WL_GRAD, d, d);
			dt[1] = matmul(b, NM("sin_tokens"), s->t[1], dt[1], WL_GRAD, B, N, N, d, 0, 1);
			dv = elem(b, NM("v"), dv, dt[1], WL_GRAD, B, N, d, 1);
		}
	} else {
		long taps = op_taps(s->type), BND = B * N * d;
		int dalpha, ducv, dz, dgt, dks, ddd, dv2;
		dalpha = conv(b, NM("alpha"), dO, s->ucv, DIM_B | DIM_I | DIM_J, DIM_B | DIM_I, WL_GRAD, d,
		              taps, (double)B * N * taps);
		ducv = conv(b, NM("value_conv"), dO, s->alpha, DIM_B | DIM_I, DIM_B | DIM_I | DIM_J, WL_GRAD,
		            d, taps, BND);
		dz = softmax(b, NM("kernel_logits"), dalpha, s->alpha, WL_GRAD, B, N, taps);
		update(b, s->kg, wgrad(b, NM("kernel"), s->gt, dz, d, taps));
		dgt = linear(b, NM("gate"), dz, s->kg, WL_GRAD, taps, d);
		dks = elem(b, NM("key_point"), dgt, s->q, WL_GRAD, B, N, d, 1);
		dq = elem(b, NM("q"), dgt, s->ks, WL_GRAD, B, N, d, 1);
		update(b, s->pw, wgrad(b, NM("pointwise"), s->dd, dks, d, d));
		ddd = linear(b, NM("key_conv"), dks, s->pw, WL_GRAD, d, d);
		update(b, s->dw,
		       conv(b, NM("depthwise"), ddd, s->k, DIM_B | DIM_I | DIM_J, DIM_J, WL_WGRAD, d, taps,
		            (double)d * taps));
		dk = conv(b, NM("k"), ddd, s->dw, DIM_J, DIM_B | DIM_I | DIM_J, WL_GRAD, d, taps, BND);
		update(b, s->wu, wgrad(b, NM("value_map"), s->v, ducv, d, d));
		dv2 = linear(b, NM("v"), ducv, s->wu, WL_GRAD, d, d);
		dv = dv2;
	}
	if (dq >= 0) {
		update(b, s->wq, wgrad(b, NM("wq"), X, dq, h, d));
		dx[n++] = linear(b, NM("x_q"), dq, s->wq, WL_GRAD, d, h);
	}
	if (dk >= 0) {
		update(b, s->wk, wgrad(b, NM("wk"), X, dk, h, d));
		dx[n++] = linear(b, NM("x_k"), dk, s->wk, WL_GRAD, d, h);
	}
	update(b, s->wv, wgrad(b, NM("wv"), X, dv, h, d));
	dx[n++] = linear(b, NM("x_v"), dv, s->wv, WL_GRAD, d, h);
	return n;
#undef NM
}

/* Backward of one layer given dX_{l+1}; returns dX_l. */
static int
layer_backward(struct builder *b, const struct layer_saved *s, const struct model_layer *L, int l, int dnext)
{
	long B = b->o->batch, N = b->o->seq, h = L->h, d = L->d, A = (long)L->n * L->d;
	int dh = dnext, dsum, dz, dy, dctx, dxs[3 * MODEL_MAX_HEADS] = {0}, nx = 0, dx, sum_op;
	char nm[WL_NAME];

#define NM(...) (b->o->names ? (snprintf(nm, sizeof nm, __VA_ARGS__), nm) : "")
	new_block(b);
	if (s->wp >= 0) {
		long hn = b->w->t[s->wp].elements / h;
		update(b, s->wp, wgrad(b, NM("l%d.dproj.w", l), s->hout, dnext, h, hn));
		dh = linear(b, NM("l%d.dproj", l), dnext, s->wp, WL_GRAD, hn, h);
	}
	dsum = layernorm(b, NM("l%d.dff_norm", l), dh, s->hout, WL_GRAD, h);
	update(b, s->wff[s->nff], wgrad(b, NM("l%d.dff_out.w", l), s->z[s->nff], dsum, L->ff[s->nff - 1], h));
	dz = linear(b, NM("l%d.dff_out", l), dsum, s->wff[s->nff], WL_GRAD, h, L->ff[s->nff - 1]);
	for (int i = s->nff - 1; i >= 0; i--) {
		long in = i ? L->ff[i - 1] : h;
		dz = elem(b, NM("l%d.dff%d.gelu", l, i), dz, s->zpre[i + 1], WL_GRAD, B, N, L->ff[i], 2);
		update(b, s->wff[i], wgrad(b, NM("l%d.dff%d.w", l, i), s->z[i], dz, in, L->ff[i]));
		dz = linear(b, NM("l%d.dff%d", l, i), dz, s->wff[i], WL_GRAD, L->ff[i], in);
	}
	dy = elem(b, NM("l%d.dff_residual", l), dz, dsum, WL_GRAD, B, N, h, 1);
	dsum = layernorm(b, NM("l%d.dattn_norm", l), dy, s->y, WL_GRAD, h);
	{
		int dwo = wgrad(b, NM("l%d.dattn_out.w", l), s->head[0].out, dsum, A, h);
		int wop = b->w->t[dwo].producer;
		for (int j = 1; j < L->n; j++)
			read_tensor(b, &b->w->op[wop], s->head[j].out);
		update(b, s->wo, dwo);
	}
	dctx = linear(b, NM("l%d.dattn_out", l), dsum, s->wo, WL_GRAD, h, A);
	new_block(b);
	for (int j = 0; j < L->n; j++) {
		b->stream = j;
		nx += head_backward(b, &s->head[j], s->x, dctx, l, j, h, d, dxs + nx);
	}
	new_block(b);
	/* dX = the residual gradient plus every head's projection gradients */
	dx = elem(b, NM("l%d.dx", l), dsum, dxs[0], WL_GRAD, B, N, h, nx);
	sum_op = b->w->t[dx].producer;
	for (int i = 1; i < nx; i++)
		read_tensor(b, &b->w->op[sum_op], dxs[i]);
	return dx;
#undef NM
}

int
workload_build(struct workload *w, const struct model *m, const struct wl_options *o, struct tc_error *err)
{
	struct layer_saved *ls = ecalloc((size_t)m->l, sizeof *ls);
	struct builder b = {w, o, PH_FORWARD, 0, 0};
	long B = o->batch, N = o->seq, h0 = m->layer[0].h, hl = m->layer[m->l - 1].h, C = o->classes;
	int table, x, pooled, pool_pre, logits, wpool, wcls, dx;

	memset(w, 0, sizeof *w);
	w->batch = B;
	w->seq = N;
	if ((double)B * N * 4096.0 * 13 > 9e15) {
		free(ls);
		return tc_error_set(err, "batch %ld x %ld tokens is too large to simulate", B, N);
	}

	/* Embeddings: the token and position table stays in the weight buffer; a lookup gathers and
	 * adds the rows of the batch. */
	new_block(&b);
	table = tensor(&b, WL_WEIGHT, (double)(o->vocab + N) * h0, "embeddings");
	w->params += (double)(o->vocab + N) * h0;
	w->embedding = table;
	x = elem(&b, "embed.lookup", table, -1, WL_ACT, B, N, h0, 1);
	x = layernorm(&b, "embed.norm", x, -1, WL_ACT, h0);

	for (int l = 0; l < m->l; l++) {
		layer_forward(&b, &ls[l], &m->layer[l], l, x, l + 1 < m->l ? m->layer[l + 1].h : 0);
		x = ls[l].xnext;
	}

	new_block(&b);
	wpool = weight(&b, hl, hl, "pooler.w");
	pool_pre = matmul(&b, "pooler", x, wpool, WL_ACT, 1, B, hl, hl, 1, 0);
	pooled = elem(&b, "pooler.tanh", pool_pre, -1, WL_ACT, 1, B, hl, 1);
	wcls = weight(&b, hl, C, "classifier.w");
	logits = matmul(&b, "classifier", pooled, wcls, WL_ACT, 1, B, hl, C, 1, 0);

	if (o->training) {
		int dl, dp;
		b.phase = PH_BACKWARD;
		new_block(&b);
		dl = softmax(&b, "loss", logits, -1, WL_GRAD, 1, B, C);
		update(&b, wcls, matmul(&b, "dclassifier.w", pooled, dl, WL_WGRAD, 1, hl, B, C, 0, 0));
		dp = matmul(&b, "dpooled", dl, wcls, WL_GRAD, 1, B, C, hl, 1, 0);
		dp = elem(&b, "dpooler.tanh", dp, pooled, WL_GRAD, 1, B, hl, 2);
		update(&b, wpool, matmul(&b, "dpooler.w", x, dp, WL_WGRAD, 1, hl, B, hl, 0, 0));
		dx = matmul(&b, "dpooler", dp, wpool, WL_GRAD, 1, B, hl, hl, 1, 0);
		/* only the first token's rows carry a gradient into the encoder */
		dx = elem(&b, "dencoder_out", dx, -1, WL_GRAD, B, N, hl, 1);
		for (int l = m->l - 1; l >= 0; l--)
			dx = layer_backward(&b, &ls[l], &m->layer[l], l, dx);
		new_block(&b);
		dx = layernorm(&b, "dembed.norm", dx, -1, WL_GRAD, h0);
		/* a scatter-add into the rows the batch touched; only those rows (and the positions) are
		 * updated */
		update_n(&b, table, elem(&b, "dembed.scatter", dx, -1, WL_WGRAD, B, N, h0, 1),
		         (double)(B + 1) * N * h0);
	}
	free(ls);
	return 0;
}

void
workload_release(struct workload *w)
{
	free(w->op);
	free(w->t);
	memset(w, 0, sizeof *w);
}

double
wl_op_macs(const struct wl_op *op)
{
	if (op->kind == WL_MATMUL || op->kind == WL_CONV)
		return (double)op->bt * op->m * op->n * op->k;
	return 0;
}
