/*
 * gemm.c: dense products for training (gemm.h).
 *
 * The kernel computes a tile of 6 rows and 64 columns of C in 24 AVX-512 registers, from a panel
 * of B packed 64 columns wide (K x 64 floats, contiguous: read once per k) and from A where it
 * lies, one element broadcast per row and k. A is never copied: for the products of a training
 * step (N of 64 to 512, K of 64 to 512) OpenBLAS's copy of A is a pass over the largest operand,
 * and its copy of B is no larger than ours. K goes in blocks of 128, so a panel (32 KB) stays in
 * L1 while the tiles of A below it stream past; a tile's sums wait in C between blocks. Rows go in
 * blocks of 96, which stay in L2 while every panel passes over them; each tile prefetches the C
 * of the next, and what the next one's epilogue reads, and on the block's first panel the next
 * one's rows of A, a line a step of its loop (the rows come from memory there: on 1 thread of an
 * Intel Xeon the forward pass took 0.96 of its time with it). A weight gradient (A transposed, K the
 * batch's tokens) goes K block by K block instead, each block of B packed just before its tiles
 * (product_tn). What follows a dense layer's product (gemm_epilogue: pruning, dropout, residual)
 * runs on each tile as it leaves the registers.
 *
 * For DynaProp's pruned gradients, gemm_sparse and gemm_sparse_t take a mostly zero operand by its
 * nonzeros, listed 16 elements at a time: a row of C summed in up to 8 registers from the rows of B
 * the nonzeros pick, or a row of B held in registers and added to the rows of C they pick. Each
 * adds its terms in the dense kernel's order, with the same fused multiply-adds.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "util.h"

#define MR      6   /* rows of a tile */
#define NR      64  /* columns of a tile and of a packed panel: 4 vectors */
#define KC      128 /* the k of a block: a panel block of 32 KB */
#define MC      96  /* rows of A a block of panels runs over while they stay in L2 */
#define THREADS 256 /* threads with buffers of their own; any beyond use OpenBLAS */

static float *pack[THREADS];
static size_t packcap[THREADS];
static int nslot;

/* The calling thread's slot in pack and acc: its own, whatever team it runs in (the thread number
 * within a team would be 0 for every thread of an outer team that opens a nested one). */
static int
slot(void)
{
	static _Thread_local int mine = -1;
	if (mine < 0)
		mine = __atomic_fetch_add(&nslot, 1, __ATOMIC_RELAXED);
	return mine;
}
/* Thread slot t's buffer, of at least need floats: zeros where new, so that the pad lanes of a
 * packed panel hold finite values and stay quiet; on a cache line's start, so that no load of a
 * panel's row (a line) spans two */
static float *
buffer(int t, size_t need)
{
	if (packcap[t] < need) {
		free(pack[t]);
		packcap[t] = need;
		pack[t] = ecalloc64(need, sizeof(float));
	}
	return pack[t];
}

static int counting;
static struct {
	double s, flops;
	char pad[48]; /* a cache line each */
} acc[THREADS];

/* The lanes of vector v (0..3) that fall within a panel w columns wide. */
static __mmask16
lanes(int w, int v)
{
	int n = w - 16 * v;
	return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* nn.c's dropout hash of pair j under key k (murmur3's finaliser of j ^ k), 16 lanes at a time */
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline __m512i
hash16(__m512i j, uint32_t k)
{
	__m512i x = _mm512_xor_si512(j, _mm512_set1_epi32((int)k));
	x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
	x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x85ebca6bu));
	x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 13));
	x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0xc2b2ae35u));
	return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

/*
 * Dropout's keep bits for the 64 elements of C from offset o (bit t: element base + o + t), by
 * nn.c's rule: element i is kept where 16 bits of the hash of its pair i / 2, the low half for even
 * i, fall below dthr. Compared as 16-bit words, a hash of 16 pairs gives 32 elements' bits in their
 * order; an odd first element takes a third hash for the last.
 */
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline uint64_t
drop_bits(const struct gemm_epi *e, size_t o)
{
	uint32_t i0 = (uint32_t)(e->base + o), j0 = i0 >> 1;
	__m512i step = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
	        thr = _mm512_set1_epi16((short)e->dthr);
	uint64_t lo = 0, hi;

	for (int h = 0; h < 2; h++)
		lo |= (uint64_t)_mm512_cmplt_epu16_mask(
		          hash16(_mm512_add_epi32(_mm512_set1_epi32((int)(j0 + 16 * (uint32_t)h)), step),
		                 e->dkey),
		          thr)
		      << (32 * h);
	if (!(i0 & 1u))
		return lo;
	hi = _mm512_cmplt_epu16_mask(
	         hash16(_mm512_add_epi32(_mm512_set1_epi32((int)(j0 + 32)), step), e->dkey), thr) &
	     1u;
	return lo >> 1 | hi << 63;
}

/* e's steps on 16 elements of C, lanes m, the first at offset o from C's origin: pruned (their
 * kept bits into bits at 16 v, their zeros counted), dropped out (kd: drop_bits' for them), the
 * residual added, the factor multiplied in. */
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline __m512
epilogue(const struct gemm_epi *e, __m512 x, __mmask16 m, size_t o, uint64_t *bits, int v, int *zeros,
         __mmask16 kd)
{
	if (e->tau >= 0.0f) {
		__mmask16 kept =
		    _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(x), _mm512_set1_ps(e->tau), _CMP_GT_OQ);
		x = _mm512_maskz_mov_ps(kept, x);
		*bits |= (uint64_t)kept << (16 * v);
		*zeros += __builtin_popcount(m) - __builtin_popcount(kept);
	}
	if (e->dscale != 0.0f)
		x = _mm512_maskz_mul_ps(kd, x, _mm512_set1_ps(e->dscale));
	if (e->res)
		x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, e->res + o));
	if (e->mul)
		x = _mm512_mul_ps(x, _mm512_maskz_loadu_ps(m, e->mul + o));
	return x;
}

