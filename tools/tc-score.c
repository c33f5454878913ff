/*
 * tc-score: the co-design score of each record, TransCODE's performance: a weighted sum of the
 * accuracy and of one minus latency, area, dynamic and leakage energy, each over a fixed maximum,
 * added as "score" (higher is better). It is what the search maximises, between tc-sim/tc-train
 * and tc-pareto.
 *
 * Every record gets a defined score: a failed stage, an infeasible simulation or a broken
 * constraint scores -1 or below, so a search can rank them; only malformed input is an error.
 * The whole input is scored before anything is written, so bad input writes nothing, and "score"
 * is appended to each record's own text, so every other byte passes through as read.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

/* The terms of the performance, in the order they are summed and written. */
enum { T_ACC, T_LAT, T_AREA, T_DYN, T_LEAK, T_COUNT };
/* The constraints, in the order they are checked and named in a reason. */
enum { C_AREA, C_LAT, C_ENERGY, C_COUNT };

static const char *const term_names[T_COUNT] = {"acc", "lat", "area", "dyn", "leak"};
static const char *const limit_keys[C_COUNT] = {"max_area", "max_latency", "max_energy"};
static const char *const limit_opts[C_COUNT] = {"--max-area", "--max-latency", "--max-energy"};

/*
 * Defaults: the weights of TransCODE's final constants with the area term that the released code
 * declares but leaves out; maxima 4e9 cycles at 700 MHz, 30,000 mm2, 9e10 nJ and 2e10 nJ.
 * max[T_ACC] is 1: an accuracy is a fraction already. limit 0: no constraint.
 */
static double weight[T_COUNT] = {0.5, 0.1, 0.1, 0.2, 0.1};
static double maximum[T_COUNT] = {1, 4e9 / 700e6, 30000, 90, 20};
static double limit[C_COUNT];
static const char *sim_path = "sim", *acc_path = "train.val_accuracy", *out_path = "-";
static int quiet;

/* What a run found, for the summary line. */
struct tally {
	long records, scored, infeasible, over, failed;
	double best;
	char best_at[TC_ERROR_MAX];
};

/* The simulator's figures of a feasible record. */
struct figures {
	double lat, area, dyn, leak; /* s, mm2, J, J */
};

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tc-score [--weights KEY=W,...] [--maxima KEY=V,...] [--config FILE] [--max-area MM2]\n"
	    "                [--max-latency S] [--max-energy J] [--sim PATH] [--accuracy PATH] [-q]\n"
	    "                [-o FILE] [FILE...]\n"
	    "Add \"score\", TransCODE's performance (higher is better), to each record (tc-records(5))\n"
	    "of FILEs or standard input.\n"
	    "\n"
	    "      --weights LIST     weights of the terms acc, lat, area, dyn, leak, each >= 0; keys not\n"
	    "                         given keep their value (default acc=0.5,lat=0.1,area=0.1,dyn=0.2,\n"
	    "                         leak=0.1)\n"
	    "      --maxima LIST      what lat (s), area (mm2), dyn (J), leak (J) are divided by, each\n"
	    "                         > 0 (default lat=5.714285714,area=30000,dyn=90,leak=20)\n"
	    "      --config FILE      weights, maxima and constraints from a JSON object;\n"
	    "                         options given after it override it\n"
	    "      --max-area MM2     a larger area breaks a constraint: the record is infeasible\n"
	    "      --max-latency S    the same for latency\n"
	    "      --max-energy J     the same for total energy, dynamic plus leakage\n"
	    "      --sim PATH         dotted path of the simulator's object (default sim)\n"
	    "      --accuracy PATH    dotted path of the accuracy, in [0, 1] (default\n"
	    "                         train.val_accuracy: never the test accuracy)\n"
	    "  -q, --quiet            no summary or warning on stderr\n"
	    "  -o, --output FILE      write to FILE atomically instead of stdout\n"
	    "  -h, --help             this help\n"
	    "      --version          the version\n");
}

