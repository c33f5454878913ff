/*
 * train.c: the training loop of tc-train(1) (train.h).
 *
 * A step is a pure function of (seed, step): the batch is slot step mod nb of epoch step / nb, whose
 * order is a permutation drawn from (seed, epoch) with length bucketing; dropout and MLM masking are
 * hashes of (seed, step). So a checkpoint needs only the parameters, AdamW's moments and a few
 * counters to continue exactly, and resuming is a matter of loading them and carrying on.
 *
 * The learning-rate schedule is flexibert_lr over a step total S: --steps, or --epochs times the
 * batches of an epoch. A --tokens or --time budget has no step total in advance; progress is then the
 * largest fraction of any budget used, mapped on a virtual total of 1,000,000 steps, so the rate still
 * warms up and decays to zero as the first budget runs out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "flexibert.h"
#include "jsonl.h"
#include "nn.h"
#include "rng.h"
#include "task.h"
#include "tensor.h"
#include "train.h"
#include "util.h"
#include "wordpiece.h"

#define VIRTUAL_STEPS 1000000.0
#define RECENT        100 /* steps in train_loss */

void
train_options_default(struct train_options *o)
{
	memset(o, 0, sizeof *o);
	o->objective = FB_CLS;
	o->batch = 32;
	o->bucket = 8;
	o->seq = 128;
	o->lr = 1e-3;
	o->warmup = 0.1;
	o->weight_decay = 0.01;
	o->max_norm = 1.0;
	o->average_every = 50;
	o->dropout = 0.1f;
	o->seed = 1;
	o->vocab_size = 8192;
	o->checkpoint_every = 60;
	o->progress = TRAIN_PROGRESS_NONE;
	o->progress_every = 10;
	o->log = stderr;
	o->tau_act = o->tau_grad = o->tau_weight = -1;
	o->target_act = o->target_grad = -1;
	for (int i = 0; i < FB_PT_COUNT; i++)
		o->target_point[i] = o->target_grad_point[i] = -1;
}

void
train_result_release(struct train_result *r)
{
	free(r->checkpoint);
	r->checkpoint = NULL;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double
peak_rss_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

/* ---- the encoded data ---- */

struct corpus {
	int32_t *ids; /* every example's ids, [CLS] .. [SEP], back to back */
	size_t *off;  /* example i is ids[off[i] .. off[i + 1]) */
	int *label;
	size_t n;
	size_t tokens; /* sum of lengths */
};

static void
corpus_free(struct corpus *c)
{
	free(c->ids), free(c->off), free(c->label);
	memset(c, 0, sizeof *c);
}

static int
len_of(const struct corpus *c, size_t i)
{
	return (int)(c->off[i + 1] - c->off[i]);
}

/* The examples of split, encoded with wp to at most seq ids each, in task order. */
static void
corpus_build(struct corpus *c, const struct task *t, int split, const struct wordpiece *wp, int seq)
{
	size_t n = 0, cap = 0, k = 0;
	int32_t *buf = emalloc(sizeof *buf * (size_t)seq);

	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < t->n; i++)
		n += t->ex[i].split == split;
	c->off = emalloc(sizeof *c->off * (n + 1));
	c->label = emalloc(sizeof *c->label * (n ? n : 1));
	c->off[0] = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (t->ex[i].split != split)
			continue;
		int m = wordpiece_encode(wp, t->ex[i].text, buf, seq);
		c->ids = egrow(c->ids, &cap, c->off[k] + (size_t)m, sizeof *c->ids);
		memcpy(c->ids + c->off[k], buf, sizeof *buf * (size_t)m);
		c->label[k] = t->ex[i].label;
		c->off[k + 1] = c->off[k] + (size_t)m;
		k++;
	}
	c->n = n;
	c->tokens = c->off[n];
	free(buf);
}

/* ---- batches ---- */

struct plan {
	long epoch;    /* the epoch planned, -1 for none */
	size_t *order; /* examples in batch order */
	size_t *start; /* batch k is order[start[k] .. start[k + 1]) */
	long nb;
};

static const struct corpus *sort_corpus;

static int
by_length(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int lx = len_of(sort_corpus, x), ly = len_of(sort_corpus, y);

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return (x > y) - (x < y);
}

/* Epoch e's order: a permutation from (seed, e), cut into groups of bucket batches each sorted by
 * length (so a batch pads little), then the batches themselves shuffled. */
static void
plan_epoch(struct plan *p, const struct corpus *c, int B, int bucket, uint64_t seed, long e)
{
	struct rng r;
	size_t n = c->n, *perm, *bperm;

	rng_seed_stream(&r, seed, 0x6570000000ULL + (uint64_t)e);
	perm = emalloc(sizeof *perm * n);
	rng_permutation(&r, perm, n);
	sort_corpus = c;
	for (size_t g = 0; bucket > 1 && g < n; g += (size_t)B * (size_t)bucket) {
		size_t m = n - g < (size_t)B * (size_t)bucket ? n - g : (size_t)B * (size_t)bucket;
		qsort(perm + g, m, sizeof *perm, by_length);
	}
	p->nb = (long)((n + (size_t)B - 1) / (size_t)B);
	bperm = emalloc(sizeof *bperm * (size_t)p->nb);
	rng_permutation(&r, bperm, (size_t)p->nb);
	size_t k = 0;
	for (long b = 0; b < p->nb; b++) {
		size_t lo = bperm[b] * (size_t)B, hi = lo + (size_t)B < n ? lo + (size_t)B : n;
		p->start[b] = k;
		for (size_t i = lo; i < hi; i++)
			p->order[k++] = perm[i];
	}
	p->start[p->nb] = k;
	p->epoch = e;
	free(perm);
	free(bperm);
}

/*
 * Fill ids (B, T) and labels for the examples ex[0..B), padded to the longest (T). For FB_MLM the
 * labels are (B, T): 15% of the real tokens other than [CLS] and [SEP], chosen by hashing (key, b, t),
 * are predicted; 80% of those become [MASK], 10% a random non-special token, 10% stay.
 */
static int
fill_batch(const struct corpus *c, const size_t *ex, int B, int objective, const struct wordpiece *wp,
           uint64_t key, int32_t *ids, int32_t *labels)
{
	int T = 1, V = wordpiece_size(wp), cls = wordpiece_cls(wp), sep = wordpiece_sep(wp),
	    mask = wordpiece_mask(wp);

	for (int b = 0; b < B; b++)
		if (len_of(c, ex[b]) > T)
			T = len_of(c, ex[b]);
	for (int b = 0; b < B; b++) {
		int n = len_of(c, ex[b]);
		const int32_t *src = c->ids + c->off[ex[b]];
		for (int t = 0; t < T; t++)
			ids[b * T + t] = t < n ? src[t] : 0;
		if (objective == FB_CLS) {
			labels[b] = c->label[ex[b]];
			continue;
		}
		for (int t = 0; t < T; t++) {
			int32_t id = ids[b * T + t];
			labels[b * T + t] = -100;
			if (t >= n || id == cls || id == sep)
				continue;
			uint64_t h =
			    tc_hash_final(key ^ tc_hash_final(((uint64_t)ex[b] << 20) + (uint64_t)t));
			double u = (double)(h >> 11) * 0x1.0p-53;
			if (u >= 0.15)
				continue;
			labels[b * T + t] = id;
			u /= 0.15;
			if (u < 0.8 && mask >= 0)
				ids[b * T + t] = mask;
			else if (u < 0.9 && V > 5)
				ids[b * T + t] = 5 + (int32_t)((h & 0xffffffu) % (uint64_t)(V - 5));
		}
	}
	return T;
}

