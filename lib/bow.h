/*
 * bow.h: a bag-of-words baseline for the text tasks of lib/task: multinomial logistic regression on
 * the presence of words, its L2 strength chosen on the validation split, scored on the test split.
 * It says how far word identity alone goes on a task, the figure a trained encoder has to beat.
 *
 * Ownership: nothing is returned but numbers; the task and the options (and their l2 array) are
 * borrowed for the call.
 *
 * Words: maximal runs of ASCII letters, ASCII digits and bytes >= 0x80, the ASCII letters
 * lowercased; every other byte separates words ("Tawny-brown, 2nd" is tawny, brown, 2nd). A
 * document is the set of its distinct words (binary presence). The vocabulary is the `features`
 * words of highest document frequency in the training split, ties in strcmp order; other words are
 * ignored, in every split.
 *
 * Model: a softmax over the labels of b + the sum of the rows of W (features x labels) of the
 * document's words. For each candidate L2 strength l2, training minimises
 *
 *     (1/N) sum over the N training documents of -log p(label) + (l2/2) |W|^2   (the bias is free)
 *
 * by full-batch L-BFGS from zero, for at most `epochs` passes over the training split (a pass is
 * one evaluation of the loss and its gradient, the first at zero: epochs = 1 leaves the model at
 * zero) or until the gradient is 1e-5 of its norm at zero. scikit-learn's C is 1/(l2 N). The
 * candidate of best validation accuracy is kept, ties going to the stronger L2, and its test and
 * training accuracies reported. Each candidate starts from zero, so its model depends on its own
 * strength alone, not on the rest of the grid or its order. Nothing is random: the seed is not used.
 *
 * Determinism: every sum has a fixed order (blocks of documents and of parameters fixed by the
 * data, never by the threads), so the same task and options give the same result, bit for bit, for
 * any thread count.
 */
#ifndef TC_BOW_H
#define TC_BOW_H

#include <stddef.h>
#include <stdint.h>

#include "task.h"
#include "util.h"

struct bow_options {
	int features;     /* vocabulary size: the most frequent training words, default 20000 */
	const double *l2; /* candidate L2 strengths, chosen by validation accuracy; NULL = the default grid */
	int nl2;
	int epochs;    /* at most this many passes over the training split per candidate, default 40 */
	uint64_t seed; /* unused: nothing is random (kept so that callers can record one) */
	int threads;   /* 0 = OpenMP default; results are identical for any thread count */
};

struct bow_result {
	double val_accuracy, test_accuracy, train_accuracy, l2; /* of the candidate kept */
	int features, labels; /* the vocabulary's size (at most options.features), the task's labels */
	size_t ntrain, nval, ntest;
	double wall_s; /* wall-clock seconds of bow_run */
};

/* features 20000; l2 NULL, the default grid 1e-4, 3e-5, 1e-5, 3e-6, 1e-6; epochs 40; seed 0;
 * threads 0. The grid spans C = 0.1 to 10 on wordnet-lex, where 40 passes reach accuracies within
 * 0.1 point of those of 200. */
void bow_options_default(struct bow_options *o);

/*
 * Train and evaluate the baseline on task t with options o (NULL: the defaults). Returns 0 with *r
 * filled, or -1 with *r zeroed and a one-line message in err: no training or no validation
 * example, fewer than 2 labels, an example without text or with a label or split out of range, an
 * option out of range (features or epochs below 1, threads below 0, an l2 array with nl2 below 1
 * or a candidate negative or not finite). An empty test split is not an error: test_accuracy is
 * then 0. Allocation failure exits, as emalloc does.
 */
int bow_run(const struct task *t, const struct bow_options *o, struct bow_result *r, struct tc_error *err);

#endif
