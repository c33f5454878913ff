/*
 * nn.h: the numerical kernels of the FlexiBERT 2.0 encoder, as forward/backward pairs (llm.c style).
 *
 * Ownership: nothing here allocates or frees; every pointer is the caller's, and outputs never alias
 * inputs unless a comment says so.
 *
 * Conventions: N = rows (batch x tokens), C = input channels, OC = output channels, B = batch, T =
 * tokens, D = head size, K = kernel taps. Tensors are row-major fp32; a shape comment gives each
 * pointer's shape. Arguments come outputs first, then inputs and weights, then sizes. Every backward
 * ACCUMULATES (+=) into its gradients, so a gradient is zeroed once per step by the caller; a NULL
 * gradient pointer means "not wanted" where a comment says it may be. Every fast kernel whose speed
 * matters has a naive reference (suffix _naive) beside it, and the unit tests hold them equal.
 *
 * Dropout masks are not stored: element i of dropout site `key` is kept when 16 bits of a hash of
 * (key, i / 2) fall below the keep probability (p in steps of 2^-16), so the backward pass
 * recomputes the mask, the memory is saved, and the result depends on neither thread count nor
 * schedule.
 */
#ifndef TC_NN_H
#define TC_NN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Call first thing in main. Makes OpenBLAS single-threaded (the kernels here split work with OpenMP).
 * OpenBLAS 0.3.21 (Debian 12) does not recognise some recent Intel CPUs and falls back to its Prescott
 * kernels, four times slower than its AVX-512 ones; since it reads OPENBLAS_CORETYPE only when it is
 * loaded, on such a CPU this sets OPENBLAS_CORETYPE to SkylakeX (AVX-512) or Haswell (AVX2) and re-runs
 * the program with argv (execv of /proc/self/exe). A OPENBLAS_CORETYPE already set is left alone.
 * Returns 0, or -1 if the re-run failed (the program goes on, slowly).
 */
int nn_blas_setup(char **argv);

/*
 * Treat denormal floats as zero, in the calling thread and in every thread of the OpenMP pool (each
 * has its own MXCSR). Training drives AdamW's first moments of rarely used parameters (embedding rows
 * of rare tokens) down by 0.9 a step into the denormal range, where each operation takes a microcode
 * assist a hundred times slower than a normal one. Call after the thread count is set.
 */
void nn_flush_denormals(void);

/* The widest dynamic convolution (c_13). */
#define NN_MAX_TAPS 16

/* The additive score of a padded key (flexibert-ops.md section 3). */
#define NN_MASKED_SCORE (-10000.0f)

/* Is element i kept by dropout site key at probability p? (inverted dropout keeps with 1 - p, here
 * rounded down to a multiple of 2^-16) */
int nn_keep(uint64_t key, uint64_t i, float p);

/* out (N, OC) = inp (N, C) . w^T (OC, C) + bias (OC; may be NULL) */
void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
/*
 * matmul_forward, then what follows a dense layer's product, in this order: DynaTran at tau
 * (tau < 0: none) as nn_prune does, with keep (or NULL) and the zeros counted into e->zeros;
 * dropout_apply at p under key (p 0: none); res (N, OC, or NULL) added. With lib/gemm's own kernel
 * and OC a multiple of 64 they run as the product leaves its registers, else as separate passes;
 * the bits are the same either way. Where ln_out is not NULL, last, layernorm_forward(ln_out,
 * ln_mean, ln_rstd, out, ln_w, ln_b, N, OC): with lib/gemm's own kernel on each piece of rows as soon
 * as the product has written it, by the thread that wrote it, with the same bits.
 */
struct nn_epi {
	float tau;
	uint64_t *keep;
	float p;
	uint64_t key;
	const float *res;
	size_t zeros;
	float *ln_out, *ln_mean, *ln_rstd;
	const float *ln_w, *ln_b;
};
void matmul_forward_epi(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                        struct nn_epi *e);
/* dinp (N, C) += dout . w; dw (OC, C) += dout^T . inp; dbias (OC) += column sums of dout. dinp and
 * dbias may be NULL. */
