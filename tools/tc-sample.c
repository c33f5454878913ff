/*
 * tc-sample: emit candidate records (tc-records(5)) drawn from the transformer space, the
 * accelerator space or both: random or Latin hypercube samples, every accelerator of a space in
 * order, or the reference presets (BERT-Tiny/Mini/Base, AccelTran-Edge/Server). It is the source
 * of every pipeline: tc-sample | tc-sim | tc-pareto.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "nsga2.h"
#include "objective.h"
#include "propose.h"
#include "sample.h"
#include "space.h"

#define MAX_PRESETS 64

struct preset {
	char *name;
	int has_model, has_accel;
	struct model model;
	struct accel accel;
};

static const char *space_opt;
static const char *model_space_file, *accel_space_file;
static const char *out_path = "-";
static long long nsamples = -1;
static unsigned long long seed = 1;
static int method = SAMPLE_RANDOM;
static int grid, emit_embedding, print_size;
static int nthreads = 2;
static struct preset presets[MAX_PRESETS];
static int npresets;

static struct model_space mspace;
static struct accel_space aspace;

/* --propose: candidates whose ids are in neither the history nor the proposals so far */
static int proposing;
static const char *history_path;
struct idset {
	uint64_t *key; /* 0: empty (an id of 0 is stored as 1: a clash of 1 in 2^64) */
	size_t cap, n;
};
static struct idset seen;
static uint64_t nhistory;

/* --propose boshcode|nsga2: methods guided by the history's results */
enum { GUIDE_NONE, GUIDE_BOSHCODE, GUIDE_NSGA2 };
static int guided;
static const char *objectives_spec = "score.performance:max";
static int ninit = 8;
static struct bo_params bo;
static json_t **hist;
static long *hist_line;
static size_t nhist;

static void
usage(FILE *f)
{
	fprintf(
	    f, "Usage: tc-sample [--space model|accel|pair] [-n N] [--seed S] [--method random|lhs]\n"
	       "                 [--grid] [--propose random|lhs|boshcode|nsga2 --history FILE]\n"
	       "                 [--objectives LIST] [--init N] [--starts K] [--pool N] [--epochs E]\n"
	       "                 [--uncertainty P] [--diversity P] [--space-file FILE]...\n"
	       "                 [--preset NAME]... [--fix-accel FILE | --fix-model FILE]\n"
	       "                 [--emit-embedding] [--size] [--threads N] [-o FILE]\n"
	       "Emit candidate records (tc-records(5)) from the design spaces.\n"
	       "\n"
	       "  -s, --space WHAT      sample models, accelerators or pairs (default pair)\n"
	       "  -n, --count N         number of samples (default 1)\n"
	       "      --seed S          random seed, recorded in every record (default 1)\n"
	       "  -m, --method M        random (independent uniform) or lhs (Latin hypercube)\n"
	       "  -g, --grid            every accelerator of the space, in order\n"
	       "      --propose M       N new candidates by method M (random, lhs, boshcode, nsga2): none\n"
	       "      --history FILE      already in the records of FILE (by id), nor twice\n"
	       "      --objectives LIST what boshcode and nsga2 improve (default score.performance:max)\n"
	       "      --init N          history records they need before taking over (default 8)\n"
	       "      --starts K        boshcode: GOBI starting points (default 4)\n"
	       "      --pool N          boshcode: random candidates scored (default 1000)\n"
	       "      --epochs E        boshcode: most epochs per surrogate network (default 200)\n"
	       "      --uncertainty P   boshcode: share of queries by epistemic uncertainty (default 0)\n"
	       "      --diversity P     boshcode: share of random queries (default 0)\n"
	       "  -f, --space-file F    a model or accelerator space file (default: flexibert2, acceltran)\n"
	       "  -p, --preset NAME     bert-tiny, bert-mini, bert-base, acceltran-edge, acceltran-server,\n"
	       "                        or a JSON file with \"model\" and/or \"accel\"; fixes that side\n"
	       "      --fix-accel FILE  fix the accelerator of FILE's first record (--fix-model: its model)\n"
	       "  -e, --emit-embedding  add the integer encodings under \"embedding\"\n"
	       "      --size            print the number of points of each space and exit\n"
	       "  -o, --output FILE     write to FILE atomically instead of stdout\n"
	       "      --threads N       format records on N threads (default 2); output is the same\n"
	       "  -h, --help            this help\n"
	       "      --version         the version\n");
}

