/*
 * bow_test.c: unit tests of lib/bow on tasks built here (and the committed wordnet fixture in
 * tests/data/task, never the full data in build/data). Each synthetic task is made so that the
 * expected figure follows from its construction: a word that gives the label away (accuracy 1),
 * pairs of texts that tokenize to the same words or not (accuracy 1/2 or 1), a vocabulary whose
 * single feature is decided by the tie-breaking rule, a training split whose distinct words are
 * counted by hand, and a one-word task whose optimum is known in closed form, so that an L2
 * strength 3% either side of a threshold flips a prediction. Determinism compares whole results
 * (every field but the wall time) across repeats, seeds and thread counts. Prints TAP; exits 1 on
 * any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bow.h"
#include "rng.h"
#include "tap.h"

/* ---- Building tasks ---- */

struct tbuild {
	struct task t;
	size_t cap;
};

static void
tb_init(struct tbuild *b, int nlabels)
{
	memset(b, 0, sizeof *b);
	b->t.name = estrdup("synthetic");
	b->t.nlabels = nlabels;
	b->t.labels = emalloc((nlabels > 0 ? nlabels : 1) * sizeof *b->t.labels);
	for (int i = 0; i < nlabels; i++)
		b->t.labels[i] = esprintf("l%d", i);
}

static void
tb_add(struct tbuild *b, const char *text, int label, int split)
{
	b->t.ex = egrow(b->t.ex, &b->cap, b->t.n + 1, sizeof *b->t.ex);
	b->t.ex[b->t.n++] = (struct example){estrdup(text), label, split};
}

/* The split of the i-th example of a synthetic task: 1 in 10 test, 1 in 10 validation. */
static int
split_of(size_t i)
{
	return i % 10 == 3 ? TASK_TEST : i % 10 == 7 ? TASK_VALID : TASK_TRAIN;
}

/* n documents, label i % nlabels, each the word "labelK" and 6 words of 30 shared ones ("w0".."w29"),
 * in random order of position: separable by one word. */
static void
tb_separable(struct tbuild *b, int nlabels, size_t n)
{
	struct rng r;
	char text[256];

	rng_seed(&r, 7);
	tb_init(b, nlabels);
	for (size_t i = 0; i < n; i++) {
		int y = (int)(i % (size_t)nlabels), at = (int)rng_below(&r, 7), len = 0;
		for (int k = 0; k < 7; k++)
			len += k == at
			           ? snprintf(text + len, sizeof text - len, "Label%d, ", y)
			           : snprintf(text + len, sizeof text - len, "w%d ", (int)rng_below(&r, 30));
		tb_add(b, text, y, split_of(i));
	}
}

/* n documents of 8 labels: each of 10 words drawn from 800, from the label's own 100 words with
 * probability 0.3, else from all 800 uniformly. Learnable but noisy (accuracy well below 1). */
static void
tb_noisy(struct tbuild *b, size_t n)
{
	struct rng r;
	char text[512];

	rng_seed(&r, 11);
	tb_init(b, 8);
	for (size_t i = 0; i < n; i++) {
		int y = (int)rng_below(&r, 8), len = 0;
		for (int k = 0; k < 10; k++) {
			int w = rng_uniform(&r) < 0.3 ? 100 * y + (int)rng_below(&r, 100)
			                              : (int)rng_below(&r, 800);
			len += snprintf(text + len, sizeof text - len, "v%d ", w);
		}
		tb_add(b, text, y, split_of(i));
	}
}

static void
run(const struct task *t, const struct bow_options *o, struct bow_result *r, const char *what)
{
	struct tc_error err;

	if (bow_run(t, o, r, &err) < 0) {
		printf("Bail out! %s: %s\n", what, err.msg);
		exit(1);
	}
}

/* Every field but the wall time. */
static int
same_result(const struct bow_result *a, const struct bow_result *b)
{
	return a->val_accuracy == b->val_accuracy && a->test_accuracy == b->test_accuracy &&
	       a->train_accuracy == b->train_accuracy && a->l2 == b->l2 && a->features == b->features &&
	       a->labels == b->labels && a->ntrain == b->ntrain && a->nval == b->nval && a->ntest == b->ntest;
}

/* ---- Tests ---- */

