/*
 * tensor.c: tensor sets and the safetensors file layout, read and written through byte callbacks so that
 * memory buffers, plain files and the gzip frames of tstream.c share one validating reader and one writer.
 *
 * Layout (tc-tensor(5)): an 8-byte little-endian header length N, N bytes of a JSON object (padded with
 * spaces so that 8 + N is a multiple of 8), then the data section, where every tensor's bytes lie at its
 * data_offsets and the tensors cover the section exactly, with no gap and no overlap.
 *
 * Invariants of a struct tensor_set: names are unique, valid UTF-8 and never "__metadata__"; every data
 * buffer holds exactly numel * element size bytes; t[] is in data order, so the data section of a file is
 * the concatenation of the buffers and writing what was read gives the same bytes; metadata is kept sorted
 * by key, so its order in a written header does not depend on the order of the calls that set it.
 *
 * Why the reader is shaped like this: a header is tiny next to the data (BERT-Base, 110 M parameters in
 * 440 MB of F32, has about 200 tensors and a header of about 20 KB), so it is read and checked whole
 * before any data is touched; data buffers then grow while bytes actually arrive, so a hostile header
 * cannot make a reader of a pipe allocate memory that the input never backs. Stdin is not stat'ed for its
 * size, as it may not be positioned at its start; its trailing bytes are found by reading one more.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tensor.h"
#include "util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor.c keeps data as little-endian bytes in host order; a big-endian host needs byte swapping"
#endif

/* Data buffers start at this size (or the tensor's size if smaller) and double while bytes arrive. */
#define READ_CHUNK (1u << 20)
/* The most one call of a read callback is asked for, so that zlib's 32-bit counts and a long hold it. */
#define READ_CALL_MAX (1u << 30)

static const struct {
	const char *name;
	size_t size;
} dtypes[TENSOR_NDTYPE] = {
    [TENSOR_F64] = {"F64", 8},   [TENSOR_F32] = {"F32", 4}, [TENSOR_F16] = {"F16", 2},
    [TENSOR_BF16] = {"BF16", 2}, [TENSOR_I64] = {"I64", 8}, [TENSOR_I32] = {"I32", 4},
    [TENSOR_I16] = {"I16", 2},   [TENSOR_I8] = {"I8", 1},   [TENSOR_U8] = {"U8", 1},
    [TENSOR_BOOL] = {"BOOL", 1},
};

static const char METADATA_KEY[] = "__metadata__";

const char *
tensor_dtype_name(enum tensor_dtype dtype)
{
	return (unsigned)dtype < TENSOR_NDTYPE ? dtypes[dtype].name : "?";
}

size_t
tensor_dtype_size(enum tensor_dtype dtype)
{
	return (unsigned)dtype < TENSOR_NDTYPE ? dtypes[dtype].size : 0;
}

int
tensor_dtype_parse(const char *s, enum tensor_dtype *out)
{
	for (int i = 0; i < TENSOR_NDTYPE; i++) {
		if (strcmp(s, dtypes[i].name) == 0) {
			*out = (enum tensor_dtype)i;
			return 0;
		}
	}
	return -1;
}

int64_t
tensor_numel(const struct tensor *t)
{
	int64_t n = 1;

	for (int i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	return n;
}

char *
tensor_shape_format(char *buf, size_t size, int ndim, const int64_t *shape)
{
	size_t k = 0;

	if (size == 0)
		return buf;
	buf[0] = 0;
	k += (size_t)snprintf(buf, size, "[");
	for (int i = 0; i < ndim && k < size; i++)
		k += (size_t)snprintf(buf + k, size - k, "%s%" PRId64, i ? ", " : "", shape[i]);
	if (k < size)
		snprintf(buf + k, size - k, "]");
	return buf;
}

/*
 * Size in bytes of a tensor of this dtype and shape. Returns 0 and sets *nbytes, -1 when a dimension is
 * negative, or -2 when the product of the non-zero dimensions times the element size exceeds INT64_MAX (so
 * also any stride a caller derives from the shape fits).
 */
static int
shape_nbytes(enum tensor_dtype dtype, int ndim, const int64_t *shape, uint64_t *nbytes)
{
	uint64_t span = tensor_dtype_size(dtype), n = span;

	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return -1;
		if (shape[i] == 0) {
			n = 0;
			continue;
		}
		if (__builtin_mul_overflow(span, (uint64_t)shape[i], &span) || span > INT64_MAX)
			return -2;
		n *= (uint64_t)shape[i];
	}
	if (n > SIZE_MAX)
		return -2;
	*nbytes = n;
	return 0;
}