void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, int N, int C, int OC);
/* dw and dbias as matmul_backward; dinp (N, C) = dout . w, times der elementwise where der is not NULL
 * (matmul_backward_input_mul); dinp may be inp itself (an activation's buffer taking its gradient).
 * The bits of matmul_backward and then the input gradient's call. */
void matmul_backward_set(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                         const float *w, const float *der, int N, int C, int OC);
/* matmul_backward for n (at most 4) layers on the same input (a layer's queries, keys and values):
 * dw[j], dbias[j] (may be NULL) as matmul_backward's; dinp (N, C) += dout[j] . w[j] for j in order,
 * dinp (not NULL) apart from inp. The bits of n calls of matmul_backward, in one pass over the input. */
void matmul_backward_n(int n, float *dinp, float *const *dw, float *const *dbias, const float *const *dout,
                       const float *inp, const float *const *w, int N, int C, int OC);
/*
 * LayerNorm's backward on the rows of a product's input gradient as each block of them comes whole
 * (the block still in cache, where a pass of its own read all of it from memory again):
 * dout (the LayerNorm output's gradient, the product's dinp) dropped out first where p_in > 0 (in
 * place, dropout_apply's bits), then dinp written, dw and db added to, and dinp dropped out into
 * ddrop (p_out, key_out; where p_out is 0, copied) unless ddrop is NULL: layernorm_backward_set_drop's
 * steps on its rows. Its parameter gradients are summed by block, and the blocks' sums added in
 * order after: the same bits for a thread count.
 */
struct nn_ln_back {
	float *dinp, *ddrop, *dw, *db;
	const float *inp, *w, *mean, *rstd;
	float p_in, p_out;
	uint64_t key_in, key_out;
};
/* matmul_backward (dinp not NULL), then ln's backward on dinp's rows as above; -1, having done
 * nothing, where the one-pass product does not run (DynaProp aside: OpenBLAS, or too few rows for
 * the threads): the caller then makes the two calls. */
int matmul_backward_ln(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC, const struct nn_ln_back *ln);
/* matmul_backward_n, then the same */
int matmul_backward_n_ln(int n, float *dinp, float *const *dw, float *const *dbias, const float *const *dout,
                         const float *inp, const float *const *w, int N, int C, int OC,
                         const struct nn_ln_back *ln);
/* dinp (N, C) = dout . w, or += when accumulate. */
void matmul_backward_input(float *dinp, const float *dout, const float *w, int N, int C, int OC,
                           int accumulate);
/* dinp (N, C) = (dout . w) * der elementwise: through an activation whose derivative der holds, in
 * the product's registers where lib/gemm's kernel runs (C a multiple of 64), the same bits as
 * matmul_backward_input and a pass after. */
void matmul_backward_input_mul(float *dinp, const float *dout, const float *w, const float *der, int N, int C,
                               int OC);
/*
 * matmul_backward for a dout with many zeros (DynaProp's pruned gradients): the same sums, by the
 * dense product, by sgemm over the rows of dout that hold a nonzero, or one nonzero at a time,
 * whichever a cost model says is fastest for the zeros counted. dinp (may be NULL) is added to,
 * or overwritten when overwrite is set; dw and dbias (may be NULL) are added to; dinp must not
 * share memory with inp. Returns the way taken (NN_SPARSE_*). Its scratch is kept from call to call,
 * so two threads must not call it at once (each call spreads over the OpenMP threads itself).
 */
enum { NN_SPARSE_DENSE, NN_SPARSE_ROWS, NN_SPARSE_NZ };
int matmul_backward_sparse(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                           const float *w, int N, int C, int OC, int overwrite);
void matmul_forward_naive(float *out, const float *inp, const float *w, const float *bias, int N, int C,
                          int OC);
