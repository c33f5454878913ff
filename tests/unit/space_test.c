/*
 * space_test.c: unit tests of lib/space, lib/sample, lib/rng and lib/jsonl against independent
 * references: counts from shared/reference/transcode.md, a naive enumeration of multisets and FF
 * stacks in Python's itertools order, hand-written encodings of the presets, exhaustive round trips.
 * Prints TAP; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "rng.h"
#include "sample.h"
#include "space.h"
#include "tap.h"

static struct model_space fb2, tiny;
static struct accel_space acc, accgelu, accdf;

static void
load(void)
{
	struct tc_error err;

	if (model_space_load(&fb2, "share/space/flexibert2.json", &err) < 0 ||
	    model_space_load(&tiny, "share/space/tiny.json", &err) < 0 ||
	    accel_space_load(&acc, "share/space/acceltran.json", &err) < 0 ||
	    accel_space_load(&accgelu, "share/space/acceltran-gelu.json", &err) < 0 ||
	    accel_space_load(&accdf, "share/space/acceltran-dataflow.json", &err) < 0) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
}

/* Naive enumeration of sorted k-sequences over n kinds in lexicographic order. */
static int
next_multiset(int *seq, int n, int k)
{
	int i = k - 1;

	while (i >= 0 && seq[i] == n - 1)
		i--;
	if (i < 0)
		return 0;
	seq[i]++;
	for (int j = i + 1; j < k; j++)
		seq[j] = seq[i];
	return 1;
}

static void
test_multisets(void)
{
	static const int heads[] = {2, 4, 8, 12};
	static const uint64_t expect[] = {28, 210, 3003, 18564};
	int seq[12], got[12], bad = 0;

	for (int i = 0; i < 4; i++)
		check(multiset_count(7, heads[i]) == expect[i], "multisets of %d heads over 7 ops = %llu",
		      heads[i], (unsigned long long)expect[i]);
	for (int i = 0; i < 4; i++) {
		uint64_t r = 0;
		memset(seq, 0, sizeof seq);
		do {
			multiset_unrank(got, 7, heads[i], r);
			bad += multiset_rank(seq, 7, heads[i]) != r ||
			       memcmp(got, seq, sizeof(int) * (size_t)heads[i]);
			r++;
		} while (next_multiset(seq, 7, heads[i]));
		check(!bad && r == expect[i],
		      "rank/unrank of every %d-head multiset follow lexicographic order", heads[i]);
	}
}

static void
test_sizes(void)
{
	int64_t lo[37], hi[37];

	check(accel_space_size(&acc) == 14850000, "acceltran space has 14,850,000 points");
	check(accel_space_size(&accgelu) == 7425000, "acceltran-gelu space has 7,425,000 points");
	check(accel_space_size(&accdf) == 356400000, "acceltran-dataflow space has 356,400,000 points");
	check(fabs(model_space_size(&fb2) / 1.69e88 - 1) < 0.01,
	      "flexibert2 space has about 1.69e88 models (%g)", model_space_size(&fb2));
	check(model_encode_dim(&fb2) == 37, "flexibert2 encoding has 37 entries");
	model_encode_bounds(lo, hi, &fb2);
	check(hi[0] == 5 && hi[1] == 3 && hi[2] == 257 && hi[3] == 21804 && hi[36] == 21804,
	      "flexibert2 encoding bounds 0..5, 0..3, 0..257, 0..21804");
	check(model_encode_dim(&tiny) == 13, "tiny encoding has 13 entries");
}

/* Write text to a new temporary file and load it as a space of kind k ('m' or 'a'); 0 or -1. */
static int
load_text(char k, const char *text, struct tc_error *err)
{
	char path[] = "/tmp/space_test.XXXXXX";
	struct model_space ms;
	struct accel_space as;
	int fd = mkstemp(path), rc;
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	rc = k == 'm' ? model_space_load(&ms, path, err) : accel_space_load(&as, path, err);
	remove(path);
	return rc;
}

/* Spaces too large to count (found by tests/fuzz/space_fuzz.c): accel_space_size wrapped past 2^64 and
 * model_space_size became infinite, so the grid and the sizes tc-sample prints were wrong. */