/* x in the fewest digits that read back exactly, as records print it, into buf (64 bytes). */
static const char *
num(char *buf, double x)
{
	struct jsonl_out w = {0};

	jw_number(&w, NULL, x);
	if (w.err || w.len >= 64)
		snprintf(buf, 64, "%.17g", x);
	else
		memcpy(buf, w.p, w.len), buf[w.len] = 0;
	free(w.p);
	return buf;
}

/* ---- options ---- */

static int
key_index(const char *key, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (names[i] && strcmp(key, names[i]) == 0)
			return i;
	return -1;
}

/*
 * --weights and --maxima: KEY=V,... over the term names (--maxima without acc). Every value is
 * finite, >= 0 for a weight and > 0 for a maximum; a key given twice is an error.
 */
static void
parse_terms(const char *s, const char *opt, double *dst, int is_max)
{
	static const char *const max_names[T_COUNT] = {NULL, "lat", "area", "dyn", "leak"};
	const char *const *names = is_max ? max_names : term_names;
	const char *expect = is_max ? "lat, area, dyn or leak" : "acc, lat, area, dyn or leak";
	char *copy = estrdup(s), *save = NULL, *item;
	int seen[T_COUNT] = {0};

	if (!*s)
		usage_die("option '%s': expected KEY=VALUE,... with KEY %s", opt, expect);
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		double v;
		int k;
		if (!eq)
			usage_die("option '%s': expected KEY=VALUE, got '%s'", opt, item);
		*eq = 0;
		if ((k = key_index(item, names, T_COUNT)) < 0)
			usage_die("option '%s': unknown key '%s' (expected %s)", opt, item, expect);
		if (seen[k]++)
			usage_die("option '%s': key '%s' given twice", opt, item);
		if (parse_double(eq + 1, 0, HUGE_VAL, &v) < 0 || (is_max && v == 0))
			usage_die("option '%s': %s: expected a number %s, got '%s'", opt, item,
			          is_max ? "> 0" : ">= 0", eq + 1);
		dst[k] = v;
	}
	free(copy);
}

static double
parse_limit(const char *s, const char *opt)
{
	double v;

	if (parse_double(s, 0, HUGE_VAL, &v) < 0 || v == 0)
		usage_die("option '%s': expected a number > 0, got '%s'", opt, s);
	return v;
}

/* A dotted path: non-empty components. */
static const char *
parse_path(const char *s, const char *opt)
{
	if (!*s || *s == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))
		usage_die("option '%s': expected a dotted path such as sim or sims.training, got '%s'", opt,
		          s);
	return s;
}

/*
 * One section of a config file: an object whose keys are names[0..n) (NULL entries excluded) and
 * whose values are finite numbers >= 0 (weights) or > 0 (maxima, limits), stored into dst.
 * Returns 0, or -1 with "field 'section.key': ..." in err.
 */
static int
config_section(double *dst, const json_t *obj, const char *section, const char *const *names, int n,
               int positive, struct tc_error *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return tc_error_set(err, "field '%s': expected an object, got %s", section, json_kind(obj));
	json_object_foreach ((json_t *)obj, key, v) {
		int k = key_index(key, names, n);
		double x;
		char b[64];
		if (k < 0) {
			char expect[128] = "";
			for (int i = 0; i < n; i++)
				if (names[i])
					snprintf(expect + strlen(expect), sizeof expect - strlen(expect),
					         "%s%s", *expect ? ", " : "", names[i]);
			return tc_error_set(err, "field '%s.%s': unknown key (expected %s)", section, key,
			                    expect);
		}
		if (!json_is_number(v))
			return tc_error_set(err, "field '%s.%s': expected a number, got %s", section, key,
			                    json_kind(v));
		x = json_number_value(v);
		if (x < 0 || (positive && x == 0))
			return tc_error_set(err, "field '%s.%s': expected a number %s, got %s", section, key,
			                    positive ? "> 0" : ">= 0", num(b, x));
		dst[k] = x;
	}
	return 0;
}

