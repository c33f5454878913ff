/*
 * train.h: training a FlexiBERT 2.0 model (lib/flexibert) on a text task (lib/task) with a WordPiece
 * tokenizer (lib/wordpiece): batching, the learning-rate schedule, budgets, evaluation, checkpoints
 * and resumption. The engine of tc-train(1).
 *
 * Ownership: options and the model are borrowed; a struct train_result holds no pointers but the
 * checkpoint path, which it owns (train_result_release).
 *
 * Determinism: the same model, task, options (without --time) and thread count give the same
 * parameters, losses and accuracies, bit for bit, whether or not the run was interrupted and
 * resumed. A time budget makes the step count, and so the result, depend on the machine.
 */
#ifndef TC_TRAIN_H
#define TC_TRAIN_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "flexibert.h"
#include "space.h"

struct tc_error;

enum { TRAIN_PROGRESS_NONE, TRAIN_PROGRESS_BAR, TRAIN_PROGRESS_JSON };

struct train_options {
	const char *task;             /* lib/task spec; NULL: wordnet-lex */
	const char *const *data_dirs; /* where task data is looked for (task_load) */
	int objective;                /* FB_CLS or FB_MLM */
	/* budgets: the run ends when the first one is reached; 0 means none */
	long steps;
	double epochs, tokens, time_s;
	int batch, seq;    /* examples per step; the longest sequence, [CLS] and [SEP] included */
	int bucket;        /* batches whose examples are sorted by length together (1: none) */
	double lr, warmup; /* peak learning rate; warm-up as a fraction of the budget */
	double weight_decay, max_norm;
	float dropout;
	float label_smoothing; /* the loss's target: 1 - it on the label, it / classes on each (0: one-hot) */
	/* weight averaging: the mean of the weights taken every average_every steps over the last
	 * fraction `average` of the budget replaces them at the end (0: none) */
	double average;
	long average_every;
	uint64_t seed;
	int vocab_size;          /* a vocabulary trained on the training split, or */
	const char *vocab_path;  /* one loaded from a vocab.txt */
	const char *init_path;   /* start from a checkpoint's encoder (and its vocabulary) */
	const char *checkpoint;  /* where checkpoints go; NULL: none */
	double checkpoint_every; /* seconds between checkpoints (and at the end, and on a signal) */
	int resume;              /* continue from the checkpoint if it exists */
	long eval_every;         /* steps between evaluations of validation and test (0: at the end) */
	long pause_after;      /* train at most this many steps in this call, then checkpoint (0: no limit) */
	int progress;          /* TRAIN_PROGRESS_* */
	double progress_every; /* seconds between JSON progress lines */
	FILE *log;             /* progress goes here (stderr) */
	const char *label;     /* what the progress line names (the record id) */
	volatile int *stop;    /* set asynchronously (a signal): checkpoint and stop */
	/* DynaProp: thresholds (< 0: not given) or target sparsities (< 0: none) per class; a class
	 * with neither prunes nothing, except weight gradients, which follow tau_grad */
	int dynaprop;
	double tau_act, tau_grad, tau_weight;
	double target_act, target_grad;
	double target_point[FB_PT_COUNT]; /* an activation target of its own per point (-1: target_act) */
	double target_grad_point[FB_PT_COUNT]; /* a gradient target of its own per point (-1: target_grad) */
	double prune_start; /* the fraction of the budget trained with every threshold 0 (dense) */
};

/* DynaProp's calibration: steps between calibrations once the early ones (10, 20, 40, 80) are done */
#define TRAIN_RECALIBRATE 100

void train_options_default(struct train_options *o);

/* The options that decide a run's result (not budgets, threads or logging), as a JSON object the
 * caller owns: what a checkpoint is checked against, and what tc-train names checkpoints by. */
json_t *train_options_json(const struct train_options *o);

struct train_result {
	double val_accuracy, test_accuracy;
	double loss;       /* validation loss at the end */
	double best_loss;  /* the lowest validation loss of the evaluations */
	double train_loss; /* mean training loss over the last 100 steps */
	long steps, epochs_done;
	double tokens, tokens_per_s, step_ms, wall_s, peak_rss_mb, flops_per_step;
	size_t params;
	int vocab, labels, seq;
	uint64_t seed;
	int stopped; /* a signal or pause_after ended the run before its budget: checkpointed, not evaluated
	              */
	long resumed_at;  /* the step a checkpoint resumed from (0: a fresh start) */
	/* weight averaging: the snapshots averaged (0: none), and the accuracies of the last weights
	 * before the average replaced them */
	long avg_snapshots;
	double last_val_accuracy, last_test_accuracy;
	char *checkpoint; /* the last checkpoint written, or NULL */
	/* the evaluations made during the run: step, seconds, validation and test accuracy */
	int ncurve;
	double curve[64][4];
	/* DynaProp: the thresholds at the end (per class and point; weight gradients at point 0),
	 * and the fraction of zeros at the pruning points over the whole run, per class (FB_SP_*), per
	 * layer and per point (activations, gradients) */
	int dynaprop, nlayers;
	double tau[FB_SP_COUNT][FB_PT_COUNT], sparsity[FB_SP_COUNT], layer_sparsity[MODEL_MAX_LAYERS][2];
	double point_sparsity[FB_PT_COUNT][2]; /* per pruning point: activations, gradients */
};

/*
 * A trained model pruned at inference (DynaTran), from a tc-train checkpoint: the model, the
 * vocabulary and the options it was trained with come from the checkpoint, the task from o->task
 * when set (else the checkpoint's) and o->data_dirs; o->batch is the evaluation batch.
 */
struct train_prune_point {
	double tau; /* activation threshold */
	int topk;   /* > 0: keep the topk largest attention probabilities of each row instead (tau 0) */
	/* out: accuracy, and the fraction of zeros at the pruning points of the test evaluation */
	double val_accuracy, test_accuracy, sparsity;
};
/* Evaluate validation and test at each of the n points. Returns 0, or -1 with err set. */
int train_prune_eval(const char *checkpoint, const struct train_options *o, struct train_prune_point *pts,
                     int n, struct tc_error *err);
/*
 * The thresholds that give target sparsities (< 0: none, threshold 0) at the pruning points on the
 * first `batches` training batches (forward and backward, no update, no dropout): a first guess
 * from the magnitudes, as tc-train(1) makes it, then TRAIN_CALIBRATE_PASSES measured passes of
 * bisection on log tau; the thresholds that came closest and the sparsity they gave, per class
 * (FB_SP_ACT, FB_SP_GRAD). Returns 0, or -1 with err set.
 */
#define TRAIN_CALIBRATE_PASSES 8
int train_prune_calibrate(const char *checkpoint, const struct train_options *o, const double target[2],
                          int batches, double tau[2], double sparsity[2], struct tc_error *err);

void train_result_release(struct train_result *r);

/* Train model m as the options say. Returns 0, or -1 with err set (bad data, a non-finite loss,
 * an unusable checkpoint, I/O). On a non-finite loss the last checkpoint is left as it was. */
int train_run(const struct model *m, const struct train_options *o, struct train_result *r,
              struct tc_error *err);

#endif