static void
test_separable(void)
{
	struct tbuild b;
	struct bow_options o;
	struct bow_result r;

	tb_separable(&b, 3, 300);
	bow_options_default(&o);
	run(&b.t, &o, &r, "separable");
	check(r.ntrain == 240 && r.nval == 30 && r.ntest == 30 && r.labels == 3,
	      "separable: 240 / 30 / 30 examples, 3 labels (got %zu / %zu / %zu, %d)", r.ntrain, r.nval,
	      r.ntest, r.labels);
	check(r.features == 33, "separable: 33 features, label0..label2 and w0..w29 (got %d)", r.features);
	check(r.train_accuracy == 1 && r.val_accuracy == 1 && r.test_accuracy == 1,
	      "separable by one word: accuracy 1 on every split (train %g, val %g, test %g)",
	      r.train_accuracy, r.val_accuracy, r.test_accuracy);
	check(r.wall_s > 0 && isfinite(r.wall_s), "the wall time is recorded");

	o.epochs = 1;
	run(&b.t, &o, &r, "separable, one pass");
	check(r.val_accuracy == 10 / 30.0 && r.test_accuracy == 10 / 30.0,
	      "one pass leaves the model at zero: every prediction is label 0, 10 of 30 (val %g, test %g)",
	      r.val_accuracy, r.test_accuracy);

	run(&b.t, NULL, &r, "separable, NULL options");
	check(r.val_accuracy == 1 && r.features == 33, "NULL options are the defaults");
	task_release(&b.t);

	/* the label words cut out of the training split: 30 shared random words cannot separate */
	tb_separable(&b, 3, 300);
	o.epochs = 40;
	for (size_t i = 0; i < b.t.n; i++) {
		char *p = strstr(b.t.ex[i].text, "Label");
		if (b.t.ex[i].split != TASK_TRAIN)
			continue;
		memmove(p, p + 8, strlen(p + 8) + 1);
	}
	run(&b.t, &o, &r, "separable, label words only outside training");
	check(r.features == 30 && r.val_accuracy < 0.7,
	      "words seen only outside the training split are not features (%d, val %g)", r.features,
	      r.val_accuracy);
	task_release(&b.t);
}

/* Validation accuracy with 20 training documents each of text0 (label 0) and text1 (label 1), and
 * 2 validation documents of each: 1 if the two texts have different words, 1/2 if the same (the
 * model is then the bias alone, a tie, and picks label 0). */
static double
pair_accuracy(const char *text0, const char *text1)
{
	struct tbuild b;
	struct bow_result r;

	tb_init(&b, 2);
	for (int i = 0; i < 24; i++)
		tb_add(&b, i % 2 ? text1 : text0, i % 2, i < 20 ? TASK_TRAIN : TASK_VALID);
	run(&b.t, NULL, &r, "pair");
	task_release(&b.t);
	return r.val_accuracy;
}

static void
test_words(void)
{
	struct tbuild b;
	struct bow_options o;
	struct bow_result r;

	/* training words: hello world 2nd caf\xc3\xa9 na\xc3\xafve x don t caf\xc3\x89 */
	tb_init(&b, 2);
	tb_add(&b, "Hello, World!", 0, TASK_TRAIN);
	tb_add(&b, "hello-WORLD\t2nd  caf\xc3\xa9.", 1, TASK_TRAIN);
	tb_add(&b, "na\xc3\xafve_x don't", 0, TASK_TRAIN);
	tb_add(&b, "CAF\xc3\x89 (HELLO)", 1, TASK_TRAIN);
	tb_add(&b, "", 1, TASK_TRAIN);
	tb_add(&b, "...", 0, TASK_TRAIN);
	tb_add(&b, "unseen words in validation", 0, TASK_VALID);
	tb_add(&b, "hello yet more unseen ones", 1, TASK_TEST);
	bow_options_default(&o);
	run(&b.t, &o, &r, "words");
	check(r.features == 9,
	      "words: ASCII letters and digits and bytes >= 0x80, A-Z lowercased, the rest separates: 9 "
	      "distinct in training (got %d)",
	      r.features);
	check(pair_accuracy("caf\xc3\xa9", "caf\xc3\xa8") == 1,
	      "bytes >= 0x80 belong to words: caf\xc3\xa9 is not caf\xc3\xa8");
	check(pair_accuracy("x1", "x2") == 1, "digits belong to words: x1 is not x2");
	check(pair_accuracy("Apple", "aPPLE") == 0.5, "ASCII letters are lowercased: Apple is aPPLE");
	check(pair_accuracy("ab-cd", "cd ab") == 0.5,
	      "'-' separates words, and order does not count: ab-cd is cd ab");
	check(pair_accuracy("a_b", "b\ta") == 0.5 && pair_accuracy("a.b", "b\177\001a") == 0.5,
	      "'_', '.', DEL and control bytes separate words");
	check(pair_accuracy("a a a", "a") == 0.5, "presence, not counts: a a a is a");
	o.features = 4;
	run(&b.t, &o, &r, "words, 4 features");
	check(r.features == 4, "features caps the vocabulary (got %d)", r.features);
	check(r.ntrain == 6 && r.nval == 1 && r.ntest == 1,
	      "documents without a word still count (6 / 1 / 1, got %zu / %zu / %zu)", r.ntrain, r.nval,
	      r.ntest);
	task_release(&b.t);
}

