/*
 * tc-pareto: keep the non-dominated records of a stream, or rank them all by non-dominated
 * sorting, on any objectives named by dotted paths; optionally report the hypervolume of the
 * front and draw it with gnuplot. It ends most pipelines: tc-sample | tc-sim | tc-pareto.
 *
 * Records pass through byte for byte in front mode; with --rank each gains "pareto": {"rank": r}.
 * The whole input is read before anything is written, so bad input writes nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "objective.h"
#include "pareto.h"
#include "plot.h"

struct input {
	char **line;      /* (n) each record's text as read, trailing blanks removed */
	char *own;        /* (n) whether the record already has a "pareto" member */
	char *infeasible; /* (n) a stage marked it "feasible": false: it takes no part */
	size_t ninfeasible;
	double *val; /* (n, m) objective values as stored */
	double *min; /* (n, m) the same, negated where maximised */
	size_t n, cap, vcap, mcap;
};

static struct objective *obj;
static int nobj;
static int rank_mode, want_hv;
static const char *ref_opt, *summary_path, *plot_path, *out_path = "-";

static void
usage(FILE *f)
{
	fprintf(f, "Usage: tc-pareto --objectives PATH[:min|max],... [--rank] [--hypervolume] [--ref V,...]\n"
	           "                 [--summary FILE] [--plot FILE.png|FILE.svg] [-o FILE] [FILE...]\n"
	           "Keep the non-dominated records (tc-records(5)) of FILEs or standard input.\n"
	           "\n"
	           "  -O, --objectives LIST  dotted field paths, each :min (default) or :max\n"
	           "  -r, --rank             write every record with pareto.rank (0 = non-dominated)\n"
	           "  -H, --hypervolume      report the front's hypervolume (on stderr, or in --summary)\n"
	           "      --ref V,...        hypervolume reference point, one value per objective\n"
	           "                         (default: the worst value plus 10%% of the range)\n"
	           "      --summary FILE     write the summary as JSON to FILE instead of stderr\n"
	           "      --plot FILE        draw the front (first two objectives, a third as colour)\n"
	           "  -o, --output FILE      write records to FILE atomically instead of stdout\n"
	           "  -h, --help             this help\n"
	           "      --version          the version\n");
}

/* A record that some stage marked infeasible ("sim": {"feasible": false, ...}). */
static int
infeasible(const json_t *rec)
{
	const char *key;
	json_t *v;

	json_object_foreach ((json_t *)rec, key, v)
		if (json_is_object(v) && json_is_false(json_object_get(v, "feasible")))
			return 1;
	return 0;
}

static void
input_release(struct input *in)
{
	for (size_t i = 0; i < in->n; i++)
		free(in->line[i]);
	free(in->line);
	free(in->own);
	free(in->infeasible);
	free(in->val);
	free(in->min);
}

static void
read_input(struct input *in, const char *path)
{
	struct jsonl_reader r;
	struct tc_error err;
	json_t *rec;
	int rc;

	if (jsonl_open(&r, path, &err) < 0)
		die("%s", err.msg);
	while ((rc = jsonl_read(&r, &rec, &err)) > 0) {
		size_t k = in->n * (size_t)nobj;
		in->line = egrow(in->line, &in->cap, in->n + 1, sizeof *in->line);
		in->own = erealloc(in->own, in->cap);
		in->infeasible = erealloc(in->infeasible, in->cap);
		in->val = egrow(in->val, &in->vcap, k + (size_t)nobj, sizeof *in->val);
		in->min = egrow(in->min, &in->mcap, k + (size_t)nobj, sizeof *in->min);
		in->infeasible[in->n] = infeasible(rec);
		if (in->infeasible[in->n]) {
			memset(in->val + k, 0, sizeof *in->val * (size_t)nobj);
			in->ninfeasible++;
		} else if (objectives_get(in->val + k, obj, nobj, rec, &err) < 0) {
			tc_error_prefix(&err, "%s:%ld", r.name, r.line);
			die("%s", err.msg);
		}
		for (int j = 0; j < nobj; j++)
			in->min[k + j] = obj[j].maximize ? -in->val[k + j] : in->val[k + j];
		in->own[in->n] = json_object_get(rec, "pareto") != NULL;
		in->line[in->n++] = estrdup(r.buf);
		json_decref(rec);
	}
	if (rc < 0)
		die("%s", err.msg);
	jsonl_close(&r);
}

/*
 * The reference point in minimised form: --ref (given in the objectives' own directions), or the
 * worst value plus 10% of the range over all records (10% of the value, or 1, when the range is 0).
 */
