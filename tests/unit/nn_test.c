/*
 * nn_test.c: the kernels of lib/nn.c against naive references written here or beside them, and every
 * backward against central finite differences of a random projection of its forward's output
 * (f = sum out * R). Finite differences in fp32 carry rounding noise, so a gradient passes when every
 * element is within 1e-3 of its finite difference, relative to the array's largest gradient; real
 * mistakes (a missing term, a wrong index) are off by far more.
 *
 * Prints TAP; exits 1 on any failure.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "rng.h"
#include "tap.h"

static struct rng R;

static float *
randv(size_t n, double scale)
{
	float *x = malloc(sizeof *x * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(scale * rng_normal(&R));
	return x;
}

static float *
zeros(size_t n)
{
	return calloc(n ? n : 1, sizeof(float));
}

static double
dot(const float *a, const float *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* The largest |a - b| relative to the largest |b| (and at least tiny). */
static double
rel_diff(const float *a, const float *b, size_t n)
{
	double m = 1e-12, d = 0;
	for (size_t i = 0; i < n; i++) {
		m = fabs(b[i]) > m ? fabs(b[i]) : m;
		d = fabs(a[i] - b[i]) > d ? fabs(a[i] - b[i]) : d;
	}
	return d / m;
}

/* f at x[i] + d, x[i] restored after */
static double
f_at(double (*f)(void *), void *ctx, float *x, size_t i, double d)
{
	float x0 = x[i];
	double y;

	x[i] = x0 + (float)d;
	y = f(ctx);
	x[i] = x0;
	return y;
}

/* Central differences of f at every element of x (at most 400, evenly spread) against g, steps eps and
 * 2 eps combined (Richardson) so that the error of the difference is O(eps^4): a DSC head's kernel
 * weights have third derivatives large enough that the plain O(eps^2) difference strayed 1.3e-3
 * from an exact gradient. */
static double
fd_check(double (*f)(void *), void *ctx, float *x, const float *g, size_t n, double eps)
{
	double gmax = 1e-12, worst = 0;
	size_t step = n > 400 ? n / 400 : 1;

	for (size_t i = 0; i < n; i++)
		gmax = fabs(g[i]) > gmax ? fabs(g[i]) : gmax;
	for (size_t i = 0; i < n; i += step) {
		double d1 = f_at(f, ctx, x, i, eps) - f_at(f, ctx, x, i, -eps);
		double d2 = f_at(f, ctx, x, i, 2 * eps) - f_at(f, ctx, x, i, -2 * eps);
		double fd = (8 * d1 - d2) / (12 * eps);
		if (fabs(fd - g[i]) / gmax > worst)
			worst = fabs(fd - g[i]) / gmax;
	}
	return worst;
}

#define TOL 1e-3

/* ---- matmul ---- */

/* Also on 2 and 3 threads with enough rows that the weight gradient splits the batch's rows over
 * the threads and sums their shares. */
static void
test_matmul(void)
{
	static const int shape[][2] = {{37, 1}, {37, 2}, {1100, 2}, {1100, 3}}; /* rows, threads */
	int C = 29, OC = 23, mt = omp_get_max_threads();

	for (int si = 0; si < 4; si++) {
		int N = shape[si][0];
		float *x = randv((size_t)N * C, 1), *w = randv((size_t)OC * C, 1), *b = randv(OC, 1);
		float *o1 = zeros((size_t)N * OC), *o2 = zeros((size_t)N * OC),
		      *dout = randv((size_t)N * OC, 1);
		float *dx1 = zeros((size_t)N * C), *dx2 = zeros((size_t)N * C), *dw1 = zeros((size_t)OC * C),
		      *dw2 = zeros((size_t)OC * C), *db1 = zeros(OC), *db2 = zeros(OC);

		omp_set_num_threads(shape[si][1]);
		matmul_forward(o1, x, w, b, N, C, OC);
		matmul_forward_naive(o2, x, w, b, N, C, OC);
		check(rel_diff(o1, o2, (size_t)N * OC) < 1e-5,
		      "matmul forward equals the naive product (%d x 29 -> 23, %d threads)", N, shape[si][1]);
		for (int k = 0; k < 2; k++) { /* twice: backward accumulates */
			matmul_backward(dx1, dw1, db1, dout, x, w, N, C, OC);
			matmul_backward_naive(dx2, dw2, db2, dout, x, w, N, C, OC);
		}
		check(rel_diff(dx1, dx2, (size_t)N * C) < 1e-5 && rel_diff(dw1, dw2, (size_t)OC * C) < 1e-5 &&
		          rel_diff(db1, db2, OC) < 1e-5,
		      "matmul backward equals the naive one, accumulating (%d rows, %d threads)", N,
		      shape[si][1]);
		free(x), free(w), free(b), free(o1), free(o2), free(dout), free(dx1), free(dx2), free(dw1),
		    free(dw2);
		free(db1), free(db2);
	}
	omp_set_num_threads(mt);
}

/* matmul_backward_input_mul against matmul_backward_input and the multiplication after: the same
 * bits, on widths that fuse (multiples of 64) and one that does not, on 1 thread and 2. */
static void
test_matmul_input_mul(void)
{
	static const int widths[] = {64, 192, 23};
	int N = 45, OC = 70, mt = omp_get_max_threads();

	for (int wi = 0; wi < 3; wi++)
		for (int th = 1; th <= 2; th++) {
			int C = widths[wi];
			size_t n = (size_t)N * C;
			float *dout = randv((size_t)N * OC, 1), *w = randv((size_t)OC * C, 0.2),
			      *der = randv(n, 1), *d1 = randv(n, 1), *d2 = zeros(n);
			omp_set_num_threads(th);
			matmul_backward_input_mul(d1, dout, w, der, N, C, OC);
			matmul_backward_input(d2, dout, w, N, C, OC, 0);
			gelu_backward_der(d2, der, n);
			check(
			    memcmp(d1, d2, sizeof *d1 * n) == 0,
			    "matmul backward input times a derivative in one pass: the separate passes' bits "
			    "(%d x %d -> %d, %d thread(s))",
			    N, OC, C, th);
			free(dout), free(w), free(der), free(d1), free(d2);
		}
	omp_set_num_threads(mt);
}

/* matmul_backward_set, the input gradient overwriting the input, against matmul_backward for the
 * weights and then the input gradient's own call (times a derivative or not): the same bits, on 1, 2
 * and 3 threads, with rows enough that the threads split them and too few */
static void
test_matmul_set(void)
{
	static const int shape[][3] = {{1100, 128, 1}, {1100, 128, 2}, {1100, 128, 3},
	                               {1100, 29, 2},  {300, 128, 2},  {37, 64, 1}}; /* rows, C, threads */
	int OC = 70, mt = omp_get_max_threads();

	for (int si = 0; si < 6; si++)
		for (int mul = 0; mul < 2; mul++) {
			int N = shape[si][0], C = shape[si][1];
			size_t n = (size_t)N * C;
			float *x1 = randv(n, 1), *x2 = malloc(sizeof *x2 * n),
			      *w = randv((size_t)OC * C, 0.2), *dout = randv((size_t)N * OC, 1),
			      *der = mul ? randv(n, 1) : NULL;
			float *dw1 = randv((size_t)OC * C, 1), *dw2 = malloc(sizeof *dw2 * (size_t)OC * C),
			      *db1 = randv(OC, 1), *db2 = malloc(sizeof *db2 * (size_t)OC);
			memcpy(x2, x1, sizeof *x2 * n);
			memcpy(dw2, dw1, sizeof *dw2 * (size_t)OC * C);
			memcpy(db2, db1, sizeof *db2 * (size_t)OC);
			omp_set_num_threads(shape[si][2]);
			matmul_backward_set(x1, dw1, db1, dout, x1, w, der, N, C, OC);
			matmul_backward(NULL, dw2, db2, dout, x2, w, N, C, OC);
			if (mul)
				matmul_backward_input_mul(x2, dout, w, der, N, C, OC);
			else
				matmul_backward_input(x2, dout, w, N, C, OC, 0);
			check(memcmp(x1, x2, sizeof *x1 * n) == 0 &&
			          memcmp(dw1, dw2, sizeof *dw1 * (size_t)OC * C) == 0 &&
			          memcmp(db1, db2, sizeof *db1 * (size_t)OC) == 0,
			      "matmul backward, the input gradient over the input, in one pass: the separate "
			      "calls' bits (%d x %d -> %d%s, %d thread(s))",
			      N, C, OC, mul ? ", times a derivative" : "", shape[si][2]);
			free(x1), free(x2), free(w), free(dout), free(der), free(dw1), free(dw2), free(db1),
			    free(db2);
		}
	omp_set_num_threads(mt);
}

/* matmul_backward_n against n calls of matmul_backward: the same bits, on 1, 2 and 3 threads, with rows
 * enough that the threads split them and too few, with and without biases */
static void
test_matmul_n(void)
{
	static const int shape[][3] = {
	    {1100, 128, 1}, {1100, 128, 2}, {1100, 29, 3}, {300, 64, 2}, {37, 64, 1}};
	int OC = 70, mt = omp_get_max_threads(), n = 3;

	for (int si = 0; si < 5; si++)
		for (int bias = 0; bias < 2; bias++) {
			int N = shape[si][0], C = shape[si][1];
			size_t nx = (size_t)N * C, nw = (size_t)OC * C;
			float *x = randv(nx, 1), *d1 = randv(nx, 1), *d2 = malloc(sizeof *d2 * nx);
			float *dw1[3], *dw2[3], *db1[3], *db2[3], *dout[3], *w[3];
			int same;
			memcpy(d2, d1, sizeof *d2 * nx);
			for (int j = 0; j < n; j++) {
				dout[j] = randv((size_t)N * OC, 1), w[j] = randv(nw, 0.2),
				dw1[j] = randv(nw, 1);
				dw2[j] = malloc(sizeof *dw2[j] * nw);
				memcpy(dw2[j], dw1[j], sizeof *dw2[j] * nw);
				db1[j] = bias ? randv(OC, 1) : NULL;
				db2[j] = bias ? malloc(sizeof *db2[j] * (size_t)OC) : NULL;
				if (bias)
					memcpy(db2[j], db1[j], sizeof *db2[j] * (size_t)OC);
			}
			omp_set_num_threads(shape[si][2]);
			matmul_backward_n(n, d1, dw1, db1, (const float *const *)dout, x,
			                  (const float *const *)w, N, C, OC);
			for (int j = 0; j < n; j++)
				matmul_backward(d2, dw2[j], db2[j], dout[j], x, w[j], N, C, OC);
			same = !memcmp(d1, d2, sizeof *d1 * nx);
			for (int j = 0; j < n; j++)
				same &= !memcmp(dw1[j], dw2[j], sizeof *dw1[j] * nw) &&
				        (!bias || !memcmp(db1[j], db2[j], sizeof *db1[j] * (size_t)OC));
			check(
			    same,
			    "matmul backward of 3 layers on one input in one pass: 3 calls' bits (%d x %d -> "
			    "%d%s, %d thread(s))",
			    N, C, OC, bias ? ", biases" : "", shape[si][2]);
			for (int j = 0; j < n; j++)
				free(dout[j]), free(w[j]), free(dw1[j]), free(dw2[j]), free(db1[j]),
				    free(db2[j]);
			free(x), free(d1), free(d2);
		}
	omp_set_num_threads(mt);
}