/* Line q (row q / 4, vector q % 4) of the next tile's C, and of e's res and mul there, into L1 */
__attribute__((always_inline)) static inline void
ahead(const float *next, const struct gemm_epi *e, size_t e0, int ldc, int q)
{
	int i = q / 4, v = q % 4;
	size_t o = e0 + (size_t)(MR + i) * ldc + 16 * (size_t)v;

	_mm_prefetch((const char *)(next + (size_t)i * ldc + 16 * v), _MM_HINT_T0);
	if (e && e->res)
		_mm_prefetch((const char *)(e->res + o), _MM_HINT_T0);
	if (e && e->mul)
		_mm_prefetch((const char *)(e->mul + o), _MM_HINT_T0);
}

/*
 * One tile: rows [0, mr) of C, the w columns of a panel, the k of one block [0, kc).
 * A(i, k) is A[i lda + k], or A[k lda + i] when at. first: the block is the first, so the tile
 * starts from its addend (beta C + bias), or from 0 when alpha scales the sum (then the block is
 * the only one and the addend comes at the end); otherwise from the partial sums in C. e (the last
 * block only, else NULL): the steps after the product; e0: the offset of the tile in C.
 */
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline void
tile(const int mr, const int at, int kc, const float *A, int lda, const float *bp, int w, float alpha,
     float beta, const float *bias, float *C, int ldc, int first, const float *next, struct gemm_epi *e,
     size_t e0, const float *na)
{
	__m512 c[MR][4];
	__mmask16 m[4];
	int scaled = alpha != 1.0f, zeros = 0;

	for (int v = 0; v < 4; v++)
		m[v] = lanes(w, v);
#pragma GCC unroll 6
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
		for (int v = 0; v < 4; v++) {
			__m512 x = _mm512_setzero_ps();
			if (!first || (!scaled && beta != 0.0f)) {
				x = _mm512_maskz_loadu_ps(m[v], C + (size_t)i * ldc + 16 * v);
				if (first && beta != 1.0f)
					x = _mm512_mul_ps(x, _mm512_set1_ps(beta));
			}
			if (first && !scaled && bias)
				x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m[v], bias + 16 * v));
			c[i][v] = x;
		}
	/* the next tile's C, on its way while this one computes, and what its epilogue reads: a line of
	 * each every few k, where all at once filled the core's line buffers and stalled the tile
	 * until memory answered */
	int every = kc >= MR * 4 ? kc / (MR * 4) : 1, until = every, q = 0;
	/* (na: the next tile's rows of A, a line a step: row ar, line al, counted, where a division
	 * per step cost the loop an idiv) */
	int lines = (kc + 15) / 16, ar = 0, al = 0;
	for (int k = 0; k < kc; k++) {
		if (next && --until == 0) {
			until = every;
			if (q < MR * 4)
				ahead(next, e, e0, ldc, q++);
		}
		if (na && ar < MR) {
			_mm_prefetch((const char *)(na + (size_t)ar * lda + 16 * al), _MM_HINT_T0);
			if (++al == lines)
				al = 0, ar++;
		}
		const float *b = bp + (size_t)k * NR;
		__m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32),
		       b3 = _mm512_loadu_ps(b + 48);
#pragma GCC unroll 6
		for (int i = 0; i < mr; i++) {
			__m512 a = _mm512_set1_ps(at ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
			c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
			c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
			c[i][2] = _mm512_fmadd_ps(a, b2, c[i][2]);
			c[i][3] = _mm512_fmadd_ps(a, b3, c[i][3]);
		}
	}
	while (next && q < MR * 4) /* (kc short) */
		ahead(next, e, e0, ldc, q++);
#pragma GCC unroll 6
	for (int i = 0; i < mr; i++) {
		uint64_t bits = 0, dm = e && e->dscale != 0.0f ? drop_bits(e, e0 + (size_t)i * ldc) : 0;
#pragma GCC unroll 4
		for (int v = 0; v < 4; v++) {
			float *cp = C + (size_t)i * ldc + 16 * v;
			__m512 x = c[i][v];
			if (scaled) {
				x = _mm512_mul_ps(x, _mm512_set1_ps(alpha));
				if (beta != 0.0f)
					x = _mm512_fmadd_ps(_mm512_set1_ps(beta),
					                    _mm512_maskz_loadu_ps(m[v], cp), x);
				if (bias)
					x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m[v], bias + 16 * v));
			}
			if (e)
				x = epilogue(e, x, m[v], e0 + (size_t)i * ldc + 16 * (size_t)v, &bits, v,
				             &zeros, (__mmask16)(dm >> (16 * v)));
			_mm512_mask_storeu_ps(cp, m[v], x);
		}
		if (e && e->keep && e->tau >= 0.0f)
			e->keep[(e->base + e0 + (size_t)i * ldc) / 64] = bits;
	}
	if (e)
		e->zeros += (size_t)zeros;
}

