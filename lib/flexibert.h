/*
 * flexibert.h: a heterogeneous FlexiBERT 2.0 encoder with a classification or masked-LM head, its
 * training step (forward, backward, clipping, AdamW) and its parameters as named tensors.
 *
 * Ownership: struct flexibert owns its parameter, gradient, optimizer and activation memory until
 * flexibert_release; pointers into it (flexibert_param, fb->logits) stay valid until then.
 *
 * The model is the one of tests/reference/README.md (flexibert-ops.md with the project's decisions):
 * absolute positions, SA heads returning their attention context, padding zeroed before transforms and
 * convolutions, orthonormal DFT and DCT. Parameters live in one allocation in the README's order, each
 * reached through the table fb->p (name, shape, offset), so a checkpoint is that table written as a
 * safetensors file and loads in PyTorch under the same names.
 *
 * Activations are allocated for the largest batch seen (B x T); a batch is padded to its longest
 * sequence with id 0 ([PAD]), and padding is what id 0 means.
 */
#ifndef TC_FLEXIBERT_H
#define TC_FLEXIBERT_H

#include <stddef.h>
#include <stdint.h>

#include "space.h"

struct tc_error;
struct tensor_set;

enum { FB_CLS, FB_MLM };

struct fb_config {
	struct model m;
	int vocab, labels, max_pos; /* labels: classes for FB_CLS */
	int objective;              /* FB_CLS or FB_MLM */
	float dropout;              /* 0.1 by default; 0 makes forward deterministic */
	float smoothing;            /* the loss's label smoothing (0: none) */
	int dynaprop;               /* prune at run time (fb->prune has the thresholds) */
};

/*
 * DynaProp (cfg.dynaprop): every forward pass, in training and in evaluation, sets to 0 the elements
 * with |x| <= tau_act[point] at each pruning point: Q, K and V (FB_PT_QKV), the raw attention scores
 * (FB_PT_SCORE), the attention probabilities (FB_PT_PROB), the heads' outputs (FB_PT_CTX), the
 * outputs of the FF stack's layers before the GELU (FB_PT_FF), and the h-wide outputs of the
 * attention-output, last FF and projection dense layers (FB_PT_OUT). Backward lets gradients
 * through kept elements only and sets to 0 the elements with |d| <= tau_grad[point] of the gradient
 * arriving at each point; flexibert_clip sets to 0 the weight gradients with
 * |g| <= tau_weight. With all thresholds 0 only exact zeros are "pruned", and the results are those
 * without DynaProp up to rounding: DynaProp's backward products skip zeros
 * (matmul_backward_sparse), which adds in another order. flexibert_prune_uniform puts one
 * threshold at every point, DynaTran's rule.
 *
 * Training passes count, per layer and class, the zeros left at the pruning points and the elements
 * there (weight gradients are counted in layer 0's FB_SP_WGRAD), and per point in pz, pn; the caller
 * reads and resets them. With sample set (1: activations, gradients and weight gradients; 2: the
 * gradients alone), they also keep about FB_SAMPLE magnitudes per tensor, each with the number of
 * elements it stands for (samp, sampw) and its point (sampp), for calibrating thresholds to a target
 * sparsity (activations in [FB_SP_ACT], taken before pruning; gradients in [FB_SP_GRAD], taken
 * after the zeros of pruned activations and before tau_grad; weight gradients in [FB_SP_WGRAD],
 * point 0); inside attention, whole rows of scores, probabilities and their gradients are
 * recomputed for it.
 */
