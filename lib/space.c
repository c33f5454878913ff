/*
 * space.c: design spaces as data and the candidates in them.
 *
 * Invariants of a loaded space: every list is non-empty, its numbers strictly ascending and
 * positive; model ops are a subset of enum head_op in canonical order; every head count leaves a
 * head size of at least 1 for every hidden size; in an accelerator space, max(tile_b) <=
 * min(batch), so every combination of the lists is a valid accelerator and the grid needs no
 * rejection. Accelerator validity is then: every value in its list, tile_y == tile_x under
 * square_tiles. Model validity: depth, widths, head counts, ops and FF stacks in their lists, and
 * every head of a layer written with head size floor(h / n).
 *
 * The FlexiBERT 2.0 encoding follows TransCODE's (shared/reference/transcode.md section 5.2):
 * head multisets are numbered by head count in list order, then as combinations with replacement
 * of the ops in lexicographic order; FF stacks by depth in list order, then in Cartesian-product
 * order. The default spaces give 37 model integers with ranges 0..5, 0..3, 0..257, 0..21804.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "space.h"

const char *const head_op_names[OP_COUNT] = {"sa_sdp", "sa_wma", "l_dft", "l_dct", "c_5", "c_9", "c_13"};

/* The parameters' record paths, for messages. */
static const char *const accel_param_paths[AP_COUNT] = {
    "accel.tile_b", "accel.tile_x",        "accel.tile_y",           "accel.activation",
    "accel.pes",    "accel.lanes_per_pe",  "accel.macs_per_lane",    "accel.softmax_per_pe",
    "accel.batch",  "accel.act_buffer_mb", "accel.weight_buffer_mb", "accel.mask_buffer_mb",
    "accel.memory", "accel.dataflow"};

const char *const accel_param_names[AP_COUNT] = {
    "tile_b",           "tile_x",         "tile_y",         "activation", "pes",
    "lanes_per_pe",     "macs_per_lane",  "softmax_per_pe", "batch",      "act_buffer_mb",
    "weight_buffer_mb", "mask_buffer_mb", "memory",         "dataflow"};

/* Physical limits for values checked without a space: generous, but they keep arithmetic exact. */
#define MAX_HIDDEN    65536
#define MAX_FF        1048576
#define MAX_UNIT      1048576
#define MAX_BUFFER_MB 1048576.0

static int
is_string_param(int p)
{
	return p == AP_ACTIVATION || p == AP_MEMORY || p == AP_DATAFLOW;
}

static int
is_int_param(int p)
{
	return !is_string_param(p) && p != AP_ACT_MB && p != AP_WEIGHT_MB && p != AP_MASK_MB;
}

/* ---- value checks shared by space files and records ---- */

static int
valid_activation(const char *s)
{
	return strcmp(s, "relu") == 0 || strcmp(s, "gelu") == 0;
}

/* "type-banks-ranks-channels" with type rram, dram or hbm and positive integers. */
static int
valid_memory(const char *s)
{
	int b, r, c, n = 0;
	char type[8];

	if (strlen(s) >= ACCEL_NAME_MAX || sscanf(s, "%7[a-z]-%d-%d-%d%n", type, &b, &r, &c, &n) != 4)
		return 0;
	if (s[n] || b < 1 || r < 1 || c < 1)
		return 0;
	return strcmp(type, "rram") == 0 || strcmp(type, "dram") == 0 || strcmp(type, "hbm") == 0;
}

/* A permutation of "bijk". */
static int
valid_dataflow(const char *s)
{
	int seen[4] = {0};

	if (strlen(s) != 4)
		return 0;
	for (int i = 0; i < 4; i++) {
		const char *p = strchr("bijk", s[i]);
		if (!s[i] || !p || seen[p - "bijk"]++)
			return 0;
	}
	return 1;
}

static int
valid_string(int p, const char *s)
{
	switch (p) {
	case AP_ACTIVATION:
		return valid_activation(s);
	case AP_MEMORY:
		return valid_memory(s);
	default:
		return valid_dataflow(s);
	}
}

static const char *
string_rule(int p)
{
	switch (p) {
	case AP_ACTIVATION:
		return "'relu' or 'gelu'";
	case AP_MEMORY:
		return "a memory such as 'dram-32-2-1' (rram, dram or hbm - banks - ranks - channels)";
	default:
		return "a loop order, a permutation of 'bijk'";
	}
}

/* ---- space files ---- */

static int reject_unknown(const json_t *obj, const char *const *known, int nknown, const char *where,
                          struct tc_error *err);

static const char *const top_keys[] = {"format", "kind",  "name",        "description",
                                       "params", "fixed", "square_tiles"};

static int
load_space_json(json_t **root, const char *path, const char *want, struct tc_error *err)
{
	json_error_t je;
	const char *fmt, *kind;

	*root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!*root) {
		if (je.line < 1)
			return tc_error_set(err, "cannot read space file '%s': %s", path, je.text);
		return tc_error_set(err, "space file '%s':%d: malformed JSON: %s", path, je.line, je.text);
	}
	if (!json_is_object(*root))
		goto bad_top;
	if (json_get_string(*root, "format", &fmt, err) < 0)
		goto fail;
	if (strcmp(fmt, "transcode-space/1") != 0) {
		tc_error_set(err, "field 'format': expected 'transcode-space/1', got '%s'", fmt);
		goto fail;
	}
	if (json_get_string(*root, "kind", &kind, err) < 0)
		goto fail;
	if (want && strcmp(kind, want) != 0) {
		tc_error_set(err, "field 'kind': expected '%s', got '%s'", want, kind);
		goto fail;
	}
	if (reject_unknown(*root, top_keys, 7, "", err) < 0)
		goto fail;
	return 0;
bad_top:
	tc_error_set(err, "expected a JSON object");
fail:
	json_decref(*root);
	*root = NULL;
	return tc_error_prefix(err, "space file '%s'", path);
}

int
space_kind(const char *path, char *kind, size_t size, struct tc_error *err)
{
	json_t *root;
	const char *k;

	if (load_space_json(&root, path, NULL, err) < 0)
		return -1;
	json_get_string(root, "kind", &k, err);
	if (strcmp(k, "model") != 0 && strcmp(k, "accel") != 0) {
		tc_error_set(err, "space file '%s': field 'kind': expected 'model' or 'accel', got '%s'",
		             path, k);
		json_decref(root);
		return -1;
	}
	snprintf(kind, size, "%s", k);
	json_decref(root);
	return 0;
}