/* ---- evaluation ---- */

/* Accuracy and mean loss on corpus c (predicted tokens for FB_MLM, with masks drawn from key). */
static void
evaluate(struct flexibert *fb, const struct corpus *c, const struct wordpiece *wp, int B, uint64_t key,
         double *acc, double *loss, int32_t *ids, int32_t *labels)
{
	size_t *order = emalloc(sizeof *order * (c->n ? c->n : 1));
	double right = 0, count = 0, lsum = 0;
	int C = fb->cfg.objective == FB_CLS ? fb->cfg.labels : fb->cfg.vocab;

	for (size_t i = 0; i < c->n; i++)
		order[i] = i;
	sort_corpus = c;
	qsort(order, c->n, sizeof *order, by_length);
	for (size_t i = 0; i < c->n; i += (size_t)B) {
		int nb = c->n - i < (size_t)B ? (int)(c->n - i) : B;
		int T = fill_batch(c, order + i, nb, fb->cfg.objective, wp, key, ids, labels);
		double l = flexibert_forward(fb, ids, labels, nb, T, 0, 0);
		int rows = fb->nlogit_rows, r = 0;
		for (int j = 0; j < (fb->cfg.objective == FB_CLS ? nb : nb * T); j++) {
			if (labels[j] == -100)
				continue;
			const float *z = fb->logits + (size_t)r * C;
			int best = 0;
			for (int k = 1; k < C; k++)
				if (z[k] > z[best])
					best = k;
			right += best == labels[j];
			r++;
		}
		lsum += l * rows;
		count += rows;
	}
	*acc = count ? right / count : 0;
	*loss = count ? lsum / count : 0;
	free(order);
}

/* ---- checkpoints ---- */

struct state {
	long step;        /* optimizer steps done */
	double tokens;    /* real tokens trained on */
	double elapsed;   /* seconds of training, over every run */
	double best_loss; /* lowest validation loss so far (INFINITY: none) */
	float recent[RECENT];
	int ncurve;
	double curve[64][4];
	/* DynaProp: the thresholds per class and point (weight gradients: point 0); zeros and
	 * elements counted at the pruning points, per layer and class and per class and point (the
	 * weight-gradient row of pz and pn stays 0: those are counted per layer), over every run */
	double tau[FB_SP_COUNT][FB_PT_COUNT];
	double cz[MODEL_MAX_LAYERS][FB_SP_COUNT], cn[MODEL_MAX_LAYERS][FB_SP_COUNT];
	double pz[FB_SP_COUNT][FB_PT_COUNT], pn[FB_SP_COUNT][FB_PT_COUNT];
	long cal_step; /* the step after which thresholds were last calibrated, -1 before */
	long ncal;     /* calibrations so far */
	/* weight averaging: the mean of navg snapshots (NULL without --average); once the run is done
	 * the parameters are that mean, and last_val and last_test the accuracies of the last weights */
	float *avg;
	long navg;
	int averaged;
	double last_val, last_test;
};

/* A value per class and point, as an array of FB_SP_COUNT arrays of FB_PT_COUNT numbers. */
static json_t *
class_points_json(const double *v)
{
	json_t *a = json_array();
	for (int k = 0; k < FB_SP_COUNT; k++) {
		json_t *b = json_array();
		for (int i = 0; i < FB_PT_COUNT; i++)
			json_array_append_new(b, json_real(v[k * FB_PT_COUNT + i]));
		json_array_append_new(a, b);
	}
	return a;
}

/* Its inverse; a class given as one number (checkpoints before thresholds per point) holds at
 * every point. */
static void
class_points_get(double v[FB_SP_COUNT][FB_PT_COUNT], const json_t *a)
{
	for (int k = 0; k < FB_SP_COUNT; k++) {
		const json_t *b = json_array_get(a, (size_t)k);
		for (int i = 0; i < FB_PT_COUNT; i++)
			v[k][i] = json_number_value(json_is_array(b) ? json_array_get(b, (size_t)i) : b);
	}
}

json_t *
train_options_json(const struct train_options *o)
{
	json_t *c = json_object();

	json_object_set_new(c, "task", json_string(o->task ? o->task : TASK_DEFAULT));
	json_object_set_new(c, "objective", json_string(o->objective == FB_CLS ? "cls" : "mlm"));
	json_object_set_new(c, "seed", json_integer((json_int_t)o->seed));
	json_object_set_new(c, "batch", json_integer(o->batch));
	json_object_set_new(c, "bucket", json_integer(o->bucket));
	json_object_set_new(c, "seq", json_integer(o->seq));
	json_object_set_new(c, "lr", json_number(o->lr));
	json_object_set_new(c, "warmup", json_number(o->warmup));
	json_object_set_new(c, "weight_decay", json_number(o->weight_decay));
	json_object_set_new(c, "max_norm", json_number(o->max_norm));
	json_object_set_new(c, "dropout", json_number(o->dropout));
	if (o->label_smoothing > 0) /* (absent otherwise, so older runs keep their checkpoint names) */
		json_object_set_new(c, "label_smoothing", json_number(o->label_smoothing));
	if (o->average > 0) { /* (absent otherwise, as label_smoothing) */
		json_object_set_new(c, "average", json_number(o->average));
		json_object_set_new(c, "average_every", json_integer(o->average_every));
	}
	json_object_set_new(c, "vocab_size", json_integer(o->vocab_size));
	json_object_set_new(c, "vocab_path", o->vocab_path ? json_string(o->vocab_path) : json_null());
	json_object_set_new(c, "init_path", o->init_path ? json_string(o->init_path) : json_null());
	if (o->dynaprop) { /* (absent otherwise, so dense runs keep their checkpoint names) */
		json_t *d = json_object();
		json_object_set_new(d, "tau_act", json_number(o->tau_act));
		json_object_set_new(d, "tau_grad", json_number(o->tau_grad));
		json_object_set_new(d, "tau_weight", json_number(o->tau_weight));
		json_object_set_new(d, "target_act", json_number(o->target_act));
		json_object_set_new(d, "target_grad", json_number(o->target_grad));
		for (int i = 0; i < FB_PT_COUNT; i++)
			if (o->target_point[i] >= 0) /* (only when given, so older checkpoints still match) */
				json_object_set_new(d, fb_point_name[i], json_number(o->target_point[i]));
		for (int i = 0; i < FB_PT_COUNT; i++)
			if (o->target_grad_point[i] >= 0) {
				char key[32];
				snprintf(key, sizeof key, "grad_%s", fb_point_name[i]);
				json_object_set_new(d, key, json_number(o->target_grad_point[i]));
			}
		json_object_set_new(d, "start", json_number(o->prune_start));
		json_object_set_new(c, "dynaprop", d);
	}
	return c;
}

/* The options and what they made of the data: a checkpoint resumes only under the same. */
static char *
config_json(const struct flexibert *fb, const struct train_options *o)
{
	json_t *c = train_options_json(o);
	char *s;

	json_object_set_new(c, "vocab", json_integer(fb->cfg.vocab));
	json_object_set_new(c, "labels", json_integer(fb->cfg.labels));
	json_object_set_new(c, "max_pos", json_integer(fb->cfg.max_pos));
	s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	return s;
}

