/*
 * tc-sim: ELECTOR, the simulator. Reads records with "model" and "accel" (tc-records(5)) and
 * adds "sim": latency, energy and area of running the model on the accelerator for one batch of
 * inference or of training, at the fast (analytic) or the cycle (event-driven) fidelity. With
 * --sweep it reads models and searches the whole accelerator space for each, keeping the Pareto
 * set or the best few.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "plot.h"
#include "simrec.h"
#include "sweep.h"

#define CHUNK 64

static struct simrec_options opt = {SIM_FAST,     0,    0,    0,    128,  30522, 2,
                                    {-1, -1, -1}, NULL, NULL, NULL, NULL, NULL};
static const char *hw_path, *trace_path, *plot_path, *out_path = "-";
static const char *model_space_file, *accel_space_file;
static int nthreads = 2, do_sweep;
static struct sweep_options sweep_opt = {0, {1, 1, 1}, 2};
static struct hw_profile prof;
static struct accel_space aspace;
static struct model_space mspace;

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tc-sim [--mode inference|training] [--fidelity fast|cycle] [--hw FILE]\n"
	    "              [--sparsity act=A,weight=W,grad=G] [--batch N] [--seq N] [--vocab N]\n"
	    "              [--classes N] [--space-file FILE]... [--trace FILE] [--plot FILE]\n"
	    "              [--sweep [--top K] [--weights L,E,A]] [--brief] [--threads N] [-o FILE]\n"
	    "              [FILE...]\n"
	    "Simulate each record's model on its accelerator and add \"sim\" (tc-records(5)).\n"
	    "\n"
	    "  -m, --mode M          inference (one batch forward) or training (forward, backward,\n"
	    "                        optimizer step); default inference\n"
	    "  -f, --fidelity F      fast (analytic, the default) or cycle (event-driven, per tile)\n"
	    "      --hw FILE         hardware profile (default share/hw/acceltran-14nm.json)\n"
	    "  -s, --sparsity LIST   act=A,weight=W,grad=G: fractions of zeros, used where a record\n"
	    "                        carries no measured value (default: the profile's 0.5, 0.5, 0.9)\n"
	    "  -b, --batch N         sequences per batch (default: the accelerator's batch)\n"
	    "      --seq N           tokens per sequence (default 128)\n"
	    "      --vocab N         vocabulary of the embedding table (default 30522)\n"
	    "      --classes N       outputs of the classifier (default 2)\n"
	    "      --space-file F    the model or accelerator space records must lie in, and that\n"
	    "                        --sweep searches (default: any valid model; acceltran)\n"
	    "      --trace FILE      write every operation and transfer as JSON Lines\n"
	    "      --plot FILE       draw unit utilisation over time of the first record (.png, .svg)\n"
	    "      --sweep           for each model record, every accelerator of the space (fast)\n"
	    "      --top K           with --sweep: the K best by weighted score instead of the Pareto set\n"
	    "      --weights L,E,A   weights of latency, energy and area in the score (default 1,1,1)\n"
	    "      --brief           only mode, fidelity, feasibility, cycles, latency, energy, area\n"
	    "      --threads N       simulate on N threads (default 2); output is the same\n"
	    "  -o, --output FILE     write to FILE atomically instead of stdout\n"
	    "  -h, --help            this help\n"
	    "      --version         the version\n");
}

static void
parse_sparsity(const char *s)
{
	char *copy = estrdup(s), *save = NULL, *item;

	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		int k;
		if (!eq)
			usage_die("option '--sparsity': expected act=A,weight=W,grad=G, got '%s'", item);
		*eq = 0;
		if (strcmp(item, "act") == 0 || strcmp(item, "activation") == 0)
			k = 0;
		else if (strcmp(item, "weight") == 0)
			k = 1;
		else if (strcmp(item, "grad") == 0 || strcmp(item, "gradient") == 0)
			k = 2;
		else
			usage_die("option '--sparsity': unknown class '%s' (expected act, weight or grad)",
			          item);
		opt.sparsity[k] = eparse_double(eq + 1, "--sparsity", 0, 0.999);
	}
	free(copy);
}

static void
parse_weights(const char *s)
{
	char *copy = estrdup(s), *save = NULL, *tok = strtok_r(copy, ",", &save);

	for (int i = 0; i < 3; i++, tok = strtok_r(NULL, ",", &save)) {
		if (!tok)
			usage_die("option '--weights': expected three numbers L,E,A");
		sweep_opt.weights[i] = eparse_double(tok, "--weights", 0, 1e6);
	}
	if (tok)
		usage_die("option '--weights': expected three numbers L,E,A");
	free(copy);
}

static void
add_space_file(const char *path)
{
	struct tc_error err;

	if (tc_check_input(path, &err) < 0 ||
	    space_file_route(path, &model_space_file, &accel_space_file, &err) < 0)
		die("%s", err.msg);
}

/* ---- trace and plot ---- */

