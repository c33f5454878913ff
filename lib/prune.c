/*
 * prune.c: activation pruning kernels (prune.h): DynaTran's magnitude threshold, the threshold of a
 * target sparsity, and top-k per row, for fp32 arrays and for tensors of any floating-point dtype.
 *
 * n = elements, R = rows, C = columns (the last dimension), k = elements kept per row.
 *
 * The threshold rule is one pass with no sorting: that is DynaTran's point against top-k, whose cost is a
 * selection per row. Selections here are quickselect with a three-way partition (so a row of equal
 * values, common among post-softmax zeros, takes one step) and a median-of-three pivot; after 2 log2(n)
 * + 8 rounds without finishing, the rest is sorted, which bounds the worst case at O(n log n). The
 * selection finds a value, not a position, so the result does not depend on how it gets there.
 *
 * Magnitudes are compared in double, in which every F64, F32, F16 and BF16 value is exact, so thresholds
 * and ties mean the same in every dtype. The fp32 threshold loop instead compares floats against the
 * largest float not above tau, which is the same comparison, and is branch-free so that it vectorises:
 * about 0.8 ns an element on one core of the 2-core build machine (16M elements), against about 20 ns
 * for a target-sparsity threshold (a selection over the whole tensor) or for top-16 of rows of 128.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prune.h"
#include "util.h"

/* ---- element access ---- */

/* The value of an IEEE binary16. */
static double
f16_value(uint16_t h)
{
	int e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v;

	if (e == 31)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexp(m, -24); /* subnormal: m * 2^-14 * 2^-10 */
	else
		v = ldexp(m + 1024, e - 25);
	return h & 0x8000 ? -v : v;
}

/* The value of a bfloat16: the upper half of a binary32. */
static double
bf16_value(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;

	memcpy(&f, &u, sizeof f);
	return f;
}

/* Element i of the array p of dtype (one of the four floating-point ones), as a double. */
static double
value_at(const void *p, enum tensor_dtype dtype, size_t i)
{
	switch (dtype) {
	case TENSOR_F64:
		return ((const double *)p)[i];
	case TENSOR_F32:
		return ((const float *)p)[i];
	case TENSOR_F16:
		return f16_value(((const uint16_t *)p)[i]);
	case TENSOR_BF16:
		return bf16_value(((const uint16_t *)p)[i]);
	default:
		return NAN;
	}
}

/* Set element i to +0, whose bytes are all zero in every floating-point dtype. */
static void
zero_at(void *p, size_t size, size_t i)
{
	memset((char *)p + i * size, 0, size);
}

/*
 * mag (n) = |p[0..n)|. Returns 0, or -1 with *bad set to the index of the first NaN or infinity (mag
 * then holds garbage).
 */
static int
load_mag(double *mag, size_t *bad, const void *p, enum tensor_dtype dtype, size_t n)
{
	int finite = 1;

	if (dtype == TENSOR_F32) {
		const float *x = p;
#pragma omp simd reduction(& : finite)
		for (size_t i = 0; i < n; i++) {
			float a = fabsf(x[i]);
			finite &= a <= FLT_MAX;
			mag[i] = a;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			double a = fabs(value_at(p, dtype, i));
			finite &= a <= DBL_MAX;
			mag[i] = a;
		}
	}
	if (finite)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(value_at(p, dtype, i))) {
			*bad = i;
			break;
		}
	return -1;
}

/* ---- selection ---- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median3(double a, double b, double c)
{
	if (a > b) {
		double t = a;
		a = b;
		b = t;
	}
	return c < a ? a : c > b ? b : c;
}

/*
 * The value that a[k] would hold if a (n, no NaN) were sorted ascending; k < n. Reorders a. Quickselect
 * with a three-way partition: a[lo, lt) < pivot, a[lt, gt) == pivot, a[gt, hi) > pivot.
 */
static double
select_kth(double *a, size_t n, size_t k)
{
	size_t lo = 0, hi = n;
	int budget = 8;

	for (size_t m = n; m > 1; m >>= 1)
		budget += 2;
	while (hi - lo > 1) {
		size_t lt = lo, i = lo, gt = hi;
		double pivot, t;

		if (budget-- == 0) {
			qsort(a + lo, hi - lo, sizeof *a, cmp_double);
			return a[k];
		}
		pivot = median3(a[lo], a[lo + (hi - lo) / 2], a[hi - 1]);
		while (i < gt) {
			if (a[i] < pivot) {
				t = a[i];
				a[i++] = a[lt];
				a[lt++] = t;
			} else if (a[i] > pivot) {
				t = a[i];
				a[i] = a[--gt];
				a[gt] = t;
			} else {
				i++;
			}
		}
		if (k < lt)
			hi = lt;
		else if (k >= gt)
			lo = gt;
		else
			return pivot;
	}
	return a[k];
}