/*
 * Two labels, and three words of equal training document frequency 20: `good` in every label-0
 * document, `half` in half the documents of each label, `other` in every label-1 document. With a
 * one-word vocabulary, accuracy is 1 if that word is `good` or `other`, 1/2 if it is `half` (the
 * bias alone, a tie, picks label 0). extra adds that many more label-0 documents made the same way
 * (extra = 2: `good` in 22, `half` in 21).
 */
static double
tie_case(const char *good, const char *half, const char *other, int extra, int features)
{
	struct tbuild b;
	struct bow_options o;
	struct bow_result r;
	char text[128];

	tb_init(&b, 2);
	for (int i = 0; i < 20 + extra; i++) {
		snprintf(text, sizeof text, "%s %s", good, i % 2 ? half : "");
		tb_add(&b, text, 0, TASK_TRAIN);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(text, sizeof text, "%s %s", other, i % 2 ? half : "");
		tb_add(&b, text, 1, TASK_TRAIN);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(text, sizeof text, "%s %s", i < 2 ? good : other, i % 2 ? half : "");
		tb_add(&b, text, i < 2 ? 0 : 1, TASK_VALID);
		tb_add(&b, text, i < 2 ? 0 : 1, TASK_TEST);
	}
	bow_options_default(&o);
	o.features = features;
	run(&b.t, &o, &r, "ties");
	task_release(&b.t);
	return r.features == features ? r.test_accuracy : -1;
}

static void
test_vocab_ties(void)
{
	double a;

	a = tie_case("apple", "banana", "zzz", 0, 1);
	check(a == 1, "df ties go to strcmp order: apple before banana and zzz (accuracy %g)", a);
	a = tie_case("melon", "banana", "zzz", 0, 1);
	check(a == 0.5,
	      "df ties go to strcmp order, not to order of appearance: banana before melon (accuracy %g)", a);
	a = tie_case("melon", "banana", "zzz", 0, 2);
	check(a == 1, "the second feature is melon, before zzz (accuracy %g)", a);
	a = tie_case("Zebra", "banana", "yak", 2, 1);
	check(a == 1, "a higher document frequency comes before strcmp order (accuracy %g)", a);
	a = tie_case("apple", "Zoo", "zzz", 0, 1);
	check(a == 1, "case is folded before ordering: Zoo is zoo, after apple (accuracy %g)", a);
}