/* --fix-accel FILE, --fix-model FILE: the side of the first record of FILE, as a preset. */
static void
load_fixed(struct preset *p, const char *path, int accel_side)
{
	struct jsonl_reader r;
	struct tc_error err;
	json_t *rec, *v;
	const char *key = accel_side ? "accel" : "model";
	int rc;

	if (jsonl_open(&r, path, &err) < 0)
		die("%s", err.msg);
	if ((rc = jsonl_read(&r, &rec, &err)) < 0)
		die("%s", err.msg);
	if (rc == 0)
		die("%s: no records", r.name);
	if (!(v = json_object_get(rec, key)))
		die("%s:%ld: missing field '%s'", r.name, r.line, key);
	if (accel_side ? accel_from_json(&p->accel, v, &aspace, &err) < 0
	               : model_from_json(&p->model, v, &mspace, &err) < 0)
		die("%s:%ld: %s", r.name, r.line, err.msg);
	p->name = estrdup(path);
	p->has_accel = accel_side;
	p->has_model = !accel_side;
	json_decref(rec);
	jsonl_close(&r);
}

static char *
preset_path(const char *name)
{
	char *rel, *path;

	if (strchr(name, '/') || strstr(name, ".json"))
		return estrdup(name);
	rel = esprintf("preset/%s.json", name);
	path = tc_share_path(rel);
	free(rel);
	return path;
}

static void
load_preset(struct preset *p, const char *name)
{
	struct tc_error err;
	char *path = preset_path(name);
	json_error_t je;
	json_t *root, *m, *a;
	const char *key;
	json_t *v;

	if (tc_check_input(path, &err) < 0)
		die("%s", err.msg);
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root && je.line < 1)
		usage_die("unknown preset '%s' (no file '%s')", name, path);
	if (!root)
		die("%s:%d: malformed JSON: %s", path, je.line, je.text);
	if (!json_is_object(root))
		die("%s: expected a JSON object", path);
	json_object_foreach (root, key, v)
		if (strcmp(key, "model") && strcmp(key, "accel") && strcmp(key, "description"))
			die("%s: %s: unknown key", path, key);
	m = json_object_get(root, "model");
	a = json_object_get(root, "accel");
	if (!m && !a)
		die("%s: a preset needs \"model\" or \"accel\"", path);
	p->name = estrdup(name);
	if (m && model_from_json(&p->model, m, &mspace, &err) < 0)
		die("%s: %s", path, err.msg);
	if (a && accel_from_json(&p->accel, a, &aspace, &err) < 0)
		die("%s: %s", path, err.msg);
	p->has_model = m != NULL;
	p->has_accel = a != NULL;
	json_decref(root);
	free(path);
}

static void
load_spaces(void)
{
	struct tc_error err;
	char *mpath = model_space_file ? estrdup(model_space_file) : tc_share_path("space/flexibert2.json");
	char *apath = accel_space_file ? estrdup(accel_space_file) : tc_share_path("space/acceltran.json");

	if (model_space_load(&mspace, mpath, &err) < 0 || accel_space_load(&aspace, apath, &err) < 0)
		die("%s", err.msg);
	free(mpath);
	free(apath);
}

static void
add_space_file(const char *path)
{
	struct tc_error err;

	if (tc_check_input(path, &err) < 0 ||
	    space_file_route(path, &model_space_file, &accel_space_file, &err) < 0)
		die("%s", err.msg);
}

static json_t *
preset_names(const struct preset *pm, const struct preset *pa)
{
	json_t *names = json_array();

	if (pm)
		json_array_append_new(names, json_string(pm->name));
	if (pa && pa != pm)
		json_array_append_new(names, json_string(pa->name));
	return names;
}

static int
idset_add(struct idset *s, uint64_t id) /* 1 if new */
{
	size_t i;

	id = id ? id : 1;
	if (2 * (s->n + 1) > s->cap) {
		struct idset t = {ecalloc(s->cap ? 2 * s->cap : 1024, sizeof *t.key),
		                  s->cap ? 2 * s->cap : 1024, 0};
		for (size_t k = 0; k < s->cap; k++)
			if (s->key[k])
				idset_add(&t, s->key[k]);
		free(s->key);
		*s = t;
	}
	for (i = tc_hash_final(id) & (s->cap - 1); s->key[i]; i = (i + 1) & (s->cap - 1))
		if (s->key[i] == id)
			return 0;
	s->key[i] = id;
	s->n++;
	return 1;
}

static int
idset_has(const struct idset *s, uint64_t id)
{
	id = id ? id : 1;
	if (!s->cap)
		return 0;
	for (size_t i = tc_hash_final(id) & (s->cap - 1); s->key[i]; i = (i + 1) & (s->cap - 1))
		if (s->key[i] == id)
			return 1;
	return 0;
}

static uint64_t
id_value(const char *hex)
{
	return strtoull(hex, NULL, 16);
}

