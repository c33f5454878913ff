/*
 * gemm.h: the dense products of training, on one thread, row-major.
 *
 *   C (M, N) = alpha * op(A) op(B) + beta * C + bias        op(X) = X or X^T (ta, tb)
 *
 * with bias (N) added to every row, or NULL. On a CPU with AVX-512 a kernel of this file computes
 * it from A as it lies (no packed copy: OpenBLAS's copies of its operands took 15% of a training
 * step) with the bias added in registers; elsewhere, and where TC_GEMM=openblas is set in the
 * environment, OpenBLAS's cblas_sgemm. The own kernel's result depends on neither the thread
 * that calls it nor the rows around it: each element sums its K products in order. Any number of
 * threads may call at once; each packs into a buffer of its own.
 */
#ifndef TC_GEMM_H
#define TC_GEMM_H

#include <stddef.h>
#include <stdint.h>

void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
          float beta, const float *bias, float *C, int ldc);

/*
 * The steps that follow a layer's product, applied to each element as the product leaves its
 * registers (C = A op(B) + bias; alpha 1, beta 0). Element (i, j) of C is element e = base + i ldc + j
 * of its tensor, in this order:
 *   pruning (tau >= 0): 0 where |x| <= tau; zeros counts them, and keep (or NULL) gets bit e % 64
 *   of word e / 64 set where x is kept (then N and ldc must be multiples of 64, and base too);
 *   dropout (dscale != 0): kept where nn.c's rule keeps e (16 bits of the hash of (dkey, e / 2)
 *   below dthr), times dscale, else 0;
 *   the residual (res, or NULL; laid out as C) added;
 *   a factor (mul, or NULL; laid out as C) multiplied in (a backward pass's derivative).
 * Each step gives the bits the separate pass gives. Returns -1, having done nothing, where the own
 * kernel does not run or keep's conditions do not hold: the caller takes the separate passes.
 */
struct gemm_epi {
	float tau;
	uint64_t *keep;
	size_t zeros;
	uint32_t dkey, dthr;
	float dscale;
	const float *res;
	size_t base;
	const float *mul;
	/* gemm_tn_sum_run_n and gemm_tn_sum_run_team only, where done is not NULL: called on each
	 * block of D's rows once its input gradient is whole, while the block is in cache (the next
	 * step of a backward pass on those rows), on the thread that wrote it: rows [r, r + kc) from
	 * D's row 0 in the call (the team's: row 0 of all K), and slot, the block's number, the same
	 * whichever thread writes it: slot0 + b for a thread's b-th block of gemm_tn_sum_run_n, t nb + b
	 * for thread t's b-th of the team, nb = gemm_blocks(K, nt). arg and row0 are the callee's (row0:
	 * where D's row 0 lies in the callee's numbering). */
	void (*done)(const struct gemm_epi *e, size_t r, int kc, int slot);
	const void *arg;
	size_t row0;
	int slot0;
};
int gemm_epilogue(int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  const float *bias, float *C, int ldc, struct gemm_epi *e);

/*
 * C (M, N) = S B, or C += S B where add is set, by S's nonzeros alone (DynaProp's pruned
 * gradients): row i of C gets s B(k) for each nonzero s = S(i, k) in increasing k, B(k) being row
 * k of B (K rows, row stride ldb), one fused multiply-add each, as gemm's kernel sums them: the
 * result is gemm's (alpha 1, beta 0 or 1, no bias) bit for bit, but for the sign of a sum of
 * zeros. Reads B's rows from where they lie, one per nonzero, with C's row in registers: at a
 * tenth of nonzeros or fewer it beats the dense product. Returns -1, having done nothing, where
 * the own kernel does not run.
 */
int gemm_sparse(int M, int N, int K, const float *S, int lds, const float *B, int ldb, int add, float *C,
                int ldc);

/*
 * Rows [lo, hi) of C (N columns) += S^T B by S's nonzeros, S (K, at least hi columns; row stride lds)
 * and B (K, N): for k in increasing order, each nonzero s = S(k, i) with i in [lo, hi) adds s times
 * row k of B to row i of C, in one fused multiply-add per element, as gemm's kernel sums
 * C += S^T B. A row of B is read once for all the nonzeros of its row of S (a weight gradient's
 * rows: S the pruned gradient, B the layer's input); threads that own ranges of rows of C may call
 * at once. Returns -1, having done nothing, where the own kernel does not run.
 */
int gemm_sparse_t(int lo, int hi, int N, int K, const float *S, int lds, const float *B, int ldb, float *C,
                  int ldc);

/* dst (C rows of R, row stride ldd) = src (R rows of C, row stride lds) transposed */
void gemm_transpose(float *dst, int ldd, const float *src, int lds, int R, int C);

/* C (M, N) = A^T B + beta C, A (K, M) and B (K, N) row-major, K the long side (a weight gradient:
 * A the output's gradient, B the layer's input, K the batch's tokens); and, when asum is not NULL,
 * A's column sums (the bias gradient) added into asum[0..M), row after row, as a loop over A's rows
 * would add them. */
void gemm_tn_sum(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                 int ldc, float *asum);