static int
save_checkpoint(const char *path, struct flexibert *fb, const struct wordpiece *wp, const char *model,
                const char *config, const struct state *st, int done, struct tc_error *err)
{
	struct tensor_set s;
	struct tensor *t;
	json_t *j = json_object(), *cv = json_array();
	char *text, *js;
	size_t len;
	int rc = -1;
	int64_t n;

	tensor_set_init(&s);
	if (flexibert_export(fb, &s, "", fb->params, err) < 0 ||
	    flexibert_export(fb, &s, "adam.m.", fb->m, err) < 0 ||
	    flexibert_export(fb, &s, "adam.v.", fb->v, err) < 0 ||
	    (st->navg > 0 && !st->averaged && flexibert_export(fb, &s, "average.", st->avg, err) < 0))
		goto out;
	n = RECENT;
	if (!(t = tensor_set_add(&s, "train.recent_loss", TENSOR_F32, 1, &n, err)))
		goto out;
	memcpy(t->data, st->recent, sizeof st->recent);
	text = wordpiece_text(wp, &len);
	n = (int64_t)len;
	if (!(t = tensor_set_add(&s, "tokenizer.vocab_txt", TENSOR_U8, 1, &n, err))) {
		free(text);
		goto out;
	}
	memcpy(t->data, text, len);
	free(text);
	json_object_set_new(j, "step", json_integer(st->step));
	json_object_set_new(j, "tokens", json_number(st->tokens));
	json_object_set_new(j, "elapsed_s", json_number(st->elapsed));
	json_object_set_new(j, "best_loss",
	                    isfinite(st->best_loss) ? json_number(st->best_loss) : json_null());
	json_object_set_new(j, "done", json_boolean(done));
	for (int i = 0; i < st->ncurve; i++)
		json_array_append_new(cv, json_pack("[f,f,f,f]", st->curve[i][0], st->curve[i][1],
		                                    st->curve[i][2], st->curve[i][3]));
	json_object_set_new(j, "curve", cv);
	if (st->navg > 0)
		json_object_set_new(j, "average",
		                    json_pack("{s:I,s:b,s:f,s:f}", "snapshots", (json_int_t)st->navg, "applied",
		                              st->averaged, "last_val_accuracy", st->last_val,
		                              "last_test_accuracy", st->last_test));
	if (fb->cfg.dynaprop) {
		json_t *d = json_object(), *cz = json_array(), *cn = json_array();
		for (int l = 0; l < fb->cfg.m.l; l++) {
			json_array_append_new(cz,
			                      json_pack("[f,f,f]", st->cz[l][0], st->cz[l][1], st->cz[l][2]));
			json_array_append_new(cn,
			                      json_pack("[f,f,f]", st->cn[l][0], st->cn[l][1], st->cn[l][2]));
		}
		json_object_set_new(d, "tau", class_points_json(&st->tau[0][0]));
		json_object_set_new(d, "cal_step", json_integer(st->cal_step));
		json_object_set_new(d, "calibrations", json_integer(st->ncal));
		json_object_set_new(d, "zeros", cz);
		json_object_set_new(d, "elements", cn);
		json_object_set_new(d, "point_zeros", class_points_json(&st->pz[0][0]));
		json_object_set_new(d, "point_elements", class_points_json(&st->pn[0][0]));
		json_object_set_new(j, "dynaprop", d);
	}
	js = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (tensor_set_meta(&s, "format", TENSOR_FORMAT, err) == 0 &&
	    tensor_set_meta(&s, "model", model, err) == 0 &&
	    tensor_set_meta(&s, "config", config, err) == 0 && tensor_set_meta(&s, "state", js, err) == 0 &&
	    tensor_file_save(&s, path, err) == 0)
		rc = 0;
	free(js);
out:
	json_decref(j);
	tensor_set_release(&s);
	return rc;
}

/* Continue from the checkpoint in s: parameters, moments, counters. config must match. */
static int
load_state(const struct tensor_set *s, const char *path, struct flexibert *fb, const char *config,
           struct state *st, int *done, struct tc_error *err)
{
	const char *c = tensor_set_get_meta(s, "config"), *js = tensor_set_get_meta(s, "state");
	const struct tensor *t = tensor_set_find(s, "train.recent_loss");
	json_t *j;
	json_error_t je;

	if (!c || strcmp(c, config) != 0)
		return tc_error_set(
		    err,
		    "%s: trained with other options (%s); this run has %s; remove it or change "
		    "--checkpoint",
		    path, c ? c : "none", config);
	if (flexibert_import(fb, s, "", fb->params, err) < 0 ||
	    flexibert_import(fb, s, "adam.m.", fb->m, err) < 0 ||
	    flexibert_import(fb, s, "adam.v.", fb->v, err) < 0)
		return tc_error_prefix(err, "%s", path);
	if (!t || t->dtype != TENSOR_F32 || t->nbytes != sizeof st->recent || !js ||
	    !(j = json_loads(js, 0, &je)))
		return tc_error_set(err, "%s: metadata 'state': missing or not JSON", path);
	st->step = (long)json_integer_value(json_object_get(j, "step"));
	st->tokens = json_number_value(json_object_get(j, "tokens"));
	st->elapsed = json_number_value(json_object_get(j, "elapsed_s"));
	st->best_loss = json_is_number(json_object_get(j, "best_loss"))
	                    ? json_number_value(json_object_get(j, "best_loss"))
	                    : INFINITY;
	*done = json_is_true(json_object_get(j, "done"));
	memcpy(st->recent, t->data, sizeof st->recent);
	const json_t *cv = json_object_get(j, "curve");
	st->ncurve = 0;
	for (size_t i = 0; i < json_array_size(cv) && i < 64; i++, st->ncurve++)
		for (int k = 0; k < 4; k++)
			st->curve[i][k] = json_number_value(json_array_get(json_array_get(cv, i), (size_t)k));
	const json_t *av = json_object_get(j, "average");
	st->navg = 0;
	if (av) {
		st->navg = (long)json_integer_value(json_object_get(av, "snapshots"));
		st->averaged = json_is_true(json_object_get(av, "applied"));
		st->last_val = json_number_value(json_object_get(av, "last_val_accuracy"));
		st->last_test = json_number_value(json_object_get(av, "last_test_accuracy"));
		if (st->navg < 1 || !st->avg) {
			json_decref(j);
			return tc_error_set(err, "%s: metadata 'state': field 'average': malformed", path);
		}
		if (!st->averaged && flexibert_import(fb, s, "average.", st->avg, err) < 0) {
			json_decref(j);
			return tc_error_prefix(err, "%s", path);
		}
	}
	if (fb->cfg.dynaprop) {
		const json_t *d = json_object_get(j, "dynaprop");
		const json_t *cz = json_object_get(d, "zeros"), *cn = json_object_get(d, "elements");
		if (!json_is_object(d) || json_array_size(cz) != (size_t)fb->cfg.m.l ||
		    json_array_size(cn) != (size_t)fb->cfg.m.l) {
			json_decref(j);
			return tc_error_set(
			    err, "%s: metadata 'state': field 'dynaprop': missing or malformed", path);
		}
		st->cal_step = json_is_integer(json_object_get(d, "cal_step"))
		                   ? (long)json_integer_value(json_object_get(d, "cal_step"))
		                   : -1;
		class_points_get(st->tau, json_object_get(d, "tau"));
		class_points_get(st->pz, json_object_get(d, "point_zeros"));
		class_points_get(st->pn, json_object_get(d, "point_elements"));
		st->ncal = (long)json_integer_value(json_object_get(d, "calibrations"));
		for (int k = 0; k < FB_SP_COUNT; k++) {
			for (int l = 0; l < fb->cfg.m.l; l++) {
				st->cz[l][k] = json_number_value(
				    json_array_get(json_array_get(cz, (size_t)l), (size_t)k));
				st->cn[l][k] = json_number_value(
				    json_array_get(json_array_get(cn, (size_t)l), (size_t)k));
			}
		}
	}
	json_decref(j);
	if (st->step < 0)
		return tc_error_set(err, "%s: metadata 'state': field 'step': negative", path);
	fb->step = st->step;
	return 0;
}

