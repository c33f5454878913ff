/*
 * nn.c: the numerical kernels of the FlexiBERT 2.0 encoder (nn.h).
 *
 * Dense products go to lib/gemm (its own kernel, or OpenBLAS's sgemm), single-threaded: this file
 * splits the work over OpenMP threads itself (rows of the output for products, output channels for
 * weight gradients, batch items for attention), so OpenBLAS threads and OpenMP threads never fight
 * over the two cores, and every reduction has a fixed order for a given thread count. Everything else is
 * plain loops under OpenMP. Row statistics (LayerNorm, softmax, cross-entropy) accumulate in double.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gemm.h"
#include "nn.h"
#include "util.h"

/* Hot loops are compiled for AVX-512, AVX2 and the baseline, chosen at load time: the build stays
 * portable and a modern core still runs 8 or 16 lanes. */
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* 16 floats (or ints), at any float's address, in a vector register where the target has one that
 * wide */
typedef float vec16 __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32_t vec16i __attribute__((vector_size(64), aligned(4), may_alias));

/* The sum of v's 16 lanes, halves added to halves. The rows' sums below are taken 16 lanes wide and
 * then here, where omp simd's reductions added the 16 lanes one after another: a chain of 16
 * additions, which on rows of 128 took 40% of LayerNorm's pass. */
static inline float
lanes_sum(vec16 v)
{
	typedef float vec8 __attribute__((vector_size(32)));
	typedef float vec4 __attribute__((vector_size(16)));
	vec8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
	         __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
	vec4 f = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
	return (f[0] + f[2]) + (f[1] + f[3]);
}

#define SQRT1_2      0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
#define PI           3.14159265358979323846

/*
 * The vector version of expf from glibc's libmvec (glibc 2.35 and later), which loops marked
 * "omp simd" call four or more lanes at a time. (Attention's softmax and GELU compute their exp
 * inline instead: see gauss_exp.)
 */
#pragma omp declare simd notinbranch
extern float expf(float);

/*
 * A site's 32-bit key, and the 32-bit hash of (key, j) (murmur3's finaliser of j ^ key). Element i
 * of a site is decided by 16 bits of the hash of its pair j = i / 2: the low half for even i, the
 * high half for odd. One hash serves two elements, where a hash each with an extra multiply by the
 * golden ratio was 2% of a 1-thread training step: a step's five million dropout decisions.
 */
static uint32_t
key32(uint64_t key)
{
	key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9u;
	key = (key ^ (key >> 27)) * 0x94d049bb133111ebu;
	return (uint32_t)(key ^ (key >> 31));
}

static inline uint32_t
hash32(uint32_t k, uint32_t j)
{
	uint32_t x = j ^ k;
	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	return x ^ (x >> 16);
}

/* Elements whose 16 bits fall below this (0 to 65536) are kept: p is taken in steps of 2^-16, 1 - p
 * rounded down (p 0.1 keeps 0.89999 of them). */
static uint32_t
keep_below(float p)
{
	double t = (1.0 - (double)p) * 65536.0;
	return p <= 0 ? 65536u : t >= 65535.0 ? 65535u : t <= 0 ? 0u : (uint32_t)t;
}

/* Is element i of site k kept below thr? */
static inline int
kept(uint32_t k, uint32_t i, uint32_t thr)
{
	uint32_t h = hash32(k, i >> 1);
	return ((i & 1u ? h >> 16 : h) & 0xffffu) < thr;
}

int
nn_keep(uint64_t key, uint64_t i, float p)
{
	return kept(key32(key), (uint32_t)i, keep_below(p));
}

/* y[i] = kept ? x[i] * scale : 0 for i in [0, n), element i being element base + i of the site; y may
 * be x. The pairs of elements that share a hash go together (an odd base's first and an odd end's
 * last alone). */
CLONES static void
drop_run(float *y, const float *x, size_t n, uint32_t k, uint32_t base, uint32_t thr, float scale)
{
	size_t a = n > 0 && (base & 1u), np = (n - a) / 2;
	uint32_t p0 = (base + (uint32_t)a) >> 1;

	if (a)
		y[0] = kept(k, base, thr) ? x[0] * scale : 0.0f;
#pragma omp simd
	for (size_t j = 0; j < np; j++) {
		uint32_t h = hash32(k, p0 + (uint32_t)j);
		float u = x[a + 2 * j], w = x[a + 2 * j + 1];
		y[a + 2 * j] = (h & 0xffffu) < thr ? u * scale : 0.0f;
		y[a + 2 * j + 1] = (h >> 16) < thr ? w * scale : 0.0f;
	}
	if (a + 2 * np < n)
		y[n - 1] = kept(k, base + (uint32_t)(n - 1), thr) ? x[n - 1] * scale : 0.0f;
}

/* Dropout's backward from its output y (which is 0 where dropped, nonzero where kept from a nonzero
 * input): d[i] = y[i] != 0 ? d[i] * scale : 0. Where the input was 0 this drops d[i] whatever the
 * hash said; the callers multiply such elements by that 0 next, so nothing else changes. */
CLONES static void
undrop_run(float *d, const float *y, size_t n, float scale)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		d[i] = y[i] != 0.0f ? d[i] * scale : 0.0f;
}

/* DynaTran then dropout in one pass: x[i] = 0 where |x[i]| <= tau, and y[i] = x[i] dropped as
 * drop_run does; returns the zeros of x. */
CLONES static size_t
prune_drop_run(float *y, float *x, size_t n, float tau, uint32_t k, uint32_t base, uint32_t thr, float scale)
{
	int z = 0; /* n <= T * T */

#pragma omp simd reduction(+ : z)
	for (size_t i = 0; i < n; i++) {
		float v = x[i];
		int keep = fabsf(v) > tau;
		x[i] = keep ? v : 0.0f;
		z += 1 - keep;
	}
	drop_run(y, x, n, k, base, thr, scale);
	return (size_t)z;
}

void
dropout_copy(float *y, const float *x, size_t n, float p, uint64_t key)
{
	uint32_t k = key32(key), thr = keep_below(p);
	float scale;

	if (p <= 0) {
		memcpy(y, x, sizeof *y * n);
		return;
	}
	scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		drop_run(y + i0, x + i0, n - i0 < 4096 ? n - i0 : 4096, k, (uint32_t)i0, thr, scale);
}

void
dropout_apply(float *x, size_t n, float p, uint64_t key)
{
	uint32_t k = key32(key), thr = keep_below(p);
	float scale;

	if (p <= 0)
		return;
	scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		drop_run(x + i0, x + i0, n - i0 < 4096 ? n - i0 : 4096, k, (uint32_t)i0, thr, scale);
}

/* ---- DynaProp: run-time pruning ---- */

/* Work is split into blocks of NN_PRUNE_BLOCK elements, a multiple of 64 so that a block owns
 * whole words of a keep mask; counts are integers, so their sum is the same for any thread count. */
#define NN_PRUNE_BLOCK 4096

/* x[i] = 0 where |x[i]| <= tau, over n <= NN_PRUNE_BLOCK; keep (NULL: none) gets a bit per kept
 * element; returns the zeros. */
CLONES static size_t
prune_block(float *x, uint64_t *keep, size_t n, float tau)
{
	size_t z = 0;

	if (!keep) {
#pragma omp simd reduction(+ : z)
		for (size_t i = 0; i < n; i++) {
			int kept = fabsf(x[i]) > tau;
			x[i] = kept ? x[i] : 0.0f;
			z += (size_t)!kept;
		}
		return z;
	}
	/* half a mask word at a time: 32-bit lanes throughout, so the loop vectorizes */
	for (size_t w0 = 0; w0 < n; w0 += 32) {
		int m = n - w0 < 32 ? (int)(n - w0) : 32, zc = 0;
		uint32_t bits = 0;
		float *xw = x + w0;
#pragma omp simd reduction(+ : zc) reduction(| : bits)
		for (int i = 0; i < m; i++) {
			float v = xw[i];
			uint32_t kept = fabsf(v) > tau;
			xw[i] = kept ? v : 0.0f;
			bits |= kept << i;
			zc += 1 - (int)kept;
		}
		z += (size_t)zc;
		if (w0 % 64 == 0)
			keep[w0 / 64] = bits;
		else
			keep[w0 / 64] |= (uint64_t)bits << 32;
	}
	return z;
}

/* d[i] = 0 where |d[i]| <= tau or the activation (y[i], else bit i of keep) was pruned. */
CLONES static size_t
prune_grad_block(float *d, const float *y, const uint64_t *keep, size_t n, float tau)
{
	size_t z = 0;

	if (y) {
#pragma omp simd reduction(+ : z)
		for (size_t i = 0; i < n; i++) {
			int kept = (fabsf(d[i]) > tau) & (y[i] != 0.0f);
			d[i] = kept ? d[i] : 0.0f;
			z += (size_t)!kept;
		}
		return z;
	}
	/* half a mask word at a time: 32-bit lanes throughout, so the loop vectorizes */
	for (size_t w0 = 0; w0 < n; w0 += 32) {
		int m = n - w0 < 32 ? (int)(n - w0) : 32, zc = 0;
		uint32_t bits = keep ? (uint32_t)(keep[w0 / 64] >> (w0 % 64)) : ~(uint32_t)0;
		float *dw = d + w0;
#pragma omp simd reduction(+ : zc)
		for (int i = 0; i < m; i++) {
			uint32_t b = (bits >> i) & 1u;
			float x = dw[i];
			int kept = fabsf(x) > tau && b;
			dw[i] = kept ? x : 0.0f;
			zc += 1 - kept;
		}
		z += (size_t)zc;
	}
	return z;
}

size_t
nn_prune(float *x, uint64_t *keep, size_t n, float tau)
{
	size_t zeros = 0;

#pragma omp parallel for schedule(static) reduction(+ : zeros)
	for (size_t i0 = 0; i0 < n; i0 += NN_PRUNE_BLOCK)
		zeros += prune_block(x + i0, keep ? keep + i0 / 64 : NULL,
		                     n - i0 < NN_PRUNE_BLOCK ? n - i0 : NN_PRUNE_BLOCK, tau);
	return zeros;
}

size_t
nn_prune_grad(float *d, const float *y, const uint64_t *keep, size_t n, float tau)
{
	size_t zeros = 0;

#pragma omp parallel for schedule(static) reduction(+ : zeros)
	for (size_t i0 = 0; i0 < n; i0 += NN_PRUNE_BLOCK)
		zeros += prune_grad_block(d + i0, y ? y + i0 : NULL, keep ? keep + i0 / 64 : NULL,
		                          n - i0 < NN_PRUNE_BLOCK ? n - i0 : NN_PRUNE_BLOCK, tau);
	return zeros;
}

size_t
nn_dropout_prune_grad(float *y, const float *x, size_t n, float p, uint64_t key, const uint64_t *keep,
                      float tau)
{
	uint32_t k = key32(key), thr = keep_below(p);
	float scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
	size_t zeros = 0;

	/* a block's two loops meet it in cache: NN_PRUNE_BLOCK is dropout_copy's block too */
#pragma omp parallel for schedule(static) reduction(+ : zeros)
	for (size_t i0 = 0; i0 < n; i0 += NN_PRUNE_BLOCK) {
		size_t m = n - i0 < NN_PRUNE_BLOCK ? n - i0 : NN_PRUNE_BLOCK;
		if (p > 0)
			drop_run(y + i0, x + i0, m, k, (uint32_t)i0, thr, scale);
		else
			memcpy(y + i0, x + i0, sizeof *y * m);
		zeros += prune_grad_block(y + i0, NULL, keep ? keep + i0 / 64 : NULL, m, tau);
	}
	return zeros;
}

size_t
nn_sample_abs(float *dst, size_t max, const float *x, size_t n)
{
	size_t stride = n > max ? (n + max - 1) / max : 1, k = 0;

	for (size_t i = 0; i < n && k < max; i += stride)
		dst[k++] = fabsf(x[i]);
	return k;
}

/* ---- dense products ---- */

/* The part [lo, hi) of n that thread t of nt takes. */
static void
split(int n, int t, int nt, int *lo, int *hi)
{
	*lo = (int)((long)n * t / nt);
	*hi = (int)((long)n * (t + 1) / nt);
}

/* Rows a thread takes at a time of a product whose op(B) is packed once (gemm_pack) */
#define NN_PIECE 256

/*
 * out (N, OC; row stride ldo) = inp (N, K; row stride ldi) op(B) + beta out + bias, then e's steps
 * (e's res, mul and base given for row 0; its zeros added to *zeros), op(B) packed by gemm_pack. The
 * rows go in pieces that the threads take as they finish, so that a thread the machine slows
 * leaves its share to the others; a static split made the others wait for it (8% of a 2-thread
 * step went in such waits). The bits do not depend on who takes which piece.
 */
/* What runs on a piece's rows [lo, hi) as soon as the product has written them (while they are in
 * cache) */
struct nn_post {
	void (*run)(const struct nn_post *, int lo, int hi);
	float *out;
	const float *in;
	int n;           /* row length */
	int max;         /* rows a piece at most */
	int unit;        /* a piece's rows a multiple of this */
	const void *arg; /* run's own */
};

static void *grow(void *p, size_t *cap, size_t need, size_t size);

/* The pieces' first rows, kept from call to call */
static struct {
	size_t cap;
	int *at;
} pieces;

static void
run_rows_post(const float *bp, float *out, int ldo, const float *inp, int ldi, const float *bias, float beta,
              int N, int K, int OC, const struct gemm_epi *e, size_t *zeros, const struct nn_post *post)
{
	int nt = omp_get_max_threads(), most = post ? post->max : NN_PIECE, unit = post ? post->unit : 1,
	    u = unit > 16 ? unit : 16, least = (32 + u - 1) / u * u, np = 0;
	size_t z = 0;

	/* Pieces of most rows while there are rows for two more each; then each a (2 nt)th of the
	 * rows left, down to 32 or so, each a multiple of 16 rows (and of unit, a power of 2). The
	 * thread that takes the last piece ends at most that piece after the others, where with
	 * pieces of 256 rows throughout a 2-thread step waited 0.5 ms in these regions. */
	pieces.at = grow(pieces.at, &pieces.cap, (size_t)N / (least < most ? least : most) + 2, sizeof(int));
	for (int lo = 0; lo < N; np++) {
		int sz = most;
		if (nt > 1) {
			int share = ((N - lo + 2 * nt - 1) / (2 * nt) + u - 1) / u * u;
			sz = share < least ? least : share < most ? share : most;
		}
		pieces.at[np] = lo;
		lo = N - lo < sz ? N : lo + sz;
	}
	pieces.at[np] = N;

#pragma omp parallel for schedule(dynamic) reduction(+ : z)
	for (int c = 0; c < np; c++) {
		int lo = pieces.at[c], hi = pieces.at[c + 1];
		struct gemm_epi ge;
		if (e) {
			ge = *e;
			ge.zeros = 0;
			ge.base = e->base + (size_t)lo * ldo;
			ge.res = e->res ? e->res + (size_t)lo * ldo : NULL;
			ge.mul = e->mul ? e->mul + (size_t)lo * ldo : NULL;
		}
		gemm_run(hi - lo, OC, K, inp + (size_t)lo * ldi, ldi, bp, beta, bias, out + (size_t)lo * ldo,
		         ldo, e ? &ge : NULL);
		if (e)
			z += ge.zeros;
		if (post)
			post->run(post, lo, hi);
	}
	if (zeros)
		*zeros += z;
}

static void
run_rows(const float *bp, float *out, int ldo, const float *inp, int ldi, const float *bias, float beta,
         int N, int K, int OC, const struct gemm_epi *e, size_t *zeros)
{
	run_rows_post(bp, out, ldo, inp, ldi, bias, beta, N, K, OC, e, zeros, NULL);
}

/*
 * out (N, OC; row stride ldo) = inp (N, C; row stride ldi) . w^T + bias, rows split over threads.
 */
