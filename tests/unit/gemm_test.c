/*
 * gemm_test.c: lib/gemm.c against a naive product in double, for every transposition, with alpha,
 * beta and bias, on shapes that leave partial tiles (rows not a multiple of 6, columns not a multiple
 * of 64, k over several blocks of 128) and leading dimensions wider than the rows; the elements of C
 * beyond its N columns must stay as they were, and beta 0 must ignore what C held (NaN here).
 * Also that the result does not depend on the rows a call is given (a thread's share of a product),
 * that gemm_sparse and gemm_sparse_t give gemm's results from a sparse operand's nonzeros, that
 * gemm_tn_sum gives gemm's A^T B with A's column sums, that gemm_pack and gemm_run give gemm's
 * and gemm_epilogue's bits in pieces of rows, gemm_tn_sum_run gemm_tn_sum's and gemm_run's, and
 * gemm_tn_sum_run_team on 2 threads gemm_tn_sum_run_n's on each thread's rows, whichever thread
 * writes which block's input gradient.
 *
 * Prints TAP; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm.h"
#include "rng.h"
#include "tap.h"

static struct rng R;

static float *
randv(size_t n)
{
	float *x = malloc(sizeof *x * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		x[i] = (float)rng_normal(&R);
	return x;
}

/* The worst |got - want| / (sum of |terms| + 1) over the M x N elements; -1 if a pad changed. */
static double
one(int ta, int tb, int M, int N, int K, float alpha, float beta, int bias)
{
	int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
	float *A = randv((size_t)(ta ? K : M) * lda), *B = randv((size_t)(tb ? N : K) * ldb),
	      *C = randv((size_t)M * ldc), *b = bias ? randv((size_t)N) : NULL;
	float *C0 = malloc(sizeof *C0 * (size_t)M * ldc);
	double worst = 0;

	if (beta == 0.0f)
		for (int i = 0; i < M; i++)
			for (int j = 0; j < N; j++)
				C[(size_t)i * ldc + j] = NAN;
	memcpy(C0, C, sizeof *C0 * (size_t)M * ldc);
	gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, b, C, ldc);
	for (int i = 0; i < M; i++) {
		for (int j = 0; j < N; j++) {
			double s = 0, mag = 0, want, c0 = C0[(size_t)i * ldc + j];
			for (int k = 0; k < K; k++) {
				double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
				double x = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
				s += a * x;
				mag += fabs(a * x);
			}
			want = alpha * s + (beta == 0.0f ? 0 : beta * c0) + (b ? b[j] : 0);
			mag = fabs(alpha) * mag + (beta == 0.0f ? 0 : fabs(beta * c0)) + (b ? fabs(b[j]) : 0);
			double d = fabs(C[(size_t)i * ldc + j] - want) / (mag + 1);
			if (!(d <= worst)) /* NaN too */
				worst = isnan(d) ? INFINITY : d;
		}
		for (int j = N; j < ldc; j++)
			if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof *C) != 0)
				worst = -1;
	}
	free(A), free(B), free(C), free(C0), free(b);
	return worst;
}

/* The thread team_one holds back (-1: none) */
static int held = -1;

/* gemm_team_hook's: on the held thread, each block waits (up to a second) for the other thread to
 * take its input gradient, so that it does, however the two are scheduled */
static void
wait_for_help(void)
{
	long h = gemm_team_stats();

	if (omp_get_thread_num() != held)
		return;
	for (int i = 0; i < 100000 && gemm_team_stats() == h; i++)
		nanosleep(&(struct timespec){.tv_nsec = 10000}, NULL);
}

/*
 * gemm_tn_sum_run_team on 2 threads over K rows, n = 2 layers, D apart (added to) or in B's place
 * (through a factor), against gemm_tn_sum_run_n on each thread's rows, thread hold (or none: -1)
 * starting 100 ms late and then waiting at each block for the other, done with its rows, to write its
 * input gradient (wait_for_help). Returns 1 where every bit agrees; *helped: the blocks the other
 * wrote.
 */