/* The ids of the history's records into seen. */
static void
load_history(const char *path)
{
	struct jsonl_reader r;
	struct tc_error err;
	json_t *rec;
	int rc;

	if (jsonl_open(&r, path, &err) < 0)
		die("%s", err.msg);
	while ((rc = jsonl_read(&r, &rec, &err)) > 0) {
		const char *id;
		size_t len;
		if (json_get_string(rec, "id", &id, &err) < 0)
			die("%s:%ld: %s", r.name, r.line, err.msg);
		len = strlen(id);
		if (len != 16 || strspn(id, "0123456789abcdef") != 16)
			die("%s:%ld: field 'id': expected 16 hexadecimal digits, got '%s'", r.name, r.line,
			    id);
		idset_add(&seen, id_value(id));
		nhistory++;
		if (guided) { /* kept for the guided methods, which read results */
			hist = erealloc(hist, sizeof *hist * (nhist + 1));
			hist_line = erealloc(hist_line, sizeof *hist_line * (nhist + 1));
			hist[nhist] = rec;
			hist_line[nhist++] = r.line;
			continue;
		}
		json_decref(rec);
	}
	if (rc < 0)
		die("%s", err.msg);
	jsonl_close(&r);
}

static json_t *
sample_info(const char *how, const struct preset *pm, const struct preset *pa)
{
	json_t *s = json_object();

	json_object_set_new(s, "method", json_string(how));
	if (strcmp(how, "random") == 0 || strcmp(how, "lhs") == 0)
		json_object_set_new(s, "seed", json_integer((json_int_t)seed));
	if (proposing)
		json_object_set_new(s, "history", json_integer((json_int_t)nhistory));
	if (strcmp(how, "preset") != 0)
		json_object_set_new(s, "index", json_integer(0));
	if (pm || pa)
		json_object_set_new(s, "preset", preset_names(pm, pa));
	return s;
}

/* One thread's reusable record and scratch: the record is built once and updated in place, which
 * keeps --grid above 200,000 records a second per core. */
struct emitter {
	json_t *rec, *jid, *jacc, *jidx, *emb;
	struct model model;
	struct accel accel;
	double *u;
	char *buf;
	size_t len, cap;
};

struct design {
	int sm, sa, dm, da;    /* which sides are sampled, and their coordinate counts */
	const struct model *m; /* fixed sides (or NULL) */
	const struct accel *a;
	struct sampler smp;
};

/* The sides of a design: sm, sa say which are sampled (with dm, da coordinates, none for an
 * enumerated accelerator side), m, a hold the fixed ones. */
static void
design_sides(struct design *d, int sm, int sa, const struct preset *pm, const struct preset *pa,
             int enumerated)
{
	memset(d, 0, sizeof *d);
	d->sm = sm && !pm;
	d->sa = sa && !pa;
	d->dm = d->sm ? model_sample_dim(&mspace) : 0;
	d->da = d->sa && !enumerated ? accel_sample_dim(&aspace) : 0;
	d->m = pm ? &pm->model : NULL;
	d->a = pa ? &pa->accel : NULL;
}

static void
emitter_init(struct emitter *e, const struct design *d, const char *how, const struct preset *pm,
             const struct preset *pa)
{
	json_t *info;

	memset(e, 0, sizeof *e);
	e->u = emalloc(sizeof *e->u * (size_t)(d->dm + d->da + 1));
	e->rec = json_object();
	json_object_set_new(e->rec, "id", e->jid = json_string(""));
	if (d->m || d->sm)
		json_object_set_new(e->rec, "model", d->m ? model_to_json(d->m) : json_null());
	if (d->a || d->sa) {
		accel_grid_point(&e->accel, &aspace, 0); /* any valid point: the values are overwritten */
		e->jacc = accel_to_json(d->a ? d->a : &e->accel);
		json_object_set_new(e->rec, "accel", e->jacc);
	}
	json_object_set_new(e->rec, "sample", info = sample_info(how, pm, pa));
	e->jidx = json_object_get(info, "index");
	if (emit_embedding)
		json_object_set_new(e->rec, "embedding", e->emb = json_object());
}

static void
emitter_release(struct emitter *e)
{
	json_decref(e->rec);
	free(e->u);
	free(e->buf);
}

/* Append record i of the design to e->buf. */
static void
emitter_point(struct emitter *e, const struct design *d, uint64_t i)
{
	const struct model *m = d->sm ? &e->model : d->m;
	const struct accel *a = d->sa ? &e->accel : d->a;
	char id[17];

	sampler_point(&d->smp, i, e->u);
	if (d->sm) {
		model_decode(&e->model, &mspace, e->u);
		json_object_set_new(e->rec, "model", model_to_json(&e->model));
	}
	if (d->sa) {
		if (grid)
			accel_grid_point(&e->accel, &aspace, i);
		else
			accel_decode(&e->accel, &aspace, e->u + d->dm);
		accel_json_update(e->jacc, &e->accel);
	}
	candidate_id(id, m, a);
	json_string_set(e->jid, id);
	if (e->jidx)
		json_integer_set(e->jidx, (json_int_t)i);
	if (e->emb && m)
		json_object_set_new(e->emb, "model", model_encoding_json(m, &mspace));
	if (e->emb && a)
		json_object_set_new(e->emb, "accel", accel_encoding_json(a, &aspace));
	if (jsonl_append(&e->buf, &e->len, &e->cap, e->rec) < 0)
		die("record %llu cannot be encoded", (unsigned long long)i);
}