void matmul_backward_naive(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                           const float *w, int N, int C, int OC);

/* LayerNorm over the last axis with biased variance and eps 1e-12; mean and rstd (N) are saved. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       int N, int C);
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, int N, int C);
/* The same with dinp written, not added to: what layernorm_backward gives on a zeroed dinp, bit for
 * bit (0 + x, so -0 too becomes +0), without the pass that zeroes it. */
void layernorm_backward_set(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, int N, int C);
/* The same, and dinp dropped out (p, key) into ddrop in the same pass: dropout_copy(ddrop, dinp, N C,
 * p, key)'s bits. */
void layernorm_backward_set_drop(float *dinp, float *ddrop, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean, const float *rstd,
                                 int N, int C, float p, uint64_t key);

/* GELU, exact (erf) form; this backward recomputes from the input. On AVX-512 from tables of
 * polynomials, else from erf and exp computed inline: nn_gelu_tables(0) takes the second anywhere
 * (for tests), nn_gelu_tables(1) the first where it can; returns 1 where the tables are taken. */
int nn_gelu_tables(int on);
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* Training's pair, which spends no erf or exp in backward: the forward also writes der = GELU'(inp)
 * (der may be inp, which backward then no longer needs), and the backward multiplies the incoming
 * gradient by it in place. The results are those of the pair above, bit for bit. */
void gelu_forward_der(float *out, float *der, const float *inp, size_t n);
/* pre (N, OC) = inp w^T + bias, then out = GELU(pre) and pre = GELU'(pre), each piece of rows as soon
 * as the product has written it: matmul_forward then gelu_forward_der(out, pre, pre, N OC), bit for
 * bit, without the pass that reads pre back from memory. */
void matmul_forward_gelu(float *out, float *pre, const float *inp, const float *w, const float *bias, int N,
                         int C, int OC);
/* The same after DynaTran has pruned inp: der is 0 where inp is 0. */
void gelu_forward_der_pruned(float *out, float *der, const float *inp, size_t n);
void gelu_backward_der(float *d, const float *der, size_t n);

/* out = tanh(inp); backward from the output. */
void tanh_forward(float *out, const float *inp, size_t n);
void tanh_backward(float *dinp, const float *out, const float *dout, size_t n);

/* Inverted dropout in place: x[i] = keep ? x[i] / (1 - p) : 0. The same call undoes nothing; backward
 * applies the same to the gradient. p = 0 is the identity. */
void dropout_apply(float *x, size_t n, float p, uint64_t key);
/* The same from x into y (x unchanged): one pass where a copy and dropout_apply took two. */
void dropout_copy(float *y, const float *x, size_t n, float p, uint64_t key);

/*
 * DynaProp's pruning (DynaTran in forward). nn_prune sets x[i] = 0 where |x[i]| <= tau, records in
 * keep (n bits, bit i of word i / 64; NULL: not kept) which elements survived, and returns how many
 * elements of x are zero afterwards. nn_prune_grad does the same to the gradient d arriving at a
 * pruned activation: d[i] = 0 where |d[i]| <= tau or the activation was pruned, the activation
 * read from y (its stored value, zero when pruned) or else from keep (both NULL: neither); it
 * returns the zeros of d afterwards.
 */
size_t nn_prune(float *x, uint64_t *keep, size_t n, float tau);
size_t nn_prune_grad(float *d, const float *y, const uint64_t *keep, size_t n, float tau);
/* dropout_copy(y, x, n, p, key), then nn_prune_grad(y, NULL, keep, n, tau), in one pass */
size_t nn_dropout_prune_grad(float *y, const float *x, size_t n, float p, uint64_t key, const uint64_t *keep,
                             float tau);
/* The same fused with the GELU that follows a pruned activation, one pass each way. nn_prune_gelu
 * prunes pre as nn_prune does (no mask) and sets out = GELU(pre) and der (which may be pre) as
 * gelu_forward_der does where pre was kept, 0 where it was pruned: the factor carries the mask.
 * nn_gelu_backward_prune sets d *= der, then zeroes |d| <= tau: nn_prune_grad's result with
 * y = der. Both return the zeros. */
