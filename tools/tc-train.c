/*
 * tc-train: train each record's FlexiBERT 2.0 model on a text task and add "train" (tc-records(5)):
 * accuracy, loss, throughput, memory, checkpoint. The engine is lib/train; this file reads records,
 * maps options, handles signals and writes records. See tc-train(1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "bow.h"
#include "flexibert.h"
#include "jsonl.h"
#include "md5.h"
#include "nn.h"
#include "task.h"
#include "tensor.h"
#include "train.h"
#include "util.h"
#include "workload.h"

static struct train_options opt;
static const char *out_path = "-", *ckpt_file, *ckpt_dir, *baseline;
static const char *dirs[8];
static int ndirs, nthreads, quiet, progress_set;
static volatile int stop_flag;
static volatile sig_atomic_t stop_signal;

static void
usage(FILE *f)
{
	fprintf(
	    f, "Usage: tc-train [--task SPEC] [--objective cls|mlm] [--steps N] [--epochs X] [--tokens N]\n"
	       "                [--time DURATION] [--batch B] [--seq T] [--lr LR] [--seed N] [--threads N]\n"
	       "                [--checkpoint FILE | --checkpoint-dir DIR] [--resume] [--init FILE]\n"
	       "                [--baseline bow] [-o FILE] [FILE...]\n"
	       "Train each record's model on a text task and add \"train\" (tc-records(5)).\n"
	       "\n"
	       "  -t, --task SPEC         wordnet-lex (default), spam, tsv:FILE or jsonl:FILE; a record's\n"
	       "                          own \"task\" string wins\n"
	       "      --data DIR          where the wordnet/ and spam/ data sets are (make data);\n"
	       "                          repeatable; default $TC_DATA, else the build tree's build/data\n"
	       "      --objective O       cls (classification, default) or mlm (masked-LM pretraining)\n"
	       "      --steps N           budgets: the run ends at the first one reached; with none,\n"
	       "      --epochs X            one epoch. DURATION: seconds, or 90s, 5m, 1h\n"
	       "      --tokens N\n"
	       "      --time DURATION\n"
	       "  -b, --batch B           examples per step (default 32)\n"
	       "      --seq T             longest sequence, [CLS] and [SEP] included (default 128)\n"
	       "      --bucket N          sort each N batches' examples by length, so batches pad\n"
	       "                          little (default 8; 1: no sorting)\n"
	       "      --lr LR             peak learning rate (default 0.001)\n"
	       "      --warmup F          warm-up as a fraction of the budget (default 0.1)\n"
	       "      --weight-decay W    AdamW's decoupled decay (default 0.01)\n"
	       "      --max-norm N        gradient clipping norm (default 1)\n"
	       "      --dropout P         (default 0.1)\n"
	       "      --label-smoothing E the loss's target: 1 - E on the label, E / classes on each\n"
	       "                          (default 0)\n"
	       "      --average F         end with the mean of the weights over the last fraction F\n"
	       "                          of the budget (0: the last weights, the default)\n"
	       "      --average-every N   steps between the weights the mean takes (default 50)\n"
	       "      --vocab-size N      WordPiece vocabulary trained on the training split (default 8192)\n"
	       "      --vocab FILE        or a Hugging Face vocab.txt\n"
	       "      --init FILE         start from a checkpoint's encoder and vocabulary (fine-tuning)\n"
	       "      --checkpoint FILE   checkpoint of a single record (safetensors, tc-tensor(5))\n"
	       "      --checkpoint-dir D  one checkpoint per record, named by a hash of model and options\n"
	       "                          (default $XDG_CACHE_HOME/transcode/train)\n"
	       "      --no-checkpoint     write none\n"
	       "      --checkpoint-every S  seconds between checkpoints (default 60; also at the end)\n"
	       "      --resume            continue from the checkpoint where one exists\n"
	       "      --pause-after N     train at most N steps, checkpoint and exit 1 (resume later)\n"
	       "      --eval-every N      evaluate validation and test every N steps (the curve)\n"
	       "      --baseline bow      train bag-of-words logistic regression instead\n"
	       "      --dynaprop          prune activations and gradients at run time (DynaProp); alone,\n"
	       "                          at about 50%% of activations and 90%% of gradients\n"
	       "      --tau-act T         prune activations with |x| <= T (implies --dynaprop)\n"
	       "      --tau-grad T        prune gradients with |d| <= T\n"
	       "      --tau-weight T      prune weight gradients with |g| <= T (default: tau-grad's)\n"
	       "      --target-act S      or calibrate tau-act to activation sparsity S in [0, 1)\n"
	       "      --target-grad S     and tau-grad to gradient sparsity S\n"
	       "      --target-at P=S     activation sparsity S at pruning point P alone (qkv, score,\n"
	       "                          prob, ctx, ff, out); the others at --target-act's, or none\n"
	       "      --target-grad-at P=S  the same for the gradient at P\n"
	       "      --prune-start F     train the first fraction F of the budget dense (default 0)\n"
	       "      --progress P        bar, json or none (default: bar on a terminal, else json)\n"
	       "      --progress-every S  seconds between JSON progress lines (default 10)\n"
	       "  -q, --quiet             no progress\n"
	       "      --seed N            (default 1)\n"
	       "      --threads N         (default: the CPUs available)\n"
	       "  -o, --output FILE       write records to FILE (atomically) instead of stdout\n"
	       "  -h, --help, --version\n");
}

static void
on_signal(int sig)
{
	stop_flag = 1;
	stop_signal = sig;
}

/* "300", "300s", "5m", "1.5h" in seconds. */
static double
parse_duration(const char *s, const char *what)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(s, &end);
	if (end == s || errno || !isfinite(x) || x <= 0)
		usage_die("option '%s': expected a duration (300, 90s, 5m, 1h), got '%s'", what, s);
	if (*end == 'm')
		x *= 60, end++;
	else if (*end == 'h')
		x *= 3600, end++;
	else if (*end == 's')
		end++;
	if (*end)
		usage_die("option '%s': expected a duration (300, 90s, 5m, 1h), got '%s'", what, s);
	return x;
}