/*
 * The tiles of mr rows (1 to 6), each instance unrolled for its own mr. Not instrumented by the
 * sanitizers: a shadow check on each of the ten loads per 24 FMAs made sanitized training four
 * times slower (the suite runs it), and OpenBLAS, which this replaces, never was. gemm_test
 * checks in every build that the tiles write nothing beside C's columns; pack_b, which reads all
 * of B, stays instrumented.
 */
__attribute__((target("avx512f,avx512bw"), noinline, no_sanitize("address", "undefined"))) static void
tiles(int mr, int at, int kc, const float *A, int lda, const float *bp, int w, float alpha, float beta,
      const float *bias, float *C, int ldc, int first, const float *next, struct gemm_epi *e, size_t e0,
      const float *na)
{
#define TILE(r)                                                                                              \
	case r:                                                                                              \
		if (at)                                                                                      \
			tile(r, 1, kc, A, lda, bp, w, alpha, beta, bias, C, ldc, first, next, e, e0, NULL);  \
		else                                                                                         \
			tile(r, 0, kc, A, lda, bp, w, alpha, beta, bias, C, ldc, first, next, e, e0, na);    \
		break;
	switch (mr) {
		TILE(6)
		TILE(5)
		TILE(4)
		TILE(3)
		TILE(2)
		TILE(1)
	}
#undef TILE
}

/* The 16 x 16 block at src (row stride lds) into dst (row stride ldd), transposed. */
__attribute__((target("avx512f,avx512bw"))) static void
transpose16(float *dst, int ldd, const float *src, int lds)
{
	__m512 r[16], t[16];

	for (int i = 0; i < 16; i++)
		r[i] = _mm512_loadu_ps(src + (size_t)i * lds);
	for (int i = 0; i < 16; i += 2) { /* pairs of rows interleaved */
		t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
	}
	for (int i = 0; i < 16; i += 4) { /* then fours */
		r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
		r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
		r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
	}
	for (int i = 0; i < 16; i += 8) /* then 128-bit lanes across eights */
		for (int j = 0; j < 4; j++) {
			t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
			t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
		}
	for (int j = 0; j < 8; j++) { /* and across the two halves */
		r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
		r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
	}
	for (int i = 0; i < 16; i++)
		_mm512_storeu_ps(dst + (size_t)i * ldd, r[i]);
}

/*
 * op(B) (K, N) into panels of NR columns, each K x NR floats. The last panel's columns beyond N hold
 * whatever the buffer held (zeros when it was made, B's values since): they meet only lanes that
 * are never stored or counted.
 */
__attribute__((target("avx512f,avx512bw"))) static void
pack_b(float *bp, int tb, int N, int K, const float *B, int ldb)
{
	for (int p = 0; p * NR < N; p++) {
		float *dst = bp + (size_t)p * K * NR;
		int w = N - p * NR < NR ? N - p * NR : NR, j0 = 0, k0;
		if (!tb && w == NR) { /* 256 bytes a row: memcpy's rep movs paid its start-up on each */
			for (int k = 0; k < K; k++) {
				const float *src = B + (size_t)k * ldb + p * NR;
				float *d = dst + (size_t)k * NR;
				for (int j = 0; j < NR; j += 16)
					_mm512_storeu_ps(d + j, _mm512_loadu_ps(src + j));
			}
			continue;
		}
		if (!tb) {
			for (int k = 0; k < K; k++)
				memcpy(dst + (size_t)k * NR, B + (size_t)k * ldb + p * NR,
				       sizeof *dst * (size_t)w);
			continue;
		}
		/* B's rows p NR + j are the panel's columns: whole 16 x 16 blocks, then the rest */
		for (; j0 + 16 <= w; j0 += 16)
			for (k0 = 0; k0 + 16 <= K; k0 += 16)
				transpose16(dst + (size_t)k0 * NR + j0, NR,
				            B + (size_t)(p * NR + j0) * ldb + k0, ldb);
		for (int j = 0; j < w; j++) {
			const float *src = B + (size_t)(p * NR + j) * ldb;
			for (int k = j < j0 ? K / 16 * 16 : 0; k < K; k++)
				dst[(size_t)k * NR + j] = src[k];
		}
	}
}

static int mode = -1; /* 1: own kernel, 0: OpenBLAS, -1: not chosen yet */

static int
can(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

/* Chosen on first use, which may be on several threads at once: each finds the same answer. */
static int
own(void)
{
	int v = __atomic_load_n(&mode, __ATOMIC_RELAXED);
	if (v < 0) {
		const char *e = getenv("TC_GEMM");
		v = can() && !(e && strcmp(e, "openblas") == 0);
		__atomic_store_n(&mode, v, __ATOMIC_RELAXED);
	}
	return v;
}

int
gemm_own(void)
{
	return own();
}

int
gemm_select(int want_own)
{
	int v = want_own && can();
	__atomic_store_n(&mode, v, __ATOMIC_RELAXED);
	return v;
}

void
gemm_count(int on)
{
	counting = on;
}

void
gemm_stats(double *seconds, double *flops)
{
	*seconds = *flops = 0;
	for (int t = 0; t < THREADS; t++)
		*seconds += acc[t].s, *flops += acc[t].flops;
}

static void
blas(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
     float beta, const float *bias, float *C, int ldc)
{
	if (bias) { /* C = beta C + bias first, then the product on top */
		for (int i = 0; i < M; i++) {
			float *c = C + (size_t)i * ldc;
			for (int j = 0; j < N; j++)
				c[j] = (beta == 0.0f ? 0.0f : beta * c[j]) + bias[j];
		}
		beta = 1.0f;
	}
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
	            alpha, A, lda, B, ldb, beta, C, ldc);
}