struct tracer {
	FILE *f;         /* the trace file, or NULL */
	const char *rec; /* the record's id or position */
	/* for the plot, the first record's work: (n, 4): start, end, class (0 MAC lanes, 1 softmax,
	 * 2 layer-norm, 3 main memory), unit-cycles */
	double *iv;
	size_t n, cap;
	int plotting;
	int werr; /* errno of a failed trace write: reported once the record is done, not mid-simulation */
};

static int
trace_class(const char *kind)
{
	if (!strcmp(kind, "load") || !strcmp(kind, "stream") || !strcmp(kind, "spill"))
		return 3;
	return !strcmp(kind, "softmax") ? 1 : !strcmp(kind, "layernorm") ? 2 : 0;
}

static void
trace_cb(void *ctx, const char *kind, const char *name, double start, double end, long units, long tiles,
         double busy, double energy_nj)
{
	struct tracer *t = ctx;
	json_t *ev;

	if (t->f && !t->werr) {
		ev = json_object();
		json_object_set_new(ev, "record", json_string(t->rec));
		json_object_set_new(ev, "kind", json_string(kind));
		json_object_set_new(ev, "name", json_string(name));
		json_object_set_new(ev, "start_cycle", json_number(start));
		json_object_set_new(ev, "end_cycle", json_number(end));
		json_object_set_new(ev, "units", json_integer(units));
		json_object_set_new(ev, "tiles", json_integer(tiles));
		json_object_set_new(ev, "busy_unit_cycles", json_number(busy));
		json_object_set_new(ev, "energy_j", json_number(energy_nj * 1e-9));
		if (jsonl_write(t->f, ev) < 0)
			t->werr = errno ? errno : EIO;
		json_decref(ev);
	}
	if (t->plotting && end > start) {
		t->iv = egrow(t->iv, &t->cap, (t->n + 1) * 4, sizeof *t->iv);
		t->iv[t->n * 4] = start;
		t->iv[t->n * 4 + 1] = end;
		t->iv[t->n * 4 + 2] = trace_class(kind);
		t->iv[t->n * 4 + 3] = busy;
		t->n++;
	}
}

/*
 * Utilisation over time of the first record: each operation's unit-cycles spread evenly over its
 * interval, divided by the class's units; the memory channel's busy fraction; 200 buckets.
 */
static void
draw(const struct tracer *t, const json_t *sim)
{
	enum { NB = 200 };
	static double u[4][NB];
	double cycles = json_number_value(json_object_get(sim, "cycles")), units[4] = {1, 1, 1, 1};
	static const char *const cls[3] = {"units.mac_lanes", "units.softmax", "units.layernorm"};
	struct tc_error err;
	struct plot p;
	FILE *gp;

	if (cycles <= 0)
		return;
	for (int c = 0; c < 3; c++) {
		const json_t *v = json_path_get(sim, cls[c]);
		units[c] = v ? (double)json_integer_value(v) : 1;
	}
	for (size_t i = 0; i < t->n; i++) {
		const double *v = t->iv + 4 * i;
		int c = (int)v[2];
		double rate = v[3] / (v[1] - v[0]);
		for (int b = 0; b < NB; b++) {
			double lo = cycles * b / NB, hi = cycles * (b + 1) / NB;
			double ov = fmin(hi, v[1]) - fmax(lo, v[0]);
			if (ov > 0)
				u[c][b] += ov * rate / (hi - lo) / units[c];
		}
	}
	if (!(gp = plot_open(&p, plot_path, 900, 500, &err)))
		die("%s", err.msg);
	fputs("set title 'tc-sim: utilisation over time'\nset xlabel 'cycle'\nset ylabel 'fraction busy'\n"
	      "set yrange [0:1.05]\nset key outside bottom center horizontal\nset grid\n$u << EOD\n",
	      gp);
	for (int b = 0; b < NB; b++)
		fprintf(gp, "%.17g %.6g %.6g %.6g %.6g\n", cycles * (b + 0.5) / NB, u[0][b], u[1][b], u[2][b],
		        u[3][b]);
	fputs(
	    "EOD\nplot $u using 1:2 with lines lw 2 title 'MAC lanes', $u using 1:3 with lines title "
	    "'softmax', "
	    "$u using 1:4 with lines title 'layer-norm', $u using 1:5 with lines dt 2 title 'main memory'\n",
	    gp);
	if (plot_close(&p, &err) < 0)
		die("%s", err.msg);
}