enum { FB_SP_ACT, FB_SP_GRAD, FB_SP_WGRAD, FB_SP_COUNT };
enum { FB_PT_QKV, FB_PT_SCORE, FB_PT_PROB, FB_PT_CTX, FB_PT_FF, FB_PT_OUT, FB_PT_COUNT };
extern const char *const fb_point_name[FB_PT_COUNT]; /* "qkv", "score", ... */
#define FB_SAMPLE 512
struct fb_prune {
	float tau_act[FB_PT_COUNT], tau_grad[FB_PT_COUNT], tau_weight;
	int topk;     /* > 0: the top-k baseline in place of tau_act at the attention probabilities */
	int relative; /* probabilities against tau_act[FB_PT_PROB] / n (n: the keys of the row) */
	int count;    /* count (and sample) in evaluation passes too */
	int sample;
	double zeros[MODEL_MAX_LAYERS][FB_SP_COUNT], total[MODEL_MAX_LAYERS][FB_SP_COUNT];
	double pz[2][FB_PT_COUNT], pn[2][FB_PT_COUNT]; /* activations, gradients */
	float *samp[FB_SP_COUNT], *sampw[FB_SP_COUNT];
	unsigned char *sampp[FB_SP_COUNT];
	size_t nsamp[FB_SP_COUNT], capsamp[FB_SP_COUNT], capsampw[FB_SP_COUNT], capsampp[FB_SP_COUNT];
};

struct fb_param {
	char name[96];
	int ndim, shape[3];
	size_t off, n; /* offset in fb->params, element count */
	int decay;     /* AdamW weight decay applies */
};

/* Offsets (in floats) of one layer's parameters; a head's entries are meaningful for its type. */
struct fb_layer {
	size_t wq, bq, wk, bk, wv, bv, wo, bo, ln1w, ln1b, wout, bout, ln2w, ln2b, wp, bp;
	size_t ffw[MODEL_MAX_FF], ffb[MODEL_MAX_FF];
	size_t wma[MODEL_MAX_HEADS];
	size_t cdw[MODEL_MAX_HEADS], cpw[MODEL_MAX_HEADS], cbeta[MODEL_MAX_HEADS], ckw[MODEL_MAX_HEADS],
	    ckb[MODEL_MAX_HEADS], cuw[MODEL_MAX_HEADS], cub[MODEL_MAX_HEADS];
	int h, n, d, A, hnext, proj; /* hnext: the next layer's width; proj: a projection to it exists */
};

struct fb_acts; /* private: the activation and scratch layout */
struct fb_lazy; /* private: the token embeddings' deferred updates (flexibert_adamw) */

struct flexibert {
	struct fb_config cfg;
	struct fb_param *p;
	int np;
	size_t nparams;
	float *params, *grads, *m, *v; /* nparams each; m and v are AdamW's moments */
	long step;                     /* optimizer steps taken */
	float gscale;                  /* flexibert_clip's factor, which flexibert_adamw applies */
	int grads_zero;                /* flexibert_adamw left every gradient 0, none written since */
	struct fb_layer L[MODEL_MAX_LAYERS];
	size_t wte, wpe, wtt, elnw, elnb;        /* embeddings */
	size_t poolw, poolb, clsw, clsb;         /* FB_CLS */
	size_t mtw, mtb, mlnw, mlnb, decw, decb; /* FB_MLM */
	struct fb_acts *a;
	struct fb_lazy *lazy;
	/* the last forward pass */
	int B, T, nlogit_rows; /* logits are (nlogit_rows, C): B rows for FB_CLS, one per labelled token for
	                          FB_MLM */
	float *logits;
	double loss;
	struct fb_prune prune;
};

/* Build the model for cfg with parameters initialised from seed as the README says. Returns 0, or -1
 * with err set when the configuration is not a valid model (head sizes, widths, vocabulary). */
int flexibert_init(struct flexibert *fb, const struct fb_config *cfg, uint64_t seed, struct tc_error *err);
void flexibert_release(struct flexibert *fb);
/* The number of parameters (floats) flexibert_init would allocate for cfg, without allocating them;
 * 0 when cfg is not a valid model. Readers check it against a file's size before building a model
 * whose sizes the file states. */
size_t flexibert_nparams(const struct fb_config *cfg);
/* The parameter called name, or NULL. */
const struct fb_param *flexibert_param(const struct flexibert *fb, const char *name);