static void
test_determinism(void)
{
	struct tbuild b;
	struct bow_options o;
	struct bow_result r1, r2, r;
	static const double grid[] = {1e-2, 1e-3, 1e-4};

	tb_noisy(&b, 3000);
	bow_options_default(&o);
	o.features = 700; /* 5,608 parameters: more than one block of them, as documents */
	o.l2 = grid;
	o.nl2 = 3;
	o.epochs = 30;
	o.threads = 1;
	run(&b.t, &o, &r1, "noisy, 1 thread");
	check(r1.features == 700 && r1.val_accuracy > 0.4 && r1.val_accuracy < 0.95,
	      "noisy task: 700 features, learnable but not separable (val %g, test %g)", r1.val_accuracy,
	      r1.test_accuracy);
	run(&b.t, &o, &r2, "noisy, 1 thread again");
	check(same_result(&r1, &r2), "the same task and options give the same result");
	o.seed = 12345;
	run(&b.t, &o, &r2, "noisy, another seed");
	check(same_result(&r1, &r2), "another seed gives the same result (nothing is random)");
	o.threads = 2;
	run(&b.t, &o, &r2, "noisy, 2 threads");
	check(same_result(&r1, &r2),
	      "2 threads give the result of 1 (val %.17g / %.17g, train %.17g / %.17g)", r2.val_accuracy,
	      r1.val_accuracy, r2.train_accuracy, r1.train_accuracy);
	o.threads = 3;
	run(&b.t, &o, &r2, "noisy, 3 threads");
	check(same_result(&r1, &r2), "3 threads give the result of 1");
	o.threads = 0;
	run(&b.t, &o, &r2, "noisy, default threads");
	check(same_result(&r1, &r2), "the OpenMP default gives the result of 1");
	o.epochs = 5;
	run(&b.t, &o, &r, "noisy, 5 passes");
	check(!same_result(&r1, &r), "the comparison can fail: 5 passes instead of 30 differ (train %g, %g)",
	      r.train_accuracy, r1.train_accuracy);
	task_release(&b.t);
}

static void
test_l2(void)
{
	struct tbuild b;
	struct bow_options o;
	struct bow_result r, alone[4];
	static const double grid[] = {1e-4, 10, 1e-2, 1e-3};
	static const double reordered[] = {1e-3, 1e-2, 10, 1e-4};
	double best = -1, best_l2 = 0;
	int at = -1;

	tb_noisy(&b, 2000);
	bow_options_default(&o);
	o.epochs = 40;
	for (int i = 0; i < 4; i++) {
		o.l2 = &grid[i];
		o.nl2 = 1;
		run(&b.t, &o, &alone[i], "l2 alone");
		check(alone[i].l2 == grid[i], "one candidate, %g, is the one reported", grid[i]);
		if (alone[i].val_accuracy > best || (alone[i].val_accuracy == best && grid[i] > best_l2)) {
			best = alone[i].val_accuracy;
			best_l2 = grid[i];
			at = i;
		}
	}
	check(alone[1].val_accuracy < best, "l2 = 10 underfits: validation %g against %g",
	      alone[1].val_accuracy, best);
	o.l2 = grid;
	o.nl2 = 4;
	run(&b.t, &o, &r, "l2 grid");
	check(r.l2 == best_l2 && same_result(&r, &alone[at]),
	      "the grid keeps the candidate of best validation accuracy, %g (got %g), with its figures",
	      best_l2, r.l2);
	o.l2 = reordered;
	run(&b.t, &o, &alone[0], "l2 grid reordered");
	check(same_result(&r, &alone[0]), "the order of the grid does not matter");
	task_release(&b.t);

	tb_separable(&b, 3, 300);
	{
		static const double sep[] = {1e-6, 1e-4, 1e-3};
		o.l2 = sep;
		o.nl2 = 3;
		run(&b.t, &o, &r, "l2 ties");
		check(r.val_accuracy == 1 && r.l2 == 1e-3,
		      "equal validation accuracy goes to the strongest L2 (got %g, val %g)", r.l2,
		      r.val_accuracy);
	}
	o.l2 = NULL;
	o.nl2 = 0;
	run(&b.t, &o, &r, "default grid");
	check(r.l2 > 0 && r.val_accuracy == 1, "the default grid (chose %g)", r.l2);
	task_release(&b.t);
}

/*
 * A task whose optimum is known in closed form. Two labels; training documents: 30 "." of label 0
 * and 10 of label 1 (no word), 10 "a" of label 0 and 20 of label 1; N = 70, one feature. With
 * u = b1 - b0 and v = W[a][1] - W[a][0] (the penalty is least, (l2/4) v^2, at W[a][0] = -W[a][1])
 * the objective is
 *     (1/N) (30 s(u) + 10 s(-u) + 10 s(u + v) + 20 s(-u - v)) + (l2/4) v^2,   s(t) = log(1 + e^t),
 * and "a" is labelled 1 while u + v > 0. Setting the derivatives to zero at u + v = 0 gives
 * sigmoid(u) = (10 + (20 - 10)/2) / 40 = 3/8, so v = log(5/3), and l2* = (20 - 10) / (N v) =
 * 0.279659...: below it "a" is label 1, above it label 0 (u + v is +-0.006 at 3% either side, by
 * Newton's method in Python). An unregularised bias, the 1/N and the l2/2 all show in l2*.
 */