/* ---- the record loop ---- */

/*
 * The record loop reads lines on one thread and parses, simulates and formats them on all: every
 * record's memory is allocated and freed by the thread that handles it (glibc's arenas lock on
 * frees from another thread), and the slots' buffers live across chunks.
 */
struct slot {
	char *in, *out; /* the line read, the line to write */
	size_t inlen, incap, outlen, outcap;
	long line;
	json_t *rec; /* kept only for a plot */
	struct tc_error err;
	int failed;
};

static void
eval_slot(struct slot *s, struct tracer *tr, const char *file)
{
	static __thread struct jsonl_out text; /* one per thread, kept for its capacity */
	struct simrec_options o = opt;
	json_t *rec, *sim;
	char pos[64];

	s->failed = 0;
	s->outlen = 0;
	if (jsonl_parse(file, s->line, s->in, s->inlen, &rec, &s->err) < 0) {
		s->failed = 1;
		return;
	}
	if (tr) {
		const json_t *id = json_object_get(rec, "id");
		snprintf(pos, sizeof pos, "%s:%ld", file, s->line);
		tr->rec = json_is_string(id) ? json_string_value(id) : pos;
		o.trace = trace_cb;
		o.trace_ctx = tr;
	}
	if (simrec_run(rec, &o, &text, &s->err) < 0) {
		tc_error_prefix(&s->err, "%s:%ld", file, s->line);
		s->failed = 1;
		json_decref(rec);
		return;
	}
	/* a record read without a sim keeps its bytes, and only the new member is written */
	if (!tr && !json_object_get(rec, "sim") &&
	    jsonl_append_text(&s->out, &s->outlen, &s->outcap, s->in, s->inlen, "sim", text.p, text.len) ==
	        0) {
		json_decref(rec);
		return;
	}
	s->outlen = 0;
	if (!(sim = json_loadb(text.p, text.len, 0, NULL))) {
		s->failed = 1;
		tc_error_set(&s->err, "%s:%ld: the result cannot be decoded", file, s->line);
		json_decref(rec);
		return;
	}
	json_object_set_new(rec, "sim", sim);
	if (jsonl_append(&s->out, &s->outlen, &s->outcap, rec) < 0) {
		s->failed = 1;
		tc_error_set(&s->err, "%s:%ld: the result cannot be encoded", file, s->line);
	}
	if (tr)
		s->rec = rec;
	else
		json_decref(rec);
}

static void
run_file(const char *path, FILE *out, struct tracer *tr, long *nrec)
{
	static struct slot slots[CHUNK];
	struct jsonl_reader r;
	struct tc_error err;
	int n, rc = 1;

	if (jsonl_open(&r, path, &err) < 0)
		die("%s", err.msg);
	while (rc > 0) {
		for (n = 0; n < CHUNK; n++) {
			const char *line;
			size_t len;
			if ((rc = jsonl_next_line(&r, &line, &len, &err)) <= 0)
				break;
			slots[n].in = egrow(slots[n].in, &slots[n].incap, len + 1, 1);
			memcpy(slots[n].in, line, len);
			slots[n].inlen = len;
			slots[n].line = r.line;
		}
		/* a traced run is sequential, so the trace lists records in order */
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if (n > 1 && !tr)
		for (int i = 0; i < n; i++)
			eval_slot(&slots[i], tr, r.name);
		if (tr && tr->werr)
			die("write error on '%s': %s", trace_path, strerror(tr->werr));
		for (int i = 0; i < n; i++) {
			if (slots[i].failed)
				die("%s", slots[i].err.msg);
			if (fwrite(slots[i].out, 1, slots[i].outlen, out) != slots[i].outlen)
				die("write error: %s", strerror(errno));
			if (tr && tr->plotting && *nrec == 0)
				draw(tr, json_object_get(slots[i].rec, "sim"));
			if (tr)
				tr->plotting = 0;
			json_decref(slots[i].rec);
			slots[i].rec = NULL;
			(*nrec)++;
		}
		if (opt.fidelity == SIM_CYCLE && fflush(out))
			die("write error: %s", strerror(errno));
	}
	if (rc < 0)
		die("%s", err.msg);
	for (int i = 0; i < CHUNK; i++) {
		free(slots[i].in);
		free(slots[i].out);
		memset(&slots[i], 0, sizeof slots[i]);
	}
	jsonl_close(&r);
}