/* ---- progress ---- */

static void
progress(const struct train_options *o, int final, long step, double frac, double loss, double lr,
         double tok_s, double elapsed, double epoch)
{
	double left = frac > 0 ? elapsed * (1 - frac) / frac : 0;

	if (o->progress == TRAIN_PROGRESS_JSON) {
		fprintf(
		    o->log,
		    "{\"progress\":{\"label\":\"%s\",\"step\":%ld,\"epoch\":%.3f,\"done\":%.4f,\"loss\":%.5g,"
		    "\"lr\":%.4g,\"tokens_per_s\":%.0f,\"elapsed_s\":%.1f,\"left_s\":%.1f}}\n",
		    o->label ? o->label : "", step, epoch, frac, loss, lr, tok_s, elapsed, left);
	} else if (o->progress == TRAIN_PROGRESS_BAR) {
		static const char *const eighth[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
		char bar[128] = "";
		int w = 24, full = (int)(frac * w), part = (int)((frac * w - full) * 8);
		for (int i = 0; i < full && i < w; i++)
			strcat(bar, "█");
		if (full < w)
			strcat(bar, eighth[part]);
		for (int i = full + (part > 0); i < w; i++)
			strcat(bar, " ");
		fprintf(o->log, "\r%s%s%3.0f%% |%s| step %ld  loss %.4f  %.0f tok/s  %d:%02d left \033[K",
		        o->label ? o->label : "", o->label ? " " : "", frac * 100, bar, step, loss, tok_s,
		        (int)(left / 60), (int)fmod(left, 60));
		if (final)
			fputc('\n', o->log);
	}
	fflush(o->log);
}

/* ---- the run ---- */

static int
load_vocab(const struct train_options *o, const struct task *t, const struct tensor_set *init,
           struct wordpiece **wp, struct tc_error *err)
{
	if (init) {
		const struct tensor *v = tensor_set_find(init, "tokenizer.vocab_txt");
		if (!v || v->dtype != TENSOR_U8)
			return tc_error_set(err, "%s: no tensor 'tokenizer.vocab_txt'", o->init_path);
		*wp = wordpiece_load_mem(v->data, v->nbytes, o->init_path, err);
	} else if (o->vocab_path) {
		*wp = wordpiece_load(o->vocab_path, err);
	} else {
		size_t n = 0;
		const char **texts = emalloc(sizeof *texts * (t->n ? t->n : 1));
		for (size_t i = 0; i < t->n; i++)
			if (t->ex[i].split == TASK_TRAIN)
				texts[n++] = t->ex[i].text;
		*wp = wordpiece_train(texts, n, o->vocab_size, err);
		free(texts);
	}
	if (!*wp)
		return -1;
	if (wordpiece_pad(*wp) != 0)
		return tc_error_set(err, "vocabulary: [PAD] must be token 0 (line 1 of vocab.txt)");
	if (o->objective == FB_MLM && wordpiece_mask(*wp) < 0)
		return tc_error_set(err, "vocabulary: masked-LM training needs a [MASK] token");
	return 0;
}

/* Whether checkpoint init has the word embeddings of cfg, whose vocabulary it gave: checked before
 * the model is built, as the vocabulary's size is the file's to state. */
static int
init_embeddings(const struct tensor_set *init, const struct fb_config *cfg, const char *path,
                struct tc_error *err)
{
	static const char name[] = "bert.embeddings.word_embeddings.weight";
	const struct tensor *t = tensor_set_find(init, name);

	if (!t || t->dtype != TENSOR_F32 || t->ndim != 2 || t->shape[0] != cfg->vocab ||
	    t->shape[1] != cfg->m.layer[0].h)
		return tc_error_set(
		    err, "%s: tensor '%s' missing or of another shape: the checkpoint is of another model",
		    path, name);
	return 0;
}

/* Copy the encoder of checkpoint init (every parameter named bert.*) into fb. */
static int
init_from(struct flexibert *fb, const struct tensor_set *init, const char *path, struct tc_error *err)
{
	for (int i = 0; i < fb->np; i++) {
		const struct fb_param *p = &fb->p[i];
		const struct tensor *t;
		if (strncmp(p->name, "bert.", 5) != 0 || !strncmp(p->name, "bert.pooler.", 12))
			continue;
		if (!(t = tensor_set_find(init, p->name)) || t->dtype != TENSOR_F32 ||
		    t->nbytes != p->n * sizeof(float))
			return tc_error_set(
			    err,
			    "%s: tensor '%s' missing or of another shape: the checkpoint is of another model",
			    path, p->name);
		memcpy(fb->params + p->off, t->data, t->nbytes);
	}
	return 0;
}

/* ---- DynaProp's thresholds ---- */

struct wsample {
	float v, w;
};

static int
cmp_wsample(const void *a, const void *b)
{
	const struct wsample *x = a, *y = b;
	if (x->v != y->v)
		return (x->v > y->v) - (x->v < y->v);
	return (x->w > y->w) - (x->w < y->w);
}

/* The smallest sampled magnitude of class k (at point pt; -1: every point) that at least a fraction
 * q of the elements the samples stand for (by their weights) do not exceed. */
static double
quantile(const struct fb_prune *pr, int k, int pt, double q)
{
	struct wsample *s;
	double total = 0, acc = 0, tau = 0;
	size_t n = 0;

	if (pr->nsamp[k] == 0)
		return 0;
	s = emalloc(sizeof *s * pr->nsamp[k]);
	for (size_t i = 0; i < pr->nsamp[k]; i++) {
		if (pt >= 0 && pr->sampp[k][i] != pt)
			continue;
		s[n].v = pr->samp[k][i], s[n].w = pr->sampw[k][i];
		total += s[n++].w;
	}
	qsort(s, n, sizeof *s, cmp_wsample);
	for (size_t i = 0; i < n && acc < q * total; i++) {
		acc += s[i].w;
		tau = s[i].v;
	}
	free(s);
	return tau;
}

/* The thresholds of the step, 0 while the run is before --prune-start (active 0). */
static void
set_taus(struct flexibert *fb, const struct state *st, const struct train_options *o, int active)
{
	for (int i = 0; i < FB_PT_COUNT; i++) {
		fb->prune.tau_act[i] = active ? (float)st->tau[FB_SP_ACT][i] : 0.0f;
		fb->prune.tau_grad[i] = active ? (float)st->tau[FB_SP_GRAD][i] : 0.0f;
	}
	fb->prune.tau_weight = active ? (float)st->tau[FB_SP_WGRAD][0] : 0.0f;
}

/* Steps between calibrations: 10, 20, 40 and 80 after the first four, TRAIN_RECALIBRATE after
 * the others, since magnitudes move most early in training. */
static long
cal_interval(long ncal)
{
	static const long early[] = {10, 20, 40, 80};
	return ncal >= 1 && ncal <= 4 ? early[ncal - 1] : TRAIN_RECALIBRATE;
}

/* The kind of sampling a training step does: 1 (everything) on the first step of pruning in a run
 * with targets and on each step of calibration after it, 2 (the gradients, now behind the pruned
 * activations) on the step after each of those when there is a gradient target, 0 otherwise. */
static int
sampling(const struct state *st, const struct train_options *o, int active)
{
	if (!active || (o->target_act < 0 && o->target_grad < 0))
		return 0;
	if (st->cal_step < 0 || st->step >= st->cal_step + cal_interval(st->ncal))
		return 1;
	return st->cal_step == st->step && o->target_grad >= 0 ? 2 : 0;
}

/*
 * After a step: its counts into the run's. After a step that sampled everything, each targeted
 * threshold at its target quantile of the magnitudes sampled at its point (weight gradients: at
 * the gradient target, unless --tau-weight is given); after the step that sampled the gradients
 * alone, the gradient thresholds again from those, taken behind the pruned activations, so that
 * the zeros those leave count towards the target.
 */
static void
dynaprop_after_step(struct flexibert *fb, struct state *st, const struct train_options *o)
{
	struct fb_prune *pr = &fb->prune;
	const double target[FB_SP_COUNT] = {o->target_act, o->target_grad,
	                                    o->tau_weight >= 0 ? -1 : o->target_grad};
	const int npt[FB_SP_COUNT] = {FB_PT_COUNT, FB_PT_COUNT, 1};
	int sampled = pr->sample;

	for (int k = 0; k < FB_SP_COUNT; k++)
		for (int i = 0; i < npt[k] && sampled; i++) {
			double t = k == FB_SP_ACT && o->target_point[i] >= 0         ? o->target_point[i]
			           : k == FB_SP_GRAD && o->target_grad_point[i] >= 0 ? o->target_grad_point[i]
			                                                             : target[k];
			if (t >= 0 && (sampled == 1 || k == FB_SP_GRAD))
				st->tau[k][i] = quantile(pr, k, k == FB_SP_WGRAD ? -1 : i, t);
		}
	if (sampled == 1)
		st->cal_step = st->step, st->ncal++;
	pr->sample = 0;
	for (int l = 0; l < fb->cfg.m.l; l++)
		for (int k = 0; k < FB_SP_COUNT; k++) {
			st->cz[l][k] += pr->zeros[l][k];
			st->cn[l][k] += pr->total[l][k];
		}
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < FB_PT_COUNT; i++)
			st->pz[k][i] += pr->pz[k][i], st->pn[k][i] += pr->pn[k][i];
	flexibert_prune_reset(fb);
}