static void
test_threshold(void)
{
	struct tbuild b;
	struct bow_options o;
	struct bow_result r;
	double star = 10 / (70 * log(5.0 / 3)), lo = 0.97 * star, hi = 1.03 * star, both[2];

	tb_init(&b, 2);
	for (int i = 0; i < 70; i++)
		tb_add(&b, i < 40 ? "." : "a", i < 30 || (i >= 40 && i < 50) ? 0 : 1, TASK_TRAIN);
	tb_add(&b, "a", 1, TASK_VALID);
	tb_add(&b, "a", 1, TASK_VALID);
	tb_add(&b, ".", 0, TASK_TEST);
	bow_options_default(&o);
	o.nl2 = 1;
	o.l2 = &lo;
	run(&b.t, &o, &r, "threshold, below");
	check(r.features == 1 && r.val_accuracy == 1 && r.test_accuracy == 1,
	      "closed form: at 0.97 l2* = %.6f \"a\" is label 1, a document without words label 0 (val %g, "
	      "test %g)",
	      lo, r.val_accuracy, r.test_accuracy);
	o.l2 = &hi;
	run(&b.t, &o, &r, "threshold, above");
	check(r.val_accuracy == 0 && r.test_accuracy == 1,
	      "closed form: at 1.03 l2* = %.6f \"a\" is label 0 (val %g, test %g)", hi, r.val_accuracy,
	      r.test_accuracy);
	both[0] = hi;
	both[1] = lo;
	o.l2 = both;
	o.nl2 = 2;
	run(&b.t, &o, &r, "threshold, both");
	check(r.l2 == lo && r.val_accuracy == 1 && r.train_accuracy == 50 / 70.0,
	      "closed form: the grid picks 0.97 l2*, which labels 50 of 70 training documents right "
	      "(l2 %g, train %g)",
	      r.l2, r.train_accuracy);
	task_release(&b.t);
}

/* bow_run must fail with exactly the message want, leaving *r zeroed. */
static void
expect_error(const struct task *t, const struct bow_options *o, const char *want, const char *what)
{
	struct bow_result r;
	struct tc_error err = {""};
	int rc;

	memset(&r, 0xff, sizeof r);
	rc = bow_run(t, o, &r, &err);
	check(rc == -1 && strcmp(err.msg, want) == 0 && r.features == 0 && r.ntrain == 0 && r.l2 == 0,
	      "%s: %s", what, err.msg);
	if (rc == -1 && strcmp(err.msg, want) != 0)
		printf("# expected: %s\n", want);
}

