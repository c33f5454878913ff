/*
 * nsga2.h: offspring of NSGA-II (Deb, Pratap, Agarwal and Meyarivan 2002) over a discrete design space
 * embedded in the unit box, for a search that proposes a batch of new candidates from everything
 * evaluated so far.
 *
 * Ownership: callers own every array passed in or out; scratch memory is allocated and freed inside each
 * call, and nothing is kept between calls.
 *
 * Candidates are points of [0,1]^d whose coordinate i decodes to level floor(u * levels[i]) (clamped), as
 * the space decoders of space.h do; a point is canonical when every coordinate is the centre of its level,
 * (k + 0.5) / levels[i].
 */
#ifndef TC_NSGA2_H
#define TC_NSGA2_H

#include "rng.h"

struct nsga2_params {
	int popsize;  /* parents kept by survival from the history, default 32 */
	double pc;    /* crossover probability per mating pair, default 0.9 */
	double eta_c; /* SBX distribution index, default 15 */
	double pm;    /* mutation: per-variable probability; <= 0 means min(0.5, 1/d) */
	double eta_m; /* polynomial mutation index, default 20 */
};

void nsga2_defaults(struct nsga2_params *p);

/*
 * Offspring of a steady-state NSGA-II whose population is the whole history: x (n x d, canonical points),
 * f (n x m objectives, all minimised, finite), viol (n constraint violations, 0 = feasible, or NULL for all
 * feasible). Survival (Deb 2002) keeps the best popsize by constraint-domination rank then crowding distance;
 * parents are picked by binary tournament (feasible beats infeasible; smaller violation between infeasible;
 * lower rank, then larger crowding distance, then a coin between feasible ones); SBX (bounded form) on level
 * indices treated as reals in [0, levels-1] (ordinal), then polynomial mutation (bounded form), then rounding
 * to the nearest level, written as canonical points into child (k x d). A dimension with levels[i] == 1 stays
 * at 0.5. Children equal to each other or to any row of x are redrawn (up to 50 tries each, then kept).
 * With n < 2, children are uniform random canonical points. Deterministic given rng state.
 * Returns 0, or -1 on bad arguments (k < 0, d < 0, m < 1, levels[i] < 1).
 *
 * Details the summary leaves open. p == NULL means the defaults. d in the default pm counts only the
 * dimensions with levels[i] > 1, since a 1-level dimension cannot mutate. Rounding often gives a parent
 * back unchanged (SBX between nearby levels, a small mutation), so a child whose levels equal either of its
 * parents' has one random dimension (levels > 1) moved to a different level, uniformly, before the
 * duplicate check; without this most children of a converged population would be redrawn. Mating pairs
 * give children two at a time, in order, and a redraw takes the next child of that sequence. The two
 * tournament entrants are drawn with replacement. Also -1 when n < 0, popsize < 1, pc outside [0, 1], pm
 * NaN, an eta negative or not finite, an objective not finite, a violation negative or NaN, or on
 * allocation failure; child is then unspecified.
 */
int nsga2_offspring(double *child, int k, const double *x, const double *f, const double *viol, int n, int d,
                    int m, const int *levels, const struct nsga2_params *p, struct rng *rng);

/*
 * The survival step alone: idx[0..kept) = the indices of the kept points, best first, kept =
 * min(n, popsize). Order: feasible points (viol 0) by rank, then larger crowding distance; then
 * infeasible points by smaller violation; ties by index. rank (n) = pareto_rank among the feasible points,
 * and for infeasible points 1 + the largest feasible rank (0 if none is feasible); crowd (n) =
 * pareto_crowding within each feasible front, 0 for infeasible points. Returns kept, or -1 on the bad
 * arguments of nsga2_offspring (n < 0, m < 1, popsize < 1, values) or allocation failure.
 */
int nsga2_survivors(int *idx, int *rank, double *crowd, const double *f, const double *viol, int n, int m,
                    int popsize);

/*
 * The variation operators on one variable, exposed for tests. nsga2_sbx: the two SBX children of y1, y2 in
 * [yl, yu] (bounded form, shared u, clamped, swapped with probability 1/2); parents closer than 1e-14 are
 * returned unchanged and draw nothing. nsga2_pm: polynomial mutation (bounded form) of y in [yl, yu],
 * yl < yu. Both consume rng.
 */
void nsga2_sbx(double *c1, double *c2, double y1, double y2, double yl, double yu, double eta,
               struct rng *rng);
double nsga2_pm(double y, double yl, double yu, double eta, struct rng *rng);

#endif
