/*
 * tc-prune: run-time activation pruning, as DynaTran (AccelTran) does it, over tensor streams.
 *
 *   tc-prune apply      read a tensor stream (tc-tensor(5)), zero the small elements of its floating-point
 *                       tensors (below a threshold, to a target sparsity, or all but the top k of each row),
 *                       write the stream with prune.* metadata, and report the sparsity reached
 *   tc-prune sweep      evaluate a trained checkpoint pruned at a series of thresholds (DynaTran) and of
 *                       top-k: one record per point, with accuracy and activation sparsity; a plot
 *   tc-prune calibrate  the thresholds that give target sparsities for a checkpoint, and the sparsity
 *                       measured at them: for --checkpoint, or added as "prune" to records from tc-train
 *
 * Frames go through one at a time and are pruned in place in the frame's own buffer, so a stream of any
 * length runs in the memory of its largest frame. An error anywhere fails the whole run and leaves neither
 * the -o file nor the report behind: a stream is only known to be intact once it has been read to its end.
 */
#include <errno.h>
#include <float.h>
#include <fnmatch.h>
#include <math.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "jsonl.h"
#include "nn.h"
#include "plot.h"
#include "prune.h"
#include "task.h"
#include "train.h"
#include "tensor.h"
#include "tstream.h"
#include "util.h"

/* Totals over a frame or a run, for the lines on stderr. */
struct tally {
	size_t pruned, passed;   /* tensors */
	size_t n, before, after; /* elements, and zeros before and after */
};

static struct prune_spec spec;
static const char *rule_name; /* "tau", "target", "top-k", as in the report and prune.rule */
static char **only;           /* --only globs */
static size_t nonly, onlycap;
static const char *out_path = "-", *report_path;
static int quiet;

/* The outputs of a run, discarded together when it fails. */
static struct tstream *out;
static struct afile report;
static int have_report;

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tc-prune apply (--tau T | --target S | --top-k K) [--only GLOB]... [--report FILE]\n"
	    "                      [-q] [-o FILE] [FILE]\n"
	    "       tc-prune sweep --checkpoint FILE [--taus LIST] [--top-k LIST] [--plot FILE] [COMMON]\n"
	    "       tc-prune calibrate [--checkpoint FILE] [--target-act S] [--target-grad S] [--batches N]\n"
	    "                          [COMMON] [FILE...]\n"
	    "Prune activations as DynaTran does: in tensor streams, or in a trained model.\n"
	    "\n"
	    "apply: prune every floating-point tensor of every frame of FILE (- or none: stdin)\n"
	    "      --tau T          DynaTran: zero every element with |x| <= T (T >= 0)\n"
	    "      --target S       per tensor, the least threshold that zeroes a fraction S in [0, 1)\n"
	    "      --top-k K        keep the K largest magnitudes of each row (last dimension)\n"
	    "      --only GLOB      prune only the tensors whose names match GLOB (repeatable)\n"
	    "      --report FILE    one JSON Lines record per frame and pruned tensor\n"
	    "  -q, --quiet          no sparsity lines on stderr\n"
	    "  -o, --output FILE    write the stream to FILE atomically instead of stdout\n"
	    "\n"
	    "sweep: evaluate a tc-train checkpoint pruned at each threshold and each top-k; a record each\n"
	    "      --checkpoint FILE  a classifier's checkpoint from tc-train\n"
	    "      --taus LIST      thresholds, comma-separated (default 0,0.01,0.02,0.05,0.1,0.15,0.2,0.3)\n"
	    "      --top-k LIST     k of the top-k baseline on attention probabilities, comma-separated, or\n"
	    "                       none (default 64,32,16,8,4,2,1)\n"
	    "      --plot FILE      test accuracy against activation sparsity, both rules (.png, .svg)\n"
	    "\n"
	    "calibrate: the thresholds that give target sparsities, and the sparsity they give, as\n"
	    "\"prune\": for --checkpoint, or added to each record with train.checkpoint (from tc-train)\n"
	    "      --target-act S   activation sparsity in [0, 1) (default 0.5)\n"
	    "      --target-grad S  gradient sparsity in [0, 1) (default 0.9)\n"
	    "      --batches N      training batches measured (default 8)\n"
	    "\n"
	    "COMMON: --task SPEC (default: the checkpoint's), --data DIR, --batch B (default 32),\n"
	    "        --threads N, -o FILE, -q\n"
	    "  -h, --help           this help\n"
	    "      --version        the version\n");
}