/* Whether s is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static int
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned c = *p++, need, min;
		uint32_t cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, min = 0x80, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, min = 0x800, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, min = 0x10000, cp = c & 0x07;
		else
			return 0;
		for (unsigned i = 0; i < need; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

void
tensor_set_init(struct tensor_set *set)
{
	memset(set, 0, sizeof *set);
}

void
tensor_set_release(struct tensor_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->t[i].name);
		free(set->t[i].data);
	}
	for (size_t i = 0; i < set->nmeta; i++) {
		free(set->meta_key[i]);
		free(set->meta_val[i]);
	}
	free(set->t);
	free(set->meta_key);
	free(set->meta_val);
	free(set->index);
	tensor_set_init(set);
}

struct tensor_set *
tensor_set_new(void)
{
	struct tensor_set *set = emalloc(sizeof *set);

	tensor_set_init(set);
	return set;
}

void
tensor_set_free(struct tensor_set *set)
{
	if (!set)
		return;
	tensor_set_release(set);
	free(set);
}

static size_t
name_hash(const char *name)
{
	return (size_t)tc_hash_final(tc_hash_bytes(TC_HASH_INIT, name, strlen(name)));
}

/* Put position i of set->t into the index, which has a free slot. */
static void
index_put(struct tensor_set *set, size_t i)
{
	size_t mask = set->nindex - 1, h = name_hash(set->t[i].name) & mask;

	while (set->index[h])
		h = (h + 1) & mask;
	set->index[h] = i + 1;
}

/* Make room in the index for one more name, keeping it at most half full. */
static void
index_reserve(struct tensor_set *set)
{
	if (2 * (set->n + 1) <= set->nindex)
		return;
	free(set->index);
	set->nindex = set->nindex ? 2 * set->nindex : 64;
	set->index = ecalloc(set->nindex, sizeof *set->index);
	for (size_t i = 0; i < set->n; i++)
		index_put(set, i);
}

struct tensor *
tensor_set_find(const struct tensor_set *set, const char *name)
{
	size_t mask, h;

	if (!set->nindex)
		return NULL;
	mask = set->nindex - 1;
	for (h = name_hash(name) & mask; set->index[h]; h = (h + 1) & mask) {
		struct tensor *t = &set->t[set->index[h] - 1];

		if (strcmp(t->name, name) == 0)
			return t;
	}
	return NULL;
}

/*
 * Append a tensor whose name, dtype and shape the caller has validated, taking ownership of data (nbytes
 * bytes, may be NULL until the reader fills it). Returns the tensor; exits only when out of memory.
 */
static struct tensor *
append(struct tensor_set *set, const char *name, enum tensor_dtype dtype, int ndim, const int64_t *shape,
       void *data, size_t nbytes)
{
	struct tensor *t;

	index_reserve(set);
	set->t = egrow(set->t, &set->cap, set->n + 1, sizeof *set->t);
	t = &set->t[set->n];
	memset(t, 0, sizeof *t);
	t->name = estrdup(name);
	t->dtype = dtype;
	t->ndim = ndim;
	if (ndim)
		memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	t->data = data;
	t->nbytes = nbytes;
	index_put(set, set->n++);
	return t;
}