int
space_file_route(const char *path, const char **model_path, const char **accel_path, struct tc_error *err)
{
	char kind[8];

	if (space_kind(path, kind, sizeof kind, err) < 0)
		return -1;
	if (strcmp(kind, "model") == 0)
		*model_path = path;
	else
		*accel_path = path;
	return 0;
}

static int
get_name(char *name, size_t size, const json_t *root, struct tc_error *err)
{
	const char *s;

	if (json_get_string(root, "name", &s, err) < 0)
		return -1;
	if (!*s || strlen(s) >= size)
		return tc_error_set(err, "field 'name': expected 1 to %zu characters", size - 1);
	memcpy(name, s, strlen(s) + 1);
	return 0;
}

/* params.<key>: a non-empty array of at most SPACE_MAX_VALUES elements. */
static json_t *
get_list(const json_t *params, const char *key, struct tc_error *err)
{
	json_t *v = json_object_get(params, key);

	if (!v)
		return tc_error_set(err, "missing field 'params.%s'", key), NULL;
	if (!json_is_array(v))
		return tc_error_set(err, "params.%s: expected an array, got %s", key, json_kind(v)), NULL;
	if (json_array_size(v) == 0 || json_array_size(v) > SPACE_MAX_VALUES)
		return tc_error_set(err, "params.%s: expected 1 to %d values", key, SPACE_MAX_VALUES), NULL;
	return v;
}

/* A strictly ascending list of numbers in [lo, hi] (integers if integral is set) into out. */
static int
get_numbers(double *out, int *n, const json_t *params, const char *key, double lo, double hi, int integral,
            struct tc_error *err)
{
	json_t *list = get_list(params, key, err), *v;
	char what[64];
	size_t i;

	if (!list)
		return -1;
	json_array_foreach (list, i, v) {
		snprintf(what, sizeof what, "params.%s[%zu]", key, i);
		if (json_as_number(v, what, &out[i], err) < 0)
			return -1;
		if ((integral && out[i] != floor(out[i])) || out[i] < lo || out[i] > hi)
			return tc_error_set(err, "%s: expected %s in [%g, %g], got %g", what,
			                    integral ? "an integer" : "a number", lo, hi, out[i]);
		if (i > 0 && out[i] <= out[i - 1])
			return tc_error_set(err, "params.%s: values must be strictly ascending", key);
	}
	*n = (int)json_array_size(list);
	return 0;
}

static int
get_ints(int *out, int *n, const json_t *params, const char *key, int lo, int hi, struct tc_error *err)
{
	double d[SPACE_MAX_VALUES];

	if (get_numbers(d, n, params, key, lo, hi, 1, err) < 0)
		return -1;
	for (int i = 0; i < *n; i++)
		out[i] = (int)d[i];
	return 0;
}

static int
reject_unknown(const json_t *obj, const char *const *known, int nknown, const char *where,
               struct tc_error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach ((json_t *)obj, key, v) {
		int k = 0;
		while (k < nknown && strcmp(key, known[k]) != 0)
			k++;
		if (k == nknown)
			return tc_error_set(err, "%s%s: unknown key", where, key);
	}
	return 0;
}

static int
parse_model_space(struct model_space *s, const json_t *root, struct tc_error *err)
{
	static const char *const keys[] = {"layers", "hidden", "heads", "ops", "ff_depth", "ff_width"};
	const json_t *params = json_object_get(root, "params"), *ops, *v;
	size_t i;

	memset(s, 0, sizeof *s);
	if (get_name(s->name, sizeof s->name, root, err) < 0)
		return -1;
	if (!params || !json_is_object(params))
		return tc_error_set(err, "field 'params': expected an object");
	if (reject_unknown(params, keys, 6, "params.", err) < 0)
		return -1;
	if (get_ints(s->layers, &s->nl, params, "layers", 1, MODEL_MAX_LAYERS, err) < 0 ||
	    get_ints(s->hidden, &s->nh, params, "hidden", 1, MAX_HIDDEN, err) < 0 ||
	    get_ints(s->heads, &s->nn, params, "heads", 1, MODEL_MAX_HEADS, err) < 0 ||
	    get_ints(s->ffdepth, &s->nfd, params, "ff_depth", 1, MODEL_MAX_FF, err) < 0 ||
	    get_ints(s->ffwidth, &s->nfw, params, "ff_width", 1, MAX_FF, err) < 0)
		return -1;
	if (!(ops = get_list(params, "ops", err)))
		return -1;
	json_array_foreach (ops, i, v) {
		int op = 0;
		if (!json_is_string(v))
			return tc_error_set(err, "params.ops[%zu]: expected a string, got %s", i,
			                    json_kind(v));
		while (op < OP_COUNT && strcmp(json_string_value(v), head_op_names[op]) != 0)
			op++;
		if (op == OP_COUNT)
			return tc_error_set(err, "params.ops[%zu]: unknown head op '%s'", i,
			                    json_string_value(v));
		if (i > 0 && op <= s->ops[i - 1])
			return tc_error_set(err,
			                    "params.ops: ops must be distinct and in the canonical order "
			                    "sa_sdp, sa_wma, l_dft, l_dct, c_5, c_9, c_13");
		s->ops[i] = op;
	}
	s->nops = (int)json_array_size(ops);
	if (s->heads[s->nn - 1] > s->hidden[0])
		return tc_error_set(err, "params.heads: %d heads leave no head size for hidden size %d",
		                    s->heads[s->nn - 1], s->hidden[0]);
	s->maxl = s->layers[s->nl - 1];
	s->maxfd = s->ffdepth[s->nfd - 1];
	for (int k = 0; k < s->nfd; k++)
		if (pow(s->nfw, s->ffdepth[k]) > 1e15)
			return tc_error_set(err, "params.ff_depth: too many FF stacks to number");
	if (!isfinite(model_space_size(s)))
		return tc_error_set(err, "params: more models than a double counts (above 1.8e308)");
	return 0;
}

int
model_space_load(struct model_space *s, const char *path, struct tc_error *err)
{
	json_t *root;
	int rc;

	if (load_space_json(&root, path, "model", err) < 0)
		return -1;
	rc = parse_model_space(s, root, err);
	json_decref(root);
	if (rc < 0)
		return tc_error_prefix(err, "space file '%s'", path);
	return 0;
}

static int
value_index(const struct accel_space *s, int p, const json_t *v)
{
	for (int i = 0; i < s->nval[p]; i++) {
		if (is_string_param(p) && json_is_string(v) &&
		    strcmp(json_string_value(v), s->str[p][i]) == 0)
			return i;
		if (!is_string_param(p) && json_is_number(v) && json_number_value(v) == s->num[p][i])
			return i;
	}
	return -1;
}