/*
 * matmul_backward_ln and matmul_backward_n_ln against their two calls (matmul_backward or _n, then
 * dropout_apply on its input gradient and layernorm_backward_set_drop or _set): the products', the
 * dropped input gradient's and the LayerNorm input gradient's bits, its parameter gradients within
 * rounding (summed by block), on 1 to 3 threads, with rows enough that the threads share them as
 * they finish (the team), split them, or leave the one-pass product (-1, nothing done)
 */
static void
test_matmul_ln(void)
{
	static const int shape[][4] = {/* N, C, threads, n */
	                               {1100, 128, 1, 1}, {1100, 128, 2, 1}, {1100, 64, 2, 3},
	                               {512, 128, 2, 1},  {1100, 64, 3, 3},  {200, 64, 1, 3},
	                               {37, 64, 2, 1}};
	int OC = 96, mt = omp_get_max_threads();

	for (int si = 0; si < 7; si++) {
		int N = shape[si][0], C = shape[si][1], n = shape[si][3], rc;
		size_t nx = (size_t)N * C, nw = (size_t)OC * C;
		float *x = randv(nx, 1), *d1 = randv(nx, 1), *d2 = malloc(sizeof *d2 * nx);
		float *lx = randv(nx, 1), *lw = randv(C, 1), *lb = randv(C, 1), *lo = zeros(nx),
		      *mean = zeros(N), *rstd = zeros(N);
		float *li1 = zeros(nx), *li2 = zeros(nx), *dd1 = zeros(nx), *dd2 = zeros(nx);
		float *lgw1 = randv(C, 1), *lgb1 = randv(C, 1), *lgw2 = zeros(C), *lgb2 = zeros(C);
		float *dw1[3], *dw2[3], *db1[3], *db2[3], *dout[3], *w[3];
		/* n 1: the output dropped into ddrop (layer_backward's LayerNorm); n 3: the input gradient
		 * dropped first, no ddrop (the embeddings') */
		struct nn_ln_back ln = {li1,
		                        n == 1 ? dd1 : NULL,
		                        lgw1,
		                        lgb1,
		                        lx,
		                        lw,
		                        mean,
		                        rstd,
		                        n == 1 ? 0.0f : 0.1f,
		                        n == 1 ? 0.1f : 0.0f,
		                        11,
		                        12};
		int same;
		memcpy(d2, d1, sizeof *d2 * nx);
		memcpy(lgw2, lgw1, sizeof *lgw2 * (size_t)C);
		memcpy(lgb2, lgb1, sizeof *lgb2 * (size_t)C);
		layernorm_forward(lo, mean, rstd, lx, lw, lb, N, C);
		for (int j = 0; j < n; j++) {
			dout[j] = randv((size_t)N * OC, 1), w[j] = randv(nw, 0.2), dw1[j] = randv(nw, 1);
			db1[j] = randv(OC, 1);
			dw2[j] = malloc(sizeof *dw2[j] * nw), db2[j] = malloc(sizeof *db2[j] * (size_t)OC);
			memcpy(dw2[j], dw1[j], sizeof *dw2[j] * nw);
			memcpy(db2[j], db1[j], sizeof *db2[j] * (size_t)OC);
		}
		omp_set_num_threads(shape[si][2]);
		if (n == 1)
			rc = matmul_backward_ln(d1, dw1[0], db1[0], dout[0], x, w[0], N, C, OC, &ln);
		else
			rc = matmul_backward_n_ln(n, d1, dw1, db1, (const float *const *)dout, x,
			                          (const float *const *)w, N, C, OC, &ln);
		if (N < 100) { /* too few rows for 2 threads' one pass: nothing done */
			check(rc == -1 && !memcmp(d1, d2, sizeof *d1 * nx) &&
			          !memcmp(dw1[0], dw2[0], sizeof *dw1[0] * nw),
			      "matmul backward with LayerNorm after, %d rows on 2 threads: -1, nothing done",
			      N);
		} else {
			for (int j = 0; j < n; j++)
				matmul_backward(d2, dw2[j], db2[j], dout[j], x, w[j], N, C, OC);
			if (n == 1)
				layernorm_backward_set_drop(li2, dd2, lgw2, lgb2, d2, lx, lw, mean, rstd, N,
				                            C, 0.1f, 12);
			else {
				dropout_apply(d2, nx, 0.1f, 11);
				layernorm_backward_set(li2, lgw2, lgb2, d2, lx, lw, mean, rstd, N, C);
			}
			same = rc == 0 && !memcmp(d1, d2, sizeof *d1 * nx) &&
			       !memcmp(li1, li2, sizeof *li1 * nx) && !memcmp(dd1, dd2, sizeof *dd1 * nx);
			for (int j = 0; j < n; j++)
				same &= !memcmp(dw1[j], dw2[j], sizeof *dw1[j] * nw) &&
				        !memcmp(db1[j], db2[j], sizeof *db1[j] * (size_t)OC);
			check(
			    same && rel_diff(lgw1, lgw2, C) < 1e-5 && rel_diff(lgb1, lgb2, C) < 1e-5,
			    "matmul backward of %d layer(s) with LayerNorm after (%s) on its rows as they "
			    "come: the two calls' bits, the LayerNorm's parameters within %.1e and %.1e (%d "
			    "x %d -> %d, %d thread(s))",
			    n, n == 1 ? "its output dropped" : "its input dropped", rel_diff(lgw1, lgw2, C),
			    rel_diff(lgb1, lgb2, C), N, C, OC, shape[si][2]);
		}
		for (int j = 0; j < n; j++)
			free(dout[j]), free(w[j]), free(dw1[j]), free(dw2[j]), free(db1[j]), free(db2[j]);
		free(x), free(d1), free(d2), free(lx), free(lw), free(lb), free(lo), free(mean), free(rstd);
		free(li1), free(li2), free(dd1), free(dd2), free(lgw1), free(lgb1), free(lgw2), free(lgb2);
	}
	omp_set_num_threads(mt);
}

/*
 * matmul_forward_epi against the separate passes (matmul_forward, nn_prune, dropout_apply, the
 * residual added): the same bits, mask and zero count, on widths that fuse (multiples of 64: lib/gemm
 * runs them in the product's registers where it has its own kernel) and one that does not, on 1
 * thread and 2 (each thread's rows are numbered from its first element).
 */
static void
test_matmul_epi(void)
{
	static const int widths[] = {64, 128, 192, 23};
	int N = 45, C = 70;

	for (int wi = 0; wi < 4; wi++)
		for (int th = 1; th <= 2; th++)
			for (int steps = 0; steps < 8; steps++) {
				int OC = widths[wi], ok = 1, ln = steps & 4;
				size_t n = (size_t)N * OC, nw = (n + 63) / 64, z = 0;
				float *x = randv((size_t)N * C, 1), *w = randv((size_t)OC * C, 0.2),
				      *b = randv(OC, 0.1), *lw = randv(OC, 1), *lb = randv(OC, 0.1);
				float *res = randv(n, 1), *o1 = zeros(n), *o2 = zeros(n);
				float *y1 = zeros(n), *y2 = zeros(n), *m1 = zeros(N), *m2 = zeros(N),
				      *r1 = zeros(N), *r2 = zeros(N);
				uint64_t *k1 = calloc(nw, sizeof *k1), *k2 = calloc(nw, sizeof *k2);
				struct nn_epi e = {.tau = steps & 1 ? 0.3f : -1.0f,
				                   .keep = steps & 1 ? k1 : NULL,
				                   .p = steps & 2 ? 0.25f : 0.0f,
				                   .key = 99,
				                   .res = steps & 2 ? res : NULL,
				                   .ln_out = ln ? y1 : NULL,
				                   .ln_mean = m1,
				                   .ln_rstd = r1,
				                   .ln_w = lw,
				                   .ln_b = lb};

				omp_set_num_threads(th);
				matmul_forward_epi(o1, x, w, b, N, C, OC, &e);
				matmul_forward(o2, x, w, b, N, C, OC);
				if (e.tau >= 0)
					z = nn_prune(o2, k2, n, e.tau);
				if (e.p > 0)
					dropout_apply(o2, n, e.p, e.key);
				if (e.res)
					for (size_t i = 0; i < n; i++)
						o2[i] += res[i];
				if (ln)
					layernorm_forward(y2, m2, r2, o2, lw, lb, N, OC);
				ok &= memcmp(o1, o2, sizeof *o1 * n) == 0 && e.zeros == z;
				ok &= !e.keep || memcmp(k1, k2, sizeof *k1 * nw) == 0;
				ok &= !ln || (memcmp(y1, y2, sizeof *y1 * n) == 0 &&
				              memcmp(m1, m2, sizeof *m1 * N) == 0 &&
				              memcmp(r1, r2, sizeof *r1 * N) == 0);
				check(
				    ok,
				    "matmul forward with %s%s%s%s in one pass: the separate passes' bits (45 "
				    "x 70 -> %d, "
				    "%d thread(s))",
				    e.tau >= 0 ? "pruning, its mask and count" : "no pruning",
				    e.p > 0 ? ", dropout" : "", e.res ? ", a residual" : "",
				    ln ? ", a LayerNorm" : "", OC, th);
				free(x), free(w), free(b), free(res), free(o1), free(o2), free(k1), free(k2);
				free(lw), free(lb), free(y1), free(y2), free(m1), free(m2), free(r1),
				    free(r2);
			}
	omp_set_num_threads(1);
}

/* ---- layernorm, gelu, tanh ---- */

struct ln_ctx {
	float *x, *w, *b, *out, *mean, *rstd, *R;
	int N, C;
};

static double
ln_f(void *p)
{
	struct ln_ctx *c = p;
	layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C);
	return dot(c->out, c->R, (size_t)c->N * c->C);
}

/* At C 24 the row sums' 16 lanes and their scalar tail; at 128 (the model's width) the 16 lanes
 * alone, over 37 rows that the threads split unevenly */