/* ---- a trained model, pruned ---- */

struct trained {
	struct tensor_set ts;
	struct task task;
	struct wordpiece *wp;
	struct flexibert fb;
	struct corpus tr, va, te;
	int have_fb, batch, seq;
	int32_t *ids, *labels;
};

static void
trained_free(struct trained *t)
{
	if (t->have_fb)
		flexibert_release(&t->fb);
	wordpiece_free(t->wp);
	corpus_free(&t->tr), corpus_free(&t->va), corpus_free(&t->te);
	task_release(&t->task);
	tensor_set_release(&t->ts);
	free(t->ids), free(t->labels);
}

/* The sizes in a checkpoint's metadata 'config' (vocab, labels, max_pos, seq) into cfg and *seq,
 * each an integer in range, seq at most max_pos (positions beyond max_pos have no embedding). */
static int
config_sizes(struct fb_config *cfg, int *seq, const json_t *cj, const char *path, struct tc_error *err)
{
	long v[4];

	if (json_get_int(cj, "vocab", 6, WORDPIECE_MAX_VOCAB, &v[0], err) < 0 ||
	    json_get_int(cj, "labels", 2, 1L << 24, &v[1], err) < 0 ||
	    json_get_int(cj, "max_pos", 2, 1L << 24, &v[2], err) < 0 ||
	    json_get_int(cj, "seq", 2, v[2], &v[3], err) < 0)
		return tc_error_prefix(err, "%s: metadata 'config'", path);
	cfg->vocab = (int)v[0];
	cfg->labels = (int)v[1];
	cfg->max_pos = (int)v[2];
	*seq = (int)v[3];
	return 0;
}

/* Whether set holds the cfg.m model's parameters: checked before the model is built from the sizes
 * its metadata states, so that a damaged file cannot make a reader allocate far more than it holds. */
static int
holds_params(const struct tensor_set *set, const struct fb_config *cfg, const char *path,
             struct tc_error *err)
{
	size_t need = flexibert_nparams(cfg), have = 0;

	for (size_t i = 0; i < set->n; i++)
		if (set->t[i].dtype == TENSOR_F32)
			have += set->t[i].nbytes / sizeof(float);
	if (need > have)
		return tc_error_set(err,
		                    "%s: metadata 'model' and 'config' describe %zu parameters, but the file "
		                    "holds %zu F32 values",
		                    path, need, have);
	return 0;
}

/* Load checkpoint path for evaluation with DynaProp's pruning points. */
static int
trained_load(struct trained *t, const char *path, const struct train_options *o, struct tc_error *err)
{
	const char *ms, *cs;
	const struct tensor *v;
	json_t *mj = NULL, *cj = NULL;
	struct fb_config cfg = {0};
	char *spec = NULL;
	int rc = -1;

	memset(t, 0, sizeof *t);
	tensor_set_init(&t->ts);
	if (tensor_file_load(&t->ts, path, err) < 0)
		return -1;
	ms = tensor_set_get_meta(&t->ts, "model");
	cs = tensor_set_get_meta(&t->ts, "config");
	if (!ms || !cs || !(mj = json_loads(ms, 0, NULL)) || !(cj = json_loads(cs, 0, NULL))) {
		tc_error_set(err, "%s: not a tc-train checkpoint (metadata 'model' or 'config' missing)",
		             path);
		goto out;
	}
	if (model_from_json(&cfg.m, mj, NULL, err) < 0) {
		tc_error_prefix(err, "%s: metadata 'model'", path);
		goto out;
	}
	cfg.objective = json_is_string(json_object_get(cj, "objective")) &&
	                        !strcmp(json_string_value(json_object_get(cj, "objective")), "mlm")
	                    ? FB_MLM
	                    : FB_CLS;
	cfg.dynaprop = 1;
	t->batch = o->batch;
	if (cfg.objective != FB_CLS) {
		tc_error_set(err, "%s: pruned evaluation needs a classifier's checkpoint", path);
		goto out;
	}
	if (config_sizes(&cfg, &t->seq, cj, path, err) < 0 || holds_params(&t->ts, &cfg, path, err) < 0)
		goto out;
	spec = estrdup(o->task ? o->task
	               : json_is_string(json_object_get(cj, "task"))
	                   ? json_string_value(json_object_get(cj, "task"))
	                   : TASK_DEFAULT);
	if (task_load(&t->task, spec, o->data_dirs, err) < 0)
		goto out;
	if (t->task.nlabels != cfg.labels) {
		tc_error_set(err, "%s: trained for %d classes; task '%s' has %d", path, cfg.labels, spec,
		             t->task.nlabels);
		goto out;
	}
	if (!(v = tensor_set_find(&t->ts, "tokenizer.vocab_txt")) || v->dtype != TENSOR_U8) {
		tc_error_set(err, "%s: no tensor 'tokenizer.vocab_txt'", path);
		goto out;
	}
	if (!(t->wp = wordpiece_load_mem(v->data, v->nbytes, path, err)))
		goto out;
	if (wordpiece_size(t->wp) != cfg.vocab) { /* token ids index the embeddings */
		tc_error_set(
		    err, "%s: tensor 'tokenizer.vocab_txt' has %d tokens, metadata 'config' says vocab %d",
		    path, wordpiece_size(t->wp), cfg.vocab);
		goto out;
	}
	if (flexibert_init(&t->fb, &cfg, 1, err) < 0)
		goto out;
	t->have_fb = 1;
	if (flexibert_import(&t->fb, &t->ts, "", t->fb.params, err) < 0) {
		tc_error_prefix(err, "%s", path);
		goto out;
	}
	corpus_build(&t->tr, &t->task, TASK_TRAIN, t->wp, t->seq);
	corpus_build(&t->va, &t->task, TASK_VALID, t->wp, t->seq);
	corpus_build(&t->te, &t->task, TASK_TEST, t->wp, t->seq);
	t->ids = emalloc(sizeof *t->ids * (size_t)t->batch * (size_t)t->seq);
	t->labels = emalloc(sizeof *t->labels * (size_t)t->batch * (size_t)t->seq);
	rc = 0;
out:
	free(spec);
	json_decref(mj);
	json_decref(cj);
	return rc;
}