static void
mm_forward(float *out, int ldo, const float *inp, int ldi, const float *w, const float *bias, int N, int C,
           int OC)
{
	const float *bp = gemm_pack(1, OC, C, w, C);

	if (bp) {
		run_rows(bp, out, ldo, inp, ldi, bias, 0.0f, N, C, OC, NULL, NULL);
		return;
	}
#pragma omp parallel
	{
		int lo, hi;
		split(N, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
		if (hi > lo) {
			gemm(0, 1, hi - lo, OC, C, 1.0f, inp + (size_t)lo * ldi, ldi, w, C, 0.0f, bias,
			     out + (size_t)lo * ldo, ldo);
		}
	}
}

CLONES static void
axpy(float *y, float a, const float *x, int n)
{
#pragma omp simd
	for (int i = 0; i < n; i++)
		y[i] += a * x[i];
}

/* Rows of a batch per thread from which weight gradients split the rows over the threads */
#define NN_WSPLIT 256

/* The weight gradients of threads 1, 2, ... over their rows (mm_backward), kept from call to call */
static struct {
	size_t cap;
	float *buf;
} wpart;

/*
 * mm_backward's gradients with dinp = dout . w + dbeta dinp (times der elementwise where der is not
 * NULL: its row stride lddi), in one pass over dout (gemm_tn_sum_run): each thread takes its rows
 * KC at a time, their input gradient and then their weight and bias gradients while dout's block is
 * in cache, where two passes read dout from memory twice (1% of a step, on 1 thread and on 2); and
 * the input gradient's writes find their lines in cache where dinp is inp (an FF activation's
 * buffer taking its gradient). The rows are split as mm_backward splits them for the weight
 * gradients, so the bits are its bits; but the input gradient's rows are no longer taken as the
 * threads finish. Returns -1, having done nothing, where that split does not apply or the own
 * kernel does not run.
 */
static int
mm_backward_one_pass_n(int n, float *dinp, int lddi, float dbeta, const float *der, float *const *dw,
                       float *const *dbias, const float *const *dout, int lddo, const float *inp, int ldi,
                       const float *const *w, int N, int C, int OC, const struct gemm_epi *after)
{
	int mt = omp_get_max_threads();
	size_t each = (size_t)(mt - 1) * (OC * C + OC); /* a layer's share of wpart */
	const float *bp[4];

	if (!gemm_own() || n < 1 || n > 4 || (mt > 1 && N < NN_WSPLIT * mt) ||
	    (der && (C % 64 != 0 || n > 1)) || N <= 0)
		return -1;
	for (int j = 0; j < n; j++)
		if (!(bp[j] = gemm_pack_slot(j, 0, C, OC, w[j], C)))
			return -1;
	if (mt > 1)
		wpart.buf = grow(wpart.buf, &wpart.cap, (size_t)n * each, sizeof *wpart.buf);
	int shared = gemm_team(mt, N, C) == 0;
#pragma omp parallel
	{
		int t = omp_get_thread_num(), nt = omp_get_num_threads(), lo, hi;
		float *d[4], *db[4];
		for (int j = 0; j < n; j++) {
			float *part = wpart.buf + (size_t)j * each;
			d[j] = t == 0 ? dw[j] : part + (size_t)(t - 1) * OC * C;
			db[j] = t == 0 ? dbias[j] : part + (size_t)(mt - 1) * OC * C + (size_t)(t - 1) * OC;
			if (t > 0 && dbias[j])
				memset(db[j], 0, sizeof *db[j] * (size_t)OC);
			if (!dbias[j])
				db[j] = NULL;
		}
		/* (after: its done on each block of the input gradient's rows as they are whole) */
		struct gemm_epi ge = {
		    .tau = -1.0f, .done = after ? after->done : NULL, .arg = after ? after->arg : NULL};
		if (shared && nt == mt) { /* the input gradient shared as the threads finish */
			ge.mul = der;
			gemm_tn_sum_run_team(n, OC, C, N, dout, lddo, inp, ldi, t == 0 ? 1.0f : 0.0f, d, C,
			                     db, bp, C, dbeta, dinp, lddi, der || after ? &ge : NULL);
		} else {
			split(N, t, nt, &lo, &hi);
			const float *A[4];
			for (int j = 0; j < n; j++)
				A[j] = dout[j] + (size_t)lo * lddo;
			ge.mul = der ? der + (size_t)lo * lddi : NULL;
			ge.row0 = (size_t)lo, ge.slot0 = t * gemm_blocks(N, nt);
			gemm_tn_sum_run_n(n, OC, C, hi - lo, A, lddo, inp + (size_t)lo * ldi, ldi,
			                  t == 0 ? 1.0f : 0.0f, d, C, db, bp, C, dbeta,
			                  dinp + (size_t)lo * lddi, lddi, der || after ? &ge : NULL);
		}
		if (nt > 1) {
#pragma omp barrier
			split(OC, t, nt, &lo, &hi);
			for (int j = 0; j < n; j++) {
				float *part = wpart.buf + (size_t)j * each;
				for (int s = 1; s < nt; s++) {
					axpy(dw[j] + (size_t)lo * C, 1.0f,
					     part + ((size_t)(s - 1) * OC + lo) * C, (hi - lo) * C);
					if (dbias[j])
						axpy(dbias[j] + lo, 1.0f,
						     part + (size_t)(mt - 1) * OC * C + (size_t)(s - 1) * OC +
						         lo,
						     hi - lo);
				}
			}
		}
	}
	return 0;
}

static int
mm_backward_one_pass(float *dinp, int lddi, float dbeta, const float *der, float *dw, float *dbias,
                     const float *dout, int lddo, const float *inp, int ldi, const float *w, int N, int C,
                     int OC)
{
	return mm_backward_one_pass_n(1, dinp, lddi, dbeta, der, &dw, &dbias, &dout, lddo, inp, ldi, &w, N, C,
	                              OC, NULL);
}

static void
mm_backward(float *dinp, int lddi, float *dw, float *dbias, const float *dout, int lddo, const float *inp,
            int ldi, const float *w, int N, int C, int OC)
{
	int mt = omp_get_max_threads(), bysum = mt > 1 && N >= NN_WSPLIT * mt;
	const float *bp;

	if (dinp &&
	    mm_backward_one_pass(dinp, lddi, 1.0f, NULL, dw, dbias, dout, lddo, inp, ldi, w, N, C, OC) == 0)
		return;
	bp = dinp ? gemm_pack(0, C, OC, w, C) : NULL;
	/* Across the batch's rows (bysum), each thread adds its rows' share of dw and dbias, thread 0
	 * into them and the others beside them, summed in thread order after: each reads and packs
	 * half (on 2 threads) of both operands, where split by dw's rows each packed all of inp, the
	 * larger. The bias gradient is summed in the same pass over dout (gemm_tn_sum). */
	if (bysum)
		wpart.buf = grow(wpart.buf, &wpart.cap, (size_t)(mt - 1) * (OC * C + OC), sizeof *wpart.buf);
	if (bp) /* the input gradient first, in pieces */
		run_rows(bp, dinp, lddi, dout, lddo, NULL, 1.0f, N, OC, C, NULL, NULL);
#pragma omp parallel
	{
		int t = omp_get_thread_num(), nt = omp_get_num_threads(), lo, hi;
		if (dinp && !bp) {
			split(N, t, nt, &lo, &hi);
			if (hi > lo)
				gemm(0, 0, hi - lo, C, OC, 1.0f, dout + (size_t)lo * lddo, lddo, w, C, 1.0f,
				     NULL, dinp + (size_t)lo * lddi, lddi);
		}
		if (bysum) {
			float *d = t == 0 ? dw : wpart.buf + (size_t)(t - 1) * OC * C,
			      *db = t == 0 ? dbias
			                   : wpart.buf + (size_t)(mt - 1) * OC * C + (size_t)(t - 1) * OC;
			if (t > 0 && dbias)
				memset(db, 0, sizeof *db * (size_t)OC);
			split(N, t, nt, &lo, &hi);
			gemm_tn_sum(OC, C, hi - lo, dout + (size_t)lo * lddo, lddo, inp + (size_t)lo * ldi,
			            ldi, t == 0 ? 1.0f : 0.0f, d, C, dbias ? db : NULL);
#pragma omp barrier
			split(OC, t, nt, &lo, &hi);
			for (int s = 1; s < nt; s++) {
				axpy(dw + (size_t)lo * C, 1.0f, wpart.buf + ((size_t)(s - 1) * OC + lo) * C,
				     (hi - lo) * C);
				if (dbias)
					axpy(dbias + lo, 1.0f,
					     wpart.buf + (size_t)(mt - 1) * OC * C + (size_t)(s - 1) * OC +
					         lo,
					     hi - lo);
			}
		} else {
			split(OC, t, nt, &lo, &hi);
			if (hi > lo)
				gemm_tn_sum(hi - lo, C, N, dout + lo, lddo, inp, ldi, 1.0f,
				            dw + (size_t)lo * C, C, dbias ? dbias + lo : NULL);
		}
	}
}

/* ---- products with a sparse gradient (DynaProp) ---- */

/*
 * A sparse gradient's nonzeros counted row by row (ptr[i + 1] - ptr[i] in row i), the rows that
 * hold one (rows), and those rows gathered (buf). The buffers are kept from call to call, since
 * every step asks for the same sizes; nothing here may be called from two threads at once
 * (tc-train's products come one at a time, each spread over the threads by OpenMP).
 */
static struct {
	size_t ncap, rcap, bufcap;
	int *ptr, *rows;
	float *buf;
} nzl;

static void *
grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	free(p);
	*cap = need + need / 4;
	return emalloc64(size * *cap);
}

/* The nonzeros of row g[0..n) counted, so the loop runs lanes-wide. */
CLONES static int
row_nnz(const float *g, int n)
{
	int k = 0;

#pragma omp simd reduction(+ : k)
	for (int o = 0; o < n; o++)
		k += g[o] != 0;
	return k;
}

/*
 * dinp, dw, dbias from dout's nonzeros: for each nonzero g = dout[i, o], dinp row i += g w row o
 * (overwritten: from 0), dw row o += g inp row i, dbias[o] += g, through lib/gemm's kernels for a
 * sparse operand: dinp's rows summed in registers from the rows of w that their nonzeros pick, and
 * each row of inp, in registers, added to the rows of dw that its row of dout picks. Without them,
 * the same sums in plain loops. Threads own rows of dinp and rows of dw, so every sum runs in the
 * same order for any thread count.
 */
static void
mm_backward_nz(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
               int N, int C, int OC, int overwrite)
{
#pragma omp parallel
	{
		int t = omp_get_thread_num(), nt = omp_get_num_threads(), lo, hi;
		split(N, t, nt, &lo, &hi);
		if (dinp && hi > lo &&
		    gemm_sparse(hi - lo, C, OC, dout + (size_t)lo * OC, OC, w, C, !overwrite,
		                dinp + (size_t)lo * C, C) != 0)
			for (int i = lo; i < hi; i++) {
				float *d = dinp + (size_t)i * C;
				const float *g = dout + (size_t)i * OC;
				if (overwrite)
					memset(d, 0, sizeof *d * (size_t)C);
				for (int o = 0; o < OC; o++)
					if (g[o] != 0)
						axpy(d, g[o], w + (size_t)o * C, C);
			}
		split(OC, t, nt, &lo, &hi);
		if (dw && hi > lo && gemm_sparse_t(lo, hi, C, N, dout, OC, inp, C, dw, C) != 0)
			for (int i = 0; i < N; i++)
				for (int o = lo; o < hi; o++)
					if (dout[(size_t)i * OC + o] != 0)
						axpy(dw + (size_t)o * C, dout[(size_t)i * OC + o],
						     inp + (size_t)i * C, C);
		if (dw && dbias && hi > lo) /* a zero adds nothing: the nonzeros' sums */
			gemm_add_rows(dbias + lo, dout + lo, OC, N, hi - lo);
	}
}

/* The same through the nr rows of dout that hold a nonzero (those with ptr[i + 1] > ptr[i]),
 * gathered for sgemm. */
static void
mm_backward_rows(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                 int N, int nr, int C, int OC)
{
	float *gd, *gi;
	int *rows = nzl.rows;

	for (int i = 0, r = 0; i < N; i++)
		if (nzl.ptr[i + 1] > nzl.ptr[i])
			rows[r++] = i;
	nzl.buf = grow(nzl.buf, &nzl.bufcap, (size_t)nr * (OC + C) + 1, sizeof *nzl.buf);
	gd = nzl.buf;
	gi = nzl.buf + (size_t)nr * OC;
#pragma omp parallel for schedule(static)
	for (int r = 0; r < nr; r++)
		memcpy(gd + (size_t)r * OC, dout + (size_t)rows[r] * OC, sizeof *gd * (size_t)OC);
	if (dw) {
#pragma omp parallel for schedule(static)
		for (int r = 0; r < nr; r++)
			memcpy(gi + (size_t)r * C, inp + (size_t)rows[r] * C, sizeof *gi * (size_t)C);
		mm_backward(NULL, 0, dw, dbias, gd, OC, gi, C, w, nr, C, OC);
	}
	if (dinp) {
		/* gi becomes the rows' input gradient, then goes back to its rows */
		matmul_backward_input(gi, gd, w, nr, C, OC, 0);
#pragma omp parallel for schedule(static)
		for (int r = 0; r < nr; r++)
			axpy(dinp + (size_t)rows[r] * C, 1.0f, gi + (size_t)r * C, C);
	}
}

/* sgemm's speed over the nonzeros' way, per multiply-add: above this many times the nonzeros'
 * work, the dense product is the faster. On the shapes of BERT-Tiny's backward with wordnet-lex's
 * batches (N about 800 tokens; 128 x 128, 128 x 512, 512 x 128) and nonzeros spread at random, the
 * nonzeros' way took 0.29-0.42 of the dense products' time at 3% of nonzeros and 0.74-0.83 at 12%.
 * Replaying the 700 calls of 50 DynaProp steps (their N, rows with a nonzero and nonzeros as
 * logged) with every way timed, 6 spent 229 ms on 1 thread and 151 ms on 2, 4 spent 244 and 157,
 * and the fastest way for each call 225 and 144: most of those gradients keep their nonzeros in a
 * third of the rows, where sgemm over the rows wins. */
#define NN_NZ_SLOWDOWN 6.0

int
matmul_backward_sparse(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC, int overwrite)
{
	size_t nnz;
	int nr = 0;
	double dense, byrows, bynz;

#ifdef NN_FLOOR
	/* bench/dynaprop.sh's floor (build/bench/floor/tc-train, never installed): the products are
	 * skipped and the gradients left wrong, to time DynaProp's step as if they cost nothing */
	if (dinp && overwrite)
		memset(dinp, 0, sizeof *dinp * (size_t)N * C);
	return NN_SPARSE_NZ;
#endif

	nzl.ptr = grow(nzl.ptr, &nzl.ncap, (size_t)N + 1, sizeof *nzl.ptr);
	nzl.ptr[0] = 0;
#pragma omp parallel for schedule(static)
	for (int i = 0; i < N; i++)
		nzl.ptr[i + 1] = row_nnz(dout + (size_t)i * OC, OC);
	for (int i = 0; i < N; i++) {
		nr += nzl.ptr[i + 1] > 0;
		nzl.ptr[i + 1] += nzl.ptr[i];
	}
	nnz = (size_t)nzl.ptr[N];
	/* the cost of each way in dense multiply-adds */
	dense = (double)N * OC;
	byrows = (double)nr * OC + 0.1 * N;
	bynz = NN_NZ_SLOWDOWN * (double)nnz + 0.02 * (double)N * OC;
	if (dense <= byrows && dense <= bynz) {
		if (dinp)
			matmul_backward_input(dinp, dout, w, N, C, OC, !overwrite);
		if (dw)
			mm_backward(NULL, 0, dw, dbias, dout, OC, inp, C, w, N, C, OC);
		return NN_SPARSE_DENSE;
	}
	if (byrows <= bynz) {
		if (dinp && overwrite)
			memset(dinp, 0, sizeof *dinp * (size_t)N * C);
		nzl.rows = grow(nzl.rows, &nzl.rcap, (size_t)N + 1, sizeof *nzl.rows);
		mm_backward_rows(dinp, dw, dbias, dout, inp, w, N, nr, C, OC);
		return NN_SPARSE_ROWS;
	}
	mm_backward_nz(dinp, dw, dbias, dout, inp, w, N, C, OC, overwrite);
	return NN_SPARSE_NZ;
}

void
matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC)
{
	mm_forward(out, OC, inp, C, w, bias, N, C, OC);
}

/* matmul_forward_epi but for the LayerNorm, where run_rows cannot take the product */
static void
mm_forward_epi(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
               struct nn_epi *e)
{
	size_t n = (size_t)N * OC, zeros = 0;
	int fused = gemm_own() && OC % 64 == 0 && N > 0;
	uint32_t k = key32(e->key), thr = keep_below(e->p);
	float scale = e->p > 0 ? 1.0f / (1.0f - e->p) : 0.0f;

	if (fused) {
#pragma omp parallel reduction(+ : zeros) reduction(&& : fused)
		{
			int lo, hi;
			split(N, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
			if (hi > lo) {
				struct gemm_epi ge = {.tau = e->tau,
				                      .keep = e->keep,
				                      .dkey = k,
				                      .dthr = thr,
				                      .dscale = scale,
				                      .res = e->res ? e->res + (size_t)lo * OC : NULL,
				                      .base = (size_t)lo * OC};
				fused = gemm_epilogue(1, hi - lo, OC, C, inp + (size_t)lo * C, C, w, C, bias,
				                      out + (size_t)lo * OC, OC, &ge) == 0;
				zeros += ge.zeros;
			}
		}
		/* where a thread could not (more threads than lib/gemm keeps buffers for), the
		 * separate passes below redo the whole: the product overwrites out */
		if (fused) {
			e->zeros += zeros;
			return;
		}
	}
	mm_forward(out, OC, inp, C, w, bias, N, C, OC);
	if (e->tau >= 0)
		e->zeros += nn_prune(out, e->keep, n, e->tau);
	if (e->p > 0)
		dropout_apply(out, n, e->p, e->key);
	if (e->res)
#pragma omp parallel for simd schedule(static)
		for (size_t i = 0; i < n; i++)
			out[i] += e->res[i];
}

void
matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                int N, int C, int OC)
{
	mm_backward(dinp, C, dw, dbias, dout, OC, inp, C, w, N, C, OC);
}