static double *
parse_ref(const char *s)
{
	char *copy = estrdup(s), *save = NULL, *tok = strtok_r(copy, ",", &save);
	double *ref = emalloc(sizeof *ref * (size_t)nobj);

	for (int j = 0; j < nobj; j++, tok = strtok_r(NULL, ",", &save)) {
		if (!tok)
			usage_die("option '--ref': expected %d values, one per objective", nobj);
		ref[j] = eparse_double(tok, "--ref", -HUGE_VAL, HUGE_VAL);
		ref[j] = obj[j].maximize ? -ref[j] : ref[j];
	}
	if (tok)
		usage_die("option '--ref': expected %d values, one per objective", nobj);
	free(copy);
	return ref;
}

static void
default_reference(double *ref, const struct input *in)
{
	for (int j = 0; j < nobj; j++) {
		double lo = HUGE_VAL, hi = -HUGE_VAL, d;
		for (size_t i = 0; i < in->n; i++) {
			double v = in->min[i * (size_t)nobj + j];
			if (in->infeasible[i])
				continue;
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
		}
		d = hi > lo ? 0.1 * (hi - lo) : hi != 0 ? 0.1 * fabs(hi) : 1;
		ref[j] = hi + d;
	}
}

static json_t *
summary(const struct input *in, const int *rank, size_t front, const double *given_ref)
{
	json_t *s = json_object(), *names = json_array();
	int fronts = 0;

	for (int j = 0; j < nobj; j++)
		json_array_append_new(names, json_string(objective_name(&obj[j])));
	json_object_set_new(s, "objectives", names);
	json_object_set_new(s, "records", json_integer((json_int_t)in->n));
	json_object_set_new(s, "infeasible", json_integer((json_int_t)in->ninfeasible));
	json_object_set_new(s, "front", json_integer((json_int_t)front));
	for (size_t i = 0; i < in->n; i++)
		fronts = rank[i] + 1 > fronts ? rank[i] + 1 : fronts;
	json_object_set_new(s, "fronts", json_integer(fronts));
	if (want_hv) {
		double *ref = emalloc(sizeof *ref * (size_t)nobj), hv;
		json_t *jref = json_array();
		if (given_ref)
			memcpy(ref, given_ref, sizeof *ref * (size_t)nobj);
		else
			default_reference(ref, in);
		for (int j = 0; j < nobj; j++)
			if (!isfinite(ref[j]))
				die("objective '%s': the default reference point is not finite (the values "
				    "span more than a double holds); give --ref",
				    obj[j].path);
		{
			double *v = emalloc(sizeof *v * ((in->n - in->ninfeasible) * (size_t)nobj + 1));
			size_t k = 0;
			for (size_t i = 0; i < in->n; i++)
				if (!in->infeasible[i])
					memcpy(v + (k++) * (size_t)nobj, in->min + i * (size_t)nobj,
					       sizeof *v * (size_t)nobj);
			if (pareto_hypervolume(&hv, v, k, nobj, ref) < 0)
				die("out of memory computing the hypervolume");
			if (!isfinite(hv))
				die("the hypervolume is not finite (the front spans more than a double "
				    "holds); give a nearer --ref or rescale the objectives");
			free(v);
		}
		for (int j = 0; j < nobj; j++)
			json_array_append_new(jref, json_number(obj[j].maximize ? -ref[j] : ref[j]));
		json_object_set_new(s, "hypervolume", json_number(hv));
		json_object_set_new(s, "ref", jref);
		free(ref);
	}
	return s;
}

static void
write_summary(json_t *s)
{
	struct tc_error err;
	struct afile af;

	if (!summary_path) {
		if (jsonl_write(stderr, s) < 0)
			die("write error on stderr");
		return;
	}
	if (afile_open(&af, summary_path, &err) < 0)
		die("%s", err.msg);
	if (jsonl_write(af.f, s) < 0) {
		afile_abort(&af);
		die("write error on '%s': %s", summary_path, strerror(errno));
	}
	if (afile_commit(&af, &err) < 0)
		die("%s", err.msg);
}