/* For each model record, its selected accelerators, each as a record with "accel", "id", "sim" and
 * "sweep" set and every other field of the model record kept. */
static void
sweep_file(const char *path, FILE *out, long *nrec)
{
	struct jsonl_reader r;
	struct tc_error err;
	json_t *rec;
	int rc;

	if (jsonl_open(&r, path, &err) < 0)
		die("%s", err.msg);
	while ((rc = jsonl_read(&r, &rec, &err)) > 0) {
		unsigned long long *kept;
		struct sweep_stats st;
		size_t n;
		if (sweep_model(rec, &opt, &sweep_opt, &kept, &n, &st, &err) < 0)
			die("%s:%ld: %s", r.name, r.line, err.msg);
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_deep_copy(rec), *sim, *sw = json_object();
			struct model m;
			struct accel a;
			char id[17];
			accel_grid_point(&a, &aspace, kept[i]);
			model_from_json(&m, json_object_get(rec, "model"), NULL, &err);
			candidate_id(id, &m, &a);
			json_object_set_new(o, "id", json_string(id));
			json_object_set_new(o, "accel", accel_to_json(&a));
			if (!(sim = simrec_eval(o, &opt, &err)))
				die("%s:%ld: %s", r.name, r.line, err.msg);
			json_object_set_new(o, "sim", sim);
			json_object_set_new(sw, "space", json_string(aspace.name));
			json_object_set_new(sw, "selection", json_string(sweep_opt.top ? "top" : "pareto"));
			json_object_set_new(sw, "index", json_integer((json_int_t)kept[i]));
			json_object_set_new(sw, "rank", json_integer((json_int_t)i));
			json_object_set_new(sw, "evaluated", json_number(st.evaluated));
			json_object_set_new(sw, "feasible", json_number(st.feasible));
			json_object_set_new(sw, "kept", json_number(st.kept));
			json_object_set_new(o, "sweep", sw);
			if (jsonl_write(out, o) < 0)
				die("write error: %s", strerror(errno));
			json_decref(o);
		}
		if (fflush(out))
			die("write error: %s", strerror(errno));
		free(kept);
		json_decref(rec);
		(*nrec)++;
	}
	if (rc < 0)
		die("%s", err.msg);
	jsonl_close(&r);
}

static void
load_data(void)
{
	struct tc_error err;
	char *hw = hw_path ? estrdup(hw_path) : tc_share_path("hw/acceltran-14nm.json");
	char *ap = accel_space_file ? estrdup(accel_space_file) : tc_share_path("space/acceltran.json");

	if (tc_check_input(hw, &err) < 0 || hw_profile_load(&prof, hw, &err) < 0 ||
	    accel_space_load(&aspace, ap, &err) < 0)
		die("%s", err.msg);
	if (model_space_file) {
		if (model_space_load(&mspace, model_space_file, &err) < 0)
			die("%s", err.msg);
		opt.mspace = &mspace;
	}
	opt.prof = &prof;
	opt.aspace = &aspace;
	free(hw);
	free(ap);
}