#define CHUNK 4096

/*
 * Emit n points for one combination of presets (pm, pa may be NULL): the sides in want that no
 * preset fixes are sampled (or enumerated with --grid) with the same design for every
 * combination, so presets are compared on common points. Threads format chunks of records in
 * parallel and write them in index order, so the output does not depend on the thread count.
 */
static void
emit_points(FILE *out, int want_model, int want_accel, const struct preset *pm, const struct preset *pa,
            int sampling, uint64_t n)
{
	const char *how = !sampling ? "preset" : grid ? "grid" : method == SAMPLE_LHS ? "lhs" : "random";
	uint64_t nchunks = (n + CHUNK - 1) / CHUNK;
	struct design d;
	struct tc_error err;
	int failed = 0;

	design_sides(&d, sampling && want_model, sampling && want_accel, pm, pa, grid);
	if (sampler_init(&d.smp, method, n, d.dm + d.da, seed, &err) < 0)
		usage_die("%s", err.msg);
#pragma omp parallel num_threads(nthreads) if (n > CHUNK)
	{
		struct emitter e;
		emitter_init(&e, &d, how, pm, pa);
#pragma omp for ordered schedule(static, 1)
		for (uint64_t c = 0; c < nchunks; c++) {
			int stop;
#pragma omp atomic read
			stop = failed;
			if (stop) /* a write failed (a full disk, a closed pipe): format no more */
				continue;
			e.len = 0;
			for (uint64_t i = c * CHUNK; i < n && i < (c + 1) * CHUNK; i++)
				emitter_point(&e, &d, i);
#pragma omp ordered
			if (!failed && fwrite(e.buf, 1, e.len, out) != e.len) {
				stop = errno ? errno : EIO;
#pragma omp atomic write
				failed = stop;
			}
		}
		emitter_release(&e);
	}
	if (failed)
		die("write error: %s", strerror(failed));
	sampler_release(&d.smp);
}

/*
 * --propose: n candidates not in seen, drawn as emit_points draws them from designs of 4 n + 64
 * points whose seed depends on --seed and the history's size (so each round of a search gets
 * fresh points); at most 8 designs, then fewer candidates and a warning.
 */
static void
propose_points(FILE *out, int want_model, int want_accel, const struct preset *pm, const struct preset *pa,
               uint64_t n)
{
	const char *how = method == SAMPLE_LHS ? "lhs" : "random";
	uint64_t pool = 4 * n + 64, found = 0, base = seed;
	struct design d;
	struct tc_error err;

	design_sides(&d, want_model, want_accel, pm, pa, 0);
	for (int round = 0; round < 8 && found < n; round++) {
		struct emitter e;
		seed = tc_hash_final(base ^
		                     tc_hash_final(nhistory + 0x70726f706f7365ULL * (uint64_t)(round + 1)));
		seed &= (1ULL << 53) - 1; /* records carry it as a JSON integer */
		if (sampler_init(&d.smp, method, pool, d.dm + d.da, seed, &err) < 0)
			usage_die("%s", err.msg);
		emitter_init(&e, &d, how, pm, pa);
		for (uint64_t i = 0; i < pool && found < n; i++) {
			size_t before = e.len;
			emitter_point(&e, &d, i);
			if (idset_add(&seen, id_value(json_string_value(e.jid))))
				found++;
			else
				e.len = before;
		}
		if (fwrite(e.buf, 1, e.len, out) != e.len)
			die("write error: %s", strerror(errno));
		emitter_release(&e);
		sampler_release(&d.smp);
	}
	seed = base;
	if (found < n)
		warn("only %llu new candidates in %d designs of %llu points: the space is nearly exhausted",
		     (unsigned long long)found, 8, (unsigned long long)pool);
}

/* ---- guided proposals ---- */

/* The free sides of a candidate as coordinates of the unit box (model first), and back. */
static void
box_decode(const struct design *b, const double *x, struct model *m, struct accel *a)
{
	if (b->sm)
		model_decode(m, &mspace, x);
	else if (b->m)
		*m = *b->m;
	if (b->sa)
		accel_decode(a, &aspace, x + b->dm);
	else if (b->a)
		*a = *b->a;
}

static uint64_t
box_id(const struct design *b, const struct model *m, const struct accel *a)
{
	char id[17];

	candidate_id(id, b->sm || b->m ? m : NULL, b->sa || b->a ? a : NULL);
	return id_value(id);
}

static void
box_draw(void *ctx, struct rng *r, double *x)
{
	const struct design *b = ctx;

	for (int i = 0; i < b->dm + b->da; i++)
		x[i] = rng_uniform(r);
}

static int
box_snap(void *ctx, double *x, int take)
{
	const struct design *b = ctx;
	struct model m;
	struct accel a;
	uint64_t id;

	box_decode(b, x, &m, &a);
	if (b->sm)
		model_unit_encode(x, &m, &mspace);
	if (b->sa)
		accel_unit_encode(x + b->dm, &a, &aspace);
	id = box_id(b, &m, &a);
	if (idset_has(&seen, id))
		return 0;
	if (take)
		idset_add(&seen, id);
	return 1;
}

