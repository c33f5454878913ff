/*
 * prune_test.c: the kernels of lib/prune.c against their naive references and against facts worked out
 * by hand: thresholds compared exactly, ties, zeros of either sign, NaN and infinities, selections on
 * inputs that defeat naive pivots, and every floating-point dtype giving what F32 gives on values all of
 * them hold exactly. Arrays are compared bit for bit, since pruning is exact: no tolerance anywhere.
 *
 * Prints TAP; exits 1 on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prune.h"
#include "rng.h"
#include "tap.h"
#include "tensor.h"
#include "util.h"

static struct rng R;

/*
 * x (n): normal values, and with the given probabilities exact zeros (half of them -0) and values on a
 * coarse grid of 1/8, so that ties are common. Every value is a multiple of 2^-20 or on the grid.
 */
static void
fill(float *x, size_t n, double pzero, double pgrid)
{
	for (size_t i = 0; i < n; i++) {
		double u = rng_uniform(&R);
		if (u < pzero)
			x[i] = rng_below(&R, 2) ? -0.0f : 0.0f;
		else if (u < pzero + pgrid)
			x[i] = (float)((double)((int)rng_below(&R, 33) - 16) / 8);
		else
			x[i] = (float)rng_normal(&R);
	}
}

static int
same_counts(const struct prune_count *a, const struct prune_count *b)
{
	return a->n == b->n && a->zeros_before == b->zeros_before && a->zeros_after == b->zeros_after;
}

static void
test_tau(void)
{
	static const double taus[] = {0, 1e-9, 0.125, 0.5, 1, 1.75, 3, 1e300};
	size_t n = 4099, failures = 0;
	float *x = malloc(sizeof *x * n), *a = malloc(sizeof *a * n), *b = malloc(sizeof *b * n);
	struct prune_count ca, cb;

	for (int trial = 0; trial < 20; trial++) {
		fill(x, n, 0.1, 0.3);
		for (size_t t = 0; t < sizeof taus / sizeof *taus; t++) {
			memcpy(a, x, sizeof *a * n);
			memcpy(b, x, sizeof *b * n);
			if (prune_tau(a, &ca, taus[t], n) || prune_tau_naive(b, &cb, taus[t], n) ||
			    memcmp(a, b, sizeof *a * n) || !same_counts(&ca, &cb))
				failures++;
		}
	}
	check(failures == 0, "prune_tau equals its naive reference bit for bit (%zu mismatches)", failures);

	fill(x, n, 0.2, 0.3);
	memcpy(a, x, sizeof *a * n);
	check(prune_tau(a, &ca, 0, n) == 0 && memcmp(a, x, sizeof *a * n) == 0 &&
	          ca.zeros_after == ca.zeros_before,
	      "tau = 0 changes no byte, -0 included");
	memcpy(a, x, sizeof *a * n);
	check(prune_tau(a, &ca, 1e300, n) == 0 && ca.zeros_after == n, "a huge tau zeroes everything");
	{
		size_t neg = 0;
		for (size_t i = 0; i < n; i++)
			neg += signbit(a[i]) != 0;
		size_t neg0 = 0;
		for (size_t i = 0; i < n; i++)
			neg0 += x[i] == 0 && signbit(x[i]);
		check(neg == neg0, "pruned elements are +0, zeros already there are left as they were");
	}
	free(x);
	free(a);
	free(b);
}

static void
test_tau_exact(void)
{
	float x[4] = {0.1f, -0.1f, 0.25f, -3};
	struct prune_count c;

	/* 0.1f is 0.100000001490116..., above the double 0.1: a float comparison against (float)0.1 would
	 * prune it. */
	prune_tau(x, &c, 0.1, 4);
	check(x[0] == 0.1f && x[1] == -0.1f && c.zeros_after == 0, "0.1f is not <= 0.1: kept");
	prune_tau(x, &c, (double)0.1f, 4);
	check(x[0] == 0 && x[1] == 0 && x[2] == 0.25f && c.zeros_after == 2,
	      "0.1f is <= (double)0.1f: pruned");
	prune_tau(x, &c, 0.25, 4);
	check(x[2] == 0 && x[3] == -3 && c.zeros_before == 2 && c.zeros_after == 3 && c.n == 4,
	      "|x| == tau is pruned (|x| <= tau), counts before and after");
}