struct tensor *
tensor_set_add(struct tensor_set *set, const char *name, enum tensor_dtype dtype, int ndim,
               const int64_t *shape, struct tc_error *err)
{
	char sbuf[TENSOR_SHAPE_STRMAX];
	uint64_t nbytes;
	void *data;
	int rc;

	if (!utf8_valid(name))
		return tc_error_set(err, "tensor name is not valid UTF-8"), NULL;
	if (strcmp(name, METADATA_KEY) == 0)
		return tc_error_set(err, "'%s' is reserved and cannot name a tensor", METADATA_KEY), NULL;
	if (tensor_set_find(set, name))
		return tc_error_set(err, "duplicate tensor name '%s'", name), NULL;
	if ((unsigned)dtype >= TENSOR_NDTYPE)
		return tc_error_set(err, "tensor '%s': invalid dtype %d", name, (int)dtype), NULL;
	if (ndim < 0 || ndim > TENSOR_MAX_DIM)
		return tc_error_set(err, "tensor '%s': %d dimensions (at most %d are supported)", name, ndim,
		                    TENSOR_MAX_DIM),
		       NULL;
	rc = shape_nbytes(dtype, ndim, shape, &nbytes);
	if (rc < 0) {
		tensor_shape_format(sbuf, sizeof sbuf, ndim, shape);
		return tc_error_set(err, "tensor '%s': shape %s %s", name, sbuf,
		                    rc == -1 ? "has a negative dimension" : "is too large"),
		       NULL;
	}
	data = calloc(nbytes ? nbytes : 1, 1);
	if (!data)
		return tc_error_set(err, "tensor '%s': out of memory for %" PRIu64 " bytes", name, nbytes),
		       NULL;
	return append(set, name, dtype, ndim, shape, data, nbytes);
}