static void
test_size_limits(void)
{
	static const char *const num[] = {"tile_b",        "tile_x",           "tile_y",         "pes",
	                                  "lanes_per_pe",  "macs_per_lane",    "softmax_per_pe", "batch",
	                                  "act_buffer_mb", "weight_buffer_mb", "mask_buffer_mb"};
	char *t = emalloc(65536), list[512];
	struct tc_error err = {""};
	size_t n = 0;

	n += (size_t)sprintf(t + n, "{\"format\":\"transcode-space/1\",\"kind\":\"accel\",\"name\":\"big\","
	                            "\"params\":{\"activation\":[\"relu\"],\"memory\":[\"hbm-32-1-4\"],"
	                            "\"dataflow\":[\"bijk\"]");
	for (int p = 0; p < 11; p++) {
		int k = 0;
		for (int v = 1; v <= 30; v++)
			k += sprintf(list + k, "%s%d", v > 1 ? "," : "", p == 7 ? 100 + v : v);
		n += (size_t)sprintf(t + n, ",\"%s\":[%s]", num[p], list);
	}
	sprintf(t + n, "}}");
	check(load_text('a', t, &err) < 0 &&
	          strstr(err.msg, "params: 1.771e+16 accelerators, more than 2^53"),
	      "an accelerator space of 30^11 points is refused (%s)", err.msg);
	check(
	    load_text('m',
	              "{\"format\":\"transcode-space/1\",\"kind\":\"model\",\"name\":\"big\",\"params\":{"
	              "\"layers\":[1,32],\"hidden\":[32,64,128,256,512,1024,2048,4096],"
	              "\"heads\":[1,2,4,8,16,32],\"ops\":[\"sa_sdp\",\"sa_wma\",\"l_dft\",\"l_dct\",\"c_5\","
	              "\"c_9\",\"c_13\"],\"ff_depth\":[1,2,3,4,5,6],"
	              "\"ff_width\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,"
	              "27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,"
	              "55,56,57,58,59,60,61,62,63,64]}}",
	              &err) < 0 &&
	        strstr(err.msg, "params: more models than a double counts"),
	    "a model space of more than 1.8e308 models is refused (%s)", err.msg);
	free(t);
}

static json_t *
preset(const char *name, const char *side)
{
	char path[256];
	json_t *root;

	snprintf(path, sizeof path, "share/preset/%s.json", name);
	root = json_load_file(path, 0, NULL);
	if (!root) {
		printf("Bail out! cannot read %s\n", path);
		exit(1);
	}
	json_incref(json_object_get(root, side));
	json_t *v = json_object_get(root, side);
	json_decref(root);
	return v;
}

static void
test_presets(void)
{
	static const int64_t tiny_enc[7] = {0, 0, 1, 0, 0, 1, 0};
	static const double edge_enc[12] = {1, 16, 16, 64, 16, 16, 4, 4, 4, 8, 1, 8};
	static const double server_enc[12] = {1, 16, 16, 512, 32, 16, 32, 4, 32, 64, 8, 4};
	struct tc_error err;
	struct model m;
	struct accel a;
	int64_t e[37];
	double ea[12];
	char id[17];
	json_t *v;
	int ok;

	v = preset("bert-tiny", "model");
	ok = model_from_json(&m, v, &fb2, &err) == 0;
	json_decref(v);
	model_encode(e, &m, &fb2);
	ok = ok && memcmp(e, tiny_enc, sizeof tiny_enc) == 0;
	for (int i = 7; i < 37; i++)
		ok = ok && e[i] == 0;
	check(ok, "BERT-Tiny encodes as [0, 0,1,0, 0,1,0, 0...]");

	v = preset("bert-base", "model");
	ok = model_from_json(&m, v, &fb2, &err) == 0;
	json_decref(v);
	model_encode(e, &m, &fb2);
	/* depth 12 -> 5; hidden 768 -> 3; FF [3072] -> 4; 12 sa_sdp heads -> 28 + 210 + 3003 + 0 */
	ok = ok && e[0] == 5;
	for (int i = 0; i < 12; i++)
		ok = ok && e[1 + 3 * i] == 3 && e[2 + 3 * i] == 4 && e[3 + 3 * i] == 3241;
	check(ok, "BERT-Base encodes as [5, (3, 4, 3241) x 12]");

	v = preset("acceltran-edge", "accel");
	ok = accel_from_json(&a, v, &acc, &err) == 0;
	json_decref(v);
	accel_encode(ea, &a, &acc);
	check(ok && memcmp(ea, edge_enc, sizeof ea) == 0, "AccelTran-Edge encodes as in the paper's order");
	v = preset("acceltran-server", "accel");
	ok = accel_from_json(&a, v, &acc, &err) == 0;
	json_decref(v);
	accel_encode(ea, &a, &acc);
	check(ok && memcmp(ea, server_enc, sizeof ea) == 0,
	      "AccelTran-Server encodes as in the paper's order");

	v = preset("bert-tiny", "model");
	model_from_json(&m, v, &fb2, &err);
	json_decref(v);
	v = preset("acceltran-edge", "accel");
	accel_from_json(&a, v, &acc, &err);
	json_decref(v);
	candidate_id(id, &m, &a);
	check(strcmp(id, "437d8ea117dcd78c") == 0, "id of BERT-Tiny on AccelTran-Edge is stable (%s)", id);
	m.layer[0].op[0] = OP_SA_WMA;
	candidate_id(id, &m, &a);
	check(strcmp(id, "437d8ea117dcd78c") != 0, "id changes with a head op");
	m.layer[0].op[1] = OP_SA_WMA;
	m.layer[0].op[0] = OP_SA_SDP;
	{
		char id2[17];
		m.layer[0].op[0] = OP_SA_WMA;
		m.layer[0].op[1] = OP_SA_SDP;
		candidate_id(id2, &m, &a);
		m.layer[0].op[0] = OP_SA_SDP;
		m.layer[0].op[1] = OP_SA_WMA;
		candidate_id(id, &m, &a);
		check(strcmp(id, id2) == 0, "id ignores the order of heads within a layer");
	}
}