static void
test_nonfinite(void)
{
	float x[6] = {1, 2, 0, NAN, INFINITY, 5}, y[6];
	size_t bad = 99;
	double tau, scratch[12];
	struct prune_count c, d;
	int rc;

	memcpy(y, x, sizeof y);
	rc = prune_tau(y, &c, 1, 6);
	check(rc == -1 && c.bad == 3, "prune_tau: NaN refused at its index (%zu)", c.bad);
	memcpy(y, x, sizeof y);
	check(prune_tau_naive(y, &d, 1, 6) == -1 && d.bad == 3, "prune_tau_naive: the same index");
	x[3] = 7;
	x[4] = -INFINITY;
	check(prune_tau(x, &c, 1, 6) == -1 && c.bad == 4, "prune_tau: -inf refused at its index");
	x[4] = INFINITY;
	check(prune_target_tau(&tau, &bad, scratch, x, 0.5, 6) == -1 && bad == 4,
	      "prune_target_tau: inf refused at its index");
	memcpy(y, x, sizeof y);
	check(prune_topk_rows(y, &c, scratch, 1, 2, 3) == -1 && c.bad == 4 && y[0] == 0 && y[1] == 2 &&
	          y[5] == 5,
	      "prune_topk_rows: inf refused at its index; rows before it pruned, its own row untouched");
}

static void
test_target(void)
{
	static const double targets[] = {0, 0.001, 0.1, 0.25, 1.0 / 3, 0.5, 0.9, 0.999};
	size_t failures = 0, short_of = 0, notleast = 0;
	float *x = malloc(sizeof *x * 300), *y = malloc(sizeof *y * 300);
	double *s = malloc(sizeof *s * 300), ta, tb;
	struct prune_count c;
	size_t bad;

	for (size_t n = 0; n < 300; n += 1 + n / 8) {
		for (int trial = 0; trial < 6; trial++) {
			fill(x, n, trial * 0.1, trial % 2 ? 0.8 : 0.2);
			for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
				if (prune_target_tau(&ta, &bad, s, x, targets[t], n) ||
				    prune_target_tau_naive(&tb, &bad, s, x, targets[t], n) || ta != tb) {
					failures++;
					continue;
				}
				memcpy(y, x, sizeof *y * n);
				prune_tau(y, &c, ta, n);
				if (n && (double)c.zeros_after / (double)n < targets[t])
					short_of++;
				/* The largest magnitude below ta reaches less than the target. */
				if (ta > 0) {
					double below = 0;
					size_t count = 0;
					for (size_t i = 0; i < n; i++)
						if (fabsf(x[i]) < ta && fabsf(x[i]) > below)
							below = fabsf(x[i]);
					for (size_t i = 0; i < n; i++)
						count += fabsf(x[i]) <= below;
					notleast += (double)count / (double)n >= targets[t];
				}
			}
		}
	}
	check(failures == 0, "prune_target_tau equals the naive search over every candidate (%zu mismatches)",
	      failures);
	check(short_of == 0, "the threshold reaches the target sparsity (%zu short)", short_of);
	check(notleast == 0, "no smaller threshold reaches it (%zu not least)", notleast);

	{
		float z[10] = {0, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, 1, 2, 3};
		prune_target_tau(&ta, &bad, s, z, 0.3, 10);
		check(ta == 0, "enough zeros already: threshold 0");
		prune_target_tau(&ta, &bad, s, z, 0.4, 10);
		prune_tau(z, &c, ta, 10);
		check(ta == 0.5 && c.zeros_after == 7,
		      "ties at the threshold are all pruned: 0.4 asked, 0.7 reached");
		prune_target_tau(&ta, &bad, s, z, 0, 0);
		check(ta == 0, "an empty array: threshold 0");
	}
	free(x);
	free(y);
	free(s);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Orders that break quickselects with fixed pivots, at a size where quadratic time would show: the
 * threshold must be the m-th smallest magnitude of a full sort. */