size_t nn_prune_gelu(float *out, float *der, float *pre, size_t n, float tau);
size_t nn_gelu_backward_prune(float *d, const float *der, size_t n, float tau);
/* At most max magnitudes |x[i]| of x (n), taken at an even stride, into dst; returns how many. */
size_t nn_sample_abs(float *dst, size_t max, const float *x, size_t n);

/*
 * Embeddings: out[b,t,:] = wte[ids[b,t]] + wpe[t] + wtt. Backward scatters into the rows of dwte,
 * skipping the padding id (its row never gets a gradient), and into dwpe and dwtt.
 */
void embed_forward(float *out, const int32_t *ids, const float *wte, const float *wpe, const float *wtt,
                   int B, int T, int C);
/* embed_forward into res, then layernorm_forward (w, b) of it into out, mean and rstd, then
 * dropout_apply (p, key) on out, row by row in one pass: the three calls' bits. */
void embed_ln_forward(float *res, float *out, float *mean, float *rstd, const int32_t *ids, const float *wte,
                      const float *wpe, const float *wtt, const float *w, const float *b, int B, int T, int C,
                      float p, uint64_t key);
void embed_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids, int pad,
                    int B, int T, int C);

/*
 * Self-attention of one head over q, k, v slices (row stride A between tokens; the head's columns start
 * at the pointers): probs (B, T, T) = softmax(q' k^T / sqrt(D) + key mask) where q' = q . wma (D, D)
 * for weighted multiplicative attention, q otherwise (wma NULL); ctx (row stride A) = drop(probs) . v.
 * mask (B, T) holds 1 for real tokens, 0 for padding. scratch holds NN_ATTN_SCRATCH floats.
 * Backward accumulates dq, dk, dv (row stride A) and dwma (may be NULL when wma is).
 *
 * qr (NULL: every row) limits the queries to the rows the caller will read: where a loss reads a few
 * tokens of the last layer (the first of each sequence, or the masked ones), the other rows' scores,
 * probabilities and contexts are never needed. probs then holds qr->off[B] rows of T and ctx (and
 * dctx in backward) as many rows of stride A, packed in qr's order; dq gets the query rows only,
 * and dk, dv every row, as the full attention with dctx zero elsewhere would give them (with
 * packed_q, q and dq hold the query rows alone, packed as ctx: where the caller projects those
 * rows' queries alone). Dropout
 * keeps each element's place in its sequence's T x T, so the kept rows are the full attention's.
 * With wma, backward needs qr->off[B] <= B T / 2 (it gathers those rows of q into scratch).
 */
#define NN_ATTN_SCRATCH(nthreads, B, T, D)                                                                   \
	((size_t)(nthreads) * (2 * (size_t)(T) * (T) + 2 * (size_t)(T) * (D)) + (size_t)(B) * (T) * (D))
/*
 * DynaProp inside attention (pr NULL: none): forward sets the raw scores q k^T (before the
 * 1/sqrt(D) scaling and the mask) to 0 where |x| <= tau and then the probabilities where
 * |x| <= tau_p; backward sets the gradient at a probability to 0 where the probability was pruned or
 * the gradient is at most tau_grad_p, and the gradient at a score likewise with tau and tau_grad
 * (the scores are recomputed to know which were pruned). Each adds the zeros it leaves and the
 * elements it looked at to zeros[0], total[0] (forward) or zeros[1], total[1] (backward).
 */