static void
mkdirs(const char *path)
{
	char *p = estrdup(path);

	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0777);
			*s = '/';
		}
	if (mkdir(p, 0777) < 0 && errno != EEXIST)
		die("cannot create '%s': %s", path, strerror(errno));
	free(p);
}

/*
 * Refuse a model whose weights, gradients and AdamW moments (16 bytes a parameter) alone exceed the
 * machine's memory and swap, before any record is trained, rather than fail in an allocation that
 * cannot name the record. Returns 0, or -1 with the reason in err.
 */
static int
model_fits(const struct model *m, struct tc_error *err)
{
	struct wl_options wo = {.batch = 1, .seq = 1, .vocab = opt.vocab_size, .classes = 2};
	struct workload w;
	struct sysinfo si;
	double params, need, have;

	if (workload_build(&w, m, &wo, err) < 0)
		return -1;
	params = w.params;
	need = 16 * params;
	workload_release(&w);
	if (sysinfo(&si) < 0)
		return 0;
	have = ((double)si.totalram + (double)si.totalswap) * si.mem_unit;
	if (need > have)
		return tc_error_set(err,
		                    "model: %.3g parameters need %.3g GB for weights, gradients and AdamW "
		                    "moments, more than the %.3g GB of memory here",
		                    params, need / 1e9, have / 1e9);
	return 0;
}

/*
 * Refuse a checkpoint (--init, or one to --resume) that holds a NaN or an infinity, which training
 * would report as a NaN loss as if the learning rate were to blame. Exits naming the record.
 */
static void
check_checkpoint(const char *path, const char *name, long line)
{
	struct tc_error err;

	if (tensor_file_check_finite(path, &err) < 0)
		die("%s:%ld: %s", name, line, err.msg);
}

/* The checkpoint of a record: named by a hash of the model and the options that decide the run. */
static char *
checkpoint_for(const json_t *model, const struct train_options *o)
{
	json_t *oj = train_options_json(o);
	char *m = json_dumps(model, JSON_COMPACT | JSON_SORT_KEYS),
	     *js = json_dumps(oj, JSON_COMPACT | JSON_SORT_KEYS), *s = esprintf("%s|%s", m, js), hex[33];
	unsigned char d[MD5_DIGEST];

	md5(s, strlen(s), d);
	md5_hex(hex, d);
	hex[16] = 0;
	json_decref(oj);
	free(m), free(js), free(s);
	return esprintf("%s/%s.safetensors", ckpt_dir, hex);
}