static void
test_layernorm(void)
{
	static const int shapes[][2] = {{5, 24}, {37, 128}};
	for (int si = 0; si < 2; si++) {
		struct ln_ctx c = {0};
		float *dx, *dw, *db;
		double e1, e2, e3;
		int N = shapes[si][0], C = shapes[si][1];
		size_t n = (size_t)N * C;

		c.N = N, c.C = C;
		c.x = randv(n, 2), c.w = randv(C, 1), c.b = randv(C, 1), c.R = randv(n, 1);
		c.out = zeros(n), c.mean = zeros(N), c.rstd = zeros(N);
		dx = zeros(n), dw = zeros(C), db = zeros(C);
		ln_f(&c);
		layernorm_backward(dx, dw, db, c.R, c.x, c.w, c.mean, c.rstd, c.N, c.C);
		e1 = fd_check(ln_f, &c, c.x, dx, n, 1e-2);
		e2 = fd_check(ln_f, &c, c.w, dw, C, 1e-2);
		e3 = fd_check(ln_f, &c, c.b, db, C, 1e-2);
		check(e1 < TOL && e2 < TOL && e3 < TOL,
		      "layernorm backward (C %d) matches finite differences (%.1e %.1e %.1e)", C, e1, e2, e3);
		{ /* the writing form over garbage equals the adding form over zeros, parameter sums
		     included; a zero gradient row gives -0 terms, which 0 + x turns to +0 in both */
			float *dx2 = randv(n, 3), *dw2 = zeros(C), *db2 = zeros(C);
			memset(dx, 0, sizeof *dx * n), memset(dw, 0, sizeof *dw * C),
			    memset(db, 0, sizeof *db * C);
			for (int i = 0; i < C; i++)
				c.R[2 * C + i] = -0.0f;
			layernorm_backward(dx, dw, db, c.R, c.x, c.w, c.mean, c.rstd, c.N, c.C);
			layernorm_backward_set(dx2, dw2, db2, c.R, c.x, c.w, c.mean, c.rstd, c.N, c.C);
			check(!memcmp(dx, dx2, sizeof *dx * n) && !memcmp(dw, dw2, sizeof *dw * C) &&
			          !memcmp(db, db2, sizeof *db * C),
			      "layernorm_backward_set (C %d) over garbage equals layernorm_backward over "
			      "zeros, bit for bit",
			      C);
			/* and with its dropout in the same pass: the two passes' bits, for p 0.3 and 0 */
			for (int k = 0; k < 2; k++) {
				float p = k ? 0.0f : 0.3f, *dd = randv(n, 3), *want = zeros(n),
				      *dx3 = randv(n, 3), *dw3 = zeros(C), *db3 = zeros(C);
				size_t kept = 0;
				layernorm_backward_set_drop(dx3, dd, dw3, db3, c.R, c.x, c.w, c.mean, c.rstd,
				                            c.N, c.C, p, 41);
				dropout_copy(want, dx2, n, p, 41);
				for (size_t i = 0; i < n; i++)
					kept += dd[i] != 0;
				check(!memcmp(dx3, dx2, sizeof *dx * n) &&
				          !memcmp(dd, want, sizeof *dd * n) &&
				          !memcmp(dw3, dw2, sizeof *dw * C) &&
				          !memcmp(db3, db2, sizeof *db * C) && kept > n * (k ? 3 : 2) / 4 &&
				          (k || kept < n * 3 / 4),
				      "layernorm_backward_set_drop (C %d, p %.1f) equals "
				      "layernorm_backward_set "
				      "then dropout_copy, bit for bit (%zu of %zu kept)",
				      C, p, kept, n);
				free(dd), free(want), free(dx3), free(dw3), free(db3);
			}
			free(dx2), free(dw2), free(db2);
		}
		free(c.x), free(c.w), free(c.b), free(c.R), free(c.out), free(c.mean), free(c.rstd), free(dx),
		    free(dw);
		free(db);
	}
}

struct pw_ctx {
	float *x, *out, *R;
	size_t n;
	int which;
};

static double
pw_f(void *p)
{
	struct pw_ctx *c = p;
	if (c->which == 0)
		gelu_forward(c->out, c->x, c->n);
	else
		tanh_forward(c->out, c->x, c->n);
	return dot(c->out, c->R, c->n);
}

/*
 * GELU against erf and exp in double over [-12, 12] (lib/nn.c computes them inline): the largest
 * errors of 1 + erf(x / sqrt 2) (out / (x / 2)) and of the derivative. Returns through *ec, *ed.
 */
static void
gelu_errors(double *ec, double *ed)
{
	size_t n = 200001;
	float *x = malloc(sizeof *x * n), *out = malloc(sizeof *out * n), *der = malloc(sizeof *der * n);

	for (size_t i = 0; i < n; i++)
		x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
	gelu_forward_der(out, der, x, n);
	*ec = *ed = 0;
	for (size_t i = 0; i < n; i++) {
		double v = x[i], c = erfc(-v / sqrt(2.0)),
		       d = 0.5 * c + v * exp(-0.5 * v * v) / sqrt(2 * 3.14159265358979323846);
		double e1 = fabs(0.5 * v * c - out[i]) / fmax(0.5 * fabs(v), 1e-3), e2 = fabs(d - der[i]);
		*ec = e1 > *ec ? e1 : *ec;
		*ed = e2 > *ed ? e2 : *ed;
	}
	free(x), free(out), free(der);
}

static void
test_pointwise(void)
{
	struct pw_ctx c = {randv(300, 2), zeros(300), randv(300, 1), 300, 0};
	float *dx = zeros(300);
	double worst = 0, e1, e2;

	pw_f(&c);
	for (size_t i = 0; i < 300; i++) {
		double x = c.x[i], ref = 0.5 * x * (1 + erf(x / sqrt(2.0)));
		worst = fabs(c.out[i] - ref) > worst ? fabs(c.out[i] - ref) : worst;
	}
	check(worst < 1e-6, "gelu is the exact erf form (max error %.1e)", worst);
	for (int tab = 1; tab >= 0; tab--) {
		double ec, ed;
		if (nn_gelu_tables(tab) != tab)
			continue; /* (no AVX-512 here: the tables' turn is the other's) */
		gelu_errors(&ec, &ed);
		/* (as 1.0f + erff and expf gave them, libm's in float: 2.9e-7 and 1.8e-7) */
		check(ec < 3e-7 && ed < 2.5e-7,
		      "gelu (%s) on [-12, 12]: 1 + erf(x / sqrt 2) within %.1e of the exact value, the "
		      "derivative within %.1e",
		      tab ? "AVX-512 tables" : "erf and exp inline", ec, ed);
	}
	nn_gelu_tables(1);
	gelu_backward(dx, c.x, c.R, 300);
	{
		/* training's pair (derivative in place of the input) gives the same bits */
		float *o = zeros(300), *g = malloc(sizeof *g * 300), *d = malloc(sizeof *d * 300);
		int same = 1;
		memcpy(g, c.x, sizeof *g * 300);
		memcpy(d, c.R, sizeof *d * 300);
		gelu_forward_der(o, g, g, 300);
		gelu_backward_der(d, g, 300);
		for (size_t i = 0; i < 300; i++)
			same &= o[i] == c.out[i] && d[i] == dx[i];
		check(
		    same,
		    "gelu_forward_der and gelu_backward_der give gelu_forward's and gelu_backward's values");
		free(o), free(g), free(d);
	}
	for (int k = 0; k < 8; k++) { /* the product and GELU in pieces: the two passes' bits; on 3
		                         threads, where a third of the rows times 75 is no whole
		                         number of vectors, and on 2, where 301 rows at 512 go in 4
		                         pieces of 80 (3 of 128 would be uneven) */
		static const int ocs[] = {96, 512, 70, 75};
		int N = 301, C = 40, OC = ocs[k % 4], th = k < 4 ? 3 : 2, nt = omp_get_max_threads();
		float *x = randv((size_t)N * C, 1), *w = randv((size_t)OC * C, 0.3), *b = randv(OC, 0.1);
		float *pre = zeros((size_t)N * OC), *out = zeros((size_t)N * OC),
		      *pre2 = zeros((size_t)N * OC), *out2 = zeros((size_t)N * OC);
		omp_set_num_threads(th);
		matmul_forward_gelu(out, pre, x, w, b, N, C, OC);
		omp_set_num_threads(nt);
		matmul_forward(pre2, x, w, b, N, C, OC);
		gelu_forward_der(out2, pre2, pre2, (size_t)N * OC);
		check(!memcmp(out, out2, sizeof *out * (size_t)N * OC) &&
		          !memcmp(pre, pre2, sizeof *pre * (size_t)N * OC),
		      "matmul_forward_gelu on %d threads equals matmul_forward then gelu_forward_der, bit "
		      "for bit (%d x %d -> %d)",
		      th, N, C, OC);
		free(x), free(w), free(b), free(pre), free(out), free(pre2), free(out2);
	}
	e1 = fd_check(pw_f, &c, c.x, dx, 300, 1e-2);
	c.which = 1;
	pw_f(&c);
	memset(dx, 0, sizeof(float) * 300);
	tanh_backward(dx, c.out, c.R, 300);
	e2 = fd_check(pw_f, &c, c.x, dx, 300, 1e-2);
	check(e1 < TOL && e2 < TOL, "gelu and tanh backward match finite differences (%.1e %.1e)", e1, e2);
	free(c.x), free(c.out), free(c.R), free(dx);
}

/* ---- embeddings, dropout, cross-entropy ---- */

struct emb_ctx {
	int32_t ids[12];
	float *wte, *wpe, *wtt, *out, *R;
};

static double
emb_f(void *p)
{
	struct emb_ctx *c = p;
	embed_forward(c->out, c->ids, c->wte, c->wpe, c->wtt, 3, 4, 8);
	return dot(c->out, c->R, 96);
}

static void
test_embed(void)
{
	struct emb_ctx c = {{3, 1, 4, 0, 1, 5, 0, 0, 2, 2, 2, 0},
	                    randv(48, 1),
	                    randv(32, 1),
	                    randv(8, 1),
	                    zeros(96),
	                    randv(96, 1)};
	float *dte = zeros(48), *dpe = zeros(32), *dtt = zeros(8), saved[8];
	double e1, e2, e3, pad = 0;

	emb_f(&c);
	embed_backward(dte, dpe, dtt, c.R, c.ids, 0, 3, 4, 8);
	for (int i = 0; i < 8; i++)
		pad += fabs(dte[i]);
	memcpy(saved, dte, sizeof saved);
	memset(dte, 0, sizeof(float) * 8); /* the finite difference of row 0 is not zero; compare the rest */
	e1 = fd_check(emb_f, &c, c.wte + 8, dte + 8, 40, 1e-2);
	e2 = fd_check(emb_f, &c, c.wpe, dpe, 32, 1e-2);
	e3 = fd_check(emb_f, &c, c.wtt, dtt, 8, 1e-2);
	check(pad == 0 && e1 < TOL && e2 < TOL && e3 < TOL,
	      "embedding backward matches finite differences; the [PAD] row gets nothing");
	(void)saved;
	/* the rows split over 1 to 3 threads (by id, position and column): the same bits each time,
	 * every row summed in token order */
	{
		int same = 1, nt0 = omp_get_max_threads();
		float *ref = zeros(88), *got = zeros(88);
		for (int nt = 1; nt <= 3; nt++) {
			float *o = nt == 1 ? ref : got;
			memset(o, 0, sizeof *o * 88);
			omp_set_num_threads(nt);
			embed_backward(o, o + 48, o + 80, c.R, c.ids, 0, 3, 4, 8);
			same &= memcmp(ref, o, sizeof *o * 88) == 0;
		}
		omp_set_num_threads(nt0);
		check(same, "embedding backward: the same bits on 1, 2 and 3 threads");
		free(ref), free(got);
	}
	free(c.wte), free(c.wpe), free(c.wtt), free(c.out), free(c.R), free(dte), free(dpe), free(dtt);
}

/* embed_ln_forward against embed_forward, layernorm_forward and dropout_apply: the same bits, with
 * dropout and without, on 1 thread and 2 */