/* The fewest elements of n whose share reaches target, in the double arithmetic callers measure with. */
static size_t
target_count(double target, size_t n)
{
	double want = ceil(target * (double)n);
	size_t m = want >= (double)n ? n : (size_t)want;

	while (m > 0 && (double)(m - 1) / (double)n >= target)
		m--;
	while (m < n && (double)m / (double)n < target)
		m++;
	return m;
}

/* ---- the three rules, for any floating-point dtype ---- */

/* The largest float not above tau (tau >= 0): for a float a, a <= it exactly when a <= tau. */
static float
float_threshold(double tau)
{
	float f = (float)tau;

	return (double)f > tau ? nextafterf(f, 0) : f;
}

/* DynaTran on p (n) of dtype; see prune_tau. */
static int
tau_pass(void *p, enum tensor_dtype dtype, struct prune_count *c, double tau, size_t n)
{
	size_t size = tensor_dtype_size(dtype), zeros = 0, pruned = 0;
	int finite = 1;

	memset(c, 0, sizeof *c);
	if (dtype == TENSOR_F32) {
		float *x = p, ft = float_threshold(tau);
#pragma omp simd reduction(+ : zeros, pruned) reduction(& : finite)
		for (size_t i = 0; i < n; i++) {
			float a = fabsf(x[i]);
			int zero = a == 0, cut = (a <= ft) & !zero;
			finite &= a <= FLT_MAX;
			zeros += (size_t)zero;
			pruned += (size_t)cut;
			x[i] = cut ? 0.0f : x[i];
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			double a = fabs(value_at(p, dtype, i));
			finite &= a <= DBL_MAX;
			zeros += a == 0;
			if (a <= tau && a != 0) {
				zero_at(p, size, i);
				pruned++;
			}
		}
	}
	c->n = n;
	c->zeros_before = zeros;
	c->zeros_after = zeros + pruned;
	if (finite)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(value_at(p, dtype, i))) {
			c->bad = i;
			break;
		}
	return -1;
}

/* The threshold of a target sparsity for p (n) of dtype; see prune_target_tau. */
static int
target_tau(double *tau, size_t *bad, double *scratch, const void *p, enum tensor_dtype dtype, double target,
           size_t n)
{
	size_t m;

	if (load_mag(scratch, bad, p, dtype, n) < 0)
		return -1;
	m = target_count(target, n);
	*tau = m == 0 ? 0 : select_kth(scratch, n, m - 1);
	return 0;
}

/* Top-k of each row of p (R, C) of dtype; see prune_topk_rows. */
static int
topk_pass(void *p, enum tensor_dtype dtype, struct prune_count *c, double *scratch, size_t k, size_t R,
          size_t C)
{
	size_t size = tensor_dtype_size(dtype);
	double *mag = scratch, *work = scratch + C; /* (C), (C) */

	memset(c, 0, sizeof *c);
	c->n = R * C;
	for (size_t r = 0; r < R; r++) {
		void *row = (char *)p + r * C * size;
		size_t zeros = 0, above = 0, ties;
		double v;

		if (load_mag(mag, &c->bad, row, dtype, C) < 0) {
			c->bad += r * C;
			return -1;
		}
		for (size_t j = 0; j < C; j++)
			zeros += mag[j] == 0;
		c->zeros_before += zeros;
		if (k >= C) {
			c->zeros_after += zeros;
			continue;
		}
		memcpy(work, mag, C * sizeof *work);
		v = select_kth(work, C, C - k); /* the k-th largest magnitude */
		for (size_t j = 0; j < C; j++)
			above += mag[j] > v;
		ties = k - above; /* how many elements equal to v are kept, lowest index first */
		for (size_t j = 0; j < C; j++) {
			int keep = mag[j] > v;
			if (!keep && mag[j] == v && ties > 0) {
				keep = 1;
				ties--;
			}
			if (!keep && mag[j] != 0)
				zero_at(row, size, j);
			c->zeros_after += !keep || mag[j] == 0;
		}
	}
	return 0;
}

/* ---- fp32 kernels and their naive references ---- */

int
prune_tau(float *x, struct prune_count *c, double tau, size_t n)
{
	return tau_pass(x, TENSOR_F32, c, tau, n);
}