struct nn_qrows {
	/* (B + 1), off[0] = 0: sequence b's query rows are row[off[b]] .. row[off[b + 1] - 1] */
	const int32_t *off;
	const int32_t *row; /* rows of the B T, ascending, each in its own sequence's T */
	int packed_q;       /* q (and dq) hold the query rows alone, packed as ctx */
};
struct nn_attn_prune {
	float tau, tau_grad;     /* at the raw scores */
	float tau_p, tau_grad_p; /* at the probabilities */
	int relative;            /* compare the probabilities with tau_p / n instead, n the number of
	                            keys not masked in the row's sequence */
	size_t zeros[2], total[2];
	size_t split[4]; /* the zeros of zeros[] by point: scores, probabilities (forward); the
	                    gradients at the probabilities, at the scores (backward) */
	int topk;        /* > 0: the top-k baseline instead, on the probabilities only: keep the topk
	                    largest of each row (of equal values the first), no backward */
};
void attention_forward(float *ctx, float *probs, const float *q, const float *k, const float *v,
                       const float *wma, const float *mask, float p, uint64_t key, struct nn_attn_prune *pr,
                       const struct nn_qrows *qr, float *scratch, int B, int T, int A, int D);
void attention_backward(float *dq, float *dk, float *dv, float *dwma, const float *dctx, const float *probs,
                        const float *q, const float *k, const float *v, const float *wma, float p,
                        uint64_t key, struct nn_attn_prune *pr, const struct nn_qrows *qr, float *scratch,
                        int B, int T, int A, int D);
/* The same on every query row, with the head's columns of dq, dk and dv written, not added to: what
 * attention_backward gives over zeros, bit for bit, without the pass that zeroes them. */
void attention_backward_set(float *dq, float *dk, float *dv, float *dwma, const float *dctx,
                            const float *probs, const float *q, const float *k, const float *v,
                            const float *wma, float p, uint64_t key, struct nn_attn_prune *pr, float *scratch,
                            int B, int T, int A, int D);
/* attention_forward for nh heads (head j: columns j D of ctx, q, k and v; probs[j], wma[j] (wma NULL:
 * none), key[j]) over every row, without DynaProp; and attention_backward_set for nh heads without
 * wma: a sequence's heads one after another, where nh calls took a head over the whole batch. The
 * bits of those calls. */
void attention_forward_heads(int nh, float *ctx, float *const *probs, const float *q, const float *k,
                             const float *v, const float *const *wma, const float *mask, float p,
                             const uint64_t *key, float *scratch, int B, int T, int A, int D);
void attention_backward_set_heads(int nh, float *dq, float *dk, float *dv, const float *dctx,
                                  float *const *probs, const float *q, const float *k, const float *v,
                                  float p, const uint64_t *key, float *scratch, int B, int T, int A, int D);
/*
 * The same for a few query rows (qr, with packed_q) without forming the keys and values, nh heads
 * at once: with k = x wk^T + bk and v = x wv^T + bv (x (B, T, h) the layer's input; wk, wv
 * (nh D, h), row stride h, and bk, bv (nh D); head j's are their rows from j D), the scores are
 * (q wk) x^T + q . bk and the context (drop(P) x) wv^T + rowsum(drop(P)) bv, which for few rows
 * costs a small fraction of projecting every row's key and value. ctx, q, dctx and dq (row
 * stride A) are packed as in attention_forward, head j's columns from j D; probs, key, wma and
 * dwma hold one per head (wma or dwma NULL, or a head's entry NULL: no wma). Backward adds into
 * dx (B, T, h) the gradient through the keys and values, into dq the queries', and into dwk, dbk,
 * dwv, dbv (and dwma) the parameters'; each sum over rows runs in row order whatever the threads.
 * No DynaProp.
 */
void attention_forward_xkv(int nh, float *ctx, float *const *probs, const float *q, const float *x, int h,
                           const float *wk, const float *bk, const float *wv, const float *bv,
                           const float *const *wma, const float *mask, float p, const uint64_t *key,
                           const struct nn_qrows *qr, int B, int T, int A, int D);