static void
test_embed_ln(void)
{
	int B = 5, T = 33, C = 72, V = 50, N = B * T;
	size_t n = (size_t)N * C;
	int32_t *ids = malloc(sizeof *ids * (size_t)N);
	float *wte = randv((size_t)V * C, 1), *wpe = randv((size_t)T * C, 1), *wtt = randv(C, 1),
	      *w = randv(C, 1), *b = randv(C, 1);
	float *r1 = zeros(n), *o1 = zeros(n), *m1 = zeros(N), *s1 = zeros(N), *r2 = zeros(n), *o2 = zeros(n),
	      *m2 = zeros(N), *s2 = zeros(N);
	int mt = omp_get_max_threads();

	for (int i = 0; i < N; i++)
		ids[i] = (int32_t)((i * 7 + 3) % V);
	for (int th = 1; th <= 2; th++)
		for (int drop = 0; drop < 2; drop++) {
			float p = drop ? 0.1f : 0.0f;
			omp_set_num_threads(th);
			embed_ln_forward(r1, o1, m1, s1, ids, wte, wpe, wtt, w, b, B, T, C, p, 21);
			embed_forward(r2, ids, wte, wpe, wtt, B, T, C);
			layernorm_forward(o2, m2, s2, r2, w, b, N, C);
			dropout_apply(o2, n, p, 21);
			check(!memcmp(r1, r2, sizeof *r1 * n) && !memcmp(o1, o2, sizeof *o1 * n) &&
			          !memcmp(m1, m2, sizeof *m1 * (size_t)N) &&
			          !memcmp(s1, s2, sizeof *s1 * (size_t)N),
			      "embeddings, LayerNorm and dropout in one pass: the three calls' bits (%s, %d "
			      "thread(s))",
			      drop ? "dropout 0.1" : "no dropout", th);
		}
	omp_set_num_threads(mt);
	free(ids), free(wte), free(wpe), free(wtt), free(w), free(b);
	free(r1), free(o1), free(m1), free(s1), free(r2), free(o2), free(m2), free(s2);
}

static void
test_dropout(void)
{
	size_t n = 1000000, kept = 0;
	float *x = zeros(n), *y = zeros(n);
	int same = 1;

	for (size_t i = 0; i < n; i++)
		x[i] = y[i] = 1;
	dropout_apply(x, n, 0.1f, 42);
	dropout_apply(y, n, 0.1f, 42);
	for (size_t i = 0; i < n; i++) {
		kept += x[i] != 0;
		same &= x[i] == y[i] && (x[i] == 0 || fabsf(x[i] - 1 / 0.9f) < 1e-6f);
	}
	check(same && fabs((double)kept / n - 0.9) < 0.002,
	      "dropout keeps 1 - p of the elements (%.4f), scaled by 1 / (1 - p), the same for the same key",
	      (double)kept / n);
	dropout_apply(y, n, 0.1f, 43);
	same = 1;
	for (size_t i = 0; i < n && same; i++)
		same = (x[i] == 0) == (y[i] == 0);
	check(!same, "another key draws another mask");
	{
		/* the two elements of a pair share a hash (its two halves), and neighbours across
		 * pairs do not: both must be as independent as two draws, 0.81 of them kept together */
		size_t both[2] = {0, 0}, agree = 0;
		for (size_t i = 0; i + 1 < n; i++)
			both[i & 1] += x[i] != 0 && x[i + 1] != 0;
		for (size_t i = 0; i < 4096; i++)
			agree += nn_keep(42, i, 0.1f) == (x[i] != 0);
		check(fabs((double)both[0] / (n / 2) - 0.81) < 0.003 &&
		          fabs((double)both[1] / (n / 2) - 0.81) < 0.003 && agree == 4096,
		      "dropout's pairs (one hash, two halves) are kept together 0.81 of the time (%.4f), and "
		      "so are neighbours across pairs (%.4f); nn_keep gives dropout_apply's mask",
		      (double)both[0] / (n / 2), (double)both[1] / (n / 2));
	}
	free(x), free(y);
}

struct ce_ctx {
	float *z;
	int32_t lab[6];
	float ls;
};

static double
ce_f(void *p)
{
	struct ce_ctx *c = p;
	int n;
	return crossentropy_forward_backward(NULL, c->z, c->lab, 6, 7, c->ls, &n);
}

static void
test_crossentropy(void)
{
	/* one-hot, then smoothed (1 - ls on the label, ls / 7 on each class), against sums in double */
	for (int k = 0; k < 2; k++) {
		struct ce_ctx c = {randv(42, 3), {1, -100, 6, 0, -100, 3}, k ? 0.1f : 0.0f};
		float *dz = zeros(42);
		double loss, e, ref = 0, ls = c.ls;
		int n;

		loss = crossentropy_forward_backward(dz, c.z, c.lab, 6, 7, c.ls, &n);
		for (int i = 0; i < 6; i++) {
			double s = 0, lse, mean = 0;
			if (c.lab[i] < 0)
				continue;
			for (int j = 0; j < 7; j++)
				s += exp(c.z[i * 7 + j]), mean += c.z[i * 7 + j] / 7.0;
			lse = log(s);
			ref += (1 - ls) * (lse - c.z[i * 7 + c.lab[i]]) + ls * (lse - mean);
		}
		ref /= 4;
		e = fd_check(ce_f, &c, c.z, dz, 42, 1e-2);
		check(n == 4 && fabs(loss - ref) < 1e-6 && e < TOL && dz[7] == 0 && dz[28] == 0,
		      "cross-entropy%s: mean over the labelled rows, gradient matches finite differences "
		      "(%.1e)",
		      k ? " with label smoothing 0.1" : "", e);
		free(c.z), free(dz);
	}
}

/* ---- attention ---- */

struct at_ctx {
	float *q, *k, *v, *wma, *mask, *ctx, *probs, *R, *scratch;
	float p;
	int B, T, A, D;
};

static double
at_f(void *pv)
{
	struct at_ctx *c = pv;
	attention_forward(c->ctx, c->probs, c->q, c->k, c->v, c->wma, c->mask, c->p, 7, NULL, NULL,
	                  c->scratch, c->B, c->T, c->A, c->D);
	/* the head's columns only */
	double s = 0;
	for (int bt = 0; bt < c->B * c->T; bt++)
		for (int e = 0; e < c->D; e++)
			s += (double)c->ctx[(size_t)bt * c->A + e] * c->R[(size_t)bt * c->A + e];
	return s;
}

static void
test_attention(void)
{
	for (int wma = 0; wma < 2; wma++)
		for (int drop = 0; drop < 2; drop++) {
			struct at_ctx c = {0};
			size_t n;
			float *ctx2, *probs2, *dq, *dk, *dv, *dw;
			double ef, e1, e2, e3, e4 = 0;
			c.B = 3, c.T = 6, c.A = 20, c.D = 8, c.p = drop ? 0.3f : 0.0f;
			n = (size_t)c.B * c.T * c.A;
			c.q = randv(n, 1), c.k = randv(n, 1), c.v = randv(n, 1), c.R = randv(n, 1);
			c.wma = wma ? randv(64, 0.5) : NULL;
			c.mask = zeros(18);
			for (int i = 0; i < 18; i++)
				c.mask[i] = !(i == 5 || i == 10 || i == 11 || i >= 15);
			c.ctx = zeros(n), c.probs = zeros(108);
			c.scratch = zeros(NN_ATTN_SCRATCH(8, c.B, c.T, c.D));
			ctx2 = zeros(n), probs2 = zeros(108);
			at_f(&c);
			attention_forward_naive(ctx2, probs2, c.q, c.k, c.v, c.wma, c.mask, c.p, 7, c.B, c.T,
			                        c.A, c.D);
			ef = rel_diff(c.ctx, ctx2, n) + rel_diff(c.probs, probs2, 108);
			dq = zeros(n), dk = zeros(n), dv = zeros(n), dw = zeros(64);
			attention_backward(dq, dk, dv, wma ? dw : NULL, c.R, c.probs, c.q, c.k, c.v, c.wma,
			                   c.p, 7, NULL, NULL, c.scratch, c.B, c.T, c.A, c.D);
			e1 = fd_check(at_f, &c, c.q, dq, n, 1e-2);
			e2 = fd_check(at_f, &c, c.k, dk, n, 1e-2);
			e3 = fd_check(at_f, &c, c.v, dv, n, 1e-2);
			if (wma)
				e4 = fd_check(at_f, &c, c.wma, dw, 64, 1e-2);
			check(ef < 1e-5, "attention (%s, dropout %.1f) forward equals the naive one",
			      wma ? "wma" : "sdp", c.p);
			check(e1 < TOL && e2 < TOL && e3 < TOL && e4 < TOL,
			      "attention (%s, dropout %.1f) backward matches finite differences (%.1e %.1e "
			      "%.1e %.1e)",
			      wma ? "wma" : "sdp", c.p, e1, e2, e3, e4);
			free(c.q), free(c.k), free(c.v), free(c.R), free(c.wma), free(c.mask), free(c.ctx),
			    free(c.probs);
			free(c.scratch), free(ctx2), free(probs2), free(dq), free(dk), free(dv), free(dw);
		}
}

/* The softmax's vector path (rows of 16 and more: its maximum and sum 16 lanes wide, exp inline)
 * against the naive attention, with and without a tail past the last 16, and a masked key's
 * probability exactly 0 */
static void
test_attention_wide(void)
{
	static const int Ts[] = {16, 40, 128};
	for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
		int B = 2, T = Ts[ti], A = 16, D = 16, zero = 1;
		size_t n = (size_t)B * T * A, np = (size_t)B * T * T;
		float *q = randv(n, 3), *k = randv(n, 3), *v = randv(n, 1), *mask = zeros((size_t)B * T);
		float *ctx = zeros(n), *probs = zeros(np), *ctx2 = zeros(n), *probs2 = zeros(np);
		float *scratch = zeros(NN_ATTN_SCRATCH(8, B, T, D));
		for (int i = 0; i < B * T; i++)
			mask[i] = !(i % 7 == 3 || i % T >= T - 2);
		attention_forward(ctx, probs, q, k, v, NULL, mask, 0.0f, 7, NULL, NULL, scratch, B, T, A, D);
		attention_forward_naive(ctx2, probs2, q, k, v, NULL, mask, 0.0f, 7, B, T, A, D);
		for (int b = 0; b < B; b++)
			for (int i = 0; i < T; i++)
				for (int j = 0; j < T; j++)
					if (mask[b * T + j] == 0)
						zero &= probs[((size_t)b * T + i) * T + j] == 0.0f;
		double e = rel_diff(ctx, ctx2, n) + rel_diff(probs, probs2, np);
		check(e < 1e-5 && zero,
		      "attention, T = %d: forward equals the naive one (%.1e), masked keys' probabilities 0",
		      T, e);
		free(q), free(k), free(v), free(mask), free(ctx), free(probs), free(ctx2), free(probs2);
		free(scratch);
	}
}

/* ---- DynaProp ---- */