static void
test_select_adversarial(void)
{
	size_t n = 200000, failures = 0, bad;
	float *x = malloc(sizeof *x * n);
	double *s = malloc(sizeof *s * n), *sorted = malloc(sizeof *sorted * n), tau;

	for (int pattern = 0; pattern < 5; pattern++) {
		for (size_t i = 0; i < n; i++) {
			switch (pattern) {
			case 0: /* ascending */
				x[i] = (float)i;
				break;
			case 1: /* descending */
				x[i] = (float)(n - i);
				break;
			case 2: /* all equal */
				x[i] = 1;
				break;
			case 3: /* organ pipe */
				x[i] = (float)(i < n / 2 ? i : n - i);
				break;
			default: /* two values */
				x[i] = (float)(i % 2);
				break;
			}
			sorted[i] = fabsf(x[i]);
		}
		qsort(sorted, n, sizeof *sorted, cmp_double);
		for (int k = 1; k < 10; k += 2) {
			double target = k / 10.0;
			size_t m = 0;
			while ((double)m / (double)n < target)
				m++;
			if (prune_target_tau(&tau, &bad, s, x, target, n) || tau != sorted[m - 1])
				failures++;
		}
	}
	check(failures == 0, "selection on ascending, descending, equal, organ-pipe and two-valued inputs");
	free(x);
	free(s);
	free(sorted);
}

static void
test_topk(void)
{
	static const size_t ks[] = {1, 2, 3, 7, 16, 17, 40};
	size_t failures = 0, wrong_kept = 0;
	size_t Rmax = 9, Cmax = 33;
	float *x = malloc(sizeof *x * Rmax * Cmax), *a = malloc(sizeof *a * Rmax * Cmax),
	      *b = malloc(sizeof *b * Rmax * Cmax);
	double *s = malloc(sizeof *s * 2 * Cmax);
	struct prune_count ca, cb;

	for (size_t C = 1; C <= Cmax; C += 4) {
		for (size_t Rr = 0; Rr <= Rmax; Rr += 3) {
			for (int trial = 0; trial < 4; trial++) {
				fill(x, Rr * C, 0.1 * trial, trial % 2 ? 0.9 : 0.3);
				for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
					size_t k = ks[t];
					memcpy(a, x, sizeof *a * Rr * C);
					memcpy(b, x, sizeof *b * Rr * C);
					if (prune_topk_rows(a, &ca, s, k, Rr, C) ||
					    prune_topk_rows_naive(b, &cb, s, k, Rr, C) ||
					    memcmp(a, b, sizeof *a * Rr * C) || !same_counts(&ca, &cb))
						failures++;
					/* exactly min(k, C) positions keep their bytes or were zero */
					for (size_t r = 0; r < Rr; r++) {
						size_t kept = 0;
						for (size_t j = 0; j < C; j++)
							kept += a[r * C + j] != 0 ||
							        memcmp(&a[r * C + j], &x[r * C + j],
							               sizeof *a) == 0;
						if (kept < (k < C ? k : C))
							wrong_kept++;
					}
				}
			}
		}
	}
	check(failures == 0, "prune_topk_rows equals its naive reference bit for bit (%zu mismatches)",
	      failures);
	check(wrong_kept == 0, "every row keeps at least min(k, C) positions (%zu rows short)", wrong_kept);

	{
		float y[8] = {1, -3, 3, 2, 0.5f, -0.5f, 0.5f, 0}; /* (2, 4) */
		struct prune_count c;
		prune_topk_rows(y, &c, s, 2, 2, 4);
		check(y[0] == 0 && y[1] == -3 && y[2] == 3 && y[3] == 0, "ties: -3 and 3 kept over 2 and 1");
		check(y[4] == 0.5f && y[5] == -0.5f && y[6] == 0 && y[7] == 0,
		      "ties broken by lower index: 0.5, -0.5 kept, the third 0.5 pruned");
		check(c.n == 8 && c.zeros_before == 1 && c.zeros_after == 4,
		      "top-k counts: 1 zero before, 4 after");
	}
	{
		float y[3] = {0, 0, 0.25f};
		struct prune_count c;
		prune_topk_rows(y, &c, s, 2, 1, 3);
		check(y[2] == 0.25f && c.zeros_after == 2, "a kept zero counts as a zero after");
	}
	free(x);
	free(a);
	free(b);
	free(s);
}