/* Encode, decode and compare: every sampled model must survive exactly (up to head order). */
static void
test_model_roundtrip(const struct model_space *s, int n)
{
	int64_t e[1 + 3 * MODEL_MAX_LAYERS], lo[1 + 3 * MODEL_MAX_LAYERS], hi[1 + 3 * MODEL_MAX_LAYERS];
	struct sampler smp;
	struct tc_error err;
	struct model m, back;
	double *u = malloc(sizeof *u * (size_t)model_sample_dim(s));
	char a[8192], b[8192];
	int bad = 0, badjson = 0, inbounds = 1, badunit = 0;

	model_encode_bounds(lo, hi, s);
	sampler_init(&smp, SAMPLE_RANDOM, (uint64_t)n, model_sample_dim(s), 7, &err);
	for (int i = 0; i < n; i++) {
		json_t *j;
		sampler_point(&smp, (uint64_t)i, u);
		model_decode(&m, s, u);
		bad += model_check(&m, s, &err) != 0;
		model_encode(e, &m, s);
		for (int k = 0; k < model_encode_dim(s); k++)
			inbounds = inbounds && e[k] >= lo[k] && e[k] <= hi[k];
		bad += model_decode_encoding(&back, s, e, &err) != 0;
		model_canonical(a, sizeof a, &m);
		model_canonical(b, sizeof b, &back);
		bad += strcmp(a, b) != 0;
		j = model_to_json(&m);
		badjson += model_from_json(&back, j, s, &err) != 0 || memcmp(&back, &m, sizeof m) != 0;
		json_decref(j);
		model_unit_encode(u, &m, s);
		model_decode(&back, s, u);
		model_canonical(b, sizeof b, &back);
		badunit += strcmp(a, b) != 0;
		for (int k = 0; k < model_sample_dim(s); k++)
			badunit += !(u[k] > 0 && u[k] < 1);
	}
	check(!bad && inbounds, "%d random '%s' models are valid and survive encode/decode", n, s->name);
	check(!badunit, "%d random '%s' models survive model_unit_encode then model_decode", n, s->name);
	check(!badjson, "%d random '%s' models survive JSON and back", n, s->name);
	sampler_release(&smp);
	free(u);
}

static void
test_model_snap(void)
{
	int64_t lo[37], hi[37];
	double x[37];
	struct rng r;
	struct model m;
	struct tc_error err;
	int bad = 0;

	model_encode_bounds(lo, hi, &fb2);
	rng_seed(&r, 3);
	for (int t = 0; t < 2000; t++) {
		for (int k = 0; k < 37; k++)
			x[k] = (double)lo[k] - 3 + rng_uniform(&r) * (double)(hi[k] - lo[k] + 6);
		model_snap(&m, &fb2, x);
		bad += model_check(&m, &fb2, &err) != 0;
	}
	check(!bad, "model_snap of 2000 random real vectors (beyond the bounds too) gives valid models");
}