int
main(int argc, char **argv)
{
	enum {
		OPT_HW = 256,
		OPT_SEQ,
		OPT_VOCAB,
		OPT_CLASSES,
		OPT_SPACE,
		OPT_TRACE,
		OPT_PLOT,
		OPT_SWEEP,
		OPT_TOP,
		OPT_WEIGHTS,
		OPT_THREADS,
		OPT_BRIEF,
		OPT_VERSION
	};
	static const struct option longopts[] = {{"mode", required_argument, NULL, 'm'},
	                                         {"fidelity", required_argument, NULL, 'f'},
	                                         {"hw", required_argument, NULL, OPT_HW},
	                                         {"sparsity", required_argument, NULL, 's'},
	                                         {"batch", required_argument, NULL, 'b'},
	                                         {"seq", required_argument, NULL, OPT_SEQ},
	                                         {"vocab", required_argument, NULL, OPT_VOCAB},
	                                         {"classes", required_argument, NULL, OPT_CLASSES},
	                                         {"space-file", required_argument, NULL, OPT_SPACE},
	                                         {"trace", required_argument, NULL, OPT_TRACE},
	                                         {"plot", required_argument, NULL, OPT_PLOT},
	                                         {"sweep", no_argument, NULL, OPT_SWEEP},
	                                         {"top", required_argument, NULL, OPT_TOP},
	                                         {"weights", required_argument, NULL, OPT_WEIGHTS},
	                                         {"threads", required_argument, NULL, OPT_THREADS},
	                                         {"output", required_argument, NULL, 'o'},
	                                         {"brief", no_argument, NULL, OPT_BRIEF},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {"version", no_argument, NULL, OPT_VERSION},
	                                         {NULL, 0, NULL, 0}};
	struct tracer tr = {0};
	struct afile af, tf = {0};
	struct tc_error err;
	long nrec = 0;
	int c;

	tc_setprogname(argv[0]);
	while ((c = getopt_long(argc, argv, "m:f:s:b:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (strcmp(optarg, "inference") && strcmp(optarg, "training"))
				usage_die("option '--mode': expected inference or training, got '%s'",
				          optarg);
			opt.training = strcmp(optarg, "training") == 0;
			break;
		case 'f':
			if (strcmp(optarg, "fast") && strcmp(optarg, "cycle"))
				usage_die("option '--fidelity': expected fast or cycle, got '%s'", optarg);
			opt.fidelity = strcmp(optarg, "cycle") == 0 ? SIM_CYCLE : SIM_FAST;
			break;
		case OPT_HW:
			hw_path = optarg;
			break;
		case 's':
			parse_sparsity(optarg);
			break;
		case 'b':
			opt.batch = eparse_long(optarg, "--batch", 1, 4096);
			break;
		case OPT_SEQ:
			opt.seq = eparse_long(optarg, "--seq", 1, 65536);
			break;
		case OPT_VOCAB:
			opt.vocab = eparse_long(optarg, "--vocab", 1, 10000000);
			break;
		case OPT_CLASSES:
			opt.classes = (int)eparse_long(optarg, "--classes", 1, 1000000);
			break;
		case OPT_SPACE:
			add_space_file(optarg);
			break;
		case OPT_TRACE:
			trace_path = optarg;
			break;
		case OPT_PLOT:
			plot_path = optarg;
			break;
		case OPT_SWEEP:
			do_sweep = 1;
			break;
		case OPT_TOP:
			sweep_opt.top = eparse_long(optarg, "--top", 1, 1000000);
			break;
		case OPT_WEIGHTS:
			parse_weights(optarg);
			break;
		case OPT_THREADS:
			nthreads = (int)eparse_long(optarg, "--threads", 1, 256);
			break;
		case OPT_BRIEF:
			opt.brief = 1;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("tc-sim (transcode) %s\n", TC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (plot_path && !strstr(plot_path, ".png") && !strstr(plot_path, ".svg"))
		usage_die("option '--plot': expected a .png or .svg file name, got '%s'", plot_path);
	if (sweep_opt.top && !do_sweep)
		usage_die("option '--top' needs --sweep");
	if (do_sweep && (trace_path || plot_path || opt.fidelity == SIM_CYCLE))
		usage_die("--sweep runs the fast fidelity without --trace or --plot");
	load_data();
	if (afile_open(&af, out_path, &err) < 0)
		die("%s", err.msg);
	if (trace_path) {
		if (afile_open(&tf, trace_path, &err) < 0)
			die("%s", err.msg);
		tr.f = tf.f;
	}
	tr.plotting = plot_path != NULL;
	sweep_opt.threads = nthreads;
	for (int i = optind; i < argc || (i == optind && optind == argc); i++) {
		const char *path = optind == argc ? "-" : argv[i];
		if (do_sweep)
			sweep_file(path, af.f, &nrec);
		else
			run_file(path, af.f, trace_path || plot_path ? &tr : NULL, &nrec);
	}
	if (nrec == 0)
		die("%s: no records", optind == argc ? "<stdin>" : argv[argc - 1]);
	/* the records flushed before the trace is committed: a failing -o leaves no trace file */
	if (trace_path && (fflush(af.f) || ferror(af.f))) {
		afile_commit(&af, &err); /* fails, the error being sticky, and names it */
		die("%s", err.msg);
	}
	if (trace_path && afile_commit(&tf, &err) < 0)
		die("%s", err.msg);
	if (afile_commit(&af, &err) < 0)
		die("%s", err.msg);
	close_stdout();
	free(tr.iv);
	return 0;
}
