/*
 * jsonl_fuzz.c: records as the tools read them (lib/jsonl, lib/space, lib/objective,
 * lib/simrec). The input's first line is an objective list ("sim.latency_s:min,train.x:max"),
 * the rest a JSON Lines stream, read by jsonl_next_line and jsonl_parse (jsonl_read's two steps)
 * over a FILE from fmemopen. Every record goes through the record field parsers: model and accel
 * against the default spaces (flexibert2, tiny, acceltran) and against none, the objectives of the
 * first line and a fixed list, and the simulator's sparsities; a record tc-sim would accept is
 * simulated (fast, and for small models event by event too), and gets its id and encodings. Then the record
 * is written back (jsonl_dumps, jsonl_append_member) and must read back equal: the writer's shortest reals
 * are exact.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hw.h"
#include "jsonl.h"
#include "objective.h"
#include "simrec.h"
#include "space.h"

static struct model_space flexibert2, tiny;
static struct accel_space acceltran;
static struct hw_profile prof;
static struct objective *fixed_obj;
static int nfixed;

static void
load_defaults(void)
{
	struct tc_error err;
	char *p;

	p = fuzz_share("space/flexibert2.json");
	if (model_space_load(&flexibert2, p, &err) < 0)
		die("%s", err.msg);
	free(p);
	p = fuzz_share("space/tiny.json");
	if (model_space_load(&tiny, p, &err) < 0)
		die("%s", err.msg);
	free(p);
	p = fuzz_share("space/acceltran.json");
	if (accel_space_load(&acceltran, p, &err) < 0)
		die("%s", err.msg);
	free(p);
	p = fuzz_share("hw/acceltran-14nm.json");
	if (hw_profile_load(&prof, p, &err) < 0)
		die("%s", err.msg);
	free(p);
	if (objectives_parse(&fixed_obj, &nfixed,
	                     "sim.latency_s:min,sim.energy_j,train.val_accuracy:max,o.1.0", &err) < 0)
		die("%s", err.msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	tc_setprogname("jsonl_fuzz");
	load_defaults();
	return 0;
}

/* The written form of rec must read back to an equal object, alone and appended to its line. */
static void
roundtrip(const json_t *rec, const char *line, size_t len)
{
	char *s = jsonl_dumps(rec), *buf = NULL;
	size_t n = 0, cap = 0;
	json_t *back, *v = json_true();

	if (!s)
		return; /* a record jansson cannot encode, e.g. invalid UTF-8 in a key: refused, fine */
	back = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
	if (!back || !json_equal(back, rec)) {
		fprintf(stderr, "jsonl_dumps does not read back: %s\n", s);
		abort();
	}
	json_decref(back);
	free(s);
	if (!json_object_get(rec, "fuzz") && jsonl_append_member(&buf, &n, &cap, line, len, "fuzz", v) == 0) {
		back = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL);
		if (!back || !json_equal(json_object_get(back, "fuzz"), v) ||
		    json_object_size(back) != json_object_size(rec) + 1) {
			fprintf(stderr, "jsonl_append_member does not read back: %.*s\n", (int)n, buf);
			abort();
		}
		json_decref(back);
	}
	free(buf);
	json_decref(v);
}

/* Whether the event-driven simulation of m on a, at 16 tokens, takes milliseconds (under ASan it
 * takes seconds for BERT-Base). */
static int
small(const struct model *m, const struct accel *a)
{
	if (m->l > 2 || a->batch > 32)
		return 0;
	for (int i = 0; i < m->l; i++)
		if (m->layer[i].h > 64)
			return 0;
	return 1;
}

static void
fields(const json_t *rec, const struct objective *obj, int nobj)
{
	struct tc_error err;
	struct model m, scratch_m; /* m as read without a space; scratch_m against each space */
	struct accel a, scratch_a;
	double v[64], sp[3];
	int src[3], mok, aok;
	char id[17];
	struct simrec_options o = {SIM_FAST,     0,     1,          0,    128,  30522, 2,
	                           {-1, -1, -1}, &prof, &acceltran, NULL, NULL, NULL};

	mok = model_from_json(&m, json_object_get(rec, "model"), NULL, &err) == 0;
	if (mok) {
		model_check(&m, &flexibert2, &err);
		model_check(&m, &tiny, &err);
		json_decref(model_to_json(&m));
	}
	model_from_json(&scratch_m, json_object_get(rec, "model"), &flexibert2, &err);
	model_from_json(&scratch_m, json_object_get(rec, "model"), &tiny, &err);
	aok = accel_from_json(&a, json_object_get(rec, "accel"), NULL, &err) == 0;
	if (aok)
		json_decref(accel_to_json(&a));
	accel_from_json(&scratch_a, json_object_get(rec, "accel"), &acceltran, &err);
	objectives_get(v, fixed_obj, nfixed, rec, &err);
	if (nobj <= 64)
		objectives_get(v, obj, nobj, rec, &err);
	simrec_sparsity(sp, src, rec, &o, &err);
	if (mok && aok) {
		/* as tc-sim does by default: any valid model, accelerators of the AccelTran space */
		json_decref(simrec_eval(rec, &o, &err));
		o.training = 1;
		json_decref(simrec_eval(rec, &o, &err));
		if (small(&m, &a)) {
			o.fidelity = SIM_CYCLE;
			o.seq = 16;
			json_decref(simrec_eval(rec, &o, &err));
			o.training = 0;
			json_decref(simrec_eval(rec, &o, &err));
		}
		candidate_id(id, &m, &a);
		json_decref(candidate_to_json(&m, &a));
	}
	if (mok && model_check(&m, &flexibert2, &err) == 0)
		json_decref(model_encoding_json(&m, &flexibert2));
	if (aok && accel_check(&a, &acceltran, &err) == 0)
		json_decref(accel_encoding_json(&a, &acceltran));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t speclen = nl ? (size_t)(nl - data) : size;
	char *spec = malloc(speclen + 1);
	struct objective *obj = NULL;
	struct jsonl_reader r;
	struct tc_error err;
	json_t *rec;
	const char *line;
	size_t len;
	int nobj = 0;

	memcpy(spec, data, speclen);
	spec[speclen] = 0;
	if (objectives_parse(&obj, &nobj, spec, &err) == 0)
		objective_name(&obj[nobj - 1]);
	free(spec);
	data += nl ? speclen + 1 : size;
	size -= nl ? speclen + 1 : size;

	memset(&r, 0, sizeof r);
	r.name = estrdup("<fuzz>");
	r.own = 1;
	r.f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	if (!r.f)
		abort();
	/* jsonl_read, in the two steps tc-sim takes to parse lines on several threads */
	while (jsonl_next_line(&r, &line, &len, &err) > 0 &&
	       jsonl_parse(r.name, r.line, line, len, &rec, &err) == 0) {
		fields(rec, obj, nobj);
		roundtrip(rec, line, len);
		json_decref(rec);
	}
	if (jsonl_read(&r, &rec, &err) > 0)
		json_decref(rec);
	jsonl_close(&r);
	objectives_free(obj, nobj);
	return 0;
}