static void
test_accel(void)
{
	struct accel a, b;
	struct tc_error err;
	double e[12], lo[12], hi[12];
	char ca[512], cb[512];
	int bad = 0, snapbad = 0, unitbad = 0;
	double u[AP_COUNT];
	struct rng r;

	accel_grid_point(&a, &acc, 0);
	check(a.tile_b == 1 && a.tile_x == 8 && a.pes == 64 && strcmp(a.memory, "rram-16-2-2") == 0 &&
	          strcmp(a.dataflow, "bijk") == 0 && strcmp(a.activation, "gelu") == 0,
	      "grid point 0 is the first value of every list");
	accel_grid_point(&a, &acc, 14849999);
	check(a.tile_b == 4 && a.tile_x == 32 && a.tile_y == 32 && a.pes == 1024 && a.batch == 32 &&
	          strcmp(a.memory, "hbm-32-1-4") == 0 && strcmp(a.activation, "relu") == 0,
	      "the last grid point is the last value of every list");
	accel_grid_point(&a, &acc, 1);
	check(strcmp(a.memory, "rram-8-2-4") == 0, "the memory varies fastest in the grid");

	/* A stride through the grid: valid, and encode + snap returns the same point. */
	for (uint64_t i = 0; i < 14850000; i += 997) {
		accel_grid_point(&a, &acc, i);
		bad += accel_check(&a, &acc, &err) != 0;
		accel_encode(e, &a, &acc);
		accel_snap(&b, &acc, e);
		accel_canonical(ca, sizeof ca, &a);
		accel_canonical(cb, sizeof cb, &b);
		snapbad += strcmp(ca, cb) != 0 && strcmp(a.activation, "gelu") == 0;
		accel_unit_encode(u, &a, &acc);
		accel_decode(&b, &acc, u);
		accel_canonical(cb, sizeof cb, &b);
		unitbad += strcmp(ca, cb) != 0;
	}
	check(!bad, "every 997th grid point is valid");
	check(!unitbad, "accel_unit_encode then accel_decode returns every 997th grid point");
	check(!snapbad, "snapping an encoding returns its GeLU accelerator");

	accel_encode_bounds(lo, hi, &acc);
	rng_seed(&r, 5);
	bad = 0;
	for (int t = 0; t < 2000; t++) {
		for (int k = 0; k < 12; k++)
			e[k] = lo[k] - 10 + rng_uniform(&r) * (hi[k] - lo[k] + 20);
		accel_snap(&a, &acc, e);
		bad += accel_check(&a, &acc, &err) != 0 || a.tile_x != a.tile_y;
	}
	check(!bad, "accel_snap of 2000 random vectors gives valid accelerators");
	e[0] = 2.4, e[1] = 12.1, e[2] = 30, e[3] = 100, e[4] = 8, e[5] = 9, e[6] = 3, e[7] = 10, e[8] = 6,
	e[9] = 1000, e[10] = 0, e[11] = 7.6;
	accel_snap(&a, &acc, e);
	check(a.tile_b == 1 && a.tile_x == 16 && a.tile_y == 16 && a.pes == 128 && a.macs_per_lane == 16 &&
	          a.softmax_per_pe == 2 && a.batch == 4 && a.act_buffer_mb == 4 &&
	          a.weight_buffer_mb == 128 && a.mask_buffer_mb == 1 && strcmp(a.memory, "dram-32-2-1") == 0,
	      "accel_snap picks the nearest value, ties to the smaller, tile_y = tile_x");
}

/* Every point of a small space is enumerated exactly once by the grid. */
static void
test_grid_bijection(void)
{
	struct accel_space s = acc;
	char seen[4096][64];
	int n, dup = 0;

	s.nval[AP_PES] = 2;
	s.nval[AP_LANES] = 2;
	s.nval[AP_SOFTMAX] = 2;
	s.nval[AP_ACT_MB] = 1;
	s.nval[AP_WEIGHT_MB] = 1;
	s.nval[AP_MASK_MB] = 2;
	s.nval[AP_MEMORY] = 3;
	n = (int)accel_space_size(&s);
	for (int i = 0; i < n && i < 4096; i++) {
		struct accel a;
		accel_grid_point(&a, &s, (uint64_t)i);
		accel_canonical(seen[i], sizeof seen[i], &a);
		for (int j = 0; j < i; j++)
			dup += strcmp(seen[i], seen[j]) == 0;
	}
	check(n == 2 * 3 * 2 * 2 * 2 * 2 * 2 * 3 * 2 * 3 && !dup,
	      "a reduced grid of %d points has no repeats", n);
}

static void
test_lhs(void)
{
	enum { N = 50, D = 6 };
	struct sampler s;
	struct tc_error err;
	double u[D];
	int hit[D][N] = {{0}}, ok = 1;

	sampler_init(&s, SAMPLE_LHS, N, D, 11, &err);
	for (int i = 0; i < N; i++) {
		sampler_point(&s, (uint64_t)i, u);
		for (int d = 0; d < D; d++) {
			ok = ok && u[d] >= 0 && u[d] < 1;
			hit[d][(int)(u[d] * N)]++;
		}
	}
	for (int d = 0; d < D; d++)
		for (int k = 0; k < N; k++)
			ok = ok && hit[d][k] == 1;
	check(ok, "LHS puts exactly one of %d points in each stratum of each of %d dimensions", N, D);
	sampler_release(&s);
	check(sampler_init(&s, SAMPLE_LHS, 1ULL << 31, 100, 1, &err) < 0, "an oversized LHS is refused");
}