/* A tensor named name of dtype and shape (rows, cols) holding the floats v, converted exactly. */
static struct tensor *
make(struct tensor_set *set, const char *name, enum tensor_dtype dtype, int64_t rows, int64_t cols,
     const float *v)
{
	int64_t shape[2] = {rows, cols};
	struct tc_error err;
	struct tensor *t = tensor_set_add(set, name, dtype, 2, shape, &err);

	for (int64_t i = 0; i < rows * cols; i++) {
		uint32_t u;
		memcpy(&u, &v[i], sizeof u);
		switch (dtype) {
		case TENSOR_F64:
			((double *)t->data)[i] = v[i];
			break;
		case TENSOR_F32:
			((float *)t->data)[i] = v[i];
			break;
		case TENSOR_BF16:
			((uint16_t *)t->data)[i] = (uint16_t)(u >> 16);
			break;
		case TENSOR_F16: {
			/* v is 0 or a multiple of 1/8 below 16 in magnitude: a normal half, or zero */
			uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
			int e = (int)((u >> 23) & 0xff) - 127;
			uint32_t m = (u >> 13) & 0x3ff;
			((uint16_t *)t->data)[i] =
			    v[i] == 0 ? sign : (uint16_t)(sign | (uint16_t)((e + 15) << 10) | m);
			break;
		}
		default:
			break;
		}
	}
	return t;
}

static double
value(const struct tensor *t, size_t i)
{
	uint16_t h;
	uint32_t u;
	float f;

	switch (t->dtype) {
	case TENSOR_F64:
		return ((const double *)t->data)[i];
	case TENSOR_F32:
		return ((const float *)t->data)[i];
	case TENSOR_BF16:
		u = (uint32_t)((const uint16_t *)t->data)[i] << 16;
		memcpy(&f, &u, sizeof f);
		return f;
	case TENSOR_F16:
		h = ((const uint16_t *)t->data)[i];
		if ((h & 0x7c00) == 0)
			return (h & 0x8000 ? -1 : 1) * ldexp(h & 0x3ff, -24);
		return (h & 0x8000 ? -1 : 1) * ldexp((h & 0x3ff) + 1024, ((h >> 10) & 0x1f) - 25);
	default:
		return NAN;
	}
}

static void
test_dtypes(void)
{
	static const enum tensor_dtype dtypes[] = {TENSOR_F64, TENSOR_F16, TENSOR_BF16};
	struct prune_spec specs[] = {{PRUNE_TAU, 0.5, 0, 0},     {PRUNE_TAU, 0, 0, 0},
	                             {PRUNE_TARGET, 0, 0.6, 0},  {PRUNE_TARGET, 0, 0, 0},
	                             {PRUNE_TOPK, 0, 0, 3},      {PRUNE_TOPK, 0, 0, 1},
	                             {PRUNE_TARGET, 0, 0.95, 0}, {PRUNE_TAU, 1.3, 0, 0}};
	size_t failures = 0, rows = 6, cols = 10, n = rows * cols;
	float v[60];
	struct tc_error err;

	for (int trial = 0; trial < 10; trial++) {
		for (size_t i = 0; i < n; i++)
			v[i] = (float)((double)((int)rng_below(&R, 127) - 63) / 8 *
			               (rng_below(&R, 5) ? 1 : 0.25));
		for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
			struct tensor_set set;
			struct prune_count c32, c;
			double tau32, tau;
			struct tensor *ref;

			tensor_set_init(&set);
			ref = make(&set, "ref", TENSOR_F32, (int64_t)rows, (int64_t)cols, v);
			prune_tensor(ref, &tau32, &c32, &specs[s], &err);
			for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
				char name[8];
				struct tensor *t;
				snprintf(name, sizeof name, "t%zu", d);
				t = make(&set, name, dtypes[d], (int64_t)rows, (int64_t)cols, v);
				ref = tensor_set_find(&set, "ref");
				if (prune_tensor(t, &tau, &c, &specs[s], &err) || tau != tau32 ||
				    !same_counts(&c, &c32)) {
					failures++;
					continue;
				}
				for (size_t i = 0; i < n; i++)
					if (value(t, i) != value(ref, i) ||
					    signbit(value(t, i)) != signbit(value(ref, i)))
						failures++;
			}
			tensor_set_release(&set);
		}
	}
	check(failures == 0, "F64, F16 and BF16 tensors are pruned exactly as F32 (%zu mismatches)",
	      failures);
}