/* The pruning kernels against plain loops, over sizes around their block and word boundaries. */
static void
test_prune(void)
{
	static const size_t sizes[] = {1, 63, 64, 65, 4095, 4096, 4097, 10000};
	int ok = 1, okg = 1;

	for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
		size_t n = sizes[si], z = 0, zg = 0, zd = 0;
		float *x = randv(n, 1), *x0 = malloc(sizeof *x * n), *d = randv(n, 1);
		float *d1 = malloc(sizeof *d * n), *d2 = malloc(sizeof *d * n), *d3 = malloc(sizeof *d * n);
		uint64_t *keep = calloc((n + 63) / 64, sizeof *keep);
		x[0] = 0;
		memcpy(x0, x, sizeof *x * n);
		memcpy(d1, d, sizeof *d * n);
		memcpy(d2, d, sizeof *d * n);
		memcpy(d3, d, sizeof *d * n);
		for (size_t i = 0; i < n; i++)
			z += fabsf(x0[i]) <= 0.5f;
		ok &= nn_prune(x, keep, n, 0.5f) == z;
		for (size_t i = 0; i < n; i++) {
			int kept = fabsf(x0[i]) > 0.5f;
			ok &= x[i] == (kept ? x0[i] : 0.0f);
			ok &= (int)((keep[i / 64] >> (i % 64)) & 1) == kept;
		}
		for (size_t i = 0; i < n; i++) {
			zg += !(x[i] != 0 && fabsf(d[i]) > 0.3f);
			zd += fabsf(d[i]) <= 0.3f;
		}
		okg &= nn_prune_grad(d1, x, NULL, n, 0.3f) == zg;
		okg &= nn_prune_grad(d2, NULL, keep, n, 0.3f) == zg;
		okg &= nn_prune_grad(d3, NULL, NULL, n, 0.3f) == zd;
		for (size_t i = 0; i < n; i++) {
			int kept = x[i] != 0 && fabsf(d[i]) > 0.3f;
			okg &= d1[i] == (kept ? d[i] : 0.0f) && d2[i] == d1[i];
			okg &= d3[i] == (fabsf(d[i]) > 0.3f ? d[i] : 0.0f);
		}
		free(x), free(x0), free(d), free(d1), free(d2), free(d3), free(keep);
	}
	check(ok, "nn_prune zeroes |x| <= tau, records the kept elements and counts the zeros (8 sizes)");
	check(okg,
	      "nn_prune_grad zeroes small gradients and those of pruned activations, from values or bits");
}

/* The pruning fused with GELU against the two steps apart, bit for bit. */
static void
test_prune_gelu(void)
{
	static const size_t sizes[] = {1, 4095, 4097, 10000};
	int ok = 1, okb = 1, okd = 1, okp = 1;

	for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
		size_t n = sizes[si];
		float *p1 = randv(n, 1), *p2 = malloc(sizeof *p1 * n), *o1 = malloc(sizeof *o1 * n),
		      *o2 = malloc(sizeof *o2 * n), *d1 = randv(n, 1), *d2 = malloc(sizeof *d2 * n);
		float *p3 = malloc(sizeof *p3 * n), *o3 = malloc(sizeof *o3 * n), *g = malloc(sizeof *g * n);
		memcpy(p2, p1, sizeof *p1 * n);
		memcpy(p3, p1, sizeof *p1 * n);
		memcpy(d2, d1, sizeof *d1 * n);
		/* the derivative in place of the input: GELU' where kept, 0 where pruned */
		ok &= nn_prune_gelu(o1, p3, p3, n, 0.4f) == nn_prune(p2, NULL, n, 0.4f);
		gelu_forward(o2, p2, n);
		ok &= memcmp(o1, o2, sizeof *o1 * n) == 0;
		gelu_forward_der(o3, g, p2, n);
		for (size_t i = 0; i < n; i++)
			okd &= memcmp(&p3[i], p2[i] != 0.0f ? &g[i] : &(float){0.0f}, sizeof *g) == 0;
		/* the same from an input pruned beforehand (as by a product's epilogue) */
		gelu_forward_der_pruned(o3, g, p2, n);
		okp &= memcmp(o3, o1, sizeof *o1 * n) == 0 && memcmp(g, p3, sizeof *g * n) == 0;
		okb &= nn_gelu_backward_prune(d1, p3, n, 0.05f) ==
		       (gelu_backward_der(d2, p3, n), nn_prune_grad(d2, p3, NULL, n, 0.05f));
		okb &= memcmp(d1, d2, sizeof *d1 * n) == 0;
		free(p1), free(p2), free(o1), free(o2), free(d1), free(d2), free(p3), free(o3), free(g);
	}
	check(ok, "nn_prune_gelu prunes and applies GELU as nn_prune then gelu_forward do (4 sizes)");
	check(okd, "nn_prune_gelu's derivative is gelu_forward_der's where kept, 0 where pruned (4 sizes)");
	check(okb, "nn_gelu_backward_prune equals gelu_backward_der then nn_prune_grad (4 sizes)");
	check(okp, "gelu_forward_der_pruned on a pruned input gives nn_prune_gelu's GELU and derivative, bit "
	           "for bit (4 sizes)");
}

/* Dropout's backward and the gradient's pruning behind a keep mask, in one pass and in two. */
static void
test_dropout_prune_grad(void)
{
	static const size_t sizes[] = {1, 4095, 4097, 10000};
	int ok = 1;

	for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
		for (int pi = 0; pi < 2; pi++)
			for (int km = 0; km < 2; km++) {
				size_t n = sizes[si], z1, z2;
				float p = pi ? 0.1f : 0.0f, *x = randv(n, 1), *y1 = malloc(sizeof *y1 * n),
				      *y2 = malloc(sizeof *y2 * n);
				uint64_t *keep = calloc((n + 63) / 64, sizeof *keep);
				for (size_t i = 0; i < n; i++)
					if (rng_below(&R, 3))
						keep[i / 64] |= 1ull << (i % 64);
				z1 = nn_dropout_prune_grad(y1, x, n, p, 99, km ? keep : NULL, 0.3f);
				dropout_copy(y2, x, n, p, 99);
				z2 = nn_prune_grad(y2, NULL, km ? keep : NULL, n, 0.3f);
				ok &= z1 == z2 && (z1 > 0 || n == 1) &&
				      memcmp(y1, y2, sizeof *y1 * n) == 0; /* one element may be kept */
				free(x), free(y1), free(y2), free(keep);
			}
	check(ok, "nn_dropout_prune_grad equals dropout_copy then nn_prune_grad, bit for bit and in zeros "
	          "(4 sizes, dropout 0 and 0.1, with and without a keep mask)");
}

/* The sparse-gradient products against the naive ones, each way forced by the zeros' pattern. */
static void
test_matmul_sparse(void)
{
	static const char *const ways[] = {"dense", "rows", "nonzeros"};
	int N = 67, C = 40, OC = 33;

	for (int pat = 0; pat < 3; pat++)
		for (int ow = 0; ow < 2; ow++) {
			size_t nd = (size_t)N * OC;
			float *dout = randv(nd, 1), *inp = randv((size_t)N * C, 1),
			      *w = randv((size_t)OC * C, 1);
			float *di = randv((size_t)N * C, 1), *dw = randv((size_t)OC * C, 1),
			      *db = randv(OC, 1);
			float *di2 = malloc(sizeof(float) * (size_t)N * C),
			      *dw2 = malloc(sizeof(float) * (size_t)OC * C),
			      *db2 = malloc(sizeof(float) * (size_t)OC);
			int how;
			for (size_t i = 0; i < nd; i++) {
				int row = (int)(i / (size_t)OC);
				if ((pat == 1 && row % 9 != 0) || (pat == 2 && rng_below(&R, 100) >= 3))
					dout[i] = 0;
			}
			memcpy(di2, di, sizeof(float) * (size_t)N * C);
			memcpy(dw2, dw, sizeof(float) * (size_t)OC * C);
			memcpy(db2, db, sizeof(float) * (size_t)OC);
			if (ow)
				memset(di2, 0, sizeof(float) * (size_t)N * C);
			how = matmul_backward_sparse(di, dw, db, dout, inp, w, N, C, OC, ow);
			matmul_backward_naive(di2, dw2, db2, dout, inp, w, N, C, OC);
			check(how == pat && rel_diff(di, di2, (size_t)N * C) < 1e-5 &&
			          rel_diff(dw, dw2, (size_t)OC * C) < 1e-5 && rel_diff(db, db2, OC) < 1e-5,
			      "matmul_backward_sparse, %s gradient (%s input gradient): took the %s way, "
			      "equals the "
			      "naive product",
			      ways[pat], ow ? "overwritten" : "added", ways[how]);
			free(dout), free(inp), free(w), free(di), free(dw), free(db), free(di2), free(dw2),
			    free(db2);
		}
}

/* Attention with DynaProp against a plain double-precision statement of the rule (tc-train(1)). */
static void
attention_pruned_naive(float *ctx, float *dq, float *dk, float *dv, float *dwma, const float *dctx,
                       const float *q, const float *k, const float *v, const float *wma, const float *mask,
                       float tau, float taug, int B, int T, int A, int D)
{
	double scale = 1.0 / sqrt((double)D);
	double *qw = malloc(sizeof *qw * (size_t)T * D), *s = malloc(sizeof *s * T),
	       *P = malloc(sizeof *P * T), *g = malloc(sizeof *g * T), *dqw = malloc(sizeof *dqw * D);

	for (int b = 0; b < B; b++) {
		for (int i = 0; i < T; i++)
			for (int e = 0; e < D; e++) {
				double x = 0;
				const float *qi = q + ((size_t)b * T + i) * A;
				if (!wma)
					x = qi[e];
				else
					for (int f = 0; f < D; f++)
						x += (double)qi[f] * wma[f * D + e];
				qw[(size_t)i * D + e] = wma ? (double)(float)x : x;
			}
		for (int i = 0; i < T; i++) {
			double mx = -INFINITY, sum = 0, dotp = 0;
			const float *dci = dctx + ((size_t)b * T + i) * A;
			for (int r = 0; r < T; r++) {
				const float *kr = k + ((size_t)b * T + r) * A;
				double x = 0;
				for (int e = 0; e < D; e++)
					x += qw[(size_t)i * D + e] * kr[e];
				s[r] = fabs(x) <= tau ? 0 : x * scale; /* the raw score, unscaled */
				P[r] = s[r] + (mask[(size_t)b * T + r] == 0 ? NN_MASKED_SCORE : 0);
				mx = P[r] > mx ? P[r] : mx;
			}
			for (int r = 0; r < T; r++)
				sum += exp(P[r] - mx);
			for (int r = 0; r < T; r++) {
				P[r] = exp(P[r] - mx) / sum;
				P[r] = fabs(P[r]) <= tau ? 0 : P[r];
			}
			for (int e = 0; e < D; e++) {
				double c = 0;
				for (int r = 0; r < T; r++)
					c += P[r] * v[((size_t)b * T + r) * A + e];
				ctx[((size_t)b * T + i) * A + e] = (float)c;
			}
			/* backward: the gradient at kept probabilities, through the softmax, at kept scores
			 */
			for (int r = 0; r < T; r++) {
				double x = 0;
				for (int e = 0; e < D; e++)
					x += (double)dci[e] * v[((size_t)b * T + r) * A + e];
				g[r] = P[r] != 0 && fabs(x) > taug ? x : 0;
				dotp += P[r] * g[r];
				for (int e = 0; e < D; e++)
					dv[((size_t)b * T + r) * A + e] += (float)(P[r] * dci[e]);
			}
			for (int e = 0; e < D; e++)
				dqw[e] = 0;
			for (int r = 0; r < T; r++) {
				double ds = P[r] * (g[r] - dotp);
				const float *kr = k + ((size_t)b * T + r) * A;
				ds = s[r] != 0 && fabs(ds) > taug ? ds * scale : 0;
				for (int e = 0; e < D; e++) {
					dqw[e] += ds * kr[e];
					dk[((size_t)b * T + r) * A + e] +=
					    (float)(ds * qw[(size_t)i * D + e]);
				}
			}
			for (int e = 0; e < D; e++) {
				float *dqi = dq + ((size_t)b * T + i) * A;
				const float *qi = q + ((size_t)b * T + i) * A;
				if (!wma) {
					dqi[e] += (float)dqw[e];
					continue;
				}
				for (int f = 0; f < D; f++) {
					dqi[f] += (float)(dqw[e] * wma[f * D + e]);
					dwma[f * D + e] += (float)(qi[f] * dqw[e]);
				}
			}
		}
	}
	free(qw), free(s), free(P), free(g), free(dqw);
}