static void
test_rng(void)
{
	struct rng a, b;
	double sum = 0, sq = 0;
	int counts[7] = {0}, ok = 1;
	enum { N = 700000 };

	rng_seed(&a, 42);
	rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++)
		ok = ok && rng_next(&a) == rng_next(&b);
	check(ok, "same seed, same stream");
	rng_seed_stream(&a, 42, 1);
	rng_seed_stream(&b, 42, 2);
	check(rng_next(&a) != rng_next(&b), "streams of one seed differ");
	rng_seed(&a, 1);
	for (int i = 0; i < N; i++) {
		double x = rng_uniform(&a);
		sum += x;
		counts[rng_below(&a, 7)]++;
	}
	check(fabs(sum / N - 0.5) < 0.002, "uniform mean %.4f is 0.5", sum / N);
	for (int k = 0; k < 7; k++)
		ok = ok && fabs(counts[k] - N / 7.0) < 5 * sqrt(N / 7.0);
	check(ok, "rng_below(7) hits each value within 5 sigma");
	sum = 0;
	for (int i = 0; i < N; i++) {
		double x = rng_normal(&a);
		sum += x;
		sq += x * x;
	}
	check(fabs(sum / N) < 0.01 && fabs(sq / N - 1) < 0.01, "normal mean %.4f, variance %.4f", sum / N,
	      sq / N);
}

static void
test_jsonl(void)
{
	json_t *r = json_object();
	char *s;
	double x;
	long n;
	const char *str;
	struct tc_error err;

	json_object_set_new(r, "a", json_real(0.1));
	json_object_set_new(r, "b", json_real(1e300));
	s = jsonl_dumps(r);
	check(strcmp(s, "{\"a\":0.1,\"b\":1e300}") == 0, "short reals print short: %s", s);
	free(s);
	json_object_set_new(r, "c", json_real(1.0 / 3));
	s = jsonl_dumps(r);
	check(strstr(s, "\"c\":0.3333333333333333") != NULL, "1/3 prints with the digits it needs: %s", s);
	json_decref(r);
	r = json_loads(s, 0, NULL);
	check(r && json_real_value(json_object_get(r, "c")) == 1.0 / 3, "and reads back exactly");
	free(s);
	json_decref(r);

	r = json_loads("{\"sim\":{\"lat\":2.5,\"n\":3,\"s\":\"x\",\"arr\":[1,{\"k\":7}]}}", 0, NULL);
	check(json_get_number(r, "sim.lat", &x, &err) == 0 && x == 2.5, "dotted path reads a number");
	check(json_get_int(r, "sim.arr.1.k", 0, 10, &n, &err) == 0 && n == 7, "dotted path indexes arrays");
	check(json_get_number(r, "sim.nope", &x, &err) < 0 &&
	          strcmp(err.msg, "missing field 'sim.nope'") == 0,
	      "missing field is named: %s", err.msg);
	check(json_get_number(r, "sim.s", &x, &err) < 0 &&
	          strcmp(err.msg, "field 'sim.s': expected a number, got string") == 0,
	      "wrong type is named: %s", err.msg);
	check(json_get_int(r, "sim.lat", 0, 10, &n, &err) < 0, "2.5 is not an integer");
	check(json_get_int(r, "sim.n", 4, 10, &n, &err) < 0, "3 is outside [4, 10]");
	check(json_get_string(r, "sim.s", &str, &err) == 0 && strcmp(str, "x") == 0, "strings read");
	check(json_path_set_new(r, "x.y.z", json_integer(1)) == 0 &&
	          json_get_int(r, "x.y.z", 0, 2, &n, &err) == 0 && n == 1,
	      "json_path_set_new creates intermediate objects");
	check(json_path_set_new(r, "sim.lat.q", json_integer(1)) < 0, "and refuses to go through a number");
	json_decref(r);
	check(json_number(NAN) == NULL && json_number(INFINITY) == NULL, "json_number refuses NaN and Inf");
}

int
main(void)
{
	load();
	test_multisets();
	test_sizes();
	test_size_limits();
	test_presets();
	test_model_roundtrip(&fb2, 3000);
	test_model_roundtrip(&tiny, 3000);
	test_model_snap();
	test_accel();
	test_grid_bijection();
	test_lhs();
	test_rng();
	test_jsonl();
	return tap_done();
}