static int
parse_accel_list(struct accel_space *s, int p, const json_t *params, struct tc_error *err)
{
	const char *key = accel_param_names[p];
	json_t *list, *v;
	size_t i;

	if (!is_string_param(p))
		return get_numbers(s->num[p], &s->nval[p], params, key, is_int_param(p) ? 1 : 1.0 / 1024,
		                   is_int_param(p) ? MAX_UNIT : MAX_BUFFER_MB, is_int_param(p), err);
	if (!(list = get_list(params, key, err)))
		return -1;
	json_array_foreach (list, i, v) {
		const char *str = json_string_value(v);
		if (!str)
			return tc_error_set(err, "params.%s[%zu]: expected a string, got %s", key, i,
			                    json_kind(v));
		if (!valid_string(p, str))
			return tc_error_set(err, "params.%s[%zu]: expected %s, got '%s'", key, i,
			                    string_rule(p), str);
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->str[p][j], str) == 0)
				return tc_error_set(err, "params.%s[%zu]: '%s' listed twice", key, i, str);
		snprintf(s->str[p][i], ACCEL_NAME_MAX, "%s", str);
	}
	s->nval[p] = (int)json_array_size(list);
	return 0;
}

static int
parse_accel_space(struct accel_space *s, const json_t *root, struct tc_error *err)
{
	const json_t *params = json_object_get(root, "params"), *fixed, *sq, *v;
	const char *key;
	double points = 1;

	memset(s, 0, sizeof *s);
	if (get_name(s->name, sizeof s->name, root, err) < 0)
		return -1;
	if (!params || !json_is_object(params))
		return tc_error_set(err, "field 'params': expected an object");
	if (reject_unknown(params, accel_param_names, AP_COUNT, "params.", err) < 0)
		return -1;
	for (int p = 0; p < AP_COUNT; p++) {
		s->fixed[p] = -1;
		if (parse_accel_list(s, p, params, err) < 0)
			return -1;
	}
	if ((fixed = json_object_get(root, "fixed"))) {
		if (!json_is_object(fixed))
			return tc_error_set(err, "field 'fixed': expected an object, got %s",
			                    json_kind(fixed));
		if (reject_unknown(fixed, accel_param_names, AP_COUNT, "fixed.", err) < 0)
			return -1;
		json_object_foreach ((json_t *)fixed, key, v) {
			int p = 0;
			while (strcmp(key, accel_param_names[p]) != 0)
				p++;
			if ((s->fixed[p] = value_index(s, p, v)) < 0)
				return tc_error_set(err, "fixed.%s: not one of the values in params.%s", key,
				                    key);
		}
	}
	if ((sq = json_object_get(root, "square_tiles"))) {
		if (!json_is_boolean(sq))
			return tc_error_set(err, "field 'square_tiles': expected true or false, got %s",
			                    json_kind(sq));
		s->square_tiles = json_is_true(sq);
	}
	if (s->square_tiles) {
		if (s->nval[AP_TILE_X] != s->nval[AP_TILE_Y] ||
		    memcmp(s->num[AP_TILE_X], s->num[AP_TILE_Y], sizeof(double) * (size_t)s->nval[AP_TILE_X]))
			return tc_error_set(
			    err, "params.tile_y: must equal params.tile_x when square_tiles is true");
		if (s->fixed[AP_TILE_X] != s->fixed[AP_TILE_Y])
			return tc_error_set(
			    err, "fixed.tile_y: must match fixed.tile_x when square_tiles is true");
	}
	if (s->num[AP_TILE_B][s->nval[AP_TILE_B] - 1] > s->num[AP_BATCH][0])
		return tc_error_set(err, "params.tile_b: every batch tile must fit the smallest batch (%g)",
		                    s->num[AP_BATCH][0]);
	for (int p = 0; p < AP_COUNT; p++) /* the points of the grid, as accel_space_size counts them */
		if (s->fixed[p] < 0 && !(s->square_tiles && p == AP_TILE_Y))
			points *= s->nval[p];
	if (points > 9007199254740992.0) /* grid indices and the size are exact integers in records */
		return tc_error_set(err, "params: %.4g accelerators, more than 2^53", points);
	return 0;
}

int
accel_space_load(struct accel_space *s, const char *path, struct tc_error *err)
{
	json_t *root;
	int rc;

	if (load_space_json(&root, path, "accel", err) < 0)
		return -1;
	rc = parse_accel_space(s, root, err);
	json_decref(root);
	if (rc < 0)
		return tc_error_prefix(err, "space file '%s'", path);
	return 0;
}

/* ---- combinatorics ---- */

uint64_t
multiset_count(int n, int k)
{
	uint64_t c = 1;

	if (k == 0)
		return 1;
	if (n <= 0)
		return 0;
	/* C(n + k - 1, k), built so that every intermediate is an exact binomial coefficient. */
	for (int i = 1; i <= k; i++)
		c = c * (uint64_t)(n - 1 + i) / (uint64_t)i;
	return c;
}

uint64_t
multiset_rank(const int *seq, int n, int k)
{
	uint64_t r = 0;
	int prev = 0;

	for (int i = 0; i < k; i++) {
		for (int v = prev; v < seq[i]; v++)
			r += multiset_count(n - v, k - i - 1);
		prev = seq[i];
	}
	return r;
}

void
multiset_unrank(int *seq, int n, int k, uint64_t r)
{
	int v = 0;

	for (int i = 0; i < k; i++) {
		for (;; v++) {
			uint64_t c = multiset_count(n - v, k - i - 1);
			if (r < c)
				break;
			r -= c;
		}
		seq[i] = v;
	}
}

static uint64_t
ipow(uint64_t b, int e)
{
	uint64_t r = 1;

	while (e-- > 0)
		r *= b;
	return r;
}

static int
find_int(const int *list, int n, int v)
{
	for (int i = 0; i < n; i++)
		if (list[i] == v)
			return i;
	return -1;
}

static uint64_t
ffstack_count(const struct model_space *s)
{
	uint64_t c = 0;

	for (int i = 0; i < s->nfd; i++)
		c += ipow((uint64_t)s->nfw, s->ffdepth[i]);
	return c;
}

static uint64_t
headset_count(const struct model_space *s)
{
	uint64_t c = 0;

	for (int i = 0; i < s->nn; i++)
		c += multiset_count(s->nops, s->heads[i]);
	return c;
}