/* A record's objective values into v (minimised, transformed later); 0, or 1 for a failed
 * evaluation, which the guided methods leave out. */
static int
record_targets(double *v, const struct objective *o, int m, const json_t *rec, size_t i)
{
	struct tc_error err;
	json_t *feas;

	if (objectives_get(v, o, m, rec, &err) < 0) {
		feas = json_path_get(rec, "sim.feasible");
		if (json_object_get(rec, "error") || json_is_false(feas) ||
		    json_is_false(json_path_get(rec, "score.feasible")))
			return 1;
		die("%s:%ld: %s", history_path, hist_line[i], err.msg);
	}
	for (int j = 0; j < m; j++)
		if (o[j].maximize)
			v[j] = -v[j];
	return 0;
}

static void
emit_guided(FILE *out, const struct design *b, const double *x, const struct bo_pred *pred, int k, int m,
            const char *how, const struct preset *pm, const struct preset *pa)
{
	static const char *const via[] = {"gobi", "pool", "uncertainty", "diversity"};

	for (int i = 0; i < k; i++) {
		struct model mo;
		struct accel ac;
		json_t *rec, *info;
		box_decode(b, x + (size_t)i * (size_t)(b->dm + b->da), &mo, &ac);
		rec = candidate_to_json(b->sm || b->m ? &mo : NULL, b->sa || b->a ? &ac : NULL);
		info = sample_info(how, pm, pa);
		json_object_set_new(info, "seed", json_integer((json_int_t)seed));
		json_integer_set(json_object_get(info, "index"), i);
		if (pred) {
			json_t *pr = json_object(), *mu = json_array(), *ep = json_array(),
			       *al = json_array();
			for (int j = 0; j < m; j++) {
				json_array_append_new(mu, json_number(pred[i].mu[j]));
				json_array_append_new(ep, json_number(pred[i].sep[j]));
				json_array_append_new(al, json_number(pred[i].sal[j]));
			}
			json_object_set_new(pr, "loss", mu);
			json_object_set_new(pr, "epistemic", ep);
			json_object_set_new(pr, "aleatoric", al);
			json_object_set_new(pr, "acquisition", json_number(pred[i].acq));
			json_object_set_new(pr, "via", json_string(via[pred[i].how]));
			json_object_set_new(info, "predicted", pr);
		}
		json_object_set_new(rec, "sample", info);
		if (emit_embedding) {
			json_t *e = json_object();
			if (b->sm || b->m)
				json_object_set_new(e, "model", model_encoding_json(&mo, &mspace));
			if (b->sa || b->a)
				json_object_set_new(e, "accel", accel_encoding_json(&ac, &aspace));
			json_object_set_new(rec, "embedding", e);
		}
		if (jsonl_write(out, rec) < 0)
			die("write error: %s", strerror(errno));
		json_decref(rec);
	}
}

/*
 * --propose boshcode|nsga2: n new candidates from the history's results. Records whose fixed side
 * differs from the preset's, and failed evaluations, inform nothing but are never proposed again.
 * With fewer than --init usable records, Latin hypercube proposals start the search.
 */