static int
team_one(int M, int N, int K, int inplace, int hold, long *helped)
{
	enum { n = 2 };
	int lda = M + 3, ldb = N + 5, ldc = N + 7, ldd = inplace ? ldb : N + 1, same = 1;
	float *A[n], *W[n], *C1[2][n], *C2[2][n], *s1[2][n], *s2[2][n];
	const float *wp[n];
	float *B = randv((size_t)K * ldb), *D = randv((size_t)K * ldd), *mul = randv((size_t)K * ldd);
	float *B1 = malloc(sizeof *B1 * (size_t)K * ldb), *B2 = malloc(sizeof *B2 * (size_t)K * ldb);
	float *D1 = malloc(sizeof *D1 * (size_t)K * ldd), *D2 = malloc(sizeof *D2 * (size_t)K * ldd);
	float dbeta = inplace ? 0.0f : 1.0f;
	struct gemm_epi e = {.tau = -1.0f, .mul = mul};

	for (int j = 0; j < n; j++) {
		A[j] = randv((size_t)K * lda), W[j] = randv((size_t)M * N);
		wp[j] = gemm_pack_slot(j, 0, N, M, W[j], N);
		for (int t = 0; t < 2; t++) {
			C1[t][j] = randv((size_t)M * ldc), s1[t][j] = randv((size_t)M);
			C2[t][j] = malloc(sizeof(float) * (size_t)M * ldc);
			s2[t][j] = malloc(sizeof(float) * (size_t)M);
			memcpy(C2[t][j], C1[t][j], sizeof(float) * (size_t)M * ldc);
			memcpy(s2[t][j], s1[t][j], sizeof(float) * (size_t)M);
		}
	}
	memcpy(B1, B, sizeof *B * (size_t)K * ldb), memcpy(B2, B, sizeof *B * (size_t)K * ldb);
	if (inplace)
		memcpy(D, B, sizeof *D * (size_t)K * ldd);
	memcpy(D1, D, sizeof *D * (size_t)K * ldd), memcpy(D2, D, sizeof *D * (size_t)K * ldd);
	for (int t = 0; t < 2; t++) {
		int lo = (int)((long)K * t / 2), hi = (int)((long)K * (t + 1) / 2);
		const float *a[n];
		struct gemm_epi et = e;
		et.mul = mul + (size_t)lo * ldd;
		for (int j = 0; j < n; j++)
			a[j] = A[j] + (size_t)lo * lda;
		gemm_tn_sum_run_n(n, M, N, hi - lo, a, lda, B1 + (size_t)lo * ldb, ldb, t == 0 ? 1.0f : 0.0f,
		                  C1[t], ldc, s1[t], wp, N, dbeta, (inplace ? B1 : D1) + (size_t)lo * ldd,
		                  ldd, inplace ? &et : NULL);
	}
	long h0 = gemm_team_stats();
	held = hold;
	gemm_team_hook(hold >= 0 ? wait_for_help : NULL);
	if (gemm_team(2, K, N) != 0)
		same = 0;
	else {
#pragma omp parallel num_threads(2)
		{
			int t = omp_get_thread_num();
			if (t == hold)
				nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
			gemm_tn_sum_run_team(n, M, N, K, (const float *const *)A, lda, B2, ldb,
			                     t == 0 ? 1.0f : 0.0f, C2[t], ldc, s2[t], wp, N, dbeta,
			                     inplace ? B2 : D2, ldd, inplace ? &e : NULL);
		}
	}
	gemm_team_hook(NULL);
	*helped = gemm_team_stats() - h0;
	for (int j = 0; j < n; j++)
		for (int t = 0; t < 2; t++) {
			same &= memcmp(C1[t][j], C2[t][j], sizeof(float) * (size_t)M * ldc) == 0;
			same &= memcmp(s1[t][j], s2[t][j], sizeof(float) * (size_t)M) == 0;
			free(C1[t][j]), free(C2[t][j]), free(s1[t][j]), free(s2[t][j]);
		}
	same &= memcmp(B1, B2, sizeof *B1 * (size_t)K * ldb) == 0;
	same &= memcmp(D1, D2, sizeof *D1 * (size_t)K * ldd) == 0;
	for (int j = 0; j < n; j++)
		free(A[j]), free(W[j]);
	free(B), free(D), free(mul), free(B1), free(B2), free(D1), free(D2);
	return same;
}