double
model_space_size(const struct model_space *s)
{
	double per_layer = (double)s->nh * (double)ffstack_count(s) * (double)headset_count(s), total = 0;

	for (int i = 0; i < s->nl; i++)
		total += pow(per_layer, s->layers[i]);
	return total;
}

uint64_t
accel_space_size(const struct accel_space *s)
{
	uint64_t n = 1;

	for (int p = 0; p < AP_COUNT; p++)
		if (s->fixed[p] < 0 && !(s->square_tiles && p == AP_TILE_Y))
			n *= (uint64_t)s->nval[p];
	return n;
}

/* ---- records ---- */

static int
parse_op(const char *str, int *op, int *d)
{
	const char *last = strrchr(str, '_');
	char name[16];
	long v;

	if (!last || last - str >= (long)sizeof name || parse_long(last + 1, 1, MAX_HIDDEN, &v) < 0)
		return -1;
	memcpy(name, str, (size_t)(last - str));
	name[last - str] = 0;
	for (int i = 0; i < OP_COUNT; i++)
		if (strcmp(name, head_op_names[i]) == 0) {
			*op = i;
			*d = (int)v;
			return 0;
		}
	return -1;
}

static int
get_array(json_t **out, const json_t *obj, const char *key, size_t n, struct tc_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return tc_error_set(err, "missing field 'model.%s'", key);
	if (!json_is_array(v))
		return tc_error_set(err, "model.%s: expected an array, got %s", key, json_kind(v));
	if (json_array_size(v) != n)
		return tc_error_set(err, "model.%s: expected %zu entries (one per layer), got %zu", key, n,
		                    json_array_size(v));
	*out = v;
	return 0;
}

static int
parse_layer(struct model_layer *L, int i, const json_t *o, const json_t *h, const json_t *f,
            struct tc_error *err)
{
	char what[64];
	json_t *v;
	size_t j;
	long x;

	if (json_as_int(h, "", 1, MAX_HIDDEN, &x, NULL) < 0) { /* names are built for messages only */
		snprintf(what, sizeof what, "model.h[%d]", i);
		return json_as_int(h, what, 1, MAX_HIDDEN, &x, err);
	}
	L->h = (int)x;
	if (!json_is_array(o))
		return tc_error_set(err, "model.o[%d]: expected an array of head ops, got %s", i,
		                    json_kind(o));
	if (json_array_size(o) < 1 || json_array_size(o) > MODEL_MAX_HEADS)
		return tc_error_set(err, "model.o[%d]: expected 1 to %d heads, got %zu", i, MODEL_MAX_HEADS,
		                    json_array_size(o));
	L->n = (int)json_array_size(o);
	L->d = L->h / L->n;
	if (L->d < 1)
		return tc_error_set(err, "model.o[%d]: %d heads leave no head size for hidden size %d", i,
		                    L->n, L->h);
	json_array_foreach (o, j, v) {
		int op, d;
		if (!json_is_string(v))
			return tc_error_set(err, "model.o[%d][%zu]: expected a head op string, got %s", i, j,
			                    json_kind(v));
		if (parse_op(json_string_value(v), &op, &d) < 0)
			return tc_error_set(
			    err,
			    "model.o[%d][%zu]: unknown head op '%s' (expected sa_sdp, sa_wma, "
			    "l_dft, l_dct, c_5, c_9 or c_13, then _ and the head size)",
			    i, j, json_string_value(v));
		if (d != L->d)
			return tc_error_set(
			    err,
			    "model.o[%d][%zu]: head size %d in '%s' does not match hidden size %d "
			    "over %d heads (expected %d)",
			    i, j, d, json_string_value(v), L->h, L->n, L->d);
		L->op[j] = (unsigned char)op;
	}
	if (!json_is_array(f))
		return tc_error_set(err, "model.f[%d]: expected an array of FF widths, got %s", i,
		                    json_kind(f));
	if (json_array_size(f) < 1 || json_array_size(f) > MODEL_MAX_FF)
		return tc_error_set(err, "model.f[%d]: expected 1 to %d FF layers, got %zu", i, MODEL_MAX_FF,
		                    json_array_size(f));
	L->nff = (int)json_array_size(f);
	json_array_foreach (f, j, v) {
		if (json_as_int(v, "", 1, MAX_FF, &x, NULL) < 0) {
			snprintf(what, sizeof what, "model.f[%d][%zu]", i, j);
			return json_as_int(v, what, 1, MAX_FF, &x, err);
		}
		L->ff[j] = (int)x;
	}
	return 0;
}

int
model_from_json(struct model *m, const json_t *v, const struct model_space *s, struct tc_error *err)
{
	static const char *const keys[] = {"l", "o", "h", "f"};
	json_t *o, *h, *f;
	long l;

	memset(m, 0, sizeof *m);
	if (!v)
		return tc_error_set(err, "missing field 'model'");
	if (!json_is_object(v))
		return tc_error_set(err, "field 'model': expected an object, got %s", json_kind(v));
	if (reject_unknown(v, keys, 4, "model.", err) < 0)
		return -1;
	if (json_get_int(v, "l", 1, MODEL_MAX_LAYERS, &l, err) < 0)
		return tc_error_prefix(err, "model");
	m->l = (int)l;
	if (get_array(&o, v, "o", (size_t)l, err) < 0 || get_array(&h, v, "h", (size_t)l, err) < 0 ||
	    get_array(&f, v, "f", (size_t)l, err) < 0)
		return -1;
	for (int i = 0; i < m->l; i++)
		if (parse_layer(&m->layer[i], i, json_array_get(o, (size_t)i), json_array_get(h, (size_t)i),
		                json_array_get(f, (size_t)i), err) < 0)
			return -1;
	return s ? model_check(m, s, err) : 0;
}

static void
list_ints(char *buf, size_t size, const int *v, int n)
{
	size_t k = 0;

	buf[0] = 0;
	for (int i = 0; i < n && k < size; i++)
		k += (size_t)snprintf(buf + k, size - k, "%s%d", i ? ", " : "", v[i]);
}

static int
not_in(struct tc_error *err, const char *field, int v, const int *list, int n, const char *space)
{
	char buf[256];

	list_ints(buf, sizeof buf, list, n);
	return tc_error_set(err, "%s: %d is not in the space '%s' (%s)", field, v, space, buf);
}