static void
guided_points(FILE *out, int want_model, int want_accel, const struct preset *pm, const struct preset *pa,
              uint64_t n)
{
	struct design b;
	struct objective *o;
	struct tc_error err;
	int m, d, used = 0, k = (int)n;
	double *x, *y, *props;
	uint64_t fixed_id = 0;
	struct bo_pred *pred = NULL;

	design_sides(&b, want_model, want_accel, pm, pa, 0);
	d = b.dm + b.da;
	if (d > SG_MAXD)
		die("the search space has %d coordinates; at most %d", d, SG_MAXD);
	if (objectives_parse(&o, &m, objectives_spec, &err) < 0)
		usage_die("option '--objectives': %s", err.msg);
	if (m > BO_MAX_OBJ)
		usage_die("option '--objectives': at most %d objectives", BO_MAX_OBJ);
	if (pm || pa) {
		char id[17];
		candidate_id(id, pm ? &pm->model : NULL, pa ? &pa->accel : NULL);
		fixed_id = id_value(id);
	}
	x = emalloc(sizeof *x * (nhist + 1) * (size_t)(d ? d : 1));
	y = emalloc(sizeof *y * (nhist + 1) * (size_t)m);
	for (size_t i = 0; i < nhist; i++) {
		struct model mo;
		struct accel ac;
		json_t *v;
		if (pm || pa) { /* only records on the fixed side inform the search */
			char id[17];
			struct model fm;
			struct accel fa;
			if (pm && (!(v = json_object_get(hist[i], "model")) ||
			           model_from_json(&fm, v, &mspace, &err) < 0))
				continue;
			if (pa && (!(v = json_object_get(hist[i], "accel")) ||
			           accel_from_json(&fa, v, &aspace, &err) < 0))
				continue;
			candidate_id(id, pm ? &fm : NULL, pa ? &fa : NULL);
			if (id_value(id) != fixed_id)
				continue;
		}
		if (b.sm) {
			if (!(v = json_object_get(hist[i], "model")))
				die("%s:%ld: missing field 'model'", history_path, hist_line[i]);
			if (model_from_json(&mo, v, &mspace, &err) < 0)
				die("%s:%ld: %s", history_path, hist_line[i], err.msg);
			model_unit_encode(x + (size_t)used * (size_t)d, &mo, &mspace);
		}
		if (b.sa) {
			if (!(v = json_object_get(hist[i], "accel")))
				die("%s:%ld: missing field 'accel'", history_path, hist_line[i]);
			if (accel_from_json(&ac, v, &aspace, &err) < 0)
				die("%s:%ld: %s", history_path, hist_line[i], err.msg);
			accel_unit_encode(x + (size_t)used * (size_t)d + b.dm, &ac, &aspace);
		}
		if (record_targets(y + (size_t)used * (size_t)m, o, m, hist[i], i))
			continue;
		used++;
	}
	/* Failed or constraint-violating scores (-1 and below) would squash the rest of the range:
	 * they count as a quarter of the range worse than the worst success. Objectives positive
	 * throughout (latency, energy, area) are searched on a log scale. */
	for (int j = 0; j < m; j++) {
		double lo = INFINITY, hi = -INFINITY;
		int pos = 1;
		for (int i = 0; i < used; i++) {
			double v = y[i * m + j];
			int failed = strcmp(o[j].path, "score.performance") == 0 && v >= 1;
			if (!failed) {
				lo = fmin(lo, v);
				hi = fmax(hi, v);
			}
			pos &= v > 0;
		}
		for (int i = 0; i < used; i++) {
			if (strcmp(o[j].path, "score.performance") == 0 && y[i * m + j] >= 1)
				y[i * m + j] = isfinite(hi) ? hi + 0.25 * (hi > lo ? hi - lo : 1) : 1;
			if (pos)
				y[i * m + j] = log(y[i * m + j]);
		}
	}
	if (used < ninit || used < 2 || d == 0) {
		int keep = method;
		if (d > 0)
			warn("%d usable records in the history, fewer than --init %d: Latin hypercube "
			     "proposals",
			     used, ninit);
		method = SAMPLE_LHS;
		propose_points(out, want_model, want_accel, pm, pa, n);
		method = keep;
		goto done;
	}
	props = emalloc(sizeof *props * (size_t)(4 * k + 1) * (size_t)d);
	if (guided == GUIDE_BOSHCODE) {
		struct bo_space sp = {&b, box_draw, box_snap};
		pred = ecalloc((size_t)k + 1, sizeof *pred);
		k = bo_propose(props, pred, k, x, y, used, m, b.dm, b.da, &bo,
		               tc_hash_final(seed ^ tc_hash_final(nhistory + 0x626f7368ULL)), &sp);
	} else {
		int *levels = emalloc(sizeof *levels * (size_t)d), got = 0;
		double *kids = emalloc(sizeof *kids * (size_t)(4 * k + 1) * (size_t)d);
		struct rng r;
		rng_seed(&r, tc_hash_final(seed ^ tc_hash_final(nhistory + 0x6e736761ULL)));
		if (b.sm)
			model_unit_levels(levels, &mspace);
		if (b.sa)
			accel_unit_levels(levels + b.dm, &aspace);
		for (int i = 0; i < used; i++) /* the operators expect cell centres at nsga2's levels */
			for (int j = 0; j < d; j++)
				x[i * d + j] = (floor(x[i * d + j] * levels[j]) + 0.5) / levels[j];
		if (nsga2_offspring(kids, 4 * k, x, y, NULL, used, d, m, levels, NULL, &r) < 0)
			die("nsga2: bad arguments");
		for (int i = 0; i < 4 * k && got < k; i++)
			if (box_snap(&b, kids + (size_t)i * (size_t)d, 1))
				memcpy(props + (size_t)got++ * (size_t)d, kids + (size_t)i * (size_t)d,
				       sizeof *kids * (size_t)d);
		for (int t = 0; t < 1000 * k && got < k; t++) { /* a crowded space: random new points */
			box_draw(&b, &r, props + (size_t)got * (size_t)d);
			got += box_snap(&b, props + (size_t)got * (size_t)d, 1);
		}
		k = got;
		free(kids);
		free(levels);
	}
	emit_guided(out, &b, props, pred, k, m, guided == GUIDE_BOSHCODE ? "boshcode" : "nsga2", pm, pa);
	if ((uint64_t)k < n)
		warn("only %d new candidates: the space is nearly exhausted", k);
	free(props);
done:
	free(pred);
	free(x);
	free(y);
	objectives_free(o, m);
}

