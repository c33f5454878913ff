/*
 * prune.h: activation pruning. DynaTran's rule (AccelTran): every element with |x| <= tau becomes zero;
 * the threshold that reaches a target sparsity; and the top-k baseline, which keeps the k largest
 * magnitudes of each row. Kernels on fp32 arrays for training, and prune_tensor for every floating-point
 * dtype of tc-tensor(5) (F64, F32, F16, BF16) for tc-prune.
 *
 * Ownership: nothing here keeps a pointer after it returns; arrays and scratch space are the caller's,
 * and prune_tensor allocates and frees its own scratch.
 *
 * Conventions: n = elements, R = rows, C = columns (the last dimension), k = elements kept per row.
 * An element is zero when it equals 0 (+0 or -0). Pruning writes +0 and never rewrites a zero, so a rule
 * that prunes nothing (tau = 0, target 0, k >= C) leaves every byte as it was. NaN and infinities have
 * no magnitude a threshold means anything against: every function refuses them and names the first.
 * Every fast kernel has a naive reference (suffix _naive) beside it; the unit tests hold them equal.
 */
#ifndef TC_PRUNE_H
#define TC_PRUNE_H

#include <stddef.h>

#include "tensor.h"

struct tc_error;

/* What a pruning call saw and did. */
struct prune_count {
	size_t n;            /* elements looked at */
	size_t zeros_before; /* elements equal to zero on entry */
	size_t zeros_after;  /* elements equal to zero on return */
	size_t bad;          /* when the call returned -1: the index of the first NaN or infinity */
};

/*
 * DynaTran on x (n), in place, in one pass: every element with |x| <= tau becomes +0 (tau >= 0; the
 * comparison is exact, as if x and tau were both real numbers). Fills c. Returns 0, or -1 when x holds
 * a NaN or an infinity (c->bad is the first; x is then partly pruned and c's zero counts are not
 * meaningful).
 */
int prune_tau(float *x, struct prune_count *c, double tau, size_t n);
int prune_tau_naive(float *x, struct prune_count *c, double tau, size_t n);

/*
 * The threshold for a target sparsity: the smallest tau >= 0 such that at least a fraction target (in
 * [0, 1)) of the elements of x (n) have |x| <= tau, that is, such that (double)count / n >= target.
 * Pruning with it zeroes every element tied with tau, so the sparsity reached can exceed target. It is
 * 0 for target 0, for an empty x, and when x already has enough zeros. Expected O(n) time (a selection,
 * not a sort; O(n log n) at worst); scratch (n) is overwritten. Returns 0 with *tau set, or -1 with *bad
 * set to the index of the first NaN or infinity.
 */
int prune_target_tau(double *tau, size_t *bad, double *scratch, const float *x, double target, size_t n);
/* The same by sorting and trying every candidate threshold: O(n^2), for tests. */
int prune_target_tau_naive(double *tau, size_t *bad, double *scratch, const float *x, double target,
                           size_t n);

/*
 * The top-k baseline on x (R, C), in place: in each row, the k elements of largest magnitude are kept
 * and every other becomes +0 (k >= 1; a row of C <= k elements is left as it is). Among elements of equal
 * magnitude the one with the lower index is kept first, so exactly min(k, C) positions of each row are
 * kept, some of which may hold zeros already. Expected O(R C) time; scratch (2 C) is overwritten. Fills c;
 * returns 0, or -1 when x holds a NaN or an infinity (c->bad is the first; the rows before its row are
 * pruned, the others untouched).
 */
int prune_topk_rows(float *x, struct prune_count *c, double *scratch, size_t k, size_t R, size_t C);
/* The same by ranking every element against its row: O(R C^2), for tests; scratch (C). */
int prune_topk_rows_naive(float *x, struct prune_count *c, double *scratch, size_t k, size_t R, size_t C);

enum prune_rule {
	PRUNE_TAU,    /* a given threshold: DynaTran */
	PRUNE_TARGET, /* the threshold of a target sparsity, chosen per tensor */
	PRUNE_TOPK    /* the k largest magnitudes of each row along the last dimension */
};

struct prune_spec {
	enum prune_rule rule;
	double tau;    /* PRUNE_TAU: >= 0 */
	double target; /* PRUNE_TARGET: in [0, 1) */
	size_t k;      /* PRUNE_TOPK: >= 1 */
};

/* Is dtype one that prune_tensor works on: F64, F32, F16 or BF16? */
int prune_dtype_ok(enum tensor_dtype dtype);

/*
 * Prune t in place by spec, as the kernels above do for fp32 (a scalar is one row of one element). Sets
 * *tau to the threshold used (PRUNE_TAU, PRUNE_TARGET; 0 for PRUNE_TOPK) and fills c. Returns 0, or -1
 * with err set: "tensor 'name': element 17 is nan (pruning needs finite values)", or a dtype that is not
 * floating-point. After a failure t is partly pruned.
 */
int prune_tensor(struct tensor *t, double *tau, struct prune_count *c, const struct prune_spec *spec,
                 struct tc_error *err);

#endif