static double
class_sparsity(const struct flexibert *fb, int k)
{
	double z = 0, n = 0;

	for (int l = 0; l < fb->cfg.m.l; l++)
		z += fb->prune.zeros[l][k], n += fb->prune.total[l][k];
	return n > 0 ? z / n : 0;
}

int
train_prune_eval(const char *checkpoint, const struct train_options *o, struct train_prune_point *pts, int n,
                 struct tc_error *err)
{
	struct trained t;
	double loss;

	nn_flush_denormals();
	if (trained_load(&t, checkpoint, o, err) < 0) {
		trained_free(&t);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct fb_prune *pr = &t.fb.prune;
		flexibert_prune_uniform(&t.fb, pts[i].topk > 0 ? 0.0f : (float)pts[i].tau, 0, 0);
		pr->topk = pts[i].topk;
		pr->count = 0;
		evaluate(&t.fb, &t.va, t.wp, t.batch, 1, &pts[i].val_accuracy, &loss, t.ids, t.labels);
		flexibert_prune_reset(&t.fb);
		pr->count = 1;
		evaluate(&t.fb, &t.te, t.wp, t.batch, 2, &pts[i].test_accuracy, &loss, t.ids, t.labels);
		pts[i].sparsity = class_sparsity(&t.fb, FB_SP_ACT);
		flexibert_prune_reset(&t.fb);
	}
	trained_free(&t);
	return 0;
}

/* Forward and backward over the first batches of the training split (no update), counting at the
 * thresholds set, or sampling with pr->sample. */
static void
calibration_pass(struct trained *t, int batches)
{
	size_t *ex = emalloc(sizeof *ex * (size_t)t->batch);

	flexibert_prune_reset(&t->fb);
	for (int b = 0; b < batches && (size_t)b * t->batch < t->tr.n; b++) {
		size_t first = (size_t)b * t->batch;
		int nb = (int)(t->tr.n - first < (size_t)t->batch ? t->tr.n - first : (size_t)t->batch);
		for (int i = 0; i < nb; i++)
			ex[i] = first + (size_t)i;
		int T = fill_batch(&t->tr, ex, nb, FB_CLS, t->wp, 0, t->ids, t->labels);
		flexibert_zero_grad(&t->fb);
		flexibert_forward(&t->fb, t->ids, t->labels, nb, T, 1, 0);
		flexibert_backward(&t->fb);
	}
	free(ex);
}

int
train_prune_calibrate(const char *checkpoint, const struct train_options *o, const double target[2],
                      int batches, double tau[2], double sparsity[2], struct tc_error *err)
{
	struct trained t;
	struct fb_prune *pr;
	double lo[2] = {0, 0}, hi[2] = {-1, -1}, best[2] = {INFINITY, INFINITY}, cur[2];

	nn_flush_denormals();
	if (trained_load(&t, checkpoint, o, err) < 0) {
		trained_free(&t);
		return -1;
	}
	pr = &t.fb.prune;
	t.fb.cfg.dropout = 0;
	/* a first guess from the magnitudes (pruning one point thins the next, so it prunes too
	 * much), then bisection on log tau over measured passes; the thresholds that came closest */
	pr->sample = 1;
	calibration_pass(&t, batches);
	pr->sample = 0;
	for (int k = 0; k < 2; k++) {
		cur[k] = target[k] >= 0 ? quantile(pr, k, -1, target[k]) : 0;
		tau[k] = cur[k];
	}
	for (int it = 0; it < TRAIN_CALIBRATE_PASSES; it++) {
		flexibert_prune_uniform(&t.fb, (float)cur[FB_SP_ACT], (float)cur[FB_SP_GRAD],
		                        (float)cur[FB_SP_GRAD]);
		calibration_pass(&t, batches);
		for (int k = 0; k < 2; k++) {
			double s = class_sparsity(&t.fb, k), off = target[k] >= 0 ? fabs(s - target[k]) : 0;
			if (off < best[k] || it == 0) {
				best[k] = off;
				tau[k] = cur[k];
				sparsity[k] = s;
			}
			if (target[k] < 0)
				continue;
			if (s < target[k])
				lo[k] = cur[k];
			else
				hi[k] = cur[k];
			cur[k] = hi[k] < 0   ? (cur[k] > 0 ? cur[k] * 2 : 1e-6)
			         : lo[k] > 0 ? sqrt(lo[k] * hi[k])
			                     : hi[k] / 2;
		}
	}
	trained_free(&t);
	return 0;
}

/* One more snapshot into the running mean of the weights (the token embeddings brought up to date
 * first): mean += (w - mean) / n, which is the first snapshot itself for n = 1. */
static void
average_add(struct flexibert *fb, struct state *st)
{
	float *a = st->avg;
	const float *w = fb->params;
	float f = 1.0f / (float)(st->navg + 1);
	long n = (long)fb->nparams;

	flexibert_sync(fb);
#pragma omp parallel for schedule(static)
	for (long j = 0; j < n; j++)
		a[j] += (w[j] - a[j]) * f;
	st->navg++;
}