void
matmul_backward_n(int n, float *dinp, float *const *dw, float *const *dbias, const float *const *dout,
                  const float *inp, const float *const *w, int N, int C, int OC)
{
	if (mm_backward_one_pass_n(n, dinp, C, 1.0f, NULL, dw, dbias, dout, OC, inp, C, w, N, C, OC, NULL) ==
	    0)
		return;
	for (int j = 0; j < n; j++)
		mm_backward(dinp, C, dw[j], dbias[j], dout[j], OC, inp, C, w[j], N, C, OC);
}

void
matmul_backward_set(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                    const float *der, int N, int C, int OC)
{
	if (mm_backward_one_pass(dinp, C, 0.0f, der, dw, dbias, dout, OC, inp, C, w, N, C, OC) == 0)
		return;
	mm_backward(NULL, 0, dw, dbias, dout, OC, inp, C, w, N, C, OC);
	if (der)
		matmul_backward_input_mul(dinp, dout, w, der, N, C, OC);
	else
		matmul_backward_input(dinp, dout, w, N, C, OC, 0);
}

void
matmul_backward_input(float *dinp, const float *dout, const float *w, int N, int C, int OC, int accumulate)
{
	const float *bp = gemm_pack(0, C, OC, w, C);

	if (bp) {
		run_rows(bp, dinp, C, dout, OC, NULL, accumulate ? 1.0f : 0.0f, N, OC, C, NULL, NULL);
		return;
	}
#pragma omp parallel
	{
		int lo, hi;
		split(N, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
		if (hi > lo)
			gemm(0, 0, hi - lo, C, OC, 1.0f, dout + (size_t)lo * OC, OC, w, C,
			     accumulate ? 1.0f : 0.0f, NULL, dinp + (size_t)lo * C, C);
	}
}

void
matmul_backward_input_mul(float *dinp, const float *dout, const float *w, const float *der, int N, int C,
                          int OC)
{
	int fused = gemm_own() && C % 64 == 0 && N > 0;
	const float *bp = fused ? gemm_pack(0, C, OC, w, C) : NULL;

	if (bp) {
		struct gemm_epi ge = {.tau = -1.0f, .mul = der};
		run_rows(bp, dinp, C, dout, OC, NULL, 0.0f, N, OC, C, &ge, NULL);
		return;
	}
	if (fused) {
#pragma omp parallel reduction(&& : fused)
		{
			int lo, hi;
			split(N, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
			if (hi > lo) {
				struct gemm_epi ge = {.tau = -1.0f, .mul = der + (size_t)lo * C};
				fused = gemm_epilogue(0, hi - lo, C, OC, dout + (size_t)lo * OC, OC, w, C,
				                      NULL, dinp + (size_t)lo * C, C, &ge) == 0;
			}
		}
		if (fused) /* (else the separate passes redo the whole: the product overwrites) */
			return;
	}
	matmul_backward_input(dinp, dout, w, N, C, OC, 0);
	gelu_backward_der(dinp, der, (size_t)N * C);
}

void
matmul_forward_naive(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC)
{
	for (int i = 0; i < N; i++)
		for (int o = 0; o < OC; o++) {
			double s = bias ? bias[o] : 0;
			for (int c = 0; c < C; c++)
				s += (double)inp[(size_t)i * C + c] * w[(size_t)o * C + c];
			out[(size_t)i * OC + o] = (float)s;
		}
}

void
matmul_backward_naive(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                      const float *w, int N, int C, int OC)
{
	for (int i = 0; i < N; i++)
		for (int o = 0; o < OC; o++) {
			float g = dout[(size_t)i * OC + o];
			for (int c = 0; c < C; c++) {
				if (dinp)
					dinp[(size_t)i * C + c] += g * w[(size_t)o * C + c];
				dw[(size_t)o * C + c] += g * inp[(size_t)i * C + c];
			}
			if (dbias)
				dbias[o] += g;
		}
}

/* ---- pointwise ---- */

CLONES static void
ln_row(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int C)
{
	int c0 = C / 16 * 16;
	float m = 0, v = 0, rs;

	if (c0 > 0) {
		vec16 s = *(const vec16 *)x;
		for (int c = 16; c < c0; c += 16)
			s += *(const vec16 *)(x + c);
		m = lanes_sum(s);
	}
	for (int c = c0; c < C; c++)
		m += x[c];
	m /= (float)C;
	if (c0 > 0) {
		vec16 s = {0};
		for (int c = 0; c < c0; c += 16) {
			vec16 d = *(const vec16 *)(x + c) - m;
			s += d * d;
		}
		v = lanes_sum(s);
	}
	for (int c = c0; c < C; c++)
		v += (x[c] - m) * (x[c] - m);
	v /= (float)C;
	rs = 1.0f / sqrtf(v + 1e-12f);
#pragma omp simd
	for (int c = 0; c < C; c++)
		y[c] = (x[c] - m) * rs * w[c] + b[c];
	*mean = m;
	*rstd = rs;
}

void
layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                  int N, int C)
{
#pragma omp parallel for schedule(static)
	for (int i = 0; i < N; i++)
		ln_row(out + (size_t)i * C, mean + i, rstd + i, inp + (size_t)i * C, w, b, C);
}

/* matmul_forward_epi's LayerNorm on a piece's rows */
static void
ln_rows(const struct nn_post *g, int lo, int hi)
{
	const struct nn_epi *e = g->arg;

	for (int i = lo; i < hi; i++)
		ln_row(g->out + (size_t)i * g->n, e->ln_mean + i, e->ln_rstd + i, g->in + (size_t)i * g->n,
		       e->ln_w, e->ln_b, g->n);
}

void
matmul_forward_epi(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                   struct nn_epi *e)
{
	int fused = gemm_own() && OC % 64 == 0 && N > 0;
	const float *bp = fused ? gemm_pack(1, OC, C, w, C) : NULL;

	if (bp) {
		struct gemm_epi ge = {.tau = e->tau,
		                      .keep = e->keep,
		                      .dkey = key32(e->key),
		                      .dthr = keep_below(e->p),
		                      .dscale = e->p > 0 ? 1.0f / (1.0f - e->p) : 0.0f,
		                      .res = e->res};
		/* (the LayerNorm in the product's region, on rows still in cache: as a region of its
		 * own, a fork and a join more, and on 2 threads 40% of its time one thread waiting) */
		struct nn_post g = {ln_rows, e->ln_out, out, OC, NN_PIECE, 1, e};
		run_rows_post(bp, out, OC, inp, C, bias, 0.0f, N, C, OC, &ge, &e->zeros,
		              e->ln_out ? &g : NULL);
		return;
	}
	mm_forward_epi(out, inp, w, bias, N, C, OC, e);
	if (e->ln_out)
		layernorm_forward(e->ln_out, e->ln_mean, e->ln_rstd, out, e->ln_w, e->ln_b, N, OC);
}

/* dropout's site key, keep threshold and scale, for a pass that drops what it writes */
struct ln_drop {
	uint32_t k, thr;
	float scale;
};

/* Rows [lo, hi): dx += the input gradient (or dx =, with set; and with dd too, dx dropped out by
 * dr into dd); dwp, dbp += the parameter gradients of these rows. */
CLONES static void
ln_rows_back(float *dx, float *dwp, float *dbp, const float *dy, const float *x, const float *w,
             const float *mean, const float *rstd, int lo, int hi, int C, int set, float *dd,
             const struct ln_drop *dr)
{
	for (int i = lo; i < hi; i++) {
		const float *xi = x + (size_t)i * C, *gi = dy + (size_t)i * C;
		float *di = dx + (size_t)i * C, m = mean[i], rs = rstd[i], mg = 0, mgx = 0;
		int c0 = C / 16 * 16;
		if (c0 > 0) {
			vec16 sg = {0}, sgx = {0};
			for (int c = 0; c < c0; c += 16) {
				vec16 g = *(const vec16 *)(gi + c) * *(const vec16 *)(w + c),
				      xh = (*(const vec16 *)(xi + c) - m) * rs;
				sg += g;
				sgx += g * xh;
			}
			mg = lanes_sum(sg), mgx = lanes_sum(sgx);
		}
		for (int c = c0; c < C; c++) {
			float g = gi[c] * w[c], xh = (xi[c] - m) * rs;
			mg += g;
			mgx += g * xh;
		}
		mg /= (float)C;
		mgx /= (float)C;
		if (set) {
#pragma omp simd
			for (int c = 0; c < C; c++) {
				float xh = (xi[c] - m) * rs;
				di[c] = 0.0f + (gi[c] * w[c] - mg - xh * mgx) * rs;
				dwp[c] += gi[c] * xh;
				dbp[c] += gi[c];
			}
			if (dd) /* and di dropped out into dd's row, as dropout_copy would */
				drop_run(dd + (size_t)i * C, di, (size_t)C, dr->k, (uint32_t)((size_t)i * C),
				         dr->thr, dr->scale);
			continue;
		}
#pragma omp simd
		for (int c = 0; c < C; c++) {
			float xh = (xi[c] - m) * rs;
			di[c] += (gi[c] * w[c] - mg - xh * mgx) * rs;
			dwp[c] += gi[c] * xh;
			dbp[c] += gi[c];
		}
	}
}

/* ln_backward's parts of the parameter gradients, a thread's each, kept from call to call */
static struct {
	size_t cap;
	float *buf;
} lnpart;

static void
ln_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
            const float *mean, const float *rstd, int N, int C, int set, float *dd, const struct ln_drop *dr)
{
	int nt = omp_get_max_threads();
	size_t each = (size_t)(2 * C + 15) / 16 * 16; /* a thread's part: whole cache lines */
	float *part;

	lnpart.buf = grow(lnpart.buf, &lnpart.cap, (size_t)nt * each, sizeof *lnpart.buf);
	part = lnpart.buf;
	memset(part, 0, sizeof *part * (size_t)nt * each);
	/* each thread sums its rows' parameter gradients apart, in a part of its own cache lines (a
	 * line that two threads' parts shared went between their cores at every row: on 2 threads
	 * the region took 277 us of CPU a call, against 143 on 1; 149 since); the parts are added in
	 * thread order */
#pragma omp parallel
	{
		int t = omp_get_thread_num(), lo, hi;
		split(N, t, omp_get_num_threads(), &lo, &hi);
		ln_rows_back(dinp, part + (size_t)t * each, part + (size_t)t * each + C, dout, inp, w, mean,
		             rstd, lo, hi, C, set, dd, dr);
	}
	for (int t = 0; t < nt; t++)
		for (int c = 0; c < C; c++) {
			dw[c] += part[(size_t)t * each + c];
			db[c] += part[(size_t)t * each + C + c];
		}
}

void
layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                   const float *mean, const float *rstd, int N, int C)
{
	ln_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C, 0, NULL, NULL);
}

void
layernorm_backward_set(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       const float *mean, const float *rstd, int N, int C)
{
	ln_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C, 1, NULL, NULL);
}

void
layernorm_backward_set_drop(float *dinp, float *ddrop, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean, const float *rstd, int N,
                            int C, float p, uint64_t key)
{
	struct ln_drop dr = {key32(key), keep_below(p), 1.0f / (1.0f - p)};

	if (p <= 0) {
		ln_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C, 1, NULL, NULL);
		memcpy(ddrop, dinp, sizeof *ddrop * (size_t)N * C);
		return;
	}
	ln_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C, 1, ddrop, &dr);
}

/* The LayerNorm backward of matmul_backward_ln, on the blocks of rows of the product's input
 * gradient (gemm_epi's done) */
struct ln_after {
	const struct nn_ln_back *ln;
	float *dy;   /* the product's input gradient: the LayerNorm output's */
	float *part; /* each block's parameter gradients: dw's, then db's */
	size_t each;
	int C;
	struct ln_drop in, out;
};

static void
ln_done(const struct gemm_epi *e, size_t r, int kc, int slot)
{
	const struct ln_after *g = e->arg;
	const struct nn_ln_back *ln = g->ln;
	int lo = (int)(e->row0 + r), C = g->C;
	size_t o = (size_t)lo * C, m = (size_t)kc * C;
	float *pw = g->part + (size_t)slot * g->each;

	if (ln->p_in > 0)
		drop_run(g->dy + o, g->dy + o, m, g->in.k, (uint32_t)o, g->in.thr, g->in.scale);
	ln_rows_back(ln->dinp, pw, pw + C, g->dy, ln->inp, ln->w, ln->mean, ln->rstd, lo, lo + kc, C, 1,
	             ln->p_out > 0 ? ln->ddrop : NULL, &g->out);
	if (ln->p_out <= 0 && ln->ddrop)
		memcpy(ln->ddrop + o, ln->dinp + o, sizeof *ln->ddrop * m);
}

int
matmul_backward_n_ln(int n, float *dinp, float *const *dw, float *const *dbias, const float *const *dout,
                     const float *inp, const float *const *w, int N, int C, int OC,
                     const struct nn_ln_back *ln)
{
	/* block numbers below nt gemm_blocks(N, nt) for any team of nt <= mt threads */
	int mt = omp_get_max_threads(), nb = gemm_blocks(N, 1) + 2 * mt + 1;
	struct ln_after g = {
	    .ln = ln,
	    .dy = dinp,
	    .each = (size_t)(2 * C + 15) / 16 * 16, /* whole cache lines */
	    .C = C,
	    .in = {key32(ln->key_in), keep_below(ln->p_in), ln->p_in > 0 ? 1.0f / (1.0f - ln->p_in) : 1.0f},
	    .out = {key32(ln->key_out), keep_below(ln->p_out),
	            ln->p_out > 0 ? 1.0f / (1.0f - ln->p_out) : 1.0f}};
	struct gemm_epi after = {.tau = -1.0f, .done = ln_done, .arg = &g};

	if (!gemm_own() || N <= 0)
		return -1;
	lnpart.buf = grow(lnpart.buf, &lnpart.cap, (size_t)nb * g.each, sizeof *lnpart.buf);
	g.part = lnpart.buf;
	memset(g.part, 0, sizeof *g.part * (size_t)nb * g.each);
	if (mm_backward_one_pass_n(n, dinp, C, 1.0f, NULL, dw, dbias, dout, OC, inp, C, w, N, C, OC,
	                           &after) != 0)
		return -1;
	for (int b = 0; b < nb; b++) /* (the blocks no thread had are 0) */
		for (int c = 0; c < C; c++) {
			ln->dw[c] += g.part[(size_t)b * g.each + c];
			ln->db[c] += g.part[(size_t)b * g.each + C + c];
		}
	return 0;
}

int
matmul_backward_ln(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                   int N, int C, int OC, const struct nn_ln_back *ln)
{
	return matmul_backward_n_ln(1, dinp, &dw, &dbias, &dout, inp, &w, N, C, OC, ln);
}

/*
 * GELU's exp and erf, inline so that a loop of GELU is arithmetic alone: libmvec's erff and expf
 * took 80% of the pass (2.5 ms of a 60 ms step, 4096 x 512 elements), this 1.5 ms. The Gaussian's
 * exp(-x^2 / 2) is both GELU's derivative's and erfc's factor, so it is computed once.
 * Least-squares polynomials on Chebyshev nodes, fitted in double: exp on [-ln 2 / 2, ln 2 / 2]
 * (relative error 2e-9), erf(a) / a in a^2 on [0, 1] (1.4e-9), erfc(a) exp(a^2) in a - 2.5 on
 * [1, 4] (erfc's absolute error 3e-9). In float, on [-12, 12], 1 + erf(x / sqrt 2) is within 2.2e-7
 * of the exact value and GELU' within 1.4e-7 (2.4e-7 and 1.6e-7 without FMAs), where 1 + erff
 * and libmvec's expf gave 2.9e-7 and 1.8e-7 (tests/unit/nn_test.c). Contracted into FMAs where the
 * target has them, and with no trapping maths (nothing here reads the floating-point flags), without
 * which GCC would not turn the selects into blends for AVX2 and left the loops unvectorized there.
 */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast", "no-trapping-math")

/* exp(-s) for s >= 0 (s from 87 on gives exp(-87), the smallest normal's order, not 0) */
static inline float
gauss_exp(float s)
{
	static const float c[] = {1.000000001e+00f, 1.000000036e+00f, 4.999999149e-01f, 1.666642083e-01f,
	                          4.166835803e-02f, 8.374771520e-03f, 1.382942060e-03f};
	/* k = round(-s / ln 2) from the bits of t (1.5 2^23 + k), r = -s - k ln 2 in two parts (k
	 * times the first exact), then exp(r) 2^k with 2^k made from its exponent bits */
	float sc = s < 87.0f ? s : 87.0f, t = sc * -1.44269504f + 12582912.0f, k = t - 12582912.0f;
	float r = (-sc - k * 0.693359375f) + k * 2.12194440e-4f, p = c[6];
	int32_t ki;
	float two_k;
	p = p * r + c[5];
	p = p * r + c[4];
	p = p * r + c[3];
	p = p * r + c[2];
	p = p * r + c[1];
	p = p * r + c[0];
	memcpy(&ki, &t, sizeof ki);
	ki = (ki - 0x4b400000 + 127) * (1 << 23);
	memcpy(&two_k, &ki, sizeof two_k);
	return p * two_k;
}