/* --config FILE: {"weights": {...}, "maxima": {...}, "constraints": {...}}, each optional. */
static void
load_config(const char *path)
{
	static const char *const max_names[T_COUNT] = {NULL, "lat", "area", "dyn", "leak"};
	struct tc_error err;
	json_error_t je;
	const char *key;
	json_t *root, *v;
	FILE *f;

	if (!(f = fopen(path, "r")))
		die("cannot open '%s': %s", path, strerror(errno));
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
	if (ferror(f)) /* a directory opens, and reads as an error that jansson takes for the end */
		die("cannot read '%s': %s", path, strerror(errno));
	fclose(f);
	if (!root)
		die("%s:%d: malformed JSON at column %d: %s", path, je.line, je.column, je.text);
	if (!json_is_object(root))
		die("%s: expected a JSON object, got %s", path, json_kind(root));
	json_object_foreach (root, key, v) {
		int rc;
		if (strcmp(key, "weights") == 0)
			rc = config_section(weight, v, key, term_names, T_COUNT, 0, &err);
		else if (strcmp(key, "maxima") == 0)
			rc = config_section(maximum, v, key, max_names, T_COUNT, 1, &err);
		else if (strcmp(key, "constraints") == 0)
			rc = config_section(limit, v, key, limit_keys, C_COUNT, 1, &err);
		else
			rc = tc_error_set(
			    &err, "field '%s': unknown key (expected weights, maxima or constraints)", key);
		if (rc < 0)
			die("%s: %s", path, err.msg);
	}
	json_decref(root);
}

/* ---- one record ---- */

/* A number >= 0 at name (for messages) in obj under key. Returns 0, or -1 naming the field. */
static int
get_nonneg(double *out, const json_t *obj, const char *key, const char *name, const char *hint,
           struct tc_error *err)
{
	const json_t *v = json_object_get(obj, key);
	char b[64];

	if (!v)
		return tc_error_set(err, "missing field '%s'%s", name, hint);
	if (json_as_number(v, name, out, err) < 0)
		return -1;
	if (*out < 0)
		return tc_error_set(err, "field '%s': %s is negative", name, num(b, *out));
	return 0;
}

/* The sum of the values of the object at sim.energy_breakdown_j.<part>, each >= 0. */
static int
energy_sum(double *out, const json_t *breakdown, const char *part, struct tc_error *err)
{
	const json_t *obj = json_object_get(breakdown, part);
	char name[256];
	const char *key;
	json_t *v;

	snprintf(name, sizeof name, "%s.energy_breakdown_j.%s", sim_path, part);
	if (!obj)
		return tc_error_set(err, "missing field '%s'", name);
	if (!json_is_object(obj))
		return tc_error_set(err, "field '%s': expected an object, got %s", name, json_kind(obj));
	*out = 0;
	/* in the record's order (jansson keeps it), so the sum is the same on every run */
	json_object_foreach ((json_t *)obj, key, v) {
		char sub[TC_ERROR_MAX];
		double x;
		snprintf(sub, sizeof sub, "%s.%s", name, key);
		if (get_nonneg(&x, obj, key, sub, "", err) < 0)
			return -1;
		*out += x;
	}
	if (!isfinite(*out))
		return tc_error_set(err, "field '%s': the sum of its values is not finite", name);
	return 0;
}

/* The figures of a feasible simulation: latency, area, and the two energies from the breakdown. */
static int
read_figures(struct figures *f, const json_t *sim, struct tc_error *err)
{
	char name[TC_ERROR_MAX];
	const json_t *bd;

	snprintf(name, sizeof name, "%s.latency_s", sim_path);
	if (get_nonneg(&f->lat, sim, "latency_s", name, "", err) < 0)
		return -1;
	snprintf(name, sizeof name, "%s.area_mm2", sim_path);
	if (get_nonneg(&f->area, sim, "area_mm2", name, "", err) < 0)
		return -1;
	snprintf(name, sizeof name, "%s.energy_breakdown_j", sim_path);
	if (!(bd = json_object_get(sim, "energy_breakdown_j")))
		return tc_error_set(err,
		                    "missing field '%s': the score needs dynamic and leakage energy "
		                    "(run tc-sim without --brief)",
		                    name);
	if (!json_is_object(bd))
		return tc_error_set(err, "field '%s': expected an object, got %s", name, json_kind(bd));
	if (energy_sum(&f->dyn, bd, "dynamic", err) < 0 || energy_sum(&f->leak, bd, "leakage", err) < 0)
		return -1;
	return 0;
}