int
train_run(const struct model *m, const struct train_options *o, struct train_result *r, struct tc_error *err)
{
	struct task task;
	struct wordpiece *wp = NULL;
	struct tensor_set init, ck;
	struct corpus tr = {0}, va = {0}, te = {0};
	struct plan plan = {.epoch = -1};
	struct flexibert fb;
	struct fb_config cfg = {0};
	struct state st = {0};
	char *modelstr = NULL, *config = NULL;
	int32_t *ids = NULL, *labels = NULL;
	int rc = -1, have_fb = 0, done = 0;
	double t0 = now();
	json_t *mj;

	memset(r, 0, sizeof *r);
	memset(&task, 0, sizeof task);
	nn_flush_denormals();
	tensor_set_init(&init);
	tensor_set_init(&ck);
	st.best_loss = INFINITY;
	if (o->batch < 1 || o->seq < 2)
		return tc_error_set(err, "--batch must be at least 1 and --seq at least 2");
	if (task_load(&task, o->task, o->data_dirs, err) < 0)
		goto out;
	if (o->init_path && tensor_file_load(&init, o->init_path, err) < 0)
		goto out;
	if (load_vocab(o, &task, o->init_path ? &init : NULL, &wp, err) < 0)
		goto out;
	corpus_build(&tr, &task, TASK_TRAIN, wp, o->seq);
	corpus_build(&va, &task, TASK_VALID, wp, o->seq);
	corpus_build(&te, &task, TASK_TEST, wp, o->seq);
	if (tr.n == 0) {
		tc_error_set(err, "task '%s': no training examples", task.name);
		goto out;
	}

	cfg.m = *m;
	cfg.vocab = wordpiece_size(wp);
	cfg.labels = o->objective == FB_CLS ? task.nlabels : 2;
	cfg.max_pos = o->seq > 512 ? o->seq : 512;
	cfg.objective = o->objective;
	cfg.dropout = o->dropout;
	cfg.smoothing = o->label_smoothing;
	cfg.dynaprop = o->dynaprop;
	st.cal_step = -1;
	for (int i = 0; i < FB_PT_COUNT; i++) {
		st.tau[FB_SP_ACT][i] = o->tau_act > 0 && o->target_act < 0 ? o->tau_act : 0;
		st.tau[FB_SP_GRAD][i] = o->tau_grad > 0 && o->target_grad < 0 ? o->tau_grad : 0;
	}
	st.tau[FB_SP_WGRAD][0] = o->tau_weight >= 0 ? o->tau_weight : st.tau[FB_SP_GRAD][0];
	if (o->init_path && init_embeddings(&init, &cfg, o->init_path, err) < 0)
		goto out;
	if (flexibert_init(&fb, &cfg, o->seed, err) < 0)
		goto out;
	have_fb = 1;
	/* calibrated thresholds compare the attention probabilities with tau / n, n the keys of the
	 * row, since batches of different lengths have probabilities of different sizes */
	fb.prune.relative = o->target_act >= 0;
	if (o->init_path && init_from(&fb, &init, o->init_path, err) < 0)
		goto out;
	mj = model_to_json(m);
	modelstr = json_dumps(mj, JSON_COMPACT);
	json_decref(mj);
	config = config_json(&fb, o);
	if (o->average > 0)
		st.avg = ecalloc64(fb.nparams, sizeof *st.avg);

	if (o->checkpoint && o->resume && access(o->checkpoint, F_OK) == 0) {
		const char *cm;
		if (tensor_file_load(&ck, o->checkpoint, err) < 0)
			goto out;
		if (!(cm = tensor_set_get_meta(&ck, "model")) || strcmp(cm, modelstr) != 0) {
			tc_error_set(err, "%s: a checkpoint of another model (%s)", o->checkpoint,
			             cm ? cm : "none");
			goto out;
		}
		if (load_state(&ck, o->checkpoint, &fb, config, &st, &done, err) < 0)
			goto out;
		tensor_set_release(&ck);
		r->resumed_at = st.step;
	}

	ids = emalloc(sizeof *ids * (size_t)o->batch * (size_t)o->seq);
	labels = emalloc(sizeof *labels * (size_t)o->batch * (size_t)o->seq);
	plan.order = emalloc(sizeof *plan.order * tr.n);
	plan.start = emalloc(sizeof *plan.start * (tr.n + 2));
	plan_epoch(&plan, &tr, o->batch, o->bucket, o->seed, 0);
	long nb = plan.nb, S = 0;
	if (o->steps > 0)
		S = o->steps;
	if (o->epochs > 0 && (S == 0 || (long)ceil(o->epochs * (double)nb) < S))
		S = (long)ceil(o->epochs * (double)nb);
	if (S == 0 && o->tokens <= 0 && o->time_s <= 0)
		S = nb; /* no budget: one epoch */

	double tlast = now(), tprog = tlast, tckpt = tlast, run_el0 = st.elapsed, run_tok0 = st.tokens;
	double loss_ema = NAN, lr = 0;
	long run_steps = 0;
	uint64_t key = tc_hash_final(o->seed ^ 0x7472616eULL);
	for (;;) {
		double el = st.elapsed, frac = 0;
		if (S)
			frac = (double)st.step / (double)S;
		if (o->tokens > 0)
			frac = fmax(frac, st.tokens / o->tokens);
		if (o->time_s > 0)
			frac = fmax(frac, el / o->time_s);
		if (frac >= 1 || (S && st.step >= S))
			break;
		if ((o->stop && *o->stop) || (o->pause_after > 0 && run_steps >= o->pause_after)) {
			r->stopped = 1;
			break;
		}
		/* the schedule's position: the real step over S, or the fraction on the virtual total */
		double Se = S ? (double)S : VIRTUAL_STEPS,
		       se = S ? fmax((double)st.step, frac * Se) : frac * Se;
		lr = flexibert_lr(o->lr, (long)se, (long)ceil(o->warmup * Se), (long)Se);

		long e = st.step / nb, k = st.step % nb;
		if (plan.epoch != e)
			plan_epoch(&plan, &tr, o->batch, o->bucket, o->seed, e);
		int B = (int)(plan.start[k + 1] - plan.start[k]);
		uint64_t skey = tc_hash_final(key + (uint64_t)st.step);
		int T = fill_batch(&tr, plan.order + plan.start[k], B, o->objective, wp, skey, ids, labels);
		flexibert_zero_grad(&fb);
		int active = se >= o->prune_start * Se; /* pruning from --prune-start of the budget on */
		if (o->dynaprop) {
			set_taus(&fb, &st, o, active);
			fb.prune.sample = sampling(&st, o, active);
		}
		double loss = flexibert_forward(&fb, ids, labels, B, T, 1, skey);
		if (!isfinite(loss)) {
			tc_error_set(err, "step %ld: the loss is %s (try a lower --lr); %s", st.step,
			             isnan(loss) ? "NaN" : "infinite",
			             o->checkpoint && access(o->checkpoint, F_OK) == 0
			                 ? "the last checkpoint is left as it was"
			                 : "no checkpoint was written");
			goto out;
		}
		flexibert_backward(&fb);
		flexibert_clip(&fb, o->max_norm);
		flexibert_adamw(&fb, lr, o->weight_decay);
		for (int b = 0; b < B; b++)
			st.tokens += len_of(&tr, plan.order[plan.start[k] + (size_t)b]);
		st.recent[st.step % RECENT] = (float)loss;
		st.step++;
		if (o->dynaprop) {
			dynaprop_after_step(&fb, &st, o);
			set_taus(&fb, &st, o, active); /* what evaluation prunes with */
		}
		run_steps++;
		if (st.avg && frac >= 1 - o->average && st.step % o->average_every == 0)
			average_add(&fb, &st);
		loss_ema = isnan(loss_ema) ? loss : 0.98 * loss_ema + 0.02 * loss;
		double tn = now();
		st.elapsed += tn - tlast;
		tlast = tn;

		if (o->eval_every > 0 && st.step % o->eval_every == 0 && st.ncurve < 64) {
			double va_acc, va_loss, te_acc, te_loss;
			evaluate(&fb, &va, wp, o->batch, key ^ 1, &va_acc, &va_loss, ids, labels);
			evaluate(&fb, &te, wp, o->batch, key ^ 2, &te_acc, &te_loss, ids, labels);
			st.best_loss = fmin(st.best_loss, va_loss);
			double *c = st.curve[st.ncurve++];
			c[0] = (double)st.step, c[1] = st.elapsed, c[2] = va_acc, c[3] = te_acc;
			if (o->progress == TRAIN_PROGRESS_JSON)
				fprintf(o->log,
				        "{\"eval\":{\"label\":\"%s\",\"step\":%ld,\"elapsed_s\":%.1f,\"val_"
				        "accuracy\":%.5f,"
				        "\"test_accuracy\":%.5f,\"val_loss\":%.5f}}\n",
				        o->label ? o->label : "", st.step, st.elapsed, va_acc, te_acc,
				        va_loss);
			tlast = now(); /* evaluation is not training time */
		}
		if (o->progress != TRAIN_PROGRESS_NONE &&
		    tn - tprog >= (o->progress == TRAIN_PROGRESS_BAR ? 0.25 : o->progress_every)) {
			double f2 = S ? fmax(frac, (double)st.step / (double)S) : frac;
			progress(o, 0, st.step, f2, loss_ema, lr,
			         (st.tokens - run_tok0) / fmax(st.elapsed - run_el0, 1e-9), st.elapsed,
			         (double)st.step / (double)nb);
			tprog = tn;
		}
		if (o->checkpoint && o->checkpoint_every > 0 && tn - tckpt >= o->checkpoint_every) {
			if (save_checkpoint(o->checkpoint, &fb, wp, modelstr, config, &st, 0, err) < 0)
				goto out;
			tckpt = now();
			tlast = tckpt;
		}
	}
	if (o->progress != TRAIN_PROGRESS_NONE && run_steps > 0)
		progress(o, 1, st.step, r->stopped ? (S ? (double)st.step / (double)S : 0) : 1, loss_ema, lr,
		         (st.tokens - run_tok0) / fmax(st.elapsed - run_el0, 1e-9), st.elapsed,
		         (double)st.step / (double)nb);

	if (o->dynaprop) /* the end of the budget is past any --prune-start */
		set_taus(&fb, &st, o,
		         o->prune_start <= 0 || st.cal_step >= 0 ||
		             (o->target_act < 0 && o->target_grad < 0));
	if (!r->stopped && st.navg > 0 && !st.averaged) {
		/* the last weights' accuracy, for the record; then the average in their place */
		double l;
		evaluate(&fb, &va, wp, o->batch, key ^ 1, &st.last_val, &l, ids, labels);
		evaluate(&fb, &te, wp, o->batch, key ^ 2, &st.last_test, &l, ids, labels);
		flexibert_sync(&fb);
		memcpy(fb.params, st.avg, sizeof *fb.params * fb.nparams);
		st.averaged = 1;
	}
	if (!r->stopped) {
		double te_loss;
		evaluate(&fb, &va, wp, o->batch, key ^ 1, &r->val_accuracy, &r->loss, ids, labels);
		evaluate(&fb, &te, wp, o->batch, key ^ 2, &r->test_accuracy, &te_loss, ids, labels);
		st.best_loss = fmin(st.best_loss, r->loss);
		/* the final point: the model as it ends (the average in place of the last evaluation's
		 * weights where one was taken at this step) */
		int last = st.ncurve > 0 && st.curve[st.ncurve - 1][0] == (double)st.step;
		if (last && st.averaged)
			st.ncurve--;
		if ((!last || st.averaged) && st.ncurve < 64) {
			double *c = st.curve[st.ncurve++];
			c[0] = (double)st.step, c[1] = st.elapsed, c[2] = r->val_accuracy,
			c[3] = r->test_accuracy;
		}
	}
	if (o->checkpoint && (run_steps > 0 || r->stopped || !done) &&
	    save_checkpoint(o->checkpoint, &fb, wp, modelstr, config, &st, !r->stopped, err) < 0)
		goto out;

	r->best_loss = isfinite(st.best_loss) ? st.best_loss : r->loss;
	double ls = 0;
	int nl = st.step < RECENT ? (int)st.step : RECENT;
	for (int i = 0; i < nl; i++)
		ls += st.recent[i];
	r->train_loss = nl ? ls / nl : 0;
	r->steps = st.step;
	r->epochs_done = st.step / nb;
	r->tokens = st.tokens;
	r->tokens_per_s = st.elapsed > 0 ? st.tokens / st.elapsed : 0;
	r->step_ms = st.step > 0 ? st.elapsed / (double)st.step * 1e3 : 0;
	r->wall_s = now() - t0;
	r->peak_rss_mb = peak_rss_mb();
	r->flops_per_step = flexibert_flops(&cfg, o->batch, o->seq, 1);
	r->params = fb.nparams;
	r->vocab = cfg.vocab;
	r->labels = task.nlabels;
	r->seq = o->seq;
	r->seed = o->seed;
	r->ncurve = st.ncurve;
	r->avg_snapshots = st.averaged ? st.navg : 0;
	r->last_val_accuracy = st.averaged ? st.last_val : r->val_accuracy;
	r->last_test_accuracy = st.averaged ? st.last_test : r->test_accuracy;
	memcpy(r->curve, st.curve, sizeof st.curve);
	if (o->dynaprop) {
		double z[FB_SP_COUNT] = {0}, n[FB_SP_COUNT] = {0};
		r->dynaprop = 1;
		r->nlayers = m->l;
		for (int l = 0; l < m->l; l++) {
			for (int k = 0; k < FB_SP_COUNT; k++)
				z[k] += st.cz[l][k], n[k] += st.cn[l][k];
			for (int k = 0; k < 2; k++)
				r->layer_sparsity[l][k] = st.cn[l][k] > 0 ? st.cz[l][k] / st.cn[l][k] : 0;
		}
		for (int k = 0; k < FB_SP_COUNT; k++)
			r->sparsity[k] = n[k] > 0 ? z[k] / n[k] : 0;
		for (int i = 0; i < FB_PT_COUNT; i++) {
			r->tau[FB_SP_ACT][i] = fb.prune.tau_act[i];
			r->tau[FB_SP_GRAD][i] = fb.prune.tau_grad[i];
			for (int k = 0; k < 2; k++)
				r->point_sparsity[i][k] = st.pn[k][i] > 0 ? st.pz[k][i] / st.pn[k][i] : 0;
		}
		r->tau[FB_SP_WGRAD][0] = fb.prune.tau_weight;
	}
	if (o->checkpoint)
		r->checkpoint = estrdup(o->checkpoint);
	rc = 0;
out:
	free(ids), free(labels), free(plan.order), free(plan.start);
	free(modelstr), free(config), free(st.avg);
	corpus_free(&tr), corpus_free(&va), corpus_free(&te);
	if (have_fb)
		flexibert_release(&fb);
	wordpiece_free(wp);
	tensor_set_release(&init);
	tensor_set_release(&ck);
	task_release(&task);
	return rc;
}