/* 1 + erf(x / sqrt 2), given e = exp(-x^2 / 2) */
static inline float
cdf2(float x, float e)
{
	static const float pa[] = {1.128379167e+00f, -3.761262884e-01f, 1.128361243e-01f, -2.685480853e-02f,
	                           5.190053574e-03f, -8.024354098e-04f, 7.898210116e-05f};
	static const float pb[] = {2.108075476e-01f,  -7.434078828e-02f, 2.492334488e-02f,
	                           -8.119703830e-03f, 2.291431656e-03f,  -7.082644311e-04f,
	                           4.935220312e-04f,  2.019994948e-04f,  1.027894988e-04f};
	float a = fabsf(x) * (float)SQRT1_2, s = a * a;
	int small = a < 1.0f;
	/* erf(a) = a P(a^2) below 1; erfc(a) = exp(-a^2) Q(a - 2.5) from 1 (a past 4 as 4: erfc
	 * below 2e-8 there); both computed, then one taken, so that the loop has no branch */
	float z = small ? s : 1.0f, u = (a < 4.0f ? a : 4.0f) - 2.5f, p = pa[6], q = pb[8];
	p = p * z + pa[5];
	p = p * z + pa[4];
	p = p * z + pa[3];
	p = p * z + pa[2];
	p = p * z + pa[1];
	p = p * z + pa[0];
	q = q * u + pb[7];
	q = q * u + pb[6];
	q = q * u + pb[5];
	q = q * u + pb[4];
	q = q * u + pb[3];
	q = q * u + pb[2];
	q = q * u + pb[1];
	q = q * u + pb[0];
	float erf_a = a * p, erfc_a = e * q, hi_small = 1.0f + erf_a, hi = 2.0f - erfc_a,
	      lo_small = 1.0f - erf_a;
	return x >= 0.0f ? (small ? hi_small : hi) : (small ? lo_small : erfc_a);
}

CLONES static void
gelu_run_c(float *out, const float *inp, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++) {
		float x = inp[i];
		out[i] = 0.5f * x * cdf2(x, gauss_exp(0.5f * x * x));
	}
}

CLONES static void
gelu_back_run_c(float *dinp, const float *inp, const float *dout, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++) {
		float x = inp[i], e = gauss_exp(0.5f * x * x);
		float d = 0.5f * cdf2(x, e) + x * e * (float)INV_SQRT_2PI;
		dinp[i] += d * dout[i];
	}
}

/* out = GELU(inp) and der = GELU'(inp), the factor backward multiplies by (der may be inp); with
 * masked, der = 0 where inp is 0 (pruned) */
CLONES static void
gelu_der_run_c(float *out, float *der, const float *inp, size_t n, int masked)
{
	if (!masked) { /* (the mask's compare, convert and multiply were a fifth of the loop's time) */
#pragma omp simd
		for (size_t i = 0; i < n; i++) {
			float x = inp[i], e = gauss_exp(0.5f * x * x), c = cdf2(x, e);
			out[i] = 0.5f * x * c;
			der[i] = 0.5f * c + x * e * (float)INV_SQRT_2PI;
		}
		return;
	}
#pragma omp simd
	for (size_t i = 0; i < n; i++) {
		float x = inp[i], e = gauss_exp(0.5f * x * x), c = cdf2(x, e);
		/* GELU'(0) is 0.5, so a pruned element's factor is +0 */
		float keep = (float)((x != 0.0f) | !masked);
		out[i] = 0.5f * x * c;
		der[i] = (0.5f * c + x * e * (float)INV_SQRT_2PI) * keep;
	}
}

#pragma GCC pop_options

/*
 * GELU on AVX-512 from tables: for a = |x| (taken as 6 past 6), q(a) = Phi(-a) and r(a) = a phi(a)
 * by a polynomial of degree 5 on each of 16 intervals of 3/8, the interval's coefficients picked
 * for each lane by a permute (tests/reference/gelu_table.py fitted them; within 1.4e-8 and 3.4e-8).
 * Then Phi(x) = 1 - q or q and GELU'(x) = Phi(x) + x phi(x) = 1 - q + r or q - r, as x >= 0 or
 * not. 44 instructions for 16 elements (12 of them permutes) where the erf and exp above took 75:
 * gelu_forward_der on 32K elements in L2, 1 thread, fastest of 400, 0.65 ns an element against
 * 0.85 on this Intel host, and within 1.8e-7 of the exact 1 + erf and 1.2e-7 of the derivative
 * (2.2e-7 and 1.4e-7 above). Where AVX-512 is missing, the functions above.
 */
/* q: largest error 1.4e-08 (coefficients in float, evaluated in double) */
static const float gelu_tab_q[6][16] = {
    {4.256343246e-01f, 2.868877053e-01f, 1.742507219e-01f, 9.467574209e-02f, 4.575362429e-02f,
     1.958007738e-02f, 7.394606248e-03f, 2.457901137e-03f, 7.175425417e-04f, 1.836701849e-04f,
     4.116759374e-05f, 8.070996046e-06f, 1.382830305e-06f, 2.069014045e-07f, 2.701761659e-08f,
     3.077503141e-09f},
    {-3.919909000e-01f, -3.405675888e-01f, -2.570739090e-01f, -1.685931832e-01f, -9.606150538e-02f,
     -4.755388945e-02f, -2.045267262e-02f, -7.642604876e-03f, -2.481190721e-03f, -6.998521276e-04f,
     -1.715062390e-04f, -3.651583029e-05f, -6.754763945e-06f, -1.085593226e-06f, -1.515836487e-07f,
     -1.838934161e-08f},
    {3.674811497e-02f, 9.578244388e-02f, 1.205017790e-01f, 1.106391177e-01f, 8.105272800e-02f,
     4.904084280e-02f, 2.492713556e-02f, 1.074744854e-02f, 3.954272252e-03f, 1.246493310e-03f,
     3.375871165e-04f, 7.871035632e-05f, 1.582283039e-05f, 2.745652182e-06f, 4.116319587e-07f,
     5.335652986e-08f},
    {6.303387135e-02f, 3.880148381e-02f, 5.189087708e-03f, -2.030498721e-02f, -2.958113700e-02f,
     -2.578949928e-02f, -1.684445515e-02f, -8.802101947e-03f, -3.788047004e-03f, -1.363681746e-03f,
     -4.145552521e-04f, -1.070824073e-04f, -2.360446888e-05f, -4.454219379e-06f, -7.212275932e-07f,
     -1.003886538e-07f},
    {-9.001159109e-03f, -2.125386894e-02f, -2.117701061e-02f, -1.176480297e-02f, -1.092299819e-03f,
     5.056657828e-03f, 6.076650694e-03f, 4.395105876e-03f, 2.369073685e-03f, 1.015746500e-03f,
     3.568011743e-04f, 1.043686425e-04f, 2.567973388e-05f, 5.350738775e-06f, 9.486573731e-07f,
     1.436163330e-07f},
    {-9.050739929e-03f, -3.401132766e-03f, 3.172907513e-03f, 6.089932751e-03f, 4.767354112e-03f,
     1.764989458e-03f, -4.352146352e-04f, -1.143794856e-03f, -9.342232370e-04f, -5.143375602e-04f,
     -2.165590558e-04f, -7.312816888e-05f, -2.028364725e-05f, -4.686488865e-06f, -9.101830756e-07f,
     -1.495257891e-07f},
};
/* r: largest error 3.4e-08 (coefficients in float, evaluated in double) */
static const float gelu_tab_r[6][16] = {
    {7.349827886e-02f, 1.915692389e-01f, 2.410067767e-01f, 2.212785631e-01f, 1.621038020e-01f,
     9.807990491e-02f, 4.985339195e-02f, 2.149482444e-02f, 7.908793166e-03f, 2.493222244e-03f,
     6.753055495e-04f, 1.574745111e-04f, 3.166298484e-05f, 5.495832283e-06f, 8.242415674e-07f,
     1.068893951e-07f},
    {3.782099485e-01f, 2.328098863e-01f, 3.113007173e-02f, -1.218348965e-01f, -1.774886400e-01f,
     -1.547359228e-01f, -1.010649800e-01f, -5.281160027e-02f, -2.272809297e-02f, -8.182252757e-03f,
     -2.487508114e-03f, -6.425919128e-04f, -1.416649320e-04f, -2.673685776e-05f, -4.330172487e-06f,
     -6.028920438e-07f},
    {-1.089483500e-01f, -2.570334971e-01f, -2.555924356e-01f, -1.413283199e-01f, -1.235502306e-02f,
     6.148784235e-02f, 7.332012802e-02f, 5.277340859e-02f, 2.831530571e-02f, 1.208168827e-02f,
     4.221848212e-03f, 1.227960223e-03f, 3.002820595e-04f, 6.215159374e-05f, 1.093990159e-05f,
     1.643354040e-06f},
    {-1.822877079e-01f, -6.820917130e-02f, 6.430307776e-02f, 1.227422133e-01f, 9.569054097e-02f,
     3.509548679e-02f, -9.037904441e-03f, -2.306749299e-02f, -1.872032136e-02f, -1.025596075e-02f,
     -4.297683947e-03f, -1.444084221e-03f, -3.984453797e-04f, -9.154278086e-05f, -1.767187132e-05f,
     -2.884431524e-06f},
    {4.432161897e-02f, 9.424399585e-02f, 6.962964684e-02f, 7.131139282e-03f, -3.570055217e-02f,
     -3.831437975e-02f, -1.897645369e-02f, -1.517501427e-03f, 5.388205871e-03f, 5.086263176e-03f,
     2.832947765e-03f, 1.159265405e-03f, 3.730623575e-04f, 9.743469127e-05f, 2.102148574e-05f,
     3.788574759e-06f},
    {4.346076399e-02f, 6.365342997e-03f, -2.885093167e-02f, -3.221410885e-02f, -1.172253396e-02f,
     6.978284568e-03f, 1.139009278e-02f, 6.539748516e-03f, 1.222899416e-03f, -1.051633153e-03f,
     -1.143522211e-03f, -6.307004369e-04f, -2.466349106e-04f, -7.461627683e-05f, -1.814045390e-05f,
     -3.618092705e-06f},
};

/* Phi(x) and GELU'(x) for 16 lanes */
__attribute__((target("avx512f"), always_inline)) static inline void
gelu16(__m512 x, __m512 *phi, __m512 *der)
{
	__m512 a = _mm512_min_ps(_mm512_abs_ps(x), _mm512_set1_ps(6.0f));
	__m512i k = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_mul_ps(a, _mm512_set1_ps(16.0f / 6.0f))),
	                             _mm512_set1_epi32(15));
	__m512 t = _mm512_sub_ps(
	    a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(k), _mm512_set1_ps(0.375f), _mm512_set1_ps(0.1875f)));
	/* Estrin's scheme, (c0 + c1 t) + t^2 ((c2 + c3 t) + t^2 (c4 + c5 t)): three multiply-adds deep
	 * where Horner's five kept the loop waiting on their latency */
	__m512 t2 = _mm512_mul_ps(t, t), c[2][6];
#pragma GCC unroll 6
	for (int d = 0; d < 6; d++) {
		c[0][d] = _mm512_permutexvar_ps(k, _mm512_loadu_ps(gelu_tab_q[d]));
		c[1][d] = _mm512_permutexvar_ps(k, _mm512_loadu_ps(gelu_tab_r[d]));
	}
	__m512 v[2];
#pragma GCC unroll 2
	for (int f = 0; f < 2; f++) {
		__m512 lo = _mm512_fmadd_ps(c[f][1], t, c[f][0]), mid = _mm512_fmadd_ps(c[f][3], t, c[f][2]),
		       hi = _mm512_fmadd_ps(c[f][5], t, c[f][4]);
		v[f] = _mm512_fmadd_ps(_mm512_fmadd_ps(hi, t2, mid), t2, lo);
	}
	__m512 q = v[0], r = v[1];
	__mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
	__m512 up = _mm512_sub_ps(_mm512_set1_ps(1.0f), q);
	*phi = _mm512_mask_blend_ps(neg, up, q);
	*der = _mm512_mask_blend_ps(neg, _mm512_add_ps(up, r), _mm512_sub_ps(q, r));
}

/* The lanes of the last vector of n elements from i */
static inline __mmask16
tail16(size_t n, size_t i)
{
	return n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
}

__attribute__((target("avx512f"))) static void
gelu_run_tab(float *out, const float *inp, size_t n)
{
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 m = tail16(n, i);
		__m512 x = _mm512_maskz_loadu_ps(m, inp + i), phi, der;
		gelu16(x, &phi, &der);
		_mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(x, phi));
	}
}

__attribute__((target("avx512f"))) static void
gelu_back_run_tab(float *dinp, const float *inp, const float *dout, size_t n)
{
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 m = tail16(n, i);
		__m512 x = _mm512_maskz_loadu_ps(m, inp + i), phi, der;
		gelu16(x, &phi, &der);
		_mm512_mask_storeu_ps(dinp + i, m,
		                      _mm512_fmadd_ps(der, _mm512_maskz_loadu_ps(m, dout + i),
		                                      _mm512_maskz_loadu_ps(m, dinp + i)));
	}
}

/* GELU and its derivative on 16 elements at i, lanes m (masked: der 0 where x is) */
__attribute__((target("avx512f"), always_inline)) static inline void
gelu_der16(float *out, float *der, const float *inp, size_t i, __mmask16 m, int masked)
{
	__m512 x = _mm512_maskz_loadu_ps(m, inp + i), phi, d;
	gelu16(x, &phi, &d);
	if (masked) /* GELU'(0) is 0.5, so a pruned element's factor is +0 */
		d = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ), d);
	_mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(x, phi));
	_mm512_mask_storeu_ps(der + i, m, d);
}

__attribute__((target("avx512f"))) static void
gelu_der_run_tab(float *out, float *der, const float *inp, size_t n, int masked)
{
	size_t i = 0;

	if (masked) {
		for (; i + 16 <= n; i += 16)
			gelu_der16(out, der, inp, i, 0xffff, 1);
	} else {
		for (; i + 16 <= n; i += 16)
			gelu_der16(out, der, inp, i, 0xffff, 0);
	}
	if (i < n)
		gelu_der16(out, der, inp, i, tail16(n, i), masked);
}

/* 1 where GELU takes the tables (AVX-512), 0 where the functions above; chosen on first use */
static int gelu_mode = -1;

static int
gelu_tab(void)
{
	int t = __atomic_load_n(&gelu_mode, __ATOMIC_RELAXED);
	if (t < 0) {
		__builtin_cpu_init();
		t = __builtin_cpu_supports("avx512f");
		__atomic_store_n(&gelu_mode, t, __ATOMIC_RELAXED);
	}
	return t;
}

int
nn_gelu_tables(int on)
{
	__builtin_cpu_init();
	int t = on && __builtin_cpu_supports("avx512f");
	__atomic_store_n(&gelu_mode, t, __ATOMIC_RELAXED);
	return t;
}

static void
gelu_run(float *out, const float *inp, size_t n)
{
	if (gelu_tab())
		gelu_run_tab(out, inp, n);
	else
		gelu_run_c(out, inp, n);
}

static void
gelu_back_run(float *dinp, const float *inp, const float *dout, size_t n)
{
	if (gelu_tab())
		gelu_back_run_tab(dinp, inp, dout, n);
	else
		gelu_back_run_c(dinp, inp, dout, n);
}

static void
gelu_der_run(float *out, float *der, const float *inp, size_t n, int masked)
{
	if (gelu_tab())
		gelu_der_run_tab(out, der, inp, n, masked);
	else
		gelu_der_run_c(out, der, inp, n, masked);
}

CLONES static void
mul_run(float *d, const float *der, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		d[i] *= der[i];
}

/* d *= der, then d = 0 where |d| <= tau; returns the zeros (n <= 2^31) */
CLONES static int
mul_prune_run(float *d, const float *der, size_t n, float tau)
{
	int z = 0;

#pragma omp simd reduction(+ : z)
	for (size_t i = 0; i < n; i++) {
		float v = d[i] * der[i];
		int kept = fabsf(v) > tau;
		d[i] = kept ? v : 0.0f;
		z += 1 - kept;
	}
	return z;
}

/* GELU and its derivative on a piece's rows of matmul_forward_gelu, in the blocks of 4096 elements
 * gelu_forward_der takes: the same elements then take the vector or the scalar erf and exp */