/* sp: the gradient arriving at the context mostly zeros and a higher gradient threshold, so that
 * both dctx and dS hold under a tenth of nonzeros and the backward takes its sparse products */
static void
test_attention_pruned(void)
{
	for (int sp = 0; sp < 2; sp++)
		for (int wma = 0; wma < 2; wma++) {
			int B = 3, T = sp ? 40 : 6, A = 20, D = 8, BT = B * T;
			size_t n = (size_t)B * T * A, nP = (size_t)B * T * T;
			float *q = randv(n, 1), *k = randv(n, 1), *v = randv(n, 1), *dc = randv(n, 1),
			      *w = wma ? randv(64, 0.5) : NULL, *mask = zeros(BT), *probs = zeros(nP);
			float *ctx = zeros(n), *ctx2 = zeros(n),
			      *scratch = zeros(NN_ATTN_SCRATCH(8, B, T, D));
			float *dq = zeros(n), *dk = zeros(n), *dv = zeros(n), *dw = zeros(64);
			float *dq2 = zeros(n), *dk2 = zeros(n), *dv2 = zeros(n), *dw2 = zeros(64);
			float tg = sp ? 0.01f : 0.02f;
			float ta = sp ? 0.03f : 0.3f;
			struct nn_attn_prune pr = {.tau = ta, .tau_grad = tg, .tau_p = ta, .tau_grad_p = tg};
			size_t pz = 0, dcz = 0;
			double ef, eb;
			for (int i = 0; i < BT; i++) /* the last positions of each item are padding */
				mask[i] = sp ? i % T < T - 7 : !(i == 5 || i == 10 || i == 11 || i >= 15);
			for (size_t i = 0; sp && i < n; i++)
				if (rng_below(&R, 100) >= 4)
					dc[i] = 0;
			for (size_t i = 0; i < n; i++)
				dcz += dc[i] == 0;
			attention_forward(ctx, probs, q, k, v, w, mask, 0, 7, &pr, NULL, scratch, B, T, A, D);
			attention_backward(dq, dk, dv, wma ? dw : NULL, dc, probs, q, k, v, w, 0, 7, &pr,
			                   NULL, scratch, B, T, A, D);
			attention_pruned_naive(ctx2, dq2, dk2, dv2, dw2, dc, q, k, v, w, mask, pr.tau,
			                       pr.tau_grad, B, T, A, D);
			for (size_t i = 0; i < nP; i++)
				pz += probs[i] == 0;
			ef = rel_diff(ctx, ctx2, n);
			eb = rel_diff(dq, dq2, n) + rel_diff(dk, dk2, n) + rel_diff(dv, dv2, n) +
			     (wma ? rel_diff(dw, dw2, 64) : 0);
			check(
			    ef < 1e-5 && eb < 1e-4 && pz > nP / 5 && pr.total[0] == 2 * nP &&
			        pr.total[1] == 2 * nP && pr.zeros[0] >= pz && pr.zeros[1] > 0 &&
			        (!sp || (pr.split[3] > 0.9 * (double)nP && dcz > 0.9 * (double)n)),
			    "attention (%s) with DynaProp at tau %g, tau_grad %g equals the plain statement "
			    "of the rule (forward %.1e, backward %.1e; %zu of %zu probabilities pruned, "
			    "%zu/%zu "
			    "and %zu/%zu zeros counted, %zu of dS's %zu; %zu of dctx's %zu zeros)",
			    wma ? "wma" : "sdp", ta, tg, ef, eb, pz, nP, pr.zeros[0], pr.total[0],
			    pr.zeros[1], pr.total[1], pr.split[3], nP, dcz, n);
			free(q), free(k), free(v), free(dc), free(w), free(mask), free(probs), free(ctx),
			    free(ctx2);
			free(scratch), free(dq), free(dk), free(dv), free(dw), free(dq2), free(dk2),
			    free(dv2), free(dw2);
		}
}

/*
 * Attention on a few query rows (nn_qrows) against the full attention read at those rows: one row in
 * the first sequence (plain loops), six in the second (gemm), none in the third. The full run's
 * gradient at the context is the packed one's, unpacked, and zero elsewhere; with dropout, with
 * and without wma, with and without DynaProp, with q read at its rows or given packed (packed_q,
 * dq then packed too). The backward counts must be the full run's too.
 */
static void
test_attention_rows(void)
{
	static const int32_t row[] = {0, 17, 19, 20, 23, 24, 27}, off[] = {0, 1, 7, 7};
	int B = 3, T = 16, BT = B * T, nq = off[B];

	/* D 72: the plain loops' 64-column and 16-lane paths and their tails */
	for (int sh = 0; sh < 2; sh++)
		for (int pq = 0; pq < 2; pq++)
			for (int pruned = 0; pruned < 2; pruned++)
				for (int wma = 0; wma < 2; wma++) {
					const struct nn_qrows qr = {off, row, pq};
					int A = sh ? 80 : 12, D = sh ? 72 : 8, DD = D * D;
					size_t n = (size_t)BT * A, nP = (size_t)BT * T;
					float *q = randv(n, 1), *k = randv(n, 1), *v = randv(n, 1),
					      *dc = randv(n, 1), *w = wma ? randv(DD, 0.5 * 8 / D) : NULL,
					      *mask = zeros(BT), *qp = zeros(n);
					float *probs = zeros(nP), *ctx = zeros(n), *probs2 = zeros(nP),
					      *ctx2 = zeros(n), *dcf = zeros(n),
					      *scratch = zeros(NN_ATTN_SCRATCH(8, B, T, D));
					float *dq = zeros(n), *dk = zeros(n), *dv = zeros(n), *dw = zeros(DD);
					float *dq2 = zeros(n), *dk2 = zeros(n), *dv2 = zeros(n),
					      *dw2 = zeros(DD);
					struct nn_attn_prune pr = {.tau = 0.2f,
					                           .tau_grad = 0.01f,
					                           .tau_p = 0.02f,
					                           .tau_grad_p = 0.01f},
					                     pr2 = pr;
					double ef = 0, eb;
					for (int i = 0; i < BT; i++)
						mask[i] = i % T < T - 3;
					for (int r = 0; r < nq; r++) {
						memcpy(dcf + (size_t)row[r] * A, dc + (size_t)r * A,
						       sizeof *dc * (size_t)A);
						memcpy(qp + (size_t)r * A, q + (size_t)row[r] * A,
						       sizeof *q * (size_t)A);
					}
					attention_forward(ctx, probs, pq ? qp : q, k, v, w, mask, 0.2f, 7,
					                  pruned ? &pr : NULL, &qr, scratch, B, T, A, D);
					attention_forward(ctx2, probs2, q, k, v, w, mask, 0.2f, 7,
					                  pruned ? &pr2 : NULL, NULL, scratch, B, T, A, D);
					for (int r = 0; r < nq; r++)
						ef += rel_diff(ctx + (size_t)r * A, ctx2 + (size_t)row[r] * A,
						               (size_t)D) +
						      rel_diff(probs + (size_t)r * T,
						               probs2 + (size_t)row[r] * T, (size_t)T);
					attention_backward(dq, dk, dv, wma ? dw : NULL, dc, probs,
					                   pq ? qp : q, k, v, w, 0.2f, 7, pruned ? &pr : NULL,
					                   &qr, scratch, B, T, A, D);
					attention_backward(dq2, dk2, dv2, wma ? dw2 : NULL, dcf, probs2, q, k,
					                   v, w, 0.2f, 7, pruned ? &pr2 : NULL, NULL, scratch,
					                   B, T, A, D);
					if (pq) /* dq's rows packed, as the full dq's (zero elsewhere) */
						for (int r = nq - 1; r >= 0; r--) {
							memmove(dq + (size_t)row[r] * A, dq + (size_t)r * A,
							        sizeof *dq * (size_t)A);
							if (r != row[r])
								memset(dq + (size_t)r * A, 0,
								       sizeof *dq * (size_t)A);
						}
					eb = rel_diff(dq, dq2, n) + rel_diff(dk, dk2, n) +
					     rel_diff(dv, dv2, n) + (wma ? rel_diff(dw, dw2, DD) : 0);
					/* ef sums 2 nq row errors, each a few of fp32's ulps: the scores'
					 * products differ in their order of summation (1e-6 failed on
					 * 1.1e-6 once the random inputs moved) */
					check(
					    ef < 5e-6 && eb < 1e-5 &&
					        (!pruned || (pr.total[0] == 2 * (size_t)nq * T &&
					                     pr.total[1] == pr2.total[1] &&
					                     pr.zeros[1] == pr2.zeros[1] &&
					                     pr.split[2] == pr2.split[2] &&
					                     pr.split[3] == pr2.split[3] && pr.zeros[1] > 0)),
					    "attention (%s%s%s, D %d) on %d query rows equals the full "
					    "attention at those "
					    "rows (forward %.1e, backward %.1e; backward zeros %zu and %zu "
					    "of %zu "
					    "and "
					    "%zu)",
					    wma ? "wma" : "sdp", pruned ? ", DynaProp" : "",
					    pq ? ", q packed" : "", D, nq, ef, eb, pr.zeros[1], pr2.zeros[1],
					    pr.total[1], pr2.total[1]);
					free(q), free(k), free(v), free(dc), free(w), free(mask), free(qp),
					    free(probs), free(ctx), free(probs2), free(ctx2), free(dcf),
					    free(scratch);
					free(dq), free(dk), free(dv), free(dw), free(dq2), free(dk2),
					    free(dv2), free(dw2);
				}
}

/*
 * attention_backward_set over garbage against attention_backward over zeros, bit for bit: with and
 * without wma, with and without DynaProp (whose products go by the nonzeros), with dropout.
 */