static void
print_sizes(FILE *out)
{
	json_t *r = json_object(), *m = json_object(), *a = json_object();

	json_object_set_new(m, "space", json_string(mspace.name));
	json_object_set_new(m, "size", json_real(model_space_size(&mspace)));
	json_object_set_new(m, "encoding", json_integer(model_encode_dim(&mspace)));
	json_object_set_new(a, "space", json_string(aspace.name));
	json_object_set_new(a, "size", json_integer((json_int_t)accel_space_size(&aspace)));
	json_object_set_new(a, "encoding", json_integer(ACCEL_ENC_DIM));
	json_object_set_new(r, "model", m);
	json_object_set_new(r, "accel", a);
	if (jsonl_write(out, r) < 0)
		die("write error: %s", strerror(errno));
	json_decref(r);
}

static void
run(FILE *out)
{
	int want_model, want_accel, has_pm = 0, has_pa = 0;
	int sampling = proposing || nsamples >= 0 || grid || npresets == 0;
	uint64_t n;

	for (int i = 0; i < npresets; i++) {
		has_pm |= presets[i].has_model;
		has_pa |= presets[i].has_accel;
	}
	if (!space_opt && !sampling) {
		want_model = has_pm;
		want_accel = has_pa;
	} else {
		const char *sp = space_opt ? space_opt : "pair";
		want_model = strcmp(sp, "accel") != 0;
		want_accel = strcmp(sp, "model") != 0;
	}
	if (grid && (!want_accel || has_pa))
		usage_die("--grid enumerates accelerators: use --space accel, or --space pair with a model "
		          "--preset");
	if (grid && want_model && !has_pm)
		usage_die(
		    "--grid enumerates accelerators only: fix the model with --preset, or use --space accel");
	if (sampling && npresets && (!want_model || has_pm) && (!want_accel || has_pa))
		usage_die("nothing to sample: --preset fixes every side of --space %s",
		          space_opt ? space_opt : "pair");
	n = grid ? accel_space_size(&aspace) : sampling ? (uint64_t)(nsamples < 0 ? 1 : nsamples) : 1;

	/* Every combination of a model preset and an accelerator preset (a pair preset fixes both). */
	for (int i = -1; i < npresets; i++) {
		const struct preset *pm = i >= 0 && presets[i].has_model ? &presets[i] : NULL;
		if ((i < 0) != !has_pm || (i >= 0 && !pm))
			continue;
		for (int j = -1; j < npresets; j++) {
			const struct preset *pa = j >= 0 && presets[j].has_accel ? &presets[j] : NULL;
			if ((j < 0) != !has_pa || (j >= 0 && !pa))
				continue;
			if (pm && pa && pm != pa && pm->has_accel)
				continue; /* a pair preset pairs only with itself */
			if (pa && pa != pm && pa->has_model)
				continue;
			if (guided)
				guided_points(out, want_model, want_accel, pm, pa, n);
			else if (proposing)
				propose_points(out, want_model, want_accel, pm, pa, n);
			else
				emit_points(out, want_model, want_accel, pm, pa, sampling, n);
		}
	}
}