static void
gelu_rows(const struct nn_post *g, int lo, int hi)
{
	size_t end = (size_t)hi * g->n;

	for (size_t i0 = (size_t)lo * g->n; i0 < end; i0 += 4096)
		gelu_der_run(g->out + i0, (float *)g->in + i0, g->in + i0, end - i0 < 4096 ? end - i0 : 4096,
		             0);
}

void
matmul_forward_gelu(float *out, float *pre, const float *inp, const float *w, const float *bias, int N, int C,
                    int OC)
{
	const float *bp = gemm_pack(1, OC, C, w, C);
	/* 128 rows a piece or so (their pre, 256 KB at OC 512, and out stay in L2), each piece a whole
	 * number of gelu_forward_der's blocks */
	int unit = 4096, a = OC;
	for (int b = 4096; b != 0;) { /* unit = 4096 / gcd(OC, 4096) */
		int r = a % b;
		a = b, b = r;
	}
	unit /= a;
	struct nn_post g = {gelu_rows, out, pre, OC, unit > 128 ? unit : 128 / unit * unit, unit, NULL};

	if (bp) {
		run_rows_post(bp, pre, OC, inp, C, bias, 0.0f, N, C, OC, NULL, NULL, &g);
		return;
	}
	matmul_forward(pre, inp, w, bias, N, C, OC);
	gelu_forward_der(out, pre, pre, (size_t)N * OC);
}

void
gelu_forward_der(float *out, float *der, const float *inp, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		gelu_der_run(out + i0, der + i0, inp + i0, n - i0 < 4096 ? n - i0 : 4096, 0);
}

void
gelu_forward_der_pruned(float *out, float *der, const float *inp, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		gelu_der_run(out + i0, der + i0, inp + i0, n - i0 < 4096 ? n - i0 : 4096, 1);
}

void
gelu_backward_der(float *d, const float *der, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		mul_run(d + i0, der + i0, n - i0 < 4096 ? n - i0 : 4096);
}

size_t
nn_prune_gelu(float *out, float *der, float *pre, size_t n, float tau)
{
	size_t zeros = 0;

#pragma omp parallel for schedule(static) reduction(+ : zeros)
	for (size_t i0 = 0; i0 < n; i0 += 4096) {
		size_t m = n - i0 < 4096 ? n - i0 : 4096;
		zeros += prune_block(pre + i0, NULL, m, tau); /* two loops on a block in cache */
		gelu_der_run(out + i0, der + i0, pre + i0, m, 1);
	}
	return zeros;
}

size_t
nn_gelu_backward_prune(float *d, const float *der, size_t n, float tau)
{
	size_t zeros = 0;

#pragma omp parallel for schedule(static) reduction(+ : zeros)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		zeros += (size_t)mul_prune_run(d + i0, der + i0, n - i0 < 4096 ? n - i0 : 4096, tau);
	return zeros;
}

void
gelu_forward(float *out, const float *inp, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		gelu_run(out + i0, inp + i0, n - i0 < 4096 ? n - i0 : 4096);
}

void
gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		gelu_back_run(dinp + i0, inp + i0, dout + i0, n - i0 < 4096 ? n - i0 : 4096);
}

void
tanh_forward(float *out, const float *inp, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = tanhf(inp[i]);
}

void
tanh_backward(float *dinp, const float *out, const float *dout, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dinp[i] += (1.0f - out[i] * out[i]) * dout[i];
}

/* ---- embeddings ---- */

/* o = e + p + t over n elements */
CLONES static void
add3(float *restrict o, const float *e, const float *p, const float *t, int n)
{
#pragma omp simd
	for (int c = 0; c < n; c++)
		o[c] = e[c] + p[c] + t[c];
}

void
embed_forward(float *out, const int32_t *ids, const float *wte, const float *wpe, const float *wtt, int B,
              int T, int C)
{
#pragma omp parallel for schedule(static)
	for (int bt = 0; bt < B * T; bt++)
		add3(out + (size_t)bt * C, wte + (size_t)ids[bt] * C, wpe + (size_t)(bt % T) * C, wtt, C);
}

void
embed_ln_forward(float *res, float *out, float *mean, float *rstd, const int32_t *ids, const float *wte,
                 const float *wpe, const float *wtt, const float *w, const float *b, int B, int T, int C,
                 float p, uint64_t key)
{
	uint32_t k = key32(key), thr = keep_below(p);
	float scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;

	/* one region and one pass where three read and wrote every row again (on 2 threads 0.6 ms of
	 * a busy host's step) */
#pragma omp parallel for schedule(static)
	for (int bt = 0; bt < B * T; bt++) {
		size_t o = (size_t)bt * C;
		add3(res + o, wte + (size_t)ids[bt] * C, wpe + (size_t)(bt % T) * C, wtt, C);
		ln_row(out + o, mean + bt, rstd + bt, res + o, w, b, C);
		if (p > 0)
			drop_run(out + o, out + o, (size_t)C, k, (uint32_t)o, thr, scale);
	}
}

/* embed_backward's share of thread t of nt: the token rows whose id is t modulo nt, the position
 * rows [plo, phi) and the type row's columns [clo, chi), each summed in token order */
CLONES static void
embed_back_part(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids, int pad, int N,
                int T, int C, int t, int nt, int plo, int phi, int clo, int chi)
{
	for (int bt = 0; bt < N; bt++) {
		const float *g = dout + (size_t)bt * C;
		int id = ids[bt], pos = bt % T;
		if (id != pad && id % nt == t) {
			float *e = dwte + (size_t)id * C;
#pragma omp simd
			for (int c = 0; c < C; c++)
				e[c] += g[c];
		}
		if (pos >= plo && pos < phi) {
			float *pr = dwpe + (size_t)pos * C;
#pragma omp simd
			for (int c = 0; c < C; c++)
				pr[c] += g[c];
		}
#pragma omp simd
		for (int c = clo; c < chi; c++)
			dwtt[c] += g[c];
	}
}

void
embed_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids, int pad, int B,
               int T, int C)
{
	/* a scatter in token order, since two tokens may share a row and the order fixes the sums:
	 * each row is summed by one thread, in that order. The threads split the rows (token rows by
	 * id, position rows by position) where they split the columns, since the time went to each
	 * token's row and not to its columns: on 2 threads it took longer than on 1. */
#pragma omp parallel
	{
		int t = omp_get_thread_num(), nt = omp_get_num_threads(), plo, phi, clo, chi;
		split(T, t, nt, &plo, &phi);
		split(C, t, nt, &clo, &chi);
		embed_back_part(dwte, dwpe, dwtt, dout, ids, pad, B * T, T, C, t, nt, plo, phi, clo, chi);
	}
}

/* ---- attention ---- */

#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast", "no-trapping-math")

/* The largest of x[0..n) and their sum, n a multiple of 16, 16 lanes wide and then the lanes in a
 * tree (no NaN in x): omp simd's reductions added the lanes one after another, 40% of softmax_rows's
 * time. (row_sum is lanes_sum over a row: GCC does not inline lanes_sum into this region, whose
 * options differ, and a vector passed to a call outside it would change the ABI.) */
static inline float
row_max(const float *x, int n)
{
	vec16 m = *(const vec16 *)x;

	for (int i = 16; i < n; i += 16) {
		vec16 v = *(const vec16 *)(x + i);
		vec16i gt = v > m;
		m = (vec16)((gt & (vec16i)v) | (~gt & (vec16i)m));
	}
	for (int w = 8; w > 0; w /= 2) /* a tree, not a chain of 15 */
		for (int l = 0; l < w; l++)
			m[l] = m[l + w] > m[l] ? m[l + w] : m[l];
	return m[0];
}

static inline float
row_sum(const float *x, int n)
{
	vec16 v = *(const vec16 *)x;

	for (int i = 16; i < n; i += 16)
		v += *(const vec16 *)(x + i);
	return (((v[0] + v[8]) + (v[4] + v[12])) + ((v[2] + v[10]) + (v[6] + v[14]))) +
	       (((v[1] + v[9]) + (v[5] + v[13])) + ((v[3] + v[11]) + (v[7] + v[15])));
}

/* Softmax of each of the R rows of s (R, T) in place, with the key mask added first. Its exp is
 * gauss_exp, inline (within 1.5 ulp of exp on [0, 87]; 0 past 87, where libm's expf underflows to
 * a denormal or 0, which the training threads flush, so a masked key's probability is 0), where
 * libmvec's expf was a call for each 16 lanes. */
CLONES static void
softmax_rows(float *s, const float *mask, int R, int T)
{
	int r0 = T / 16 * 16;

	for (int i = 0; i < R; i++) {
		float *row = s + (size_t)i * T, mx = -INFINITY, sum = 0, inv;
#pragma omp simd
		for (int r = 0; r < T; r++)
			row[r] += mask[r] == 0 ? NN_MASKED_SCORE : 0.0f;
		if (r0 > 0)
			mx = row_max(row, r0);
		for (int r = r0; r < T; r++)
			mx = row[r] > mx ? row[r] : mx;
#pragma omp simd
		for (int r = 0; r < T; r++) {
			float d = mx - row[r], e = gauss_exp(d);
			row[r] = d <= 87.0f ? e : 0.0f;
		}
		if (r0 > 0)
			sum = row_sum(row, r0);
		for (int r = r0; r < T; r++)
			sum += row[r];
		inv = 1.0f / sum;
#pragma omp simd
		for (int r = 0; r < T; r++)
			row[r] *= inv;
	}
}
#pragma GCC pop_options

/* dS[i] = 0 where the raw score was pruned (|S[i]| <= ts) or |dS[i]| <= tg; the zeros afterwards */
CLONES static size_t
prune_score_grad(float *dS, const float *S, size_t n, float ts, float tg)
{
	int z = 0; /* n <= T * T */

#pragma omp simd reduction(+ : z)
	for (size_t i = 0; i < n; i++) {
		float x = dS[i];
		int kept = fabsf(S[i]) > ts && fabsf(x) > tg;
		dS[i] = kept ? x : 0.0f;
		z += 1 - kept;
	}
	return (size_t)z;
}

/* Keep the k largest of each of the R rows of P (R, T) and zero the rest; of equal values the first
 * are kept. Returns the zeros left. tmp holds T floats. */
static size_t
topk_rows(float *P, int R, int T, int k, float *tmp)
{
	size_t zeros = 0;

	if (k >= T) {
		for (size_t i = 0; i < (size_t)R * T; i++)
			zeros += P[i] == 0;
		return zeros;
	}
	for (int i = 0; i < R; i++) {
		float *row = P + (size_t)i * T, kth;
		int lo = 0, hi = T - 1, want = k - 1, above = 0, keep;
		memcpy(tmp, row, sizeof *tmp * (size_t)T);
		/* quickselect for the k-th largest */
		while (lo < hi) {
			float pivot = tmp[(lo + hi) / 2];
			int a = lo, b = hi;
			while (a <= b) {
				while (tmp[a] > pivot)
					a++;
				while (tmp[b] < pivot)
					b--;
				if (a <= b) {
					float t = tmp[a];
					tmp[a++] = tmp[b];
					tmp[b--] = t;
				}
			}
			if (want <= b)
				hi = b;
			else if (want >= a)
				lo = a;
			else
				break;
		}
		kth = tmp[want];
		for (int r = 0; r < T; r++)
			above += row[r] > kth;
		keep = k - above; /* values equal to the k-th that still fit, first ones first */
		for (int r = 0; r < T; r++) {
			if (row[r] > kth)
				continue;
			if (row[r] == kth && keep > 0) {
				keep--;
				continue;
			}
			row[r] = 0;
		}
		for (int r = 0; r < T; r++)
			zeros += row[r] == 0;
	}
	return zeros;
}

/* Query rows up to which attention's products run in plain loops (few) rather than through gemm */
#define NN_FEW 4

/*
 * gemm's C (M, N) = alpha op(A) op(B) + beta C (tb only without ta) in plain loops, for the products
 * of a few query rows (nn_qrows; M or K of NN_FEW or less): gemm packs B on every call, which for one
 * query row cost several times the product (1 x 128 x 64: 10 us a call, 3 ms a step).
 */