/*
 * Forward pass over ids (B, T) (0 = padding) with labels: (B) class ids for FB_CLS, (B, T) token ids or
 * -100 for FB_MLM. training applies dropout, drawn from the sites of dropkey (one key per step gives a
 * fresh mask per step). Returns the mean loss (0 when no token is labelled) and keeps what backward
 * needs. Labels may be NULL for inference (the loss is then 0; FB_MLM then has no logits).
 */
double flexibert_forward(struct flexibert *fb, const int32_t *ids, const int32_t *labels, int B, int T,
                         int training, uint64_t dropkey);
/* Gradients of the last forward's loss, added to fb->grads (zero them first with flexibert_zero_grad). */
void flexibert_backward(struct flexibert *fb);
/* fb->grads = 0; nothing to do after flexibert_adamw, which zeroes what it reads (fb->grads_zero:
 * clear it after writing fb->grads other than by flexibert_backward). */
void flexibert_zero_grad(struct flexibert *fb);

/* One threshold of each kind at every pruning point. */
void flexibert_prune_uniform(struct flexibert *fb, float tau_act, float tau_grad, float tau_weight);
/* Zero the counts of fb->prune and drop its samples. */
void flexibert_prune_reset(struct flexibert *fb);

/* torch's clip_grad_norm_: the factor that brings the gradients' global L2 norm to at most max_norm,
 * which the next flexibert_adamw applies as it reads them (one pass over them fewer); returns the norm
 * before clipping. With cfg.dynaprop, DynaProp's rule for weight gradients (tau_weight) first, in the
 * same pass, counted: the norm is that of the pruned gradients. */
double flexibert_clip(struct flexibert *fb, double max_norm);
/*
 * One AdamW step at learning rate lr (betas 0.9, 0.999, eps 1e-8, decoupled decay wd on fb->p[i].decay).
 * A row of the token embeddings gets a gradient only from the batch's tokens, a few hundred of the
 * vocabulary's thousands; the others' updates (decay, and moments decaying from a zero gradient) are
 * kept as a list of the steps' constants and replayed on a row, with the same arithmetic, when a
 * forward pass reads it (or flexibert_sync). The gradient's other rows stay 0, and neither
 * flexibert_zero_grad nor flexibert_clip passes over them. Parameters and moments then equal, bit for
 * bit, those of updating every row at every step (flexibert_set_eager; the unit tests compare both).
 */
void flexibert_adamw(struct flexibert *fb, double lr, double wd);
/* Apply every deferred update: fb->params, fb->m and fb->v as if every row had been updated at
 * every step (flexibert_export does it first). */
void flexibert_sync(struct flexibert *fb);
/* eager 1: every row of the token embeddings is updated at every step (the reference the deferral
 * must equal); 0, the default: deferred. */
void flexibert_set_eager(struct flexibert *fb, int eager);
/* The README's schedule: linear warm-up over warmup steps, then linear decay to 0 at total. */
double flexibert_lr(double lr, long step, long warmup, long total);

/* Multiply-accumulates of one training step (forward + backward) at B x T, all tokens real, counted
 * as 2 FLOPs each; forward only when training is 0. Those computed: past its attention, the last
 * layer runs on the rows the loss reads alone (B first tokens; masked LM, 15% of the tokens). */
double flexibert_flops(const struct fb_config *cfg, int B, int T, int training);

/*
 * Parameters as named tensors: add every parameter to set as F32 under prefix + name (prefix may be
 * ""); load them back from set, requiring every name with the right shape (extra tensors are ignored).
 * Both return 0 or -1 with err set. Both apply the deferred updates first (flexibert_sync).
 */
int flexibert_export(struct flexibert *fb, struct tensor_set *set, const char *prefix, const float *src,
                     struct tc_error *err);
int flexibert_import(struct flexibert *fb, const struct tensor_set *set, const char *prefix, float *dst,
                     struct tc_error *err);

#endif
