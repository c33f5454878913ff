/*
 * propose.h: BOSHCODE proposals (shared/reference/boshcode.md, with the departures tc-sample(1)
 * lists): surrogates trained on the evaluated candidates, GOBI from the most promising points of a
 * random pool, and a choice of queries by the lower confidence bound of the loss (one objective) or
 * by the hypervolume gain of the optimistic prediction (several objectives).
 *
 * Candidates are points of the unit box [0, 1]^(d1 + d2) (the sampling coordinates of space.h:
 * model side first); the caller supplies how to draw a random valid one and how to snap a real
 * point to a valid candidate, which also says whether that candidate is new.
 *
 * Ownership: callers own every array; nothing is kept between calls.
 */
#ifndef TC_PROPOSE_H
#define TC_PROPOSE_H

#include <stdint.h>

#include "rng.h"
#include "surrogate.h"

struct bo_params {
	int starts;   /* GOBI starting points (4, as TransCODE) */
	int pool;     /* random candidates scored per call (1000) */
	double k_ep;  /* weight of the epistemic deviation in the bound (0.5) */
	double k_al;  /* weight of the aleatoric variance (0.5) */
	int use_al;   /* include the aleatoric term (1, as TransCODE) */
	double p_unc; /* share of queries by largest epistemic uncertainty (0) */
	double p_div; /* share of random queries, for diversity (0) */
	struct surrogate_params sp;
};

struct bo_space {
	void *ctx;
	/* x = the coordinates of a uniformly random valid candidate */
	void (*draw)(void *ctx, struct rng *r, double *x);
	/* Snap x in place to the coordinates of the nearest valid candidate; return 1 if that
	 * candidate is new (neither evaluated nor proposed), else 0. With take, mark it proposed. */
	int (*snap)(void *ctx, double *x, int take);
};

/* What the surrogate said about a proposal, per objective (losses in normalised units). */
struct bo_pred {
	double mu[8], sep[8], sal[8];
	double acq; /* the bound (one objective) or the hypervolume gain (several) */
	int how;    /* 0 GOBI, 1 pool, 2 uncertainty, 3 diversity */
};

#define BO_MAX_OBJ 8

void bo_defaults(struct bo_params *p);
/*
 * Up to k new candidates into out (k rows of d1 + d2), given n evaluated ones: x (n rows) and y
 * (n rows of m <= BO_MAX_OBJ values to minimise, finite). Each column of y is scaled to [0.1, 0.9]
 * by its range before training. pred (k entries) may be NULL. Returns the number proposed (fewer
 * than k only when the pool holds too few new candidates). n >= 2.
 */
int bo_propose(double *out, struct bo_pred *pred, int k, const double *x, const double *y, int n, int m,
               int d1, int d2, const struct bo_params *p, uint64_t seed, const struct bo_space *sp);

#endif