CLONES static void
few(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
    float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++) {
		float *c = C + (size_t)i * ldc;
		if (tb) {
			const float *a = A + (size_t)i * lda;
			int j = 0;
			/* four dot products at once, 16 lanes each, so that four chains of additions are
			 * in flight where one was; each sums its lanes in a fixed tree, then the rest */
			for (; j + 4 <= N && K >= 16; j += 4) {
				const float *b0 = B + (size_t)j * ldb;
				vec16 s[4] = {0};
				float r[4];
				int k = 0;
				for (; k + 16 <= K; k += 16) {
					vec16 x = *(const vec16 *)(a + k);
					for (int q = 0; q < 4; q++)
						s[q] += x * *(const vec16 *)(b0 + (size_t)q * ldb + k);
				}
				for (int q = 0; q < 4; q++) {
					r[q] = lanes_sum(s[q]);
					for (int kk = k; kk < K; kk++)
						r[q] += a[kk] * b0[(size_t)q * ldb + kk];
					c[j + q] = alpha * r[q] + (beta != 0.0f ? beta * c[j + q] : 0.0f);
				}
			}
			for (; j < N; j++) {
				const float *bj = B + (size_t)j * ldb;
				float s = 0;
#pragma omp simd reduction(+ : s)
				for (int k = 0; k < K; k++)
					s += a[k] * bj[k];
				c[j] = alpha * s + (beta != 0.0f ? beta * c[j] : 0.0f);
			}
			continue;
		}
		if (beta == 0.0f)
			memset(c, 0, sizeof *c * (size_t)N);
		else if (beta != 1.0f)
			for (int j = 0; j < N; j++)
				c[j] *= beta;
		/* 64 columns at a time summed in four vector registers over every k, where summed in c
		 * they went through memory at each k: a store and a load per vector */
		int j0 = 0;
		for (; j0 + 64 <= N; j0 += 64) {
			vec16 s0 = *(const vec16 *)(c + j0), s1 = *(const vec16 *)(c + j0 + 16),
			      s2 = *(const vec16 *)(c + j0 + 32), s3 = *(const vec16 *)(c + j0 + 48);
			for (int k = 0; k < K; k++) {
				float a = alpha * (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
				const float *bk = B + (size_t)k * ldb + j0;
				s0 += a * *(const vec16 *)bk;
				s1 += a * *(const vec16 *)(bk + 16);
				s2 += a * *(const vec16 *)(bk + 32);
				s3 += a * *(const vec16 *)(bk + 48);
			}
			*(vec16 *)(c + j0) = s0, *(vec16 *)(c + j0 + 16) = s1;
			*(vec16 *)(c + j0 + 32) = s2, *(vec16 *)(c + j0 + 48) = s3;
		}
		for (int k = 0; k < K && j0 < N; k++) {
			float a = alpha * (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
			const float *bk = B + (size_t)k * ldb;
#pragma omp simd
			for (int j = j0; j < N; j++)
				c[j] += a * bk[j];
		}
	}
}

/* gemm, or few where small */
static void
product(int small, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
        int ldb, float beta, float *C, int ldc)
{
	if (small)
		few(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
	else
		gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, NULL, C, ldc);
}

/* Rows [0, n) of x (row stride ldx) gathered from rows row[0..n) of src (row stride lds), D wide */
static void
gather_rows(float *x, int ldx, const float *src, int lds, const int32_t *row, int n, int D)
{
	for (int i = 0; i < n; i++)
		memcpy(x + (size_t)i * ldx, src + (size_t)row[i] * lds, sizeof *x * (size_t)D);
}

/* The query rows of sequence b: their count, the first's index among the rows computed (probs' and
 * ctx's row), and their rows of the B T (NULL: all T, from b T on) */
static int
query_rows(const struct nn_qrows *qr, int b, int T, int *first, const int32_t **row)
{
	if (!qr) {
		*first = b * T, *row = NULL;
		return T;
	}
	*first = qr->off[b], *row = qr->row + qr->off[b];
	return qr->off[b + 1] - qr->off[b];
}

/* drop_run (or prune_drop_run, returning its zeros, when tau >= 0) over the R rows of P (R, T),
 * each at its own place in sequence b's T x T: rows row[i] - b T, or 0..R-1 when row is NULL */
static size_t
drop_rows(float *y, float *P, int R, int T, int b, const int32_t *row, float tau, uint32_t k, uint32_t thr,
          float scale)
{
	size_t zeros = 0, n = row ? (size_t)T : (size_t)R * T;

	for (int i = 0; i < R; i += row ? 1 : R) {
		uint32_t base = (uint32_t)((size_t)b * T * T + (size_t)(row ? row[i] - b * T : 0) * T);
		if (tau >= 0)
			zeros +=
			    prune_drop_run(y + (size_t)i * T, P + (size_t)i * T, n, tau, k, base, thr, scale);
		else
			drop_run(y + (size_t)i * T, P + (size_t)i * T, n, k, base, thr, scale);
	}
	return zeros;
}

/* One head's attention, its arguments but the sequence */
struct attn_args {
	float *ctx, *dq, *dk, *dv, *dwma;
	const float *dctx;
	float *probs; /* (backward: read only) */
	const float *q, *k, *v, *wma, *mask;
	float p, scale;
	uint64_t key;
	struct nn_attn_prune *pr;
	const struct nn_qrows *qr;
	int T, A, D, set;
};

/* attention_forward on sequence b, tmp its thread's scratch */
static void
attn_fwd_seq(const struct attn_args *g, int b, float *tmp, size_t *zeros, size_t *zs)
{
	int T = g->T, A = g->A, D = g->D;
	float *qw = tmp + (size_t)T * T, *qg = qw + (size_t)T * D;
	const float *q = g->q, *mask = g->mask, *qa = q + (size_t)b * T * A, *kb = g->k + (size_t)b * T * A,
	            *vb = g->v + (size_t)b * T * A;
	const struct nn_qrows *qr = g->qr;
	struct nn_attn_prune *pr = g->pr;
	const int32_t *row;
	int lda = A, first, R = query_rows(qr, b, T, &first, &row);
	float *P = g->probs + (size_t)first * T, p = g->p, scale = g->scale;
	int small = row && R <= NN_FEW;

	if (R == 0)
		return;
	if (row && qr->packed_q) /* the query rows wanted, side by side */
		qa = q + (size_t)first * A;
	else if (row) {
		gather_rows(qg, D, q, A, row, R, D);
		qa = qg, lda = D;
	}
	if (g->wma) {
		product(small, 0, 0, R, D, D, 1.0f, qa, lda, g->wma, D, 0.0f, qw, D);
		qa = qw;
		lda = D;
	}
	product(small, 0, 1, R, T, D, scale, qa, lda, kb, A, 0.0f, P, T);
	if (pr) /* the raw scores q k^T, before the scaling: |s scale| <= tau scale */
		*zs += prune_block(P, NULL, (size_t)R * T, pr->tau * scale);
	softmax_rows(P, mask + (size_t)b * T, R, T);
	if (pr && pr->topk > 0)
		*zeros += topk_rows(P, R, T, pr->topk, tmp);
	else if (pr) {
		float tp = pr->tau_p, n = 0;
		for (int t = 0; t < T && pr->relative; t++)
			n += mask[(size_t)b * T + t] != 0;
		tp = pr->relative && n > 0 ? tp / n : tp;
		if (p > 0) { /* pruned in place and dropped into tmp in one pass */
			*zeros += drop_rows(tmp, P, R, T, b, row, tp, key32(g->key), keep_below(p),
			                    1.0f / (1.0f - p));
			P = tmp;
		} else
			*zeros += prune_block(P, NULL, (size_t)R * T, tp);
	}
	if (p > 0 && P != tmp) {
		drop_rows(tmp, P, R, T, b, row, -1, key32(g->key), keep_below(p), 1.0f / (1.0f - p));
		P = tmp;
	}
	product(small, 0, 0, R, D, T, 1.0f, P, T, vb, A, 0.0f, g->ctx + (size_t)first * A, A);
}

void
attention_forward(float *ctx, float *probs, const float *q, const float *k, const float *v, const float *wma,
                  const float *mask, float p, uint64_t key, struct nn_attn_prune *pr,
                  const struct nn_qrows *qr, float *scratch, int B, int T, int A, int D)
{
	struct attn_args g = {.ctx = ctx,
	                      .probs = probs,
	                      .q = q,
	                      .k = k,
	                      .v = v,
	                      .wma = wma,
	                      .mask = mask,
	                      .p = p,
	                      .scale = 1.0f / sqrtf((float)D),
	                      .key = key,
	                      .pr = pr,
	                      .qr = qr,
	                      .T = T,
	                      .A = A,
	                      .D = D};
	size_t zeros = 0, zs = 0, per = (size_t)T * T + 2 * (size_t)T * D;

#pragma omp parallel for schedule(static) reduction(+ : zeros, zs)
	for (int b = 0; b < B; b++)
		attn_fwd_seq(&g, b, scratch + (size_t)omp_get_thread_num() * per, &zeros, &zs);
	if (pr) {
		size_t rows = qr ? (size_t)qr->off[B] : (size_t)B * T;
		pr->zeros[0] += zs + zeros;
		pr->total[0] += 2 * rows * T;
		pr->split[0] += zs, pr->split[1] += zeros;
	}
}

void
attention_forward_heads(int nh, float *ctx, float *const *probs, const float *q, const float *k,
                        const float *v, const float *const *wma, const float *mask, float p,
                        const uint64_t *key, float *scratch, int B, int T, int A, int D)
{
	size_t per = (size_t)T * T + 2 * (size_t)T * D;

	/* sequence after sequence, each one's heads one after another: the heads' columns of a
	 * sequence's rows of q, k and v (one line in two for 2 heads of 64) come from memory
	 * together, where a head at a time over the batch read each line twice or more. The threads
	 * take a sequence at a time as they finish (its outputs are its own, so the bits do not
	 * depend on who takes it): split in halves, the first to finish waited for the other (3% of
	 * the first thread's samples in a 2-thread profile) */
#pragma omp parallel for schedule(dynamic, nh)
	for (int it = 0; it < B * nh; it++) {
		int b = it / nh, j = it % nh, c = j * D;
		struct attn_args g = {.ctx = ctx + c,
		                      .probs = probs[j],
		                      .q = q + c,
		                      .k = k + c,
		                      .v = v + c,
		                      .wma = wma ? wma[j] : NULL,
		                      .mask = mask,
		                      .p = p,
		                      .scale = 1.0f / sqrtf((float)D),
		                      .key = key[j],
		                      .T = T,
		                      .A = A,
		                      .D = D};
		size_t z0 = 0, z1 = 0;
		attn_fwd_seq(&g, b, scratch + (size_t)omp_get_thread_num() * per, &z0, &z1);
	}
}

/* The share of nonzeros below which attention's backward products run over them alone
 * (gemm_sparse, the same sums). With T 128 and D 64, the nonzeros' way took 0.30-0.42 of the dense
 * products' time at 10% of nonzeros, 0.44-0.61 at 20% and 0.54-0.88 at 30% (T x T x D and
 * T x D x T); a transpose comes on top for two of the four. */
#define NN_ATTN_SPARSE 0.25

/* Nonzeros of x (R rows of C, row stride ldx) */
static size_t
count_nz(const float *x, int R, int C, int ldx)
{
	size_t n = 0;

	for (int r = 0; r < R; r++)
		n += (size_t)row_nnz(x + (size_t)r * ldx, C);
	return n;
}

/* C (M, N) = S B, or += where add, S (M, K) holding nz nonzeros: over them alone where they are
 * few, else the dense product. With ts, the product is S^T B, S given as (K, M), and S^T is
 * written into St (M x K floats) for the sparse way. */
static void
attn_product(size_t nz, int ts, float *St, int M, int N, int K, const float *S, int lds, const float *B,
             int ldb, int add, float *C, int ldc)
{
	if ((double)nz <= NN_ATTN_SPARSE * M * K && gemm_own()) {
		if (ts) { /* S^T as it is to be read: M rows of K */
			gemm_transpose(St, K, S, lds, K, M);
			S = St, lds = K, ts = 0;
		}
		if (gemm_sparse(M, N, K, S, lds, B, ldb, add, C, ldc) == 0)
			return;
	}
	gemm(ts, 0, M, N, K, 1.0f, S, lds, B, ldb, add ? 1.0f : 0.0f, NULL, C, ldc);
}

/* dP (R, T) = P * (dP - rowsum(P * dP)) * scale, row by row: through a softmax and a scale. */
CLONES static void
softmax_back_rows(float *dP, const float *P, float scale, int R, int T)
{
	for (int i = 0; i < R; i++) {
		const float *pr = P + (size_t)i * T;
		float *dr = dP + (size_t)i * T, dot = 0;
		int r0 = T / 16 * 16;
		if (r0 > 0) {
			vec16 s = {0};
			for (int r = 0; r < r0; r += 16)
				s += *(const vec16 *)(pr + r) * *(const vec16 *)(dr + r);
			dot = lanes_sum(s);
		}
		for (int r = r0; r < T; r++)
			dot += pr[r] * dr[r];
#pragma omp simd
		for (int r = 0; r < T; r++)
			dr[r] = pr[r] * (dr[r] - dot) * scale;
	}
}

/* attention_backward, or with set (and no qr) attention_backward_set */
/* attn_backward on sequence b, tmp its thread's scratch, dqw_all the rows' d(q wma) */
static void
attn_bwd_seq(const struct attn_args *g, int b, float *tmp, float *dqw_all, size_t *zeros, size_t *zs)
{
	int T = g->T, A = g->A, D = g->D, set = g->set;
	const float *q = g->q, *wma = g->wma;
	const struct nn_qrows *qr = g->qr;
	struct nn_attn_prune *pr = g->pr;
	float *dq = g->dq, *dk = g->dk, *dv = g->dv, p = g->p, scale = g->scale;
	float *Pd = tmp, *dP = tmp + (size_t)T * T, *qw = dP + (size_t)T * T, *qg = qw + (size_t)T * D;
	const int32_t *row;
	int first, R = query_rows(qr, b, T, &first, &row);
	const float *P = g->probs + (size_t)first * T, *Pu = P;
	const float *qb = q + (size_t)b * T * A, *kb = g->k + (size_t)b * T * A,
	            *vb = g->v + (size_t)b * T * A, *qa = qb;
	const float *dcb = g->dctx + (size_t)first * A;
	size_t nz, zb = 0;
	float s = p > 0 ? 1.0f / (1.0f - p) : 1.0f, *dqw = dqw_all ? dqw_all + (size_t)first * D : NULL;
	uint32_t k32 = key32(g->key), thr = keep_below(p);
	int lda = A, sparse = pr && !row && gemm_own(), small = row && R <= NN_FEW;
	if (R == 0)
		return;
	if (p > 0) {
		drop_rows(Pd, (float *)P, R, T, b, row, -1, k32, thr, s);
		Pu = Pd;
	}
	if (row && qr->packed_q)
		qa = q + (size_t)first * A;
	else if (row) {
		gather_rows(qg, D, q, A, row, R, D);
		qa = qg, lda = D;
	}
	/* dv += drop(P)^T dctx; d drop(P) = dctx v^T, over dctx's nonzeros where DynaProp left
	 * few (v^T into qg's space, free when every row is a query) */
	product(small, 1, 0, T, D, R, 1.0f, Pu, T, dcb, A, set ? 0.0f : 1.0f, dv + (size_t)b * T * A, A);
	if (sparse && (double)(nz = count_nz(dcb, T, D, A)) <= NN_ATTN_SPARSE * T * D) {
		gemm_transpose(qg, T, vb, A, T, D);
		attn_product(nz, 0, NULL, T, T, D, dcb, A, qg, T, 0, dP, T);
	} else
		product(small, 0, 1, R, T, D, 1.0f, dcb, A, vb, A, 0.0f, dP, T);
	/* through the dropout and the softmax; then the 1/sqrt(D) */
	if (p > 0) /* the mask from Pd, not hashed again: the softmax's backward multiplies
	              by P, 0 wherever Pd is 0 but the mask is not */
		undrop_run(dP, Pd, (size_t)R * T, s);
	if (wma) {
		product(small, 0, 0, R, D, D, 1.0f, qa, lda, wma, D, 0.0f, qw, D);
		qa = qw, lda = D;
	}
	if (pr) /* the gradient at the kept probabilities */
		*zeros += prune_grad_block(dP, P, NULL, (size_t)R * T, pr->tau_grad_p);
	softmax_back_rows(dP, P, scale, R, T);
	if (pr && pr->tau > 0) {
		/* at the kept scores, recomputed into Pd (free once dv has it); dP holds the
		 * gradient times scale */
		float *S = Pd;
		product(small, 0, 1, R, T, D, scale, qa, lda, kb, A, 0.0f, S, T);
		zb = prune_score_grad(dP, S, (size_t)R * T, pr->tau * scale, pr->tau_grad * scale);
	} else if (pr) /* tau 0 prunes no score but exact zeros, which it leaves as they were: the
	                  rule is the identity there, and its gradient passes everywhere */
		zb = prune_block(dP, NULL, (size_t)R * T, pr->tau_grad * scale);
	*zs += zb;
	if (row) {
		/* dk += dS^T q'; d q' = dS k, into dqw (wma) or qw (free by then: R x D floats,
		 * which Pd, T x T, holds only where D <= T), then into dq's rows (packed: straight
		 * into them) */
		float *dqr = wma ? dqw : qw, *dqp = dq + (size_t)first * A;
		int pq = qr->packed_q;
		product(small, 1, 0, T, D, R, 1.0f, dP, T, qa, lda, 1.0f, dk + (size_t)b * T * A, A);
		if (pq && !wma) {
			product(small, 0, 0, R, D, T, 1.0f, dP, T, kb, A, 1.0f, dqp, A);
			return;
		}
		product(small, 0, 0, R, D, T, 1.0f, dP, T, kb, A, 0.0f, dqr, D);
		if (wma) {
			product(small, 0, 1, R, D, D, 1.0f, dqw, D, wma, D, pq ? 1.0f : 0.0f, pq ? dqp : qw,
			        pq ? A : D);
			if (pq)
				return;
			dqr = qw;
		}
		for (int i = 0; i < R; i++) {
			float *y = dq + (size_t)row[i] * A;
			const float *x = dqr + (size_t)i * D;
			for (int e = 0; e < D; e++)
				y[e] += x[e];
		}
		return;
	}
	/* dS's nonzeros (all of them without DynaProp); dS^T goes into Pd, free by now */
	nz = (size_t)T * T - zb;
	if (wma) {
		/* dk += dS^T (q W); d(qW) = dS k; dq += d(qW) W^T */
		attn_product(nz, 1, Pd, T, D, T, dP, T, qw, D, !set, dk + (size_t)b * T * A, A);
		attn_product(nz, 0, NULL, T, D, T, dP, T, kb, A, 0, dqw, D);
		gemm(0, 1, T, D, D, 1.0f, dqw, D, wma, D, set ? 0.0f : 1.0f, NULL, dq + (size_t)b * T * A, A);
	} else {
		attn_product(nz, 0, NULL, T, D, T, dP, T, kb, A, !set, dq + (size_t)b * T * A, A);
		attn_product(nz, 1, Pd, T, D, T, dP, T, qb, A, !set, dk + (size_t)b * T * A, A);
	}
}

static void
attn_backward(float *dq, float *dk, float *dv, float *dwma, const float *dctx, const float *probs,
              const float *q, const float *k, const float *v, const float *wma, float p, uint64_t key,
              struct nn_attn_prune *pr, const struct nn_qrows *qr, float *scratch, int B, int T, int A, int D,
              int set)
{
	float scale = 1.0f / sqrtf((float)D);
	size_t per = 2 * (size_t)T * T + 2 * (size_t)T * D, zeros = 0, zs = 0;
	size_t rows = qr ? (size_t)qr->off[B] : (size_t)B * T, dead = (size_t)B * T - rows;
	float *dqw_all = scratch + (size_t)omp_get_max_threads() * per; /* (rows, D), for dwma */

	struct attn_args g = {.dq = dq,
	                      .dk = dk,
	                      .dv = dv,
	                      .dctx = dctx,
	                      .probs = (float *)probs,
	                      .q = q,
	                      .k = k,
	                      .v = v,
	                      .wma = wma,
	                      .p = p,
	                      .scale = scale,
	                      .key = key,
	                      .pr = pr,
	                      .qr = qr,
	                      .T = T,
	                      .A = A,
	                      .D = D,
	                      .set = set};

#pragma omp parallel for schedule(static) reduction(+ : zeros, zs)
	for (int b = 0; b < B; b++)
		attn_bwd_seq(&g, b, scratch + (size_t)omp_get_thread_num() * per, dqw_all, &zeros, &zs);
	if (pr) { /* the rows not computed have a zero gradient: counted as zeros, as in a dense run */
		pr->zeros[1] += zeros + zs + 2 * dead * T;
		pr->total[1] += 2 * (size_t)B * T * T;
		pr->split[2] += zeros + dead * T, pr->split[3] += zs + dead * T;
	}
	/* dW += sum over the rows of q^T d(qW), as one product; with query rows, their q gathered
	 * beside their d(qW) */
	if (wma && dwma) {
		const float *qs = q;
		int ldq = A;
		if (qr && !qr->packed_q) {
			float *qgat = dqw_all + rows * D;
			gather_rows(qgat, D, q, A, qr->row, (int)rows, D);
			qs = qgat, ldq = D;
		}
		if (rows > 0)
			gemm(1, 0, D, D, (int)rows, 1.0f, qs, ldq, dqw_all, D, 1.0f, NULL, dwma, D);
	}
}

void
attention_backward_set_heads(int nh, float *dq, float *dk, float *dv, const float *dctx, float *const *probs,
                             const float *q, const float *k, const float *v, float p, const uint64_t *key,
                             float *scratch, int B, int T, int A, int D)
{
	size_t per = 2 * (size_t)T * T + 2 * (size_t)T * D;

	/* sequence after sequence, each one's heads one after another, taken as the threads finish
	 * (attention_forward_heads) */
#pragma omp parallel for schedule(dynamic, nh)
	for (int it = 0; it < B * nh; it++) {
		int b = it / nh, j = it % nh, c = j * D;
		struct attn_args g = {.dq = dq + c,
		                      .dk = dk + c,
		                      .dv = dv + c,
		                      .dctx = dctx + c,
		                      .probs = probs[j],
		                      .q = q + c,
		                      .k = k + c,
		                      .v = v + c,
		                      .p = p,
		                      .scale = 1.0f / sqrtf((float)D),
		                      .key = key[j],
		                      .T = T,
		                      .A = A,
		                      .D = D,
		                      .set = 1};
		size_t z0 = 0, z1 = 0;
		attn_bwd_seq(&g, b, scratch + (size_t)omp_get_thread_num() * per, NULL, &z0, &z1);
	}
}

void
attention_backward(float *dq, float *dk, float *dv, float *dwma, const float *dctx, const float *probs,
                   const float *q, const float *k, const float *v, const float *wma, float p, uint64_t key,
                   struct nn_attn_prune *pr, const struct nn_qrows *qr, float *scratch, int B, int T, int A,
                   int D)
{
	attn_backward(dq, dk, dv, dwma, dctx, probs, q, k, v, wma, p, key, pr, qr, scratch, B, T, A, D, 0);
}

void
attention_backward_set(float *dq, float *dk, float *dv, float *dwma, const float *dctx, const float *probs,
                       const float *q, const float *k, const float *v, const float *wma, float p,
                       uint64_t key, struct nn_attn_prune *pr, float *scratch, int B, int T, int A, int D)
{
	attn_backward(dq, dk, dv, dwma, dctx, probs, q, k, v, wma, p, key, pr, NULL, scratch, B, T, A, D, 1);
}

/* Buffers of the attention without keys and values (xkv), kept from call to call */
static struct {
	size_t cap, rcap;
	float *tmp;  /* per thread: P dropped and dS (2 T x T), qw, dqa (T x D), px, qk, dpx (T x h) */
	float *rows; /* per head: the rows' px, dqk (rows x h), q' (rows x D), rowsum(drop(P)), rowsum(dS),
	              * dq' */
} xkv;

/* s[r] = the dot of row r of X (R rows of n, row stride ldx) with v, or the row's sum where v is NULL */
static void
row_dots(float *s, const float *X, int ldx, const float *v, int R, int n)
{
	for (int r = 0; r < R; r++) {
		const float *xr = X + (size_t)r * ldx;
		float d = 0;
		for (int e = 0; e < n; e++)
			d += v ? xr[e] * v[e] : xr[e];
		s[r] = d;
	}
}

/* Row r of Y (R rows of n, row stride ldy) += a s[r] v, or a s[r] in each element where v is NULL */
static void
add_scaled_rows(float *Y, int ldy, float a, const float *s, const float *v, int R, int n)
{
	for (int r = 0; r < R; r++)
		for (int e = 0; e < n; e++)
			Y[(size_t)r * ldy + e] += a * s[r] * (v ? v[e] : 1.0f);
}

/* The R query rows' q' of the xkv attention: q where it lies (row stride A), or q wma into qw;
 * *ld gets its row stride */
static const float *
xkv_queries(const float *q, const float *wma, float *qw, int R, int A, int D, int small, int *ld)
{
	if (!wma) {
		*ld = A;
		return q;
	}
	product(small, 0, 0, R, D, D, 1.0f, q, A, wma, D, 0.0f, qw, D);
	*ld = D;
	return qw;
}

/* xkv.tmp's share of one thread */
static size_t
xkv_per(int T, int h, int D)
{
	return 2 * (size_t)T * T + 2 * (size_t)T * D + 3 * (size_t)T * h;
}

/* The arguments of the xkv attention's heads but the sequence: head j's slices are its D columns
 * of ctx, q, dctx and dq (from j D), its D rows of wk and wv (from j D h), its D of bk and bv, and
 * its own probs, wma and key (the parameters' gradients are summed after, from xkv.rows) */
struct xkv_args {
	float *ctx, *dq, *dx;
	float *const *probs;
	const float *q, *x, *dctx, *wk, *bk, *wv, *bv, *mask;
	const float *const *wma;
	const uint64_t *key;
	const struct nn_qrows *qr;
	float p;
	int nh, h, B, T, A, D;
};

/* xkv.rows' share of one head, for rows query rows */
static size_t
xkv_head_rows(size_t rows, int h, int D)
{
	return rows * (2 * (size_t)h + 2 * (size_t)D + 2);
}

/* Head j's part of xkv.rows: its rows' drop(P) x and d(q' wk) (rows x h), q' and d q' (rows x D),
 * rowsum(drop(P)) and rowsum(dS) */
struct xkv_rows {
	float *px, *dqk, *qw, *dqw, *sp, *sg;
};

static struct xkv_rows
xkv_rows(const struct xkv_args *g, int j)
{
	size_t rows = (size_t)g->qr->off[g->B];
	struct xkv_rows k;
	k.px = xkv.rows + (size_t)j * xkv_head_rows(rows, g->h, g->D);
	k.dqk = k.px + rows * g->h, k.qw = k.dqk + rows * g->h, k.dqw = k.qw + rows * g->D;
	k.sp = k.dqw + rows * g->D, k.sg = k.sp + rows;
	return k;
}

/* Head j of the xkv attention forward on sequence b, tmp its thread's scratch */
static void
xkv_fwd_head(const struct xkv_args *g, int j, int b, float *tmp)
{
	int T = g->T, A = g->A, D = g->D, h = g->h, c = j * D;
	float scale = 1.0f / sqrtf((float)D), p = g->p;
	const float *wk = g->wk + (size_t)c * h, *wv = g->wv + (size_t)c * h, *bk = g->bk + c,
	            *bv = g->bv + c, *wma = g->wma ? g->wma[j] : NULL;
	float *Pd = tmp, *qw = tmp + 2 * (size_t)T * T, *qk = qw + 2 * (size_t)T * D,
	      *px = qk + (size_t)T * h, *sv = px + (size_t)T * h;
	const float *xb = g->x + (size_t)b * T * h, *qa;
	const int32_t *row;
	int first, R = query_rows(g->qr, b, T, &first, &row), lda, small = R <= NN_FEW;
	float *P = g->probs[j] + (size_t)first * T, *Pu = P, *ctx = g->ctx + (size_t)first * A + c;

	qa = xkv_queries(g->q + (size_t)first * A + c, wma, qw, R, A, D, small, &lda);
	/* scores: (q' wk) x^T + q' . bk, scaled */
	product(small, 0, 0, R, h, D, 1.0f, qa, lda, wk, h, 0.0f, qk, h);
	product(small, 0, 1, R, T, h, scale, qk, h, xb, h, 0.0f, P, T);
	row_dots(sv, qa, lda, bk, R, D);
	add_scaled_rows(P, T, scale, sv, NULL, R, T);
	softmax_rows(P, g->mask + (size_t)b * T, R, T);
	if (p > 0) {
		drop_rows(Pd, P, R, T, b, row, -1, key32(g->key[j]), keep_below(p), 1.0f / (1.0f - p));
		Pu = Pd;
	}
	/* the context: (drop(P) x) wv^T + rowsum(drop(P)) bv */
	product(small, 0, 0, R, h, T, 1.0f, Pu, T, xb, h, 0.0f, px, h);
	product(small, 0, 1, R, D, h, 1.0f, px, h, wv, h, 0.0f, ctx, A);
	row_dots(sv, Pu, T, NULL, R, T);
	add_scaled_rows(ctx, A, 1.0f, sv, bv, R, D);
}

/* The arguments of an xkv call but its outputs and gradients */
static struct xkv_args
xkv_args(int nh, float *const *probs, const float *q, const float *x, int h, const float *wk, const float *bk,
         const float *wv, const float *bv, const float *const *wma, float p, const uint64_t *key,
         const struct nn_qrows *qr, int B, int T, int A, int D)
{
	struct xkv_args g = {.probs = probs,
	                     .q = q,
	                     .x = x,
	                     .wk = wk,
	                     .bk = bk,
	                     .wv = wv,
	                     .bv = bv,
	                     .wma = wma,
	                     .key = key,
	                     .qr = qr,
	                     .p = p,
	                     .nh = nh,
	                     .h = h,
	                     .B = B,
	                     .T = T,
	                     .A = A,
	                     .D = D};
	return g;
}

/* head on each head of each sequence with query rows. The sequences go to the threads as they
 * finish: each one's outputs are its own, so the bits do not depend on who takes which (in halves,
 * on a host whose vCPUs ran 10% apart, one thread waited 0.07 ms a step for the other). A
 * sequence's heads run one after another, so that its rows of x (64 KB for T 128 and h 128), and
 * backward of dx, come from memory once and stay in L2 for the rest: a head at a time over the
 * batch read all of x from memory once a head. */
static void
xkv_run(const struct xkv_args *g, void (*head)(const struct xkv_args *, int, int, float *))
{
	size_t per = xkv_per(g->T, g->h, g->D);

	xkv.tmp = grow(xkv.tmp, &xkv.cap, (size_t)omp_get_max_threads() * per, sizeof *xkv.tmp);
#pragma omp parallel for schedule(dynamic)
	for (int b = 0; b < g->B; b++) {
		const int32_t *row;
		int first;
		if (query_rows(g->qr, b, g->T, &first, &row) == 0)
			continue;
		for (int j = 0; j < g->nh; j++)
			head(g, j, b, xkv.tmp + (size_t)omp_get_thread_num() * per);
	}
}

void
attention_forward_xkv(int nh, float *ctx, float *const *probs, const float *q, const float *x, int h,
                      const float *wk, const float *bk, const float *wv, const float *bv,
                      const float *const *wma, const float *mask, float p, const uint64_t *key,
                      const struct nn_qrows *qr, int B, int T, int A, int D)
{
	struct xkv_args g = xkv_args(nh, probs, q, x, h, wk, bk, wv, bv, wma, p, key, qr, B, T, A, D);

	g.ctx = ctx, g.mask = mask;
	xkv_run(&g, xkv_fwd_head);
}

/* Head j of the xkv attention backward on sequence b: what it adds into dx and dq, and its rows'
 * factors of the parameters' gradients into its part of xkv.rows */
static void
xkv_bwd_head(const struct xkv_args *g, int j, int b, float *tmp)
{
	int T = g->T, A = g->A, D = g->D, h = g->h, c = j * D;
	float scale = 1.0f / sqrtf((float)D), p = g->p, s = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
	const float *wk = g->wk + (size_t)c * h, *wv = g->wv + (size_t)c * h, *bk = g->bk + c,
	            *bv = g->bv + c, *wma = g->wma ? g->wma[j] : NULL;
	const float *xb = g->x + (size_t)b * T * h, *qa;
	const int32_t *row;
	int first, R = query_rows(g->qr, b, T, &first, &row), lda, small = R <= NN_FEW;
	/* [drop(P); dP] (2R x T) and [d(P x); q' wk] (2R x h), stacked so that dx takes both in one
	 * pass: dx += drop(P)^T d(P x) + dS^T (q' wk) */
	float *S = tmp, *dP = S + (size_t)R * T, *qw = tmp + 2 * (size_t)T * T, *dqa = qw + (size_t)T * D,
	      *V = dqa + (size_t)T * D, *dpx = V, *qk = V + (size_t)R * h, *sv = V + 2 * (size_t)T * h;
	const float *P = g->probs[j] + (size_t)first * T, *dcb = g->dctx + (size_t)first * A + c;
	struct xkv_rows k = xkv_rows(g, j);
	float *px = k.px + (size_t)first * h, *dqk = k.dqk + (size_t)first * h,
	      *dxb = g->dx + (size_t)b * T * h;
	qa = xkv_queries(g->q + (size_t)first * A + c, wma, qw, R, A, D, small, &lda);
	for (int r = 0; r < R; r++) /* q' kept for dwk, dbk */
		memcpy(k.qw + ((size_t)first + r) * D, qa + (size_t)r * lda, sizeof *qa * (size_t)D);
	product(small, 0, 0, R, h, D, 1.0f, qa, lda, wk, h, 0.0f, qk, h);
	if (p > 0)
		drop_rows(S, (float *)P, R, T, b, row, -1, key32(g->key[j]), keep_below(p), s);
	else
		memcpy(S, P, sizeof *S * (size_t)R * T);
	/* through the context: d(drop(P) x) = dctx wv, kept with drop(P) x for dwv; dbv's factor */
	product(small, 0, 0, R, h, T, 1.0f, S, T, xb, h, 0.0f, px, h);
	product(small, 0, 0, R, h, D, 1.0f, dcb, A, wv, h, 0.0f, dpx, h);
	row_dots(k.sp + first, S, T, NULL, R, T);
	/* d drop(P) = d(P x) x^T + dctx . bv */
	product(small, 0, 1, R, T, h, 1.0f, dpx, h, xb, h, 0.0f, dP, T);
	row_dots(sv, dcb, A, bv, R, D);
	add_scaled_rows(dP, T, 1.0f, sv, NULL, R, T);
	/* through the dropout and the softmax (dP then holds dS, the 1/sqrt(D) in) */
	if (p > 0)
		undrop_run(dP, S, (size_t)R * T, s);
	softmax_back_rows(dP, P, scale, R, T);
	/* d(q' wk) = dS x, kept for dwk; dx += drop(P)^T d(P x) + dS^T (q' wk);
	 * d q' = d(q' wk) wk^T + rowsum(dS) bk */
	product(small, 0, 0, R, h, T, 1.0f, dP, T, xb, h, 0.0f, dqk, h);
	product(small, 1, 0, T, h, 2 * R, 1.0f, S, T, V, h, 1.0f, dxb, h);
	product(small, 0, 1, R, D, h, 1.0f, dqk, h, wk, h, 0.0f, dqa, D);
	row_dots(k.sg + first, dP, T, NULL, R, T);
	add_scaled_rows(dqa, D, 1.0f, k.sg + first, bk, R, D);
	if (wma) { /* dq += d q' wma^T; d q' kept for dwma */
		memcpy(k.dqw + (size_t)first * D, dqa, sizeof *dqa * (size_t)R * D);
		product(small, 0, 1, R, D, D, 1.0f, dqa, D, wma, D, 1.0f, g->dq + (size_t)first * A + c, A);
	} else
		for (int r = 0; r < R; r++)
			for (int e = 0; e < D; e++)
				g->dq[((size_t)first + r) * A + c + e] += dqa[(size_t)r * D + e];
}

void
attention_backward_xkv(int nh, float *dq, float *dx, float *dwk, float *dbk, float *dwv, float *dbv,
                       float *const *dwma, const float *dctx, float *const *probs, const float *q,
                       const float *x, int h, const float *wk, const float *bk, const float *wv,
                       const float *bv, const float *const *wma, float p, const uint64_t *key,
                       const struct nn_qrows *qr, int B, int T, int A, int D)
{
	struct xkv_args g = xkv_args(nh, probs, q, x, h, wk, bk, wv, bv, wma, p, key, qr, B, T, A, D);
	size_t rows = (size_t)qr->off[B];

	g.dq = dq, g.dx = dx, g.dctx = dctx;
	xkv.rows = grow(xkv.rows, &xkv.rcap, (size_t)nh * xkv_head_rows(rows, h, D) + 1, sizeof *xkv.rows);
	xkv_run(&g, xkv_bwd_head);
	if (rows == 0)
		return;
	/* the parameters' gradients, head by head, summed over the rows in order:
	 * dwv += dctx^T (drop(P) x), dbv += dctx^T rowsum(drop(P)), dwk += q'^T d(q' wk),
	 * dbk += q'^T rowsum(dS), dwma += q^T d q' */
	for (int j = 0; j < nh; j++) {
		struct xkv_rows k = xkv_rows(&g, j);
		int c = j * D;
		size_t kv = (size_t)c * h;
		gemm(1, 0, D, h, (int)rows, 1.0f, dctx + c, A, k.px, h, 1.0f, NULL, dwv + kv, h);
		gemm(1, 0, D, h, (int)rows, 1.0f, k.qw, D, k.dqk, h, 1.0f, NULL, dwk + kv, h);
		for (size_t r = 0; r < rows; r++)
			for (int e = 0; e < D; e++) {
				dbv[c + e] += k.sp[r] * dctx[r * A + c + e];
				dbk[c + e] += k.sg[r] * k.qw[r * D + e];
			}
		if (wma && wma[j] && dwma && dwma[j])
			gemm(1, 0, D, D, (int)rows, 1.0f, q + c, A, k.dqw, D, 1.0f, NULL, dwma[j], D);
	}
}

void
attention_forward_naive(float *ctx, float *probs, const float *q, const float *k, const float *v,
                        const float *wma, const float *mask, float p, uint64_t key, int B, int T, int A,
                        int D)
{
	double scale = 1.0 / sqrt((double)D);

	for (int b = 0; b < B; b++)
		for (int i = 0; i < T; i++) {
			const float *qi = q + ((size_t)b * T + i) * A;
			float *P = probs + ((size_t)b * T + i) * T;
			double mx = -INFINITY, sum = 0;
			for (int r = 0; r < T; r++) {
				const float *kr = k + ((size_t)b * T + r) * A;
				double s = 0;
				for (int e = 0; e < D; e++) {
					double qe = qi[e];
					if (wma) {
						qe = 0;
						for (int f = 0; f < D; f++)
							qe += (double)qi[f] * wma[f * D + e];
					}
					s += qe * kr[e];
				}
				s = s * scale + (mask[(size_t)b * T + r] == 0 ? NN_MASKED_SCORE : 0);
				P[r] = (float)s;
				mx = s > mx ? s : mx;
			}
			for (int r = 0; r < T; r++)
				sum += exp(P[r] - mx);
			for (int r = 0; r < T; r++)
				P[r] = (float)(exp(P[r] - mx) / sum);
			for (int e = 0; e < D; e++) {
				double c = 0;
				for (int r = 0; r < T; r++) {
					double pr = P[r];
					if (p > 0)
						pr = nn_keep(key, (size_t)b * T * T + (size_t)i * T + r, p)
						         ? pr / (1 - p)
						         : 0;
					c += pr * v[((size_t)b * T + r) * A + e];
				}
				ctx[((size_t)b * T + i) * A + e] = (float)c;
			}
		}
}

/* ---- linear transforms ---- */

void
nn_transform_matrices(int kind, float *m1, float *m2, float *m3, float *m4, int T, int D)
{
	if (kind == NN_DFT) {
		for (int a = 0; a < T; a++)
			for (int c = 0; c < T; c++) {
				double x = 2 * PI * (double)((long)a * c % T) / T;
				m1[a * T + c] = (float)(cos(x) / sqrt((double)T));
				m2[a * T + c] = (float)(sin(x) / sqrt((double)T));
			}
		for (int a = 0; a < D; a++)
			for (int c = 0; c < D; c++) {
				double x = 2 * PI * (double)((long)a * c % D) / D;
				m3[a * D + c] = (float)(cos(x) / sqrt((double)D));
				m4[a * D + c] = (float)(sin(x) / sqrt((double)D));
			}
		return;
	}
	for (int a = 0; a < T; a++)
		for (int c = 0; c < T; c++)
			m1[a * T + c] = (float)((a ? sqrt(2.0 / T) : sqrt(1.0 / T)) *
			                        cos(PI * a * (2 * c + 1) / (2.0 * T)));
	for (int a = 0; a < D; a++) /* m3 = D_D^T: m3[c][a] = D_D[a][c] */
		for (int c = 0; c < D; c++)
			m3[c * D + a] = (float)((a ? sqrt(2.0 / D) : sqrt(1.0 / D)) *
			                        cos(PI * a * (2 * c + 1) / (2.0 * D)));
	(void)m2;
	(void)m4;
}

/*
 * y (T, D; row stride ldy) = L x R (+ y if acc) - for the DFT also - L2 x R2 -, x (T, D; contiguous), with
 * L^T / R^T instead when transposed (the DCT backward). tmp holds T x D floats.
 */
static void
transform_apply(int kind, int transposed, float *y, int ldy, const float *x, const float *m1, const float *m2,
                const float *m3, const float *m4, float *tmp, int T, int D, float beta)
{
	CBLAS_TRANSPOSE tr = transposed ? CblasTrans : CblasNoTrans;

	gemm(tr == CblasTrans, 0, T, D, T, 1.0f, m1, T, x, D, 0.0f, NULL, tmp, D);
	gemm(0, tr == CblasTrans, T, D, D, 1.0f, tmp, D, m3, D, beta, NULL, y, ldy);
	if (kind == NN_DFT) {
		gemm(0, 0, T, D, T, 1.0f, m2, T, x, D, 0.0f, NULL, tmp, D);
		gemm(0, 0, T, D, D, -1.0f, tmp, D, m4, D, 1.0f, NULL, y, ldy);
	}
}

void
transform_forward(int kind, float *out, const float *v, const float *mask, const float *m1, const float *m2,
                  const float *m3, const float *m4, float *scratch, int B, int T, int A, int D)
{
#pragma omp parallel for schedule(static)
	for (int b = 0; b < B; b++) {
		float *x = scratch + (size_t)omp_get_thread_num() * 2 * T * D, *tmp = x + (size_t)T * D;
		for (int t = 0; t < T; t++) {
			if (mask[(size_t)b * T + t] != 0)
				memcpy(x + (size_t)t * D, v + ((size_t)b * T + t) * A, sizeof *x * (size_t)D);
			else
				memset(x + (size_t)t * D, 0, sizeof *x * (size_t)D);
		}
		transform_apply(kind, 0, out + (size_t)b * T * A, A, x, m1, m2, m3, m4, tmp, T, D, 0.0f);
	}
}

void
transform_backward(int kind, float *dv, const float *dout, const float *mask, const float *m1,
                   const float *m2, const float *m3, const float *m4, float *scratch, int B, int T, int A,
                   int D)
{
#pragma omp parallel for schedule(static)
	for (int b = 0; b < B; b++) {
		float *x = scratch + (size_t)omp_get_thread_num() * 3 * T * D, *tmp = x + (size_t)T * D;
		float *y = tmp + (size_t)T * D;
		for (int t = 0; t < T; t++)
			memcpy(x + (size_t)t * D, dout + ((size_t)b * T + t) * A, sizeof *x * (size_t)D);
		/* the DFT's map is symmetric; the DCT's adjoint uses the transposes */
		transform_apply(kind, kind == NN_DCT, y, D, x, m1, m2, m3, m4, tmp, T, D, 0.0f);
		for (int t = 0; t < T; t++)
			if (mask[(size_t)b * T + t] != 0)
				for (int e = 0; e < D; e++)
					dv[((size_t)b * T + t) * A + e] += y[(size_t)t * D + e];
	}
}

void
transform_forward_naive(int kind, float *out, const float *v, const float *mask, int B, int T, int A, int D)
{
	for (int b = 0; b < B; b++)
		for (int ka = 0; ka < T; ka++)
			for (int la = 0; la < D; la++) {
				double s = 0;
				for (int t = 0; t < T; t++) {
					if (mask[(size_t)b * T + t] == 0)
						continue;
					for (int e = 0; e < D; e++) {
						double x = v[((size_t)b * T + t) * A + e], w;
						if (kind == NN_DFT)
							w = cos(2 * PI *
							        ((double)ka * t / T + (double)la * e / D)) /
							    sqrt((double)T * D);
						else
							w = (ka ? sqrt(2.0 / T) : sqrt(1.0 / T)) *
							    cos(PI * ka * (2 * t + 1) / (2.0 * T)) *
							    (la ? sqrt(2.0 / D) : sqrt(1.0 / D)) *
							    cos(PI * la * (2 * e + 1) / (2.0 * D));
						s += x * w;
					}
				}
				out[((size_t)b * T + ka) * A + la] = (float)s;
			}
}

/* ---- dynamic span-based convolution ---- */

void
dsc_forward(float *out, const struct dsc_saved *s, const float *q, const float *k, const float *v,
            const struct dsc_params *w, const float *mask, int B, int T, int A, int D, int K)
{
	int N = B * T, P = (K - 1) / 2;

	/* depthwise conv of the key slice, padded rows and the outside zero */
#pragma omp parallel for schedule(static)
	for (int bt = 0; bt < N; bt++) {
		int b = bt / T, t = bt % T;
		float *kd = s->kd + (size_t)bt * D;
		for (int ch = 0; ch < D; ch++)
			kd[ch] = 0;
		for (int u = 0; u < K; u++) {
			int r = t + u - P;
			if (r < 0 || r >= T || mask[(size_t)b * T + r] == 0)
				continue;
			const float *kr = k + ((size_t)b * T + r) * A;
			for (int ch = 0; ch < D; ch++)
				kd[ch] += w->dw[ch * K + u] * kr[ch];
		}
	}
	/* span-aware key, gated by the query; the tap logits; the conv value */
	matmul_forward(s->ks, s->kd, w->pw, w->beta, N, D, D);
	mm_forward(s->u, D, v, A, w->wu, w->bu, N, D, D);
#pragma omp parallel for schedule(static)
	for (int bt = 0; bt < N; bt++) {
		const float *ks = s->ks + (size_t)bt * D, *qr = q + (size_t)bt * A;
		float *al = s->alpha + (size_t)bt * K, mx = -INFINITY;
		double sum = 0;
		for (int u = 0; u < K; u++) {
			double z = w->bk[u];
			for (int e = 0; e < D; e++)
				z += (double)w->wk[u * D + e] * ks[e] * qr[e];
			al[u] = (float)z;
			mx = al[u] > mx ? al[u] : mx;
		}
		for (int u = 0; u < K; u++) {
			al[u] = expf(al[u] - mx);
			sum += al[u];
		}
		for (int u = 0; u < K; u++)
			al[u] = (float)(al[u] / sum);
		if (mask[bt] == 0)
			memset(s->u + (size_t)bt * D, 0, sizeof *s->u * (size_t)D);
	}
	/* out[t] = sum over taps of alpha[t, u] u[t + u - P] */
#pragma omp parallel for schedule(static)
	for (int bt = 0; bt < N; bt++) {
		int b = bt / T, t = bt % T;
		const float *al = s->alpha + (size_t)bt * K;
		float *o = out + (size_t)bt * A;
		for (int e = 0; e < D; e++)
			o[e] = 0;
		for (int u = 0; u < K; u++) {
			int r = t + u - P;
			if (r < 0 || r >= T)
				continue;
			const float *ur = s->u + ((size_t)b * T + r) * D;
			for (int e = 0; e < D; e++)
				o[e] += al[u] * ur[e];
		}
	}
}

void
dsc_backward(float *dq, float *dk, float *dv, const struct dsc_grads *g, const float *dout,
             const struct dsc_saved *s, const float *q, const float *k, const float *v,
             const struct dsc_params *w, const float *mask, float *scratch, int B, int T, int A, int D, int K)
{
	int N = B * T, P = (K - 1) / 2;
	float *dz = scratch;              /* (N, K): the tap logits' gradient */
	float *du = dz + (size_t)N * K;   /* (N, D): the conv value's */
	float *dks = du + (size_t)N * D;  /* (N, D): the span-aware key's */
	float *dkd = dks + (size_t)N * D; /* (N, D): the depthwise result's */
	float *gt = dkd + (size_t)N * D;  /* (N, D): the gate ks * q */

	/* tap weights, through their softmax; the gate */
#pragma omp parallel for schedule(static)
	for (int bt = 0; bt < N; bt++) {
		int b = bt / T, t = bt % T;
		const float *al = s->alpha + (size_t)bt * K, *go = dout + (size_t)bt * A;
		double da[NN_MAX_TAPS], dot = 0;
		for (int u = 0; u < K; u++) {
			int r = t + u - P;
			da[u] = 0;
			if (r >= 0 && r < T) {
				const float *ur = s->u + ((size_t)b * T + r) * D;
				for (int e = 0; e < D; e++)
					da[u] += (double)go[e] * ur[e];
			}
			dot += al[u] * da[u];
		}
		for (int u = 0; u < K; u++)
			dz[(size_t)bt * K + u] = (float)(al[u] * (da[u] - dot));
		for (int e = 0; e < D; e++)
			gt[(size_t)bt * D + e] = s->ks[(size_t)bt * D + e] * q[(size_t)bt * A + e];
	}
	/* du[r] = sum over the (t, u) with t + u - P = r of alpha[t, u] dout[t]; zero on padded rows */
#pragma omp parallel for schedule(static)
	for (int br = 0; br < N; br++) {
		int b = br / T, r = br % T;
		float *d = du + (size_t)br * D;
		for (int e = 0; e < D; e++)
			d[e] = 0;
		if (mask[br] == 0)
			continue;
		for (int u = 0; u < K; u++) {
			int t = r - u + P;
			if (t < 0 || t >= T)
				continue;
			float a = s->alpha[((size_t)b * T + t) * K + u];
			const float *go = dout + ((size_t)b * T + t) * A;
			for (int e = 0; e < D; e++)
				d[e] += a * go[e];
		}
	}
	/* kernel generator: dwk += dz^T gt, dbk += sum dz, d gt = dz wk */
	memset(dks, 0, sizeof *dks * (size_t)N * D);
	matmul_backward(dks, g->wk, g->bk, dz, gt, w->wk, N, D, K);
	/* the gate: dq += d gt * ks, dks = d gt * q */
#pragma omp parallel for schedule(static)
	for (int bt = 0; bt < N; bt++)
		for (int e = 0; e < D; e++) {
			float dg = dks[(size_t)bt * D + e];
			dq[(size_t)bt * A + e] += dg * s->ks[(size_t)bt * D + e];
			dks[(size_t)bt * D + e] = dg * q[(size_t)bt * A + e];
		}
	/* pointwise conv and its bias */
	memset(dkd, 0, sizeof *dkd * (size_t)N * D);
	matmul_backward(dkd, g->pw, g->beta, dks, s->kd, w->pw, N, D, D);
	/* depthwise conv: weights by channel, the key slice by row (padded rows get nothing) */
#pragma omp parallel for schedule(static)
	for (int ch = 0; ch < D; ch++)
		for (int u = 0; u < K; u++) {
			double acc = 0;
			for (int bt = 0; bt < N; bt++) {
				int b = bt / T, r = bt % T + u - P;
				if (r < 0 || r >= T || mask[(size_t)b * T + r] == 0)
					continue;
				acc += (double)dkd[(size_t)bt * D + ch] * k[((size_t)b * T + r) * A + ch];
			}
			g->dw[ch * K + u] += (float)acc;
		}
#pragma omp parallel for schedule(static)
	for (int br = 0; br < N; br++) {
		int b = br / T, r = br % T;
		if (mask[br] == 0)
			continue;
		for (int u = 0; u < K; u++) {
			int t = r - u + P;
			if (t < 0 || t >= T)
				continue;
			const float *d = dkd + ((size_t)b * T + t) * D;
			for (int ch = 0; ch < D; ch++)
				dk[(size_t)br * A + ch] += d[ch] * w->dw[ch * K + u];
		}
	}
	/* the conv value: dwu += du^T v, dbu += sum du, dv += du wu */
	mm_backward(dv, A, g->wu, g->bu, du, D, v, A, w->wu, N, D, D);
}

/* ---- loss ---- */

double
crossentropy_forward_backward(float *dlogits, const float *logits, const int32_t *labels, int N, int C,
                              float smoothing, int *count)
{
	double ls = smoothing; /* the target: 1 - ls on the label, ls / C on every class */
	double loss = 0;
	int n = 0;

	for (int i = 0; i < N; i++)
		n += labels[i] >= 0;
	*count = n;
	double part[256] = {0}; /* per thread, added in thread order: the same bits for a thread count */
#pragma omp parallel num_threads(omp_get_max_threads() < 256 ? omp_get_max_threads() : 256)
	{
		double tl = 0;
#pragma omp for schedule(static)
		for (int i = 0; i < N; i++) {
			const float *z = logits + (size_t)i * C;
			float mx = -INFINITY;
			double sum = 0;
			if (labels[i] < 0) {
				if (dlogits)
					memset(dlogits + (size_t)i * C, 0, sizeof *dlogits * (size_t)C);
				continue;
			}
			for (int c = 0; c < C; c++)
				mx = z[c] > mx ? z[c] : mx;
			for (int c = 0; c < C; c++)
				sum += exp((double)z[c] - mx);
			tl += log(sum) + mx - z[labels[i]];
			if (ls > 0) { /* (1 - ls) (lse - z_y) + ls (lse - mean z) */
				double zs = 0;
				for (int c = 0; c < C; c++)
					zs += z[c];
				tl += ls * (z[labels[i]] - zs / C);
			}
			if (dlogits)
				for (int c = 0; c < C; c++)
					dlogits[(size_t)i * C + c] =
					    (float)((exp((double)z[c] - mx) / sum -
					             (1 - ls) * (c == labels[i]) - ls / C) /
					            n);
		}
		part[omp_get_thread_num()] = tl;
	}
	for (int t = 0; t < 256; t++)
		loss += part[t];
	return n ? loss / n : 0;
}

/* ---- OpenBLAS ---- */

int
nn_blas_setup(char **argv)
{
	const char *want = NULL, *core = openblas_get_corename();

	openblas_set_num_threads(1);
	if (getenv("OPENBLAS_CORETYPE") || !core || strcasecmp(core, "prescott") != 0)
		return 0;
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
		want = "SkylakeX";
	else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		want = "Haswell";
	if (!want || !argv)
		return 0;
	setenv("OPENBLAS_CORETYPE", want, 1);
	execv("/proc/self/exe", argv);
	unsetenv("OPENBLAS_CORETYPE"); /* the exec failed: go on with the slow kernels */
	return -1;
}

void
nn_flush_denormals(void)
{
#pragma omp parallel
	_mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
	_mm_setcsr(_mm_getcsr() | 0x8040);
}