static void product(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, const float *bias, float *C, int ldc, struct gemm_epi *e);

/* A call's start, for tally: its time when counting, else 0. */
static double
start(void)
{
	return counting ? omp_get_wtime() : 0;
}

/* With counting on, a call of M x N x K begun at t0 into its thread's totals. */
static void
tally(double t0, int M, int N, int K)
{
	int t = slot();
	if (counting && t < THREADS) {
		acc[t].s += omp_get_wtime() - t0;
		acc[t].flops += 2.0 * M * N * K;
	}
}

/* e's done on a block, from inside a call's tally: its time left out of the products' (gemm_stats
 * counts products, not the step that follows them) */
static void
done_untallied(const struct gemm_epi *e, size_t r, int kc, int block)
{
	double t0 = start();
	int t = slot();

	e->done(e, r, kc, block);
	if (counting && t < THREADS)
		acc[t].s -= omp_get_wtime() - t0;
}

void
gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
     float beta, const float *bias, float *C, int ldc)
{
	double t0 = start();

	product(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, C, ldc, NULL);
	tally(t0, M, N, K);
}

int
gemm_epilogue(int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              const float *bias, float *C, int ldc, struct gemm_epi *e)
{
	double t0;

	if (!own() || slot() >= THREADS || K <= 0 || M <= 0 || N <= 0 ||
	    (e->keep && (N % NR != 0 || ldc % 64 != 0 || e->base % 64 != 0)))
		return -1;
	t0 = start();
	product(0, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, bias, C, ldc, e);
	tally(t0, M, N, K);
	return 0;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void
gemm_add_rows(float *sum, const float *x, int ldx, int N, int n)
{
	for (int i = 0; i < N; i++) {
		const float *r = x + (size_t)i * ldx;
#pragma omp simd
		for (int j = 0; j < n; j++)
			sum[j] += r[j];
	}
}

/* product_tn's block of K: rows [k0, k0 + kc) of A and B (B NULL: packed into bp already) */
static void
tn_block(int tb, int M, int N, int k0, int kc, const float *A, int lda, const float *B, int ldb, float beta,
         const float *bias, float *C, int ldc, float *bp, float *asum)
{
	int np = (N + NR - 1) / NR;

	if (B)
		pack_b(bp, tb, N, kc, tb ? B + k0 : B + (size_t)k0 * ldb, ldb);
	if (asum)
		gemm_add_rows(asum, A + (size_t)k0 * lda, lda, kc, M);
	for (int p = 0; p < np; p++) {
		int w = N - p * NR < NR ? N - p * NR : NR;
		for (int i = 0; i < M; i += MR)
			tiles(M - i < MR ? M - i : MR, 1, kc, A + (size_t)k0 * lda + i, lda,
			      bp + (size_t)p * kc * NR, w, 1.0f, beta, bias ? bias + p * NR : NULL,
			      C + (size_t)i * ldc + p * NR, ldc, k0 == 0,
			      i + 2 * MR <= M && (beta != 0.0f || k0 > 0)
			          ? C + (size_t)(i + MR) * ldc + p * NR
			          : NULL,
			      NULL, 0, NULL);
	}
}

/*
 * C (M x N) = beta C + bias + A^T op(B), A (K x M) and K the long side (a weight gradient: K the
 * batch's tokens); with asum, also A's column sums (the bias gradient) added into asum. K goes in
 * blocks of KC, and each block of B is packed (kc x N: in L2) just before its tiles run, so B is
 * read once from memory and its copy never leaves the caches; packed whole, as product packs it,
 * the copy (up to 8 MB) went out to memory and came back. A is read where it lies, 6 floats of a
 * row per k, its block first summed into asum: one pass that brings it into the caches for the
 * tiles, where a pass of its own read all of A from memory again.
 */
static void
product_tn(int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
           const float *bias, float *C, int ldc, float *bp, float *asum)
{
	for (int k0 = 0; k0 < K; k0 += KC)
		tn_block(tb, M, N, k0, K - k0 < KC ? K - k0 : KC, A, lda, B, ldb, beta, bias, C, ldc, bp,
		         asum);
}

/* product's tiles, B packed (bp: panels of K x NR) */
static void
run(int ta, int M, int N, int K, float alpha, const float *A, int lda, const float *bp, float beta,
    const float *bias, float *C, int ldc, struct gemm_epi *e)
{
	int np = (N + NR - 1) / NR;

	for (int i0 = 0; i0 < M; i0 += MC) {
		int m = M - i0 < MC ? M - i0 : MC;
		for (int k0 = 0; k0 < K; k0 += KC) {
			int kc = K - k0 < KC ? K - k0 : KC;
			for (int p = 0; p < np; p++) {
				int w = N - p * NR < NR ? N - p * NR : NR;
				for (int i = i0; i < i0 + m; i += MR)
					tiles(
					    i0 + m - i < MR ? i0 + m - i : MR, ta, kc,
					    ta ? A + (size_t)k0 * lda + i : A + (size_t)i * lda + k0, lda,
					    bp + ((size_t)p * K + k0) * NR, w, alpha, beta,
					    bias ? bias + p * NR : NULL, C + (size_t)i * ldc + p * NR, ldc,
					    k0 == 0,
					    i + 2 * MR <= i0 + m ? C + (size_t)(i + MR) * ldc + p * NR : NULL,
					    k0 + kc == K ? e : NULL, (size_t)i * ldc + (size_t)p * NR,
					    p == 0 && !ta && i + MR < i0 + m ? A + (size_t)(i + MR) * lda + k0
					                                     : NULL);
			}
		}
	}
}

static void
product(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
        float beta, const float *bias, float *C, int ldc, struct gemm_epi *e)
{
	int t = slot(), np = (N + NR - 1) / NR;
	float *bp;

	if (M <= 0 || N <= 0)
		return;
	if (!own() || t >= THREADS || K <= 0 || (alpha != 1.0f && K > KC)) {
		blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, C, ldc);
		return;
	}
	if (ta && K > 2 * KC && !e && alpha == 1.0f) {
		product_tn(tb, M, N, K, A, lda, B, ldb, beta, bias, C, ldc, buffer(t, (size_t)np * NR * KC),
		           NULL);
		return;
	}
	bp = buffer(t, (size_t)np * NR * K);
	pack_b(bp, tb, N, K, B, ldb);
	run(ta, M, N, K, alpha, A, lda, bp, beta, bias, C, ldc, e);
}