/* Binary search for key in the sorted metadata: its position if found (*found = 1), else where it goes. */
static size_t
meta_pos(const struct tensor_set *set, const char *key, int *found)
{
	size_t lo = 0, hi = set->nmeta;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(set->meta_key[mid], key);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
tensor_set_meta(struct tensor_set *set, const char *key, const char *value, struct tc_error *err)
{
	size_t cap, i, tail;
	int found;

	if (!utf8_valid(key))
		return tc_error_set(err, "metadata key is not valid UTF-8");
	if (value && !utf8_valid(value))
		return tc_error_set(err, "metadata '%s': value is not valid UTF-8", key);
	i = meta_pos(set, key, &found);
	tail = set->nmeta - i;
	if (found) {
		free(set->meta_val[i]);
		if (value) {
			set->meta_val[i] = estrdup(value);
			return 0;
		}
		free(set->meta_key[i]);
		memmove(set->meta_key + i, set->meta_key + i + 1, (tail - 1) * sizeof *set->meta_key);
		memmove(set->meta_val + i, set->meta_val + i + 1, (tail - 1) * sizeof *set->meta_val);
		set->nmeta--;
		return 0;
	}
	if (!value)
		return 0;
	cap = set->metacap; /* both arrays grow alike, so one capacity describes both */
	set->meta_key = egrow(set->meta_key, &cap, set->nmeta + 1, sizeof *set->meta_key);
	set->meta_val = egrow(set->meta_val, &set->metacap, set->nmeta + 1, sizeof *set->meta_val);
	memmove(set->meta_key + i + 1, set->meta_key + i, tail * sizeof *set->meta_key);
	memmove(set->meta_val + i + 1, set->meta_val + i, tail * sizeof *set->meta_val);
	set->meta_key[i] = estrdup(key);
	set->meta_val[i] = estrdup(value);
	set->nmeta++;
	return 0;
}

const char *
tensor_set_get_meta(const struct tensor_set *set, const char *key)
{
	int found;
	size_t i = meta_pos(set, key, &found);

	return found ? set->meta_val[i] : NULL;
}

/* ---- writing ---- */

/*
 * The JSON header of set, compact, keys in a fixed order: "__metadata__" first (only when there is
 * metadata, its keys sorted), then the tensors in data order, each as {"dtype", "shape", "data_offsets"}
 * (the reference writer's order). Returns a malloc'ed string, or NULL with err set.
 */
static char *
header_json(const struct tensor_set *set, struct tc_error *err)
{
	json_t *root = json_object(), *meta, *o, *shape;
	uint64_t off = 0;
	int bad = !root;
	char *s;

	if (!bad && set->nmeta) {
		meta = json_object();
		bad |= json_object_set_new(root, METADATA_KEY, meta);
		for (size_t i = 0; i < set->nmeta && !bad; i++)
			bad |= json_object_set_new(meta, set->meta_key[i], json_string(set->meta_val[i]));
	}
	for (size_t i = 0; i < set->n && !bad; i++) {
		const struct tensor *t = &set->t[i];

		o = json_object();
		shape = json_array();
		bad |= json_object_set_new(root, t->name, o);
		bad |= json_object_set_new(o, "dtype", json_string(tensor_dtype_name(t->dtype)));
		bad |= json_object_set_new(o, "shape", shape);
		for (int d = 0; d < t->ndim && !bad; d++)
			bad |= json_array_append_new(shape, json_integer(t->shape[d]));
		bad |= json_object_set_new(o, "data_offsets",
		                           json_pack("[II]", (json_int_t)off, (json_int_t)(off + t->nbytes)));
		off += t->nbytes;
	}
	s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		tc_error_set(err, "cannot build the tensor header (out of memory?)");
	return s;
}

int
tensor_set_write(const struct tensor_set *set,
                 int (*writefn)(void *ctx, const void *buf, size_t n, struct tc_error *err), void *ctx,
                 struct tc_error *err)
{
	static const char spaces[8] = "        ";
	unsigned char prefix[8];
	char *json = header_json(set, err);
	size_t len, pad;
	int rc = 0;

	if (!json)
		return -1;
	len = strlen(json);
	pad = (8 - len % 8) % 8;
	for (int i = 0; i < 8; i++)
		prefix[i] = (unsigned char)((uint64_t)(len + pad) >> (8 * i));
	if (writefn(ctx, prefix, 8, err) || writefn(ctx, json, len, err) ||
	    (pad && writefn(ctx, spaces, pad, err)))
		rc = -1;
	free(json);
	for (size_t i = 0; i < set->n && rc == 0; i++)
		if (set->t[i].nbytes)
			rc = writefn(ctx, set->t[i].data, set->t[i].nbytes, err);
	return rc;
}

/* ---- reading ---- */

/* One tensor entry of a header while it is checked; name points into the parsed JSON. */
struct entry {
	const char *name;
	size_t pos; /* position in the header, to keep the sort stable */
	enum tensor_dtype dtype;
	int ndim;
	int64_t shape[TENSOR_MAX_DIM];
	uint64_t begin, end;
};

/* Fetch the integer elements of a JSON array into v (at most max); return the count, or -1 with *bad set
 * to the first element that is not an integer (or -2 if the value is not an array or too long). */
static int
int_array(json_t *a, int64_t *v, int max, size_t *bad)
{
	size_t i;
	json_t *x;

	if (!json_is_array(a) || json_array_size(a) > (size_t)max)
		return -2;
	json_array_foreach (a, i, x) {
		if (!json_is_integer(x)) {
			*bad = i;
			return -1;
		}
		v[i] = json_integer_value(x);
	}
	return (int)json_array_size(a);
}

/*
 * Check one tensor entry of a header and fill e. avail is the size of the data section when known, else
 * UINT64_MAX. Returns 0, or -1 with err set to the problem; the caller names the file and the tensor.
 */
static int
parse_entry(json_t *v, struct entry *e, uint64_t avail, struct tc_error *err)
{
	char sbuf[TENSOR_SHAPE_STRMAX];
	json_t *dtype, *shape, *offs, *x;
	int64_t off[3];
	uint64_t nbytes;
	const char *k;
	size_t bad = 0;
	int rc;

	if (!json_is_object(v))
		return tc_error_set(err, "entry is not an object");
	json_object_foreach (v, k, x) {
		if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
			return tc_error_set(err, "unknown field '%s'", k);
	}
	dtype = json_object_get(v, "dtype");
	shape = json_object_get(v, "shape");
	offs = json_object_get(v, "data_offsets");
	if (!dtype || !shape || !offs)
		return tc_error_set(err, "missing \"%s\"",
		                    !dtype   ? "dtype"
		                    : !shape ? "shape"
		                             : "data_offsets");
	if (!json_is_string(dtype))
		return tc_error_set(err, "\"dtype\" is not a string");
	if (tensor_dtype_parse(json_string_value(dtype), &e->dtype))
		return tc_error_set(err,
		                    "unknown dtype '%s' (known: F64, F32, F16, BF16, I64, I32, I16, I8, "
		                    "U8, BOOL)",
		                    json_string_value(dtype));
	if (json_is_array(shape) && json_array_size(shape) > TENSOR_MAX_DIM)
		return tc_error_set(err, "shape has %zu dimensions (at most %d are supported)",
		                    json_array_size(shape), TENSOR_MAX_DIM);
	e->ndim = int_array(shape, e->shape, TENSOR_MAX_DIM, &bad);
	if (e->ndim == -2)
		return tc_error_set(err, "\"shape\" is not an array");
	if (e->ndim < 0)
		return tc_error_set(err, "shape[%zu] is not an integer", bad);
	tensor_shape_format(sbuf, sizeof sbuf, e->ndim, e->shape);
	rc = shape_nbytes(e->dtype, e->ndim, e->shape, &nbytes);
	if (rc == -1)
		return tc_error_set(err, "shape %s has a negative dimension", sbuf);
	if (rc == -2)
		return tc_error_set(err, "shape %s of %s overflows (2^63 bytes or more)", sbuf,
		                    tensor_dtype_name(e->dtype));
	if (int_array(offs, off, 3, &bad) != 2)
		return tc_error_set(err, "\"data_offsets\" is not an array of two integers");
	if (off[0] < 0 || off[1] < 0)
		return tc_error_set(err, "data_offsets [%" PRId64 ", %" PRId64 "] are negative", off[0],
		                    off[1]);
	if (off[0] > off[1])
		return tc_error_set(err, "data_offsets [%" PRId64 ", %" PRId64 "] end before they begin",
		                    off[0], off[1]);
	e->begin = (uint64_t)off[0];
	e->end = (uint64_t)off[1];
	if (e->end - e->begin != nbytes)
		return tc_error_set(err,
		                    "data_offsets [%" PRIu64 ", %" PRIu64 "] do not match shape %s "
		                    "of %s (%" PRIu64 " bytes)",
		                    e->begin, e->end, sbuf, tensor_dtype_name(e->dtype), nbytes);
	if (e->end > avail)
		return tc_error_set(err,
		                    "data_offsets [%" PRIu64 ", %" PRIu64 "] out of range (the data "
		                    "section has %" PRIu64 " bytes)",
		                    e->begin, e->end, avail);
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The message for a failed json_loadb: a duplicate key gets its own wording, as it is a format rule. */
static int
json_error(const json_error_t *je, const char *what, struct tc_error *err)
{
	static const char dup[] = "duplicate object key near '";
	size_t n = strlen(dup), len = strlen(je->text);

	if (json_error_code(je) == json_error_duplicate_key && strncmp(je->text, dup, n) == 0 && len > n)
		return tc_error_set(err, "%s: duplicate key %.*s in header (byte %d)", what,
		                    (int)(len - n - 1), je->text + n, je->position);
	return tc_error_set(err, "%s: header is not valid JSON: %s (byte %d)", what, je->text, je->position);
}

/*
 * Parse and check the header json (n bytes, padding included) and replace the contents of set with its
 * tensors in data order (data NULL, nbytes set) and metadata. avail is the size of the data section when
 * known, else UINT64_MAX. Sets *datalen to the size of the data section the header describes. Returns 0, or
 * -1 with err set and set left empty.
 */
static int
parse_header(struct tensor_set *set, const char *json, size_t n, uint64_t avail, uint64_t *datalen,
             const char *what, struct tc_error *err)
{
	struct entry *e = NULL;
	size_t ne = 0, cap = 0;
	uint64_t pos = 0;
	json_error_t je;
	json_t *root, *v, *meta = NULL;
	const char *k;
	int rc = -1;

	tensor_set_release(set);
	if (n == 0 || json[0] != '{')
		return tc_error_set(err, "%s: header is not a JSON object (it does not start with '{')",
		                    what);
	root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return json_error(&je, what, err);
	if (!json_is_object(root)) {
		tc_error_set(err, "%s: header is not a JSON object", what);
		goto out;
	}
	json_object_foreach (root, k, v) {
		if (strcmp(k, METADATA_KEY) == 0) {
			meta = v;
			continue;
		}
		e = egrow(e, &cap, ne + 1, sizeof *e);
		e[ne].name = k;
		e[ne].pos = ne;
		if (parse_entry(v, &e[ne], avail, err)) {
			tc_error_prefix(err, "%s: tensor '%s'", what, k);
			goto out;
		}
		ne++;
	}
	if (meta && !json_is_object(meta)) {
		tc_error_set(err, "%s: \"%s\" is not an object", what, METADATA_KEY);
		goto out;
	}
	if (meta) {
		json_object_foreach (meta, k, v) {
			if (!json_is_string(v)) {
				tc_error_set(err, "%s: metadata '%s': value is not a string", what, k);
				goto out;
			}
		}
	}
	if (ne) /* e is NULL for a header without tensors, and qsort must not see NULL */
		qsort(e, ne, sizeof *e, entry_cmp);
	for (size_t i = 0; i < ne; i++) {
		const struct entry *x = &e[i], *prev = &e[i ? i - 1 : 0];

		if (x->begin < pos) {
			tc_error_set(err,
			             "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] "
			             "overlap tensor '%s' [%" PRIu64 ", %" PRIu64 "]",
			             what, x->name, x->begin, x->end, prev->name, prev->begin, prev->end);
			goto out;
		}
		if (x->begin > pos) {
			tc_error_set(err,
			             "%s: gap in the data section: bytes [%" PRIu64 ", %" PRIu64 ") "
			             "before tensor '%s' belong to no tensor",
			             what, pos, x->begin, x->name);
			goto out;
		}
		pos = x->end;
	}
	if (avail != UINT64_MAX && pos < avail) {
		tc_error_set(err,
		             "%s: trailing garbage: %" PRIu64 " bytes after the data section (which "
		             "ends at byte %" PRIu64 ")",
		             what, avail - pos, pos);
		goto out;
	}
	for (size_t i = 0; i < ne; i++)
		append(set, e[i].name, e[i].dtype, e[i].ndim, e[i].shape, NULL, e[i].end - e[i].begin);
	if (meta) {
		json_object_foreach (meta, k, v)
			tensor_set_meta(set, k, json_string_value(v), NULL);
	}
	*datalen = pos;
	rc = 0;
out:
	free(e);
	json_decref(root);
	return rc;
}

/*
 * Read n bytes through readfn into a buffer that grows as bytes arrive. Returns the buffer (n bytes, at
 * least 1 allocated) or NULL with err set: on a short read to "<what>: truncated (expected <total> <kind>
 * bytes, got <done + count>)", where done and total place this read inside a larger one.
 */
static void *
read_grow(long (*readfn)(void *, void *, size_t, struct tc_error *), void *ctx, size_t n, uint64_t done,
          uint64_t total, const char *kind, const char *what, struct tc_error *err)
{
	size_t cap = n < READ_CHUNK ? n : READ_CHUNK, got = 0, want;
	char *buf = malloc(cap ? cap : 1), *p;
	long r;

	if (!buf)
		goto oom;
	while (got < n) {
		if (got == cap) {
			cap = cap > n / 2 ? n : 2 * cap;
			p = realloc(buf, cap);
			if (!p)
				goto oom;
			buf = p;
		}
		want = cap - got < READ_CALL_MAX ? cap - got : READ_CALL_MAX;
		r = readfn(ctx, buf + got, want, err);
		if (r < 0) {
			tc_error_prefix(err, "%s", what);
			free(buf);
			return NULL;
		}
		got += (size_t)r;
		if ((size_t)r < want) {
			tc_error_set(err, "%s: truncated (expected %" PRIu64 " %s bytes, got %" PRIu64 ")",
			             what, total, kind, done + got);
			free(buf);
			return NULL;
		}
	}
	return buf;
oom:
	free(buf);
	tc_error_set(err, "%s: out of memory reading %zu bytes", what, n);
	return NULL;
}

int
tensor_set_read(struct tensor_set *set, long (*readfn)(void *ctx, void *buf, size_t n, struct tc_error *err),
                void *ctx, uint64_t size, const char *what, struct tc_error *err)
{
	unsigned char prefix[8];
	uint64_t n = 0, datalen, done = 0;
	char *json;
	long r;

	tensor_set_release(set);
	r = readfn(ctx, prefix, 8, err);
	if (r < 0)
		return tc_error_prefix(err, "%s", what);
	if (r == 0)
		return 0;
	if (r < 8)
		return tc_error_set(err, "%s: truncated (expected 8 header-length bytes, got %ld)", what, r);
	for (int i = 7; i >= 0; i--)
		n = n << 8 | prefix[i];
	if (n > TENSOR_HEADER_MAX)
		return tc_error_set(err, "%s: header length %" PRIu64 " exceeds the limit of %u bytes", what,
		                    n, TENSOR_HEADER_MAX);
	if (size != UINT64_MAX && (size < 8 || n > size - 8))
		return tc_error_set(err,
		                    "%s: header length %" PRIu64 " is larger than the rest of the "
		                    "file (%" PRIu64 " bytes)",
		                    what, n, size < 8 ? 0 : size - 8);
	json = read_grow(readfn, ctx, (size_t)n, 0, n, "header", what, err);
	if (!json)
		return -1;
	r = parse_header(set, json, n, size == UINT64_MAX ? UINT64_MAX : size - 8 - n, &datalen, what, err);
	free(json);
	if (r)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		struct tensor *t = &set->t[i];

		t->data = read_grow(readfn, ctx, t->nbytes, done, datalen, "data", what, err);
		if (!t->data) {
			tensor_set_release(set);
			return -1;
		}
		done += t->nbytes;
	}
	return 1;
}

/* ---- memory ---- */

/* Input: the len bytes at p, read from pos on. */
struct memin {
	const unsigned char *p;
	size_t len, pos;
};

/* Output: a buffer grown as bytes are written. */
struct memout {
	unsigned char *p;
	size_t len, cap;
};

static long
mem_read(void *ctx, void *buf, size_t n, struct tc_error *err)
{
	struct memin *m = ctx;
	size_t k = m->len - m->pos < n ? m->len - m->pos : n;

	(void)err;
	if (k)
		memcpy(buf, m->p + m->pos, k);
	m->pos += k;
	return (long)k;
}

static int
mem_write(void *ctx, const void *buf, size_t n, struct tc_error *err)
{
	struct memout *m = ctx;

	(void)err;
	m->p = egrow(m->p, &m->cap, m->len + n, 1);
	if (n)
		memcpy(m->p + m->len, buf, n);
	m->len += n;
	return 0;
}

int
tensor_set_decode(struct tensor_set *set, const void *buf, size_t len, const char *what, struct tc_error *err)
{
	struct memin m = {buf, len, 0};
	int rc = tensor_set_read(set, mem_read, &m, len, what, err);

	if (rc == 0)
		return tc_error_set(err,
		                    "%s: empty input (a safetensors file starts with an 8-byte header "
		                    "length)",
		                    what);
	return rc < 0 ? -1 : 0;
}

int
tensor_set_encode(const struct tensor_set *set, void **buf, size_t *len, struct tc_error *err)
{
	struct memout m = {NULL, 0, 0};

	if (tensor_set_write(set, mem_write, &m, err)) {
		free(m.p);
		return -1;
	}
	*buf = m.p ? (void *)m.p : emalloc(1);
	*len = m.len;
	return 0;
}

/* ---- files ---- */

/* tensor_set_read's callback for a file descriptor (ctx points to the int). */
static long
fd_read(void *ctx, void *buf, size_t n, struct tc_error *err)
{
	int fd = *(int *)ctx;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return tc_error_set(err, "read error: %s", strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (long)got;
}

int
tensor_file_load(struct tensor_set *set, const char *path, struct tc_error *err)
{
	int stdin_ = strcmp(path, "-") == 0;
	const char *what = stdin_ ? "<stdin>" : path;
	int fd = stdin_ ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	uint64_t size = UINT64_MAX;
	struct stat st;
	char extra;
	int rc;

	tensor_set_release(set);
	if (fd < 0)
		return tc_error_set(err, "cannot open '%s': %s", path, strerror(errno));
	if (!stdin_ && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		size = (uint64_t)st.st_size;
	rc = tensor_set_read(set, fd_read, &fd, size, what, err);
	if (rc == 0)
		tc_error_set(err, "%s: empty file (a safetensors file starts with an 8-byte header length)",
		             what);
	if (rc == 1) {
		long r = fd_read(&fd, &extra, 1, err);

		if (r != 0) {
			if (r > 0)
				tc_error_set(err, "%s: trailing garbage after the data section", what);
			else
				tc_error_prefix(err, "%s", what);
			tensor_set_release(set);
			rc = -1;
		}
	}
	if (!stdin_)
		close(fd);
	return rc == 1 ? 0 : -1;
}

static int
file_write(void *ctx, const void *buf, size_t n, struct tc_error *err)
{
	struct afile *af = ctx;

	if (n && fwrite(buf, 1, n, af->f) != n)
		return tc_error_set(err, "write error on '%s': %s", af->path, strerror(errno));
	return 0;
}

int
tensor_file_save(const struct tensor_set *set, const char *path, struct tc_error *err)
{
	struct afile af;

	if (afile_open(&af, path, err))
		return -1;
	if (tensor_set_write(set, file_write, &af, err)) {
		afile_abort(&af);
		return -1;
	}
	return afile_commit(&af, err);
}

int
tensor_file_check_finite(const char *path, struct tc_error *err)
{
	struct tensor_set set;
	int rc = 0;

	tensor_set_init(&set);
	if (tensor_file_load(&set, path, err) < 0)
		return -1;
	for (size_t k = 0; k < set.n && rc == 0; k++) {
		const struct tensor *t = &set.t[k];
		size_t n = t->dtype == TENSOR_F32 || t->dtype == TENSOR_F64 ? (size_t)tensor_numel(t) : 0;
		for (size_t i = 0; i < n; i++) {
			double x = t->dtype == TENSOR_F32 ? ((const float *)t->data)[i]
			                                  : ((const double *)t->data)[i];
			if (isfinite(x))
				continue;
			rc = tc_error_set(
			    err, "%s: tensor '%s': element %zu is %g (a checkpoint holds finite numbers)",
			    path, t->name, i, isnan(x) ? (double)NAN : x); /* "nan", whatever its sign */
			break;
		}
	}
	tensor_set_release(&set);
	return rc;
}