/* Discard every output of the run and exit 1 with "prog: <message>". */
static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char msg[TC_ERROR_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	tstream_abort(out);
	if (have_report)
		afile_abort(&report);
	die("%s", msg);
}

/* x as the report prints it: the fewest digits that read back exactly. Valid until the next call. */
static const char *
number_text(double x)
{
	static struct jsonl_out w;
	static char buf[64];

	w.len = 0;
	w.depth = 0;
	w.err = 0;
	jw_number(&w, NULL, x);
	snprintf(buf, sizeof buf, "%.*s", (int)w.len, w.p);
	return buf;
}

static double
sparsity(size_t zeros, size_t n)
{
	return n ? (double)zeros / (double)n : 0;
}

static int
selected(const struct tensor *t)
{
	if (!prune_dtype_ok(t->dtype))
		return 0;
	if (nonly == 0)
		return 1;
	for (size_t i = 0; i < nonly; i++)
		if (fnmatch(only[i], t->name, 0) == 0)
			return 1;
	return 0;
}

static void
set_meta(struct tensor_set *set, const char *key, const char *value)
{
	struct tc_error err;

	if (tensor_set_meta(set, key, value, &err) < 0)
		fail("%s", err.msg);
}

/* Metadata of a frame before pruning: the keys of an earlier tc-prune go, the rule comes in. */
static void
frame_meta(struct tensor_set *set)
{
	for (size_t i = 0; i < set->nmeta;) {
		if (strncmp(set->meta_key[i], "prune.", 6) == 0) {
			char *key = estrdup(set->meta_key[i]);
			set_meta(set, key, NULL);
			free(key);
		} else {
			i++;
		}
	}
	set_meta(set, "format", TENSOR_FORMAT);
	set_meta(set, "prune.rule", rule_name);
	if (spec.rule == PRUNE_TAU)
		set_meta(set, "prune.tau", number_text(spec.tau));
	else if (spec.rule == PRUNE_TARGET)
		set_meta(set, "prune.target", number_text(spec.target));
	else
		set_meta(set, "prune.k", number_text((double)spec.k));
}

static void
tensor_meta(struct tensor_set *set, const char *name, double tau, const struct prune_count *c)
{
	char *key;

	if (spec.rule != PRUNE_TOPK) {
		key = esprintf("prune.threshold.%s", name);
		set_meta(set, key, number_text(tau));
		free(key);
	}
	key = esprintf("prune.sparsity.%s", name);
	set_meta(set, key, number_text(sparsity(c->zeros_after, c->n)));
	free(key);
}

static void
report_tensor(size_t frame, const char *name, double tau, const struct prune_count *c)
{
	static struct jsonl_out w;

	w.len = 0;
	w.depth = 0;
	w.err = 0;
	jw_begin(&w, NULL);
	jw_int(&w, "frame", (long long)frame);
	jw_string(&w, "tensor", name);
	jw_string(&w, "rule", rule_name);
	if (spec.rule != PRUNE_TOPK)
		jw_number(&w, "tau", tau);
	if (spec.rule == PRUNE_TARGET)
		jw_number(&w, "target", spec.target);
	if (spec.rule == PRUNE_TOPK)
		jw_int(&w, "k", (long long)spec.k);
	jw_int(&w, "elements", (long long)c->n);
	jw_int(&w, "zeros_before", (long long)c->zeros_before);
	jw_int(&w, "zeros_after", (long long)c->zeros_after);
	jw_number(&w, "sparsity", sparsity(c->zeros_after, c->n));
	jw_end(&w);
	if (w.err || fwrite(w.p, 1, w.len, report.f) != w.len || putc('\n', report.f) == EOF)
		fail("write error on '%s': %s", report_path, strerror(errno));
}