/* A logarithmic axis when every value is positive and they span more than two decades. */
static int
wants_log(const struct input *in, int j, const int *rank)
{
	double lo = HUGE_VAL, hi = 0;

	for (size_t i = 0; i < in->n; i++) {
		double v = in->val[i * (size_t)nobj + j];
		if (rank[i] < 0)
			continue;
		if (v <= 0)
			return 0;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	return hi > 100 * lo;
}

static int cmp_x;
static const double *sort_val;

static int
by_x(const void *a, const void *b)
{
	double x = sort_val[*(const size_t *)a * (size_t)nobj + (size_t)cmp_x];
	double y = sort_val[*(const size_t *)b * (size_t)nobj + (size_t)cmp_x];

	return (x > y) - (x < y);
}

static void
datablock(FILE *gp, const char *name, const struct input *in, const size_t *idx, size_t k)
{
	fprintf(gp, "$%s << EOD\n", name);
	for (size_t t = 0; t < k; t++) {
		const double *v = in->val + idx[t] * (size_t)nobj;
		fprintf(gp, "%.17g %.17g %.17g\n", v[0], nobj > 1 ? v[1] : 0.0, nobj > 2 ? v[2] : 0.0);
	}
	fputs("EOD\n", gp);
}

static void
draw(const struct input *in, const int *rank)
{
	size_t *all = emalloc(sizeof *all * (in->n + 1)), *front = emalloc(sizeof *front * (in->n + 1));
	size_t k = 0, na = 0;
	struct tc_error err;
	struct plot p;
	FILE *gp;

	if (nobj < 2)
		usage_die("option '--plot': needs at least two objectives");
	for (size_t i = 0; i < in->n; i++) {
		if (rank[i] >= 0)
			all[na++] = i;
		if (rank[i] == 0)
			front[k++] = i;
	}
	sort_val = in->val;
	cmp_x = 0;
	qsort(front, k, sizeof *front, by_x);
	if (!(gp = plot_open(&p, plot_path, 900, 650, &err)))
		die("%s", err.msg);
	fputs("set grid\nset key outside bottom center horizontal\nset title 'Pareto front'\nset xlabel ",
	      gp);
	plot_quote(gp, objective_name(&obj[0]));
	fputs("\nset ylabel ", gp);
	plot_quote(gp, objective_name(&obj[1]));
	fputc('\n', gp);
	if (wants_log(in, 0, rank))
		fputs("set logscale x\n", gp);
	if (wants_log(in, 1, rank))
		fputs("set logscale y\n", gp);
	if (nobj > 2) {
		fputs("set palette rgbformulae 33,13,10\nset cblabel ", gp);
		plot_quote(gp, objective_name(&obj[2]));
		fputc('\n', gp);
	}
	datablock(gp, "all", in, all, na);
	datablock(gp, "front", in, front, k);
	fprintf(gp, "plot $all using 1:2 with points pt 7 ps 0.4 lc rgb '#c0c0c0' title 'all (%zu)', \\\n",
	        in->n);
	/* With two objectives the front is a staircase: horizontal first when x is minimised. */
	if (nobj == 2)
		fprintf(gp, "     $front using 1:2 with %s lw 1 lc rgb '#1f77b4' notitle, \\\n",
		        obj[0].maximize ? "fsteps" : "steps");
	if (nobj > 2)
		fprintf(gp,
		        "     $front using 1:2:3 with points pt 7 ps 1.2 lc palette title 'front (%zu)'\n",
		        k);
	else
		fprintf(
		    gp,
		    "     $front using 1:2 with points pt 7 ps 1.2 lc rgb '#1f77b4' title 'front (%zu)'\n",
		    k);
	if (plot_close(&p, &err) < 0)
		die("%s", err.msg);
	free(all);
	free(front);
}

/*
 * Write record i with "pareto": {"rank": r} added. The key is appended to the record's own text,
 * so every other byte passes through as read; a record that already has a "pareto" member is
 * re-encoded with the member replaced.
 */
static int
write_ranked(FILE *f, const char *line, int own, int rank)
{
	size_t n = strlen(line);
	json_t *rec, *p;
	int rc;

	while (n > 0 && strchr(" \t\r", line[n - 1]))
		n--;
	if (!own) {
		size_t k = n - 1;
		while (k > 0 && strchr(" \t\r", line[k - 1]))
			k--;
		if (fwrite(line, 1, n - 1, f) != n - 1)
			return -1;
		if (rank < 0)
			return fprintf(f, "%s\"pareto\":{\"rank\":null}}\n", line[k - 1] == '{' ? "" : ",") <
			               0
			           ? -1
			           : 0;
		return fprintf(f, "%s\"pareto\":{\"rank\":%d}}\n", line[k - 1] == '{' ? "" : ",", rank) < 0
		           ? -1
		           : 0;
	}
	rec = json_loadb(line, n, 0, NULL);
	p = json_object();
	json_object_set_new(p, "rank", rank < 0 ? json_null() : json_integer(rank));
	json_object_set_new(rec, "pareto", p);
	rc = jsonl_write(f, rec);
	json_decref(rec);
	return rc;
}

/* Write the records to af and flush them; the caller commits af once the summary and the plot are
 * written, so that a failure of either leaves no -o file. */
static void
write_records(struct afile *af, const struct input *in, const int *rank)
{
	int rc = 0, e;

	for (size_t i = 0; i < in->n; i++) {
		if (!rank_mode) {
			if (rank[i] != 0)
				continue;
			rc = fputs(in->line[i], af->f) < 0 || fputc('\n', af->f) == EOF ? -1 : 0;
		} else {
			rc = write_ranked(af->f, in->line[i], in->own[i], rank[i]);
		}
		if (rc < 0)
			break;
	}
	if (rc == 0 && !ferror(af->f) && fflush(af->f) == 0)
		return;
	e = errno ? errno : EIO;
	afile_abort(af);
	if (strcmp(out_path, "-") == 0)
		die("write error: %s", strerror(e));
	die("write error on '%s': %s", out_path, strerror(e));
}

/* Rank the feasible records; infeasible ones get rank -1. */
static void
rank_feasible(int *rank, const struct input *in)
{
	size_t nf = in->n - in->ninfeasible, k = 0;
	double *v = emalloc(sizeof *v * (nf * (size_t)nobj + 1));
	int *rk = emalloc(sizeof *rk * (nf + 1));

	for (size_t i = 0; i < in->n; i++)
		if (!in->infeasible[i])
			memcpy(v + (k++) * (size_t)nobj, in->min + i * (size_t)nobj,
			       sizeof *v * (size_t)nobj);
	if (pareto_rank(rk, v, nf, nobj) < 0)
		die("out of memory ranking %zu records", nf);
	k = 0;
	for (size_t i = 0; i < in->n; i++)
		rank[i] = in->infeasible[i] ? -1 : rk[k++];
	free(v);
	free(rk);
}

int
main(int argc, char **argv)
{
	enum { OPT_REF = 256, OPT_SUMMARY, OPT_PLOT, OPT_VERSION };
	static const struct option longopts[] = {
	    {"objectives", required_argument, NULL, 'O'},      {"rank", no_argument, NULL, 'r'},
	    {"hypervolume", no_argument, NULL, 'H'},           {"ref", required_argument, NULL, OPT_REF},
	    {"summary", required_argument, NULL, OPT_SUMMARY}, {"plot", required_argument, NULL, OPT_PLOT},
	    {"output", required_argument, NULL, 'o'},          {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},       {NULL, 0, NULL, 0}};
	const char *spec = NULL;
	struct input in = {0};
	struct tc_error err;
	struct afile af;
	double *ref = NULL;
	json_t *sum = NULL;
	size_t front = 0;
	int c, *rank;

	tc_setprogname(argv[0]);
	while ((c = getopt_long(argc, argv, "O:rHo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'O':
			spec = optarg;
			break;
		case 'r':
			rank_mode = 1;
			break;
		case 'H':
			want_hv = 1;
			break;
		case OPT_REF:
			ref_opt = optarg;
			want_hv = 1;
			break;
		case OPT_SUMMARY:
			summary_path = optarg;
			break;
		case OPT_PLOT:
			plot_path = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("tc-pareto (transcode) %s\n", TC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!spec)
		usage_die("missing --objectives");
	if (objectives_parse(&obj, &nobj, spec, &err) < 0)
		usage_die("option '--objectives': %s", err.msg);
	if (plot_path && nobj < 2)
		usage_die("option '--plot': needs at least two objectives");
	if (plot_path && !strstr(plot_path, ".png") && !strstr(plot_path, ".svg"))
		usage_die("option '--plot': expected a .png or .svg file name, got '%s'", plot_path);
	if (ref_opt)
		ref = parse_ref(ref_opt);
	if (optind == argc)
		read_input(&in, "-");
	for (int i = optind; i < argc; i++)
		read_input(&in, argv[i]);
	if (in.n == 0)
		die("%s: no records", optind == argc ? "<stdin>" : argv[argc - 1]);
	rank = emalloc(sizeof *rank * in.n);
	rank_feasible(rank, &in);
	for (size_t i = 0; i < in.n; i++)
		front += rank[i] == 0;
	if (want_hv || summary_path)
		sum = summary(&in, rank, front, ref);
	if (afile_open(&af, out_path, &err) < 0)
		die("%s", err.msg);
	write_records(&af, &in, rank);
	if (sum)
		write_summary(sum);
	if (plot_path)
		draw(&in, rank);
	if (afile_commit(&af, &err) < 0)
		die("%s", err.msg);
	close_stdout();
	json_decref(sum);
	free(ref);
	free(rank);
	input_release(&in);
	objectives_free(obj, nobj);
	return 0;
}