int
main(int argc, char **argv)
{
	enum {
		OPT_SEED = 256,
		OPT_SIZE,
		OPT_THREADS,
		OPT_PROPOSE,
		OPT_HISTORY,
		OPT_OBJECTIVES,
		OPT_INIT,
		OPT_STARTS,
		OPT_POOL,
		OPT_UNC,
		OPT_DIV,
		OPT_EPOCHS,
		OPT_FIX_ACCEL,
		OPT_FIX_MODEL,
		OPT_VERSION
	};
	static const struct option longopts[] = {{"space", required_argument, NULL, 's'},
	                                         {"count", required_argument, NULL, 'n'},
	                                         {"seed", required_argument, NULL, OPT_SEED},
	                                         {"method", required_argument, NULL, 'm'},
	                                         {"grid", no_argument, NULL, 'g'},
	                                         {"space-file", required_argument, NULL, 'f'},
	                                         {"preset", required_argument, NULL, 'p'},
	                                         {"emit-embedding", no_argument, NULL, 'e'},
	                                         {"size", no_argument, NULL, OPT_SIZE},
	                                         {"output", required_argument, NULL, 'o'},
	                                         {"threads", required_argument, NULL, OPT_THREADS},
	                                         {"propose", required_argument, NULL, OPT_PROPOSE},
	                                         {"history", required_argument, NULL, OPT_HISTORY},
	                                         {"objectives", required_argument, NULL, OPT_OBJECTIVES},
	                                         {"init", required_argument, NULL, OPT_INIT},
	                                         {"starts", required_argument, NULL, OPT_STARTS},
	                                         {"pool", required_argument, NULL, OPT_POOL},
	                                         {"uncertainty", required_argument, NULL, OPT_UNC},
	                                         {"diversity", required_argument, NULL, OPT_DIV},
	                                         {"epochs", required_argument, NULL, OPT_EPOCHS},
	                                         {"fix-accel", required_argument, NULL, OPT_FIX_ACCEL},
	                                         {"fix-model", required_argument, NULL, OPT_FIX_MODEL},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {"version", no_argument, NULL, OPT_VERSION},
	                                         {NULL, 0, NULL, 0}};
	const char *preset_args[MAX_PRESETS];
	int preset_fix[MAX_PRESETS] = {0}; /* 1: --fix-accel, 2: --fix-model */
	struct tc_error err;
	struct afile af;
	int c;

	tc_setprogname(argv[0]);
	bo_defaults(&bo);
	while ((c = getopt_long(argc, argv, "s:n:m:gf:p:eo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (strcmp(optarg, "model") && strcmp(optarg, "accel") && strcmp(optarg, "pair"))
				usage_die("option '--space': expected model, accel or pair, got '%s'",
				          optarg);
			space_opt = optarg;
			break;
		case 'n':
			nsamples = eparse_long(optarg, "--count", 0, 1L << 53);
			break;
		case OPT_SEED:
			seed = (unsigned long long)eparse_long(optarg, "--seed", 0, 1L << 53);
			break;
		case 'm':
			if ((method = sample_method_parse(optarg)) < 0)
				usage_die("option '--method': expected random or lhs, got '%s'", optarg);
			break;
		case 'g':
			grid = 1;
			break;
		case 'f':
			add_space_file(optarg);
			break;
		case 'p':
			if (npresets == MAX_PRESETS)
				usage_die("option '--preset': at most %d presets", MAX_PRESETS);
			preset_args[npresets++] = optarg;
			break;
		case 'e':
			emit_embedding = 1;
			break;
		case OPT_SIZE:
			print_size = 1;
			break;
		case OPT_THREADS:
			nthreads = (int)eparse_long(optarg, "--threads", 1, 256);
			break;
		case OPT_PROPOSE:
			if (strcmp(optarg, "boshcode") == 0)
				guided = GUIDE_BOSHCODE;
			else if (strcmp(optarg, "nsga2") == 0)
				guided = GUIDE_NSGA2;
			else if ((method = sample_method_parse(optarg)) < 0)
				usage_die(
				    "option '--propose': expected random, lhs, boshcode or nsga2, got '%s'",
				    optarg);
			proposing = 1;
			break;
		case OPT_OBJECTIVES:
			objectives_spec = optarg;
			break;
		case OPT_INIT:
			ninit = (int)eparse_long(optarg, "--init", 2, 1000000);
			break;
		case OPT_STARTS:
			bo.starts = (int)eparse_long(optarg, "--starts", 0, 1000);
			break;
		case OPT_POOL:
			bo.pool = (int)eparse_long(optarg, "--pool", 1, 1000000);
			break;
		case OPT_UNC:
			bo.p_unc = eparse_double(optarg, "--uncertainty", 0, 1);
			break;
		case OPT_DIV:
			bo.p_div = eparse_double(optarg, "--diversity", 0, 1);
			break;
		case OPT_FIX_ACCEL:
		case OPT_FIX_MODEL:
			if (npresets == MAX_PRESETS)
				usage_die("at most %d presets", MAX_PRESETS);
			preset_fix[npresets] = c == OPT_FIX_ACCEL ? 1 : 2;
			preset_args[npresets++] = optarg;
			break;
		case OPT_EPOCHS:
			bo.sp.epochs = (int)eparse_long(optarg, "--epochs", 1, 100000);
			break;
		case OPT_HISTORY:
			history_path = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("tc-sample (transcode) %s\n", TC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		usage_die("unexpected argument '%s'", argv[optind]);
	if (grid && nsamples >= 0)
		usage_die("--grid and --count exclude each other");
	if (grid && method == SAMPLE_LHS)
		usage_die("--grid and --method lhs exclude each other");
	if (proposing && !history_path)
		usage_die("--propose needs --history FILE (the records evaluated so far; may be empty)");
	if (history_path && !proposing)
		usage_die("--history goes with --propose");
	if (bo.p_unc + bo.p_div > 1)
		usage_die("--uncertainty and --diversity add up to more than 1");
	if (proposing && (grid || print_size))
		usage_die("--propose and --%s exclude each other", grid ? "grid" : "size");
	load_spaces();
	if (proposing)
		load_history(history_path);
	for (int i = 0; i < npresets; i++)
		if (preset_fix[i])
			load_fixed(&presets[i], preset_args[i], preset_fix[i] == 1);
		else
			load_preset(&presets[i], preset_args[i]);
	if (afile_open(&af, out_path, &err) < 0)
		die("%s", err.msg);
	if (print_size)
		print_sizes(af.f);
	else
		run(af.f);
	if (afile_commit(&af, &err) < 0)
		die("%s", err.msg);
	close_stdout();
	return 0;
}