/*
 * Check the constraints. Returns how many are broken, with V, the sum over them of value/limit - 1,
 * in *v and what broke them in reason; or -1 with err naming the field if V is not finite.
 */
static int
violation(double *v, const struct figures *f, char *reason, size_t size, struct tc_error *err)
{
	static const char *const what[C_COUNT] = {"area", "latency", "energy"};
	static const char *const unit[C_COUNT] = {"mm2", "s", "J"};
	static const char *const field[C_COUNT] = {"area_mm2", "latency_s", "energy_breakdown_j"};
	double value[C_COUNT] = {f->area, f->lat, f->dyn + f->leak};
	int broken = 0;

	*v = 0;
	*reason = 0;
	for (int c = 0; c < C_COUNT; c++) {
		char a[64], b[64];
		if (limit[c] == 0 || !(value[c] > limit[c]))
			continue;
		*v += value[c] / limit[c] - 1;
		broken++;
		if (!isfinite(*v))
			return tc_error_set(err, "field '%s.%s': the violation of the %s limit is not finite",
			                    sim_path, field[c], what[c]);
		snprintf(reason + strlen(reason), size - strlen(reason),
		         "%s%s %s %s exceeds the limit of %s %s", *reason ? "; " : "", what[c],
		         num(a, value[c]), unit[c], num(b, limit[c]), unit[c]);
	}
	return broken;
}

/* The accuracy of a feasible record, a fraction in [0, 1]. */
static int
read_accuracy(double *a, const json_t *rec, struct tc_error *err)
{
	const json_t *v = json_path_get(rec, acc_path);
	char b[64];

	if (!v)
		return tc_error_set(
		    err, "missing field '%s' (run tc-train first, or name the accuracy with --accuracy)",
		    acc_path);
	if (json_as_number(v, acc_path, a, err) < 0)
		return -1;
	if (*a < 0 || *a > 1)
		return tc_error_set(err, "field '%s': %s is outside [0, 1]%s", acc_path, num(b, *a),
		                    *a > 1 && *a <= 100 ? " (an accuracy is a fraction, not a percentage)"
		                                        : "");
	return 0;
}

/* The score of a record for which every input is valid: the weighted terms and their sum. */
static int
performance(struct jsonl_out *w, double acc, const struct figures *f, double *p, struct tc_error *err)
{
	static const char *const field[T_COUNT] = {
	    NULL, "latency_s", "area_mm2", "energy_breakdown_j.dynamic", "energy_breakdown_j.leakage"};
	double x[T_COUNT] = {acc, f->lat, f->area, f->dyn, f->leak}, term[T_COUNT];

	term[T_ACC] = weight[T_ACC] * acc;
	*p = term[T_ACC];
	for (int t = T_LAT; t < T_COUNT; t++) {
		char a[64], b[64];
		term[t] = weight[t] * (1 - x[t] / maximum[t]);
		if (!isfinite(term[t]))
			return tc_error_set(
			    err, "field '%s.%s': term '%s' is not finite (%s over the maximum %s)", sim_path,
			    field[t], term_names[t], num(a, x[t]), num(b, maximum[t]));
		*p += term[t];
	}
	if (!isfinite(*p))
		return tc_error_set(err, "field '%s': the performance is not finite", sim_path);
	jw_begin(w, NULL);
	jw_number(w, "performance", *p);
	jw_bool(w, "feasible", 1);
	jw_begin(w, "terms");
	for (int t = 0; t < T_COUNT; t++)
		jw_number(w, term_names[t], term[t]);
	jw_end(w);
	jw_end(w);
	return 0;
}