/* ---- a sparse left operand (gemm_sparse) ---- */

#define SN 128 /* columns of C a row of the sparse product holds in registers: 8 vectors */

/* CALL(r) for r = nv (1 to 8) as a constant, so that each instance of an always_inline kernel is
 * unrolled for its own count of vectors */
#define BY_VECTORS(nv, CALL)                                                                                 \
	switch (nv) {                                                                                        \
	case 8:                                                                                              \
		CALL(8);                                                                                     \
		break;                                                                                       \
	case 7:                                                                                              \
		CALL(7);                                                                                     \
		break;                                                                                       \
	case 6:                                                                                              \
		CALL(6);                                                                                     \
		break;                                                                                       \
	case 5:                                                                                              \
		CALL(5);                                                                                     \
		break;                                                                                       \
	case 4:                                                                                              \
		CALL(4);                                                                                     \
		break;                                                                                       \
	case 3:                                                                                              \
		CALL(3);                                                                                     \
		break;                                                                                       \
	case 2:                                                                                              \
		CALL(2);                                                                                     \
		break;                                                                                       \
	case 1:                                                                                              \
		CALL(1);                                                                                     \
		break;                                                                                       \
	}

/*
 * Columns [0, n) of a row of C (n <= SN, in nv vectors): its start (from, or 0), plus val[j] times
 * row idx[j] of B for j in [0, nz), in that order, one fused multiply-add each.
 */
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline void
sparse_row(const int nv, int n, int nz, const int *idx, const float *val, const float *B, int ldb,
           const float *from, float *c)
{
	__m512 r[SN / 16];
	int left = n - 16 * (nv - 1);
	__mmask16 last = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);

#pragma GCC unroll 8
	for (int v = 0; v < nv; v++)
		r[v] = from ? _mm512_maskz_loadu_ps(v < nv - 1 ? 0xffff : last, from + 16 * v)
		            : _mm512_setzero_ps();
	for (int j = 0; j < nz; j++) {
		const float *b = B + (size_t)idx[j] * ldb;
		__m512 a = _mm512_set1_ps(val[j]);
#pragma GCC unroll 8
		for (int v = 0; v < nv - 1; v++)
			r[v] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + 16 * v), r[v]);
		r[nv - 1] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(last, b + 16 * (nv - 1)), r[nv - 1]);
	}
#pragma GCC unroll 8
	for (int v = 0; v < nv; v++)
		_mm512_mask_storeu_ps(c + 16 * v, v < nv - 1 ? 0xffff : last, r[v]);
}

/* sparse_row over a row of any width, SN columns at a time */
__attribute__((target("avx512f,avx512bw"), noinline)) static void
sparse_rows(int n, int nz, const int *idx, const float *val, const float *B, int ldb, const float *from,
            float *c)
{
	for (int j0 = 0; j0 < n; j0 += SN) {
		int w = n - j0 < SN ? n - j0 : SN;
		const float *f = from ? from + j0 : NULL;
#define ROW(r) sparse_row(r, w, nz, idx, val, B + j0, ldb, f, c + j0)
		BY_VECTORS((w + 15) / 16, ROW);
#undef ROW
	}
}

/* Row s[0..k)'s nonzeros in order into idx (their k) and val; returns their count. */
__attribute__((target("avx512f,avx512bw"))) static int
nonzeros(const float *s, int k, int *idx, float *val)
{
	int nz = 0;

	for (int j0 = 0; j0 < k; j0 += 16) {
		__mmask16 m = k - j0 >= 16 ? 0xffff : (__mmask16)((1u << (k - j0)) - 1);
		__m512 x = _mm512_maskz_loadu_ps(m, s + j0);
		__mmask16 nzm = _mm512_mask_cmp_ps_mask(m, x, _mm512_setzero_ps(), _CMP_NEQ_UQ);
		_mm512_mask_compressstoreu_ps(val + nz, nzm, x);
		_mm512_mask_compressstoreu_epi32(
		    idx + nz, nzm,
		    _mm512_add_epi32(_mm512_set1_epi32(j0), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
		                                                              10, 11, 12, 13, 14, 15)));
		nz += __builtin_popcount(nzm);
	}
	return nz;
}