/* gemm_tn_sum, and then D (K, ND; row stride ldd) = A wp + dbeta D and e's steps (gemm_run; wp packed
 * by gemm_pack: op(W) of M rows and ND columns): a dense layer's weight, bias and input gradients in
 * one pass over A, KC rows at a time: a block's input gradient reads it from memory, its tiles'
 * arithmetic beside the reads, and its sums and weight gradient then find it in cache. D may be B
 * (ldd = ldb, ND = N): each block of B is packed before its rows of D are written. The bits are
 * gemm_tn_sum's and gemm_run's. */
void gemm_tn_sum_run(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc, float *asum, const float *wp, int ND, float dbeta, float *D, int ldd,
                     struct gemm_epi *e);
/* gemm_tn_sum_run for n layers on the same B (a layer's queries, keys and values on its input): C[j]
 * and asum[j] from A[j], and D = sum over j in order of A[j] wp[j] + dbeta D; B's block packed once
 * for them. With e, its steps after each of the n (n 1 where they do anything but add). The bits of
 * n calls of gemm_tn_sum_run, the later with dbeta 1. */
void gemm_tn_sum_run_n(int n, int M, int N, int K, const float *const *A, int lda, const float *B, int ldb,
                       float beta, float *const *C, int ldc, float *const *asum, const float *const *wp,
                       int ND, float dbeta, float *D, int ldd, struct gemm_epi *e);

/*
 * gemm_tn_sum_run_n over K rows shared by the nt threads of a parallel region: thread t, calling
 * it, takes rows [t K / nt, (t + 1) K / nt) of A[j] and B for C[j] and asum[j] (its own: a part of
 * the weight and bias gradients, summed by the caller), with beta; and D's rows = A[j] wp[j] + dbeta
 * D for all the rows, shared: a thread done with its own rows takes the input gradient of each of
 * the others' blocks of rows that they have not begun, as they come to them (they then take the
 * weight gradient first), so that a thread the machine slows leaves part of its share to the
 * others where a static split made them wait for it. A[j], B, D and e's res, mul and base are given
 * for row 0 of all K; e's zeros are not counted. The bits are those of gemm_tn_sum_run_n on each
 * thread's rows, whoever takes which block. gemm_team(nt, K, N), outside the region, prepares the
 * call (returns -1 where it does not apply: OpenBLAS, one thread, or 2 KC rows a thread or fewer);
 * one call a region.
 */
int gemm_team(int nt, int K, int N);
/* The most blocks of rows a thread's share of K rows split over nt threads has in
 * gemm_tn_sum_run_n and gemm_tn_sum_run_team (gemm_epi's done) */
int gemm_blocks(int K, int nt);
/* The blocks whose input gradient a thread other than their owner has written so far. For tests
 * and benchmarks. */
long gemm_team_stats(void);
/* For tests: where fn is not NULL, a thread in gemm_tn_sum_run_team calls it at each of its blocks
 * whose input gradient another thread may take (those it comes to once another thread is done
 * with its rows), before the block's weight gradient. */
void gemm_team_hook(void (*fn)(void));
void gemm_tn_sum_run_team(int n, int M, int N, int K, const float *const *A, int lda, const float *B, int ldb,
                          float beta, float *const *C, int ldc, float *const *asum, const float *const *wp,
                          int ND, float dbeta, float *D, int ldd, const struct gemm_epi *e);

/* For a product whose rows several threads share: op(B) (K, N) packed once, by the threads of a
 * parallel region opened here, into a buffer every thread then reads, valid until the next call;
 * NULL where gemm runs OpenBLAS, N or K is 0, or the caller is inside a parallel region already. */
const float *gemm_pack(int tb, int N, int K, const float *B, int ldb);
/* gemm_pack into buffer slot (0 to 3: gemm_pack's is 0), for products that need several packed at once */
const float *gemm_pack_slot(int slot, int tb, int N, int K, const float *B, int ldb);
/* C (M, N) = A op(B) + beta C + bias, op(B) packed by gemm_pack, then e's steps where e is not NULL:
 * gemm's and gemm_epilogue's bits, for any split of the rows. */
void gemm_run(int M, int N, int K, const float *A, int lda, const float *bp, float beta, const float *bias,
              float *C, int ldc, struct gemm_epi *e);

/* sum[j] += x[i][j] for the n columns of the N rows of x (row stride ldx), row after row: column
 * sums in the order a loop over the rows takes */
void gemm_add_rows(float *sum, const float *x, int ldx, int N, int n);

/* With counting on, every call adds its time and FLOPs to its thread's totals (less the time of
 * gemm_epi's done); gemm_stats sums them over the threads. For benchmarks: what a step spends in
 * its products. */
void gemm_count(int on);
void gemm_stats(double *seconds, double *flops);

/* 1 where gemm runs its own kernel, 0 where it calls OpenBLAS. */
int gemm_own(void);

/* Choose: own kernel (1, where the CPU has AVX-512) or OpenBLAS (0), overriding TC_GEMM; returns
 * what is in effect. For benchmarks and tests that compare the two in one process. */
int gemm_select(int want_own);

#endif