static json_t *
result_json(const struct train_result *r, const char *task)
{
	json_t *t = json_object(), *cv = json_array();

	json_object_set_new(t, "task", json_string(task));
	json_object_set_new(t, "objective", json_string(opt.objective == FB_CLS ? "cls" : "mlm"));
	json_object_set_new(t, "val_accuracy", json_number(r->val_accuracy));
	json_object_set_new(t, "test_accuracy", json_number(r->test_accuracy));
	json_object_set_new(t, "loss", json_number(r->loss));
	json_object_set_new(t, "best_loss", json_number(r->best_loss));
	json_object_set_new(t, "train_loss", json_number(r->train_loss));
	json_object_set_new(t, "steps", json_integer(r->steps));
	json_object_set_new(t, "epochs", json_integer(r->epochs_done));
	json_object_set_new(t, "tokens", json_number(r->tokens));
	json_object_set_new(t, "tokens_per_s", json_number(round(r->tokens_per_s)));
	json_object_set_new(t, "step_ms", json_number(round(r->step_ms * 100) / 100));
	json_object_set_new(t, "wall_s", json_number(round(r->wall_s * 100) / 100));
	json_object_set_new(t, "peak_rss_mb", json_number(round(r->peak_rss_mb * 10) / 10));
	json_object_set_new(t, "params", json_integer((json_int_t)r->params));
	json_object_set_new(t, "flops_per_step", json_number(r->flops_per_step));
	json_object_set_new(t, "vocab", json_integer(r->vocab));
	json_object_set_new(t, "labels", json_integer(r->labels));
	json_object_set_new(t, "batch", json_integer(opt.batch));
	json_object_set_new(t, "seq", json_integer(r->seq));
	json_object_set_new(t, "seed", json_integer((json_int_t)r->seed));
	json_object_set_new(t, "threads", json_integer(nthreads));
	json_object_set_new(t, "checkpoint", r->checkpoint ? json_string(r->checkpoint) : json_null());
	for (int i = 0; i < r->ncurve; i++)
		json_array_append_new(cv,
		                      json_pack("{s:I,s:f,s:f,s:f}", "step", (json_int_t)r->curve[i][0],
		                                "train_s", round(r->curve[i][1] * 100) / 100, "val_accuracy",
		                                r->curve[i][2], "test_accuracy", r->curve[i][3]));
	json_object_set_new(t, "curve", cv);
	if (opt.average > 0)
		json_object_set_new(t, "average",
		                    json_pack("{s:f,s:I,s:I,s:f,s:f}", "fraction", opt.average, "every",
		                              (json_int_t)opt.average_every, "snapshots",
		                              (json_int_t)r->avg_snapshots, "last_val_accuracy",
		                              r->last_val_accuracy, "last_test_accuracy",
		                              r->last_test_accuracy));
	if (r->dynaprop) {
		static const char *const cls[FB_SP_COUNT] = {"activation", "gradient", "weight_gradient"};
		json_t *sp = json_object(), *ly = json_array(), *d = json_object();
		for (int k = 0; k < FB_SP_COUNT; k++)
			json_object_set_new(sp, cls[k], json_number(round(r->sparsity[k] * 1e6) / 1e6));
		for (int l = 0; l < r->nlayers; l++)
			json_array_append_new(ly, json_pack("{s:f,s:f}", "activation",
			                                    round(r->layer_sparsity[l][0] * 1e6) / 1e6,
			                                    "gradient",
			                                    round(r->layer_sparsity[l][1] * 1e6) / 1e6));
		json_object_set_new(sp, "layers", ly);
		json_object_set_new(t, "sparsity", sp);
		json_t *ta = json_object(), *tg = json_object(), *pts = json_object();
		for (int i = 0; i < FB_PT_COUNT; i++) {
			json_object_set_new(ta, fb_point_name[i], json_number((float)r->tau[FB_SP_ACT][i]));
			json_object_set_new(tg, fb_point_name[i], json_number((float)r->tau[FB_SP_GRAD][i]));
			json_object_set_new(pts, fb_point_name[i],
			                    json_pack("{s:f,s:f}", "activation",
			                              round(r->point_sparsity[i][0] * 1e6) / 1e6, "gradient",
			                              round(r->point_sparsity[i][1] * 1e6) / 1e6));
		}
		json_object_set_new(sp, "points", pts);
		json_object_set_new(d, "tau_act", ta);
		json_object_set_new(d, "tau_grad", tg);
		json_object_set_new(d, "tau_weight", json_number((float)r->tau[FB_SP_WGRAD][0]));
		json_object_set_new(d, "target_act",
		                    opt.target_act >= 0 ? json_number(opt.target_act) : json_null());
		json_object_set_new(d, "target_grad",
		                    opt.target_grad >= 0 ? json_number(opt.target_grad) : json_null());
		json_t *at = json_object(), *gat = json_object();
		for (int i = 0; i < FB_PT_COUNT; i++) {
			if (opt.target_point[i] >= 0)
				json_object_set_new(at, fb_point_name[i], json_number(opt.target_point[i]));
			if (opt.target_grad_point[i] >= 0)
				json_object_set_new(gat, fb_point_name[i],
				                    json_number(opt.target_grad_point[i]));
		}
		json_object_set_new(d, "target_at", at);
		json_object_set_new(d, "target_grad_at", gat);
		json_object_set_new(d, "prune_start", json_number(opt.prune_start));
		json_object_set_new(t, "dynaprop", d);
	}
	return t;
}