int
gemm_sparse(int M, int N, int K, const float *S, int lds, const float *B, int ldb, int add, float *C, int ldc)
{
	int t = slot();
	size_t terms = 0;
	double t0;
	float *buf;

	if (!own() || t >= THREADS || M <= 0 || N <= 0)
		return -1;
	t0 = start();
	buf = buffer(t, 2 * (size_t)K); /* a row's nonzeros: their k, then their values */
	for (int i = 0; i < M; i++) {
		float *c = C + (size_t)i * ldc;
		int nz = nonzeros(S + (size_t)i * lds, K, (int *)buf, buf + K);
		terms += (size_t)nz;
		sparse_rows(N, nz, (const int *)buf, buf + K, B, ldb, add ? c : NULL, c);
	}
	tally(t0, 1, N, (int)terms); /* 2 N FLOPs a term */
	return 0;
}

void
gemm_transpose(float *dst, int ldd, const float *src, int lds, int R, int C)
{
	int r0 = 0, c0 = 0;

	if (own()) /* whole 16 x 16 blocks in vector registers */
		for (r0 = 0; r0 + 16 <= R; r0 += 16)
			for (c0 = 0; c0 + 16 <= C; c0 += 16)
				transpose16(dst + (size_t)c0 * ldd + r0, ldd, src + (size_t)r0 * lds + c0,
				            lds);
	r0 = own() ? R / 16 * 16 : 0, c0 = own() ? C / 16 * 16 : 0;
	for (int r = 0; r < R; r++) /* the rest: the rows below the blocks, the columns beside them */
		for (int c = r < r0 ? c0 : 0; c < C; c++)
			dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
}

/*
 * For gemm_sparse_t: the nz nonzeros of a row k of S (val[j] at column idx[j] of the range) each add
 * val[j] times row k of B (its columns [0, n), n <= SN, nv vectors, in registers) to their row of C
 * (c, row stride ldc).
 */
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline void
scatter_row(const int nv, int n, int nz, const int *idx, const float *val, const float *b, float *c, int ldc)
{
	__m512 r[SN / 16];
	int left = n - 16 * (nv - 1);
	__mmask16 last = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);

#pragma GCC unroll 8
	for (int v = 0; v < nv - 1; v++)
		r[v] = _mm512_loadu_ps(b + 16 * v);
	r[nv - 1] = _mm512_maskz_loadu_ps(last, b + 16 * (nv - 1));
	for (int j = 0; j < nz; j++) {
		float *cr = c + (size_t)idx[j] * ldc;
		__m512 a = _mm512_set1_ps(val[j]);
#pragma GCC unroll 8
		for (int v = 0; v < nv - 1; v++)
			_mm512_storeu_ps(cr + 16 * v, _mm512_fmadd_ps(a, r[v], _mm512_loadu_ps(cr + 16 * v)));
		_mm512_mask_storeu_ps(
		    cr + 16 * (nv - 1), last,
		    _mm512_fmadd_ps(a, r[nv - 1], _mm512_maskz_loadu_ps(last, cr + 16 * (nv - 1))));
	}
}

__attribute__((target("avx512f,avx512bw"), noinline)) static void
scatter_rows(int n, int nz, const int *idx, const float *val, const float *b, float *c, int ldc)
{
	for (int j0 = 0; j0 < n; j0 += SN) {
		int w = n - j0 < SN ? n - j0 : SN;
#define ROW(r) scatter_row(r, w, nz, idx, val, b + j0, c + j0, ldc)
		BY_VECTORS((w + 15) / 16, ROW);
#undef ROW
	}
}

int
gemm_sparse_t(int lo, int hi, int N, int K, const float *S, int lds, const float *B, int ldb, float *C,
              int ldc)
{
	int t = slot(), m = hi - lo;
	size_t terms = 0;
	double t0;
	float *buf;

	if (!own() || t >= THREADS || m <= 0 || N <= 0)
		return -1;
	t0 = start();
	buf = buffer(t, 2 * (size_t)m); /* a row's nonzeros: their columns, then their values */
	for (int k = 0; k < K; k++) {
		int nz = nonzeros(S + (size_t)k * lds + lo, m, (int *)buf, buf + m);
		if (nz == 0)
			continue;
		terms += (size_t)nz;
		scatter_rows(N, nz, (const int *)buf, buf + m, B + (size_t)k * ldb, C + (size_t)lo * ldc,
		             ldc);
	}
	tally(t0, 1, N, (int)terms); /* 2 N FLOPs a term */
	return 0;
}

void
gemm_tn_sum(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C,
            int ldc, float *asum)
{
	int t = slot();
	double t0;

	if (M <= 0 || N <= 0)
		return;
	t0 = start();
	if (own() && t < THREADS && K > 2 * KC)
		product_tn(0, M, N, K, A, lda, B, ldb, beta, NULL, C, ldc,
		           buffer(t, (size_t)(N + NR - 1) / NR * NR * KC), asum);
	else {
		product(1, 0, M, N, K, 1.0f, A, lda, B, ldb, beta, NULL, C, ldc, NULL);
		if (asum)
			gemm_add_rows(asum, A, lda, K, M);
	}
	tally(t0, M, N, K);
}

/* e for the block at row r of D (e's res, mul and base row 0's) into ge; NULL without e or where e
 * has no step for the tiles (done alone) */
static struct gemm_epi *
epi_at(struct gemm_epi *ge, const struct gemm_epi *e, size_t r, int ldd)
{
	if (!e || (e->tau < 0.0f && e->dscale == 0.0f && !e->res && !e->mul))
		return NULL;
	*ge = *e;
	ge->zeros = 0;
	ge->base = e->base + r * ldd;
	ge->res = e->res ? e->res + r * ldd : NULL;
	ge->mul = e->mul ? e->mul + r * ldd : NULL;
	return ge;
}