int
model_check(const struct model *m, const struct model_space *s, struct tc_error *err)
{
	char what[64];

	if (find_int(s->layers, s->nl, m->l) < 0)
		return not_in(err, "model.l", m->l, s->layers, s->nl, s->name);
	for (int i = 0; i < m->l; i++) {
		const struct model_layer *L = &m->layer[i];
		if (find_int(s->hidden, s->nh, L->h) < 0) {
			snprintf(what, sizeof what, "model.h[%d]", i);
			return not_in(err, what, L->h, s->hidden, s->nh, s->name);
		}
		if (find_int(s->heads, s->nn, L->n) < 0)
			return tc_error_set(err, "model.o[%d]: %d heads is not in the space '%s'", i, L->n,
			                    s->name);
		for (int j = 0; j < L->n; j++)
			if (find_int(s->ops, s->nops, L->op[j]) < 0)
				return tc_error_set(err, "model.o[%d][%d]: op '%s' is not in the space '%s'",
				                    i, j, head_op_names[L->op[j]], s->name);
		if (find_int(s->ffdepth, s->nfd, L->nff) < 0)
			return tc_error_set(err,
			                    "model.f[%d]: an FF stack of %d layers is not in the space '%s'",
			                    i, L->nff, s->name);
		for (int j = 0; j < L->nff; j++) {
			if (find_int(s->ffwidth, s->nfw, L->ff[j]) < 0) {
				snprintf(what, sizeof what, "model.f[%d][%d]", i, j);
				return not_in(err, what, L->ff[j], s->ffwidth, s->nfw, s->name);
			}
		}
	}
	return 0;
}

json_t *
model_to_json(const struct model *m)
{
	json_t *r = json_object(), *o = json_array(), *h = json_array(), *f = json_array();
	char op[32];

	for (int i = 0; i < m->l; i++) {
		const struct model_layer *L = &m->layer[i];
		json_t *heads = json_array(), *ff = json_array();
		for (int j = 0; j < L->n; j++) {
			snprintf(op, sizeof op, "%s_%d", head_op_names[L->op[j]], L->d);
			json_array_append_new(heads, json_string(op));
		}
		for (int j = 0; j < L->nff; j++)
			json_array_append_new(ff, json_integer(L->ff[j]));
		json_array_append_new(o, heads);
		json_array_append_new(h, json_integer(L->h));
		json_array_append_new(f, ff);
	}
	json_object_set_new(r, "l", json_integer(m->l));
	json_object_set_new(r, "o", o);
	json_object_set_new(r, "h", h);
	json_object_set_new(r, "f", f);
	return r;
}

static int *
int_field(struct accel *a, int p)
{
	switch (p) {
	case AP_TILE_B:
		return &a->tile_b;
	case AP_TILE_X:
		return &a->tile_x;
	case AP_TILE_Y:
		return &a->tile_y;
	case AP_PES:
		return &a->pes;
	case AP_LANES:
		return &a->lanes_per_pe;
	case AP_MACS:
		return &a->macs_per_lane;
	case AP_SOFTMAX:
		return &a->softmax_per_pe;
	case AP_BATCH:
		return &a->batch;
	default:
		return NULL;
	}
}

static double *
mb_field(struct accel *a, int p)
{
	return p == AP_ACT_MB      ? &a->act_buffer_mb
	       : p == AP_WEIGHT_MB ? &a->weight_buffer_mb
	                           : &a->mask_buffer_mb;
}

static char *
str_field(struct accel *a, int p)
{
	return p == AP_ACTIVATION ? a->activation : p == AP_MEMORY ? a->memory : a->dataflow;
}

/* The value of parameter p of a as a number (strings: not used). */
static double
num_value(const struct accel *a, int p)
{
	const int *ip = int_field((struct accel *)a, p);

	return ip ? *ip : *mb_field((struct accel *)a, p);
}

/* Set parameter p of a to value i of the space. */
static void
set_value(struct accel *a, const struct accel_space *s, int p, int i)
{
	int *ip;

	if (is_string_param(p))
		memcpy(str_field(a, p), s->str[p][i], ACCEL_NAME_MAX);
	else if ((ip = int_field(a, p)))
		*ip = (int)s->num[p][i];
	else
		*mb_field(a, p) = s->num[p][i];
}

static int
space_index(const struct accel *a, const struct accel_space *s, int p)
{
	for (int i = 0; i < s->nval[p]; i++) {
		if (is_string_param(p) ? strcmp(str_field((struct accel *)a, p), s->str[p][i]) == 0
		                       : num_value(a, p) == s->num[p][i])
			return i;
	}
	return -1;
}

int
accel_from_json(struct accel *a, const json_t *v, const struct accel_space *s, struct tc_error *err)
{
	json_t *x;

	memset(a, 0, sizeof *a);
	if (!v)
		return tc_error_set(err, "missing field 'accel'");
	if (!json_is_object(v))
		return tc_error_set(err, "field 'accel': expected an object, got %s", json_kind(v));
	if (reject_unknown(v, accel_param_names, AP_COUNT, "accel.", err) < 0)
		return -1;
	for (int p = 0; p < AP_COUNT; p++) {
		const char *what = accel_param_paths[p];
		x = json_object_get(v, accel_param_names[p]);
		if (!x && p == AP_DATAFLOW) {
			strcpy(a->dataflow, "bijk");
			continue;
		}
		if (!x)
			return tc_error_set(err, "missing field '%s'", what);
		if (is_string_param(p)) {
			if (!json_is_string(x))
				return tc_error_set(err, "field '%s': expected a string, got %s", what,
				                    json_kind(x));
			if (!valid_string(p, json_string_value(x)))
				return tc_error_set(err, "field '%s': expected %s, got '%s'", what,
				                    string_rule(p), json_string_value(x));
			memcpy(str_field(a, p), json_string_value(x), strlen(json_string_value(x)) + 1);
		} else if (is_int_param(p)) {
			long n;
			if (json_as_int(x, what, 1, MAX_UNIT, &n, err) < 0)
				return -1;
			*int_field(a, p) = (int)n;
		} else {
			double d;
			if (json_as_number(x, what, &d, err) < 0)
				return -1;
			if (!(d > 0 && d <= MAX_BUFFER_MB))
				return tc_error_set(err, "field '%s': expected a size in (0, %g] MB, got %g",
				                    what, MAX_BUFFER_MB, d);
			*mb_field(a, p) = d;
		}
	}
	if (a->tile_b > a->batch)
		return tc_error_set(err, "field 'accel.tile_b': batch tile %d exceeds the batch %d",
		                    a->tile_b, a->batch);
	return s ? accel_check(a, s, err) : 0;
}

