/*
 * simrec.h: one record in, its "sim" object out: the glue between tc-records(5) and the
 * simulator. Reads the model and the accelerator, chooses the sparsity (measured values carried
 * by the record first, then options, then the profile's defaults), builds the workload, runs the
 * simulator and writes the result as JSON.
 *
 * Ownership: returned json_t objects are new references owned by the caller; the text of a
 * jsonl_out is the caller's to free().
 */
#ifndef TC_SIMREC_H
#define TC_SIMREC_H

#include <jansson.h>

#include "hw.h"
#include "jsonl.h"
#include "sim.h"
#include "space.h"
#include "workload.h"

struct simrec_options {
	int fidelity, training;
	int brief;  /* sim: only the headline figures, no breakdowns */
	long batch; /* 0: the accelerator's batch */
	long seq, vocab;
	int classes;
	double sparsity[3]; /* activation, weight, gradient; < 0: not given */
	const struct hw_profile *prof;
	const struct accel_space *aspace; /* accelerators must lie in it */
	const struct model_space *mspace; /* models must lie in it (NULL: any valid model) */
	void (*trace)(void *ctx, const char *kind, const char *name, double start, double end, long units,
	              long tiles, double busy, double energy_nj);
	void *trace_ctx;
};

/* Which source gave each sparsity class. */
enum { SP_PROFILE, SP_OPTION, SP_TRAIN, SP_PRUNE };

/*
 * The sparsities for rec: prune.sparsity.{activation,weight,gradient} and train.sparsity.{activation,
 * gradient} when present, else the options', else the profile's. src receives SP_* per class.
 * Returns 0, or -1 naming a field that is not a fraction in [0, 1).
 */
int simrec_sparsity(double *sp, int *src, const json_t *rec, const struct simrec_options *o,
                    struct tc_error *err);

/* Evaluate rec; returns the new "sim" object, or NULL with err naming the field. */
json_t *simrec_eval(const json_t *rec, const struct simrec_options *o, struct tc_error *err);
/* The same, written as JSON text into out (emptied first): what tc-sim prints, without building
 * a tree. Returns 0, or -1 with err naming the field. */
int simrec_run(const json_t *rec, const struct simrec_options *o, struct jsonl_out *out,
               struct tc_error *err);

/* Write the "sim" object of a finished run. */
void simrec_write(struct jsonl_out *w, const struct sim_result *r, const struct hw_config *c,
                  const struct simrec_options *o, long batch, const double *sp, const int *src,
                  const char *dataflow);

#endif