void
gemm_tn_sum_run_n(int n, int M, int N, int K, const float *const *A, int lda, const float *B, int ldb,
                  float beta, float *const *C, int ldc, float *const *asum, const float *const *wp, int ND,
                  float dbeta, float *D, int ldd, struct gemm_epi *e)
{
	int t = slot();
	double t0;

	if (M <= 0 || N <= 0 || K <= 0)
		return;
	if (!own() || t >= THREADS || K <= 2 * KC) {
		struct gemm_epi ge, *eb = epi_at(&ge, e, 0, ldd);
		for (int j = 0; j < n; j++) {
			gemm_tn_sum(M, N, K, A[j], lda, B, ldb, beta, C[j], ldc, asum[j]);
			gemm_run(K, ND, M, A[j], lda, wp[j], j == 0 ? dbeta : 1.0f, NULL, D, ldd, eb);
		}
		if (eb)
			e->zeros += ge.zeros;
		for (int k0 = 0; e && e->done && k0 < K; k0 += KC) /* (the blocks the other way has) */
			e->done(e, (size_t)k0, K - k0 < KC ? K - k0 : KC, e->slot0 + k0 / KC);
		return;
	}
	t0 = start();
	float *bp = buffer(t, (size_t)(N + NR - 1) / NR * NR * KC);
	for (int k0 = 0; k0 < K; k0 += KC) {
		int kc = K - k0 < KC ? K - k0 : KC;
		struct gemm_epi ge, *eb = epi_at(&ge, e, (size_t)k0, ldd);
		/* B's block packed first, then the input gradient over A's block where it lies (its
		 * first reads overlap the tiles' arithmetic), then the weight gradient: its sums of A
		 * find A in cache, where they waited on memory */
		pack_b(bp, 0, N, kc, B + (size_t)k0 * ldb, ldb);
		for (int j = 0; j < n; j++) {
			run(0, kc, ND, M, 1.0f, A[j] + (size_t)k0 * lda, lda, wp[j], j == 0 ? dbeta : 1.0f,
			    NULL, D + (size_t)k0 * ldd, ldd, eb);
			tn_block(0, M, N, k0, kc, A[j], lda, NULL, ldb, beta, NULL, C[j], ldc, bp, asum[j]);
		}
		if (eb)
			e->zeros += ge.zeros;
		if (e && e->done)
			done_untallied(e, (size_t)k0, kc, e->slot0 + k0 / KC);
	}
	tally(t0, n * M, N, K);
	tally(start(), K, ND, n * M); /* (the time went to the first) */
}

void
gemm_tn_sum_run(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                int ldc, float *asum, const float *wp, int ND, float dbeta, float *D, int ldd,
                struct gemm_epi *e)
{
	gemm_tn_sum_run_n(1, M, N, K, &A, lda, B, ldb, beta, &C, ldc, &asum, &wp, ND, dbeta, D, ldd, e);
}

/*
 * gemm_tn_sum_run_team's shared state: each thread's blocks of rows at nb * t on, each block's state:
 * FREE; its owner's (PACKING; OWNED: packed, its weight gradient under way; INPUT: its input gradient
 * too); or HELPED: its input gradient another thread's, its owner's weight gradient under way
 */
enum { FREE, PACKING, OWNED, INPUT, HELPED };
static struct {
	long helped; /* blocks so far, for gemm_team_stats */
	int *state, nt, nb, done;
	size_t cap;
} team;

/* Row t * K / nt: where thread t's rows start */
static int
team_row(int K, int t, int nt)
{
	return (int)((long)K * t / nt);
}

long
gemm_team_stats(void)
{
	return __atomic_load_n(&team.helped, __ATOMIC_RELAXED);
}

int
gemm_blocks(int K, int nt)
{
	return ((K + nt - 1) / nt + KC - 1) / KC;
}

int
gemm_team(int nt, int K, int N)
{
	if (!own() || nt < 2 || nt > THREADS || N <= 0 || K / nt <= 2 * KC || omp_in_parallel())
		return -1;
	team.nt = nt;
	team.nb = gemm_blocks(K, nt);
	if (team.cap < (size_t)nt * team.nb) {
		free(team.state);
		team.cap = (size_t)nt * team.nb;
		team.state = emalloc64(team.cap * sizeof(int));
	}
	memset(team.state, 0, (size_t)nt * team.nb * sizeof(int));
	team.done = 0;
	return 0;
}

/* A wait's turn (*n of them so far): a pause while the wait is short, then the core to whoever
 * else wants it: where the threads outnumber the free cores, the thread waited for may be the one
 * waiting for it (OpenMP's passive waits, which tests/run asks for, sleep at once) */