/* The score of a record that is not scored by the formula: failed, infeasible, or with the
 * violation v of its constraints when over is set. */
static void
infeasible_score(struct jsonl_out *w, double p, int failed, const char *reason, int over, double v)
{
	jw_begin(w, NULL);
	jw_number(w, "performance", p);
	jw_bool(w, "feasible", 0);
	if (failed)
		jw_bool(w, "failed", 1);
	jw_string(w, "reason", reason);
	if (over)
		jw_number(w, "violation", v);
	jw_end(w);
}

/*
 * The score of rec as JSON text in w (emptied first), counted in t; the performance in *p when
 * the record is scored by the formula. Returns 1 for such a record, 0 for one scored -1 or below,
 * -1 with err naming the field (no position) for bad input.
 */
static int
score_record(struct jsonl_out *w, const json_t *rec, struct tally *t, double *p, struct tc_error *err)
{
	const json_t *sim, *v;
	struct figures f;
	char reason[TC_ERROR_MAX];
	double acc, viol;
	int broken;

	w->len = 0;
	w->depth = w->err = 0;
	if (json_object_get(rec, "score"))
		return tc_error_set(err, "field 'score': the record has one already "
		                         "(remove it to score again: jq -c 'del(.score)')");
	if ((v = json_object_get(rec, "error"))) {
		if (!json_is_string(v))
			return tc_error_set(err, "field 'error': expected a string, got %s", json_kind(v));
		infeasible_score(w, -1, 1, json_string_value(v), 0, 0);
		t->failed++;
		return 0;
	}
	if (!(sim = json_path_get(rec, sim_path)))
		return tc_error_set(
		    err, "missing field '%s' (run tc-sim first, or name its object with --sim)", sim_path);
	if (!json_is_object(sim))
		return tc_error_set(err, "field '%s': expected an object, got %s", sim_path, json_kind(sim));
	if ((v = json_object_get(sim, "feasible")) && !json_is_boolean(v))
		return tc_error_set(err, "field '%s.feasible': expected true or false, got %s", sim_path,
		                    json_kind(v));
	if (json_is_false(v)) {
		const json_t *r = json_object_get(sim, "reason");
		if (r && !json_is_string(r))
			return tc_error_set(err, "field '%s.reason': expected a string, got %s", sim_path,
			                    json_kind(r));
		infeasible_score(w, -1, 0, r ? json_string_value(r) : "the simulation is infeasible", 0, 0);
		t->infeasible++;
		return 0;
	}
	if (read_figures(&f, sim, err) < 0)
		return -1;
	if ((broken = violation(&viol, &f, reason, sizeof reason, err)) < 0)
		return -1;
	if (broken) {
		infeasible_score(w, -1 - viol, 0, reason, 1, viol);
		t->over++;
		return 0;
	}
	if (read_accuracy(&acc, rec, err) < 0 || performance(w, acc, &f, p, err) < 0)
		return -1;
	t->scored++;
	return 1;
}

/* Score every record of path, appending the output lines to *buf. */
static void
score_file(const char *path, char **buf, size_t *len, size_t *cap, struct tally *t)
{
	static struct jsonl_out w;
	struct jsonl_reader r;
	struct tc_error err;
	const char *line;
	size_t n;
	int rc;

	if (jsonl_open(&r, path, &err) < 0)
		die("%s", err.msg);
	while ((rc = jsonl_next_line(&r, &line, &n, &err)) > 0) {
		json_t *rec;
		double p = 0;
		int scored;
		if (jsonl_parse(r.name, r.line, line, n, &rec, &err) < 0)
			die("%s", err.msg);
		if ((scored = score_record(&w, rec, t, &p, &err)) < 0)
			die("%s:%ld: %s", r.name, r.line, err.msg);
		if (w.err || jsonl_append_text(buf, len, cap, line, n, "score", w.p, w.len) < 0)
			die("%s:%ld: the score cannot be encoded", r.name, r.line);
		if (scored && (t->scored == 1 || p > t->best)) {
			t->best = p;
			snprintf(t->best_at, sizeof t->best_at, "%s:%ld", r.name, r.line);
		}
		t->records++;
		json_decref(rec);
	}
	if (rc < 0)
		die("%s", err.msg);
	jsonl_close(&r);
}

