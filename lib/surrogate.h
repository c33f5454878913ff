/*
 * surrogate.h: the BOSHCODE surrogate (shared/reference/boshcode.md sections 2 to 5): three small
 * two-input networks trained on evaluated candidates, and GOBI, the optimiser that moves a point of
 * the input box towards a lower acquisition value.
 *
 *   teacher  f(x1, x2) in (0, 1): predicts the normalised loss; its Monte Carlo dropout spread is
 *            the student's target.
 *   student  g(x1, x2) > 0: the epistemic standard deviation.
 *   NPN      h(x1, x2) = (mean, variance): a natural-parameter network whose output variance is
 *            the aleatoric uncertainty; its mean is the prediction.
 *
 * Inputs live in the unit box [0, 1]^(d1 + d2): x1 the model side, x2 the accelerator side (either
 * may have zero width when that side is fixed). Targets are losses in (0, 1), lower is better.
 * Arithmetic is double; everything random draws from the surrogate's own seeded generator, so the
 * same data and seed give the same networks.
 *
 * Ownership: surrogate_init allocates the parameter and optimiser arrays; surrogate_release frees
 * them. The functions are not thread-safe on one surrogate, except the const ones.
 */
#ifndef TC_SURROGATE_H
#define TC_SURROGATE_H

#include <stdint.h>

#include "rng.h"

#define SG_MAXD 256 /* widest input side */

struct sg_layer {
	int in, out;
	int w, b, ws, bs; /* offsets of W (in x out, row-major), bias; NPN: their variance parameters */
	int act;          /* activation after the product */
	int drop;         /* inverted dropout (p = 0.3) after the activation, in the training state */
};

/* A two-branch network: chain 0 reads x1, chain 1 reads x2, chain 2 (the head) reads their
 * concatenated outputs. */
struct sg_net {
	int npn;
	int nl[3];
	struct sg_layer L[3][3];
	int np;
	double *p, *g, *m, *v; /* parameters, gradient, optimiser moments */
	double *vs, *sg;       /* NPN: softplus and sigmoid of the variance parameters */
	long t;                /* optimiser steps */
};

struct surrogate_params {
	int epochs;          /* most epochs per network (200) */
	double lr_teacher;   /* AdamW, 2e-3 */
	double lr_student;   /* SGD, 2e-3 */
	double lr_npn;       /* AdamW, see surrogate.c */
	double weight_decay; /* AdamW's decoupled decay, 0.01 */
	int mc_passes;       /* teacher passes per student target, 10 */
	int batch;           /* samples per optimiser step (the released code: 1) */
};

struct surrogate {
	int d1, d2;
	struct sg_net teacher, student, npn;
	struct surrogate_params par;
	struct rng rng;
	int epochs_run[3]; /* teacher, student, NPN in the last surrogate_train */
};

void surrogate_defaults(struct surrogate_params *p);
/* New networks for inputs of widths d1, d2 (each 0..SG_MAXD), initialised from seed. */
void surrogate_init(struct surrogate *s, int d1, int d2, const struct surrogate_params *p, uint64_t seed);
void surrogate_release(struct surrogate *s);
/*
 * Train teacher, then student, then NPN on n samples (x: n rows of d1 + d2 in [0, 1]; y: targets)
 * with per-sample steps, a fresh 80/20 split every epoch and early stopping (section 4). n >= 2.
 */
void surrogate_train(struct surrogate *s, const double *x, const double *y, int n);
/* Predictions at x: NPN mean, student's epistemic deviation, NPN variance (any may be NULL). */
void surrogate_predict(const struct surrogate *s, const double *x, double *mu, double *sep, double *sal);
/*
 * The value c_mu * mean + c_ep * epistemic + c_al * aleatoric at x, and its gradient with respect
 * to x (d1 + d2 entries) into grad when grad is not NULL.
 */
double surrogate_combo(const struct surrogate *s, const double *x, double c_mu, double c_ep, double c_al,
                       double *grad);

/*
 * GOBI: minimise acq over the box [0, 1]^d from x (updated in place) with AdaHessian (eta 0.5 under
 * a cosine schedule of period 4, Hutchinson diagonal from Rademacher vectors, Hessian-vector products
 * by central differences of the gradient), clamping to the box after each step, stopping after 200
 * steps or when six successive values agree within 1e-5 (section 5). Returns the steps taken.
 */
typedef double (*acq_fn)(void *ctx, const double *x, double *grad);
int gobi(double *x, int d, acq_fn acq, void *ctx, struct rng *rng);

/* The pieces, exposed for the unit tests: NPN activations (mean, variance) -> (mean, variance) and
 * their four partial derivatives (d[0] = dm/dc, d[1] = dm/dd, d[2] = ds/dc, d[3] = ds/dd). */
void npn_relu(double c, double dv, double *am, double *as, double *d);
void npn_sigmoid(double c, double dv, double *am, double *as, double *d);
/* The NPN loss 1/2 (10 (m - y)^2 / s + ln s) and its derivatives. */
double npn_loss(double m, double s, double y, double *dm, double *ds);
/* One forward pass of a network at x; the teacher in its training state draws dropout from rng. */
double sg_forward_out(struct sg_net *net, int d1, const double *x, int train, struct rng *rng, double *var);
/* Loss gradient with respect to every parameter (into net->g, overwritten) for one sample with
 * frozen dropout masks drawn from rng: the loss is (out - y)^2 for teacher and student, the NPN
 * loss for the NPN. Returns the loss. For the finite-difference tests. */
double sg_param_grad(struct sg_net *net, int d1, const double *x, double y, int train, struct rng *rng);

#endif