static void
spin(int *n)
{
	if (++*n > 2000) {
		sched_yield();
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	_mm_pause();
#endif
}

static void (*team_hook)(void);

void
gemm_team_hook(void (*fn)(void))
{
	team_hook = fn;
}

/* From *st's state from to to; 1 where it was from */
static int
move(int *st, int from, int to)
{
	return __atomic_compare_exchange_n(st, &from, to, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* gemm_tn_sum_run_n's input gradient for kc rows at row r (D's rows, A's, and e's), the team's
 * block number block; then e's done on them */
static void
input_block(int n, int M, int kc, size_t r, const float *const *A, int lda, const float *const *wp, int ND,
            float dbeta, float *D, int ldd, const struct gemm_epi *e, int block)
{
	struct gemm_epi ge;
	struct gemm_epi *eb = epi_at(&ge, e, r, ldd);

	for (int j = 0; j < n; j++)
		run(0, kc, ND, M, 1.0f, A[j] + r * lda, lda, wp[j], j == 0 ? dbeta : 1.0f, NULL, D + r * ldd,
		    ldd, eb);
	if (e && e->done)
		done_untallied(e, r, kc, block);
}

void
gemm_tn_sum_run_team(int n, int M, int N, int K, const float *const *A, int lda, const float *B, int ldb,
                     float beta, float *const *C, int ldc, float *const *asum, const float *const *wp, int ND,
                     float dbeta, float *D, int ldd, const struct gemm_epi *e)
{
	int t = omp_get_thread_num(), nt = team.nt, lo = team_row(K, t, nt), hi = team_row(K, t + 1, nt);
	int mine = 0, theirs = 0;
	float *bp = buffer(slot(), (size_t)(N + NR - 1) / NR * NR * KC);
	double t0 = start();

	/* its own rows in blocks as gemm_tn_sum_run_n takes them (packed, then the input gradient, its
	 * reads of A beside the tiles' arithmetic, then the weight gradient, A's block in cache); but
	 * once another thread is done with its own rows, the weight gradient first, and the input
	 * gradient only where that thread has not taken it meanwhile */
	for (int k0 = 0, b = 0; k0 < hi - lo; k0 += KC, b++) {
		int kc = hi - lo - k0 < KC ? hi - lo - k0 : KC, *st = team.state + (size_t)t * team.nb + b;
		size_t r = (size_t)lo + k0;
		__atomic_store_n(st, PACKING, __ATOMIC_RELAXED);
		pack_b(bp, 0, N, kc, B + r * ldb, ldb);
		if (!__atomic_load_n(&team.done, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(st, INPUT, __ATOMIC_RELAXED);
			input_block(n, M, kc, r, A, lda, wp, ND, dbeta, D, ldd, e, t * team.nb + b);
			mine += kc;
		} else {
			__atomic_store_n(st, OWNED, __ATOMIC_RELEASE);
			if (team_hook)
				team_hook();
		}
		for (int j = 0; j < n; j++)
			tn_block(0, M, N, k0, kc, A[j] + (size_t)lo * lda, lda, NULL, ldb, beta, NULL, C[j],
			         ldc, bp, asum[j]);
		if (move(st, OWNED, INPUT)) {
			input_block(n, M, kc, r, A, lda, wp, ND, dbeta, D, ldd, e, t * team.nb + b);
			mine += kc;
		}
	}
	__atomic_fetch_add(&team.done, 1, __ATOMIC_RELEASE);
	tally(t0, n * M, N, hi - lo);
	tally(start(), mine, ND, n * M);
	/* then the input gradient of each block of the others' that they have not begun, as they
	 * come to them: the rest of their rows split between the two of them. Waiting for them costs
	 * nothing: the region's barrier would wait for them too. */
	t0 = start();
	for (int d = 1; d < nt; d++) {
		int v = (t + d) % nt, vlo = team_row(K, v, nt), vhi = team_row(K, v + 1, nt),
		    *sv = team.state + (size_t)v * team.nb;
		for (int k0 = 0, b = 0; k0 < vhi - vlo; k0 += KC, b++) {
			int kc = vhi - vlo - k0 < KC ? vhi - vlo - k0 : KC, now, w = 0;
			while ((now = __atomic_load_n(sv + b, __ATOMIC_ACQUIRE)) == FREE || now == PACKING)
				spin(&w);
			if (now == OWNED && move(sv + b, OWNED, HELPED)) {
				input_block(n, M, kc, (size_t)vlo + k0, A, lda, wp, ND, dbeta, D, ldd, e,
				            v * team.nb + b);
				__atomic_fetch_add(&team.helped, 1, __ATOMIC_RELAXED);
				theirs += kc;
			}
		}
	}
	if (theirs > 0)
		tally(t0, theirs, ND, n * M);
}

/* gemm_pack_slot's buffers, each shared by every thread that runs on it */
#define SLOTS 4
static struct {
	float *bp;
	size_t cap;
} shared[SLOTS];

const float *
gemm_pack_slot(int slot, int tb, int N, int K, const float *B, int ldb)
{
	int np = (N + NR - 1) / NR;

	if (!own() || N <= 0 || K <= 0 || slot < 0 || slot >= SLOTS || omp_in_parallel())
		return NULL;
	if (shared[slot].cap < (size_t)np * NR * K) {
		free(shared[slot].bp);
		shared[slot].cap = (size_t)np * NR * K;
		shared[slot].bp = ecalloc64(shared[slot].cap, sizeof(float));
	}
#pragma omp parallel for schedule(static)
	for (int p = 0; p < np; p++) /* a panel each */
		pack_b(shared[slot].bp + (size_t)p * K * NR, tb, N - p * NR < NR ? N - p * NR : NR, K,
		       tb ? B + (size_t)p * NR * ldb : B + p * NR, ldb);
	return shared[slot].bp;
}

const float *
gemm_pack(int tb, int N, int K, const float *B, int ldb)
{
	return gemm_pack_slot(0, tb, N, K, B, ldb);
}

void
gemm_run(int M, int N, int K, const float *A, int lda, const float *bp, float beta, const float *bias,
         float *C, int ldc, struct gemm_epi *e)
{
	double t0;

	if (M <= 0 || N <= 0)
		return;
	t0 = start();
	run(0, M, N, K, 1.0f, A, lda, bp, beta, bias, C, ldc, e);
	tally(t0, M, N, K);
}