static void
test_tensor_edges(void)
{
	struct tensor_set set;
	struct tc_error err;
	struct prune_count c;
	struct prune_spec tau = {PRUNE_TAU, 1, 0, 0}, target = {PRUNE_TARGET, 0, 0.25, 0},
	                  topk = {PRUNE_TOPK, 0, 0, 1};
	int64_t four = 4, zero = 0;
	struct tensor *t;
	double th;

	tensor_set_init(&set);
	/* F16: 2^-24 (smallest subnormal), 65504 (largest), 1, -2^-14 (smallest normal) */
	t = tensor_set_add(&set, "h", TENSOR_F16, 1, &four, &err);
	memcpy(t->data, (uint16_t[]){0x0001, 0x7bff, 0x3c00, 0x8400}, 8);
	prune_tensor(t, &th, &c, &target, &err);
	check(th == ldexp(1, -24), "F16 subnormal decoded: threshold 2^-24 (%g)", th);
	target.target = 0.5;
	prune_tensor(t, &th, &c, &target, &err);
	check(th == ldexp(1, -14), "F16 normal decoded: threshold 2^-14 (%g)", th);
	target.target = 0.75;
	prune_tensor(t, &th, &c, &target, &err);
	check(th == 1 && ((uint16_t *)t->data)[1] == 0x7bff && c.zeros_after == 3,
	      "F16 65504 kept, 1 pruned");

	memcpy(t->data, (uint16_t[]){0x3c00, 0x3c00, 0x7e00, 0x0000}, 8);
	check(prune_tensor(t, &th, &c, &tau, &err) == -1 &&
	          strcmp(err.msg, "tensor 'h': element 2 is nan (pruning needs finite values)") == 0,
	      "F16 NaN: %s", err.msg);
	t = tensor_set_add(&set, "b", TENSOR_BF16, 1, &four, &err);
	memcpy(t->data, (uint16_t[]){0x3f80, 0xff80, 0, 0}, 8);
	check(prune_tensor(t, &th, &c, &topk, &err) == -1 &&
	          strcmp(err.msg, "tensor 'b': element 1 is -inf (pruning needs finite values)") == 0,
	      "BF16 -inf: %s", err.msg);
	t = tensor_set_add(&set, "i", TENSOR_I32, 1, &four, &err);
	check(prune_tensor(t, &th, &c, &tau, &err) == -1 && strstr(err.msg, "cannot prune I32"),
	      "an integer tensor is refused: %s", err.msg);

	t = tensor_set_add(&set, "s", TENSOR_F32, 0, NULL, &err);
	*(float *)t->data = -0.5f;
	check(prune_tensor(t, &th, &c, &topk, &err) == 0 && *(float *)t->data == -0.5f && c.n == 1,
	      "a scalar is a row of one: top-1 keeps it");
	check(prune_tensor(t, &th, &c, &tau, &err) == 0 && *(float *)t->data == 0 && c.zeros_after == 1,
	      "a scalar under tau is pruned");
	t = tensor_set_add(&set, "e", TENSOR_F64, 1, &zero, &err);
	check(prune_tensor(t, &th, &c, &target, &err) == 0 && c.n == 0 && th == 0,
	      "an empty tensor: nothing");
	check(prune_tensor(t, &th, &c, &topk, &err) == 0 && c.n == 0, "an empty tensor under top-k: nothing");
	tensor_set_release(&set);
}

int
main(void)
{
	rng_seed(&R, 20240611);
	test_tau();
	test_tau_exact();
	test_nonfinite();
	test_target();
	test_select_adversarial();
	test_topk();
	test_dtypes();
	test_tensor_edges();
	return tap_done();
}