int
accel_check(const struct accel *a, const struct accel_space *s, struct tc_error *err)
{
	char buf[512];
	size_t k;

	for (int p = 0; p < AP_COUNT; p++) {
		if (space_index(a, s, p) >= 0)
			continue;
		buf[0] = 0;
		k = 0;
		for (int i = 0; i < s->nval[p] && k < sizeof buf; i++) {
			if (is_string_param(p))
				k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "",
				                      s->str[p][i]);
			else
				k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%g", i ? ", " : "",
				                      s->num[p][i]);
		}
		if (is_string_param(p))
			return tc_error_set(err, "accel.%s: '%s' is not in the space '%s' (%s)",
			                    accel_param_names[p], str_field((struct accel *)a, p), s->name,
			                    buf);
		return tc_error_set(err, "accel.%s: %g is not in the space '%s' (%s)", accel_param_names[p],
		                    num_value(a, p), s->name, buf);
	}
	if (s->square_tiles && a->tile_x != a->tile_y)
		return tc_error_set(err, "accel.tile_y: %d must equal tile_x %d in the space '%s'", a->tile_y,
		                    a->tile_x, s->name);
	return 0;
}

int
accel_json_update(json_t *obj, const struct accel *a)
{
	for (int p = 0; p < AP_COUNT; p++) {
		json_t *v = json_object_get(obj, accel_param_names[p]);
		double x;
		if (!v)
			return -1;
		if (is_string_param(p)) {
			const char *str = str_field((struct accel *)a, p);
			if (strcmp(json_string_value(v), str) != 0 && json_string_set(v, str) < 0)
				return -1;
			continue;
		}
		x = num_value(a, p);
		if (json_is_integer(v) && x == floor(x) && fabs(x) < 9007199254740992.0)
			json_integer_set(v, (json_int_t)x);
		else if (json_object_set_new(obj, accel_param_names[p], json_number(x)) < 0)
			return -1;
	}
	return 0;
}

json_t *
accel_to_json(const struct accel *a)
{
	json_t *r = json_object();

	for (int p = 0; p < AP_COUNT; p++) {
		json_t *v = is_string_param(p) ? json_string(str_field((struct accel *)a, p))
		                               : json_number(num_value(a, p));
		json_object_set_new(r, accel_param_names[p], v);
	}
	return r;
}

/* ---- sampling ---- */

