/*
 * tc-prune: run-time activation pruning, as DynaTran (AccelTran) does it, over tensor streams.
 *
 *   tc-prune apply   read a tensor stream (tc-tensor(5)), zero the small elements of its floating-point
 *                    tensors (below a threshold, to a target sparsity, or all but the top k of each row),
 *                    write the stream with prune.* metadata, and report the sparsity reached
 *
 * Frames go through one at a time and are pruned in place in the frame's own buffer, so a stream of any
 * length runs in the memory of its largest frame. An error anywhere fails the whole run and leaves neither
 * the -o file nor the report behind: a stream is only known to be intact once it has been read to its end.
 */
#include <errno.h>
#include <float.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonl.h"
#include "prune.h"
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
	fprintf(f,
	        "Usage: tc-prune apply (--tau T | --target S | --top-k K) [--only GLOB]... [--report FILE]\n"
	        "                      [-q] [-o FILE] [FILE]\n"
	        "Prune activations in a tensor stream (tc-tensor(5)) and report the sparsity reached.\n"
	        "\n"
	        "apply: prune every floating-point tensor of every frame of FILE (- or none: stdin)\n"
	        "      --tau T          DynaTran: zero every element with |x| <= T (T >= 0)\n"
	        "      --target S       per tensor, the least threshold that zeroes a fraction S in [0, 1)\n"
	        "      --top-k K        keep the K largest magnitudes of each row (last dimension)\n"
	        "      --only GLOB      prune only the tensors whose names match GLOB (repeatable)\n"
	        "      --report FILE    one JSON Lines record per frame and pruned tensor\n"
	        "  -q, --quiet          no sparsity lines on stderr\n"
	        "  -o, --output FILE    write the stream to FILE atomically instead of stdout\n"
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

int
main(int argc, char **argv)
{
	tc_setprogname(argv[0]);
	if (argc < 2)
		usage_die("missing subcommand (expected apply)");
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
	if (strcmp(argv[1], "apply") == 0) {
		argv[1] = argv[0]; /* getopt names the program from argv[0] in its messages */
		return apply_main(argc - 1, argv + 1);
	}
	if (argv[1][0] == '-')
		usage_die("unrecognized option '%s' (the subcommand comes first: apply)", argv[1]);
	usage_die("unknown subcommand '%s' (expected apply)", argv[1]);
}