void attention_backward_xkv(int nh, float *dq, float *dx, float *dwk, float *dbk, float *dwv, float *dbv,
                            float *const *dwma, const float *dctx, float *const *probs, const float *q,
                            const float *x, int h, const float *wk, const float *bk, const float *wv,
                            const float *bv, const float *const *wma, float p, const uint64_t *key,
                            const struct nn_qrows *qr, int B, int T, int A, int D);
void attention_forward_naive(float *ctx, float *probs, const float *q, const float *k, const float *v,
                             const float *wma, const float *mask, float p, uint64_t key, int B, int T, int A,
                             int D);

/*
 * The orthonormal 2-D transforms of an LT head on the value slice with padded rows zeroed: out (row
 * stride A) = L (T, T) . v^ . R (D, D) where for the DFT it is (C_T v^ C_D - S_T v^ S_D) / sqrt(T D) and
 * for the DCT-II D_T v^ D_D^T. nn_transform_matrices fills the matrices (fp32 from fp64): for the DFT
 * m1 = C_T / sqrt(T), m2 = S_T / sqrt(T), m3 = C_D / sqrt(D), m4 = S_D / sqrt(D); for the DCT m1 = D_T,
 * m3 = D_D^T (m2, m4 unused). scratch holds 3 T D floats per thread.
 */
enum { NN_DFT, NN_DCT };
void nn_transform_matrices(int kind, float *m1, float *m2, float *m3, float *m4, int T, int D);
void transform_forward(int kind, float *out, const float *v, const float *mask, const float *m1,
                       const float *m2, const float *m3, const float *m4, float *scratch, int B, int T, int A,
                       int D);
void transform_backward(int kind, float *dv, const float *dout, const float *mask, const float *m1,
                        const float *m2, const float *m3, const float *m4, float *scratch, int B, int T,
                        int A, int D);
void transform_forward_naive(int kind, float *out, const float *v, const float *mask, int B, int T, int A,
                             int D);

/*
 * The dynamic span-based convolution of a c_k head (tests/reference/README.md): from the head's q, k, v
 * slices (row stride A) and its parameters dw (D, 1, K), pw (D, D, 1), beta (D), wk (K, D), bk (K),
 * wu (D, D), bu (D), writes out (row stride A) and saves kd (B, T, D: the depthwise result), ks (B, T,
 * D: the span-aware key), alpha (B, T, K: the tap weights) and u (B, T, D: the conv value, zero on
 * padded rows). Backward accumulates into the d* pointers and needs scratch of NN_DSC_SCRATCH floats.
 */
struct dsc_params {
	const float *dw, *pw, *beta, *wk, *bk, *wu, *bu;
};
struct dsc_grads {
	float *dw, *pw, *beta, *wk, *bk, *wu, *bu;
};
struct dsc_saved {
	float *kd, *ks, *alpha, *u;
};
#define NN_DSC_SCRATCH(B, T, D, K) ((size_t)(B) * (T) * ((K) + 4 * (size_t)(D)))
void dsc_forward(float *out, const struct dsc_saved *s, const float *q, const float *k, const float *v,
                 const struct dsc_params *w, const float *mask, int B, int T, int A, int D, int K);
void dsc_backward(float *dq, float *dk, float *dv, const struct dsc_grads *g, const float *dout,
                  const struct dsc_saved *s, const float *q, const float *k, const float *v,
                  const struct dsc_params *w, const float *mask, float *scratch, int B, int T, int A, int D,
                  int K);

/*
 * Cross-entropy of rows of logits (N, C) against labels (N; rows labelled < 0 are ignored), the target
 * smoothed (1 - smoothing on the label, smoothing / C on every class; 0: one-hot): returns the mean
 * loss over the counted rows (0 if none) and writes dlogits = (softmax - target) / count (0 on
 * ignored rows) when dlogits is not NULL. *count receives the number of counted rows.
 */
double crossentropy_forward_backward(float *dlogits, const float *logits, const int32_t *labels, int N, int C,
                                     float smoothing, int *count);

#endif