static json_t *
bow_json(const struct bow_result *r, const char *task)
{
	json_t *t = json_object();

	json_object_set_new(t, "task", json_string(task));
	json_object_set_new(t, "baseline", json_string("bow"));
	json_object_set_new(t, "val_accuracy", json_number(r->val_accuracy));
	json_object_set_new(t, "test_accuracy", json_number(r->test_accuracy));
	json_object_set_new(t, "train_accuracy", json_number(r->train_accuracy));
	json_object_set_new(t, "l2", json_number(r->l2));
	json_object_set_new(t, "features", json_integer(r->features));
	json_object_set_new(t, "labels", json_integer(r->labels));
	json_object_set_new(t, "wall_s", json_number(round(r->wall_s * 100) / 100));
	json_object_set_new(t, "seed", json_integer((json_int_t)opt.seed));
	return t;
}

/* Train one record; returns 0, or the exit status when the run stopped early. */
static int
train_record(json_t *rec, const char *name, long line, FILE *out, long index)
{
	const json_t *mj = json_object_get(rec, "model"), *tj = json_object_get(rec, "task");
	const char *task = opt.task ? opt.task : TASK_DEFAULT;
	struct train_options o = opt;
	struct train_result r;
	struct tc_error err;
	struct model m;
	char label[64], *ck = NULL;
	json_t *res;

	if (tj) /* checked to be a string as the records were read */
		task = json_string_value(tj);
	o.task = task;
	if (baseline) {
		struct task t;
		struct bow_options bo;
		struct bow_result br;
		if (task_load(&t, task, dirs, &err) < 0)
			die("%s:%ld: %s", name, line, err.msg);
		bow_options_default(&bo);
		bo.seed = opt.seed;
		bo.threads = nthreads;
		if (bow_run(&t, &bo, &br, &err) < 0)
			die("%s:%ld: %s", name, line, err.msg);
		task_release(&t);
		json_object_set_new(rec, "train", bow_json(&br, task));
		if (jsonl_write(out, rec) < 0 || fflush(out))
			die("write error: %s", strerror(errno));
		return 0;
	}
	if (model_from_json(&m, mj, NULL, &err) < 0)
		die("%s:%ld: %s", name, line, err.msg);
	if (ckpt_file)
		o.checkpoint = ckpt_file;
	else if (ckpt_dir)
		o.checkpoint = ck = checkpoint_for(mj, &o);
	if (json_is_string(json_object_get(rec, "id")))
		snprintf(label, sizeof label, "%s", json_string_value(json_object_get(rec, "id")));
	else
		snprintf(label, sizeof label, "record %ld", index + 1);
	o.label = label;
	if (o.init_path)
		check_checkpoint(o.init_path, name, line);
	if (o.resume && o.checkpoint && access(o.checkpoint, F_OK) == 0)
		check_checkpoint(o.checkpoint, name, line);
	if (train_run(&m, &o, &r, &err) < 0)
		die("%s:%ld: %s", name, line, err.msg);
	if (r.stopped) {
		warn("%s: %s at step %ld%s%s%s", label, stop_signal ? strsignal(stop_signal) : "paused",
		     r.steps, r.checkpoint ? "; checkpoint " : "", r.checkpoint ? r.checkpoint : "",
		     r.checkpoint ? "; run again with --resume to continue" : "");
		train_result_release(&r);
		free(ck);
		return 1;
	}
	if (r.resumed_at && !quiet)
		warn("%s: resumed at step %ld", label, r.resumed_at);
	res = result_json(&r, task);
	json_object_set_new(rec, "train", res);
	if (jsonl_write(out, rec) < 0 || fflush(out))
		die("write error: %s", strerror(errno));
	train_result_release(&r);
	free(ck);
	return 0;
}

