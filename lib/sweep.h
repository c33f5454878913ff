/*
 * sweep.h: every accelerator of a space for one model, inside one process, at the fast fidelity:
 * the Pareto set on (latency, energy, area), or the K best by a weighted score.
 *
 * Ownership: sweep_model returns an array the caller frees.
 *
 * The score of --top is the weighted product latency^L x energy^E x area^A (its logarithm is
 * summed), so weights 1,1,0 rank by energy-delay product and no normalisation over the sweep is
 * needed.
 */
#ifndef TC_SWEEP_H
#define TC_SWEEP_H

#include <stdio.h>

#include "simrec.h"

struct sweep_options {
	long top;          /* 0: the Pareto set */
	double weights[3]; /* latency, energy, area */
	int threads;
};

struct sweep_stats {
	double evaluated, feasible, kept;
};

/*
 * Sweep the accelerators of o->aspace for the model of rec. kept receives the grid indices of
 * the selected accelerators in ascending order (caller frees), nkept their number. Returns 0 or
 * -1 with err naming the record's bad field.
 */
int sweep_model(const json_t *rec, const struct simrec_options *o, const struct sweep_options *so,
                unsigned long long **kept, size_t *nkept, struct sweep_stats *st, struct tc_error *err);

#endif