/* nn.c's dropout rule, written out here: element i of the site of 32-bit key k is kept where 16 bits
 * of murmur3's finaliser of (i / 2) ^ k, the low half for even i and the high for odd, are below
 * thr */
static int
rule_kept(uint32_t k, uint32_t i, uint32_t thr)
{
	uint32_t x = (i >> 1) ^ k;
	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return ((i & 1u ? x >> 16 : x) & 0xffffu) < thr;
}

/* gemm_epilogue's dropout alone against the product times the rule's mask, on rows of N (odd or
 * even) from an odd or even base: the first element of a run of 64 decided by either half */
static int
epilogue_drop(int M, int N, int K, size_t base)
{
	float *A = randv((size_t)M * K), *B = randv((size_t)K * N);
	float *C = calloc((size_t)M * N, sizeof *C), *E = calloc((size_t)M * N, sizeof *E);
	struct gemm_epi e = {.tau = -1.0f, .dkey = 0x9e3779b9u, .dthr = 45000, .dscale = 1.5f, .base = base};
	int same = 1;

	gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, NULL, C, N);
	same = gemm_epilogue(0, M, N, K, A, K, B, N, NULL, E, N, &e) == 0;
	for (size_t i = 0; same && i < (size_t)M * N; i++)
		same = E[i] == (rule_kept(e.dkey, (uint32_t)(base + i), e.dthr) ? C[i] * 1.5f : 0.0f);
	free(A), free(B), free(C), free(E);
	return same;
}