static void
test_errors(void)
{
	struct tbuild b;
	struct bow_options o;
	double bad[2] = {1e-3, -1};

	bow_options_default(&o);
	tb_init(&b, 2);
	tb_add(&b, "a b", 0, TASK_VALID);
	tb_add(&b, "c d", 1, TASK_TEST);
	expect_error(&b.t, &o, "task 'synthetic': no training examples", "an empty training split");
	task_release(&b.t);

	tb_init(&b, 2);
	tb_add(&b, "a b", 0, TASK_TRAIN);
	tb_add(&b, "c d", 1, TASK_TEST);
	expect_error(&b.t, &o, "task 'synthetic': no validation examples to choose the L2 strength on",
	             "an empty validation split");
	task_release(&b.t);

	tb_init(&b, 1);
	tb_add(&b, "a b", 0, TASK_TRAIN);
	tb_add(&b, "c d", 0, TASK_VALID);
	expect_error(&b.t, &o, "task 'synthetic': 1 label (expected at least 2)", "one label");
	task_release(&b.t);
	tb_init(&b, 0);
	expect_error(&b.t, &o, "task 'synthetic': 0 labels (expected at least 2)", "no labels, no examples");
	task_release(&b.t);

	tb_init(&b, 2);
	tb_add(&b, "a b", 0, TASK_TRAIN);
	tb_add(&b, "c d", 2, TASK_VALID);
	expect_error(&b.t, &o, "task 'synthetic': example 2: label 2 out of range 0..1",
	             "a label out of range");
	b.t.ex[1].label = -1;
	expect_error(&b.t, &o, "task 'synthetic': example 2: label -1 out of range 0..1", "a negative label");
	b.t.ex[1].label = 1;
	b.t.ex[1].split = 3;
	expect_error(&b.t, &o, "task 'synthetic': example 2: unknown split 3", "a split out of range");
	b.t.ex[1].split = TASK_VALID;
	free(b.t.ex[1].text);
	b.t.ex[1].text = NULL;
	expect_error(&b.t, &o, "task 'synthetic': example 2: no text", "an example without text");
	b.t.ex[1].text = estrdup("c d");

	o.features = 0;
	expect_error(&b.t, &o, "option 'features': expected at least 1, got 0", "features 0");
	bow_options_default(&o);
	o.epochs = 0;
	expect_error(&b.t, &o, "option 'epochs': expected at least 1, got 0", "epochs 0");
	bow_options_default(&o);
	o.threads = -1;
	expect_error(&b.t, &o, "option 'threads': expected at least 0, got -1", "threads -1");
	bow_options_default(&o);
	o.l2 = bad;
	o.nl2 = 0;
	expect_error(&b.t, &o, "option 'nl2': expected at least 1 L2 strength, got 0", "an empty grid");
	o.nl2 = 2;
	expect_error(&b.t, &o, "option 'l2': candidate 2 is -1, expected a finite number >= 0",
	             "a negative L2 strength");
	bad[1] = NAN;
	expect_error(&b.t, &o, "option 'l2': candidate 2 is nan, expected a finite number >= 0",
	             "a NaN L2 strength");
	bad[1] = INFINITY;
	expect_error(&b.t, &o, "option 'l2': candidate 2 is inf, expected a finite number >= 0",
	             "an infinite L2 strength");
	bad[1] = 0;
	{
		struct bow_result r;
		struct tc_error err;
		check(bow_run(&b.t, &o, &r, &err) == 0 && (r.l2 == 0 || r.l2 == 1e-3),
		      "L2 strength 0 is allowed");
		check(r.ntest == 0 && r.test_accuracy == 0 && r.ntrain == 1 && r.nval == 1,
		      "an empty test split is not an error: test accuracy 0");
	}
	task_release(&b.t);
}

/* The wordnet fixture: 600 glosses of 42 classes, splits 478 / 64 / 58, adj.all the majority on
 * test with 20 of 58. */
static void
test_fixture(void)
{
	static const char *const dirs[] = {"tests/data/task", NULL};
	struct task t;
	struct tc_error err;
	struct bow_result r, r2;
	struct bow_options o;

	if (task_load(&t, "wordnet-lex", dirs, &err) < 0) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	bow_options_default(&o);
	o.threads = 1;
	run(&t, &o, &r, "wordnet fixture");
	check(r.ntrain == 478 && r.nval == 64 && r.ntest == 58 && r.labels == 45,
	      "wordnet fixture: 478 / 64 / 58 examples, 45 labels");
	check(r.test_accuracy > 20 / 58.0 && r.val_accuracy > 0.4,
	      "wordnet fixture: above the majority class (val %g, test %g, train %g, l2 %g, %d features)",
	      r.val_accuracy, r.test_accuracy, r.train_accuracy, r.l2, r.features);
	o.threads = 2;
	o.l2 = &r.l2;
	o.nl2 = 1;
	run(&t, &o, &r2, "wordnet fixture, 2 threads");
	check(same_result(&r, &r2),
	      "wordnet fixture: the candidate kept, alone and on 2 threads, gives the same result");
	task_release(&t);
}

int
main(void)
{
	task_wordnet_sysdir = "/nonexistent/wordnet";
	test_separable();
	test_words();
	test_vocab_ties();
	test_determinism();
	test_l2();
	test_threshold();
	test_errors();
	test_fixture();
	return tap_done();
}
