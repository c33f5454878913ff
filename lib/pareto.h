/*
 * pareto.h: non-dominated sorting, NSGA-II crowding distance and exact hypervolume of point sets whose
 * objectives are all minimised (negate an objective to maximise it).
 *
 * Ownership: callers own every array passed in or out; scratch memory is allocated and freed inside each
 * call, and nothing is kept between calls.
 *
 * Points are n rows of m finite doubles, row-major: pts[i * m + k] is objective k of point i, m >= 1, and
 * n = 0 is allowed. p dominates q iff p_k <= q_k for every k and p_k < q_k for at least one k, so identical
 * vectors never dominate each other. Every function returns 0 on success and -1 on allocation failure or
 * on the invalid arguments its comment names; on failure the outputs are unspecified.
 *
 * Each fast function has a naive reference beside it, slow but short enough to check by reading; the unit
 * test compares them.
 */
#ifndef TC_PARETO_H
#define TC_PARETO_H

#include <stddef.h>

/*
 * rank[i] = 0 if nothing dominates point i, else 1 + the largest rank among the points dominating it; this
 * is the index of the front in which i is removed by repeated non-dominated peeling. Duplicates get equal
 * ranks. O(n log n) for m <= 2, O(n log^(m-1) n) whatever the data otherwise (divide and conquer). -1 also
 * when m < 1 or n > INT_MAX.
 */
int pareto_rank(int *rank, const double *pts, size_t n, int m);
/* Same result and errors in O(m n^2) time and O(n) memory, by counting dominators and taking points in
 * topological order. */
int pareto_rank_naive(int *rank, const double *pts, size_t n, int m);

/*
 * NSGA-II crowding distance of every point within its front (the points sharing its rank value): per
 * objective, points sorted by value (ties by index) add (next - previous) / (max - min) of that front; the
 * first and last of the sort get INFINITY; an objective whose range in the front is zero is skipped; all
 * points of a front of at most 2 points get INFINITY. rank is any labelling with values in [0, n), usually
 * from pareto_rank; -1 also when a label is outside that range, m < 1 or n > INT_MAX.
 */
int pareto_crowding(double *dist, const double *pts, const int *rank, size_t n, int m);

/*
 * *hv = the Lebesgue measure of the union over points p of the boxes [p, ref]. Points with p_k >= ref_k
 * for some k add nothing; dominated points and duplicates are allowed. O(n log n) for m <= 3; for m >= 4
 * WFG (exclusive volumes of limit sets), exponential in m in the worst case but fine for a few hundred
 * points of 4 or 5 objectives. -1 also when m < 1 or n > INT_MAX.
 */
int pareto_hypervolume(double *hv, const double *pts, size_t n, int m, const double *ref);
/*
 * Same result by summing the cells of the grid of distinct coordinates that some point covers:
 * O(m n (n + 1)^m), for small n only. Errors as pareto_hypervolume, and -1 when the grid has more than
 * 2^32 cells.
 */
int pareto_hypervolume_naive(double *hv, const double *pts, size_t n, int m, const double *ref);
/*
 * Same result with the WFG decomposition applied at the top level for every m >= 2 (the m - 1 dimensional
 * sub-problems then use the routine pareto_hypervolume would): exposed so that tests can check the 2-D and
 * 3-D sweeps against it.
 */
int pareto_hypervolume_wfg(double *hv, const double *pts, size_t n, int m, const double *ref);

#endif