/* --target-at and --target-grad-at: POINT=S into t[POINT] */
static void
point_target(const char *arg, const char *name, double t[FB_PT_COUNT])
{
	const char *eq = strchr(arg, '=');
	int i = 0;

	while (eq && i < FB_PT_COUNT &&
	       (strlen(fb_point_name[i]) != (size_t)(eq - arg) ||
	        strncmp(arg, fb_point_name[i], (size_t)(eq - arg))))
		i++;
	if (!eq || i == FB_PT_COUNT)
		usage_die("option '%s': expected POINT=S, POINT one of qkv, score, prob, ctx, ff, out; got "
		          "'%s'",
		          name, arg);
	t[i] = eparse_double(eq + 1, name, 0, 0.999999);
}

int
main(int argc, char **argv)
{
	enum {
		OPT_DATA = 256,
		OPT_OBJECTIVE,
		OPT_STEPS,
		OPT_EPOCHS,
		OPT_TOKENS,
		OPT_TIME,
		OPT_SEQ,
		OPT_BUCKET,
		OPT_LR,
		OPT_WARMUP,
		OPT_WD,
		OPT_MAXNORM,
		OPT_DROPOUT,
		OPT_SMOOTHING,
		OPT_AVERAGE,
		OPT_AVERAGE_EVERY,
		OPT_VOCAB_SIZE,
		OPT_VOCAB,
		OPT_INIT,
		OPT_CKPT,
		OPT_CKPT_DIR,
		OPT_NO_CKPT,
		OPT_CKPT_EVERY,
		OPT_RESUME,
		OPT_PAUSE,
		OPT_EVAL_EVERY,
		OPT_BASELINE,
		OPT_PROGRESS,
		OPT_PROGRESS_EVERY,
		OPT_SEED,
		OPT_THREADS,
		OPT_DYNAPROP,
		OPT_TAU_ACT,
		OPT_TAU_GRAD,
		OPT_TAU_WEIGHT,
		OPT_TARGET_ACT,
		OPT_TARGET_GRAD,
		OPT_TARGET_AT,
		OPT_TARGET_GRAD_AT,
		OPT_PRUNE_START,
		OPT_VERSION
	};
	static const struct option longopts[] = {
	    {"task", required_argument, NULL, 't'},
	    {"data", required_argument, NULL, OPT_DATA},
	    {"objective", required_argument, NULL, OPT_OBJECTIVE},
	    {"steps", required_argument, NULL, OPT_STEPS},
	    {"epochs", required_argument, NULL, OPT_EPOCHS},
	    {"tokens", required_argument, NULL, OPT_TOKENS},
	    {"time", required_argument, NULL, OPT_TIME},
	    {"batch", required_argument, NULL, 'b'},
	    {"seq", required_argument, NULL, OPT_SEQ},
	    {"bucket", required_argument, NULL, OPT_BUCKET},
	    {"lr", required_argument, NULL, OPT_LR},
	    {"warmup", required_argument, NULL, OPT_WARMUP},
	    {"weight-decay", required_argument, NULL, OPT_WD},
	    {"max-norm", required_argument, NULL, OPT_MAXNORM},
	    {"dropout", required_argument, NULL, OPT_DROPOUT},
	    {"label-smoothing", required_argument, NULL, OPT_SMOOTHING},
	    {"average", required_argument, NULL, OPT_AVERAGE},
	    {"average-every", required_argument, NULL, OPT_AVERAGE_EVERY},
	    {"vocab-size", required_argument, NULL, OPT_VOCAB_SIZE},
	    {"vocab", required_argument, NULL, OPT_VOCAB},
	    {"init", required_argument, NULL, OPT_INIT},
	    {"checkpoint", required_argument, NULL, OPT_CKPT},
	    {"checkpoint-dir", required_argument, NULL, OPT_CKPT_DIR},
	    {"no-checkpoint", no_argument, NULL, OPT_NO_CKPT},
	    {"checkpoint-every", required_argument, NULL, OPT_CKPT_EVERY},
	    {"resume", no_argument, NULL, OPT_RESUME},
	    {"pause-after", required_argument, NULL, OPT_PAUSE},
	    {"eval-every", required_argument, NULL, OPT_EVAL_EVERY},
	    {"baseline", required_argument, NULL, OPT_BASELINE},
	    {"progress", required_argument, NULL, OPT_PROGRESS},
	    {"progress-every", required_argument, NULL, OPT_PROGRESS_EVERY},
	    {"quiet", no_argument, NULL, 'q'},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"dynaprop", no_argument, NULL, OPT_DYNAPROP},
	    {"tau-act", required_argument, NULL, OPT_TAU_ACT},
	    {"tau-grad", required_argument, NULL, OPT_TAU_GRAD},
	    {"tau-weight", required_argument, NULL, OPT_TAU_WEIGHT},
	    {"target-act", required_argument, NULL, OPT_TARGET_ACT},
	    {"target-grad", required_argument, NULL, OPT_TARGET_GRAD},
	    {"target-at", required_argument, NULL, OPT_TARGET_AT},
	    {"target-grad-at", required_argument, NULL, OPT_TARGET_GRAD_AT},
	    {"prune-start", required_argument, NULL, OPT_PRUNE_START},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0}};
	struct sigaction sa = {0};
	struct afile af;
	struct tc_error err;
	char *env, *cache = NULL;
	long nrec = 0;
	int c, no_ckpt = 0, status = 0;

	tc_setprogname(argv[0]);
	nn_blas_setup(argv);
	train_options_default(&opt);
	opt.task = NULL;
	while ((c = getopt_long(argc, argv, "t:b:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			opt.task = optarg;
			break;
		case OPT_DATA:
			if (ndirs == 4)
				usage_die("option '--data': at most 4 directories");
			dirs[ndirs++] = optarg;
			break;
		case OPT_OBJECTIVE:
			if (strcmp(optarg, "cls") && strcmp(optarg, "mlm"))
				usage_die("option '--objective': expected cls or mlm, got '%s'", optarg);
			opt.objective = strcmp(optarg, "mlm") ? FB_CLS : FB_MLM;
			break;
		case OPT_STEPS:
			opt.steps = eparse_long(optarg, "--steps", 1, LONG_MAX / 2);
			break;
		case OPT_EPOCHS:
			opt.epochs = eparse_double(optarg, "--epochs", 1e-9, 1e9);
			break;
		case OPT_TOKENS:
			opt.tokens = eparse_double(optarg, "--tokens", 1, 1e18);
			break;
		case OPT_TIME:
			opt.time_s = parse_duration(optarg, "--time");
			break;
		case 'b':
			opt.batch = (int)eparse_long(optarg, "--batch", 1, 65536);
			break;
		case OPT_SEQ:
			opt.seq = (int)eparse_long(optarg, "--seq", 2, 65536);
			break;
		case OPT_BUCKET:
			opt.bucket = (int)eparse_long(optarg, "--bucket", 1, 1 << 20);
			break;
		case OPT_LR:
			opt.lr = eparse_double(optarg, "--lr", 0, 10);
			break;
		case OPT_WARMUP:
			opt.warmup = eparse_double(optarg, "--warmup", 0, 1);
			break;
		case OPT_WD:
			opt.weight_decay = eparse_double(optarg, "--weight-decay", 0, 1);
			break;
		case OPT_MAXNORM:
			opt.max_norm = eparse_double(optarg, "--max-norm", 1e-12, 1e12);
			break;
		case OPT_DROPOUT:
			opt.dropout = (float)eparse_double(optarg, "--dropout", 0, 0.99);
			break;
		case OPT_SMOOTHING:
			opt.label_smoothing = (float)eparse_double(optarg, "--label-smoothing", 0, 0.99);
			break;
		case OPT_AVERAGE:
			opt.average = eparse_double(optarg, "--average", 0, 1);
			break;
		case OPT_AVERAGE_EVERY:
			opt.average_every = eparse_long(optarg, "--average-every", 1, LONG_MAX / 2);
			break;
		case OPT_VOCAB_SIZE:
			opt.vocab_size = (int)eparse_long(optarg, "--vocab-size", 6, 1 << 24);
			break;
		case OPT_VOCAB:
			opt.vocab_path = optarg;
			break;
		case OPT_INIT:
			opt.init_path = optarg;
			break;
		case OPT_CKPT:
			ckpt_file = optarg;
			break;
		case OPT_CKPT_DIR:
			ckpt_dir = optarg;
			break;
		case OPT_NO_CKPT:
			no_ckpt = 1;
			break;
		case OPT_CKPT_EVERY:
			opt.checkpoint_every = parse_duration(optarg, "--checkpoint-every");
			break;
		case OPT_RESUME:
			opt.resume = 1;
			break;
		case OPT_PAUSE:
			opt.pause_after = eparse_long(optarg, "--pause-after", 1, LONG_MAX / 2);
			break;
		case OPT_EVAL_EVERY:
			opt.eval_every = eparse_long(optarg, "--eval-every", 1, LONG_MAX / 2);
			break;
		case OPT_BASELINE:
			if (strcmp(optarg, "bow"))
				usage_die("option '--baseline': expected bow, got '%s'", optarg);
			baseline = optarg;
			break;
		case OPT_PROGRESS:
			if (!strcmp(optarg, "bar"))
				opt.progress = TRAIN_PROGRESS_BAR;
			else if (!strcmp(optarg, "json"))
				opt.progress = TRAIN_PROGRESS_JSON;
			else if (!strcmp(optarg, "none"))
				opt.progress = TRAIN_PROGRESS_NONE;
			else
				usage_die("option '--progress': expected bar, json or none, got '%s'",
				          optarg);
			progress_set = 1;
			break;
		case OPT_PROGRESS_EVERY:
			opt.progress_every = parse_duration(optarg, "--progress-every");
			break;
		case 'q':
			quiet = 1;
			break;
		case OPT_SEED:
			opt.seed = (uint64_t)eparse_long(optarg, "--seed", 0, LONG_MAX);
			break;
		case OPT_THREADS:
			nthreads = (int)eparse_long(optarg, "--threads", 1, 256);
			break;
		case OPT_DYNAPROP:
			opt.dynaprop = 1;
			break;
		case OPT_TAU_ACT:
			opt.tau_act = eparse_double(optarg, "--tau-act", 0, 1e30);
			opt.dynaprop = 1;
			break;
		case OPT_TAU_GRAD:
			opt.tau_grad = eparse_double(optarg, "--tau-grad", 0, 1e30);
			opt.dynaprop = 1;
			break;
		case OPT_TAU_WEIGHT:
			opt.tau_weight = eparse_double(optarg, "--tau-weight", 0, 1e30);
			opt.dynaprop = 1;
			break;
		case OPT_TARGET_AT:
			point_target(optarg, "--target-at", opt.target_point);
			opt.dynaprop = 1;
			break;
		case OPT_TARGET_GRAD_AT:
			point_target(optarg, "--target-grad-at", opt.target_grad_point);
			opt.dynaprop = 1;
			break;
		case OPT_TARGET_ACT:
			opt.target_act = eparse_double(optarg, "--target-act", 0, 0.999999);
			opt.dynaprop = 1;
			break;
		case OPT_TARGET_GRAD:
			opt.target_grad = eparse_double(optarg, "--target-grad", 0, 0.999999);
			opt.dynaprop = 1;
			break;
		case OPT_PRUNE_START:
			opt.prune_start = eparse_double(optarg, "--prune-start", 0, 0.999999);
			opt.dynaprop = 1;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("tc-train (transcode) %s\n", TC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	for (int i = 0; i < FB_PT_COUNT; i++) { /* the points not named are not pruned */
		if (opt.target_point[i] >= 0 && opt.tau_act >= 0)
			usage_die("--tau-act and --target-at exclude each other");
		if (opt.target_grad_point[i] >= 0 && opt.tau_grad >= 0)
			usage_die("--tau-grad and --target-grad-at exclude each other");
		if (opt.target_point[i] >= 0 && opt.target_act < 0)
			opt.target_act = 0;
		if (opt.target_grad_point[i] >= 0 && opt.target_grad < 0)
			opt.target_grad = 0;
	}
	if (opt.tau_act >= 0 && opt.target_act >= 0)
		usage_die("--tau-act and --target-act exclude each other");
	if (opt.tau_grad >= 0 && opt.target_grad >= 0)
		usage_die("--tau-grad and --target-grad exclude each other");
	if (opt.dynaprop && opt.tau_act < 0 && opt.tau_grad < 0 && opt.tau_weight < 0 && opt.target_act < 0 &&
	    opt.target_grad < 0) {
		/* the operating point of tc-train(1)'s DYNAPROP: most at the large points that cost
		 * least (Q, K, V and the FF layers), none at the raw scores; weight gradients, which
		 * feed no product, keep every nonzero */
		static const double at[FB_PT_COUNT] = {
		    [FB_PT_QKV] = 0.7,  [FB_PT_SCORE] = 0, [FB_PT_PROB] = 0.5,
		    [FB_PT_CTX] = 0.25, [FB_PT_FF] = 0.7,  [FB_PT_OUT] = 0.25};
		opt.target_act = 0, opt.target_grad = 0.9, opt.tau_weight = 0;
		memcpy(opt.target_point, at, sizeof at);
	}
	if (opt.dynaprop && baseline)
		usage_die("--baseline bow trains no transformer to prune");
	if (ckpt_file && ckpt_dir)
		usage_die("--checkpoint and --checkpoint-dir exclude each other");
	if (no_ckpt && (ckpt_file || ckpt_dir || opt.resume || opt.pause_after))
		usage_die(
		    "--no-checkpoint excludes --checkpoint, --checkpoint-dir, --resume and --pause-after");
	if (opt.vocab_path && opt.init_path)
		usage_die("--init brings its vocabulary; drop --vocab");
	if (!ckpt_file && !ckpt_dir && !no_ckpt && !baseline) {
		if ((env = getenv("XDG_CACHE_HOME")) && *env)
			cache = esprintf("%s/transcode/train", env);
		else if ((env = getenv("HOME")) && *env)
			cache = esprintf("%s/.cache/transcode/train", env);
		ckpt_dir = cache;
	}
	if (ckpt_dir)
		mkdirs(ckpt_dir);
	if (nthreads)
		omp_set_num_threads(nthreads);
	nthreads = omp_get_max_threads();
	if (quiet)
		opt.progress = TRAIN_PROGRESS_NONE;
	else if (!progress_set)
		opt.progress = isatty(2) ? TRAIN_PROGRESS_BAR : TRAIN_PROGRESS_JSON;

	ndirs = task_default_dirs(dirs, ndirs);
	opt.data_dirs = dirs;
	opt.stop = &stop_flag;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* read and check every record before training any, so that a bad one costs nothing; the list
	 * is static so that it stays reachable when a later record ends the run (die) */
	static struct pending {
		json_t *rec;
		char *name;
		long line;
	} * recs;
	static size_t cap;
	for (int i = optind; i < argc || (i == optind && optind == argc); i++) {
		const char *path = optind == argc ? "-" : argv[i];
		struct jsonl_reader r;
		json_t *rec;
		int rc;
		if (jsonl_open(&r, path, &err) < 0)
			die("%s", err.msg);
		while ((rc = jsonl_read(&r, &rec, &err)) > 0) {
			const json_t *mj = json_object_get(rec, "model"), *tj = json_object_get(rec, "task");
			struct model m;
			if (tj && !json_is_string(tj))
				die("%s:%ld: field 'task': expected a string, got %s", r.name, r.line,
				    json_kind(tj));
			if (!baseline && !mj)
				die("%s:%ld: missing field 'model'", r.name, r.line);
			if (!baseline &&
			    (model_from_json(&m, mj, NULL, &err) < 0 || model_fits(&m, &err) < 0))
				die("%s:%ld: %s", r.name, r.line, err.msg);
			if (ckpt_file && nrec > 0)
				die("%s:%ld: --checkpoint names the file of one record; use --checkpoint-dir "
				    "for more",
				    r.name, r.line);
			recs = egrow(recs, &cap, (size_t)nrec + 1, sizeof *recs);
			recs[nrec].rec = rec;
			recs[nrec].name = estrdup(r.name);
			recs[nrec].line = r.line;
			nrec++;
		}
		if (rc < 0)
			die("%s", err.msg);
		jsonl_close(&r);
	}
	if (nrec == 0)
		die("%s: no records", optind == argc ? "<stdin>" : argv[argc - 1]);

	if (afile_open(&af, out_path, &err) < 0)
		die("%s", err.msg);
	for (long i = 0; i < nrec && !status; i++)
		status = train_record(recs[i].rec, recs[i].name, recs[i].line, af.f, i);
	for (long i = 0; i < nrec; i++) {
		json_decref(recs[i].rec);
		free(recs[i].name);
	}
	free(recs);
	if (status) {
		afile_abort(&af);
		return status;
	}
	if (afile_commit(&af, &err) < 0)
		die("%s", err.msg);
	close_stdout();
	free(cache);
	return 0;
}