int
prune_tau_naive(float *x, struct prune_count *c, double tau, size_t n)
{
	memset(c, 0, sizeof *c);
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i])) {
			c->bad = i;
			return -1;
		}
		if (x[i] == 0)
			c->zeros_before++;
		else if (fabs((double)x[i]) <= tau)
			x[i] = 0;
		c->zeros_after += x[i] == 0;
	}
	return 0;
}

int
prune_target_tau(double *tau, size_t *bad, double *scratch, const float *x, double target, size_t n)
{
	return target_tau(tau, bad, scratch, x, TENSOR_F32, target, n);
}

int
prune_target_tau_naive(double *tau, size_t *bad, double *scratch, const float *x, double target, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i])) {
			*bad = i;
			return -1;
		}
		scratch[i] = fabs((double)x[i]);
	}
	qsort(scratch, n, sizeof *scratch, cmp_double);
	/* The least threshold that works is 0 or one of the magnitudes: try them in increasing order. */
	for (size_t t = 0; t <= n; t++) {
		double cand = t == 0 ? 0 : scratch[t - 1];
		size_t count = 0;
		for (size_t i = 0; i < n; i++)
			count += fabs((double)x[i]) <= cand;
		if (n == 0 || (double)count / (double)n >= target) {
			*tau = cand;
			return 0;
		}
	}
	*tau = n ? scratch[n - 1] : 0; /* not reached: every element is <= the largest */
	return 0;
}

int
prune_topk_rows(float *x, struct prune_count *c, double *scratch, size_t k, size_t R, size_t C)
{
	return topk_pass(x, TENSOR_F32, c, scratch, k, R, C);
}

/* Does the element of magnitude a at index i come before the one of magnitude b at index j in keeping
 * order: larger magnitude first, then lower index? */
static int
keeps_before(double a, size_t i, double b, size_t j)
{
	return a > b || (a == b && i < j);
}

int
prune_topk_rows_naive(float *x, struct prune_count *c, double *scratch, size_t k, size_t R, size_t C)
{
	memset(c, 0, sizeof *c);
	c->n = R * C;
	for (size_t i = 0; i < R * C; i++)
		if (!isfinite(x[i])) {
			c->bad = i;
			return -1;
		}
	for (size_t r = 0; r < R; r++) {
		float *row = x + r * C; /* (C) */
		for (size_t j = 0; j < C; j++) {
			scratch[j] = fabs((double)row[j]);
			c->zeros_before += row[j] == 0;
		}
		for (size_t j = 0; j < C; j++) {
			size_t rank = 0; /* elements kept before row[j] */
			for (size_t i = 0; i < C; i++)
				rank += keeps_before(scratch[i], i, scratch[j], j);
			if (rank >= k && row[j] != 0)
				row[j] = 0;
			c->zeros_after += row[j] == 0;
		}
	}
	return 0;
}

/* ---- tensors ---- */

int
prune_dtype_ok(enum tensor_dtype dtype)
{
	return dtype == TENSOR_F64 || dtype == TENSOR_F32 || dtype == TENSOR_F16 || dtype == TENSOR_BF16;
}

int
prune_tensor(struct tensor *t, double *tau, struct prune_count *c, const struct prune_spec *spec,
             struct tc_error *err)
{
	size_t n = (size_t)tensor_numel(t), C = t->ndim ? (size_t)t->shape[t->ndim - 1] : 1;
	double *scratch = NULL;
	int rc = 0;

	if (!prune_dtype_ok(t->dtype))
		return tc_error_set(err, "tensor '%s': cannot prune %s elements (only F64, F32, F16, BF16)",
		                    t->name, tensor_dtype_name(t->dtype));
	memset(c, 0, sizeof *c);
	*tau = 0;
	switch (spec->rule) {
	case PRUNE_TAU:
		*tau = spec->tau;
		rc = tau_pass(t->data, t->dtype, c, *tau, n);
		break;
	case PRUNE_TARGET:
		scratch = emalloc(sizeof *scratch * (n ? n : 1));
		rc = target_tau(tau, &c->bad, scratch, t->data, t->dtype, spec->target, n);
		if (rc == 0)
			rc = tau_pass(t->data, t->dtype, c, *tau, n);
		break;
	case PRUNE_TOPK:
		scratch = emalloc(sizeof *scratch * 2 * (C ? C : 1));
		rc = topk_pass(t->data, t->dtype, c, scratch, spec->k, C ? n / C : 0, C);
		break;
	}
	free(scratch);
	if (rc < 0)
		return tc_error_set(err, "tensor '%s': element %zu is %g (pruning needs finite values)",
		                    t->name, c->bad, value_at(t->data, t->dtype, c->bad));
	return 0;
}