static void
test_attention_set(void)
{
	int B = 3, T = 16, A = 16, D = 8, BT = B * T;

	for (int pruned = 0; pruned < 2; pruned++)
		for (int wma = 0; wma < 2; wma++) {
			size_t n = (size_t)BT * A, nP = (size_t)BT * T;
			float *q = randv(n, 1), *k = randv(n, 1), *v = randv(n, 1), *dc = randv(n, 1),
			      *w = wma ? randv(64, 0.5) : NULL, *mask = zeros(BT), *probs = zeros(nP),
			      *ctx = zeros(n), *scratch = zeros(NN_ATTN_SCRATCH(8, B, T, D));
			float *dq = zeros(n), *dk = zeros(n), *dv = zeros(n), *dw = zeros(64);
			float *dq2 = randv(n, 1), *dk2 = randv(n, 1), *dv2 = randv(n, 1), *dw2 = zeros(64);
			struct nn_attn_prune pr = {.tau = 0.2f,
			                           .tau_grad = 0.01f,
			                           .tau_p = 0.02f,
			                           .tau_grad_p = 0.01f},
			                     pr2;
			for (int i = 0; i < BT; i++)
				mask[i] = i % T < T - 3;
			attention_forward(ctx, probs, q, k, v, w, mask, 0.2f, 7, pruned ? &pr : NULL, NULL,
			                  scratch, B, T, A, D);
			pr2 = pr;
			for (int h = 0; h < A / D; h++) {
				attention_backward(dq + h * D, dk + h * D, dv + h * D, wma ? dw : NULL,
				                   dc + h * D, probs, q + h * D, k + h * D, v + h * D, w,
				                   0.2f, 7, pruned ? &pr : NULL, NULL, scratch, B, T, A, D);
				attention_backward_set(dq2 + h * D, dk2 + h * D, dv2 + h * D,
				                       wma ? dw2 : NULL, dc + h * D, probs, q + h * D,
				                       k + h * D, v + h * D, w, 0.2f, 7, pruned ? &pr2 : NULL,
				                       scratch, B, T, A, D);
			}
			check(!memcmp(dq, dq2, sizeof *dq * n) && !memcmp(dk, dk2, sizeof *dk * n) &&
			          !memcmp(dv, dv2, sizeof *dv * n) && !memcmp(dw, dw2, sizeof *dw * 64) &&
			          (!pruned || pr.zeros[1] == pr2.zeros[1]),
			      "attention_backward_set (%s%s) over garbage equals attention_backward over "
			      "zeros, bit "
			      "for bit",
			      wma ? "wma" : "sdp", pruned ? ", DynaProp" : "");
			free(q), free(k), free(v), free(dc), free(w), free(mask), free(probs), free(ctx),
			    free(scratch);
			free(dq), free(dk), free(dv), free(dw), free(dq2), free(dk2), free(dv2), free(dw2);
		}
}

/*
 * attention_forward_heads and attention_backward_set_heads against a call per head, bit for bit: 3
 * heads (one with wma in the forward), dropout, padding, on 1 thread and 2
 */
static void
test_attention_heads(void)
{
	int B = 3, T = 13, D = 8, nh = 3, A = nh * D, BT = B * T, mt = omp_get_max_threads();
	size_t n = (size_t)BT * A, nP = (size_t)BT * T;

	for (int th = 1; th <= 2; th++) {
		float *q = randv(n, 1), *k = randv(n, 1), *v = randv(n, 1), *dc = randv(n, 1),
		      *w = randv((size_t)D * D, 0.5), *mask = zeros(BT), *ctx1 = randv(n, 1),
		      *ctx2 = randv(n, 1), *scratch = zeros(NN_ATTN_SCRATCH(8, B, T, D));
		float *dq1 = randv(n, 1), *dk1 = randv(n, 1), *dv1 = randv(n, 1), *dq2 = randv(n, 1),
		      *dk2 = randv(n, 1), *dv2 = randv(n, 1);
		float *p1[3], *p2[3];
		const float *wma[3] = {NULL, w, NULL};
		uint64_t key[3] = {11, 12, 13};
		int same = 1;
		omp_set_num_threads(th);
		for (int i = 0; i < BT; i++)
			mask[i] = i % T < T - 2;
		for (int j = 0; j < nh; j++)
			p1[j] = randv(nP, 1), p2[j] = randv(nP, 1);
		for (int j = 0; j < nh; j++)
			attention_forward(ctx1 + j * D, p1[j], q + j * D, k + j * D, v + j * D, wma[j], mask,
			                  0.2f, key[j], NULL, NULL, scratch, B, T, A, D);
		attention_forward_heads(nh, ctx2, p2, q, k, v, wma, mask, 0.2f, key, scratch, B, T, A, D);
		for (int j = 0; j < nh; j++)
			same &= !memcmp(p1[j], p2[j], sizeof *p1[j] * nP);
		check(
		    same && !memcmp(ctx1, ctx2, sizeof *ctx1 * n),
		    "attention_forward_heads: a call per head's probabilities and contexts, bit for bit (%d "
		    "thread(s))",
		    th);
		for (int j = 0; j < nh; j++) /* (the forward without wma, for the backward's) */
			attention_forward(ctx1 + j * D, p1[j], q + j * D, k + j * D, v + j * D, NULL, mask,
			                  0.2f, key[j], NULL, NULL, scratch, B, T, A, D);
		for (int j = 0; j < nh; j++)
			attention_backward_set(dq1 + j * D, dk1 + j * D, dv1 + j * D, NULL, dc + j * D, p1[j],
			                       q + j * D, k + j * D, v + j * D, NULL, 0.2f, key[j], NULL,
			                       scratch, B, T, A, D);
		attention_backward_set_heads(nh, dq2, dk2, dv2, dc, p1, q, k, v, 0.2f, key, scratch, B, T, A,
		                             D);
		check(!memcmp(dq1, dq2, sizeof *dq1 * n) && !memcmp(dk1, dk2, sizeof *dk1 * n) &&
		          !memcmp(dv1, dv2, sizeof *dv1 * n),
		      "attention_backward_set_heads: a call per head's dq, dk and dv, bit for bit (%d "
		      "thread(s))",
		      th);
		for (int j = 0; j < nh; j++)
			free(p1[j]), free(p2[j]);
		free(q), free(k), free(v), free(dc), free(w), free(mask), free(ctx1), free(ctx2),
		    free(scratch);
		free(dq1), free(dk1), free(dv1), free(dq2), free(dk2), free(dv2);
	}
	omp_set_num_threads(mt);
}

/*
 * Attention without keys and values (attention_forward_xkv) against attention_forward on the keys
 * and values formed (k = x wk^T + bk, v = x wv^T + bv), head by head, on the query rows of
 * test_attention_rows: the contexts and probabilities, and in backward dq, and dk and dv taken back
 * through the projections to dx, dwk, dbk, dwv, dbv (and dwma); two heads, with dropout, the first
 * with wma or without and the second without.
 */
static void
test_attention_xkv(void)
{
	static const int32_t row[] = {0, 17, 19, 20, 23, 24, 27}, off[] = {0, 1, 7, 7};
	const struct nn_qrows qr = {off, row, 1};
	const uint64_t key[2] = {7, 8};
	int B = 3, T = 16, BT = B * T, nq = off[B], nh = 2;

	/* h 70 and D 72: the plain loops' 64-column and 16-lane paths and their tails */
	for (int sh = 0; sh < 2; sh++)
		for (int wma = 0; wma < 2; wma++) {
			int D = sh ? 72 : 8, A = nh * D, h = sh ? 70 : 12, DD = D * D;
			size_t n = (size_t)BT * A, nx = (size_t)BT * h, nP = (size_t)BT * T;
			float *x = randv(nx, 1), *wk = randv((size_t)A * h, 0.4), *bk = randv(A, 0.2),
			      *wv = randv((size_t)A * h, 0.4), *bv = randv(A, 0.2),
			      *w = wma ? randv(DD, 0.5 * 8 / D) : NULL;
			float *q = randv((size_t)nq * A, 1), *dc = randv((size_t)nq * A, 1),
			      *mask = zeros(BT);
			float *k = zeros(n), *v = zeros(n), *ctx = zeros(n), *ctx2 = zeros(n),
			      *probs[2] = {zeros(nP), zeros(nP)}, *probs2[2] = {zeros(nP), zeros(nP)},
			      *scratch = zeros(NN_ATTN_SCRATCH(8, B, T, D));
			float *dq = zeros(n), *dx = zeros(nx), *dwk = zeros((size_t)A * h), *dbk = zeros(A),
			      *dwv = zeros((size_t)A * h), *dbv = zeros(A), *dw = zeros(DD);
			float *dq2 = zeros(n), *dk2 = zeros(n), *dv2 = zeros(n), *dw2 = zeros(DD),
			      *dx2 = zeros(nx), *dwk2 = zeros((size_t)A * h), *dbk2 = zeros(A),
			      *dwv2 = zeros((size_t)A * h), *dbv2 = zeros(A);
			const float *ws[2] = {w, NULL};
			float *dws[2] = {wma ? dw : NULL, NULL};
			double ef = 0, eb, ebk, wkmax;
			for (int i = 0; i < BT; i++)
				mask[i] = i % T < T - 3;
			matmul_forward(k, x, wk, bk, BT, h, A);
			matmul_forward(v, x, wv, bv, BT, h, A);
			attention_forward_xkv(nh, ctx, probs, q, x, h, wk, bk, wv, bv, ws, mask, 0.2f, key,
			                      &qr, B, T, A, D);
			for (int j = 0; j < nh; j++) {
				attention_forward(ctx2 + j * D, probs2[j], q + j * D, k + j * D, v + j * D,
				                  ws[j], mask, 0.2f, key[j], NULL, &qr, scratch, B, T, A, D);
				ef += rel_diff(probs[j], probs2[j], (size_t)nq * T);
			}
			ef += rel_diff(ctx, ctx2, (size_t)nq * A);
			attention_backward_xkv(nh, dq, dx, dwk, dbk, dwv, dbv, dws, dc, probs, q, x, h, wk,
			                       bk, wv, bv, ws, 0.2f, key, &qr, B, T, A, D);
			for (int j = 0; j < nh; j++)
				attention_backward(dq2 + j * D, dk2 + j * D, dv2 + j * D,
				                   j == 0 && wma ? dw2 : NULL, dc + j * D, probs2[j],
				                   q + j * D, k + j * D, v + j * D, ws[j], 0.2f, key[j], NULL,
				                   &qr, scratch, B, T, A, D);
			matmul_backward(dx2, dwk2, dbk2, dk2, x, wk, BT, h, A);
			matmul_backward(dx2, dwv2, dbv2, dv2, x, wv, BT, h, A);
			/* the key bias shifts a row's scores alike, so its gradient is 0 but for rounding:
			 * measured against the key weights' scale */
			ebk = 0, wkmax = 1e-12;
			for (int i = 0; i < A * h; i++)
				wkmax = fmax(wkmax, fabs(dwk2[i]));
			for (int e = 0; e < A; e++)
				ebk = fmax(ebk, fabs(dbk[e] - dbk2[e]) / wkmax);
			eb = rel_diff(dq, dq2, (size_t)nq * A) + rel_diff(dx, dx2, nx) +
			     rel_diff(dwk, dwk2, (size_t)A * h) + ebk + rel_diff(dwv, dwv2, (size_t)A * h) +
			     rel_diff(dbv, dbv2, A) + (wma ? rel_diff(dw, dw2, DD) : 0);
			check(ef < 1e-5 && eb < 1e-4,
			      "attention (%s, 2 heads, D %d, h %d) without keys and values equals it on the "
			      "keys and values formed (forward %.1e, backward %.1e)",
			      wma ? "wma and sdp" : "sdp", D, h, ef, eb);
			free(x), free(wk), free(bk), free(wv), free(bv), free(w), free(q), free(dc),
			    free(mask);
			free(k), free(v), free(ctx), free(ctx2), free(probs[0]), free(probs[1]),
			    free(probs2[0]), free(probs2[1]), free(scratch);
			free(dq), free(dx), free(dwk), free(dbk), free(dwv), free(dbv), free(dw);
			free(dq2), free(dk2), free(dv2), free(dw2), free(dx2), free(dwk2), free(dbk2),
			    free(dwv2), free(dbv2);
		}
}