int
main(void)
{
	static const int shapes[][3] = {{1, 1, 1},      {5, 7, 3},      {6, 64, 128},
	                                {13, 65, 129},  {128, 64, 128}, {7, 130, 300},
	                                {29, 128, 512}, {2, 200, 64},   {70, 96, 1030}};
	int nshape = (int)(sizeof shapes / sizeof shapes[0]);

	for (int m = 1; m >= 0; m--) {
		if (gemm_select(m) != m)
			continue; /* no AVX-512 here: OpenBLAS alone */
		rng_seed(&R, 7);
		printf("# gemm runs %s\n", m ? "its own AVX-512 kernel" : "OpenBLAS");
		for (int s = 0; s < nshape; s++)
			for (int ta = 0; ta < 2; ta++)
				for (int tb = 0; tb < 2; tb++) {
					int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
					double w1 = one(ta, tb, M, N, K, 1.0f, 0.0f, 1),
					       w2 = one(ta, tb, M, N, K, 1.0f, 1.0f, 0),
					       w3 = one(ta, tb, M, N, K, 0.125f, 0.5f, 1),
					       w4 = one(ta, tb, M, N, K, 1.0f, -2.0f, 1);
					check(w1 >= 0 && w1 < 1e-6 && w2 >= 0 && w2 < 1e-6 && w3 >= 0 &&
					          w3 < 1e-6 && w4 >= 0 && w4 < 1e-6,
					      "gemm %c%c M %d N %d K %d: bias, beta 0 over NaN %.1e; beta 1 "
					      "%.1e; alpha 1/8, beta "
					      "1/2, bias %.1e; beta -2, bias %.1e (< 1e-6 of the terms' "
					      "magnitude; pads intact)",
					      ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, w1, w2, w3, w4);
				}

		/* gemm_tn_sum: gemm's A^T B bit for bit, and A's column sums added row after row */
		for (int s = 0; s < 3; s++) {
			static const int tn[][3] = {{70, 96, 1030}, {7, 130, 300}, {29, 128, 100}};
			int M = tn[s][0], N = tn[s][1], K = tn[s][2], lda = M + 3, ldb = N + 5, ldc = N + 7;
			float *A = randv((size_t)K * lda), *B = randv((size_t)K * ldb),
			      *C0 = randv((size_t)M * ldc), *sum = randv((size_t)M);
			float *C = malloc(sizeof *C * (size_t)M * ldc),
			      *want = malloc(sizeof *want * (size_t)M);
			memcpy(C, C0, sizeof *C * (size_t)M * ldc);
			memcpy(want, sum, sizeof *want * (size_t)M);
			gemm(1, 0, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, NULL, C0, ldc);
			for (int k = 0; k < K; k++)
				for (int i = 0; i < M; i++)
					want[i] += A[(size_t)k * lda + i];
			gemm_tn_sum(M, N, K, A, lda, B, ldb, 1.0f, C, ldc, sum);
			check(memcmp(C, C0, sizeof *C * (size_t)M * ldc) == 0 &&
			          memcmp(sum, want, sizeof *sum * (size_t)M) == 0,
			      "gemm_tn_sum M %d N %d K %d: gemm's product and the column sums of A in row "
			      "order, bit for bit",
			      M, N, K);
			free(A), free(B), free(C0), free(C), free(sum), free(want);
		}

		/* gemm_tn_sum_run: gemm_tn_sum's and then gemm_run's bits, with D apart (added to) or D
		 * in B's place (overwritten, through a factor), over blocks of K and over K too short
		 * for them */
		for (int s = 0; s < 4 && m; s++) {
			static const int tr[][4] = {
			    {70, 96, 1030, 0}, {64, 128, 700, 1}, {29, 128, 200, 1}, {7, 64, 300, 0}};
			int M = tr[s][0], N = tr[s][1], K = tr[s][2], inplace = tr[s][3];
			int lda = M + 3, ldb = N + 5, ldc = N + 7, ldd = inplace ? ldb : N + 1;
			float *A = randv((size_t)K * lda), *B = randv((size_t)K * ldb),
			      *W = randv((size_t)M * N), *C1 = randv((size_t)M * ldc),
			      *sum1 = randv((size_t)M), *D1 = randv((size_t)K * ldd),
			      *mul = randv((size_t)K * ldd);
			float *C2 = malloc(sizeof *C2 * (size_t)M * ldc),
			      *sum2 = malloc(sizeof *sum2 * (size_t)M),
			      *B2 = malloc(sizeof *B2 * (size_t)K * ldb),
			      *D2 = malloc(sizeof *D2 * (size_t)K * ldd);
			struct gemm_epi e1 = {.tau = -1.0f, .mul = mul}, e2 = e1;
			const float *wp;
			memcpy(C2, C1, sizeof *C2 * (size_t)M * ldc);
			memcpy(sum2, sum1, sizeof *sum2 * (size_t)M);
			memcpy(B2, B, sizeof *B2 * (size_t)K * ldb);
			if (inplace)
				memcpy(D1, B, sizeof *D1 * (size_t)K * ldd);
			memcpy(D2, D1, sizeof *D2 * (size_t)K * ldd);
			gemm_tn_sum(M, N, K, A, lda, B, ldb, 1.0f, C1, ldc, sum1);
			wp = gemm_pack(0, N, M, W, N);
			gemm_run(K, N, M, A, lda, wp, inplace ? 0.0f : 1.0f, NULL, D1, ldd,
			         inplace ? &e1 : NULL);
			gemm_tn_sum_run(M, N, K, A, lda, B2, ldb, 1.0f, C2, ldc, sum2, wp, N,
			                inplace ? 0.0f : 1.0f, inplace ? B2 : D2, ldd, inplace ? &e2 : NULL);
			check(wp && memcmp(C1, C2, sizeof *C1 * (size_t)M * ldc) == 0 &&
			          memcmp(sum1, sum2, sizeof *sum1 * (size_t)M) == 0 &&
			          memcmp(D1, inplace ? B2 : D2, sizeof *D1 * (size_t)K * ldd) == 0,
			      "gemm_tn_sum_run M %d N %d K %d, %s: gemm_tn_sum's and gemm_run's bits", M, N,
			      K, inplace ? "D in B's place through a factor" : "D apart, added to");
			free(A), free(B), free(W), free(C1), free(sum1), free(D1), free(mul), free(C2),
			    free(sum2), free(B2), free(D2);
		}

		/* gemm_tn_sum_run_team: gemm_tn_sum_run_n's bits on each thread's rows, with no thread
		 * held back, and with each in turn, the other then writing the input gradient of the
		 * held one's blocks (all 8 of them, unless the other took over 100 ms for its own) */
		for (int s = 0; s < 6 && m; s++) {
			int inplace = s % 2, hold = s / 2 - 1;
			long helped;
			int ok = team_one(64, 128, 2 * 7 * 128 + 100, inplace, hold, &helped);
			check(ok && (hold < 0 || helped > 0),
			      "gemm_tn_sum_run_team, 2 threads, %s, %s: gemm_tn_sum_run_n's bits on each "
			      "thread's rows (%ld blocks' input gradient by the other thread)",
			      inplace ? "D in B's place through a factor" : "D apart, added to",
			      hold < 0 ? "neither held back"
			      : hold   ? "thread 1 held back"
			               : "thread 0 held back",
			      helped);
		}

		/* op(B) packed once (gemm_pack) and run in pieces of rows (gemm_run): gemm's bits, and
		 * with an epilogue (dropout, a residual, a factor) gemm_epilogue's */
		for (int tb = 0; tb < 2 && m; tb++) {
			int M = 100, N = 128, K = 70;
			float *A = randv((size_t)M * K), *B = randv((size_t)K * N), *b = randv(N),
			      *res = randv((size_t)M * N), *mul = randv((size_t)M * N);
			float *C1 = calloc((size_t)M * N, sizeof *C1),
			      *C2 = calloc((size_t)M * N, sizeof *C2),
			      *E1 = calloc((size_t)M * N, sizeof *E1),
			      *E2 = calloc((size_t)M * N, sizeof *E2);
			struct gemm_epi e1 = {
			    .tau = -1.0f, .dkey = 5, .dthr = 45000, .dscale = 1.25f, .res = res, .mul = mul};
			const float *bp;
			gemm(0, tb, M, N, K, 1.0f, A, K, B, tb ? K : N, 0.0f, b, C1, N);
			gemm_epilogue(tb, M, N, K, A, K, B, tb ? K : N, b, E1, N, &e1);
			bp = gemm_pack(tb, N, K, B, tb ? K : N);
			for (int lo = 0; bp && lo < M; lo += 37) {
				int rows = M - lo < 37 ? M - lo : 37;
				struct gemm_epi e2 = e1;
				e2.base = (size_t)lo * N, e2.res = res + (size_t)lo * N,
				e2.mul = mul + (size_t)lo * N;
				gemm_run(rows, N, K, A + (size_t)lo * K, K, bp, 0.0f, b, C2 + (size_t)lo * N,
				         N, NULL);
				gemm_run(rows, N, K, A + (size_t)lo * K, K, bp, 0.0f, b, E2 + (size_t)lo * N,
				         N, &e2);
			}
			check(bp && memcmp(C1, C2, sizeof *C1 * (size_t)M * N) == 0 &&
			          memcmp(E1, E2, sizeof *E1 * (size_t)M * N) == 0,
			      "gemm_pack and gemm_run (B%s) in pieces of 37 rows: gemm's and gemm_epilogue's "
			      "bits",
			      tb ? " transposed" : "");
			free(A), free(B), free(b), free(res), free(mul), free(C1), free(C2), free(E1),
			    free(E2);
		}

		if (m) {
			int ok = 1;
			for (size_t base = 0; base < 4; base++)
				ok &= epilogue_drop(13, 64, 40, base) && epilogue_drop(9, 129, 17, base) &&
				      epilogue_drop(7, 200, 70, 1000001 + base);
			check(
			    ok,
			    "gemm_epilogue's dropout keeps what nn.c's rule keeps (the pairs' hash halves), "
			    "times dscale, from odd and even bases and rows (N 64, 129, 200)");
		}

		/* rows split anywhere give the same bits: each element sums its own k in order (the own
		 * kernel's promise; OpenBLAS's blocking depends on the rows) */
		if (m) {
			int M = 100, N = 96, K = 300;
			float *A = randv((size_t)M * K), *B = randv((size_t)K * N), *b = randv(N);
			float *C1 = calloc((size_t)M * N, sizeof *C1),
			      *C2 = calloc((size_t)M * N, sizeof *C2);
			gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, b, C1, N);
			gemm(0, 0, 37, N, K, 1.0f, A, K, B, N, 0.0f, b, C2, N);
			gemm(0, 0, M - 37, N, K, 1.0f, A + (size_t)37 * K, K, B, N, 0.0f, b,
			     C2 + (size_t)37 * N, N);
			check(memcmp(C1, C2, sizeof *C1 * (size_t)M * N) == 0,
			      "gemm: rows 0-36 and 37-99 apart equal all 100 at once, bit for bit");
			free(A), free(B), free(b), free(C1), free(C2);
		}
	}

	/* threads of an outer team, each inside a nested team of its own (where every one of them
	 * is thread 0), multiply different B at once: each must keep its own packed copy */
	if (gemm_select(1)) {
		enum { T = 4, M = 30, N = 128, K = 200 };
		float *A = randv((size_t)M * K), *B = randv((size_t)T * K * N),
		      *C = calloc((size_t)T * M * N, sizeof *C);
		float *want = calloc((size_t)T * M * N, sizeof *want);
		int same = 1;

		for (int t = 0; t < T; t++)
			gemm(0, 0, M, N, K, 1.0f, A, K, B + (size_t)t * K * N, N, 0.0f, NULL,
			     want + (size_t)t * M * N, N);
		for (int rep = 0; rep < 20 && same; rep++) {
#pragma omp parallel for num_threads(T)
			for (int t = 0; t < T; t++)
#pragma omp parallel num_threads(1)
				gemm(0, 0, M, N, K, 1.0f, A, K, B + (size_t)t * K * N, N, 0.0f, NULL,
				     C + (size_t)t * M * N, N);
			same = memcmp(C, want, sizeof *C * (size_t)T * M * N) == 0;
		}
		check(same, "gemm: four threads at once, each in a nested team of one, get the products they "
		            "get alone");
		free(A), free(B), free(C), free(want);
	}
	/* the product over a sparse operand's nonzeros: gemm's sums bit for bit, overwritten or added
	 * to, on widths of partial vectors and of several chunks of 128, with NaN and -0 among the
	 * elements, and nothing written beside C's columns */
	if (gemm_select(1)) {
		static const int sp[][3] = {
		    {1, 1, 1}, {9, 130, 37}, {33, 16, 64}, {20, 513, 200}, {7, 64, 4096}};
		for (int si = 0; si < (int)(sizeof sp / sizeof sp[0]); si++)
			for (int add = 0; add < 2; add++) {
				int M = sp[si][0], N = sp[si][1], K = sp[si][2], lds = K + 2, ldc = N + 3;
				float *S = randv((size_t)M * lds), *B = randv((size_t)K * N),
				      *C = randv((size_t)M * ldc);
				float *want = malloc(sizeof *want * (size_t)M * ldc);
				int same;
				for (size_t i = 0; i < (size_t)M * lds; i++)
					if (rng_below(&R, 100) >= 8)
						S[i] = rng_below(&R, 50) == 0 ? -0.0f : 0.0f;
				if (M > 1)
					S[(size_t)1 * lds] =
					    NAN; /* a NaN is a nonzero: it spreads as in gemm */
				memcpy(want, C, sizeof *C * (size_t)M * ldc);
				gemm(0, 0, M, N, K, 1.0f, S, lds, B, N, add ? 1.0f : 0.0f, NULL, want, ldc);
				same = gemm_sparse(M, N, K, S, lds, B, N, add, C, ldc) == 0;
				for (size_t i = 0; i < (size_t)M * ldc; i++)
					same &= memcmp(&C[i], &want[i], sizeof *C) == 0 ||
					        (C[i] == 0 && want[i] == 0) ||
					        (isnan(C[i]) && isnan(want[i]));
				check(
				    same,
				    "gemm_sparse M %d N %d K %d (%s): gemm's product bit for bit, about 8%% "
				    "nonzeros",
				    M, N, K, add ? "added to C" : "C overwritten");
				free(S), free(B), free(C), free(want);
			}
		/* C += S^T B on a range of C's rows, against gemm's transposed product */
		for (int si = 0; si < (int)(sizeof sp / sizeof sp[0]); si++) {
			int M = sp[si][0], N = sp[si][1], K = sp[si][2], lds = M + 2, ldc = N + 3;
			int lo = M / 3, hi = M - M / 4, same;
			float *S = randv((size_t)K * lds), *B = randv((size_t)K * N),
			      *C = randv((size_t)M * ldc);
			float *want = malloc(sizeof *want * (size_t)M * ldc);
			for (size_t i = 0; i < (size_t)K * lds; i++)
				if (rng_below(&R, 100) >= 8)
					S[i] = rng_below(&R, 50) == 0 ? -0.0f : 0.0f;
			if (K > 2 && hi > lo)
				S[(size_t)2 * lds + lo] = NAN;
			memcpy(want, C, sizeof *C * (size_t)M * ldc);
			if (hi > lo)
				gemm(1, 0, hi - lo, N, K, 1.0f, S + lo, lds, B, N, 1.0f, NULL,
				     want + (size_t)lo * ldc, ldc);
			same = gemm_sparse_t(lo, hi, N, K, S, lds, B, N, C, ldc) == (hi > lo ? 0 : -1);
			for (size_t i = 0; i < (size_t)M * ldc; i++)
				same &= memcmp(&C[i], &want[i], sizeof *C) == 0 ||
				        (C[i] == 0 && want[i] == 0) || (isnan(C[i]) && isnan(want[i]));
			check(same,
			      "gemm_sparse_t rows %d-%d of %d, N %d K %d: C += S^T B as gemm sums it, bit "
			      "for bit, rows outside untouched",
			      lo, hi, M, N, K);
			free(S), free(B), free(C), free(want);
		}
	}
	/* the transpose: whole blocks and the edges beside and below them, nothing written past C
	 * columns of dst's rows */
	for (int m = 0; m < 2; m++) {
		static const int tr[][2] = {{1, 1}, {16, 16}, {40, 64}, {37, 21}, {128, 70}};
		int same = 1;
		gemm_select(m);
		for (int ti = 0; ti < (int)(sizeof tr / sizeof tr[0]); ti++) {
			int Rr = tr[ti][0], Cc = tr[ti][1], lds = Cc + 3, ldd = Rr + 5;
			float *src = randv((size_t)Rr * lds), *dst = randv((size_t)Cc * ldd);
			float *was = malloc(sizeof *was * (size_t)Cc * ldd);
			memcpy(was, dst, sizeof *was * (size_t)Cc * ldd);
			gemm_transpose(dst, ldd, src, lds, Rr, Cc);
			for (int c = 0; c < Cc; c++)
				for (int r = 0; r < ldd; r++)
					same &= memcmp(&dst[(size_t)c * ldd + r],
					               r < Rr ? &src[(size_t)r * lds + c]
					                      : &was[(size_t)c * ldd + r],
					               sizeof *dst) == 0;
			free(src), free(dst), free(was);
		}
		check(same, "gemm_transpose (%s): 5 shapes, whole blocks and edges, nothing beside",
		      m ? "AVX-512 blocks" : "plain loops");
	}
	gemm_select(1);
	return tap_done();
}