/* Prune frame number i of the stream what in place, adding its metadata and its share to run. */
static void
prune_frame(struct tensor_set *set, const char *what, size_t i, struct tally *run)
{
	struct tally f = {0};
	struct prune_count c;
	struct tc_error err;
	double tau;

	frame_meta(set);
	for (size_t k = 0; k < set->n; k++) {
		struct tensor *t = &set->t[k];
		if (!selected(t)) {
			f.passed++;
			continue;
		}
		if (prune_tensor(t, &tau, &c, &spec, &err) < 0)
			fail("%s: frame %zu: %s", what, i, err.msg);
		tensor_meta(set, t->name, tau, &c);
		if (have_report)
			report_tensor(i, t->name, tau, &c);
		f.pruned++;
		f.n += c.n;
		f.before += c.zeros_before;
		f.after += c.zeros_after;
	}
	if (!quiet)
		warn("%s: frame %zu: %zu tensors pruned, %zu passed: %zu of %zu zero (%.4f), %zu before",
		     what, i, f.pruned, f.passed, f.after, f.n, sparsity(f.after, f.n), f.before);
	run->pruned += f.pruned;
	run->passed += f.passed;
	run->n += f.n;
	run->before += f.before;
	run->after += f.after;
}

/* tc-prune apply on path: the stream in, pruned, to out_path, and the report. */
static void
apply(const char *path)
{
	struct tally run = {0};
	struct tensor_set set;
	struct tc_error err;
	struct tstream *in;
	const char *what;
	int rc;

	if (!(in = tstream_open_read(path, &err)))
		die("%s", err.msg);
	what = tstream_name(in);
	if (!(out = tstream_open_write(out_path, -1, &err)))
		die("%s", err.msg);
	if (report_path) {
		if (afile_open(&report, report_path, &err) < 0)
			fail("%s", err.msg);
		have_report = 1;
	}
	tensor_set_init(&set);
	while ((rc = tstream_read(in, &set, &err)) == 1) {
		prune_frame(&set, what, tstream_frames(in) - 1, &run);
		if (tstream_write(out, &set, &err) < 0)
			fail("%s", err.msg);
	}
	if (rc < 0)
		fail("%s", err.msg);
	if (tstream_frames(in) == 0)
		fail("%s: empty stream (no frames)", what);
	if (have_report && afile_commit(&report, &err) < 0) {
		have_report = 0;
		fail("%s", err.msg);
	}
	have_report = 0;
	rc = tstream_close(out, &err);
	out = NULL;
	if (rc < 0)
		die("%s", err.msg);
	if (!quiet)
		warn("%s: %zu frames, %zu tensors pruned, %zu passed: %zu of %zu zero (%.4f), %zu before",
		     what, tstream_frames(in), run.pruned, run.passed, run.after, run.n,
		     sparsity(run.after, run.n), run.before);
	if (!quiet && nonly && run.pruned == 0)
		warn("warning: no floating-point tensor matched --only");
	tensor_set_release(&set);
	tstream_close(in, NULL);
}