/* ---- transforms ---- */

struct tr_ctx {
	int kind, B, T, A, D;
	float *v, *mask, *out, *R, *m[4], *scratch;
};

static double
tr_f(void *p)
{
	struct tr_ctx *c = p;
	double s = 0;
	transform_forward(c->kind, c->out, c->v, c->mask, c->m[0], c->m[1], c->m[2], c->m[3], c->scratch,
	                  c->B, c->T, c->A, c->D);
	for (int bt = 0; bt < c->B * c->T; bt++)
		for (int e = 0; e < c->D; e++)
			s += (double)c->out[(size_t)bt * c->A + e] * c->R[(size_t)bt * c->A + e];
	return s;
}

static void
test_transforms(void)
{
	for (int kind = NN_DFT; kind <= NN_DCT; kind++) {
		struct tr_ctx c = {kind, 2, 7, 12, 5, NULL, NULL, NULL, NULL, {NULL}, NULL};
		size_t n = (size_t)c.B * c.T * c.A;
		float *out2 = zeros(n), *dv = zeros(n);
		double ef, eb, e2in = 0, e2out = 0, padgrad = 0;
		c.v = randv(n, 1), c.R = randv(n, 1), c.out = zeros(n), c.mask = zeros(14);
		for (int i = 0; i < 14; i++)
			c.mask[i] = i < 7 || i < 11;
		for (int i = 0; i < 4; i++)
			c.m[i] = zeros(49);
		c.scratch = zeros(8 * 3 * 35);
		nn_transform_matrices(kind, c.m[0], c.m[1], c.m[2], c.m[3], c.T, c.D);
		tr_f(&c);
		transform_forward_naive(kind, out2, c.v, c.mask, c.B, c.T, c.A, c.D);
		ef = 0;
		for (int bt = 0; bt < 14; bt++)
			for (int e = 0; e < c.D; e++) {
				double d = fabs(c.out[bt * c.A + e] - out2[bt * c.A + e]);
				ef = d > ef ? d : ef;
				e2out += (double)c.out[bt * c.A + e] * c.out[bt * c.A + e];
				if (c.mask[bt])
					e2in += (double)c.v[bt * c.A + e] * c.v[bt * c.A + e];
			}
		transform_backward(kind, dv, c.R, c.mask, c.m[0], c.m[1], c.m[2], c.m[3], c.scratch, c.B, c.T,
		                   c.A, c.D);
		for (int bt = 11; bt < 14; bt++)
			for (int e = 0; e < c.A; e++)
				padgrad += fabs(dv[bt * c.A + e]);
		eb = fd_check(tr_f, &c, c.v, dv, n, 1e-2);
		check(ef < 1e-5, "%s forward equals the naive double sum", kind == NN_DFT ? "DFT" : "DCT");
		check(eb < TOL && padgrad == 0,
		      "%s backward matches finite differences (%.1e); padded rows get no gradient",
		      kind == NN_DFT ? "DFT" : "DCT", eb);
		if (kind == NN_DCT)
			check(fabs(e2out - e2in) < 1e-4 * e2in,
			      "the DCT is orthonormal: energy kept (%.6f vs %.6f)", e2out, e2in);
		free(c.v), free(c.R), free(c.out), free(c.mask), free(c.scratch), free(out2), free(dv);
		for (int i = 0; i < 4; i++)
			free(c.m[i]);
	}
}

/* ---- dynamic span-based convolution ---- */

struct dsc_ctx {
	int B, T, A, D, K;
	float *q, *k, *v, *mask, *out, *R, *w[7], *sv[4], *scratch;
};

static void
dsc_w(struct dsc_params *w, struct dsc_ctx *c)
{
	w->dw = c->w[0], w->pw = c->w[1], w->beta = c->w[2], w->wk = c->w[3], w->bk = c->w[4],
	w->wu = c->w[5];
	w->bu = c->w[6];
}

static double
dsc_f(void *p)
{
	struct dsc_ctx *c = p;
	struct dsc_params w;
	struct dsc_saved s = {c->sv[0], c->sv[1], c->sv[2], c->sv[3]};
	double r = 0;
	dsc_w(&w, c);
	dsc_forward(c->out, &s, c->q, c->k, c->v, &w, c->mask, c->B, c->T, c->A, c->D, c->K);
	for (int bt = 0; bt < c->B * c->T; bt++)
		for (int e = 0; e < c->D; e++)
			r += (double)c->out[(size_t)bt * c->A + e] * c->R[(size_t)bt * c->A + e];
	return r;
}

/* The README's formulas, loop by loop in double. */
static void
dsc_naive(double *out, const struct dsc_ctx *c)
{
	int B = c->B, T = c->T, A = c->A, D = c->D, K = c->K, P = (K - 1) / 2;
	double *kd = calloc((size_t)B * T * D, sizeof *kd), *ks = calloc((size_t)B * T * D, sizeof *ks);
	double *al = calloc((size_t)B * T * K, sizeof *al), *u = calloc((size_t)B * T * D, sizeof *u);
	const float *dw = c->w[0], *pw = c->w[1], *beta = c->w[2], *wk = c->w[3], *bk = c->w[4],
	            *wu = c->w[5], *bu = c->w[6];

	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			for (int ch = 0; ch < D; ch++)
				for (int q = 0; q < K; q++) {
					int r = t + q - P;
					double kk = r >= 0 && r < T && c->mask[b * T + r]
					                ? c->k[(b * T + r) * A + ch]
					                : 0;
					kd[(b * T + t) * D + ch] += dw[ch * K + q] * kk;
				}
			for (int o = 0; o < D; o++) {
				double s = beta[o];
				for (int ch = 0; ch < D; ch++)
					s += pw[o * D + ch] * kd[(b * T + t) * D + ch];
				ks[(b * T + t) * D + o] = s;
			}
			double mx = -1e300, sum = 0;
			for (int q = 0; q < K; q++) {
				double z = bk[q];
				for (int e = 0; e < D; e++)
					z += wk[q * D + e] * ks[(b * T + t) * D + e] *
					     c->q[(b * T + t) * A + e];
				al[(b * T + t) * K + q] = z;
				mx = z > mx ? z : mx;
			}
			for (int q = 0; q < K; q++)
				sum += exp(al[(b * T + t) * K + q] - mx);
			for (int q = 0; q < K; q++)
				al[(b * T + t) * K + q] = exp(al[(b * T + t) * K + q] - mx) / sum;
			for (int e = 0; e < D; e++) {
				double s = bu[e];
				for (int f = 0; f < D; f++)
					s += wu[e * D + f] * c->v[(b * T + t) * A + f];
				u[(b * T + t) * D + e] = c->mask[b * T + t] ? s : 0;
			}
		}
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int e = 0; e < D; e++) {
				double s = 0;
				for (int q = 0; q < K; q++) {
					int r = t + q - P;
					if (r >= 0 && r < T)
						s += al[(b * T + t) * K + q] * u[(b * T + r) * D + e];
				}
				out[(b * T + t) * D + e] = s;
			}
	free(kd), free(ks), free(al), free(u);
}

static void
test_dsc(void)
{
	static const int taps[3] = {5, 9, 13};
	for (int ti = 0; ti < 3; ti++) {
		struct dsc_ctx c = {.B = 2, .T = 9, .A = 14, .D = 6, .K = taps[ti]};
		size_t n = (size_t)c.B * c.T * c.A, nd = (size_t)c.B * c.T * c.D;
		size_t wn[7] = {(size_t)c.D * c.K, (size_t)c.D * c.D, (size_t)c.D, (size_t)c.K * c.D,
		                (size_t)c.K,       (size_t)c.D * c.D, (size_t)c.D};
		double *ref = calloc(nd, sizeof *ref), ef = 0, rmax = 0, eb[10], worst = 0;
		float *dq = zeros(n), *dk = zeros(n), *dv = zeros(n), *g[7];
		struct dsc_params w;
		struct dsc_saved s;
		struct dsc_grads gr;
		int ok = 1;
		c.q = randv(n, 1), c.k = randv(n, 1), c.v = randv(n, 1), c.R = randv(n, 1), c.out = zeros(n);
		c.mask = zeros(18);
		for (int i = 0; i < 18; i++)
			c.mask[i] = i < 9 || i < 14;
		for (int i = 0; i < 7; i++) {
			c.w[i] = randv(wn[i], 0.5);
			g[i] = zeros(wn[i]);
		}
		c.sv[0] = zeros(nd), c.sv[1] = zeros(nd), c.sv[2] = zeros((size_t)c.B * c.T * c.K),
		c.sv[3] = zeros(nd);
		c.scratch = zeros(NN_DSC_SCRATCH(c.B, c.T, c.D, c.K));
		dsc_f(&c);
		dsc_naive(ref, &c);
		for (size_t i = 0; i < nd; i++) {
			size_t bt = i / c.D, e = i % c.D;
			double d = fabs(c.out[bt * c.A + e] - ref[i]);
			ef = d > ef ? d : ef;
			rmax = fabs(ref[i]) > rmax ? fabs(ref[i]) : rmax;
		}
		check(ef < 1e-5 * rmax + 1e-6, "c_%d forward equals the README's formulas in double", c.K);
		dsc_w(&w, &c);
		s = (struct dsc_saved){c.sv[0], c.sv[1], c.sv[2], c.sv[3]};
		gr = (struct dsc_grads){g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
		dsc_backward(dq, dk, dv, &gr, c.R, &s, c.q, c.k, c.v, &w, c.mask, c.scratch, c.B, c.T, c.A,
		             c.D, c.K);
		eb[0] = fd_check(dsc_f, &c, c.q, dq, n, 1e-2);
		eb[1] = fd_check(dsc_f, &c, c.k, dk, n, 1e-2);
		eb[2] = fd_check(dsc_f, &c, c.v, dv, n, 1e-2);
		for (int i = 0; i < 7; i++)
			eb[3 + i] = fd_check(dsc_f, &c, c.w[i], g[i], wn[i], 1e-2);
		for (int i = 0; i < 10; i++) {
			ok &= eb[i] < TOL;
			worst = fmax(worst, eb[i]);
		}
		check(ok,
		      "c_%d backward matches finite differences for q, k, v and all seven parameters (worst "
		      "%.1e)",
		      c.K, worst);
		free(ref), free(dq), free(dk), free(dv), free(c.q), free(c.k), free(c.v), free(c.R),
		    free(c.out);
		free(c.mask), free(c.scratch);
		for (int i = 0; i < 7; i++)
			free(c.w[i]), free(g[i]);
		for (int i = 0; i < 4; i++)
			free(c.sv[i]);
	}
}

int
main(void)
{
	rng_seed(&R, 1);
	test_matmul();
	test_matmul_epi();
	test_matmul_input_mul();
	test_matmul_set();
	test_matmul_n();
	test_matmul_ln();
	test_layernorm();
	test_pointwise();
	test_embed();
	test_embed_ln();
	test_dropout();
	test_crossentropy();
	test_attention();
	test_attention_wide();
	test_prune();
	test_prune_gelu();
	test_dropout_prune_grad();
	test_matmul_sparse();
	test_attention_pruned();
	test_attention_rows();
	test_attention_set();
	test_attention_heads();
	test_attention_xkv();
	test_transforms();
	test_dsc();
	return tap_done();
}