static void
summary(const struct tally *t)
{
	char best[TC_ERROR_MAX + 64] = "";

	if (t->scored)
		snprintf(best, sizeof best, " (best %.6g at %s)", t->best, t->best_at);
	warn("%ld record%s: %ld scored%s, %ld infeasible, %ld over a limit, %ld failed", t->records,
	     t->records == 1 ? "" : "s", t->scored, best, t->infeasible, t->over, t->failed);
}

int
main(int argc, char **argv)
{
	enum {
		OPT_WEIGHTS = 256,
		OPT_MAXIMA,
		OPT_CONFIG,
		OPT_MAX_AREA,
		OPT_MAX_LAT,
		OPT_MAX_ENERGY,
		OPT_SIM,
		OPT_ACC,
		OPT_VERSION
	};
	static const struct option longopts[] = {{"weights", required_argument, NULL, OPT_WEIGHTS},
	                                         {"maxima", required_argument, NULL, OPT_MAXIMA},
	                                         {"config", required_argument, NULL, OPT_CONFIG},
	                                         {"max-area", required_argument, NULL, OPT_MAX_AREA},
	                                         {"max-latency", required_argument, NULL, OPT_MAX_LAT},
	                                         {"max-energy", required_argument, NULL, OPT_MAX_ENERGY},
	                                         {"sim", required_argument, NULL, OPT_SIM},
	                                         {"accuracy", required_argument, NULL, OPT_ACC},
	                                         {"quiet", no_argument, NULL, 'q'},
	                                         {"output", required_argument, NULL, 'o'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {"version", no_argument, NULL, OPT_VERSION},
	                                         {NULL, 0, NULL, 0}};
	struct tally t = {0};
	struct tc_error err;
	struct afile af;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	double sum = 0;
	int c;

	tc_setprogname(argv[0]);
	/* options take effect in order, so those after --config override it */
	while ((c = getopt_long(argc, argv, "qo:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_WEIGHTS:
			parse_terms(optarg, "--weights", weight, 0);
			break;
		case OPT_MAXIMA:
			parse_terms(optarg, "--maxima", maximum, 1);
			break;
		case OPT_CONFIG:
			load_config(optarg);
			break;
		case OPT_MAX_AREA:
		case OPT_MAX_LAT:
		case OPT_MAX_ENERGY:
			limit[c - OPT_MAX_AREA] = parse_limit(optarg, limit_opts[c - OPT_MAX_AREA]);
			break;
		case OPT_SIM:
			sim_path = parse_path(optarg, "--sim");
			break;
		case OPT_ACC:
			acc_path = parse_path(optarg, "--accuracy");
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
			printf("tc-score (transcode) %s\n", TC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	for (int i = 0; i < T_COUNT; i++)
		sum += weight[i];
	if (!quiet && fabs(sum - 1) > 1e-9)
		warn("warning: the weights sum to %.9g, not 1: the performance is not a convex combination",
		     sum);
	for (int i = optind; i == optind || i < argc; i++)
		score_file(i < argc ? argv[i] : "-", &buf, &len, &cap, &t);
	if (t.records == 0)
		die("%s: no records", optind == argc ? "<stdin>" : argv[argc - 1]);
	/* every record is scored before any is written: bad input leaves no output */
	if (afile_open(&af, out_path, &err) < 0)
		die("%s", err.msg);
	if (fwrite(buf, 1, len, af.f) != len) {
		afile_abort(&af);
		die("write error: %s", strerror(errno));
	}
	if (afile_commit(&af, &err) < 0)
		die("%s", err.msg);
	if (!quiet)
		summary(&t);
	close_stdout();
	free(buf);
	return 0;
}