static int
apply_main(int argc, char **argv)
{
	enum { OPT_TAU = 256, OPT_TARGET, OPT_TOPK, OPT_ONLY, OPT_REPORT, OPT_VERSION };
	static const struct option longopts[] = {
	    {"tau", required_argument, NULL, OPT_TAU},       {"target", required_argument, NULL, OPT_TARGET},
	    {"top-k", required_argument, NULL, OPT_TOPK},    {"only", required_argument, NULL, OPT_ONLY},
	    {"report", required_argument, NULL, OPT_REPORT}, {"quiet", no_argument, NULL, 'q'},
	    {"output", required_argument, NULL, 'o'},        {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},     {NULL, 0, NULL, 0}};
	unsigned rules = 0;
	int c;

	while ((c = getopt_long(argc, argv, "qo:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TAU:
			if (parse_double(optarg, 0, DBL_MAX, &spec.tau) < 0)
				usage_die("option '--tau': expected a number >= 0, got '%s'", optarg);
			spec.rule = PRUNE_TAU;
			rules |= 1;
			break;
		case OPT_TARGET:
			if (parse_double(optarg, 0, 1, &spec.target) < 0 || spec.target >= 1)
				usage_die("option '--target': expected a number in [0, 1), got '%s'", optarg);
			spec.rule = PRUNE_TARGET;
			rules |= 2;
			break;
		case OPT_TOPK:
			spec.k = (size_t)eparse_long(optarg, "--top-k", 1, LONG_MAX);
			spec.rule = PRUNE_TOPK;
			rules |= 4;
			break;
		case OPT_ONLY:
			only = egrow(only, &onlycap, nonly + 1, sizeof *only);
			only[nonly++] = optarg;
			break;
		case OPT_REPORT:
			report_path = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("tc-prune (transcode) %s\n", TC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (rules == 0)
		usage_die("apply: expected one of --tau, --target, --top-k");
	if (rules != 1 && rules != 2 && rules != 4)
		usage_die("apply: --tau, --target and --top-k exclude each other");
	if (argc - optind > 1)
		usage_die("apply: expected at most one FILE, got %d", argc - optind);
	if (strcmp(out_path, "-") == 0 && isatty(1))
		usage_die("apply: will not write a tensor stream to a terminal (use -o FILE or a pipe)");
	rule_name = spec.rule == PRUNE_TAU ? "tau" : spec.rule == PRUNE_TARGET ? "target" : "top-k";
	apply(optind < argc ? argv[optind] : "-");
	close_stdout();
	free(only);
	return 0;
}

/* ---- sweep and calibrate: a trained model ---- */

static const char *data_dirs[8];
static int ndata;

/* "0,0.1,0.2" into a growing array; -1 on a bad list */
static int
parse_list(const char *s, double **v, size_t *n, size_t *cap, double lo, double hi)
{
	char *copy = estrdup(s), *save = NULL;

	*n = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		double x;
		if (parse_double(t, lo, hi, &x) < 0) {
			free(copy);
			return -1;
		}
		*v = egrow(*v, cap, *n + 1, sizeof **v);
		(*v)[(*n)++] = x;
	}
	free(copy);
	return *n > 0 ? 0 : -1;
}

/* The options sweep and calibrate share (common_option takes them), and the end of the table. */
#define COMMON_LONGOPTS                                                                                      \
	{"task", required_argument, NULL, 't'}, {"data", required_argument, NULL, 'D'},                      \
	    {"batch", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 'T'},              \
	    {"output", required_argument, NULL, 'o'}, {"quiet", no_argument, NULL, 'q'},                     \
	    {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, OPT_VERSION},                   \
	{                                                                                                    \
		NULL, 0, NULL, 0                                                                             \
	}

/* Options of sweep and calibrate; returns the option's code when it is not one of them. */
static int
common_option(int c, struct train_options *o)
{
	switch (c) {
	case 't':
		o->task = optarg;
		return 0;
	case 'D':
		if (ndata == 4)
			usage_die("option '--data': at most 4 directories");
		data_dirs[ndata++] = optarg;
		return 0;
	case 'b':
		o->batch = (int)eparse_long(optarg, "--batch", 1, 4096);
		return 0;
	case 'T':
		omp_set_num_threads((int)eparse_long(optarg, "--threads", 1, 256));
		return 0;
	case 'o':
		out_path = optarg;
		return 0;
	case 'q':
		quiet = 1;
		return 0;
	}
	return c;
}

/*
 * Refuse a checkpoint that holds a NaN or an infinity, which evaluation would turn into accuracies
 * and thresholds that look valid; where ("file:line: " or "") places the message.
 */
static void
check_checkpoint(const char *path, const char *where)
{
	struct tc_error err;

	if (tensor_file_check_finite(path, &err) < 0)
		die("%s%s", where, err.msg);
}

static void
write_point(struct afile *af, const char *ckpt, const struct train_prune_point *pt)
{
	struct jsonl_out w = {0};

	jw_begin(&w, NULL);
	jw_string(&w, "checkpoint", ckpt);
	jw_begin(&w, "prune");
	if (pt->topk > 0) {
		jw_string(&w, "rule", "top-k");
		jw_int(&w, "k", pt->topk);
	} else {
		jw_string(&w, "rule", "tau");
		jw_number(&w, "tau", pt->tau);
	}
	jw_number(&w, "val_accuracy", pt->val_accuracy);
	jw_number(&w, "test_accuracy", pt->test_accuracy);
	jw_begin(&w, "sparsity");
	jw_number(&w, "activation", round(pt->sparsity * 1e6) / 1e6);
	jw_end(&w);
	jw_end(&w);
	jw_end(&w);
	if (w.err || fwrite(w.p, 1, w.len, af->f) != w.len || fputc('\n', af->f) == EOF) {
		afile_abort(af);
		die("write error: %s", strerror(errno));
	}
	free(w.p);
}

static void
plot_sweep(const char *path, const struct train_prune_point *pts, size_t n)
{
	struct tc_error err;
	struct plot p;
	FILE *gp;

	if (!(gp = plot_open(&p, path, 900, 600, &err)))
		die("%s", err.msg);
	fputs("set grid\nset key bottom left\nset title 'Pruning at inference: DynaTran against top-k'\n"
	      "set xlabel 'activation sparsity'\nset ylabel 'test accuracy'\n",
	      gp);
	for (int m = 0; m < 2; m++) {
		fprintf(gp, "$%s << EOD\n", m ? "topk" : "dynatran");
		for (size_t i = 0; i < n; i++)
			if ((pts[i].topk > 0) == m)
				fprintf(gp, "%.6g %.6g\n", pts[i].sparsity, pts[i].test_accuracy);
		fputs("EOD\n", gp);
	}
	fputs("plot $dynatran using 1:2 with linespoints pt 7 lc rgb '#1f77b4' title 'DynaTran (threshold)', "
	      "\\\n"
	      "     $topk using 1:2 with linespoints pt 5 lc rgb '#d62728' title 'top-k (attention "
	      "probabilities)'\n",
	      gp);
	if (plot_close(&p, &err) < 0)
		die("%s", err.msg);
}

static int
sweep_main(int argc, char **argv)
{
	enum { OPT_CKPT = 256, OPT_TAUS, OPT_TOPK, OPT_PLOT, OPT_VERSION };
	static const struct option longopts[] = {{"checkpoint", required_argument, NULL, OPT_CKPT},
	                                         {"taus", required_argument, NULL, OPT_TAUS},
	                                         {"top-k", required_argument, NULL, OPT_TOPK},
	                                         {"plot", required_argument, NULL, OPT_PLOT},
	                                         COMMON_LONGOPTS};
	static const double taus0[] = {0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3};
	static const double ks0[] = {64, 32, 16, 8, 4, 2, 1};
	const char *ckpt = NULL, *plot_path = NULL;
	double *taus = NULL, *ks = NULL;
	size_t ntau = 0, nk = 0, ctau = 0, ck = 0;
	struct train_prune_point *pts;
	struct train_options o;
	struct tc_error err;
	struct afile af;
	int c, given_tau = 0, given_k = 0;

	train_options_default(&o);
	while ((c = getopt_long(argc, argv, "qo:h", longopts, NULL)) != -1) {
		if (common_option(c, &o) == 0)
			continue;
		switch (c) {
		case OPT_CKPT:
			ckpt = optarg;
			break;
		case OPT_TAUS:
			if (parse_list(optarg, &taus, &ntau, &ctau, 0, DBL_MAX) < 0)
				usage_die(
				    "option '--taus': expected numbers >= 0 separated by commas, got '%s'",
				    optarg);
			given_tau = 1;
			break;
		case OPT_TOPK:
			if (strcmp(optarg, "none") == 0)
				nk = 0;
			else if (parse_list(optarg, &ks, &nk, &ck, 1, 1e6) < 0)
				usage_die(
				    "option '--top-k': expected whole numbers >= 1 separated by commas, or "
				    "none, got '%s'",
				    optarg);
			given_k = 1;
			break;
		case OPT_PLOT:
			plot_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("tc-prune (transcode) %s\n", TC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!ckpt)
		usage_die("sweep: expected --checkpoint FILE");
	if (optind < argc)
		usage_die("sweep: unexpected argument '%s'", argv[optind]);
	if (plot_path && !strstr(plot_path, ".png") && !strstr(plot_path, ".svg"))
		usage_die("option '--plot': expected a .png or .svg file name, got '%s'", plot_path);
	if (!given_tau) {
		ntau = sizeof taus0 / sizeof *taus0;
		taus = emalloc(sizeof taus0);
		memcpy(taus, taus0, sizeof taus0);
	}
	if (!given_k) {
		nk = sizeof ks0 / sizeof *ks0;
		ks = emalloc(sizeof ks0);
		memcpy(ks, ks0, sizeof ks0);
	}
	for (size_t i = 0; i < nk; i++)
		if (ks[i] != floor(ks[i]))
			usage_die("option '--top-k': expected whole numbers, got %g", ks[i]);
	ndata = task_default_dirs(data_dirs, ndata);
	o.data_dirs = data_dirs;
	pts = ecalloc(ntau + nk + 1, sizeof *pts);
	for (size_t i = 0; i < ntau; i++)
		pts[i].tau = taus[i];
	for (size_t i = 0; i < nk; i++)
		pts[ntau + i].topk = (int)ks[i];
	check_checkpoint(ckpt, "");
	if (train_prune_eval(ckpt, &o, pts, (int)(ntau + nk), &err) < 0)
		die("%s", err.msg);
	if (afile_open(&af, out_path, &err) < 0)
		die("%s", err.msg);
	for (size_t i = 0; i < ntau + nk; i++)
		write_point(&af, ckpt, &pts[i]);
	if (plot_path)
		plot_sweep(plot_path, pts, ntau + nk);
	if (afile_commit(&af, &err) < 0)
		die("%s", err.msg);
	free(pts), free(taus), free(ks);
	return 0;
}

static const char *calibrate_ckpt;
static double calibrate_target[2] = {0.5, 0.9};
static int calibrate_batches = 8;

/* The "prune" object of a checkpoint, as text. */
static void
calibrate_one(struct jsonl_out *w, const char *ckpt, const struct train_options *o, struct tc_error *err,
              const char *where)
{
	double tau[2], sp[2];

	check_checkpoint(ckpt, where);
	if (train_prune_calibrate(ckpt, o, calibrate_target, calibrate_batches, tau, sp, err) < 0)
		die("%s%s", where, err->msg);
	w->len = 0;
	w->depth = w->err = 0;
	jw_begin(w, NULL);
	jw_string(w, "rule", "target");
	jw_number(w, "target_act", calibrate_target[0]);
	jw_number(w, "target_grad", calibrate_target[1]);
	jw_number(w, "tau_act", (float)tau[0]);
	jw_number(w, "tau_grad", (float)tau[1]);
	jw_int(w, "batches", calibrate_batches);
	jw_begin(w, "sparsity");
	jw_number(w, "activation", round(sp[0] * 1e6) / 1e6);
	jw_number(w, "gradient", round(sp[1] * 1e6) / 1e6);
	jw_end(w);
	jw_end(w);
	if (w->err)
		die("%sthe result cannot be encoded", where);
}

static int
calibrate_main(int argc, char **argv)
{
	enum { OPT_CKPT = 256, OPT_TACT, OPT_TGRAD, OPT_BATCHES, OPT_VERSION };
	static const struct option longopts[] = {{"checkpoint", required_argument, NULL, OPT_CKPT},
	                                         {"target-act", required_argument, NULL, OPT_TACT},
	                                         {"target-grad", required_argument, NULL, OPT_TGRAD},
	                                         {"batches", required_argument, NULL, OPT_BATCHES},
	                                         COMMON_LONGOPTS};
	struct train_options o;
	struct tc_error err;
	struct jsonl_out w = {0};
	struct afile af;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	long nrec = 0;
	int c;

	train_options_default(&o);
	while ((c = getopt_long(argc, argv, "qo:h", longopts, NULL)) != -1) {
		if (common_option(c, &o) == 0)
			continue;
		switch (c) {
		case OPT_CKPT:
			calibrate_ckpt = optarg;
			break;
		case OPT_TACT:
		case OPT_TGRAD:
			if (parse_double(optarg, 0, 1, &calibrate_target[c == OPT_TGRAD]) < 0 ||
			    calibrate_target[c == OPT_TGRAD] >= 1)
				usage_die("option '--target-%s': expected a number in [0, 1), got '%s'",
				          c == OPT_TGRAD ? "grad" : "act", optarg);
			break;
		case OPT_BATCHES:
			calibrate_batches = (int)eparse_long(optarg, "--batches", 1, 100000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("tc-prune (transcode) %s\n", TC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (calibrate_ckpt && optind < argc)
		usage_die("calibrate: --checkpoint takes no record files");
	ndata = task_default_dirs(data_dirs, ndata);
	o.data_dirs = data_dirs;
	if (afile_open(&af, out_path, &err) < 0)
		die("%s", err.msg);
	if (calibrate_ckpt) {
		struct jsonl_out rec = {0};
		calibrate_one(&w, calibrate_ckpt, &o, &err, "");
		jw_begin(&rec, NULL);
		jw_string(&rec, "checkpoint", calibrate_ckpt);
		jw_end(&rec);
		if (jsonl_append_text(&buf, &len, &cap, rec.p, rec.len, "prune", w.p, w.len) < 0)
			die("the result cannot be encoded");
		free(rec.p);
	} else {
		for (int i = optind; i == optind || i < argc; i++) {
			const char *path = i < argc ? argv[i] : "-";
			struct jsonl_reader r;
			const char *line;
			size_t n;
			int rc;
			if (jsonl_open(&r, path, &err) < 0)
				die("%s", err.msg);
			while ((rc = jsonl_next_line(&r, &line, &n, &err)) > 0) {
				json_t *rec;
				const char *ck;
				char where[TC_ERROR_MAX];
				if (jsonl_parse(r.name, r.line, line, n, &rec, &err) < 0)
					die("%s", err.msg);
				snprintf(where, sizeof where, "%s:%ld: ", r.name, r.line);
				if (json_object_get(rec, "prune"))
					die("%sfield 'prune': the record has one already", where);
				if (json_get_string(rec, "train.checkpoint", &ck, &err) < 0)
					die("%s%s", where, err.msg);
				calibrate_one(&w, ck, &o, &err, where);
				if (jsonl_append_text(&buf, &len, &cap, line, n, "prune", w.p, w.len) < 0)
					die("%sthe result cannot be encoded", where);
				json_decref(rec);
				nrec++;
			}
			if (rc < 0)
				die("%s", err.msg);
			jsonl_close(&r);
		}
		if (nrec == 0)
			die("%s: no records", optind == argc ? "<stdin>" : argv[argc - 1]);
	}
	/* every record is measured before any is written: an error leaves no half output */
	if (fwrite(buf, 1, len, af.f) != len) {
		afile_abort(&af);
		die("write error: %s", strerror(errno));
	}
	if (afile_commit(&af, &err) < 0)
		die("%s", err.msg);
	free(buf), free(w.p);
	return 0;
}

int
main(int argc, char **argv)
{
	tc_setprogname(argv[0]);
	if (argc < 2)
		usage_die("missing subcommand (expected apply, sweep or calibrate)");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		close_stdout();
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("tc-prune (transcode) %s\n", TC_VERSION);
		close_stdout();
		return 0;
	}
	nn_blas_setup(argv);
	if (strcmp(argv[1], "apply") == 0 || strcmp(argv[1], "sweep") == 0 ||
	    strcmp(argv[1], "calibrate") == 0) {
		const char *sub = argv[1];
		int rc;
		argv[1] = argv[0]; /* getopt names the program from argv[0] in its messages */
		if (!strcmp(sub, "apply"))
			return apply_main(argc - 1, argv + 1);
		rc = !strcmp(sub, "sweep") ? sweep_main(argc - 1, argv + 1)
		                           : calibrate_main(argc - 1, argv + 1);
		close_stdout();
		return rc;
	}
	if (argv[1][0] == '-')
		usage_die("unrecognized option '%s' (the subcommand comes first: apply, sweep or calibrate)",
		          argv[1]);
	usage_die("unknown subcommand '%s' (expected apply, sweep or calibrate)", argv[1]);
}