static int
pick(double u, int n)
{
	int i = (int)(u * n);

	return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/* Per layer: hidden, heads, head multiset, FF depth, then maxfd FF widths. */
static int
layer_dim(const struct model_space *s)
{
	return 4 + s->maxfd;
}

int
model_sample_dim(const struct model_space *s)
{
	return 1 + s->maxl * layer_dim(s);
}

void
model_decode(struct model *m, const struct model_space *s, const double *u)
{
	int seq[MODEL_MAX_HEADS];

	memset(m, 0, sizeof *m);
	m->l = s->layers[pick(u[0], s->nl)];
	for (int i = 0; i < m->l; i++) {
		const double *w = u + 1 + i * layer_dim(s);
		struct model_layer *L = &m->layer[i];
		uint64_t nsets, r;
		L->h = s->hidden[pick(w[0], s->nh)];
		L->n = s->heads[pick(w[1], s->nn)];
		L->d = L->h / L->n;
		nsets = multiset_count(s->nops, L->n);
		r = (uint64_t)(w[2] * (double)nsets);
		multiset_unrank(seq, s->nops, L->n, r < nsets ? r : nsets - 1);
		for (int j = 0; j < L->n; j++)
			L->op[j] = (unsigned char)s->ops[seq[j]];
		L->nff = s->ffdepth[pick(w[3], s->nfd)];
		for (int j = 0; j < L->nff; j++)
			L->ff[j] = s->ffwidth[pick(w[4 + j], s->nfw)];
	}
}

static int
varies(const struct accel_space *s, int p)
{
	return s->fixed[p] < 0 && !(s->square_tiles && p == AP_TILE_Y);
}

int
accel_sample_dim(const struct accel_space *s)
{
	int n = 0;

	for (int p = 0; p < AP_COUNT; p++)
		n += varies(s, p);
	return n;
}

/* Set the parameters that do not vary: fixed ones, and tile_y from tile_x. */
static void
accel_finish(struct accel *a, const struct accel_space *s)
{
	for (int p = 0; p < AP_COUNT; p++)
		if (s->fixed[p] >= 0)
			set_value(a, s, p, s->fixed[p]);
	if (s->square_tiles)
		a->tile_y = a->tile_x;
}

void
accel_decode(struct accel *a, const struct accel_space *s, const double *u)
{
	memset(a, 0, sizeof *a);
	for (int p = 0; p < AP_COUNT; p++)
		if (varies(s, p))
			set_value(a, s, p, pick(*u++, s->nval[p]));
	accel_finish(a, s);
}

void
accel_grid_point(struct accel *a, const struct accel_space *s, uint64_t i)
{
	memset(a, 0, sizeof *a);
	for (int p = AP_COUNT - 1; p >= 0; p--) {
		if (!varies(s, p))
			continue;
		set_value(a, s, p, (int)(i % (uint64_t)s->nval[p]));
		i /= (uint64_t)s->nval[p];
	}
	accel_finish(a, s);
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The inverses of the decoders: the centre of the cell each choice decodes from, 0.5 for
 * coordinates the point does not use. */
static double
centre(int k, uint64_t n)
{
	return ((double)k + 0.5) / (double)n;
}

void
model_unit_encode(double *u, const struct model *m, const struct model_space *s)
{
	int dim = model_sample_dim(s), seq[MODEL_MAX_HEADS];

	for (int i = 0; i < dim; i++)
		u[i] = 0.5;
	u[0] = centre(find_int(s->layers, s->nl, m->l), (uint64_t)s->nl);
	for (int i = 0; i < m->l; i++) {
		double *w = u + 1 + i * layer_dim(s);
		const struct model_layer *L = &m->layer[i];
		w[0] = centre(find_int(s->hidden, s->nh, L->h), (uint64_t)s->nh);
		w[1] = centre(find_int(s->heads, s->nn, L->n), (uint64_t)s->nn);
		for (int j = 0; j < L->n; j++)
			seq[j] = find_int(s->ops, s->nops, L->op[j]);
		qsort(seq, (size_t)L->n, sizeof *seq, cmp_int);
		w[2] =
		    ((double)multiset_rank(seq, s->nops, L->n) + 0.5) / (double)multiset_count(s->nops, L->n);
		w[3] = centre(find_int(s->ffdepth, s->nfd, L->nff), (uint64_t)s->nfd);
		for (int j = 0; j < L->nff; j++)
			w[4 + j] = centre(find_int(s->ffwidth, s->nfw, L->ff[j]), (uint64_t)s->nfw);
	}
}

void
model_unit_levels(int *levels, const struct model_space *s)
{
	uint64_t most = 1;

	for (int k = 0; k < s->nn; k++)
		if (multiset_count(s->nops, s->heads[k]) > most)
			most = multiset_count(s->nops, s->heads[k]);
	levels[0] = s->nl;
	for (int i = 0; i < s->maxl; i++) {
		int *w = levels + 1 + i * layer_dim(s);
		w[0] = s->nh;
		w[1] = s->nn;
		w[2] = most > 1000000 ? 1000000 : (int)most;
		w[3] = s->nfd;
		for (int j = 0; j < s->maxfd; j++)
			w[4 + j] = s->nfw;
	}
}

void
accel_unit_encode(double *u, const struct accel *a, const struct accel_space *s)
{
	for (int p = 0; p < AP_COUNT; p++)
		if (varies(s, p))
			*u++ = centre(space_index(a, s, p), (uint64_t)s->nval[p]);
}

void
accel_unit_levels(int *levels, const struct accel_space *s)
{
	for (int p = 0; p < AP_COUNT; p++)
		if (varies(s, p))
			*levels++ = s->nval[p];
}

/* ---- encodings ---- */

int
model_encode_dim(const struct model_space *s)
{
	return 1 + 3 * s->maxl;
}

static uint64_t
ffstack_index(const struct model_layer *L, const struct model_space *s)
{
	uint64_t idx = 0, w = 0;
	int k = find_int(s->ffdepth, s->nfd, L->nff);

	for (int i = 0; i < k; i++)
		idx += ipow((uint64_t)s->nfw, s->ffdepth[i]);
	for (int j = 0; j < L->nff; j++)
		w = w * (uint64_t)s->nfw + (uint64_t)find_int(s->ffwidth, s->nfw, L->ff[j]);
	return idx + w;
}

static uint64_t
headset_index(const struct model_layer *L, const struct model_space *s)
{
	int seq[MODEL_MAX_HEADS], k = find_int(s->heads, s->nn, L->n);
	uint64_t idx = 0;

	for (int i = 0; i < k; i++)
		idx += multiset_count(s->nops, s->heads[i]);
	for (int j = 0; j < L->n; j++)
		seq[j] = find_int(s->ops, s->nops, L->op[j]);
	qsort(seq, (size_t)L->n, sizeof *seq, cmp_int);
	return idx + multiset_rank(seq, s->nops, L->n);
}

void
model_encode(int64_t *e, const struct model *m, const struct model_space *s)
{
	memset(e, 0, sizeof *e * (size_t)model_encode_dim(s));
	e[0] = find_int(s->layers, s->nl, m->l);
	for (int i = 0; i < m->l; i++) {
		e[1 + 3 * i] = find_int(s->hidden, s->nh, m->layer[i].h);
		e[2 + 3 * i] = (int64_t)ffstack_index(&m->layer[i], s);
		e[3 + 3 * i] = (int64_t)headset_index(&m->layer[i], s);
	}
}

void
model_encode_bounds(int64_t *lo, int64_t *hi, const struct model_space *s)
{
	int dim = model_encode_dim(s);

	for (int i = 0; i < dim; i++)
		lo[i] = 0;
	hi[0] = s->nl - 1;
	for (int i = 0; i < s->maxl; i++) {
		hi[1 + 3 * i] = s->nh - 1;
		hi[2 + 3 * i] = (int64_t)ffstack_count(s) - 1;
		hi[3 + 3 * i] = (int64_t)headset_count(s) - 1;
	}
}

static void
decode_ffstack(struct model_layer *L, const struct model_space *s, uint64_t idx)
{
	int k = 0;

	while (k < s->nfd - 1 && idx >= ipow((uint64_t)s->nfw, s->ffdepth[k]))
		idx -= ipow((uint64_t)s->nfw, s->ffdepth[k++]);
	L->nff = s->ffdepth[k];
	for (int j = L->nff - 1; j >= 0; j--) {
		L->ff[j] = s->ffwidth[idx % (uint64_t)s->nfw];
		idx /= (uint64_t)s->nfw;
	}
}

static void
decode_headset(struct model_layer *L, const struct model_space *s, uint64_t idx)
{
	int seq[MODEL_MAX_HEADS], k = 0;

	while (k < s->nn - 1 && idx >= multiset_count(s->nops, s->heads[k]))
		idx -= multiset_count(s->nops, s->heads[k++]);
	L->n = s->heads[k];
	L->d = L->h / L->n;
	multiset_unrank(seq, s->nops, L->n, idx);
	for (int j = 0; j < L->n; j++)
		L->op[j] = (unsigned char)s->ops[seq[j]];
}

int
model_decode_encoding(struct model *m, const struct model_space *s, const int64_t *e, struct tc_error *err)
{
	int64_t lo[1 + 3 * MODEL_MAX_LAYERS], hi[1 + 3 * MODEL_MAX_LAYERS];
	int dim = model_encode_dim(s);

	model_encode_bounds(lo, hi, s);
	for (int i = 0; i < dim; i++)
		if (e[i] < lo[i] || e[i] > hi[i])
			return tc_error_set(err, "encoding entry %d: %lld is outside [%lld, %lld]", i,
			                    (long long)e[i], (long long)lo[i], (long long)hi[i]);
	memset(m, 0, sizeof *m);
	m->l = s->layers[e[0]];
	for (int i = 0; i < m->l; i++) {
		m->layer[i].h = s->hidden[e[1 + 3 * i]];
		decode_ffstack(&m->layer[i], s, (uint64_t)e[2 + 3 * i]);
		decode_headset(&m->layer[i], s, (uint64_t)e[3 + 3 * i]);
	}
	return 0;
}

void
model_snap(struct model *m, const struct model_space *s, const double *x)
{
	int64_t lo[1 + 3 * MODEL_MAX_LAYERS], hi[1 + 3 * MODEL_MAX_LAYERS], e[1 + 3 * MODEL_MAX_LAYERS];
	int dim = model_encode_dim(s);

	model_encode_bounds(lo, hi, s);
	for (int i = 0; i < dim; i++) {
		double r = isfinite(x[i]) ? nearbyint(x[i]) : 0;
		e[i] = r < (double)lo[i] ? lo[i] : r > (double)hi[i] ? hi[i] : (int64_t)r;
	}
	model_decode_encoding(m, s, e, NULL);
}

static const int enc_param[ACCEL_ENC_DIM] = {AP_TILE_B, AP_TILE_X,    AP_TILE_Y,  AP_PES,
                                             AP_LANES,  AP_MACS,      AP_SOFTMAX, AP_BATCH,
                                             AP_ACT_MB, AP_WEIGHT_MB, AP_MASK_MB, AP_MEMORY};

void
accel_encode(double *e, const struct accel *a, const struct accel_space *s)
{
	for (int i = 0; i < ACCEL_ENC_DIM; i++) {
		int p = enc_param[i];
		e[i] = p == AP_MEMORY ? space_index(a, s, p) : num_value(a, p);
	}
}

void
accel_encode_bounds(double *lo, double *hi, const struct accel_space *s)
{
	for (int i = 0; i < ACCEL_ENC_DIM; i++) {
		int p = enc_param[i];
		lo[i] = p == AP_MEMORY ? 0 : s->num[p][0];
		hi[i] = p == AP_MEMORY ? s->nval[p] - 1 : s->num[p][s->nval[p] - 1];
	}
}

void
accel_snap(struct accel *a, const struct accel_space *s, const double *x)
{
	memset(a, 0, sizeof *a);
	for (int i = 0; i < ACCEL_ENC_DIM; i++) {
		int p = enc_param[i], best = 0;
		double v = isfinite(x[i]) ? x[i] : 0;
		if (p == AP_MEMORY) {
			double r = nearbyint(v);
			best = r < 0 ? 0 : r > s->nval[p] - 1 ? s->nval[p] - 1 : (int)r;
		} else {
			for (int j = 1; j < s->nval[p]; j++)
				if (fabs(s->num[p][j] - v) < fabs(s->num[p][best] - v))
					best = j;
		}
		set_value(a, s, p, best);
	}
	set_value(a, s, AP_ACTIVATION, 0);
	set_value(a, s, AP_DATAFLOW, 0);
	accel_finish(a, s);
	/* max(tile_b) <= min(batch) holds in every loaded space, so tile_b needs no repair. */
}

/* ---- identity ---- */

/* Shortest of %.15g, %.16g, %.17g that reads back exactly (the same rule as jsonl_write). */
static int
fmt_num(char *buf, size_t size, double x)
{
	int n = 0;

	if (x == floor(x) && fabs(x) < 1e15 && size >= 24) {
		/* Integers are nearly every value here; printing them by hand keeps ids cheap in --grid. */
		char tmp[24];
		long v = (long)fabs(x);
		int k = 0;
		do
			tmp[k++] = (char)('0' + v % 10);
		while ((v /= 10) > 0);
		if (x < 0)
			tmp[k++] = '-';
		for (int i = 0; i < k; i++)
			buf[i] = tmp[k - 1 - i];
		buf[k] = 0;
		return k;
	}
	for (int p = 15; p <= 17; p++) {
		n = snprintf(buf, size, "%.*g", p, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	return n;
}

#define APPEND(...)                                                                                          \
	do {                                                                                                 \
		int n_ = snprintf(buf + (k < size ? k : size), k < size ? size - k : 0, __VA_ARGS__);        \
		k += (size_t)(n_ > 0 ? n_ : 0);                                                              \
	} while (0)

size_t
model_canonical(char *buf, size_t size, const struct model *m)
{
	size_t k = 0;
	int ops[MODEL_MAX_HEADS];

	for (int i = 0; i < m->l; i++) {
		const struct model_layer *L = &m->layer[i];
		APPEND("%s%d:", i ? "|" : "", L->h);
		for (int j = 0; j < L->n; j++)
			ops[j] = L->op[j];
		qsort(ops, (size_t)L->n, sizeof *ops, cmp_int);
		for (int j = 0; j < L->n; j++)
			APPEND("%s%s", j ? "+" : "", head_op_names[ops[j]]);
		APPEND(":");
		for (int j = 0; j < L->nff; j++)
			APPEND("%s%d", j ? "x" : "", L->ff[j]);
	}
	return k;
}

size_t
accel_canonical(char *buf, size_t size, const struct accel *a)
{
	char num[40];
	size_t k = 0;

	for (int p = 0; p < AP_COUNT; p++) {
		const char *v = num;
		size_t n;
		if (is_string_param(p))
			v = str_field((struct accel *)a, p);
		else
			fmt_num(num, sizeof num, num_value(a, p));
		n = strlen(v);
		if (k + n + 2 <= size) {
			if (p)
				buf[k] = ',';
			memcpy(buf + k + (p > 0), v, n + 1);
		}
		k += n + (p > 0);
	}
	return k;
}

#undef APPEND

void
candidate_id(char *out, const struct model *m, const struct accel *a)
{
	char buf[32768];
	uint64_t h = TC_HASH_INIT;
	size_t n;

	if (m) {
		n = model_canonical(buf, sizeof buf, m);
		h = tc_hash_bytes(h, "model=", 6);
		h = tc_hash_bytes(h, buf, n < sizeof buf ? n : sizeof buf - 1);
		h = tc_hash_bytes(h, "\n", 1);
	}
	if (a) {
		n = accel_canonical(buf, sizeof buf, a);
		h = tc_hash_bytes(h, "accel=", 6);
		h = tc_hash_bytes(h, buf, n < sizeof buf ? n : sizeof buf - 1);
		h = tc_hash_bytes(h, "\n", 1);
	}
	snprintf(out, 17, "%016llx", (unsigned long long)tc_hash_final(h));
}

json_t *
candidate_to_json(const struct model *m, const struct accel *a)
{
	json_t *r = json_object();
	char id[17];

	candidate_id(id, m, a);
	json_object_set_new(r, "id", json_string(id));
	if (m)
		json_object_set_new(r, "model", model_to_json(m));
	if (a)
		json_object_set_new(r, "accel", accel_to_json(a));
	return r;
}

json_t *
model_encoding_json(const struct model *m, const struct model_space *s)
{
	int64_t e[1 + 3 * MODEL_MAX_LAYERS];
	json_t *r = json_array();

	model_encode(e, m, s);
	for (int i = 0; i < model_encode_dim(s); i++)
		json_array_append_new(r, json_integer(e[i]));
	return r;
}

json_t *
accel_encoding_json(const struct accel *a, const struct accel_space *s)
{
	double e[ACCEL_ENC_DIM];
	json_t *r = json_array();

	accel_encode(e, a, s);
	for (int i = 0; i < ACCEL_ENC_DIM; i++)
		json_array_append_new(r, json_number(e[i]));
	return r;
}
